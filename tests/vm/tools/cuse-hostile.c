/*
 * cuse-hostile: hostile ioctls and I/O on a CUSE vTPM (/dev/NAME).
 *
 *     cuse-hostile DEVICE DAEMON_PID
 *
 * INIT, TPM2_Startup and an NV index written first; then each check does
 * something a broken or malicious client might, expects an error result
 * (never a hang, never a success for nonsense), and passes only if the
 * device still answers afterwards (TPM2_GetRandom on a fresh open file):
 *
 *   wrong-size-ioctls   every PTM ioctl number with other _IOC sizes (0, one
 *                       byte less, 8 bytes more): all refused, none acted on
 *                       (a wrong-size SHUTDOWN or STOP must not stop anything);
 *   unknown-ioctls      unknown numbers of magic 'P', another magic, TCGETS;
 *   absurd-args         GET_STATEBLOB with huge offsets and bad types,
 *                       GET_INFO past the end, SET_LOCALITY 5 and 255,
 *                       RESET_TPMESTABLISHED at locality 7 (swtpm never
 *                       answered that one), HASH_DATA longer than 4096,
 *                       SET_STATEBLOB while running and with length 3073;
 *   garbage-blobs       SET_STATEBLOB of random bytes (one packet; and in
 *                       3072-byte chunks ending with a 0-length one) into a
 *                       stopped TPM: refused, and INIT brings back the old state;
 *   read-no-command     read() on a fresh open file: 0 bytes or an error, at once;
 *   write-0             write() of 0 bytes;
 *   write-8k, write-1m  a command of 8 KiB and of 1 MiB: an error (or a TPM
 *                       error response), never a success;
 *   second-write-ebusy  a second write() before the response was read: EBUSY,
 *                       and the first response is still there, whole;
 *   killed-opener       an opener SIGKILLed in the middle of an RSA-2048 key
 *                       generation: the others keep working and never see
 *                       its response;
 *   fd-rss-200          200 open/command/close cycles: the daemon's fd count
 *                       (/proc/PID/fd) stays the same, its RSS grows < 512 KiB;
 *   nv-intact           the NV index written at the start still reads back.
 *
 * Prints "INFO start CHECK" before each check (so a hang can be named) and
 * one "PASS|FAIL CHECK - text" line after it.  Exit status 0 iff no FAIL.
 * Guest-side test tool, built by tests/vm/lib/host.sh (VM_TOOLS).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../../kmod-headers/ptm.h"
#include "tpm-xfer.h"

#define NV_INDEX	0x01500031u

static const char *dev;
static pid_t daemon_pid;
static int failures;

static void result(int ok, const char *name, const char *fmt, ...)
{
	char text[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	printf("%s %s - %s\n", ok ? "PASS" : "FAIL", name, text);
	fflush(stdout);
	if (!ok)
		failures++;
}

static void begin(const char *name)
{
	printf("INFO start %s\n", name);
	fflush(stdout);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}


static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static const uint8_t get_random_cmd[] = {
	0x80, 0x01, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x01, 0x7b, 0x00, 0x10
};

static char why[120];

/* xfer: one command and its whole response on f; returns the rc or -1 (why) */
static long xfer(int f, const uint8_t *cmd, size_t n, uint8_t *out, size_t outmax, size_t *outlen)
{
	return tpm_xfer(f, cmd, n, out, outmax, outlen, why, sizeof(why));
}

/* alive: GetRandom(16) on a fresh open file answers rc 0 with 16 bytes */
static int alive(char *msg, size_t msgmax)
{
	uint8_t out[256];
	size_t n = 0;
	long rc;
	int f = open(dev, O_RDWR);

	if (f < 0) {
		snprintf(msg, msgmax, "open %s: %s", dev, strerror(errno));
		return 0;
	}
	rc = xfer(f, get_random_cmd, sizeof(get_random_cmd), out, sizeof(out), &n);
	close(f);
	if (rc == 0 && n == 28 && out[10] == 0 && out[11] == 16) {
		snprintf(msg, msgmax, "the device answers");
		return 1;
	}
	snprintf(msg, msgmax, "GetRandom afterwards: rc 0x%lx, %zu bytes %s", rc, n, rc < 0 ? why : "");
	return 0;
}

