/*
 * nvread-sock: reads an 8-byte NV index (a TPM 2 counter) through a TPM
 * data socket, the one `socket --server type=unixio,path=PATH` listens on.
 *
 *     nvread-sock PATH INDEX
 *
 * Sends TPM2_NV_Read(owner, INDEX, 8 bytes at offset 0) with an empty
 * password session on a fresh connection and prints the value in decimal,
 * or "absent" when the TPM has no such index (TPM_RC_HANDLE for it) or it
 * was never written (TPM_RC_NV_UNINITIALIZED).  Any other answer, or no
 * answer, is printed on stderr and the exit status is 1.  One process, no
 * TSS: the power-cut scenario reads the counter from ~100 replayed states,
 * and tpm2_nvread costs half a second each under TCG.
 * Guest-side test tool, built by tests/vm/lib/host.sh (VM_TOOLS).
 */
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "tpm-xfer.h"

#define RC_HANDLE_2 0x28b	/* TPM_RC_HANDLE + TPM_RC_2: the NV index */
#define RC_NV_UNINITIALIZED 0x14a

int main(int argc, char **argv)
{
	uint8_t cmd[] = {
		0x80, 0x02, 0x00, 0x00, 0x00, 0x23, 0x00, 0x00, 0x01, 0x4e,	/* NV_Read */
		0x40, 0x00, 0x00, 0x01,				/* authHandle: TPM_RH_OWNER */
		0x00, 0x00, 0x00, 0x00,				/* nvIndex, set below */
		0x00, 0x00, 0x00, 0x09, 0x40, 0x00, 0x00, 0x09,	/* TPM_RS_PW */
		0x00, 0x00, 0x00, 0x00, 0x00,			/* nonce, attributes, hmac */
		0x00, 0x08, 0x00, 0x00				/* size 8, offset 0 */
	};
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint8_t rsp[64];
	size_t len;
	char err[128], *end;
	unsigned long index;
	long rc;
	int fd;

	if (argc != 3 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "usage: nvread-sock PATH INDEX\n");
		return 2;
	}
	index = strtoul(argv[2], &end, 0);
	if (*end || end == argv[2] || index > 0xffffffffUL) {
		fprintf(stderr, "nvread-sock: bad index %s\n", argv[2]);
		return 2;
	}
	for (int i = 0; i < 4; i++)
		cmd[14 + i] = (uint8_t)(index >> (24 - 8 * i));
	strcpy(sa.sun_path, argv[1]);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "nvread-sock: %s: %s\n", argv[1], strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	rc = tpm_xfer(fd, cmd, sizeof(cmd), rsp, sizeof(rsp), &len, err, sizeof(err));
	close(fd);
	if (rc == RC_HANDLE_2 || rc == RC_NV_UNINITIALIZED) {
		printf("absent\n");
		return 0;
	}
	/* header, parameterSize (4), TPM2B size (2) = 8, the 8 bytes, the session */
	if (rc != 0 || len < 24 || be32(rsp + 10) < 10 || rsp[14] != 0 || rsp[15] != 8) {
		if (rc < 0)
			fprintf(stderr, "nvread-sock: %s\n", err);
		else
			fprintf(stderr, "nvread-sock: rc %#lx, %zu bytes\n", (unsigned long)rc, len);
		return 1;
	}
	printf("%llu\n", (unsigned long long)be32(rsp + 16) << 32 | be32(rsp + 20));
	return 0;
}
