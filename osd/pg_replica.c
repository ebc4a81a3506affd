/* The member's side of a PG (pg_int.h): answering the primary's query,
 * which fences older intervals (invariant 4), and applying its sub-
 * operations to the store. The primary answers its own query here too,
 * through the same path without the network. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "pg_int.h"

/* A query waiting until the PG's writes in flight have finished. */
struct deferred_query {
	struct list_node node; /* pg->deferred */
	struct msgr_conn *conn; /* NULL: the local primary, or the asker left */
	bool local;
	uint64_t gen; /* local: the primary's gen when asked */
	uint64_t request_id;
	struct pg_query q; /* its entries (STAT) in ENTRIES */
	uint8_t *entries;
};

/* A sub-operation being applied to the store. */
struct replica_op {
	struct store_req req;
	struct list_node node; /* pgs->replica_ops */
	struct osd_pg *pg;
	struct msgr_conn *conn;
	uint64_t request_id;
	struct pg_subop sub;
	bool counted; /* in pg->store_writes */
	uint64_t arrived_ns;
	struct pg_ec_apply apply; /* a write or delete of a shard (pg_ec.c) */
	uint32_t crc[]; /* a write's chunk CRCs from the messenger (req.crc) */
};

struct purge_op {
	struct store_req req;
	struct list_node node; /* pgs->purges */
	struct osd_pg *pg;
};

static void send_reply(struct msgr_conn *conn, struct msg *msg)
{
	if (!msg)
		return;
	if (!conn || msgr_send(conn, msg))
		msg_free(msg);
}

void pg_replica_detach(struct osd *o)
{
	struct osd_pgs *t = o->pgs;
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &t->replica_ops)
		list_entry(pos, struct replica_op, node)->conn = NULL;
	for (uint32_t i = 0; i <= t->bucket_mask; i++)
		for (struct osd_pg *pg = t->buckets[i]; pg; pg = pg->hash_next)
			list_for_each_safe(pos, tmp, &pg->deferred)
				list_entry(pos, struct deferred_query, node)->conn = NULL;
	pg_scrub_detach(o);
}

void pg_replica_forget(struct osd *o)
{
	struct list_node *pos, *tmp;
	pg_scrub_forget(o);
	list_for_each_safe(pos, tmp, &o->pgs->purges) {
		struct purge_op *po = list_entry(pos, struct purge_op, node);
		list_del(&po->node);
		free(po);
	}
	list_for_each_safe(pos, tmp, &o->pgs->replica_ops) {
		struct replica_op *r = list_entry(pos, struct replica_op, node);
		list_del(&r->node);
		free(r->req.buf); /* data, the read's buffer, or the mark's page */
		free(r->apply.scratch);
		free(r);
	}
	pg_replica_fini(o);
}

/* A refusal (RC) of query Q: in Q's mode, so the primary's phase takes it. */
static void info_reply(struct msgr_conn *conn, uint64_t request_id, int rc,
		       const struct osd_pg *pg, const struct pg_query *q, uint32_t from)
{
	struct pg_info info = { .rc = rc, .pool = q->pool, .pg = q->pg, .epoch = q->epoch,
				.from = from, .mode = q->mode };
	if (pg)
		info.full = (uint8_t)osd_full_state(pg->o);
	send_reply(conn, pg_info_encode(request_id, &info));
}

struct list_ctx {
	uint32_t pg_num, pg;
	uint8_t *buf;
	size_t count, cap;
	int rc; /* a log entry that could not be added (info_log fails) */
};

static int memcmp_entry(const void *a, const void *b)
{
	return memcmp(a, b, PG_INFO_ENTRY_LEN);
}

static int list_entry_cb(const struct store_object_info *info, void *arg)
{
	struct list_ctx *l = arg;
	if (pg_is_meta(&info->oid))
		return 0;
	if (l->count == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		uint8_t *b = realloc(l->buf, cap * PG_INFO_ENTRY_LEN);
		if (!b)
			return -ENOMEM;
		l->buf = b;
		l->cap = cap;
	}
	pg_info_entry_put(l->buf + l->count * PG_INFO_ENTRY_LEN, &info->oid, info->version);
	l->count++;
	return 0;
}

