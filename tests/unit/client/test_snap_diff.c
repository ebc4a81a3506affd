/* Snapshot diffs (client/snap_diff.c) over a fake cluster whose objects
 * carry versions (epoch << 32 | seq) as the OSDs write them: which
 * objects differ between two snapshots or a snapshot and the live
 * volume, merging, sizes, refusals — and that a diff only lists: the
 * fake fails the test on anything but a map or a listing (the ops table
 * has no read at all). The space accounting of client/snap_admin.c
 * (bs_volumes_usage, behind snap ls and volume du) runs over the same
 * fake: every stored byte counted once, each pool listed once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/volume_admin.h"

#define FAKE_OBJECTS_MAX 64
#define BLOCK (128u << 10)

struct fake {
	struct cluster_map map;
	struct object_id objects[FAKE_OBJECTS_MAX];
	uint64_t versions[FAKE_OBJECTS_MAX];
	size_t n_objects;
	uint32_t seq;
	unsigned lists;
	char listed[128]; /* the pools listed */
	int fail_list;
};

static int fake_get_map(void *ctx, struct cluster_map *out, char *why, size_t why_len)
{
	struct fake *f = ctx;
	uint8_t *buf;
	size_t len;
	(void)why;
	(void)why_len;
	memset(out, 0, sizeof(*out)); /* as the real op: map_decode frees what *OUT held */
	assert_int_equal(map_encode(&f->map, &buf, &len), 0);
	assert_int_equal(map_decode(buf, len, out), 0);
	free(buf);
	return 0;
}

static int fake_list(void *ctx, const char *pool, bs_admin_list_fn fn, void *arg, char *why,
		     size_t why_len)
{
	struct fake *f = ctx;
	size_t at = strlen(f->listed);
	snprintf(f->listed + at, sizeof(f->listed) - at, "%s; ", pool);
	f->lists++;
	if (f->fail_list)
		return snprintf(why, why_len, "pg 1.3 has no OSD up"), f->fail_list;
	for (size_t i = 0; i < f->n_objects; i++) {
		int rc = fn(&f->objects[i], f->versions[i], 4096, arg);
		if (rc)
			return rc;
	}
	return 0;
}

/* A diff changes nothing and reads no data: these must not be called. */
static size_t fake_delete(void *ctx, struct bs_op *ops, size_t n, char *why, size_t why_len)
{
	(void)ctx, (void)ops, (void)n, (void)why, (void)why_len;
	fail_msg("a diff deleted objects");
	return 0;
}

static int fake_zero(void *ctx, const char *name, uint64_t offset, uint32_t len, char *why,
		     size_t why_len)
{
	(void)ctx, (void)name, (void)offset, (void)len, (void)why, (void)why_len;
	fail_msg("a diff wrote zeros");
	return 0;
}

static int fake_command(void *ctx, struct map_cmd *cmd, char *text, size_t text_len,
			uint64_t *epoch)
{
	(void)ctx, (void)cmd, (void)text, (void)text_len, (void)epoch;
	fail_msg("a diff changed the map");
	return 0;
}

static int fake_barrier(void *ctx, uint64_t epoch, char *why, size_t why_len)
{
	(void)ctx, (void)epoch, (void)why, (void)why_len;
	fail_msg("a diff waited for the OSDs");
	return 0;
}

/* A diff reads no object, writes none and takes no lock: those are NULL. */
static const struct bs_admin_ops fake_ops = { fake_get_map, fake_list,	  fake_delete, fake_zero,
					      fake_command, fake_barrier, NULL,	       NULL,
					      NULL,	    NULL,	  NULL };

static void apply(struct fake *f, struct map_cmd c)
{
	char err[256] = "";
	assert_int_equal(map_apply(&f->map, &c, err, sizeof(err), NULL), 0);
}

static long find(struct fake *f, uint64_t inode, uint64_t index, uint32_t snap)
{
	for (size_t i = 0; i < f->n_objects; i++)
		if (f->objects[i].inode == inode && f->objects[i].index == index &&
		    f->objects[i].snap == snap)
			return (long)i;
	return -1;
}

static void put(struct fake *f, uint64_t inode, uint64_t index, uint32_t snap, uint64_t version)
{
	long i = find(f, inode, index, snap);
	if (i < 0) {
		assert_true(f->n_objects < FAKE_OBJECTS_MAX);
		i = (long)f->n_objects++;
	}
	f->objects[i] = (struct object_id){ 1, inode, index, snap, OBJECT_SHARD_WHOLE };
	f->versions[i] = version;
}

