/*
 * logreplay: reads the log of the kernel's dm-log-writes target and replays
 * it onto a device or image file, for power-cut tests.
 *
 *     logreplay list LOG
 *     logreplay apply LOG DEV FROM OFFSET TO
 *
 * list prints one line per log entry: "INDEX OFFSET FLAGS SECTOR SECTORS
 * [MARK]".  OFFSET is the byte offset of the entry in LOG, SECTOR and
 * SECTORS are in the log's sector size.  FLAGS is a string of letters: W a
 * write with data, F a flush (REQ_PREFLUSH), U FUA, D a discard, M a mark
 * (MARK is its text, which contains no blanks), "-" none of them.
 *
 * apply writes entries FROM .. TO-1 onto DEV (FROM's entry starts at byte
 * OFFSET, as list printed it), then fsyncs DEV; an entry past DEV's end is
 * an error.  A discard becomes zeros, as on a device that reads discarded
 * sectors back as zeros.  Replaying entries 0 .. N onto a zeroed device
 * gives the device as it was after entry N.
 *
 * The format (drivers/md/dm-log-writes.c, Documentation/admin-guide/
 * device-mapper/log-writes.rst): sector 0 holds the super (le64 magic, le64
 * version, le64 nr_entries, le32 sectorsize); from the next sector each
 * entry is one sector, le64 sector, le64 nr_sectors, le64 flags, le64
 * data_len (a mark's text follows in that sector), then nr_sectors sectors
 * of data, none for a discard.  The target logs a write only once a flush
 * has covered it (FUA writes when they complete), and a mark when it is
 * sent: the log is in the order data became durable, so every prefix of it
 * is a state the device could hold after a power cut.
 *
 * Exit status 0 on success, 1 on a malformed log or an I/O error, 2 on bad
 * usage.  Guest-side test tool, built by tests/vm/lib/host.sh (VM_TOOLS).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_MAGIC 0x6a736677736872ULL
#define LOG_VERSION 1
#define FLAG_FLUSH (1u << 0)
#define FLAG_FUA (1u << 1)
#define FLAG_DISCARD (1u << 2)
#define FLAG_MARK (1u << 3)
#define ENTRY_HEADER 32
#define MAX_SECTOR 4096

struct log {
	int fd;
	uint64_t size;		/* bytes in LOG */
	uint64_t entries;
	uint32_t sectorsize;
};

struct entry {
	uint64_t sector, nr_sectors, flags, data_len;
	char mark[MAX_SECTOR];	/* a mark's text, NUL-terminated */
};

static uint64_t le64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static int read_at(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "logreplay: read at %" PRIu64 ": %s\n", off + done,
				n < 0 ? strerror(errno) : "end of file");
			return -1;
		}
		done += (size_t)n;
	}
	return 0;
}

static int write_at(int fd, const void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "logreplay: write at %" PRIu64 ": %s\n", off + done,
				n < 0 ? strerror(errno) : "no progress");
			return -1;
		}
		done += (size_t)n;
	}
	return 0;
}

/* the size of a file or of a block device (st_size is 0 for one) */
static int fd_size(int fd, uint64_t *size)
{
	struct stat st;
	off_t end;

	if (fstat(fd, &st) < 0)
		return -1;
	if (S_ISREG(st.st_mode)) {
		*size = (uint64_t)st.st_size;
		return 0;
	}
	end = lseek(fd, 0, SEEK_END);
	if (end < 0)
		return -1;
	*size = (uint64_t)end;
	return 0;
}

