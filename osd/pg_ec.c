/* Erasure-coded PGs (issue 23; docs/ARCHITECTURE.md, "Erasure coding").
 *
 * The primary turns a client read into reads of the chunks it covers
 * (or, with a chunk's member away, of K chunks of its rows and a
 * rebuild), and a client write into one write of the same rows, the
 * *window*, on every acting member: the data units it covers, the old
 * units of its rows it does not (read first), and the rows' new parity.
 *
 * A window write goes in two phases (pg_ec_apply, on every member and
 * the primary's own store alike). PREPARE stores the window beside the
 * shard, as its *pending* object (snap OBJECT_SNAP_PENDING) at the new
 * version; once every acting member has it the client is answered, and
 * COMMIT writes it into the shard and deletes it. Until then the shard
 * is untouched, so a member always holds its chunk of the last committed
 * version, and of the pending one too: peering takes the newest that K
 * members hold, and drops pendings newer than that (never a version
 * going back). The object takes no other operation until the commit is
 * done everywhere. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/ec_stripe.h"
#include "common/log.h"
#include "pg_int.h"

static struct object_id pending_of(const struct object_id *shard)
{
	struct object_id p = *shard;
	p.snap = OBJECT_SNAP_PENDING;
	return p;
}

struct object_id pg_local_oid(const struct osd_pg *pg, const struct object_id *oid)
{
	return pg->ec ? object_shard(oid, pg->shard[0]) : *oid;
}

/* --- a member's side: prepare, commit, delete ------------------------------------------ */

enum apply_step { APPLY_DROP_STALE, APPLY_PREPARE, APPLY_READ_PENDING, APPLY_WRITE,
		  APPLY_DROP_PENDING, APPLY_DELETE };

static void apply_next(struct pg_ec_apply *a, int res);
static void apply_delete_next(struct pg_ec_apply *a);

static void apply_store_done(struct store_req *req, int res)
{
	apply_next(req->ctx, res);
}

static void apply_submit(struct pg_ec_apply *a, enum apply_step step, enum store_op op,
			 const struct object_id *oid, uint32_t offset, uint32_t len, void *buf,
			 uint64_t version)
{
	a->step = step;
	a->req = (struct store_req){ .op = op, .oid = *oid, .offset = offset, .len = len,
				     .buf = buf, .version = version, .done = apply_store_done,
				     .ctx = a };
	if (op != STORE_OP_READ)
		pg_log_change(a->pg, oid, op == STORE_OP_DELETE ? 0 : version);
	store_submit(a->pg->o->store, &a->req);
}

static void apply_finish(struct pg_ec_apply *a, int rc)
{
	struct osd_pg *pg = a->pg;
	free(a->scratch);
	a->scratch = NULL;
	a->done(a, rc);
	pg_store_write_done(pg);
}

/* Commit: the pending write's units (one run of them: a window) go into
 * the shard at its version, after the head became a clone if asked. */
static void apply_commit_write(struct pg_ec_apply *a)
{
	uint32_t units = store_block_size(a->pg->o->store) / EC_STRIPE_UNIT, first = units, last = 0;
	for (uint32_t u = 0; u < units; u++)
		if (a->req.written[u / 8] & (1u << (u % 8))) {
			first = u < first ? u : first;
			last = u;
		}
	if (first == units) { /* an empty pending: nothing to apply */
		struct object_id p = pending_of(&a->shard);
		apply_submit(a, APPLY_DROP_PENDING, STORE_OP_DELETE, &p, 0, 0, NULL, 0);
		return;
	}
	a->version = a->req.version;
	a->step = APPLY_WRITE;
	a->req = (struct store_req){ .op = STORE_OP_WRITE, .oid = a->shard,
				     .offset = first * EC_STRIPE_UNIT,
				     .len = (last - first + 1) * EC_STRIPE_UNIT,
				     .buf = (uint8_t *)a->scratch + first * EC_STRIPE_UNIT,
				     .version = a->version, .done = apply_store_done, .ctx = a };
	pg_log_change_clone(a->pg, &a->shard, a->version, a->clone_snap);
	pg_snap_clone_submit(a->pg->o->store, a->clone_snap, &a->req);
}

static void apply_next(struct pg_ec_apply *a, int res)
{
	struct object_id p = pending_of(&a->shard);
	struct store_object_info info;
	switch ((enum apply_step)a->step) {
	case APPLY_DROP_STALE: /* a pending peering did not settle: replaced */
		if (res && res != -ENOENT)
			apply_finish(a, res);
		else
			apply_submit(a, APPLY_PREPARE, STORE_OP_WRITE, &p, a->offset, a->len, a->buf,
				     a->version);
		return;
	case APPLY_PREPARE:
		apply_finish(a, res);
		return;
	case APPLY_READ_PENDING:
		if (res == -ENOENT && store_stat(a->pg->o->store, &a->shard, &info) == 0 &&
		    info.version >= a->version) {
			apply_finish(a, 0); /* committed already (a resend) */
			return;
		}
		if (res) {
			apply_finish(a, res);
			return;
		}
		if (a->version && a->req.version != a->version) {
			apply_finish(a, -ESTALE); /* not the write the primary means */
			return;
		}
		apply_commit_write(a);
		return;
	case APPLY_WRITE:
		if (res == -ESTALE && store_stat(a->pg->o->store, &a->shard, &info) == 0 &&
		    info.version == a->version)
			res = 0; /* applied before a crash that left the pending */
		if (res) {
			apply_finish(a, res);
			return;
		}
		apply_submit(a, APPLY_DROP_PENDING, STORE_OP_DELETE, &p, 0, 0, NULL, 0);
		return;
	case APPLY_DROP_PENDING:
		apply_finish(a, res == -ENOENT ? 0 : res);
		return;
	case APPLY_DELETE:
		if (res && res != -ENOENT) {
			apply_finish(a, res);
			return;
		}
		apply_delete_next(a);
		return;
	}
}

/* A delete drops every chunk of the object this OSD holds and their
 * pending writes, not only the chunk of its position: one of another
 * position left behind would bring the object back at its old version
 * (two such chunks are K of a 2+1 code). */
static void apply_delete_next(struct pg_ec_apply *a)
{
	struct osd_pg *pg = a->pg;
	unsigned chunks = pg->ec ? pg->ec->k + pg->ec->m : EC_MAX_CHUNKS;
	struct store_object_info info;
	while (a->next < 2 * chunks) {
		unsigned c = a->next / 2;
		bool pending = a->next % 2;
		a->next++;
		struct object_id oid = object_shard(&a->shard, c);
		if (pending)
			oid.snap = OBJECT_SNAP_PENDING;
		if ((pending && a->shard.snap != OBJECT_SNAP_HEAD) ||
		    store_stat(pg->o->store, &oid, &info))
			continue;
		bool mine = object_id_equal(&oid, &a->shard);
		apply_submit(a, APPLY_DELETE, STORE_OP_DELETE, &oid, 0, 0, NULL,
			     mine ? a->version : 0);
		return;
	}
	apply_finish(a, 0);
}

