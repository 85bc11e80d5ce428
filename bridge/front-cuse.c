/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The CUSE front: /dev/NAME as `swtpm cuse` serves it, on libfuse3's
 * cuse_lowlevel, with the session's fd in our one epoll loop (no libfuse
 * loop, threads, signal handlers or fork).
 *
 * The data path behaves like the kernel's tpm-dev (tpm-dev-common.c):
 * every open file has its own command and response, so openers never see
 * each other's responses; write() is one whole command, read() returns the
 * response in as many parts as the reader likes, a second write before
 * the response was read gets EBUSY, poll() tells the truth, O_NONBLOCK
 * works and a blocked read() can be interrupted.  All openers share one
 * core client (one locality), as the socket front's connections do.
 *
 * The PTM ioctls are restricted (cuse_info.flags 0, as swtpm): the kernel
 * copies _IOC_SIZE bytes in and out, so every request arrives whole and
 * every one maps to a core_ctrl() operation (ptm-ioctl.c decodes and
 * encodes them, and keeps the state blob transfer's rules).  A reply may
 * come later, from the core's callback; the fuse_req waits in a small call
 * context.
 */
#define FUSE_USE_VERSION 31

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cuse_lowlevel.h>
#include <fuse_lowlevel.h>

#include <ptm.h>
#include <seccomp.h>

#include "bytes.h"
#include "cli.h"
#include "core.h"
#include "front.h"
#include "log.h"
#include "loop.h"
#include "node-wait.h"
#include "ptm-ioctl.h"
#include "sandbox.h"
#include "tpm-frame.h"

#define CUSE_INIT_TIMEOUT_MSEC	10000	/* the kernel answers CUSE_INIT at once; this is a guard */
#define CUSE_READY_TIMEOUT_MSEC	10000	/* its uevent was sent before CUSE_INIT's answer returned */
#define CUSE_RECEIVE_BATCH	64	/* requests per wake-up; the watch is level-triggered */
#define CUSE_RETRY_MAX		8	/* TPM2_RC_RETRY / TESTING answers retried, as the kernel's tpm_transmit() */

#define TPM2_ST_NO_SESSIONS	0x8001
#define TPM2_ST_SESSIONS	0x8002
#define TPM2_RC_TESTING		0x090a
#define TPM2_RC_RETRY		0x0922
#define TPM2_CC_SELF_TEST	0x0143

struct cuse_front;
struct cuse_call;

/* An open file's command slot (tpm-dev's data_buffer and its flags). */
enum opener_cmd {
	OPENER_IDLE,		/* no response: write() accepted, read() returns 0 */
	OPENER_RUNNING,		/* the core has the command */
	OPENER_READY,		/* a response (or what is left of it) waits for read() */
};

struct cuse_opener {
	struct cuse_front *front;
	struct cuse_opener *prev, *next;
	struct cuse_call *calls;	/* requests waiting for the core */
	enum opener_cmd cmd;
	bool resp_read;			/* read() took some of the response: a write() may replace it */
	uint8_t *resp;			/* kept across commands: no allocation per command */
	size_t resp_len, resp_off, resp_cap;
	uint8_t *cmd_buf;		/* the running command, kept for a retry */
	size_t cmd_len, cmd_cap;
	unsigned int retries;
	fuse_req_t read_req;		/* a blocked read() waiting for the response */
	size_t read_size;
	struct fuse_pollhandle *ph;	/* the newest poll() that asked to be notified */
	struct ptm_xfer xfer;		/* what read() and write() move: commands or a state blob */
};

enum call_kind {
	CALL_IOCTL,
	CALL_BLOB_READ,		/* read() in PTM_XFER_GET */
	CALL_BLOB_WRITE,	/* write() in PTM_XFER_SET */
};

/* One fuse request waiting for a core_ctrl() reply; the core's arg. */
struct cuse_call {
	struct cuse_opener *opener;
	struct cuse_call *prev, *next;
	fuse_req_t req;
	enum call_kind kind;
	uint32_t request;	/* CALL_IOCTL: the ioctl */
	size_t size;		/* CALL_BLOB_WRITE: bytes written */
	bool last;		/* SET_STATEBLOB: this chunk ended the blob */
};

struct cuse_front {
	struct front_env env;
	struct core_client client;
	struct fuse_session *se;
	struct loop_watch watch;
	struct fuse_buf fbuf;
	struct cuse_opener *openers;
	struct node_wait *nodes;	/* until the kernel announced the device */
	const char *name;
	char sysfs[PATH_MAX];		/* /sys/class/cuse/NAME: exists while the device does */
	bool init_done;
	bool gone;			/* the kernel ended the connection */
};

static struct cuse_opener *opener_of(const struct fuse_file_info *fi)
{
	return (struct cuse_opener *)(uintptr_t)fi->fh;
}

/* ---- poll ---- */

/* tpm-dev's answer: readable while a response (or part) waits, writable while a write is accepted. */
static unsigned int opener_revents(const struct cuse_opener *o)
{
	if (o->xfer.mode == PTM_XFER_GET)
		return POLLIN | POLLRDNORM;
	if (o->xfer.mode == PTM_XFER_SET)
		return POLLOUT | POLLWRNORM;
	switch (o->cmd) {
	case OPENER_READY:
		return POLLIN | POLLRDNORM | (o->resp_read ? POLLOUT | POLLWRNORM : 0);
	case OPENER_IDLE:
		return POLLOUT | POLLWRNORM;
	default:
		return 0;
	}
}

static void opener_notify(struct cuse_opener *o)
{
	if (!o->ph)
		return;
	fuse_lowlevel_notify_poll(o->ph);
	fuse_pollhandle_destroy(o->ph);
	o->ph = NULL;
}

static void cuse_poll(fuse_req_t req, struct fuse_file_info *fi, struct fuse_pollhandle *ph)
{
	struct cuse_opener *o = opener_of(fi);

	if (ph) {
		if (o->ph)
			fuse_pollhandle_destroy(o->ph);
		o->ph = ph;
	}
	fuse_reply_poll(req, opener_revents(o));
}

/* ---- calls waiting for the core ---- */

static struct cuse_call *call_new(struct cuse_opener *o, fuse_req_t req, enum call_kind kind)
{
	struct cuse_call *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->opener = o;
	c->req = req;
	c->kind = kind;
	c->next = o->calls;
	if (o->calls)
		o->calls->prev = c;
	o->calls = c;
	return c;
}

static void call_free(struct cuse_call *c)
{
	struct cuse_opener *o = c->opener;

	if (c->prev)
		c->prev->next = c->next;
	else
		o->calls = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c);
}

