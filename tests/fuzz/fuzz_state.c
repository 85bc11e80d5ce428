/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for emulator/state-format.c: the input is a state file
 * for state_file_decode and, after its first byte (the request's
 * PTM_STATE_FLAG_*), a control-channel blob for state_blob_decode.
 * Besides the sanitizers it checks the contract: only 0, -EBADMSG or
 * -ENOKEY; a payload lies inside the input; what decodes re-encodes to
 * something that decodes to the same payload.
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
	fuzz_file(data, size);
	if (size)
		fuzz_blob(data[0], data + 1, size - 1);
	return 0;
}
