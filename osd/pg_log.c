/* Each OSD's log of the changes it made to each PG's objects, and the
 * sync markers that let peering compare only what changed
 * (docs/ARCHITECTURE.md, "Peering by what changed").
 *
 * Every change this OSD makes to an object of a PG — a write or delete as
 * primary or member, a clone a write makes, a recovery push or removal,
 * a stray deleted — is appended before the store sees it. The log is a
 * ring of at most osd_pg_log_max_entries per PG, and all logs of the OSD
 * hold at most osd_pg_log_max_bytes: the oldest entries go first, so the
 * log is complete after every marker it still holds.
 *
 * A marker is a point at which every acting member of the PG held the
 * same objects at the same versions: the primary of an active PG issues
 * one when every member is complete and recorded, nothing is missing or
 * unfound, and no write is in flight (so every write issued before was
 * applied by everyone), logs it and sends it to each member, which logs it
 * on arrival if it still follows the same peering round. Any two OSDs
 * holding the same marker differed, at that marker, in nothing; what
 * differs between them now was changed after it, on one of them, and is
 * named in its log.
 *
 * The log lives in memory: a crash loses it, and the OSD comes back with
 * an empty one (no marker: peering with it compares everything). A clean
 * stop writes each PG's log, from the oldest marker whose entries fit, to
 * an object of the PG's own; the next start reads it back and deletes it
 * before the PG answers any query, so a crash later cannot offer it as
 * complete when the store has changed since. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/crc32c.h"
#include "common/enc.h"
#include "common/log.h"
#include "pg_int.h"

#define LOG_MAGIC "BSLTPGLG"
#define LOG_HEADER_LEN 16
#define LOG_ENTRY_LEN PG_INFO_ENTRY_LEN
#define SYNC_AFTER_NS IO_MS(200)

struct object_id pg_log_oid(uint32_t pool, uint32_t pg)
{
	/* Beside the PG's record object (pg_meta_oid): listed with it by no
	 * one (pg_is_meta). */
	return (struct object_id){ pool, OBJECT_INODE_PG_META, (uint64_t)pg | 1ull << 32, 0, OBJECT_SHARD_WHOLE };
}

static bool entry_is_marker(const struct pg_log_entry *e)
{
	return e->oid.inode == OBJECT_INODE_PG_META;
}

static bool marker_equal(const struct pg_log_entry *e, const struct pg_marker *m)
{
	return entry_is_marker(e) && e->oid.pool == m->primary && e->version == m->epoch &&
	       e->oid.index == m->number;
}

static struct pg_log_entry *entry_at(const struct pg_log *l, uint32_t i)
{
	return &l->ring[(l->head + i) % l->cap];
}

static void drop_oldest(struct osd_pg *pg, uint32_t count)
{
	struct pg_log *l = &pg->log;
	for (uint32_t i = 0; i < count && l->n; i++) {
		l->n_markers -= entry_is_marker(entry_at(l, 0));
		l->head = (l->head + 1) % l->cap;
		l->n--;
		pg->o->pgs->log_entries--;
	}
}

static int grow(struct pg_log *l, uint32_t max)
{
	uint32_t cap = l->cap ? l->cap * 2 : 16;
	if (cap > max)
		cap = max;
	struct pg_log_entry *ring = malloc((size_t)cap * sizeof(*ring));
	if (!ring)
		return -ENOMEM;
	for (uint32_t i = 0; i < l->n; i++)
		ring[i] = *entry_at(l, i);
	free(l->ring);
	l->ring = ring;
	l->cap = cap;
	l->head = 0;
	return 0;
}

static void append(struct osd_pg *pg, const struct pg_log_entry *e)
{
	struct osd *o = pg->o;
	struct pg_log *l = &pg->log;
	uint32_t max = o->pg_log_max_entries;
	if (!l->loaded)
		l->dirty_before_load = true;
	if (l->n == max)
		drop_oldest(pg, 1);
	if (l->n == l->cap && grow(l, max)) {
		drop_oldest(pg, l->n); /* no room: start again, with no marker */
		if (!l->cap)
			return;
	}
	*entry_at(l, l->n) = *e;
	l->n++;
	l->n_markers += entry_is_marker(e);
	o->pgs->log_entries++;
	/* Over the OSD's budget: this PG's log gives up its older half. */
	if (o->pgs->log_entries * sizeof(*e) > o->pg_log_max_bytes)
		drop_oldest(pg, l->n / 2 ? l->n / 2 : 1);
}

