/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The PTM control ABI of `swtpm socket` (ctrl channel, big-endian on the
 * wire) and `swtpm cuse` (ioctls, host byte order).  Written from
 * ../shared/spec/ptm-ioctl.md and ptm-abi.tsv; the sizes and request numbers
 * are checked at compile time below.
 */
#ifndef VTPM_KMOD_PTM_H
#define VTPM_KMOD_PTM_H

#include <stdint.h>
#include <sys/ioctl.h>

/* Ctrl-channel command codes; the CUSE ioctl number is the code minus 1. */
enum ptm_cmd {
	CMD_GET_CAPABILITY = 1,
	CMD_INIT = 2,
	CMD_SHUTDOWN = 3,
	CMD_GET_TPMESTABLISHED = 4,
	CMD_SET_LOCALITY = 5,
	CMD_HASH_START = 6,
	CMD_HASH_DATA = 7,
	CMD_HASH_END = 8,
	CMD_CANCEL_TPM_CMD = 9,
	CMD_STORE_VOLATILE = 10,
	CMD_RESET_TPMESTABLISHED = 11,
	CMD_GET_STATEBLOB = 12,
	CMD_SET_STATEBLOB = 13,
	CMD_STOP = 14,
	CMD_GET_CONFIG = 15,
	CMD_SET_DATAFD = 16,
	CMD_SET_BUFFERSIZE = 17,
	CMD_GET_INFO = 18,
	CMD_LOCK_STORAGE = 19,
};

/* Capability bits: bit n is ioctl nr n, except HASHING and SEND_COMMAND_HEADER. */
#define PTM_CAP_INIT			(1u << 0)
#define PTM_CAP_SHUTDOWN		(1u << 1)
#define PTM_CAP_GET_TPMESTABLISHED	(1u << 2)
#define PTM_CAP_SET_LOCALITY		(1u << 3)
#define PTM_CAP_HASHING			(1u << 4)
#define PTM_CAP_CANCEL_TPM_CMD		(1u << 5)
#define PTM_CAP_STORE_VOLATILE		(1u << 6)
#define PTM_CAP_RESET_TPMESTABLISHED	(1u << 7)
#define PTM_CAP_GET_STATEBLOB		(1u << 8)
#define PTM_CAP_SET_STATEBLOB		(1u << 9)
#define PTM_CAP_STOP			(1u << 10)
#define PTM_CAP_GET_CONFIG		(1u << 11)
#define PTM_CAP_SET_DATAFD		(1u << 12)
#define PTM_CAP_SET_BUFFERSIZE		(1u << 13)
#define PTM_CAP_GET_INFO		(1u << 14)
#define PTM_CAP_SEND_COMMAND_HEADER	(1u << 15)
#define PTM_CAP_LOCK_STORAGE		(1u << 16)

#define PTM_INIT_FLAG_DELETE_VOLATILE	1u
#define PTM_STATE_BLOB_SIZE		3072u
#define PTM_GETINFO_SIZE		3072u
#define PTM_HASH_DATA_SIZE		4096u

#define PTM_BLOB_TYPE_PERMANENT		1u
#define PTM_BLOB_TYPE_VOLATILE		2u
#define PTM_BLOB_TYPE_SAVESTATE		3u

#define PTM_STATE_FLAG_DECRYPTED	1u	/* GET request: strip the state-key layer */
#define PTM_STATE_FLAG_ENCRYPTED	2u	/* GET reply, SET request */

#define PTM_CONFIG_FLAG_FILE_KEY	1u
#define PTM_CONFIG_FLAG_MIGRATION_KEY	2u

#define SWTPM_INFO_TPMSPECIFICATION	1u
#define SWTPM_INFO_TPMATTRIBUTES	2u
#define SWTPM_INFO_TPMFEATURES		4u

/* Result codes on the control channel (libtpms TPM 1.2 numbering). */
#define PTM_RES_SUCCESS		0x00u
#define PTM_RES_BAD_PARAMETER	0x03u
#define PTM_RES_FAIL		0x09u
#define PTM_RES_BAD_ORDINAL	0x0au
#define PTM_RES_KEYNOTFOUND	0x0du
#define PTM_RES_SIZE		0x17u
#define PTM_RES_IOERROR		0x1fu
#define PTM_RES_BAD_LOCALITY	0x3du
#define PTM_RES_RETRY		0x800u

/* The CUSE structs: unions whose reply overwrites the request in place. */
typedef uint64_t ptm_cap;
typedef uint32_t ptm_res;

struct ptm_init {
	union {
		struct { uint32_t init_flags; } req;
		struct { ptm_res tpm_result; } resp;
	} u;
};

struct ptm_est {
	union {
		struct {
			ptm_res tpm_result;
			unsigned char bit;
			unsigned char pad[3];
		} resp;
	} u;
};

struct ptm_loc {
	union {
		struct { uint8_t loc; } req;
		struct { ptm_res tpm_result; } resp;
	} u;
};

struct ptm_reset_est {
	union {
		struct { uint8_t loc; } req;
		struct { ptm_res tpm_result; } resp;
	} u;
};

struct ptm_hdata {
	union {
		struct {
			uint32_t length;
			uint8_t data[PTM_HASH_DATA_SIZE];
		} req;
		struct { ptm_res tpm_result; } resp;
	} u;
};

