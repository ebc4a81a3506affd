/* The placement-group layer (see pg.h): the PG table, intervals from the
 * map, peering and the activation record, requests to other OSDs, and the
 * states the beacon reports. The state machine and its invariants are in
 * pg_int.h; client operations are in pg_io.c, recovery in
 * pg_recovery.c, the other members' side in pg_replica.c. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/crc32c.h"
#include "common/enc.h"
#include "common/log.h"
#include "pg_int.h"

#define PG_BUCKETS 1024u
#define CALL_BUCKETS 1024u
#define OBJ_BUCKETS_MIN 1024u

/* --- the table ------------------------------------------------------------------- */

static uint32_t pg_hash(uint32_t pool, uint32_t pg)
{
	uint64_t x = ((uint64_t)pool << 32 | pg) * 0x9E3779B97F4A7C15ULL;
	return (uint32_t)(x >> 40);
}

struct osd_pg *pg_get(struct osd *o, uint32_t pool, uint32_t pgid, bool create)
{
	struct osd_pgs *t = o->pgs;
	struct osd_pg **b = &t->buckets[pg_hash(pool, pgid) & t->bucket_mask];
	for (struct osd_pg *pg = *b; pg; pg = pg->hash_next)
		if (pg->pool == pool && pg->pg == pgid)
			return pg;
	if (!create)
		return NULL;
	struct osd_pg *pg = calloc(1, sizeof(*pg));
	if (!pg)
		return NULL;
	/* A PG of an EC pool has its code from the start: a member that is
	 * not in the acting set still deletes and reads chunks. */
	const struct map_pool *p = o->mon ? map_pool_by_id(monsess_map(o->mon), pool) : NULL;
	if (p && p->type == MAP_POOL_EC && pg_ec_init(pg, p->ec_k, p->ec_m)) {
		free(pg);
		return NULL;
	}
	pg->o = o;
	pg->pool = pool;
	pg->pg = pgid;
	pg->complete_epoch = UINT64_MAX;
	list_init(&pg->deferred);
	list_init(&pg->ops);
	list_init(&pg->waiting);
	list_init(&pg->objs);
	list_init(&pg->missing);
	list_init(&pg->calls);
	list_init(&pg->recs);
	list_init(&pg->record_node);
	list_init(&pg->active_node);
	pg->hash_next = *b;
	*b = pg;
	list_add_tail(&t->all, &pg->all_node);
	return pg;
}

void pg_for_each(struct osd *o, void (*fn)(struct osd_pg *pg, void *arg), void *arg)
{
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &o->pgs->all)
		fn(list_entry(pos, struct osd_pg, all_node), arg);
}

const struct cluster_map *pg_map(const struct osd_pg *pg)
{
	return monsess_map(pg->o->mon);
}

int pg_acting_index(const struct osd_pg *pg, uint32_t osd)
{
	for (uint32_t i = 0; i < pg->n_acting; i++)
		if (pg->acting[i] == osd)
			return (int)i;
	return -1;
}

bool pg_is_meta(const struct object_id *oid)
{
	return oid->inode == OBJECT_INODE_PG_META;
}

struct object_id pg_meta_oid(uint32_t pool, uint32_t pg)
{
	return (struct object_id){ pool, OBJECT_INODE_PG_META, pg, 0, OBJECT_SHARD_WHOLE };
}

int osd_pg_init(struct osd *o)
{
	struct osd_pgs *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	o->pgs = t;
	t->bucket_mask = PG_BUCKETS - 1;
	t->call_bucket_mask = CALL_BUCKETS - 1;
	t->obj_bucket_mask = OBJ_BUCKETS_MIN - 1;
	t->buckets = calloc(PG_BUCKETS, sizeof(*t->buckets));
	t->call_buckets = calloc(CALL_BUCKETS, sizeof(*t->call_buckets));
	t->obj_buckets = calloc(OBJ_BUCKETS_MIN, sizeof(*t->obj_buckets));
	list_init(&t->all);
	list_init(&t->record_queue);
	list_init(&t->recovering);
	list_init(&t->replica_ops);
	list_init(&t->syncs);
	list_init(&t->marks);
	list_init(&t->purges);
	list_init(&t->scrub_parts);
	pg_scrub_init(o);
	t->next_tid = 1;
	return t->buckets && t->call_buckets && t->obj_buckets ? 0 : -ENOMEM;
}

/* --- objects ------------------------------------------------------------------- */

static uint64_t obj_bucket(const struct osd_pgs *t, const struct object_id *oid)
{
	return object_id_hash(oid) & t->obj_bucket_mask;
}

static void obj_table_grow(struct osd_pgs *t)
{
	uint64_t n = (t->obj_bucket_mask + 1) * 2;
	struct pg_obj **nb = calloc(n, sizeof(*nb));
	if (!nb)
		return; /* longer chains, still correct */
	for (uint64_t i = 0; i <= t->obj_bucket_mask; i++)
		for (struct pg_obj *x = t->obj_buckets[i], *next; x; x = next) {
			next = x->hash_next;
			uint64_t k = object_id_hash(&x->oid) & (n - 1);
			x->hash_next = nb[k];
			nb[k] = x;
		}
	free(t->obj_buckets);
	t->obj_buckets = nb;
	t->obj_bucket_mask = n - 1;
}

struct pg_obj *pg_obj_get(struct osd_pg *pg, const struct object_id *oid, bool create)
{
	struct osd_pgs *t = pg->o->pgs;
	for (struct pg_obj *x = t->obj_buckets[obj_bucket(t, oid)]; x; x = x->hash_next)
		if (object_id_equal(&x->oid, oid))
			return x;
	if (!create)
		return NULL;
	if (t->n_objs > 2 * (t->obj_bucket_mask + 1))
		obj_table_grow(t);
	struct pg_obj *x = calloc(1, sizeof(*x));
	if (!x)
		return NULL;
	x->pg = pg;
	x->oid = *oid;
	list_init(&x->queue);
	list_init(&x->rec_node);
	list_add_tail(&pg->objs, &x->pg_node);
	struct pg_obj **b = &t->obj_buckets[obj_bucket(t, oid)];
	x->hash_next = *b;
	*b = x;
	t->n_objs++;
	return x;
}

void pg_obj_free(struct pg_obj *x)
{
	struct osd_pgs *t = x->pg->o->pgs;
	struct pg_obj **p = &t->obj_buckets[obj_bucket(t, &x->oid)];
	while (*p != x)
		p = &(*p)->hash_next;
	*p = x->hash_next;
	list_del(&x->pg_node);
	if (list_linked(&x->rec_node))
		list_del(&x->rec_node);
	t->n_objs--;
	free(x->ec);
	free(x);
}

void pg_obj_maybe_free(struct pg_obj *x)
{
	if (!x->reads && !x->writes && list_empty(&x->queue) && !x->need_push &&
	    !x->need_remove && !x->recovering && !x->unfound && !x->ec)
		pg_obj_free(x);
}

/* --- requests to other OSDs ------------------------------------------------------------ */

struct pg_data *pg_data_wrap(void *buf, uint32_t len, const uint32_t *crc)
{
	size_t crc_bytes = crc ? (size_t)len / CRC32C_CHUNK * sizeof(*crc) : 0;
	BASALT_ASSERT(!crc || (len && len % CRC32C_CHUNK == 0));
	struct pg_data *d = malloc(sizeof(*d) + crc_bytes);
	if (!d)
		return NULL;
	d->refs = 1;
	d->len = len;
	d->buf = buf;
	d->crc = NULL;
	if (crc) {
		memcpy(d->crc_space, crc, crc_bytes);
		d->crc = d->crc_space;
	}
	return d;
}

void pg_data_get(struct pg_data *d)
{
	d->refs++;
}

void pg_data_put(struct pg_data *d)
{
	if (d && --d->refs == 0) {
		free(d->buf);
		free(d);
	}
}

static void pg_data_release(struct msg *msg)
{
	pg_data_put(msg->data_owner);
}

static struct pg_call **call_slot(struct osd_pgs *t, uint64_t tid)
{
	return &t->call_buckets[(tid * 0x9E3779B97F4A7C15ULL >> 40) & t->call_bucket_mask];
}

