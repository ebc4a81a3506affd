/* The harness of the PG simulations (pg_sim.h): a monitor, four OSDs and
 * a client on simulated hosts from one seed, the checked object workload,
 * the faults, and the checks at the end. test_pg_sim.c and
 * test_pg_snap_sim.c drive it. */
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

#include "common/cluster/monsess.h"
#include "common/ec.h"
#include "common/ec_stripe.h"
#include "common/log.h"
#include "common/msgr.h"
#include "common/keyring.h"
#include "mon/mon.h"
#include "osd/osd.h"
#include "osd/pg.h"
#include "osd/store_int.h"
#include "osd/store.h"
#include "pg_sim.h"
#include "../unit/osd/store_test_util.h"

const char *pg_sim_osd_host[NOSD_MAX] = { "10.0.2.1", "10.0.2.2", "10.0.2.3",
					   "10.0.2.4", "10.0.2.5", "10.0.2.6" };
uint32_t pg_sim_log_entries;
uint64_t pg_sim_peerings_log_total;

uint64_t pg_sim_rnd(struct pg_sim_run *r)
{
	return io_sim_random(r->w);
}

void pg_sim_failf(struct pg_sim_run *r, const char *fmt, ...)
{
	if (r->failure[0])
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = snprintf(r->failure, sizeof(r->failure), "seed %" PRIu64 " at %.3f s: ", r->seed,
			 io_sim_now_ns(r->w) / 1e9);
	vsnprintf(r->failure + n, sizeof(r->failure) - (size_t)n, fmt, ap);
	va_end(ap);
}

void pg_sim_fill(uint8_t *buf, uint64_t tag, uint32_t chunk)
{
	uint64_t x = tag * 0x9E3779B97F4A7C15ULL + chunk + 1;
	memcpy(buf, &tag, 8);
	memcpy(buf + 8, &chunk, 4);
	for (uint32_t i = 16; i < 4096; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(buf + i, &x, 8);
	}
}

bool pg_sim_chunk_ok(const uint8_t *buf, uint64_t tag, uint32_t chunk)
{
	uint8_t want[4096] = { 0 };
	if (tag)
		pg_sim_fill(want, tag, chunk);
	return memcmp(buf, want, 4096) == 0;
}

/* --- the admin session -------------------------------------------------------------- */

static void admin_message(struct msgr_conn *conn, struct msg *msg)
{
	struct pg_sim_admin *a = msgr_ctx(msgr_conn_msgr(conn));
	monsess_handle(a->mon, conn, msg);
}

static void admin_event(struct msgr_conn *conn, enum msgr_event ev, int err)
{
	struct pg_sim_admin *a = msgr_ctx(msgr_conn_msgr(conn));
	(void)err;
	monsess_event(a->mon, conn, ev);
}

static const struct msgr_handler admin_handler = { .on_message = admin_message,
						   .on_event = admin_event };

static void admin_reply(void *ctx, int rc, const char *text, uint64_t epoch)
{
	struct pg_sim_admin *a = ctx;
	a->replied = true;
	a->rc = rc;
	a->epoch = epoch;
	snprintf(a->text, sizeof(a->text), "%s", text ? text : "");
}

static void admin_tick(struct io_timer *t)
{
	struct pg_sim_admin *a = t->ctx;
	monsess_tick(a->mon, io_now_ns(msgr_loop(a->msgr)));
	io_timer_arm(msgr_loop(a->msgr), &a->tick, IO_MS(100));
}

static bool admin_done(void *arg)
{
	return ((struct pg_sim_admin *)arg)->replied;
}

/* Runs CMD to its answer (or gives up after 30 virtual seconds). */
int pg_sim_admin_run(struct pg_sim_run *r, struct map_cmd *cmd)
{
	struct pg_sim_admin *a = &r->admin;
	if (monsess_command(a->mon, cmd))
		return -EBUSY;
	a->replied = false;
	io_sim_run(r->w, io_sim_now_ns(r->w) + IO_SEC(30), admin_done, a);
	return a->replied ? a->rc : -ETIMEDOUT;
}

/* --- daemons -------------------------------------------------------------------------- */

void pg_sim_osd_up(struct pg_sim_run *r, int i, bool mkfs)
{
	char why[256], dev[32];
	snprintf(dev, sizeof(dev), "/dev/osd%d", i);
	assert_int_equal(io_loop_create_sim(r->w, pg_sim_osd_host[i], &r->osd_loop[i]), 0);
	if (mkfs) {
		struct store_mkfs_params mp = { .size = r->fill ? FULL_DISK : 32u << 20,
						.block_size = BS, .journal_size = 4u << 20 };
		assert_int_equal(store_mkfs(r->osd_loop[i], dev, &mp, why, sizeof(why)), 0);
	}
	if (osd_start(r->osd_loop[i], r->cfg, (uint32_t)i, r->keyring, &r->osd[i], why,
		      sizeof(why)))
		fail_msg("seed %" PRIu64 ": osd.%d: %s", r->seed, i, why);
}

/* After every step of the simulation: each running OSD's PG and store
 * invariants (osd/pg_int.h, osd/store_int.h). */
static void check_osds(void *arg)
{
	struct pg_sim_run *r = arg;
	for (int i = 0; i < r->n_osd; i++) {
		if (!r->osd[i])
			continue;
		osd_pg_check(r->osd[i]);
	}
}

void pg_sim_count_peerings(struct pg_sim_run *r, int i)
{
	struct osd_pg_summary s;
	osd_pg_summary(r->osd[i], &s);
	r->peerings_log += s.peerings_log;
	r->peerings_full += s.peerings_full;
	r->peering_bytes += s.peering_bytes;
}

void pg_sim_osd_stop(struct pg_sim_run *r, int i)
{
	pg_sim_count_peerings(r, i);
	osd_stop(r->osd[i]);
	io_loop_destroy(r->osd_loop[i]);
	r->osd[i] = NULL;
	r->osd_loop[i] = NULL;
}

/* The OSD's process dies; with POWER its host loses power too. */
static void osd_crash(struct pg_sim_run *r, int i, bool power)
{
	pg_sim_count_peerings(r, i);
	io_loop_destroy(r->osd_loop[i]);
	osd_forget(r->osd[i]);
	r->osd[i] = NULL;
	r->osd_loop[i] = NULL;
	if (power)
		io_sim_power_fail(r->w, pg_sim_osd_host[i]);
}

