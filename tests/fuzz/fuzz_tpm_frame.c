/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for the data path's decisions on outside bytes: the
 * input is a data-channel stream, framed command by command as the socket
 * front does (bridge/tpm-frame.c), and each command is classified for the
 * worker (emu_command_is_long) as TPM 2 and as TPM 1.2, from a buffer of
 * exactly its size so that any read past it is caught.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The first byte picks the buffer limit, as SET_BUFFERSIZE may. */
	uint32_t max = size ? 10u + (uint32_t)data[0] * 64u : 4096u;
	size_t off = size ? 1 : 0;

	while (off < size) {
		uint32_t n = 0;

		switch (tpm_frame(data + off, size - off, max, &n)) {
		case TPM_FRAME_MORE:
			classify(data + off, size - off);	/* what a truncated stream holds */
			return 0;
		case TPM_FRAME_BROKEN:
			return 0;
		case TPM_FRAME_OVERSIZE:
			if (n <= max)
				abort();
			off += n < size - off ? n : size - off;
			break;
		case TPM_FRAME_COMMAND:
			if (n < TPM_HEADER_SIZE || n > max || n > size - off)
				abort();
			classify(data + off, n);
			off += n;
			break;
		}
	}
	return 0;
}
