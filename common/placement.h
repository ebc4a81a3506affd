/* Placement: which OSDs hold a placement group, computed the same way by
 * every process from the cluster map alone.
 *
 * Weighted rendezvous hashing ("straw2"): for PG (pool, pg), every
 * candidate OSD draws -log2(u) / weight with u a hash of (pool, pg, osd)
 * in (0, 1]; the smallest draw wins. The OSDs are taken in draw order,
 * skipping one whose failure domain (host) already holds a copy, until
 * SIZE are chosen. Hence:
 *   - an OSD's share of first choices is its share of the weight;
 *   - adding or removing an OSD moves only the PGs it enters or leaves:
 *     every other OSD's draw for every PG is unchanged;
 *   - the result is a pure function of its inputs, in integer arithmetic
 *     (no libm), so every machine computes the same placement.
 * Candidates are the OSDs that are "in" with a nonzero weight; whether
 * they are up decides only which of them act (the caller's business). */
#ifndef BASALT_COMMON_PLACEMENT_H
#define BASALT_COMMON_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct placement_osd {
	uint32_t id;
	uint32_t weight; /* 16.16 fixed point; 0: never chosen */
	uint64_t domain; /* failure domain (host) identity, e.g. placement_domain_of() */
};

/* A stable 64-bit identity for a failure domain name. */
uint64_t placement_domain_of(const char *name);

/* Fills OUT (capacity SIZE) with the OSDs of PG (POOL, PG), best first,
 * at most one per domain when SPREAD; returns how many were found (fewer
 * than SIZE when there are not enough domains or OSDs). */
size_t placement_pg(const struct placement_osd *osds, size_t n, uint32_t pool, uint32_t pg,
		    size_t size, bool spread, uint32_t *out);

/* -log2(x / 2^48) in 32.32 fixed point, for x in [1, 2^48]. Exposed for
 * its unit test. */
uint64_t placement_neg_log2(uint64_t x);

#endif
