/* Serving client object operations from the OSD's store.
 *
 * An operation goes to the primary of its object's PG (the first acting
 * OSD of map_pg_acting); any other OSD answers -EAGAIN with its epoch and
 * the client refreshes its map. A write or delete that was answered is
 * remembered by (client, request) so a resend gets the same answer
 * instead of applying twice; a resend that arrives while the first is in
 * flight is dropped (the first one's answer, or the next resend, serves).
 *
 * Replication is not built yet: only pools of size 1 are served, and any
 * other is refused with -EOPNOTSUPP rather than written once and
 * acknowledged as if it were replicated. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/enc.h"
#include "common/log.h"
#include "osd_int.h"
#include "osd_proto.h"

struct osd_pending {
	struct store_req req; /* req.ctx is this */
	struct list_node node;
	struct osd *o;
	struct msgr_conn *conn; /* NULL once the client is gone */
	uint64_t request_id;
	struct osd_op op;
};

int osd_ops_init(struct osd *o)
{
	o->recent = calloc(OSD_RECENT, sizeof(*o->recent));
	return o->recent ? 0 : -ENOMEM;
}

void osd_ops_detach(struct osd *o)
{
	/* The store finishes what is in flight when it closes; those
	 * answers go nowhere. */
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &o->ops)
		list_entry(pos, struct osd_pending, node)->conn = NULL;
}

void osd_ops_fini(struct osd *o)
{
	free(o->recent);
	o->recent = NULL;
}

void osd_ops_conn_closed(struct osd *o, struct msgr_conn *conn)
{
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &o->ops) {
		struct osd_pending *p = list_entry(pos, struct osd_pending, node);
		if (p->conn == conn)
			p->conn = NULL;
	}
}

static void answer(struct osd *o, struct msgr_conn *conn, uint64_t request_id,
		   struct osd_op_reply *r, const void *data, uint32_t data_len)
{
	if (!conn)
		return;
	r->epoch = monsess_map(o->mon)->epoch;
	struct msg *msg = osd_op_reply_encode(request_id, r);
	if (msg && data_len && msg_alloc_data(msg, data_len) == 0)
		memcpy(msg->data, data, data_len);
	else if (msg && data_len)
		r->rc = -ENOMEM;
	if (msg && msgr_send(conn, msg))
		msg_free(msg);
}

static struct osd_recent *recent_find(struct osd *o, const struct osd_op *op)
{
	for (unsigned i = 0; i < OSD_RECENT; i++)
		if (o->recent[i].client == op->client && o->recent[i].reqid == op->reqid &&
		    op->client)
			return &o->recent[i];
	return NULL;
}

static bool in_flight(struct osd *o, const struct osd_op *op)
{
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &o->ops) {
		struct osd_pending *p = list_entry(pos, struct osd_pending, node);
		if (p->op.client == op->client && p->op.reqid == op->reqid)
			return true;
	}
	return false;
}

static void store_done(struct store_req *req, int res)
{
	struct osd_pending *p = req->ctx;
	struct osd *o = p->o;
	struct osd_op_reply r = { .rc = res, .version = req->version };
	if (p->op.type != OSD_OP_READ && p->op.client) {
		o->recent[o->recent_next] = (struct osd_recent){ p->op.client, p->op.reqid, res,
								 req->version };
		o->recent_next = (o->recent_next + 1) % OSD_RECENT;
	}
	answer(o, p->conn, p->request_id, &r, p->op.type == OSD_OP_READ && !res ? req->buf : NULL,
	       p->op.type == OSD_OP_READ && !res ? req->len : 0);
	list_del(&p->node);
	free(req->buf);
	free(p);
}

