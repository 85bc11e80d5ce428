/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * swtpm's linear state file (../shared/spec/state-file-backend.md): all
 * states of a TPM in one regular file or block device, a 192-byte header
 * with a slot table in front of power-of-two sections.
 *
 * The format is swtpm's; the way we write it is not.  swtpm overwrites
 * sections in place through a shared mapping, so a crash tears them.  We
 * lay out every store as a new run of sections in space no live section
 * uses (below the live run if it fits there, else after it), sync it, and
 * only then rewrite the header, which lies in the first 512-byte sector:
 * one sector write is the commit.  A crash leaves the old header and the
 * old sections, or the new ones.  Sections stay back to back in slot
 * order, as swtpm's compaction needs when it takes the file over; the
 * space before the run is free, which swtpm copes with.
 *
 * The volume is opened on first use and kept open, as swtpm does.  It is
 * formatted only when empty: zero length, or a zero magic (never written,
 * or erased by swtpm_setup).  Anything else without our magic is refused:
 * swtpm 0.7.1 would wipe it and make a TPM with new seeds.
 */
#include "state-store.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bytes.h"
#include "log.h"

#define LINEAR_MAGIC		0x737774706d6c696eull	/* "swtpmlin", stored little-endian */
#define LINEAR_VERSION		1
#define LINEAR_SLOTS_ALL	15
#define LINEAR_SLOT_SIZE	12
#define LINEAR_SLOT_TABLE	12			/* offset of slot 0 */

struct state_linear {
	struct state_store store;	/* first: the generic layer's view */
	int fd;				/* -1 until first needed; kept until close */
	bool blockdev;
	bool formatted;			/* the magic was there at the last header read */
};

static struct state_linear *state_linear_of(struct state_store *st)
{
	return (struct state_linear *)st;
}

/* ---- the header: pure, bounded, fuzzed ---- */

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

int state_linear_decode(const uint8_t hdr[STATE_LINEAR_HDR_SIZE], uint64_t vol_len,
			struct state_linear_layout *out)
{
	uint64_t magic = get_le64(hdr);

	memset(out, 0, sizeof(*out));
	if (magic == 0)
		return -ENODATA;
	if (magic != LINEAR_MAGIC || vol_len < STATE_LINEAR_HDR_SIZE)
		return -EBADMSG;
	if (hdr[8] > LINEAR_VERSION)
		return -EPROTONOSUPPORT;
	if ((hdr[10] | hdr[11] << 8) != STATE_LINEAR_HDR_SIZE)
		return -EBADMSG;
	for (unsigned int i = 0; i < LINEAR_SLOTS_ALL; i++) {
		const uint8_t *e = hdr + LINEAR_SLOT_TABLE + LINEAR_SLOT_SIZE * i;
		struct state_linear_slot s = { get_le32(e), get_le32(e + 4), get_le32(e + 8) };

		if (s.offset == 0)
			continue;
		if (i >= STATE_LINEAR_SLOTS)
			return -EBADMSG;	/* swtpm never uses slots 3-14 */
		if (s.offset < STATE_LINEAR_HDR_SIZE || s.data_len > s.section_len ||
		    (uint64_t)s.offset + s.section_len > vol_len)
			return -EBADMSG;
		for (unsigned int j = 0; j < i; j++) {
			const struct state_linear_slot *o = &out->slot[j];

			if (o->offset && (uint64_t)s.offset < (uint64_t)o->offset + o->section_len &&
			    (uint64_t)o->offset < (uint64_t)s.offset + s.section_len)
				return -EBADMSG;
		}
		out->slot[i] = s;
	}
	return 0;
}

void state_linear_encode(const struct state_linear_layout *layout, uint8_t hdr[STATE_LINEAR_HDR_SIZE])
{
	memset(hdr, 0, STATE_LINEAR_HDR_SIZE);
	put_le32(hdr, (uint32_t)LINEAR_MAGIC);
	put_le32(hdr + 4, (uint32_t)(LINEAR_MAGIC >> 32));
	hdr[8] = LINEAR_VERSION;
	hdr[10] = STATE_LINEAR_HDR_SIZE & 0xff;
	hdr[11] = STATE_LINEAR_HDR_SIZE >> 8;
	for (unsigned int i = 0; i < STATE_LINEAR_SLOTS; i++) {
		uint8_t *e = hdr + LINEAR_SLOT_TABLE + LINEAR_SLOT_SIZE * i;

		put_le32(e, layout->slot[i].offset);
		put_le32(e + 4, layout->slot[i].data_len);
		put_le32(e + 8, layout->slot[i].section_len);
	}
}

