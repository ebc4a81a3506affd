/* Monitor wire messages: command replies, map headers and incrementals,
 * OSD stats and lock renewals round-trip, and every truncation, padding
 * or wrong type is -EBADMSG. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/enc.h"
#include "common/cluster/mon_proto.h"

static void test_command_reply(void **state)
{
	(void)state;
	struct mon_command_reply r = { .rc = -EEXIST, .epoch = 77, .leader = "b",
				       .text = "pool 'rbd' already exists" };
	struct msg *msg = mon_command_reply_encode(5, &r);
	assert_non_null(msg);
	assert_int_equal(msg->hdr.request_id, 5);
	struct mon_command_reply got;
	assert_int_equal(mon_command_reply_decode(msg, &got), 0);
	assert_int_equal(got.rc, -EEXIST);
	assert_int_equal(got.epoch, 77);
	assert_string_equal(got.leader, "b");
	assert_string_equal(got.text, r.text);
	uint32_t len = msg->hdr.payload_len;
	for (uint32_t cut = 0; cut < len; cut++) {
		msg->hdr.payload_len = cut;
		assert_int_equal(mon_command_reply_decode(msg, &got), -EBADMSG);
	}
	msg->hdr.payload_len = len;
	msg->hdr.type = MON_MSG_MAP;
	assert_int_equal(mon_command_reply_decode(msg, &got), -EBADMSG);
	msg_free(msg);
	/* A positive rc is not a reply any monitor sends. */
	r.rc = 5;
	msg = mon_command_reply_encode(1, &r);
	assert_int_equal(mon_command_reply_decode(msg, &got), -EBADMSG);
	msg_free(msg);
}

static void test_map_header(void **state)
{
	(void)state;
	struct msg *msg = msg_new(MON_MSG_MAP, 1, 8 + 1 + 2 + 1);
	uint8_t p[] = { 9, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 'c' };
	memcpy(msg->payload, p, sizeof(p));
	struct mon_map_header h;
	assert_int_equal(mon_map_header_decode(msg, &h), 0);
	assert_int_equal(h.epoch, 9);
	assert_int_equal(h.stale, 1);
	assert_string_equal(h.leader, "c");
	msg->hdr.payload_len = 10;
	assert_int_equal(mon_map_header_decode(msg, &h), -EBADMSG);
	msg_free(msg);
}

/* Commands applied on the monitor's map, sent as one incremental, give the
 * subscriber's older copy exactly the monitor's public map. */
