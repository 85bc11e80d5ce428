/* SPDX-License-Identifier: BSD-3-Clause */
#include "instance-cmd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "instance.h"

/* The status exit code of a stopped instance (LSB's "program is not running"). */
#define STATUS_STOPPED	3
/* ... and "program or service status is unknown": its record cannot be read */
#define STATUS_UNKNOWN	4
#define LIST_MAX	1024

static void instance_usage(FILE *out)
{
	fputs("usage: vtpm-bridge list\n"
	      "       vtpm-bridge status NAME\n"
	      "       vtpm-bridge create NAME --fronts LIST [--KEY VALUE]...\n"
	      "       vtpm-bridge destroy NAME\n"
	      "       vtpm-bridge run NAME        (the systemd unit's ExecStart)\n"
	      "       vtpm-bridge cleanup NAME    (its ExecStopPost)\n"
	      "       vtpm-bridge udev-node KERNELNAME | udev-removed KERNELNAME | udev-wants vtpm-proxy|cuse\n"
	      "                                   (the udev rule's)\n"
	      "each takes --confdir DIR (default " CONF_DIR "), --rundir DIR (" CONF_RUN_DIR "),\n"
	      "--cdidir DIR (" CONF_CDI_DIR "); KEY is a key of vtpm-bridge.conf(5)\n", out);
}

/*
 * Splits argv (argv[0] the command) into the directory options and the
 * rest, in order; `--KEY VALUE` pairs other than the directories stay in
 * rest for `create`.  0; -1 for -h (the usage is printed); 2 after a usage
 * error.
 */
static int instance_args(int argc, char **argv, struct instance_dirs *dirs, char **rest, int *nrest)
{
	static const char *const dir_opts[] = { "--confdir", "--rundir", "--cdidir" };

	*dirs = (struct instance_dirs){ CONF_DIR, CONF_RUN_DIR, CONF_CDI_DIR };
	*nrest = 0;
	for (int i = 1; i < argc; i++) {
		const char **dst[] = { &dirs->conf, &dirs->run, &dirs->cdi };
		size_t d;

		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			instance_usage(stdout);
			return -1;
		}
		for (d = 0; d < 3 && strcmp(argv[i], dir_opts[d]); d++)
			;
		if (d < 3) {
			if (i + 1 >= argc || !argv[i + 1][0]) {
				fprintf(stderr, "vtpm-bridge %s: %s needs a directory\n", argv[0], dir_opts[d]);
				return 2;
			}
			*dst[d] = argv[++i];
			continue;
		}
		rest[(*nrest)++] = argv[i];
	}
	return 0;
}

/* The one NAME a command takes: 0, or 2 after a usage error. */
static int instance_one_name(const char *cmd, char **rest, int nrest, const char **name)
{
	if (nrest < 1 || rest[0][0] == '-') {
		fprintf(stderr, "vtpm-bridge %s: an instance NAME is required\n", cmd);
		return 2;
	}
	if (nrest > 1 && strcmp(cmd, "create")) {
		fprintf(stderr, "vtpm-bridge %s: unexpected argument '%s'\n", cmd, rest[1]);
		return 2;
	}
	*name = rest[0];
	return conf_name_check(*name, "instance name") < 0 ? 1 : 0;
}

/*
 * The instance name in a file name PREFIX NAME SUFFIX of one of our
 * directories, copied to name: false for any other file.
 */
static bool instance_file_name(const char *file, const char *prefix, const char *suffix,
			       char name[CONF_NAME_MAX + 1])
{
	size_t len = strlen(file), plen = strlen(prefix), slen = strlen(suffix);

	if (len <= plen + slen || len - plen - slen > CONF_NAME_MAX || strncmp(file, prefix, plen) ||
	    strcmp(file + len - slen, suffix) || file[plen] == '.')
		return false;
	memcpy(name, file + plen, len - plen - slen);
	name[len - plen - slen] = '\0';
	return true;
}

