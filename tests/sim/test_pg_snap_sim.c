/* Snapshots in the deterministic PG simulation (the harness of pg_sim.h:
 * a real monitor, four OSDs and a client from one seed, under crashes,
 * power loss, cut links, resets, OSDs out and in).
 *
 * The workload writes (whole and partial), deletes and reads the objects
 * of one volume, while snapshots of it are taken and removed in random
 * order through the client library's own bs_snap_create/bs_snap_remove
 * (map command, the OSD_OP_SYNC barrier, then the clones
 * map_snap_clone_needed calls garbage deleted), with faults striking
 * during their barriers, listings and deletes too. Reads of a snapshot
 * run beside the writes that make its clones.
 *
 * The model: a snapshot holds, per object, what the object held after
 * some prefix of its operations — at least those acknowledged before the
 * command was sent, none started after the barrier returned (an
 * operation in flight across it may land on either side, as the plain
 * run treats writes not yet acknowledged). Each object keeps that list of
 * candidates; the first read of the snapshot picks one, and every later
 * read must return exactly it (zeros and -ENOENT when absent). The head
 * is checked as in the plain run.
 *
 * At the end (healed): every snapshot is read back, then every snapshot
 * removed and every object deleted, in random order, the snapshots still
 * live read back after each step; once the PGs are clean, each OSD's
 * store must hold nothing but the PGs' own records — blocks used exactly
 * one per record — and its offline check (store_fsck) must be clean.
 *
 * Not modelled: rollback, clones of volumes and flatten (client level,
 * built separately), groups of volumes in one snapshot.
 *
 *   PG_SIM_SNAP_SEEDS=N  seeds (default 10), from PG_SIM_SNAP_FIRST (default 9000)
 *   PG_SIM_SEED=S PG_SIM_SNAP=1  replay seed S
 *   PG_SIM_SECONDS=T     virtual seconds of faults per seed (default 12) */
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

#include "client/libbasalt.h"
#include "client/volume_admin.h"
#include "common/cluster/map.h"
#include "common/io/sim.h"
#include "common/log.h"
#include "osd/osd.h"
#include "osd/store.h"
#include "pg_sim.h"
#include "../unit/osd/store_test_util.h"

#define SNAP_NOBJ 8	 /* objects of the volume */
#define SNAP_LIVE_MAX 4	 /* snapshots at once */
#define SNAP_VOLUME "vm"
#define SNAP_WAIT_NS IO_SEC(300) /* longest an admin step may take */

/* An object as a snapshot may hold it. */
struct snap_state {
	bool exists;
	uint64_t tags[CHUNKS]; /* as struct pg_sim_obj's; all 0 when absent */
};

/* One object of one snapshot: what it may hold, until a read fixes it. */
struct snap_view {
	struct snap_state *cand;
	uint32_t n, cap;
	bool fixed;
	bool reading; /* a read of it is in flight */
};

struct snap_model {
	bool used;
	bool removing; /* its reads are no longer checked */
	char name[MAP_NAME_MAX];
	uint32_t id;	    /* 0 until the command answered */
	uint64_t close_seq; /* r->op_seq when its barrier returned; UINT64_MAX before */
	struct snap_view obj[SNAP_NOBJ];
};

struct snap_sim {
	struct snap_model snaps[SNAP_LIVE_MAX];
	uint32_t next_name;
	bool faults; /* faults may strike while an admin step waits */
	struct bs_admin admin;
	uint64_t created, removed, reads_checked, reads_unchecked, clones_freed;
};

/* Over every seed: that the run tested what it is for. */
static uint64_t total_reads_checked, total_clones_freed;

static struct snap_sim *sim_of(struct pg_sim_run *r)
{
	return r->ext;
}

/* --- the model --------------------------------------------------------------------- */

static void state_of(const struct pg_sim_obj *m, struct snap_state *out)
{
	memset(out, 0, sizeof(*out));
	out->exists = m->exists;
	if (m->exists)
		memcpy(out->tags, m->tags, sizeof(out->tags));
}

static bool state_equal(const struct snap_state *a, const struct snap_state *b)
{
	return a->exists == b->exists && !memcmp(a->tags, b->tags, sizeof(a->tags));
}

static void view_add(struct pg_sim_run *r, struct snap_view *v, const struct snap_state *st)
{
	if (v->fixed)
		return;
	for (uint32_t i = 0; i < v->n; i++)
		if (state_equal(&v->cand[i], st))
			return;
	if (v->n == v->cap) {
		uint32_t cap = v->cap ? v->cap * 2 : 8;
		struct snap_state *c = realloc(v->cand, cap * sizeof(*c));
		if (!c) {
			pg_sim_failf(r, "out of memory");
			return;
		}
		v->cand = c;
		v->cap = cap;
	}
	v->cand[v->n++] = *st;
}

static void snap_free(struct snap_model *s)
{
	for (uint32_t k = 0; k < SNAP_NOBJ; k++)
		free(s->obj[k].cand);
	memset(s, 0, sizeof(*s));
}

