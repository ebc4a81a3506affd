/* The event loop on each backend: timers, posts from other threads, file
 * and socket operations, cancellation, the simulated world (network,
 * partitions, power loss, determinism) and fault injection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/io/fault.h"
#include "common/io/loop.h"
#include "common/io/sim.h"

/* --- timers ----------------------------------------------------------- */

struct fired {
	int order[16];
	int count;
	uint64_t at_ns[16];
	struct io_loop *loop;
};

struct tagged_timer {
	struct io_timer t;
	int tag;
	struct fired *log;
};

static void record_fire(struct io_timer *t)
{
	struct tagged_timer *tt = t->ctx;
	tt->log->at_ns[tt->log->count] = io_now_ns(tt->log->loop);
	tt->log->order[tt->log->count++] = tt->tag;
}

static void run_timer_order(struct io_loop *loop, uint64_t unit_ns,
			    void (*run)(struct io_loop *, uint64_t, void *),
			    void *arg)
{
	struct fired log = { .loop = loop };
	struct tagged_timer timers[6];
	const int delays[6] = { 50, 10, 40, 20, 30, 60 };
	uint64_t start = io_now_ns(loop);
	for (int i = 0; i < 6; i++) {
		timers[i].tag = i;
		timers[i].log = &log;
		io_timer_init(&timers[i].t, record_fire, &timers[i]);
		io_timer_arm(loop, &timers[i].t, (uint64_t)delays[i] * unit_ns);
	}
	/* Disarm one, re-arm another later than it was. */
	io_timer_disarm(loop, &timers[2].t);
	assert_false(io_timer_armed(&timers[2].t));
	io_timer_arm(loop, &timers[1].t, 70 * unit_ns);
	run(loop, 100 * unit_ns, arg);
	const int want[] = { 3, 4, 0, 5, 1 };
	assert_int_equal(log.count, 5);
	assert_memory_equal(log.order, want, sizeof(want));
	const int want_delay[] = { 20, 30, 50, 60, 70 };
	for (int i = 0; i < 5; i++) /* never early */
		assert_true(log.at_ns[i] - start >= (uint64_t)want_delay[i] * unit_ns);
}

static void run_real(struct io_loop *loop, uint64_t ns, void *arg)
{
	(void)arg;
	uint64_t end = io_now_ns(loop) + ns;
	while (io_now_ns(loop) < end)
		io_loop_run_once(loop, (int64_t)(end - io_now_ns(loop)));
}

static void run_sim(struct io_loop *loop, uint64_t ns, void *arg)
{
	struct io_sim_world *w = arg;
	io_sim_run(w, io_now_ns(loop) + ns, NULL, NULL);
}

static void test_timers_uring(void **state)
{
	(void)state;
	struct io_loop *loop;
	assert_int_equal(io_loop_create_uring(NULL, &loop), 0);
	run_timer_order(loop, IO_MS(1), run_real, NULL);
	io_loop_destroy(loop);
}

static void test_timers_sim(void **state)
{
	(void)state;
	struct io_sim_world *w;
	struct io_loop *loop;
	assert_int_equal(io_sim_world_create(1, &w), 0);
	assert_int_equal(io_loop_create_sim(w, "10.0.0.1", &loop), 0);
	uint64_t t0 = io_sim_now_ns(w);
	/* Over an hour of virtual time costs nothing. */
	run_timer_order(loop, IO_SEC(36), run_sim, w);
	assert_true(io_sim_now_ns(w) - t0 >= IO_SEC(70 * 36));
	io_loop_destroy(loop);
	io_sim_world_destroy(w);
}

/* --- posts from another thread --------------------------------------- */

#define POSTS 2000

struct post_test {
	struct io_loop *loop;
	struct io_post posts[POSTS];
	int ran;
};

static void post_fn(struct io_post *p)
{
	struct post_test *pt = p->ctx;
	if (++pt->ran == POSTS)
		io_loop_stop(pt->loop);
}

static void *poster(void *arg)
{
	struct post_test *pt = arg;
	for (int i = 0; i < POSTS; i++) {
		pt->posts[i].fn = post_fn;
		pt->posts[i].ctx = pt;
		io_loop_post(pt->loop, &pt->posts[i]);
		if (i % 100 == 0)
			usleep(100);
	}
	return NULL;
}

