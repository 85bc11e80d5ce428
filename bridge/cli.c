/* SPDX-License-Identifier: BSD-3-Clause */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

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
	OPT_FD,
	OPT_KEY,
	OPT_MIGRATION_KEY,
	OPT_SECCOMP,
	OPT_DAMAGED_STATE,
	OPT_DURABILITY,
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
	/* socket: -f/--fd, the data channel; chardev: its TPM device (refused) */
	{ "fd", required_argument, NULL, OPT_FD },
	{ "key", required_argument, NULL, OPT_KEY },
	{ "migration-key", required_argument, NULL, OPT_MIGRATION_KEY },
	{ "seccomp", required_argument, NULL, OPT_SECCOMP },
	{ "damaged-state", required_argument, NULL, OPT_DAMAGED_STATE },
	{ "durability", required_argument, NULL, OPT_DURABILITY },
	/* Later issues add these; until then they are refused by name. */
	{ "profile", required_argument, NULL, OPT_UNSUPPORTED },
	{ NULL, 0, NULL, 0 },
};

/*
 * What the option loop keeps for after it.  As swtpm's getopt loop, a list
 * option given again replaces the earlier one whole, so only the last of
 * each is parsed, once the loop is done.
 */
struct cli_raw {
	char *tpmstate, *ctrl, *server, *flags, *pid, *log, *locality, *migration, *key, *migration_key, *seccomp;
	bool server_from_port;		/* -p came after the last --server */
	uint16_t port;			/* -p N */
	char port_env[8];		/* -p's N in decimal: swtpm puts it in $TPM_PORT */
	int data_fd;			/* -f/--fd N, or -1 */
	const char *data_fd_opt;	/* "-f" or "--fd", as given */
};

