/* SPDX-License-Identifier: BSD-3-Clause */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int log_fd = STDERR_FILENO;
static int log_max = LOG_INFO;
static const char *log_prefix = "";

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

static void log_emit(int prio, const char *fmt, va_list ap, int err)
{
	char line[1024];
	int n, m;

	/* The command line bounds the prefix; the message keeps at least half the line. */
	n = snprintf(line, sizeof(line) / 2, "%s", log_prefix);
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
