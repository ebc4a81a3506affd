/* The cluster map: command encoding, every validation rule with its error,
 * epochs, and determinism (the same commands give byte-identical maps). */
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
#include "common/object.h"

static void new_map(struct cluster_map *m)
{
	uint8_t fsid[16];
	memset(fsid, 0x11, sizeof(fsid));
	struct map_mon mons[3] = { { "a", "127.0.0.1:6789" }, { "b", "127.0.0.1:6790" },
				   { "c", "127.0.0.1:6791" } };
	assert_int_equal(map_init(m, fsid, mons, 3), 0);
}

static struct map_cmd pool_cmd(const char *name, uint32_t size, uint32_t min_size)
{
	struct map_cmd c = { .type = MAP_CMD_POOL_CREATE };
	snprintf(c.name, sizeof(c.name), "%s", name);
	c.pool = (struct map_pool){ .type = MAP_POOL_REPLICATED, .size = size,
				    .min_size = min_size, .pg_num = 64, .block_size = 128 << 10 };
	return c;
}

static struct map_cmd osd_cmd(enum map_cmd_type type, uint32_t id)
{
	struct map_cmd c = { .type = type, .osd = id };
	if (type == MAP_CMD_OSD_BOOT) {
		snprintf(c.addr, sizeof(c.addr), "127.0.0.1:%u", 6800 + id);
		snprintf(c.host, sizeof(c.host), "host%u", id % 3);
		c.device_bytes = 10ULL << 30;
	}
	return c;
}

static void expect(struct cluster_map *m, struct map_cmd c, int rc, const char *msg)
{
	char err[256] = "";
	uint64_t epoch = m->epoch;
	assert_int_equal(map_apply(m, &c, err, sizeof(err), NULL), rc);
	if (rc) {
		assert_int_equal(m->epoch, epoch); /* nothing changed */
		if (msg)
			assert_string_equal(err, msg);
	} else {
		assert_int_equal(m->epoch, epoch + 1);
	}
}

static void test_cmd_encoding(void **state)
{
	(void)state;
	struct map_cmd cmds[] = {
		osd_cmd(MAP_CMD_OSD_BOOT, 3), osd_cmd(MAP_CMD_OSD_DOWN, 3),
		osd_cmd(MAP_CMD_OSD_OUT, 3), osd_cmd(MAP_CMD_OSD_IN, 3),
		osd_cmd(MAP_CMD_OSD_RM, 3), pool_cmd("rbd", 3, 2),
		{ .type = MAP_CMD_OSD_REWEIGHT, .osd = 2, .weight = 77 },
		{ .type = MAP_CMD_POOL_RM, .name = "rbd" },
		{ .type = MAP_CMD_POOL_SET, .name = "rbd", .key = "size", .value = 2 },
		{ .type = MAP_CMD_VOLUME_CREATE, .name = "vm1", .pool_name = "rbd", .size = 1ULL << 30 },
		{ .type = MAP_CMD_VOLUME_RM, .name = "vm1" },
		{ .type = MAP_CMD_VOLUME_RESIZE, .name = "vm1", .value = 2ULL << 30 },
		{ .type = MAP_CMD_VOLUME_RENAME, .name = "vm1", .new_name = "vm2" },
		{ .type = MAP_CMD_OSD_DOWN, .osd = 4, .time_ms = 1234567, .flag = MAP_REASON_REPORTS },
		{ .type = MAP_CMD_OSD_OUT, .osd = 4, .time_ms = 7654321, .flag = MAP_REASON_DOWN_OUT },
		{ .type = MAP_CMD_AUTH_ADD, .name = "client.vm", .secret = { .sealed = { 1, 2, 3 }, .id = { 4 } },
		  .caps = "mon=r osd=rw" },
		{ .type = MAP_CMD_AUTH_ROTATE, .name = "client.vm", .secret = { .sealed = { 5 }, .id = { 6 } },
		  .value = 600000, .time_ms = 12345 },
		{ .type = MAP_CMD_AUTH_ROTATE_END, .name = "client.vm", .value = 612345 },
		{ .type = MAP_CMD_AUTH_CAPS, .name = "client.vm", .caps = "mon=rw" },
		{ .type = MAP_CMD_AUTH_RM, .name = "client.vm" },
		{ .type = MAP_CMD_SNAP_CREATE, .name = "vm1", .snap = "before-upgrade" },
		{ .type = MAP_CMD_SNAP_RM, .name = "vm1", .snap = "before-upgrade" },
		{ .type = MAP_CMD_VOLUME_CLONE, .name = "vm9", .src = "vm1", .snap = "gold" },
		{ .type = MAP_CMD_VOLUME_CLONE, .name = "vm9", .src = "vm1", .snap = "gold",
		  .pool_name = "ssd" },
		{ .type = MAP_CMD_SNAP_PROTECT, .name = "vm1", .snap = "gold", .flag = 1 },
		{ .type = MAP_CMD_VOLUME_FLATTEN, .name = "vm9" },
		{ .type = MAP_CMD_PG_ACTIVE, .n_active = 2,
		  .active = { { 1, 7, 12, 4, 3, { 4, 0, 2 } }, { 1, 8, 12, 4, 1, { 4 } } },
		  .prev_epoch = { 9, 0 } },
		{ .type = MAP_CMD_VOLUME_LOCK, .name = "vm1", .lock_client = 0xabcdef,
		  .owner = "client.admin on h1 pid 7 (basalt-nbd)", .flag = 1, .time_ms = 99 },
		{ .type = MAP_CMD_VOLUME_UNLOCK, .name = "vm1", .lock_client = 0xabcdef },
		{ .type = MAP_CMD_FENCE_RM, .lock_client = 0xabcdef },
		{ .type = MAP_CMD_OSD_FULL, .osd = 2, .flag = MAP_FULL_BACKFILL },
		{ .type = MAP_CMD_POOL_FULL, .name = "rbd", .flag = 1 },
		{ .type = MAP_CMD_SET_RATIO, .key = "nearfull", .value = 8000 },
	};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		uint8_t buf[MAP_CMD_MAX_LEN];
		int len = map_cmd_encode(&cmds[i], buf, sizeof(buf));
		assert_true(len > 0);
		struct map_cmd out;
		assert_int_equal(map_cmd_decode(buf, (size_t)len, &out), 0);
		uint8_t again[MAP_CMD_MAX_LEN];
		assert_int_equal(map_cmd_encode(&out, again, sizeof(again)), len);
		assert_memory_equal(buf, again, (size_t)len);
		for (int cut = 0; cut < len; cut++)
			assert_int_equal(map_cmd_decode(buf, (size_t)cut, &out), -EBADMSG);
		buf[len] = 0;
		assert_int_equal(map_cmd_decode(buf, (size_t)len + 1, &out), -EBADMSG);
	}
	uint8_t bad[] = { 1, 99, 0 };
	struct map_cmd out;
	assert_int_equal(map_cmd_decode(bad, sizeof(bad), &out), -EBADMSG);
}

