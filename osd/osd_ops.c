/* Client object operations as they arrive at an OSD: decoding, routing
 * and listing; the PG layer (pg_io.c) runs them.
 *
 * An operation goes to the primary of its object's PG (the first acting
 * OSD of map_pg_acting); any other OSD answers -EAGAIN with its epoch and
 * the client refreshes its map. A write or delete that was answered is
 * remembered by (client, request) so a resend gets the same answer
 * instead of applying twice (the PG's other members remember it too, so
 * a new primary does as well).
 *
 * Fencing: an operation from a client the map fences is refused
 * (-ESHUTDOWN), here and again when the PG layer starts it. An operation
 * that carries a newer map epoch than ours waits here until our map
 * catches up: the client that took a lock over acts on the map that
 * fences the old holder, and every OSD it reaches refuses the old holder
 * before serving it. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/enc.h"
#include "common/log.h"
#include "osd_int.h"
#include "common/cluster/osd_proto.h"
#include "pg_int.h"

#define OSD_EARLY_MAX 4096
#define OSD_EARLY_WAIT_NS IO_SEC(2)

struct osd_early {
	struct list_node node;
	struct msgr_conn *conn;
	struct msg *msg;
	uint64_t epoch, since_ns;
};

static void early_drop(struct osd *o, struct osd_early *e, bool answer)
{
	if (answer) {
		struct osd_op_reply r = { .rc = -EAGAIN };
		osd_op_answer(o, e->conn, e->msg->hdr.request_id, &r, NULL, 0);
	}
	list_del(&e->node);
	o->n_early--;
	msg_free(e->msg);
	free(e);
}

void osd_ops_map(struct osd *o)
{
	uint64_t epoch = monsess_map(o->mon)->epoch;
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &o->early) {
		struct osd_early *e = list_entry(pos, struct osd_early, node);
		if (e->epoch > epoch)
			continue;
		struct msgr_conn *conn = e->conn;
		struct msg *msg = e->msg;
		e->msg = NULL;
		list_del(&e->node);
		o->n_early--;
		free(e);
		osd_ops_handle(o, conn, msg);
	}
}

void osd_ops_tick(struct osd *o, uint64_t now_ns)
{
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &o->early) {
		struct osd_early *e = list_entry(pos, struct osd_early, node);
		if (now_ns - e->since_ns < OSD_EARLY_WAIT_NS)
			break; /* oldest first */
		early_drop(o, e, true);
	}
}

void osd_ops_conn_closed(struct osd *o, struct msgr_conn *conn)
{
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &o->early) {
		struct osd_early *e = list_entry(pos, struct osd_early, node);
		if (e->conn == conn)
			early_drop(o, e, false);
	}
}

/* Holds MSG (OP decoded from it) until our map reaches OP's epoch:
 * false when it cannot be held (the client retries). */
static bool hold_early(struct osd *o, struct msgr_conn *conn, struct msg *msg,
		       const struct osd_op *op)
{
	struct osd_early *e = o->n_early < OSD_EARLY_MAX ? calloc(1, sizeof(*e)) : NULL;
	if (!e)
		return false;
	e->conn = conn;
	e->msg = msg;
	e->epoch = op->epoch;
	e->since_ns = io_now_ns(o->loop);
	list_add_tail(&o->early, &e->node);
	o->n_early++;
	return true;
}

int osd_ops_init(struct osd *o)
{
	o->recent = calloc(OSD_RECENT, sizeof(*o->recent));
	o->recent_buckets = malloc(OSD_RECENT_BUCKETS * sizeof(*o->recent_buckets));
	if (!o->recent || !o->recent_buckets)
		return -ENOMEM;
	for (unsigned i = 0; i < OSD_RECENT_BUCKETS; i++)
		o->recent_buckets[i] = -1;
	for (unsigned i = 0; i < OSD_RECENT; i++)
		o->recent[i].hash_next = -1;
	return 0;
}

void osd_ops_detach(struct osd *o)
{
	while (!list_empty(&o->early))
		early_drop(o, list_entry(list_first(&o->early), struct osd_early, node), false);
}

void osd_ops_fini(struct osd *o)
{
	free(o->recent);
	free(o->recent_buckets);
	o->recent = NULL;
	o->recent_buckets = NULL;
}

