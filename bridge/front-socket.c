/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The socket front: the ctrl and data channels of `swtpm socket`.
 *
 * Every connection is a non-blocking stream with an input buffer, parsed
 * as a stream: ctrl messages by their code's exact payload length
 * (ctrl-msg.c), TPM commands by their header's size or, for a TPM 2, by
 * the simulator's send-command prefix (tpm-frame.h).  So split, coalesced
 * and pipelined input is answered right and no peer can block another.
 * One message per connection is in flight; replies leave in order.
 * All connections of this front share one core client (one locality,
 * as QEMU expects: it caches the locality across resets).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <ptm.h>
#include <seccomp.h>
#include <vtpm_proxy.h>

#include "cli.h"
#include "bytes.h"
#include "core.h"
#include "ctrl-msg.h"
#include "front.h"
#include "log.h"
#include "loop.h"
#include "sandbox.h"
#include "tpm-frame.h"

#define ACCEPT_PAUSE_MSEC	100
#define ACCEPT_BATCH		256	/* connections taken per wake-up, so a flood cannot starve the rest */
#define CLOSE_FLUSH_MSEC	1000	/* at exit, how long queued replies may take to leave */
#define LISTEN_BACKLOG		64
#define CTRL_MAX_FDS		8	/* room for descriptors received at once; extra ones are closed */

enum conn_kind { CONN_CTRL, CONN_DATA };

struct socket_front;

struct conn {
	struct loop_watch watch;
	struct socket_front *front;
	struct conn *prev, *next;
	enum conn_kind kind;
	bool closing;
	bool busy;			/* a message is with the core */
	bool processing;		/* conn_process() is on the stack */
	bool ends_front;		/* its close ends the daemon (--terminate) */
	bool hangup;			/* close once the output is flushed */
	uint32_t op;			/* ctrl: the code being answered */
	int passed_fd;			/* ctrl: an fd that came with SCM_RIGHTS */
	struct ctrl_stream stream;	/* ctrl: how this client pads 1-byte payloads */
	size_t discard;			/* data: bytes of an oversized command still to skip */
	bool mssim;			/* data: the command being answered came in the simulator's framing */
	uint8_t *in;
	size_t in_len, in_cap;
	uint8_t *out;
	size_t out_len, out_cap;
	struct loop_deferred release;
};

struct listener {
	struct loop_watch watch;
	struct socket_front *front;
	enum conn_kind kind;
	const struct cli_endpoint *ep;
	const char *unlink_path;	/* the socket file we created */
};

struct socket_front {
	struct front_env env;
	struct core_client client;
	struct listener ctrl, data;
	struct conn *conns;
	struct conn *datafd;		/* the data channel given by CMD_SET_DATAFD */
	struct loop_watch accept_timer;	/* re-arms listeners after EMFILE */
	bool disconnect;		/* --server ...,disconnect */
	bool mssim;			/* TPM 2: the simulator's send-command prefix is recognised, as swtpm */
};

static void conn_process(struct conn *c);
static void conn_close(struct conn *c);

/* ---- connections: buffers and I/O shared by ctrl and data ---- */

static uint32_t conn_events(const struct conn *c)
{
	if (c->out_len)
		return EPOLLOUT;
	return c->busy || c->hangup ? 0 : EPOLLIN;
}

static void conn_update(struct conn *c)
{
	if (!c->closing && loop_watch(c->front->env.loop, &c->watch, conn_events(c)) < 0)
		conn_close(c);
}

static int conn_reserve(uint8_t **buf, size_t *cap, size_t need)
{
	size_t n = *cap ? *cap : 256;
	uint8_t *grown;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	grown = realloc(*buf, n);
	if (!grown)
		return -ENOMEM;
	*buf = grown;
	*cap = n;
	return 0;
}

