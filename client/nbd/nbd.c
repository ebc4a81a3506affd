/* The NBD server (see nbd.h).
 *
 * A connection's states, each driven by "receive exactly N bytes":
 *
 *   accept -> GREETING sent, CLIENT_FLAGS read -> OPT_HEADER <-> OPT_DATA
 *          -> (GO or EXPORT_NAME) -> REQ_HEADER <-> REQ_DATA (writes)
 *   OPT_DATA of STARTTLS (--tls on|require) -> ACK queued -> TLS handshake
 *          (tls_start, once the ACK is on the wire; tls_handshake_done)
 *          -> OPT_HEADER, every later byte through c->tls
 *   any error, ABORT, DISC, EOF -> CLOSING (answers what is in flight,
 *   then TLS says close_notify, the socket closes and the connection is
 *   freed)
 *
 * Invariants: (1) nothing but option replies goes out before the export
 * is chosen; (2) a connection is freed only once no receive, send or
 * volume or backup request of it is in flight, no lock request of it
 * runs, no backup is being opened for it (c->opening: its options
 * wait for backup_opened), and its TLS stream, if any, is closed
 * (c->tls_closed: close_notify sent; no handshake or close in flight);
 * (3) every request read is answered exactly once, unless the connection
 * closed first; (4) a change (WRITE, TRIM, WRITE_ZEROES, FLUSH) reaches
 * the volume only on a connection that holds the volume's lock — until
 * then it waits on lock_wait, and a refused lock refuses it; (5) under
 * --tls require, before TLS is up no option but STARTTLS and ABORT is
 * acted on (ERR_TLS_REQD; EXPORT_NAME, which cannot be refused, closes);
 * (6) after STARTTLS's ACK nothing is read or sent in the clear: the
 * handshake starts once the ACK and all queued before it are sent, and
 * no receive is posted until it ends — nothing the client sent after its
 * STARTTLS was read either, since every receive asks for exactly the
 * bytes of the stage, so the next bytes must be its ClientHello.
 *
 * The lock is taken at the first change, not at GO: an NBD client cannot
 * say that it only reads, and a look (nbdinfo, nbdfuse -r, qemu-img info)
 * at a volume another client writes must neither be refused nor move the
 * map. */
#include "nbd.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/assert.h"
#include "common/list.h"
#include "common/log.h"
#include "nbd_backup.h"
#include "nbd_proto.h"

#define NBD_LISTENERS_MAX 8
#define NBD_MIN_BLOCK 512u
#define NBD_BACKUP_PREFIX "backup:" /* volume names never hold ':' */

enum conn_stage { ST_CLIENT_FLAGS, ST_OPT_HEADER, ST_OPT_DATA, ST_REQ_HEADER, ST_REQ_DATA };

struct nbd_listener {
	struct nbd_server *s;
	int fd;
	struct io_op accept;
	bool armed;
};

/* Request kinds for the metrics: READ, WRITE, FLUSH, TRIM, WRITE_ZEROES,
 * BLOCK_STATUS, CACHE, and anything else. */
#define NBD_METRICS_KINDS 8
/* Transmission reads requests through a buffer of this size, so one
 * receive takes every request the client has sent (at queue depth 32, up
 * to 32 headers); parts of at least NBD_DIRECT_MIN bytes (a big write's
 * data) are received straight into their own buffer instead. */
#define NBD_RXBUF_LEN (64 * 1024)
#define NBD_DIRECT_MIN (16 * 1024)
/* Replies gathered into one send: two parts each (header, payload). */
#define NBD_IOV_MAX 64
static const char *const nbd_metrics_kinds[NBD_METRICS_KINDS] = {
	"read", "write", "flush", "trim", "write_zeroes", "block_status", "cache", "other",
};

struct nbd_metrics {
	struct metrics_registry *own; /* when the params gave none */
	struct metrics_series *requests[NBD_METRICS_KINDS], *errors[NBD_METRICS_KINDS];
	struct metrics_series *latency[NBD_METRICS_KINDS];
	struct metrics_series *read_bytes, *written_bytes;
	struct metrics_series *conns_open, *conns_total, *conns_refused;
};

struct nbd_server {
	struct io_loop *loop;
	struct bs_client *client;
	struct nbd_params p;
	struct nbd_listener listeners[NBD_LISTENERS_MAX];
	int n_listeners;
	struct list_node conns;
	bool stopping;
	struct nbd_server_stats stats;
	struct nbd_metrics m;
};

/* A buffer queued for sending: a small header and an optional payload. */
struct nbd_out {
	struct list_node node;
	uint8_t head[64];
	size_t head_len;
	void *payload; /* freed after sending (free()) */
	size_t payload_len;
	size_t sent;
};

struct nbd_conn {
	struct list_node node;
	struct nbd_server *s;
	int fd;
	char peer[64];
	enum conn_stage stage;
	bool closing, transmission;
	bool read_only; /* the server's --read-only, or a snapshot's export */
	/* receiving: WANT bytes into RBUF for STAGE (expecting), GOT so far */
	struct io_op recv_op;
	bool receiving, rx_direct;
	bool expecting, driving;
	uint8_t small[NBD_REQUEST_LEN];
	uint8_t *rbuf;
	size_t want, got;
	/* In transmission: bytes received ahead, RX_POS..RX_LEN of RXBUF. */
	uint8_t *rxbuf;
	size_t rx_pos, rx_len;
	uint8_t *data; /* option data or write payload being received */
	struct nbd_opt_header opt;
	struct nbd_request req;
	/* sending */
	struct list_node sendq;
	struct io_op send_op;
	bool sending;
	struct iovec iov[NBD_IOV_MAX];
	/* the export: a volume (VOL, VOL@SNAP) or a backup (backup:ID) */
	struct bs_volume *vol;
	struct nbd_backup *bk;
	bool opening;		      /* a backup being opened for GO/INFO/EXPORT_NAME */
	struct nbd_opt_go *open_go;   /* its GO/INFO (NULL: EXPORT_NAME) */
	bool open_go_too;	      /* GO, not INFO */
	char *open_name;	      /* its export name */
	bool locking, locked;	      /* its volume's lock: being taken, held */
	char lock_name[MAP_NAME_MAX]; /* the volume, as opened */
	struct list_node lock_wait;   /* struct nbd_job: changes waiting for the lock */
	bool structured, allocation, no_zeroes;
	unsigned inflight; /* volume requests */
	struct io_timer deadline;
	/* TLS (STARTTLS): the stream, once the option is acknowledged */
	struct tls_stream *tls;
	bool tls_starting; /* ACK queued: handshake once it is sent */
	bool tls_busy;	   /* tls_op (handshake or close) in flight */
	bool tls_up;	   /* receives and sends go through tls */
	bool tls_closed;   /* the stream's close completed */
	struct io_op tls_op;
};

/* A request in transmission, while its volume request runs. */
struct nbd_job {
	struct bs_vio vio;
	struct list_node link; /* nbd_conn.lock_wait */
	struct nbd_conn *c;
	struct nbd_request req;
	uint8_t *buf;
	struct nbd_backup_read backup_read; /* a READ of a backup:ID export */
	uint64_t start_ns; /* when its request was complete */
};

static unsigned metrics_kind(uint16_t type)
{
	switch (type) {
	case NBD_CMD_READ: return 0;
	case NBD_CMD_WRITE: return 1;
	case NBD_CMD_FLUSH: return 2;
	case NBD_CMD_TRIM: return 3;
	case NBD_CMD_WRITE_ZEROES: return 4;
	case NBD_CMD_BLOCK_STATUS: return 5;
	case NBD_CMD_CACHE: return 6;
	default: return 7;
	}
}

