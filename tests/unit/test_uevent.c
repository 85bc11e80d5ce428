/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Kernel uevents (bridge/uevent.c): the parser with the kernel's messages
 * and hostile ones, each in a buffer of exactly its length (ASan sees a
 * read of buf[len]); then the listener on this machine's kernel.  The
 * kernel's own events come from writing "change" to a device's sysfs
 * uevent file (a synthetic uevent, sent as any other: from port 0, group
 * 1); without that right, or with udevd running for the flood, the test
 * says SKIP.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/netlink.h>

#include "log.h"
#include "loop.h"
#include "uevent.h"
#include "unit.h"

#define NITEMS(a) (sizeof(a) / sizeof((a)[0]))
/* A string literal's bytes without the literal's own final NUL. */
#define MSG(s) s, sizeof(s) - 1

/* As the kernel sends them (tpm-chip.c names and numbers; cuse.c's class "cuse"). */
static const char tpm0_add[] =
	"add@/devices/virtual/tpm/tpm0\0ACTION=add\0DEVPATH=/devices/virtual/tpm/tpm0\0"
	"SUBSYSTEM=tpm\0MAJOR=10\0MINOR=224\0DEVNAME=tpm0\0SEQNUM=1234\0";
static const char tpmrm0_add[] =
	"add@/devices/virtual/tpmrm/tpmrm0\0ACTION=add\0DEVPATH=/devices/virtual/tpmrm/tpmrm0\0"
	"SUBSYSTEM=tpmrm\0MAJOR=253\0MINOR=65536\0DEVNAME=tpmrm0\0SEQNUM=1235\0";
static const char tpm0_remove[] =
	"remove@/devices/virtual/tpm/tpm0\0ACTION=remove\0DEVPATH=/devices/virtual/tpm/tpm0\0"
	"SUBSYSTEM=tpm\0MAJOR=10\0MINOR=224\0DEVNAME=tpm0\0SEQNUM=1240\0";
static const char cuse_vtpm0_add[] =
	"add@/devices/virtual/cuse/vtpm0\0ACTION=add\0DEVPATH=/devices/virtual/cuse/vtpm0\0"
	"SUBSYSTEM=cuse\0MAJOR=10\0MINOR=100\0DEVNAME=vtpm0\0SEQNUM=1300\0";
/* Captured from this machine's kernel (6.18): a zram disk's add, a bdi without a node. */
static const char zram1_add[] =
	"add@/devices/virtual/block/zram1\0ACTION=add\0DEVPATH=/devices/virtual/block/zram1\0"
	"SUBSYSTEM=block\0MAJOR=253\0MINOR=1\0DEVNAME=zram1\0DEVTYPE=disk\0DISKSEQ=11\0SEQNUM=834\0";
static const char bdi_add[] =
	"add@/devices/virtual/bdi/253:1\0ACTION=add\0DEVPATH=/devices/virtual/bdi/253:1\0"
	"SUBSYSTEM=bdi\0SEQNUM=833\0";

/* uevent_parse() on a malloc()ed copy of exactly len bytes; *out is compared, the strings copied out. */
struct parsed {
	int ret;
	struct uevent ev;
	char action[32], devpath[128], subsystem[32], devname[32];
};

static void copy_str(char *dst, size_t size, const char *s)
{
	snprintf(dst, size, "%s", s ? s : "(null)");
}

static struct parsed parse(const char *msg, size_t len)
{
	struct parsed p;
	char *buf = malloc(len ? len : 1);

	memset(&p, 0, sizeof(p));
	if (!buf) {
		p.ret = -ENOMEM;
		return p;
	}
	memcpy(buf, msg, len);
	memset(&p.ev, 0x5a, sizeof(p.ev));
	p.ret = uevent_parse(buf, len, &p.ev);
	if (p.ret == 0) {
		copy_str(p.action, sizeof(p.action), p.ev.action);
		copy_str(p.devpath, sizeof(p.devpath), p.ev.devpath);
		copy_str(p.subsystem, sizeof(p.subsystem), p.ev.subsystem);
		copy_str(p.devname, sizeof(p.devname), p.ev.devname);
	}
	free(buf);
	return p;
}

