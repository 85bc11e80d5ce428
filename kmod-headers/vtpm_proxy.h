/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The kernel's vTPM proxy ABI (/dev/vtpmx, module tpm_vtpm_proxy), written
 * from ../shared/spec/vtpm-proxy.md sections 2 and 5; the layout and the
 * request number are checked at compile time below.
 */
#ifndef VTPM_KMOD_VTPM_PROXY_H
#define VTPM_KMOD_VTPM_PROXY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>

/* flags: a TPM 2.0; 0 is a TPM 1.2; any other bit gives EOPNOTSUPP. */
#define VTPM_PROXY_FLAG_TPM2	1u

struct vtpm_proxy_new_dev {
	uint32_t flags;		/* in */
	uint32_t tpm_num;	/* out: N of /dev/tpmN and /dev/tpmrmN */
	uint32_t fd;		/* out: the server side, installed in our table (not close-on-exec) */
	uint32_t major;		/* out: dev_t of /dev/tpmN only */
	uint32_t minor;
};

#define VTPM_PROXY_IOC_NEW_DEV	_IOWR(0xa1, 0x00, struct vtpm_proxy_new_dev)

/*
 * The driver's in-band locality request (not a TPM command): tag, size 11,
 * this code, one byte of locality, sent once before the kernel's first
 * command.  TPM 2 uses tag ST_SESSIONS (without an auth area), TPM 1.2
 * RQU_COMMAND.
 */
#define VTPM_PROXY_SET_LOCALITY		0x20001000u
#define VTPM_PROXY_SET_LOCALITY_SIZE	11

/* The server fd's one buffer: longer commands never arrive, longer responses get EIO. */
#define VTPM_PROXY_BUFSIZE	4096

_Static_assert(sizeof(struct vtpm_proxy_new_dev) == 20, "struct vtpm_proxy_new_dev is 20 bytes");
_Static_assert(offsetof(struct vtpm_proxy_new_dev, minor) == 16, "minor at offset 16");
_Static_assert(VTPM_PROXY_IOC_NEW_DEV == 0xc014a100u, "VTPM_PROXY_IOC_NEW_DEV is 0xC014A100");

#endif