static void test_pools(void **state)
{
	(void)state;
	struct cluster_map m;
	new_map(&m);
	expect(&m, pool_cmd("rbd", 3, 2), 0, NULL);
	expect(&m, pool_cmd("rbd", 3, 2), -EEXIST, "pool 'rbd' already exists");
	/* Ids are never reused, and object ids carry 24 bits of them. */
	uint32_t next = m.next_pool_id;
	m.next_pool_id = OBJECT_POOL_MAX - 1;
	expect(&m, pool_cmd("last", 3, 2), 0, NULL);
	assert_int_equal(map_pool_by_name(&m, "last")->id, OBJECT_POOL_MAX);
	expect(&m, pool_cmd("past", 3, 2), -ENOSPC, "every pool id (up to 16777215) was given out");
	expect(&m, (struct map_cmd){ .type = MAP_CMD_POOL_RM, .name = "last" }, 0, NULL);
	m.next_pool_id = next;
	expect(&m, pool_cmd("bad name", 3, 2), -EINVAL,
	       "'bad name' is not a valid pool name (1-63 of A-Z a-z 0-9 _ . -)");
	expect(&m, pool_cmd("x@y", 3, 2), -EINVAL, NULL);
	expect(&m, pool_cmd("big", 11, 2), -EINVAL, "size must be 1 to 10 copies, not 11");
	expect(&m, pool_cmd("min", 3, 4), -EINVAL, "min_size must be 1 to size (3), not 4");
	struct map_cmd c = pool_cmd("odd", 3, 2);
	c.pool.block_size = 96 << 10;
	expect(&m, c, -EINVAL, "block_size must be a power of two from 64K to 1M, not 98304");
	c = pool_cmd("ec", 0, 0);
	c.pool.type = MAP_POOL_EC;
	c.pool.ec_k = 4;
	c.pool.ec_m = 2;
	expect(&m, c, -EINVAL, "an erasure-coded block_size must be k=4 chunks of a power of two "
			       "from 64K to 1M (512K for 128K chunks), not 131072");
	c.pool.block_size = 512 << 10;
	expect(&m, c, 0, NULL);
	const struct map_pool *ec = map_pool_by_name(&m, "ec");
	assert_non_null(ec);
	assert_int_equal(ec->size, 6);
	assert_int_equal(ec->min_size, 5); /* k+1: a write survives one more failure */
	assert_int_equal(ec->id, 2);
	c = pool_cmd("ec21", 0, 4); /* min_size given: k to k+m */
	c.pool.type = MAP_POOL_EC;
	c.pool.ec_k = 2;
	c.pool.ec_m = 1;
	c.pool.block_size = 256 << 10;
	expect(&m, c, -EINVAL, "an erasure-coded pool's min_size must be k (2) to k+m (3), not 4");
	c.pool.min_size = 1;
	expect(&m, c, -EINVAL, "an erasure-coded pool's min_size must be k (2) to k+m (3), not 1");
	c.pool.min_size = 2;
	expect(&m, c, 0, NULL);
	assert_int_equal(map_pool_by_name(&m, "ec21")->min_size, 2);
	assert_int_equal(map_pool_by_name(&m, "ec21")->size, 3);
	c = pool_cmd("ec3", 0, 0);
	c.pool.type = MAP_POOL_EC;
	c.pool.ec_k = 3;
	c.pool.ec_m = 1;
	c.pool.block_size = 3 * (128 << 10); /* not a power of two: 3 chunks are */
	expect(&m, c, 0, NULL);
	assert_int_equal(map_pool_chunk_bytes(map_pool_by_name(&m, "ec3")), 128 << 10);
	assert_int_equal(map_pool_chunk_bytes(map_pool_by_name(&m, "rbd")), 128 << 10);
	c = pool_cmd("ec3b", 0, 0);
	c.pool.type = MAP_POOL_EC;
	c.pool.ec_k = 3;
	c.pool.ec_m = 1;
	c.pool.block_size = 3 * (96 << 10);
	expect(&m, c, -EINVAL, "an erasure-coded block_size must be k=3 chunks of a power of two "
			       "from 64K to 1M (384K for 128K chunks), not 294912");
	c.pool.block_size = (3 << 20) + 3 * 4096; /* chunks past 1M */
	expect(&m, c, -EINVAL, NULL);
	c.pool.block_size = 100000; /* not k chunks */
	expect(&m, c, -EINVAL, NULL);
	c.pool.ec_k = 32;
	expect(&m, c, -EINVAL, "erasure coding needs k of 1 to 16 and m of 1 to 4, not 32+1");
	c.pool.ec_k = 2;
	c.pool.ec_m = 5;
	expect(&m, c, -EINVAL, "erasure coding needs k of 1 to 16 and m of 1 to 4, not 2+5");
	c.pool.ec_k = 16;
	c.pool.ec_m = 1;
	c.pool.block_size = 16 * (64 << 10);
	expect(&m, c, -EINVAL, "k+m must be at most 16 (the OSDs a PG can have), not 16+1");
	c.pool.ec_k = 8;
	c.pool.ec_m = 4;
	c.pool.block_size = 8 * (64 << 10); /* 8 chunks of 64K */
	expect(&m, c, 0, NULL);
	struct map_cmd set = { .type = MAP_CMD_POOL_SET, .name = "rbd", .key = "min_size", .value = 3 };
	expect(&m, set, 0, NULL);
	set.value = 4;
	expect(&m, set, -EINVAL, "min_size must be 1 to size (3), not 4");
	set = (struct map_cmd){ .type = MAP_CMD_POOL_SET, .name = "rbd", .key = "pg_num", .value = 32 };
	expect(&m, set, -EINVAL,
	       "pg_num can only grow, by a whole multiple (now 64), so each PG splits into whole PGs");
	set.value = 128;
	expect(&m, set, 0, NULL);
	assert_int_equal(map_pool_by_name(&m, "rbd")->pg_num, 128);
	set = (struct map_cmd){ .type = MAP_CMD_POOL_SET, .name = "ec", .key = "size", .value = 5 };
	expect(&m, set, -EINVAL,
	       "pool setting 'size' is not one of size, min_size, pg_num, max_bytes (size is fixed by k+m)");
	/* An EC pool's min_size: k (an operator's choice) to k+m. */
	set.key[0] = 0;
	snprintf(set.key, sizeof(set.key), "min_size");
	set.value = 3;
	expect(&m, set, -EINVAL, "an erasure-coded pool's min_size must be k (4) to k+m (6), not 3");
	set.value = 7;
	expect(&m, set, -EINVAL, "an erasure-coded pool's min_size must be k (4) to k+m (6), not 7");
	set.value = 4;
	expect(&m, set, 0, NULL);
	assert_int_equal(map_pool_by_name(&m, "ec")->min_size, 4);
	struct map_cmd vol = { .type = MAP_CMD_VOLUME_CREATE, .name = "vm1", .pool_name = "rbd",
			       .size = 10ULL << 30 };
	expect(&m, vol, 0, NULL);
	struct map_cmd rm = { .type = MAP_CMD_POOL_RM, .name = "rbd" };
	expect(&m, rm, -EBUSY, "pool 'rbd' still holds volume 'vm1'");
	rm.name[0] = 'x';
	expect(&m, rm, -ENOENT, "pool 'xbd' does not exist");
	struct map_cmd rmec = { .type = MAP_CMD_POOL_RM, .name = "ec" };
	expect(&m, rmec, 0, NULL);
	assert_null(map_pool_by_name(&m, "ec"));
	map_free(&m);
}

static void test_osds(void **state)
{
	(void)state;
	struct cluster_map m;
	new_map(&m);
	expect(&m, osd_cmd(MAP_CMD_OSD_DOWN, 0), -ENOENT, "osd.0 does not exist");
	for (uint32_t i = 0; i < 4; i++)
		expect(&m, osd_cmd(MAP_CMD_OSD_BOOT, i), 0, NULL);
	uint32_t total, up, in;
	map_osd_counts(&m, &total, &up, &in);
	assert_true(total == 4 && up == 4 && in == 4);
	assert_int_equal(m.osds[2].weight, (10ULL << 30) >> 24); /* 10 GiB in TiB, 16.16 */
	expect(&m, osd_cmd(MAP_CMD_OSD_RM, 1), -EBUSY, "osd.1 is up: stop it before removing it");
	expect(&m, osd_cmd(MAP_CMD_OSD_DOWN, 1), 0, NULL);
	expect(&m, osd_cmd(MAP_CMD_OSD_DOWN, 1), -EALREADY, "osd.1 is already down");
	assert_int_equal(m.osds[1].down_at, m.epoch);
	expect(&m, osd_cmd(MAP_CMD_OSD_OUT, 1), 0, NULL);
	expect(&m, osd_cmd(MAP_CMD_OSD_OUT, 1), -EALREADY, "osd.1 is already out");
	expect(&m, osd_cmd(MAP_CMD_OSD_IN, 1), 0, NULL);
	expect(&m, osd_cmd(MAP_CMD_OSD_IN, 1), -EALREADY, "osd.1 is already in");
	/* A reboot keeps in/out and weight, marks up again. */
	expect(&m, osd_cmd(MAP_CMD_OSD_OUT, 1), 0, NULL);
	expect(&m, osd_cmd(MAP_CMD_OSD_BOOT, 1), 0, NULL);
	assert_true(m.osds[1].up && !m.osds[1].in);
	assert_int_equal(m.osds[1].up_from, m.epoch);
	expect(&m, osd_cmd(MAP_CMD_OSD_DOWN, 3), 0, NULL);
	expect(&m, osd_cmd(MAP_CMD_OSD_RM, 3), 0, NULL);
	/* Marked out for staying down: it comes back in when it boots; an
	 * operator's "out" is kept across boots (above). */
	struct map_cmd down = { .type = MAP_CMD_OSD_DOWN, .osd = 2, .time_ms = 1000,
				.flag = MAP_REASON_BEACONS };
	expect(&m, down, 0, NULL);
	assert_int_equal(m.osds[2].down_since_ms, 1000);
	assert_int_equal(m.osds[2].downs_ms[0], 1000);
	struct map_cmd auto_out = { .type = MAP_CMD_OSD_OUT, .osd = 2, .time_ms = 601000,
				    .flag = MAP_REASON_DOWN_OUT };
	expect(&m, auto_out, 0, NULL);
	assert_true(m.osds[2].auto_out && !m.osds[2].in);
	expect(&m, osd_cmd(MAP_CMD_OSD_BOOT, 2), 0, NULL);
	assert_true(m.osds[2].up && m.osds[2].in && !m.osds[2].auto_out);
	assert_int_equal(m.osds[2].down_since_ms, 0);
	/* An automatic out that arrives after the OSD came back is refused. */
	expect(&m, auto_out, -EALREADY, "osd.2 came back up");
	/* Down history keeps the newest MAP_FLAP_HISTORY times. */
	for (uint64_t t = 2000; t < 2000 + 10 * 100; t += 100) {
		down.time_ms = t;
		expect(&m, down, 0, NULL);
		expect(&m, osd_cmd(MAP_CMD_OSD_BOOT, 2), 0, NULL);
	}
	assert_int_equal(m.osds[2].downs_ms[0], 2900);
	assert_int_equal(m.osds[2].downs_ms[MAP_FLAP_HISTORY - 1], 2900 - 100 * (MAP_FLAP_HISTORY - 1));
	map_osd_counts(&m, &total, &up, &in);
	assert_true(total == 3 && up == 3 && in == 2);
	struct map_cmd bad = osd_cmd(MAP_CMD_OSD_BOOT, MAP_MAX_OSDS);
	expect(&m, bad, -EINVAL, NULL);
	bad = osd_cmd(MAP_CMD_OSD_BOOT, 5);
	bad.host[0] = '\0';
	expect(&m, bad, -EINVAL, "osd.5 boots without an address or a valid host");
	map_free(&m);
}