/* FUSE_INTERRUPT (a signal in the caller): the request ends with EINTR, the core forgets it. */
static void call_interrupted(fuse_req_t req, void *data)
{
	struct cuse_call *c = data;

	core_withdraw(c->opener->front->env.core, c);
	if (c->kind != CALL_IOCTL)
		c->opener->xfer.mode = PTM_XFER_CMD;
	call_free(c);
	fuse_reply_err(req, EINTR);
}

/*
 * Makes the call interruptible.  false: the caller was already interrupted
 * (libfuse would otherwise run the handler inside the registration, where
 * replying frees the request under its own lock); the call is then gone.
 */
static bool call_arm(struct cuse_call *c)
{
	if (fuse_req_interrupted(c->req)) {
		fuse_reply_err(c->req, EINTR);
		call_free(c);
		return false;
	}
	fuse_req_interrupt_func(c->req, call_interrupted, c);
	return true;
}

/* ---- PTM ioctls (the ABI itself: ptm-ioctl.c) ---- */

static void ioctl_reply(struct cuse_call *c, const struct core_ctrl_reply *r)
{
	union ptm_ioctl_out out;
	size_t len = ptm_ioctl_encode(c->request, r, c->last, &c->opener->xfer, &out);

	fuse_reply_ioctl(c->req, 0, &out, len);
}

static void call_done(void *arg, const struct core_ctrl_reply *r);

