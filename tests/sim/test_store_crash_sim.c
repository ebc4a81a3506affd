/* Deterministic crash simulation of the store: a random workload of small
 * writes, whole-block writes and deletes at queue depth up to 16 runs on a
 * simulated disk; at a random moment the "machine" dies (the loop is torn
 * down mid-flight, and with power loss a random part of every unsynced
 * write is lost, sector by sector). The store is reopened and every object
 * must read back as its state after some prefix of its operations that
 * includes every acknowledged one: nothing acknowledged lost, no write
 * half-applied, no deleted data back. Some whole-block writes and deletes
 * first give the object's block to a clone without copying (a snapshot's
 * clone, store_req.clone_snap): after the crash the clone exists exactly
 * when the write or delete is in, holding what the object held before it.
 * Odd seeds run with no CRC cache and seeds 2 mod 4 with a cache of a
 * few blocks, so reads and flushes of idle objects fetch their blocks'
 * metadata entries (store_crc.c) while flushes rewrite them.
 * Every seed replays exactly.
 *
 *   STORE_SIM_SEEDS=N   seeds per test (default 40; scripts/soak.sh runs more)
 *   STORE_SIM_SEED=S    run only seed S (to replay a failure) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/io/sim.h"
#include "common/log.h"
#include "../unit/osd/store_model.h"
#include "osd/store_int.h"

#define BS (64u << 10)
#define CHUNKS (BS / 4096)
#define NOBJ 24	      /* objects of the default runs: the disk never fills */
#define NOBJ_FULL 256 /* on a disk of FULL_SIZE: about 120 blocks */
#define FULL_SIZE (12u << 20)
#define QD 16
#define HOST "10.0.0.1"
#define DEV "/dev/simdisk"

struct inflight {
	struct store_req req;
	struct sim_run *run;
	unsigned obj, op;
	uint8_t *buf;
	bool used;
};

/* A write or delete that made a clone of its object (clone_snap). */
#define TAKEOVERS_MAX 64
struct takeover {
	unsigned obj;
	uint32_t snap;
	bool pre_exists; /* the object before the operation */
	uint64_t pre_tags[MODEL_MAX_CHUNKS];
};

struct sim_run {
	uint64_t seed;
	uint64_t crc_loads; /* entries read for CRCs not in RAM */
	struct io_sim_world *w;
	struct io_loop *loop;
	struct store *s;
	unsigned nobj;
	bool fill; /* a small disk that fills up: ENOSPC is an answer */
	struct model_obj *objs;
	struct inflight slots[QD];
	unsigned inflight;
	uint64_t next_tag;
	uint64_t acked, failed, full;
	enum store_sync_mode sync;
	bool power_loss;
	char failure[1024];
	struct takeover takeovers[TAKEOVERS_MAX]; /* of this round */
	unsigned n_takeovers;
	uint32_t next_snap; /* clones made so far */
};

static uint64_t rnd(struct sim_run *r)
{
	return io_sim_random(r->w);
}

static struct object_id oid_of(unsigned i)
{
	return (struct object_id){ 3, 1000, i, 0, OBJECT_SHARD_WHOLE };
}

static void op_done(struct store_req *req, int res)
{
	struct inflight *in = (struct inflight *)req;
	struct sim_run *r = in->run;
	struct model_op *op = &r->objs[in->obj].ops[in->op];
	if (res == 0) {
		op->state = MODEL_ACKED;
		r->acked++;
	} else if (res == -ENOENT || res == -ENOSPC) {
		op->state = MODEL_FAILED;
		r->failed++;
		r->full += res == -ENOSPC;
	} else if (!r->failure[0]) {
		snprintf(r->failure, sizeof(r->failure),
			 "seed %" PRIu64 ": unexpected result %d for object %u op %u",
			 r->seed, res, in->obj, in->op);
	}
	free(in->buf);
	in->buf = NULL;
	in->used = false;
	r->inflight--;
}

/* Now and then a whole-block write or delete of object O (its op IDX)
 * first makes a clone of it without copying, when the store can. */
static void maybe_takeover(struct sim_run *r, struct store_req *req, unsigned o, unsigned idx,
			   bool whole)
{
	if (!whole || r->fill || r->n_takeovers == TAKEOVERS_MAX || rnd(r) % 3)
		return;
	uint32_t snap = r->next_snap + 1;
	if (!store_clone_movable(r->s, &req->oid, snap))
		return;
	struct takeover *t = &r->takeovers[r->n_takeovers++];
	t->obj = o;
	t->snap = r->next_snap = snap;
	/* Nothing of O is pending (movable): its state is the model's. */
	model_state_after(&r->objs[o], idx, CHUNKS, &t->pre_exists, t->pre_tags);
	req->clone_snap = snap;
}

