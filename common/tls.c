/* TLS streams (see tls.h): OpenSSL reads and writes two buffers through a
 * BIO of ours, and the stream moves ciphertext between those buffers and
 * the socket with io_recv and io_send.
 *
 *   create -> NEW --tls_stream_handshake--> HANDSHAKE --done--> OPEN
 *                                               |                 |
 *                    a TLS error, the socket's, a cancelled handshake
 *                                               v                 v
 *                                             FAILED <------------+
 *   NEW, HANDSHAKE, OPEN, FAILED --tls_stream_close--> CLOSING --> CLOSED
 *
 * Transitions: tls_stream_handshake (NEW -> HANDSHAKE), step_handshake
 * (-> OPEN), stream_fail (-> FAILED), tls_stream_close (-> CLOSING),
 * settle_close (-> CLOSED, when nothing is in flight on the socket).
 *
 * Invariants (stream_check):
 *  1. A slot holds an op exactly while the op is in flight; its result is
 *     delivered from the loop — a socket op's done, the defer timer, or
 *     the delivery of another result — never inside the call that
 *     submitted or cancelled it.
 *  2. OpenSSL is called only in HANDSHAKE and OPEN (and for close_notify
 *     when an OPEN stream closes): after a fatal error it must not be.
 *  3. recv and send run only on an OPEN stream; on a FAILED one they
 *     complete with its error.
 *  4. At most one io_recv and one io_send on the socket; the bytes an
 *     io_send holds, [out_head, out_head + out_inflight), are neither
 *     moved nor overwritten until it ends; in_head <= in_tail <= TLS_IN_CAP
 *     and out_head <= out_tail <= TLS_OUT_CAP.
 *  5. CLOSED has nothing in flight on the socket and submits nothing. */
#include "tls_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "assert.h"

#define TLS_RECORD_MAX 16384u			 /* plaintext bytes in a record */
#define TLS_RECORD_ROOM (TLS_RECORD_MAX + 256u) /* its ciphertext, with room */
#define TLS_IN_CAP (64u << 10)
#define TLS_OUT_CAP (128u << 10)

/* --- the BIO over the stream's buffers ------------------------------------ */

/* Moves unsent ciphertext to the front, unless an io_send holds it. */
static void out_compact(struct tls_stream *s)
{
	if (s->net_tx.in_flight || !s->out_head)
		return;
	memmove(s->out, s->out + s->out_head, s->out_tail - s->out_head);
	s->out_tail -= s->out_head;
	s->out_head = 0;
}

static int bio_write(BIO *b, const char *data, size_t len, size_t *written)
{
	struct tls_stream *s = BIO_get_data(b);
	BIO_clear_retry_flags(b);
	out_compact(s);
	size_t room = TLS_OUT_CAP - s->out_tail;
	if (!room) {
		BIO_set_retry_write(b);
		return 0;
	}
	size_t n = len < room ? len : room;
	memcpy(s->out + s->out_tail, data, n);
	s->out_tail += n;
	s->out_total += n;
	*written = n;
	return 1;
}

/* An empty input asks for a receive (want_rx); at the socket's end it
 * says EOF (0 without the retry flag). */
static int bio_read(BIO *b, char *data, size_t len, size_t *read)
{
	struct tls_stream *s = BIO_get_data(b);
	BIO_clear_retry_flags(b);
	size_t avail = s->in_tail - s->in_head;
	*read = 0;
	if (!avail) {
		if (s->in_eof)
			return 0;
		s->want_rx = true;
		BIO_set_retry_read(b);
		return 0;
	}
	size_t n = len < avail ? len : avail;
	memcpy(data, s->in + s->in_head, n);
	s->in_head += n;
	if (s->in_head == s->in_tail)
		s->in_head = s->in_tail = 0;
	*read = n;
	return 1;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)num;
	(void)ptr;
	struct tls_stream *s = BIO_get_data(b);
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_CTRL_PENDING:
		return (long)(s->in_tail - s->in_head);
	case BIO_CTRL_WPENDING:
		return (long)(s->out_tail - s->out_head);
	case BIO_CTRL_EOF:
		return s->in_eof && s->in_tail == s->in_head;
	default:
		return 0;
	}
}

static int bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static BIO_METHOD *bio_method;
static pthread_once_t bio_method_once = PTHREAD_ONCE_INIT;