static void write_files(struct pg_sim_run *r)
{
	snprintf(r->dir, sizeof(r->dir), "/tmp/basalt-pgsim.XXXXXX");
	assert_non_null(mkdtemp(r->dir));
	snprintf(r->keyring, sizeof(r->keyring), "%s/keyring", r->dir);
	FILE *f = fopen(r->keyring, "w");
	assert_non_null(f);
	const char *key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
	fprintf(f, "[mon.]\nkey = %s\n[client.admin]\nkey = %s\n", key, key);
	for (int i = 0; i < r->n_osd; i++)
		fprintf(f, "[osd.%d]\nkey = %s\n", i, key);
	fclose(f);
	char conf[2048];
	int n = snprintf(conf, sizeof(conf),
			 "[global]\nfsid = 00112233445566778899aabbccddeeff\n"
			 "mon_tick = 20ms\nmon_election_timeout = 300ms\nmon_heartbeat = 60ms\n"
			 "osd_heartbeat_interval = 200ms\nosd_heartbeat_grace = 1s\n"
			 "osd_beacon_interval = 500ms\nmon_osd_beacon_grace = 3s\n"
			 "mon_osd_down_out_interval = 0\nmon_osd_flap_backoff = 100ms\n"
			 "mon_osd_flap_backoff_max = 400ms\nosd_recovery_max_bytes_per_sec = 0\n"
			 "[mon.a]\naddr = %s:6789\ndata = %s/mon.a\n",
			 MON_HOST, r->dir);
	if (r->log_entries)
		n += snprintf(conf + n, sizeof(conf) - (size_t)n,
			      "[global]\nosd_pg_log_max_entries = %u\n", r->log_entries);
	for (int i = 0; i < r->n_osd; i++)
		n += snprintf(conf + n, sizeof(conf) - (size_t)n,
			      "[osd.%d]\ndevice = /dev/osd%d\naddr = %s:6800\nhost = h%d\n", i, i,
			      pg_sim_osd_host[i], i);
	char why[256];
	if (cfg_load_string("pgsim.conf", conf, &r->cfg, why, sizeof(why)))
		fail_msg("config: %s", why);
}

static void cleanup_files(struct pg_sim_run *r)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", r->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", r->dir);
}

/* --- the workload ------------------------------------------------------------------------ */

/* The model after workload operation S answered RC, checking a read. */
static void model_update(struct pg_sim_run *r, struct pg_sim_slot *s, int rc)
{
	struct bs_op *op = &s->op;
	struct pg_sim_obj *m = &r->m[s->obj];
	if (getenv("PG_SIM_TRACE") && (uint32_t)atoi(getenv("PG_SIM_TRACE")) == s->obj)
		fprintf(stderr, "TRACE %.6f obj %u type %d rc %d version %" PRIx64 " tag %" PRIu64
				" [%u+%u] read tag %" PRIu64 "\n",
			io_sim_now_ns(r->w) / 1e9, s->obj, op->type, rc, op->version,
			op->type == BS_WRITE ? s->tag : 0, s->first, s->n,
			op->type == BS_READ && !rc ? *(uint64_t *)(s->buf + 4096) : 0);
	if (rc == -ENOSPC && r->fill && op->type == BS_WRITE) {
		m->unknown = true; /* refused, but it may have landed somewhere */
		r->enospc++;
	} else if (rc && !(rc == -ENOENT && op->type != BS_WRITE))
		pg_sim_failf(r, "object %u: operation %d failed: %d", s->obj, op->type, rc);
	else if (op->type == BS_WRITE) {
		if (!m->exists)
			memset(m->tags, 0, sizeof(m->tags));
		m->exists = true;
		for (uint32_t c = s->first; c < s->first + s->n; c++)
			m->tags[c] = s->tag;
		if (s->first == 0 && s->n == CHUNKS)
			m->unknown = false; /* all of it is known again */
		r->acked++;
	} else if (op->type == BS_DELETE) {
		if (rc == -ENOENT && m->exists && !m->unknown)
			pg_sim_failf(r, "object %u: the delete found nothing, but it was written", s->obj);
		m->exists = false;
		m->unknown = false;
		r->acked++;
	} else if (m->unknown) {
		r->reads++; /* answered (0 or -ENOENT) is all that can be said */
	} else {
		r->reads++;
		if (rc == -ENOENT && m->exists)
			pg_sim_failf(r, "object %u: an acknowledged write is lost (no object)", s->obj);
		else if (rc == 0 && !m->exists)
			pg_sim_failf(r, "object %u: a deleted object came back", s->obj);
		for (uint32_t c = 0; rc == 0 && m->exists && c < CHUNKS; c++)
			if (!pg_sim_chunk_ok(s->buf + c * 4096, m->tags[c], c)) {
				uint64_t got;
				memcpy(&got, s->buf + c * 4096, 8);
				pg_sim_failf(r, "object %u chunk %u: read write %" PRIu64
					 ", the last acknowledged is %" PRIu64,
				      s->obj, c, got, m->tags[c]);
				break;
			}
	}
}

static void op_done(struct bs_op *op, int rc)
{
	struct pg_sim_slot *s = op->ctx;
	struct pg_sim_run *r = s->r;
	if (s->own) {
		r->hooks->own_done(r, s, rc);
		s->own = false;
	} else {
		model_update(r, s, rc);
		if (r->hooks && r->hooks->head_done)
			r->hooks->head_done(r, s, rc);
		r->m[s->obj].busy = false;
	}
	s->used = false;
	r->inflight--;
	pg_sim_issue(r);
}

void pg_sim_start_op(struct pg_sim_run *r, struct pg_sim_slot *s, uint32_t obj, int kind)
{
	memset(&s->op, 0, sizeof(s->op));
	s->obj = obj;
	s->used = true;
	s->own = false;
	s->started = ++r->op_seq;
	r->m[obj].busy = true;
	r->inflight++;
	s->op.oid = (struct object_id){ r->pool, r->inode, obj, 0, OBJECT_SHARD_WHOLE };
	s->op.done = op_done;
	s->op.ctx = s;
	if (kind < 30) {
		s->op.type = BS_READ;
		s->op.len = BS;
		s->op.buf = s->buf;
	} else if (kind < (r->fill ? 50 : 38)) {
		s->op.type = BS_DELETE; /* the full-disk run makes room more often */
	} else {
		s->op.type = BS_WRITE;
		s->first = (uint32_t)(pg_sim_rnd(r) % CHUNKS);
		s->n = 1 + (uint32_t)(pg_sim_rnd(r) % (CHUNKS - s->first));
		if (kind > 80)
			s->first = 0, s->n = CHUNKS;
		s->tag = ++r->next_tag;
		for (uint32_t c = 0; c < s->n; c++)
			pg_sim_fill(s->buf + c * 4096, s->tag, s->first + c);
		s->op.offset = s->first * 4096;
		s->op.len = s->n * 4096;
		s->op.buf = s->buf;
	}
	bs_submit(r->client, &s->op);
}

