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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libtpms/tpm_error.h>
#include <libtpms/tpm_library.h>
#include <libtpms/tpm_nvfilename.h>
#include <libtpms/tpm_types.h>

/* NVRAM blobs by name ("permall", "volatilestate", ...), in memory */
#define NV_SLOTS 8
struct nv_blob {
	char name[32];
	unsigned char *data;
	uint32_t len;
};
struct nv_mem {
	struct nv_blob slot[NV_SLOTS];
	unsigned long stores;
};
/* libtpms' callbacks carry no user pointer, hence one file-scope store */
static struct nv_mem nv;

static struct nv_blob *nv_find(const char *name, int create)
{
	for (int i = 0; i < NV_SLOTS; i++)
		if (nv.slot[i].name[0] && !strcmp(nv.slot[i].name, name))
			return &nv.slot[i];
	if (!create)
		return NULL;
	for (int i = 0; i < NV_SLOTS; i++)
		if (!nv.slot[i].name[0]) {
			snprintf(nv.slot[i].name, sizeof(nv.slot[i].name), "%s", name);
			return &nv.slot[i];
		}
	return NULL;
}

static TPM_RESULT nv_init(void)
{
	return TPM_SUCCESS;
}

static TPM_RESULT nv_load(unsigned char **data, uint32_t *length, uint32_t tpm_number,
			  const char *name)
{
	struct nv_blob *b = nv_find(name, 0);

	(void)tpm_number;
	if (!b || !b->data)
		return TPM_RETRY;	/* libtpms: "does not exist" */
	*data = malloc(b->len ? b->len : 1);
	if (!*data)
		return TPM_FAIL;
	memcpy(*data, b->data, b->len);
	*length = b->len;
	return TPM_SUCCESS;
}

static TPM_RESULT nv_store(const unsigned char *data, uint32_t length, uint32_t tpm_number,
			   const char *name)
{
	struct nv_blob *b = nv_find(name, 1);
	unsigned char *p;

	(void)tpm_number;
	if (!b)
		return TPM_FAIL;
	p = realloc(b->data, length ? length : 1);
	if (!p)
		return TPM_FAIL;
	memcpy(p, data, length);
	b->data = p;
	b->len = length;
	nv.stores++;
	return TPM_SUCCESS;
}

static TPM_RESULT nv_delete(uint32_t tpm_number, const char *name, TPM_BOOL must_exist)
{
	struct nv_blob *b = nv_find(name, 0);

	(void)tpm_number;
	if (!b)
		return must_exist ? TPM_FAIL : TPM_SUCCESS;
	free(b->data);
	memset(b, 0, sizeof(*b));
	return TPM_SUCCESS;
}

static TPM_RESULT io_init(void)
{
	return TPM_SUCCESS;
}

static TPM_RESULT io_locality(TPM_MODIFIER_INDICATOR *loc, uint32_t tpm_number)
{
	(void)tpm_number;
	*loc = 0;
	return TPM_SUCCESS;
}

static TPM_RESULT io_pp(TPM_BOOL *pp, uint32_t tpm_number)
{
	(void)tpm_number;
	*pp = 0;
	return TPM_SUCCESS;
}

/* A swtpm state file: u8 version 2, u8, be16 header size, be16 flags,
 * be32 total; then TLVs (be16 tag, be32 length); tag 1 holds the libtpms
 * blob (state-files.md).  Anything else is taken as a raw libtpms blob. */
static void nv_preload(const char *path)
{
	static unsigned char raw[1 << 20];
	struct nv_blob *b = nv_find(TPM_PERMANENT_ALL_NAME, 1);
	FILE *f = fopen(path, "rb");
	size_t len, pos = 0, end;

	if (!f)
		bench_die("%s: cannot open", path);
	len = fread(raw, 1, sizeof(raw), f);
	fclose(f);
	end = len;
	if (len > 10 && raw[0] == 2) {
		pos = (size_t)raw[2] << 8 | raw[3];
		while (pos + 6 <= len) {
			unsigned tag = (unsigned)raw[pos] << 8 | raw[pos + 1];
			uint32_t tl = be32_at(raw + pos + 2);

			pos += 6;
			if (tag == 1) {
				end = pos + tl;
				break;
			}
			pos += tl;
		}
		if (end > len || pos >= end)
			bench_die("%s: no libtpms blob in the file", path);
	}
	b->len = (uint32_t)(end - pos);
	b->data = malloc(b->len);
	if (!b->data)
		bench_die("out of memory");
	memcpy(b->data, raw + pos, b->len);
}

struct exec_buf {
	unsigned char *rsp;
	uint32_t len, size;
};

static uint32_t exec_cmd(struct exec_buf *e, const struct tpm_cmd *c)
{
	/* TPMLIB_Process takes a non-const command buffer */
	unsigned char cmd[TPM_CMD_MAX];

	memcpy(cmd, c->b, c->n);
	if (TPMLIB_Process(&e->rsp, &e->len, &e->size, cmd, (uint32_t)c->n) != TPM_SUCCESS)
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
	uint32_t rsp_len = 0;

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
	snprintf(extra, sizeof(extra), "\"cmd_bytes\":%zu,\"rsp_bytes\":%u", c.n, rsp_len);
	bench_emit_stats(name, "us", &st, extra);
	free(s);
}

int main(int argc, char **argv)
{
	struct libtpms_callbacks cbs = {
		.sizeOfStruct = sizeof(cbs),
		.tpm_nvram_init = nv_init,
		.tpm_nvram_loaddata = nv_load,
		.tpm_nvram_storedata = nv_store,
		.tpm_nvram_deletename = nv_delete,
		.tpm_io_init = io_init,
		.tpm_io_getlocality = io_locality,
		.tpm_io_getphysicalpresence = io_pp,
	};
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
			nv_preload(optarg);
			break;
		case 'x':
			return 0;
		default:
			fprintf(stderr, "usage: tpmfloor [-P CPU] [-p PERMALL] [-x] NAME:COUNT...\n");
			return 2;
		}
	}
	t0 = bench_now_us();
	if (TPMLIB_ChooseTPMVersion(TPMLIB_TPM_VERSION_2) != TPM_SUCCESS ||
	    TPMLIB_RegisterCallbacks(&cbs) != TPM_SUCCESS || TPMLIB_MainInit() != TPM_SUCCESS)
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
	TPMLIB_Terminate();
	free(e.rsp);
	return 0;
}
