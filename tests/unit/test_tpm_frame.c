/* SPDX-License-Identifier: BSD-3-Clause */
/* TPM command framing in a byte stream, plain and in the simulator's framing (bridge/tpm-frame.c). */
#include <stdbool.h>
#include <stdint.h>

#include "bytes.h"
#include "tpm-frame.h"
#include "unit.h"

#define MAX_CMD 4096

/* TPM2_GetRandom(8): 12 bytes. */
static const uint8_t getrandom[] = { 0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7b, 0, 8 };

/* The simulator's prefix (code, locality, size) before `cmd`; returns the frame's length. */
static size_t mssim(uint8_t *out, uint8_t locality, uint32_t size, const uint8_t *cmd, size_t cmd_len)
{
	put_be32(out, MSSIM_SEND_COMMAND);
	out[4] = locality;
	put_be32(out + 5, size);
	memcpy(out + MSSIM_PREFIX_SIZE, cmd, cmd_len);
	return MSSIM_PREFIX_SIZE + cmd_len;
}

/* Every shorter part of a frame needs more bytes; the whole is one command. */
static bool frames_only_whole(const uint8_t *buf, size_t len, bool with_mssim, struct tpm_frame_info *f)
{
	for (size_t i = 0; i < len; i++)
		if (tpm_frame(buf, i, MAX_CMD, with_mssim, f) != TPM_FRAME_MORE)
			return false;
	return tpm_frame(buf, len, MAX_CMD, with_mssim, f) == TPM_FRAME_COMMAND && f->len == len;
}

TEST(plain_command_is_its_header_size)
{
	struct tpm_frame_info f;

	CHECK(frames_only_whole(getrandom, sizeof(getrandom), false, &f));
	CHECK(!f.mssim);
	CHECK_EQ(f.offset, 0);
	CHECK_EQ(f.size, sizeof(getrandom));
	CHECK(frames_only_whole(getrandom, sizeof(getrandom), true, &f));
	CHECK(!f.mssim);
}

TEST(plain_size_bounds)
{
	uint8_t buf[16] = { 0x80, 0x01 };
	struct tpm_frame_info f;

	put_be32(buf + 2, 9);
	CHECK_EQ(tpm_frame(buf, sizeof(buf), MAX_CMD, true, &f), TPM_FRAME_BROKEN);
	put_be32(buf + 2, TPM_FRAME_SKIP_MAX + 1);
	CHECK_EQ(tpm_frame(buf, sizeof(buf), MAX_CMD, true, &f), TPM_FRAME_BROKEN);
	put_be32(buf + 2, MAX_CMD + 1);
	CHECK_EQ(tpm_frame(buf, sizeof(buf), MAX_CMD, true, &f), TPM_FRAME_OVERSIZE);
	CHECK_EQ(f.len, MAX_CMD + 1);
	put_be32(buf + 2, TPM_FRAME_SKIP_MAX);
	CHECK_EQ(tpm_frame(buf, sizeof(buf), MAX_CMD, true, &f), TPM_FRAME_OVERSIZE);
	CHECK_EQ(f.len, TPM_FRAME_SKIP_MAX);
}

TEST(mssim_command_after_its_prefix)
{
	uint8_t buf[64];
	size_t n = mssim(buf, 3, sizeof(getrandom), getrandom, sizeof(getrandom));
	struct tpm_frame_info f;

	CHECK(frames_only_whole(buf, n, true, &f));
	CHECK(f.mssim);
	CHECK_EQ(f.offset, MSSIM_PREFIX_SIZE);
	CHECK_EQ(f.size, sizeof(getrandom));
	CHECK_EQ(f.locality, 3);
	CHECK(memcmp(buf + f.offset, getrandom, f.size) == 0);
}

TEST(mssim_locality_byte_passed_as_is)
{
	uint8_t buf[64];
	size_t n = mssim(buf, 255, sizeof(getrandom), getrandom, sizeof(getrandom));
	struct tpm_frame_info f;

	/* Whether 255 may run is the core's rule, not the framing's. */
	CHECK_EQ(tpm_frame(buf, n, MAX_CMD, true, &f), TPM_FRAME_COMMAND);
	CHECK_EQ(f.locality, 255);
}

TEST(mssim_not_recognised_when_off)
{
	uint8_t buf[64];
	size_t n = mssim(buf, 0, sizeof(getrandom), getrandom, sizeof(getrandom));
	struct tpm_frame_info f;

	/* TPM 1.2 (swtpm too): the prefix is a command of size 0x00080000, skipped. */
	CHECK_EQ(tpm_frame(buf, n, MAX_CMD, false, &f), TPM_FRAME_OVERSIZE);
	CHECK(!f.mssim);
	CHECK_EQ(f.len, 0x00080000);
}

TEST(mssim_size_below_header_broken)
{
	uint8_t buf[64];
	size_t n = mssim(buf, 0, 1, (const uint8_t *)"\0", 1);
	struct tpm_frame_info f;

	CHECK_EQ(tpm_frame(buf, n, MAX_CMD, true, &f), TPM_FRAME_BROKEN);
	CHECK(f.mssim);
	/* Known from the prefix alone: no waiting for a command. */
	CHECK_EQ(tpm_frame(buf, MSSIM_PREFIX_SIZE, MAX_CMD, true, &f), TPM_FRAME_BROKEN);
}

