/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Inside the storage layer: what a backend implements.  The generic layer
 * (state-store.c) owns the swtpm blob codec, the size limit, the lock flag
 * and the messages; a backend moves encoded state files to and from disk.
 * Only emulator/state-*.c include this.
 */
#ifndef VTPM_STATE_STORE_H
#define VTPM_STATE_STORE_H

#include "state.h"

/* libtpms blobs are a few KiB; refuse to malloc whatever a file claims. */
#define STATE_FILE_MAX		(16u * 1024 * 1024)

struct state_store_ops {
	/* At start-up: does the path exist as this backend needs it?  Logs why not. */
	int (*check)(struct state_store *st);
	int (*lock)(struct state_store *st);
	void (*unlock)(struct state_store *st);
	/* Whole encoded state files (swtpm header + TLVs); -ENOENT when absent. */
	int (*read)(struct state_store *st, enum state_kind kind, uint8_t **file, size_t *len);
	int (*write)(struct state_store *st, enum state_kind kind, const uint8_t *file, size_t len);
	int (*remove)(struct state_store *st, enum state_kind kind);
	int (*flush)(struct state_store *st);	/* NULL: every store is durable when it returns */
	int (*list)(struct state_store *st, struct state_info out[STATE_LINEAR_SLOTS], size_t *n);
	/*
	 * The previous good copy (the state before the last commit), for a
	 * fallback when the current one is damaged; -ENOENT when none is kept.
	 * NULL: the backend keeps none.
	 */
	int (*read_prev)(struct state_store *st, enum state_kind kind, uint8_t **file, size_t *len);
	/*
	 * Moves a damaged current state out of the way under a new name, never
	 * over an existing file, and returns that name (malloc'ed) in *kept.
	 */
	int (*set_aside)(struct state_store *st, enum state_kind kind, char **kept);
	void (*destroy)(struct state_store *st);	/* frees the backend's container */
};

/* The first member of every backend's own struct. */
struct state_store {
	const struct state_store_ops *ops;
	char *path;		/* absolute */
	char *name;		/* "state directory /x", "state file /x" */
	mode_t mode;
	bool mode_set;
	bool tpm2;
	enum state_durability durability;
	unsigned int durability_ms;
	bool locked;
	bool refuse_damaged;		/* --damaged-state refuse: no fallback to the previous copy */
	bool dir;			/* the directory backend: messages name tpm2-00.<name> */
	const struct state_key *key;	/* the caller's; NULL or len 0: plain states */
};

/* calloc'ed backends with only their ops and private fields set. */
struct state_store *state_dir_new(void);
struct state_store *state_linear_new(void);

/* I/O helpers shared by the backends: whole buffers, EINTR retried. */
int state_pread_all(int fd, uint8_t *buf, size_t len, off_t off);
int state_pwrite_all(int fd, const uint8_t *buf, size_t len, off_t off);

#endif
