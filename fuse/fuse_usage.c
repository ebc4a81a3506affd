/* basalt-fuse: bytes written per volume, from pool listings (see
 * fuse_usage.h). A listing keeps the entries of the volumes the map had
 * when it started; once every OSD answered (or was found down: its PGs
 * are listed by the OSDs that took them over) they are counted into a
 * fresh table — a row per volume (its heads) and per snapshot (what it
 * reads, by the rule of client/snap_list.h) sorted by (inode, snap) —
 * which replaces the last one. */
#include "fuse_usage.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/snap_list.h"
#include "common/log.h"

/* A volume (snap OBJECT_SNAP_HEAD) or one of its snapshots. */
struct usage_entry {
	uint64_t inode;
	uint32_t snap;
	uint64_t epoch; /* the snapshot's */
	uint64_t bytes;
};

struct fuse_usage {
	struct bs_client *c;
	struct usage_entry *cur, *next; /* sorted by (inode, snap) */
	uint32_t n_cur, n_next;
	uint64_t *inodes;	  /* the listing running: its volumes, sorted */
	struct bs_snap_list list; /* and their entries */
	struct bs_op *ops; /* the listing running: one per (pool, OSD) */
	uint32_t n_ops, pending, answered;
	bool list_failed;
	uint64_t listed_ns; /* when the last listing finished (0: never) */
};

static int entry_cmp(const void *a, const void *b)
{
	const struct usage_entry *x = a, *y = b;
	if (x->inode != y->inode)
		return x->inode < y->inode ? -1 : 1;
	return x->snap < y->snap ? -1 : x->snap > y->snap;
}

static struct usage_entry *entry_find(struct usage_entry *t, uint32_t n, uint64_t inode,
				      uint32_t snap)
{
	struct usage_entry key = { .inode = inode, .snap = snap };
	return bsearch(&key, t, n, sizeof(*t), entry_cmp);
}

static int inode_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int fuse_usage_create(struct bs_client *c, struct fuse_usage **out)
{
	struct fuse_usage *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->c = c;
	*out = u;
	return 0;
}

void fuse_usage_destroy(struct fuse_usage *u)
{
	if (!u)
		return;
	free(u->cur);
	free(u->next);
	free(u->inodes);
	free(u->list.e);
	free(u->ops);
	free(u);
}

bool fuse_usage_busy(const struct fuse_usage *u)
{
	return u->pending > 0;
}

int fuse_usage_bytes(const struct fuse_usage *u, uint64_t inode, uint64_t *out)
{
	return fuse_usage_snap_bytes(u, inode, OBJECT_SNAP_HEAD, out);
}

int fuse_usage_snap_bytes(const struct fuse_usage *u, uint64_t inode, uint32_t snap,
			  uint64_t *out)
{
	struct usage_entry *e = entry_find(u->cur, u->n_cur, inode, snap);
	if (!e)
		return -ENOENT;
	*out = e->bytes;
	return 0;
}

/* Counts one object's entries E[0..N) into the rows of its volume. */
static void count_object(struct fuse_usage *u, const struct bs_snap_entry *e, size_t n)
{
	struct usage_entry *row = entry_find(u->next, u->n_next, e[0].inode, OBJECT_SNAP_HEAD);
	if (!row)
		return;
	long head = bs_snap_list_resolve_head(e, n);
	if (head >= 0)
		row->bytes += e[head].size;
	for (row++; row < u->next + u->n_next && row->inode == e[0].inode; row++) {
		struct map_snap s = { .id = row->snap, .epoch = row->epoch };
		long i = bs_snap_list_resolve(e, n, &s);
		if (i >= 0)
			row->bytes += e[i].size;
	}
}

/* The listing's entries counted into the new table. */
static void count_listing(struct fuse_usage *u)
{
	bs_snap_list_sort(&u->list);
	for (size_t i = 0, k; i < u->list.n; i += k) {
		k = bs_snap_list_object(u->list.e + i, u->list.n - i);
		count_object(u, u->list.e + i, k);
	}
}

/* Every answer is in: the new table replaces the old one, unless no OSD
 * answered at all (then the old one stays). Either way the next listing
 * waits its turn: a cluster with every OSD down is not asked at every stat. */
