/* Messenger connections: connect, handshake, framed receive and batched
 * send on the event loop. See msgr.h for the contract.
 *
 * Connection states (conn->state):
 *
 *   msgr_connect                                  accept
 *        |                                          |
 *        v      connected          AUTH_OK / AUTH   v
 *   CONNECTING ----------> HANDSHAKE -----------> UP
 *        ^                     |                   |
 *        |  backoff timer      | error, timeout,   | error, timeout,
 *     BACKOFF <----- CLOSING <-+  bad frame        | peer closed
 *                      ^-----------------------------+
 *   CLOSING waits for the socket's in-flight ops to end, closes the fd,
 *   then goes to BACKOFF (outgoing) or frees the conn (incoming, or once
 *   the owner called msgr_conn_close: conn->doomed).
 *
 * Transitions: conn_start_connect (-> CONNECTING), conn_start_session
 * (-> HANDSHAKE), conn_set_up (-> UP), conn_fail (-> CLOSING),
 * conn_try_finish (CLOSING -> BACKOFF or freed).
 *
 * Invariants (conn_check):
 *  1. Only UP connections deliver user messages or send from pendq.
 *  2. A conn with an op in flight or a callback running is never freed.
 *  3. The fd is open exactly in CONNECTING, HANDSHAKE, UP and CLOSING.
 *  4. sendq_bytes/sendq_msgs count exactly what sendq and pendq hold. */
#include "msgr.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assert.h"
#include "auth.h"
#include "log.h"
#include "msgr_int.h"

static void conn_fail(struct msgr_conn *c, int err, const char *why);
static void conn_flush(struct msgr_conn *c);
static void conn_post_recv(struct msgr_conn *c);
static void conn_start_connect(struct msgr_conn *c);

/* --- small helpers ------------------------------------------------------ */

static size_t msg_wire_len(const struct msg *msg)
{
	return MSG_HEADER_LEN + (size_t)msg->hdr.payload_len + msg->hdr.data_len;
}

static bool conn_has_fd(const struct msgr_conn *c)
{
	return c->state != CONN_BACKOFF;
}

static bool conn_ops_idle(const struct msgr_conn *c)
{
	return !c->connect_op.in_flight && !c->recv_op.in_flight &&
	       !c->send_op.in_flight && msgr_session_idle(c);
}

static void conn_check(const struct msgr_conn *c)
{
	size_t bytes = 0;
	unsigned msgs = 0;
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &c->sendq) {
		bytes += msg_wire_len(list_entry(pos, struct msg, node));
		msgs++;
	}
	list_for_each_safe(pos, tmp, &c->pendq) {
		bytes += msg_wire_len(list_entry(pos, struct msg, node));
		msgs++;
	}
	BASALT_ASSERT(bytes == c->sendq_bytes && msgs == c->sendq_msgs); /* 4 */
	BASALT_ASSERT(conn_has_fd(c) == (c->fd >= 0));			 /* 3 */
	BASALT_ASSERT(c->state == CONN_UP || list_empty(&c->pendq) ||
		      c->outgoing); /* 1 */
}

static void conn_hold(struct msgr_conn *c)
{
	c->holds++;
}

static void conn_drop_queue(struct msgr_conn *c, struct list_node *q)
{
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, q) {
		struct msg *msg = list_entry(pos, struct msg, node);
		list_del(pos);
		c->sendq_bytes -= msg_wire_len(msg);
		c->sendq_msgs--;
		msg_free(msg);
	}
}

static void conn_free(struct msgr_conn *c)
{
	struct msgr *m = c->m;
	io_timer_disarm(m->loop, &c->timer);
	msg_rx_reset(&c->rx);
	conn_drop_queue(c, &c->sendq);
	conn_drop_queue(c, &c->pendq);
	list_del(&c->node);
	m->conn_count--;
	msgr_session_free(c);
	free(c->rxbuf);
	explicit_bzero(c->key, sizeof(c->key));
	explicit_bzero(c->session, sizeof(c->session));
	free(c);
}

/* Ends a hold; returns true when the conn was freed (invariant 2). */
static bool conn_release(struct msgr_conn *c)
{
	BASALT_ASSERT(c->holds > 0);
	if (--c->holds == 0 && c->doomed && c->state == CONN_BACKOFF &&
	    conn_ops_idle(c)) {
		conn_free(c);
		return true;
	}
	return false;
}

static void conn_event(struct msgr_conn *c, enum msgr_event ev, int err)
{
	if (c->m->p.handler->on_event && !c->m->destroying)
		c->m->p.handler->on_event(c, ev, err);
}

/* --- teardown ------------------------------------------------------------- */

static void conn_timer_fire(struct io_timer *t);

static uint64_t conn_jitter(struct msgr_conn *c, uint64_t ns)
{
	/* +-25% so peers that failed together do not retry in lockstep. */
	uint64_t quarter = ns / 4;
	return quarter ? ns - quarter + io_random(c->m->loop) % (2 * quarter + 1)
		       : ns;
}

