/* SPDX-License-Identifier: BSD-3-Clause */
#include "instance.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "file-replace.h"
#include "log.h"

/* Our own small files: anything bigger is not ours. */
#define INSTANCE_FILE_MAX	4096

unsigned long long instance_starttime(pid_t pid)
{
	char path[64], buf[1024];
	unsigned long long start = 0;
	const char *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* "PID (COMM) STATE ...": COMM may hold blanks and ')', so count from the last ')'. */
	p = strrchr(buf, ')');
	if (!p)
		return 0;
	/* Field 3 (state) follows; starttime is field 22. */
	for (int field = 2; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p + 1, "%llu", &start) != 1)
		return 0;
	return start;
}

void instance_record_init(struct instance_record *rec, const struct conf *c)
{
	memset(rec, 0, sizeof(*rec));
	snprintf(rec->name, sizeof(rec->name), "%s", c->name);
	rec->pid = getpid();
	rec->starttime = instance_starttime(rec->pid);
	snprintf(rec->owner, sizeof(rec->owner), "%s", c->owner);
	snprintf(rec->group, sizeof(rec->group), "%s", c->group);
	rec->mode = c->mode;
}

/*
 * dir/name, whole or not at all; readable by all whatever the umask (the
 * unit's is 0027): a container runtime of another user reads the spec.
 */
static int instance_write_file(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX];
	int err;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		return -ENAMETOOLONG;
	err = file_replace(path, text, strlen(text), 0644, true);
	if (err < 0)
		log_errno(LOG_ERR, -err, "cannot write %s", path);
	return err;
}

/*
 * The CDI spec (cdiVersion 0.5.0: deviceNodes with hostPath): the
 * container's /dev/tpmrm0 and /dev/tpm0 are the instance's vtpm-proxy
 * nodes, or /dev/tpm0 its CUSE node (the same command interface).  The
 * runtime reads the node's type and numbers from hostPath.
 */
static int instance_cdi_text(const struct instance_record *rec, char *buf, size_t size)
{
	char nodes[512] = "";
	size_t len = 0;
	const struct {
		const char *path, *host;
	} map[] = {
		{ "/dev/tpmrm0", rec->tpmrm },
		{ "/dev/tpm0", rec->tpm[0] ? rec->tpm : rec->cuse },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (!map[i].host[0])
			continue;
		len += (size_t)snprintf(nodes + len, sizeof(nodes) - len,
					"%s\n          { \"path\": \"%s\", \"hostPath\": \"/dev/%s\", "
					"\"permissions\": \"rw\" }", len ? "," : "", map[i].path, map[i].host);
	}
	if (!len)
		return 0;
	return snprintf(buf, size,
			"{\n"
			"  \"cdiVersion\": \"0.5.0\",\n"
			"  \"kind\": \"vtpm-bridge.io/tpm\",\n"
			"  \"devices\": [\n"
			"    {\n"
			"      \"name\": \"%s\",\n"
			"      \"containerEdits\": {\n"
			"        \"deviceNodes\": [%s\n"
			"        ]\n"
			"      }\n"
			"    }\n"
			"  ]\n"
			"}\n", rec->name, nodes);
}

int instance_write_record(const struct instance_record *rec, const char *rundir)
{
	char file[CONF_NAME_MAX + 16], text[1024];

	snprintf(file, sizeof(file), "%s.instance", rec->name);
	snprintf(text, sizeof(text), "pid=%d\nstarttime=%llu\nowner=%s\ngroup=%s\nmode=%04o\n"
		 "tpm=%s\ntpmrm=%s\ncuse=%s\n", (int)rec->pid, rec->starttime, rec->owner,
		 rec->group, (unsigned int)rec->mode, rec->tpm, rec->tpmrm, rec->cuse);
	return instance_write_file(rundir, file, text);
}

int instance_write_ready(const struct instance_record *rec, const char *rundir)
{
	char dir[PATH_MAX], text[32];

	if ((size_t)snprintf(dir, sizeof(dir), "%s/%s", rundir, rec->name) >= sizeof(dir))
		return -ENAMETOOLONG;
	snprintf(text, sizeof(text), "%d\n", (int)rec->pid);
	return instance_write_file(dir, "ready", text);
}

int instance_write_cdi(const struct instance_record *rec, const char *cdidir)
{
	char text[1024], cdi[CONF_NAME_MAX + 32];

	if (instance_cdi_text(rec, text, sizeof(text)) <= 0)
		return 0;
	snprintf(cdi, sizeof(cdi), "vtpm-bridge-%s.json", rec->name);
	return instance_write_file(cdidir, cdi, text);
}

void instance_unpublish(const char *name, const char *rundir, const char *cdidir)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/vtpm-bridge-%s.json", cdidir, name);
	if (unlink(path) < 0 && errno != ENOENT)
		log_debug("cannot remove %s: %s", path, strerror(errno));
	snprintf(path, sizeof(path), "%s/%s.instance", rundir, name);
	if (unlink(path) < 0 && errno != ENOENT)
		log_debug("cannot remove %s: %s", path, strerror(errno));
	snprintf(path, sizeof(path), "%s/%s/ready", rundir, name);
	if (unlink(path) < 0 && errno != ENOENT)
		log_debug("cannot remove %s: %s", path, strerror(errno));
}

