/* SPDX-License-Identifier: BSD-3-Clause */
#include "uevent.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/netlink.h>

#include <netlink/netlink.h>
#include <netlink/socket.h>

#include "log.h"
#include "loop.h"

/*
 * The kernel's message is "ACTION@DEVPATH\0" plus an environment of at
 * most UEVENT_BUFFER_SIZE (2048) bytes that holds DEVPATH= again, so it
 * stays under 4.2 KiB; anything longer arrives truncated and is dropped.
 */
#define UEVENT_RECV_SIZE	8192
/* Room for a burst of events while the loop is busy elsewhere. */
#define UEVENT_RCVBUF		(256 * 1024)
/* The kernel's dev_t: 12 bits of major, 20 of minor (MINORBITS). */
#define UEVENT_MAJOR_MAX	0xfffu
#define UEVENT_MINOR_MAX	0xfffffu

/* ---- the message ---- */

/* Canonical decimal ("0" or no leading zero), at most max; else -EINVAL. */
static int uevent_number(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (*s == '\0' || (s[0] == '0' && s[1] != '\0'))
		return -EINVAL;
	for (; *s; s++) {
		unsigned int d = (unsigned int)(*s - '0');

		if (d > 9 || d > max || v > (max - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

enum uevent_key {
	KEY_ACTION,
	KEY_DEVPATH,
	KEY_SUBSYSTEM,
	KEY_DEVNAME,
	KEY_MAJOR,
	KEY_MINOR,
	KEY_SEQNUM,
	KEY_COUNT,
};

static const char *const uevent_keys[KEY_COUNT] = {
	[KEY_ACTION] = "ACTION",
	[KEY_DEVPATH] = "DEVPATH",
	[KEY_SUBSYSTEM] = "SUBSYSTEM",
	[KEY_DEVNAME] = "DEVNAME",
	[KEY_MAJOR] = "MAJOR",
	[KEY_MINOR] = "MINOR",
	[KEY_SEQNUM] = "SEQNUM",
};

static int uevent_key_index(const char *key, size_t key_len)
{
	for (int i = 0; i < KEY_COUNT; i++)
		if (strlen(uevent_keys[i]) == key_len && !memcmp(uevent_keys[i], key, key_len))
			return i;
	return -1;
}

/* The values of the keys we read, or NULL; -EINVAL for a malformed field or a repeated key. */
static int uevent_fields(const char *p, const char *end, const char *val[KEY_COUNT])
{
	while (p < end) {
		/* p[...] ends with a NUL before end: the caller checked end[-1]. */
		size_t flen = strlen(p);
		const char *eq = memchr(p, '=', flen);
		int k;

		if (!eq || eq == p)
			return -EINVAL;
		k = uevent_key_index(p, (size_t)(eq - p));
		if (k >= 0) {
			if (val[k])
				return -EINVAL;
			val[k] = eq + 1;
		}
		p += flen + 1;
	}
	return 0;
}

int uevent_parse(const char *buf, size_t len, struct uevent *out)
{
	const char *val[KEY_COUNT] = { NULL };
	const char *at, *devpath;
	uint64_t major = 0, minor = 0, seqnum;
	size_t hlen;

	/* Every field, the last too, must end inside the buffer: then strlen() is bounded. */
	if (len == 0 || buf[len - 1] != '\0')
		return -EINVAL;
	hlen = strlen(buf);
	/*
	 * The action never holds '@'; a devpath may ("soc@0").  libudev's
	 * monitor messages start "libudev\0": no '@', so they end here.
	 */
	at = memchr(buf, '@', hlen);
	if (!at || at == buf || at[1] != '/')
		return -EINVAL;
	devpath = at + 1;
	if (uevent_fields(buf + hlen + 1, buf + len, val) < 0)
		return -EINVAL;

	/* The header and the fields say the same, as the kernel writes both. */
	if (!val[KEY_ACTION] || strlen(val[KEY_ACTION]) != (size_t)(at - buf) ||
	    memcmp(val[KEY_ACTION], buf, (size_t)(at - buf)))
		return -EINVAL;
	if (!val[KEY_DEVPATH] || strcmp(val[KEY_DEVPATH], devpath))
		return -EINVAL;
	if (!val[KEY_SEQNUM] || uevent_number(val[KEY_SEQNUM], UINT64_MAX, &seqnum) < 0)
		return -EINVAL;
	if (!val[KEY_MAJOR] != !val[KEY_MINOR])
		return -EINVAL;
	if (val[KEY_MAJOR] && (uevent_number(val[KEY_MAJOR], UEVENT_MAJOR_MAX, &major) < 0 ||
			       uevent_number(val[KEY_MINOR], UEVENT_MINOR_MAX, &minor) < 0))
		return -EINVAL;
	if ((val[KEY_SUBSYSTEM] && !*val[KEY_SUBSYSTEM]) || (val[KEY_DEVNAME] && !*val[KEY_DEVNAME]))
		return -EINVAL;

	*out = (struct uevent) {
		.action = val[KEY_ACTION],
		.devpath = devpath,
		.subsystem = val[KEY_SUBSYSTEM],
		.devname = val[KEY_DEVNAME],
		.major = (unsigned int)major,
		.minor = (unsigned int)minor,
		.has_devnum = val[KEY_MAJOR] != NULL,
		.seqnum = seqnum,
	};
	return 0;
}

/* ---- the listener ---- */

struct uevent_listener {
	struct loop *loop;
	struct nl_sock *sk;
	struct loop_watch watch;
	struct loop_deferred release;
	uevent_fn *fn;
	void (*lost)(void *arg);
	void *arg;
	bool closed;
	char buf[UEVENT_RECV_SIZE];
};

/*
 * libnl maps errno to its own codes and folds those it does not know
 * (EMFILE, ENFILE, ...) into NLE_FAILURE; its error paths only close()
 * after the failing call, so errno (cleared before the call) still names
 * the cause.  The code is the fallback for a check that set no errno.
 */
static int uevent_nl_errno(int nlerr)
{
	if (errno > 0)
		return -errno;
	return nlerr == -NLE_NOMEM ? -ENOMEM : -EIO;
}

/*
 * A larger buffer than rmem_max allows needs CAP_NET_ADMIN
 * (SO_RCVBUFFORCE); without it SO_RCVBUF gets what the sysctl allows.
 * A small buffer only means more lost() calls, so neither is fatal.
 */
static void uevent_set_rcvbuf(int fd)
{
	int size = UEVENT_RCVBUF;

	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) == 0)
		return;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size)) < 0)
		log_errno(LOG_DEBUG, errno, "uevent: SO_RCVBUF");
}

