/* basalt-nbd's backup chunk cache (client/nbd/nbd_backup.c) over a fake
 * repository of 4 KiB chunks on a real io_uring loop with real fetch
 * threads: reads are right (holes zero, a short last chunk), the cache
 * never holds more than its bound and evicts the least recently used
 * chunk, a chunk being fetched is never evicted (reads needing room wait
 * instead), concurrent misses of one chunk fetch it once, a failed fetch
 * answers EIO naming the chunk and is not cached, opens are shared. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/nbd/nbd_backup.h"

#define CS 4096u
#define N_CHUNKS 5
#define SIZE (4 * CS + CS / 2) /* the last chunk is half one */
#define HOLE 2

struct fake {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool gate_closed;
	atomic_int fetches[N_CHUNKS];
	atomic_int fail_once; /* chunk index + 1 to fail, once */
	atomic_int opens, closes;
	int src; /* what open hands out */
};

static uint8_t byte_at(uint64_t pos)
{
	return (uint8_t)(pos * 7 + pos / CS + 1);
}

static int f_connect(void *ctx, void **conn, char *why, size_t why_len)
{
	(void)why, (void)why_len;
	*conn = ctx;
	return 0;
}

static void f_disconnect(void *ctx, void *conn)
{
	(void)ctx, (void)conn;
}

static int f_open(void *ctx, const char *id, void **src, uint64_t *size, char *why,
		  size_t why_len)
{
	struct fake *f = ctx;
	atomic_fetch_add(&f->opens, 1);
	if (strcmp(id, "b1") != 0) {
		snprintf(why, why_len, "no backup %s", id);
		return -ENOENT;
	}
	*src = &f->src;
	*size = SIZE;
	return 0;
}

static void f_close(void *ctx, void *src)
{
	struct fake *f = ctx;
	assert_ptr_equal(src, &f->src);
	atomic_fetch_add(&f->closes, 1);
}

static bool f_has(void *src, uint64_t index)
{
	(void)src;
	return index != HOLE;
}

static int f_chunk(void *ctx, void *conn, void *src, uint64_t index, void *buf, uint32_t *len,
		   char *why, size_t why_len)
{
	struct fake *f = ctx;
	(void)conn, (void)src;
	assert_true(index < N_CHUNKS && index != HOLE);
	pthread_mutex_lock(&f->lock);
	while (f->gate_closed)
		pthread_cond_wait(&f->cond, &f->lock);
	pthread_mutex_unlock(&f->lock);
	atomic_fetch_add(&f->fetches[index], 1);
	int want = (int)index + 1;
	if (atomic_compare_exchange_strong(&f->fail_once, &want, 0)) {
		snprintf(why, why_len, "chunk %llu (volume bytes %llu-) does not match its hash",
			 (unsigned long long)index, (unsigned long long)index * CS);
		return -EBADMSG;
	}
	*len = index == N_CHUNKS - 1 ? CS / 2 : CS;
	for (uint32_t i = 0; i < *len; i++)
		((uint8_t *)buf)[i] = byte_at(index * CS + i);
	return 0;
}

static const struct nbd_backup_ops fake_ops = {
	.connect = f_connect, .disconnect = f_disconnect, .open = f_open,
	.close = f_close, .has = f_has, .chunk = f_chunk,
};

struct world {
	struct io_loop *loop;
	struct fake f;
	struct nbd_backups *b;
	struct nbd_backup *bk;
};

static void gate(struct world *w, bool closed)
{
	pthread_mutex_lock(&w->f.lock);
	w->f.gate_closed = closed;
	pthread_cond_broadcast(&w->f.cond);
	pthread_mutex_unlock(&w->f.lock);
}

/* Runs the loop until *FLAG (bounded: a hang fails). */
static void run_until(struct world *w, const bool *flag)
{
	for (int i = 0; i < 2000 && !*flag; i++) {
		io_loop_run_once(w->loop, 5 * 1000 * 1000);
		nbd_backups_check(w->b);
	}
	assert_true(*flag);
}

struct opened {
	bool done;
	int rc;
	struct nbd_backup *bk;
	char why[256];
};

static void open_done(void *arg, int rc, struct nbd_backup *bk, const char *why)
{
	struct opened *o = arg;
	o->done = true;
	o->rc = rc;
	o->bk = bk;
	snprintf(o->why, sizeof(o->why), "%s", why ? why : "");
}

