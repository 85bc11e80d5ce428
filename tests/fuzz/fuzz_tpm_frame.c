/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for the data path's decisions on outside bytes: the
 * input is a data-channel stream, framed command by command as the socket
 * front does (bridge/tpm-frame.c), once as a TPM 1.2 stream and once as a
 * TPM 2 stream where the simulator's send-command prefix counts, and each
 * command is classified for the worker (emu_command_is_long) as TPM 2 and
 * as TPM 1.2, from a buffer of exactly its size so that any read past it
 * is caught.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "tpm-frame.h"
#include "tpm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct emu *emu_for(bool tpm2)
{
	static struct emu *emus[2];
	struct emu_config cfg = { .tpm2 = tpm2 };

	/* One emu per process is libtpms's rule: swap them by destroying. */
	if (!emus[tpm2]) {
		if (emus[!tpm2]) {
			emu_destroy(emus[!tpm2]);
			emus[!tpm2] = NULL;
		}
		if (emu_create(&emus[tpm2], &cfg) < 0)
			abort();
	}
	return emus[tpm2];
}

static void classify(const uint8_t *cmd, size_t len)
{
	uint8_t *exact = malloc(len ? len : 1);

	if (!exact)
		abort();
	memcpy(exact, cmd, len);
	(void)emu_command_is_long(emu_for(true), exact, len);
	(void)emu_command_is_long(emu_for(false), exact, len);
	free(exact);
}

/* Frames the stream as the socket front does; aborts where a frame breaks its promises. */
static void frame_stream(const uint8_t *data, size_t size, uint32_t max, bool mssim)
{
	size_t off = 0;

	while (off < size) {
		struct tpm_frame_info f;

		switch (tpm_frame(data + off, size - off, max, mssim, &f)) {
		case TPM_FRAME_MORE:
			classify(data + off, size - off);	/* what a truncated stream holds */
			return;
		case TPM_FRAME_BROKEN:
			return;
		case TPM_FRAME_END:
			if (!mssim)
				abort();
			return;
		case TPM_FRAME_OVERSIZE:
			if (f.size <= max || f.len != f.offset + f.size || f.len > TPM_FRAME_SKIP_MAX)
				abort();
			off += f.len < size - off ? f.len : size - off;
			break;
		case TPM_FRAME_COMMAND:
			if (f.size < TPM_HEADER_SIZE || f.size > max || f.len != f.offset + f.size || f.len > size - off ||
			    (f.mssim && !mssim) || f.offset != (f.mssim ? MSSIM_PREFIX_SIZE : 0) ||
			    get_be32(data + off + f.offset + 2) != f.size)
				abort();
			classify(data + off + f.offset, f.size);
			off += f.len;
			break;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The first byte picks the buffer limit, as SET_BUFFERSIZE may. */
	uint32_t max = size ? 10u + (uint32_t)data[0] * 64u : 4096u;
	size_t off = size ? 1 : 0;

	frame_stream(data + off, size - off, max, false);
	frame_stream(data + off, size - off, max, true);
	return 0;
}