static void call_unlink(struct pg_call *c)
{
	struct pg_call **p = call_slot(c->pg->o->pgs, c->tid);
	while (*p != c)
		p = &(*p)->hash_next;
	*p = c->hash_next;
	list_del(&c->pg_node);
}

int pg_call(struct osd_pg *pg, uint32_t osd, struct msg *msg, pg_call_fn done, void *ctx,
	    uint64_t arg)
{
	struct osd_pgs *t = pg->o->pgs;
	struct msgr_conn *conn = osd_peer_conn(pg->o, osd);
	struct pg_call *c = conn ? calloc(1, sizeof(*c)) : NULL;
	if (!msg || !c) {
		msg_free(msg);
		free(c);
		return msg ? -ENOTCONN : -ENOMEM;
	}
	c->pg = pg;
	c->tid = t->next_tid++;
	c->osd = osd;
	c->done = done;
	c->ctx = ctx;
	c->arg = arg;
	msg->hdr.request_id = c->tid;
	int rc = msgr_send(conn, msg);
	if (rc) {
		msg_free(msg);
		free(c);
		return rc;
	}
	struct pg_call **b = call_slot(t, c->tid);
	c->hash_next = *b;
	*b = c;
	list_add_tail(&pg->calls, &c->pg_node);
	return 0;
}

int pg_call_subop(struct osd_pg *pg, uint32_t osd, struct pg_subop *op, struct pg_data *data,
		  pg_call_fn done, void *ctx, uint64_t arg)
{
	op->pool = pg->pool;
	op->pg = pg->pg;
	op->epoch = pg->interval;
	op->from = pg->o->id;
	struct msg *msg = pg_subop_encode(0, op);
	if (msg && data) {
		pg_data_get(data);
		msg_borrow_data(msg, data->buf, op->len, pg_data_release, data);
		if (data->crc && op->len == data->len)
			msg_set_chunk_crcs(msg, data->crc); /* the frame's CRC without a pass */
	}
	return pg_call(pg, osd, msg, done, ctx, arg);
}

/* A reply to one of our calls (on our outgoing link to its OSD). */
static void call_reply(struct osd *o, struct msgr_conn *conn, struct msg *msg)
{
	struct pg_call *c = *call_slot(o->pgs, msg->hdr.request_id);
	while (c && c->tid != msg->hdr.request_id)
		c = c->hash_next;
	if (!c || osd_peer_conn_if(o, c->osd) != conn) {
		msg_free(msg); /* for a call a reset forgot */
		return;
	}
	call_unlink(c);
	c->done(c, 0, msg);
	msg_free(msg);
	free(c);
}

static void calls_drop(struct osd_pg *pg)
{
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &pg->calls) {
		struct pg_call *c = list_entry(pos, struct pg_call, pg_node);
		call_unlink(c);
		free(c);
	}
}

/* --- reset and intervals --------------------------------------------------------------- */

static void peers_free(struct osd_pg *pg)
{
	for (uint32_t i = 0; i < pg->n_peers; i++)
		msg_free(pg->peers[i].info);
	memset(pg->peers, 0, sizeof(pg->peers));
	pg->n_peers = 0;
	pg->phase = PG_PHASE_SUMMARY;
	free(pg->cand);
	pg->cand = NULL;
	pg->n_cand = 0;
}

/* Forgets everything the primary side holds: calls, operations (answered
 * -EAGAIN), recovery, peering. Anything still in flight sees gen moved. */
static void pg_reset(struct osd_pg *pg)
{
	struct osd_pgs *t = pg->o->pgs;
	pg->gen++;
	calls_drop(pg);
	pg_scrub_reset(pg);
	pg_io_reset(pg);
	pg_recovery_reset(pg);
	peers_free(pg);
	if (list_linked(&pg->record_node))
		list_del(&pg->record_node);
	(void)t; /* a batch that holds PG sees its gen moved */
	pg->recording = PG_RECORD_NONE;
	pg->marking_mask = pg->marks_pending = pg->marked_mask = 0;
	pg->complete_mask = 0;
	pg->backfill = false;
	pg->writes_inflight = 0; /* those in flight were answered: none counts */
	pg->state = PG_STATE_IDLE;
	pg->repeer_at_ns = 0;
}

static bool pg_is_primary(const struct osd_pg *pg)
{
	return pg->n_acting && pg->acting[0] == pg->o->id && osd_serving(pg->o);
}

/* Starts peering now (or at REPEER_AT_NS, from the tick). */
static void pg_peering_start(struct osd_pg *pg);
static void pg_batch_resolve(struct osd *o, const struct cluster_map *m);
static void pg_record_done(struct osd_pg *pg);

void pg_repeer(struct osd_pg *pg, const char *why)
{
	if (pg->state == PG_STATE_IDLE)
		return;
	LOG_INFO("pg %u.%x: peering again (%s)", pg->pool, pg->pg, why);
	pg_reset(pg);
	pg->state = PG_STATE_PEERING;
	pg->repeer_at_ns = io_now_ns(pg->o->loop) + PG_REPEER_DELAY_NS;
}

static void pg_interval_start(struct osd_pg *pg, uint64_t epoch)
{
	pg->interval = epoch;
	pg->seq = 0;
	pg->sync_number = 0;
	pg_reset(pg);
	if (pg_is_primary(pg)) {
		pg->state = PG_STATE_PEERING;
		pg_peering_start(pg);
	}
}

/* Compares PG's interval with map M; starts a new one when the acting
 * set, the primary, a member's boot or the pool's sizes changed. */
static void pg_update_interval(struct osd *o, const struct cluster_map *m,
			       const struct map_pool *p, uint32_t pgid)
{
	uint32_t acting[MAP_PG_ACTING_MAX];
	uint8_t shards[MAP_PG_ACTING_MAX];
	uint32_t n = (uint32_t)map_pg_acting_shards(m, p, pgid, acting, shards, MAP_PG_ACTING_MAX);
	bool member = false;
	for (uint32_t i = 0; i < n; i++)
		member |= acting[i] == o->id;
	struct osd_pg *pg = pg_get(o, p->id, pgid, member);
	if (!pg)
		return;
	bool same = pg->known && pg->n_acting == n && pg->size == p->size &&
		    pg->min_size == p->min_size;
	for (uint32_t i = 0; same && i < n; i++)
		same = pg->acting[i] == acting[i] && pg->up_from[i] == m->osds[acting[i]].up_from &&
		       (p->type != MAP_POOL_EC || pg->shard[i] == shards[i]);
	if (same) {
		if (pg->state == PG_STATE_INCOMPLETE)
			pg_repeer(pg, "the map changed");
		return;
	}
	if (p->type == MAP_POOL_EC && !pg->ec && pg_ec_init(pg, p->ec_k, p->ec_m)) {
		LOG_ERROR("pg %u.%x: no memory for its erasure code: it waits for the next map",
			  p->id, pgid);
		return;
	}
	pg->known = true;
	pg->n_acting = n;
	memcpy(pg->acting, acting, n * sizeof(acting[0]));
	memcpy(pg->shard, shards, n * sizeof(shards[0]));
	for (uint32_t i = 0; i < n; i++)
		pg->up_from[i] = m->osds[acting[i]].up_from;
	pg->size = p->size;
	pg->min_size = p->min_size;
	LOG_DEBUG("pg %u.%x: interval %" PRIu64 ", %u acting, primary osd.%d", p->id, pgid,
		  m->epoch, n, n ? (int)acting[0] : -1);
	pg_interval_start(pg, m->epoch);
}

struct forget_arg {
	const struct cluster_map *m;
	bool all;
};

static void pg_forget_if_gone(struct osd_pg *pg, void *arg)
{
	struct forget_arg *f = arg;
	const struct map_pool *p = map_pool_by_id(f->m, pg->pool);
	if (f->all || !p || pg->pg >= p->pg_num) {
		if (pg->state != PG_STATE_IDLE)
			pg_reset(pg);
		pg->known = false;
		pg->n_acting = 0;
	}
}

