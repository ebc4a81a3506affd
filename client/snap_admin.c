/* Snapshot creation, removal, protection and rollback (see
 * volume_admin.h): the map change, the barrier that makes a snapshot
 * crash consistent, the immediate freeing of clones no snapshot needs any
 * more, and the objects a rollback rewrites — over the same ops table as
 * volume removal (docs/ARCHITECTURE.md, "Snapshots"). */
#include "client/volume_admin.h"
#include "client/volume_admin_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/snap_list.h"
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
	int rc = bs_admin_command(a, &cmd, out, why, why_len);
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

/* A clone of volume V that no remaining snapshot needs. */
static bool snap_garbage(const struct object_id *oid, uint64_t version, void *arg)
{
	const struct map_volume *v = arg;
	return oid->inode == v->inode && oid->snap != OBJECT_SNAP_HEAD &&
	       !map_snap_clone_needed(v, oid->snap, version);
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
	if (p) {
		rc = bs_admin_free(a, p->name, snap_garbage, (void *)v, out, why, why_len);
		if (rc == -EIO) {
			size_t at = strlen(why);
			snprintf(why + at, why_len - at, "; run the command again to free the rest");
		}
	}
	map_free(&m);
	return rc;
}

int bs_snap_remove(const struct bs_admin *a, const struct bs_snap_spec *spec,
		   struct bs_volume_change *out, char *why, size_t why_len)
{
	memset(out, 0, sizeof(*out));
	struct map_cmd cmd = { .type = MAP_CMD_SNAP_RM };
	memcpy(cmd.name, spec->volume, sizeof(cmd.name));
	memcpy(cmd.snap, spec->snap, sizeof(cmd.snap));
	int rc = bs_admin_command(a, &cmd, out, why, why_len);
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
	return bs_admin_command(a, &cmd, out, why, why_len);
}

/* --- space ----------------------------------------------------------------------- */

/* Adds one object's entries E[0..N) to OUT: who reads each entry (the
 * live volume its head, each snapshot what bs_snap_list_resolve says),
 * so every byte stored is counted once as live-exclusive, one snapshot's
 * exclusive, shared, or garbage. */
static void usage_object(const struct map_volume *v, struct bs_snap_entry *e, size_t n,
			 struct bs_volume_usage *out)
{
	for (uint32_t k = 0; k < v->n_snaps; k++) {
		long i = bs_snap_list_resolve(e, n, &v->snaps[k]);
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
			else
				out->shared_bytes += e[i].size;
			continue;
		}
		out->snapshots_bytes += e[i].size;
		if (!e[i].users) {
			out->garbage_bytes += e[i].size;
		} else if (e[i].users == 1) {
			out->snaps[e[i].first_user].exclusive_bytes += e[i].size;
			out->snapshots_exclusive_bytes += e[i].size;
		} else {
			out->shared_bytes += e[i].size;
		}
	}
}

/* OUT's fields the map gives for V of pool P: 0, or -ENOMEM. */
static int usage_init(const struct map_volume *v, const struct map_pool *p,
		      struct bs_volume_usage *out)
{
	if (!(out->snaps = calloc(v->n_snaps ? v->n_snaps : 1, sizeof(*out->snaps))))
		return -ENOMEM;
	snprintf(out->name, sizeof(out->name), "%s", v->name);
	snprintf(out->pool, sizeof(out->pool), "%s", p->name);
	out->inode = v->inode;
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
	return 0;
}

/* A volume of the pool being counted: its inode and its OUT entry. */
struct usage_slot {
	uint64_t inode;
	uint32_t at;
};

static int usage_slot_cmp(const void *a, const void *b)
{
	const struct usage_slot *x = a, *y = b;
	return x->inode < y->inode ? -1 : x->inode > y->inode;
}