static void test_volumes(void **state)
{
	(void)state;
	struct cluster_map m;
	new_map(&m);
	struct map_cmd v = { .type = MAP_CMD_VOLUME_CREATE, .name = "vm1", .pool_name = "rbd",
			     .size = 1 << 30 };
	expect(&m, v, -ENOENT, "pool 'rbd' does not exist");
	expect(&m, pool_cmd("rbd", 3, 2), 0, NULL);
	expect(&m, v, 0, NULL);
	expect(&m, v, -EEXIST, "volume 'vm1' already exists");
	snprintf(v.name, sizeof(v.name), "vm2");
	v.size = 1000;
	expect(&m, v, -EINVAL, "a volume size is a multiple of 512 bytes up to 1 EiB");
	v.size = 4096;
	expect(&m, v, 0, NULL);
	assert_int_equal(map_volume_by_name(&m, "vm1")->inode, 1);
	assert_int_equal(map_volume_by_name(&m, "vm2")->inode, 2);
	struct map_cmd r = { .type = MAP_CMD_VOLUME_RENAME, .name = "vm2", .new_name = "vm1" };
	expect(&m, r, -EEXIST, "volume 'vm1' already exists");
	snprintf(r.new_name, sizeof(r.new_name), "db");
	expect(&m, r, 0, NULL);
	assert_int_equal(map_volume_by_name(&m, "db")->inode, 2);
	struct map_cmd z = { .type = MAP_CMD_VOLUME_RESIZE, .name = "db", .value = 8192 };
	expect(&m, z, 0, NULL);
	assert_int_equal(map_volume_by_name(&m, "db")->size, 8192);
	struct map_cmd d = { .type = MAP_CMD_VOLUME_RM, .name = "vm1" };
	expect(&m, d, 0, NULL);
	expect(&m, d, -ENOENT, "volume 'vm1' does not exist");
	/* Inodes are never reused. */
	snprintf(v.name, sizeof(v.name), "vm1");
	expect(&m, v, 0, NULL);
	assert_int_equal(map_volume_by_name(&m, "vm1")->inode, 3);
	map_free(&m);
}

static struct map_cmd lock_cmd(enum map_cmd_type type, const char *vol, uint64_t client,
			       uint8_t flag)
{
	struct map_cmd c = { .type = type, .lock_client = client, .flag = flag, .time_ms = 5 };
	snprintf(c.name, sizeof(c.name), "%s", vol);
	snprintf(c.owner, sizeof(c.owner), "client.admin pid %llu", (unsigned long long)client);
	return c;
}

static void test_locks_and_fencing(void **state)
{
	(void)state;
	struct cluster_map m;
	new_map(&m);
	expect(&m, pool_cmd("rbd", 3, 2), 0, NULL);
	expect(&m, (struct map_cmd){ .type = MAP_CMD_VOLUME_CREATE, .name = "vm1", .pool_name = "rbd",
				     .size = 1 << 30 }, 0, NULL);
	expect(&m, lock_cmd(MAP_CMD_VOLUME_LOCK, "nope", 7, 0), -ENOENT,
	       "volume 'nope' does not exist");
	expect(&m, lock_cmd(MAP_CMD_VOLUME_LOCK, "vm1", 0, 0), -EINVAL, "no client instance named");
	/* Free: taken; ours: taken again (a retry); another's: refused. */
	expect(&m, lock_cmd(MAP_CMD_VOLUME_LOCK, "vm1", 7, 0), 0, NULL);
	const struct map_volume *v = map_volume_by_name(&m, "vm1");
	assert_true(v->lock_client == 7);
	assert_string_equal(v->lock_owner, "client.admin pid 7");
	expect(&m, lock_cmd(MAP_CMD_VOLUME_LOCK, "vm1", 7, 0), 0, NULL);
	expect(&m, lock_cmd(MAP_CMD_VOLUME_LOCK, "vm1", 8, 0), -EBUSY,
	       "volume 'vm1' is locked by client.admin pid 7");
	expect(&m, lock_cmd(MAP_CMD_VOLUME_UNLOCK, "vm1", 8, 0), -EPERM,
	       "volume 'vm1' is locked by client.admin pid 7, not by this client");
	expect(&m, (struct map_cmd){ .type = MAP_CMD_VOLUME_RM, .name = "vm1" }, -EBUSY,
	       "volume 'vm1' is in use: locked by client.admin pid 7 (stop it, or basalt volume "
	       "unlock --force)");
	/* A shrink would cut the holder's disk from under it; growing is
	 * harmless. */
	expect(&m, (struct map_cmd){ .type = MAP_CMD_VOLUME_RESIZE, .name = "vm1",
				     .value = 1 << 20 }, -EBUSY,
	       "volume 'vm1' is in use: locked by client.admin pid 7; it cannot shrink while a "
	       "client has it open for writing (stop it, or basalt volume unlock --force)");
	expect(&m, (struct map_cmd){ .type = MAP_CMD_VOLUME_RESIZE, .name = "vm1",
				     .value = 2ULL << 30 }, 0, NULL);
	assert_false(map_client_fenced(&m, 7));
	/* A takeover fences the holder from the next epoch on. */
	uint64_t epoch = m.epoch;
	expect(&m, lock_cmd(MAP_CMD_VOLUME_LOCK, "vm1", 8, 1), 0, NULL);
	v = map_volume_by_name(&m, "vm1");
	assert_true(v->lock_client == 8);
	assert_true(map_client_fenced(&m, 7));
	assert_int_equal(m.n_fenced, 1);
	assert_int_equal(m.fenced[0].epoch, epoch + 1);
	assert_string_equal(m.fenced[0].owner, "client.admin pid 7");
	/* Given up cleanly: nobody is fenced; unlocking a free volume is done. */
	expect(&m, lock_cmd(MAP_CMD_VOLUME_UNLOCK, "vm1", 8, 0), 0, NULL);
	assert_true(map_volume_by_name(&m, "vm1")->lock_client == 0);
	assert_false(map_client_fenced(&m, 8));
	expect(&m, lock_cmd(MAP_CMD_VOLUME_UNLOCK, "vm1", 8, 0), 0, NULL);
	/* Forced: the holder, whoever it is, is fenced. */
	expect(&m, lock_cmd(MAP_CMD_VOLUME_LOCK, "vm1", 9, 0), 0, NULL);
	expect(&m, lock_cmd(MAP_CMD_VOLUME_UNLOCK, "vm1", 0, 1), 0, NULL);
	assert_true(map_client_fenced(&m, 9));
	assert_true(map_volume_by_name(&m, "vm1")->lock_client == 0);
	/* Forgotten by hand; the list keeps the newest MAP_FENCED_MAX. */
	expect(&m, (struct map_cmd){ .type = MAP_CMD_FENCE_RM, .lock_client = 9 }, 0, NULL);
	assert_false(map_client_fenced(&m, 9));
	expect(&m, (struct map_cmd){ .type = MAP_CMD_FENCE_RM, .lock_client = 9 }, -ENOENT,
	       "client 0000000000000009 is not fenced");
	for (uint64_t c = 100; c < 100 + MAP_FENCED_MAX + 5; c++) {
		expect(&m, lock_cmd(MAP_CMD_VOLUME_LOCK, "vm1", c, 1), 0, NULL);
	}
	assert_int_equal(m.n_fenced, MAP_FENCED_MAX);
	assert_false(map_client_fenced(&m, 7)); /* the oldest went */
	assert_true(map_client_fenced(&m, 100 + MAP_FENCED_MAX + 3));
	/* All of it survives the whole-map encoding. */
	uint8_t *buf;
	size_t len;
	struct cluster_map back = { 0 };
	assert_int_equal(map_encode_public(&m, &buf, &len), 0);
	assert_int_equal(map_decode(buf, len, &back), 0);
	assert_int_equal(back.n_fenced, MAP_FENCED_MAX);
	assert_true(back.fenced[0].client == m.fenced[0].client);
	assert_string_equal(back.fenced[3].owner, m.fenced[3].owner);
	assert_true(map_volume_by_name(&back, "vm1")->lock_client == 100 + MAP_FENCED_MAX + 4);
	free(buf);
	map_free(&back);
	map_free(&m);
}

static struct map_caps caps_of(const char *text)
{
	struct map_caps c;
	char err[256];
	assert_int_equal(map_caps_parse(text, &c, err, sizeof(err)), 0);
	return c;
}

static void expect_bad_caps(const char *text, const char *why)
{
	struct map_caps c;
	char err[256] = "";
	assert_int_equal(map_caps_parse(text, &c, err, sizeof(err)), -EINVAL);
	if (why)
		assert_string_equal(err, why);
}

static void test_keys_and_caps(void **state)
{
	(void)state;
	struct cluster_map m;
	new_map(&m);
	struct map_cmd add = { .type = MAP_CMD_AUTH_ADD, .name = "client.vm",
			       .secret = { .sealed = { 9 }, .id = { 7 } }, .caps = "mon=r osd=rw" };
	expect(&m, add, 0, NULL);
	expect(&m, add, -EEXIST, "client.vm already has a key");
	const struct map_key *k = map_key_by_entity(&m, "client.vm");
	assert_non_null(k);
	assert_int_equal(k->cur.sealed[0], 9);
	struct map_caps c = caps_of(k->caps);
	assert_true(map_caps_mon(&c, 'r'));
	assert_false(map_caps_mon(&c, 'w'));
	assert_false(c.admin);
	c = caps_of("");
	assert_false(map_caps_mon(&c, 'r'));
	struct map_cmd bad = add;
	snprintf(bad.name, sizeof(bad.name), "osd.7");
	expect(&m, bad, -EINVAL, "'osd.7' is not a client entity: client.NAME, NAME of A-Z a-z 0-9 _ . -");
	snprintf(bad.name, sizeof(bad.name), "client.x");
	snprintf(bad.caps, sizeof(bad.caps), "mon=rw osd=x");
	expect(&m, bad, -EINVAL, "bad capability 'osd=x': expected admin, mon=r, mon=rw, osd=r or "
				 "osd=rw, the last optionally followed by pool=GLOB and volume=GLOB");
	snprintf(bad.caps, sizeof(bad.caps), "fs=r");
	expect(&m, bad, -EINVAL, NULL);
	snprintf(bad.caps, sizeof(bad.caps), "mon");
	expect(&m, bad, -EINVAL, NULL);
	/* Snapshots keep the sealed secret; what clients and OSDs are sent
	 * does not (the id is public). */
	uint8_t *buf;
	size_t len;
	struct cluster_map copy;
	memset(&copy, 0, sizeof(copy));
	assert_int_equal(map_encode(&m, &buf, &len), 0);
	assert_int_equal(map_decode(buf, len, &copy), 0);
	assert_int_equal(map_key_by_entity(&copy, "client.vm")->cur.sealed[0], 9);
	free(buf);
	assert_int_equal(map_encode_public(&m, &buf, &len), 0);
	assert_int_equal(map_decode(buf, len, &copy), 0);
	assert_int_equal(map_key_by_entity(&copy, "client.vm")->cur.sealed[0], 0);
	assert_int_equal(map_key_by_entity(&copy, "client.vm")->cur.id[0], 7);
	assert_string_equal(map_key_by_entity(&copy, "client.vm")->caps, "mon=r osd=rw");
	free(buf);
	map_free(&copy);
	struct map_cmd caps = { .type = MAP_CMD_AUTH_CAPS, .name = "client.vm", .caps = "mon=rw" };
	expect(&m, caps, 0, NULL);
	c = caps_of(map_key_by_entity(&m, "client.vm")->caps);
	assert_true(map_caps_mon(&c, 'w'));
	assert_int_equal(c.n_osd, 0);
	struct map_cmd rm = { .type = MAP_CMD_AUTH_RM, .name = "client.vm" };
	expect(&m, rm, 0, NULL);
	assert_null(map_key_by_entity(&m, "client.vm"));
	expect(&m, rm, -ENOENT, "client.vm has no key");
	expect(&m, caps, -ENOENT, "client.vm has no key");
	map_free(&m);
}

