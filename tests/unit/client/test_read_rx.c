/* libbasalt receives a read's data straight into the caller's buffer; the
 * operation is pinned while a receive writes there (libbasalt.c). On the
 * simulated network, against a fake monitor (it hands out a map of one
 * OSD) and a fake OSD that can send a reply's header and half its data,
 * then stall: whatever ends the operation (its timeout, an attempt's
 * timeout and resend, the client's destruction) must leave the buffer
 * alone once DONE ran, even when the rest of that reply arrives then; a
 * reply whose data fails its CRC is never answered with. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/libbasalt.h"
#include "common/cluster/map.h"
#include "common/cluster/mon_proto.h"
#include "common/cluster/osd_proto.h"
#include "common/config.h"
#include "common/enc.h"
#include "common/io/sim.h"
#include "common/keyring.h"
#include "common/msgr.h"
#include "common/msgr_int.h" /* the fake OSD writes half a frame on the socket */

#define SRV_HOST "10.0.0.1"
#define CLI_HOST "10.0.0.2"
#define LEN (1u << 20) /* received directly (well above MSGR_DIRECT_MIN) */
#define KEY "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

enum osd_mode {
	OSD_WHOLE,	/* answers every read whole */
	OSD_HALF,	/* the first attempt: header and half the data, then stalls */
	OSD_BAD_CRC,	/* the first attempt: data that fails its CRC */
};

/* A frame (or part of one) written on the socket by hand. */
struct raw_send {
	struct io_op op;
	struct msg *msg;
	struct iovec iov[3];
	int n;
	int res;
	bool done;
};

struct world {
	struct io_sim_world *w;
	struct io_loop *srv, *cli;
	char dir[64], keyring[96];
	struct cfg *cfg;
	struct keyring *kr;
	struct msgr *mon, *osd;
	struct cluster_map map;
	struct bs_client *client;
	enum osd_mode mode;
	unsigned attempts; /* reads the fake OSD was asked */
	/* OSD_HALF: the rest of the first reply, for the test to send. */
	struct msgr_conn *stalled;
	struct msg *stalled_msg;
	struct raw_send head, rest;
	/* The operation. */
	struct bs_op op;
	uint8_t *buf;
	int done_calls, rc;
	bool done_inside_destroy, destroying;
};

static uint8_t data_byte(uint64_t i, unsigned attempt)
{
	return (uint8_t)(i * 7 + 13 + attempt * 101);
}

static void raw_done(struct io_op *op, int res)
{
	struct raw_send *s = op->ctx;
	s->res = res;
	s->done = true;
}

/* Writes bytes FROM..TO of MSG's frame on CONN's socket. */
static void raw_write(struct world *wd, struct raw_send *s, struct msgr_conn *conn,
		      struct msg *msg, size_t from, size_t to)
{
	const struct iovec parts[3] = { { msg->wire, MSG_HEADER_LEN },
					{ msg->payload, msg->hdr.payload_len },
					{ msg->data, msg->hdr.data_len } };
	size_t pos = 0;
	s->n = 0;
	for (int i = 0; i < 3; i++) {
		size_t a = pos > from ? pos : from, b = pos + parts[i].iov_len < to
								? pos + parts[i].iov_len
								: to;
		if (a < b)
			s->iov[s->n++] = (struct iovec){ (uint8_t *)parts[i].iov_base + (a - pos),
							 b - a };
		pos += parts[i].iov_len;
	}
	s->done = false;
	s->op = (struct io_op){ .done = raw_done, .ctx = s };
	io_send(wd->srv, &s->op, conn->fd, s->iov, s->n);
}

static struct msg *read_reply(uint64_t tid, uint32_t len, unsigned attempt)
{
	struct osd_op_reply r = { .rc = 0, .version = 1, .epoch = 1 };
	struct msg *msg = osd_op_reply_encode(tid, &r);
	assert_non_null(msg);
	assert_int_equal(msg_alloc_data(msg, len), 0);
	for (uint32_t i = 0; i < len; i++)
		msg->data[i] = data_byte(i, attempt);
	return msg;
}

