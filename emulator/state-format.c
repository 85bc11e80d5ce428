/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * swtpm's state byte format (../shared/spec/state-files.md, sections 3
 * and 5): a 10-byte big-endian header followed by a TLV stream.  Files
 * hold TLV DATA; control-channel blobs wrap it in a MIGRATION_DATA layer.
 *
 * Everything here parses bytes a client or a disk hands us, so it takes
 * (buf, len), checks the length before reading any field and rejects
 * anything it does not fully understand.  No I/O and no logging: a client
 * can send garbage blobs at will, so the callers decide what to log.
 */
#include "state.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ptm.h>

#include "bytes.h"

#define STATE_HDR_LEN		10u
#define STATE_HDR_VERSION	2u	/* 2 = TLV body; 1 (legacy) is not supported */
#define STATE_HDR_MIN_VERSION	1u	/* what we write */
#define STATE_HDR_MAX_MIN_VERSION 2u	/* readers refuse anything newer */
#define STATE_TLV_HDR_LEN	6u

/* Header flags (spec 3.2). */
#define STATE_FLAG_ENCRYPTED		0x01u
#define STATE_FLAG_MIGRATION_ENCRYPTED	0x02u
#define STATE_FLAG_MIGRATION_DATA	0x04u

/* TLV tags (spec 3.3). */
#define STATE_TAG_DATA			1u
#define STATE_TAG_ENCRYPTED_DATA	2u
#define STATE_TAG_MIGRATION_DATA	4u

/* libtpms's names for the blob types. */
static const struct {
	enum state_kind kind;
	const char *name;
} state_kinds[] = {
	{ STATE_PERMANENT, "permall" },
	{ STATE_VOLATILE, "volatilestate" },
	{ STATE_SAVESTATE, "savestate" },
};

/* NULL for a number that is not a kind (it may come from a client). */
const char *state_kind_name(enum state_kind kind)
{
	for (size_t i = 0; i < sizeof(state_kinds) / sizeof(state_kinds[0]); i++) {
		if (state_kinds[i].kind == kind)
			return state_kinds[i].name;
	}
	return NULL;
}

int state_kind_from_name(const char *name, enum state_kind *kind)
{
	if (!name)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(state_kinds) / sizeof(state_kinds[0]); i++) {
		if (strcmp(name, state_kinds[i].name) == 0) {
			*kind = state_kinds[i].kind;
			return 0;
		}
	}
	return -EINVAL;
}

/* ---- header ---- */

static void state_hdr_put(uint8_t *p, uint16_t flags, uint32_t totlen)
{
	p[0] = STATE_HDR_VERSION;
	p[1] = STATE_HDR_MIN_VERSION;
	put_be16(p + 2, STATE_HDR_LEN);
	put_be16(p + 4, flags);
	put_be32(p + 6, totlen);
}

/*
 * Checks the header strictly (spec 3.1, 6.5) and returns its flags.  The
 * length is checked before any field is read: 0.7.1 compared it with the
 * size of a pointer and read past short input.
 */
static int state_hdr_check(const uint8_t *buf, size_t len, uint16_t *flags)
{
	if (len < STATE_HDR_LEN)
		return -EBADMSG;
	if (buf[0] != STATE_HDR_VERSION)
		return -EBADMSG;
	if (buf[1] > STATE_HDR_MAX_MIN_VERSION)
		return -EBADMSG;
	if (get_be16(buf + 2) != STATE_HDR_LEN)
		return -EBADMSG;
	if (get_be32(buf + 6) != len)
		return -EBADMSG;
	*flags = get_be16(buf + 4);
	return 0;
}

/* ---- TLV stream ---- */

/*
 * Walks the whole stream, which must end exactly at len, and finds the
 * first element with the tag (readers search; order does not matter and
 * unknown tags are skipped).  Returns 0 and the value, -ENOENT when the
 * stream is well formed but lacks the tag, -EBADMSG when it is malformed.
 * off never exceeds len and every length is compared with what remains,
 * so nothing can overflow.
 */
static int state_tlv_find(const uint8_t *buf, size_t len, uint16_t tag,
			  const uint8_t **val, size_t *val_len)
{
	const uint8_t *first = NULL;
	size_t first_len = 0, off = 0;

	while (off < len) {
		size_t left = len - off;
		uint32_t vlen;

		if (left < STATE_TLV_HDR_LEN)
			return -EBADMSG;
		vlen = get_be32(buf + off + 2);
		if (vlen > left - STATE_TLV_HDR_LEN)
			return -EBADMSG;
		if (!first && get_be16(buf + off) == tag) {
			first = buf + off + STATE_TLV_HDR_LEN;
			first_len = vlen;
		}
		off += STATE_TLV_HDR_LEN + vlen;
	}
	if (!first)
		return -ENOENT;
	*val = first;
	*val_len = first_len;
	return 0;
}

/* A well-formed stream's answer to "is this tag there?". */
static bool state_tlv_has(const uint8_t *buf, size_t len, uint16_t tag)
{
	const uint8_t *val;
	size_t vlen;

	return state_tlv_find(buf, len, tag, &val, &vlen) == 0;
}