/* A rotation keeps the previous secret valid until the leader ends it;
 * another rotation waits for that; the end must name the rotation. */
static void test_key_rotation(void **state)
{
	(void)state;
	struct cluster_map m;
	new_map(&m);
	struct map_cmd add = { .type = MAP_CMD_AUTH_ADD, .name = "client.vm",
			       .secret = { .sealed = { 1 }, .id = { 1 } }, .caps = "osd=rw" };
	expect(&m, add, 0, NULL);
	struct map_cmd rot = { .type = MAP_CMD_AUTH_ROTATE, .name = "client.vm",
			       .secret = { .sealed = { 2 }, .id = { 2 } }, .value = 600000,
			       .time_ms = 1000 };
	uint8_t id1[AUTH_KEY_ID_LEN] = { 1 }, id2[AUTH_KEY_ID_LEN] = { 2 }, id3[AUTH_KEY_ID_LEN] = { 3 };
	const struct map_key *k = map_key_by_entity(&m, "client.vm");
	assert_true(map_key_id_valid(k, id1, NULL));
	assert_false(map_key_id_valid(k, id2, NULL));
	expect(&m, rot, 0, NULL);
	k = map_key_by_entity(&m, "client.vm");
	bool old;
	assert_true(map_key_id_valid(k, id1, &old) && old);
	assert_true(map_key_id_valid(k, id2, &old) && !old);
	assert_false(map_key_id_valid(k, id3, NULL));
	assert_int_equal(k->old_until_ms, 601000);
	rot.secret.id[0] = 3;
	expect(&m, rot, -EBUSY, NULL);
	struct map_cmd end = { .type = MAP_CMD_AUTH_ROTATE_END, .name = "client.vm", .value = 5 };
	expect(&m, end, -ESTALE, "client.vm has no rotation ending at 5");
	end.value = 601000;
	expect(&m, end, 0, NULL);
	k = map_key_by_entity(&m, "client.vm");
	assert_false(map_key_id_valid(k, id1, NULL));
	assert_true(map_key_id_valid(k, id2, NULL));
	expect(&m, end, -ESTALE, NULL);
	expect(&m, rot, 0, NULL);
	struct map_cmd nograce = rot;
	nograce.value = 0;
	map_free(&m);
	new_map(&m);
	expect(&m, add, 0, NULL);
	expect(&m, nograce, -EINVAL, "a rotation needs a grace of 1 ms to 7 days and the leader's time");
	map_free(&m);
}

/* Grants by pool and volume, reads through clones, admin, bad texts. */
static void test_caps_scopes(void **state)
{
	(void)state;
	struct cluster_map m;
	new_map(&m);
	expect(&m, pool_cmd("vms", 3, 2), 0, NULL);
	expect(&m, pool_cmd("images", 3, 2), 0, NULL);
	const char *vols[][2] = { { "web-1", "vms" }, { "db-1", "vms" }, { "gold", "images" } };
	for (int i = 0; i < 3; i++) {
		struct map_cmd v = { .type = MAP_CMD_VOLUME_CREATE, .size = 1 << 30 };
		snprintf(v.name, sizeof(v.name), "%s", vols[i][0]);
		snprintf(v.pool_name, sizeof(v.pool_name), "%s", vols[i][1]);
		expect(&m, v, 0, NULL);
	}
	struct map_cmd snap = { .type = MAP_CMD_SNAP_CREATE, .name = "gold", .snap = "s" };
	expect(&m, snap, 0, NULL);
	struct map_cmd protect = { .type = MAP_CMD_SNAP_PROTECT, .name = "gold", .snap = "s",
				   .flag = 1 };
	expect(&m, protect, 0, NULL);
	struct map_cmd clone = { .type = MAP_CMD_VOLUME_CLONE, .name = "web-2", .src = "gold",
				 .snap = "s", .pool_name = "vms" };
	expect(&m, clone, 0, NULL);
	uint32_t vms = map_pool_by_name(&m, "vms")->id, images = map_pool_by_name(&m, "images")->id;
	uint64_t web1 = map_volume_by_name(&m, "web-1")->inode, db1 = map_volume_by_name(&m, "db-1")->inode;
	uint64_t gold = map_volume_by_name(&m, "gold")->inode, web2 = map_volume_by_name(&m, "web-2")->inode;
	uint32_t s = map_volume_by_name(&m, "web-2")->parent_snap; /* what web-2 reads of gold */
	assert_true(s != 0);

	struct map_caps c = caps_of("mon=r osd=rw pool=vms");
	assert_true(map_caps_object(&m, &c, 'w', vms, web1, 0));
	assert_true(map_caps_object(&m, &c, 'w', vms, 0, 0)); /* a listing */
	/* ...and reads what web-2 of vms reads through, not more of images */
	assert_true(map_caps_object(&m, &c, 'r', images, gold, s));
	assert_false(map_caps_object(&m, &c, 'r', images, gold, 0)); /* not gold's live data */
	assert_false(map_caps_object(&m, &c, 'r', images, gold, s + 1)); /* nor another snapshot */
	assert_false(map_caps_object(&m, &c, 'w', images, gold, s));
	assert_false(map_caps_object(&m, &c, 'r', images, 0, 0));

	c = caps_of("osd=r volume=web-*");
	assert_true(map_caps_object(&m, &c, 'r', vms, web1, 0));
	assert_false(map_caps_object(&m, &c, 'w', vms, web1, 0));
	assert_false(map_caps_object(&m, &c, 'r', vms, db1, 0));
	assert_false(map_caps_object(&m, &c, 'r', vms, 0, 0));
	assert_true(map_caps_object(&m, &c, 'r', images, gold, s)); /* web-2 reads through */
	assert_false(map_caps_object(&m, &c, 'r', images, gold, 0));
	assert_false(map_caps_object(&m, &c, 'w', images, gold, s));
	assert_false(map_caps_object(&m, &c, 'r', vms, web1 + 1000, 0)); /* no such volume */
	assert_false(map_caps_object(&m, &c, 'r', images, web1, 0)); /* wrong pool for it */

	c = caps_of("osd=rw pool=vms volume=web-* osd=r");
	assert_true(map_caps_object(&m, &c, 'w', vms, web2, 0));
	assert_false(map_caps_object(&m, &c, 'w', vms, db1, 0));
	assert_true(map_caps_object(&m, &c, 'r', vms, db1, 0));
	assert_true(map_caps_volume_write(&m, &c, map_volume_by_name(&m, "web-1")));
	assert_false(map_caps_volume_write(&m, &c, map_volume_by_name(&m, "db-1")));

	c = caps_of("admin");
	assert_true(map_caps_mon(&c, 'w') && map_caps_object(&m, &c, 'w', images, 0, 0));
	c = caps_of("osd=rw pool=v?s");
	assert_true(map_caps_object(&m, &c, 'w', vms, db1, 0));

	expect_bad_caps("pool=vms osd=rw", "'pool=vms' must follow an osd grant (osd=r or osd=rw)");
	expect_bad_caps("osd=rw pool=a pool=b", "bad capability 'pool=b': given twice for one grant");
	expect_bad_caps("osd=rw volume=", NULL);
	expect_bad_caps("osd=r osd=r osd=r osd=r osd=r osd=r osd=r osd=r osd=r",
			"more than 8 osd grants");
	expect_bad_caps("admin=1", NULL);
	map_free(&m);
}

