/* SPDX-License-Identifier: BSD-3-Clause */
/* The ctrl-channel stream assembler (bridge/ctrl-msg.c). */
#include <errno.h>
#include <stdint.h>

#include <ptm.h>

#include "ctrl-msg.h"
#include "unit.h"

static size_t put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	return 4;
}

static uint32_t get(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Every prefix of a message shorter than it says "need more"; the whole says its length. */
static int frames_only_whole(const uint8_t *msg, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (ctrl_msg_frame(msg, i) != 0)
			return 0;
	return ctrl_msg_frame(msg, len) == (ssize_t)len;
}

TEST(no_payload_codes_are_4_bytes)
{
	static const uint32_t codes[] = { CMD_GET_CAPABILITY, CMD_SHUTDOWN, CMD_GET_TPMESTABLISHED,
					  CMD_HASH_START, CMD_HASH_END, CMD_CANCEL_TPM_CMD,
					  CMD_STORE_VOLATILE, CMD_STOP, CMD_GET_CONFIG, CMD_SET_DATAFD,
					  0x77, 0xffffffffu };
	uint8_t m[4];

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		put(m, codes[i]);
		CHECK(frames_only_whole(m, 4));
	}
}

TEST(split_fixed_payloads_wait_for_all_bytes)
{
	/* swtpm answers SET_BUFFERSIZE after its code alone and then desyncs; we wait. */
	static const struct { uint32_t code; size_t len; } msgs[] = {
		{ CMD_INIT, 8 }, { CMD_SET_BUFFERSIZE, 8 }, { CMD_LOCK_STORAGE, 8 },
		{ CMD_GET_STATEBLOB, 16 }, { CMD_GET_INFO, 20 },
	};
	uint8_t m[32] = { 0 };

	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		memset(m, 0x11, sizeof(m));
		put(m, msgs[i].code);
		CHECK(frames_only_whole(m, msgs[i].len));
		/* Bytes of the next message never belong to this one. */
		CHECK_EQ(ctrl_msg_frame(m, sizeof(m)), msgs[i].len);
	}
}

TEST(coalesced_messages_frame_one_by_one)
{
	uint8_t m[4 + 8 + 4];
	size_t off = 0;
	ssize_t n;

	put(m, CMD_GET_CAPABILITY);
	put(m + 4, CMD_SET_BUFFERSIZE);
	put(m + 8, 4096);
	put(m + 12, CMD_GET_CAPABILITY);
	n = ctrl_msg_frame(m + off, sizeof(m) - off);
	CHECK_EQ(n, 4);
	off += (size_t)n;
	n = ctrl_msg_frame(m + off, sizeof(m) - off);
	CHECK_EQ(n, 8);
	off += (size_t)n;
	n = ctrl_msg_frame(m + off, sizeof(m) - off);
	CHECK_EQ(n, 4);
	CHECK_EQ(off + (size_t)n, sizeof(m));
}

TEST(locality_one_byte_or_qemu_padding)
{
	uint8_t m[12] = { 0 };

	put(m, CMD_SET_LOCALITY);
	m[4] = 3;
	/* the message is its one byte: answered without waiting for padding */
	CHECK_EQ(ctrl_msg_frame(m, 4), 0);
	CHECK_EQ(ctrl_msg_frame(m, 5), 5);
	CHECK_EQ(ctrl_msg_frame(m, 8), 5);
}

/* Feeds a stream through ctrl_msg_next() in pieces of `cut` bytes, records the messages' codes. */
static size_t stream_codes(const uint8_t *s, size_t len, size_t cut, uint32_t *codes, size_t max)
{
	struct ctrl_stream st = { 0 };
	size_t off = 0, avail = 0, n = 0;

	while (avail < len) {
		avail = avail + cut < len ? avail + cut : len;
		for (;;) {
			size_t skip;
			ssize_t m = ctrl_msg_next(&st, s + off, avail - off, &skip);

			off += skip;
			if (m <= 0)
				break;
			if (n < max)
				codes[n] = get(s + off);
			n++;
			off += (size_t)m;
		}
	}
	return off == len ? n : SIZE_MAX;	/* bytes left that never framed: SIZE_MAX */
}

/*
 * Both ways of sending SET_LOCALITY and RESET_TPMESTABLISHED, pipelined
 * with the next message and cut at every byte, frame the same messages:
 * the decision is the connection's, from the bytes alone.
 */
