/* Volume removal and resizing (client/volume_admin.c), snapshot
 * rollback (client/snap_admin.c) and clone flattening
 * (client/clone_admin.c) over a fake cluster: the order of the steps
 * (free, then forget the name; zero the tail, change the size, then free
 * past the end), every refusal before anything is touched, and what a
 * failure midway leaves. */
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

#define FAKE_OBJECTS_MAX 128

/* A cluster in memory: the map, the objects, and a log of the steps.
 * An object's content is its first 4 KiB chunk filled with FILLS[i]
 * (0: all zeros). */
struct fake {
	struct cluster_map map;
	struct object_id objects[FAKE_OBJECTS_MAX];
	uint64_t sizes[FAKE_OBJECTS_MAX];
	uint64_t versions[FAKE_OBJECTS_MAX];
	uint8_t fills[FAKE_OBJECTS_MAX];
	size_t n_objects;
	uint32_t writes; /* sequence of the versions written */
	char log[2048];
	int fail_list, fail_zero, fail_command, fail_read, fail_lock; /* -errno to inject */
	size_t fail_deletes;				   /* how many deletes fail */
	int fail_read_after;				   /* reads that succeed first */
	bool create_exists; /* a CREATE write finds the object there */
};

static void step(struct fake *f, const char *fmt, ...)
{
	size_t at = strlen(f->log);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(f->log + at, sizeof(f->log) - at, fmt, ap);
	va_end(ap);
}

static int fake_get_map(void *ctx, struct cluster_map *out, char *why, size_t why_len)
{
	struct fake *f = ctx;
	uint8_t *buf;
	size_t len;
	(void)why;
	(void)why_len;
	assert_int_equal(map_encode(&f->map, &buf, &len), 0);
	memset(out, 0, sizeof(*out));
	assert_int_equal(map_decode(buf, len, out), 0);
	free(buf);
	return 0;
}

static int fake_list(void *ctx, const char *pool, bs_admin_list_fn fn, void *arg, char *why,
		     size_t why_len)
{
	struct fake *f = ctx;
	step(f, "list %s; ", pool);
	if (f->fail_list)
		return snprintf(why, why_len, "pg 1.3 has no OSD up"), f->fail_list;
	for (size_t i = 0; i < f->n_objects; i++) {
		int rc = fn(&f->objects[i], f->versions[i], f->sizes[i], arg);
		if (rc)
			return rc;
	}
	return 0;
}

static size_t fake_delete(void *ctx, struct bs_op *ops, size_t n, char *why, size_t why_len)
{
	struct fake *f = ctx;
	(void)why;
	(void)why_len;
	size_t failed = n < f->fail_deletes ? n : f->fail_deletes;
	step(f, "delete %zu; ", n);
	for (size_t k = failed; k < n; k++)
		for (size_t i = 0; i < f->n_objects; i++)
			if (object_id_equal(&f->objects[i], &ops[k].oid)) {
				f->objects[i] = f->objects[--f->n_objects];
				f->sizes[i] = f->sizes[f->n_objects];
				f->versions[i] = f->versions[f->n_objects];
				f->fills[i] = f->fills[f->n_objects];
				break;
			}
	return failed;
}

static int fake_zero(void *ctx, const char *name, uint64_t offset, uint32_t len, char *why,
		     size_t why_len)
{
	struct fake *f = ctx;
	step(f, "zero %s %llu+%u; ", name, (unsigned long long)offset, len);
	if (f->fail_zero)
		return snprintf(why, why_len, "no OSD is up"), f->fail_zero;
	return 0;
}

static int fake_command(void *ctx, struct map_cmd *cmd, char *text, size_t text_len,
			uint64_t *epoch)
{
	struct fake *f = ctx;
	static const char *names[] = { [MAP_CMD_VOLUME_RM] = "rm", [MAP_CMD_VOLUME_RESIZE] = "resize",
				       [MAP_CMD_VOLUME_FLATTEN] = "flatten",
				       [MAP_CMD_VOLUME_CLONE] = "clone" };
	step(f, "%s %s; ", cmd->type < sizeof(names) / sizeof(names[0]) && names[cmd->type]
				   ? names[cmd->type] : "command", cmd->name);
	if (f->fail_command)
		return snprintf(text, text_len, "no monitor leader answered"), f->fail_command;
	int rc = map_apply(&f->map, cmd, text, text_len, NULL);
	if (!rc)
		snprintf(text, text_len, "done");
	*epoch = f->map.epoch;
	return rc;
}

static int fake_barrier(void *ctx, uint64_t epoch, char *why, size_t why_len)
{
	struct fake *f = ctx;
	(void)why;
	(void)why_len;
	step(f, "barrier %llu; ", (unsigned long long)epoch);
	return 0;
}

static long fake_find(const struct fake *f, const struct object_id *oid)
{
	for (size_t i = 0; i < f->n_objects; i++)
		if (object_id_equal(&f->objects[i], oid))
			return (long)i;
	return -1;
}

/* The object a read of OID finds: the OSDs' rule (osd/pg_snap.c) for a
 * snapshot's view. */
