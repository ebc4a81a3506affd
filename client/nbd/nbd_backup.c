/* Backups served in place (see nbd_backup.h): the chunk cache, the fetch
 * threads and the backups open now.
 *
 * A cached chunk (struct entry) is FETCHING, then READY:
 *
 *   absent --read misses it (read_advance)--> FETCHING --fetch ok
 *   (entry_fetched)--> READY --evicted (entry_make_room) or its backup
 *   closed (backup_drop_entries)--> absent
 *   FETCHING --fetch failed (entry_fetched)--> absent (never cached)
 *
 * Invariants (checked by nbd_backups_check):
 * (1) entries (FETCHING and READY) never hold more than cache_bytes: at
 *     most max_entries of chunk_size bytes each;
 * (2) a READY entry is on the LRU list and has no waiters; a FETCHING one
 *     is not on it, has at least one waiter, and is owned by one task on
 *     the queue or a thread (it is pinned: never evicted);
 * (3) at most one entry per (backup, chunk): a second miss of a chunk being
 *     fetched waits on the same entry;
 * (4) a read waits on exactly `waiting` entries and completes once, after
 *     it looked at every chunk it spans and none is left;
 * (5) a backup is freed only with no holder and no fetch of it in flight.
 *
 * Reads that need a new entry while every entry is FETCHING wait on the
 * stalled list, in order, and go on when an entry is freed: fetches end,
 * so they always do. Everything but fetch_thread runs on the loop's
 * thread; the queue is the only state the threads share (under lock). */
#include "nbd_backup.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/backup/backup.h"
#include "common/assert.h"
#include "common/log.h"

#define NBD_BACKUP_THREADS_MAX 64

struct nbd_backups;

/* Work for a fetch thread; its result is posted back to the loop. */
struct task {
	struct task *next;
	void (*run)(struct nbd_backups *b, struct task *t, void **conn);
	struct io_post post;
};

enum entry_state { ENTRY_FETCHING, ENTRY_READY };

struct entry {
	struct entry *hash_next;
	struct nbd_backup *bk;
	uint64_t index;
	enum entry_state state;
	struct list_node lru;	  /* READY: the set's LRU list, most recent first */
	struct list_node waiters; /* FETCHING: struct nbd_backup_waiter */
	uint8_t *data;
	uint32_t len;
	int rc;
	char why[256];
	struct task task;
};

struct nbd_backup_waiter {
	struct list_node node; /* entry.waiters */
	struct nbd_backup_read *rd;
	uint64_t index;
};

/* Someone waiting for nbd_backup_open's answer. */
struct opener {
	struct list_node node; /* nbd_backup.openers */
	nbd_backup_open_fn done;
	void *arg;
	struct nbd_backup *bk; /* set when answered from an open backup */
	struct io_post post;
};

struct nbd_backup {
	struct list_node node; /* the set's backups */
	struct nbd_backups *b;
	char id[NBD_BACKUP_ID_MAX];
	bool open;		 /* SRC and SIZE are valid */
	void *src;
	uint64_t size;
	unsigned holds, fetching;
	struct list_node openers; /* while opening */
	int rc;
	char why[256];
	struct task task;
};

struct nbd_backups {
	struct io_loop *loop;
	const struct nbd_backup_ops *ops;
	void *ctx;
	uint32_t chunk_size;
	/* shared with the threads, under LOCK */
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct task *queue_head, *queue_tail;
	bool stopping;
	pthread_t threads[NBD_BACKUP_THREADS_MAX];
	unsigned n_threads;
	/* the loop's thread only */
	struct entry **buckets;
	size_t n_buckets, n_entries, max_entries;
	struct list_node lru, stalled, backups;
	struct nbd_backups_stats stats;
};

/* --- the fetch threads ------------------------------------------------------------ */

static void *fetch_thread(void *arg)
{
	struct nbd_backups *b = arg;
	void *conn = NULL;
	for (;;) {
		pthread_mutex_lock(&b->lock);
		while (!b->queue_head && !b->stopping)
			pthread_cond_wait(&b->wake, &b->lock);
		struct task *t = b->queue_head;
		if (t && !(b->queue_head = t->next))
			b->queue_tail = NULL;
		pthread_mutex_unlock(&b->lock);
		if (!t)
			break;
		t->run(b, t, &conn);
		io_loop_post(b->loop, &t->post);
	}
	if (conn)
		b->ops->disconnect(b->ctx, conn);
	return NULL;
}