void osd_op_answer_crc(struct osd *o, struct msgr_conn *conn, uint64_t request_id,
		       struct osd_op_reply *r, void *data, uint32_t len, const uint32_t *crc)
{
	if (!conn || o->forgetting) {
		free(data);
		return;
	}
	r->epoch = monsess_map(o->mon)->epoch;
	struct msg *msg = osd_op_reply_encode(request_id, r);
	if (msg && data) {
		msg->data = data; /* the message owns it */
		msg->hdr.data_len = len;
		if (crc && len)
			msg_set_chunk_crcs(msg, crc);
	} else {
		free(data);
	}
	if (msg && msgr_send(conn, msg))
		msg_free(msg);
}

void osd_op_answer(struct osd *o, struct msgr_conn *conn, uint64_t request_id,
		   struct osd_op_reply *r, void *data, uint32_t len)
{
	osd_op_answer_crc(o, conn, request_id, r, data, len, NULL);
}

static int32_t *recent_bucket(struct osd *o, uint64_t client, uint64_t reqid)
{
	uint64_t h = (client ^ (reqid * 0x9E3779B97F4A7C15ULL)) * 0xBF58476D1CE4E5B9ULL;
	return &o->recent_buckets[(h >> 32) % OSD_RECENT_BUCKETS];
}

void osd_recent_add(struct osd *o, uint64_t client, uint64_t reqid, int rc, uint64_t version)
{
	if (!client || !o->recent)
		return;
	int32_t slot = (int32_t)o->recent_next;
	struct osd_recent *old = &o->recent[slot];
	if (old->client) { /* the oldest goes: unlink it */
		int32_t *p = recent_bucket(o, old->client, old->reqid);
		while (*p != slot)
			p = &o->recent[*p].hash_next;
		*p = old->hash_next;
	}
	int32_t *b = recent_bucket(o, client, reqid);
	*old = (struct osd_recent){ client, reqid, rc, version, *b };
	*b = slot;
	o->recent_next = (o->recent_next + 1) % OSD_RECENT;
}

struct osd_recent *osd_recent_find(struct osd *o, uint64_t client, uint64_t reqid)
{
	if (!client || !o->recent)
		return NULL;
	/* Newest first in each chain (added at the head). */
	for (int32_t i = *recent_bucket(o, client, reqid); i >= 0; i = o->recent[i].hash_next)
		if (o->recent[i].client == client && o->recent[i].reqid == reqid)
			return &o->recent[i];
	return NULL;
}

/* The pool of OP, if this OSD may serve OP on it; else -errno. */
static int check_op(struct osd *o, const struct osd_op *op, const struct map_pool **pool)
{
	const struct cluster_map *m = monsess_map(o->mon);
	if (map_client_fenced(m, op->client))
		return -ESHUTDOWN;
	if ((op->type == OSD_OP_SCRUB && op->oid.index == OSD_SCRUB_ALL) ||
	    op->type == OSD_OP_SYNC)
		return 0;
	const struct map_pool *p = map_pool_by_id(m, op->oid.pool);
	if (!p)
		return op->epoch > m->epoch ? -EAGAIN : -ENOENT; /* maybe our map is behind */
	*pool = p;
	if (op->type == OSD_OP_LIST)
		return 0;
	if (op->type == OSD_OP_SCRUB)
		return op->oid.index < p->pg_num ? 0 : -EINVAL;
	if (pg_is_meta(&op->oid))
		return -EINVAL;
	if (op->type == OSD_OP_WRITE && op->oid.snap)
		return -EROFS; /* a snapshot never changes; snap rm deletes clones */
	uint32_t acting[MAP_PG_ACTING_MAX];
	size_t n = map_pg_acting(m, p, object_pg(&op->oid, p->pg_num), acting, MAP_PG_ACTING_MAX);
	if (!n || acting[0] != o->id || !osd_serving(o))
		return -EAGAIN;
	/* What this OSD stores of an object: a block (an EC pool's chunk). */
	if (map_pool_chunk_bytes(p) != store_block_size(o->store))
		return -EMEDIUMTYPE;
	if ((op->type == OSD_OP_READ || op->type == OSD_OP_WRITE) &&
	    (!op->len || op->offset % 4096 || op->len % 4096 || op->offset > p->block_size ||
	     op->len > p->block_size - op->offset))
		return -EINVAL;
	return 0;
}