void osd_pg_map(struct osd *o)
{
	const struct cluster_map *m = monsess_map(o->mon);
	struct forget_arg f = { m, !osd_serving(o) };
	o->pgs->map_epoch = m->epoch;
	if (o->pgs->batch_epoch && m->epoch >= o->pgs->batch_epoch)
		pg_batch_resolve(o, m);
	pg_for_each(o, pg_forget_if_gone, &f);
	if (f.all)
		return;
	for (uint32_t i = 0; i < m->n_pools; i++)
		for (uint32_t pgid = 0; pgid < m->pools[i].pg_num; pgid++)
			pg_update_interval(o, m, &m->pools[i], pgid);
	pg_recovery_kick(o);
}

/* --- peering ------------------------------------------------------------------------- */

static void peer_query_sent(struct osd_pg *pg, struct pg_peer *peer);

static void pg_query_done(struct pg_call *call, int rc, struct msg *reply)
{
	struct osd_pg *pg = call->pg;
	(void)rc;
	pg->o->pgs->peering_bytes += MSG_HEADER_LEN + reply->hdr.payload_len + reply->hdr.data_len;
	/* The call keeps REPLY's ownership: copy what peering needs. */
	struct msg *copy = msg_new(reply->hdr.type, reply->hdr.request_id, reply->hdr.payload_len);
	if (copy && reply->hdr.data_len && msg_alloc_data(copy, reply->hdr.data_len)) {
		msg_free(copy);
		copy = NULL;
	}
	if (!copy) {
		pg_repeer(pg, "out of memory");
		return;
	}
	memcpy(copy->payload, reply->payload, reply->hdr.payload_len);
	if (reply->hdr.data_len)
		memcpy(copy->data, reply->data, reply->hdr.data_len);
	pg_peering_info(pg, call->osd, copy);
}

static const uint8_t phase_mode[] = {
	[PG_PHASE_SUMMARY] = PG_QUERY_SUMMARY, [PG_PHASE_LOG] = PG_QUERY_LOG,
	[PG_PHASE_STAT] = PG_QUERY_STAT, [PG_PHASE_FULL] = PG_QUERY_FULL,
};

static void peer_query_sent(struct osd_pg *pg, struct pg_peer *peer)
{
	peer->sent_ns = io_now_ns(pg->o->loop);
	peer->tries++;
	struct pg_query q = { .pool = pg->pool, .pg = pg->pg, .epoch = pg->interval,
			      .from = pg->o->id };
	q.mode = phase_mode[pg->phase];
	q.round = pg->gen;
	q.marker = pg->sync_from;
	if (pg->phase == PG_PHASE_STAT) {
		q.count = pg->n_cand;
		q.entries = pg->cand;
	}
	if (peer->osd == pg->o->id) {
		pg_local_query(pg, &q);
		return;
	}
	struct msg *msg = pg_query_encode(0, &q);
	if (msg)
		pg->o->pgs->peering_bytes += MSG_HEADER_LEN + msg->hdr.payload_len + msg->hdr.data_len;
	int rc = pg_call(pg, peer->osd, msg, pg_query_done, NULL, 0);
	if (rc)
		LOG_DEBUG("pg %u.%x: query to osd.%u not sent (%d); will retry", pg->pool, pg->pg,
			  peer->osd, rc);
}

static struct pg_peer *peer_add(struct osd_pg *pg, uint32_t osd)
{
	for (uint32_t i = 0; i < pg->n_peers; i++)
		if (pg->peers[i].osd == osd)
			return &pg->peers[i];
	if (pg->n_peers == PG_PEERS_MAX)
		return NULL;
	struct pg_peer *p = &pg->peers[pg->n_peers++];
	memset(p, 0, sizeof(*p));
	p->osd = osd;
	p->acting_index = pg_acting_index(pg, osd);
	return p;
}

static void pg_peering_start(struct osd_pg *pg)
{
	const struct cluster_map *m = pg_map(pg);
	const struct map_pg_active *rec = map_pg_active_get(m, pg->pool, pg->pg);
	memset(&pg->record, 0, sizeof(pg->record));
	if (rec)
		pg->record = *rec;
	peers_free(pg);
	pg->repeer_at_ns = 0;
	for (uint32_t i = 0; i < pg->n_acting; i++)
		peer_add(pg, pg->acting[i]);
	/* Recorded members outside the acting set hold data too: ask the
	 * ones that are up. */
	pg->n_away = 0;
	for (uint32_t i = 0; i < pg->record.n; i++) {
		uint32_t id = pg->record.osds[i];
		if (id < m->n_osds && m->osds[id].exists && m->osds[id].up)
			peer_add(pg, id);
		else
			pg->away[pg->n_away++] = id;
	}
	for (uint32_t k = 0; k < pg->n_peers; k++)
		for (uint32_t i = 0; i < pg->record.n; i++)
			pg->peers[k].recorded |= pg->peers[k].osd == pg->record.osds[i];
	uint64_t gen = pg->gen;
	for (uint32_t i = 0; i < pg->n_peers && pg->gen == gen; i++)
		peer_query_sent(pg, &pg->peers[i]);
}

/* Whether PEER may speak for the record: it is named in it and holds its
 * complete mark for that interval or a later one (a wiped disk does not). */
static bool peer_authoritative(const struct osd_pg *pg, const struct pg_peer *peer)
{
	if (!peer->replied || peer->rc)
		return false;
	if (!pg->record.epoch)
		return peer->acting_index >= 0; /* never active: nothing acknowledged */
	return peer->recorded && peer->complete_epoch >= pg->record.epoch;
}

static void pg_peering_done(struct osd_pg *pg);
static void pg_peering_compare(struct osd_pg *pg);

/* Decides whether peering has heard enough (pg_int.h, invariant 3). */
static void pg_peering_check(struct osd_pg *pg)
{
	if (pg->state != PG_STATE_PEERING)
		return;
	const struct cluster_map *m = pg_map(pg);
	bool all_acting = true, any_auth = false, auth_pending = false;
	for (uint32_t i = 0; i < pg->n_peers; i++) {
		struct pg_peer *p = &pg->peers[i];
		if (p->acting_index >= 0 && (!p->replied || p->rc))
			all_acting = false;
		any_auth |= peer_authoritative(pg, p);
		auth_pending |= p->recorded && !p->replied;
	}
	if (!all_acting)
		return;
	/* An EC PG's record members each hold their own chunk: K of them
	 * must answer to rebuild what the record holds. */
	if (pg->ec && pg->record.epoch) {
		unsigned n_auth = 0;
		for (uint32_t i = 0; i < pg->n_peers; i++)
			n_auth += peer_authoritative(pg, &pg->peers[i]);
		any_auth = n_auth >= pg->ec->k;
	}
	if (!any_auth && auth_pending)
		return;
	if (!any_auth) {
		pg_io_reset(pg); /* what waits would wait for a map change */
		pg->state = PG_STATE_INCOMPLETE;
		pg->repeer_at_ns = io_now_ns(pg->o->loop) + IO_SEC(5);
		peers_free(pg);
		char who[256] = "";
		size_t at = 0;
		for (uint32_t i = 0; i < pg->record.n && at < sizeof(who); i++) {
			uint32_t id = pg->record.osds[i];
			bool up = id < m->n_osds && m->osds[id].up;
			at += (size_t)snprintf(who + at, sizeof(who) - at, "%sosd.%u%s", at ? ", " : "",
					       id, up ? " (no complete mark)" : " (down)");
		}
		LOG_WARN("pg %u.%x is incomplete: it waits for one of %s, which hold its newest "
			 "acknowledged writes",
			 pg->pool, pg->pg, who);
		return;
	}
	pg_peering_compare(pg);
}

/* A member that answered the summary takes part in the comparison. */
static bool peer_in(const struct pg_peer *p)
{
	return p->replied && !p->rc;
}

/* Asks every member taking part for what PHASE compares. */
static void pg_phase_start(struct osd_pg *pg, enum pg_peer_phase phase)
{
	pg->phase = phase;
	uint64_t gen = pg->gen;
	for (uint32_t i = 0; i < pg->n_peers; i++) {
		msg_free(pg->peers[i].info);
		pg->peers[i].info = NULL;
		pg->peers[i].answered = false;
		pg->peers[i].tries = 0;
	}
	for (uint32_t i = 0; i < pg->n_peers && pg->gen == gen && pg->phase == phase; i++)
		if (peer_in(&pg->peers[i]))
			peer_query_sent(pg, &pg->peers[i]);
}

