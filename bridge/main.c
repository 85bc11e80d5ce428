/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vtpm-bridge: one libtpms TPM served through the fronts the command line
 * names.  Start-up does only what must come before the channels listen:
 * libvirt gives the ctrl socket one second to appear.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <malloc.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "core.h"
#include "file-replace.h"
#include "front.h"
#include "instance-cmd.h"
#include "instance.h"
#include "log.h"
#include "loop.h"
#include "notify.h"
#include "sandbox.h"
#include "state.h"
#include "state-cmd.h"
#include "tpm.h"

#define VTPM_BRIDGE_VERSION "0.1.0"

struct daemon {
	struct cli_config cfg;
	int exit_status;
	struct state_store *state;
	/* --key and --migration-key: read after --runas, wiped at exit; len 0 until then or without. */
	struct state_key state_key, migration_key;
	struct emu *emu;
	struct loop *loop;
	struct core *core;
	/* Every configured front, opened in this order (a combined mode may name several). */
	struct front *fronts[3];
	const struct front_ops *front_ops[3];
	size_t nfronts;
	size_t nready;			/* fronts that said they serve */
	bool started;			/* every front opened, --runas done */
	bool ready;
	int ready_fd;			/* -d: tells the starting process we are ready */
	struct loop_watch signals;
	/* Ours to remove at exit: a refused start leaves another instance's file alone. */
	bool pid_file_written;
	struct notify notify;		/* $NOTIFY_SOCKET (systemd's Type=notify), if set */
	/* `vtpm-bridge run NAME`: the instance and its published record; else a plain command line. */
	bool instance;
	struct instance_run run;
	struct instance_record record;
	bool published;
	/* An instance is ready once udev gave its nodes their links and modes too (bounded). */
	struct loop_watch udev_timer;
	unsigned int udev_waited_ms;
	bool udev_done;
};

#define UDEV_POLL_MSEC		20
#define UDEV_WAIT_MSEC		5000

static void daemon_quit(void *arg)
{
	struct daemon *d = arg;

	loop_quit(d->loop);
}

static void daemon_fatal(void *arg)
{
	struct daemon *d = arg;

	d->exit_status = 1;
	loop_quit(d->loop);
}

static void daemon_signal(struct loop_watch *watch, uint32_t events)
{
	struct daemon *d = (struct daemon *)((char *)watch - offsetof(struct daemon, signals));
	struct signalfd_siginfo si;

	(void)events;
	if (read(watch->fd, &si, sizeof(si)) != sizeof(si))
		return;
	log_info("signal %u: exiting", si.ssi_signo);
	loop_quit(d->loop);
}

/*
 * swtpm's JSON, plus "fronts": what this build serves and this host lets
 * us open now (the socket always; CUSE and vtpm-proxy when their kernel
 * node exists and is read-writable by us; vtpm-proxy also needs
 * CAP_SYS_ADMIN, which only the ioctl tells).
 */
static int print_capabilities(const struct cli_config *cfg)
{
	bool cuse = access("/dev/cuse", R_OK | W_OK) == 0, proxy = access("/dev/vtpmx", R_OK | W_OK) == 0;

	/* The simulator's framing is the socket front's data channel (swtpm: socket and chardev). */
	bool mssim = cfg->mode == CLI_MODE_SOCKET || cfg->mode == CLI_MODE_COMBINED;

	printf("{ \"type\": \"swtpm\", \"features\": [ \"tpm-1.2\", \"tpm-2.0\", \"flags-opt-startup\", "
	       "\"flags-opt-disable-auto-shutdown\", \"ctrl-opt-terminate\", \"cmdarg-seccomp\", \"cmdarg-key-fd\", "
	       "\"cmdarg-pwd-fd\", \"cmdarg-print-states\", "
	       "\"cmdarg-migration\", \"nvram-backend-dir\", \"nvram-backend-file\"%s%s ], "
	       "\"fronts\": [ \"socket\"%s%s ], "
	       "\"version\": \"%s\" }\n",
	       mssim ? ", \"tpm-send-command-header\"" : "",
	       cfg->tpm2 ? ", \"rsa-keysize-1024\", \"rsa-keysize-2048\", \"rsa-keysize-3072\"" : "",
	       cuse ? ", \"cuse\"" : "", proxy ? ", \"vtpm-proxy\"" : "", VTPM_BRIDGE_VERSION);
	return 0;
}