static long fake_resolve(const struct fake *f, const struct object_id *oid)
{
	if (oid->snap == OBJECT_SNAP_HEAD)
		return fake_find(f, oid);
	const struct map_volume *v = map_volume_by_inode(&f->map, oid->inode);
	const struct map_snap *s = v ? map_snap_by_id(v, oid->snap) : NULL;
	assert_non_null(s);
	long best = -1;
	for (size_t i = 0; i < f->n_objects; i++) {
		const struct object_id *o = &f->objects[i];
		if (o->pool == oid->pool && o->inode == oid->inode && o->index == oid->index &&
		    o->snap >= oid->snap && (best < 0 || o->snap < f->objects[best].snap))
			best = (long)i;
	}
	if (best < 0) {
		struct object_id head = *oid;
		head.snap = OBJECT_SNAP_HEAD;
		best = fake_find(f, &head);
	}
	return best >= 0 && f->versions[best] >> 32 < s->epoch ? best : -1;
}

static int fake_read(void *ctx, const struct object_id *oid, void *buf, uint32_t len, char *why,
		     size_t why_len)
{
	struct fake *f = ctx;
	step(f, "read %llx@%u; ", (unsigned long long)oid->index, oid->snap);
	if (f->fail_read && f->fail_read_after-- <= 0)
		return snprintf(why, why_len, "osd.1 timed out"), f->fail_read;
	long i = fake_resolve(f, oid);
	if (i < 0)
		return -ENOENT;
	memset(buf, 0, len);
	memset(buf, f->fills[i], 4096);
	return 0;
}

static int fake_write(void *ctx, const struct object_id *oid, uint32_t offset, const void *buf,
		      uint32_t len, unsigned flags, char *why, size_t why_len)
{
	struct fake *f = ctx;
	(void)why;
	(void)why_len;
	step(f, "write %llx %u+%u%s; ", (unsigned long long)oid->index, offset, len,
	     flags & BS_OP_CREATE ? " create" : "");
	assert_int_equal(oid->snap, OBJECT_SNAP_HEAD);
	long i = fake_find(f, oid);
	if ((flags & BS_OP_CREATE) && (i >= 0 || f->create_exists))
		return -EEXIST;
	if (i < 0) {
		assert_true(f->n_objects < FAKE_OBJECTS_MAX);
		i = (long)f->n_objects++;
		f->objects[i] = *oid;
		f->sizes[i] = 0;
		f->fills[i] = 0;
	}
	f->sizes[i] += len;
	f->versions[i] = f->map.epoch << 32 | ++f->writes;
	if (offset == 0)
		f->fills[i] = ((const uint8_t *)buf)[0];
	return 0;
}

static void fake_run(void *ctx, struct bs_op *ops, size_t n, int *results)
{
	char why[256];
	for (size_t i = 0; i < n; i++) {
		assert_true(ops[i].type == BS_READ || ops[i].type == BS_WRITE);
		results[i] = ops[i].type == BS_READ
				     ? fake_read(ctx, &ops[i].oid, ops[i].buf, ops[i].len, why, sizeof(why))
				     : fake_write(ctx, &ops[i].oid, ops[i].offset, ops[i].buf, ops[i].len,
						  ops[i].flags, why, sizeof(why));
	}
}

static int fake_lock(void *ctx, const char *name, char *why, size_t why_len)
{
	struct fake *f = ctx;
	step(f, "lock %s; ", name);
	if (f->fail_lock)
		return snprintf(why, why_len, "volume '%s' is locked by client.vm on h2 pid 9", name),
		       f->fail_lock;
	return 0;
}

static void fake_unlock(void *ctx, const char *name)
{
	step(ctx, "unlock %s; ", name);
}

static const struct bs_admin_ops fake_ops = { fake_get_map, fake_list,	fake_delete, fake_zero,
					      fake_command, fake_barrier, fake_read, fake_write,
					      fake_run,	    fake_lock,	 fake_unlock };

static void apply(struct fake *f, struct map_cmd c)
{
	char err[256] = "";
	assert_int_equal(map_apply(&f->map, &c, err, sizeof(err), NULL), 0);
}

/* A pool rbd of 128K objects and volume vm of 1 MiB (inode 1) with
 * objects 0-7 written, plus one object of another inode. */