static void task_queue(struct nbd_backups *b, struct task *t)
{
	t->next = NULL;
	pthread_mutex_lock(&b->lock);
	if (b->queue_tail)
		b->queue_tail->next = t;
	else
		b->queue_head = t;
	b->queue_tail = t;
	pthread_cond_signal(&b->wake);
	pthread_mutex_unlock(&b->lock);
}

/* On a fetch thread: the chunk into its entry. */
static void entry_fetch_run(struct nbd_backups *b, struct task *t, void **conn)
{
	struct entry *e = BASALT_CONTAINER_OF(t, struct entry, task);
	e->rc = *conn ? 0 : b->ops->connect(b->ctx, conn, e->why, sizeof(e->why));
	if (!e->rc)
		e->rc = b->ops->chunk(b->ctx, *conn, e->bk->src, e->index, e->data, &e->len, e->why,
				      sizeof(e->why));
}

/* On a fetch thread: opens the backup. */
static void backup_open_run(struct nbd_backups *b, struct task *t, void **conn)
{
	(void)conn;
	struct nbd_backup *bk = BASALT_CONTAINER_OF(t, struct nbd_backup, task);
	static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER; /* ops->open: one at a time */
	pthread_mutex_lock(&open_lock);
	bk->rc = b->ops->open(b->ctx, bk->id, &bk->src, &bk->size, bk->why, sizeof(bk->why));
	pthread_mutex_unlock(&open_lock);
}

/* --- the cache ---------------------------------------------------------------------- */

static size_t entry_bucket(const struct nbd_backups *b, const struct nbd_backup *bk,
			   uint64_t index)
{
	uint64_t h = ((uint64_t)(uintptr_t)bk >> 4) * 0x9E3779B97F4A7C15ull ^ index;
	h *= 0xff51afd7ed558ccdull;
	return (size_t)(h >> 32) & (b->n_buckets - 1);
}

static struct entry *entry_find(struct nbd_backups *b, struct nbd_backup *bk, uint64_t index)
{
	struct entry *e = b->buckets[entry_bucket(b, bk, index)];
	while (e && (e->bk != bk || e->index != index))
		e = e->hash_next;
	return e;
}

/* Unlinks E from the table (and the LRU list) and frees it. */
static void entry_free(struct nbd_backups *b, struct entry *e)
{
	struct entry **p = &b->buckets[entry_bucket(b, e->bk, e->index)];
	while (*p != e)
		p = &(*p)->hash_next;
	*p = e->hash_next;
	if (list_linked(&e->lru))
		list_del(&e->lru);
	b->n_entries--;
	b->stats.cached_bytes -= b->chunk_size;
	free(e->data);
	free(e);
}

/* Room for one more entry: evicts the least recently used READY one
 * when full. false when every entry is FETCHING (pinned). */
static bool entry_make_room(struct nbd_backups *b)
{
	if (b->n_entries < b->max_entries)
		return true;
	if (list_empty(&b->lru))
		return false;
	struct entry *e = list_entry(b->lru.prev, struct entry, lru);
	b->stats.evictions++;
	entry_free(b, e);
	return true;
}

static void entry_fetched(struct io_post *post);

/* A new FETCHING entry for chunk INDEX of BK, its fetch queued: NULL when
 * the cache is full of fetches (-EAGAIN) or out of memory (-ENOMEM). */
static struct entry *entry_start(struct nbd_backups *b, struct nbd_backup *bk, uint64_t index,
				 int *rc /* out */)
{
	*rc = -EAGAIN;
	if (!entry_make_room(b))
		return NULL;
	*rc = -ENOMEM;
	struct entry *e = calloc(1, sizeof(*e));
	if (!e || !(e->data = malloc(b->chunk_size))) {
		free(e);
		return NULL;
	}
	e->bk = bk;
	e->index = index;
	e->state = ENTRY_FETCHING;
	list_init(&e->lru);
	list_init(&e->waiters);
	size_t h = entry_bucket(b, bk, index);
	e->hash_next = b->buckets[h];
	b->buckets[h] = e;
	b->n_entries++;
	b->stats.cached_bytes += b->chunk_size;
	if (b->stats.cached_bytes > b->stats.cached_bytes_max)
		b->stats.cached_bytes_max = b->stats.cached_bytes;
	bk->fetching++;
	b->stats.misses++;
	e->task.run = entry_fetch_run;
	e->task.post = (struct io_post){ .fn = entry_fetched, .ctx = e };
	task_queue(b, &e->task);
	return e;
}

/* --- reads ------------------------------------------------------------------------- */