struct ptm_getstate {
	union {
		struct {
			uint32_t state_flags;
			uint32_t type;
			uint32_t offset;
		} req;
		struct {
			ptm_res tpm_result;
			uint32_t state_flags;
			uint32_t totlength;
			uint32_t length;
			uint8_t data[PTM_STATE_BLOB_SIZE];
		} resp;
	} u;
};

struct ptm_setstate {
	union {
		struct {
			uint32_t state_flags;
			uint32_t type;
			uint32_t length;
			uint8_t data[PTM_STATE_BLOB_SIZE];
		} req;
		struct { ptm_res tpm_result; } resp;
	} u;
};

struct ptm_getconfig {
	union {
		struct {
			ptm_res tpm_result;
			uint32_t flags;
		} resp;
	} u;
};

struct ptm_setbuffersize {
	union {
		struct { uint32_t buffersize; } req;
		struct {
			ptm_res tpm_result;
			uint32_t buffersize;
			uint32_t minsize;
			uint32_t maxsize;
		} resp;
	} u;
};

struct ptm_getinfo {
	union {
		struct {
			uint64_t flags;
			uint32_t offset;
			uint32_t pad;
		} req;
		struct {
			ptm_res tpm_result;
			uint32_t totlength;
			uint32_t length;
			char buffer[PTM_GETINFO_SIZE];
		} resp;
	} u;
};

struct ptm_lockstorage {
	union {
		struct { uint32_t retries; } req;
		struct { ptm_res tpm_result; } resp;
	} u;
};

#define PTM_GET_CAPABILITY	_IOR('P', 0, ptm_cap)
#define PTM_INIT		_IOWR('P', 1, struct ptm_init)
#define PTM_SHUTDOWN		_IOR('P', 2, ptm_res)
#define PTM_GET_TPMESTABLISHED	_IOR('P', 3, struct ptm_est)
#define PTM_SET_LOCALITY	_IOWR('P', 4, struct ptm_loc)
#define PTM_HASH_START		_IOR('P', 5, ptm_res)
#define PTM_HASH_DATA		_IOWR('P', 6, struct ptm_hdata)
#define PTM_HASH_END		_IOR('P', 7, ptm_res)
#define PTM_CANCEL_TPM_CMD	_IOR('P', 8, ptm_res)
#define PTM_STORE_VOLATILE	_IOR('P', 9, ptm_res)
#define PTM_RESET_TPMESTABLISHED _IOWR('P', 10, struct ptm_reset_est)
#define PTM_GET_STATEBLOB	_IOWR('P', 11, struct ptm_getstate)
#define PTM_SET_STATEBLOB	_IOWR('P', 12, struct ptm_setstate)
#define PTM_STOP		_IOR('P', 13, ptm_res)
#define PTM_GET_CONFIG		_IOR('P', 14, struct ptm_getconfig)
#define PTM_SET_DATAFD		_IOR('P', 15, ptm_res)
#define PTM_SET_BUFFERSIZE	_IOWR('P', 16, struct ptm_setbuffersize)
#define PTM_GET_INFO		_IOWR('P', 17, struct ptm_getinfo)
#define PTM_LOCK_STORAGE	_IOWR('P', 18, struct ptm_lockstorage)

#if defined(__x86_64__)
/* The numbers of ptm-abi.tsv; a mismatch here is an ABI break. */
_Static_assert(PTM_GET_CAPABILITY == 0x80085000u, "PTM ABI");
_Static_assert(PTM_INIT == 0xc0045001u, "PTM ABI");
_Static_assert(PTM_SHUTDOWN == 0x80045002u, "PTM ABI");
_Static_assert(PTM_GET_TPMESTABLISHED == 0x80085003u, "PTM ABI");
_Static_assert(PTM_SET_LOCALITY == 0xc0045004u, "PTM ABI");
_Static_assert(PTM_HASH_START == 0x80045005u, "PTM ABI");
_Static_assert(PTM_HASH_DATA == 0xd0045006u, "PTM ABI");
_Static_assert(PTM_HASH_END == 0x80045007u, "PTM ABI");
_Static_assert(PTM_CANCEL_TPM_CMD == 0x80045008u, "PTM ABI");
_Static_assert(PTM_STORE_VOLATILE == 0x80045009u, "PTM ABI");
_Static_assert(PTM_RESET_TPMESTABLISHED == 0xc004500au, "PTM ABI");
_Static_assert(PTM_GET_STATEBLOB == 0xcc10500bu, "PTM ABI");
_Static_assert(PTM_SET_STATEBLOB == 0xcc0c500cu, "PTM ABI");
_Static_assert(PTM_STOP == 0x8004500du, "PTM ABI");
_Static_assert(PTM_GET_CONFIG == 0x8008500eu, "PTM ABI");
_Static_assert(PTM_SET_DATAFD == 0x8004500fu, "PTM ABI");
_Static_assert(PTM_SET_BUFFERSIZE == 0xc0105010u, "PTM ABI");
_Static_assert(PTM_GET_INFO == 0xcc105011u, "PTM ABI");
_Static_assert(PTM_LOCK_STORAGE == 0xc0045012u, "PTM ABI");
#endif

#endif