static void fake_init(struct fake *f, struct bs_admin *a)
{
	uint8_t fsid[16] = { 1 };
	struct map_mon mons[1] = { { "a", "127.0.0.1:6789" } };
	memset(f, 0, sizeof(*f));
	assert_int_equal(map_init(&f->map, fsid, mons, 1), 0);
	struct map_cmd pool = { .type = MAP_CMD_POOL_CREATE, .name = "rbd" };
	pool.pool = (struct map_pool){ .type = MAP_POOL_REPLICATED, .size = 3, .min_size = 2,
				       .pg_num = 8, .block_size = 128 << 10 };
	apply(f, pool);
	apply(f, (struct map_cmd){ .type = MAP_CMD_VOLUME_CREATE, .name = "vm", .pool_name = "rbd",
				   .size = 1 << 20 });
	uint64_t inode = map_volume_by_name(&f->map, "vm")->inode;
	for (uint64_t i = 0; i < 8; i++) {
		f->objects[f->n_objects] = (struct object_id){ 1, inode, i, 0, OBJECT_SHARD_WHOLE };
		f->versions[f->n_objects] = 1;
		f->fills[f->n_objects] = (uint8_t)(0x10 + i);
		f->sizes[f->n_objects++] = 128 << 10;
	}
	f->objects[f->n_objects] = (struct object_id){ 1, inode + 100, 0, 0, OBJECT_SHARD_WHOLE };
	f->versions[f->n_objects] = 1;
	f->sizes[f->n_objects++] = 4096;
	a->ops = &fake_ops;
	a->ctx = f;
}

static void lock(struct fake *f)
{
	struct map_cmd c = { .type = MAP_CMD_VOLUME_LOCK, .name = "vm", .lock_client = 7,
			     .time_ms = 1 };
	snprintf(c.owner, sizeof(c.owner), "client.admin on h1 pid 7");
	apply(f, c);
}

static void test_remove_frees_then_forgets(void **state)
{
	(void)state;
	struct fake f;
	struct bs_admin a;
	struct bs_volume_change ch;
	char why[256] = "";
	fake_init(&f, &a);
	assert_int_equal(bs_volume_remove(&a, "vm", &ch, why, sizeof(why)), 0);
	assert_string_equal(f.log, "list rbd; delete 8; rm vm; ");
	assert_true(ch.freed);
	assert_int_equal(ch.objects_freed, 8);
	assert_int_equal(ch.bytes_freed, 8 << 17);
	assert_string_equal(ch.result, "done");
	assert_int_equal(ch.epoch, f.map.epoch);
	assert_null(map_volume_by_name(&f.map, "vm"));
	assert_int_equal(f.n_objects, 1); /* the other inode's object stays */
	map_free(&f.map);
}

static void test_remove_refusals_touch_nothing(void **state)
{
	(void)state;
	struct fake f;
	struct bs_admin a;
	struct bs_volume_change ch;
	char why[256] = "", name[200];
	fake_init(&f, &a);
	assert_int_equal(bs_volume_remove(&a, "nope", &ch, why, sizeof(why)), -ENOENT);
	assert_string_equal(why, "volume 'nope' does not exist");
	memset(name, 'x', sizeof(name) - 1);
	name[sizeof(name) - 1] = 0;
	assert_int_equal(bs_volume_remove(&a, name, &ch, why, sizeof(why)), -ENAMETOOLONG);
	assert_string_equal(why, "a volume name is at most 63 characters; this one has 199");
	lock(&f);
	assert_int_equal(bs_volume_remove(&a, "vm", &ch, why, sizeof(why)), -EBUSY);
	assert_non_null(strstr(why, "is in use: locked by client.admin on h1 pid 7"));
	assert_string_equal(f.log, "");
	assert_int_equal(f.n_objects, 9);
	map_free(&f.map);
}

/* Cut short, the name stays, so running it again finishes. */
static void test_remove_failure_keeps_the_name(void **state)
{
	(void)state;
	struct fake f;
	struct bs_admin a;
	struct bs_volume_change ch;
	char why[512] = "";
	fake_init(&f, &a);
	f.fail_deletes = 3;
	assert_int_equal(bs_volume_remove(&a, "vm", &ch, why, sizeof(why)), -EIO);
	assert_string_equal(why, "3 of 8 objects could not be deleted; volume 'vm' is kept; run the "
				 "command again to free the rest");
	assert_non_null(map_volume_by_name(&f.map, "vm"));
	f.fail_deletes = 0;
	f.fail_list = -EAGAIN;
	assert_int_equal(bs_volume_remove(&a, "vm", &ch, why, sizeof(why)), -EAGAIN);
	assert_non_null(strstr(why, "cannot list the volume's objects: pg 1.3 has no OSD up"));
	assert_non_null(map_volume_by_name(&f.map, "vm"));
	f.fail_list = 0;
	f.log[0] = 0;
	assert_int_equal(bs_volume_remove(&a, "vm", &ch, why, sizeof(why)), 0);
	assert_string_equal(f.log, "list rbd; delete 3; rm vm; ");
	assert_int_equal(f.n_objects, 1);
	map_free(&f.map);
}

static void test_grow_changes_only_the_map(void **state)
{
	(void)state;
	struct fake f;
	struct bs_admin a;
	struct bs_volume_change ch;
	char why[256] = "";
	fake_init(&f, &a);
	assert_int_equal(bs_volume_resize(&a, "vm", 2 << 20, 0, &ch, why, sizeof(why)), 0);
	assert_string_equal(f.log, "resize vm; ");
	assert_false(ch.freed);
	assert_int_equal(ch.old_size, 1 << 20);
	assert_int_equal(map_volume_by_name(&f.map, "vm")->size, 2 << 20);
	/* Growing a locked volume is harmless. */
	lock(&f);
	assert_int_equal(bs_volume_resize(&a, "vm", 4 << 20, 0, &ch, why, sizeof(why)), 0);
	map_free(&f.map);
}

