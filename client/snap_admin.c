/* Snapshot creation, removal, protection and rollback (see
 * volume_admin.h): the map change, the barrier that makes a snapshot
 * crash consistent, the immediate freeing of clones no snapshot needs any
 * more, and the objects a rollback rewrites — over the same ops table as
 * volume removal (docs/ARCHITECTURE.md, "Snapshots"). */
#include "client/volume_admin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/why.h"

#define SNAP_CHUNK 4096u

int bs_snap_spec_parse(const char *text, struct bs_snap_spec *out, char *why, size_t why_len)
{
	const char *at = strchr(text, '@');
	memset(out, 0, sizeof(*out));
	if (!at || at == text || !at[1] || strchr(at + 1, '@'))
		return why_set(why, why_len, -EINVAL, "'%s' is not VOLUME@SNAPSHOT", text);
	size_t vlen = (size_t)(at - text), slen = strlen(at + 1);
	if (vlen >= sizeof(out->volume) || slen >= sizeof(out->snap))
		return why_set(why, why_len, -ENAMETOOLONG,
			       "'%s': volume and snapshot names are at most %zu characters", text,
			       sizeof(out->volume) - 1);
	memcpy(out->volume, text, vlen);
	memcpy(out->snap, at + 1, slen);
	return 0;
}

static int snap_command(const struct bs_admin *a, struct map_cmd *cmd,
			struct bs_volume_change *out, char *why, size_t why_len)
{
	char text[256] = "";
	int rc = a->ops->command(a->ctx, cmd, text, sizeof(text), &out->epoch);
	if (rc)
		return why_set(why, why_len, rc, "%s", text);
	snprintf(out->result, sizeof(out->result), "%.*s", (int)sizeof(out->result) - 1, text);
	return 0;
}

int bs_snap_create(const struct bs_admin *a, const struct bs_snap_spec *specs, uint32_t n,
		   struct bs_volume_change *out, char *why, size_t why_len)
{
	memset(out, 0, sizeof(*out));
	if (!n || n > MAP_SNAP_GROUP_MAX)
		return why_set(why, why_len, -EINVAL, "one snapshot takes 1 to %u volumes",
			       MAP_SNAP_GROUP_MAX);
	struct map_cmd cmd = { .type = MAP_CMD_SNAP_CREATE, .n_group = n - 1 };
	memcpy(cmd.name, specs[0].volume, sizeof(cmd.name));
	memcpy(cmd.snap, specs[0].snap, sizeof(cmd.snap));
	for (uint32_t i = 1; i < n; i++) {
		memcpy(cmd.group[i - 1].volume, specs[i].volume, MAP_NAME_MAX);
		memcpy(cmd.group[i - 1].snap, specs[i].snap, MAP_NAME_MAX);
	}
	int rc = snap_command(a, &cmd, out, why, why_len);
	if (rc)
		return rc;
	/* Writes assigned before the epoch that made the snapshots are in
	 * them; wait until no OSD can assign one any more. */
	char barrier_why[256] = "";
	rc = a->ops->barrier(a->ctx, out->epoch, barrier_why, sizeof(barrier_why));
	if (rc)
		return why_set(why, why_len, rc,
			       "the snapshot was made (map epoch %llu) but %s: a write still in "
			       "flight on that OSD may land in it; remove it and take it again "
			       "if that matters",
			       (unsigned long long)out->epoch, barrier_why);
	return 0;
}

/* The clones of one volume that no remaining snapshot needs. */
struct snap_garbage {
	const struct map_volume *v;
	struct bs_op *ops;
	size_t n, cap;
	uint64_t bytes;
};

static int garbage_found(const struct object_id *oid, uint64_t version, uint64_t size, void *arg)
{
	struct snap_garbage *g = arg;
	if (oid->inode != g->v->inode || oid->snap == OBJECT_SNAP_HEAD ||
	    map_snap_clone_needed(g->v, oid->snap, version))
		return 0;
	if (g->n == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 256;
		struct bs_op *ops = realloc(g->ops, cap * sizeof(*ops));
		if (!ops)
			return -ENOMEM;
		g->ops = ops;
		g->cap = cap;
	}
	g->ops[g->n++] = (struct bs_op){ .type = BS_DELETE, .oid = *oid };
	g->bytes += size;
	return 0;
}

