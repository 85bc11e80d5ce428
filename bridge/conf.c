/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vtpm-bridge.conf(5): one instance's definition, read line by line
 * through one table of keys (conf_keys).  Values given to the daemon's own
 * options are checked by the command-line parser itself
 * (cli_check_value()), so the file and the command line cannot disagree on
 * what a value means.
 */
#include "conf.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

#define NITEMS(a)	(sizeof(a) / sizeof((a)[0]))

/* ---- errors ---- */

/* At most this much of a piece of input goes into a message. */
#define CONF_QUOTE_MAX	96

struct conf_quote {
	char s[CONF_QUOTE_MAX * 4 + sizeof("...")];	/* every byte as \xHH at worst */
};

/*
 * Printable ASCII as it is, any other byte as \xHH: no byte of the input
 * reaches a terminal raw.  By value: C11 keeps the returned array alive
 * until the end of the full expression, the message's fprintf().
 */
static struct conf_quote conf_quote_bytes(const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	struct conf_quote q = { .s = "" };
	char *out = q.s;

	for (size_t i = 0; i < len && i < CONF_QUOTE_MAX; i++) {
		unsigned char b = (unsigned char)s[i];

		if (b >= 0x20 && b < 0x7f) {
			*out++ = (char)b;
		} else {
			*out++ = '\\';
			*out++ = 'x';
			*out++ = hex[b >> 4];
			*out++ = hex[b & 0xf];
		}
	}
	if (len > CONF_QUOTE_MAX) {
		memcpy(out, "...", 3);
		out += 3;
	}
	*out = '\0';
	return q;
}

static struct conf_quote conf_quote(const char *s)
{
	return conf_quote_bytes(s, strlen(s));
}

/* ---- the parser ---- */

#define CONF_KEYS_MAX	32

struct conf_parser {
	struct conf *c;
	const char *file;
	unsigned int line;			/* the line errors name; 0: the whole file, or a default */
	unsigned int given_on[CONF_KEYS_MAX];	/* the line each key of conf_keys was on; 0: not given */
};

/* "vtpm-bridge: FILE[:LINE][: KEY]: message", one line. */
static int conf_error(const struct conf_parser *p, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int conf_error(const struct conf_parser *p, const char *key, const char *fmt, ...)
{
	char line[16] = "", msg[1024];
	va_list ap;

	if (p->line)
		snprintf(line, sizeof(line), ":%u", p->line);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "vtpm-bridge: %s%s%s%s: %s\n", p->file, line, key ? ": " : "", key ? key : "", msg);
	return -1;
}

struct conf_key {
	const char *name;
	/* 0, or -1 after an error naming the key; p->line 0: the value is the key's default */
	int (*parse)(struct conf_parser *p, const struct conf_key *k, const char *value);
	size_t field;			/* the char * of struct conf it fills; 0: none (name is first) */
	const char *option;		/* the daemon's option the value is checked as, and given to */
	unsigned int front;		/* enum conf_front: the key needs it in `fronts` */
	unsigned long min, max;		/* a number's bounds */
	const char *default_value;	/* parsed as if given, when not given */
};

_Static_assert(offsetof(struct conf, name) == 0, "a field offset of 0 means none");

static char **conf_slot(struct conf *c, const struct conf_key *k)
{
	return (char **)((char *)c + k->field);
}

static const char *conf_string(const struct conf *c, const struct conf_key *k)
{
	return *(char *const *)((const char *)c + k->field);
}

static int conf_store(struct conf_parser *p, const struct conf_key *k, const char *value)
{
	char *copy = strdup(value);

	if (!copy)
		return conf_error(p, k->name, "out of memory");
	*conf_slot(p->c, k) = copy;
	return 0;
}

const char *const conf_front_names[CONF_FRONTS] = { "vtpm-proxy", "cuse", "socket" };

