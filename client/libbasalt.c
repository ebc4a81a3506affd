/* libbasalt (see libbasalt.h): operations routed by the client's own
 * placement, resent until answered.
 *
 * An operation is either in flight (in the tid table, sent to one OSD)
 * or waiting (on the waiting list, with a time to try again). Every
 * attempt carries the operation's one request id, so the OSDs recognise
 * a resend of a write or delete they answered already. */
#include "libbasalt.h"
#include "libbasalt_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cluster/monsess.h"
#include "common/keyring.h"
#include "common/auth.h"
#include "common/log.h"
#include "common/msgr.h"
#include "common/cluster/mon_members.h"
#include "common/cluster/mon_proto.h"
#include "common/cluster/osd_proto.h"
#include "common/why.h"

static struct bs_op **slot(struct bs_client *c, uint64_t tid)
{
	return &c->buckets[(tid * 0x9E3779B97F4A7C15ULL >> 40) % BS_BUCKETS];
}

static void unhash(struct bs_client *c, struct bs_op *op)
{
	struct bs_op **p = slot(c, op->tid);
	while (*p && *p != op)
		p = &(*p)->hash_next;
	if (*p)
		*p = op->hash_next;
	op->in_flight = false;
}

/* A pinned OP's buffer is to be given back or rewritten: drops the
 * connection receiving into it (the release follows, see rx_release). */
static void rx_abort(struct bs_op *op)
{
	if (op->rx_conn)
		msgr_conn_reset(op->rx_conn, -ECANCELED,
				"a read being received was given up (timed out, moved or cancelled)");
}

static void complete(struct bs_client *c, struct bs_op *op, int rc)
{
	if (op->in_flight)
		unhash(c, op);
	if (list_linked(&op->waiting))
		list_del(&op->waiting);
	if (op->rx_conn) {
		op->done_deferred = true;
		op->done_rc = rc;
		list_add_tail(&c->deferred, &op->waiting);
		rx_abort(op);
		return;
	}
	c->stats.ops++;
	op->done(op, rc);
}

/* Answers the deferred operations whose buffer was released. */
static void complete_deferred(struct bs_client *c)
{
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &c->deferred) {
		struct bs_op *op = list_entry(pos, struct bs_op, waiting);
		if (op->rx_conn)
			continue;
		list_del(&op->waiting);
		op->done_deferred = false;
		c->stats.ops++;
		op->done(op, op->done_rc);
	}
}

/* Puts OP back to wait until AT (or a newer map). */
static void park(struct bs_client *c, struct bs_op *op, uint64_t at)
{
	if (op->in_flight)
		unhash(c, op);
	rx_abort(op);
	op->retry_at_ns = at;
	if (!list_linked(&op->waiting))
		list_add_tail(&c->waiting, &op->waiting);
}

static uint64_t backoff_ns(const struct bs_op *op)
{
	uint64_t d = BS_RETRY_MIN_NS << (op->attempts < 5 ? op->attempts : 5);
	return d > BS_RETRY_MAX_NS ? BS_RETRY_MAX_NS : d;
}

static struct msgr_conn *link_to(struct bs_client *c, const struct cluster_map *m, uint32_t id)
{
	const struct map_osd *mo = &m->osds[id];
	struct bs_link *l = &c->links[id];
	if (l->conn && (strcmp(l->addr, mo->addr) || l->up_from != mo->up_from)) {
		msgr_conn_close(l->conn); /* restarted or moved */
		l->conn = NULL;
	}
	if (!l->conn) {
		char host[MAP_ADDR_MAX];
		uint16_t port;
		if (cfg_parse_hostport(mo->addr, host, sizeof(host), &port) ||
		    msgr_connect(c->msgr, host, port, &l->conn))
			return NULL;
		snprintf(l->addr, sizeof(l->addr), "%s", mo->addr);
		l->up_from = mo->up_from;
	}
	return l->conn;
}

static const uint8_t op_types[] = { [BS_READ] = OSD_OP_READ, [BS_WRITE] = OSD_OP_WRITE,
				    [BS_DELETE] = OSD_OP_DELETE, [BS_STAT] = OSD_OP_STAT,
				    [BS_SCRUB] = OSD_OP_SCRUB, [BS_LIST] = OSD_OP_LIST,
				    [BS_SYNC] = OSD_OP_SYNC };

