/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * State encryption as swtpm does it (../shared/spec/state-files.md
 * section 4): AES-128/256-CBC, padded to the key's length, an IV of the
 * key's length of which the first 16 bytes are the CBC IV, then
 * HMAC-SHA256 with the same key over ciphertext || IV; keys from a hex or
 * binary file or a passphrase (PBKDF2-SHA512 or SHA-512).
 *
 * On OpenSSL 3's EVP, loaded with dlopen() the first time a key is made:
 * an instance without a key never maps libcrypto before libtpms does
 * (docs/architecture.md, "Start-up and idle cost").
 *
 * Key material lives only in struct state_key and in local buffers that
 * are wiped (OPENSSL_cleanse) before they are freed or go out of scope;
 * nothing here logs it.  Only emulator/ includes this.
 */
#ifndef VTPM_STATE_CRYPT_H
#define VTPM_STATE_CRYPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STATE_KEY_MAX	32	/* AES-256 */
#define STATE_MAC_LEN	32	/* HMAC-SHA256 */

struct state_key {
	uint8_t bytes[STATE_KEY_MAX];
	size_t len;		/* 16 or 32; 0: no key */
};

/* A key given or not (NULL and len 0 both mean none). */
static inline bool state_key_set(const struct state_key *key)
{
	return key && key->len;
}

enum state_key_format {
	STATE_KEY_HEX,		/* file=/fd=, format=hex (the default) */
	STATE_KEY_BINARY,	/* file=/fd=, format=binary */
	STATE_KEY_PASSPHRASE,	/* pwdfile=/pwdfd= */
};

enum state_kdf {
	STATE_KDF_PBKDF2,	/* the default */
	STATE_KDF_SHA512,
};

/* --key or --migration-key as the command line gives it (spec 4.7). */
struct state_key_source {
	const char *opt;	/* "--key", "--migration-key": for messages */
	const char *file;	/* file= or pwdfile=; NULL: fd */
	int fd;			/* fd= or pwdfd= (read to EOF, then closed) */
	enum state_key_format format;
	enum state_kdf kdf;
	size_t key_len;		/* mode=: 16 (aes-cbc, aes-128-cbc) or 32 (aes-256-cbc) */
	bool remove;		/* remove=: unlink the file once read, as swtpm */
};

/*
 * Reads and makes the key (the only I/O here).  Logs what went wrong,
 * naming the option and the file, never the key.  0 or -errno.
 */
int state_key_read(const struct state_key_source *src, struct state_key *key);
/*
 * The key from a key file's bytes (hex or binary, swtpm's rules: hex is
 * an optional "0x" then exactly 2 * key_len digits up to the first
 * whitespace or NUL; binary is 16 or 32 bytes, at most key_len, so 16
 * bytes under aes-256-cbc make an AES-128 key as in swtpm).  -EINVAL with
 * *why set on a malformed key.
 */
int state_key_parse(const uint8_t *buf, size_t len, enum state_key_format format, size_t key_len,
		    struct state_key *key, const char **why);
int state_key_derive(const uint8_t *pass, size_t len, enum state_kdf kdf, size_t key_len,
		     struct state_key *key);
void state_key_wipe(struct state_key *key);

/* The ciphertext length for len bytes: padded to a multiple of the key length, at least 1 byte of pad. */
size_t state_crypt_len(const struct state_key *key, size_t len);
/*
 * Encrypts plain into ct (state_crypt_len() bytes) with a fresh random IV
 * (key->len bytes into iv) and MACs ct || iv into mac.
 */
int state_encrypt(const struct state_key *key, const uint8_t *plain, size_t len,
		  uint8_t *ct, uint8_t iv[STATE_KEY_MAX], uint8_t mac[STATE_MAC_LEN]);
/*
 * Checks the MAC (constant time) over ct || iv, then decrypts into a
 * malloc'ed *plain.  iv may be NULL (iv_len 0): a zero IV and a MAC over
 * the ciphertext alone, which swtpm 0.7.1 accepts.  -EKEYREJECTED: the
 * MAC does not match (wrong key or damaged); -EBADMSG: lengths or padding
 * wrong; -ENOMEM.
 */
int state_decrypt(const struct state_key *key, const uint8_t *ct, size_t ct_len,
		  const uint8_t *iv, size_t iv_len, const uint8_t *mac, size_t mac_len,
		  uint8_t **plain, size_t *plain_len);
/* OPENSSL_cleanse, then free; NULL is fine.  For buffers that held key material or plaintext state. */
void state_crypt_free(void *buf, size_t len);

#endif
