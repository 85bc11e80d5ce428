/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Instance definitions (bridge/conf.c): valid files, defaults, every
 * class of error with the one stderr line it must print (file, line, key;
 * no raw control byte), hostile instance names, conf_load() on what may
 * lie in the directory instead of a file, and the daemon's argv, parsed
 * back by cli_parse().  Each input is a malloc()ed copy of exactly its
 * length, so ASan sees a read past its end.
 */
#include "conf.h"

#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"
#include "tpm.h"
#include "unit.h"

#define NITEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- stderr of one call, in a temporary file ---- */

struct capture {
	int saved_fd;
	int file_fd;
	char text[8192];
};

static void capture_start(struct capture *cap)
{
	char path[] = "/tmp/vtpm-conf-err.XXXXXX";

	fflush(stderr);
	cap->text[0] = '\0';
	cap->file_fd = mkstemp(path);
	cap->saved_fd = dup(STDERR_FILENO);
	if (cap->file_fd < 0 || cap->saved_fd < 0 || dup2(cap->file_fd, STDERR_FILENO) < 0)
		abort();	/* the test cannot run */
	unlink(path);
}

static void capture_stop(struct capture *cap)
{
	ssize_t n;

	fflush(stderr);
	if (dup2(cap->saved_fd, STDERR_FILENO) < 0)
		abort();
	close(cap->saved_fd);
	n = pread(cap->file_fd, cap->text, sizeof(cap->text) - 1, 0);
	cap->text[n > 0 ? n : 0] = '\0';
	close(cap->file_fd);
}

/* One line, ending in its only newline, every other byte printable ASCII. */
static bool one_printable_line(const char *s)
{
	size_t len = strlen(s);

	if (!len || s[len - 1] != '\n')
		return false;
	for (size_t i = 0; i + 1 < len; i++) {
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return false;
	}
	return true;
}

/* conf_parse() of instance "t" from "t.conf" on an exact-length copy; its stderr in cap. */
static int parse(struct conf *c, const char *text, size_t len, struct capture *cap)
{
	char *buf = malloc(len ? len : 1);
	int ret;

	if (!buf)
		abort();
	memcpy(buf, text, len);
	capture_start(cap);
	ret = conf_parse(c, "t", "t.conf", buf, len);
	capture_stop(cap);
	free(buf);
	return ret;
}

static int parse_str(struct conf *c, const char *text, struct capture *cap)
{
	return parse(c, text, strlen(text), cap);
}

/* Positive cases name root explicitly: the default tss may not exist where the tests run. */
#define ROOT "user = root\ngroup = root\n"

/* ---- valid files ---- */

static const char full_conf[] =
	"# every key\n"
	"fronts = vtpm-proxy, cuse socket\n"
	"tpm = 1.2\n"
	"state-dir = /var/lib/vtpm-test/full\n"
	"user = root\n"
	"owner = root\n"
	"group = root\n"
	"mode = 0640\n"
	"autostart = no\n"
	"ctrl = type=unixio,path=/run/t/ctrl.sock,mode=0600\n"
	"server = type=tcp,port=2321,bindaddr=127.0.0.1\n"
	"cuse-major = 260\n"
	"cuse-minor = 1048575\n"
	"flags = not-need-init,startup-clear\n"
	"locality = reject-locality-4,allow-set-locality\n"
	"key = file=/etc/vtpm/key,format=hex,mode=aes-256-cbc\n"
	"migration-key = pwdfile=/etc/vtpm/pw,kdf=sha512\n"
	"durability = bounded=200\n"
	"damaged-state = refuse\n"
	"seccomp = action=log\n"
	"log-level = 5\n";

TEST(full_file)
{
	struct conf c;
	struct capture cap;

	CHECK_EQ(parse_str(&c, full_conf, &cap), 0);
	CHECK(cap.text[0] == '\0');
	CHECK(!strcmp(c.name, "t"));
	CHECK_EQ(c.fronts, CONF_FRONT_VTPM_PROXY | CONF_FRONT_CUSE | CONF_FRONT_SOCKET);
	CHECK(!c.tpm2);
	CHECK(!strcmp(c.state_dir, "/var/lib/vtpm-test/full"));
	CHECK(!strcmp(c.user, "root") && !strcmp(c.owner, "root") && !strcmp(c.group, "root"));
	CHECK_EQ(c.mode, 0640);
	CHECK(!c.autostart);
	CHECK(!strcmp(c.ctrl, "type=unixio,path=/run/t/ctrl.sock,mode=0600"));
	CHECK(!strcmp(c.server, "type=tcp,port=2321,bindaddr=127.0.0.1"));
	CHECK(!strcmp(c.cuse_major, "260") && !strcmp(c.cuse_minor, "1048575"));
	CHECK(!strcmp(c.flags, "not-need-init,startup-clear"));
	CHECK(!strcmp(c.locality, "reject-locality-4,allow-set-locality"));
	CHECK(!strcmp(c.key, "file=/etc/vtpm/key,format=hex,mode=aes-256-cbc"));
	CHECK(!strcmp(c.migration_key, "pwdfile=/etc/vtpm/pw,kdf=sha512"));
	CHECK(!strcmp(c.durability, "bounded=200"));
	CHECK(!strcmp(c.damaged_state, "refuse"));
	CHECK(!strcmp(c.seccomp, "action=log"));
	CHECK_EQ(c.log_level, 5);
	conf_free(&c);
	conf_free(&c);		/* twice is harmless */
	CHECK(!c.state_dir && !c.user && !c.flags);
}

TEST(defaults)
{
	struct conf c;
	struct capture cap;

	CHECK_EQ(parse_str(&c, "fronts = vtpm-proxy\n" ROOT, &cap), 0);
	CHECK(cap.text[0] == '\0');
	CHECK_EQ(c.fronts, CONF_FRONT_VTPM_PROXY);
	CHECK(c.tpm2);
	CHECK(!strcmp(c.state_dir, CONF_STATE_DIR "/t"));
	CHECK(!strcmp(c.owner, "root"));
	CHECK_EQ(c.mode, 0660);
	CHECK(c.autostart);
	CHECK(!c.ctrl && !c.server && !c.cuse_major && !c.cuse_minor && !c.flags && !c.locality && !c.key &&
	      !c.migration_key && !c.durability && !c.damaged_state && !c.seccomp);
	CHECK_EQ(c.log_level, 0);
	conf_free(&c);
}