/* A rejected message leaves *out as it was. */
static bool rejected(const char *msg, size_t len)
{
	struct uevent ev, before;
	char *buf = malloc(len ? len : 1);
	int ret;

	if (!buf)
		return false;
	memcpy(buf, msg, len);
	memset(&ev, 0x5a, sizeof(ev));
	memcpy(&before, &ev, sizeof(ev));
	ret = uevent_parse(buf, len, &ev);
	free(buf);
	return ret == -EINVAL && !memcmp(&ev, &before, sizeof(ev));
}

/* ---- the parser ---- */

TEST(tpm_add)
{
	struct parsed p = parse(MSG(tpm0_add));

	CHECK_EQ(p.ret, 0);
	CHECK(!strcmp(p.action, "add"));
	CHECK(!strcmp(p.devpath, "/devices/virtual/tpm/tpm0"));
	CHECK(!strcmp(p.subsystem, "tpm"));
	CHECK(!strcmp(p.devname, "tpm0"));
	CHECK(p.ev.has_devnum);
	CHECK_EQ(p.ev.major, 10);
	CHECK_EQ(p.ev.minor, 224);
	CHECK_EQ(p.ev.seqnum, 1234);
}

TEST(tpmrm_add_wide_minor)
{
	struct parsed p = parse(MSG(tpmrm0_add));

	CHECK_EQ(p.ret, 0);
	CHECK(!strcmp(p.subsystem, "tpmrm"));
	CHECK(!strcmp(p.devname, "tpmrm0"));
	CHECK(p.ev.has_devnum);
	CHECK_EQ(p.ev.major, 253);
	CHECK_EQ(p.ev.minor, 65536);
	CHECK_EQ(p.ev.seqnum, 1235);
}

TEST(tpm_remove)
{
	struct parsed p = parse(MSG(tpm0_remove));

	CHECK_EQ(p.ret, 0);
	CHECK(!strcmp(p.action, "remove"));
	CHECK(!strcmp(p.devpath, "/devices/virtual/tpm/tpm0"));
	CHECK(!strcmp(p.devname, "tpm0"));
	CHECK_EQ(p.ev.seqnum, 1240);
}

TEST(cuse_add)
{
	struct parsed p = parse(MSG(cuse_vtpm0_add));

	CHECK_EQ(p.ret, 0);
	CHECK(!strcmp(p.subsystem, "cuse"));
	CHECK(!strcmp(p.devname, "vtpm0"));
	CHECK_EQ(p.ev.major, 10);
	CHECK_EQ(p.ev.minor, 100);
}

TEST(captured_kernel_messages)
{
	struct parsed p = parse(MSG(zram1_add));

	CHECK_EQ(p.ret, 0);
	CHECK(!strcmp(p.subsystem, "block"));
	CHECK(!strcmp(p.devname, "zram1"));
	CHECK(p.ev.has_devnum);
	CHECK_EQ(p.ev.major, 253);
	CHECK_EQ(p.ev.minor, 1);
	CHECK_EQ(p.ev.seqnum, 834);

	p = parse(MSG(bdi_add));
	CHECK_EQ(p.ret, 0);
	CHECK(!strcmp(p.devpath, "/devices/virtual/bdi/253:1"));
	CHECK(!strcmp(p.subsystem, "bdi"));
	CHECK(!p.ev.has_devnum);
	CHECK(p.ev.devname == NULL);
	CHECK_EQ(p.ev.major, 0);
	CHECK_EQ(p.ev.minor, 0);
}

/* The strings point into the caller's buffer, each ending with its own NUL. */
TEST(strings_point_into_the_buffer)
{
	char buf[sizeof(tpm0_add) - 1];
	struct uevent ev;

	memcpy(buf, tpm0_add, sizeof(buf));
	CHECK_EQ(uevent_parse(buf, sizeof(buf), &ev), 0);
	CHECK(ev.action >= buf && ev.action < buf + sizeof(buf));
	CHECK(ev.devpath >= buf && ev.devpath < buf + sizeof(buf));
	CHECK(ev.subsystem >= buf && ev.subsystem < buf + sizeof(buf));
	CHECK(ev.devname >= buf && ev.devname < buf + sizeof(buf));
}

