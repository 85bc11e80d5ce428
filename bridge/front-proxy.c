/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The vtpm-proxy front: /dev/tpmN and /dev/tpmrmN made by the kernel's
 * tpm_vtpm_proxy driver (VTPM_PROXY_IOC_NEW_DEV on /dev/vtpmx), served from
 * the anonymous fd the ioctl returns (../shared/spec/vtpm-proxy.md).
 *
 * The kernel has at most one command in flight per device and sends it
 * whole: read() gives one command, and its response goes back in exactly
 * one write() (writev would be taken as several responses).  While the core
 * has a command the fd is not read: a command that arrives then can only
 * follow a kernel timeout, and reading it before the late response is
 * written would make that response its answer.  The kernel's in-band
 * SetLocality is answered by the core for this front's client, never by
 * libtpms; the kernel has no cancel path, so neither has this front.
 *
 * The device exists only once the kernel's start-up commands have been
 * answered from the loop; it is ready when the uevents for tpmN (and
 * tpmrmN for a TPM 2) arrived.  Only then is the device line printed and
 * the daemon told.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <seccomp.h>
#include <vtpm_proxy.h>

#include "bytes.h"
#include "cli.h"
#include "core.h"
#include "front.h"
#include "log.h"
#include "loop.h"
#include "node-wait.h"
#include "sandbox.h"
#include "tpm-frame.h"

/*
 * Registration needs the answers to a handful of commands (the first
 * starts libtpms); a kernel that never sends its uevent (one outside the
 * initial network namespace) still gets a device: the end of this wait
 * looks at sysfs once.
 */
#define PROXY_READY_TIMEOUT_MSEC	30000

struct proxy_front {
	struct front_env env;
	struct core_client client;
	struct loop_watch watch;	/* the server fd */
	struct node_wait *nodes;	/* until the kernel announced tpmN (and tpmrmN) */
	bool tpm2;
	unsigned int tpm_num, major, minor;
	bool ready;
	bool busy;			/* the core has the command in buf */
	bool gone;			/* the kernel closed its side */
	uint8_t buf[VTPM_PROXY_BUFSIZE];
};

static void proxy_stop(struct proxy_front *f, const char *why)
{
	if (f->gone)
		return;
	f->gone = true;
	loop_unwatch(f->env.loop, &f->watch);
	if (f->ready)
		log_err("vtpm-proxy: /dev/tpm%u: %s", f->tpm_num, why);
	else
		log_err("vtpm-proxy: the kernel did not create /dev/tpm%u: %s", f->tpm_num, why);
	f->env.fatal(f->env.arg);
}

/* The kernel's EPIPE and EPOLLHUP: registration failed, or the device was torn down. */
static void proxy_hangup(struct proxy_front *f)
{
	proxy_stop(f, f->ready ? "the kernel closed the device" :
		   "the kernel refused the answers to its start-up commands (see the log above)");
}

static void proxy_write(struct proxy_front *f, const uint8_t *resp, size_t len)
{
	ssize_t n = write(f->watch.fd, resp, len);

	if (n == (ssize_t)len)
		return;
	if (n < 0 && errno == EPIPE)
		proxy_hangup(f);
	else if (n < 0 && errno == EIO)
		/* The kernel gave up on the command (ETIME to its client) and sent a newer one. */
		log_warn("vtpm-proxy: /dev/tpm%u: a late response was dropped by the kernel", f->tpm_num);
	else
		log_errno(LOG_ERR, n < 0 ? errno : EIO, "vtpm-proxy: /dev/tpm%u: writing a response", f->tpm_num);
}

static void proxy_command_done(void *arg, const uint8_t *resp, size_t len)
{
	struct proxy_front *f = arg;
	uint8_t err[TPM_HEADER_SIZE];

	f->busy = false;
	if (f->gone)
		return;
	/* The kernel takes at most its buffer, and needs the header's size to be the length. */
	if (len < TPM_HEADER_SIZE || len > VTPM_PROXY_BUFSIZE || get_be32(resp + 2) != len) {
		log_err("vtpm-proxy: a response of %zu bytes does not fit the device; answering an error", len);
		core_error_response(f->env.core, core_failure_rc(f->env.core), err);
		resp = err;
		len = sizeof(err);
	}
	proxy_write(f, resp, len);
	if (!f->gone)
		loop_watch(f->env.loop, &f->watch, EPOLLIN);	/* a no-op unless the fd was paused */
}