/* After a crash, each clone of this round exists iff its object's
 * operation is in (the object no longer reads as before it), holding
 * what the object held before. */
static void verify_takeovers(struct sim_run *r)
{
	uint8_t *buf = aligned_buf(BS);
	for (unsigned k = 0; k < r->n_takeovers && !r->failure[0]; k++) {
		const struct takeover *t = &r->takeovers[k];
		const struct model_obj *m = &r->objs[t->obj];
		bool in = m->exists != t->pre_exists ||
			  (m->exists && memcmp(m->tags, t->pre_tags, sizeof(m->tags)));
		struct object_id c = oid_of(t->obj);
		c.snap = t->snap;
		int rc = store_sync_op(r->s, r->loop, r->w, STORE_OP_READ, c, 0, BS, buf, NULL);
		bool ok = rc == (in ? 0 : -ENOENT);
		for (uint32_t ch = 0; ok && rc == 0 && ch < CHUNKS; ch++) {
			uint8_t want[4096] __attribute__((aligned(64))) = { 0 };
			if (t->pre_tags[ch])
				pattern_fill(want, 4096, t->pre_tags[ch], ch);
			ok = memcmp(want, buf + ch * 4096, 4096) == 0;
		}
		if (!ok)
			snprintf(r->failure, sizeof(r->failure),
				 "seed %" PRIu64 ": clone %u of object %u: read %d, its operation %s",
				 r->seed, t->snap, t->obj, rc, in ? "is in" : "is not in");
	}
	r->n_takeovers = 0;
	free(buf);
}

static void submit_one(struct sim_run *r)
{
	struct inflight *in = NULL;
	for (unsigned i = 0; i < QD; i++)
		if (!r->slots[i].used)
			in = &r->slots[i];
	unsigned o = (unsigned)(rnd(r) % r->nobj);
	if (!in)
		return;
	uint64_t kind = rnd(r) % 100;
	bool del = kind < (r->fill ? 20 : 12);
	uint32_t first = 0, n = CHUNKS;
	if (!del && kind >= 35) {
		first = (uint32_t)(rnd(r) % CHUNKS);
		n = 1 + (uint32_t)(rnd(r) % 4);
		if (first + n > CHUNKS)
			n = CHUNKS - first;
	}
	uint64_t tag = del ? 0 : ++r->next_tag;
	int idx = model_add(&r->objs[o], del, first, n, tag);
	if (idx < 0)
		return;
	memset(&in->req, 0, sizeof(in->req));
	in->req.op = del ? STORE_OP_DELETE : STORE_OP_WRITE;
	if (!del) {
		in->buf = aligned_buf(n * 4096);
		pattern_fill(in->buf, n * 4096, tag, first);
		in->req.offset = first * 4096;
		in->req.len = n * 4096;
		in->req.buf = in->buf;
	}
	in->req.oid = oid_of(o);
	maybe_takeover(r, &in->req, o, (unsigned)idx, del || n == CHUNKS);
	in->req.done = op_done;
	in->run = r;
	in->obj = o;
	in->op = (unsigned)idx;
	in->used = true;
	r->inflight++;
	store_submit(r->s, &in->req);
}

/* Reads object I back and matches it against the allowed prefixes. */
static void verify_object(struct sim_run *r, unsigned i)
{
	uint8_t *buf = aligned_buf(BS);
	char why[512];
	int rc = store_sync_op(r->s, r->loop, r->w, STORE_OP_READ, oid_of(i), 0,
			       BS, buf, NULL);
	if (rc != 0 && rc != -ENOENT)
		snprintf(r->failure, sizeof(r->failure),
			 "seed %" PRIu64 ": object %u reads back %d", r->seed, i, rc);
	else if (model_check(&r->objs[i], CHUNKS, rc == 0 ? buf : NULL, why, sizeof(why)))
		snprintf(r->failure, sizeof(r->failure), "seed %" PRIu64 ": object %u: %s",
			 r->seed, i, why);
	free(buf);
}

/* The CRC cache of SEED's runs (see the top). */
static uint64_t seed_crc_cache(uint64_t seed)
{
	return seed % 2 ? 0 : seed % 4 == 2 ? 3 * (4 * CHUNKS + 13) : STORE_CRC_CACHE_DEFAULT;
}

static void open_store(struct sim_run *r)
{
	struct store_params p;
	char why[256];
	store_params_default(&p);
	p.sync = r->sync;
	p.crc_cache_bytes = seed_crc_cache(r->seed);
	assert_int_equal(io_loop_create_sim(r->w, HOST, &r->loop), 0);
	int rc = store_open(r->loop, DEV, &p, &r->s, why, sizeof(why));
	if (rc)
		fail_msg("seed %" PRIu64 ": store_open: %s", r->seed, why);
}