static int cli_error(const char *opt, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* cli_check_value()'s name for the option in errors ("FILE:LINE: key"), else NULL. */
static const char *cli_label;

static int cli_error(const char *opt, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vtpm-bridge: %s: ", cli_label ? cli_label : opt);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
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

/* ---- name=value lists (cli-forms.md section 1) ---- */

#define CLI_MAX_ITEMS	16

struct cli_items {
	const char *opt;		/* the option, for errors */
	size_t n;
	char *name[CLI_MAX_ITEMS];
	char *value[CLI_MAX_ITEMS];	/* NULL: a bare name, which means true */
};

/*
 * Splits at every comma (nothing escapes one), skipping empty items; a
 * name ends at its first '=' and the value keeps the rest verbatim, '='
 * and spaces included.  An empty value is an error, as in swtpm.
 */
static int cli_split(const char *opt, char *list, struct cli_items *it)
{
	it->opt = opt;
	it->n = 0;
	while (list) {
		char *item = strsep(&list, ","), *eq;

		if (!*item)
			continue;
		if (it->n == CLI_MAX_ITEMS)
			return cli_error(opt, "more than %d parameters", CLI_MAX_ITEMS);
		eq = strchr(item, '=');
		if (eq) {
			*eq++ = '\0';
			if (!*eq)
				return cli_error(opt, "'%s=' has an empty value", item);
		}
		it->name[it->n] = item;
		it->value[it->n++] = eq;
	}
	return 0;
}

/*
 * The handlers walk a list last to first: each occurrence is checked, and
 * the first of a repeated name is the one that stays, as in swtpm.
 */
#define cli_items_each(it, i)	for (size_t i = (it)->n; i-- > 0;)

static int cli_unknown(const struct cli_items *it, size_t i)
{
	return cli_error(it->opt, "unknown parameter '%s'", it->name[i]);
}

/* swtpm's booleans: a bare name, or true or 1 in any case; anything else is false. */
static bool cli_bool(const struct cli_items *it, size_t i)
{
	const char *v = it->value[i];

	return !v || !strcasecmp(v, "true") || !strcmp(v, "1");
}

/* A string parameter; a bare name is refused (swtpm would take the path "true"). */
static int cli_string(const struct cli_items *it, size_t i, const char **out)
{
	if (!it->value[i])
		return cli_error(it->opt, "'%s' needs a value (%s=...)", it->name[i], it->name[i]);
	*out = it->value[i];
	return 0;
}

static int cli_decimal(const struct cli_items *it, size_t i, unsigned long max, unsigned long *out)
{
	const char *v = it->value[i] ? it->value[i] : "";

	if (cli_number(v, 10, max, out) < 0 && max == ULONG_MAX)
		return cli_error(it->opt, "%s '%s' is not a decimal number", it->name[i], v);
	if (cli_number(v, 10, max, out) < 0)
		return cli_error(it->opt, "%s '%s' is not a decimal number up to %lu", it->name[i], v, max);
	return 0;
}

static int cli_fd(const struct cli_items *it, size_t i, int *fd)
{
	unsigned long v;

	if (cli_decimal(it, i, INT_MAX, &v) < 0)
		return -1;
	*fd = (int)v;
	return 0;
}

/* mode= is octal, at most 0777, as swtpm's. */
static int cli_mode(const struct cli_items *it, size_t i, mode_t *mode, bool *set)
{
	const char *v = it->value[i] ? it->value[i] : "";
	unsigned long m;

	if (cli_number(v, 8, 0777, &m) < 0)
		return cli_error(it->opt, "mode '%s' is not an octal file mode up to 0777", v);
	*mode = (mode_t)m;
	*set = true;
	return 0;
}

/* uid= and gid= take a number or a name, as swtpm's. */
static int cli_owner(const struct cli_items *it, size_t i, bool group, unsigned long *out, bool *set)
{
	const char *v = it->value[i] ? it->value[i] : "";

	if (cli_number(v, 10, UINT_MAX - 1, out) < 0) {
		const struct group *gr = group ? getgrnam(v) : NULL;
		const struct passwd *pw = group ? NULL : getpwnam(v);

		if (!gr && !pw)
			return cli_error(it->opt, "%s '%s' is neither a number nor a known %s", it->name[i], v,
					 group ? "group" : "user");
		*out = gr ? gr->gr_gid : pw->pw_uid;
	}
	*set = true;
	return 0;
}

/* $TPM_PORT as swtpm reads it: its leading digits; none, or not a port, is no port. */
static bool cli_env_port(const char *env, uint16_t *port)
{
	char digits[8];
	size_t n = env ? strspn(env, "0123456789") : 0;
	unsigned long v;

	if (n == 0 || n >= sizeof(digits))
		return false;
	memcpy(digits, env, n);
	digits[n] = '\0';
	if (cli_number(digits, 10, 65535, &v) < 0 || !v)
		return false;
	*port = (uint16_t)v;
	return true;
}

static int cli_endpoint(const char *opt, char *list, struct cli_endpoint *ep, bool is_ctrl, const char *tpm_port)
{
	struct cli_items it;
	unsigned long v;
	bool type_set = false;

	*ep = (struct cli_endpoint){ .set = true, .fd = -1, .clientfd = -1 };
	if (cli_split(opt, list, &it) < 0)
		return -1;
	cli_items_each(&it, i) {
		const char *key = it.name[i], *value = it.value[i];

		if (!strcmp(key, "type")) {
			if (!value || (strcmp(value, "tcp") && strcmp(value, "unixio")))
				return cli_error(opt, "type '%s' is neither tcp nor unixio", value ? value : "");
			ep->tcp = !strcmp(value, "tcp");
			type_set = true;
		} else if (!strcmp(key, "path")) {
			if (cli_string(&it, i, &ep->path) < 0)
				return -1;
		} else if (!strcmp(key, "port")) {
			if (cli_decimal(&it, i, 65535, &v) < 0)
				return -1;
			if (!v)
				return cli_error(opt, "%s", "port 0 is not a port to listen on");
			ep->port = (uint16_t)v;
			ep->port_set = true;
		} else if (!strcmp(key, "bindaddr")) {
			if (cli_string(&it, i, &ep->bindaddr) < 0)
				return -1;
		} else if (!strcmp(key, "fd")) {
			if (cli_fd(&it, i, &ep->fd) < 0)
				return -1;
		} else if (!strcmp(key, "clientfd") && is_ctrl) {
			if (cli_fd(&it, i, &ep->clientfd) < 0)
				return -1;
		} else if (!strcmp(key, "mode")) {
			if (cli_mode(&it, i, &ep->mode, &ep->mode_set) < 0)
				return -1;
		} else if (!strcmp(key, "uid")) {
			if (cli_owner(&it, i, false, &v, &ep->uid_set) < 0)
				return -1;
			ep->uid = (uid_t)v;
		} else if (!strcmp(key, "gid")) {
			if (cli_owner(&it, i, true, &v, &ep->gid_set) < 0)
				return -1;
			ep->gid = (gid_t)v;
		} else if (!strcmp(key, "terminate") && is_ctrl) {
			ep->terminate = cli_bool(&it, i);
		} else if (!strcmp(key, "disconnect") && !is_ctrl) {
			ep->disconnect = cli_bool(&it, i);
		} else {
			return cli_unknown(&it, i);
		}
	}
	/* swtpm's --server is TCP unless type= says otherwise; a path= can only mean unixio. */
	if (!is_ctrl && !type_set && !ep->path)
		ep->tcp = true;
	/* fd= before clientfd=, as swtpm; path=, mode=, uid= and gid= go unused beside either. */
	if (ep->fd >= 0)
		ep->clientfd = -1;
	/* type=tcp without port= or fd=: swtpm's $TPM_PORT (-p N sets it). */
	if (!is_ctrl && ep->tcp && !ep->port_set && ep->fd < 0)
		ep->port_set = cli_env_port(tpm_port, &ep->port);
	if (ep->clientfd >= 0 && ep->tcp)
		return cli_error(opt, "%s", "clientfd= needs type=unixio");
	if (ep->fd < 0 && ep->clientfd < 0) {
		if (ep->tcp && !ep->port_set)
			return cli_error(opt, "%s", is_ctrl ? "type=tcp needs port= or fd="
							     : "type=tcp needs port=, fd= or $TPM_PORT");
		if (!ep->tcp && !ep->path)
			return cli_error(opt, "%s", is_ctrl ? "type=unixio needs path=, fd= or clientfd="
							     : "type=unixio needs path= or fd=");
	}
	return 0;
}

static int cli_tpmstate(char *list, struct cli_config *cfg)
{
	struct cli_items it;
	const char *dir = NULL, *uri = NULL;

	if (cli_split("--tpmstate", list, &it) < 0)
		return -1;
	cli_items_each(&it, i) {
		int ret;

		if (!strcmp(it.name[i], "dir"))
			ret = cli_string(&it, i, &dir);
		else if (!strcmp(it.name[i], "backend-uri"))
			ret = cli_string(&it, i, &uri);
		else if (!strcmp(it.name[i], "mode"))
			ret = cli_mode(&it, i, &cfg->state_mode, &cfg->state_mode_set);
		else
			ret = cli_unknown(&it, i);
		if (ret < 0)
			return -1;
	}
	/* dir= wins over backend-uri=, whatever their order; the URI is then not looked at (swtpm's). */
	cfg->state_backend = CLI_STATE_DIR;
	if (dir) {
		cfg->state_path = dir;
	} else if (uri && !strncmp(uri, "dir://", 6) && uri[6]) {
		cfg->state_path = uri + 6;
	} else if (uri && !strncmp(uri, "file://", 7) && uri[7]) {
		cfg->state_backend = CLI_STATE_FILE;
		cfg->state_path = uri + 7;
	} else if (uri) {
		return cli_error("--tpmstate", "backend-uri '%s' is not supported (dir://PATH or file://PATH)", uri);
	} else {
		return cli_error("--tpmstate", "%s", "needs dir= or backend-uri=");
	}
	return 0;
}

/* A list of booleans, each setting one bool. */
struct cli_flag {
	const char *name;
	bool *set;
};

static int cli_flag_list(const char *opt, char *list, const struct cli_flag *flags, size_t n)
{
	struct cli_items it;

	if (cli_split(opt, list, &it) < 0)
		return -1;
	cli_items_each(&it, i) {
		size_t f;

		for (f = 0; f < n && strcmp(it.name[i], flags[f].name); f++)
			;
		if (f == n)
			return cli_unknown(&it, i);
		*flags[f].set = cli_bool(&it, i);
	}
	return 0;
}

static int cli_flags(char *list, struct cli_config *cfg)
{
	/* swtpm's precedence when several are true, whatever their order. */
	static const int startups[] = {
		EMU_STARTUP_CLEAR, EMU_STARTUP_STATE, EMU_STARTUP_DEACTIVATED, CLI_NO_STARTUP,
	};
	bool startup[4] = { false };
	const struct cli_flag flags[] = {
		{ "not-need-init", &cfg->not_need_init },
		{ "disable-auto-shutdown", &cfg->disable_auto_shutdown },
		{ "startup-clear", &startup[0] },
		{ "startup-state", &startup[1] },
		{ "startup-deactivated", &startup[2] },
		{ "startup-none", &startup[3] },
	};

	if (cli_flag_list("--flags", list, flags, sizeof(flags) / sizeof(flags[0])) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(startups) / sizeof(startups[0]) && !cfg->startup_set; i++) {
		if (!startup[i])
			continue;
		cfg->startup = startups[i];
		cfg->startup_set = true;
		/* The startup-* flags imply not-need-init, except startup-none. */
		if (cfg->startup != CLI_NO_STARTUP)
			cfg->not_need_init = true;
	}
	return 0;
}

static int cli_pid(char *list, struct cli_config *cfg)
{
	struct cli_items it;

	if (cli_split("--pid", list, &it) < 0)
		return -1;
	cli_items_each(&it, i) {
		int ret;

		if (!strcmp(it.name[i], "file"))
			ret = cli_string(&it, i, &cfg->pid_file);
		else if (!strcmp(it.name[i], "fd"))
			ret = cli_fd(&it, i, &cfg->pid_fd);
		else
			ret = cli_unknown(&it, i);
		if (ret < 0)
			return -1;
	}
	if (!cfg->pid_file && cfg->pid_fd < 0)
		return cli_error("--pid", "%s", "needs file= or fd=");
	return 0;
}

static int cli_log(char *list, struct cli_config *cfg)
{
	struct cli_items it;
	unsigned long v;

	cfg->log_given = true;
	if (cli_split("--log", list, &it) < 0)
		return -1;
	cli_items_each(&it, i) {
		const char *key = it.name[i];
		int ret = 0;

		if (!strcmp(key, "file")) {
			ret = cli_string(&it, i, &cfg->log_file);
		} else if (!strcmp(key, "fd")) {
			ret = cli_fd(&it, i, &cfg->log_fd);
		} else if (!strcmp(key, "level")) {
			/* Any size, as swtpm's: everything from 2 up means the same here. */
			ret = cli_decimal(&it, i, ULONG_MAX, &v);
			cfg->log_level = v > INT_MAX ? INT_MAX : (int)v;
		} else if (!strcmp(key, "truncate")) {
			cfg->log_truncate = cli_bool(&it, i);
		} else if (!strcmp(key, "prefix")) {
			ret = cli_string(&it, i, &cfg->log_prefix);
			if (ret == 0 && strlen(cfg->log_prefix) > 256)
				ret = cli_error("--log", "%s", "prefix= is longer than 256 bytes");
		} else {
			ret = cli_unknown(&it, i);
		}
		if (ret < 0)
			return -1;
	}
	return 0;
}

/* One of a list option's words, or an error listing them. */
static int cli_choice(const struct cli_items *it, size_t i, const char *const *words, size_t n, size_t *out)
{
	const char *v = it->value[i] ? it->value[i] : "";

	for (*out = 0; *out < n; (*out)++) {
		if (!strcmp(v, words[*out]))
			return 0;
	}
	return cli_error(it->opt, "%s '%s' is not one of %s%s%s%s%s", it->name[i], v, words[0],
			 n > 1 ? ", " : "", n > 1 ? words[1] : "", n > 2 ? ", " : "", n > 2 ? words[2] : "");
}

/*
 * --key, --migration-key: swtpm 0.7.1's sub-options.  Of several sources
 * the first of file=, fd=, pwdfile=, pwdfd= is used, as in swtpm.
 */
static int cli_key(const char *opt, char *list, struct cli_key *key)
{
	static const char *const formats[] = { "hex", "binary" };
	static const char *const modes[] = { "aes-cbc", "aes-128-cbc", "aes-256-cbc" };
	static const char *const kdfs[] = { "pbkdf2", "sha512" };
	const char *file = NULL, *pwdfile = NULL;
	int fd = -1, pwdfd = -1;
	struct cli_items it;
	size_t c;

	*key = (struct cli_key){ .fd = -1 };
	if (cli_split(opt, list, &it) < 0)
		return -1;
	cli_items_each(&it, i) {
		const char *name = it.name[i];
		int ret = 0;

		if (!strcmp(name, "file")) {
			ret = cli_string(&it, i, &file);
		} else if (!strcmp(name, "fd")) {
			ret = cli_fd(&it, i, &fd);
		} else if (!strcmp(name, "pwdfile")) {
			ret = cli_string(&it, i, &pwdfile);
		} else if (!strcmp(name, "pwdfd")) {
			ret = cli_fd(&it, i, &pwdfd);
		} else if (!strcmp(name, "format")) {
			ret = cli_choice(&it, i, formats, 2, &c);
			key->binary = c == 1;
		} else if (!strcmp(name, "mode")) {
			ret = cli_choice(&it, i, modes, 3, &c);
			key->aes256 = c == 2;
		} else if (!strcmp(name, "kdf")) {
			ret = cli_choice(&it, i, kdfs, 2, &c);
			key->kdf_sha512 = c == 1;
		} else if (!strcmp(name, "remove")) {
			key->remove = cli_bool(&it, i);
		} else {
			ret = cli_unknown(&it, i);
		}
		if (ret < 0)
			return -1;
	}
	if (file || fd >= 0) {
		key->file = file;
		key->fd = file ? -1 : fd;
	} else if (pwdfile || pwdfd >= 0) {
		key->passphrase = true;
		key->file = pwdfile;
		key->fd = pwdfile ? -1 : pwdfd;
	} else {
		return cli_error(opt, "%s", "needs file=, fd=, pwdfile= or pwdfd=");
	}
	key->set = true;
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

/* --seccomp action=kill|log|none, swtpm 0.7.1's words; without action= it stays kill, as there. */
static int cli_seccomp(char *list, struct cli_config *cfg)
{
	static const char *const words[] = { "kill", "log", "none" };
	static const enum sandbox_action actions[] = { SANDBOX_KILL, SANDBOX_LOG, SANDBOX_NONE };
	struct cli_items it;
	size_t c;

	if (cli_split("--seccomp", list, &it) < 0)
		return -1;
	cli_items_each(&it, i) {
		if (strcmp(it.name[i], "action"))
			return cli_unknown(&it, i);
		if (cli_choice(&it, i, words, 3, &c) < 0)
			return -1;
		cfg->seccomp = actions[c];
	}
	return 0;
}

/* --durability sync | bounded=MS (docs/durability-measurements.md); MS 1-60000. */
static int cli_durability(const char *value, struct cli_config *cfg)
{
	unsigned long ms;

	if (!strcmp(value, "sync")) {
		cfg->durability_sync = true;
		return 0;
	}
	if (strncmp(value, "bounded=", 8))
		return cli_error("--durability", "'%s' is not sync or bounded=MS", value);
	if (cli_number(value + 8, 10, 60000, &ms) < 0 || ms == 0)
		return cli_error("--durability", "bounded=%s: MS must be a whole number of milliseconds, 1 to 60000",
				 value + 8);
	cfg->durability_sync = false;
	cfg->durability_ms = (unsigned int)ms;
	return 0;
}

/* -p N: C bases (strtoul base 0), as swtpm; it stands for --server type=tcp,disconnect with $TPM_PORT=N. */
static int cli_port(const char *value, struct cli_raw *raw)
{
	unsigned long v;

	if (cli_number(value, 0, 65535, &v) < 0 || v == 0)
		return cli_error("--port", "'%s' is not a port number", value);
	raw->port = (uint16_t)v;
	snprintf(raw->port_env, sizeof(raw->port_env), "%u", (unsigned int)raw->port);
	raw->server_from_port = true;
	return 0;
}

/* -f N, --fd N: decimal, as swtpm; what it is, is checked once the options are known. */
static int cli_data_fd(const char *name, const char *value, struct cli_raw *raw)
{
	unsigned long v;

	if (cli_number(value, 10, INT_MAX, &v) < 0)
		return cli_error(name, "'%s' is not a file descriptor number", value);
	raw->data_fd = (int)v;
	raw->data_fd_opt = strcmp(name, "-f") ? "--fd" : "-f";
	return 0;
}

/* ---- descriptors and paths, looked at (never touched) before anything starts ---- */

static const char *cli_file_kind(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
		return "a regular file";
	case S_IFDIR:
		return "a directory";
	case S_IFBLK:
		return "a block device";
	case S_IFCHR:
		return "a character device";
	case S_IFIFO:
		return "a pipe";
	case S_IFLNK:
		return "a symbolic link";
	default:
		return "not a socket";
	}
}

/*
 * An inherited socket must be a stream socket, listening or connected: the
 * socket front serves it as what it is (a connected one given as --ctrl
 * fd= is served as clientfd=; swtpm busy-loops on accept()).  `connected`:
 * only a connected one will do.
 */
static int cli_check_socket(const char *opt, const char *what, int fd, bool connected)
{
	struct sockaddr_storage peer;
	socklen_t len = sizeof(int), peer_len = sizeof(peer);
	struct stat st;
	int type = 0, listening = 0;

	if (fstat(fd, &st) < 0)
		return cli_error(opt, "%s%d is not an open file descriptor", what, fd);
	if (!S_ISSOCK(st.st_mode))
		return cli_error(opt, "%s%d is %s, not a socket", what, fd, cli_file_kind(st.st_mode));
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM)
		return cli_error(opt, "%s%d is not a stream socket", what, fd);
	len = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening) {
		if (connected)
			return cli_error(opt, "%s%d is a listening socket, not a connection (give it as "
					 "--server ...,fd=%d or --ctrl ...,fd=%d)", what, fd, fd, fd);
		return 0;
	}
	if (getpeername(fd, (struct sockaddr *)&peer, &peer_len) < 0)
		return cli_error(opt, "%s%d is a socket neither listening nor connected", what, fd);
	return 0;
}