static void frozen_change(struct osd_pg *pg);

void pg_log_change(struct osd_pg *pg, const struct object_id *oid, uint64_t version)
{
	struct pg_log_entry e = { *oid, version };
	if (pg->o->pgs->log_frozen)
		frozen_change(pg);
	append(pg, &e);
	pg->changes_since_sync++;
}

void pg_log_change_clone(struct osd_pg *pg, const struct object_id *oid, uint64_t version,
			 uint32_t snap)
{
	if (snap) {
		struct object_id clone = *oid;
		clone.snap = snap;
		pg_log_change(pg, &clone, 1); /* some version: the store knows which */
	}
	pg_log_change(pg, oid, version);
}

void pg_log_marker(struct osd_pg *pg, const struct pg_marker *m)
{
	struct pg_log_entry e = { { m->primary, OBJECT_INODE_PG_META, m->number, 0, m->chunk },
				  m->epoch };
	append(pg, &e);
	LOG_DEBUG("osd.%u pg %u.%x: sync marker %u/%" PRIu64 "/%" PRIu64 " (%u entries)",
		  pg->o->id, pg->pool, pg->pg, m->primary, m->epoch, m->number, pg->log.n);
}

uint32_t pg_log_markers(const struct osd_pg *pg, struct pg_marker *out, uint32_t max)
{
	const struct pg_log *l = &pg->log;
	uint32_t k = 0;
	for (uint32_t i = l->n; i-- > 0 && k < max;) {
		const struct pg_log_entry *e = entry_at(l, i);
		if (entry_is_marker(e))
			out[k++] = (struct pg_marker){ e->oid.pool, e->version, e->oid.index,
						       e->oid.shard };
	}
	return k;
}

int pg_log_after(const struct osd_pg *pg, const struct pg_marker *m,
		 void (*fn)(const struct object_id *oid, void *arg), void *arg)
{
	const struct pg_log *l = &pg->log;
	uint32_t i = l->n;
	while (i-- > 0 && !marker_equal(entry_at(l, i), m))
		;
	if (i == UINT32_MAX)
		return -ENOENT;
	for (i++; i < l->n; i++)
		if (!entry_is_marker(entry_at(l, i)))
			fn(&entry_at(l, i)->oid, arg);
	return 0;
}

/* --- sync markers (the primary) ------------------------------------------------------ */

/* Whether every acting member holds what the others hold, but for writes
 * in flight: complete, recorded, nothing to recover, nothing unfound. */
static bool pg_members_identical(const struct osd_pg *pg)
{
	uint32_t all = (1u << pg->n_acting) - 1;
	return pg->state == PG_STATE_ACTIVE && !pg->n_missing && !pg->n_unfound &&
	       list_empty(&pg->recs) && pg->complete_mask == all &&
	       pg->record.epoch == pg->interval && pg->record.n == pg->n_acting &&
	       pg->recording == PG_RECORD_NONE;
}

static void sync_reply(struct pg_call *call, int rc, struct msg *reply)
{
	(void)call;
	(void)rc;
	(void)reply; /* a member that refused it only lacks the marker */
}

void pg_log_sync_maybe(struct osd_pg *pg)
{
	struct osd *o = pg->o;
	if (pg->writes_inflight || o->stopping || o->forgetting || !pg_members_identical(pg))
		return;
	uint64_t now = io_now_ns(o->loop);
	uint64_t every = o->pg_log_max_entries / 8 ? o->pg_log_max_entries / 8 : 1;
	bool due = !pg->sync_number || pg->changes_since_sync >= every ||
		   (pg->changes_since_sync && now - pg->sync_at_ns >= SYNC_AFTER_NS);
	if (!due)
		return;
	struct pg_marker m = { o->id, pg->interval, ++pg->sync_number,
			       (uint8_t)(pg->ec ? pg->shard[0] + 1 : 0) };
	pg_log_marker(pg, &m);
	pg->changes_since_sync = 0;
	pg->sync_at_ns = now;
	uint64_t gen = pg->gen;
	for (uint32_t i = 1; i < pg->n_acting && pg->gen == gen; i++) {
		struct pg_subop sub = { .type = PG_SUB_SYNC, .oid = pg_meta_oid(pg->pool, pg->pg),
					.version = m.number, .reqid = pg->gen };
		if (pg_call_subop(pg, pg->acting[i], &sub, NULL, sync_reply, NULL, 0))
			pg_repeer(pg, "a member is unreachable");
	}
}

