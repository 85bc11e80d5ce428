/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Tests for emulator/state-crypt.c and the encrypted formats of
 * emulator/state-format.c and state-store.c: the spec's KDF vectors
 * (state-files.md 7.4), swtpm's key file rules (4.7), files and blobs made
 * by Debian's swtpm 0.7.1 (tests/fuzz/seeds/fuzz_crypt/, the first byte
 * being the fuzzer's key selector), round trips, tampering, and the
 * storage layer refusing a wrong key without touching the file.
 * Run from the top of the tree (tests/run-all.sh does).
 */
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <ptm.h>

#include "unit.h"

#define SEEDS "tests/fuzz/seeds/fuzz_crypt/"

static const uint8_t k256_bytes[32] = {
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
	0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
};

static const char passphrase[] = "my secret passphrase\n";

static struct state_key key_of(size_t len)
{
	struct state_key k = { .len = len };

	memcpy(k.bytes, k256_bytes, len);
	return k;
}

static int hex_eq(const struct state_key *k, const char *hex)
{
	char buf[2 * STATE_KEY_MAX + 1];

	for (size_t i = 0; i < k->len; i++)
		snprintf(buf + 2 * i, 3, "%02x", k->bytes[i]);
	buf[2 * k->len] = '\0';
	return strcmp(buf, hex) == 0;
}

/* A seed file without its selector byte; malloc'ed. */
static uint8_t *read_seed(const char *name, size_t *len)
{
	char path[256];
	struct stat st;
	uint8_t *buf;
	int fd;

	snprintf(path, sizeof(path), SEEDS "%s", name);
	fd = open(path, O_RDONLY);
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size < 2) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	buf = malloc((size_t)st.st_size);
	if (buf && pread(fd, buf, (size_t)st.st_size, 0) != st.st_size) {
		free(buf);
		buf = NULL;
	}
	close(fd);
	if (buf) {
		memmove(buf, buf + 1, (size_t)st.st_size - 1);
		*len = (size_t)st.st_size - 1;
	}
	return buf;
}

/* A libtpms 0.9 TPM 2 permall: its header at the start, its magic at the end (spec 6.2). */
static int is_permall(const uint8_t *p, size_t n)
{
	static const uint8_t head[] = { 0x00, 0x03, 0xab, 0x36, 0x47, 0x23, 0x00, 0x03 };

	return n > 100 && memcmp(p, head, sizeof(head)) == 0 && memcmp(p + n - 4, head + 2, 4) == 0;
}

TEST(kdf_vectors)
{
	struct state_key k;

	CHECK_EQ(state_key_derive((const uint8_t *)passphrase, strlen(passphrase), STATE_KDF_PBKDF2, 16, &k), 0);
	CHECK(hex_eq(&k, "3d150557d6777a5f8c0f2c2e9a4f3712"));
	CHECK_EQ(state_key_derive((const uint8_t *)passphrase, strlen(passphrase), STATE_KDF_PBKDF2, 32, &k), 0);
	CHECK(hex_eq(&k, "3d150557d6777a5f8c0f2c2e9a4f37125300e5a5309f12819adf90e7acb022bf"));
	CHECK_EQ(state_key_derive((const uint8_t *)passphrase, strlen(passphrase), STATE_KDF_SHA512, 16, &k), 0);
	CHECK(hex_eq(&k, "78e82170960531c33e8fe00622c490bd"));
	CHECK_EQ(state_key_derive((const uint8_t *)passphrase, strlen(passphrase), STATE_KDF_SHA512, 32, &k), 0);
	CHECK(hex_eq(&k, "78e82170960531c33e8fe00622c490bd92290be2ec03635fa756cff09b333f3a"));
	/* an empty passphrase still makes a key */
	CHECK_EQ(state_key_derive(NULL, 0, STATE_KDF_PBKDF2, 16, &k), 0);
	CHECK_EQ(k.len, 16);
	state_key_wipe(&k);
	CHECK_EQ(k.len, 0);
}

static int parse(const char *s, size_t n, enum state_key_format f, size_t key_len, struct state_key *k)
{
	const char *why;

	return state_key_parse((const uint8_t *)s, n, f, key_len, k, &why);
}

