/* TLS streams (common/tls.h) on a real io_uring loop: a client and a
 * server stream on the two ends of a relay that records (and can spoil)
 * every byte between them. PSK and X.509 handshakes, refusals on both
 * sides, 1 MiB both ways at once in many iovecs with no plaintext on the
 * wire and records shared by small iovecs, bad records, garbage, EOF,
 * cancel and close; and PSK files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/io/loop.h"
#include "common/tls.h"

#define MARK "BASALT-PLAINTEXT"
#define BULK (1u << 20)

static char tmp_dir[64];

/* --- the relay: two socket pairs and a copier that records ------------------- */

struct relay_dir {
	struct io_loop *loop;
	int from, to;
	uint8_t buf[65536];
	size_t len, sent;
	struct io_op rx, tx;
	struct iovec iov;
	uint8_t *seen; /* everything that passed */
	size_t seen_len;
	bool flip_next; /* spoil one byte of the next chunk */
	bool paused;	/* stop reading (a peer that does not read) */
	bool ended;
};

static void relay_recv(struct relay_dir *d);

static void relay_tx_done(struct io_op *op, int res)
{
	struct relay_dir *d = op->ctx;
	if (res <= 0) {
		d->ended = true;
		return;
	}
	d->sent += (size_t)res;
	if (d->sent < d->len) {
		d->iov = (struct iovec){ d->buf + d->sent, d->len - d->sent };
		io_send(d->loop, &d->tx, d->to, &d->iov, 1);
		return;
	}
	d->len = 0;
	if (!d->paused)
		relay_recv(d);
}

static void relay_rx_done(struct io_op *op, int res)
{
	struct relay_dir *d = op->ctx;
	if (res <= 0) {
		shutdown(d->to, SHUT_WR);
		d->ended = true;
		return;
	}
	d->seen = realloc(d->seen, d->seen_len + (size_t)res);
	assert_non_null(d->seen);
	memcpy(d->seen + d->seen_len, d->buf, (size_t)res);
	d->seen_len += (size_t)res;
	if (d->flip_next) {
		d->buf[res / 2] ^= 0x20;
		d->flip_next = false;
	}
	d->len = (size_t)res;
	d->sent = 0;
	d->iov = (struct iovec){ d->buf, d->len };
	d->tx.ctx = d;
	d->tx.done = relay_tx_done;
	io_send(d->loop, &d->tx, d->to, &d->iov, 1);
}

static void relay_recv(struct relay_dir *d)
{
	d->rx.ctx = d;
	d->rx.done = relay_rx_done;
	io_recv(d->loop, &d->rx, d->from, d->buf, sizeof(d->buf));
}

/* --- one end: a stream and its ops ------------------------------------------- */

struct end {
	struct tls_stream *s;
	int fd;
	struct io_op hs, rx, tx, close;
	bool hs_done, rx_done, tx_done, closed;
	int hs_res, rx_res, tx_res;
	/* bulk transfer */
	uint8_t *in;
	size_t in_len, in_want;
	bool in_eof;
	struct iovec *iov;
	int iovcnt, iov_first;
	size_t out_total, out_sent;
};

struct world {
	struct io_loop *loop;
	struct relay_dir c2s, s2c;
	struct end client, server;
};

static void hs_done(struct io_op *op, int res)
{
	struct end *e = op->ctx;
	e->hs_done = true;
	e->hs_res = res;
}

static void rx_done(struct io_op *op, int res)
{
	struct end *e = op->ctx;
	e->rx_done = true;
	e->rx_res = res;
}

static void tx_done(struct io_op *op, int res)
{
	struct end *e = op->ctx;
	e->tx_done = true;
	e->tx_res = res;
}

static void close_done(struct io_op *op, int res)
{
	struct end *e = op->ctx;
	assert_int_equal(res, 0);
	e->closed = true;
}