void pg_ec_apply_start(struct pg_ec_apply *a)
{
	struct osd_pg *pg = a->pg;
	struct object_id p = pending_of(&a->shard);
	struct store_object_info info;
	uint32_t bs = store_block_size(pg->o->store);
	pg->store_writes++;
	a->scratch = NULL;
	switch (a->kind) {
	case PG_EC_PREPARE:
		if (store_stat(pg->o->store, &p, &info) == 0)
			apply_submit(a, APPLY_DROP_STALE, STORE_OP_DELETE, &p, 0, 0, NULL, 0);
		else
			apply_submit(a, APPLY_PREPARE, STORE_OP_WRITE, &p, a->offset, a->len, a->buf,
				     a->version);
		return;
	case PG_EC_COMMIT:
		if (posix_memalign(&a->scratch, 4096, bs)) {
			a->scratch = NULL;
			apply_finish(a, -ENOMEM);
			return;
		}
		apply_submit(a, APPLY_READ_PENDING, STORE_OP_READ, &p, 0, bs, a->scratch, 0);
		return;
	case PG_EC_DELETE:
		a->next = 0;
		apply_delete_next(a);
		return;
	}
}

int pg_ec_init(struct osd_pg *pg, unsigned k, unsigned m)
{
	struct ec_code *code = malloc(sizeof(*code));
	if (!code)
		return -ENOMEM;
	int rc = ec_code_init(code, k, m);
	BASALT_ASSERT(rc == 0); /* the map checked K and M */
	pg->ec = code;
	return 0;
}

void pg_ec_free(struct osd_pg *pg)
{
	free(pg->ec);
	pg->ec = NULL;
}

/* What recovery must do to an EC object (at auth_version V): commit V
 * where it is pending, drop other pending writes and chunks newer than V
 * on the members that need theirs, rebuild the chunks members lack from
 * K others, and last drop the chunks members hold that are not theirs. */
struct pg_ec_need {
	uint32_t n_commit;
	struct pg_ec_site {
		uint32_t osd;
		uint8_t chunk;
		bool pending; /* the pending object, not the chunk */
	} commit[PG_PEERS_MAX * 2];
	uint32_t holder[EC_MAX_CHUNKS]; /* per chunk: an OSD holding it at V + 1; 0: none */
	bool holder_pending[EC_MAX_CHUNKS]; /* ... as its pending write over the chunk */
	uint32_t rebuild;		 /* acting indices given their chunk at V */
	uint32_t n_first, n_last;
	struct pg_ec_site first[PG_PEERS_MAX * 2]; /* dropped before the rebuild */
	struct pg_ec_site last[EC_MAX_CHUNKS * MAP_PG_ACTING_MAX]; /* after it */
};

/* --- the primary: reads and writes of whole objects ----------------------------------- */

/* A client operation's chunk work: the window and its columns, one per
 * chunk, and the pieces outstanding. */
struct pg_ec_op {
	struct pg_op *op;
	struct object_id oid; /* whole: the head, or a snapshot's clone */
	struct ec_window w;
	uint8_t *cols[EC_MAX_CHUNKS];
	uint32_t asked, got, absent; /* chunks: read, read back, not there */
	unsigned pending;
	int rc;
	uint64_t version;
	bool writing;
	bool rebuild; /* K chunks asked for whole: the rest is computed */
	uint32_t bad;	   /* chunks whose read failed its checksum or the device */
	uint32_t excluded; /* ...left out of the reads since (read repair) */
	bool committing; /* the client has its answer; the commits are out */
	uint32_t clone_snap;
	struct store_req req;	   /* the local chunk's read */
	struct pg_ec_apply apply;  /* the local chunk's window write */
};

void pg_ec_op_free(struct pg_ec_op *e)
{
	if (!e)
		return;
	for (unsigned c = 0; c < EC_MAX_CHUNKS; c++)
		free(e->cols[c]);
	free(e->apply.scratch); /* a commit cut short (osd_forget) */
	free(e);
}

/* The acting index of the member storing chunk C, or -1. */
static int holder_of(const struct osd_pg *pg, unsigned c)
{
	for (uint32_t i = 0; i < pg->n_acting; i++)
		if (pg->shard[i] == c)
			return (int)i;
	return -1;
}

static void chunk_read_done(struct pg_ec_op *e, unsigned c, int rc, uint64_t version);

/* OP's local store piece is back: false when its PG was reset meanwhile
 * (OP is freed then, as pg_io_reset left it to be). */
static bool op_local_back(struct pg_op *op)
{
	op->local_busy = false;
	if (op->gen == op->pg->gen)
		return true;
	pg_op_free(op);
	return false;
}

static void chunk_read_local_done(struct store_req *req, int res)
{
	struct pg_ec_op *e = req->ctx;
	if (op_local_back(e->op))
		chunk_read_done(e, e->op->pg->shard[0], res, req->version);
}

static void chunk_read_remote_done(struct pg_call *call, int rc, struct msg *reply)
{
	struct pg_ec_op *e = call->ctx;
	unsigned c = (unsigned)call->arg >> 16;
	uint32_t at = (uint32_t)(call->arg & 0xffff) * EC_STRIPE_UNIT;
	struct pg_subop_reply r;
	(void)rc;
	if (pg_subop_reply_decode(reply, &r))
		r.rc = -EBADMSG;
	if (!r.rc && (!reply->data || at + reply->hdr.data_len > e->w.rows * EC_STRIPE_UNIT))
		r.rc = -EBADMSG;
	if (!r.rc)
		memcpy(e->cols[c] + at, reply->data, reply->hdr.data_len);
	chunk_read_done(e, c, r.rc, r.version);
}

/* Reads bytes [AT, AT + LEN) of the window's rows of chunk C into its
 * column, from its member. 0, or -errno (nothing was sent). */
static int chunk_read(struct pg_ec_op *e, unsigned c, uint32_t at, uint32_t len)
{
	struct osd_pg *pg = e->op->pg;
	int i = holder_of(pg, c);
	if (i < 0)
		return -ENXIO;
	struct object_id shard = object_shard(&e->oid, c);
	uint32_t offset = e->w.row0 * EC_STRIPE_UNIT + at;
	e->asked |= 1u << c;
	e->pending++;
	if (i == 0) {
		e->req = (struct store_req){ .op = STORE_OP_READ, .oid = shard, .offset = offset,
					     .len = len, .buf = e->cols[c] + at,
					     .done = chunk_read_local_done, .ctx = e };
		e->op->local_busy = true;
		store_submit(pg->o->store, &e->req);
		return 0;
	}
	struct pg_subop sub = { .type = PG_SUB_CHUNK_READ, .oid = shard, .offset = offset,
				.len = len };
	int rc = pg_call_subop(pg, pg->acting[i], &sub, NULL, chunk_read_remote_done, e,
			       (uint64_t)c << 16 | at / EC_STRIPE_UNIT);
	if (rc) {
		e->pending--;
		e->asked &= ~(1u << c);
	}
	return rc;
}

/* Asks for every chunk of the window that K present ones can give:
 * data chunks first. 0, or -EIO when fewer than K members are there. */
static int read_any_k(struct pg_ec_op *e)
{
	struct osd_pg *pg = e->op->pg;
	unsigned n = 0;
	e->rebuild = true;
	for (unsigned c = 0; c < pg->ec->k + pg->ec->m && n < pg->ec->k; c++)
		if (!(e->excluded & (1u << c)) && holder_of(pg, c) >= 0 &&
		    !chunk_read(e, c, 0, e->w.rows * EC_STRIPE_UNIT))
			n++;
	return n == pg->ec->k ? 0 : -ENODATA;
}

