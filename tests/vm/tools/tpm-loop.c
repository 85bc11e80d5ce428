/*
 * tpm-loop: keeps a TPM busy from one process, for as long as a file is absent.
 *
 *     tpm-loop DEVICE STOPFILE STATFILE
 *
 * Sends TPM2_GetRandom(16) on DEVICE (/dev/tpm0 or /dev/tpmrm0) over and over
 * until STOPFILE exists.  After every command it rewrites STATFILE in place
 * with "<ok> <bad> <last bad rc, hex> <echoed>".  A response counts as ok if
 * it has tag 0x8001, a size field equal to its length, rc 0 and 16 random
 * bytes.  "Echoed" counts reads that returned the command's own bytes: the
 * response of a command was never written over the CRB buffer (QEMU 7.2
 * loses the response of the command in flight when a migration stops the
 * VM; see scenarios/qemu-migrate.sh).  Exits 0 when no command went bad.
 *
 * The guest's migration test runs it across a live migration.  It stays one
 * process writing the same few pages: a loop of tpm2_getrandom processes
 * (fork, exec, page tables built and torn down ~30 times a second) once lost
 * a write under TCG migration and crashed the guest kernel.
 * Guest-side test tool, built by tests/vm/lib/host.sh (VM_TOOLS).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const unsigned char get_random[] = {
	0x80, 0x01, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x01, 0x7b, 0x00, 0x10
};

static unsigned long be32(const unsigned char *p)
{
	return (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 |
	       (unsigned long)p[2] << 8 | p[3];
}

int main(int argc, char **argv)
{
	unsigned long ok = 0, bad = 0, lastrc = 0, echoed = 0;
	unsigned char rsp[4096];
	char stat[80];
	int fd, sfd;

	if (argc != 4) {
		fprintf(stderr, "usage: tpm-loop DEVICE STOPFILE STATFILE\n");
		return 2;
	}
	fd = open(argv[1], O_RDWR);
	sfd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || sfd < 0) {
		perror("tpm-loop: open");
		return 2;
	}
	while (access(argv[2], F_OK) != 0) {
		ssize_t n = write(fd, get_random, sizeof(get_random));

		if (n == (ssize_t)sizeof(get_random))
			n = read(fd, rsp, sizeof(rsp));
		else
			n = -1;
		if (n >= 10 + 2 + 16 && rsp[0] == 0x80 && rsp[1] == 0x01 &&
		    be32(rsp + 2) == (unsigned long)n && be32(rsp + 6) == 0 &&
		    rsp[10] == 0 && rsp[11] == 16) {
			ok++;
		} else if (n == (ssize_t)sizeof(get_random) &&
			   memcmp(rsp, get_random, sizeof(get_random)) == 0) {
			echoed++;
		} else {
			bad++;
			lastrc = n < 0 ? 0xffffffffUL - (unsigned long)errno
			       : n >= 10 ? be32(rsp + 6) : 0xfffffffeUL;
		}
		/* fixed width: no stale tail when the numbers grow */
		snprintf(stat, sizeof(stat), "%12lu %12lu %08lx %12lu\n",
			 ok, bad, lastrc, echoed);
		if (pwrite(sfd, stat, strlen(stat), 0) < 0) {
			perror("tpm-loop: write");
			return 2;
		}
	}
	return bad ? 1 : 0;
}