/* CLOSING: once no op is in flight, close the fd and move on. */
static void conn_try_finish(struct msgr_conn *c)
{
	if (c->state != CONN_CLOSING || !conn_ops_idle(c))
		return;
	struct msgr *m = c->m;
	msgr_session_free(c);
	io_close(m->loop, c->fd);
	c->fd = -1;
	c->state = CONN_BACKOFF;
	msg_rx_reset(&c->rx);
	if (c->doomed) {
		if (c->holds == 0)
			conn_free(c);
		return;
	}
	BASALT_ASSERT(c->outgoing);
	uint64_t delay = conn_jitter(c, c->backoff_ns);
	c->backoff_ns *= 2;
	if (c->backoff_ns > m->p.backoff_max_ns)
		c->backoff_ns = m->p.backoff_max_ns;
	io_timer_arm(m->loop, &c->timer, delay);
}

/* Closes the socket side. DROP_PENDING also drops user messages that
 * never reached the wire: done exactly when the owner hears DOWN (or the
 * conn ends), so nothing the owner may still expect is lost silently. */
static void conn_teardown(struct msgr_conn *c, bool drop_pending)
{
	struct io_loop *loop = c->m->loop;
	conn_check(c);
	c->state = CONN_CLOSING;
	io_timer_disarm(loop, &c->timer);
	io_cancel(loop, &c->connect_op);
	if (c->tls) {
		msgr_session_teardown(c);
	} else {
		io_cancel(loop, &c->recv_op);
		io_cancel(loop, &c->send_op);
	}
	conn_drop_queue(c, &c->sendq);
	if (drop_pending)
		conn_drop_queue(c, &c->pendq);
	c->send_off = 0;
	conn_try_finish(c);
}

/* Any error on a live connection: log it, tear the socket down, and tell
 * the owner (DOWN for outgoing, CLOSED for incoming that were up). */
static void conn_fail(struct msgr_conn *c, int err, const char *why)
{
	if (c->state == CONN_CLOSING || c->state == CONN_BACKOFF)
		return;
	struct msgr *m = c->m;
	bool was_up = c->state == CONN_UP;
	if (err == -ETIMEDOUT)
		m->stats.timeouts++;
	if (was_up || !c->outgoing || !c->reported_down)
		LOG_INFO("%s connection %s %s (%s): %s: %s",
			 c->outgoing ? "outgoing" : "incoming", c->peer_addr,
			 c->peer_name[0] ? c->peer_name : "-",
			 was_up ? "up" : "not up", why, strerror(-err));
	bool report = c->outgoing && (was_up || !c->reported_down);
	conn_hold(c);
	conn_teardown(c, report || !c->outgoing);
	if (report) {
		c->reported_down = true;
		conn_event(c, MSGR_EV_DOWN, err);
	} else if (!c->outgoing && was_up) {
		conn_event(c, MSGR_EV_CLOSED, err);
	}
	conn_release(c);
}

/* --- sending --------------------------------------------------------------- */

static void conn_enqueue(struct msgr_conn *c, struct list_node *q,
			 struct msg *msg)
{
	msg_seal(msg);
	list_add_tail(q, &msg->node);
	c->sendq_bytes += msg_wire_len(msg);
	c->sendq_msgs++;
}

static int conn_send_internal(struct msgr_conn *c, struct msg *msg)
{
	conn_enqueue(c, &c->sendq, msg);
	conn_flush(c);
	return 0;
}

static void conn_maybe_writable(struct msgr_conn *c)
{
	struct msgr *m = c->m;
	if (!c->want_writable || c->sendq_bytes > m->p.send_queue_bytes_max / 2 ||
	    c->sendq_msgs > m->p.send_queue_msgs_max / 2)
		return;
	c->want_writable = false;
	if (m->p.handler->on_writable && !m->destroying)
		m->p.handler->on_writable(c);
}

static void conn_send_done(struct io_op *op, int res)
{
	struct msgr_conn *c = op->ctx;
	struct msgr *m = c->m;
	if (c->state == CONN_CLOSING) {
		conn_try_finish(c);
		return;
	}
	if (res < 0) {
		conn_fail(c, res, "send failed");
		return;
	}
	m->stats.bytes_sent += (uint64_t)res;
	c->last_tx_ns = io_now_ns(m->loop);
	size_t left = (size_t)res;
	while (left > 0) {
		struct list_node *head = list_first(&c->sendq);
		BASALT_ASSERT(head != NULL);
		struct msg *msg = list_entry(head, struct msg, node);
		size_t remaining = msg_wire_len(msg) - c->send_off;
		if (left < remaining) {
			c->send_off += left;
			break;
		}
		left -= remaining;
		c->send_off = 0;
		list_del(head);
		c->sendq_bytes -= msg_wire_len(msg);
		c->sendq_msgs--;
		m->stats.msgs_sent++;
		msg_free(msg);
	}
	if (c->fail_when_sent && list_empty(&c->sendq)) {
		conn_fail(c, c->fail_err, c->fail_why);
		return;
	}
	conn_flush(c);
	conn_hold(c);
	conn_maybe_writable(c);
	conn_release(c);
}

