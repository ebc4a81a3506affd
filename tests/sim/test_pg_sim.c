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
 *   PG_SIM_SEEDS=N   seeds (default 24), from PG_SIM_FIRST (default 1000)
 *   PG_SIM_FULL_SEEDS=N  seeds of the full-disk run (default 6, from 5000)
 *   PG_SIM_ROT_SEEDS=N   seeds of the damaged-disk run (default 6, from 7000)
 *   (the suite runs the same seeds every time: scripts/soak.sh runs more)
 *   PG_SIM_SEED=S    replay seed S (PG_SIM_FULL=1 / PG_SIM_ROT=1: of those runs)
 *   PG_SIM_SECONDS=T virtual seconds of faults per seed (default 12)
 *
 * The harness (world, daemons, workload, faults, checks) is pg_sim.c;
 * test_pg_snap_sim.c runs it with snapshots. */
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
#include "common/io/sim.h"
#include "common/config.h"
#include "common/log.h"
#include "osd/osd.h"
#include "osd/pg.h"
#include "osd/store.h"
#include "pg_sim.h"
#include "../unit/osd/store_test_util.h"

static void test_pg_sim(void **state)
{
	(void)state;
	const char *one = getenv("PG_SIM_SEED");
	const char *ns = getenv("PG_SIM_SEEDS");
	const char *secs = getenv("PG_SIM_SECONDS");
	uint64_t fault_s = secs ? strtoull(secs, NULL, 10) : 12;
	if (one) {
		if (!getenv("PG_SIM_FULL") && !getenv("PG_SIM_ROT") && !getenv("PG_SIM_EC") &&
		    !getenv("PG_SIM_EC42") && !getenv("PG_SIM_EC_ROT"))
			pg_sim_run_seed(strtoull(one, NULL, 10), fault_s, PG_SIM_PLAIN, NULL);
		return;
	}
	const char *first = getenv("PG_SIM_FIRST");
	uint64_t base = first ? strtoull(first, NULL, 10) : 1000;
	unsigned seeds = ns ? (unsigned)atoi(ns) : 24;
	uint64_t by_log = pg_sim_peerings_log_total;
	for (unsigned i = 0; i < seeds; i++) {
		pg_sim_run_seed(base + i, fault_s, PG_SIM_PLAIN, NULL);
		fflush(stdout);
	}
	if (seeds > 1 && pg_sim_peerings_log_total == by_log)
		fail_msg("no peering went by the logs: only the fallback was tested");
}

static void test_pg_sim_full(void **state)
{
	(void)state;
	pg_sim_run_mode(PG_SIM_FILL, NULL, "PG_SIM_FULL_SEEDS", 6, 5000, "PG_SIM_FULL",
			"no write met a full disk");
}

/* An erasure-coded 2+1 pool under the checked load and the faults:
 * reads and writes of every size through chunks, peering by chunks and
 * pending writes, rebuilds; at the end each object's chunks at one
 * version, parity right, no pending write left. */
static void test_pg_sim_ec(void **state)
{
	(void)state;
	pg_sim_run_mode(PG_SIM_EC, NULL, "PG_SIM_EC_SEEDS", 4, 9000, "PG_SIM_EC", NULL);
}

/* The same with a 4+2 pool on six OSDs of six hosts: two chunks may be
 * lost at once, and rebuilds read four. */
static void test_pg_sim_ec42(void **state)
{
	(void)state;
	pg_sim_run_mode(PG_SIM_EC42, NULL, "PG_SIM_EC42_SEEDS", 2, 9500, "PG_SIM_EC42", NULL);
}

/* A 4+2 pool whose data chunks rot (bits flipped, sectors unreadable,
 * writes lost) under the faults: every read still returns the right
 * bytes, rebuilt from the other chunks, and the bad chunk is rebuilt. */
static void test_pg_sim_ec_rot(void **state)
{
	(void)state;
	pg_sim_run_mode(PG_SIM_EC_ROT, NULL, "PG_SIM_EC_ROT_SEEDS", 3, 9700, "PG_SIM_EC_ROT",
			"no bad chunk was found");
}