/* Sends a reply in parts: at once if the socket takes it, else the rest waits for EPOLLOUT. */
static void conn_send(struct conn *c, const struct iovec *iov, int n_iov)
{
	size_t total = 0;
	ssize_t n = 0;

	if (c->closing)
		return;
	for (int i = 0; i < n_iov; i++)
		total += iov[i].iov_len;
	if (!c->out_len) {
		n = writev(c->watch.fd, iov, n_iov);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			log_debug("%s connection: write failed: %s", c->kind == CONN_CTRL ? "ctrl" : "data",
				  strerror(errno));
			conn_close(c);
			return;
		}
		if (n < 0)
			n = 0;
	}
	if ((size_t)n == total)
		return;
	if (conn_reserve(&c->out, &c->out_cap, c->out_len + total - (size_t)n) < 0) {
		conn_close(c);
		return;
	}
	for (int i = 0; i < n_iov; i++) {
		size_t skip = (size_t)n < iov[i].iov_len ? (size_t)n : iov[i].iov_len;

		n -= (ssize_t)skip;
		if (iov[i].iov_len == skip)
			continue;	/* all sent, or an empty part (its base may be NULL) */
		memcpy(c->out + c->out_len, (uint8_t *)iov[i].iov_base + skip, iov[i].iov_len - skip);
		c->out_len += iov[i].iov_len - skip;
	}
}

static void conn_flush(struct conn *c)
{
	ssize_t n = write(c->watch.fd, c->out, c->out_len);

	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			conn_close(c);
		return;
	}
	memmove(c->out, c->out + n, c->out_len - (size_t)n);
	c->out_len -= (size_t)n;
	if (!c->out_len && c->hangup)
		conn_close(c);
}

/*
 * Closes the connection once what is queued for it has been sent; nothing
 * more is read or answered.  The input stays as it is: a caller may still
 * be consuming the message it just framed.
 */
static void conn_hangup(struct conn *c)
{
	c->hangup = true;
	if (!c->out_len)
		conn_close(c);
	else if (!c->processing)
		conn_update(c);
}

static void conn_consume(struct conn *c, size_t n)
{
	memmove(c->in, c->in + n, c->in_len - n);
	c->in_len -= n;
}

/*
 * Keeps the first descriptor that came with ctrl bytes (for CMD_SET_DATAFD)
 * and closes every other one, so a peer cannot make us hold descriptors.
 * (Descriptors beyond the control buffer were never installed: MSG_CTRUNC.)
 */
static void conn_take_fds(struct conn *c, struct msghdr *msg)
{
	for (struct cmsghdr *cmsg = CMSG_FIRSTHDR(msg); cmsg; cmsg = CMSG_NXTHDR(msg, cmsg)) {
		size_t nfds;

		if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS ||
		    cmsg->cmsg_len < CMSG_LEN(0))
			continue;
		nfds = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < nfds; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
			if (c->passed_fd < 0)
				c->passed_fd = fd;
			else
				close(fd);
		}
	}
	if (msg->msg_flags & MSG_CTRUNC)
		log_debug("ctrl connection: more descriptors than one; the rest were dropped");
}

/* Reads what is there; ctrl reads take an SCM_RIGHTS fd along. false on EOF or error. */
static bool conn_read(struct conn *c)
{
	size_t room;
	ssize_t n;

	if (conn_reserve(&c->in, &c->in_cap, c->in_len + 4096) < 0)
		return false;
	room = c->in_cap - c->in_len;
	if (c->kind == CONN_CTRL) {
		union {
			struct cmsghdr align;
			char buf[CMSG_SPACE(CTRL_MAX_FDS * sizeof(int))];
		} control;
		struct iovec iov = { c->in + c->in_len, room };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
				      .msg_control = control.buf, .msg_controllen = sizeof(control.buf) };

		n = recvmsg(c->watch.fd, &msg, MSG_CMSG_CLOEXEC);
		if (n > 0)
			conn_take_fds(c, &msg);
	} else {
		n = read(c->watch.fd, c->in + c->in_len, room);
	}
	if (n < 0)
		return errno == EAGAIN || errno == EINTR;
	if (n == 0)
		return false;
	c->in_len += (size_t)n;
	return true;
}

