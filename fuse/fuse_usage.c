/* basalt-fuse: bytes written per volume, from pool listings (see
 * fuse_usage.h). A listing fills a fresh table of the volumes the map
 * had when it started, sorted by inode; once every OSD answered (or was
 * found down: its PGs are listed by the OSDs that took them over) the
 * table replaces the last one. */
#include "fuse_usage.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

struct usage_entry {
	uint64_t inode, bytes;
};

struct fuse_usage {
	struct bs_client *c;
	struct usage_entry *cur, *next; /* sorted by inode */
	uint32_t n_cur, n_next;
	struct bs_op *ops; /* the listing running: one per (pool, OSD) */
	uint32_t n_ops, pending, answered;
	uint64_t listed_ns; /* when the last listing finished (0: never) */
};

static int entry_cmp(const void *a, const void *b)
{
	const struct usage_entry *x = a, *y = b;
	return x->inode < y->inode ? -1 : x->inode > y->inode;
}

static struct usage_entry *entry_find(struct usage_entry *t, uint32_t n, uint64_t inode)
{
	struct usage_entry key = { .inode = inode };
	return bsearch(&key, t, n, sizeof(*t), entry_cmp);
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
	free(u->ops);
	free(u);
}

bool fuse_usage_busy(const struct fuse_usage *u)
{
	return u->pending > 0;
}

int fuse_usage_bytes(const struct fuse_usage *u, uint64_t inode, uint64_t *out)
{
	struct usage_entry *e = entry_find(u->cur, u->n_cur, inode);
	if (!e)
		return -ENOENT;
	*out = e->bytes;
	return 0;
}

/* Every answer is in: the new table replaces the old one, unless no OSD
 * answered at all (then the old one stays). Either way the next listing
 * waits its turn: a cluster with every OSD down is not asked at every stat. */
static void listing_end(struct fuse_usage *u)
{
	u->listed_ns = io_now_ns(bs_client_loop(u->c));
	if (u->answered) {
		free(u->cur);
		u->cur = u->next;
		u->n_cur = u->n_next;
		u->next = NULL;
	} else {
		LOG_WARN("no OSD listed its objects: du shows the last counts known");
		free(u->next);
		u->next = NULL;
	}
	free(u->ops);
	u->ops = NULL;
	u->n_ops = 0;
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
		for (size_t i = 0; !bs_list_entry(op, i, &oid, &version, &size); i++) {
			struct usage_entry *e = entry_find(u->next, u->n_next, oid.inode);
			if (e)
				e->bytes += size;
		}
	}
	free(op->buf);
	op->buf = NULL;
	if (!--u->pending)
		listing_end(u);
}

/* The new table: every volume of the map, at 0 bytes. */
static int table_start(struct fuse_usage *u, const struct cluster_map *m)
{
	u->next = calloc(m->n_volumes ? m->n_volumes : 1, sizeof(*u->next));
	if (!u->next)
		return -ENOMEM;
	for (uint32_t i = 0; i < m->n_volumes; i++)
		u->next[i].inode = m->volumes[i].inode;
	u->n_next = m->n_volumes;
	qsort(u->next, u->n_next, sizeof(*u->next), entry_cmp);
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
		u->next = NULL;
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
