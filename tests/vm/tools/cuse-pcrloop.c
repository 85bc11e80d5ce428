/*
 * cuse-pcrloop: a second opener that reads PCRs back to back on a TPM
 * character device, for as long as a file is absent.
 *
 *     cuse-pcrloop DEVICE STOPFILE
 *
 * One open file; TPM2_PCR_Read(sha256: 0-7) over and over (1 ms apart).
 * Every response must be a PCR_Read response of its own: tag 0x8001, the
 * size field equal to the bytes read, and either rc 0 with eight 32-byte
 * digests, or TPM_RC_INITIALIZE (0x100, before TPM2_Startup).  Anything
 * else (another opener's response, a short or mixed one) counts as bad.
 * At the end one line: "pcrloop ok=N uninit=M bad=K[ first_bad=HEX]".
 * Exit status 0 iff no bad response and at least one good one.
 * Guest-side test tool (tests/vm/scenarios/cuse-passthrough.sh), built by
 * tests/vm/lib/host.sh (VM_TOOLS).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tpm-xfer.h"

static const uint8_t pcr_read[] = {
	0x80, 0x01, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x01, 0x7e,
	0x00, 0x00, 0x00, 0x01, 0x00, 0x0b, 0x03, 0xff, 0x00, 0x00
};


int main(int argc, char **argv)
{
	uint8_t out[4096];
	unsigned long ok = 0, uninit = 0, bad = 0;
	char first[200] = "";
	int f;

	if (argc != 3) {
		fprintf(stderr, "usage: cuse-pcrloop DEVICE STOPFILE\n");
		return 2;
	}
	f = open(argv[1], O_RDWR);
	if (f < 0) {
		printf("pcrloop open %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	while (access(argv[2], F_OK) != 0) {
		ssize_t w = write(f, pcr_read, sizeof(pcr_read)), r = 0;
		size_t got = 0;
		int good = 0;

		if (w == (ssize_t)sizeof(pcr_read)) {
			/* one read() takes the whole response (it is < 4096 bytes) */
			r = read(f, out, sizeof(out));
			got = r > 0 ? (size_t)r : 0;
		}
		if (got >= 10 && out[0] == 0x80 && out[1] == 0x01 && be32(out + 2) == got) {
			uint32_t rc = be32(out + 6);
			/* header, updateCounter, selection (4+2+1+3), count, 8 x (2 + 32) */
			if (rc == 0 && got == 10 + 4 + 10 + 4 + 8 * 34 && be32(out + 24) == 8)
				good = 1;
			else if (rc == 0x100 && got == 10)
				good = 2;
		}
		if (good == 1)
			ok++;
		else if (good == 2)
			uninit++;
		else {
			bad++;
			if (!first[0]) {
				int n = snprintf(first, sizeof(first), "write=%zd read=%zd%s%s:", w, r,
						 r < 0 ? " " : "", r < 0 ? strerror(errno) : "");
				for (size_t i = 0; i < got && i < 24 && n < (int)sizeof(first) - 3; i++)
					n += snprintf(first + n, sizeof(first) - (size_t)n, "%02x", out[i]);
			}
		}
		usleep(1000);
	}
	close(f);
	printf("pcrloop ok=%lu uninit=%lu bad=%lu%s%s\n", ok, uninit, bad, first[0] ? " first_bad=" : "", first);
	return bad == 0 && ok > 0 ? 0 : 1;
}
