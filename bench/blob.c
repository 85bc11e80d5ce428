/*
 * blob.c - state save and restore over one ctrl connection, as a VM
 * migration does it: GET_STATEBLOB permanent + volatile on a running TPM,
 * then STOP, SET_STATEBLOB permanent + volatile, INIT.
 *
 * Usage: blob -b BIN -d DIR -n N [-r REF] [-P CPU]
 *   -P CPU   pin the daemon and this client to CPU (default: no pinning)
 * Starts one instance (unix sockets), keeps one ctrl and one data
 * connection for the whole run, and per cycle i = 1..N times:
 *   get_perm, get_vol       one GET_STATEBLOB each (us)
 *   save                    both together
 *   stop, set_perm, set_vol, init
 *   restore                 STOP + SET + SET + INIT
 *   first_cmd               the next GetRandom on the data connection,
 *                           which must answer rc 0 (the TPM resumed)
 * Also reports the blob sizes.  Every result code must be 0.
 */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum fig { F_GET_PERM, F_GET_VOL, F_SAVE, F_STOP, F_SET_PERM, F_SET_VOL, F_INIT, F_RESTORE,
	   F_FIRST, F_COUNT };
static const char *const fig_name[F_COUNT] = {
	"get_perm", "get_vol", "save", "stop", "set_perm", "set_vol", "init", "restore",
	"first_cmd",
};

static void check(int r, uint32_t res, const char *what, const struct inst *in)
{
	if (r || res)
		bench_die("%s: %s (result 0x%x): %s", what, r ? "exchange failed" : "error", res,
			  inst_log_tail(in));
}

int main(int argc, char **argv)
{
	struct inst_opts io = { 0 };
	long n = 200;
	int cpu = -1, cfd, dfd, o;
	double *s[F_COUNT];
	uint8_t *perm = NULL, *vol = NULL, rsp[64];
	uint32_t plen = 0, vlen = 0, res = 0;
	struct bench_stats st;
	struct tpm_cmd gr;
	struct inst in;

	bench_init();
	while ((o = getopt(argc, argv, "b:d:n:r:P:")) != -1) {
		if (inst_opt(&io, o, optarg))
			continue;
		switch (o) {
		case 'n':
			n = bench_parse_long(optarg, 1, 1000000, "-n");
			break;
		case 'P':
			cpu = (int)bench_parse_long(optarg, 0, 4095, "-P");
			break;
		default:
			goto usage;
		}
	}
	if (!io.bin || !io.dir)
		goto usage;
	bench_pin_cpu(cpu);
	for (int f = 0; f < F_COUNT; f++)
		if (!(s[f] = calloc((size_t)n, sizeof(double))))
			bench_die("out of memory");
	if (inst_prepare_state(io.dir, io.ref, 1) || inst_spawn(&in, io.bin, io.dir, 0, cpu))
		bench_die("%s: cannot start", io.bin);
	cfd = inst_wait_ctrl(&in, 50, 10e6);
	if (cfd < 0)
		bench_die("%s: ctrl channel never accepted: %s", io.bin, inst_log_tail(&in));
	dfd = inst_wait_data(&in, 50, 10e6);
	tpm_cmd_getrandom(&gr, 16);
	if (dfd < 0 || tpm_roundtrip(dfd, gr.b, gr.n, rsp, sizeof(rsp)) != 28 || tpm_rsp_code(rsp))
		bench_die("%s: GetRandom failed before the test: %s", io.bin, inst_log_tail(&in));
	for (long i = -1; i < n; i++) {
		double t[9];

		free(perm);
		free(vol);
		t[0] = bench_now_us();
		check(ctrl_get_blob(cfd, PTM_BLOB_TYPE_PERMANENT, &perm, &plen, &res), res,
		      "GET_STATEBLOB permanent", &in);
		t[1] = bench_now_us();
		check(ctrl_get_blob(cfd, PTM_BLOB_TYPE_VOLATILE, &vol, &vlen, &res), res,
		      "GET_STATEBLOB volatile", &in);
		t[2] = bench_now_us();
		check(ctrl_simple(cfd, CMD_STOP, &res), res, "STOP", &in);
		t[3] = bench_now_us();
		check(ctrl_set_blob(cfd, PTM_BLOB_TYPE_PERMANENT, perm, plen, &res), res,
		      "SET_STATEBLOB permanent", &in);
		t[4] = bench_now_us();
		check(ctrl_set_blob(cfd, PTM_BLOB_TYPE_VOLATILE, vol, vlen, &res), res,
		      "SET_STATEBLOB volatile", &in);
		t[5] = bench_now_us();
		check(ctrl_init(cfd, 0, &res), res, "INIT", &in);
		t[6] = bench_now_us();
		if (tpm_roundtrip(dfd, gr.b, gr.n, rsp, sizeof(rsp)) != 28 || tpm_rsp_code(rsp))
			bench_die("%s: GetRandom after restore failed (rc 0x%x): %s", io.bin,
				  tpm_rsp_code(rsp), inst_log_tail(&in));
		t[7] = bench_now_us();
		if (i < 0)
			continue;
		s[F_GET_PERM][i] = t[1] - t[0];
		s[F_GET_VOL][i] = t[2] - t[1];
		s[F_SAVE][i] = t[2] - t[0];
		s[F_STOP][i] = t[3] - t[2];
		s[F_SET_PERM][i] = t[4] - t[3];
		s[F_SET_VOL][i] = t[5] - t[4];
		s[F_INIT][i] = t[6] - t[5];
		s[F_RESTORE][i] = t[6] - t[2];
		s[F_FIRST][i] = t[7] - t[6];
	}
	for (int f = 0; f < F_COUNT; f++) {
		char extra[64];

		snprintf(extra, sizeof(extra), "\"perm_bytes\":%u,\"vol_bytes\":%u", plen, vlen);
		bench_stats_of(s[f], (size_t)n, &st);
		bench_emit_stats(fig_name[f], "us", &st, extra);
	}
	close(dfd);
	inst_stop(&in, cfd);
	close(cfd);
	return 0;
usage:
	fprintf(stderr, "usage: blob -b BIN -d DIR [-n N] [-r REF] [-P CPU]\n");
	return 2;
}