static struct world *world_new(uint64_t cache_bytes)
{
	struct world *w = calloc(1, sizeof(*w));
	pthread_mutex_init(&w->f.lock, NULL);
	pthread_cond_init(&w->f.cond, NULL);
	assert_int_equal(io_loop_create_uring(NULL, &w->loop), 0);
	struct nbd_backup_params p = { .cache_bytes = cache_bytes, .threads = 4, .chunk_size = CS };
	assert_int_equal(nbd_backups_create(w->loop, &fake_ops, &w->f, &p, &w->b), 0);
	struct opened o = { 0 };
	nbd_backup_open(w->b, "b1", open_done, &o);
	run_until(w, &o.done);
	assert_int_equal(o.rc, 0);
	assert_int_equal(nbd_backup_size(o.bk), SIZE);
	w->bk = o.bk;
	return w;
}

static void world_free(struct world *w)
{
	nbd_backup_put(w->bk);
	nbd_backups_destroy(w->b);
	assert_int_equal(atomic_load(&w->f.closes), 1);
	io_loop_destroy(w->loop);
	free(w);
}

struct rd {
	struct nbd_backup_read r;
	bool done;
	int rc;
	char why[256];
	uint8_t buf[SIZE];
};

static void read_done(struct nbd_backup_read *r, int rc, const char *why)
{
	struct rd *x = r->ctx;
	assert_false(x->done); /* once */
	x->done = true;
	x->rc = rc;
	snprintf(x->why, sizeof(x->why), "%s", why ? why : "");
}

static void read_start(struct world *w, struct rd *x, uint64_t offset, uint32_t len)
{
	memset(x, 0xee, sizeof(*x));
	x->done = false;
	x->r = (struct nbd_backup_read){ .offset = offset, .len = len, .buf = x->buf,
					 .done = read_done, .ctx = x };
	nbd_backup_read(w->bk, &x->r);
}

/* The bytes RD read are the backup's. */
static void read_check(const struct rd *x)
{
	assert_true(x->done);
	assert_int_equal(x->rc, 0);
	for (uint32_t i = 0; i < x->r.len; i++) {
		uint64_t pos = x->r.offset + i;
		uint8_t want = pos / CS == HOLE ? 0 : byte_at(pos);
		if (x->buf[i] != want)
			fail_msg("byte %llu: %u, not %u", (unsigned long long)pos, x->buf[i], want);
	}
}

static void read_one(struct world *w, uint64_t offset, uint32_t len)
{
	struct rd *x = malloc(sizeof(*x));
	read_start(w, x, offset, len);
	run_until(w, &x->done);
	read_check(x);
	free(x);
}

static int fetches(struct world *w, unsigned i)
{
	return atomic_load(&w->f.fetches[i]);
}

static void test_read_and_lru(void **state)
{
	(void)state;
	struct world *w = world_new(2 * CS);
	read_one(w, 0, SIZE); /* every chunk through a cache of two */
	for (unsigned i = 0; i < N_CHUNKS; i++)
		assert_int_equal(fetches(w, i), i == HOLE ? 0 : 1);
	struct nbd_backups_stats st;
	nbd_backups_stats(w->b, &st);
	assert_true(st.cached_bytes_max <= 2 * CS);
	assert_true(st.evictions >= 2);
	/* Which two the full read left cached depends on the order its
	 * fetches finished in: reading 3 and 4 makes them the two. Then 4
	 * again is a hit, and a read across the hole and into 3 fetches
	 * nothing. */
	read_one(w, 3 * CS, 512);
	read_one(w, 4 * CS, 512);
	int before = fetches(w, 3) + fetches(w, 4);
	read_one(w, 4 * CS + 512, 1024);
	read_one(w, 2 * CS + 100, CS);
	assert_int_equal(fetches(w, 3) + fetches(w, 4), before);
	/* LRU: 0, 1, 0 again, then 3 evicts 1 (least recent), not 0. */
	int f0 = fetches(w, 0), f1 = fetches(w, 1), f3 = fetches(w, 3);
	read_one(w, 0, 512);
	read_one(w, CS, 512);
	read_one(w, 0, 512);
	read_one(w, 3 * CS, 512);
	assert_int_equal(fetches(w, 0), f0 + 1);
	assert_int_equal(fetches(w, 1), f1 + 1);
	assert_int_equal(fetches(w, 3), f3 + 1);
	read_one(w, 0, 512);
	assert_int_equal(fetches(w, 0), f0 + 1);
	read_one(w, CS, 512);
	assert_int_equal(fetches(w, 1), f1 + 2);
	nbd_backups_stats(w->b, &st);
	assert_true(st.cached_bytes_max <= 2 * CS);
	world_free(w);
}

