/* io_checker: writes, overwrites, deletes and reads back objects through
 * libbasalt while something else breaks the cluster, and checks that
 * nothing acknowledged is ever lost or comes back stale.
 *
 * Each object is written in 4 KiB chunks; every chunk carries the tag of
 * the write that put it there. One operation per object at a time, each
 * retried by the client until it is answered, so when an object is read
 * the model knows exactly what every chunk must hold: the tag of its
 * last acknowledged write, zeros where nothing was written since the
 * object was (re)created, or no object at all after a delete. After
 * SECONDS it stops issuing, waits for what is in flight and checks every
 * object once more.
 *
 *   io_checker -c CONF --keyring PATH --pool NAME [--objects N] [--qd N]
 *              [--seconds S] [--drain S] [--inode N]
 * Exits 0 when every read matched, 1 on any mismatch or lost write. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/libbasalt.h"
#include "common/config.h"
#include "common/log.h"

#define CHUNK 4096u

struct obj_model {
	bool exists;
	bool busy;
	uint64_t *tags; /* per chunk: the acknowledged write's tag, 0 = zeros */
};

struct slot {
	struct bs_op op;
	struct checker *ck;
	uint32_t obj;
	uint64_t tag; /* WRITE */
	uint32_t first, n;
	uint8_t *buf;
	bool used;
};

struct checker {
	struct io_loop *loop;
	struct bs_client *c;
	uint32_t pool, objects, chunks, qd;
	uint64_t inode;
	struct obj_model *m;
	struct slot *slots;
	unsigned inflight;
	uint64_t next_tag, rng;
	uint64_t writes, deletes, reads, errors, failures;
	bool stopping;
	uint64_t started_ns, stop_ns, drain_ns;
	struct io_timer timer;
};

static uint64_t rnd(struct checker *k)
{
	k->rng ^= k->rng << 13;
	k->rng ^= k->rng >> 7;
	k->rng ^= k->rng << 17;
	return k->rng;
}

static void fill(uint8_t *buf, uint64_t tag, uint32_t chunk)
{
	uint64_t x = tag * 0x9E3779B97F4A7C15ULL + chunk + 1;
	memcpy(buf, &tag, 8);
	memcpy(buf + 8, &chunk, 4);
	for (uint32_t i = 12; i + 8 <= CHUNK; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(buf + i, &x, 8);
	}
}

static bool chunk_ok(const uint8_t *buf, uint64_t tag, uint32_t chunk)
{
	static uint8_t want[CHUNK];
	if (!tag) {
		static const uint8_t zero[CHUNK];
		return memcmp(buf, zero, CHUNK) == 0;
	}
	fill(want, tag, chunk);
	return memcmp(buf, want, CHUNK) == 0;
}

static void fail_obj(struct checker *k, uint32_t obj, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fail_obj(struct checker *k, uint32_t obj, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "io_checker: MISMATCH object %" PRIx64 ":%x: ", k->inode, obj);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	k->failures++;
}

static void issue(struct checker *k);

static void op_done(struct bs_op *op, int rc)
{
	struct slot *s = op->ctx;
	struct checker *k = s->ck;
	struct obj_model *m = &k->m[s->obj];
	if (rc && rc != -ENOENT) {
		/* The client retries until answered; anything else is an error
		 * the cluster gave us (and the write's fate is unknown). */
		fprintf(stderr, "io_checker: object %x: %s failed: %s\n", s->obj,
			op->type == BS_READ ? "read" : op->type == BS_WRITE ? "write" : "delete",
			strerror(-rc));
		k->errors++;
		if (op->type != BS_READ)
			k->failures++; /* the model no longer knows the object */
	} else if (op->type == BS_WRITE) {
		if (rc)
			k->failures++;
		if (!m->exists)
			memset(m->tags, 0, k->chunks * sizeof(*m->tags));
		m->exists = true;
		for (uint32_t c = s->first; c < s->first + s->n; c++)
			m->tags[c] = s->tag;
		k->writes++;
	} else if (op->type == BS_DELETE) {
		if (rc == -ENOENT && m->exists)
			fail_obj(k, s->obj, "delete found no object, but it was written");
		m->exists = false;
		k->deletes++;
	} else {
		k->reads++;
		if (rc == -ENOENT && m->exists)
			fail_obj(k, s->obj, "read found no object; an acknowledged write is lost");
		else if (rc == 0 && !m->exists)
			fail_obj(k, s->obj, "read found an object that was deleted");
		for (uint32_t c = 0; rc == 0 && m->exists && c < k->chunks; c++)
			if (!chunk_ok(s->buf + c * CHUNK, m->tags[c], c)) {
				uint64_t got;
				memcpy(&got, s->buf + c * CHUNK, 8);
				fail_obj(k, s->obj,
					 "chunk %u holds write %" PRIu64 ", the last acknowledged is %" PRIu64,
					 c, got, m->tags[c]);
				break;
			}
	}
	m->busy = false;
	s->used = false;
	k->inflight--;
	issue(k);
}

