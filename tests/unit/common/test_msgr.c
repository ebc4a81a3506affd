/* The messenger end to end on the simulated network (deterministic) and on
 * real loopback sockets: authentication, echo with data segments, bad
 * peers, reconnects, keepalive timeouts under a partition, backpressure,
 * and short sends/receives injected by the fault backend. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/enc.h"
#include "common/io/fault.h"
#include "common/io/sim.h"
#include "common/log.h"
#include "common/msgr.h"

#define TYPE_PING 100
#define TYPE_PONG 101

static const char keyring_good[] =
	"[client.admin]\nkey = AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
	"[osd.1]\nkey = //////////////////////////////////////////8=\n";
static const char keyring_wrong_secret[] =
	"[client.admin]\nkey = BBECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n";
static const char keyring_other_entity[] =
	"[client.evil]\nkey = AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n";

struct node {
	struct io_loop *loop;
	struct msgr *m;
	struct keyring *kr;
	bool echo; /* answer PING with PONG carrying the same data */
	int ups, downs, closes, writable;
	int last_err;
	uint64_t received;
	uint64_t next_expected; /* PONG ids arrive in order */
	uint64_t data_bytes;
	bool order_broken;
	struct msgr_conn *last_conn;
};

static void on_message(struct msgr_conn *conn, struct msg *msg)
{
	struct node *n = msgr_ctx(msgr_conn_msgr(conn));
	n->received++;
	n->data_bytes += msg->hdr.data_len;
	if (n->echo && msg->hdr.type == TYPE_PING) {
		struct msg *reply = msg_new(TYPE_PONG, msg->hdr.request_id,
					    msg->hdr.payload_len);
		memcpy(reply->payload, msg->payload, msg->hdr.payload_len);
		if (msg->hdr.data_len) {
			/* Hand the received buffer over without a copy. */
			reply->data = msg->data;
			reply->hdr.data_len = msg->hdr.data_len;
			msg->data = NULL;
		}
		assert_int_equal(msgr_send(conn, reply), 0);
	} else if (msg->hdr.type == TYPE_PONG) {
		if (msg->hdr.request_id != n->next_expected)
			n->order_broken = true;
		n->next_expected = msg->hdr.request_id + 1;
		/* Payload and data carry the request id pattern. */
		for (uint32_t i = 0; i < msg->hdr.data_len; i++)
			if (msg->data[i] != (uint8_t)(msg->hdr.request_id + i))
				n->order_broken = true;
	}
	msg_free(msg);
}

static void on_event(struct msgr_conn *conn, enum msgr_event ev, int err)
{
	struct node *n = msgr_ctx(msgr_conn_msgr(conn));
	n->last_err = err;
	n->last_conn = conn;
	if (ev == MSGR_EV_UP)
		n->ups++;
	else if (ev == MSGR_EV_DOWN)
		n->downs++;
	else
		n->closes++;
}

static void on_writable(struct msgr_conn *conn)
{
	struct node *n = msgr_ctx(msgr_conn_msgr(conn));
	n->writable++;
}

static bool type_ok(uint16_t type, void *arg)
{
	(void)arg;
	return type == TYPE_PING || type == TYPE_PONG;
}

static const struct msgr_handler handler = {
	.on_message = on_message,
	.on_event = on_event,
	.on_writable = on_writable,
	.type_ok = type_ok,
};

static void node_start(struct node *n, struct io_loop *loop, const char *name,
		       const char *keyring, bool echo,
		       void (*tune)(struct msgr_params *))
{
	memset(n, 0, sizeof(*n));
	char err[256];
	assert_int_equal(keyring_load_string("kr", keyring, &n->kr, err, sizeof(err)), 0);
	struct msgr_params p;
	msgr_params_default(&p);
	p.name = name;
	p.keyring = n->kr;
	p.handler = &handler;
	p.ctx = n;
	if (tune)
		tune(&p);
	n->loop = loop;
	n->echo = echo;
	assert_int_equal(msgr_create(loop, &p, &n->m), 0);
}