/* The store's invariants (store_int.h), checked between steps. */
static void check_store(struct sim_run *r)
{
	store_check(r->s);
}

/* Every operation in flight must finish: a full store answers, it never
 * keeps a write waiting. 10 s of simulated time is far more than any
 * flush needs. */
static void drain(struct sim_run *r)
{
	uint64_t until = io_sim_now_ns(r->w) + IO_SEC(10);
	while (r->inflight && io_sim_now_ns(r->w) < until)
		io_sim_run(r->w, io_sim_now_ns(r->w) + IO_MS(1), NULL, NULL);
	if (r->inflight && !r->failure[0])
		snprintf(r->failure, sizeof(r->failure),
			 "seed %" PRIu64 ": %u operations still waiting after 10 s", r->seed,
			 r->inflight);
}

static void crash(struct sim_run *r)
{
	r->crc_loads += r->s->crcs.loads;
	io_loop_destroy(r->loop);
	store_forget(r->s);
	for (unsigned i = 0; i < QD; i++) {
		free(r->slots[i].buf);
		r->slots[i].buf = NULL;
		r->slots[i].used = false;
	}
	r->inflight = 0;
	if (r->power_loss)
		io_sim_power_fail(r->w, HOST);
}

static void run_seed(uint64_t seed, enum store_sync_mode sync, bool power_loss,
		     unsigned rounds, bool fill)
{
	struct sim_run *r = calloc(1, sizeof(*r));
	r->seed = seed;
	r->sync = sync;
	r->power_loss = power_loss;
	r->fill = fill;
	r->nobj = fill ? NOBJ_FULL : NOBJ;
	r->objs = calloc(r->nobj, sizeof(*r->objs));
	assert_non_null(r->objs);
	assert_int_equal(io_sim_world_create(seed, &r->w), 0);
	io_sim_set_latency(r->w, IO_US(5), IO_US(50));
	assert_int_equal(io_loop_create_sim(r->w, HOST, &r->loop), 0);
	struct store_mkfs_params mp = { .size = fill ? FULL_SIZE : 48u << 20, .block_size = BS,
					.journal_size = 4u << 20 };
	char why[256];
	assert_int_equal(store_mkfs(r->loop, DEV, &mp, why, sizeof(why)), 0);
	io_loop_destroy(r->loop);
	open_store(r);
	for (unsigned round = 0; round < rounds && !r->failure[0]; round++) {
		unsigned ops = 50 + (unsigned)(rnd(r) % 1500);
		for (unsigned i = 0; i < ops && !r->failure[0]; i++) {
			while (r->inflight >= 1 + rnd(r) % QD)
				io_sim_run(r->w, io_sim_now_ns(r->w) + IO_US(20), NULL, NULL);
			submit_one(r);
			if (i % 64 == 0)
				check_store(r);
		}
		/* Let a random part of what is in flight finish (or all of
		 * it, now and then), then die. */
		if (rnd(r) % 4 == 0)
			drain(r);
		else
			io_sim_run(r->w, io_sim_now_ns(r->w) + rnd(r) % IO_US(400), NULL, NULL);
		check_store(r);
		crash(r);
		open_store(r);
		check_store(r);
		for (unsigned i = 0; i < r->nobj && !r->failure[0]; i++)
			verify_object(r, i);
		verify_takeovers(r);
	}
	if (!r->failure[0]) {
		r->crc_loads += r->s->crcs.loads;
		store_close(r->s);
		FILE *null = fopen("/dev/null", "w");
		if (store_fsck(r->loop, DEV, null, false) != 0)
			snprintf(r->failure, sizeof(r->failure),
				 "seed %" PRIu64 ": fsck is not clean", seed);
		fclose(null);
	} else {
		store_forget(r->s);
	}
	io_loop_destroy(r->loop);
	io_sim_world_destroy(r->w);
	if (r->failure[0])
		fail_msg("%s (replay with STORE_SIM_SEED=%" PRIu64 ")", r->failure, seed);
	if (seed % 2 && r->crc_loads == 0)
		fail_msg("seed %" PRIu64 ": no metadata entry was read for CRCs", seed);
	if (fill && r->full == 0)
		fail_msg("seed %" PRIu64 ": the small disk never filled up", seed);
	if (!fill && r->next_snap == 0)
		fail_msg("seed %" PRIu64 ": no clone was made", seed);
	if (getenv("STORE_SIM_VERBOSE"))
		printf("seed %" PRIu64 ": %" PRIu64 " acknowledged, %" PRIu64
		       " refused for space, %u clones made\n", seed, r->acked, r->full, r->next_snap);
	free(r->objs);
	free(r);
}