/* As swtpm sizes a section: the smallest power of two that holds the blob. */
static uint64_t linear_section_len(size_t len)
{
	uint64_t n = 1;

	while (n < len)
		n <<= 1;
	return n;
}

/* ---- the volume ---- */

static int linear_fail(struct state_linear *lf, int err, const char *what)
{
	log_errno(LOG_ERR, err, "%s: %s", lf->store.name, what);
	return -err;
}

/*
 * Opens the volume on first use.  create: at TPM start and for a listing,
 * where swtpm creates a missing file too; a load never creates one.
 */
static int linear_open(struct state_linear *lf, bool create)
{
	struct state_store *st = &lf->store;
	struct stat sb;
	int fd;

	if (lf->fd >= 0)
		return 0;
	/* Symlinks are followed: LVM and udev name volumes through them. */
	fd = open(st->path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), st->mode);
	if (fd < 0) {
		if (errno == ENOENT && !create)
			return -ENOENT;
		return linear_fail(lf, errno, "cannot open");
	}
	if (fstat(fd, &sb) < 0) {
		int err = errno;

		close(fd);
		return linear_fail(lf, err, "cannot stat");
	}
	if (!S_ISREG(sb.st_mode) && !S_ISBLK(sb.st_mode)) {
		close(fd);
		log_err("%s is neither a regular file nor a block device", st->name);
		return -EINVAL;
	}
	/* mode= as swtpm 0.10 honours it: also for a file or node someone else made. */
	if (st->mode_set && (sb.st_mode & 07777) != st->mode && fchmod(fd, st->mode) < 0) {
		int err = errno;

		close(fd);
		return linear_fail(lf, err, "cannot chmod");
	}
	lf->fd = fd;
	lf->blockdev = S_ISBLK(sb.st_mode);
	return 0;
}

static int linear_volume_len(struct state_linear *lf, uint64_t *len)
{
	struct stat sb;

	if (lf->blockdev) {
		if (ioctl(lf->fd, BLKGETSIZE64, len) < 0)
			return linear_fail(lf, errno, "cannot get the device size");
		return 0;
	}
	if (fstat(lf->fd, &sb) < 0)
		return linear_fail(lf, errno, "cannot stat");
	*len = (uint64_t)sb.st_size;
	return 0;
}

/* Reads and checks the header of the open volume; an empty volume has an empty layout. */
static int linear_layout(struct state_linear *lf, int fd, uint64_t vol_len,
			 struct state_linear_layout *layout)
{
	uint8_t hdr[STATE_LINEAR_HDR_SIZE] = { 0 };
	size_t have = vol_len < sizeof(hdr) ? (size_t)vol_len : sizeof(hdr);
	int ret;

	ret = state_pread_all(fd, hdr, have, 0);
	if (ret)
		return linear_fail(lf, -ret, "cannot read the header");
	ret = state_linear_decode(hdr, vol_len, layout);
	lf->formatted = ret == 0;
	switch (ret) {
	case 0:
		return 0;
	case -ENODATA:
		return 0;	/* empty: formatted by the first store */
	case -EPROTONOSUPPORT:
		log_err("%s: linear format version %u is newer than ours (1)", lf->store.name, hdr[8]);
		return ret;
	default:
		log_err("%s is not a valid swtpm linear state file (bad magic, header or slot table); "
			"refusing to use or overwrite it", lf->store.name);
		return -EBADMSG;
	}
}

static int linear_current(struct state_linear *lf, struct state_linear_layout *layout, uint64_t *vol_len)
{
	int ret = linear_volume_len(lf, vol_len);

	return ret ? ret : linear_layout(lf, lf->fd, *vol_len, layout);
}

/* ---- the backend ---- */

static int linear_check(struct state_store *st)
{
	struct state_linear *lf = state_linear_of(st);
	struct state_linear_layout layout;
	uint64_t vol_len;
	int ret;

	ret = linear_open(lf, false);
	if (ret == -ENOENT) {
		/* Created at TPM start; the directory for it must be there. */
		struct stat sb;
		char *dir = strndup(st->path, (size_t)(strrchr(st->path, '/') - st->path));

		if (!dir)
			return -ENOMEM;
		ret = stat(dir[0] ? dir : "/", &sb) < 0 ? -errno : S_ISDIR(sb.st_mode) ? 0 : -ENOTDIR;
		if (ret)
			log_errno(LOG_ERR, -ret, "%s: its directory %s", st->name, dir[0] ? dir : "/");
		free(dir);
		return ret;
	}
	if (ret)
		return ret;
	ret = linear_current(lf, &layout, &vol_len);
	/* Held from TPM start on, as swtpm holds it; not before. */
	close(lf->fd);
	lf->fd = -1;
	return ret;
}

