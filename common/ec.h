/* Erasure coding (issue 23): a systematic Reed-Solomon code over GF(2^8),
 * computed by ISA-L. A stripe is K data chunks and M parity chunks of the
 * same length; any K of the K+M chunks give back all of them.
 *
 * The generator is the K x K identity (the data chunks are stored as
 * they are, so a healthy read touches only the data it covers) over an
 * M x K Cauchy matrix (gf_gen_cauchy1_matrix): every K x K submatrix of
 * a Cauchy-extended identity is invertible, which is what makes every
 * pattern of at most M lost chunks decodable. (ISA-L's gf_gen_rs_matrix
 * is not MDS for every K and M.)
 *
 * Chunk i of a stripe is data chunk i for i < K, parity chunk i - K
 * otherwise; sets of chunks are bitmasks over those indices. */
#ifndef BASALT_COMMON_EC_H
#define BASALT_COMMON_EC_H

#include <stddef.h>
#include <stdint.h>

#define EC_MAX_K 16
#define EC_MAX_M 4
#define EC_MAX_CHUNKS (EC_MAX_K + EC_MAX_M)

struct ec_code {
	unsigned k, m;
	/* Rows 0..k-1 the identity, rows k..k+m-1 the parity rows. */
	uint8_t gen[EC_MAX_CHUNKS * EC_MAX_K];
	/* ISA-L's expanded tables of the parity rows (ec_init_tables). */
	uint8_t parity_tables[32 * EC_MAX_K * EC_MAX_M];
};

/* Sets up the K+M code: 0, or -EINVAL unless 1 <= K <= EC_MAX_K and
 * 1 <= M <= EC_MAX_M. */
int ec_code_init(struct ec_code *code, unsigned k, unsigned m);

/* Parses "K+M" (the form of `pool create --ec`) into *K and *M, with K
 * and M within the limits above and no leading zeros: 0, or -EINVAL with
 * *K and *M untouched (the caller says what was wrong). */
int ec_parse(const char *text, unsigned *k /* out */, unsigned *m /* out */);

/* Computes the M parity chunks PARITY[0..m-1] of the K data chunks
 * DATA[0..k-1], each LEN bytes. */
void ec_encode(const struct ec_code *code, size_t len, uint8_t *const *data,
	       uint8_t **parity /* out */);

/* A partial write's parity: data chunk INDEX (< K) changed over LEN bytes by
 * DELTA (old XOR new, the difference in GF(2^8)); adds that change into
 * the same LEN bytes of each parity chunk PARITY[0..m-1]. Only the old
 * bytes of the chunk written and the old parity are needed, not the
 * other data chunks. */
void ec_update(const struct ec_code *code, size_t len, unsigned index, const uint8_t *delta,
	       uint8_t **parity /* in, out */);

/* OUT = A XOR B over LEN bytes (OUT may be A or B): the DELTA of
 * ec_update from a chunk's old and new bytes. */
void ec_delta(uint8_t *out, const uint8_t *a, const uint8_t *b, size_t len);

/* Rebuilds every chunk of CHUNKS[0..k+m-1] (each LEN bytes) not in
 * PRESENT from K chunks that are: 0, or -EIO (nothing written) when
 * fewer than K are present. Chunks in PRESENT are only read. */
int ec_reconstruct(const struct ec_code *code, size_t len, uint8_t **chunks,
		   uint32_t present);

/* Whether the parity chunks of a whole stripe CHUNKS[0..k+m-1] are the
 * ones its data chunks give: the set of parity chunks (as chunk indices
 * k..k+m-1) that differ, 0 when the stripe is consistent. SCRATCH holds
 * LEN bytes. */
uint32_t ec_verify(const struct ec_code *code, size_t len, uint8_t *const *chunks,
		   uint8_t *scratch);

/* Which of the chunks in PRESENT (at least K + 1 of CHUNKS[0..k+m-1],
 * each LEN bytes) do not belong to the stripe the others make, for a
 * deep scrub: *WRONG = 0 when they all agree. With K + 2 or more present
 * one wrong chunk is found for certain: the one without which the rest
 * agree. Otherwise (K + 1 present, or more than one chunk wrong) the
 * first K present chunks win, data chunks before parity: *WRONG is those
 * of the others that differ from what the first K give. CHUNKS are only
 * read. 0, -EINVAL (fewer than K + 1 present) or -ENOMEM. */
int ec_check(const struct ec_code *code, size_t len, uint8_t *const *chunks, uint32_t present,
	     uint32_t *wrong /* out */);

#endif
