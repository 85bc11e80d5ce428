/* SPDX-License-Identifier: BSD-3-Clause */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define LOOP_BATCH 32

struct loop {
	int epfd;
	bool quit;
	struct loop_deferred *deferred;
};

int loop_create(struct loop **out)
{
	struct loop *loop = calloc(1, sizeof(*loop));

	if (!loop)
		return -ENOMEM;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		int err = errno;

		free(loop);
		return -err;
	}
	*out = loop;
	return 0;
}

static void loop_run_deferred(struct loop *loop);

void loop_destroy(struct loop *loop)
{
	if (!loop)
		return;
	/* Owners closed after the last batch still free through it. */
	loop_run_deferred(loop);
	close(loop->epfd);
	free(loop);
}

int loop_watch(struct loop *loop, struct loop_watch *watch, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = watch };
	int op = watch->added ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;

	if (watch->added && watch->events == events)
		return 0;
	if (epoll_ctl(loop->epfd, op, watch->fd, &ev) < 0)
		return -errno;
	watch->added = true;
	watch->events = events;
	return 0;
}

void loop_unwatch(struct loop *loop, struct loop_watch *watch)
{
	if (!watch->added)
		return;
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, watch->fd, NULL);
	watch->added = false;
	watch->events = 0;
}

static void loop_run_deferred(struct loop *loop)
{
	while (loop->deferred) {
		struct loop_deferred *d = loop->deferred;

		loop->deferred = d->next;
		d->fn(d);
	}
}

int loop_run(struct loop *loop)
{
	struct epoll_event evs[LOOP_BATCH];

	loop->quit = false;
	while (!loop->quit) {
		int n = epoll_wait(loop->epfd, evs, LOOP_BATCH, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		/*
		 * A handler may unwatch a watch that a later event of this batch
		 * names: `added` tells, and owners free through loop_defer().
		 */
		for (int i = 0; i < n && !loop->quit; i++) {
			struct loop_watch *w = evs[i].data.ptr;

			if (w->added)
				w->fn(w, evs[i].events);
		}
		loop_run_deferred(loop);
	}
	loop_run_deferred(loop);
	return 0;
}

void loop_defer(struct loop *loop, struct loop_deferred *deferred)
{
	deferred->next = loop->deferred;
	loop->deferred = deferred;
}

void loop_quit(struct loop *loop)
{
	loop->quit = true;
}

int loop_timer_create(struct loop *loop, struct loop_watch *timer, loop_fn *fn)
{
	int ret;

	timer->fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (timer->fd < 0)
		return -errno;
	timer->fn = fn;
	timer->added = false;
	ret = loop_watch(loop, timer, EPOLLIN);
	if (ret < 0) {
		close(timer->fd);
		timer->fd = -1;
	}
	return ret;
}

int loop_timer_arm(struct loop_watch *timer, unsigned int msec)
{
	struct itimerspec its = {
		.it_value = { .tv_sec = msec / 1000, .tv_nsec = (long)(msec % 1000) * 1000000L },
	};
	uint64_t expirations;

	/* Drop an expiry that was not read yet, so one arm gives one call. */
	if (read(timer->fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		return -errno;
	if (timerfd_settime(timer->fd, 0, &its, NULL) < 0)
		return -errno;
	return 0;
}

void loop_timer_destroy(struct loop *loop, struct loop_watch *timer)
{
	if (timer->fd < 0)
		return;
	loop_unwatch(loop, timer);
	close(timer->fd);
	timer->fd = -1;
}
