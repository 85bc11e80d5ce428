/*
 * cuse-seed: drives a CUSE vTPM (/dev/NAME) in the sequence of QEMU's 2015
 * "cuse-tpm" backend proposal, the client the CUSE interface was made for.
 *
 *     cuse-seed DEVICE
 *
 *  1. PTM_GET_CAPABILITY: the bits that backend needed (INIT, SHUTDOWN,
 *     GET/RESET_TPMESTABLISHED, SET_LOCALITY, CANCEL_TPM_CMD, GET/SET_STATEBLOB,
 *     STOP), and no SET_DATAFD (socket only);
 *  2. PTM_INIT, then TPM commands by write()/read() (TPM2_Startup, GetRandom);
 *  3. PTM_SET_LOCALITY only when the locality changes (0 -> 2 -> 0), checked
 *     by what the PC client PCR attributes allow: PCR 21 may be extended
 *     only from locality 2 and reset from 2 or 4, so at locality 0 both give
 *     TPM_RC_LOCALITY (0x907) and at 2 both succeed;
 *     PTM_RESET_TPMESTABLISHED at locality 3 must leave locality 0 in force;
 *  4. PTM_CANCEL_TPM_CMD while a TPM2_CreatePrimary RSA-2048 runs (another
 *     thread, as QEMU's backend thread): the keygen must answer
 *     TPM_RC_CANCELED (0x909); up to 6 attempts, each with a new unique
 *     field, in case a cancel lands after the keygen finished;
 *  5. state transfer: NV indices are sized so the permanent blob is exactly
 *     2 x PTM_STATE_BLOB_SIZE; GET_STATEBLOB of every type (offset-0
 *     ioctl + read() for the rest; for the permanent blob also the ioctl-only
 *     pattern, which must agree); the TPM is changed (PCR 10 extended, the NV
 *     index deleted), stopped, and the blobs go back with SET_STATEBLOB (the
 *     permanent one in ioctl chunks ending with a 0-length transfer, the
 *     volatile one by write() between two 0-length ioctls, the empty
 *     savestate as two 0-length ioctls); INIT(DELETE_VOLATILE) must bring
 *     back PCR 10 and the NV data;
 *  6. PTM_SHUTDOWN at close.
 *
 * One line per check on stdout: "PASS name - text", "FAIL name - text" or
 * "INFO text"; tests/vm/scenarios/cuse-seed.sh maps them to results.  Exit
 * status 0 iff no FAIL.  Guest-side test tool, built by tests/vm/lib/host.sh
 * (VM_TOOLS).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "../../../kmod-headers/ptm.h"
#include "tpm-xfer.h"

#define RC_LOCALITY	0x907u
#define RC_CANCELED	0x909u
#define NV_INDEX1	0x01500021u
#define NV_INDEX2	0x01500022u
#define NV_INDEX3	0x01500023u
#define NV_MAX		2048u	/* libtpms MAX_NV_INDEX_SIZE */

static int failures;
static int fd = -1;
static unsigned cur_loc;	/* the locality last set, as the backend tracked it */
static unsigned loc_ioctls;

/* device_alive: after a FAIL, a dead device (daemon gone) ends the run
 * with one line instead of a FAIL for every check that follows */
static void device_alive(void)
{
	ptm_cap c;

	if (fd >= 0 && ioctl(fd, PTM_GET_CAPABILITY, &c) != 0 &&
	    (errno == ENOTCONN || errno == ECONNABORTED || errno == ENODEV || errno == EIO)) {
		printf("FAIL device-alive - the device stopped answering (%s); the later checks did not run\n",
		       strerror(errno));
		fflush(stdout);
		exit(1);
	}
}

static void result(int ok, const char *name, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	printf("%s %s%s%s\n", ok ? "PASS" : "FAIL", name, text[0] ? " - " : "", text);
	fflush(stdout);
	if (!ok) {
		failures++;
		device_alive();
	}
}

