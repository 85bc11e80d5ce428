/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Tests for emulator/state-format.c (swtpm's header + TLV codecs) and
 * emulator/state.c (the state directory: atomic stores, the .lock file).
 * The swtpm_* tests run Debian's swtpm next to us; they say SKIP without it.
 */
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ptm.h>

#include "unit.h"

#define SWTPM		"/usr/bin/swtpm"
#define SWTPM_IOCTL	"/usr/bin/swtpm_ioctl"

/* "abc" as swtpm 0.7.1 writes it: header (totlen 19), TLV 1 of length 3. */
static const uint8_t file_abc[] = {
	0x02, 0x01, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x13,
	0x00, 0x01, 0x00, 0x00, 0x00, 0x03, 'a', 'b', 'c',
};

/* The same as a blob: flag 0x04, TLV 4 { TLV 1 }, totlen 25. */
static const uint8_t blob_abc[] = {
	0x02, 0x01, 0x00, 0x0a, 0x00, 0x04, 0x00, 0x00, 0x00, 0x19,
	0x00, 0x04, 0x00, 0x00, 0x00, 0x09,
	0x00, 0x01, 0x00, 0x00, 0x00, 0x03, 'a', 'b', 'c',
};

/*
 * What we write: the same, then our integrity TLV (tag 0x7642, 32 bytes:
 * SHA-256 of every byte before it; totlen grows by 38).  The digests were
 * computed with Python's hashlib.
 */
#define DIGEST_TLV 38
static const uint8_t ours_abc[] = {
	0x02, 0x01, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x39,
	0x00, 0x01, 0x00, 0x00, 0x00, 0x03, 'a', 'b', 'c',
	0x76, 0x42, 0x00, 0x00, 0x00, 0x20,
	0x83, 0xaf, 0xd5, 0xdd, 0xd1, 0x29, 0x6d, 0x03, 0x93, 0x8c, 0xe2, 0xe1, 0x98, 0x7e, 0x99, 0x55,
	0x07, 0xa5, 0xc0, 0x67, 0x7e, 0x50, 0x41, 0x2d, 0x77, 0x62, 0xb1, 0x2b, 0x12, 0xe8, 0x97, 0x2c,
};

static const uint8_t ours_blob_abc[] = {
	0x02, 0x01, 0x00, 0x0a, 0x00, 0x04, 0x00, 0x00, 0x00, 0x3f,
	0x00, 0x04, 0x00, 0x00, 0x00, 0x09,
	0x00, 0x01, 0x00, 0x00, 0x00, 0x03, 'a', 'b', 'c',
	0x76, 0x42, 0x00, 0x00, 0x00, 0x20,
	0xf7, 0xe3, 0xf4, 0x14, 0x25, 0x22, 0x87, 0x71, 0x36, 0xf4, 0x7f, 0x26, 0xa1, 0xa3, 0x2d, 0x5a,
	0xf7, 0xc1, 0x1e, 0xb9, 0xd9, 0x36, 0x1f, 0x2b, 0x4c, 0xf1, 0x3a, 0x7d, 0x0c, 0xd6, 0xfa, 0x62,
};

/* ---- helpers ---- */

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Builds header + body in buf (at least 10 + body_len); returns the length. */
static size_t make_file(uint8_t *buf, uint16_t flags, const uint8_t *body, size_t body_len)
{
	buf[0] = 2;
	buf[1] = 1;
	put_be16(buf + 2, 10);
	put_be16(buf + 4, flags);
	put_be32(buf + 6, (uint32_t)(10 + body_len));
	if (body_len)
		memcpy(buf + 10, body, body_len);
	return 10 + body_len;
}

/* Appends a TLV at buf + *off. */
static void put_tlv(uint8_t *buf, size_t *off, uint16_t tag, const void *val, uint32_t len)
{
	put_be16(buf + *off, tag);
	put_be32(buf + *off + 2, len);
	memcpy(buf + *off + 6, val, len);
	*off += 6 + len;
}

static int file_decode_abc(const uint8_t *file, size_t len)
{
	const uint8_t *p;
	size_t n;
	int ret = state_file_decode(file, len, &p, &n);

	if (ret)
		return ret;
	return n == 3 && memcmp(p, "abc", 3) == 0 ? 0 : -EPROTO;
}

static int blob_decode_abc(const uint8_t *blob, size_t len, uint32_t req_flags)
{
	const uint8_t *p;
	size_t n;
	int ret = state_blob_decode(blob, len, req_flags, &p, &n);

	if (ret)
		return ret;
	return n == 3 && memcmp(p, "abc", 3) == 0 ? 0 : -EPROTO;
}

/* Reads a whole file (malloc'ed); -errno. */
static int read_file(const char *path, uint8_t **data, size_t *len)
{
	uint8_t *buf = NULL;
	size_t n = 0, cap = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t r;

		if (n == cap) {
			uint8_t *nb = realloc(buf, cap ? 2 * cap : 4096);

			if (!nb) {
				free(buf);
				close(fd);
				return -ENOMEM;
			}
			buf = nb;
			cap = cap ? 2 * cap : 4096;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0) {
			int err = errno;

			free(buf);
			close(fd);
			return -err;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	*data = buf;
	*len = n;
	return 0;
}

static bool file_equals(const char *path, const void *data, size_t len)
{
	uint8_t *buf;
	size_t n;
	bool eq;

	if (read_file(path, &buf, &n))
		return false;
	eq = n == len && memcmp(buf, data, len) == 0;
	free(buf);
	return eq;
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static int file_mode(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
}

/* A state's size as --print-states reports it, or -ENOENT. */
static int listed_size(struct state_store *st, enum state_kind kind, size_t *size)
{
	struct state_info info[STATE_LINEAR_SLOTS];
	size_t n;
	int ret = state_list(st, info, &n);

	if (ret)
		return ret;
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(info[i].name, state_kind_name(kind))) {
			*size = info[i].size;
			return 0;
		}
	}
	return -ENOENT;
}

static int open_dir(struct state_store **dir, const char *path, mode_t mode, bool mode_set)
{
	struct state_config cfg = {
		.path = path,
		.mode = mode,
		.mode_set = mode_set,
		.tpm2 = true,
	};

	return state_store_open(dir, &cfg);
}

/* In a child: a second state_dir on path tries the lock; returns its -errno (or -1000). */
static int lock_in_child(const char *path)
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -1000;
	if (pid == 0) {
		struct state_store *dir;
		int ret = open_dir(&dir, path, 0640, false);

		if (ret == 0) {
			ret = state_lock(dir);
			state_store_close(dir);
		}
		_exit(ret <= 0 && ret > -256 ? -ret : 255);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1000;
	return -WEXITSTATUS(status);
}

/* ---- kinds ---- */

TEST(kind_names)
{
	enum state_kind k;

	CHECK(strcmp(state_kind_name(STATE_PERMANENT), "permall") == 0);
	CHECK(strcmp(state_kind_name(STATE_VOLATILE), "volatilestate") == 0);
	CHECK(strcmp(state_kind_name(STATE_SAVESTATE), "savestate") == 0);
	CHECK(state_kind_name((enum state_kind)0) == NULL);
	CHECK(state_kind_name((enum state_kind)4) == NULL);
	CHECK_EQ(STATE_PERMANENT, PTM_BLOB_TYPE_PERMANENT);
	CHECK_EQ(STATE_VOLATILE, PTM_BLOB_TYPE_VOLATILE);
	CHECK_EQ(STATE_SAVESTATE, PTM_BLOB_TYPE_SAVESTATE);
	CHECK_EQ(state_kind_from_name("permall", &k), 0);
	CHECK_EQ(k, STATE_PERMANENT);
	CHECK_EQ(state_kind_from_name("volatilestate", &k), 0);
	CHECK_EQ(k, STATE_VOLATILE);
	CHECK_EQ(state_kind_from_name("savestate", &k), 0);
	CHECK_EQ(k, STATE_SAVESTATE);
	CHECK_EQ(state_kind_from_name("Permall", &k), -EINVAL);
	CHECK_EQ(state_kind_from_name("permall.bak", &k), -EINVAL);
	CHECK_EQ(state_kind_from_name("", &k), -EINVAL);
	CHECK_EQ(state_kind_from_name(NULL, &k), -EINVAL);
}

/* ---- file codec ---- */

TEST(file_exact_bytes)
{
	uint8_t *out;
	size_t len;

	CHECK_EQ(state_file_encode((const uint8_t *)"abc", 3, &out, &len), 0);
	CHECK_EQ(len, sizeof(ours_abc));
	CHECK(memcmp(out, ours_abc, len) == 0);
	free(out);
	CHECK_EQ(file_decode_abc(file_abc, sizeof(file_abc)), 0);
	CHECK_EQ(file_decode_abc(ours_abc, sizeof(ours_abc)), 0);
}

/* Every single-bit flip of a tagged file is refused, or leaves the payload as it was. */
TEST(file_digest_every_flip)
{
	static const struct {
		const uint8_t *buf;
		size_t len;
	} files[] = { { ours_abc, sizeof(ours_abc) }, { ours_blob_abc, sizeof(ours_blob_abc) } };

	for (size_t f = 0; f < 2; f++) {
		for (size_t bit = 0; bit < files[f].len * 8; bit++) {
			uint8_t buf[sizeof(ours_abc) + sizeof(ours_blob_abc)];
			const uint8_t *p;
			size_t n;
			int ret;

			memcpy(buf, files[f].buf, files[f].len);
			buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			ret = f == 0 ? state_file_decode(buf, files[f].len, &p, &n)
				     : state_blob_decode(buf, files[f].len, 0, &p, &n);
			if (ret == 0)
				CHECK(n == 3 && memcmp(p, "abc", 3) == 0);
		}
	}
}

/* state_file_check: tagged, untagged (swtpm's), and each problem named. */
TEST(file_check_reports)
{
	struct state_file_report rep;
	uint8_t buf[sizeof(ours_abc)];

	CHECK_EQ(state_file_check(ours_abc, sizeof(ours_abc), STATE_PERMANENT, &rep), 0);
	CHECK(rep.tagged && !rep.encrypted && rep.payload_len == 3);
	CHECK_EQ(state_file_check(file_abc, sizeof(file_abc), STATE_PERMANENT, &rep), 0);
	CHECK(!rep.tagged && rep.payload_len == 3);
	CHECK_EQ(state_file_check(ours_abc, 0, STATE_PERMANENT, &rep), -EBADMSG);
	CHECK(rep.problem && strstr(rep.problem, "empty"));
	CHECK_EQ(state_file_check(ours_abc, sizeof(ours_abc) - 1, STATE_PERMANENT, &rep), -EBADMSG);
	CHECK(rep.problem && strstr(rep.problem, "truncated"));
	memcpy(buf, ours_abc, sizeof(buf));
	buf[17] ^= 0x01;
	CHECK_EQ(state_file_check(buf, sizeof(buf), STATE_PERMANENT, &rep), -EBADMSG);
	CHECK(rep.problem && strstr(rep.problem, "SHA-256 mismatch"));
	memcpy(buf, ours_abc, sizeof(buf));
	buf[0] = 3;
	CHECK_EQ(state_file_check(buf, sizeof(buf), STATE_PERMANENT, &rep), -EBADMSG);
	CHECK(rep.problem && strstr(rep.problem, "not a swtpm state file"));
	/* A TPM 2.0 permall frame whose closing magic is gone. */
	{
		static const uint8_t frame[] = { 0x00, 0x03, 0xab, 0x36, 0x47, 0x23, 0x00, 0x03, 1, 2, 0xab, 0x36, 0x47, 0x23 };
		uint8_t *enc;
		size_t len;

		CHECK_EQ(state_file_encode(frame, sizeof(frame), &enc, &len), 0);
		CHECK_EQ(state_file_check(enc, len, STATE_PERMANENT, &rep), 0);
		free(enc);
		CHECK_EQ(state_file_encode(frame, sizeof(frame) - 1, &enc, &len), 0);
		CHECK_EQ(state_file_check(enc, len, STATE_PERMANENT, &rep), -EBADMSG);
		CHECK(rep.problem && strstr(rep.problem, "closing magic"));
		/* the same bytes as a savestate are not a TPM 2.0 frame: left to libtpms */
		CHECK_EQ(state_file_check(enc, len, STATE_SAVESTATE, &rep), 0);
		free(enc);
	}
}

TEST(file_round_trip)
{
	static const size_t sizes[] = { 0, 1, 9, 10, 16, 1299, 2544, 65536 };
	uint8_t *payload = malloc(65536);

	CHECK(payload);
	for (size_t i = 0; i < 65536; i++)
		payload[i] = (uint8_t)(i * 7 + 3);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		const uint8_t *p;
		uint8_t *out;
		size_t len, n;

		CHECK_EQ(state_file_encode(payload, sizes[i], &out, &len), 0);
		CHECK_EQ(len, 16 + sizes[i] + DIGEST_TLV);
		CHECK_EQ(state_file_decode(out, len, &p, &n), 0);
		CHECK_EQ(n, sizes[i]);
		CHECK(p == out + 16);
		CHECK(n == 0 || memcmp(p, payload, n) == 0);
		free(out);
	}
	free(payload);
}

