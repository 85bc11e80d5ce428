/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The state directory (../shared/spec/state-files.md, sections 1 and 2):
 * tpm2-00.<name> files in swtpm's format, replaced atomically through a
 * TMP2-00.<name> file, and the .lock file swtpm also locks.
 *
 * Durability (docs/durability-measurements.md).  sync: the temp file is
 * fsynced and committed before a store returns.  bounded: a store writes
 * the temp file and renames it to <name>.pending, unsynced (a process
 * crash loses nothing: the page cache has it), and returns; the flusher
 * thread renames .pending to .syncing, fsyncs it and commits it.  A commit
 * keeps the replaced file as <name>.prev (a hard link), renames the new
 * one over <name> and fsyncs the directory, so <name> is never an unsynced
 * inode.  When the lock is taken, a .pending or .syncing file that passes
 * its digest is newer than <name> (the process died) and is committed; a
 * damaged one is what a power cut left, and is removed.
 *
 * All file operations go through one O_DIRECTORY descriptor, opened on
 * first use, so they keep working after a chroot and the directory can be
 * fsynced.  The store's caller uses it from one thread at a time; the
 * flusher shares what bounded needs under mu.
 */
#include "state-store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define STATE_LOCK_NAME		".lock"
#define STATE_LOCK_MODE		0660
#define STATE_NAME_MAX		64
#define STATE_PREV_SUFFIX	".prev"	/* the state before the last commit */
#define STATE_PENDING_SUFFIX	".pending"	/* a bounded store: complete, not synced */
#define STATE_SYNCING_SUFFIX	".syncing"	/* taken by the flusher, being synced */

struct state_dir {
	struct state_store store;	/* first: the generic layer's view */
	int dir_fd;			/* -1 until first needed */
	int lock_fd;			/* -1 while unlocked */
	bool no_prev;			/* link() is refused here: commits keep no .prev */
	/* bounded: the stores and the flusher share these under mu */
	pthread_mutex_t mu;
	pthread_cond_t wake;		/* to the flusher: a store is pending, or quit */
	pthread_cond_t synced;		/* from the flusher: a round is over */
	pthread_t flusher;
	bool flusher_started;
	bool quit;
	unsigned int pending;		/* bit 1 << kind: its .pending file is the newest */
	unsigned int syncing;		/* bit 1 << kind: its .syncing file is the round's */
	struct timespec pending_since;	/* when the oldest store now pending returned */
	struct timespec syncing_since;	/* the same for the round */
	int sync_err;			/* a failed sync: every later store and flush fail with it */
};

static int state_dir_flush(struct state_store *st);
static int state_dir_recover(struct state_dir *dir);

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

/* "tpm2-00.permall" + suffix. */
static int state_dir_name_with(struct state_dir *dir, enum state_kind kind, const char *suffix,
			       char name[STATE_NAME_MAX])
{
	int ret = state_dir_at(dir, kind, name);
	size_t n = strlen(name);

	if (ret < 0)
		return ret;
	if (n + strlen(suffix) >= STATE_NAME_MAX)
		return -ENAMETOOLONG;
	memcpy(name + n, suffix, strlen(suffix) + 1);
	return ret;
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
	/* Before anything reads or writes a state: the last process may have died mid-store. */
	err = state_dir_recover(dir);
	if (err) {
		close(fd);
		dir->lock_fd = -1;
	}
	return err;
}

static void state_dir_unlock(struct state_store *st)
{
	struct state_dir *dir = state_dir_of(st);

	/* The next owner of the directory must find every store committed. */
	if (state_dir_flush(st) < 0)
		log_err("%s: unlocked with state writes that could not be synced", st->name);
	close(dir->lock_fd);
	dir->lock_fd = -1;
}

/* ---- load ---- */