/* What the OSDs do on the first write or delete after the volume's
 * newest snapshot: copy the head to a clone of that snapshot. */
static void clone_on_write(struct fake *f, const char *volume, uint64_t index)
{
	const struct map_volume *v = map_volume_by_name(&f->map, volume);
	long h = find(f, v->inode, index, OBJECT_SNAP_HEAD);
	if (h < 0 || !v->n_snaps)
		return;
	const struct map_snap *newest = &v->snaps[v->n_snaps - 1];
	if (f->versions[h] >> 32 < newest->epoch && find(f, v->inode, index, newest->id) < 0)
		put(f, v->inode, index, newest->id, f->versions[h]);
}

static void write_object(struct fake *f, const char *volume, uint64_t index)
{
	clone_on_write(f, volume, index);
	put(f, map_volume_by_name(&f->map, volume)->inode, index, OBJECT_SNAP_HEAD,
	    f->map.epoch << 32 | ++f->seq);
}

static void delete_object(struct fake *f, const char *volume, uint64_t index)
{
	clone_on_write(f, volume, index);
	long h = find(f, map_volume_by_name(&f->map, volume)->inode, index, OBJECT_SNAP_HEAD);
	assert_true(h >= 0);
	f->objects[h] = f->objects[--f->n_objects];
	f->versions[h] = f->versions[f->n_objects];
}

static void snap(struct fake *f, const char *volume, const char *name)
{
	struct map_cmd c = { .type = MAP_CMD_SNAP_CREATE };
	snprintf(c.name, sizeof(c.name), "%s", volume);
	snprintf(c.snap, sizeof(c.snap), "%s", name);
	apply(f, c);
}

/* Pool rbd of 128K objects, volume vm of 1 MiB with objects 0-5
 * written, volume other with object 1 written (never in vm's diffs). */
static void fake_init(struct fake *f, struct bs_admin *a)
{
	uint8_t fsid[16] = { 1 };
	struct map_mon mons[1] = { { "a", "127.0.0.1:6789" } };
	memset(f, 0, sizeof(*f));
	assert_int_equal(map_init(&f->map, fsid, mons, 1), 0);
	struct map_cmd pool = { .type = MAP_CMD_POOL_CREATE, .name = "rbd" };
	pool.pool = (struct map_pool){ .type = MAP_POOL_REPLICATED, .size = 3, .min_size = 2,
				       .pg_num = 8, .block_size = BLOCK };
	apply(f, pool);
	apply(f, (struct map_cmd){ .type = MAP_CMD_VOLUME_CREATE, .name = "vm", .pool_name = "rbd",
				   .size = 1 << 20 });
	apply(f, (struct map_cmd){ .type = MAP_CMD_VOLUME_CREATE, .name = "other",
				   .pool_name = "rbd", .size = 1 << 20 });
	for (uint64_t i = 0; i < 6; i++)
		write_object(f, "vm", i);
	write_object(f, "other", 1);
	a->ops = &fake_ops;
	a->ctx = f;
}

/* The extents a diff reported, as "OFFSET+LENGTH KIND; " in KiB. */
struct seen {
	char text[512];
	int stop_at; /* return -EINTR on this extent (1-based; 0: never) */
	int n;
};

static int seen_extent(uint64_t offset, uint64_t length, bool data, void *arg)
{
	struct seen *s = arg;
	size_t at = strlen(s->text);
	snprintf(s->text + at, sizeof(s->text) - at, "%llu+%llu %s; ",
		 (unsigned long long)(offset >> 10), (unsigned long long)(length >> 10),
		 data ? "data" : "zero");
	return ++s->n == s->stop_at ? -EINTR : 0;
}

static void diff_ok(struct fake *f, struct bs_admin *a, const char *from, const char *to,
		    const char *want, struct bs_snap_diff_info *info)
{
	struct seen s = { "", 0, 0 };
	char why[256] = "";
	unsigned lists = f->lists;
	assert_int_equal(bs_snap_diff(a, "vm", from, to, seen_extent, &s, info, why, sizeof(why)),
			 0);
	assert_string_equal(s.text, want);
	assert_int_equal(f->lists, lists + 1); /* one listing, nothing else */
	assert_int_equal(info->extents, (uint64_t)s.n);
}