static struct snap_model *snap_by_id(struct snap_sim *ss, uint32_t id)
{
	for (int i = 0; i < SNAP_LIVE_MAX; i++)
		if (ss->snaps[i].used && ss->snaps[i].id == id)
			return &ss->snaps[i];
	return NULL;
}

/* A workload operation was answered: what it left is a candidate of
 * every snapshot whose barrier had not returned when it started. */
static void snap_head_done(struct pg_sim_run *r, struct pg_sim_slot *s, int rc)
{
	struct snap_sim *ss = sim_of(r);
	(void)rc;
	if (s->op.type == BS_READ)
		return;
	struct snap_state st;
	state_of(&r->m[s->obj], &st);
	for (int i = 0; i < SNAP_LIVE_MAX; i++) {
		struct snap_model *sm = &ss->snaps[i];
		if (sm->used && s->started <= sm->close_seq)
			view_add(r, &sm->obj[s->obj], &st);
	}
}

/* What the workload operation in flight on OBJ will leave, if it started
 * before SM's barrier returned (its answer may be on its way while the
 * snapshot already holds its result): true with *OUT. */
static bool pending_state(struct pg_sim_run *r, const struct snap_model *sm, uint32_t obj,
			  struct snap_state *out)
{
	for (int i = 0; i < QD; i++) {
		const struct pg_sim_slot *s = &r->slots[i];
		if (!s->used || s->own || s->obj != obj || s->started > sm->close_seq ||
		    s->op.type == BS_READ)
			continue;
		state_of(&r->m[obj], out);
		if (s->op.type == BS_DELETE) {
			memset(out, 0, sizeof(*out));
			return true;
		}
		out->exists = true;
		for (uint32_t c = s->first; c < s->first + s->n; c++)
			out->tags[c] = s->tag;
		return true;
	}
	return false;
}

/* What a read or stat of a snapshot answered. */
struct snap_answer {
	int rc;
	bool stat;
	uint64_t size;	     /* a stat's: bytes ever written */
	uint32_t first, n;   /* a read's chunks */
	const uint8_t *buf;  /* their bytes */
};

static bool answer_matches(const struct snap_state *st, const struct snap_answer *a)
{
	if (a->rc == -ENOENT || !st->exists)
		return a->rc == -ENOENT && !st->exists;
	if (a->stat) {
		uint64_t written = 0;
		for (uint32_t c = 0; c < CHUNKS; c++)
			written += st->tags[c] ? 4096 : 0;
		return a->size == written;
	}
	for (uint32_t c = a->first; c < a->first + a->n; c++)
		if (!pg_sim_chunk_ok(a->buf + (c - a->first) * 4096, st->tags[c], c))
			return false;
	return true;
}

static void describe(char *out, size_t len, const struct snap_state *st)
{
	int n = snprintf(out, len, "%s", st->exists ? "[" : "absent");
	for (uint32_t c = 0; st->exists && c < CHUNKS && n > 0 && (size_t)n < len; c++)
		n += snprintf(out + n, len - (size_t)n, "%s%" PRIu64, c ? " " : "", st->tags[c]);
	if (st->exists && n > 0 && (size_t)n < len)
		snprintf(out + n, len - (size_t)n, "]");
}

static void describe_answer(char *out, size_t len, const struct snap_answer *a)
{
	if (a->rc == -ENOENT) {
		snprintf(out, len, "absent");
	} else if (a->stat) {
		snprintf(out, len, "%" PRIu64 " bytes written", a->size);
	} else {
		uint64_t t0, t1;
		memcpy(&t0, a->buf, 8);
		memcpy(&t1, a->buf + (a->n - 1) * 4096, 8);
		snprintf(out, len, "chunks %u-%u of writes %" PRIu64 "..%" PRIu64, a->first,
			 a->first + a->n - 1, t0, t1);
	}
}

/* Checks answer A about object OBJ of snapshot ID against the model:
 * the candidates it rules out go. The barrier has returned, so the
 * candidates are all known once the operation in flight on the object
 * (if it started before the barrier returned) is counted in. */
static void snap_answer_check(struct pg_sim_run *r, uint32_t id, uint32_t obj,
			      const struct snap_answer *a)
{
	struct snap_sim *ss = sim_of(r);
	struct snap_model *sm = snap_by_id(ss, id);
	if (sm)
		sm->obj[obj].reading = false;
	if (!sm || sm->removing) {
		ss->reads_unchecked++; /* removed meanwhile: anything goes */
		return;
	}
	if (a->rc && a->rc != -ENOENT) {
		pg_sim_failf(r, "snapshot %u object %u: %s failed: %d", id, obj,
			     a->stat ? "stat" : "read", a->rc);
		return;
	}
	struct snap_view *v = &sm->obj[obj];
	struct snap_state pend;
	if (!v->fixed && pending_state(r, sm, obj, &pend))
		view_add(r, v, &pend);
	v->fixed = true;
	ss->reads_checked++;
	uint32_t kept = 0;
	for (uint32_t i = 0; i < v->n; i++)
		if (answer_matches(&v->cand[i], a))
			v->cand[kept++] = v->cand[i];
	if (kept) {
		v->n = kept;
		return;
	}
	char want[256], got[96];
	describe(want, sizeof(want), &v->cand[0]);
	describe_answer(got, sizeof(got), a);
	pg_sim_failf(r, "snapshot %u ('%s') object %u: %s %s, but it holds %s%s", id, sm->name,
		     obj, a->stat ? "stat says" : "read", got, want,
		     v->n > 1 ? " (or another of its candidates)" : "");
}