/* fd is open on name; reads it whole, as fstat sized it. */
static int state_dir_read_fd(struct state_dir *dir, int fd, const char *name,
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

/*
 * Reads dfd/name whole; -ENOENT (not logged) when it is absent.  follow:
 * symlinks are followed, as swtpm does for the state files; our own
 * .prev/.pending/.syncing files never are.  O_NONBLOCK only keeps a FIFO
 * planted under the name from hanging us; the S_ISREG check rejects it.
 */
static int state_dir_read(struct state_dir *dir, int dfd, const char *name, bool follow,
			  uint8_t **data, size_t *len)
{
	int fd = openat(dfd, name, O_RDONLY | O_NONBLOCK | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW));
	int ret;

	if (fd < 0) {
		ret = -errno;
		if (ret != -ENOENT)
			log_errno(LOG_ERR, -ret, "cannot open %s/%s", dir->store.path, name);
		return ret;
	}
	ret = state_dir_read_fd(dir, fd, name, data, len);
	close(fd);
	return ret;
}

static int state_dir_load(struct state_store *st, enum state_kind kind, uint8_t **file, size_t *len)
{
	struct state_dir *dir = state_dir_of(st);
	char name[STATE_NAME_MAX];
	int dfd, ret;

	/* A load sees the newest store: a pending one is committed first. */
	ret = state_dir_flush(st);
	if (ret)
		return ret;
	dfd = state_dir_at(dir, kind, name);
	if (dfd < 0)
		return dfd;
	return state_dir_read(dir, dfd, name, true, file, len);
}

/* ---- store ---- */

/*
 * Creates tmp, writes file into it and closes it, fsynced first when sync;
 * on error it is gone.  A stale temp file from a crash is truncated and
 * reused.  O_NONBLOCK as for a load: a FIFO planted under the name would
 * block this open, and the TPM with it, for good; now the store fails
 * (ENXIO).
 */
static int state_dir_write_tmp(struct state_dir *dir, int dfd, const char *tmp,
			       const uint8_t *file, size_t file_len, bool sync)
{
	int fd, ret;

	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
		    dir->store.mode);
	if (fd < 0) {
		ret = -errno;
		log_errno(LOG_ERR, -ret, "cannot create %s/%s", dir->store.path, tmp);
		return ret;
	}
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
	if (sync && fsync(fd) < 0) {
		ret = -errno;
		log_errno(LOG_ERR, -ret, "cannot fsync %s/%s", dir->store.path, tmp);
		goto close_fd;
	}
	/* NFS and friends report write-back errors here. */
	if (close(fd) < 0) {
		ret = -errno;
		log_errno(LOG_ERR, -ret, "cannot close %s/%s", dir->store.path, tmp);
		goto unlink_tmp;
	}
	return 0;

close_fd:
	close(fd);
unlink_tmp:
	unlinkat(dfd, tmp, 0);
	return ret;
}

/* fsync of a complete file by name: a round's .syncing file, a recovered one. */
static int state_dir_sync_file(struct state_dir *dir, int dfd, const char *name)
{
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	int ret = 0;

	if (fd < 0 || fsync(fd) < 0)
		ret = -errno;
	if (fd >= 0)
		close(fd);
	if (ret)
		log_errno(LOG_ERR, -ret, "cannot fsync %s/%s", dir->store.path, name);
	return ret;
}

/*
 * <name>.prev becomes a second name of the file a commit is about to
 * replace: the previous good copy, should the new one be found damaged.  A
 * hard link, because the alternatives leave a window in which a crash
 * confuses recovery (RENAME_EXCHANGE leaves the old file under the name of
 * the new one) or no <name> exists at all (rename to .prev first).  Linked
 * before .prev is dropped, so with no <name> (the first store, or one set
 * aside) .prev is untouched and false is returned.  A file system without
 * hard links keeps none; never a reason to fail the store.
 */
static bool state_dir_keep_prev(struct state_dir *dir, int dfd, const char *name, const char *prev)
{
	int err;

	if (dir->no_prev || linkat(dfd, name, dfd, prev, 0) == 0)
		return true;
	err = errno;
	if (err == EEXIST) {	/* the usual case: the last commit's .prev */
		if (unlinkat(dfd, prev, 0) == 0 && linkat(dfd, name, dfd, prev, 0) == 0)
			return true;
		err = errno;
	}
	if (err == ENOENT)
		return false;
	if (err == EPERM || err == EOPNOTSUPP) {
		dir->no_prev = true;
		log_info("%s: the file system has no hard links (%s): no %s copies are kept",
			 dir->store.name, strerror(err), STATE_PREV_SUFFIX);
	} else {
		log_errno(LOG_WARNING, err, "cannot keep %s/%s", dir->store.path, prev);
	}
	return true;
}