TEST(hex_key_rules)
{
	static const char h32[] = "000102030405060708090a0b0c0d0e0f";
	static const char h64[] = "000102030405060708090A0B0C0D0E0F101112131415161718191a1b1c1d1e1f";
	struct state_key k;
	char buf[128];

	CHECK_EQ(parse(h32, 32, STATE_KEY_HEX, 16, &k), 0);
	CHECK(hex_eq(&k, h32));
	snprintf(buf, sizeof(buf), "0x%s\n", h64);
	CHECK_EQ(parse(buf, strlen(buf), STATE_KEY_HEX, 32, &k), 0);
	CHECK(hex_eq(&k, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"));
	/* what follows whitespace is ignored; a NUL ends it too */
	snprintf(buf, sizeof(buf), "%s trailing words", h32);
	CHECK_EQ(parse(buf, strlen(buf), STATE_KEY_HEX, 16, &k), 0);
	CHECK_EQ(parse(h32, sizeof(h32), STATE_KEY_HEX, 16, &k), 0);
	/* the digit count must match the mode, both ways */
	CHECK_EQ(parse(h64, 64, STATE_KEY_HEX, 16, &k), -EINVAL);
	CHECK_EQ(parse(h32, 32, STATE_KEY_HEX, 32, &k), -EINVAL);
	CHECK_EQ(k.len, 0);
	CHECK_EQ(parse(h32, 31, STATE_KEY_HEX, 16, &k), -EINVAL);
	snprintf(buf, sizeof(buf), "0X%s", h32);
	CHECK_EQ(parse(buf, strlen(buf), STATE_KEY_HEX, 16, &k), -EINVAL);
	snprintf(buf, sizeof(buf), "%s", h32);
	buf[7] = 'g';
	CHECK_EQ(parse(buf, 32, STATE_KEY_HEX, 16, &k), -EINVAL);
	CHECK_EQ(parse("", 0, STATE_KEY_HEX, 16, &k), -EINVAL);
}

TEST(binary_key_rules)
{
	struct state_key k;

	CHECK_EQ(parse((const char *)k256_bytes, 16, STATE_KEY_BINARY, 16, &k), 0);
	CHECK_EQ(k.len, 16);
	CHECK_EQ(parse((const char *)k256_bytes, 32, STATE_KEY_BINARY, 32, &k), 0);
	CHECK_EQ(k.len, 32);
	CHECK(memcmp(k.bytes, k256_bytes, 32) == 0);
	/* swtpm: 16 bytes under aes-256-cbc make an AES-128 key */
	CHECK_EQ(parse((const char *)k256_bytes, 16, STATE_KEY_BINARY, 32, &k), 0);
	CHECK_EQ(k.len, 16);
	CHECK_EQ(parse((const char *)k256_bytes, 32, STATE_KEY_BINARY, 16, &k), -EINVAL);
	CHECK_EQ(parse((const char *)k256_bytes, 20, STATE_KEY_BINARY, 32, &k), -EINVAL);
}

/* state_key_read: file=, fd=, format, remove. */
TEST(key_read_sources)
{
	char path[] = "/tmp/vtpm-key.XXXXXX";
	struct state_key_source src = { .opt = "--key", .fd = -1, .key_len = 16 };
	struct state_key k;
	int fd = mkstemp(path), p[2];

	CHECK(fd >= 0);
	CHECK_EQ(write(fd, passphrase, strlen(passphrase)), (long long)strlen(passphrase));
	close(fd);
	src.file = path;
	src.format = STATE_KEY_PASSPHRASE;
	CHECK_EQ(state_key_read(&src, &k), 0);
	CHECK(hex_eq(&k, "3d150557d6777a5f8c0f2c2e9a4f3712"));
	CHECK_EQ(access(path, F_OK), 0);
	/* a passphrase file is not a hex key */
	src.format = STATE_KEY_HEX;
	CHECK_EQ(state_key_read(&src, &k), -EINVAL);
	CHECK_EQ(k.len, 0);
	src.format = STATE_KEY_PASSPHRASE;
	src.kdf = STATE_KDF_SHA512;
	src.remove = true;
	CHECK_EQ(state_key_read(&src, &k), 0);
	CHECK(hex_eq(&k, "78e82170960531c33e8fe00622c490bd"));
	CHECK_EQ(access(path, F_OK), -1);
	CHECK_EQ(state_key_read(&src, &k), -ENOENT);
	/* fd=: a pipe, read to the end and closed */
	CHECK_EQ(pipe(p), 0);
	CHECK_EQ(write(p[1], "000102030405060708090a0b0c0d0e0f\n", 33), 33);
	close(p[1]);
	src = (struct state_key_source){ .opt = "--key", .fd = p[0], .key_len = 16 };
	CHECK_EQ(state_key_read(&src, &k), 0);
	CHECK(hex_eq(&k, "000102030405060708090a0b0c0d0e0f"));
	CHECK_EQ(fcntl(p[0], F_GETFD), -1);
	state_key_wipe(&k);
}

static int decrypt_seed(const char *name, const struct state_key *key, uint8_t **out, size_t *out_len)
{
	size_t len = 0;
	uint8_t *file = read_seed(name, &len);
	int ret;

	if (!file)
		return -1000;
	ret = state_file_decrypt(key, file, len, out, out_len);
	free(file);
	return ret;
}

TEST(swtpm_files_decrypt)
{
	struct state_key k128 = key_of(16), k256 = key_of(32), pass, other = key_of(16);
	const uint8_t *p;
	uint8_t *out, *file;
	size_t n, len;

	CHECK_EQ(decrypt_seed("file-aes128-hex", &k128, &out, &n), 0);
	CHECK(is_permall(out, n));
	state_crypt_free(out, n);
	CHECK_EQ(decrypt_seed("file-aes256-hex", &k256, &out, &n), 0);
	CHECK(is_permall(out, n));
	state_crypt_free(out, n);
	CHECK_EQ(state_key_derive((const uint8_t *)passphrase, strlen(passphrase), STATE_KDF_PBKDF2, 16, &pass), 0);
	CHECK_EQ(decrypt_seed("file-aes128-pbkdf2", &pass, &out, &n), 0);
	CHECK(is_permall(out, n));
	state_crypt_free(out, n);
	/* a wrong key, and a key of the other length */
	other.bytes[0] ^= 1;
	CHECK_EQ(decrypt_seed("file-aes128-hex", &other, &out, &n), -EKEYREJECTED);
	CHECK_EQ(decrypt_seed("file-aes128-hex", &k256, &out, &n), -EMEDIUMTYPE);
	CHECK_EQ(decrypt_seed("file-aes256-hex", &k128, &out, &n), -EMEDIUMTYPE);
	/* without a key: refused as encrypted */
	file = read_seed("file-aes256-hex", &len);
	CHECK(file);
	CHECK_EQ(state_file_decode(file, len, &p, &n), -ENOKEY);
	/* any flipped byte of ciphertext, HMAC or IV (all 32 of its bytes count) */
	for (size_t off = 16; off < len; off += 97) {
		file[off] ^= 0x40;
		CHECK_EQ(state_file_decrypt(&k256, file, len, &out, &n), -EKEYREJECTED);
		file[off] ^= 0x40;
	}
	file[len - 1] ^= 1;	/* the IV's last byte: not the CBC IV, but MACed */
	CHECK_EQ(state_file_decrypt(&k256, file, len, &out, &n), -EKEYREJECTED);
	free(file);
	/* a plain file given a key */
	CHECK_EQ(state_file_encode((const uint8_t *)"abc", 3, &file, &len), 0);
	CHECK_EQ(state_file_decrypt(&k128, file, len, &out, &n), -ENOMSG);
	free(file);
}

TEST(file_round_trip)
{
	static const size_t sizes[] = { 0, 1, 8, 15, 16, 17, 31, 32, 33, 40, 48, 1299, 2544 };
	uint8_t payload[2544];

	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 7 + 3);
	for (size_t kl = 16; kl <= 32; kl += 16) {
		struct state_key k = key_of(kl);

		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			size_t c = sizes[i] + kl - sizes[i] % kl, len, n;
			uint8_t *file, *out;

			CHECK_EQ(state_file_encrypt(&k, payload, sizes[i], &file, &len), 0);
			/* spec 3.4: 10 + (6 + C) + (6 + 32) + (6 + K), C padded to the key length; then our tag */
			CHECK_EQ(len, 10 + 6 + c + 38 + 6 + kl + 38);
			CHECK_EQ(file[5], kl == 32 ? 0x09 : 0x01);
			CHECK_EQ(state_file_decrypt(&k, file, len, &out, &n), 0);
			CHECK_EQ(n, sizes[i]);
			CHECK(memcmp(out, payload, n) == 0);
			state_crypt_free(out, n);
			free(file);
		}
	}
}