static void node_stop(struct node *n)
{
	msgr_destroy(n->m);
	keyring_free(n->kr);
	n->m = NULL;
}

static void send_ping(struct msgr_conn *c, uint64_t id, uint32_t data_len)
{
	struct msg *msg = msg_new(TYPE_PING, id, 8);
	struct enc e;
	enc_init(&e, msg->payload, 8);
	enc_put_le64(&e, id);
	if (data_len) {
		assert_int_equal(msg_alloc_data(msg, data_len), 0);
		for (uint32_t i = 0; i < data_len; i++)
			msg->data[i] = (uint8_t)(id + i);
	}
	assert_int_equal(msgr_send(c, msg), 0);
}

/* --- simulated world helpers ------------------------------------------ */

struct sim {
	struct io_sim_world *w;
	struct io_loop *server_loop, *client_loop;
	struct node server, client;
	uint16_t port;
};

/* The server's and the client's messengers set up by their own TUNEs. */
static void sim_setup2(struct sim *s, uint64_t seed, const char *client_keyring,
		       const char *client_name, void (*server_tune)(struct msgr_params *),
		       void (*client_tune)(struct msgr_params *))
{
	assert_int_equal(io_sim_world_create(seed, &s->w), 0);
	assert_int_equal(io_loop_create_sim(s->w, "10.0.0.1", &s->server_loop), 0);
	assert_int_equal(io_loop_create_sim(s->w, "10.0.0.2", &s->client_loop), 0);
	node_start(&s->server, s->server_loop, "osd.1", keyring_good, true, server_tune);
	node_start(&s->client, s->client_loop, client_name, client_keyring, false, client_tune);
	assert_int_equal(msgr_listen(s->server.m, "10.0.0.1", 6800, &s->port), 0);
}

static void sim_setup(struct sim *s, uint64_t seed, const char *client_keyring,
		      const char *client_name, void (*tune)(struct msgr_params *))
{
	sim_setup2(s, seed, client_keyring, client_name, tune, tune);
}

static void sim_teardown(struct sim *s)
{
	if (s->client.m)
		node_stop(&s->client);
	if (s->server.m)
		node_stop(&s->server);
	io_loop_destroy(s->client_loop);
	if (s->server_loop)
		io_loop_destroy(s->server_loop);
	io_sim_world_destroy(s->w);
}

static struct node *wait_node;
static uint64_t wait_received;
static bool received_enough(void *arg)
{
	(void)arg;
	return wait_node->received >= wait_received;
}

static int run_until_received(struct sim *s, struct node *n, uint64_t count,
			      uint64_t max_ns)
{
	wait_node = n;
	wait_received = count;
	return io_sim_run(s->w, io_sim_now_ns(s->w) + max_ns, received_enough, NULL);
}

static void run_for(struct sim *s, uint64_t ns)
{
	io_sim_run(s->w, io_sim_now_ns(s->w) + ns, NULL, NULL);
}

/* --- tests on the simulated network ------------------------------------ */

static void test_sim_echo(void **state)
{
	(void)state;
	struct sim s;
	sim_setup(&s, 11, keyring_good, "client.admin", NULL);
	struct msgr_conn *c;
	assert_int_equal(msgr_connect(s.client.m, "10.0.0.1", s.port, &c), 0);
	/* Queued before the connection is up: sent once authenticated. */
	for (uint64_t i = 0; i < 500; i++)
		send_ping(c, i, (uint32_t)(i % 7) * 5000);
	assert_int_equal(run_until_received(&s, &s.client, 500, IO_SEC(10)), 0);
	assert_false(s.client.order_broken);
	assert_int_equal(s.client.ups, 1);
	assert_int_equal(s.server.ups, 1);
	assert_string_equal(msgr_conn_peer_name(c), "osd.1");
	assert_string_equal(msgr_conn_peer_name(s.server.last_conn), "client.admin");
	assert_int_equal(msgr_stats(s.server.m)->auth_failures, 0);
	assert_int_equal(msgr_stats(s.server.m)->bad_frames, 0);
	/* Idle for a minute: keepalives hold the connection up. */
	run_for(&s, IO_SEC(60));
	assert_int_equal(s.client.downs, 0);
	assert_int_equal(s.server.closes, 0);
	assert_true(msgr_stats(s.client.m)->msgs_sent > 500);
	msgr_conn_close(c);
	run_for(&s, IO_SEC(1));
	assert_int_equal(s.server.closes, 1); /* the server saw it go */
	sim_teardown(&s);
}

