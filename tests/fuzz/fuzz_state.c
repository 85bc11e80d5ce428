/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for emulator/state-format.c: the input is a state file
 * for state_file_check (as each kind) and state_file_decode and, after its
 * first byte (the request's PTM_STATE_FLAG_*), a control-channel blob for
 * state_blob_decode.  Besides the sanitizers it checks the contract: only
 * 0, -EBADMSG or -ENOKEY; a payload lies inside the input; what decodes
 * re-encodes to something that decodes to the same payload; a plain file
 * the check passes decodes to a payload of the length it reported; a file
 * we wrote carries a matching digest, and with any one byte changed is
 * never reported as matching it.
 */
#include "state.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check_result(int ret, const uint8_t *in, size_t in_len,
			      const uint8_t *payload, size_t payload_len)
{
	if (ret != 0 && ret != -EBADMSG && ret != -ENOKEY)
		abort();
	if (ret || !payload)
		return;
	if (payload < in || payload_len > in_len || (size_t)(payload - in) > in_len - payload_len)
		abort();
}

/* state_file_check's contract on any input; returns what it returned. */
static int fuzz_check(const uint8_t *file, size_t len, enum state_kind kind, struct state_file_report *rep)
{
	int ret = state_file_check(file, len, kind, rep);

	if ((ret != 0 && ret != -EBADMSG) || (ret == 0) != (rep->problem == NULL) ||
	    (rep->at != SIZE_MAX && rep->at > len) || rep->payload_len > len)
		abort();
	return ret;
}

static void fuzz_check_raw(const uint8_t *data, size_t size)
{
	for (enum state_kind kind = STATE_PERMANENT; kind <= STATE_SAVESTATE; kind++) {
		struct state_file_report rep;
		const uint8_t *payload;
		size_t payload_len;

		if (fuzz_check(data, size, kind, &rep) == 0 && !rep.encrypted &&
		    (state_file_decode(data, size, &payload, &payload_len) || payload_len != rep.payload_len))
			abort();
	}
}

/* A file we wrote: its digest matches; `flip` changed, it never matches. */
static void fuzz_check_written(uint8_t *file, size_t len, size_t flip)
{
	struct state_file_report rep;

	if (fuzz_check(file, len, STATE_SAVESTATE, &rep) || !rep.tagged)
		abort();
	file[flip % len] ^= 0x5a;
	if (fuzz_check(file, len, STATE_SAVESTATE, &rep) == 0 && rep.tagged)
		abort();
	file[flip % len] ^= 0x5a;
}

static void fuzz_file(const uint8_t *data, size_t size)
{
	const uint8_t *payload = NULL, *again;
	size_t payload_len = 0, again_len;
	uint8_t *out;
	size_t out_len;
	int ret;

	ret = state_file_decode(data, size, &payload, &payload_len);
	fuzz_check_result(ret, data, size, payload, payload_len);
	if (ret)
		return;
	if (!payload || state_file_encode(payload, payload_len, &out, &out_len))
		abort();
	if (state_file_decode(out, out_len, &again, &again_len) || again_len != payload_len ||
	    memcmp(again, payload, payload_len))
		abort();
	fuzz_check_written(out, out_len, size ? data[size - 1] * 131u : 0);
	free(out);
}

static void fuzz_blob(uint32_t req_flags, const uint8_t *data, size_t size)
{
	const uint8_t *payload = NULL, *again;
	size_t payload_len = 0, again_len;
	uint8_t *out;
	size_t out_len;
	int ret;

	ret = state_blob_decode(data, size, req_flags, &payload, &payload_len);
	fuzz_check_result(ret, data, size, payload, payload_len);
	if (ret)
		return;
	if (!payload) {		/* a header with an empty body: "clear" */
		if (payload_len || size != 10)
			abort();
		return;
	}
	if (state_blob_encode(payload, payload_len, &out, &out_len))
		abort();
	if (state_blob_decode(out, out_len, 0, &again, &again_len) || again_len != payload_len ||
	    memcmp(again, payload, payload_len))
		abort();
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_check_raw(data, size);
	fuzz_file(data, size);
	if (size)
		fuzz_blob(data[0], data + 1, size - 1);
	return 0;
}