static void osd_message(struct msgr_conn *conn, struct msg *msg)
{
	struct world *wd = msgr_ctx(msgr_conn_msgr(conn));
	struct osd_op op;
	if (msg->hdr.type != OSD_MSG_OP || osd_op_decode(msg, &op) || op.type != OSD_OP_READ) {
		msg_free(msg);
		return;
	}
	unsigned attempt = wd->attempts++;
	struct msg *r = read_reply(msg->hdr.request_id, op.len, attempt);
	msg_free(msg);
	if (attempt == 0 && wd->mode == OSD_HALF) {
		msg_seal(r);
		wd->stalled = conn;
		wd->stalled_msg = r;
		raw_write(wd, &wd->head, conn, r, 0, MSG_HEADER_LEN + r->hdr.payload_len + LEN / 2);
		return;
	}
	if (attempt == 0 && wd->mode == OSD_BAD_CRC) {
		msg_seal(r);
		r->data[LEN - 1] ^= 1; /* after the CRC was taken */
		wd->stalled_msg = r;
		raw_write(wd, &wd->head, conn, r, 0, MSG_HEADER_LEN + r->hdr.payload_len + LEN);
		return;
	}
	assert_int_equal(msgr_send(conn, r), 0);
}

/* The fake monitor: any SUBSCRIBE or GET_MAP is answered with the map. */
static void mon_message(struct msgr_conn *conn, struct msg *msg)
{
	struct world *wd = msgr_ctx(msgr_conn_msgr(conn));
	uint64_t req = msg->hdr.request_id;
	bool wants = msg->hdr.type == MON_MSG_SUBSCRIBE || msg->hdr.type == MON_MSG_GET_MAP;
	msg_free(msg);
	if (!wants)
		return;
	uint8_t *buf;
	size_t len;
	assert_int_equal(map_encode_public(&wd->map, &buf, &len), 0);
	struct msg *r = msg_new(MON_MSG_MAP, req, 8 + 1 + 2 + 64);
	assert_non_null(r);
	assert_int_equal(msg_alloc_data(r, (uint32_t)len), 0);
	memcpy(r->data, buf, len);
	free(buf);
	struct enc e;
	enc_init(&e, r->payload, r->hdr.payload_len);
	enc_put_le64(&e, wd->map.epoch);
	enc_put_u8(&e, 0);
	enc_put_str(&e, "a");
	r->hdr.payload_len = (uint32_t)e.pos;
	assert_int_equal(msgr_send(conn, r), 0);
}

/* The stalled connection is gone (the client reset it): its rest has
 * nowhere to go. */
static void osd_event(struct msgr_conn *conn, enum msgr_event ev, int err)
{
	struct world *wd = msgr_ctx(msgr_conn_msgr(conn));
	(void)err;
	if (ev == MSGR_EV_CLOSED && conn == wd->stalled)
		wd->stalled = NULL;
}

static const struct msgr_handler osd_handler = { .on_message = osd_message,
						 .on_event = osd_event };
static const struct msgr_handler mon_handler = { .on_message = mon_message };

static struct msgr *server(struct world *wd, const char *name, const struct msgr_handler *h,
			   uint16_t port)
{
	struct msgr_params p;
	msgr_params_default(&p);
	p.name = name;
	p.keyring = wd->kr;
	p.handler = h;
	p.ctx = wd;
	/* No keepalive between the stalled half and the rest. */
	p.keepalive_interval_ns = IO_SEC(60);
	p.keepalive_timeout_ns = IO_SEC(120);
	struct msgr *m;
	assert_int_equal(msgr_create(wd->srv, &p, &m), 0);
	assert_int_equal(msgr_listen(m, SRV_HOST, port, NULL), 0);
	return m;
}

static void make_map(struct world *wd)
{
	static const uint8_t fsid[16] = { 1, 2, 3 };
	struct map_mon mon = { "a", SRV_HOST ":6789" };
	assert_int_equal(map_init(&wd->map, fsid, &mon, 1), 0);
	struct map_cmd boot = { .type = MAP_CMD_OSD_BOOT, .osd = 0, .addr = SRV_HOST ":6800",
				.host = "h0", .device_bytes = 1ull << 30 };
	struct map_cmd pool = { .type = MAP_CMD_POOL_CREATE, .name = "rbd" };
	pool.pool = (struct map_pool){ .type = MAP_POOL_REPLICATED, .size = 1, .min_size = 1,
				       .pg_num = 1, .block_size = 1u << 20 };
	char err[256];
	if (map_apply(&wd->map, &boot, err, sizeof(err), NULL) ||
	    map_apply(&wd->map, &pool, err, sizeof(err), NULL))
		fail_msg("map: %s", err);
}

