/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Libraries loaded on first use (libtpms, libcrypto): start-up and idle
 * instances do not pay for them.  Only emulator/ includes this.
 */
#ifndef VTPM_DLIB_H
#define VTPM_DLIB_H

#include <stddef.h>

/* A symbol to resolve, and the function pointer its address goes into. */
struct dlib_sym {
	const char *name;
	void **slot;
};

/*
 * dlopen()s lib and fills every slot.  NULL when the library or one of the
 * symbols is missing (logged; then nothing stays loaded).
 */
void *dlib_load(const char *lib, const struct dlib_sym *syms, size_t n);

#endif
