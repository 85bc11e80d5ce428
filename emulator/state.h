/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The TPM state: swtpm's on-disk format (../shared/spec/state-files.md),
 * the state directory with its lock, and the control-channel blob format.
 *
 * Only emulator/ includes this.  All functions return 0 or -errno.
 */
#ifndef VTPM_STATE_H
#define VTPM_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The numbers are PTM_BLOB_TYPE_*. */
enum state_kind {
	STATE_PERMANENT = 1,
	STATE_VOLATILE = 2,
	STATE_SAVESTATE = 3,
};

/* libtpms's name for a kind ("permall", "volatilestate", "savestate"). */
const char *state_kind_name(enum state_kind kind);
/* The reverse, for libtpms callbacks; -EINVAL for an unknown name. */
int state_kind_from_name(const char *name, enum state_kind *kind);

/* ---- pure codecs of outside bytes: bounded, no I/O, fuzzed ---- */

/* Header (10 bytes) + TLV DATA(payload): what a plain state file holds. */
int state_file_encode(const uint8_t *payload, size_t len, uint8_t **out, size_t *out_len);
/*
 * Checks a state file strictly (header, TLV stream to the end) and points
 * *payload into it.  -EBADMSG for a malformed file, -ENOKEY for an encrypted
 * one (no key support yet).
 */
int state_file_decode(const uint8_t *file, size_t len, const uint8_t **payload, size_t *payload_len);

/* The ctrl-channel blob: header flag MIGRATION_DATA, TLV MIGRATION_DATA{TLV DATA(payload)}. */
int state_blob_encode(const uint8_t *payload, size_t len, uint8_t **out, size_t *out_len);
/*
 * req_flags are the request's PTM_STATE_FLAG_*.  -EBADMSG for garbage,
 * -ENOKEY when the blob needs a key we do not have.
 */
int state_blob_decode(const uint8_t *blob, size_t len, uint32_t req_flags, const uint8_t **payload, size_t *payload_len);

/* ---- the state directory ---- */

struct state_dir;

struct state_dir_config {
	const char *path;	/* the directory; it must exist */
	mode_t mode;		/* of new state files */
	bool mode_set;		/* mode= given: fchmod files on read, as swtpm 0.9+ */
	bool tpm2;		/* tpm2-00.* names, else tpm-00.* */
	bool fsync;		/* fsync file and directory on every store (default on) */
};

/* Copies cfg; touches nothing on disk, so start-up stays cheap. */
int state_dir_open(struct state_dir **out, const struct state_dir_config *cfg);
void state_dir_close(struct state_dir *dir);	/* releases the lock; NULL is fine */
const char *state_dir_path(const struct state_dir *dir);

/*
 * Takes an OFD write lock on DIR/.lock (created 0660, never deleted), the
 * lock swtpm's fcntl(F_SETLK) lock conflicts with.  Idempotent.
 * -EAGAIN: another process (swtpm or another vtpm-bridge) holds it.
 */
int state_dir_lock(struct state_dir *dir);
void state_dir_unlock(struct state_dir *dir);
bool state_dir_locked(const struct state_dir *dir);

/*
 * Reads DIR/tpm2-00.<name> and returns its libtpms payload (malloc'ed).
 * -ENOENT: no such state yet.  -EBADMSG: malformed (logged with the path).
 */
int state_dir_load(struct state_dir *dir, enum state_kind kind, uint8_t **payload, size_t *len);
/*
 * Atomic and durable: TMP2-00.<name> created with the mode, written, fsync,
 * rename over the file, fsync of the directory.  On error the old file is
 * intact and the temp file removed.  Once the rename is done the store
 * succeeded (the new file is what readers see), even if the directory
 * fsync then fails: that is logged, and the new name may not survive a
 * power loss until a later store syncs the directory.
 */
int state_dir_store(struct state_dir *dir, enum state_kind kind, const uint8_t *payload, size_t len);
int state_dir_remove(struct state_dir *dir, enum state_kind kind);	/* absent is fine */
/* The file's size on disk (header included), for --print-states; -ENOENT. */
int state_dir_file_size(struct state_dir *dir, enum state_kind kind, size_t *size);

#endif