void pg_sim_submit_own(struct pg_sim_run *r, struct pg_sim_slot *s)
{
	s->used = true;
	s->own = true;
	s->started = ++r->op_seq;
	s->op.done = op_done;
	s->op.ctx = s;
	r->inflight++;
	bs_submit(r->client, &s->op);
}

void pg_sim_issue(struct pg_sim_run *r)
{
	for (int i = 0; i < QD && r->issuing && !r->failure[0]; i++) {
		if (r->slots[i].used)
			continue;
		if (r->hooks && r->hooks->issue && r->hooks->issue(r, &r->slots[i]))
			continue;
		uint32_t obj = (uint32_t)(pg_sim_rnd(r) % r->nobj);
		if (!r->m[obj].busy)
			pg_sim_start_op(r, &r->slots[i], obj, (int)(pg_sim_rnd(r) % 100));
	}
}

/* --- convergence ------------------------------------------------------------------------- */

bool pg_sim_all_clean(void *arg)
{
	struct pg_sim_run *r = arg;
	uint32_t clean = 0;
	const struct cluster_map *m = bs_client_map(r->client);
	for (uint32_t i = 0; i < (uint32_t)r->n_osd; i++)
		if (i >= m->n_osds || !m->osds[i].up || !m->osds[i].in)
			return false;
	for (int i = 0; i < r->n_osd; i++) {
		if (!r->osd[i])
			return false;
		struct osd_pg_summary s;
		osd_pg_summary(r->osd[i], &s);
		if (s.clean != s.primary || s.map_epoch != m->epoch)
			return false;
		clean += s.clean;
	}
	return clean == PG_NUM && r->inflight == 0;
}

struct pg_sim_one {
	bool done;
	int rc;
};

static void one_done(struct bs_op *op, int rc)
{
	struct pg_sim_one *one = op->ctx;
	one->done = true;
	one->rc = rc;
}

static bool one_finished(void *arg)
{
	return ((struct pg_sim_one *)arg)->done;
}

int pg_sim_run_op(struct pg_sim_run *r, struct bs_op *op)
{
	struct pg_sim_one one = { false, 0 };
	op->done = one_done;
	op->ctx = &one;
	bs_submit(r->client, op);
	assert_false(one.done); /* never answered from inside the submit */
	io_sim_run(r->w, io_sim_now_ns(r->w) + IO_SEC(60), one_finished, &one);
	assert_true(one.done);
	return one.rc;
}

bool pg_sim_quiet(void *arg)
{
	struct pg_sim_run *r = arg;
	return r->inflight == 0 || r->failure[0];
}

/* An EC object's chunks on the acting members of its PG (ACTING, each
 * storing chunk SHARDS[k]): all there or none, at one version, without
 * a pending write left, parity matching the data, the data the model's. */
static void check_chunks(struct pg_sim_run *r, struct store **st, struct io_loop **loop,
			 uint32_t obj, const uint32_t *acting, const uint8_t *shards, size_t n)
{
	struct object_id oid = { r->pool, r->inode, obj, 0, OBJECT_SHARD_WHOLE };
	const struct pg_sim_obj *mo = &r->m[obj];
	struct ec_code code;
	unsigned ec_k = r->ec_k;
	assert_int_equal(ec_code_init(&code, ec_k, r->ec_m), 0);
	if (n != ec_k + r->ec_m) {
		pg_sim_failf(r, "object %u's PG has %zu acting OSDs at the end", obj, n);
		return;
	}
	uint8_t *cols[EC_MAX_CHUNKS], *scratch = aligned_buf(BS), *data = aligned_buf(BS);
	bool held = mo->exists;
	uint64_t v0 = 0;
	for (size_t k = 0; k < n; k++)
		cols[shards[k]] = aligned_buf(BS);
	for (size_t k = 0; k < n && !r->failure[0]; k++) {
		uint32_t id = acting[k];
		struct object_id shard = object_shard(&oid, shards[k]), pending = shard;
		pending.snap = OBJECT_SNAP_PENDING;
		struct store_object_info info;
		if (store_stat(st[id], &pending, &info) == 0)
			pg_sim_failf(r, "object %u: osd.%u kept a pending write of chunk %u", obj, id,
				     shards[k]);
		uint64_t v = 0;
		int rc = store_sync_op(st[id], loop[id], r->w, STORE_OP_READ, shard, 0, BS,
				       cols[shards[k]], &v);
		if (k == 0 && mo->unknown)
			held = rc == 0;
		if ((rc == 0) != held)
			pg_sim_failf(r, "object %u: osd.%u %s chunk %u (%d)", obj, id,
				     rc ? "lacks" : "still holds", shards[k], rc);
		else if (rc == 0 && k && v != v0)
			pg_sim_failf(r, "object %u: chunk %u at version %" PRIx64 ", another at %" PRIx64,
				     obj, shards[k], v, v0);
		v0 = v;
	}
	if (!r->failure[0] && held) {
		if (ec_verify(&code, BS, cols, scratch))
			pg_sim_failf(r, "object %u: its parity is not its data's", obj);
		struct ec_window w = ec_stripe_window(ec_k, 0, BS);
		ec_stripe_gather(ec_k, 0, BS, data, &w, cols);
		for (uint32_t c = 0; c < CHUNKS && !mo->unknown && !r->failure[0]; c++)
			if (!pg_sim_chunk_ok(data + c * 4096, mo->tags[c], c))
				pg_sim_failf(r, "object %u: unit %u differs from the last acknowledged "
					     "write", obj, c);
	}
	for (size_t k = 0; k < n; k++)
		free(cols[shards[k]]);
	free(scratch);
	free(data);
}

/* The acting OSDs of object OBJ's PG in the client's map as it is now,
 * with their positions (an EC pool's chunks): how many. */