static void test_snapshots_and_clones(void **state)
{
	(void)state;
	struct cluster_map m;
	new_map(&m);
	expect(&m, pool_cmd("rbd", 3, 2), 0, NULL);
	struct map_cmd vol = { .type = MAP_CMD_VOLUME_CREATE, .name = "base", .pool_name = "rbd",
			       .size = 1 << 30 };
	expect(&m, vol, 0, NULL);
	struct map_cmd snap = { .type = MAP_CMD_SNAP_CREATE, .name = "base", .snap = "gold" };
	expect(&m, snap, 0, NULL);
	expect(&m, snap, -EEXIST, "volume 'base' already has a snapshot 'gold'");
	snprintf(snap.snap, sizeof(snap.snap), "bad name");
	expect(&m, snap, -EINVAL, "'bad name' is not a valid snapshot name (1-63 of A-Z a-z 0-9 _ . -)");
	snprintf(snap.name, sizeof(snap.name), "nope");
	expect(&m, snap, -ENOENT, "volume 'nope' does not exist");
	/* A snapshot keeps the size it was taken at. */
	struct map_cmd grow = { .type = MAP_CMD_VOLUME_RESIZE, .name = "base", .value = 2ULL << 30 };
	expect(&m, grow, 0, NULL);
	const struct map_volume *b = map_volume_by_name(&m, "base");
	assert_int_equal(b->n_snaps, 1);
	assert_int_equal(b->snaps[0].id, 1);
	assert_int_equal(b->snaps[0].size, 1 << 30);
	/* A clone of it: same pool, the snapshot's size, a new inode; only
	 * of a protected snapshot. */
	struct map_cmd clone = { .type = MAP_CMD_VOLUME_CLONE, .name = "vm1", .src = "base",
				 .snap = "gold" };
	expect(&m, clone, -EPERM, "snapshot 'gold' of 'base' is not protected: protect it first "
				  "(basalt snap protect base@gold)");
	struct map_cmd protect = { .type = MAP_CMD_SNAP_PROTECT, .name = "base", .snap = "gold",
				   .flag = 1 };
	expect(&m, protect, 0, NULL);
	expect(&m, clone, 0, NULL);
	expect(&m, clone, -EEXIST, "volume 'vm1' already exists");
	snprintf(clone.name, sizeof(clone.name), "vm2");
	snprintf(clone.snap, sizeof(clone.snap), "silver");
	expect(&m, clone, -ENOENT, "volume 'base' has no snapshot 'silver'");
	b = map_volume_by_name(&m, "base");
	const struct map_volume *c = map_volume_by_name(&m, "vm1");
	assert_int_equal(c->parent_inode, b->inode);
	assert_int_equal(c->parent_snap, 1);
	assert_int_equal(c->size, 1 << 30);
	assert_int_equal(c->pool, b->pool);
	assert_true(c->inode > b->inode);
	/* Neither the snapshot nor its volume go while the clone needs them. */
	struct map_cmd srm = { .type = MAP_CMD_SNAP_RM, .name = "base", .snap = "gold" };
	expect(&m, srm, -EBUSY, "snapshot 'gold' of 'base' is protected: unprotect it first");
	struct map_cmd unprotect = protect;
	unprotect.flag = 0;
	expect(&m, unprotect, -EBUSY, "snapshot 'gold' of 'base' is the parent of clone 'vm1': "
				      "flatten or remove the clone first");
	struct map_cmd vrm = { .type = MAP_CMD_VOLUME_RM, .name = "base" };
	expect(&m, vrm, -EBUSY, "volume 'base' has 1 snapshots: remove them first");
	struct map_cmd crm = { .type = MAP_CMD_VOLUME_RM, .name = "vm1" };
	expect(&m, crm, 0, NULL);
	expect(&m, srm, -EBUSY, "snapshot 'gold' of 'base' is protected: unprotect it first");
	expect(&m, unprotect, 0, NULL);
	expect(&m, unprotect, -EALREADY, "snapshot 'gold' of 'base' is not protected");
	expect(&m, srm, 0, NULL);
	expect(&m, srm, -ENOENT, "volume 'base' has no snapshot 'gold'");
	expect(&m, vrm, 0, NULL);
	/* Snapshot ids are never reused within a volume; a volume holds at
	 * most MAP_MAX_SNAPS. */
	expect(&m, vol, 0, NULL);
	struct map_cmd s2 = { .type = MAP_CMD_SNAP_CREATE, .name = "base" };
	for (int i = 0; i < MAP_MAX_SNAPS; i++) {
		snprintf(s2.snap, sizeof(s2.snap), "s%d", i);
		expect(&m, s2, 0, NULL);
	}
	snprintf(s2.snap, sizeof(s2.snap), "one-more");
	expect(&m, s2, -ENOSPC, NULL);
	struct map_cmd s2rm = { .type = MAP_CMD_SNAP_RM, .name = "base", .snap = "s0" };
	expect(&m, s2rm, 0, NULL);
	expect(&m, s2, 0, NULL);
	b = map_volume_by_name(&m, "base");
	assert_int_equal(b->snaps[b->n_snaps - 1].id, MAP_MAX_SNAPS + 1);
	map_free(&m);
}

/* Protection, clones into another pool, the overlap a shrink cuts,
 * flatten, and the layers a read looks through. */
static void test_clone_layers_and_flatten(void **state)
{
	(void)state;
	struct cluster_map m;
	new_map(&m);
	expect(&m, pool_cmd("rbd", 3, 2), 0, NULL);
	expect(&m, pool_cmd("ssd", 2, 1), 0, NULL);
	struct map_cmd small = pool_cmd("small", 2, 1);
	small.pool.block_size = 64 << 10;
	expect(&m, small, 0, NULL);
	expect(&m, (struct map_cmd){ .type = MAP_CMD_VOLUME_CREATE, .name = "base",
				     .pool_name = "rbd", .size = 8 << 20 }, 0, NULL);
	struct map_cmd gold = { .type = MAP_CMD_SNAP_CREATE, .name = "base", .snap = "gold" };
	expect(&m, gold, 0, NULL);
	struct map_cmd protect = { .type = MAP_CMD_SNAP_PROTECT, .name = "base", .snap = "gold",
				   .flag = 1 };
	expect(&m, protect, 0, NULL);
	expect(&m, protect, -EALREADY, "snapshot 'gold' of 'base' is already protected");
	protect.snap[0] = 'x';
	expect(&m, protect, -ENOENT, "volume 'base' has no snapshot 'xold'");
	struct map_cmd clone = { .type = MAP_CMD_VOLUME_CLONE, .name = "c1", .src = "base",
				 .snap = "gold", .pool_name = "nope" };
	expect(&m, clone, -ENOENT, "pool 'nope' does not exist");
	snprintf(clone.pool_name, sizeof(clone.pool_name), "small");
	expect(&m, clone, -EINVAL, "pool 'small' has 65536-byte objects and the parent's pool "
				   "'rbd' 131072-byte ones: a clone needs the same");
	snprintf(clone.pool_name, sizeof(clone.pool_name), "ssd");
	expect(&m, clone, 0, NULL);
	const struct map_volume *b = map_volume_by_name(&m, "base");
	const struct map_volume *c = map_volume_by_name(&m, "c1");
	assert_int_equal(c->pool, map_pool_by_name(&m, "ssd")->id);
	assert_int_equal(c->parent_overlap, 8 << 20);
	/* A clone of the clone: three layers, each bounded by the overlaps. */
	struct map_cmd csnap = { .type = MAP_CMD_SNAP_CREATE, .name = "c1", .snap = "s" };
	expect(&m, csnap, 0, NULL);
	struct map_cmd cprotect = { .type = MAP_CMD_SNAP_PROTECT, .name = "c1", .snap = "s",
				    .flag = 1 };
	expect(&m, cprotect, 0, NULL);
	struct map_cmd clone2 = { .type = MAP_CMD_VOLUME_CLONE, .name = "c2", .src = "c1",
				  .snap = "s" };
	expect(&m, clone2, 0, NULL);
	struct map_cmd before = { .type = MAP_CMD_SNAP_CREATE, .name = "c2", .snap = "before" };
	expect(&m, before, 0, NULL);
	struct map_cmd shrink = { .type = MAP_CMD_VOLUME_RESIZE, .name = "c2", .value = 4 << 20 };
	expect(&m, shrink, 0, NULL);
	shrink.value = 16 << 20; /* growing back does not read the parent again */
	expect(&m, shrink, 0, NULL);
	b = map_volume_by_name(&m, "base");
	c = map_volume_by_name(&m, "c1");
	const struct map_volume *c2 = map_volume_by_name(&m, "c2");
	struct map_layer l[MAP_LAYERS_MAX];
	assert_int_equal(map_volume_layers(&m, c2, OBJECT_SNAP_HEAD, l), 3);
	assert_int_equal(l[0].inode, c2->inode);
	assert_int_equal(l[0].snap, OBJECT_SNAP_HEAD);
	assert_int_equal(l[0].limit_bytes, 16 << 20);
	assert_int_equal(l[1].inode, c->inode);
	assert_int_equal(l[1].pool, c->pool);
	assert_int_equal(l[1].snap, 1);
	assert_int_equal(l[1].limit_bytes, 4 << 20);
	assert_int_equal(l[2].inode, b->inode);
	assert_int_equal(l[2].snap, 1);
	assert_int_equal(l[2].limit_bytes, 4 << 20);
	/* A snapshot taken before the shrink still reads 8 MiB of its parent. */
	assert_int_equal(map_volume_layers(&m, c2, 1, l), 3);
	assert_int_equal(l[0].limit_bytes, 8 << 20);
	assert_int_equal(l[1].limit_bytes, 8 << 20);
	assert_int_equal(l[2].limit_bytes, 8 << 20);
	assert_int_equal(map_volume_layers(&m, c, 1, l), 2);
	assert_int_equal(l[0].snap, 1);
	assert_int_equal(l[0].limit_bytes, 8 << 20);
	assert_int_equal(map_volume_layers(&m, c, 7, l), -ENOENT);
	/* Flatten: refused while it has snapshots (they read through), and
	 * for a volume with no parent. */
	struct map_cmd flatten = { .type = MAP_CMD_VOLUME_FLATTEN, .name = "c1" };
	expect(&m, flatten, -EBUSY, "volume 'c1' has 1 snapshots, which read through to its "
				    "parent: remove them first");
	flatten = (struct map_cmd){ .type = MAP_CMD_VOLUME_FLATTEN, .name = "base" };
	expect(&m, flatten, -EALREADY, "volume 'base' is not a clone (no parent)");
	flatten = (struct map_cmd){ .type = MAP_CMD_VOLUME_FLATTEN, .name = "c2" };
	expect(&m, flatten, -EBUSY, NULL);
	expect(&m, (struct map_cmd){ .type = MAP_CMD_SNAP_RM, .name = "c2", .snap = "before" }, 0,
	       NULL);
	expect(&m, flatten, 0, NULL);
	c2 = map_volume_by_name(&m, "c2");
	assert_int_equal(c2->parent_inode, 0);
	assert_int_equal(c2->parent_overlap, 0);
	assert_int_equal(map_volume_layers(&m, c2, OBJECT_SNAP_HEAD, l), 1);
	/* Now c1@s has no clone: it may be unprotected and removed. */
	cprotect.flag = 0;
	expect(&m, cprotect, 0, NULL);
	expect(&m, (struct map_cmd){ .type = MAP_CMD_SNAP_RM, .name = "c1", .snap = "s" }, 0, NULL);
	/* The protection survives the map's encoding. */
	uint8_t *buf;
	size_t len;
	struct cluster_map back = { 0 }; /* map_decode frees what it held */
	assert_int_equal(map_encode(&m, &buf, &len), 0);
	assert_int_equal(map_decode(buf, len, &back), 0);
	free(buf);
	assert_true(map_volume_by_name(&back, "base")->snaps[0].protected);
	assert_int_equal(map_volume_by_name(&back, "c1")->parent_overlap, 8 << 20);
	map_free(&back);
	map_free(&m);
}

