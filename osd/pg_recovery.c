/* Recovery on a PG's primary: bringing every acting member to the
 * authoritative state peering found (pg_int.h, invariant 3).
 *
 * Each object some member lacks is one item: the data comes from a member
 * holding the authoritative version (sources are taken in turn, so a
 * rebuild reads from every healthy copy; the primary pulls it first when
 * it lacks it itself), then a member whose copy is newer than the
 * authority (a write never acknowledged) drops it, and every member that
 * lacks the version gets it whole. Items run beside client I/O, at most
 * osd_recovery_max_active at a time per OSD and within
 * osd_recovery_max_bytes_per_sec; an object a client operation waits for
 * goes first, outside those limits. Only objects whose versions differ
 * move, so a member back from a short absence gets only what changed,
 * and an interrupted recovery resumes where it stopped: the next peering
 * finds only what is still different. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/crc32c.h"
#include "common/log.h"
#include "pg_int.h"

struct pg_rec {
	struct list_node node; /* pg->recs */
	struct osd_pg *pg;
	uint64_t gen;
	struct pg_obj *obj;
	struct pg_data *data; /* the authoritative copy */
	/* What a push carries: its written chunks (pg_chunks_pack), DATA itself
	 * when every chunk was written; NULL until the first push, and for an
	 * object never written to. */
	struct pg_data *packed;
	bool packed_ready;
	uint8_t written[PG_WRITTEN_MAP_BYTES]; /* its chunks ever written */
	unsigned pending;     /* pieces of the current phase */
	unsigned local_busy;  /* local store operations in flight */
	int phase;
	uint32_t copies; /* member copies this item fixes */
	bool nospace;	 /* a member's store is full: give up for now */
	struct store_req del, write, read;
	struct pg_ec_rec *ec; /* an EC object's item (pg_ec.c) */
};

enum { REC_FETCH, REC_LOCAL, REC_MEMBERS };

static void rec_phase(struct pg_rec *rec);

static uint32_t popcount32(uint32_t x)
{
	return (uint32_t)__builtin_popcount(x);
}

void pg_recovery_need(struct osd_pg *pg, const struct object_id *oid, uint64_t auth_version,
		      uint32_t need_push, uint32_t need_remove, const uint32_t *sources,
		      uint32_t n_sources)
{
	struct pg_obj *obj = pg_obj_get(pg, oid, true);
	if (!obj) {
		pg_repeer(pg, "out of memory");
		return;
	}
	obj->auth_version = auth_version;
	obj->need_push = need_push;
	obj->need_remove = need_remove;
	obj->n_sources = n_sources;
	memcpy(obj->sources, sources, n_sources * sizeof(*sources));
	list_add_tail(&pg->missing, &obj->rec_node);
	pg->n_missing++;
	pg->degraded += popcount32(need_push | need_remove);
	for (uint32_t i = 0; i < MAP_PG_ACTING_MAX; i++)
		pg->member_needs[i] += ((need_push | need_remove) >> i) & 1;
	if (!list_linked(&pg->active_node))
		list_add_tail(&pg->o->pgs->recovering, &pg->active_node);
}

static void rec_free(struct pg_rec *rec)
{
	if (list_linked(&rec->node))
		list_del(&rec->node);
	pg_data_put(rec->data);
	pg_data_put(rec->packed);
	free(rec);
}

void pg_recovery_reset(struct osd_pg *pg)
{
	struct osd_pgs *t = pg->o->pgs;
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &pg->recs) {
		struct pg_rec *rec = list_entry(pos, struct pg_rec, node);
		list_del(&rec->node);
		rec->obj = NULL;
		if (t->rec_active)
			t->rec_active--;
		if (rec->ec ? pg_ec_recover_abandon(rec->ec) : !rec->local_busy)
			rec_free(rec); /* else its store completion frees it */
	}
	list_for_each_safe(pos, tmp, &pg->objs)
		pg_obj_free(list_entry(pos, struct pg_obj, pg_node));
	list_init(&pg->missing);
	pg->n_missing = 0;
	pg->degraded = 0;
	pg->n_unfound = 0;
	memset(pg->member_needs, 0, sizeof(pg->member_needs));
	memset(pg->ec_lacking, 0, sizeof(pg->ec_lacking));
	if (list_linked(&pg->active_node))
		list_del(&pg->active_node);
}

void pg_recovery_forget(struct osd_pg *pg)
{
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &pg->recs) {
		struct pg_rec *rec = list_entry(pos, struct pg_rec, node);
		if (rec->local_busy && rec->read.buf && !rec->data)
			free(rec->read.buf); /* a local read of the copy in flight */
		if (rec->ec)
			pg_ec_recover_forget(rec->ec);
		rec_free(rec);
	}
}