static unsigned seeds(void)
{
	const char *env = getenv("STORE_SIM_SEEDS");
	return env ? (unsigned)atoi(env) : 40;
}

static void run_many(uint64_t base, enum store_sync_mode sync, bool power_loss, bool fill)
{
	const char *one = getenv("STORE_SIM_SEED");
	if (one) {
		run_seed(strtoull(one, NULL, 10), sync, power_loss, 6, fill);
		return;
	}
	for (unsigned i = 0; i < seeds(); i++)
		run_seed(base + i, sync, power_loss, 6, fill);
}

static void test_power_loss_sync_always(void **state)
{
	(void)state;
	run_many(1, STORE_SYNC_ALWAYS, true, false);
}

/* A disk far too small for its objects: writes of every shape meet a
 * full store, deletes make room, power fails at any moment. Nothing
 * acknowledged is lost, every operation is answered, and the store
 * opens and checkpoints after every crash however full it is. */
static void test_power_loss_full_disk(void **state)
{
	(void)state;
	run_many(300000, STORE_SYNC_ALWAYS, true, true);
}

/* Batch mode may lose its last few milliseconds to a power loss, but a
 * process crash (the kernel and device keep what was written) loses
 * nothing acknowledged. */
static void test_process_crash_sync_batch(void **state)
{
	(void)state;
	run_many(100000, STORE_SYNC_BATCH, false, false);
}

static void test_process_crash_sync_always(void **state)
{
	(void)state;
	run_many(200000, STORE_SYNC_ALWAYS, false, false);
}

struct race_read {
	struct store_req req;
	bool done;
	int res;
};

static void race_read_done(struct store_req *req, int res)
{
	struct race_read *rr = (struct race_read *)req;
	rr->done = true;
	rr->res = res;
}

static bool race_done(void *arg)
{
	return ((struct race_read *)arg)->done;
}

static void checkpoint_flag(void *arg)
{
	*(bool *)arg = true;
}

/* Reads of an object while a flush writes its journaled chunks in place
 * and drops them from memory: whatever the interleaving, a read returns
 * the newest data and never a false checksum error (a read that started
 * while an overlay covered a chunk, and ended after the flush dropped it,
 * used to check that chunk against bytes it never read). */
static void test_reads_race_flush(void **state)
{
	(void)state;
	for (uint64_t seed = 1; seed <= 60; seed++) {
		struct io_sim_world *w;
		struct io_loop *loop;
		struct store *s;
		char why[256];
		assert_int_equal(io_sim_world_create(seed, &w), 0);
		io_sim_set_latency(w, IO_US(5), IO_US(80));
		assert_int_equal(io_loop_create_sim(w, HOST, &loop), 0);
		struct store_mkfs_params mp = { .size = 48u << 20, .block_size = BS,
						.journal_size = 4u << 20 };
		assert_int_equal(store_mkfs(loop, DEV, &mp, why, sizeof(why)), 0);
		struct store_params p;
		store_params_default(&p);
		p.crc_cache_bytes = seed_crc_cache(seed);
		assert_int_equal(store_open(loop, DEV, &p, &s, why, sizeof(why)), 0);
		uint8_t *buf = aligned_buf(BS);
		struct object_id oid = oid_of(1);
		uint64_t tag = 0;
		for (int round = 0; round < 20; round++) {
			pattern_fill(buf, BS, ++tag, 0);
			assert_int_equal(store_sync_op(s, loop, w, STORE_OP_WRITE, oid, 0, BS, buf, NULL), 0);
			/* At either end, so the read's device range skips it. */
			uint32_t first = io_sim_random(w) & 1 ? 0 : CHUNKS - 2;
			pattern_fill(buf, 2 * 4096, ++tag, first);
			/* Only until it is done: the idle flush must not run first. */
			struct race_read sw = { .req = { .op = STORE_OP_WRITE, .oid = oid,
							 .offset = first * 4096, .len = 2 * 4096,
							 .buf = buf, .done = race_read_done } };
			store_submit(s, &sw.req);
			io_sim_run(w, io_sim_now_ns(w) + IO_MS(50), race_done, &sw);
			assert_true(sw.done && sw.res == 0);
			bool flushed = false;
			store_checkpoint(s, checkpoint_flag, &flushed);
			struct race_read rr[16];
			for (int i = 0; i < 16; i++) {
				io_sim_run(w, io_sim_now_ns(w) + io_sim_random(w) % IO_US(25), NULL, NULL);
				memset(&rr[i], 0, sizeof(rr[i]));
				rr[i].req = (struct store_req){ .op = STORE_OP_READ, .oid = oid, .len = BS,
								.buf = aligned_buf(BS),
								.done = race_read_done };
				store_submit(s, &rr[i].req);
			}
			while (!flushed)
				io_sim_run(w, io_sim_now_ns(w) + IO_MS(1), NULL, NULL);
			for (int i = 0; i < 16; i++) {
				while (!rr[i].done)
					io_sim_run(w, io_sim_now_ns(w) + IO_MS(1), NULL, NULL);
				if (rr[i].res)
					fail_msg("seed %" PRIu64 " round %d: read %d failed: %d", seed,
						 round, i, rr[i].res);
				uint8_t *b = rr[i].req.buf;
				uint32_t other = first ? 0 : CHUNKS - 1;
				assert_int_equal(pattern_tag(b + first * 4096), tag);
				assert_int_equal(pattern_tag(b + other * 4096), tag - 1);
				free(b);
			}
		}
		free(buf);
		store_close(s);
		io_loop_destroy(loop);
		io_sim_world_destroy(w);
	}
}