/* user and group default to tss: fine where it exists, else an error naming the key and the way out. */
TEST(default_tss)
{
	static const struct {
		const char *text;
		bool needs_user, needs_group;
	} cases[] = {
		{ "fronts = socket\n", true, true },
		{ "fronts = socket\nuser = root\n", false, true },
		{ "fronts = socket\ngroup = root\n", true, false },
	};
	bool user = getpwnam("tss") != NULL, group = getgrnam("tss") != NULL;

	for (size_t i = 0; i < NITEMS(cases); i++) {
		bool missing_user = cases[i].needs_user && !user;
		bool missing_group = cases[i].needs_group && !group;
		struct capture cap;
		struct conf c;
		int ret = parse_str(&c, cases[i].text, &cap);

		if (missing_user || missing_group) {
			CHECK_EQ(ret, -1);
			CHECK(strstr(cap.text, missing_user ? "vtpm-bridge: t.conf: user: the default user tss does not exist"
							    : "vtpm-bridge: t.conf: group: the default group tss does not exist"));
			CHECK(strstr(cap.text, missing_user ? "user = root" : "group = root"));
		} else {
			CHECK_EQ(ret, 0);
			CHECK(!strcmp(c.user, cases[i].needs_user ? "tss" : "root"));
			CHECK(!strcmp(c.group, cases[i].needs_group ? "tss" : "root"));
		}
		conf_free(&c);
	}
}

TEST(comments_blanks_crlf)
{
	static const char text[] =
		"# a comment\r\n"
		"\r\n"
		"   \t  \n"
		"  \t# an indented comment with = in it\n"
		"\tfronts=socket ,cuse,\tvtpm-proxy \r\n"
		"user\t=\troot\r\n"
		"  group = root   \n"
		"#\n"
		"mode=660\r\n"
		"ctrl = type=unixio,path=/run/a=b/ctrl.sock\n"
		"autostart = 0";	/* the last line without its newline */
	struct conf c;
	struct capture cap;

	CHECK_EQ(parse_str(&c, text, &cap), 0);
	CHECK(cap.text[0] == '\0');
	CHECK_EQ(c.fronts, CONF_FRONT_VTPM_PROXY | CONF_FRONT_CUSE | CONF_FRONT_SOCKET);
	CHECK(!strcmp(c.user, "root") && !strcmp(c.group, "root"));
	CHECK_EQ(c.mode, 0660);
	CHECK(!strcmp(c.ctrl, "type=unixio,path=/run/a=b/ctrl.sock"));
	CHECK(!c.autostart);
	conf_free(&c);

	/* An empty file, and one of comments only: no fronts, said once, of the whole file. */
	CHECK_EQ(parse(&c, "", 0, &cap), -1);
	CHECK(!strcmp(cap.text, "vtpm-bridge: t.conf: fronts: missing: the instance needs at least one of "
		      "vtpm-proxy, cuse, socket\n"));
	conf_free(&c);
	CHECK_EQ(parse_str(&c, "# nothing\n\n", &cap), -1);
	CHECK(!strncmp(cap.text, "vtpm-bridge: t.conf: fronts: ", 29));
	conf_free(&c);
}

TEST(values)
{
	static const struct {
		const char *line;
		mode_t mode;
		bool autostart, tpm2;
		unsigned int log_level;
	} cases[] = {
		{ "mode = 660\n", 0660, true, true, 0 },
		{ "mode = 0000\n", 0, true, true, 0 },
		{ "mode = 777\n", 0777, true, true, 0 },
		{ "mode = 0777\n", 0777, true, true, 0 },
		{ "autostart = yes\n", 0660, true, true, 0 },
		{ "autostart = true\n", 0660, true, true, 0 },
		{ "autostart = 1\n", 0660, true, true, 0 },
		{ "autostart = no\n", 0660, false, true, 0 },
		{ "autostart = false\n", 0660, false, true, 0 },
		{ "tpm = 2.0\n", 0660, true, true, 0 },
		{ "tpm = 1.2\nflags = startup-deactivated\n", 0660, true, false, 0 },
		{ "log-level = 1\n", 0660, true, true, 1 },
		{ "log-level = 20\n", 0660, true, true, 20 },
	};

	for (size_t i = 0; i < NITEMS(cases); i++) {
		char text[256];
		struct conf c;
		struct capture cap;

		snprintf(text, sizeof(text), "fronts = cuse\n" ROOT "%s", cases[i].line);
		if (parse_str(&c, text, &cap) != 0) {
			printf("    %s: %s", cases[i].line, cap.text);
			conf_free(&c);
			CHECK(0);
		}
		CHECK(c.fronts == CONF_FRONT_CUSE);
		CHECK_EQ(c.mode, cases[i].mode);
		CHECK_EQ(c.autostart, cases[i].autostart);
		CHECK_EQ(c.tpm2, cases[i].tpm2);
		CHECK_EQ(c.log_level, cases[i].log_level);
		conf_free(&c);
	}
}

/* ---- errors: -1, one line naming the file, the line and the key ---- */

/* Three lines before each case's own. */
#define BASE "fronts = socket\n" ROOT
#define CUSE "fronts = cuse\n" ROOT