static int cli_check_fds(const struct cli_config *cfg, const struct cli_raw *raw)
{
	const struct {
		const char *opt;
		const struct cli_endpoint *ep;
	} eps[] = { { "--ctrl", &cfg->ctrl }, { "--server", &cfg->server } };
	struct stat st;

	if (raw->data_fd >= 0) {
		if (raw->data_fd <= STDERR_FILENO)
			return cli_error(raw->data_fd_opt, "fd %d is standard input, output or error, not a "
					 "data connection", raw->data_fd);
		if (cli_check_socket(raw->data_fd_opt, "fd ", raw->data_fd, true) < 0)
			return -1;
	}
	for (size_t i = 0; i < sizeof(eps) / sizeof(eps[0]); i++) {
		if (eps[i].ep->fd >= 0 && cli_check_socket(eps[i].opt, "fd=", eps[i].ep->fd, false) < 0)
			return -1;
		if (eps[i].ep->clientfd >= 0 && cli_check_socket(eps[i].opt, "clientfd=", eps[i].ep->clientfd, true) < 0)
			return -1;
	}
	if (cfg->pid_fd >= 0 && (fstat(cfg->pid_fd, &st) < 0 || !S_ISREG(st.st_mode)))
		return cli_error("--pid", "fd=%d is not an open regular file", cfg->pid_fd);
	for (int k = 0; k < 2; k++) {
		const struct cli_key *key = k ? &cfg->migration_key : &cfg->key;
		int flags = key->fd >= 0 ? fcntl(key->fd, F_GETFL) : 0;

		if (flags < 0 || (flags & O_ACCMODE) == O_WRONLY)
			return cli_error(k ? "--migration-key" : "--key", "%s=%d is not %s",
					 key->passphrase ? "pwdfd" : "fd", key->fd,
					 flags < 0 ? "an open file descriptor" : "open for reading");
	}
	if (cfg->log_fd >= 0) {
		int flags = fcntl(cfg->log_fd, F_GETFL);

		if (flags < 0)
			return cli_error("--log", "fd=%d is not an open file descriptor", cfg->log_fd);
		if ((flags & O_ACCMODE) == O_RDONLY)
			return cli_error("--log", "fd=%d is not open for writing", cfg->log_fd);
	}
	return 0;
}

