/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The TPM state: swtpm's on-disk formats (../shared/spec/state-files.md,
 * state-file-backend.md), the two storage backends behind one interface,
 * and the control-channel blob format.
 *
 * Only emulator/ includes this.  All functions return 0 or -errno.
 */
#ifndef VTPM_STATE_H
#define VTPM_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "state-crypt.h"

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
 * one (this is the decoder for when no key is configured).
 */
int state_file_decode(const uint8_t *file, size_t len, const uint8_t **payload, size_t *payload_len);
/*
 * With a state key (spec 4.5, 4.6): header flags ENCRYPTED (+ 256BIT_KEY),
 * TLVs ENCRYPTED_DATA, HMAC, IV; a fresh IV every time.
 */
int state_file_encrypt(const struct state_key *key, const uint8_t *payload, size_t len,
		       uint8_t **out, size_t *out_len);
/*
 * Decrypts into a malloc'ed *payload (free with state_crypt_free).  As
 * 0.7.1, the configured key decides: every file is taken as encrypted.
 * -EBADMSG: malformed; -ENOMSG: a plain file; -EMEDIUMTYPE: written with
 * a key of the other length; -EKEYREJECTED: the HMAC does not match
 * (wrong key, or damaged).
 */
int state_file_decrypt(const struct state_key *key, const uint8_t *file, size_t len,
		       uint8_t **payload, size_t *payload_len);

/*
 * Every file and blob we write ends with an integrity TLV (tag
 * STATE_TAG_DIGEST, 32 bytes): SHA-256 over every byte before it.  swtpm
 * skips unknown tags, so it still reads our files; a file swtpm wrote has
 * no tag and is checked for structure only.
 */
struct state_file_report {
	bool tagged;		/* the digest tag is present and matched */
	bool encrypted;		/* header flag ENCRYPTED or ciphertext inside */
	uint16_t flags;		/* the header's */
	size_t payload_len;	/* plain: the libtpms blob; encrypted: the ciphertext */
	uint16_t libtpms_version;	/* plain: the libtpms blob's header, when it has one */
	uint32_t libtpms_magic;
	const char *problem;	/* on -EBADMSG: what is wrong, for the log */
	size_t at;		/* on -EBADMSG: the byte offset it concerns, or SIZE_MAX */
};
/*
 * Integrity and structure of a state file, without a key or libtpms: the
 * header, the TLV stream, the digest tag when present, and for a plain
 * file the libtpms blob's frame (spec 6.5).  0, or -EBADMSG with
 * rep->problem set.  Pure and bounded, like the codecs.
 */
int state_file_check(const uint8_t *file, size_t len, enum state_kind kind, struct state_file_report *rep);

/* The ctrl-channel blob: header flag MIGRATION_DATA, TLV MIGRATION_DATA{TLV DATA(payload)}. */
int state_blob_encode(const uint8_t *payload, size_t len, uint8_t **out, size_t *out_len);
/*
 * req_flags are the request's PTM_STATE_FLAG_*.  -EBADMSG for garbage,
 * -ENOKEY when the blob needs a key we do not have.
 */
int state_blob_decode(const uint8_t *blob, size_t len, uint32_t req_flags, const uint8_t **payload, size_t *payload_len);
/*
 * With keys (spec 5.1), each NULL or len 0 for none: the inner layer
 * encrypted with state_key, the migration layer with migration_key; with
 * neither, state_blob_encode.
 */
int state_blob_seal(const struct state_key *state_key, const struct state_key *migration_key,
		    const uint8_t *payload, size_t len, uint8_t **out, size_t *out_len);
/*
 * Spec 5.2, into a malloc'ed *payload (free with state_crypt_free; NULL
 * and 0 for an empty body).  -ENOKEY when a layer needs a key not given,
 * -EMEDIUMTYPE when the blob's key length flag differs from the key's,
 * -EKEYREJECTED on an HMAC mismatch, -EBADMSG for garbage.
 */
int state_blob_unseal(const struct state_key *state_key, const struct state_key *migration_key,
		      const uint8_t *blob, size_t len, uint32_t req_flags, uint8_t **payload, size_t *payload_len);

/*
 * swtpm's linear file (../shared/spec/state-file-backend.md section 2): a
 * 192-byte little-endian header whose slot table says where each state's
 * section lies.  Slot numbers are fixed: 0 permall, 1 volatilestate,
 * 2 savestate.
 */
#define STATE_LINEAR_HDR_SIZE	192
#define STATE_LINEAR_SLOTS	3	/* used by name; the other 12 stay zero */

struct state_linear_slot {
	uint32_t offset;	/* 0: unused */
	uint32_t data_len;
	uint32_t section_len;
};

struct state_linear_layout {
	struct state_linear_slot slot[STATE_LINEAR_SLOTS];	/* by enum state_kind - 1 */
};

/*
 * Checks a header strictly against a volume of vol_len bytes: magic,
 * version 0 or 1, hdrsize 192, slots 3-14 unused, every used slot inside
 * the volume, past the header, data within its section, no two sections
 * overlapping.  -ENODATA: the magic is all zero (never formatted, or erased
 * by swtpm_setup), so the volume counts as empty.  -EPROTONOSUPPORT: a
 * newer format version.  -EBADMSG: anything else (foreign or damaged).
 */
int state_linear_decode(const uint8_t hdr[STATE_LINEAR_HDR_SIZE], uint64_t vol_len,
			struct state_linear_layout *out);
void state_linear_encode(const struct state_linear_layout *layout, uint8_t hdr[STATE_LINEAR_HDR_SIZE]);

/* ---- the storage: a state directory or a linear file, one interface ---- */

struct state_store;