/*
 * A file whose padding is wrong but whose HMAC is right (the writer's bug,
 * not damage): refused as malformed.  Made with OpenSSL directly.
 */
TEST(bad_padding_refused)
{
	struct state_key k = key_of(16);
	uint8_t plain[32], ct[32], iv[16] = { 1 }, mac[32], file[10 + 38 + 38 + 22];
	unsigned int mac_len = 0;
	int n = 0, m = 0;
	uint8_t *out;
	size_t len;
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();

	memset(plain, 'x', sizeof(plain));
	plain[31] = 0;		/* a pad of 0 */
	CHECK(ctx);
	CHECK_EQ(EVP_EncryptInit_ex(ctx, EVP_aes_128_cbc(), NULL, k.bytes, iv), 1);
	EVP_CIPHER_CTX_set_padding(ctx, 0);
	CHECK_EQ(EVP_EncryptUpdate(ctx, ct, &n, plain, sizeof(plain)), 1);
	CHECK_EQ(EVP_EncryptFinal_ex(ctx, ct + n, &m), 1);
	EVP_CIPHER_CTX_free(ctx);
	{
		uint8_t msg[48];

		memcpy(msg, ct, 32);
		memcpy(msg + 32, iv, 16);
		CHECK(HMAC(EVP_sha256(), k.bytes, 16, msg, sizeof(msg), mac, &mac_len));
	}
	file[0] = 2, file[1] = 1, file[2] = 0, file[3] = 10, file[4] = 0, file[5] = 1;
	len = 10;
	file[len] = 0, file[len + 1] = 2, file[len + 2] = 0, file[len + 3] = 0, file[len + 4] = 0, file[len + 5] = 32;
	memcpy(file + len + 6, ct, 32);
	len += 38;
	file[len] = 0, file[len + 1] = 3, file[len + 2] = 0, file[len + 3] = 0, file[len + 4] = 0, file[len + 5] = 32;
	memcpy(file + len + 6, mac, 32);
	len += 38;
	file[len] = 0, file[len + 1] = 6, file[len + 2] = 0, file[len + 3] = 0, file[len + 4] = 0, file[len + 5] = 16;
	memcpy(file + len + 6, iv, 16);
	len += 22;
	file[6] = 0, file[7] = 0, file[8] = 0, file[9] = (uint8_t)len;
	{
		size_t plain_len = 0;

		CHECK_EQ(state_file_decrypt(&k, file, len, &out, &plain_len), -EBADMSG);
	}
	/* the same with a valid pad of 16 decrypts */
	memset(plain + 16, 16, 16);
	ctx = EVP_CIPHER_CTX_new();
	CHECK_EQ(EVP_EncryptInit_ex(ctx, EVP_aes_128_cbc(), NULL, k.bytes, iv), 1);
	EVP_CIPHER_CTX_set_padding(ctx, 0);
	CHECK_EQ(EVP_EncryptUpdate(ctx, ct, &n, plain, sizeof(plain)), 1);
	EVP_CIPHER_CTX_free(ctx);
	{
		uint8_t msg[48];

		memcpy(msg, ct, 32);
		memcpy(msg + 32, iv, 16);
		CHECK(HMAC(EVP_sha256(), k.bytes, 16, msg, sizeof(msg), mac, &mac_len));
	}
	memcpy(file + 16, ct, 32);
	memcpy(file + 54, mac, 32);
	len = 10 + 38 + 38 + 22;
	{
		size_t plain_len = 0;

		CHECK_EQ(state_file_decrypt(&k, file, len, &out, &plain_len), 0);
		CHECK_EQ(plain_len, 16);
		CHECK(memcmp(out, plain, 16) == 0);
		state_crypt_free(out, plain_len);
	}
}

