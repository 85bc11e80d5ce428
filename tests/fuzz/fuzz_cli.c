/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for the command line (bridge/cli.c): the input is the
 * arguments after argv[0], separated by NUL bytes (at most FUZZ_MAX_ARGS).
 * Each command line is parsed twice, with a fresh struct cli_config each
 * time, and must parse the same way both times (getopt's hidden state must
 * not carry over).  What cli.h promises is checked: only 0 or -1; no
 * string of a parsed configuration is in the caller's argv (cfg owns its
 * copy); what is to run has an absolute state path and a front.
 *
 * cli_parse looks at descriptors given as fd=N (fstat, getsockopt, fcntl
 * F_GETFL) but never closes or duplicates them; so that its socket checks
 * are reached, fds FUZZ_FD_LISTEN.. hold the kinds of socket it tells
 * apart (the seeds name them).  It prints one line to stderr per refused
 * command line: the target closes stderr for the parser (-close_fd_mask=2
 * unless given otherwise); libFuzzer's and the sanitizers' reports still
 * come out.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "fuzz.h"

#define FUZZ_MAX_ARGS	64
/* listening, a connected pair (+1, +2), a datagram socket (+3), a stream socket neither listening nor connected (+4) */
#define FUZZ_FD_LISTEN	100

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_socket_at(int fd, int target)
{
	if (fd < 0 || dup2(fd, target) < 0)
		abort();
	close(fd);
}

/* The sockets, at fixed numbers; the listener autobinds to an abstract name (nothing in the file system). */
static void fuzz_sockets(void)
{
	int pair[2], listener = socket(AF_UNIX, SOCK_STREAM, 0);
	sa_family_t unix_family = AF_UNIX;

	if (listener < 0 || bind(listener, (const struct sockaddr *)&unix_family, sizeof(unix_family)) < 0 ||
	    listen(listener, 1) < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, pair) < 0)
		abort();
	fuzz_socket_at(listener, FUZZ_FD_LISTEN);
	fuzz_socket_at(pair[0], FUZZ_FD_LISTEN + 1);
	fuzz_socket_at(pair[1], FUZZ_FD_LISTEN + 2);
	fuzz_socket_at(socket(AF_UNIX, SOCK_DGRAM, 0), FUZZ_FD_LISTEN + 3);
	fuzz_socket_at(socket(AF_UNIX, SOCK_STREAM, 0), FUZZ_FD_LISTEN + 4);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* Fixed, so that a run repeats: a relative TPM_PATH (made absolute) and a TPM_PORT with junk after its digits. */
	setenv("TPM_PATH", "fuzz-state", 1);
	setenv("TPM_PORT", "2321x", 1);
	fuzz_sockets();
	fuzz_close_stderr(argc, argv);
	return 0;
}

/* s is live (ASan checks the strlen) and not in the caller's argv, which cfg must not need. */
static void fuzz_check_owned(const char *s, const char *argv_buf, size_t argv_len)
{
	if (s && s >= argv_buf && s + strlen(s) <= argv_buf + argv_len)
		abort();
}

static void fuzz_check_config(const struct cli_config *cfg, const char *argv_buf, size_t argv_len)
{
	const char *strings[] = {
		cfg->state_path, cfg->ctrl.path, cfg->ctrl.bindaddr, cfg->server.path, cfg->server.bindaddr,
		cfg->cuse.name, cfg->pid_file, cfg->log_file, cfg->log_prefix, cfg->runas,
		cfg->key.file, cfg->migration_key.file,
	};

	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
		fuzz_check_owned(strings[i], argv_buf, argv_len);
	if (cfg->action != CLI_RUN)
		return;
	if (!cfg->state_path || cfg->state_path[0] != '/' || (cfg->pid_file && cfg->pid_file[0] != '/'))
		abort();
	if (!cfg->ctrl.set && !cfg->server.set && !cfg->cuse.set && !cfg->vtpm_proxy)
		abort();
	if ((cfg->mode == CLI_MODE_CUSE && !cfg->cuse.set) || (cfg->mode == CLI_MODE_CHARDEV && !cfg->vtpm_proxy))
		abort();
	if (cfg->cuse.set && (!cfg->cuse.name[0] || strstr(cfg->cuse.name, "..")))
		abort();
	if (cfg->vtpm_proxy && !cfg->not_need_init)
		abort();
}

static int fuzz_parse(int argc, char **argv, const char *argv_buf, size_t argv_len, struct cli_config *cfg)
{
	int ret = cli_parse(argc, argv, cfg);

	if (ret != 0 && ret != -1)
		abort();
	if (ret == 0)
		fuzz_check_config(cfg, argv_buf, argv_len);
	return ret;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *argv[FUZZ_MAX_ARGS + 2] = { "vtpm-bridge" };
	struct cli_config first, again;
	int argc = 1, ret;

	if (!buf)
		abort();
	memcpy(buf, data, size);
	buf[size] = '\0';
	for (size_t off = 0; off < size && argc <= FUZZ_MAX_ARGS; off += strlen(buf + off) + 1)
		argv[argc++] = buf + off;
	argv[argc] = NULL;

	ret = fuzz_parse(argc, argv, buf, size, &first);
	if (fuzz_parse(argc, argv, buf, size, &again) != ret ||
	    (ret == 0 && (again.action != first.action || again.mode != first.mode || again.tpm2 != first.tpm2 ||
			  again.daemon != first.daemon || again.terminate != first.terminate)))
		abort();
	cli_free(&again);
	cli_free(&first);
	free(buf);
	return 0;
}