/* libnl has made the socket SOCK_CLOEXEC since 3.1, where the libc knows the flag; make sure. */
static int uevent_set_cloexec(int fd)
{
	int flags = fcntl(fd, F_GETFD);

	if (flags < 0)
		return -errno;
	if (!(flags & FD_CLOEXEC) && fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0)
		return -errno;
	return 0;
}

static void uevent_listener_take(struct uevent_listener *l, const struct msghdr *msg, size_t n)
{
	const struct sockaddr_nl *src = msg->msg_name;
	struct uevent ev;

	/*
	 * Any local process may unicast to a netlink port; only the kernel
	 * sends from port 0 (a process with CAP_SYS_ADMIN over our network
	 * namespace can inject through it, and is trusted as the kernel is).
	 */
	if (msg->msg_namelen != sizeof(*src) || src->nl_family != AF_NETLINK || src->nl_pid != 0) {
		log_debug("uevent: dropped %zu bytes from port %u", n,
			  msg->msg_namelen == sizeof(*src) ? src->nl_pid : 0u);
		return;
	}
	if (msg->msg_flags & MSG_TRUNC) {
		log_warn("uevent: dropped a kernel message longer than %zu bytes", sizeof(l->buf));
		l->lost(l->arg);
		return;
	}
	if (uevent_parse(l->buf, n, &ev) < 0) {
		log_warn("uevent: dropped an unreadable kernel message (%zu bytes)", n);
		l->lost(l->arg);
		return;
	}
	l->fn(l->arg, &ev);
}

