/* What the erasure code (common/ec.h, ISA-L) costs on this CPU, per
 * stripe of K data chunks of CHUNK bytes (default 128 KiB: a store block,
 * what a shard is planned to be), for 2+1, 4+2 and 8+3, beside CRC32C of the same
 * data (what every write already pays):
 *   - encode: the M parity chunks of a whole stripe;
 *   - rebuild 1 / rebuild M: every lost chunk from K others (degraded
 *     read, recovery), one data chunk lost and M data chunks lost;
 *   - verify: every parity chunk recomputed and compared (scrub);
 *   - update 4K: a 4 KiB partial write's parity by delta (read-modify-
 *     write), delta included.
 * Each figure is GB/s of the stripe's data (K x CHUNK; for update 4K, of
 * the 4 KiB written), over at least SECONDS of repeats.
 *
 *   ec_bench [--chunk SIZE] [--seconds S]
 *
 * A Markdown table on stdout. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "common/crc32c.h"
#include "common/ec.h"

static double min_seconds = 0.3;

struct run {
	const struct ec_code *c;
	size_t chunk;
	uint8_t *chunks[EC_MAX_CHUNKS];
	uint8_t *scratch;
	uint8_t fresh[4096];
	uint32_t present;
	uint32_t crc; /* what do_crc computed, so it is computed */
};

/* Repeats FN until MIN_SECONDS passed; returns GB/s of BYTES per call. */
static double rate(void (*fn)(struct run *), struct run *r, double bytes)
{
	uint64_t calls = 0, t0 = bench_now_ns(), t;
	do {
		for (int i = 0; i < 16; i++)
			fn(r);
		calls += 16;
		t = bench_now_ns();
	} while ((double)(t - t0) < min_seconds * 1e9);
	return bytes * (double)calls / ((double)(t - t0) / 1e9) / 1e9;
}

static void do_encode(struct run *r)
{
	ec_encode(r->c, r->chunk, r->chunks, r->chunks + r->c->k);
}

static void do_rebuild(struct run *r)
{
	if (ec_reconstruct(r->c, r->chunk, r->chunks, r->present)) {
		fprintf(stderr, "ec_bench: reconstruct refused a decodable stripe\n");
		exit(1);
	}
}

static void do_verify(struct run *r)
{
	if (ec_verify(r->c, r->chunk, r->chunks, r->scratch)) {
		fprintf(stderr, "ec_bench: a consistent stripe failed verification\n");
		exit(1);
	}
}

static void do_update(struct run *r)
{
	/* Chunk 0's first 4 KiB becomes FRESH: the stripe stays
	 * consistent whatever the number of calls. */
	uint8_t delta[4096];
	uint8_t *par[EC_MAX_M];
	for (unsigned p = 0; p < r->c->m; p++)
		par[p] = r->chunks[r->c->k + p];
	ec_delta(delta, r->chunks[0], r->fresh, sizeof(delta));
	ec_update(r->c, sizeof(delta), 0, delta, par);
	memcpy(r->chunks[0], r->fresh, sizeof(delta));
}

static void do_crc(struct run *r)
{
	for (unsigned i = 0; i < r->c->k; i++)
		r->crc ^= crc32c(0, r->chunks[i], r->chunk);
}

/* TEXT as seconds: a plain number above 0 and at most 600. */
static bool seconds_parse(const char *text, double *out)
{
	char *end;
	double v = strtod(text, &end);
	if (end == text || *end || !(v > 0 && v <= 600))
		return false;
	*out = v;
	return true;
}

static int usage(void)
{
	fprintf(stderr, "usage: ec_bench [--chunk SIZE] [--seconds S] (0 < S <= 600)\n");
	return 2;
}

int main(int argc, char **argv)
{
	size_t chunk = 128 << 10;
	static const struct option opts[] = {
		{ "chunk", required_argument, NULL, 'c' },
		{ "seconds", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 'c') {
			chunk = bench_size("ec_bench", "--chunk", optarg, 64ull << 20);
			if (chunk < 4096 || chunk % 4096) {
				fprintf(stderr, "ec_bench: --chunk takes whole 4K units, not %s\n",
					optarg);
				return 2;
			}
		} else if (ch != 's' || !seconds_parse(optarg, &min_seconds)) {
			return usage();
		}
	}
	if (optind < argc)
		return usage();
	printf("| code | chunk | encode GB/s | rebuild 1 GB/s | rebuild M GB/s | verify GB/s | "
	       "update 4K GB/s | CRC32C GB/s |\n");
	printf("|---|---:|---:|---:|---:|---:|---:|---:|\n");
	static const unsigned codes[][2] = { { 2, 1 }, { 4, 2 }, { 8, 3 } };
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		struct ec_code c;
		if (ec_code_init(&c, codes[i][0], codes[i][1]))
			return 1;
		struct run r = { .c = &c, .chunk = chunk };
		unsigned n = c.k + c.m;
		for (unsigned j = 0; j < n; j++) {
			if (posix_memalign((void **)&r.chunks[j], 64, chunk))
				return 1;
			for (size_t b = 0; b < chunk; b++)
				r.chunks[j][b] = (uint8_t)(b * 31 + j * 7 + (b >> 9));
		}
		if (posix_memalign((void **)&r.scratch, 64, chunk))
			return 1;
		memset(r.fresh, 0x5a, sizeof(r.fresh));
		double data = (double)c.k * (double)chunk;
		double enc = rate(do_encode, &r, data);
		double ver = rate(do_verify, &r, data);
		r.present = ((1u << n) - 1) & ~1u;
		double reb1 = rate(do_rebuild, &r, data);
		r.present = ((1u << n) - 1) & ~((1u << c.m) - 1);
		double rebm = rate(do_rebuild, &r, data);
		double upd = rate(do_update, &r, 4096);
		do_verify(&r); /* the updates kept the stripe consistent */
		double crc = rate(do_crc, &r, data);
		printf("| %u+%u | %zuK | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n", c.k, c.m,
		       chunk >> 10, enc, reb1, rebm, ver, upd, crc);
		for (unsigned j = 0; j < n; j++)
			free(r.chunks[j]);
		free(r.scratch);
	}
	return 0;
}
