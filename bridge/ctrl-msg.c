/* SPDX-License-Identifier: BSD-3-Clause */
#include "ctrl-msg.h"

#include <errno.h>
#include <string.h>

#include <ptm.h>

#include "bytes.h"

uint32_t ctrl_msg_code(const uint8_t *msg)
{
	return get_be32(msg);
}

/* Payload bytes after the code; for the two variable ones, after their 4-byte length field too. */
static size_t ctrl_msg_fixed_payload(uint32_t code)
{
	switch (code) {
	case CMD_INIT:
	case CMD_SET_BUFFERSIZE:
	case CMD_LOCK_STORAGE:
	case CMD_HASH_DATA:		/* the length field */
		return 4;
	case CMD_SET_LOCALITY:
	case CMD_RESET_TPMESTABLISHED:
		return 1;
	case CMD_GET_STATEBLOB:
	case CMD_SET_STATEBLOB:		/* flags, type, length */
		return 12;
	case CMD_GET_INFO:
		return 16;
	default:
		return 0;
	}
}

uint32_t ctrl_msg_oversize_result(const uint8_t *buf)
{
	return get_be32(buf) == CMD_HASH_DATA ? PTM_RES_BAD_PARAMETER : PTM_RES_FAIL;
}

ssize_t ctrl_msg_frame(const uint8_t *buf, size_t len)
{
	uint32_t code, data;
	size_t need;

	if (len < 4)
		return 0;
	code = get_be32(buf);
	need = 4 + ctrl_msg_fixed_payload(code);
	if (len < need)
		return 0;
	switch (code) {
	case CMD_HASH_DATA:
		data = get_be32(buf + 4);
		if (data > CTRL_MSG_HASH_MAX)
			return -EMSGSIZE;
		need += data;
		break;
	case CMD_SET_STATEBLOB:
		data = get_be32(buf + 12);
		if (data > CTRL_MSG_BLOB_MAX)
			return -EMSGSIZE;
		need += data;
		break;
	default:
		break;
	}
	return len < need ? 0 : (ssize_t)need;
}

/* Whether the message carries the 1-byte payload that QEMU sends as 4 bytes. */
static bool ctrl_msg_one_byte(uint32_t code)
{
	return code == CMD_SET_LOCALITY || code == CMD_RESET_TPMESTABLISHED;
}

/*
 * How many bytes after a 1-byte payload are padding: 3 or 0, or -1 while
 * the bytes there cannot tell yet.  No message code starts with four zero
 * bytes (codes are 1..255), so four zeros are padding and a next code;
 * 00 00 00 XX is a next code right after the payload.  Once seen, a
 * client's way sticks, so later messages need no look-ahead.
 */
static int ctrl_stream_padding(struct ctrl_stream *st, const uint8_t *buf, size_t len)
{
	size_t zeros = 0;

	if (st->style == CTRL_PAD_THREE)
		return len < 3 ? -1 : 3;
	if (st->style == CTRL_PAD_NONE)
		return 0;
	while (zeros < len && zeros < 4 && buf[zeros] == 0)
		zeros++;
	if (zeros == 4) {
		st->style = CTRL_PAD_THREE;
		return 3;
	}
	if (zeros == len)
		return -1;
	/* A non-zero byte within four: the next message (or garbage) starts here. */
	st->style = CTRL_PAD_NONE;
	return 0;
}

ssize_t ctrl_msg_next(struct ctrl_stream *st, const uint8_t *buf, size_t len, size_t *skip)
{
	ssize_t n;

	*skip = 0;
	if (st->pad_pending) {
		int pad = ctrl_stream_padding(st, buf, len);

		if (pad < 0)
			return 0;
		st->pad_pending = false;
		*skip = (size_t)pad;
	}
	n = ctrl_msg_frame(buf + *skip, len - *skip);
	if (n > 0 && ctrl_msg_one_byte(get_be32(buf + *skip)))
		st->pad_pending = true;
	return n;
}

