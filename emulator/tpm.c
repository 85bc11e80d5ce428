/* SPDX-License-Identifier: BSD-3-Clause */
#include "tpm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libtpms/tpm_error.h>
#include <libtpms/tpm_library.h>
#include <libtpms/tpm_tis.h>
#include <ptm.h>

#include "dlib.h"
#include "log.h"
#include "bytes.h"
#include "state.h"

#define TPM2_ST_NO_SESSIONS	0x8001
#define TPM_TAG_RSP_COMMAND	0x00c4
#define TPM_TAG_RQU_COMMAND	0x00c1
#define TPM2_CC_SHUTDOWN	0x00000145
#define TPM2_CC_STARTUP		0x00000144
#define TPM2_RC_COMMAND_SIZE	0x00000142
#define TPM2_RC_FAILURE		0x00000101
#define TPM_ORD_STARTUP		0x00000099

struct emu {
	struct emu_config cfg;
	bool loaded;		/* libtpms loaded and its TPM version chosen */
	bool running;
	bool orderly;		/* the last command was a successful TPM2_Shutdown */
	/*
	 * The volatile state went out with release-lock-outgoing and the lock
	 * with it: the destination owns the storage now.  Nothing is written
	 * on our own account (no automatic shutdown) until a client uses this
	 * TPM again and so takes the lock back.
	 */
	bool handed_out;
	uint8_t locality;	/* of the command libtpms is running */
	uint8_t *resp;		/* libtpms reallocates it as needed */
	uint32_t resp_cap;
	uint8_t fail[10];	/* an error response made here */
	/* Since the last start: the kinds libtpms was given (1 << kind), and whether one could not be read. */
	unsigned int loaded_kinds;
	bool load_failed;
};

/*
 * libtpms calls back without a context pointer, and keeps its TPM in
 * globals anyway: this is the one emu of the process.
 */
static struct emu *emu_current;

/*
 * libtpms is loaded with dlopen() on the worker thread once the daemon
 * listens: it pulls in libcrypto, whose loading would otherwise come before
 * main() and delay the first answer on the control channel.
 */
#define LIBTPMS_SYMBOLS(X)						\
	X(TPMLIB_ChooseTPMVersion) X(TPMLIB_RegisterCallbacks)		\
	X(TPMLIB_MainInit) X(TPMLIB_Terminate) X(TPMLIB_Process)		\
	X(TPMLIB_VolatileAll_Store) X(TPMLIB_CancelCommand)		\
	X(TPMLIB_SetBufferSize) X(TPMLIB_GetInfo) X(TPMLIB_SetState)	\
	X(TPMLIB_GetVersion) X(TPM_IO_Hash_Start) X(TPM_IO_Hash_Data)	\
	X(TPM_IO_Hash_End) X(TPM_IO_TpmEstablished_Get)			\
	X(TPM_IO_TpmEstablished_Reset)

static struct {
#define LIBTPMS_POINTER(name) __typeof__(name) *name;
	LIBTPMS_SYMBOLS(LIBTPMS_POINTER)
#undef LIBTPMS_POINTER
	void *handle;
} libtpms;

static int libtpms_load(void)
{
#define LIBTPMS_SYM(name) { #name, (void **)&libtpms.name },
	static const struct dlib_sym syms[] = { LIBTPMS_SYMBOLS(LIBTPMS_SYM) };
#undef LIBTPMS_SYM

	if (!libtpms.handle)
		libtpms.handle = dlib_load("libtpms.so.0", syms, sizeof(syms) / sizeof(syms[0]));
	return libtpms.handle ? 0 : -ENOENT;
}

/* ---- libtpms callbacks ---- */

static bool emu_may_write(struct emu *emu);

static TPM_RESULT emu_cb_nvram_init(void)
{
	return TPM_SUCCESS;
}

static TPM_RESULT emu_cb_load(unsigned char **data, uint32_t *length, uint32_t tpm_number, const char *name)
{
	enum state_kind kind;
	uint8_t *payload;
	size_t len;
	int ret;

	(void)tpm_number;
	if (state_kind_from_name(name, &kind) < 0)
		return TPM_FAIL;
	ret = state_load(emu_current->cfg.state, kind, &payload, &len);
	if (ret == -ENOENT)
		return TPM_RETRY;	/* libtpms: no state of this kind yet */
	if (ret < 0 || len > UINT32_MAX) {
		if (ret == 0)
			free(payload);
		emu_current->load_failed = true;
		return TPM_FAIL;
	}
	emu_current->loaded_kinds |= 1u << kind;
	*data = payload;
	*length = (uint32_t)len;
	return TPM_SUCCESS;
}

