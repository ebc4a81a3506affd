/* The placement cache of a cluster map (see map_placement.h).
 *
 * What a PG's OSDs depend on: the candidate OSDs (those that exist, are
 * in and weigh something: id, weight, host) and the pool's id, size and
 * pg_num. Up or down is not an input (map_pg_acting filters the cached
 * OSDs by the map's current up flags), so the commonest map change, an
 * OSD going down or coming back, keeps every entry. The candidates are
 * compared whenever the map changed (map_apply, or an epoch the cache has
 * not seen): any difference forgets every PG. A pool's table is checked
 * on each lookup against the pool's id, size and pg_num. Entries fill on
 * first lookup, so a map change costs nothing until a PG is asked for. */
#include "map_placement.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/placement.h"
#include "map.h"

/* One pool's PGs; slot I of the cache is M->pools[I]. */
struct pool_table {
	uint32_t id, size, pg_num; /* what the entries were computed for */
	uint8_t *n;		   /* per PG: OSDs found + 1; 0: not computed */
	uint32_t *osds;		   /* per PG: SIZE entries */
};

struct map_placement {
	bool dirty;
	uint64_t epoch; /* the epoch the candidates were checked at */
	struct placement_osd *cand, *scratch;
	size_t n_cand, cap_cand;
	struct pool_table *pools;
	uint32_t n_pools;
	uint64_t computed, resets;
};

size_t map_placement_candidates(const struct cluster_map *m, struct placement_osd *out)
{
	size_t n = 0;
	for (uint32_t i = 0; i < m->n_osds; i++) {
		const struct map_osd *o = &m->osds[i];
		if (o->exists && o->in && o->weight)
			out[n++] = (struct placement_osd){ i, o->weight, placement_domain_of(o->host) };
	}
	return n;
}

struct map_placement *map_placement_new(void)
{
	struct map_placement *pc = calloc(1, sizeof(*pc));
	if (pc)
		pc->dirty = true;
	return pc;
}

static void table_free(struct pool_table *t)
{
	free(t->n);
	free(t->osds);
	memset(t, 0, sizeof(*t));
}

void map_placement_free(struct map_placement *pc)
{
	if (!pc)
		return;
	for (uint32_t i = 0; i < pc->n_pools; i++)
		table_free(&pc->pools[i]);
	free(pc->pools);
	free(pc->cand);
	free(pc->scratch);
	free(pc);
}

void map_placement_changed(struct map_placement *pc)
{
	if (pc)
		pc->dirty = true;
}

void map_placement_counts(const struct map_placement *pc, uint64_t *computed, uint64_t *resets)
{
	*computed = pc ? pc->computed : 0;
	*resets = pc ? pc->resets : 0;
}

static bool same_candidates(const struct placement_osd *a, const struct placement_osd *b,
			    size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i].id != b[i].id || a[i].weight != b[i].weight || a[i].domain != b[i].domain)
			return false;
	return true;
}

/* Brings the candidates up to M's; a change forgets every PG. False when
 * out of memory (the caller computes without the cache). */
static bool refresh(struct map_placement *pc, const struct cluster_map *m)
{
	if (!pc->dirty && pc->epoch == m->epoch)
		return true;
	if (m->n_osds > pc->cap_cand) {
		struct placement_osd *a = malloc(m->n_osds * sizeof(*a));
		struct placement_osd *b = malloc(m->n_osds * sizeof(*b));
		if (!a || !b) {
			free(a);
			free(b);
			return false;
		}
		if (pc->n_cand)
			memcpy(a, pc->cand, pc->n_cand * sizeof(*a));
		free(pc->cand);
		free(pc->scratch);
		pc->cand = a, pc->scratch = b, pc->cap_cand = m->n_osds;
	}
	size_t n = map_placement_candidates(m, pc->scratch);
	if (n != pc->n_cand || !same_candidates(pc->scratch, pc->cand, n)) {
		struct placement_osd *t = pc->cand;
		pc->cand = pc->scratch, pc->scratch = t, pc->n_cand = n;
		for (uint32_t i = 0; i < pc->n_pools; i++)
			table_free(&pc->pools[i]);
		pc->resets++;
	}
	pc->dirty = false;
	pc->epoch = m->epoch;
	return true;
}

/* The table of pool P (at index SLOT of M's pools), made for its current
 * id, size and pg_num; NULL when out of memory. */
static struct pool_table *table_of(struct map_placement *pc, uint32_t slot,
				   const struct map_pool *p)
{
	if (slot >= pc->n_pools) {
		struct pool_table *t = realloc(pc->pools, (slot + 1) * sizeof(*t));
		if (!t)
			return NULL;
		memset(&t[pc->n_pools], 0, (slot + 1 - pc->n_pools) * sizeof(*t));
		pc->pools = t, pc->n_pools = slot + 1;
	}
	struct pool_table *t = &pc->pools[slot];
	uint32_t size = p->size < MAP_PG_ACTING_MAX ? p->size : MAP_PG_ACTING_MAX;
	if (t->n && t->id == p->id && t->size == size && t->pg_num == p->pg_num)
		return t;
	table_free(t);
	t->n = calloc(p->pg_num, 1);
	t->osds = malloc((size_t)p->pg_num * (size ? size : 1) * sizeof(*t->osds));
	if (!t->n || !t->osds) {
		table_free(t);
		return NULL;
	}
	t->id = p->id, t->size = size, t->pg_num = p->pg_num;
	return t;
}

/* P's index among M's pools, or -1. */
static long slot_of(const struct cluster_map *m, const struct map_pool *p)
{
	if (m->n_pools && p >= m->pools && p < m->pools + m->n_pools)
		return p - m->pools;
	for (uint32_t i = 0; i < m->n_pools; i++)
		if (m->pools[i].id == p->id)
			return i;
	return -1;
}

size_t map_placement_pg_osds(struct map_placement *pc, const struct cluster_map *m,
			     const struct map_pool *p, uint32_t pg, uint32_t *out, size_t cap)
{
	long slot = pg < p->pg_num ? slot_of(m, p) : -1;
	struct pool_table *t = slot >= 0 && refresh(pc, m) ? table_of(pc, (uint32_t)slot, p) : NULL;
	if (!t)
		return map_pg_osds_compute(m, p, pg, out, cap);
	uint32_t *osds = &t->osds[(size_t)pg * t->size];
	if (!t->n[pg]) {
		t->n[pg] = (uint8_t)(1 + placement_pg(pc->cand, pc->n_cand, p->id, pg, t->size,
						      true, osds));
		pc->computed++;
	}
	/* placement_pg takes OSDs in order: the first CAP of SIZE are what
	 * a lookup for CAP would find. */
	size_t n = (size_t)t->n[pg] - 1;
	if (n > cap)
		n = cap;
	memcpy(out, osds, n * sizeof(*out));
	return n;
}