TEST(file_truncations_rejected)
{
	uint8_t buf[sizeof(file_abc) + 1];

	for (size_t len = 0; len < sizeof(file_abc); len++) {
		uint8_t *cut = malloc(len ? len : 1);	/* exact size: ASan sees overreads */
		const uint8_t *p;
		size_t n;

		CHECK(cut);
		memcpy(cut, file_abc, len);
		CHECK_EQ(state_file_decode(cut, len, &p, &n), -EBADMSG);
		/* and with totlen fixed up to the cut length, so only the TLV is short */
		if (len >= 10) {
			put_be32(cut + 6, (uint32_t)len);
			CHECK_EQ(state_file_decode(cut, len, &p, &n), -EBADMSG);
		}
		free(cut);
	}
	/* a byte too many */
	memcpy(buf, file_abc, sizeof(file_abc));
	buf[sizeof(file_abc)] = 0;
	CHECK_EQ(file_decode_abc(buf, sizeof(buf)), -EBADMSG);
	put_be32(buf + 6, sizeof(buf));
	CHECK_EQ(file_decode_abc(buf, sizeof(buf)), -EBADMSG);
}

TEST(file_lying_totlen)
{
	static const uint32_t lies[] = { 0, 10, 18, 20, 0x7fffffff, 0xffffffff };
	uint8_t buf[sizeof(file_abc)];

	for (size_t i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
		memcpy(buf, file_abc, sizeof(buf));
		put_be32(buf + 6, lies[i]);
		CHECK_EQ(file_decode_abc(buf, sizeof(buf)), -EBADMSG);
	}
}

TEST(file_lying_tlv_length)
{
	/* 0xfffffffa + 6 wraps a 32-bit offset to 0 */
	static const uint32_t lies[] = { 0, 2, 4, 0x7fffffff, 0xfffffff9, 0xfffffffa, 0xffffffff };
	uint8_t buf[sizeof(file_abc)];

	for (size_t i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
		memcpy(buf, file_abc, sizeof(buf));
		put_be32(buf + 12, lies[i]);
		CHECK_EQ(file_decode_abc(buf, sizeof(buf)), -EBADMSG);
	}
	/* a lying length in an unknown TLV in front of the data */
	{
		uint8_t body[64], f[80];
		size_t off = 0;

		put_tlv(body, &off, 0x99, "xy", 2);
		put_tlv(body, &off, 1, "abc", 3);
		for (size_t i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
			size_t len = make_file(f, 0, body, off);

			CHECK_EQ(file_decode_abc(f, len), 0);
			if (lies[i] == 2)	/* the truth */
				continue;
			put_be32(f + 12, lies[i]);
			CHECK_EQ(file_decode_abc(f, len), -EBADMSG);
		}
	}
}

TEST(file_bad_header)
{
	uint8_t buf[sizeof(file_abc)];
	static const uint16_t hdrsizes[] = { 0, 8, 9, 11, 16, 0x0a00, 0xffff };
	static const uint8_t versions[] = { 0, 1, 3, 0xff };
	static const uint8_t bad_min[] = { 3, 4, 0xff };

	for (size_t i = 0; i < sizeof(hdrsizes) / sizeof(hdrsizes[0]); i++) {
		memcpy(buf, file_abc, sizeof(buf));
		put_be16(buf + 2, hdrsizes[i]);
		CHECK_EQ(file_decode_abc(buf, sizeof(buf)), -EBADMSG);
	}
	for (size_t i = 0; i < sizeof(versions); i++) {
		memcpy(buf, file_abc, sizeof(buf));
		buf[0] = versions[i];
		CHECK_EQ(file_decode_abc(buf, sizeof(buf)), -EBADMSG);
	}
	for (size_t i = 0; i < sizeof(bad_min); i++) {
		memcpy(buf, file_abc, sizeof(buf));
		buf[1] = bad_min[i];
		CHECK_EQ(file_decode_abc(buf, sizeof(buf)), -EBADMSG);
	}
	/* min_version up to 2 is readable */
	for (uint8_t m = 0; m <= 2; m++) {
		memcpy(buf, file_abc, sizeof(buf));
		buf[1] = m;
		CHECK_EQ(file_decode_abc(buf, sizeof(buf)), 0);
	}
	/* a headerless (pre-2018) libtpms blob is not taken */
	CHECK_EQ(file_decode_abc((const uint8_t *)"\x00\x03\xab\x36\x47\x23\x00\x03\x00\x00\x00\x00", 12),
		 -EBADMSG);
}

TEST(file_unknown_tags_skipped)
{
	uint8_t body[128], f[160];
	size_t off = 0, len;

	put_tlv(body, &off, 0x99, "junk", 4);
	put_tlv(body, &off, 0, "", 0);
	put_tlv(body, &off, 3, "hmac-not-ours", 13);
	put_tlv(body, &off, 1, "abc", 3);
	put_tlv(body, &off, 0xffff, "", 0);
	put_tlv(body, &off, 1, "second", 6);	/* the first DATA wins */
	put_tlv(body, &off, 7, "iv", 2);
	len = make_file(f, 0, body, off);
	CHECK_EQ(file_decode_abc(f, len), 0);
	/* undefined flag bits are ignored, as 0.7.1 does */
	put_be16(f + 4, 0xffe0);
	CHECK_EQ(file_decode_abc(f, len), 0);
	/* flag 0x08 without 0x01: 0.7.1 loads such a plain file */
	put_be16(f + 4, 0x0008);
	CHECK_EQ(file_decode_abc(f, len), 0);
}

TEST(file_missing_data)
{
	uint8_t body[64], f[80];
	size_t off = 0, len;
	const uint8_t *p;
	size_t n;

	/* header only */
	len = make_file(f, 0, NULL, 0);
	CHECK_EQ(state_file_decode(f, len, &p, &n), -EBADMSG);
	/* only unknown tags, and a MIGRATION_DATA layer (a blob is not a file) */
	put_tlv(body, &off, 0x99, "x", 1);
	len = make_file(f, 0, body, off);
	CHECK_EQ(state_file_decode(f, len, &p, &n), -EBADMSG);
	CHECK_EQ(state_file_decode(blob_abc, sizeof(blob_abc), &p, &n), -EBADMSG);
}