/* Writes one whole block of OID tagged TAG and runs only until it is
 * acknowledged (the idle flush must not checkpoint it). */
static void write_block_now(struct io_sim_world *w, struct store *s, struct object_id oid,
			    uint64_t tag)
{
	uint8_t *buf = aligned_buf(BS);
	pattern_fill(buf, BS, tag, 0);
	struct race_read wr = { .req = { .op = STORE_OP_WRITE, .oid = oid, .len = BS,
					 .buf = buf, .done = race_read_done } };
	store_submit(s, &wr.req);
	io_sim_run(w, io_sim_now_ns(w) + IO_MS(50), race_done, &wr);
	assert_true(wr.done && wr.res == 0);
	free(buf);
}

/* The device damages the block of an acknowledged whole-block write
 * while its record is still in the journal, and the process crashes.
 * In sync mode "always" only the journal's last batch can have been cut
 * short, so damage in an earlier one is kept as a bad copy (its reads
 * fail, for the PG layer to repair) instead of ending the replay there
 * and forgetting every acknowledged write after it; damage in the last
 * batch is indistinguishable from a torn write and drops that batch.
 * In batch mode the journal has no such promise: replay stops at the
 * damaged batch, as before. */
static void test_damage_in_journal(void **state)
{
	(void)state;
	static const enum io_sim_disk_fault kinds[] = { IO_SIM_CORRUPT, IO_SIM_BAD_SECTOR };
	for (unsigned k = 0; k < 2; k++) {
		for (int batch_mode = 0; batch_mode < 2; batch_mode++) {
			struct sim_run r = { .seed = 77 + k, .sync = batch_mode ? STORE_SYNC_BATCH
									   : STORE_SYNC_ALWAYS };
			char why[256];
			assert_int_equal(io_sim_world_create(r.seed, &r.w), 0);
			io_sim_set_latency(r.w, IO_US(5), IO_US(50));
			assert_int_equal(io_loop_create_sim(r.w, HOST, &r.loop), 0);
			struct store_mkfs_params mp = { .size = 48u << 20, .block_size = BS,
							.journal_size = 4u << 20 };
			assert_int_equal(store_mkfs(r.loop, DEV, &mp, why, sizeof(why)), 0);
			io_loop_destroy(r.loop);
			open_store(&r);
			for (unsigned i = 0; i < 3; i++)
				write_block_now(r.w, r.s, oid_of(i), 100 + i);
			uint64_t at0, at3;
			struct object_id o0 = oid_of(0), o3 = oid_of(3);
			assert_int_equal(store_object_locate(r.s, &o0, &at0), 0);
			crash(&r);
			/* Object 0's batch is followed by two more. */
			assert_int_equal(io_sim_disk_fault(r.w, HOST, DEV, kinds[k], at0 + 4096, 4096), 0);
			open_store(&r);
			const struct store_open_report *rep = store_report(r.s);
			uint8_t *buf = aligned_buf(BS);
			int rc0 = store_sync_op(r.s, r.loop, r.w, STORE_OP_READ, oid_of(0), 0, BS, buf, NULL);
			int rc1 = store_sync_op(r.s, r.loop, r.w, STORE_OP_READ, oid_of(1), 0, BS, buf, NULL);
			if (batch_mode) {
				assert_int_equal(rep->torn_batches, 1);
				assert_int_equal(rc0, -ENOENT);
				assert_int_equal(rc1, -ENOENT);
			} else {
				assert_int_equal(rep->torn_batches, 0);
				assert_int_equal(rep->damaged_blocks, 1);
				assert_int_equal(rc0, kinds[k] == IO_SIM_CORRUPT ? -EBADMSG : -EIO);
				assert_int_equal(rc1, 0);
				assert_int_equal(pattern_tag(buf), 101);
				assert_int_equal(store_sync_op(r.s, r.loop, r.w, STORE_OP_READ, oid_of(0),
							       0, 4096, buf, NULL), 0);
				assert_int_equal(pattern_tag(buf), 100);
			}
			/* The last batch damaged: a torn write, dropped. */
			if (!batch_mode) {
				write_block_now(r.w, r.s, oid_of(3), 103);
				assert_int_equal(store_object_locate(r.s, &o3, &at3), 0);
				crash(&r);
				assert_int_equal(io_sim_disk_fault(r.w, HOST, DEV, kinds[k], at3, 4096), 0);
				open_store(&r);
				assert_int_equal(store_report(r.s)->torn_batches, 1);
				assert_int_equal(store_sync_op(r.s, r.loop, r.w, STORE_OP_READ, oid_of(3), 0,
							       BS, buf, NULL), -ENOENT);
				assert_int_equal(store_sync_op(r.s, r.loop, r.w, STORE_OP_READ, oid_of(2), 0,
							       BS, buf, NULL), 0);
				assert_int_equal(pattern_tag(buf), 102);
			}
			free(buf);
			store_close(r.s);
			io_loop_destroy(r.loop);
			io_sim_world_destroy(r.w);
		}
	}
}

