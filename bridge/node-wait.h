/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Waiting for the kernel to announce a front's device nodes: a front is
 * ready once the uevents (uevent.h) for all its nodes arrived, not when a
 * file shows up.  Should events be lost (the socket overflowed) or none
 * come within the wait (a kernel that sends none into this network
 * namespace), sysfs is looked at once.  A removal after that is logged.
 */
#ifndef VTPM_NODE_WAIT_H
#define VTPM_NODE_WAIT_H

#include <stdbool.h>

struct loop;
struct node_wait;

struct node_wait_ops {
	void (*ready)(void *arg);		/* every node is there; called once */
	void (*failed)(void *arg, const char *why);	/* not within the wait; called once */
};

/* Listens from now on: open it before the kernel can make the nodes.  0 or -errno (logged). */
int node_wait_open(struct node_wait **out, struct loop *loop, const char *front, unsigned int timeout_msec,
		   const struct node_wait_ops *ops, void *arg);

/* A node to wait for: its uevent SUBSYSTEM and DEVNAME, and its directory in sysfs. 0 or -errno. */
int node_wait_add(struct node_wait *w, const char *subsystem, const char *devname, const char *sysfs);

/* Starts the wait once every node is added (ready may be called from here). */
int node_wait_start(struct node_wait *w);

/* NULL is a no-op. */
void node_wait_close(struct node_wait *w);

#endif