static void log_entry_cb(const struct object_id *oid, void *arg)
{
	struct store_object_info info = { .oid = *oid, .version = 0 };
	struct list_ctx *l = arg;
	int rc = list_entry_cb(&info, arg);
	if (rc)
		l->rc = rc; /* a name left out could hide a difference: no answer */
}

/* LOG: every object the log names after the marker (sorted, once each). */
static int info_log(struct osd_pg *pg, const struct pg_query *q, struct list_ctx *l,
		    struct pg_info *info)
{
	if (pg_log_after(pg, &q->marker, log_entry_cb, l))
		return 0; /* the marker is gone: log_ok stays 0 */
	if (l->rc)
		return l->rc;
	size_t size = PG_INFO_ENTRY_LEN;
	/* Entries sort by their encoded object id (the first bytes). */
	if (l->count)
		qsort(l->buf, l->count, size, memcmp_entry);
	size_t k = 0;
	for (size_t i = 0; i < l->count; i++)
		if (!k || memcmp(l->buf + (k - 1) * size, l->buf + i * size, size))
			memmove(l->buf + k++ * size, l->buf + i * size, size);
	l->count = k;
	info->log_ok = 1;
	return 0;
}

/* STAT: the version of each object listed that the store holds. */
static int info_stat(struct osd_pg *pg, const struct pg_query *q, struct list_ctx *l)
{
	struct pg_info in = { .count = q->count, .entries = q->entries };
	for (uint32_t i = 0; i < q->count; i++) {
		struct store_object_info info;
		struct object_id oid;
		uint64_t v;
		pg_info_entry(&in, i, &oid, &v);
		if (pg_is_meta(&oid) || store_stat(pg->o->store, &oid, &info))
			continue;
		info.oid = oid;
		int rc = list_entry_cb(&info, l);
		if (rc)
			return rc;
	}
	return 0;
}

/* The PG_INFO answer to Q: what the store or the log holds of PG. */
static struct msg *info_build(struct osd_pg *pg, uint64_t request_id, const struct pg_query *q)
{
	const struct map_pool *p = map_pool_by_id(pg_map(pg), pg->pool);
	struct list_ctx l = { p ? p->pg_num : 1, pg->pg, NULL, 0, 0, 0 };
	struct store_list_filter f = { .pool = pg->pool, .any_inode = true, .pg_num = l.pg_num,
				       .pg = pg->pg };
	struct pg_info info = { .pool = pg->pool, .pg = pg->pg, .epoch = q->epoch,
				.from = pg->o->id, .complete_epoch = pg->complete_epoch,
				.full = (uint8_t)osd_full_state(pg->o), .mode = q->mode };
	if (!p)
		info.rc = -ESTALE; /* the pool is gone from our map, or not there yet */
	else if (q->mode == PG_QUERY_SUMMARY)
		info.n_markers = (uint8_t)pg_log_markers(pg, info.markers, PG_INFO_MARKERS_MAX);
	else if (q->mode == PG_QUERY_LOG)
		info.rc = info_log(pg, q, &l, &info);
	else if (q->mode == PG_QUERY_STAT)
		info.rc = info_stat(pg, q, &l);
	else
		info.rc = store_list(pg->o->store, &f, list_entry_cb, &l);
	if (info.rc == 0) {
		info.count = (uint32_t)l.count;
		info.entries = l.buf;
	}
	struct msg *msg = pg_info_encode(request_id, &info);
	free(l.buf);
	return msg;
}

static void answer_deferred(struct osd_pg *pg);
static void pg_replica_fini_one(struct osd_pg *pg);

