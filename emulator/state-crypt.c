/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * State encryption (state-crypt.h): swtpm's AES-CBC + HMAC-SHA256 and its
 * key sources, on OpenSSL 3 EVP.  Bounded and allocation-checked: the
 * decrypt side takes files and control-channel blobs from outside.
 */
#include "state-crypt.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "dlib.h"
#include "log.h"

#define CRYPT_STR2(x)	#x
#define CRYPT_STR(x)	CRYPT_STR2(x)
/* The libcrypto the headers are for, which is the one libtpms loads too. */
#define CRYPT_LIBNAME	"libcrypto.so." CRYPT_STR(OPENSSL_VERSION_MAJOR)

#define AES_BLOCK	16u
#define KEY_FILE_MAX	67u		/* swtpm reads at most this much of a key file */
#define PASSPHRASE_MAX	(64u * 1024)	/* swtpm has no limit; a longer one is a mistake */
#define PBKDF2_SALT	"swtpm"
#define PBKDF2_ITER	1000

#define CRYPT_SYMBOLS(X)						\
	X(EVP_CIPHER_fetch) X(EVP_CIPHER_free) X(EVP_CIPHER_CTX_new)	\
	X(EVP_CIPHER_CTX_free) X(EVP_CIPHER_CTX_set_padding)		\
	X(EVP_CipherInit_ex2) X(EVP_CipherUpdate) X(EVP_CipherFinal_ex)	\
	X(EVP_MAC_fetch) X(EVP_MAC_free) X(EVP_MAC_CTX_new)		\
	X(EVP_MAC_CTX_free) X(EVP_MAC_init) X(EVP_MAC_update)		\
	X(EVP_MAC_final) X(OSSL_PARAM_construct_utf8_string)		\
	X(OSSL_PARAM_construct_end) X(CRYPTO_memcmp) X(OPENSSL_cleanse)	\
	X(RAND_bytes) X(PKCS5_PBKDF2_HMAC) X(EVP_sha512) X(EVP_Digest)

static struct {
#define CRYPT_POINTER(name) __typeof__(name) *name;
	CRYPT_SYMBOLS(CRYPT_POINTER)
#undef CRYPT_POINTER
	bool loaded;
} ossl;

static pthread_once_t crypt_once = PTHREAD_ONCE_INIT;

static void crypt_load_once(void)
{
#define CRYPT_SYM(name) { #name, (void **)&ossl.name },
	static const struct dlib_sym syms[] = { CRYPT_SYMBOLS(CRYPT_SYM) };
#undef CRYPT_SYM

	ossl.loaded = dlib_load(CRYPT_LIBNAME, syms, sizeof(syms) / sizeof(syms[0])) != NULL;
}

/* Once per process, from whichever thread comes first. */
static int crypt_load(void)
{
	pthread_once(&crypt_once, crypt_load_once);
	return ossl.loaded ? 0 : -ENOTSUP;
}

/* libcrypto's cleanse when it is there; explicit_bzero (also never optimized away) before. */
static void crypt_wipe(void *buf, size_t len)
{
	if (!buf || !len)
		return;
	if (ossl.loaded)
		ossl.OPENSSL_cleanse(buf, len);
	else
		explicit_bzero(buf, len);
}

void state_crypt_free(void *buf, size_t len)
{
	crypt_wipe(buf, len);
	free(buf);
}

void state_key_wipe(struct state_key *key)
{
	if (key)
		crypt_wipe(key, sizeof(*key));
}

/* ---- keys ---- */