/* Frees the clones of volume NAME that no snapshot in the map needs. */
static int snap_collect(const struct bs_admin *a, const char *name, struct bs_volume_change *out,
			char *why, size_t why_len)
{
	struct cluster_map m;
	int rc = a->ops->get_map(a->ctx, &m, why, why_len);
	if (rc)
		return rc;
	const struct map_volume *v = map_volume_by_name(&m, name);
	const struct map_pool *p = v ? map_pool_by_id(&m, v->pool) : NULL;
	if (!p) {
		map_free(&m);
		return 0;
	}
	struct snap_garbage g = { .v = v };
	char list_why[256] = "";
	rc = a->ops->list(a->ctx, p->name, garbage_found, &g, list_why, sizeof(list_why));
	map_free(&m);
	if (rc) {
		free(g.ops);
		return why_set(why, why_len, rc, "cannot list the volume's objects: %s", list_why);
	}
	size_t failed = g.n ? a->ops->delete_objects(a->ctx, g.ops, g.n, why, why_len) : 0;
	free(g.ops);
	if (failed)
		return why_set(why, why_len, -EIO,
			       "%zu of %zu objects could not be deleted; run the command again to "
			       "free the rest", failed, g.n);
	out->freed = true;
	out->objects_freed = g.n;
	out->bytes_freed = g.bytes;
	return 0;
}

int bs_snap_remove(const struct bs_admin *a, const struct bs_snap_spec *spec,
		   struct bs_volume_change *out, char *why, size_t why_len)
{
	memset(out, 0, sizeof(*out));
	struct map_cmd cmd = { .type = MAP_CMD_SNAP_RM };
	memcpy(cmd.name, spec->volume, sizeof(cmd.name));
	memcpy(cmd.snap, spec->snap, sizeof(cmd.snap));
	int rc = snap_command(a, &cmd, out, why, why_len);
	if (rc && rc != -ENOENT)
		return rc;
	/* Gone already (a removal cut short): free what it left. */
	int gone = rc;
	char barrier_why[256] = "";
	/* After the barrier no write can make a clone for the snapshot. */
	if (!gone && (rc = a->ops->barrier(a->ctx, out->epoch, barrier_why, sizeof(barrier_why))))
		return why_set(why, why_len, rc,
			       "the snapshot is removed but its space is not freed yet: %s; run "
			       "the command again to free it", barrier_why);
	char collect_why[256] = "";
	rc = snap_collect(a, spec->volume, out, collect_why, sizeof(collect_why));
	if (rc)
		return why_set(why, why_len, rc, "%s", collect_why);
	return gone;
}

int bs_snap_protect(const struct bs_admin *a, const struct bs_snap_spec *spec, bool protect,
		    struct bs_volume_change *out, char *why, size_t why_len)
{
	memset(out, 0, sizeof(*out));
	struct map_cmd cmd = { .type = MAP_CMD_SNAP_PROTECT, .flag = protect };
	memcpy(cmd.name, spec->volume, sizeof(cmd.name));
	memcpy(cmd.snap, spec->snap, sizeof(cmd.snap));
	return snap_command(a, &cmd, out, why, why_len);
}

/* --- space ----------------------------------------------------------------------- */

struct usage_entry {
	uint64_t index, version, size;
	uint32_t snap;
	uint32_t users, first_user; /* snapshots reading it; the first */
};

struct usage_list {
	uint64_t inode;
	struct usage_entry *e;
	size_t n, cap;
};