static void pw_session(uint8_t *p)
{
	static const uint8_t s[] = { 0, 0, 0, 9, 0x40, 0, 0, 9, 0, 0, 0, 0, 0 };
	memcpy(p, s, sizeof(s));
}

static uint8_t nvdata[32];

static long nv_setup(int f)
{
	uint8_t c[128], out[256];
	size_t n, o;
	long rc;

	/* NV_DefineSpace(owner, index, 32 bytes, OWNER/AUTH R/W, NO_DA) */
	n = 0;
	memcpy(c, "\x80\x02\0\0\0\0\0\0\x01\x2a\x40\0\0\x01", 14);
	n = 14;
	pw_session(c + n); n += 13;
	memcpy(c + n, "\0\0\0\x0e", 4); n += 4;
	put32(c + n, NV_INDEX); n += 4;
	memcpy(c + n, "\0\x0b\x02\x06\0\x06\0\0\0\x20", 10); n += 10;
	put32(c + 2, (uint32_t)n);
	rc = xfer(f, c, n, out, sizeof(out), &o);
	if (rc != 0)
		return rc;
	/* NV_Write(index, index, data, offset 0) */
	memcpy(c, "\x80\x02\0\0\0\0\0\0\x01\x37", 10);
	n = 10;
	put32(c + n, NV_INDEX); n += 4;
	put32(c + n, NV_INDEX); n += 4;
	pw_session(c + n); n += 13;
	c[n++] = 0; c[n++] = 32;
	memcpy(c + n, nvdata, 32); n += 32;
	c[n++] = 0; c[n++] = 0;
	put32(c + 2, (uint32_t)n);
	return xfer(f, c, n, out, sizeof(out), &o);
}

/* nv_check: the index reads back the data of nv_setup */
static int nv_check(char *msg, size_t msgmax)
{
	uint8_t c[64], out[256];
	size_t n = 0, o = 0;
	long rc;
	int f = open(dev, O_RDWR), ok;

	if (f < 0) {
		snprintf(msg, msgmax, "open: %s", strerror(errno));
		return 0;
	}
	memcpy(c, "\x80\x02\0\0\0\0\0\0\x01\x4e", 10);
	n = 10;
	put32(c + n, NV_INDEX); n += 4;
	put32(c + n, NV_INDEX); n += 4;
	pw_session(c + n); n += 13;
	c[n++] = 0; c[n++] = 32;
	c[n++] = 0; c[n++] = 0;
	put32(c + 2, (uint32_t)n);
	rc = xfer(f, c, n, out, sizeof(out), &o);
	close(f);
	ok = rc == 0 && o >= 16 + 32 && out[15] == 32 && memcmp(out + 16, nvdata, 32) == 0;
	snprintf(msg, msgmax, "NV_Read(0x%x): rc 0x%lx%s%s, %s", NV_INDEX, rc, rc < 0 ? " " : "",
		 rc < 0 ? why : "", ok ? "the data written at the start" : "not the data written at the start");
	return ok;
}

static long ptm_res_ioctl(int f, unsigned long req)
{
	ptm_res r = 0xdeadbeef;

	if (ioctl(f, req, &r) != 0)
		return -1;
	return r;
}

static long init_tpm(int f, int startup)
{
	struct ptm_init in;
	uint8_t out[64];
	size_t o;
	static const uint8_t su[] = { 0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x44, 0, 0 };

	memset(&in, 0, sizeof(in));
	if (ioctl(f, PTM_INIT, &in) != 0)
		return -1;
	if (in.u.resp.tpm_result != 0)
		return in.u.resp.tpm_result;
	if (!startup)
		return 0;
	long rc = xfer(f, su, sizeof(su), out, sizeof(out), &o);
	return rc == 0x100 ? 0 : rc;	/* TPM_RC_INITIALIZE: resumed, already started */
}

/* ------------------------------------------------------------ checks */

