/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The sandbox: a seccomp allow-list installed once start-up is over (the
 * fronts open, privileges dropped, keys read), before the loop serves.
 * What the daemon core needs is the base list (sandbox.c); each front adds
 * the syscalls only it makes once it serves, in its ops table
 * (front_ops.syscalls), as a list of SCMP_SYS() numbers ending in
 * SANDBOX_LIST_END.
 */
#ifndef VTPM_SANDBOX_H
#define VTPM_SANDBOX_H

#include <stddef.h>

/* --seccomp action=: what a syscall off the list does (swtpm's words; kill is the default). */
enum sandbox_action {
	SANDBOX_KILL,	/* the whole process is killed (SIGSYS) */
	SANDBOX_LOG,	/* the kernel logs it (audit type 1326) and it runs */
	SANDBOX_NONE,	/* no filter */
};

/* Ends a front's list; libseccomp's pseudo-syscall numbers are all below -10000. */
#define SANDBOX_LIST_END	(-1)

/*
 * Installs the filter on every thread of the process (TSYNC): the base
 * list plus each of the nlists extra lists.  0, or -1 after logging why.
 */
int sandbox_install(enum sandbox_action action, const int *const *lists, size_t nlists);

#endif