static int unseal_seed(const char *name, const struct state_key *sk, const struct state_key *mk,
		       uint32_t req_flags, uint8_t **out, size_t *out_len)
{
	size_t len = 0;
	uint8_t *blob = read_seed(name, &len);
	int ret;

	if (!blob)
		return -1000;
	ret = state_blob_unseal(sk, mk, blob, len, req_flags, out, out_len);
	free(blob);
	return ret;
}

TEST(swtpm_blobs_unseal)
{
	struct state_key k128 = key_of(16), k256 = key_of(32), wrong = key_of(32);
	uint8_t *a, *b;
	size_t an, bn;

	/* the blob and the file of one swtpm instance hold the same state */
	CHECK_EQ(decrypt_seed("file-aes256-hex", &k256, &a, &an), 0);
	CHECK_EQ(unseal_seed("blob-aes256-hex", &k256, NULL, 0, &b, &bn), 0);
	CHECK_EQ(an, bn);
	CHECK(memcmp(a, b, an) == 0);
	state_crypt_free(a, an);
	state_crypt_free(b, bn);
	CHECK_EQ(unseal_seed("blob-aes256-hex", NULL, NULL, 0, &b, &bn), -ENOKEY);
	CHECK_EQ(unseal_seed("blob-aes256-hex", &k128, NULL, 0, &b, &bn), -EMEDIUMTYPE);
	CHECK_EQ(unseal_seed("blob-aes128-hex", &k128, NULL, 0, &b, &bn), 0);
	CHECK(is_permall(b, bn));
	state_crypt_free(b, bn);
	/* both layers (flags 0x1f), and the migration layer alone (0x16, 0x06) */
	CHECK_EQ(unseal_seed("blob-state256-mig256", &k256, &k256, 0, &b, &bn), 0);
	CHECK(is_permall(b, bn));
	state_crypt_free(b, bn);
	CHECK_EQ(unseal_seed("blob-state256-mig256", &k256, NULL, 0, &b, &bn), -ENOKEY);
	CHECK_EQ(unseal_seed("blob-state256-mig256", NULL, &k256, 0, &b, &bn), -ENOKEY);
	wrong.bytes[31] ^= 0x80;
	CHECK_EQ(unseal_seed("blob-state256-mig256", &k256, &wrong, 0, &b, &bn), -EKEYREJECTED);
	CHECK_EQ(unseal_seed("blob-state256-mig256", &wrong, &k256, 0, &b, &bn), -EKEYREJECTED);
	CHECK_EQ(unseal_seed("blob-mig256-decrypted", NULL, &k256, 0, &b, &bn), 0);
	CHECK(is_permall(b, bn));
	state_crypt_free(b, bn);
	CHECK_EQ(unseal_seed("blob-mig256-decrypted", NULL, &k128, 0, &b, &bn), -EMEDIUMTYPE);
	CHECK_EQ(unseal_seed("blob-mig128", NULL, &k128, 0, &b, &bn), 0);
	CHECK(is_permall(b, bn));
	state_crypt_free(b, bn);
	/* the request's ENCRYPTED flag asks for the state layer too (spec 5.2 step 4) */
	CHECK_EQ(unseal_seed("blob-mig128", &k128, &k128, PTM_STATE_FLAG_ENCRYPTED, &b, &bn), -EBADMSG);
}