/* Reads until EAGAIN; fn or lost may close the listener, which ends the reading. */
static void uevent_listener_read(struct loop_watch *watch, uint32_t events)
{
	struct uevent_listener *l = (struct uevent_listener *)((char *)watch -
							       offsetof(struct uevent_listener, watch));

	/* EPOLLERR is the pending ENOBUFS: recvmsg() reports and clears it. */
	(void)events;
	while (!l->closed) {
		struct sockaddr_nl src;
		struct iovec iov = { .iov_base = l->buf, .iov_len = sizeof(l->buf) };
		struct msghdr msg = {
			.msg_name = &src, .msg_namelen = sizeof(src),
			.msg_iov = &iov, .msg_iovlen = 1,
		};
		ssize_t n = recvmsg(l->watch.fd, &msg, 0);

		if (n >= 0) {
			uevent_listener_take(l, &msg, (size_t)n);
		} else if (errno == EINTR) {
			continue;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			return;
		} else if (errno == ENOBUFS) {
			/* Only the kernel's broadcasts overflow the socket: events were lost. */
			log_warn("uevent: the socket overflowed, kernel events were lost");
			l->lost(l->arg);
		} else {
			/* Not expected of a netlink socket; the loop will call again. */
			log_errno(LOG_ERR, errno, "uevent: recvmsg");
			l->lost(l->arg);
			return;
		}
	}
}

int uevent_listener_open(struct uevent_listener **out, struct loop *loop, uevent_fn *fn,
			 void (*lost)(void *arg), void *arg)
{
	struct uevent_listener *l = calloc(1, sizeof(*l));
	int ret;

	if (!l)
		return -ENOMEM;
	l->loop = loop;
	l->fn = fn;
	l->lost = lost;
	l->arg = arg;

	errno = 0;
	l->sk = nl_socket_alloc();
	if (!l->sk) {
		ret = -ENOMEM;
		goto free_listener;
	}
	errno = 0;
	ret = nl_connect(l->sk, NETLINK_KOBJECT_UEVENT);
	if (ret < 0) {
		ret = uevent_nl_errno(ret);
		goto free_socket;
	}
	l->watch.fd = nl_socket_get_fd(l->sk);
	ret = uevent_set_cloexec(l->watch.fd);
	if (ret < 0)
		goto free_socket;
	uevent_set_rcvbuf(l->watch.fd);
	/* Group 1 is the kernel's; udevd re-sends its processed events on group 2. */
	errno = 0;
	ret = nl_socket_add_membership(l->sk, 1);
	if (ret < 0) {
		ret = uevent_nl_errno(ret);
		goto free_socket;
	}
	errno = 0;
	ret = nl_socket_set_nonblocking(l->sk);
	if (ret < 0) {
		ret = uevent_nl_errno(ret);
		goto free_socket;
	}
	l->watch.fn = uevent_listener_read;
	ret = loop_watch(loop, &l->watch, EPOLLIN);
	if (ret < 0)
		goto free_socket;
	*out = l;
	return 0;

free_socket:
	nl_socket_free(l->sk);	/* closes the fd */
free_listener:
	free(l);
	return ret;
}

static void uevent_listener_release(struct loop_deferred *d)
{
	free((char *)d - offsetof(struct uevent_listener, release));
}

void uevent_listener_close(struct uevent_listener *l)
{
	if (!l || l->closed)
		return;
	l->closed = true;
	loop_unwatch(l->loop, &l->watch);
	nl_socket_free(l->sk);
	l->sk = NULL;
	l->watch.fd = -1;
	/* The reader that called fn, or a later event of this batch, may still hold l. */
	l->release.fn = uevent_listener_release;
	loop_defer(l->loop, &l->release);
}