/* Counts the listing's objects L (sorted) into OUT through SLOTS[0..N). */
static void usage_count(const struct cluster_map *m, struct bs_snap_list *l,
			const struct usage_slot *slots, uint32_t n, struct bs_volume_usage *out)
{
	const struct map_volume *v = NULL;
	const struct usage_slot *slot = NULL;
	for (size_t i = 0, k; i < l->n; i += k) {
		k = bs_snap_list_object(l->e + i, l->n - i);
		if (!slot || slot->inode != l->e[i].inode) { /* once per volume */
			struct usage_slot key = { .inode = l->e[i].inode };
			slot = bsearch(&key, slots, n, sizeof(*slots), usage_slot_cmp);
			v = map_volume_by_inode(m, key.inode);
		}
		if (slot && v)
			usage_object(v, l->e + i, k, &out[slot->at]);
	}
}

/* Lists pool POOL once for the volumes of OUT[0..N) in it and counts
 * their objects. */
static int usage_pool(const struct bs_admin *a, const struct cluster_map *m, uint32_t pool,
		      struct bs_volume_usage *out, uint32_t n, char *why, size_t why_len)
{
	const struct map_pool *p = map_pool_by_id(m, pool);
	uint64_t *inodes = calloc(n, sizeof(*inodes));
	struct usage_slot *slots = calloc(n, sizeof(*slots));
	struct bs_snap_list l = { .inodes = inodes };
	int rc = inodes && slots ? 0 : why_set(why, why_len, -ENOMEM, "out of memory");
	for (uint32_t i = 0; !rc && i < n; i++)
		if (strcmp(out[i].pool, p->name) == 0)
			slots[l.n_inodes++] = (struct usage_slot){ out[i].inode, i };
	if (!rc) {
		qsort(slots, l.n_inodes, sizeof(*slots), usage_slot_cmp);
		for (size_t i = 0; i < l.n_inodes; i++)
			inodes[i] = slots[i].inode;
		char list_why[256] = "";
		rc = a->ops->list(a->ctx, p->name, bs_snap_list_found, &l, list_why,
				  sizeof(list_why));
		if (rc)
			why_set(why, why_len, rc, "cannot list the objects of pool %s: %s", p->name,
				list_why);
	}
	if (!rc) {
		bs_snap_list_sort(&l);
		usage_count(m, &l, slots, (uint32_t)l.n_inodes, out);
	}
	free(inodes);
	free(slots);
	free(l.e);
	return rc;
}

/* The volumes asked for (NAME, or all) in *OUT, each pool listed once. */
static int usage_volumes(const struct bs_admin *a, const struct cluster_map *m, const char *name,
			 struct bs_volume_usage *out, uint32_t n, char *why, size_t why_len)
{
	for (uint32_t i = 0; i < n; i++) {
		const struct map_volume *v = name ? map_volume_by_name(m, name) : &m->volumes[i];
		if (usage_init(v, map_pool_by_id(m, v->pool), &out[i]))
			return why_set(why, why_len, -ENOMEM, "out of memory");
	}
	for (uint32_t i = 0; i < n; i++) {
		const struct map_volume *v = map_volume_by_name(m, out[i].name);
		bool first = true; /* the first volume of its pool lists it */
		for (uint32_t j = 0; j < i && first; j++)
			first = strcmp(out[j].pool, out[i].pool) != 0;
		int rc = first ? usage_pool(a, m, v->pool, out, n, why, why_len) : 0;
		if (rc)
			return rc;
		/* (Its pool is counted now, or was with an earlier volume's.) */
		out[i].raw_bytes = map_pool_raw_bytes(map_pool_by_id(m, v->pool), out[i].stored_bytes);
	}
	return 0;
}