/* Overwrites, a delete, a new object, merging, and the three pairings
 * (older snapshot to newer, to the live volume). */
static void test_diff_pairs(void **state)
{
	(void)state;
	struct fake f;
	struct bs_admin a;
	struct bs_snap_diff_info info;
	fake_init(&f, &a);
	snap(&f, "vm", "s1");
	write_object(&f, "vm", 1);  /* overwritten */
	delete_object(&f, "vm", 2); /* discarded */
	write_object(&f, "vm", 6);  /* new */
	write_object(&f, "other", 1);
	snap(&f, "vm", "s2");
	write_object(&f, "vm", 1); /* again: its s2 clone is s1's head */
	write_object(&f, "vm", 3);
	write_object(&f, "vm", 4);
	write_object(&f, "vm", 5);
	diff_ok(&f, &a, "s1", "s2", "128+128 data; 256+128 zero; 768+128 data; ", &info);
	assert_int_equal(info.changed_bytes, 3 * BLOCK);
	assert_int_equal(info.block_size, BLOCK);
	assert_int_equal(info.from_size, 1 << 20);
	assert_int_equal(info.to_size, 1 << 20);
	diff_ok(&f, &a, "s2", NULL, "128+128 data; 384+384 data; ", &info);
	assert_int_equal(info.changed_bytes, 4 * BLOCK);
	diff_ok(&f, &a, "s1", NULL,
		"128+128 data; 256+128 zero; 384+512 data; ", &info); /* 3-6 merged */
	diff_ok(&f, &a, "s2", "s2", "", &info); /* a state against itself */
	assert_int_equal(info.changed_bytes, 0);
	map_free(&f.map);
}

/* Nothing written since: an empty diff; then a write of an object the
 * snapshot had as zeros. */
static void test_diff_quiet_then_new(void **state)
{
	(void)state;
	struct fake f;
	struct bs_admin a;
	struct bs_snap_diff_info info;
	fake_init(&f, &a);
	snap(&f, "vm", "s1");
	diff_ok(&f, &a, "s1", NULL, "", &info);
	write_object(&f, "vm", 7);
	delete_object(&f, "vm", 0);
	diff_ok(&f, &a, "s1", NULL, "0+128 zero; 896+128 data; ", &info);
	map_free(&f.map);
}

/* Grown: past the old end, what the new state has is data. Shrunk: cut
 * to the new end, the last object partly. */
static void test_diff_sizes(void **state)
{
	(void)state;
	struct fake f;
	struct bs_admin a;
	struct bs_snap_diff_info info;
	fake_init(&f, &a);
	snap(&f, "vm", "s1");
	apply(&f, (struct map_cmd){ .type = MAP_CMD_VOLUME_RESIZE, .name = "vm", .value = 2 << 20 });
	write_object(&f, "vm", 10);
	snap(&f, "vm", "s2");
	diff_ok(&f, &a, "s1", "s2", "1280+128 data; ", &info);
	assert_int_equal(info.from_size, 1 << 20);
	assert_int_equal(info.to_size, 2 << 20);
	/* Shrunk to 516 KiB (snapshots keep the objects past it). */
	apply(&f, (struct map_cmd){ .type = MAP_CMD_VOLUME_RESIZE, .name = "vm",
				    .value = (516 << 10) });
	write_object(&f, "vm", 4);
	write_object(&f, "vm", 5); /* past the end: never read */
	diff_ok(&f, &a, "s2", NULL, "512+4 data; ", &info);
	assert_int_equal(info.to_size, 516 << 10);
	assert_int_equal(info.changed_bytes, 4 << 10);
	map_free(&f.map);
}

/* Past the older state's end it read nothing: whatever the newer one
 * reads there is data, even an object both could reach (kept past a
 * shrink for an older snapshot, read again after growing). */
static void test_diff_past_the_older_end(void **state)
{
	(void)state;
	struct fake f;
	struct bs_admin a;
	struct bs_snap_diff_info info;
	fake_init(&f, &a);
	snap(&f, "vm", "s1");
	apply(&f, (struct map_cmd){ .type = MAP_CMD_VOLUME_RESIZE, .name = "vm",
				    .value = 512 << 10 });
	snap(&f, "vm", "small");
	apply(&f, (struct map_cmd){ .type = MAP_CMD_VOLUME_RESIZE, .name = "vm", .value = 1 << 20 });
	diff_ok(&f, &a, "small", NULL, "512+256 data; ", &info);
	assert_int_equal(info.from_size, 512 << 10);
	map_free(&f.map);
}