static void cuse_ioctl(fuse_req_t req, int cmd, void *arg, struct fuse_file_info *fi, unsigned int flags,
		       const void *in_buf, size_t in_bufsz, size_t out_bufsz)
{
	struct cuse_opener *o = opener_of(fi);
	uint32_t request = (uint32_t)cmd;	/* libfuse 3.14 passes it as int */
	struct ptm_xfer xfer = o->xfer;		/* the opener's once the ioctl is taken (not on ENOMEM) */
	struct core_ctrl_req creq;
	struct cuse_call *c;
	ptm_res result;
	int ret;

	(void)arg;
	ret = ptm_ioctl_decode(request, in_buf, in_bufsz, out_bufsz, flags & FUSE_IOCTL_COMPAT, &xfer, &creq,
			       &result);
	if (ret < 0) {
		log_debug("cuse: ioctl 0x%08x (buffers %zu/%zu, flags 0x%x): %s", request, in_bufsz, out_bufsz,
			  flags, strerror(-ret));
		fuse_reply_err(req, -ret);
		return;
	}
	if (ret == PTM_IOCTL_ANSWERED) {
		o->xfer = xfer;
		fuse_reply_ioctl(req, 0, &result, sizeof(result));
		return;
	}
	c = call_new(o, req, CALL_IOCTL);
	if (!c) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	o->xfer = xfer;
	c->request = request;
	c->last = creq.last;
	if (!call_arm(c))
		return;
	/* The reply may come before core_ctrl() returns: c is the callback's from here. */
	core_ctrl(&o->front->client, &creq, call_done, c);
}

/* ---- state blobs by read() and write() ---- */

static void blob_read_reply(struct cuse_call *c, const struct core_ctrl_reply *r)
{
	struct cuse_opener *o = c->opener;

	if (r->result != PTM_RES_SUCCESS) {
		o->xfer.mode = PTM_XFER_CMD;
		fuse_reply_err(c->req, EIO);
		return;
	}
	o->xfer.offset += (uint32_t)r->len;
	/* swtpm leaves GET mode only on a short read; the last byte ends it here. */
	if (o->xfer.offset >= o->xfer.total || r->len == 0)
		o->xfer.mode = PTM_XFER_CMD;
	fuse_reply_buf(c->req, (const char *)r->data, r->len);
	opener_notify(o);
}

static void blob_read(fuse_req_t req, struct cuse_opener *o, size_t size)
{
	struct core_ctrl_req creq = {
		.op = CMD_GET_STATEBLOB,
		.flags = o->xfer.flags,
		.type = o->xfer.type,
		.offset = o->xfer.offset,
		.max_len = size,
	};
	struct cuse_call *c = call_new(o, req, CALL_BLOB_READ);

	if (!c) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (call_arm(c))
		core_ctrl(&o->front->client, &creq, call_done, c);
}

static void blob_write(fuse_req_t req, struct cuse_opener *o, const char *buf, size_t size)
{
	struct core_ctrl_req creq = {
		.op = CMD_SET_STATEBLOB,
		.flags = o->xfer.flags,
		.type = o->xfer.type,
		.data = (const uint8_t *)buf,	/* the core copies what it queues */
		.len = size,
	};
	struct cuse_call *c = call_new(o, req, CALL_BLOB_WRITE);

	if (!c) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	c->size = size;
	if (call_arm(c))
		core_ctrl(&o->front->client, &creq, call_done, c);
}

static void call_done(void *arg, const struct core_ctrl_reply *r)
{
	struct cuse_call *c = arg;

	switch (c->kind) {
	case CALL_IOCTL:
		ioctl_reply(c, r);
		break;
	case CALL_BLOB_READ:
		blob_read_reply(c, r);
		break;
	case CALL_BLOB_WRITE:
		if (r->result == PTM_RES_SUCCESS) {
			fuse_reply_write(c->req, c->size);
		} else {
			c->opener->xfer.mode = PTM_XFER_CMD;
			fuse_reply_err(c->req, EIO);
		}
		break;
	}
	call_free(c);
}

/* ---- TPM commands: write() and read() ---- */

/* Grows an opener's command or response buffer; kept for its next command. */
static int buf_reserve(uint8_t **buf, size_t *cap, size_t need)
{
	uint8_t *grown;

	if (*cap >= need && *buf)
		return 0;
	grown = realloc(*buf, need ? need : 1);
	if (!grown)
		return -ENOMEM;
	*buf = grown;
	*cap = need;
	return 0;
}

/* Hands the blocked reader what it asked for of the response. */
static void opener_deliver(struct cuse_opener *o, fuse_req_t req, size_t size)
{
	size_t left = o->resp_len - o->resp_off;
	size_t n = size < left ? size : left;

	fuse_reply_buf(req, (const char *)o->resp + o->resp_off, n);
	o->resp_read = true;
	o->resp_off += n;
	if (o->resp_off == o->resp_len) {
		o->resp_len = o->resp_off = 0;
		o->cmd = OPENER_IDLE;
	}
}