static void test_pg_sim_rot(void **state)
{
	(void)state;
	pg_sim_run_mode(PG_SIM_ROT, NULL, "PG_SIM_ROT_SEEDS", 6, 7000, "PG_SIM_ROT", "no bad copy was found");
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

/* libbasalt's refusals: bad ranges, a pool that does not exist, a PG with
 * no OSD up (the operation times out when asked to), and operations in
 * flight when the client is destroyed. */
static void test_client_errors(void **state)
{
	(void)state;
	struct pg_sim_run *r = pg_sim_start(7, false, 2000, PG_SIM_PLAIN);
	const struct map_pool *p;
	while (!bs_client_have_map(r->client) ||
	       !(p = map_pool_by_name(bs_client_map(r->client), "rbd")))
		io_sim_run(r->w, io_sim_now_ns(r->w) + IO_MS(100), NULL, NULL);
	uint32_t pool = p->id;
	uint8_t *buf = r->slots[0].buf;
	struct bs_op o = { .type = BS_WRITE, .oid = { .pool = pool, .inode = 1, .index = 1 }, .offset = 100,
				    .len = 4096, .buf = buf };
	assert_int_equal(pg_sim_run_op(r, &o), -EINVAL);
	o = (struct bs_op){ .type = BS_READ, .oid = { .pool = pool, .inode = 1, .index = 1 }, .len = 0, .buf = buf };
	assert_int_equal(pg_sim_run_op(r, &o), -EINVAL);
	o = (struct bs_op){ .type = 99, .oid = { .pool = pool, .inode = 1, .index = 1 } };
	assert_int_equal(pg_sim_run_op(r, &o), -EINVAL);
	o = (struct bs_op){ .type = BS_STAT, .oid = { .pool = pool + 40, .inode = 1, .index = 1 } };
	assert_int_equal(pg_sim_run_op(r, &o), -ENOENT);
	uint64_t t0 = io_sim_now_ns(r->w);
	o = (struct bs_op){ .type = BS_WRITE, .oid = { .pool = pool, .inode = 1, .index = 1 }, .len = 4096,
				     .buf = buf };
	assert_int_equal(pg_sim_run_op(r, &o), -ETIMEDOUT);
	assert_true(io_sim_now_ns(r->w) - t0 >= IO_MS(2000));
	struct bs_client_stats st;
	bs_client_stats(r->client, &st);
	assert_int_equal(st.timeouts, 1);
	/* In flight (waiting for an OSD) when the client goes. */
	struct one_op inflight = { .op = { .type = BS_READ, .oid = { .pool = pool, .inode = 1, .index = 2 }, .len = 4096,
				     .buf = buf, .done = one_done } };
	bs_submit(r->client, &inflight.op);
	io_sim_run(r->w, io_sim_now_ns(r->w) + IO_MS(300), NULL, NULL);
	assert_false(inflight.done);
	bs_client_destroy(r->client);
	r->client = NULL;
	assert_true(inflight.done);
	assert_int_equal(inflight.rc, -ECANCELED);
	bs_client_destroy(NULL);
	pg_sim_stop(r);
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

static int vtest_run(struct pg_sim_run *r, struct bs_volume *v, enum bs_vio_type type, uint64_t off,
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
	struct pg_sim_run *r = pg_sim_start(11, true, 0, PG_SIM_PLAIN);
	if (io_sim_run(r->w, io_sim_now_ns(r->w) + IO_SEC(60), pg_sim_all_clean, r))
		fail_msg("the PGs never became clean");
	const uint64_t size = 5 * BS + 3 * 4096 + 1536;
	struct map_cmd vc = { .type = MAP_CMD_VOLUME_CREATE, .name = "vm1", .pool_name = "rbd",
			      .size = size };
	assert_int_equal(pg_sim_admin_run(r, &vc), 0);
	while (!map_volume_by_name(bs_client_map(r->client), "vm1"))
		io_sim_run(r->w, io_sim_now_ns(r->w) + IO_MS(50), NULL, NULL);
	struct bs_volume *v;
	assert_int_equal(bs_volume_open(r->client, "nope", false, &v), -ENOENT);
	assert_int_equal(bs_volume_open(r->client, "vm1", false, &v), 0);
	assert_int_equal(bs_volume_size(v), size);
	uint8_t *model = calloc(1, size), *buf = aligned_buf(size), *back = aligned_buf(size);
	for (int i = 0; i < 300; i++) {
		uint64_t off = pg_sim_rnd(r) % (size / 512) * 512;
		uint32_t len = (uint32_t)(512 * (1 + pg_sim_rnd(r) % ((size - off) / 512)));
		if (pg_sim_rnd(r) % 3)
			len = len > 3 * BS ? 3 * BS : len;
		int kind = (int)(pg_sim_rnd(r) % 10);
		if (kind < 5) {
			for (uint32_t k = 0; k < len; k++)
				buf[k] = (uint8_t)(pg_sim_rnd(r) >> 17);
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
	pg_sim_stop(r);
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

static int lock_run(struct pg_sim_run *r, struct bs_client *c, const char *name, bool brk,
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
	struct pg_sim_run *r = pg_sim_start(13, true, 0, PG_SIM_PLAIN);
	if (io_sim_run(r->w, io_sim_now_ns(r->w) + IO_SEC(60), pg_sim_all_clean, r))
		fail_msg("the PGs never became clean");
	struct map_cmd vc = { .type = MAP_CMD_VOLUME_CREATE, .name = "vm1", .pool_name = "rbd",
			      .size = 4 * BS };
	assert_int_equal(pg_sim_admin_run(r, &vc), 0);
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
	pg_sim_stop(r);
	free(r);
}

/* Peerings by kind and their bytes over the run: OSDs gone and up. */
static void peerings_now(struct pg_sim_run *r, uint64_t *log, uint64_t *full, uint64_t *bytes)
{
	*log = r->peerings_log;
	*full = r->peerings_full;
	*bytes = r->peering_bytes;
	for (int i = 0; i < NOSD; i++) {
		struct osd_pg_summary s;
		if (!r->osd[i])
			continue;
		osd_pg_summary(r->osd[i], &s);
		*log += s.peerings_log;
		*full += s.peerings_full;
		*bytes += s.peering_bytes;
	}
}

#define MISSED_FILL 150 /* objects written first, so a full comparison has some to list */

struct osd_down_wait {
	struct pg_sim_run *r;
	uint32_t id;
};

static bool osd_down(void *arg)
{
	struct osd_down_wait *d = arg;
	const struct cluster_map *m = bs_client_map(d->r->client);
	return d->id < m->n_osds && !m->osds[d->id].up;
}

enum missed_how { MISSED_LOG_KEPT, MISSED_LOG_WRAPPED, MISSED_LOG_DAMAGED };

/* Flips a bit in the log osd.ID's clean stop wrote for PG PGID (which
 * must be there): its next start must not use it. */
static void damage_written_log(struct pg_sim_run *r, uint32_t id, uint32_t pool, uint32_t pgid)
{
	char why[256], dev[32];
	struct io_loop *loop;
	struct store *st;
	struct store_params sp;
	snprintf(dev, sizeof(dev), "/dev/osd%u", id);
	assert_int_equal(io_loop_create_sim(r->w, pg_sim_osd_host[id], &loop), 0);
	store_params_default(&sp);
	if (store_open(loop, dev, &sp, &st, why, sizeof(why)))
		fail_msg("reopen osd.%u: %s", id, why);
	/* The log's object (osd/pg_log.c, pg_log_oid): beside the PG's record. */
	struct object_id oid = { pool, OBJECT_INODE_PG_META, (uint64_t)pgid | 1ull << 32, 0, OBJECT_SHARD_WHOLE };
	uint8_t *buf = aligned_buf(BS);
	uint64_t v = 0;
	assert_int_equal(store_sync_op(st, loop, r->w, STORE_OP_READ, oid, 0, BS, buf, &v), 0);
	assert_memory_equal(buf, "BSLTPGLG", 8);
	buf[16 + 5] ^= 0x10; /* an entry: the CRC no longer matches */
	v = 0;
	assert_int_equal(store_sync_op(st, loop, r->w, STORE_OP_WRITE, oid, 0, BS, buf, &v), 0);
	store_close(st);
	io_loop_destroy(loop);
	free(buf);
}

/* A member misses a delete while stopped cleanly (its log written out),
 * then comes back. With the log not wrapped meanwhile, the PGs peer by
 * what changed (no full comparison at all) and the object is removed
 * from it; with the others' logs wrapped by writes to the same PG, or
 * with its written log damaged, that PG's peering falls back to a full
 * comparison. Either way the deleted object does not come back. */
static void missed_delete(enum missed_how how)
{
	bool wrap = how == MISSED_LOG_WRAPPED;
	pg_sim_log_entries = 16;
	struct pg_sim_run *r = pg_sim_start(21 + 2 * how, true, 0, PG_SIM_PLAIN);
	pg_sim_log_entries = 0;
	if (io_sim_run(r->w, io_sim_now_ns(r->w) + IO_SEC(60), pg_sim_all_clean, r))
		fail_msg("the PGs never became clean");
	const struct cluster_map *m = bs_client_map(r->client);
	const struct map_pool *p = map_pool_by_name(m, "rbd");
	assert_non_null(p);
	uint32_t pool = p->id, acting[MAP_PG_ACTING_MAX];
	struct object_id x = { pool, PG_SIM_INODE, 0, 0, OBJECT_SHARD_WHOLE };
	uint32_t pgid = object_pg(&x, p->pg_num);
	assert_int_equal(map_pg_acting(m, p, pgid, acting, MAP_PG_ACTING_MAX), 3);
	uint32_t gone = acting[1];
	uint8_t *buf = r->slots[0].buf;
	memset(buf, 0x5a, BS);
	struct bs_op o = { .type = BS_WRITE, .oid = { .pool = pool, .inode = PG_SIM_INODE, .index = 0 }, .len = BS,
				    .buf = buf };
	assert_int_equal(pg_sim_run_op(r, &o), 0);
	for (uint64_t i = 1000; i < 1000 + MISSED_FILL; i++) {
		o = (struct bs_op){ .type = BS_WRITE, .oid = { .pool = pool, .inode = PG_SIM_INODE, .index = i },
					     .len = 4096, .buf = buf };
		assert_int_equal(pg_sim_run_op(r, &o), 0);
	}
	/* A quiet second: the primaries mark where everyone is the same. */
	io_sim_run(r->w, io_sim_now_ns(r->w) + IO_SEC(1), NULL, NULL);
	pg_sim_osd_stop(r, (int)gone);
	if (how == MISSED_LOG_DAMAGED)
		damage_written_log(r, gone, pool, pgid);
	struct osd_down_wait d = { r, gone };
	if (io_sim_run(r->w, io_sim_now_ns(r->w) + IO_SEC(30), osd_down, &d))
		fail_msg("osd.%u is never marked down", gone);
	o = (struct bs_op){ .type = BS_DELETE, .oid = { .pool = pool, .inode = PG_SIM_INODE, .index = 0 } };
	assert_int_equal(pg_sim_run_op(r, &o), 0);
	for (uint64_t i = 1, n = 0; wrap && n < 40; i++) {
		struct object_id y = { pool, PG_SIM_INODE, i, 0, OBJECT_SHARD_WHOLE };
		if (object_pg(&y, p->pg_num) != pgid)
			continue;
		o = (struct bs_op){ .type = BS_WRITE, .oid = { .pool = pool, .inode = PG_SIM_INODE, .index = i },
					     .len = BS, .buf = buf };
		assert_int_equal(pg_sim_run_op(r, &o), 0);
		n++;
	}
	uint64_t log0, full0, log1, full1, bytes0, bytes1;
	peerings_now(r, &log0, &full0, &bytes0);
	pg_sim_osd_up(r, (int)gone, false);
	if (io_sim_run(r->w, io_sim_now_ns(r->w) + IO_SEC(60), pg_sim_all_clean, r))
		fail_msg("the PGs did not become clean again");
	peerings_now(r, &log1, &full1, &bytes1);
	struct store_object_info info;
	assert_int_equal(store_stat(osd_store(r->osd[gone]), &x, &info), -ENOENT);
	printf("%s: %" PRIu64 " peerings by log, %" PRIu64 " full after osd.%u came back, "
	       "%" PRIu64 " bytes of queries and answers (%u objects)\n",
	       how == MISSED_LOG_KEPT ? "log kept" : wrap ? "log wrapped" : "log damaged",
	       log1 - log0, full1 - full0, gone,
	       bytes1 - bytes0, MISSED_FILL + (wrap ? 41 : 0));
	if (how != MISSED_LOG_KEPT) {
		assert_true(full1 > full0);
	} else {
		assert_true(log1 > log0);
		assert_int_equal(full1, full0);
	}
	pg_sim_stop(r);
	free(r);
}

/* The log's bounds are checked at start: out of range, the OSD does not
 * start, and says which setting is wrong. */
static void test_log_config(void **state)
{
	(void)state;
	const char *bad[] = { "osd_pg_log_max_entries = 2", "osd_pg_log_max_entries = many",
			      "osd_pg_log_max_bytes = 1000" };
	struct io_sim_world *w;
	struct io_loop *loop;
	assert_int_equal(io_sim_world_create(1, &w), 0);
	assert_int_equal(io_loop_create_sim(w, "10.0.2.1", &loop), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char conf[256], why[256] = "";
		snprintf(conf, sizeof(conf),
			 "[global]\n%s\n[osd.0]\ndevice = /dev/osd0\naddr = 10.0.2.1:6800\n", bad[i]);
		struct cfg *cfg;
		assert_int_equal(cfg_load_string("bad.conf", conf, &cfg, why, sizeof(why)), 0);
		struct osd *o = NULL;
		assert_int_equal(osd_start(loop, cfg, 0, "/nonexistent", &o, why, sizeof(why)),
				 -EINVAL);
		char name[32];
		snprintf(name, sizeof(name), "%.*s", (int)strcspn(bad[i], " "), bad[i]);
		if (!strstr(why, name))
			fail_msg("%s: the error does not name the setting: %s", bad[i], why);
		cfg_free(cfg);
	}
	io_loop_destroy(loop);
	io_sim_world_destroy(w);
}

static void test_missed_delete_log(void **state)
{
	(void)state;
	missed_delete(MISSED_LOG_KEPT);
}

static void test_missed_delete_wrapped(void **state)
{
	(void)state;
	missed_delete(MISSED_LOG_WRAPPED);
}

static void test_missed_delete_damaged(void **state)
{
	(void)state;
	missed_delete(MISSED_LOG_DAMAGED);
}

/* With an argument "ec", the erasure-coded runs alone; else the rest
 * (ctest runs both at once: test_pg_sim and test_pg_sim_ec). */
int main(int argc, char **argv)
{
	log_set_level(getenv("PG_SIM_LOG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERROR);
	if (argc > 1 && strcmp(argv[1], "ec") == 0) {
		const struct CMUnitTest ec[] = { cmocka_unit_test(test_pg_sim_ec),
						 cmocka_unit_test(test_pg_sim_ec42),
						 cmocka_unit_test(test_pg_sim_ec_rot) };
		return cmocka_run_group_tests(ec, NULL, NULL);
	}
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_client_errors),
					    cmocka_unit_test(test_volume),
					    cmocka_unit_test(test_fencing),
					    cmocka_unit_test(test_log_config),
					    cmocka_unit_test(test_missed_delete_log),
					    cmocka_unit_test(test_missed_delete_wrapped),
					    cmocka_unit_test(test_missed_delete_damaged),
					    cmocka_unit_test(test_pg_sim),
					    cmocka_unit_test(test_pg_sim_full),
					    cmocka_unit_test(test_pg_sim_rot) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