/* One BIO type for the process: OpenSSL has few type indexes to give. */
static void bio_method_init(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
				     "basalt tls stream");
	if (m && BIO_meth_set_write_ex(m, bio_write) && BIO_meth_set_read_ex(m, bio_read) &&
	    BIO_meth_set_ctrl(m, bio_ctrl) && BIO_meth_set_create(m, bio_create)) {
		bio_method = m;
		return;
	}
	BIO_meth_free(m);
}

BIO_METHOD *tls_bio_method_new(void)
{
	pthread_once(&bio_method_once, bio_method_init);
	return bio_method;
}

/* --- results and their delivery ---------------------------------------------- */

static void stream_check(const struct tls_stream *s)
{
	const struct tls_slot *slots[] = { &s->hs, &s->rx, &s->tx, &s->close };
	for (size_t i = 0; i < BASALT_ARRAY_SIZE(slots); i++) /* 1 */
		BASALT_ASSERT(!slots[i]->op || slots[i]->op->in_flight);
	BASALT_ASSERT(!s->rx.op || s->state != TLS_ST_NEW); /* 3 */
	BASALT_ASSERT(s->in_head <= s->in_tail && s->in_tail <= TLS_IN_CAP); /* 4 */
	BASALT_ASSERT(s->out_head <= s->out_tail && s->out_tail <= TLS_OUT_CAP);
	BASALT_ASSERT(s->net_tx.in_flight ? s->out_inflight <= s->out_tail - s->out_head
					  : !s->out_inflight);
	BASALT_ASSERT(s->state != TLS_ST_CLOSED || /* 5 */
		      (!s->net_rx.in_flight && !s->net_tx.in_flight));
}

static void slot_take(struct tls_stream *s, struct tls_slot *slot, struct io_op *op,
		      enum io_op_kind kind)
{
	BASALT_ASSERT(!slot->op && !op->in_flight && op->done);
	op->kind = kind;
	op->fd = s->fd;
	op->in_flight = true;
	*slot = (struct tls_slot){ .op = op };
}

static void slot_finish(struct tls_slot *slot, int res)
{
	if (!slot->op || slot->ready)
		return;
	slot->ready = true;
	slot->res = res;
}

static bool any_ready(const struct tls_stream *s)
{
	return s->hs.ready || s->rx.ready || s->tx.ready || s->close.ready;
}

/* Calls the done of every ready slot, the close's last: after that one S
 * may be gone. Results that become ready meanwhile (an owner submitting
 * again from its done) are delivered by the same loop. */
static void stream_deliver(struct tls_stream *s)
{
	if (s->delivering)
		return;
	s->delivering = true;
	for (;;) {
		struct tls_slot *slot = s->hs.ready ? &s->hs
				      : s->rx.ready ? &s->rx
				      : s->tx.ready ? &s->tx
				      : s->close.ready ? &s->close
						       : NULL;
		if (!slot)
			break;
		struct io_op *op = slot->op;
		int res = slot->res;
		bool last = slot == &s->close;
		*slot = (struct tls_slot){ 0 };
		op->in_flight = false;
		if (last) {
			s->delivering = false;
			op->done(op, res);
			return;
		}
		op->done(op, res);
	}
	s->delivering = false;
}

static void defer_fire(struct io_timer *t)
{
	stream_deliver(t->ctx);
}

/* The end of every call an owner makes: what became ready inside it is
 * delivered from the loop (invariant 1). */
static void after_call(struct tls_stream *s)
{
	stream_check(s);
	if (any_ready(s) && !s->delivering && !io_timer_armed(&s->defer))
		io_timer_arm(s->loop, &s->defer, 0);
}

/* --- failures ------------------------------------------------------------------ */