struct list_ctx {
	struct osd *o;
	const struct map_pool *pool;
	uint8_t *buf;
	size_t len, cap;
	int8_t *mine; /* per PG: 0 not primary, 1 primary */
};

static int list_put(struct list_ctx *l, const struct store_object_info *info)
{
	if (l->len + OSD_LIST_ENTRY_LEN > l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64 * OSD_LIST_ENTRY_LEN;
		uint8_t *b = realloc(l->buf, cap);
		if (!b)
			return -ENOMEM;
		l->buf = b;
		l->cap = cap;
	}
	struct enc e;
	enc_init(&e, l->buf + l->len, OSD_LIST_ENTRY_LEN);
	enc_put_object_id(&e, &info->oid);
	enc_put_le64(&e, info->version);
	enc_put_le64(&e, info->written_bytes);
	l->len += OSD_LIST_ENTRY_LEN;
	return 0;
}

static int list_one(const struct store_object_info *info, void *arg)
{
	struct list_ctx *l = arg;
	uint32_t pgid = object_pg(&info->oid, l->pool->pg_num);
	if (pg_is_meta(&info->oid) || !l->mine[pgid])
		return 0;
	if (l->pool->type != MAP_POOL_EC)
		return list_put(l, info);
	/* An EC object is listed whole, from the primary's own chunk (not
	 * a pending write, nor a chunk of another position it still has),
	 * its size what all K data chunks hold. */
	const struct osd_pg *pg = pg_get(l->o, l->pool->id, pgid, false);
	if (!pg || !pg->n_acting || info->oid.snap == OBJECT_SNAP_PENDING ||
	    info->oid.shard != pg->shard[0] + 1u)
		return 0;
	struct store_object_info whole = *info;
	whole.oid = object_whole(&info->oid);
	whole.written_bytes = map_pool_stored_bytes(l->pool, info->written_bytes);
	return list_put(l, &whole);
}

/* The objects of PG PGID (this OSD its primary) that its store lacks
 * while recovery brings them: a listing shows what the PG holds, not
 * what this copy has so far — snap rm frees the garbage it lists, and a
 * clone missed here would never be freed. -EAGAIN while the PG is not
 * active (the members' objects not merged yet). */
static int list_missing(struct list_ctx *l, uint32_t pgid)
{
	struct osd_pg *pg = pg_get(l->o, l->pool->id, pgid, false);
	if (!pg || pg->state != PG_STATE_ACTIVE)
		return -EAGAIN;
	const struct list_node *pos;
	list_for_each(pos, &pg->objs) {
		const struct pg_obj *obj = list_entry(pos, struct pg_obj, pg_node);
		struct store_object_info info = { .oid = obj->oid, .version = obj->auth_version };
		struct store_object_info held;
		struct object_id local = pg_local_oid(pg, &obj->oid);
		if (!obj->auth_version || !(obj->need_push & 1) || pg_is_meta(&obj->oid) ||
		    store_stat(l->o->store, &local, &held) == 0)
			continue; /* none, or listed from the store (an older copy) */
		int rc = list_put(l, &info);
		if (rc)
			return rc;
	}
	return 0;
}

/* Lists the objects of POOL in the PGs this OSD is primary of, as of
 * its map (the client asked with the same epoch: osd_ops_handle), each
 * of those PGs active. */
static void list_objects(struct osd *o, struct msgr_conn *conn, uint64_t request_id,
			 const struct map_pool *pool, uint64_t arrived_ns)
{
	struct list_ctx l = { o, pool, NULL, 0, 0, malloc(pool->pg_num) };
	struct osd_op_reply r = { .epoch = monsess_map(o->mon)->epoch };
	if (!l.mine) {
		r.rc = -ENOMEM;
	} else if (!osd_serving(o)) {
		r.rc = -EAGAIN;
	} else {
		for (uint32_t pg = 0; pg < pool->pg_num; pg++) {
			uint32_t acting[MAP_PG_ACTING_MAX];
			size_t n = map_pg_acting(monsess_map(o->mon), pool, pg, acting,
						 MAP_PG_ACTING_MAX);
			l.mine[pg] = n && acting[0] == o->id;
		}
		struct store_list_filter f = { .pool = pool->id, .any_inode = true };
		r.rc = store_list(o->store, &f, list_one, &l);
		for (uint32_t pg = 0; pg < pool->pg_num && !r.rc; pg++)
			if (l.mine[pg])
				r.rc = list_missing(&l, pg);
	}
	if (l.len > (32u << 20)) {
		r.rc = -EFBIG;
		l.len = 0;
	}
	void *data = NULL;
	if (!r.rc && l.len && posix_memalign(&data, 4096, l.len) == 0)
		memcpy(data, l.buf, l.len);
	else if (!r.rc && l.len)
		r.rc = -ENOMEM;
	osd_metrics_op_answered(o, OSD_OP_LIST - 1, r.rc, 0, arrived_ns);
	osd_op_answer(o, conn, request_id, &r, data, data ? (uint32_t)l.len : 0);
	free(l.buf);
	free(l.mine);
}