static int hex_digit(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool hex_end(uint8_t c)
{
	return c == '\0' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int key_parse_hex(const uint8_t *buf, size_t len, size_t key_len, struct state_key *key, const char **why)
{
	size_t i = 0, digits;

	if (len >= 2 && buf[0] == '0' && buf[1] == 'x')
		i = 2;
	for (digits = 0; i + digits < len && !hex_end(buf[i + digits]); digits++) {
		if (hex_digit(buf[i + digits]) < 0) {
			*why = "is not a hex key (0-9, a-f)";
			return -EINVAL;
		}
	}
	if (digits != 2 * key_len) {
		*why = key_len == 32 ? "needs 64 hex digits for aes-256-cbc" :
				       "needs 32 hex digits for aes-128-cbc (mode=aes-256-cbc for 64)";
		return -EINVAL;
	}
	for (size_t k = 0; k < key_len; k++)
		key->bytes[k] = (uint8_t)(hex_digit(buf[i + 2 * k]) << 4 | hex_digit(buf[i + 2 * k + 1]));
	key->len = key_len;
	return 0;
}

int state_key_parse(const uint8_t *buf, size_t len, enum state_key_format format, size_t key_len,
		    struct state_key *key, const char **why)
{
	*why = "";
	memset(key, 0, sizeof(*key));
	if (key_len != 16 && key_len != 32)
		return -EINVAL;
	if (crypt_load() < 0) {
		*why = "needs " CRYPT_LIBNAME;
		return -ENOTSUP;
	}
	switch (format) {
	case STATE_KEY_HEX:
		return key_parse_hex(buf, len, key_len, key, why);
	case STATE_KEY_BINARY:
		/* swtpm's rule: 16 or 32 bytes, not more than the mode's key. */
		if ((len != 16 && len != 32) || len > key_len) {
			*why = key_len == 32 ? "must hold 16 or 32 bytes" : "must hold 16 bytes for aes-128-cbc";
			return -EINVAL;
		}
		memcpy(key->bytes, buf, len);
		key->len = len;
		return 0;
	default:
		return -EINVAL;
	}
}

int state_key_derive(const uint8_t *pass, size_t len, enum state_kdf kdf, size_t key_len,
		     struct state_key *key)
{
	uint8_t md[64];
	unsigned int md_len = 0;
	int ret = -EIO;

	memset(key, 0, sizeof(*key));
	if ((key_len != 16 && key_len != 32) || len > PASSPHRASE_MAX)
		return -EINVAL;
	if (crypt_load() < 0)
		return -ENOTSUP;
	if (kdf == STATE_KDF_PBKDF2) {
		/* "" for an empty passphrase: PKCS5_PBKDF2_HMAC wants a pointer. */
		if (ossl.PKCS5_PBKDF2_HMAC(len ? (const char *)pass : "", (int)len,
					    (const unsigned char *)PBKDF2_SALT, sizeof(PBKDF2_SALT) - 1,
					    PBKDF2_ITER, ossl.EVP_sha512(), (int)key_len, key->bytes) == 1)
			ret = 0;
	} else if (ossl.EVP_Digest(len ? pass : (const uint8_t *)"", len, md, &md_len, ossl.EVP_sha512(),
				    NULL) == 1 && md_len >= key_len) {
		memcpy(key->bytes, md, key_len);
		ret = 0;
	}
	crypt_wipe(md, sizeof(md));
	if (ret == 0)
		key->len = key_len;
	else
		state_key_wipe(key);
	return ret;
}

/*
 * A key file: at most max bytes, as swtpm.  A passphrase: to EOF, and more
 * than max is refused.  The malloc'ed buffer is wiped on every path that
 * drops it (grown by hand: realloc would leave the old copy unwiped).
 */
static int key_read_fd(int fd, size_t max, bool to_eof, uint8_t **out, size_t *out_len)
{
	size_t cap = to_eof ? 256 : max, len = 0;
	uint8_t *buf = malloc(cap), *grown;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n;

		if (len == cap) {
			if (!to_eof)
				break;
			if (cap > max) {
				state_crypt_free(buf, len);
				return -EFBIG;
			}
			grown = malloc(2 * cap);
			if (!grown) {
				state_crypt_free(buf, len);
				return -ENOMEM;
			}
			memcpy(grown, buf, len);
			state_crypt_free(buf, len);
			buf = grown;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = errno;

			state_crypt_free(buf, len);
			return -err;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > max) {
		state_crypt_free(buf, len);
		return -EFBIG;
	}
	*out = buf;
	*out_len = len;
	return 0;
}

int state_key_read(const struct state_key_source *src, struct state_key *key)
{
	bool pass = src->format == STATE_KEY_PASSPHRASE;
	const char *why = "";
	char where[64];		/* "pwdfd=N"; a file is named by its path */
	uint8_t *buf = NULL;
	size_t len = 0;
	int fd = src->fd, ret;

	memset(key, 0, sizeof(*key));
	snprintf(where, sizeof(where), "%s%d", pass ? "pwdfd=" : "fd=", src->fd);
	if (crypt_load() < 0) {
		log_err("%s: cannot use a key without %s", src->opt, CRYPT_LIBNAME);
		return -ENOTSUP;
	}
	if (src->file) {
		fd = open(src->file, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			ret = -errno;
			log_errno(LOG_ERR, -ret, "%s: %s%s", src->opt, pass ? "pwdfile=" : "file=", src->file);
			return ret;
		}
	}
	ret = key_read_fd(fd, pass ? PASSPHRASE_MAX : KEY_FILE_MAX, pass, &buf, &len);
	/* The descriptor is consumed either way (a pipe from the manager, as libvirt passes). */
	close(fd);
	if (ret == 0 && pass)
		ret = state_key_derive(buf, len, src->kdf, src->key_len, key);
	else if (ret == 0)
		ret = state_key_parse(buf, len, src->format, src->key_len, key, &why);
	else if (ret == -EFBIG)
		why = "holds a passphrase longer than 64 KiB";
	else
		why = strerror(-ret);
	state_crypt_free(buf, len);
	if (ret < 0) {
		log_err("%s: %s%s: %s", src->opt, src->file ? (pass ? "pwdfile=" : "file=") : where,
			src->file ? src->file : "", *why ? why : "no key could be made from it");
		return ret;
	}
	if (src->format == STATE_KEY_BINARY && key->len < src->key_len)
		log_info("%s: a 16-byte binary key: AES-128, as swtpm makes of it", src->opt);
	if (src->remove && src->file && unlink(src->file) < 0)
		log_errno(LOG_WARNING, errno, "%s: remove: cannot remove %s", src->opt, src->file);
	return 0;
}

/* ---- encrypt-then-MAC ---- */

size_t state_crypt_len(const struct state_key *key, size_t len)
{
	return len + key->len - len % key->len;
}

/* HMAC-SHA256(key, a || b) into mac. */
static int crypt_mac(const struct state_key *key, const uint8_t *a, size_t a_len,
		     const uint8_t *b, size_t b_len, uint8_t mac[STATE_MAC_LEN])
{
	EVP_MAC *hmac = ossl.EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = hmac ? ossl.EVP_MAC_CTX_new(hmac) : NULL;
	char digest[] = "SHA256";
	OSSL_PARAM params[2];
	size_t out = 0;
	int ret = -EIO;

	params[0] = ossl.OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
	params[1] = ossl.OSSL_PARAM_construct_end();
	if (ctx && ossl.EVP_MAC_init(ctx, key->bytes, key->len, params) == 1 &&
	    ossl.EVP_MAC_update(ctx, a, a_len) == 1 && (!b_len || ossl.EVP_MAC_update(ctx, b, b_len) == 1) &&
	    ossl.EVP_MAC_final(ctx, mac, &out, STATE_MAC_LEN) == 1 && out == STATE_MAC_LEN)
		ret = 0;
	ossl.EVP_MAC_CTX_free(ctx);
	ossl.EVP_MAC_free(hmac);
	return ret;
}

/* AES-CBC over whole blocks, no padding of OpenSSL's (swtpm pads to the key length itself). */
static int crypt_cbc(const struct state_key *key, const uint8_t iv[AES_BLOCK], int enc,
		     const uint8_t *in, size_t len, uint8_t *out)
{
	EVP_CIPHER *cipher = ossl.EVP_CIPHER_fetch(NULL, key->len == 32 ? "AES-256-CBC" : "AES-128-CBC", NULL);
	EVP_CIPHER_CTX *ctx = cipher ? ossl.EVP_CIPHER_CTX_new() : NULL;
	size_t done = 0;
	int n = 0, ret = -EIO;

	if (!ctx || ossl.EVP_CipherInit_ex2(ctx, cipher, key->bytes, iv, enc, NULL) != 1 ||
	    ossl.EVP_CIPHER_CTX_set_padding(ctx, 0) != 1)
		goto out;
	/* EVP takes int lengths: whole blocks at a time. */
	while (done < len) {
		size_t chunk = len - done > (1u << 30) ? (1u << 30) : len - done;

		if (ossl.EVP_CipherUpdate(ctx, out + done, &n, in + done, (int)chunk) != 1 || (size_t)n != chunk)
			goto out;
		done += chunk;
	}
	if (ossl.EVP_CipherFinal_ex(ctx, out + done, &n) == 1 && n == 0)
		ret = 0;
out:
	ossl.EVP_CIPHER_CTX_free(ctx);
	ossl.EVP_CIPHER_free(cipher);
	return ret;
}

int state_encrypt(const struct state_key *key, const uint8_t *plain, size_t len,
		  uint8_t *ct, uint8_t iv[STATE_KEY_MAX], uint8_t mac[STATE_MAC_LEN])
{
	size_t ct_len = state_crypt_len(key, len), pad = ct_len - len;
	int ret;

	if (!state_key_set(key) || crypt_load() < 0)
		return -EINVAL;
	if (ossl.RAND_bytes(iv, (int)key->len) != 1)
		return -EIO;
	/* In place: the padded plaintext is built in ct, which CBC may overwrite as it goes. */
	if (len)
		memmove(ct, plain, len);
	memset(ct + len, (int)pad, pad);
	ret = crypt_cbc(key, iv, 1, ct, ct_len, ct);
	if (ret == 0)
		ret = crypt_mac(key, ct, ct_len, iv, key->len, mac);
	if (ret)
		crypt_wipe(ct, ct_len);
	return ret;
}

int state_decrypt(const struct state_key *key, const uint8_t *ct, size_t ct_len,
		  const uint8_t *iv, size_t iv_len, const uint8_t *mac, size_t mac_len,
		  uint8_t **plain, size_t *plain_len)
{
	static const uint8_t zero_iv[AES_BLOCK];
	uint8_t want[STATE_MAC_LEN];
	uint8_t *out;
	size_t pad;
	int ret;

	if (!state_key_set(key) || crypt_load() < 0)
		return -EINVAL;
	if (ct_len == 0 || ct_len % AES_BLOCK || mac_len < STATE_MAC_LEN || (iv && iv_len < AES_BLOCK))
		return -EBADMSG;
	ret = crypt_mac(key, ct, ct_len, iv, iv ? iv_len : 0, want);
	if (ret)
		return ret;
	/* swtpm compares the first 32 bytes of a longer tag */
	if (ossl.CRYPTO_memcmp(want, mac, STATE_MAC_LEN) != 0)
		return -EKEYREJECTED;
	out = malloc(ct_len);
	if (!out)
		return -ENOMEM;
	ret = crypt_cbc(key, iv ? iv : zero_iv, 0, ct, ct_len, out);
	if (ret) {
		state_crypt_free(out, ct_len);
		return ret;
	}
	/* Any pad value 1..key length, every pad byte equal to it (spec 4.2). */
	pad = out[ct_len - 1];
	ret = pad == 0 || pad > key->len || pad > ct_len ? -EBADMSG : 0;
	for (size_t i = 0; ret == 0 && i < pad; i++)
		if (out[ct_len - 1 - i] != pad)
			ret = -EBADMSG;
	if (ret) {
		state_crypt_free(out, ct_len);
		return ret;
	}
	*plain = out;
	*plain_len = ct_len - pad;
	return 0;
}