/* Operations sent to one OSD named in oid.inode, not to an object's PG. */
static bool op_to_osd(const struct bs_op *op)
{
	return op->type == BS_LIST || op->type == BS_SYNC ||
	       (op->type == BS_SCRUB && op->oid.index == OSD_SCRUB_ALL);
}

/* Where OP goes: the primary of its object's PG (a scrub: of its PG, or
 * the OSD it names). Fills ACTING; returns how many (0: none up). */
static size_t op_target(const struct cluster_map *m, const struct map_pool *p,
			const struct bs_op *op, uint32_t *acting)
{
	if (op_to_osd(op)) {
		uint64_t id = op->oid.inode;
		if (id >= m->n_osds || !m->osds[id].exists || !m->osds[id].up)
			return 0;
		acting[0] = (uint32_t)id;
		return 1;
	}
	uint32_t pg = op->type == BS_SCRUB ? (uint32_t)op->oid.index
					   : object_pg(&op->oid, p->pg_num);
	return map_pg_acting(m, p, pg, acting, MAP_PG_ACTING_MAX);
}

/* Sends OP to its primary, or parks it until one is known; a pool that
 * does not exist fails it (from the tick only: IN_SUBMIT parks it). */
static void send_op(struct bs_client *c, struct bs_op *op, bool in_submit)
{
	uint64_t now = io_now_ns(c->loop);
	if (list_linked(&op->waiting))
		list_del(&op->waiting);
	if (op->rx_conn) { /* an old attempt's reply still lands in BUF */
		park(c, op, now + BS_RETRY_MIN_NS);
		return;
	}
	if ((c->fenced || c->key_gone) && !in_submit) {
		complete(c, op, c->key_gone ? -EACCES : -ESHUTDOWN);
		return;
	}
	if (c->key_gone) {
		park(c, op, now);
		io_timer_arm(c->loop, &c->tick, 0);
		return;
	}
	if (c->fenced || !monsess_have_map(c->mon)) {
		park(c, op, now + BS_RETRY_MAX_NS);
		return;
	}
	const struct cluster_map *m = monsess_map(c->mon);
	const struct map_pool *p = map_pool_by_id(m, op->oid.pool);
	bool scrub_all = (op->type == BS_SCRUB && op->oid.index == OSD_SCRUB_ALL) ||
			 op->type == BS_SYNC;
	if (scrub_all)
		p = NULL; /* any pool */
	if (!p && !scrub_all && in_submit) {
		park(c, op, now);
		io_timer_arm(c->loop, &c->tick, 0);
		return;
	}
	if (!p && !scrub_all) {
		complete(c, op, -ENOENT);
		return;
	}
	if (op->type == BS_SCRUB && !scrub_all && op->oid.index >= p->pg_num) {
		op->reqid = 0; /* no such PG: the tick answers -EINVAL */
		park(c, op, 0);
		io_timer_arm(c->loop, &c->tick, 0);
		return;
	}
	if (op->type == BS_WRITE && !(op->flags & BS_OP_FULL_TRY) && map_pool_full(m, p, NULL, 0)) {
		/* Refused at once (never from inside bs_submit) rather than
		 * sent for the OSD to refuse. */
		if (in_submit) {
			park(c, op, now);
			io_timer_arm(c->loop, &c->tick, 0);
		} else {
			complete(c, op, -ENOSPC);
		}
		return;
	}
	uint32_t acting[MAP_PG_ACTING_MAX];
	size_t n = op_target(m, p, op, acting);
	if (!n && (op->type == BS_LIST || op->type == BS_SYNC)) { /* that OSD is down */
		if (in_submit) {
			park(c, op, now);
			io_timer_arm(c->loop, &c->tick, 0);
		} else {
			complete(c, op, -EHOSTDOWN);
		}
		return;
	}
	struct msgr_conn *conn = n ? link_to(c, m, acting[0]) : NULL;
	if (!conn) { /* no OSD of its PG is up: wait for the map */
		park(c, op, now + BS_RETRY_MAX_NS);
		return;
	}
	if (!msgr_conn_up(conn)) {
		/* Only on a live link: an attempt queued on a link that is
		 * down could reach the OSD long after the operation was done
		 * elsewhere (when it restarts, knowing nothing of it) and
		 * write old data over new. Parked until the link is up. */
		park(c, op, now + BS_RETRY_MAX_NS);
		return;
	}
	struct osd_op wire = { .client = c->client_id, .reqid = op->reqid, .epoch = m->epoch,
			       .type = op_types[op->type], .oid = op->oid,
			       .offset = op->offset, .len = op->len,
			       .flags = (op->flags & BS_OP_FULL_TRY ? OSD_OP_FLAG_FULL_TRY : 0) |
					(op->flags & BS_OP_DEEP ? OSD_OP_FLAG_DEEP : 0) |
					(op->flags & BS_OP_CREATE ? OSD_OP_FLAG_CREATE : 0) };
	if (op->type == BS_LIST || op->type == BS_SYNC)
		wire.oid = (struct object_id){ .pool = op->oid.pool }; /* the whole pool */
	uint64_t waited_ms = (now - op->started_ns) / 1000000;
	wire.age_ms = waited_ms > UINT32_MAX ? UINT32_MAX : (uint32_t)waited_ms;
	bool write = op->type == BS_WRITE;
	/* A copy of the data: an attempt queued on a link that is down may
	 * outlive the operation. */
	struct msg *msg = osd_op_encode(&wire, write ? op->buf : NULL, write ? op->len : 0);
	if (!msg) {
		park(c, op, now + BS_RETRY_MIN_NS);
		return;
	}
	op->tid = msg->hdr.request_id = ++c->next_tid;
	if (msgr_send(conn, msg)) {
		msg_free(msg);
		park(c, op, now + BS_RETRY_MIN_NS);
		return;
	}
	if (op->attempts++)
		c->stats.resends++;
	op->osd = acting[0];
	op->sent_ns = now;
	op->in_flight = true;
	struct bs_op **b = slot(c, op->tid);
	op->hash_next = *b;
	*b = op;
}