/* Copies a value into dst (size bytes) if it fits and holds only what a name may: else -EINVAL. */
static int instance_value(char *dst, size_t size, const char *v)
{
	size_t n = strlen(v);

	if (n >= size)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!(v[i] >= '0' && v[i] <= '9') && !(v[i] >= 'a' && v[i] <= 'z') && !(v[i] >= 'A' && v[i] <= 'Z') &&
		    !strchr("_.-", v[i]))
			return -EINVAL;
	}
	memcpy(dst, v, n + 1);
	return 0;
}

int instance_record_parse(struct instance_record *rec, const char *buf, size_t len)
{
	char text[INSTANCE_FILE_MAX + 1], *save = NULL;

	if (len == 0 || len > INSTANCE_FILE_MAX || memchr(buf, '\0', len))
		return -EINVAL;
	memcpy(text, buf, len);
	text[len] = '\0';
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *v = strchr(line, '='), *end;
		unsigned long long n;
		int ret = 0;

		if (!v)
			return -EINVAL;
		*v++ = '\0';
		if (!strcmp(line, "owner"))
			ret = instance_value(rec->owner, sizeof(rec->owner), v);
		else if (!strcmp(line, "group"))
			ret = instance_value(rec->group, sizeof(rec->group), v);
		else if (!strcmp(line, "tpm"))
			ret = instance_value(rec->tpm, sizeof(rec->tpm), v);
		else if (!strcmp(line, "tpmrm"))
			ret = instance_value(rec->tpmrm, sizeof(rec->tpmrm), v);
		else if (!strcmp(line, "cuse"))
			ret = instance_value(rec->cuse, sizeof(rec->cuse), v);
		else {
			errno = 0;
			n = strtoull(v, &end, !strcmp(line, "mode") ? 8 : 10);
			if (errno || end == v || *end || *v == '-' || *v == '+' || *v == ' ')
				return -EINVAL;
			if (!strcmp(line, "pid") && n > 0 && n <= INT_MAX)
				rec->pid = (pid_t)n;
			else if (!strcmp(line, "starttime"))
				rec->starttime = n;
			else if (!strcmp(line, "mode") && n <= 0777)
				rec->mode = (mode_t)n;
			else
				return -EINVAL;
		}
		if (ret < 0)
			return ret;
	}
	return rec->pid > 0 && rec->starttime && rec->owner[0] && rec->group[0] ? 0 : -EINVAL;
}

ssize_t instance_read_file(const char *path, char *buf, size_t size, bool trusted)
{
	struct stat st;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errno == ELOOP ? -EINVAL : -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (trusted && st.st_uid != 0 && st.st_uid != geteuid())) {
		close(fd);
		return -EINVAL;
	}
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -EINVAL;
	buf[n] = '\0';
	return n;
}

int instance_read(struct instance_record *rec, const char *rundir, const char *name)
{
	char path[PATH_MAX], text[INSTANCE_FILE_MAX + 2];
	ssize_t n;
	int ret;

	memset(rec, 0, sizeof(*rec));
	if ((size_t)snprintf(path, sizeof(path), "%s/%s.instance", rundir, name) >= sizeof(path) ||
	    strlen(name) >= sizeof(rec->name))
		return -ENAMETOOLONG;
	/* Records are root's (written before --runas): anyone else's names nothing (but one's own). */
	n = instance_read_file(path, text, sizeof(text), true);
	if (n < 0)
		return (int)n;
	if (n == 0)
		return -EINVAL;
	ret = instance_record_parse(rec, text, (size_t)n);
	if (ret < 0)
		return ret;
	memcpy(rec->name, name, strlen(name) + 1);
	return instance_starttime(rec->pid) == rec->starttime ? 0 : -ESRCH;
}

bool instance_ready(const struct instance_record *rec, const char *rundir)
{
	char path[PATH_MAX], text[32];

	snprintf(path, sizeof(path), "%s/%s/ready", rundir, rec->name);
	return instance_read_file(path, text, sizeof(text), false) > 0 && strtol(text, NULL, 10) == rec->pid;
}

bool instance_udev_done(const struct instance_record *rec)
{
	const char *const nodes[] = { rec->tpm, rec->tpmrm, rec->cuse };

	if (access("/run/udev/control", F_OK) < 0)
		return true;
	for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++) {
		char path[INSTANCE_NODE_MAX + 32];
		struct stat st;

		if (!nodes[i][0])
			continue;
		snprintf(path, sizeof(path), "/dev/%s", nodes[i]);
		if (stat(path, &st) < 0 || !S_ISCHR(st.st_mode))
			return false;
		snprintf(path, sizeof(path), "/run/udev/data/c%u:%u", major(st.st_rdev), minor(st.st_rdev));
		if (access(path, F_OK) < 0)
			return false;
	}
	return true;
}