/*
 * The kernel's tpm_transmit() sends a TPM 2 command again while the answer
 * is TPM_RC_RETRY (libtpms gives it at the first use of a DA-protected
 * object after a start, having recorded that use) or TPM_RC_TESTING
 * (except to SelfTest itself); clients of /dev/tpm0 never see them.
 */
static bool command_retry(const struct cuse_opener *o, const uint8_t *resp, size_t len)
{
	uint16_t tag;
	uint32_t rc;

	if (len < TPM_HEADER_SIZE || o->retries >= CUSE_RETRY_MAX || o->cmd_len < TPM_HEADER_SIZE)
		return false;
	tag = get_be16(resp);
	rc = get_be32(resp + 6);
	if (tag != TPM2_ST_NO_SESSIONS && tag != TPM2_ST_SESSIONS)
		return false;
	return rc == TPM2_RC_RETRY || (rc == TPM2_RC_TESTING && get_be32(o->cmd_buf + 6) != TPM2_CC_SELF_TEST);
}

static void command_done(void *arg, const uint8_t *resp, size_t len)
{
	struct cuse_opener *o = arg;

	if (command_retry(o, resp, len)) {
		o->retries++;
		log_debug("cuse: TPM rc 0x%x: sending the command again", get_be32(resp + 6));
		core_submit(&o->front->client, o->cmd_buf, o->cmd_len, command_done, o);
		return;
	}
	if (buf_reserve(&o->resp, &o->resp_cap, len) < 0) {
		/* Nothing to give: the reader sees an error, the opener can write again. */
		o->cmd = OPENER_IDLE;
		if (o->read_req)
			fuse_reply_err(o->read_req, ENOMEM);
		o->read_req = NULL;
		opener_notify(o);
		return;
	}
	memcpy(o->resp, resp, len);
	o->resp_len = len;
	o->resp_off = 0;
	o->resp_read = false;
	o->cmd = OPENER_READY;
	if (o->read_req) {
		fuse_req_t req = o->read_req;

		o->read_req = NULL;
		/* Registered for the wait; replying clears it in libfuse. */
		opener_deliver(o, req, o->read_size);
	}
	opener_notify(o);
}

static void read_interrupted(fuse_req_t req, void *data)
{
	struct cuse_opener *o = data;

	/* The command keeps running; its response waits for the next read(). */
	if (o->read_req == req)
		o->read_req = NULL;
	fuse_reply_err(req, EINTR);
}

static void cuse_read(fuse_req_t req, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct cuse_opener *o = opener_of(fi);

	(void)off;	/* always 0 for CUSE: the opener keeps its own offset */
	if (o->xfer.mode == PTM_XFER_GET) {
		blob_read(req, o, size);
		return;
	}
	if (o->xfer.mode == PTM_XFER_SET) {
		o->xfer.mode = PTM_XFER_CMD;
		fuse_reply_err(req, EIO);
		return;
	}
	switch (o->cmd) {
	case OPENER_IDLE:
		/* Nothing written: tpm-dev returns 0 bytes. */
		fuse_reply_buf(req, NULL, 0);
		return;
	case OPENER_READY:
		opener_deliver(o, req, size);
		opener_notify(o);
		return;
	case OPENER_RUNNING:
		break;
	}
	if (fi->flags & O_NONBLOCK) {
		fuse_reply_err(req, EAGAIN);
		return;
	}
	if (o->read_req) {
		/* Two threads reading one file at once: one waits for the response. */
		fuse_reply_err(req, EBUSY);
		return;
	}
	if (fuse_req_interrupted(req)) {
		fuse_reply_err(req, EINTR);
		return;
	}
	o->read_req = req;
	o->read_size = size;
	fuse_req_interrupt_func(req, read_interrupted, o);
}