/* Runs the loop until *FLAG_A and *FLAG_B (NULL: true), at most 10 s. */
static void run_until(struct world *w, const bool *a, const bool *b)
{
	uint64_t end = io_now_ns(w->loop) + IO_SEC(10);
	while (!((!a || *a) && (!b || *b))) {
		assert_true(io_now_ns(w->loop) < end);
		io_loop_run_once(w->loop, (int64_t)IO_MS(100));
	}
}

static void world_open(struct world *w)
{
	memset(w, 0, sizeof(*w));
	assert_int_equal(io_loop_create_uring(NULL, &w->loop), 0);
	int a[2], b[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
	w->client.fd = a[0];
	w->server.fd = b[0];
	w->c2s = (struct relay_dir){ .loop = w->loop, .from = a[1], .to = b[1] };
	w->s2c = (struct relay_dir){ .loop = w->loop, .from = b[1], .to = a[1] };
	relay_recv(&w->c2s);
	relay_recv(&w->s2c);
}

static void end_create(struct world *w, struct end *e, struct tls_config *cfg)
{
	assert_int_equal(tls_stream_create(w->loop, cfg, e->fd, &e->s), 0);
	e->hs = (struct io_op){ .done = hs_done, .ctx = e };
	e->rx = (struct io_op){ .done = rx_done, .ctx = e };
	e->tx = (struct io_op){ .done = tx_done, .ctx = e };
	e->close = (struct io_op){ .done = close_done, .ctx = e };
}

static void end_start(struct world *w, struct end *e, struct tls_config *cfg)
{
	end_create(w, e, cfg);
	tls_stream_handshake(e->s, &e->hs);
	assert_false(e->hs_done); /* never from inside the call */
}

static void end_close(struct world *w, struct end *e)
{
	if (!e->s)
		return;
	tls_stream_close(e->s, &e->close);
	assert_false(e->closed);
	run_until(w, &e->closed, NULL);
	tls_stream_destroy(e->s);
	e->s = NULL;
}

static void world_close(struct world *w)
{
	end_close(w, &w->client);
	end_close(w, &w->server);
	close(w->client.fd);
	close(w->server.fd);
	run_until(w, &w->c2s.ended, &w->s2c.ended);
	close(w->c2s.from);
	close(w->s2c.from);
	free(w->c2s.seen);
	free(w->s2c.seen);
	free(w->client.in);
	free(w->server.in);
	free(w->client.iov);
	free(w->server.iov);
	io_loop_destroy(w->loop);
}

/* Both handshakes, to their ends; SERVER_NAME (may be NULL) is the name
 * the client checks the server's certificate against. */
static void handshake(struct world *w, struct tls_config *server, struct tls_config *client,
		      const char *server_name)
{
	end_start(w, &w->server, server);
	end_create(w, &w->client, client);
	if (server_name)
		assert_int_equal(tls_stream_set_server_name(w->client.s, server_name), 0);
	tls_stream_handshake(w->client.s, &w->client.hs);
	assert_false(w->client.hs_done);
	run_until(w, &w->client.hs_done, &w->server.hs_done);
	if (w->client.hs_res || w->server.hs_res)
		printf("handshake: client %d (%s), server %d (%s)\n", w->client.hs_res,
		       tls_stream_why(w->client.s), w->server.hs_res, tls_stream_why(w->server.s));
}

/* --- configs ----------------------------------------------------------------- */

static const uint8_t alice_key[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
				       17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static struct tls_psk_file *alice_file(void)
{
	char path[128], why[512];
	snprintf(path, sizeof(path), "%s/keys.psk", tmp_dir);
	write_file(path,
		   "# test keys\n\nbob:00112233445566778899aabbccddeeff\n"
		   "alice:0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20\n",
		   0600);
	struct tls_psk_file *f = NULL;
	assert_int_equal(tls_psk_file_load(path, &f, why, sizeof(why)), 0);
	return f;
}

static struct tls_config *psk_server(struct tls_psk_file *f)
{
	struct tls_config_params p = { .role = TLS_SERVER, .psk_find = tls_psk_file_find,
				       .psk_arg = f };
	struct tls_config *cfg = NULL;
	char why[512];
	assert_int_equal(tls_config_create(&p, &cfg, why, sizeof(why)), 0);
	return cfg;
}

static struct tls_config *psk_client(const char *identity, const uint8_t *key, size_t len)
{
	struct tls_config_params p = { .role = TLS_CLIENT, .psk_identity = identity, .psk_key = key,
				       .psk_key_len = len };
	struct tls_config *cfg = NULL;
	char why[512];
	assert_int_equal(tls_config_create(&p, &cfg, why, sizeof(why)), 0);
	return cfg;
}

/* A server knowing alice_file()'s keys, a client offering IDENTITY and
 * KEY, and the world between them, handshaken. */
struct psk_pair {
	struct tls_psk_file *f;
	struct tls_config *server, *client;
	struct world w;
};

static void psk_pair_up(struct psk_pair *p, const char *identity, const uint8_t *key,
			size_t len)
{
	p->f = alice_file();
	p->server = psk_server(p->f);
	p->client = psk_client(identity, key, len);
	world_open(&p->w);
	handshake(&p->w, p->server, p->client, NULL);
}

static void psk_pair_down(struct psk_pair *p)
{
	world_close(&p->w);
	tls_config_destroy(p->client);
	tls_config_destroy(p->server);
	tls_psk_file_free(p->f);
}

/* --- PSK -------------------------------------------------------------------------- */

static void exchange(struct world *w, struct end *from, struct end *to, const char *text)
{
	char buf[64] = "";
	struct iovec iov[2] = { { (void *)text, 3 }, { (void *)(text + 3), strlen(text) - 3 } };
	from->tx_done = to->rx_done = false;
	tls_stream_recv(to->s, &to->rx, buf, sizeof(buf));
	tls_stream_send(from->s, &from->tx, iov, 2);
	assert_false(from->tx_done || to->rx_done);
	run_until(w, &from->tx_done, &to->rx_done);
	assert_int_equal(from->tx_res, (int)strlen(text));
	assert_int_equal(to->rx_res, (int)strlen(text));
	assert_memory_equal(buf, text, strlen(text));
}

static void test_psk(void **state)
{
	(void)state;
	struct psk_pair p;
	psk_pair_up(&p, "alice", alice_key, sizeof(alice_key));
	struct world *w = &p.w;
	assert_int_equal(w->client.hs_res, 0);
	assert_int_equal(w->server.hs_res, 0);
	assert_string_equal(tls_stream_psk_identity(w->server.s), "alice");
	assert_null(tls_stream_psk_identity(w->client.s));
	assert_string_equal(tls_stream_describe(w->server.s), "TLSv1.3 TLS_AES_128_GCM_SHA256");
	uint8_t a[32], b[32];
	assert_int_equal(tls_stream_export(w->client.s, "EXPORTER-basalt-test", a, sizeof(a)), 0);
	assert_int_equal(tls_stream_export(w->server.s, "EXPORTER-basalt-test", b, sizeof(b)), 0);
	assert_memory_equal(a, b, sizeof(a));
	exchange(w, &w->client, &w->server, "hello, server");
	exchange(w, &w->server, &w->client, "hello, client");
	psk_pair_down(&p);
}

/* A wrong key and an unknown identity: refused, with a reason, on both
 * sides. */
static void psk_refused(const char *identity, const uint8_t *key, const char *server_says)
{
	struct psk_pair p;
	psk_pair_up(&p, identity, key, 32);
	struct world *w = &p.w;
	assert_int_equal(w->server.hs_res, -EACCES);
	assert_true(w->client.hs_res < 0);
	assert_non_null(strstr(tls_stream_why(w->server.s), server_says));
	assert_true(strlen(tls_stream_why(w->client.s)) > 0);
	/* A failed stream answers later ops with its error. */
	char buf[8];
	tls_stream_recv(w->client.s, &w->client.rx, buf, sizeof(buf));
	assert_false(w->client.rx_done);
	run_until(w, &w->client.rx_done, NULL);
	assert_int_equal(w->client.rx_res, w->client.hs_res);
	psk_pair_down(&p);
}

static void test_psk_wrong_key(void **state)
{
	(void)state;
	uint8_t wrong[32];
	memcpy(wrong, alice_key, sizeof(wrong));
	wrong[31] ^= 1;
	psk_refused("alice", wrong, "binder does not verify");
}

static void test_psk_unknown_identity(void **state)
{
	(void)state;
	psk_refused("mallory", alice_key, "unknown PSK identity 'mallory'");
}

/* --- bulk: 1 MiB both ways at once ----------------------------------------------- */

static void bulk_rx_done(struct io_op *op, int res);

static void bulk_recv(struct end *e)
{
	size_t want = e->in_want - e->in_len;
	e->rx.done = bulk_rx_done;
	tls_stream_recv(e->s, &e->rx, e->in + e->in_len, want < 7000 ? want : 7000);
}

static void bulk_rx_done(struct io_op *op, int res)
{
	struct end *e = op->ctx;
	assert_true(res > 0);
	e->in_len += (size_t)res;
	if (e->in_len < e->in_want)
		bulk_recv(e); /* from inside done: delivered by the same loop */
	else
		e->in_eof = true;
}

static void bulk_tx_done(struct io_op *op, int res);

static void bulk_send(struct end *e)
{
	e->tx.done = bulk_tx_done;
	tls_stream_send(e->s, &e->tx, e->iov + e->iov_first, e->iovcnt - e->iov_first);
}

/* A short send is resumed where it stopped, as with io_send. */
static void bulk_tx_done(struct io_op *op, int res)
{
	struct end *e = op->ctx;
	assert_true(res > 0);
	e->out_sent += (size_t)res;
	size_t skip = (size_t)res;
	while (skip && skip >= e->iov[e->iov_first].iov_len)
		skip -= e->iov[e->iov_first++].iov_len;
	if (skip) {
		e->iov[e->iov_first].iov_base = (uint8_t *)e->iov[e->iov_first].iov_base + skip;
		e->iov[e->iov_first].iov_len -= skip;
	}
	if (e->out_sent < e->out_total)
		bulk_send(e);
	else
		e->tx_done = true;
}

/* DATA cut into iovecs of 1..MAX_PIECE bytes (MAX_PIECE 0: 4 KiB each). */
static void bulk_iov(struct end *e, uint8_t *data, size_t len, size_t max_piece)
{
	e->iov = calloc(len, sizeof(*e->iov));
	assert_non_null(e->iov);
	size_t off = 0;
	unsigned seed = 7;
	while (off < len) {
		seed = seed * 1103515245u + 12345u;
		size_t n = max_piece ? 1 + (seed >> 8) % max_piece : 4096;
		if (n > len - off)
			n = len - off;
		e->iov[e->iovcnt++] = (struct iovec){ data + off, n };
		off += n;
	}
	e->out_total = len;
}

static uint8_t *marked(uint32_t salt)
{
	uint8_t *b = malloc(BULK);
	assert_non_null(b);
	for (uint32_t i = 0; i < BULK / 32; i++)
		snprintf((char *)b + 32 * i, 33, MARK "-%08x-%05x", salt, i & 0xfffff);
	return b;
}

static void test_bulk_both_ways(void **state)
{
	(void)state;
	struct psk_pair p;
	psk_pair_up(&p, "alice", alice_key, sizeof(alice_key));
	struct world *w = &p.w;
	assert_int_equal(w->client.hs_res, 0);
	size_t handshake_bytes = w->c2s.seen_len;
	uint8_t *up = marked(1), *down = marked(2);
	bulk_iov(&w->client, up, BULK, 64); /* tiny pieces: records must be shared */
	bulk_iov(&w->server, down, BULK, 0);
	for (struct end *e = &w->client; e; e = e == &w->client ? &w->server : NULL) {
		e->in = malloc(BULK);
		e->in_want = BULK;
		bulk_recv(e);
		bulk_send(e);
	}
	run_until(w, &w->client.in_eof, &w->server.in_eof);
	run_until(w, &w->client.tx_done, &w->server.tx_done);
	assert_memory_equal(w->server.in, up, BULK);
	assert_memory_equal(w->client.in, down, BULK);
	/* No plaintext on the wire, either way. */
	assert_null(memmem(w->c2s.seen, w->c2s.seen_len, MARK, strlen(MARK)));
	assert_null(memmem(w->s2c.seen, w->s2c.seen_len, MARK, strlen(MARK)));
	/* 16 KiB records (22 bytes each on top), not one per 1..64-byte
	 * iovec (about 60% more). */
	size_t overhead = w->c2s.seen_len - handshake_bytes - BULK;
	printf("1 MiB in %d iovecs: %zu bytes of TLS overhead\n", w->client.iovcnt, overhead);
	assert_true(overhead <= BULK / 16384 * 22 + 1024);
	free(up);
	free(down);
	psk_pair_down(&p);
}

/* --- X.509 ------------------------------------------------------------------------ */

static void make_certs(const char *name)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "%s %s/%s", TLS_CERTS_SCRIPT, tmp_dir, name);
	assert_int_equal(system(cmd), 0);
}