/*
 * A relative path used after the start (the state, the pid file, a socket
 * file removed at exit) is resolved now, against the directory the process
 * was started in, so a daemon that leaves it still finds them.  A socket
 * path that would then be too long for sun_path stays as given (`max`).
 */
static int cli_absolute(struct cli_config *cfg, const char *opt, const char **path, size_t max)
{
	char *cwd, *abs = NULL, **args;
	size_t len;

	if (!*path || **path == '/')
		return 0;
	cwd = getcwd(NULL, 0);
	if (!cwd)
		return cli_error(opt, "cannot resolve the relative path '%s': %s", *path, strerror(errno));
	len = strlen(cwd);
	if (asprintf(&abs, "%s%s%s", cwd, len && cwd[len - 1] == '/' ? "" : "/", *path) < 0)
		abs = NULL;
	free(cwd);
	if (!abs)
		return cli_error(opt, "%s", "out of memory");
	if (max && strlen(abs) > max) {
		free(abs);
		return 0;
	}
	/* cfg->args owns it from here, as it owns every other string cfg points to. */
	args = realloc(cfg->args, ((size_t)cfg->nargs + 2) * sizeof(*args));
	if (!args) {
		free(abs);
		return cli_error(opt, "%s", "out of memory");
	}
	cfg->args = args;
	args[cfg->nargs++] = abs;
	args[cfg->nargs] = NULL;
	*path = abs;
	return 0;
}

