/*
 * tpm-loop: keeps a TPM busy from one process, for as long as a file is absent.
 *
 *     tpm-loop [-k] DEVICE STOPFILE STATFILE
 *
 * Sends TPM2_GetRandom(16) on DEVICE (/dev/tpm0 or /dev/tpmrm0) over and over
 * until STOPFILE exists.  With -k it creates an ECC P-256 primary key first
 * and then sends TPM2_Create of an RSA-2048 signing key under it instead: a
 * key generation of tens to hundreds of milliseconds (a command the daemon
 * runs on its worker thread), so one is nearly always in flight.
 *
 * After every command it rewrites STATFILE in place with
 * "<ok> <bad> <last bad rc, hex> <echoed>".  A response is ok if it has the
 * tag expected, a size field equal to its length and rc 0 (GetRandom: and 16
 * random bytes).  "Echoed" counts reads that returned the command's own
 * header: the response never replaced the command in tpm-crb's buffer (QEMU
 * 7.2 loses the response of the command in flight when a migration stops
 * the VM; see scenarios/qemu-migrate.sh).  Exits 0 when no command went bad.
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

#define TPM_HEADER 10

static const unsigned char get_random[] = {
	0x80, 0x01, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x01, 0x7b, 0x00, 0x10
};

/* CreatePrimary(owner, password session): ECC P-256 storage key, AES-128-CFB */
static const unsigned char create_primary[] = {
	0x80, 0x02, 0x00, 0x00, 0x00, 0x43, 0x00, 0x00, 0x01, 0x31,
	0x40, 0x00, 0x00, 0x01,
	0x00, 0x00, 0x00, 0x09, 0x40, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x04, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x1a, 0x00, 0x23, 0x00, 0x0b, 0x00, 0x03, 0x00, 0x72, 0x00, 0x00,
	0x00, 0x06, 0x00, 0x80, 0x00, 0x43, 0x00, 0x10, 0x00, 0x03, 0x00, 0x10,
	0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00
};

/* Create(parent set at run time): RSA-2048 signing key, no scheme */
static unsigned char create_rsa[] = {
	0x80, 0x02, 0x00, 0x00, 0x00, 0x3f, 0x00, 0x00, 0x01, 0x53,
	0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x09, 0x40, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x04, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x16, 0x00, 0x01, 0x00, 0x0b, 0x00, 0x04, 0x00, 0x72, 0x00, 0x00,
	0x00, 0x10, 0x00, 0x10, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00
};

static unsigned long be32(const unsigned char *p)
{
	return (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 |
	       (unsigned long)p[2] << 8 | p[3];
}

/* one command, one response; the response's length or -1 */
static ssize_t transact(int fd, const unsigned char *cmd, size_t len,
			unsigned char *rsp, size_t size)
{
	if (write(fd, cmd, len) != (ssize_t)len)
		return -1;
	return read(fd, rsp, size);
}

static int response_ok(const unsigned char *cmd, const unsigned char *rsp, ssize_t n)
{
	if (n < TPM_HEADER || rsp[0] != cmd[0] || rsp[1] != cmd[1] ||
	    be32(rsp + 2) != (unsigned long)n || be32(rsp + 6) != 0)
		return 0;
	return cmd != get_random ||
	       (n == TPM_HEADER + 2 + 16 && rsp[10] == 0 && rsp[11] == 16);
}

int main(int argc, char **argv)
{
	unsigned long ok = 0, bad = 0, lastrc = 0, echoed = 0;
	const unsigned char *cmd = get_random;
	size_t cmd_len = sizeof(get_random);
	unsigned char rsp[4096];
	char stat[80];
	int fd, sfd, keygen = argc == 5 && strcmp(argv[1], "-k") == 0;

	if (argc != 4 && !keygen) {
		fprintf(stderr, "usage: tpm-loop [-k] DEVICE STOPFILE STATFILE\n");
		return 2;
	}
	argv += keygen;
	fd = open(argv[1], O_RDWR);
	sfd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || sfd < 0) {
		perror("tpm-loop: open");
		return 2;
	}
	if (keygen) {
		ssize_t n = transact(fd, create_primary, sizeof(create_primary), rsp, sizeof(rsp));

		if (!response_ok(create_primary, rsp, n)) {
			fprintf(stderr, "tpm-loop: CreatePrimary failed (%zd bytes, rc 0x%lx)\n",
				n, n >= TPM_HEADER ? be32(rsp + 6) : 0UL);
			return 2;
		}
		memcpy(create_rsa + TPM_HEADER, rsp + TPM_HEADER, 4);
		cmd = create_rsa;
		cmd_len = sizeof(create_rsa);
	}
	while (access(argv[2], F_OK) != 0) {
		ssize_t n = transact(fd, cmd, cmd_len, rsp, sizeof(rsp));

		if (response_ok(cmd, rsp, n)) {
			ok++;
		} else if (n >= TPM_HEADER && memcmp(rsp, cmd, TPM_HEADER) == 0) {
			echoed++;
		} else {
			bad++;
			lastrc = n < 0 ? 0xffffffffUL - (unsigned long)errno
			       : n >= TPM_HEADER ? be32(rsp + 6) : 0xfffffffeUL;
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