static void test_shrink_needs_the_flag(void **state)
{
	(void)state;
	struct fake f;
	struct bs_admin a;
	struct bs_volume_change ch;
	char why[256] = "";
	fake_init(&f, &a);
	assert_int_equal(bs_volume_resize(&a, "vm", 256 << 10, 0, &ch, why, sizeof(why)), -EPERM);
	assert_string_equal(why, "resizing volume 'vm' from 1 MiB to 256 KiB would shrink it by "
				 "768 KiB and discard the data past the new end");
	assert_string_equal(f.log, "");
	assert_int_equal(map_volume_by_name(&f.map, "vm")->size, 1 << 20);
	map_free(&f.map);
}

static void test_shrink_of_a_locked_volume_refused(void **state)
{
	(void)state;
	struct fake f;
	struct bs_admin a;
	struct bs_volume_change ch;
	char why[256] = "";
	fake_init(&f, &a);
	lock(&f);
	assert_int_equal(bs_volume_resize(&a, "vm", 256 << 10, BS_RESIZE_ALLOW_SHRINK, &ch, why,
					  sizeof(why)),
			 -EBUSY);
	assert_string_equal(why, "volume 'vm' is in use: locked by client.admin on h1 pid 7; it "
				 "cannot shrink while a client has it open for writing (stop it, "
				 "or basalt volume unlock --force)");
	assert_string_equal(f.log, "");
	assert_int_equal(f.n_objects, 9);
	map_free(&f.map);
}

/* Zero the tail of the last object kept, change the size, free past the
 * end: in that order. */
static void test_shrink_order(void **state)
{
	(void)state;
	struct fake f;
	struct bs_admin a;
	struct bs_volume_change ch;
	char why[256] = "";
	fake_init(&f, &a);
	uint64_t size = (2 << 17) + 4096; /* into object 2 */
	assert_int_equal(bs_volume_resize(&a, "vm", size, BS_RESIZE_ALLOW_SHRINK, &ch, why,
					  sizeof(why)),
			 0);
	assert_string_equal(f.log, "zero vm 266240+126976; resize vm; list rbd; delete 5; ");
	assert_int_equal(ch.objects_freed, 5);
	assert_int_equal(map_volume_by_name(&f.map, "vm")->size, size);
	assert_int_equal(f.n_objects, 4);
	/* The same size again frees what is past the end again (a shrink
	 * cut short finishes) without a map change. */
	f.log[0] = 0;
	assert_int_equal(bs_volume_resize(&a, "vm", size, 0, &ch, why, sizeof(why)), 0);
	assert_string_equal(f.log, "list rbd; ");
	assert_string_equal(ch.result, "already done");
	map_free(&f.map);
}

static void test_shrink_failures(void **state)
{
	(void)state;
	struct fake f;
	struct bs_admin a;
	struct bs_volume_change ch;
	char why[512] = "";
	fake_init(&f, &a);
	/* The tail cannot be zeroed: the size is left as it was. */
	f.fail_zero = -ETIMEDOUT;
	assert_int_equal(bs_volume_resize(&a, "vm", 4096, BS_RESIZE_ALLOW_SHRINK, &ch, why,
					  sizeof(why)),
			 -ETIMEDOUT);
	assert_string_equal(why, "cannot zero the cut-off tail: no OSD is up");
	assert_int_equal(map_volume_by_name(&f.map, "vm")->size, 1 << 20);
	f.fail_zero = 0;
	/* Not a multiple of 512: refused by the map's rule, nothing zeroed. */
	f.log[0] = 0;
	assert_int_equal(bs_volume_resize(&a, "vm", 1000, BS_RESIZE_ALLOW_SHRINK, &ch, why,
					  sizeof(why)),
			 -EINVAL);
	assert_string_equal(f.log, "");
	/* The monitors do not answer: nothing is freed. */
	f.fail_command = -ETIMEDOUT;
	assert_int_equal(bs_volume_resize(&a, "vm", 128 << 10, BS_RESIZE_ALLOW_SHRINK, &ch, why,
					  sizeof(why)),
			 -ETIMEDOUT);
	assert_int_equal(f.n_objects, 9);
	f.fail_command = 0;
	/* Frees fail: the size is changed, and says to run it again. */
	f.fail_deletes = 2;
	assert_int_equal(bs_volume_resize(&a, "vm", 128 << 10, BS_RESIZE_ALLOW_SHRINK, &ch, why,
					  sizeof(why)),
			 -EIO);
	assert_string_equal(why, "2 of 7 objects could not be deleted; the blocks past the end are "
				 "not all freed; run the command again to free the rest");
	assert_int_equal(map_volume_by_name(&f.map, "vm")->size, 128 << 10);
	f.fail_deletes = 0;
	assert_int_equal(bs_volume_resize(&a, "vm", 128 << 10, 0, &ch, why, sizeof(why)), 0);
	assert_int_equal(ch.objects_freed, 2);
	assert_int_equal(f.n_objects, 2);
	map_free(&f.map);
}

