/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The ctrl-channel wire format of `swtpm socket` (big-endian), parsed as a
 * byte stream: a message is its 4-byte code plus the exact payload that
 * code needs, however the bytes were split or coalesced by the sender.
 * Pure functions of their arguments: unit-tested and fuzzed.
 */
#ifndef VTPM_CTRL_MSG_H
#define VTPM_CTRL_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core.h"

#define CTRL_MSG_HASH_MAX	(64u * 1024)	/* HASH_DATA payload bound */
#define CTRL_MSG_BLOB_MAX	(1024u * 1024)	/* SET_STATEBLOB payload bound */
#define CTRL_MSG_REPLY_HDR	16		/* the longest fixed part of a reply */

/*
 * The length of the message at the start of buf: > 0 when it is all
 * there, 0 when more bytes are needed, -EMSGSIZE when its announced
 * payload is over the bounds above (reply ctrl_msg_oversize_result(), close).
 * SET_LOCALITY and RESET_TPMESTABLISHED are framed with their one byte.
 */
ssize_t ctrl_msg_frame(const uint8_t *buf, size_t len);

/*
 * A connection's stream: QEMU sends the 1-byte payloads as 4 bytes (the
 * byte and three zeros), other clients as one.  Which, is decided per
 * connection from the bytes alone, never from how reads split them.
 */
struct ctrl_stream {
	bool pad_pending;		/* the last message had a 1-byte payload */
	enum { CTRL_PAD_UNKNOWN, CTRL_PAD_NONE, CTRL_PAD_THREE } style;
};

/*
 * As ctrl_msg_frame() for the next message of the stream, after *skip
 * bytes of the previous message's padding, which the caller drops in
 * every case (also when 0 is returned).
 */
ssize_t ctrl_msg_next(struct ctrl_stream *st, const uint8_t *buf, size_t len, size_t *skip);
uint32_t ctrl_msg_oversize_result(const uint8_t *buf);

/* The command code of a framed message. */
uint32_t ctrl_msg_code(const uint8_t *msg);

/* A framed message as a core request; data points into msg.  PTM result code. */
uint32_t ctrl_msg_decode(const uint8_t *msg, size_t len, struct core_ctrl_req *req);

/*
 * The reply to `op`: the fixed part into hdr (returns its length), the data
 * (GET_STATEBLOB, GET_INFO) in *data / *data_len.  Errors are the 4-byte
 * result alone, as swtpm sends and QEMU reads them; GET_STATEBLOB keeps
 * its 16-byte header for blob errors.
 */
size_t ctrl_msg_encode(uint32_t op, const struct core_ctrl_reply *r, uint8_t hdr[CTRL_MSG_REPLY_HDR],
		       const uint8_t **data, size_t *data_len);

/* A bare 4-byte result. */
size_t ctrl_msg_encode_result(uint32_t result, uint8_t hdr[CTRL_MSG_REPLY_HDR]);

#endif