static void proxy_event(struct loop_watch *watch, uint32_t events)
{
	struct proxy_front *f = (struct proxy_front *)((char *)watch - offsetof(struct proxy_front, watch));
	ssize_t n;

	if (f->gone)
		return;
	if (events & (EPOLLHUP | EPOLLERR)) {
		proxy_hangup(f);
		return;
	}
	if (f->busy) {
		/*
		 * Only after a kernel timeout: a newer command waits.  It is not
		 * read before the late response is written, and level-triggered
		 * EPOLLIN must not spin meanwhile.  (Normally the kernel sends
		 * nothing while a command is out, and the watch never changes:
		 * no epoll_ctl per command.)
		 */
		loop_watch(f->env.loop, &f->watch, 0);
		return;
	}
	/* Blocking fd (the driver ignores O_NONBLOCK), read only when EPOLLIN said a command waits. */
	n = read(watch->fd, f->buf, sizeof(f->buf));
	if (n < 0) {
		if (errno == EINTR || errno == EAGAIN)
			return;
		if (errno == EPIPE)
			proxy_hangup(f);
		else
			proxy_stop(f, strerror(errno));
		return;
	}
	/* A client's bogus header reaches us as is (the kernel forwards header.size bytes). */
	if ((size_t)n < TPM_HEADER_SIZE || get_be32(f->buf + 2) != (uint32_t)n) {
		uint8_t err[TPM_HEADER_SIZE];

		core_error_response(f->env.core, core_command_size_rc(f->env.core), err);
		proxy_write(f, err, sizeof(err));
		return;
	}
	f->busy = true;
	core_submit(&f->client, f->buf, (size_t)n, proxy_command_done, f);
}

/* ---- readiness ---- */

static void proxy_ready(void *arg)
{
	struct proxy_front *f = arg;
	char line[96];
	int len;

	f->ready = true;
	if (f->tpm2)
		log_info("vtpm-proxy: serving /dev/tpm%u and /dev/tpmrm%u", f->tpm_num, f->tpm_num);
	else
		log_info("vtpm-proxy: serving /dev/tpm%u", f->tpm_num);
	/* swtpm's line, which callers parse; a closed or full stdout costs us nothing (SIGPIPE ignored). */
	len = snprintf(line, sizeof(line), "New TPM device: /dev/tpm%u (major/minor = %u/%u)\n",
		       f->tpm_num, f->major, f->minor);
	if (write(STDOUT_FILENO, line, (size_t)len) != len)
		log_info("vtpm-proxy: the device line could not be written to stdout: %s", strerror(errno));
	f->env.ready(f->env.arg);
}

static void proxy_not_made(void *arg, const char *why)
{
	proxy_stop(arg, why);
}

static const struct node_wait_ops proxy_node_ops = {
	.ready = proxy_ready,
	.failed = proxy_not_made,
};

/* The nodes the kernel makes for the device: tpmN, and tpmrmN for a TPM 2. */
static int proxy_wait_nodes(struct proxy_front *f)
{
	const char *const classes[] = { "tpm", "tpmrm" };
	char name[32], sysfs[64];
	int ret = 0;

	/* Told before the loop serves the kernel's start-up commands: its uevents come after them. */
	for (size_t i = 0; i < (f->tpm2 ? 2u : 1u) && ret == 0; i++) {
		snprintf(name, sizeof(name), "%s%u", classes[i], f->tpm_num);
		snprintf(sysfs, sizeof(sysfs), "/sys/class/%s/%s", classes[i], name);
		if (f->env.made)
			f->env.made(f->env.arg, name);
		ret = node_wait_add(f->nodes, classes[i], name, sysfs);
	}
	return ret < 0 ? ret : node_wait_start(f->nodes);
}

/* ---- open, close ---- */