/* Snapshots may still read the objects past the end: they are kept. */
static void test_shrink_with_snapshots_keeps_objects(void **state)
{
	(void)state;
	struct fake f;
	struct bs_admin a;
	struct bs_volume_change ch;
	char why[256] = "";
	fake_init(&f, &a);
	apply(&f, (struct map_cmd){ .type = MAP_CMD_SNAP_CREATE, .name = "vm", .snap = "s1" });
	assert_int_equal(bs_volume_resize(&a, "vm", 128 << 10, BS_RESIZE_ALLOW_SHRINK, &ch, why,
					  sizeof(why)),
			 0);
	assert_string_equal(f.log, "resize vm; ");
	assert_int_equal(f.n_objects, 9);
	map_free(&f.map);
}

/* What an OSD does to the head of object INDEX of volume NAME on a
 * write (FILL) or a delete (DELETE): first a clone for the newest
 * snapshot when the head is older than it. */
static void fake_change(struct fake *f, const char *name, uint64_t index, uint8_t fill,
			bool delete)
{
	const struct map_volume *v = map_volume_by_name(&f->map, name);
	struct object_id head = { v->pool, v->inode, index, OBJECT_SNAP_HEAD, OBJECT_SHARD_WHOLE };
	long h = fake_find(f, &head);
	const struct map_snap *newest = v->n_snaps ? &v->snaps[v->n_snaps - 1] : NULL;
	if (h >= 0 && newest && f->versions[h] >> 32 < newest->epoch) {
		size_t c = f->n_objects++;
		f->objects[c] = head;
		f->objects[c].snap = newest->id;
		f->versions[c] = f->versions[h];
		f->sizes[c] = f->sizes[h];
		f->fills[c] = f->fills[h];
	}
	if (delete) {
		struct bs_op op = { .type = BS_DELETE, .oid = head };
		fake_delete(f, &op, 1, NULL, 0);
		return;
	}
	uint8_t buf[4096];
	memset(buf, fill, sizeof(buf));
	fake_write(f, &head, 0, buf, sizeof(buf), 0, NULL, 0);
}

static uint8_t fake_fill(struct fake *f, const char *name, uint64_t index)
{
	const struct map_volume *v = map_volume_by_name(&f->map, name);
	struct object_id head = { v->pool, v->inode, index, OBJECT_SNAP_HEAD, OBJECT_SHARD_WHOLE };
	long h = fake_find(f, &head);
	return h < 0 ? 0xff : f->fills[h];
}

static const struct bs_snap_spec vm_s1 = { "vm", "s1" };

/* vm@s1, then object 1 rewritten, 2 deleted, the volume grown and 8
 * written. */
static void fake_changed_since_s1(struct fake *f)
{
	apply(f, (struct map_cmd){ .type = MAP_CMD_SNAP_CREATE, .name = "vm", .snap = "s1" });
	fake_change(f, "vm", 1, 0xaa, false);
	fake_change(f, "vm", 2, 0, true);
	apply(f, (struct map_cmd){ .type = MAP_CMD_VOLUME_RESIZE, .name = "vm", .value = 2 << 20 });
	fake_change(f, "vm", 8, 0xcc, false);
	f->log[0] = 0;
}

/* Only what changed since the snapshot is touched: the size back, a
 * rewritten object read from the snapshot and written back, a deleted
 * one written back, one made since deleted. */
static void test_rollback_puts_back_what_changed(void **state)
{
	(void)state;
	struct fake f;
	struct bs_admin a;
	struct bs_volume_change ch;
	char why[256] = "";
	fake_init(&f, &a);
	fake_changed_since_s1(&f);
	assert_int_equal(bs_snap_rollback(&a, &vm_s1, &ch, why, sizeof(why)), 0);
	assert_string_equal(f.log, "resize vm; lock vm; list rbd; read 1@1; delete 1; "
				   "write 1 0+4096; read 2@1; write 2 0+4096; delete 1; unlock vm; ");
	assert_int_equal(ch.objects_restored, 2);
	assert_int_equal(ch.objects_freed, 1);
	assert_int_equal(ch.old_size, 2 << 20);
	assert_int_equal(ch.new_size, 1 << 20);
	assert_int_equal(map_volume_by_name(&f.map, "vm")->size, 1 << 20);
	for (uint64_t i = 0; i < 8; i++)
		assert_int_equal(fake_fill(&f, "vm", i), 0x10 + i);
	assert_int_equal(fake_fill(&f, "vm", 8), 0xff);
	map_free(&f.map);
}