TEST(file_encrypted_needs_key)
{
	uint8_t body[128], f[160];
	uint8_t iv[16] = { 0 }, hmac[32] = { 0 }, ct[32] = { 0 };
	size_t off = 0, len;
	const uint8_t *p = NULL;
	size_t n = 12345;

	put_tlv(body, &off, 2, ct, sizeof(ct));
	put_tlv(body, &off, 3, hmac, sizeof(hmac));
	put_tlv(body, &off, 6, iv, sizeof(iv));
	len = make_file(f, 0x0001, body, off);
	CHECK_EQ(state_file_decode(f, len, &p, &n), -ENOKEY);
	put_be16(f + 4, 0x0009);
	CHECK_EQ(state_file_decode(f, len, &p, &n), -ENOKEY);
	/* ciphertext without the flag still needs a key */
	put_be16(f + 4, 0x0000);
	CHECK_EQ(state_file_decode(f, len, &p, &n), -ENOKEY);
	/* the flag wins over a DATA tag */
	memcpy(f, file_abc, sizeof(file_abc));
	put_be16(f + 4, 0x0001);
	CHECK_EQ(state_file_decode(f, sizeof(file_abc), &p, &n), -ENOKEY);
	/* an encrypted but malformed file is malformed */
	len = make_file(f, 0x0001, body, off);
	put_be32(f + 12, 0xffffffff);
	CHECK_EQ(state_file_decode(f, len, &p, &n), -EBADMSG);
	/* outputs untouched on failure */
	CHECK(p == NULL);
	CHECK_EQ(n, 12345);
}

/* ---- blob codec ---- */

TEST(blob_exact_bytes)
{
	uint8_t *out;
	size_t len;

	CHECK_EQ(state_blob_encode((const uint8_t *)"abc", 3, &out, &len), 0);
	CHECK_EQ(len, sizeof(ours_blob_abc));
	CHECK(memcmp(out, ours_blob_abc, len) == 0);
	free(out);
	CHECK_EQ(blob_decode_abc(blob_abc, sizeof(blob_abc), 0), 0);
	CHECK_EQ(blob_decode_abc(blob_abc, sizeof(blob_abc), PTM_STATE_FLAG_DECRYPTED), 0);
}

TEST(blob_round_trip)
{
	static const size_t sizes[] = { 0, 1, 1299, 11336 };
	uint8_t payload[11336];

	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i ^ (i >> 8));
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		const uint8_t *p;
		uint8_t *out;
		size_t len, n;

		CHECK_EQ(state_blob_encode(payload, sizes[i], &out, &len), 0);
		CHECK_EQ(len, 22 + sizes[i] + DIGEST_TLV);
		CHECK_EQ(state_blob_decode(out, len, 0, &p, &n), 0);
		CHECK_EQ(n, sizes[i]);
		CHECK(p == out + 22);
		CHECK(n == 0 || memcmp(p, payload, n) == 0);
		free(out);
	}
}

TEST(blob_truncations_rejected)
{
	for (size_t len = 0; len < sizeof(blob_abc); len++) {
		uint8_t *cut = malloc(len ? len : 1);
		const uint8_t *p;
		size_t n;

		CHECK(cut);
		memcpy(cut, blob_abc, len);
		CHECK_EQ(state_blob_decode(cut, len, 0, &p, &n), -EBADMSG);
		/* totlen fixed up: only the TLVs are short (10 is the "clear" header) */
		if (len > 10) {
			put_be32(cut + 6, (uint32_t)len);
			CHECK_EQ(state_blob_decode(cut, len, 0, &p, &n), -EBADMSG);
		}
		free(cut);
	}
}

TEST(blob_lying_lengths)
{
	static const uint32_t lies[] = { 0, 2, 8, 10, 0x7fffffff, 0xfffffffa, 0xffffffff };
	uint8_t buf[sizeof(blob_abc)];

	for (size_t i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
		/* totlen */
		memcpy(buf, blob_abc, sizeof(buf));
		put_be32(buf + 6, lies[i]);
		CHECK_EQ(blob_decode_abc(buf, sizeof(buf), 0), -EBADMSG);
		/* outer TLV 4 */
		memcpy(buf, blob_abc, sizeof(buf));
		put_be32(buf + 12, lies[i]);
		CHECK_EQ(blob_decode_abc(buf, sizeof(buf), 0), -EBADMSG);
		/* inner TLV 1 */
		memcpy(buf, blob_abc, sizeof(buf));
		put_be32(buf + 18, lies[i]);
		CHECK_EQ(blob_decode_abc(buf, sizeof(buf), 0), -EBADMSG);
	}
	memcpy(buf, blob_abc, sizeof(buf));
	put_be16(buf + 2, 11);
	CHECK_EQ(blob_decode_abc(buf, sizeof(buf), 0), -EBADMSG);
	memcpy(buf, blob_abc, sizeof(buf));
	buf[1] = 3;
	CHECK_EQ(blob_decode_abc(buf, sizeof(buf), 0), -EBADMSG);
}

TEST(blob_needs_migration_layer)
{
	uint8_t body[128], inner[64], b[160];
	size_t off = 0, ioff = 0, len;
	const uint8_t *p;
	size_t n;

	/* a raw file: swtpm answers it with failure */
	CHECK_EQ(state_blob_decode(file_abc, sizeof(file_abc), 0, &p, &n), -EBADMSG);
	/* a raw file with flag 0x04 but no tag 4 */
	memcpy(b, file_abc, sizeof(file_abc));
	put_be16(b + 4, 0x0004);
	CHECK_EQ(state_blob_decode(b, sizeof(file_abc), 0, &p, &n), -EBADMSG);
	/* tag 4 but no flag 0x04 */
	memcpy(b, blob_abc, sizeof(blob_abc));
	put_be16(b + 4, 0x0000);
	CHECK_EQ(state_blob_decode(b, sizeof(blob_abc), 0, &p, &n), -EBADMSG);
	/* tag 4 holding no tag 1 */
	put_tlv(inner, &ioff, 0x99, "zz", 2);
	put_tlv(body, &off, 4, inner, (uint32_t)ioff);
	len = make_file(b, 0x0004, body, off);
	CHECK_EQ(state_blob_decode(b, len, 0, &p, &n), -EBADMSG);
	/* tag 4 with a trailing partial TLV inside */
	off = 0;
	ioff = 0;
	put_tlv(inner, &ioff, 1, "abc", 3);
	inner[ioff++] = 0;
	put_tlv(body, &off, 4, inner, (uint32_t)ioff);
	len = make_file(b, 0x0004, body, off);
	CHECK_EQ(state_blob_decode(b, len, 0, &p, &n), -EBADMSG);
	/* unknown tags around, both layers */
	off = 0;
	ioff = 0;
	put_tlv(inner, &ioff, 0x42, "q", 1);
	put_tlv(inner, &ioff, 1, "abc", 3);
	put_tlv(inner, &ioff, 0x43, "", 0);
	put_tlv(body, &off, 0x55, "w", 1);
	put_tlv(body, &off, 4, inner, (uint32_t)ioff);
	put_tlv(body, &off, 0x56, "", 0);
	len = make_file(b, 0x0004, body, off);
	CHECK_EQ(blob_decode_abc(b, len, 0), 0);
	/* a TLV 1 outside the migration layer is not the state */
	off = 0;
	put_tlv(body, &off, 1, "abc", 3);
	len = make_file(b, 0x0004, body, off);
	CHECK_EQ(state_blob_decode(b, len, 0, &p, &n), -EBADMSG);
}

TEST(blob_encrypted_needs_key)
{
	uint8_t body[192], inner[128], b[224], buf[sizeof(blob_abc)];
	uint8_t ct[32] = { 0 }, hmac[32] = { 0 }, iv[16] = { 0 };
	size_t off = 0, ioff = 0, len;
	const uint8_t *p;
	size_t n;

	/* migration-encrypted: TLV 5, 3, 7 */
	put_tlv(body, &off, 5, ct, sizeof(ct));
	put_tlv(body, &off, 3, hmac, sizeof(hmac));
	put_tlv(body, &off, 7, iv, sizeof(iv));
	len = make_file(b, 0x0016, body, off);
	CHECK_EQ(state_blob_decode(b, len, 0, &p, &n), -ENOKEY);
	/* flag 0x02 on an otherwise plain blob still asks for the key */
	memcpy(buf, blob_abc, sizeof(buf));
	put_be16(buf + 4, 0x0006);
	CHECK_EQ(state_blob_decode(buf, sizeof(buf), 0, &p, &n), -ENOKEY);
	/* state-key encrypted inner layer, flagged in the header */
	off = 0;
	put_tlv(inner, &ioff, 2, ct, sizeof(ct));
	put_tlv(inner, &ioff, 3, hmac, sizeof(hmac));
	put_tlv(inner, &ioff, 6, iv, sizeof(iv));
	put_tlv(body, &off, 4, inner, (uint32_t)ioff);
	len = make_file(b, 0x000d, body, off);
	CHECK_EQ(state_blob_decode(b, len, 0, &p, &n), -ENOKEY);
	/* ... or not flagged: the ciphertext says it */
	put_be16(b + 4, 0x0004);
	CHECK_EQ(state_blob_decode(b, len, 0, &p, &n), -ENOKEY);
	/* the request says encrypted: even a plain inner layer is decrypted by swtpm */
	CHECK_EQ(state_blob_decode(blob_abc, sizeof(blob_abc), PTM_STATE_FLAG_ENCRYPTED, &p, &n), -ENOKEY);
	/* header flag 0x01 on a plain blob */
	memcpy(buf, blob_abc, sizeof(buf));
	put_be16(buf + 4, 0x0005);
	CHECK_EQ(state_blob_decode(buf, sizeof(buf), 0, &p, &n), -ENOKEY);
}