static void rec_fail(struct pg_rec *rec, const char *what, int rc)
{
	char why[128];
	char oid[64];
	snprintf(why, sizeof(why), "recovery of %s: %s (%s)",
		 object_id_str(&rec->obj->oid, oid, sizeof(oid)), what, strerror(-rc));
	pg_repeer(rec->pg, why);
}

void pg_recovery_pick_target(struct osd_pg *pg)
{
	int best = 0;
	for (uint32_t i = 1; i < pg->n_acting; i++)
		if (pg->member_needs[i] < pg->member_needs[best])
			best = (int)i;
	pg->recover_target = best;
	/* Its objects first, in the order peering found them. */
	struct list_node mine, *pos, *tmp;
	list_init(&mine);
	list_for_each_safe(pos, tmp, &pg->missing) {
		struct pg_obj *obj = list_entry(pos, struct pg_obj, rec_node);
		if ((obj->need_push | obj->need_remove) & (1u << best)) {
			list_del(pos);
			list_add_tail(&mine, pos);
		}
	}
	while (!list_empty(&mine)) {
		pos = mine.prev;
		list_del(pos);
		list_add_head(&pg->missing, pos);
	}
	LOG_INFO("pg %u.%x: no member holds everything; recovering osd.%u first (%" PRIu64
		 " objects) to serve again",
		 pg->pool, pg->pg, pg->acting[best], pg->member_needs[best]);
}

/* While RECOVERING: once the target member holds everything, activate
 * with every member that does (pg_int.h, invariant 3); the others
 * recover while the PG serves. */
static void rec_target_check(struct osd_pg *pg)
{
	if (pg->ec && pg->state == PG_STATE_RECOVERING && pg->n_missing) {
		/* K members holding their chunk of everything (pending
		 * commits and drops left for after the record). */
		uint32_t mask = 0;
		for (uint32_t i = 0; i < pg->n_acting; i++)
			if (!pg->ec_lacking[i])
				mask |= 1u << i;
		if ((unsigned)__builtin_popcount(mask) >= pg->ec->k) {
			LOG_INFO("pg %u.%x: %d members hold their chunks: activating", pg->pool,
				 pg->pg, __builtin_popcount(mask));
			pg_recovered_members(pg, mask);
		}
		return;
	}
	if (pg->state != PG_STATE_RECOVERING || pg->member_needs[pg->recover_target] || !pg->n_missing)
		return;
	uint32_t mask = 0;
	for (uint32_t i = 0; i < pg->n_acting; i++)
		if (!pg->member_needs[i])
			mask |= 1u << i;
	LOG_INFO("pg %u.%x: osd.%u holds everything now: activating", pg->pool, pg->pg,
		 pg->acting[pg->recover_target]);
	pg_recovered_members(pg, mask);
}

/* OBJ no longer needs anything of member INDEX. */
static void obj_member_fixed(struct osd_pg *pg, struct pg_obj *obj, uint32_t index)
{
	uint32_t bit = 1u << index;
	if (!((obj->need_push | obj->need_remove) & bit))
		return;
	obj->need_push &= ~bit;
	obj->need_remove &= ~bit;
	pg->degraded--;
	pg->member_needs[index]--;
}

/* Acting member INDEX now holds the authoritative copy (or none, when
 * there is none). */
static void rec_fixed(struct pg_rec *rec, int index)
{
	struct pg_obj *obj = rec->obj;
	if (index < 0 || !((obj->need_push | obj->need_remove) & (1u << index)))
		return;
	obj_member_fixed(rec->pg, obj, (uint32_t)index);
	if (obj->repairing) {
		rec->pg->bad_repaired++;
		rec->pg->o->pgs->bad_repaired++;
	}
	if (rec->data) /* the bytes that moved: its written chunks */
		rec->pg->o->pgs->rec_bytes_total += pg_chunks_packed_len(rec->written, rec->data->len);
}

/* REC's object goes back on the missing list, to be tried again in 5 s;
 * REC is freed. */
static void rec_retry_later(struct pg_rec *rec)
{
	struct pg_obj *obj = rec->obj;
	struct osd_pg *pg = rec->pg;
	obj->recovering = false;
	obj->urgent = false;
	obj->retry_at_ns = io_now_ns(pg->o->loop) + IO_SEC(5);
	list_add_tail(&pg->missing, &obj->rec_node);
	pg->o->pgs->rec_active--;
	rec_free(rec);
}

