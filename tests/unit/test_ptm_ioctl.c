/* SPDX-License-Identifier: BSD-3-Clause */
/* The CUSE front's PTM ioctl codec (bridge/ptm-ioctl.c), with hostile numbers, sizes and lengths. */
#include <errno.h>
#include <stdint.h>

#include <ptm.h>

#include "ptm-ioctl.h"
#include "unit.h"

#define NITEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Every ioctl offered (all but SET_DATAFD); the core operation is nr + 1. */
static const uint32_t ioctls[] = {
	PTM_GET_CAPABILITY, PTM_INIT, PTM_SHUTDOWN, PTM_GET_TPMESTABLISHED, PTM_SET_LOCALITY,
	PTM_HASH_START, PTM_HASH_DATA, PTM_HASH_END, PTM_CANCEL_TPM_CMD, PTM_STORE_VOLATILE,
	PTM_RESET_TPMESTABLISHED, PTM_GET_STATEBLOB, PTM_SET_STATEBLOB, PTM_STOP, PTM_GET_CONFIG,
	PTM_SET_BUFFERSIZE, PTM_GET_INFO, PTM_LOCK_STORAGE,
};

/* An input area aligned and sized for every input struct, as the kernel's copy is. */
union ptm_in {
	struct ptm_init init;
	struct ptm_loc loc;
	struct ptm_reset_est reset_est;
	struct ptm_hdata hdata;
	struct ptm_getstate getstate;
	struct ptm_setstate setstate;
	struct ptm_setbuffersize setbuffersize;
	struct ptm_getinfo getinfo;
	struct ptm_lockstorage lockstorage;
	uint8_t bytes[sizeof(struct ptm_hdata) + 1];	/* room for a size + 1 */
};

/* The buffer sizes the kernel gives a restricted ioctl. */
static size_t in_size(uint32_t request)
{
	return (_IOC_DIR(request) & _IOC_WRITE) ? _IOC_SIZE(request) : 0;
}

static size_t out_size(uint32_t request)
{
	return (_IOC_DIR(request) & _IOC_READ) ? _IOC_SIZE(request) : 0;
}

static int decode(uint32_t request, const union ptm_in *in, struct ptm_xfer *xfer, struct core_ctrl_req *req,
		  uint32_t *result)
{
	return ptm_ioctl_decode(request, in, in_size(request), out_size(request), false, xfer, req, result);
}

TEST(exact_sizes_are_accepted)
{
	for (size_t i = 0; i < NITEMS(ioctls); i++) {
		union ptm_in in;
		struct ptm_xfer xfer = { 0 };
		struct core_ctrl_req req;
		uint32_t result = 0xdead;

		memset(&in, 0, sizeof(in));
		CHECK_EQ(decode(ioctls[i], &in, &xfer, &req, &result), 0);
		CHECK_EQ(result, PTM_RES_SUCCESS);
		CHECK_EQ(req.op, _IOC_NR(ioctls[i]) + 1);
	}
}

TEST(other_sizes_and_compat_are_refused)
{
	for (size_t i = 0; i < NITEMS(ioctls); i++) {
		uint32_t rq = ioctls[i];
		size_t in_len = in_size(rq), out_len = out_size(rq);
		/* (in, out) pairs one byte off, on either side; 0 - 1 wraps to SIZE_MAX, a lie as well */
		const size_t lens[][2] = {
			{ in_len + 1, out_len }, { in_len - 1, out_len },
			{ in_len, out_len + 1 }, { in_len, out_len - 1 },
			{ 0, 0 }, { _IOC_SIZE(rq), _IOC_SIZE(rq) },
		};
		union ptm_in in;
		struct ptm_xfer xfer = { 0 };
		struct core_ctrl_req req;
		uint32_t result;

		memset(&in, 0, sizeof(in));
		for (size_t k = 0; k < NITEMS(lens); k++) {
			if (lens[k][0] == in_len && lens[k][1] == out_len)
				continue;	/* the exact pair (an _IOWR's {size, size}) */
			CHECK_EQ(ptm_ioctl_decode(rq, in.bytes, lens[k][0], lens[k][1], false, &xfer, &req,
						  &result), -EINVAL);
		}
		CHECK_EQ(ptm_ioctl_decode(rq, &in, in_len, out_len, true, &xfer, &req, &result), -EINVAL);
		CHECK_EQ(xfer.mode, PTM_XFER_CMD);
	}
}