/* Whether every member of the summary holds marker M (in an EC PG: as
 * the acting member storing the chunk it stores now; its log says
 * nothing of chunks it came to store since). */
static bool marker_shared(const struct osd_pg *pg, const struct pg_marker *m)
{
	for (uint32_t i = 0; i < pg->n_peers; i++) {
		const struct pg_peer *p = &pg->peers[i];
		bool has = false;
		int chunk = pg->ec && p->acting_index >= 0 ? pg->shard[p->acting_index] + 1 : -1;
		for (uint32_t k = 0; peer_in(p) && k < p->n_markers && !has; k++)
			has = p->markers[k].primary == m->primary && p->markers[k].epoch == m->epoch &&
			      p->markers[k].number == m->number &&
			      (!pg->ec || p->markers[k].chunk == chunk);
		if (peer_in(p) && !has)
			return false;
	}
	return true;
}

/* The summaries are in: compare what changed since the newest marker
 * every member holds, or everything when there is none (pg_log.c). */
static void pg_peering_compare(struct osd_pg *pg)
{
	const struct pg_peer *first = NULL;
	for (uint32_t i = 0; i < pg->n_peers && !first; i++)
		if (peer_in(&pg->peers[i]))
			first = &pg->peers[i];
	for (uint32_t k = 0; first && k < first->n_markers; k++)
		if (marker_shared(pg, &first->markers[k])) {
			pg->sync_from = first->markers[k];
			pg_phase_start(pg, PG_PHASE_LOG);
			return;
		}
	pg_phase_start(pg, PG_PHASE_FULL);
}

static int entry_cmp(const void *a, const void *b)
{
	return memcmp(a, b, PG_INFO_ENTRY_LEN);
}

/* Every member's log answered: the objects any of them changed since the
 * marker are the only ones that can differ; their versions are asked. */
static void pg_candidates(struct osd_pg *pg)
{
	size_t total = 0, k = 0;
	struct pg_info info;
	for (uint32_t i = 0; i < pg->n_peers; i++)
		if (peer_in(&pg->peers[i]) && !pg_info_decode(pg->peers[i].info, &info))
			total += info.count;
	uint8_t *c = malloc(total ? total * PG_INFO_ENTRY_LEN : 1);
	if (!c) {
		pg_repeer(pg, "out of memory");
		return;
	}
	for (uint32_t i = 0; i < pg->n_peers; i++)
		if (peer_in(&pg->peers[i]) && !pg_info_decode(pg->peers[i].info, &info) &&
		    info.count) {
			memcpy(c + k * PG_INFO_ENTRY_LEN, info.entries,
			       (size_t)info.count * PG_INFO_ENTRY_LEN);
			k += info.count;
		}
	if (pg->ec && pg_ec_candidates(pg, &c, &k)) {
		pg_repeer(pg, "out of memory");
		return;
	}
	qsort(c, k, PG_INFO_ENTRY_LEN, entry_cmp);
	size_t n = 0;
	for (size_t i = 0; i < k; i++)
		if (!n || memcmp(c + (n - 1) * PG_INFO_ENTRY_LEN, c + i * PG_INFO_ENTRY_LEN,
				 PG_INFO_ENTRY_LEN))
			memmove(c + n++ * PG_INFO_ENTRY_LEN, c + i * PG_INFO_ENTRY_LEN,
				PG_INFO_ENTRY_LEN);
	free(pg->cand);
	pg->cand = c;
	pg->n_cand = (uint32_t)n;
	pg_phase_start(pg, PG_PHASE_STAT);
}

/* An answer of the current phase (after the summary) from PEER. */
static void pg_phase_info(struct osd_pg *pg, struct pg_peer *peer, const struct pg_info *info,
			  struct msg *msg)
{
	if (!peer_in(peer) || peer->answered || info->mode != phase_mode[pg->phase] ||
	    info->rc == -EAGAIN) {
		msg_free(msg); /* late, or not ready: the tick asks again */
		return;
	}
	if (info->rc) {
		msg_free(msg);
		pg_repeer(pg, info->rc == -ESTALE ? "a member is in a newer interval"
						  : "a member could not answer");
		return;
	}
	if (pg->phase == PG_PHASE_LOG && !info->log_ok) {
		msg_free(msg); /* its marker is gone after all */
		pg_phase_start(pg, PG_PHASE_FULL);
		return;
	}
	peer->info = msg;
	peer->answered = true;
	for (uint32_t i = 0; i < pg->n_peers; i++)
		if (peer_in(&pg->peers[i]) && !pg->peers[i].answered)
			return;
	if (pg->phase == PG_PHASE_LOG)
		pg_candidates(pg);
	else
		pg_peering_done(pg);
}

void pg_peering_info(struct osd_pg *pg, uint32_t osd, struct msg *msg)
{
	struct pg_info info;
	struct pg_peer *peer = NULL;
	for (uint32_t i = 0; i < pg->n_peers; i++)
		if (pg->peers[i].osd == osd)
			peer = &pg->peers[i];
	if (pg->state != PG_STATE_PEERING || !peer || pg_info_decode(msg, &info) ||
	    info.epoch != pg->interval || info.pool != pg->pool || info.pg != pg->pg) {
		msg_free(msg);
		return;
	}
	if (pg->phase != PG_PHASE_SUMMARY) {
		pg_phase_info(pg, peer, &info, msg);
		return;
	}
	if (info.rc == -EAGAIN || info.mode != PG_QUERY_SUMMARY) { /* the tick asks again */
		msg_free(msg);
		return;
	}
	peer->replied = true;
	peer->rc = info.rc;
	peer->complete_epoch = info.complete_epoch;
	peer->n_markers = info.n_markers;
	memcpy(peer->markers, info.markers, sizeof(peer->markers));
	msg_free(msg);
	if (osd != pg->o->id)
		osd_peer_full_said(pg->o, osd, info.full);
	if (info.rc == -ESTALE && peer->acting_index < 0 && pg_map(pg)->epoch > pg->interval) {
		/* A recorded member outside the acting set that restarted
		 * since the interval began refuses it (its boot is newer);
		 * its boot does not change the interval, so one starts now,
		 * after its boot: nothing is in flight while peering. */
		LOG_DEBUG("pg %u.%x: osd.%u restarted after interval %" PRIu64 ": a new one", pg->pool,
			  pg->pg, osd, pg->interval);
		pg_interval_start(pg, pg_map(pg)->epoch);
		return;
	}
	if (info.rc == -ESTALE) {
		/* It answered a newer interval: our map is behind. */
		LOG_DEBUG("pg %u.%x: osd.%u is in a newer interval", pg->pool, pg->pg, osd);
		pg_io_reset(pg);
		pg->state = PG_STATE_INCOMPLETE;
		pg->repeer_at_ns = io_now_ns(pg->o->loop) + IO_SEC(1);
		peers_free(pg);
		return;
	}
	pg_peering_check(pg);
}

static int merge_cmp(const void *a, const void *b)
{
	return object_id_cmp(&((const struct pg_merge_entry *)a)->oid,
			     &((const struct pg_merge_entry *)b)->oid);
}

/* The newest version among the authoritative peers wins; every acting
 * member that lacks it, or holds something else, needs recovery. */