static int cli_absolute_paths(struct cli_config *cfg)
{
	const size_t sun_max = sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1;

	if (cli_absolute(cfg, "--tpmstate", &cfg->state_path, 0) < 0 ||
	    cli_absolute(cfg, "--pid", &cfg->pid_file, 0) < 0)
		return -1;
	if (cfg->ctrl.fd < 0 && cfg->ctrl.clientfd < 0 && !cfg->ctrl.tcp &&
	    cli_absolute(cfg, "--ctrl", &cfg->ctrl.path, sun_max) < 0)
		return -1;
	if (cfg->server.fd < 0 && !cfg->server.tcp && cli_absolute(cfg, "--server", &cfg->server.path, sun_max) < 0)
		return -1;
	return 0;
}

/* The list options, the last of each (cli_raw), parsed once the option loop is done. */
static int cli_lists(struct cli_config *cfg, const struct cli_raw *raw)
{
	if ((raw->tpmstate && cli_tpmstate(raw->tpmstate, cfg) < 0) ||
	    (raw->log && cli_log(raw->log, cfg) < 0) ||
	    (raw->pid && cli_pid(raw->pid, cfg) < 0) ||
	    (raw->flags && cli_flags(raw->flags, cfg) < 0) ||
	    (raw->locality && cli_locality(raw->locality, cfg) < 0) ||
	    (raw->migration && cli_migration(raw->migration, cfg) < 0) ||
	    (raw->seccomp && cli_seccomp(raw->seccomp, cfg) < 0) ||
	    (raw->key && cli_key("--key", raw->key, &cfg->key) < 0) ||
	    (raw->migration_key && cli_key("--migration-key", raw->migration_key, &cfg->migration_key) < 0) ||
	    (raw->ctrl && cli_endpoint("--ctrl", raw->ctrl, &cfg->ctrl, true, NULL) < 0))
		return -1;
	if (raw->server_from_port) {
		cfg->server = (struct cli_endpoint){ .set = true, .tcp = true, .port = raw->port,
						     .port_set = true, .fd = -1, .clientfd = -1,
						     .disconnect = true };
	} else if (raw->server) {
		/* -p before a --server still counts as its $TPM_PORT, as swtpm's setenv does. */
		if (cli_endpoint("--server", raw->server, &cfg->server, false,
				 raw->port_env[0] ? raw->port_env : getenv("TPM_PORT")) < 0)
			return -1;
	}
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

static int cli_option(int opt, char *arg, const char *name, struct cli_config *cfg, struct cli_raw *raw)
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
	case OPT_FD:
		return cli_data_fd(name, arg, raw);
	case OPT_TPM2:
		cfg->tpm2 = true;
		return 0;
	case OPT_TPMSTATE:
		raw->tpmstate = arg;
		return 0;
	case OPT_CTRL:
		raw->ctrl = arg;
		return 0;
	case OPT_SERVER:
		raw->server = arg;
		raw->server_from_port = false;
		return 0;
	case 'p':
		return cli_port(arg, raw);
	case OPT_FLAGS:
		raw->flags = arg;
		return 0;
	case OPT_PID:
		raw->pid = arg;
		return 0;
	case OPT_LOG:
		raw->log = arg;
		return 0;
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
		raw->locality = arg;
		return 0;
	case 'r':
		cfg->runas = arg;
		return 0;
	case OPT_MIGRATION:
		raw->migration = arg;
		return 0;
	case OPT_KEY:
		raw->key = arg;
		return 0;
	case OPT_MIGRATION_KEY:
		raw->migration_key = arg;
		return 0;
	case OPT_SECCOMP:
		raw->seccomp = arg;
		return 0;
	case OPT_DAMAGED_STATE:
		if (strcmp(arg, "fallback") && strcmp(arg, "refuse"))
			return cli_error("--damaged-state", "'%s' is not one of fallback, refuse", arg);
		cfg->refuse_damaged = !strcmp(arg, "refuse");
		return 0;
	case OPT_DURABILITY:
		return cli_durability(arg, cfg);
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
			return cli_error("--ctrl", "%s", "a --ctrl, --server or -f channel is required");
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
	{ "socket", CLI_MODE_SOCKET, ":p:f:tdr:h" },
	{ "cuse", CLI_MODE_CUSE, ":n:M:m:fr:hv" },
	{ "chardev", CLI_MODE_CHARDEV, ":c:f:dr:h" },
};

