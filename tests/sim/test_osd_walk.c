/* Beacons and reads cost no walk of the store (issue 21): a real monitor,
 * four OSDs and a client on the simulated network (the pg_sim harness);
 * once objects are written and the PGs clean, ten seconds of beacons and a
 * read of every object must leave every OSD's listing counters where they
 * were, and the per-PG counts the beacons carry must be those of the
 * objects the client left (written chunks included). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cluster/map.h"
#include "common/cluster/mon_proto.h"
#include "osd/osd.h"
#include "osd/pg.h"
#include "osd/store.h"
#include "pg_sim.h"

#define WALK_OBJECTS 48

struct walk_model {
	bool exists;
	uint32_t chunks; /* 4 KiB chunks written */
};

static struct object_id walk_oid(const struct pg_sim_run *r, uint32_t k)
{
	return (struct object_id){ r->pool, PG_SIM_INODE, k, 0, OBJECT_SHARD_WHOLE };
}

/* Writes every object (1 to 3 chunks, some twice, one at an offset) and
 * deletes every fifth. */
static void walk_fill(struct pg_sim_run *r, struct walk_model *m)
{
	uint8_t *buf = r->slots[0].buf;
	for (uint32_t k = 0; k < WALK_OBJECTS; k++) {
		uint32_t n = 1 + k % 3;
		pg_sim_fill(buf, k + 1, 0);
		struct bs_op op = { .type = BS_WRITE, .oid = walk_oid(r, k),
				    .offset = (k % 4 == 3) ? 8192 : 0, .len = n * 4096, .buf = buf };
		assert_int_equal(pg_sim_run_op(r, &op), 0);
		m[k] = (struct walk_model){ true, n };
		if (k % 7 == 0) { /* an overwrite of the first chunk adds nothing new */
			op = (struct bs_op){ .type = BS_WRITE, .oid = walk_oid(r, k), .offset = op.offset,
					     .len = 4096, .buf = buf };
			assert_int_equal(pg_sim_run_op(r, &op), 0);
		}
		if (k % 5 == 4) {
			op = (struct bs_op){ .type = BS_DELETE, .oid = walk_oid(r, k) };
			assert_int_equal(pg_sim_run_op(r, &op), 0);
			m[k] = (struct walk_model){ false, 0 };
		}
	}
}

static void walk_counters(struct pg_sim_run *r, uint64_t *listed, uint64_t *sorted)
{
	for (int i = 0; i < NOSD; i++) {
		struct store_usage u;
		store_usage(osd_store(r->osd[i]), &u);
		listed[i] = u.listed_objects;
		sorted[i] = u.pg_sorted_objects;
	}
}

/* What each OSD's beacon says of the PGs it is primary of, added up,
 * against the model. */
static void walk_check_beacons(struct pg_sim_run *r, const struct walk_model *m)
{
	uint64_t want_objects = 0, want_bytes = 0, objects = 0, bytes = 0;
	for (uint32_t k = 0; k < WALK_OBJECTS; k++) {
		want_objects += m[k].exists;
		want_bytes += m[k].chunks * 4096ull;
	}
	for (int i = 0; i < NOSD; i++) {
		struct mon_osd_stats st = { 0 };
		assert_int_equal(osd_pg_stats(r->osd[i], &st), 0);
		for (uint32_t k = 0; k < st.n_pgs; k++) {
			if (st.pgs[k].pool != r->pool)
				continue;
			objects += st.pgs[k].objects;
			bytes += st.pgs[k].bytes;
		}
		free(st.pgs);
	}
	assert_int_equal(objects, want_objects);
	assert_int_equal(bytes, want_bytes);
}

static void test_beacons_and_reads_walk_nothing(void **state)
{
	(void)state;
	struct pg_sim_run *r = pg_sim_start(21, true, 0, PG_SIM_PLAIN);
	assert_false(io_sim_run(r->w, io_sim_now_ns(r->w) + IO_SEC(60), pg_sim_all_clean, r));
	const struct map_pool *p = map_pool_by_name(bs_client_map(r->client), "rbd");
	assert_non_null(p);
	r->pool = p->id;
	struct walk_model m[WALK_OBJECTS];
	walk_fill(r, m);
	assert_false(io_sim_run(r->w, io_sim_now_ns(r->w) + IO_SEC(60), pg_sim_all_clean, r));
	walk_check_beacons(r, m);

	uint64_t listed[NOSD], sorted[NOSD], listed_after[NOSD], sorted_after[NOSD];
	walk_counters(r, listed, sorted);
	uint8_t *buf = r->slots[0].buf;
	for (uint32_t k = 0; k < WALK_OBJECTS; k++) {
		struct bs_op op = { .type = BS_READ, .oid = walk_oid(r, k), .len = 4096, .buf = buf };
		assert_int_equal(pg_sim_run_op(r, &op), m[k].exists ? 0 : -ENOENT);
	}
	/* Five beacons of every OSD (one each 2 s). */
	io_sim_run(r->w, io_sim_now_ns(r->w) + IO_SEC(10), NULL, NULL);
	walk_check_beacons(r, m);
	walk_counters(r, listed_after, sorted_after);
	for (int i = 0; i < NOSD; i++) {
		assert_int_equal(listed_after[i], listed[i]);
		assert_int_equal(sorted_after[i], sorted[i]);
	}
	pg_sim_stop(r);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_beacons_and_reads_walk_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
