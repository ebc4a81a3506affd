/* Volume removal and resizing (see volume_admin.h): the order of their
 * steps and the refusals that keep them safe, over an ops table so the
 * order is tested without a cluster (tests/unit/client/test_volume_admin.c). */
#include "client/volume_admin.h"
#include "client/volume_admin_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/why.h"

#define ADMIN_DELETE_QD 32

/* The objects a filter picks, as deletes. */
struct admin_objects {
	bs_admin_pick_fn pick;
	void *arg;
	struct bs_op *ops;
	size_t n, cap;
	uint64_t bytes;
};

static int admin_object_found(const struct object_id *oid, uint64_t version, uint64_t size,
			      void *arg)
{
	struct admin_objects *l = arg;
	if (!l->pick(oid, version, l->arg))
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		struct bs_op *ops = realloc(l->ops, cap * sizeof(*ops));
		if (!ops)
			return -ENOMEM;
		l->ops = ops;
		l->cap = cap;
	}
	l->ops[l->n++] = (struct bs_op){ .type = BS_DELETE, .oid = *oid };
	l->bytes += size;
	return 0;
}

int bs_admin_free(const struct bs_admin *a, const char *pool, bs_admin_pick_fn pick, void *arg,
		  struct bs_volume_change *out, char *why, size_t why_len)
{
	struct admin_objects l = { .pick = pick, .arg = arg };
	char list_why[256] = "";
	int rc = a->ops->list(a->ctx, pool, admin_object_found, &l, list_why, sizeof(list_why));
	if (rc) {
		free(l.ops);
		return why_set(why, why_len, rc, "cannot list the volume's objects: %s", list_why);
	}
	size_t failed = l.n ? a->ops->delete_objects(a->ctx, l.ops, l.n, why, why_len) : 0;
	free(l.ops);
	if (failed)
		return why_set(why, why_len, -EIO, "%zu of %zu objects could not be deleted", failed,
			       l.n);
	out->freed = true;
	out->objects_freed = l.n;
	out->bytes_freed = l.bytes;
	return 0;
}

/* The objects of one inode from MIN_INDEX on: every one (removal), or
 * heads only (a shrink: a snapshot still reads its clones). */
struct admin_range {
	uint64_t inode, min_index;
};

static bool admin_in_range(const struct object_id *oid, uint64_t version, void *arg)
{
	const struct admin_range *r = arg;
	(void)version;
	return oid->inode == r->inode && oid->index >= r->min_index &&
	       (!r->min_index || oid->snap == OBJECT_SNAP_HEAD);
}

/* Deletes the objects of INODE in POOL from index MIN_INDEX on: their
 * blocks are free when this returns 0. */
static int admin_free(const struct bs_admin *a, const char *pool, uint64_t inode,
		      uint64_t min_index, struct bs_volume_change *out, char *why, size_t why_len)
{
	struct admin_range r = { inode, min_index };
	return bs_admin_free(a, pool, admin_in_range, &r, out, why, why_len);
}

static int admin_name(struct map_cmd *cmd, const char *name, char *why, size_t why_len)
{
	size_t n = strlen(name);
	if (n >= sizeof(cmd->name))
		return why_set(why, why_len, -ENAMETOOLONG,
			       "a volume name is at most %zu characters; this one has %zu",
			       sizeof(cmd->name) - 1, n);
	memcpy(cmd->name, name, n + 1);
	return 0;
}

int bs_admin_command(const struct bs_admin *a, struct map_cmd *cmd,
		     struct bs_volume_change *out, char *why, size_t why_len)
{
	char text[256] = "";
	int rc = a->ops->command(a->ctx, cmd, text, sizeof(text), &out->epoch);
	if (rc)
		return why_set(why, why_len, rc, "%s", text);
	/* The monitor's "done (map epoch N)": short; a longer text is cut. */
	snprintf(out->result, sizeof(out->result), "%.*s", (int)sizeof(out->result) - 1, text);
	return 0;
}