int cli_parse(int argc, char **argv, struct cli_config *cfg)
{
	const char *shorts = ":dr:h";
	struct cli_raw raw = { .data_fd = -1 };
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
	cfg->pid_fd = cfg->log_fd = cfg->key.fd = cfg->migration_key.fd = -1;
	cfg->ctrl.fd = cfg->ctrl.clientfd = cfg->server.fd = cfg->server.clientfd = -1;
	cfg->state_mode = 0640;
	cfg->durability_ms = 1000;

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

	/* 0, not 1: glibc's full reset, else a parse refused mid-cluster (-dX...) resumes in the next one. */
	optind = 0;
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
		/* -f, --fd: socket's data connection; chardev's device (refused); cuse's -f is --foreground. */
		if (opt == 'f' && cfg->mode != CLI_MODE_CUSE && !optarg)	/* --foreground: no value */
			return cli_error("--foreground", "%s", "is a cuse option (vtpm-bridge cuse -n NAME -f)");
		if (opt == OPT_FD || (opt == 'f' && cfg->mode != CLI_MODE_CUSE))
			opt = cfg->mode == CLI_MODE_SOCKET ? OPT_FD : OPT_CHARDEV;
		if (cfg->mode != CLI_MODE_COMBINED && opt == OPT_CUSE)
			return cli_error(name, "%s", "names a front beside others, without a subcommand "
					 "(vtpm-bridge --cuse NAME ...)");
		if (cli_option(opt, optarg, name, cfg, &raw) < 0)
			return -1;
	}
	if (optind < argc)
		return cli_error(argv[optind], "%s", "unexpected argument");

	if (cli_lists(cfg, &raw) < 0)
		return -1;
	if ((cfg->action == CLI_RUN || cfg->action == CLI_PRINT_STATES) && cli_check_fds(cfg, &raw) < 0)
		return -1;
	/*
	 * -f: an open data connection, whose end is the process's.  It wins
	 * over --server and -p: swtpm makes their socket but never accepts on
	 * it while the connection is open.
	 */
	if (raw.data_fd >= 0) {
		cfg->server = (struct cli_endpoint){ .set = true, .fd = raw.data_fd, .clientfd = -1 };
		cfg->terminate = true;
	}
	/* $TPM_PATH: only without --tpmstate, always a directory; --print-states ignores it (swtpm's). */
	if (!raw.tpmstate && cfg->action == CLI_RUN && getenv("TPM_PATH") && *getenv("TPM_PATH"))
		cfg->state_path = getenv("TPM_PATH");
	if (cfg->action == CLI_PRINT_STATES && !raw.tpmstate)
		return cli_error("--tpmstate", "%s", "is required for --print-states ($TPM_PATH is not read)");
	if (cfg->action == CLI_RUN && !cfg->state_path)
		return cli_error("--tpmstate", "%s", "is required (or set TPM_PATH)");
	if (cli_check_front(cfg) < 0)
		return -1;
	if (cfg->action == CLI_RUN && cli_absolute_paths(cfg) < 0)
		return -1;
	if (cfg->action == CLI_PRINT_STATES && cli_absolute(cfg, "--tpmstate", &cfg->state_path, 0) < 0)
		return -1;
	if (cfg->startup == EMU_STARTUP_DEACTIVATED && cfg->tpm2)
		return cli_error("--flags", "%s", "startup-deactivated is for TPM 1.2 only");
	/* --server type=tcp,fd=N is a connected stream, as swtpm_setup passes it: its end ends us. */
	if (cfg->server.set && cfg->server.tcp && cfg->server.fd >= 0)
		cfg->terminate = true;
	return 0;
}