/* SNAP_CREATE of several volumes: all in one epoch, or none. */
static void test_snapshot_groups(void **state)
{
	(void)state;
	struct cluster_map m;
	new_map(&m);
	expect(&m, pool_cmd("rbd", 3, 2), 0, NULL);
	struct map_cmd vol = { .type = MAP_CMD_VOLUME_CREATE, .pool_name = "rbd", .size = 1 << 30 };
	const char *names[] = { "root", "data", "logs" };
	for (int i = 0; i < 3; i++) {
		snprintf(vol.name, sizeof(vol.name), "%s", names[i]);
		expect(&m, vol, 0, NULL);
	}
	struct map_cmd g = { .type = MAP_CMD_SNAP_CREATE, .name = "root", .snap = "a",
			     .time_ms = 1234, .n_group = 2 };
	snprintf(g.group[0].volume, MAP_NAME_MAX, "data");
	snprintf(g.group[0].snap, MAP_NAME_MAX, "a");
	snprintf(g.group[1].volume, MAP_NAME_MAX, "nope");
	snprintf(g.group[1].snap, MAP_NAME_MAX, "a");
	uint64_t before = m.epoch;
	expect(&m, g, -ENOENT, "volume 'nope' does not exist");
	snprintf(g.group[1].volume, MAP_NAME_MAX, "data");
	expect(&m, g, -EINVAL, "volume 'data' is named twice");
	snprintf(g.group[1].volume, MAP_NAME_MAX, "logs");
	snprintf(g.group[1].snap, MAP_NAME_MAX, "b@c");
	expect(&m, g, -EINVAL, "'b@c' is not a valid snapshot name (1-63 of A-Z a-z 0-9 _ . -)");
	assert_int_equal(m.epoch, before); /* nothing changed */
	snprintf(g.group[1].snap, MAP_NAME_MAX, "b");
	expect(&m, g, 0, NULL);
	assert_int_equal(m.epoch, before + 1);
	for (int i = 0; i < 3; i++) {
		const struct map_volume *v = map_volume_by_name(&m, names[i]);
		assert_int_equal(v->n_snaps, 1);
		assert_int_equal(v->snaps[0].epoch, m.epoch);
		assert_int_equal(v->snaps[0].time_ms, 1234);
	}
	assert_non_null(map_snap_by_name(map_volume_by_name(&m, "logs"), "b"));
	/* The encoding keeps the epoch and time. */
	uint8_t *buf;
	size_t len;
	assert_int_equal(map_encode(&m, &buf, &len), 0);
	struct cluster_map d = { 0 }; /* map_decode frees what it held */
	assert_int_equal(map_decode(buf, len, &d), 0);
	assert_int_equal(map_volume_by_name(&d, "data")->snaps[0].epoch, m.epoch);
	assert_int_equal(map_volume_by_name(&d, "data")->snaps[0].time_ms, 1234);
	free(buf);
	map_free(&d);
	map_free(&m);
}

/* Which clones a snapshot still needs: one whose content was written
 * before some remaining snapshot at or below its id. */
static void test_snapshot_clone_rule(void **state)
{
	(void)state;
	struct map_snap snaps[2] = { { .id = 1, .epoch = 10 }, { .id = 3, .epoch = 30 } };
	struct map_volume v = { .n_snaps = 2, .next_snap = 3, .snaps = snaps };
	/* Content of epoch 5: serves snapshot 1 (and 3 if the clone is 3's). */
	assert_true(map_snap_clone_needed(&v, 1, 5ull << 32));
	assert_true(map_snap_clone_needed(&v, 2, 5ull << 32));
	/* Content of epoch 15, cloned at snapshot 2 (removed): 1 was before
	 * it was written, 3 after the clone; no one needs it. */
	assert_false(map_snap_clone_needed(&v, 2, 15ull << 32));
	assert_true(map_snap_clone_needed(&v, 3, 15ull << 32));
	/* Written in the epoch that made snapshot 3: after it. */
	assert_false(map_snap_clone_needed(&v, 3, 30ull << 32 | 7));
	v.n_snaps = 0;
	assert_false(map_snap_clone_needed(&v, 3, 5ull << 32));
}

/* Snapshot ids stop one short of the id an EC shard's pending write uses. */
static void test_snapshot_ids_end(void **state)
{
	(void)state;
	struct cluster_map m;
	new_map(&m);
	expect(&m, pool_cmd("rbd", 3, 2), 0, NULL);
	struct map_cmd v = { .type = MAP_CMD_VOLUME_CREATE, .name = "vm", .pool_name = "rbd",
			     .size = 1 << 30 };
	expect(&m, v, 0, NULL);
	struct map_volume *vol = (struct map_volume *)map_volume_by_name(&m, "vm");
	vol->next_snap = OBJECT_SNAP_LAST - 1;
	struct map_cmd snap = { .type = MAP_CMD_SNAP_CREATE, .name = "vm", .snap = "last" };
	expect(&m, snap, 0, NULL);
	vol = (struct map_volume *)map_volume_by_name(&m, "vm");
	assert_int_equal(vol->snaps[vol->n_snaps - 1].id, OBJECT_SNAP_LAST);
	assert_true(OBJECT_SNAP_LAST < OBJECT_SNAP_PENDING);
	snprintf(snap.snap, sizeof(snap.snap), "past");
	expect(&m, snap, -ENOSPC, "volume 'vm' has used all 1048574 snapshot ids");
	map_free(&m);
}

static void test_pg_placement(void **state)
{
	(void)state;
	struct cluster_map m;
	new_map(&m);
	for (uint32_t i = 0; i < 6; i++) /* osd_cmd puts osd.i on host i % 3 */
		expect(&m, osd_cmd(MAP_CMD_OSD_BOOT, i), 0, NULL);
	expect(&m, pool_cmd("rbd", 3, 2), 0, NULL);
	const struct map_pool *p = map_pool_by_name(&m, "rbd");
	assert_ptr_equal(map_pool_by_id(&m, p->id), p);
	uint32_t up[4], acting[4];
	for (uint32_t pg = 0; pg < p->pg_num; pg++) {
		assert_int_equal(map_pg_osds(&m, p, pg, up, 4), 3);
		assert_true(up[0] % 3 != up[1] % 3 && up[1] % 3 != up[2] % 3 && up[0] % 3 != up[2] % 3);
	}
	/* A down OSD stays in the PG's OSDs but leaves its acting set;
	 * marked out, another OSD of its host takes its place. */
	uint32_t pg = 0;
	map_pg_osds(&m, p, pg, up, 4);
	uint32_t gone = up[0];
	expect(&m, osd_cmd(MAP_CMD_OSD_DOWN, gone), 0, NULL);
	uint32_t again[4];
	assert_int_equal(map_pg_osds(&m, p, pg, again, 4), 3);
	assert_memory_equal(again, up, sizeof(uint32_t) * 3);
	assert_int_equal(map_pg_acting(&m, p, pg, acting, 4), 2);
	assert_int_equal(acting[0], up[1]); /* the next one is primary */
	assert_int_equal(acting[1], up[2]);
	/* Each keeps its position (an EC chunk's place): 1 and 2, 0 empty. */
	uint8_t shards[4];
	memset(acting, 0xff, sizeof(acting));
	assert_int_equal(map_pg_acting_shards(&m, p, pg, acting, shards, 4), 2);
	assert_true(acting[0] == up[1] && shards[0] == 1 && acting[1] == up[2] && shards[1] == 2);
	expect(&m, osd_cmd(MAP_CMD_OSD_BOOT, gone), 0, NULL);
	assert_int_equal(map_pg_acting_shards(&m, p, pg, acting, shards, 4), 3);
	for (int k = 0; k < 3; k++)
		assert_true(acting[k] == up[k] && shards[k] == k);
	expect(&m, osd_cmd(MAP_CMD_OSD_DOWN, up[1]), 0, NULL);
	assert_int_equal(map_pg_acting_shards(&m, p, pg, acting, shards, 4), 2);
	assert_true(acting[0] == up[0] && shards[0] == 0 && acting[1] == up[2] && shards[1] == 2);
	expect(&m, osd_cmd(MAP_CMD_OSD_BOOT, up[1]), 0, NULL);
	expect(&m, osd_cmd(MAP_CMD_OSD_DOWN, gone), 0, NULL);
	expect(&m, osd_cmd(MAP_CMD_OSD_OUT, gone), 0, NULL);
	assert_int_equal(map_pg_osds(&m, p, pg, again, 4), 3);
	bool has_gone = false, has_sibling = false;
	for (int k = 0; k < 3; k++) {
		has_gone |= again[k] == gone;
		has_sibling |= again[k] % 3 == gone % 3;
	}
	assert_false(has_gone);
	assert_true(has_sibling);
	map_free(&m);
}