static void meta_read_done(struct store_req *req, int res)
{
	struct osd_pg *pg = req->ctx;
	uint64_t epoch = 0;
	if (res == 0)
		epoch = pg_meta_decode(pg, req->buf, req->len);
	else if (res != -ENOENT)
		LOG_ERROR("pg %u.%x: cannot read its complete mark (%s); treating it as absent",
			pg->pool, pg->pg, strerror(-res));
	LOG_DEBUG("osd.%u pg %u.%x: complete mark read: %" PRIu64 " (%d)", pg->o->id, pg->pool,
		  pg->pg, epoch, res);
	if (pg->complete_epoch == UINT64_MAX - 1)
		pg->complete_epoch = epoch;
	free(req->buf);
	req->buf = NULL;
	answer_deferred(pg);
}

/* Starts reading the complete mark if it is not known; true when known. */
static bool complete_epoch_known(struct osd_pg *pg)
{
	if (!pg_log_ready(pg))
		return false; /* the log a clean stop left goes first (pg_log.c) */
	if (pg->complete_epoch < UINT64_MAX - 1)
		return true;
	if (pg->complete_epoch == UINT64_MAX - 1)
		return false; /* being read */
	void *buf = NULL;
	if (posix_memalign(&buf, 4096, 4096)) {
		pg->complete_epoch = 0;
		return true;
	}
	pg->meta_read = (struct store_req){ .op = STORE_OP_READ,
					    .oid = pg_meta_oid(pg->pool, pg->pg), .len = 4096,
					    .buf = buf, .done = meta_read_done, .ctx = pg };
	pg->complete_epoch = UINT64_MAX - 1;
	store_submit(pg->o->store, &pg->meta_read);
	return false;
}

static void answer_deferred(struct osd_pg *pg)
{
	if (pg->o->stopping) { /* nobody to answer, and no map left to answer from */
		pg_replica_fini_one(pg);
		return;
	}
	if (pg->store_writes || !complete_epoch_known(pg))
		return;
	while (!list_empty(&pg->deferred)) {
		struct deferred_query *q =
			list_entry(list_first(&pg->deferred), struct deferred_query, node);
		list_del(&q->node);
		bool stale = q->q.epoch != pg->fence_epoch;
		if (q->local) {
			if (q->gen == pg->gen && !stale && pg->state == PG_STATE_PEERING) {
				struct msg *m = info_build(pg, 0, &q->q);
				if (m)
					pg_peering_info(pg, pg->o->id, m);
			}
		} else if (stale) {
			info_reply(q->conn, q->request_id, -ESTALE, pg, &q->q, pg->o->id);
		} else {
			send_reply(q->conn, info_build(pg, q->request_id, &q->q));
		}
		free(q->entries);
		free(q);
	}
}

void pg_replica_log_ready(struct osd_pg *pg)
{
	answer_deferred(pg);
}

void pg_store_write_done(struct osd_pg *pg)
{
	if (pg->store_writes)
		pg->store_writes--;
	if (!pg->store_writes && !list_empty(&pg->deferred))
		answer_deferred(pg);
}

/* Fences interval EPOCH of primary FROM on PG; -ESTALE when a newer one
 * already is (invariant 4). */
static int fence(struct osd_pg *pg, uint64_t epoch, uint32_t from)
{
	const struct cluster_map *m = pg_map(pg);
	const struct map_osd *me = pg->o->id < m->n_osds ? &m->osds[pg->o->id] : NULL;
	if (epoch < pg->fence_epoch || (me && epoch < me->up_from))
		return -ESTALE;
	if (epoch == pg->fence_epoch && from != pg->fence_primary)
		return -ESTALE;
	pg->fence_epoch = epoch;
	pg->fence_primary = from;
	return 0;
}

static int defer_query(struct osd_pg *pg, struct msgr_conn *conn, uint64_t request_id,
		       const struct pg_query *query, bool local)
{
	struct deferred_query *q = calloc(1, sizeof(*q));
	size_t len = (size_t)query->count * PG_INFO_ENTRY_LEN;
	if (!q || (len && !(q->entries = malloc(len)))) {
		free(q);
		return -ENOMEM;
	}
	q->conn = conn;
	q->local = local;
	q->gen = pg->gen;
	q->request_id = request_id;
	q->q = *query;
	if (len)
		memcpy(q->entries, query->entries, len);
	q->q.entries = q->entries;
	list_add_tail(&pg->deferred, &q->node);
	answer_deferred(pg);
	return 0;
}

