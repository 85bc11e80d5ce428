/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fault injection for the integration tests: LD_PRELOAD'ed into the daemon,
 * it makes chosen libc calls fail the way they fail in production.  What
 * fails is read from the file VTPM_FAULT_FILE names, one `key=value` a
 * line, re-read whenever the file changes, so a test can turn a fault on
 * after start-up.  Keys:
 *   pthread_create=ERRNO     every thread creation fails
 *   sock_write_max=N         write()/writev() to a socket take at most N bytes
 *   fsync_dir=ERRNO          fsync() of a directory fails
 *   fsync_file=ERRNO         fsync() of a regular file fails
 *   fsync_file_delay=MS      fsync() of a regular file sleeps MS first: a slow disk
 *   rename=ERRNO             rename()/renameat() fail
 *   accept=ERRNO:COUNT       the next COUNT accept4() calls fail (then it clears)
 *   timerfd_settime=ERRNO    arming any timer fails
 *   malloc_min=N             malloc()/realloc() of N bytes or more return NULL
 *   listen_delay=MS          listen() sleeps MS first: a socket bound but not
 *                            yet listening stays so that long
 *   thread_unlock_delay=MS   the next pthread_mutex_unlock() by a thread other
 *                            than the main one sleeps MS first (once): the
 *                            worker, woken with a job, is slow to reach libtpms
 *   pwrite_crash=N:HOW       the Nth pwrite() after this line was read kills
 *                            the process (SIGKILL): HOW is before (nothing
 *                            written), after (all written) or torn (the first
 *                            half, in whole 512-byte sectors, written: a power
 *                            cut; a write within one sector is never torn)
 * Only raw syscalls, glibc's internal entry points and stack buffers here:
 * this code runs inside malloc and pthread_mutex_unlock.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_realloc(void *ptr, size_t size);
/* glibc's own entry points: no dlsym (which may allocate) inside malloc or unlock. */
extern int __pthread_mutex_lock(pthread_mutex_t *m);
extern int __pthread_mutex_unlock(pthread_mutex_t *m);

struct fault_spec {
	int pthread_create_err;
	size_t sock_write_max;
	int fsync_dir_err, fsync_file_err, rename_err, timerfd_err;
	int accept_err;
	long accept_count;
	size_t malloc_min;
	long thread_unlock_delay;
	long listen_delay;
	long fsync_file_delay;
	long pwrite_crash_at, pwrite_count;
	int pwrite_crash_how;
};

enum { CRASH_BEFORE = 1, CRASH_TORN, CRASH_AFTER };

static struct fault_spec spec;
static struct timespec spec_mtime;
static pthread_mutex_t spec_lock = PTHREAD_MUTEX_INITIALIZER;

static long parse_num(const char *p)
{
	long v = 0;

	while (*p >= '0' && *p <= '9')
		v = v * 10 + (*p++ - '0');
	return v;
}

static int parse_errno(const char *p)
{
	static const struct { const char *name; int err; } names[] = {
		{ "EAGAIN", EAGAIN }, { "EIO", EIO }, { "ENOSPC", ENOSPC }, { "EMFILE", EMFILE },
		{ "ENOMEM", ENOMEM }, { "EPERM", EPERM }, { "EINVAL", EINVAL }, { "EDQUOT", EDQUOT },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strncmp(p, names[i].name, strlen(names[i].name)))
			return names[i].err;
	return (int)parse_num(p);
}