static struct tls_config *x509_server(const char *ca, bool verify)
{
	char dir[128], why[512];
	snprintf(dir, sizeof(dir), "%s/%s", tmp_dir, ca);
	struct tls_config_params p = { .role = TLS_SERVER, .cert_dir = dir, .verify_peer = verify };
	struct tls_config *cfg = NULL;
	int rc = tls_config_create(&p, &cfg, why, sizeof(why));
	if (rc)
		printf("%s\n", why);
	assert_int_equal(rc, 0);
	return cfg;
}

/* A client trusting CA's certificates, showing its own from CERTS (NULL:
 * none). */
static struct tls_config *x509_client(const char *ca, const char *certs)
{
	char ca_file[128], cert[128], key[128], why[512];
	snprintf(ca_file, sizeof(ca_file), "%s/%s/ca-cert.pem", tmp_dir, ca);
	snprintf(cert, sizeof(cert), "%s/%s/client-cert.pem", tmp_dir, certs ? certs : "");
	snprintf(key, sizeof(key), "%s/%s/client-key.pem", tmp_dir, certs ? certs : "");
	struct tls_config_params p = { .role = TLS_CLIENT, .ca_file = ca_file,
				       .cert_file = certs ? cert : NULL, .key_file = certs ? key : NULL };
	struct tls_config *cfg = NULL;
	assert_int_equal(tls_config_create(&p, &cfg, why, sizeof(why)), 0);
	return cfg;
}

