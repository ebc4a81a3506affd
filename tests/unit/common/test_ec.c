/* Erasure coding (common/ec.h): the code is the systematic Cauchy code
 * the header says, its parity matches a GF(2^8) computation written here
 * independently of ISA-L, and every pattern of at most M lost chunks of
 * 2+1, 4+2 and 8+3 stripes is rebuilt byte for byte, while M+1 lost
 * chunks are refused with nothing written. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>

#include "common/ec.h"

static const unsigned configs[][2] = { { 2, 1 }, { 4, 2 }, { 8, 3 } };
/* The edges of what ec.h takes, at one short length. */
static const unsigned edge_configs[][2] = { { 1, 1 }, { 1, EC_MAX_M }, { EC_MAX_K, 1 },
					    { 12, 4 }, { EC_MAX_K, EC_MAX_M } };
/* A whole 4 KiB chunk, a short one, and one that is not a multiple of
 * the SIMD width. */
static const size_t lens[] = { 4096, 64, 1000 };

/* GF(2^8) with the polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11d), by
 * shift and add. */
static uint8_t ref_mul(uint8_t a, uint8_t b)
{
	uint8_t p = 0;
	while (b) {
		if (b & 1)
			p ^= a;
		b >>= 1;
		a = (uint8_t)((a << 1) ^ (a & 0x80 ? 0x1d : 0));
	}
	return p;
}

static uint8_t ref_inv(uint8_t a)
{
	for (unsigned x = 1; x < 256; x++)
		if (ref_mul(a, (uint8_t)x) == 1)
			return (uint8_t)x;
	return 0;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint8_t rnd8(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint8_t)rng;
}

struct stripe {
	unsigned n;
	size_t len;
	uint8_t *chunk[EC_MAX_CHUNKS];
};

static void stripe_alloc(struct stripe *s, unsigned n, size_t len)
{
	s->n = n;
	s->len = len;
	for (unsigned i = 0; i < n; i++) {
		s->chunk[i] = malloc(len);
		assert_non_null(s->chunk[i]);
	}
}

static void stripe_free(struct stripe *s)
{
	for (unsigned i = 0; i < s->n; i++)
		free(s->chunk[i]);
}

/* Random data chunks and their parity. */
static void stripe_make(const struct ec_code *c, struct stripe *s, size_t len)
{
	stripe_alloc(s, c->k + c->m, len);
	for (unsigned i = 0; i < c->k; i++)
		for (size_t b = 0; b < len; b++)
			s->chunk[i][b] = rnd8();
	ec_encode(c, len, s->chunk, s->chunk + c->k);
}

static void test_parameters(void **state)
{
	(void)state;
	struct ec_code c;
	assert_int_equal(ec_code_init(&c, 0, 1), -EINVAL);
	assert_int_equal(ec_code_init(&c, 2, 0), -EINVAL);
	assert_int_equal(ec_code_init(&c, EC_MAX_K + 1, 1), -EINVAL);
	assert_int_equal(ec_code_init(&c, 2, EC_MAX_M + 1), -EINVAL);
	assert_int_equal(ec_code_init(&c, EC_MAX_K, EC_MAX_M), 0);
	unsigned k = 0, m = 0;
	assert_int_equal(ec_parse("2+1", &k, &m), 0);
	assert_true(k == 2 && m == 1);
	assert_int_equal(ec_parse("8+3", &k, &m), 0);
	assert_true(k == 8 && m == 3);
	assert_int_equal(ec_parse("16+4", &k, &m), 0);
	assert_true(k == 16 && m == 4);
	static const char *bad[] = { "",     "2",    "2+",   "+1",   "0+1",
				     "2+0",  "2+1x", "17+1", "2+5",  " 2+1",
				     "2 +1", "a+b",  "2++1", "-2+1", "02+1",
				     "2+01", "99999999999999999999+1", "4294967298+1" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		k = m = 99;
		assert_int_equal(ec_parse(bad[i], &k, &m), -EINVAL);
		assert_true(k == 99 && m == 99); /* untouched */
	}
	assert_int_equal(ec_parse(NULL, &k, &m), -EINVAL);
}

/* The generator is [I; C] with C[i][j] = 1 / (i ^ j) (rows i = k..k+m-1),
 * and the parity ISA-L computes is that matrix times the data. */
static void test_parity_matches_reference(void **state)
{
	(void)state;
	for (size_t ci = 0; ci < sizeof(configs) / sizeof(configs[0]); ci++) {
		struct ec_code c;
		unsigned k = configs[ci][0], m = configs[ci][1];
		assert_int_equal(ec_code_init(&c, k, m), 0);
		for (unsigned i = 0; i < k + m; i++)
			for (unsigned j = 0; j < k; j++)
				assert_int_equal(c.gen[i * k + j],
						 i < k ? (i == j) : ref_inv((uint8_t)(i ^ j)));
		for (size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++) {
			struct stripe s;
			stripe_make(&c, &s, lens[li]);
			for (unsigned p = 0; p < m; p++)
				for (size_t b = 0; b < s.len; b++) {
					uint8_t want = 0;
					for (unsigned j = 0; j < k; j++)
						want ^= ref_mul(c.gen[(k + p) * k + j], s.chunk[j][b]);
					assert_int_equal(s.chunk[k + p][b], want);
				}
			stripe_free(&s);
		}
	}
}