uint32_t ctrl_msg_decode(const uint8_t *msg, size_t len, struct core_ctrl_req *req)
{
	const uint8_t *p = msg + 4;

	memset(req, 0, sizeof(*req));
	if (len < 4)
		return PTM_RES_BAD_PARAMETER;
	req->op = get_be32(msg);
	if (len - 4 < ctrl_msg_fixed_payload(req->op))
		return PTM_RES_BAD_PARAMETER;
	req->max_len = SIZE_MAX;
	switch (req->op) {
	case CMD_INIT:
		req->flags = get_be32(p);
		break;
	case CMD_SET_LOCALITY:
	case CMD_RESET_TPMESTABLISHED:
		req->locality = p[0];
		break;
	case CMD_HASH_DATA:
		req->len = get_be32(p);
		if (req->len != len - 8)
			return PTM_RES_BAD_PARAMETER;
		req->data = p + 4;
		break;
	case CMD_GET_STATEBLOB:
		req->flags = get_be32(p);
		req->type = get_be32(p + 4);
		req->offset = get_be32(p + 8);
		break;
	case CMD_SET_STATEBLOB:
		req->flags = get_be32(p);
		req->type = get_be32(p + 4);
		req->len = get_be32(p + 8);
		if (req->len != len - 16)
			return PTM_RES_BAD_PARAMETER;
		req->data = p + 12;
		req->first = req->last = true;	/* the socket moves a blob whole */
		break;
	case CMD_SET_BUFFERSIZE:
	case CMD_LOCK_STORAGE:
		req->value = get_be32(p);
		break;
	case CMD_GET_INFO:
		req->info_flags = (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
		req->offset = get_be32(p + 8);
		req->max_len = PTM_GETINFO_SIZE;
		break;
	default:
		break;
	}
	return PTM_RES_SUCCESS;
}

size_t ctrl_msg_encode_result(uint32_t result, uint8_t hdr[CTRL_MSG_REPLY_HDR])
{
	put_be32(hdr, result);
	return 4;
}

size_t ctrl_msg_encode(uint32_t op, const struct core_ctrl_reply *r, uint8_t hdr[CTRL_MSG_REPLY_HDR],
		       const uint8_t **data, size_t *data_len)
{
	*data = NULL;
	*data_len = 0;
	if (op == CMD_GET_CAPABILITY) {
		/* A BE u64 mask, which reads as result 0 + u32 caps too. */
		put_be32(hdr, (uint32_t)(r->caps >> 32));
		put_be32(hdr + 4, (uint32_t)r->caps);
		return 8;
	}
	if (op == CMD_GET_STATEBLOB && r->result != PTM_RES_BAD_ORDINAL) {
		/* Over a socket the whole rest comes at once: totlength is that rest, as QEMU checks. */
		put_be32(hdr, r->result);
		put_be32(hdr + 4, r->state_flags);
		put_be32(hdr + 8, (uint32_t)r->len);
		put_be32(hdr + 12, (uint32_t)r->len);
		*data = r->data;
		*data_len = r->len;
		return 16;
	}
	put_be32(hdr, r->result);
	if (r->result != PTM_RES_SUCCESS)
		return 4;
	switch (op) {
	case CMD_GET_TPMESTABLISHED:
		hdr[4] = r->established;
		hdr[5] = hdr[6] = hdr[7] = 0;
		return 8;
	case CMD_GET_CONFIG:
		put_be32(hdr + 4, r->config_flags);
		return 8;
	case CMD_SET_BUFFERSIZE:
		put_be32(hdr + 4, r->bufsize);
		put_be32(hdr + 8, r->bufsize_min);
		put_be32(hdr + 12, r->bufsize_max);
		return 16;
	case CMD_GET_INFO:
		put_be32(hdr + 4, r->totlength);
		put_be32(hdr + 8, (uint32_t)r->len);
		*data = r->data;
		*data_len = r->len;
		return 12;
	default:
		return 4;
	}
}
