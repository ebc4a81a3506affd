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

uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b)
{
	uint32_t shift = len_b == CRC32C_CHUNK ? CRC32C_X_CHUNK : crc32c_x_pow8n(len_b);
	return crc32c_multiply(crc_a, shift) ^ crc_b;
}

uint32_t crc32c_of_chunks(const uint32_t *crc, size_t n)
{
	uint32_t whole = 0;
	for (size_t i = 0; i < n; i++)
		whole = crc32c_multiply(whole, CRC32C_X_CHUNK) ^ crc[i];
	return whole;
}