/*
 * src, complete and synced, replaces kind's file; the replaced one stays
 * as .prev.  Once renamed the commit has succeeded, even if the directory
 * fsync then fails: every reader sees the new file, and an error would
 * claim the old one is still there.  Without the directory sync a power
 * loss may bring the old one back; the next commit syncs it again.
 */
static int state_dir_commit(struct state_dir *dir, enum state_kind kind, const char *src)
{
	char name[STATE_NAME_MAX], prev[STATE_NAME_MAX];
	bool replaces;
	int dfd;

	dfd = state_dir_name_with(dir, kind, STATE_PREV_SUFFIX, prev);
	if (dfd < 0)
		return dfd;
	dfd = state_dir_at(dir, kind, name);
	if (dfd < 0)
		return dfd;
	replaces = state_dir_keep_prev(dir, dfd, name, prev);
	if (renameat(dfd, src, dfd, name) < 0) {
		int ret = -errno;

		log_errno(LOG_ERR, -ret, "cannot rename %s/%s to %s", dir->store.path, src, name);
		return ret;
	}
	/*
	 * A .prev beside no <name> is an earlier TPM's (its state was removed,
	 * or is being made anew): never a fallback for this one.  Dropped only
	 * now, so a crash before the rename keeps it, as a restore from it needs.
	 */
	if (!replaces && unlinkat(dfd, prev, 0) < 0 && errno != ENOENT)
		log_errno(LOG_WARNING, errno, "cannot remove %s/%s", dir->store.path, prev);
	if (fsync(dfd) < 0)
		log_errno(LOG_ERR, errno, "cannot fsync directory %s: %s may not survive a power loss",
			  dir->store.path, name);
	return 0;
}

/* sync: the temp file is written, fsynced and committed before the store returns. */
static int state_dir_store_sync(struct state_dir *dir, enum state_kind kind, const uint8_t *file, size_t file_len)
{
	char tmp[STATE_NAME_MAX];
	int dfd, ret;

	ret = state_dir_name(dir, kind, true, tmp, sizeof(tmp));
	if (ret)
		return ret;
	dfd = state_dir_fd(dir);
	if (dfd < 0)
		return dfd;
	ret = state_dir_write_tmp(dir, dfd, tmp, file, file_len, true);
	if (ret)
		return ret;
	ret = state_dir_commit(dir, kind, tmp);
	if (ret)
		unlinkat(dfd, tmp, 0);
	return ret;
}

/* ---- bounded: the flusher ---- */

static long state_ms_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)(now.tv_sec - t->tv_sec) * 1000L + (now.tv_nsec - t->tv_nsec) / 1000000L;
}

/* Under mu: has the oldest store not yet synced waited longer than the bound? */
static bool state_dir_overdue(const struct state_dir *dir)
{
	const struct timespec *oldest = dir->syncing ? &dir->syncing_since
				      : dir->pending ? &dir->pending_since : NULL;

	return oldest && state_ms_since(oldest) > (long)dir->store.durability_ms;
}

/* Under mu: the pending files become the round's .syncing files, named in *taken. */
static int state_dir_take(struct state_dir *dir, unsigned int *taken)
{
	for (enum state_kind kind = STATE_PERMANENT; kind <= STATE_SAVESTATE; kind++) {
		char pending[STATE_NAME_MAX], syncing[STATE_NAME_MAX];
		int dfd;

		if (!(dir->pending & 1u << kind))
			continue;
		dfd = state_dir_name_with(dir, kind, STATE_PENDING_SUFFIX, pending);
		if (dfd >= 0)
			dfd = state_dir_name_with(dir, kind, STATE_SYNCING_SUFFIX, syncing);
		if (dfd < 0)
			return dfd;
		if (renameat(dfd, pending, dfd, syncing) < 0) {
			int err = errno;

			log_errno(LOG_ERR, err, "cannot rename %s/%s to %s", dir->store.path, pending, syncing);
			return -err;
		}
		*taken |= 1u << kind;
	}
	return 0;
}

