/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The seccomp allow-list (libseccomp).  swtpm 0.7.1 denies a list of
 * dangerous syscalls and allows the rest; we allow what the daemon is
 * seen to make once it serves and deny everything else, so a syscall
 * nobody thought of is denied too.  Start-up (binding, opening devices,
 * dropping privileges) is over when the filter goes on, so its syscalls
 * are not here.
 */
#include "sandbox.h"

#include <errno.h>
#include <linux/fs.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

/* What the core needs whichever fronts run. */
static const int base_syscalls[] = {
	/* memory: malloc, thread stacks, dlopen()'s mappings of libtpms and libcrypto */
	SCMP_SYS(brk), SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mprotect), SCMP_SYS(mremap),
	SCMP_SYS(madvise),
	/* descriptors and the loop */
	SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev), SCMP_SYS(pread64),
	SCMP_SYS(pwrite64), SCMP_SYS(lseek), SCMP_SYS(close), SCMP_SYS(dup), SCMP_SYS(dup2),
	SCMP_SYS(dup3), SCMP_SYS(fcntl), SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(epoll_wait),
	SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_ctl), SCMP_SYS(timerfd_create), SCMP_SYS(timerfd_settime),
	SCMP_SYS(eventfd2),
	/*
	 * files: state I/O (temp file, fsync, rename, directory fsync; the
	 * linear file's syncs and trim), dlopen()'s search, OpenSSL's config,
	 * the pid file, key files, sysfs, and -d's chdir("/") once ready
	 */
	SCMP_SYS(open), SCMP_SYS(openat), SCMP_SYS(stat), SCMP_SYS(fstat), SCMP_SYS(lstat),
	SCMP_SYS(newfstatat), SCMP_SYS(statx), SCMP_SYS(access), SCMP_SYS(faccessat), SCMP_SYS(faccessat2),
	SCMP_SYS(readlink), SCMP_SYS(readlinkat), SCMP_SYS(getdents64), SCMP_SYS(rename), SCMP_SYS(renameat),
	SCMP_SYS(renameat2), SCMP_SYS(unlink), SCMP_SYS(unlinkat), SCMP_SYS(link), SCMP_SYS(linkat),
	SCMP_SYS(fsync), SCMP_SYS(fdatasync), SCMP_SYS(ftruncate), SCMP_SYS(fallocate), SCMP_SYS(fchmod),
	SCMP_SYS(chdir),
	/* syslog (logging moves there when -d detaches): its AF_UNIX socket is below */
	SCMP_SYS(connect), SCMP_SYS(sendto),
	/* time: timeouts, log stamps, the cancel repeat */
	SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres), SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep),
	SCMP_SYS(gettimeofday), SCMP_SYS(time),
	/* the worker thread (clone itself is below), its locks and its end */
	SCMP_SYS(futex), SCMP_SYS(set_robust_list), SCMP_SYS(rseq), SCMP_SYS(sched_yield),
	SCMP_SYS(sched_getaffinity), SCMP_SYS(gettid), SCMP_SYS(getpid), SCMP_SYS(exit), SCMP_SYS(exit_group),
	/* signals: the blocked set, abort() */
	SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigreturn), SCMP_SYS(sigaltstack),
	SCMP_SYS(restart_syscall), SCMP_SYS(tgkill),
	/* identity, read only (OpenSSL and glibc ask) */
	SCMP_SYS(getuid), SCMP_SYS(geteuid), SCMP_SYS(getgid), SCMP_SYS(getegid),
	/* OpenSSL's and libtpms's randomness */
	SCMP_SYS(getrandom),
	SANDBOX_LIST_END
};

/* Allowed only with these arguments. */
static const struct {
	int nr;
	struct scmp_arg_cmp cmp;
} base_arg_rules[] = {
	/* threads only: a fork (a copy of the TPM's secrets) is refused */
	{ SCMP_SYS(clone), { 0, SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD } },
	/* syslog's socket; nothing else is opened once we serve */
	{ SCMP_SYS(socket), { 0, SCMP_CMP_EQ, AF_UNIX, 0 } },
	/* stdio's isatty(); the linear backend's block-device size (the command is 32 bits wide) */
	{ SCMP_SYS(ioctl), { 1, SCMP_CMP_MASKED_EQ, 0xffffffffu, TCGETS } },
	{ SCMP_SYS(ioctl), { 1, SCMP_CMP_MASKED_EQ, 0xffffffffu, BLKGETSIZE64 & 0xffffffffu } },
};

static void sandbox_log_rule(int ret, int nr)
{
	char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);

	log_errno(LOG_ERR, -ret, "seccomp: cannot allow %s", name ? name : "a syscall");
	free(name);
}

static int sandbox_allow(scmp_filter_ctx ctx, const int *list)
{
	for (; *list != SANDBOX_LIST_END; list++) {
		int ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, *list, 0);

		if (ret < 0) {
			sandbox_log_rule(ret, *list);
			return -1;
		}
	}
	return 0;
}

static int sandbox_rules(scmp_filter_ctx ctx, const int *const *lists, size_t nlists)
{
	int ret;

	if (sandbox_allow(ctx, base_syscalls) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(base_arg_rules) / sizeof(base_arg_rules[0]); i++) {
		ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, base_arg_rules[i].nr, 1, base_arg_rules[i].cmp);
		if (ret < 0) {
			sandbox_log_rule(ret, base_arg_rules[i].nr);
			return -1;
		}
	}
	/*
	 * SIGKILL to ourselves: nothing a process could not do by exiting, and
	 * how the fault shim (tests/fault) cuts the power mid-write.
	 */
	ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(kill), 2,
			       (struct scmp_arg_cmp){ 0, SCMP_CMP_EQ, (scmp_datum_t)getpid(), 0 },
			       (struct scmp_arg_cmp){ 1, SCMP_CMP_EQ, SIGKILL, 0 });
	if (ret < 0) {
		sandbox_log_rule(ret, SCMP_SYS(kill));
		return -1;
	}
	/* clone3's flags are in memory a filter cannot read: ENOSYS makes glibc use clone. */
	ret = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	if (ret < 0) {
		sandbox_log_rule(ret, SCMP_SYS(clone3));
		return -1;
	}
	for (size_t i = 0; i < nlists; i++) {
		if (lists[i] && sandbox_allow(ctx, lists[i]) < 0)
			return -1;
	}
	/* Every thread, so a worker started before us cannot escape it. */
	ret = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	if (ret < 0) {
		log_errno(LOG_ERR, -ret, "seccomp: thread synchronization");
		return -1;
	}
	return 0;
}

int sandbox_install(enum sandbox_action action, const int *const *lists, size_t nlists)
{
	scmp_filter_ctx ctx;
	int ret;

	if (action == SANDBOX_NONE)
		return 0;
	ctx = seccomp_init(action == SANDBOX_LOG ? SCMP_ACT_LOG : SCMP_ACT_KILL_PROCESS);
	if (!ctx) {
		log_err("seccomp: cannot create a filter (no seccomp() here?); --seccomp action=none runs without");
		return -1;
	}
	if (sandbox_rules(ctx, lists, nlists) < 0) {
		seccomp_release(ctx);
		return -1;
	}
	ret = seccomp_load(ctx);
	seccomp_release(ctx);
	if (ret < 0) {
		log_errno(LOG_ERR, -ret, "seccomp: cannot install the filter (--seccomp action=none runs without)");
		return -1;
	}
	log_debug("seccomp: filter installed, action %s", action == SANDBOX_LOG ? "log" : "kill");
	return 0;
}
