/*
 * common.h - what every benchmark tool shares: clocks and statistics, the
 * hand-marshalled TPM 2.0 commands, socket and ctrl-channel clients, and
 * the start/stop of one daemon instance (`swtpm socket` or our
 * `vtpm-bridge socket`; both take the same command line).
 *
 * Output contract with bench/run.py: every measurement is one JSON object
 * on one line of stdout (bench_emit_*); anything else goes to stderr.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- time and statistics ---- */
double bench_now_us(void);
void bench_sleep_us(long us);

struct bench_stats {
	size_t n;
	double min, median, mean, p99, max;
};
/* Sorts s[0..n) in place; n > 0. */
void bench_stats_of(double *s, size_t n, struct bench_stats *st);
/* {"name":..,"unit":..,"n":..,"min":..,"median":..,"mean":..,"p99":..,"max":..[,extra]}
 * extra: further JSON members without braces (may be NULL). */
void bench_emit_stats(const char *name, const char *unit, const struct bench_stats *st,
		      const char *extra);
/* {"name":..,"unit":..,"value":..[,extra]} */
void bench_emit_value(const char *name, const char *unit, double value, const char *extra);

void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void bench_pin_cpu(int cpu);	/* this process; cpu < 0: leave as is */
long bench_parse_long(const char *s, long lo, long hi, const char *what);

/* ---- TPM 2.0 commands (big-endian, as on the wire) ---- */
#define TPM_CMD_MAX 512
struct tpm_cmd {
	uint8_t b[TPM_CMD_MAX];
	size_t n;
};
enum tpm_cmd_kind { TPM_K_GETRANDOM, TPM_K_PCR_EXTEND, TPM_K_CP_ECC, TPM_K_CP_RSA };

void tpm_cmd_startup_clear(struct tpm_cmd *c);
void tpm_cmd_getrandom(struct tpm_cmd *c, uint16_t bytes);
void tpm_cmd_pcr_extend(struct tpm_cmd *c, uint32_t pcr);
void tpm_cmd_createprimary(struct tpm_cmd *c, int ecc);
void tpm_cmd_flush(struct tpm_cmd *c, uint32_t handle);
/* "getrandom", "pcrextend", "cp-ecc", "cp-rsa"; returns -1 if unknown */
int tpm_cmd_by_name(const char *name, struct tpm_cmd *c, enum tpm_cmd_kind *kind);

uint32_t be32_at(const uint8_t *p);
void be32_put(uint8_t *p, uint32_t v);
static inline uint32_t tpm_rsp_size(const uint8_t *r) { return be32_at(r + 2); }
static inline uint32_t tpm_rsp_code(const uint8_t *r) { return be32_at(r + 6); }
static inline uint32_t tpm_rsp_handle(const uint8_t *r) { return be32_at(r + 10); }

/* ---- sockets ---- */
/* addr: "unix:PATH" or "tcp:PORT" (127.0.0.1).  Returns fd or -errno.
 * Reads and writes on it time out after 10 s (EAGAIN). */
int bench_connect(const char *addr);
int bench_write_all(int fd, const void *buf, size_t n);
int bench_read_all(int fd, void *buf, size_t n);
/* Writes the command in one write(), reads a framed TPM response (the size
 * field of its 10-byte header) with as few read()s as the kernel allows.
 * Returns the response length or -1. */
long tpm_roundtrip(int fd, const uint8_t *cmd, size_t n, uint8_t *rsp, size_t cap);

/* ---- ctrl channel (spec/ctrl-socket.md), big-endian ---- */
enum {
	CMD_GET_CAPABILITY = 1, CMD_INIT = 2, CMD_SHUTDOWN = 3, CMD_STORE_VOLATILE = 10,
	CMD_GET_STATEBLOB = 12, CMD_SET_STATEBLOB = 13, CMD_STOP = 14,
};
#define PTM_BLOB_TYPE_PERMANENT 1
#define PTM_BLOB_TYPE_VOLATILE 2

int ctrl_get_caps(int fd, uint64_t *caps);
int ctrl_simple(int fd, uint32_t code, uint32_t *result);	/* no payload, u32 reply */
int ctrl_init(int fd, uint32_t flags, uint32_t *result);
/* *data is malloc'd (caller frees); 0 on a completed exchange */
int ctrl_get_blob(int fd, uint32_t type, uint8_t **data, uint32_t *len, uint32_t *result);
int ctrl_set_blob(int fd, uint32_t type, const uint8_t *data, uint32_t len, uint32_t *result);

/* ---- one daemon instance ---- */
struct inst {
	pid_t pid;
	char dir[256];
	char ctrl_addr[300], data_addr[300];
	double t_spawn;	/* bench_now_us() just before fork */
};
/* -b BIN -d DIR -r REF: the options of every tool that starts instances */
struct inst_opts {
	const char *bin, *dir, *ref;
};
/* Takes getopt's option o if it is one of those; returns 1 if it did. */
int inst_opt(struct inst_opts *io, int o, const char *arg);
/* Starts `BIN socket --tpm2 --tpmstate dir=DIR/state --ctrl .. --server ..
 * --flags not-need-init,startup-clear`, unix sockets in DIR (tcp_port == 0)
 * or TCP ports tcp_port (data) and tcp_port+1 (ctrl) on 127.0.0.1.  Its
 * stdout/stderr go to DIR/daemon.log.  cpu >= 0 pins it.  The child dies
 * with this process (PR_SET_PDEATHSIG) and is killed by bench_reap_all(). */
int inst_spawn(struct inst *in, const char *bin, const char *dir, int tcp_port, int cpu);
/* Connects the ctrl channel, retrying every poll_us until timeout_us after
 * the spawn; returns the fd, or -1 (also if the daemon exited). */
int inst_wait_ctrl(struct inst *in, long poll_us, double timeout_us);
/* Connects the data channel the same way (a daemon may create its data
 * socket after its ctrl socket). */
int inst_wait_data(struct inst *in, long poll_us, double timeout_us);
/* CMD_SHUTDOWN over ctrlfd (if >= 0), then waits for exit up to 5 s, then
 * SIGKILL.  Returns microseconds from the request to the exit, or -1. */
double inst_stop(struct inst *in, int ctrlfd);
/* Copies the file ref to DIR/state/tpm2-00.permall (ref may be NULL: no copy);
 * fresh: removes every file in DIR/state first. */
int inst_prepare_state(const char *dir, const char *ref, int fresh);
/* Last line of DIR/daemon.log, for error messages. */
const char *inst_log_tail(const struct inst *in);

/* Kills (SIGKILL) and reaps every child still registered; installed for
 * SIGINT/SIGTERM/SIGHUP and atexit by bench_init(). */
void bench_reap_all(void);
void bench_init(void);

/* ---- /proc ---- */
struct memfig {
	long rss, pss, pdirty, pclean, anon;	/* kB, from smaps_rollup */
};
int read_smaps_rollup(pid_t pid, struct memfig *m);
/* CPU time of all threads of pid, microseconds (the schedstat of every task of PID);
 * pid 0: this process.  -1 on error. */
double proc_cpu_us(pid_t pid);

#endif