static int cols_alloc(struct pg_ec_op *e, unsigned n)
{
	size_t len = (size_t)e->w.rows * EC_STRIPE_UNIT;
	for (unsigned c = 0; c < n; c++) {
		if (posix_memalign((void **)&e->cols[c], 4096, len)) {
			e->cols[c] = NULL;
			return -ENOMEM;
		}
		memset(e->cols[c], 0, len);
	}
	return 0;
}

static struct pg_ec_op *ec_op_new(struct pg_op *op, bool writing)
{
	struct pg_ec_op *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->op = op;
	e->oid = op->op.oid;
	e->writing = writing;
	e->w = ec_stripe_window(op->pg->ec->k, op->op.offset, op->op.len);
	if (cols_alloc(e, op->pg->ec->k + op->pg->ec->m)) {
		pg_ec_op_free(e);
		return NULL;
	}
	op->ec = e;
	return e;
}

static void write_encode_send(struct pg_ec_op *e);
static void merge_record(struct osd_pg *pg, const struct object_id *oid, uint64_t V,
			 const struct pg_ec_need *need, uint32_t push, uint32_t remove);

bool pg_ec_repair(struct osd_pg *pg, const struct object_id *oid, uint64_t version,
		  uint32_t bad, uint32_t newer, uint32_t sources)
{
	struct pg_obj *obj = pg_obj_get(pg, oid, true);
	if (!obj || pg_obj_mending(obj))
		return true; /* being recovered already, or beyond it */
	struct pg_ec_need need;
	memset(&need, 0, sizeof(need));
	unsigned n_src = 0;
	for (uint32_t j = 0; j < pg->n_acting; j++) {
		if ((bad & (1u << j)) || !(sources & (1u << j)))
			continue;
		need.holder[pg->shard[j]] = pg->acting[j] + 1;
		n_src++;
	}
	if (n_src < pg->ec->k)
		return false;
	for (uint32_t j = 0; j < pg->n_acting; j++)
		if (newer & bad & (1u << j))
			need.first[need.n_first++] = (struct pg_ec_site){ .osd = pg->acting[j],
									  .chunk = pg->shard[j] };
	need.rebuild = bad;
	obj->repairing = true;
	merge_record(pg, oid, version, &need, need.rebuild, 0);
	return true;
}

/* Chunk C of OID (at VERSION) failed a read on its member: recovery
 * rebuilds it at the same version (a repair) from the chunks GOT, those
 * the read found at VERSION (a chunk it did not read may be at another:
 * a write its disk lost, in the simulation). */
static void repair_chunk(struct osd_pg *pg, const struct object_id *oid, unsigned c,
			 uint64_t version, uint32_t got)
{
	int i = holder_of(pg, c);
	struct pg_obj *obj = pg_obj_get(pg, oid, true);
	if (i < 0 || !obj || pg_obj_mending(obj))
		return; /* being recovered already */
	char id[64];
	LOG_WARN("pg %u.%x: chunk %u of %s on osd.%u is bad: rebuilding it from the others",
		 pg->pool, pg->pg, c, object_id_str(oid, id, sizeof(id)), pg->acting[i]);
	pg->bad_found++;
	pg->o->pgs->bad_found++;
	uint32_t sources = 0;
	for (uint32_t j = 0; j < pg->n_acting; j++)
		if (got & (1u << pg->shard[j]))
			sources |= 1u << j;
	pg_ec_repair(pg, oid, version, 1u << i, 0, sources);
}

/* Every chunk read asked for has answered: rebuild what is missing. */
static void reads_finished(struct pg_ec_op *e)
{
	struct pg_op *op = e->op;
	struct osd_pg *pg = op->pg;
	unsigned k = pg->ec->k, n = k + pg->ec->m;
	if (!e->rc && (e->bad & ~e->excluded)) {
		/* Read again without the bad chunks, K others whole: the
		 * client gets the right bytes, and the bad ones are rebuilt. */
		e->excluded |= e->bad;
		e->got = e->asked = e->absent = 0;
		e->pending++;
		int rc = read_any_k(e);
		if (rc && !e->rc)
			e->rc = rc; /* fewer than K good chunks: -EIO, never wrong bytes */
		if (--e->pending == 0)
			reads_finished(e);
		return;
	}
	/* (A write's bad chunks are rebuilt once it is done, at its own
	 * version: pg_ec_write_done.) */
	if ((!e->rc || e->rc == -ENODATA) && e->excluded && !e->writing)
		for (unsigned c = 0; c < n; c++)
			if (e->excluded & (1u << c))
				repair_chunk(pg, &e->oid, c, e->version, e->got);
	if (e->rc == -ENODATA && pg->n_acting < n) {
		/* Fewer than K good chunks here, but a member is away: the
		 * object waits for it (recovery finds it unfound until then),
		 * as a replicated object waits for a good copy. */
		pg_io_requeue(op);
		return;
	}
	if (e->rc == -ENODATA)
		e->rc = -EIO; /* more chunks bad than the code covers */
	if (!e->rc && e->absent && e->absent != e->asked)
		e->rc = -EIO; /* some chunks of it, not all: never served mixed */
	else if (!e->rc && e->absent)
		e->rc = -ENOENT; /* the object is not there */
	if (!e->rc && e->rebuild)
		e->rc = ec_reconstruct(pg->ec, (size_t)e->w.rows * EC_STRIPE_UNIT, e->cols,
				       e->got & ((1u << n) - 1));
	if (e->writing) {
		if (e->rc && e->rc != -ENOENT) {
			pg_io_write_failed(op, e->rc, "its old chunks could not be read");
			return;
		}
		write_encode_send(e);
		return;
	}
	if (e->rc == -ENOENT || e->rc == -EIO) {
		pg_io_read_answer(op, e->rc, 0, NULL);
		return;
	}
	if (e->rc) { /* a member failed: after peering again, the client resends */
		char why[96];
		snprintf(why, sizeof(why), "a read's chunks could not be read: %s",
			 strerror(-e->rc));
		pg_repeer(pg, why);
		return;
	}
	uint8_t *buf = NULL;
	if (posix_memalign((void **)&buf, 4096, op->op.len)) {
		pg_io_read_answer(op, -ENOMEM, 0, NULL);
		return;
	}
	ec_stripe_gather(k, op->op.offset, op->op.len, buf, &e->w, e->cols);
	pg_io_read_answer(op, 0, e->version, buf);
}

static void chunk_read_done(struct pg_ec_op *e, unsigned c, int rc, uint64_t version)
{
	if (rc == -ENOENT) {
		e->absent |= 1u << c;
	} else if (rc == -EBADMSG || rc == -EIO) {
		e->bad |= 1u << c; /* a bad chunk: the others rebuild it (read repair) */
	} else if (rc) {
		if (!e->rc)
			e->rc = rc;
	} else {
		if (e->got && version != e->version && !e->rc)
			e->rc = -EIO; /* chunks of two versions: never mixed */
		e->version = version;
		e->got |= 1u << c;
	}
	if (--e->pending == 0)
		reads_finished(e);
}

/* What an operation needs of data chunk C, as bytes of its window's
 * rows (*AT from the window's start, *LEN): a read, the extent it covers;
 * a write, the span of the units of its rows it does not cover (read
 * to encode them). False when it needs nothing of C. */