/* An object listed twice (a PG changed primary between two OSDs'
 * answers) counts once, as its newest version. */
static void test_diff_duplicates(void **state)
{
	(void)state;
	struct fake f;
	struct bs_admin a;
	struct bs_snap_diff_info info;
	fake_init(&f, &a);
	snap(&f, "vm", "s1");
	long h = find(&f, map_volume_by_name(&f.map, "vm")->inode, 3, OBJECT_SNAP_HEAD);
	put(&f, f.objects[h].inode, 99, 0, 0); /* a slot to overwrite */
	f.objects[f.n_objects - 1] = f.objects[h];
	write_object(&f, "vm", 3);
	diff_ok(&f, &a, "s1", NULL, "384+128 data; ", &info);
	map_free(&f.map);
}

/* A clone volume reads its parent's snapshot where it has nothing: an
 * object gone there is the parent's data, not zeros. */
static void test_diff_of_a_clone_volume(void **state)
{
	(void)state;
	struct fake f;
	struct bs_admin a;
	struct bs_snap_diff_info info;
	struct seen s = { "", 0, 0 };
	char why[256] = "";
	fake_init(&f, &a);
	snap(&f, "vm", "base");
	apply(&f, (struct map_cmd){ .type = MAP_CMD_SNAP_PROTECT, .name = "vm", .snap = "base",
				    .flag = 1 }); /* clones are made of protected snapshots */
	apply(&f, (struct map_cmd){ .type = MAP_CMD_VOLUME_CLONE, .src = "vm", .snap = "base",
				    .name = "child" });
	write_object(&f, "child", 2);
	snap(&f, "child", "c1");
	delete_object(&f, "child", 2);
	assert_int_equal(bs_snap_diff(&a, "child", "c1", NULL, seen_extent, &s, &info, why,
				      sizeof(why)),
			 0);
	assert_string_equal(s.text, "256+128 data; ");
	map_free(&f.map);
}

static void test_diff_refusals(void **state)
{
	(void)state;
	struct fake f;
	struct bs_admin a;
	struct bs_snap_diff_info info;
	struct seen s = { "", 0, 0 };
	char why[256] = "";
	fake_init(&f, &a);
	snap(&f, "vm", "s1");
	snap(&f, "vm", "s2");
	assert_int_equal(bs_snap_diff(&a, "nope", "s1", NULL, seen_extent, &s, &info, why,
				      sizeof(why)),
			 -ENOENT);
	assert_string_equal(why, "volume 'nope' does not exist");
	assert_int_equal(bs_snap_diff(&a, "vm", "gone", NULL, seen_extent, &s, &info, why,
				      sizeof(why)),
			 -ENOENT);
	assert_string_equal(why, "volume 'vm' has no snapshot 'gone'");
	assert_int_equal(bs_snap_diff(&a, "vm", "s1", "gone", seen_extent, &s, &info, why,
				      sizeof(why)),
			 -ENOENT);
	assert_string_equal(why, "volume 'vm' has no snapshot 'gone'");
	assert_int_equal(bs_snap_diff(&a, "vm", "s2", "s1", seen_extent, &s, &info, why,
				      sizeof(why)),
			 -EINVAL);
	assert_string_equal(why, "vm@s1 is older than vm@s2: a diff goes from the older snapshot "
				 "to the newer (swap them)");
	assert_int_equal(f.lists, 0); /* refused before listing */
	assert_string_equal(s.text, "");
	map_free(&f.map);
}

/* A listing that fails fails the diff (a PG without an OSD would hide
 * changes); a callback's error stops it. */