/* A request of TYPE answered with RC without running (not timed). */
static void metrics_refused(struct nbd_server *s, uint16_t type, int rc)
{
	if (rc)
		metrics_counter_add(s->m.errors[metrics_kind(type)], 1);
}

/* J answered with RC: its latency, and the bytes it moved. */
static void metrics_answered(struct nbd_server *s, const struct nbd_job *j, int rc)
{
	unsigned kind = metrics_kind(j->req.type);
	uint64_t now = io_now_ns(s->loop);
	metrics_histogram_observe_ns(s->m.latency[kind], now > j->start_ns ? now - j->start_ns : 0);
	if (rc)
		metrics_counter_add(s->m.errors[kind], 1);
	else if (j->req.type == NBD_CMD_READ)
		metrics_counter_add(s->m.read_bytes, j->req.len);
	else if (j->req.type == NBD_CMD_WRITE)
		metrics_counter_add(s->m.written_bytes, j->req.len);
}

static void conn_recv(struct nbd_conn *c);
static void conn_close(struct nbd_conn *c, const char *why);
static void conn_maybe_free(struct nbd_conn *c);
static void tls_start(struct nbd_conn *c);

/* --- sending --------------------------------------------------------------------- */

static void conn_send_next(struct nbd_conn *c);

static void send_done(struct io_op *op, int res)
{
	struct nbd_conn *c = op->ctx;
	c->sending = false;
	if (res <= 0 || c->fd < 0) {
		conn_close(c, res < 0 ? strerror(-res) : "the client went away");
		conn_maybe_free(c);
		return;
	}
	size_t n = (size_t)res;
	while (n) { /* a send may end inside any reply it gathered */
		struct nbd_out *o = list_entry(list_first(&c->sendq), struct nbd_out, node);
		size_t left = o->head_len + o->payload_len - o->sent;
		size_t take = n < left ? n : left;
		o->sent += take;
		n -= take;
		if (o->sent == o->head_len + o->payload_len) {
			list_del(&o->node);
			free(o->payload);
			free(o);
		}
	}
	conn_send_next(c);
	tls_start(c);
	conn_maybe_free(c);
}

static void conn_send_next(struct nbd_conn *c)
{
	if (c->sending || list_empty(&c->sendq) || c->fd < 0 || (c->tls_busy && !c->tls_up))
		return;
	/* Every queued reply that fits, in one send: replies that completed
	 * while the last send was in flight go out together. */
	int n = 0;
	struct list_node *pos;
	list_for_each(pos, &c->sendq) {
		struct nbd_out *o = list_entry(pos, struct nbd_out, node);
		if (n + 2 > NBD_IOV_MAX)
			break;
		if (o->sent < o->head_len)
			c->iov[n++] = (struct iovec){ o->head + o->sent, o->head_len - o->sent };
		if (o->payload_len) {
			size_t done = o->sent > o->head_len ? o->sent - o->head_len : 0;
			c->iov[n++] = (struct iovec){ (uint8_t *)o->payload + done,
						      o->payload_len - done };
		}
	}
	c->sending = true;
	c->send_op.ctx = c;
	c->send_op.done = send_done;
	if (c->tls_up)
		tls_stream_send(c->tls, &c->send_op, c->iov, n);
	else
		io_send(c->s->loop, &c->send_op, c->fd, c->iov, n);
}

/* Queues HEAD (copied) and PAYLOAD (ownership taken, may be NULL). */
static void conn_send(struct nbd_conn *c, const void *head, size_t head_len, void *payload,
		      size_t payload_len)
{
	struct nbd_out *o = calloc(1, sizeof(*o));
	if (!o || head_len > sizeof(o->head) || c->fd < 0) {
		free(o);
		free(payload);
		return;
	}
	memcpy(o->head, head, head_len);
	o->head_len = head_len;
	o->payload = payload;
	o->payload_len = payload_len;
	list_add_tail(&c->sendq, &o->node);
	conn_send_next(c);
}

/* An option reply carrying DATA (copied). */
static void opt_reply(struct nbd_conn *c, uint32_t type, const void *data, uint32_t len)
{
	uint8_t h[20];
	void *copy = len ? malloc(len) : NULL;
	if (len && !copy)
		return;
	if (len)
		memcpy(copy, data, len);
	conn_send(c, h, nbd_put_opt_reply(h, c->opt.opt, type, len), copy, len);
}

/* An option refused, with a message for people. */
static void opt_error(struct nbd_conn *c, uint32_t type, const char *msg)
{
	LOG_DEBUG("nbd %s: option %u refused: %s", c->peer, c->opt.opt, msg);
	opt_reply(c, type, msg, (uint32_t)strlen(msg));
}

/* --- life cycle of a connection ----------------------------------------------------- */

/* The lock goes back when the last connection holding it closes (one
 * still taking it counts: its bs_lock may already have been answered
 * from the lock this one holds). */
static void conn_unlock(struct nbd_conn *c)
{
	if (!c->locked)
		return;
	c->locked = false;
	struct list_node *pos;
	list_for_each(pos, &c->s->conns) {
		struct nbd_conn *o = list_entry(pos, struct nbd_conn, node);
		if ((o->locked || o->locking) && !strcmp(o->lock_name, c->lock_name))
			return;
	}
	LOG_INFO("nbd: no writer of volume %s left: releasing its lock", c->lock_name);
	bs_unlock(c->s->client, c->lock_name);
}

static void tls_closed(struct io_op *op, int res)
{
	(void)res;
	struct nbd_conn *c = op->ctx;
	c->tls_busy = false;
	c->tls_closed = true;
	conn_maybe_free(c);
}

static void conn_maybe_free(struct nbd_conn *c)
{
	if (!c->closing || c->receiving || c->sending || c->inflight || c->locking || c->opening ||
	    c->tls_busy)
		return;
	if (c->tls && !c->tls_closed) { /* close_notify first, then the socket */
		c->tls_busy = true;
		c->tls_op = (struct io_op){ .ctx = c, .done = tls_closed };
		tls_stream_close(c->tls, &c->tls_op);
		return;
	}
	conn_unlock(c);
	io_timer_disarm(c->s->loop, &c->deadline);
	if (c->fd >= 0)
		io_close(c->s->loop, c->fd);
	tls_stream_destroy(c->tls);
	while (!list_empty(&c->sendq)) {
		struct nbd_out *o = list_entry(list_first(&c->sendq), struct nbd_out, node);
		list_del(&o->node);
		free(o->payload);
		free(o);
	}
	list_del(&c->node);
	c->s->stats.open--;
	metrics_gauge_add(c->s->m.conns_open, -1);
	bs_volume_close(c->vol);
	if (c->bk)
		nbd_backup_put(c->bk);
	free(c->data);
	free(c->rxbuf);
	free(c);
}

/* Stops reading; what is in flight is still answered (sends go on while
 * the socket is open), then the connection goes. */
static void conn_close(struct nbd_conn *c, const char *why)
{
	if (c->closing)
		return;
	c->closing = true;
	LOG_DEBUG("nbd %s: closing (%s)", c->peer, why);
	if (c->receiving && c->tls_up)
		tls_stream_cancel(c->tls, &c->recv_op);
	else if (c->receiving)
		io_cancel(c->s->loop, &c->recv_op);
	if (c->tls_busy && !c->tls_up) /* the handshake: a client stalled in it */
		tls_stream_cancel(c->tls, &c->tls_op);
}