static const struct error_case {
	const char *text;
	size_t len;		/* 0: strlen(text) */
	const char *prefix;	/* what the line starts with */
	const char *says;	/* and has in it */
} error_cases[] = {
	/* lines */
	{ BASE "mode 0660\n", 0, "vtpm-bridge: t.conf:4: 'mode 0660'", "key = value" },
	{ BASE "= 0660\n", 0, "vtpm-bridge: t.conf:4: no key", "=" },
	{ BASE "=\n", 0, "vtpm-bridge: t.conf:4: no key", "=" },
	{ BASE "mode =\n", 0, "vtpm-bridge: t.conf:4: mode: ", "empty value" },
	{ BASE "mode = \t \r\n", 0, "vtpm-bridge: t.conf:4: mode: ", "empty value" },
	{ BASE "frnts = socket\n", 0, "vtpm-bridge: t.conf:4: frnts: ", "unknown key" },
	{ BASE "state dir = /x\n", 0, "vtpm-bridge: t.conf:4: state dir: ", "unknown key" },
	{ BASE "k\xc3\xa9y = 1\n", 0, "vtpm-bridge: t.conf:4: k\\xc3\\xa9y: ", "unknown key" },
	{ "fronts = socket\n" ROOT "mode = 0660\nfronts = cuse\n", 0, "vtpm-bridge: t.conf:5: fronts: ",
	  "lines 1 and 5" },
	{ BASE "mode = 0660\nmode = 0660\n", 0, "vtpm-bridge: t.conf:5: mode: ", "lines 4 and 5" },
	/* bytes */
	{ "fronts = socket\nuser = ro\0ot\n", 28, "vtpm-bridge: t.conf:2: ", "NUL" },
	{ "fronts = socket\n# \0\n", 20, "vtpm-bridge: t.conf:2: ", "NUL" },
	{ "\0", 1, "vtpm-bridge: t.conf:1: ", "NUL" },
	{ BASE "mode = 06\x01" "60\n", 0, "vtpm-bridge: t.conf:4: mode: ", "\\x01" },
	{ BASE "mode = 06\r60\n", 0, "vtpm-bridge: t.conf:4: mode: ", "\\x0d" },
	{ BASE "mode = 0660\x7f\n", 0, "vtpm-bridge: t.conf:4: mode: ", "\\x7f" },
	{ "# \x1b[31mred\n" BASE, 0, "vtpm-bridge: t.conf:1: control character", "\\x1b" },
	{ "mo\x02" "de = 0660\n", 0, "vtpm-bridge: t.conf:1: control character", "\\x02" },
	{ "fronts = socket\x1b\n", 0, "vtpm-bridge: t.conf:1: fronts: control character", "\\x1b" },
	{ BASE "\x01\n", 0, "vtpm-bridge: t.conf:4: control character", "\\x01" },
	/* fronts */
	{ "fronts = socket socket\n", 0, "vtpm-bridge: t.conf:1: fronts: ", "twice" },
	{ "fronts = cuse,socket,cuse\n", 0, "vtpm-bridge: t.conf:1: fronts: ", "twice" },
	{ "fronts = tcp\n", 0, "vtpm-bridge: t.conf:1: fronts: 'tcp' is not a front", "vtpm-proxy" },
	{ "fronts = socket;cuse\n", 0, "vtpm-bridge: t.conf:1: fronts: 'socket;cuse'", "not a front" },
	{ "fronts = Socket\n", 0, "vtpm-bridge: t.conf:1: fronts: ", "not a front" },
	{ "fronts = , ,\n", 0, "vtpm-bridge: t.conf:1: fronts: ", "no front" },
	{ ROOT "mode = 0660\n", 0, "vtpm-bridge: t.conf: fronts: ", "missing" },
	/* tpm */
	{ BASE "tpm = 2\n", 0, "vtpm-bridge: t.conf:4: tpm: ", "2.0" },
	{ BASE "tpm = 1.2 \t# no trailing comments\n", 0, "vtpm-bridge: t.conf:4: tpm: ", "neither" },
	/* state-dir */
	{ BASE "state-dir = var/lib/x\n", 0, "vtpm-bridge: t.conf:4: state-dir: ", "absolute" },
	{ BASE "state-dir = /a/../b\n", 0, "vtpm-bridge: t.conf:4: state-dir: ", ". or .." },
	{ BASE "state-dir = /a/./b\n", 0, "vtpm-bridge: t.conf:4: state-dir: ", ". or .." },
	{ BASE "state-dir = /a/..\n", 0, "vtpm-bridge: t.conf:4: state-dir: ", ". or .." },
	{ BASE "state-dir = /.\n", 0, "vtpm-bridge: t.conf:4: state-dir: ", ". or .." },
	{ BASE "state-dir = /a,mode=0777\n", 0, "vtpm-bridge: t.conf:4: state-dir: ", "comma" },
	{ BASE "state-dir = /a\tb\n", 0, "vtpm-bridge: t.conf:4: state-dir: '/a\\x09b'", "control" },
	/* accounts */
	{ "fronts = socket\nuser = vtpm-no-such-user\n", 0, "vtpm-bridge: t.conf:2: user: ", "no user" },
	{ "fronts = socket\nowner = vtpm-no-such-user\n", 0, "vtpm-bridge: t.conf:2: owner: ", "no user" },
	{ "fronts = socket\ngroup = vtpm-no-such-group\n", 0, "vtpm-bridge: t.conf:2: group: ", "no group" },
	{ "fronts = socket\nuser = r\xc3\xb6ot\n", 0, "vtpm-bridge: t.conf:2: user: no user 'r\\xc3\\xb6ot'", "host" },
	/* mode */
	{ BASE "mode = 0888\n", 0, "vtpm-bridge: t.conf:4: mode: ", "octal" },
	{ BASE "mode = 1660\n", 0, "vtpm-bridge: t.conf:4: mode: ", "sticky" },
	{ BASE "mode = 4755\n", 0, "vtpm-bridge: t.conf:4: mode: ", "setuid" },
	{ BASE "mode = 66\n", 0, "vtpm-bridge: t.conf:4: mode: ", "octal" },
	{ BASE "mode = 00660\n", 0, "vtpm-bridge: t.conf:4: mode: ", "octal" },
	{ BASE "mode = 0o660\n", 0, "vtpm-bridge: t.conf:4: mode: ", "octal" },
	{ BASE "mode = -1\n", 0, "vtpm-bridge: t.conf:4: mode: ", "octal" },
	{ BASE "mode = rw\n", 0, "vtpm-bridge: t.conf:4: mode: ", "octal" },
	{ BASE "mode = 0x1b6\n", 0, "vtpm-bridge: t.conf:4: mode: ", "octal" },
	/* autostart */
	{ BASE "autostart = maybe\n", 0, "vtpm-bridge: t.conf:4: autostart: ", "yes, no" },
	{ BASE "autostart = Yes\n", 0, "vtpm-bridge: t.conf:4: autostart: ", "yes, no" },
	/* ctrl, server */
	{ CUSE "ctrl = type=unixio,path=/run/t.ctrl\n", 0, "vtpm-bridge: t.conf:4: ctrl: ", "contain socket" },
	{ "server = type=unixio,path=/run/t.sock\nfronts = vtpm-proxy\n" ROOT, 0,
	  "vtpm-bridge: t.conf:1: server: ", "contain socket" },
	{ BASE "ctrl = type=unixio,fd=3\n", 0, "vtpm-bridge: t.conf:4: ctrl: fd=", "descriptor" },
	{ BASE "ctrl = type=unixio,clientfd=4\n", 0, "vtpm-bridge: t.conf:4: ctrl: clientfd=", "descriptor" },
	{ BASE "server = fd=5,type=tcp\n", 0, "vtpm-bridge: t.conf:4: server: fd=", "descriptor" },
	{ BASE "ctrl = type=unixio,path=run/ctrl.sock\n", 0, "vtpm-bridge: t.conf:4: ctrl: path=run/ctrl.sock",
	  "absolute" },
	{ BASE "ctrl = type=foo,path=/x\n", 0, "vtpm-bridge: t.conf:4: ctrl: ", "type" },
	{ BASE "ctrl = path=/x,bogus=1\n", 0, "vtpm-bridge: t.conf:4: ctrl: ", "bogus" },
	{ BASE "ctrl = type=unixio,path=/x,mode=999\n", 0, "vtpm-bridge: t.conf:4: ctrl: ", "mode" },
	{ BASE "server = type=tcp\n", 0, "vtpm-bridge: t.conf:4: server: ", "port=" },
	{ BASE "server = type=tcp,path=/x\n", 0, "vtpm-bridge: t.conf:4: server: ", "port=" },
	{ BASE "ctrl = type=unixio\n", 0, "vtpm-bridge: t.conf:4: ctrl: ", "path=" },
	{ BASE "ctrl = none\n", 0, "vtpm-bridge: t.conf:4: ctrl: ", "path=" },
	{ BASE "server = None\n", 0, "vtpm-bridge: t.conf:4: server: ", "path=" },
	{ CUSE "server = none\n", 0, "vtpm-bridge: t.conf:4: server: ", "contain socket" },
	{ BASE "ctrl = type=unixio,path=/r\xc3\xa9/c\n", 0, "vtpm-bridge: t.conf:4: ctrl: ", "\\xc3\\xa9" },
	{ BASE "ctrl = type=unixio,\tpath=/x\n", 0, "vtpm-bridge: t.conf:4: ctrl: ", "\\x09" },
	/* cuse-major, cuse-minor */
	{ BASE "cuse-major = 10\n", 0, "vtpm-bridge: t.conf:4: cuse-major: ", "contain cuse" },
	{ BASE "cuse-minor = 10\n", 0, "vtpm-bridge: t.conf:4: cuse-minor: ", "contain cuse" },
	{ CUSE "cuse-major = 0\n", 0, "vtpm-bridge: t.conf:4: cuse-major: ", "1 to 4095" },
	{ CUSE "cuse-major = 4096\n", 0, "vtpm-bridge: t.conf:4: cuse-major: ", "1 to 4095" },
	{ CUSE "cuse-major = 012\n", 0, "vtpm-bridge: t.conf:4: cuse-major: ", "decimal" },
	{ CUSE "cuse-major = +1\n", 0, "vtpm-bridge: t.conf:4: cuse-major: ", "decimal" },
	{ CUSE "cuse-major = 1 2\n", 0, "vtpm-bridge: t.conf:4: cuse-major: ", "decimal" },
	{ CUSE "cuse-major = 99999999999999999999\n", 0, "vtpm-bridge: t.conf:4: cuse-major: ", "decimal" },
	{ CUSE "cuse-minor = 1048576\n", 0, "vtpm-bridge: t.conf:4: cuse-minor: ", "0 to 1048575" },
	{ CUSE "cuse-minor = -1\n", 0, "vtpm-bridge: t.conf:4: cuse-minor: ", "decimal" },
	/* the daemon's options */
	{ BASE "flags = bogus\n", 0, "vtpm-bridge: t.conf:4: flags: ", "bogus" },
	{ BASE "flags = startup-deactivated\n", 0, "vtpm-bridge: t.conf:4: flags: ", "tpm = 1.2" },
	{ BASE "flags = startup-clear,\xc3\xa9\n", 0, "vtpm-bridge: t.conf:4: flags: ", "\\xc3\\xa9" },
	{ BASE "locality = bogus\n", 0, "vtpm-bridge: t.conf:4: locality: ", "bogus" },
	{ BASE "key = fd=3\n", 0, "vtpm-bridge: t.conf:4: key: fd=", "descriptor" },
	{ BASE "key = pwdfd=3,kdf=sha512\n", 0, "vtpm-bridge: t.conf:4: key: pwdfd=", "descriptor" },
	{ BASE "migration-key = pwdfd=4\n", 0, "vtpm-bridge: t.conf:4: migration-key: pwdfd=", "descriptor" },
	{ BASE "key = file=key.bin\n", 0, "vtpm-bridge: t.conf:4: key: file=key.bin", "absolute" },
	{ BASE "migration-key = pwdfile=pw\n", 0, "vtpm-bridge: t.conf:4: migration-key: pwdfile=pw", "absolute" },
	{ BASE "key = file=/x,format=bad\n", 0, "vtpm-bridge: t.conf:4: key: ", "format" },
	{ BASE "key = format=hex\n", 0, "vtpm-bridge: t.conf:4: key: ", "needs file=" },
	{ BASE "durability = fast\n", 0, "vtpm-bridge: t.conf:4: durability: ", "sync" },
	{ BASE "durability = bounded=0\n", 0, "vtpm-bridge: t.conf:4: durability: ", "60000" },
	{ BASE "damaged-state = maybe\n", 0, "vtpm-bridge: t.conf:4: damaged-state: ", "fallback" },
	{ BASE "seccomp = action=bad\n", 0, "vtpm-bridge: t.conf:4: seccomp: ", "kill" },
	{ BASE "seccomp = mode=x\n", 0, "vtpm-bridge: t.conf:4: seccomp: ", "mode" },
	/* log-level */
	{ BASE "log-level = 0\n", 0, "vtpm-bridge: t.conf:4: log-level: ", "1 to 20" },
	{ BASE "log-level = 21\n", 0, "vtpm-bridge: t.conf:4: log-level: ", "1 to 20" },
	{ BASE "log-level = 05\n", 0, "vtpm-bridge: t.conf:4: log-level: ", "decimal" },
	{ BASE "log-level = 1.5\n", 0, "vtpm-bridge: t.conf:4: log-level: ", "decimal" },
	{ BASE "log-level = level=3\n", 0, "vtpm-bridge: t.conf:4: log-level: ", "decimal" },
};

