/*
 * tpmfloor.c - the libtpms floor: TPM 2.0 commands through TPMLIB_Process
 * in this process, NVRAM held in memory by our own callbacks.  No IPC, no
 * files: what any daemon pays for the command itself.
 *
 * Usage: tpmfloor [-P CPU] [-p PERMALL] [-x] NAME:COUNT...
 *   NAME: getrandom | pcrextend | cp-ecc | cp-rsa (see common.c)
 *   -p F   start from this permanent state (a swtpm tpm2-00.permall file or
 *          a raw libtpms blob) instead of manufacturing a new TPM
 *   -x     exit at once (with start -e: the cost of exec and of linking
 *          libtpms and libcrypto alone)
 * Prints one JSON line per phase (per-command microseconds, plus the
 * command and response sizes, which the echo floor reuses) and one for the
 * start-up (MainInit + TPM2_Startup).
 * Each phase starts with one untimed command; the FlushContext after a
 * CreatePrimary is not timed.
 */
#include "common.h"
#include "tpmmem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct exec_buf {
	const uint8_t *rsp;
	size_t len;
};

static uint32_t exec_cmd(struct exec_buf *e, const struct tpm_cmd *c)
{
	e->rsp = tpmmem_process(c->b, c->n, &e->len);
	if (!e->rsp)
		bench_die("TPMLIB_Process failed");
	return tpm_rsp_code(e->rsp);
}

static void must(const char *what, uint32_t rc)
{
	if (rc)
		bench_die("%s: TPM rc 0x%x", what, rc);
}

static void run_phase(struct exec_buf *e, const char *name, long count)
{
	struct tpm_cmd c, fl;
	enum tpm_cmd_kind kind;
	struct bench_stats st;
	char extra[128];
	double *s;
	size_t rsp_len = 0;

	if (tpm_cmd_by_name(name, &c, &kind))
		bench_die("unknown command %s", name);
	s = calloc((size_t)count, sizeof(*s));
	if (!s)
		bench_die("out of memory");
	for (long i = -1; i < count; i++) {
		double t0 = bench_now_us(), t1;

		must(name, exec_cmd(e, &c));
		t1 = bench_now_us();
		rsp_len = e->len;
		if (kind == TPM_K_CP_ECC || kind == TPM_K_CP_RSA) {
			tpm_cmd_flush(&fl, tpm_rsp_handle(e->rsp));
			must("FlushContext", exec_cmd(e, &fl));
		}
		if (i >= 0)
			s[i] = t1 - t0;
	}
	bench_stats_of(s, (size_t)count, &st);
	snprintf(extra, sizeof(extra), "\"cmd_bytes\":%zu,\"rsp_bytes\":%zu", c.n, rsp_len);
	bench_emit_stats(name, "us", &st, extra);
	free(s);
}

int main(int argc, char **argv)
{
	struct exec_buf e = { 0 };
	struct tpm_cmd c;
	double t0, t1, t2;
	int o;

	bench_init();
	while ((o = getopt(argc, argv, "P:p:x")) != -1) {
		switch (o) {
		case 'P':
			bench_pin_cpu((int)bench_parse_long(optarg, 0, 4095, "-P"));
			break;
		case 'p':
			tpmmem_preload(optarg);
			break;
		case 'x':
			return 0;
		default:
			fprintf(stderr, "usage: tpmfloor [-P CPU] [-p PERMALL] [-x] NAME:COUNT...\n");
			return 2;
		}
	}
	t0 = bench_now_us();
	if (tpmmem_init())
		bench_die("libtpms initialisation failed");
	t1 = bench_now_us();
	tpm_cmd_startup_clear(&c);
	must("Startup", exec_cmd(&e, &c));
	t2 = bench_now_us();
	bench_emit_value("init", "us", t2 - t0, NULL);
	bench_emit_value("maininit", "us", t1 - t0, NULL);
	for (int i = optind; i < argc; i++) {
		char name[32];
		const char *colon = strchr(argv[i], ':');

		if (!colon || (size_t)(colon - argv[i]) >= sizeof(name))
			bench_die("bad phase '%s' (NAME:COUNT)", argv[i]);
		snprintf(name, sizeof(name), "%.*s", (int)(colon - argv[i]), argv[i]);
		run_phase(&e, name, bench_parse_long(colon + 1, 1, 10000000, "count"));
	}
	tpmmem_terminate();
	return 0;
}
