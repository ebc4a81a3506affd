/* The placement cache a cluster map carries (struct cluster_map's
 * `placement`): each PG's OSDs as map_pg_osds gives them, computed on its
 * first lookup and kept until what placement depends on changes, so the
 * per-operation lookups of the OSDs and clients cost a copy instead of a
 * draw over every OSD and an allocation. Only map.c and tests use this
 * header; everyone else calls map_pg_osds / map_pg_acting. */
#ifndef BASALT_CLUSTER_MAP_PLACEMENT_H
#define BASALT_CLUSTER_MAP_PLACEMENT_H

#include <stddef.h>
#include <stdint.h>

struct cluster_map;
struct map_pool;
struct map_placement;
struct placement_osd;

/* The placement candidates of M (common/placement.h): the OSDs that
 * exist, are in and weigh something, by id. OUT holds M->n_osds; returns
 * how many. */
size_t map_placement_candidates(const struct cluster_map *m, struct placement_osd *out);

/* An empty cache, or NULL when out of memory (the map then computes every
 * lookup: slower, same answers). Caller frees with map_placement_free. */
struct map_placement *map_placement_new(void);
void map_placement_free(struct map_placement *pc);

/* The map PC belongs to changed in place (map_apply): the next lookup
 * checks the inputs again. PC may be NULL. */
void map_placement_changed(struct map_placement *pc);

/* map_pg_osds of M through PC (PC belongs to M). P is one of M's pools;
 * PG below its pg_num, else the answer is computed and not kept. */
size_t map_placement_pg_osds(struct map_placement *pc, const struct cluster_map *m,
			     const struct map_pool *p, uint32_t pg, uint32_t *out, size_t cap);

/* How many PG placements PC computed, and how many input checks found
 * them out of date, since it was made: what the unit test watches. */
void map_placement_counts(const struct map_placement *pc, uint64_t *computed /* out */,
			  uint64_t *resets /* out */);

#endif
