/* SPDX-License-Identifier: BSD-3-Clause */
#include "tpm-frame.h"

#include "bytes.h"

/* A command at buf + info->offset whose size is info->size: is it all there, and may it run? */
static enum tpm_frame frame_command(size_t len, uint32_t max_command, struct tpm_frame_info *info)
{
	if (info->size < TPM_HEADER_SIZE || info->size > TPM_FRAME_SKIP_MAX - info->offset)
		return TPM_FRAME_BROKEN;
	info->len = info->offset + info->size;
	if (info->size > max_command)
		return TPM_FRAME_OVERSIZE;
	return len < info->len ? TPM_FRAME_MORE : TPM_FRAME_COMMAND;
}

enum tpm_frame tpm_frame(const uint8_t *buf, size_t len, uint32_t max_command, bool mssim,
			 struct tpm_frame_info *info)
{
	*info = (struct tpm_frame_info){ 0 };
	/* No TPM command starts with 00 00: its tag is 0x80xx (TPM 2) or 0x00cx (TPM 1.2). */
	if (mssim && len >= 4 && get_be32(buf) == MSSIM_SESSION_END)
		return TPM_FRAME_END;
	if (mssim && len >= 4 && get_be32(buf) == MSSIM_SEND_COMMAND) {
		enum tpm_frame ret;

		if (len < MSSIM_PREFIX_SIZE)
			return TPM_FRAME_MORE;
		info->mssim = true;
		info->offset = MSSIM_PREFIX_SIZE;
		info->locality = buf[4];
		info->size = get_be32(buf + 5);
		ret = frame_command(len, max_command, info);
		if (ret != TPM_FRAME_MORE && ret != TPM_FRAME_COMMAND)
			return ret;
		if (len < MSSIM_PREFIX_SIZE + 6)
			return TPM_FRAME_MORE;
		return get_be32(buf + MSSIM_PREFIX_SIZE + 2) == info->size ? ret : TPM_FRAME_BROKEN;
	}
	if (len < 6)
		return TPM_FRAME_MORE;
	info->size = get_be32(buf + 2);
	return frame_command(len, max_command, info);
}
