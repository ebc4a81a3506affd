/* Client operations on a PG's primary (pg_int.h, invariants 1, 2, 5, 6).
 *
 * An operation waits while its PG is not active, then queues on its
 * object: reads run together, but a read never runs beside an
 * unacknowledged write, and an object has one write in flight at a time.
 * (Pipelined writes would be faster for one object, but a write that
 * fails on one member — a full disk — followed by one that succeeds would
 * leave that member at the same version as the others with other bytes,
 * which no peering could see.) Different objects proceed in parallel.
 * An object some
 * member lacks is recovered first. A write gets the next version of the
 * interval, goes to every other acting member and to the local store at
 * once, and is answered when all of them have it durable. Any member's
 * failure makes the PG peer again; every operation not yet answered is
 * then answered -EAGAIN, and the client resends (the same request id, so
 * a write applied already is recognised). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/log.h"
#include "common/cluster/mon_proto.h"
#include "pg_int.h"

void pg_op_free(struct pg_op *op)
{
	op->pg->o->pgs->client_ops--;
	if (list_linked(&op->pg_node))
		list_del(&op->pg_node);
	if (list_linked(&op->q_node))
		list_del(&op->q_node);
	if (op->req.buf && op->op.type == OSD_OP_READ)
		free(op->req.buf);
	pg_ec_op_free(op->ec);
	pg_data_put(op->data);
	free(op);
}

/* Whether OP only reads (a read or a stat): it may run beside other reads. */
static bool op_reads(const struct osd_op *op)
{
	return op->type == OSD_OP_READ || op->type == OSD_OP_STAT;
}

/* Answers OP (once): takes ownership of DATA (LEN bytes), with CRC (NULL,
 * or the CRC32C of each of its 4 KiB chunks, living as long as DATA). */
static void op_answer_crc(struct pg_op *op, int rc, uint64_t version, uint64_t size, void *data,
			  uint32_t len, const uint32_t *crc)
{
	if (op->answered) {
		free(data);
		return;
	}
	op->answered = true;
	uint64_t bytes = op->op.type == OSD_OP_READ ? len : op->op.len;
	osd_metrics_op_answered(op->pg->o, op->op.type - 1, rc, bytes, op->arrived_ns);
	struct osd_op_reply r = { .rc = rc, .version = version, .size = size };
	osd_op_answer_crc(op->pg->o, op->conn, op->request_id, &r, data, len, crc);
}

static void op_answer(struct pg_op *op, int rc, uint64_t version, uint64_t size, void *data,
		      uint32_t len)
{
	op_answer_crc(op, rc, version, size, data, len, NULL);
}

/* Takes OP off its PG's lists after it is answered, and lets its object
 * go on. */
static void op_finish(struct pg_op *op)
{
	struct pg_obj *obj = op->obj;
	struct osd_pg *pg = op->pg;
	pg_op_free(op);
	if (obj) {
		pg_io_obj_kick(obj);
		pg_obj_maybe_free(obj);
	}
	pg_scrub_kick(pg); /* a chunk may wait for this write */
	if (!list_empty(&pg->o->pgs->syncs))
		pg_snap_sync_kick(pg->o);
}

void pg_io_reset(struct osd_pg *pg)
{
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &pg->ops) {
		struct pg_op *op = list_entry(pos, struct pg_op, pg_node);
		op_answer(op, -EAGAIN, 0, 0, NULL, 0);
		list_del(&op->pg_node);
		if (list_linked(&op->q_node))
			list_del(&op->q_node);
		op->obj = NULL;
		if (!op->local_busy)
			pg_op_free(op); /* else its store completion frees it */
	}
	pg->n_waiting = 0;
	list_init(&pg->waiting);
}

void pg_io_forget(struct osd_pg *pg)
{
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &pg->ops)
		pg_op_free(list_entry(pos, struct pg_op, pg_node));
	pg->n_waiting = 0;
	list_init(&pg->waiting);
}

/* --- reads ---------------------------------------------------------------------------- */