/* Without mu: each .syncing file in taken is synced and committed. */
static int state_dir_sync_round(struct state_dir *dir, unsigned int taken)
{
	for (enum state_kind kind = STATE_PERMANENT; kind <= STATE_SAVESTATE; kind++) {
		char syncing[STATE_NAME_MAX];
		int dfd, ret;

		if (!(taken & 1u << kind))
			continue;
		dfd = state_dir_name_with(dir, kind, STATE_SYNCING_SUFFIX, syncing);
		if (dfd < 0)
			return dfd;
		ret = state_dir_sync_file(dir, dfd, syncing);
		if (!ret)
			ret = state_dir_commit(dir, kind, syncing);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * Rounds until told to quit, and a last one then: what is pending when a
 * round starts is taken, synced and committed, while new stores make new
 * pending files for the next.  A failed round is final (sync_err): after a
 * failed fsync the kernel may have dropped the data, and a retried fsync
 * can report success for pages it never wrote.  The .syncing file stays;
 * a restart recovers it.
 */
static void *state_dir_flusher_main(void *arg)
{
	struct state_dir *dir = arg;

	pthread_mutex_lock(&dir->mu);
	for (;;) {
		unsigned int taken = 0;
		int ret;

		while (!dir->quit && (!dir->pending || dir->sync_err))
			pthread_cond_wait(&dir->wake, &dir->mu);
		if (!dir->pending || dir->sync_err)
			break;
		ret = state_dir_take(dir, &taken);
		dir->syncing = taken;
		dir->syncing_since = dir->pending_since;
		dir->pending &= ~taken;
		if (!ret) {
			pthread_mutex_unlock(&dir->mu);
			ret = state_dir_sync_round(dir, taken);
			pthread_mutex_lock(&dir->mu);
		}
		if (ret) {
			log_err("%s: a state could not be synced: from now on every state write fails; "
				"restart to recover the newest state", dir->store.name);
			dir->sync_err = ret;
		} else {
			dir->syncing = 0;
		}
		pthread_cond_broadcast(&dir->synced);
	}
	pthread_mutex_unlock(&dir->mu);
	return NULL;
}

/*
 * bounded: the temp file is written and renamed to .pending, unsynced, and
 * the flusher is told.  The store waits only while the oldest store not yet
 * synced is older than the bound.  Without a flusher thread (EAGAIN under
 * a pids limit) the store is synced instead.
 */
static int state_dir_store_bounded(struct state_dir *dir, enum state_kind kind, const uint8_t *file,
				   size_t file_len)
{
	char tmp[STATE_NAME_MAX], pending[STATE_NAME_MAX];
	int dfd, ret;

	ret = state_dir_name(dir, kind, true, tmp, sizeof(tmp));
	if (ret)
		return ret;
	dfd = state_dir_name_with(dir, kind, STATE_PENDING_SUFFIX, pending);
	if (dfd < 0)
		return dfd;
	pthread_mutex_lock(&dir->mu);
	if (!dir->flusher_started) {
		ret = pthread_create(&dir->flusher, NULL, state_dir_flusher_main, dir);
		if (ret) {
			pthread_mutex_unlock(&dir->mu);
			log_errno(LOG_WARNING, ret, "%s: cannot start the flusher thread; this store is synced "
				  "before it returns", dir->store.name);
			return state_dir_store_sync(dir, kind, file, file_len);
		}
		dir->flusher_started = true;
	}
	if (!dir->sync_err && state_dir_overdue(dir)) {
		struct timespec since;

		clock_gettime(CLOCK_MONOTONIC, &since);
		while (!dir->sync_err && state_dir_overdue(dir))
			pthread_cond_wait(&dir->synced, &dir->mu);
		log_warn("%s: a state write waited %ld ms: a sync took longer than the %u ms bound",
			 dir->store.name, state_ms_since(&since), dir->store.durability_ms);
	}
	ret = dir->sync_err;
	if (ret)
		log_err("%s: refusing a state write: an earlier sync failed; restart to recover",
			dir->store.name);
	if (!ret)
		ret = state_dir_write_tmp(dir, dfd, tmp, file, file_len, false);
	if (!ret && renameat(dfd, tmp, dfd, pending) < 0) {
		ret = -errno;
		log_errno(LOG_ERR, -ret, "cannot rename %s/%s to %s", dir->store.path, tmp, pending);
		unlinkat(dfd, tmp, 0);
	}
	if (!ret) {
		if (!dir->pending)
			clock_gettime(CLOCK_MONOTONIC, &dir->pending_since);
		dir->pending |= 1u << kind;
		pthread_cond_signal(&dir->wake);
	}
	pthread_mutex_unlock(&dir->mu);
	return ret;
}

static int state_dir_store(struct state_store *st, enum state_kind kind, const uint8_t *file, size_t file_len)
{
	struct state_dir *dir = state_dir_of(st);

	if (st->durability == STATE_DURABILITY_BOUNDED)
		return state_dir_store_bounded(dir, kind, file, file_len);
	return state_dir_store_sync(dir, kind, file, file_len);
}

/* Every store that returned is committed (or sync_err, returned again). */
static int state_dir_flush(struct state_store *st)
{
	struct state_dir *dir = state_dir_of(st);
	int ret;

	pthread_mutex_lock(&dir->mu);
	while (!dir->sync_err && (dir->pending || dir->syncing))
		pthread_cond_wait(&dir->synced, &dir->mu);
	ret = dir->sync_err;
	pthread_mutex_unlock(&dir->mu);
	return ret;
}

/* ---- recovery, when the lock is taken ---- */

/*
 * kind's .pending file, else its .syncing file, is newer than the file
 * itself.  One that passes its digest was acknowledged before the last
 * process ended: it is synced and committed.  One that does not is what a
 * power cut left of a store that was never synced: it is removed (saying
 * so), and the older, durable file stays.  An older copy than the one
 * recovered is removed too.
 */
static int state_dir_recover_kind(struct state_dir *dir, enum state_kind kind)
{
	static const char *const newest_first[] = { STATE_PENDING_SUFFIX, STATE_SYNCING_SUFFIX };
	char name[STATE_NAME_MAX], found[STATE_NAME_MAX] = "";
	int dfd, ret;

	for (size_t i = 0; i < sizeof(newest_first) / sizeof(newest_first[0]); i++) {
		struct state_file_report rep = { .at = SIZE_MAX };
		uint8_t *data;
		size_t len;

		dfd = state_dir_name_with(dir, kind, newest_first[i], name);
		if (dfd < 0)
			return dfd;
		if (found[0]) {
			if (unlinkat(dfd, name, 0) == 0)
				log_info("%s: removed %s: %s is newer", dir->store.name, name, found);
			else if (errno != ENOENT)
				log_errno(LOG_WARNING, errno, "cannot remove %s/%s", dir->store.path, name);
			continue;
		}
		ret = state_dir_read(dir, dfd, name, false, &data, &len);
		if (ret == -ENOENT)
			continue;
		if (ret)
			return ret;
		ret = state_file_check(data, len, kind, &rep);
		free(data);
		if (ret == 0 && rep.tagged) {
			memcpy(found, name, sizeof(found));
			continue;
		}
		log_warn("%s: removing %s: %s%s (%zu bytes): a write that was not yet synced when the system "
			 "went down; the state before it stays", dir->store.name, name,
			 ret ? "damaged: " : "it has no digest", ret && rep.problem ? rep.problem : "", len);
		if (unlinkat(dfd, name, 0) < 0) {
			ret = -errno;
			log_errno(LOG_ERR, -ret, "cannot remove %s/%s", dir->store.path, name);
			return ret;
		}
	}
	if (!found[0])
		return 0;
	ret = state_dir_sync_file(dir, dfd, found);
	if (!ret)
		ret = state_dir_commit(dir, kind, found);
	if (!ret)
		log_info("%s: recovered %s: a write acknowledged before the last process ended, now synced",
			 dir->store.name, found);
	return ret;
}

static int state_dir_recover(struct state_dir *dir)
{
	for (enum state_kind kind = STATE_PERMANENT; kind <= STATE_SAVESTATE; kind++) {
		int ret = state_dir_recover_kind(dir, kind);

		if (ret)
			return ret;
	}
	return 0;
}

/* ---- remove, size ---- */

static int state_dir_remove(struct state_store *st, enum state_kind kind)
{
	struct state_dir *dir = state_dir_of(st);
	char names[2][STATE_NAME_MAX];
	bool removed = false;
	int dfd, ret;

	/* A pending store of the kind is committed first, not after the removal. */
	ret = state_dir_flush(st);
	if (ret)
		return ret;
	/* Its .prev goes too: a fallback must not bring back a removed state. */
	dfd = state_dir_name_with(dir, kind, STATE_PREV_SUFFIX, names[1]);
	if (dfd >= 0)
		dfd = state_dir_at(dir, kind, names[0]);
	if (dfd < 0)
		return dfd;
	for (size_t i = 0; i < 2; i++) {
		if (unlinkat(dfd, names[i], 0) == 0) {
			removed = true;
		} else if (errno != ENOENT) {
			ret = -errno;
			log_errno(LOG_ERR, -ret, "cannot remove %s/%s", dir->store.path, names[i]);
			return ret;
		}
	}
	/* A volatile state that comes back after a power loss would be resumed. */
	if (removed && fsync(dfd) < 0) {
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

	/* The flusher's last round commits what is still pending. */
	if (dir->flusher_started) {
		pthread_mutex_lock(&dir->mu);
		dir->quit = true;
		pthread_cond_signal(&dir->wake);
		pthread_mutex_unlock(&dir->mu);
		pthread_join(dir->flusher, NULL);
	}
	pthread_cond_destroy(&dir->synced);
	pthread_cond_destroy(&dir->wake);
	pthread_mutex_destroy(&dir->mu);
	if (dir->lock_fd >= 0)
		close(dir->lock_fd);
	if (dir->dir_fd >= 0)
		close(dir->dir_fd);
	free(dir);
}

/* ---- the previous copy, and damaged files ---- */


static int state_dir_read_prev(struct state_store *st, enum state_kind kind, uint8_t **file, size_t *len)
{
	struct state_dir *dir = state_dir_of(st);
	char name[STATE_NAME_MAX];
	int dfd = state_dir_name_with(dir, kind, STATE_PREV_SUFFIX, name);

	return dfd < 0 ? dfd : state_dir_read(dir, dfd, name, false, file, len);
}

/* tpm2-00.permall -> tpm2-00.permall.damaged-YYYYmmddTHHMMSSZ[-N], never over another file. */
static int state_dir_set_aside(struct state_store *st, enum state_kind kind, char **kept)
{
	struct state_dir *dir = state_dir_of(st);
	char name[STATE_NAME_MAX], aside[STATE_NAME_MAX + 32], stamp[24];
	time_t now = time(NULL);
	struct tm tm;
	int dfd, ret = -EEXIST;

	dfd = state_dir_at(dir, kind, name);
	if (dfd < 0)
		return dfd;
	if (!gmtime_r(&now, &tm) || !strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm))
		return -EINVAL;
	for (unsigned int n = 0; n < 100 && ret == -EEXIST; n++) {
		int len = n ? snprintf(aside, sizeof(aside), "%s.damaged-%s-%u", name, stamp, n)
			    : snprintf(aside, sizeof(aside), "%s.damaged-%s", name, stamp);

		if (len < 0 || (size_t)len >= sizeof(aside))
			return -ENAMETOOLONG;
		ret = renameat2(dfd, name, dfd, aside, RENAME_NOREPLACE) < 0 ? -errno : 0;
	}
	if (ret) {
		log_errno(LOG_ERR, -ret, "%s: cannot move the damaged %s aside", st->name, name);
		return ret;
	}
	if (fsync(dfd) < 0)
		log_errno(LOG_WARNING, errno, "%s: fsync after moving %s aside", st->name, name);
	*kept = strdup(aside);
	return *kept ? 0 : -ENOMEM;
}

static const struct state_store_ops state_dir_ops = {
	.check = state_dir_check,
	.lock = state_dir_lock,
	.unlock = state_dir_unlock,
	.read = state_dir_load,
	.write = state_dir_store,
	.remove = state_dir_remove,
	.flush = state_dir_flush,
	.list = state_dir_list,
	.read_prev = state_dir_read_prev,
	.set_aside = state_dir_set_aside,
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
	pthread_mutex_init(&dir->mu, NULL);
	pthread_cond_init(&dir->wake, NULL);
	pthread_cond_init(&dir->synced, NULL);
	return &dir->store;
}
