/*
 * tpm-xfer.h: one TPM command and its whole response on an open TPM device
 * (CUSE or kernel), for the guest tools; included, since each tool is
 * built from its one .c file.
 */
#ifndef VM_TOOLS_TPM_XFER_H
#define VM_TOOLS_TPM_XFER_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static inline uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/*
 * Writes the command, reads until the response's size field is met; returns
 * the response code, or -1 with the reason in err.
 */
static inline long tpm_xfer(int f, const uint8_t *cmd, size_t n, uint8_t *out, size_t outmax, size_t *outlen,
			    char *err, size_t errmax)
{
	ssize_t w = write(f, cmd, n);
	size_t got = 0, want = 10;

	if (w != (ssize_t)n) {
		snprintf(err, errmax, "write(%zu) = %zd (%s)", n, w, w < 0 ? strerror(errno) : "short");
		return -1;
	}
	while (got < want) {
		ssize_t r = read(f, out + got, outmax - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(err, errmax, "read after %zu bytes = %zd (%s)", got, r,
				 r < 0 ? strerror(errno) : "EOF");
			return -1;
		}
		got += (size_t)r;
		if (got >= 6) {
			want = be32(out + 2);
			if (want < 10 || want > outmax) {
				snprintf(err, errmax, "response size field %zu", want);
				return -1;
			}
		}
	}
	if (got != want) {
		snprintf(err, errmax, "read %zu bytes, size field %zu", got, want);
		return -1;
	}
	*outlen = got;
	return be32(out + 6);
}

#endif