static void spec_line(struct fault_spec *s, const char *line)
{
	const char *v = strchr(line, '=');

	if (!v)
		return;
	v++;
#define KEY(k) (!strncmp(line, k "=", sizeof(k)))
	if (KEY("pthread_create"))
		s->pthread_create_err = parse_errno(v);
	else if (KEY("sock_write_max"))
		s->sock_write_max = (size_t)parse_num(v);
	else if (KEY("fsync_dir"))
		s->fsync_dir_err = parse_errno(v);
	else if (KEY("fsync_file"))
		s->fsync_file_err = parse_errno(v);
	else if (KEY("fsync_file_delay"))
		s->fsync_file_delay = parse_num(v);
	else if (KEY("rename"))
		s->rename_err = parse_errno(v);
	else if (KEY("timerfd_settime"))
		s->timerfd_err = parse_errno(v);
	else if (KEY("listen_delay"))
		s->listen_delay = parse_num(v);
	else if (KEY("thread_unlock_delay"))
		s->thread_unlock_delay = parse_num(v);
	else if (KEY("malloc_min"))
		s->malloc_min = (size_t)parse_num(v);
	else if (KEY("pwrite_crash")) {
		const char *how = strchr(v, ':');

		s->pwrite_crash_at = parse_num(v);
		s->pwrite_crash_how = !how ? CRASH_BEFORE : !strcmp(how + 1, "after") ? CRASH_AFTER :
				      !strcmp(how + 1, "torn") ? CRASH_TORN : CRASH_BEFORE;
	} else if (KEY("accept")) {
		const char *c = strchr(v, ':');

		s->accept_err = parse_errno(v);
		s->accept_count = c ? parse_num(c + 1) : 1;
	}
#undef KEY
}

/* Re-reads the control file when it changed; returns a copy of the spec. */
static struct fault_spec spec_get(void)
{
	const char *path = getenv("VTPM_FAULT_FILE");
	struct fault_spec out;
	struct stat st;

	__pthread_mutex_lock(&spec_lock);
	if (path && syscall(SYS_stat, path, &st) == 0 &&
	    (st.st_mtim.tv_sec != spec_mtime.tv_sec || st.st_mtim.tv_nsec != spec_mtime.tv_nsec)) {
		char buf[1024];
		int fd = (int)syscall(SYS_open, path, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd >= 0 ? syscall(SYS_read, fd, buf, sizeof(buf) - 1) : -1;
		struct fault_spec fresh = { 0 };

		if (fd >= 0)
			syscall(SYS_close, fd);
		if (n >= 0) {
			buf[n] = 0;
			for (char *line = buf; line && *line;) {
				char *nl = strchr(line, '\n');

				if (nl)
					*nl = 0;
				spec_line(&fresh, line);
				line = nl ? nl + 1 : NULL;
			}
			spec = fresh;
			spec_mtime = st.st_mtim;
		}
	}
	out = spec;
	__pthread_mutex_unlock(&spec_lock);
	return out;
}

#define REAL(name) ((__typeof__(name) *)dlsym(RTLD_NEXT, #name))

int pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg)
{
	struct fault_spec s = spec_get();

	if (s.pthread_create_err)
		return s.pthread_create_err;
	return REAL(pthread_create)(t, a, fn, arg);
}

