/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A front: one way in to the TPM (socket, CUSE, vtpm-proxy).
 * Each is a small file with a const ops table; the daemon opens every
 * configured front before it drops privileges, and fronts see the TPM
 * only through the core (core.h).
 */
#ifndef VTPM_FRONT_H
#define VTPM_FRONT_H

struct cli_config;
struct core;
struct loop;
struct front;

struct front_env {
	struct loop *loop;
	struct core *core;
	const struct cli_config *cfg;
	/* The front's work is over (e.g. --terminate and the data channel closed). */
	void (*quit)(void *arg);
	/* The front cannot serve (a device the kernel removed or never made): exit 1. */
	void (*fatal)(void *arg);
	/*
	 * The front serves: its channels listen, its device exists.  Called
	 * once, from open() or later from the loop (vtpm-proxy waits for the
	 * kernel); the daemon counts itself ready when every front is.
	 */
	void (*ready)(void *arg);
	/*
	 * The kernel name of a node the front is having made ("tpm3",
	 * "tpmrm3", "vtpm-a"), told before the kernel can announce it, so a
	 * udev rule can learn whose node it is.  Optional.
	 */
	void (*made)(void *arg, const char *node);
	void *arg;
};

struct front_ops {
	const char *name;
	/* Creates the front's channels (bind, listen): 0 or -errno, after logging why. */
	int (*open)(struct front **out, const struct front_env *env);
	/* Closes every channel and removes the files it created. */
	void (*close)(struct front *front);
	/*
	 * The syscalls this front makes once it serves, beyond the daemon's
	 * base list (sandbox.c): SCMP_SYS() numbers ending in SANDBOX_LIST_END.
	 */
	const int *syscalls;
};

extern const struct front_ops socket_front_ops;
extern const struct front_ops cuse_front_ops;
extern const struct front_ops proxy_front_ops;

#endif