/* The client broke the protocol: say so in the log, close. */
static void conn_bad(struct nbd_conn *c, const char *why)
{
	LOG_WARN("nbd %s: %s; closing the connection", c->peer, why);
	c->s->stats.bad_clients++;
	conn_close(c, why);
}

/* Only the client can be late here: choosing an export waits for
 * nothing on the server's side (the lock is taken at the first change). */
static void deadline_fire(struct io_timer *t)
{
	struct nbd_conn *c = t->ctx;
	if (!c->transmission) {
		char why[128];
		snprintf(why, sizeof(why), "%s within the handshake timeout (%llu ms)",
			 c->tls && !c->tls_up ? "no TLS handshake" : "no export chosen",
			 (unsigned long long)c->s->p.handshake_timeout_ms);
		conn_bad(c, why);
	}
	conn_maybe_free(c);
}

/* --- receiving -------------------------------------------------------------------- */

static void handle_stage(struct nbd_conn *c);
static void conn_drive(struct nbd_conn *c);

static void recv_done(struct io_op *op, int res)
{
	struct nbd_conn *c = op->ctx;
	c->receiving = false;
	if (c->closing || res <= 0) {
		if (res == 0 && !c->closing)
			conn_close(c, "the client closed the connection");
		else if (res < 0 && res != -ECANCELED && !c->closing)
			conn_close(c, strerror(-res));
		conn_maybe_free(c);
		return;
	}
	if (c->rx_direct)
		c->got += (size_t)res;
	else
		c->rx_len = (size_t)res;
	conn_drive(c);
	conn_maybe_free(c);
}

/* Receives the rest of what is expected: straight into RBUF while
 * negotiating (never past the part expected: after STARTTLS the next bytes
 * are TLS, and plaintext sent behind it must not be read as options) or
 * for a big part; otherwise into RXBUF, as much as the client has sent. */
static void conn_recv(struct nbd_conn *c)
{
	if (c->closing || c->receiving)
		return;
	BASALT_ASSERT(c->rx_pos == c->rx_len);
	size_t left = c->want - c->got;
	uint8_t *dst = c->rbuf + c->got;
	c->rx_direct = !c->transmission || !c->rxbuf || left >= NBD_DIRECT_MIN;
	if (!c->rx_direct) {
		c->rx_pos = c->rx_len = 0;
		dst = c->rxbuf;
		left = NBD_RXBUF_LEN;
	}
	c->receiving = true;
	c->recv_op.ctx = c;
	c->recv_op.done = recv_done;
	if (c->tls_up)
		tls_stream_recv(c->tls, &c->recv_op, dst, left);
	else
		io_recv(c->s->loop, &c->recv_op, c->fd, dst, left);
}

/* Handles every expected part the received bytes complete, then receives
 * for the next. A loop, not recursion: a buffer may hold thousands of
 * requests, and each stage's handler calls expect() for the next part. */
static void conn_drive(struct nbd_conn *c)
{
	if (c->driving)
		return;
	c->driving = true;
	while (c->expecting && !c->closing && !c->receiving) {
		size_t have = c->rx_len - c->rx_pos, need = c->want - c->got;
		size_t n = have < need ? have : need;
		if (n)
			memcpy(c->rbuf + c->got, c->rxbuf + c->rx_pos, n);
		c->rx_pos += n;
		c->got += n;
		if (c->got < c->want) {
			conn_recv(c);
			break;
		}
		c->expecting = false;
		handle_stage(c);
	}
	c->driving = false;
}

/* Receives LEN bytes into BUF next, then handle_stage(STAGE). */
static void expect(struct nbd_conn *c, enum conn_stage stage, void *buf, size_t len)
{
	c->stage = stage;
	c->rbuf = buf;
	c->want = len;
	c->got = 0;
	c->expecting = true;
	conn_drive(c);
}

/* --- options --------------------------------------------------------------------- */

static uint16_t export_flags(struct nbd_conn *c, bool ro)
{
	(void)c;
	uint16_t f = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
		     NBD_FLAG_CAN_MULTI_CONN;
	if (ro)
		f |= NBD_FLAG_READ_ONLY;
	else
		f |= NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_SEND_FAST_ZERO;
	return f;
}

static uint64_t conn_size(const struct nbd_conn *c)
{
	return c->bk ? nbd_backup_size(c->bk) : bs_volume_size(c->vol);
}

/* The unit of holes and block status: the volume's objects, the
 * backup's chunks. */
static uint32_t conn_granule(const struct nbd_conn *c)
{
	return c->bk ? nbd_backup_chunk_size(c->bk) : bs_volume_object_size(c->vol);
}

/* Opens the export NAME: 0, or the option error to send. */
static uint32_t open_export(struct nbd_conn *c, const char *name, struct bs_volume **out,
			    const char **msg)
{
	if (!name[0]) {
		*msg = "give a volume name as the export name";
		return NBD_REP_ERR_UNKNOWN;
	}
	/* VOLUME@SNAP: a snapshot, read-only whatever the server's mode. */
	c->read_only = c->s->p.read_only || strchr(name, '@');
	int rc = bs_volume_open(c->s->client, name, c->read_only, out);
	if (rc == -EPERM) { /* our key may only read it: so may the client */
		LOG_INFO("nbd %s: volume %s exported read-only: this server's key may not write it",
			 c->peer, name);
		c->read_only = true;
		rc = bs_volume_open(c->s->client, name, true, out);
	}
	if (rc == -EACCES) {
		*msg = "this server's key may not read that volume (its caps)";
		LOG_WARN("nbd %s: refused volume %s: this server's key may not read it", c->peer,
			 name);
		return NBD_REP_ERR_POLICY;
	}
	if (rc == -ENOENT) {
		*msg = strchr(name, '@') ? "no such volume or snapshot" : "no such volume";
		return NBD_REP_ERR_UNKNOWN;
	}
	if (rc) {
		*msg = "cannot open the volume";
		return NBD_REP_ERR_PLATFORM;
	}
	return 0;
}

/* GO's or INFO's answer for an export of SIZE bytes, PREFERRED its
 * preferred block size. */
static void send_info(struct nbd_conn *c, uint64_t size, uint32_t preferred,
		      const struct nbd_opt_go *go)
{
	uint8_t b[32];
	size_t n = nbd_put_info_export(b, size, export_flags(c, c->read_only));
	opt_reply(c, NBD_REP_INFO, b, (uint32_t)n);
	bool want_bs = false, want_name = false;
	for (uint16_t i = 0; i < go->n_requests && i < 64; i++) {
		want_bs |= go->requests[i] == NBD_INFO_BLOCK_SIZE;
		want_name |= go->requests[i] == NBD_INFO_NAME;
	}
	if (want_name) {
		uint8_t nb[2 + NBD_NAME_MAX];
		size_t l = strlen(go->name);
		nbd_put_be16(nb, NBD_INFO_NAME);
		memcpy(nb + 2, go->name, l);
		opt_reply(c, NBD_REP_INFO, nb, (uint32_t)(2 + l));
	}
	/* Always (the client may not ask): 512-byte writes work (partial
	 * chunks are read-modify-written), whole 4 KiB chunks are faster. */
	(void)want_bs;
	n = nbd_put_info_block_size(b, NBD_MIN_BLOCK, preferred, c->s->p.max_request);
	opt_reply(c, NBD_REP_INFO, b, (uint32_t)n);
}