TEST(unknown_numbers_are_enotty)
{
	static const uint32_t others[] = {
		_IOWR('P', 19, uint32_t), _IOWR('P', 20, uint64_t), _IOR('P', 63, uint32_t), _IO('P', 200),
		_IOR('Q', 0, uint64_t), _IOWR('T', 1, uint32_t), 0x5401 /* TCGETS */, 0xffffffffu, 0,
	};
	union ptm_in in;
	struct ptm_xfer xfer = { 0 };
	struct core_ctrl_req req;
	uint32_t result;

	memset(&in, 0, sizeof(in));
	/* 'P' and an ioctl's nr, but another size or direction: not that ioctl (as cuse-hostile's). */
	for (size_t i = 0; i < NITEMS(ioctls) + 1; i++) {
		uint32_t rq = i < NITEMS(ioctls) ? ioctls[i] : PTM_SET_DATAFD;
		uint32_t dir = _IOC_DIR(rq), nr = _IOC_NR(rq), size = _IOC_SIZE(rq);
		const uint32_t variants[] = {
			_IOC(dir, 'P', nr, size - 1), _IOC(dir, 'P', nr, size + 1), _IOC(dir, 'P', nr, size + 8),
			_IOC(_IOC_NONE, 'P', nr, 0), _IOC(dir ^ _IOC_WRITE, 'P', nr, size),
			_IOC(dir ^ _IOC_READ, 'P', nr, size), _IOC(dir, 'p', nr, size),
		};

		for (size_t k = 0; k < NITEMS(variants); k++)
			CHECK_EQ(ptm_ioctl_decode(variants[k], &in, in_size(variants[k]), out_size(variants[k]),
						  false, &xfer, &req, &result), -ENOTTY);
	}
	for (size_t i = 0; i < NITEMS(others); i++)
		CHECK_EQ(ptm_ioctl_decode(others[i], &in, in_size(others[i]), out_size(others[i]), false, &xfer,
					  &req, &result), -ENOTTY);
}

TEST(set_datafd_is_einval)
{
	union ptm_in in;
	struct ptm_xfer xfer = { 0 };
	struct core_ctrl_req req;
	uint32_t result;

	memset(&in, 0, sizeof(in));
	CHECK_EQ(decode(PTM_SET_DATAFD, &in, &xfer, &req, &result), -EINVAL);
	CHECK_EQ(ptm_ioctl_decode(PTM_SET_DATAFD, &in, 1, 1, true, &xfer, &req, &result), -EINVAL);
}

TEST(input_fields_are_decoded)
{
	union ptm_in in;
	struct ptm_xfer xfer = { 0 };
	struct core_ctrl_req req;
	uint32_t result;

	memset(&in, 0, sizeof(in));
	in.init.u.req.init_flags = PTM_INIT_FLAG_DELETE_VOLATILE;
	CHECK_EQ(decode(PTM_INIT, &in, &xfer, &req, &result), 0);
	CHECK_EQ(req.flags, PTM_INIT_FLAG_DELETE_VOLATILE);

	memset(&in, 0, sizeof(in));
	in.loc.u.req.loc = 255;
	CHECK_EQ(decode(PTM_SET_LOCALITY, &in, &xfer, &req, &result), 0);
	CHECK_EQ(req.locality, 255);	/* the core judges it */
	in.reset_est.u.req.loc = 3;
	CHECK_EQ(decode(PTM_RESET_TPMESTABLISHED, &in, &xfer, &req, &result), 0);
	CHECK_EQ(req.locality, 3);

	memset(&in, 0, sizeof(in));
	in.setbuffersize.u.req.buffersize = 0xffffffffu;
	CHECK_EQ(decode(PTM_SET_BUFFERSIZE, &in, &xfer, &req, &result), 0);
	CHECK_EQ(req.value, 0xffffffffu);

	memset(&in, 0, sizeof(in));
	in.lockstorage.u.req.retries = 7;
	CHECK_EQ(decode(PTM_LOCK_STORAGE, &in, &xfer, &req, &result), 0);
	CHECK_EQ(req.value, 7);

	memset(&in, 0, sizeof(in));
	in.getinfo.u.req.flags = 0x100000004ull;
	in.getinfo.u.req.offset = 0xfffffff0u;
	CHECK_EQ(decode(PTM_GET_INFO, &in, &xfer, &req, &result), 0);
	CHECK_EQ(req.info_flags, 0x100000004ull);
	CHECK_EQ(req.offset, 0xfffffff0u);
	CHECK_EQ(req.max_len, PTM_GETINFO_SIZE);
	CHECK_EQ(xfer.mode, PTM_XFER_CMD);

	/* An _IOR has no input: none is read (NULL, as libfuse may pass). */
	CHECK_EQ(ptm_ioctl_decode(PTM_STOP, NULL, 0, sizeof(ptm_res), false, &xfer, &req, &result), 0);
	CHECK_EQ(req.op, CMD_STOP);
	CHECK(req.data == NULL && req.len == 0);
}