static void read_completed(struct io_post *post)
{
	struct nbd_backup_read *rd = post->ctx;
	free(rd->waiters);
	rd->waiters = NULL;
	rd->done(rd, rd->rc, rd->rc ? rd->why : NULL);
}

/* The part of RD that chunk INDEX covers, from DATA (LEN bytes; NULL:
 * zeros). */
static void read_fill(struct nbd_backup_read *rd, uint64_t index, const uint8_t *data,
		      uint32_t len)
{
	uint64_t cs = nbd_backup_chunk_size(rd->bk), base = index * cs;
	uint64_t from = rd->offset > base ? rd->offset : base;
	uint64_t to = rd->offset + rd->len < base + cs ? rd->offset + rd->len : base + cs;
	uint8_t *dst = (uint8_t *)rd->buf + (from - rd->offset);
	uint64_t have = data && base + len > from ? base + len - from : 0;
	if (have > to - from)
		have = to - from;
	if (have)
		memcpy(dst, data + (from - base), have);
	memset(dst + have, 0, to - from - have);
}

static uint64_t read_last(const struct nbd_backup_read *rd)
{
	return (rd->offset + rd->len - 1) / nbd_backup_chunk_size(rd->bk);
}

/* Looks at RD's chunks from rd->next on: copies those cached, zeros the
 * holes, waits on those being fetched and starts fetching the rest —
 * or, when the cache has no room, stalls RD until it has. */
static void read_advance(struct nbd_backup_read *rd)
{
	struct nbd_backup *bk = rd->bk;
	struct nbd_backups *b = bk->b;
	uint64_t first = rd->offset / b->chunk_size, last = read_last(rd);
	while (rd->next <= last) {
		uint64_t i = rd->next;
		bool hole = !b->ops->has(bk->src, i);
		struct entry *e = hole ? NULL : entry_find(b, bk, i);
		if (hole || (e && e->state == ENTRY_READY)) {
			read_fill(rd, i, e ? e->data : NULL, e ? e->len : 0);
			if (e) {
				b->stats.hits++;
				list_del(&e->lru);
				list_add_head(&b->lru, &e->lru);
			}
			rd->next++;
			continue;
		}
		int rc = 0;
		if (e)
			b->stats.joined++;
		else if (!(e = entry_start(b, bk, i, &rc)) && rc == -EAGAIN) {
			list_add_tail(&b->stalled, &rd->stalled);
			return;
		}
		if (!e) {
			rd->rc = rc;
			snprintf(rd->why, sizeof(rd->why), "out of memory for chunk %" PRIu64, i);
			rd->next = last + 1;
			break;
		}
		struct nbd_backup_waiter *w = &rd->waiters[i - first];
		w->rd = rd;
		w->index = i;
		list_add_tail(&e->waiters, &w->node);
		rd->waiting++;
		rd->next++;
	}
	if (!rd->waiting)
		io_loop_post(b->loop, &rd->post);
}

/* Stalled reads go on, in order, while the cache has room. */
static void reads_retry(struct nbd_backups *b)
{
	while (!list_empty(&b->stalled)) {
		struct nbd_backup_read *rd =
			list_entry(list_first(&b->stalled), struct nbd_backup_read, stalled);
		list_del(&rd->stalled);
		read_advance(rd);
		if (list_linked(&rd->stalled)) { /* still no room: keep its place */
			list_del(&rd->stalled);
			list_add_head(&b->stalled, &rd->stalled);
			return;
		}
	}
}

void nbd_backup_read(struct nbd_backup *bk, struct nbd_backup_read *rd)
{
	BASALT_ASSERT(bk->open && bk->holds && rd->len && rd->offset + rd->len <= bk->size);
	rd->bk = bk;
	rd->next = rd->offset / bk->b->chunk_size;
	rd->waiting = 0;
	rd->rc = 0;
	rd->why[0] = '\0';
	list_init(&rd->stalled);
	rd->post = (struct io_post){ .fn = read_completed, .ctx = rd };
	rd->waiters = calloc(read_last(rd) - rd->next + 1, sizeof(*rd->waiters));
	if (!rd->waiters) {
		rd->rc = -ENOMEM;
		snprintf(rd->why, sizeof(rd->why), "out of memory");
		io_loop_post(bk->b->loop, &rd->post);
		return;
	}
	read_advance(rd);
}

static void backup_maybe_free(struct nbd_backup *bk);

/* Back on the loop's thread: a fetch ended. Its waiters get their part
 * (or the error: a failed chunk is not kept, the next read asks again). */
