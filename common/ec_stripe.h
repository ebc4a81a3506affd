/* Where an erasure-coded object's bytes live (issue 23): the object of an
 * EC pool (block_size bytes) is K data chunks and M parity chunks, each
 * one store block of its own OSD (common/ec.h for the code).
 *
 * The chunks are striped in 4 KiB units, the unit the store checksums:
 * unit u of the object (bytes u*4096 ..) is in data chunk u % K at chunk
 * offset (u / K) * 4096. A *row* is the K units at one chunk offset and
 * the M parity units computed from them. So a write of whole rows (K x
 * 4 KiB, aligned) needs no old data; a smaller one reads the units of
 * its rows it does not cover (reconstruct-write); any range covers one
 * contiguous extent of each data chunk, and a healthy read touches only
 * the chunks it covers.
 *
 *   object:  u0 u1 u2 u3 u4 u5 ...      K = 2, M = 1
 *   chunk 0: u0 u2 u4 ...   (data)
 *   chunk 1: u1 u3 u5 ...   (data)
 *   chunk 2: p0 p1 p2 ...   (parity of row 0, 1, 2)
 *
 * Ranges are 4 KiB aligned, as every object operation is. A *window* is
 * the run of rows a range touches; its columns are K + M buffers, one per
 * chunk, each window.rows * 4096 bytes: what ec_encode and
 * ec_reconstruct work on. */
#ifndef BASALT_COMMON_EC_STRIPE_H
#define BASALT_COMMON_EC_STRIPE_H

#include <stdbool.h>
#include <stdint.h>

#define EC_STRIPE_UNIT 4096u

/* Rows ROW0 .. ROW0 + ROWS - 1: chunk bytes ROW0 * 4096 .. of every chunk. */
struct ec_window {
	uint32_t row0, rows;
};

/* A byte range of one chunk. */
struct ec_extent {
	uint32_t offset, len;
};

/* The rows that bytes [OFFSET, OFFSET + LEN) of an object of K data
 * chunks touch (LEN > 0, both 4 KiB aligned). */
struct ec_window ec_stripe_window(unsigned k, uint32_t offset, uint32_t len);

/* The units of [OFFSET, OFFSET + LEN) in data chunk CHUNK: one extent of
 * that chunk; false (OUT zero) when the range has none there. */
bool ec_stripe_extent(unsigned k, uint32_t offset, uint32_t len, unsigned chunk,
		      struct ec_extent *out /* out */);

/* The units of the window's rows in data chunk CHUNK that the range does
 * not cover (what a write of it must read to encode its rows): at most
 * two extents, before and after the covered part; their count. */
unsigned ec_stripe_uncovered(unsigned k, uint32_t offset, uint32_t len, unsigned chunk,
			     struct ec_extent out[2] /* out */);

/* Copies the range's bytes SRC (LEN of them) into the columns COLS[0..k-1]
 * of window W (ec_stripe_window of the same range), each unit to its
 * chunk's place; other bytes of the columns are left as they are. */
void ec_stripe_scatter(unsigned k, uint32_t offset, uint32_t len, const uint8_t *src,
		       const struct ec_window *w, uint8_t *const *cols);

/* The reverse: the range's bytes from the columns into DST. */
void ec_stripe_gather(unsigned k, uint32_t offset, uint32_t len, uint8_t *dst,
		      const struct ec_window *w, uint8_t *const *cols);

#endif