void bs_submit(struct bs_client *c, struct bs_op *op)
{
	op->reqid = ++c->next_reqid;
	op->started_ns = io_now_ns(c->loop);
	op->attempts = 0;
	op->in_flight = false;
	op->rx_conn = NULL;
	op->client = c;
	op->done_deferred = false;
	op->version = op->size = 0;
	list_init(&op->waiting);
	bool ranged = op->type == BS_READ || op->type == BS_WRITE;
	if (op->type < BS_READ || op->type > BS_SYNC || !object_id_valid(&op->oid) ||
	    (ranged && (!op->len || op->offset % 4096 || op->len % 4096 || !op->buf))) {
		/* Refused, but never from inside the call: the tick answers. */
		op->reqid = 0;
		park(c, op, 0);
		io_timer_arm(c->loop, &c->tick, 0);
		return;
	}
	send_op(c, op, true);
}

int bs_list_entry(const struct bs_op *op, size_t i, struct object_id *oid, uint64_t *version,
		  uint64_t *size)
{
	if (op->type != BS_LIST || !op->buf || (i + 1) * OSD_LIST_ENTRY_LEN > op->len)
		return -ENOENT;
	struct dec d;
	dec_init(&d, (const uint8_t *)op->buf + i * OSD_LIST_ENTRY_LEN, OSD_LIST_ENTRY_LEN);
	dec_get_object_id(&d, oid);
	dec_get_le64(&d, version);
	return dec_get_le64(&d, size);
}

static struct bs_op *find_tid(struct bs_client *c, uint64_t tid)
{
	struct bs_op *op = *slot(c, tid);
	while (op && op->tid != tid)
		op = op->hash_next;
	return op;
}

/* The messenger's data_dest: a successful read's data goes straight into
 * its buffer, when the reply is the one expected (the operation in
 * flight on that link, with its length). That pins the operation. */
static void data_dest(struct msgr_conn *conn, struct msg *msg);

/* No socket receive writes into OP's buffer any more (msg_release_fn):
 * unpinned, the operation may be answered or resent. */
static void rx_release(struct msg *msg)
{
	struct bs_op *op = msg->data_owner;
	struct bs_client *c = op->client;
	op->rx_conn = NULL;
	msg->data = NULL;
	msg->data_release = NULL;
	if (c->destroying)
		return; /* bs_client_destroy answers it */
	if (op->done_deferred || list_linked(&op->waiting)) {
		op->retry_at_ns = 0;
		io_timer_arm(c->loop, &c->tick, 0);
	}
}