static bool chunk_need(const struct pg_ec_op *e, unsigned c, uint32_t *at, uint32_t *len)
{
	const struct pg_op *op = e->op;
	unsigned k = op->pg->ec->k;
	uint32_t from, to;
	if (!e->writing) {
		struct ec_extent x;
		if (!ec_stripe_extent(k, op->op.offset, op->op.len, c, &x))
			return false;
		from = x.offset;
		to = x.offset + x.len;
	} else {
		struct ec_extent un[2];
		unsigned n = ec_stripe_uncovered(k, op->op.offset, op->op.len, c, un);
		if (!n)
			return false;
		from = un[0].offset;
		to = un[n - 1].offset + un[n - 1].len;
	}
	*at = from - e->w.row0 * EC_STRIPE_UNIT;
	*len = to - from;
	return true;
}

/* Asks each data chunk for what the operation needs of it; with the
 * member of one of those away, any K chunks whole (the rest rebuilt). */
static void reads_start(struct pg_ec_op *e)
{
	struct osd_pg *pg = e->op->pg;
	unsigned k = pg->ec->k;
	uint32_t at, len;
	bool all = true;
	for (unsigned c = 0; c < k && all; c++)
		all = !chunk_need(e, c, &at, &len) || holder_of(pg, c) >= 0;
	int rc = 0;
	e->pending++; /* held while asking */
	for (unsigned c = 0; c < k && all && !rc; c++)
		if (chunk_need(e, c, &at, &len))
			rc = chunk_read(e, c, at, len);
	if (!all)
		rc = read_any_k(e);
	if (rc && !e->rc)
		e->rc = rc;
	if (--e->pending == 0)
		reads_finished(e);
}

void pg_ec_read(struct pg_op *op, const struct object_id *oid)
{
	struct pg_ec_op *e = ec_op_new(op, false);
	if (!e) {
		pg_io_read_answer(op, -ENOMEM, 0, NULL);
		return;
	}
	e->oid = object_whole(oid);
	reads_start(e);
}

/* --- writes --------------------------------------------------------------------------- */

static void write_local_applied(struct pg_ec_apply *a, int rc)
{
	struct pg_ec_op *e = a->ctx;
	if (op_local_back(e->op))
		pg_io_write_local_result(e->op, rc);
}

/* The columns are the window's rows of the new object: parity, then one
 * window write to every acting member. */
static void write_encode_send(struct pg_ec_op *e)
{
	struct pg_op *op = e->op;
	struct osd_pg *pg = op->pg;
	struct ec_code *code = pg->ec;
	bool del = op->op.type == OSD_OP_DELETE;
	if (!del) {
		ec_stripe_scatter(code->k, op->op.offset, op->op.len, op->data->buf, &e->w, e->cols);
		ec_encode(code, (size_t)e->w.rows * EC_STRIPE_UNIT, e->cols, e->cols + code->k);
	}
	struct object_id local = pg_local_oid(pg, &op->op.oid);
	e->clone_snap = pg_snap_clone_for_write(pg, &local);
	op->version = pg_version_next(pg);
	pg->writes_inflight++;
	op->pending = pg->n_acting;
	op->waiting_on = (1u << pg->n_acting) - 1;
	uint64_t gen = pg->gen;
	uint32_t offset = e->w.row0 * EC_STRIPE_UNIT, len = e->w.rows * EC_STRIPE_UNIT;
	for (uint32_t i = 1; i < pg->n_acting; i++) {
		unsigned c = pg->shard[i];
		struct pg_data *d = NULL;
		if (!del && !(d = pg_data_wrap(e->cols[c], len, NULL))) {
			pg_repeer(pg, "out of memory");
			return;
		}
		if (d)
			e->cols[c] = NULL; /* the message's now */
		struct pg_subop sub = { .type = del ? PG_SUB_DELETE : PG_SUB_WRITE,
					.oid = object_shard(&op->op.oid, c), .offset = del ? 0 : offset,
					.len = del ? 0 : len, .version = op->version,
					.client = op->op.client, .reqid = op->op.reqid };
		int rc = pg_call_subop(pg, pg->acting[i], &sub, d, pg_io_write_remote_done, op, 0);
		pg_data_put(d);
		if (rc) {
			char why[64];
			snprintf(why, sizeof(why), "cannot send a write to osd.%u", pg->acting[i]);
			pg_repeer(pg, why);
		}
		if (pg->gen != gen)
			return;
	}
	e->apply = (struct pg_ec_apply){ .pg = pg, .kind = del ? PG_EC_DELETE : PG_EC_PREPARE,
					 .shard = local, .offset = offset, .len = len,
					 .buf = e->cols[pg->shard[0]], .version = op->version,
					 .done = write_local_applied, .ctx = e };
	op->local_busy = true;
	pg_ec_apply_start(&e->apply);
}

void pg_ec_write_done(struct pg_op *op)
{
	struct pg_ec_op *e = op->ec;
	if (!e || !e->writing || !e->excluded || e->rc)
		return;
	struct osd_pg *pg = op->pg;
	unsigned n = pg->ec->k + pg->ec->m;
	for (unsigned c = 0; c < n; c++)
		if (e->excluded & (1u << c))
			repair_chunk(pg, &e->oid, c, op->version, ((1u << n) - 1) & ~e->excluded);
}

bool pg_ec_commit(struct pg_op *op)
{
	struct pg_ec_op *e = op->ec;
	struct osd_pg *pg = op->pg;
	if (op->op.type != OSD_OP_WRITE || e->committing)
		return false;
	e->committing = true;
	op->pending = pg->n_acting;
	op->waiting_on = (1u << pg->n_acting) - 1;
	uint64_t gen = pg->gen;
	for (uint32_t i = 1; i < pg->n_acting; i++) {
		struct pg_subop sub = { .type = PG_SUB_CHUNK_COMMIT,
					.oid = object_shard(&op->op.oid, pg->shard[i]),
					.version = op->version, .clone_snap = e->clone_snap };
		if (pg_call_subop(pg, pg->acting[i], &sub, NULL, pg_io_write_remote_done, op, 0)) {
			char why[64];
			snprintf(why, sizeof(why), "cannot send a commit to osd.%u", pg->acting[i]);
			pg_repeer(pg, why); /* peering commits it */
		}
		if (pg->gen != gen)
			return true;
	}
	e->apply = (struct pg_ec_apply){ .pg = pg, .kind = PG_EC_COMMIT,
					 .shard = pg_local_oid(pg, &op->op.oid),
					 .version = op->version, .clone_snap = e->clone_snap,
					 .done = write_local_applied, .ctx = e };
	op->local_busy = true;
	pg_ec_apply_start(&e->apply);
	return true;
}

void pg_ec_write(struct pg_op *op)
{
	struct osd_pg *pg = op->pg;
	bool del = op->op.type == OSD_OP_DELETE;
	struct pg_ec_op *e = del ? calloc(1, sizeof(*e)) : ec_op_new(op, true);
	if (!e) {
		pg_io_write_failed(op, -ENOMEM, "out of memory");
		return;
	}
	e->op = op;
	e->oid = op->op.oid;
	e->writing = true;
	op->ec = e;
	struct store_object_info info;
	struct object_id local = pg_local_oid(pg, &op->op.oid);
	if (del || store_stat(pg->o->store, &local, &info) == -ENOENT) {
		write_encode_send(e); /* nothing old to keep: zeros around the write */
		return;
	}
	reads_start(e);
}

/* --- peering's verdict on an object ---------------------------------------------------- */


