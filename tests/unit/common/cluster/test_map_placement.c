/* The map's placement cache (common/cluster/map_placement.c): over random
 * maps and random changes, every PG's cached OSDs and acting set equal a
 * fresh computation; a change placement does not depend on keeps the
 * entries, one it does depend on drops them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cluster/map.h"
#include "common/cluster/map_placement.h"

static uint64_t rng_state;

static uint32_t rnd(uint32_t below)
{
	rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (uint32_t)((rng_state >> 33) % below);
}

static void new_map(struct cluster_map *m)
{
	uint8_t fsid[16] = { 0x21 };
	struct map_mon mon = { "a", "127.0.0.1:6789" };
	assert_int_equal(map_init(m, fsid, &mon, 1), 0);
}

/* Applies C; whether it applied (random commands may be refused). */
static bool apply(struct cluster_map *m, struct map_cmd c)
{
	char err[256];
	return map_apply(m, &c, err, sizeof(err), NULL) == 0;
}

static struct map_cmd boot(uint32_t id, uint32_t hosts)
{
	struct map_cmd c = { .type = MAP_CMD_OSD_BOOT, .osd = id, .device_bytes = 1ULL << 40 };
	snprintf(c.addr, sizeof(c.addr), "127.0.0.1:%u", 6800 + id);
	snprintf(c.host, sizeof(c.host), "host%u", id % hosts);
	return c;
}

static struct map_cmd pool(const char *name, uint32_t size, uint32_t pg_num)
{
	struct map_cmd c = { .type = MAP_CMD_POOL_CREATE };
	snprintf(c.name, sizeof(c.name), "%s", name);
	c.pool = (struct map_pool){ .type = MAP_POOL_REPLICATED, .size = size, .min_size = 1,
				    .pg_num = pg_num, .block_size = 128 << 10 };
	return c;
}

/* Every PG of every pool of M: the cached answers equal fresh ones, for
 * the full capacity and for a smaller one. */
static void check_all(const struct cluster_map *m)
{
	for (uint32_t i = 0; i < m->n_pools; i++) {
		const struct map_pool *p = &m->pools[i];
		for (uint32_t pg = 0; pg < p->pg_num; pg++) {
			uint32_t want[MAP_PG_ACTING_MAX], got[MAP_PG_ACTING_MAX];
			size_t n = map_pg_osds_compute(m, p, pg, want, MAP_PG_ACTING_MAX);
			assert_int_equal(map_pg_osds(m, p, pg, got, MAP_PG_ACTING_MAX), n);
			assert_memory_equal(got, want, n * sizeof(*got));
			size_t k = 0;
			for (size_t j = 0; j < n; j++)
				if (m->osds[want[j]].up)
					want[k++] = want[j];
			assert_int_equal(map_pg_acting(m, p, pg, got, MAP_PG_ACTING_MAX), k);
			assert_memory_equal(got, want, k * sizeof(*got));
			size_t two = map_pg_osds_compute(m, p, pg, want, 2);
			assert_int_equal(map_pg_osds(m, p, pg, got, 2), two);
			assert_memory_equal(got, want, two * sizeof(*got));
		}
	}
}

/* One random change to M through map_apply. */
static void random_change(struct cluster_map *m, uint32_t *next_pool)
{
	uint32_t id = rnd(m->n_osds + 2);
	char name[32];
	switch (rnd(9)) {
	case 0: apply(m, boot(id, 2 + rnd(12))); break; /* new OSD, or one moving host */
	case 1: apply(m, (struct map_cmd){ .type = MAP_CMD_OSD_DOWN, .osd = id }); break;
	case 2: apply(m, (struct map_cmd){ .type = MAP_CMD_OSD_OUT, .osd = id }); break;
	case 3: apply(m, (struct map_cmd){ .type = MAP_CMD_OSD_IN, .osd = id }); break;
	case 4:
		apply(m, (struct map_cmd){ .type = MAP_CMD_OSD_REWEIGHT, .osd = id,
					   .weight = 1 + rnd(2 * MAP_WEIGHT_ONE) });
		break;
	case 5:
		apply(m, (struct map_cmd){ .type = MAP_CMD_OSD_DOWN, .osd = id });
		apply(m, (struct map_cmd){ .type = MAP_CMD_OSD_RM, .osd = id });
		break;
	case 6:
		snprintf(name, sizeof(name), "p%u", (*next_pool)++);
		apply(m, pool(name, 1 + rnd(4), 1u << rnd(8)));
		break;
	case 7:
		if (m->n_pools) {
			struct map_cmd c = { .type = MAP_CMD_POOL_RM };
			snprintf(c.name, sizeof(c.name), "%s", m->pools[rnd(m->n_pools)].name);
			apply(m, c);
		}
		break;
	default:
		if (m->n_pools) {
			const struct map_pool *p = &m->pools[rnd(m->n_pools)];
			struct map_cmd c = { .type = MAP_CMD_POOL_SET };
			snprintf(c.name, sizeof(c.name), "%s", p->name);
			bool size = rnd(2) || p->pg_num >= 256;
			snprintf(c.key, sizeof(c.key), "%s", size ? "size" : "pg_num");
			c.value = size ? 1 + rnd(4) : (uint64_t)p->pg_num * 2;
			apply(m, c);
		}
	}
}

