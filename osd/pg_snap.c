/* Snapshots on the OSD (docs/ARCHITECTURE.md, "Snapshots"): which write
 * first preserves its object's head as a clone, making that clone on
 * every member, which object serves a read of a snapshot, and the
 * barrier `snap create` and `snap rm` wait on. The rest of snapshots —
 * removal, rollback, diff, accounting — is the client's, over listings
 * and ordinary operations.
 *
 * A write's version carries the map epoch its primary assigned it in
 * (version >> 32). Snapshot S of a volume was created by map epoch
 * E_S; the head's content belongs to S iff its version's epoch is below
 * E_S. So the first write after S (on a primary whose map has S) finds
 * the head older than E_S and copies it to the clone (inode, index, S)
 * — keeping its version — before applying; later writes find it newer
 * and copy nothing. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "pg_int.h"

/* --- the volumes that have snapshots ---------------------------------------------- */

static int snap_vol_cmp(const void *a, const void *b)
{
	const struct pg_snap_vol *x = a, *y = b;
	if (x->pool != y->pool)
		return x->pool < y->pool ? -1 : 1;
	return x->inode < y->inode ? -1 : x->inode > y->inode;
}

/* Rebuilds the index of volumes with snapshots for map M: writes look up
 * their volume in it, in O(log volumes). */
static void snap_index_build(struct osd_pgs *t, const struct cluster_map *m)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < m->n_volumes; i++)
		n += m->volumes[i].n_snaps > 0;
	struct pg_snap_vol *vols = n ? calloc(n, sizeof(*vols)) : NULL;
	free(t->snap_vols);
	t->snap_vols = vols;
	t->n_snap_vols = 0;
	if (n && !vols) {
		t->snap_epoch = 0; /* try again on the next lookup */
		return;
	}
	for (uint32_t i = 0; i < m->n_volumes; i++)
		if (m->volumes[i].n_snaps)
			vols[t->n_snap_vols++] = (struct pg_snap_vol){ m->volumes[i].pool,
								      m->volumes[i].inode, i };
	if (t->n_snap_vols)
		qsort(vols, t->n_snap_vols, sizeof(*vols), snap_vol_cmp);
	t->snap_epoch = m->epoch;
}

const struct map_volume *pg_snap_volume(struct osd *o, uint32_t pool, uint64_t inode)
{
	const struct cluster_map *m = monsess_map(o->mon);
	struct osd_pgs *t = o->pgs;
	if (t->snap_epoch != m->epoch)
		snap_index_build(t, m);
	if (!t->n_snap_vols)
		return NULL;
	struct pg_snap_vol key = { pool, inode, 0 };
	const struct pg_snap_vol *v = bsearch(&key, t->snap_vols, t->n_snap_vols,
					      sizeof(key), snap_vol_cmp);
	return v ? &m->volumes[v->index] : NULL;
}

void pg_snap_fini(struct osd *o)
{
	free(o->pgs->snap_vols);
	o->pgs->snap_vols = NULL;
	o->pgs->n_snap_vols = 0;
}

/* --- writes ------------------------------------------------------------------------ */

uint64_t pg_version_next(struct osd_pg *pg)
{
	uint64_t epoch = monsess_map(pg->o->mon)->epoch;
	if (epoch < pg->interval)
		epoch = pg->interval;
	return epoch << 32 | ++pg->seq;
}

uint32_t pg_snap_clone_for_write(struct osd_pg *pg, const struct object_id *oid)
{
	if (oid->snap != OBJECT_SNAP_HEAD)
		return 0; /* a clone is deleted (snap rm), never written */
	const struct map_volume *v = pg_snap_volume(pg->o, oid->pool, oid->inode);
	if (!v || !v->n_snaps)
		return 0;
	const struct map_snap *newest = &v->snaps[v->n_snaps - 1];
	struct store_object_info info;
	if (store_stat(pg->o->store, oid, &info))
		return 0; /* nothing to preserve */
	return map_snap_predates(newest, info.version) ? newest->id : 0;
}

struct snap_clone {
	struct store *store;
	struct store_req req; /* reads the head, then writes the clone */
	struct store_req *then;
	uint32_t snap;
};

static void clone_end(struct snap_clone *c, int res)
{
	struct store_req *then = c->then;
	struct store *store = c->store;
	free(c->req.buf);
	free(c);
	if (res) {
		char id[64];
		LOG_WARN("cannot preserve %s for a snapshot: %s",
			 object_id_str(&then->oid, id, sizeof(id)), strerror(-res));
		then->done(then, res);
		return;
	}
	store_submit(store, then);
}

static void clone_written(struct store_req *req, int res)
{
	clone_end(req->ctx, res);
}

static void clone_read(struct store_req *req, int res)
{
	struct snap_clone *c = req->ctx;
	if (res) {
		clone_end(c, res);
		return;
	}
	/* The copy keeps the head's version and shape: it is the head as it
	 * was, and its version says which snapshots it serves. */
	req->op = STORE_OP_WRITE;
	req->oid.snap = c->snap;
	req->masked = true;
	req->done = clone_written;
	store_submit(c->store, req);
}

