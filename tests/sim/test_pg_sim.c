/* Replication in a deterministic simulation: a real monitor (basalt-mon's
 * code), four real OSDs and a libbasalt client, each on its own simulated
 * host with simulated disks and network, all driven from one seed.
 *
 * A client writes, overwrites, deletes and reads objects of a pool of
 * size 3 (one operation per object at a time, each retried until
 * answered), while the seed crashes OSDs (sometimes with power loss),
 * restarts them, cuts links between hosts, resets connections and marks
 * OSDs out and in. Checked: every read returns exactly what the last
 * acknowledged write left (so nothing acknowledged is lost and nothing
 * stale is read: linearizable per object); once the faults stop, every
 * PG becomes active+clean and the three OSDs of each object's PG hold the
 * same version of it, byte for byte.
 *
 * A second run (test_pg_sim_full) does the same on disks far too small
 * for the objects: writes meet full OSDs (-ENOSPC, from the map's full
 * flags, the members' own word or their stores), deletes make room, and
 * crashes hit stores at 100%. A write refused for space may have landed
 * on some member, so its object is not checked against the model until a
 * whole-object write or a delete is acknowledged again (but its copies
 * must still agree at the end); every other object is checked as above,
 * every operation must be answered, and every store must open again.
 *
 * A third run (test_pg_sim_rot) damages disks under the same faults, as
 * failing ones do: bits flipped in a copy, sectors that no longer read,
 * writes the disk acknowledged and dropped — each on one copy of an
 * object (a minority), from the seed. Reads must still return exactly
 * the model's bytes (a bad copy is repaired from a good one first); at
 * the end a deep scrub of every PG finds what no read did, and every copy
 * of every object must read back good and identical.
 *
 *   PG_SIM_SEEDS=N   seeds (default 40), from PG_SIM_FIRST (default 1000)
 *   PG_SIM_FULL_SEEDS=N  seeds of the full-disk run (default 10, from 5000)
 *   PG_SIM_ROT_SEEDS=N   seeds of the damaged-disk run (default 10, from 7000)
 *   PG_SIM_SEED=S    replay seed S (PG_SIM_FULL=1 / PG_SIM_ROT=1: of those runs)
 *   PG_SIM_SECONDS=T virtual seconds of faults per seed (default 12) */
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

#include "client/libbasalt.h"
#include "common/cluster/monsess.h"
#include "common/io/sim.h"
#include "common/log.h"
#include "common/msgr.h"
#include "common/keyring.h"
#include "mon/mon.h"
#include "osd/osd.h"
#include "osd/pg.h"
#include "osd/store_int.h"
#include "osd/store.h"
#include "../unit/osd/store_test_util.h"

#define NOSD 4
#define NOBJ 24	    /* objects of the default run */
#define NOBJ_FULL 96 /* of the full-disk run: about 72 blocks per OSD... */
#define FULL_DISK (8u << 20) /* ...on about 60 */
#define QD 6
#define BS (64u << 10)
#define CHUNKS (BS / 4096)
#define PG_NUM 4
#define MON_HOST "10.0.1.1"
#define CLIENT_HOST "10.0.3.1"

static const char *osd_host[NOSD] = { "10.0.2.1", "10.0.2.2", "10.0.2.3", "10.0.2.4" };

struct obj_model {
	bool exists, busy;
	bool unknown; /* a write was refused for space: it may have landed */
	uint64_t tags[CHUNKS]; /* per chunk: the acknowledged write, 0 = zeros */
};

struct slot {
	struct bs_op op;
	struct run *r;
	uint32_t obj, first, n;
	uint64_t tag;
	uint8_t *buf;
	bool used;
};

/* An admin session for map commands (pool, out, in). */
struct admin {
	struct msgr *msgr;
	struct monsess *mon;
	bool replied;
	int rc;
	struct io_timer tick;
};

struct run {
	uint64_t seed;
	struct io_sim_world *w;
	char dir[64];
	char keyring[96];
	struct cfg *cfg;
	struct io_loop *mon_loop, *osd_loop[NOSD], *client_loop;
	struct mon *mon;
	struct osd *osd[NOSD];
	bool out[NOSD];
	struct bs_client *client;
	struct admin admin;
	struct keyring *kr;
	struct mon_member members[1];
	uint32_t pool;
	bool fill;     /* the full-disk run */
	bool rot;      /* the damaged-disk run */
	bool damaged[NOBJ_FULL]; /* objects one copy of was damaged */
	uint64_t faults, bad_found, bad_repaired;
	uint32_t nobj; /* NOBJ or NOBJ_FULL */
	struct obj_model m[NOBJ_FULL];
	struct slot slots[QD];
	unsigned inflight;
	bool issuing;
	uint64_t next_tag, acked, reads, enospc;
	char failure[512];
};

static uint64_t rnd(struct run *r)
{
	return io_sim_random(r->w);
}

