/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Framing of TPM commands in a byte stream (the data channel): a command
 * is its header's size field long.  Pure: unit-tested and fuzzed, shared
 * by every front that reads commands from a stream.
 */
#ifndef VTPM_TPM_FRAME_H
#define VTPM_TPM_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define TPM_HEADER_SIZE		10
#define TPM_FRAME_SKIP_MAX	(1u << 20)	/* an oversized command is skipped up to this */

enum tpm_frame {
	TPM_FRAME_MORE,		/* the size field or the command is not all there yet */
	TPM_FRAME_COMMAND,	/* *size bytes at buf are one command */
	TPM_FRAME_OVERSIZE,	/* larger than max_command: skip *size bytes, answer COMMAND_SIZE */
	TPM_FRAME_BROKEN,	/* a size below the header or over the skip bound: no next frame */
};

enum tpm_frame tpm_frame(const uint8_t *buf, size_t len, uint32_t max_command, uint32_t *size);

#endif