/* A handshake between SERVER and CLIENT (both freed here): its results. */
static void x509_try(struct tls_config *server, struct tls_config *client, const char *name,
		     int *client_res, int *server_res, char *client_why, size_t len)
{
	struct world w;
	world_open(&w);
	handshake(&w, server, client, name);
	*client_res = w.client.hs_res;
	*server_res = w.server.hs_res;
	if (!*client_res && *server_res) {
		/* TLS 1.3: the client is done before the server checked its
		 * certificate, and hears of the refusal at its first read. */
		char buf[8];
		tls_stream_recv(w.client.s, &w.client.rx, buf, sizeof(buf));
		run_until(&w, &w.client.rx_done, NULL);
		*client_res = w.client.rx_res;
		printf("then the client's read: %d (%s)\n", *client_res, tls_stream_why(w.client.s));
	}
	snprintf(client_why, len, "%s", tls_stream_why(w.client.s));
	if (!*client_res && !*server_res) {
		assert_null(tls_stream_psk_identity(w.server.s));
		exchange(&w, &w.client, &w.server, "over X.509");
	}
	world_close(&w);
	tls_config_destroy(client);
	tls_config_destroy(server);
}

static void test_x509(void **state)
{
	(void)state;
	make_certs("a");
	make_certs("b");
	int c, s;
	char why[512];
	x509_try(x509_server("a", false), x509_client("a", NULL), "localhost", &c, &s, why, 512);
	assert_int_equal(c, 0);
	assert_int_equal(s, 0);
	x509_try(x509_server("a", false), x509_client("a", NULL), "127.0.0.1", &c, &s, why, 512);
	assert_int_equal(c, 0);
	/* Another CA, another name: the client refuses. */
	x509_try(x509_server("a", false), x509_client("b", NULL), "localhost", &c, &s, why, 512);
	assert_int_equal(c, -EACCES);
	assert_true(s < 0);
	assert_non_null(strstr(why, "certificate verify failed"));
	x509_try(x509_server("a", false), x509_client("a", NULL), "elsewhere", &c, &s, why, 512);
	assert_int_equal(c, -EACCES);
	/* Client certificates: required, and from the right CA. */
	x509_try(x509_server("a", true), x509_client("a", "a"), "localhost", &c, &s, why, 512);
	assert_int_equal(c, 0);
	assert_int_equal(s, 0);
	x509_try(x509_server("a", true), x509_client("a", NULL), NULL, &c, &s, why, 512);
	assert_int_equal(c, -EACCES); /* the certificate_required alert */
	assert_int_equal(s, -EACCES);
	x509_try(x509_server("a", true), x509_client("a", "b"), NULL, &c, &s, why, 512);
	assert_true(c < 0);
	assert_int_equal(s, -EACCES);
	/* A PSK-only client does not take a certificate it cannot check. */
	x509_try(x509_server("a", false), psk_client("alice", alice_key, 32), NULL, &c, &s, why,
		 512);
	assert_int_equal(c, -EACCES);
}

