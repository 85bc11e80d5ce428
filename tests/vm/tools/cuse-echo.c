/*
 * cuse-echo: the floor of a CUSE TPM device, the kernel's FUSE round trip
 * with no TPM behind it; with --libtpms, the floor of any CUSE daemon
 * running libtpms (the "min-daemon").
 *
 *     cuse-echo [--libtpms] NAME
 *
 * Creates /dev/NAME with libfuse3's cuse_lowlevel and serves it from one
 * thread in the foreground until killed.  write() keeps the command's code;
 * the next read() returns a canned response of the size the real TPM gives:
 * GetRandom(16) gets 16 (fixed) bytes, PCR_Extend the 19-byte answer to a
 * password session, any other command TPM_RC_COMMAND_CODE.  A read() with
 * no command pending returns 0 bytes, as our daemon's does.  No PTM ioctls:
 * tpm-lat needs none, and answering them would only add code to the floor.
 * One response slot for all openers: the bench has one.
 * --libtpms: write() runs the command through TPMLIB_Process in this process
 * instead (a TPM 2.0 manufactured at start in a new directory under /tmp,
 * libtpms' own NVRAM files via TPM_PATH, then TPM2_Startup(CLEAR)): the same
 * loop plus libtpms, as bench/echosrv.c -T is on a socket.
 * Guest-side tool (tests/vm/scenarios/cuse-latency.sh), built by
 * tests/vm/lib/host.sh (VM_TOOLS "cuse-echo:fuse3,libtpms").
 */
#define FUSE_USE_VERSION 31
#define _POSIX_C_SOURCE 200809L
#include <cuse_lowlevel.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libtpms/tpm_error.h>
#include <libtpms/tpm_library.h>

#include "tpm-canned.h"

static const uint8_t rsp_bad_code[] = {
	0x80, 0x01, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x01, 0x43
};

static const uint8_t *pending;	/* the response to the last command, until read */
static size_t pending_len;

static void echo_open(fuse_req_t req, struct fuse_file_info *fi)
{
	fuse_reply_open(req, fi);
}

static void echo_write(fuse_req_t req, const char *buf, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	uint32_t cc = 0;

	(void)off;
	(void)fi;
	if (size >= 10)
		cc = (uint32_t)(uint8_t)buf[6] << 24 | (uint32_t)(uint8_t)buf[7] << 16 |
		     (uint32_t)(uint8_t)buf[8] << 8 | (uint8_t)buf[9];
	switch (cc) {
	case 0x17b:
		pending = rsp_getrandom;
		pending_len = sizeof(rsp_getrandom);
		break;
	case 0x182:
		pending = rsp_pcr_extend;
		pending_len = sizeof(rsp_pcr_extend);
		break;
	default:
		pending = rsp_bad_code;
		pending_len = sizeof(rsp_bad_code);
	}
	fuse_reply_write(req, size);
}

/* libtpms' response buffer, which it grows as needed and we reuse */
static unsigned char *tpm_rsp;
static uint32_t tpm_rsp_len, tpm_rsp_size;

/* 0 or -1; TPMLIB_Process takes a non-const command, hence the copy */
static int tpm_process(const char *cmd, size_t size)
{
	static unsigned char buf[4096];	/* TPM 2.0's largest command */

	if (size > sizeof(buf))
		return -1;
	memcpy(buf, cmd, size);
	if (TPMLIB_Process(&tpm_rsp, &tpm_rsp_len, &tpm_rsp_size, buf, (uint32_t)size) !=
	    TPM_SUCCESS)
		return -1;
	pending = tpm_rsp;
	pending_len = tpm_rsp_len;
	return 0;
}

static void tpm_write(fuse_req_t req, const char *buf, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	(void)off;
	(void)fi;
	if (tpm_process(buf, size))
		fuse_reply_err(req, EIO);
	else
		fuse_reply_write(req, size);
}

/* A new TPM 2.0, started: what our daemon is at its first command with
 * --flags not-need-init,startup-clear.  0 or -1 (with a message). */
static int tpm_start(void)
{
	static const char startup_clear[] = {
		(char)0x80, 0x01, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x01, 0x44, 0x00, 0x00
	};
	char dir[] = "/tmp/cuse-echo-XXXXXX";

	/* with no callbacks registered libtpms keeps its NVRAM in TPM_PATH */
	if (!mkdtemp(dir) || setenv("TPM_PATH", dir, 1)) {
		perror("cuse-echo: TPM_PATH");
		return -1;
	}
	if (TPMLIB_ChooseTPMVersion(TPMLIB_TPM_VERSION_2) != TPM_SUCCESS ||
	    TPMLIB_MainInit() != TPM_SUCCESS ||
	    tpm_process(startup_clear, sizeof(startup_clear)) || pending_len < 10 ||
	    memcmp(pending + 6, "\0\0\0\0", 4)) {
		fprintf(stderr, "cuse-echo: libtpms start-up failed\n");
		return -1;
	}
	pending_len = 0;
	return 0;
}

static void echo_read(fuse_req_t req, size_t size, off_t off, struct fuse_file_info *fi)
{
	size_t n = pending_len < size ? pending_len : size;

	(void)off;
	(void)fi;
	fuse_reply_buf(req, (const char *)pending, n);
	pending_len = 0;
}

static const struct cuse_lowlevel_ops echo_ops = {
	.open = echo_open,
	.read = echo_read,
	.write = echo_write,
};

static const struct cuse_lowlevel_ops tpm_ops = {
	.open = echo_open,
	.read = echo_read,
	.write = tpm_write,
};

int main(int argc, char **argv)
{
	char devname[128];
	const char *dev_info[] = { devname };
	/* foreground (the scenario kills it by PID), one thread (the floor) */
	char *fargv[] = { argv[0], "-f", "-s", NULL };
	struct cuse_info ci = { .dev_info_argc = 1, .dev_info_argv = dev_info };
	int libtpms = argc == 3 && !strcmp(argv[1], "--libtpms");

	if (argc != 2 + libtpms ||
	    snprintf(devname, sizeof(devname), "DEVNAME=%s", argv[1 + libtpms]) >=
			(int)sizeof(devname)) {
		fprintf(stderr, "usage: cuse-echo [--libtpms] NAME\n");
		return 2;
	}
	if (libtpms && tpm_start())
		return 1;
	return cuse_lowlevel_main(3, fargv, &ci, libtpms ? &tpm_ops : &echo_ops, NULL);
}
