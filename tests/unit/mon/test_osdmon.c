/* OSD failure detection rules, with time driven by the test: beacon grace,
 * reports from two other hosts (not one, not the same host, not stale),
 * down-out after the interval counted from the recorded mark-down, and
 * flap damping that grows with repeated mark-downs. */
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
#include "mon/osdmon.h"

/* osd.0, osd.1 on host a; osd.2 on b; osd.3 on c. */
static void boot_cluster(struct cluster_map *m)
{
	uint8_t fsid[16] = { 1 };
	struct map_mon mon = { "a", "127.0.0.1:1" };
	assert_int_equal(map_init(m, fsid, &mon, 1), 0);
	const char *hosts[] = { "a", "a", "b", "c" };
	for (uint32_t i = 0; i < 4; i++) {
		struct map_cmd c = { .type = MAP_CMD_OSD_BOOT, .osd = i, .device_bytes = 1 << 30 };
		snprintf(c.addr, sizeof(c.addr), "127.0.0.1:%u", 7000 + i);
		snprintf(c.host, sizeof(c.host), "%s", hosts[i]);
		assert_int_equal(map_apply(m, &c, NULL, 0, NULL), 0);
	}
}

static struct osdmon *new_osdmon(void)
{
	struct osdmon *om = malloc(sizeof(*om));
	assert_non_null(om);
	struct osdmon_params p;
	osdmon_params_default(&p);
	p.beacon_grace_ms = 10000;
	p.report_grace_ms = 5000;
	p.down_out_interval_ms = 60000;
	p.flap_window_ms = 100000;
	p.flap_base_ms = 1000;
	p.flap_max_ms = 5000;
	osdmon_init(om, &p);
	return om;
}

/* Runs a tick and applies what it proposes; returns how many. */
static size_t tick_apply(struct osdmon *om, struct cluster_map *m, uint64_t now, uint64_t wall,
			 struct map_cmd *cmds)
{
	size_t n = osdmon_tick(om, m, now, wall, cmds, 16);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(map_apply(m, &cmds[i], NULL, 0, NULL), 0);
	return n;
}

static void beat_all(struct osdmon *om, const struct cluster_map *m, uint64_t now)
{
	for (uint32_t i = 0; i < m->n_osds; i++)
		if (m->osds[i].up)
			osdmon_beacon(om, i, now);
}

static void test_beacon_grace(void **state)
{
	(void)state;
	struct cluster_map m;
	struct map_cmd cmds[16];
	boot_cluster(&m);
	struct osdmon *om = new_osdmon();
	/* The first tick starts everyone's grace, even without beacons. */
	assert_int_equal(tick_apply(om, &m, 1000, 50000, cmds), 0);
	for (uint64_t t = 2000; t <= 11000; t += 1000) {
		osdmon_beacon(om, 0, t);
		osdmon_beacon(om, 1, t);
		osdmon_beacon(om, 3, t);
		assert_int_equal(tick_apply(om, &m, t, 50000 + t, cmds), 0);
	}
	/* osd.2 has been silent since 1000: past 10 s of grace it goes down. */
	osdmon_beacon(om, 0, 11001);
	osdmon_beacon(om, 1, 11001);
	osdmon_beacon(om, 3, 11001);
	assert_int_equal(tick_apply(om, &m, 11001, 61001, cmds), 1);
	assert_int_equal(cmds[0].type, MAP_CMD_OSD_DOWN);
	assert_int_equal(cmds[0].osd, 2);
	assert_int_equal(cmds[0].flag, MAP_REASON_BEACONS);
	assert_false(m.osds[2].up);
	assert_int_equal(m.osds[2].down_since_ms, 61001);
	free(om);
	map_free(&m);
}

static void test_reports_need_two_other_hosts(void **state)
{
	(void)state;
	struct cluster_map m;
	struct map_cmd cmds[16];
	boot_cluster(&m);
	struct osdmon *om = new_osdmon();
	uint64_t t = 1000;
	beat_all(om, &m, t);
	/* Same host, self, and unknown reporters do not count. */
	assert_int_equal(osdmon_report(om, &m, 1, 0, t), -EINVAL);
	assert_int_equal(osdmon_report(om, &m, 0, 0, t), -EINVAL);
	assert_int_equal(osdmon_report(om, &m, 9, 0, t), -EINVAL);
	/* One other host, even twice, is not enough. */
	assert_int_equal(osdmon_report(om, &m, 2, 0, t), 0);
	assert_int_equal(osdmon_report(om, &m, 2, 0, t + 10), 0);
	assert_int_equal(tick_apply(om, &m, t + 20, 100000, cmds), 0);
	/* A second host's report, but after the first went stale: still no. */
	t += 6000;
	beat_all(om, &m, t);
	assert_int_equal(osdmon_report(om, &m, 3, 0, t), 0);
	assert_int_equal(tick_apply(om, &m, t, 106000, cmds), 0);
	/* Both fresh: down, by reports, well before the beacon grace. */
	assert_int_equal(osdmon_report(om, &m, 2, 0, t + 100), 0);
	assert_int_equal(tick_apply(om, &m, t + 100, 106100, cmds), 1);
	assert_int_equal(cmds[0].osd, 0);
	assert_int_equal(cmds[0].flag, MAP_REASON_REPORTS);
	assert_false(m.osds[0].up);
	/* Reports about or from a down OSD are refused. */
	assert_int_equal(osdmon_report(om, &m, 2, 0, t + 200), -EINVAL);
	assert_int_equal(osdmon_report(om, &m, 0, 2, t + 200), -EINVAL);
	free(om);
	map_free(&m);
}