TEST(locality_padding_is_decided_per_connection)
{
	for (int qemu = 0; qemu < 2; qemu++) {
		uint8_t s[64];
		size_t len = 0;
		uint32_t got[8];
		static const uint32_t want[6] = { CMD_SET_LOCALITY, CMD_INIT, CMD_SET_LOCALITY,
						  CMD_RESET_TPMESTABLISHED, CMD_GET_CAPABILITY, CMD_SET_LOCALITY };

		for (size_t i = 0; i < 6; i++) {
			len += put(s + len, want[i]);
			if (want[i] == CMD_INIT) {
				len += put(s + len, 0);
			} else if (want[i] != CMD_GET_CAPABILITY) {
				s[len++] = (uint8_t)(i & 3);	/* locality 0 too: a zero byte */
				if (qemu) {
					memset(s + len, 0, 3);
					len += 3;
				}
			}
		}
		for (size_t cut = 1; cut <= len; cut++) {
			size_t n = stream_codes(s, len, cut, got, 8);

			CHECK_EQ(n, 6);
			for (size_t i = 0; i < 6; i++)
				CHECK_EQ(got[i], want[i]);
		}
	}
}

TEST(variable_payloads_follow_their_length)
{
	uint8_t m[16 + 100];

	memset(m, 0xaa, sizeof(m));
	put(m, CMD_SET_STATEBLOB);
	put(m + 4, 0);
	put(m + 8, PTM_BLOB_TYPE_PERMANENT);
	put(m + 12, 100);
	CHECK(frames_only_whole(m, sizeof(m)));

	put(m, CMD_HASH_DATA);
	put(m + 4, 50);
	CHECK(frames_only_whole(m, 58));
	put(m + 4, 0);
	CHECK_EQ(ctrl_msg_frame(m, sizeof(m)), 8);
}

TEST(lying_lengths_are_refused_not_awaited)
{
	uint8_t m[16] = { 0 };

	put(m, CMD_SET_STATEBLOB);
	put(m + 12, 0xffffffffu);
	CHECK_EQ(ctrl_msg_frame(m, 16), -EMSGSIZE);
	CHECK_EQ(ctrl_msg_oversize_result(m), PTM_RES_FAIL);
	put(m + 12, CTRL_MSG_BLOB_MAX + 1);
	CHECK_EQ(ctrl_msg_frame(m, 16), -EMSGSIZE);
	put(m + 12, CTRL_MSG_BLOB_MAX);
	CHECK_EQ(ctrl_msg_frame(m, 16), 0);	/* legal: wait for the bytes */

	put(m, CMD_HASH_DATA);
	put(m + 4, CTRL_MSG_HASH_MAX + 1);
	CHECK_EQ(ctrl_msg_frame(m, 8), -EMSGSIZE);
	CHECK_EQ(ctrl_msg_oversize_result(m), PTM_RES_BAD_PARAMETER);
}

TEST(decode_fields_big_endian)
{
	uint8_t m[20];
	struct core_ctrl_req req;

	put(m, CMD_GET_STATEBLOB);
	put(m + 4, PTM_STATE_FLAG_DECRYPTED);
	put(m + 8, PTM_BLOB_TYPE_VOLATILE);
	put(m + 12, 77);
	CHECK_EQ(ctrl_msg_decode(m, 16, &req), PTM_RES_SUCCESS);
	CHECK_EQ(req.op, CMD_GET_STATEBLOB);
	CHECK_EQ(req.flags, 1);
	CHECK_EQ(req.type, 2);
	CHECK_EQ(req.offset, 77);

	put(m, CMD_GET_INFO);
	put(m + 4, 0x1);
	put(m + 8, 0x2);
	put(m + 12, 5);
	CHECK_EQ(ctrl_msg_decode(m, 20, &req), PTM_RES_SUCCESS);
	CHECK_EQ(req.info_flags, 0x100000002ull);
	CHECK_EQ(req.offset, 5);
	CHECK_EQ(req.max_len, PTM_GETINFO_SIZE);

	put(m, CMD_INIT);
	CHECK_EQ(ctrl_msg_decode(m, 6, &req), PTM_RES_BAD_PARAMETER);
}

TEST(errors_are_the_4_byte_result)
{
	struct core_ctrl_reply r = { .result = PTM_RES_BAD_ORDINAL, .bufsize = 1 };
	uint8_t hdr[CTRL_MSG_REPLY_HDR];
	const uint8_t *data;
	size_t len;

	CHECK_EQ(ctrl_msg_encode(CMD_SET_BUFFERSIZE, &r, hdr, &data, &len), 4);
	CHECK_EQ(get(hdr), PTM_RES_BAD_ORDINAL);
	CHECK_EQ(ctrl_msg_encode(CMD_GET_TPMESTABLISHED, &r, hdr, &data, &len), 4);
	CHECK_EQ(ctrl_msg_encode(CMD_GET_STATEBLOB, &r, hdr, &data, &len), 4);
	/* A blob that does not exist keeps the header, with zero lengths. */
	r.result = PTM_RES_RETRY;
	CHECK_EQ(ctrl_msg_encode(CMD_GET_STATEBLOB, &r, hdr, &data, &len), 16);
	CHECK_EQ(get(hdr), PTM_RES_RETRY);
	CHECK_EQ(get(hdr + 8), 0);
	CHECK_EQ(len, 0);
}