/* The local copy failed its checksum or the device: the read waits while
 * the copy is repaired from another member (recovery, same version),
 * then runs again — the client sees the right bytes, a little later.
 * With no good copy left, or the repaired copy failing too, -EIO. */
static bool read_repair(struct pg_op *op, uint64_t version)
{
	struct pg_obj *obj = op->obj;
	if (op->repairs++ >= 2 || pg_is_meta(&op->op.oid))
		return false;
	/* With no other copy to take, recovery says what becomes of it:
	 * unfound (the read fails) or waiting for a member that is away. */
	pg_recovery_bad_copy(obj, op->pg->o->id, version);
	op->dispatched = false;
	list_add_head(&obj->queue, &op->q_node);
	pg_io_obj_kick(obj); /* the object needs recovery now: it starts */
	return true;
}

static void read_done(struct store_req *req, int res)
{
	struct pg_op *op = req->ctx;
	op->local_busy = false;
	if (op->gen != op->pg->gen) {
		pg_op_free(op);
		return;
	}
	op->obj->reads--;
	if (res == -EBADMSG || res == -EIO) {
		free(req->buf);
		req->buf = NULL;
		if (read_repair(op, req->version))
			return;
		op_answer(op, -EIO, 0, 0, NULL, 0); /* never a wrong byte */
		op_finish(op);
		return;
	}
	void *buf = res == 0 ? req->buf : NULL;
	if (buf)
		req->buf = NULL; /* the answer's, and so are the CRCs after it */
	op_answer_crc(op, res, req->version, 0, buf, buf ? req->len : 0, buf ? req->crc_out : NULL);
	op_finish(op);
}

void pg_io_requeue(struct pg_op *op)
{
	struct pg_obj *obj = op->obj;
	if (op_reads(&op->op))
		obj->reads--;
	else
		obj->writes--;
	pg_ec_op_free(op->ec);
	op->ec = NULL;
	op->dispatched = false;
	list_add_head(&obj->queue, &op->q_node);
	pg_io_obj_kick(obj); /* it needs recovery now: that starts, and OP waits */
}

void pg_io_read_answer(struct pg_op *op, int rc, uint64_t version, void *buf)
{
	op->obj->reads--;
	op_answer(op, rc, version, 0, buf, buf ? op->op.len : 0);
	op_finish(op);
}

/* A fenced client is refused at the last moment an operation of its
 * could still be stopped: one that waited here while the map that
 * fences it arrived must not land after the client that took its place
 * has read. */
static bool refuse_fenced(struct pg_op *op)
{
	if (!map_client_fenced(monsess_map(op->pg->o->mon), op->op.client))
		return false;
	op_answer(op, -ESHUTDOWN, 0, 0, NULL, 0);
	pg_op_free(op);
	return true;
}

static void dispatch_read(struct pg_op *op)
{
	struct osd *o = op->pg->o;
	if (refuse_fenced(op))
		return;
	struct object_id oid = pg_local_oid(op->pg, &op->op.oid);
	int rc = oid.snap ? pg_snap_resolve(op->pg, &oid, &oid) : 0;
	if (rc) { /* nothing there at that snapshot (zeros), or retry */
		op_answer(op, rc, 0, 0, NULL, 0);
		pg_op_free(op);
		return;
	}
	op->obj->reads++;
	if (op->op.type == OSD_OP_STAT) {
		struct store_object_info info;
		rc = store_stat(o->store, &oid, &info);
		/* An EC object's rows are written whole: each chunk has as
		 * many units written as any other. */
		uint64_t bytes = rc ? 0 : info.written_bytes * (op->pg->ec ? op->pg->ec->k : 1);
		op_answer(op, rc, rc ? 0 : info.version, bytes, NULL, 0);
		op->obj->reads--;
		pg_op_free(op); /* the caller kicks the object */
		return;
	}
	if (op->pg->ec) {
		pg_ec_read(op, &oid);
		return;
	}
	/* The store sets the CRC of each 4 KiB read after the data, in the
	 * same allocation: the answer's frame is sealed from them. */
	void *buf = NULL;
	if (posix_memalign(&buf, 4096, op->op.len + op->op.len / CRC32C_CHUNK * sizeof(uint32_t))) {
		op->obj->reads--;
		op_answer(op, -ENOMEM, 0, 0, NULL, 0);
		pg_op_free(op);
		return;
	}
	op->req = (struct store_req){ .op = STORE_OP_READ, .oid = oid,
				      .offset = op->op.offset, .len = op->op.len, .buf = buf,
				      .crc_out = (uint32_t *)((uint8_t *)buf + op->op.len),
				      .done = read_done, .ctx = op };
	op->local_busy = true;
	store_submit(o->store, &op->req);
}