TEST(hash_data_over_4096_is_refused)
{
	static const uint32_t bad[] = { PTM_HASH_DATA_SIZE + 1, 5000, 0x80000000u, 0xffffffffu };
	union ptm_in in;
	struct ptm_xfer xfer = { 0 };
	struct core_ctrl_req req;
	uint32_t result;

	memset(&in, 0, sizeof(in));
	in.hdata.u.req.length = PTM_HASH_DATA_SIZE;
	CHECK_EQ(decode(PTM_HASH_DATA, &in, &xfer, &req, &result), 0);
	CHECK(req.data == in.hdata.u.req.data);
	CHECK_EQ(req.len, PTM_HASH_DATA_SIZE);
	in.hdata.u.req.length = 0;
	CHECK_EQ(decode(PTM_HASH_DATA, &in, &xfer, &req, &result), 0);
	CHECK_EQ(req.len, 0);
	for (size_t i = 0; i < NITEMS(bad); i++) {
		in.hdata.u.req.length = bad[i];
		result = 0;
		CHECK_EQ(decode(PTM_HASH_DATA, &in, &xfer, &req, &result), PTM_IOCTL_ANSWERED);
		CHECK_EQ(result, PTM_RES_FAIL);
	}
}

TEST(set_stateblob_over_3072_is_refused)
{
	static const uint32_t bad[] = { PTM_STATE_BLOB_SIZE + 1, 0x80000000u, 0xffffffffu };
	union ptm_in in;
	struct ptm_xfer xfer = { 0 };
	struct core_ctrl_req req;
	uint32_t result;

	memset(&in, 0, sizeof(in));
	in.setstate.u.req.type = PTM_BLOB_TYPE_PERMANENT;
	in.setstate.u.req.length = PTM_STATE_BLOB_SIZE;
	CHECK_EQ(decode(PTM_SET_STATEBLOB, &in, &xfer, &req, &result), 0);
	CHECK(req.data == in.setstate.u.req.data);
	CHECK_EQ(req.len, PTM_STATE_BLOB_SIZE);
	CHECK_EQ(xfer.mode, PTM_XFER_SET);
	for (size_t i = 0; i < NITEMS(bad); i++) {
		in.setstate.u.req.length = bad[i];
		result = 0;
		CHECK_EQ(decode(PTM_SET_STATEBLOB, &in, &xfer, &req, &result), PTM_IOCTL_ANSWERED);
		CHECK_EQ(result, PTM_RES_BAD_PARAMETER);
		/* The transfer that was open ends: write() no longer appends to it. */
		CHECK_EQ(xfer.mode, PTM_XFER_CMD);
	}
}

/* One SET_STATEBLOB chunk through decode and a successful reply; the decoded request in *req. */
static int set_chunk(struct ptm_xfer *xfer, uint32_t type, uint32_t length, struct core_ctrl_req *req)
{
	union ptm_in in;
	struct core_ctrl_reply r = { .result = PTM_RES_SUCCESS };
	union ptm_ioctl_out out;
	uint32_t result;
	int ret;

	memset(&in, 0, sizeof(in));
	in.setstate.u.req.type = type;
	in.setstate.u.req.state_flags = PTM_STATE_FLAG_ENCRYPTED;
	in.setstate.u.req.length = length;
	ret = decode(PTM_SET_STATEBLOB, &in, xfer, req, &result);
	if (ret == 0 && ptm_ioctl_encode(PTM_SET_STATEBLOB, &r, req->last, xfer, &out) != sizeof(ptm_res))
		return -1;
	return ret;
}

