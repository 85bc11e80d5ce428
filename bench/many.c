/*
 * many.c - K daemon instances started together: time until every one
 * answers, and their memory, idle and after some work.
 *
 * Usage: many -b BIN -d DIR -k K [-r REF] [-U | -W] [-s SETTLE_MS]
 *   -r REF    every instance starts from a copy of this permanent state
 *             (without it each one manufactures a new TPM)
 *   -U        stop after GET_CAPABILITY: instances started but never asked
 *             anything of their TPM (memory figure mem_unused)
 *   -W        after the idle reading, run a workload on every instance
 *             (100 GetRandom, 100 PCR_Extend, CreatePrimary ECC P-256 and
 *             RSA 2048, each flushed) and read memory again
 *   -s MS     wait before each memory reading (default 200)
 * All K are forked back to back (fresh sockets in DIR/NNN/); then one loop
 * connects each ctrl socket as soon as it accepts, sends
 * CMD_GET_CAPABILITY, then connects its data socket and sends GetRandom(16).
 * Figures (JSON lines):
 *   all_ctrl    first fork -> the last instance answered GET_CAPABILITY (us)
 *   all_ready   first fork -> the last instance answered GetRandom (us)
 *   mem_idle / mem_work   sum and per-instance mean of Rss, Pss,
 *               Private_Dirty, Private_Clean from /proc/PID/smaps_rollup (kB)
 */
#include "common.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum step { S_CONNECT, S_CAPS, S_DATA, S_RAND, S_READY, S_FAILED };

struct member {
	struct inst in;
	enum step step;
	int cfd, dfd;
	size_t got;
	uint8_t buf[64];
};

static int caps_only;

static void advance(struct member *m)
{
	struct tpm_cmd c;
	uint8_t req[4];

	switch (m->step) {
	case S_CONNECT:
		m->cfd = bench_connect(m->in.ctrl_addr);
		if (m->cfd < 0)
			return;
		be32_put(req, CMD_GET_CAPABILITY);
		if (bench_write_all(m->cfd, req, 4))
			goto fail;
		m->step = S_CAPS;
		m->got = 0;
		return;
	case S_CAPS:
		/* poll() said readable; the 8 bytes come in one segment */
		if (bench_read_all(m->cfd, m->buf, 8))
			goto fail;
		if (caps_only) {
			/* -U: started and asked nothing of the TPM */
			m->step = S_READY;
			return;
		}
		m->step = S_DATA;
		/* fall through */
	case S_DATA:
		/* the data socket may come after the ctrl socket */
		m->dfd = bench_connect(m->in.data_addr);
		if (m->dfd < 0)
			return;
		tpm_cmd_getrandom(&c, 16);
		if (bench_write_all(m->dfd, c.b, c.n))
			goto fail;
		m->step = S_RAND;
		return;
	case S_RAND: {
		ssize_t r = read(m->dfd, m->buf + m->got, sizeof(m->buf) - m->got);

		if (r <= 0)
			goto fail;
		m->got += (size_t)r;
		if (m->got < 10 || m->got < tpm_rsp_size(m->buf))
			return;
		if (m->got != 28 || tpm_rsp_code(m->buf))
			goto fail;
		m->step = S_READY;
		return;
	}
	default:
		return;
	}
fail:
	m->step = S_FAILED;
}

struct memsum {
	long rss, pss, pdirty, pclean;
};

static void read_mem(struct member *ms, int k, const char *name, long settle_ms)
{
	struct memsum s = { 0 };
	struct memfig f;
	char extra[512];

	bench_sleep_us(settle_ms * 1000);
	for (int i = 0; i < k; i++) {
		if (read_smaps_rollup(ms[i].in.pid, &f))
			bench_die("instance %d: cannot read smaps_rollup", i);
		s.rss += f.rss;
		s.pss += f.pss;
		s.pdirty += f.pdirty;
		s.pclean += f.pclean;
	}
	snprintf(extra, sizeof(extra),
		 "\"k\":%d,\"rss_sum\":%ld,\"pss_sum\":%ld,\"pdirty_sum\":%ld,\"pclean_sum\":%ld,"
		 "\"rss\":%.1f,\"pss\":%.1f,\"pdirty\":%.1f,\"pclean\":%.1f",
		 k, s.rss, s.pss, s.pdirty, s.pclean, (double)s.rss / k, (double)s.pss / k,
		 (double)s.pdirty / k, (double)s.pclean / k);
	bench_emit_value(name, "kB", (double)s.pss, extra);
}

