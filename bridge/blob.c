/* SPDX-License-Identifier: BSD-3-Clause */
#include "blob.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void blob_out_set(struct blob_out *b, uint32_t type, uint32_t flags, uint8_t *data, size_t len)
{
	blob_out_clear(b);
	b->data = data;
	b->len = len;
	b->type = type;
	b->flags = flags;
	b->valid = true;
}

bool blob_out_has(const struct blob_out *b, uint32_t type, uint32_t flags)
{
	return b->valid && b->type == type && b->flags == flags;
}

void blob_out_chunk(const struct blob_out *b, uint32_t offset, size_t max, const uint8_t **p, size_t *n)
{
	size_t rest;

	if (!b->valid || offset >= b->len) {
		*p = NULL;
		*n = 0;
		return;
	}
	rest = b->len - offset;
	*p = b->data + offset;
	*n = rest < max ? rest : max;
}

void blob_out_clear(struct blob_out *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

int blob_in_append(struct blob_in *b, uint32_t type, uint32_t flags, bool first,
		   const uint8_t *data, size_t n, size_t limit)
{
	if (first || !b->active || b->type != type) {
		b->len = 0;
		b->type = type;
		b->flags = flags;
		b->active = true;
	}
	if (b->len > limit || n > limit - b->len) {
		blob_in_clear(b);
		return -EFBIG;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		uint8_t *grown;

		while (cap < b->len + n)
			cap *= 2;
		grown = realloc(b->data, cap);
		if (!grown) {
			blob_in_clear(b);
			return -ENOMEM;
		}
		b->data = grown;
		b->cap = cap;
	}
	if (n)
		memcpy(b->data + b->len, data, n);
	b->len += n;
	return 0;
}

void blob_in_clear(struct blob_in *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}
