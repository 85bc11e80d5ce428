/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * An instance definition: /etc/vtpm-bridge/NAME.conf, one per instance,
 * as vtpm-bridge.conf(5) documents it.  "key = value" lines; '#' starts a
 * comment line; blank lines are skipped.  The parser only parses and
 * checks: it starts, creates and writes nothing, so a bad file changes
 * nothing on the host.  Every error is one line on stderr naming the
 * file, the line and the key.
 */
#ifndef VTPM_CONF_H
#define VTPM_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Where the instance files live (overridable for tests: --confdir and friends). */
#define CONF_DIR	"/etc/vtpm-bridge"
#define CONF_RUN_DIR	"/run/vtpm-bridge"
#define CONF_CDI_DIR	"/run/cdi"
#define CONF_STATE_DIR	"/var/lib/vtpm-bridge"

/* A whole file is at most this big; a line at most CONF_LINE_MAX bytes, its newline included. */
#define CONF_FILE_MAX	(64 * 1024)
#define CONF_LINE_MAX	4096
/*
 * An instance name: [A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?, at most this
 * long (a CDI device name ends in a letter or digit), without ".." (the
 * daemon refuses it in the CUSE device's name), not ending in "-rm".
 */
#define CONF_NAME_MAX	48

enum conf_front {
	CONF_FRONT_VTPM_PROXY = 1u << 0,
	CONF_FRONT_CUSE = 1u << 1,
	CONF_FRONT_SOCKET = 1u << 2,
};

#define CONF_FRONTS	3
/* The word of `fronts` for bit i of enum conf_front. */
extern const char *const conf_front_names[CONF_FRONTS];

struct conf {
	char name[CONF_NAME_MAX + 1];
	unsigned int fronts;		/* enum conf_front bits; at least one */
	bool tpm2;			/* tpm = 2.0 (default) | 1.2 */
	char *state_dir;		/* state-dir; default CONF_STATE_DIR/NAME */
	char *user;			/* user: --runas; default "tss"; "root" keeps root */
	char *owner;			/* owner of the device nodes; default "root" */
	char *group;			/* group of the device nodes; default "tss" */
	mode_t mode;			/* mode of the device nodes; default 0660 */
	bool autostart;			/* autostart: wanted when /dev/vtpmx or /dev/cuse appears */
	/*
	 * Given verbatim to the daemon's options of the same name (swtpm's
	 * grammar).  ctrl, server: the socket front's; NULL: the default unix
	 * sockets in the run dir; server "none": no --server, the data channel
	 * comes over ctrl by CMD_SET_DATAFD, as QEMU's emulator backend passes it.
	 */
	char *ctrl, *server;
	char *cuse_major, *cuse_minor;	/* --maj, --min */
	char *flags, *locality, *key, *migration_key, *durability, *damaged_state, *seccomp;
	unsigned int log_level;		/* log-level: swtpm's --log level=N; 0: not given */
};

/*
 * A name that may become a file name, a device name (vtpm-NAME) and a
 * symlink (/dev/vtpm/NAME, NAME-rm): 0, or -1 after printing why, with
 * `what` ("instance name", or "FILE:LINE: name") first.
 */
int conf_name_check(const char *name, const char *what);

/*
 * Reads and checks CONFDIR/NAME.conf into *c (conf_free() it, also after
 * an error).  The file must be a regular file, no bigger than
 * CONF_FILE_MAX, not a symlink to a loop.  Unknown keys, a key given
 * twice, an empty value, a value that does not parse, a user, owner or
 * group unknown to this host, and a set of keys that cannot run together
 * are errors.  0, or -1 after one line on stderr.
 */
int conf_load(struct conf *c, const char *confdir, const char *name);

/* The same, from bytes in memory; `file` names them in errors (fuzzing, tests). */
int conf_parse(struct conf *c, const char *name, const char *file, const char *buf, size_t len);

void conf_free(struct conf *c);

/*
 * The daemon's command line for the instance (a combined-mode argv, NULL
 * terminated, argv[0] "vtpm-bridge"), with the socket front's default
 * endpoints in rundir/NAME/.  The caller frees it with conf_argv_free().
 * NULL when out of memory.
 */
char **conf_argv(const struct conf *c, const char *rundir);
void conf_argv_free(char **argv);

#endif