static int linear_lock(struct state_store *st)
{
	struct state_linear *lf = state_linear_of(st);
	struct state_linear_layout layout;
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };	/* the whole file */
	uint64_t vol_len;
	int ret;

	ret = linear_open(lf, true);
	if (ret)
		return ret;
	/*
	 * On the state file itself, as swtpm 0.10's lock option takes it; an
	 * OFD lock conflicts with that POSIX lock and is not dropped when some
	 * other descriptor of the file is closed in this process.
	 */
	if (fcntl(lf->fd, F_OFD_SETLK, &fl) < 0) {
		if (errno == EAGAIN || errno == EACCES) {
			log_debug("%s is locked by another process", st->name);
			return -EAGAIN;
		}
		return linear_fail(lf, errno, "cannot lock");
	}
	/* Checked under the lock: nobody formats or rewrites it now but us. */
	ret = linear_current(lf, &layout, &vol_len);
	if (ret) {
		fl.l_type = F_UNLCK;
		fcntl(lf->fd, F_OFD_SETLK, &fl);
	}
	return ret;
}

static void linear_unlock(struct state_store *st)
{
	struct state_linear *lf = state_linear_of(st);
	struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET };

	if (lf->fd >= 0)
		fcntl(lf->fd, F_OFD_SETLK, &fl);
}

static int linear_read(struct state_store *st, enum state_kind kind, uint8_t **file, size_t *len)
{
	struct state_linear *lf = state_linear_of(st);
	struct state_linear_layout layout;
	const struct state_linear_slot *s;
	uint64_t vol_len;
	uint8_t *buf;
	int ret;

	ret = linear_open(lf, false);
	if (ret)
		return ret;
	ret = linear_current(lf, &layout, &vol_len);
	if (ret)
		return ret;
	s = &layout.slot[kind - 1];
	if (!s->offset)
		return -ENOENT;
	if (s->data_len > STATE_FILE_MAX) {
		log_err("%s: %s is too big (%u bytes, at most %u)", st->name, state_kind_name(kind),
			s->data_len, STATE_FILE_MAX);
		return -EFBIG;
	}
	buf = malloc(s->data_len ? s->data_len : 1);
	if (!buf)
		return -ENOMEM;
	ret = state_pread_all(lf->fd, buf, s->data_len, s->offset);
	if (ret) {
		free(buf);
		return linear_fail(lf, -ret, "cannot read a section");
	}
	*file = buf;
	*len = s->data_len;
	return 0;
}

static int linear_sync(struct state_linear *lf)
{
	return fdatasync(lf->fd) < 0 ? -errno : 0;
}

/*
 * The one way the volume changes: kind's section replaced by file (or
 * dropped when file is NULL; absent is fine), every section rewritten as
 * one new run.
 */