static void secure(struct msgr_params *p)
{
	p->mode = MSGR_MODE_SECURE;
}

/* Secure mode on the simulated network: the same echo, through TLS. */
static void test_sim_secure_echo(void **state)
{
	(void)state;
	struct sim s;
	sim_setup(&s, 21, keyring_good, "client.admin", secure);
	struct msgr_conn *c;
	assert_int_equal(msgr_connect(s.client.m, "10.0.0.1", s.port, &c), 0);
	for (uint64_t i = 0; i < 200; i++)
		send_ping(c, i, (uint32_t)(i % 7) * 20000);
	assert_int_equal(run_until_received(&s, &s.client, 200, IO_SEC(20)), 0);
	assert_false(s.client.order_broken);
	assert_int_equal(s.client.ups, 1);
	assert_string_equal(msgr_conn_peer_name(s.server.last_conn), "client.admin");
	/* Both ends derived the same session key, bound to the channel. */
	assert_memory_equal(msgr_conn_session_key(c), msgr_conn_session_key(s.server.last_conn), 32);
	run_for(&s, IO_SEC(30));
	assert_int_equal(s.client.downs, 0);
	msgr_conn_close(c);
	run_for(&s, IO_SEC(2));
	assert_int_equal(s.server.closes, 1);
	sim_teardown(&s);
}

static void one_per_host(struct msgr_params *p)
{
	p->conns_per_host_max = 1;
}

/* ms_max_connections_per_host: a second connection from one host is
 * closed at once; the first goes on being served. */
static void test_sim_conns_per_host(void **state)
{
	(void)state;
	struct sim s;
	sim_setup2(&s, 24, keyring_good, "client.admin", one_per_host, NULL);
	struct node second;
	node_start(&second, s.client_loop, "client.admin", keyring_good, false, NULL);
	struct msgr_conn *c, *c2;
	assert_int_equal(msgr_connect(s.client.m, "10.0.0.1", s.port, &c), 0);
	send_ping(c, 0, 10);
	assert_int_equal(run_until_received(&s, &s.client, 1, IO_SEC(5)), 0);
	assert_int_equal(msgr_connect(second.m, "10.0.0.1", s.port, &c2), 0);
	send_ping(c2, 0, 10);
	run_for(&s, IO_SEC(3));
	assert_int_equal(second.ups, 0);
	assert_int_equal(second.received, 0);
	assert_int_equal(s.server.ups, 1);
	send_ping(c, 1, 10);
	assert_int_equal(run_until_received(&s, &s.client, 2, IO_SEC(5)), 0);
	msgr_conn_close(c2);
	node_stop(&second);
	msgr_conn_close(c);
	sim_teardown(&s);
}

/* A crc peer and a secure one never talk, whichever side is which. */
static void expect_mode_refused(void (*server_tune)(struct msgr_params *),
				void (*client_tune)(struct msgr_params *))
{
	struct sim s;
	sim_setup2(&s, 22, keyring_good, "client.admin", server_tune, client_tune);
	struct msgr_conn *c;
	assert_int_equal(msgr_connect(s.client.m, "10.0.0.1", s.port, &c), 0);
	send_ping(c, 0, 100);
	run_for(&s, IO_SEC(5));
	assert_int_equal(s.server.ups + s.client.ups, 0);
	assert_int_equal(s.server.received, 0);
	assert_int_equal(s.client.downs, 1);
	assert_int_equal(s.client.last_err, -EPROTONOSUPPORT);
	msgr_conn_close(c);
	sim_teardown(&s);
}