/* A store of seed SEED on a fresh simulated disk, in sync mode "always". */
static void fresh_store(struct sim_run *r, uint64_t seed)
{
	char why[256];
	memset(r, 0, sizeof(*r));
	r->seed = seed;
	r->sync = STORE_SYNC_ALWAYS;
	assert_int_equal(io_sim_world_create(seed, &r->w), 0);
	io_sim_set_latency(r->w, IO_US(5), IO_US(50));
	assert_int_equal(io_loop_create_sim(r->w, HOST, &r->loop), 0);
	struct store_mkfs_params mp = { .size = 48u << 20, .block_size = BS,
					.journal_size = 4u << 20 };
	assert_int_equal(store_mkfs(r->loop, DEV, &mp, why, sizeof(why)), 0);
	io_loop_destroy(r->loop);
	open_store(r);
}

/* Reopens R's store after a crash and checks that object OBJ reads as
 * the whole block tagged TAG, and that fsck finds the store clean. */
static void reopen_expect(struct sim_run *r, unsigned obj, uint64_t tag)
{
	open_store(r);
	uint8_t *buf = aligned_buf(BS), *want = aligned_buf(BS);
	pattern_fill(want, BS, tag, 0);
	assert_int_equal(store_sync_op(r->s, r->loop, r->w, STORE_OP_READ, oid_of(obj), 0, BS,
				       buf, NULL), 0);
	assert_memory_equal(buf, want, BS);
	free(buf);
	free(want);
	store_close(r->s);
	FILE *null = fopen("/dev/null", "w");
	assert_int_equal(store_fsck(r->loop, DEV, null, false), 0);
	fclose(null);
	io_loop_destroy(r->loop);
	io_sim_world_destroy(r->w);
}

/* A journal write that fails, or comes back short, fails its batch: the
 * linked fdatasync behind it is cancelled (io_link), the write is
 * answered -EIO, the store refuses further writes, and after a restart
 * the object holds what it held before. */
static void test_journal_write_fails(void **state)
{
	(void)state;
	static const enum io_sim_disk_fault kinds[] = { IO_SIM_FAIL_WRITE, IO_SIM_SHORT_WRITE };
	for (unsigned k = 0; k < 2; k++) {
		struct sim_run r;
		fresh_store(&r, 300 + k);
		write_block_now(r.w, r.s, oid_of(0), 500);
		assert_int_equal(io_sim_disk_fault(r.w, HOST, DEV, kinds[k], r.s->L.journal_offset,
						   r.s->L.journal_size), 0);
		uint8_t *buf = aligned_buf(2 * 4096);
		pattern_fill(buf, 2 * 4096, 501, 2);
		assert_int_equal(store_sync_op(r.s, r.loop, r.w, STORE_OP_WRITE, oid_of(0), 2 * 4096,
					       2 * 4096, buf, NULL), -EIO);
		assert_false(r.s->batch_sync_io.in_flight);
		assert_int_equal(store_sync_op(r.s, r.loop, r.w, STORE_OP_WRITE, oid_of(0), 0,
					       4096, buf, NULL), -EROFS);
		free(buf);
		io_sim_disk_lost_writes_disarm(r.w, HOST);
		crash(&r);
		reopen_expect(&r, 0, 500);
	}
}

/* Where OID's block is, hot or cold (store_view). */
static uint64_t block_of(struct store *s, struct object_id oid)
{
	uint32_t ri = store_rec_find(s, &oid);
	assert_true(ri != 0);
	struct store_view v;
	store_view(s, ri, &v);
	return v.block;
}

