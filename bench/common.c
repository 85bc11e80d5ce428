/* common.c - see common.h. */
#include "common.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- time */

double bench_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

void bench_sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

void bench_stats_of(double *s, size_t n, struct bench_stats *st)
{
	double sum = 0;
	size_t i, p99;

	qsort(s, n, sizeof(*s), cmp_double);
	for (i = 0; i < n; i++)
		sum += s[i];
	/* nearest-rank percentile */
	p99 = (size_t)((double)n * 0.99 + 0.999999);
	if (p99 < 1)
		p99 = 1;
	if (p99 > n)
		p99 = n;
	st->n = n;
	st->min = s[0];
	st->median = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
	st->mean = sum / (double)n;
	st->p99 = s[p99 - 1];
	st->max = s[n - 1];
}

void bench_emit_stats(const char *name, const char *unit, const struct bench_stats *st,
		      const char *extra)
{
	printf("{\"name\":\"%s\",\"unit\":\"%s\",\"n\":%zu,\"min\":%.3f,\"median\":%.3f,"
	       "\"mean\":%.3f,\"p99\":%.3f,\"max\":%.3f%s%s}\n",
	       name, unit, st->n, st->min, st->median, st->mean, st->p99, st->max,
	       extra ? "," : "", extra ? extra : "");
	fflush(stdout);
}

void bench_emit_value(const char *name, const char *unit, double value, const char *extra)
{
	printf("{\"name\":\"%s\",\"unit\":\"%s\",\"value\":%.3f%s%s}\n", name, unit, value,
	       extra ? "," : "", extra ? extra : "");
	fflush(stdout);
}

void bench_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);	/* atexit reaps the children */
}

void bench_pin_cpu(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		bench_die("sched_setaffinity(cpu %d): %s", cpu, strerror(errno));
}

long bench_parse_long(const char *s, long lo, long hi, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		bench_die("%s: '%s' is not a number in [%ld, %ld]", what, s, lo, hi);
	return v;
}

/* ----------------------------------------------------------- TPM bytes */