static bool is_socket(int fd)
{
	struct stat st;

	return syscall(SYS_fstat, fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

ssize_t write(int fd, const void *buf, size_t len)
{
	struct fault_spec s = spec_get();

	if (s.sock_write_max && len > s.sock_write_max && is_socket(fd))
		len = s.sock_write_max;
	return syscall(SYS_write, fd, buf, len);
}

ssize_t writev(int fd, const struct iovec *iov, int n)
{
	struct fault_spec s = spec_get();

	if (s.sock_write_max && n > 0 && is_socket(fd)) {
		struct iovec one = iov[0];

		if (one.iov_len > s.sock_write_max)
			one.iov_len = s.sock_write_max;
		return syscall(SYS_writev, fd, &one, 1);
	}
	return syscall(SYS_writev, fd, iov, n);
}

int fsync(int fd)
{
	struct fault_spec s = spec_get();
	struct stat st;

	if (syscall(SYS_fstat, fd, &st) == 0) {
		int err = S_ISDIR(st.st_mode) ? s.fsync_dir_err : S_ISREG(st.st_mode) ? s.fsync_file_err : 0;

		if (S_ISREG(st.st_mode) && s.fsync_file_delay) {
			struct timespec ts = { s.fsync_file_delay / 1000, (s.fsync_file_delay % 1000) * 1000000L };

			nanosleep(&ts, NULL);
		}

		if (err) {
			errno = err;
			return -1;
		}
	}
	return (int)syscall(SYS_fsync, fd);
}

int renameat(int olddir, const char *old, int newdir, const char *new)
{
	struct fault_spec s = spec_get();

	if (s.rename_err) {
		errno = s.rename_err;
		return -1;
	}
	return REAL(renameat)(olddir, old, newdir, new);
}

int rename(const char *old, const char *new)
{
	return renameat(AT_FDCWD, old, AT_FDCWD, new);
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	struct fault_spec s = spec_get();

	if (s.accept_err) {
		__pthread_mutex_lock(&spec_lock);
		if (spec.accept_count > 0 && --spec.accept_count == 0)
			spec.accept_err = 0;
		__pthread_mutex_unlock(&spec_lock);
		errno = s.accept_err;
		return -1;
	}
	return REAL(accept4)(fd, addr, len, flags);
}

/* The crash of pwrite_crash, if this call is the one; else returns to write normally. */
static void pwrite_maybe_crash(int fd, const void *buf, size_t len, off_t off)
{
	struct fault_spec s = spec_get();
	long n;

	if (!s.pwrite_crash_at)
		return;
	__pthread_mutex_lock(&spec_lock);
	n = ++spec.pwrite_count;
	__pthread_mutex_unlock(&spec_lock);
	if (n != s.pwrite_crash_at)
		return;
	if (s.pwrite_crash_how == CRASH_AFTER)
		syscall(SYS_pwrite64, fd, buf, len, off);
	else if (s.pwrite_crash_how == CRASH_TORN && len / 2 >= 512)
		syscall(SYS_pwrite64, fd, buf, len / 2 / 512 * 512, off);
	syscall(SYS_kill, syscall(SYS_getpid), SIGKILL);
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
	pwrite_maybe_crash(fd, buf, len, off);
	return syscall(SYS_pwrite64, fd, buf, len, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off_t off)
{
	pwrite_maybe_crash(fd, buf, len, off);
	return syscall(SYS_pwrite64, fd, buf, len, off);
}

int listen(int fd, int backlog)
{
	struct fault_spec s = spec_get();

	if (s.listen_delay) {
		struct timespec ts = { s.listen_delay / 1000, (s.listen_delay % 1000) * 1000000L };

		nanosleep(&ts, NULL);
	}
	return (int)syscall(SYS_listen, fd, backlog);
}

int timerfd_settime(int fd, int flags, const struct itimerspec *new, struct itimerspec *old)
{
	struct fault_spec s = spec_get();

	if (s.timerfd_err) {
		errno = s.timerfd_err;
		return -1;
	}
	return (int)syscall(SYS_timerfd_settime, fd, flags, new, old);
}

int pthread_mutex_unlock(pthread_mutex_t *m)
{
	if (syscall(SYS_gettid) != getpid()) {
		struct fault_spec s = spec_get();

		if (s.thread_unlock_delay) {
			struct timespec ts = { s.thread_unlock_delay / 1000, (s.thread_unlock_delay % 1000) * 1000000L };

			__pthread_mutex_lock(&spec_lock);
			spec.thread_unlock_delay = 0;	/* once */
			__pthread_mutex_unlock(&spec_lock);
			nanosleep(&ts, NULL);
		}
	}
	return __pthread_mutex_unlock(m);
}

void *malloc(size_t size)
{
	if (spec_get().malloc_min && size >= spec.malloc_min) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_malloc(size);
}

void *realloc(void *ptr, size_t size)
{
	if (spec_get().malloc_min && size >= spec.malloc_min) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_realloc(ptr, size);
}