int bs_volume_remove(const struct bs_admin *a, const char *name, struct bs_volume_change *out,
		     char *why, size_t why_len)
{
	struct map_cmd cmd = { .type = MAP_CMD_VOLUME_RM };
	struct cluster_map m;
	memset(out, 0, sizeof(*out));
	memset(&m, 0, sizeof(m));
	int rc = admin_name(&cmd, name, why, why_len);
	if (rc || (rc = a->ops->get_map(a->ctx, &m, why, why_len)))
		return rc;
	/* The map's own refusals (no such volume, snapshots left, locked)
	 * first, so nothing is freed for nothing. */
	const struct map_volume *v = map_volume_by_name(&m, name);
	const struct map_pool *p = v ? map_pool_by_id(&m, v->pool) : NULL;
	char pool[MAP_NAME_MAX];
	uint64_t inode = v ? v->inode : 0;
	snprintf(pool, sizeof(pool), "%s", p ? p->name : "");
	out->old_size = v ? v->size : 0;
	rc = map_check(&m, &cmd, why, why_len);
	map_free(&m);
	if (rc)
		return rc;
	if (p && (rc = admin_free(a, pool, inode, 0, out, why, why_len))) {
		size_t at = strlen(why);
		snprintf(why + at, why_len - at, "; volume '%s' is kept; run the command again to free "
			 "the rest", name);
		return rc;
	}
	return bs_admin_command(a, &cmd, out, why, why_len);
}

/* The refusals of a shrink, before anything is touched. */
static int resize_check(const struct cluster_map *m, const struct map_volume *v, uint64_t size,
			unsigned flags, char *why, size_t why_len)
{
	char a[32], b[32], d[32];
	if (size >= v->size)
		return 0;
	if (v->lock_client)
		return why_set(why, why_len, -EBUSY,
			       "volume '%s' is in use: locked by %s; it cannot shrink while a client "
			       "has it open for writing (stop it, or basalt volume unlock --force)",
			       v->name, v->lock_owner);
	if (!(flags & BS_RESIZE_ALLOW_SHRINK))
		return why_set(why, why_len, -EPERM,
			       "resizing volume '%s' from %s to %s would shrink it by %s and discard "
			       "the data past the new end",
			       v->name, cfg_format_size(v->size, a, sizeof(a)),
			       cfg_format_size(size, b, sizeof(b)),
			       cfg_format_size(v->size - size, d, sizeof(d)));
	(void)m;
	return 0;
}

/* Zeroes the part past SIZE of the last object kept, so that growing
 * again reads zeros there. */
static int resize_zero_tail(const struct bs_admin *a, const char *name, uint64_t size,
			    uint64_t old, uint32_t block_size, char *why, size_t why_len)
{
	if (size % block_size == 0)
		return 0;
	uint64_t end = (size / block_size + 1) * block_size;
	if (end > old)
		end = old;
	char zero_why[256] = "";
	int rc = a->ops->zero(a->ctx, name, size, (uint32_t)(end - size), zero_why, sizeof(zero_why));
	if (rc)
		return why_set(why, why_len, rc, "cannot zero the cut-off tail: %s", zero_why);
	return 0;
}

