/*
 * proxy-raw: raw bytes to a kernel TPM node (/dev/tpmN or /dev/tpmrmN) and
 * what came back, for the vtpm-proxy scenarios.
 *
 *     proxy-raw [-t SECONDS] [-k PID] DEVICE HEX
 *
 * Opens DEVICE, writes the bytes of HEX (whitespace ignored) in one write()
 * and reads the response with one read() of 4096 bytes (the kernel hands a
 * response out whole).  Prints one line:
 *
 *     write=N read=N rc=0xRC resp=HEX    a response came back (rc: bytes 6-9)
 *     write=N read=ERRNAME               the read failed
 *     write=ERRNAME                      the write failed (EFAULT, EINVAL, ...)
 *     open=ERRNAME                       DEVICE did not open
 *
 * A client of a kernel TPM node waits in the kernel, and no signal ends
 * that wait: the kernel polls the daemon until the command's duration is
 * over (120 s for an unknown command code).  So the I/O runs in a child.
 * If it has not finished after SECONDS (default 20), "hang=SECONDS" is
 * printed first and PID (the daemon, with -k) is SIGKILLed, which ends the
 * child's wait at once; then the child's line follows.  Without -k the
 * child is left to finish on its own.
 *
 * Exit status 0 once the outcome was printed, 1 on a hang, 2 on bad usage.
 * Guest-side test tool, built by tests/vm/lib/host.sh (VM_TOOLS).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tpm-xfer.h"

#define BUF_MAX 4096

static const char *errname(int e)
{
	const char *n = strerrorname_np(e);

	return n ? n : "E?";
}

/* hex_parse: HEX into buf; returns the byte count or -1 */
static long hex_parse(const char *hex, uint8_t *buf, size_t max)
{
	size_t n = 0;
	int hi = -1;

	for (; *hex; hex++) {
		int v;

		if (*hex == ' ' || *hex == '\t' || *hex == '\n')
			continue;
		if (*hex >= '0' && *hex <= '9')
			v = *hex - '0';
		else if (*hex >= 'a' && *hex <= 'f')
			v = *hex - 'a' + 10;
		else if (*hex >= 'A' && *hex <= 'F')
			v = *hex - 'A' + 10;
		else
			return -1;
		if (hi < 0) {
			hi = v;
			continue;
		}
		if (n == max)
			return -1;
		buf[n++] = (uint8_t)(hi << 4 | v);
		hi = -1;
	}
	return hi < 0 ? (long)n : -1;
}

/* exchange: the write and the read on DEVICE; the outcome line into line */
static void exchange(const char *dev, const uint8_t *cmd, size_t n, char *line, size_t max)
{
	uint8_t resp[BUF_MAX];
	ssize_t w, r;
	size_t len, i;
	int f = open(dev, O_RDWR);

	if (f < 0) {
		snprintf(line, max, "open=%s", errname(errno));
		return;
	}
	w = write(f, cmd, n);
	if (w < 0) {
		snprintf(line, max, "write=%s", errname(errno));
		close(f);
		return;
	}
	do
		r = read(f, resp, sizeof(resp));
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		snprintf(line, max, "write=%zd read=%s", w, errname(errno));
		close(f);
		return;
	}
	close(f);
	len = (size_t)snprintf(line, max, "write=%zd read=%zd rc=", w, r);
	if (r >= 10)
		len += (size_t)snprintf(line + len, max - len, "0x%08x", be32(resp + 6));
	else
		len += (size_t)snprintf(line + len, max - len, "none");
	len += (size_t)snprintf(line + len, max - len, " resp=");
	for (i = 0; i < (size_t)r && len + 3 < max; i++)
		len += (size_t)snprintf(line + len, max - len, "%02x", resp[i]);
}

static int usage(void)
{
	fprintf(stderr, "usage: proxy-raw [-t SECONDS] [-k PID] DEVICE HEX\n");
	return 2;
}

int main(int argc, char **argv)
{
	uint8_t cmd[BUF_MAX + 16];
	char line[2 * BUF_MAX + 128];
	int secs = 20, opt, p[2], hung = 0;
	pid_t kill_pid = 0, child;
	struct pollfd pf;
	long n;
	ssize_t got;

	while ((opt = getopt(argc, argv, "t:k:")) != -1) {
		switch (opt) {
		case 't': secs = atoi(optarg); break;
		case 'k': kill_pid = (pid_t)atoi(optarg); break;
		default: return usage();
		}
	}
	if (argc - optind != 2 || secs <= 0)
		return usage();
	n = hex_parse(argv[optind + 1], cmd, sizeof(cmd));
	if (n < 0) {
		fprintf(stderr, "proxy-raw: bad hex '%s'\n", argv[optind + 1]);
		return 2;
	}
	if (pipe(p) < 0) {
		perror("pipe");
		return 2;
	}
	child = fork();
	if (child < 0) {
		perror("fork");
		return 2;
	}
	if (child == 0) {
		close(p[0]);
		exchange(argv[optind], cmd, (size_t)n, line, sizeof(line));
		if (write(p[1], line, strlen(line)) < 0)
			_exit(1);
		_exit(0);
	}
	close(p[1]);
	pf.fd = p[0];
	pf.events = POLLIN;
	if (poll(&pf, 1, secs * 1000) == 0) {
		hung = 1;
		printf("hang=%d", secs);
		if (kill_pid > 0) {
			printf(" killed=%d", (int)kill_pid);
			kill(kill_pid, SIGKILL);
		} else {
			kill(child, SIGKILL);	/* acts once the kernel lets go */
			printf("\n");
			return 1;
		}
		printf(" ");
		fflush(stdout);
	}
	got = read(p[0], line, sizeof(line) - 1);
	line[got > 0 ? got : 0] = '\0';
	printf("%s\n", got > 0 ? line : "child=no-outcome");
	waitpid(child, NULL, 0);
	return hung;
}