static unsigned char big[16384];

static void check_wrong_sizes(int f)
{
	static const struct { unsigned nr, dir, size; } ptm[] = {
		{ 0, _IOC_READ, 8 }, { 1, _IOC_READ | _IOC_WRITE, 4 }, { 2, _IOC_READ, 4 },
		{ 3, _IOC_READ, 8 }, { 4, _IOC_READ | _IOC_WRITE, 4 }, { 5, _IOC_READ, 4 },
		{ 6, _IOC_READ | _IOC_WRITE, 4100 }, { 7, _IOC_READ, 4 }, { 8, _IOC_READ, 4 },
		{ 9, _IOC_READ, 4 }, { 10, _IOC_READ | _IOC_WRITE, 4 },
		{ 11, _IOC_READ | _IOC_WRITE, 3088 }, { 12, _IOC_READ | _IOC_WRITE, 3084 },
		{ 13, _IOC_READ, 4 }, { 14, _IOC_READ, 8 }, { 15, _IOC_READ, 4 },
		{ 16, _IOC_READ | _IOC_WRITE, 16 }, { 17, _IOC_READ | _IOC_WRITE, 3088 },
		{ 18, _IOC_READ | _IOC_WRITE, 4 },
	};
	char msg[200], acted[300] = "";
	unsigned n = 0, accepted = 0;

	begin("wrong-size-ioctls");
	for (size_t i = 0; i < sizeof(ptm) / sizeof(ptm[0]); i++) {
		unsigned sizes[3] = { ptm[i].size - 1, ptm[i].size + 8, 0 };
		for (int k = 0; k < 3; k++) {
			unsigned dir = sizes[k] ? ptm[i].dir : _IOC_NONE;
			unsigned long req = _IOC(dir, 'P', ptm[i].nr, sizes[k]);
			memset(big, 0, sizeof(big));
			n++;
			if (ioctl(f, req, big) == 0) {
				accepted++;
				snprintf(acted + strlen(acted), sizeof(acted) - strlen(acted), " 0x%lx", req);
			}
		}
	}
	int ok = alive(msg, sizeof(msg));
	result(ok && accepted == 0, "wrong-size-ioctls", "%u requests (nr 0-18, sizes -1/+8/_IO), %u accepted%s; %s",
	       n, accepted, acted, msg);
}

static void check_unknown(int f)
{
	unsigned long reqs[] = {
		_IOWR('P', 19, uint32_t), _IOWR('P', 20, uint64_t), _IOR('P', 63, uint32_t), _IO('P', 200),
		_IOR('Q', 0, uint64_t), _IOWR('T', 1, uint32_t), 0x5401 /* TCGETS */, 0xffffffffu,
	};
	char msg[200], errs[300] = "";
	unsigned accepted = 0;

	begin("unknown-ioctls");
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		memset(big, 0, sizeof(big));
		int r = ioctl(f, reqs[i], big);
		if (r == 0)
			accepted++;
		snprintf(errs + strlen(errs), sizeof(errs) - strlen(errs), " 0x%lx:%s", reqs[i],
			 r == 0 ? "0" : errno == ENOTTY ? "ENOTTY" : errno == EINVAL ? "EINVAL" : strerror(errno));
	}
	int ok = alive(msg, sizeof(msg));
	result(ok && accepted == 0, "unknown-ioctls", "%u accepted;%s; %s", accepted, errs, msg);
}