static int instance_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names of the *.conf files in confdir that name a valid instance, sorted; *n of them. */
static char **instance_names(const char *confdir, size_t *n)
{
	char **names = calloc(LIST_MAX, sizeof(*names));
	DIR *dir = opendir(confdir);
	struct dirent *e;

	*n = 0;
	if (!names || !dir) {
		if (dir)
			closedir(dir);
		return names;
	}
	while ((e = readdir(dir)) && *n < LIST_MAX) {
		char name[CONF_NAME_MAX + 1];

		if (!instance_file_name(e->d_name, "", ".conf", name) || conf_name_check(name, "instance name") < 0)
			continue;
		names[*n] = strdup(name);
		if (names[*n])
			(*n)++;
	}
	closedir(dir);
	qsort(names, *n, sizeof(*names), instance_cmp);
	return names;
}

static void instance_names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* words[i] for each bit i set in bits, joined by commas. */
static void instance_join(char *buf, size_t size, const char *const *words, size_t n, unsigned int bits)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if ((bits & (1u << i)) && words[i][0] && len < size)
			len += (size_t)snprintf(buf + len, size - len, "%s%s", len ? "," : "", words[i]);
	}
}

static void instance_fronts_text(unsigned int fronts, char *buf, size_t size)
{
	instance_join(buf, size, conf_front_names, CONF_FRONTS, fronts);
}

static void instance_nodes_text(const struct instance_record *rec, char *buf, size_t size)
{
	const char *const nodes[] = { rec->tpm, rec->tpmrm, rec->cuse };

	instance_join(buf, size, nodes, 3, 7);
}

/* "ready", "starting", "stopped", or "unknown" (the record cannot be read), from instance_read()'s answer. */
static const char *instance_state(const struct instance_dirs *dirs, int read_ret, const struct instance_record *rec)
{
	if (read_ret == -ENOENT || read_ret == -ESRCH)
		return "stopped";
	if (read_ret < 0)
		return "unknown";
	return instance_ready(rec, dirs->run) ? "ready" : "starting";
}

static int cmd_list(const struct instance_dirs *dirs)
{
	size_t n;
	char **names = instance_names(dirs->conf, &n);
	int status = 0;

	if (!names) {
		fprintf(stderr, "vtpm-bridge list: out of memory\n");
		return 1;
	}
	printf("%-24s %-9s %-8s %-22s %s\n", "NAME", "STATE", "PID", "FRONTS", "DEVICES");
	for (size_t i = 0; i < n; i++) {
		struct conf c;
		struct instance_record rec;
		char fronts[64], pid[16] = "-", devices[3 * INSTANCE_NODE_MAX + 4];
		int ret;

		if (conf_load(&c, dirs->conf, names[i]) < 0) {
			printf("%-24s %-9s\n", names[i], "invalid");
			status = 1;
			conf_free(&c);
			continue;
		}
		ret = instance_read(&rec, dirs->run, names[i]);
		instance_fronts_text(c.fronts, fronts, sizeof(fronts));
		devices[0] = '\0';
		if (ret == 0) {
			snprintf(pid, sizeof(pid), "%d", (int)rec.pid);
			instance_nodes_text(&rec, devices, sizeof(devices));
		}
		printf("%-24s %-9s %-8s %-22s %s\n", names[i], instance_state(dirs, ret, &rec), pid, fronts,
		       devices[0] ? devices : "-");
		conf_free(&c);
	}
	instance_names_free(names, n);
	return status;
}