static void test_rollback_refusals_touch_nothing(void **state)
{
	(void)state;
	struct fake f;
	struct bs_admin a;
	struct bs_volume_change ch;
	char why[256] = "";
	fake_init(&f, &a);
	fake_changed_since_s1(&f);
	size_t n = f.n_objects;
	struct bs_snap_spec nope = { "vm", "nope" }, novol = { "nope", "s1" };
	assert_int_equal(bs_snap_rollback(&a, &nope, &ch, why, sizeof(why)), -ENOENT);
	assert_string_equal(why, "volume 'vm' has no snapshot 'nope'");
	assert_int_equal(bs_snap_rollback(&a, &novol, &ch, why, sizeof(why)), -ENOENT);
	assert_string_equal(why, "volume 'nope' does not exist");
	lock(&f);
	assert_int_equal(bs_snap_rollback(&a, &vm_s1, &ch, why, sizeof(why)), -EBUSY);
	assert_string_equal(why, "volume 'vm' is in use: locked by client.admin on h1 pid 7; stop "
				 "it before a rollback (or basalt volume unlock --force)");
	assert_string_equal(f.log, "");
	assert_int_equal(f.n_objects, n);
	assert_int_equal(map_volume_by_name(&f.map, "vm")->size, 2 << 20);
	map_free(&f.map);
}

/* A writer that takes the lock between the check and the rollback's own
 * lock: refused, no object touched (the size is back already). */
static void test_rollback_loses_the_lock_race(void **state)
{
	(void)state;
	struct fake f;
	struct bs_admin a;
	struct bs_volume_change ch;
	char why[512] = "";
	fake_init(&f, &a);
	fake_changed_since_s1(&f);
	size_t n = f.n_objects;
	f.fail_lock = -EBUSY;
	assert_int_equal(bs_snap_rollback(&a, &vm_s1, &ch, why, sizeof(why)), -EBUSY);
	assert_string_equal(why, "volume 'vm' is locked by client.vm on h2 pid 9; nothing was put "
				 "back: run the command again once it is free");
	assert_string_equal(f.log, "resize vm; lock vm; ");
	assert_int_equal(f.n_objects, n);
	assert_int_equal(fake_fill(&f, "vm", 1), 0xaa);
	map_free(&f.map);
}

/* Objects a shrink kept for an older snapshot are past the rolled-back
 * volume's end: they go, or a grow would show them again. */
static void test_rollback_frees_past_the_snapshots_end(void **state)
{
	(void)state;
	struct fake f;
	struct bs_admin a;
	struct bs_volume_change ch;
	char why[256] = "";
	fake_init(&f, &a);
	apply(&f, (struct map_cmd){ .type = MAP_CMD_SNAP_CREATE, .name = "vm", .snap = "s0" });
	apply(&f, (struct map_cmd){ .type = MAP_CMD_VOLUME_RESIZE, .name = "vm", .value = 512 << 10 });
	apply(&f, (struct map_cmd){ .type = MAP_CMD_SNAP_CREATE, .name = "vm", .snap = "s1" });
	apply(&f, (struct map_cmd){ .type = MAP_CMD_VOLUME_RESIZE, .name = "vm", .value = 1 << 20 });
	f.log[0] = 0;
	assert_int_equal(bs_snap_rollback(&a, &vm_s1, &ch, why, sizeof(why)), 0);
	assert_string_equal(f.log, "resize vm; lock vm; list rbd; delete 1; delete 1; delete 1; "
				   "delete 1; unlock vm; ");
	assert_int_equal(ch.objects_freed, 4);
	for (uint64_t i = 0; i < 8; i++)
		assert_int_equal(fake_fill(&f, "vm", i), i < 4 ? 0x10 + i : 0xff);
	map_free(&f.map);
}

/* A read that fails stops it, saying how far it got; again finishes. */
static void test_rollback_cut_short_finishes_again(void **state)
{
	(void)state;
	struct fake f;
	struct bs_admin a;
	struct bs_volume_change ch;
	char why[512] = "";
	fake_init(&f, &a);
	fake_changed_since_s1(&f);
	f.fail_read = -ETIMEDOUT;
	f.fail_read_after = 1;
	assert_int_equal(bs_snap_rollback(&a, &vm_s1, &ch, why, sizeof(why)), -ETIMEDOUT);
	assert_string_equal(why, "object 2: osd.1 timed out; 1 objects were put back before it: "
				 "run the command again to finish");
	f.fail_read = 0;
	f.fail_list = -EAGAIN;
	assert_int_equal(bs_snap_rollback(&a, &vm_s1, &ch, why, sizeof(why)), -EAGAIN);
	assert_string_equal(why, "cannot list the volume's objects: pg 1.3 has no OSD up");
	f.fail_list = 0;
	f.log[0] = 0;
	assert_int_equal(bs_snap_rollback(&a, &vm_s1, &ch, why, sizeof(why)), 0);
	assert_int_equal(fake_fill(&f, "vm", 1), 0x11);
	assert_int_equal(fake_fill(&f, "vm", 2), 0x12);
	assert_int_equal(fake_fill(&f, "vm", 8), 0xff);
	map_free(&f.map);
}