static void snap_read_check(struct pg_sim_run *r, uint32_t id, uint32_t obj, const uint8_t *buf,
			    int rc)
{
	struct snap_answer a = { .rc = rc, .first = 0, .n = CHUNKS, .buf = buf };
	snap_answer_check(r, id, obj, &a);
}

/* --- reads of snapshots in the workload ------------------------------------------------ */

/* A quarter of the free slots read a snapshot: whole objects, parts of
 * them, or stats. */
static bool snap_issue(struct pg_sim_run *r, struct pg_sim_slot *s)
{
	struct snap_sim *ss = sim_of(r);
	if (pg_sim_rnd(r) % 4)
		return false;
	struct snap_model *sm = &ss->snaps[pg_sim_rnd(r) % SNAP_LIVE_MAX];
	uint32_t obj = (uint32_t)(pg_sim_rnd(r) % SNAP_NOBJ);
	if (!sm->used || sm->removing || sm->close_seq == UINT64_MAX || sm->obj[obj].reading)
		return false;
	s->obj = obj;
	s->aux = sm->id;
	s->first = 0;
	s->n = CHUNKS;
	uint64_t kind = pg_sim_rnd(r) % 4;
	if (kind == 1) {
		s->first = (uint32_t)(pg_sim_rnd(r) % CHUNKS);
		s->n = 1 + (uint32_t)(pg_sim_rnd(r) % (CHUNKS - s->first));
	}
	sm->obj[obj].reading = true;
	s->op = (struct bs_op){ .type = kind ? BS_READ : BS_STAT,
				.oid = { .pool = r->pool, .inode = r->inode, .index = obj, .snap = sm->id },
				.offset = kind ? s->first * 4096 : 0, .len = kind ? s->n * 4096 : 0,
				.buf = kind ? s->buf : NULL };
	pg_sim_submit_own(r, s);
	return true;
}

static void snap_own_done(struct pg_sim_run *r, struct pg_sim_slot *s, int rc)
{
	struct snap_answer a = { .rc = rc, .stat = s->op.type == BS_STAT, .size = s->op.size,
				 .first = s->first, .n = s->n, .buf = s->buf };
	snap_answer_check(r, s->aux, s->obj, &a);
}

/* --- the admin ops of the client library, over the simulated client ------------------ */

struct op_wait {
	struct pg_sim_run *r;
	size_t done, n;
	size_t failed; /* answers other than 0 and -ENOENT */
};

static void op_wait_done(struct bs_op *op, int rc)
{
	struct op_wait *w = op->ctx;
	w->done++;
	w->failed += rc && rc != -ENOENT;
	if (getenv("PG_SIM_SNAP_TRACE") && op->type == BS_SYNC)
		fprintf(stderr, "SNAP sync osd.%" PRIu64 ": %d after %u attempts, at %.3f\n",
			op->oid.inode, rc, op->attempts,
			io_sim_now_ns(w->r->w) / 1e9);
	op->size = (uint64_t)(int64_t)rc; /* the answer, for the caller */
}

static bool op_wait_finished(void *arg)
{
	const struct op_wait *w = arg;
	return w->done == w->n;
}

/* Runs the world until DONE(ARG), faults striking meanwhile during the
 * fault phase. Operations in flight point into the caller's frame, so a
 * wait that never ends fails the test at once. */
static void admin_wait(struct pg_sim_run *r, bool (*done)(void *), void *arg, const char *what)
{
	struct snap_sim *ss = sim_of(r);
	uint64_t end = io_sim_now_ns(r->w) + SNAP_WAIT_NS;
	while (!done(arg)) {
		if (io_sim_now_ns(r->w) >= end)
			fail_msg("seed %" PRIu64 ": %s never finished (replay: PG_SIM_SEED=%" PRIu64
				 " PG_SIM_SNAP=1)", r->seed, what, r->seed);
		io_sim_run(r->w, io_sim_now_ns(r->w) + IO_MS(100 + pg_sim_rnd(r) % 700), done, arg);
		if (done(arg))
			break;
		pg_sim_issue(r);
		if (ss->faults && pg_sim_rnd(r) % 6 == 0)
			pg_sim_fault_step(r);
	}
}

/* Runs the N operations of OPS to their answers (each in its op->size). */
static size_t run_ops(struct pg_sim_run *r, struct bs_op *ops, size_t n, const char *what)
{
	struct op_wait w = { r, 0, n, 0 };
	for (size_t i = 0; i < n; i++) {
		ops[i].done = op_wait_done;
		ops[i].ctx = &w;
		bs_submit(r->client, &ops[i]);
	}
	admin_wait(r, op_wait_finished, &w, what);
	return w.failed;
}