static void test_config_errors(void **state)
{
	(void)state;
	char why[512], dir[128];
	struct tls_config *cfg;
	snprintf(dir, sizeof(dir), "%s/none", tmp_dir);
	struct tls_config_params p = { .role = TLS_SERVER, .cert_dir = dir };
	assert_int_equal(tls_config_create(&p, &cfg, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "none/server-cert.pem"));
	p = (struct tls_config_params){ .role = TLS_SERVER };
	assert_int_equal(tls_config_create(&p, &cfg, why, sizeof(why)), -EINVAL);
	p = (struct tls_config_params){ .role = TLS_CLIENT, .psk_identity = "x", .psk_key = alice_key,
					.psk_key_len = TLS_PSK_KEY_MAX + 1 };
	assert_int_equal(tls_config_create(&p, &cfg, why, sizeof(why)), -EINVAL);
}

/* --- spoiled streams ---------------------------------------------------------------- */

/* A byte flipped in a record: the receiver fails with the reason, and
 * its alert fails the sender's next receive. */
static void test_bad_record(void **state)
{
	(void)state;
	struct psk_pair p;
	psk_pair_up(&p, "alice", alice_key, sizeof(alice_key));
	struct world *w = &p.w;
	assert_int_equal(w->client.hs_res, 0);
	w->s2c.flip_next = true;
	char buf[64];
	struct iovec iov = { "some data", 9 };
	tls_stream_recv(w->client.s, &w->client.rx, buf, sizeof(buf));
	tls_stream_recv(w->server.s, &w->server.rx, buf, sizeof(buf));
	tls_stream_send(w->server.s, &w->server.tx, &iov, 1);
	run_until(w, &w->client.rx_done, &w->server.rx_done);
	printf("client: %s\nserver: %s\n", tls_stream_why(w->client.s), tls_stream_why(w->server.s));
	assert_int_equal(w->client.rx_res, -EPROTO);
	assert_non_null(strstr(tls_stream_why(w->client.s), "bad record mac"));
	assert_int_equal(w->server.rx_res, -EPROTO);
	psk_pair_down(&p);
}