TEST(devpath_may_hold_at_sign)
{
	struct parsed p = parse(MSG("bind@/devices/platform/soc@0/3f000000.tpm\0ACTION=bind\0"
				    "DEVPATH=/devices/platform/soc@0/3f000000.tpm\0SUBSYSTEM=platform\0"
				    "DRIVER=tpm_tis\0SEQNUM=7\0"));

	CHECK_EQ(p.ret, 0);
	CHECK(!strcmp(p.action, "bind"));
	CHECK(!strcmp(p.devpath, "/devices/platform/soc@0/3f000000.tpm"));
}

TEST(unknown_keys_and_values_are_not_read)
{
	/* Unknown keys may repeat, hold '=' or be empty-valued; only ours are checked. */
	struct parsed p = parse(MSG("change@/devices/virtual/tpm/tpm0\0ACTION=change\0"
				    "DEVPATH=/devices/virtual/tpm/tpm0\0SUBSYSTEM=tpm\0X=1\0X=2\0"
				    "Y=a=b\0Z=\0SEQNUM=18446744073709551615\0"));

	CHECK_EQ(p.ret, 0);
	CHECK(p.ev.seqnum == UINT64_MAX);
	CHECK(!p.ev.has_devnum);
}

TEST(empty_and_tiny)
{
	CHECK(rejected("", 0));
	CHECK(rejected(MSG("\0")));
	CHECK(rejected(MSG("@\0")));
	CHECK(rejected(MSG("add@\0")));
	CHECK(rejected(MSG("\0\0")));
}

TEST(header_without_at)
{
	CHECK(rejected(MSG("add/devices/virtual/tpm/tpm0\0ACTION=add\0DEVPATH=/devices/virtual/tpm/tpm0\0"
			   "SEQNUM=1\0")));
	CHECK(rejected(MSG("@/devices/x\0ACTION=\0DEVPATH=/devices/x\0SEQNUM=1\0")));
	/* A devpath is absolute. */
	CHECK(rejected(MSG("add@devices/x\0ACTION=add\0DEVPATH=devices/x\0SEQNUM=1\0")));
}

/* Every strict prefix of a message loses at least its final NUL or SEQNUM=. */
TEST(every_prefix_is_rejected)
{
	const char *msgs[] = { tpm0_add, tpmrm0_add, cuse_vtpm0_add, zram1_add };
	const size_t lens[] = { sizeof(tpm0_add) - 1, sizeof(tpmrm0_add) - 1, sizeof(cuse_vtpm0_add) - 1,
				sizeof(zram1_add) - 1 };

	for (size_t m = 0; m < NITEMS(msgs); m++) {
		for (size_t len = 0; len < lens[m]; len++)
			CHECK(rejected(msgs[m], len));
		CHECK_EQ(parse(msgs[m], lens[m]).ret, 0);
	}
}

TEST(unterminated_last_field)
{
	/* The kernel ends every field with a NUL; buf[len] is never read. */
	CHECK(rejected(tpm0_add, sizeof(tpm0_add) - 2));
	CHECK(rejected(MSG("add@/devices/x\0ACTION=add\0DEVPATH=/devices/x\0SEQNUM=1")));
	CHECK(rejected(MSG("add@/devices/x")));
}

TEST(fields_without_key)
{
	CHECK(rejected(MSG("add@/devices/x\0ACTION=add\0GARBAGE\0DEVPATH=/devices/x\0SEQNUM=1\0")));
	CHECK(rejected(MSG("add@/devices/x\0ACTION=add\0=value\0DEVPATH=/devices/x\0SEQNUM=1\0")));
	/* An empty field: two NULs in a row. */
	CHECK(rejected(MSG("add@/devices/x\0ACTION=add\0\0DEVPATH=/devices/x\0SEQNUM=1\0")));
	CHECK(rejected(MSG("add@/devices/x\0ACTION=add\0DEVPATH=/devices/x\0SEQNUM=1\0\0")));
	/* Lower case is another key: ACTION= is then missing. */
	CHECK(rejected(MSG("add@/devices/x\0action=add\0DEVPATH=/devices/x\0SEQNUM=1\0")));
}