static void merge_object(struct osd_pg *pg, const struct pg_merge_entry *e, size_t n,
			 const bool *auth)
{
	uint64_t have[PG_PEERS_MAX] = { 0 }, auth_v = 0;
	for (size_t i = 0; i < n; i++) {
		have[e[i].peer] = e[i].version;
		if (auth[e[i].peer] && e[i].version > auth_v)
			auth_v = e[i].version;
	}
	uint32_t push = 0, remove = 0, sources[PG_PEERS_MAX], n_src = 0;
	/* What to fall back to if every copy of auth_v is bad. */
	uint64_t fb_v = 0;
	bool fb_ok = false;
	for (uint32_t p = 0; p < pg->n_peers; p++)
		if (auth[p] && have[p] < auth_v) {
			fb_ok = true;
			if (have[p] > fb_v)
				fb_v = have[p];
		}
	for (uint32_t p = 0; p < pg->n_peers; p++) {
		const struct pg_peer *peer = &pg->peers[p];
		if (auth_v && have[p] == auth_v)
			sources[n_src++] = peer->osd;
		if (peer->acting_index < 0)
			continue;
		uint32_t bit = 1u << peer->acting_index;
		if (have[p] == auth_v)
			continue;
		if (have[p] && (!auth_v || have[p] > auth_v))
			remove |= bit;
		if (auth_v)
			push |= bit;
	}
	uint64_t epoch_seq = 0;
	for (size_t i = 0; i < n; i++)
		if (e[i].version >> 32 >= pg->interval && (e[i].version & 0xffffffffu) > epoch_seq)
			epoch_seq = e[i].version & 0xffffffffu;
	if (epoch_seq > pg->seq)
		pg->seq = epoch_seq;
	if (push | remove) {
		char id[64];
		LOG_DEBUG("osd.%u pg %u.%x: %s: authority %" PRIx64 ", push %x remove %x",
			  pg->o->id, pg->pool, pg->pg, object_id_str(&e[0].oid, id, sizeof(id)),
			  auth_v, push, remove);
		pg_recovery_need(pg, &e[0].oid, auth_v, push, remove, sources, n_src);
		struct pg_obj *obj = pg_obj_get(pg, &e[0].oid, false);
		if (!obj)
			return;
		obj->fallback_ok = fb_ok;
		obj->fallback_version = fb_v;
		obj->n_fallback_sources = 0;
		for (uint32_t p = 0; p < pg->n_peers; p++) {
			if (fb_v && have[p] == fb_v)
				obj->fallback_sources[obj->n_fallback_sources++] = pg->peers[p].osd;
			if (pg->peers[p].acting_index >= 0)
				obj->member_version[pg->peers[p].acting_index] = have[p];
		}
	}
}

static int pg_merge(struct osd_pg *pg)
{
	size_t total = 0;
	bool auth[PG_PEERS_MAX] = { false };
	for (uint32_t p = 0; p < pg->n_peers; p++) {
		struct pg_info info;
		auth[p] = peer_authoritative(pg, &pg->peers[p]);
		LOG_DEBUG("osd.%u pg %u.%x interval %" PRIu64 " record %" PRIu64
			  ": peer osd.%u acting %d recorded %d complete %" PRIu64 " auth %d",
			  pg->o->id, pg->pool, pg->pg, pg->interval, pg->record.epoch,
			  pg->peers[p].osd, pg->peers[p].acting_index, pg->peers[p].recorded,
			  pg->peers[p].complete_epoch, auth[p]);
		if (peer_in(&pg->peers[p]) && pg->peers[p].info &&
		    pg_info_decode(pg->peers[p].info, &info) == 0)
			total += info.count;
	}
	struct pg_merge_entry *all = calloc(total ? total : 1, sizeof(*all));
	if (!all)
		return -ENOMEM;
	size_t k = 0;
	for (uint32_t p = 0; p < pg->n_peers; p++) {
		struct pg_info info;
		if (!peer_in(&pg->peers[p]) || !pg->peers[p].info ||
		    pg_info_decode(pg->peers[p].info, &info))
			continue;
		if (info.count == 0 && pg->peers[p].acting_index > 0 && pg->phase == PG_PHASE_FULL)
			pg->backfill = true;
		for (uint32_t i = 0; i < info.count; i++, k++) {
			pg_info_entry(&info, i, &all[k].oid, &all[k].version);
			all[k].peer = p;
			if (all[k].version >> 32 > pg_map(pg)->epoch)
				LOG_ERROR("pg %u.%x: osd.%u holds a version from epoch %" PRIu64
					", after this map (%" PRIu64 ")",
					pg->pool, pg->pg, pg->peers[p].osd, all[k].version >> 32,
					pg_map(pg)->epoch);
		}
	}
	qsort(all, k, sizeof(*all), merge_cmp);
	for (size_t i = 0; i < k;) {
		size_t j = i + 1;
		/* An EC object: its chunks, clones and pending writes together. */
		while (j < k && (pg->ec ? all[i].oid.pool == all[j].oid.pool &&
						  all[i].oid.inode == all[j].oid.inode &&
						  all[i].oid.index == all[j].oid.index
					: merge_cmp(&all[i], &all[j]) == 0))
			j++;
		if (pg->ec)
			pg_ec_merge(pg, &all[i], j - i, auth);
		else
			merge_object(pg, &all[i], j - i, auth);
		i = j;
	}
	free(all);
	return 0;
}

static void pg_mark_complete(struct osd_pg *pg, uint32_t mask);

static void pg_peering_done(struct osd_pg *pg)
{
	int rc = pg_merge(pg);
	struct osd_pgs *t = pg->o->pgs;
	bool by_log = pg->phase != PG_PHASE_FULL;
	*(by_log ? &t->peerings_log : &t->peerings_full) += 1;
	LOG_DEBUG("osd.%u pg %u.%x: peered by %s (%u objects compared)", pg->o->id, pg->pool,
		  pg->pg, by_log ? "log" : "full comparison", by_log ? pg->n_cand : 0);
	peers_free(pg);
	if (rc) {
		pg_repeer(pg, "out of memory");
		return;
	}
	/* Below min_size: an EC PG whose K chunks are there serves reads
	 * (peering has heard every acknowledged write from K recorded
	 * members), and writes wait; otherwise all I/O waits. It activates
	 * and is recorded as any PG: its recovery may roll a write forward
	 * (or back), which the next peering must learn from its members. */
	pg->read_only = pg->n_acting < pg->min_size && pg->ec && pg->n_acting >= pg->ec->k;
	if (pg->n_acting < pg->min_size && !pg->read_only) {
		pg_io_reset(pg);
		pg->state = PG_STATE_UNDERSIZED;
		LOG_WARN("pg %u.%x: %u acting OSDs, below min_size %u: I/O blocks until more "
			 "are up",
			 pg->pool, pg->pg, pg->n_acting, pg->min_size);
		return;
	}
	if (pg->read_only)
		LOG_WARN("pg %u.%x: %u acting OSDs, below min_size %u: reads only, writes wait "
			 "until more are up",
			 pg->pool, pg->pg, pg->n_acting, pg->min_size);
	uint32_t incomplete = 0;
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &pg->objs) {
		struct pg_obj *x = list_entry(pos, struct pg_obj, pg_node);
		/* An EC member lacks an object only when it has no chunk of it
		 * at its version (one pending counts: it is committed later). */
		incomplete |= pg->ec ? pg_ec_lacking(x) : x->need_push | x->need_remove;
	}
	uint32_t all = pg->n_acting >= 32 ? UINT32_MAX : (1u << pg->n_acting) - 1;
	pg->complete_mask = all & ~incomplete;
	LOG_DEBUG("pg %u.%x peered: %" PRIu64 " objects to recover, complete mask %x", pg->pool,
		  pg->pg, pg->n_missing, pg->complete_mask);
	/* An EC PG needs K members holding their chunk of everything: the
	 * record names them, and they alone can rebuild every object. */
	if ((unsigned)__builtin_popcount(pg->complete_mask) < (pg->ec ? pg->ec->k : 1)) {
		/* Nobody acting holds everything: make one member whole
		 * before serving (the rest recovers while active). */
		pg->state = PG_STATE_RECOVERING;
		pg_recovery_pick_target(pg);
		pg_recovery_kick(pg->o);
		return;
	}
	pg->state = PG_STATE_ACTIVATING;
	pg_mark_complete(pg, pg->complete_mask);
	pg_recovery_kick(pg->o); /* recovery may start while the record is written */
}

/* --- the activation record ------------------------------------------------------------ */

static void pg_record_queue(struct osd_pg *pg)
{
	struct map_pg_active *r = &pg->record_want;
	memset(r, 0, sizeof(*r));
	r->pool = pg->pool;
	r->pg = pg->pg;
	r->epoch = pg->interval;
	r->primary = pg->o->id;
	/* Only members whose complete mark is durable may be named (a
	 * member that finished recovering meanwhile is marked next). */
	for (uint32_t i = 0; i < pg->n_acting; i++)
		if (pg->marked_mask & pg->complete_mask & (1u << i))
			r->osds[r->n++] = pg->acting[i];
	pg->recording = PG_RECORD_QUEUED;
	list_add_tail(&pg->o->pgs->record_queue, &pg->record_node);
}