TEST(blob_empty_body_clears)
{
	uint8_t b[10] = { 0 };
	const uint8_t *p = (const uint8_t *)"x";
	size_t n = 1;

	CHECK_EQ(state_blob_decode(b, 0, 0, &p, &n), -EBADMSG);	/* len 0 is the caller's */
	make_file(b, 0x0004, NULL, 0);
	CHECK_EQ(state_blob_decode(b, sizeof(b), 0, &p, &n), 0);
	CHECK(p == NULL);
	CHECK_EQ(n, 0);
	/* but the header must be right */
	put_be32(b + 6, 11);
	CHECK_EQ(state_blob_decode(b, sizeof(b), 0, &p, &n), -EBADMSG);
}

/* ---- the linear file ---- */

/* The header of spec 2.5's worked example: permall 1386 at 192, volatile 9050 at 2240. */
static const uint8_t linear_example[STATE_LINEAR_HDR_SIZE] = {
	0x6e, 0x69, 0x6c, 0x6d, 0x70, 0x74, 0x77, 0x73, 0x01, 0x00, 0xc0, 0x00,
	0xc0, 0x00, 0x00, 0x00, 0x6a, 0x05, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00,
	0xc0, 0x08, 0x00, 0x00, 0x5a, 0x23, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00,
};

TEST(linear_decode_example)
{
	struct state_linear_layout l;
	uint8_t again[STATE_LINEAR_HDR_SIZE];

	CHECK_EQ(state_linear_decode(linear_example, 18624, &l), 0);
	CHECK_EQ(l.slot[0].offset, 192);
	CHECK_EQ(l.slot[0].data_len, 1386);
	CHECK_EQ(l.slot[0].section_len, 2048);
	CHECK_EQ(l.slot[1].offset, 2240);
	CHECK_EQ(l.slot[1].data_len, 9050);
	CHECK_EQ(l.slot[1].section_len, 16384);
	CHECK_EQ(l.slot[2].offset, 0);
	state_linear_encode(&l, again);
	CHECK(memcmp(again, linear_example, sizeof(again)) == 0);
	/* one byte short of the volatile section */
	CHECK_EQ(state_linear_decode(linear_example, 18623, &l), -EBADMSG);
}

/* Every malformed header is refused, and only a zero magic counts as empty. */
TEST(linear_decode_rejects)
{
	static const struct {
		size_t at;
		uint8_t value;
		int ret;
	} cases[] = {
		{ 0, 0x6f, -EBADMSG },		/* one magic byte off: foreign, not empty */
		{ 8, 2, -EPROTONOSUPPORT },	/* a newer version */
		{ 8, 0, 0 },			/* version 0 is read */
		{ 9, 0x55, 0 },			/* padding ignored */
		{ 10, 100, -EBADMSG },		/* hdrsize */
		{ 12, 0x10, -EBADMSG },		/* permall at 16: inside the header */
		{ 17, 0x09, -EBADMSG },		/* data_length > section_length */
		{ 26, 0x10, -EBADMSG },		/* volatile at 4288 + 16384 > the volume */
		{ 24, 0x80, -EBADMSG },		/* volatile at 2176: overlaps permall */
		{ 12 + 12 * 3, 1, -EBADMSG },	/* slot 3 used */
		{ 12 + 12 * 14 + 2, 1, -EBADMSG },	/* slot 14 used */
	};
	struct state_linear_layout l;
	uint8_t hdr[STATE_LINEAR_HDR_SIZE];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(hdr, linear_example, sizeof(hdr));
		hdr[cases[i].at] = cases[i].value;
		CHECK_EQ(state_linear_decode(hdr, 18624, &l), cases[i].ret);
	}
	/* empty: zero magic, whatever follows (swtpm_setup erases only the magic) */
	memcpy(hdr, linear_example, sizeof(hdr));
	memset(hdr, 0, 8);
	CHECK_EQ(state_linear_decode(hdr, 18624, &l), -ENODATA);
	CHECK_EQ(l.slot[0].offset, 0);
	/* a magic on a volume shorter than a header: damaged */
	CHECK_EQ(state_linear_decode(linear_example, 191, &l), -EBADMSG);
	/* 64-bit bounds: a section past 4 GiB on a volume that has it is fine, past its end is not */
	memcpy(hdr, linear_example, sizeof(hdr));
	memset(hdr + 24, 0, 12);
	memcpy(hdr + 24, (const uint8_t[]){ 0x00, 0xff, 0xff, 0xff, 0x5a, 0x23, 0, 0, 0x00, 0x40, 0, 0 }, 12);
	CHECK_EQ(state_linear_decode(hdr, 0xffffff00ull + 0x4000, &l), 0);
	CHECK_EQ(state_linear_decode(hdr, 0xffffff00ull + 0x3fff, &l), -EBADMSG);
}

static int open_linear(struct state_store **st, const char *path, mode_t mode, bool mode_set)
{
	struct state_config cfg = {
		.backend = STATE_BACKEND_FILE,
		.path = path,
		.mode = mode,
		.mode_set = mode_set,
		.tpm2 = true,
	};

	return state_store_open(st, &cfg);
}

static int read_header(const char *path, struct state_linear_layout *l, uint64_t *len)
{
	uint8_t *buf;
	size_t n;
	int ret;

	if (read_file(path, &buf, &n))
		return -EIO;
	/* An empty volume (never stored to) decodes as one with a zero magic. */
	ret = n >= STATE_LINEAR_HDR_SIZE ? state_linear_decode(buf, n, l) : n == 0 ? -ENODATA : -EBADMSG;
	*len = n;
	free(buf);
	return ret;
}

/*
 * What swtpm 0.7.1 needs to take a file over: power-of-two sections back
 * to back in slot order (its compaction subtracts section lengths), and a
 * regular file at least as long as they are (extra length is harmless:
 * swtpm trims it at its next allocation).
 */
static bool linear_swtpm_shaped(const char *path)
{
	struct state_linear_layout l;
	uint64_t len, end = 0;

	switch (read_header(path, &l, &len)) {
	case 0:
		break;
	case -ENODATA:
		return true;	/* empty: nothing to take over */
	default:
		return false;
	}
	for (unsigned int i = 0; i < STATE_LINEAR_SLOTS; i++) {
		const struct state_linear_slot *s = &l.slot[i];

		if (!s->offset)
			continue;
		if (s->section_len & (s->section_len - 1) || s->section_len < s->data_len ||
		    s->data_len * 2 <= s->section_len)
			return false;
		if (end && s->offset != end)
			return false;
		end = s->offset + (uint64_t)s->section_len;
	}
	return end <= len;
}

static void fill(uint8_t *buf, size_t len, unsigned int seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 31 + seed);
}

static bool loads_as(struct state_store *st, enum state_kind kind, const uint8_t *want, size_t want_len)
{
	uint8_t *out;
	size_t n;
	bool eq;

	if (state_load(st, kind, &out, &n))
		return false;
	eq = n == want_len && memcmp(out, want, n) == 0;
	free(out);
	return eq;
}

TEST(linear_store_load)
{
	char d[64], path[128];
	struct state_store *st;
	static uint8_t perm[6000], vol[9000];
	uint8_t *out;
	size_t n, size;

	CHECK(make_tmpdir(d, sizeof(d), "state"));
	join(path, sizeof(path), d, "tpm.img");
	fill(perm, sizeof(perm), 1);
	fill(vol, sizeof(vol), 2);
	CHECK_EQ(open_linear(&st, path, 0640, false), 0);
	/* nothing is created before the TPM starts */
	CHECK_EQ(state_store_check(st), 0);
	CHECK_EQ(state_load(st, STATE_PERMANENT, &out, &n), -ENOENT);
	CHECK(!exists(path));
	/* a listing creates it empty, as swtpm's (swtpm_setup unlinks it next) */
	CHECK_EQ(listed_size(st, STATE_PERMANENT, &size), -ENOENT);
	CHECK(exists(path));
	CHECK_EQ(state_lock(st), 0);
	CHECK_EQ(state_save(st, STATE_PERMANENT, perm, 1300), 0);
	CHECK(linear_swtpm_shaped(path));
	CHECK(loads_as(st, STATE_PERMANENT, perm, 1300));
	CHECK_EQ(listed_size(st, STATE_PERMANENT, &size), 0);
	CHECK_EQ(size, 1316 + DIGEST_TLV);	/* the blob with its header, TLV header and tag, as swtpm lists it */
	CHECK_EQ(state_save(st, STATE_VOLATILE, vol, sizeof(vol)), 0);
	CHECK(linear_swtpm_shaped(path));
	/* grow, shrink and rewrite permall: volatile stays, every step swtpm-shaped */
	for (size_t len = 1; len <= sizeof(perm); len = len * 3 + 7) {
		fill(perm, sizeof(perm), (unsigned int)len);
		CHECK_EQ(state_save(st, STATE_PERMANENT, perm, len), 0);
		CHECK(linear_swtpm_shaped(path));
		CHECK(loads_as(st, STATE_PERMANENT, perm, len));
		CHECK(loads_as(st, STATE_VOLATILE, vol, sizeof(vol)));
	}
	CHECK_EQ(state_save(st, STATE_SAVESTATE, perm, 10), 0);
	CHECK_EQ(state_remove(st, STATE_VOLATILE), 0);
	CHECK_EQ(state_remove(st, STATE_VOLATILE), 0);
	CHECK(linear_swtpm_shaped(path));
	CHECK_EQ(state_load(st, STATE_VOLATILE, &out, &n), -ENOENT);
	CHECK(loads_as(st, STATE_SAVESTATE, perm, 10));
	CHECK_EQ(state_remove(st, STATE_SAVESTATE), 0);
	CHECK_EQ(state_remove(st, STATE_PERMANENT), 0);
	CHECK(linear_swtpm_shaped(path));
	CHECK_EQ(state_save(st, (enum state_kind)9, perm, 1), -EINVAL);
	state_store_close(st);
	rm_tree(d);
}

