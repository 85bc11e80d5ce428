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
#include "state-store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define STATE_LOCK_NAME		".lock"
#define STATE_LOCK_MODE		0660
#define STATE_NAME_MAX		64

struct state_dir {
	struct state_store store;	/* first: the generic layer's view */
	int dir_fd;			/* -1 until first needed */
	int lock_fd;			/* -1 while unlocked */
};

static struct state_dir *state_dir_of(struct state_store *st)
{
	return (struct state_dir *)st;
}

static int state_dir_fd(struct state_dir *dir)
{
	int fd;

	if (dir->dir_fd >= 0)
		return dir->dir_fd;
	fd = open(dir->store.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		int err = errno;

		log_errno(LOG_ERR, err, "cannot open state directory %s", dir->store.path);
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
	n = snprintf(buf, size, "%s%s-00.%s", tmp ? "TMP" : "tpm", dir->store.tpm2 ? "2" : "", kname);
	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	return 0;
}

/* The directory's descriptor, with name set to kind's file name; or -errno. */
static int state_dir_at(struct state_dir *dir, enum state_kind kind, char name[STATE_NAME_MAX])
{
	int ret = state_dir_name(dir, kind, false, name, STATE_NAME_MAX);

	return ret ? ret : state_dir_fd(dir);
}

/* ---- lock ---- */

static int state_dir_lock(struct state_store *st)
{
	struct state_dir *dir = state_dir_of(st);
	struct flock fl = {
		.l_type = F_WRLCK,
		.l_whence = SEEK_SET,
		.l_start = 0,
		.l_len = 0,	/* the whole file, as swtpm locks it */
	};
	int dfd, fd, err;

	dfd = state_dir_fd(dir);
	if (dfd < 0)
		return dfd;
	/* Created and truncated like swtpm does; it stays empty and is never deleted. */
	fd = openat(dfd, STATE_LOCK_NAME, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		    STATE_LOCK_MODE);
	if (fd < 0) {
		err = errno;
		log_errno(LOG_ERR, err, "cannot open lock file %s/%s", dir->store.path, STATE_LOCK_NAME);
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
			log_debug("state directory %s is locked by another process", dir->store.path);
			return -EAGAIN;
		}
		log_errno(LOG_ERR, err, "cannot lock %s/%s", dir->store.path, STATE_LOCK_NAME);
		return -err;
	}
	dir->lock_fd = fd;
	return 0;
}

static void state_dir_unlock(struct state_store *st)
{
	struct state_dir *dir = state_dir_of(st);

	close(dir->lock_fd);
	dir->lock_fd = -1;
}

/* ---- load ---- */

/* fd is open on name; reads it whole, as fstat sized it. */
static int state_dir_read(struct state_dir *dir, int fd, const char *name,
			  uint8_t **data, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	int ret;

	if (fstat(fd, &st) < 0) {
		ret = -errno;
		log_errno(LOG_ERR, -ret, "cannot stat %s/%s", dir->store.path, name);
		return ret;
	}
	if (!S_ISREG(st.st_mode)) {
		log_err("%s/%s is not a regular file", dir->store.path, name);
		return -EINVAL;
	}
	if (st.st_size > (off_t)STATE_FILE_MAX) {
		log_err("%s/%s is too big (%lld bytes, at most %u)", dir->store.path, name,
			(long long)st.st_size, STATE_FILE_MAX);
		return -EFBIG;
	}
	/* mode= applies to every state file, also to ones someone else created (swtpm 0.9+). */
	if (dir->store.mode_set && (st.st_mode & 07777) != dir->store.mode && fchmod(fd, dir->store.mode) < 0) {
		ret = -errno;
		log_errno(LOG_ERR, -ret, "cannot chmod %s/%s to %04o", dir->store.path, name,
			  (unsigned int)dir->store.mode);
		return ret;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf)
		return -ENOMEM;
	ret = state_pread_all(fd, buf, (size_t)st.st_size, 0);
	if (ret) {
		log_errno(LOG_ERR, -ret, "cannot read %s/%s", dir->store.path, name);
		free(buf);
		return ret;
	}
	*data = buf;
	*len = (size_t)st.st_size;
	return 0;
}

static int state_dir_load(struct state_store *st, enum state_kind kind, uint8_t **file, size_t *len)
{
	struct state_dir *dir = state_dir_of(st);
	char name[STATE_NAME_MAX];
	int dfd, fd, ret;

	dfd = state_dir_at(dir, kind, name);
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
			log_errno(LOG_ERR, -ret, "cannot open %s/%s", dir->store.path, name);
		return ret;
	}
	ret = state_dir_read(dir, fd, name, file, len);
	close(fd);
	return ret;
}

/* ---- store ---- */

/* Writes, syncs and closes the temp file; fd is closed on every path. */
static int state_dir_write_tmp(struct state_dir *dir, int fd, const char *tmp,
			       const uint8_t *file, size_t file_len)
{
	int ret;

	/* O_CREAT's mode is reduced by the umask; mode= asks for an exact one (as swtpm 0.9+). */
	if (dir->store.mode_set && fchmod(fd, dir->store.mode) < 0) {
		ret = -errno;
		log_errno(LOG_ERR, -ret, "cannot chmod %s/%s", dir->store.path, tmp);
		goto close_fd;
	}
	ret = state_pwrite_all(fd, file, file_len, 0);
	if (ret) {
		log_errno(LOG_ERR, -ret, "cannot write %s/%s", dir->store.path, tmp);
		goto close_fd;
	}
	if (dir->store.fsync && fsync(fd) < 0) {
		ret = -errno;
		log_errno(LOG_ERR, -ret, "cannot fsync %s/%s", dir->store.path, tmp);
		goto close_fd;
	}
	/* NFS and friends report write-back errors here. */
	if (close(fd) < 0) {
		ret = -errno;
		log_errno(LOG_ERR, -ret, "cannot close %s/%s", dir->store.path, tmp);
		return ret;
	}
	return 0;

close_fd:
	close(fd);
	return ret;
}