void pg_local_query(struct osd_pg *pg, const struct pg_query *q)
{
	if (fence(pg, pg->interval, pg->o->id)) {
		LOG_WARN("pg %u.%x: this OSD answered a newer interval than %" PRIu64, pg->pool,
			 pg->pg, pg->interval);
		return; /* the map will catch up and start a newer interval */
	}
	pg->fence_round = q->round;
	if (defer_query(pg, NULL, 0, q, true))
		pg_repeer(pg, "out of memory");
}

void pg_replica_query(struct osd *o, struct msgr_conn *conn, struct msg *msg)
{
	struct pg_query q;
	if (pg_query_decode(msg, &q)) {
		LOG_WARN("malformed PG query from %s", msgr_conn_peer_addr(conn));
		msg_free(msg);
		return;
	}
	uint64_t rid = msg->hdr.request_id;
	struct osd_pg *pg = osd_serving(o) ? pg_get(o, q.pool, q.pg, true) : NULL;
	if (!pg) {
		msg_free(msg);
		info_reply(conn, rid, -EAGAIN, NULL, &q, o->id);
		return;
	}
	int rc = fence(pg, q.epoch, q.from);
	if (!rc) {
		pg->fence_round = q.round;
		pg->purging = false; /* a primary counts on what we hold */
	}
	/* (q's entries are the message's: copied before it goes) */
	if (rc || defer_query(pg, conn, rid, &q, false))
		info_reply(conn, rid, rc ? rc : -EAGAIN, pg, &q, o->id);
	msg_free(msg);
}

/* --- sub-operations ---------------------------------------------------------------- */

/* pg_replica_answer, with CRC (NULL, or the CRC32C of each 4 KiB of DATA,
 * living as long as DATA): the reply's frame is sealed from them. */
static void replica_answer_crc(struct osd *o, struct msgr_conn *conn, uint64_t request_id,
			       int rc, uint64_t version, const uint8_t *written, void *data,
			       uint32_t len, const uint32_t *crc)
{
	if (!conn) { /* the asker is gone (or this OSD stops: no map to read) */
		free(data);
		return;
	}
	struct pg_subop_reply r = { rc, version, { 0 }, (uint8_t)osd_full_state(o) };
	if (written)
		memcpy(r.written, written, sizeof(r.written));
	struct msg *m = pg_subop_reply_encode(request_id, &r);
	if (m && data) { /* the reply owns the buffer from here */
		m->data = data;
		m->hdr.data_len = len;
		if (crc && len)
			msg_set_chunk_crcs(m, crc);
	} else {
		free(data);
	}
	send_reply(conn, m);
}

void pg_replica_answer(struct osd *o, struct msgr_conn *conn, uint64_t request_id, int rc,
		       uint64_t version, const uint8_t *written, void *data, uint32_t len)
{
	replica_answer_crc(o, conn, request_id, rc, version, written, data, len, NULL);
}

static void replica_op_done(struct store_req *req, int res)
{
	struct replica_op *r = req->ctx;
	struct osd_pg *pg = r->pg;
	struct osd *o = pg->o;
	list_del(&r->node);
	if ((r->sub.type == PG_SUB_REMOVE || r->sub.type == PG_SUB_DELETE) && res == -ENOENT)
		res = 0; /* gone already: what was asked */
	osd_metrics_op_answered(o, OSD_METRICS_REPLICA + r->sub.type - 1, res, r->sub.len,
				r->arrived_ns);
	if ((r->sub.type == PG_SUB_WRITE || r->sub.type == PG_SUB_DELETE) && r->sub.client &&
	    res == 0)
		osd_recent_add(o, r->sub.client, r->sub.reqid, 0, req->version);
	if (r->sub.type == PG_SUB_CHUNK_READ && res == 0) {
		replica_answer_crc(o, r->conn, r->request_id, 0, req->version, NULL, req->buf,
				   req->len, req->crc_out);
		req->buf = NULL; /* the reply's, and so are the CRCs after it */
	} else if (r->sub.type == PG_SUB_READ && res == 0) {
		/* Only the chunks ever written go back (pg_chunks_pack), with
		 * their CRCs (the store's, after the data). */
		uint32_t len = pg_chunks_pack(req->buf, req->buf, req->len, req->written,
					      req->crc_out, req->crc_out);
		if (!len) {
			free(req->buf);
			req->buf = NULL;
		}
		replica_answer_crc(o, r->conn, r->request_id, 0, req->version, req->written, req->buf,
				   len, req->crc_out);
		req->buf = NULL; /* the reply's, and so are the CRCs after it */
	} else {
		pg_replica_answer(o, r->conn, r->request_id, res, req->version, NULL, NULL, 0);
	}
	if (res && res != -ENOENT)
		LOG_WARN("pg %u.%x: sub-operation %u failed: %s", pg->pool, pg->pg, r->sub.type,
			 strerror(-res));
	free(req->buf);
	bool counted = r->counted;
	free(r);
	if (counted)
		pg_store_write_done(pg);
}