static void conn_event(struct loop_watch *watch, uint32_t events)
{
	struct conn *c = (struct conn *)watch;

	if (events & EPOLLERR) {
		conn_close(c);
		return;
	}
	if (events & EPOLLOUT) {
		conn_flush(c);
		if (c->closing)
			return;
	}
	if (events & (EPOLLIN | EPOLLHUP)) {
		/*
		 * epoll reports a hang-up even while we wait for the core, and
		 * would report it again at once: a gone peer gets no answer.
		 */
		if ((c->busy || c->out_len) && (events & EPOLLHUP)) {
			conn_close(c);
			return;
		}
		if (!c->busy && !c->out_len && !c->hangup && !conn_read(c)) {
			conn_close(c);
			return;
		}
	}
	conn_process(c);
}

static void conn_release(struct loop_deferred *d)
{
	struct conn *c = (struct conn *)((char *)d - offsetof(struct conn, release));

	free(c->in);
	free(c->out);
	free(c);
}

static void conn_close(struct conn *c)
{
	struct socket_front *f = c->front;

	if (c->closing)
		return;
	c->closing = true;
	core_withdraw(f->env.core, c);
	loop_unwatch(f->env.loop, &c->watch);
	close(c->watch.fd);
	if (c->passed_fd >= 0)
		close(c->passed_fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		f->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (f->datafd == c)
		f->datafd = NULL;
	log_debug("%s connection closed", c->kind == CONN_CTRL ? "ctrl" : "data");
	/* A later event of this loop batch may still name it. */
	c->release.fn = conn_release;
	loop_defer(f->env.loop, &c->release);
	if (c->ends_front)
		f->env.quit(f->env.arg);
}

static struct conn *conn_new(struct socket_front *f, int fd, enum conn_kind kind)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c) {
		close(fd);
		return NULL;
	}
	c->front = f;
	c->kind = kind;
	c->passed_fd = -1;
	c->watch.fd = fd;
	c->watch.fn = conn_event;
	if (loop_watch(f->env.loop, &c->watch, EPOLLIN) < 0) {
		close(fd);
		free(c);
		return NULL;
	}
	c->next = f->conns;
	if (f->conns)
		f->conns->prev = c;
	f->conns = c;
	/* --terminate: the data channel's end is the daemon's; --ctrl ...,terminate: the ctrl client's. */
	c->ends_front = kind == CONN_DATA ? f->env.cfg->terminate : f->env.cfg->ctrl.terminate;
	return c;
}

/* ---- the data channel ---- */

/* A response, in the simulator's framing when its command came in it. */
static void data_send(struct conn *c, const uint8_t *resp, size_t len)
{
	static const uint8_t trailer[MSSIM_TRAILER_SIZE];
	uint8_t size[4];
	struct iovec iov[3] = {
		{ size, sizeof(size) },
		{ (void *)(uintptr_t)resp, len },
		{ (void *)(uintptr_t)trailer, sizeof(trailer) },
	};

	if (!c->mssim) {
		conn_send(c, iov + 1, 1);
		return;
	}
	put_be32(size, (uint32_t)len);
	conn_send(c, iov, 3);
}

static void data_reply(void *arg, const uint8_t *resp, size_t len)
{
	struct conn *c = arg;

	data_send(c, resp, len);
	c->busy = false;
	/* --server ...,disconnect: one response per connection. */
	if (c->front->disconnect)
		conn_hangup(c);
	else if (!c->processing)
		conn_process(c);
}

static void data_error(struct conn *c, uint32_t rc)
{
	uint8_t resp[TPM_HEADER_SIZE];

	core_error_response(c->front->env.core, rc, resp);
	data_send(c, resp, sizeof(resp));
}

static void locality_result(void *arg, const struct core_ctrl_reply *r)
{
	*(uint32_t *)arg = r->result;
}

