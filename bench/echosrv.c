/*
 * echosrv.c - the IPC floor: a server that answers each message with one
 * read() and one write(), nothing else.  What any socket daemon pays to
 * move a TPM command and its response, without the TPM.
 *
 * Usage: echosrv -m block|epoll (-u PATH | -t PORT) [-P CPU] [-T [-p PERMALL]]
 *   block  accept(), then read()+write() per message on a blocking socket
 *   epoll  non-blocking sockets behind epoll_wait(), one wait per message,
 *          as an event-loop daemon does
 * Message format (rtt -E builds it): a TPM-like 10-byte header whose size
 * field is the request length and whose command-code field holds the
 * length of the reply to send.  The reply is that many bytes, with the
 * request's header and the reply length in its size field, so a client
 * frames it like a TPM response.  Requests are the same length as the TPM
 * commands they stand in for; replies the same length as their responses.
 * Runs until killed; serves one connection at a time (block) or many (epoll).
 *
 * -T (the least a socket TPM daemon can do): the reply is the response of
 * libtpms in this process (NVRAM in memory, tpmmem.c) to the request, a
 * real TPM command; -p PERMALL starts from that state.  Same loop, same
 * syscalls; what is added is libtpms, with its effect on the caches.
 */
#include "common.h"
#include "tpmmem.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MSG_MAX 8192

struct conn {
	int fd;
	size_t got;
	uint8_t buf[MSG_MAX];
};

static int listen_on(const char *path, int port)
{
	int fd, one = 1;

	if (path) {
		struct sockaddr_un a = { .sun_family = AF_UNIX };

		if (strlen(path) >= sizeof(a.sun_path))
			bench_die("socket path too long: %s", path);
		memcpy(a.sun_path, path, strlen(path) + 1);
		unlink(path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)))
			bench_die("bind %s: %s", path, strerror(errno));
	} else {
		struct sockaddr_in a = { .sin_family = AF_INET };

		a.sin_port = htons((uint16_t)port);
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			bench_die("socket: %s", strerror(errno));
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&a, sizeof(a)))
			bench_die("bind 127.0.0.1:%d: %s", port, strerror(errno));
	}
	if (listen(fd, 16))
		bench_die("listen: %s", strerror(errno));
	return fd;
}

/* After a read: 1 when a whole message is in c->buf, 0 when more is needed,
 * -1 for a malformed one. */
static int msg_complete(const struct conn *c)
{
	uint32_t want;

	if (c->got < 10)
		return 0;
	want = be32_at(c->buf + 2);
	if (want < 10 || want > MSG_MAX || c->got > want)
		return -1;
	return c->got == want;
}

static int with_tpm;

/* one write() of the reply; 0 or -1 */
static int reply(struct conn *c)
{
	uint32_t len = be32_at(c->buf + 6);

	if (with_tpm) {
		size_t n;
		const uint8_t *rsp = tpmmem_process(c->buf, c->got, &n);

		c->got = 0;
		return rsp && write(c->fd, rsp, n) == (ssize_t)n ? 0 : -1;
	}

	if (len < 10 || len > MSG_MAX)
		return -1;
	be32_put(c->buf + 2, len);
	c->got = 0;
	return write(c->fd, c->buf, len) == (ssize_t)len ? 0 : -1;
}

static void set_nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void serve_blocking(int lfd)
{
	static struct conn c;

	for (;;) {
		c.fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (c.fd < 0)
			continue;
		set_nodelay(c.fd);
		c.got = 0;
		for (;;) {
			ssize_t r = read(c.fd, c.buf + c.got, MSG_MAX - c.got);
			int done;

			if (r <= 0)
				break;
			c.got += (size_t)r;
			done = msg_complete(&c);
			if (done < 0 || (done && reply(&c)))
				break;
		}
		close(c.fd);
	}
}

static void serve_epoll(int lfd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL }, evs[16];
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (ep < 0 || fcntl(lfd, F_SETFL, O_NONBLOCK) ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev))
		bench_die("epoll set-up: %s", strerror(errno));
	for (;;) {
		int n = epoll_wait(ep, evs, 16, -1);

		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			ssize_t r;

			if (!c) {
				int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

				if (fd < 0)
					continue;
				set_nodelay(fd);
				c = calloc(1, sizeof(*c));
				if (!c)
					bench_die("out of memory");
				c->fd = fd;
				ev.events = EPOLLIN;
				ev.data.ptr = c;
				if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev))
					bench_die("epoll_ctl: %s", strerror(errno));
				continue;
			}
			r = read(c->fd, c->buf + c->got, MSG_MAX - c->got);
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (r > 0) {
				int done;

				c->got += (size_t)r;
				done = msg_complete(c);
				if (done == 0 || (done > 0 && !reply(c)))
					continue;
			}
			close(c->fd);	/* also removes it from the epoll set */
			free(c);
		}
	}
}

int main(int argc, char **argv)
{
	const char *mode = NULL, *path = NULL;
	int port = 0, lfd, o;

	bench_init();
	while ((o = getopt(argc, argv, "m:u:t:P:Tp:")) != -1) {
		switch (o) {
		case 'm':
			mode = optarg;
			break;
		case 'u':
			path = optarg;
			break;
		case 't':
			port = (int)bench_parse_long(optarg, 1, 65535, "-t");
			break;
		case 'P':
			bench_pin_cpu((int)bench_parse_long(optarg, 0, 4095, "-P"));
			break;
		case 'T':
			with_tpm = 1;
			break;
		case 'p':
			tpmmem_preload(optarg);
			break;
		default:
			goto usage;
		}
	}
	if (!mode || (!path && !port) || (path && port))
		goto usage;
	if (with_tpm) {
		struct tpm_cmd c;
		size_t n;
		const uint8_t *rsp;

		tpm_cmd_startup_clear(&c);
		if (tpmmem_init() || !(rsp = tpmmem_process(c.b, c.n, &n)) || tpm_rsp_code(rsp))
			bench_die("libtpms start-up failed");
	}
	lfd = listen_on(path, port);
	if (!strcmp(mode, "block"))
		serve_blocking(lfd);
	else if (!strcmp(mode, "epoll"))
		serve_epoll(lfd);
usage:
	fprintf(stderr, "usage: echosrv -m block|epoll (-u PATH | -t PORT) [-P CPU] [-T [-p PERMALL]]\n");
	return 2;
}