static void start(struct checker *k, struct slot *s, uint32_t obj, bool verify)
{
	struct obj_model *m = &k->m[obj];
	memset(&s->op, 0, sizeof(s->op));
	s->obj = obj;
	s->used = true;
	m->busy = true;
	k->inflight++;
	s->op.oid = (struct object_id){ k->pool, k->inode, obj, 0, OBJECT_SHARD_WHOLE };
	s->op.done = op_done;
	s->op.ctx = s;
	uint64_t r = rnd(k) % 100;
	if (verify || r < 30) {
		s->op.type = BS_READ;
		s->op.len = k->chunks * CHUNK;
		s->op.buf = s->buf;
	} else if (r < 36) {
		s->op.type = BS_DELETE;
	} else {
		s->op.type = BS_WRITE;
		s->first = (uint32_t)(rnd(k) % k->chunks);
		s->n = 1 + (uint32_t)(rnd(k) % (k->chunks - s->first));
		if (rnd(k) % 4 == 0)
			s->first = 0, s->n = k->chunks; /* whole objects too */
		s->tag = ++k->next_tag;
		for (uint32_t c = 0; c < s->n; c++)
			fill(s->buf + c * CHUNK, s->tag, s->first + c);
		s->op.offset = s->first * CHUNK;
		s->op.len = s->n * CHUNK;
		s->op.buf = s->buf;
	}
	bs_submit(k->c, &s->op);
}

static void issue(struct checker *k)
{
	if (k->stopping)
		return;
	for (uint32_t i = 0; i < k->qd; i++) {
		struct slot *s = &k->slots[i];
		if (s->used)
			continue;
		for (int tries = 0; tries < 8; tries++) {
			uint32_t obj = (uint32_t)(rnd(k) % k->objects);
			if (!k->m[obj].busy) {
				start(k, s, obj, false);
				break;
			}
		}
	}
}

static void report(struct checker *k, const char *when)
{
	printf("io_checker %s: %" PRIu64 " writes, %" PRIu64 " deletes, %" PRIu64
	       " reads verified, %" PRIu64 " errors, %" PRIu64 " mismatches, %u in flight\n",
	       when, k->writes, k->deletes, k->reads, k->errors, k->failures, k->inflight);
	fflush(stdout);
}

static void on_timer(struct io_timer *t)
{
	struct checker *k = t->ctx;
	uint64_t now = io_now_ns(k->loop);
	if (!k->stopping && now >= k->stop_ns) {
		k->stopping = true;
		report(k, "stopping");
	}
	if (!k->stopping)
		report(k, "running");
	io_timer_arm(k->loop, &k->timer, IO_SEC(5));
}

static volatile sig_atomic_t interrupted;
static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