static void start_transmission(struct nbd_conn *c)
{
	c->transmission = true;
	c->rxbuf = malloc(NBD_RXBUF_LEN); /* without it, one receive per part */
	io_timer_disarm(c->s->loop, &c->deadline);
	LOG_INFO("nbd %s: exporting %s %s of %" PRIu64 " bytes%s%s", c->peer,
		 c->bk ? "backup" : "volume", c->bk ? nbd_backup_id(c->bk) : c->lock_name,
		 conn_size(c), c->structured ? " (structured replies)" : "",
		 c->tls_up ? " over TLS" : "");
	expect(c, ST_REQ_HEADER, c->small, NBD_REQUEST_LEN);
}

/* The export (c->vol or c->bk) is open: answer GO (with its INFO) or
 * EXPORT_NAME and start transmission. No lock yet: see the top. */
static void finish_open(struct nbd_conn *c, const char *name, const struct nbd_opt_go *go)
{
	if (go) {
		send_info(c, conn_size(c), conn_granule(c), go);
		opt_reply(c, NBD_REP_ACK, NULL, 0);
	} else {
		uint8_t b[10 + 124] = { 0 };
		nbd_put_be64(b, conn_size(c));
		nbd_put_be16(b + 8, export_flags(c, c->read_only));
		conn_send(c, b, c->no_zeroes ? 10 : sizeof(b), NULL, 0);
	}
	snprintf(c->lock_name, sizeof(c->lock_name), "%s", name);
	start_transmission(c);
}

/* Back from nbd_backup_open: answer the GO, INFO or EXPORT_NAME that
 * waited for it, then read the next option (unless transmission began). */
static void backup_opened(void *arg, int rc, struct nbd_backup *bk, const char *why)
{
	struct nbd_conn *c = arg;
	struct nbd_opt_go *go = c->open_go;
	char *name = c->open_name;
	c->opening = false;
	c->open_go = NULL;
	c->open_name = NULL;
	if (c->closing) {
		if (bk)
			nbd_backup_put(bk);
	} else if (rc && go) {
		opt_error(c, rc == -ENOENT ? NBD_REP_ERR_UNKNOWN : NBD_REP_ERR_PLATFORM, why);
	} else if (rc) {
		/* No way to refuse EXPORT_NAME but closing. */
		LOG_INFO("nbd %s: export '%s': %s", c->peer, name, why);
		conn_close(c, why);
	} else if (go && !c->open_go_too) {
		send_info(c, nbd_backup_size(bk), nbd_backup_chunk_size(bk), go);
		opt_reply(c, NBD_REP_ACK, NULL, 0);
		nbd_backup_put(bk);
	} else {
		c->bk = bk;
		finish_open(c, name, go);
	}
	free(go);
	free(name);
	if (!c->closing && !c->transmission)
		expect(c, ST_OPT_HEADER, c->small, 16);
	conn_maybe_free(c);
}

/* Export backup:ID, asked for by GO or INFO (GO, owned from now on) or by
 * EXPORT_NAME (GO NULL): opened on a fetch thread, since that reads the
 * bucket (backup_opened goes on); options wait meanwhile. */
static void backup_open(struct nbd_conn *c, const char *name, struct nbd_opt_go *go,
			bool go_too)
{
	const char *msg = "no backup repository configured (--backup-repo)";
	if (c->s->p.backups && !(c->open_name = strdup(name)))
		msg = "out of memory";
	if (!c->open_name) {
		if (go)
			opt_error(c, NBD_REP_ERR_UNKNOWN, msg);
		else
			conn_close(c, msg);
		free(go);
		return;
	}
	c->read_only = true; /* a backup never changes: for INFO and GO alike */
	c->opening = true;
	c->open_go = go;
	c->open_go_too = go_too;
	nbd_backup_open(c->s->p.backups, name + strlen(NBD_BACKUP_PREFIX), backup_opened, c);
}

static bool backup_name(const char *name)
{
	return !strncmp(name, NBD_BACKUP_PREFIX, strlen(NBD_BACKUP_PREFIX));
}

static void opt_go(struct nbd_conn *c, bool go_too)
{
	struct nbd_opt_go *go = malloc(sizeof(*go));
	if (!go || nbd_opt_go_decode(c->data, c->opt.len, go)) {
		free(go);
		opt_error(c, NBD_REP_ERR_INVALID, "malformed request");
		return;
	}
	if (backup_name(go->name)) {
		backup_open(c, go->name, go, go_too);
		return;
	}
	const char *msg = NULL;
	struct bs_volume *v = NULL;
	uint32_t err = open_export(c, go->name, &v, &msg);
	if (err) {
		opt_error(c, err, msg);
	} else if (go_too) {
		c->vol = v;
		finish_open(c, go->name, go);
	} else {
		send_info(c, bs_volume_size(v), bs_volume_object_size(v), go);
		opt_reply(c, NBD_REP_ACK, NULL, 0);
		bs_volume_close(v);
	}
	free(go);
}

static void opt_export_name(struct nbd_conn *c)
{
	char name[NBD_NAME_MAX + 1];
	if (c->opt.len > NBD_NAME_MAX) {
		conn_bad(c, "export name too long");
		return;
	}
	memcpy(name, c->data, c->opt.len);
	name[c->opt.len] = '\0';
	if (backup_name(name)) {
		backup_open(c, name, NULL, true);
		return;
	}
	const char *msg = NULL;
	struct bs_volume *v = NULL;
	if (open_export(c, name, &v, &msg)) {
		/* No way to refuse EXPORT_NAME but closing. */
		LOG_INFO("nbd %s: export '%s': %s", c->peer, name, msg);
		conn_close(c, msg);
		return;
	}
	c->vol = v;
	finish_open(c, name, NULL);
}

static void opt_list(struct nbd_conn *c)
{
	if (c->opt.len) {
		opt_error(c, NBD_REP_ERR_INVALID, "LIST takes no data");
		return;
	}
	const struct cluster_map *m = bs_client_map(c->s->client);
	for (uint32_t i = 0; i < m->n_volumes; i++) {
		uint8_t b[4 + MAP_NAME_MAX];
		size_t l = strlen(m->volumes[i].name);
		nbd_put_be32(b, (uint32_t)l);
		memcpy(b + 4, m->volumes[i].name, l);
		opt_reply(c, NBD_REP_SERVER, b, (uint32_t)(4 + l));
	}
	opt_reply(c, NBD_REP_ACK, NULL, 0);
}

static void opt_meta(struct nbd_conn *c, bool set)
{
	char name[NBD_NAME_MAX + 1];
	bool alloc;
	uint32_t n;
	if (!c->structured) {
		opt_error(c, NBD_REP_ERR_INVALID, "negotiate structured replies first");
		return;
	}
	if (nbd_opt_meta_decode(c->data, c->opt.len, name, sizeof(name), &alloc, &n)) {
		opt_error(c, NBD_REP_ERR_INVALID, "malformed request");
		return;
	}
	if (!set && n == 0)
		alloc = true; /* LIST with no query lists everything */
	if (set)
		c->allocation = alloc;
	if (alloc) {
		uint8_t b[4 + sizeof(NBD_ALLOCATION_CONTEXT)];
		nbd_put_be32(b, NBD_ALLOCATION_ID);
		memcpy(b + 4, NBD_ALLOCATION_CONTEXT, strlen(NBD_ALLOCATION_CONTEXT));
		opt_reply(c, NBD_REP_META_CONTEXT, b,
			  (uint32_t)(4 + strlen(NBD_ALLOCATION_CONTEXT)));
	}
	opt_reply(c, NBD_REP_ACK, NULL, 0);
}