static int cmd_status(const struct instance_dirs *dirs, const char *name)
{
	struct instance_record rec;
	struct conf c;
	const char *state;
	char fronts[64];
	int ret;

	if (conf_load(&c, dirs->conf, name) < 0) {
		conf_free(&c);
		return 1;
	}
	ret = instance_read(&rec, dirs->run, name);
	instance_fronts_text(c.fronts, fronts, sizeof(fronts));
	state = instance_state(dirs, ret, &rec);
	printf("name: %s\nconf: %s/%s.conf\nfronts: %s\nstate dir: %s\nstate: %s\n", name, dirs->conf, name,
	       fronts, c.state_dir, state);
	if (!strcmp(state, "unknown"))
		fprintf(stderr, "vtpm-bridge status: %s/%s.instance: %s\n", dirs->run, name,
			ret == -EINVAL ? "not a record of ours" : strerror(-ret));
	if (ret == 0) {
		printf("pid: %d\n", (int)rec.pid);
		if (rec.tpm[0])
			printf("device: /dev/%s (/dev/vtpm/%s)\n", rec.tpm, name);
		if (rec.tpmrm[0])
			printf("device: /dev/%s (/dev/vtpm/%s-rm)\n", rec.tpmrm, name);
		if (rec.cuse[0])
			printf("device: /dev/%s\n", rec.cuse);
		printf("nodes: owner %s, group %s, mode %04o\n", rec.owner, rec.group, (unsigned int)rec.mode);
		if (rec.tpm[0] || rec.cuse[0])
			printf("cdi: vtpm-bridge.io/tpm=%s (%s/vtpm-bridge-%s.json)\n", name, dirs->cdi, name);
	}
	if (c.fronts & CONF_FRONT_SOCKET) {
		if (c.ctrl)
			printf("ctrl: %s\n", c.ctrl);
		else
			printf("ctrl: %s/%s/ctrl.sock\n", dirs->run, name);
		if (c.server)
			printf("server: %s\n", c.server);
		else
			printf("server: %s/%s/data.sock\n", dirs->run, name);
	}
	conf_free(&c);
	if (!strcmp(state, "unknown"))
		return STATUS_UNKNOWN;
	return !strcmp(state, "ready") ? 0 : STATUS_STOPPED;
}

/* The conf text of `create NAME --KEY VALUE...` (or --KEY=VALUE): NULL after printing why. */
static char *create_text(char **opts, int n)
{
	size_t size = 256, len;
	char *text = malloc(size);

	if (!text)
		return NULL;
	len = (size_t)snprintf(text, size, "# vtpm-bridge instance: see vtpm-bridge.conf(5)\n");
	for (int i = 0; i < n; i++) {
		const char *key = opts[i], *eq, *value;
		size_t klen, need;
		char *grown;

		if (strncmp(key, "--", 2) || !key[2]) {
			fprintf(stderr, "vtpm-bridge create: '%s': expected --KEY VALUE (a key of vtpm-bridge.conf(5))\n",
				key);
			goto fail;
		}
		key += 2;
		eq = strchr(key, '=');
		if (eq) {
			klen = (size_t)(eq - key);
			value = eq + 1;
		} else if (i + 1 < n) {
			klen = strlen(key);
			value = opts[++i];
		} else {
			fprintf(stderr, "vtpm-bridge create: --%s needs a value\n", key);
			goto fail;
		}
		if (strpbrk(value, "\n\r") || memchr(key, '\n', klen)) {
			fprintf(stderr, "vtpm-bridge create: --%.*s: a value is one line\n", (int)klen, key);
			goto fail;
		}
		need = len + klen + strlen(value) + 5;
		if (need > CONF_FILE_MAX) {
			fprintf(stderr, "vtpm-bridge create: the definition would exceed %d bytes\n", CONF_FILE_MAX);
			goto fail;
		}
		if (need > size) {
			size = need * 2;
			grown = realloc(text, size);
			if (!grown)
				goto fail;
			text = grown;
		}
		len += (size_t)snprintf(text + len, size - len, "%.*s = %s\n", (int)klen, key, value);
	}
	return text;

fail:
	free(text);
	return NULL;
}

static int cmd_create(const struct instance_dirs *dirs, const char *name, char **opts, int nopts)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	char *text = create_text(opts, nopts);
	struct conf c;
	int fd, ret, err = 0;

	if (!text)
		return 1;
	ret = conf_parse(&c, name, "command line", text, strlen(text));
	conf_free(&c);
	if (ret < 0) {
		free(text);
		return 1;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/%s.conf", dirs->conf, name) >= sizeof(path) ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.conf.%d~", dirs->conf, name, (int)getpid()) >= sizeof(tmp)) {
		fprintf(stderr, "vtpm-bridge create: --confdir %s: name too long\n", dirs->conf);
		free(text);
		return 1;
	}
	if (mkdir(dirs->conf, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "vtpm-bridge create: cannot create %s: %s\n", dirs->conf, strerror(errno));
		free(text);
		return 1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "vtpm-bridge create: cannot write %s: %s\n", tmp, strerror(errno));
		free(text);
		return 1;
	}
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text) || fsync(fd) < 0)
		err = errno ? errno : EIO;
	close(fd);
	free(text);
	/* link(), not rename(): an existing definition is never replaced. */
	if (!err && link(tmp, path) < 0)
		err = errno;
	unlink(tmp);
	if (err == EEXIST) {
		fprintf(stderr, "vtpm-bridge create: %s exists: instance '%s' is defined already\n", path, name);
		return 1;
	}
	if (err) {
		fprintf(stderr, "vtpm-bridge create: cannot write %s: %s\n", path, strerror(err));
		return 1;
	}
	printf("created %s\n", path);
	return 0;
}