static void entry_fetched(struct io_post *post)
{
	struct entry *e = post->ctx;
	struct nbd_backup *bk = e->bk;
	struct nbd_backups *b = bk->b;
	bk->fetching--;
	b->stats.fetches++;
	if (e->rc) {
		b->stats.fetch_errors++;
		LOG_WARN("nbd: backup %s: %s", bk->id, e->why);
	}
	while (!list_empty(&e->waiters)) {
		struct nbd_backup_waiter *w =
			list_entry(list_first(&e->waiters), struct nbd_backup_waiter, node);
		list_del(&w->node);
		struct nbd_backup_read *rd = w->rd;
		if (e->rc && !rd->rc) {
			rd->rc = -EIO;
			snprintf(rd->why, sizeof(rd->why), "%s", e->why);
		} else if (!e->rc) {
			read_fill(rd, e->index, e->data, e->len);
		}
		if (!--rd->waiting && rd->next > read_last(rd))
			io_loop_post(b->loop, &rd->post);
	}
	if (e->rc || !bk->holds) {
		entry_free(b, e);
	} else {
		e->state = ENTRY_READY;
		list_add_head(&b->lru, &e->lru);
	}
	backup_maybe_free(bk);
	reads_retry(b);
}

/* --- backups ------------------------------------------------------------------------ */

static void backup_maybe_free(struct nbd_backup *bk)
{
	if (bk->holds || bk->fetching || !list_empty(&bk->openers))
		return;
	list_del(&bk->node);
	const struct nbd_backups_stats *st = &bk->b->stats;
	LOG_INFO("nbd: backup %s closed; the chunk cache so far: %" PRIu64 " fetches (%" PRIu64
		 " failed), %" PRIu64 " hits, %" PRIu64 " joined, %" PRIu64
		 " evictions, at most %" PRIu64 " bytes held", bk->id, st->fetches,
		 st->fetch_errors, st->hits, st->joined, st->evictions, st->cached_bytes_max);
	if (bk->open)
		bk->b->ops->close(bk->b->ctx, bk->src);
	free(bk);
}

static void opener_answer(struct io_post *post)
{
	struct opener *o = post->ctx;
	o->done(o->arg, 0, o->bk, NULL);
	free(o);
}

/* Back on the loop's thread: the backup opened, or not. */
static void backup_opened(struct io_post *post)
{
	struct nbd_backup *bk = post->ctx;
	bk->open = !bk->rc;
	if (bk->rc)
		LOG_INFO("nbd: backup %s cannot be served: %s", bk->id, bk->why);
	else
		LOG_INFO("nbd: backup %s open: %" PRIu64 " bytes", bk->id, bk->size);
	/* Everyone answered holds it first, so none of the callbacks frees it. */
	struct list_node answered;
	list_init(&answered);
	while (!list_empty(&bk->openers)) {
		struct list_node *n = list_first(&bk->openers);
		list_del(n);
		list_add_tail(&answered, n);
		bk->holds += !bk->rc;
	}
	if (bk->rc)
		list_del(&bk->node); /* a later open asks again */
	while (!list_empty(&answered)) {
		struct opener *o = list_entry(list_first(&answered), struct opener, node);
		list_del(&o->node);
		o->done(o->arg, bk->rc, bk->rc ? NULL : bk, bk->rc ? bk->why : NULL);
		free(o);
	}
	if (bk->rc)
		free(bk);
}

void nbd_backup_open(struct nbd_backups *b, const char *id, nbd_backup_open_fn done, void *arg)
{
	struct opener *o = calloc(1, sizeof(*o));
	struct nbd_backup *bk = NULL;
	struct list_node *pos;
	list_for_each(pos, &b->backups) {
		struct nbd_backup *x = list_entry(pos, struct nbd_backup, node);
		if (!strcmp(x->id, id))
			bk = x; /* open, or being opened */
	}
	if (!bk && o && strlen(id) < sizeof(bk->id) && (bk = calloc(1, sizeof(*bk)))) {
		bk->b = b;
		snprintf(bk->id, sizeof(bk->id), "%s", id);
		list_init(&bk->openers);
		list_add_tail(&b->backups, &bk->node);
		bk->task.run = backup_open_run;
		bk->task.post = (struct io_post){ .fn = backup_opened, .ctx = bk };
		task_queue(b, &bk->task);
	}
	if (!o || !bk) {
		free(o); /* a name too long for any backup id is no backup */
		done(arg, o ? -ENOENT : -ENOMEM, NULL, o ? "no such backup" : "out of memory");
		return;
	}
	o->done = done;
	o->arg = arg;
	if (bk->open) {
		bk->holds++;
		o->bk = bk;
		o->post = (struct io_post){ .fn = opener_answer, .ctx = o };
		io_loop_post(b->loop, &o->post);
		return;
	}
	list_add_tail(&bk->openers, &o->node);
}