static void stream_fail(struct tls_stream *s, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Records the first failure and stops using OpenSSL (invariant 2). */
static void stream_fail(struct tls_stream *s, int err, const char *fmt, ...)
{
	if (!s->err) {
		s->err = err;
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(s->why, sizeof(s->why), fmt, ap);
		va_end(ap);
	}
	if (s->state != TLS_ST_CLOSING && s->state != TLS_ST_CLOSED)
		s->state = TLS_ST_FAILED;
}

/* Alerts a peer sends when it refuses our credentials. */
static bool refusal_alert(int reason)
{
	return reason == SSL_R_TLSV1_ALERT_DECRYPT_ERROR || reason == SSL_R_SSLV3_ALERT_BAD_CERTIFICATE ||
	       reason == SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN ||
	       reason == SSL_R_TLSV1_ALERT_UNKNOWN_CA || reason == SSL_R_TLSV1_ALERT_ACCESS_DENIED ||
	       reason == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED ||
	       reason == SSL_R_TLSV1_ALERT_UNKNOWN_PSK_IDENTITY;
}

/* OpenSSL said E (SSL_get_error) in CONTEXT: the errno and reason of
 * tls.h's handshake comment. */
static void ssl_fail(struct tls_stream *s, int e, const char *context)
{
	unsigned long code = ERR_peek_error();
	int reason = ERR_GET_REASON(code);
	const char *text = code ? ERR_reason_error_string(code) : NULL;
	char detail[sizeof(s->why)];
	int err = -EPROTO;
	if (s->refused) {
		snprintf(detail, sizeof(detail), "%s", s->why);
		err = -EACCES;
	} else if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED) {
		long v = SSL_get_verify_result(s->ssl);
		snprintf(detail, sizeof(detail), "%s (%s)", text, X509_verify_cert_error_string(v));
		err = -EACCES;
	} else if (text) {
		snprintf(detail, sizeof(detail), "%s", text);
		if (reason == SSL_R_BINDER_DOES_NOT_VERIFY ||
		    reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE || refusal_alert(reason))
			err = -EACCES;
		else if (reason == SSL_R_UNEXPECTED_EOF_WHILE_READING)
			err = -ECONNRESET;
	} else if (s->in_eof || e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN) {
		snprintf(detail, sizeof(detail), "the peer closed the connection");
		err = -ECONNRESET;
	} else {
		snprintf(detail, sizeof(detail), "OpenSSL error %d", e);
	}
	ERR_clear_error();
	stream_fail(s, err, "%s: %s", context, detail);
}

/* --- the steps OpenSSL takes ------------------------------------------------- */

/* SSL_get_error needs an empty error queue before each call; the queue is
 * nearly always empty already, and clearing it costs more than a look. */
static void errors_clear(void)
{
	if (ERR_peek_error())
		ERR_clear_error();
}

static void step_handshake(struct tls_stream *s)
{
	errors_clear();
	int r = SSL_do_handshake(s->ssl);
	if (r == 1) {
		s->state = TLS_ST_OPEN;
		snprintf(s->describe, sizeof(s->describe), "%s %s", SSL_get_version(s->ssl),
			 SSL_get_cipher_name(s->ssl));
		slot_finish(&s->hs, 0);
		return;
	}
	int e = SSL_get_error(s->ssl, r);
	if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
		ssl_fail(s, e, "TLS handshake failed");
}

/* Fills as much of the recv's buffer as the records received allow, so
 * one completion carries every record a socket read brought. */
static void step_read(struct tls_stream *s)
{
	bool end = false;
	while (s->rx_got < s->rx_len && !end) {
		size_t n = 0;
		errors_clear();
		if (SSL_read_ex(s->ssl, (uint8_t *)s->rx_buf + s->rx_got, s->rx_len - s->rx_got,
				&n)) {
			s->rx_got += n;
			continue;
		}
		int e = SSL_get_error(s->ssl, 0);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			break;
		if (e == SSL_ERROR_ZERO_RETURN) { /* close_notify, or the end (IGNORE_UNEXPECTED_EOF) */
			ERR_clear_error();
			end = true;
			continue;
		}
		ssl_fail(s, e, "TLS receive failed");
		return;
	}
	if (s->rx_got || end)
		slot_finish(&s->rx, (int)s->rx_got);
}

/* The next plaintext of the send for one record: straight from an iovec
 * holding a whole record's worth, else gathered from the iovecs into
 * s->stage. The same position always gives the same bytes (a write
 * OpenSSL must retry gets them again). Returns the length, 0 at the end. */
static size_t tx_chunk(struct tls_stream *s, const void **p)
{
	int idx = s->tx_idx;
	size_t off = s->tx_off, n = 0;
	while (idx < s->tx_iovcnt && s->tx_iov[idx].iov_len == off) {
		idx++;
		off = 0;
	}
	if (idx < s->tx_iovcnt && s->tx_iov[idx].iov_len - off >= TLS_RECORD_MAX) {
		*p = (const uint8_t *)s->tx_iov[idx].iov_base + off;
		return TLS_RECORD_MAX;
	}
	for (; idx < s->tx_iovcnt && n < TLS_RECORD_MAX; idx++, off = 0) {
		size_t take = s->tx_iov[idx].iov_len - off;
		if (take > TLS_RECORD_MAX - n)
			take = TLS_RECORD_MAX - n;
		memcpy(s->stage + n, (const uint8_t *)s->tx_iov[idx].iov_base + off, take);
		n += take;
	}
	*p = s->stage;
	return n;
}

