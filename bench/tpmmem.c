/*
 * tpmmem.c - libtpms in this process with its NVRAM in memory: the TPM of
 * the floor tools (tpmfloor, echosrv -T).  No files, no IPC.
 */
#include "tpmmem.h"
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
void tpmmem_preload(const char *path)
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

static const struct libtpms_callbacks tpmmem_callbacks = {
	.sizeOfStruct = sizeof(struct libtpms_callbacks),
	.tpm_nvram_init = nv_init,
	.tpm_nvram_loaddata = nv_load,
	.tpm_nvram_storedata = nv_store,
	.tpm_nvram_deletename = nv_delete,
	.tpm_io_init = io_init,
	.tpm_io_getlocality = io_locality,
	.tpm_io_getphysicalpresence = io_pp,
};

static struct {
	unsigned char *rsp;
	uint32_t len, size;
} out;

int tpmmem_init(void)
{
	struct libtpms_callbacks cbs = tpmmem_callbacks;

	if (TPMLIB_ChooseTPMVersion(TPMLIB_TPM_VERSION_2) != TPM_SUCCESS ||
	    TPMLIB_RegisterCallbacks(&cbs) != TPM_SUCCESS || TPMLIB_MainInit() != TPM_SUCCESS)
		return -1;
	return 0;
}

const uint8_t *tpmmem_process(const uint8_t *cmd, size_t n, size_t *rsp_len)
{
	/* TPMLIB_Process takes a non-const command buffer */
	unsigned char buf[TPMMEM_CMD_MAX];

	if (n > sizeof(buf))
		return NULL;
	memcpy(buf, cmd, n);
	if (TPMLIB_Process(&out.rsp, &out.len, &out.size, buf, (uint32_t)n) != TPM_SUCCESS)
		return NULL;
	*rsp_len = out.len;
	return out.rsp;
}

void tpmmem_terminate(void)
{
	TPMLIB_Terminate();
	free(out.rsp);
	out.rsp = NULL;
}