static int usage_found(const struct object_id *oid, uint64_t version, uint64_t size, void *arg)
{
	struct usage_list *l = arg;
	if (oid->inode != l->inode)
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 1024;
		struct usage_entry *e = realloc(l->e, cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		l->e = e;
		l->cap = cap;
	}
	l->e[l->n++] = (struct usage_entry){ oid->index, version, size, oid->snap, 0, 0 };
	return 0;
}

static int usage_cmp(const void *a, const void *b)
{
	const struct usage_entry *x = a, *y = b;
	if (x->index != y->index)
		return x->index < y->index ? -1 : 1;
	return x->snap < y->snap ? -1 : x->snap > y->snap;
}

/* The entry of E[0..N) (one object: head first if any, clones by snap)
 * that snapshot S reads, or -1: the rule of pg_snap_resolve. */
static long usage_resolve(const struct usage_entry *e, size_t n, const struct map_snap *s)
{
	for (size_t i = 0; i < n; i++)
		if (e[i].snap >= s->id)
			return e[i].version >> 32 < s->epoch ? (long)i : -1;
	if (n && e[0].snap == OBJECT_SNAP_HEAD && e[0].version >> 32 < s->epoch)
		return 0;
	return -1;
}

/* Adds one object's entries E[0..N) to OUT. */
static void usage_object(const struct map_volume *v, struct usage_entry *e, size_t n,
			 struct bs_volume_usage *out)
{
	for (uint32_t k = 0; k < v->n_snaps; k++) {
		long i = usage_resolve(e, n, &v->snaps[k]);
		if (i < 0)
			continue;
		out->snaps[k].referenced_bytes += e[i].size;
		if (!e[i].users++)
			e[i].first_user = k;
	}
	for (size_t i = 0; i < n; i++) {
		out->objects++;
		out->stored_bytes += e[i].size;
		if (e[i].snap == OBJECT_SNAP_HEAD) {
			out->referenced_bytes += e[i].size;
			if (!e[i].users)
				out->exclusive_bytes += e[i].size;
			continue;
		}
		out->snapshots_bytes += e[i].size;
		if (!e[i].users)
			out->garbage_bytes += e[i].size;
		else if (e[i].users == 1)
			out->snaps[e[i].first_user].exclusive_bytes += e[i].size;
	}
}

int bs_volume_usage(const struct bs_admin *a, const char *name, struct bs_volume_usage *out,
		    char *why, size_t why_len)
{
	memset(out, 0, sizeof(*out));
	struct cluster_map m;
	int rc = a->ops->get_map(a->ctx, &m, why, why_len);
	if (rc)
		return rc;
	const struct map_volume *v = map_volume_by_name(&m, name);
	const struct map_pool *p = v ? map_pool_by_id(&m, v->pool) : NULL;
	if (!p) {
		map_free(&m);
		return why_set(why, why_len, -ENOENT, "volume '%s' does not exist", name);
	}
	snprintf(out->pool, sizeof(out->pool), "%s", p->name);
	out->size = v->size;
	out->n_snaps = v->n_snaps;
	for (uint32_t k = 0; k < v->n_snaps; k++) {
		struct bs_snap_usage *u = &out->snaps[k];
		u->id = v->snaps[k].id;
		memcpy(u->name, v->snaps[k].name, sizeof(u->name));
		u->size = v->snaps[k].size;
		u->epoch = v->snaps[k].epoch;
		u->time_ms = v->snaps[k].time_ms;
		u->protected = v->snaps[k].protected;
	}
	struct usage_list l = { .inode = v->inode };
	char list_why[256] = "";
	rc = a->ops->list(a->ctx, p->name, usage_found, &l, list_why, sizeof(list_why));
	if (rc) {
		map_free(&m);
		free(l.e);
		return why_set(why, why_len, rc, "cannot list the volume's objects: %s", list_why);
	}
	qsort(l.e, l.n, sizeof(*l.e), usage_cmp);
	for (size_t i = 0; i < l.n;) {
		size_t j = i + 1;
		while (j < l.n && l.e[j].index == l.e[i].index)
			j++;
		usage_object(v, l.e + i, j - i, out);
		i = j;
	}
	map_free(&m);
	free(l.e);
	return 0;
}