TEST(blob_round_trip)
{
	struct state_key k128 = key_of(16), k256 = key_of(32);
	const struct state_key *keys[] = { NULL, &k128, &k256 };
	static const uint16_t flags[3][3] = {	/* [state][migration] */
		{ 0x04, 0x06, 0x16 }, { 0x05, 0x07, 0x17 }, { 0x0d, 0x0f, 0x1f },
	};
	static const uint8_t payload[] = "a libtpms blob of some length, 48 bytes long!!";
	const uint8_t *p;
	uint8_t *blob, *out, *plain;
	size_t len, n, plain_len;

	for (size_t s = 0; s < 3; s++) {
		for (size_t m = 0; m < 3; m++) {
			CHECK_EQ(state_blob_seal(keys[s], keys[m], payload, sizeof(payload), &blob, &len), 0);
			CHECK_EQ(blob[4] << 8 | blob[5], flags[s][m]);
			CHECK_EQ(state_blob_unseal(keys[s], keys[m], blob, len, 0, &out, &n), 0);
			CHECK_EQ(n, sizeof(payload));
			CHECK(memcmp(out, payload, n) == 0);
			state_crypt_free(out, n);
			free(blob);
		}
	}
	/* no keys: the keyless format exactly */
	CHECK_EQ(state_blob_seal(NULL, NULL, payload, sizeof(payload), &blob, &len), 0);
	CHECK_EQ(state_blob_encode(payload, sizeof(payload), &plain, &plain_len), 0);
	CHECK_EQ(len, plain_len);
	CHECK(memcmp(blob, plain, len) == 0);
	CHECK_EQ(state_blob_decode(blob, len, 0, &p, &n), 0);
	/* a plain blob goes into an instance with a migration key (spec 5.2: an upgrade) */
	CHECK_EQ(state_blob_unseal(NULL, &k256, blob, len, 0, &out, &n), 0);
	state_crypt_free(out, n);
	free(blob);
	free(plain);
	/* an empty body clears, whatever the flags */
	{
		const uint8_t empty[10] = { 2, 1, 0, 10, 0, 0x1f, 0, 0, 0, 10 };

		out = (uint8_t *)1;
		CHECK_EQ(state_blob_unseal(NULL, NULL, empty, sizeof(empty), 0, &out, &n), 0);
		CHECK(out == NULL);
		CHECK_EQ(n, 0);
	}
}