static const char *conf_front_name(unsigned int front)
{
	for (size_t i = 0; i < NITEMS(conf_front_names); i++) {
		if (front == 1u << i)
			return conf_front_names[i];
	}
	return "?";
}

static int conf_parse_fronts(struct conf_parser *p, const struct conf_key *k, const char *value)
{
	static const char separators[] = ", \t";
	const char *s = value + strspn(value, separators);

	while (*s) {
		size_t len = strcspn(s, separators), i;

		for (i = 0; i < NITEMS(conf_front_names); i++) {
			if (strlen(conf_front_names[i]) == len && !strncmp(s, conf_front_names[i], len))
				break;
		}
		if (i == NITEMS(conf_front_names))
			return conf_error(p, k->name, "'%s' is not a front (vtpm-proxy, cuse, socket)",
					  conf_quote_bytes(s, len).s);
		if (p->c->fronts & (1u << i))
			return conf_error(p, k->name, "%s is named twice", conf_front_names[i]);
		p->c->fronts |= 1u << i;
		s += len;
		s += strspn(s, separators);
	}
	if (!p->c->fronts)
		return conf_error(p, k->name, "names no front (vtpm-proxy, cuse, socket)");
	return 0;
}

static int conf_parse_tpm(struct conf_parser *p, const struct conf_key *k, const char *value)
{

	if (strcmp(value, "2.0") && strcmp(value, "1.2"))
		return conf_error(p, k->name, "'%s' is neither 2.0 nor 1.2", conf_quote(value).s);
	p->c->tpm2 = !strcmp(value, "2.0");
	return 0;
}

static bool conf_control_char(unsigned char b)
{
	return b < 0x20 || b == 0x7f;
}

static int conf_parse_state_dir(struct conf_parser *p, const struct conf_key *k, const char *value)
{
	struct conf_quote path = conf_quote(value);
	const char *s;
	size_t len = strlen(value);

	if (value[0] != '/')
		return conf_error(p, k->name, "'%s' is not an absolute path", path.s);
	/* Room for the files the daemon makes in it. */
	if (len >= PATH_MAX - 64)
		return conf_error(p, k->name, "'%s' is %zu bytes long; at most %d", path.s, len, PATH_MAX - 65);
	for (s = value; *s; s++) {
		if (conf_control_char((unsigned char)*s))
			return conf_error(p, k->name, "'%s' has a control character", path.s);
	}
	/* The daemon takes it as --tpmstate dir=PATH, a list that a comma would end. */
	if (strchr(value, ','))
		return conf_error(p, k->name, "'%s' has a comma", path.s);
	for (s = value; *s;) {
		s += strspn(s, "/");
		len = strcspn(s, "/");
		if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
			return conf_error(p, k->name, "'%s' has a . or .. component", path.s);
		s += len;
	}
	return conf_store(p, k, value);
}

static int conf_account(struct conf_parser *p, const struct conf_key *k, const char *value, bool exists,
			const char *kind)
{

	if (exists)
		return conf_store(p, k, value);
	if (!p->line)
		return conf_error(p, k->name, "the default %s %s does not exist on this host: set `%s = root` "
				  "or create the %s", kind, value, k->name, kind);
	return conf_error(p, k->name, "no %s '%s' on this host", kind, conf_quote(value).s);
}

static int conf_parse_user(struct conf_parser *p, const struct conf_key *k, const char *value)
{
	return conf_account(p, k, value, getpwnam(value) != NULL, "user");
}

static int conf_parse_group(struct conf_parser *p, const struct conf_key *k, const char *value)
{
	return conf_account(p, k, value, getgrnam(value) != NULL, "group");
}

