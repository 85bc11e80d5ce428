/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The one event loop: every fd of the daemon is a watch in one epoll set.
 * Timers are timerfds, so they are watches too.
 */
#ifndef VTPM_LOOP_H
#define VTPM_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

struct loop;
struct loop_watch;

typedef void loop_fn(struct loop_watch *watch, uint32_t events);

struct loop_watch {
	int fd;
	uint32_t events;	/* EPOLLIN, EPOLLOUT ... currently asked for */
	loop_fn *fn;
	bool added;
};

int loop_create(struct loop **out);
void loop_destroy(struct loop *loop);

/* Adds, changes or removes the watch; fd and fn are set by the caller. */
int loop_watch(struct loop *loop, struct loop_watch *watch, uint32_t events);
void loop_unwatch(struct loop *loop, struct loop_watch *watch);

/*
 * Work run after the current batch of events: an owner frees a closed
 * connection this way, since a later event of the batch may name it.
 */
struct loop_deferred {
	struct loop_deferred *next;
	void (*fn)(struct loop_deferred *deferred);
};
void loop_defer(struct loop *loop, struct loop_deferred *deferred);

/* Runs until loop_quit(); returns 0, or -errno if epoll itself failed. */
int loop_run(struct loop *loop);
void loop_quit(struct loop *loop);

/* A one-shot timer; the watch's fn runs when it expires. */
int loop_timer_create(struct loop *loop, struct loop_watch *timer, loop_fn *fn);
int loop_timer_arm(struct loop_watch *timer, unsigned int msec);
void loop_timer_destroy(struct loop *loop, struct loop_watch *timer);

#endif