/* A running instance's record, or 0 when it is not running. */
static pid_t instance_running(const struct instance_dirs *dirs, const char *name)
{
	struct instance_record rec;

	return instance_read(&rec, dirs->run, name) == 0 ? rec.pid : 0;
}

/* Its files in the run dir: the record, the ready mark, the default sockets (left by a crash), its dir. */
static void instance_remove_run_files(const struct instance_dirs *dirs, const char *name)
{
	static const char *const socks[] = { "ctrl.sock", "data.sock" };
	char path[PATH_MAX];

	for (size_t i = 0; i < sizeof(socks) / sizeof(socks[0]); i++) {
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s/%s", dirs->run, name, socks[i]);
		if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
			unlink(path);
	}
	instance_unpublish(name, dirs->run, dirs->cdi);
	snprintf(path, sizeof(path), "%s/%s", dirs->run, name);
	if (rmdir(path) < 0 && errno != ENOENT)
		fprintf(stderr, "vtpm-bridge: cannot remove %s: %s\n", path, strerror(errno));
}

static int cmd_destroy(const struct instance_dirs *dirs, const char *name)
{
	char path[PATH_MAX];
	pid_t pid = instance_running(dirs, name);
	struct conf c;

	if (pid) {
		fprintf(stderr, "vtpm-bridge destroy: instance '%s' is running (pid %d): stop it first "
			"(systemctl stop vtpm-bridge@%s)\n", name, (int)pid, name);
		return 1;
	}
	snprintf(path, sizeof(path), "%s/%s.conf", dirs->conf, name);
	/* A definition that no longer parses can still be destroyed; the state is kept either way. */
	if (conf_load(&c, dirs->conf, name) == 0)
		printf("the state of '%s' is kept in %s\n", name, c.state_dir);
	conf_free(&c);
	if (unlink(path) < 0) {
		fprintf(stderr, "vtpm-bridge destroy: %s: %s\n", path, strerror(errno));
		return 1;
	}
	instance_remove_run_files(dirs, name);
	printf("destroyed %s\n", path);
	return 0;
}

static int cmd_cleanup(const struct instance_dirs *dirs, const char *name)
{
	pid_t pid = instance_running(dirs, name);

	if (pid) {
		fprintf(stderr, "vtpm-bridge cleanup: instance '%s' is running (pid %d): nothing removed\n", name,
			(int)pid);
		return 1;
	}
	instance_remove_run_files(dirs, name);
	return 0;
}

/* The rule's question: whose is kernel node KERNELNAME?  udev imports the lines printed. */
static int cmd_udev_node(const struct instance_dirs *dirs, const char *kernel)
{
	DIR *dir = opendir(dirs->run);
	struct dirent *e;

	if (!dir)
		return 0;
	while ((e = readdir(dir))) {
		char name[CONF_NAME_MAX + 1];
		struct instance_record rec;
		const char *suffix = NULL;

		if (!instance_file_name(e->d_name, "", ".instance", name) || instance_read(&rec, dirs->run, name) < 0)
			continue;
		if (!strcmp(kernel, rec.tpm))
			suffix = "";
		else if (!strcmp(kernel, rec.tpmrm))
			suffix = "-rm";
		else if (strcmp(kernel, rec.cuse))
			continue;
		printf("VTPM_BRIDGE_NAME=%s\n", rec.name);
		if (suffix)
			printf("VTPM_BRIDGE_LINK=vtpm/%s%s\n", rec.name, suffix);
		printf("VTPM_BRIDGE_OWNER=%s\nVTPM_BRIDGE_GROUP=%s\nVTPM_BRIDGE_MODE=%04o\n", rec.owner, rec.group,
		       (unsigned int)rec.mode);
		break;
	}
	closedir(dir);
	return 0;
}