/* Garbage instead of a ClientHello, and a peer gone mid-handshake. */
static void test_garbage(void **state)
{
	(void)state;
	struct tls_psk_file *f = alice_file();
	struct tls_config *server = psk_server(f);
	for (int gone = 0; gone < 2; gone++) {
		struct world w;
		world_open(&w);
		end_start(&w, &w.server, server);
		if (gone)
			assert_int_equal(write(w.client.fd, "\x16\x03\x01\x02\x00\x01", 6), 6);
		else
			assert_int_equal(write(w.client.fd, "GET / HTTP/1.0\r\n\r\n", 18), 18);
		shutdown(w.client.fd, SHUT_WR);
		run_until(&w, &w.server.hs_done, NULL);
		printf("server: %d %s\n", w.server.hs_res, tls_stream_why(w.server.s));
		assert_int_equal(w.server.hs_res, gone ? -ECONNRESET : -EPROTO);
		assert_true(strlen(tls_stream_why(w.server.s)) > 0);
		world_close(&w);
	}
	tls_config_destroy(server);
	tls_psk_file_free(f);
}

/* close_notify reads as the end; a cancelled recv completes later with
 * -ECANCELED; a close with a recv pending cancels it. */
static void test_close_and_cancel(void **state)
{
	(void)state;
	struct psk_pair p;
	psk_pair_up(&p, "alice", alice_key, sizeof(alice_key));
	struct world *w = &p.w;
	char buf[16];
	tls_stream_recv(w->client.s, &w->client.rx, buf, sizeof(buf));
	tls_stream_cancel(w->client.s, &w->client.rx);
	assert_false(w->client.rx_done);
	run_until(w, &w->client.rx_done, NULL);
	assert_int_equal(w->client.rx_res, -ECANCELED);
	w->client.rx_done = false;
	tls_stream_recv(w->client.s, &w->client.rx, buf, sizeof(buf));
	tls_stream_recv(w->server.s, &w->server.rx, buf, sizeof(buf));
	end_close(w, &w->server); /* the server's recv ends cancelled */
	assert_true(w->server.rx_done);
	assert_int_equal(w->server.rx_res, -ECANCELED);
	run_until(w, &w->client.rx_done, NULL);
	assert_int_equal(w->client.rx_res, 0);
	w->client.rx_done = false;
	tls_stream_recv(w->client.s, &w->client.rx, buf, sizeof(buf));
	run_until(w, &w->client.rx_done, NULL);
	assert_int_equal(w->client.rx_res, 0); /* and stays ended */
	psk_pair_down(&p);
}