static void data_dest(struct msgr_conn *conn, struct msg *msg)
{
	struct bs_client *c = msgr_ctx(msgr_conn_msgr(conn));
	struct osd_op_reply r;
	if (c->destroying || msg->hdr.type != OSD_MSG_OP_REPLY || osd_op_reply_decode(msg, &r) ||
	    r.rc != 0)
		return;
	struct bs_op *op = find_tid(c, msg->hdr.request_id);
	if (!op || op->type != BS_READ || !op->in_flight || op->rx_conn ||
	    c->links[op->osd].conn != conn || msg->hdr.data_len != op->len)
		return;
	msg_borrow_data(msg, op->buf, op->len, rx_release, op);
	op->rx_conn = conn;
}

static void on_reply(struct bs_client *c, struct msgr_conn *conn, struct msg *msg)
{
	struct bs_op *op = find_tid(c, msg->hdr.request_id);
	/* Received into a read's buffer: whole, checked, nothing writes
	 * there any more. */
	struct bs_op *direct = msg->data_release == rx_release ? msg->data_owner : NULL;
	if (direct)
		rx_release(msg);
	struct osd_op_reply r;
	if (!op || c->links[op->osd].conn != conn || (direct && direct != op))
		return; /* an attempt we gave up on */
	if (osd_op_reply_decode(msg, &r)) {
		LOG_WARN("malformed reply from osd.%u", op->osd);
		park(c, op, io_now_ns(c->loop) + backoff_ns(op));
		return;
	}
	if (r.rc == -ESHUTDOWN && !c->fenced) {
		/* Fenced: the map saying so may not have reached us yet. */
		LOG_ERROR("osd.%u refused this client (%016llx): it was fenced; every operation "
			  "fails from now on", op->osd, (unsigned long long)c->client_id);
		c->fenced = true;
		complete(c, op, r.rc);
		bs_fail_all(c, -ESHUTDOWN);
		return;
	}
	if (r.rc == -EAGAIN) { /* not the primary, or its PG is not ready */
		park(c, op, io_now_ns(c->loop) + backoff_ns(op));
		return;
	}
	if (r.rc == -ENOENT && op->type == BS_DELETE && op->attempts > 1)
		r.rc = 0; /* an earlier attempt removed it */
	if (r.rc == 0 && op->type == BS_READ) {
		if (msg->hdr.data_len != op->len) {
			park(c, op, io_now_ns(c->loop) + backoff_ns(op));
			return;
		}
		if (!direct)
			memcpy(op->buf, msg->data, op->len);
	}
	if (r.rc == 0 && op->type == BS_LIST) {
		op->buf = malloc(msg->hdr.data_len ? msg->hdr.data_len : 1);
		if (!op->buf) {
			park(c, op, io_now_ns(c->loop) + backoff_ns(op));
			return;
		}
		if (msg->hdr.data_len) /* an empty answer has no data at all */
			memcpy(op->buf, msg->data, msg->hdr.data_len);
		op->len = msg->hdr.data_len;
	}
	op->version = r.version;
	op->size = r.size;
	complete(c, op, r.rc);
}

/* Parks, to retry at AT, every operation in flight that MATCH(c, op,
 * arg) picks. In two passes: parking a pinned one resets its link, whose
 * DOWN parks others from inside the walk. */
static void park_matching(struct bs_client *c, bool (*match)(struct bs_client *c,
							     const struct bs_op *op, const void *arg),
			  const void *arg, uint64_t at)
{
	struct list_node picked;
	list_init(&picked);
	for (uint32_t b = 0; b < BS_BUCKETS; b++)
		for (struct bs_op *op = c->buckets[b], *next; op; op = next) {
			next = op->hash_next;
			if (match(c, op, arg)) {
				unhash(c, op);
				if (list_linked(&op->waiting))
					list_del(&op->waiting);
				list_add_tail(&picked, &op->waiting);
			}
		}
	while (!list_empty(&picked)) {
		struct bs_op *op = list_entry(list_first(&picked), struct bs_op, waiting);
		list_del(&op->waiting);
		park(c, op, at);
	}
}

void bs_fail_all(struct bs_client *c, int rc)
{
	for (uint32_t b = 0; b < BS_BUCKETS; b++)
		while (c->buckets[b])
			complete(c, c->buckets[b], rc);
	while (!list_empty(&c->waiting))
		complete(c, list_entry(list_first(&c->waiting), struct bs_op, waiting), rc);
}

