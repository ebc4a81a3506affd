/* Clones of protected snapshots (see volume_admin.h): making one, and
 * flattening it — copying in every object it still reads from its
 * parents, create-only so a writer's own copy always wins, before the map
 * forgets the parent. Over the admin ops table, like snap_admin.c. */
#include "client/volume_admin.h"
#include "client/volume_admin_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/why.h"

#define CLONE_CHUNK 4096u
#define FLATTEN_QD 32 /* objects copied at a time */

int bs_volume_clone(const struct bs_admin *a, const struct bs_snap_spec *spec, const char *new,
		    const char *pool, struct bs_volume_change *out, char *why, size_t why_len)
{
	memset(out, 0, sizeof(*out));
	struct map_cmd cmd = { .type = MAP_CMD_VOLUME_CLONE };
	if (strlen(new) >= sizeof(cmd.name) || (pool && strlen(pool) >= sizeof(cmd.pool_name)))
		return why_set(why, why_len, -ENAMETOOLONG, "volume and pool names are at most %zu "
			       "characters", sizeof(cmd.name) - 1);
	snprintf(cmd.name, sizeof(cmd.name), "%s", new);
	snprintf(cmd.pool_name, sizeof(cmd.pool_name), "%s", pool ? pool : "");
	memcpy(cmd.src, spec->volume, sizeof(cmd.src));
	memcpy(cmd.snap, spec->snap, sizeof(cmd.snap));
	return bs_admin_command(a, &cmd, out, why, why_len);
}

/* A flatten's view of the clone: its layers and which objects it has. */
struct flatten {
	const struct bs_admin *a;
	struct map_layer layers[MAP_LAYERS_MAX];
	int n_layers;
	uint32_t block_size;
	uint8_t *has; /* one byte per object below the overlap: the clone holds it */
	uint64_t n_objects;
	uint8_t *buf; /* FLATTEN_QD objects */
};

static int flatten_found(const struct object_id *oid, uint64_t version, uint64_t size, void *arg)
{
	struct flatten *f = arg;
	(void)version;
	(void)size;
	if (oid->inode == f->layers[0].inode && oid->snap == OBJECT_SNAP_HEAD &&
	    oid->index < f->n_objects)
		f->has[oid->index] = 1;
	return 0;
}

/* The refusals (map_check's), then the clone's layers and pool name. */
static int flatten_prepare(const struct bs_admin *a, const char *name, struct flatten *f,
			   char *pool, char *why, size_t why_len)
{
	struct map_cmd cmd = { .type = MAP_CMD_VOLUME_FLATTEN };
	if (strlen(name) >= sizeof(cmd.name))
		return why_set(why, why_len, -ENAMETOOLONG, "a volume name is at most %zu characters",
			       sizeof(cmd.name) - 1);
	snprintf(cmd.name, sizeof(cmd.name), "%s", name);
	struct cluster_map m;
	int rc = a->ops->get_map(a->ctx, &m, why, why_len);
	if (rc)
		return rc;
	const struct map_volume *v = map_volume_by_name(&m, name);
	const struct map_pool *p = v ? map_pool_by_id(&m, v->pool) : NULL;
	rc = map_check(&m, &cmd, why, why_len);
	if (!rc && !p)
		rc = why_set(why, why_len, -ENOENT, "the pool of volume '%s' does not exist", name);
	if (!rc && (f->n_layers = map_volume_layers(&m, v, OBJECT_SNAP_HEAD, f->layers)) < 0)
		rc = why_set(why, why_len, f->n_layers, "the parent of volume '%s' is missing from "
			     "the map", name);
	if (!rc) {
		f->block_size = p->block_size;
		f->n_objects = (v->parent_overlap + p->block_size - 1) / p->block_size;
		snprintf(pool, MAP_NAME_MAX, "%s", p->name);
	}
	map_free(&m);
	return rc;
}

/* The first and last non-zero chunks of BUF: false when all zeros. */
static bool flatten_span(const uint8_t *buf, uint32_t len, uint32_t *from, uint32_t *to)
{
	static const uint8_t zeros[CLONE_CHUNK];
	bool any = false;
	for (uint32_t at = 0; at < len; at += CLONE_CHUNK) {
		if (!memcmp(buf + at, zeros, CLONE_CHUNK))
			continue;
		if (!any)
			*from = at;
		*to = at + CLONE_CHUNK;
		any = true;
	}
	return any;
}

/* Reads the N objects IDX[] into F->buf (one block each) from the first
 * parent layer that has each, bytes past that layer's end zeroed;
 * FOUND[j]: one had it. */