/* A member's store is full: the object stays missing on the members not
 * fixed yet, to be tried again later; what waits for it is told so. */
static void rec_abandon(struct pg_rec *rec)
{
	struct osd_pg *pg = rec->pg;
	struct pg_obj *obj = rec->obj;
	char id[64];
	LOG_WARN("pg %u.%x: recovery of %s needs space a member does not have; retrying in "
		 "5 s",
		 pg->pool, pg->pg, object_id_str(&obj->oid, id, sizeof(id)));
	rec_retry_later(rec);
	/* Writes fail; reads and deletes need no room and wait for the
	 * retry (a delete does not wait on recovery at all). */
	pg_io_obj_fail_writes(obj, -ENOSPC);
	rec_target_check(pg);
	pg_scrub_kick(pg);
}

/* REC's object needs nothing more (recovered, or beyond recovery): the
 * operations waiting on it run, and the PG moves on. */
static void rec_settled(struct pg_rec *rec)
{
	struct osd_pg *pg = rec->pg;
	struct pg_obj *obj = rec->obj;
	pg->n_missing--;
	pg->o->pgs->rec_active--;
	rec_free(rec);
	pg_scrub_kick(pg);
	uint64_t gen = pg->gen;
	pg_io_obj_kick(obj);
	if (pg->gen != gen)
		return;
	pg_obj_maybe_free(obj);
	if (!pg->n_missing) {
		if (list_linked(&pg->active_node))
			list_del(&pg->active_node);
		pg_recovery_done(pg);
	} else {
		rec_target_check(pg);
	}
	pg_recovery_kick(pg->o);
}

/* The item is done: the object is the same on every acting member. */
static void rec_done(struct pg_rec *rec)
{
	struct osd_pg *pg = rec->pg;
	struct osd_pgs *t = pg->o->pgs;
	struct pg_obj *obj = rec->obj;
	BASALT_ASSERT(!obj->need_push && !obj->need_remove);
	obj->recovering = false;
	obj->urgent = false;
	if (obj->repairing) {
		char id[64];
		LOG_INFO("pg %u.%x: %s repaired", pg->pool, pg->pg,
			 object_id_str(&obj->oid, id, sizeof(id)));
		obj->repairing = false;
	}
	t->rec_objects_total++;
	rec_settled(rec);
}

static bool rec_current(struct pg_rec *rec)
{
	return rec->gen == rec->pg->gen && rec->obj;
}

static void rec_piece_done(struct pg_rec *rec)
{
	if (--rec->pending == 0)
		rec_phase(rec);
}

/* --- fetching the authoritative copy -------------------------------------------------- */

static void rec_fetch(struct pg_rec *rec);

/* A member of the activation record the PG peered against that was down
 * then: it may hold a good copy when it comes back. */
static int pg_absent_recorded(const struct osd_pg *pg)
{
	return pg->n_away ? (int)pg->away[0] : -1;
}

/* No copy of the object checks out: it is unfound. Its needs go (no
 * member can be given a good copy), what waits on it fails with -EIO
 * (a delete still runs), and the PG lists it. While a recorded member is
 * away it may still hold a good copy: then the object waits for it (the
 * PG peers again when it is back), as Ceph's unfound objects do. */
/* Every copy of auth_version is bad, but peering saw that version
 * missing on an authoritative member: it was never acknowledged, and the
 * object goes back to the newest older version authoritative members
 * hold (or to none). Members holding the bad newer one drop it first. */
static bool rec_fall_back(struct pg_rec *rec)
{
	struct osd_pg *pg = rec->pg;
	struct pg_obj *obj = rec->obj;
	if (!obj->fallback_ok || obj->fallback_version >= obj->auth_version ||
	    (obj->fallback_version && !obj->n_fallback_sources))
		return false;
	char id[64];
	LOG_WARN("pg %u.%x: every copy of %s at version %" PRIx64 " is bad, and it was never "
		 "acknowledged: back to version %" PRIx64,
		 pg->pool, pg->pg, object_id_str(&obj->oid, id, sizeof(id)), obj->auth_version,
		 obj->fallback_version);
	for (uint32_t i = 0; i < pg->n_acting; i++)
		obj_member_fixed(pg, obj, i);
	uint64_t fb = obj->fallback_version;
	for (uint32_t i = 0; i < pg->n_acting; i++) {
		uint64_t v = obj->member_version[i];
		uint32_t bit = 1u << i;
		if (v == fb)
			continue;
		if (v > fb || (!fb && v))
			obj->need_remove |= bit;
		if (fb)
			obj->need_push |= bit;
		pg->degraded++;
		pg->member_needs[i]++;
	}
	obj->auth_version = fb;
	obj->n_sources = obj->n_fallback_sources;
	memcpy(obj->sources, obj->fallback_sources, obj->n_sources * sizeof(*obj->sources));
	obj->fallback_ok = false; /* once */
	if (!obj->need_push && !obj->need_remove) {
		rec_done(rec); /* every member holds it already */
		return true;
	}
	obj->recovering = false;
	obj->urgent = false;
	list_add_head(&pg->missing, &obj->rec_node);
	pg->o->pgs->rec_active--;
	rec_free(rec);
	pg_io_obj_kick(obj);
	return true;
}

