/* SPDX-License-Identifier: BSD-3-Clause */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <unistd.h>

/* Without --log swtpm puts "swtpm: " before each message; we name ourselves (syslog has its ident). */
static const char log_default_prefix[] = "vtpm-bridge: ";

static int log_fd = STDERR_FILENO;
static int log_max = LOG_INFO;
static const char *log_prefix = log_default_prefix;

void log_setup(int fd, int level)
{
	log_fd = fd;
	log_max = level;
	if (fd < 0)
		openlog("vtpm-bridge", LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void log_set_prefix(const char *prefix)
{
	log_prefix = prefix ? prefix : "";
}

int log_level(void)
{
	return log_max;
}

/*
 * The file-system identity of `pw` (its uid, gid and groups) around one
 * open(): swtpm opens its log after --runas, so the file is that user's
 * and only what they may write is written.  Before any thread starts.
 */
static int log_open_as(const struct passwd *pw, const char *path, int flags)
{
	gid_t *mine = NULL, *theirs = NULL;
	int nmine = getgroups(0, NULL), ntheirs = 0, fd = -EPERM;

	getgrouplist(pw->pw_name, pw->pw_gid, NULL, &ntheirs);
	if (nmine >= 0 && ntheirs > 0) {
		mine = malloc(((size_t)nmine + 1) * sizeof(*mine));
		theirs = malloc((size_t)ntheirs * sizeof(*theirs));
	}
	if (!mine || !theirs || getgroups(nmine, mine) != nmine ||
	    getgrouplist(pw->pw_name, pw->pw_gid, theirs, &ntheirs) < 0) {
		fd = -ENOMEM;
		goto out;
	}
	if (setgroups((size_t)ntheirs, theirs) < 0) {
		fd = -errno;
		goto out;
	}
	setfsgid(pw->pw_gid);
	setfsuid(pw->pw_uid);
	/* setfs[ug]id() report no errors: -1, an invalid id, reads the current one back. */
	if ((uid_t)setfsuid((uid_t)-1) == pw->pw_uid && (gid_t)setfsgid((gid_t)-1) == pw->pw_gid) {
		fd = open(path, flags, 0600);
		if (fd < 0)
			fd = -errno;
	}
	setfsuid(geteuid());
	setfsgid(getegid());
	if (setgroups((size_t)nmine, mine) < 0 && fd >= 0) {
		int err = errno;

		close(fd);
		fd = -err;
	}
out:
	free(mine);
	free(theirs);
	return fd;
}

int log_file_open(const char *path, bool truncate, const char *user)
{
	int flags = O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC | (truncate ? O_TRUNC : 0);
	int fd;

	/* Without root the later setuid() can only keep who we are: open as that. */
	if (user && geteuid() == 0) {
		const struct passwd *pw = getpwnam(user);

		return pw ? log_open_as(pw, path, flags) : -ESRCH;
	}
	fd = open(path, flags, 0600);
	return fd < 0 ? -errno : fd;
}

static void log_emit(int prio, const char *fmt, va_list ap, int err)
{
	const char *prefix = log_fd < 0 && log_prefix == log_default_prefix ? "" : log_prefix;
	char line[1024];
	int n, m;

	/* The command line bounds the prefix; the message keeps at least half the line. */
	n = snprintf(line, sizeof(line) / 2, "%s", prefix);
	if (n < 0 || (size_t)n >= sizeof(line) / 2)
		n = 0;
	m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if (m < 0)
		return;
	n += m;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	if (err)
		n += snprintf(line + n, sizeof(line) - (size_t)n, ": %s", strerror(err));
	if ((size_t)n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	if (log_fd < 0) {
		syslog(prio, "%s", line);
		return;
	}
	line[n++] = '\n';
	/* One write per line, so concurrent writers (worker thread) do not interleave. */
	if (write(log_fd, line, (size_t)n) < 0)
		return;
}

void log_msg(int prio, const char *fmt, ...)
{
	int saved = errno;

	if (prio <= log_max) {
		va_list ap;

		va_start(ap, fmt);
		log_emit(prio, fmt, ap, 0);
		va_end(ap);
	}
	errno = saved;
}

void log_errno(int prio, int err, const char *fmt, ...)
{
	int saved = errno;

	if (prio <= log_max) {
		va_list ap;

		va_start(ap, fmt);
		log_emit(prio, fmt, ap, err);
		va_end(ap);
	}
	errno = saved;
}