/* --- TLS (NBD_OPT_STARTTLS) -------------------------------------------------------- */

static void tls_handshake_done(struct io_op *op, int res)
{
	struct nbd_conn *c = op->ctx;
	c->tls_busy = false;
	if (res && !c->closing) {
		char why[600];
		snprintf(why, sizeof(why), "%s", tls_stream_why(c->tls));
		conn_bad(c, why);
	} else if (!res && !c->closing) {
		const char *psk = tls_stream_psk_identity(c->tls);
		LOG_INFO("nbd %s: TLS up (%s, %s%s)", c->peer, tls_stream_describe(c->tls),
			 psk ? "PSK identity " : "X.509", psk ? psk : "");
		c->tls_up = true;
		/* The spec: nothing negotiated before STARTTLS survives it. */
		c->structured = false;
		c->allocation = false;
		expect(c, ST_OPT_HEADER, c->small, 16);
	}
	conn_maybe_free(c);
}

/* After STARTTLS's ACK: the handshake, once the ACK and every reply
 * queued before it are on the wire (invariant 6). */
static void tls_start(struct nbd_conn *c)
{
	if (!c->tls_starting || c->closing || c->sending || !list_empty(&c->sendq))
		return;
	c->tls_starting = false;
	c->tls_busy = true;
	c->tls_op = (struct io_op){ .ctx = c, .done = tls_handshake_done };
	tls_stream_handshake(c->tls, &c->tls_op);
}

static void opt_starttls(struct nbd_conn *c)
{
	if (c->s->p.tls == NBD_TLS_OFF) {
		opt_error(c, NBD_REP_ERR_POLICY, "TLS is not offered by this server");
		return;
	}
	if (c->tls) {
		opt_error(c, NBD_REP_ERR_INVALID, "TLS is already running");
		return;
	}
	if (c->opt.len) {
		opt_error(c, NBD_REP_ERR_INVALID, "STARTTLS takes no data");
		return;
	}
	if (tls_stream_create(c->s->loop, c->s->p.tls_config, c->fd, &c->tls)) {
		opt_error(c, NBD_REP_ERR_PLATFORM, "out of memory");
		return;
	}
	opt_reply(c, NBD_REP_ACK, NULL, 0);
	c->tls_starting = true;
	tls_start(c);
}

/* FORCEDTLS: whether option c->opt may run; if not it was refused. */
static bool tls_allows(struct nbd_conn *c)
{
	if (c->s->p.tls != NBD_TLS_REQUIRE || c->tls_up || c->opt.opt == NBD_OPT_STARTTLS ||
	    c->opt.opt == NBD_OPT_ABORT)
		return true;
	if (c->opt.opt == NBD_OPT_EXPORT_NAME)
		conn_bad(c, "EXPORT_NAME before STARTTLS, and this server requires TLS");
	else
		opt_error(c, NBD_REP_ERR_TLS_REQD, "this server requires TLS: send STARTTLS first");
	return false;
}

static void run_option(struct nbd_conn *c)
{
	switch (c->opt.opt) {
	case NBD_OPT_EXPORT_NAME:
		opt_export_name(c);
		break;
	case NBD_OPT_ABORT:
		opt_reply(c, NBD_REP_ACK, NULL, 0);
		conn_close(c, "the client aborted");
		break;
	case NBD_OPT_LIST:
		opt_list(c);
		break;
	case NBD_OPT_INFO:
	case NBD_OPT_GO:
		opt_go(c, c->opt.opt == NBD_OPT_GO);
		break;
	case NBD_OPT_STRUCTURED_REPLY:
		if (c->opt.len) {
			opt_error(c, NBD_REP_ERR_INVALID, "STRUCTURED_REPLY takes no data");
			break;
		}
		c->structured = true;
		opt_reply(c, NBD_REP_ACK, NULL, 0);
		break;
	case NBD_OPT_LIST_META_CONTEXT:
	case NBD_OPT_SET_META_CONTEXT:
		opt_meta(c, c->opt.opt == NBD_OPT_SET_META_CONTEXT);
		break;
	case NBD_OPT_STARTTLS:
		opt_starttls(c);
		break;
	default:
		opt_error(c, NBD_REP_ERR_UNSUP, "unknown option");
	}
}

static void handle_option(struct nbd_conn *c)
{
	LOG_DEBUG("nbd %s: option %u (%u bytes)", c->peer, c->opt.opt, c->opt.len);
	if (tls_allows(c))
		run_option(c);
	free(c->data);
	c->data = NULL;
	/* The next option, unless one waits (a backup opening, TLS starting). */
	if (!c->closing && !c->transmission && !c->opening && (!c->tls || c->tls_up))
		expect(c, ST_OPT_HEADER, c->small, 16);
}

/* --- transmission ------------------------------------------------------------------ */

static void simple_reply(struct nbd_conn *c, uint64_t handle, int rc, void *data, size_t len)
{
	uint8_t h[16];
	c->s->stats.errors += rc != 0;
	conn_send(c, h, nbd_put_simple_reply(h, nbd_errno(rc), handle), data, len);
}

/* Structured: one chunk with DONE. */
static void chunk_reply(struct nbd_conn *c, uint64_t handle, uint16_t type, const void *head,
			size_t head_len, void *data, size_t len)
{
	uint8_t h[64];
	size_t n = nbd_put_chunk(h, NBD_REPLY_FLAG_DONE, type, handle,
				 (uint32_t)(head_len + len));
	memcpy(h + n, head, head_len);
	conn_send(c, h, n + head_len, data, len);
}

/* MSG (may be NULL) is for people: the client may show it. */
static void error_chunk(struct nbd_conn *c, uint64_t handle, int rc, const char *msg)
{
	uint8_t e[6];
	size_t len = msg ? strlen(msg) : 0;
	char *copy = len ? strdup(msg) : NULL;
	if (!copy)
		len = 0;
	nbd_put_be32(e, nbd_errno(rc));
	nbd_put_be16(e + 4, (uint16_t)len);
	c->s->stats.errors++;
	chunk_reply(c, handle, NBD_REPLY_TYPE_ERROR, e, sizeof(e), copy, len);
}

/* Whether chunks FIRST..LAST of the backup are all holes. */
static bool backup_holes(const struct nbd_backup *bk, uint64_t first, uint64_t last)
{
	for (uint64_t i = first; i <= last; i++)
		if (nbd_backup_has(bk, i))
			return false;
	return true;
}

/* WHY (may be NULL) goes to a structured error. */
static void reply_read(struct nbd_conn *c, struct nbd_job *j, int rc, const char *why)
{
	if (!c->structured) {
		simple_reply(c, j->req.handle, rc, rc ? NULL : j->buf, rc ? 0 : j->req.len);
		if (!rc)
			j->buf = NULL; /* the send owns it */
		return;
	}
	if (rc) {
		error_chunk(c, j->req.handle, rc, why);
		return;
	}
	uint32_t objects = conn_granule(c);
	uint64_t first = j->req.offset / objects, last = (j->req.offset + j->req.len - 1) / objects;
	uint8_t h[12];
	nbd_put_be64(h, j->req.offset);
	if (c->bk ? backup_holes(c->bk, first, last)
		  : j->vio.holes == last - first + 1) { /* none of it ever written */
		nbd_put_be32(h + 8, j->req.len);
		chunk_reply(c, j->req.handle, NBD_REPLY_TYPE_OFFSET_HOLE, h, 12, NULL, 0);
		return;
	}
	chunk_reply(c, j->req.handle, NBD_REPLY_TYPE_OFFSET_DATA, h, 8, j->buf, j->req.len);
	j->buf = NULL;
}