static void test_cross_thread_posts(void **state)
{
	(void)state;
	struct post_test pt = { 0 };
	assert_int_equal(io_loop_create_uring(NULL, &pt.loop), 0);
	pthread_t th;
	pthread_create(&th, NULL, poster, &pt);
	assert_int_equal(io_loop_run(pt.loop), 0);
	pthread_join(th, NULL);
	assert_int_equal(pt.ran, POSTS);
	io_loop_destroy(pt.loop);
}

/* --- files -------------------------------------------------------------- */

struct op_result {
	int res;
	int done;
};

#define BASALT_TEST_UNUSED(x) (void)(x)
#define OP_INIT(r) { .ctx = (r), .done = op_done }

static void op_done(struct io_op *op, int res)
{
	struct op_result *r = op->ctx;
	r->res = res;
	r->done++;
}

/* Runs LOOP until OP, submitted with ctx R and done op_done, completes. */
static int wait_op(struct io_loop *loop, struct io_op *op, struct op_result *r)
{
	BASALT_TEST_UNUSED(op);
	while (!r->done)
		io_loop_run_once(loop, -1);
	r->done = 0;
	return r->res;
}

static void test_file_io_uring(void **state)
{
	(void)state;
	struct io_loop *loop;
	assert_int_equal(io_loop_create_uring(NULL, &loop), 0);
	char path[] = "./test-loop-file-XXXXXX";
	int tmp = mkstemp(path);
	assert_true(tmp >= 0);
	close(tmp);
	int fd;
	assert_int_equal(io_open(loop, path, O_RDWR | O_DIRECT, 0, &fd), 0);
	void *wbuf, *rbuf;
	assert_int_equal(posix_memalign(&wbuf, 4096, 8192), 0);
	assert_int_equal(posix_memalign(&rbuf, 4096, 8192), 0);
	for (int i = 0; i < 8192; i++)
		((uint8_t *)wbuf)[i] = (uint8_t)(i * 13);
	struct op_result r = { 0 };
	struct io_op op = OP_INIT(&r);
	struct iovec iov[2] = { { wbuf, 4096 }, { (uint8_t *)wbuf + 4096, 4096 } };
	io_writev(loop, &op, fd, iov, 2, 4096, RWF_DSYNC);
	assert_int_equal(wait_op(loop, &op, &r), 8192);
	io_fsync(loop, &op, fd, true);
	assert_int_equal(wait_op(loop, &op, &r), 0);
	io_read(loop, &op, fd, rbuf, 8192, 4096);
	assert_int_equal(wait_op(loop, &op, &r), 8192);
	assert_memory_equal(rbuf, wbuf, 8192);
	/* A bad descriptor is an error result, not a crash. */
	io_read(loop, &op, 12345, rbuf, 4096, 0);
	assert_int_equal(wait_op(loop, &op, &r), -EBADF);
	io_close(loop, fd);
	unlink(path);
	assert_int_equal(io_open(loop, path, O_RDONLY, 0, &fd), -ENOENT);
	free(wbuf);
	free(rbuf);
	io_loop_destroy(loop);
}

/* --- sockets ------------------------------------------------------------ */

struct sock_pair {
	int listen_fd, client_fd, server_fd;
};

static void make_pair(struct io_loop *loop, struct sock_pair *sp,
		      const char *host, struct io_sim_world *w)
{
	uint16_t port;
	assert_int_equal(io_listen(loop, host, 0, &sp->listen_fd, &port), 0);
	assert_true(port != 0);
	assert_int_equal(io_socket(loop, AF_INET, &sp->client_fd), 0);
	struct sockaddr_storage addr;
	socklen_t len;
	assert_int_equal(io_resolve(host, port, &addr, &len), 0);
	struct io_op acc = { 0 }, con = { 0 };
	struct op_result ra = { 0 }, rc = { 0 };
	acc.ctx = &ra;
	acc.done = op_done;
	con.ctx = &rc;
	con.done = op_done;
	io_accept(loop, &acc, sp->listen_fd);
	io_connect(loop, &con, sp->client_fd, (struct sockaddr *)&addr, len);
	while (!ra.done || !rc.done) {
		if (w)
			io_sim_run(w, io_sim_now_ns(w) + IO_MS(10), NULL, NULL);
		else
			io_loop_run_once(loop, -1);
	}
	assert_int_equal(rc.res, 0);
	assert_true(ra.res >= 0);
	sp->server_fd = ra.res;
}

