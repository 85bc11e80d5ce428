/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The PTM ABI items both headers must agree on, as X-macros: the same text
 * is compiled once against Debian's <swtpm/tpm_ioctl.h> (abi_swtpm.c) and
 * once against our kmod-headers/ptm.h (abi_ours.c); abi_check.c compares
 * the two tables.  The items newer than Debian's header (swtpm >= 0.8)
 * are in ABI_ITEMS_NEW and are checked against ptm-abi.tsv instead.
 */
#ifndef VTPM_ABI_ITEMS_H
#define VTPM_ABI_ITEMS_H

#include <stddef.h>
#include <stdint.h>

struct abi_item {
	const char *name;
	uint64_t value;
};

#define ABI_IOCTL(x)		X(#x, (uint32_t)(x))
#define ABI_CONST(x)		X(#x, (uint64_t)(x))
#define ABI_SIZE(t)		X("sizeof(" #t ")", sizeof(t))
#define ABI_OFF(t, f)		X("offsetof(" #t ", " #f ")", offsetof(t, f))
#define ABI_FSIZE(t, f)		X("sizeof(" #t "." #f ")", sizeof(((t *)0)->f))

#define ABI_ITEMS \
	ABI_IOCTL(PTM_GET_CAPABILITY) ABI_IOCTL(PTM_INIT) ABI_IOCTL(PTM_SHUTDOWN) \
	ABI_IOCTL(PTM_GET_TPMESTABLISHED) ABI_IOCTL(PTM_SET_LOCALITY) ABI_IOCTL(PTM_HASH_START) \
	ABI_IOCTL(PTM_HASH_DATA) ABI_IOCTL(PTM_HASH_END) ABI_IOCTL(PTM_CANCEL_TPM_CMD) \
	ABI_IOCTL(PTM_STORE_VOLATILE) ABI_IOCTL(PTM_RESET_TPMESTABLISHED) ABI_IOCTL(PTM_GET_STATEBLOB) \
	ABI_IOCTL(PTM_SET_STATEBLOB) ABI_IOCTL(PTM_STOP) ABI_IOCTL(PTM_GET_CONFIG) \
	ABI_IOCTL(PTM_SET_DATAFD) ABI_IOCTL(PTM_SET_BUFFERSIZE) ABI_IOCTL(PTM_GET_INFO) \
	ABI_CONST(CMD_GET_CAPABILITY) ABI_CONST(CMD_INIT) ABI_CONST(CMD_SHUTDOWN) \
	ABI_CONST(CMD_GET_TPMESTABLISHED) ABI_CONST(CMD_SET_LOCALITY) ABI_CONST(CMD_HASH_START) \
	ABI_CONST(CMD_HASH_DATA) ABI_CONST(CMD_HASH_END) ABI_CONST(CMD_CANCEL_TPM_CMD) \
	ABI_CONST(CMD_STORE_VOLATILE) ABI_CONST(CMD_RESET_TPMESTABLISHED) ABI_CONST(CMD_GET_STATEBLOB) \
	ABI_CONST(CMD_SET_STATEBLOB) ABI_CONST(CMD_STOP) ABI_CONST(CMD_GET_CONFIG) \
	ABI_CONST(CMD_SET_DATAFD) ABI_CONST(CMD_SET_BUFFERSIZE) ABI_CONST(CMD_GET_INFO) \
	ABI_CONST(PTM_CAP_INIT) ABI_CONST(PTM_CAP_SHUTDOWN) ABI_CONST(PTM_CAP_GET_TPMESTABLISHED) \
	ABI_CONST(PTM_CAP_SET_LOCALITY) ABI_CONST(PTM_CAP_HASHING) ABI_CONST(PTM_CAP_CANCEL_TPM_CMD) \
	ABI_CONST(PTM_CAP_STORE_VOLATILE) ABI_CONST(PTM_CAP_RESET_TPMESTABLISHED) \
	ABI_CONST(PTM_CAP_GET_STATEBLOB) ABI_CONST(PTM_CAP_SET_STATEBLOB) ABI_CONST(PTM_CAP_STOP) \
	ABI_CONST(PTM_CAP_GET_CONFIG) ABI_CONST(PTM_CAP_SET_DATAFD) ABI_CONST(PTM_CAP_SET_BUFFERSIZE) \
	ABI_CONST(PTM_CAP_GET_INFO) ABI_CONST(PTM_CAP_SEND_COMMAND_HEADER) \
	ABI_CONST(PTM_INIT_FLAG_DELETE_VOLATILE) ABI_CONST(PTM_STATE_BLOB_SIZE) ABI_CONST(PTM_GETINFO_SIZE) \
	ABI_CONST(PTM_BLOB_TYPE_PERMANENT) ABI_CONST(PTM_BLOB_TYPE_VOLATILE) ABI_CONST(PTM_BLOB_TYPE_SAVESTATE) \
	ABI_CONST(PTM_STATE_FLAG_DECRYPTED) ABI_CONST(PTM_STATE_FLAG_ENCRYPTED) \
	ABI_CONST(PTM_CONFIG_FLAG_FILE_KEY) ABI_CONST(PTM_CONFIG_FLAG_MIGRATION_KEY) \
	ABI_CONST(SWTPM_INFO_TPMSPECIFICATION) ABI_CONST(SWTPM_INFO_TPMATTRIBUTES) \
	ABI_SIZE(ptm_cap) ABI_SIZE(ptm_res) \
	ABI_SIZE(struct ptm_init) ABI_OFF(struct ptm_init, u.req.init_flags) \
	ABI_OFF(struct ptm_init, u.resp.tpm_result) \
	ABI_SIZE(struct ptm_est) ABI_OFF(struct ptm_est, u.resp.tpm_result) ABI_OFF(struct ptm_est, u.resp.bit) \
	ABI_FSIZE(struct ptm_est, u.resp.bit) \
	ABI_SIZE(struct ptm_loc) ABI_OFF(struct ptm_loc, u.req.loc) ABI_FSIZE(struct ptm_loc, u.req.loc) \
	ABI_OFF(struct ptm_loc, u.resp.tpm_result) \
	ABI_SIZE(struct ptm_reset_est) ABI_OFF(struct ptm_reset_est, u.req.loc) \
	ABI_FSIZE(struct ptm_reset_est, u.req.loc) ABI_OFF(struct ptm_reset_est, u.resp.tpm_result) \
	ABI_SIZE(struct ptm_hdata) ABI_OFF(struct ptm_hdata, u.req.length) ABI_OFF(struct ptm_hdata, u.req.data) \
	ABI_FSIZE(struct ptm_hdata, u.req.data) ABI_OFF(struct ptm_hdata, u.resp.tpm_result) \
	ABI_SIZE(struct ptm_getstate) ABI_OFF(struct ptm_getstate, u.req.state_flags) \
	ABI_OFF(struct ptm_getstate, u.req.type) ABI_OFF(struct ptm_getstate, u.req.offset) \
	ABI_OFF(struct ptm_getstate, u.resp.tpm_result) ABI_OFF(struct ptm_getstate, u.resp.state_flags) \
	ABI_OFF(struct ptm_getstate, u.resp.totlength) ABI_OFF(struct ptm_getstate, u.resp.length) \
	ABI_OFF(struct ptm_getstate, u.resp.data) ABI_FSIZE(struct ptm_getstate, u.resp.data) \
	ABI_SIZE(struct ptm_setstate) ABI_OFF(struct ptm_setstate, u.req.state_flags) \
	ABI_OFF(struct ptm_setstate, u.req.type) ABI_OFF(struct ptm_setstate, u.req.length) \
	ABI_OFF(struct ptm_setstate, u.req.data) ABI_FSIZE(struct ptm_setstate, u.req.data) \
	ABI_OFF(struct ptm_setstate, u.resp.tpm_result) \
	ABI_SIZE(struct ptm_getconfig) ABI_OFF(struct ptm_getconfig, u.resp.tpm_result) \
	ABI_OFF(struct ptm_getconfig, u.resp.flags) \
	ABI_SIZE(struct ptm_setbuffersize) ABI_OFF(struct ptm_setbuffersize, u.req.buffersize) \
	ABI_OFF(struct ptm_setbuffersize, u.resp.tpm_result) ABI_OFF(struct ptm_setbuffersize, u.resp.buffersize) \
	ABI_OFF(struct ptm_setbuffersize, u.resp.minsize) ABI_OFF(struct ptm_setbuffersize, u.resp.maxsize) \
	ABI_SIZE(struct ptm_getinfo) X("_Alignof(struct ptm_getinfo)", _Alignof(struct ptm_getinfo)) \
	ABI_OFF(struct ptm_getinfo, u.req.flags) ABI_FSIZE(struct ptm_getinfo, u.req.flags) \
	ABI_OFF(struct ptm_getinfo, u.req.offset) ABI_OFF(struct ptm_getinfo, u.req.pad) \
	ABI_OFF(struct ptm_getinfo, u.resp.tpm_result) ABI_OFF(struct ptm_getinfo, u.resp.totlength) \
	ABI_OFF(struct ptm_getinfo, u.resp.length) ABI_OFF(struct ptm_getinfo, u.resp.buffer) \
	ABI_FSIZE(struct ptm_getinfo, u.resp.buffer)

/* Newer than Debian's 0.7.1 header: checked against ptm-abi.tsv. */
#define ABI_ITEMS_NEW \
	ABI_IOCTL(PTM_LOCK_STORAGE) ABI_CONST(CMD_LOCK_STORAGE) ABI_CONST(PTM_CAP_LOCK_STORAGE) \
	ABI_SIZE(struct ptm_lockstorage) ABI_OFF(struct ptm_lockstorage, u.req.retries) \
	ABI_OFF(struct ptm_lockstorage, u.resp.tpm_result) \
	ABI_CONST(SWTPM_INFO_TPMFEATURES)

const struct abi_item *abi_swtpm_items(size_t *n);
const struct abi_item *abi_ours_items(size_t *n);
const struct abi_item *abi_ours_new_items(size_t *n);

#endif