/* A close while the peer reads nothing: what is left is dropped after
 * TLS_CLOSE_LINGER_MS and the close completes. */
static void test_close_linger(void **state)
{
	(void)state;
	struct psk_pair p;
	psk_pair_up(&p, "alice", alice_key, sizeof(alice_key));
	struct world *w = &p.w;
	w->c2s.paused = true;
	size_t len = 8u << 20;
	uint8_t *big = calloc(1, len);
	struct iovec iov = { big, len };
	tls_stream_send(w->client.s, &w->client.tx, &iov, 1);
	uint64_t until = io_now_ns(w->loop) + IO_MS(300);
	while (io_now_ns(w->loop) < until)
		io_loop_run_once(w->loop, (int64_t)IO_MS(50));
	assert_false(w->client.tx_done); /* stuck: nobody reads */
	end_close(w, &w->client);
	assert_true(w->client.tx_done);
	assert_int_equal(w->client.tx_res, -ECANCELED);
	w->c2s.paused = false;
	if (!w->c2s.len)
		relay_recv(&w->c2s);
	psk_pair_down(&p);
	free(big);
}

/* --- PSK files ------------------------------------------------------------------------ */

static int load_psk(const char *text, mode_t mode, char *why)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/test.psk", tmp_dir);
	write_file(path, text, mode);
	struct tls_psk_file *f = NULL;
	int rc = tls_psk_file_load(path, &f, why, 512);
	tls_psk_file_free(f);
	return rc;
}