static void test_sockets_and_cancel_uring(void **state)
{
	(void)state;
	struct io_loop *loop;
	assert_int_equal(io_loop_create_uring(NULL, &loop), 0);
	struct sock_pair sp;
	make_pair(loop, &sp, "127.0.0.1", NULL);
	char out[] = "hello, basalt";
	char in[64] = { 0 };
	struct iovec iov[2] = { { out, 7 }, { out + 7, sizeof(out) - 7 } };
	struct op_result rs = { 0 }, rr = { 0 };
	struct io_op send = OP_INIT(&rs), recv = OP_INIT(&rr);
	io_send(loop, &send, sp.client_fd, iov, 2);
	assert_int_equal(wait_op(loop, &send, &rs), (int)sizeof(out));
	io_recv(loop, &recv, sp.server_fd, in, sizeof(in));
	assert_int_equal(wait_op(loop, &recv, &rr), (int)sizeof(out));
	assert_string_equal(in, out);
	/* A recv with nothing to read is cancelled. */
	rr.done = 0;
	io_recv(loop, &recv, sp.server_fd, in, sizeof(in));
	io_loop_run_once(loop, 0);
	assert_int_equal(rr.done, 0);
	io_cancel(loop, &recv);
	while (!rr.done)
		io_loop_run_once(loop, -1);
	rr.done = 0;
	assert_int_equal(rr.res, -ECANCELED);
	/* Peer close reads as EOF. */
	io_close(loop, sp.client_fd);
	io_recv(loop, &recv, sp.server_fd, in, sizeof(in));
	assert_int_equal(wait_op(loop, &recv, &rr), 0);
	io_close(loop, sp.server_fd);
	io_close(loop, sp.listen_fd);
	assert_int_equal(io_loop_in_flight(loop), 0);
	io_loop_destroy(loop);
}

static bool op_is_done(void *arg)
{
	return ((struct op_result *)arg)->done > 0;
}

/* Runs the world until the op reporting to R completes. */
static void sim_wait(struct io_sim_world *w, struct op_result *r)
{
	r->done = 0;
	assert_int_equal(io_sim_run(w, io_sim_now_ns(w) + IO_SEC(60), op_is_done, r), 0);
}