static void check_absurd(int f)
{
	char msg[200], bad[600] = "";
	struct ptm_getstate g;
	struct ptm_getinfo gi;
	struct ptm_loc l;
	struct ptm_reset_est re;
	struct ptm_hdata h;
	struct ptm_setstate s;
	static const struct { uint32_t type, offset; } gets[] = {
		{ PTM_BLOB_TYPE_PERMANENT, 0xffffffffu }, { PTM_BLOB_TYPE_PERMANENT, 0x7ffffff0u },
		{ PTM_BLOB_TYPE_VOLATILE, 0xfffff000u }, { 0, 0 }, { 99, 0 }, { 0xffffffffu, 0 },
	};

#define BAD(...) snprintf(bad + strlen(bad), sizeof(bad) - strlen(bad), __VA_ARGS__)
	begin("absurd-args");
	for (size_t i = 0; i < sizeof(gets) / sizeof(gets[0]); i++) {
		memset(&g, 0, sizeof(g));
		g.u.req.type = gets[i].type;
		g.u.req.offset = gets[i].offset;
		int r = ioctl(f, PTM_GET_STATEBLOB, &g);
		/* an error, or nothing (offset past the end) */
		if (r == 0 && g.u.resp.tpm_result == 0 && g.u.resp.length != 0)
			BAD(" GET(type %u, offset 0x%x) gave %u bytes;", gets[i].type, gets[i].offset,
			    g.u.resp.length);
		if (r == 0 && g.u.resp.length > PTM_STATE_BLOB_SIZE)
			BAD(" GET(type %u) length %u > 3072;", gets[i].type, g.u.resp.length);
	}
	memset(&gi, 0, sizeof(gi));
	gi.u.req.flags = SWTPM_INFO_TPMSPECIFICATION;
	gi.u.req.offset = 0xfffffff0u;
	if (ioctl(f, PTM_GET_INFO, &gi) == 0 && gi.u.resp.tpm_result == 0 && gi.u.resp.length != 0)
		BAD(" GET_INFO(offset 0xfffffff0) gave %u bytes;", gi.u.resp.length);
	for (unsigned loc = 5; loc < 300; loc += 250) {
		memset(&l, 0, sizeof(l));
		l.u.req.loc = (uint8_t)loc;
		if (ioctl(f, PTM_SET_LOCALITY, &l) == 0 && l.u.resp.tpm_result == 0)
			BAD(" SET_LOCALITY(%u) accepted;", loc);
	}
	memset(&re, 0, sizeof(re));
	re.u.req.loc = 7;
	if (ioctl(f, PTM_RESET_TPMESTABLISHED, &re) == 0 && re.u.resp.tpm_result == 0)
		BAD(" RESET_TPMESTABLISHED(7) accepted;");
	memset(&h, 0, sizeof(h));
	h.u.req.length = 5000;
	if (ioctl(f, PTM_HASH_DATA, &h) == 0 && h.u.resp.tpm_result == 0)
		BAD(" HASH_DATA(length 5000) accepted;");
	memset(&s, 0, sizeof(s));
	s.u.req.type = PTM_BLOB_TYPE_VOLATILE;
	s.u.req.length = 16;
	if (ioctl(f, PTM_SET_STATEBLOB, &s) == 0 && s.u.resp.tpm_result == 0)
		BAD(" SET_STATEBLOB while running accepted;");
	int ok = alive(msg, sizeof(msg));
	result(ok && !bad[0], "absurd-args", "%s%s", bad[0] ? bad : "all refused (or empty); ", msg);
}

