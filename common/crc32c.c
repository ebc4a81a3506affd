/* CRC32C through ISA-L, which works on the inverted register; invert on
 * the way in and out so results chain and match the published vectors.
 *
 * Combining works on polynomials over GF(2) modulo P, the Castagnoli
 * polynomial, in the reflected form CRCs use: bit 31 of a word is the
 * coefficient of x^0 and bit 0 that of x^31. For the conditioned CRC
 * (initial and final inversion) crc(A||B) = crc(A) * x^(8|B|) + crc(B)
 * mod P: the inversions of A's tail and B's head cancel, as appending |B|
 * zero bytes to A multiplies its remainder by x^(8|B|). */
#include "crc32c.h"

#include <isa-l/crc.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>
#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

#define CRC32C_POLY_REFLECTED 0x82F63B78u
#define CRC32C_ONE 0x80000000u /* the polynomial 1 */

/* x^(8 * CRC32C_CHUNK) mod P; test_crc32c checks it against
 * crc32c_x_pow8n(CRC32C_CHUNK). */
#define CRC32C_X_CHUNK 0x35d73a62u

uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	crc = ~crc;
	while (len > 0) {
		int chunk = len > INT_MAX ? INT_MAX : (int)len;
		crc = crc32_iscsi((unsigned char *)p, chunk, crc);
		p += chunk;
		len -= (size_t)chunk;
	}
	return ~crc;
}

#if defined(__x86_64__)
/* Three independent CRCs in flight hide the crc32 instruction's latency
 * of three cycles: eight bytes a cycle, with no combining step. */
__attribute__((target("sse4.2"))) static size_t crc32c_chunks_sse42(const uint8_t *p, size_t n,
								   uint32_t *crc)
{
	size_t i = 0;
	for (; i + 3 <= n; i += 3) {
		const uint8_t *a = p + i * CRC32C_CHUNK;
		const uint8_t *b = a + CRC32C_CHUNK, *c = b + CRC32C_CHUNK;
		uint64_t ca = 0xffffffffu, cb = 0xffffffffu, cc = 0xffffffffu;
		for (size_t off = 0; off < CRC32C_CHUNK; off += 8) {
			uint64_t va, vb, vc;
			memcpy(&va, a + off, 8);
			memcpy(&vb, b + off, 8);
			memcpy(&vc, c + off, 8);
			ca = _mm_crc32_u64(ca, va);
			cb = _mm_crc32_u64(cb, vb);
			cc = _mm_crc32_u64(cc, vc);
		}
		crc[i] = ~(uint32_t)ca;
		crc[i + 1] = ~(uint32_t)cb;
		crc[i + 2] = ~(uint32_t)cc;
	}
	return i;
}
#endif

void crc32c_chunks(const void *buf, size_t n, uint32_t *crc)
{
	const uint8_t *p = buf;
	size_t i = 0;
#if defined(__x86_64__)
	if (__builtin_cpu_supports("sse4.2"))
		i = crc32c_chunks_sse42(p, n, crc);
#endif
	for (; i < n; i++)
		crc[i] = crc32c(0, p + i * CRC32C_CHUNK, CRC32C_CHUNK);
}

/* A * B mod P: adds B * x^k for each coefficient k of A that is set,
 * from x^0 up, multiplying B by x (a right shift, reduced) on the way. */
static uint32_t crc32c_multiply(uint32_t a, uint32_t b)
{
	uint32_t product = 0;
	while (a) {
		if (a & CRC32C_ONE)
			product ^= b;
		a <<= 1;
		b = (b >> 1) ^ (b & 1 ? CRC32C_POLY_REFLECTED : 0);
	}
	return product;
}

/* Square and multiply over the bits of N, from x^8 (one byte) up. */
uint32_t crc32c_x_pow8n(uint64_t n)
{
	uint32_t result = CRC32C_ONE;
	uint32_t square = CRC32C_ONE >> 8; /* x^8: the power for one byte */
	while (n) {
		if (n & 1)
			result = crc32c_multiply(result, square);
		square = crc32c_multiply(square, square);
		n >>= 1;
	}
	return result;
}

/* Multiplying by the chunk's shift is linear over the 4 bytes of the
 * CRC: a table per byte makes it 4 lookups (a 1 MiB frame combines 256
 * chunk CRCs; bit by bit that cost half as much as checksumming it). */
static uint32_t chunk_shift_table[4][256];
static pthread_once_t chunk_shift_once = PTHREAD_ONCE_INIT;

static void chunk_shift_init(void)
{
	for (unsigned byte = 0; byte < 4; byte++)
		for (uint32_t v = 0; v < 256; v++)
			chunk_shift_table[byte][v] = crc32c_multiply(v << (8 * byte), CRC32C_X_CHUNK);
}

static inline uint32_t chunk_shift(uint32_t crc)
{
	return chunk_shift_table[0][crc & 0xff] ^ chunk_shift_table[1][(crc >> 8) & 0xff] ^
	       chunk_shift_table[2][(crc >> 16) & 0xff] ^ chunk_shift_table[3][crc >> 24];
}

uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b)
{
	if (len_b == CRC32C_CHUNK) {
		pthread_once(&chunk_shift_once, chunk_shift_init);
		return chunk_shift(crc_a) ^ crc_b;
	}
	return crc32c_multiply(crc_a, crc32c_x_pow8n(len_b)) ^ crc_b;
}

uint32_t crc32c_of_chunks(const uint32_t *crc, size_t n)
{
	pthread_once(&chunk_shift_once, chunk_shift_init);
	uint32_t whole = 0;
	for (size_t i = 0; i < n; i++)
		whole = chunk_shift(whole) ^ crc[i];
	return whole;
}
