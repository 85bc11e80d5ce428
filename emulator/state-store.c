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
	st->refuse_damaged = cfg->refuse_damaged;
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

const char *state_label(const struct state_store *st, enum state_kind kind, char *buf, size_t size)
{
	const char *kname = state_kind_name(kind);

	if (!kname)
		kname = "?";
	if (st->dir)
		snprintf(buf, size, "%s-00.%s", st->tpm2 ? "tpm2" : "tpm", kname);
	else
		snprintf(buf, size, "%s section", kname);
	return buf;
}

/* Why a state cannot be used, naming the file (or the file's section) and never the key. */
static void state_load_error(const struct state_store *st, enum state_kind kind, bool tagged, int err)
{
	char label[STATE_LABEL_MAX];

	state_label(st, kind, label, sizeof(label));
	switch (err) {
	case -ENOKEY:
		log_err("%s: %s is encrypted; no state key is configured (--key)", st->name, label);
		break;
	case -ENOMSG:
		log_err("%s: %s is not encrypted, but --key is given (swtpm 0.7.1 refuses it too; "
			"move the state with --save/--load to convert it)", st->name, label);
		break;
	case -EMEDIUMTYPE:
		log_err("%s: %s was encrypted with a %u-bit key; --key gives a %u-bit key", st->name, label,
			st->key->len == 32 ? 128u : 256u, (unsigned int)st->key->len * 8);
		break;
	case -EKEYREJECTED:
		if (tagged)	/* the SHA-256 over the ciphertext matched: it is intact */
			log_err("%s: %s: HMAC mismatch on an intact file: wrong key", st->name, label);
		else
			log_err("%s: %s: HMAC mismatch: wrong key or damaged", st->name, label);
		break;
	case -EBADMSG:
		log_err("%s: %s is not a valid swtpm state blob", st->name, label);
		break;
	default:
		log_errno(LOG_ERR, -err, "%s: %s", st->name, label);
		break;
	}
}

/* The log line for a state that failed state_file_check. */
static void state_damage_log(const struct state_store *st, const char *label, const char *suffix,
			     const struct state_file_report *rep, size_t len)
{
	if (rep->at != SIZE_MAX)
		log_err("%s: %s%s is damaged: %s (at byte %zu of %zu)", st->name, label, suffix, rep->problem,
			rep->at, len);
	else
		log_err("%s: %s%s is damaged: %s (%zu bytes)", st->name, label, suffix, rep->problem, len);
}

/*
 * The current file failed its check (already logged).  Unless told to
 * refuse, the previous good copy replaces it: the damaged file is kept
 * under a new name and the copy is committed as the current state, so a
 * restart does not meet the damage again.  *file becomes the copy.
 */
static int state_fall_back(struct state_store *st, enum state_kind kind, const char *label,
			   uint8_t **file, size_t *len)
{
	struct state_file_report rep;
	uint8_t *prev = NULL;
	size_t prev_len = 0;
	char *kept = NULL;
	int ret;

	if (st->refuse_damaged || !st->ops->read_prev) {
		log_err("%s: refusing to use %s; it is left as it is (%s)", st->name, label,
			st->refuse_damaged ? "--damaged-state refuse" : "no previous copy is kept in a linear file");
		return -EBADMSG;
	}
	ret = st->ops->read_prev(st, kind, &prev, &prev_len);
	if (ret == -ENOENT) {
		log_err("%s: refusing to use %s, and no previous copy of it exists; it is left as it is. "
			"Restore it from a backup, or move it away to start a new TPM", st->name, label);
		return -EBADMSG;
	}
	if (ret)
		return ret;
	ret = state_file_check(prev, prev_len, kind, &rep);
	if (ret) {
		state_damage_log(st, label, ".prev", &rep, prev_len);
		log_err("%s: refusing to use %s: its previous copy is damaged too; both are left as they are",
			st->name, label);
		goto free_prev;
	}
	ret = st->ops->set_aside(st, kind, &kept);
	if (ret)
		goto free_prev;
	/* Durable before it is used: the damaged file is gone from its name now. */
	ret = st->ops->write(st, kind, prev, prev_len);
	if (ret == 0)
		ret = state_flush(st);
	if (ret) {
		log_err("%s: cannot restore %s from %s.prev; the damaged file is kept as %s",
			st->name, label, label, kept);
		goto free_prev;
	}
	log_err("%s: FALLING BACK to %s.prev, the state before the last commit (the changes committed "
		"since are lost); the damaged file is kept as %s", st->name, label, kept);
	free(*file);
	*file = prev;
	*len = prev_len;
	prev = NULL;
free_prev:
	free(kept);
	free(prev);
	return ret;
}