static void pg_mark_done(struct osd_pg *pg, int index, int rc)
{
	if (!rc && index >= 0)
		pg->marked_mask |= 1u << index;
	if (rc) {
		pg_repeer(pg, "a member could not store its complete mark");
		return;
	}
	if (--pg->marks_pending == 0)
		pg_record_queue(pg);
}

static void pg_mark_reply(struct pg_call *call, int rc, struct msg *reply)
{
	struct pg_subop_reply r;
	(void)rc;
	if (pg_subop_reply_decode(reply, &r))
		r.rc = -EBADMSG;
	pg_mark_done(call->pg, pg_acting_index(call->pg, call->osd), r.rc);
}

struct mark_local {
	struct store_req req;
	struct list_node node; /* pgs->marks */
	struct osd_pg *pg;
	uint64_t gen;
};

static void pg_mark_local_done(struct store_req *req, int res)
{
	struct mark_local *ml = req->ctx;
	struct osd_pg *pg = ml->pg;
	bool current = ml->gen == pg->gen;
	list_del(&ml->node);
	free(req->buf);
	free(ml);
	pg_store_write_done(pg);
	if (current)
		pg_mark_done(pg, pg_acting_index(pg, pg->o->id), res);
}

/* The PG's record object, one 4 KiB chunk, little-endian: "BSLTPGMK",
 * the complete mark (an interval epoch); "BSLTSCRB", the last scrub and
 * deep scrub (unix seconds), a cut scrub's kind (0 none, 1, 2 deep),
 * whether it has a cursor, and the cursor (an object id). */
#define META_SCRUB_AT 16

static void pg_meta_encode(const struct osd_pg *pg, uint64_t epoch, uint8_t *buf)
{
	struct enc e;
	memset(buf, 0, 4096);
	enc_init(&e, buf, 4096);
	enc_put_bytes(&e, "BSLTPGMK", 8);
	enc_put_le64(&e, epoch);
	enc_put_bytes(&e, "BSLTSCRB", 8);
	enc_put_le64(&e, pg->last_scrub_s);
	enc_put_le64(&e, pg->last_deep_scrub_s);
	enc_put_u8(&e, pg->scrub_resume);
	enc_put_u8(&e, pg->has_scrub_cursor);
	enc_put_object_id(&e, &pg->scrub_cursor);
}

uint64_t pg_meta_decode(struct osd_pg *pg, const uint8_t *buf, size_t len)
{
	uint64_t epoch = 0;
	if (len < 4096 || memcmp(buf, "BSLTPGMK", 8))
		return 0;
	struct dec d;
	dec_init(&d, buf + 8, 4096 - 8);
	dec_get_le64(&d, &epoch);
	if (memcmp(buf + META_SCRUB_AT, "BSLTSCRB", 8) == 0) {
		uint8_t resume, has;
		struct object_id cursor;
		dec_skip(&d, 8);
		dec_get_le64(&d, &pg->last_scrub_s);
		dec_get_le64(&d, &pg->last_deep_scrub_s);
		dec_get_u8(&d, &resume);
		dec_get_u8(&d, &has);
		dec_get_object_id(&d, &cursor);
		if (!dec_status(&d) && resume <= 2) {
			pg->scrub_resume = resume;
			pg->has_scrub_cursor = has & 1;
			pg->scrub_cursor = cursor;
		}
	}
	return epoch;
}

/* Writes this OSD's complete mark for PG's interval (pg_replica.c reads it),
 * with the PG's scrub state. */
int pg_mark_write(struct osd_pg *pg, uint64_t epoch, store_done_fn done, void *ctx,
		  struct store_req *req)
{
	void *buf = NULL;
	if (posix_memalign(&buf, 4096, 4096))
		return -ENOMEM;
	/* A PG's first mark: its scrub clock starts now, so a new cluster
	 * does not scrub everything at once. */
	if (!pg->last_scrub_s)
		pg->last_scrub_s = pg->last_deep_scrub_s = io_wall_ms(pg->o->loop) / 1000;
	pg_meta_encode(pg, epoch, buf);
	*req = (struct store_req){ .op = STORE_OP_WRITE, .oid = pg_meta_oid(pg->pool, pg->pg),
				   .offset = 0, .len = 4096, .buf = buf, .done = done, .ctx = ctx,
				   /* Without its mark a PG cannot activate, and
				    * then nobody can delete to make room. */
				   .reserve = true };
	LOG_DEBUG("osd.%u pg %u.%x: marked complete in interval %" PRIu64, pg->o->id, pg->pool,
		  pg->pg, epoch);
	pg->complete_epoch = epoch;
	pg->store_writes++;
	store_submit(pg->o->store, req);
	return 0;
}

static void pg_mark_complete(struct osd_pg *pg, uint32_t mask)
{
	pg->recording = PG_RECORD_MARKING;
	pg->marking_mask = mask;
	pg->marks_pending = (unsigned)__builtin_popcount(mask);
	uint64_t gen = pg->gen;
	for (uint32_t i = 0; i < pg->n_acting && pg->gen == gen; i++) {
		if (!(mask & (1u << i)))
			continue;
		if (pg->acting[i] == pg->o->id) {
			struct mark_local *ml = calloc(1, sizeof(*ml));
			if (!ml || (ml->pg = pg, ml->gen = pg->gen,
				    pg_mark_write(pg, pg->interval, pg_mark_local_done, ml, &ml->req))) {
				free(ml);
				pg_repeer(pg, "out of memory");
				continue;
			}
			list_add_tail(&pg->o->pgs->marks, &ml->node);
			continue;
		}
		struct pg_subop op = { .type = PG_SUB_COMPLETE, .oid = pg_meta_oid(pg->pool, pg->pg) };
		if (pg_call_subop(pg, pg->acting[i], &op, NULL, pg_mark_reply, NULL, 0))
			pg_repeer(pg, "a member is unreachable");
	}
}

void pg_recovery_done(struct osd_pg *pg)
{
	uint32_t all = (1u << pg->n_acting) - 1;
	uint32_t fresh = all & ~pg->complete_mask;
	LOG_INFO("pg %u.%x: recovery done", pg->pool, pg->pg);
	pg->complete_mask = all;
	if (pg->state == PG_STATE_RECOVERING)
		pg->state = PG_STATE_ACTIVATING;
	if (pg->recording == PG_RECORD_NONE && fresh)
		pg_mark_complete(pg, fresh);
	/* else: the record being written is followed by another (pg_record_done). */
}

void pg_recovered_members(struct osd_pg *pg, uint32_t mask)
{
	BASALT_ASSERT(pg->state == PG_STATE_RECOVERING && mask);
	pg->complete_mask = mask;
	pg->state = PG_STATE_ACTIVATING;
	if (pg->recording == PG_RECORD_NONE)
		pg_mark_complete(pg, mask);
}

int osd_pg_command_next(struct osd *o, struct map_cmd *cmd)
{
	struct osd_pgs *t = o->pgs;
	if (t->n_batch || list_empty(&t->record_queue))
		return -ENOENT;
	memset(cmd, 0, sizeof(*cmd));
	cmd->type = MAP_CMD_PG_ACTIVE;
	while (!list_empty(&t->record_queue) && t->n_batch < MAP_CMD_ACTIVE_MAX) {
		struct osd_pg *pg =
			list_entry(list_first(&t->record_queue), struct osd_pg, record_node);
		list_del(&pg->record_node);
		pg->recording = PG_RECORD_SENT;
		t->batch[t->n_batch++] = (struct pg_record_slot){ pg, pg->gen };
		cmd->active[cmd->n_active] = pg->record_want;
		cmd->prev_epoch[cmd->n_active++] = pg->record.epoch;
	}
	t->batch_running = true;
	t->batch_epoch = 0;
	return 0;
}