static void test_diff_failures(void **state)
{
	(void)state;
	struct fake f;
	struct bs_admin a;
	struct bs_snap_diff_info info;
	struct seen s = { "", 0, 0 };
	char why[256] = "";
	fake_init(&f, &a);
	snap(&f, "vm", "s1");
	write_object(&f, "vm", 0);
	write_object(&f, "vm", 2);
	write_object(&f, "vm", 4);
	f.fail_list = -EAGAIN;
	assert_int_equal(bs_snap_diff(&a, "vm", "s1", NULL, seen_extent, &s, &info, why,
				      sizeof(why)),
			 -EAGAIN);
	assert_string_equal(why, "cannot list the volume's objects: pg 1.3 has no OSD up");
	assert_string_equal(s.text, "");
	f.fail_list = 0;
	s.stop_at = 2;
	assert_int_equal(bs_snap_diff(&a, "vm", "s1", NULL, seen_extent, &s, &info, why,
				      sizeof(why)),
			 -EINTR);
	assert_string_equal(s.text, "0+128 data; 256+128 data; ");
	map_free(&f.map);
}

/* --- space (bs_volumes_usage) --------------------------------------------------------- */

#define U 4096u /* every entry of the fake holds one 4 KiB unit */

/* The parts add up to what is stored. */
static void assert_parts_add_up(const struct bs_volume_usage *u)
{
	uint64_t snaps = 0;
	for (uint32_t k = 0; k < u->n_snaps; k++)
		snaps += u->snaps[k].exclusive_bytes;
	assert_int_equal(snaps, u->snapshots_exclusive_bytes);
	assert_int_equal(u->exclusive_bytes + u->snapshots_exclusive_bytes + u->shared_bytes +
				 u->garbage_bytes,
			 u->stored_bytes);
}

/* vm: objects 0-5 written, s1, 1 rewritten, 2 deleted, 6 new, s2, 1 and
 * 3-5 rewritten (the history of test_diff_pairs). */
static void usage_history(struct fake *f)
{
	snap(f, "vm", "s1");
	write_object(f, "vm", 1);
	delete_object(f, "vm", 2);
	write_object(f, "vm", 6);
	snap(f, "vm", "s2");
	write_object(f, "vm", 1);
	for (uint64_t i = 3; i < 6; i++)
		write_object(f, "vm", i);
}

static void test_usage_parts(void **state)
{
	(void)state;
	struct fake f;
	struct bs_admin a;
	struct bs_volume_usage u;
	char why[256] = "";
	fake_init(&f, &a);
	usage_history(&f);
	assert_int_equal(bs_volume_usage(&a, "vm", &u, why, sizeof(why)), 0);
	assert_string_equal(u.name, "vm");
	assert_string_equal(u.pool, "rbd");
	assert_int_equal(u.size, 1 << 20);
	/* Stored: 0 head; 1 head + s1 and s2 clones; 2 s1 clone; 3-5 head and
	 * s2 clone each; 6 head. */
	assert_int_equal(u.objects, 12);
	assert_int_equal(u.stored_bytes, 12 * U);
	assert_int_equal(u.exclusive_bytes, 4 * U);	      /* heads 1, 3-5 */
	assert_int_equal(u.snaps[0].exclusive_bytes, 2 * U);  /* clones of 1, 2 */
	assert_int_equal(u.snaps[1].exclusive_bytes, 1 * U);  /* clone of 1 */
	assert_int_equal(u.shared_bytes, 5 * U);	      /* 0, 6, clones of 3-5 */
	assert_int_equal(u.snapshots_bytes, 6 * U);
	assert_int_equal(u.referenced_bytes, 6 * U);
	assert_int_equal(u.snaps[0].referenced_bytes, 6 * U); /* 0-5 */
	assert_int_equal(u.snaps[1].referenced_bytes, 6 * U); /* 0, 1, 3-6 */
	assert_int_equal(u.garbage_bytes, 0);
	assert_parts_add_up(&u);
	free(u.snaps);
	/* s1 gone from the map, its clones not freed yet: garbage, and the
	 * parts still add up. */
	apply(&f, (struct map_cmd){ .type = MAP_CMD_SNAP_RM, .name = "vm", .snap = "s1" });
	assert_int_equal(bs_volume_usage(&a, "vm", &u, why, sizeof(why)), 0);
	assert_int_equal(u.garbage_bytes, 2 * U);
	assert_int_equal(u.n_snaps, 1);
	assert_int_equal(u.snaps[0].exclusive_bytes, 4 * U); /* clones of 1, 3-5 */
	assert_parts_add_up(&u);
	free(u.snaps);
	map_free(&f.map);
}