static int op_rc(const struct bs_op *op)
{
	return (int)(int64_t)op->size;
}

static int sim_get_map(void *ctx, struct cluster_map *out, char *why, size_t why_len)
{
	struct pg_sim_run *r = ctx;
	uint8_t *buf;
	size_t len;
	memset(out, 0, sizeof(*out)); /* map_decode frees what *OUT held */
	int rc = map_encode(bs_client_map(r->client), &buf, &len);
	if (!rc) {
		rc = map_decode(buf, len, out);
		free(buf);
	}
	if (rc)
		snprintf(why, why_len, "cannot copy the map: %d", rc);
	return rc;
}

static const struct cluster_map *sim_list_map(void *ctx)
{
	return bs_client_map(((struct pg_sim_run *)ctx)->client);
}

static int sim_list_run(void *ctx, struct bs_op *op)
{
	run_ops(ctx, op, 1, "a listing");
	return op_rc(op);
}

/* The client library's listing (bs_object_list) over the simulated client. */
static int sim_list(void *ctx, const char *pool_name, bs_admin_list_fn fn, void *arg, char *why,
		    size_t why_len)
{
	struct bs_object_list_io io = { sim_list_map, sim_list_run, ctx };
	return bs_object_list_io(&io, pool_name, fn, arg, why, why_len);
}

static size_t sim_delete(void *ctx, struct bs_op *ops, size_t n, char *why, size_t why_len)
{
	struct pg_sim_run *r = ctx;
	size_t failed = run_ops(r, ops, n, "the deletes of garbage clones");
	if (failed)
		snprintf(why, why_len, "%zu deletes failed", failed);
	return failed;
}

static int sim_zero(void *ctx, const char *name, uint64_t offset, uint32_t len, char *why,
		    size_t why_len)
{
	(void)ctx, (void)name, (void)offset, (void)len;
	snprintf(why, why_len, "not used by snapshots");
	return -EOPNOTSUPP;
}

static int sim_command(void *ctx, struct map_cmd *cmd, char *text, size_t text_len,
		       uint64_t *epoch)
{
	struct pg_sim_run *r = ctx;
	uint64_t t0 = io_sim_now_ns(r->w);
	int rc = pg_sim_admin_run(r, cmd);
	if (getenv("PG_SIM_SNAP_TRACE"))
		fprintf(stderr, "SNAP %.3f command %d: %d '%s' epoch %" PRIu64 " (%.3f s)\n",
			t0 / 1e9, cmd->type, rc, r->admin.text, r->admin.epoch,
			(io_sim_now_ns(r->w) - t0) / 1e9);
	snprintf(text, text_len, "%s", rc == -ETIMEDOUT ? "no answer" : r->admin.text);
	*epoch = r->admin.epoch;
	return rc;
}

struct map_wait {
	struct pg_sim_run *r;
	uint64_t epoch;
};

static bool map_reached(void *arg)
{
	const struct map_wait *mw = arg;
	return bs_client_have_map(mw->r->client) && bs_client_map(mw->r->client)->epoch >= mw->epoch;
}

/* bs_sync_osds's way: the map of EPOCH, then OSD_OP_SYNC to every OSD
 * (one marked down answers -EHOSTDOWN: it holds nothing in flight). */
static int sim_barrier(void *ctx, uint64_t epoch, char *why, size_t why_len)
{
	struct pg_sim_run *r = ctx;
	struct map_wait mw = { r, epoch };
	admin_wait(r, map_reached, &mw, "the wait for the snapshot's map");
	uint32_t n = bs_client_map(r->client)->n_osds;
	struct bs_op ops[NOSD];
	assert_true(n <= NOSD);
	for (uint32_t i = 0; i < n; i++)
		ops[i] = (struct bs_op){ .type = BS_SYNC, .oid = { .inode = i } };
	uint64_t t0 = io_sim_now_ns(r->w);
	run_ops(r, ops, n, "the barrier");
	if (getenv("PG_SIM_SNAP_TRACE"))
		fprintf(stderr, "SNAP %.3f barrier of epoch %" PRIu64 ": %d %d %d %d (%.3f s)\n",
			t0 / 1e9, epoch, op_rc(&ops[0]), op_rc(&ops[1]), op_rc(&ops[2]),
			op_rc(&ops[3]), (io_sim_now_ns(r->w) - t0) / 1e9);
	for (uint32_t i = 0; i < n; i++)
		if (op_rc(&ops[i]) && op_rc(&ops[i]) != -EHOSTDOWN) {
			snprintf(why, why_len, "osd.%u did not confirm map epoch %" PRIu64 ": %d", i,
				 epoch, op_rc(&ops[i]));
			return op_rc(&ops[i]);
		}
	return 0;
}