int bs_volume_resize(const struct bs_admin *a, const char *name, uint64_t size, unsigned flags,
		     struct bs_volume_change *out, char *why, size_t why_len)
{
	struct map_cmd cmd = { .type = MAP_CMD_VOLUME_RESIZE, .value = size };
	struct cluster_map m;
	memset(out, 0, sizeof(*out));
	memset(&m, 0, sizeof(m));
	int rc = admin_name(&cmd, name, why, why_len);
	if (rc || (rc = a->ops->get_map(a->ctx, &m, why, why_len)))
		return rc;
	const struct map_volume *v = map_volume_by_name(&m, name);
	const struct map_pool *p = v ? map_pool_by_id(&m, v->pool) : NULL;
	rc = v ? resize_check(&m, v, size, flags, why, why_len) : 0;
	if (!rc)
		rc = map_check(&m, &cmd, why, why_len);
	uint64_t old = v ? v->size : 0, inode = v ? v->inode : 0;
	uint32_t bs = p ? p->block_size : 0;
	bool cut = p && size <= old && !v->n_snaps;
	char pool[MAP_NAME_MAX];
	snprintf(pool, sizeof(pool), "%s", p ? p->name : "");
	out->old_size = old;
	out->new_size = size;
	out->epoch = m.epoch;
	map_free(&m);
	if (rc)
		return rc;
	if (cut && size < old && (rc = resize_zero_tail(a, name, size, old, bs, why, why_len)))
		return rc;
	if (size == old)
		snprintf(out->result, sizeof(out->result), "already done");
	else if ((rc = bs_admin_command(a, &cmd, out, why, why_len)))
		return rc;
	if (cut && (rc = admin_free(a, pool, inode, (size + bs - 1) / bs, out, why, why_len))) {
		size_t at = strlen(why);
		snprintf(why + at, why_len - at,
			 "; the blocks past the end are not all freed; run the command again to free "
			 "the rest");
		return rc;
	}
	return 0;
}

/* --- the cluster's ops ------------------------------------------------------ */

static int cluster_io(struct bs_admin_cluster *k, char *why, size_t why_len)
{
	if (*k->io)
		return 0;
	return bs_sync_open(k->cfg, k->p, k->io, why, why_len);
}

static int cluster_get_map(void *ctx, struct cluster_map *out, char *why, size_t why_len)
{
	struct bs_admin_cluster *k = ctx;
	char text[1024] = "";
	bool stale;
	memset(out, 0, sizeof(*out));
	int rc = monc_get_map(k->mc, -1, out, &stale, text, sizeof(text));
	if (rc == -EACCES || rc == -ETIMEDOUT || rc == -ECONNREFUSED)
		return why_set(why, why_len, rc, "%s", text); /* names the monitors tried */
	if (rc)
		return why_set(why, why_len, rc, "no monitor answered: %s", strerror(-rc));
	return 0;
}

static int cluster_list(void *ctx, const char *pool, bs_admin_list_fn fn, void *arg, char *why,
			size_t why_len)
{
	struct bs_admin_cluster *k = ctx;
	int rc = cluster_io(k, why, why_len);
	return rc ? rc : bs_object_list(*k->io, pool, fn, arg, why, why_len);
}

static size_t cluster_delete(void *ctx, struct bs_op *ops, size_t n, char *why, size_t why_len)
{
	struct bs_admin_cluster *k = ctx;
	if (cluster_io(k, why, why_len))
		return n;
	int *results = calloc(n ? n : 1, sizeof(*results));
	if (!results) {
		snprintf(why, why_len, "out of memory");
		return n;
	}
	bs_sync_ops(*k->io, ops, n, ADMIN_DELETE_QD, results);
	/* An object already gone (another removal freed it first) is freed,
	 * as bs_admin_ops.delete_objects promises. */
	size_t failed = 0;
	for (size_t i = 0; i < n; i++)
		failed += results[i] && results[i] != -ENOENT;
	free(results);
	return failed;
}

static int cluster_zero(void *ctx, const char *name, uint64_t offset, uint32_t len, char *why,
			size_t why_len)
{
	struct bs_admin_cluster *k = ctx;
	int rc = cluster_io(k, why, why_len);
	if (rc)
		return rc;
	struct bs_volume *vol;
	if ((rc = bs_volume_open(bs_sync_client(*k->io), name, false, &vol)))
		return why_set(why, why_len, rc, "cannot open volume '%s': %s", name, strerror(-rc));
	struct bs_vio z = { .type = BS_VIO_WRITE_ZEROES, .offset = offset, .len = len };
	rc = bs_sync_vio(*k->io, vol, &z);
	bs_volume_close(vol);
	return rc ? why_set(why, why_len, rc, "%s", strerror(-rc)) : 0;
}