static void rec_unfound(struct pg_rec *rec)
{
	struct osd_pg *pg = rec->pg;
	struct pg_obj *obj = rec->obj;
	char id[64];
	if (rec_fall_back(rec))
		return;
	int away = pg_absent_recorded(pg);
	if (away >= 0) {
		LOG_WARN("pg %u.%x: no copy of %s on the OSDs up checks out; it waits for osd.%d",
			 pg->pool, pg->pg, object_id_str(&obj->oid, id, sizeof(id)), away);
		rec_retry_later(rec);
		pg_scrub_kick(pg);
		return;
	}
	LOG_ERROR("pg %u.%x: object %s has no good copy left: its reads fail with EIO until "
		  "it is written whole or deleted",
		  pg->pool, pg->pg, object_id_str(&obj->oid, id, sizeof(id)));
	for (uint32_t i = 0; i < pg->n_acting; i++)
		obj_member_fixed(pg, obj, i);
	/* Nor does an EC member lack its chunk any more: none can be made,
	 * and a PG recovering K members before it serves would wait forever. */
	pg_ec_need_drop(obj);
	obj->recovering = false;
	obj->urgent = false;
	obj->repairing = false;
	if (!obj->unfound) {
		obj->unfound = true;
		pg->n_unfound++;
	}
	rec_settled(rec); /* what waits on it is answered */
}

/* A source's copy (OSD's, or this OSD's own) failed: the next source. */
static void rec_source_bad(struct pg_rec *rec, uint32_t osd)
{
	if (!pg_recovery_bad_copy(rec->obj, osd, rec->obj->auth_version)) {
		rec_unfound(rec);
		return;
	}
	rec->phase = REC_FETCH;
	rec_fetch(rec);
}

static void rec_pulled(struct pg_call *call, int rc, struct msg *reply)
{
	struct pg_rec *rec = call->ctx;
	struct pg_subop_reply r;
	(void)rc;
	if (pg_subop_reply_decode(reply, &r))
		r.rc = -EPROTO; /* (-EBADMSG would say its copy is bad) */
	if (!r.rc && r.version != rec->obj->auth_version)
		r.rc = -ESTALE; /* it changed since peering */
	uint32_t bs = store_block_size(rec->pg->o->store), len = reply->hdr.data_len;
	if (!r.rc && len != bs && len != pg_chunks_packed_len(r.written, bs))
		r.rc = -EPROTO; /* neither the block nor its written chunks */
	if (r.rc == -EBADMSG || r.rc == -EIO) {
		rec_source_bad(rec, call->osd); /* its copy is bad: the next one */
		return;
	}
	if (r.rc) {
		rec_fail(rec, "pulling it failed", r.rc);
		return;
	}
	/* The CRC of each 4 KiB comes with the data (msg_chunk_crcs): of the
	 * block, or of its written chunks, which unpacking spreads out. */
	void *buf = reply->data;
	const uint32_t *crc = len ? msg_chunk_crcs(reply) : NULL;
	uint32_t block_crc[PG_WRITTEN_MAP_BYTES * 8];
	if (len != bs && posix_memalign(&buf, 4096, bs)) {
		rec_fail(rec, "pulling it failed", -ENOMEM);
		return;
	}
	if (len != bs) /* its written chunks: the block again, zeros elsewhere */
		crc = pg_chunks_unpack(reply->data, len, r.written, bs, buf, crc, block_crc) == 1
			      ? block_crc
			      : NULL;
	rec->data = pg_data_wrap(buf, bs, crc);
	if (!rec->data) {
		if (buf != reply->data)
			free(buf);
		rec_fail(rec, "pulling it failed", -ENOMEM);
		return;
	}
	if (buf == reply->data)
		reply->data = NULL; /* ours now */
	memcpy(rec->written, r.written, sizeof(rec->written));
	rec->phase = REC_LOCAL;
	rec_phase(rec);
}