uint32_t be32_at(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void be32_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put8(struct tpm_cmd *c, uint8_t v)
{
	c->b[c->n++] = v;
}

static void put16(struct tpm_cmd *c, uint16_t v)
{
	put8(c, (uint8_t)(v >> 8));
	put8(c, (uint8_t)v);
}

static void put32(struct tpm_cmd *c, uint32_t v)
{
	put16(c, (uint16_t)(v >> 16));
	put16(c, (uint16_t)v);
}

#define TPM_ST_NO_SESSIONS 0x8001
#define TPM_ST_SESSIONS 0x8002
#define TPM_RS_PW 0x40000009
#define TPM_RH_OWNER 0x40000001

static void hdr(struct tpm_cmd *c, uint16_t tag, uint32_t cc)
{
	c->n = 0;
	put16(c, tag);
	put32(c, 0);	/* size, set by fin() */
	put32(c, cc);
}

static void fin(struct tpm_cmd *c)
{
	be32_put(c->b + 2, (uint32_t)c->n);
}

/* the empty-password authorization: handle, nonce(0), attributes, hmac(0) */
static void pw_session(struct tpm_cmd *c)
{
	put32(c, 9);
	put32(c, TPM_RS_PW);
	put16(c, 0);
	put8(c, 0);
	put16(c, 0);
}

void tpm_cmd_startup_clear(struct tpm_cmd *c)
{
	hdr(c, TPM_ST_NO_SESSIONS, 0x144);
	put16(c, 0);	/* TPM_SU_CLEAR */
	fin(c);
}

void tpm_cmd_getrandom(struct tpm_cmd *c, uint16_t bytes)
{
	hdr(c, TPM_ST_NO_SESSIONS, 0x17b);
	put16(c, bytes);
	fin(c);
}

/* PCR_Extend(pcr, one sha256 digest of 32 x 0xab) */
void tpm_cmd_pcr_extend(struct tpm_cmd *c, uint32_t pcr)
{
	hdr(c, TPM_ST_SESSIONS, 0x182);
	put32(c, pcr);
	pw_session(c);
	put32(c, 1);
	put16(c, 0x000b);	/* TPM_ALG_SHA256 */
	for (int i = 0; i < 32; i++)
		put8(c, 0xab);
	fin(c);
}

/* CreatePrimary in the owner hierarchy with the storage-key template
 * tpm2_createprimary uses by default (fixedTPM, fixedParent,
 * sensitiveDataOrigin, userWithAuth, restricted, decrypt; AES-128-CFB).
 * ecc: NIST P-256, else RSA 2048. */
void tpm_cmd_createprimary(struct tpm_cmd *c, int ecc)
{
	hdr(c, TPM_ST_SESSIONS, 0x131);
	put32(c, TPM_RH_OWNER);
	pw_session(c);
	put16(c, 4);	/* inSensitive: empty userAuth, empty data */
	put16(c, 0);
	put16(c, 0);
	put16(c, 26);	/* TPM2B_PUBLIC */
	put16(c, ecc ? 0x0023 : 0x0001);
	put16(c, 0x000b);	/* nameAlg sha256 */
	put32(c, 0x00030072);
	put16(c, 0);	/* authPolicy */
	put16(c, 0x0006);	/* AES */
	put16(c, 128);
	put16(c, 0x0043);	/* CFB */
	put16(c, 0x0010);	/* scheme NULL */
	if (ecc) {
		put16(c, 0x0003);	/* NIST P-256 */
		put16(c, 0x0010);	/* kdf NULL */
		put16(c, 0);
		put16(c, 0);
	} else {
		put16(c, 2048);
		put32(c, 0);
		put16(c, 0);
	}
	put16(c, 0);	/* outsideInfo */
	put32(c, 0);	/* creationPCR: none */
	fin(c);
}

void tpm_cmd_flush(struct tpm_cmd *c, uint32_t handle)
{
	hdr(c, TPM_ST_NO_SESSIONS, 0x165);
	put32(c, handle);
	fin(c);
}

int tpm_cmd_by_name(const char *name, struct tpm_cmd *c, enum tpm_cmd_kind *kind)
{
	if (!strcmp(name, "getrandom")) {
		tpm_cmd_getrandom(c, 16);
		*kind = TPM_K_GETRANDOM;
	} else if (!strcmp(name, "pcrextend")) {
		tpm_cmd_pcr_extend(c, 16);
		*kind = TPM_K_PCR_EXTEND;
	} else if (!strcmp(name, "cp-ecc")) {
		tpm_cmd_createprimary(c, 1);
		*kind = TPM_K_CP_ECC;
	} else if (!strcmp(name, "cp-rsa")) {
		tpm_cmd_createprimary(c, 0);
		*kind = TPM_K_CP_RSA;
	} else {
		return -1;
	}
	return 0;
}

/* -------------------------------------------------------------- sockets */

static const struct timeval io_timeout = { 10, 0 };

int bench_connect(const char *addr)
{
	int fd, r;

	if (!strncmp(addr, "tcp:", 4)) {
		struct sockaddr_in a = { .sin_family = AF_INET };
		int one = 1;

		a.sin_port = htons((uint16_t)atoi(addr + 4));
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		r = connect(fd, (struct sockaddr *)&a, sizeof(a));
	} else if (!strncmp(addr, "unix:", 5)) {
		struct sockaddr_un a = { .sun_family = AF_UNIX };

		if (strlen(addr + 5) >= sizeof(a.sun_path))
			return -ENAMETOOLONG;
		memcpy(a.sun_path, addr + 5, strlen(addr + 5) + 1);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		r = connect(fd, (struct sockaddr *)&a, sizeof(a));
	} else {
		return -EINVAL;
	}
	if (r) {
		r = -errno;
		close(fd);
		return r;
	}
	/* a daemon that stops answering fails the measurement instead of hanging it */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &io_timeout, sizeof(io_timeout));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &io_timeout, sizeof(io_timeout));
	return fd;
}