/* --- writes --------------------------------------------------------------------------- */

static void write_piece_done(struct pg_op *op)
{
	if (--op->pending)
		return;
	struct osd_pg *pg = op->pg;
	struct osd *o = pg->o;
	if (!op->answered) {
		osd_recent_add(o, op->op.client, op->op.reqid, 0, op->version);
		if (op->op.type == OSD_OP_DELETE) {
			pg_recovery_gone(op->obj); /* no member lacks it now */
			if (op->obj->unfound) {
				op->obj->unfound = false;
				op->pg->n_unfound--;
			}
		}
		op_answer(op, 0, op->version, 0, NULL, 0);
		/* An EC write is answered once every member prepared it; the
		 * object waits for its commits (pg_ec.c). */
		if (op->ec && pg_ec_commit(op))
			return;
	}
	op->obj->writes--;
	pg->writes_inflight--;
	pg_ec_write_done(op);
	op_finish(op);
	pg_log_sync_maybe(pg); /* every member may hold the same now */
}

static void write_local_done(struct store_req *req, int res)
{
	struct pg_op *op = req->ctx;
	struct osd_pg *pg = op->pg;
	op->local_busy = false;
	if (op->gen != pg->gen) {
		pg_op_free(op);
		pg_store_write_done(pg);
		return;
	}
	pg_store_write_done(pg);
	pg_io_write_local_result(op, res);
}

void pg_io_write_local_result(struct pg_op *op, int res)
{
	struct osd_pg *pg = op->pg;
	op->waiting_on &= ~1u;
	if (res == -ENOENT && op->op.type == OSD_OP_DELETE)
		res = 0; /* this copy was missing (recovery had yet to bring it) */
	if (res) {
		char why[96];
		snprintf(why, sizeof(why), "the local store refused a write: %s", strerror(-res));
		/* The other members may have applied it: peering sorts that out. */
		op_answer(op, res == -ENOSPC ? -ENOSPC : -EAGAIN, 0, 0, NULL, 0);
		pg_repeer(pg, why);
		return;
	}
	write_piece_done(op);
}

void pg_io_write_remote_done(struct pg_call *call, int rc, struct msg *reply)
{
	struct pg_op *op = call->ctx;
	struct pg_subop_reply r;
	(void)rc;
	if (pg_subop_reply_decode(reply, &r))
		r.rc = -EBADMSG;
	else
		osd_peer_full_said(call->pg->o, call->osd, r.full);
	int index = pg_acting_index(call->pg, call->osd);
	if (index >= 0)
		op->waiting_on &= ~(1u << index);
	if (r.rc) {
		char why[96];
		snprintf(why, sizeof(why), "osd.%u failed a write: %s", call->osd, strerror(-r.rc));
		if (r.rc == -ENOSPC)
			op_answer(op, -ENOSPC, 0, 0, NULL, 0);
		pg_repeer(call->pg, why);
		return;
	}
	write_piece_done(op);
}

void pg_io_write_failed(struct pg_op *op, int rc, const char *why)
{
	char text[128];
	snprintf(text, sizeof(text), "a write's chunks: %s (%s)", why, strerror(-rc));
	pg_repeer(op->pg, text); /* answers it -EAGAIN: the client resends */
}

/* Whether OP repeats a write or delete already answered (then it is
 * answered the same way). One rolled back by recovery since is not a
 * repeat: a write whose object is older now, a delete whose object is
 * there at an older version (this member applied it, the PG did not). */