static int linear_commit(struct state_linear *lf, enum state_kind kind, const uint8_t *file, size_t file_len)
{
	struct state_linear_layout old, new = { 0 };
	uint8_t hdr[STATE_LINEAR_HDR_SIZE], *run;
	uint64_t vol_len, run_len = 0, start, old_start = UINT64_MAX, old_end = STATE_LINEAR_HDR_SIZE;
	int ret;

	/* A removal never creates the volume. */
	ret = linear_open(lf, file != NULL);
	if (ret)
		return ret == -ENOENT ? 0 : ret;
	ret = linear_current(lf, &old, &vol_len);
	if (ret || (!file && !old.slot[kind - 1].offset))
		return ret;	/* also: nothing to remove */
	for (unsigned int i = 0; i < STATE_LINEAR_SLOTS; i++) {
		const struct state_linear_slot *s = &old.slot[i];
		size_t len = i == kind - 1u ? (file ? file_len : 0) : s->data_len;

		if (s->offset) {
			old_start = s->offset < old_start ? s->offset : old_start;
			old_end = s->offset + (uint64_t)s->section_len > old_end ? s->offset + (uint64_t)s->section_len
										 : old_end;
		}
		if ((i == kind - 1u && !file) || (i != kind - 1u && !s->offset))
			continue;
		new.slot[i].data_len = (uint32_t)len;
		new.slot[i].section_len = (uint32_t)linear_section_len(len);
		new.slot[i].offset = (uint32_t)run_len;	/* relative until placed */
		run_len += new.slot[i].section_len;
	}
	/* The new run goes where no live section lies: below the old run if it fits, else after it. */
	start = old_start != UINT64_MAX && STATE_LINEAR_HDR_SIZE + run_len <= old_start ? STATE_LINEAR_HDR_SIZE
											: old_end;
	if (start + run_len > UINT32_MAX || (lf->blockdev && start + run_len > vol_len)) {
		/* Both copies must fit: the old one stays until the new one is committed. */
		log_err("%s: no room for the %s state (%llu bytes needed, the volume has %llu); "
			"the previous state is kept", lf->store.name, state_kind_name(kind),
			(unsigned long long)(start + run_len), (unsigned long long)vol_len);
		return -ENOSPC;
	}
	run = calloc(1, run_len ? run_len : 1);	/* zeroed: no stale bytes behind a blob */
	if (!run)
		return -ENOMEM;
	for (unsigned int i = 0; i < STATE_LINEAR_SLOTS; i++) {
		struct state_linear_slot *s = &new.slot[i];

		if (!s->section_len)
			continue;
		if (i == kind - 1u)
			memcpy(run + s->offset, file, file_len);
		else if ((ret = state_pread_all(lf->fd, run + s->offset, s->data_len, old.slot[i].offset)) < 0)
			goto free_run;
		s->offset += (uint32_t)start;
	}
	ret = state_pwrite_all(lf->fd, run, run_len, (off_t)start);
	if (ret == 0)
		ret = linear_sync(lf);
	if (ret)
		goto free_run;
	state_linear_encode(&new, hdr);
	/* swtpm's words, at log level 1: operators and their scripts know this line. */
	if (!lf->formatted)
		log_info("Formatting 'file://%s' as new linear NVRAM store", lf->store.path);
	ret = state_pwrite_all(lf->fd, hdr, sizeof(hdr), 0);
	if (ret == 0)
		ret = linear_sync(lf);
	if (ret)
		goto free_run;
	/* Committed.  A file keeps only the new run; a failed trim merely leaves free space. */
	if (!lf->blockdev && vol_len > start + run_len && ftruncate(lf->fd, (off_t)(start + run_len)) < 0)
		log_errno(LOG_WARNING, errno, "%s: cannot trim", lf->store.name);
free_run:
	if (ret < 0)
		log_errno(LOG_ERR, -ret, "%s: cannot store the %s state; the previous state is kept",
			  lf->store.name, state_kind_name(kind));
	free(run);
	return ret;
}

static int linear_write(struct state_store *st, enum state_kind kind, const uint8_t *file, size_t len)
{
	return linear_commit(state_linear_of(st), kind, file, len);
}

static int linear_remove(struct state_store *st, enum state_kind kind)
{
	return linear_commit(state_linear_of(st), kind, NULL, 0);
}

/* As swtpm's --print-states: each state's blob size.  No lock (swtpm takes none here). */
static int linear_list(struct state_store *st, struct state_info out[STATE_LINEAR_SLOTS], size_t *n)
{
	struct state_linear *lf = state_linear_of(st);
	struct state_linear_layout layout;
	uint64_t vol_len;
	int ret;

	/*
	 * A missing file is created, empty, as swtpm's listing creates it:
	 * swtpm_setup unlinks the file next when it finds no permall, and
	 * fails if there is none to unlink.
	 */
	ret = linear_open(lf, true);
	if (ret == 0)
		ret = linear_current(lf, &layout, &vol_len);
	if (ret)
		return ret;
	for (unsigned int i = 0; i < STATE_LINEAR_SLOTS; i++) {
		if (!layout.slot[i].offset)
			continue;
		out[*n].name = state_kind_name((enum state_kind)(i + 1));
		out[*n].size = layout.slot[i].data_len;
		(*n)++;
	}
	return 0;
}

static void linear_destroy(struct state_store *st)
{
	struct state_linear *lf = state_linear_of(st);

	if (lf->fd >= 0)
		close(lf->fd);
	free(lf);
}

static const struct state_store_ops state_linear_ops = {
	.check = linear_check,
	.lock = linear_lock,
	.unlock = linear_unlock,
	.read = linear_read,
	.write = linear_write,
	.remove = linear_remove,
	.list = linear_list,
	.destroy = linear_destroy,
};

struct state_store *state_linear_new(void)
{
	struct state_linear *lf = calloc(1, sizeof(*lf));

	if (!lf)
		return NULL;
	lf->store.ops = &state_linear_ops;
	lf->fd = -1;
	return &lf->store;
}