/* garbage: STOP, SET packets of random bytes, then INIT: the old state */
static void check_garbage(int f)
{
	char msg[200], msg2[300], bad[400] = "";
	struct ptm_setstate s;
	unsigned char rnd[5000];
	long r;

	begin("garbage-blobs");
	for (size_t i = 0; i < sizeof(rnd); i++)
		rnd[i] = (unsigned char)(rand() >> 7);
	r = ptm_res_ioctl(f, PTM_STOP);
	if (r != 0)
		BAD(" STOP: %ld;", r);
	for (uint32_t type = PTM_BLOB_TYPE_PERMANENT; type <= PTM_BLOB_TYPE_VOLATILE; type++) {
		/* one packet of 100 random bytes: the last one */
		memset(&s, 0, sizeof(s));
		s.u.req.type = type;
		s.u.req.length = 100;
		memcpy(s.u.req.data, rnd, 100);
		if (ioctl(f, PTM_SET_STATEBLOB, &s) == 0 && s.u.resp.tpm_result == 0)
			BAD(" SET(type %u, 100 random bytes) accepted;", type);
		/* 3072 + 0: a chunked transfer of random bytes */
		memset(&s, 0, sizeof(s));
		s.u.req.type = type;
		s.u.req.length = PTM_STATE_BLOB_SIZE;
		memcpy(s.u.req.data, rnd + 100, PTM_STATE_BLOB_SIZE);
		int r1 = ioctl(f, PTM_SET_STATEBLOB, &s);
		uint32_t res1 = s.u.resp.tpm_result;
		memset(&s, 0, sizeof(s));
		s.u.req.type = type;
		s.u.req.length = 0;
		int r2 = ioctl(f, PTM_SET_STATEBLOB, &s);
		if (r1 == 0 && res1 == 0 && r2 == 0 && s.u.resp.tpm_result == 0)
			BAD(" SET(type %u, 3072 random bytes + 0) accepted;", type);
		/* length 3073 */
		memset(&s, 0, sizeof(s));
		s.u.req.type = type;
		s.u.req.length = PTM_STATE_BLOB_SIZE + 1;
		if (ioctl(f, PTM_SET_STATEBLOB, &s) == 0 && s.u.resp.tpm_result == 0)
			BAD(" SET(type %u, length 3073) accepted;", type);
	}
	r = init_tpm(f, 1);
	if (r != 0)
		BAD(" INIT + Startup afterwards: 0x%lx;", r);
	int ok = alive(msg, sizeof(msg));
	int nv = nv_check(msg2, sizeof(msg2));
	result(ok && nv && !bad[0], "garbage-blobs", "%s%s; %s", bad[0] ? bad : "all refused; ", msg, msg2);
}

static void check_read_no_command(void)
{
	char msg[200];
	uint8_t buf[4096];
	int f = open(dev, O_RDWR);
	double t0 = now();
	ssize_t r;
	int e;

	begin("read-no-command");
	if (f < 0) {
		result(0, "read-no-command", "open: %s", strerror(errno));
		return;
	}
	r = read(f, buf, sizeof(buf));
	e = errno;
	close(f);
	int ok = alive(msg, sizeof(msg));
	result(ok && r <= 0, "read-no-command", "read() = %zd%s%s after %.2f s; %s", r, r < 0 ? " " : "",
	       r < 0 ? strerror(e) : "", now() - t0, msg);
}

static void check_write_0(void)
{
	char msg[200];
	uint8_t out[256];
	size_t o = 0;
	int f = open(dev, O_RDWR);
	ssize_t r;
	int e;
	long rc;

	begin("write-0");
	if (f < 0) {
		result(0, "write-0", "open: %s", strerror(errno));
		return;
	}
	r = write(f, get_random_cmd, 0);
	e = errno;
	/* the same open file still takes a command */
	rc = xfer(f, get_random_cmd, sizeof(get_random_cmd), out, sizeof(out), &o);
	close(f);
	int ok = alive(msg, sizeof(msg));
	result(ok && r <= 0 && rc == 0, "write-0", "write(0 bytes) = %zd%s%s; then GetRandom on it: rc 0x%lx %s; %s",
	       r, r < 0 ? " " : "", r < 0 ? strerror(e) : "", rc, rc < 0 ? why : "", msg);
}

static void check_write_big(size_t size, const char *name)
{
	char msg[200], got[200];
	uint8_t *b = calloc(1, size);
	int f = open(dev, O_RDWR);
	ssize_t r;
	int e, bad = 0;

	begin(name);
	if (f < 0 || !b) {
		result(0, name, "open: %s", strerror(errno));
		free(b);
		if (f >= 0)
			close(f);
		return;
	}
	/* a GetRandom whose size field says the whole buffer */
	memcpy(b, get_random_cmd, sizeof(get_random_cmd));
	put32(b + 2, (uint32_t)size);
	r = write(f, b, size);
	e = errno;
	if (r < 0) {
		snprintf(got, sizeof(got), "write() = -1 %s", strerror(e));
	} else {
		/* accepted (or cut): then only a TPM error response may follow */
		uint8_t out[8192];
		ssize_t rr = read(f, out, sizeof(out));
		if (rr >= 10 && be32(out + 6) != 0)
			snprintf(got, sizeof(got), "write() = %zd, response rc 0x%x", r, be32(out + 6));
		else if (rr >= 0 && rr < 10 && (size_t)r < size)
			snprintf(got, sizeof(got), "write() = %zd (short), read() = %zd", r, rr);
		else {
			bad = 1;
			snprintf(got, sizeof(got), "write() = %zd, read() = %zd%s%s rc 0x%x", r, rr,
				 rr < 0 ? " " : "", rr < 0 ? strerror(errno) : "", rr >= 10 ? be32(out + 6) : 0);
		}
	}
	close(f);
	free(b);
	int ok = alive(msg, sizeof(msg));
	result(ok && !bad, name, "%s; %s", got, msg);
}

