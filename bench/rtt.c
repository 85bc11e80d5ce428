/*
 * rtt.c - round trip of TPM commands over one data-channel connection
 * (a daemon's --server socket, or echosrv with -E).
 *
 * Usage: rtt -a ADDR [-P CPU] [-E] [-w WARMUP] NAME:COUNT[:RSPBYTES]...
 *   ADDR      unix:PATH or tcp:PORT (127.0.0.1)
 *   -P CPU    pin this client to CPU
 *   -E        echo mode: send a message of the command's length asking for
 *             a reply of RSPBYTES (see echosrv.c); no TPM involved
 *   -w N      untimed round trips before each phase (default 100; 1 for
 *             CreatePrimary)
 *   -S PID    also report the server's CPU time per command (all threads of
 *             PID, from schedstat), next to this client's own
 *   NAME      getrandom | pcrextend | cp-ecc | cp-rsa
 * One JSON line per phase: per-round-trip microseconds, from just before
 * the write() to the response's last byte.  Every TPM response must carry
 * rc 0; a CreatePrimary's handle is flushed after it (not timed).
 */
#include "common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint8_t rsp[8192];

static void roundtrip(int fd, const struct tpm_cmd *c, const char *what, int echo)
{
	long n = tpm_roundtrip(fd, c->b, c->n, rsp, sizeof(rsp));

	if (n < 0)
		bench_die("%s: round trip failed (%s)", what, errno ? strerror(errno) : "EOF");
	if (!echo && tpm_rsp_code(rsp))
		bench_die("%s: TPM rc 0x%x", what, tpm_rsp_code(rsp));
}

static void phase(int fd, const char *spec, int echo, long warmup, pid_t server)
{
	char name[32], extra[160];
	double cpu_c0 = 0, cpu_s0 = 0, cpu_c = 0, cpu_s = -1;
	const char *c1 = strchr(spec, ':'), *c2;
	struct tpm_cmd c, fl;
	enum tpm_cmd_kind kind;
	struct bench_stats st;
	long count, rspbytes = 0, warm;
	double *s;
	int flush;

	if (!c1 || (size_t)(c1 - spec) >= sizeof(name))
		bench_die("bad phase '%s' (NAME:COUNT[:RSPBYTES])", spec);
	snprintf(name, sizeof(name), "%.*s", (int)(c1 - spec), spec);
	c2 = strchr(c1 + 1, ':');
	if (c2) {
		char cnt[24];

		snprintf(cnt, sizeof(cnt), "%.*s", (int)(c2 - c1 - 1), c1 + 1);
		count = bench_parse_long(cnt, 1, 10000000, "count");
		rspbytes = bench_parse_long(c2 + 1, 10, (long)sizeof(rsp), "response bytes");
	} else {
		count = bench_parse_long(c1 + 1, 1, 10000000, "count");
	}
	if (tpm_cmd_by_name(name, &c, &kind))
		bench_die("unknown command %s", name);
	if (echo) {
		if (!rspbytes)
			bench_die("%s: echo mode needs RSPBYTES", name);
		be32_put(c.b + 6, (uint32_t)rspbytes);
	}
	flush = !echo && (kind == TPM_K_CP_ECC || kind == TPM_K_CP_RSA);
	warm = flush ? 1 : warmup;
	s = calloc((size_t)count, sizeof(*s));
	if (!s)
		bench_die("out of memory");
	for (long i = -warm; i < count; i++) {
		double t0, t1;

		if (i == 0) {
			cpu_c0 = proc_cpu_us(0);
			cpu_s0 = server ? proc_cpu_us(server) : -1;
		}
		t0 = bench_now_us();

		roundtrip(fd, &c, name, echo);
		t1 = bench_now_us();
		if (flush) {
			tpm_cmd_flush(&fl, tpm_rsp_handle(rsp));
			roundtrip(fd, &fl, "FlushContext", 0);
		}
		if (i >= 0)
			s[i] = t1 - t0;
	}
	/* the CPU figures include the untimed FlushContext round trips */
	cpu_c = (proc_cpu_us(0) - cpu_c0) / (double)count;
	if (server && cpu_s0 >= 0)
		cpu_s = (proc_cpu_us(server) - cpu_s0) / (double)count;
	bench_stats_of(s, (size_t)count, &st);
	snprintf(extra, sizeof(extra), "\"cmd_bytes\":%zu,\"client_cpu\":%.3f,\"server_cpu\":%.3f",
		 c.n, cpu_c, cpu_s);
	bench_emit_stats(name, "us", &st, extra);
	free(s);
}

int main(int argc, char **argv)
{
	const char *addr = NULL;
	long warmup = 100;
	pid_t server = 0;
	int echo = 0, fd, o;

	bench_init();
	while ((o = getopt(argc, argv, "a:P:Ew:S:")) != -1) {
		switch (o) {
		case 'a':
			addr = optarg;
			break;
		case 'P':
			bench_pin_cpu((int)bench_parse_long(optarg, 0, 4095, "-P"));
			break;
		case 'E':
			echo = 1;
			break;
		case 'w':
			warmup = bench_parse_long(optarg, 0, 1000000, "-w");
			break;
		case 'S':
			server = (pid_t)bench_parse_long(optarg, 1, 1L << 30, "-S");
			break;
		default:
			goto usage;
		}
	}
	if (!addr || optind >= argc)
		goto usage;
	fd = bench_connect(addr);
	if (fd < 0)
		bench_die("connect %s: %s", addr, strerror(-fd));
	for (int i = optind; i < argc; i++)
		phase(fd, argv[i], echo, warmup, server);
	close(fd);
	return 0;
usage:
	fprintf(stderr, "usage: rtt -a ADDR [-P CPU] [-E] [-w N] [-S PID] NAME:COUNT[:RSPBYTES]...\n");
	return 2;
}
