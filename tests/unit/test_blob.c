/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * State blobs by offset and length (bridge/blob.c), driven the way the
 * socket front (whole blobs) and CUSE (PTM_STATE_BLOB_SIZE chunks, a short
 * or empty chunk ends a SET) drive them.
 */
#include <errno.h>

#include <ptm.h>

#include "blob.h"
#include "unit.h"

static const size_t sizes[] = {
	0, 1, PTM_STATE_BLOB_SIZE - 1, PTM_STATE_BLOB_SIZE, PTM_STATE_BLOB_SIZE + 1,
	2 * PTM_STATE_BLOB_SIZE, 3 * PTM_STATE_BLOB_SIZE + 1, 9012,
};

static uint8_t *pattern(size_t n)
{
	uint8_t *p = malloc(n ? n : 1);

	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 7 + 3);
	return p;
}

/* GET the CUSE way: repeat at offset += length until offset >= totlength. */
TEST(get_in_chunks_reassembles)
{
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		struct blob_out b = { 0 };
		size_t n = sizes[s], off = 0, calls = 0;
		uint8_t *src = pattern(n), *dst = malloc(n + 1);

		blob_out_set(&b, PTM_BLOB_TYPE_VOLATILE, 0, pattern(n), n);
		for (;;) {
			const uint8_t *p;
			size_t got;

			blob_out_chunk(&b, (uint32_t)off, PTM_STATE_BLOB_SIZE, &p, &got);
			calls++;
			CHECK(got <= PTM_STATE_BLOB_SIZE);
			if (!got)
				break;
			memcpy(dst + off, p, got);
			off += got;
			if (got < PTM_STATE_BLOB_SIZE)
				break;
		}
		CHECK_EQ(off, n);
		CHECK(n == 0 || memcmp(src, dst, n) == 0);
		/* exact multiples need the empty call that says "no more" */
		CHECK_EQ(calls, n / PTM_STATE_BLOB_SIZE + 1);
		free(src);
		free(dst);
		blob_out_clear(&b);
	}
}

TEST(get_whole_and_past_the_end)
{
	struct blob_out b = { 0 };
	const uint8_t *p;
	size_t got;

	blob_out_set(&b, 1, 0, pattern(100), 100);
	blob_out_chunk(&b, 0, SIZE_MAX, &p, &got);
	CHECK_EQ(got, 100);
	blob_out_chunk(&b, 40, SIZE_MAX, &p, &got);
	CHECK_EQ(got, 60);
	CHECK_EQ(p[0], (uint8_t)(40 * 7 + 3));
	blob_out_chunk(&b, 100, SIZE_MAX, &p, &got);
	CHECK_EQ(got, 0);
	blob_out_chunk(&b, 0xffffffffu, SIZE_MAX, &p, &got);
	CHECK_EQ(got, 0);
	CHECK(blob_out_has(&b, 1, 0));
	CHECK(!blob_out_has(&b, 1, 1));
	CHECK(!blob_out_has(&b, 2, 0));
	blob_out_clear(&b);
	CHECK(!blob_out_has(&b, 1, 0));
}

/* SET the CUSE way: full chunks, the last one shorter (possibly empty). */
TEST(set_in_chunks_reassembles)
{
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		struct blob_in b = { 0 };
		size_t n = sizes[s], off = 0;
		uint8_t *src = pattern(n);
		bool first = true;

		for (;;) {
			size_t chunk = n - off < PTM_STATE_BLOB_SIZE ? n - off : PTM_STATE_BLOB_SIZE;

			CHECK_EQ(blob_in_append(&b, 2, 0, first, src + off, chunk, 1u << 20), 0);
			first = false;
			off += chunk;
			if (chunk < PTM_STATE_BLOB_SIZE)
				break;
		}
		CHECK_EQ(b.len, n);
		CHECK(n == 0 || memcmp(b.data, src, n) == 0);
		free(src);
		blob_in_clear(&b);
	}
}

TEST(set_new_transfer_drops_leftovers)
{
	struct blob_in b = { 0 };
	uint8_t x[10] = { 1 }, y[4] = { 2 };

	CHECK_EQ(blob_in_append(&b, 1, 0, true, x, sizeof(x), 100), 0);
	/* abandoned; a new transfer of the same type starts over (swtpm appends) */
	CHECK_EQ(blob_in_append(&b, 1, 0, true, y, sizeof(y), 100), 0);
	CHECK_EQ(b.len, 4);
	CHECK_EQ(b.data[0], 2);
	/* a chunk of another type also starts over, with that chunk's flags */
	CHECK_EQ(blob_in_append(&b, 2, PTM_STATE_FLAG_ENCRYPTED, false, x, sizeof(x), 100), 0);
	CHECK_EQ(b.len, 10);
	CHECK_EQ(b.flags, PTM_STATE_FLAG_ENCRYPTED);
	blob_in_clear(&b);
}

TEST(set_limit_is_enforced)
{
	struct blob_in b = { 0 };
	uint8_t x[64] = { 0 };

	CHECK_EQ(blob_in_append(&b, 1, 0, true, x, 64, 100), 0);
	CHECK_EQ(blob_in_append(&b, 1, 0, false, x, 36, 100), 0);
	CHECK_EQ(b.len, 100);
	CHECK_EQ(blob_in_append(&b, 1, 0, false, x, 1, 100), -EFBIG);
	CHECK(!b.active);
	CHECK_EQ(b.len, 0);
	CHECK_EQ(blob_in_append(&b, 1, 0, true, x, SIZE_MAX, 100), -EFBIG);
	blob_in_clear(&b);
}

UNIT_MAIN("unit/blob",
	  UNIT(get_in_chunks_reassembles),
	  UNIT(get_whole_and_past_the_end),
	  UNIT(set_in_chunks_reassembles),
	  UNIT(set_new_transfer_drops_leftovers),
	  UNIT(set_limit_is_enforced))