static void info(const char *fmt, ...)
{
	va_list ap;

	printf("INFO ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------ commands */

struct cmd {
	uint8_t b[4096];
	size_t n;
};

static void put8(struct cmd *c, unsigned v) { c->b[c->n++] = (uint8_t)v; }
static void put16(struct cmd *c, unsigned v) { put8(c, v >> 8); put8(c, v); }
static void put32(struct cmd *c, uint32_t v) { put16(c, v >> 16); put16(c, v & 0xffff); }
static void putb(struct cmd *c, const void *p, size_t n) { memcpy(c->b + c->n, p, n); c->n += n; }

static void start(struct cmd *c, unsigned tag, uint32_t cc)
{
	c->n = 0;
	put16(c, tag);
	put32(c, 0);
	put32(c, cc);
}

static void pw_session(struct cmd *c)
{
	put32(c, 9);		/* authorizationSize */
	put32(c, 0x40000009);	/* TPM_RS_PW */
	put16(c, 0);		/* nonce */
	put8(c, 0);		/* attributes */
	put16(c, 0);		/* empty password */
}

static void finish(struct cmd *c)
{
	c->b[2] = (uint8_t)(c->n >> 24);
	c->b[3] = (uint8_t)(c->n >> 16);
	c->b[4] = (uint8_t)(c->n >> 8);
	c->b[5] = (uint8_t)c->n;
}


static uint8_t rsp[8192];
static size_t rsp_len;
static char xfer_err[256];

/* xfer_fd: write the command, read the response (the size field says how
 * much); returns the response code, or -1 with xfer_err set */
static long xfer_fd(int f, const struct cmd *c, uint8_t *out, size_t outmax, size_t *outlen)
{
	return tpm_xfer(f, c->b, c->n, out, outmax, outlen, xfer_err, sizeof(xfer_err));
}

static long xfer(const struct cmd *c)
{
	return xfer_fd(fd, c, rsp, sizeof(rsp), &rsp_len);
}

static long tpm_startup(unsigned su)
{
	struct cmd c;

	start(&c, 0x8001, 0x144);
	put16(&c, su);
	finish(&c);
	return xfer(&c);
}

static long get_random(void)
{
	struct cmd c;

	start(&c, 0x8001, 0x17b);
	put16(&c, 16);
	finish(&c);
	long rc = xfer(&c);
	if (rc == 0 && (rsp_len != 12 + 16 || rsp[10] != 0 || rsp[11] != 16))
		rc = 0x7fffffff;	/* malformed */
	return rc;
}

static long pcr_extend(unsigned pcr, unsigned char fill)
{
	struct cmd c;
	uint8_t d[32];

	memset(d, fill, sizeof(d));
	start(&c, 0x8002, 0x182);
	put32(&c, pcr);
	pw_session(&c);
	put32(&c, 1);
	put16(&c, 0x000b);
	putb(&c, d, sizeof(d));
	finish(&c);
	return xfer(&c);
}

static long pcr_reset(unsigned pcr)
{
	struct cmd c;

	start(&c, 0x8002, 0x13d);
	put32(&c, pcr);
	pw_session(&c);
	finish(&c);
	return xfer(&c);
}

/* pcr_read: sha256 PCR into out[32]; returns the rc */
static long pcr_read(unsigned pcr, uint8_t out[32])
{
	struct cmd c;
	long rc;

	start(&c, 0x8001, 0x17e);
	put32(&c, 1);
	put16(&c, 0x000b);
	put8(&c, 3);
	put8(&c, pcr < 8 ? 1u << pcr : 0);
	put8(&c, pcr >= 8 && pcr < 16 ? 1u << (pcr - 8) : 0);
	put8(&c, pcr >= 16 ? 1u << (pcr - 16) : 0);
	finish(&c);
	rc = xfer(&c);
	if (rc != 0)
		return rc;
	/* header, updateCounter, selection (4+2+1+3), count 4, size 2, digest */
	if (rsp_len < 30 + 32 || be32(rsp + 24) != 1 || rsp[28] != 0 || rsp[29] != 32)
		return 0x7fffffff;
	memcpy(out, rsp + 30, 32);
	return 0;
}

static void hex(char *dst, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sprintf(dst + 2 * i, "%02x", p[i]);
}

static long nv_define(uint32_t index, unsigned size)
{
	struct cmd c;

	start(&c, 0x8002, 0x12a);
	put32(&c, 0x40000001);
	pw_session(&c);
	put16(&c, 0);			/* auth */
	put16(&c, 14);			/* TPM2B_NV_PUBLIC */
	put32(&c, index);
	put16(&c, 0x000b);
	put32(&c, 0x02060006);		/* OWNER/AUTH WRITE/READ, NO_DA (no TPM_RC_RETRY for daUsed) */
	put16(&c, 0);			/* authPolicy */
	put16(&c, size);
	finish(&c);
	return xfer(&c);
}

static long nv_undefine(uint32_t index)
{
	struct cmd c;

	start(&c, 0x8002, 0x122);
	put32(&c, 0x40000001);
	put32(&c, index);
	pw_session(&c);
	finish(&c);
	return xfer(&c);
}

static long nv_write(uint32_t index, const uint8_t *data, unsigned n)
{
	struct cmd c;

	start(&c, 0x8002, 0x137);
	put32(&c, index);
	put32(&c, index);
	pw_session(&c);
	put16(&c, n);
	putb(&c, data, n);
	put16(&c, 0);
	finish(&c);
	return xfer(&c);
}

static long nv_read(uint32_t index, uint8_t *data, unsigned n)
{
	struct cmd c;
	long rc;

	start(&c, 0x8002, 0x14e);
	put32(&c, index);
	put32(&c, index);
	pw_session(&c);
	put16(&c, n);
	put16(&c, 0);
	finish(&c);
	rc = xfer(&c);
	if (rc != 0)
		return rc;
	if (rsp_len < 16 + n || rsp[14] != (n >> 8) || rsp[15] != (n & 0xff))
		return 0x7fffffff;
	memcpy(data, rsp + 16, n);
	return 0;
}

static void create_primary_rsa(struct cmd *c, unsigned bits, uint32_t unique)
{
	start(c, 0x8002, 0x131);
	put32(c, 0x40000001);
	pw_session(c);
	put16(c, 4); put16(c, 0); put16(c, 0);	/* inSensitive */
	put16(c, 34);				/* TPM2B_PUBLIC */
	put16(c, 0x0001);			/* RSA */
	put16(c, 0x000b);
	put32(c, 0x00030072);			/* restricted decrypt storage key */
	put16(c, 0);
	put16(c, 0x0006); put16(c, 128); put16(c, 0x0043);	/* AES-128-CFB */
	put16(c, 0x0010);			/* scheme NULL */
	put16(c, bits);
	put32(c, 0);				/* exponent */
	put16(c, 8);				/* unique: 8 bytes */
	put32(c, 0x5eed0000u); put32(c, unique);
	put16(c, 0);				/* outsideInfo */
	put32(c, 0);				/* creationPCR */
	finish(c);
}

static long flush_context(uint32_t h)
{
	struct cmd c;

	start(&c, 0x8001, 0x165);
	put32(&c, h);
	finish(&c);
	return xfer(&c);
}

/* ------------------------------------------------------------ ioctls */

static long ptm_res_ioctl(unsigned long req, const char *what)
{
	ptm_res r = 0xdeadbeef;

	if (ioctl(fd, req, &r) != 0) {
		info("%s: ioctl failed: %s", what, strerror(errno));
		return -1;
	}
	return r;
}

static long ptm_init(uint32_t flags)
{
	struct ptm_init in;

	memset(&in, 0, sizeof(in));
	in.u.req.init_flags = flags;
	if (ioctl(fd, PTM_INIT, &in) != 0)
		return -1;
	return in.u.resp.tpm_result;
}

/* set_locality: PTM_SET_LOCALITY only when it changes, as the backend did */
static long set_locality(unsigned loc)
{
	struct ptm_loc l;

	if (loc == cur_loc)
		return 0;
	memset(&l, 0, sizeof(l));
	l.u.req.loc = (uint8_t)loc;
	loc_ioctls++;
	if (ioctl(fd, PTM_SET_LOCALITY, &l) != 0)
		return -1;
	if (l.u.resp.tpm_result == 0)
		cur_loc = loc;
	return l.u.resp.tpm_result;
}

/* get_blob: GET_STATEBLOB at offset 0, then the rest by read() (the
 * backend's pattern), or (ioctl_only) ioctls with offset += length.
 * Returns the tpm_result (or -1, errno in xfer_err); *blob is malloc()ed. */
static long get_blob(uint32_t type, int ioctl_only, uint8_t **blob, uint32_t *len)
{
	struct ptm_getstate g;
	uint32_t tot = 0, got = 0;
	uint8_t *b = NULL;

	*blob = NULL;
	*len = 0;
	do {
		memset(&g, 0, sizeof(g));
		g.u.req.state_flags = PTM_STATE_FLAG_DECRYPTED;
		g.u.req.type = type;
		g.u.req.offset = got;
		if (ioctl(fd, PTM_GET_STATEBLOB, &g) != 0) {
			snprintf(xfer_err, sizeof(xfer_err), "GET_STATEBLOB ioctl: %s", strerror(errno));
			free(b);
			return -1;
		}
		if (g.u.resp.tpm_result != 0) {
			free(b);
			*len = g.u.resp.totlength;
			return g.u.resp.tpm_result;
		}
		tot = g.u.resp.totlength;
		if (g.u.resp.length > PTM_STATE_BLOB_SIZE || got + g.u.resp.length > tot ||
		    (got < tot && g.u.resp.length == 0) ||
		    (got == 0 && g.u.resp.length != (tot < PTM_STATE_BLOB_SIZE ? tot : PTM_STATE_BLOB_SIZE))) {
			snprintf(xfer_err, sizeof(xfer_err), "offset %u: length %u totlength %u", got,
				 g.u.resp.length, tot);
			free(b);
			return -1;
		}
		if (b == NULL)
			b = malloc(tot + 1);
		memcpy(b + got, g.u.resp.data, g.u.resp.length);
		got += g.u.resp.length;
	} while (ioctl_only && got < tot);
	/* the backend's pattern: the rest by read(), in pieces of at most 4096 */
	for (; got < tot;) {
		size_t want = tot - got < 4096 ? tot - got : 4096;
		ssize_t r = read(fd, b + got, want);
		if (r <= 0) {
			snprintf(xfer_err, sizeof(xfer_err), "read() of blob bytes %u..%u: %zd (%s)", got, tot,
				 r, r < 0 ? strerror(errno) : "EOF");
			free(b);
			return -1;
		}
		got += (uint32_t)r;
	}
	*blob = b;
	*len = tot;
	return 0;
}

static long set_chunk(uint32_t type, const uint8_t *p, uint32_t n)
{
	struct ptm_setstate s;

	memset(&s, 0, sizeof(s));
	s.u.req.type = type;
	s.u.req.length = n;
	if (n)
		memcpy(s.u.req.data, p, n);
	if (ioctl(fd, PTM_SET_STATEBLOB, &s) != 0) {
		snprintf(xfer_err, sizeof(xfer_err), "SET_STATEBLOB ioctl: %s", strerror(errno));
		return -1;
	}
	return s.u.resp.tpm_result;
}

/* set_blob_chunks: ioctls of PTM_STATE_BLOB_SIZE; the first shorter one is
 * the last, so an exact multiple ends with a 0-length transfer */
static long set_blob_chunks(uint32_t type, const uint8_t *b, uint32_t len, unsigned *nioctl)
{
	uint32_t off = 0;

	*nioctl = 0;
	for (;;) {
		uint32_t n = len - off < PTM_STATE_BLOB_SIZE ? len - off : PTM_STATE_BLOB_SIZE;
		long r = set_chunk(type, b + off, n);
		(*nioctl)++;
		if (r != 0)
			return r;
		off += n;
		if (n < PTM_STATE_BLOB_SIZE)
			return 0;
	}
}

/* set_blob_write: 0-length ioctl, the blob by write(), 0-length ioctl */
static long set_blob_write(uint32_t type, const uint8_t *b, uint32_t len)
{
	long r = set_chunk(type, NULL, 0);
	uint32_t off = 0;

	if (r != 0)
		return r;
	while (off < len) {
		size_t n = len - off < 4096 ? len - off : 4096;
		ssize_t w = write(fd, b + off, n);
		if (w <= 0) {
			snprintf(xfer_err, sizeof(xfer_err), "write() of blob bytes %u..: %zd (%s)", off, w,
				 w < 0 ? strerror(errno) : "0");
			return -1;
		}
		off += (uint32_t)w;
	}
	return set_chunk(type, NULL, 0);
}

/* ------------------------------------------------------------ cancel */

struct keygen {
	struct cmd c;
	uint8_t out[4096];
	size_t outlen;
	long rc;
	double secs;
	volatile int done;
};

static void *keygen_thread(void *arg)
{
	struct keygen *k = arg;
	double t0 = now();

	k->rc = xfer_fd(fd, &k->c, k->out, sizeof(k->out), &k->outlen);
	k->secs = now() - t0;
	k->done = 1;
	return NULL;
}

static void check_cancel(void)
{
	struct keygen k;
	pthread_t th;
	char log[400] = "";
	int attempt, cancelled = 0;

	for (attempt = 1; attempt <= 6 && !cancelled; attempt++) {
		unsigned ncancel = 0, bad = 0;
		double t0;

		memset(&k, 0, sizeof(k));
		create_primary_rsa(&k.c, 2048, (uint32_t)attempt * 7919u + (uint32_t)getpid());
		if (pthread_create(&th, NULL, keygen_thread, &k) != 0) {
			result(0, "cancel-keygen", "pthread_create failed");
			return;
		}
		/* QEMU cancelled from its main thread while the backend thread
		 * waited for the response: cancel every 20 ms until it comes */
		usleep(attempt == 1 ? 30000 : 5000 * (useconds_t)attempt);
		t0 = now();
		while (!k.done && now() - t0 < 120) {
			long r = ptm_res_ioctl(PTM_CANCEL_TPM_CMD, "CANCEL_TPM_CMD");
			ncancel++;
			if (r != 0)
				bad++;
			usleep(20000);
		}
		pthread_join(th, NULL);
		snprintf(log + strlen(log), sizeof(log) - strlen(log), "%s#%d rc=%s%lx %.2fs %u cancels%s",
			 attempt > 1 ? "; " : "", attempt, k.rc < 0 ? "-" : "0x", k.rc < 0 ? 1L : k.rc,
			 k.secs, ncancel, bad ? " (some answered != 0)" : "");
		if (k.rc < 0) {
			result(0, "cancel-keygen", "the keygen's write/read failed: %s", xfer_err);
			return;
		}
		if (bad) {
			result(0, "cancel-keygen", "PTM_CANCEL_TPM_CMD answered non-zero: %s", log);
			return;
		}
		if ((uint32_t)k.rc == RC_CANCELED)
			cancelled = 1;
		else if (k.rc == 0 && k.outlen >= 14)
			flush_context(be32(k.out + 10));
		else {
			result(0, "cancel-keygen", "CreatePrimary answered neither 0 nor 0x909: %s", log);
			return;
		}
	}
	result(cancelled, "cancel-keygen", "%s: %s", cancelled ?
	       "TPM_RC_CANCELED" : "no attempt was cancelled", log);
	/* the cancel must not stick: the next command runs */
	long rc = get_random();
	result(rc == 0, "after-cancel", "GetRandom after the cancel: rc 0x%lx", rc);
}

/* ------------------------------------------------------------ main */

static int blob_eq(const uint8_t *a, uint32_t al, const uint8_t *b, uint32_t bl)
{
	return al == bl && (al == 0 || memcmp(a, b, al) == 0);
}

int main(int argc, char **argv)
{
	ptm_cap caps = 0;
	long rc;
	uint8_t pcr[32], zero[32] = { 0 };
	char h1[65];
	const ptm_cap need = PTM_CAP_INIT | PTM_CAP_SHUTDOWN | PTM_CAP_GET_TPMESTABLISHED |
		PTM_CAP_SET_LOCALITY | PTM_CAP_CANCEL_TPM_CMD | PTM_CAP_RESET_TPMESTABLISHED |
		PTM_CAP_GET_STATEBLOB | PTM_CAP_SET_STATEBLOB | PTM_CAP_STOP;

	if (argc != 2) {
		fprintf(stderr, "usage: cuse-seed DEVICE\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	fd = open(argv[1], O_RDWR);
	if (fd < 0) {
		result(0, "open", "%s: %s", argv[1], strerror(errno));
		return 1;
	}

	/* 1. the capability probe */
	if (ioctl(fd, PTM_GET_CAPABILITY, &caps) != 0)
		result(0, "capabilities", "PTM_GET_CAPABILITY: %s", strerror(errno));
	else
		result((caps & need) == need && !(caps & PTM_CAP_SET_DATAFD), "capabilities",
		       "0x%llx (needs 0x%llx, no SET_DATAFD)", (unsigned long long)caps,
		       (unsigned long long)need);

	/* 2. INIT, then commands by write()/read() */
	rc = ptm_init(0);
	result(rc == 0, "init", "PTM_INIT(0): %ld", rc);
	rc = tpm_startup(0);
	result(rc == 0, "startup", "TPM2_Startup(CLEAR): rc 0x%lx%s%s", rc, rc < 0 ? " " : "",
	       rc < 0 ? xfer_err : "");
	rc = get_random();
	result(rc == 0, "getrandom", "TPM2_GetRandom(16): rc 0x%lx", rc);
	{
		struct ptm_est e;
		memset(&e, 0xff, sizeof(e));
		int r = ioctl(fd, PTM_GET_TPMESTABLISHED, &e);
		result(r == 0 && e.u.resp.tpm_result == 0 && e.u.resp.bit <= 1, "get-established",
		       "ioctl %d, result %u, bit %u", r, e.u.resp.tpm_result, e.u.resp.bit);
	}

	/* 3. locality: PCR 21 is extendable only at 2, resettable at 2 and 4 */
	rc = pcr_extend(21, 0x21);
	result((uint32_t)rc == RC_LOCALITY, "loc0-extend21-denied",
	       "PCR_Extend(21) at locality 0: rc 0x%lx (want 0x907)", rc);
	rc = set_locality(2);
	result(rc == 0, "set-locality-2", "PTM_SET_LOCALITY(2): %ld", rc);
	rc = pcr_extend(21, 0x21);
	result(rc == 0, "loc2-extend21", "PCR_Extend(21) at locality 2: rc 0x%lx", rc);
	rc = pcr_read(21, pcr);
	hex(h1, pcr, 32);
	result(rc == 0 && memcmp(pcr, zero, 32) != 0, "loc2-pcr21-extended", "rc 0x%lx, PCR21 %s", rc, h1);
	rc = pcr_reset(21);
	result(rc == 0, "loc2-reset21", "PCR_Reset(21) at locality 2: rc 0x%lx", rc);
	rc = pcr_read(21, pcr);
	hex(h1, pcr, 32);
	result(rc == 0 && memcmp(pcr, zero, 32) == 0, "loc2-pcr21-zero", "rc 0x%lx, PCR21 %s", rc, h1);
	pcr_extend(21, 0x22);	/* something to reset again */
	rc = set_locality(0);
	result(rc == 0, "set-locality-0", "PTM_SET_LOCALITY(0): %ld", rc);
	rc = pcr_reset(21);
	result((uint32_t)rc == RC_LOCALITY, "loc0-reset21-denied",
	       "PCR_Reset(21) at locality 0: rc 0x%lx (want 0x907)", rc);
	{
		struct ptm_reset_est re;
		memset(&re, 0, sizeof(re));
		re.u.req.loc = 3;
		int r = ioctl(fd, PTM_RESET_TPMESTABLISHED, &re);
		result(r == 0 && re.u.resp.tpm_result == 0, "reset-established",
		       "PTM_RESET_TPMESTABLISHED(loc 3): ioctl %d, result %u", r, re.u.resp.tpm_result);
	}
	rc = pcr_extend(21, 0x23);
	result((uint32_t)rc == RC_LOCALITY, "loc0-after-reset-established",
	       "PCR_Extend(21) after RESET_TPMESTABLISHED(3): rc 0x%lx (locality 0 must be back)", rc);
	info("PTM_SET_LOCALITY ioctls sent: %u (only on a change)", loc_ioctls);

	/* 4. cancel during an RSA key generation */
	check_cancel();

	/* 5. state transfer */
	{
		uint8_t pcr_a[32], nvdata[64], nvback[64], *perm = NULL, *perm2 = NULL, *vol = NULL, *sav = NULL;
		uint32_t perm_len = 0, perm2_len = 0, vol_len = 0, sav_len = 0;
		char h2[65];
		long E = 0;
		unsigned nioctl = 0, tries, target = 0;
		long r;

		for (unsigned i = 0; i < sizeof(nvdata); i++)
			nvdata[i] = (uint8_t)(0xa5 ^ i);
		/* Three NV indices shape the permanent blob to an exact multiple
		 * of the chunk, at least two chunks (so that read() carries a part):
		 * index 1 (64 + e1 bytes, the first 64 hold the data), indices 2
		 * and 3 (1 + e2, 1 + e3 bytes).  The blob grows with the index sizes
		 * (about one byte per byte); E = e1 + e2 + e3 is corrected until the
		 * blob has the target size. */
		for (tries = 0; tries < 6; tries++) {
			unsigned e1 = E > NV_MAX - 64 ? NV_MAX - 64 : (unsigned)E;
			unsigned e2 = E - e1 > NV_MAX - 1 ? NV_MAX - 1 : (unsigned)E - e1;
			unsigned e3 = (unsigned)E - e1 - e2;
			if (tries) {
				nv_undefine(NV_INDEX1);
				nv_undefine(NV_INDEX2);
				nv_undefine(NV_INDEX3);
			}
			r = nv_define(NV_INDEX1, 64 + e1);
			if (r == 0)
				r = nv_write(NV_INDEX1, nvdata, 64);
			if (r == 0)
				r = nv_define(NV_INDEX2, 1 + e2);
			if (r == 0)
				r = nv_define(NV_INDEX3, 1 + e3);
			if (tries == 0)
				result(r == 0, "nv-define-write", "NV index 0x%x, 64 bytes written: rc 0x%lx",
				       NV_INDEX1, r);
			if (r != 0)
				info("shaping: NV define/write with sizes %u, %u, %u: rc 0x%lx", 64 + e1, 1 + e2,
				     1 + e3, r);
			free(perm);
			r = get_blob(PTM_BLOB_TYPE_PERMANENT, 0, &perm, &perm_len);
			if (r != 0)
				break;
			info("shaping: NV sizes %u + %u + %u -> permanent blob %u bytes", 64 + e1, 1 + e2, 1 + e3,
			     perm_len);
			if (target == 0)
				target = (perm_len + PTM_STATE_BLOB_SIZE - 1) / PTM_STATE_BLOB_SIZE < 2 ?
					2 * PTM_STATE_BLOB_SIZE :
					(perm_len + PTM_STATE_BLOB_SIZE - 1) / PTM_STATE_BLOB_SIZE * PTM_STATE_BLOB_SIZE;
			if (perm_len == target)
				break;
			E += (long)target - (long)perm_len;
			if (E < 0)
				E = 0;
			if (E > (long)(3 * NV_MAX - 66))
				E = 3 * NV_MAX - 66;
		}
		if (r != 0)
			result(0, "get-permanent", "GET_STATEBLOB(permanent): result 0x%lx %s", r,
			       r < 0 ? xfer_err : "");
		else
			result(perm_len > 0, "get-permanent", "%u bytes by ioctl + read()", perm_len);
		result(r == 0 && perm_len && perm_len % PTM_STATE_BLOB_SIZE == 0, "blob-exact-multiple",
		       "permanent blob %u bytes = %u x %u", perm_len, perm_len / PTM_STATE_BLOB_SIZE,
		       PTM_STATE_BLOB_SIZE);
		r = get_blob(PTM_BLOB_TYPE_PERMANENT, 1, &perm2, &perm2_len);
		result(r == 0 && blob_eq(perm, perm_len, perm2, perm2_len), "get-permanent-ioctl-only",
		       "result 0x%lx, %u bytes by ioctls of offset += length, %s", r, perm2_len,
		       r == 0 && blob_eq(perm, perm_len, perm2, perm2_len) ? "the same bytes" :
		       r < 0 ? xfer_err : "different bytes");
		/* PCR 10 (locality 0) marks the volatile state */
		pcr_extend(10, 0x10);
		pcr_read(10, pcr_a);
		r = get_blob(PTM_BLOB_TYPE_VOLATILE, 0, &vol, &vol_len);
		result(r == 0 && vol_len > 0, "get-volatile", "result 0x%lx, %u bytes %s", r, vol_len,
		       r < 0 ? xfer_err : "");
		r = get_blob(PTM_BLOB_TYPE_SAVESTATE, 0, &sav, &sav_len);
		result((r == 0 || r == PTM_RES_RETRY) && sav_len == 0, "get-savestate",
		       "result 0x%lx, %u bytes (libtpms TPM 2 keeps no savestate: empty, 0 or TPM_RETRY)",
		       r, sav_len);
		rc = get_random();
		result(rc == 0, "cmd-after-get", "GetRandom after the blob reads: rc 0x%lx %s", rc,
		       rc < 0 ? xfer_err : "");

		/* change the TPM: PCR 10 again, the NV indices gone */
		pcr_extend(10, 0x11);
		pcr_read(10, pcr);
		nv_undefine(NV_INDEX1);
		nv_undefine(NV_INDEX2);
		nv_undefine(NV_INDEX3);
		r = nv_read(NV_INDEX1, nvback, 64);
		result(r != 0 && memcmp(pcr, pcr_a, 32) != 0, "state-changed",
		       "before the restore: NV_Read rc 0x%lx, PCR10 differs", r);

		rc = ptm_res_ioctl(PTM_STOP, "STOP");
		result(rc == 0, "stop", "PTM_STOP: %ld", rc);
		r = set_blob_chunks(PTM_BLOB_TYPE_PERMANENT, perm, perm_len, &nioctl);
		result(r == 0, "set-permanent-chunks", "result 0x%lx in %u ioctls (%u bytes%s) %s", r, nioctl,
		       perm_len, perm_len % PTM_STATE_BLOB_SIZE ? "" : ", last one 0-length",
		       r < 0 ? xfer_err : "");
		r = set_blob_write(PTM_BLOB_TYPE_VOLATILE, vol, vol_len);
		result(r == 0, "set-volatile-write", "result 0x%lx: ioctl(0), write() %u bytes, ioctl(0) %s", r,
		       vol_len, r < 0 ? xfer_err : "");
		/* an empty blob as the backend sent it: ioctl(0), no write(), ioctl(0)
		 * (a lone 0-length first packet only opens write() mode) */
		r = set_blob_write(PTM_BLOB_TYPE_SAVESTATE, NULL, 0);
		result(r == 0, "set-savestate-empty", "result 0x%lx: ioctl(0), ioctl(0) %s", r,
		       r < 0 ? xfer_err : "");
		rc = ptm_init(PTM_INIT_FLAG_DELETE_VOLATILE);
		result(rc == 0, "init-after-set", "PTM_INIT(DELETE_VOLATILE): %ld", rc);
		rc = pcr_read(10, pcr);
		hex(h1, pcr, 32);
		hex(h2, pcr_a, 32);
		result(rc == 0 && memcmp(pcr, pcr_a, 32) == 0, "restored-volatile-pcr10",
		       "PCR_Read: rc 0x%lx%s%s, PCR10 %s, saved %s", rc, rc < 0 ? " " : "",
		       rc < 0 ? xfer_err : "", h1, h2);
		memset(nvback, 0, sizeof(nvback));
		r = nv_read(NV_INDEX1, nvback, 64);
		result(r == 0 && memcmp(nvback, nvdata, 64) == 0, "restored-permanent-nv",
		       "NV_Read(0x%x): rc 0x%lx, %s", NV_INDEX1, r,
		       r == 0 && memcmp(nvback, nvdata, 64) == 0 ? "the data written before" : "data differs");
		free(perm);
		free(perm2);
		free(vol);
		free(sav);
	}

	/* 6. SHUTDOWN at close */
	rc = ptm_res_ioctl(PTM_SHUTDOWN, "SHUTDOWN");
	result(rc == 0, "shutdown", "PTM_SHUTDOWN: %ld", rc);
	close(fd);
	return failures ? 1 : 0;
}