TEST(set_chunks_3072_then_0_are_one_blob)
{
	struct ptm_xfer xfer = { 0 };
	struct core_ctrl_req req;

	CHECK_EQ(set_chunk(&xfer, PTM_BLOB_TYPE_VOLATILE, PTM_STATE_BLOB_SIZE, &req), 0);
	CHECK(req.first && !req.last);
	CHECK_EQ(req.type, PTM_BLOB_TYPE_VOLATILE);
	CHECK_EQ(req.flags, PTM_STATE_FLAG_ENCRYPTED);
	CHECK_EQ(xfer.mode, PTM_XFER_SET);
	CHECK_EQ(xfer.type, PTM_BLOB_TYPE_VOLATILE);
	CHECK_EQ(xfer.flags, PTM_STATE_FLAG_ENCRYPTED);
	CHECK_EQ(set_chunk(&xfer, PTM_BLOB_TYPE_VOLATILE, PTM_STATE_BLOB_SIZE, &req), 0);
	CHECK(!req.first && !req.last);
	CHECK_EQ(set_chunk(&xfer, PTM_BLOB_TYPE_VOLATILE, 0, &req), 0);
	CHECK(!req.first && req.last);
	CHECK_EQ(xfer.mode, PTM_XFER_CMD);
	/* The next chunk starts a new blob. */
	CHECK_EQ(set_chunk(&xfer, PTM_BLOB_TYPE_VOLATILE, 100, &req), 0);
	CHECK(req.first && req.last);
	CHECK_EQ(xfer.mode, PTM_XFER_CMD);
}

TEST(set_first_chunk_of_0_opens_write_mode)
{
	struct ptm_xfer xfer = { 0 };
	struct core_ctrl_req req;

	CHECK_EQ(set_chunk(&xfer, PTM_BLOB_TYPE_SAVESTATE, 0, &req), 0);
	CHECK(req.first && !req.last);
	CHECK_EQ(xfer.mode, PTM_XFER_SET);
	/* (write() appends here) the next short chunk ends it */
	CHECK_EQ(set_chunk(&xfer, PTM_BLOB_TYPE_SAVESTATE, 0, &req), 0);
	CHECK(!req.first && req.last);
	CHECK_EQ(xfer.mode, PTM_XFER_CMD);
}

TEST(set_chunk_of_another_type_starts_anew)
{
	struct ptm_xfer xfer = { 0 };
	struct core_ctrl_req req;

	CHECK_EQ(set_chunk(&xfer, PTM_BLOB_TYPE_PERMANENT, PTM_STATE_BLOB_SIZE, &req), 0);
	CHECK(req.first && !req.last);
	CHECK_EQ(set_chunk(&xfer, PTM_BLOB_TYPE_VOLATILE, 10, &req), 0);
	CHECK(req.first && req.last);
	CHECK_EQ(req.type, PTM_BLOB_TYPE_VOLATILE);
}

TEST(set_error_reply_ends_the_transfer)
{
	union ptm_in in;
	struct ptm_xfer xfer = { 0 };
	struct core_ctrl_req req;
	struct core_ctrl_reply r = { .result = PTM_RES_FAIL };
	union ptm_ioctl_out out;
	uint32_t result;

	memset(&in, 0, sizeof(in));
	in.setstate.u.req.type = PTM_BLOB_TYPE_PERMANENT;
	in.setstate.u.req.length = PTM_STATE_BLOB_SIZE;
	CHECK_EQ(decode(PTM_SET_STATEBLOB, &in, &xfer, &req, &result), 0);
	CHECK(!req.last);
	CHECK_EQ(ptm_ioctl_encode(PTM_SET_STATEBLOB, &r, req.last, &xfer, &out), sizeof(ptm_res));
	CHECK_EQ(out.res, PTM_RES_FAIL);
	CHECK_EQ(xfer.mode, PTM_XFER_CMD);
}