static void test_sim_mode_mismatch(void **state)
{
	(void)state;
	expect_mode_refused(secure, NULL);
	expect_mode_refused(NULL, secure);
}

static void test_sim_secure_wrong_secret(void **state)
{
	(void)state;
	struct sim s;
	sim_setup(&s, 23, keyring_wrong_secret, "client.admin", secure);
	struct msgr_conn *c;
	assert_int_equal(msgr_connect(s.client.m, "10.0.0.1", s.port, &c), 0);
	send_ping(c, 0, 100);
	run_for(&s, IO_SEC(5));
	assert_int_equal(s.server.ups + s.client.ups, 0);
	/* The server knows no PSK for that key id and ends the handshake (a
	 * handshake_failure alert: the client cannot tell why). */
	assert_true(s.client.last_err == -EACCES || s.client.last_err == -EPROTO);
	assert_true(msgr_stats(s.server.m)->auth_failures >= 1);
	msgr_conn_close(c);
	sim_teardown(&s);
}

static void expect_auth_failure(const char *keyring, const char *name)
{
	struct sim s;
	sim_setup(&s, 12, keyring, name, NULL);
	struct msgr_conn *c;
	assert_int_equal(msgr_connect(s.client.m, "10.0.0.1", s.port, &c), 0);
	send_ping(c, 0, 100);
	run_for(&s, IO_SEC(10));
	/* Never served: no UP, no message delivered; retried with backoff. */
	assert_int_equal(s.server.ups, 0);
	assert_int_equal(s.client.ups, 0);
	assert_int_equal(s.server.received, 0);
	assert_int_equal(s.client.downs, 1); /* reported once, not per retry */
	assert_int_equal(s.client.last_err, -EACCES); /* told why, not just reset */
	uint64_t failures = msgr_stats(s.server.m)->auth_failures +
			    msgr_stats(s.client.m)->auth_failures;
	assert_true(failures >= 3);
	assert_true(failures < 30); /* backoff, not a busy loop */
	msgr_conn_close(c);
	sim_teardown(&s);
}

static void test_sim_wrong_secret(void **state)
{
	(void)state;
	expect_auth_failure(keyring_wrong_secret, "client.admin");
}

static void test_sim_unknown_entity(void **state)
{
	(void)state;
	expect_auth_failure(keyring_other_entity, "client.evil");
}

static void test_sim_client_needs_own_key(void **state)
{
	(void)state;
	struct sim s;
	sim_setup(&s, 13, keyring_other_entity, "client.admin", NULL);
	struct msgr_conn *c;
	assert_int_equal(msgr_connect(s.client.m, "10.0.0.1", s.port, &c), -ENOKEY);
	sim_teardown(&s);
}

/* Counts completions in CTX and stores the result where OFFSET points. */
static void raw_done(struct io_op *o, int r)
{
	(*(int *)o->ctx)++;
	*(int *)(uintptr_t)o->offset = r;
}

/* A raw peer that sends junk or skips authentication is cut off, and an
 * honest client on the same server keeps being served. */