static void conn_flush(struct msgr_conn *c)
{
	if (c->send_op.in_flight ||
	    (c->state != CONN_HANDSHAKE && c->state != CONN_UP))
		return;
	int n = 0;
	size_t skip = c->send_off;
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &c->sendq) {
		struct msg *msg = list_entry(pos, struct msg, node);
		const struct iovec parts[3] = {
			{ msg->wire, MSG_HEADER_LEN },
			{ msg->payload, msg->hdr.payload_len },
			{ msg->data, msg->hdr.data_len },
		};
		if (n + 3 > MSGR_IOV_MAX)
			break;
		for (int i = 0; i < 3; i++) {
			if (skip >= parts[i].iov_len) {
				skip -= parts[i].iov_len;
				continue;
			}
			c->iov[n].iov_base = (uint8_t *)parts[i].iov_base + skip;
			c->iov[n].iov_len = parts[i].iov_len - skip;
			skip = 0;
			n++;
		}
	}
	if (n == 0)
		return;
	c->send_op.ctx = c;
	c->send_op.done = conn_send_done;
	msgr_conn_send(c, c->iov, n);
}

int msgr_send(struct msgr_conn *c, struct msg *msg)
{
	struct msgr *m = c->m;
	BASALT_ASSERT(msg->hdr.type >= MSG_TYPE_FIRST_USER);
	BASALT_ASSERT(!c->closed_by_owner);
	if (c->state != CONN_UP && !c->outgoing)
		return -ENOTCONN;
	if (c->sendq_msgs > 0 &&
	    (c->sendq_bytes + msg_wire_len(msg) > m->p.send_queue_bytes_max ||
	     c->sendq_msgs + 1 > m->p.send_queue_msgs_max)) {
		c->want_writable = true;
		return -EAGAIN;
	}
	if (c->state == CONN_UP) {
		conn_enqueue(c, &c->sendq, msg);
		conn_flush(c);
	} else {
		conn_enqueue(c, &c->pendq, msg);
	}
	return 0;
}

/* --- handshake -------------------------------------------------------------- */

static int conn_send_hello(struct msgr_conn *c, bool with_proof)
{
	struct msgr *m = c->m;
	struct msg_hello h = { .proto = MSGR_PROTO, .has_proof = with_proof };
	snprintf(h.name, sizeof(h.name), "%s", m->name);
	memcpy(h.nonce, c->outgoing ? c->nonce_initiator : c->nonce_acceptor,
	       AUTH_NONCE_LEN);
	memcpy(h.key_id, c->key_id, AUTH_KEY_ID_LEN);
	if (with_proof &&
	    auth_make_proof_bound(c->key, AUTH_ROLE_ACCEPTOR, c->peer_name, m->name,
				  c->nonce_initiator, c->nonce_acceptor, c->binding,
				  c->binding_len, h.proof))
		return -EIO;
	struct msg *msg = msg_hello_new(&h);
	return msg ? conn_send_internal(c, msg) : -ENOMEM;
}

/* An acceptor tells the initiator its key was refused (AUTH_FAIL), so the
 * initiator's owner hears -EACCES rather than a bare reset, and closes
 * once that is sent (the handshake timeout bounds the wait). */
static void conn_auth_failed(struct msgr_conn *c, const char *why)
{
	c->m->stats.auth_failures++;
	LOG_WARN("authentication failed on %s connection %s claiming '%s': %s",
		 c->outgoing ? "outgoing" : "incoming", c->peer_addr,
		 c->peer_name, why);
	struct msg *msg = c->outgoing ? NULL : msg_new(MSG_TYPE_AUTH_FAIL, 0, 0);
	if (!msg) {
		conn_fail(c, -EACCES, "authentication failed");
		return;
	}
	c->step = AUTH_STEP_REFUSED;
	c->fail_when_sent = true;
	c->fail_err = -EACCES;
	c->fail_why = "authentication failed";
	conn_send_internal(c, msg);
}

static void conn_set_up(struct msgr_conn *c)
{
	struct msgr *m = c->m;
	const char *initiator = c->outgoing ? m->name : c->peer_name;
	const char *acceptor = c->outgoing ? c->peer_name : m->name;
	if (auth_session_key(c->key, initiator, acceptor, c->nonce_initiator, c->nonce_acceptor,
			     c->binding, c->binding_len, c->session)) {
		conn_fail(c, -EIO, "cannot derive the session key");
		return;
	}
	c->state = CONN_UP;
	c->was_up = true;
	c->reported_down = false;
	c->backoff_ns = m->p.backoff_min_ns;
	c->rx.limits = &m->limits_up;
	m->stats.conns_up++;
	conn_check(c);
	/* Keepalive ticks at half the interval, so an idle link sends one
	 * at most an interval after its last traffic. */
	io_timer_arm(m->loop, &c->timer, m->p.keepalive_interval_ns / 2);
	LOG_DEBUG("%s connection %s up with %s",
		  c->outgoing ? "outgoing" : "incoming", c->peer_addr,
		  c->peer_name);
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &c->pendq) {
		list_del(pos);
		list_add_tail(&c->sendq, pos);
	}
	conn_flush(c);
	conn_event(c, MSGR_EV_UP, 0);
}

/* The acceptor's secret for initiator NAME proving with key ID: from our
 * keyring (the cluster's entities), else from the owner's find_key.
 * NULL, or why there is none. */
