/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * SHA-256 (FIPS 180-4) for the state files' integrity tag.  Our own,
 * because the tag is checked at start-up, before libtpms and libcrypto
 * are loaded (they are dlopen()ed when the TPM is first used).
 */
#ifndef VTPM_SHA256_H
#define VTPM_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32

void sha256(const uint8_t *data, size_t len, uint8_t out[SHA256_LEN]);

#endif