/* A shard's pending write, its commit, or its delete (pg_ec.c). */
static void replica_ec_done(struct pg_ec_apply *a, int res)
{
	struct replica_op *r = a->ctx;
	struct osd *o = r->pg->o;
	list_del(&r->node);
	if (r->sub.type == PG_SUB_DELETE && res == -ENOENT)
		res = 0;
	osd_metrics_op_answered(o, OSD_METRICS_REPLICA + r->sub.type - 1, res, r->sub.len,
				r->arrived_ns);
	if (r->sub.type != PG_SUB_CHUNK_COMMIT && r->sub.client && res == 0)
		osd_recent_add(o, r->sub.client, r->sub.reqid, 0, r->sub.version);
	pg_replica_answer(o, r->conn, r->request_id, res, r->sub.version, NULL, NULL, 0);
	if (res)
		LOG_WARN("pg %u.%x: a chunk's write failed: %s", r->pg->pool, r->pg->pg,
			 strerror(-res));
	free(r->req.buf);
	free(r);
}

static void replica_ec_start(struct replica_op *r)
{
	enum pg_ec_kind kind = r->sub.type == PG_SUB_DELETE	   ? PG_EC_DELETE
			       : r->sub.type == PG_SUB_CHUNK_COMMIT ? PG_EC_COMMIT
								    : PG_EC_PREPARE;
	r->apply = (struct pg_ec_apply){ .pg = r->pg, .kind = kind, .shard = r->sub.oid,
					 .offset = r->sub.offset, .len = r->sub.len,
					 .buf = r->req.buf, .version = r->sub.version,
					 .clone_snap = r->sub.clone_snap, .done = replica_ec_done,
					 .ctx = r };
	pg_ec_apply_start(&r->apply);
}