/* Sets the front's locality by the core's rules (> 4, or 4 with reject-locality-4, refused). */
static uint32_t data_set_locality(struct socket_front *f, uint8_t locality)
{
	struct core_ctrl_req req = { .op = CMD_SET_LOCALITY, .locality = locality };
	uint32_t result = PTM_RES_FAIL;

	/* SET_LOCALITY is answered at once (core.h): `result` is set on return. */
	core_ctrl(&f->client, &req, locality_result, &result);
	return result;
}

/*
 * A command in the simulator's framing runs at its prefix's locality, and
 * only it: the core takes the client's locality when a command is
 * submitted, so the front's own is put back at once (CMD_SET_LOCALITY's:
 * QEMU and tpm2-tss's swtpm TCTI set it once and rely on it).  swtpm
 * instead makes the prefix's locality the process's, unchecked.
 */
static void data_submit_mssim(struct conn *c, const uint8_t *cmd, uint32_t size, uint8_t locality)
{
	struct socket_front *f = c->front;
	uint8_t saved = f->client.locality;
	bool inband = f->client.inband_locality && get_be32(cmd + 6) == VTPM_PROXY_SET_LOCALITY;

	if (data_set_locality(f, locality) != PTM_RES_SUCCESS) {
		log_debug("data connection: locality %u refused", locality);
		data_error(c, core_locality_rc(f->env.core));
		return;
	}
	/* It sets the front's locality itself, whenever it runs. */
	if (inband)
		data_set_locality(f, saved);
	c->busy = true;
	core_submit(&f->client, cmd, size, data_reply, c);
	if (!inband)
		data_set_locality(f, saved);
}

/* One step over the input: false when it needs more bytes or must stop. */
static bool data_step(struct conn *c)
{
	struct socket_front *f = c->front;
	struct core *core = f->env.core;
	struct tpm_frame_info fr;

	if (c->discard) {
		size_t n = c->in_len < c->discard ? c->in_len : c->discard;

		conn_consume(c, n);
		c->discard -= n;
		if (c->discard)
			return false;
		data_error(c, core_command_size_rc(core));
		return true;
	}
	switch (tpm_frame(c->in, c->in_len, core_max_command(core), f->mssim, &fr)) {
	case TPM_FRAME_MORE:
		return false;
	case TPM_FRAME_END:
		log_debug("data connection: the simulator client ended its session");
		conn_hangup(c);
		return false;
	case TPM_FRAME_BROKEN:
		/* No way to find the next command's start: answer, then hang up. */
		log_debug("data connection: command size %u cannot be framed; closing", fr.size);
		c->mssim = fr.mssim;
		data_error(c, core_command_size_rc(core));
		conn_hangup(c);
		return false;
	case TPM_FRAME_OVERSIZE:
		c->mssim = fr.mssim;
		c->discard = fr.len;
		return true;
	case TPM_FRAME_COMMAND:
		break;
	}
	c->mssim = fr.mssim;
	if (fr.mssim) {
		data_submit_mssim(c, c->in + fr.offset, fr.size, fr.locality);
	} else {
		c->busy = true;
		core_submit(&f->client, c->in, fr.size, data_reply, c);
	}
	if (!c->closing)
		conn_consume(c, fr.len);
	return true;
}

/* ---- the ctrl channel ---- */

static void ctrl_reply(void *arg, const struct core_ctrl_reply *r)
{
	struct conn *c = arg;
	uint8_t hdr[CTRL_MSG_REPLY_HDR];
	struct core_ctrl_reply copy;
	const uint8_t *data;
	size_t hdr_len, data_len;

	if (c->op == CMD_GET_CAPABILITY) {
		copy = *r;
		copy.caps |= PTM_CAP_SET_DATAFD | (c->front->mssim ? PTM_CAP_SEND_COMMAND_HEADER : 0);
		r = &copy;
	}
	hdr_len = ctrl_msg_encode(c->op, r, hdr, &data, &data_len);
	conn_send(c, (struct iovec[]){ { hdr, hdr_len }, { (void *)(uintptr_t)data, data_len } }, data_len ? 2 : 1);
	c->busy = false;
	if (!c->processing)
		conn_process(c);
}