static const struct bs_admin_ops sim_admin_ops = { .get_map = sim_get_map, .list = sim_list,
						   .delete_objects = sim_delete, .zero = sim_zero,
						   .command = sim_command, .barrier = sim_barrier };

/* --- taking and removing snapshots ------------------------------------------------------ */

static void snap_create(struct pg_sim_run *r)
{
	struct snap_sim *ss = sim_of(r);
	struct snap_model *sm = NULL;
	for (int i = 0; i < SNAP_LIVE_MAX && !sm; i++)
		if (!ss->snaps[i].used)
			sm = &ss->snaps[i];
	if (!sm)
		return;
	sm->used = true;
	sm->close_seq = UINT64_MAX;
	snprintf(sm->name, sizeof(sm->name), "s%u", ss->next_name++);
	/* Everything acknowledged so far is in it. */
	for (uint32_t k = 0; k < SNAP_NOBJ; k++) {
		struct snap_state st;
		state_of(&r->m[k], &st);
		view_add(r, &sm->obj[k], &st);
	}
	struct bs_snap_spec spec = { SNAP_VOLUME, "" };
	memcpy(spec.snap, sm->name, sizeof(spec.snap));
	struct bs_volume_change out;
	char why[512];
	uint64_t t0 = io_sim_now_ns(r->w);
	int rc = bs_snap_create(&ss->admin, &spec, 1, &out, why, sizeof(why));
	if (getenv("PG_SIM_SNAP_TRACE"))
		fprintf(stderr, "SNAP %.3f create %s: %d (epoch %" PRIu64 ", %.3f s)\n", t0 / 1e9,
			sm->name, rc, out.epoch, (io_sim_now_ns(r->w) - t0) / 1e9);
	if (rc) {
		pg_sim_failf(r, "snap create %s: %s", sm->name, why);
		return;
	}
	const struct map_volume *v = map_volume_by_name(bs_client_map(r->client), SNAP_VOLUME);
	const struct map_snap *snap = v ? map_snap_by_name(v, sm->name) : NULL;
	if (!snap) {
		pg_sim_failf(r, "snapshot %s is not in map %" PRIu64, sm->name, out.epoch);
		return;
	}
	sm->id = snap->id;
	sm->close_seq = r->op_seq; /* nothing started from now on is in it */
	ss->created++;
}

/* Removes SM as an operator would: bs_snap_remove, run again while it
 * fails (it finishes a removal cut short). */
static void snap_remove(struct pg_sim_run *r, struct snap_model *sm)
{
	struct snap_sim *ss = sim_of(r);
	struct bs_snap_spec spec = { SNAP_VOLUME, "" };
	memcpy(spec.snap, sm->name, sizeof(spec.snap));
	struct bs_volume_change out;
	char why[512] = "";
	sm->removing = true;
	int rc = -EAGAIN;
	for (int tries = 0; tries < 20 && rc && rc != -ENOENT; tries++) {
		if (tries) /* as an operator would, after a while */
			io_sim_run(r->w, io_sim_now_ns(r->w) + IO_SEC(2), NULL, NULL);
		rc = bs_snap_remove(&ss->admin, &spec, &out, why, sizeof(why));
		ss->clones_freed += out.objects_freed;
	}
	if (getenv("PG_SIM_SNAP_TRACE"))
		fprintf(stderr, "SNAP %.3f removed %s: %d, %" PRIu64 " clones freed so far\n",
			io_sim_now_ns(r->w) / 1e9, sm->name, rc, ss->clones_freed);
	if (rc && rc != -ENOENT)
		pg_sim_failf(r, "snap rm %s: %s", sm->name, why);
	snap_free(sm);
	ss->removed++;
}

/* One to three snapshot commands: a create while there is room (and
 * half the time otherwise), else the removal of a random one. */
static void snap_step(struct pg_sim_run *r)
{
	struct snap_sim *ss = sim_of(r);
	ss->faults = true;
	for (uint64_t k = 1 + pg_sim_rnd(r) % 3; k > 0 && !r->failure[0]; k--) {
		uint32_t live = 0;
		for (int i = 0; i < SNAP_LIVE_MAX; i++)
			live += ss->snaps[i].used;
		if (live < SNAP_LIVE_MAX && (!live || pg_sim_rnd(r) % 2)) {
			snap_create(r);
			continue;
		}
		struct snap_model *sm = &ss->snaps[pg_sim_rnd(r) % SNAP_LIVE_MAX];
		if (sm->used && sm->close_seq != UINT64_MAX)
			snap_remove(r, sm);
	}
}

static bool volume_known(void *arg)
{
	struct pg_sim_run *r = arg;
	return map_volume_by_name(bs_client_map(r->client), SNAP_VOLUME) != NULL;
}