static void test_psk_file(void **state)
{
	(void)state;
	char why[512];
	struct tls_psk_file *f = alice_file();
	uint8_t key[TLS_PSK_KEY_MAX];
	size_t len = sizeof(key);
	assert_int_equal(tls_psk_file_find(f, "alice", key, &len), 0);
	assert_int_equal(len, 32);
	assert_memory_equal(key, alice_key, 32);
	assert_int_equal(tls_psk_file_find(f, "carol", key, &len), -ENOENT);
	tls_psk_file_free(f);
	char k64[160];
	memset(k64, 'a', 128);
	snprintf(k64 + 128, 32, "\n");
	char line[200];
	snprintf(line, sizeof(line), "big:%s", k64);
	assert_int_equal(load_psk(line, 0600, why), 0);
	snprintf(line, sizeof(line), "big:aa%s", k64);
	assert_int_equal(load_psk(line, 0600, why), -EINVAL);
	assert_non_null(strstr(why, "test.psk:1: the key must be 1 to 64 bytes"));
	assert_int_equal(load_psk("a:00\n", 0644, why), -EPERM);
	assert_non_null(strstr(why, "chmod o-rwx"));
	assert_int_equal(load_psk("a:00\n", 0640, why), 0);
	assert_int_equal(load_psk("a:00\nb:0g\n", 0600, why), -EINVAL);
	assert_non_null(strstr(why, "test.psk:2: the key is not hex"));
	assert_int_equal(load_psk("a:00\n# c\nnocolon\n", 0600, why), -EINVAL);
	assert_non_null(strstr(why, "test.psk:3: expected identity:hexkey"));
	assert_int_equal(load_psk("a:00\na:11\n", 0600, why), -EINVAL);
	assert_non_null(strstr(why, "test.psk:2: identity 'a' is given twice"));
	assert_int_equal(load_psk(":00\n", 0600, why), -EINVAL);
	assert_int_equal(load_psk("a:001\n", 0600, why), -EINVAL);
	assert_int_equal(load_psk("# nothing\n", 0600, why), -EINVAL);
	assert_non_null(strstr(why, "no identity:hexkey line"));
	struct tls_psk_file *none;
	assert_int_equal(tls_psk_file_load("/nonexistent/keys.psk", &none, why, 512), -ENOENT);
	/* A 64-byte key works end to end. */
	uint8_t big[64];
	memset(big, 0xaa, sizeof(big));
	snprintf(line, sizeof(line), "big:%s", k64);
	char path[128];
	snprintf(path, sizeof(path), "%s/big.psk", tmp_dir);
	write_file(path, line, 0600);
	assert_int_equal(tls_psk_file_load(path, &f, why, sizeof(why)), 0);
	struct tls_config *server = psk_server(f), *client = psk_client("big", big, 64);
	struct world w;
	world_open(&w);
	handshake(&w, server, client, NULL);
	assert_int_equal(w.client.hs_res, 0);
	assert_int_equal(w.server.hs_res, 0);
	world_close(&w);
	tls_config_destroy(client);
	tls_config_destroy(server);
	tls_psk_file_free(f);
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/basalt-test-tls.XXXXXX");
	return mkdtemp(tmp_dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp_dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_psk),
		cmocka_unit_test(test_psk_wrong_key),
		cmocka_unit_test(test_psk_unknown_identity),
		cmocka_unit_test(test_bulk_both_ways),
		cmocka_unit_test(test_x509),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_bad_record),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_close_and_cancel),
		cmocka_unit_test(test_close_linger),
		cmocka_unit_test(test_psk_file),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