/* A flush whose in-place data write fails (SUPERBLOCK false), or whose
 * closing superblock write fails, fails the store, and the log names
 * that write (data: its length and offset) so an operator sees the
 * cause. The journal still holds the acknowledged write: after a restart
 * the object reads back whole. */
static void flush_fails(bool superblock)
{
	char log_path[] = "/tmp/basalt-flush-log.XXXXXX";
	int fd = mkstemp(log_path);
	assert_true(fd >= 0);
	close(fd);
	struct sim_run r;
	fresh_store(&r, 510 + superblock);
	write_block_now(r.w, r.s, oid_of(0), 900);
	uint8_t *buf = aligned_buf(BS), *want = aligned_buf(BS);
	pattern_fill(want, BS, 900, 0);
	pattern_fill(want + 4096, 4096, 901, 1);
	/* The next write to the range fails (the fault is used up by it). */
	uint64_t data_end = r.s->L.data_offset + r.s->L.block_count * (uint64_t)BS;
	if (superblock)
		assert_int_equal(io_sim_disk_fault(r.w, HOST, DEV, IO_SIM_FAIL_WRITE, 0,
						   STORE_SB_SLOT1 + STORE_SB_SIZE),
				 0);
	else
		assert_int_equal(io_sim_disk_fault(r.w, HOST, DEV, IO_SIM_FAIL_WRITE,
						   r.s->L.data_offset,
						   data_end - r.s->L.data_offset),
				 0);
	char named[160];
	if (superblock)
		snprintf(named, sizeof(named), "store: superblock write failed: ");
	else
		snprintf(named, sizeof(named),
			 "store flush: data write of 4096 bytes at offset %llu failed: ",
			 (unsigned long long)(r.s->L.data_offset + block_of(r.s, oid_of(0)) * BS +
					      4096));
	assert_int_equal(log_set_file(log_path), 0);
	assert_int_equal(store_sync_op(r.s, r.loop, r.w, STORE_OP_WRITE, oid_of(0), 4096, 4096,
				       want + 4096, NULL), 0);
	bool flushed = false;
	store_checkpoint(r.s, checkpoint_flag, &flushed);
	for (int i = 0; i < 1000 && !flushed; i++)
		io_sim_run(r.w, io_sim_now_ns(r.w) + IO_MS(1), NULL, NULL);
	assert_int_equal(log_set_file(NULL), 0);
	assert_true(flushed);
	assert_true(r.s->failed);
	assert_int_equal(store_sync_op(r.s, r.loop, r.w, STORE_OP_WRITE, oid_of(1), 0, 4096, buf,
				       NULL), -EROFS);
	FILE *f = fopen(log_path, "r");
	assert_non_null(f);
	char line[512];
	bool said = false, failed = false;
	while (fgets(line, sizeof(line), f)) {
		said |= strstr(line, named) != NULL;
		failed |= strstr(line, "store failed: flush:") != NULL;
	}
	fclose(f);
	unlink(log_path);
	assert_true(said);
	assert_true(failed);
	crash(&r);
	open_store(&r);
	assert_int_equal(store_sync_op(r.s, r.loop, r.w, STORE_OP_READ, oid_of(0), 0, BS, buf,
				       NULL), 0);
	assert_memory_equal(buf, want, BS);
	free(buf);
	free(want);
	store_close(r.s);
	io_loop_destroy(r.loop);
	io_sim_world_destroy(r.w);
}

static void test_flush_write_fails(void **state)
{
	(void)state;
	flush_fails(false);
	flush_fails(true);
}

/* A whole-block write's data and its journal record are written side by
 * side, flushed once both are: a crash may find the record written and
 * the data not. Replay then sees the block not matching the record's
 * CRCs, drops that batch (it was never acknowledged) and the object keeps
 * its previous version. Seeds are tried until the record's write has
 * completed before the data's; the process dies there (odd seeds: with
 * a power loss too). */
static void test_redirect_record_before_data(void **state)
{
	(void)state;
	unsigned caught = 0, torn = 0;
	for (uint64_t seed = 1; seed <= 60; seed++) {
		struct sim_run r;
		fresh_store(&r, seed);
		r.power_loss = seed % 2;
		write_block_now(r.w, r.s, oid_of(0), 700);
		uint8_t *buf = aligned_buf(BS);
		pattern_fill(buf, BS, 701, 0);
		struct race_read wr = { .req = { .op = STORE_OP_WRITE, .oid = oid_of(0), .len = BS,
						 .buf = buf, .done = race_read_done } };
		store_submit(r.s, &wr.req);
		bool record_first = false;
		uint64_t until = io_sim_now_ns(r.w) + IO_MS(50);
		while (!wr.done && io_sim_now_ns(r.w) < until) {
			io_sim_run(r.w, io_sim_now_ns(r.w) + IO_US(1), NULL, NULL);
			if (wr.req.data_pending && r.s->batch_inflight && !r.s->batch_io.in_flight) {
				record_first = true;
				break;
			}
		}
		if (!record_first) {
			assert_true(wr.done && wr.res == 0);
			store_close(r.s);
			io_loop_destroy(r.loop);
			io_sim_world_destroy(r.w);
			free(buf);
			continue;
		}
		caught++;
		crash(&r);
		open_store(&r);
		torn += store_report(r.s)->torn_batches;
		store_close(r.s);
		io_loop_destroy(r.loop);
		reopen_expect(&r, 0, 700);
		free(buf);
	}
	assert_true(caught > 0);
	assert_true(torn > 0); /* some record did survive, and was refused */
}