static void reply_block_status(struct nbd_conn *c, struct nbd_job *j, int rc)
{
	if (rc) {
		error_chunk(c, j->req.handle, rc, NULL);
		return;
	}
	uint32_t objects = conn_granule(c);
	uint64_t pos = j->req.offset, end = j->req.offset + j->req.len;
	uint64_t first = pos / objects;
	uint8_t *desc = malloc(4 + 8 * 1024);
	if (!desc) {
		error_chunk(c, j->req.handle, -ENOMEM, NULL);
		return;
	}
	size_t n = 4, count = 0;
	nbd_put_be32(desc, NBD_ALLOCATION_ID);
	while (pos < end) {
		uint64_t obj = pos / objects;
		uint32_t flags = j->buf[obj - first] ? 0 : NBD_STATE_HOLE | NBD_STATE_ZERO;
		uint64_t run_end = (obj + 1) * objects;
		while (run_end < end &&
		       (j->buf[run_end / objects - first] ? 0 : NBD_STATE_HOLE | NBD_STATE_ZERO) ==
			       flags)
			run_end += objects;
		if (run_end > end)
			run_end = end;
		nbd_put_be32(desc + n, (uint32_t)(run_end - pos));
		nbd_put_be32(desc + n + 4, flags);
		n += 8;
		count++;
		pos = run_end;
		if (j->req.flags & NBD_CMD_FLAG_REQ_ONE)
			break;
	}
	(void)count;
	uint8_t h[64];
	size_t hl = nbd_put_chunk(h, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_BLOCK_STATUS,
				  j->req.handle, (uint32_t)n);
	conn_send(c, h, hl, desc, n);
}

/* A request refused before it ran is the client's mistake (debug); one
 * that failed while running is an I/O error a guest sees (warn). */
static void log_request_error(struct nbd_conn *c, const struct nbd_request *r, int rc, bool ran)
{
	if (ran)
		LOG_WARN("nbd %s: command %u at %" PRIu64 " (+%u) failed: %s", c->peer, r->type,
			 r->offset, r->len, strerror(-rc));
	else
		LOG_DEBUG("nbd %s: command %u at %" PRIu64 " (+%u) refused: %s", c->peer, r->type,
			  r->offset, r->len, strerror(-rc));
}

/* Answers J with RC (a structured error carries WHY, may be NULL) and
 * frees it. RAN: it reached the volume (else it was refused). */
static void job_finish(struct nbd_job *j, int rc, const char *why, bool ran)
{
	struct nbd_conn *c = j->c;
	if (rc)
		log_request_error(c, &j->req, rc, ran);
	metrics_answered(c->s, j, rc);
	bool was_full = c->inflight >= c->s->p.max_inflight;
	c->inflight--;
	if (!c->closing || c->fd >= 0) {
		if (j->req.type == NBD_CMD_READ)
			reply_read(c, j, rc, why);
		else if (j->req.type == NBD_CMD_BLOCK_STATUS)
			reply_block_status(c, j, rc);
		else if (rc && why && c->structured)
			error_chunk(c, j->req.handle, rc, why);
		else
			simple_reply(c, j->req.handle, rc, NULL, 0);
	}
	free(j->buf);
	free(j);
	/* Reading had paused at the in-flight limit. */
	if (was_full && !c->closing && c->stage == ST_REQ_HEADER && !c->expecting)
		expect(c, ST_REQ_HEADER, c->small, NBD_REQUEST_LEN);
	conn_maybe_free(c);
}

static void job_done(struct bs_vio *vio, int rc)
{
	job_finish((struct nbd_job *)vio, rc, NULL, true);
}

/* The lock asked for at a connection's first change: run the changes
 * that waited for it, or refuse them all, naming the holder in the log
 * (and to the client, in a structured error). A later change asks again. */
static void lock_done(void *ctx, int rc, const char *why)
{
	struct nbd_conn *c = ctx;
	c->locking = false;
	c->locked = !rc;
	char msg[512] = "";
	if (rc) {
		snprintf(msg, sizeof(msg), "volume %s cannot be changed through this connection: %s%s",
			 c->lock_name, why,
			 rc == -EBUSY ? " (basalt-nbd --break-lock, or basalt volume unlock --force, "
					"takes it over)"
				      : "");
		LOG_WARN("nbd %s: %s", c->peer, msg);
	}
	/* The client learns EPERM: it may not change the volume now. */
	int err = rc == -EBUSY || rc == -EACCES ? -EPERM : rc;
	while (!list_empty(&c->lock_wait)) {
		struct nbd_job *j = list_entry(list_first(&c->lock_wait), struct nbd_job, link);
		list_del(&j->link);
		if (rc)
			job_finish(j, err, msg, false);
		else
			bs_volume_submit(c->vol, &j->vio);
	}
	conn_maybe_free(c);
}

/* Runs J now, or once the connection holds the volume's lock when J is a
 * change (see the top). */
static void job_submit(struct nbd_conn *c, struct nbd_job *j)
{
	bool change = j->vio.type == BS_VIO_WRITE || j->vio.type == BS_VIO_DISCARD ||
		      j->vio.type == BS_VIO_WRITE_ZEROES || j->vio.type == BS_VIO_FLUSH;
	if (!change || c->locked || c->read_only) {
		bs_volume_submit(c->vol, &j->vio);
		return;
	}
	list_add_tail(&c->lock_wait, &j->link);
	if (c->locking)
		return;
	c->locking = true;
	bs_lock(c->s->client, c->lock_name, c->s->p.break_lock, lock_done, c);
}

static int check_request(struct nbd_conn *c, const struct nbd_request *r)
{
	uint64_t size = conn_size(c);
	bool write = r->type == NBD_CMD_WRITE || r->type == NBD_CMD_TRIM ||
		     r->type == NBD_CMD_WRITE_ZEROES;
	if (write && c->read_only)
		return -EPERM;
	if (r->type == NBD_CMD_FLUSH || r->type == NBD_CMD_DISC)
		return 0;
	if (r->offset > size || r->len > size - r->offset)
		return r->type == NBD_CMD_WRITE || r->type == NBD_CMD_WRITE_ZEROES ? -ENOSPC
										   : -EINVAL;
	if ((r->type == NBD_CMD_READ || r->type == NBD_CMD_WRITE) && !r->len)
		return -EINVAL;
	if (r->offset % 512 || r->len % 512)
		return -EINVAL;
	if (r->type == NBD_CMD_BLOCK_STATUS && !c->allocation)
		return -EINVAL;
	return 0;
}

static void backup_read_done(struct nbd_backup_read *rd, int rc, const char *why)
{
	job_finish(rd->ctx, rc, why, true);
}

/* A request on a backup:ID export that check_request let through: a READ
 * through the chunk cache, BLOCK_STATUS from the chunk map at once (at
 * most 1024 chunks an answer), FLUSH with nothing to do. */