static int rm_dir(const char *dir)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

static int file_bytes(const char *path, uint8_t *buf, size_t cap, size_t *len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, cap);
	close(fd);
	if (n < 0)
		return -EIO;
	*len = (size_t)n;
	return 0;
}

/* Both backends: stored encrypted, read back; a wrong key refused and nothing written. */
TEST(store_with_key)
{
	static const uint8_t payload[] = "permanent state, encrypted on disk";
	struct state_key key = key_of(32), wrong = key_of(32);
	char dir[] = "/tmp/vtpm-crypt.XXXXXX", path[300], data[300];
	static uint8_t before[8192], after[8192];

	CHECK(mkdtemp(dir));
	for (int b = 0; b < 2; b++) {
		struct state_config cfg = { .backend = b ? STATE_BACKEND_FILE : STATE_BACKEND_DIR, .mode = 0600,
					    .tpm2 = true, .key = &key };
		struct state_store *st;
		uint8_t *out;
		size_t n, blen = 0, alen = 0;

		snprintf(path, sizeof(path), "%s%s", dir, b ? "/tpm.img" : "");
		snprintf(data, sizeof(data), "%s/%s", dir, b ? "tpm.img" : "tpm2-00.permall");
		cfg.path = path;
		CHECK_EQ(state_store_open(&st, &cfg), 0);
		CHECK_EQ(state_lock(st), 0);
		CHECK_EQ(state_save(st, STATE_PERMANENT, payload, sizeof(payload)), 0);
		CHECK_EQ(state_load(st, STATE_PERMANENT, &out, &n), 0);
		CHECK_EQ(n, sizeof(payload));
		CHECK(memcmp(out, payload, n) == 0);
		free(out);
		state_store_close(st);
		CHECK_EQ(file_bytes(data, before, sizeof(before), &blen), 0);
		CHECK(memmem(before, blen, payload, sizeof(payload) - 1) == NULL);
		/* a wrong key: refused, the file byte for byte the same */
		wrong.bytes[3] ^= 8;
		cfg.key = &wrong;
		CHECK_EQ(state_store_open(&st, &cfg), 0);
		CHECK_EQ(state_lock(st), 0);
		CHECK_EQ(state_load(st, STATE_PERMANENT, &out, &n), -EKEYREJECTED);
		state_store_close(st);
		wrong.bytes[3] ^= 8;
		CHECK_EQ(file_bytes(data, after, sizeof(after), &alen), 0);
		CHECK_EQ(alen, blen);
		CHECK(memcmp(before, after, blen) == 0);
		/* no key at all: refused as encrypted */
		cfg.key = NULL;
		CHECK_EQ(state_store_open(&st, &cfg), 0);
		CHECK_EQ(state_lock(st), 0);
		CHECK_EQ(state_load(st, STATE_PERMANENT, &out, &n), -ENOKEY);
		state_store_close(st);
	}
	rm_dir(dir);
}

UNIT_MAIN("crypt",
	  UNIT(kdf_vectors),
	  UNIT(hex_key_rules),
	  UNIT(binary_key_rules),
	  UNIT(key_read_sources),
	  UNIT(swtpm_files_decrypt),
	  UNIT(file_round_trip),
	  UNIT(bad_padding_refused),
	  UNIT(swtpm_blobs_unseal),
	  UNIT(blob_round_trip),
	  UNIT(store_with_key))