/*
 * The kernel removed node KERNELNAME: a CDI spec that still names it as
 * hostPath belongs to an instance that is gone (killed, or run without
 * the unit after --runas, so no `cleanup`), and must go before the number
 * is reused by another TPM.  A live instance's spec stays.
 */
static int cmd_udev_removed(const struct instance_dirs *dirs, const char *kernel)
{
	char needle[INSTANCE_NODE_MAX + 32];
	DIR *dir = opendir(dirs->cdi);
	struct dirent *e;

	if (!dir)
		return 0;
	snprintf(needle, sizeof(needle), "\"hostPath\": \"/dev/%s\"", kernel);
	while ((e = readdir(dir))) {
		char name[CONF_NAME_MAX + 1], path[PATH_MAX], text[4096];
		struct instance_record rec;

		if (!instance_file_name(e->d_name, "vtpm-bridge-", ".json", name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dirs->cdi, e->d_name);
		if (instance_read_file(path, text, sizeof(text), false) <= 0 || !strstr(text, needle))
			continue;
		if (instance_read(&rec, dirs->run, name) == 0 &&
		    (!strcmp(kernel, rec.tpm) || !strcmp(kernel, rec.tpmrm) || !strcmp(kernel, rec.cuse)))
			continue;
		if (unlink(path) < 0 && errno != ENOENT)
			fprintf(stderr, "vtpm-bridge udev-removed: %s: %s\n", path, strerror(errno));
	}
	closedir(dir);
	return 0;
}

/*
 * The rule's other question: which instances should start now that
 * /dev/vtpmx or /dev/cuse exists?  Those set to autostart that need it and
 * whose other kernel devices exist too (whichever appears last starts them).
 */
static int cmd_udev_wants(const struct instance_dirs *dirs, const char *device)
{
	unsigned int need;
	size_t n, len = 0;
	char **names, wants[8192] = "";

	if (!strcmp(device, "vtpm-proxy"))
		need = CONF_FRONT_VTPM_PROXY;
	else if (!strcmp(device, "cuse"))
		need = CONF_FRONT_CUSE;
	else {
		fprintf(stderr, "vtpm-bridge udev-wants: '%s' is not vtpm-proxy or cuse\n", device);
		return 2;
	}
	names = instance_names(dirs->conf, &n);
	if (!names)
		return 1;
	for (size_t i = 0; i < n; i++) {
		struct conf c;

		if (conf_load(&c, dirs->conf, names[i]) == 0 && c.autostart && (c.fronts & need) &&
		    (!(c.fronts & CONF_FRONT_VTPM_PROXY) || access("/dev/vtpmx", F_OK) == 0) &&
		    (!(c.fronts & CONF_FRONT_CUSE) || access("/dev/cuse", F_OK) == 0) &&
		    len + strlen(names[i]) + 24 < sizeof(wants))
			len += (size_t)snprintf(wants + len, sizeof(wants) - len, "%svtpm-bridge@%s.service",
						len ? " " : "", names[i]);
		conf_free(&c);
	}
	instance_names_free(names, n);
	if (len)
		printf("SYSTEMD_WANTS=%s\n", wants);
	return 0;
}

static const char *const instance_cmds[] = {
	"list", "status", "create", "destroy", "cleanup", "udev-node", "udev-wants", "udev-removed",
};

bool instance_cmd_is(const char *word)
{
	for (size_t i = 0; i < sizeof(instance_cmds) / sizeof(instance_cmds[0]); i++) {
		if (!strcmp(word, instance_cmds[i]))
			return true;
	}
	return false;
}

int instance_cmd_main(int argc, char **argv)
{
	const char *cmd = argv[0], *name = NULL;
	struct instance_dirs dirs;
	char **rest = calloc((size_t)argc + 1, sizeof(*rest));
	int nrest, ret;

	if (!rest)
		return 1;
	ret = instance_args(argc, argv, &dirs, rest, &nrest);
	if (ret) {
		ret = ret < 0 ? 0 : ret;
		goto out;
	}
	if (!strcmp(cmd, "list")) {
		ret = nrest ? 2 : cmd_list(&dirs);
		if (nrest)
			fprintf(stderr, "vtpm-bridge list: unexpected argument '%s'\n", rest[0]);
		goto out;
	}
	if (!strncmp(cmd, "udev-", 5)) {
		if (nrest != 1) {
			fprintf(stderr, "vtpm-bridge %s: one argument expected\n", cmd);
			ret = 2;
		} else if (!strcmp(cmd, "udev-node")) {
			ret = cmd_udev_node(&dirs, rest[0]);
		} else if (!strcmp(cmd, "udev-wants")) {
			ret = cmd_udev_wants(&dirs, rest[0]);
		} else {
			ret = cmd_udev_removed(&dirs, rest[0]);
		}
		goto out;
	}
	ret = instance_one_name(cmd, rest, nrest, &name);
	if (ret)
		goto out;
	if (!strcmp(cmd, "status"))
		ret = cmd_status(&dirs, name);
	else if (!strcmp(cmd, "create"))
		ret = cmd_create(&dirs, name, rest + 1, nrest - 1);
	else if (!strcmp(cmd, "destroy"))
		ret = cmd_destroy(&dirs, name);
	else
		ret = cmd_cleanup(&dirs, name);
out:
	free(rest);
	return ret;
}

int instance_run_prepare(struct instance_run *run, int argc, char **argv)
{
	char **rest = calloc((size_t)argc + 1, sizeof(*rest));
	const char *name;
	int nrest, ret;
	pid_t pid;

	memset(run, 0, sizeof(*run));
	if (!rest)
		return 1;
	ret = instance_args(argc, argv, &run->dirs, rest, &nrest);
	if (!ret)
		ret = instance_one_name("run", rest, nrest, &name);
	free(rest);
	if (ret)
		return ret;
	if (conf_load(&run->conf, run->dirs.conf, name) < 0)
		return 1;
	/* A second daemon would take the first one's sockets and record. */
	pid = instance_running(&run->dirs, name);
	if (pid) {
		fprintf(stderr, "vtpm-bridge run: instance '%s' is running already (pid %d)\n", name, (int)pid);
		return 1;
	}
	run->argv = conf_argv(&run->conf, run->dirs.run);
	if (!run->argv) {
		fprintf(stderr, "vtpm-bridge run: out of memory\n");
		return 1;
	}
	while (run->argv[run->argc])
		run->argc++;
	return 0;
}

/* mkdir -p for the parents (0755), then path itself with mode: 0 if made or there, else -errno. */
static int instance_mkdirs(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0)
		return errno == EEXIST ? 1 : -errno;
	return 0;
}