static void cuse_write(fuse_req_t req, const char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct cuse_opener *o = opener_of(fi);
	struct core *core = o->front->env.core;
	uint32_t hdr_size;

	(void)off;
	if (o->xfer.mode == PTM_XFER_SET) {
		blob_write(req, o, buf, size);
		return;
	}
	if (o->xfer.mode == PTM_XFER_GET) {
		o->xfer.mode = PTM_XFER_CMD;
		fuse_reply_err(req, EIO);
		return;
	}
	/* As tpm-dev: the response must have been read (at least begun) first. */
	if (o->cmd == OPENER_RUNNING || (o->cmd == OPENER_READY && !o->resp_read)) {
		fuse_reply_err(req, EBUSY);
		return;
	}
	if (size > core_max_command(core)) {
		log_debug("cuse: write of %zu bytes: larger than the TPM's buffer", size);
		fuse_reply_err(req, E2BIG);
		return;
	}
	if (size < TPM_HEADER_SIZE) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	hdr_size = get_be32((const uint8_t *)buf + 2);
	if (hdr_size < TPM_HEADER_SIZE || hdr_size > size) {
		log_debug("cuse: write of %zu bytes: header says %u", size, hdr_size);
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (buf_reserve(&o->cmd_buf, &o->cmd_cap, hdr_size) < 0) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	memcpy(o->cmd_buf, buf, hdr_size);
	o->cmd_len = hdr_size;
	o->retries = 0;
	o->resp_len = o->resp_off = 0;
	o->cmd = OPENER_RUNNING;
	/* write() returns at once; the response comes to read(). */
	fuse_reply_write(req, size);
	core_submit(&o->front->client, o->cmd_buf, o->cmd_len, command_done, o);
}

/* ---- open and release ---- */

static void cuse_open(fuse_req_t req, struct fuse_file_info *fi)
{
	struct cuse_front *f = fuse_req_userdata(req);
	struct cuse_opener *o = calloc(1, sizeof(*o));

	if (!o) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	o->front = f;
	o->next = f->openers;
	if (f->openers)
		f->openers->prev = o;
	f->openers = o;
	fi->fh = (uintptr_t)o;
	fi->direct_io = 1;
	fi->nonseekable = 1;
	if (fuse_reply_open(req, fi) == -ENOENT) {
		/* The opener was interrupted meanwhile: no release will come. */
		f->openers = o->next;
		if (o->next)
			o->next->prev = NULL;
		free(o);
	}
}

static void opener_free(struct cuse_opener *o)
{
	struct cuse_front *f = o->front;

	/* Its command, queued or running, is dropped; nobody else's is touched. */
	core_withdraw(f->env.core, o);
	while (o->calls) {
		struct cuse_call *c = o->calls;

		core_withdraw(f->env.core, c);
		fuse_reply_err(c->req, EIO);
		call_free(c);
	}
	if (o->read_req)
		fuse_reply_err(o->read_req, EIO);
	if (o->ph)
		fuse_pollhandle_destroy(o->ph);
	free(o->resp);
	free(o->cmd_buf);
	if (o->prev)
		o->prev->next = o->next;
	else
		f->openers = o->next;
	if (o->next)
		o->next->prev = o->prev;
	free(o);
}

static void cuse_release(fuse_req_t req, struct fuse_file_info *fi)
{
	opener_free(opener_of(fi));
	fuse_reply_err(req, 0);
}

static void cuse_init_done(void *userdata)
{
	struct cuse_front *f = userdata;

	f->init_done = true;
}

static const struct cuse_lowlevel_ops cuse_ops = {
	.init_done = cuse_init_done,
	.open = cuse_open,
	.read = cuse_read,
	.write = cuse_write,
	.release = cuse_release,
	.ioctl = cuse_ioctl,
	.poll = cuse_poll,
};

/* ---- the session in the loop ---- */

/* Handles up to `max` requests: 0 when drained or done, -ENODEV once the connection is gone, -errno. */
static int cuse_receive(struct cuse_front *f, int max)
{
	for (int i = 0; i < max; i++) {
		int r = fuse_session_receive_buf(f->se, &f->fbuf);

		if (r == -EINTR)
			continue;
		if (r == -EAGAIN)
			return 0;
		if (r <= 0 || fuse_session_exited(f->se))
			return fuse_session_exited(f->se) || r == 0 ? -ENODEV : r;
		fuse_session_process_buf(f->se, &f->fbuf);
		if (fuse_session_exited(f->se))
			return -ENODEV;
	}
	return 0;
}

static void cuse_event(struct loop_watch *watch, uint32_t events)
{
	struct cuse_front *f = (struct cuse_front *)((char *)watch - offsetof(struct cuse_front, watch));
	int ret;

	(void)events;
	if (f->gone)
		return;
	ret = cuse_receive(f, CUSE_RECEIVE_BATCH);
	if (ret == 0)
		return;
	/* The kernel aborted the connection (sysfs abort, or it refused us): the device is gone. */
	f->gone = true;
	loop_unwatch(f->env.loop, &f->watch);
	if (ret == -ENODEV)
		log_err("cuse: /dev/%s: the kernel ended the device's connection", f->name);
	else
		log_errno(LOG_ERR, -ret, "cuse: /dev/%s", f->name);
	f->env.quit(f->env.arg);
}

static long cuse_msec_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

/*
 * Answers CUSE_INIT and waits until the kernel has either created the
 * device or refused it.  A refusal is silent (the kernel aborts the
 * connection and libfuse calls that a normal exit), so success is the
 * device's directory in sysfs, which the kernel made (or not) inside our
 * write of the reply.  One request at a time: a client's first requests
 * wait in the kernel until the loop runs, after the pid file, the detach
 * and --runas.
 */
static int cuse_wait_created(struct cuse_front *f)
{
	struct pollfd pfd = { .fd = fuse_session_fd(f->se), .events = POLLIN };
	struct timespec t0;
	int ret = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!f->init_done && ret == 0) {
		long left = CUSE_INIT_TIMEOUT_MSEC - cuse_msec_since(&t0);

		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
			return -errno;
		ret = cuse_receive(f, 1);
	}
	if (ret < 0)
		return ret;
	return access(f->sysfs, F_OK) == 0 ? 0 : -ENODEV;
}

