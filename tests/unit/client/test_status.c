/* The health rules of the status (client/status.c), over a status
 * assembled by hand: a healthy cluster is OK, each rule's reason and
 * level, the worst level wins and leads the line, and a flood of
 * reasons is cut with a count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/status.h"

#define N_OSDS 3

static void apply(struct cluster_map *m, struct map_cmd c)
{
	char err[256] = "";
	assert_int_equal(map_apply(m, &c, err, sizeof(err), NULL), 0);
}

/* Three monitors, all in quorum; three OSDs up; pool rbd with 4 PGs,
 * all active+clean, beacons from every OSD. */
static struct bs_status *healthy(void)
{
	struct bs_status *st = calloc(1, sizeof(*st));
	uint8_t fsid[16] = { 1 };
	struct map_mon mons[3] = { { "a", "127.0.0.1:1" }, { "b", "127.0.0.1:2" },
				   { "c", "127.0.0.1:3" } };
	assert_non_null(st);
	assert_int_equal(map_init(&st->map, fsid, mons, 3), 0);
	for (uint32_t i = 0; i < N_OSDS; i++) {
		struct map_cmd c = { .type = MAP_CMD_OSD_BOOT, .osd = i, .device_bytes = 1ULL << 30 };
		snprintf(c.addr, sizeof(c.addr), "127.0.0.1:%u", 6800 + i);
		snprintf(c.host, sizeof(c.host), "h%u", i);
		apply(&st->map, c);
	}
	struct map_cmd pool = { .type = MAP_CMD_POOL_CREATE, .name = "rbd" };
	pool.pool = (struct map_pool){ .type = MAP_POOL_REPLICATED, .size = 3, .min_size = 2,
				       .pg_num = 4, .block_size = 128 << 10 };
	apply(&st->map, pool);
	st->n_members = 3;
	for (int i = 0; i < 3; i++)
		snprintf(st->members[i].name, sizeof(st->members[i].name), "%c", 'a' + i);
	snprintf(st->leader, sizeof(st->leader), "a");
	st->quorum_mask = 7;
	st->have_pgs = true;
	st->pgs.n_pgs = 4;
	st->pgs.pgs = calloc(4, sizeof(*st->pgs.pgs));
	st->pgs.n_osds = N_OSDS;
	st->pgs.osds = calloc(N_OSDS, sizeof(*st->pgs.osds));
	assert_non_null(st->pgs.pgs);
	assert_non_null(st->pgs.osds);
	for (uint32_t i = 0; i < 4; i++)
		st->pgs.pgs[i] = (struct mon_pg_stat){ .pool = 1, .pg = i,
						       .state = MON_PG_ACTIVE | MON_PG_CLEAN,
						       .objects = 10, .bytes = 1000 };
	for (uint32_t i = 0; i < N_OSDS; i++)
		st->pgs.osds[i] = (struct mon_osd_usage){ .osd = i, .data_bytes = 1000,
							  .data_avail_bytes = 900 };
	return st;
}

static const char *line(const struct bs_status *st)
{
	static char buf[8192];
	return bs_status_health_line(st, buf, sizeof(buf));
}

static void test_healthy_is_ok(void **state)
{
	(void)state;
	struct bs_status *st = healthy();
	bs_status_compute(st);
	assert_int_equal(st->health, BS_HEALTH_OK);
	assert_int_equal(st->n_reasons, 0);
	assert_string_equal(line(st), "OK");
	assert_int_equal(st->sum.objects, 40);
	assert_int_equal(st->sum.stored_bytes, 4000);
	bs_status_free(st);
	/* An EC 2+1 pool's primaries hold one chunk of two: it stores twice
	 * that, and writes 1.5 raw bytes per byte. */
	st = healthy();
	struct map_cmd ec = { .type = MAP_CMD_POOL_CREATE, .name = "ec" };
	ec.pool = (struct map_pool){ .type = MAP_POOL_EC, .ec_k = 2, .ec_m = 1, .pg_num = 4,
				     .block_size = 256 << 10 };
	apply(&st->map, ec);
	const struct map_pool *ecp = map_pool_by_name(&st->map, "ec");
	for (uint32_t i = 0; i < 4; i++)
		st->pgs.pgs[i].pool = ecp->id;
	bs_status_compute(st);
	assert_int_equal(st->sum.stored_bytes, 8000);
	assert_true(map_pool_raw_per_byte(ecp) == 1.5);
	assert_true(map_pool_raw_per_byte(map_pool_by_name(&st->map, "rbd")) == 3);
	assert_int_equal(map_pool_raw_bytes(ecp, 64 << 20), 96 << 20);
	assert_int_equal(map_pool_raw_bytes(map_pool_by_name(&st->map, "rbd"), 64 << 20), 192 << 20);
	assert_int_equal(st->sum.n_states, 1);
	assert_int_equal(st->sum.counts[0], 4);
	assert_int_equal(st->osds_total, 3);
	assert_int_equal(st->osds_up, 3);
	assert_int_equal(st->capacity_bytes, 3ULL << 30);
	bs_status_free(st);
}

