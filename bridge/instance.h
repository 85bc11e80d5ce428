/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What a running instance publishes, for the udev rule, the management
 * commands and container runtimes:
 *
 *   RUNDIR/NAME.instance          the record, KEY=VALUE lines: pid,
 *                                 starttime, owner, group, mode, and the
 *                                 kernel names of its nodes (tpm, tpmrm,
 *                                 cuse)
 *   CDIDIR/vtpm-bridge-NAME.json  the CDI spec: kind vtpm-bridge.io/tpm,
 *                                 device NAME (the container's /dev/tpmrm0
 *                                 and /dev/tpm0)
 *   RUNDIR/NAME/ready             the pid, once every front serves
 *
 * The record and the spec are written (atomically: a temporary file
 * renamed over, 0644) when a front learns the kernel name of a node it is
 * having made, before the kernel can announce it, so the rule that runs on
 * the kernel's uevent finds the owner; and while the daemon is still root,
 * in root's directories: the instance's user (RUNDIR/NAME is its own, for
 * the sockets) can never point the rule at another instance's node.  A
 * record is believed only while its process lives: pid plus the process's
 * start time, so neither a stale file nor a recycled pid names a node.
 */
#ifndef VTPM_INSTANCE_H
#define VTPM_INSTANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "conf.h"

#define INSTANCE_NODE_MAX	64

struct instance_record {
	char name[CONF_NAME_MAX + 1];
	pid_t pid;
	unsigned long long starttime;	/* /proc/PID/stat field 22 */
	char owner[64], group[64];
	mode_t mode;
	char tpm[INSTANCE_NODE_MAX];	/* kernel names, "" when the instance has none */
	char tpmrm[INSTANCE_NODE_MAX];
	char cuse[INSTANCE_NODE_MAX];
};

/* The start time of a process (clock ticks since boot), or 0 if it does not exist. */
unsigned long long instance_starttime(pid_t pid);

/* Fills rec for this process from the conf: name, pid, start time, owner, group, mode. */
void instance_record_init(struct instance_record *rec, const struct conf *c);

/* Writes RUNDIR/NAME.instance: 0 or -errno (logged, naming the file). */
int instance_write_record(const struct instance_record *rec, const char *rundir);

/* Writes RUNDIR/NAME/ready (the daemon's own directory, also after --runas): 0 or -errno (logged). */
int instance_write_ready(const struct instance_record *rec, const char *rundir);

/*
 * Writes the CDI spec, when the record has a node a container can use:
 * 0 or -errno (logged).  CDIDIR (made by instance_run_dirs()) is root's:
 * write it before --runas.
 */
int instance_write_cdi(const struct instance_record *rec, const char *cdidir);

/*
 * Removes the record, the CDI spec and the ready mark; quiet about what is
 * already gone or not ours to remove (the unit's `cleanup` runs as root
 * after us).
 */
void instance_unpublish(const char *name, const char *rundir, const char *cdidir);

/*
 * Parses a record's text (buf[0..len), no NUL needed) into *rec, which the
 * caller zeroed: 0, or -EINVAL for anything we would not have written
 * (a line without '=', an unknown key, a value out of range or holding
 * other than [A-Za-z0-9_.-], a NUL byte, more than 4 KiB, no pid, start
 * time, owner or group).
 */
int instance_record_parse(struct instance_record *rec, const char *buf, size_t len);

/*
 * Reads a small file of ours: at most size - 1 bytes into buf, then a NUL.
 * The byte count, or -errno; -EINVAL for a symlink or anything but a
 * regular file, and with trusted for a file neither root's nor ours.
 */
ssize_t instance_read_file(const char *path, char *buf, size_t size, bool trusted);

/*
 * Reads RUNDIR/NAME.instance: 0 and *rec filled (only if the process it
 * names still lives: pid and start time), -ESRCH if it does not, -ENOENT
 * if there is no record, -EINVAL if the file is not ours (not a regular
 * file, not root's, or not what instance_record_parse() takes), another
 * -errno if it cannot be read.
 */
int instance_read(struct instance_record *rec, const char *rundir, const char *name);

/*
 * Whether udev is done with the record's nodes: their links and
 * permissions are in place once udevd has written its database entry
 * (/run/udev/data/cMAJ:MIN, after them); true at once where no udevd runs.
 */
bool instance_udev_done(const struct instance_record *rec);

/* Whether the live instance of rec has said it is ready (RUNDIR/NAME/ready holds its pid). */
bool instance_ready(const struct instance_record *rec, const char *rundir);

#endif