static void tx_advance(struct tls_stream *s, size_t n)
{
	s->tx_done += n;
	while (n) {
		size_t left = s->tx_iov[s->tx_idx].iov_len - s->tx_off;
		size_t take = n < left ? n : left;
		s->tx_off += take;
		n -= take;
		if (s->tx_off == s->tx_iov[s->tx_idx].iov_len) {
			s->tx_idx++;
			s->tx_off = 0;
		}
	}
}

/* Encrypts the send while a whole record fits in the output buffer; the
 * socket drains it (net_kick) and the next pump goes on. */
static void step_write(struct tls_stream *s)
{
	while (!s->tx_all) {
		out_compact(s);
		if (TLS_OUT_CAP - s->out_tail < TLS_RECORD_ROOM)
			return;
		const void *p;
		size_t n = s->tx_done >= INT_MAX - TLS_RECORD_MAX ? 0 : tx_chunk(s, &p);
		if (!n) {
			s->tx_all = true;
			return;
		}
		size_t w = 0;
		errors_clear();
		if (!SSL_write_ex(s->ssl, p, n, &w)) {
			int e = SSL_get_error(s->ssl, 0);
			s->tx_retry = e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
			if (!s->tx_retry)
				ssl_fail(s, e, "TLS send failed");
			return;
		}
		s->tx_retry = false;
		tx_advance(s, w);
		s->tx_mark = s->out_total;
	}
}

/* --- the socket ------------------------------------------------------------------ */

static void stream_pump(struct tls_stream *s);

static void net_tx_done(struct io_op *op, int res)
{
	struct tls_stream *s = op->ctx;
	s->out_inflight = 0;
	if (res > 0) {
		s->out_head += (size_t)res;
		s->out_sent += (uint64_t)res;
		if (s->out_head == s->out_tail)
			s->out_head = s->out_tail = 0;
	} else if (!s->net_dead) {
		s->net_dead = true;
		if (res != -ECANCELED)
			stream_fail(s, res ? res : -EPIPE, "send failed: %s",
				    strerror(res ? -res : EPIPE));
	}
	stream_pump(s);
	stream_deliver(s);
}

static void net_rx_done(struct io_op *op, int res)
{
	struct tls_stream *s = op->ctx;
	s->want_rx = false;
	if (res > 0)
		s->in_tail += (size_t)res;
	else if (res == 0)
		s->in_eof = true;
	else if (res != -ECANCELED) {
		s->net_dead = true;
		stream_fail(s, res, "receive failed: %s", strerror(-res));
	}
	stream_pump(s);
	stream_deliver(s);
}

/* Whether an owner's op waits for ciphertext OpenSSL found missing. */
static bool rx_needed(const struct tls_stream *s)
{
	if (!s->want_rx || s->in_eof)
		return false;
	if (s->state == TLS_ST_HANDSHAKE)
		return s->hs.op && !s->hs.ready;
	return s->state == TLS_ST_OPEN &&
	       ((s->rx.op && !s->rx.ready) || (s->tx.op && !s->tx.ready && s->tx_retry));
}

/* Starts the socket ops the buffers call for (invariant 4). */
static void net_kick(struct tls_stream *s)
{
	if (s->net_dead || s->state == TLS_ST_CLOSED)
		return;
	if (!s->net_tx.in_flight && s->out_tail > s->out_head) {
		s->out_inflight = s->out_tail - s->out_head;
		s->net_iov = (struct iovec){ s->out + s->out_head, s->out_inflight };
		s->net_tx.ctx = s;
		s->net_tx.done = net_tx_done;
		io_send(s->loop, &s->net_tx, s->fd, &s->net_iov, 1);
	}
	if (!s->net_rx.in_flight && rx_needed(s)) {
		if (s->in_head) {
			memmove(s->in, s->in + s->in_head, s->in_tail - s->in_head);
			s->in_tail -= s->in_head;
			s->in_head = 0;
		}
		s->net_rx.ctx = s;
		s->net_rx.done = net_rx_done;
		io_recv(s->loop, &s->net_rx, s->fd, s->in + s->in_tail, TLS_IN_CAP - s->in_tail);
	}
}

