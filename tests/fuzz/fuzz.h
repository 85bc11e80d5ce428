/* SPDX-License-Identifier: BSD-3-Clause */
/* What the libFuzzer targets share. */
#ifndef VTPM_FUZZ_H
#define VTPM_FUZZ_H

#include <string.h>

/*
 * From LLVMFuzzerInitialize: puts -close_fd_mask=2 first among libFuzzer's
 * flags (one given on the command line still wins), for a parser that
 * prints one line to stderr per input it refuses.  libFuzzer's and the
 * sanitizers' reports still come out.
 */
static inline void fuzz_close_stderr(int *argc, char ***argv)
{
	static char close_stderr[] = "-close_fd_mask=2";
	static char *args[256];

	if (*argc < 1 || *argc >= (int)(sizeof(args) / sizeof(args[0])) - 1)
		return;
	args[0] = (*argv)[0];
	args[1] = close_stderr;
	memcpy(args + 2, *argv + 1, (size_t)(*argc - 1) * sizeof(args[0]));
	(*argc)++;
	*argv = args;
}

#endif