static void raw_peer(struct sim *s, const uint8_t *bytes, size_t len)
{
	int fd;
	assert_int_equal(io_socket(s->client_loop, AF_INET, &fd), 0);
	struct sockaddr_storage addr;
	socklen_t alen;
	io_resolve("10.0.0.1", s->port, &addr, &alen);
	struct io_op op = { 0 };
	int done = 0, res = 0;
	op.ctx = &done;
	op.done = raw_done;
	op.offset = (uint64_t)(uintptr_t)&res;
	io_connect(s->client_loop, &op, fd, (struct sockaddr *)&addr, alen);
	while (!done)
		run_for(s, IO_MS(1));
	assert_int_equal(res, 0);
	struct iovec iov = { (void *)bytes, len };
	done = 0;
	io_send(s->client_loop, &op, fd, &iov, 1);
	while (!done)
		run_for(s, IO_MS(1));
	/* The server closes on us (after its banner, when ours was one):
	 * recv sees EOF. */
	uint8_t buf[512];
	for (int i = 0; i < 3; i++) {
		done = 0;
		op.offset = (uint64_t)(uintptr_t)&res;
		io_recv(s->client_loop, &op, fd, buf, sizeof(buf));
		while (!done)
			run_for(s, IO_MS(1));
		if (res <= 0)
			break;
	}
	assert_true(res <= 0);
	io_close(s->client_loop, fd);
}

static void test_sim_bad_peers(void **state)
{
	(void)state;
	struct sim s;
	sim_setup(&s, 14, keyring_good, "client.admin", NULL);
	struct msgr_conn *c;
	assert_int_equal(msgr_connect(s.client.m, "10.0.0.1", s.port, &c), 0);
	send_ping(c, 0, 10);
	assert_int_equal(run_until_received(&s, &s.client, 1, IO_SEC(5)), 0);

	uint8_t junk[64];
	memset(junk, 0x5a, sizeof(junk));
	raw_peer(&s, junk, sizeof(junk)); /* bad magic */
	uint8_t frame[8 + MSG_HEADER_LEN + 8] = { 'B', 'S', 'L', 'T', 1, 'c', 0, 0 };
	struct msg *m = msg_new(TYPE_PING, 1, 8);
	memset(m->payload, 0, 8);
	msg_seal(m);
	memcpy(frame + 8, m->wire, MSG_HEADER_LEN);
	memcpy(frame + 8 + MSG_HEADER_LEN, m->payload, 8);
	msg_free(m);
	raw_peer(&s, frame, sizeof(frame)); /* a banner, then a user message before auth */
	uint64_t bad = msgr_stats(s.server.m)->bad_frames;
	assert_int_equal(bad, 2);
	assert_int_equal(s.server.received, 1); /* nothing from the raw peers */

	/* The honest client was never disturbed. */
	send_ping(c, 1, 10);
	assert_int_equal(run_until_received(&s, &s.client, 2, IO_SEC(5)), 0);
	assert_int_equal(s.client.downs, 0);
	msgr_conn_close(c);
	sim_teardown(&s);
}

static void test_sim_server_restart(void **state)
{
	(void)state;
	struct sim s;
	sim_setup(&s, 15, keyring_good, "client.admin", NULL);
	struct msgr_conn *c;
	assert_int_equal(msgr_connect(s.client.m, "10.0.0.1", s.port, &c), 0);
	send_ping(c, 0, 1000);
	assert_int_equal(run_until_received(&s, &s.client, 1, IO_SEC(5)), 0);
	/* The server process dies. */
	node_stop(&s.server);
	io_loop_destroy(s.server_loop);
	s.server_loop = NULL;
	run_for(&s, IO_SEC(3));
	assert_int_equal(s.client.downs, 1);
	assert_false(msgr_conn_up(c));
	/* Sent while down: kept across failed attempts, delivered after the
	 * reconnect. */
	send_ping(c, 1, 1000);
	run_for(&s, IO_SEC(5));
	assert_int_equal(s.client.downs, 1);
	assert_int_equal(io_loop_create_sim(s.w, "10.0.0.1", &s.server_loop), 0);
	node_start(&s.server, s.server_loop, "osd.1", keyring_good, true, NULL);
	assert_int_equal(msgr_listen(s.server.m, "10.0.0.1", s.port, NULL), 0);
	assert_int_equal(run_until_received(&s, &s.client, 2, IO_SEC(10)), 0);
	assert_int_equal(s.client.ups, 2);
	assert_false(s.client.order_broken);
	msgr_conn_close(c);
	sim_teardown(&s);
}