static size_t obj_acting(struct pg_sim_run *r, uint32_t obj, uint32_t *acting, uint8_t *shards)
{
	const struct cluster_map *m = bs_client_map(r->client);
	const struct map_pool *p = map_pool_by_id(m, r->pool);
	struct object_id oid = { .pool = r->pool, .inode = r->inode, .index = obj };
	return p ? map_pg_acting_shards(m, p, object_pg(&oid, p->pg_num), acting, shards,
					MAP_PG_ACTING_MAX)
		 : 0;
}

/* Every OSD's store, opened after the run: the acting members of each
 * object's PG hold the same version and bytes, and those match the
 * model (or, erasure-coded, check_chunks). */
static void check_replicas(struct pg_sim_run *r)
{
	struct store *st[NOSD_MAX];
	struct io_loop *loop[NOSD_MAX];
	char why[256], dev[32];
	/* Where each object lives, from the map as it is now. */
	uint32_t acting[NOBJ_FULL][MAP_PG_ACTING_MAX];
	uint8_t shards[NOBJ_FULL][MAP_PG_ACTING_MAX];
	size_t n_acting[NOBJ_FULL];
	for (uint32_t obj = 0; obj < r->nobj; obj++)
		n_acting[obj] = obj_acting(r, obj, acting[obj], shards[obj]);
	for (int i = 0; i < r->n_osd; i++) {
		pg_sim_count_peerings(r, i);
		io_loop_destroy(r->osd_loop[i]);
		osd_forget(r->osd[i]);
		r->osd[i] = NULL;
		snprintf(dev, sizeof(dev), "/dev/osd%d", i);
		assert_int_equal(io_loop_create_sim(r->w, pg_sim_osd_host[i], &loop[i]), 0);
		r->osd_loop[i] = loop[i];
		struct store_params sp;
		store_params_default(&sp);
		if (store_open(loop[i], dev, &sp, &st[i], why, sizeof(why)))
			fail_msg("seed %" PRIu64 ": reopen osd.%d: %s", r->seed, i, why);
	}
	uint8_t *buf = aligned_buf(BS), *first = aligned_buf(BS);
	for (uint32_t obj = 0; obj < r->nobj && !r->failure[0]; obj++) {
		struct object_id oid = { r->pool, r->inode, obj, 0, OBJECT_SHARD_WHOLE };
		const struct pg_sim_obj *mo = &r->m[obj];
		size_t n = n_acting[obj];
		if (r->ec) {
			check_chunks(r, st, loop, obj, acting[obj], shards[obj], n);
			continue;
		}
		if (n != 3)
			pg_sim_failf(r, "object %u's PG has %zu acting OSDs at the end", obj, n);
		uint64_t v0 = 0;
		bool held = mo->exists;
		for (size_t k = 0; k < n && !r->failure[0]; k++) {
			uint32_t id = acting[obj][k];
			uint64_t v = 0;
			int rc = store_sync_op(st[id], loop[id], r->w, STORE_OP_READ, oid, 0, BS, buf, &v);
			if (k == 0 && mo->unknown)
				held = rc == 0; /* whatever it is, every copy is the same */
			if ((rc == 0) != held) {
				pg_sim_failf(r, "object %u: osd.%u %s it (%d)", obj, id,
				      rc ? "lacks" : "still holds", rc);
				break;
			}
			if (rc)
				continue;
			if (k == 0) {
				v0 = v;
				memcpy(first, buf, BS);
			} else if (v != v0 || memcmp(buf, first, BS)) {
				pg_sim_failf(r, "object %u: osd.%u has version %" PRIx64 ", osd.%u %" PRIx64
					 "%s", obj, acting[obj][0], v0, id, v,
				      v == v0 ? " with other bytes" : "");
			}
			for (uint32_t c = 0; c < CHUNKS && !mo->unknown && !r->failure[0]; c++)
				if (!pg_sim_chunk_ok(buf + c * 4096, mo->tags[c], c))
					pg_sim_failf(r, "object %u: osd.%u chunk %u differs from the last "
						 "acknowledged write",
					      obj, id, c);
		}
	}
	free(buf);
	free(first);
	for (int i = 0; i < r->n_osd; i++) {
		store_close(st[i]);
		io_loop_destroy(loop[i]);
		r->osd_loop[i] = NULL;
	}
}

/* --- listing an EC pool ------------------------------------------------------------------ */

static const struct cluster_map *list_map(void *ctx)
{
	return bs_client_map(((struct pg_sim_run *)ctx)->client);
}

static int list_run(void *ctx, struct bs_op *op)
{
	return pg_sim_run_op(ctx, op);
}

struct list_seen {
	struct pg_sim_run *r;
	bool seen[NOBJ_FULL];
};

static int list_one_seen(const struct object_id *oid, uint64_t version, uint64_t size, void *arg)
{
	struct list_seen *ls = arg;
	struct pg_sim_run *r = ls->r;
	(void)version;
	if (oid->shard || oid->snap || oid->inode != r->inode || oid->index >= r->nobj)
		pg_sim_failf(r, "the listing names %" PRIx64 ":%" PRIx64 "@%x#%u, not an object",
			     oid->inode, oid->index, oid->snap, oid->shard);
	else if (ls->seen[oid->index])
		pg_sim_failf(r, "the listing names object %" PRIu64 " twice", oid->index);
	else if (size % (r->ec_k * 4096u) || size > (uint64_t)r->ec_k * BS)
		pg_sim_failf(r, "object %" PRIu64 " listed with %" PRIu64 " bytes", oid->index, size);
	else
		ls->seen[oid->index] = true;
	return 0;
}

/* An EC pool lists its objects whole (no chunk, no pending write), each
 * once, with their rows' bytes: exactly the objects the model holds. */
static void check_ec_listing(struct pg_sim_run *r)
{
	struct list_seen ls = { .r = r };
	struct bs_object_list_io io = { list_map, list_run, r };
	char why[256] = "";
	int rc = bs_object_list_io(&io, "rbd", list_one_seen, &ls, why, sizeof(why));
	if (rc) {
		pg_sim_failf(r, "listing the pool: %d (%s)", rc, why);
		return;
	}
	for (uint32_t obj = 0; obj < r->nobj && !r->failure[0]; obj++)
		if (ls.seen[obj] != r->m[obj].exists && !r->m[obj].unknown)
			pg_sim_failf(r, "object %u is %slisted", obj, ls.seen[obj] ? "" : "not ");
}

/* --- one seed ---------------------------------------------------------------------------- */

