/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The state directory (../shared/spec/state-files.md, sections 1 and 2):
 * tpm2-00.<name> files in swtpm's format, replaced atomically through a
 * TMP2-00.<name> file, and the .lock file swtpm also locks.
 *
 * All file operations go through one O_DIRECTORY descriptor, opened on
 * first use, so they keep working after a chroot and the directory can be
 * fsynced.  A struct state_dir is used by one thread at a time.
 */
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

/* libtpms blobs are a few KiB; refuse to malloc whatever a file claims. */
#define STATE_FILE_MAX		(16u * 1024 * 1024)
#define STATE_LOCK_NAME		".lock"
#define STATE_LOCK_MODE		0660
#define STATE_NAME_MAX		64

struct state_dir {
	char *path;
	mode_t mode;
	bool mode_set;
	bool tpm2;
	bool fsync;
	int dir_fd;		/* -1 until first needed */
	int lock_fd;		/* -1 while unlocked */
};

int state_dir_open(struct state_dir **out, const struct state_dir_config *cfg)
{
	struct state_dir *dir;

	if (!cfg->path || !cfg->path[0] || (cfg->mode & ~(mode_t)07777))
		return -EINVAL;
	dir = calloc(1, sizeof(*dir));
	if (!dir)
		return -ENOMEM;
	dir->path = strdup(cfg->path);
	if (!dir->path) {
		free(dir);
		return -ENOMEM;
	}
	dir->mode = cfg->mode;
	dir->mode_set = cfg->mode_set;
	dir->tpm2 = cfg->tpm2;
	dir->fsync = cfg->fsync;
	dir->dir_fd = -1;
	dir->lock_fd = -1;
	*out = dir;
	return 0;
}

void state_dir_close(struct state_dir *dir)
{
	if (!dir)
		return;
	state_dir_unlock(dir);
	if (dir->dir_fd >= 0)
		close(dir->dir_fd);
	free(dir->path);
	free(dir);
}

const char *state_dir_path(const struct state_dir *dir)
{
	return dir->path;
}

static int state_dir_fd(struct state_dir *dir)
{
	int fd;

	if (dir->dir_fd >= 0)
		return dir->dir_fd;
	fd = open(dir->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		int err = errno;

		log_errno(LOG_ERR, err, "cannot open state directory %s", dir->path);
		return -err;
	}
	dir->dir_fd = fd;
	return fd;
}

/* "tpm2-00.permall", or with tmp "TMP2-00.permall"; TPM 1.2 drops the 2. */
static int state_dir_name(const struct state_dir *dir, enum state_kind kind, bool tmp,
			  char *buf, size_t size)
{
	const char *kname = state_kind_name(kind);
	int n;

	if (!kname)
		return -EINVAL;
	n = snprintf(buf, size, "%s%s-00.%s", tmp ? "TMP" : "tpm", dir->tpm2 ? "2" : "", kname);
	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	return 0;
}

/* ---- lock ---- */

int state_dir_lock(struct state_dir *dir)
{
	struct flock fl = {
		.l_type = F_WRLCK,
		.l_whence = SEEK_SET,
		.l_start = 0,
		.l_len = 0,	/* the whole file, as swtpm locks it */
	};
	int dfd, fd, err;

	if (dir->lock_fd >= 0)
		return 0;
	dfd = state_dir_fd(dir);
	if (dfd < 0)
		return dfd;
	/* Created and truncated like swtpm does; it stays empty and is never deleted. */
	fd = openat(dfd, STATE_LOCK_NAME, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		    STATE_LOCK_MODE);
	if (fd < 0) {
		err = errno;
		log_errno(LOG_ERR, err, "cannot open lock file %s/%s", dir->path, STATE_LOCK_NAME);
		return -err;
	}
	/*
	 * An OFD lock conflicts with swtpm's fcntl(F_SETLK) lock, yet unlike
	 * that one it is not dropped when some other descriptor of .lock in
	 * this process is closed.
	 */
	if (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
		err = errno;
		close(fd);
		if (err == EAGAIN || err == EACCES) {
			/* The caller says it once where it matters; LOCK_STORAGE retries would repeat it. */
			log_debug("state directory %s is locked by another process", dir->path);
			return -EAGAIN;
		}
		log_errno(LOG_ERR, err, "cannot lock %s/%s", dir->path, STATE_LOCK_NAME);
		return -err;
	}
	dir->lock_fd = fd;
	return 0;
}

