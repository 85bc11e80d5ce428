/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for the encrypted formats (emulator/state-format.c
 * with emulator/state-crypt.c).  The first byte chooses the keys and the
 * request's flags: bits 0-1 the state key (0 none, 1 AES-128, 2 and 3
 * AES-256), bits 2-3 the migration key (the same), bit 4
 * PTM_STATE_FLAG_ENCRYPTED, bit 5 PTM_STATE_FLAG_DECRYPTED; the rest is a
 * state file for state_file_decrypt and a blob for state_blob_unseal.
 * The keys are those of tests/fuzz/seeds/fuzz_crypt (files and blobs made
 * by swtpm 0.7.1), so the seeds open.  Contract: only the documented
 * errors; what opens is shorter than the input, and sealed again with the
 * same keys opens to the same payload; a blob nothing encrypts opens as
 * the keyless decoder reads it.
 */
#include "state.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ptm.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t fuzz_key_bytes[32] = {
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
	0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
};

static const struct state_key *fuzz_key(unsigned int sel, struct state_key *k)
{
	if (sel == 0)
		return NULL;
	k->len = sel == 1 ? 16 : 32;
	memcpy(k->bytes, fuzz_key_bytes, k->len);
	return k;
}

static void fuzz_file(const struct state_key *key, const uint8_t *data, size_t size)
{
	uint8_t *payload = NULL, *file, *again;
	size_t payload_len = 0, file_len, again_len;
	int ret = state_file_decrypt(key, data, size, &payload, &payload_len);

	if (ret != 0 && ret != -EBADMSG && ret != -ENOMSG && ret != -EMEDIUMTYPE && ret != -EKEYREJECTED)
		abort();
	if (ret)
		return;
	if (payload_len >= size)
		abort();
	if (state_file_encrypt(key, payload, payload_len, &file, &file_len) ||
	    state_file_decrypt(key, file, file_len, &again, &again_len) || again_len != payload_len ||
	    memcmp(again, payload, payload_len))
		abort();
	state_crypt_free(again, again_len);
	free(file);
	state_crypt_free(payload, payload_len);
}

static void fuzz_blob(const struct state_key *sk, const struct state_key *mk, uint32_t req_flags,
		      const uint8_t *data, size_t size)
{
	uint8_t *payload = NULL, *blob, *again;
	size_t payload_len = 0, blob_len, again_len;
	const uint8_t *plain;
	size_t plain_len;
	int ret = state_blob_unseal(sk, mk, data, size, req_flags, &payload, &payload_len);

	if (ret != 0 && ret != -EBADMSG && ret != -ENOKEY && ret != -EMEDIUMTYPE && ret != -EKEYREJECTED)
		abort();
	if (ret)
		return;
	if (!payload) {		/* an empty body: "clear" */
		if (payload_len || size != 10)
			abort();
		return;
	}
	if (payload_len >= size)
		abort();
	/* Where the keyless decoder takes the blob, both must read the same payload. */
	if (state_blob_decode(data, size, req_flags, &plain, &plain_len) == 0 &&
	    (!plain || plain_len != payload_len || memcmp(plain, payload, payload_len)))
		abort();
	if (state_blob_seal(sk, mk, payload, payload_len, &blob, &blob_len) ||
	    state_blob_unseal(sk, mk, blob, blob_len, 0, &again, &again_len) || again_len != payload_len ||
	    memcmp(again, payload, payload_len))
		abort();
	state_crypt_free(again, again_len);
	free(blob);
	state_crypt_free(payload, payload_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct state_key sk_buf, mk_buf;
	const struct state_key *sk, *mk;
	uint32_t req_flags;

	if (size < 1)
		return 0;
	sk = fuzz_key(data[0] & 3, &sk_buf);
	mk = fuzz_key((data[0] >> 2) & 3, &mk_buf);
	req_flags = (data[0] & 0x10 ? PTM_STATE_FLAG_ENCRYPTED : 0) | (data[0] & 0x20 ? PTM_STATE_FLAG_DECRYPTED : 0);
	if (sk)
		fuzz_file(sk, data + 1, size - 1);
	fuzz_blob(sk, mk, req_flags, data + 1, size - 1);
	return 0;
}