static void test_dedup(void **state)
{
	(void)state;
	struct world *w = world_new(4 * CS);
	gate(w, true);
	struct rd *x = calloc(4, sizeof(*x));
	read_start(w, &x[0], CS, 512);
	read_start(w, &x[1], CS + 1024, 2048);
	read_start(w, &x[2], 0, 2 * CS); /* 0 and 1 */
	read_start(w, &x[3], CS, 3 * CS); /* 1, the hole, 3 */
	for (int i = 0; i < 20; i++)
		io_loop_run_once(w->loop, 1000 * 1000);
	for (int i = 0; i < 4; i++)
		assert_false(x[i].done);
	gate(w, false);
	for (int i = 0; i < 4; i++) {
		run_until(w, &x[i].done);
		read_check(&x[i]);
	}
	assert_int_equal(fetches(w, 1), 1);
	assert_int_equal(fetches(w, 0), 1);
	assert_int_equal(fetches(w, 3), 1);
	struct nbd_backups_stats st;
	nbd_backups_stats(w->b, &st);
	assert_int_equal(st.joined, 3);
	free(x);
	world_free(w);
}

/* A cache of one chunk, its chunk being fetched: a read of another waits
 * (no eviction of a pinned chunk, no second buffer) and goes on after. */
static void test_pinning(void **state)
{
	(void)state;
	struct world *w = world_new(CS);
	gate(w, true);
	struct rd *x = calloc(3, sizeof(*x));
	read_start(w, &x[0], 0, 512);
	read_start(w, &x[1], 3 * CS, 512);
	read_start(w, &x[2], 0, SIZE); /* the whole backup, one chunk at a time */
	for (int i = 0; i < 20; i++)
		io_loop_run_once(w->loop, 1000 * 1000);
	struct nbd_backups_stats st;
	nbd_backups_stats(w->b, &st);
	assert_int_equal(st.misses, 1);
	assert_int_equal(st.cached_bytes, CS);
	gate(w, false);
	for (int i = 0; i < 3; i++) {
		run_until(w, &x[i].done);
		read_check(&x[i]);
	}
	nbd_backups_stats(w->b, &st);
	assert_int_equal(st.cached_bytes_max, CS);
	free(x);
	world_free(w);
}

static void test_fetch_fails(void **state)
{
	(void)state;
	struct world *w = world_new(4 * CS);
	atomic_store(&w->f.fail_once, 3 + 1);
	struct rd *x = calloc(2, sizeof(*x));
	gate(w, true);
	read_start(w, &x[0], 3 * CS, 1024);
	read_start(w, &x[1], 0, 4 * CS);
	gate(w, false);
	run_until(w, &x[0].done);
	run_until(w, &x[1].done);
	assert_int_equal(x[0].rc, -EIO);
	assert_int_equal(x[1].rc, -EIO);
	assert_non_null(strstr(x[0].why, "chunk 3 (volume bytes 12288-)"));
	struct nbd_backups_stats st;
	nbd_backups_stats(w->b, &st);
	assert_int_equal(st.fetch_errors, 1);
	/* Not cached: the next read fetches it again, and it is right. */
	read_one(w, 3 * CS, 1024);
	assert_int_equal(fetches(w, 3), 2);
	free(x);
	world_free(w);
}

static void test_open(void **state)
{
	(void)state;
	struct world *w = world_new(CS);
	struct opened o[3] = { 0 };
	nbd_backup_open(w->b, "b1", open_done, &o[0]); /* open already: no fetch */
	nbd_backup_open(w->b, "nope", open_done, &o[1]);
	nbd_backup_open(w->b, "nope", open_done, &o[2]); /* joins the first */
	for (int i = 0; i < 3; i++)
		run_until(w, &o[i].done);
	assert_int_equal(o[0].rc, 0);
	assert_ptr_equal(o[0].bk, w->bk);
	assert_int_equal(o[1].rc, -ENOENT);
	assert_int_equal(o[2].rc, -ENOENT);
	assert_string_equal(o[1].why, "no backup nope");
	assert_int_equal(atomic_load(&w->f.opens), 2); /* b1 at the start, nope once */
	nbd_backup_put(o[0].bk);
	assert_int_equal(atomic_load(&w->f.closes), 0); /* still held */
	world_free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_and_lru), cmocka_unit_test(test_dedup),
		cmocka_unit_test(test_pinning),	     cmocka_unit_test(test_fetch_fails),
		cmocka_unit_test(test_open),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