static void test_not_proposed_twice_while_committing(void **state)
{
	(void)state;
	struct cluster_map m;
	struct map_cmd cmds[16];
	boot_cluster(&m);
	struct osdmon *om = new_osdmon();
	assert_int_equal(osdmon_tick(om, &m, 1, 1, cmds, 16), 0);
	/* Proposed but not applied yet: the next ticks within a second stay
	 * quiet, then it is proposed again. */
	assert_int_equal(osdmon_tick(om, &m, 20000, 20000, cmds, 16), 4);
	assert_int_equal(osdmon_tick(om, &m, 20500, 20500, cmds, 16), 0);
	assert_int_equal(osdmon_tick(om, &m, 21000, 21000, cmds, 16), 4);
	free(om);
	map_free(&m);
}

static void test_down_out(void **state)
{
	(void)state;
	struct cluster_map m;
	struct map_cmd cmds[16];
	boot_cluster(&m);
	struct osdmon *om = new_osdmon();
	struct map_cmd down = { .type = MAP_CMD_OSD_DOWN, .osd = 3, .time_ms = 1000000 };
	assert_int_equal(map_apply(&m, &down, NULL, 0, NULL), 0);
	beat_all(om, &m, 5);
	/* Not yet out 59.9 s after the mark-down. */
	assert_int_equal(tick_apply(om, &m, 10, 1059999, cmds), 0);
	assert_true(m.osds[3].in);
	/* A new leader (fresh osdmon) counts from the recorded time, too. */
	free(om);
	om = new_osdmon();
	beat_all(om, &m, 20);
	assert_int_equal(tick_apply(om, &m, 20, 1060000, cmds), 1);
	assert_int_equal(cmds[0].type, MAP_CMD_OSD_OUT);
	assert_int_equal(cmds[0].flag, MAP_REASON_DOWN_OUT);
	assert_false(m.osds[3].in);
	assert_true(m.osds[3].auto_out);
	/* Out once; it comes back in when it boots. */
	assert_int_equal(tick_apply(om, &m, 5000, 1100000, cmds), 0);
	struct map_cmd boot = { .type = MAP_CMD_OSD_BOOT, .osd = 3, .addr = "127.0.0.1:7003",
				.host = "c", .device_bytes = 1 << 30 };
	assert_int_equal(map_apply(&m, &boot, NULL, 0, NULL), 0);
	assert_true(m.osds[3].in && m.osds[3].up);
	/* A down-out interval of 0 never marks out. */
	free(om);
	om = new_osdmon();
	om->p.down_out_interval_ms = 0;
	down.time_ms = 2000000;
	assert_int_equal(map_apply(&m, &down, NULL, 0, NULL), 0);
	beat_all(om, &m, 1);
	assert_int_equal(tick_apply(om, &m, 1, 9000000, cmds), 0);
	assert_true(m.osds[3].in);
	free(om);
	map_free(&m);
}

static void test_flap_damping(void **state)
{
	(void)state;
	struct cluster_map m;
	boot_cluster(&m);
	struct osdmon *om = new_osdmon();
	struct map_cmd down = { .type = MAP_CMD_OSD_DOWN, .osd = 1 };
	struct map_cmd boot = { .type = MAP_CMD_OSD_BOOT, .osd = 1, .addr = "127.0.0.1:7001",
				.host = "a", .device_bytes = 1 << 30 };
	/* The first mark-down: a boot is admitted at once. */
	down.time_ms = 10000;
	assert_int_equal(map_apply(&m, &down, NULL, 0, NULL), 0);
	assert_int_equal(osdmon_boot_hold_ms(om, &m, 1, 10001), 0);
	assert_int_equal(map_apply(&m, &boot, NULL, 0, NULL), 0);
	/* Then the hold doubles per mark-down in the window: 1, 2, 4, 5 (max). */
	uint64_t expect[] = { 1000, 2000, 4000, 5000, 5000 };
	for (int i = 0; i < 5; i++) {
		down.time_ms = 20000 + (uint64_t)i * 10000;
		assert_int_equal(map_apply(&m, &down, NULL, 0, NULL), 0);
		assert_int_equal(osdmon_boot_hold_ms(om, &m, 1, down.time_ms), expect[i]);
		assert_int_equal(osdmon_boot_hold_ms(om, &m, 1, down.time_ms + expect[i] - 1), 1);
		assert_int_equal(osdmon_boot_hold_ms(om, &m, 1, down.time_ms + expect[i]), 0);
		assert_int_equal(map_apply(&m, &boot, NULL, 0, NULL), 0);
	}
	/* Long quiet: the old mark-downs leave the window and damping ends. */
	down.time_ms = 1000000;
	assert_int_equal(map_apply(&m, &down, NULL, 0, NULL), 0);
	assert_int_equal(osdmon_boot_hold_ms(om, &m, 1, 1000000), 0);
	free(om);
	map_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_beacon_grace),
		cmocka_unit_test(test_reports_need_two_other_hosts),
		cmocka_unit_test(test_not_proposed_twice_while_committing),
		cmocka_unit_test(test_down_out),
		cmocka_unit_test(test_flap_damping),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