void pg_snap_clone_submit(struct store *s, uint32_t snap, struct store_req *then)
{
	struct object_id clone = then->oid;
	clone.snap = snap;
	struct store_object_info info;
	if (!snap || store_stat(s, &then->oid, &info) || store_stat(s, &clone, &info) == 0) {
		/* Nothing to preserve, or preserved already (a resend after a
		 * crash between the clone and the write). */
		store_submit(s, then);
		return;
	}
	uint32_t bs = store_block_size(s);
	bool whole = then->op == STORE_OP_DELETE ||
		     (then->op == STORE_OP_WRITE && then->offset == 0 && then->len == bs);
	if (whole && store_clone_movable(s, &then->oid, snap)) {
		/* The write replaces the whole head: the clone just takes the
		 * head's block, in the write's own journal batch. */
		then->clone_snap = snap;
		store_submit(s, then);
		return;
	}
	struct snap_clone *c = calloc(1, sizeof(*c));
	void *buf = NULL;
	if (!c || posix_memalign(&buf, 4096, bs)) {
		free(c);
		then->done(then, -ENOMEM);
		return;
	}
	c->store = s;
	c->then = then;
	c->snap = snap;
	/* The read fills in the head's version and written chunks. */
	c->req = (struct store_req){ .op = STORE_OP_READ, .oid = then->oid, .offset = 0,
				     .len = bs, .buf = buf, .done = clone_read, .ctx = c };
	store_submit(s, &c->req);
}

/* --- reads of a snapshot ----------------------------------------------------------- */

int pg_snap_resolve(struct osd_pg *pg, const struct object_id *oid, struct object_id *out)
{
	struct osd *o = pg->o;
	const struct map_volume *v = pg_snap_volume(o, oid->pool, oid->inode);
	const struct map_snap *want = v ? map_snap_by_id(v, oid->snap) : NULL;
	if (!want)
		return -ENOENT;
	struct store_object_info info;
	struct object_id at = *oid;
	/* The clone taken at the first write after WANT (or after a later
	 * snapshot, when none came between) holds it, if its content is older
	 * than WANT; a newer one means the object did not exist then. */
	for (uint32_t s = want->id; s <= v->next_snap; s++) {
		at.snap = s;
		struct pg_obj *obj = pg_obj_get(pg, &at, false);
		if (obj && (obj->need_push & 1))
			return -EAGAIN; /* this copy is still to come: retry then */
		if (store_stat(o->store, &at, &info) == 0) {
			if (!map_snap_predates(want, info.version))
				return -ENOENT;
			*out = at;
			return 0;
		}
	}
	at.snap = OBJECT_SNAP_HEAD;
	if (store_stat(o->store, &at, &info) || !map_snap_predates(want, info.version))
		return -ENOENT;
	*out = at;
	return 0;
}

/* --- the barrier ------------------------------------------------------------------- */

struct sync_scan {
	uint64_t epoch;
	bool busy;
};

static void sync_scan_pg(struct osd_pg *pg, void *arg)
{
	struct sync_scan *sc = arg;
	const struct list_node *pos;
	list_for_each(pos, &pg->ops) {
		const struct pg_op *op = list_entry(pos, struct pg_op, pg_node);
		bool writes = op->op.type == OSD_OP_WRITE || op->op.type == OSD_OP_DELETE;
		if (writes && op->dispatched && !op->answered && op->version &&
		    op->version >> 32 < sc->epoch)
			sc->busy = true;
	}
}

static bool sync_busy(struct osd *o, uint64_t epoch)
{
	struct sync_scan sc = { epoch, false };
	pg_for_each(o, sync_scan_pg, &sc);
	return sc.busy;
}

void pg_snap_sync(struct osd *o, struct msgr_conn *conn, uint64_t request_id, uint64_t epoch)
{
	struct osd_op_reply r = { .epoch = monsess_map(o->mon)->epoch };
	if (!sync_busy(o, epoch)) {
		osd_op_answer(o, conn, request_id, &r, NULL, 0);
		return;
	}
	struct pg_sync *w = calloc(1, sizeof(*w));
	if (!w) {
		r.rc = -ENOMEM;
		osd_op_answer(o, conn, request_id, &r, NULL, 0);
		return;
	}
	w->conn = conn;
	w->request_id = request_id;
	w->epoch = epoch;
	list_add_tail(&o->pgs->syncs, &w->node);
}

void pg_snap_sync_kick(struct osd *o)
{
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &o->pgs->syncs) {
		struct pg_sync *w = list_entry(pos, struct pg_sync, node);
		if (sync_busy(o, w->epoch))
			continue;
		struct osd_op_reply r = { .epoch = monsess_map(o->mon)->epoch };
		list_del(&w->node);
		if (w->conn)
			osd_op_answer(o, w->conn, w->request_id, &r, NULL, 0);
		free(w);
	}
}

void pg_snap_conn_closed(struct osd *o, struct msgr_conn *conn)
{
	struct list_node *pos;
	list_for_each(pos, &o->pgs->syncs) {
		struct pg_sync *w = list_entry(pos, struct pg_sync, node);
		if (w->conn == conn)
			w->conn = NULL;
	}
}

void pg_snap_syncs_free(struct osd *o)
{
	while (!list_empty(&o->pgs->syncs)) {
		struct pg_sync *w = list_entry(list_first(&o->pgs->syncs), struct pg_sync, node);
		list_del(&w->node);
		free(w);
	}
}