static void snap_setup(struct pg_sim_run *r)
{
	struct snap_sim *ss = calloc(1, sizeof(*ss));
	assert_non_null(ss);
	r->ext = ss;
	ss->admin = (struct bs_admin){ &sim_admin_ops, r };
	r->nobj = SNAP_NOBJ;
	struct map_cmd vc = { .type = MAP_CMD_VOLUME_CREATE, .name = SNAP_VOLUME,
			      .pool_name = "rbd", .size = SNAP_NOBJ * BS };
	int rc = pg_sim_admin_run(r, &vc);
	if (rc)
		fail_msg("seed %" PRIu64 ": volume create: %d", r->seed, rc);
	if (io_sim_run(r->w, io_sim_now_ns(r->w) + IO_SEC(30), volume_known, r))
		fail_msg("seed %" PRIu64 ": the client never saw the volume", r->seed);
	r->inode = map_volume_by_name(bs_client_map(r->client), SNAP_VOLUME)->inode;
}

static void snap_fini(struct pg_sim_run *r)
{
	struct snap_sim *ss = sim_of(r);
	if (!ss)
		return;
	for (int i = 0; i < SNAP_LIVE_MAX; i++)
		snap_free(&ss->snaps[i]);
	free(ss);
	r->ext = NULL;
}

/* --- the end: everything read back, removed, deleted ----------------------------------- */

static void read_all_snapshots(struct pg_sim_run *r)
{
	struct snap_sim *ss = sim_of(r);
	uint8_t *buf = aligned_buf(BS);
	for (int i = 0; i < SNAP_LIVE_MAX && !r->failure[0]; i++) {
		struct snap_model *sm = &ss->snaps[i];
		if (!sm->used || sm->removing)
			continue;
		for (uint32_t k = 0; k < SNAP_NOBJ && !r->failure[0]; k++) {
			struct bs_op op = { .type = BS_READ, .oid = { .pool = r->pool, .inode = r->inode, .index = k, .snap = sm->id },
					    .len = BS, .buf = buf };
			run_ops(r, &op, 1, "a final read of a snapshot");
			snap_read_check(r, sm->id, k, buf, op_rc(&op));
		}
	}
	free(buf);
}

static void delete_heads(struct pg_sim_run *r)
{
	for (uint32_t k = 0; k < SNAP_NOBJ && !r->failure[0]; k++) {
		struct bs_op op = { .type = BS_DELETE, .oid = { .pool = r->pool, .inode = r->inode, .index = k, .snap = 0 } };
		run_ops(r, &op, 1, "a final delete");
		int rc = op_rc(&op);
		if (rc && !(rc == -ENOENT && !r->m[k].exists))
			pg_sim_failf(r, "object %u: the final delete answered %d", k, rc);
		r->m[k].exists = false;
	}
}

static int count_data(const struct store_object_info *info, void *arg)
{
	*(uint64_t *)arg += info->oid.inode != OBJECT_INODE_PG_META;
	return 0;
}

/* Every OSD holds nothing but the PGs' own records: stray copies (of
 * PGs an OSD was a member of) go a while after the PGs are clean. */
static bool only_records(void *arg)
{
	struct pg_sim_run *r = arg;
	uint64_t data = 0;
	for (int i = 0; i < NOSD; i++) {
		struct store_list_filter f = { .pool = r->pool, .any_inode = true };
		if (r->osd[i])
			store_list(osd_store(r->osd[i]), &f, count_data, &data);
	}
	return data == 0;
}

struct garbage_scan {
	struct pg_sim_run *r;
	const struct map_volume *v;
	int osd;
};

static int garbage_found(const struct store_object_info *info, void *arg)
{
	struct garbage_scan *g = arg;
	const struct cluster_map *m = bs_client_map(g->r->client);
	const struct map_pool *p = map_pool_by_id(m, info->oid.pool);
	if (info->oid.inode != g->v->inode || info->oid.snap == OBJECT_SNAP_HEAD ||
	    map_snap_clone_needed(g->v, info->oid.snap, info->version))
		return 0;
	uint32_t acting[MAP_PG_ACTING_MAX];
	size_t n = map_pg_acting(m, p, object_pg(&info->oid, p->pg_num), acting, MAP_PG_ACTING_MAX);
	for (size_t k = 0; k < n; k++)
		if (acting[k] == (uint32_t)g->osd) {
			char id[64];
			pg_sim_failf(g->r, "osd.%d holds %s (version %" PRIx64 "), which no snapshot "
				     "needs, after every snap rm said it freed all such clones",
				     g->osd, object_id_str(&info->oid, id, sizeof(id)), info->version);
			return 1;
		}
	return 0; /* a stray copy: it goes by itself */
}

/* Healed and clean: every snap rm so far answered that it freed every
 * clone no snapshot needs, so no acting member holds one. */
static void check_no_garbage(struct pg_sim_run *r)
{
	const struct map_volume *v = map_volume_by_name(bs_client_map(r->client), SNAP_VOLUME);
	for (int i = 0; i < NOSD && v && !r->failure[0]; i++) {
		struct garbage_scan g = { r, v, i };
		struct store_list_filter f = { .pool = r->pool, .inode = v->inode };
		if (r->osd[i])
			store_list(osd_store(r->osd[i]), &f, garbage_found, &g);
	}
}

#define COPIES_MAX 64 /* objects of the volume in one PG: heads and clones */

