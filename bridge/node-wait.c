/* SPDX-License-Identifier: BSD-3-Clause */
#include "node-wait.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "uevent.h"

#define NODE_WAIT_MAX	2	/* tpmN and tpmrmN */

struct node {
	const char *subsystem;
	char *devname, *sysfs;
	bool present;
};

struct node_wait {
	struct loop *loop;
	const char *front;
	unsigned int timeout_msec;
	const struct node_wait_ops *ops;
	void *arg;
	struct uevent_listener *uevents;
	struct loop_watch timer;
	struct node nodes[NODE_WAIT_MAX];
	size_t n;
	bool started, done;
};

static bool node_wait_all_present(const struct node_wait *w)
{
	for (size_t i = 0; i < w->n; i++) {
		if (!w->nodes[i].present)
			return false;
	}
	return true;
}

static void node_wait_check(struct node_wait *w)
{
	if (w->done || !w->started || !node_wait_all_present(w))
		return;
	w->done = true;
	loop_timer_destroy(w->loop, &w->timer);
	w->ops->ready(w->arg);
}

static void node_wait_uevent(void *arg, const struct uevent *ev)
{
	struct node_wait *w = arg;
	bool add = !strcmp(ev->action, "add");

	if (!ev->subsystem || !ev->devname || (!add && strcmp(ev->action, "remove")))
		return;
	for (size_t i = 0; i < w->n; i++) {
		struct node *node = &w->nodes[i];

		if (strcmp(ev->subsystem, node->subsystem) || strcmp(ev->devname, node->devname))
			continue;
		if (!add && w->done)
			log_warn("%s: the kernel removed /dev/%s", w->front, node->devname);
		else
			log_debug("%s: uevent %s /dev/%s", w->front, ev->action, node->devname);
		node->present = add;
		node_wait_check(w);
		return;
	}
}

/* What sysfs says now: once, when the uevents cannot be trusted to tell. */
static void node_wait_sysfs(struct node_wait *w)
{
	for (size_t i = 0; i < w->n; i++)
		w->nodes[i].present = access(w->nodes[i].sysfs, F_OK) == 0;
}

static void node_wait_lost(void *arg)
{
	struct node_wait *w = arg;

	if (w->done)
		return;
	node_wait_sysfs(w);
	node_wait_check(w);
}

static void node_wait_timeout(struct loop_watch *timer, uint32_t events)
{
	struct node_wait *w = (struct node_wait *)((char *)timer - offsetof(struct node_wait, timer));

	(void)events;
	loop_timer_destroy(w->loop, &w->timer);
	node_wait_sysfs(w);
	if (node_wait_all_present(w)) {
		log_warn("%s: /dev/%s exists, but no uevent announced it (not the initial network namespace?)",
			 w->front, w->nodes[0].devname);
		node_wait_check(w);
		return;
	}
	w->done = true;
	w->ops->failed(w->arg, "the kernel made no device node in time");
}

int node_wait_open(struct node_wait **out, struct loop *loop, const char *front, unsigned int timeout_msec,
		   const struct node_wait_ops *ops, void *arg)
{
	struct node_wait *w = calloc(1, sizeof(*w));
	int ret;

	if (!w)
		return -ENOMEM;
	w->loop = loop;
	w->front = front;
	w->timeout_msec = timeout_msec;
	w->ops = ops;
	w->arg = arg;
	w->timer.fd = -1;
	ret = uevent_listener_open(&w->uevents, loop, node_wait_uevent, node_wait_lost, w);
	if (ret < 0) {
		log_errno(LOG_ERR, -ret, "%s: cannot listen to kernel uevents", front);
		free(w);
		return ret;
	}
	*out = w;
	return 0;
}

int node_wait_add(struct node_wait *w, const char *subsystem, const char *devname, const char *sysfs)
{
	struct node *node;

	if (w->n == NODE_WAIT_MAX)
		return -ENOSPC;
	node = &w->nodes[w->n];
	node->subsystem = subsystem;
	node->devname = strdup(devname);
	node->sysfs = strdup(sysfs);
	if (!node->devname || !node->sysfs) {
		free(node->devname);
		free(node->sysfs);
		return -ENOMEM;
	}
	w->n++;
	return 0;
}

int node_wait_start(struct node_wait *w)
{
	int ret = loop_timer_create(w->loop, &w->timer, node_wait_timeout);

	if (ret == 0)
		ret = loop_timer_arm(&w->timer, w->timeout_msec);
	if (ret < 0) {
		log_errno(LOG_ERR, -ret, "%s: timer", w->front);
		return ret;
	}
	w->started = true;
	node_wait_check(w);
	return 0;
}

void node_wait_close(struct node_wait *w)
{
	if (!w)
		return;
	loop_timer_destroy(w->loop, &w->timer);
	uevent_listener_close(w->uevents);
	for (size_t i = 0; i < w->n; i++) {
		free(w->nodes[i].devname);
		free(w->nodes[i].sysfs);
	}
	free(w);
}