/* --- rollback ------------------------------------------------------------------ */

static bool mem_is_zero(const uint8_t *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* What a rollback works from, copied out of the map. */
struct rollback {
	const struct bs_admin *a;
	struct map_snap snap;
	uint32_t pool, block_size;
	uint64_t inode;
	bool clone;	     /* the volume reads through to a parent */
	uint64_t overlap;    /* ... below this many bytes */
	/* Where the snapshot's view reads (map_volume_layers): it may read
	 * more of the parent than the volume does now (a shrink since). */
	struct map_layer layers[MAP_LAYERS_MAX];
	int n_layers;
	uint8_t *buf;	     /* one object */
	struct bs_volume_change *out;
};

/* Refusals, and the facts a rollback needs, from the current map. */
static int rollback_prepare(const struct bs_admin *a, const struct bs_snap_spec *spec,
			    struct rollback *r, char *pool, uint64_t *size, char *why,
			    size_t why_len)
{
	struct cluster_map m;
	int rc = a->ops->get_map(a->ctx, &m, why, why_len);
	if (rc)
		return rc;
	const struct map_volume *v = map_volume_by_name(&m, spec->volume);
	const struct map_snap *s = v ? map_snap_by_name(v, spec->snap) : NULL;
	const struct map_pool *p = v ? map_pool_by_id(&m, v->pool) : NULL;
	if (!v || !p)
		rc = why_set(why, why_len, -ENOENT, "volume '%s' does not exist", spec->volume);
	else if (!s)
		rc = why_set(why, why_len, -ENOENT, "volume '%s' has no snapshot '%s'", v->name,
			     spec->snap);
	else if (v->lock_client)
		/* Its writer would go on writing over what is put back. */
		rc = why_set(why, why_len, -EBUSY,
			     "volume '%s' is in use: locked by %s; stop it before a rollback (or "
			     "basalt volume unlock --force)", v->name, v->lock_owner);
	if (!rc) {
		r->snap = *s;
		r->pool = v->pool;
		r->block_size = p->block_size;
		r->inode = v->inode;
		r->clone = v->parent_inode != 0;
		r->overlap = v->parent_overlap;
		r->n_layers = map_volume_layers(&m, v, s->id, r->layers);
		if (r->n_layers < 0)
			rc = why_set(why, why_len, r->n_layers, "the parent of volume '%s' is missing "
				     "from the map", v->name);
		snprintf(pool, MAP_NAME_MAX, "%s", p->name);
		*size = v->size;
	}
	map_free(&m);
	return rc;
}

static int rollback_delete(struct rollback *r, const struct object_id *oid, char *why,
			   size_t why_len)
{
	struct bs_op op = { .type = BS_DELETE, .oid = *oid };
	if (r->a->ops->delete_objects(r->a->ctx, &op, 1, why, why_len))
		return why_set(why, why_len, -EIO, "cannot delete object %llx of the volume",
			       (unsigned long long)oid->index);
	return 0;
}

/* Writes the non-zero runs of chunks of R->buf into the head OID (which
 * is absent): the head stays as sparse as the snapshot's object. Where
 * the volume reads through to a parent, an object of zeros must still
 * exist (absent, it would read the parent): it is written whole. */
static int rollback_write(struct rollback *r, const struct object_id *oid, char *why,
			  size_t why_len)
{
	uint32_t n = r->block_size / SNAP_CHUNK, runs = 0;
	for (uint32_t i = 0; i < n;) {
		if (!mem_is_zero(r->buf + (size_t)i * SNAP_CHUNK, SNAP_CHUNK)) {
			uint32_t j = i + 1;
			while (j < n && !mem_is_zero(r->buf + (size_t)j * SNAP_CHUNK, SNAP_CHUNK))
				j++;
			int rc = r->a->ops->write(r->a->ctx, oid, i * SNAP_CHUNK,
						  r->buf + (size_t)i * SNAP_CHUNK,
						  (j - i) * SNAP_CHUNK, 0, why, why_len);
			if (rc)
				return rc;
			runs++;
			i = j;
		} else {
			i++;
		}
	}
	bool covers_parent = r->clone && oid->index * r->block_size < r->overlap;
	if (!runs && covers_parent)
		return r->a->ops->write(r->a->ctx, oid, 0, r->buf, r->block_size, 0, why, why_len);
	return 0;
}

/* Puts back object E[0].index from the listing's entries E[0..N) (head
 * first, clones by snap): nothing when the head is unchanged since the
 * snapshot; else delete the head (the OSDs clone it first for newer
 * snapshots), then write the snapshot's content back, if it had any. */
static int rollback_object(struct rollback *r, const struct usage_entry *e, size_t n, char *why,
			   size_t why_len)
{
	const struct usage_entry *head = n && e[0].snap == OBJECT_SNAP_HEAD ? &e[0] : NULL;
	uint64_t at = e[0].index * r->block_size;
	/* Past the snapshot's end even an old head goes (kept by a shrink of
	 * a volume with snapshots, it would show again on a grow). */
	if (head && head->version >> 32 < r->snap.epoch && at < r->snap.size)
		return 0;
	struct object_id oid = { r->pool, r->inode, e[0].index, OBJECT_SNAP_HEAD };
	bool had = at < r->snap.size && usage_resolve(e, n, &r->snap) >= 0;
	int rc = 0;
	if (had) {
		struct object_id view = oid;
		view.snap = r->snap.id;
		rc = r->a->ops->read(r->a->ctx, &view, r->buf, r->block_size, why, why_len);
		had = rc == 0;
		if (rc && rc != -ENOENT)
			return rc;
	}
	if (!head && !had)
		return 0;
	if (head && (rc = rollback_delete(r, &oid, why, why_len)))
		return rc;
	if (!had) {
		r->out->objects_freed++;
		return 0;
	}
	/* Past the snapshot's end the volume read zeros then. */
	if (r->snap.size - at < r->block_size)
		memset(r->buf + (r->snap.size - at), 0, r->block_size - (r->snap.size - at));
	r->out->objects_restored++;
	return rollback_write(r, &oid, why, why_len);
}

/* The objects of R's volume, listed, sorted by (index, snap). */
static int rollback_list(struct rollback *r, const char *pool, struct usage_list *l, char *why,
			 size_t why_len)
{
	char list_why[256] = "";
	l->inode = r->inode;
	int rc = r->a->ops->list(r->a->ctx, pool, usage_found, l, list_why, sizeof(list_why));
	if (rc)
		return why_set(why, why_len, rc, "cannot list the volume's objects: %s", list_why);
	qsort(l->e, l->n, sizeof(*l->e), usage_cmp);
	return 0;
}

/* Whether the snapshot's view of object INDEX is the volume's own, from
 * the sorted listing L. */
static bool rollback_own(const struct rollback *r, const struct usage_list *l, uint64_t index)
{
	size_t lo = 0, hi = l->n;
	while (lo < hi) { /* the first entry of INDEX */
		size_t mid = (lo + hi) / 2;
		if (l->e[mid].index < index)
			lo = mid + 1;
		else
			hi = mid;
	}
	size_t n = 0;
	while (lo + n < l->n && l->e[lo + n].index == index)
		n++;
	return n && usage_resolve(l->e + lo, n, &r->snap) >= 0;
}

/* A clone shrunk since the snapshot reads less of its parent than the
 * snapshot did: the objects of that difference the snapshot read from
 * the parent are copied in (their heads are gone: rollback_object). */
static int rollback_overlap(struct rollback *r, const struct usage_list *l, char *why,
			    size_t why_len)
{
	if (r->n_layers < 2 || r->layers[1].limit_bytes <= r->overlap)
		return 0;
	uint64_t end = (r->layers[1].limit_bytes + r->block_size - 1) / r->block_size;
	for (uint64_t i = r->overlap / r->block_size; i < end; i++) {
		if (rollback_own(r, l, i))
			continue;
		uint64_t at = i * r->block_size;
		char read_why[256] = "";
		int rc = -ENOENT;
		for (int k = 1; k < r->n_layers && rc == -ENOENT && at < r->layers[k].limit_bytes;
		     k++) {
			const struct map_layer *y = &r->layers[k];
			struct object_id oid = { y->pool, y->inode, i, y->snap };
			rc = r->a->ops->read(r->a->ctx, &oid, r->buf, r->block_size, read_why,
					     sizeof(read_why));
			if (!rc && y->limit_bytes - at < r->block_size) /* past its end: zeros */
				memset(r->buf + (y->limit_bytes - at), 0,
				       r->block_size - (y->limit_bytes - at));
		}
		if (rc == -ENOENT)
			continue; /* no parent had it: it reads zeros, as it did */
		if (rc)
			return why_set(why, why_len, rc, "object %llx: %s", (unsigned long long)i,
				       read_why);
		struct object_id head = { r->pool, r->inode, i, OBJECT_SNAP_HEAD };
		if ((rc = rollback_write(r, &head, why, why_len)))
			return rc;
		r->out->objects_restored++;
	}
	return 0;
}

/* Puts back every object of R's volume that changed since the snapshot. */
static int rollback_objects(struct rollback *r, const char *pool, char *why, size_t why_len)
{
	struct usage_list l = { 0 };
	int rc = rollback_list(r, pool, &l, why, why_len);
	if (!rc && posix_memalign((void **)&r->buf, SNAP_CHUNK, r->block_size))
		rc = why_set(why, why_len, -ENOMEM, "out of memory");
	for (size_t i = 0; i < l.n && !rc;) {
		size_t j = i + 1;
		while (j < l.n && l.e[j].index == l.e[i].index)
			j++;
		char obj_why[256] = "";
		rc = rollback_object(r, l.e + i, j - i, obj_why, sizeof(obj_why));
		if (rc)
			why_set(why, why_len, rc,
				"object %llx: %s; %zu objects were put back before it: run the "
				"command again to finish", (unsigned long long)l.e[i].index, obj_why,
				r->out->objects_restored + r->out->objects_freed);
		i = j;
	}
	if (!rc)
		rc = rollback_overlap(r, &l, why, why_len);
	free(r->buf);
	free(l.e);
	return rc;
}

int bs_snap_rollback(const struct bs_admin *a, const struct bs_snap_spec *spec,
		     struct bs_volume_change *out, char *why, size_t why_len)
{
	memset(out, 0, sizeof(*out));
	struct rollback r = { .a = a, .out = out };
	char pool[MAP_NAME_MAX];
	uint64_t size;
	int rc = rollback_prepare(a, spec, &r, pool, &size, why, why_len);
	if (rc)
		return rc;
	out->old_size = size;
	out->new_size = r.snap.size;
	/* The size first (the map refuses a shrink of a locked volume, ours
	 * too): a shrink of a volume with snapshots keeps its objects, and
	 * rollback_objects deletes those past the end. */
	struct bs_volume_change resized;
	if (size != r.snap.size &&
	    (rc = bs_volume_resize(a, spec->volume, r.snap.size, BS_RESIZE_ALLOW_SHRINK, &resized,
				   why, why_len)))
		return rc;
	/* Held while the objects go back: a writer starting meanwhile would
	 * write into a half rolled-back volume. */
	char lock_why[256] = "";
	if ((rc = a->ops->lock(a->ctx, spec->volume, lock_why, sizeof(lock_why))))
		return why_set(why, why_len, rc, "%s; nothing was put back: run the command again "
			       "once it is free", lock_why);
	rc = rollback_objects(&r, pool, why, why_len);
	a->ops->unlock(a->ctx, spec->volume);
	if (!rc)
		snprintf(out->result, sizeof(out->result), "done");
	return rc;
}
