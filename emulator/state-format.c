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
#include "sha256.h"
#include "state-crypt.h"

#define STATE_HDR_LEN		10u
#define STATE_HDR_VERSION	2u	/* 2 = TLV body; 1 (legacy) is not supported */
#define STATE_HDR_MIN_VERSION	1u	/* what we write */
#define STATE_HDR_MAX_MIN_VERSION 2u	/* readers refuse anything newer */
#define STATE_TLV_HDR_LEN	6u

/* Header flags (spec 3.2). */
#define STATE_FLAG_ENCRYPTED		0x01u
#define STATE_FLAG_MIGRATION_ENCRYPTED	0x02u
#define STATE_FLAG_MIGRATION_DATA	0x04u
#define STATE_FLAG_ENCRYPTED_256	0x08u
#define STATE_FLAG_MIGRATION_256	0x10u

/* TLV tags (spec 3.3). */
#define STATE_TAG_DATA			1u
#define STATE_TAG_ENCRYPTED_DATA	2u
#define STATE_TAG_HMAC			3u
#define STATE_TAG_MIGRATION_DATA	4u
#define STATE_TAG_ENCRYPTED_MIGRATION	5u
#define STATE_TAG_IV			6u
#define STATE_TAG_IV_MIGRATION		7u
/*
 * Ours: SHA-256 of every byte before it, as the last element of a file or
 * blob.  swtpm skips tags it does not know, so it still reads what we
 * write; the value is far above swtpm's tags so a new one of theirs is
 * unlikely to collide.
 */
#define STATE_TAG_DIGEST		0x7642u
#define STATE_DIGEST_TLV_LEN		(STATE_TLV_HDR_LEN + SHA256_LEN)

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

/* ---- the integrity tag ---- */

/* buf holds total bytes ending in room for the digest TLV: fills it in. */
static void state_digest_put(uint8_t *buf, size_t total)
{
	uint8_t *tlv = buf + total - STATE_DIGEST_TLV_LEN;

	sha256(buf, (size_t)(tlv - buf), state_tlv_put(tlv, STATE_TAG_DIGEST, SHA256_LEN));
}

/*
 * For a buffer whose header passed state_hdr_check: 0 with *tagged when the
 * digest is there and matches, 0 without it when there is none (swtpm wrote
 * it), -EBADMSG with *problem and *at when the stream is malformed or the
 * digest is misplaced or wrong.
 */
static int state_digest_verify(const uint8_t *buf, size_t len, bool *tagged, const char **problem, size_t *at)
{
	const uint8_t *val;
	size_t vlen, tlv_off;
	uint8_t digest[SHA256_LEN];
	int ret;

	*tagged = false;
	ret = state_tlv_find(buf + STATE_HDR_LEN, len - STATE_HDR_LEN, STATE_TAG_DIGEST, &val, &vlen);
	if (ret == -ENOENT)
		return 0;
	if (ret) {
		*problem = "the TLV stream runs past the end (truncated or damaged)";
		*at = STATE_HDR_LEN;
		return ret;
	}
	tlv_off = (size_t)(val - buf) - STATE_TLV_HDR_LEN;
	*at = tlv_off;
	if (vlen != SHA256_LEN || tlv_off + STATE_DIGEST_TLV_LEN != len) {
		*problem = "the integrity tag is misplaced or has the wrong length";
		return -EBADMSG;
	}
	sha256(buf, tlv_off, digest);
	if (memcmp(digest, val, SHA256_LEN) != 0) {
		*problem = "SHA-256 mismatch: the contents changed after they were written (damaged)";
		*at = 0;
		return -EBADMSG;
	}
	*tagged = true;
	return 0;
}

/* The decoders' check of a file or blob: a strict header, and the digest matching where there is one. */
static int state_frame_check(const uint8_t *buf, size_t len, uint16_t *flags)
{
	const char *problem;
	size_t at;
	bool tagged;
	int ret = state_hdr_check(buf, len, flags);

	return ret ? ret : state_digest_verify(buf, len, &tagged, &problem, &at);
}

/* ---- files ---- */