static void test_random_maps_and_changes(void **state)
{
	(void)state;
	for (uint64_t seed = 1; seed <= 20; seed++) {
		rng_state = seed;
		struct cluster_map m;
		new_map(&m);
		uint32_t osds = 1 + rnd(100), hosts = 1 + rnd(12), next_pool = 0;
		for (uint32_t i = 0; i < osds; i++)
			assert_true(apply(&m, boot(i, hosts)));
		for (uint32_t i = 0; i < 3; i++) {
			char name[32];
			snprintf(name, sizeof(name), "p%u", next_pool++);
			assert_true(apply(&m, pool(name, 1 + rnd(4), 1u << rnd(8))));
		}
		check_all(&m);
		for (int step = 0; step < 60; step++) {
			random_change(&m, &next_pool);
			check_all(&m);
		}
		map_free(&m);
	}
}

static void counts(const struct cluster_map *m, uint64_t *computed, uint64_t *resets)
{
	map_placement_counts(m->placement, computed, resets);
}

/* A lookup computes once; changes placement ignores keep the entries;
 * the rest drop them. */
static void test_computed_once(void **state)
{
	(void)state;
	struct cluster_map m;
	new_map(&m);
	for (uint32_t i = 0; i < 12; i++)
		assert_true(apply(&m, boot(i, 4)));
	assert_true(apply(&m, pool("rbd", 3, 64)));
	const struct map_pool *p = map_pool_by_name(&m, "rbd");
	uint32_t out[MAP_PG_ACTING_MAX], first[MAP_PG_ACTING_MAX];
	uint64_t computed, resets, resets0;
	for (int round = 0; round < 3; round++)
		for (uint32_t pg = 0; pg < 64; pg++)
			map_pg_acting(&m, p, pg, out, MAP_PG_ACTING_MAX);
	counts(&m, &computed, &resets0);
	assert_int_equal(computed, 64);
	/* A volume, a down OSD and its return: same entries, acting follows. */
	map_pg_osds(&m, p, 5, first, MAP_PG_ACTING_MAX);
	assert_true(apply(&m, (struct map_cmd){ .type = MAP_CMD_VOLUME_CREATE, .name = "v",
						.pool_name = "rbd", .size = 1 << 20 }));
	assert_true(apply(&m, (struct map_cmd){ .type = MAP_CMD_OSD_DOWN, .osd = first[0] }));
	assert_int_equal(map_pg_acting(&m, p, 5, out, MAP_PG_ACTING_MAX), 2);
	assert_int_equal(out[0], first[1]);
	assert_true(apply(&m, boot(first[0], 4)));
	assert_int_equal(map_pg_acting(&m, p, 5, out, MAP_PG_ACTING_MAX), 3);
	assert_int_equal(out[0], first[0]);
	counts(&m, &computed, &resets);
	assert_int_equal(computed, 64);
	assert_int_equal(resets, resets0);
	/* Out: recomputed. */
	assert_true(apply(&m, (struct map_cmd){ .type = MAP_CMD_OSD_OUT, .osd = first[0] }));
	map_pg_osds(&m, p, 5, out, MAP_PG_ACTING_MAX);
	counts(&m, &computed, &resets);
	assert_int_equal(computed, 65);
	assert_int_equal(resets, resets0 + 1);
	check_all(&m);
	map_free(&m);
}

/* The other ways a map changes or is asked: decoded, edited by hand (with
 * map_placement_forget), a pool that is a copy, a PG past pg_num, a map
 * without a cache. */
static void test_other_paths(void **state)
{
	(void)state;
	struct cluster_map m, back = { 0 };
	new_map(&m);
	for (uint32_t i = 0; i < 9; i++)
		assert_true(apply(&m, boot(i, 3)));
	assert_true(apply(&m, pool("rbd", 3, 32)));
	check_all(&m);
	uint8_t *buf;
	size_t len;
	assert_int_equal(map_encode(&m, &buf, &len), 0);
	assert_int_equal(map_decode(buf, len, &back), 0);
	free(buf);
	assert_non_null(back.placement);
	check_all(&back);
	back.osds[4].weight = MAP_WEIGHT_ONE / 7; /* by hand */
	map_placement_forget(&back);
	check_all(&back);
	struct map_pool copy = back.pools[0];
	uint32_t want[MAP_PG_ACTING_MAX], got[MAP_PG_ACTING_MAX];
	for (uint32_t pg = 0; pg < 40; pg++) { /* 32..39: past pg_num */
		size_t n = map_pg_osds_compute(&back, &copy, pg, want, MAP_PG_ACTING_MAX);
		assert_int_equal(map_pg_osds(&back, &copy, pg, got, MAP_PG_ACTING_MAX), n);
		assert_memory_equal(got, want, n * sizeof(*got));
	}
	map_placement_free(back.placement);
	back.placement = NULL;
	check_all(&back);
	map_free(&back);
	map_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_maps_and_changes),
		cmocka_unit_test(test_computed_once),
		cmocka_unit_test(test_other_paths),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