static void test_sim_partition_keepalive(void **state)
{
	(void)state;
	struct sim s;
	sim_setup(&s, 16, keyring_good, "client.admin", NULL);
	struct msgr_conn *c;
	assert_int_equal(msgr_connect(s.client.m, "10.0.0.1", s.port, &c), 0);
	send_ping(c, 0, 0);
	assert_int_equal(run_until_received(&s, &s.client, 1, IO_SEC(5)), 0);
	uint64_t t0 = io_sim_now_ns(s.w);
	io_sim_cut(s.w, "10.0.0.1", "10.0.0.2", true);
	run_for(&s, IO_SEC(30));
	/* Both ends noticed through keepalive timeouts. */
	assert_int_equal(s.client.downs, 1);
	assert_int_equal(s.client.last_err, -ETIMEDOUT);
	assert_int_equal(s.server.closes, 1);
	assert_true(msgr_stats(s.client.m)->timeouts >= 1);
	assert_true(io_sim_now_ns(s.w) - t0 >= IO_SEC(10));
	io_sim_cut(s.w, "10.0.0.1", "10.0.0.2", false);
	send_ping(c, 1, 0);
	assert_int_equal(run_until_received(&s, &s.client, 2, IO_SEC(10)), 0);
	assert_int_equal(s.client.ups, 2);
	msgr_conn_close(c);
	sim_teardown(&s);
}

static void small_queue(struct msgr_params *p)
{
	p->send_queue_msgs_max = 4;
}

static void test_sim_backpressure(void **state)
{
	(void)state;
	struct sim s;
	sim_setup(&s, 17, keyring_good, "client.admin", small_queue);
	struct msgr_conn *c;
	assert_int_equal(msgr_connect(s.client.m, "10.0.0.1", s.port, &c), 0);
	assert_int_equal(run_until_received(&s, &s.server, 0, IO_SEC(1)), 0);
	while (!msgr_conn_up(c))
		run_for(&s, IO_MS(1));
	for (uint64_t i = 0; i < 4; i++)
		send_ping(c, i, 100);
	struct msg *extra = msg_new(TYPE_PING, 4, 0);
	assert_int_equal(msgr_send(c, extra), -EAGAIN); /* caller keeps it */
	assert_int_equal(s.client.writable, 0);
	assert_int_equal(run_until_received(&s, &s.client, 4, IO_SEC(5)), 0);
	assert_int_equal(s.client.writable, 1);
	memset(extra->payload, 0, 0);
	assert_int_equal(msgr_send(c, extra), 0);
	assert_int_equal(run_until_received(&s, &s.client, 5, IO_SEC(5)), 0);
	msgr_conn_close(c);
	sim_teardown(&s);
}

/* The same seed gives the same run, byte for byte and tick for tick. */
static uint64_t sim_fingerprint(uint64_t seed)
{
	struct sim s;
	sim_setup(&s, seed, keyring_good, "client.admin", NULL);
	io_sim_set_reset_rate(s.w, 20000);
	struct msgr_conn *c;
	assert_int_equal(msgr_connect(s.client.m, "10.0.0.1", s.port, &c), 0);
	for (uint64_t i = 0; i < 200; i++) {
		send_ping(c, i, 3000);
		run_for(&s, IO_MS(5));
	}
	uint64_t fp = io_sim_now_ns(s.w) ^ (s.client.received << 32) ^
		      ((uint64_t)s.client.downs << 48) ^
		      msgr_stats(s.client.m)->bytes_received;
	assert_true(s.client.downs > 0); /* resets did happen */
	msgr_conn_close(c);
	sim_teardown(&s);
	return fp;
}

static void test_sim_deterministic(void **state)
{
	(void)state;
	assert_true(sim_fingerprint(99) == sim_fingerprint(99));
	assert_true(sim_fingerprint(99) != sim_fingerprint(100));
}