void pg_sim_fault_step(struct pg_sim_run *r)
{
	int live = 0, cut_a = -1;
	for (int i = 0; i < r->n_osd; i++)
		live += r->osd[i] != NULL;
	uint64_t k = pg_sim_rnd(r) % 100;
	int i = (int)(pg_sim_rnd(r) % (uint64_t)r->n_osd);
	if (k < 30 && r->osd[i] && live > 2) {
		uint64_t how = pg_sim_rnd(r) % 3;
		if (how == 2)
			pg_sim_osd_stop(r, i); /* its logs kept: it peers by them */
		else
			osd_crash(r, i, how);
	} else if (k < 60 && !r->osd[i]) {
		pg_sim_osd_up(r, i, false);
	} else if (k < 72) {
		/* A link between two hosts goes dark for a while. */
		const char *hosts[NOSD_MAX + 2] = { MON_HOST, CLIENT_HOST };
		for (int h = 0; h < r->n_osd; h++)
			hosts[2 + h] = pg_sim_osd_host[h];
		uint64_t n_hosts = 2 + (uint64_t)r->n_osd;
		cut_a = (int)(pg_sim_rnd(r) % n_hosts);
		int b = (int)(pg_sim_rnd(r) % n_hosts);
		if (b != cut_a) {
			io_sim_cut(r->w, hosts[cut_a], hosts[b], true);
			io_sim_run(r->w, io_sim_now_ns(r->w) + IO_MS(300 + pg_sim_rnd(r) % 2500), NULL, NULL);
			io_sim_cut(r->w, hosts[cut_a], hosts[b], false);
		}
	} else if (k < 80) {
		io_sim_set_reset_rate(r->w, pg_sim_rnd(r) % 2 ? 0 : 2000);
	} else if (k < 90) {
		/* Out (data moves to the spare OSD) or back in. */
		struct map_cmd c = { .type = r->out[i] ? MAP_CMD_OSD_IN : MAP_CMD_OSD_OUT, .osd = (uint32_t)i };
		int outs = 0;
		for (int x = 0; x < r->n_osd; x++)
			outs += r->out[x];
		if (!r->out[i] && outs)
			return; /* keep three in */
		if (pg_sim_admin_run(r, &c) == 0)
			r->out[i] = !r->out[i];
	}
}

struct pg_sim_run *pg_sim_start(uint64_t seed, bool start_osds, uint64_t op_timeout_ms,
			     enum pg_sim_mode mode)
{
	struct pg_sim_run *r = calloc(1, sizeof(*r));
	char why[256];
	bool fill = mode == PG_SIM_FILL;
	r->seed = seed;
	r->fill = fill;
	r->rot = mode == PG_SIM_ROT || mode == PG_SIM_EC_ROT;
	r->ec = mode == PG_SIM_EC || mode == PG_SIM_EC42 || mode == PG_SIM_EC_ROT;
	/* The damaged-disk EC run is 4+2: a chunk gone bad while another
	 * member is away is one loss of two (in 2+1 it would be data lost,
	 * as with two bad copies of three). */
	bool six = mode == PG_SIM_EC42 || mode == PG_SIM_EC_ROT;
	r->n_osd = six ? NOSD_MAX : NOSD;
	r->ec_k = six ? 4 : 2;
	r->ec_m = six ? 2 : 1;
	r->nobj = fill ? NOBJ_FULL : NOBJ;
	r->inode = PG_SIM_INODE;
	r->log_entries = pg_sim_log_entries;
	if (!r->log_entries && mode == PG_SIM_PLAIN && seed % 2 == 0)
		r->log_entries = 8 + (uint32_t)(seed / 2 % 9);
	assert_int_equal(io_sim_world_create(seed, &r->w), 0);
	io_sim_set_latency(r->w, IO_US(30), IO_US(300));
	io_sim_set_check(r->w, check_osds, r);
	write_files(r);
	assert_int_equal(mon_mkfs(r->cfg, "a", why, sizeof(why)), 0);
	assert_int_equal(io_loop_create_sim(r->w, MON_HOST, &r->mon_loop), 0);
	if (mon_start(r->mon_loop, r->cfg, "a", r->keyring, &r->mon, why, sizeof(why)))
		fail_msg("mon: %s", why);
	for (int i = 0; i < r->n_osd && start_osds; i++)
		pg_sim_osd_up(r, i, true);
	assert_int_equal(io_loop_create_sim(r->w, CLIENT_HOST, &r->client_loop), 0);
	int n = 0;
	assert_int_equal(mon_members(r->cfg, r->members, &n, why, sizeof(why)), 0);
	assert_int_equal(keyring_load(r->keyring, &r->kr, why, sizeof(why)), 0);
	struct msgr_params mp;
	msgr_params_default(&mp);
	mp.name = "client.admin";
	mp.keyring = r->kr;
	mp.handler = &admin_handler;
	mp.ctx = &r->admin;
	assert_int_equal(msgr_create(r->client_loop, &mp, &r->admin.msgr), 0);
	struct monsess_params ms = { .msgr = r->admin.msgr, .members = r->members, .n_members = n,
				     .on_reply = admin_reply, .ctx = &r->admin };
	assert_int_equal(monsess_create(&ms, &r->admin.mon), 0);
	io_timer_init(&r->admin.tick, admin_tick, &r->admin);
	io_timer_arm(r->client_loop, &r->admin.tick, 0);
	struct map_cmd pool = { .type = MAP_CMD_POOL_CREATE, .name = "rbd" };
	pool.pool = (struct map_pool){ .type = MAP_POOL_REPLICATED, .size = 3, .min_size = 2,
				       .pg_num = PG_NUM, .block_size = BS };
	if (r->ec)
		pool.pool = (struct map_pool){ .type = MAP_POOL_EC, .ec_k = r->ec_k,
					       .ec_m = r->ec_m, .pg_num = PG_NUM,
					       .block_size = r->ec_k * BS };
	int rc = pg_sim_admin_run(r, &pool);
	if (rc)
		fail_msg("seed %" PRIu64 ": pool create: %d", seed, rc);
	struct bs_client_params cp = { .keyring = r->keyring, .attempt_timeout_ms = 3000,
				       .op_timeout_ms = op_timeout_ms };
	assert_int_equal(bs_client_create(r->client_loop, r->cfg, &cp, &r->client, why, sizeof(why)),
			 0);
	for (int i = 0; i < QD; i++) {
		r->slots[i].r = r;
		r->slots[i].buf = aligned_buf(BS);
	}
	return r;
}