TEST(header_disagrees)
{
	CHECK(rejected(MSG("add@/devices/x\0ACTION=remove\0DEVPATH=/devices/x\0SEQNUM=1\0")));
	CHECK(rejected(MSG("add@/devices/x\0ACTION=addx\0DEVPATH=/devices/x\0SEQNUM=1\0")));
	CHECK(rejected(MSG("add@/devices/x\0ACTION=ad\0DEVPATH=/devices/x\0SEQNUM=1\0")));
	CHECK(rejected(MSG("add@/devices/x\0ACTION=add\0DEVPATH=/devices/y\0SEQNUM=1\0")));
	CHECK(rejected(MSG("add@/devices/x\0ACTION=add\0DEVPATH=/devices/x/\0SEQNUM=1\0")));
}

TEST(required_keys)
{
	CHECK(!rejected(MSG("add@/devices/x\0ACTION=add\0DEVPATH=/devices/x\0SEQNUM=1\0")));
	CHECK(rejected(MSG("add@/devices/x\0DEVPATH=/devices/x\0SEQNUM=1\0")));
	CHECK(rejected(MSG("add@/devices/x\0ACTION=add\0SEQNUM=1\0")));
	CHECK(rejected(MSG("add@/devices/x\0ACTION=add\0DEVPATH=/devices/x\0")));
	CHECK(rejected(MSG("add@/devices/x\0")));
	/* The kernel sends MAJOR= and MINOR= together or not at all. */
	CHECK(rejected(MSG("add@/devices/x\0ACTION=add\0DEVPATH=/devices/x\0MAJOR=10\0SEQNUM=1\0")));
	CHECK(rejected(MSG("add@/devices/x\0ACTION=add\0DEVPATH=/devices/x\0MINOR=10\0SEQNUM=1\0")));
	/* Named, but empty. */
	CHECK(rejected(MSG("add@/devices/x\0ACTION=add\0DEVPATH=/devices/x\0SUBSYSTEM=\0SEQNUM=1\0")));
	CHECK(rejected(MSG("add@/devices/x\0ACTION=add\0DEVPATH=/devices/x\0DEVNAME=\0SEQNUM=1\0")));
}

/* A key we read, given twice: neither value wins, the message is refused. */
TEST(duplicate_keys)
{
	static const char *const dups[] = {
		"ACTION=add", "DEVPATH=/devices/x", "SUBSYSTEM=tpm", "DEVNAME=tpm0", "SEQNUM=1",
	};

	for (size_t i = 0; i < NITEMS(dups); i++) {
		char msg[256];
		int n = snprintf(msg, sizeof(msg), "add@/devices/x%cACTION=add%cDEVPATH=/devices/x%c"
				 "SUBSYSTEM=tpm%cDEVNAME=tpm0%cSEQNUM=1%c%s%c", 0, 0, 0, 0, 0, 0, dups[i], 0);

		CHECK(n > 0 && (size_t)n < sizeof(msg));
		CHECK(rejected(msg, (size_t)n));
		/* The message alone is fine. */
		CHECK(!rejected(msg, (size_t)n - strlen(dups[i]) - 1));
	}
	CHECK(rejected(MSG("add@/devices/x\0ACTION=add\0DEVPATH=/devices/x\0MAJOR=10\0MINOR=1\0"
			   "MAJOR=10\0SEQNUM=1\0")));
	CHECK(rejected(MSG("add@/devices/x\0ACTION=add\0DEVPATH=/devices/x\0MAJOR=10\0MINOR=1\0"
			   "MINOR=2\0SEQNUM=1\0")));
}

/* "MAJOR=%s MINOR=%s": accepted (major, minor) or -1 for rejected. */
static long long devnum(const char *major, const char *minor, bool want_major)
{
	char msg[256];
	int n = snprintf(msg, sizeof(msg), "add@/devices/x%cACTION=add%cDEVPATH=/devices/x%c"
			 "MAJOR=%s%cMINOR=%s%cSEQNUM=1%c", 0, 0, 0, major, 0, minor, 0, 0);
	struct parsed p;

	if (n <= 0 || (size_t)n >= sizeof(msg))
		return -2;
	p = parse(msg, (size_t)n);
	if (p.ret < 0)
		return -1;
	return want_major ? p.ev.major : p.ev.minor;
}