/* --- real sockets ------------------------------------------------------ */

static void test_uring_echo_with_short_io(void **state)
{
	(void)state;
	struct io_loop *loop;
	struct io_fault *f;
	assert_int_equal(io_loop_create_uring(NULL, &loop), 0);
	assert_int_equal(io_fault_attach(loop, 5, &f), 0);
	/* Every other send and recv comes back short. */
	io_fault_set(f, IO_OP_SEND, 0, 0, 500000);
	io_fault_set(f, IO_OP_RECV, 0, 0, 500000);
	struct node server, client;
	node_start(&server, loop, "osd.1", keyring_good, true, NULL);
	node_start(&client, loop, "client.admin", keyring_good, false, NULL);
	uint16_t port;
	assert_int_equal(msgr_listen(server.m, "127.0.0.1", 0, &port), 0);
	struct msgr_conn *c;
	assert_int_equal(msgr_connect(client.m, "127.0.0.1", port, &c), 0);
	const uint64_t count = 2000;
	for (uint64_t i = 0; i < count; i++)
		send_ping(c, i, i % 10 == 0 ? 128 * 1024 : 4096);
	while (client.received < count)
		assert_true(io_loop_run_once(loop, IO_SEC(5)) > 0);
	assert_false(client.order_broken);
	assert_true(io_fault_shorts(f) > 100);
	assert_int_equal(msgr_stats(server.m)->bad_frames, 0);
	msgr_conn_close(c);
	node_stop(&client);
	node_stop(&server);
	assert_int_equal(io_loop_in_flight(loop), 0);
	io_loop_destroy(loop);
}

static void test_uring_refused_then_up(void **state)
{
	(void)state;
	struct io_loop *loop;
	assert_int_equal(io_loop_create_uring(NULL, &loop), 0);
	struct node server, client;
	node_start(&client, loop, "client.admin", keyring_good, false, NULL);
	/* Find a free port, then connect before anyone listens there. */
	node_start(&server, loop, "osd.1", keyring_good, true, NULL);
	uint16_t port;
	assert_int_equal(msgr_listen(server.m, "127.0.0.1", 0, &port), 0);
	node_stop(&server);
	struct msgr_conn *c;
	assert_int_equal(msgr_connect(client.m, "127.0.0.1", port, &c), 0);
	while (client.downs == 0)
		io_loop_run_once(loop, IO_SEC(1));
	assert_int_equal(client.last_err, -ECONNREFUSED);
	node_start(&server, loop, "osd.1", keyring_good, true, NULL);
	assert_int_equal(msgr_listen(server.m, "127.0.0.1", port, NULL), 0);
	send_ping(c, 0, 0);
	while (client.received < 1)
		io_loop_run_once(loop, IO_SEC(1));
	assert_int_equal(client.ups, 1);
	msgr_conn_close(c);
	node_stop(&client);
	node_stop(&server);
	io_loop_destroy(loop);
}

int main(void)
{
	log_set_level(LOG_LEVEL_ERROR);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sim_echo),
		cmocka_unit_test(test_sim_secure_echo),
		cmocka_unit_test(test_sim_mode_mismatch),
		cmocka_unit_test(test_sim_secure_wrong_secret),
		cmocka_unit_test(test_sim_conns_per_host),
		cmocka_unit_test(test_sim_wrong_secret),
		cmocka_unit_test(test_sim_unknown_entity),
		cmocka_unit_test(test_sim_client_needs_own_key),
		cmocka_unit_test(test_sim_bad_peers),
		cmocka_unit_test(test_sim_server_restart),
		cmocka_unit_test(test_sim_partition_keepalive),
		cmocka_unit_test(test_sim_backpressure),
		cmocka_unit_test(test_sim_deterministic),
		cmocka_unit_test(test_uring_echo_with_short_io),
		cmocka_unit_test(test_uring_refused_then_up),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