/* Why a device cannot be created, found before we try: the kernel would only say "no". */
static int cuse_precheck(struct cuse_front *f, const struct cli_cuse *cc)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "/dev/%s", cc->name);
	if (lstat(path, &st) == 0) {
		log_err("cuse: %s exists already (another device of that name)", path);
		return -EEXIST;
	}
	if (access(f->sysfs, F_OK) == 0) {
		log_err("cuse: a CUSE device named %s exists already (%s)", cc->name, f->sysfs);
		return -EEXIST;
	}
	if (cc->major) {
		char link[PATH_MAX];
		ssize_t n;

		snprintf(path, sizeof(path), "/sys/dev/char/%u:%u", cc->major, cc->minor);
		n = readlink(path, link, sizeof(link) - 1);
		if (n >= 0) {
			link[n] = '\0';
			log_err("cuse: device number %u:%u is taken (%s)", cc->major, cc->minor,
				strrchr(link, '/') ? strrchr(link, '/') + 1 : link);
			return -EBUSY;
		}
	}
	return 0;
}

static int cuse_open_channel(void)
{
	int fd = open("/dev/cuse", O_RDWR | O_CLOEXEC | O_NONBLOCK);

	if (fd >= 0)
		return fd;
	if (errno == ENOENT || errno == ENODEV || errno == ENXIO)
		log_err("cuse: cannot open /dev/cuse: %s (no CUSE in this kernel: modprobe cuse)", strerror(errno));
	else if (errno == EACCES || errno == EPERM)
		log_err("cuse: cannot open /dev/cuse: %s (it is root's: run as root, --runas drops later)",
			strerror(errno));
	else
		log_errno(LOG_ERR, errno, "cuse: cannot open /dev/cuse");
	return -errno;
}

static void cuse_ready(void *arg)
{
	struct cuse_front *f = arg;

	log_info("cuse: serving /dev/%s", f->name);
	f->env.ready(f->env.arg);
}

static void cuse_not_made(void *arg, const char *why)
{
	struct cuse_front *f = arg;

	log_err("cuse: /dev/%s: %s", f->name, why);
	f->env.fatal(f->env.arg);
}

static const struct node_wait_ops cuse_node_ops = {
	.ready = cuse_ready,
	.failed = cuse_not_made,
};