/* Tears the world down (the client first: what it has in flight fails). */
void pg_sim_stop(struct pg_sim_run *r)
{
	io_sim_set_check(r->w, NULL, NULL); /* the OSDs go first */
	bs_client_destroy(r->client);
	io_timer_disarm(r->client_loop, &r->admin.tick);
	monsess_destroy(r->admin.mon);
	msgr_destroy(r->admin.msgr);
	keyring_free(r->kr);
	for (int i = 0; i < r->n_osd; i++)
		if (r->osd[i]) {
			io_loop_destroy(r->osd_loop[i]);
			osd_forget(r->osd[i]);
		} else if (r->osd_loop[i]) {
			io_loop_destroy(r->osd_loop[i]);
		}
	mon_stop(r->mon);
	io_loop_destroy(r->mon_loop);
	io_loop_destroy(r->client_loop);
	io_sim_world_destroy(r->w);
	for (int i = 0; i < QD; i++)
		free(r->slots[i].buf);
	if (r->hooks && r->hooks->fini)
		r->hooks->fini(r);
	cfg_free(r->cfg);
	cleanup_files(r);
}

/* The full-disk run's healing, as an operator would: half the objects
 * deleted, so that recovery has room everywhere to finish — a PG that
 * must recover into a full member before it serves waits for that. The
 * deletes go out beside what is still in flight, a slot at a time. */
static void make_room(struct pg_sim_run *r)
{
	uint32_t obj = 0;
	uint64_t end = io_sim_now_ns(r->w) + IO_SEC(120);
	while (obj < r->nobj && !r->failure[0] && io_sim_now_ns(r->w) < end) {
		for (int i = 0; i < QD && obj < r->nobj; i++) {
			if (r->slots[i].used)
				continue;
			if (!r->m[obj].busy)
				pg_sim_start_op(r, &r->slots[i], obj, 30);
			obj += 2;
		}
		io_sim_run(r->w, io_sim_now_ns(r->w) + IO_MS(100), NULL, NULL);
	}
}

/* Damages one copy of a random live object that was not damaged yet, on
 * a live OSD: flips bits in a 4 KiB chunk, makes a sector unreadable, or
 * drops the next write to its block. */
static bool damage_one_kind(struct pg_sim_run *r, bool latent_only);

static bool damage_one(struct pg_sim_run *r)
{
	return damage_one_kind(r, false);
}

/* LATENT_ONLY: damage that shows without a write (no lost write). */
static bool damage_one_kind(struct pg_sim_run *r, bool latent_only)
{
	uint32_t obj = (uint32_t)(pg_sim_rnd(r) % r->nobj);
	if (!r->m[obj].exists || r->damaged[obj])
		return false;
	struct object_id oid = { r->pool, r->inode, obj, 0, OBJECT_SHARD_WHOLE };
	uint32_t acting[MAP_PG_ACTING_MAX];
	uint8_t shards[MAP_PG_ACTING_MAX];
	size_t n = obj_acting(r, obj, acting, shards);
	if (n < (r->ec ? r->ec_k + r->ec_m : 3)) {
		return false; /* a minority of what there is: one of three */
	}
	size_t pick = pg_sim_rnd(r) % n;
	uint32_t id = acting[pick];
	uint64_t off;
	bool parity = r->ec && shards[pick] >= r->ec_k;
	if (r->ec) {
		/* A data chunk (a read finds it); parity only at the end, when
		 * the scrubs run (no read looks at it while it is healthy). */
		if (parity && !latent_only)
			return false;
		oid = object_shard(&oid, shards[pick]);
	}
	if (!r->osd[id] || store_object_locate(osd_store(r->osd[id]), &oid, &off))
		return false; /* down, or all of it still journaled */
	char dev[32];
	snprintf(dev, sizeof(dev), "/dev/osd%u", id);
	uint64_t kind = pg_sim_rnd(r) % (latent_only ? 2 : 3), chunk = pg_sim_rnd(r) % CHUNKS;
	/* A chunk that holds data (one never written is never read), of
	 * this member's (EC: units u with u % K its chunk, at row u / K;
	 * a parity chunk's row has some unit written). */
	bool mine = !r->ec || parity || chunk % r->ec_k == shards[pick];
	for (uint32_t k = 0; k < CHUNKS && (!r->m[obj].tags[chunk] || !mine); k++) {
		chunk = (chunk + 1) % CHUNKS;
		mine = !r->ec || parity || chunk % r->ec_k == shards[pick];
	}
	if (!r->m[obj].tags[chunk] || !mine)
		return false;
	if (r->ec)
		chunk /= r->ec_k; /* its row in the chunk */
	int rc = kind == 0 ? io_sim_disk_fault(r->w, pg_sim_osd_host[id], dev, IO_SIM_CORRUPT,
					       off + chunk * 4096 + pg_sim_rnd(r) % 4000, 1 + pg_sim_rnd(r) % 64)
		 : kind == 1 ? io_sim_disk_fault(r->w, pg_sim_osd_host[id], dev, IO_SIM_BAD_SECTOR,
						 off + chunk * 4096 + pg_sim_rnd(r) % 8 * 512, 512)
			     : io_sim_disk_fault(r->w, pg_sim_osd_host[id], dev, IO_SIM_LOSE_WRITE, off, BS);
	assert_int_equal(rc, 0);
	if (getenv("PG_SIM_LOG"))
		printf("DAMAGE %.3f obj %u (0x%x) osd.%u kind %" PRIu64 " chunk %" PRIu64
		       " block at %" PRIu64 "\n",
		       io_sim_now_ns(r->w) / 1e9, obj, obj, id, kind, chunk, off);
	r->damaged[obj] = true;
	r->faults++;
	return true;
}

/* An EC chunk rewritten with a byte changed and its checksums right (as
 * firmware writing the wrong bytes, or a bug, would leave it): only a
 * deep scrub's parity check finds it. True when done. */