int bench_write_all(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;

	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int bench_read_all(int fd, void *buf, size_t n)
{
	uint8_t *p = buf;

	while (n) {
		ssize_t r = read(fd, p, n);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

long tpm_roundtrip(int fd, const uint8_t *cmd, size_t n, uint8_t *rsp, size_t cap)
{
	size_t got = 0, want = 10;

	if (bench_write_all(fd, cmd, n))
		return -1;
	while (got < want) {
		ssize_t r = read(fd, rsp + got, cap - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
		if (got >= 10) {
			want = tpm_rsp_size(rsp);
			if (want < 10 || want > cap)
				return -1;
		}
	}
	return (long)got;
}

/* ---------------------------------------------------------- ctrl channel */

int ctrl_get_caps(int fd, uint64_t *caps)
{
	uint8_t req[4], rsp[8];

	be32_put(req, CMD_GET_CAPABILITY);
	if (bench_write_all(fd, req, 4) || bench_read_all(fd, rsp, 8))
		return -1;
	*caps = (uint64_t)be32_at(rsp) << 32 | be32_at(rsp + 4);
	return 0;
}

/* one message in one write (swtpm frames ctrl messages by read boundaries),
 * a 4-byte result back */
static int ctrl_result(int fd, const uint8_t *req, size_t len, uint32_t *result)
{
	uint8_t rsp[4];

	if (bench_write_all(fd, req, len) || bench_read_all(fd, rsp, 4))
		return -1;
	*result = be32_at(rsp);
	return 0;
}

int ctrl_simple(int fd, uint32_t code, uint32_t *result)
{
	uint8_t req[4];

	be32_put(req, code);
	return ctrl_result(fd, req, sizeof(req), result);
}

int ctrl_init(int fd, uint32_t flags, uint32_t *result)
{
	uint8_t req[8];

	be32_put(req, CMD_INIT);
	be32_put(req + 4, flags);
	return ctrl_result(fd, req, sizeof(req), result);
}

int ctrl_get_blob(int fd, uint32_t type, uint8_t **data, uint32_t *len, uint32_t *result)
{
	uint8_t req[16] = { 0 }, h[16];

	*data = NULL;
	*len = 0;
	be32_put(req, CMD_GET_STATEBLOB);
	be32_put(req + 8, type);
	if (bench_write_all(fd, req, 16) || bench_read_all(fd, h, 4))
		return -1;
	*result = be32_at(h);
	if (*result)	/* errors may come as the 4-byte result only */
		return 0;
	if (bench_read_all(fd, h + 4, 12))
		return -1;
	*len = be32_at(h + 12);
	if (*len > (1u << 24))
		return -1;
	*data = malloc(*len ? *len : 1);
	if (!*data || bench_read_all(fd, *data, *len))
		return -1;
	return 0;
}

int ctrl_set_blob(int fd, uint32_t type, const uint8_t *data, uint32_t len, uint32_t *result)
{
	uint8_t *req = malloc(16 + (size_t)len);
	int r;

	if (!req)
		return -1;
	be32_put(req, CMD_SET_STATEBLOB);
	be32_put(req + 4, 0);
	be32_put(req + 8, type);
	be32_put(req + 12, len);
	memcpy(req + 16, data, len);
	r = ctrl_result(fd, req, 16 + (size_t)len, result);
	free(req);
	return r;
}

/* ------------------------------------------------------------- children */

#define MAX_CHILDREN 1024
static pid_t children[MAX_CHILDREN];

static void child_add(pid_t pid)
{
	for (int i = 0; i < MAX_CHILDREN; i++)
		if (!children[i]) {
			children[i] = pid;
			return;
		}
}

static void child_forget(pid_t pid)
{
	for (int i = 0; i < MAX_CHILDREN; i++)
		if (children[i] == pid)
			children[i] = 0;
}

void bench_reap_all(void)
{
	for (int i = 0; i < MAX_CHILDREN; i++)
		if (children[i] > 0)
			kill(children[i], SIGKILL);
	for (int i = 0; i < MAX_CHILDREN; i++)
		if (children[i] > 0) {
			waitpid(children[i], NULL, 0);
			children[i] = 0;
		}
}

static void on_signal(int sig)
{
	bench_reap_all();
	signal(sig, SIG_DFL);
	raise(sig);
}

void bench_init(void)
{
	atexit(bench_reap_all);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, SIG_IGN);
	/* the poll loops sleep 10-100 us; default slack would make that 50 us more */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
}

/* ------------------------------------------------------------ instances */

static int rm_files_in(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[600];

	if (!d)
		return errno == ENOENT ? 0 : -1;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (snprintf(p, sizeof(p), "%s/%s", dir, e->d_name) < (int)sizeof(p))
			unlink(p);
	}
	closedir(d);
	return 0;
}

static int copy_file(const char *from, const char *to)
{
	char buf[65536];
	int in = open(from, O_RDONLY | O_CLOEXEC), out;
	ssize_t r;

	if (in < 0)
		return -1;
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0) {
		close(in);
		return -1;
	}
	while ((r = read(in, buf, sizeof(buf))) > 0)
		if (bench_write_all(out, buf, (size_t)r))
			break;
	close(in);
	return close(out) || r != 0 ? -1 : 0;
}

int inst_opt(struct inst_opts *io, int o, const char *arg)
{
	switch (o) {
	case 'b':
		io->bin = arg;
		return 1;
	case 'd':
		io->dir = arg;
		return 1;
	case 'r':
		io->ref = arg;
		return 1;
	default:
		return 0;
	}
}

int inst_prepare_state(const char *dir, const char *ref, int fresh)
{
	char st[400];

	snprintf(st, sizeof(st), "%s/state", dir);
	if ((mkdir(dir, 0700) && errno != EEXIST) || (mkdir(st, 0700) && errno != EEXIST))
		return -1;
	if (fresh && rm_files_in(st))
		return -1;
	if (ref) {
		char perm[450];

		snprintf(perm, sizeof(perm), "%s/tpm2-00.permall", st);
		return copy_file(ref, perm);
	}
	return 0;
}

int inst_spawn(struct inst *in, const char *bin, const char *dir, int tcp_port, int cpu)
{
	char srv[400], ctl[400], tst[400], log[400], prog[256];
	pid_t parent = getpid(), p;

	memset(in, 0, sizeof(*in));
	if (strlen(dir) >= sizeof(in->dir) - 16)
		return -1;
	snprintf(in->dir, sizeof(in->dir), "%s", dir);
	snprintf(tst, sizeof(tst), "dir=%s/state", dir);
	snprintf(log, sizeof(log), "%s/daemon.log", dir);
	if (tcp_port) {
		snprintf(srv, sizeof(srv), "type=tcp,port=%d", tcp_port);
		snprintf(ctl, sizeof(ctl), "type=tcp,port=%d", tcp_port + 1);
		snprintf(in->data_addr, sizeof(in->data_addr), "tcp:%d", tcp_port);
		snprintf(in->ctrl_addr, sizeof(in->ctrl_addr), "tcp:%d", tcp_port + 1);
	} else {
		snprintf(srv, sizeof(srv), "type=unixio,path=%s/data.sock", dir);
		snprintf(ctl, sizeof(ctl), "type=unixio,path=%s/ctrl.sock", dir);
		snprintf(in->data_addr, sizeof(in->data_addr), "unix:%s/data.sock", dir);
		snprintf(in->ctrl_addr, sizeof(in->ctrl_addr), "unix:%s/ctrl.sock", dir);
		/* a stale socket file would look like a live daemon */
		unlink(in->data_addr + 5);
		unlink(in->ctrl_addr + 5);
	}
	if (snprintf(prog, sizeof(prog), "%s", bin) >= (int)sizeof(prog))
		return -1;
	in->t_spawn = bench_now_us();
	p = fork();
	if (p < 0)
		return -1;
	if (p == 0) {
		char *argv[] = { prog, "socket", "--tpm2", "--tpmstate", tst, "--ctrl", ctl,
				 "--server", srv, "--flags", "not-need-init,startup-clear", NULL };
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(126);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (cpu >= 0) {
			cpu_set_t set;

			CPU_ZERO(&set);
			CPU_SET(cpu, &set);
			sched_setaffinity(0, sizeof(set), &set);
		}
		signal(SIGPIPE, SIG_DFL);
		execvp(bin, argv);
		dprintf(2, "exec %s: %s\n", bin, strerror(errno));
		_exit(127);
	}
	in->pid = p;
	child_add(p);
	return 0;
}

static int inst_wait_connect(struct inst *in, const char *addr, long poll_us, double timeout_us)
{
	for (;;) {
		int fd = bench_connect(addr), st;

		if (fd >= 0)
			return fd;
		if (waitpid(in->pid, &st, WNOHANG) == in->pid) {
			child_forget(in->pid);
			in->pid = 0;
			return -1;
		}
		if (bench_now_us() - in->t_spawn > timeout_us)
			return -1;
		bench_sleep_us(poll_us);
	}
}

int inst_wait_ctrl(struct inst *in, long poll_us, double timeout_us)
{
	return inst_wait_connect(in, in->ctrl_addr, poll_us, timeout_us);
}

int inst_wait_data(struct inst *in, long poll_us, double timeout_us)
{
	return inst_wait_connect(in, in->data_addr, poll_us, timeout_us);
}

double inst_stop(struct inst *in, int ctrlfd)
{
	double t0 = bench_now_us();
	uint32_t res;
	int st;

	if (in->pid <= 0)
		return -1;
	if (ctrlfd >= 0)
		ctrl_simple(ctrlfd, CMD_SHUTDOWN, &res);
	while (bench_now_us() - t0 < 5e6) {
		pid_t w = waitpid(in->pid, &st, WNOHANG);

		if (w == in->pid || (w < 0 && errno == ECHILD)) {
			double t = bench_now_us() - t0;

			child_forget(in->pid);
			in->pid = 0;
			return ctrlfd >= 0 ? t : -1;
		}
		bench_sleep_us(20);
	}
	kill(in->pid, SIGKILL);
	waitpid(in->pid, NULL, 0);
	child_forget(in->pid);
	in->pid = 0;
	return -1;
}

const char *inst_log_tail(const struct inst *in)
{
	static char line[256];
	char path[400], buf[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/daemon.log", in->dir);
	snprintf(line, sizeof(line), "(its log is empty)");
	f = fopen(path, "r");
	if (!f)
		return "(no log)";
	while (fgets(buf, sizeof(buf), f))
		if (buf[0] != '\n')
			snprintf(line, sizeof(line), "%s", buf);
	fclose(f);
	line[strcspn(line, "\n")] = 0;
	return line;
}

/* ----------------------------------------------------------------- /proc */

int read_smaps_rollup(pid_t pid, struct memfig *m)
{
	char path[64], line[256];
	FILE *f;

	memset(m, 0, sizeof(*m));
	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char key[64];
		long v;

		if (sscanf(line, "%63[^:]: %ld kB", key, &v) != 2)
			continue;
		if (!strcmp(key, "Rss"))
			m->rss = v;
		else if (!strcmp(key, "Pss"))
			m->pss = v;
		else if (!strcmp(key, "Private_Dirty"))
			m->pdirty = v;
		else if (!strcmp(key, "Private_Clean"))
			m->pclean = v;
		else if (!strcmp(key, "Anonymous"))
			m->anon = v;
	}
	fclose(f);
	return 0;
}

double proc_cpu_us(pid_t pid)
{
	char path[64], file[128];
	unsigned long long ns, sum = 0;
	struct dirent *e;
	DIR *d;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/self/task");
	d = opendir(path);
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		if (snprintf(file, sizeof(file), "%s/%s/schedstat", path, e->d_name) >=
		    (int)sizeof(file))
			continue;
		f = fopen(file, "r");
		if (!f)
			continue;
		if (fscanf(f, "%llu", &ns) == 1)
			sum += ns;
		fclose(f);
	}
	closedir(d);
	return (double)sum / 1e3;
}