/* Empty volumes are formatted; anything else without the magic is refused, untouched. */
TEST(linear_formats_only_empty)
{
	static const char foreign[] = "this is somebody's data, not a TPM";
	char d[64], path[128];
	struct state_store *st;
	uint8_t *before, *after, hdr[16];
	size_t nb, na;
	int fd;

	CHECK(make_tmpdir(d, sizeof(d), "state"));
	join(path, sizeof(path), d, "tpm.img");
	/* a zero-filled preallocated volume */
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK_EQ(ftruncate(fd, 65536), 0);
	close(fd);
	CHECK_EQ(open_linear(&st, path, 0640, false), 0);
	CHECK_EQ(state_lock(st), 0);
	CHECK_EQ(state_save(st, STATE_PERMANENT, (const uint8_t *)"abc", 3), 0);
	CHECK(linear_swtpm_shaped(path));
	state_store_close(st);
	/* the magic erased as swtpm_setup does on a block device: empty again */
	fd = open(path, O_WRONLY);
	CHECK(fd >= 0);
	CHECK_EQ(pwrite(fd, "\0\0\0\0\0\0\0\0", 8, 0), 8);
	close(fd);
	CHECK_EQ(open_linear(&st, path, 0640, false), 0);
	CHECK_EQ(state_store_check(st), 0);
	CHECK_EQ(state_lock(st), 0);
	CHECK_EQ(state_load(st, STATE_PERMANENT, (uint8_t **)&before, &nb), -ENOENT);
	state_store_close(st);
	/* foreign bytes, and one damaged magic byte: refused at check, lock, load and store */
	for (int round = 0; round < 2; round++) {
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		CHECK(fd >= 0);
		if (round == 0) {
			CHECK_EQ(write(fd, foreign, sizeof(foreign)), (ssize_t)sizeof(foreign));
		} else {
			memcpy(hdr, linear_example, sizeof(hdr));
			hdr[7] = 0x74;
			CHECK_EQ(write(fd, hdr, sizeof(hdr)), (ssize_t)sizeof(hdr));
			CHECK_EQ(ftruncate(fd, 4096), 0);
		}
		close(fd);
		CHECK_EQ(read_file(path, &before, &nb), 0);
		CHECK_EQ(open_linear(&st, path, 0640, false), 0);
		CHECK_EQ(state_store_check(st), -EBADMSG);
		CHECK_EQ(state_lock(st), -EBADMSG);
		CHECK(!state_locked(st));
		CHECK_EQ(state_load(st, STATE_PERMANENT, &after, &na), -EBADMSG);
		CHECK_EQ(state_save(st, STATE_PERMANENT, (const uint8_t *)"abc", 3), -EBADMSG);
		state_store_close(st);
		CHECK_EQ(read_file(path, &after, &na), 0);
		CHECK(na == nb && memcmp(after, before, nb) == 0);
		free(before);
		free(after);
	}
	/* not a file or device */
	CHECK_EQ(open_linear(&st, d, 0640, false), 0);
	CHECK(state_store_check(st) < 0);
	CHECK(state_lock(st) < 0);
	state_store_close(st);
	join(path, sizeof(path), d, "no-dir/tpm.img");
	CHECK_EQ(open_linear(&st, path, 0640, false), 0);
	CHECK_EQ(state_store_check(st), -ENOENT);
	state_store_close(st);
	rm_tree(d);
}

TEST(linear_mode)
{
	char d[64], path[128];
	struct state_store *st;
	mode_t old = umask(022);
	int fd;

	CHECK(make_tmpdir(d, sizeof(d), "state"));
	join(path, sizeof(path), d, "tpm.img");
	/* mode= is exact, also on a file someone else made */
	CHECK_EQ(open_linear(&st, path, 0600, true), 0);
	CHECK_EQ(state_lock(st), 0);
	CHECK_EQ(file_mode(path), 0600);
	state_store_close(st);
	CHECK_EQ(chmod(path, 0644), 0);
	CHECK_EQ(open_linear(&st, path, 0600, true), 0);
	CHECK_EQ(state_lock(st), 0);
	CHECK_EQ(file_mode(path), 0600);
	state_store_close(st);
	/* without mode= an existing file keeps its mode, a new one gets 0640 less the umask */
	CHECK_EQ(chmod(path, 0604), 0);
	CHECK_EQ(open_linear(&st, path, 0640, false), 0);
	CHECK_EQ(state_lock(st), 0);
	CHECK_EQ(file_mode(path), 0604);
	state_store_close(st);
	CHECK_EQ(unlink(path), 0);
	umask(027);
	CHECK_EQ(open_linear(&st, path, 0666, false), 0);
	CHECK_EQ(state_lock(st), 0);
	CHECK_EQ(file_mode(path), 0640);
	state_store_close(st);
	fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	close(fd);
	umask(old);
	rm_tree(d);
}

/* In a child: the lock on path as a store (or, with posix, swtpm 0.10's fcntl lock) sees it. */
static int linear_lock_in_child(const char *path, bool posix)
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -1000;
	if (pid == 0) {
		struct state_store *st;
		int ret;

		if (posix) {
			struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
			int fd = open(path, O_RDWR);

			ret = fd < 0 ? -errno : fcntl(fd, F_SETLK, &fl) < 0 ? -errno : 0;
			_exit(ret == -EACCES ? EAGAIN : -ret);
		}
		ret = open_linear(&st, path, 0640, false);
		if (ret == 0) {
			ret = state_lock(st);
			state_store_close(st);
		}
		_exit(ret <= 0 && ret > -256 ? -ret : 255);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1000;
	return -WEXITSTATUS(status);
}

TEST(linear_lock)
{
	char d[64], path[128];
	struct state_store *st;
	size_t size;

	CHECK(make_tmpdir(d, sizeof(d), "state"));
	join(path, sizeof(path), d, "tpm.img");
	CHECK_EQ(open_linear(&st, path, 0640, false), 0);
	CHECK_EQ(state_lock(st), 0);
	CHECK_EQ(state_save(st, STATE_PERMANENT, (const uint8_t *)"abc", 3), 0);
	CHECK_EQ(linear_lock_in_child(path, false), -EAGAIN);
	CHECK_EQ(linear_lock_in_child(path, true), -EAGAIN);
	/* a listing takes no lock, as swtpm_setup --not-overwrite needs */
	{
		struct state_store *other;

		CHECK_EQ(open_linear(&other, path, 0640, false), 0);
		CHECK_EQ(listed_size(other, STATE_PERMANENT, &size), 0);
		CHECK_EQ(size, sizeof(ours_abc));
		state_store_close(other);
	}
	state_unlock(st);
	CHECK_EQ(linear_lock_in_child(path, false), 0);
	CHECK_EQ(linear_lock_in_child(path, true), 0);
	CHECK_EQ(state_lock(st), 0);
	state_store_close(st);
	CHECK_EQ(linear_lock_in_child(path, false), 0);
	rm_tree(d);
}