void osd_ops_handle(struct osd *o, struct msgr_conn *conn, struct msg *msg)
{
	struct osd_op op;
	struct osd_op_reply r = { 0 };
	const struct map_pool *pool = NULL;
	uint64_t rid = msg->hdr.request_id;
	if (osd_op_decode(msg, &op)) {
		LOG_WARN("malformed operation from %s", msgr_conn_peer_addr(conn));
		r.rc = -EBADMSG;
		osd_op_answer(o, conn, rid, &r, NULL, 0);
		msg_free(msg);
		return;
	}
	if (op.epoch > monsess_map(o->mon)->epoch && osd_serving(o) &&
	    osd_auth_any_grant(o, conn) && hold_early(o, conn, msg, &op))
		return;
	unsigned kind = op.type - 1; /* decode checked it */
	uint64_t arrived_ns = io_now_ns(o->loop);
	osd_metrics_op_received(o, kind);
	r.rc = osd_auth_check_op(o, conn, &op);
	if (!r.rc)
		r.rc = check_op(o, &op, &pool);
	if (!r.rc && op.type == OSD_OP_LIST && op.epoch < monsess_map(o->mon)->epoch)
		r.rc = -EAGAIN; /* which PGs are ours differs: the client lists again */
	if (!r.rc && op.type == OSD_OP_LIST) {
		list_objects(o, conn, rid, pool, arrived_ns);
		msg_free(msg);
		return;
	}
	if (!r.rc && op.type == OSD_OP_SCRUB) {
		bool all = op.oid.index == OSD_SCRUB_ALL;
		int n = osd_pg_scrub(o, all ? 0 : pool->id, all ? UINT32_MAX : (uint32_t)op.oid.index,
				     op.flags & OSD_OP_FLAG_DEEP);
		r.rc = n < 0 ? n : 0;
		r.size = n < 0 ? 0 : (uint64_t)n;
	}
	if (!r.rc && op.type == OSD_OP_SYNC) {
		msg_free(msg);
		if (op.epoch > monsess_map(o->mon)->epoch || !osd_serving(o)) {
			r.rc = -EAGAIN; /* not there yet: the client asks again */
			osd_metrics_op_untimed(o, kind, r.rc);
			osd_op_answer(o, conn, rid, &r, NULL, 0);
			return;
		}
		pg_snap_sync(o, conn, rid, op.epoch);
		return;
	}
	if (op.type == OSD_OP_SCRUB || op.type == OSD_OP_SYNC) {
		osd_metrics_op_untimed(o, kind, r.rc);
		osd_op_answer(o, conn, rid, &r, NULL, 0);
		msg_free(msg);
		return;
	}
	if (r.rc) {
		osd_metrics_op_untimed(o, kind, r.rc);
		osd_op_answer(o, conn, rid, &r, NULL, 0);
		msg_free(msg);
		return;
	}
	void *data = NULL;
	const uint32_t *crc = NULL;
	if (op.type == OSD_OP_WRITE) {
		/* The CRCs the messenger computed of each 4 KiB go with it:
		 * the store and the replicas' frames need no pass of their own. */
		if (msg->hdr.data_len == op.len)
			crc = msg_chunk_crcs(msg);
		data = msg->data; /* 4 KiB aligned; the PG layer's now */
		msg->data = NULL;
	}
	osd_pg_client_op(o, conn, rid, &op, data, crc);
	msg_free(msg); /* after: CRC is the message's */
}
