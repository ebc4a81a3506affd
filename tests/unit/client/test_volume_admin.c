/* Volume removal and resizing (client/volume_admin.c) over a fake
 * cluster: the order of the steps (free, then forget the name; zero the
 * tail, change the size, then free past the end), every refusal before
 * anything is touched, and what a failure midway leaves. */
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

/* A cluster in memory: the map, the objects, and a log of the steps. */
struct fake {
	struct cluster_map map;
	struct object_id objects[FAKE_OBJECTS_MAX];
	uint64_t sizes[FAKE_OBJECTS_MAX];
	size_t n_objects;
	char log[1024];
	int fail_list, fail_zero, fail_command; /* -errno to inject */
	size_t fail_deletes;			/* how many deletes fail */
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
		int rc = fn(&f->objects[i], 1, f->sizes[i], arg);
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
			if (f->objects[i].inode == ops[k].oid.inode &&
			    f->objects[i].index == ops[k].oid.index) {
				f->objects[i] = f->objects[--f->n_objects];
				f->sizes[i] = f->sizes[f->n_objects];
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
	step(f, "%s %s; ", cmd->type == MAP_CMD_VOLUME_RM ? "rm" : "resize", cmd->name);
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

static const struct bs_admin_ops fake_ops = { fake_get_map, fake_list, fake_delete, fake_zero,
					      fake_command, fake_barrier };

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
		f->objects[f->n_objects] = (struct object_id){ 1, inode, i, 0 };
		f->sizes[f->n_objects++] = 128 << 10;
	}
	f->objects[f->n_objects] = (struct object_id){ 1, inode + 100, 0, 0 };
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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