static void test_map_incremental(void **state)
{
	(void)state;
	struct cluster_map mon, sub;
	uint8_t fsid[16] = { 7 };
	struct map_mon mm = { "a", "127.0.0.1:1" };
	map_init(&mon, fsid, &mm, 1);
	map_init(&sub, fsid, &mm, 1);
	struct map_cmd cmds[5] = {
		{ .type = MAP_CMD_OSD_BOOT, .osd = 3, .addr = "127.0.0.1:9", .host = "h",
		  .device_bytes = 1 << 30, .time_ms = 5 },
		{ .type = MAP_CMD_POOL_CREATE, .name = "rbd",
		  .pool = { .type = MAP_POOL_REPLICATED, .size = 3, .min_size = 2, .pg_num = 8,
			    .block_size = 128 << 10 } },
		{ .type = MAP_CMD_VOLUME_CREATE, .name = "v", .pool_name = "rbd", .size = 4096 },
		{ .type = MAP_CMD_AUTH_ADD, .name = "client.x", .caps = "mon=r" },
		{ .type = MAP_CMD_OSD_DOWN, .osd = 3, .time_ms = 99, .flag = MAP_REASON_REPORTS },
	};
	uint8_t data[4096];
	struct enc e;
	enc_init(&e, data, sizeof(data));
	enc_put_le32(&e, 5);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(map_apply(&mon, &cmds[i], NULL, 0, NULL), 0);
		uint8_t buf[MAP_CMD_MAX_LEN];
		int len = map_cmd_encode(&cmds[i], buf, sizeof(buf));
		enc_put_le16(&e, (uint16_t)len);
		enc_put_bytes(&e, buf, (size_t)len);
	}
	struct msg *msg = msg_new(MON_MSG_MAP_INC, 0, 8 + 1 + 2 + 1 + 8);
	uint8_t p[] = { 5, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 'a', 0, 0, 0, 0, 0, 0, 0, 0 };
	memcpy(msg->payload, p, sizeof(p));
	msg->hdr.payload_len = sizeof(p);
	assert_int_equal(msg_alloc_data(msg, (uint32_t)e.pos), 0);
	memcpy(msg->data, data, e.pos);
	struct mon_map_inc inc;
	assert_int_equal(mon_map_inc_decode(msg, &inc), 0);
	assert_int_equal(inc.from, 0);
	assert_int_equal(inc.count, 5);
	assert_int_equal(mon_map_inc_apply(&inc, &sub), 0);
	uint8_t *a, *b;
	size_t la, lb;
	assert_int_equal(map_encode_public(&mon, &a, &la), 0);
	assert_int_equal(map_encode_public(&sub, &b, &lb), 0);
	assert_int_equal(la, lb);
	assert_memory_equal(a, b, la);
	free(a);
	free(b);
	/* Again on a map already at epoch 5: refused, map untouched. */
	assert_int_equal(mon_map_inc_apply(&inc, &sub), -ESTALE);
	assert_int_equal(sub.epoch, 5);
	/* A count that does not match the epochs, or a cut data segment. */
	msg->data[0] = 4;
	assert_int_equal(mon_map_inc_decode(msg, &inc), -EBADMSG);
	msg->data[0] = 5;
	msg->hdr.data_len -= 3;
	struct cluster_map fresh;
	map_init(&fresh, fsid, &mm, 1);
	assert_int_equal(mon_map_inc_decode(msg, &inc), 0);
	assert_int_equal(mon_map_inc_apply(&inc, &fresh), -EBADMSG);
	/* A command that does not apply (the pool is created twice). */
	map_free(&fresh);
	map_init(&fresh, fsid, &mm, 1);
	assert_int_equal(map_apply(&fresh, &cmds[1], NULL, 0, NULL), 0);
	fresh.epoch = 0;
	msg->hdr.data_len += 3;
	assert_int_equal(mon_map_inc_decode(msg, &inc), 0);
	assert_int_equal(mon_map_inc_apply(&inc, &fresh), -EBADMSG);
	map_free(&fresh);
	msg_free(msg);
	map_free(&mon);
	map_free(&sub);
}