/* --- messenger and monitors ---------------------------------------------------------- */

static void on_message(struct msgr_conn *conn, struct msg *msg)
{
	struct bs_client *c = msgr_ctx(msgr_conn_msgr(conn));
	if (monsess_owns(c->mon, conn)) {
		monsess_handle(c->mon, conn, msg);
		return;
	}
	if (msg->hdr.type == OSD_MSG_OP_REPLY)
		on_reply(c, conn, msg);
	msg_free(msg);
}

static bool on_link(struct bs_client *c, const struct bs_op *op, const void *conn)
{
	return c->links[op->osd].conn == conn;
}

/* A link to an OSD dropped: what was in flight there goes again. */
static void on_event(struct msgr_conn *conn, enum msgr_event ev, int err)
{
	struct bs_client *c = msgr_ctx(msgr_conn_msgr(conn));
	if (c->mon && monsess_owns(c->mon, conn)) {
		if (ev == MSGR_EV_DOWN)
			monsess_note_down(c->mon, conn, err);
		monsess_event(c->mon, conn, ev);
		return;
	}
	if (c->destroying)
		return;
	if (ev == MSGR_EV_UP) { /* what waited for this link goes now */
		struct list_node *pos, *tmp;
		list_for_each_safe(pos, tmp, &c->waiting)
			list_entry(pos, struct bs_op, waiting)->retry_at_ns = 0;
		io_timer_arm(c->loop, &c->tick, 0);
		return;
	}
	if (ev != MSGR_EV_DOWN)
		return;
	park_matching(c, on_link, conn, io_now_ns(c->loop) + BS_RETRY_MIN_NS);
}

static bool type_ok(uint16_t type, void *arg)
{
	(void)arg;
	return type == MON_MSG_MAP || type == MON_MSG_MAP_INC || type == MON_MSG_COMMAND_REPLY ||
	       type == OSD_MSG_OP_REPLY;
}

static const struct msgr_handler handler = { .on_message = on_message,
					     .on_event = on_event,
					     .type_ok = type_ok,
					     .data_dest = data_dest };

/* A newer map: everything waiting goes now, and what is in flight to an
 * OSD that is no longer its primary goes again. */
bool bs_client_may(struct bs_client *c, uint32_t pool, uint64_t inode, bool *may_write)
{
	const struct cluster_map *m = monsess_map(c->mon);
	const struct map_key *k = map_key_by_entity(m, c->p.entity);
	struct map_caps caps;
	if (!k || map_caps_parse(k->caps, &caps, NULL, 0)) {
		*may_write = !k; /* not a map key: one of the cluster's own */
		return !k;
	}
	*may_write = map_caps_object(m, &caps, 'w', pool, inode, OBJECT_SNAP_HEAD);
	return map_caps_object(m, &caps, 'r', pool, inode, OBJECT_SNAP_HEAD);
}

/* Whether map M took our key away (see struct bs_client). */
static bool key_gone(struct bs_client *c, const struct cluster_map *m)
{
	const struct map_key *k = map_key_by_entity(m, c->p.entity);
	bool valid = k && map_key_id_valid(k, c->key_id, NULL);
	c->key_in_map |= valid;
	if (!c->key_in_map || valid || c->key_gone)
		return false;
	LOG_ERROR("the map of epoch %" PRIu64 " %s the key of %s: every operation fails now", m->epoch,
		  k ? "no longer accepts" : "removed", c->p.entity);
	return true;
}

/* Whether OP's primary in map M is no longer the OSD it went to. */
static bool moved(struct bs_client *c, const struct bs_op *op, const void *arg)
{
	const struct cluster_map *m = arg;
	(void)c;
	const struct map_pool *p = map_pool_by_id(m, op->oid.pool);
	uint32_t acting[MAP_PG_ACTING_MAX];
	/* (a LIST's OSD gone down: parked, then answered -EHOSTDOWN) */
	size_t n = p || op_to_osd(op) ? op_target(m, p, op, acting) : 0;
	return !n || acting[0] != op->osd;
}

static bool attempt_late(struct bs_client *c, const struct bs_op *op, const void *arg)
{
	return io_now_ns(c->loop) - op->sent_ns >= *(const uint64_t *)arg;
}