TEST(errors)
{
	for (size_t i = 0; i < NITEMS(error_cases); i++) {
		const struct error_case *e = &error_cases[i];
		size_t len = e->len ? e->len : strlen(e->text);
		struct capture cap;
		struct conf c;
		int ret = parse(&c, e->text, len, &cap);
		bool ok = ret == -1 && !strncmp(cap.text, e->prefix, strlen(e->prefix)) && strstr(cap.text, e->says) &&
			  one_printable_line(cap.text);

		if (!ok)
			printf("    case %zu, expected '%s...%s': ret %d, stderr: %s\n", i, e->prefix, e->says, ret, cap.text);
		CHECK(ok);
		conf_free(&c);
	}
}

/* A line holds at most CONF_LINE_MAX bytes with its newline; the file CONF_FILE_MAX. */
TEST(sizes)
{
	static char text[CONF_FILE_MAX + 1];
	const size_t base = strlen(BASE), key = strlen("state-dir = ");
	struct capture cap;
	struct conf c;
	int ret;

	/* BASE, then a comment line of exactly CONF_LINE_MAX bytes with its newline */
	memcpy(text, BASE, base);
	text[base] = '#';
	memset(text + base + 1, 'x', CONF_LINE_MAX - 2);
	text[base + CONF_LINE_MAX - 1] = '\n';
	ret = parse(&c, text, base + CONF_LINE_MAX, &cap);
	conf_free(&c);
	CHECK_EQ(ret, 0);
	/* one byte more */
	text[base + CONF_LINE_MAX - 1] = 'x';
	text[base + CONF_LINE_MAX] = '\n';
	ret = parse(&c, text, base + CONF_LINE_MAX + 1, &cap);
	conf_free(&c);
	CHECK_EQ(ret, -1);
	CHECK(!strcmp(cap.text, "vtpm-bridge: t.conf:4: the line is longer than 4095 bytes\n"));
	/* ... and without its newline, as the last line */
	ret = parse(&c, text, base + CONF_LINE_MAX, &cap);
	conf_free(&c);
	CHECK_EQ(ret, -1);

	/* a state directory too long for the files the daemon makes in it; quoted short */
	memcpy(text + base, "state-dir = /", key + 1);
	memset(text + base + key + 1, 'd', PATH_MAX - 66);
	ret = parse(&c, text, base + key + PATH_MAX - 65, &cap);
	conf_free(&c);
	CHECK_EQ(ret, 0);
	text[base + key + PATH_MAX - 65] = 'd';
	ret = parse(&c, text, base + key + PATH_MAX - 64, &cap);
	conf_free(&c);
	CHECK_EQ(ret, -1);
	CHECK(!strncmp(cap.text, "vtpm-bridge: t.conf:4: state-dir: '/ddd", 39) && one_printable_line(cap.text));
	CHECK(strstr(cap.text, "...' is 4032 bytes long; at most 4031"));

	/* CONF_FILE_MAX bytes exactly: comment lines, then BASE */
	memset(text, '\n', sizeof(text));
	for (size_t off = 0; off + 100 < sizeof(text); off += 100)
		memset(text + off, '#', 99);
	text[CONF_FILE_MAX - base - 1] = '\n';
	memcpy(text + CONF_FILE_MAX - base, BASE, base);
	ret = parse(&c, text, CONF_FILE_MAX, &cap);
	conf_free(&c);
	CHECK_EQ(ret, 0);
	ret = parse(&c, text, CONF_FILE_MAX + 1, &cap);
	conf_free(&c);
	CHECK_EQ(ret, -1);
	CHECK(!strcmp(cap.text, "vtpm-bridge: t.conf: 65537 bytes; a conf has at most 65536\n"));
}