static void test_sim_network(void **state)
{
	(void)state;
	struct io_sim_world *w;
	struct io_loop *a, *b;
	assert_int_equal(io_sim_world_create(42, &w), 0);
	assert_int_equal(io_loop_create_sim(w, "10.0.0.1", &a), 0);
	assert_int_equal(io_loop_create_sim(w, "10.0.0.2", &b), 0);
	int lfd, cfd;
	uint16_t port;
	assert_int_equal(io_listen(b, "10.0.0.2", 7000, &lfd, &port), 0);
	assert_int_equal(port, 7000);
	assert_int_equal(io_listen(b, "10.0.0.2", 7000, &lfd, &port), -EADDRINUSE);
	assert_int_equal(io_socket(a, AF_INET, &cfd), 0);
	struct sockaddr_storage addr;
	socklen_t len;
	io_resolve("10.0.0.2", 7000, &addr, &len);

	struct io_op acc = { 0 }, con = { 0 }, send = { 0 }, recv = { 0 };
	struct op_result ra = { 0 }, rc = { 0 }, rs = { 0 }, rr = { 0 };
	acc.ctx = &ra; acc.done = op_done;
	con.ctx = &rc; con.done = op_done;
	send.ctx = &rs; send.done = op_done;
	recv.ctx = &rr; recv.done = op_done;
	io_accept(b, &acc, lfd);
	io_connect(a, &con, cfd, (struct sockaddr *)&addr, len);
	assert_int_equal(io_sim_run(w, io_sim_now_ns(w) + IO_SEC(1), op_is_done, &rc), 0);
	assert_int_equal(rc.res, 0);
	assert_int_equal(io_sim_run(w, io_sim_now_ns(w) + IO_SEC(1), op_is_done, &ra), 0);
	int sfd = ra.res;
	assert_true(sfd >= 0);

	/* Bytes arrive in order after the latency, never before. */
	char msg[] = "0123456789";
	struct iovec iov = { msg, 10 };
	char in[32] = { 0 };
	io_send(a, &send, cfd, &iov, 1);
	io_recv(b, &recv, sfd, in, sizeof(in));
	uint64_t t0 = io_sim_now_ns(w);
	assert_int_equal(io_sim_run(w, t0 + IO_SEC(1), op_is_done, &rr), 0);
	assert_int_equal(rr.res, 10);
	assert_memory_equal(in, msg, 10);
	assert_true(io_sim_now_ns(w) - t0 >= IO_US(50));

	/* A cut black-holes the connection: bytes sent never arrive. */
	io_sim_cut(w, "10.0.0.1", "10.0.0.2", true);
	rs.done = rr.done = 0;
	io_send(a, &send, cfd, &iov, 1);
	io_recv(b, &recv, sfd, in, sizeof(in));
	/* Nothing is left that could ever happen. */
	assert_int_equal(io_sim_run(w, io_sim_now_ns(w) + IO_SEC(5), op_is_done, &rr), -EDEADLK);
	assert_int_equal(rs.res, 10);
	io_cancel(b, &recv);
	sim_wait(w, &rr);
	assert_int_equal(rr.res, -ECANCELED);

	/* New connections across the cut time out; after healing they work. */
	int cfd2;
	assert_int_equal(io_socket(a, AF_INET, &cfd2), 0);
	rc.done = 0;
	io_connect(a, &con, cfd2, (struct sockaddr *)&addr, len);
	sim_wait(w, &rc);
	assert_int_equal(rc.res, -ETIMEDOUT);
	io_sim_cut(w, "10.0.0.1", "10.0.0.2", false);
	io_connect(a, &con, cfd2, (struct sockaddr *)&addr, len);
	sim_wait(w, &rc);
	assert_int_equal(rc.res, 0);
	io_accept(b, &acc, lfd);
	sim_wait(w, &ra);
	assert_true(ra.res >= 0);

	/* Nobody listening: refused. Peer exit: EOF. */
	io_close(b, lfd);
	int cfd3;
	assert_int_equal(io_socket(a, AF_INET, &cfd3), 0);
	io_connect(a, &con, cfd3, (struct sockaddr *)&addr, len);
	sim_wait(w, &rc);
	assert_int_equal(rc.res, -ECONNREFUSED);
	io_loop_destroy(b);
	io_recv(a, &recv, cfd2, in, sizeof(in));
	sim_wait(w, &rr);
	assert_int_equal(rr.res, 0);
	io_loop_destroy(a);
	io_sim_world_destroy(w);
}

/* Power loss keeps what was synced and a random part of the rest; the
 * same seed loses the same part. */
static uint64_t sim_power_fail_pattern(uint64_t seed)
{
	struct io_sim_world *w;
	struct io_loop *loop;
	assert_int_equal(io_sim_world_create(seed, &w), 0);
	assert_int_equal(io_loop_create_sim(w, "10.0.0.9", &loop), 0);
	int fd;
	assert_int_equal(io_open(loop, "/disk", O_RDWR | O_CREAT, 0644, &fd), 0);
	static uint8_t synced[4096], later[8192];
	memset(synced, 'S', sizeof(synced));
	memset(later, 'L', sizeof(later));
	struct io_op op = { 0 };
	struct op_result r;
	op.ctx = &r;
	op.done = op_done;
	io_write(loop, &op, fd, synced, sizeof(synced), 0);
	sim_wait(w, &r);
	io_fsync(loop, &op, fd, false);
	sim_wait(w, &r);
	io_write(loop, &op, fd, later, sizeof(later), 0);
	sim_wait(w, &r);
	assert_int_equal(r.res, (int)sizeof(later));
	io_loop_destroy(loop);
	io_sim_power_fail(w, "10.0.0.9");

	assert_int_equal(io_loop_create_sim(w, "10.0.0.9", &loop), 0);
	assert_int_equal(io_open(loop, "/disk", O_RDWR, 0, &fd), 0);
	static uint8_t back[8192];
	memset(back, 0, sizeof(back));
	io_read(loop, &op, fd, back, sizeof(back), 0);
	sim_wait(w, &r);
	uint64_t pattern = 0;
	for (int sector = 0; sector < 16; sector++) {
		uint8_t c = back[sector * 512];
		for (int i = 0; i < 512; i++) /* sectors are atomic */
			assert_int_equal(back[sector * 512 + i], c);
		if (sector < 8)
			assert_true(c == 'S' || c == 'L');
		else
			assert_true(c == 0 || c == 'L');
		pattern |= (uint64_t)(c == 'L') << sector;
	}
	io_loop_destroy(loop);
	io_sim_world_destroy(w);
	return pattern;
}