TEST(get_stateblob_rest_comes_by_read)
{
	static const uint8_t blob[PTM_STATE_BLOB_SIZE] = { 0x5a };
	union ptm_in in;
	struct ptm_xfer xfer = { .mode = PTM_XFER_SET, .type = PTM_BLOB_TYPE_VOLATILE };
	struct core_ctrl_req req;
	struct core_ctrl_reply r = { .result = PTM_RES_SUCCESS, .state_flags = PTM_STATE_FLAG_ENCRYPTED,
				     .totlength = 5000, .data = blob, .len = sizeof(blob) };
	union ptm_ioctl_out out;
	uint32_t result;

	memset(&in, 0, sizeof(in));
	in.getstate.u.req.type = PTM_BLOB_TYPE_PERMANENT;
	in.getstate.u.req.state_flags = PTM_STATE_FLAG_DECRYPTED;
	CHECK_EQ(decode(PTM_GET_STATEBLOB, &in, &xfer, &req, &result), 0);
	CHECK_EQ(req.type, PTM_BLOB_TYPE_PERMANENT);
	CHECK_EQ(req.flags, PTM_STATE_FLAG_DECRYPTED);
	CHECK_EQ(req.max_len, PTM_STATE_BLOB_SIZE);
	/* A GET ends a SET left open and records what read() continues. */
	CHECK_EQ(xfer.mode, PTM_XFER_CMD);
	CHECK_EQ(xfer.type, PTM_BLOB_TYPE_PERMANENT);
	CHECK_EQ(xfer.flags, PTM_STATE_FLAG_DECRYPTED);
	CHECK_EQ(xfer.offset, 0);

	CHECK_EQ(ptm_ioctl_encode(PTM_GET_STATEBLOB, &r, false, &xfer, &out), _IOC_SIZE(PTM_GET_STATEBLOB));
	CHECK_EQ(out.getstate.u.resp.tpm_result, PTM_RES_SUCCESS);
	CHECK_EQ(out.getstate.u.resp.state_flags, PTM_STATE_FLAG_ENCRYPTED);
	CHECK_EQ(out.getstate.u.resp.totlength, 5000);
	CHECK_EQ(out.getstate.u.resp.length, PTM_STATE_BLOB_SIZE);
	CHECK_EQ(out.getstate.u.resp.data[0], 0x5a);
	CHECK_EQ(xfer.mode, PTM_XFER_GET);
	CHECK_EQ(xfer.offset, PTM_STATE_BLOB_SIZE);
	CHECK_EQ(xfer.total, 5000);

	/* The rest by ioctl at its offset instead: the blob is all given, read() carries commands. */
	in.getstate.u.req.offset = PTM_STATE_BLOB_SIZE;
	CHECK_EQ(decode(PTM_GET_STATEBLOB, &in, &xfer, &req, &result), 0);
	CHECK_EQ(req.offset, PTM_STATE_BLOB_SIZE);
	r.len = 5000 - PTM_STATE_BLOB_SIZE;
	CHECK_EQ(ptm_ioctl_encode(PTM_GET_STATEBLOB, &r, false, &xfer, &out),
		 offsetof(struct ptm_getstate, u.resp.data) + r.len);
	CHECK_EQ(xfer.mode, PTM_XFER_CMD);
}

TEST(get_stateblob_error_carries_nothing)
{
	/* another thread's SET chunk opened a transfer while this GET ran */
	struct ptm_xfer xfer = { .mode = PTM_XFER_SET };
	struct core_ctrl_reply r = { .result = PTM_RES_RETRY, .totlength = 9000, .len = 10 };
	union ptm_ioctl_out out;

	CHECK_EQ(ptm_ioctl_encode(PTM_GET_STATEBLOB, &r, false, &xfer, &out),
		 offsetof(struct ptm_getstate, u.resp.data));
	CHECK_EQ(out.getstate.u.resp.tpm_result, PTM_RES_RETRY);
	CHECK_EQ(out.getstate.u.resp.totlength, 0);
	CHECK_EQ(out.getstate.u.resp.length, 0);
	/* The GET's reply ends it: read() and write() carry commands again. */
	CHECK_EQ(xfer.mode, PTM_XFER_CMD);
}

