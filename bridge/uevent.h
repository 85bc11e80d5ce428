/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Kernel uevents (NETLINK_KOBJECT_UEVENT, group 1): how the daemon learns
 * that the kernel made or removed the nodes it serves (tpmN in SUBSYSTEM
 * tpm, tpmrmN in tpmrm, a CUSE device in cuse).  Open the listener before
 * asking the kernel for the device, then look at sysfs once: events sent
 * before the socket joined the group are never delivered.
 */
#ifndef VTPM_UEVENT_H
#define VTPM_UEVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;

/* One parsed kernel uevent; the strings point into the message buffer. */
struct uevent {
	const char *action;	/* "add", "remove", "change", ... */
	const char *devpath;	/* DEVPATH=, as "/devices/virtual/tpm/tpm0" */
	const char *subsystem;	/* SUBSYSTEM= or NULL */
	const char *devname;	/* DEVNAME= (relative to /dev) or NULL */
	unsigned int major, minor;	/* valid when has_devnum */
	bool has_devnum;	/* MAJOR= and MINOR= both present */
	uint64_t seqnum;	/* SEQNUM= */
};

/*
 * Parses one kernel uevent message, "ACTION@DEVPATH\0KEY=VALUE\0...\0",
 * as the kernel sends it: every field, the last one too, ends with a NUL
 * inside buf[0..len).  Never reads buf[len] or beyond.  Returns 0 and
 * fills *out, or -EINVAL (and leaves *out alone) for: an empty or
 * unterminated message; libudev's monitor format; a header other than
 * "ACTION@/DEVPATH" (the action non-empty); an empty field or one without
 * "KEY="; a missing ACTION=, DEVPATH= or SEQNUM=, or ACTION=/DEVPATH=
 * other than the header's; MAJOR= without MINOR= or the reverse; a
 * number that is not canonical decimal (digits only, no leading zero) or
 * out of range (MAJOR < 4096, MINOR < 2^20 as the kernel's dev_t, SEQNUM
 * 64 bits); an empty SUBSYSTEM= or DEVNAME=; and a key read here
 * (ACTION, DEVPATH, SUBSYSTEM, DEVNAME, MAJOR, MINOR, SEQNUM) given
 * twice, since no value could be trusted.  Other keys are not looked at.
 */
int uevent_parse(const char *buf, size_t len, struct uevent *out);

struct uevent_listener;

/* ev and its strings are valid during the call only. */
typedef void uevent_fn(void *arg, const struct uevent *ev);

/*
 * Opens the netlink socket and watches it in loop: fn gets every kernel
 * uevent that parses.  Messages from any other sender (nl_pid != 0) are
 * dropped.  lost() (required, as is fn) is called when events may have
 * been missed: the socket overflowed (ENOBUFS), or a kernel message was
 * truncated or did not parse; its owner should look at sysfs again.
 * Returns 0, or -errno (not logged: the caller knows what it was for).
 */
int uevent_listener_open(struct uevent_listener **out, struct loop *loop, uevent_fn *fn,
			 void (*lost)(void *arg), void *arg);

/*
 * Closes the socket at once; the memory is freed by the loop's deferred
 * list, so fn and lost may call this.  Call it before loop_destroy().
 * NULL is a no-op.
 */
void uevent_listener_close(struct uevent_listener *l);

#endif