/* 3 or 4 octal digits, as chmod(1) takes them; no setuid, setgid or sticky bit on a device node. */
static int conf_parse_mode(struct conf_parser *p, const struct conf_key *k, const char *value)
{
	size_t len = strlen(value);
	unsigned int mode = 0;

	if ((len != 3 && len != 4) || strspn(value, "01234567") != len)
		return conf_error(p, k->name, "'%s' is not 3 or 4 octal digits (as 0660)", conf_quote(value).s);
	for (size_t i = 0; i < len; i++)
		mode = mode * 8 + (unsigned int)(value[i] - '0');
	if (mode > 0777)
		return conf_error(p, k->name, "'%s' has a setuid, setgid or sticky bit; at most 0777", value);
	p->c->mode = (mode_t)mode;
	return 0;
}

static int conf_parse_autostart(struct conf_parser *p, const struct conf_key *k, const char *value)
{
	static const struct {
		const char *word;
		bool yes;
	} words[] = {
		{ "yes", true }, { "true", true }, { "1", true }, { "no", false }, { "false", false }, { "0", false },
	};

	for (size_t i = 0; i < NITEMS(words); i++) {
		if (!strcmp(value, words[i].word)) {
			p->c->autostart = words[i].yes;
			return 0;
		}
	}
	return conf_error(p, k->name, "'%s' is not yes, no, true, false, 1 or 0", conf_quote(value).s);
}

/* A number in [k->min, k->max], written one way only: digits, no sign, no leading zero. */
static int conf_number(struct conf_parser *p, const struct conf_key *k, const char *value, unsigned long *out)
{
	size_t len = strlen(value);
	unsigned long v = 0;

	if (len > 9 || strspn(value, "0123456789") != len || (value[0] == '0' && len > 1))
		len = 0;
	for (size_t i = 0; i < len; i++)
		v = v * 10 + (unsigned long)(value[i] - '0');
	if (!len || v < k->min || v > k->max)
		return conf_error(p, k->name, "'%s' is not a decimal number from %lu to %lu", conf_quote(value).s,
				  k->min, k->max);
	*out = v;
	return 0;
}

static int conf_parse_devnum(struct conf_parser *p, const struct conf_key *k, const char *value)
{
	unsigned long v;

	if (conf_number(p, k, value, &v) < 0)
		return -1;
	return conf_store(p, k, value);
}

static int conf_parse_log_level(struct conf_parser *p, const struct conf_key *k, const char *value)
{
	unsigned long v;

	if (conf_number(p, k, value, &v) < 0)
		return -1;
	p->c->log_level = (unsigned int)v;
	return 0;
}

/* ---- values of the daemon's options, swtpm's name=value lists ---- */

/* One item of a list, split as cli.c splits it: at commas, empty items skipped, the name ending at '='. */
struct conf_item {
	const char *name;
	size_t name_len;
	const char *value;		/* NULL: a bare name */
	size_t value_len;
};

static bool conf_next_item(const char **list, struct conf_item *item)
{
	const char *s = *list + strspn(*list, ","), *eq;
	size_t len = strcspn(s, ",");

	if (!*s)
		return false;
	eq = memchr(s, '=', len);
	item->name = s;
	item->name_len = eq ? (size_t)(eq - s) : len;
	item->value = eq ? eq + 1 : NULL;
	item->value_len = eq ? len - item->name_len - 1 : 0;
	*list = s + len;
	return true;
}

static bool conf_item_is(const struct conf_item *item, const char *name)
{
	return item->name_len == strlen(name) && !strncmp(item->name, name, item->name_len);
}

static bool conf_list_has(const char *list, const char *name)
{
	struct conf_item item;

	while (conf_next_item(&list, &item)) {
		if (conf_item_is(&item, name))
			return true;
	}
	return false;
}

/*
 * Printable ASCII only (the option's parser prints what it refuses as it
 * is); no descriptor, since whoever reads a conf has none to pass to the
 * daemon; files by absolute path, since the daemon may start in any
 * directory.
 */