static void pg_record_done(struct osd_pg *pg)
{
	pg->record = pg->record_want;
	pg->recording = PG_RECORD_NONE;
	if (pg->state == PG_STATE_ACTIVATING) {
		LOG_DEBUG("pg %u.%x active (interval %" PRIu64 ")", pg->pool, pg->pg, pg->interval);
		pg->state = PG_STATE_ACTIVE;
		pg_io_dispatch_waiting(pg);
	}
	uint32_t all = (1u << pg->n_acting) - 1;
	uint32_t recorded = 0;
	for (uint32_t i = 0; i < pg->n_acting; i++)
		for (uint32_t k = 0; k < pg->record.n; k++)
			if (pg->record.osds[k] == pg->acting[i])
				recorded |= 1u << i;
	/* Recovery finished while this record was being written: mark the
	 * members not marked yet, then record them all. */
	if (pg->state == PG_STATE_ACTIVE && pg->complete_mask == all && recorded != all &&
	    !pg->n_missing) {
		if (pg->marked_mask == all)
			pg_record_queue(pg);
		else
			pg_mark_complete(pg, all & ~pg->marked_mask);
		return;
	}
	pg_log_sync_maybe(pg); /* every member recorded: they hold the same */
}

static bool pg_record_matches(const struct map_pg_active *a, const struct map_pg_active *b)
{
	return a && a->epoch == b->epoch && a->primary == b->primary && a->n == b->n &&
	       memcmp(a->osds, b->osds, a->n * sizeof(a->osds[0])) == 0;
}

/* The map has caught up with the answered command: each PG of the batch
 * whose record is there is active; the others moved on and peer again. */
static void pg_batch_resolve(struct osd *o, const struct cluster_map *m)
{
	struct osd_pgs *t = o->pgs;
	uint32_t n = t->n_batch;
	struct pg_record_slot batch[MAP_CMD_ACTIVE_MAX];
	memcpy(batch, t->batch, n * sizeof(batch[0]));
	t->n_batch = 0;
	t->batch_epoch = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct osd_pg *pg = batch[i].pg;
		if (pg->gen != batch[i].gen || pg->recording != PG_RECORD_SENT)
			continue; /* the interval moved on meanwhile */
		if (pg_record_matches(map_pg_active_get(m, pg->pool, pg->pg), &pg->record_want)) {
			pg_record_done(pg);
			continue;
		}
		pg_repeer(pg, "another activation was recorded");
	}
}

void osd_pg_command_reply(struct osd *o, int rc, const char *text, uint64_t epoch)
{
	struct osd_pgs *t = o->pgs;
	t->batch_running = false;
	if (rc == 0) {
		t->batch_epoch = epoch ? epoch : 1;
		const struct cluster_map *m = monsess_map(o->mon);
		if (m->epoch >= t->batch_epoch)
			pg_batch_resolve(o, m);
		return;
	}
	uint32_t n = t->n_batch;
	t->n_batch = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct osd_pg *pg = t->batch[i].pg;
		if (pg->gen != t->batch[i].gen || pg->recording != PG_RECORD_SENT)
			continue;
		LOG_INFO("pg %u.%x: activation refused (%s; map epoch %" PRIu64 ")", pg->pool,
			 pg->pg, text, epoch);
		pg_repeer(pg, rc == -ESTALE ? "another activation was recorded"
					    : "activation refused");
		pg->repeer_at_ns =
			io_now_ns(o->loop) + (rc == -ESTALE ? PG_REPEER_DELAY_NS : IO_SEC(1));
	}
}

/* --- messages, links, tick ------------------------------------------------------------- */

bool osd_pg_msg_type(uint16_t type)
{
	return type >= OSD_MSG_PG_QUERY && type <= OSD_MSG_SUBOP_REPLY;
}

void osd_pg_message(struct osd *o, struct msgr_conn *conn, struct msg *msg)
{
	switch (msg->hdr.type) {
	case OSD_MSG_PG_QUERY:
		pg_replica_query(o, conn, msg);
		return;
	case OSD_MSG_SUBOP:
		pg_replica_subop(o, conn, msg);
		return;
	case OSD_MSG_PG_INFO:
	case OSD_MSG_SUBOP_REPLY:
		call_reply(o, conn, msg);
		return;
	default:
		msg_free(msg);
	}
}

struct peer_down_arg {
	uint32_t osd;
};

static void pg_peer_down_one(struct osd_pg *pg, void *arg)
{
	uint32_t osd = ((struct peer_down_arg *)arg)->osd;
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &pg->calls) {
		struct pg_call *c = list_entry(pos, struct pg_call, pg_node);
		if (c->osd != osd)
			continue;
		if (pg->state == PG_STATE_PEERING) {
			/* Only a query: ask again on the next tick. */
			call_unlink(c);
			free(c);
			continue;
		}
		char why[64];
		snprintf(why, sizeof(why), "the link to osd.%u dropped", osd);
		pg_repeer(pg, why);
		return;
	}
}

void osd_pg_peer_down(struct osd *o, uint32_t osd)
{
	struct peer_down_arg a = { osd };
	if (o->pgs)
		pg_for_each(o, pg_peer_down_one, &a);
}

void osd_pg_conn_closed(struct osd *o, struct msgr_conn *conn)
{
	struct list_node *pgpos;
	list_for_each(pgpos, &o->pgs->all) {
		struct osd_pg *pg = list_entry(pgpos, struct osd_pg, all_node);
		struct list_node *pos, *tmp;
		list_for_each_safe(pos, tmp, &pg->ops) {
			struct pg_op *op = list_entry(pos, struct pg_op, pg_node);
			if (op->conn == conn)
				op->conn = NULL;
		}
	}
	pg_replica_conn_closed(o, conn);
	pg_snap_conn_closed(o, conn);
}

static void pg_tick_one(struct osd_pg *pg, void *arg)
{
	uint64_t now = *(uint64_t *)arg;
	switch (pg->state) {
	case PG_STATE_PEERING:
		if (pg->repeer_at_ns) {
			if (now >= pg->repeer_at_ns)
				pg_peering_start(pg);
			return;
		}
		for (uint32_t i = 0; i < pg->n_peers; i++) {
			struct pg_peer *p = &pg->peers[i];
			bool waiting = pg->phase == PG_PHASE_SUMMARY ? !p->replied
								     : peer_in(p) && !p->answered;
			if (!waiting || now - p->sent_ns < PG_QUERY_RETRY_NS)
				continue;
			if (pg->phase != PG_PHASE_SUMMARY && p->tries >= 3) {
				/* Gone since its summary: start over without it. */
				pg_repeer(pg, "a member stopped answering");
				return;
			}
			peer_query_sent(pg, p);
			if (pg->state != PG_STATE_PEERING)
				return;
		}
		return;
	case PG_STATE_ACTIVE:
		pg_log_sync_maybe(pg); /* a marker after a quiet second */
		return;
	case PG_STATE_INCOMPLETE:
		if (now >= pg->repeer_at_ns) {
			pg_reset(pg);
			pg->state = PG_STATE_PEERING;
			pg_peering_start(pg);
		}
		return;
	default:
		return;
	}
}

void osd_pg_tick(struct osd *o, uint64_t now)
{
	if (!o->pgs)
		return;
	pg_for_each(o, pg_tick_one, &now);
	pg_recovery_kick(o);
	pg_scrub_tick(o, now);
}

/* --- stats --------------------------------------------------------------------------- */

static uint16_t pg_flags(const struct osd_pg *pg)
{
	uint16_t f = 0;
	bool short_of_copies = pg->n_acting < pg->size;
	switch (pg->state) {
	case PG_STATE_IDLE: return 0;
	case PG_STATE_PEERING: return MON_PG_PEERING;
	case PG_STATE_INCOMPLETE: return MON_PG_INCOMPLETE;
	case PG_STATE_UNDERSIZED: return MON_PG_PEERED | MON_PG_UNDERSIZED | MON_PG_DEGRADED;
	case PG_STATE_RECOVERING: f = MON_PG_PEERED | MON_PG_DEGRADED; break;
	case PG_STATE_ACTIVATING: f = MON_PG_ACTIVATING; break;
	case PG_STATE_ACTIVE: f = MON_PG_ACTIVE | (pg->read_only ? MON_PG_READ_ONLY : 0); break;
	}
	if (short_of_copies)
		f |= MON_PG_UNDERSIZED | MON_PG_DEGRADED;
	if (pg->n_missing)
		f |= MON_PG_DEGRADED | (pg->backfill ? MON_PG_BACKFILLING : MON_PG_RECOVERING);
	if (pg->n_missing && io_now_ns(pg->o->loop) < pg->toofull_until_ns)
		f |= MON_PG_BACKFILL_TOOFULL;
	uint32_t all = (1u << pg->n_acting) - 1;
	bool recorded_all = pg->record.epoch == pg->interval && pg->record.n == pg->n_acting;
	if (pg->state == PG_STATE_ACTIVE && !short_of_copies && !pg->n_missing &&
	    pg->complete_mask == all && recorded_all && pg->recording == PG_RECORD_NONE)
		f |= MON_PG_CLEAN;
	return f;
}