/* A store that cannot be written (file size limit) keeps the previous state. */
TEST(linear_full_keeps_old)
{
	char d[64], path[128];
	struct state_store *st;
	static uint8_t perm[8000];
	struct rlimit old, lim;

	CHECK(make_tmpdir(d, sizeof(d), "state"));
	join(path, sizeof(path), d, "tpm.img");
	fill(perm, sizeof(perm), 7);
	CHECK_EQ(open_linear(&st, path, 0640, false), 0);
	CHECK_EQ(state_lock(st), 0);
	CHECK_EQ(state_save(st, STATE_PERMANENT, perm, 1000), 0);
	CHECK_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 4096;
	signal(SIGXFSZ, SIG_IGN);
	CHECK_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
	CHECK(state_save(st, STATE_PERMANENT, perm, sizeof(perm)) < 0);
	CHECK_EQ(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	CHECK(loads_as(st, STATE_PERMANENT, perm, 1000));
	state_store_close(st);
	CHECK_EQ(open_linear(&st, path, 0640, false), 0);
	CHECK(loads_as(st, STATE_PERMANENT, perm, 1000));
	state_store_close(st);
	rm_tree(d);
}

/* Store number v: its number in front, its size and filler derived from it. */
static size_t kill_store_make(uint8_t *buf, size_t size, unsigned int v)
{
	size_t len = 100 + (v * 977u) % (size - 100);

	memset(buf, (int)(v & 0xff), len);
	memcpy(buf, &v, sizeof(v));
	return len;
}

/*
 * Killed at random moments in a stream of stores, the file always loads,
 * and its permall is the last acknowledged one or the one in flight.
 */
TEST(linear_killed_mid_store)
{
	char d[64], path[128];
	static uint8_t buf[12000], want[12000];
	unsigned int base = 0, cur = 0;	/* cur: the permall found last round (0: none) */
	int acked[2];

	CHECK(make_tmpdir(d, sizeof(d), "state"));
	join(path, sizeof(path), d, "tpm.img");
	srand(12345);
	for (int round = 0; round < 60; round++) {
		struct state_store *st;
		unsigned int last = 0, acked_perm = cur, next_perm, found;
		pid_t pid;
		uint8_t *out;
		size_t n;
		int ret;

		CHECK_EQ(pipe(acked), 0);
		pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			int status = 1;

			close(acked[0]);
			if (open_linear(&st, path, 0640, false))
				_exit(status);
			/* Stores until the parent's SIGKILL; only a failure ends it. */
			for (unsigned int v = base + 1; state_lock(st) == 0; v++) {
				size_t len = kill_store_make(buf, sizeof(buf), v);

				status = 2;
				if (state_save(st, v % 3 ? STATE_PERMANENT : STATE_VOLATILE, buf, len))
					break;
				status = 3;
				if (write(acked[1], &v, sizeof(v)) != sizeof(v))
					break;
			}
			state_store_close(st);
			_exit(status);
		}
		close(acked[1]);
		usleep((useconds_t)(rand() % 20000));
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		while (read(acked[0], &last, sizeof(last)) == sizeof(last))
			;
		close(acked[0]);
		for (unsigned int v = base + 1; v <= last; v++)
			acked_perm = v % 3 ? v : acked_perm;
		next_perm = (last ? last : base) + 1;
		next_perm += next_perm % 3 ? 0 : 1;

		CHECK_EQ(open_linear(&st, path, 0640, false), 0);
		CHECK_EQ(state_lock(st), 0);
		ret = state_load(st, STATE_PERMANENT, &out, &n);
		if (ret == -ENOENT && acked_perm == 0) {
			found = 0;
		} else {
			CHECK_EQ(ret, 0);
			CHECK(n >= sizeof(found));
			memcpy(&found, out, sizeof(found));
			CHECK(found == acked_perm || found == next_perm);
			CHECK_EQ(n, kill_store_make(want, sizeof(want), found));
			CHECK(memcmp(out, want, n) == 0);
			free(out);
		}
		CHECK(linear_swtpm_shaped(path));
		state_store_close(st);
		cur = found;
		base = next_perm + 1;
	}
	rm_tree(d);
}

/* ---- the state directory ---- */

TEST(dir_open_touches_nothing)
{
	struct state_store *dir;
	struct state_config cfg = { .path = NULL, .mode = 0640, .tpm2 = true };

	CHECK_EQ(state_store_open(&dir, &cfg), -EINVAL);
	cfg.path = "";
	CHECK_EQ(state_store_open(&dir, &cfg), -EINVAL);
	cfg.path = "/tmp/vtpm-state-no-such-dir/x";
	cfg.mode = 010000;
	CHECK_EQ(state_store_open(&dir, &cfg), -EINVAL);
	cfg.mode = 0640;
	CHECK_EQ(state_store_open(&dir, &cfg), 0);
	CHECK(strcmp(state_store_name(dir), "state directory /tmp/vtpm-state-no-such-dir/x") == 0);
	CHECK(!state_locked(dir));
	CHECK(!exists("/tmp/vtpm-state-no-such-dir"));
	/* the missing directory shows on first use */
	CHECK_EQ(state_lock(dir), -ENOENT);
	state_store_close(dir);
	state_store_close(NULL);
}

TEST(dir_store_load)
{
	char d[64], path[128];
	struct state_store *dir;
	uint8_t payload[2544], *out;
	size_t n, size;

	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 13);
	CHECK(make_tmpdir(d, sizeof(d), "state"));
	CHECK_EQ(open_dir(&dir, d, 0640, false), 0);
	CHECK_EQ(state_load(dir, STATE_PERMANENT, &out, &n), -ENOENT);
	CHECK_EQ(listed_size(dir, STATE_PERMANENT, &size), -ENOENT);
	CHECK_EQ(state_save(dir, STATE_PERMANENT, payload, sizeof(payload)), 0);
	CHECK_EQ(state_load(dir, STATE_PERMANENT, &out, &n), 0);
	CHECK_EQ(n, sizeof(payload));
	CHECK(memcmp(out, payload, n) == 0);
	free(out);
	CHECK_EQ(listed_size(dir, STATE_PERMANENT, &size), 0);
	CHECK_EQ(size, 2560 + DIGEST_TLV);	/* spec 7.1, and our integrity tag */
	/* the bytes swtpm would write */
	{
		uint8_t *enc;
		size_t enc_len;

		CHECK_EQ(state_file_encode(payload, sizeof(payload), &enc, &enc_len), 0);
		join(path, sizeof(path), d, "tpm2-00.permall");
		CHECK(file_equals(path, enc, enc_len));
		free(enc);
	}
	join(path, sizeof(path), d, "TMP2-00.permall");
	CHECK(!exists(path));
	/* replace with a shorter one, and an empty one */
	CHECK_EQ(state_save(dir, STATE_PERMANENT, (const uint8_t *)"abc", 3), 0);
	join(path, sizeof(path), d, "tpm2-00.permall");
	CHECK(file_equals(path, ours_abc, sizeof(ours_abc)));
	CHECK_EQ(state_save(dir, STATE_VOLATILE, NULL, 0), 0);
	CHECK_EQ(state_load(dir, STATE_VOLATILE, &out, &n), 0);
	CHECK_EQ(n, 0);
	free(out);
	/* remove, twice */
	CHECK_EQ(state_remove(dir, STATE_VOLATILE), 0);
	CHECK_EQ(state_remove(dir, STATE_VOLATILE), 0);
	CHECK_EQ(state_remove(dir, STATE_SAVESTATE), 0);
	CHECK_EQ(state_load(dir, STATE_VOLATILE, &out, &n), -ENOENT);
	CHECK_EQ(state_save(dir, (enum state_kind)9, payload, 1), -EINVAL);
	/* what load would refuse is not written */
	{
		size_t big_len = 16 * 1024 * 1024 - 15 - DIGEST_TLV;
		uint8_t *big = calloc(1, big_len);

		CHECK(big);
		CHECK_EQ(state_save(dir, STATE_SAVESTATE, big, big_len), -EFBIG);
		CHECK_EQ(listed_size(dir, STATE_SAVESTATE, &size), -ENOENT);
		CHECK_EQ(state_save(dir, STATE_SAVESTATE, big, big_len - 1), 0);
		CHECK_EQ(listed_size(dir, STATE_SAVESTATE, &size), 0);
		CHECK_EQ(size, 16 * 1024 * 1024);
		CHECK_EQ(state_load(dir, STATE_SAVESTATE, &out, &n), 0);
		CHECK_EQ(n, big_len - 1);
		free(out);
		free(big);
		CHECK_EQ(state_remove(dir, STATE_SAVESTATE), 0);
	}
	CHECK_EQ(state_load(dir, (enum state_kind)0, &out, &n), -EINVAL);
	state_store_close(dir);
	rm_tree(d);
}

TEST(dir_tpm12_names)
{
	char d[64], path[128];
	struct state_store *dir;
	struct state_config cfg = { .mode = 0640, .tpm2 = false };
	uint8_t *out;
	size_t n;

	CHECK(make_tmpdir(d, sizeof(d), "state"));
	cfg.path = d;
	CHECK_EQ(state_store_open(&dir, &cfg), 0);
	CHECK_EQ(state_save(dir, STATE_SAVESTATE, (const uint8_t *)"abc", 3), 0);
	join(path, sizeof(path), d, "tpm-00.savestate");
	CHECK(file_equals(path, ours_abc, sizeof(ours_abc)));
	join(path, sizeof(path), d, "TMP-00.savestate");
	CHECK(!exists(path));
	join(path, sizeof(path), d, "tpm2-00.savestate");
	CHECK(!exists(path));
	/* a stale TMP file from a crash is truncated and reused */
	join(path, sizeof(path), d, "TMP-00.permall");
	CHECK_EQ(write_file(path, "stale stale stale stale stale stale", 35), 0);
	CHECK_EQ(state_save(dir, STATE_PERMANENT, (const uint8_t *)"abc", 3), 0);
	CHECK(!exists(path));
	join(path, sizeof(path), d, "tpm-00.permall");
	CHECK(file_equals(path, ours_abc, sizeof(ours_abc)));
	CHECK_EQ(state_load(dir, STATE_PERMANENT, &out, &n), 0);
	CHECK(n == 3 && memcmp(out, "abc", 3) == 0);
	free(out);
	state_store_close(dir);
	rm_tree(d);
}

TEST(dir_stale_tmp_reused)
{
	char d[64], tmp[128], path[128];
	struct state_store *dir;
	uint8_t junk[5000];

	memset(junk, 0xee, sizeof(junk));
	CHECK(make_tmpdir(d, sizeof(d), "state"));
	join(tmp, sizeof(tmp), d, "TMP2-00.permall");
	join(path, sizeof(path), d, "tpm2-00.permall");
	CHECK_EQ(write_file(tmp, junk, sizeof(junk)), 0);
	CHECK_EQ(open_dir(&dir, d, 0600, true), 0);
	CHECK_EQ(state_save(dir, STATE_PERMANENT, (const uint8_t *)"abc", 3), 0);
	CHECK(!exists(tmp));
	CHECK(file_equals(path, ours_abc, sizeof(ours_abc)));
	CHECK_EQ(file_mode(path), 0600);	/* mode_set: even a reused file gets it */
	state_store_close(dir);
	rm_tree(d);
}

