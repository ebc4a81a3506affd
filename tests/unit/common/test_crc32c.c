/* CRC32C against published vectors (RFC 3720 appendix B.4 and the common
 * "123456789" check value), chaining, and combining CRCs of parts into the
 * CRC of their concatenation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/crc32c.h"

static void test_check_value(void **state)
{
	(void)state;
	assert_int_equal(crc32c(0, "123456789", 9), 0xe3069283);
	assert_int_equal(crc32c(0, "", 0), 0);
}

static void test_rfc3720_vectors(void **state)
{
	(void)state;
	uint8_t buf[32];
	memset(buf, 0, sizeof(buf));
	assert_int_equal(crc32c(0, buf, 32), 0x8a9136aa);
	memset(buf, 0xff, sizeof(buf));
	assert_int_equal(crc32c(0, buf, 32), 0x62a8ab43);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	assert_int_equal(crc32c(0, buf, 32), 0x46dd794e);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)(31 - i);
	assert_int_equal(crc32c(0, buf, 32), 0x113fdb5c);
	/* An iSCSI SCSI Read (10) command PDU. */
	const uint8_t pdu[48] = {
		0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00,
		0x00, 0x18, 0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	};
	assert_int_equal(crc32c(0, pdu, sizeof(pdu)), 0xd9963a56);
}

static void test_chaining(void **state)
{
	(void)state;
	uint8_t buf[4096];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	uint32_t whole = crc32c(0, buf, sizeof(buf));
	for (size_t split = 0; split <= sizeof(buf); split += 511) {
		uint32_t c = crc32c(0, buf, split);
		c = crc32c(c, buf + split, sizeof(buf) - split);
		assert_int_equal(c, whole);
	}
	/* One flipped bit changes the sum. */
	buf[100] ^= 0x10;
	assert_int_not_equal(crc32c(0, buf, sizeof(buf)), whole);
}

/* A deterministic pseudo-random fill (xorshift), so failures replay. */
static void fill(uint8_t *buf, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (uint8_t)x;
	}
}

static void check_split(const uint8_t *buf, size_t len, size_t split)
{
	uint32_t whole = crc32c(0, buf, len);
	uint32_t a = crc32c(0, buf, split), b = crc32c(0, buf + split, len - split);
	assert_int_equal(crc32c_combine(a, b, len - split), whole);
}

static void test_combine_sizes(void **state)
{
	(void)state;
	size_t max = 3u << 20;
	uint8_t *buf = malloc(max);
	assert_non_null(buf);
	fill(buf, max, 1);
	/* Lengths of B: empty, one byte, a chunk (the precomputed constant)
	 * and its neighbours, odd sizes, large; A likewise. */
	const size_t lens[] = { 0, 1, 2, 3, 7, 8, 63, 511, 4095, 4096, 4097, 8191,
				8192, 12288, 65537, 131072, 1u << 20, (1u << 20) + 13 };
	size_t n = sizeof(lens) / sizeof(lens[0]);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++)
			check_split(buf, lens[i] + lens[j], lens[i]);
	check_split(buf, max, 4096);
	check_split(buf, max, max - 4096);
	free(buf);
	/* Combining with empty parts is the identity. */
	assert_int_equal(crc32c_combine(0x12345678, 0, 0), 0x12345678);
	assert_int_equal(crc32c_combine(0, 0xabcdef01, 4096), 0xabcdef01);
}

static void test_combine_random(void **state)
{
	(void)state;
	uint8_t buf[20000];
	fill(buf, sizeof(buf), 2);
	uint64_t x = 88172645463325252ULL;
	for (int i = 0; i < 2000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		size_t len = x % (sizeof(buf) + 1);
		size_t split = len ? (x >> 20) % (len + 1) : 0;
		check_split(buf, len, split);
	}
}

static void test_combine_chunks(void **state)
{
	(void)state;
	enum { N = 40 };
	static uint8_t buf[N * CRC32C_CHUNK];
	uint32_t crc[N];
	fill(buf, sizeof(buf), 3);
	for (size_t i = 0; i < N; i++)
		crc[i] = crc32c(0, buf + i * CRC32C_CHUNK, CRC32C_CHUNK);
	for (size_t n = 0; n <= N; n++)
		assert_int_equal(crc32c_of_chunks(crc, n), crc32c(0, buf, n * CRC32C_CHUNK));
	/* crc32c_chunks (three at a time, then the rest) for every count. */
	for (size_t n = 0; n <= N; n++) {
		uint32_t got[N + 1];
		got[n] = 0x5a5a5a5a;
		crc32c_chunks(buf, n, got);
		assert_memory_equal(got, crc, n * sizeof(uint32_t));
		assert_int_equal(got[n], 0x5a5a5a5a); /* nothing past N */
	}
	/* The precomputed shift of one chunk (A of 100 bytes, B a chunk)
	 * agrees with chaining. */
	uint32_t a = crc32c(0, buf, 100);
	assert_int_equal(crc32c_combine(a, crc[1], CRC32C_CHUNK),
			 crc32c(a, buf + CRC32C_CHUNK, CRC32C_CHUNK));
	/* x^(8n) by square and multiply agrees with repeated multiplication:
	 * combining a chunk is combining its two halves' shifts. */
	assert_int_equal(crc32c_combine(a, 0, 8192),
			 crc32c_combine(crc32c_combine(a, 0, 4096), 0, 4096));
	assert_int_equal(crc32c_combine(a, 0, 4096),
			 crc32c_combine(crc32c_combine(a, 0, 1000), 0, 3096));
	assert_int_equal(crc32c_x_pow8n(0), 0x80000000u);
	/* A wrong chunk CRC gives a wrong whole. */
	crc[7] ^= 1;
	assert_int_not_equal(crc32c_of_chunks(crc, N), crc32c(0, buf, sizeof(buf)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_value),
		cmocka_unit_test(test_rfc3720_vectors),
		cmocka_unit_test(test_chaining),
		cmocka_unit_test(test_combine_sizes),
		cmocka_unit_test(test_combine_random),
		cmocka_unit_test(test_combine_chunks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
