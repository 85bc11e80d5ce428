/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * One small logging module for the whole daemon (bridge/ and emulator/).
 * Messages go to one fd (stderr in the foreground, a --log file= or fd=)
 * or to syslog.  errno is preserved across every call.
 */
#ifndef VTPM_LOG_H
#define VTPM_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <syslog.h>

/* level: a syslog priority; messages above it are dropped. fd < 0: syslog. */
void log_setup(int fd, int level);
/*
 * --log prefix=P: written verbatim before every message (swtpm's); NULL for
 * none.  Until it is called, messages to an fd start with "vtpm-bridge: ".
 */
void log_set_prefix(const char *prefix);
/*
 * Opens a --log file= as swtpm does: appended to (emptied first with
 * `truncate`), created 0600, a symbolic link refused; with the --runas
 * user's identity when running as root.  The fd, or -errno (-ESRCH: no
 * such user).
 */
int log_file_open(const char *path, bool truncate, const char *user);
int log_level(void);
void log_msg(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* As log_msg, with ": " and strerror(err) appended (err is a positive errno). */
void log_errno(int prio, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define log_err(...)	log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_WARNING, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)	log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