TEST(dir_file_mode)
{
	char d[64], path[128];
	struct state_store *dir;
	uint8_t *out;
	size_t n;
	mode_t old = umask(077);

	CHECK(make_tmpdir(d, sizeof(d), "state"));
	join(path, sizeof(path), d, "tpm2-00.permall");
	/* mode= given: exact, whatever the umask */
	CHECK_EQ(open_dir(&dir, d, 0664, true), 0);
	CHECK_EQ(state_save(dir, STATE_PERMANENT, (const uint8_t *)"abc", 3), 0);
	CHECK_EQ(file_mode(path), 0664);
	/* and on load a file of another mode is set to it */
	CHECK_EQ(chmod(path, 0600), 0);
	CHECK_EQ(state_load(dir, STATE_PERMANENT, &out, &n), 0);
	free(out);
	CHECK_EQ(file_mode(path), 0664);
	state_store_close(dir);
	/* default: created with the mode, reduced by the umask (swtpm 0.7.1) */
	CHECK_EQ(open_dir(&dir, d, 0640, false), 0);
	CHECK_EQ(state_remove(dir, STATE_PERMANENT), 0);
	CHECK_EQ(state_save(dir, STATE_PERMANENT, (const uint8_t *)"abc", 3), 0);
	CHECK_EQ(file_mode(path), 0600);
	umask(027);
	CHECK_EQ(state_save(dir, STATE_PERMANENT, (const uint8_t *)"abc", 3), 0);
	CHECK_EQ(file_mode(path), 0640);
	/* and a load leaves the mode alone */
	CHECK_EQ(chmod(path, 0604), 0);
	CHECK_EQ(state_load(dir, STATE_PERMANENT, &out, &n), 0);
	free(out);
	CHECK_EQ(file_mode(path), 0604);
	state_store_close(dir);
	umask(old);
	rm_tree(d);
}

TEST(dir_store_failure_keeps_old)
{
	char d[64], tmp[128], path[128], target[128];
	struct state_store *dir;
	uint8_t *out;
	size_t n;

	CHECK(make_tmpdir(d, sizeof(d), "state"));
	join(tmp, sizeof(tmp), d, "TMP2-00.permall");
	join(path, sizeof(path), d, "tpm2-00.permall");
	CHECK_EQ(open_dir(&dir, d, 0640, false), 0);
	CHECK_EQ(state_save(dir, STATE_PERMANENT, (const uint8_t *)"abc", 3), 0);
	/* the temp file cannot be created: a directory sits on its name */
	CHECK_EQ(mkdir(tmp, 0700), 0);
	CHECK_EQ(state_save(dir, STATE_PERMANENT, (const uint8_t *)"defgh", 5), -EISDIR);
	CHECK(file_equals(path, ours_abc, sizeof(ours_abc)));
	CHECK_EQ(rmdir(tmp), 0);
	/* a symlink planted there is not followed */
	join(target, sizeof(target), d, "target");
	CHECK_EQ(symlink(target, tmp), 0);
	CHECK_EQ(state_save(dir, STATE_PERMANENT, (const uint8_t *)"defgh", 5), -ELOOP);
	CHECK(!exists(target));
	CHECK(file_equals(path, ours_abc, sizeof(ours_abc)));
	CHECK_EQ(unlink(tmp), 0);
	/* a FIFO planted there fails the store at once instead of blocking it for good */
	CHECK_EQ(mkfifo(tmp, 0600), 0);
	CHECK_EQ(state_save(dir, STATE_PERMANENT, (const uint8_t *)"defgh", 5), -ENXIO);
	CHECK(file_equals(path, ours_abc, sizeof(ours_abc)));
	CHECK_EQ(unlink(tmp), 0);
	/* the write fails (file size limit): old file intact, temp file gone */
	{
		pid_t pid = fork();
		int status;

		CHECK(pid >= 0);
		if (pid == 0) {
			struct rlimit rl = { .rlim_cur = 20, .rlim_max = 20 };
			uint8_t big[100] = { 0 };
			int ret;

			signal(SIGXFSZ, SIG_IGN);
			if (setrlimit(RLIMIT_FSIZE, &rl) < 0)
				_exit(100);
			ret = state_save(dir, STATE_PERMANENT, big, sizeof(big));
			_exit(ret == -EFBIG ? 0 : 101);
		}
		CHECK(waitpid(pid, &status, 0) == pid);
		CHECK(WIFEXITED(status));
		CHECK_EQ(WEXITSTATUS(status), 0);
	}
	CHECK(!exists(tmp));
	CHECK(file_equals(path, ours_abc, sizeof(ours_abc)));
	/* the rename fails (a non-empty directory holds the name): temp file gone */
	CHECK_EQ(state_remove(dir, STATE_VOLATILE), 0);
	join(path, sizeof(path), d, "tpm2-00.volatilestate");
	CHECK_EQ(mkdir(path, 0700), 0);
	join(target, sizeof(target), path, "keep");
	CHECK_EQ(write_file(target, "k", 1), 0);
	CHECK(state_save(dir, STATE_VOLATILE, (const uint8_t *)"abc", 3) < 0);
	join(tmp, sizeof(tmp), d, "TMP2-00.volatilestate");
	CHECK(!exists(tmp));
	CHECK(exists(target));
	/* and loading a directory is refused */
	CHECK(state_load(dir, STATE_VOLATILE, &out, &n) < 0);
	state_store_close(dir);
	rm_tree(d);
}

TEST(dir_load_rejects)
{
	char d[64], path[128];
	struct state_store *dir;
	uint8_t *out = NULL, buf[sizeof(file_abc)];
	size_t n;
	int fd;

	CHECK(make_tmpdir(d, sizeof(d), "state"));
	join(path, sizeof(path), d, "tpm2-00.permall");
	CHECK_EQ(open_dir(&dir, d, 0640, false), 0);
	/* malformed */
	CHECK_EQ(write_file(path, file_abc, sizeof(file_abc) - 1), 0);
	CHECK_EQ(state_load(dir, STATE_PERMANENT, &out, &n), -EBADMSG);
	CHECK_EQ(write_file(path, "", 0), 0);
	CHECK_EQ(state_load(dir, STATE_PERMANENT, &out, &n), -EBADMSG);
	/* encrypted */
	memcpy(buf, file_abc, sizeof(buf));
	put_be16(buf + 4, 0x0001);
	CHECK_EQ(write_file(path, buf, sizeof(buf)), 0);
	CHECK_EQ(state_load(dir, STATE_PERMANENT, &out, &n), -ENOKEY);
	/* too big (sparse, 16 MiB + 1) */
	fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK_EQ(ftruncate(fd, 16 * 1024 * 1024 + 1), 0);
	close(fd);
	CHECK_EQ(state_load(dir, STATE_PERMANENT, &out, &n), -EFBIG);
	/* a FIFO does not hang us */
	CHECK_EQ(unlink(path), 0);
	CHECK_EQ(mkfifo(path, 0600), 0);
	CHECK_EQ(state_load(dir, STATE_PERMANENT, &out, &n), -EINVAL);
	CHECK(out == NULL);
	/* a symlink is followed, as swtpm does */
	CHECK_EQ(unlink(path), 0);
	{
		char real[128];

		join(real, sizeof(real), d, "real");
		CHECK_EQ(write_file(real, file_abc, sizeof(file_abc)), 0);
		CHECK_EQ(symlink("real", path), 0);
	}
	CHECK_EQ(state_load(dir, STATE_PERMANENT, &out, &n), 0);
	CHECK(n == 3 && memcmp(out, "abc", 3) == 0);
	free(out);
	state_store_close(dir);
	rm_tree(d);
}

TEST(dir_lock)
{
	char d[64], path[128];
	struct state_store *dir;
	int fd;

	CHECK(make_tmpdir(d, sizeof(d), "state"));
	join(path, sizeof(path), d, ".lock");
	CHECK_EQ(open_dir(&dir, d, 0640, false), 0);
	CHECK_EQ(state_lock(dir), 0);
	CHECK(state_locked(dir));
	CHECK_EQ(state_lock(dir), 0);	/* idempotent */
	CHECK(state_locked(dir));
	CHECK(exists(path));
	CHECK_EQ(lock_in_child(d), -EAGAIN);
	/* closing another descriptor of .lock keeps an OFD lock (a POSIX one would go) */
	fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	close(fd);
	CHECK_EQ(lock_in_child(d), -EAGAIN);
	state_unlock(dir);
	CHECK(!state_locked(dir));
	state_unlock(dir);	/* idempotent too */
	CHECK_EQ(lock_in_child(d), 0);
	CHECK(exists(path));	/* never deleted */
	/* close releases it */
	CHECK_EQ(state_lock(dir), 0);
	CHECK_EQ(lock_in_child(d), -EAGAIN);
	state_store_close(dir);
	CHECK_EQ(lock_in_child(d), 0);
	rm_tree(d);
}

/* ---- side by side with Debian's swtpm ---- */