struct ec_peer_view {
	uint64_t committed[EC_MAX_CHUNKS], pending[EC_MAX_CHUNKS];
	bool any;
};

static int peer_acting(const struct osd_pg *pg, uint32_t osd)
{
	return pg_acting_index(pg, osd);
}

/* What each peer holds of one object, by chunk. */
static void merge_views(const struct osd_pg *pg, const struct pg_merge_entry *e, size_t n,
			struct ec_peer_view *view /* out: pg->n_peers */)
{
	unsigned chunks = pg->ec->k + pg->ec->m;
	memset(view, 0, pg->n_peers * sizeof(*view));
	for (size_t i = 0; i < n; i++) {
		unsigned c = e[i].oid.shard - 1u;
		if (!e[i].oid.shard || c >= chunks)
			continue; /* not a chunk of this code: nothing to use */
		struct ec_peer_view *v = &view[e[i].peer];
		if (e[i].oid.snap == OBJECT_SNAP_PENDING)
			v->pending[c] = e[i].version;
		else
			v->committed[c] = e[i].version;
		v->any = true;
	}
}

/* How many distinct chunks some peer holds at VERSION (pending counts). */
static unsigned chunks_at(const struct osd_pg *pg, const struct ec_peer_view *view,
			  uint64_t version)
{
	unsigned chunks = pg->ec->k + pg->ec->m, have = 0;
	for (unsigned d = 0; d < chunks; d++) {
		bool held = false;
		for (uint32_t q = 0; q < pg->n_peers && !held; q++)
			held = view[q].committed[d] == version || view[q].pending[d] == version;
		have += held;
	}
	return have;
}

/* V: the newest version an authoritative member holds that K chunks are
 * held at; 0 (remove it) when an authoritative member has nothing of it;
 * with none at K, the newest an authoritative member holds (its
 * recovery finds it unfound, and waits for members away). */
static uint64_t merge_version(const struct osd_pg *pg, const struct ec_peer_view *view,
			      const bool *auth)
{
	unsigned chunks = pg->ec->k + pg->ec->m;
	uint64_t best = 0, newest = 0;
	for (uint32_t p = 0; p < pg->n_peers; p++) {
		if (!auth[p])
			continue;
		if (!view[p].any)
			return 0;
		for (unsigned c = 0; c < 2 * chunks; c++) {
			uint64_t v = c % 2 ? view[p].pending[c / 2] : view[p].committed[c / 2];
			if (!v || v <= best)
				continue;
			newest = v > newest ? v : newest;
			if (chunks_at(pg, view, v) >= pg->ec->k)
				best = v;
		}
	}
	return best ? best : newest;
}

/* Where V is, to read K chunks of it: committed preferred, or pending. */
static void merge_holders(const struct osd_pg *pg, const struct ec_peer_view *view, uint64_t V,
			  struct pg_ec_need *need)
{
	unsigned chunks = pg->ec->k + pg->ec->m;
	for (uint32_t p = 0; p < pg->n_peers && V; p++)
		for (unsigned c = 0; c < chunks; c++) {
			uint32_t osd = pg->peers[p].osd;
			if (view[p].committed[c] == V && (!need->holder[c] || need->holder_pending[c])) {
				need->holder[c] = osd + 1;
				need->holder_pending[c] = false;
			} else if (view[p].pending[c] == V && !need->holder[c]) {
				need->holder[c] = osd + 1; /* read with its pending write over it */
				need->holder_pending[c] = true;
			}
		}
}

/* Acting member I (as peer view V): its chunk at V, committed, pending
 * (commit it) or neither (rebuild it); pending writes that are not V,
 * and chunks that are not its own, go. Its bits in *PUSH and *REMOVE. */
static void merge_member(const struct osd_pg *pg, uint32_t i, const struct ec_peer_view *v,
			 uint64_t V, struct pg_ec_need *need, uint32_t *push, uint32_t *remove)
{
	unsigned chunks = pg->ec->k + pg->ec->m, own = pg->shard[i];
	uint32_t osd = pg->acting[i], bit = 1u << i;
	bool to_commit = V && v->pending[own] == V && v->committed[own] != V;
	for (unsigned c = 0; c < chunks; c++) {
		if (v->pending[c] && !(c == own && to_commit)) {
			/* Not V: it goes first. V (already in, or another
			 * position's): maybe a source, it goes last. */
			struct pg_ec_site site = { osd, (uint8_t)c, true };
			if (v->pending[c] == V)
				need->last[need->n_last++] = site;
			else
				need->first[need->n_first++] = site;
			*remove |= bit;
		}
		if (v->committed[c] && (c != own || !V)) {
			/* Not its chunk: a source until the rebuild is done. */
			need->last[need->n_last++] = (struct pg_ec_site){ osd, (uint8_t)c, false };
			*remove |= bit;
		}
	}
	if (!V)
		return;
	if (to_commit) {
		need->commit[need->n_commit++] = (struct pg_ec_site){ osd, (uint8_t)own, true };
		*push |= bit;
	} else if (v->committed[own] != V) {
		need->rebuild |= bit;
		*push |= bit;
		if (v->committed[own] > V) { /* never acknowledged: it goes first */
			need->first[need->n_first++] = (struct pg_ec_site){ osd, (uint8_t)own, false };
			*remove |= bit;
		}
	}
}

/* OBJ's needs go to recovery (NEED copied). */
static void merge_record(struct osd_pg *pg, const struct object_id *oid, uint64_t V,
			 const struct pg_ec_need *need, uint32_t push, uint32_t remove)
{
	unsigned chunks = pg->ec->k + pg->ec->m;
	char id[64], held[64] = "";
	for (unsigned c = 0, at = 0; c < chunks && at < sizeof(held); c++)
		at += (unsigned)snprintf(held + at, sizeof(held) - at, " %d", (int)need->holder[c] - 1);
	LOG_DEBUG("osd.%u pg %u.%x: %s: version %" PRIx64 ", rebuild %x, %u commits, remove %x, "
		  "held by%s",
		  pg->o->id, pg->pool, pg->pg, object_id_str(oid, id, sizeof(id)), V, need->rebuild,
		  need->n_commit, remove, held);
	struct pg_ec_need *copy = malloc(sizeof(*copy));
	if (!copy) {
		pg_repeer(pg, "out of memory");
		return;
	}
	*copy = *need;
	uint32_t no_sources[1] = { 0 }; /* (an EC item reads from need->holder) */
	pg_recovery_need(pg, oid, V, push, remove, no_sources, 0);
	struct pg_obj *obj = pg_obj_get(pg, oid, false);
	if (!obj) {
		free(copy);
		return;
	}
	free(obj->ec);
	obj->ec = copy;
	for (uint32_t i = 0; i < pg->n_acting; i++)
		if (copy->rebuild & (1u << i))
			pg->ec_lacking[i]++;
}

/* One object (a head with its pending writes, or a clone): V and what
 * each member needs. */