struct copy_entry {
	struct object_id oid;
	uint64_t version;
};

struct copy_list {
	struct copy_entry e[COPIES_MAX];
	uint32_t n;
};

static int copy_cmp(const void *a, const void *b)
{
	return object_id_cmp(&((const struct copy_entry *)a)->oid,
			     &((const struct copy_entry *)b)->oid);
}

static int copy_found(const struct store_object_info *info, void *arg)
{
	struct copy_list *l = arg;
	if (l->n == COPIES_MAX)
		return 1;
	l->e[l->n++] = (struct copy_entry){ info->oid, info->version };
	return 0;
}

/* Healed and clean: the acting members of each PG hold the same heads
 * and clones of the volume, at the same versions, byte for byte (reads
 * go to the primary only, so a clone made differently on a replica
 * would show only after a failover). */
static void check_copies(struct pg_sim_run *r)
{
	const struct cluster_map *m = bs_client_map(r->client);
	const struct map_pool *p = map_pool_by_id(m, r->pool);
	static struct copy_list lists[MAP_PG_ACTING_MAX];
	uint8_t *buf = aligned_buf(BS), *first = aligned_buf(BS);
	for (uint32_t pg = 0; pg < p->pg_num && !r->failure[0]; pg++) {
		uint32_t acting[MAP_PG_ACTING_MAX];
		size_t n = map_pg_acting(m, p, pg, acting, MAP_PG_ACTING_MAX);
		struct store_list_filter f = { .pool = r->pool, .inode = r->inode,
					       .pg_num = p->pg_num, .pg = pg };
		for (size_t k = 0; k < n; k++) {
			lists[k].n = 0;
			store_list(osd_store(r->osd[acting[k]]), &f, copy_found, &lists[k]);
			/* store_list's order is the store's own: compare sorted. */
			qsort(lists[k].e, lists[k].n, sizeof(lists[k].e[0]), copy_cmp);
			bool same = lists[k].n == lists[0].n;
			uint32_t i = 0;
			for (; same && i < lists[0].n; i++)
				same = object_id_equal(&lists[k].e[i].oid, &lists[0].e[i].oid) &&
				       lists[k].e[i].version == lists[0].e[i].version;
			if (!same) {
				char id[64];
				i = i ? i - 1 : 0;
				pg_sim_failf(r, "pg %x: osd.%u and osd.%u hold different objects or "
					     "versions (%u and %u objects; at %s: %" PRIx64 ", %" PRIx64
					     ")", pg, acting[0], acting[k], lists[0].n, lists[k].n,
					     object_id_str(&lists[0].e[i].oid, id, sizeof(id)),
					     lists[0].e[i].version, lists[k].e[i].version);
				break;
			}
		}
		for (uint32_t i = 0; i < lists[0].n && !r->failure[0]; i++) {
			for (size_t k = 0; k < n; k++) {
				uint64_t v = 0;
				struct store *st = osd_store(r->osd[acting[k]]);
				int rc = store_sync_op(st, r->osd_loop[acting[k]], r->w, STORE_OP_READ,
						       lists[0].e[i].oid, 0, BS, k ? buf : first, &v);
				if (rc || (k && memcmp(buf, first, BS))) {
					char id[64];
					pg_sim_failf(r, "%s: osd.%u's copy %s osd.%u's (%d)",
						     object_id_str(&lists[0].e[i].oid, id, sizeof(id)),
						     acting[k], rc ? "cannot be read, unlike" : "differs from",
						     acting[0], rc);
					break;
				}
			}
		}
	}
	free(buf);
	free(first);
}

/* Every snapshot removed and every object deleted, in random order, the
 * snapshots left read back after each step; then settled. */
static void snap_finish(struct pg_sim_run *r)
{
	struct snap_sim *ss = sim_of(r);
	ss->faults = false;
	check_no_garbage(r);
	check_copies(r);
	read_all_snapshots(r);
	struct snap_model *order[SNAP_LIVE_MAX];
	uint32_t n = 0;
	for (int i = 0; i < SNAP_LIVE_MAX; i++)
		if (ss->snaps[i].used)
			order[n++] = &ss->snaps[i];
	for (uint32_t i = n; i > 1; i--) {
		uint32_t j = (uint32_t)(pg_sim_rnd(r) % i);
		struct snap_model *t = order[i - 1];
		order[i - 1] = order[j];
		order[j] = t;
	}
	uint32_t delete_at = (uint32_t)(pg_sim_rnd(r) % (n + 1));
	for (uint32_t i = 0; i <= n && !r->failure[0]; i++) {
		if (i == delete_at)
			delete_heads(r);
		if (i < n)
			snap_remove(r, order[i]);
		read_all_snapshots(r);
	}
	if (!r->failure[0] &&
	    io_sim_run(r->w, io_sim_now_ns(r->w) + IO_SEC(120), pg_sim_all_clean, r))
		pg_sim_failf(r, "the PGs did not become clean after the removals");
	/* What is left is found by snap_check_empty. */
	io_sim_run(r->w, io_sim_now_ns(r->w) + IO_SEC(60), only_records, r);
}