static void failf(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void failf(struct run *r, const char *fmt, ...)
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

static void fill(uint8_t *buf, uint64_t tag, uint32_t chunk)
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

static bool chunk_ok(const uint8_t *buf, uint64_t tag, uint32_t chunk)
{
	uint8_t want[4096] = { 0 };
	if (tag)
		fill(want, tag, chunk);
	return memcmp(buf, want, 4096) == 0;
}

/* --- the admin session -------------------------------------------------------------- */

static void admin_message(struct msgr_conn *conn, struct msg *msg)
{
	struct admin *a = msgr_ctx(msgr_conn_msgr(conn));
	monsess_handle(a->mon, conn, msg);
}

static void admin_event(struct msgr_conn *conn, enum msgr_event ev, int err)
{
	struct admin *a = msgr_ctx(msgr_conn_msgr(conn));
	(void)err;
	monsess_event(a->mon, conn, ev);
}

static const struct msgr_handler admin_handler = { .on_message = admin_message,
						   .on_event = admin_event };

static void admin_reply(void *ctx, int rc, const char *text, uint64_t epoch)
{
	struct admin *a = ctx;
	(void)text;
	(void)epoch;
	a->replied = true;
	a->rc = rc;
}

static void admin_tick(struct io_timer *t)
{
	struct admin *a = t->ctx;
	monsess_tick(a->mon, io_now_ns(msgr_loop(a->msgr)));
	io_timer_arm(msgr_loop(a->msgr), &a->tick, IO_MS(100));
}

static bool admin_done(void *arg)
{
	return ((struct admin *)arg)->replied;
}

/* Runs CMD to its answer (or gives up after 30 virtual seconds). */
static int admin_run(struct run *r, struct map_cmd *cmd)
{
	struct admin *a = &r->admin;
	if (monsess_command(a->mon, cmd))
		return -EBUSY;
	a->replied = false;
	io_sim_run(r->w, io_sim_now_ns(r->w) + IO_SEC(30), admin_done, a);
	return a->replied ? a->rc : -ETIMEDOUT;
}

/* --- daemons -------------------------------------------------------------------------- */

static void osd_up(struct run *r, int i, bool mkfs)
{
	char why[256], dev[32];
	snprintf(dev, sizeof(dev), "/dev/osd%d", i);
	assert_int_equal(io_loop_create_sim(r->w, osd_host[i], &r->osd_loop[i]), 0);
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
	struct run *r = arg;
	for (int i = 0; i < NOSD; i++) {
		if (!r->osd[i])
			continue;
		osd_pg_check(r->osd[i]);
	}
}

/* The OSD's process dies; with POWER its host loses power too. */
static void osd_crash(struct run *r, int i, bool power)
{
	io_loop_destroy(r->osd_loop[i]);
	osd_forget(r->osd[i]);
	r->osd[i] = NULL;
	r->osd_loop[i] = NULL;
	if (power)
		io_sim_power_fail(r->w, osd_host[i]);
}

static void write_files(struct run *r)
{
	snprintf(r->dir, sizeof(r->dir), "/tmp/basalt-pgsim.XXXXXX");
	assert_non_null(mkdtemp(r->dir));
	snprintf(r->keyring, sizeof(r->keyring), "%s/keyring", r->dir);
	FILE *f = fopen(r->keyring, "w");
	assert_non_null(f);
	const char *key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
	fprintf(f, "[mon.]\nkey = %s\n[client.admin]\nkey = %s\n", key, key);
	for (int i = 0; i < NOSD; i++)
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
	for (int i = 0; i < NOSD; i++)
		n += snprintf(conf + n, sizeof(conf) - (size_t)n,
			      "[osd.%d]\ndevice = /dev/osd%d\naddr = %s:6800\nhost = h%d\n", i, i,
			      osd_host[i], i);
	char why[256];
	if (cfg_load_string("pgsim.conf", conf, &r->cfg, why, sizeof(why)))
		fail_msg("config: %s", why);
}

static void cleanup_files(struct run *r)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", r->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", r->dir);
}

/* --- the workload ------------------------------------------------------------------------ */

static void issue(struct run *r);

static void op_done(struct bs_op *op, int rc)
{
	struct slot *s = op->ctx;
	struct run *r = s->r;
	struct obj_model *m = &r->m[s->obj];
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
		failf(r, "object %u: operation %d failed: %d", s->obj, op->type, rc);
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
			failf(r, "object %u: the delete found nothing, but it was written", s->obj);
		m->exists = false;
		m->unknown = false;
		r->acked++;
	} else if (m->unknown) {
		r->reads++; /* answered (0 or -ENOENT) is all that can be said */
	} else {
		r->reads++;
		if (rc == -ENOENT && m->exists)
			failf(r, "object %u: an acknowledged write is lost (no object)", s->obj);
		else if (rc == 0 && !m->exists)
			failf(r, "object %u: a deleted object came back", s->obj);
		for (uint32_t c = 0; rc == 0 && m->exists && c < CHUNKS; c++)
			if (!chunk_ok(s->buf + c * 4096, m->tags[c], c)) {
				uint64_t got;
				memcpy(&got, s->buf + c * 4096, 8);
				failf(r, "object %u chunk %u: read write %" PRIu64
					 ", the last acknowledged is %" PRIu64,
				      s->obj, c, got, m->tags[c]);
				break;
			}
	}
	m->busy = false;
	s->used = false;
	r->inflight--;
	issue(r);
}

static void start_op(struct run *r, struct slot *s, uint32_t obj, int kind)
{
	memset(&s->op, 0, sizeof(s->op));
	s->obj = obj;
	s->used = true;
	r->m[obj].busy = true;
	r->inflight++;
	s->op.oid = (struct object_id){ r->pool, 0x77, obj, 0 };
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
		s->first = (uint32_t)(rnd(r) % CHUNKS);
		s->n = 1 + (uint32_t)(rnd(r) % (CHUNKS - s->first));
		if (kind > 80)
			s->first = 0, s->n = CHUNKS;
		s->tag = ++r->next_tag;
		for (uint32_t c = 0; c < s->n; c++)
			fill(s->buf + c * 4096, s->tag, s->first + c);
		s->op.offset = s->first * 4096;
		s->op.len = s->n * 4096;
		s->op.buf = s->buf;
	}
	bs_submit(r->client, &s->op);
}

static void issue(struct run *r)
{
	for (int i = 0; i < QD && r->issuing && !r->failure[0]; i++) {
		if (r->slots[i].used)
			continue;
		uint32_t obj = (uint32_t)(rnd(r) % r->nobj);
		if (!r->m[obj].busy)
			start_op(r, &r->slots[i], obj, (int)(rnd(r) % 100));
	}
}

/* --- convergence ------------------------------------------------------------------------- */

