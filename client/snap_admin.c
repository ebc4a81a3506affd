/* Snapshot creation and removal (see volume_admin.h): the map change,
 * the barrier that makes a snapshot crash consistent, and the immediate
 * freeing of clones no snapshot needs any more — over the same ops table
 * as volume removal (docs/ARCHITECTURE.md, "Snapshots"). */
#include "client/volume_admin.h"
#include "client/volume_admin_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/snap_list.h"
#include "common/why.h"

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