static bool write_repeated(struct pg_op *op)
{
	struct osd *o = op->pg->o;
	struct osd_recent *done = osd_recent_find(o, op->op.client, op->op.reqid);
	if (!done)
		return false;
	struct store_object_info info;
	struct object_id local = pg_local_oid(op->pg, &op->op.oid);
	int rc = store_stat(o->store, &local, &info);
	if (op->op.type == OSD_OP_WRITE && (rc || info.version < done->version))
		return false;
	if (op->op.type == OSD_OP_DELETE && rc == 0 && info.version < done->version)
		return false;
	op_answer(op, done->rc, done->version, 0, NULL, 0);
	return true;
}

/* A write that would add data is refused while its pool is full (an
 * OSD past the full ratio, or the pool's quota reached) or a member of
 * this PG is full: deletes, and writes that only zero what exists
 * (FULL_TRY), go on, so space can always be freed. 0 or -ENOSPC. */
static int write_space_check(struct pg_op *op)
{
	struct osd_pg *pg = op->pg;
	struct osd *o = pg->o;
	if (op->op.type != OSD_OP_WRITE || (op->op.flags & OSD_OP_FLAG_FULL_TRY))
		return 0;
	const struct cluster_map *m = pg_map(pg);
	const struct map_pool *p = map_pool_by_id(m, pg->pool);
	char why[128] = "";
	bool full = p && map_pool_full(m, p, why, sizeof(why));
	for (uint32_t i = 0; i < pg->n_acting && !full; i++) {
		if (osd_member_full(o, pg->acting[i]) == MAP_FULL_FULL) {
			snprintf(why, sizeof(why), "osd.%u is full", pg->acting[i]);
			full = true;
		}
	}
	if (!full)
		return 0;
	LOG_DEBUG("pg %u.%x: write refused: %s", pg->pool, pg->pg, why);
	return -ENOSPC;
}

/* Dispatches a write or delete; false when OP is finished already (a
 * repeat, a delete of nothing) or the PG was reset. */
static bool dispatch_write(struct pg_op *op)
{
	struct osd_pg *pg = op->pg;
	struct osd *o = pg->o;
	bool del = op->op.type == OSD_OP_DELETE;
	if (write_repeated(op)) {
		pg_op_free(op);
		return false;
	}
	if (refuse_fenced(op))
		return false;
	if (write_space_check(op)) {
		op_answer(op, -ENOSPC, 0, 0, NULL, 0);
		pg_op_free(op);
		return false;
	}
	struct store_object_info info;
	struct object_id local = pg_local_oid(pg, &op->op.oid);
	/* Writes of one object run one at a time and only once it is
	 * recovered (pg_io_obj_kick): the primary's store says whether it
	 * exists. */
	if ((op->op.flags & OSD_OP_FLAG_CREATE) && !del &&
	    store_stat(o->store, &local, &info) == 0) {
		op_answer(op, -EEXIST, info.version, 0, NULL, 0);
		pg_op_free(op);
		return false;
	}
	if (del && !op->obj->writes && !(op->obj->need_push & 1) &&
	    store_stat(o->store, &local, &info) == -ENOENT) {
		op_answer(op, -ENOENT, 0, 0, NULL, 0);
		pg_op_free(op);
		return false;
	}
	op->obj->writes++;
	if (pg->ec) {
		pg_ec_write(op);
		return true;
	}
	uint32_t clone_snap = pg_snap_clone_for_write(pg, &op->op.oid);
	op->version = pg_version_next(pg);
	pg->writes_inflight++;
	op->pending = pg->n_acting;
	op->waiting_on = (1u << pg->n_acting) - 1;
	uint64_t gen = pg->gen;
	for (uint32_t i = 1; i < pg->n_acting; i++) {
		struct pg_subop sub = { .type = del ? PG_SUB_DELETE : PG_SUB_WRITE,
					.oid = op->op.oid, .offset = op->op.offset,
					.len = del ? 0 : op->op.len, .version = op->version,
					.client = op->op.client, .reqid = op->op.reqid,
					.clone_snap = clone_snap };
		int rc = pg_call_subop(pg, pg->acting[i], &sub, del ? NULL : op->data,
				       pg_io_write_remote_done, op, 0);
		if (rc) {
			char why[64];
			snprintf(why, sizeof(why), "cannot send a write to osd.%u", pg->acting[i]);
			pg_repeer(pg, why);
		}
		if (pg->gen != gen)
			return false;
	}
	op->req = (struct store_req){ .op = del ? STORE_OP_DELETE : STORE_OP_WRITE,
				      .oid = op->op.oid, .offset = op->op.offset,
				      .len = del ? 0 : op->op.len,
				      .buf = del ? NULL : op->data->buf,
				      .crc = del ? NULL : op->data->crc, .version = op->version,
				      .done = write_local_done, .ctx = op };
	op->local_busy = true;
	pg->store_writes++;
	pg_log_change_clone(pg, &op->op.oid, del ? 0 : op->version, clone_snap);
	pg_snap_clone_submit(o->store, clone_snap, &op->req);
	return true;
}

