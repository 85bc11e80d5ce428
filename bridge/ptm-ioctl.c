/* SPDX-License-Identifier: BSD-3-Clause */
#include "ptm-ioctl.h"

#include <errno.h>
#include <string.h>

/*
 * The ioctls offered and their core operation.  The whole request number is
 * matched (direction and size too), so a number that merely shares 'P' and
 * nr is unknown.
 */
struct ptm_ioctl_desc {
	uint32_t request;
	uint32_t op;
};

static const struct ptm_ioctl_desc ptm_ioctls[] = {
	{ PTM_GET_CAPABILITY, CMD_GET_CAPABILITY },
	{ PTM_INIT, CMD_INIT },
	{ PTM_SHUTDOWN, CMD_SHUTDOWN },
	{ PTM_GET_TPMESTABLISHED, CMD_GET_TPMESTABLISHED },
	{ PTM_SET_LOCALITY, CMD_SET_LOCALITY },
	{ PTM_HASH_START, CMD_HASH_START },
	{ PTM_HASH_DATA, CMD_HASH_DATA },
	{ PTM_HASH_END, CMD_HASH_END },
	{ PTM_CANCEL_TPM_CMD, CMD_CANCEL_TPM_CMD },
	{ PTM_STORE_VOLATILE, CMD_STORE_VOLATILE },
	{ PTM_RESET_TPMESTABLISHED, CMD_RESET_TPMESTABLISHED },
	{ PTM_GET_STATEBLOB, CMD_GET_STATEBLOB },
	{ PTM_SET_STATEBLOB, CMD_SET_STATEBLOB },
	{ PTM_STOP, CMD_STOP },
	{ PTM_GET_CONFIG, CMD_GET_CONFIG },
	{ PTM_SET_BUFFERSIZE, CMD_SET_BUFFERSIZE },
	{ PTM_GET_INFO, CMD_GET_INFO },
	{ PTM_LOCK_STORAGE, CMD_LOCK_STORAGE },
	/* PTM_SET_DATAFD is a socket-only operation: not offered here (EINVAL, as swtpm). */
};

static const struct ptm_ioctl_desc *ptm_ioctl_find(uint32_t request)
{
	for (size_t i = 0; i < sizeof(ptm_ioctls) / sizeof(ptm_ioctls[0]); i++) {
		if (ptm_ioctls[i].request == request)
			return &ptm_ioctls[i];
	}
	return NULL;
}

/* The input struct (exactly it: the kernel copied _IOC_SIZE bytes) into req. */
static uint32_t ptm_ioctl_fields(uint32_t request, const void *in, struct ptm_xfer *xfer,
				 struct core_ctrl_req *req)
{
	switch (request) {
	case PTM_INIT: {
		const struct ptm_init *p = in;

		req->flags = p->u.req.init_flags;
		break;
	}
	case PTM_SET_LOCALITY: {
		const struct ptm_loc *p = in;

		req->locality = p->u.req.loc;
		break;
	}
	case PTM_RESET_TPMESTABLISHED: {
		const struct ptm_reset_est *p = in;

		req->locality = p->u.req.loc;
		break;
	}
	case PTM_HASH_DATA: {
		const struct ptm_hdata *p = in;

		if (p->u.req.length > PTM_HASH_DATA_SIZE)
			return PTM_RES_FAIL;
		req->data = p->u.req.data;
		req->len = p->u.req.length;
		break;
	}
	case PTM_GET_STATEBLOB: {
		const struct ptm_getstate *p = in;

		req->flags = p->u.req.state_flags;
		req->type = p->u.req.type;
		req->offset = p->u.req.offset;
		req->max_len = PTM_STATE_BLOB_SIZE;
		xfer->mode = PTM_XFER_CMD;
		xfer->type = req->type;
		xfer->flags = req->flags;
		xfer->offset = req->offset;
		break;
	}
	case PTM_SET_STATEBLOB: {
		const struct ptm_setstate *p = in;
		bool starts = xfer->mode != PTM_XFER_SET || xfer->type != p->u.req.type;

		if (p->u.req.length > PTM_STATE_BLOB_SIZE) {
			xfer->mode = PTM_XFER_CMD;
			return PTM_RES_BAD_PARAMETER;
		}
		req->flags = p->u.req.state_flags;
		req->type = p->u.req.type;
		req->data = p->u.req.data;
		req->len = p->u.req.length;
		req->first = starts;
		/*
		 * A chunk shorter than the inline area ends the blob; a first
		 * chunk of 0 bytes opens write() mode instead (ended by the next
		 * short chunk, normally of 0 bytes).
		 */
		req->last = req->len < PTM_STATE_BLOB_SIZE && !(starts && req->len == 0);
		xfer->mode = PTM_XFER_SET;
		xfer->type = req->type;
		xfer->flags = req->flags;
		break;
	}
	case PTM_SET_BUFFERSIZE: {
		const struct ptm_setbuffersize *p = in;

		req->value = p->u.req.buffersize;
		break;
	}
	case PTM_GET_INFO: {
		const struct ptm_getinfo *p = in;

		req->info_flags = p->u.req.flags;
		req->offset = p->u.req.offset;
		req->max_len = PTM_GETINFO_SIZE;
		break;
	}
	case PTM_LOCK_STORAGE: {
		const struct ptm_lockstorage *p = in;

		req->value = p->u.req.retries;
		break;
	}
	default:
		break;	/* _IOR: no input */
	}
	return PTM_RES_SUCCESS;
}