static void check_second_write(void)
{
	char msg[200];
	uint8_t out[256];
	int f = open(dev, O_RDWR);
	ssize_t r1, r2, rr;
	int e2 = 0, e = 0;

	begin("second-write-ebusy");
	if (f < 0) {
		result(0, "second-write-ebusy", "open: %s", strerror(errno));
		return;
	}
	r1 = write(f, get_random_cmd, sizeof(get_random_cmd));
	r2 = write(f, get_random_cmd, sizeof(get_random_cmd));
	e2 = errno;
	rr = read(f, out, sizeof(out));
	e = errno;
	close(f);
	int ok = alive(msg, sizeof(msg));
	int first = rr == 28 && be32(out + 2) == 28 && be32(out + 6) == 0;
	result(ok && r1 == (ssize_t)sizeof(get_random_cmd) && r2 < 0 && e2 == EBUSY && first, "second-write-ebusy",
	       "write 1 = %zd, write 2 = %zd%s%s, read = %zd%s%s (%s); %s", r1, r2, r2 < 0 ? " " : "",
	       r2 < 0 ? strerror(e2) : "", rr, rr < 0 ? " " : "", rr < 0 ? strerror(e) : "",
	       first ? "the first response, whole" : "not the first response", msg);
}

static const uint8_t create_primary_rsa[] = {
	0x80, 0x02, 0x00, 0x00, 0x00, 0x4b, 0x00, 0x00, 0x01, 0x31,
	0x40, 0x00, 0x00, 0x01,
	0x00, 0x00, 0x00, 0x09, 0x40, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x04, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x22, 0x00, 0x01, 0x00, 0x0b, 0x00, 0x03, 0x00, 0x72, 0x00, 0x00,
	0x00, 0x06, 0x00, 0x80, 0x00, 0x43, 0x00, 0x10, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x08, 0x6b, 0x69, 0x6c, 0x6c, 0x65, 0x64, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00
};
_Static_assert(sizeof(create_primary_rsa) == 0x4b, "the size field");

static void check_killed_opener(void)
{
	char msg[200], bad[300] = "";
	uint8_t out[256];
	size_t o;

	begin("killed-opener");
	for (int round = 0; round < 3; round++) {
		int p[2];
		char c;
		if (pipe(p) != 0)
			break;
		pid_t pid = fork();
		if (pid == 0) {
			int f = open(dev, O_RDWR);
			if (f < 0)
				_exit(1);
			if (write(f, create_primary_rsa, sizeof(create_primary_rsa)) < 0)
				_exit(2);
			if (write(p[1], "w", 1) < 0)
				_exit(3);
			(void)read(f, out, sizeof(out));	/* blocked here, or still in write() */
			_exit(0);
		}
		close(p[1]);
		/* round 0: killed in read(); 1: right after write(); 2: before it */
		if (round < 2)
			(void)read(p[0], &c, 1);
		if (round == 0)
			usleep(50000);
		if (round == 2)
			usleep(20000);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(p[0]);
		/* the others: a GetRandom gets its own response */
		int f = open(dev, O_RDWR);
		double t0 = now();
		long rc = f < 0 ? -1 : xfer(f, get_random_cmd, sizeof(get_random_cmd), out, sizeof(out), &o);
		if (f >= 0)
			close(f);
		if (rc != 0 || o != 28)
			snprintf(bad + strlen(bad), sizeof(bad) - strlen(bad),
				 " round %d: GetRandom rc 0x%lx, %zu bytes %s;", round, rc, rc == 0 ? o : 0,
				 rc < 0 ? why : "");
		else
			printf("INFO killed-opener round %d: next GetRandom after %.2f s\n", round, now() - t0);
	}
	int ok = alive(msg, sizeof(msg));
	result(ok && !bad[0], "killed-opener", "%s%s",
	       bad[0] ? bad : "3 openers SIGKILLed around an RSA-2048 keygen, others served their own responses; ",
	       msg);
}