void pg_replica_subop(struct osd *o, struct msgr_conn *conn, struct msg *msg)
{
	struct pg_subop sub;
	uint64_t rid = msg->hdr.request_id;
	if (pg_subop_decode(msg, &sub)) {
		LOG_WARN("malformed sub-operation from %s", msgr_conn_peer_addr(conn));
		msg_free(msg);
		return;
	}
	unsigned kind = OSD_METRICS_REPLICA + sub.type - 1; /* decode checked it */
	osd_metrics_op_received(o, kind);
	struct osd_pg *pg = osd_serving(o) ? pg_get(o, sub.pool, sub.pg, false) : NULL;
	if (!pg || sub.epoch != pg->fence_epoch || sub.from != pg->fence_primary) {
		osd_metrics_op_untimed(o, kind, -ESTALE);
		msg_free(msg);
		pg_replica_answer(o, conn, rid, -ESTALE, 0, NULL, NULL, 0);
		return;
	}
	/* A write's data comes with the CRC of each 4 KiB (msg_chunk_crcs):
	 * the store records those instead of reading the data again. A push
	 * of written chunks gets the block's CRCs as it is unpacked. */
	uint32_t bs = store_block_size(o->store);
	const uint32_t *crc = (sub.type == PG_SUB_WRITE || sub.type == PG_SUB_PUSH) &&
					      sub.len == msg->hdr.data_len ?
				      msg_chunk_crcs(msg) : NULL;
	size_t crc_bytes = sub.type == PG_SUB_PUSH ? bs / 4096 * sizeof(*crc)
			   : crc		   ? sub.len / 4096 * sizeof(*crc)
						   : 0;
	struct replica_op *r = calloc(1, sizeof(*r) + crc_bytes);
	if (!r) {
		msg_free(msg);
		pg_replica_answer(o, conn, rid, -ENOMEM, 0, NULL, NULL, 0);
		return;
	}
	r->pg = pg;
	r->conn = conn;
	r->request_id = rid;
	r->sub = sub;
	r->arrived_ns = io_now_ns(o->loop);
	r->req.oid = sub.oid;
	r->req.version = sub.version;
	r->req.done = replica_op_done;
	r->req.ctx = r;
	int rc = 0;
	switch (sub.type) {
	case PG_SUB_WRITE:
		r->req.op = STORE_OP_WRITE;
		r->req.offset = sub.offset;
		r->req.len = sub.len;
		if (crc) {
			memcpy(r->crc, crc, crc_bytes);
			r->req.crc = r->crc;
		}
		r->req.buf = msg->data; /* 4 KiB aligned; now ours */
		msg->data = NULL;
		break;
	case PG_SUB_PUSH: /* the object's written chunks (or the whole block) */
		if (sub.offset ||
		    (sub.len != bs && sub.len != pg_chunks_packed_len(sub.written, bs))) {
			rc = -EINVAL;
			break;
		}
		r->req.op = STORE_OP_WRITE;
		r->req.len = bs;
		r->req.masked = true; /* a copy keeps the object's shape */
		r->req.repair = true; /* it may replace a bad copy of this version */
		memcpy(r->req.written, sub.written, sizeof(r->req.written));
		if (sub.len == bs) {
			if (crc) {
				memcpy(r->crc, crc, crc_bytes);
				r->req.crc = r->crc;
			}
			r->req.buf = msg->data; /* 4 KiB aligned; now ours */
			msg->data = NULL;
		} else if (posix_memalign(&r->req.buf, 4096, bs)) {
			r->req.buf = NULL;
			rc = -ENOMEM;
		} else if (pg_chunks_unpack(msg->data, sub.len, sub.written, bs, r->req.buf, crc,
					    r->crc) == 1) {
			r->req.crc = r->crc;
		}
		break;
	case PG_SUB_DELETE:
		r->req.op = STORE_OP_DELETE;
		break;
	case PG_SUB_REMOVE:
		r->req.op = STORE_OP_DELETE;
		r->req.version = 0;
		break;
	case PG_SUB_CHUNK_READ:
		r->req.op = STORE_OP_READ;
		r->req.offset = sub.offset;
		r->req.len = sub.len;
		if (posix_memalign(&r->req.buf, 4096, sub.len + sub.len / 4096 * sizeof(uint32_t)))
			rc = -ENOMEM;
		else
			r->req.crc_out = (uint32_t *)((uint8_t *)r->req.buf + sub.len);
		break;
	case PG_SUB_READ:
		r->req.op = STORE_OP_READ;
		r->req.len = bs;
		/* The store sets the CRC of each 4 KiB read after the data:
		 * the reply's frame is sealed from them. */
		if (posix_memalign(&r->req.buf, 4096, bs + bs / 4096 * sizeof(uint32_t)))
			rc = -ENOMEM;
		else
			r->req.crc_out = (uint32_t *)((uint8_t *)r->req.buf + bs);
		break;
	case PG_SUB_COMPLETE:
	case PG_SUB_SCRUB:
	case PG_SUB_SYNC:
	case PG_SUB_CHUNK_COMMIT:
		break;
	}
	msg_free(msg);
	if (rc) {
		free(r);
		osd_metrics_op_untimed(o, kind, rc);
		pg_replica_answer(o, conn, rid, rc, 0, NULL, NULL, 0);
		return;
	}
	if (sub.type == PG_SUB_SCRUB) {
		free(r);
		pg_scrub_subop(pg, conn, rid, &sub);
		return;
	}
	if (sub.type == PG_SUB_SYNC) {
		/* Only from the round whose query we answered last: every write
		 * of it was applied here before this arrived (pg_log.c). */
		free(r);
		rc = sub.reqid == pg->fence_round ? 0 : -ESTALE;
		int me = pg_acting_index(pg, o->id);
		uint8_t chunk = (uint8_t)(pg->ec && me >= 0 ? pg->shard[me] + 1 : 0);
		if (!rc)
			pg_log_marker(pg, &(struct pg_marker){ sub.from, sub.epoch, sub.version, chunk });
		osd_metrics_op_untimed(o, kind, rc);
		pg_replica_answer(o, conn, rid, rc, 0, NULL, NULL, 0);
		return;
	}
	list_add_tail(&o->pgs->replica_ops, &r->node);
	if (sub.type == PG_SUB_COMPLETE) {
		r->counted = true;
		if (pg_mark_write(pg, sub.epoch, replica_op_done, r, &r->req)) {
			list_del(&r->node);
			free(r);
			pg->store_writes--;
			pg_replica_answer(o, conn, rid, -ENOMEM, 0, NULL, NULL, 0);
		}
		return;
	}
	if ((sub.type == PG_SUB_WRITE || sub.type == PG_SUB_DELETE ||
	     sub.type == PG_SUB_CHUNK_COMMIT) && sub.oid.shard) {
		replica_ec_start(r);
		return;
	}
	if (sub.type != PG_SUB_READ && sub.type != PG_SUB_CHUNK_READ) {
		r->counted = true;
		pg->store_writes++;
	}
	bool head_write = sub.type == PG_SUB_WRITE || sub.type == PG_SUB_DELETE;
	if (sub.type != PG_SUB_READ && sub.type != PG_SUB_CHUNK_READ)
		pg_log_change_clone(pg, &sub.oid, r->req.op == STORE_OP_DELETE ? 0 : sub.version,
				    head_write ? sub.clone_snap : 0);
	pg_snap_clone_submit(o->store, head_write ? sub.clone_snap : 0, &r->req);
}