static int conf_check_list(struct conf_parser *p, const struct conf_key *k, const char *value)
{
	static const char *const fd_items[] = { "fd", "clientfd", "pwdfd" };
	static const char *const path_items[] = { "path", "file", "pwdfile" };
	struct conf_item item;

	for (const char *s = value; *s; s++) {
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return conf_error(p, k->name, "'%s': only printable ASCII here", conf_quote(value).s);
	}
	while (conf_next_item(&value, &item)) {
		for (size_t i = 0; i < NITEMS(fd_items); i++) {
			if (conf_item_is(&item, fd_items[i]))
				return conf_error(p, k->name, "%s= passes a descriptor, which a conf cannot", fd_items[i]);
		}
		for (size_t i = 0; i < NITEMS(path_items); i++) {
			if (conf_item_is(&item, path_items[i]) && item.value_len && item.value[0] != '/')
				return conf_error(p, k->name, "%s=%.*s is not an absolute path", path_items[i],
						  (int)item.value_len, item.value);
		}
	}
	return 0;
}

/* The option's own parser checks the value (and prints why not), then it is kept verbatim. */
static int conf_check_option(struct conf_parser *p, const struct conf_key *k, const char *value)
{
	char label[PATH_MAX + 64];

	snprintf(label, sizeof(label), "%s:%u: %s", p->file, p->line, k->name);
	if (cli_check_value(k->option, value, label) < 0)
		return -1;
	return conf_store(p, k, value);
}

static int conf_parse_option(struct conf_parser *p, const struct conf_key *k, const char *value)
{
	if (conf_check_list(p, k, value) < 0)
		return -1;
	return conf_check_option(p, k, value);
}

/*
 * ctrl, server: a unix socket's path= or a TCP port=.  Without either,
 * the daemon's --server would take its port from $TPM_PORT, which is the
 * environment's, not the conf's.
 */
static int conf_parse_endpoint(struct conf_parser *p, const struct conf_key *k, const char *value)
{
	const char *list = value;
	struct conf_item item;
	bool tcp = false, path = false, port = false;

	if (conf_check_list(p, k, value) < 0)
		return -1;
	while (conf_next_item(&list, &item)) {
		tcp |= conf_item_is(&item, "type") && item.value_len == 3 && !strncmp(item.value, "tcp", 3);
		path |= conf_item_is(&item, "path");
		port |= conf_item_is(&item, "port");
	}
	if (!port && (tcp || !path))
		return conf_error(p, k->name, "needs path= (type=unixio) or port= (type=tcp)");
	return conf_check_option(p, k, value);
}

/*
 * server = none: no --server.  QEMU's emulator backend hands the daemon
 * its data channel over ctrl (CMD_SET_DATAFD), which the daemon refuses
 * while a --server endpoint holds the data slot, as swtpm does.
 */
static int conf_parse_server(struct conf_parser *p, const struct conf_key *k, const char *value)
{
	if (!strcmp(value, "none"))
		return conf_store(p, k, value);
	return conf_parse_endpoint(p, k, value);
}

#define CONF_FIELD(f)	offsetof(struct conf, f)

