/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for instance definitions (bridge/conf.c): the input is
 * a conf file's bytes, parsed as instance "fuzz".  What conf.h promises is
 * checked: 0 or -1 only; after 0 the conf has a front, and conf_argv()
 * gives a command line that the daemon's own parser (cli_parse) accepts,
 * with the conf's fronts, TPM version, state directory and user.  A conf
 * that passes but whose daemon could not start is a bug of conf.c.  The
 * input's first line is also tried as an instance name: an accepted one
 * must follow the rules conf.h states.
 *
 * Both parsers print one line to stderr per refused input: the target
 * closes stderr for them (-close_fd_mask=2 unless given otherwise);
 * libFuzzer's and the sanitizers' reports still come out.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "conf.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* The daemon's --server would take a port from here: a conf must not depend on it. */
	unsetenv("TPM_PORT");
	unsetenv("TPM_PATH");
	fuzz_close_stderr(argc, argv);
	return 0;
}

static void fuzz_check_name(const uint8_t *data, size_t size)
{
	const uint8_t *newline = memchr(data, '\n', size);
	size_t len = newline ? (size_t)(newline - data) : size;
	char *name = malloc(len + 1);

	if (!name)
		abort();
	memcpy(name, data, len);
	name[len] = '\0';
	if (conf_name_check(name, "fuzz") == 0) {
		size_t n = strlen(name);

		if (!n || n > CONF_NAME_MAX || !strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
						     name[0]) ||
		    strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") != n ||
		    strstr(name, "..") || (n >= 3 && !strcmp(name + n - 3, "-rm")))
			abort();
	}
	free(name);
}

/* The daemon's parser must take what conf_argv() makes of an accepted conf, and read it back the same. */
static void fuzz_check_argv(const struct conf *c)
{
	char **argv = conf_argv(c, "/run/vtpm-bridge");
	struct cli_config cfg;
	int argc;

	if (!argv || strcmp(argv[0], "vtpm-bridge"))
		abort();
	for (argc = 0; argv[argc]; argc++)
		;
	if (cli_parse(argc, argv, &cfg) != 0)
		abort();
	if (cfg.action != CLI_RUN || cfg.mode != CLI_MODE_COMBINED || cfg.tpm2 != c->tpm2 ||
	    cfg.state_backend != CLI_STATE_DIR || strcmp(cfg.state_path, c->state_dir) ||
	    cfg.vtpm_proxy != !!(c->fronts & CONF_FRONT_VTPM_PROXY) ||
	    cfg.cuse.set != !!(c->fronts & CONF_FRONT_CUSE) ||
	    cfg.ctrl.set != !!(c->fronts & CONF_FRONT_SOCKET) ||
	    cfg.server.set != (c->fronts & CONF_FRONT_SOCKET && !(c->server && !strcmp(c->server, "none"))) ||
	    (cfg.runas ? strcmp(cfg.runas, c->user) : strcmp(c->user, "root")) ||
	    cfg.log_level != (int)c->log_level ||
	    cfg.key.set != !!c->key || cfg.migration_key.set != !!c->migration_key)
		abort();
	/* no descriptor comes from a conf */
	if (cfg.ctrl.fd >= 0 || cfg.ctrl.clientfd >= 0 || cfg.server.fd >= 0 || cfg.key.fd >= 0 ||
	    cfg.migration_key.fd >= 0)
		abort();
	cli_free(&cfg);
	conf_argv_free(argv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf c;
	int ret;

	fuzz_check_name(data, size);
	ret = conf_parse(&c, "fuzz", "fuzz.conf", (const char *)data, size);
	if (ret != 0 && ret != -1)
		abort();
	if (ret == 0) {
		if (!c.fronts || strcmp(c.name, "fuzz") || !c.state_dir || !c.user || !c.owner || !c.group ||
		    c.mode > 0777)
			abort();
		fuzz_check_argv(&c);
	}
	conf_free(&c);
	conf_free(&c);
	return 0;
}
