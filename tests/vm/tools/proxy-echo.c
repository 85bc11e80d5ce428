/*
 * proxy-echo: the floor of a vtpm-proxy TPM daemon, the kernel's round trip
 * through tpm_vtpm_proxy (/dev/tpmN, /dev/tpmrmN) with (almost) nothing
 * behind it; with --libtpms, the floor of any vtpm-proxy daemon running
 * libtpms (the "min-daemon").
 *
 *     proxy-echo [--libtpms]
 *
 * Asks /dev/vtpmx for a TPM 2.0 (VTPM_PROXY_IOC_NEW_DEV), prints
 * "New TPM device: /dev/tpmN (major/minor = M/m)" on stdout at once (as
 * swtpm does: the kernel makes the nodes later, once its start-up commands
 * have been answered) and serves the server fd from one thread until
 * SIGTERM or SIGINT (exit 0) or until the fd fails (exit 1): one read() of
 * 4096 bytes, one write() of the response.
 *
 * Plain: the two commands that tpm-lat times get canned responses of the
 * sizes the real TPM gives, without libtpms: TPM2_GetRandom(16) 16 (fixed)
 * bytes, TPM2_PCR_Extend the 19-byte answer to a password session.  Every
 * other command (the kernel's registration: SelfTest, GetCapability of the
 * properties, the command table and the PCR banks; the hwrng's GetRandom)
 * goes through libtpms, which needs no canned copy of the command table.
 * --libtpms: every command goes through TPMLIB_Process, as in a daemon.
 * In both, the driver's in-band SetLocality (0x20001000) is answered here
 * (rc 0; TPM_RC_LOCALITY above 4), as swtpm and our daemon answer it.
 * libtpms: a TPM 2.0 manufactured at start in a new directory under /tmp
 * (its own NVRAM files via TPM_PATH), then TPM2_Startup(CLEAR) before the
 * device is asked for: what `chardev --vtpm-proxy` does by default.
 * Guest-side tool (tests/vm/scenarios/proxy-latency.sh), built by
 * tests/vm/lib/host.sh (VM_TOOLS "proxy-echo:libtpms").
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/vtpm_proxy.h>

#include <libtpms/tpm_error.h>
#include <libtpms/tpm_library.h>

#include "tpm-canned.h"

#define BUFSIZE 4096	/* the server fd's one buffer: commands never longer */

/* SetLocality answered: rc 0, or TPM_RC_LOCALITY (0x907) */
static uint8_t rsp_locality[] = {
	0x80, 0x01, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x00
};

/* a command libtpms did not process (it never happens; the client sees an error) */
static const uint8_t rsp_failure[] = {
	0x80, 0x01, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x01, 0x01
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* libtpms' response buffer, which it grows as needed and we reuse */
static unsigned char *tpm_rsp;
static uint32_t tpm_rsp_len, tpm_rsp_size;

/* 0 or -1 */
static int tpm_process(uint8_t *cmd, size_t size)
{
	if (TPMLIB_Process(&tpm_rsp, &tpm_rsp_len, &tpm_rsp_size, cmd, (uint32_t)size) !=
	    TPM_SUCCESS || tpm_rsp_len < 10)
		return -1;
	return 0;
}

/* A new TPM 2.0, started.  0 or -1 (with a message). */
static int tpm_start(void)
{
	uint8_t startup_clear[] = {
		0x80, 0x01, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x01, 0x44, 0x00, 0x00
	};
	char dir[] = "/tmp/proxy-echo-XXXXXX";

	/* with no callbacks registered libtpms keeps its NVRAM in TPM_PATH */
	if (!mkdtemp(dir) || setenv("TPM_PATH", dir, 1)) {
		perror("proxy-echo: TPM_PATH");
		return -1;
	}
	if (TPMLIB_ChooseTPMVersion(TPMLIB_TPM_VERSION_2) != TPM_SUCCESS ||
	    TPMLIB_MainInit() != TPM_SUCCESS ||
	    tpm_process(startup_clear, sizeof(startup_clear)) || be32(tpm_rsp + 6) != 0) {
		fprintf(stderr, "proxy-echo: libtpms start-up failed\n");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static uint8_t cmd[BUFSIZE];
	struct vtpm_proxy_new_dev nd = { .flags = VTPM_PROXY_FLAG_TPM2 };
	struct sigaction sa;
	int libtpms = argc == 2 && !strcmp(argv[1], "--libtpms");
	int ctl, fd;

	if (argc != 1 + libtpms) {
		fprintf(stderr, "usage: proxy-echo [--libtpms]\n");
		return 2;
	}
	/* no SA_RESTART: SIGTERM ends the blocking read() with EINTR */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if (tpm_start())
		return 1;
	ctl = open("/dev/vtpmx", O_RDWR | O_CLOEXEC);
	if (ctl < 0 || ioctl(ctl, VTPM_PROXY_IOC_NEW_DEV, &nd) < 0) {
		fprintf(stderr, "proxy-echo: /dev/vtpmx: %s\n", strerror(errno));
		return 1;
	}
	close(ctl);
	fd = (int)nd.fd;
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		perror("proxy-echo: FD_CLOEXEC");
		return 1;
	}
	printf("New TPM device: /dev/tpm%u (major/minor = %u/%u)\n", nd.tpm_num, nd.major,
	       nd.minor);
	fflush(stdout);

	while (!stop) {
		const uint8_t *rsp;
		size_t len;
		ssize_t n = read(fd, cmd, sizeof(cmd)), w;
		uint32_t cc;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "proxy-echo: read: %s\n", strerror(errno));
			return 1;
		}
		cc = n >= 10 ? be32(cmd + 6) : 0;
		if (cc == 0x20001000 && n == 11) {
			rsp_locality[8] = cmd[10] > 4 ? 0x09 : 0;
			rsp_locality[9] = cmd[10] > 4 ? 0x07 : 0;
			rsp = rsp_locality;
			len = sizeof(rsp_locality);
		} else if (!libtpms && cc == 0x17b && n == 12 && cmd[10] == 0 && cmd[11] == 16) {
			rsp = rsp_getrandom;
			len = sizeof(rsp_getrandom);
		} else if (!libtpms && cc == 0x182 && n == 0x41) {
			rsp = rsp_pcr_extend;
			len = sizeof(rsp_pcr_extend);
		} else if (!tpm_process(cmd, (size_t)n)) {
			rsp = tpm_rsp;
			len = tpm_rsp_len;
		} else {
			rsp = rsp_failure;
			len = sizeof(rsp_failure);
		}
		w = write(fd, rsp, len);	/* one write: the kernel takes it whole */
		if (w != (ssize_t)len) {
			if (w < 0 && errno == EINTR && stop)
				break;
			fprintf(stderr, "proxy-echo: write(%zu): %s\n", len,
				w < 0 ? strerror(errno) : "short");
			return 1;
		}
	}
	close(fd);
	TPMLIB_Terminate();
	return 0;
}
