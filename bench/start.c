/*
 * start.c - start-up latency of one daemon instance.
 *
 * Usage: start -b BIN -d DIR -n REPS [-F] [-t PORT] [-r REF] [-p POLL_US]
 *        start -e -n REPS -- PROG [ARG...]
 *   -b BIN    swtpm or build/vtpm-bridge (run as `BIN socket ...`, common.c)
 *   -F        fresh state: the state directory is emptied before every
 *             start, so libtpms manufactures a new TPM; otherwise the state
 *             left by the previous start (or -r REF, copied once) is used
 *   -t PORT   TCP ports PORT/PORT+1 instead of unix sockets in DIR
 *   -p US     ctrl connect retry interval (default 20)
 * Per repetition, times from just before fork():
 *   ctrl_caps       the ctrl socket accepted and answered CMD_GET_CAPABILITY
 *   first_cmd       then a data connection answered TPM2_GetRandom(16)
 *                   correctly (rc 0, 16 random bytes): the TPM is usable
 *   shutdown_exit   CMD_SHUTDOWN sent -> process reaped (separate clock)
 * One untimed start comes first.  One JSON line per figure.
 *
 * -e (the exec floor): fork+exec PROG, time until it is reaped; figure
 * exec_exit.  With PROG = tpmfloor (no phases) that is exec, dynamic
 * linking of libtpms, MainInit and TPM2_Startup of a new TPM: the least a
 * daemon that must answer a first command can take.
 */
#include "common.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static int exec_floor(long reps, char **argv)
{
	struct bench_stats st;
	double *s = calloc((size_t)reps, sizeof(double));

	if (!s)
		bench_die("out of memory");
	for (long i = -1; i < reps; i++) {
		double t0 = bench_now_us();
		int status;
		pid_t p = fork();

		if (p < 0)
			bench_die("fork failed");
		if (p == 0) {
			int fd = open("/dev/null", O_WRONLY);

			prctl(PR_SET_PDEATHSIG, SIGKILL);
			dup2(fd, 1);
			execvp(argv[0], argv);
			_exit(127);
		}
		if (waitpid(p, &status, 0) != p || !WIFEXITED(status) || WEXITSTATUS(status))
			bench_die("%s failed", argv[0]);
		if (i >= 0)
			s[i] = bench_now_us() - t0;
	}
	bench_stats_of(s, (size_t)reps, &st);
	bench_emit_stats("exec_exit", "us", &st, NULL);
	return 0;
}

int main(int argc, char **argv)
{
	struct inst_opts io = { 0 };
	long reps = 20, poll_us = 20;
	int fresh = 0, port = 0, exec_mode = 0, o;
	double *caps, *first, *shut;
	struct bench_stats st;
	uint64_t capbits = 0;
	char extra[64];

	bench_init();
	while ((o = getopt(argc, argv, "b:d:n:Ft:r:p:e")) != -1) {
		if (inst_opt(&io, o, optarg))
			continue;
		switch (o) {
		case 'n':
			reps = bench_parse_long(optarg, 1, 100000, "-n");
			break;
		case 'F':
			fresh = 1;
			break;
		case 't':
			port = (int)bench_parse_long(optarg, 1, 65534, "-t");
			break;
		case 'p':
			poll_us = bench_parse_long(optarg, 1, 100000, "-p");
			break;
		case 'e':
			exec_mode = 1;
			break;
		default:
			goto usage;
		}
	}
	if (exec_mode && optind < argc)
		return exec_floor(reps, argv + optind);
	if (!io.bin || !io.dir)
		goto usage;
	caps = calloc((size_t)reps, sizeof(double));
	first = calloc((size_t)reps, sizeof(double));
	shut = calloc((size_t)reps, sizeof(double));
	if (!caps || !first || !shut)
		bench_die("out of memory");
	if (inst_prepare_state(io.dir, io.ref, 1))
		bench_die("%s: cannot prepare the state directory", io.dir);
	for (long i = -1; i < reps; i++) {
		struct inst in;
		struct tpm_cmd c;
		uint8_t rsp[64];
		int cfd, dfd;
		long n;
		double t_caps, t_first, t_shut;

		if (fresh && inst_prepare_state(io.dir, NULL, 1))
			bench_die("%s: cannot empty the state directory", io.dir);
		if (inst_spawn(&in, io.bin, io.dir, port, -1))
			bench_die("%s: fork failed", io.bin);
		cfd = inst_wait_ctrl(&in, poll_us, 10e6);
		if (cfd < 0)
			bench_die("%s: ctrl channel never accepted: %s", io.bin, inst_log_tail(&in));
		if (ctrl_get_caps(cfd, &capbits))
			bench_die("%s: CMD_GET_CAPABILITY failed: %s", io.bin, inst_log_tail(&in));
		t_caps = bench_now_us();
		dfd = inst_wait_data(&in, poll_us, 10e6);
		tpm_cmd_getrandom(&c, 16);
		n = dfd < 0 ? -1 : tpm_roundtrip(dfd, c.b, c.n, rsp, sizeof(rsp));
		if (n != 28 || tpm_rsp_code(rsp) || be32_at(rsp + 10) >> 16 != 16)
			bench_die("%s: first GetRandom not answered correctly (len %ld rc 0x%x): %s",
				  io.bin, n, n >= 10 ? tpm_rsp_code(rsp) : 0, inst_log_tail(&in));
		t_first = bench_now_us();
		close(dfd);
		t_shut = inst_stop(&in, cfd);
		close(cfd);
		if (t_shut < 0)
			bench_die("%s: did not exit after CMD_SHUTDOWN", io.bin);
		if (i < 0)
			continue;
		caps[i] = t_caps - in.t_spawn;
		first[i] = t_first - in.t_spawn;
		shut[i] = t_shut;
	}
	snprintf(extra, sizeof(extra), "\"caps\":\"0x%llx\"", (unsigned long long)capbits);
	bench_stats_of(caps, (size_t)reps, &st);
	bench_emit_stats("ctrl_caps", "us", &st, extra);
	bench_stats_of(first, (size_t)reps, &st);
	bench_emit_stats("first_cmd", "us", &st, NULL);
	bench_stats_of(shut, (size_t)reps, &st);
	bench_emit_stats("shutdown_exit", "us", &st, NULL);
	return 0;
usage:
	fprintf(stderr, "usage: start -b BIN -d DIR [-n REPS] [-F] [-t PORT] [-r REF] [-p US]\n"
			"       start -e [-n REPS] -- PROG [ARG...]\n");
	return 2;
}