int state_load(struct state_store *st, enum state_kind kind, uint8_t **payload, size_t *len)
{
	struct state_file_report rep;
	char label[STATE_LABEL_MAX];
	const uint8_t *plain;
	uint8_t *file = NULL, *copy;
	size_t file_len = 0, plain_len;
	int ret;

	if (!state_kind_name(kind))
		return -EINVAL;
	ret = st->ops->read(st, kind, &file, &file_len);
	if (ret)
		return ret;
	state_label(st, kind, label, sizeof(label));
	ret = state_file_check(file, file_len, kind, &rep);
	if (ret) {
		state_damage_log(st, label, "", &rep, file_len);
		ret = state_fall_back(st, kind, label, &file, &file_len);
		if (ret)
			goto free_file;
		(void)state_file_check(file, file_len, kind, &rep);	/* checked: for rep.tagged */
	}
	/* As 0.7.1: the configured key decides how a file is read, not its flags (spec 4.5). */
	if (state_key_set(st->key)) {
		ret = state_file_decrypt(st->key, file, file_len, payload, len);
		if (ret)
			state_load_error(st, kind, rep.tagged, ret);
		goto free_file;
	}
	ret = state_file_decode(file, file_len, &plain, &plain_len);
	if (ret) {
		state_load_error(st, kind, rep.tagged, ret);
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

/* Reads one state (or its previous copy) and checks it. */
static void state_verify_one(struct state_store *st, enum state_kind kind, bool prev, int *ret, size_t *size,
			     struct state_file_report *rep)
{
	uint8_t *file = NULL;

	*size = 0;
	memset(rep, 0, sizeof(*rep));
	if (prev)
		*ret = st->ops->read_prev ? st->ops->read_prev(st, kind, &file, size) : -ENOENT;
	else
		*ret = st->ops->read(st, kind, &file, size);
	if (*ret == 0)
		*ret = state_file_check(file, *size, kind, rep);
	free(file);
}

int state_verify(struct state_store *st, struct state_verdict out[STATE_LINEAR_SLOTS])
{
	for (int i = 0; i < STATE_LINEAR_SLOTS; i++) {
		struct state_verdict *v = &out[i];

		v->kind = (enum state_kind)(i + 1);
		state_verify_one(st, v->kind, false, &v->ret, &v->size, &v->rep);
		state_verify_one(st, v->kind, true, &v->prev_ret, &v->prev_size, &v->prev_rep);
	}
	return 0;
}

int state_check_integrity(struct state_store *st)
{
	struct state_verdict v[STATE_LINEAR_SLOTS];
	char label[STATE_LABEL_MAX];
	int ret = 0;

	state_verify(st, v);
	/*
	 * A damaged file may be superseded by a newer acknowledged one the last
	 * process left (--durability bounded): taking the lock recovers those,
	 * so look again after a brief lock, unless someone else holds it.
	 */
	for (int i = 0; i < STATE_LINEAR_SLOTS; i++) {
		if (v[i].ret == -EBADMSG && !st->locked && state_lock(st) == 0) {
			state_unlock(st);
			state_verify(st, v);
			break;
		}
	}
	for (int i = 0; i < STATE_LINEAR_SLOTS; i++) {
		state_label(st, v[i].kind, label, sizeof(label));
		if (v[i].ret == -ENOENT && v[i].prev_ret == 0 && v[i].kind == STATE_PERMANENT)
			log_warn("%s: %s is missing but %s.prev exists: a NEW TPM will be made. If that is not "
				 "what you want, stop now and restore %s from %s.prev", st->name, label, label,
				 label, label);
		if (v[i].ret != -EBADMSG)
			continue;	/* intact, absent, or unreadable (the load says why) */
		state_damage_log(st, label, "", &v[i].rep, v[i].size);
		if (!st->refuse_damaged && v[i].prev_ret == 0) {
			log_warn("%s: %s will be replaced by its previous copy %s.prev when the TPM starts",
				 st->name, label, label);
			continue;
		}
		if (v[i].prev_ret == -EBADMSG)
			state_damage_log(st, label, ".prev", &v[i].prev_rep, v[i].prev_size);
		log_err("%s: cannot start: %s is damaged and %s; nothing was changed", st->name, label,
			st->refuse_damaged ? "--damaged-state refuse is given" :
			v[i].prev_ret == -ENOENT ? "there is no previous copy" : "its previous copy cannot be used");
		ret = -EBADMSG;
	}
	return ret;
}

int state_check_key(struct state_store *st)
{
	if (!state_key_set(st->key))
		return 0;
	for (enum state_kind kind = STATE_PERMANENT; kind <= STATE_SAVESTATE; kind++) {
		struct state_file_report rep;
		uint8_t *file = NULL, *plain = NULL;
		size_t file_len = 0, plain_len = 0;
		int ret = st->ops->read(st, kind, &file, &file_len);

		if (ret == 0 && state_file_check(file, file_len, kind, &rep) == 0) {
			ret = state_file_decrypt(st->key, file, file_len, &plain, &plain_len);
			if (ret)
				state_load_error(st, kind, rep.tagged, ret);
			state_crypt_free(plain, plain_len);
		}
		free(file);
		/* absent, damaged (the load falls back or refuses), or unreadable (the load says why) */
		if (ret && ret != -ENOENT && ret != -EBADMSG && ret != -EISDIR)
			return ret;
	}
	return 0;
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