/* Starts argv with stdout and stderr to log; the pid or -1. */
static pid_t spawn(char *const argv[], const char *log)
{
	pid_t pid = fork();

	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

		/* A failed CHECK leaves it running; it must not outlive the test. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(126);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

/* Runs argv to its end; its exit status, or -1. */
static int run(char *const argv[], const char *log)
{
	pid_t pid = spawn(argv, log);
	int status;

	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Waits up to 10 s for path to exist while pid lives; 0, or -1 when pid died or time ran out. */
static int wait_for(const char *path, pid_t pid)
{
	for (int i = 0; i < 1000; i++) {
		if (exists(path))
			return 0;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return -1;
		sleep_ms(10);
	}
	return -1;
}

/* Waits up to 10 s for pid to exit; its exit status, or -1 (then it is killed). */
static int wait_exit(pid_t pid)
{
	int status;

	for (int i = 0; i < 1000; i++) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		sleep_ms(10);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

static void stop(pid_t pid)
{
	kill(pid, SIGTERM);
	(void)wait_exit(pid);
}

static bool log_has(const char *log, const char *what)
{
	uint8_t *buf;
	size_t n;
	bool found;

	if (read_file(log, &buf, &n))
		return false;
	found = memmem(buf, n, what, strlen(what)) != NULL;
	free(buf);
	return found;
}

struct swtpm_paths {
	char dir[64];
	char tpmstate[96];
	char ctrl[128];
	char ctrl_opt[160];
	char log[128];
	char permall[128];
	char blob[128];
};

static void swtpm_paths_init(struct swtpm_paths *sp)
{
	snprintf(sp->tpmstate, sizeof(sp->tpmstate), "dir=%s", sp->dir);
	join(sp->ctrl, sizeof(sp->ctrl), sp->dir, "ctrl");
	snprintf(sp->ctrl_opt, sizeof(sp->ctrl_opt), "type=unixio,path=%s", sp->ctrl);
	join(sp->log, sizeof(sp->log), sp->dir, "swtpm.log");
	join(sp->permall, sizeof(sp->permall), sp->dir, "tpm2-00.permall");
	join(sp->blob, sizeof(sp->blob), sp->dir, "blob");
}

static pid_t swtpm_start(struct swtpm_paths *sp)
{
	char *const argv[] = {
		SWTPM, "socket", "--tpm2", "--tpmstate", sp->tpmstate,
		"--ctrl", sp->ctrl_opt, "--flags", "not-need-init", NULL,
	};

	unlink(sp->ctrl);
	return spawn(argv, sp->log);
}

static int swtpm_ioctl(struct swtpm_paths *sp, char *op, char *arg1, char *arg2)
{
	char *const argv[] = { SWTPM_IOCTL, "--unix", sp->ctrl, op, arg1, arg2, NULL };

	return run(argv, sp->log);
}

/* Our lock and swtpm's exclude each other, both ways. */
TEST(swtpm_lock_interop)
{
	struct swtpm_paths sp = { 0 };
	struct state_store *dir;
	pid_t pid;

	CHECK(make_tmpdir(sp.dir, sizeof(sp.dir), "state"));
	swtpm_paths_init(&sp);
	CHECK_EQ(open_dir(&dir, sp.dir, 0640, false), 0);

	/* swtpm holds it: not-need-init locks at start, then manufactures permall */
	pid = swtpm_start(&sp);
	CHECK(pid > 0);
	CHECK_EQ(wait_for(sp.permall, pid), 0);
	CHECK_EQ(state_lock(dir), -EAGAIN);
	CHECK(!state_locked(dir));
	stop(pid);
	CHECK_EQ(state_lock(dir), 0);

	/* we hold it: swtpm cannot start */
	pid = swtpm_start(&sp);
	CHECK(pid > 0);
	CHECK_EQ(wait_exit(pid), 1);
	CHECK(log_has(sp.log, "Could not lock access to lockfile"));

	/* and can once we let go */
	state_unlock(dir);
	pid = swtpm_start(&sp);
	CHECK(pid > 0);
	CHECK_EQ(wait_for(sp.ctrl, pid), 0);
	CHECK_EQ(swtpm_ioctl(&sp, "-s", NULL, NULL), 0);
	CHECK_EQ(wait_exit(pid), 0);
	state_store_close(dir);
	rm_tree(sp.dir);
}

/*
 * The file at path is swtpm's bytes (file, len) with totlen grown by our
 * integrity TLV, which follows them.
 */
static bool equals_with_digest(const char *path, const uint8_t *file, size_t len)
{
	uint8_t *ours;
	size_t ours_len;
	bool same;

	if (read_file(path, &ours, &ours_len) != 0)
		return false;
	same = ours_len == len + DIGEST_TLV && memcmp(ours, file, 6) == 0 &&
	       memcmp(ours + 10, file + 10, len - 10) == 0 && ours[len] == 0x76 && ours[len + 1] == 0x42;
	free(ours);
	return same;
}

/* Files and blobs: swtpm's bytes decode, and we write the same bytes back (plus our tag). */
TEST(swtpm_format_interop)
{
	struct swtpm_paths sp = { 0 };
	struct state_store *dir;
	uint8_t *file, *payload, *blob, *enc;
	size_t file_len, payload_len, blob_len, enc_len, n;
	const uint8_t *p;
	pid_t pid;

	CHECK(make_tmpdir(sp.dir, sizeof(sp.dir), "state"));
	swtpm_paths_init(&sp);
	CHECK_EQ(open_dir(&dir, sp.dir, 0640, false), 0);

	/* a permall manufactured by swtpm */
	pid = swtpm_start(&sp);
	CHECK(pid > 0);
	CHECK_EQ(wait_for(sp.permall, pid), 0);
	stop(pid);
	CHECK_EQ(read_file(sp.permall, &file, &file_len), 0);
	CHECK_EQ(state_load(dir, STATE_PERMANENT, &payload, &payload_len), 0);
	CHECK_EQ(payload_len + 16, file_len);
	CHECK(payload_len > 8 && memcmp(payload + 2, "\xab\x36\x47\x23", 4) == 0);
	/* stored back byte for byte, plus our integrity tag (and totlen grown by it) */
	CHECK_EQ(state_save(dir, STATE_PERMANENT, payload, payload_len), 0);
	CHECK(equals_with_digest(sp.permall, file, file_len));

	/* swtpm starts from our file and hands out a blob we can read and write */
	pid = swtpm_start(&sp);
	CHECK(pid > 0);
	CHECK_EQ(wait_for(sp.ctrl, pid), 0);
	CHECK_EQ(swtpm_ioctl(&sp, "--save", "permanent", sp.blob), 0);
	CHECK_EQ(read_file(sp.blob, &blob, &blob_len), 0);
	CHECK_EQ(state_blob_decode(blob, blob_len, PTM_STATE_FLAG_DECRYPTED, &p, &n), 0);
	CHECK_EQ(n, payload_len);
	CHECK(memcmp(p, payload, n) == 0);
	CHECK_EQ(state_blob_encode(payload, payload_len, &enc, &enc_len), 0);
	CHECK_EQ(enc_len, blob_len + DIGEST_TLV);
	CHECK(memcmp(enc, blob, 6) == 0 && memcmp(enc + 10, blob + 10, blob_len - 10) == 0);
	/* swtpm takes our blob (and would refuse a raw file) */
	CHECK_EQ(write_file(sp.blob, file, file_len), 0);
	CHECK_EQ(swtpm_ioctl(&sp, "--stop", NULL, NULL), 0);
	CHECK(swtpm_ioctl(&sp, "--load", "permanent", sp.blob) != 0);
	CHECK_EQ(write_file(sp.blob, enc, enc_len), 0);
	CHECK_EQ(swtpm_ioctl(&sp, "--load", "permanent", sp.blob), 0);
	CHECK_EQ(swtpm_ioctl(&sp, "-i", NULL, NULL), 0);
	CHECK_EQ(swtpm_ioctl(&sp, "-s", NULL, NULL), 0);
	CHECK_EQ(wait_exit(pid), 0);
	free(enc);
	free(blob);
	free(payload);
	free(file);
	state_store_close(dir);
	rm_tree(sp.dir);
}

int main(void)
{
	static const struct unit_test tests[] = {
		UNIT(kind_names),
		UNIT(file_exact_bytes),
		UNIT(file_digest_every_flip),
		UNIT(file_check_reports),
		UNIT(file_round_trip),
		UNIT(file_truncations_rejected),
		UNIT(file_lying_totlen),
		UNIT(file_lying_tlv_length),
		UNIT(file_bad_header),
		UNIT(file_unknown_tags_skipped),
		UNIT(file_missing_data),
		UNIT(file_encrypted_needs_key),
		UNIT(blob_exact_bytes),
		UNIT(blob_round_trip),
		UNIT(blob_truncations_rejected),
		UNIT(blob_lying_lengths),
		UNIT(blob_needs_migration_layer),
		UNIT(blob_encrypted_needs_key),
		UNIT(blob_empty_body_clears),
		UNIT(dir_open_touches_nothing),
		UNIT(dir_store_load),
		UNIT(dir_tpm12_names),
		UNIT(dir_stale_tmp_reused),
		UNIT(dir_file_mode),
		UNIT(dir_store_failure_keeps_old),
		UNIT(dir_load_rejects),
		UNIT(dir_lock),
		UNIT(linear_decode_example),
		UNIT(linear_decode_rejects),
		UNIT(linear_store_load),
		UNIT(linear_formats_only_empty),
		UNIT(linear_mode),
		UNIT(linear_lock),
		UNIT(linear_full_keeps_old),
		UNIT(linear_killed_mid_store),
	};
	static const struct unit_test swtpm_tests[] = {
		UNIT(swtpm_lock_interop),
		UNIT(swtpm_format_interop),
	};
	int bad;

	bad = unit_run("state", tests, sizeof(tests) / sizeof(tests[0]));
	if (access(SWTPM, X_OK) == 0 && access(SWTPM_IOCTL, X_OK) == 0) {
		bad |= unit_run("state", swtpm_tests, sizeof(swtpm_tests) / sizeof(swtpm_tests[0]));
	} else {
		for (size_t i = 0; i < sizeof(swtpm_tests) / sizeof(swtpm_tests[0]); i++)
			printf("SKIP state/%s: %s or %s not installed (Debian package swtpm, swtpm-tools)\n",
			       swtpm_tests[i].name, SWTPM, SWTPM_IOCTL);
	}
	return bad;
}
