/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The emulated TPM: the only code that calls libtpms.
 *
 * libtpms keeps one TPM in process globals and calls back without a
 * context, so one process has at most one struct emu.  Functions that
 * answer the control channel return a PTM result code (PTM_RES_*, the
 * libtpms TPM 1.2 numbering); the others return 0 or -errno.
 *
 * Thread rule: one thread at a time calls into an emu, except
 * emu_cancel(), which exists to be called while another thread runs
 * emu_process().
 */
#ifndef VTPM_EMU_TPM_H
#define VTPM_EMU_TPM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct state_key;
struct state_store;
struct emu;

struct emu_config {
	bool tpm2;
	struct state_store *state;	/* owned by the caller, outlives the emu */
	bool defer_lock;		/* --migration incoming: lock at first use */
	bool release_lock_outgoing;	/* drop the lock once the volatile blob is fetched */
	bool auto_shutdown;		/* TPM2_Shutdown before a disorderly stop */
	/*
	 * --key and --migration-key, for the state blobs (state-files.md
	 * section 5): owned by the caller, read at each use (they are filled
	 * in after --runas); NULL or len 0: none.
	 */
	const struct state_key *state_key;
	const struct state_key *migration_key;
};

/* Cheap: touches neither libtpms nor the disk. */
int emu_create(struct emu **out, const struct emu_config *cfg);
/* Loads libtpms and chooses the TPM version: before any other call that needs libtpms. */
int emu_load(struct emu *emu);
void emu_destroy(struct emu *emu);	/* stops a running TPM first */

bool emu_running(const struct emu *emu);
bool emu_is_tpm2(const struct emu *emu);

/* Starts libtpms from the state dir or the blobs set since: INIT. */
uint32_t emu_start(struct emu *emu, bool delete_volatile);
/* Tears a running TPM down (after TPM2_Shutdown unless orderly or disabled). */
void emu_stop(struct emu *emu);

/*
 * Runs one complete TPM command at `locality`.  *resp points into the
 * emu's response buffer, valid until the next emu_process() or emu_stop().
 * Never fails: errors become TPM error responses.
 */
void emu_process(struct emu *emu, const uint8_t *cmd, size_t len, uint8_t locality,
		 const uint8_t **resp, size_t *resp_len);
/* The 10-byte response for `rc` with the tag of the configured TPM version. */
void emu_error_response(const struct emu *emu, uint32_t rc, uint8_t out[10]);
/* The rc of emu_error_response() for a TPM that is not running (TPM_RC_FAILURE / TPM_FAIL). */
uint32_t emu_not_running_rc(const struct emu *emu);
/* The rc for a command larger than the buffer (TPM_RC_COMMAND_SIZE / TPM_BAD_PARAM_SIZE). */
uint32_t emu_command_size_rc(const struct emu *emu);
/* Whether a command of this ordinal may run long enough to want a thread (key generation). */
bool emu_command_is_long(const struct emu *emu, const uint8_t *cmd, size_t len);

void emu_cancel(struct emu *emu);	/* any thread */

/* TPM2_Startup / TPM_Startup of --flags startup-*; returns the TPM's rc. */
enum emu_startup {
	EMU_STARTUP_CLEAR,
	EMU_STARTUP_STATE,
	EMU_STARTUP_DEACTIVATED,	/* TPM 1.2 only */
};
uint32_t emu_startup(struct emu *emu, enum emu_startup type);

uint32_t emu_get_established(struct emu *emu, bool *bit);
uint32_t emu_reset_established(struct emu *emu, uint8_t locality);
uint32_t emu_hash_start(struct emu *emu);
uint32_t emu_hash_data(struct emu *emu, const uint8_t *data, size_t len);
uint32_t emu_hash_end(struct emu *emu);
uint32_t emu_store_volatile(struct emu *emu);
/* wanted 0 queries. */
uint32_t emu_set_buffersize(struct emu *emu, uint32_t wanted, uint32_t *size, uint32_t *min, uint32_t *max);
/* The largest command the data path must accept: the buffer's maximum, whatever size is set. */
uint32_t emu_buffer_size(const struct emu *emu);
/* malloc'ed JSON string, NULL on failure. */
char *emu_get_info(struct emu *emu, uint64_t flags);

/*
 * A state blob as the control channel carries it (state-files.md section 5),
 * malloc'ed: wrapped with the migration key if there is one, and with the
 * state key unless req_flags asks PTM_STATE_FLAG_DECRYPTED, in which case
 * *state_flags says PTM_STATE_FLAG_ENCRYPTED.  PTM_RES_RETRY with an empty
 * blob when that state does not exist.
 */
uint32_t emu_get_blob(struct emu *emu, uint32_t type, uint32_t req_flags, uint8_t **blob, size_t *len,
		      uint32_t *state_flags);
/*
 * Hands a blob to libtpms for the next emu_start(); TPM must be stopped.
 * len 0 clears it.  A blob needing a key we lack: PTM_RES_KEYNOTFOUND; a
 * key of the other length: TPM_BAD_KEY_PROPERTY; an HMAC mismatch:
 * TPM_DECRYPT_ERROR (swtpm's codes).
 */
uint32_t emu_set_blob(struct emu *emu, uint32_t type, uint32_t req_flags, const uint8_t *blob, size_t len);
/* Takes the storage lock if it is not held: PTM_RES_SUCCESS, or PTM_RES_FAIL while another holds it. */
uint32_t emu_lock_storage(struct emu *emu);

/* The libtpms version as "0.9.2", for --version. */
const char *emu_libtpms_version(void);

#endif