/* ---- names ---- */

TEST(names)
{
	static const char *const good[] = {
		"a", "0", "vm-100", "A.b_c-9", "tpm-rm0", "rm", "x.conf",
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV",	/* 48 */
	};
	static const char *const bad[] = {
		"", "../x", "a/b", ".x", "-x", "_x", "x-rm", "-rm", "a..b", "a b", "a\n", "\x01", "a\x01",
		"caf\xc3\xa9", "a=b", "a,b", "a:b", "x-", "x.", "x_",
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVW",	/* 49 */
	};
	char long_name[5001];
	struct capture cap;
	struct conf c;

	for (size_t i = 0; i < NITEMS(good); i++) {
		capture_start(&cap);
		if (conf_name_check(good[i], "instance name") != 0) {
			capture_stop(&cap);
			printf("    '%s' refused: %s", good[i], cap.text);
			CHECK(0);
		}
		capture_stop(&cap);
		CHECK(cap.text[0] == '\0');
	}
	for (size_t i = 0; i < NITEMS(bad); i++) {
		bool ok;

		capture_start(&cap);
		ok = conf_name_check(bad[i], "instance name") == -1;
		capture_stop(&cap);
		ok = ok && !strncmp(cap.text, "vtpm-bridge: instance name '", 28) && one_printable_line(cap.text);
		if (!ok)
			printf("    bad name %zu accepted or misreported: %s\n", i, cap.text);
		CHECK(ok);
	}
	capture_start(&cap);
	CHECK_EQ(conf_name_check("\x01\xff", "instance name"), -1);
	capture_stop(&cap);
	CHECK(!strncmp(cap.text, "vtpm-bridge: instance name '\\x01\\xff': ", 39));
	capture_start(&cap);
	CHECK_EQ(conf_name_check("x-rm", "instance name"), -1);
	capture_stop(&cap);
	CHECK(strstr(cap.text, "-rm"));

	/* A long name is cut short in the message. */
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	capture_start(&cap);
	CHECK_EQ(conf_name_check(long_name, "instance name"), -1);
	capture_stop(&cap);
	CHECK(strlen(cap.text) < 300 && strstr(cap.text, "...") && strstr(cap.text, "longer than 48"));

	/* conf_parse() checks the name it is given. */
	capture_start(&cap);
	CHECK_EQ(conf_parse(&c, "../etc", "t.conf", "fronts = socket\n", 16), -1);
	capture_stop(&cap);
	conf_free(&c);
	CHECK(!strncmp(cap.text, "vtpm-bridge: t.conf: name '../etc': ", 36));
}