static int state_open(struct daemon *d)
{
	struct state_config sc = {
		.backend = d->cfg.state_backend == CLI_STATE_FILE ? STATE_BACKEND_FILE : STATE_BACKEND_DIR,
		.path = d->cfg.state_path,
		.mode = d->cfg.state_mode,
		.mode_set = d->cfg.state_mode_set,
		.tpm2 = d->cfg.tpm2,
		.durability = d->cfg.durability_sync ? STATE_DURABILITY_SYNC : STATE_DURABILITY_BOUNDED,
		.durability_ms = d->cfg.durability_ms,
		.key = &d->state_key,
		.refuse_damaged = d->cfg.refuse_damaged,
	};
	int ret;

	ret = state_store_open(&d->state, &sc);
	if (ret < 0) {
		log_errno(LOG_ERR, -ret, "--tpmstate %s", d->cfg.state_path);
		return ret;
	}
	return state_store_check(d->state);
}

/*
 * After --runas, as swtpm 0.7.1 reads them: a key file the service user
 * may not read is refused as with swtpm, and remove= unlinks with that
 * user's rights, never root's.  Before the loop runs, so no TPM start can
 * come first.
 */
static int keys_read(struct daemon *d)
{
	const struct {
		const char *opt;
		const struct cli_key *from;
		struct state_key *to;
	} keys[] = {
		{ "--key", &d->cfg.key, &d->state_key },
		{ "--migration-key", &d->cfg.migration_key, &d->migration_key },
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const struct cli_key *k = keys[i].from;
		struct state_key_source src = {
			.opt = keys[i].opt,
			.file = k->file,
			.fd = k->fd,
			.format = k->passphrase ? STATE_KEY_PASSPHRASE : k->binary ? STATE_KEY_BINARY : STATE_KEY_HEX,
			.kdf = k->kdf_sha512 ? STATE_KDF_SHA512 : STATE_KDF_PBKDF2,
			.key_len = k->aes256 ? 32 : 16,
			.remove = k->remove,
		};

		if (k->set && state_key_read(&src, keys[i].to) < 0)
			return -1;
	}
	return 0;
}

/*
 * The allow-list goes on last, when only serving is left: the base list
 * and each open front's own syscalls.
 */
static int sandbox_start(const struct daemon *d)
{
	const int *lists[sizeof(d->front_ops) / sizeof(d->front_ops[0])];

	for (size_t i = 0; i < d->nfronts; i++)
		lists[i] = d->front_ops[i]->syscalls;
	return sandbox_install(d->cfg.seccomp, lists, d->nfronts);
}

static int print_states(struct daemon *d)
{
	struct state_info states[STATE_LINEAR_SLOTS];
	size_t n;
	int ret;

	ret = state_open(d);
	if (ret < 0)
		return ret;
	ret = state_list(d->state, states, &n);
	if (ret < 0) {
		log_errno(LOG_ERR, -ret, "cannot list the states in %s", state_store_name(d->state));
		return ret;
	}
	printf("{ \"type\": \"swtpm\", \"states\": [");
	for (size_t i = 0; i < n; i++)
		printf("%s {\"name\": \"%s\", \"size\": %zu}", i ? "," : "", states[i].name, states[i].size);
	printf(" ] }\n");
	return 0;
}