static int log_open(const char *path, struct log *lg)
{
	unsigned char super[28];

	lg->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (lg->fd < 0) {
		fprintf(stderr, "logreplay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fd_size(lg->fd, &lg->size) < 0 || read_at(lg->fd, super, sizeof(super), 0) < 0)
		goto bad;
	if (le64(super) != LOG_MAGIC || le64(super + 8) != LOG_VERSION) {
		fprintf(stderr, "logreplay: %s: not a dm-log-writes log (magic %#" PRIx64
			", version %" PRIu64 ")\n", path, le64(super), le64(super + 8));
		goto bad;
	}
	lg->entries = le64(super + 16);
	lg->sectorsize = (uint32_t)super[24] | (uint32_t)super[25] << 8 |
		(uint32_t)super[26] << 16 | (uint32_t)super[27] << 24;
	if (lg->sectorsize < 512 || lg->sectorsize > MAX_SECTOR ||
	    (lg->sectorsize & (lg->sectorsize - 1))) {
		fprintf(stderr, "logreplay: %s: sector size %" PRIu32 "\n", path, lg->sectorsize);
		goto bad;
	}
	return 0;
bad:
	close(lg->fd);
	return -1;
}

/* the entry at byte *off; on success *off is the next entry's */
static int entry_read(const struct log *lg, uint64_t *off, struct entry *e)
{
	unsigned char sec[MAX_SECTOR];
	uint64_t data;

	if (*off > lg->size || lg->size - *off < lg->sectorsize) {
		fprintf(stderr, "logreplay: entry at %" PRIu64 " is past the log's end\n", *off);
		return -1;
	}
	if (read_at(lg->fd, sec, lg->sectorsize, *off) < 0)
		return -1;
	e->sector = le64(sec);
	e->nr_sectors = le64(sec + 8);
	e->flags = le64(sec + 16);
	e->data_len = le64(sec + 24);
	e->mark[0] = '\0';
	if (e->flags & FLAG_MARK) {
		size_t n = e->data_len < lg->sectorsize - ENTRY_HEADER ?
			(size_t)e->data_len : lg->sectorsize - ENTRY_HEADER - 1;

		memcpy(e->mark, sec + ENTRY_HEADER, n);
		e->mark[n] = '\0';
	}
	data = (e->flags & FLAG_DISCARD) ? 0 : e->nr_sectors;
	if (data > (lg->size - *off) / lg->sectorsize - 1) {
		fprintf(stderr, "logreplay: entry at %" PRIu64 " has %" PRIu64
			" sectors, past the log's end\n", *off, data);
		return -1;
	}
	*off += lg->sectorsize * (1 + data);
	return 0;
}

static void flags_text(const struct entry *e, char *out)
{
	char *p = out;

	if (e->nr_sectors && !(e->flags & (FLAG_DISCARD | FLAG_MARK)))
		*p++ = 'W';
	if (e->flags & FLAG_FLUSH)
		*p++ = 'F';
	if (e->flags & FLAG_FUA)
		*p++ = 'U';
	if (e->flags & FLAG_DISCARD)
		*p++ = 'D';
	if (e->flags & FLAG_MARK)
		*p++ = 'M';
	if (p == out)
		*p++ = '-';
	*p = '\0';
}

static int cmd_list(const struct log *lg)
{
	static struct entry e;
	uint64_t off = lg->sectorsize;
	char flags[8];

	for (uint64_t i = 0; i < lg->entries; i++) {
		uint64_t at = off;

		if (entry_read(lg, &off, &e) < 0)
			return 1;
		flags_text(&e, flags);
		for (char *c = e.mark; *c; c++)
			if (*c == ' ' || *c == '\t' || *c == '\n')
				*c = '_';
		printf("%" PRIu64 " %" PRIu64 " %s %" PRIu64 " %" PRIu64 "%s%s\n", i, at, flags,
		       e.sector, e.nr_sectors, e.mark[0] ? " " : "", e.mark);
	}
	return fflush(stdout) == 0 ? 0 : 1;
}

/* one entry's effect on DEV: its data, or zeros for a discard */
static int entry_apply(const struct log *lg, const struct entry *e, uint64_t data_off, int dev)
{
	static unsigned char buf[1 << 16];
	uint64_t len = e->nr_sectors * lg->sectorsize, dst = e->sector * lg->sectorsize;

	if (e->flags & FLAG_MARK)
		return 0;
	if (e->flags & FLAG_DISCARD)
		memset(buf, 0, sizeof(buf));
	for (uint64_t done = 0; done < len;) {
		size_t n = len - done < sizeof(buf) ? (size_t)(len - done) : sizeof(buf);

		if (!(e->flags & FLAG_DISCARD) && read_at(lg->fd, buf, n, data_off + done) < 0)
			return -1;
		if (write_at(dev, buf, n, dst + done) < 0)
			return -1;
		done += n;
	}
	return 0;
}

static int cmd_apply(const struct log *lg, const char *devpath, uint64_t from, uint64_t off,
		     uint64_t to)
{
	static struct entry e;
	uint64_t devsize;
	int dev, rc = 1;

	if (to > lg->entries || from > to || off < lg->sectorsize) {
		fprintf(stderr, "logreplay: entries %" PRIu64 "..%" PRIu64 " at %" PRIu64
			": the log has %" PRIu64 "\n", from, to, off, lg->entries);
		return 2;
	}
	dev = open(devpath, O_RDWR | O_CLOEXEC);
	if (dev < 0 || fd_size(dev, &devsize) < 0) {
		fprintf(stderr, "logreplay: %s: %s\n", devpath, strerror(errno));
		goto out;
	}
	for (uint64_t i = from; i < to; i++) {
		uint64_t at = off, sectors = devsize / lg->sectorsize;

		if (entry_read(lg, &off, &e) < 0)
			goto out;
		if (!(e.flags & FLAG_MARK) && (e.nr_sectors > sectors || e.sector > sectors - e.nr_sectors)) {
			fprintf(stderr, "logreplay: entry %" PRIu64 " (sectors %" PRIu64 "+%" PRIu64
				") is past the end of %s\n", i, e.sector, e.nr_sectors, devpath);
			goto out;
		}
		if (entry_apply(lg, &e, at + lg->sectorsize, dev) < 0)
			goto out;
	}
	if (fsync(dev) < 0) {
		fprintf(stderr, "logreplay: fsync %s: %s\n", devpath, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (dev >= 0)
		close(dev);
	return rc;
}

static int number(const char *s, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 10);
	return errno || end == s || *end ? -1 : 0;
}

int main(int argc, char **argv)
{
	struct log lg;
	uint64_t from, off, to;
	int rc;

	if (argc == 3 && !strcmp(argv[1], "list")) {
		if (log_open(argv[2], &lg) < 0)
			return 1;
		rc = cmd_list(&lg);
	} else if (argc == 7 && !strcmp(argv[1], "apply") && !number(argv[4], &from) &&
		   !number(argv[5], &off) && !number(argv[6], &to)) {
		if (log_open(argv[2], &lg) < 0)
			return 1;
		rc = cmd_apply(&lg, argv[3], from, off, to);
	} else {
		fprintf(stderr, "usage: logreplay list LOG\n"
			"       logreplay apply LOG DEV FROM OFFSET TO\n");
		return 2;
	}
	close(lg.fd);
	return rc;
}
