/* Reed-Solomon erasure coding with ISA-L (ec.h). */
#include "ec.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <isa-l/erasure_code.h>

#include "common/assert.h"

int ec_code_init(struct ec_code *code, unsigned k, unsigned m)
{
	if (k < 1 || k > EC_MAX_K || m < 1 || m > EC_MAX_M)
		return -EINVAL;
	memset(code, 0, sizeof(*code));
	code->k = k;
	code->m = m;
	gf_gen_cauchy1_matrix(code->gen, (int)(k + m), (int)k);
	ec_init_tables((int)k, (int)m, code->gen + k * k, code->parity_tables);
	return 0;
}

int ec_parse(const char *text, unsigned *k, unsigned *m)
{
	char *end;
	if (!text || *text < '1' || *text > '9')
		return -EINVAL;
	unsigned long kk = strtoul(text, &end, 10);
	if (*end != '+' || end[1] < '1' || end[1] > '9')
		return -EINVAL;
	unsigned long mm = strtoul(end + 1, &end, 10);
	if (*end || kk > EC_MAX_K || mm > EC_MAX_M)
		return -EINVAL;
	*k = (unsigned)kk;
	*m = (unsigned)mm;
	return 0;
}

void ec_encode(const struct ec_code *code, size_t len, uint8_t *const *data, uint8_t **parity)
{
	ec_encode_data((int)len, (int)code->k, (int)code->m, (uint8_t *)code->parity_tables,
		       (uint8_t **)data, parity);
}

void ec_update(const struct ec_code *code, size_t len, unsigned index, const uint8_t *delta,
	       uint8_t **parity)
{
	BASALT_ASSERT(index < code->k); /* a data chunk: the tables have K columns */
	ec_encode_data_update((int)len, (int)code->k, (int)code->m, (int)index,
			      (uint8_t *)code->parity_tables, (uint8_t *)delta, parity);
}

void ec_delta(uint8_t *out, const uint8_t *a, const uint8_t *b, size_t len)
{
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		uint64_t x, y;
		memcpy(&x, a + i, 8);
		memcpy(&y, b + i, 8);
		x ^= y;
		memcpy(out + i, &x, 8);
	}
	for (; i < len; i++)
		out[i] = a[i] ^ b[i];
}

int ec_reconstruct(const struct ec_code *code, size_t len, uint8_t **chunks, uint32_t present)
{
	unsigned k = code->k, n = code->k + code->m;
	uint32_t all = (1u << n) - 1;
	present &= all;
	if ((unsigned)__builtin_popcount(present) < k)
		return -EIO;
	if (present == all)
		return 0;
	/* The first K present chunks, and the rows of the generator that
	 * made them: B. Their data is B x D, so D = B^-1 x those chunks. */
	uint8_t b[EC_MAX_K * EC_MAX_K], inv[EC_MAX_K * EC_MAX_K];
	uint8_t *src[EC_MAX_K];
	unsigned used = 0;
	for (unsigned i = 0; i < n && used < k; i++) {
		if (!(present & (1u << i)))
			continue;
		memcpy(b + used * k, code->gen + i * k, k);
		src[used++] = chunks[i];
	}
	if (gf_invert_matrix(b, inv, (int)k) != 0)
		return -EIO; /* not for a Cauchy generator: every K rows invert */
	/* Each missing chunk i is row i of the generator times D, so its
	 * coefficients over the K sources are gen[i] x B^-1. */
	uint8_t rows[EC_MAX_CHUNKS * EC_MAX_K];
	uint8_t *dst[EC_MAX_CHUNKS];
	unsigned nmissing = 0;
	for (unsigned i = 0; i < n; i++) {
		if (present & (1u << i))
			continue;
		uint8_t *row = rows + nmissing * k;
		for (unsigned j = 0; j < k; j++) {
			uint8_t c = 0;
			for (unsigned t = 0; t < k; t++)
				c ^= gf_mul(code->gen[i * k + t], inv[t * k + j]);
			row[j] = c;
		}
		dst[nmissing++] = chunks[i];
	}
	uint8_t tables[32 * EC_MAX_K * EC_MAX_CHUNKS];
	ec_init_tables((int)k, (int)nmissing, rows, tables);
	ec_encode_data((int)len, (int)k, (int)nmissing, tables, src, dst);
	return 0;
}

uint32_t ec_verify(const struct ec_code *code, size_t len, uint8_t *const *chunks,
		   uint8_t *scratch)
{
	uint32_t bad = 0;
	for (unsigned p = 0; p < code->m; p++) {
		uint8_t *out[1] = { scratch };
		ec_encode_data((int)len, (int)code->k, 1,
			       (uint8_t *)code->parity_tables + 32 * code->k * p,
			       (uint8_t **)chunks, out);
		if (memcmp(scratch, chunks[code->k + p], len) != 0)
			bad |= 1u << (code->k + p);
	}
	return bad;
}

/* The chunks of SET beyond its first K that differ from what those K
 * give (rebuilt into SCRATCH, N buffers of LEN bytes). */
static uint32_t ec_disagree(const struct ec_code *code, size_t len, uint8_t *const *chunks,
			    uint32_t set, uint8_t *scratch)
{
	unsigned n = code->k + code->m, used = 0;
	uint32_t basis = 0;
	uint8_t *tmp[EC_MAX_CHUNKS];
	for (unsigned i = 0; i < n; i++) {
		bool base = (set & (1u << i)) && used < code->k;
		used += base;
		basis |= (uint32_t)base << i;
		tmp[i] = base ? chunks[i] : scratch + (size_t)i * len;
	}
	if (ec_reconstruct(code, len, tmp, basis))
		return 0; /* (never: the caller gives K or more) */
	uint32_t differ = 0;
	for (unsigned i = 0; i < n; i++)
		if ((set & ~basis & (1u << i)) && memcmp(tmp[i], chunks[i], len) != 0)
			differ |= 1u << i;
	return differ;
}

int ec_check(const struct ec_code *code, size_t len, uint8_t *const *chunks, uint32_t present,
	     uint32_t *wrong)
{
	unsigned k = code->k, n = code->k + code->m;
	present &= (1u << n) - 1;
	unsigned have = (unsigned)__builtin_popcount(present);
	if (have < k + 1)
		return -EINVAL;
	uint8_t *scratch = malloc((size_t)n * len);
	if (!scratch)
		return -ENOMEM;
	*wrong = ec_disagree(code, len, chunks, present, scratch);
	/* With K + 1 others left, the one chunk whose absence leaves an
	 * agreeing stripe is the wrong one: those K + 1 are a codeword of
	 * an MDS code, which that chunk is not part of. */
	for (unsigned c = 0; *wrong && have >= k + 2 && c < n; c++) {
		if ((present & (1u << c)) &&
		    !ec_disagree(code, len, chunks, present & ~(1u << c), scratch)) {
			*wrong = 1u << c;
			break;
		}
	}
	free(scratch);
	return 0;
}