static void settle_close(struct tls_stream *s)
{
	if (s->state != TLS_ST_CLOSING || s->net_rx.in_flight || s->net_tx.in_flight ||
	    (s->out_tail > s->out_head && !s->net_dead))
		return;
	s->state = TLS_ST_CLOSED;
	io_timer_disarm(s->loop, &s->linger);
	slot_finish(&s->close, 0);
}

/* Everything that can move does: OpenSSL's steps, failures reported to
 * the ops that wait, the socket ops, the results that are final. */
static void stream_pump(struct tls_stream *s)
{
	if (s->state == TLS_ST_HANDSHAKE)
		step_handshake(s);
	if (s->state == TLS_ST_OPEN && s->rx.op && !s->rx.ready)
		step_read(s);
	if (s->state == TLS_ST_OPEN && s->tx.op && !s->tx.ready)
		step_write(s);
	if (s->state == TLS_ST_FAILED) {
		slot_finish(&s->hs, s->err);
		slot_finish(&s->rx, s->err);
		slot_finish(&s->tx, s->err);
	}
	net_kick(s);
	if (s->state == TLS_ST_OPEN && s->tx.op && s->tx_all && s->out_sent >= s->tx_mark)
		slot_finish(&s->tx, (int)s->tx_done);
	settle_close(s);
	stream_check(s);
}

/* --- the API --------------------------------------------------------------------- */

/* The close's last send outlived TLS_CLOSE_LINGER_MS: the peer does not
 * read, so what is left is dropped. */
static void linger_fire(struct io_timer *t)
{
	struct tls_stream *s = t->ctx;
	s->net_dead = true;
	io_cancel(s->loop, &s->net_tx);
	stream_pump(s);
	stream_deliver(s);
}

int tls_stream_create(struct io_loop *loop, struct tls_config *cfg, int fd,
		      struct tls_stream **out)
{
	struct tls_stream *s = calloc(1, sizeof(*s));
	BIO_METHOD *method = tls_bio_method_new();
	BIO *b = NULL;
	if (s && method) {
		s->in = malloc(TLS_IN_CAP);
		s->out = malloc(TLS_OUT_CAP);
		s->stage = malloc(TLS_RECORD_MAX);
		s->ssl = SSL_new(cfg->ctx);
		b = BIO_new(method);
	}
	if (!s || !s->in || !s->out || !s->stage || !s->ssl || !b) {
		BIO_free(b);
		if (s)
			SSL_free(s->ssl);
		free(s ? s->in : NULL);
		free(s ? s->out : NULL);
		free(s ? s->stage : NULL);
		free(s);
		return -ENOMEM;
	}
	BIO_set_data(b, s);
	SSL_set_bio(s->ssl, b, b);
	SSL_set_app_data(s->ssl, s);
	tls_config_attach(cfg, s->ssl);
	if (cfg->role == TLS_SERVER)
		SSL_set_accept_state(s->ssl);
	else
		SSL_set_connect_state(s->ssl);
	s->loop = loop;
	s->cfg = cfg;
	s->fd = fd;
	io_timer_init(&s->defer, defer_fire, s);
	io_timer_init(&s->linger, linger_fire, s);
	*out = s;
	return 0;
}

int tls_stream_set_server_name(struct tls_stream *s, const char *name)
{
	BASALT_ASSERT(s->cfg->role == TLS_CLIENT && s->state == TLS_ST_NEW);
	struct in6_addr ip;
	bool is_ip = inet_pton(AF_INET, name, &ip) == 1 || inet_pton(AF_INET6, name, &ip) == 1;
	if (is_ip)
		return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl), name) ? 0 : -EINVAL;
	if (!SSL_set_tlsext_host_name(s->ssl, name) || !SSL_set1_host(s->ssl, name))
		return -EINVAL;
	return 0;
}

void tls_stream_handshake(struct tls_stream *s, struct io_op *op)
{
	BASALT_ASSERT(s->state == TLS_ST_NEW);
	slot_take(s, &s->hs, op, IO_OP_NONE);
	s->state = TLS_ST_HANDSHAKE;
	stream_pump(s);
	after_call(s);
}