static void merge_one(struct osd_pg *pg, const struct object_id *oid,
		      const struct pg_merge_entry *e, size_t n, const bool *auth)
{
	struct ec_peer_view view[PG_PEERS_MAX];
	merge_views(pg, e, n, view);
	uint64_t V = merge_version(pg, view, auth);
	struct pg_ec_need need;
	memset(&need, 0, sizeof(need));
	merge_holders(pg, view, V, &need);
	uint32_t push = 0, remove = 0, seen = 0;
	for (uint32_t p = 0; p < pg->n_peers; p++) {
		int i = peer_acting(pg, pg->peers[p].osd);
		if (i < 0 || !view[p].any)
			continue; /* a non-member's copies go with its stray PG */
		seen |= 1u << i;
		merge_member(pg, (uint32_t)i, &view[p], V, &need, &push, &remove);
	}
	for (uint32_t i = 0; i < pg->n_acting && V; i++)
		if (!(seen & (1u << i))) { /* nothing of it at all */
			need.rebuild |= 1u << i;
			push |= 1u << i;
		}
	/* Versions resume above every one seen of this interval. */
	for (size_t i = 0; i < n; i++)
		if (e[i].version >> 32 >= pg->interval && (e[i].version & 0xffffffffu) > pg->seq)
			pg->seq = e[i].version & 0xffffffffu;
	if (push | remove)
		merge_record(pg, oid, V, &need, push, remove);
}

void pg_ec_merge(struct osd_pg *pg, const struct pg_merge_entry *e, size_t n, const bool *auth)
{
	/* Sorted by snap: the head's chunks, each clone's, then the pending
	 * writes (OBJECT_SNAP_PENDING is above every snapshot id). */
	size_t heads = 0;
	while (heads < n && e[heads].oid.snap == OBJECT_SNAP_HEAD)
		heads++;
	size_t pend = heads;
	while (pend < n && e[pend].oid.snap != OBJECT_SNAP_PENDING)
		pend++;
	struct pg_merge_entry *head = malloc((heads + (n - pend) + 1) * sizeof(*head));
	if (!head) {
		pg_repeer(pg, "out of memory");
		return;
	}
	memcpy(head, e, heads * sizeof(*head));
	memcpy(head + heads, e + pend, (n - pend) * sizeof(*head));
	struct object_id oid = object_whole(&e[0].oid);
	oid.snap = OBJECT_SNAP_HEAD;
	if (heads + (n - pend))
		merge_one(pg, &oid, head, heads + (n - pend), auth);
	free(head);
	for (size_t i = heads; i < pend;) {
		size_t j = i + 1;
		while (j < pend && e[j].oid.snap == e[i].oid.snap)
			j++;
		oid.snap = e[i].oid.snap;
		merge_one(pg, &oid, e + i, j - i, auth);
		i = j;
	}
}

/* --- recovery of an object ------------------------------------------------------------- */

/* One recovery item of an EC object (pg_recovery.c starts it): early
 * drops, the reads of K chunks at V and the rebuild of the members
 * lacking theirs; then, once the PG is active (its record names the
 * members holding V, so nothing older is needed any more), the commits
 * of V where it is pending and the late drops. Each phase waits for all
 * its pieces. */
struct pg_ec_rec {
	struct pg_rec *rec; /* pg_recovery.c's item */
	struct osd_pg *pg;
	struct pg_obj *obj;
	int phase;
	unsigned pending, local_busy;
	int rc;
	bool abandoned; /* the PG was reset: the last local piece back ends it */
	uint32_t got;
	uint32_t bad; /* chunks whose read failed its checksum or the device */
	uint8_t written[PG_WRITTEN_MAP_BYTES];
	uint8_t *cols[EC_MAX_CHUNKS];
	uint8_t *over[EC_MAX_CHUNKS]; /* a holder's pending write at V */
	uint8_t over_written[EC_MAX_CHUNKS][PG_WRITTEN_MAP_BYTES];
	struct ec_local {
		struct pg_ec_rec *r;
		struct store_req req;
		struct pg_ec_apply apply;
		unsigned chunk;
		int read; /* READ_AT_V, READ_BASE, READ_PENDING */
	} local[2 * EC_MAX_CHUNKS + 2]; /* the primary's own pieces of a phase */
	unsigned n_local;
	/* The first phase starts from the loop, never inside the caller of
	 * pg_recovery_kick (an item with nothing to send would end there). */
	struct io_timer start;
};

enum { ECR_FIRST, ECR_READ, ECR_PUSH, ECR_COMMIT, ECR_LAST, ECR_DONE };
enum { READ_AT_V = 1, READ_BASE, READ_PENDING };

static void ecr_phase(struct pg_ec_rec *r);

static void ecr_free(struct pg_ec_rec *r)
{
	for (unsigned i = 0; i < sizeof(r->local) / sizeof(r->local[0]); i++)
		free(r->local[i].apply.scratch); /* a commit cut short (osd_forget) */
	for (unsigned c = 0; c < EC_MAX_CHUNKS; c++) {
		free(r->cols[c]);
		free(r->over[c]);
	}
	free(r);
}

static void ecr_piece(struct pg_ec_rec *r, int rc)
{
	if (rc && !r->rc)
		r->rc = rc;
	if (--r->pending == 0)
		ecr_phase(r);
}

/* A local piece is back: true when R is still to be used. */
static bool ecr_local_back(struct pg_ec_rec *r)
{
	r->local_busy--;
	if (!r->abandoned)
		return true;
	if (!r->local_busy) {
		struct pg_rec *rec = r->rec;
		ecr_free(r);
		pg_recovery_ec_finished(rec, -ECANCELED); /* frees the item too */
	}
	return false;
}

static struct ec_local *ecr_local(struct pg_ec_rec *r, unsigned chunk)
{
	BASALT_ASSERT(r->n_local < sizeof(r->local) / sizeof(r->local[0]));
	struct ec_local *l = &r->local[r->n_local++];
	memset(l, 0, sizeof(*l));
	l->r = r;
	l->chunk = chunk;
	r->local_busy++;
	r->pending++;
	return l;
}

static void ecr_applied(struct pg_ec_apply *a, int rc)
{
	struct ec_local *l = a->ctx;
	struct pg_ec_rec *r = l->r;
	if (ecr_local_back(r))
		ecr_piece(r, rc);
}

/* A chunk read back (READ_*): 0, or why it cannot serve. */
static int ecr_read_got(struct pg_ec_rec *r, unsigned c, int read, int rc, uint64_t version,
			const uint8_t *written)
{
	if (read == READ_BASE && rc == -ENOENT)
		return 0; /* only its pending write exists: zeros under it */
	if (rc == -EBADMSG || rc == -EIO) {
		r->bad |= 1u << c; /* another source, and this one rebuilt too */
		return 0;
	}
	if (rc)
		return rc;
	if (read != READ_BASE && version != r->obj->auth_version)
		return -ESTALE; /* it changed since peering */
	uint8_t *bm = read == READ_PENDING ? r->over_written[c] : r->written;
	for (unsigned b = 0; b < PG_WRITTEN_MAP_BYTES; b++)
		bm[b] |= written[b];
	if (read != READ_BASE)
		r->got |= 1u << c;
	return 0;
}

static void ecr_store_done(struct store_req *req, int res)
{
	struct ec_local *l = req->ctx;
	struct pg_ec_rec *r = l->r;
	if (req->op != STORE_OP_READ)
		pg_store_write_done(r->pg);
	if (!ecr_local_back(r))
		return;
	if (req->op == STORE_OP_DELETE && res == -ENOENT)
		res = 0;
	if (l->read)
		res = ecr_read_got(r, l->chunk, l->read, res, req->version, req->written);
	ecr_piece(r, res);
}

