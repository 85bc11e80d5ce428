/*
 * tpm-lat: per-command latency of one TPM 2.0 command through a TPM device.
 *
 *     tpm-lat DEVICE N [getrandom|pcrextend]
 *
 * Sends the command on DEVICE (/dev/tpm0, /dev/tpmrm0, a CUSE /dev/vtpm-NAME)
 * N times from one process, one command at a time: write the whole command,
 * read the response.  Each round trip (write + read) is timed with
 * CLOCK_MONOTONIC.  The commands (default getrandom):
 *   getrandom  TPM2_GetRandom(16); a good response has tag 0x8001 and 16
 *              random bytes
 *   pcrextend  TPM2_PCR_Extend of PCR 16, one sha256 digest (32 x 0xab, as
 *              bench/common.c), the empty password session TPM_RS_PW; a good
 *              response has tag 0x8002 and parameterSize 0
 * and for both a size field equal to its length and rc 0; the first bad
 * response ends the run (exit 1).  On success prints one line and exits 0:
 *
 *     tpm-lat n=N median_us=X p99_us=Y min_us=Z max_us=W
 *
 * (microseconds, one decimal; p99 is the nearest-rank 99th percentile).
 * The bench's guest rows (bench/run.py) parse that line.
 * Guest-side test tool, built by tests/vm/lib/host.sh (VM_TOOLS).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static unsigned long be32(const unsigned char *p)
{
	return (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 |
	       (unsigned long)p[2] << 8 | p[3];
}

static const unsigned char get_random[] = {
	0x80, 0x01, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x01, 0x7b, 0x00, 0x10
};

static const unsigned char pcr_extend[] = {
	0x80, 0x02, 0x00, 0x00, 0x00, 0x41, 0x00, 0x00, 0x01, 0x82,
	0x00, 0x00, 0x00, 0x10,				/* PCR 16 */
	0x00, 0x00, 0x00, 0x09, 0x40, 0x00, 0x00, 0x09,	/* auth area: TPM_RS_PW */
	0x00, 0x00, 0x00, 0x00, 0x00,			/* nonce(0), attributes, hmac(0) */
	0x00, 0x00, 0x00, 0x01, 0x00, 0x0b,		/* one digest, TPM_ALG_SHA256 */
	0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab,
	0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab,
	0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab
};

/* beyond the header (tag, size = r, rc 0, checked for all): this command's part */
static int getrandom_ok(const unsigned char *rsp, ssize_t r)
{
	return r >= 12 + 16 && rsp[1] == 0x01 && rsp[10] == 0 && rsp[11] == 16;
}

static int pcrextend_ok(const unsigned char *rsp, ssize_t r)
{
	return r >= 14 && rsp[1] == 0x02 && be32(rsp + 10) == 0;
}

static const struct {
	const char *name;
	const unsigned char *cmd;
	size_t len;
	int (*ok)(const unsigned char *rsp, ssize_t r);
} cmds[] = {
	{ "getrandom", get_random, sizeof(get_random), getrandom_ok },
	{ "pcrextend", pcr_extend, sizeof(pcr_extend), pcrextend_ok },
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	unsigned char rsp[4096];
	struct timespec t0, t1;
	double *us, median;
	char *end;
	long n, i, k;
	size_t c = 0;
	int fd;

	if (argc == 4)
		while (c < sizeof(cmds) / sizeof(cmds[0]) && strcmp(argv[3], cmds[c].name))
			c++;
	if ((argc != 3 && argc != 4) || c == sizeof(cmds) / sizeof(cmds[0])) {
		fprintf(stderr, "usage: tpm-lat DEVICE N [getrandom|pcrextend]\n");
		return 2;
	}
	errno = 0;
	n = strtol(argv[2], &end, 10);
	if (errno || *end || n < 1 || n > 10000000) {
		fprintf(stderr, "tpm-lat: bad N '%s'\n", argv[2]);
		return 2;
	}
	fd = open(argv[1], O_RDWR);
	if (fd < 0) {
		fprintf(stderr, "tpm-lat: open %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	us = malloc((size_t)n * sizeof(*us));
	if (!us) {
		perror("tpm-lat: malloc");
		close(fd);
		return 2;
	}
	for (i = 0; i < n; i++) {
		ssize_t w, r;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		w = write(fd, cmds[c].cmd, cmds[c].len);
		if (w != (ssize_t)cmds[c].len) {
			fprintf(stderr, "tpm-lat: command %ld: write gave %zd: %s\n", i, w,
				w < 0 ? strerror(errno) : "short write");
			goto fail;
		}
		r = read(fd, rsp, sizeof(rsp));
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (r < 0) {
			fprintf(stderr, "tpm-lat: command %ld: read: %s\n", i, strerror(errno));
			goto fail;
		}
		if (r < 10 || rsp[0] != 0x80 || be32(rsp + 2) != (unsigned long)r ||
		    be32(rsp + 6) != 0 || !cmds[c].ok(rsp, r)) {
			fprintf(stderr, "tpm-lat: command %ld: bad response: %zd bytes, rc 0x%08lx\n",
				i, r, r >= 10 ? be32(rsp + 6) : 0UL);
			goto fail;
		}
		us[i] = (double)(t1.tv_sec - t0.tv_sec) * 1e6 +
			(double)(t1.tv_nsec - t0.tv_nsec) / 1e3;
	}
	close(fd);
	qsort(us, (size_t)n, sizeof(*us), cmp_double);
	median = n % 2 ? us[n / 2] : (us[n / 2 - 1] + us[n / 2]) / 2;
	k = (99 * n + 99) / 100;	/* nearest rank: ceil(0.99 n) */
	printf("tpm-lat n=%ld median_us=%.1f p99_us=%.1f min_us=%.1f max_us=%.1f\n",
	       n, median, us[k - 1], us[0], us[n - 1]);
	free(us);
	return 0;
fail:
	close(fd);
	free(us);
	return 1;
}