/* Every volume: each pool listed once, however many volumes it holds. */
static void test_usage_all_volumes(void **state)
{
	(void)state;
	struct fake f;
	struct bs_admin a;
	struct bs_volume_usage *u;
	uint32_t n;
	char why[256] = "";
	fake_init(&f, &a);
	usage_history(&f);
	struct map_cmd pool = { .type = MAP_CMD_POOL_CREATE, .name = "ssd" };
	pool.pool = (struct map_pool){ .type = MAP_POOL_REPLICATED, .size = 2, .min_size = 1,
				       .pg_num = 8, .block_size = BLOCK };
	apply(&f, pool);
	apply(&f, (struct map_cmd){ .type = MAP_CMD_VOLUME_CREATE, .name = "fast",
				    .pool_name = "ssd", .size = 1 << 20 });
	assert_int_equal(bs_volumes_usage(&a, NULL, &u, &n, why, sizeof(why)), 0);
	assert_int_equal(n, 3);
	assert_string_equal(f.listed, "rbd; ssd; ");
	assert_string_equal(u[0].name, "vm");
	assert_int_equal(u[0].stored_bytes, 12 * U);
	assert_string_equal(u[1].name, "other");
	assert_int_equal(u[1].stored_bytes, 1 * U);
	assert_int_equal(u[1].exclusive_bytes, 1 * U);
	assert_string_equal(u[2].name, "fast");
	assert_string_equal(u[2].pool, "ssd");
	assert_int_equal(u[2].stored_bytes, 0);
	for (uint32_t i = 0; i < n; i++)
		assert_parts_add_up(&u[i]);
	bs_volumes_usage_free(u, n);
	map_free(&f.map);
}

/* More snapshots than the 32 a volume once had room for: each is counted. */
static void test_usage_many_snapshots(void **state)
{
	(void)state;
	struct fake f;
	struct bs_admin a;
	struct bs_volume_usage u;
	char why[256] = "", name[16];
	fake_init(&f, &a);
	for (int k = 0; k < 40; k++) {
		snprintf(name, sizeof(name), "s%d", k);
		snap(&f, "vm", name);
		write_object(&f, "vm", (uint64_t)k % 6);
	}
	assert_int_equal(bs_volume_usage(&a, "vm", &u, why, sizeof(why)), 0);
	assert_int_equal(u.n_snaps, 40);
	for (uint32_t k = 0; k < 40; k++)
		assert_int_equal(u.snaps[k].referenced_bytes, 6 * U);
	assert_string_equal(u.snaps[39].name, "s39");
	/* s0 alone reads object 0's first clone; object 3's last clone is
	 * read by s34-s39 alike (none of them saw a write to it between). */
	assert_int_equal(u.snaps[0].exclusive_bytes, 1 * U);
	assert_int_equal(u.snaps[39].exclusive_bytes, 0);
	assert_parts_add_up(&u);
	free(u.snaps);
	map_free(&f.map);
}

static void test_usage_failures(void **state)
{
	(void)state;
	struct fake f;
	struct bs_admin a;
	struct bs_volume_usage *u;
	uint32_t n;
	char why[256] = "";
	fake_init(&f, &a);
	assert_int_equal(bs_volumes_usage(&a, "nope", &u, &n, why, sizeof(why)), -ENOENT);
	assert_string_equal(why, "volume 'nope' does not exist");
	assert_null(u);
	assert_int_equal(f.lists, 0);
	f.fail_list = -EAGAIN;
	assert_int_equal(bs_volumes_usage(&a, NULL, &u, &n, why, sizeof(why)), -EAGAIN);
	assert_string_equal(why, "cannot list the objects of pool rbd: pg 1.3 has no OSD up");
	assert_null(u);
	assert_int_equal(n, 0);
	map_free(&f.map);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_diff_pairs),
		cmocka_unit_test(test_diff_quiet_then_new),
		cmocka_unit_test(test_diff_sizes),
		cmocka_unit_test(test_diff_past_the_older_end),
		cmocka_unit_test(test_diff_duplicates),
		cmocka_unit_test(test_diff_of_a_clone_volume),
		cmocka_unit_test(test_diff_refusals),
		cmocka_unit_test(test_diff_failures),
		cmocka_unit_test(test_usage_parts),
		cmocka_unit_test(test_usage_all_volumes),
		cmocka_unit_test(test_usage_many_snapshots),
		cmocka_unit_test(test_usage_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