TEST(numbers)
{
	CHECK_EQ(devnum("0", "0", true), 0);
	CHECK_EQ(devnum("4095", "0", true), 4095);
	CHECK_EQ(devnum("1", "1048575", false), 1048575);
	/* Beyond the kernel's 12-bit major, 20-bit minor. */
	CHECK_EQ(devnum("4096", "0", true), -1);
	CHECK_EQ(devnum("1", "1048576", false), -1);
	/* Negative, signed, spaced, hex, empty, trailing junk, leading zero. */
	static const char *const bad[] = {
		"-1", "+1", " 1", "1 ", "0x10", "", "1x", "010", "00", "4294967296",
		"18446744073709551616", "99999999999999999999999999999999", "1.0",
	};
	for (size_t i = 0; i < NITEMS(bad); i++) {
		CHECK_EQ(devnum(bad[i], "0", true), -1);
		CHECK_EQ(devnum("1", bad[i], false), -1);
	}
}

TEST(seqnum_bounds)
{
	CHECK(!rejected(MSG("add@/devices/x\0ACTION=add\0DEVPATH=/devices/x\0SEQNUM=0\0")));
	CHECK(!rejected(MSG("add@/devices/x\0ACTION=add\0DEVPATH=/devices/x\0SEQNUM=18446744073709551615\0")));
	CHECK(rejected(MSG("add@/devices/x\0ACTION=add\0DEVPATH=/devices/x\0SEQNUM=18446744073709551616\0")));
	CHECK(rejected(MSG("add@/devices/x\0ACTION=add\0DEVPATH=/devices/x\0SEQNUM=28446744073709551615\0")));
	CHECK(rejected(MSG("add@/devices/x\0ACTION=add\0DEVPATH=/devices/x\0SEQNUM=-1\0")));
	CHECK(rejected(MSG("add@/devices/x\0ACTION=add\0DEVPATH=/devices/x\0SEQNUM=\0")));
}

TEST(libudev_message)
{
	/* udevd's monitor format: "libudev\0", magic 0xfeedcafe (network order), then a binary header. */
	static const char udev[] = "libudev\0\xfe\xed\xca\xfe\x28\0\0\0\x28\0\0\0\x40\0\0\0"
		"ACTION=add\0DEVPATH=/devices/virtual/tpm/tpm0\0SEQNUM=1\0";

	CHECK(rejected(udev, sizeof(udev) - 1));
	/* Even made to look like a kernel message after its first field. */
	CHECK(rejected(MSG("libudev\0ACTION=add\0DEVPATH=/devices/x\0SEQNUM=1\0")));
}

TEST(devname_with_slash)
{
	/* A CUSE name "vtpm/a" is the node /dev/vtpm/a; DEVNAME says so (sysfs writes '!'). */
	struct parsed p = parse(MSG("add@/devices/virtual/cuse/vtpm!a\0ACTION=add\0"
				    "DEVPATH=/devices/virtual/cuse/vtpm!a\0SUBSYSTEM=cuse\0MAJOR=10\0"
				    "MINOR=100\0DEVNAME=vtpm/a\0SEQNUM=9\0"));

	CHECK_EQ(p.ret, 0);
	CHECK(!strcmp(p.devname, "vtpm/a"));
}

/* ---- the listener ---- */

struct recorder {
	struct loop *loop;
	struct uevent_listener *l;
	const char *want_devpath;	/* stop the loop when it comes */
	bool close_on_event;
	int events, wanted, lost, foreign;
	struct uevent last;
	char devpath[128], subsystem[32], devname[32], action[32];
};

