/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The storage interface: one set of calls for the state directory and the
 * linear file.  The swtpm blob codec and the size limit live here, so a
 * backend only moves bytes and every state is checked the same way.
 */
#include "state-store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

int state_store_open(struct state_store **out, const struct state_config *cfg)
{
	struct state_store *st;
	int ret = -ENOMEM;

	if (!cfg->path || cfg->path[0] != '/' || (cfg->mode & ~(mode_t)07777))
		return -EINVAL;
	if (cfg->durability == STATE_DURABILITY_BOUNDED &&
	    (cfg->durability_ms < 1 || cfg->durability_ms > STATE_DURABILITY_MS_MAX))
		return -EINVAL;
	switch (cfg->backend) {
	case STATE_BACKEND_DIR:
		st = state_dir_new();
		break;
	case STATE_BACKEND_FILE:
		st = state_linear_new();
		break;
	default:
		return -EINVAL;
	}
	if (!st)
		return -ENOMEM;
	st->path = strdup(cfg->path);
	if (!st->path)
		goto fail;
	if (asprintf(&st->name, "state %s %s", cfg->backend == STATE_BACKEND_DIR ? "directory" : "file",
		     st->path) < 0) {
		st->name = NULL;
		goto fail;
	}
	st->mode = cfg->mode;
	st->mode_set = cfg->mode_set;
	st->tpm2 = cfg->tpm2;
	/* A linear file syncs every store: its commit is a header write that must follow a sync. */
	st->durability = cfg->backend == STATE_BACKEND_DIR ? cfg->durability : STATE_DURABILITY_SYNC;
	st->durability_ms = cfg->durability_ms;
	st->dir = cfg->backend == STATE_BACKEND_DIR;
	st->key = cfg->key;
	*out = st;
	return 0;
fail:
	free(st->path);
	st->ops->destroy(st);
	return ret;
}

void state_store_close(struct state_store *st)
{
	if (!st)
		return;
	state_unlock(st);
	free(st->path);
	free(st->name);
	st->ops->destroy(st);
}

const char *state_store_name(const struct state_store *st)
{
	return st->name;
}

int state_store_check(struct state_store *st)
{
	return st->ops->check(st);
}

int state_lock(struct state_store *st)
{
	int ret;

	if (st->locked)
		return 0;
	ret = st->ops->lock(st);
	if (ret == 0)
		st->locked = true;
	return ret;
}

void state_unlock(struct state_store *st)
{
	if (!st->locked)
		return;
	st->ops->unlock(st);
	st->locked = false;
}

bool state_locked(const struct state_store *st)
{
	return st->locked;
}

/* Why a state cannot be used, naming the file (or the file's section) and never the key. */
static void state_load_error(const struct state_store *st, const char *kname, int err)
{
	const char *file = st->dir ? (st->tpm2 ? "tpm2-00." : "tpm-00.") : "";
	const char *section = st->dir ? "" : " section";

	switch (err) {
	case -ENOKEY:
		log_err("%s: %s%s%s is encrypted; no state key is configured (--key)", st->name, file, kname, section);
		break;
	case -ENOMSG:
		log_err("%s: %s%s%s is not encrypted, but --key is given (swtpm 0.7.1 refuses it too; "
			"move the state with --save/--load to convert it)", st->name, file, kname, section);
		break;
	case -EMEDIUMTYPE:
		log_err("%s: %s%s%s was encrypted with a %u-bit key; --key gives a %u-bit key", st->name, file,
			kname, section, st->key->len == 32 ? 128u : 256u, (unsigned int)st->key->len * 8);
		break;
	case -EKEYREJECTED:
		log_err("%s: %s%s%s: HMAC mismatch: wrong key or damaged", st->name, file, kname, section);
		break;
	case -EBADMSG:
		log_err("%s: %s%s%s is not a valid swtpm state blob", st->name, file, kname, section);
		break;
	default:
		log_errno(LOG_ERR, -err, "%s: %s%s%s", st->name, file, kname, section);
		break;
	}
}

int state_load(struct state_store *st, enum state_kind kind, uint8_t **payload, size_t *len)
{
	const char *kname = state_kind_name(kind);
	const uint8_t *plain;
	uint8_t *file = NULL, *copy;
	size_t file_len = 0, plain_len;
	int ret;

	if (!kname)
		return -EINVAL;
	ret = st->ops->read(st, kind, &file, &file_len);
	if (ret)
		return ret;
	/* As 0.7.1: the configured key decides how a file is read, not its flags (spec 4.5). */
	if (state_key_set(st->key)) {
		ret = state_file_decrypt(st->key, file, file_len, payload, len);
		if (ret)
			state_load_error(st, kname, ret);
		goto free_file;
	}
	ret = state_file_decode(file, file_len, &plain, &plain_len);
	if (ret) {
		state_load_error(st, kname, ret);
		goto free_file;
	}
	copy = malloc(plain_len ? plain_len : 1);
	if (!copy) {
		ret = -ENOMEM;
		goto free_file;
	}
	if (plain_len)
		memcpy(copy, plain, plain_len);
	*payload = copy;
	*len = plain_len;
free_file:
	free(file);
	return ret;
}

int state_save(struct state_store *st, enum state_kind kind, const uint8_t *payload, size_t len)
{
	uint8_t *file;
	size_t file_len;
	int ret;

	if (!state_kind_name(kind))
		return -EINVAL;
	if (state_key_set(st->key))
		ret = state_file_encrypt(st->key, payload, len, &file, &file_len);
	else
		ret = state_file_encode(payload, len, &file, &file_len);
	if (ret)
		return ret;
	/* Never write what state_load would refuse. */
	if (file_len > STATE_FILE_MAX) {
		log_err("%s state of %zu bytes is too big for %s (at most %u)",
			state_kind_name(kind), len, st->name, STATE_FILE_MAX);
		ret = -EFBIG;
	} else {
		ret = st->ops->write(st, kind, file, file_len);
	}
	free(file);
	return ret;
}

int state_remove(struct state_store *st, enum state_kind kind)
{
	if (!state_kind_name(kind))
		return -EINVAL;
	return st->ops->remove(st, kind);
}

int state_flush(struct state_store *st)
{
	return st->ops->flush ? st->ops->flush(st) : 0;
}

int state_list(struct state_store *st, struct state_info out[STATE_LINEAR_SLOTS], size_t *n)
{
	*n = 0;
	return st->ops->list(st, out, n);
}

int state_pread_all(int fd, uint8_t *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, buf + done, len - done, off + (off_t)done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;	/* shrank under us */
		done += (size_t)n;
	}
	return 0;
}

int state_pwrite_all(int fd, const uint8_t *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, buf + done, len - done, off + (off_t)done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}