static int state_dir_store(struct state_store *st, enum state_kind kind, const uint8_t *file, size_t file_len)
{
	struct state_dir *dir = state_dir_of(st);
	char name[STATE_NAME_MAX], tmp[STATE_NAME_MAX];
	int dfd, fd, ret;

	ret = state_dir_name(dir, kind, true, tmp, sizeof(tmp));
	if (ret)
		return ret;
	dfd = state_dir_at(dir, kind, name);
	if (dfd < 0)
		return dfd;

	/*
	 * A stale temp file from a crash is truncated and reused.  O_NONBLOCK
	 * as for a load: a FIFO planted under the name would block this open,
	 * and the TPM with it, for good; now the store fails (ENXIO).
	 */
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
		    dir->store.mode);
	if (fd < 0) {
		ret = -errno;
		log_errno(LOG_ERR, -ret, "cannot create %s/%s", dir->store.path, tmp);
		return ret;
	}
	ret = state_dir_write_tmp(dir, fd, tmp, file, file_len);
	if (ret)
		goto unlink_tmp;
	if (renameat(dfd, tmp, dfd, name) < 0) {
		ret = -errno;
		log_errno(LOG_ERR, -ret, "cannot rename %s/%s to %s", dir->store.path, tmp, name);
		goto unlink_tmp;
	}
	/*
	 * The new file is what every reader sees now, so this is a success
	 * whatever follows: an error would claim the old file is still there.
	 * Without the directory sync a power loss may bring the old one back;
	 * the next store syncs the directory again.
	 */
	if (dir->store.fsync && fsync(dfd) < 0)
		log_errno(LOG_ERR, errno, "cannot fsync directory %s: %s may not survive a power loss",
			  dir->store.path, name);
	return 0;

unlink_tmp:
	unlinkat(dfd, tmp, 0);
	return ret;
}

/* ---- remove, size ---- */

static int state_dir_remove(struct state_store *st, enum state_kind kind)
{
	struct state_dir *dir = state_dir_of(st);
	char name[STATE_NAME_MAX];
	int dfd, ret;

	dfd = state_dir_at(dir, kind, name);
	if (dfd < 0)
		return dfd;
	if (unlinkat(dfd, name, 0) < 0) {
		ret = -errno;
		if (ret == -ENOENT)
			return 0;
		log_errno(LOG_ERR, -ret, "cannot remove %s/%s", dir->store.path, name);
		return ret;
	}
	/* A volatile state that comes back after a power loss would be resumed. */
	if (dir->store.fsync && fsync(dfd) < 0) {
		ret = -errno;
		log_errno(LOG_ERR, -ret, "cannot fsync directory %s", dir->store.path);
		return ret;
	}
	return 0;
}

/* As swtpm's --print-states: the size of each file, header included. */
static int state_dir_list(struct state_store *st, struct state_info out[STATE_LINEAR_SLOTS], size_t *n)
{
	struct state_dir *dir = state_dir_of(st);
	char name[STATE_NAME_MAX];
	int dfd, ret;

	/* As swtpm: listing takes the lock, so it fails while a TPM serves the directory. */
	ret = state_lock(st);
	if (ret < 0) {
		log_errno(LOG_ERR, -ret, "cannot lock %s", st->name);
		return ret;
	}
	dfd = state_dir_fd(dir);
	if (dfd < 0)
		return dfd;
	for (enum state_kind kind = STATE_PERMANENT; kind <= STATE_SAVESTATE; kind++) {
		struct stat sb;

		ret = state_dir_name(dir, kind, false, name, sizeof(name));
		if (ret)
			return ret;
		if (fstatat(dfd, name, &sb, 0) < 0) {
			ret = -errno;
			if (ret == -ENOENT)
				continue;
			log_errno(LOG_ERR, -ret, "cannot stat %s/%s", dir->store.path, name);
			return ret;
		}
		out[*n].name = state_kind_name(kind);
		out[*n].size = (size_t)sb.st_size;
		(*n)++;
	}
	return 0;
}

static int state_dir_check(struct state_store *st)
{
	struct stat sb;

	if (stat(st->path, &sb) < 0) {
		int err = errno;

		log_errno(LOG_ERR, err, "%s", st->name);
		return -err;
	}
	if (!S_ISDIR(sb.st_mode)) {
		log_errno(LOG_ERR, ENOTDIR, "%s", st->name);
		return -ENOTDIR;
	}
	return 0;
}

static void state_dir_destroy(struct state_store *st)
{
	struct state_dir *dir = state_dir_of(st);

	if (dir->lock_fd >= 0)
		close(dir->lock_fd);
	if (dir->dir_fd >= 0)
		close(dir->dir_fd);
	free(dir);
}

static const struct state_store_ops state_dir_ops = {
	.check = state_dir_check,
	.lock = state_dir_lock,
	.unlock = state_dir_unlock,
	.read = state_dir_load,
	.write = state_dir_store,
	.remove = state_dir_remove,
	.list = state_dir_list,
	.destroy = state_dir_destroy,
};

struct state_store *state_dir_new(void)
{
	struct state_dir *dir = calloc(1, sizeof(*dir));

	if (!dir)
		return NULL;
	dir->store.ops = &state_dir_ops;
	dir->dir_fd = -1;
	dir->lock_fd = -1;
	return &dir->store;
}
