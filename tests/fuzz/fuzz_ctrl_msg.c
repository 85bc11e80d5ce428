/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for bridge/ctrl-msg.c: the input is a ctrl-channel byte
 * stream, framed (with the connection's padding rule) and decoded message by
 * message as the socket front does.
 */
#include <stdlib.h>

#include <ptm.h>

#include "ctrl-msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctrl_stream stream = { 0 };
	size_t off = 0;

	while (off < size) {
		struct core_ctrl_req req;
		size_t pad;
		ssize_t n = ctrl_msg_next(&stream, data + off, size - off, &pad);

		if (pad > size - off)
			abort();
		off += pad;
		if (n <= 0)
			break;
		if ((size_t)n > size - off)
			abort();
		if (ctrl_msg_decode(data + off, (size_t)n, &req) == PTM_RES_SUCCESS) {
			struct core_ctrl_reply r = { 0 };
			uint8_t hdr[CTRL_MSG_REPLY_HDR];
			const uint8_t *out;
			size_t out_len;

			if (req.data && (req.data < data + off || req.data + req.len > data + off + (size_t)n))
				abort();
			r.data = req.data;
			r.len = req.len;
			ctrl_msg_encode(req.op, &r, hdr, &out, &out_len);
		}
		off += (size_t)n;
	}
	return 0;
}