/* vm@s1 protected and cloned as c; c writes object 3 itself. */
static void fake_clone(struct fake *f, struct bs_admin *a)
{
	struct bs_volume_change ch;
	char why[256] = "";
	fake_init(f, a);
	apply(f, (struct map_cmd){ .type = MAP_CMD_SNAP_CREATE, .name = "vm", .snap = "s1" });
	assert_int_equal(bs_volume_clone(a, &vm_s1, "c", NULL, &ch, why, sizeof(why)), -EPERM);
	assert_string_equal(why, "snapshot 's1' of 'vm' is not protected: protect it first (basalt "
				 "snap protect vm@s1)");
	assert_int_equal(bs_snap_protect(a, &vm_s1, true, &ch, why, sizeof(why)), 0);
	assert_int_equal(bs_volume_clone(a, &vm_s1, "c", "nope", &ch, why, sizeof(why)), -ENOENT);
	assert_string_equal(why, "pool 'nope' does not exist");
	assert_int_equal(bs_volume_clone(a, &vm_s1, "c", NULL, &ch, why, sizeof(why)), 0);
	assert_int_equal(ch.epoch, f->map.epoch);
	fake_change(f, "c", 3, 0xdd, false);
	fake_change(f, "vm", 4, 0xee, false); /* the parent moves on: not the snapshot */
	f->log[0] = 0;
}

/* Flatten copies what the clone still reads from its parent's snapshot,
 * create-only, then forgets the parent; the snapshot can then go. */
static void test_flatten_copies_then_forgets_the_parent(void **state)
{
	(void)state;
	struct fake f;
	struct bs_admin a;
	struct bs_volume_change ch;
	char why[256] = "";
	fake_clone(&f, &a);
	assert_int_equal(bs_snap_protect(&a, &vm_s1, false, &ch, why, sizeof(why)), -EBUSY);
	assert_string_equal(why, "snapshot 's1' of 'vm' is the parent of clone 'c': flatten or "
				 "remove the clone first");
	f.log[0] = 0;
	assert_int_equal(bs_volume_flatten(&a, "c", &ch, why, sizeof(why)), 0);
	/* The reads of a batch, then its create-only writes. */
	assert_non_null(strstr(f.log, "list rbd; read 0@1; read 1@1; read 2@1; read 4@1; "));
	assert_null(strstr(f.log, "read 3@1"));
	assert_non_null(strstr(f.log, "read 7@1; write 0 0+4096 create; write 1 0+4096 create; "));
	assert_non_null(strstr(f.log, "write 7 0+4096 create; flatten c; "));
	assert_int_equal(ch.objects_restored, 7);
	for (uint64_t i = 0; i < 8; i++)
		assert_int_equal(fake_fill(&f, "c", i), i == 3 ? 0xdd : 0x10 + i);
	assert_int_equal(map_volume_by_name(&f.map, "c")->parent_inode, 0);
	assert_int_equal(bs_snap_protect(&a, &vm_s1, false, &ch, why, sizeof(why)), 0);
	assert_int_equal(bs_volume_flatten(&a, "c", &ch, why, sizeof(why)), -EALREADY);
	assert_string_equal(why, "volume 'c' is not a clone (no parent)");
	map_free(&f.map);
}

/* A writer that copied an object in first keeps it: create-only. */
static void test_flatten_never_overwrites_a_writer(void **state)
{
	(void)state;
	struct fake f;
	struct bs_admin a;
	struct bs_volume_change ch;
	char why[256] = "";
	fake_clone(&f, &a);
	f.create_exists = true;
	assert_int_equal(bs_volume_flatten(&a, "c", &ch, why, sizeof(why)), 0);
	assert_int_equal(ch.objects_restored, 0);
	assert_int_equal(fake_fill(&f, "c", 0), 0xff);
	assert_int_equal(map_volume_by_name(&f.map, "c")->parent_inode, 0);
	map_free(&f.map);
}

/* A clone shrunk and grown back after its snapshot reads zeros where the
 * snapshot read the parent: a rollback copies those objects in. */
static void test_rollback_of_a_clone_shrunk_since(void **state)
{
	(void)state;
	struct fake f;
	struct bs_admin a;
	struct bs_volume_change ch;
	char why[256] = "";
	fake_clone(&f, &a);
	apply(&f, (struct map_cmd){ .type = MAP_CMD_SNAP_CREATE, .name = "c", .snap = "cs" });
	apply(&f, (struct map_cmd){ .type = MAP_CMD_VOLUME_RESIZE, .name = "c", .value = 256 << 10 });
	apply(&f, (struct map_cmd){ .type = MAP_CMD_VOLUME_RESIZE, .name = "c", .value = 1 << 20 });
	assert_int_equal(map_volume_by_name(&f.map, "c")->parent_overlap, 256 << 10);
	f.log[0] = 0;
	struct bs_snap_spec c_cs = { "c", "cs" };
	assert_int_equal(bs_snap_rollback(&a, &c_cs, &ch, why, sizeof(why)), 0);
	assert_string_equal(f.log, "lock c; list rbd; read 2@1; write 2 0+4096; read 4@1; "
				   "write 4 0+4096; read 5@1; write 5 0+4096; read 6@1; "
				   "write 6 0+4096; read 7@1; write 7 0+4096; unlock c; ");
	assert_int_equal(ch.objects_restored, 5);
	static const uint8_t want[8] = { 0xff, 0xff, 0x12, 0xdd, 0x14, 0x15, 0x16, 0x17 };
	for (uint64_t i = 0; i < 8; i++)
		assert_int_equal(fake_fill(&f, "c", i), want[i]);
	map_free(&f.map);
}