static void recorder_event(void *arg, const struct uevent *ev)
{
	struct recorder *r = arg;

	r->events++;
	if (!strcmp(ev->devpath, "/devices/virtual/vtpm-bridge-test/fake"))
		r->foreign++;
	if (r->want_devpath && strcmp(ev->devpath, r->want_devpath))
		return;
	r->wanted++;
	r->last = *ev;
	copy_str(r->devpath, sizeof(r->devpath), ev->devpath);
	copy_str(r->subsystem, sizeof(r->subsystem), ev->subsystem);
	copy_str(r->devname, sizeof(r->devname), ev->devname);
	copy_str(r->action, sizeof(r->action), ev->action);
	if (r->close_on_event) {
		uevent_listener_close(r->l);
		r->l = NULL;
	}
	loop_quit(r->loop);
}

static void recorder_lost(void *arg)
{
	struct recorder *r = arg;

	r->lost++;
}

/* A timer that stops the loop; the test's own loop_quit() beats it. */
struct deadline {
	struct loop_watch timer;	/* first: the watch is the deadline */
	bool expired;
	struct loop *loop;
};

static void deadline_fn(struct loop_watch *timer, uint32_t events)
{
	struct deadline *d = (struct deadline *)timer;

	(void)events;
	d->expired = true;
	loop_quit(d->loop);
}

/* Runs the loop until something calls loop_quit() or msec pass; false on timeout. */
static bool run_for(struct loop *loop, unsigned int msec)
{
	struct deadline d = { .loop = loop };
	bool ok;

	if (loop_timer_create(loop, &d.timer, deadline_fn) < 0 || loop_timer_arm(&d.timer, msec) < 0)
		return false;
	ok = loop_run(loop) == 0 && !d.expired;
	loop_timer_destroy(loop, &d.timer);
	return ok;
}

/* Reads everything queued without stopping at a wanted event: the loop ends by its timer (false). */
static bool drain(struct loop *loop, struct recorder *r)
{
	const char *want = r->want_devpath;
	bool ret;

	r->want_devpath = "/nothing";
	ret = run_for(loop, 300);
	r->want_devpath = want;
	return ret;
}

/* The fds open now, as a bitmap of the first 1024. */
static void open_fds(unsigned char fds[1024])
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *de;

	memset(fds, 0, 1024);
	if (!dir)
		return;
	while ((de = readdir(dir))) {
		int fd = atoi(de->d_name);

		if (de->d_name[0] != '.' && fd >= 0 && fd < 1024 && fd != dirfd(dir))
			fds[fd] = 1;
	}
	closedir(dir);
}

/* The one fd open now that was not before; -1 for none, -2 for several. */
static int new_fd(const unsigned char before[1024])
{
	unsigned char now[1024];
	int found = -1;

	open_fds(now);
	for (int fd = 0; fd < 1024; fd++) {
		if (now[fd] && !before[fd]) {
			if (found >= 0)
				return -2;
			found = fd;
		}
	}
	return found;
}

static const char synth_path[] = "/sys/devices/virtual/mem/null/uevent";

/* A synthetic "change" of /dev/null: a real kernel uevent, harmless to the machine. */
static int synth_change(void)
{
	int fd = open(synth_path, O_WRONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, "change", 6) != 6)
		ret = -errno;
	close(fd);
	return ret;
}

TEST(listener_open_close)
{
	struct loop *loop;
	struct recorder r = { 0 };
	struct uevent_listener *l = NULL;
	unsigned char before[1024];
	int fd, val, ret;
	socklen_t vlen = sizeof(val);

	CHECK_EQ(loop_create(&loop), 0);
	r.loop = loop;
	open_fds(before);
	ret = uevent_listener_open(&l, loop, recorder_event, recorder_lost, &r);
	if (ret < 0)
		printf("    uevent_listener_open: %s\n", strerror(-ret));
	CHECK_EQ(ret, 0);
	fd = new_fd(before);
	CHECK(fd >= 0);
	CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK);
	CHECK_EQ(getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &val, &vlen), 0);
	CHECK_EQ(val, NETLINK_KOBJECT_UEVENT);
	vlen = sizeof(val);
	CHECK_EQ(getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &val, &vlen), 0);
	/* More than libnl's 32 KiB (the kernel doubles what was set; rmem_max caps it without CAP_NET_ADMIN). */
	CHECK(val > 2 * 32768);
	uevent_listener_close(l);
	/* The fd is closed at once, the memory by the loop. */
	CHECK(fcntl(fd, F_GETFD) < 0 && errno == EBADF);
	uevent_listener_close(NULL);
	loop_destroy(loop);
}