int main(int argc, char **argv)
{
	const char *conf = NULL, *keyring = NULL, *pool = NULL;
	uint64_t seconds = 30, drain = 120, objects = 64, qd = 8, inode = 0x10;
	static const struct option opts[] = {
		{ "keyring", required_argument, NULL, 'k' }, { "pool", required_argument, NULL, 'p' },
		{ "objects", required_argument, NULL, 'o' }, { "qd", required_argument, NULL, 'q' },
		{ "seconds", required_argument, NULL, 's' }, { "drain", required_argument, NULL, 'd' },
		{ "inode", required_argument, NULL, 'i' },   { NULL, 0, NULL, 0 },
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': conf = optarg; break;
		case 'k': keyring = optarg; break;
		case 'p': pool = optarg; break;
		case 'o': objects = strtoull(optarg, NULL, 0); break;
		case 'q': qd = strtoull(optarg, NULL, 0); break;
		case 's': seconds = strtoull(optarg, NULL, 0); break;
		case 'd': drain = strtoull(optarg, NULL, 0); break;
		case 'i': inode = strtoull(optarg, NULL, 0); break;
		default: return 2;
		}
	}
	if (!conf || !keyring || !pool || !objects || !qd || qd > objects) {
		fprintf(stderr, "usage: io_checker -c CONF --keyring PATH --pool NAME [--objects N] "
				"[--qd N<=objects] [--seconds S] [--drain S] [--inode N]\n");
		return 2;
	}
	log_init("io_checker");
	log_set_level(LOG_LEVEL_ERROR);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	struct cfg *cfg;
	char why[512];
	if (cfg_load(conf, &cfg, why, sizeof(why))) {
		fprintf(stderr, "io_checker: %s\n", why);
		return 2;
	}
	struct checker k = { .objects = (uint32_t)objects, .qd = (uint32_t)qd, .inode = inode,
			     .rng = 0x243F6A8885A308D3ULL };
	if (io_loop_create_uring(NULL, &k.loop))
		return 2;
	struct bs_client_params p = { .keyring = keyring, .attempt_timeout_ms = 2000 };
	if (bs_client_create(k.loop, cfg, &p, &k.c, why, sizeof(why))) {
		fprintf(stderr, "io_checker: %s\n", why);
		return 2;
	}
	const struct map_pool *mp;
	if (bs_client_wait_pool(k.c, pool, 20000, &mp)) {
		fprintf(stderr, "io_checker: no pool '%s'\n", pool);
		return 2;
	}
	k.pool = mp->id;
	k.chunks = mp->block_size / CHUNK;
	k.m = calloc(k.objects, sizeof(*k.m));
	k.slots = calloc(k.qd, sizeof(*k.slots));
	for (uint32_t i = 0; i < k.objects; i++)
		k.m[i].tags = calloc(k.chunks, sizeof(uint64_t));
	for (uint32_t i = 0; i < k.qd; i++) {
		k.slots[i].ck = &k;
		if (posix_memalign((void **)&k.slots[i].buf, 4096, mp->block_size))
			return 2;
	}
	k.started_ns = io_now_ns(k.loop);
	k.stop_ns = k.started_ns + IO_SEC(seconds);
	io_timer_init(&k.timer, on_timer, &k);
	io_timer_arm(k.loop, &k.timer, IO_SEC(5));
	issue(&k);
	while (!k.stopping && !interrupted) {
		io_loop_run_once(k.loop, IO_MS(200));
		if (io_now_ns(k.loop) >= k.stop_ns)
			k.stopping = true;
	}
	k.stopping = true;
	uint64_t drain_end = io_now_ns(k.loop) + IO_SEC(drain);
	while (k.inflight && io_now_ns(k.loop) < drain_end)
		io_loop_run_once(k.loop, IO_MS(200));
	if (k.inflight) {
		fprintf(stderr, "io_checker: %u operations still unanswered after %" PRIu64 " s\n",
			k.inflight, drain);
		report(&k, "stuck");
		return 1;
	}
	/* The final check: every object, one at a time. */
	for (uint32_t obj = 0; obj < k.objects; obj++) {
		struct slot *s = &k.slots[0];
		start(&k, s, obj, true);
		while (s->used && io_now_ns(k.loop) < drain_end + IO_SEC(drain))
			io_loop_run_once(k.loop, IO_MS(200));
		if (s->used) {
			fprintf(stderr, "io_checker: the final read of object %x is unanswered\n", obj);
			return 1;
		}
	}
	report(&k, "done");
	bs_client_destroy(k.c);
	io_loop_destroy(k.loop);
	cfg_free(cfg);
	return k.failures || k.errors ? 1 : 0;
}