static const char *conn_find_key(struct msgr_conn *c, const char *name, const uint8_t *id)
{
	struct msgr *m = c->m;
	uint8_t our_id[AUTH_KEY_ID_LEN];
	memcpy(c->key_id, id, AUTH_KEY_ID_LEN);
	if (c->tls && !msgr_session_identity_is(c, name, id))
		return "its HELLO names another entity or key than its TLS identity";
	c->peer_in_keyring = keyring_find(m->p.keyring, name, c->key) == 0;
	if (c->peer_in_keyring)
		return auth_key_id(c->key, our_id) || memcmp(our_id, id, AUTH_KEY_ID_LEN)
			       ? "its key is not the one in our keyring"
			       : NULL;
	int rc = m->p.find_key ? m->p.find_key(m->p.ctx, name, id, c->key) : -ENOENT;
	if (rc == -EKEYREJECTED)
		return "its key is not among the entity's valid keys (rotated, or wrong)";
	return rc ? "entity not in our keyring" : NULL;
}

static void conn_on_hello(struct msgr_conn *c, const struct msg *hello)
{
	struct msgr *m = c->m;
	struct msg_hello h;
	if (msg_hello_decode(hello->payload, hello->hdr.payload_len, &h) ||
	    h.proto != MSGR_PROTO || h.has_proof != c->outgoing) {
		m->stats.bad_frames++;
		conn_fail(c, -EPROTO, "malformed HELLO");
		return;
	}
	const char *name = h.name;
	memcpy(c->outgoing ? c->nonce_acceptor : c->nonce_initiator, h.nonce,
	       AUTH_NONCE_LEN);
	const uint8_t *proof = h.proof;
	snprintf(c->peer_name, sizeof(c->peer_name), "%s", name);
	if (!c->outgoing) {
		/* Acceptor: the initiator's entity and key id name the secret. */
		const char *why = conn_find_key(c, name, h.key_id);
		if (why) {
			conn_auth_failed(c, why);
			return;
		}
		if (auth_make_nonce(c->nonce_acceptor) ||
		    conn_send_hello(c, true)) {
			conn_fail(c, -EIO, "cannot answer HELLO");
			return;
		}
		c->step = AUTH_STEP_WAIT_AUTH;
		return;
	}
	c->peer_in_keyring = true; /* we chose to connect to it */
	if (!auth_check_proof_bound(c->key, AUTH_ROLE_ACCEPTOR, m->name, name, c->nonce_initiator,
				    c->nonce_acceptor, c->binding, c->binding_len, proof)) {
		conn_auth_failed(c, "the acceptor's proof is wrong");
		return;
	}
	struct msg *msg = msg_new(MSG_TYPE_AUTH, 0, AUTH_PROOF_LEN);
	if (!msg || auth_make_proof_bound(c->key, AUTH_ROLE_INITIATOR, m->name, name,
					  c->nonce_initiator, c->nonce_acceptor, c->binding,
					  c->binding_len, msg->payload)) {
		msg_free(msg);
		conn_fail(c, -EIO, "cannot make AUTH");
		return;
	}
	conn_send_internal(c, msg);
	c->step = AUTH_STEP_WAIT_AUTH_OK;
}

static void conn_on_auth(struct msgr_conn *c, const struct msg *msg)
{
	struct msgr *m = c->m;
	if (msg->hdr.payload_len != AUTH_PROOF_LEN) {
		m->stats.bad_frames++;
		conn_fail(c, -EPROTO, "malformed AUTH");
		return;
	}
	/* The key again, now: a rotation's grace may have ended (or the key
	 * been removed) since HELLO. */
	uint8_t key[KEYRING_KEY_LEN];
	memcpy(key, c->key, sizeof(key));
	const char *gone = conn_find_key(c, c->peer_name, c->key_id);
	bool same = !gone && !memcmp(key, c->key, sizeof(key));
	explicit_bzero(key, sizeof(key));
	if (!same) {
		conn_auth_failed(c, gone ? gone : "its key changed during the handshake");
		return;
	}
	if (!auth_check_proof_bound(c->key, AUTH_ROLE_INITIATOR, c->peer_name, m->name,
				    c->nonce_initiator, c->nonce_acceptor, c->binding,
				    c->binding_len, msg->payload)) {
		conn_auth_failed(c, "the initiator's proof is wrong");
		return;
	}
	struct msg *ok = msg_new(MSG_TYPE_AUTH_OK, 0, 0);
	if (!ok) {
		conn_fail(c, -ENOMEM, "cannot answer AUTH");
		return;
	}
	conn_send_internal(c, ok);
	conn_set_up(c);
}

