/* The striping of erasure-coded objects, checked against a byte-by-byte
 * statement of the rule (unit u in data chunk u % K at offset (u / K) *
 * 4096) over every 4 KiB-aligned range of small objects of K = 1, 2, 3,
 * 4 and 8 chunks: windows, extents, uncovered units, scatter and gather;
 * then a reconstruct-write (read what the range does not cover, encode
 * the window) gives the parity of the whole new object, and a window
 * with M chunks lost reads back the range. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/ec.h"
#include "common/ec_stripe.h"

#define U EC_STRIPE_UNIT
#define ROWS 6 /* units per chunk in these objects */

/* The rule, byte by byte: where byte B of the object lives. */
static void where(unsigned k, uint32_t b, unsigned *chunk, uint32_t *at)
{
	uint32_t unit = b / U;
	*chunk = unit % k;
	*at = unit / k * U + b % U;
}

/* Splits OBJ (k * ROWS units) into its K data chunks, and encodes M
 * parity chunks: CHUNKS[0..k+m-1], ROWS units each. */
static void split(const struct ec_code *code, const uint8_t *obj, uint8_t **chunks)
{
	for (uint32_t b = 0; b < code->k * ROWS * U; b++) {
		unsigned c;
		uint32_t at;
		where(code->k, b, &c, &at);
		chunks[c][at] = obj[b];
	}
	ec_encode(code, ROWS * U, chunks, chunks + code->k);
}

static uint8_t **chunks_new(unsigned n, size_t len)
{
	uint8_t **c = calloc(n, sizeof(*c));
	for (unsigned i = 0; i < n; i++)
		c[i] = calloc(1, len);
	return c;
}

static void chunks_free(uint8_t **c, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		free(c[i]);
	free(c);
}