static struct map_cmd pg_active(uint32_t pool, uint32_t pg, uint64_t epoch, uint64_t prev,
				uint32_t a, uint32_t b)
{
	struct map_cmd c = { .type = MAP_CMD_PG_ACTIVE, .n_active = 1, .prev_epoch = { prev } };
	c.active[0] = (struct map_pg_active){ pool, pg, epoch, a, 2, { a, b } };
	return c;
}

static void test_pg_activation_records(void **state)
{
	(void)state;
	struct cluster_map m;
	new_map(&m);
	for (uint32_t i = 0; i < 4; i++)
		expect(&m, osd_cmd(MAP_CMD_OSD_BOOT, i), 0, NULL);
	expect(&m, pool_cmd("rbd", 2, 2), 0, NULL); /* pool 1, 64 PGs */
	assert_null(map_pg_active_get(&m, 1, 5));
	/* No interval begins at epoch 0 (a monitor once read a missing
	 * record here). */
	expect(&m, pg_active(1, 5, 0, 0, 0, 1), -EINVAL, "pg 1.5: interval epoch 0 out of order");
	/* First activation: replaces "none" (epoch 0). */
	expect(&m, pg_active(1, 5, 3, 0, 0, 1), 0, NULL);
	const struct map_pg_active *a = map_pg_active_get(&m, 1, 5);
	assert_non_null(a);
	assert_true(a->epoch == 3 && a->n == 2 && a->osds[0] == 0 && a->osds[1] == 1);
	/* Compare-and-swap: a primary that peered against the old record
	 * loses to one that already replaced it. */
	expect(&m, pg_active(1, 5, 6, 3, 2, 3), 0, NULL);
	expect(&m, pg_active(1, 5, 7, 3, 0, 1), -ESTALE,
	       "pg 1.5 was activated in epoch 6 since (not 3): peer again");
	/* The same interval again: only its own primary (growing the set of
	 * complete members once recovery is done); never an older one. */
	expect(&m, pg_active(1, 5, 6, 6, 0, 1), -EINVAL, "pg 1.5: interval epoch 6 out of order");
	expect(&m, pg_active(1, 5, 5, 6, 2, 3), -EINVAL, "pg 1.5: interval epoch 5 out of order");
	struct map_cmd grow = pg_active(1, 5, 6, 6, 2, 3);
	grow.active[0].n = 3;
	grow.active[0].osds[2] = 1;
	expect(&m, grow, 0, NULL);
	assert_int_equal(map_pg_active_get(&m, 1, 5)->n, 3);
	expect(&m, pg_active(1, 5, 999, 6, 0, 1), -EINVAL, NULL); /* beyond the map's epoch */
	expect(&m, pg_active(1, 64, 3, 0, 0, 1), -ENOENT, "pg 1.40 does not exist");
	expect(&m, pg_active(9, 0, 3, 0, 0, 1), -ENOENT, NULL);
	/* One complete member is enough to record (min_size counts the
	 * acting set, which the OSD checks); none is not. */
	struct map_cmd small = pg_active(1, 6, 3, 0, 0, 1);
	small.active[0].n = 1;
	expect(&m, small, 0, NULL);
	small = pg_active(1, 7, 3, 0, 0, 1);
	small.active[0].n = 0;
	expect(&m, small, -EINVAL, "pg 1.7: no complete OSD to record");
	expect(&m, pg_active(1, 8, 3, 0, 0, 77), -ENOENT, "osd.77 does not exist");
	/* Many PGs in one command: those that moved on are skipped, the
	 * rest recorded, the epoch bumped once; none applying is refused. */
	uint64_t e0 = m.epoch;
	struct map_cmd batch = pg_active(1, 20, 3, 0, 0, 1);
	batch.n_active = 3;
	batch.active[1] = (struct map_pg_active){ 1, 21, 3, 0, 2, { 0, 1 } };
	batch.prev_epoch[1] = 0;
	batch.active[2] = (struct map_pg_active){ 1, 5, 7, 0, 2, { 0, 1 } };
	batch.prev_epoch[2] = 3; /* pg 1.5 is at epoch 6 now */
	expect(&m, batch, 0, NULL);
	assert_int_equal(m.epoch, e0 + 1);
	assert_non_null(map_pg_active_get(&m, 1, 20));
	assert_non_null(map_pg_active_get(&m, 1, 21));
	assert_int_equal(map_pg_active_get(&m, 1, 5)->epoch, 6);
	expect(&m, batch, -ESTALE, "pg 1.14 was activated in epoch 3 since (not 0): peer again");
	batch.active[1].osds[1] = 99;
	expect(&m, batch, -ENOENT, "osd.99 does not exist");
	/* Records stay sorted and survive encoding. */
	expect(&m, pg_active(1, 0, 3, 0, 1, 2), 0, NULL);
	expect(&m, pg_active(1, 63, 3, 0, 2, 3), 0, NULL);
	assert_int_equal(m.n_pg_active, 6);
	assert_true(m.pg_active[0].pg == 0 && m.pg_active[1].pg == 5 && m.pg_active[2].pg == 6 &&
		    m.pg_active[3].pg == 20 && m.pg_active[5].pg == 63);
	uint8_t *buf;
	size_t len;
	struct cluster_map copy;
	memset(&copy, 0, sizeof(copy));
	assert_int_equal(map_encode(&m, &buf, &len), 0);
	assert_int_equal(map_decode(buf, len, &copy), 0);
	assert_int_equal(map_pg_active_get(&copy, 1, 5)->epoch, 6);
	free(buf);
	map_free(&copy);
	/* pg_num grows by whole multiples; every child inherits its parent's
	 * record (the objects that move to it were acknowledged there). */
	struct map_cmd set = { .type = MAP_CMD_POOL_SET, .name = "rbd", .key = "pg_num", .value = 96 };
	expect(&m, set, -EINVAL,
	       "pg_num can only grow, by a whole multiple (now 64), so each PG splits into whole PGs");
	set.value = 192;
	expect(&m, set, 0, NULL);
	for (uint32_t q = 5; q < 192; q += 64) {
		a = map_pg_active_get(&m, 1, q);
		assert_non_null(a);
		assert_true(a->epoch == 6 && a->primary == 2 && a->osds[0] == 2 && a->osds[1] == 3);
	}
	assert_null(map_pg_active_get(&m, 1, 7 + 64));
	assert_int_equal(m.n_pg_active, 18);
	/* A recorded member cannot be removed: it may hold the newest data. */
	expect(&m, (struct map_cmd){ .type = MAP_CMD_OSD_DOWN, .osd = 3 }, 0, NULL);
	expect(&m, osd_cmd(MAP_CMD_OSD_RM, 3), -EBUSY,
	       "osd.3 may hold the newest data of pg 1.5: mark it out and wait until its PGs are "
	       "clean without it");
	/* Removing the pool drops its records. */
	expect(&m, (struct map_cmd){ .type = MAP_CMD_POOL_RM, .name = "rbd" }, 0, NULL);
	assert_int_equal(m.n_pg_active, 0);
	map_free(&m);
}

static void random_cmd(uint64_t *rng, struct map_cmd *c)
{
	*rng = *rng * 6364136223846793005ULL + 1442695040888963407ULL;
	uint64_t r = *rng >> 33;
	memset(c, 0, sizeof(*c));
	c->type = (enum map_cmd_type)(1 + r % MAP_CMD_LAST);
	snprintf(c->snap, sizeof(c->snap), "s%u", (unsigned)(r / 11 % 3));
	snprintf(c->src, sizeof(c->src), "n%u", (unsigned)(r / 13 % 5));
	c->time_ms = r % 100000;
	c->flag = (uint8_t)(r / 3 % 4);
	snprintf(c->caps, sizeof(c->caps), "%s", r % 3 ? "mon=r" : "osd=rw");
	c->secret.sealed[0] = (uint8_t)r;
	c->secret.id[0] = (uint8_t)(r >> 8);
	c->value = r % 7 + 1;
	c->osd = (uint32_t)(r / 13 % 8);
	snprintf(c->addr, sizeof(c->addr), "10.0.0.%u:6800", c->osd);
	snprintf(c->host, sizeof(c->host), "h%u", c->osd % 3);
	c->device_bytes = (r % 100 + 1) << 30;
	c->weight = (uint32_t)r;
	bool auth = (c->type >= MAP_CMD_AUTH_ADD && c->type <= MAP_CMD_AUTH_RM) ||
		    c->type == MAP_CMD_AUTH_ROTATE || c->type == MAP_CMD_AUTH_ROTATE_END;
	snprintf(c->name, sizeof(c->name), "%sn%u", auth ? "client." : "", (unsigned)(r / 100 % 5));
	c->lock_client = r / 41 % 3 + 1;
	snprintf(c->owner, sizeof(c->owner), "client.admin on h%u", (unsigned)(r / 43 % 3));
	snprintf(c->new_name, sizeof(c->new_name), "n%u", (unsigned)(r / 1000 % 5));
	snprintf(c->pool_name, sizeof(c->pool_name), "n%u", (unsigned)(r / 7 % 5));
	static const char *const keys[] = { "size", "pg_num", "max_bytes", "nearfull",
					    "backfillfull", "full" };
	snprintf(c->key, sizeof(c->key), "%s", keys[r / 47 % 6]);
	c->value = (r % 8 + 1) * 512;
	c->size = (r % 16 + 1) << 20;
	c->pool = (struct map_pool){ .type = MAP_POOL_REPLICATED, .size = (uint32_t)(r % 4 + 1),
				     .min_size = 1, .pg_num = 8, .block_size = 128 << 10 };
	c->n_active = 1 + (uint32_t)(r / 17 % 2);
	for (uint32_t i = 0; i < c->n_active; i++) {
		c->active[i] = (struct map_pg_active){ (uint32_t)(r / 19 % 3), (uint32_t)(r / 23 % 8 + i),
						       r / 29 % 40, c->osd, 1, { c->osd } };
		c->prev_epoch[i] = r / 31 % 3 ? 0 : r / 37 % 40;
	}
}

