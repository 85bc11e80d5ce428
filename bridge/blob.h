/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * State blobs moving by offset and length.  The socket front moves a blob
 * whole, CUSE in chunks of PTM_STATE_BLOB_SIZE; both use this one
 * implementation through the core.
 */
#ifndef VTPM_BLOB_H
#define VTPM_BLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A blob being read out: fetched whole, then served from any offset. */
struct blob_out {
	uint8_t *data;
	size_t len;
	uint32_t type, flags;	/* what was fetched */
	bool valid;
};

/* Takes ownership of data (malloc'ed). */
void blob_out_set(struct blob_out *b, uint32_t type, uint32_t flags, uint8_t *data, size_t len);
bool blob_out_has(const struct blob_out *b, uint32_t type, uint32_t flags);
/* The bytes from offset, at most max; none when offset is at or past the end. */
void blob_out_chunk(const struct blob_out *b, uint32_t offset, size_t max, const uint8_t **p, size_t *n);
void blob_out_clear(struct blob_out *b);

/* A blob being written in: chunks appended until the last one. */
struct blob_in {
	uint8_t *data;
	size_t len, cap;
	uint32_t type, flags;	/* of the first chunk */
	bool active;
};

/*
 * Appends a chunk.  `first` (or a chunk of another type) starts a new blob
 * and drops what an abandoned transfer left.  -EFBIG past `limit` bytes
 * (the transfer is then dropped), -ENOMEM.
 */
int blob_in_append(struct blob_in *b, uint32_t type, uint32_t flags, bool first,
		   const uint8_t *data, size_t n, size_t limit);
void blob_in_clear(struct blob_in *b);

#endif