/* A warning found first still comes after an error found later, and
 * the line's level is the worst. */
static void test_worst_first(void **state)
{
	(void)state;
	struct bs_status *st = healthy();
	st->quorum_mask = 3; /* c out of quorum: WARN */
	st->map.osds[1].full = MAP_FULL_FULL;
	st->pgs.osds[1].data_avail_bytes = 40;
	bs_status_compute(st);
	assert_int_equal(st->health, BS_HEALTH_ERR);
	assert_int_equal(st->n_reasons, 2);
	assert_int_equal(st->reasons[0].level, BS_HEALTH_ERR);
	assert_string_equal(line(st), "ERR: 1 OSD full: osd.1 (96%); client writes are refused "
				      "until space is freed; 1 of 3 monitors out of quorum");
	bs_status_free(st);
}

static void test_each_rule(void **state)
{
	(void)state;
	struct bs_status *st = healthy();
	st->stale = true;
	st->pgs.pgs[0].state = MON_PG_DOWN;
	st->pgs.pgs[1].state = MON_PG_INCOMPLETE;
	st->pgs.pgs[2].state = MON_PG_PEERING;
	st->pgs.pgs[3].state = MON_PG_ACTIVE | MON_PG_DEGRADED;
	st->pgs.pgs[3].degraded = 5;
	st->pgs.pgs[3].bad_repaired = 2;
	st->map.osds[2].up = false;
	st->map.osds[0].full = MAP_FULL_NEAR;
	st->map.pools[0].quota_full = true;
	st->map.pools[0].max_bytes = 1 << 20;
	st->pgs.osds[0].slow_ops = 3;
	st->pgs.osds[0].slow_oldest_ms = 42000;
	snprintf(st->pgs.osds[0].slow_what, sizeof(st->pgs.osds[0].slow_what), "osd.2");
	bs_status_compute(st);
	assert_int_equal(st->health, BS_HEALTH_ERR);
	assert_string_equal(line(st),
			    "ERR: no monitor quorum; 1 PG down (no OSD of theirs is up); 1 PG "
			    "incomplete (waiting for an OSD that holds their newest data); 1 PG "
			    "inactive (I/O waits); 1 PG degraded (5 object copies missing); 1 "
			    "OSD down: osd.2; 2 bad copies found and repaired since the OSDs "
			    "started (a disk may be failing: see the OSD logs); 1 OSD nearfull: "
			    "osd.0 (10%) (pools rbd); pool 'rbd' reached its quota (max_bytes 1 "
			    "MiB): writes to it are refused; 3 slow ops on osd.0, oldest 42 s "
			    "(waiting for osd.2)");
	assert_int_equal(st->sum.n_states, 4);
	assert_int_equal(st->osds_up, 2);
	bs_status_free(st);
}

static void test_unfound_named(void **state)
{
	(void)state;
	struct bs_status *st = healthy();
	st->pgs.pgs[2].unfound = 1;
	st->pgs.osds[0].n_unfound = 1;
	st->pgs.osds[0].unfound[0] = (struct object_id){ 1, 0x200, 4, 0, OBJECT_SHARD_WHOLE };
	bs_status_compute(st);
	assert_int_equal(st->health, BS_HEALTH_ERR);
	char want[256];
	snprintf(want, sizeof(want),
		 "ERR: 1 object in 1 PG has no good copy left (its reads fail): 200:4 (pg "
		 "1.%x); basalt pg ls POOL --inconsistent",
		 object_pg(&st->pgs.osds[0].unfound[0], 4));
	assert_string_equal(line(st), want);
	bs_status_free(st);
}

/* More reasons than are kept: the rest are counted, never overflow. */
static void test_many_reasons_counted(void **state)
{
	(void)state;
	struct bs_status *st = healthy();
	free(st->pgs.osds);
	st->pgs.n_osds = 40;
	st->pgs.osds = calloc(40, sizeof(*st->pgs.osds));
	assert_non_null(st->pgs.osds);
	for (uint32_t i = 0; i < 40; i++)
		st->pgs.osds[i] = (struct mon_osd_usage){ .osd = i, .slow_ops = 1 };
	bs_status_compute(st);
	assert_int_equal(st->n_reasons, BS_HEALTH_REASONS_MAX);
	assert_int_equal(st->n_dropped, 40 - BS_HEALTH_REASONS_MAX);
	assert_non_null(strstr(line(st), "; and 8 more"));
	assert_int_equal(strncmp(line(st), "WARN: 1 slow op on osd.0,", 25), 0);
	bs_status_free(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_healthy_is_ok),
		cmocka_unit_test(test_worst_first),
		cmocka_unit_test(test_each_rule),
		cmocka_unit_test(test_unfound_named),
		cmocka_unit_test(test_many_reasons_counted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