/* Drops BK's READY chunks: nobody reads them any more. */
static void backup_drop_entries(struct nbd_backup *bk)
{
	struct nbd_backups *b = bk->b;
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &b->lru) {
		struct entry *e = list_entry(pos, struct entry, lru);
		if (e->bk == bk)
			entry_free(b, e);
	}
}

void nbd_backup_put(struct nbd_backup *bk)
{
	BASALT_ASSERT(bk->holds > 0);
	if (--bk->holds)
		return;
	struct nbd_backups *b = bk->b;
	backup_drop_entries(bk);
	backup_maybe_free(bk);
	reads_retry(b);
}

uint64_t nbd_backup_size(const struct nbd_backup *bk)
{
	return bk->size;
}

uint32_t nbd_backup_chunk_size(const struct nbd_backup *bk)
{
	return bk->b->chunk_size;
}

const char *nbd_backup_id(const struct nbd_backup *bk)
{
	return bk->id;
}

bool nbd_backup_has(const struct nbd_backup *bk, uint64_t index)
{
	return bk->b->ops->has(bk->src, index);
}

/* --- the set ------------------------------------------------------------------------ */

void nbd_backups_check(const struct nbd_backups *b)
{
	BASALT_ASSERT(b->n_entries <= b->max_entries);			   /* (1) */
	BASALT_ASSERT(b->stats.cached_bytes == b->n_entries * (uint64_t)b->chunk_size);
	size_t n = 0;
	for (size_t i = 0; i < b->n_buckets; i++) {
		for (const struct entry *e = b->buckets[i]; e; e = e->hash_next, n++) {
			bool ready = e->state == ENTRY_READY;
			BASALT_ASSERT(ready == list_linked(&e->lru));	   /* (2) */
			BASALT_ASSERT(ready == list_empty(&e->waiters));   /* (2) */
			for (const struct entry *f = e->hash_next; f; f = f->hash_next)
				BASALT_ASSERT(f->bk != e->bk || f->index != e->index); /* (3) */
		}
	}
	BASALT_ASSERT(n == b->n_entries);
}

int nbd_backups_create(struct io_loop *loop, const struct nbd_backup_ops *ops, void *ctx,
		       const struct nbd_backup_params *p, struct nbd_backups **out)
{
	struct nbd_backups *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->loop = loop;
	b->ops = ops;
	b->ctx = ctx;
	b->chunk_size = p->chunk_size ? p->chunk_size : BACKUP_CHUNK_SIZE;
	uint64_t bytes = p->cache_bytes ? p->cache_bytes : NBD_BACKUP_CACHE_DEFAULT;
	b->max_entries = (size_t)(bytes / b->chunk_size);
	unsigned threads = p->threads ? p->threads : 4;
	if (!b->max_entries || threads > NBD_BACKUP_THREADS_MAX) {
		free(b);
		return -EINVAL;
	}
	for (b->n_buckets = 16; b->n_buckets < b->max_entries && b->n_buckets < (1u << 20);)
		b->n_buckets *= 2;
	b->buckets = calloc(b->n_buckets, sizeof(*b->buckets));
	list_init(&b->lru);
	list_init(&b->stalled);
	list_init(&b->backups);
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->wake, NULL);
	int rc = b->buckets ? 0 : -ENOMEM;
	while (!rc && b->n_threads < threads) {
		rc = -pthread_create(&b->threads[b->n_threads], NULL, fetch_thread, b);
		b->n_threads += !rc;
	}
	if (rc) {
		nbd_backups_destroy(b);
		return rc;
	}
	*out = b;
	return 0;
}

void nbd_backups_destroy(struct nbd_backups *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&b->lock);
	b->stopping = true;
	pthread_cond_broadcast(&b->wake);
	pthread_mutex_unlock(&b->lock);
	for (unsigned i = 0; i < b->n_threads; i++)
		pthread_join(b->threads[i], NULL);
	BASALT_ASSERT(list_empty(&b->backups) && list_empty(&b->stalled));
	BASALT_ASSERT(!b->queue_head);
	free(b->buckets);
	pthread_cond_destroy(&b->wake);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

void nbd_backups_stats(const struct nbd_backups *b, struct nbd_backups_stats *out)
{
	*out = b->stats;
}