static const struct conf_key conf_keys[] = {
	{ .name = "fronts", .parse = conf_parse_fronts },
	{ .name = "tpm", .parse = conf_parse_tpm, .default_value = "2.0" },
	/* default: CONF_STATE_DIR/NAME (conf_finish()) */
	{ .name = "state-dir", .parse = conf_parse_state_dir, .field = CONF_FIELD(state_dir) },
	{ .name = "user", .parse = conf_parse_user, .field = CONF_FIELD(user), .default_value = "tss" },
	{ .name = "owner", .parse = conf_parse_user, .field = CONF_FIELD(owner), .default_value = "root" },
	{ .name = "group", .parse = conf_parse_group, .field = CONF_FIELD(group), .default_value = "tss" },
	{ .name = "mode", .parse = conf_parse_mode, .default_value = "0660" },
	{ .name = "autostart", .parse = conf_parse_autostart, .default_value = "yes" },
	{ .name = "ctrl", .parse = conf_parse_endpoint, .field = CONF_FIELD(ctrl), .option = "--ctrl",
	  .front = CONF_FRONT_SOCKET },
	{ .name = "server", .parse = conf_parse_server, .field = CONF_FIELD(server), .option = "--server",
	  .front = CONF_FRONT_SOCKET },
	/* The kernel's dev_t: 12 bits of major (0 is none), 20 of minor. */
	{ .name = "cuse-major", .parse = conf_parse_devnum, .field = CONF_FIELD(cuse_major),
	  .front = CONF_FRONT_CUSE, .min = 1, .max = 4095 },
	{ .name = "cuse-minor", .parse = conf_parse_devnum, .field = CONF_FIELD(cuse_minor),
	  .front = CONF_FRONT_CUSE, .min = 0, .max = (1ul << 20) - 1 },
	/* Given to the daemon in this order (conf_argv()). */
	{ .name = "flags", .parse = conf_parse_option, .field = CONF_FIELD(flags), .option = "--flags" },
	{ .name = "locality", .parse = conf_parse_option, .field = CONF_FIELD(locality), .option = "--locality" },
	{ .name = "key", .parse = conf_parse_option, .field = CONF_FIELD(key), .option = "--key" },
	{ .name = "migration-key", .parse = conf_parse_option, .field = CONF_FIELD(migration_key),
	  .option = "--migration-key" },
	{ .name = "durability", .parse = conf_parse_option, .field = CONF_FIELD(durability),
	  .option = "--durability" },
	{ .name = "damaged-state", .parse = conf_parse_option, .field = CONF_FIELD(damaged_state),
	  .option = "--damaged-state" },
	{ .name = "seccomp", .parse = conf_parse_option, .field = CONF_FIELD(seccomp), .option = "--seccomp" },
	/* swtpm's --log level=N: 1 is its default, 20 more than its most verbose */
	{ .name = "log-level", .parse = conf_parse_log_level, .min = 1, .max = 20 },
};

_Static_assert(NITEMS(conf_keys) <= CONF_KEYS_MAX, "conf_parser.given_on has a slot per key");

static const struct conf_key *conf_key_find(const char *name)
{
	for (size_t i = 0; i < NITEMS(conf_keys); i++) {
		if (!strcmp(conf_keys[i].name, name))
			return &conf_keys[i];
	}
	return NULL;
}

static char *conf_trim(char *s)
{
	size_t len;

	s += strspn(s, " \t");
	len = strlen(s);
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'))
		s[--len] = '\0';
	return s;
}

/* One line without its newline, no NUL in it. */
static int conf_line(struct conf_parser *p, const char *text, size_t len)
{
	char buf[CONF_LINE_MAX], *line, *eq, *key, *value;
	const char *control = NULL;
	const struct conf_key *k;
	size_t i;

	/* CONF_LINE_MAX counts the newline. */
	if (len >= CONF_LINE_MAX)
		return conf_error(p, NULL, "the line is longer than %d bytes", CONF_LINE_MAX - 1);
	memcpy(buf, text, len);
	buf[len] = '\0';
	line = conf_trim(buf);
	if (!*line)
		return 0;
	for (const char *s = line; *s && !control; s++) {
		if (*s != '\t' && conf_control_char((unsigned char)*s))
			control = s;
	}
	eq = strchr(line, '=');
	if (control && (*line == '#' || !eq || control < eq))
		return conf_error(p, NULL, "control character %s (tab is the only one allowed)",
				  conf_quote_bytes(control, 1).s);
	if (*line == '#')
		return 0;
	if (!eq)
		return conf_error(p, NULL, "'%s' is not `key = value`", conf_quote(line).s);
	*eq = '\0';
	key = conf_trim(line);
	value = conf_trim(eq + 1);
	if (!*key)
		return conf_error(p, NULL, "no key before '='");
	k = conf_key_find(key);
	if (!k)
		return conf_error(p, conf_quote(key).s, "unknown key");
	if (control)
		return conf_error(p, k->name, "control character %s in the value (tab is the only one allowed)",
				  conf_quote_bytes(control, 1).s);
	if (!*value)
		return conf_error(p, k->name, "empty value");
	i = (size_t)(k - conf_keys);
	if (p->given_on[i])
		return conf_error(p, k->name, "given twice, on lines %u and %u", p->given_on[i], p->line);
	p->given_on[i] = p->line;
	return k->parse(p, k, value);
}