/* --- written at a clean stop, read back at the next start ---------------------------- */

struct log_write {
	struct store_req req;
	struct osd *o;
};

static void log_write_done(struct store_req *req, int res)
{
	struct log_write *w = req->ctx;
	if (res && res != -ENOENT)
		LOG_WARN("pg log of %u.%" PRIx64 " not written (%s): the next peering of the PG "
			 "compares everything",
			 req->oid.pool, req->oid.index & 0xffffffffu, strerror(-res));
	w->o->pgs->log_writes--;
	free(req->buf);
	free(w);
}

/* Submits a write (BUF of LEN bytes; taken) or, BUF NULL, a delete of
 * PG's log object. */
static void log_object_submit(struct osd_pg *pg, void *buf, uint32_t len)
{
	struct log_write *w = calloc(1, sizeof(*w));
	if (!w) {
		free(buf);
		return;
	}
	w->o = pg->o;
	w->req = (struct store_req){ .op = buf ? STORE_OP_WRITE : STORE_OP_DELETE,
				     .oid = pg_log_oid(pg->pool, pg->pg), .len = len, .buf = buf,
				     .done = log_write_done, .ctx = w };
	pg->o->pgs->log_writes++;
	store_submit(pg->o->store, &w->req);
}

/* A change after the logs were written out (none is expected): the
 * written log must not be read back as complete. */
static void frozen_change(struct osd_pg *pg)
{
	LOG_ERROR("pg %u.%x changed after its log was written out: deleting it", pg->pool, pg->pg);
	log_object_submit(pg, NULL, 0);
}

/* Encodes the entries from the oldest marker whose tail fits in BS
 * bytes; 0 when none fits (nothing to keep). */
static uint32_t log_encode(const struct osd_pg *pg, uint8_t *buf, uint32_t bs)
{
	const struct pg_log *l = &pg->log;
	uint32_t fit = (bs - LOG_HEADER_LEN) / LOG_ENTRY_LEN, from = l->n;
	for (uint32_t i = l->n > fit ? l->n - fit : 0; i < l->n; i++)
		if (entry_is_marker(entry_at(l, i))) {
			from = i;
			break;
		}
	if (from == l->n)
		return 0;
	uint32_t count = l->n - from;
	memset(buf, 0, bs);
	struct enc e;
	enc_init(&e, buf + LOG_HEADER_LEN, (size_t)count * LOG_ENTRY_LEN);
	for (uint32_t i = from; i < l->n; i++) {
		enc_put_object_id(&e, &entry_at(l, i)->oid);
		enc_put_le64(&e, entry_at(l, i)->version);
	}
	enc_init(&e, buf, LOG_HEADER_LEN);
	enc_put_bytes(&e, LOG_MAGIC, 8);
	enc_put_le32(&e, count);
	enc_put_le32(&e, crc32c(0, buf + LOG_HEADER_LEN, (size_t)count * LOG_ENTRY_LEN));
	return count;
}

static void persist_one(struct osd_pg *pg, void *arg)
{
	uint32_t *kept = arg;
	uint32_t bs = store_block_size(pg->o->store);
	void *buf = NULL;
	if (!pg->log.loaded || !pg->log.n_markers || posix_memalign(&buf, 4096, bs))
		return;
	if (!log_encode(pg, buf, bs)) {
		free(buf);
		return;
	}
	(*kept)++;
	log_object_submit(pg, buf, bs);
}

void osd_pg_log_persist(struct osd *o)
{
	if (!o->pgs || !o->store || o->pgs->log_frozen)
		return;
	uint32_t kept = 0;
	o->pgs->log_frozen = true;
	pg_for_each(o, persist_one, &kept);
	LOG_INFO("osd.%u: writing the logs of %u PGs (the next start peers them by what "
		 "changed)",
		 o->id, kept);
}