/* No fd left: socket() fails with EMFILE, which libnl calls NLE_FAILURE; the caller still gets -EMFILE. */
TEST(listener_open_reports_errno)
{
	struct loop *loop;
	struct recorder r = { 0 };
	struct uevent_listener *l = NULL;
	struct rlimit old, low;
	unsigned char before[1024];
	int lowest, ret;

	CHECK_EQ(loop_create(&loop), 0);
	lowest = dup(0);
	CHECK(lowest >= 0);
	close(lowest);
	CHECK_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)lowest;
	open_fds(before);
	CHECK_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
	ret = uevent_listener_open(&l, loop, recorder_event, recorder_lost, &r);
	setrlimit(RLIMIT_NOFILE, &old);
	CHECK_EQ(ret, -EMFILE);
	/* Nothing left open (the leak checkers see the memory). */
	CHECK_EQ(new_fd(before), -1);
	loop_destroy(loop);
}

TEST(listener_receives_kernel_event)
{
	struct loop *loop;
	struct recorder r = { .want_devpath = "/devices/virtual/mem/null" };

	CHECK_EQ(loop_create(&loop), 0);
	r.loop = loop;
	CHECK_EQ(uevent_listener_open(&r.l, loop, recorder_event, recorder_lost, &r), 0);
	CHECK_EQ(synth_change(), 0);
	CHECK(run_for(loop, 5000));
	CHECK_EQ(r.wanted, 1);
	CHECK(!strcmp(r.action, "change"));
	CHECK(!strcmp(r.subsystem, "mem"));
	CHECK(!strcmp(r.devname, "null"));
	CHECK(r.last.has_devnum);
	CHECK_EQ(r.last.major, 1);
	CHECK_EQ(r.last.minor, 3);
	CHECK(r.last.seqnum > 0);
	uevent_listener_close(r.l);
	loop_destroy(loop);
}

/* A message unicast from a process (port != 0) is dropped, however well formed. */
TEST(listener_ignores_other_senders)
{
	static const char fake[] = "add@/devices/virtual/vtpm-bridge-test/fake\0ACTION=add\0"
		"DEVPATH=/devices/virtual/vtpm-bridge-test/fake\0SUBSYSTEM=tpm\0SEQNUM=1\0";
	struct loop *loop;
	struct recorder r = { .want_devpath = "/devices/virtual/mem/null" };
	unsigned char before[1024];
	struct sockaddr_nl us = { .nl_family = AF_NETLINK }, them = { .nl_family = AF_NETLINK };
	socklen_t alen = sizeof(us);
	int fd, s;

	CHECK_EQ(loop_create(&loop), 0);
	r.loop = loop;
	open_fds(before);
	CHECK_EQ(uevent_listener_open(&r.l, loop, recorder_event, recorder_lost, &r), 0);
	fd = new_fd(before);
	CHECK(fd >= 0);
	CHECK_EQ(getsockname(fd, (struct sockaddr *)&us, &alen), 0);
	CHECK(us.nl_pid != 0);
	s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_KOBJECT_UEVENT);
	CHECK(s >= 0);
	CHECK_EQ(bind(s, (struct sockaddr *)&them, sizeof(them)), 0);
	us.nl_groups = 0;
	CHECK_EQ(sendto(s, fake, sizeof(fake) - 1, 0, (struct sockaddr *)&us, sizeof(us)),
		 (long long)(sizeof(fake) - 1));
	close(s);
	/* Then a kernel event, so the loop has something to stop on after the fake. */
	CHECK_EQ(synth_change(), 0);
	CHECK(run_for(loop, 5000));
	CHECK_EQ(r.foreign, 0);
	CHECK_EQ(r.wanted, 1);
	CHECK_EQ(r.lost, 0);
	uevent_listener_close(r.l);
	loop_destroy(loop);
}