static uint8_t *state_tlv_put(uint8_t *p, uint16_t tag, uint32_t len)
{
	put_be16(p, tag);
	put_be32(p + 2, len);
	return p + STATE_TLV_HDR_LEN;
}

/* ---- files ---- */

int state_file_encode(const uint8_t *payload, size_t len, uint8_t **out, size_t *out_len)
{
	size_t total;
	uint8_t *buf, *p;

	/* totlen is 32 bits. */
	if (len > UINT32_MAX - STATE_HDR_LEN - STATE_TLV_HDR_LEN)
		return -EFBIG;
	if (!payload && len)
		return -EINVAL;
	total = STATE_HDR_LEN + STATE_TLV_HDR_LEN + len;
	buf = malloc(total);
	if (!buf)
		return -ENOMEM;
	state_hdr_put(buf, 0, (uint32_t)total);
	p = state_tlv_put(buf + STATE_HDR_LEN, STATE_TAG_DATA, (uint32_t)len);
	if (len)
		memcpy(p, payload, len);
	*out = buf;
	*out_len = total;
	return 0;
}

int state_file_decode(const uint8_t *file, size_t len, const uint8_t **payload, size_t *payload_len)
{
	const uint8_t *body, *data;
	size_t body_len, data_len;
	uint16_t flags;
	int ret;

	ret = state_hdr_check(file, len, &flags);
	if (ret)
		return ret;
	body = file + STATE_HDR_LEN;
	body_len = len - STATE_HDR_LEN;
	ret = state_tlv_find(body, body_len, STATE_TAG_DATA, &data, &data_len);
	if (ret == -EBADMSG)
		return ret;
	/*
	 * 0.7.1 lets the configured key decide; we have none, so a file that
	 * says it is encrypted, or only holds ciphertext, needs a key.  (Flag
	 * 0x08 alone does not mean encrypted: such a plain file loads in 0.7.1.)
	 */
	if (flags & STATE_FLAG_ENCRYPTED)
		return -ENOKEY;
	if (ret == -ENOENT)
		return state_tlv_has(body, body_len, STATE_TAG_ENCRYPTED_DATA) ? -ENOKEY : -EBADMSG;
	*payload = data;
	*payload_len = data_len;
	return 0;
}

/* ---- control-channel blobs ---- */

int state_blob_encode(const uint8_t *payload, size_t len, uint8_t **out, size_t *out_len)
{
	size_t total;
	uint8_t *buf, *p;

	if (len > UINT32_MAX - STATE_HDR_LEN - 2 * STATE_TLV_HDR_LEN)
		return -EFBIG;
	if (!payload && len)
		return -EINVAL;
	total = STATE_HDR_LEN + 2 * STATE_TLV_HDR_LEN + len;
	buf = malloc(total);
	if (!buf)
		return -ENOMEM;
	state_hdr_put(buf, STATE_FLAG_MIGRATION_DATA, (uint32_t)total);
	p = state_tlv_put(buf + STATE_HDR_LEN, STATE_TAG_MIGRATION_DATA,
			  (uint32_t)(STATE_TLV_HDR_LEN + len));
	p = state_tlv_put(p, STATE_TAG_DATA, (uint32_t)len);
	if (len)
		memcpy(p, payload, len);
	*out = buf;
	*out_len = total;
	return 0;
}

/*
 * A valid header with an empty body returns 0 with *payload NULL and
 * *payload_len 0: swtpm treats it as "clear the cached state", like a
 * zero-length blob.
 */
int state_blob_decode(const uint8_t *blob, size_t len, uint32_t req_flags, const uint8_t **payload, size_t *payload_len)
{
	const uint8_t *body, *inner, *data;
	size_t body_len, inner_len, data_len;
	uint16_t flags;
	int ret;

	ret = state_hdr_check(blob, len, &flags);
	if (ret)
		return ret;
	body = blob + STATE_HDR_LEN;
	body_len = len - STATE_HDR_LEN;
	if (body_len == 0) {
		*payload = NULL;
		*payload_len = 0;
		return 0;
	}
	/* Every blob swtpm makes has the migration layer; a raw file does not. */
	if (!(flags & STATE_FLAG_MIGRATION_DATA))
		return -EBADMSG;
	ret = state_tlv_find(body, body_len, STATE_TAG_MIGRATION_DATA, &inner, &inner_len);
	if (ret == -EBADMSG)
		return ret;
	/* The outer layer is migration-key ciphertext (tag 5); we hold no key. */
	if (flags & STATE_FLAG_MIGRATION_ENCRYPTED)
		return -ENOKEY;
	if (ret)
		return -EBADMSG;
	ret = state_tlv_find(inner, inner_len, STATE_TAG_DATA, &data, &data_len);
	if (ret == -EBADMSG)
		return ret;
	/* Either side saying "state-key encrypted" makes 0.7.1 decrypt. */
	if ((req_flags & PTM_STATE_FLAG_ENCRYPTED) || (flags & STATE_FLAG_ENCRYPTED))
		return -ENOKEY;
	if (ret)
		return state_tlv_has(inner, inner_len, STATE_TAG_ENCRYPTED_DATA) ? -ENOKEY : -EBADMSG;
	*payload = data;
	*payload_len = data_len;
	return 0;
}
