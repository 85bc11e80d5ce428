/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * node-wait.c against this machine's kernel: a front is ready on the
 * kernel's uevent for its node, or, when none comes, on what sysfs says
 * at the end of the wait; a node that never appears fails the wait.
 * /dev/null and /dev/zero (SUBSYSTEM mem) stand in for a front's nodes: a
 * write of "add" to /dev/null's uevent file makes the kernel send a real
 * uevent (root only; without it, that test says SKIP).
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <unistd.h>

#include "loop.h"
#include "node-wait.h"
#include "unit.h"

struct outcome {
	struct loop *loop;
	struct loop_watch guard;
	int ready, failed;
};

static void on_ready(void *arg)
{
	struct outcome *o = arg;

	o->ready++;
	loop_quit(o->loop);
}

static void on_failed(void *arg, const char *why)
{
	struct outcome *o = arg;

	(void)why;
	o->failed++;
	loop_quit(o->loop);
}

static const struct node_wait_ops ops = { .ready = on_ready, .failed = on_failed };

static void guard_expired(struct loop_watch *timer, uint32_t events)
{
	struct outcome *o = (struct outcome *)((char *)timer - offsetof(struct outcome, guard));

	(void)events;
	loop_quit(o->loop);
}

/* Runs the loop until the wait ends, at most 5 s. */
static void run(struct outcome *o)
{
	if (loop_timer_create(o->loop, &o->guard, guard_expired) == 0 && loop_timer_arm(&o->guard, 5000) == 0)
		loop_run(o->loop);
	loop_timer_destroy(o->loop, &o->guard);
}

static const char synth_path[] = "/sys/devices/virtual/mem/null/uevent";

TEST(ready_on_the_kernels_uevent)
{
	struct outcome o = { 0 };
	struct node_wait *w;
	int fd;

	CHECK_EQ(loop_create(&o.loop), 0);
	/* the wait outlasts the test: only the uevent can make it ready */
	CHECK_EQ(node_wait_open(&w, o.loop, "test", 60000, &ops, &o), 0);
	CHECK_EQ(node_wait_add(w, "mem", "null", "/sys/class/mem/null"), 0);
	CHECK_EQ(node_wait_start(w), 0);
	CHECK_EQ(o.ready, 0);
	fd = open(synth_path, O_WRONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, "add", 3), 3);
	close(fd);
	run(&o);
	CHECK_EQ(o.ready, 1);
	CHECK_EQ(o.failed, 0);
	node_wait_close(w);
	loop_destroy(o.loop);
}

TEST(no_uevent_then_sysfs_decides)
{
	struct outcome o = { 0 };
	struct node_wait *w;

	CHECK_EQ(loop_create(&o.loop), 0);
	CHECK_EQ(node_wait_open(&w, o.loop, "test", 100, &ops, &o), 0);
	CHECK_EQ(node_wait_add(w, "mem", "zero", "/sys/class/mem/zero"), 0);
	CHECK_EQ(node_wait_start(w), 0);
	run(&o);
	CHECK_EQ(o.ready, 1);
	CHECK_EQ(o.failed, 0);
	node_wait_close(w);
	loop_destroy(o.loop);
}

TEST(a_node_that_never_comes_fails_the_wait)
{
	struct outcome o = { 0 };
	struct node_wait *w;

	CHECK_EQ(loop_create(&o.loop), 0);
	CHECK_EQ(node_wait_open(&w, o.loop, "test", 100, &ops, &o), 0);
	CHECK_EQ(node_wait_add(w, "mem", "zero", "/sys/class/mem/zero"), 0);
	CHECK_EQ(node_wait_add(w, "mem", "no-such-node", "/sys/class/mem/no-such-node"), 0);
	CHECK_EQ(node_wait_start(w), 0);
	run(&o);
	CHECK_EQ(o.ready, 0);
	CHECK_EQ(o.failed, 1);
	/* at most two nodes (tpmN, tpmrmN) */
	CHECK(node_wait_add(w, "mem", "full", "/sys/class/mem/full") < 0);
	node_wait_close(w);
	loop_destroy(o.loop);
}

int main(void)
{
	static const struct unit_test always[] = {
		UNIT(no_uevent_then_sysfs_decides),
		UNIT(a_node_that_never_comes_fails_the_wait),
	};
	static const struct unit_test root[] = { UNIT(ready_on_the_kernels_uevent) };
	int bad = unit_run("node-wait", always, sizeof(always) / sizeof(always[0]));

	if (access(synth_path, W_OK) == 0 && access("/run/udev/control", F_OK) != 0)
		bad |= unit_run("node-wait", root, 1);
	else
		printf("SKIP node-wait/ready_on_the_kernels_uevent: cannot make a kernel uevent (%s needs root; "
		       "or udevd runs and would act on it)\n", synth_path);
	return bad;
}