static void test_sim_power_fail(void **state)
{
	(void)state;
	uint64_t seen_all = 0, seen_none = ~0ULL;
	for (uint64_t seed = 1; seed <= 20; seed++) {
		uint64_t p = sim_power_fail_pattern(seed);
		assert_true(p == sim_power_fail_pattern(seed)); /* replays */
		seen_all |= p;
		seen_none &= p;
	}
	/* Across seeds every sector was both lost and kept at least once. */
	assert_true(seen_all == 0xffff);
	assert_true(seen_none == 0);
}

/* --- fault injection ----------------------------------------------------- */

static void test_fault_injection(void **state)
{
	(void)state;
	struct io_loop *loop;
	struct io_fault *f;
	assert_int_equal(io_loop_create_uring(NULL, &loop), 0);
	assert_int_equal(io_fault_attach(loop, 7, &f), 0);
	assert_string_equal(io_loop_backend_name(loop), "fault");
	char path[] = "./test-fault-file-XXXXXX";
	int tmp = mkstemp(path);
	close(tmp);
	int fd;
	assert_int_equal(io_open(loop, path, O_RDWR, 0, &fd), 0);
	char buf[256];
	memset(buf, 'x', sizeof(buf));
	struct op_result r = { 0 };
	struct io_op op = OP_INIT(&r);
	io_fault_set(f, IO_OP_WRITE, 1000000, -EIO, 0);
	io_write(loop, &op, fd, buf, sizeof(buf), 0);
	assert_int_equal(wait_op(loop, &op, &r), -EIO);
	io_fault_set(f, IO_OP_WRITE, 0, 0, 0);
	io_write(loop, &op, fd, buf, sizeof(buf), 0);
	assert_int_equal(wait_op(loop, &op, &r), (int)sizeof(buf));
	io_fault_set(f, IO_OP_READ, 0, 0, 1000000);
	io_read(loop, &op, fd, buf, sizeof(buf), 0);
	int n = wait_op(loop, &op, &r);
	assert_true(n >= 1 && n < (int)sizeof(buf));
	assert_int_equal(io_fault_errors(f), 1);
	assert_int_equal(io_fault_shorts(f), 1);
	io_close(loop, fd);
	unlink(path);
	io_loop_destroy(loop);
}

/* --- linked operations (io_link) ---------------------------------------- */

struct link_log {
	int tags[8], res[8];
	int count;
};

struct tagged_op {
	struct io_op op;
	int tag;
	struct link_log *log;
};

static void tagged_done(struct io_op *op, int res)
{
	struct tagged_op *t = op->ctx;
	t->log->tags[t->log->count] = t->tag;
	t->log->res[t->log->count++] = res;
}

static void tagged_init(struct tagged_op *t, int n, struct link_log *log)
{
	memset(log, 0, sizeof(*log));
	for (int i = 0; i < n; i++)
		t[i] = (struct tagged_op){ .op = { .ctx = &t[i], .done = tagged_done },
					   .tag = i, .log = log };
}

/* The result LOG recorded for the op tagged TAG (or 1: none yet). */
static int link_res(const struct link_log *log, int tag)
{
	for (int i = 0; i < log->count; i++)
		if (log->tags[i] == tag)
			return log->res[i];
	return 1;
}

static void run_until_count(struct io_loop *loop, struct io_sim_world *w,
			    struct link_log *log, int count)
{
	while (log->count < count) {
		if (w)
			io_sim_run(w, io_sim_now_ns(w) + IO_MS(1), NULL, NULL);
		else
			io_loop_run_once(loop, -1);
	}
}

/* A write linked to an fsync: both run, in order; a write that fails
 * cancels the fsync. */
