/* SPDX-License-Identifier: BSD-3-Clause */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tpm.h"

enum {
	OPT_TPM2 = 256,
	OPT_TPMSTATE,
	OPT_CTRL,
	OPT_SERVER,
	OPT_FLAGS,
	OPT_PID,
	OPT_LOG,
	OPT_LOCALITY,
	OPT_PRINT_CAPABILITIES,
	OPT_PRINT_STATES,
	OPT_VERSION,
	OPT_MIGRATION,
	OPT_MAJOR,
	OPT_MINOR,
	OPT_CUSE,
	OPT_VTPM_PROXY,
	OPT_CHARDEV,
	OPT_UNSUPPORTED,
};

static const struct option cli_options[] = {
	{ "tpm2", no_argument, NULL, OPT_TPM2 },
	{ "tpmstate", required_argument, NULL, OPT_TPMSTATE },
	{ "ctrl", required_argument, NULL, OPT_CTRL },
	{ "server", required_argument, NULL, OPT_SERVER },
	{ "port", required_argument, NULL, 'p' },
	{ "flags", required_argument, NULL, OPT_FLAGS },
	{ "pid", required_argument, NULL, OPT_PID },
	{ "log", required_argument, NULL, OPT_LOG },
	{ "terminate", no_argument, NULL, 't' },
	{ "daemon", no_argument, NULL, 'd' },
	{ "locality", required_argument, NULL, OPT_LOCALITY },
	{ "runas", required_argument, NULL, 'r' },
	{ "migration", required_argument, NULL, OPT_MIGRATION },
	{ "print-capabilities", no_argument, NULL, OPT_PRINT_CAPABILITIES },
	{ "print-states", no_argument, NULL, OPT_PRINT_STATES },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "help", no_argument, NULL, 'h' },
	/* cuse: -n/--name, -M/--maj, -m/--min, -f/--foreground */
	{ "name", required_argument, NULL, 'n' },
	{ "maj", required_argument, NULL, OPT_MAJOR },
	{ "min", required_argument, NULL, OPT_MINOR },
	{ "foreground", no_argument, NULL, 'f' },
	/* chardev --vtpm-proxy; and the fronts of a combined process */
	{ "vtpm-proxy", no_argument, NULL, OPT_VTPM_PROXY },
	{ "cuse", required_argument, NULL, OPT_CUSE },
	{ "chardev", required_argument, NULL, OPT_CHARDEV },
	{ "fd", required_argument, NULL, OPT_CHARDEV },
	/* Later issues add these; until then they are refused by name. */
	{ "key", required_argument, NULL, OPT_UNSUPPORTED },
	{ "migration-key", required_argument, NULL, OPT_UNSUPPORTED },
	{ "seccomp", required_argument, NULL, OPT_UNSUPPORTED },
	{ "profile", required_argument, NULL, OPT_UNSUPPORTED },
	{ NULL, 0, NULL, 0 },
};

static int cli_error(const char *opt, const char *fmt, const char *what)
{
	fprintf(stderr, "vtpm-bridge: %s: ", opt);
	fprintf(stderr, fmt, what);
	fputc('\n', stderr);
	return -1;
}