static int log_open(const struct cli_config *cfg)
{
	/* swtpm's level 1 (also without --log, and for level=0): up to info; 2 and up: debug too. */
	int level = cfg->log_level >= 2 ? LOG_DEBUG : LOG_INFO;
	int fd = STDERR_FILENO;

	/* Any --log drops the default prefix, as in swtpm. */
	if (cfg->log_given)
		log_set_prefix(cfg->log_prefix);
	if (cfg->log_fd >= 0) {
		/* fd= wins over file=, as in swtpm; the parser saw it open for writing. */
		fd = cfg->log_fd;
	} else if (cfg->log_file && !strcmp(cfg->log_file, "-")) {
		/* swtpm's file=-: nothing is logged, errors included */
		log_setup(STDERR_FILENO, -1);
		return 0;
	} else if (cfg->log_file) {
		fd = log_file_open(cfg->log_file, cfg->log_truncate, cfg->runas);
		if (fd == -ESRCH) {
			fprintf(stderr, "vtpm-bridge: --runas: no user '%s'\n", cfg->runas);
			return -1;
		}
		if (fd < 0) {
			fprintf(stderr, "vtpm-bridge: --log: %s: %s\n", cfg->log_file,
				fd == -ELOOP ? "is a symbolic link (not followed)" : strerror(-fd));
			return -1;
		}
	}
	log_setup(fd, level);
	return 0;
}

/*
 * An existing pid file is written in place, in one write(), as swtpm does:
 * swtpm_setup creates the file itself and watches its own descriptor of
 * it, so a rename over it would never be seen.  A new one appears whole,
 * through a rename: managers poll for the file and read it at once
 * (Proxmox, GnuTLS's tests), and must never read it empty.
 */
static int pid_file_write(const char *path, const char *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC);

	if (fd >= 0) {
		int err = write(fd, buf, len) == (ssize_t)len ? 0 : errno ? errno : EIO;

		close(fd);
		return -err;
	}
	if (errno != ENOENT)
		return -errno;
	return file_replace(path, buf, len, 0644, false);
}

static int pid_write(struct daemon *d, pid_t pid)
{
	char buf[32];
	int len = snprintf(buf, sizeof(buf), "%d\n", (int)pid);
	int ret = 0;

	if (d->cfg.pid_fd >= 0)
		ret = write(d->cfg.pid_fd, buf, (size_t)len) == len ? 0 : errno ? -errno : -EIO;
	else if (d->cfg.pid_file)
		ret = pid_file_write(d->cfg.pid_file, buf, (size_t)len);
	if (ret < 0)
		log_errno(LOG_ERR, -ret, "--pid %s", d->cfg.pid_file ? d->cfg.pid_file : "fd");
	d->pid_file_written = ret == 0 && d->cfg.pid_file;
	return ret < 0 ? -1 : 0;
}

static int drop_privileges(const char *user)
{
	struct passwd *pw = getpwnam(user);

	if (!pw) {
		log_err("--runas: no user '%s'", user);
		return -1;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
		log_errno(LOG_ERR, errno, "--runas %s", user);
		return -1;
	}
	return 0;
}

/*
 * -d: the starting process waits until the daemon is ready (channels
 * listening, devices made by the kernel, pid file written) and exits 0, or
 * with the daemon's status if it ends first, as swtpm's.  Forking before
 * anything starts keeps threads and the kernel's device registration in
 * the one process that serves, and lets start-up errors reach the
 * caller's stderr.
 */
static int daemonize(struct daemon *d)
{
	int pipefd[2];
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		log_errno(LOG_ERR, errno, "pipe");
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		log_errno(LOG_ERR, errno, "fork");
		close(pipefd[0]);
		close(pipefd[1]);
		return -1;
	}
	if (pid > 0) {
		int status;
		ssize_t n;
		char c;

		close(pipefd[1]);
		do
			n = read(pipefd[0], &c, 1);
		while (n < 0 && errno == EINTR);
		if (n == 1)
			_exit(0);
		while (waitpid(pid, &status, 0) < 0) {
			if (errno != EINTR)
				_exit(1);
		}
		_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
	}
	close(pipefd[0]);
	d->ready_fd = pipefd[1];
	setsid();
	return 0;
}