int osd_pg_stats(struct osd *o, struct mon_osd_stats *st)
{
	const struct cluster_map *m = monsess_map(o->mon);
	st->recovered_objects = o->pgs->rec_objects_total;
	st->recovered_bytes = o->pgs->rec_bytes_total;
	uint32_t total = 0;
	for (uint32_t i = 0; i < m->n_pools; i++)
		total += m->pools[i].pg_num;
	st->pgs = total ? calloc(total, sizeof(*st->pgs)) : NULL;
	if (total && !st->pgs)
		return -ENOMEM;
	for (uint32_t i = 0; i < m->n_pools; i++) {
		const struct map_pool *p = &m->pools[i];
		for (uint32_t id = 0; id < p->pg_num; id++) {
			uint64_t objects, bytes;
			int rc = store_pg_usage(o->store, p->id, p->pg_num, id, &objects, &bytes);
			if (rc)
				return rc;
			if (objects)
				pg_stray_check(o, p, id);
			struct osd_pg *pg = pg_get(o, p->id, id, false);
			if (!pg || pg->state == PG_STATE_IDLE)
				continue;
			uint64_t short_by = pg->size > pg->n_acting ? pg->size - pg->n_acting : 0;
			st->pgs[st->n_pgs++] = (struct mon_pg_stat){
				.pool = p->id, .pg = id, .primary = o->id, .state = pg_flags(pg),
				.objects = objects, .bytes = bytes,
				.degraded = pg->degraded + objects * short_by,
				.missing = pg->n_missing };
			pg_scrub_stat(pg, &st->pgs[st->n_pgs - 1]);
		}
	}
	return 0;
}

struct pg_check_totals {
	unsigned scrubbing;
	uint64_t log_entries;
};

static void pg_summary_one(struct osd_pg *pg, void *arg)
{
	struct osd_pg_summary *s = arg;
	if (pg->state == PG_STATE_IDLE)
		return;
	uint16_t f = pg_flags(pg);
	s->primary++;
	s->active += (f & MON_PG_ACTIVE) != 0;
	s->clean += (f & MON_PG_CLEAN) != 0;
	s->missing += pg->n_missing;
}

/* pg_int.h, invariants 1, 5, 6, 7, 8 and 9, for one PG. */
static void pg_check_one(struct osd_pg *pg, void *arg)
{
	struct pg_check_totals *tot = arg;
	struct osd *o = pg->o;
	pg_log_check(pg); /* 9 */
	tot->log_entries += pg->log.n;
	if (pg->state != PG_STATE_IDLE) /* 1 */
		BASALT_ASSERT(pg->known && pg->n_acting && pg->acting[0] == o->id);
	BASALT_ASSERT(pg->seq < (1ull << 32)); /* 6 */
	const struct list_node *pos;
	list_for_each(pos, &pg->ops) {
		const struct pg_op *op = list_entry(pos, struct pg_op, pg_node);
		BASALT_ASSERT(op->pg == pg);
		if (op->dispatched) /* 1 */
			BASALT_ASSERT(pg->state == PG_STATE_ACTIVE);
		bool writes = op->op.type == OSD_OP_WRITE || op->op.type == OSD_OP_DELETE;
		if (op->dispatched && writes && op->version) /* 6 */
			BASALT_ASSERT(op->version >> 32 >= pg->interval &&
				      op->version >> 32 <= pg_map(pg)->epoch &&
				      (op->version & 0xffffffffu) <= pg->seq);
	}
	unsigned dispatched_writes = 0;
	list_for_each(pos, &pg->ops) {
		const struct pg_op *op = list_entry(pos, struct pg_op, pg_node);
		dispatched_writes += op->obj && op->dispatched && op->version &&
				     (op->op.type == OSD_OP_WRITE || op->op.type == OSD_OP_DELETE) &&
				     !op->answered;
	}
	/* 9: a marker waits for no write in flight; every one is counted. */
	BASALT_ASSERT(pg->writes_inflight >= dispatched_writes);
	if (pg->writes_inflight)
		BASALT_ASSERT(pg->state == PG_STATE_ACTIVE);
	uint32_t unfound = 0;
	list_for_each(pos, &pg->objs) {
		const struct pg_obj *obj = list_entry(pos, struct pg_obj, pg_node);
		BASALT_ASSERT(obj->pg == pg);
		BASALT_ASSERT(obj->writes <= 1 && (!obj->writes || !obj->reads)); /* 5 */
		if (obj->reads || obj->writes) /* 1 */
			BASALT_ASSERT(pg->state == PG_STATE_ACTIVE);
		unfound += obj->unfound;
	}
	BASALT_ASSERT(unfound == pg->n_unfound); /* 8 */
	pg_scrub_check(pg); /* 7 */
	tot->scrubbing += pg->scrub != NULL;
}

void osd_pg_check(struct osd *o)
{
	struct pg_check_totals tot = { 0, 0 };
	pg_for_each(o, pg_check_one, &tot);
	BASALT_ASSERT(tot.scrubbing == o->pgs->scrubs_running && tot.scrubbing <= 1); /* 7 */
	BASALT_ASSERT(tot.log_entries == o->pgs->log_entries); /* 9 */
}

void osd_pg_summary(struct osd *o, struct osd_pg_summary *out)
{
	memset(out, 0, sizeof(*out));
	if (o->pgs) {
		out->map_epoch = o->pgs->map_epoch;
		out->peerings_log = o->pgs->peerings_log;
		out->peerings_full = o->pgs->peerings_full;
		out->peering_bytes = o->pgs->peering_bytes;
		pg_for_each(o, pg_summary_one, out);
	}
}

/* --- life cycle ------------------------------------------------------------------------ */

static void pg_detach_one(struct osd_pg *pg, void *arg)
{
	(void)arg;
	pg_reset(pg);
}

void osd_pg_detach(struct osd *o)
{
	o->stopping = true;
	if (!o->pgs)
		return;
	pg_for_each(o, pg_detach_one, NULL);
	pg_replica_detach(o);
}

static void pg_forget_one(struct osd_pg *pg, void *arg)
{
	(void)arg;
	calls_drop(pg);
	pg_io_forget(pg);
	pg_recovery_forget(pg);
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &pg->objs)
		pg_obj_free(list_entry(pos, struct pg_obj, pg_node));
	peers_free(pg);
	if (list_linked(&pg->record_node))
		list_del(&pg->record_node);
	if (pg->complete_epoch == UINT64_MAX - 1)
		free(pg->meta_read.buf);
	if (pg->log.loading) {
		free(pg->log.req.buf);
		pg->log.req.buf = NULL;
		pg->log.loading = false;
	}
	pg_scrub_reset(pg);
	if (pg->stamp_inflight)
		free(pg->stamp_req.buf);
}

void osd_pg_forget(struct osd *o)
{
	struct osd_pgs *t = o->pgs;
	o->forgetting = true;
	if (!t)
		return;
	pg_for_each(o, pg_forget_one, NULL);
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &t->marks) {
		struct mark_local *ml = list_entry(pos, struct mark_local, node);
		free(ml->req.buf);
		free(ml);
	}
	pg_replica_forget(o);
}

static void pg_free_one(struct osd_pg *pg, void *arg)
{
	(void)arg;
	pg_log_free(pg);
	pg_ec_free(pg);
	free(pg);
}

void osd_pg_fini(struct osd *o)
{
	struct osd_pgs *t = o->pgs;
	if (!t)
		return;
	pg_replica_fini(o);
	pg_snap_syncs_free(o);
	pg_snap_fini(o);
	if (t->buckets)
		pg_for_each(o, pg_free_one, NULL);
	free(t->buckets);
	free(t->call_buckets);
	free(t->obj_buckets);
	free(t);
	o->pgs = NULL;
}