static void on_map(void *ctx, const struct cluster_map *m, bool stale)
{
	struct bs_client *c = ctx;
	(void)stale;
	c->stats.map_updates++;
	if (key_gone(c, m)) {
		c->key_gone = true;
		bs_fail_all(c, -EACCES);
	}
	bs_lock_map(c, m);
	if (c->fenced)
		return;
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &c->waiting)
		list_entry(pos, struct bs_op, waiting)->retry_at_ns = 0;
	park_matching(c, moved, m, 0);
	io_timer_arm(c->loop, &c->tick, 0);
}

static void tick(struct io_timer *t)
{
	struct bs_client *c = t->ctx;
	uint64_t now = io_now_ns(c->loop);
	if (now - c->last_mon_tick >= IO_MS(100)) {
		c->last_mon_tick = now;
		monsess_tick(c->mon, now);
		bs_lock_tick(c, now);
	}
	complete_deferred(c);
	uint64_t attempt_ns = IO_MS(c->p.attempt_timeout_ms);
	uint64_t op_ns = IO_MS(c->p.op_timeout_ms);
	park_matching(c, attempt_late, &attempt_ns, now); /* unanswered: try again */
	/* Sending may park operations again (at the tail): take a snapshot. */
	struct list_node ready;
	list_init(&ready);
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &c->waiting) {
		struct bs_op *op = list_entry(pos, struct bs_op, waiting);
		if (!op->reqid) {
			complete(c, op, -EINVAL);
		} else if (op_ns && now - op->started_ns >= op_ns) {
			c->stats.timeouts++;
			complete(c, op, -ETIMEDOUT);
		} else if (op->retry_at_ns <= now) {
			list_del(&op->waiting);
			list_add_tail(&ready, &op->waiting);
		}
	}
	list_for_each_safe(pos, tmp, &ready)
		send_op(c, list_entry(pos, struct bs_op, waiting), false);
	io_timer_arm(c->loop, &c->tick, BS_TICK_NS);
}

/* --- life cycle ------------------------------------------------------------------------ */

int bs_client_create(struct io_loop *loop, struct cfg *cfg, const struct bs_client_params *p,
		     struct bs_client **out, char *why, size_t why_len)
{
	struct bs_client *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->loop = loop;
	c->p = *p;
	if (!c->p.entity)
		c->p.entity = "client.admin";
	if (!c->p.attempt_timeout_ms)
		c->p.attempt_timeout_ms = 5000;
	list_init(&c->waiting);
	list_init(&c->deferred);
	io_timer_init(&c->tick, tick, c);
	bs_lock_init(c);
	c->client_id = io_random(loop) | 1;
	int rc = mon_members(cfg, c->members, &c->n_members, why, why_len);
	if (!rc)
		rc = keyring_load(p->keyring, &c->keyring, why, why_len);
	uint8_t key[KEYRING_KEY_LEN];
	if (!rc && keyring_find(c->keyring, c->p.entity, key) == 0) {
		auth_key_id(key, c->key_id);
		explicit_bzero(key, sizeof(key));
	}
	if (!rc && !(c->links = calloc(MAP_MAX_OSDS, sizeof(*c->links))))
		rc = -ENOMEM;
	struct msgr_params mp;
	msgr_params_default(&mp);
	mp.name = c->p.entity;
	mp.keyring = c->keyring;
	mp.handler = &handler;
	mp.ctx = c;
	mp.backoff_max_ns = IO_MS(200);
	if (!rc)
		rc = msgr_params_config(cfg, c->p.entity, &mp, why, why_len);
	if (!rc && (rc = msgr_create(loop, &mp, &c->msgr)))
		snprintf(why, why_len, "cannot start the messenger: %s", strerror(-rc));
	struct monsess_params ms = { .msgr = c->msgr, .members = c->members,
				     .n_members = c->n_members, .on_map = on_map,
				     .on_reply = bs_lock_reply, .ctx = c };
	if (!rc && (rc = monsess_create(&ms, &c->mon)))
		snprintf(why, why_len, rc == -ENOKEY ? "%s is not in the keyring %s"
						     : "cannot reach the monitors as %s (%s)",
			 c->p.entity, p->keyring);
	if (rc) {
		bs_client_destroy(c);
		return rc;
	}
	io_timer_arm(loop, &c->tick, 0);
	*out = c;
	return 0;
}