/* 40 objects: a batch of 32 (reads, then writes), then one of 8. */
static void test_flatten_in_batches(void **state)
{
	(void)state;
	struct fake f;
	struct bs_admin a;
	struct bs_volume_change ch;
	char why[256] = "";
	fake_init(&f, &a);
	apply(&f, (struct map_cmd){ .type = MAP_CMD_VOLUME_CREATE, .name = "p", .pool_name = "rbd",
				    .size = 40 << 17 });
	for (uint64_t i = 0; i < 40; i++)
		fake_change(&f, "p", i, (uint8_t)(0x80 + i), false);
	apply(&f, (struct map_cmd){ .type = MAP_CMD_SNAP_CREATE, .name = "p", .snap = "s" });
	struct bs_snap_spec p_s = { "p", "s" };
	assert_int_equal(bs_snap_protect(&a, &p_s, true, &ch, why, sizeof(why)), 0);
	assert_int_equal(bs_volume_clone(&a, &p_s, "q", NULL, &ch, why, sizeof(why)), 0);
	f.log[0] = 0;
	assert_int_equal(bs_volume_flatten(&a, "q", &ch, why, sizeof(why)), 0);
	assert_int_equal(ch.objects_restored, 40);
	assert_non_null(strstr(f.log, "read 1f@1; write 0 0+4096 create; "));
	assert_non_null(strstr(f.log, "write 1f 0+4096 create; read 20@1; "));
	assert_non_null(strstr(f.log, "write 27 0+4096 create; flatten q; "));
	for (uint64_t i = 0; i < 40; i++)
		assert_int_equal(fake_fill(&f, "q", i), 0x80 + i);
	map_free(&f.map);
}

static void test_flatten_refusals_and_failures(void **state)
{
	(void)state;
	struct fake f;
	struct bs_admin a;
	struct bs_volume_change ch;
	char why[512] = "";
	fake_clone(&f, &a);
	assert_int_equal(bs_volume_flatten(&a, "vm", &ch, why, sizeof(why)), -EALREADY);
	assert_int_equal(bs_volume_flatten(&a, "nope", &ch, why, sizeof(why)), -ENOENT);
	apply(&f, (struct map_cmd){ .type = MAP_CMD_SNAP_CREATE, .name = "c", .snap = "x" });
	assert_int_equal(bs_volume_flatten(&a, "c", &ch, why, sizeof(why)), -EBUSY);
	assert_string_equal(why, "volume 'c' has 1 snapshots, which read through to its parent: "
				 "remove them first");
	assert_string_equal(f.log, "");
	apply(&f, (struct map_cmd){ .type = MAP_CMD_SNAP_RM, .name = "c", .snap = "x" });
	/* A read fails: the parent stays, and running it again finishes. */
	f.fail_read = -EIO;
	f.fail_read_after = 2;
	assert_int_equal(bs_volume_flatten(&a, "c", &ch, why, sizeof(why)), -EIO);
	assert_string_equal(why, "object 2: cannot read the parent's: Input/output error; 0 objects "
				 "were copied before it: run the command again to finish");
	assert_int_not_equal(map_volume_by_name(&f.map, "c")->parent_inode, 0);
	assert_int_equal(fake_fill(&f, "c", 0), 0xff);
	f.fail_read = 0;
	assert_int_equal(bs_volume_flatten(&a, "c", &ch, why, sizeof(why)), 0);
	assert_int_equal(ch.objects_restored, 7);
	map_free(&f.map);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_remove_frees_then_forgets),
		cmocka_unit_test(test_remove_refusals_touch_nothing),
		cmocka_unit_test(test_remove_failure_keeps_the_name),
		cmocka_unit_test(test_grow_changes_only_the_map),
		cmocka_unit_test(test_shrink_needs_the_flag),
		cmocka_unit_test(test_shrink_of_a_locked_volume_refused),
		cmocka_unit_test(test_shrink_order),
		cmocka_unit_test(test_shrink_failures),
		cmocka_unit_test(test_shrink_with_snapshots_keeps_objects),
		cmocka_unit_test(test_rollback_puts_back_what_changed),
		cmocka_unit_test(test_rollback_refusals_touch_nothing),
		cmocka_unit_test(test_rollback_cut_short_finishes_again),
		cmocka_unit_test(test_rollback_frees_past_the_snapshots_end),
		cmocka_unit_test(test_rollback_loses_the_lock_race),
		cmocka_unit_test(test_flatten_copies_then_forgets_the_parent),
		cmocka_unit_test(test_flatten_never_overwrites_a_writer),
		cmocka_unit_test(test_flatten_refusals_and_failures),
		cmocka_unit_test(test_flatten_in_batches),
		cmocka_unit_test(test_rollback_of_a_clone_shrunk_since),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