static TPM_RESULT emu_cb_store(const unsigned char *data, uint32_t length, uint32_t tpm_number, const char *name)
{
	enum state_kind kind;

	(void)tpm_number;
	if (state_kind_from_name(name, &kind) < 0 || !emu_may_write(emu_current))
		return TPM_FAIL;
	if (state_save(emu_current->cfg.state, kind, data, length) < 0)
		return TPM_FAIL;
	return TPM_SUCCESS;
}

static TPM_RESULT emu_cb_delete(uint32_t tpm_number, const char *name, TPM_BOOL must_exist)
{
	enum state_kind kind;

	(void)tpm_number;
	(void)must_exist;
	if (state_kind_from_name(name, &kind) < 0 || !emu_may_write(emu_current))
		return TPM_FAIL;
	if (state_remove(emu_current->cfg.state, kind) < 0)
		return TPM_FAIL;
	return TPM_SUCCESS;
}

static TPM_RESULT emu_cb_io_init(void)
{
	return TPM_SUCCESS;
}

static TPM_RESULT emu_cb_locality(TPM_MODIFIER_INDICATOR *locality, uint32_t tpm_number)
{
	(void)tpm_number;
	*locality = emu_current->locality;
	return TPM_SUCCESS;
}

static TPM_RESULT emu_cb_physical_presence(TPM_BOOL *present, uint32_t tpm_number)
{
	(void)tpm_number;
	*present = FALSE;
	return TPM_SUCCESS;
}

static struct libtpms_callbacks emu_callbacks = {
	.sizeOfStruct = sizeof(struct libtpms_callbacks),
	.tpm_nvram_init = emu_cb_nvram_init,
	.tpm_nvram_loaddata = emu_cb_load,
	.tpm_nvram_storedata = emu_cb_store,
	.tpm_nvram_deletename = emu_cb_delete,
	.tpm_io_init = emu_cb_io_init,
	.tpm_io_getlocality = emu_cb_locality,
	.tpm_io_getphysicalpresence = emu_cb_physical_presence,
};

/* ---- life cycle ---- */

int emu_create(struct emu **out, const struct emu_config *cfg)
{
	struct emu *emu;

	if (emu_current)
		return -EBUSY;
	emu = calloc(1, sizeof(*emu));
	if (!emu)
		return -ENOMEM;
	emu->cfg = *cfg;
	emu_current = emu;
	*out = emu;
	return 0;
}

int emu_load(struct emu *emu)
{
	int ret;

	if (emu->loaded)
		return 0;
	ret = libtpms_load();
	if (ret < 0)
		return ret;
	if (libtpms.TPMLIB_ChooseTPMVersion(emu->cfg.tpm2 ? TPMLIB_TPM_VERSION_2 : TPMLIB_TPM_VERSION_1_2) !=
	    TPM_SUCCESS) {
		log_err("libtpms does not support TPM %s", emu->cfg.tpm2 ? "2.0" : "1.2");
		return -ENOTSUP;
	}
	emu->loaded = true;
	return 0;
}

void emu_destroy(struct emu *emu)
{
	if (!emu)
		return;
	emu_stop(emu);
	free(emu->resp);
	emu_current = NULL;
	free(emu);
}

bool emu_running(const struct emu *emu)
{
	return emu->running;
}

bool emu_is_tpm2(const struct emu *emu)
{
	return emu->cfg.tpm2;
}

/* 0, -EAGAIN while another process holds the state, or another -errno (logged). */
static int emu_lock(struct emu *emu)
{
	int ret = state_lock(emu->cfg.state);

	if (ret == 0)
		emu->handed_out = false;	/* ours again */
	else if (ret == -EAGAIN)
		log_debug("%s is in use by another TPM process", state_store_name(emu->cfg.state));
	else
		log_errno(LOG_ERR, -ret, "cannot use %s", state_store_name(emu->cfg.state));
	return ret;
}

uint32_t emu_lock_storage(struct emu *emu)
{
	return emu_lock(emu) == 0 ? PTM_RES_SUCCESS : PTM_RES_FAIL;
}

/*
 * The one step before every state write: the lock is taken if it is not
 * held (deferred for an incoming migration, or given up with the state).
 */