/*
 * A reply whose length is over the output's data area carries no data
 * (the data pointer here has one byte: a copy of more would be caught by
 * ASan and valgrind), and no reply is longer than the kernel's buffer.
 */
TEST(reply_lengths_over_the_area_are_not_copied)
{
	static const uint8_t one[1] = { 1 };
	static const size_t lens[] = { PTM_STATE_BLOB_SIZE + 1, 4096, 0x80000000u, SIZE_MAX };
	union ptm_ioctl_out out;

	for (size_t i = 0; i < NITEMS(lens); i++) {
		struct ptm_xfer xfer = { 0 };
		struct core_ctrl_reply r = { .result = PTM_RES_SUCCESS, .totlength = 0xffffffffu,
					     .data = one, .len = lens[i] };

		memset(&out, 0xee, sizeof(out));
		CHECK_EQ(ptm_ioctl_encode(PTM_GET_STATEBLOB, &r, false, &xfer, &out),
			 offsetof(struct ptm_getstate, u.resp.data));
		CHECK_EQ(out.getstate.u.resp.length, 0);
		CHECK_EQ(out.getstate.u.resp.data[0], 0xee);
		/* nothing given: read() continues from the offset, not past it */
		CHECK_EQ(xfer.offset, 0);
		memset(&out, 0xee, sizeof(out));
		CHECK_EQ(ptm_ioctl_encode(PTM_GET_INFO, &r, false, &xfer, &out),
			 offsetof(struct ptm_getinfo, u.resp.buffer));
		CHECK_EQ(out.getinfo.u.resp.length, 0);
		CHECK_EQ((uint8_t)out.getinfo.u.resp.buffer[0], 0xee);
	}
}

TEST(get_info_fits_exactly)
{
	static const uint8_t text[PTM_GETINFO_SIZE] = "{\"TPMSpecification\":{}}";
	struct ptm_xfer xfer = { 0 };
	struct core_ctrl_reply r = { .result = PTM_RES_SUCCESS, .totlength = 24, .data = text,
				     .len = PTM_GETINFO_SIZE };
	union ptm_ioctl_out out;

	CHECK_EQ(ptm_ioctl_encode(PTM_GET_INFO, &r, false, &xfer, &out),
		 offsetof(struct ptm_getinfo, u.resp.buffer) + PTM_GETINFO_SIZE);
	CHECK_EQ(out.getinfo.u.resp.totlength, 24);
	CHECK_EQ(out.getinfo.u.resp.length, PTM_GETINFO_SIZE);
	CHECK(memcmp(out.getinfo.u.resp.buffer, text, 24) == 0);
	r.result = PTM_RES_FAIL;
	CHECK_EQ(ptm_ioctl_encode(PTM_GET_INFO, &r, false, &xfer, &out), offsetof(struct ptm_getinfo, u.resp.buffer));
	CHECK_EQ(out.getinfo.u.resp.tpm_result, PTM_RES_FAIL);
	CHECK_EQ(out.getinfo.u.resp.totlength, 0);
	CHECK_EQ(xfer.mode, PTM_XFER_CMD);
}

