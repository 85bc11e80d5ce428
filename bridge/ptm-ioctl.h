/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The PTM ioctl ABI of `swtpm cuse` (host byte order), the CUSE front's
 * analogue of ctrl-msg.h: which request numbers are ours, the restricted
 * buffer sizes the kernel must have used, the input struct as a core
 * request and the core's reply as the output struct, with the per-open-file
 * state blob transfer these imply.  No libfuse: unit-tested and fuzzed.
 */
#ifndef VTPM_PTM_IOCTL_H
#define VTPM_PTM_IOCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ptm.h>

#include "core.h"

/* What read() and write() move (ptm-ioctl.md section 8): per open file here, device-wide in swtpm. */
enum ptm_xfer_mode {
	PTM_XFER_CMD,		/* TPM commands and responses */
	PTM_XFER_GET,		/* read() continues a GET_STATEBLOB */
	PTM_XFER_SET,		/* write() appends to a SET_STATEBLOB */
};

/* An open file's blob transfer: the ioctls set it up, read() and write() continue it. */
struct ptm_xfer {
	enum ptm_xfer_mode mode;
	uint32_t type, flags;		/* the blob's, for the read() or write() that continues it */
	uint32_t offset;		/* PTM_XFER_GET: the next byte read() returns */
	uint32_t total;			/* PTM_XFER_GET: the whole blob's length */
};

/* Every output struct: ptm_ioctl_encode()'s area, aligned and sized for the largest. */
union ptm_ioctl_out {
	ptm_res res;
	ptm_cap cap;
	struct ptm_est est;
	struct ptm_getconfig getconfig;
	struct ptm_setbuffersize setbuffersize;
	struct ptm_getstate getstate;
	struct ptm_getinfo getinfo;
};

/* ptm_ioctl_decode(): the ioctl is answered with *result alone, the core is not asked. */
#define PTM_IOCTL_ANSWERED	1

/*
 * Decodes one ioctl: `request` as the caller gave it, `in` / `in_len` and
 * `out_len` the buffers the kernel made for it, `compat` for a 32-bit
 * caller on a 64-bit kernel (FUSE_IOCTL_COMPAT).  `in` is the input struct,
 * aligned for it; req->data points into it.  Returns
 *   0                    *req is for core_ctrl();
 *   PTM_IOCTL_ANSWERED   the reply is the ptm_res *result (a length over its bound);
 *   -ENOTTY              not one of our request numbers (type and nr alike, another size or direction too);
 *   -EINVAL              PTM_SET_DATAFD (socket only, as swtpm says), a compat
 *                        call, or buffers other than _IOC_SIZE by direction.
 * GET_STATEBLOB and SET_STATEBLOB update *xfer (ANSWERED too, never on
 * -errno), so a caller that may still fail the ioctl passes a copy.
 */
int ptm_ioctl_decode(uint32_t request, const void *in, size_t in_len, size_t out_len, bool compat,
		     struct ptm_xfer *xfer, struct core_ctrl_req *req, uint32_t *result);

/*
 * The output struct for the core's reply to a decoded `request` into *out;
 * returns its length, never over _IOC_SIZE(request) nor a data area (a
 * longer r->len is not copied: the reply then carries no data).  `last` is
 * what decoding said of a SET_STATEBLOB chunk.  GET_STATEBLOB (the rest
 * comes by read()) and SET_STATEBLOB (an error or the last chunk ends it)
 * update *xfer.
 */
size_t ptm_ioctl_encode(uint32_t request, const struct core_ctrl_reply *r, bool last, struct ptm_xfer *xfer,
			union ptm_ioctl_out *out);

#endif