int ptm_ioctl_decode(uint32_t request, const void *in, size_t in_len, size_t out_len, bool compat,
		     struct ptm_xfer *xfer, struct core_ctrl_req *req, uint32_t *result)
{
	const struct ptm_ioctl_desc *d = ptm_ioctl_find(request);
	size_t size = _IOC_SIZE(request);

	if (!d)
		return request == PTM_SET_DATAFD ? -EINVAL : -ENOTTY;
	/*
	 * Restricted ioctls: the kernel sized both buffers from the number;
	 * anything else is not ours (and the input is read as its struct below).
	 */
	if (compat || in_len != ((_IOC_DIR(request) & _IOC_WRITE) ? size : 0) ||
	    out_len != ((_IOC_DIR(request) & _IOC_READ) ? size : 0))
		return -EINVAL;
	memset(req, 0, sizeof(*req));
	req->op = d->op;
	*result = ptm_ioctl_fields(request, in, xfer, req);
	return *result == PTM_RES_SUCCESS ? 0 : PTM_IOCTL_ANSWERED;
}

/* The data a GET_STATEBLOB or GET_INFO reply carries: none when it would not fit the area. */
static size_t ptm_reply_data_len(const struct core_ctrl_reply *r, size_t area)
{
	return r->result == PTM_RES_SUCCESS && r->len <= area ? r->len : 0;
}

size_t ptm_ioctl_encode(uint32_t request, const struct core_ctrl_reply *r, bool last, struct ptm_xfer *xfer,
			union ptm_ioctl_out *out)
{
	switch (request) {
	case PTM_GET_CAPABILITY:
		out->cap = r->caps & ~(uint64_t)(PTM_CAP_SET_DATAFD | PTM_CAP_SEND_COMMAND_HEADER);
		return sizeof(out->cap);
	case PTM_GET_TPMESTABLISHED:
		memset(&out->est, 0, sizeof(out->est));
		out->est.u.resp.tpm_result = r->result;
		out->est.u.resp.bit = r->result == PTM_RES_SUCCESS && r->established;
		return sizeof(out->est);
	case PTM_GET_CONFIG:
		memset(&out->getconfig, 0, sizeof(out->getconfig));
		out->getconfig.u.resp.tpm_result = r->result;
		out->getconfig.u.resp.flags = r->config_flags;
		return sizeof(out->getconfig);
	case PTM_SET_BUFFERSIZE:
		memset(&out->setbuffersize, 0, sizeof(out->setbuffersize));
		out->setbuffersize.u.resp.tpm_result = r->result;
		out->setbuffersize.u.resp.buffersize = r->bufsize;
		out->setbuffersize.u.resp.minsize = r->bufsize_min;
		out->setbuffersize.u.resp.maxsize = r->bufsize_max;
		return r->result == PTM_RES_SUCCESS ? sizeof(out->setbuffersize) : sizeof(ptm_res);
	case PTM_GET_STATEBLOB: {
		struct ptm_getstate *gs = &out->getstate;
		size_t n = ptm_reply_data_len(r, sizeof(gs->u.resp.data));

		gs->u.resp.tpm_result = r->result;
		gs->u.resp.state_flags = r->state_flags;
		gs->u.resp.totlength = r->result == PTM_RES_SUCCESS ? r->totlength : 0;
		gs->u.resp.length = (uint32_t)n;
		if (n)
			memcpy(gs->u.resp.data, r->data, n);
		/* The rest of the blob, if any, comes by read() (the offset is the next byte). */
		xfer->mode = PTM_XFER_CMD;
		if (r->result == PTM_RES_SUCCESS && xfer->offset + n < r->totlength) {
			xfer->mode = PTM_XFER_GET;
			xfer->offset += (uint32_t)n;
			xfer->total = r->totlength;
		}
		return offsetof(struct ptm_getstate, u.resp.data) + n;
	}
	case PTM_GET_INFO: {
		struct ptm_getinfo *gi = &out->getinfo;
		size_t n = ptm_reply_data_len(r, sizeof(gi->u.resp.buffer));

		gi->u.resp.tpm_result = r->result;
		gi->u.resp.totlength = r->result == PTM_RES_SUCCESS ? r->totlength : 0;
		gi->u.resp.length = (uint32_t)n;
		if (n)
			memcpy(gi->u.resp.buffer, r->data, n);
		return offsetof(struct ptm_getinfo, u.resp.buffer) + n;
	}
	case PTM_SET_STATEBLOB:
		if (r->result != PTM_RES_SUCCESS || last)
			xfer->mode = PTM_XFER_CMD;
		break;
	default:
		break;
	}
	out->res = r->result;
	return sizeof(out->res);
}
