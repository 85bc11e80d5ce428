/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Framing of TPM commands in a byte stream (the data channel): a command
 * is its header's size field long.  A TPM 2 command may come with the
 * TCG/Microsoft simulator's send-command prefix (what tpm2-tss's mssim
 * TCTI sends): u32 TPM_SEND_COMMAND (8), u8 locality, u32 size, then the
 * command; its response then goes back as u32 size, response, u32 0.
 * Pure: unit-tested and fuzzed, shared by every front that reads commands
 * from a stream.
 */
#ifndef VTPM_TPM_FRAME_H
#define VTPM_TPM_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TPM_HEADER_SIZE		10
#define TPM_FRAME_SKIP_MAX	(1u << 20)	/* an oversized frame is skipped up to this */

#define MSSIM_SEND_COMMAND	8u	/* TPM_SEND_COMMAND of the simulator's TPM port */
#define MSSIM_SESSION_END	20u	/* TPM_SESSION_END: the client is done */
#define MSSIM_PREFIX_SIZE	9	/* u32 code, u8 locality, u32 size */
#define MSSIM_TRAILER_SIZE	4	/* the u32 0 after a response */

enum tpm_frame {
	TPM_FRAME_MORE,		/* the size field or the command is not all there yet */
	TPM_FRAME_COMMAND,	/* one command: info->size bytes at buf + info->offset */
	TPM_FRAME_OVERSIZE,	/* larger than max_command: skip info->len bytes, answer COMMAND_SIZE */
	TPM_FRAME_BROKEN,	/* a size below the header or over the skip bound: no next frame */
	TPM_FRAME_END,		/* the simulator's TPM_SESSION_END: close */
};

struct tpm_frame_info {
	uint32_t len;		/* bytes of the stream the frame takes, prefix included */
	uint32_t offset;	/* where the command starts: 0, or after the prefix */
	uint32_t size;		/* the command's size (BROKEN: the size that cannot be framed) */
	bool mssim;		/* it came with the simulator's prefix: answer in its framing */
	uint8_t locality;	/* the prefix's locality */
};

/*
 * The next frame of buf.  `mssim`: the simulator's prefix is recognised
 * (TPM 2 only, as swtpm).  A prefix whose size disagrees with its command
 * header's is BROKEN: nothing says which one delimits the stream.
 */
enum tpm_frame tpm_frame(const uint8_t *buf, size_t len, uint32_t max_command, bool mssim,
			 struct tpm_frame_info *info);

#endif