static void backup_request(struct nbd_conn *c, const struct nbd_request *r)
{
	uint32_t chunk = conn_granule(c);
	struct nbd_job *j = calloc(1, sizeof(*j));
	if (r->type == NBD_CMD_FLUSH || !j) {
		free(j);
		simple_reply(c, r->handle, j ? 0 : -ENOMEM, NULL, 0);
		return;
	}
	j->c = c;
	j->req = *r;
	j->start_ns = io_now_ns(c->s->loop);
	if (r->type == NBD_CMD_BLOCK_STATUS) {
		uint64_t cap = 1024ull * chunk - r->offset % chunk;
		j->req.len = r->len > cap ? (uint32_t)cap : r->len;
		uint64_t first = r->offset / chunk, last = (r->offset + j->req.len - 1) / chunk;
		j->buf = calloc(1, 1024);
		for (uint64_t i = first; j->buf && j->req.len && i <= last; i++)
			j->buf[i - first] = nbd_backup_has(c->bk, i);
		reply_block_status(c, j, j->buf ? 0 : -ENOMEM);
		free(j->buf);
		free(j);
		return;
	}
	if (posix_memalign((void **)&j->buf, 4096, r->len)) {
		free(j);
		if (c->structured)
			error_chunk(c, r->handle, -ENOMEM, NULL);
		else
			simple_reply(c, r->handle, -ENOMEM, NULL, 0);
		return;
	}
	j->backup_read = (struct nbd_backup_read){ .offset = r->offset, .len = r->len,
						   .buf = j->buf, .done = backup_read_done,
						   .ctx = j };
	c->inflight++;
	nbd_backup_read(c->bk, &j->backup_read);
}

/* A request is complete (header, and data for a write): run it. */
static void start_request(struct nbd_conn *c, uint8_t *data)
{
	struct nbd_request *r = &c->req;
	c->s->stats.requests++;
	metrics_counter_add(c->s->m.requests[metrics_kind(r->type)], 1);
	int rc = check_request(c, r);
	enum bs_vio_type type;
	switch (r->type) {
	case NBD_CMD_READ: type = BS_VIO_READ; break;
	case NBD_CMD_WRITE: type = BS_VIO_WRITE; break;
	case NBD_CMD_TRIM: type = BS_VIO_DISCARD; break;
	case NBD_CMD_WRITE_ZEROES: type = BS_VIO_WRITE_ZEROES; break;
	case NBD_CMD_FLUSH: type = BS_VIO_FLUSH; break;
	case NBD_CMD_BLOCK_STATUS: type = BS_VIO_MAP; break;
	case NBD_CMD_CACHE:
		free(data);
		metrics_refused(c->s, r->type, rc);
		if (rc)
			log_request_error(c, r, rc, false);
		simple_reply(c, r->handle, rc, NULL, 0);
		return;
	default:
		free(data);
		metrics_refused(c->s, r->type, -EINVAL);
		log_request_error(c, r, -EINVAL, false);
		simple_reply(c, r->handle, -EINVAL, NULL, 0);
		return;
	}
	if (c->bk && !rc) {
		free(data); /* no WRITE gets here: the export is read-only */
		backup_request(c, r);
		return;
	}
	struct nbd_job *j = calloc(1, sizeof(*j));
	if (!rc && !j)
		rc = -ENOMEM;
	uint32_t len = r->len;
	if (!rc && type == BS_VIO_MAP) {
		/* At most 1024 objects' worth per answer (the client asks
		 * again for the rest). */
		uint64_t cap = 1024ull * conn_granule(c) - r->offset % conn_granule(c);
		if (len > cap)
			len = (uint32_t)cap;
		j->buf = calloc(1, 1024);
		rc = j->buf ? 0 : -ENOMEM;
	}
	if (!rc && type == BS_VIO_READ && posix_memalign((void **)&j->buf, 4096, r->len))
		rc = -ENOMEM;
	if (rc) {
		metrics_refused(c->s, r->type, rc);
		log_request_error(c, r, rc, false);
		if (j)
			free(j->buf);
		free(j);
		free(data);
		if (r->type == NBD_CMD_READ && c->structured)
			error_chunk(c, r->handle, rc, NULL);
		else
			simple_reply(c, r->handle, rc, NULL, 0);
		return;
	}
	if (type == BS_VIO_WRITE)
		j->buf = data;
	else
		free(data);
	j->c = c;
	j->req = *r;
	j->req.len = len;
	j->start_ns = io_now_ns(c->s->loop);
	j->vio = (struct bs_vio){ .type = type, .offset = r->offset, .len = len, .buf = j->buf,
				  .done = job_done };
	c->inflight++;
	job_submit(c, j);
}

/* --- the stage machine ------------------------------------------------------------- */

static void handle_stage(struct nbd_conn *c)
{
	switch (c->stage) {
	case ST_CLIENT_FLAGS: {
		uint32_t f = (uint32_t)c->small[0] << 24 | (uint32_t)c->small[1] << 16 |
			     (uint32_t)c->small[2] << 8 | c->small[3];
		if (!(f & NBD_FLAG_C_FIXED_NEWSTYLE) || f & ~3u) {
			conn_bad(c, "client flags without fixed newstyle, or unknown ones");
			return;
		}
		c->no_zeroes = f & NBD_FLAG_C_NO_ZEROES;
		expect(c, ST_OPT_HEADER, c->small, 16);
		return;
	}
	case ST_OPT_HEADER:
		if (nbd_opt_header_decode(c->small, &c->opt)) {
			conn_bad(c, "an option without IHAVEOPT");
			return;
		}
		if (c->opt.len > NBD_OPTION_MAX) {
			conn_bad(c, "an option longer than 64 KiB");
			return;
		}
		c->data = c->opt.len ? malloc(c->opt.len) : NULL;
		if (c->opt.len && !c->data) {
			conn_close(c, "out of memory");
			return;
		}
		expect(c, ST_OPT_DATA, c->data, c->opt.len);
		return;
	case ST_OPT_DATA:
		handle_option(c);
		return;
	case ST_REQ_HEADER:
		if (nbd_request_decode(c->small, &c->req)) {
			conn_bad(c, "a request without the request magic");
			return;
		}
		if (c->req.type == NBD_CMD_DISC) {
			conn_close(c, "the client disconnected");
			return;
		}
		if (c->req.type == NBD_CMD_WRITE) {
			if (c->req.len > c->s->p.max_request) {
				conn_bad(c, "a write longer than the maximum request");
				return;
			}
			if (posix_memalign((void **)&c->data, 4096, c->req.len ? c->req.len : 4096)) {
				conn_close(c, "out of memory");
				return;
			}
			expect(c, ST_REQ_DATA, c->data, c->req.len);
			return;
		}
		if (c->req.len > c->s->p.max_request && c->req.type == NBD_CMD_READ) {
			simple_reply(c, c->req.handle, -EINVAL, NULL, 0);
		} else {
			start_request(c, NULL);
		}
		break;
	case ST_REQ_DATA: {
		uint8_t *data = c->data;
		c->data = NULL;
		start_request(c, data);
		break;
	}
	}
	/* The next request, unless at the in-flight limit (job_done resumes). */
	c->stage = ST_REQ_HEADER;
	c->got = 0;
	if (!c->closing && c->inflight < c->s->p.max_inflight)
		expect(c, ST_REQ_HEADER, c->small, NBD_REQUEST_LEN);
}

/* --- accepting --------------------------------------------------------------------- */

static void listener_arm(struct nbd_listener *l);

/* Whether a connection from PEER stays within --max-connections and
 * --max-connections-per-host (a refusal is logged). */