/* A message during the handshake: only the next expected step is valid. */
static void conn_handshake_msg(struct msgr_conn *c, struct msg *msg)
{
	uint16_t type = msg->hdr.type;
	if (type == MSG_TYPE_HELLO && c->step == AUTH_STEP_WAIT_HELLO &&
	    msg->hdr.data_len == 0)
		conn_on_hello(c, msg);
	else if (type == MSG_TYPE_AUTH && c->step == AUTH_STEP_WAIT_AUTH &&
		 !c->outgoing)
		conn_on_auth(c, msg);
	else if (type == MSG_TYPE_AUTH_OK && c->step == AUTH_STEP_WAIT_AUTH_OK &&
		 msg->hdr.payload_len == 0)
		conn_set_up(c);
	else if (type == MSG_TYPE_AUTH_FAIL && c->outgoing)
		conn_fail(c, -EACCES, "the peer refused our key");
	else {
		c->m->stats.bad_frames++;
		conn_fail(c, -EPROTO, "unexpected message during authentication");
	}
	msg_free(msg);
}

/* --- receiving --------------------------------------------------------------- */

static void conn_deliver(struct msgr_conn *c, struct msg *msg)
{
	struct msgr *m = c->m;
	m->stats.msgs_received++;
	if (c->fail_when_sent) { /* being closed: nothing it sends counts */
		msg_free(msg);
		return;
	}
	if (c->state == CONN_HANDSHAKE) {
		conn_handshake_msg(c, msg);
		return;
	}
	if (msg->hdr.type == MSG_TYPE_KEEPALIVE) {
		msg_free(msg);
		return;
	}
	if (msg->hdr.type < MSG_TYPE_FIRST_USER) {
		m->stats.bad_frames++;
		msg_free(msg);
		conn_fail(c, -EPROTO, "handshake message after authentication");
		return;
	}
	if (m->destroying) {
		msg_free(msg);
		return;
	}
	m->p.handler->on_message(c, msg);
}

/* The parser's data_dest: the owner may lend the buffer of a user
 * message's data segment. */
static void conn_data_dest(void *arg, struct msg *msg)
{
	struct msgr_conn *c = arg;
	struct msgr *m = c->m;
	if (m->p.handler->data_dest && c->state == CONN_UP && !c->fail_when_sent &&
	    !m->destroying && msg->hdr.type >= MSG_TYPE_FIRST_USER)
		m->p.handler->data_dest(c, msg);
}

static bool conn_receiving(const struct msgr_conn *c)
{
	return c->state == CONN_HANDSHAKE || c->state == CONN_UP;
}

static void conn_bad_frame(struct msgr_conn *c, int err)
{
	c->m->stats.bad_frames++;
	LOG_WARN("bad frame on connection %s (%s): %s; closing it",
		 c->peer_addr, c->peer_name[0] ? c->peer_name : "-", c->rx.why);
	conn_fail(c, err, c->rx.why);
}

static void conn_recv_done(struct io_op *op, int res)
{
	struct msgr_conn *c = op->ctx;
	struct msgr *m = c->m;
	if (c->state == CONN_CLOSING) {
		conn_try_finish(c);
		return;
	}
	if (res <= 0) {
		conn_fail(c, res ? res : -ECONNRESET,
			  res ? "receive failed" : "peer closed the connection");
		return;
	}
	m->stats.bytes_received += (uint64_t)res;
	c->last_rx_ns = io_now_ns(m->loop);
	conn_hold(c);
	if (c->rx_direct) {
		struct msg *msg;
		int rc = msg_rx_direct_done(&c->rx, (size_t)res, &msg);
		if (rc < 0)
			conn_bad_frame(c, rc);
		else if (msg)
			conn_deliver(c, msg);
	} else {
		size_t off = 0;
		while (off < (size_t)res && conn_receiving(c)) {
			struct msg *msg;
			ssize_t used = msg_rx_feed(&c->rx, c->rxbuf + off,
						   (size_t)res - off, &msg);
			if (used < 0) {
				conn_bad_frame(c, (int)used);
				break;
			}
			off += (size_t)used;
			if (msg)
				conn_deliver(c, msg);
		}
	}
	if (conn_receiving(c))
		conn_post_recv(c);
	conn_release(c);
}

static void conn_post_recv(struct msgr_conn *c)
{
	uint8_t *dst;
	size_t want = msg_rx_direct(&c->rx, &dst);
	c->recv_op.ctx = c;
	c->recv_op.done = conn_recv_done;
	c->rx_direct = want >= MSGR_DIRECT_MIN;
	if (c->rx_direct)
		msgr_conn_recv(c, dst, want);
	else
		msgr_conn_recv(c, c->rxbuf, MSGR_RXBUF_LEN);
}

/* --- timers ------------------------------------------------------------------- */

static void conn_keepalive_tick(struct msgr_conn *c)
{
	struct msgr *m = c->m;
	uint64_t now = io_now_ns(m->loop);
	if (now - c->last_rx_ns >= m->p.keepalive_timeout_ns) {
		conn_fail(c, -ETIMEDOUT, "no traffic from the peer");
		return;
	}
	if (now - c->last_tx_ns >= m->p.keepalive_interval_ns / 2 &&
	    list_empty(&c->sendq)) {
		struct msg *ka = msg_new(MSG_TYPE_KEEPALIVE, 0, 0);
		if (ka)
			conn_send_internal(c, ka);
	}
	io_timer_arm(m->loop, &c->timer, m->p.keepalive_interval_ns / 2);
}