static void rec_read_done(struct store_req *req, int res)
{
	struct pg_rec *rec = req->ctx;
	rec->local_busy--;
	if (!rec_current(rec)) {
		free(req->buf);
		if (!rec->local_busy)
			rec_free(rec);
		return;
	}
	if (res == -EBADMSG || res == -EIO) {
		free(req->buf);
		rec_source_bad(rec, rec->pg->o->id); /* ours is bad: pull another */
		return;
	}
	if (res || req->version != rec->obj->auth_version) {
		free(req->buf);
		rec_fail(rec, "reading the local copy failed", res ? res : -ESTALE);
		return;
	}
	rec->data = pg_data_wrap(req->buf, req->len, req->crc_out);
	if (!rec->data) {
		free(req->buf);
		rec_fail(rec, "reading the local copy failed", -ENOMEM);
		return;
	}
	memcpy(rec->written, req->written, sizeof(rec->written));
	rec->phase = REC_MEMBERS;
	rec_phase(rec);
}

/* Gets the authoritative copy into rec->data: pulled from a source when
 * the primary lacks it, else read locally. */
static void rec_fetch(struct pg_rec *rec)
{
	struct osd_pg *pg = rec->pg;
	struct pg_obj *obj = rec->obj;
	struct osd *o = pg->o;
	uint32_t bs = store_block_size(o->store);
	if (!obj->auth_version) { /* nothing to copy: only removals */
		rec->phase = REC_LOCAL;
		rec_phase(rec);
		return;
	}
	if (obj->need_push & 1) {
		uint32_t src = UINT32_MAX;
		for (uint32_t k = 0; k < obj->n_sources; k++) {
			uint32_t s = obj->sources[(o->pgs->rec_objects_total + k) % obj->n_sources];
			if (s != o->id) {
				src = s;
				break;
			}
		}
		if (src == UINT32_MAX) {
			rec_unfound(rec); /* every copy there was failed */
			return;
		}
		struct pg_subop sub = { .type = PG_SUB_READ, .oid = obj->oid };
		int rc = pg_call_subop(pg, src, &sub, NULL, rec_pulled, rec, 0);
		if (rc)
			rec_fail(rec, "cannot reach the member to pull it from", rc);
		return;
	}
	/* The store sets the CRC of each 4 KiB after the data: the pushes'
	 * frames are sealed from them. */
	void *buf = NULL;
	if (posix_memalign(&buf, 4096, bs + bs / CRC32C_CHUNK * sizeof(uint32_t))) {
		rec_fail(rec, "reading the local copy failed", -ENOMEM);
		return;
	}
	rec->read = (struct store_req){ .op = STORE_OP_READ, .oid = obj->oid, .len = bs,
					.buf = buf, .crc_out = (uint32_t *)((uint8_t *)buf + bs),
					.done = rec_read_done, .ctx = rec };
	rec->local_busy++;
	store_submit(o->store, &rec->read);
}

/* --- applying it --------------------------------------------------------------------- */

static void rec_local_done(struct store_req *req, int res)
{
	struct pg_rec *rec = req->ctx;
	struct osd_pg *pg = rec->pg;
	rec->local_busy--;
	pg_store_write_done(pg);
	if (!rec_current(rec)) {
		if (!rec->local_busy)
			rec_free(rec);
		return;
	}
	if (res == -ENOSPC) {
		rec->nospace = true;
	} else if (res && !(res == -ENOENT && req == &rec->del)) {
		rec_fail(rec, "the local store refused it", res);
		return;
	} else if (req == &rec->write || !(rec->obj->need_push & 1)) {
		rec_fixed(rec, 0); /* the primary's copy is right now */
	}
	rec_piece_done(rec);
}

/* The primary's own copy: drop a newer unacknowledged one, write the
 * authoritative one. */