static bool conn_allowed(struct nbd_server *s, const char *peer)
{
	unsigned from_host = 0;
	struct list_node *pos;
	list_for_each(pos, &s->conns)
		from_host += io_addr_same_host(list_entry(pos, struct nbd_conn, node)->peer, peer);
	if (s->stats.open >= s->p.max_conns)
		LOG_WARN("nbd: refusing %s: %u connections open (--max-connections)", peer,
			 s->stats.open);
	else if (from_host >= s->p.max_conns_per_host)
		LOG_WARN("nbd: refusing %s: %u connections from that host open "
			 "(--max-connections-per-host)", peer, from_host);
	else
		return true;
	s->stats.bad_clients++;
	metrics_counter_add(s->m.conns_refused, 1);
	return false;
}

static void accept_done(struct io_op *op, int res)
{
	struct nbd_listener *l = op->ctx;
	struct nbd_server *s = l->s;
	l->armed = false;
	if (s->stopping) {
		if (res >= 0)
			close(res);
		return;
	}
	if (res < 0) {
		LOG_WARN("nbd: accept failed: %s", strerror(-res));
		listener_arm(l);
		return;
	}
	char peer[64];
	if (op->addr.ss_family == AF_UNIX)
		snprintf(peer, sizeof(peer), "unix#%d", res);
	else
		io_addr_str(&op->addr, peer, sizeof(peer));
	struct nbd_conn *c = conn_allowed(s, peer) ? calloc(1, sizeof(*c)) : NULL;
	if (!c) {
		close(res);
		listener_arm(l);
		return;
	}
	int one = 1;
	setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* not for Unix sockets */
	c->s = s;
	c->fd = res;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	list_init(&c->sendq);
	list_init(&c->lock_wait);
	list_add_tail(&s->conns, &c->node);
	s->stats.connections++;
	s->stats.open++;
	metrics_counter_add(s->m.conns_total, 1);
	metrics_gauge_add(s->m.conns_open, 1);
	io_timer_init(&c->deadline, deadline_fire, c);
	io_timer_arm(s->loop, &c->deadline, IO_MS(s->p.handshake_timeout_ms));
	uint8_t g[18];
	conn_send(c, g, nbd_put_greeting(g, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES), NULL, 0);
	expect(c, ST_CLIENT_FLAGS, c->small, 4);
	listener_arm(l);
}

static void listener_arm(struct nbd_listener *l)
{
	l->armed = true;
	l->accept.ctx = l;
	l->accept.done = accept_done;
	io_accept(l->s->loop, &l->accept, l->fd);
}

static void metrics_register_requests(struct nbd_server *s, struct metrics_registry *r)
{
	metrics_op_kinds(r, "basalt_nbd_request", "NBD requests received, by command",
			 "NBD requests answered with an error, by command",
			 "Time from a request's arrival to its answer, of those that ran",
			 nbd_metrics_kinds, NBD_METRICS_KINDS, s->m.requests, s->m.errors,
			 s->m.latency);
}

/* The server's series in the params' registry (or one of its own, so the
 * updates need no test): 0 or -ENOMEM. */
static int metrics_register(struct nbd_server *s)
{
	struct metrics_registry *r = s->p.metrics;
	if (!r && metrics_registry_create(&s->m.own))
		return -ENOMEM;
	if (!r)
		r = s->m.own;
	metrics_register_requests(s, r);
	s->m.read_bytes = metrics_single(r, METRICS_COUNTER, "basalt_nbd_read_bytes_total",
					 "Bytes read by NBD clients");
	s->m.written_bytes = metrics_single(r, METRICS_COUNTER, "basalt_nbd_written_bytes_total",
					    "Bytes written by NBD clients");
	s->m.conns_open = metrics_single(r, METRICS_GAUGE, "basalt_nbd_connections_open",
					 "NBD client connections open");
	s->m.conns_total = metrics_single(r, METRICS_COUNTER, "basalt_nbd_connections_total",
					  "NBD client connections accepted");
	s->m.conns_refused = metrics_single(r, METRICS_COUNTER,
					    "basalt_nbd_connections_refused_total",
					    "NBD connections closed at once (connection limits)");
	return metrics_registry_error(r);
}

int nbd_server_create(struct io_loop *loop, struct bs_client *client,
		      const struct nbd_params *p, struct nbd_server **out)
{
	struct nbd_server *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->loop = loop;
	s->client = client;
	s->p = *p;
	if (!s->p.handshake_timeout_ms)
		s->p.handshake_timeout_ms = 10000;
	if (!s->p.max_request)
		s->p.max_request = 32u << 20;
	if (!s->p.max_inflight)
		s->p.max_inflight = 64;
	if (!s->p.max_conns)
		s->p.max_conns = 256;
	if (!s->p.max_conns_per_host)
		s->p.max_conns_per_host = 64;
	list_init(&s->conns);
	int rc = metrics_register(s);
	if (rc) {
		nbd_server_destroy(s);
		return rc;
	}
	*out = s;
	return 0;
}

static int add_listener(struct nbd_server *s, int fd)
{
	if (s->n_listeners == NBD_LISTENERS_MAX) {
		close(fd);
		return -ENOSPC;
	}
	struct nbd_listener *l = &s->listeners[s->n_listeners++];
	l->s = s;
	l->fd = fd;
	listener_arm(l);
	return 0;
}

int nbd_server_listen_tcp(struct nbd_server *s, const char *host, uint16_t port,
			  uint16_t *port_out)
{
	int fd;
	int rc = io_listen(s->loop, host, port, &fd, port_out);
	return rc ? rc : add_listener(s, fd);
}

int nbd_server_listen_unix(struct nbd_server *s, const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(path);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 128)) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	return add_listener(s, fd);
}

static bool server_idle(void *arg)
{
	struct nbd_server *s = arg;
	for (int i = 0; i < s->n_listeners; i++)
		if (s->listeners[i].armed)
			return false;
	return list_empty(&s->conns);
}

int nbd_server_stop(struct nbd_server *s, uint64_t timeout_ms)
{
	s->stopping = true;
	for (int i = 0; i < s->n_listeners; i++)
		if (s->listeners[i].armed)
			io_cancel(s->loop, &s->listeners[i].accept);
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &s->conns) {
		struct nbd_conn *c = list_entry(pos, struct nbd_conn, node);
		conn_close(c, "the server stops");
		conn_maybe_free(c);
	}
	uint64_t end = io_now_ns(s->loop) + IO_MS(timeout_ms);
	while (!server_idle(s) && io_now_ns(s->loop) < end)
		io_loop_run_once(s->loop, (int64_t)IO_MS(50));
	if (!server_idle(s)) {
		unsigned n = 0;
		list_for_each_safe(pos, tmp, &s->conns)
			n++;
		LOG_WARN("%u connections still have requests waiting for the cluster after %llu ms; "
			 "stopping without their answers",
			 n, (unsigned long long)timeout_ms);
		return -ETIMEDOUT;
	}
	/* Give the locks back before the client goes (bounded: with no
	 * monitor to answer, the leases run out instead). */
	bs_lock_wait_released(s->client, 5000);
	return 0;
}

void nbd_server_destroy(struct nbd_server *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->n_listeners; i++)
		close(s->listeners[i].fd);
	metrics_registry_free(s->m.own);
	free(s);
}

void nbd_server_stats(const struct nbd_server *s, struct nbd_server_stats *out)
{
	*out = s->stats;
}