static void cuse_front_close(struct front *front)
{
	struct cuse_front *f = (struct cuse_front *)front;

	if (!f)
		return;
	while (f->openers)
		opener_free(f->openers);
	node_wait_close(f->nodes);
	if (f->watch.added)
		loop_unwatch(f->env.loop, &f->watch);
	if (f->se) {
		/* Closes /dev/cuse: the kernel removes the device. */
		fuse_session_destroy(f->se);
	}
	free(f->fbuf.mem);
	free(f);
}

static int cuse_front_open(struct front **out, const struct front_env *env)
{
	const struct cli_cuse *cc = &env->cfg->cuse;
	char devname[PATH_MAX + 8], mount[32];
	const char *dev_info[] = { devname };
	char prog[] = "vtpm-bridge";
	char *argv[] = { prog, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(1, argv);
	struct cuse_info ci;
	struct cuse_front *f;
	int fd, ret;

	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->env = *env;
	f->name = cc->name;
	f->watch.fd = -1;
	core_client_init(&f->client, env->core, "cuse");
	f->client.inband_locality = env->cfg->allow_set_locality;
	/* sysfs names the device with '!' for each '/' of DEVNAME. */
	snprintf(f->sysfs, sizeof(f->sysfs), "/sys/class/cuse/%s", cc->name);
	for (char *p = f->sysfs + strlen("/sys/class/cuse/"); *p; p++) {
		if (*p == '/')
			*p = '!';
	}
	ret = cuse_precheck(f, cc);
	if (ret < 0)
		goto fail;

	snprintf(devname, sizeof(devname), "DEVNAME=%s", cc->name);
	memset(&ci, 0, sizeof(ci));
	ci.dev_major = cc->major;
	ci.dev_minor = cc->minor;
	ci.dev_info_argc = 1;
	ci.dev_info_argv = dev_info;
	ci.flags = 0;		/* restricted ioctls, as swtpm */
	f->se = cuse_lowlevel_new(&args, &ci, &cuse_ops, f);
	/* libfuse copied what it parsed; its option parser may have allocated args. */
	fuse_opt_free_args(&args);
	if (!f->se) {
		log_err("cuse: cannot create the libfuse session");
		ret = -ENOMEM;
		goto fail;
	}
	if (env->made)
		env->made(env->arg, cc->name);
	/* Listening before the kernel can make the device: its uevent tells the front is ready. */
	ret = node_wait_open(&f->nodes, env->loop, "cuse", CUSE_READY_TIMEOUT_MSEC, &cuse_node_ops, f);
	if (ret < 0)
		goto fail;
	ret = node_wait_add(f->nodes, "cuse", cc->name, f->sysfs);
	if (ret < 0)
		goto fail;
	fd = cuse_open_channel();
	if (fd < 0) {
		ret = fd;
		goto fail;
	}
	/* libfuse adopts an open fd given as /dev/fd/N: no mount, no fork. */
	snprintf(mount, sizeof(mount), "/dev/fd/%d", fd);
	if (fuse_session_mount(f->se, mount) != 0) {
		log_err("cuse: libfuse did not take /dev/cuse");
		close(fd);
		ret = -EIO;
		goto fail;
	}
	ret = cuse_wait_created(f);
	if (ret < 0) {
		if (ret == -ETIMEDOUT)
			log_err("cuse: the kernel did not answer CUSE_INIT");
		else
			log_err("cuse: the kernel refused to create /dev/%s (name or device number %u:%u "
				"taken, or a major the kernel does not allow)", cc->name, cc->major, cc->minor);
		goto fail;
	}
	f->watch.fd = fuse_session_fd(f->se);
	f->watch.fn = cuse_event;
	ret = loop_watch(env->loop, &f->watch, EPOLLIN);
	if (ret < 0)
		goto fail;
	ret = node_wait_start(f->nodes);
	if (ret < 0)
		goto fail;
	*out = (struct front *)f;
	return 0;

fail:
	cuse_front_close((struct front *)f);
	return ret;
}

/*
 * Once serving: the device's uevent (node-wait.c).  libfuse reads requests
 * with read() and answers with writev(), both in the base list; the
 * kernel's CUSE_INIT leaves splice off.
 */
static const int cuse_front_syscalls[] = {
	SCMP_SYS(recvmsg), SANDBOX_LIST_END
};

const struct front_ops cuse_front_ops = {
	.name = "cuse",
	.open = cuse_front_open,
	.close = cuse_front_close,
	.syscalls = cuse_front_syscalls,
};