static void test_osd_stats(void **state)
{
	(void)state;
	struct mon_pg_stat pgs[2] = {
		{ 1, 7, MON_PG_ACTIVE | MON_PG_CLEAN, 3, 10, 40960, 0, 0, 1700000000, 1690000000, 0, 0,
		  0, 0, 0 },
		{ 2, 0, MON_PG_ACTIVE | MON_PG_DEGRADED | MON_PG_RECOVERING | MON_PG_SCRUBBING |
				MON_PG_DEEP | MON_PG_INCONSISTENT,
		  3, 5, 8192, 4, 2, 1, 2, 3, 5, 7, 6, 1 } };
	struct mon_osd_usage osds[2] = {
		{ 0, 1 << 30, 1 << 29, 1 << 29, 1 << 27, 0, 0, "", 0, { { 0, 0, 0, 0, OBJECT_SHARD_WHOLE } } },
		{ 1, 1 << 30, 1 << 29, 1000, 50, 3, 41000, "pg 1.7 to become active (it is peering)",
		  0, { { 0, 0, 0, 0, OBJECT_SHARD_WHOLE } } } };
	struct mon_osd_stats st = { 3, 1 << 30, 1 << 20, 10, 7, 7 << 17,
				    { 3, 1 << 30, 1 << 20, 1 << 29, 1 << 28, 1, 31000, "osd.2", 2,
				      { { 1, 0x200, 3, 0, OBJECT_SHARD_WHOLE }, { 1, 0x200, 9, 0, OBJECT_SHARD_WHOLE } } },
				    2, pgs, 2, osds };
	struct msg *m = mon_osd_stats_encode(MON_MSG_OSD_BEACON, 0, &st);
	struct mon_osd_stats got;
	assert_int_equal(mon_osd_stats_decode(m, &got), 0);
	assert_true(got.osd == 3 && got.device_bytes == 1 << 30 && got.used_bytes == 1 << 20);
	assert_true(got.usage.data_bytes == 1 << 29 && got.usage.data_avail_bytes == 1 << 28 &&
		    got.usage.slow_ops == 1 && got.usage.slow_oldest_ms == 31000);
	assert_string_equal(got.usage.slow_what, "osd.2");
	assert_int_equal(got.usage.n_unfound, 2);
	assert_true(got.usage.unfound[1].inode == 0x200 && got.usage.unfound[1].index == 9);
	assert_int_equal(mon_osd_usage_ratio(&got.usage), 5000);
	assert_int_equal(mon_osd_usage_ratio(&osds[1]), 9500);
	assert_true(got.n_osds == 2 && got.osds[1].slow_ops == 3 && got.osds[1].data_bytes == 1000);
	assert_string_equal(got.osds[1].slow_what, osds[1].slow_what);
	assert_true(got.objects == 10 && got.n_pgs == 2);
	assert_true(got.recovered_objects == 7 && got.recovered_bytes == 7 << 17);
	assert_true(got.pgs[1].pool == 2 && got.pgs[1].pg == 0 && got.pgs[1].primary == 3 &&
		    got.pgs[1].state == pgs[1].state);
	assert_true(got.pgs[1].degraded == 4 && got.pgs[1].missing == 2);
	assert_true(got.pgs[0].objects == 10 && got.pgs[0].bytes == 40960 && got.pgs[0].pg == 7);
	assert_true(got.pgs[0].last_scrub_s == 1700000000 && got.pgs[0].last_deep_scrub_s == 1690000000);
	assert_true(got.pgs[1].scrub_done == 3 && got.pgs[1].scrub_total == 5 &&
		    got.pgs[1].bad_found == 7 && got.pgs[1].bad_repaired == 6 && got.pgs[1].unfound == 1);
	mon_osd_stats_free(&got);
	/* The counts must match the data (every bit of a state is a flag). */
	for (uint32_t cut = 1; cut < m->hdr.data_len; cut += 13) {
		m->hdr.data_len -= cut;
		assert_int_equal(mon_osd_stats_decode(m, &got), -EBADMSG);
		m->hdr.data_len += cut;
	}
	m->hdr.payload_len -= 1;
	assert_int_equal(mon_osd_stats_decode(m, &got), -EBADMSG);
	m->hdr.payload_len += 1;
	msg_free(m);
	char buf[128];
	assert_string_equal(mon_pg_state_name(MON_PG_DOWN, buf, sizeof(buf)), "down");
	assert_string_equal(mon_pg_state_name(0, buf, sizeof(buf)), "unknown");
	assert_string_equal(mon_pg_state_name(MON_PG_ACTIVE | MON_PG_UNDERSIZED | MON_PG_READ_ONLY,
					      buf, sizeof(buf)),
			    "active+undersized+read_only");
	assert_string_equal(mon_pg_state_name(pgs[1].state, buf, sizeof(buf)),
			    "active+degraded+recovering+scrubbing+deep+inconsistent");
}

static void test_lock_renew(void **state)
{
	(void)state;
	uint64_t in[3] = { 4, 99, 1ULL << 40 }, out[MON_RENEW_MAX], client;
	uint32_t n;
	struct msg *m = mon_lock_renew_encode(0xfeedULL, in, 3);
	assert_non_null(m);
	assert_int_equal(mon_lock_renew_decode(m, &client, out, &n), 0);
	assert_true(client == 0xfeedULL && n == 3);
	assert_memory_equal(in, out, sizeof(in));
	/* A count that lies about the inodes that follow is refused. */
	m->payload[8] = 4;
	assert_int_equal(mon_lock_renew_decode(m, &client, out, &n), -EBADMSG);
	m->payload[8] = 2;
	assert_int_equal(mon_lock_renew_decode(m, &client, out, &n), -EBADMSG);
	msg_free(m);
	assert_null(mon_lock_renew_encode(1, in, MON_RENEW_MAX + 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_command_reply),
		cmocka_unit_test(test_map_header),
		cmocka_unit_test(test_map_incremental),
		cmocka_unit_test(test_osd_stats),
		cmocka_unit_test(test_lock_renew),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
