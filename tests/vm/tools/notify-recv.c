/*
 * notify-recv: the receiving end of systemd's readiness protocol
 * (sd_notify(3)) for the scenarios that run a Type=notify unit's command
 * lines without systemd (instances-udev).
 *
 *     notify-recv SOCKET LOG [PATH...]
 *
 * Binds a unix datagram socket at SOCKET (an old file there is removed),
 * mode 0777 as systemd's /run/systemd/notify (the daemon may have dropped
 * to another user when it sends), with SO_PASSCRED, so the kernel tells
 * who sent each message, as systemd checks it for NotifyAccess=main.
 * Appends one line to LOG when it listens:
 *
 *     listening SOCKET
 *
 * and one line per datagram, written with one write() as it arrives:
 *
 *     msg t=UPTIME pid=PID uid=UID text=TEXT[ PATH=STATE...]
 *
 * UPTIME is CLOCK_BOOTTIME in seconds (/proc/uptime's clock), TEXT the
 * datagram with each newline as '|' (so "READY=1|STATUS=x"), and for each
 * PATH its state at that moment, looked at before the line is written:
 * "->TARGET" for a symlink, "MODE:UID:GID" (octal mode) for anything else
 * that exists, "-" if nothing is there (did udev's links and permissions
 * exist when READY=1 came?).
 *
 * Runs until killed (SIGTERM).  Exit status 2 on bad usage, 1 if the
 * socket cannot be made.  Guest-side test tool, built by
 * tests/vm/lib/host.sh (VM_TOOLS).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static void append(int fd, const char *s, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, s, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("notify-recv: write");
			exit(1);
		}
		s += n;
		len -= (size_t)n;
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s, log, one = 1;
	char line[16384];

	if (argc < 3) {
		fprintf(stderr, "usage: notify-recv SOCKET LOG [PATH...]\n");
		return 2;
	}
	if (strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "notify-recv: %s: path too long\n", argv[1]);
		return 2;
	}
	strcpy(sa.sun_path, argv[1]);
	log = open(argv[2], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (log < 0) {
		perror(argv[2]);
		return 1;
	}
	s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0 || setsockopt(s, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0) {
		perror("notify-recv: socket");
		return 1;
	}
	unlink(argv[1]);
	if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(argv[1], 0777) < 0) {
		perror(argv[1]);
		return 1;
	}
	snprintf(line, sizeof(line), "listening %s\n", argv[1]);
	append(log, line, strlen(line));

	for (;;) {
		char buf[4096 + 1];
		union {
			char b[CMSG_SPACE(sizeof(struct ucred))];
			struct cmsghdr align;
		} ctl;
		struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) - 1 };
		struct msghdr mh = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = ctl.b, .msg_controllen = sizeof(ctl.b),
		};
		struct ucred cred = { .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
		struct cmsghdr *cm;
		struct timespec ts;
		ssize_t n;
		size_t len;
		int i;

		n = recvmsg(s, &mh, MSG_CMSG_CLOEXEC);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("notify-recv: recvmsg");
			return 1;
		}
		for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
			if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_CREDENTIALS &&
			    cm->cmsg_len >= CMSG_LEN(sizeof(cred)))
				memcpy(&cred, CMSG_DATA(cm), sizeof(cred));
		buf[n] = '\0';
		for (i = 0; i < n; i++)
			if (buf[i] == '\n')
				buf[i] = '|';
			else if (buf[i] == '\0' || buf[i] == '\r')
				buf[i] = '?';
		/* a trailing newline is no field */
		while (n > 0 && buf[n - 1] == '|')
			buf[--n] = '\0';
		clock_gettime(CLOCK_BOOTTIME, &ts);
		len = (size_t)snprintf(line, sizeof(line), "msg t=%lld.%03ld pid=%ld uid=%ld text=%s",
				       (long long)ts.tv_sec, ts.tv_nsec / 1000000, (long)cred.pid,
				       (long)(int)cred.uid, buf);
		for (i = 3; i < argc && len < sizeof(line) - 1; i++) {
			char tgt[1024];
			struct stat st;
			ssize_t t = readlink(argv[i], tgt, sizeof(tgt) - 1);

			if (t >= 0) {
				tgt[t] = '\0';
				len += (size_t)snprintf(line + len, sizeof(line) - len, " %s=->%s", argv[i], tgt);
			} else if (lstat(argv[i], &st) == 0) {
				len += (size_t)snprintf(line + len, sizeof(line) - len, " %s=%03o:%ld:%ld", argv[i],
							(unsigned int)(st.st_mode & 07777), (long)st.st_uid,
							(long)st.st_gid);
			} else {
				len += (size_t)snprintf(line + len, sizeof(line) - len, " %s=-", argv[i]);
			}
		}
		if (len > sizeof(line) - 2)
			len = sizeof(line) - 2;
		line[len++] = '\n';
		append(log, line, len);
	}
}