/* fn closes the listener with more events queued: nothing more is read, nothing freed early (ASan). */
TEST(listener_closed_from_callback)
{
	struct loop *loop;
	struct recorder r = { .want_devpath = "/devices/virtual/mem/null", .close_on_event = true };

	CHECK_EQ(loop_create(&loop), 0);
	r.loop = loop;
	CHECK_EQ(uevent_listener_open(&r.l, loop, recorder_event, recorder_lost, &r), 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(synth_change(), 0);
	CHECK(run_for(loop, 5000));
	CHECK_EQ(r.wanted, 1);
	CHECK_EQ(r.lost, 0);	/* no read was tried on the closed socket */
	CHECK(r.l == NULL);
	/* Nothing is watched any more: the loop only ends by its timer. */
	CHECK(!run_for(loop, 100));
	CHECK_EQ(r.wanted, 1);
	loop_destroy(loop);
}

/* Events the socket had no room for: lost() is called, and the listener goes on. */
TEST(listener_reports_overflow)
{
	struct loop *loop;
	struct recorder r = { .want_devpath = "/devices/virtual/mem/null" };
	int i;

	CHECK_EQ(loop_create(&loop), 0);
	r.loop = loop;
	CHECK_EQ(uevent_listener_open(&r.l, loop, recorder_event, recorder_lost, &r), 0);
	/* 256 KiB (512 KiB as the kernel counts) holds a few hundred; nothing reads meanwhile. */
	for (i = 0; i < 20000 && synth_change() == 0; i++)
		;
	CHECK_EQ(i, 20000);
	CHECK(!drain(loop, &r));
	CHECK(r.lost >= 1);
	CHECK(r.events > 0 && r.events < 20000);
	/* Still listening. */
	r.wanted = 0;
	CHECK_EQ(synth_change(), 0);
	CHECK(run_for(loop, 5000));
	CHECK_EQ(r.wanted, 1);
	uevent_listener_close(r.l);
	loop_destroy(loop);
}

int main(void)
{
	static const struct unit_test parser[] = {
		UNIT(tpm_add),
		UNIT(tpmrm_add_wide_minor),
		UNIT(tpm_remove),
		UNIT(cuse_add),
		UNIT(captured_kernel_messages),
		UNIT(strings_point_into_the_buffer),
		UNIT(devpath_may_hold_at_sign),
		UNIT(unknown_keys_and_values_are_not_read),
		UNIT(empty_and_tiny),
		UNIT(header_without_at),
		UNIT(every_prefix_is_rejected),
		UNIT(unterminated_last_field),
		UNIT(fields_without_key),
		UNIT(header_disagrees),
		UNIT(required_keys),
		UNIT(duplicate_keys),
		UNIT(numbers),
		UNIT(seqnum_bounds),
		UNIT(libudev_message),
		UNIT(devname_with_slash),
		UNIT(listener_open_close),
		UNIT(listener_open_reports_errno),
	};
	static const struct unit_test kernel[] = {
		UNIT(listener_receives_kernel_event),
		UNIT(listener_ignores_other_senders),
		UNIT(listener_closed_from_callback),
	};
	static const struct unit_test flood[] = {
		UNIT(listener_reports_overflow),
	};
	bool can_synth = access(synth_path, W_OK) == 0;
	/* udevd would process every event of the flood. */
	bool udevd = access("/run/udev/control", F_OK) == 0;
	int bad;

	log_setup(STDERR_FILENO, LOG_ERR);
	bad = unit_run("uevent", parser, NITEMS(parser));
	if (can_synth)
		bad |= unit_run("uevent", kernel, NITEMS(kernel));
	else
		for (size_t i = 0; i < NITEMS(kernel); i++)
			printf("SKIP uevent/%s: cannot write %s (root needed) to make a kernel uevent\n",
			       kernel[i].name, synth_path);
	if (can_synth && !udevd)
		bad |= unit_run("uevent", flood, NITEMS(flood));
	else
		printf("SKIP uevent/%s: %s\n", flood[0].name,
		       can_synth ? "udevd is running (/run/udev/control) and would process 20000 events"
				 : "cannot make kernel uevents");
	return bad;
}