static void rec_local(struct pg_rec *rec)
{
	struct osd_pg *pg = rec->pg;
	struct pg_obj *obj = rec->obj;
	struct store *s = pg->o->store;
	rec->phase = REC_MEMBERS;
	rec->pending = 1; /* until both are submitted */
	if (obj->need_remove & 1) {
		rec->del = (struct store_req){ .op = STORE_OP_DELETE, .oid = obj->oid,
					       .done = rec_local_done, .ctx = rec };
		rec->pending++;
		rec->local_busy++;
		pg->store_writes++;
		pg_log_change(pg, &obj->oid, 0);
		store_submit(s, &rec->del);
	}
	if ((obj->need_push & 1) && rec->data) {
		rec->write = (struct store_req){ .op = STORE_OP_WRITE, .oid = obj->oid,
						 .len = rec->data->len, .buf = rec->data->buf,
						 .crc = rec->data->crc, .version = obj->auth_version, .masked = true,
						 .repair = true, .done = rec_local_done, .ctx = rec };
		memcpy(rec->write.written, rec->written, sizeof(rec->written));
		rec->pending++;
		rec->local_busy++;
		pg->store_writes++;
		pg_log_change(pg, &obj->oid, obj->auth_version);
		store_submit(s, &rec->write);
	}
	rec_piece_done(rec);
}

static void rec_member_done(struct pg_call *call, int rc, struct msg *reply)
{
	struct pg_rec *rec = call->ctx;
	struct pg_subop_reply r;
	(void)rc;
	if (pg_subop_reply_decode(reply, &r))
		r.rc = -EBADMSG;
	if (r.rc == -ENOSPC) {
		rec->nospace = true;
	} else if (r.rc) {
		char what[64];
		snprintf(what, sizeof(what), "osd.%u refused it", call->osd);
		rec_fail(rec, what, r.rc);
		return;
	} else if (call->arg) { /* the push (or a removal with nothing to push) */
		rec_fixed(rec, pg_acting_index(rec->pg, call->osd));
	}
	rec_piece_done(rec);
}

/* rec->packed from rec->data, once: 0, or -ENOMEM. */
static int rec_pack(struct pg_rec *rec)
{
	if (rec->packed_ready || !rec->data)
		return 0;
	uint32_t bs = rec->data->len, len = pg_chunks_packed_len(rec->written, bs);
	if (len == bs) {
		pg_data_get(rec->data);
		rec->packed = rec->data;
	} else if (len) {
		void *buf;
		uint32_t crc[PG_WRITTEN_MAP_BYTES * 8];
		if (posix_memalign(&buf, 4096, len))
			return -ENOMEM;
		pg_chunks_pack(buf, rec->data->buf, bs, rec->written, crc, rec->data->crc);
		if (!(rec->packed = pg_data_wrap(buf, len, rec->data->crc ? crc : NULL))) {
			free(buf);
			return -ENOMEM;
		}
	}
	rec->packed_ready = true;
	return 0;
}

static void rec_members(struct pg_rec *rec)
{
	struct osd_pg *pg = rec->pg;
	struct pg_obj *obj = rec->obj;
	uint64_t gen = pg->gen;
	if (rec_pack(rec)) {
		rec_fail(rec, "packing it for its members failed", -ENOMEM);
		return;
	}
	rec->pending = 1;
	rec->phase = -1; /* done when these are */
	for (uint32_t i = 1; i < pg->n_acting && pg->gen == gen; i++) {
		uint32_t bit = 1u << i;
		bool push = (obj->need_push & bit) && rec->data;
		if (obj->need_remove & bit) {
			struct pg_subop sub = { .type = PG_SUB_REMOVE, .oid = obj->oid };
			rec->pending++;
			if (pg_call_subop(pg, pg->acting[i], &sub, NULL, rec_member_done, rec,
					  !push)) {
				rec_fail(rec, "a member is unreachable", -ENOTCONN);
				return;
			}
		}
		if (push) {
			struct pg_subop sub = { .type = PG_SUB_PUSH, .oid = obj->oid,
						.len = rec->packed ? rec->packed->len : 0,
						.version = obj->auth_version };
			memcpy(sub.written, rec->written, sizeof(sub.written));
			rec->pending++;
			if (pg_call_subop(pg, pg->acting[i], &sub, rec->packed, rec_member_done,
					  rec, 1)) {
				rec_fail(rec, "a member is unreachable", -ENOTCONN);
				return;
			}
		}
	}
	if (pg->gen == gen)
		rec_piece_done(rec);
}

static void rec_phase(struct pg_rec *rec)
{
	if (!rec_current(rec))
		return;
	switch (rec->phase) {
	case REC_FETCH:
		rec_fetch(rec);
		return;
	case REC_LOCAL:
		if ((rec->obj->need_push | rec->obj->need_remove) & 1) {
			rec_local(rec);
			return;
		}
		rec->phase = REC_MEMBERS;
		/* fall through */
	case REC_MEMBERS:
		rec_members(rec);
		return;
	default:
		if (rec->nospace)
			rec_abandon(rec);
		else
			rec_done(rec);
	}
}