TEST(mssim_size_over_skip_bound_broken)
{
	uint8_t buf[64];
	struct tpm_frame_info f;

	mssim(buf, 0, TPM_FRAME_SKIP_MAX - MSSIM_PREFIX_SIZE + 1, getrandom, sizeof(getrandom));
	CHECK_EQ(tpm_frame(buf, MSSIM_PREFIX_SIZE, MAX_CMD, true, &f), TPM_FRAME_BROKEN);
	mssim(buf, 0, 0xffffffffu, getrandom, sizeof(getrandom));
	CHECK_EQ(tpm_frame(buf, MSSIM_PREFIX_SIZE, MAX_CMD, true, &f), TPM_FRAME_BROKEN);
	CHECK(f.mssim);
}

TEST(mssim_oversize_skips_prefix_and_command)
{
	uint8_t buf[64];
	struct tpm_frame_info f;

	mssim(buf, 0, MAX_CMD + 1, getrandom, sizeof(getrandom));
	CHECK_EQ(tpm_frame(buf, MSSIM_PREFIX_SIZE, MAX_CMD, true, &f), TPM_FRAME_OVERSIZE);
	CHECK(f.mssim);
	CHECK_EQ(f.len, MSSIM_PREFIX_SIZE + MAX_CMD + 1);
	mssim(buf, 0, TPM_FRAME_SKIP_MAX - MSSIM_PREFIX_SIZE, getrandom, sizeof(getrandom));
	CHECK_EQ(tpm_frame(buf, MSSIM_PREFIX_SIZE, MAX_CMD, true, &f), TPM_FRAME_OVERSIZE);
	CHECK_EQ(f.len, TPM_FRAME_SKIP_MAX);
}

TEST(mssim_size_disagreeing_with_header_broken)
{
	uint8_t buf[64];
	struct tpm_frame_info f;
	size_t n = mssim(buf, 0, 1000, getrandom, sizeof(getrandom));

	/* Found at the command's size field, not after waiting for 1000 bytes. */
	CHECK_EQ(tpm_frame(buf, MSSIM_PREFIX_SIZE + 5, MAX_CMD, true, &f), TPM_FRAME_MORE);
	CHECK_EQ(tpm_frame(buf, MSSIM_PREFIX_SIZE + 6, MAX_CMD, true, &f), TPM_FRAME_BROKEN);
	CHECK_EQ(tpm_frame(buf, n, MAX_CMD, true, &f), TPM_FRAME_BROKEN);
	n = mssim(buf, 0, 11, getrandom, sizeof(getrandom));
	CHECK_EQ(tpm_frame(buf, n, MAX_CMD, true, &f), TPM_FRAME_BROKEN);
}

TEST(mssim_session_end)
{
	uint8_t buf[4];
	struct tpm_frame_info f;

	put_be32(buf, MSSIM_SESSION_END);
	CHECK_EQ(tpm_frame(buf, 3, MAX_CMD, true, &f), TPM_FRAME_MORE);
	CHECK_EQ(tpm_frame(buf, 4, MAX_CMD, true, &f), TPM_FRAME_END);
	CHECK_EQ(tpm_frame(buf, 4, MAX_CMD, false, &f), TPM_FRAME_MORE);
}

TEST(mixed_stream_frame_by_frame)
{
	uint8_t buf[128];
	size_t n = 0, off = 0;
	struct tpm_frame_info f;

	memcpy(buf, getrandom, sizeof(getrandom));
	n += sizeof(getrandom);
	n += mssim(buf + n, 4, sizeof(getrandom), getrandom, sizeof(getrandom));
	memcpy(buf + n, getrandom, sizeof(getrandom));
	n += sizeof(getrandom);
	put_be32(buf + n, MSSIM_SESSION_END);
	n += 4;

	CHECK_EQ(tpm_frame(buf + off, n - off, MAX_CMD, true, &f), TPM_FRAME_COMMAND);
	CHECK(!f.mssim);
	off += f.len;
	CHECK_EQ(tpm_frame(buf + off, n - off, MAX_CMD, true, &f), TPM_FRAME_COMMAND);
	CHECK(f.mssim);
	CHECK_EQ(f.locality, 4);
	off += f.len;
	CHECK_EQ(tpm_frame(buf + off, n - off, MAX_CMD, true, &f), TPM_FRAME_COMMAND);
	CHECK(!f.mssim);
	off += f.len;
	CHECK_EQ(tpm_frame(buf + off, n - off, MAX_CMD, true, &f), TPM_FRAME_END);
	CHECK_EQ(off + 4, n);
}

UNIT_MAIN("unit/tpm_frame",
	  UNIT(plain_command_is_its_header_size),
	  UNIT(plain_size_bounds),
	  UNIT(mssim_command_after_its_prefix),
	  UNIT(mssim_locality_byte_passed_as_is),
	  UNIT(mssim_not_recognised_when_off),
	  UNIT(mssim_size_below_header_broken),
	  UNIT(mssim_size_over_skip_bound_broken),
	  UNIT(mssim_oversize_skips_prefix_and_command),
	  UNIT(mssim_size_disagreeing_with_header_broken),
	  UNIT(mssim_session_end),
	  UNIT(mixed_stream_frame_by_frame))