int cli_check_value(const char *opt, const char *value, const char *label)
{
	/* An action that opens nothing: the option's value is parsed and checked, no descriptor. */
	char prog[] = "vtpm-bridge", action[] = "--print-capabilities";
	char *argv[] = { prog, action, strdup(opt), value ? strdup(value) : NULL, NULL };
	struct cli_config cfg;
	int ret;

	if (!argv[2] || (value && !argv[3])) {
		free(argv[2]);
		fprintf(stderr, "vtpm-bridge: out of memory\n");
		return -1;
	}
	cli_label = label;
	ret = cli_parse(value ? 4 : 3, argv, &cfg);
	cli_label = NULL;
	cli_free(&cfg);
	free(argv[2]);
	free(argv[3]);
	return ret;
}

void cli_usage(const char *prog)
{
	printf("Usage: %s socket [options]\n"
	       "       %s cuse -n NAME [--maj M] [--min N] [-f] [options]\n"
	       "       %s chardev --vtpm-proxy [--ctrl ...] [options]\n"
	       "       %s [--cuse NAME [--maj M] [--min N]] [--vtpm-proxy] [--ctrl ...] [--server ...] [options]\n"
	       "       %s list | status NAME | create NAME --fronts LIST [--KEY VALUE]... | destroy NAME\n"
	       "       %s run NAME | cleanup NAME   (an instance of /etc/vtpm-bridge/NAME.conf; `%s list -h`)\n"
	       "       %s state verify|inspect PATH\n"
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
	       "  --tpmstate dir=DIR[,mode=0640] | backend-uri=dir://DIR | backend-uri=file://FILE\n"
	       "                         the state directory (or $TPM_PATH, when no --tpmstate\n"
	       "                         is given), or swtpm's linear state file\n"
	       "  --ctrl type=unixio,path=PATH[,mode=0770][,uid=U][,gid=G][,terminate]\n"
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
	       "  -f, --fd N             (socket) the data channel is this connected socket;\n"
	       "                         implies --terminate\n"
	       "  --flags [not-need-init][,startup-clear|startup-state|startup-deactivated|startup-none]\n"
	       "          [,disable-auto-shutdown]\n"
	       "                         start the TPM at once (no CMD_INIT needed); send Startup;\n"
	       "                         do not send TPM2_Shutdown before a reset or exit\n"
	       "  --locality [reject-locality-4][,allow-set-locality]\n"
	       "  --migration [incoming][,release-lock-outgoing]\n"
	       "                         shared storage: lock the state at first use; drop the\n"
	       "                         lock once the volatile state has been fetched\n"
	       "  --key file=F|fd=N[,format=hex|binary][,mode=aes-128-cbc|aes-256-cbc][,remove]\n"
	       "  --key pwdfile=F|pwdfd=N[,kdf=pbkdf2|sha512][,mode=...][,remove]\n"
	       "                         encrypt the state as swtpm does (AES-CBC, HMAC-SHA256);\n"
	       "                         read after --runas; remove unlinks the file once read\n"
	       "  --migration-key ...    the same forms: encrypt the GET/SET_STATEBLOB blobs\n"
	       "  --durability sync | bounded=MS\n"
	       "                         when a state write is on disk: sync, before the TPM\n"
	       "                         answers; bounded (default, MS 1000), synced at once\n"
	       "                         off the command path, a write waiting only while an\n"
	       "                         earlier one is unsynced for over MS ms. A crash of\n"
	       "                         the process loses nothing either way. file:// always\n"
	       "                         syncs\n"
	       "  --damaged-state fallback|refuse\n"
	       "                         a state file that fails its integrity check is kept\n"
	       "                         untouched; fallback (default) uses its previous copy\n"
	       "                         (the state before the last commit); refuse fails\n"
	       "  -t, --terminate        exit when the data channel closes\n"
	       "  --pid file=PATH | fd=N write the process ID once ready\n"
	       "  --log file=PATH | fd=N[,level=N][,prefix=P][,truncate]\n"
	       "                         file=- logs nothing; P goes verbatim before every message;\n"
	       "                         without --log, messages go to stderr\n"
	       "  -d, --daemon           detach; the starting process exits once the daemon is\n"
	       "                         ready (its channels listen, its devices exist)\n"
	       "  -r, --runas USER       drop to USER once the channels and devices are open\n"
	       "  --seccomp action=kill|log|none\n"
	       "                         the syscall allow-list, on once start-up is done: a\n"
	       "                         syscall off it kills the process (default), is logged\n"
	       "                         by the kernel and allowed, or no filter\n"
	       "  --print-capabilities   print the supported features, and the fronts this\n"
	       "                         host can open, as JSON and exit\n"
	       "  --print-states         print the state blobs in --tpmstate as JSON and exit\n"
	       "  --version, -h/--help\n",
	       prog, prog, prog, prog, prog, prog, prog, prog);
}