/* Calls FN for every set of chunk indices below N of size SIZE. */
static void for_each_subset(unsigned n, unsigned size, void (*fn)(uint32_t set, void *arg),
			    void *arg)
{
	for (uint32_t set = 0; set < (1u << n); set++)
		if ((unsigned)__builtin_popcount(set) == size)
			fn(set, arg);
}

struct pattern_ctx {
	const struct ec_code *c;
	const struct stripe *orig;
	struct stripe *work;
	unsigned tried;
};

static void erase(struct pattern_ctx *x, uint32_t lost)
{
	for (unsigned i = 0; i < x->work->n; i++) {
		if (lost & (1u << i))
			memset(x->work->chunk[i], 0xa5, x->work->len);
		else
			memcpy(x->work->chunk[i], x->orig->chunk[i], x->work->len);
	}
}

static void rebuild_one(uint32_t lost, void *arg)
{
	struct pattern_ctx *x = arg;
	unsigned n = x->c->k + x->c->m;
	erase(x, lost);
	/* Bits above the stripe's chunks mean nothing. */
	uint32_t present = (((1u << n) - 1) & ~lost) | (1u << 31);
	assert_int_equal(ec_reconstruct(x->c, x->work->len, x->work->chunk, present), 0);
	for (unsigned i = 0; i < n; i++)
		assert_memory_equal(x->work->chunk[i], x->orig->chunk[i], x->work->len);
	x->tried++;
}

static void refuse_one(uint32_t lost, void *arg)
{
	struct pattern_ctx *x = arg;
	unsigned n = x->c->k + x->c->m;
	erase(x, lost);
	/* Bits above the stripe's chunks count for nothing. */
	assert_int_equal(ec_reconstruct(x->c, x->work->len, x->work->chunk,
					(((1u << n) - 1) & ~lost) | (1u << 31) | (1u << n)),
			 -EIO);
	for (unsigned i = 0; i < n; i++) {
		if (!(lost & (1u << i)))
			assert_memory_equal(x->work->chunk[i], x->orig->chunk[i], x->work->len);
		else
			for (size_t b = 0; b < x->work->len; b++)
				assert_int_equal(x->work->chunk[i][b], 0xa5); /* nothing written */
	}
	x->tried++;
}

/* Every pattern of at most M lost chunks of the K+M code, LEN bytes a
 * chunk, rebuilt; every pattern of M+1 refused. */
static void every_pattern(unsigned k, unsigned m, size_t len)
{
	struct ec_code c;
	unsigned n = k + m;
	assert_int_equal(ec_code_init(&c, k, m), 0);
	struct stripe orig, work;
	stripe_make(&c, &orig, len);
	stripe_alloc(&work, n, len);
	struct pattern_ctx x = { &c, &orig, &work, 0 };
	unsigned want = 0, binom = 1;
	for (unsigned e = 0; e <= m; e++) {
		for_each_subset(n, e, rebuild_one, &x);
		want += binom; /* C(n, e) */
		binom = binom * (n - e) / (e + 1);
	}
	assert_int_equal(x.tried, want);
	x.tried = 0;
	for_each_subset(n, m + 1, refuse_one, &x);
	assert_int_equal(x.tried, binom);
	stripe_free(&orig);
	stripe_free(&work);
}

static void test_every_erasure_pattern(void **state)
{
	(void)state;
	for (size_t ci = 0; ci < sizeof(configs) / sizeof(configs[0]); ci++)
		for (size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++)
			every_pattern(configs[ci][0], configs[ci][1], lens[li]);
	for (size_t ci = 0; ci < sizeof(edge_configs) / sizeof(edge_configs[0]); ci++)
		every_pattern(edge_configs[ci][0], edge_configs[ci][1], 64);
}

/* A consistent stripe verifies; a byte changed in a parity chunk names
 * that chunk; one changed in a data chunk names every parity chunk (each
 * parity row has no zero coefficient). */
static void test_verify(void **state)
{
	(void)state;
	for (size_t ci = 0; ci < sizeof(configs) / sizeof(configs[0]); ci++) {
		struct ec_code c;
		unsigned k = configs[ci][0], m = configs[ci][1];
		assert_int_equal(ec_code_init(&c, k, m), 0);
		struct stripe s;
		stripe_make(&c, &s, 4096);
		uint8_t *scratch = malloc(4096);
		assert_non_null(scratch);
		uint32_t parity = ((1u << (k + m)) - 1) & ~((1u << k) - 1);
		assert_int_equal(ec_verify(&c, 4096, s.chunk, scratch), 0);
		for (unsigned i = 0; i < k + m; i++) {
			s.chunk[i][777] ^= 0x10;
			assert_int_equal(ec_verify(&c, 4096, s.chunk, scratch),
					 i < k ? parity : 1u << i);
			s.chunk[i][777] ^= 0x10;
		}
		assert_int_equal(ec_verify(&c, 4096, s.chunk, scratch), 0);
		free(scratch);
		stripe_free(&s);
	}
}