struct leftovers {
	struct pg_sim_run *r;
	int osd;
	uint64_t records, records_with_block;
};

static int leftover_found(const struct store_object_info *info, void *arg)
{
	struct leftovers *l = arg;
	char id[64];
	if (info->oid.inode == OBJECT_INODE_PG_META) {
		l->records++;
		l->records_with_block += info->has_block;
		return 0;
	}
	const struct cluster_map *m = bs_client_map(l->r->client);
	const struct map_pool *p = map_pool_by_id(m, info->oid.pool);
	uint32_t acting[MAP_PG_ACTING_MAX], pg = object_pg(&info->oid, p->pg_num);
	size_t n = map_pg_acting(m, p, pg, acting, MAP_PG_ACTING_MAX);
	bool member = false;
	for (size_t k = 0; k < n; k++)
		member |= acting[k] == (uint32_t)l->osd;
	pg_sim_failf(l->r, "osd.%d still holds %s (version %" PRIx64 ", %" PRIu64
		     " bytes; pg %x, %s)",
		     l->osd, object_id_str(&info->oid, id, sizeof(id)), info->version,
		     info->written_bytes, pg, member ? "acting there" : "not acting there");
	fprintf(stderr, "osd.%d holds %s version %" PRIx64 " (pg %x, %s)\n", l->osd,
		object_id_str(&info->oid, id, sizeof(id)), info->version, pg,
		member ? "acting" : "not acting");
	return 0;
}

/* Every OSD's store holds the PGs' own records and nothing else: one
 * block each, no other block used, and its offline check clean. */
static void snap_check_empty(struct pg_sim_run *r)
{
	struct snap_sim *ss = sim_of(r);
	FILE *devnull = fopen("/dev/null", "w");
	assert_non_null(devnull);
	for (int i = 0; i < NOSD && !r->failure[0]; i++) {
		char dev[32], why[256];
		struct io_loop *loop;
		struct store *st;
		snprintf(dev, sizeof(dev), "/dev/osd%d", i);
		assert_int_equal(io_loop_create_sim(r->w, pg_sim_osd_host[i], &loop), 0);
		struct store_params sp;
		store_params_default(&sp);
		if (store_open(loop, dev, &sp, &st, why, sizeof(why)))
			fail_msg("seed %" PRIu64 ": reopen osd.%d: %s", r->seed, i, why);
		struct leftovers l = { r, i, 0, 0 };
		struct store_list_filter f = { .pool = r->pool, .any_inode = true };
		store_list(st, &f, leftover_found, &l);
		struct store_usage u;
		store_usage(st, &u);
		if (!r->failure[0] && (u.objects != l.records || u.blocks_used != l.records_with_block ||
				       l.records_with_block != l.records))
			pg_sim_failf(r, "osd.%d: %" PRIu64 " objects and %" PRIu64 " blocks used, for %"
				     PRIu64 " PG records (%" PRIu64 " with a block)",
				     i, u.objects, u.blocks_used, l.records, l.records_with_block);
		store_close(st);
		int rc = store_fsck(loop, dev, devnull, false);
		if (rc && !r->failure[0])
			pg_sim_failf(r, "osd.%d: store_fsck found problems: %d", i, rc);
		io_loop_destroy(loop);
	}
	fclose(devnull);
	printf("seed %" PRIu64 ": %" PRIu64 " snapshots taken, %" PRIu64 " removed, %" PRIu64
	       " snapshot reads checked (%" PRIu64 " of removed ones not), %" PRIu64
	       " clones freed\n",
	       r->seed, ss->created, ss->removed, ss->reads_checked, ss->reads_unchecked,
	       ss->clones_freed);
	total_reads_checked += ss->reads_checked;
	total_clones_freed += ss->clones_freed;
}

static const struct pg_sim_hooks snap_hooks = {
	.setup = snap_setup,	       .step = snap_step,	   .issue = snap_issue,
	.own_done = snap_own_done,     .head_done = snap_head_done, .finish = snap_finish,
	.check = snap_check_empty,     .fini = snap_fini,	   .replay = " PG_SIM_SNAP=1",
};

static void test_pg_snap_sim(void **state)
{
	(void)state;
	const char *first = getenv("PG_SIM_SNAP_FIRST");
	pg_sim_run_mode(PG_SIM_PLAIN, &snap_hooks, "PG_SIM_SNAP_SEEDS", 10,
			first ? strtoull(first, NULL, 10) : 9000, "PG_SIM_SNAP", NULL);
	const char *ns = getenv("PG_SIM_SNAP_SEEDS");
	if (!getenv("PG_SIM_SEED") && (!ns || atoi(ns) > 0)) {
		if (!total_reads_checked || !total_clones_freed)
			fail_msg("no snapshot read was checked or no clone freed: the run did not "
				 "test what it is for");
	}
}

int main(void)
{
	log_set_level(getenv("PG_SIM_LOG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERROR);
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_pg_snap_sim) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