/* ---- conf_load() ---- */

static int load(struct conf *c, const char *dir, const char *name, struct capture *cap)
{
	int ret;

	capture_start(cap);
	ret = conf_load(c, dir, name);
	capture_stop(cap);
	return ret;
}

static bool says(const struct capture *cap, const char *dir, const char *name, const char *what)
{
	char prefix[PATH_MAX + 64];

	snprintf(prefix, sizeof(prefix), "vtpm-bridge: %s/%s.conf: %s", dir, name, what);
	if (strncmp(cap->text, prefix, strlen(prefix)) || !one_printable_line(cap->text)) {
		printf("    expected '%s...', got: %s", prefix, cap->text);
		return false;
	}
	return true;
}

TEST(load_files)
{
	static const char good[] = "fronts = vtpm-proxy\n" ROOT;
	char dir[64], path[PATH_MAX], *big;
	size_t big_len = CONF_FILE_MAX + 1;
	struct capture cap;
	struct conf c;
	int ret;

	CHECK(make_tmpdir(dir, sizeof(dir), "conf"));
	/* a good file, and a link to it */
	join(path, sizeof(path), dir, "good.conf");
	CHECK_EQ(write_file(path, good, strlen(good)), 0);
	join(path, sizeof(path), dir, "link.conf");
	CHECK_EQ(symlink("good.conf", path), 0);
	CHECK_EQ(load(&c, dir, "good", &cap), 0);
	CHECK(!strcmp(c.name, "good") && c.fronts == CONF_FRONT_VTPM_PROXY && cap.text[0] == '\0');
	conf_free(&c);
	CHECK_EQ(load(&c, dir, "link", &cap), 0);
	CHECK(!strcmp(c.name, "link") && !strcmp(c.state_dir, CONF_STATE_DIR "/link"));
	conf_free(&c);

	/* errors in the file name the path */
	join(path, sizeof(path), dir, "bad.conf");
	CHECK_EQ(write_file(path, "fronts = socket\nmode = 9\n", 25), 0);
	CHECK_EQ(load(&c, dir, "bad", &cap), -1);
	conf_free(&c);
	join(path, sizeof(path), dir, "bad.conf:2: mode: ");
	CHECK(!strncmp(cap.text, "vtpm-bridge: ", 13) && !strncmp(cap.text + 13, path, strlen(path)));

	/* what is not a regular file */
	CHECK_EQ(load(&c, dir, "missing", &cap), -1);
	conf_free(&c);
	CHECK(!strncmp(cap.text, "vtpm-bridge: no such instance 'missing': ", 41) && strstr(cap.text, dir) &&
	      strstr(cap.text, "missing.conf does not exist"));
	join(path, sizeof(path), dir, "d.conf");
	CHECK_EQ(mkdir(path, 0700), 0);
	CHECK_EQ(load(&c, dir, "d", &cap), -1);
	conf_free(&c);
	CHECK(says(&cap, dir, "d", "is a directory"));
	join(path, sizeof(path), dir, "f.conf");
	CHECK_EQ(mkfifo(path, 0600), 0);
	alarm(10);	/* a FIFO with no writer must not block the open */
	ret = load(&c, dir, "f", &cap);
	alarm(0);
	conf_free(&c);
	CHECK_EQ(ret, -1);
	CHECK(says(&cap, dir, "f", "is a FIFO"));
	join(path, sizeof(path), dir, "loop.conf");
	CHECK_EQ(symlink("loop.conf", path), 0);
	CHECK_EQ(load(&c, dir, "loop", &cap), -1);
	conf_free(&c);
	CHECK(says(&cap, dir, "loop", "symbolic link loop"));
	join(path, sizeof(path), dir, "null.conf");
	CHECK_EQ(symlink("/dev/null", path), 0);
	CHECK_EQ(load(&c, dir, "null", &cap), -1);
	conf_free(&c);
	CHECK(says(&cap, dir, "null", "is a character device"));
	{
		struct sockaddr_un addr = { .sun_family = AF_UNIX };
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		CHECK(fd >= 0);
		snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/s.conf", dir);
		ret = bind(fd, (const struct sockaddr *)&addr, sizeof(addr));
		close(fd);
		CHECK_EQ(ret, 0);
		CHECK_EQ(load(&c, dir, "s", &cap), -1);
		conf_free(&c);
		CHECK(says(&cap, dir, "s", "is a socket"));
	}

	/* sizes */
	big = malloc(big_len);
	CHECK(big);
	memset(big, '#', big_len);
	for (size_t off = 99; off < big_len; off += 100)
		big[off] = '\n';
	big[CONF_FILE_MAX - strlen(good) - 1] = '\n';
	memcpy(big + CONF_FILE_MAX - strlen(good), good, strlen(good));
	join(path, sizeof(path), dir, "max.conf");
	ret = write_file(path, big, CONF_FILE_MAX);
	join(path, sizeof(path), dir, "over.conf");
	if (ret == 0)
		ret = write_file(path, big, big_len);
	free(big);
	CHECK_EQ(ret, 0);
	CHECK_EQ(load(&c, dir, "max", &cap), 0);
	conf_free(&c);
	CHECK_EQ(load(&c, dir, "over", &cap), -1);
	conf_free(&c);
	CHECK(says(&cap, dir, "over", "65537 bytes; a conf has at most 65536"));

	/* names and paths */
	CHECK_EQ(load(&c, dir, "../x", &cap), -1);
	conf_free(&c);
	CHECK(!strncmp(cap.text, "vtpm-bridge: instance name '../x': ", 35));
	CHECK_EQ(load(&c, "/nonexistent-vtpm-dir", "good", &cap), -1);
	conf_free(&c);
	CHECK(!strncmp(cap.text, "vtpm-bridge: no such instance 'good': ", 38));
	{
		char long_dir[PATH_MAX];

		memset(long_dir, 'd', sizeof(long_dir) - 1);
		long_dir[0] = '/';
		long_dir[sizeof(long_dir) - 1] = '\0';
		CHECK_EQ(load(&c, long_dir, "good", &cap), -1);
		conf_free(&c);
		CHECK(strstr(cap.text, "too long") && one_printable_line(cap.text));
	}
	rm_tree(dir);
}