void pg_replica_conn_closed(struct osd *o, struct msgr_conn *conn)
{
	struct osd_pgs *t = o->pgs;
	pg_scrub_conn_closed(o, conn);
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &t->replica_ops) {
		struct replica_op *r = list_entry(pos, struct replica_op, node);
		if (r->conn == conn)
			r->conn = NULL;
	}
	for (uint32_t i = 0; i <= t->bucket_mask; i++)
		for (struct osd_pg *pg = t->buckets[i]; pg; pg = pg->hash_next)
			list_for_each_safe(pos, tmp, &pg->deferred) {
				struct deferred_query *q =
					list_entry(pos, struct deferred_query, node);
				if (q->conn == conn)
					q->conn = NULL;
			}
}

static void pg_replica_fini_one(struct osd_pg *pg)
{
	while (!list_empty(&pg->deferred)) {
		struct list_node *n = list_first(&pg->deferred);
		struct deferred_query *q = list_entry(n, struct deferred_query, node);
		list_del(n);
		free(q->entries);
		free(q);
	}
}

void pg_replica_fini(struct osd *o)
{
	struct osd_pgs *t = o->pgs;
	for (uint32_t i = 0; t->buckets && i <= t->bucket_mask; i++)
		for (struct osd_pg *pg = t->buckets[i]; pg; pg = pg->hash_next)
			pg_replica_fini_one(pg);
}

/* --- stray copies ---------------------------------------------------------------------- */

/* A PG's copy on this OSD is a *stray* when the OSD is not in the PG's
 * acting set, not named in its activation record, its complete mark is
 * older than that record, and no primary of a later interval (or of one
 * its map has not seen) has queried it. Such a copy can never be authoritative again (a record naming this
 * OSD would have needed a newer mark from it), so it is deleted: space
 * comes back once data has moved elsewhere (an OSD out, another added).
 * A query from a primary stops it at once: this OSD's map may be behind,
 * and the primary counts on what the OSD answered it holds. */

