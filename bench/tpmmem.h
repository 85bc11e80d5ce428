/*
 * tpmmem.h - libtpms (TPM 2.0) in this process, NVRAM in memory; used by
 * the floor tools.  libtpms keeps its TPM in process globals, so there is
 * one per process.
 */
#ifndef BENCH_TPMMEM_H
#define BENCH_TPMMEM_H

#include <stddef.h>
#include <stdint.h>

#define TPMMEM_CMD_MAX 4096

/* Before tpmmem_init(): start from this permanent state (a swtpm
 * tpm2-00.permall file or a raw libtpms blob) instead of a new TPM.
 * Exits on error. */
void tpmmem_preload(const char *path);
/* TPMLIB_ChooseTPMVersion, RegisterCallbacks, MainInit; 0 or -1. */
int tpmmem_init(void);
/* TPMLIB_Process; the response stays valid until the next call.  NULL on a
 * library error (a TPM error is a response). */
const uint8_t *tpmmem_process(const uint8_t *cmd, size_t n, size_t *rsp_len);
void tpmmem_terminate(void);

#endif