/* ---- the daemon's argv ---- */

static bool argv_is(char **argv, const char *const *want)
{
	size_t i;

	for (i = 0; argv[i] && want[i]; i++) {
		if (strcmp(argv[i], want[i])) {
			printf("    argv[%zu] '%s', expected '%s'\n", i, argv[i], want[i]);
			return false;
		}
	}
	if (argv[i] || want[i])
		printf("    argv[%zu] '%s', expected '%s'\n", i, argv[i] ? argv[i] : "(end)", want[i] ? want[i] : "(end)");
	return !argv[i] && !want[i];
}

TEST(argv_full)
{
	static const char *const want[] = {
		"vtpm-bridge", "--tpmstate", "dir=/var/lib/vtpm-test/full", "--vtpm-proxy",
		"--cuse", "vtpm-t", "--maj", "260", "--min", "1048575",
		"--ctrl", "type=unixio,path=/run/t/ctrl.sock,mode=0600",
		"--server", "type=tcp,port=2321,bindaddr=127.0.0.1",
		"--flags", "not-need-init,startup-clear", "--locality", "reject-locality-4,allow-set-locality",
		"--key", "file=/etc/vtpm/key,format=hex,mode=aes-256-cbc",
		"--migration-key", "pwdfile=/etc/vtpm/pw,kdf=sha512", "--durability", "bounded=200",
		"--damaged-state", "refuse", "--seccomp", "action=log", "--log", "level=5", NULL,
	};
	struct capture cap;
	struct conf c;
	char **argv;

	CHECK_EQ(parse_str(&c, full_conf, &cap), 0);
	argv = conf_argv(&c, "/run/vtpm-bridge");
	conf_free(&c);
	CHECK(argv);
	if (!argv_is(argv, want)) {
		conf_argv_free(argv);
		CHECK(0);
	}
	conf_argv_free(argv);
	conf_argv_free(NULL);
}

/* Defaults: the sockets in the run directory with the conf's mode; --runas unless root. */
TEST(argv_defaults)
{
	static const char *const want[] = {
		"vtpm-bridge", "--tpm2", "--tpmstate", "dir=" CONF_STATE_DIR "/t",
		"--ctrl", "type=unixio,path=/run/x/t/ctrl.sock,mode=0640,uid=root,gid=root",
		"--server", "type=unixio,path=/run/x/t/data.sock,mode=0640,uid=root,gid=root", "--runas", "daemon", NULL,
	};
	struct capture cap;
	struct conf c;
	char **argv;
	bool ok;

	CHECK_EQ(parse_str(&c, "fronts = socket\nuser = daemon\ngroup = root\nmode = 640\n", &cap), 0);
	argv = conf_argv(&c, "/run/x");
	conf_free(&c);
	CHECK(argv);
	ok = argv_is(argv, want);
	conf_argv_free(argv);
	CHECK(ok);
}

/* The longest argv: every key, TPM 2.0, a user to drop to. */
TEST(argv_longest)
{
	static const char text[] =
		"fronts = vtpm-proxy cuse socket\nuser = daemon\ngroup = root\n"
		"ctrl = type=tcp,port=2322\nserver = type=tcp,port=2321\ncuse-major = 260\ncuse-minor = 1\n"
		"flags = startup-clear\nlocality = allow-set-locality\nkey = file=/k\nmigration-key = file=/m\n"
		"durability = sync\ndamaged-state = refuse\nseccomp = action=log\nlog-level = 2\n";
	struct capture cap;
	struct conf c;
	char **argv;
	int argc = 0;

	CHECK_EQ(parse_str(&c, text, &cap), 0);
	argv = conf_argv(&c, "/run/vtpm-bridge");
	conf_free(&c);
	CHECK(argv);
	while (argv[argc])
		argc++;
	conf_argv_free(argv);
	CHECK_EQ(argc, 33);
}

/* conf_argv() of text, parsed by the daemon's own parser; 0 or -1. */
static int daemon_parse(const char *text, const char *rundir, struct cli_config *cfg)
{
	struct capture cap;
	struct conf c;
	char **argv;
	int argc, ret;

	if (parse_str(&c, text, &cap) < 0) {
		printf("    conf: %s", cap.text);
		conf_free(&c);
		return -1;
	}
	argv = conf_argv(&c, rundir);
	conf_free(&c);
	if (!argv)
		return -1;
	for (argc = 0; argv[argc]; argc++)
		;
	capture_start(&cap);
	ret = cli_parse(argc, argv, cfg);
	capture_stop(&cap);
	conf_argv_free(argv);
	if (ret < 0)
		printf("    cli: %s", cap.text);
	return ret;
}