int state_file_encode(const uint8_t *payload, size_t len, uint8_t **out, size_t *out_len)
{
	size_t total;
	uint8_t *buf, *p;

	/* totlen is 32 bits. */
	if (len > UINT32_MAX - STATE_HDR_LEN - STATE_TLV_HDR_LEN - STATE_DIGEST_TLV_LEN)
		return -EFBIG;
	if (!payload && len)
		return -EINVAL;
	total = STATE_HDR_LEN + STATE_TLV_HDR_LEN + len + STATE_DIGEST_TLV_LEN;
	buf = malloc(total);
	if (!buf)
		return -ENOMEM;
	state_hdr_put(buf, 0, (uint32_t)total);
	p = state_tlv_put(buf + STATE_HDR_LEN, STATE_TAG_DATA, (uint32_t)len);
	if (len)
		memcpy(p, payload, len);
	state_digest_put(buf, total);
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

	ret = state_frame_check(file, len, &flags);
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

/*
 * The frame of a TPM 2.0 libtpms blob (spec 6.2, 6.3): the magic after the
 * version, and again at the end (permall) or before the SHA-1 (volatile).
 * Anything else (TPM 1.2, or a libtpms we do not know) is left to libtpms.
 */
#define LIBTPMS_PERMALL_MAGIC	0xAB364723u
#define LIBTPMS_VOLATILE_MAGIC	0x45637889u
#define LIBTPMS_SHA1_LEN	20u

static const char *state_payload_problem(enum state_kind kind, const uint8_t *p, size_t len)
{
	uint32_t magic = kind == STATE_PERMANENT ? LIBTPMS_PERMALL_MAGIC : LIBTPMS_VOLATILE_MAGIC;
	size_t tail = kind == STATE_PERMANENT ? 4 : 4 + LIBTPMS_SHA1_LEN;

	if (kind == STATE_SAVESTATE || len < 6 || get_be32(p + 2) != magic)
		return NULL;
	if (len < 6 + tail || get_be32(p + len - tail) != magic)
		return "the TPM 2.0 state inside ends without its closing magic (truncated or damaged)";
	return NULL;
}

int state_file_check(const uint8_t *file, size_t len, enum state_kind kind, struct state_file_report *rep)
{
	const uint8_t *body, *data;
	size_t body_len, data_len;
	int ret;

	memset(rep, 0, sizeof(*rep));
	rep->at = SIZE_MAX;
	if (len < STATE_HDR_LEN) {
		rep->problem = len ? "shorter than the 10-byte header (truncated)" : "empty (truncated)";
		return -EBADMSG;
	}
	rep->flags = get_be16(file + 4);
	if (file[0] != STATE_HDR_VERSION || file[1] > STATE_HDR_MAX_MIN_VERSION ||
	    get_be16(file + 2) != STATE_HDR_LEN) {
		rep->problem = "not a swtpm state file (unknown header version or size)";
		rep->at = 0;
		return -EBADMSG;
	}
	if (get_be32(file + 6) != len) {
		rep->problem = len < get_be32(file + 6) ? "shorter than its header says (truncated)"
							: "longer than its header says (damaged)";
		rep->at = 6;
		return -EBADMSG;
	}
	ret = state_digest_verify(file, len, &rep->tagged, &rep->problem, &rep->at);
	if (ret)
		return ret;
	body = file + STATE_HDR_LEN;
	body_len = len - STATE_HDR_LEN;
	if (state_tlv_find(body, body_len, STATE_TAG_ENCRYPTED_DATA, &data, &data_len) == 0) {
		/* The HMAC is checked when the key is at hand; here only its presence. */
		rep->encrypted = true;
		rep->payload_len = data_len;
		if (!state_tlv_has(body, body_len, STATE_TAG_HMAC)) {
			rep->problem = "encrypted, but the HMAC is missing";
			return -EBADMSG;
		}
		return 0;
	}
	if (state_tlv_find(body, body_len, STATE_TAG_DATA, &data, &data_len)) {
		rep->problem = "holds no state (no DATA element)";
		rep->at = STATE_HDR_LEN;
		return -EBADMSG;
	}
	rep->payload_len = data_len;
	/* Flagged encrypted around plain data: the decoder decides, as 0.7.1's key does (spec 4.5). */
	rep->encrypted = rep->flags & STATE_FLAG_ENCRYPTED;
	if (rep->encrypted)
		return 0;
	if (data_len >= 6) {
		rep->libtpms_version = get_be16(data);
		rep->libtpms_magic = get_be32(data + 2);
	}
	rep->problem = state_payload_problem(kind, data, data_len);
	if (rep->problem) {
		rep->at = (size_t)(data - file);
		return -EBADMSG;
	}
	return 0;
}

/* ---- control-channel blobs ---- */

int state_blob_encode(const uint8_t *payload, size_t len, uint8_t **out, size_t *out_len)
{
	size_t total;
	uint8_t *buf, *p;

	if (len > UINT32_MAX - STATE_HDR_LEN - 2 * STATE_TLV_HDR_LEN - STATE_DIGEST_TLV_LEN)
		return -EFBIG;
	if (!payload && len)
		return -EINVAL;
	total = STATE_HDR_LEN + 2 * STATE_TLV_HDR_LEN + len + STATE_DIGEST_TLV_LEN;
	buf = malloc(total);
	if (!buf)
		return -ENOMEM;
	state_hdr_put(buf, STATE_FLAG_MIGRATION_DATA, (uint32_t)total);
	p = state_tlv_put(buf + STATE_HDR_LEN, STATE_TAG_MIGRATION_DATA,
			  (uint32_t)(STATE_TLV_HDR_LEN + len));
	p = state_tlv_put(p, STATE_TAG_DATA, (uint32_t)len);
	if (len)
		memcpy(p, payload, len);
	state_digest_put(buf, total);
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

	ret = state_frame_check(blob, len, &flags);
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

/* ---- encrypted layers (spec 4, 5) ---- */

/*
 * One layer's tags: the state layer (files, and a blob's inner stream) is
 * DATA or ENCRYPTED_DATA + HMAC + IV; the migration layer of a blob is
 * MIGRATION_DATA or ENCRYPTED_MIGRATION + HMAC + IV_MIGRATION.
 */
struct state_layer {
	uint16_t plain, enc, iv;
};

static const struct state_layer state_layer_state = {
	STATE_TAG_DATA, STATE_TAG_ENCRYPTED_DATA, STATE_TAG_IV,
};
static const struct state_layer state_layer_migration = {
	STATE_TAG_MIGRATION_DATA, STATE_TAG_ENCRYPTED_MIGRATION, STATE_TAG_IV_MIGRATION,
};

/* The bytes a layer of len plaintext bytes takes, or SIZE_MAX when it would not fit a 32-bit totlen. */
static size_t state_layer_len(const struct state_key *key, size_t len)
{
	size_t ct_len;

	if (len > UINT32_MAX - STATE_HDR_LEN - 4 * STATE_TLV_HDR_LEN - 3 * STATE_KEY_MAX - STATE_MAC_LEN -
		  STATE_DIGEST_TLV_LEN)
		return SIZE_MAX;
	if (!state_key_set(key))
		return STATE_TLV_HDR_LEN + len;
	ct_len = state_crypt_len(key, len);
	return 3 * STATE_TLV_HDR_LEN + ct_len + STATE_MAC_LEN + key->len;
}

/* Writes the layer at p: TLV plain(plain), or ciphertext, HMAC, IV in swtpm's order (3.4). */
static int state_layer_put(const struct state_key *key, const struct state_layer *t,
			   const uint8_t *plain, size_t len, uint8_t *p)
{
	size_t ct_len;
	uint8_t *ct, *mac;

	if (!state_key_set(key)) {
		p = state_tlv_put(p, t->plain, (uint32_t)len);
		if (len)
			memcpy(p, plain, len);
		return 0;
	}
	ct_len = state_crypt_len(key, len);
	ct = state_tlv_put(p, t->enc, (uint32_t)ct_len);
	mac = state_tlv_put(ct + ct_len, STATE_TAG_HMAC, STATE_MAC_LEN);
	return state_encrypt(key, plain, len, ct,
			     state_tlv_put(mac + STATE_MAC_LEN, t->iv, (uint32_t)key->len), mac);
}

/*
 * Opens an encrypted layer in a well-formed stream: the ciphertext and the
 * HMAC are required, the IV may be absent (0.7.1 then uses a zero IV).
 * The plaintext is malloc'ed.
 */
static int state_layer_open(const struct state_key *key, const struct state_layer *t,
			    const uint8_t *body, size_t len, uint8_t **plain, size_t *plain_len)
{
	const uint8_t *ct, *mac, *iv = NULL;
	size_t ct_len, mac_len, iv_len = 0;
	int ret;

	ret = state_tlv_find(body, len, t->enc, &ct, &ct_len);
	if (ret == 0)
		ret = state_tlv_find(body, len, STATE_TAG_HMAC, &mac, &mac_len);
	if (ret == 0 && state_tlv_find(body, len, t->iv, &iv, &iv_len) == 0 && iv_len != key->len)
		return -EBADMSG;	/* 0.7.1: the IV is as long as the key */
	if (ret)
		return ret == -ENOENT ? -EBADMSG : ret;
	return state_decrypt(key, ct, ct_len, iv, iv_len, mac, mac_len, plain, plain_len);
}

/* The key length a header says a layer was encrypted with (0.7.1 checks it against the key). */
static int state_key_len_check(const struct state_key *key, uint16_t flags, uint16_t flag_256)
{
	return key->len == ((flags & flag_256) ? 32u : 16u) ? 0 : -EMEDIUMTYPE;
}

int state_file_encrypt(const struct state_key *key, const uint8_t *payload, size_t len,
		       uint8_t **out, size_t *out_len)
{
	size_t layer = state_layer_len(key, len), total;
	uint8_t *buf;
	int ret;

	if (!state_key_set(key) || (!payload && len))
		return -EINVAL;
	if (layer == SIZE_MAX)
		return -EFBIG;
	total = STATE_HDR_LEN + layer + STATE_DIGEST_TLV_LEN;
	buf = malloc(total);
	if (!buf)
		return -ENOMEM;
	state_hdr_put(buf, (uint16_t)(STATE_FLAG_ENCRYPTED | (key->len == 32 ? STATE_FLAG_ENCRYPTED_256 : 0)),
		      (uint32_t)total);
	ret = state_layer_put(key, &state_layer_state, payload, len, buf + STATE_HDR_LEN);
	if (ret) {
		free(buf);
		return ret;
	}
	state_digest_put(buf, total);
	*out = buf;
	*out_len = total;
	return 0;
}

int state_file_decrypt(const struct state_key *key, const uint8_t *file, size_t len,
		       uint8_t **payload, size_t *payload_len)
{
	const uint8_t *body;
	size_t body_len;
	uint16_t flags;
	int ret;

	if (!state_key_set(key))
		return -EINVAL;
	ret = state_frame_check(file, len, &flags);
	if (ret)
		return ret;
	body = file + STATE_HDR_LEN;
	body_len = len - STATE_HDR_LEN;
	/* A well-formed plain file: not ours to convert (0.7.1 refuses it too). */
	if (!state_tlv_has(body, body_len, STATE_TAG_ENCRYPTED_DATA) && state_tlv_has(body, body_len, STATE_TAG_DATA))
		return -ENOMSG;
	/* As 0.7.1: the configured key decides, flag 0x01 is not required; 0x08 must match. */
	ret = state_key_len_check(key, flags, STATE_FLAG_ENCRYPTED_256);
	if (ret)
		return ret;
	return state_layer_open(key, &state_layer_state, body, body_len, payload, payload_len);
}

int state_blob_seal(const struct state_key *state_key, const struct state_key *migration_key,
		    const uint8_t *payload, size_t len, uint8_t **out, size_t *out_len)
{
	size_t inner_len, outer_len, total;
	uint16_t flags = STATE_FLAG_MIGRATION_DATA;
	uint8_t *buf, *inner;
	int ret;

	if (!state_key_set(state_key) && !state_key_set(migration_key))
		return state_blob_encode(payload, len, out, out_len);
	if (!payload && len)
		return -EINVAL;
	inner_len = state_layer_len(state_key, len);
	outer_len = inner_len == SIZE_MAX ? SIZE_MAX : state_layer_len(migration_key, inner_len);
	if (outer_len == SIZE_MAX)
		return -EFBIG;
	if (state_key_set(state_key))
		flags |= STATE_FLAG_ENCRYPTED | (state_key->len == 32 ? STATE_FLAG_ENCRYPTED_256 : 0);
	if (state_key_set(migration_key))
		flags |= STATE_FLAG_MIGRATION_ENCRYPTED | (migration_key->len == 32 ? STATE_FLAG_MIGRATION_256 : 0);
	total = STATE_HDR_LEN + outer_len + STATE_DIGEST_TLV_LEN;
	buf = malloc(total);
	inner = malloc(inner_len);
	if (!buf || !inner) {
		free(buf);
		free(inner);
		return -ENOMEM;
	}
	state_hdr_put(buf, flags, (uint32_t)total);
	ret = state_layer_put(state_key, &state_layer_state, payload, len, inner);
	if (ret == 0)
		ret = state_layer_put(migration_key, &state_layer_migration, inner, inner_len, buf + STATE_HDR_LEN);
	/* The inner stream may be plain state. */
	state_crypt_free(inner, inner_len);
	if (ret) {
		state_crypt_free(buf, total);
		return ret;
	}
	state_digest_put(buf, total);
	*out = buf;
	*out_len = total;
	return 0;
}

/* The state layer of a blob (spec 5.2 step 4), into a malloc'ed payload. */
static int state_blob_open_inner(const struct state_key *state_key, uint16_t flags, uint32_t req_flags,
				 const uint8_t *inner, size_t inner_len, uint8_t **payload, size_t *payload_len)
{
	const uint8_t *data;
	size_t data_len;
	int ret;

	if ((req_flags & PTM_STATE_FLAG_ENCRYPTED) || (flags & STATE_FLAG_ENCRYPTED)) {
		if (!state_key_set(state_key))
			return -ENOKEY;
		ret = state_key_len_check(state_key, flags, STATE_FLAG_ENCRYPTED_256);
		return ret ? ret : state_layer_open(state_key, &state_layer_state, inner, inner_len, payload,
						    payload_len);
	}
	ret = state_tlv_find(inner, inner_len, STATE_TAG_DATA, &data, &data_len);
	if (ret)
		return ret == -ENOENT && state_tlv_has(inner, inner_len, STATE_TAG_ENCRYPTED_DATA) ? -ENOKEY : -EBADMSG;
	*payload = malloc(data_len ? data_len : 1);
	if (!*payload)
		return -ENOMEM;
	if (data_len)
		memcpy(*payload, data, data_len);
	*payload_len = data_len;
	return 0;
}

int state_blob_unseal(const struct state_key *state_key, const struct state_key *migration_key,
		      const uint8_t *blob, size_t len, uint32_t req_flags, uint8_t **payload, size_t *payload_len)
{
	const uint8_t *inner;
	uint8_t *opened = NULL;
	size_t inner_len, opened_len = 0;
	uint16_t flags;
	int ret;

	ret = state_hdr_check(blob, len, &flags);
	if (ret)
		return ret;
	/* Nothing encrypted (an empty body included): the keyless decoder, and a copy. */
	if (len == STATE_HDR_LEN || (!(flags & (STATE_FLAG_MIGRATION_ENCRYPTED | STATE_FLAG_ENCRYPTED)) &&
				      !(req_flags & PTM_STATE_FLAG_ENCRYPTED))) {
		ret = state_blob_decode(blob, len, req_flags, &inner, &inner_len);
		if (ret || !inner) {
			*payload = NULL;
			*payload_len = 0;
			return ret;
		}
		*payload = malloc(inner_len ? inner_len : 1);
		if (!*payload)
			return -ENOMEM;
		if (inner_len)
			memcpy(*payload, inner, inner_len);
		*payload_len = inner_len;
		return 0;
	}
	/* (the keyless path above checks the digest in state_blob_decode) */
	ret = state_frame_check(blob, len, &flags);
	if (ret)
		return ret;
	if (!(flags & STATE_FLAG_MIGRATION_DATA))
		return -EBADMSG;
	if (flags & STATE_FLAG_MIGRATION_ENCRYPTED) {
		/* Spec 5.2 step 3: a migration key is needed; a plain migration layer is taken with or without one. */
		if (!state_key_set(migration_key))
			return -ENOKEY;
		ret = state_key_len_check(migration_key, flags, STATE_FLAG_MIGRATION_256);
		if (ret == 0)
			ret = state_layer_open(migration_key, &state_layer_migration, blob + STATE_HDR_LEN,
					       len - STATE_HDR_LEN, &opened, &opened_len);
		if (ret)
			return ret;
		inner = opened;
		inner_len = opened_len;
	} else if (state_tlv_find(blob + STATE_HDR_LEN, len - STATE_HDR_LEN, STATE_TAG_MIGRATION_DATA,
				  &inner, &inner_len)) {
		return -EBADMSG;
	}
	ret = state_blob_open_inner(state_key, flags, req_flags, inner, inner_len, payload, payload_len);
	state_crypt_free(opened, opened_len);
	return ret;
}