static long fd_count(void)
{
	char path[64];
	long n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)daemon_pid);
	d = opendir(path);
	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n - 2;
}

static long rss_kb(void)
{
	char path[64], line[256];
	long kb = -1;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)daemon_pid);
	fp = fopen(path, "r");
	if (!fp)
		return -1;
	while (fgets(line, sizeof(line), fp))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(fp);
	return kb;
}

static int cycles(int n)
{
	uint8_t out[256];
	size_t o;

	for (int i = 0; i < n; i++) {
		int f = open(dev, O_RDWR);
		if (f < 0)
			return 0;
		if (i % 4 != 3 && xfer(f, get_random_cmd, sizeof(get_random_cmd), out, sizeof(out), &o) != 0) {
			close(f);
			return 0;
		}
		if (i % 4 == 2)	/* a command whose response is never read */
			(void)write(f, get_random_cmd, sizeof(get_random_cmd));
		close(f);
	}
	return 1;
}

static void check_fd_rss(void)
{
	char msg[200];
	long fd0, fd1, rss0, rss1;
	int ok;

	begin("fd-rss-200");
	if (!cycles(30)) {	/* warm-up: allocator arenas, buffers */
		result(0, "fd-rss-200", "warm-up cycles failed: %s", why);
		return;
	}
	fd0 = fd_count();
	rss0 = rss_kb();
	ok = cycles(200);
	fd1 = fd_count();
	rss1 = rss_kb();
	int al = alive(msg, sizeof(msg));
	result(ok && al && fd0 > 0 && fd1 == fd0 && rss1 >= 0 && rss1 - rss0 < 512, "fd-rss-200",
	       "200 open/command/close cycles (1 in 4 without I/O, 1 in 4 leaving an unread response): "
	       "fds %ld -> %ld, VmRSS %ld -> %ld kB%s; %s", fd0, fd1, rss0, rss1, ok ? "" : " (a cycle failed)", msg);
}

int main(int argc, char **argv)
{
	char msg[300];
	int f;
	long r;

	if (argc != 3) {
		fprintf(stderr, "usage: cuse-hostile DEVICE DAEMON_PID\n");
		return 2;
	}
	dev = argv[1];
	daemon_pid = (pid_t)atoi(argv[2]);
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	srand((unsigned)getpid());
	for (unsigned i = 0; i < sizeof(nvdata); i++)
		nvdata[i] = (uint8_t)(0x3c + 7 * i);

	f = open(dev, O_RDWR);
	if (f < 0) {
		result(0, "setup", "open %s: %s", dev, strerror(errno));
		return 1;
	}
	r = init_tpm(f, 1);
	if (r == 0)
		r = nv_setup(f);
	result(r == 0, "setup", "INIT, TPM2_Startup, NV index 0x%x defined and written: rc 0x%lx %s", NV_INDEX, r,
	       r < 0 ? why : "");
	if (r != 0)
		return 1;

	check_wrong_sizes(f);
	check_unknown(f);
	check_absurd(f);
	check_garbage(f);
	check_read_no_command();
	check_write_0();
	check_write_big(8192, "write-8k");
	check_write_big(1 << 20, "write-1m");
	check_second_write();
	check_killed_opener();
	check_fd_rss();
	begin("nv-intact");
	result(nv_check(msg, sizeof(msg)), "nv-intact", "%s", msg);
	close(f);
	return failures ? 1 : 0;
}