TEST(argv_cli_vtpm_proxy)
{
	char dir[64], text[1024];
	struct cli_config cfg;
	int ret;

	CHECK(make_tmpdir(dir, sizeof(dir), "conf"));
	snprintf(text, sizeof(text),
		 "fronts = vtpm-proxy\nstate-dir = %s\n" ROOT
		 "locality = allow-set-locality\ndurability = sync\ndamaged-state = refuse\n"
		 "seccomp = action=none\nlog-level = 3\nkey = file=/nonexistent/key,mode=aes-256-cbc\n", dir);
	ret = daemon_parse(text, "/run/vtpm-bridge", &cfg);
	rm_tree(dir);
	CHECK_EQ(ret, 0);
	CHECK(cfg.action == CLI_RUN && cfg.mode == CLI_MODE_COMBINED);
	CHECK(cfg.tpm2);
	CHECK(cfg.state_backend == CLI_STATE_DIR && !strcmp(cfg.state_path, dir));
	CHECK(cfg.vtpm_proxy && !cfg.cuse.set && !cfg.ctrl.set && !cfg.server.set);
	/* the daemon's rule for vtpm-proxy: started at once, Startup(CLEAR) */
	CHECK(cfg.not_need_init && cfg.startup == EMU_STARTUP_CLEAR);
	CHECK(!cfg.runas);
	CHECK(cfg.allow_set_locality && !cfg.reject_locality_4);
	CHECK(cfg.durability_sync && cfg.refuse_damaged);
	CHECK(cfg.seccomp == SANDBOX_NONE);
	CHECK_EQ(cfg.log_level, 3);
	CHECK(cfg.key.set && !strcmp(cfg.key.file, "/nonexistent/key") && cfg.key.aes256 && !cfg.key.passphrase);
	CHECK(!cfg.migration_key.set);
	cli_free(&cfg);
}

TEST(argv_cli_socket)
{
	char dir[64], text[1024];
	struct cli_config cfg;
	int ret;

	CHECK(make_tmpdir(dir, sizeof(dir), "conf"));
	snprintf(text, sizeof(text), "fronts = socket\ntpm = 1.2\nstate-dir = %s\nuser = daemon\ngroup = root\n"
		 "mode = 0600\nflags = startup-deactivated\n", dir);
	ret = daemon_parse(text, "/run/vtpm-test", &cfg);
	rm_tree(dir);
	CHECK_EQ(ret, 0);
	CHECK(!cfg.tpm2 && !strcmp(cfg.state_path, dir));
	CHECK(cfg.ctrl.set && !cfg.ctrl.tcp && !strcmp(cfg.ctrl.path, "/run/vtpm-test/t/ctrl.sock"));
	CHECK(cfg.ctrl.mode_set && cfg.ctrl.mode == 0600);
	CHECK(cfg.server.set && !cfg.server.tcp && !strcmp(cfg.server.path, "/run/vtpm-test/t/data.sock"));
	CHECK(cfg.server.mode_set && cfg.server.mode == 0600);
	CHECK(cfg.ctrl.uid_set && cfg.ctrl.uid == 0 && cfg.server.gid_set && cfg.server.gid == 0);
	CHECK(!cfg.vtpm_proxy && !cfg.cuse.set);
	CHECK(cfg.runas && !strcmp(cfg.runas, "daemon"));
	CHECK(cfg.startup == EMU_STARTUP_DEACTIVATED && cfg.not_need_init);
	cli_free(&cfg);

	/* given endpoints, TCP for the data */
	snprintf(text, sizeof(text), "fronts = socket\nstate-dir = /var/lib/vtpm-test/t\n" ROOT
		 "ctrl = type=unixio,path=/run/t.ctrl,terminate\nserver = type=tcp,port=2321,disconnect\n");
	CHECK_EQ(daemon_parse(text, "/run/vtpm-test", &cfg), 0);
	CHECK(cfg.ctrl.set && !strcmp(cfg.ctrl.path, "/run/t.ctrl") && cfg.ctrl.terminate && !cfg.ctrl.mode_set);
	CHECK(cfg.server.set && cfg.server.tcp && cfg.server.port == 2321 && cfg.server.disconnect);
	cli_free(&cfg);

	/* server = none: the data channel comes over ctrl (CMD_SET_DATAFD), as QEMU passes it */
	CHECK_EQ(daemon_parse("fronts = socket\n" ROOT "server = none\n", "/run/vtpm-test", &cfg), 0);
	CHECK(cfg.ctrl.set && !strcmp(cfg.ctrl.path, "/run/vtpm-test/t/ctrl.sock") && !cfg.server.set);
	cli_free(&cfg);
}

TEST(argv_cli_cuse)
{
	struct cli_config cfg;

	CHECK_EQ(daemon_parse("fronts = cuse vtpm-proxy\n" ROOT "cuse-major = 260\ncuse-minor = 7\n"
			      "flags = startup-none\n", "/run/vtpm-bridge", &cfg), 0);
	CHECK(cfg.cuse.set && !strcmp(cfg.cuse.name, "vtpm-t"));
	CHECK(cfg.cuse.major_set && cfg.cuse.major == 260 && cfg.cuse.minor_set && cfg.cuse.minor == 7);
	CHECK(cfg.vtpm_proxy && !cfg.ctrl.set);
	CHECK(!strcmp(cfg.state_path, CONF_STATE_DIR "/t"));
	CHECK(cfg.startup == CLI_NO_STARTUP && cfg.startup_set);
	cli_free(&cfg);
	/* without --maj and --min: a dynamic major */
	CHECK_EQ(daemon_parse("fronts = cuse\n" ROOT, "/run/vtpm-bridge", &cfg), 0);
	CHECK(cfg.cuse.set && !cfg.cuse.major_set && !cfg.cuse.minor_set);
	cli_free(&cfg);
}

int main(void)
{
	static const struct unit_test always[] = {
		UNIT(full_file),
		UNIT(defaults),
		UNIT(default_tss),
		UNIT(comments_blanks_crlf),
		UNIT(values),
		UNIT(errors),
		UNIT(sizes),
		UNIT(names),
		UNIT(load_files),
		UNIT(argv_full),
		UNIT(argv_cli_vtpm_proxy),
		UNIT(argv_cli_cuse),
	};
	/* --runas needs a user other than root: Debian's base-passwd always has daemon (uid 1). */
	static const struct unit_test runas[] = {
		UNIT(argv_defaults),
		UNIT(argv_longest),
		UNIT(argv_cli_socket),
	};
	int bad = unit_run("conf", always, NITEMS(always));

	if (getpwnam("daemon"))
		bad |= unit_run("conf", runas, NITEMS(runas));
	else
		printf("SKIP conf/argv_defaults, conf/argv_longest, conf/argv_cli_socket: no user daemon on this host\n");
	return bad;
}