static bool none_pinned(void *arg)
{
	struct bs_client *c = arg;
	struct list_node *pos;
	list_for_each(pos, &c->deferred)
		if (list_entry(pos, struct bs_op, waiting)->rx_conn)
			return false;
	return true;
}

void bs_client_destroy(struct bs_client *c)
{
	if (!c)
		return;
	c->destroying = true;
	io_timer_disarm(c->loop, &c->tick);
	bs_fail_all(c, -ECANCELED);
	/* Pinned ones first wait for their links' receives to end. */
	io_loop_run_until(c->loop, none_pinned, c);
	complete_deferred(c);
	bs_lock_fini(c);
	monsess_destroy(c->mon);
	if (c->links)
		for (uint32_t i = 0; i < MAP_MAX_OSDS; i++)
			if (c->links[i].conn)
				msgr_conn_close(c->links[i].conn);
	msgr_destroy(c->msgr);
	keyring_free(c->keyring);
	free(c->links);
	free(c);
}

/* Runs C's loop until READY(C, ARG) or END_NS: 0, or -ETIMEDOUT. */
static int run_until(struct bs_client *c, uint64_t end_ns,
		     bool (*ready)(struct bs_client *c, void *arg), void *arg)
{
	while (!ready(c, arg)) {
		uint64_t now = io_now_ns(c->loop);
		if (now >= end_ns)
			return -ETIMEDOUT;
		io_loop_run_once(c->loop,
				 (int64_t)(end_ns - now < IO_MS(100) ? end_ns - now : IO_MS(100)));
	}
	return 0;
}

struct pool_wait {
	const char *name;
	const struct map_pool *found;
};

static bool pool_ready(struct bs_client *c, void *arg)
{
	struct pool_wait *w = arg;
	w->found = monsess_have_map(c->mon) ? map_pool_by_name(monsess_map(c->mon), w->name) : NULL;
	return w->found != NULL;
}

int bs_client_wait_pool(struct bs_client *c, const char *name, uint64_t timeout_ms,
			const struct map_pool **out)
{
	struct pool_wait w = { name, NULL };
	int rc = run_until(c, io_now_ns(c->loop) + IO_MS(timeout_ms), pool_ready, &w);
	if (!rc)
		*out = w.found;
	return rc;
}

struct io_loop *bs_client_loop(const struct bs_client *c)
{
	return c->loop;
}

bool bs_client_have_map(const struct bs_client *c)
{
	return monsess_have_map(c->mon);
}

const struct cluster_map *bs_client_map(const struct bs_client *c)
{
	return monsess_map(c->mon);
}

void bs_client_stats(const struct bs_client *c, struct bs_client_stats *out)
{
	*out = c->stats;
	monsess_map_bytes(c->mon, &out->map_full_bytes, &out->map_inc_bytes);
}

/* --- synchronous wrapper --------------------------------------------------------------- */

struct bs_sync {
	struct io_loop *loop;
	struct bs_client *c;
	uint64_t timeout_ns;
};

/* How long every monitor may refuse connections before bs_client_wait_map
 * gives up: one being restarted listens within this. */
#define BS_REFUSED_GRACE_NS IO_SEC(2)

int bs_client_wait_map(struct bs_client *c, uint64_t timeout_ms, char *why, size_t why_len)
{
	uint64_t start = io_now_ns(c->loop), end = start + IO_MS(timeout_ms);
	while (!monsess_have_map(c->mon)) {
		uint64_t now = io_now_ns(c->loop);
		bool at_once = monsess_explain(c->mon, "no monitor sent the cluster map:", why,
					       why_len);
		if (now >= end)
			return -ETIMEDOUT;
		if (at_once && now >= start + BS_REFUSED_GRACE_NS)
			return -ECONNREFUSED;
		uint64_t until = end < now + IO_MS(100) ? end : now + IO_MS(100);
		io_loop_run_once(c->loop, (int64_t)(until - now));
	}
	return 0;
}

