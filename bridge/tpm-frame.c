/* SPDX-License-Identifier: BSD-3-Clause */
#include "tpm-frame.h"

#include "bytes.h"

enum tpm_frame tpm_frame(const uint8_t *buf, size_t len, uint32_t max_command, uint32_t *size)
{
	if (len < 6)
		return TPM_FRAME_MORE;
	*size = get_be32(buf + 2);
	if (*size < TPM_HEADER_SIZE || *size > TPM_FRAME_SKIP_MAX)
		return TPM_FRAME_BROKEN;
	if (*size > max_command)
		return TPM_FRAME_OVERSIZE;
	return len < *size ? TPM_FRAME_MORE : TPM_FRAME_COMMAND;
}