/* Decodes a written log into PG's (empty) log; -EBADMSG when it is not one. */
static int log_decode(struct osd_pg *pg, const uint8_t *buf, uint32_t len)
{
	struct dec d;
	uint32_t count, crc;
	if (len < LOG_HEADER_LEN || memcmp(buf, LOG_MAGIC, 8))
		return -EBADMSG;
	dec_init(&d, buf + 8, LOG_HEADER_LEN - 8);
	dec_get_le32(&d, &count);
	dec_get_le32(&d, &crc);
	if (count > (len - LOG_HEADER_LEN) / LOG_ENTRY_LEN ||
	    crc32c(0, buf + LOG_HEADER_LEN, (size_t)count * LOG_ENTRY_LEN) != crc)
		return -EBADMSG;
	dec_init(&d, buf + LOG_HEADER_LEN, (size_t)count * LOG_ENTRY_LEN);
	for (uint32_t i = 0; i < count; i++) {
		struct pg_log_entry e;
		dec_get_object_id(&d, &e.oid);
		dec_get_le64(&d, &e.version);
		append(pg, &e);
	}
	return dec_status(&d) ? -EBADMSG : 0;
}


static void log_loaded(struct osd_pg *pg)
{
	pg->log.loading = false;
	pg->log.loaded = true;
	free(pg->log.req.buf);
	pg->log.req.buf = NULL;
	pg_replica_log_ready(pg);
}

static void log_deleted(struct store_req *req, int res)
{
	struct osd_pg *pg = req->ctx;
	if (res && res != -ENOENT) {
		/* Still on the device: relying on it could outlive a crash. */
		LOG_ERROR("pg %u.%x: cannot delete the log a clean stop left (%s): not using it",
			  pg->pool, pg->pg, strerror(-res));
		drop_oldest(pg, pg->log.n);
	}
	log_loaded(pg);
}

static void log_read(struct store_req *req, int res)
{
	struct osd_pg *pg = req->ctx;
	if (res == -ENOENT) {
		log_loaded(pg);
		return;
	}
	if (res == 0 && !pg->log.dirty_before_load) {
		pg->log.loaded = true; /* (append's view; still loading) */
		if (log_decode(pg, req->buf, req->len)) {
			LOG_WARN("pg %u.%x: the log a clean stop left is damaged: not using it",
				 pg->pool, pg->pg);
			drop_oldest(pg, pg->log.n);
		} else {
			LOG_DEBUG("osd.%u pg %u.%x: read the log a clean stop left: %u entries, "
				  "%u markers",
				  pg->o->id, pg->pool, pg->pg, pg->log.n, pg->log.n_markers);
		}
		pg->log.loaded = false;
	} else if (res) {
		LOG_WARN("pg %u.%x: cannot read the log a clean stop left (%s): not using it",
			 pg->pool, pg->pg, strerror(-res));
	}
	free(req->buf);
	*req = (struct store_req){ .op = STORE_OP_DELETE, .oid = pg_log_oid(pg->pool, pg->pg),
				   .done = log_deleted, .ctx = pg };
	store_submit(pg->o->store, req);
}

bool pg_log_ready(struct osd_pg *pg)
{
	struct pg_log *l = &pg->log;
	if (l->loaded)
		return true;
	if (l->loading)
		return false;
	uint32_t bs = store_block_size(pg->o->store);
	void *buf = NULL;
	if (posix_memalign(&buf, 4096, bs)) {
		l->loaded = true; /* a log it cannot read is one it does not use */
		return true;
	}
	l->loading = true;
	l->req = (struct store_req){ .op = STORE_OP_READ, .oid = pg_log_oid(pg->pool, pg->pg),
				     .len = bs, .buf = buf, .done = log_read, .ctx = pg };
	store_submit(pg->o->store, &l->req);
	return false;
}

void pg_log_check(const struct osd_pg *pg)
{
	const struct pg_log *l = &pg->log;
	uint32_t markers = 0;
	BASALT_ASSERT(l->n <= l->cap && l->n <= pg->o->pg_log_max_entries);
	BASALT_ASSERT(l->n_markers <= l->n);
	BASALT_ASSERT(!l->loading || !l->loaded);
	/* The simulations check after every step: a walk of thousands of
	 * entries of every PG each time made a run ten times slower, so long
	 * logs are counted through on one check in 64. */
	static uint32_t calls;
	if (l->n > 256 && ++calls % 64)
		return;
	for (uint32_t i = 0; i < l->n; i++)
		markers += entry_is_marker(entry_at(l, i));
	BASALT_ASSERT(markers == l->n_markers);
}

void pg_log_free(struct osd_pg *pg)
{
	if (pg->log.loading)
		free(pg->log.req.buf);
	pg->o->pgs->log_entries -= pg->log.n;
	free(pg->log.ring);
	memset(&pg->log, 0, sizeof(pg->log));
}