void state_dir_unlock(struct state_dir *dir)
{
	if (dir->lock_fd < 0)
		return;
	close(dir->lock_fd);
	dir->lock_fd = -1;
}

bool state_dir_locked(const struct state_dir *dir)
{
	return dir->lock_fd >= 0;
}

/* ---- load ---- */

static int state_read_all(int fd, uint8_t *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(fd, buf + done, len - done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;	/* shrank since fstat */
		done += (size_t)n;
	}
	return 0;
}

/* fd is open on name; reads it whole, as fstat sized it. */
static int state_dir_read(struct state_dir *dir, int fd, const char *name,
			  uint8_t **data, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	int ret;

	if (fstat(fd, &st) < 0) {
		ret = -errno;
		log_errno(LOG_ERR, -ret, "cannot stat %s/%s", dir->path, name);
		return ret;
	}
	if (!S_ISREG(st.st_mode)) {
		log_err("%s/%s is not a regular file", dir->path, name);
		return -EINVAL;
	}
	if (st.st_size > (off_t)STATE_FILE_MAX) {
		log_err("%s/%s is too big (%lld bytes, at most %u)", dir->path, name,
			(long long)st.st_size, STATE_FILE_MAX);
		return -EFBIG;
	}
	/* mode= applies to every state file, also to ones someone else created (swtpm 0.9+). */
	if (dir->mode_set && (st.st_mode & 07777) != dir->mode && fchmod(fd, dir->mode) < 0) {
		ret = -errno;
		log_errno(LOG_ERR, -ret, "cannot chmod %s/%s to %04o", dir->path, name,
			  (unsigned int)dir->mode);
		return ret;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf)
		return -ENOMEM;
	ret = state_read_all(fd, buf, (size_t)st.st_size);
	if (ret) {
		log_errno(LOG_ERR, -ret, "cannot read %s/%s", dir->path, name);
		free(buf);
		return ret;
	}
	*data = buf;
	*len = (size_t)st.st_size;
	return 0;
}

int state_dir_load(struct state_dir *dir, enum state_kind kind, uint8_t **payload, size_t *len)
{
	char name[STATE_NAME_MAX];
	const uint8_t *plain;
	uint8_t *file = NULL, *copy;
	size_t file_len = 0, plain_len;
	int dfd, fd, ret;

	ret = state_dir_name(dir, kind, false, name, sizeof(name));
	if (ret)
		return ret;
	dfd = state_dir_fd(dir);
	if (dfd < 0)
		return dfd;
	/*
	 * Symlinks are followed, as swtpm does.  O_NONBLOCK only keeps a FIFO
	 * planted under the name from hanging us; the S_ISREG check rejects it.
	 */
	fd = openat(dfd, name, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		if (ret != -ENOENT)	/* no state yet */
			log_errno(LOG_ERR, -ret, "cannot open %s/%s", dir->path, name);
		return ret;
	}
	ret = state_dir_read(dir, fd, name, &file, &file_len);
	close(fd);
	if (ret)
		return ret;

	ret = state_file_decode(file, file_len, &plain, &plain_len);
	if (ret == -ENOKEY) {
		log_err("%s/%s is encrypted; no state key is configured", dir->path, name);
		goto free_file;
	}
	if (ret) {
		log_err("%s/%s is not a valid swtpm state file", dir->path, name);
		goto free_file;
	}
	copy = malloc(plain_len ? plain_len : 1);
	if (!copy) {
		ret = -ENOMEM;
		goto free_file;
	}
	if (plain_len)
		memcpy(copy, plain, plain_len);
	*payload = copy;
	*len = plain_len;
free_file:
	free(file);
	return ret;
}

/* ---- store ---- */