static struct world *world_start(enum osd_mode mode, uint32_t attempt_ms, uint32_t op_ms)
{
	struct world *wd = calloc(1, sizeof(*wd));
	assert_non_null(wd);
	wd->mode = mode;
	snprintf(wd->dir, sizeof(wd->dir), "/tmp/basalt-readrx.XXXXXX");
	assert_non_null(mkdtemp(wd->dir));
	snprintf(wd->keyring, sizeof(wd->keyring), "%s/keyring", wd->dir);
	FILE *f = fopen(wd->keyring, "w");
	assert_non_null(f);
	fprintf(f, "[mon.]\nkey = %s\n[client.admin]\nkey = %s\n[osd.0]\nkey = %s\n", KEY, KEY,
		KEY);
	fclose(f);
	char why[256];
	assert_int_equal(cfg_load_string("readrx.conf",
					 "[global]\nfsid = 01020300000000000000000000000000\n"
					 "[mon.a]\naddr = " SRV_HOST ":6789\n",
					 &wd->cfg, why, sizeof(why)),
			 0);
	assert_int_equal(keyring_load(wd->keyring, &wd->kr, why, sizeof(why)), 0);
	assert_int_equal(io_sim_world_create(22, &wd->w), 0);
	assert_int_equal(io_loop_create_sim(wd->w, SRV_HOST, &wd->srv), 0);
	assert_int_equal(io_loop_create_sim(wd->w, CLI_HOST, &wd->cli), 0);
	make_map(wd);
	wd->mon = server(wd, "mon.a", &mon_handler, 6789);
	wd->osd = server(wd, "osd.0", &osd_handler, 6800);
	struct bs_client_params cp = { .keyring = wd->keyring, .attempt_timeout_ms = attempt_ms,
				       .op_timeout_ms = op_ms };
	if (bs_client_create(wd->cli, wd->cfg, &cp, &wd->client, why, sizeof(why)))
		fail_msg("client: %s", why);
	assert_int_equal(posix_memalign((void **)&wd->buf, 4096, LEN), 0);
	memset(wd->buf, 0, LEN);
	return wd;
}

static void world_stop(struct world *wd)
{
	if (wd->client) {
		wd->destroying = true;
		bs_client_destroy(wd->client);
		wd->destroying = false;
	}
	msgr_destroy(wd->mon);
	msgr_destroy(wd->osd);
	msg_free(wd->stalled_msg);
	io_loop_destroy(wd->srv);
	io_loop_destroy(wd->cli);
	io_sim_world_destroy(wd->w);
	keyring_free(wd->kr);
	cfg_free(wd->cfg);
	map_free(&wd->map);
	free(wd->buf);
	char path[128];
	snprintf(path, sizeof(path), "%s/keyring", wd->dir);
	unlink(path);
	rmdir(wd->dir);
	free(wd);
}

static void op_done(struct bs_op *op, int rc)
{
	struct world *wd = op->ctx;
	wd->done_calls++;
	wd->rc = rc;
	wd->done_inside_destroy = wd->destroying;
	/* No receive into the buffer is still in flight (the messenger has
	 * released it): on io_uring a cancelled one may still write. */
	if (op->rx_conn)
		fail_msg("answered while a receive into its buffer may still write there");
	/* Answered: with the data of the last attempt, whole. */
	for (uint32_t i = 0; i < LEN && !rc; i++)
		if (wd->buf[i] != data_byte(i, wd->attempts - 1))
			fail_msg("byte %u is %u, not the answer's %u", i, wd->buf[i],
				 data_byte(i, wd->attempts - 1));
	/* The caller takes its buffer back at once: from here on nothing
	 * but the caller may write into it. */
	memset(wd->buf, 0x5A, LEN);
}

static bool have_map(void *arg)
{
	struct world *wd = arg;
	return bs_client_have_map(wd->client);
}

static bool answered(void *arg)
{
	return ((struct world *)arg)->done_calls > 0;
}

/* The first reply's half has been received into the buffer, and the
 * receive of the rest waits (the operation is pinned). */
static bool half_in(void *arg)
{
	struct world *wd = arg;
	return wd->op.rx_conn && wd->head.done && wd->buf[LEN / 2 - 1] == data_byte(LEN / 2 - 1, 0);
}

static void submit_read(struct world *wd)
{
	assert_int_equal(io_sim_run(wd->w, io_sim_now_ns(wd->w) + IO_SEC(5), have_map, wd), 0);
	wd->op = (struct bs_op){ .type = BS_READ,
				 .oid = { .pool = wd->map.pools[0].id, .inode = 1, .index = 0 },
				 .offset = 0, .len = LEN, .buf = wd->buf, .done = op_done,
				 .ctx = wd };
	bs_submit(wd->client, &wd->op);
}

static bool all_5a(const uint8_t *buf)
{
	for (uint32_t i = 0; i < LEN; i++)
		if (buf[i] != 0x5A)
			return false;
	return true;
}

/* The stalled sender finally sends the rest of its reply, if the client
 * kept the connection; then time passes. */