/* Defaults, then what no single line shows: keys that need a front, flags that need TPM 1.2. */
static int conf_finish(struct conf_parser *p)
{
	struct conf *c = p->c;
	const struct conf_key *flags = conf_key_find("flags");

	p->line = 0;
	if (!c->fronts)
		return conf_error(p, "fronts", "missing: the instance needs at least one of vtpm-proxy, cuse, socket");
	for (size_t i = 0; i < NITEMS(conf_keys); i++) {
		const struct conf_key *k = &conf_keys[i];

		if (!p->given_on[i] && k->default_value && k->parse(p, k, k->default_value) < 0)
			return -1;
	}
	if (!c->state_dir && asprintf(&c->state_dir, "%s/%s", CONF_STATE_DIR, c->name) < 0) {
		c->state_dir = NULL;
		return conf_error(p, "state-dir", "out of memory");
	}
	for (size_t i = 0; i < NITEMS(conf_keys); i++) {
		const struct conf_key *k = &conf_keys[i];

		if (p->given_on[i] && k->front && !(c->fronts & k->front)) {
			p->line = p->given_on[i];
			return conf_error(p, k->name, "needs `fronts` to contain %s", conf_front_name(k->front));
		}
	}
	/* Refused by name, whatever its value: the daemon refuses it with --tpm2. */
	if (c->tpm2 && c->flags && conf_list_has(c->flags, "startup-deactivated")) {
		p->line = p->given_on[flags - conf_keys];
		return conf_error(p, flags->name, "startup-deactivated needs tpm = 1.2");
	}
	return 0;
}

int conf_parse(struct conf *c, const char *name, const char *file, const char *buf, size_t len)
{
	struct conf_parser p = { .c = c, .file = file };
	char what[PATH_MAX + 16];
	const char *nul;

	memset(c, 0, sizeof(*c));
	snprintf(what, sizeof(what), "%s: name", file);
	if (conf_name_check(name, what) < 0)
		return -1;
	memcpy(c->name, name, strlen(name) + 1);
	if (len > CONF_FILE_MAX)
		return conf_error(&p, NULL, "%zu bytes; a conf has at most %d", len, CONF_FILE_MAX);
	nul = memchr(buf, '\0', len);
	if (nul) {
		p.line = 1;
		for (const char *s = buf; (s = memchr(s, '\n', (size_t)(nul - s))); s++)
			p.line++;
		return conf_error(&p, NULL, "a NUL byte: this is not a text file");
	}
	p.line = 0;
	for (size_t off = 0; off < len;) {
		const char *newline = memchr(buf + off, '\n', len - off);
		size_t n = newline ? (size_t)(newline - (buf + off)) : len - off;

		p.line++;
		if (conf_line(&p, buf + off, n) < 0)
			return -1;
		off += n + 1;
	}
	return conf_finish(&p);
}

void conf_free(struct conf *c)
{
	for (size_t i = 0; i < NITEMS(conf_keys); i++) {
		if (conf_keys[i].field) {
			char **slot = conf_slot(c, &conf_keys[i]);

			free(*slot);
			*slot = NULL;
		}
	}
	/* state_dir's default is no key's value */
	free(c->state_dir);
	c->state_dir = NULL;
}

/* ---- names and files ---- */

#define CONF_TEXT_(x)	#x
#define CONF_TEXT(x)	CONF_TEXT_(x)