void tls_stream_recv(struct tls_stream *s, struct io_op *op, void *buf, size_t len)
{
	BASALT_ASSERT(s->state == TLS_ST_OPEN || s->state == TLS_ST_FAILED);
	slot_take(s, &s->rx, op, IO_OP_RECV);
	op->buf = buf;
	op->len = len;
	s->rx_buf = buf;
	s->rx_len = len > INT_MAX ? INT_MAX : len;
	s->rx_got = 0;
	if (s->state == TLS_ST_FAILED)
		slot_finish(&s->rx, s->err);
	else if (!len)
		slot_finish(&s->rx, 0);
	stream_pump(s);
	after_call(s);
}

void tls_stream_send(struct tls_stream *s, struct io_op *op, const struct iovec *iov,
		     int iovcnt)
{
	BASALT_ASSERT(s->state == TLS_ST_OPEN || s->state == TLS_ST_FAILED);
	slot_take(s, &s->tx, op, IO_OP_SEND);
	op->iov = iov;
	op->iovcnt = iovcnt;
	s->tx_iov = iov;
	s->tx_iovcnt = iovcnt;
	s->tx_idx = 0;
	s->tx_off = 0;
	s->tx_done = 0;
	s->tx_all = false;
	s->tx_mark = s->out_total;
	if (s->state == TLS_ST_FAILED)
		slot_finish(&s->tx, s->err);
	stream_pump(s);
	after_call(s);
}

void tls_stream_cancel(struct tls_stream *s, struct io_op *op)
{
	if (!op->in_flight)
		return;
	if (op == s->hs.op && !s->hs.ready) {
		slot_finish(&s->hs, -ECANCELED);
		stream_fail(s, -ECANCELED, "TLS handshake cancelled");
	} else if (op == s->rx.op) {
		slot_finish(&s->rx, -ECANCELED);
	} else if (op == s->tx.op && !s->tx.ready) {
		/* OpenSSL holds a half-written record of this send. */
		if (s->tx_retry)
			stream_fail(s, -ECANCELED, "TLS send cancelled half way through a record");
		slot_finish(&s->tx, -ECANCELED);
	}
	stream_pump(s);
	after_call(s);
}

void tls_stream_close(struct tls_stream *s, struct io_op *op)
{
	BASALT_ASSERT(s->state != TLS_ST_CLOSING && s->state != TLS_ST_CLOSED);
	slot_take(s, &s->close, op, IO_OP_NONE);
	if (s->hs.op && !s->hs.ready)
		stream_fail(s, -ECANCELED, "TLS handshake cancelled");
	slot_finish(&s->hs, -ECANCELED);
	slot_finish(&s->rx, -ECANCELED);
	slot_finish(&s->tx, -ECANCELED);
	bool open = s->state == TLS_ST_OPEN;
	s->state = TLS_ST_CLOSING;
	if (open && !s->net_dead) {
		ERR_clear_error();
		SSL_shutdown(s->ssl); /* close_notify into the output */
		ERR_clear_error();
	}
	io_cancel(s->loop, &s->net_rx);
	if (s->net_dead) {
		io_cancel(s->loop, &s->net_tx);
	} else if (s->net_tx.in_flight || s->out_tail > s->out_head) {
		io_timer_arm(s->loop, &s->linger, IO_MS(TLS_CLOSE_LINGER_MS));
	}
	stream_pump(s);
	after_call(s);
}

void tls_stream_destroy(struct tls_stream *s)
{
	if (!s)
		return;
	BASALT_ASSERT(!s->hs.op && !s->rx.op && !s->tx.op && !s->close.op);
	BASALT_ASSERT(!s->net_rx.in_flight && !s->net_tx.in_flight);
	io_timer_disarm(s->loop, &s->defer);
	io_timer_disarm(s->loop, &s->linger);
	SSL_free(s->ssl);
	free(s->in);
	free(s->out);
	free(s->stage);
	free(s);
}

const char *tls_stream_why(const struct tls_stream *s)
{
	return s->why;
}

const char *tls_stream_psk_identity(const struct tls_stream *s)
{
	return s->psk_identity[0] ? s->psk_identity : NULL;
}

const char *tls_stream_describe(struct tls_stream *s)
{
	return s->describe;
}

int tls_stream_export(struct tls_stream *s, const char *label, uint8_t *out, size_t len)
{
	if (s->state != TLS_ST_OPEN)
		return -ENOTCONN;
	ERR_clear_error();
	if (SSL_export_keying_material(s->ssl, out, len, label, strlen(label), NULL, 0, 0) != 1) {
		ERR_clear_error();
		return -EINVAL;
	}
	return 0;
}