static bool emu_may_write(struct emu *emu)
{
	return state_locked(emu->cfg.state) || emu_lock_storage(emu) == PTM_RES_SUCCESS;
}

/* Why the TPM did not start, naming the files libtpms was given. */
static void emu_start_error(const struct emu *emu, TPM_RESULT rc)
{
	char files[3 * (STATE_LABEL_MAX + 2)] = "", label[STATE_LABEL_MAX];

	if (emu->load_failed) {
		log_err("the TPM cannot start from %s: a state could not be used (see above)",
			state_store_name(emu->cfg.state));
		return;
	}
	for (enum state_kind k = STATE_PERMANENT; k <= STATE_SAVESTATE; k++) {
		if (!(emu->loaded_kinds & (1u << k)))
			continue;
		if (files[0])
			strcat(files, ", ");
		strcat(files, state_label(emu->cfg.state, k, label, sizeof(label)));
	}
	if (files[0])
		log_err("%s: libtpms refused the state in %s (libtpms error 0x%x); the files are left as they are",
			state_store_name(emu->cfg.state), files, rc);
	else
		log_err("%s: libtpms could not make a new TPM (libtpms error 0x%x)",
			state_store_name(emu->cfg.state), rc);
}

uint32_t emu_start(struct emu *emu, bool delete_volatile)
{
	TPM_RESULT rc;

	if (emu->running)
		emu_stop(emu);
	if (!emu->cfg.defer_lock) {
		int ret = emu_lock(emu);

		if (ret == -EAGAIN)
			log_err("cannot start the TPM: %s is in use by another process "
				"(swtpm or vtpm-bridge)", state_store_name(emu->cfg.state));
		else if (ret < 0)
			log_err("cannot start the TPM from %s", state_store_name(emu->cfg.state));
		if (ret < 0)
			return PTM_RES_FAIL;
	}
	emu->loaded_kinds = 0;
	emu->load_failed = false;
	rc = libtpms.TPMLIB_RegisterCallbacks(&emu_callbacks);
	if (rc == TPM_SUCCESS)
		rc = libtpms.TPMLIB_MainInit();
	if (rc != TPM_SUCCESS) {
		emu_start_error(emu, rc);
		return rc;
	}
	emu->running = true;
	emu->orderly = false;
	/* The TPM resumed from the volatile state; a later INIT must not resume it again. */
	if (delete_volatile && emu_may_write(emu))
		state_remove(emu->cfg.state, STATE_VOLATILE);
	return PTM_RES_SUCCESS;
}

static uint32_t emu_run_simple(struct emu *emu, const uint8_t *cmd, size_t len)
{
	const uint8_t *resp;
	size_t resp_len;

	emu_process(emu, cmd, len, 0, &resp, &resp_len);
	return resp_len >= 10 ? get_be32(resp + 6) : TPM_FAIL;
}

static uint32_t emu_tpm2_shutdown(struct emu *emu, uint16_t type)
{
	uint8_t cmd[12] = { 0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x45 };

	cmd[10] = (uint8_t)(type >> 8);
	cmd[11] = (uint8_t)type;
	return emu_run_simple(emu, cmd, sizeof(cmd));
}

void emu_stop(struct emu *emu)
{
	if (!emu->running)
		return;
	/*
	 * A TPM 2 torn down without TPM2_Shutdown counts the next start as
	 * disorderly, which raises the dictionary-attack counter when a
	 * DA-protected authorization was used: shut it down first.
	 */
	if (emu->cfg.tpm2 && emu->cfg.auto_shutdown && !emu->orderly && !emu->handed_out &&
	    emu_tpm2_shutdown(emu, 1 /* SU_STATE */) != 0)
		emu_tpm2_shutdown(emu, 0 /* SU_CLEAR */);
	libtpms.TPMLIB_Terminate();
	emu->running = false;
	/* STOP, SHUTDOWN, a new INIT and the exit answer with every state write on disk. */
	if (state_flush(emu->cfg.state) < 0)
		log_err("stopped with state writes that could not be synced to %s", state_store_name(emu->cfg.state));
}