static void fill(uint8_t *p, size_t len, uint32_t seed)
{
	for (size_t i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

/* Window, extents and uncovered units of one range, by brute force. */
static void check_geometry(unsigned k, uint32_t off, uint32_t len)
{
	struct ec_window w = ec_stripe_window(k, off, len);
	uint32_t lo = UINT32_MAX, hi = 0;
	uint8_t covered[16][ROWS] = { { 0 } };
	for (uint32_t b = off; b < off + len; b += U) {
		unsigned c;
		uint32_t at;
		where(k, b, &c, &at);
		lo = at / U < lo ? at / U : lo;
		hi = at / U > hi ? at / U : hi;
		covered[c][at / U] = 1;
	}
	assert_int_equal(w.row0, lo);
	assert_int_equal(w.rows, hi - lo + 1);
	for (unsigned c = 0; c < k; c++) {
		struct ec_extent e, un[2];
		bool any = ec_stripe_extent(k, off, len, c, &e);
		unsigned n = ec_stripe_uncovered(k, off, len, c, un);
		uint8_t seen[ROWS] = { 0 };
		for (uint32_t r = 0; r < ROWS; r++) {
			bool in_extent = any && r * U >= e.offset && r * U < e.offset + e.len;
			assert_int_equal(in_extent, covered[c][r]); /* one extent, exactly */
			for (unsigned i = 0; i < n; i++)
				if (r * U >= un[i].offset && r * U < un[i].offset + un[i].len)
					seen[r]++;
			bool in_window = r >= w.row0 && r < w.row0 + w.rows;
			/* Uncovered: every window unit not covered, once. */
			assert_int_equal(seen[r], in_window && !covered[c][r]);
		}
		if (!any)
			assert_true(e.offset == 0 && e.len == 0);
		for (unsigned i = 0; i < n; i++)
			assert_true(un[i].len && un[i].offset % U == 0 && un[i].len % U == 0);
	}
}

/* Scatter and gather of one range against the object's chunks. */
static void check_copies(const struct ec_code *code, const uint8_t *obj, uint8_t **chunks,
			 uint32_t off, uint32_t len)
{
	unsigned k = code->k;
	struct ec_window w = ec_stripe_window(k, off, len);
	uint8_t **cols = chunks_new(k, (size_t)w.rows * U);
	for (unsigned c = 0; c < k; c++)
		memcpy(cols[c], chunks[c] + w.row0 * U, (size_t)w.rows * U);
	uint8_t *out = malloc(len);
	ec_stripe_gather(k, off, len, out, &w, cols);
	assert_memory_equal(out, obj + off, len);
	/* Scatter new bytes: the columns become the new object's, and only
	 * the range's units change. */
	uint8_t *next = malloc((size_t)k * ROWS * U);
	memcpy(next, obj, (size_t)k * ROWS * U);
	fill(next + off, len, off ^ len);
	ec_stripe_scatter(k, off, len, next + off, &w, cols);
	for (uint32_t b = w.row0 * U * k; b < (w.row0 + w.rows) * U * k; b++) {
		unsigned c;
		uint32_t at;
		where(k, b, &c, &at);
		assert_int_equal(cols[c][at - w.row0 * U], next[b]);
	}
	free(next);
	free(out);
	chunks_free(cols, k);
}

static void test_every_range(void **state)
{
	(void)state;
	static const unsigned ks[] = { 1, 2, 3, 4, 8 };
	for (size_t i = 0; i < sizeof(ks) / sizeof(ks[0]); i++) {
		struct ec_code code;
		assert_int_equal(ec_code_init(&code, ks[i], 1), 0);
		uint32_t size = ks[i] * ROWS * U;
		uint8_t *obj = malloc(size);
		fill(obj, size, ks[i]);
		uint8_t **chunks = chunks_new(ks[i] + 1, ROWS * U);
		split(&code, obj, chunks);
		for (uint32_t off = 0; off < size; off += U)
			for (uint32_t len = U; off + len <= size; len += U) {
				check_geometry(ks[i], off, len);
				check_copies(&code, obj, chunks, off, len);
			}
		chunks_free(chunks, ks[i] + 1);
		free(obj);
	}
}

/* A write of [OFF, OFF + LEN): read the uncovered units of its window
 * from the old chunks, put the new bytes in, encode; the window's parity
 * must be the new object's. Then lose chunks LOST of the new stripe's
 * window and read the range back through a rebuild. */
static void check_write(const struct ec_code *code, const uint8_t *obj, uint8_t **old,
			uint32_t off, uint32_t len, uint32_t lost)
{
	unsigned k = code->k, n = code->k + code->m;
	size_t size = (size_t)k * ROWS * U;
	uint8_t *next = malloc(size);
	memcpy(next, obj, size);
	fill(next + off, len, off * 7 + len);
	uint8_t **want = chunks_new(n, ROWS * U);
	split(code, next, want);

	struct ec_window w = ec_stripe_window(k, off, len);
	size_t wlen = (size_t)w.rows * U;
	uint8_t **cols = chunks_new(n, wlen);
	for (unsigned c = 0; c < k; c++) {
		memset(cols[c], 0xee, wlen); /* whatever was there must not count */
		struct ec_extent un[2];
		unsigned nu = ec_stripe_uncovered(k, off, len, c, un);
		for (unsigned i = 0; i < nu; i++)
			memcpy(cols[c] + un[i].offset - w.row0 * U, old[c] + un[i].offset,
			       un[i].len);
	}
	ec_stripe_scatter(k, off, len, next + off, &w, cols);
	ec_encode(code, wlen, cols, cols + k);
	for (unsigned c = 0; c < n; c++)
		assert_memory_equal(cols[c], want[c] + w.row0 * U, wlen);

	for (unsigned c = 0; c < n; c++)
		if (lost & 1u << c)
			memset(cols[c], 0, wlen);
	assert_int_equal(ec_reconstruct(code, wlen, cols, ((1u << n) - 1) & ~lost), 0);
	uint8_t *back = malloc(len);
	ec_stripe_gather(k, off, len, back, &w, cols);
	assert_memory_equal(back, next + off, len);
	free(back);
	chunks_free(cols, n);
	chunks_free(want, n);
	free(next);
}

static void test_reconstruct_write(void **state)
{
	(void)state;
	static const unsigned km[][2] = { { 2, 1 }, { 3, 2 }, { 4, 2 }, { 8, 3 } };
	for (size_t i = 0; i < sizeof(km) / sizeof(km[0]); i++) {
		struct ec_code code;
		unsigned k = km[i][0], m = km[i][1], n = k + m;
		assert_int_equal(ec_code_init(&code, k, m), 0);
		uint32_t size = k * ROWS * U;
		uint8_t *obj = malloc(size);
		fill(obj, size, 99 + (uint32_t)i);
		uint8_t **chunks = chunks_new(n, ROWS * U);
		split(&code, obj, chunks);
		uint32_t lost = 0, count = 0;
		for (uint32_t off = 0; off < size; off += U)
			for (uint32_t len = U; off + len <= size; len += U) {
				/* Cycle through patterns of 1..M lost chunks. */
				do
					lost = (lost + 1) & ((1u << n) - 1);
				while (!lost || (unsigned)__builtin_popcount(lost) > m);
				check_write(&code, obj, chunks, off, len, lost);
				count++;
			}
		assert_true(count > 0);
		chunks_free(chunks, n);
		free(obj);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_range),
		cmocka_unit_test(test_reconstruct_write),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