static void workload(struct member *m)
{
	struct tpm_cmd c, fl;
	uint8_t rsp[2048];

	tpm_cmd_getrandom(&c, 16);
	for (int j = 0; j < 100; j++)
		if (tpm_roundtrip(m->dfd, c.b, c.n, rsp, sizeof(rsp)) < 0 || tpm_rsp_code(rsp))
			bench_die("workload GetRandom failed");
	tpm_cmd_pcr_extend(&c, 16);
	for (int j = 0; j < 100; j++)
		if (tpm_roundtrip(m->dfd, c.b, c.n, rsp, sizeof(rsp)) < 0 || tpm_rsp_code(rsp))
			bench_die("workload PCR_Extend failed");
	for (int ecc = 1; ecc >= 0; ecc--) {
		tpm_cmd_createprimary(&c, ecc);
		if (tpm_roundtrip(m->dfd, c.b, c.n, rsp, sizeof(rsp)) < 0 || tpm_rsp_code(rsp))
			bench_die("workload CreatePrimary failed");
		tpm_cmd_flush(&fl, tpm_rsp_handle(rsp));
		if (tpm_roundtrip(m->dfd, fl.b, fl.n, rsp, sizeof(rsp)) < 0 || tpm_rsp_code(rsp))
			bench_die("workload FlushContext failed");
	}
}

int main(int argc, char **argv)
{
	struct inst_opts io = { 0 };
	long k = 1, settle_ms = 200;
	int work = 0, o, pending;
	double t0, t_ctrl = 0;
	struct member *ms;
	struct pollfd *pfd;
	int *pidx;

	bench_init();
	while ((o = getopt(argc, argv, "b:d:k:r:UWs:")) != -1) {
		if (inst_opt(&io, o, optarg))
			continue;
		switch (o) {
		case 'k':
			k = bench_parse_long(optarg, 1, 1000, "-k");
			break;
		case 'U':
			caps_only = 1;
			break;
		case 'W':
			work = 1;
			break;
		case 's':
			settle_ms = bench_parse_long(optarg, 0, 60000, "-s");
			break;
		default:
			goto usage;
		}
	}
	if (!io.bin || !io.dir)
		goto usage;
	ms = calloc((size_t)k, sizeof(*ms));
	pfd = calloc((size_t)k, sizeof(*pfd));
	pidx = calloc((size_t)k, sizeof(*pidx));
	if (!ms || !pfd || !pidx)
		bench_die("out of memory");
	inst_prepare_state(io.dir, NULL, 0);
	for (int i = 0; i < k; i++) {
		char d[300];

		snprintf(d, sizeof(d), "%s/%03d", io.dir, i);
		if (inst_prepare_state(d, io.ref, 1))
			bench_die("%s: cannot prepare the state directory", d);
		ms[i].cfd = ms[i].dfd = -1;
	}
	t0 = bench_now_us();
	for (int i = 0; i < k; i++) {
		char d[300];

		snprintf(d, sizeof(d), "%s/%03d", io.dir, i);
		if (inst_spawn(&ms[i].in, io.bin, d, 0, -1))
			bench_die("fork failed at instance %d", i);
	}
	for (pending = (int)k; pending > 0;) {
		struct timespec retry = { 0, 50000 };
		int np = 0, nctrl = 0, nconn = 0;

		if (bench_now_us() - t0 > 30e6)
			bench_die("%d of %ld instances not ready after 30 s", pending, k);
		for (int i = 0; i < k; i++) {
			struct member *m = &ms[i];

			if (m->step == S_CONNECT || m->step == S_DATA)
				advance(m);
			if (m->step == S_FAILED)
				bench_die("instance %d failed: %s", i, inst_log_tail(&m->in));
			if (m->step >= S_DATA)
				nctrl++;
			if (m->step == S_CONNECT || m->step == S_DATA)
				nconn++;
			if (m->step == S_CAPS || m->step == S_RAND) {
				pfd[np].fd = m->step == S_CAPS ? m->cfd : m->dfd;
				pfd[np].events = POLLIN;
				pidx[np++] = i;
			}
		}
		if (nctrl == k && !t_ctrl)
			t_ctrl = bench_now_us();
		/* sockets not yet accepting are retried every 50 us */
		if (ppoll(pfd, (nfds_t)np, nconn ? &retry : NULL, NULL) <= 0)
			continue;
		for (int j = 0; j < np; j++)
			if (pfd[j].revents)
				advance(&ms[pidx[j]]);
		pending = 0;
		for (int i = 0; i < k; i++)
			pending += ms[i].step != S_READY;
	}
	{
		double t_ready = bench_now_us();
		char extra[32];

		if (!t_ctrl)
			t_ctrl = t_ready;
		snprintf(extra, sizeof(extra), "\"k\":%ld", k);
		bench_emit_value("all_ctrl", "us", t_ctrl - t0, extra);
		bench_emit_value("all_ready", "us", t_ready - t0, extra);
	}
	read_mem(ms, (int)k, caps_only ? "mem_unused" : "mem_idle", settle_ms);
	if (work && !caps_only) {
		for (int i = 0; i < k; i++)
			workload(&ms[i]);
		read_mem(ms, (int)k, "mem_work", settle_ms);
	}
	for (int i = 0; i < k; i++) {
		close(ms[i].dfd);
		if (inst_stop(&ms[i].in, ms[i].cfd) < 0)
			fprintf(stderr, "instance %d did not exit after CMD_SHUTDOWN\n", i);
		close(ms[i].cfd);
	}
	return 0;
usage:
	fprintf(stderr, "usage: many -b BIN -d DIR -k K [-r REF] [-W] [-s MS]\n");
	return 2;
}
