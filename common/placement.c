/* Weighted rendezvous placement (see placement.h). Part of the on-wire
 * contract like the object hash: changing a constant here moves data, so
 * the unit test pins sample placements. */
#include "placement.h"

#include <stdlib.h>
#include <string.h>

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

uint64_t placement_domain_of(const char *name)
{
	uint64_t h = 0x6A09E667F3BCC908ULL; /* FNV-1a style, then mixed */
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 0x100000001B3ULL;
	return mix64(h);
}

uint64_t placement_neg_log2(uint64_t x)
{
	if (x == 0)
		x = 1;
	int k = 63 - __builtin_clzll(x); /* integer part of log2 */
	/* The mantissa in [1, 2) as Q2.62; each squaring yields one more
	 * fractional bit of log2. */
	uint64_t m = x << (62 - k), frac = 0;
	for (int bit = 31; bit >= 0; bit--) {
		m = (uint64_t)(((unsigned __int128)m * m) >> 62);
		if (m >= (1ULL << 63)) {
			frac |= 1ULL << bit;
			m >>= 1;
		}
	}
	uint64_t log2x = ((uint64_t)k << 32) | frac;
	return (48ULL << 32) - log2x;
}

/* The draw of OSD O for the PG whose seed is SEED: smaller wins. */
static uint64_t draw(const struct placement_osd *o, uint64_t seed)
{
	uint64_t h = mix64(seed ^ mix64((uint64_t)o->id + 0x9E3779B97F4A7C15ULL));
	uint64_t u = (h >> 16) + 1; /* 1 .. 2^48 */
	return (placement_neg_log2(u) << 16) / o->weight;
}

size_t placement_pg(const struct placement_osd *osds, size_t n, uint32_t pool, uint32_t pg,
		    size_t size, bool spread, uint32_t *out)
{
	uint64_t seed = mix64(((uint64_t)pool << 32) | pg);
	uint64_t stack[64], *draws = n <= 64 ? stack : malloc(n * sizeof(*draws));
	uint64_t domains[16];
	if (!draws)
		return 0;
	for (size_t i = 0; i < n; i++)
		draws[i] = osds[i].weight ? draw(&osds[i], seed) : UINT64_MAX;
	/* Take OSDs in (draw, id) order, skipping taken domains. SIZE is a
	 * replica count, so one pass over the candidates per copy. */
	size_t found = 0;
	size_t last = (size_t)-1;
	while (found < size && found < sizeof(domains) / sizeof(domains[0])) {
		size_t best = (size_t)-1;
		for (size_t i = 0; i < n; i++) {
			if (!osds[i].weight)
				continue;
			if (last != (size_t)-1 &&
			    (draws[i] < draws[last] || (draws[i] == draws[last] && osds[i].id <= osds[last].id)))
				continue; /* already passed: taken or skipped */
			if (best != (size_t)-1 &&
			    (draws[i] > draws[best] || (draws[i] == draws[best] && osds[i].id > osds[best].id)))
				continue;
			bool taken = false;
			for (size_t k = 0; spread && k < found && !taken; k++)
				taken = domains[k] == osds[i].domain;
			if (!taken)
				best = i;
		}
		if (best == (size_t)-1)
			break;
		domains[found] = osds[best].domain;
		out[found++] = osds[best].id;
		last = best;
	}
	if (draws != stack)
		free(draws);
	return found;
}