static void ctrl_result(struct conn *c, uint32_t result)
{
	uint8_t hdr[CTRL_MSG_REPLY_HDR];

	conn_send(c, &(struct iovec){ hdr, ctrl_msg_encode_result(result, hdr) }, 1);
}

static int socket_set_nonblock(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/* CMD_SET_DATAFD: the fd that came with the message becomes a data channel. */
static uint32_t ctrl_set_datafd(struct conn *c)
{
	struct socket_front *f = c->front;
	struct conn *data;
	int fd = c->passed_fd;

	c->passed_fd = -1;
	/* One data channel: a --server endpoint holds the slot for good (swtpm: 0x1f). */
	if (f->datafd || f->env.cfg->server.set) {
		if (fd >= 0)
			close(fd);
		return PTM_RES_IOERROR;
	}
	if (fd < 0)
		return PTM_RES_BAD_PARAMETER;
	if (socket_set_nonblock(fd) < 0) {
		close(fd);
		return PTM_RES_BAD_PARAMETER;
	}
	data = conn_new(f, fd, CONN_DATA);
	if (!data)
		return PTM_RES_FAIL;
	f->datafd = data;
	return PTM_RES_SUCCESS;
}

static bool ctrl_step(struct conn *c)
{
	struct core_ctrl_req req;
	uint32_t result;
	size_t pad;
	ssize_t n = ctrl_msg_next(&c->stream, c->in, c->in_len, &pad);

	conn_consume(c, pad);
	if (n == 0)
		return false;
	if (n < 0) {
		log_debug("ctrl connection: message payload over the bound; closing");
		ctrl_result(c, ctrl_msg_oversize_result(c->in));
		conn_hangup(c);
		return false;
	}
	c->op = ctrl_msg_code(c->in);
	if (c->op == CMD_SET_DATAFD) {
		ctrl_result(c, ctrl_set_datafd(c));
	} else if ((result = ctrl_msg_decode(c->in, (size_t)n, &req)) != PTM_RES_SUCCESS) {
		ctrl_result(c, result);
	} else {
		c->busy = true;
		core_ctrl(&c->front->client, &req, ctrl_reply, c);
	}
	if (!c->closing)
		conn_consume(c, (size_t)n);
	return true;
}

/* Answers every complete message in the input, one at a time, in order. */
static void conn_process(struct conn *c)
{
	c->processing = true;
	while (!c->closing && !c->hangup && !c->busy && !c->out_len) {
		if (!(c->kind == CONN_CTRL ? ctrl_step(c) : data_step(c)))
			break;
	}
	c->processing = false;
	conn_update(c);
}

/* ---- listeners ---- */

static void listener_event(struct loop_watch *watch, uint32_t events)
{
	struct listener *l = (struct listener *)watch;
	struct socket_front *f = l->front;
	int fd = -1, one = 1;

	(void)events;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		fd = accept4(watch->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			break;
		if (l->ep->tcp)
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		conn_new(f, fd, l->kind);
	}
	if (fd < 0 && (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)) {
		/* Out of descriptors: pause accepting rather than spin on the ready listener. */
		log_warn("cannot accept a connection: %s; pausing", strerror(errno));
		loop_unwatch(f->env.loop, watch);
		if (loop_timer_arm(&f->accept_timer, ACCEPT_PAUSE_MSEC) < 0)
			loop_watch(f->env.loop, watch, EPOLLIN);	/* no pause possible: keep serving */
	}
}

static void accept_resume(struct loop_watch *timer, uint32_t events)
{
	struct socket_front *f = (struct socket_front *)((char *)timer - offsetof(struct socket_front, accept_timer));
	uint64_t expirations;

	(void)events;
	if (read(timer->fd, &expirations, sizeof(expirations)) < 0)
		return;
	if (f->ctrl.watch.fd >= 0)
		loop_watch(f->env.loop, &f->ctrl.watch, EPOLLIN);
	if (f->data.watch.fd >= 0)
		loop_watch(f->env.loop, &f->data.watch, EPOLLIN);
}

/*
 * The socket is bound, listening and given its mode and owner under a
 * temporary name, then renamed into place: libvirt connects as soon as the
 * path exists, and a socket bound but not yet listening would refuse it.
 * A path too long for the temporary name is bound in place.
 */
static int listen_unix(const struct cli_endpoint *ep, const char *what)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	mode_t mode = ep->mode_set ? ep->mode : 0770;
	mode_t old_umask;
	struct stat st;
	bool in_place;
	int fd, ret;

	if (strlen(ep->path) >= sizeof(sun.sun_path)) {
		log_err("%s socket path %s is too long", what, ep->path);
		return -ENAMETOOLONG;
	}
	/* A stale socket of an earlier run is replaced; any other file is not. */
	if (lstat(ep->path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
		log_err("%s socket %s: exists and is not a socket", what, ep->path);
		return -EEXIST;
	}
	ret = snprintf(sun.sun_path, sizeof(sun.sun_path), "%s.%ld~", ep->path, (long)getpid());
	in_place = ret < 0 || (size_t)ret >= sizeof(sun.sun_path);
	if (in_place) {
		strcpy(sun.sun_path, ep->path);
		unlink(ep->path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(sun.sun_path);
	old_umask = umask(~mode & 0777);
	ret = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old_umask);
	if (ret < 0)
		goto fail;
	if (listen(fd, LISTEN_BACKLOG) < 0 || chmod(sun.sun_path, mode) < 0 ||
	    ((ep->uid_set || ep->gid_set) &&
	     chown(sun.sun_path, ep->uid_set ? ep->uid : (uid_t)-1, ep->gid_set ? ep->gid : (gid_t)-1) < 0) ||
	    (!in_place && rename(sun.sun_path, ep->path) < 0))
		goto fail_unlink;
	return fd;

fail_unlink:
	ret = -errno;
	unlink(sun.sun_path);
	goto out;
fail:
	ret = -errno;
out:
	log_errno(LOG_ERR, -ret, "%s socket %s", what, ep->path);
	close(fd);
	return ret;
}

static int listen_tcp(const struct cli_endpoint *ep, const char *what)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV | AI_NUMERICHOST };
	const char *addr = ep->bindaddr ? ep->bindaddr : "127.0.0.1";
	struct addrinfo *ai;
	char port[8];
	int fd, one = 1, ret;

	snprintf(port, sizeof(port), "%u", ep->port);
	ret = getaddrinfo(addr, port, &hints, &ai);
	if (ret) {
		log_err("%s: bind address %s: %s", what, addr, gai_strerror(ret));
		return -EINVAL;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
		ret = -errno;
		close(fd);
		goto out;
	}
	ret = fd;
out:
	if (ret < 0)
		log_errno(LOG_ERR, -ret, "%s socket on %s port %u", what, addr, ep->port);
	freeaddrinfo(ai);
	return ret;
}