TEST(fixed_replies)
{
	struct ptm_xfer xfer = { 0 };
	struct core_ctrl_reply r = { .result = PTM_RES_SUCCESS, .caps = 0x1ffffffffull, .established = true,
				     .config_flags = PTM_CONFIG_FLAG_FILE_KEY, .bufsize = 4096,
				     .bufsize_min = 2808, .bufsize_max = 4096 };
	union ptm_ioctl_out out;

	/* The socket-only bits are masked, whatever else the core offers. */
	CHECK_EQ(ptm_ioctl_encode(PTM_GET_CAPABILITY, &r, false, &xfer, &out), sizeof(ptm_cap));
	CHECK_EQ(out.cap, 0x1ffffffffull & ~(uint64_t)(PTM_CAP_SET_DATAFD | PTM_CAP_SEND_COMMAND_HEADER));
	CHECK_EQ(ptm_ioctl_encode(PTM_GET_TPMESTABLISHED, &r, false, &xfer, &out), sizeof(struct ptm_est));
	CHECK_EQ(out.est.u.resp.bit, 1);
	CHECK_EQ(ptm_ioctl_encode(PTM_GET_CONFIG, &r, false, &xfer, &out), sizeof(struct ptm_getconfig));
	CHECK_EQ(out.getconfig.u.resp.flags, PTM_CONFIG_FLAG_FILE_KEY);
	CHECK_EQ(ptm_ioctl_encode(PTM_SET_BUFFERSIZE, &r, false, &xfer, &out), sizeof(struct ptm_setbuffersize));
	CHECK_EQ(out.setbuffersize.u.resp.buffersize, 4096);
	CHECK_EQ(out.setbuffersize.u.resp.minsize, 2808);
	CHECK_EQ(out.setbuffersize.u.resp.maxsize, 4096);
	CHECK_EQ(ptm_ioctl_encode(PTM_INIT, &r, false, &xfer, &out), sizeof(ptm_res));
	CHECK_EQ(out.res, PTM_RES_SUCCESS);

	r.result = PTM_RES_BAD_ORDINAL;
	CHECK_EQ(ptm_ioctl_encode(PTM_GET_TPMESTABLISHED, &r, false, &xfer, &out), sizeof(struct ptm_est));
	CHECK_EQ(out.est.u.resp.tpm_result, PTM_RES_BAD_ORDINAL);
	CHECK_EQ(out.est.u.resp.bit, 0);
	CHECK_EQ(ptm_ioctl_encode(PTM_SET_BUFFERSIZE, &r, false, &xfer, &out), sizeof(ptm_res));
	CHECK_EQ(out.setbuffersize.u.resp.tpm_result, PTM_RES_BAD_ORDINAL);
	CHECK_EQ(ptm_ioctl_encode(PTM_LOCK_STORAGE, &r, false, &xfer, &out), sizeof(ptm_res));
	CHECK_EQ(out.res, PTM_RES_BAD_ORDINAL);
}

/* Every ioctl, every kind of reply: never longer than what the kernel reads back. */
TEST(no_reply_exceeds_the_ioctl_size)
{
	static const uint8_t data[PTM_STATE_BLOB_SIZE];
	static const size_t lens[] = { 0, 1, PTM_STATE_BLOB_SIZE - 1, PTM_STATE_BLOB_SIZE, PTM_STATE_BLOB_SIZE + 1 };
	static const uint32_t results[] = { PTM_RES_SUCCESS, PTM_RES_FAIL };
	union ptm_ioctl_out out;

	for (size_t i = 0; i < NITEMS(ioctls); i++) {
		for (size_t k = 0; k < NITEMS(lens) * NITEMS(results); k++) {
			struct ptm_xfer xfer = { 0 };
			struct core_ctrl_reply r = { .result = results[k % NITEMS(results)], .caps = ~0ull,
						     .totlength = 1u << 20, .data = data,
						     .len = lens[k / NITEMS(results)] };
			size_t n = ptm_ioctl_encode(ioctls[i], &r, false, &xfer, &out);

			CHECK(n <= out_size(ioctls[i]));
			CHECK(n >= sizeof(ptm_res));
		}
	}
}

UNIT_MAIN("unit/ptm_ioctl",
	  UNIT(exact_sizes_are_accepted),
	  UNIT(other_sizes_and_compat_are_refused),
	  UNIT(unknown_numbers_are_enotty),
	  UNIT(set_datafd_is_einval),
	  UNIT(input_fields_are_decoded),
	  UNIT(hash_data_over_4096_is_refused),
	  UNIT(set_stateblob_over_3072_is_refused),
	  UNIT(set_chunks_3072_then_0_are_one_blob),
	  UNIT(set_first_chunk_of_0_opens_write_mode),
	  UNIT(set_chunk_of_another_type_starts_anew),
	  UNIT(set_error_reply_ends_the_transfer),
	  UNIT(get_stateblob_rest_comes_by_read),
	  UNIT(get_stateblob_error_carries_nothing),
	  UNIT(reply_lengths_over_the_area_are_not_copied),
	  UNIT(get_info_fits_exactly),
	  UNIT(fixed_replies),
	  UNIT(no_reply_exceeds_the_ioctl_size))