static int proxy_new_device(struct proxy_front *f)
{
	struct vtpm_proxy_new_dev nd = { .flags = f->tpm2 ? VTPM_PROXY_FLAG_TPM2 : 0 };
	int ctl = open("/dev/vtpmx", O_RDWR | O_CLOEXEC), err;

	if (ctl < 0) {
		err = errno;
		if (err == ENOENT || err == ENODEV || err == ENXIO)
			log_err("vtpm-proxy: cannot open /dev/vtpmx: %s (modprobe tpm_vtpm_proxy)", strerror(err));
		else
			log_errno(LOG_ERR, err, "vtpm-proxy: cannot open /dev/vtpmx");
		return -err;
	}
	if (ioctl(ctl, VTPM_PROXY_IOC_NEW_DEV, &nd) < 0) {
		err = errno;
		if (err == EPERM)
			log_err("vtpm-proxy: VTPM_PROXY_IOC_NEW_DEV: %s (it needs CAP_SYS_ADMIN in the host's "
				"user namespace)", strerror(err));
		else
			log_errno(LOG_ERR, err, "vtpm-proxy: VTPM_PROXY_IOC_NEW_DEV");
		close(ctl);
		return -err;
	}
	/* The device lives exactly as long as this fd: no child may inherit a copy. */
	close(ctl);
	if (fcntl((int)nd.fd, F_SETFD, FD_CLOEXEC) < 0) {
		err = errno;
		close((int)nd.fd);
		log_errno(LOG_ERR, err, "vtpm-proxy: close-on-exec");
		return -err;
	}
	f->watch.fd = (int)nd.fd;
	f->tpm_num = nd.tpm_num;
	f->major = nd.major;
	f->minor = nd.minor;
	return 0;
}

static void proxy_front_close(struct front *front)
{
	struct proxy_front *f = (struct proxy_front *)front;

	if (!f)
		return;
	core_withdraw(f->env.core, f);
	node_wait_close(f->nodes);
	if (f->watch.fd >= 0) {
		loop_unwatch(f->env.loop, &f->watch);
		/* The last close: the kernel removes /dev/tpmrmN and /dev/tpmN. */
		close(f->watch.fd);
	}
	free(f);
}

static int proxy_front_open(struct front **out, const struct front_env *env)
{
	struct proxy_front *f = calloc(1, sizeof(*f));
	int ret;

	if (!f)
		return -ENOMEM;
	f->env = *env;
	f->tpm2 = env->cfg->tpm2;
	f->watch.fd = -1;
	f->watch.fn = proxy_event;
	core_client_init(&f->client, env->core, "vtpm-proxy");
	/* The driver's SetLocality is ours to answer (a client cannot send it: the kernel refuses). */
	f->client.inband_locality = true;
	f->client.kernel_driver = true;
	/* Listening first: the device's uevents may come as soon as the fd is served. */
	ret = node_wait_open(&f->nodes, env->loop, "vtpm-proxy", PROXY_READY_TIMEOUT_MSEC, &proxy_node_ops, f);
	if (ret < 0)
		goto fail;
	ret = proxy_new_device(f);
	if (ret < 0)
		goto fail;
	ret = proxy_wait_nodes(f);
	if (ret < 0)
		goto fail;
	ret = loop_watch(env->loop, &f->watch, EPOLLIN);
	if (ret < 0) {
		log_errno(LOG_ERR, -ret, "vtpm-proxy: epoll");
		goto fail;
	}
	log_info("vtpm-proxy: the kernel is creating /dev/tpm%u (%u:%u)", f->tpm_num, f->major, f->minor);
	*out = (struct front *)f;
	return 0;

fail:
	proxy_front_close((struct front *)f);
	return ret;
}

/* Once serving: the kernel's uevents for tpmN and tpmrmN (node-wait.c); the commands are read() and write(). */
static const int proxy_front_syscalls[] = {
	SCMP_SYS(recvmsg), SANDBOX_LIST_END
};

const struct front_ops proxy_front_ops = {
	.name = "vtpm-proxy",
	.open = proxy_front_open,
	.close = proxy_front_close,
	.syscalls = proxy_front_syscalls,
};