static bool all_clean(void *arg)
{
	struct run *r = arg;
	uint32_t clean = 0;
	const struct cluster_map *m = bs_client_map(r->client);
	for (uint32_t i = 0; i < NOSD; i++)
		if (i >= m->n_osds || !m->osds[i].up || !m->osds[i].in)
			return false;
	for (int i = 0; i < NOSD; i++) {
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

static bool quiet(void *arg)
{
	struct run *r = arg;
	return r->inflight == 0 || r->failure[0];
}

/* Every OSD's store, opened after the run: the acting members of each
 * object's PG hold the same version and bytes, and those match the
 * model. */
static void check_replicas(struct run *r)
{
	struct store *st[NOSD];
	struct io_loop *loop[NOSD];
	const struct cluster_map *m = bs_client_map(r->client);
	const struct map_pool *p = map_pool_by_id(m, r->pool);
	char why[256], dev[32];
	/* Where each object lives, from the map as it is now. */
	uint32_t acting[NOBJ_FULL][MAP_PG_ACTING_MAX];
	size_t n_acting[NOBJ_FULL];
	for (uint32_t obj = 0; obj < r->nobj; obj++) {
		struct object_id oid = { r->pool, 0x77, obj, 0 };
		n_acting[obj] = map_pg_acting(m, p, object_pg(&oid, p->pg_num), acting[obj],
					      MAP_PG_ACTING_MAX);
	}
	for (int i = 0; i < NOSD; i++) {
		io_loop_destroy(r->osd_loop[i]);
		osd_forget(r->osd[i]);
		r->osd[i] = NULL;
		snprintf(dev, sizeof(dev), "/dev/osd%d", i);
		assert_int_equal(io_loop_create_sim(r->w, osd_host[i], &loop[i]), 0);
		r->osd_loop[i] = loop[i];
		struct store_params sp;
		store_params_default(&sp);
		if (store_open(loop[i], dev, &sp, &st[i], why, sizeof(why)))
			fail_msg("seed %" PRIu64 ": reopen osd.%d: %s", r->seed, i, why);
	}
	uint8_t *buf = aligned_buf(BS), *first = aligned_buf(BS);
	for (uint32_t obj = 0; obj < r->nobj && !r->failure[0]; obj++) {
		struct object_id oid = { r->pool, 0x77, obj, 0 };
		const struct obj_model *mo = &r->m[obj];
		size_t n = n_acting[obj];
		if (n != 3)
			failf(r, "object %u's PG has %zu acting OSDs at the end", obj, n);
		uint64_t v0 = 0;
		bool held = mo->exists;
		for (size_t k = 0; k < n && !r->failure[0]; k++) {
			uint32_t id = acting[obj][k];
			uint64_t v = 0;
			int rc = store_sync_op(st[id], loop[id], r->w, STORE_OP_READ, oid, 0, BS, buf, &v);
			if (k == 0 && mo->unknown)
				held = rc == 0; /* whatever it is, every copy is the same */
			if ((rc == 0) != held) {
				failf(r, "object %u: osd.%u %s it (%d)", obj, id,
				      rc ? "lacks" : "still holds", rc);
				break;
			}
			if (rc)
				continue;
			if (k == 0) {
				v0 = v;
				memcpy(first, buf, BS);
			} else if (v != v0 || memcmp(buf, first, BS)) {
				failf(r, "object %u: osd.%u has version %" PRIx64 ", osd.%u %" PRIx64
					 "%s", obj, acting[obj][0], v0, id, v,
				      v == v0 ? " with other bytes" : "");
			}
			for (uint32_t c = 0; c < CHUNKS && !mo->unknown && !r->failure[0]; c++)
				if (!chunk_ok(buf + c * 4096, mo->tags[c], c))
					failf(r, "object %u: osd.%u chunk %u differs from the last "
						 "acknowledged write",
					      obj, id, c);
		}
	}
	free(buf);
	free(first);
	for (int i = 0; i < NOSD; i++) {
		store_close(st[i]);
		io_loop_destroy(loop[i]);
		r->osd_loop[i] = NULL;
	}
}

/* --- one seed ---------------------------------------------------------------------------- */

static void fault_step(struct run *r)
{
	int live = 0, cut_a = -1;
	for (int i = 0; i < NOSD; i++)
		live += r->osd[i] != NULL;
	uint64_t k = rnd(r) % 100;
	int i = (int)(rnd(r) % NOSD);
	if (k < 30 && r->osd[i] && live > 2) {
		osd_crash(r, i, rnd(r) % 2);
	} else if (k < 60 && !r->osd[i]) {
		osd_up(r, i, false);
	} else if (k < 72) {
		/* A link between two hosts goes dark for a while. */
		const char *hosts[] = { osd_host[0], osd_host[1], osd_host[2], osd_host[3], MON_HOST,
					CLIENT_HOST };
		cut_a = (int)(rnd(r) % 6);
		int b = (int)(rnd(r) % 6);
		if (b != cut_a) {
			io_sim_cut(r->w, hosts[cut_a], hosts[b], true);
			io_sim_run(r->w, io_sim_now_ns(r->w) + IO_MS(300 + rnd(r) % 2500), NULL, NULL);
			io_sim_cut(r->w, hosts[cut_a], hosts[b], false);
		}
	} else if (k < 80) {
		io_sim_set_reset_rate(r->w, rnd(r) % 2 ? 0 : 2000);
	} else if (k < 90) {
		/* Out (data moves to the spare OSD) or back in. */
		struct map_cmd c = { .type = r->out[i] ? MAP_CMD_OSD_IN : MAP_CMD_OSD_OUT, .osd = (uint32_t)i };
		int outs = 0;
		for (int x = 0; x < NOSD; x++)
			outs += r->out[x];
		if (!r->out[i] && outs)
			return; /* keep three in */
		if (admin_run(r, &c) == 0)
			r->out[i] = !r->out[i];
	}
}

/* The world of seed SEED: the monitor, OSDs (started when START_OSDS),
 * the admin session with pool "rbd" created, and the client. */
enum sim_mode { SIM_PLAIN, SIM_FILL, SIM_ROT };

static struct run *sim_start(uint64_t seed, bool start_osds, uint64_t op_timeout_ms,
			     enum sim_mode mode)
{
	struct run *r = calloc(1, sizeof(*r));
	char why[256];
	bool fill = mode == SIM_FILL;
	r->seed = seed;
	r->fill = fill;
	r->rot = mode == SIM_ROT;
	r->nobj = fill ? NOBJ_FULL : NOBJ;
	assert_int_equal(io_sim_world_create(seed, &r->w), 0);
	io_sim_set_latency(r->w, IO_US(30), IO_US(300));
	io_sim_set_check(r->w, check_osds, r);
	write_files(r);
	assert_int_equal(mon_mkfs(r->cfg, "a", why, sizeof(why)), 0);
	assert_int_equal(io_loop_create_sim(r->w, MON_HOST, &r->mon_loop), 0);
	if (mon_start(r->mon_loop, r->cfg, "a", r->keyring, &r->mon, why, sizeof(why)))
		fail_msg("mon: %s", why);
	for (int i = 0; i < NOSD && start_osds; i++)
		osd_up(r, i, true);
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
	int rc = admin_run(r, &pool);
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
static void sim_stop(struct run *r)
{
	io_sim_set_check(r->w, NULL, NULL); /* the OSDs go first */
	bs_client_destroy(r->client);
	io_timer_disarm(r->client_loop, &r->admin.tick);
	monsess_destroy(r->admin.mon);
	msgr_destroy(r->admin.msgr);
	keyring_free(r->kr);
	for (int i = 0; i < NOSD; i++)
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
	cfg_free(r->cfg);
	cleanup_files(r);
}

/* The full-disk run's healing, as an operator would: half the objects
 * deleted, so that recovery has room everywhere to finish — a PG that
 * must recover into a full member before it serves waits for that. The
 * deletes go out beside what is still in flight, a slot at a time. */
static void make_room(struct run *r)
{
	uint32_t obj = 0;
	uint64_t end = io_sim_now_ns(r->w) + IO_SEC(120);
	while (obj < r->nobj && !r->failure[0] && io_sim_now_ns(r->w) < end) {
		for (int i = 0; i < QD && obj < r->nobj; i++) {
			if (r->slots[i].used)
				continue;
			if (!r->m[obj].busy)
				start_op(r, &r->slots[i], obj, 30);
			obj += 2;
		}
		io_sim_run(r->w, io_sim_now_ns(r->w) + IO_MS(100), NULL, NULL);
	}
}

/* Damages one copy of a random live object that was not damaged yet, on
 * a live OSD: flips bits in a 4 KiB chunk, makes a sector unreadable, or
 * drops the next write to its block. */
static bool damage_one_kind(struct run *r, bool latent_only);

static bool damage_one(struct run *r)
{
	return damage_one_kind(r, false);
}

/* LATENT_ONLY: damage that shows without a write (no lost write). */
static bool damage_one_kind(struct run *r, bool latent_only)
{
	uint32_t obj = (uint32_t)(rnd(r) % r->nobj);
	if (!r->m[obj].exists || r->damaged[obj])
		return false;
	const struct cluster_map *m = bs_client_map(r->client);
	const struct map_pool *p = map_pool_by_id(m, r->pool);
	struct object_id oid = { r->pool, 0x77, obj, 0 };
	uint32_t acting[MAP_PG_ACTING_MAX];
	size_t n = p ? map_pg_acting(m, p, object_pg(&oid, p->pg_num), acting, MAP_PG_ACTING_MAX)
		     : 0;
	if (n < 3) {
		return false; /* a minority of what there is: one of three */
	}
	uint32_t id = acting[rnd(r) % n];
	uint64_t off;
	if (!r->osd[id] || store_object_locate(osd_store(r->osd[id]), &oid, &off))
		return false; /* down, or all of it still journaled */
	char dev[32];
	snprintf(dev, sizeof(dev), "/dev/osd%u", id);
	uint64_t kind = rnd(r) % (latent_only ? 2 : 3), chunk = rnd(r) % CHUNKS;
	/* A chunk that holds data (one never written is never read). */
	for (uint32_t k = 0; k < CHUNKS && !r->m[obj].tags[chunk]; k++)
		chunk = (chunk + 1) % CHUNKS;
	if (!r->m[obj].tags[chunk])
		return false;
	int rc = kind == 0 ? io_sim_disk_fault(r->w, osd_host[id], dev, IO_SIM_CORRUPT,
					       off + chunk * 4096 + rnd(r) % 4000, 1 + rnd(r) % 64)
		 : kind == 1 ? io_sim_disk_fault(r->w, osd_host[id], dev, IO_SIM_BAD_SECTOR,
						 off + chunk * 4096 + rnd(r) % 8 * 512, 512)
			     : io_sim_disk_fault(r->w, osd_host[id], dev, IO_SIM_LOSE_WRITE, off, BS);
	assert_int_equal(rc, 0);
	if (getenv("PG_SIM_LOG"))
		printf("DAMAGE %.3f obj %u (0x%x) osd.%u kind %" PRIu64 " chunk %" PRIu64
		       " block at %" PRIu64 "\n",
		       io_sim_now_ns(r->w) / 1e9, obj, obj, id, kind, chunk, off);
	r->damaged[obj] = true;
	r->faults++;
	return true;
}

/* Every OSD deep-scrubs every PG it is primary of; true once all did. */
struct scrub_wait {
	struct run *r;
	uint64_t want[NOSD];
};

static bool scrubs_finished(void *arg)
{
	struct scrub_wait *sw = arg;
	for (int i = 0; i < NOSD; i++)
		if (!sw->r->osd[i] || osd_pg_scrubs_done(sw->r->osd[i]) < sw->want[i])
			return false;
	return true;
}

static uint64_t bad_found_now(struct run *r)
{
	uint64_t total = 0;
	for (int i = 0; i < NOSD; i++) {
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
	for (int i = 0; i < NOSD; i++)
		if (!done[i])
			return false;
	return true;
}

/* Every running OSD's store writes its journaled data in place. */
static void checkpoint_all(struct run *r)
{
	bool done[NOSD];
	for (int i = 0; i < NOSD; i++) {
		done[i] = !r->osd[i];
		if (r->osd[i])
			store_checkpoint(osd_store(r->osd[i]), checkpoint_flag, &done[i]);
	}
	if (io_sim_run(r->w, io_sim_now_ns(r->w) + IO_SEC(30), all_true, done))
		failf(r, "the stores did not checkpoint");
}

static void scrub_everything(struct run *r)
{
	struct scrub_wait sw = { r, { 0 } };
	for (int i = 0; i < NOSD; i++) {
		int n = osd_pg_scrub(r->osd[i], 0, UINT32_MAX, true);
		sw.want[i] = osd_pg_scrubs_done(r->osd[i]) + (uint64_t)(n > 0 ? n : 0);
	}
	if (io_sim_run(r->w, io_sim_now_ns(r->w) + IO_SEC(120), scrubs_finished, &sw))
		failf(r, "the deep scrubs did not finish");
}

static uint64_t run_seed(uint64_t seed, uint64_t fault_s, enum sim_mode mode)
{
	struct run *r = sim_start(seed, true, 0, mode);
	bool fill = mode == SIM_FILL;
	if (io_sim_run(r->w, io_sim_now_ns(r->w) + IO_SEC(60), all_clean, r))
		fail_msg("seed %" PRIu64 ": the PGs never became clean at the start", seed);
	const struct map_pool *p = map_pool_by_name(bs_client_map(r->client), "rbd");
	assert_non_null(p);
	r->pool = p->id;
	/* Faults, under load. */
	r->issuing = true;
	issue(r);
	uint64_t end = io_sim_now_ns(r->w) + IO_SEC(fault_s);
	while (io_sim_now_ns(r->w) < end && !r->failure[0]) {
		io_sim_run(r->w, io_sim_now_ns(r->w) + IO_MS(200 + rnd(r) % 1200), NULL, NULL);
		issue(r);
		fault_step(r);
		for (int k = 0; r->rot && k < 8 && !damage_one(r); k++)
			; /* a copy damaged about every second */
	}
	/* Heal: everything back up and in; let it settle. */
	io_sim_set_reset_rate(r->w, 0);
	for (int i = 0; i < NOSD; i++) {
		if (!r->osd[i])
			osd_up(r, i, false);
		if (r->out[i]) {
			struct map_cmd c = { .type = MAP_CMD_OSD_IN, .osd = (uint32_t)i };
			if (admin_run(r, &c) == 0)
				r->out[i] = false;
		}
	}
	r->issuing = false;
	if (r->fill)
		make_room(r);
	if (!r->failure[0] && io_sim_run(r->w, io_sim_now_ns(r->w) + IO_SEC(120), quiet, r))
		failf(r, "%u operations never finished", r->inflight);
	if (!r->failure[0] && io_sim_run(r->w, io_sim_now_ns(r->w) + IO_SEC(120), all_clean, r))
		failf(r, "the PGs did not all become active+clean");
	/* One last read of everything through the client. */
	for (uint32_t obj = 0; obj < r->nobj && !r->failure[0]; obj++) {
		start_op(r, &r->slots[0], obj, 0);
		io_sim_run(r->w, io_sim_now_ns(r->w) + IO_SEC(30), quiet, r);
		if (r->inflight)
			failf(r, "the final read of object %u never finished", obj);
	}
	if (!r->failure[0] && io_sim_run(r->w, io_sim_now_ns(r->w) + IO_SEC(120), all_clean, r))
		failf(r, "the PGs did not stay active+clean");
	if (!r->failure[0] && r->rot) {
		/* Damage nobody will write over now: only the scrub finds it.
		 * (A lost write still armed would drop the scrub's own repair
		 * and leave damage no later scrub is run to find.) */
		for (int i = 0; i < NOSD; i++)
			io_sim_disk_lost_writes_disarm(r->w, osd_host[i]);
		checkpoint_all(r); /* damage at rest: no journaled chunk over it */
		uint64_t before = bad_found_now(r), latent = 0;
		memset(r->damaged, 0, sizeof(r->damaged));
		for (int k = 0; k < 64 && latent < 4; k++)
			latent += damage_one_kind(r, true);
		r->faults += 0; /* (counted by damage_one_kind) */
		scrub_everything(r); /* finds what no read did, and repairs it */
		if (!r->failure[0] && bad_found_now(r) - before < latent)
			failf(r, "the deep scrubs found %" PRIu64 " of the %" PRIu64
				 " copies damaged after the writes stopped",
			      bad_found_now(r) - before, latent);
		if (!r->failure[0] &&
		    io_sim_run(r->w, io_sim_now_ns(r->w) + IO_SEC(120), all_clean, r))
			failf(r, "the PGs did not become clean after the scrubs");
		for (int i = 0; i < NOSD && r->osd[i]; i++) {
			uint64_t f, rep;
			osd_pg_bad_copies(r->osd[i], &f, &rep);
			r->bad_found += f;
			r->bad_repaired += rep;
		}
	}
	if (!r->failure[0])
		check_replicas(r);
	sim_stop(r);
	if (r->failure[0])
		fail_msg("%s (replay: PG_SIM_SEED=%" PRIu64 ")", r->failure, seed);
	printf("seed %" PRIu64 ": %" PRIu64 " writes and deletes acknowledged, %" PRIu64
	       " reads checked%s",
	       seed, r->acked, r->reads, fill || r->rot ? "" : "\n");
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

static void test_pg_sim(void **state)
{
	(void)state;
	const char *one = getenv("PG_SIM_SEED");
	const char *ns = getenv("PG_SIM_SEEDS");
	const char *secs = getenv("PG_SIM_SECONDS");
	uint64_t fault_s = secs ? strtoull(secs, NULL, 10) : 12;
	if (one) {
		if (!getenv("PG_SIM_FULL") && !getenv("PG_SIM_ROT"))
			run_seed(strtoull(one, NULL, 10), fault_s, SIM_PLAIN);
		return;
	}
	const char *first = getenv("PG_SIM_FIRST");
	uint64_t base = first ? strtoull(first, NULL, 10) : 1000;
	unsigned seeds = ns ? (unsigned)atoi(ns) : 40;
	for (unsigned i = 0; i < seeds; i++) {
		run_seed(base + i, fault_s, SIM_PLAIN);
		fflush(stdout);
	}
}

/* The seeds of a mode on its own disks: SEEDS_ENV of them from BASE
 * (default N), or with PG_SIM_SEED the one named when ONE_ENV is set.
 * The counts run_seed returns must not all be 0 (WHY otherwise). */
static void run_mode(enum sim_mode mode, const char *seeds_env, unsigned n, uint64_t base,
		     const char *one_env, const char *why)
{
	const char *one = getenv("PG_SIM_SEED");
	const char *ns = getenv(seeds_env);
	const char *secs = getenv("PG_SIM_SECONDS");
	uint64_t fault_s = secs ? strtoull(secs, NULL, 10) : 12;
	if (one) {
		if (getenv(one_env))
			run_seed(strtoull(one, NULL, 10), fault_s, mode);
		return;
	}
	unsigned seeds = ns ? (unsigned)atoi(ns) : n;
	uint64_t count = 0;
	for (unsigned i = 0; i < seeds; i++) {
		count += run_seed(base + i, fault_s, mode);
		fflush(stdout);
	}
	if (seeds && !count)
		fail_msg("%s: the run did not test what it is for", why);
}

static void test_pg_sim_full(void **state)
{
	(void)state;
	run_mode(SIM_FILL, "PG_SIM_FULL_SEEDS", 10, 5000, "PG_SIM_FULL", "no write met a full disk");
}

static void test_pg_sim_rot(void **state)
{
	(void)state;
	run_mode(SIM_ROT, "PG_SIM_ROT_SEEDS", 10, 7000, "PG_SIM_ROT", "no bad copy was found");
}

struct one_op {
	struct bs_op op;
	bool done;
	int rc;
};

static void one_done(struct bs_op *op, int rc)
{
	struct one_op *o = (struct one_op *)op;
	o->done = true;
	o->rc = rc;
}

static bool one_finished(void *arg)
{
	return ((struct one_op *)arg)->done;
}

/* Runs OP (already filled) to its answer on R's client. */
static int run_one(struct run *r, struct one_op *o)
{
	o->op.done = one_done;
	bs_submit(r->client, &o->op);
	assert_false(o->done); /* never answered from inside the submit */
	io_sim_run(r->w, io_sim_now_ns(r->w) + IO_SEC(60), one_finished, o);
	assert_true(o->done);
	return o->rc;
}

/* libbasalt's refusals: bad ranges, a pool that does not exist, a PG with
 * no OSD up (the operation times out when asked to), and operations in
 * flight when the client is destroyed. */
static void test_client_errors(void **state)
{
	(void)state;
	struct run *r = sim_start(7, false, 2000, SIM_PLAIN);
	const struct map_pool *p;
	while (!bs_client_have_map(r->client) ||
	       !(p = map_pool_by_name(bs_client_map(r->client), "rbd")))
		io_sim_run(r->w, io_sim_now_ns(r->w) + IO_MS(100), NULL, NULL);
	uint32_t pool = p->id;
	uint8_t *buf = r->slots[0].buf;
	struct one_op o = { .op = { .type = BS_WRITE, .oid = { pool, 1, 1 }, .offset = 100,
				    .len = 4096, .buf = buf } };
	assert_int_equal(run_one(r, &o), -EINVAL);
	o = (struct one_op){ .op = { .type = BS_READ, .oid = { pool, 1, 1 }, .len = 0, .buf = buf } };
	assert_int_equal(run_one(r, &o), -EINVAL);
	o = (struct one_op){ .op = { .type = 99, .oid = { pool, 1, 1 } } };
	assert_int_equal(run_one(r, &o), -EINVAL);
	o = (struct one_op){ .op = { .type = BS_STAT, .oid = { pool + 40, 1, 1 } } };
	assert_int_equal(run_one(r, &o), -ENOENT);
	uint64_t t0 = io_sim_now_ns(r->w);
	o = (struct one_op){ .op = { .type = BS_WRITE, .oid = { pool, 1, 1 }, .len = 4096,
				     .buf = buf } };
	assert_int_equal(run_one(r, &o), -ETIMEDOUT);
	assert_true(io_sim_now_ns(r->w) - t0 >= IO_MS(2000));
	struct bs_client_stats st;
	bs_client_stats(r->client, &st);
	assert_int_equal(st.timeouts, 1);
	/* In flight (waiting for an OSD) when the client goes. */
	o = (struct one_op){ .op = { .type = BS_READ, .oid = { pool, 1, 2 }, .len = 4096,
				     .buf = buf, .done = one_done } };
	bs_submit(r->client, &o.op);
	io_sim_run(r->w, io_sim_now_ns(r->w) + IO_MS(300), NULL, NULL);
	assert_false(o.done);
	bs_client_destroy(r->client);
	r->client = NULL;
	assert_true(o.done);
	assert_int_equal(o.rc, -ECANCELED);
	bs_client_destroy(NULL);
	sim_stop(r);
	free(r);
}

struct vtest_op {
	struct bs_vio vio;
	bool done;
	int rc;
};

static void vtest_done(struct bs_vio *vio, int rc)
{
	struct vtest_op *t = (struct vtest_op *)vio;
	t->done = true;
	t->rc = rc;
}

static bool vtest_finished(void *arg)
{
	return ((struct vtest_op *)arg)->done;
}

static int vtest_run(struct run *r, struct bs_volume *v, enum bs_vio_type type, uint64_t off,
		     uint32_t len, void *buf)
{
	struct vtest_op t = { .vio = { .type = type, .offset = off, .len = len, .buf = buf,
				       .done = vtest_done } };
	bs_volume_submit(v, &t.vio);
	assert_false(t.done); /* never answered from inside the submit */
	io_sim_run(r->w, io_sim_now_ns(r->w) + IO_SEC(60), vtest_finished, &t);
	assert_true(t.done);
	return t.rc;
}

/* The volume layer against a byte array: random reads, writes, discards
 * and zeroings of any 512-byte-aligned range (across objects, partial
 * chunks included) on a volume whose size is not a whole number of
 * objects; whole objects discarded are deleted; out-of-range and
 * misaligned requests are refused. */
static void test_volume(void **state)
{
	(void)state;
	struct run *r = sim_start(11, true, 0, SIM_PLAIN);
	if (io_sim_run(r->w, io_sim_now_ns(r->w) + IO_SEC(60), all_clean, r))
		fail_msg("the PGs never became clean");
	const uint64_t size = 5 * BS + 3 * 4096 + 1536;
	struct map_cmd vc = { .type = MAP_CMD_VOLUME_CREATE, .name = "vm1", .pool_name = "rbd",
			      .size = size };
	assert_int_equal(admin_run(r, &vc), 0);
	while (!map_volume_by_name(bs_client_map(r->client), "vm1"))
		io_sim_run(r->w, io_sim_now_ns(r->w) + IO_MS(50), NULL, NULL);
	struct bs_volume *v;
	assert_int_equal(bs_volume_open(r->client, "nope", false, &v), -ENOENT);
	assert_int_equal(bs_volume_open(r->client, "vm1", false, &v), 0);
	assert_int_equal(bs_volume_size(v), size);
	uint8_t *model = calloc(1, size), *buf = aligned_buf(size), *back = aligned_buf(size);
	for (int i = 0; i < 300; i++) {
		uint64_t off = rnd(r) % (size / 512) * 512;
		uint32_t len = (uint32_t)(512 * (1 + rnd(r) % ((size - off) / 512)));
		if (rnd(r) % 3)
			len = len > 3 * BS ? 3 * BS : len;
		int kind = (int)(rnd(r) % 10);
		if (kind < 5) {
			for (uint32_t k = 0; k < len; k++)
				buf[k] = (uint8_t)(rnd(r) >> 17);
			assert_int_equal(vtest_run(r, v, BS_VIO_WRITE, off, len, buf), 0);
			memcpy(model + off, buf, len);
		} else if (kind < 7) {
			assert_int_equal(vtest_run(r, v, kind == 5 ? BS_VIO_DISCARD : BS_VIO_WRITE_ZEROES,
						   off, len, NULL), 0);
			memset(model + off, 0, len);
		} else {
			assert_int_equal(vtest_run(r, v, BS_VIO_READ, off, len, back), 0);
			if (memcmp(back, model + off, len))
				fail_msg("op %d: read of %u bytes at %" PRIu64 " differs", i, len, off);
		}
	}
	assert_int_equal(vtest_run(r, v, BS_VIO_READ, 0, (uint32_t)size, back), 0);
	assert_memory_equal(back, model, size);
	assert_int_equal(vtest_run(r, v, BS_VIO_FLUSH, 0, 0, NULL), 0);
	/* Refusals. */
	assert_int_equal(vtest_run(r, v, BS_VIO_READ, size - 512, 1024, back), -EINVAL);
	assert_int_equal(vtest_run(r, v, BS_VIO_WRITE, 100, 512, buf), -EINVAL);
	assert_int_equal(vtest_run(r, v, BS_VIO_WRITE, 0, 600, buf), -EINVAL);
	assert_int_equal(vtest_run(r, v, 9, 0, 512, buf), -EINVAL);
	/* Discarding everything frees every object. */
	struct bs_volume_stats st0, st1;
	bs_volume_stats(v, &st0);
	assert_int_equal(vtest_run(r, v, BS_VIO_DISCARD, 0, (uint32_t)size, NULL), 0);
	bs_volume_stats(v, &st1);
	assert_int_equal(st1.objects_freed - st0.objects_freed, 5);
	assert_int_equal(vtest_run(r, v, BS_VIO_READ, 0, (uint32_t)size, back), 0);
	memset(model, 0, size);
	assert_memory_equal(back, model, size);
	assert_true(st1.rmw > 0);
	/* Zeros over part of objects never written create nothing. */
	assert_int_equal(vtest_run(r, v, BS_VIO_DISCARD, BS + 4096, 8192, NULL), 0);
	assert_int_equal(vtest_run(r, v, BS_VIO_WRITE_ZEROES, 2 * BS + 512, 1024, NULL), 0);
	assert_int_equal(vtest_run(r, v, BS_VIO_MAP, 0, (uint32_t)size, back), 0);
	for (int k = 0; k < 5; k++) /* the partial last object was zeroed, not deleted */
		assert_int_equal(back[k], 0);
	bs_volume_close(v);
	/* Read-only. */
	assert_int_equal(bs_volume_open(r->client, "vm1", true, &v), 0);
	assert_int_equal(vtest_run(r, v, BS_VIO_WRITE, 0, 4096, buf), -EROFS);
	assert_int_equal(vtest_run(r, v, BS_VIO_READ, 0, 4096, back), 0);
	bs_volume_close(v);
	free(model);
	free(buf);
	free(back);
	sim_stop(r);
	free(r);
}

struct lock_wait {
	bool done;
	int rc;
	char why[256];
};

static void lock_cb(void *ctx, int rc, const char *why)
{
	struct lock_wait *l = ctx;
	l->done = true;
	l->rc = rc;
	snprintf(l->why, sizeof(l->why), "%s", why ? why : "");
}

static bool lock_finished(void *arg)
{
	return ((struct lock_wait *)arg)->done;
}

static int lock_run(struct run *r, struct bs_client *c, const char *name, bool brk,
		    struct lock_wait *l)
{
	*l = (struct lock_wait){ 0 };
	bs_lock(c, name, brk, lock_cb, l);
	assert_false(l->done); /* never answered from inside the call */
	io_sim_run(r->w, io_sim_now_ns(r->w) + IO_SEC(60), lock_finished, l);
	assert_true(l->done);
	return l->rc;
}

/* Fencing is enforced by the OSDs, not by the old holder's good will:
 * client A holds vm1's lock and writes; A is cut off from the monitor
 * (so it never sees the map that fences it) but still reaches the OSDs;
 * B is refused while A's lease runs, then breaks the lock. A's next write
 * is refused by the OSDs (-ESHUTDOWN), A knows itself fenced, and B reads
 * exactly what A had acknowledged. */
static void test_fencing(void **state)
{
	(void)state;
	struct run *r = sim_start(13, true, 0, SIM_PLAIN);
	if (io_sim_run(r->w, io_sim_now_ns(r->w) + IO_SEC(60), all_clean, r))
		fail_msg("the PGs never became clean");
	struct map_cmd vc = { .type = MAP_CMD_VOLUME_CREATE, .name = "vm1", .pool_name = "rbd",
			      .size = 4 * BS };
	assert_int_equal(admin_run(r, &vc), 0);
	struct io_loop *b_loop;
	struct bs_client *b;
	char why[256];
	assert_int_equal(io_loop_create_sim(r->w, "10.0.3.2", &b_loop), 0);
	struct bs_client_params cp = { .keyring = r->keyring, .attempt_timeout_ms = 3000,
				       .owner = "client B" };
	assert_int_equal(bs_client_create(b_loop, r->cfg, &cp, &b, why, sizeof(why)), 0);
	while (!map_volume_by_name(bs_client_map(r->client), "vm1") ||
	       !map_volume_by_name(bs_client_map(b), "vm1"))
		io_sim_run(r->w, io_sim_now_ns(r->w) + IO_MS(50), NULL, NULL);
	struct lock_wait l;
	assert_int_equal(lock_run(r, r->client, "vm1", false, &l), 0);
	assert_true(bs_holds_lock(r->client, "vm1"));
	struct bs_volume *va, *vb;
	assert_int_equal(bs_volume_open(r->client, "vm1", false, &va), 0);
	assert_int_equal(bs_volume_open(b, "vm1", false, &vb), 0);
	uint8_t *acked = aligned_buf(BS), *late = aligned_buf(BS), *back = aligned_buf(BS);
	memset(acked, 0xA1, BS);
	memset(late, 0xEE, BS);
	assert_int_equal(vtest_run(r, va, BS_VIO_WRITE, BS, BS, acked), 0);
	io_sim_cut(r->w, CLIENT_HOST, MON_HOST, true);
	assert_int_equal(lock_run(r, b, "vm1", false, &l), -EBUSY);
	if (!strstr(l.why, "locked by") || !strstr(l.why, "lease left"))
		fail_msg("B's refusal: %s", l.why);
	assert_int_equal(lock_run(r, b, "vm1", true, &l), 0);
	assert_true(bs_holds_lock(b, "vm1"));
	assert_true(map_client_fenced(bs_client_map(b), bs_client_id(r->client)));
	assert_false(bs_client_fenced(r->client)); /* A has not seen that map */
	assert_int_equal(vtest_run(r, vb, BS_VIO_READ, BS, BS, back), 0);
	assert_memory_equal(back, acked, BS);
	assert_int_equal(vtest_run(r, va, BS_VIO_WRITE, BS, BS, late), -ESHUTDOWN);
	assert_true(bs_client_fenced(r->client));
	assert_int_equal(vtest_run(r, va, BS_VIO_WRITE, 0, BS, late), -ESHUTDOWN);
	assert_int_equal(lock_run(r, r->client, "vm1", false, &l), -ESHUTDOWN);
	assert_int_equal(vtest_run(r, vb, BS_VIO_READ, 0, BS, back), 0);
	assert_true(back[0] == 0 && back[BS - 1] == 0);
	assert_int_equal(vtest_run(r, vb, BS_VIO_READ, BS, BS, back), 0);
	assert_memory_equal(back, acked, BS);
	/* B still writes. */
	assert_int_equal(vtest_run(r, vb, BS_VIO_WRITE, 0, BS, late), 0);
	io_sim_cut(r->w, CLIENT_HOST, MON_HOST, false);
	bs_volume_close(va);
	bs_volume_close(vb);
	assert_int_equal(bs_unlock(b, "vm1"), 0);
	assert_int_equal(bs_unlock(b, "vm1"), -ENOENT);
	while (bs_lock_busy(b))
		io_sim_run(r->w, io_sim_now_ns(r->w) + IO_MS(50), NULL, NULL);
	while (map_volume_by_name(bs_client_map(b), "vm1")->lock_client)
		io_sim_run(r->w, io_sim_now_ns(r->w) + IO_MS(50), NULL, NULL);
	bs_client_destroy(b);
	io_loop_destroy(b_loop);
	free(acked);
	free(late);
	free(back);
	sim_stop(r);
	free(r);
}

int main(void)
{
	log_set_level(getenv("PG_SIM_LOG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERROR);
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_client_errors),
					    cmocka_unit_test(test_volume),
					    cmocka_unit_test(test_fencing),
					    cmocka_unit_test(test_pg_sim),
					    cmocka_unit_test(test_pg_sim_full),
					    cmocka_unit_test(test_pg_sim_rot) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