int bs_volumes_usage(const struct bs_admin *a, const char *name, struct bs_volume_usage **out,
		     uint32_t *n_out, char *why, size_t why_len)
{
	struct cluster_map m;
	*out = NULL;
	*n_out = 0;
	int rc = a->ops->get_map(a->ctx, &m, why, why_len);
	if (rc)
		return rc;
	const struct map_volume *v = name ? map_volume_by_name(&m, name) : NULL;
	if (name && (!v || !map_pool_by_id(&m, v->pool))) {
		map_free(&m);
		return why_set(why, why_len, -ENOENT, "volume '%s' does not exist", name);
	}
	uint32_t n = name ? 1 : m.n_volumes;
	struct bs_volume_usage *u = calloc(n ? n : 1, sizeof(*u));
	if (!u) {
		map_free(&m);
		return why_set(why, why_len, -ENOMEM, "out of memory");
	}
	rc = usage_volumes(a, &m, name, u, n, why, why_len);
	map_free(&m);
	if (rc) {
		bs_volumes_usage_free(u, n);
		return rc;
	}
	*out = u;
	*n_out = n;
	return 0;
}

void bs_volumes_usage_free(struct bs_volume_usage *u, uint32_t n)
{
	for (uint32_t i = 0; u && i < n; i++)
		free(u[i].snaps);
	free(u);
}

int bs_volume_usage(const struct bs_admin *a, const char *name, struct bs_volume_usage *out,
		    char *why, size_t why_len)
{
	struct bs_volume_usage *u;
	uint32_t n;
	memset(out, 0, sizeof(*out));
	int rc = bs_volumes_usage(a, name, &u, &n, why, why_len);
	if (rc)
		return rc;
	*out = u[0];
	free(u);
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
static int rollback_object(struct rollback *r, const struct bs_snap_entry *e, size_t n, char *why,
			   size_t why_len)
{
	const struct bs_snap_entry *head = n && e[0].snap == OBJECT_SNAP_HEAD ? &e[0] : NULL;
	uint64_t at = e[0].index * r->block_size;
	/* Past the snapshot's end even an old head goes (kept by a shrink of
	 * a volume with snapshots, it would show again on a grow). */
	if (head && map_snap_predates(&r->snap, head->version) && at < r->snap.size)
		return 0;
	struct object_id oid = { r->pool, r->inode, e[0].index, OBJECT_SNAP_HEAD, OBJECT_SHARD_WHOLE };
	bool had = at < r->snap.size && bs_snap_list_resolve(e, n, &r->snap) >= 0;
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
static int rollback_list(struct rollback *r, const char *pool, struct bs_snap_list *l, char *why,
			 size_t why_len)
{
	char list_why[256] = "";
	l->inodes = &r->inode;
	l->n_inodes = 1;
	int rc = r->a->ops->list(r->a->ctx, pool, bs_snap_list_found, l, list_why, sizeof(list_why));
	if (rc)
		return why_set(why, why_len, rc, "cannot list the volume's objects: %s", list_why);
	bs_snap_list_sort(l);
	return 0;
}

/* Whether the snapshot's view of object INDEX is the volume's own, from
 * the sorted listing L. */
static bool rollback_own(const struct rollback *r, const struct bs_snap_list *l, uint64_t index)
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
	return n && bs_snap_list_resolve(l->e + lo, n, &r->snap) >= 0;
}

/* A clone shrunk since the snapshot reads less of its parent than the
 * snapshot did: the objects of that difference the snapshot read from
 * the parent are copied in (their heads are gone: rollback_object). */
static int rollback_overlap(struct rollback *r, const struct bs_snap_list *l, char *why,
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
			struct object_id oid = { y->pool, y->inode, i, y->snap, OBJECT_SHARD_WHOLE };
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
		struct object_id head = { r->pool, r->inode, i, OBJECT_SNAP_HEAD, OBJECT_SHARD_WHOLE };
		if ((rc = rollback_write(r, &head, why, why_len)))
			return rc;
		r->out->objects_restored++;
	}
	return 0;
}

/* Puts back every object of R's volume that changed since the snapshot. */
static int rollback_objects(struct rollback *r, const char *pool, char *why, size_t why_len)
{
	struct bs_snap_list l = { 0 };
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
