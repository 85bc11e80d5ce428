/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for bridge/ptm-ioctl.c: one ioctl as the CUSE front
 * takes it, decoded with the opener's blob transfer in any state, then
 * the core's reply to it (any result and lengths) encoded.  Aborts on a
 * length out of its bounds; ASan catches a read past the input or the
 * reply's data, or a write past the output.
 *
 * Input, host byte order: request u32, flags u8 (bit 0 FUSE_IOCTL_COMPAT,
 * bit 1 the kernel's buffer sizes for the number, else in = the rest and
 * out = out_len), out_len u16, the transfer (mode u8, type, flags, offset,
 * total u32), the reply (result, state_flags, totlength, config_flags,
 * bufsize u32, caps u64, established u8, len u64), then the input bytes
 * (with bit 1: the start of the input struct, zero-filled).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ptm-ioctl.h"

#define FLAG_COMPAT	1u
#define FLAG_EXACT	2u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct cursor {
	const uint8_t *p;
	size_t left;
};

/* The next n bytes into dst, or zeros once the input is used up. */
static void take(struct cursor *c, void *dst, size_t n)
{
	size_t k = n < c->left ? n : c->left;

	memcpy(dst, c->p, k);
	memset((uint8_t *)dst + k, 0, n - k);
	c->p += k;
	c->left -= k;
}

static uint32_t take32(struct cursor *c)
{
	uint32_t v;

	take(c, &v, sizeof(v));
	return v;
}

static uint64_t take64(struct cursor *c)
{
	uint64_t v;

	take(c, &v, sizeof(v));
	return v;
}

/* What the transfer state may be after any ioctl. */
static void check_xfer(const struct ptm_xfer *x)
{
	if (x->mode != PTM_XFER_CMD && x->mode != PTM_XFER_GET && x->mode != PTM_XFER_SET)
		abort();
	if (x->mode == PTM_XFER_GET && x->offset >= x->total)
		abort();
}

static void check_request(uint32_t request, const struct core_ctrl_req *req, const uint8_t *in, size_t in_len)
{
	size_t bound = request == PTM_HASH_DATA ? PTM_HASH_DATA_SIZE : PTM_STATE_BLOB_SIZE;

	if (req->op != _IOC_NR(request) + 1)
		abort();
	if (req->data && (req->len > bound || req->data < in || req->len > in_len ||
			  req->data - in > (ptrdiff_t)(in_len - req->len)))
		abort();
	if (!req->data && req->len)
		abort();
}

/* The data area of a GET_STATEBLOB or GET_INFO reply: its length field, the bytes it says, the whole. */
static void check_reply(uint32_t request, const union ptm_ioctl_out *out, size_t n, size_t out_len)
{
	size_t hdr = 0, len = 0;

	if (n > out_len || n > sizeof(*out) || n < sizeof(ptm_res))
		abort();
	if (request == PTM_GET_STATEBLOB) {
		hdr = offsetof(struct ptm_getstate, u.resp.data);
		len = out->getstate.u.resp.length;
	} else if (request == PTM_GET_INFO) {
		hdr = offsetof(struct ptm_getinfo, u.resp.buffer);
		len = out->getinfo.u.resp.length;
	} else {
		return;
	}
	if (len > PTM_STATE_BLOB_SIZE || n != hdr + len)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cursor c = { data, size };
	struct core_ctrl_reply r;
	struct core_ctrl_req req;
	struct ptm_xfer xfer;
	union ptm_ioctl_out *out;
	uint32_t request, result;
	uint16_t out_len16;
	uint8_t flags, mode, est;
	size_t in_len, out_len;
	uint8_t *in, *reply_data;
	int ret;

	request = take32(&c);
	take(&c, &flags, 1);
	take(&c, &out_len16, 2);
	take(&c, &mode, 1);
	memset(&xfer, 0, sizeof(xfer));
	xfer.mode = mode % 3;
	xfer.type = take32(&c);
	xfer.flags = take32(&c);
	xfer.offset = take32(&c);
	xfer.total = take32(&c);
	if (xfer.mode == PTM_XFER_GET && xfer.offset >= xfer.total)
		xfer.mode = PTM_XFER_CMD;	/* a state the codec never leaves behind */
	memset(&r, 0, sizeof(r));
	r.result = take32(&c);
	r.state_flags = take32(&c);
	r.totlength = take32(&c);
	r.config_flags = take32(&c);
	r.bufsize = r.bufsize_min = r.bufsize_max = take32(&c);
	r.caps = take64(&c);
	take(&c, &est, 1);
	r.established = est & 1;
	r.len = (size_t)take64(&c);

	if (flags & FLAG_EXACT) {
		in_len = (_IOC_DIR(request) & _IOC_WRITE) ? _IOC_SIZE(request) : 0;
		out_len = (_IOC_DIR(request) & _IOC_READ) ? _IOC_SIZE(request) : 0;
	} else {
		in_len = c.left;
		out_len = out_len16;
	}
	/*
	 * Exactly in_len bytes (malloc: aligned for any struct), and the
	 * reply's data as long as r.len up to the largest data area, ending
	 * where its allocation ends, so that ASan sees any read past them: a
	 * longer r.len must not be copied.
	 */
	in = malloc(in_len ? in_len : 1);
	reply_data = malloc(PTM_STATE_BLOB_SIZE);
	out = malloc(sizeof(*out));
	if (!in || !reply_data || !out)
		abort();
	take(&c, in, in_len);
	memset(reply_data, 0xa5, PTM_STATE_BLOB_SIZE);
	r.data = reply_data + PTM_STATE_BLOB_SIZE - (r.len < PTM_STATE_BLOB_SIZE ? r.len : PTM_STATE_BLOB_SIZE);

	ret = ptm_ioctl_decode(request, in, in_len, out_len, flags & FLAG_COMPAT, &xfer, &req, &result);
	if (ret != 0 && ret != PTM_IOCTL_ANSWERED && ret != -EINVAL && ret != -ENOTTY)
		abort();
	check_xfer(&xfer);
	if (ret == PTM_IOCTL_ANSWERED && request != PTM_HASH_DATA && request != PTM_SET_STATEBLOB)
		abort();
	if (ret == 0) {
		size_t n;

		check_request(request, &req, in, in_len);
		n = ptm_ioctl_encode(request, &r, req.last, &xfer, out);
		check_reply(request, out, n, out_len);
		check_xfer(&xfer);
	}
	free(in);
	free(reply_data);
	free(out);
	return 0;
}