/* A whole unsigned number in [0, max], in `base`; no sign, no blanks, no trailing junk. */
static int cli_number(const char *s, int base, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (!*s || *s == '-' || *s == '+' || *s == ' ')
		return -1;
	errno = 0;
	v = strtoul(s, &end, base);
	if (errno || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Splits the next "key[=value]" off a comma list, in place. */
static bool cli_next_kv(char **list, char **key, char **value)
{
	char *s = *list, *comma, *eq;

	if (!s || !*s)
		return false;
	comma = strchr(s, ',');
	if (comma) {
		*comma = '\0';
		*list = comma + 1;
	} else {
		*list = NULL;
	}
	eq = strchr(s, '=');
	if (eq)
		*eq++ = '\0';
	*key = s;
	*value = eq;
	return true;
}

static int cli_fd(const char *opt, const char *value, int *fd)
{
	unsigned long v;

	if (!value || cli_number(value, 10, INT_MAX, &v) < 0)
		return cli_error(opt, "'%s' is not a file descriptor number", value ? value : "");
	*fd = (int)v;
	return 0;
}

static int cli_mode(const char *opt, const char *value, mode_t *mode, bool *set)
{
	unsigned long v;

	if (!value || cli_number(value, 8, 07777, &v) < 0)
		return cli_error(opt, "mode '%s' is not an octal file mode", value ? value : "");
	*mode = (mode_t)v;
	*set = true;
	return 0;
}

static int cli_endpoint(const char *opt, char *list, struct cli_endpoint *ep, bool is_ctrl)
{
	char *key, *value;
	unsigned long v;

	bool type_set = false;

	ep->set = true;
	ep->fd = ep->clientfd = -1;
	while (cli_next_kv(&list, &key, &value)) {
		if (!strcmp(key, "type") && value && (!strcmp(value, "tcp") || !strcmp(value, "unixio"))) {
			ep->tcp = !strcmp(value, "tcp");
			type_set = true;
		} else if (!strcmp(key, "path") && value && *value) {
			ep->path = value;
		} else if (!strcmp(key, "port") && value) {
			if (cli_number(value, 10, 65535, &v) < 0 || v == 0)
				return cli_error(opt, "port '%s' is not a port number", value);
			ep->port = (uint16_t)v;
			ep->port_set = true;
		} else if (!strcmp(key, "bindaddr") && value && *value) {
			ep->bindaddr = value;
		} else if (!strcmp(key, "fd")) {
			if (cli_fd(opt, value, &ep->fd) < 0)
				return -1;
		} else if (!strcmp(key, "clientfd") && is_ctrl) {
			if (cli_fd(opt, value, &ep->clientfd) < 0)
				return -1;
		} else if (!strcmp(key, "mode")) {
			if (cli_mode(opt, value, &ep->mode, &ep->mode_set) < 0)
				return -1;
		} else if (!strcmp(key, "uid") && value) {
			if (cli_number(value, 10, INT_MAX, &v) < 0)
				return cli_error(opt, "uid '%s' is not a number", value);
			ep->uid = (uid_t)v;
			ep->uid_set = true;
		} else if (!strcmp(key, "gid") && value) {
			if (cli_number(value, 10, INT_MAX, &v) < 0)
				return cli_error(opt, "gid '%s' is not a number", value);
			ep->gid = (gid_t)v;
			ep->gid_set = true;
		} else if (!strcmp(key, "terminate") && is_ctrl && !value) {
			ep->terminate = true;
		} else if (!strcmp(key, "disconnect") && !is_ctrl && !value) {
			ep->disconnect = true;
		} else {
			return cli_error(opt, "unknown or malformed parameter '%s'", key);
		}
	}
	/* swtpm's --server is TCP unless type= says otherwise; a path= can only mean unixio. */
	if (!is_ctrl && !type_set && !ep->path)
		ep->tcp = true;
	/* type=tcp without port= or fd=: swtpm takes the leading digits of $TPM_PORT. */
	if (!is_ctrl && ep->tcp && !ep->port_set && ep->fd < 0 && getenv("TPM_PORT")) {
		const char *env = getenv("TPM_PORT");
		char digits[8];
		size_t n = strspn(env, "0123456789");

		if (n > 0 && n < sizeof(digits)) {
			memcpy(digits, env, n);
			digits[n] = '\0';
			if (cli_number(digits, 10, 65535, &v) == 0 && v) {
				ep->port = (uint16_t)v;
				ep->port_set = true;
			}
		}
	}
	if (ep->clientfd >= 0 && ep->tcp)
		return cli_error(opt, "%s", "clientfd= needs type=unixio");
	if (ep->fd < 0 && ep->clientfd < 0) {
		if (ep->tcp && !ep->port_set)
			return cli_error(opt, "%s", is_ctrl ? "type=tcp needs port= or fd="
							     : "type=tcp needs port=, fd= or $TPM_PORT");
		if (!ep->tcp && !ep->path)
			return cli_error(opt, "%s", "type=unixio needs path=, fd= or clientfd=");
	}
	return 0;
}

static int cli_tpmstate(char *list, struct cli_config *cfg)
{
	char *key, *value;

	while (cli_next_kv(&list, &key, &value)) {
		if (!strcmp(key, "dir") && value && *value) {
			cfg->state_backend = CLI_STATE_DIR;
			cfg->state_path = value;
		} else if (!strcmp(key, "backend-uri") && value && !strncmp(value, "dir://", 6) && value[6]) {
			cfg->state_backend = CLI_STATE_DIR;
			cfg->state_path = value + 6;
		} else if (!strcmp(key, "backend-uri") && value && !strncmp(value, "file://", 7) && value[7]) {
			cfg->state_backend = CLI_STATE_FILE;
			cfg->state_path = value + 7;
		} else if (!strcmp(key, "backend-uri")) {
			return cli_error("--tpmstate", "backend-uri '%s' is not supported (dir:// or file://)",
					 value ? value : "");
		} else if (!strcmp(key, "mode")) {
			if (cli_mode("--tpmstate", value, &cfg->state_mode, &cfg->state_mode_set) < 0)
				return -1;
		} else {
			return cli_error("--tpmstate", "unknown or malformed parameter '%s'", key);
		}
	}
	return 0;
}

static int cli_flags(char *list, struct cli_config *cfg)
{
	static const struct { const char *name; int startup; } startups[] = {
		{ "startup-clear", EMU_STARTUP_CLEAR },
		{ "startup-state", EMU_STARTUP_STATE },
		{ "startup-deactivated", EMU_STARTUP_DEACTIVATED },
		{ "startup-none", CLI_NO_STARTUP },
	};
	char *key, *value;

	while (cli_next_kv(&list, &key, &value)) {
		bool known = false;

		if (value)
			return cli_error("--flags", "'%s' takes no value", key);
		if (!strcmp(key, "not-need-init")) {
			cfg->not_need_init = known = true;
		} else if (!strcmp(key, "disable-auto-shutdown")) {
			cfg->disable_auto_shutdown = known = true;
		}
		for (size_t i = 0; i < sizeof(startups) / sizeof(startups[0]) && !known; i++) {
			if (strcmp(key, startups[i].name))
				continue;
			cfg->startup = startups[i].startup;
			cfg->startup_set = true;
			/* The startup-* flags imply not-need-init, except startup-none. */
			if (cfg->startup != CLI_NO_STARTUP)
				cfg->not_need_init = true;
			known = true;
		}
		if (!known)
			return cli_error("--flags", "unknown flag '%s'", key);
	}
	return 0;
}

static int cli_pid(char *list, struct cli_config *cfg)
{
	char *key, *value;

	while (cli_next_kv(&list, &key, &value)) {
		if (!strcmp(key, "file") && value && *value)
			cfg->pid_file = value;
		else if (!strcmp(key, "fd")) {
			if (cli_fd("--pid", value, &cfg->pid_fd) < 0)
				return -1;
		} else
			return cli_error("--pid", "unknown or malformed parameter '%s'", key);
	}
	if (!cfg->pid_file && cfg->pid_fd < 0)
		return cli_error("--pid", "%s", "needs file= or fd=");
	return 0;
}

static int cli_log(char *list, struct cli_config *cfg)
{
	char *key, *value;
	unsigned long v;

	while (cli_next_kv(&list, &key, &value)) {
		if (!strcmp(key, "file") && value && *value) {
			cfg->log_file = value;
		} else if (!strcmp(key, "fd")) {
			if (cli_fd("--log", value, &cfg->log_fd) < 0)
				return -1;
		} else if (!strcmp(key, "level") && value) {
			if (cli_number(value, 10, 20, &v) < 0)
				return cli_error("--log", "level '%s' is not a number from 0 to 20", value);
			cfg->log_level = (int)v;
		} else if (!strcmp(key, "truncate") && !value) {
			cfg->log_truncate = true;
		} else if (!strcmp(key, "prefix") && value && *value) {
			if (strlen(value) > 256)
				return cli_error("--log", "%s", "prefix= is longer than 256 bytes");
			cfg->log_prefix = value;
		} else {
			return cli_error("--log", "unknown or malformed parameter '%s'", key);
		}
	}
	return 0;
}

/* A list of value-less flags, each setting one bool. */
struct cli_flag {
	const char *name;
	bool *set;
};

static int cli_flag_list(const char *opt, char *list, const struct cli_flag *flags, size_t n)
{
	char *key, *value;

	while (cli_next_kv(&list, &key, &value)) {
		size_t i;

		for (i = 0; i < n && (value || strcmp(key, flags[i].name)); i++)
			;
		if (i == n)
			return cli_error(opt, "unknown parameter '%s'", key);
		*flags[i].set = true;
	}
	return 0;
}

static int cli_locality(char *list, struct cli_config *cfg)
{
	const struct cli_flag flags[] = {
		{ "reject-locality-4", &cfg->reject_locality_4 },
		{ "allow-set-locality", &cfg->allow_set_locality },
	};

	return cli_flag_list("--locality", list, flags, sizeof(flags) / sizeof(flags[0]));
}

static int cli_migration(char *list, struct cli_config *cfg)
{
	const struct cli_flag flags[] = {
		{ "incoming", &cfg->migration_incoming },
		{ "release-lock-outgoing", &cfg->release_lock_outgoing },
	};

	return cli_flag_list("--migration", list, flags, sizeof(flags) / sizeof(flags[0]));
}

static int cli_port(const char *value, struct cli_config *cfg)
{
	unsigned long v;

	if (cli_number(value, 0, 65535, &v) < 0 || v == 0)
		return cli_error("--port", "'%s' is not a port number", value);
	cfg->server = (struct cli_endpoint){ .set = true, .tcp = true, .port = (uint16_t)v,
					     .port_set = true, .fd = -1, .clientfd = -1,
					     .disconnect = true };
	return 0;
}

/* --maj, --min: swtpm takes 0-65535; the kernel's dev_t has 12 bits of major, 20 of minor. */
static int cli_devnum(const char *opt, const char *value, unsigned long max, unsigned int *out, bool *set)
{
	unsigned long v;

	if (cli_number(value, 10, max, &v) < 0)
		return cli_error(opt, "'%s' is not a device number", value);
	*out = (unsigned int)v;
	*set = true;
	return 0;
}

/* -n NAME, --cuse NAME: DEVNAME, /dev/NAME; a '/' makes a subdirectory as in the kernel, ".." is refused. */
static int cli_cuse_name(const char *opt, const char *value, struct cli_config *cfg)
{
	if (!*value || *value == '/' || strstr(value, "..") || strchr(value, '=') ||
	    value[strlen(value) - 1] == '/' || strlen(value) > 200)
		return cli_error(opt, "'%s' is not a device name", value);
	cfg->cuse.name = value;
	cfg->cuse.set = true;
	return 0;
}

static int cli_option(int opt, char *arg, const char *name, struct cli_config *cfg)
{
	switch (opt) {
	case 'n':
	case OPT_CUSE:
		return cli_cuse_name(name, arg, cfg);
	case OPT_VTPM_PROXY:
		cfg->vtpm_proxy = true;
		return 0;
	case OPT_CHARDEV:
	case 'c':
		return cli_error(name, "%s", "(a TPM character device of our own) is not supported: "
				 "use --vtpm-proxy");
	case OPT_MAJOR:
	case 'M':
		return cli_devnum(name, arg, 4095, &cfg->cuse.major, &cfg->cuse.major_set);
	case OPT_MINOR:
	case 'm':
		return cli_devnum(name, arg, (1ul << 20) - 1, &cfg->cuse.minor, &cfg->cuse.minor_set);
	case 'f':
		cfg->daemon = false;
		return 0;
	case OPT_TPM2:
		cfg->tpm2 = true;
		return 0;
	case OPT_TPMSTATE:
		return cli_tpmstate(arg, cfg);
	case OPT_CTRL:
		return cli_endpoint("--ctrl", arg, &cfg->ctrl, true);
	case OPT_SERVER:
		return cli_endpoint("--server", arg, &cfg->server, false);
	case 'p':
		return cli_port(arg, cfg);
	case OPT_FLAGS:
		return cli_flags(arg, cfg);
	case OPT_PID:
		return cli_pid(arg, cfg);
	case OPT_LOG:
		return cli_log(arg, cfg);
	case 't':
		cfg->terminate = true;
		return 0;
	case 'd':
		cfg->daemon = true;
		return 0;
	case 'v':
		cfg->action = CLI_VERSION;
		return 0;
	case OPT_LOCALITY:
		return cli_locality(arg, cfg);
	case 'r':
		cfg->runas = arg;
		return 0;
	case OPT_MIGRATION:
		return cli_migration(arg, cfg);
	case OPT_PRINT_CAPABILITIES:
		cfg->action = CLI_PRINT_CAPABILITIES;
		return 0;
	case OPT_PRINT_STATES:
		cfg->action = CLI_PRINT_STATES;
		return 0;
	case OPT_VERSION:
		cfg->action = CLI_VERSION;
		return 0;
	case 'h':
		cfg->action = CLI_HELP;
		return 0;
	case OPT_UNSUPPORTED:
		return cli_error(name, "%s", "is not supported by this version of vtpm-bridge");
	default:
		return cli_error(name, "%s", "unknown option (see --help)");
	}
}

static const char *cli_socket_option(const struct cli_config *cfg)
{
	return cfg->ctrl.set ? "--ctrl" : cfg->server.set ? "--server" : cfg->terminate ? "--terminate" : NULL;
}

static const char *cli_cuse_option(const struct cli_config *cfg)
{
	return cfg->cuse.set ? "--name" : cfg->cuse.major_set ? "--maj" : cfg->cuse.minor_set ? "--min" : NULL;
}

/* Each subcommand takes swtpm's options for it; the shared ones (state, log, pid, flags) are everyone's. */
static int cli_check_front(struct cli_config *cfg)
{
	bool run = cfg->action == CLI_RUN;

	switch (cfg->mode) {
	case CLI_MODE_CUSE:
		if (cli_socket_option(cfg) || cfg->vtpm_proxy)
			return cli_error(cfg->vtpm_proxy ? "--vtpm-proxy" : cli_socket_option(cfg), "%s",
					 "is not a cuse option; cuse serves /dev/NAME only");
		if (run && !cfg->cuse.set)
			return cli_error("--name", "%s", "cuse needs -n NAME (the device /dev/NAME)");
		return 0;
	case CLI_MODE_SOCKET:
		if (cli_cuse_option(cfg))
			return cli_error(cli_cuse_option(cfg), "%s", "is a cuse option (vtpm-bridge cuse -n NAME)");
		if (cfg->vtpm_proxy)
			return cli_error("--vtpm-proxy", "%s", "is a chardev option (vtpm-bridge chardev --vtpm-proxy)");
		if (run && !cfg->ctrl.set && !cfg->server.set)
			return cli_error("--ctrl", "%s", "a --ctrl or --server channel is required");
		return 0;
	case CLI_MODE_CHARDEV:
		if (cli_cuse_option(cfg) || cfg->server.set || cfg->terminate)
			return cli_error(cli_cuse_option(cfg) ? cli_cuse_option(cfg) :
					 cfg->server.set ? "--server" : "--terminate", "%s",
					 "is not a chardev option (chardev --vtpm-proxy [--ctrl ...])");
		if (run && !cfg->vtpm_proxy)
			return cli_error("--vtpm-proxy", "%s", "chardev needs --vtpm-proxy");
		break;
	case CLI_MODE_COMBINED:
		if ((cfg->cuse.major_set || cfg->cuse.minor_set) && !cfg->cuse.set)
			return cli_error(cli_cuse_option(cfg), "%s", "needs --cuse NAME");
		if (run && !cfg->cuse.set && !cfg->vtpm_proxy && !cfg->ctrl.set && !cfg->server.set)
			return cli_error("vtpm-bridge", "%s", "no front: give --cuse NAME, --vtpm-proxy, "
					 "--ctrl or --server (or a subcommand: socket, cuse, chardev)");
		if (cfg->terminate && !cfg->ctrl.set && !cfg->server.set)
			return cli_error("--terminate", "%s", "needs a --ctrl or --server channel");
		break;
	}
	/*
	 * The kernel's driver needs a running TPM: it starts the device at
	 * once and never sends INIT.  As swtpm --vtpm-proxy: Startup(CLEAR)
	 * unless a startup-* flag says otherwise (startup-none leaves it to
	 * the kernel).
	 */
	if (cfg->vtpm_proxy) {
		cfg->not_need_init = true;
		if (!cfg->startup_set)
			cfg->startup = EMU_STARTUP_CLEAR;
	}
	return 0;
}

/* The parser splits key=value lists in place: it works on its own copy. */
static char **cli_copy_args(int argc, char **argv)
{
	char **copy = calloc((size_t)argc + 1, sizeof(*copy));

	if (!copy)
		return NULL;
	for (int i = 0; i < argc; i++) {
		copy[i] = strdup(argv[i]);
		if (!copy[i]) {
			while (i--)
				free(copy[i]);
			free(copy);
			return NULL;
		}
	}
	return copy;
}

void cli_free(struct cli_config *cfg)
{
	for (int i = 0; cfg->args && i < cfg->nargs; i++)
		free(cfg->args[i]);
	free(cfg->args);
	cfg->args = NULL;
}

/* The subcommands; the short options are each one's own, as swtpm's. */
static const struct {
	const char *name;
	enum cli_mode mode;
	const char *shorts;
} cli_modes[] = {
	{ "socket", CLI_MODE_SOCKET, ":p:tdr:h" },
	{ "cuse", CLI_MODE_CUSE, ":n:M:m:fr:hv" },
	{ "chardev", CLI_MODE_CHARDEV, ":c:f:dr:h" },
};

int cli_parse(int argc, char **argv, struct cli_config *cfg)
{
	const char *shorts = ":dr:h";
	int opt, index;

	memset(cfg, 0, sizeof(*cfg));
	cfg->args = cli_copy_args(argc, argv);
	if (!cfg->args) {
		fprintf(stderr, "vtpm-bridge: out of memory\n");
		return -1;
	}
	cfg->nargs = argc;
	argv = cfg->args;
	cfg->startup = CLI_NO_STARTUP;
	cfg->pid_fd = cfg->log_fd = -1;
	cfg->ctrl.fd = cfg->ctrl.clientfd = cfg->server.fd = cfg->server.clientfd = -1;
	cfg->state_mode = 0640;

	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		cfg->action = CLI_HELP;
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "--version")) {
		cfg->action = CLI_VERSION;
		return 0;
	}
	cfg->mode = CLI_MODE_COMBINED;
	if (argc >= 2 && argv[1][0] != '-') {
		size_t i;

		for (i = 0; i < sizeof(cli_modes) / sizeof(cli_modes[0]) && strcmp(argv[1], cli_modes[i].name); i++)
			;
		if (i == sizeof(cli_modes) / sizeof(cli_modes[0]))
			return cli_error(argv[1], "%s", "unknown subcommand (socket, cuse, chardev; "
					 "or none, with the fronts as options)");
		cfg->mode = cli_modes[i].mode;
		shorts = cli_modes[i].shorts;
		argv++;
		argc--;
	}
	/* swtpm cuse detaches unless told -f. */
	cfg->daemon = cfg->mode == CLI_MODE_CUSE;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, shorts, cli_options, &index)) != -1) {
		char name[64];

		if (opt == '?' || opt == ':') {
			/* optopt is a short option's letter, or a long option's value (>= 256) */
			if (optopt > 0 && optopt < 256)
				snprintf(name, sizeof(name), "-%c", optopt);
			else
				snprintf(name, sizeof(name), "%s", argv[optind - 1]);
			return cli_error(name, "%s", opt == ':' ? "needs a value" : "unknown option (see --help)");
		}
		if (opt < 256)
			snprintf(name, sizeof(name), "-%c", opt);
		else
			snprintf(name, sizeof(name), "--%s", cli_options[index].name);
		/* chardev's -f is swtpm's --fd, not cuse's --foreground. */
		if (cfg->mode == CLI_MODE_CHARDEV && opt == 'f')
			opt = OPT_CHARDEV;
		if (cfg->mode != CLI_MODE_COMBINED && opt == OPT_CUSE)
			return cli_error(name, "%s", "names a front beside others, without a subcommand "
					 "(vtpm-bridge --cuse NAME ...)");
		if (cli_option(opt, optarg, name, cfg) < 0)
			return -1;
	}
	if (optind < argc)
		return cli_error(argv[optind], "%s", "unexpected argument");

	if (!cfg->state_path)
		cfg->state_path = getenv("TPM_PATH");	/* always a directory, as swtpm's */
	if (cfg->action == CLI_RUN || cfg->action == CLI_PRINT_STATES) {
		if (!cfg->state_path)
			return cli_error("--tpmstate", "%s", "is required (or set TPM_PATH)");
	}
	if (cli_check_front(cfg) < 0)
		return -1;
	if (cfg->startup == EMU_STARTUP_DEACTIVATED && cfg->tpm2)
		return cli_error("--flags", "%s", "startup-deactivated is for TPM 1.2 only");
	/* --server type=tcp,fd=N is a connected stream, as swtpm_setup passes it: its end ends us. */
	if (cfg->server.set && cfg->server.tcp && cfg->server.fd >= 0)
		cfg->terminate = true;
	return 0;
}