static void ecr_remote_done(struct pg_call *call, int rc, struct msg *reply)
{
	struct pg_ec_rec *r = call->ctx;
	struct pg_subop_reply rep;
	(void)rc;
	if (pg_subop_reply_decode(reply, &rep))
		rep.rc = -EBADMSG;
	if (rep.rc == -ENOENT && call->arg == 2)
		rep.rc = 0; /* a drop of what is gone already */
	if (call->arg >= 16) { /* a read: chunk in the low bits, what in the high */
		unsigned c = (unsigned)call->arg & 0xff;
		int read = (int)(call->arg >> 8);
		uint32_t bs = store_block_size(r->pg->o->store);
		uint8_t *into = read == READ_PENDING ? r->over[c] : r->cols[c];
		if (!rep.rc && pg_chunks_unpack(reply->data, reply->hdr.data_len, rep.written, bs,
						into, NULL, NULL) < 0)
			rep.rc = -EBADMSG;
		rep.rc = ecr_read_got(r, c, read, rep.rc, rep.version, rep.written);
	}
	ecr_piece(r, rep.rc);
}

static void ecr_call(struct pg_ec_rec *r, uint32_t osd, struct pg_subop *sub,
		     struct pg_data *data, uint64_t arg)
{
	r->pending++;
	if (pg_call_subop(r->pg, osd, sub, data, ecr_remote_done, r, arg)) {
		r->pending--;
		if (!r->rc)
			r->rc = -ENOTCONN;
	}
}

static struct object_id ecr_oid(const struct pg_ec_rec *r, unsigned chunk, bool pending)
{
	struct object_id o = object_shard(&r->obj->oid, chunk);
	if (pending)
		o.snap = OBJECT_SNAP_PENDING;
	return o;
}

static void ecr_commits(struct pg_ec_rec *r)
{
	const struct pg_ec_need *n = r->obj->ec;
	for (uint32_t i = 0; i < n->n_commit; i++) {
		struct object_id shard = ecr_oid(r, n->commit[i].chunk, false);
		if (n->commit[i].osd == r->pg->o->id) {
			struct ec_local *l = ecr_local(r, n->commit[i].chunk);
			l->apply = (struct pg_ec_apply){ .pg = r->pg, .kind = PG_EC_COMMIT,
							 .shard = shard, .version = r->obj->auth_version,
							 .done = ecr_applied, .ctx = l };
			pg_ec_apply_start(&l->apply);
			continue;
		}
		struct pg_subop sub = { .type = PG_SUB_CHUNK_COMMIT, .oid = shard,
					.version = r->obj->auth_version };
		ecr_call(r, n->commit[i].osd, &sub, NULL, 1);
	}
}

static void ecr_drops(struct pg_ec_rec *r, const struct pg_ec_site *sites, uint32_t count)
{
	for (uint32_t i = 0; i < count; i++) {
		struct object_id oid = ecr_oid(r, sites[i].chunk, sites[i].pending);
		char id[64];
		LOG_DEBUG("pg %u.%x: dropping %s on osd.%u", r->pg->pool, r->pg->pg,
			  object_id_str(&oid, id, sizeof(id)), sites[i].osd);
		if (sites[i].osd == r->pg->o->id) {
			struct ec_local *l = ecr_local(r, sites[i].chunk);
			l->req = (struct store_req){ .op = STORE_OP_DELETE, .oid = oid,
						     .done = ecr_store_done, .ctx = l };
			r->pg->store_writes++;
			pg_log_change(r->pg, &oid, 0);
			store_submit(r->pg->o->store, &l->req);
			continue;
		}
		struct pg_subop sub = { .type = PG_SUB_REMOVE, .oid = oid };
		ecr_call(r, sites[i].osd, &sub, NULL, 2);
	}
}

/* Reads chunk C's OID (the chunk, or its pending write) from OSD into BUF. */
static void ecr_read_one(struct pg_ec_rec *r, uint32_t osd, unsigned c, int read, uint8_t *buf)
{
	struct osd_pg *pg = r->pg;
	struct object_id oid = ecr_oid(r, c, read == READ_PENDING);
	if (osd == pg->o->id) {
		struct ec_local *l = ecr_local(r, c);
		l->read = read;
		l->req = (struct store_req){ .op = STORE_OP_READ, .oid = oid,
					     .len = store_block_size(pg->o->store), .buf = buf,
					     .done = ecr_store_done, .ctx = l };
		store_submit(pg->o->store, &l->req);
		return;
	}
	struct pg_subop sub = { .type = PG_SUB_READ, .oid = oid };
	ecr_call(r, osd, &sub, NULL, (uint64_t)read << 8 | c);
}

/* Asks K chunks at V of their holders (the primary's own first); a chunk
 * only pending at V is read with its pending write, laid over it after. */
static void ecr_reads(struct pg_ec_rec *r)
{
	struct osd_pg *pg = r->pg;
	const struct pg_ec_need *n = r->obj->ec;
	unsigned k = pg->ec->k, chunks = k + pg->ec->m;
	unsigned asked = (unsigned)__builtin_popcount(r->got);
	uint32_t bs = store_block_size(pg->o->store);
	for (int pass = 0; pass < 2; pass++)
		for (unsigned c = 0; c < chunks && asked < k; c++) {
			uint32_t osd = n->holder[c] - 1;
			if (!n->holder[c] || (osd == pg->o->id) != (pass == 0) || r->cols[c])
				continue;
			if (posix_memalign((void **)&r->cols[c], 4096, bs) ||
			    (n->holder_pending[c] && posix_memalign((void **)&r->over[c], 4096, bs))) {
				r->rc = -ENOMEM;
				return;
			}
			memset(r->cols[c], 0, bs);
			asked++;
			if (!n->holder_pending[c]) {
				ecr_read_one(r, osd, c, READ_AT_V, r->cols[c]);
				continue;
			}
			ecr_read_one(r, osd, c, READ_BASE, r->cols[c]);
			ecr_read_one(r, osd, c, READ_PENDING, r->over[c]);
		}
	if (asked < k)
		r->rc = -ENODATA; /* fewer than K chunks of it are left */
}

/* Bad chunks read: they are no source any more, and a member holding
 * one as its own gets it rebuilt as well (read repair within recovery).
 * True when reads must be asked again. */
static bool ecr_bad_sources(struct pg_ec_rec *r)
{
	struct osd_pg *pg = r->pg;
	struct pg_ec_need *n = r->obj->ec;
	if (!r->bad)
		return false;
	for (unsigned c = 0; c < EC_MAX_CHUNKS; c++) {
		if (!(r->bad & (1u << c)))
			continue;
		uint32_t osd = n->holder[c] - 1;
		int i = pg_acting_index(pg, osd);
		if (i >= 0 && pg->shard[i] == c && !(n->rebuild & (1u << i))) {
			n->rebuild |= 1u << i;
			pg->ec_lacking[i]++;
			pg->bad_found++;
			pg->o->pgs->bad_found++;
			r->obj->repairing = true;
		}
		n->holder[c] = 0;
		free(r->cols[c]);
		free(r->over[c]);
		r->cols[c] = r->over[c] = NULL;
		r->got &= ~(1u << c);
	}
	r->bad = 0;
	return true;
}