static int state_write_all(int fd, const uint8_t *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(fd, buf + done, len - done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

/* Writes, syncs and closes the temp file; fd is closed on every path. */
static int state_dir_write_tmp(struct state_dir *dir, int fd, const char *tmp,
			       const uint8_t *file, size_t file_len)
{
	int ret;

	/* O_CREAT's mode is reduced by the umask; mode= asks for an exact one (as swtpm 0.9+). */
	if (dir->mode_set && fchmod(fd, dir->mode) < 0) {
		ret = -errno;
		log_errno(LOG_ERR, -ret, "cannot chmod %s/%s", dir->path, tmp);
		goto close_fd;
	}
	ret = state_write_all(fd, file, file_len);
	if (ret) {
		log_errno(LOG_ERR, -ret, "cannot write %s/%s", dir->path, tmp);
		goto close_fd;
	}
	if (dir->fsync && fsync(fd) < 0) {
		ret = -errno;
		log_errno(LOG_ERR, -ret, "cannot fsync %s/%s", dir->path, tmp);
		goto close_fd;
	}
	/* NFS and friends report write-back errors here. */
	if (close(fd) < 0) {
		ret = -errno;
		log_errno(LOG_ERR, -ret, "cannot close %s/%s", dir->path, tmp);
		return ret;
	}
	return 0;

close_fd:
	close(fd);
	return ret;
}

int state_dir_store(struct state_dir *dir, enum state_kind kind, const uint8_t *payload, size_t len)
{
	char name[STATE_NAME_MAX], tmp[STATE_NAME_MAX];
	uint8_t *file;
	size_t file_len;
	int dfd, fd, ret;

	ret = state_dir_name(dir, kind, false, name, sizeof(name));
	if (ret)
		return ret;
	ret = state_dir_name(dir, kind, true, tmp, sizeof(tmp));
	if (ret)
		return ret;
	dfd = state_dir_fd(dir);
	if (dfd < 0)
		return dfd;
	ret = state_file_encode(payload, len, &file, &file_len);
	if (ret)
		return ret;
	/* Never write what state_dir_load would refuse. */
	if (file_len > STATE_FILE_MAX) {
		log_err("%s state of %zu bytes is too big for %s (at most %u)",
			state_kind_name(kind), len, dir->path, STATE_FILE_MAX);
		ret = -EFBIG;
		goto free_file;
	}

	/* A stale temp file from a crash is truncated and reused. */
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, dir->mode);
	if (fd < 0) {
		ret = -errno;
		log_errno(LOG_ERR, -ret, "cannot create %s/%s", dir->path, tmp);
		goto free_file;
	}
	ret = state_dir_write_tmp(dir, fd, tmp, file, file_len);
	if (ret)
		goto unlink_tmp;
	if (renameat(dfd, tmp, dfd, name) < 0) {
		ret = -errno;
		log_errno(LOG_ERR, -ret, "cannot rename %s/%s to %s", dir->path, tmp, name);
		goto unlink_tmp;
	}
	/*
	 * The new file is what every reader sees now, so this is a success
	 * whatever follows: an error would claim the old file is still there.
	 * Without the directory sync a power loss may bring the old one back;
	 * the next store syncs the directory again.
	 */
	if (dir->fsync && fsync(dfd) < 0)
		log_errno(LOG_ERR, errno, "cannot fsync directory %s: %s may not survive a power loss",
			  dir->path, name);
	goto free_file;

unlink_tmp:
	unlinkat(dfd, tmp, 0);
free_file:
	free(file);
	return ret;
}

/* ---- remove, size ---- */

int state_dir_remove(struct state_dir *dir, enum state_kind kind)
{
	char name[STATE_NAME_MAX];
	int dfd, ret;

	ret = state_dir_name(dir, kind, false, name, sizeof(name));
	if (ret)
		return ret;
	dfd = state_dir_fd(dir);
	if (dfd < 0)
		return dfd;
	if (unlinkat(dfd, name, 0) < 0) {
		ret = -errno;
		if (ret == -ENOENT)
			return 0;
		log_errno(LOG_ERR, -ret, "cannot remove %s/%s", dir->path, name);
		return ret;
	}
	/* A volatile state that comes back after a power loss would be resumed. */
	if (dir->fsync && fsync(dfd) < 0) {
		ret = -errno;
		log_errno(LOG_ERR, -ret, "cannot fsync directory %s", dir->path);
		return ret;
	}
	return 0;
}

int state_dir_file_size(struct state_dir *dir, enum state_kind kind, size_t *size)
{
	char name[STATE_NAME_MAX];
	struct stat st;
	int dfd, ret;

	ret = state_dir_name(dir, kind, false, name, sizeof(name));
	if (ret)
		return ret;
	dfd = state_dir_fd(dir);
	if (dfd < 0)
		return dfd;
	if (fstatat(dfd, name, &st, 0) < 0) {
		ret = -errno;
		if (ret != -ENOENT)
			log_errno(LOG_ERR, -ret, "cannot stat %s/%s", dir->path, name);
		return ret;
	}
	*size = (size_t)st.st_size;
	return 0;
}