void cli_usage(const char *prog)
{
	printf("Usage: %s socket [options]\n"
	       "       %s cuse -n NAME [--maj M] [--min N] [-f] [options]\n"
	       "       %s chardev --vtpm-proxy [--ctrl ...] [options]\n"
	       "       %s [--cuse NAME [--maj M] [--min N]] [--vtpm-proxy] [--ctrl ...] [--server ...] [options]\n"
	       "\n"
	       "Serves one libtpms TPM over the control and data sockets of `swtpm socket`,\n"
	       "as the character device /dev/NAME of `swtpm cuse` (TPM commands by\n"
	       "write()/read(), the PTM ioctls), or as the kernel's /dev/tpmN and /dev/tpmrmN\n"
	       "through /dev/vtpmx as `swtpm chardev --vtpm-proxy`; the options are swtpm's.\n"
	       "Without a subcommand, one process serves the one TPM through every front named.\n"
	       "\n"
	       "cuse:\n"
	       "  -n, --name NAME        create /dev/NAME (refused if it exists)\n"
	       "  -M, --maj M            the device's major (default: a dynamic one); many\n"
	       "  -m, --min N            devices should share one fixed major with their own minors\n"
	       "  -f, --foreground       do not detach (the default is to detach once the\n"
	       "                         device exists)\n"
	       "chardev:\n"
	       "  --vtpm-proxy           create /dev/tpmN and /dev/tpmrmN (modprobe tpm_vtpm_proxy;\n"
	       "                         needs CAP_SYS_ADMIN); once the kernel has made them, print\n"
	       "                         \"New TPM device: /dev/tpmN (major/minor = M/m)\" on stdout.\n"
	       "                         The TPM starts at once with Startup(CLEAR) unless a\n"
	       "                         startup-* flag says otherwise\n"
	       "without a subcommand:\n"
	       "  --cuse NAME            the CUSE device /dev/NAME (with --maj, --min)\n"
	       "  --vtpm-proxy           /dev/tpmN and /dev/tpmrmN, as chardev's\n"
	       "  --ctrl, --server       the sockets, as socket's\n"
	       "\n"
	       "all (--server, -p and -t are socket's and the combined form's):\n"
	       "  --tpm2                 a TPM 2.0 (default: TPM 1.2)\n"
	       "  --tpmstate dir=DIR[,mode=0640] | backend-uri=dir://DIR\n"
	       "                         the state directory (or $TPM_PATH); swtpm's file format\n"
	       "  --ctrl type=unixio,path=PATH[,mode=0770][,uid=N][,gid=N][,terminate]\n"
	       "  --ctrl type=unixio,fd=N | clientfd=N\n"
	       "  --ctrl type=tcp,port=N[,bindaddr=127.0.0.1] | fd=N\n"
	       "                         the control channel (PTM commands, big-endian)\n"
	       "  --server type=unixio,path=PATH[,mode=..] | fd=N\n"
	       "  --server type=tcp,port=N[,bindaddr=127.0.0.1][,disconnect] | fd=N\n"
	       "                         a listening data channel (TPM commands); without it,\n"
	       "                         the data channel comes by CMD_SET_DATAFD. Without type=\n"
	       "                         it is TCP (unixio with a path=); type=tcp without port=\n"
	       "                         or fd= takes $TPM_PORT\n"
	       "  -p, --port N           same as --server type=tcp,port=N,disconnect (N in C bases)\n"
	       "  --flags [not-need-init][,startup-clear|startup-state|startup-deactivated|startup-none]\n"
	       "          [,disable-auto-shutdown]\n"
	       "                         start the TPM at once (no CMD_INIT needed); send Startup;\n"
	       "                         do not send TPM2_Shutdown before a reset or exit\n"
	       "  --locality [reject-locality-4][,allow-set-locality]\n"
	       "  --migration [incoming][,release-lock-outgoing]\n"
	       "                         shared storage: lock the state at first use; drop the\n"
	       "                         lock once the volatile state has been fetched\n"
	       "  -t, --terminate        exit when the data channel closes\n"
	       "  --pid file=PATH | fd=N write the process ID once ready\n"
	       "  --log file=PATH | fd=N[,level=N][,prefix=P][,truncate]\n"
	       "                         file=- logs nothing; P goes verbatim before every message\n"
	       "  -d, --daemon           detach; the starting process exits once the daemon is\n"
	       "                         ready (its channels listen, its devices exist)\n"
	       "  -r, --runas USER       drop to USER once the channels and devices are open\n"
	       "  --print-capabilities   print the supported features, and the fronts this\n"
	       "                         host can open, as JSON and exit\n"
	       "  --print-states         print the state blobs in --tpmstate as JSON and exit\n"
	       "  --version, -h/--help\n",
	       prog, prog, prog, prog);
}