int conf_name_check(const char *name, const char *what)
{
	static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-";
	size_t len = strlen(name);
	const char *why = NULL;

	if (!len)
		why = "empty";
	else if (len > CONF_NAME_MAX)
		why = "longer than " CONF_TEXT(CONF_NAME_MAX) " characters";
	else if (!strchr(alnum, name[0]))
		why = "the first character is not a letter or a digit";
	else if (strspn(name, chars) != len)
		why = "only letters, digits, '_', '.' and '-' are allowed";
	/* A CDI device name (vtpm-bridge.io/tpm=NAME) ends in one; podman takes any other as a path. */
	else if (!strchr(alnum, name[len - 1]))
		why = "the last character is not a letter or a digit";
	/* The CUSE device is /dev/vtpm-NAME, and the daemon refuses ".." in a device name. */
	else if (strstr(name, ".."))
		why = "'..' is not allowed";
	/* /dev/vtpm/NAME-rm is instance NAME's resource manager */
	else if (len >= 3 && !strcmp(name + len - 3, "-rm"))
		why = "ends in -rm, which would collide with another instance's /dev/vtpm/NAME-rm";
	if (!why)
		return 0;
	fprintf(stderr, "vtpm-bridge: %s '%s': %s\n", what, conf_quote(name).s, why);
	return -1;
}

static const char *conf_file_kind(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFDIR:
		return "a directory";
	case S_IFIFO:
		return "a FIFO";
	case S_IFCHR:
		return "a character device";
	case S_IFBLK:
		return "a block device";
	case S_IFSOCK:
		return "a socket";
	default:
		return "not a regular file";
	}
}

/* The file's bytes (at most CONF_FILE_MAX + 1, so that one growing meanwhile is still refused). */
static int conf_read(int fd, const char *path, char *buf, size_t *len)
{
	struct stat st;

	if (fstat(fd, &st) < 0) {
		fprintf(stderr, "vtpm-bridge: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		fprintf(stderr, "vtpm-bridge: %s: is %s, not a regular file\n", path, conf_file_kind(st.st_mode));
		return -1;
	}
	if (st.st_size > CONF_FILE_MAX) {
		fprintf(stderr, "vtpm-bridge: %s: %lld bytes; a conf has at most %d\n", path,
			(long long)st.st_size, CONF_FILE_MAX);
		return -1;
	}
	*len = 0;
	while (*len <= CONF_FILE_MAX) {
		ssize_t n = read(fd, buf + *len, CONF_FILE_MAX + 1 - *len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "vtpm-bridge: %s: %s\n", path, strerror(errno));
			return -1;
		}
		if (n == 0)
			break;
		*len += (size_t)n;
	}
	return 0;
}

int conf_load(struct conf *c, const char *confdir, const char *name)
{
	char path[PATH_MAX], *buf;
	struct stat st;
	size_t len;
	int fd, n, ret;

	memset(c, 0, sizeof(*c));
	if (conf_name_check(name, "instance name") < 0)
		return -1;
	n = snprintf(path, sizeof(path), "%s/%s.conf", confdir, name);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		fprintf(stderr, "vtpm-bridge: %s: the directory's name is too long\n", confdir);
		return -1;
	}
	/* O_NONBLOCK: a FIFO put there is refused by fstat, not waited on. Symlinks are followed: an admin may link a conf. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 && errno == ENOENT) {
		fprintf(stderr, "vtpm-bridge: no such instance '%s': %s does not exist\n", name, path);
		return -1;
	}
	/* A socket (or a device without a driver) cannot be opened at all: say what it is. */
	if (fd < 0 && errno == ENXIO && stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		fprintf(stderr, "vtpm-bridge: %s: is %s, not a regular file\n", path, conf_file_kind(st.st_mode));
		return -1;
	}
	if (fd < 0) {
		fprintf(stderr, "vtpm-bridge: %s: %s\n", path, errno == ELOOP ? "symbolic link loop" : strerror(errno));
		return -1;
	}
	buf = malloc(CONF_FILE_MAX + 1);
	if (!buf) {
		fprintf(stderr, "vtpm-bridge: %s: out of memory\n", path);
		close(fd);
		return -1;
	}
	ret = conf_read(fd, path, buf, &len);
	close(fd);
	if (ret == 0)
		ret = conf_parse(c, name, path, buf, len);
	free(buf);
	return ret;
}