static void conn_timer_fire(struct io_timer *t)
{
	struct msgr_conn *c = t->ctx;
	switch (c->state) {
	case CONN_CONNECTING:
		conn_fail(c, -ETIMEDOUT, "connect timed out");
		break;
	case CONN_HANDSHAKE:
		conn_fail(c, -ETIMEDOUT, "authentication timed out");
		break;
	case CONN_UP:
		if (c->fail_when_sent) /* a peer that does not read: no more waiting */
			conn_fail(c, c->fail_err, c->fail_why);
		else
			conn_keepalive_tick(c);
		break;
	case CONN_BACKOFF:
		conn_start_connect(c);
		break;
	case CONN_CLOSING:
		break;
	}
}

/* --- connection set-up ------------------------------------------------------- */

static struct msgr_conn *conn_new(struct msgr *m, bool outgoing)
{
	if (m->conn_count >= m->p.conns_max)
		return NULL;
	struct msgr_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->rxbuf = malloc(MSGR_RXBUF_LEN);
	if (!c->rxbuf) {
		free(c);
		return NULL;
	}
	c->m = m;
	c->outgoing = outgoing;
	c->fd = -1;
	c->state = CONN_BACKOFF;
	c->backoff_ns = m->p.backoff_min_ns;
	list_init(&c->sendq);
	list_init(&c->pendq);
	io_timer_init(&c->timer, conn_timer_fire, c);
	msg_rx_init(&c->rx, &m->limits_preauth);
	c->rx.data_dest = conn_data_dest;
	c->rx.data_dest_arg = c;
	list_add_tail(&m->conns, &c->node);
	m->conn_count++;
	return c;
}

/* The socket is connected or accepted: start the handshake. */
static void conn_start_session(struct msgr_conn *c)
{
	struct msgr *m = c->m;
	c->state = CONN_HANDSHAKE;
	c->step = AUTH_STEP_WAIT_HELLO;
	c->peer_name[0] = '\0';
	c->send_off = 0;
	c->last_rx_ns = c->last_tx_ns = io_now_ns(m->loop);
	msg_rx_reset(&c->rx);
	c->rx.limits = &m->limits_preauth;
	io_timer_arm(m->loop, &c->timer, m->p.handshake_timeout_ns);
	c->step = AUTH_STEP_BANNER;
	msgr_session_start(c);
}

void msgr_conn_session_ready(struct msgr_conn *c)
{
	struct msgr *m = c->m;
	c->step = AUTH_STEP_WAIT_HELLO;
	conn_post_recv(c);
	if (c->outgoing) {
		if (keyring_find(m->p.keyring, m->name, c->key) ||
		    auth_key_id(c->key, c->key_id)) {
			conn_fail(c, -ENOKEY, "our entity is not in the keyring");
			return;
		}
		if (auth_make_nonce(c->nonce_initiator) ||
		    conn_send_hello(c, false))
			conn_fail(c, -EIO, "cannot send HELLO");
	}
}

void msgr_conn_fail(struct msgr_conn *c, int err, const char *why)
{
	conn_fail(c, err, why);
}

void msgr_conn_op_ended(struct msgr_conn *c)
{
	conn_try_finish(c);
}

void msgr_conn_recv(struct msgr_conn *c, void *buf, size_t len)
{
	if (c->tls)
		tls_stream_recv(c->tls, &c->recv_op, buf, len);
	else
		io_recv(c->m->loop, &c->recv_op, c->fd, buf, len);
}

void msgr_conn_send(struct msgr_conn *c, const struct iovec *iov, int n)
{
	if (c->tls)
		tls_stream_send(c->tls, &c->send_op, iov, n);
	else
		io_send(c->m->loop, &c->send_op, c->fd, iov, n);
}

static void conn_connect_done(struct io_op *op, int res)
{
	struct msgr_conn *c = op->ctx;
	if (c->state == CONN_CLOSING) {
		conn_try_finish(c);
		return;
	}
	if (res < 0) {
		conn_fail(c, res, "connect failed");
		return;
	}
	conn_start_session(c);
}

static void conn_start_connect(struct msgr_conn *c)
{
	struct msgr *m = c->m;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	int rc = io_resolve(c->host, c->port, &addr, &addrlen);
	if (rc == 0)
		rc = io_socket(m->loop, addr.ss_family, &c->fd);
	c->state = CONN_CONNECTING;
	if (rc) {
		/* Go through CLOSING so backoff and DOWN work as for any
		 * other failure; there is no fd to close. */
		c->fd = -1;
		c->state = CONN_BACKOFF;
		LOG_WARN("cannot connect to %s: %s", c->peer_addr, strerror(-rc));
		if (!c->reported_down) {
			c->reported_down = true;
			conn_hold(c);
			conn_event(c, MSGR_EV_DOWN, rc);
			if (conn_release(c))
				return;
		}
		io_timer_arm(m->loop, &c->timer, conn_jitter(c, c->backoff_ns));
		return;
	}
	c->connect_op.ctx = c;
	c->connect_op.done = conn_connect_done;
	io_timer_arm(m->loop, &c->timer, m->p.connect_timeout_ns);
	io_connect(m->loop, &c->connect_op, c->fd, (struct sockaddr *)&addr,
		   addrlen);
}