/* The pool of OP, if this OSD may serve OP on it; else -errno. */
static int check_op(struct osd *o, const struct osd_op *op, const struct map_pool **pool)
{
	const struct cluster_map *m = monsess_map(o->mon);
	const struct map_pool *p = map_pool_by_id(m, op->oid.pool);
	if (!p)
		return op->epoch > m->epoch ? -EAGAIN : -ENOENT; /* maybe our map is behind */
	*pool = p;
	if (op->type == OSD_OP_LIST)
		return 0;
	uint32_t acting[16];
	size_t n = map_pg_acting(m, p, object_pg(&op->oid, p->pg_num), acting, 16);
	if (!n || acting[0] != o->id)
		return -EAGAIN;
	if (p->size != 1)
		return -EOPNOTSUPP;
	if (p->block_size != store_block_size(o->store))
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
	int8_t *mine; /* per PG: -1 unknown, 0 not primary, 1 primary */
};

static int list_one(const struct store_object_info *info, void *arg)
{
	struct list_ctx *l = arg;
	uint32_t pg = object_pg(&info->oid, l->pool->pg_num);
	if (l->mine[pg] < 0) {
		uint32_t acting[16];
		size_t n = map_pg_acting(monsess_map(l->o->mon), l->pool, pg, acting, 16);
		l->mine[pg] = n && acting[0] == l->o->id;
	}
	if (!l->mine[pg])
		return 0;
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

static void list_objects(struct osd *o, struct msgr_conn *conn, uint64_t request_id,
			 const struct map_pool *pool)
{
	struct list_ctx l = { o, pool, NULL, 0, 0, malloc(pool->pg_num) };
	struct osd_op_reply r = { 0 };
	if (!l.mine) {
		r.rc = -ENOMEM;
	} else {
		memset(l.mine, -1, pool->pg_num);
		struct store_list_filter f = { .pool = pool->id, .any_inode = true };
		r.rc = store_list(o->store, &f, list_one, &l);
	}
	if (l.len > (32u << 20)) {
		r.rc = -EFBIG;
		l.len = 0;
	}
	answer(o, conn, request_id, &r, l.buf, r.rc ? 0 : (uint32_t)l.len);
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
		answer(o, conn, msg->hdr.request_id, &r, NULL, 0);
		msg_free(msg);
		return;
	}
	struct osd_recent *done = op.type == OSD_OP_WRITE || op.type == OSD_OP_DELETE
					  ? recent_find(o, &op)
					  : NULL;
	if (done) { /* a resend of something answered: the same answer */
		r = (struct osd_op_reply){ .rc = done->rc, .version = done->version };
		answer(o, conn, msg->hdr.request_id, &r, NULL, 0);
		msg_free(msg);
		return;
	}
	if (op.client && in_flight(o, &op)) {
		msg_free(msg);
		return;
	}
	r.rc = check_op(o, &op, &pool);
	if (!r.rc && op.type == OSD_OP_LIST) {
		list_objects(o, conn, msg->hdr.request_id, pool);
		msg_free(msg);
		return;
	}
	if (!r.rc && op.type == OSD_OP_STAT) {
		struct store_object_info info;
		r.rc = store_stat(o->store, &op.oid, &info);
		r.version = info.version;
		r.size = r.rc ? 0 : info.written_bytes;
	}
	struct osd_pending *p = NULL;
	if (!r.rc && op.type != OSD_OP_STAT) {
		p = calloc(1, sizeof(*p));
		void *buf = NULL;
		if (!p || (op.len && posix_memalign(&buf, 4096, op.len))) {
			free(p);
			p = NULL;
			r.rc = -ENOMEM;
		} else {
			p->o = o;
			p->conn = conn;
			p->request_id = msg->hdr.request_id;
			p->op = op;
			p->req = (struct store_req){
				.op = op.type == OSD_OP_READ ? STORE_OP_READ
				      : op.type == OSD_OP_WRITE ? STORE_OP_WRITE : STORE_OP_DELETE,
				.oid = op.oid, .offset = op.offset, .len = op.len, .buf = buf,
				.done = store_done, .ctx = p };
			if (op.type == OSD_OP_WRITE)
				memcpy(buf, msg->data, op.len);
		}
	}
	msg_free(msg);
	if (!p) {
		answer(o, conn, rid, &r, NULL, 0);
		return;
	}
	list_add_tail(&o->ops, &p->node);
	store_submit(o->store, &p->req);
}
