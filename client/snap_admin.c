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