int msgr_connect(struct msgr *m, const char *host, uint16_t port,
		 struct msgr_conn **out)
{
	uint8_t key[KEYRING_KEY_LEN];
	if (strlen(host) >= sizeof(((struct msgr_conn *)0)->host))
		return -ENAMETOOLONG;
	if (keyring_find(m->p.keyring, m->name, key))
		return -ENOKEY;
	memset(key, 0, sizeof(key));
	struct msgr_conn *c = conn_new(m, true);
	if (!c)
		return -ENOMEM;
	snprintf(c->host, sizeof(c->host), "%s", host);
	c->port = port;
	snprintf(c->peer_addr, sizeof(c->peer_addr), "%.50s:%u", host, port);
	conn_start_connect(c);
	*out = c;
	return 0;
}

void msgr_conn_reset(struct msgr_conn *c, int err, const char *why)
{
	if (c->state == CONN_UP)
		conn_fail(c, err, why);
}

void msgr_conn_close(struct msgr_conn *c)
{
	c->doomed = true;
	c->closed_by_owner = true;
	if (c->state == CONN_BACKOFF) {
		if (c->holds == 0)
			conn_free(c);
		else
			io_timer_disarm(c->m->loop, &c->timer);
		return;
	}
	if (c->state != CONN_CLOSING)
		conn_teardown(c, true);
	else
		conn_drop_queue(c, &c->pendq);
}

/* --- listening ----------------------------------------------------------------- */

static void msgr_post_accept(struct msgr *m);

static void msgr_accept_retry(struct io_timer *t)
{
	msgr_post_accept(t->ctx);
}

/* How many incoming connections come from ADDR's host ("host:port"). */
static unsigned conns_from_host(struct msgr *m, const char *addr)
{
	unsigned n = 0;
	struct list_node *pos;
	list_for_each(pos, &m->conns) {
		const struct msgr_conn *c = list_entry(pos, struct msgr_conn, node);
		n += !c->outgoing && io_addr_same_host(c->peer_addr, addr);
	}
	return n;
}

static void msgr_accept_done(struct io_op *op, int res)
{
	struct msgr *m = op->ctx;
	if (m->destroying) {
		if (res >= 0)
			io_close(m->loop, res);
		return;
	}
	if (res < 0) {
		LOG_WARN("accept failed: %s; retrying", strerror(-res));
		io_timer_arm(m->loop, &m->accept_timer, IO_MS(100));
		return;
	}
	char addr[64];
	io_addr_str(&op->addr, addr, sizeof(addr));
	unsigned from_host = conns_from_host(m, addr);
	struct msgr_conn *c = from_host < m->p.conns_per_host_max ? conn_new(m, false) : NULL;
	if (!c) {
		if (from_host >= m->p.conns_per_host_max)
			LOG_WARN("refusing connection from %s: %u connections from that host are open "
				 "(ms_max_connections_per_host)", addr, from_host);
		else
			LOG_WARN("refusing connection from %s: %u connections open (ms_max_connections)",
				 addr, m->conn_count);
		io_close(m->loop, res);
	} else {
		m->stats.conns_accepted++;
		c->fd = res;
		snprintf(c->peer_addr, sizeof(c->peer_addr), "%s", addr);
		c->doomed = true; /* incoming: freed when it ends */
		conn_start_session(c);
	}
	msgr_post_accept(m);
}

static void msgr_post_accept(struct msgr *m)
{
	m->accept_op.ctx = m;
	m->accept_op.done = msgr_accept_done;
	io_accept(m->loop, &m->accept_op, m->listen_fd);
}

int msgr_listen(struct msgr *m, const char *host, uint16_t port,
		uint16_t *port_out)
{
	if (m->listen_fd >= 0)
		return -EALREADY;
	int rc = io_listen(m->loop, host, port, &m->listen_fd, port_out);
	if (rc) {
		m->listen_fd = -1;
		return rc;
	}
	msgr_post_accept(m);
	return 0;
}

/* --- life cycle ---------------------------------------------------------------- */

void msgr_params_default(struct msgr_params *p)
{
	memset(p, 0, sizeof(*p));
	p->mode = MSGR_MODE_CRC;
	p->payload_max = 1u << 20;
	p->data_max = 64u << 20;
	p->send_queue_bytes_max = 64u << 20;
	p->send_queue_msgs_max = 4096;
	p->conns_max = 4096;
	p->conns_per_host_max = 1024;
	p->connect_timeout_ns = IO_SEC(3);
	p->handshake_timeout_ns = IO_SEC(5);
	p->keepalive_interval_ns = IO_SEC(1);
	p->keepalive_timeout_ns = IO_SEC(10);
	p->backoff_min_ns = IO_MS(20);
	p->backoff_max_ns = IO_SEC(2);
}

static bool msgr_type_preauth(uint16_t type, void *arg)
{
	(void)arg;
	return type == MSG_TYPE_HELLO || type == MSG_TYPE_AUTH ||
	       type == MSG_TYPE_AUTH_OK || type == MSG_TYPE_AUTH_FAIL;
}

static bool msgr_type_up(uint16_t type, void *arg)
{
	struct msgr *m = arg;
	if (type < MSG_TYPE_FIRST_USER)
		return type == MSG_TYPE_KEEPALIVE;
	return !m->p.handler->type_ok || m->p.handler->type_ok(type, m->p.ctx);
}