/* Every chunk from the K read, then each member lacking its own gets it. */
static void ecr_pushes(struct pg_ec_rec *r)
{
	struct osd_pg *pg = r->pg;
	unsigned chunks = pg->ec->k + pg->ec->m;
	uint32_t bs = store_block_size(pg->o->store);
	for (unsigned c = 0; c < chunks; c++) {
		if (r->over[c]) { /* the pending write's units over the chunk */
			for (uint32_t u = 0; u < bs / EC_STRIPE_UNIT; u++)
				if (r->over_written[c][u / 8] & (1u << (u % 8)))
					memcpy(r->cols[c] + u * EC_STRIPE_UNIT,
					       r->over[c] + u * EC_STRIPE_UNIT, EC_STRIPE_UNIT);
			for (unsigned b = 0; b < PG_WRITTEN_MAP_BYTES; b++)
				r->written[b] |= r->over_written[c][b];
		}
		if (!r->cols[c] && posix_memalign((void **)&r->cols[c], 4096, bs)) {
			r->cols[c] = NULL;
			r->rc = -ENOMEM;
			return;
		}
	}
	if ((r->rc = ec_reconstruct(pg->ec, bs, r->cols, r->got)))
		return;
	for (uint32_t i = 0; i < pg->n_acting; i++) {
		if (!(r->obj->ec->rebuild & (1u << i)))
			continue;
		unsigned c = pg->shard[i];
		struct object_id shard = ecr_oid(r, c, false);
		if (i == 0) {
			struct ec_local *l = ecr_local(r, c);
			l->req = (struct store_req){ .op = STORE_OP_WRITE, .oid = shard, .len = bs,
						     .buf = r->cols[c], .version = r->obj->auth_version,
						     .masked = true, .repair = true,
						     .done = ecr_store_done, .ctx = l };
			memcpy(l->req.written, r->written, sizeof(l->req.written));
			pg->store_writes++;
			pg_log_change(pg, &shard, r->obj->auth_version);
			store_submit(pg->o->store, &l->req);
			continue;
		}
		uint32_t len = pg_chunks_packed_len(r->written, bs);
		void *packed = NULL;
		if (len && posix_memalign(&packed, 4096, len)) {
			r->rc = -ENOMEM;
			return;
		}
		if (len)
			pg_chunks_pack(packed, r->cols[c], bs, r->written, NULL, NULL);
		struct pg_data *d = len ? pg_data_wrap(packed, len, NULL) : NULL;
		if (len && !d) {
			free(packed);
			r->rc = -ENOMEM;
			return;
		}
		struct pg_subop sub = { .type = PG_SUB_PUSH, .oid = shard, .len = len,
					.version = r->obj->auth_version };
		memcpy(sub.written, r->written, sizeof(sub.written));
		ecr_call(r, pg->acting[i], &sub, d, 1);
		pg_data_put(d);
		pg->o->pgs->rec_bytes_total += len;
	}
}

/* The members given their chunk no longer lack it. */
static void ecr_rebuilt(struct pg_ec_rec *r)
{
	struct pg_ec_need *n = r->obj->ec;
	for (uint32_t i = 0; i < r->pg->n_acting; i++)
		if (n->rebuild & (1u << i))
			r->pg->ec_lacking[i]--;
	n->rebuild = 0;
}

static void ecr_end(struct pg_ec_rec *r, int rc)
{
	struct pg_rec *rec = r->rec;
	ecr_free(r);
	pg_recovery_ec_finished(rec, rc);
}

static void ecr_phase(struct pg_ec_rec *r)
{
	struct pg_ec_need *n = r->obj->ec;
	while (!r->pending) {
		if (r->rc) { /* (no piece is out: local ones included) */
			ecr_end(r, r->rc);
			return;
		}
		r->n_local = 0;
		r->pending++; /* held while a phase is being sent */
		switch (r->phase++) {
		case ECR_FIRST:
			ecr_drops(r, n->first, n->n_first);
			n->n_first = 0;
			break;
		case ECR_READ:
			if (n->rebuild)
				ecr_reads(r);
			break;
		case ECR_PUSH:
			if (ecr_bad_sources(r)) {
				r->phase = ECR_READ; /* K good ones, from the others */
				break;
			}
			if (n->rebuild)
				ecr_pushes(r);
			break;
		case ECR_COMMIT:
			if (n->rebuild)
				ecr_rebuilt(r);
			if (r->pg->state != PG_STATE_ACTIVE) {
				r->pending--;
				ecr_end(r, -EINPROGRESS); /* again once the record is written */
				return;
			}
			ecr_commits(r);
			break;
		case ECR_LAST:
			ecr_drops(r, n->last, n->n_last);
			break;
		default:
			r->pending--;
			ecr_end(r, 0);
			return;
		}
		if (--r->pending)
			return; /* the pieces call back */
	}
}

static void ecr_start_fire(struct io_timer *t)
{
	ecr_phase(t->ctx);
}

struct pg_ec_rec *pg_ec_recover_new(struct pg_rec *rec, struct pg_obj *obj)
{
	struct pg_ec_rec *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->rec = rec;
	r->pg = obj->pg;
	r->obj = obj;
	io_timer_init(&r->start, ecr_start_fire, r);
	return r;
}

void pg_ec_recover_start(struct pg_ec_rec *r)
{
	io_timer_arm(r->pg->o->loop, &r->start, 0);
}

bool pg_ec_recover_abandon(struct pg_ec_rec *r)
{
	io_timer_disarm(r->pg->o->loop, &r->start);
	if (r->local_busy) {
		r->abandoned = true;
		return false;
	}
	ecr_free(r);
	return true;
}

void pg_ec_recover_forget(struct pg_ec_rec *r)
{
	ecr_free(r);
}

uint32_t pg_ec_lacking(const struct pg_obj *obj)
{
	return obj->ec ? obj->ec->rebuild : 0;
}

void pg_ec_need_drop(struct pg_obj *obj)
{
	if (!obj->ec)
		return;
	for (uint32_t i = 0; i < obj->pg->n_acting; i++)
		if (obj->ec->rebuild & (1u << i))
			obj->pg->ec_lacking[i]--;
	free(obj->ec);
	obj->ec = NULL;
}

int pg_ec_candidates(const struct osd_pg *pg, uint8_t **c, size_t *n)
{
	unsigned chunks = pg->ec->k + pg->ec->m;
	size_t per = 2 * (size_t)chunks, out = 0;
	uint8_t *all = malloc((*n ? *n : 1) * per * PG_INFO_ENTRY_LEN);
	if (!all)
		return -ENOMEM;
	for (size_t i = 0; i < *n; i++) {
		struct pg_info one = { .count = 1, .entries = *c + i * PG_INFO_ENTRY_LEN };
		struct object_id oid;
		uint64_t version;
		pg_info_entry(&one, 0, &oid, &version);
		if (!oid.shard) { /* the PG's own records: as they are */
			memcpy(all + out++ * PG_INFO_ENTRY_LEN, one.entries, PG_INFO_ENTRY_LEN);
			continue;
		}
		if (oid.snap == OBJECT_SNAP_PENDING)
			oid.snap = OBJECT_SNAP_HEAD;
		for (unsigned s = 0; s < chunks; s++) {
			struct object_id shard = object_shard(&oid, s);
			pg_info_entry_put(all + out++ * PG_INFO_ENTRY_LEN, &shard, 0);
			if (oid.snap != OBJECT_SNAP_HEAD)
				continue; /* a clone has no pending write */
			shard.snap = OBJECT_SNAP_PENDING;
			pg_info_entry_put(all + out++ * PG_INFO_ENTRY_LEN, &shard, 0);
		}
	}
	free(*c);
	*c = all;
	*n = out;
	return 0;
}