static void listing_end(struct fuse_usage *u)
{
	u->listed_ns = io_now_ns(bs_client_loop(u->c));
	if (u->answered && !u->list_failed) {
		count_listing(u);
		free(u->cur);
		u->cur = u->next;
		u->n_cur = u->n_next;
		u->next = NULL;
	} else {
		LOG_WARN("%s: du shows the last counts known",
			 u->answered ? "out of memory counting the listing" : "no OSD listed its objects");
		free(u->next);
		u->next = NULL;
	}
	free(u->ops);
	u->ops = NULL;
	u->n_ops = 0;
	free(u->inodes);
	u->inodes = NULL;
	free(u->list.e);
	u->list = (struct bs_snap_list){ 0 };
}

static void list_done(struct bs_op *op, int rc)
{
	struct fuse_usage *u = op->ctx;
	if (rc) {
		LOG_DEBUG("listing pool %u on osd.%llu: %s", op->oid.pool,
			  (unsigned long long)op->oid.inode, strerror(-rc));
	} else {
		u->answered++;
		struct object_id oid;
		uint64_t version, size;
		for (size_t i = 0; !u->list_failed && !bs_list_entry(op, i, &oid, &version, &size);
		     i++)
			if (bs_snap_list_found(&oid, version, size, &u->list))
				u->list_failed = true; /* out of memory: keep the old counts */
	}
	free(op->buf);
	op->buf = NULL;
	if (!--u->pending)
		listing_end(u);
}

/* The new table: every volume of the map and its snapshots, at 0 bytes;
 * the listing's inodes. */
static int table_start(struct fuse_usage *u, const struct cluster_map *m)
{
	uint32_t rows = m->n_volumes;
	for (uint32_t i = 0; i < m->n_volumes; i++)
		rows += m->volumes[i].n_snaps;
	u->next = calloc(rows ? rows : 1, sizeof(*u->next));
	u->inodes = calloc(m->n_volumes ? m->n_volumes : 1, sizeof(*u->inodes));
	if (!u->next || !u->inodes) {
		free(u->next);
		free(u->inodes);
		u->next = NULL;
		u->inodes = NULL;
		return -ENOMEM;
	}
	u->n_next = 0;
	for (uint32_t i = 0; i < m->n_volumes; i++) {
		const struct map_volume *v = &m->volumes[i];
		u->inodes[i] = v->inode;
		u->next[u->n_next++] = (struct usage_entry){ .inode = v->inode };
		for (uint32_t k = 0; k < v->n_snaps; k++)
			u->next[u->n_next++] = (struct usage_entry){ v->inode, v->snaps[k].id,
								     v->snaps[k].epoch, 0 };
	}
	qsort(u->next, u->n_next, sizeof(*u->next), entry_cmp);
	qsort(u->inodes, m->n_volumes, sizeof(*u->inodes), inode_cmp);
	u->list = (struct bs_snap_list){ .inodes = u->inodes, .n_inodes = m->n_volumes };
	u->list_failed = false;
	return 0;
}

static bool pool_has_volumes(const struct cluster_map *m, uint32_t pool)
{
	for (uint32_t i = 0; i < m->n_volumes; i++)
		if (m->volumes[i].pool == pool)
			return true;
	return false;
}

void fuse_usage_refresh(struct fuse_usage *u, uint64_t max_age_ms)
{
	struct io_loop *loop = bs_client_loop(u->c);
	if (u->pending || (u->listed_ns && io_now_ns(loop) - u->listed_ns < IO_MS(max_age_ms)))
		return;
	const struct cluster_map *m = bs_client_map(u->c);
	uint32_t n = 0;
	for (uint32_t p = 0; p < m->n_pools; p++)
		if (pool_has_volumes(m, m->pools[p].id))
			for (uint32_t o = 0; o < m->n_osds; o++)
				n += m->osds[o].exists && m->osds[o].up;
	if (!n || table_start(u, m))
		return;
	if (!(u->ops = calloc(n, sizeof(*u->ops)))) {
		free(u->next);
		free(u->inodes);
		u->next = NULL;
		u->inodes = NULL;
		return;
	}
	u->n_ops = n;
	u->pending = n;
	u->answered = 0;
	uint32_t k = 0;
	for (uint32_t p = 0; p < m->n_pools; p++)
		for (uint32_t o = 0; pool_has_volumes(m, m->pools[p].id) && o < m->n_osds; o++)
			if (m->osds[o].exists && m->osds[o].up)
				u->ops[k++] = (struct bs_op){ .type = BS_LIST, .done = list_done, .ctx = u,
							      .oid = { .pool = m->pools[p].id, .inode = o } };
	for (uint32_t i = 0; i < n; i++)
		bs_submit(u->c, &u->ops[i]);
}
