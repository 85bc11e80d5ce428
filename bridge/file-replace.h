/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A small file that readers poll for (a pid file, an instance's record,
 * a CDI spec) appears whole or not at all: PATH.PID~ is written, then
 * renamed over PATH.  Not durable (no fsync): these live in /run, or are
 * rewritten at every start.
 */
#ifndef VTPM_FILE_REPLACE_H
#define VTPM_FILE_REPLACE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * Replaces path with buf[0..len).  The file gets mode, less the umask,
 * or exactly mode with exact_mode (a file others must read whatever the
 * umask).  0, or -errno (not logged); the temporary file never stays.
 */
int file_replace(const char *path, const void *buf, size_t len, mode_t mode, bool exact_mode);

#endif
