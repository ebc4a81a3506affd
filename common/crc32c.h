/* CRC32C (Castagnoli), the checksum of every frame and every 4 KiB of
 * stored data, computed by ISA-L. crc32c(0, buf, len) is the standard
 * value ("123456789" -> 0xe3069283); pass a previous result to chain.
 *
 * crc32c_combine gives the CRC of A||B from the CRCs of A and of B, so a
 * CRC known for each 4 KiB chunk (the store's) yields the CRC of a whole
 * data segment (the wire's) without reading the bytes again. */
#ifndef BASALT_COMMON_CRC32C_H
#define BASALT_COMMON_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* The chunk the store checksums, and the unit of carried CRCs. */
#define CRC32C_CHUNK 4096

/* crc32c(0, ...) of CRC32C_CHUNK zero bytes. */
#define CRC32C_ZERO_CHUNK 0x98f94189u

uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

/* Sets CRC[i] to crc32c(0, chunk i) for the N consecutive CRC32C_CHUNK
 * chunks at BUF: three chunks at a time, interleaved, where the CPU has
 * SSE4.2 (as fast as one CRC of the whole; ISA-L per 4 KiB call is
 * about 1.6 times slower). */
void crc32c_chunks(const void *buf, size_t n, uint32_t *crc /* out */);

/* crc32c(0, A||B) from CRC_A = crc32c(0, A), CRC_B = crc32c(0, B) and
 * LEN_B = |B|. Four table lookups when LEN_B is CRC32C_CHUNK, a few
 * hundred shifts for other lengths. */
uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

/* crc32c(0, ...) of N consecutive CRC32C_CHUNK chunks whose CRCs are
 * CRC[0..N-1]; 0 (the CRC of nothing) when N is 0. */
uint32_t crc32c_of_chunks(const uint32_t *crc, size_t n);

/* x^(8N) mod P in the reflected form: what crc32c_combine multiplies
 * CRC_A by (exposed for tests). */
uint32_t crc32c_x_pow8n(uint64_t n);

#endif