TEST(success_replies_have_full_size)
{
	static const uint8_t blob[5] = { 1, 2, 3, 4, 5 };
	struct core_ctrl_reply r = { .caps = 0x17fff, .established = true, .bufsize = 4096,
				     .bufsize_min = 2808, .bufsize_max = 4096,
				     .data = blob, .len = sizeof(blob), .totlength = 9 };
	uint8_t hdr[CTRL_MSG_REPLY_HDR];
	const uint8_t *data;
	size_t len;

	CHECK_EQ(ctrl_msg_encode(CMD_GET_CAPABILITY, &r, hdr, &data, &len), 8);
	CHECK_EQ(get(hdr), 0);
	CHECK_EQ(get(hdr + 4), 0x17fff);
	CHECK_EQ(ctrl_msg_encode(CMD_GET_TPMESTABLISHED, &r, hdr, &data, &len), 8);
	CHECK_EQ(hdr[4], 1);
	CHECK_EQ(ctrl_msg_encode(CMD_SET_BUFFERSIZE, &r, hdr, &data, &len), 16);
	CHECK_EQ(get(hdr + 4), 4096);
	CHECK_EQ(get(hdr + 8), 2808);
	/* Over the socket, totlength and length are both the rest from the offset. */
	CHECK_EQ(ctrl_msg_encode(CMD_GET_STATEBLOB, &r, hdr, &data, &len), 16);
	CHECK_EQ(get(hdr + 8), 5);
	CHECK_EQ(get(hdr + 12), 5);
	CHECK(data == blob && len == 5);
	CHECK_EQ(ctrl_msg_encode(CMD_GET_INFO, &r, hdr, &data, &len), 12);
	CHECK_EQ(get(hdr + 4), 9);
	CHECK_EQ(get(hdr + 8), 5);
	CHECK_EQ(ctrl_msg_encode(CMD_INIT, &r, hdr, &data, &len), 4);
}

/*
 * A stream cut at any point frames the same messages as the whole stream.
 * (SET_LOCALITY: locality_padding_is_decided_per_connection.)
 */
TEST(any_split_gives_the_same_messages)
{
	uint8_t s[64];
	size_t len = 0, nexpect = 0, off = 0;
	ssize_t expect[8];

	len += put(s + len, CMD_INIT);
	len += put(s + len, 1);
	len += put(s + len, CMD_GET_CAPABILITY);
	len += put(s + len, CMD_HASH_DATA);
	len += put(s + len, 3);
	memcpy(s + len, "abc", 3);
	len += 3;
	len += put(s + len, CMD_SET_BUFFERSIZE);
	len += put(s + len, 0);
	while (off < len) {
		ssize_t n = ctrl_msg_frame(s + off, len - off);

		CHECK(n > 0);
		expect[nexpect++] = n;
		off += (size_t)n;
	}
	CHECK_EQ(nexpect, 4);
	for (size_t cut = 1; cut < len; cut++) {
		size_t got = 0;

		off = 0;
		for (size_t avail = cut;; avail = len) {
			ssize_t n;

			while ((n = ctrl_msg_frame(s + off, avail - off)) > 0) {
				CHECK(got < nexpect && n == expect[got]);
				got++;
				off += (size_t)n;
			}
			CHECK_EQ(n, 0);
			if (avail == len)
				break;
		}
		CHECK_EQ(off, len);
		CHECK_EQ(got, nexpect);
	}
}

UNIT_MAIN("unit/ctrl_msg",
	  UNIT(no_payload_codes_are_4_bytes),
	  UNIT(split_fixed_payloads_wait_for_all_bytes),
	  UNIT(coalesced_messages_frame_one_by_one),
	  UNIT(locality_one_byte_or_qemu_padding),
	  UNIT(locality_padding_is_decided_per_connection),
	  UNIT(variable_payloads_follow_their_length),
	  UNIT(lying_lengths_are_refused_not_awaited),
	  UNIT(decode_fields_big_endian),
	  UNIT(errors_are_the_4_byte_result),
	  UNIT(success_replies_have_full_size),
	  UNIT(any_split_gives_the_same_messages))