static bool fd_is_listening(int fd)
{
	int yes = 0;
	socklen_t len = sizeof(yes);

	return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &yes, &len) == 0 && yes;
}

/* Opens one --ctrl or --server channel: a listener, or a connected fd given to us. */
static int endpoint_open(struct socket_front *f, struct listener *l, const struct cli_endpoint *ep,
			 enum conn_kind kind)
{
	const char *what = kind == CONN_CTRL ? "ctrl" : "data";
	int fd = ep->clientfd >= 0 ? ep->clientfd : ep->fd;
	int ret;

	l->front = f;
	l->kind = kind;
	l->ep = ep;
	l->watch.fd = -1;
	if (!ep->set)
		return 0;
	if (fd >= 0) {
		struct stat st;

		if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode)) {
			log_err("%s channel: fd %d is not a socket", what, fd);
			return -EBADF;
		}
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		if ((ret = socket_set_nonblock(fd)) < 0)
			return ret;
		if (!fd_is_listening(fd)) {
			/* clientfd=, or swtpm_setup's --server type=tcp,fd=: an open stream. */
			return conn_new(f, fd, kind) ? 0 : -ENOMEM;
		}
	} else {
		fd = ep->tcp ? listen_tcp(ep, what) : listen_unix(ep, what);
		if (fd < 0)
			return fd;
		if (!ep->tcp)
			l->unlink_path = ep->path;
	}
	l->watch.fd = fd;
	l->watch.fn = listener_event;
	ret = loop_watch(f->env.loop, &l->watch, EPOLLIN);
	if (ret < 0) {
		close(fd);
		l->watch.fd = -1;
	}
	return ret;
}

