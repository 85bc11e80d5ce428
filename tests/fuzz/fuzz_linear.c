/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for emulator/state-linear.c: the input is a whole
 * linear state file, hostile, as a memfd.  The storage layer must list,
 * load and store through it without reading or writing out of bounds; the
 * contract checked: only the documented errors, a header that decodes
 * describes sections inside the file, and a store into a file we accepted
 * loads back exactly while the states it did not touch stay as they were.
 */
#include "state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_FILE_MAX	(64 * 1024)

static void fuzz_header(const uint8_t *data, size_t size)
{
	uint8_t hdr[STATE_LINEAR_HDR_SIZE] = { 0 }, again[STATE_LINEAR_HDR_SIZE];
	struct state_linear_layout l, l2;
	int ret;

	memcpy(hdr, data, size < sizeof(hdr) ? size : sizeof(hdr));
	ret = state_linear_decode(hdr, size, &l);
	if (ret != 0 && ret != -ENODATA && ret != -EBADMSG && ret != -EPROTONOSUPPORT)
		abort();
	if (ret)
		return;
	for (int i = 0; i < STATE_LINEAR_SLOTS; i++) {
		if (l.slot[i].offset && ((uint64_t)l.slot[i].offset + l.slot[i].section_len > size ||
					 l.slot[i].data_len > l.slot[i].section_len))
			abort();
	}
	state_linear_encode(&l, again);
	if (state_linear_decode(again, size, &l2) || memcmp(&l, &l2, sizeof(l)))
		abort();
}

static bool fuzz_load(struct state_store *st, enum state_kind kind, uint8_t **out, size_t *len)
{
	int ret = state_load(st, kind, out, len);

	if (ret != 0 && ret != -ENOENT && ret != -EBADMSG && ret != -ENOKEY && ret != -EFBIG &&
	    ret != -EPROTONOSUPPORT)
		abort();
	return ret == 0;
}

static void fuzz_store(const uint8_t *data, size_t size)
{
	struct state_config cfg = { .backend = STATE_BACKEND_FILE, .mode = 0600, .tpm2 = true };
	static const uint8_t payload[] = "fuzzed permall";
	struct state_info info[STATE_LINEAR_SLOTS];
	uint8_t *vol = NULL, *vol2 = NULL, *perm = NULL;
	size_t n, vol_len = 0, vol2_len = 0, perm_len = 0;
	struct state_store *st;
	char path[64];
	int fd, ret;

	fd = memfd_create("fuzz-linear", 0);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	cfg.path = path;
	if (state_store_open(&st, &cfg))
		abort();
	ret = state_list(st, info, &n);
	if (ret == 0 && n > STATE_LINEAR_SLOTS)
		abort();
	fuzz_load(st, STATE_PERMANENT, &perm, &perm_len);
	bool had_vol = fuzz_load(st, STATE_VOLATILE, &vol, &vol_len);
	/* Only a file we accepted is written to. */
	ret = state_save(st, STATE_PERMANENT, payload, sizeof(payload));
	if (ret == 0) {
		free(perm);
		perm = NULL;
		if (!fuzz_load(st, STATE_PERMANENT, &perm, &perm_len) || perm_len != sizeof(payload) ||
		    memcmp(perm, payload, perm_len))
			abort();
		if (had_vol != fuzz_load(st, STATE_VOLATILE, &vol2, &vol2_len) ||
		    (had_vol && (vol2_len != vol_len || memcmp(vol, vol2, vol_len))))
			abort();
	} else if (ret != -EBADMSG && ret != -EPROTONOSUPPORT) {
		abort();
	}
	free(perm);
	free(vol);
	free(vol2);
	state_store_close(st);
	close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > FUZZ_FILE_MAX)
		return 0;
	fuzz_header(data, size);
	fuzz_store(data, size);
	return 0;
}