uint32_t emu_startup(struct emu *emu, enum emu_startup type)
{
	uint8_t cmd[12];

	if (emu->cfg.tpm2) {
		static const uint8_t tpm2[12] = { 0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x44, 0, 0 };

		if (type == EMU_STARTUP_DEACTIVATED)
			return TPM_BAD_PARAMETER;
		memcpy(cmd, tpm2, sizeof(cmd));
		cmd[11] = type == EMU_STARTUP_STATE ? 1 : 0;
	} else {
		static const uint8_t tpm12[12] = { 0x00, 0xc1, 0, 0, 0, 12, 0, 0, 0, 0x99, 0, 1 };

		memcpy(cmd, tpm12, sizeof(cmd));
		cmd[11] = (uint8_t)(type + 1);	/* TPM_ST_CLEAR 1, STATE 2, DEACTIVATED 3 */
	}
	return emu_run_simple(emu, cmd, sizeof(cmd));
}

/* ---- commands ---- */

void emu_error_response(const struct emu *emu, uint32_t rc, uint8_t out[10])
{
	uint16_t tag = emu->cfg.tpm2 ? TPM2_ST_NO_SESSIONS : TPM_TAG_RSP_COMMAND;

	out[0] = (uint8_t)(tag >> 8);
	out[1] = (uint8_t)tag;
	put_be32(out + 2, 10);
	put_be32(out + 6, rc);
}

uint32_t emu_not_running_rc(const struct emu *emu)
{
	return emu->cfg.tpm2 ? TPM2_RC_FAILURE : TPM_FAIL;
}

uint32_t emu_command_size_rc(const struct emu *emu)
{
	return emu->cfg.tpm2 ? TPM2_RC_COMMAND_SIZE : TPM_BAD_PARAM_SIZE;
}

/*
 * The key type a TPM2 Create, CreatePrimary or CreateLoaded asks for: after
 * the header and the one handle, the auth area (tag 0x8002), the
 * TPM2B inSensitive, then the TPM2B inPublic, which starts with the type.
 * 0 when the command is too short to say.
 */
static uint16_t tpm2_create_key_type(const uint8_t *cmd, size_t len)
{
	size_t off = 14;	/* header (10) + handle (4) */
	uint16_t sensitive;

	/* Each step checks what is left before it reads: len - off never wraps. */
	if (len < off)
		return 0;
	if (get_be16(cmd) == 0x8002) {
		uint32_t auth;

		if (len - off < 4)
			return 0;
		auth = get_be32(cmd + off);
		off += 4;
		if (auth > len - off)
			return 0;
		off += auth;
	}
	if (len - off < 2)
		return 0;
	sensitive = get_be16(cmd + off);
	off += 2;
	if (sensitive > len - off)
		return 0;
	off += sensitive;
	if (len - off < 4)
		return 0;
	return get_be16(cmd + off + 2);		/* inPublic: size, then type */
}

bool emu_command_is_long(const struct emu *emu, const uint8_t *cmd, size_t len)
{
	uint32_t ord;

	if (len < 10)
		return false;
	ord = get_be32(cmd + 6);
	if (emu->cfg.tpm2) {
		uint16_t type;

		/*
		 * RSA key generation takes 10-100 ms; an ECC key ~0.3 ms, less
		 * than the thread hand-off is worth.  A template we cannot read
		 * goes to the worker, to be safe.
		 */
		if (ord != 0x131 /* CreatePrimary */ && ord != 0x153 /* Create */ &&
		    ord != 0x191 /* CreateLoaded */)
			return false;
		type = tpm2_create_key_type(cmd, len);
		return type == 0 || type == 0x0001 /* TPM_ALG_RSA */;
	}
	return ord == 0x0d /* TakeOwnership */ || ord == 0x1f /* CreateWrapKey */ ||
	       ord == 0x79 /* MakeIdentity */ || ord == 0x78 /* CreateEndorsementKeyPair */ ||
	       ord == 0x7f /* CreateRevocableEK */ || ord == 0x13 /* CMK_CreateKey */;
}

static void emu_fail_response(struct emu *emu, uint32_t rc, const uint8_t **resp, size_t *resp_len)
{
	emu_error_response(emu, rc, emu->fail);
	*resp = emu->fail;
	*resp_len = sizeof(emu->fail);
}

