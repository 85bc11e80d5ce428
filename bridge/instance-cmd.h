/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The instances the system manages (vtpm-bridge.conf(5)): the commands an
 * operator or a container runtime calls (list, status, create, destroy),
 * the systemd unit's (run, cleanup) and the udev rule's (udev-node,
 * udev-wants).
 */
#ifndef VTPM_INSTANCE_CMD_H
#define VTPM_INSTANCE_CMD_H

#include <stdbool.h>

#include "conf.h"

/* The directories the commands use; the defaults are conf.h's. */
struct instance_dirs {
	const char *conf, *run, *cdi;
};

/* Whether word is one of the commands instance_cmd_main() runs. */
bool instance_cmd_is(const char *word);

/* Runs `vtpm-bridge WORD ...` (argv[0] is WORD): the process's exit status. */
int instance_cmd_main(int argc, char **argv);

/* `vtpm-bridge run NAME`: what the daemon needs to serve the instance. */
struct instance_run {
	struct conf conf;
	struct instance_dirs dirs;
	char **argv;		/* the daemon's command line (conf_argv()) */
	int argc;
};

/*
 * Parses `run NAME [--confdir D] [--rundir D] [--cdidir D]` (argv[0] is
 * "run"), loads the conf and builds the daemon's command line; writes
 * nothing.  0; -1 when -h printed the usage (nothing to run: exit 0);
 * or the exit status after printing why.
 */
int instance_run_prepare(struct instance_run *run, int argc, char **argv);

/*
 * Makes what the instance needs before it starts: its state directory
 * (if missing: parents 0755, itself 0750, owned by the conf's user) and
 * RUNDIR/NAME (0750, the user's, the conf's group: the default sockets
 * live there), and CDIDIR.  0 or -1 after printing why.
 */
int instance_run_dirs(const struct instance_run *run);

void instance_run_free(struct instance_run *run);

#endif