static bool silent_one(struct pg_sim_run *r)
{
	uint32_t obj = (uint32_t)(pg_sim_rnd(r) % r->nobj);
	if (!r->m[obj].exists || r->damaged[obj])
		return false;
	struct object_id oid = { .pool = r->pool, .inode = r->inode, .index = obj };
	uint32_t acting[MAP_PG_ACTING_MAX];
	uint8_t shards[MAP_PG_ACTING_MAX];
	size_t n = obj_acting(r, obj, acting, shards);
	uint32_t unit = (uint32_t)(pg_sim_rnd(r) % CHUNKS); /* of the object */
	for (uint32_t k = 0; k < CHUNKS && !r->m[obj].tags[unit]; k++)
		unit = (unit + 1) % CHUNKS;
	if (n < r->ec_k + r->ec_m || !r->m[obj].tags[unit])
		return false;
	uint32_t row = unit / r->ec_k; /* written in every chunk */
	size_t pick = pg_sim_rnd(r) % n;
	uint32_t id = acting[pick];
	if (!r->osd[id])
		return false;
	struct store *st = osd_store(r->osd[id]);
	uint8_t *buf = aligned_buf(BS);
	struct sync_req q = { .req = { .op = STORE_OP_READ, .oid = object_shard(&oid, shards[pick]),
				       .len = BS, .buf = buf } };
	int rc = store_sync_submit(st, NULL, r->w, &q);
	if (!rc) {
		/* The same version, whole, its written map kept: a repair's
		 * rewrite, which the store checksums afresh. */
		buf[row * 4096 + pg_sim_rnd(r) % 4096] ^= (uint8_t)(1 + pg_sim_rnd(r) % 255);
		struct sync_req w = { .req = { .op = STORE_OP_WRITE, .oid = q.req.oid, .len = BS,
					       .buf = buf, .version = q.req.version, .masked = true,
					       .repair = true } };
		memcpy(w.req.written, q.req.written, sizeof(w.req.written));
		rc = store_sync_submit(st, NULL, r->w, &w);
	}
	free(buf);
	if (rc) {
		pg_sim_failf(r, "object %u: rewriting chunk %u on osd.%u: %s", obj, shards[pick], id,
			     strerror(-rc));
		return false;
	}
	if (getenv("PG_SIM_LOG"))
		printf("SILENT %.3f obj %u (0x%x) osd.%u chunk %u row %u\n",
		       io_sim_now_ns(r->w) / 1e9, obj, obj, id, shards[pick], row);
	r->damaged[obj] = true;
	r->faults++;
	return true;
}

/* Every OSD deep-scrubs every PG it is primary of; true once all did. */
struct scrub_wait {
	struct pg_sim_run *r;
	uint64_t want[NOSD_MAX];
};

static bool scrubs_finished(void *arg)
{
	struct scrub_wait *sw = arg;
	for (int i = 0; i < sw->r->n_osd; i++)
		if (!sw->r->osd[i] || osd_pg_scrubs_done(sw->r->osd[i]) < sw->want[i])
			return false;
	return true;
}

static uint64_t bad_found_now(struct pg_sim_run *r)
{
	uint64_t total = 0;
	for (int i = 0; i < r->n_osd; i++) {
		uint64_t f = 0, rep;
		if (r->osd[i])
			osd_pg_bad_copies(r->osd[i], &f, &rep);
		total += f;
	}
	return total;
}

static void checkpoint_flag(void *arg)
{
	*(bool *)arg = true;
}

static bool all_true(void *arg)
{
	const bool *done = arg;
	for (int i = 0; i < NOSD_MAX; i++)
		if (!done[i])
			return false;
	return true;
}

/* Every running OSD's store writes its journaled data in place. */
static void checkpoint_all(struct pg_sim_run *r)
{
	bool done[NOSD_MAX];
	for (int i = 0; i < NOSD_MAX; i++)
		done[i] = true; /* (no such OSD in this run) */
	for (int i = 0; i < r->n_osd; i++) {
		done[i] = !r->osd[i];
		if (r->osd[i])
			store_checkpoint(osd_store(r->osd[i]), checkpoint_flag, &done[i]);
	}
	if (io_sim_run(r->w, io_sim_now_ns(r->w) + IO_SEC(30), all_true, done))
		pg_sim_failf(r, "the stores did not checkpoint");
}

static void scrub_everything(struct pg_sim_run *r)
{
	struct scrub_wait sw = { r, { 0 } };
	for (int i = 0; i < r->n_osd; i++) {
		int n = osd_pg_scrub(r->osd[i], 0, UINT32_MAX, true);
		sw.want[i] = osd_pg_scrubs_done(r->osd[i]) + (uint64_t)(n > 0 ? n : 0);
	}
	if (io_sim_run(r->w, io_sim_now_ns(r->w) + IO_SEC(120), scrubs_finished, &sw))
		pg_sim_failf(r, "the deep scrubs did not finish");
}

/* Faults under load for FAULT_S virtual seconds, with the hooks' steps. */
static void run_faults(struct pg_sim_run *r, uint64_t fault_s)
{
	r->issuing = true;
	pg_sim_issue(r);
	uint64_t end = io_sim_now_ns(r->w) + IO_SEC(fault_s);
	while (io_sim_now_ns(r->w) < end && !r->failure[0]) {
		io_sim_run(r->w, io_sim_now_ns(r->w) + IO_MS(200 + pg_sim_rnd(r) % 1200), NULL, NULL);
		pg_sim_issue(r);
		pg_sim_fault_step(r);
		for (int k = 0; r->rot && k < 8 && !damage_one(r); k++)
			; /* a copy damaged about every second */
		if (r->hooks && r->hooks->step && !r->failure[0])
			r->hooks->step(r);
	}
}

/* Heal: everything back up and in; let it settle; read everything back
 * through the client once. */
static void heal(struct pg_sim_run *r)
{
	io_sim_set_reset_rate(r->w, 0);
	for (int i = 0; i < r->n_osd; i++) {
		if (!r->osd[i])
			pg_sim_osd_up(r, i, false);
		if (r->out[i]) {
			struct map_cmd c = { .type = MAP_CMD_OSD_IN, .osd = (uint32_t)i };
			if (pg_sim_admin_run(r, &c) == 0)
				r->out[i] = false;
		}
	}
	r->issuing = false;
	if (r->fill)
		make_room(r);
	if (!r->failure[0] && io_sim_run(r->w, io_sim_now_ns(r->w) + IO_SEC(120), pg_sim_quiet, r))
		pg_sim_failf(r, "%u operations never finished", r->inflight);
	if (!r->failure[0] && io_sim_run(r->w, io_sim_now_ns(r->w) + IO_SEC(120), pg_sim_all_clean, r))
		pg_sim_failf(r, "the PGs did not all become active+clean");
	for (uint32_t obj = 0; obj < r->nobj && !r->failure[0]; obj++) {
		pg_sim_start_op(r, &r->slots[0], obj, 0);
		io_sim_run(r->w, io_sim_now_ns(r->w) + IO_SEC(30), pg_sim_quiet, r);
		if (r->inflight)
			pg_sim_failf(r, "the final read of object %u never finished", obj);
	}
	if (!r->failure[0] && io_sim_run(r->w, io_sim_now_ns(r->w) + IO_SEC(120), pg_sim_all_clean, r))
		pg_sim_failf(r, "the PGs did not stay active+clean");
}