/* ec_check, a deep scrub's judge: an agreeing stripe has no wrong
 * chunk, whatever chunks are left out (down to K + 1); one chunk changed
 * is named exactly when K + 2 or more are present, whichever it is and
 * with any one other chunk absent as long as that leaves K + 2; with
 * K + 1 present the first K win; fewer than K + 1 are refused. */
static void test_check(void **state)
{
	(void)state;
	for (size_t ci = 0; ci < sizeof(configs) / sizeof(configs[0]); ci++) {
		struct ec_code c;
		unsigned k = configs[ci][0], m = configs[ci][1], n = k + m;
		uint32_t all = (1u << n) - 1, wrong = 99;
		assert_int_equal(ec_code_init(&c, k, m), 0);
		struct stripe s;
		stripe_make(&c, &s, 4096);
		assert_int_equal(ec_check(&c, 4096, s.chunk, all, &wrong), 0);
		assert_int_equal(wrong, 0);
		for (unsigned i = 0; i < n; i++) {
			s.chunk[i][4095] ^= 0x80;
			for (int absent = -1; absent < (int)n; absent++) {
				uint32_t present = absent < 0 ? all : all & ~(1u << absent);
				unsigned have = (unsigned)__builtin_popcount(present);
				if (have < k + 1) {
					assert_int_equal(ec_check(&c, 4096, s.chunk, present, &wrong),
							 -EINVAL);
					continue;
				}
				assert_int_equal(ec_check(&c, 4096, s.chunk, present, &wrong), 0);
				if (absent == (int)i) {
					assert_int_equal(wrong, 0); /* the changed one is gone */
					continue;
				}
				if (have >= k + 2) {
					assert_int_equal(wrong, 1u << i);
					continue;
				}
				/* K + 1 present: the first K win. */
				uint32_t first = 0;
				for (unsigned j = 0, used = 0; j < n && used < k; j++)
					if (present & (1u << j)) {
						first |= 1u << j;
						used++;
					}
				assert_int_equal(wrong, (first & (1u << i)) ? present & ~first
									    : 1u << i);
			}
			s.chunk[i][4095] ^= 0x80;
		}
		uint32_t k_only = (1u << k) - 1;
		assert_int_equal(ec_check(&c, 4096, s.chunk, k_only, &wrong), -EINVAL);
		stripe_free(&s);
	}
}

/* A partial write's parity by delta (the old bytes of the one chunk and
 * the old parity) equals the parity of the new stripe encoded whole: for
 * every data chunk, at the start, in the middle and at the end of it. */
static void test_update_by_delta(void **state)
{
	(void)state;
	for (size_t ci = 0; ci < sizeof(configs) / sizeof(configs[0]); ci++) {
		struct ec_code c;
		unsigned k = configs[ci][0], m = configs[ci][1];
		assert_int_equal(ec_code_init(&c, k, m), 0);
		struct stripe s, whole;
		stripe_make(&c, &s, 4096);
		stripe_alloc(&whole, k + m, 4096);
		uint8_t delta[4096], fresh[4096];
		static const size_t ranges[][2] = { { 0, 512 }, { 1000, 37 }, { 3584, 512 },
						   { 0, 4096 } };
		for (unsigned i = 0; i < k; i++) {
			for (size_t r = 0; r < sizeof(ranges) / sizeof(ranges[0]); r++) {
				size_t off = ranges[r][0], len = ranges[r][1];
				for (size_t b = 0; b < len; b++)
					fresh[b] = rnd8();
				ec_delta(delta, s.chunk[i] + off, fresh, len);
				memcpy(s.chunk[i] + off, fresh, len);
				uint8_t *par[EC_MAX_M];
				for (unsigned p = 0; p < m; p++)
					par[p] = s.chunk[k + p] + off;
				ec_update(&c, len, i, delta, par);
				for (unsigned j = 0; j < k; j++)
					memcpy(whole.chunk[j], s.chunk[j], 4096);
				ec_encode(&c, 4096, whole.chunk, whole.chunk + k);
				for (unsigned p = 0; p < m; p++)
					assert_memory_equal(s.chunk[k + p], whole.chunk[k + p], 4096);
			}
		}
		stripe_free(&s);
		stripe_free(&whole);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parameters),
		cmocka_unit_test(test_parity_matches_reference),
		cmocka_unit_test(test_every_erasure_pattern),
		cmocka_unit_test(test_verify),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_update_by_delta),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