int bs_sync_open(struct cfg *cfg, const struct bs_client_params *p, struct bs_sync **out,
		 char *why, size_t why_len)
{
	struct bs_sync *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	int rc = io_loop_create_uring(NULL, &s->loop);
	if (rc) {
		snprintf(why, why_len, "cannot set up io_uring: %s", strerror(-rc));
		free(s);
		return rc;
	}
	struct bs_client_params q = *p;
	if (!q.op_timeout_ms)
		q.op_timeout_ms = 30000;
	s->timeout_ns = IO_MS(q.op_timeout_ms);
	rc = bs_client_create(s->loop, cfg, &q, &s->c, why, why_len);
	if (!rc)
		rc = bs_client_wait_map(s->c, q.op_timeout_ms, why, why_len);
	if (rc) {
		bs_sync_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

void bs_sync_close(struct bs_sync *s)
{
	if (!s)
		return;
	bs_client_destroy(s->c);
	io_loop_destroy(s->loop);
	free(s);
}

struct sync_wait {
	bool done;
	int rc;
};

static void sync_done(struct bs_op *op, int rc)
{
	struct sync_wait *w = op->ctx;
	w->done = true;
	w->rc = rc;
}

int bs_sync_op(struct bs_sync *s, struct bs_op *op)
{
	struct sync_wait w = { false, 0 };
	op->done = sync_done;
	op->ctx = &w;
	bs_submit(s->c, op);
	while (!w.done)
		io_loop_run_once(s->loop, -1);
	return w.rc;
}

static bool epoch_ready(struct bs_client *c, void *arg)
{
	return bs_client_have_map(c) && bs_client_map(c)->epoch >= *(const uint64_t *)arg;
}

int bs_sync_osds(struct bs_sync *s, uint64_t epoch, char *why, size_t why_len)
{
	if (run_until(s->c, io_now_ns(s->loop) + s->timeout_ns, epoch_ready, &epoch))
		return why_set(why, why_len, -ETIMEDOUT,
			       "the monitors did not send map epoch %llu in time",
			       (unsigned long long)epoch);
	const struct cluster_map *m = bs_client_map(s->c);
	uint32_t n = m->n_osds;
	struct bs_op *ops = calloc(n ? n : 1, sizeof(*ops));
	int *results = calloc(n ? n : 1, sizeof(*results));
	if (!ops || !results) {
		free(ops);
		free(results);
		return why_set(why, why_len, -ENOMEM, "out of memory");
	}
	for (uint32_t i = 0; i < n; i++)
		ops[i] = (struct bs_op){ .type = BS_SYNC, .oid = { .inode = i } };
	bs_sync_ops(s, ops, n, 64, results);
	int rc = 0;
	for (uint32_t i = 0; i < n && !rc; i++)
		if (results[i] && results[i] != -EHOSTDOWN)
			rc = why_set(why, why_len, results[i],
				     "osd.%u did not confirm map epoch %llu: %s", i,
				     (unsigned long long)epoch, strerror(-results[i]));
	free(ops);
	free(results);
	return rc;
}

const struct cluster_map *bs_sync_map(const struct bs_sync *s)
{
	return bs_client_map(s->c);
}

struct many_wait {
	size_t done, failed, inflight;
	int *results;
	struct bs_op *base;
};

static void many_done(struct bs_op *op, int rc)
{
	struct many_wait *w = op->ctx;
	if (w->results)
		w->results[op - w->base] = rc;
	w->done++;
	w->failed += rc != 0;
	w->inflight--;
}

size_t bs_sync_ops(struct bs_sync *s, struct bs_op *ops, size_t n, unsigned qd, int *results)
{
	struct many_wait w = { 0, 0, 0, results, ops };
	size_t next = 0;
	while (w.done < n) {
		while (next < n && w.inflight < (qd ? qd : 1)) {
			ops[next].done = many_done;
			ops[next].ctx = &w;
			w.inflight++;
			bs_submit(s->c, &ops[next++]);
		}
		io_loop_run_once(s->loop, -1);
	}
	return w.failed;
}

static void vio_sync_done(struct bs_vio *vio, int rc)
{
	struct sync_wait *w = vio->ctx;
	w->done = true;
	w->rc = rc;
}

int bs_sync_vio(struct bs_sync *s, struct bs_volume *v, struct bs_vio *vio)
{
	struct sync_wait w = { false, 0 };
	vio->done = vio_sync_done;
	vio->ctx = &w;
	bs_volume_submit(v, vio);
	while (!w.done)
		io_loop_run_once(s->loop, -1);
	return w.rc;
}

struct bs_client *bs_sync_client(struct bs_sync *s)
{
	return s->c;
}