/* ---- the daemon's command line ---- */

/* The most conf_argv() gives, with every key: see there. */
#define CONF_ARGV_MAX	33

struct conf_args {
	char **v;
	size_t n;
	bool failed;
};

static void conf_arg(struct conf_args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void conf_arg(struct conf_args *a, const char *fmt, ...)
{
	va_list ap;
	int ret;

	if (a->n == CONF_ARGV_MAX)
		abort();	/* CONF_ARGV_MAX is wrong */
	va_start(ap, fmt);
	ret = vasprintf(&a->v[a->n], fmt, ap);
	va_end(ap);
	if (ret < 0) {
		a->v[a->n] = NULL;
		a->failed = true;
		return;
	}
	a->n++;
}

char **conf_argv(const struct conf *c, const char *rundir)
{
	struct conf_args a = { .v = calloc(CONF_ARGV_MAX + 1, sizeof(char *)) };

	if (!a.v)
		return NULL;
	conf_arg(&a, "vtpm-bridge");
	if (c->tpm2)
		conf_arg(&a, "--tpm2");
	conf_arg(&a, "--tpmstate");
	conf_arg(&a, "dir=%s", c->state_dir);
	if (c->fronts & CONF_FRONT_VTPM_PROXY)
		conf_arg(&a, "--vtpm-proxy");
	if (c->fronts & CONF_FRONT_CUSE) {
		conf_arg(&a, "--cuse");
		conf_arg(&a, "vtpm-%s", c->name);
		if (c->cuse_major) {
			conf_arg(&a, "--maj");
			conf_arg(&a, "%s", c->cuse_major);
		}
		if (c->cuse_minor) {
			conf_arg(&a, "--min");
			conf_arg(&a, "%s", c->cuse_minor);
		}
	}
	if (c->fronts & CONF_FRONT_SOCKET) {
		/* The default sockets are reached as the nodes are: owner, group, mode. */
		static const char sock_fmt[] = "type=unixio,path=%s/%s/%s,mode=%04o,uid=%s,gid=%s";

		conf_arg(&a, "--ctrl");
		if (c->ctrl)
			conf_arg(&a, "%s", c->ctrl);
		else
			conf_arg(&a, sock_fmt, rundir, c->name, "ctrl.sock", (unsigned int)c->mode, c->owner, c->group);
		if (!c->server) {
			conf_arg(&a, "--server");
			conf_arg(&a, sock_fmt, rundir, c->name, "data.sock", (unsigned int)c->mode, c->owner, c->group);
		} else if (strcmp(c->server, "none")) {
			conf_arg(&a, "--server");
			conf_arg(&a, "%s", c->server);
		}
	}
	if (c->user && strcmp(c->user, "root")) {
		conf_arg(&a, "--runas");
		conf_arg(&a, "%s", c->user);
	}
	for (size_t i = 0; i < NITEMS(conf_keys); i++) {
		const struct conf_key *k = &conf_keys[i];

		if (k->parse == conf_parse_option && conf_string(c, k)) {
			conf_arg(&a, "%s", k->option);
			conf_arg(&a, "%s", conf_string(c, k));
		}
	}
	if (c->log_level) {
		conf_arg(&a, "--log");
		conf_arg(&a, "level=%u", c->log_level);
	}
	if (a.failed) {
		conf_argv_free(a.v);
		return NULL;
	}
	return a.v;
}

void conf_argv_free(char **argv)
{
	for (size_t i = 0; argv && argv[i]; i++)
		free(argv[i]);
	free(argv);
}