static void test_link_uring(void **state)
{
	(void)state;
	struct io_loop *loop;
	assert_int_equal(io_loop_create_uring(NULL, &loop), 0);
	char path[] = "./test-loop-link-XXXXXX";
	int tmp = mkstemp(path);
	assert_true(tmp >= 0);
	close(tmp);
	int fd, ro;
	assert_int_equal(io_open(loop, path, O_RDWR | O_DIRECT, 0, &fd), 0);
	assert_int_equal(io_open(loop, path, O_RDONLY, 0, &ro), 0);
	void *buf;
	assert_int_equal(posix_memalign(&buf, 4096, 8192), 0);
	memset(buf, 'w', 8192);
	struct tagged_op t[3];
	struct link_log log;

	tagged_init(t, 3, &log);
	io_link(loop, &t[0].op);
	io_write(loop, &t[0].op, fd, buf, 4096, 0);
	io_link(loop, &t[1].op);
	io_write(loop, &t[1].op, fd, (uint8_t *)buf + 4096, 4096, 4096);
	io_fsync(loop, &t[2].op, fd, true);
	run_until_count(loop, NULL, &log, 3);
	assert_int_equal(link_res(&log, 0), 4096);
	assert_int_equal(link_res(&log, 1), 4096);
	assert_int_equal(link_res(&log, 2), 0);
	assert_int_equal(log.tags[2], 2); /* the fsync last */
	assert_false(t[0].op.link); /* reset by the completion */

	tagged_init(t, 2, &log);
	io_link(loop, &t[0].op);
	io_write(loop, &t[0].op, ro, buf, 4096, 0);
	io_fsync(loop, &t[1].op, ro, true);
	run_until_count(loop, NULL, &log, 2);
	assert_int_equal(link_res(&log, 0), -EBADF);
	assert_int_equal(link_res(&log, 1), -ECANCELED);

	/* An op submitted after the chain is not part of it. */
	tagged_init(t, 2, &log);
	io_write(loop, &t[0].op, ro, buf, 4096, 0);
	io_fsync(loop, &t[1].op, fd, true);
	run_until_count(loop, NULL, &log, 2);
	assert_int_equal(link_res(&log, 0), -EBADF);
	assert_int_equal(link_res(&log, 1), 0);
	io_close(loop, ro);
	io_close(loop, fd);
	unlink(path);
	free(buf);
	io_loop_destroy(loop);
}

/* The simulated disk links as io_uring does: the fsync starts only when
 * the write completed in full; a failed, short or cancelled write cancels
 * it, so what was written before stays unsynced (a power loss may take
 * it). Returns which sectors of an earlier unsynced write a power loss
 * kept, after a chain whose head FAULT (0: none) made fail. */
static unsigned sim_link_run(uint64_t seed, enum io_sim_disk_fault fault, bool cancel)
{
	struct io_sim_world *w;
	struct io_loop *loop;
	assert_int_equal(io_sim_world_create(seed, &w), 0);
	assert_int_equal(io_loop_create_sim(w, "10.0.0.7", &loop), 0);
	int fd;
	assert_int_equal(io_open(loop, "/disk", O_RDWR | O_CREAT, 0644, &fd), 0);
	static uint8_t early[4096], head[4096];
	memset(early, 'E', sizeof(early));
	memset(head, 'H', sizeof(head));
	struct tagged_op t[3];
	struct link_log log;
	tagged_init(t, 3, &log);
	io_write(loop, &t[0].op, fd, early, sizeof(early), 0);
	run_until_count(loop, w, &log, 1);
	if (fault)
		assert_int_equal(io_sim_disk_fault(w, "10.0.0.7", "/disk", fault, 8192, 512), 0);
	tagged_init(t, 3, &log);
	io_link(loop, &t[0].op);
	io_write(loop, &t[0].op, fd, head, sizeof(head), 8192);
	io_fsync(loop, &t[1].op, fd, true);
	if (cancel)
		io_cancel(loop, &t[0].op);
	run_until_count(loop, w, &log, 2);
	assert_int_equal(log.tags[0], 0); /* the write first */
	bool ok = !fault && !cancel;
	if (ok) {
		assert_int_equal(link_res(&log, 0), 4096);
		assert_int_equal(link_res(&log, 1), 0);
	} else {
		if (fault == IO_SIM_FAIL_WRITE || cancel)
			assert_true(link_res(&log, 0) < 0);
		else
			assert_int_equal(link_res(&log, 0), 2048);
		assert_int_equal(link_res(&log, 1), -ECANCELED);
	}
	io_loop_destroy(loop);
	io_sim_power_fail(w, "10.0.0.7");
	assert_int_equal(io_loop_create_sim(w, "10.0.0.7", &loop), 0);
	assert_int_equal(io_open(loop, "/disk", O_RDWR, 0, &fd), 0);
	static uint8_t back[4096];
	memset(back, 0, sizeof(back));
	tagged_init(t, 1, &log);
	io_read(loop, &t[0].op, fd, back, sizeof(back), 0);
	run_until_count(loop, w, &log, 1);
	unsigned kept = 0;
	for (int sector = 0; sector < 8; sector++)
		kept |= (unsigned)(back[sector * 512] == 'E') << sector;
	io_loop_destroy(loop);
	io_sim_world_destroy(w);
	return kept;
}