/* --- queues ------------------------------------------------------------------------- */

/* Whether OP may run on OBJ while some member still lacks the object:
 * a read when the primary's own copy is the authoritative one, and a
 * delete (which needs no copy anywhere: freeing space must work when the
 * copy recovery would push has nowhere to go). Everything else waits for
 * the object's recovery. */
static bool runs_unrecovered(const struct pg_obj *obj, const struct pg_op *op)
{
	if (op->op.type == OSD_OP_DELETE)
		/* ... unless the head must first become a clone, which needs
		 * the primary's copy. */
		return op->op.oid.snap || !pg_snap_volume(obj->pg->o, op->op.oid.pool,
							  op->op.oid.inode);
	/* An EC read gathers chunks from the members: they must hold them. */
	return op_reads(&op->op) && !obj->pg->ec && !((obj->need_push | obj->need_remove) & 1);
}

void pg_io_obj_kick(struct pg_obj *obj)
{
	struct osd_pg *pg = obj->pg;
	uint64_t gen = pg->gen;
	while (pg->gen == gen && !list_empty(&obj->queue)) {
		if (obj->recovering || pg->state != PG_STATE_ACTIVE)
			return;
		struct pg_op *op = list_entry(list_first(&obj->queue), struct pg_op, q_node);
		if (obj->unfound && op->op.type != OSD_OP_DELETE) {
			list_del(&op->q_node); /* no good copy of it is left */
			op_answer(op, -EIO, 0, 0, NULL, 0);
			pg_op_free(op);
			continue;
		}
		if ((obj->need_push || obj->need_remove) && !runs_unrecovered(obj, op)) {
			pg_recovery_urgent(obj);
			return;
		}
		bool reads = op_reads(&op->op);
		if (obj->writes > 0 || (!reads && obj->reads > 0))
			return;
		if (!reads && pg_scrub_blocks(pg, &obj->oid))
			return; /* the scrub of its chunk lets it go when done */
		list_del(&op->q_node);
		op->dispatched = true;
		if (reads)
			dispatch_read(op);
		else
			dispatch_write(op);
	}
}

void pg_io_obj_fail(struct pg_obj *obj, int rc)
{
	while (!list_empty(&obj->queue)) {
		struct pg_op *op = list_entry(list_first(&obj->queue), struct pg_op, q_node);
		op_answer(op, rc, 0, 0, NULL, 0);
		pg_op_free(op);
	}
	pg_obj_maybe_free(obj);
}

void pg_io_obj_fail_writes(struct pg_obj *obj, int rc)
{
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &obj->queue) {
		struct pg_op *op = list_entry(pos, struct pg_op, q_node);
		if (op->op.type != OSD_OP_WRITE)
			continue;
		op_answer(op, rc, 0, 0, NULL, 0);
		pg_op_free(op);
	}
	pg_obj_maybe_free(obj);
}