static void test_determinism_and_encoding(void **state)
{
	(void)state;
	struct cluster_map a, b, c;
	new_map(&a);
	new_map(&b);
	memset(&c, 0, sizeof(c));
	uint64_t rng = 42;
	unsigned applied = 0;
	for (int i = 0; i < 5000; i++) {
		struct map_cmd cmd;
		random_cmd(&rng, &cmd);
		/* The second map gets the command through the wire encoding. */
		uint8_t buf[MAP_CMD_MAX_LEN];
		int len = map_cmd_encode(&cmd, buf, sizeof(buf));
		struct map_cmd wire;
		assert_int_equal(map_cmd_decode(buf, (size_t)len, &wire), 0);
		char e1[256], e2[256];
		int r1 = map_apply(&a, &cmd, e1, sizeof(e1), NULL);
		int r2 = map_apply(&b, &wire, e2, sizeof(e2), NULL);
		assert_int_equal(r1, r2);
		applied += r1 == 0;
	}
	assert_true(applied > 500);
	assert_int_equal(a.epoch, applied);
	uint8_t *ea, *eb, *ec;
	size_t la, lb, lc;
	assert_int_equal(map_encode(&a, &ea, &la), 0);
	assert_int_equal(map_encode(&b, &eb, &lb), 0);
	assert_int_equal(la, lb);
	assert_memory_equal(ea, eb, la);
	/* Decoding gives back the same map. */
	assert_int_equal(map_decode(ea, la, &c), 0);
	assert_int_equal(map_encode(&c, &ec, &lc), 0);
	assert_int_equal(lc, la);
	assert_memory_equal(ec, ea, la);
	/* Truncated or padded encodings are refused, leaving the map alone. */
	for (size_t cut = 0; cut < la; cut += 7)
		assert_int_equal(map_decode(ea, cut, &c), -EBADMSG);
	assert_int_equal(c.epoch, a.epoch);
	free(ea);
	free(eb);
	free(ec);
	map_free(&a);
	map_free(&b);
	map_free(&c);
}

/* Full ratios, OSD fullness, pool quotas: what writes are refused for. */
static void test_fullness(void **state)
{
	(void)state;
	struct cluster_map m;
	new_map(&m);
	assert_int_equal(m.nearfull_ratio, 8500);
	assert_int_equal(m.backfillfull_ratio, 9000);
	assert_int_equal(m.full_ratio, 9500);
	assert_int_equal(map_full_state_for(&m, 8499), MAP_FULL_NONE);
	assert_int_equal(map_full_state_for(&m, 8500), MAP_FULL_NEAR);
	assert_int_equal(map_full_state_for(&m, 9000), MAP_FULL_BACKFILL);
	assert_int_equal(map_full_state_for(&m, 9500), MAP_FULL_FULL);
	assert_int_equal(map_full_state_for(&m, 10000), MAP_FULL_FULL);
	expect(&m, (struct map_cmd){ .type = MAP_CMD_SET_RATIO, .key = "full", .value = 8000 },
	       -EINVAL,
	       "the ratios must keep nearfull <= backfillfull <= full (they would be 0.85, 0.9, 0.8)");
	expect(&m, (struct map_cmd){ .type = MAP_CMD_SET_RATIO, .key = "half", .value = 5000 },
	       -EINVAL, "'half' is not one of nearfull, backfillfull, full");
	expect(&m, (struct map_cmd){ .type = MAP_CMD_SET_RATIO, .key = "full", .value = 10001 },
	       -EINVAL, "a ratio is above 0 and at most 1");
	expect(&m, (struct map_cmd){ .type = MAP_CMD_SET_RATIO, .key = "full", .value = 9700 }, 0,
	       NULL);
	assert_int_equal(map_full_state_for(&m, 9600), MAP_FULL_BACKFILL);
	for (uint32_t i = 0; i < 3; i++)
		expect(&m, osd_cmd(MAP_CMD_OSD_BOOT, i), 0, NULL);
	expect(&m, pool_cmd("rbd", 3, 2), 0, NULL);
	const struct map_pool *p = map_pool_by_name(&m, "rbd");
	char why[128];
	assert_false(map_pool_full(&m, p, why, sizeof(why)));
	expect(&m, (struct map_cmd){ .type = MAP_CMD_OSD_FULL, .osd = 1, .flag = MAP_FULL_BACKFILL },
	       0, NULL);
	expect(&m, (struct map_cmd){ .type = MAP_CMD_OSD_FULL, .osd = 1, .flag = MAP_FULL_BACKFILL },
	       -EALREADY, "osd.1 is already backfillfull");
	expect(&m, (struct map_cmd){ .type = MAP_CMD_OSD_FULL, .osd = 7, .flag = MAP_FULL_FULL },
	       -ENOENT, "osd.7 does not exist");
	expect(&m, (struct map_cmd){ .type = MAP_CMD_OSD_FULL, .osd = 1, .flag = 4 }, -EINVAL,
	       "unknown fullness 4");
	assert_false(map_pool_full(&m, p, NULL, 0));
	expect(&m, (struct map_cmd){ .type = MAP_CMD_OSD_FULL, .osd = 2, .flag = MAP_FULL_FULL }, 0,
	       NULL);
	assert_true(map_pool_full(&m, p, why, sizeof(why)));
	assert_string_equal(why, "osd.2 is full (past the full ratio 0.97)");
	/* A full OSD that is out holds nothing new: writes go on. */
	expect(&m, osd_cmd(MAP_CMD_OSD_OUT, 2), 0, NULL);
	assert_false(map_pool_full(&m, p, NULL, 0));
	/* Quotas. */
	expect(&m, (struct map_cmd){ .type = MAP_CMD_POOL_SET, .name = "rbd", .key = "max_bytes",
				     .value = 1ULL << 30 }, 0, NULL);
	assert_int_equal(p->max_bytes, 1ULL << 30);
	expect(&m, (struct map_cmd){ .type = MAP_CMD_POOL_FULL, .name = "rbd", .flag = 0 },
	       -EALREADY, "pool 'rbd' is already below its quota");
	expect(&m, (struct map_cmd){ .type = MAP_CMD_POOL_FULL, .name = "rbd", .flag = 1 }, 0, NULL);
	assert_true(map_pool_full(&m, p, why, sizeof(why)));
	assert_string_equal(why, "pool 'rbd' reached its quota of 1073741824 bytes");
	/* No quota: nothing to be full of. */
	expect(&m, (struct map_cmd){ .type = MAP_CMD_POOL_SET, .name = "rbd", .key = "max_bytes",
				     .value = 0 }, 0, NULL);
	assert_false(map_pool_full(&m, p, NULL, 0));
	/* All of it survives encoding. */
	uint8_t *buf;
	size_t len;
	struct cluster_map d;
	memset(&d, 0, sizeof(d));
	assert_int_equal(map_encode(&m, &buf, &len), 0);
	assert_int_equal(map_decode(buf, len, &d), 0);
	assert_int_equal(d.full_ratio, 9700);
	assert_int_equal(d.osds[1].full, MAP_FULL_BACKFILL);
	assert_int_equal(d.osds[2].full, MAP_FULL_FULL);
	free(buf);
	map_free(&d);
	map_free(&m);
}

static void test_duplicates_applied_once(void **state)
{
	(void)state;
	struct cluster_map m;
	new_map(&m);
	struct map_cmd c = pool_cmd("rbd", 3, 2);
	c.client = 77;
	c.req = 1;
	char err[128];
	bool dup;
	assert_int_equal(map_apply(&m, &c, err, sizeof(err), &dup), 0);
	assert_false(dup);
	uint64_t epoch = m.epoch;
	/* The same request again (a retry): done, not done twice. */
	assert_int_equal(map_apply(&m, &c, err, sizeof(err), &dup), 0);
	assert_true(dup);
	assert_int_equal(m.epoch, epoch);
	/* Another request with the same content is a real second attempt. */
	c.req = 2;
	assert_int_equal(map_apply(&m, &c, err, sizeof(err), &dup), -EEXIST);
	/* The table survives a snapshot. */
	c.req = 1;
	uint8_t *buf;
	size_t len;
	struct cluster_map copy;
	memset(&copy, 0, sizeof(copy));
	assert_int_equal(map_encode(&m, &buf, &len), 0);
	assert_int_equal(map_decode(buf, len, &copy), 0);
	assert_int_equal(map_apply(&copy, &c, err, sizeof(err), &dup), 0);
	assert_true(dup);
	free(buf);
	map_free(&m);
	map_free(&copy);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cmd_encoding),
		cmocka_unit_test(test_pools),
		cmocka_unit_test(test_snapshot_ids_end),
		cmocka_unit_test(test_osds),
		cmocka_unit_test(test_volumes),
		cmocka_unit_test(test_locks_and_fencing),
		cmocka_unit_test(test_keys_and_caps),
		cmocka_unit_test(test_key_rotation),
		cmocka_unit_test(test_caps_scopes),
		cmocka_unit_test(test_snapshots_and_clones),
		cmocka_unit_test(test_snapshot_groups),
		cmocka_unit_test(test_snapshot_clone_rule),
		cmocka_unit_test(test_clone_layers_and_flatten),
		cmocka_unit_test(test_pg_placement),
		cmocka_unit_test(test_pg_activation_records),
		cmocka_unit_test(test_determinism_and_encoding),
		cmocka_unit_test(test_duplicates_applied_once),
		cmocka_unit_test(test_fullness),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