static void send_rest(struct world *wd)
{
	struct msg *r = wd->stalled_msg;
	if (!wd->stalled) {
		io_sim_run(wd->w, io_sim_now_ns(wd->w) + IO_SEC(1), NULL, NULL);
		return;
	}
	raw_write(wd, &wd->rest, wd->stalled, r, MSG_HEADER_LEN + r->hdr.payload_len + LEN / 2,
		  MSG_HEADER_LEN + r->hdr.payload_len + LEN);
	io_sim_run(wd->w, io_sim_now_ns(wd->w) + IO_SEC(1), NULL, NULL);
	assert_true(wd->rest.done);
}

static void test_whole_reply(void **state)
{
	(void)state;
	struct world *wd = world_start(OSD_WHOLE, 5000, 10000);
	submit_read(wd);
	assert_int_equal(io_sim_run(wd->w, io_sim_now_ns(wd->w) + IO_SEC(5), answered, wd), 0);
	assert_int_equal(wd->rc, 0);
	assert_int_equal(wd->attempts, 1);
	assert_null(wd->op.rx_conn);
	world_stop(wd);
}

/* The operation times out while the reply's data is half in: DONE runs
 * only once the receive into its buffer has ended, and the rest of that
 * reply, sent afterwards, never reaches the buffer. */
static void test_timeout_half_received(void **state)
{
	(void)state;
	/* (an operation in flight times out when its attempt does) */
	struct world *wd = world_start(OSD_HALF, 300, 250);
	submit_read(wd);
	assert_int_equal(io_sim_run(wd->w, io_sim_now_ns(wd->w) + IO_MS(200), half_in, wd), 0);
	assert_int_equal(io_sim_run(wd->w, io_sim_now_ns(wd->w) + IO_SEC(2), answered, wd), 0);
	assert_int_equal(wd->rc, -ETIMEDOUT);
	send_rest(wd);
	assert_int_equal(wd->done_calls, 1);
	if (!all_5a(wd->buf))
		fail_msg("the rest of a reply given up on was written into the buffer after DONE");
	assert_null(wd->op.rx_conn);
	world_stop(wd);
}

/* An attempt times out while its reply is half in: the read goes again
 * (the link was reset, so the old reply is dropped) and is answered with
 * the second attempt's data; the old reply's rest lands nowhere. */
static void test_resend_half_received(void **state)
{
	(void)state;
	struct world *wd = world_start(OSD_HALF, 300, 10000);
	submit_read(wd);
	assert_int_equal(io_sim_run(wd->w, io_sim_now_ns(wd->w) + IO_MS(250), half_in, wd), 0);
	/* Not answered (nor resent) from the old attempt's data. */
	assert_int_equal(io_sim_run(wd->w, io_sim_now_ns(wd->w) + IO_SEC(5), answered, wd), 0);
	assert_int_equal(wd->rc, 0);
	assert_int_equal(wd->attempts, 2);
	send_rest(wd);
	assert_int_equal(wd->done_calls, 1);
	assert_true(all_5a(wd->buf));
	world_stop(wd);
}

/* The client is destroyed while a reply's data is half in: the read is
 * answered -ECANCELED once, from bs_client_destroy, after the receive
 * ended (ASan: nothing left behind). */
static void test_destroy_half_received(void **state)
{
	(void)state;
	struct world *wd = world_start(OSD_HALF, 60000, 10000);
	submit_read(wd);
	assert_int_equal(io_sim_run(wd->w, io_sim_now_ns(wd->w) + IO_MS(400), half_in, wd), 0);
	assert_int_equal(wd->done_calls, 0);
	wd->destroying = true;
	bs_client_destroy(wd->client);
	wd->destroying = false;
	wd->client = NULL;
	assert_int_equal(wd->done_calls, 1);
	assert_int_equal(wd->rc, -ECANCELED);
	assert_true(wd->done_inside_destroy);
	send_rest(wd);
	assert_true(all_5a(wd->buf));
	world_stop(wd);
}

/* The reply's data fails its CRC after it was received into the buffer:
 * never answered with (op_done checks the data is the second attempt's);
 * the link resets and the resend's data is the answer. */
static void test_bad_data_crc(void **state)
{
	(void)state;
	struct world *wd = world_start(OSD_BAD_CRC, 5000, 10000);
	submit_read(wd);
	assert_int_equal(io_sim_run(wd->w, io_sim_now_ns(wd->w) + IO_SEC(5), answered, wd), 0);
	assert_int_equal(wd->attempts, 2);
	assert_int_equal(wd->rc, 0);
	world_stop(wd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whole_reply),
		cmocka_unit_test(test_timeout_half_received),
		cmocka_unit_test(test_resend_half_received),
		cmocka_unit_test(test_destroy_half_received),
		cmocka_unit_test(test_bad_data_crc),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