void emu_process(struct emu *emu, const uint8_t *cmd, size_t len, uint8_t locality,
		 const uint8_t **resp, size_t *resp_len)
{
	uint32_t resp_size = 0;
	TPM_RESULT rc;

	if (!emu->running) {
		emu_fail_response(emu, emu_not_running_rc(emu), resp, resp_len);
		return;
	}
	/* The lock may be deferred or given up with the state: a command takes it (back) first. */
	if (!emu_may_write(emu)) {
		emu_fail_response(emu, emu_not_running_rc(emu), resp, resp_len);
		return;
	}
	emu->locality = locality;
	/* libtpms takes the command non-const but does not write it. */
	rc = libtpms.TPMLIB_Process(&emu->resp, &resp_size, &emu->resp_cap,
			    (unsigned char *)(uintptr_t)cmd, (uint32_t)len);
	if (rc != TPM_SUCCESS || resp_size < 10) {
		emu_fail_response(emu, emu_not_running_rc(emu), resp, resp_len);
		emu->orderly = false;
		return;
	}
	emu->orderly = emu->cfg.tpm2 && len >= 10 && get_be32(cmd + 6) == TPM2_CC_SHUTDOWN &&
		       get_be32(emu->resp + 6) == 0;
	*resp = emu->resp;
	*resp_len = resp_size;
}

void emu_cancel(struct emu *emu)
{
	(void)emu;
	libtpms.TPMLIB_CancelCommand();
}

/* ---- control operations ---- */

uint32_t emu_get_established(struct emu *emu, bool *bit)
{
	TPM_BOOL established = FALSE;
	TPM_RESULT rc;

	(void)emu;
	rc = libtpms.TPM_IO_TpmEstablished_Get(&established);
	*bit = established != FALSE;
	return rc;
}

uint32_t emu_reset_established(struct emu *emu, uint8_t locality)
{
	uint8_t saved = emu->locality;
	TPM_RESULT rc;

	/* libtpms checks the locality through the callback: 3 or 4 only. */
	emu->locality = locality;
	rc = libtpms.TPM_IO_TpmEstablished_Reset();
	emu->locality = saved;
	return rc;
}

uint32_t emu_hash_start(struct emu *emu)
{
	(void)emu;
	return libtpms.TPM_IO_Hash_Start();
}

uint32_t emu_hash_data(struct emu *emu, const uint8_t *data, size_t len)
{
	(void)emu;
	if (len > UINT32_MAX)
		return PTM_RES_BAD_PARAMETER;
	return libtpms.TPM_IO_Hash_Data(data, (uint32_t)len);
}

uint32_t emu_hash_end(struct emu *emu)
{
	(void)emu;
	return libtpms.TPM_IO_Hash_End();
}

uint32_t emu_store_volatile(struct emu *emu)
{
	unsigned char *buf = NULL;
	uint32_t len = 0;
	TPM_RESULT rc;
	int ret;

	if (!emu_may_write(emu))
		return PTM_RES_FAIL;
	rc = libtpms.TPMLIB_VolatileAll_Store(&buf, &len);
	if (rc != TPM_SUCCESS)
		return rc;
	ret = state_save(emu->cfg.state, STATE_VOLATILE, buf, len);
	/* A control-channel request to store: on disk when answered, under every --durability. */
	if (ret == 0)
		ret = state_flush(emu->cfg.state);
	if (ret < 0)
		rc = ret == -ENOSPC ? TPM_SIZE : TPM_FAIL;	/* TPM_SIZE: a full volume, as swtpm */
	free(buf);
	return rc;
}

uint32_t emu_set_buffersize(struct emu *emu, uint32_t wanted, uint32_t *size, uint32_t *min, uint32_t *max)
{
	(void)emu;
	*size = libtpms.TPMLIB_SetBufferSize(wanted, min, max);
	return PTM_RES_SUCCESS;
}

uint32_t emu_buffer_size(const struct emu *emu)
{
	uint32_t min, max;

	(void)emu;
	libtpms.TPMLIB_SetBufferSize(0, &min, &max);
	return max;
}

char *emu_get_info(struct emu *emu, uint64_t flags)
{
	(void)emu;
	return libtpms.TPMLIB_GetInfo((enum TPMLIB_InfoFlags)flags);
}

static enum TPMLIB_StateType emu_state_type(uint32_t type)
{
	switch (type) {
	case PTM_BLOB_TYPE_PERMANENT:
		return TPMLIB_STATE_PERMANENT;
	case PTM_BLOB_TYPE_VOLATILE:
		return TPMLIB_STATE_VOLATILE;
	default:
		return TPMLIB_STATE_SAVE_STATE;
	}
}