/* Submits a write of OBJ: a whole block tagged TAG (WHOLE), or chunk 1. */
static void submit_tagged(struct sim_run *r, struct race_read *rr, uint8_t *buf, unsigned obj,
			  uint64_t tag, bool whole)
{
	uint32_t len = whole ? BS : 4096, off = whole ? 0 : 4096;
	pattern_fill(buf, len, tag, off / 4096);
	*rr = (struct race_read){ .req = { .op = STORE_OP_WRITE, .oid = oid_of(obj), .offset = off,
					   .len = len, .buf = buf, .done = race_read_done } };
	store_submit(r->s, &rr->req);
}

/* A whole-block write whose data write fails fails itself (-EIO) and the
 * store, wherever its record was: alone in the batch in flight, or
 * waiting behind another batch (which still completes). A redirect whose
 * data is still being written when a journal write fails the store is
 * answered -EROFS once its data write is done, never before (its buffer
 * is the device's until then). After a restart nothing of them is in. */
static void test_redirect_data_write_fails(void **state)
{
	(void)state;
	for (uint64_t seed = 400; seed < 412; seed++) {
		for (unsigned scene = 0; scene < 3; scene++) {
			struct sim_run r;
			fresh_store(&r, seed);
			write_block_now(r.w, r.s, oid_of(0), 800);
			write_block_now(r.w, r.s, oid_of(1), 810);
			uint64_t data = store_block_offset(r.s, 0);
			uint64_t end = store_block_offset(r.s, r.s->L.block_count);
			if (scene == 2)
				assert_int_equal(io_sim_disk_fault(r.w, HOST, DEV, IO_SIM_FAIL_WRITE,
								   r.s->L.journal_offset,
								   r.s->L.journal_size), 0);
			else
				assert_int_equal(io_sim_disk_fault(r.w, HOST, DEV, IO_SIM_FAIL_WRITE,
								   data, end - data), 0);
			uint8_t *b0 = aligned_buf(BS), *b1 = aligned_buf(BS);
			struct race_read w0, w1;
			if (scene == 0) {
				submit_tagged(&r, &w1, b1, 1, 811, true);
			} else {
				submit_tagged(&r, &w0, b0, 0, 801, false);
				submit_tagged(&r, &w1, b1, 1, 811, true);
				io_sim_run(r.w, io_sim_now_ns(r.w) + IO_MS(50), race_done, &w0);
				assert_true(w0.done);
				assert_int_equal(w0.res, scene == 1 ? 0 : -EIO);
			}
			io_sim_run(r.w, io_sim_now_ns(r.w) + IO_MS(50), race_done, &w1);
			assert_true(w1.done);
			assert_int_equal(w1.res, scene == 2 ? -EROFS : -EIO);
			assert_true(r.s->failed);
			free(b0);
			free(b1);
			io_sim_disk_lost_writes_disarm(r.w, HOST);
			crash(&r);
			open_store(&r);
			uint8_t *buf = aligned_buf(BS);
			assert_int_equal(store_sync_op(r.s, r.loop, r.w, STORE_OP_READ, oid_of(0), 4096,
						       4096, buf, NULL), 0);
			assert_int_equal(pattern_tag(buf), scene == 1 ? 801 : 800);
			free(buf);
			store_close(r.s);
			io_loop_destroy(r.loop);
			reopen_expect(&r, 1, 810);
		}
	}
}

int main(void)
{
	log_set_level(LOG_LEVEL_ERROR);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reads_race_flush),
		cmocka_unit_test(test_damage_in_journal),
		cmocka_unit_test(test_journal_write_fails),
		cmocka_unit_test(test_flush_write_fails),
		cmocka_unit_test(test_redirect_record_before_data),
		cmocka_unit_test(test_redirect_data_write_fails),
		cmocka_unit_test(test_power_loss_sync_always),
		cmocka_unit_test(test_power_loss_full_disk),
		cmocka_unit_test(test_process_crash_sync_batch),
		cmocka_unit_test(test_process_crash_sync_always),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