enum state_backend {
	STATE_BACKEND_DIR,	/* tpm2-00.<name> files in a directory */
	STATE_BACKEND_FILE,	/* swtpm's linear format in a regular file or block device */
};

/*
 * When a store is durable (docs/durability-measurements.md).  Under both, a
 * process crash loses no store that returned.  A linear file always syncs.
 */
enum state_durability {
	STATE_DURABILITY_SYNC,		/* synced before state_save returns */
	/*
	 * Directory: in the kernel when state_save returns, synced at once by
	 * a flusher thread; a store waits only while the oldest one not yet
	 * synced is older than durability_ms.
	 */
	STATE_DURABILITY_BOUNDED,
};
#define STATE_DURABILITY_MS_MAX	60000

struct state_config {
	enum state_backend backend;
	const char *path;	/* absolute: the directory (it must exist), or the file or device */
	mode_t mode;		/* of new state files */
	bool mode_set;		/* mode= given: also applied to existing files, as swtpm 0.10 */
	bool tpm2;		/* tpm2-00.* names, else tpm-00.* (directory only) */
	enum state_durability durability;	/* 0: sync */
	unsigned int durability_ms;		/* bounded: 1 to STATE_DURABILITY_MS_MAX */
	/*
	 * --key: every state is encrypted with it, on both backends.  Owned by
	 * the caller and read at each use, so it may be filled in after open
	 * (the key is read after --runas, as swtpm does); NULL or len 0: none.
	 */
	const struct state_key *key;
	/*
	 * A state that fails its integrity check is never used and never
	 * overwritten.  false: the previous good copy is used instead, loudly;
	 * true: the load fails.
	 */
	bool refuse_damaged;
};

/*
 * Copies cfg; touches nothing on disk, so start-up stays cheap.  The path
 * must be absolute (the command line resolves it at start, before a
 * daemon moves to /): -EINVAL otherwise.
 */
int state_store_open(struct state_store **out, const struct state_config *cfg);
void state_store_close(struct state_store *st);	/* releases the lock; NULL is fine */
/* "state directory /x" or "state file /x", for messages. */
const char *state_store_name(const struct state_store *st);
/* A kind's file in messages: "tpm2-00.permall", or "permall section" in a linear file. */
#define STATE_LABEL_MAX 48
const char *state_label(const struct state_store *st, enum state_kind kind, char *buf, size_t size);
/*
 * At start-up, before anything listens: the directory must exist; a file
 * or device, if it exists, must be one we may serve (not foreign data).
 * Logs the reason.
 */
int state_store_check(struct state_store *st);

/*
 * An exclusive lock: OFD write lock on DIR/.lock (created 0660, never
 * deleted) or on the state file itself; both conflict with swtpm's
 * fcntl(F_SETLK) locks.  Idempotent.  -EAGAIN: another process holds it.
 * A file is opened (and checked) here at the latest.
 */
int state_lock(struct state_store *st);
void state_unlock(struct state_store *st);
bool state_locked(const struct state_store *st);

/*
 * Reads a state and returns its libtpms payload (malloc'ed, libtpms frees
 * what it is given).  -ENOENT: no such state
 * yet.  -EBADMSG: malformed; with a key also state_file_decrypt()'s
 * errors (each logged with the path).  Never writes.
 */
int state_load(struct state_store *st, enum state_kind kind, uint8_t **payload, size_t *len);
/*
 * Atomic, and durable as cfg->durability says: on error the previous state
 * is intact.  Directory: TMP2-00.<name> written, fsynced and renamed over
 * the file (the file it replaced stays as <name>.prev); once renamed the
 * store succeeded, even if the directory fsync then fails (logged).
 * bounded: renamed to <name>.pending unsynced, and committed so by the
 * flusher; after a failed sync every later store fails (restart recovers).
 * File: the new sections are written where no live section lies, then the
 * header switches to them in one sector write.
 */
int state_save(struct state_store *st, enum state_kind kind, const uint8_t *payload, size_t len);
int state_remove(struct state_store *st, enum state_kind kind);	/* absent is fine */
/*
 * Every store that returned is durable when this returns (STOP, SHUTDOWN,
 * GET_STATEBLOB, exit); an earlier failed sync is returned again.
 */
int state_flush(struct state_store *st);

/* What state_verify found for one kind of state. */
struct state_verdict {
	enum state_kind kind;
	int ret;			/* 0 intact, -ENOENT absent, -EBADMSG damaged, else unreadable */
	size_t size;
	struct state_file_report rep;
	int prev_ret;			/* the same for the previous copy (-ENOENT: none kept) */
	size_t prev_size;
	struct state_file_report prev_rep;
};
/*
 * Reads and checks every state and its previous copy without a key,
 * libtpms or the lock, and changes nothing: for the start-up check and
 * `vtpm-bridge state verify`.  Returns 0 once every kind was looked at.
 */
int state_verify(struct state_store *st, struct state_verdict out[STATE_LINEAR_SLOTS]);
/*
 * The start-up check, before anything listens: logs each damaged state
 * and what will happen to it.  -EBADMSG when one can be neither used nor
 * replaced by its previous copy, so the start must fail.
 */
int state_check_integrity(struct state_store *st);
/*
 * Once the key is read, before anything is served: every intact state
 * decrypts with it.  A wrong key is an error naming the file, at start-up
 * rather than at the first command.
 */
int state_check_key(struct state_store *st);

/* For --print-states: the states present, with their size as swtpm reports it. */
struct state_info {
	const char *name;
	size_t size;
};
/* Directory: takes the lock first, as swtpm does; a file is read without one. */
int state_list(struct state_store *st, struct state_info out[STATE_LINEAR_SLOTS], size_t *n);

#endif
