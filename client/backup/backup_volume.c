/* Backups' view of the cluster (backup_volume.h): a snapshot read
 * through libbasalt with its extents from bs_snap_diff, and a volume to
 * restore into, made or taken over under its lock. */
#include "client/backup/backup_volume.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/config.h"
#include "common/why.h"

static struct backup_volume *of(void *ctx)
{
	return ctx;
}

struct extent_pass {
	backup_extent_fn fn;
	void *arg;
};

static int extent_pass(uint64_t offset, uint64_t length, bool data, void *arg)
{
	struct extent_pass *p = arg;
	return p->fn(offset, length, p->arg);
}

static int source_extents(void *ctx, const char *base, backup_extent_fn fn, void *arg,
			  char *why, size_t why_len)
{
	struct backup_volume *bv = of(ctx);
	struct extent_pass p = { fn, arg };
	struct bs_snap_diff_info info;
	if (base && !map_snap_by_name(map_volume_by_name(&bv->map, bv->src.volume), base))
		return why_set(why, why_len, -ENOENT, "no snapshot %s@%s", bv->src.volume, base);
	return bs_snap_diff(bv->a, bv->src.volume, base, bv->src.snapshot, extent_pass, &p, &info,
			    why, why_len);
}

static int vio_run(struct backup_volume *bv, enum bs_vio_type type, uint64_t offset,
		   uint32_t len, void *buf, char *why, size_t why_len)
{
	struct bs_vio vio = { .type = type, .offset = offset, .len = len, .buf = buf };
	int rc = bs_sync_vio(bv->io, bv->v, &vio);
	static const char *what[] = { [BS_VIO_READ] = "reading", [BS_VIO_WRITE] = "writing",
				      [BS_VIO_WRITE_ZEROES] = "zeroing" };
	return rc ? why_set(why, why_len, rc, "%s %u bytes at %" PRIu64 " of %s: %s", what[type],
			    len, offset, bv->name, strerror(-rc))
		  : 0;
}

static int source_check(void *ctx, char *why, size_t why_len);

/* A read that fails because the snapshot went away says so. */
static int source_read(void *ctx, uint64_t offset, uint32_t len, void *buf, char *why,
		       size_t why_len)
{
	int rc = vio_run(of(ctx), BS_VIO_READ, offset, len, buf, why, why_len);
	if (rc && source_check(ctx, why, why_len) == -ESTALE)
		return -ESTALE;
	return rc;
}

/* The snapshot as it was when opened, still there (same epoch). */
static int source_check(void *ctx, char *why, size_t why_len)
{
	struct backup_volume *bv = of(ctx);
	struct cluster_map m;
	int rc = bv->a->ops->get_map(bv->a->ctx, &m, why, why_len);
	if (rc)
		return rc;
	const struct map_volume *v = map_volume_by_name(&m, bv->src.volume);
	const struct map_snap *s = v && v->inode == bv->src.inode
					   ? map_snap_by_name(v, bv->src.snapshot) : NULL;
	bool same = s && s->epoch == bv->src.snap_epoch;
	map_free(&m);
	return same ? 0 : why_set(why, why_len, -ESTALE,
				  "snapshot %s was removed while it was being backed up: what "
				  "was read may not be its content, so nothing was committed",
				  bv->name);
}

static bool source_has_snap(void *ctx, const char *name, uint64_t epoch)
{
	struct backup_volume *bv = of(ctx);
	const struct map_volume *v = map_volume_by_name(&bv->map, bv->src.volume);
	const struct map_snap *s = v ? map_snap_by_name(v, name) : NULL;
	return s && s->epoch == epoch;
}

static const struct backup_source_ops source_ops = {
	.extents = source_extents,
	.read = source_read,
	.check = source_check,
	.has_snap = source_has_snap,
};

int backup_volume_open_snap(const struct bs_admin *a, struct bs_sync *io,
			    const struct bs_snap_spec *spec, struct backup_volume *out,
			    char *why, size_t why_len)
{
	memset(out, 0, sizeof(*out));
	out->a = a;
	out->io = io;
	snprintf(out->name, sizeof(out->name), "%s@%s", spec->volume, spec->snap);
	int rc = a->ops->get_map(a->ctx, &out->map, why, why_len);
	if (rc)
		return rc;
	const struct map_volume *v = map_volume_by_name(&out->map, spec->volume);
	const struct map_snap *s = v ? map_snap_by_name(v, spec->snap) : NULL;
	if (!s) {
		map_free(&out->map);
		return why_set(why, why_len, -ENOENT, v ? "volume '%s' has no snapshot '%s'"
							  : "volume '%s' does not exist%.0s",
			       spec->volume, spec->snap);
	}
	struct backup_source *src = &out->src;
	*src = (struct backup_source){ .ops = &source_ops, .ctx = out, .inode = v->inode,
				       .size = s->size, .snap_epoch = s->epoch,
				       .snap_time_s = (int64_t)(s->time_ms / 1000) };
	snprintf(src->volume, sizeof(src->volume), "%s", spec->volume);
	snprintf(src->snapshot, sizeof(src->snapshot), "%s", spec->snap);
	char full[2 * MAP_NAME_MAX + 2];
	snprintf(full, sizeof(full), "%s@%s", spec->volume, spec->snap);
	rc = bs_volume_open(bs_sync_client(io), full, true, &out->v);
	if (rc) {
		map_free(&out->map);
		return why_set(why, why_len, rc, "cannot open %s: %s", full, strerror(-rc));
	}
	return 0;
}