/* --- scheduling ------------------------------------------------------------------------ */

static void rec_start(struct pg_obj *obj)
{
	struct osd_pg *pg = obj->pg;
	struct pg_rec *rec = calloc(1, sizeof(*rec));
	if (!rec) {
		pg_repeer(pg, "out of memory");
		return;
	}
	list_del(&obj->rec_node);
	obj->recovering = true;
	rec->pg = pg;
	rec->gen = pg->gen;
	rec->obj = obj;
	rec->copies = obj->need_push | obj->need_remove;
	list_add_tail(&pg->recs, &rec->node);
	pg->o->pgs->rec_active++;
	if (pg->ec) {
		if (!(rec->ec = pg_ec_recover_new(rec, obj))) {
			rec_fail(rec, "no memory", -ENOMEM);
			return;
		}
		pg_ec_recover_start(rec->ec);
		return;
	}
	rec->phase = obj->need_push ? REC_FETCH : REC_LOCAL;
	rec_phase(rec);
}

void pg_recovery_ec_finished(struct pg_rec *rec, int rc)
{
	rec->ec = NULL;
	if (!rec_current(rec)) { /* abandoned by a reset */
		rec_free(rec);
		return;
	}
	struct pg_obj *obj = rec->obj;
	struct osd_pg *pg = rec->pg;
	if (rc == -ENODATA) {
		rec_unfound(rec);
		return;
	}
	if (rc == -EINPROGRESS) { /* rebuilt; commits once the PG is active */
		rec_retry_later(rec);
		obj->retry_at_ns = io_now_ns(pg->o->loop) + IO_MS(100);
		rec_target_check(pg);
		return;
	}
	if (rc) {
		rec_fail(rec, "rebuilding its chunks failed", rc);
		return;
	}
	if (obj->repairing) { /* a bad chunk rebuilt (read repair) */
		pg->bad_repaired++;
		pg->o->pgs->bad_repaired++;
	}
	for (uint32_t i = 0; i < pg->n_acting; i++)
		obj_member_fixed(pg, obj, i);
	pg_ec_need_drop(obj);
	rec_done(rec);
}

void pg_recovery_gone(struct pg_obj *obj)
{
	struct osd_pg *pg = obj->pg;
	if (!obj->need_push && !obj->need_remove)
		return;
	BASALT_ASSERT(!obj->recovering);
	for (uint32_t i = 0; i < pg->n_acting; i++)
		obj_member_fixed(pg, obj, i);
	obj->auth_version = 0;
	pg_ec_need_drop(obj);
	if (list_linked(&obj->rec_node))
		list_del(&obj->rec_node);
	pg->n_missing--;
	if (!pg->n_missing) {
		if (list_linked(&pg->active_node))
			list_del(&pg->active_node);
		pg_recovery_done(pg);
	}
}

/* Drops OSD from OBJ's sources. */
static void obj_source_drop(struct pg_obj *obj, uint32_t osd)
{
	uint32_t k = 0;
	for (uint32_t i = 0; i < obj->n_sources; i++)
		if (obj->sources[i] != osd)
			obj->sources[k++] = obj->sources[i];
	obj->n_sources = k;
}

bool pg_recovery_bad_copy(struct pg_obj *obj, uint32_t osd, uint64_t version)
{
	struct osd_pg *pg = obj->pg;
	int index = pg_acting_index(pg, osd);
	char id[64];
	object_id_str(&obj->oid, id, sizeof(id));
	pg->bad_found++;
	pg->o->pgs->bad_found++;
	if (!obj->need_push && !obj->need_remove) {
		/* The first fault seen on it: every other acting member holds
		 * this version (it would have a need otherwise). */
		obj->auth_version = version;
		obj->n_sources = 0;
		for (uint32_t i = 0; i < pg->n_acting; i++)
			if (pg->acting[i] != osd)
				obj->sources[obj->n_sources++] = pg->acting[i];
		pg->n_missing++;
		if (!obj->recovering && !list_linked(&obj->rec_node))
			list_add_tail(&pg->missing, &obj->rec_node);
		if (!list_linked(&pg->active_node))
			list_add_tail(&pg->o->pgs->recovering, &pg->active_node);
	}
	obj_source_drop(obj, osd);
	if (index >= 0 && !((obj->need_push | obj->need_remove) & (1u << index))) {
		obj->need_push |= 1u << index;
		pg->degraded++;
		pg->member_needs[index]++;
	}
	obj->repairing = true;
	LOG_WARN("pg %u.%x: the copy of %s on osd.%u is bad: %s", pg->pool, pg->pg, id, osd,
		 obj->n_sources ? "repairing it from another copy" : "no other copy to repair it from");
	return obj->n_sources > 0;
}