int instance_run_dirs(const struct instance_run *run)
{
	const struct conf *c = &run->conf;
	struct passwd *pw = getpwnam(c->user);
	struct group *gr = getgrnam(c->group);
	char dir[PATH_MAX];
	int ret;

	if (!pw || !gr) {
		fprintf(stderr, "vtpm-bridge run: no %s '%s'\n", pw ? "group" : "user", pw ? c->group : c->user);
		return -1;
	}
	/* A new state dir is the service user's; an existing one is left as the operator made it. */
	ret = instance_mkdirs(c->state_dir, 0750);
	if (ret == 0 && chown(c->state_dir, pw->pw_uid, pw->pw_gid) < 0)
		ret = -errno;
	if (ret < 0) {
		fprintf(stderr, "vtpm-bridge run: state-dir %s: %s\n", c->state_dir, strerror(-ret));
		return -1;
	}
	/* The run dir: the daemon writes its ready mark there after --runas; the group reaches the sockets. */
	snprintf(dir, sizeof(dir), "%s/%s", run->dirs.run, c->name);
	ret = instance_mkdirs(dir, 0750);
	if (ret >= 0 && (chown(dir, pw->pw_uid, gr->gr_gid) < 0 || chmod(dir, 0750) < 0))
		ret = -errno;
	if (ret < 0) {
		fprintf(stderr, "vtpm-bridge run: %s: %s\n", dir, strerror(-ret));
		return -1;
	}
	/* Where the CDI spec goes (root's, as the record's directory). */
	ret = instance_mkdirs(run->dirs.cdi, 0755);
	if (ret < 0) {
		fprintf(stderr, "vtpm-bridge run: %s: %s\n", run->dirs.cdi, strerror(-ret));
		return -1;
	}
	return 0;
}

void instance_run_free(struct instance_run *run)
{
	conf_argv_free(run->argv);
	run->argv = NULL;
	conf_free(&run->conf);
}