static int cluster_command(void *ctx, struct map_cmd *cmd, char *text, size_t text_len,
			   uint64_t *epoch)
{
	struct bs_admin_cluster *k = ctx;
	int rc = monc_command(k->mc, cmd, text, text_len, epoch);
	if (rc == -ETIMEDOUT)
		snprintf(text, text_len,
			 "no monitor leader answered in time (is a majority of monitors up?)");
	return rc;
}

static int cluster_barrier(void *ctx, uint64_t epoch, char *why, size_t why_len)
{
	struct bs_admin_cluster *k = ctx;
	int rc = cluster_io(k, why, why_len);
	return rc ? rc : bs_sync_osds(*k->io, epoch, why, why_len);
}

static int cluster_read(void *ctx, const struct object_id *oid, void *buf, uint32_t len,
			char *why, size_t why_len)
{
	struct bs_admin_cluster *k = ctx;
	int rc = cluster_io(k, why, why_len);
	if (rc)
		return rc;
	struct bs_op op = { .type = BS_READ, .oid = *oid, .len = len, .buf = buf };
	rc = bs_sync_op(*k->io, &op);
	return rc && rc != -ENOENT ? why_set(why, why_len, rc, "%s", strerror(-rc)) : rc;
}

static int cluster_write(void *ctx, const struct object_id *oid, uint32_t offset, const void *buf,
			 uint32_t len, unsigned flags, char *why, size_t why_len)
{
	struct bs_admin_cluster *k = ctx;
	int rc = cluster_io(k, why, why_len);
	if (rc)
		return rc;
	struct bs_op op = { .type = BS_WRITE, .oid = *oid, .offset = offset, .len = len,
			    .buf = (void *)buf, .flags = (uint8_t)flags };
	rc = bs_sync_op(*k->io, &op);
	return rc && rc != -EEXIST ? why_set(why, why_len, rc, "%s", strerror(-rc)) : rc;
}

static void cluster_run(void *ctx, struct bs_op *ops, size_t n, int *results)
{
	struct bs_admin_cluster *k = ctx;
	char why[256];
	int rc = cluster_io(k, why, sizeof(why));
	if (rc) {
		for (size_t i = 0; i < n; i++)
			results[i] = rc;
		return;
	}
	bs_sync_ops(*k->io, ops, n, ADMIN_DELETE_QD, results);
}

struct cluster_lock_wait {
	bool done;
	int rc;
	char why[256];
};

static void cluster_lock_done(void *ctx, int rc, const char *why)
{
	struct cluster_lock_wait *w = ctx;
	w->done = true;
	w->rc = rc;
	snprintf(w->why, sizeof(w->why), "%s", why ? why : "");
}

static int cluster_lock(void *ctx, const char *name, char *why, size_t why_len)
{
	struct bs_admin_cluster *k = ctx;
	int rc = cluster_io(k, why, why_len);
	if (rc)
		return rc;
	struct bs_client *c = bs_sync_client(*k->io);
	struct cluster_lock_wait w = { 0 };
	bs_lock(c, name, false, cluster_lock_done, &w);
	while (!w.done)
		io_loop_run_once(bs_client_loop(c), -1);
	return w.rc ? why_set(why, why_len, w.rc, "%s", w.why[0] ? w.why : strerror(-w.rc)) : 0;
}

static void cluster_unlock(void *ctx, const char *name)
{
	struct bs_admin_cluster *k = ctx;
	if (!*k->io)
		return;
	struct bs_client *c = bs_sync_client(*k->io);
	if (bs_unlock(c, name) == 0)
		bs_lock_wait_released(c, 5000);
}

static const struct bs_admin_ops cluster_ops = {
	.get_map = cluster_get_map,
	.list = cluster_list,
	.delete_objects = cluster_delete,
	.zero = cluster_zero,
	.command = cluster_command,
	.barrier = cluster_barrier,
	.read = cluster_read,
	.write = cluster_write,
	.run = cluster_run,
	.lock = cluster_lock,
	.unlock = cluster_unlock,
};

void bs_admin_cluster_init(struct bs_admin *a, struct bs_admin_cluster *ctx)
{
	a->ops = &cluster_ops;
	a->ctx = ctx;
}