void pg_recovery_urgent(struct pg_obj *obj)
{
	if (obj->recovering || obj->urgent)
		return;
	struct osd_pg *pg = obj->pg;
	if (pg->state != PG_STATE_ACTIVE)
		return;
	obj->urgent = true;
	rec_start(obj);
}

static bool rec_tokens(struct osd *o, uint64_t bytes)
{
	struct osd_pgs *t = o->pgs;
	if (!o->rec_bytes_per_sec)
		return true;
	uint64_t now = io_now_ns(o->loop);
	/* At most 200 ms worth at once (1 MiB at least: one item's cost). */
	uint64_t burst = o->rec_bytes_per_sec / 5 > (1u << 20) ? o->rec_bytes_per_sec / 5 : 1u << 20;
	if (now > t->rec_refill_ns) {
		uint64_t add = (now - t->rec_refill_ns) * o->rec_bytes_per_sec / 1000000000ull;
		t->rec_tokens_bytes = t->rec_tokens_bytes + add > burst ? burst
									 : t->rec_tokens_bytes + add;
		t->rec_refill_ns = now;
	}
	if (t->rec_tokens_bytes < bytes)
		return false;
	t->rec_tokens_bytes -= bytes;
	return true;
}

/* Recovery in the background moves no data to a member past the
 * backfillfull ratio (as the map says, or as it said itself): the object
 * waits, and the PG shows backfill_toofull, until space is freed or the
 * ratio raised. A PG that must recover before it serves again is not held
 * back by ratios (serving comes first: the headroom above them is for
 * this), nor is an operation waiting for an object (pg_recovery_urgent):
 * there only the store refuses what truly has no room. */
static bool rec_toofull(struct pg_obj *obj)
{
	struct osd_pg *pg = obj->pg;
	if (pg->state == PG_STATE_RECOVERING)
		return false;
	for (uint32_t i = 0; i < pg->n_acting; i++) {
		if (!(obj->need_push & (1u << i)) ||
		    osd_member_full(pg->o, pg->acting[i]) < MAP_FULL_BACKFILL)
			continue;
		uint64_t now = io_now_ns(pg->o->loop);
		if (now >= pg->toofull_until_ns) {
			char id[64];
			LOG_WARN("pg %u.%x: recovery waits: osd.%u is past the backfillfull ratio "
				 "(first held back: %s)",
				 pg->pool, pg->pg, pg->acting[i],
				 object_id_str(&obj->oid, id, sizeof(id)));
		}
		pg->toofull_until_ns = now + IO_SEC(6);
		obj->retry_at_ns = now + IO_SEC(5);
		list_del(&obj->rec_node);
		list_add_tail(&pg->missing, &obj->rec_node);
		return true;
	}
	return false;
}

void pg_recovery_kick(struct osd *o)
{
	struct osd_pgs *t = o->pgs;
	uint32_t bs = o->store ? store_block_size(o->store) : 0;
	unsigned rounds = 0;
	while (t->rec_active < o->rec_max_active && !list_empty(&t->recovering) && rounds < 64) {
		rounds++;
		struct osd_pg *pg =
			list_entry(list_first(&t->recovering), struct osd_pg, active_node);
		/* Round robin over the PGs. */
		list_del(&pg->active_node);
		list_add_tail(&t->recovering, &pg->active_node);
		bool runs = pg->state == PG_STATE_ACTIVE || pg->state == PG_STATE_ACTIVATING ||
			    pg->state == PG_STATE_RECOVERING;
		if (!runs || list_empty(&pg->missing))
			continue;
		struct pg_obj *obj = list_entry(list_first(&pg->missing), struct pg_obj, rec_node);
		if (obj->retry_at_ns > io_now_ns(o->loop))
			continue; /* full members: later (the list is in retry order) */
		if (obj->writes) { /* a delete runs on it: it may leave nothing to do */
			obj->retry_at_ns = io_now_ns(o->loop) + IO_MS(100);
			list_del(&obj->rec_node);
			list_add_tail(&pg->missing, &obj->rec_node);
			continue;
		}
		if (rec_toofull(obj))
			continue;
		uint32_t copies = popcount32(obj->need_push) + ((obj->need_push & 1) ? 1 : 0);
		if (!rec_tokens(o, (uint64_t)bs * (copies ? copies : 1)))
			return;
		rec_start(obj);
		rounds = 0;
	}
}