uint32_t emu_get_blob(struct emu *emu, uint32_t type, uint32_t req_flags, uint8_t **blob, size_t *len,
		      uint32_t *state_flags)
{
	const struct state_key *inner_key = NULL;
	uint8_t *payload = NULL;
	size_t payload_len = 0;
	uint32_t vol_len = 0;
	int ret;

	*blob = NULL;
	*len = 0;
	*state_flags = 0;
	if (type < PTM_BLOB_TYPE_PERMANENT || type > PTM_BLOB_TYPE_SAVESTATE)
		return PTM_RES_FAIL;
	/* A migration source has its state on disk before any of it goes out (swtpm PR#1122). */
	if (state_flush(emu->cfg.state) < 0)
		return PTM_RES_FAIL;
	if (type == PTM_BLOB_TYPE_VOLATILE) {
		if (libtpms.TPMLIB_VolatileAll_Store(&payload, &vol_len) != TPM_SUCCESS)
			return PTM_RES_FAIL;
		payload_len = vol_len;
		/* The TPM's volatile state is moving away; a stale file must not be resumed later. */
		if (emu_may_write(emu))
			state_remove(emu->cfg.state, STATE_VOLATILE);
		if (emu->cfg.release_lock_outgoing) {
			state_unlock(emu->cfg.state);
			emu->handed_out = true;
		}
	} else {
		ret = state_load(emu->cfg.state, (enum state_kind)type, &payload, &payload_len);
		if (ret == -ENOENT)
			return PTM_RES_RETRY;
		if (ret < 0)
			return PTM_RES_FAIL;
	}
	/* As swtpm: the state layer stays encrypted unless the client asks for it decrypted. */
	if (state_key_set(emu->cfg.state_key) && !(req_flags & PTM_STATE_FLAG_DECRYPTED)) {
		inner_key = emu->cfg.state_key;
		*state_flags = PTM_STATE_FLAG_ENCRYPTED;
	}
	ret = state_blob_seal(inner_key, emu->cfg.migration_key, payload, payload_len, blob, len);
	state_crypt_free(payload, payload_len);
	if (ret < 0)
		*state_flags = 0;
	return ret < 0 ? PTM_RES_FAIL : PTM_RES_SUCCESS;
}

uint32_t emu_set_blob(struct emu *emu, uint32_t type, uint32_t req_flags, const uint8_t *blob, size_t len)
{
	uint8_t *payload = NULL;
	size_t payload_len = 0;
	TPM_RESULT rc;

	if (type < PTM_BLOB_TYPE_PERMANENT || type > PTM_BLOB_TYPE_SAVESTATE)
		return PTM_RES_BAD_PARAMETER;
	if (!emu->cfg.defer_lock && emu_lock_storage(emu) != PTM_RES_SUCCESS)
		return PTM_RES_IOERROR;
	if (len > 0) {
		int ret = state_blob_unseal(emu->cfg.state_key, emu->cfg.migration_key, blob, len, req_flags,
					    &payload, &payload_len);

		switch (ret) {
		case 0:
			break;
		case -ENOKEY:
			log_err("a state blob of type %u is encrypted with a key that is not configured "
				"(--key or --migration-key)", type);
			return PTM_RES_KEYNOTFOUND;
		case -EMEDIUMTYPE:
			log_err("a state blob of type %u was encrypted with a key of another length", type);
			return TPM_BAD_KEY_PROPERTY;
		case -EKEYREJECTED:
			log_err("a state blob of type %u: HMAC mismatch: wrong key or damaged", type);
			return TPM_DECRYPT_ERROR;
		default:
			log_debug("rejected a malformed state blob of type %u (%zu bytes)", type, len);
			return PTM_RES_BAD_PARAMETER;
		}
		if (payload_len > UINT32_MAX) {
			state_crypt_free(payload, payload_len);
			return PTM_RES_BAD_PARAMETER;
		}
	}
	rc = libtpms.TPMLIB_SetState(emu_state_type(type), payload, (uint32_t)payload_len);
	if (rc != TPM_SUCCESS)
		log_debug("libtpms rejected a state blob of type %u: 0x%x", type, rc);
	state_crypt_free(payload, payload_len);
	return rc;
}

const char *emu_libtpms_version(void)
{
	static char version[16];
	uint32_t v;

	if (libtpms_load() < 0)
		return "not found";
	v = libtpms.TPMLIB_GetVersion();
	snprintf(version, sizeof(version), "%u.%u.%u", v >> 16, (v >> 8) & 0xff, v & 0xff);
	return version;
}