#define PURGE_BATCH 64


static void purge_next(struct osd_pg *pg);

static void purge_done(struct store_req *req, int res)
{
	struct purge_op *po = req->ctx;
	struct osd_pg *pg = po->pg;
	(void)res;
	list_del(&po->node);
	free(po);
	pg->purge_inflight--;
	pg->o->pgs->strays_removed++;
	pg_store_write_done(pg);
	if (!pg->purge_inflight)
		purge_next(pg);
}

struct purge_list {
	struct object_id oids[PURGE_BATCH];
	unsigned n;
};

static int purge_collect(const struct store_object_info *info, void *arg)
{
	struct purge_list *l = arg;
	if (pg_is_meta(&info->oid))
		return 0;
	l->oids[l->n++] = info->oid;
	return l->n == PURGE_BATCH;
}

static void purge_next(struct osd_pg *pg)
{
	struct osd *o = pg->o;
	if (!pg->purging || o->forgetting || o->stopping)
		return;
	const struct map_pool *p = map_pool_by_id(pg_map(pg), pg->pool);
	if (!p || pg->fence_epoch != pg->purge_fence || pg_acting_index(pg, o->id) >= 0) {
		pg->purging = false; /* a primary wants it again: it is not a stray */
		return;
	}
	struct purge_list l = { .n = 0 };
	struct store_list_filter f = { .pool = pg->pool, .any_inode = true, .pg_num = p->pg_num,
				       .pg = pg->pg };
	store_list(o->store, &f, purge_collect, &l);
	if (!l.n) {
		pg->purging = false;
		LOG_INFO("osd.%u: pg %u.%x's stray copy is gone", o->id, pg->pool, pg->pg);
		return;
	}
	for (unsigned i = 0; i < l.n; i++) {
		struct purge_op *po = calloc(1, sizeof(*po));
		if (!po)
			break;
		po->pg = pg;
		po->req = (struct store_req){ .op = STORE_OP_DELETE, .oid = l.oids[i],
					      .done = purge_done, .ctx = po };
		list_add_tail(&o->pgs->purges, &po->node);
		pg_log_change(pg, &l.oids[i], 0);
		pg->purge_inflight++;
		pg->store_writes++;
		store_submit(o->store, &po->req);
	}
}

void pg_stray_check(struct osd *o, const struct map_pool *p, uint32_t pgid)
{
	const struct cluster_map *m = monsess_map(o->mon);
	uint32_t acting[MAP_PG_ACTING_MAX];
	size_t n = map_pg_acting(m, p, pgid, acting, MAP_PG_ACTING_MAX);
	for (size_t i = 0; i < n; i++)
		if (acting[i] == o->id)
			return;
	/* Only once the record names a whole set (size members): a stray
	 * copy or chunk is redundancy while the PG is short of members (an
	 * EC PG recorded with K members has none without it). */
	const struct map_pg_active *rec = map_pg_active_get(m, p->id, pgid);
	if (!rec || rec->n < p->size || !osd_serving(o))
		return;
	for (uint32_t i = 0; i < rec->n; i++)
		if (rec->osds[i] == o->id)
			return;
	struct osd_pg *pg = pg_get(o, p->id, pgid, true);
	/* A primary of an interval after the record, or one our map has not
	 * seen, asked us already: we may be a member there, so not a stray.
	 * (The recorded interval's own primary asking is how peering finds
	 * strays.) */
	if (!pg || pg->purging || pg->fence_epoch > rec->epoch || pg->fence_epoch > m->epoch ||
	    !complete_epoch_known(pg) || pg->complete_epoch >= rec->epoch)
		return;
	LOG_INFO("osd.%u: pg %u.%x is recorded in interval %" PRIu64
		 " without this OSD (its mark is from %" PRIu64 "): deleting its stray copy",
		 o->id, p->id, pgid, rec->epoch, pg->complete_epoch);
	pg->purging = true;
	pg->purge_fence = pg->fence_epoch;
	purge_next(pg);
}