static void op_enqueue(struct pg_op *op)
{
	/* A read of a snapshot queues on the head: a write there may be
	 * making the clone that read is to be served from. */
	struct object_id key = op->op.type == OSD_OP_DELETE ? op->op.oid : object_head(&op->op.oid);
	struct pg_obj *obj = pg_obj_get(op->pg, &key, true);
	if (!obj) {
		op_answer(op, -ENOMEM, 0, 0, NULL, 0);
		pg_op_free(op);
		return;
	}
	struct osd_pg *pg = op->pg;
	uint64_t gen = op->gen;
	op->obj = obj;
	list_add_tail(&obj->queue, &op->q_node);
	pg_io_obj_kick(obj); /* may finish and free OP */
	if (pg->gen == gen)
		pg_obj_maybe_free(obj);
}

void pg_io_dispatch_waiting(struct osd_pg *pg)
{
	uint64_t gen = pg->gen;
	while (!list_empty(&pg->waiting) && pg->gen == gen) {
		struct pg_op *op = list_entry(list_first(&pg->waiting), struct pg_op, q_node);
		list_del(&op->q_node);
		pg->n_waiting--;
		op_enqueue(op);
	}
}

static bool op_in_flight(struct osd_pg *pg, const struct osd_op *op)
{
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &pg->ops) {
		struct pg_op *x = list_entry(pos, struct pg_op, pg_node);
		if (x->op.client == op->client && x->op.reqid == op->reqid)
			return true;
	}
	return false;
}

void osd_pg_client_op(struct osd *o, struct msgr_conn *conn, uint64_t request_id,
		      const struct osd_op *op, void *data, const uint32_t *crc)
{
	const struct map_pool *p = map_pool_by_id(monsess_map(o->mon), op->oid.pool);
	struct osd_pg *pg = p ? pg_get(o, p->id, object_pg(&op->oid, p->pg_num), false) : NULL;
	struct osd_op_reply r = { .rc = -EAGAIN };
	/* Held while the PG gets ready; refused while it needs a map change
	 * (below min_size, incomplete; a read-only PG's writes): the client
	 * retries. */
	if (!pg || pg->state == PG_STATE_IDLE || pg->state == PG_STATE_UNDERSIZED ||
	    pg->state == PG_STATE_INCOMPLETE || (pg->read_only && !op_reads(op))) {
		free(data);
		osd_metrics_op_untimed(o, op->type - 1, r.rc);
		osd_op_answer(o, conn, request_id, &r, NULL, 0);
		return;
	}
	if (op->client && op_in_flight(pg, op)) {
		free(data); /* a resend of one in flight: its answer serves */
		return;
	}
	struct pg_op *x = calloc(1, sizeof(*x));
	struct pg_data *d = data ? pg_data_wrap(data, op->len, crc) : NULL;
	if (!x || (data && !d)) {
		free(x);
		free(d);
		free(data);
		r.rc = -ENOMEM;
		osd_metrics_op_untimed(o, op->type - 1, r.rc);
		osd_op_answer(o, conn, request_id, &r, NULL, 0);
		return;
	}
	x->pg = pg;
	x->gen = pg->gen;
	o->pgs->client_ops++;
	/* Its age counts from the client's first attempt: a PG that peers
	 * again answers what waits with EAGAIN, and the resend is the same
	 * operation, still waiting. */
	uint64_t now = io_now_ns(o->loop), age = (uint64_t)op->age_ms * 1000000;
	x->start_ns = now > age ? now - age : 0;
	x->arrived_ns = now;
	x->conn = conn;
	x->request_id = request_id;
	x->op = *op;
	x->data = d;
	list_init(&x->q_node);
	list_add_tail(&pg->ops, &x->pg_node);
	if (pg->state == PG_STATE_ACTIVE) {
		op_enqueue(x);
		return;
	}
	if (pg->n_waiting >= PG_WAITING_MAX) {
		op_answer(x, -EAGAIN, 0, 0, NULL, 0);
		pg_op_free(x);
		return;
	}
	pg->n_waiting++;
	list_add_tail(&pg->waiting, &x->q_node);
}