/* Bad copies found and repaired over every OSD (since each started). */
static void rot_count(struct pg_sim_run *r)
{
	for (int i = 0; i < r->n_osd && r->osd[i]; i++) {
		uint64_t f, rep;
		osd_pg_bad_copies(r->osd[i], &f, &rep);
		r->bad_found += f;
		r->bad_repaired += rep;
	}
}

/* The damaged-disk run's end: damage nobody will write over now, which
 * only the deep scrubs find. (A lost write still armed would drop the
 * scrub's own repair and leave damage no later scrub is run to find.) */
static void rot_scrub(struct pg_sim_run *r)
{
	for (int i = 0; i < r->n_osd; i++)
		io_sim_disk_lost_writes_disarm(r->w, pg_sim_osd_host[i]);
	checkpoint_all(r); /* damage at rest: no journaled chunk over it */
	uint64_t before = bad_found_now(r), latent = 0;
	memset(r->damaged, 0, sizeof(r->damaged));
	for (int k = 0; k < 64 && latent < 4; k++)
		latent += damage_one_kind(r, true); /* (counted in r->faults) */
	for (int k = 0; r->ec && k < 64 && latent < 6 && !r->failure[0]; k++)
		latent += silent_one(r);
	scrub_everything(r); /* finds what no read did, and repairs it */
	if (!r->failure[0] && bad_found_now(r) - before < latent)
		pg_sim_failf(r, "the deep scrubs found %" PRIu64 " of the %" PRIu64
			 " copies damaged after the writes stopped",
		      bad_found_now(r) - before, latent);
	if (!r->failure[0] &&
	    io_sim_run(r->w, io_sim_now_ns(r->w) + IO_SEC(120), pg_sim_all_clean, r))
		pg_sim_failf(r, "the PGs did not become clean after the scrubs");
	rot_count(r);
}

uint64_t pg_sim_run_seed(uint64_t seed, uint64_t fault_s, enum pg_sim_mode mode,
			 const struct pg_sim_hooks *hooks)
{
	struct pg_sim_run *r = pg_sim_start(seed, true, 0, mode);
	bool fill = mode == PG_SIM_FILL;
	if (io_sim_run(r->w, io_sim_now_ns(r->w) + IO_SEC(60), pg_sim_all_clean, r))
		fail_msg("seed %" PRIu64 ": the PGs never became clean at the start", seed);
	const struct map_pool *p = map_pool_by_name(bs_client_map(r->client), "rbd");
	assert_non_null(p);
	r->pool = p->id;
	r->hooks = hooks;
	if (hooks && hooks->setup)
		hooks->setup(r);
	run_faults(r, fault_s);
	heal(r);
	if (!r->failure[0] && r->rot)
		rot_scrub(r);
	if (!r->failure[0] && hooks && hooks->finish)
		hooks->finish(r);
	if (!r->failure[0] && r->ec)
		check_ec_listing(r);
	if (!r->failure[0])
		check_replicas(r);
	if (!r->failure[0] && hooks && hooks->check)
		hooks->check(r);
	pg_sim_stop(r);
	static const char *const mode_replay[] = {
		[PG_SIM_PLAIN] = "", [PG_SIM_FILL] = " PG_SIM_FULL=1", [PG_SIM_ROT] = " PG_SIM_ROT=1",
		[PG_SIM_EC] = " PG_SIM_EC=1 test_pg_sim ec",
		[PG_SIM_EC42] = " PG_SIM_EC42=1 test_pg_sim ec",
		[PG_SIM_EC_ROT] = " PG_SIM_EC_ROT=1 test_pg_sim ec",
	};
	if (r->failure[0])
		fail_msg("%s (replay: PG_SIM_SEED=%" PRIu64 "%s%s)", r->failure, seed,
			 mode_replay[mode], hooks && hooks->replay ? hooks->replay : "");
	printf("seed %" PRIu64 ": %" PRIu64 " writes and deletes acknowledged, %" PRIu64
	       " reads checked, %" PRIu64 " peerings by log and %" PRIu64 " full (logs of %u)%s",
	       seed, r->acked, r->reads, r->peerings_log, r->peerings_full,
	       r->log_entries ? r->log_entries : 3000, fill || r->rot ? "" : "\n");
	pg_sim_peerings_log_total += r->peerings_log;
	if (fill)
		printf(", %" PRIu64 " writes refused for space\n", r->enospc);
	else if (r->rot)
		printf(", %" PRIu64 " copies damaged, %" PRIu64 " bad copies found, %" PRIu64
		       " repaired (since the last restart of each OSD)\n",
		       r->faults, r->bad_found, r->bad_repaired);
	uint64_t count = fill ? r->enospc : r->bad_found;
	free(r);
	return count;
}

/* The seeds of a mode on its own disks: SEEDS_ENV of them from BASE
 * (default N), or with PG_SIM_SEED the one named when ONE_ENV is set.
 * The counts run_seed returns must not all be 0 (WHY otherwise). */
void pg_sim_run_mode(enum pg_sim_mode mode, const struct pg_sim_hooks *hooks,
		     const char *seeds_env, unsigned n, uint64_t base, const char *one_env,
		     const char *why)
{
	const char *one = getenv("PG_SIM_SEED");
	const char *ns = getenv(seeds_env);
	const char *secs = getenv("PG_SIM_SECONDS");
	uint64_t fault_s = secs ? strtoull(secs, NULL, 10) : 12;
	if (one) {
		if (getenv(one_env))
			pg_sim_run_seed(strtoull(one, NULL, 10), fault_s, mode, hooks);
		return;
	}
	unsigned seeds = ns ? (unsigned)atoi(ns) : n;
	uint64_t count = 0;
	for (unsigned i = 0; i < seeds; i++) {
		count += pg_sim_run_seed(base + i, fault_s, mode, hooks);
		fflush(stdout);
	}
	if (seeds && !count && why)
		fail_msg("%s: the run did not test what it is for", why);
}
