/* Differences between two states of a volume (see bs_snap_diff in
 * volume_admin.h): which objects read other content, from one listing
 * of the pool — metadata only, never a data block. The backup issue's
 * incremental export builds on it; the CLI's snap diff prints it. */
#include "client/volume_admin.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/snap_list.h"
#include "common/why.h"

struct diff_run {
	const struct map_snap *from, *to; /* to NULL: the live volume */
	uint64_t end;			  /* the newer state's size */
	uint32_t block_size;
	bool has_parent; /* absent objects read the parent's snapshot */
	bs_snap_diff_fn fn;
	void *arg;
	struct bs_snap_diff_info *out;
	uint64_t pending_offset, pending_length; /* the extent being merged */
	bool pending_data;
};

static int diff_flush(struct diff_run *r)
{
	if (!r->pending_length)
		return 0;
	r->out->extents++;
	r->out->changed_bytes += r->pending_length;
	uint64_t length = r->pending_length;
	r->pending_length = 0;
	return r->fn(r->pending_offset, length, r->pending_data, r->arg);
}

/* Adds [OFFSET, OFFSET + LENGTH) of kind DATA, merging it with the one
 * before when they touch and are of one kind. */
static int diff_emit(struct diff_run *r, uint64_t offset, uint64_t length, bool data)
{
	if (r->pending_length && r->pending_offset + r->pending_length == offset &&
	    r->pending_data == data) {
		r->pending_length += length;
		return 0;
	}
	int rc = diff_flush(r);
	r->pending_offset = offset;
	r->pending_length = length;
	r->pending_data = data;
	return rc;
}

/* One object's entries E[0..N): an extent if the two states read
 * different entries. */
static int diff_object(struct diff_run *r, const struct bs_snap_entry *e, size_t n)
{
	uint64_t objects = (r->end + r->block_size - 1) / r->block_size;
	if (e[0].index >= objects)
		return 0; /* past the newer state's end */
	uint64_t offset = e[0].index * r->block_size;
	long old = r->from && offset < r->from->size ? bs_snap_list_resolve(e, n, r->from) : -1;
	long new = r->to ? bs_snap_list_resolve(e, n, r->to) : bs_snap_list_resolve_head(e, n);
	if (old < 0 && new < 0)
		return 0;
	if (old >= 0 && new >= 0 && e[old].version == e[new].version)
		return 0; /* a clone keeps its head's version: the same bytes */
	uint64_t length = r->end - offset < r->block_size ? r->end - offset : r->block_size;
	return diff_emit(r, offset, length, new >= 0 || r->has_parent);
}

/* The two states of VOLUME in M, or a refusal. */
static int diff_states(const struct cluster_map *m, const char *volume, const char *from,
		       const char *to, struct diff_run *r, const struct map_volume **v_out,
		       char *why, size_t why_len)
{
	const struct map_volume *v = map_volume_by_name(m, volume);
	const struct map_pool *p = v ? map_pool_by_id(m, v->pool) : NULL;
	if (!p)
		return why_set(why, why_len, -ENOENT, "volume '%s' does not exist", volume);
	r->from = from ? map_snap_by_name(v, from) : NULL;
	if (from && !r->from)
		return why_set(why, why_len, -ENOENT, "volume '%s' has no snapshot '%s'", volume,
			       from);
	r->to = to ? map_snap_by_name(v, to) : NULL;
	if (to && !r->to)
		return why_set(why, why_len, -ENOENT, "volume '%s' has no snapshot '%s'", volume, to);
	if (r->to && r->from && r->to->id < r->from->id)
		return why_set(why, why_len, -EINVAL,
			       "%s@%s is older than %s@%s: a diff goes from the older snapshot to "
			       "the newer (swap them)", volume, to, volume, from);
	r->end = r->to ? r->to->size : v->size;
	r->block_size = p->block_size;
	r->has_parent = v->parent_inode != 0;
	*v_out = v;
	return 0;
}

int bs_snap_diff(const struct bs_admin *a, const char *volume, const char *from, const char *to,
		 bs_snap_diff_fn fn, void *arg, struct bs_snap_diff_info *out, char *why,
		 size_t why_len)
{
	memset(out, 0, sizeof(*out));
	struct cluster_map m;
	int rc = a->ops->get_map(a->ctx, &m, why, why_len);
	if (rc)
		return rc;
	struct diff_run r = { .fn = fn, .arg = arg, .out = out };
	const struct map_volume *v = NULL;
	rc = diff_states(&m, volume, from, to, &r, &v, why, why_len);
	if (rc) {
		map_free(&m);
		return rc;
	}
	out->from_size = r.from ? r.from->size : 0;
	out->to_size = r.end;
	out->block_size = r.block_size;
	if (!r.from && r.has_parent) {
		/* A clone reads its parents where it holds nothing: from
		 * nothing, all of it may differ (listing the parents' objects
		 * would not say more than "may"). */
		map_free(&m);
		rc = diff_emit(&r, 0, r.end, true);
		return rc ? rc : diff_flush(&r);
	}
	uint64_t inode = v->inode;
	struct bs_snap_list l = { .inodes = &inode, .n_inodes = 1 };
	char list_why[256] = "";
	rc = a->ops->list(a->ctx, map_pool_by_id(&m, v->pool)->name, bs_snap_list_found, &l,
			  list_why, sizeof(list_why));
	if (rc) {
		rc = why_set(why, why_len, rc, "cannot list the volume's objects: %s", list_why);
	} else {
		bs_snap_list_sort(&l);
		for (size_t i = 0, k; i < l.n && !rc; i += k) {
			k = bs_snap_list_object(l.e + i, l.n - i);
			rc = diff_object(&r, l.e + i, k);
		}
		if (!rc)
			rc = diff_flush(&r);
	}
	map_free(&m);
	free(l.e);
	return rc;
}