/* --- slow operations ------------------------------------------------------------------- */

static const char *const pg_state_names[] = {
	[PG_STATE_IDLE] = "idle",		[PG_STATE_PEERING] = "peering",
	[PG_STATE_INCOMPLETE] = "incomplete",	[PG_STATE_UNDERSIZED] = "undersized",
	[PG_STATE_RECOVERING] = "recovering",	[PG_STATE_ACTIVATING] = "activating",
	[PG_STATE_ACTIVE] = "active",
};

/* What OP waits for, in a few words. */
static void slow_what(const struct pg_op *op, char *buf, size_t len)
{
	const struct osd_pg *pg = op->pg;
	char id[64];
	object_id_str(&op->op.oid, id, sizeof(id));
	if (!op->dispatched && pg->state != PG_STATE_ACTIVE) {
		size_t at = (size_t)snprintf(buf, len, "pg %u.%x to become active (it is %s", pg->pool,
					     pg->pg, pg_state_names[pg->state]);
		bool first = true;
		for (uint32_t i = 0; pg->state == PG_STATE_PEERING && i < pg->n_peers && at < len;
		     i++) {
			if (pg->peers[i].replied)
				continue;
			at += (size_t)snprintf(buf + at, len - at, "%sosd.%u", first ? ": no answer from "
										  : ", ",
					       pg->peers[i].osd);
			first = false;
		}
		if (at < len)
			snprintf(buf + at, len - at, ")");
		return;
	}
	if (!op->dispatched) {
		snprintf(buf, len, "%s of object %s", op->obj && op->obj->recovering
							? "recovery"
							: "an earlier operation",
			 id);
		return;
	}
	size_t at = (size_t)snprintf(buf, len, "object %s: ", id);
	bool first = true;
	for (uint32_t i = 0; i < pg->n_acting && at < len; i++) {
		if (!(op->waiting_on & (1u << i)))
			continue;
		at += (size_t)snprintf(buf + at, len - at, "%s%s%u", first ? "" : ", ",
				       i ? "osd." : "the local store of osd.", pg->acting[i]);
		first = false;
	}
	if (first && at < len)
		snprintf(buf + at, len - at, "the local store");
}

struct slow_scan {
	uint64_t now_ns, complaint_ns;
	struct mon_osd_usage *u;
	const struct pg_op *oldest;
};

static void slow_scan_pg(struct osd_pg *pg, void *arg)
{
	struct slow_scan *sc = arg;
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &pg->ops) {
		struct pg_op *op = list_entry(pos, struct pg_op, pg_node);
		if (op->answered || sc->now_ns - op->start_ns < sc->complaint_ns)
			continue;
		sc->u->slow_ops++;
		if (!sc->oldest || op->start_ns < sc->oldest->start_ns)
			sc->oldest = op;
		if (!op->slow_logged) {
			char what[MON_SLOW_WHAT_MAX];
			slow_what(op, what, sizeof(what));
			unsigned long long age_s = (sc->now_ns - op->start_ns) / 1000000000ull;
			bool read = op_reads(&op->op);
			LOG_WARN("slow operation: a %s from client %016" PRIx64
				 " is %llu s old, waiting for %s",
				 read ? "read" : "write", op->op.client, age_s, what);
			op->slow_logged = true;
		}
	}
}

void osd_pg_slow_ops(struct osd *o, uint64_t now_ns, struct mon_osd_usage *u)
{
	struct slow_scan sc = { now_ns, o->complaint_ns, u, NULL };
	u->slow_ops = 0;
	u->slow_oldest_ms = 0;
	u->slow_what[0] = 0;
	if (!o->pgs || !o->complaint_ns)
		return;
	pg_for_each(o, slow_scan_pg, &sc);
	if (sc.oldest) {
		u->slow_oldest_ms = (now_ns - sc.oldest->start_ns) / 1000000;
		slow_what(sc.oldest, u->slow_what, sizeof(u->slow_what));
	}
}