static void listener_close(struct socket_front *f, struct listener *l)
{
	if (l->watch.fd < 0)
		return;
	loop_unwatch(f->env.loop, &l->watch);
	close(l->watch.fd);
	l->watch.fd = -1;
	if (l->unlink_path)
		unlink(l->unlink_path);
}

static long msec_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

/* At exit, replies still queued (a SHUTDOWN's, a failed start's errors) leave, within a bound. */
static void socket_front_flush(struct socket_front *f)
{
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (struct conn *c = f->conns; c; c = c->next) {
		size_t done = 0;

		while (done < c->out_len) {
			struct pollfd p = { .fd = c->watch.fd, .events = POLLOUT };
			long left = CLOSE_FLUSH_MSEC - msec_since(&t0);
			ssize_t n;

			if (left <= 0 || poll(&p, 1, (int)left) <= 0)
				break;
			n = write(c->watch.fd, c->out + done, c->out_len - done);
			if (n < 0 && errno != EAGAIN && errno != EINTR)
				break;
			if (n > 0)
				done += (size_t)n;
		}
		if (done < c->out_len)
			log_debug("%zu bytes of replies not sent at exit", c->out_len - done);
	}
}

static void socket_front_close(struct front *front)
{
	struct socket_front *f = (struct socket_front *)front;

	if (!f)
		return;
	socket_front_flush(f);
	while (f->conns)
		conn_close(f->conns);
	listener_close(f, &f->ctrl);
	listener_close(f, &f->data);
	loop_timer_destroy(f->env.loop, &f->accept_timer);
	/* Closed connections are freed by the loop's deferred list (loop_destroy() runs it). */
	free(f);
}

static int socket_front_open(struct front **out, const struct front_env *env)
{
	struct socket_front *f = calloc(1, sizeof(*f));
	int ret;

	if (!f)
		return -ENOMEM;
	f->env = *env;
	f->disconnect = env->cfg->server.disconnect;
	f->mssim = env->cfg->tpm2;
	f->ctrl.watch.fd = f->data.watch.fd = -1;
	core_client_init(&f->client, env->core, "socket");
	f->client.inband_locality = env->cfg->allow_set_locality;
	ret = loop_timer_create(env->loop, &f->accept_timer, accept_resume);
	if (ret < 0)
		goto fail;
	ret = endpoint_open(f, &f->ctrl, &env->cfg->ctrl, CONN_CTRL);
	if (ret < 0)
		goto fail;
	ret = endpoint_open(f, &f->data, &env->cfg->server, CONN_DATA);
	if (ret < 0)
		goto fail;
	*out = (struct front *)f;
	env->ready(env->arg);
	return 0;

fail:
	socket_front_close((struct front *)f);
	return ret;
}

/* Once serving: connections (TCP_NODELAY on each), and CMD_SET_DATAFD's descriptor with its message. */
static const int socket_front_syscalls[] = {
	SCMP_SYS(accept4), SCMP_SYS(setsockopt), SCMP_SYS(recvmsg), SANDBOX_LIST_END
};

const struct front_ops socket_front_ops = {
	.name = "socket",
	.open = socket_front_open,
	.close = socket_front_close,
	.syscalls = socket_front_syscalls,
};
