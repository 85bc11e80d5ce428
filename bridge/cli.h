/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The command line: swtpm's grammar (`vtpm-bridge socket ...` takes what
 * `swtpm socket ...` takes, as libvirt and swtpm_setup pass it).  The
 * parser only parses: it opens, creates and touches nothing.
 */
#ifndef VTPM_CLI_H
#define VTPM_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "sandbox.h"

/* One --ctrl or --server channel. */
struct cli_endpoint {
	bool set;
	bool tcp;		/* type=tcp, else type=unixio */
	const char *path;	/* unixio path= */
	int fd;			/* fd=: a listening socket, or a connected one (served as a client) */
	int clientfd;		/* --ctrl clientfd=: a connected socket (unused beside fd=) */
	const char *bindaddr;	/* tcp; default 127.0.0.1 */
	uint16_t port;
	bool port_set;
	mode_t mode;		/* unixio socket file */
	bool mode_set;
	uid_t uid;
	gid_t gid;
	bool uid_set, gid_set;
	bool terminate;		/* --ctrl ...,terminate: exit when the ctrl client goes */
	bool disconnect;	/* --server ...,disconnect: close after each response */
};

/*
 * The CUSE device: `vtpm-bridge cuse -n NAME [--maj M --min N]`, or
 * `--cuse NAME` beside other fronts when no subcommand is given.
 */
struct cli_cuse {
	bool set;
	const char *name;	/* DEVNAME: the node is /dev/NAME */
	unsigned int major;	/* 0: a dynamic major (one whole major per device) */
	unsigned int minor;
	bool major_set, minor_set;
};

/*
 * --key or --migration-key (state-files.md 4.7): where the key comes from.
 * The parser only checks the words and that an fd= is open for reading;
 * the key is read at start, after --runas, as swtpm reads it.
 */
struct cli_key {
	bool set;
	const char *file;	/* file= or pwdfile= (swtpm: file= wins over fd=, pwdfile=, pwdfd=) */
	int fd;			/* fd= or pwdfd=, when no file */
	bool passphrase;	/* pwdfile=/pwdfd= */
	bool binary;		/* format=binary (file=/fd= only; default hex) */
	bool kdf_sha512;	/* kdf=sha512 (passphrases only; default pbkdf2) */
	bool aes256;		/* mode=aes-256-cbc (default aes-128-cbc) */
	bool remove;		/* remove[=true]: unlink the file once read */
};

enum cli_action {
	CLI_RUN,
	CLI_HELP,
	CLI_VERSION,
	CLI_PRINT_CAPABILITIES,
	CLI_PRINT_STATES,
};

#define CLI_NO_STARTUP (-1)

/* The subcommand: swtpm's (socket, cuse, chardev), or none for several fronts in one process. */
enum cli_mode {
	CLI_MODE_COMBINED,
	CLI_MODE_SOCKET,
	CLI_MODE_CUSE,
	CLI_MODE_CHARDEV,
};

/* --tpmstate's backend: dir=/backend-uri=dir:// (or TPM_PATH), or backend-uri=file://. */
enum cli_state_backend {
	CLI_STATE_DIR,
	CLI_STATE_FILE,
};

struct cli_config {
	enum cli_action action;
	enum cli_mode mode;
	bool tpm2;
	enum cli_state_backend state_backend;
	const char *state_path;		/* the directory, or the file or block device */
	mode_t state_mode;
	bool state_mode_set;
	struct cli_endpoint ctrl, server;
	struct cli_cuse cuse;
	bool vtpm_proxy;		/* /dev/tpmN + /dev/tpmrmN through /dev/vtpmx */
	bool not_need_init;
	int startup;			/* enum emu_startup, or CLI_NO_STARTUP */
	bool startup_set;		/* a startup-* flag was given */
	bool disable_auto_shutdown;
	const char *pid_file;
	int pid_fd;
	bool log_given;			/* any --log: no default prefix (swtpm's) */
	const char *log_file;		/* "-": no logging at all, as swtpm's; unused beside log_fd */
	int log_fd;			/* checked open for writing */
	int log_level;			/* swtpm's level=N; 0 when not given, which means 1 */
	bool log_truncate;
	const char *log_prefix;		/* --log prefix=: before every message, verbatim */
	bool terminate;
	bool daemon;			/* socket: -d; cuse: unless -f (as swtpm cuse) */
	bool reject_locality_4;
	bool allow_set_locality;
	const char *runas;
	bool migration_incoming;
	bool release_lock_outgoing;
	struct cli_key key, migration_key;
	enum sandbox_action seccomp;	/* --seccomp action=; kill unless given */
	bool refuse_damaged;		/* --damaged-state refuse: no fallback to a previous copy */
	bool durability_sync;		/* --durability sync; else bounded=durability_ms */
	unsigned int durability_ms;	/* --durability bounded=MS; default 1000 */
	char **args;			/* the copy of argv the strings point into */
	int nargs;
};

/*
 * Fills cfg from argv.  On error prints one line naming the option to
 * stderr and returns -1.  Strings point into a copy of argv that cfg owns
 * (argv itself stays as ps shows it), or into the environment; cli_free()
 * releases it.  To run, relative state, pid and socket paths are made
 * absolute, and every descriptor given is checked for what it must be.
 */
int cli_parse(int argc, char **argv, struct cli_config *cfg);
void cli_free(struct cli_config *cfg);

/*
 * Checks one option's value as cli_parse() would (`opt` as "--flags",
 * `value` NULL for an option without one), opening nothing; an error names
 * `label` instead of the option.  0 or -1.
 */
int cli_check_value(const char *opt, const char *value, const char *label);
void cli_usage(const char *prog);

#endif