static int flatten_read(struct flatten *f, const uint64_t *idx, size_t n, bool *found, char *why,
			size_t why_len)
{
	struct bs_op ops[FLATTEN_QD];
	int res[FLATTEN_QD];
	size_t slot[FLATTEN_QD];
	bool looking[FLATTEN_QD];
	for (size_t j = 0; j < n; j++) {
		looking[j] = true;
		found[j] = false;
	}
	for (int k = 1; k < f->n_layers; k++) {
		const struct map_layer *l = &f->layers[k];
		size_t m = 0;
		for (size_t j = 0; j < n; j++)
			if (looking[j] && idx[j] * f->block_size < l->limit_bytes) {
				ops[m] = (struct bs_op){ .type = BS_READ,
							 .oid = { .pool = l->pool, .inode = l->inode, .index = idx[j], .snap = l->snap },
							 .len = f->block_size,
							 .buf = f->buf + j * f->block_size };
				slot[m++] = j;
			}
		if (m)
			f->a->ops->run(f->a->ctx, ops, m, res);
		for (size_t i = 0; i < m; i++) {
			size_t j = slot[i];
			uint64_t at = idx[j] * f->block_size;
			if (res[i] && res[i] != -ENOENT)
				return why_set(why, why_len, res[i], "object %llx: cannot read the parent's: "
					       "%s", (unsigned long long)idx[j], strerror(-res[i]));
			looking[j] = res[i] == -ENOENT;
			found[j] = !res[i];
			if (found[j] && l->limit_bytes - at < f->block_size)
				memset(f->buf + j * f->block_size + (l->limit_bytes - at), 0,
				       f->block_size - (l->limit_bytes - at));
		}
	}
	return 0;
}

/* Copies in the N objects IDX[] from the parents, many at a time: one
 * create-only write each, from its first to its last non-zero chunk (a
 * writer that copied it in meanwhile keeps its own; zeros need no copy,
 * absent reads the same once flat). */
static int flatten_batch(struct flatten *f, const uint64_t *idx, size_t n,
			 struct bs_volume_change *out, char *why, size_t why_len)
{
	bool found[FLATTEN_QD];
	int rc = flatten_read(f, idx, n, found, why, why_len);
	if (rc)
		return rc;
	struct bs_op ops[FLATTEN_QD];
	int res[FLATTEN_QD];
	size_t slot[FLATTEN_QD], m = 0;
	for (size_t j = 0; j < n; j++) {
		uint8_t *buf = f->buf + j * f->block_size;
		uint32_t from, to;
		if (!found[j] || !flatten_span(buf, f->block_size, &from, &to))
			continue;
		ops[m] = (struct bs_op){ .type = BS_WRITE,
					 .oid = { .pool = f->layers[0].pool,
						  .inode = f->layers[0].inode, .index = idx[j],
						  .snap = OBJECT_SNAP_HEAD },
					 .offset = from, .len = to - from, .buf = buf + from,
					 .flags = BS_OP_CREATE };
		slot[m++] = j;
	}
	if (m)
		f->a->ops->run(f->a->ctx, ops, m, res);
	for (size_t i = 0; i < m; i++) {
		if (res[i] && res[i] != -EEXIST)
			return why_set(why, why_len, res[i], "object %llx: cannot write it: %s",
				       (unsigned long long)idx[slot[i]], strerror(-res[i]));
		out->objects_restored += !res[i];
	}
	return 0;
}

static int flatten_copy(struct flatten *f, const char *pool, struct bs_volume_change *out,
			char *why, size_t why_len)
{
	char list_why[256] = "";
	int rc = f->a->ops->list(f->a->ctx, pool, flatten_found, f, list_why, sizeof(list_why));
	if (rc)
		return why_set(why, why_len, rc, "cannot list the volume's objects: %s", list_why);
	uint64_t idx[FLATTEN_QD];
	size_t n = 0;
	for (uint64_t i = 0; i <= f->n_objects && !rc; i++) {
		if (i < f->n_objects && !f->has[i])
			idx[n++] = i;
		if (n && (n == FLATTEN_QD || i == f->n_objects)) {
			char batch_why[256] = "";
			if ((rc = flatten_batch(f, idx, n, out, batch_why, sizeof(batch_why))))
				why_set(why, why_len, rc, "%s; %zu objects were copied before it: run "
					"the command again to finish", batch_why, out->objects_restored);
			n = 0;
		}
	}
	return rc;
}

int bs_volume_flatten(const struct bs_admin *a, const char *name, struct bs_volume_change *out,
		      char *why, size_t why_len)
{
	memset(out, 0, sizeof(*out));
	struct flatten f = { .a = a };
	char pool[MAP_NAME_MAX];
	int rc = flatten_prepare(a, name, &f, pool, why, why_len);
	if (rc)
		return rc;
	f.has = calloc(f.n_objects ? f.n_objects : 1, 1);
	if (!f.has ||
	    posix_memalign((void **)&f.buf, CLONE_CHUNK, (size_t)FLATTEN_QD * f.block_size)) {
		free(f.has);
		return why_set(why, why_len, -ENOMEM, "out of memory");
	}
	rc = flatten_copy(&f, pool, out, why, why_len);
	free(f.has);
	free(f.buf);
	if (rc)
		return rc;
	/* Every object it reads is its own now: the parent can go. */
	struct map_cmd cmd = { .type = MAP_CMD_VOLUME_FLATTEN };
	snprintf(cmd.name, sizeof(cmd.name), "%s", name);
	return bs_admin_command(a, &cmd, out, why, why_len);
}