int msgr_create(struct io_loop *loop, const struct msgr_params *params,
		struct msgr **out)
{
	if (!params->name || strlen(params->name) >= KEYRING_NAME_MAX ||
	    !params->keyring || !params->handler ||
	    !params->handler->on_message ||
	    params->payload_max > MSG_PAYLOAD_MAX_LIMIT ||
	    params->data_max > MSG_DATA_MAX_LIMIT ||
	    params->keepalive_interval_ns < 2 ||
	    params->keepalive_timeout_ns <= params->keepalive_interval_ns)
		return -EINVAL;
	struct msgr *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->loop = loop;
	m->p = *params;
	snprintf(m->name, sizeof(m->name), "%s", params->name);
	m->p.name = m->name;
	m->limits_preauth = (struct msg_limits){ MSGR_PREAUTH_PAYLOAD_MAX, 0,
						 msgr_type_preauth, m };
	m->limits_up = (struct msg_limits){ params->payload_max,
					    params->data_max, msgr_type_up, m };
	list_init(&m->conns);
	m->listen_fd = -1;
	io_timer_init(&m->accept_timer, msgr_accept_retry, m);
	int rc = msgr_session_init(m);
	if (rc) {
		free(m);
		return rc;
	}
	*out = m;
	return 0;
}

static bool msgr_accept_idle(void *arg)
{
	return !((struct msgr *)arg)->accept_op.in_flight;
}

static bool msgr_no_conns(void *arg)
{
	return list_empty(&((struct msgr *)arg)->conns);
}

void msgr_destroy(struct msgr *m)
{
	if (!m)
		return;
	m->destroying = true;
	io_timer_disarm(m->loop, &m->accept_timer);
	if (m->listen_fd >= 0) {
		io_cancel(m->loop, &m->accept_op);
		io_loop_run_until(m->loop, msgr_accept_idle, m);
		io_close(m->loop, m->listen_fd);
		m->listen_fd = -1;
	}
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &m->conns)
		msgr_conn_close(list_entry(pos, struct msgr_conn, node));
	io_loop_run_until(m->loop, msgr_no_conns, m);
	msgr_session_fini(m);
	free(m);
}

void msgr_forget(struct msgr *m)
{
	if (!m)
		return;
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &m->conns) {
		struct msgr_conn *c = list_entry(pos, struct msgr_conn, node);
		msg_rx_reset(&c->rx);
		conn_drop_queue(c, &c->sendq);
		conn_drop_queue(c, &c->pendq);
		list_del(&c->node);
		free(c->rxbuf);
		free(c);
	}
	msgr_session_fini(m);
	free(m);
}

/* --- accessors ------------------------------------------------------------------ */

bool msgr_conn_up(const struct msgr_conn *c)
{
	return c->state == CONN_UP;
}

bool msgr_conn_outgoing(const struct msgr_conn *c)
{
	return c->outgoing;
}

const char *msgr_conn_peer_name(const struct msgr_conn *c)
{
	return c->state == CONN_UP ? c->peer_name : "";
}

void msgr_conn_close_when_sent(struct msgr_conn *c, const char *why)
{
	BASALT_ASSERT(!c->outgoing);
	if (c->state != CONN_UP || c->fail_when_sent)
		return;
	c->fail_when_sent = true;
	c->fail_err = -EACCES;
	c->fail_why = why;
	if (list_empty(&c->sendq))
		conn_fail(c, c->fail_err, c->fail_why);
	else /* at most this long for the peer to read it */
		io_timer_arm(c->m->loop, &c->timer, c->m->p.handshake_timeout_ns);
}

void msgr_conn_set_ctx(struct msgr_conn *c, void *ctx)
{
	c->owner_ctx = ctx;
}

void *msgr_conn_ctx(const struct msgr_conn *c)
{
	return c->owner_ctx;
}

bool msgr_conn_peer_in_keyring(const struct msgr_conn *c)
{
	return c->state == CONN_UP && c->peer_in_keyring;
}

const uint8_t *msgr_conn_key_id(const struct msgr_conn *c)
{
	return c->key_id;
}

const uint8_t *msgr_conn_session_key(const struct msgr_conn *c)
{
	return c->session;
}

void msgr_for_each_conn(struct msgr *m, void (*fn)(struct msgr_conn *conn, void *arg), void *arg)
{
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &m->conns)
		fn(list_entry(pos, struct msgr_conn, node), arg);
}

const char *msgr_conn_peer_addr(const struct msgr_conn *c)
{
	return c->peer_addr;
}

size_t msgr_conn_queued_bytes(const struct msgr_conn *c)
{
	conn_check(c);
	return c->sendq_bytes;
}


struct msgr *msgr_conn_msgr(const struct msgr_conn *c)
{
	return c->m;
}

void *msgr_ctx(const struct msgr *m)
{
	return m->p.ctx;
}

struct io_loop *msgr_loop(const struct msgr *m)
{
	return m->loop;
}

const struct msgr_stats *msgr_stats(const struct msgr *m)
{
	return &m->stats;
}