/* -d, once ready: the starting process may go, and the terminal is no longer ours. */
static void detach(struct daemon *d)
{
	int null;

	if (write(d->ready_fd, "", 1) != 1)
		log_errno(LOG_WARNING, errno, "telling the starting process");
	close(d->ready_fd);
	d->ready_fd = -1;
	/* As a daemon should, and swtpm's does; every path we use was made absolute at start. */
	if (chdir("/") < 0)
		log_errno(LOG_WARNING, errno, "chdir /");
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0)
		return;
	/* As swtpm's: whoever started us may wait for EOF on these. */
	dup2(null, STDIN_FILENO);
	dup2(null, STDOUT_FILENO);
	if (d->cfg.log_fd != STDERR_FILENO) {
		if (!d->cfg.log_file && d->cfg.log_fd < 0)
			log_setup(-1, log_level());
		dup2(null, STDERR_FILENO);
	}
	close(null);
}

static void daemon_check_ready(struct daemon *d);

static void daemon_udev_poll(struct loop_watch *timer, uint32_t events)
{
	struct daemon *d = (struct daemon *)((char *)timer - offsetof(struct daemon, udev_timer));
	uint64_t expirations;
	bool done;

	(void)events;
	if (read(timer->fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		log_errno(LOG_WARNING, errno, "timerfd");
	d->udev_waited_ms += UDEV_POLL_MSEC;
	done = instance_udev_done(&d->record);
	if (!done && d->udev_waited_ms < UDEV_WAIT_MSEC) {
		loop_timer_arm(&d->udev_timer, UDEV_POLL_MSEC);
		return;
	}
	if (!done)
		log_warn("udev did not handle the nodes within %u ms (are the vtpm-bridge rules installed?): "
			    "ready without their links", UDEV_WAIT_MSEC);
	d->udev_done = true;
	daemon_check_ready(d);
}

/*
 * An instance's nodes are named by udev's rule (the links a consumer
 * uses): readiness waits for udev too, polled, for at most UDEV_WAIT_MSEC.
 * False while waiting.
 */
static bool daemon_udev_ready(struct daemon *d)
{
	if (!d->instance || d->udev_done)
		return true;
	if (instance_udev_done(&d->record)) {
		d->udev_done = true;
		return true;
	}
	if (d->udev_timer.fd < 0 && loop_timer_create(d->loop, &d->udev_timer, daemon_udev_poll) < 0) {
		log_warn("cannot wait for udev: ready without it");
		d->udev_done = true;
		return true;
	}
	loop_timer_arm(&d->udev_timer, UDEV_POLL_MSEC);
	return false;
}

/* Every front serves and the start-up is done: pid file, then whoever waits for us. */
static void daemon_check_ready(struct daemon *d)
{
	if (d->ready || !d->started || d->nready < d->nfronts || !daemon_udev_ready(d))
		return;
	d->ready = true;
	if (pid_write(d, getpid()) < 0) {
		daemon_fatal(d);
		return;
	}
	if (d->ready_fd >= 0)
		detach(d);
	if (d->instance)
		instance_write_ready(&d->record, d->run.dirs.run);
	notify_send(&d->notify, "READY=1");
	log_info("ready: serving a TPM %s from %s", d->cfg.tpm2 ? "2.0" : "1.2", state_store_name(d->state));
}

/*
 * A front named a node it is having made.  An instance publishes it at
 * once, before the kernel's uevent can reach udev's rule (front.h), while
 * still root: the CDI directory is root's.
 */
static void daemon_node_made(void *arg, const char *node)
{
	struct daemon *d = arg;
	char *slot = !strncmp(node, "tpmrm", 5) ? d->record.tpmrm :
		     !strncmp(node, "tpm", 3) ? d->record.tpm : d->record.cuse;

	if (!d->instance)
		return;
	snprintf(slot, INSTANCE_NODE_MAX, "%s", node);
	if (instance_write_record(&d->record, d->run.dirs.run) < 0 ||
	    instance_write_cdi(&d->record, d->run.dirs.cdi) < 0)
		daemon_fatal(d);
	else
		d->published = true;
}

static void daemon_front_ready(void *arg)
{
	struct daemon *d = arg;

	d->nready++;
	daemon_check_ready(d);
}

static int signals_setup(struct daemon *d)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	/* Blocked before any thread starts, so only the loop sees them. */
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	d->signals.fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (d->signals.fd < 0)
		return -errno;
	d->signals.fn = daemon_signal;
	return loop_watch(d->loop, &d->signals, EPOLLIN);
}

static int daemon_run(struct daemon *d)
{
	struct emu_config ec = {
		.tpm2 = d->cfg.tpm2,
		.defer_lock = d->cfg.migration_incoming,
		.release_lock_outgoing = d->cfg.release_lock_outgoing,
		.auto_shutdown = !d->cfg.disable_auto_shutdown,
		.state_key = &d->state_key,
		.migration_key = &d->migration_key,
	};
	struct core_config cc = {
		.reject_locality_4 = d->cfg.reject_locality_4,
		.on_shutdown = daemon_quit,
		.shutdown_arg = d,
		.on_fatal = daemon_fatal,
		.fatal_arg = d,
	};
	struct front_env env = {
		.cfg = &d->cfg, .quit = daemon_quit, .fatal = daemon_fatal, .ready = daemon_front_ready,
		.made = daemon_node_made, .arg = d,
	};
	int ret;

	if (d->cfg.daemon && daemonize(d) < 0)
		return 1;
	if (notify_open(&d->notify) < 0)
		return 1;
	/* What can be checked without libtpms fails the start here, naming the file. */
	if (state_open(d) < 0 || state_check_integrity(d->state) < 0)
		return 1;
	ec.state = d->state;
	if (emu_create(&d->emu, &ec) < 0 || loop_create(&d->loop) < 0)
		return 1;
	if (signals_setup(d) < 0) {
		log_errno(LOG_ERR, errno, "signals");
		return 1;
	}
	if (core_create(&d->core, d->loop, d->emu, &cc) < 0 ||
	    core_start(d->core, d->cfg.not_need_init, d->cfg.startup) < 0) {
		log_err("cannot create the TPM core");
		return 1;
	}
	/*
	 * With not-need-init the TPM is this process's from the start: a state
	 * dir in use fails it now, before anything listens.  (libtpms itself
	 * loads when the TPM is first used.)
	 */
	if (d->cfg.not_need_init && !d->cfg.migration_incoming) {
		ret = state_lock(d->state);
		if (ret == -EAGAIN)
			log_err("cannot start the TPM: %s is in use by another process "
				"(swtpm or vtpm-bridge)", state_store_name(d->state));
		else if (ret < 0)
			log_err("cannot start the TPM from %s", state_store_name(d->state));
		if (ret < 0)
			return 1;
	}
	env.loop = d->loop;
	env.core = d->core;
	if (d->cfg.ctrl.set || d->cfg.server.set)
		d->front_ops[d->nfronts++] = &socket_front_ops;
	if (d->cfg.cuse.set)
		d->front_ops[d->nfronts++] = &cuse_front_ops;
	if (d->cfg.vtpm_proxy)
		d->front_ops[d->nfronts++] = &proxy_front_ops;
	/* Opened as root; a front may be ready now or, from the loop, later. */
	for (size_t i = 0; i < d->nfronts; i++) {
		ret = d->front_ops[i]->open(&d->fronts[i], &env);
		if (ret < 0 || d->exit_status)
			return 1;
	}
	/* An instance of sockets only is published here: no front made a node. */
	if (d->instance && !d->published) {
		if (instance_write_record(&d->record, d->run.dirs.run) < 0)
			return 1;
		d->published = true;
	}
	if (d->cfg.runas && drop_privileges(d->cfg.runas) < 0)
		return 1;
	if (keys_read(d) < 0 || state_check_key(d->state) < 0 || sandbox_start(d) < 0)
		return 1;
	d->started = true;
	daemon_check_ready(d);
	if (d->exit_status)
		return d->exit_status;
	ret = loop_run(d->loop);
	if (ret < 0) {
		log_errno(LOG_ERR, -ret, "event loop");
		return 1;
	}
	return d->exit_status;
}

static void daemon_cleanup(struct daemon *d)
{
	notify_send(&d->notify, "STOPPING=1");
	if (d->core)
		core_stop_tpm(d->core);
	for (size_t i = d->nfronts; i-- > 0;) {
		if (d->fronts[i])
			d->front_ops[i]->close(d->fronts[i]);
	}
	core_destroy(d->core);
	emu_destroy(d->emu);
	if (d->signals.fd > 0)
		close(d->signals.fd);
	if (d->udev_timer.fd >= 0)
		loop_timer_destroy(d->loop, &d->udev_timer);
	loop_destroy(d->loop);
	state_store_close(d->state);
	state_key_wipe(&d->state_key);
	state_key_wipe(&d->migration_key);
	if (d->pid_file_written)
		unlink(d->cfg.pid_file);
	/* After --runas the record and the spec are not ours to remove: udev's rule and the unit's `cleanup` do it. */
	if (d->published)
		instance_unpublish(d->record.name, d->run.dirs.run, d->run.dirs.cdi);
	notify_close(&d->notify);
}

/* The daemon, from a command line or an instance's conf: the process's exit status. */
static int serve(struct daemon *d, int argc, char **argv)
{
	int rc;

	if (cli_parse(argc, argv, &d->cfg) < 0) {
		cli_free(&d->cfg);
		return 1;
	}
	switch (d->cfg.action) {
	case CLI_HELP:
		cli_usage("vtpm-bridge");
		rc = 0;
		break;
	case CLI_VERSION:
		printf("vtpm-bridge %s (libtpms %s)\n", VTPM_BRIDGE_VERSION, emu_libtpms_version());
		rc = 0;
		break;
	case CLI_PRINT_CAPABILITIES:
		rc = print_capabilities(&d->cfg);
		break;
	case CLI_PRINT_STATES:
		rc = log_open(&d->cfg) < 0 || print_states(d) < 0 ? 1 : 0;
		state_store_close(d->state);
		break;
	default:
		if (log_open(&d->cfg) < 0 || (d->instance && instance_run_dirs(&d->run) < 0))
			rc = 1;
		else
			rc = daemon_run(d);
		daemon_cleanup(d);
		break;
	}
	cli_free(&d->cfg);
	return rc;
}

/* `vtpm-bridge run NAME`: the instance's conf, checked whole before anything is made. */
static int serve_instance(struct daemon *d, int argc, char **argv)
{
	int rc = instance_run_prepare(&d->run, argc, argv);

	if (rc == 0) {
		d->instance = true;
		instance_record_init(&d->record, &d->run.conf);
		rc = serve(d, d->run.argc, d->run.argv);
	}
	instance_run_free(&d->run);
	return rc < 0 ? 0 : rc;
}

int main(int argc, char **argv)
{
	struct daemon d = { .signals.fd = -1, .ready_fd = -1, .notify.fd = -1, .udev_timer.fd = -1 };

	/* One malloc arena: the worker's would hold its own dirty pages per instance. */
	mallopt(M_ARENA_MAX, 1);
	if (argc >= 2 && !strcmp(argv[1], "state"))
		return state_cmd_main(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "run"))
		return serve_instance(&d, argc - 1, argv + 1);
	if (argc >= 2 && instance_cmd_is(argv[1]))
		return instance_cmd_main(argc - 1, argv + 1);
	return serve(&d, argc, argv);
}