/* --- restoring into a volume ------------------------------------------------------ */

static int target_write(void *ctx, uint64_t offset, uint32_t len, const void *buf, char *why,
			size_t why_len)
{
	return vio_run(of(ctx), BS_VIO_WRITE, offset, len, (void *)buf, why, why_len);
}

static int target_zero(void *ctx, uint64_t offset, uint64_t len, char *why, size_t why_len)
{
	for (uint64_t at = 0; at < len;) {
		uint32_t n = len - at < (64u << 20) ? (uint32_t)(len - at) : (64u << 20);
		int rc = vio_run(of(ctx), BS_VIO_WRITE_ZEROES, offset + at, n, NULL, why, why_len);
		if (rc)
			return rc;
		at += n;
	}
	return 0;
}

static const struct backup_target_ops target_ops = { .write = target_write,
						      .zero = target_zero };

/* Makes volume NAME of SIZE bytes in POOL. */
static int target_create(const struct bs_admin *a, const char *name, uint64_t size,
			 const char *pool, char *why, size_t why_len)
{
	struct map_cmd cmd = { .type = MAP_CMD_VOLUME_CREATE, .size = size };
	snprintf(cmd.name, sizeof(cmd.name), "%s", name);
	snprintf(cmd.pool_name, sizeof(cmd.pool_name), "%s", pool ? pool : "rbd");
	char text[256];
	uint64_t epoch;
	int rc = a->ops->command(a->ctx, &cmd, text, sizeof(text), &epoch);
	return rc ? why_set(why, why_len, rc, "cannot create volume %s: %s", name, text) : 0;
}

/* An existing NAME: FORCE given, not larger than SIZE (grown to it). */
static int target_existing(const struct bs_admin *a, const struct map_volume *v,
			   uint64_t size, bool force, char *why, size_t why_len)
{
	char have[32], want[32];
	if (!force)
		return why_set(why, why_len, -EEXIST,
			       "volume '%s' exists: restoring over it replaces all it holds; add "
			       "--force to do that, or restore to a new volume", v->name);
	if (v->size > size)
		return why_set(why, why_len, -EFBIG,
			       "volume '%s' (%s) is larger than the backup (%s): shrink it first "
			       "(volume resize --allow-shrink) or restore to a new volume",
			       v->name, cfg_format_size(v->size, have, sizeof(have)),
			       cfg_format_size(size, want, sizeof(want)));
	if (v->size == size)
		return 0;
	struct bs_volume_change ch;
	return bs_volume_resize(a, v->name, size, 0, &ch, why, why_len);
}

int backup_volume_open_target(const struct bs_admin *a, struct bs_sync *io, const char *name,
			      uint64_t size, const char *pool, bool force,
			      struct backup_volume *out, char *why, size_t why_len)
{
	memset(out, 0, sizeof(*out));
	out->a = a;
	out->io = io;
	snprintf(out->name, sizeof(out->name), "%s", name);
	int rc = a->ops->get_map(a->ctx, &out->map, why, why_len);
	if (rc)
		return rc;
	const struct map_volume *v = map_volume_by_name(&out->map, name);
	rc = v ? target_existing(a, v, size, force, why, why_len)
	       : target_create(a, name, size, pool, why, why_len);
	out->created = !v && !rc;
	if (!rc)
		rc = a->ops->lock(a->ctx, name, why, why_len);
	out->locked = !rc;
	if (rc) {
		backup_volume_close(out, true);
		return rc;
	}
	/* Our client's map shows a volume just made within a few beats. */
	struct bs_client *c = bs_sync_client(io);
	for (int i = 0;; i++) {
		rc = bs_volume_open(c, name, false, &out->v);
		if (rc != -ENOENT || i == 200)
			break;
		io_loop_run_once(bs_client_loop(c), 50 * 1000000LL);
	}
	if (rc) {
		backup_volume_close(out, true);
		return why_set(why, why_len, rc, "cannot open volume %s: %s", name, strerror(-rc));
	}
	out->target = (struct backup_target){ .ops = &target_ops, .ctx = out,
					      .fresh = out->created };
	return 0;
}

void backup_volume_close(struct backup_volume *bv, bool keep)
{
	if (bv->v)
		bs_volume_close(bv->v);
	bv->v = NULL;
	if (bv->locked)
		bv->a->ops->unlock(bv->a->ctx, bv->name);
	bv->locked = false;
	if (bv->created && !keep) {
		struct bs_volume_change ch;
		char why[256];
		bs_volume_remove(bv->a, bv->name, &ch, why, sizeof(why));
	}
	map_free(&bv->map);
}