static void test_link_sim(void **state)
{
	(void)state;
	unsigned kept_failed = 0xff, kept_short = 0xff, kept_cancel = 0xff;
	for (uint64_t seed = 1; seed <= 20; seed++) {
		/* The fsync ran: the earlier write is durable. */
		assert_int_equal(sim_link_run(seed, 0, false), 0xff);
		kept_failed &= sim_link_run(seed, IO_SIM_FAIL_WRITE, false);
		kept_short &= sim_link_run(seed, IO_SIM_SHORT_WRITE, false);
		kept_cancel &= sim_link_run(seed, 0, true);
	}
	/* It did not: across seeds the power loss took each sector once. */
	assert_int_equal(kept_failed, 0);
	assert_int_equal(kept_short, 0);
	assert_int_equal(kept_cancel, 0);
}

/* The fault wrapper fails a chain's head and cancels the rest, as the
 * kernel does; the successor of a head it passed on is never failed. */
static void test_link_fault(void **state)
{
	(void)state;
	struct io_sim_world *w;
	struct io_loop *loop;
	struct io_fault *f;
	assert_int_equal(io_sim_world_create(5, &w), 0);
	assert_int_equal(io_loop_create_sim(w, "10.0.0.8", &loop), 0);
	assert_int_equal(io_fault_attach(loop, 3, &f), 0);
	int fd;
	assert_int_equal(io_open(loop, "/disk", O_RDWR | O_CREAT, 0644, &fd), 0);
	static uint8_t buf[4096];
	struct tagged_op t[3];
	struct link_log log;
	io_fault_set(f, IO_OP_WRITE, 1000000, -EIO, 0);
	tagged_init(t, 3, &log);
	io_link(loop, &t[0].op);
	io_write(loop, &t[0].op, fd, buf, sizeof(buf), 0);
	io_link(loop, &t[1].op);
	io_write(loop, &t[1].op, fd, buf, sizeof(buf), 4096);
	io_fsync(loop, &t[2].op, fd, true);
	run_until_count(loop, w, &log, 3);
	assert_int_equal(link_res(&log, 0), -EIO);
	assert_int_equal(link_res(&log, 1), -ECANCELED);
	assert_int_equal(link_res(&log, 2), -ECANCELED);
	assert_int_equal(io_fault_errors(f), 1);

	io_fault_set(f, IO_OP_WRITE, 0, 0, 1000000);
	io_fault_set(f, IO_OP_FSYNC, 1000000, -EIO, 0);
	tagged_init(t, 2, &log);
	io_link(loop, &t[0].op);
	io_write(loop, &t[0].op, fd, buf, sizeof(buf), 0);
	io_fsync(loop, &t[1].op, fd, true);
	run_until_count(loop, w, &log, 2);
	assert_int_equal(link_res(&log, 0), (int)sizeof(buf));
	assert_int_equal(link_res(&log, 1), 0);
	assert_int_equal(io_fault_errors(f), 1);
	assert_int_equal(io_fault_shorts(f), 0);
	io_loop_destroy(loop);
	io_sim_world_destroy(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timers_uring),
		cmocka_unit_test(test_timers_sim),
		cmocka_unit_test(test_cross_thread_posts),
		cmocka_unit_test(test_file_io_uring),
		cmocka_unit_test(test_sockets_and_cancel_uring),
		cmocka_unit_test(test_sim_network),
		cmocka_unit_test(test_sim_power_fail),
		cmocka_unit_test(test_fault_injection),
		cmocka_unit_test(test_link_uring),
		cmocka_unit_test(test_link_sim),
		cmocka_unit_test(test_link_fault),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
