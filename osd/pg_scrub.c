/* Scrubbing: every copy of every object of a PG read back and checked,
 * in chunks, by the PG's primary with every acting member.
 *
 * The primary takes the next chunk of objects (the next SCRUB_CHUNK of
 * its own, in object order after the cursor), holds writes to them,
 * waits for those in flight, then asks each member (itself included) to
 * read its copies in the range: each read checks every 4 KiB against its
 * CRC32C, and the member answers each object's version, whether it read
 * back (0, -EBADMSG: a checksum failed, -EIO: the device failed) and a
 * digest of its bytes. The primary compares:
 *   - the authority is the newest version among the copies that read
 *     back (as peering's: an object a member lacks counts as older);
 *   - deep scrubs also compare digests among those: the one most copies
 *     have wins (the primary's on a tie);
 *   - a copy that failed, is older, or differs is repaired from one that
 *     won (recovery, pushing the same version); an object no copy of
 *     which reads back is unfound (pg_recovery.c).
 * An EC PG's members each read their own chunk of every object (its
 * shard), and the primary judges them as peering does: the version is
 * the newest K good chunks have; a chunk missing, failing or of another
 * version is rebuilt from the others (pg_ec_repair). A deep scrub brings
 * the chunks' bytes and checks parity against data (ec_check): with
 * K + 2 or more chunks a wrong one is found for certain, with K + 1 (one
 * parity chunk, or a member away) the data chunks win.
 * Then the writes go on and the next chunk starts, within
 * osd_scrub_max_bytes_per_sec, and not while this OSD has client
 * operations waiting (up to osd_scrub_sleep between chunks).
 *
 * Each PG is scrubbed when its last scrub is older than osd_scrub_interval
 * (deep: osd_deep_scrub_interval), one at a time per OSD, or at once when
 * asked (basalt pg scrub|deep-scrub|repair, basalt osd scrub). Its times
 * and, while it runs, its cursor are kept in the PG's own record object
 * (pg_mark_write), so a scrub cut by a restart resumes where it was. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/crc32c.h"
#include "common/enc.h"
#include "common/log.h"
#include "pg_int.h"

#define SCRUB_CHUNK 16
#define SCRUB_ENTRY_LEN (OBJECT_ID_WIRE_LEN + 8 + 4 + 4)
/* Flags of a PG_SUB_SCRUB (in its offset field). */
#define SCRUB_HAS_AFTER 1u
#define SCRUB_HAS_END 2u
#define SCRUB_DEEP 4u
/* An EC PG's: 1 + the chunk the member scrubs, in bits 8..15 (0: replicated). */
#define SCRUB_CHUNK_SHIFT 8
/* A deep scrub of an EC PG brings every chunk's bytes to the primary: at
 * most this much per member per chunk of objects. */
#define SCRUB_EC_DEEP_BYTES (4u << 20)

struct scrub_entry {
	struct object_id oid; /* whole */
	uint64_t version;
	int32_t status; /* 0, -EBADMSG, -EIO */
	uint32_t digest;
	/* An EC deep scrub's: the chunk's bytes (a store block) when read
	 * back; sent after the entry. */
	uint8_t *bytes;
};

static void entries_free(struct scrub_entry *e, size_t n)
{
	for (size_t i = 0; e && i < n; i++)
		free(e[i].bytes);
	free(e);
}

/* --- one member's part: read its copies in a range ---------------------------------- */

struct scrub_part;
typedef void (*scrub_part_fn)(struct scrub_part *part, int rc);

/* A member reading its copies of the objects in (after, end]. */
struct scrub_part {
	struct list_node node; /* o->pgs->scrub_parts */
	struct osd *o;
	struct osd_pg *pg;
	bool deep;
	int chunk; /* an EC PG's: the chunk read; -1: replicated */
	struct object_id *oids;
	size_t n, next;
	struct scrub_entry *out;
	size_t n_out;
	uint8_t *buf;
	struct store_req req;
	/* Remote: the answer goes to CONN; local: DONE runs. */
	struct msgr_conn *conn;
	uint64_t request_id;
	scrub_part_fn done;
	void *ctx;
};

static int oid_qcmp(const void *a, const void *b)
{
	return object_id_cmp(a, b);
}

struct range_list {
	const struct object_id *after, *end;
	int chunk;
	struct object_id *oids;
	size_t n, cap;
};

static int range_collect(const struct store_object_info *info, void *arg)
{
	struct range_list *l = arg;
	/* An EC member's objects are its chunk's shards; pending writes
	 * are peering's, and other chunks recovery's to drop. */
	if (l->chunk >= 0 && (info->oid.shard != (unsigned)l->chunk + 1 ||
			      info->oid.snap == OBJECT_SNAP_PENDING))
		return 0;
	struct object_id oid = object_whole(&info->oid);
	if (pg_is_meta(&oid) || (l->after && object_id_cmp(&oid, l->after) <= 0) ||
	    (l->end && object_id_cmp(&oid, l->end) > 0))
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		struct object_id *p = realloc(l->oids, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		l->oids = p;
		l->cap = cap;
	}
	l->oids[l->n++] = oid;
	return 0;
}

/* This OSD's objects of PG in (AFTER, END] (either may be NULL: open),
 * sorted, as whole ids (an EC PG's: those it holds chunk CHUNK of); at
 * most MAX. Caller frees *OUT. */
static int scrub_list(struct osd_pg *pg, const struct object_id *after,
		      const struct object_id *end, int chunk, size_t max, struct object_id **out,
		      size_t *n)
{
	const struct map_pool *p = map_pool_by_id(pg_map(pg), pg->pool);
	if (!p)
		return -ESTALE;
	struct range_list l = { after, end, chunk, NULL, 0, 0 };
	struct store_list_filter f = { .pool = pg->pool, .any_inode = true, .pg_num = p->pg_num,
				       .pg = pg->pg };
	int rc = store_list(pg->o->store, &f, range_collect, &l);
	if (rc) {
		free(l.oids);
		return rc;
	}
	qsort(l.oids, l.n, sizeof(*l.oids), oid_qcmp);
	*out = l.oids;
	*n = l.n < max ? l.n : max;
	return 0;
}

static void part_next(struct scrub_part *part);

static void part_finish(struct scrub_part *part, int rc)
{
	list_del(&part->node);
	free(part->buf);
	free(part->oids);
	if (part->done) {
		part->done(part, rc); /* takes part->out */
	} else {
		uint32_t bs = store_block_size(part->o->store);
		uint8_t *data = NULL;
		size_t len = part->n_out * SCRUB_ENTRY_LEN;
		for (size_t i = 0; i < part->n_out; i++)
			len += part->out[i].bytes ? bs : 0;
		if (!rc && len && posix_memalign((void **)&data, 4096, len))
			rc = -ENOMEM;
		struct enc e;
		enc_init(&e, data, rc ? 0 : len);
		for (size_t i = 0; !rc && i < part->n_out; i++) {
			enc_put_object_id(&e, &part->out[i].oid);
			enc_put_le64(&e, part->out[i].version);
			enc_put_le32(&e, (uint32_t)part->out[i].status);
			enc_put_le32(&e, part->out[i].digest);
			if (part->out[i].bytes)
				enc_put_bytes(&e, part->out[i].bytes, bs);
		}
		pg_replica_answer(part->o, part->conn, part->request_id, rc, 0, NULL,
				  rc ? NULL : data, rc ? 0 : (uint32_t)len);
		if (rc)
			free(data);
		entries_free(part->out, part->n_out);
	}
	free(part);
}

static void part_read_done(struct store_req *req, int res)
{
	struct scrub_part *part = req->ctx;
	if (part->o->forgetting)
		return; /* pg_scrub_forget frees it */
	if (res != -ENOENT) { /* deleted meanwhile: nothing to say of it */
		struct scrub_entry *e = &part->out[part->n_out++];
		e->oid = object_whole(&req->oid);
		e->version = req->version;
		e->status = res == 0 ? 0 : res == -EBADMSG ? -EBADMSG : -EIO;
		if (res == 0) {
			e->digest = crc32c(0, part->buf, req->len);
			e->digest = crc32c(e->digest, req->written, sizeof(req->written));
			if (part->deep && part->chunk >= 0) { /* the bytes go to the primary */
				e->bytes = part->buf;
				part->buf = NULL;
			}
		}
		if (res && res != -EBADMSG && res != -EIO) {
			part_finish(part, res); /* not a verdict on the copy */
			return;
		}
	}
	part->next++;
	part_next(part);
}

static void part_next(struct scrub_part *part)
{
	if (part->next == part->n) {
		part_finish(part, 0);
		return;
	}
	uint32_t bs = store_block_size(part->o->store);
	if (!part->buf && posix_memalign((void **)&part->buf, 4096, bs)) {
		part->buf = NULL;
		part_finish(part, -ENOMEM);
		return;
	}
	struct object_id oid = part->oids[part->next];
	if (part->chunk >= 0)
		oid = object_shard(&oid, (unsigned)part->chunk);
	part->req = (struct store_req){ .op = STORE_OP_READ, .oid = oid, .len = bs,
					.buf = part->buf, .done = part_read_done, .ctx = part };
	store_submit(part->o->store, &part->req);
}

/* Starts this OSD's part of a scrub of PG: (AFTER, END], DEEP or not,
 * of chunk CHUNK (an EC PG's; -1: replicated). */
static int part_start(struct osd_pg *pg, const struct object_id *after,
		      const struct object_id *end, bool deep, int chunk, struct scrub_part **out)
{
	struct osd *o = pg->o;
	struct scrub_part *part = calloc(1, sizeof(*part));
	if (!part)
		return -ENOMEM;
	part->o = o;
	part->pg = pg;
	part->deep = deep;
	part->chunk = chunk;
	/* (Its buffer comes with the first read: part_next.) */
	int rc = scrub_list(pg, after, end, chunk, SIZE_MAX, &part->oids, &part->n);
	if (!rc && !(part->out = calloc(part->n ? part->n : 1, sizeof(*part->out))))
		rc = -ENOMEM;
	if (rc) {
		free(part->oids);
		free(part);
		return rc;
	}
	list_add_tail(&o->pgs->scrub_parts, &part->node);
	*out = part;
	return 0;
}

void pg_scrub_subop(struct osd_pg *pg, struct msgr_conn *conn, uint64_t request_id,
		    const struct pg_subop *sub)
{
	struct scrub_part *part;
	bool has_after = sub->offset & SCRUB_HAS_AFTER, has_end = sub->offset & SCRUB_HAS_END;
	int chunk = (int)((sub->offset >> SCRUB_CHUNK_SHIFT) & 0xff) - 1;
	int rc = (chunk >= 0) != !!pg->ec || (pg->ec && (unsigned)chunk >= pg->ec->k + pg->ec->m)
			 ? -EINVAL
			 : part_start(pg, has_after ? &sub->oid : NULL, has_end ? &sub->end : NULL,
				      sub->offset & SCRUB_DEEP, chunk, &part);
	if (rc) {
		pg_replica_answer(pg->o, conn, request_id, rc, 0, NULL, NULL, 0);
		return;
	}
	part->conn = conn;
	part->request_id = request_id;
	part_next(part);
}

void pg_scrub_conn_closed(struct osd *o, struct msgr_conn *conn)
{
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &o->pgs->scrub_parts) {
		struct scrub_part *part = list_entry(pos, struct scrub_part, node);
		if (part->conn == conn)
			part->conn = NULL; /* the answer goes nowhere */
	}
}

void pg_scrub_forget(struct osd *o)
{
	/* (No timer to disarm: osd_forget runs after its loop was destroyed,
	 * and the timer went with it.) */
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &o->pgs->scrub_parts) {
		struct scrub_part *part = list_entry(pos, struct scrub_part, node);
		list_del(&part->node);
		free(part->buf);
		free(part->oids);
		entries_free(part->out, part->n_out);
		free(part);
	}
}

static void part_orphan_done(struct scrub_part *part, int rc)
{
	(void)rc;
	entries_free(part->out, part->n_out);
}

void pg_scrub_detach(struct osd *o)
{
	io_timer_disarm(o->loop, &o->pgs->scrub_timer);
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &o->pgs->scrub_parts) {
		struct scrub_part *part = list_entry(pos, struct scrub_part, node);
		part->conn = NULL;
		if (part->done)
			part->done = part_orphan_done;
	}
}

/* --- the primary: chunks, comparison, repair ------------------------------------- */

enum scrub_phase {
	SCRUB_IDLE,	/* between chunks: waits for tokens, a quiet moment */
	SCRUB_QUIESCE,	/* the chunk's writes in flight finish */
	SCRUB_READING,	/* the members read their copies */
};

struct pg_scrub {
	struct osd_pg *pg;
	bool deep;
	bool requested; /* asked for: asked again if it is cut */
	enum scrub_phase phase;
	bool has_after, has_end;
	struct object_id after, end; /* the chunk: (after, end] (open when !has_*) */
	uint32_t done_objects, total_objects;
	uint64_t started_ns, next_chunk_ns, waiting_since_ns;
	uint32_t found, repaired_before;
	/* Answers of the chunk, per acting index. */
	struct scrub_entry *entries[MAP_PG_ACTING_MAX];
	size_t n_entries[MAP_PG_ACTING_MAX];
	uint32_t pending;
	struct scrub_part *local;
	bool stamp_inflight;
	struct store_req stamp_req;
};

/* Whether a write to OID waits: its object is in the chunk being read. */
bool pg_scrub_blocks(const struct osd_pg *pg, const struct object_id *oid)
{
	const struct pg_scrub *sc = pg->scrub;
	if (!sc || sc->phase == SCRUB_IDLE)
		return false;
	return (!sc->has_after || object_id_cmp(oid, &sc->after) > 0) &&
	       (!sc->has_end || object_id_cmp(oid, &sc->end) <= 0);
}

void pg_scrub_check(const struct osd_pg *pg)
{
	const struct pg_scrub *sc = pg->scrub;
	if (!sc)
		return;
	BASALT_ASSERT(pg->state == PG_STATE_ACTIVE && pg->acting[0] == pg->o->id);
	BASALT_ASSERT(pg->o->pgs->scrubs_running >= 1);
	if (sc->phase != SCRUB_READING)
		return;
	const struct list_node *pos;
	list_for_each(pos, &pg->objs) {
		const struct pg_obj *obj = list_entry(pos, struct pg_obj, pg_node);
		BASALT_ASSERT(!(obj->writes || obj->recovering) || !pg_scrub_blocks(pg, &obj->oid));
	}
}

static void scrub_chunk_free(struct pg_scrub *sc)
{
	for (uint32_t i = 0; i < MAP_PG_ACTING_MAX; i++) {
		entries_free(sc->entries[i], sc->n_entries[i]);
		sc->entries[i] = NULL;
		sc->n_entries[i] = 0;
	}
}

/* Lets the writes the chunk held go on. */
static void scrub_release(struct osd_pg *pg)
{
	struct list_node *pos, *tmp;
	uint64_t gen = pg->gen;
	list_for_each_safe(pos, tmp, &pg->objs) {
		struct pg_obj *obj = list_entry(pos, struct pg_obj, pg_node);
		if (!list_empty(&obj->queue))
			pg_io_obj_kick(obj);
		if (pg->gen != gen)
			return;
	}
}

static void scrub_free(struct osd_pg *pg)
{
	struct pg_scrub *sc = pg->scrub;
	if (sc->local)
		sc->local->done = part_orphan_done;
	if (sc->requested && pg->scrub_resume) /* cut: still wanted */
		pg->scrub_wanted = sc->deep ? 2 : 1;
	scrub_chunk_free(sc);
	pg->scrub = NULL;
	pg->o->pgs->scrubs_running--;
	free(sc);
}

void pg_scrub_reset(struct osd_pg *pg)
{
	if (!pg->scrub)
		return;
	LOG_INFO("pg %u.%x: %s scrub interrupted (it resumes where it was)", pg->pool, pg->pg,
		 pg->scrub->deep ? "deep" : "light");
	scrub_free(pg);
}

/* The OSD whose answer is at acting index I; entries decoded from REPLY
 * into sc->entries[I] (an EC deep scrub's with the bytes of each chunk
 * that read back, BS each). */
static int scrub_decode(struct osd_pg *pg, uint32_t i, const struct msg *reply)
{
	struct pg_scrub *sc = pg->scrub;
	bool bytes = sc->deep && pg->ec;
	uint32_t bs = store_block_size(pg->o->store);
	size_t n = reply->hdr.data_len / SCRUB_ENTRY_LEN; /* at most */
	struct scrub_entry *e = calloc(n ? n : 1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	struct dec d;
	dec_init(&d, reply->data, reply->hdr.data_len);
	size_t k = 0;
	int rc = 0;
	while (!rc && dec_remaining(&d) && k < n) {
		uint32_t status;
		dec_get_object_id(&d, &e[k].oid);
		dec_get_le64(&d, &e[k].version);
		dec_get_le32(&d, &status);
		dec_get_le32(&d, &e[k].digest);
		e[k].status = (int32_t)status;
		if (dec_status(&d) || e[k].oid.shard ||
		    (e[k].status != 0 && e[k].status != -EBADMSG && e[k].status != -EIO) ||
		    (k && object_id_cmp(&e[k - 1].oid, &e[k].oid) >= 0))
			rc = -EBADMSG;
		else if (bytes && !e[k].status &&
			 posix_memalign((void **)&e[k].bytes, 4096, bs)) {
			e[k].bytes = NULL;
			rc = -ENOMEM;
		} else if (bytes && !e[k].status && dec_get_bytes(&d, e[k].bytes, bs)) {
			rc = -EBADMSG;
		}
		k++;
	}
	if (!rc && (dec_status(&d) || dec_remaining(&d)))
		rc = -EBADMSG;
	if (rc) {
		entries_free(e, k);
		return rc;
	}
	sc->entries[i] = e;
	sc->n_entries[i] = k;
	return 0;
}

static void scrub_compare(struct osd_pg *pg);

static void scrub_answered(struct osd_pg *pg)
{
	struct pg_scrub *sc = pg->scrub;
	if (--sc->pending)
		return;
	scrub_compare(pg);
}

static void scrub_abort(struct osd_pg *pg, const char *why)
{
	LOG_WARN("pg %u.%x: scrub stopped: %s (it resumes later)", pg->pool, pg->pg, why);
	bool held = pg->scrub->phase != SCRUB_IDLE;
	scrub_free(pg);
	if (held)
		scrub_release(pg);
}

static void scrub_member_reply(struct pg_call *call, int rc, struct msg *reply)
{
	struct osd_pg *pg = call->pg;
	struct pg_subop_reply r;
	(void)rc;
	if (!pg->scrub || pg->scrub != call->ctx)
		return;
	if (pg_subop_reply_decode(reply, &r))
		r.rc = -EPROTO;
	int index = pg_acting_index(pg, call->osd);
	if (!r.rc && index >= 0)
		r.rc = scrub_decode(pg, (uint32_t)index, reply);
	if (r.rc || index < 0) {
		char why[96];
		snprintf(why, sizeof(why), "osd.%u answered %s", call->osd, strerror(-r.rc));
		scrub_abort(pg, why);
		return;
	}
	scrub_answered(pg);
}

static void scrub_local_done(struct scrub_part *part, int rc)
{
	struct osd_pg *pg = part->pg;
	struct pg_scrub *sc = pg->scrub;
	BASALT_ASSERT(sc && sc->local == part);
	sc->local = NULL;
	if (rc) {
		entries_free(part->out, part->n_out);
		scrub_abort(pg, "the local part failed");
		return;
	}
	int index = pg_acting_index(pg, pg->o->id);
	sc->entries[index] = part->out;
	sc->n_entries[index] = part->n_out;
	scrub_answered(pg);
}

/* The chunk acting member I scrubs (-1: a replicated PG's whole objects). */
static int member_chunk(const struct osd_pg *pg, uint32_t i)
{
	return pg->ec ? pg->shard[i] : -1;
}

/* Every member reads its copies of the chunk. */
static void scrub_read(struct osd_pg *pg)
{
	struct pg_scrub *sc = pg->scrub;
	sc->phase = SCRUB_READING;
	sc->pending = pg->n_acting;
	uint32_t flags = (sc->has_after ? SCRUB_HAS_AFTER : 0) | (sc->has_end ? SCRUB_HAS_END : 0) |
			 (sc->deep ? SCRUB_DEEP : 0);
	uint64_t gen = pg->gen;
	for (uint32_t i = 0; i < pg->n_acting && pg->gen == gen && pg->scrub == sc; i++) {
		int chunk = member_chunk(pg, i);
		if (pg->acting[i] == pg->o->id) {
			struct scrub_part *part;
			if (part_start(pg, sc->has_after ? &sc->after : NULL,
				       sc->has_end ? &sc->end : NULL, sc->deep, chunk, &part)) {
				scrub_abort(pg, "out of memory");
				return;
			}
			part->done = scrub_local_done;
			sc->local = part;
			part_next(part);
			continue;
		}
		struct pg_subop sub = { .type = PG_SUB_SCRUB,
					.offset = flags | (uint32_t)(chunk + 1) << SCRUB_CHUNK_SHIFT,
					.oid = sc->after, .end = sc->end };
		if (pg_call_subop(pg, pg->acting[i], &sub, NULL, scrub_member_reply, sc, 0)) {
			scrub_abort(pg, "a member is unreachable");
			return;
		}
	}
}

/* Whether any object of the chunk has a write or recovery in flight. */
static bool scrub_chunk_busy(struct osd_pg *pg)
{
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &pg->objs) {
		struct pg_obj *obj = list_entry(pos, struct pg_obj, pg_node);
		if ((obj->writes || obj->recovering) && pg_scrub_blocks(pg, &obj->oid))
			return true;
	}
	return false;
}

void pg_scrub_kick(struct osd_pg *pg)
{
	struct pg_scrub *sc = pg->scrub;
	if (sc && sc->phase == SCRUB_QUIESCE && !scrub_chunk_busy(pg))
		scrub_read(pg);
}

/* One object of the chunk as every member answered it. */
struct scrub_view {
	const struct scrub_entry *e[MAP_PG_ACTING_MAX]; /* NULL: the member lacks it */
};

/* The copies of OBJ in V that are wrong (bit per acting index), the
 * authoritative version and the OSDs holding it (SOURCES). */
static uint32_t scrub_judge(struct osd_pg *pg, const struct scrub_view *v, bool deep,
			    uint64_t *auth_v, uint32_t *sources, uint32_t *n_src)
{
	*auth_v = 0;
	for (uint32_t i = 0; i < pg->n_acting; i++)
		if (v->e[i] && !v->e[i]->status && v->e[i]->version > *auth_v)
			*auth_v = v->e[i]->version;
	/* Deep: the digest most copies of that version have (the primary's
	 * on a tie). */
	uint32_t digest = 0, best = 0;
	for (uint32_t i = 0; deep && i < pg->n_acting; i++) {
		if (!v->e[i] || v->e[i]->status || v->e[i]->version != *auth_v)
			continue;
		uint32_t votes = 0;
		for (uint32_t k = 0; k < pg->n_acting; k++)
			votes += v->e[k] && !v->e[k]->status && v->e[k]->version == *auth_v &&
				 v->e[k]->digest == v->e[i]->digest;
		if (votes > best) {
			best = votes;
			digest = v->e[i]->digest;
		}
	}
	uint32_t wrong = 0;
	*n_src = 0;
	for (uint32_t i = 0; i < pg->n_acting; i++) {
		const struct scrub_entry *e = v->e[i];
		bool good = e && !e->status && e->version == *auth_v && (!deep || e->digest == digest);
		if (good)
			sources[(*n_src)++] = pg->acting[i];
		else
			wrong |= 1u << i;
	}
	return wrong;
}

/* An EC object's chunks, one per acting member: the version is the
 * newest that K good chunks have (peering's rule); a chunk missing,
 * unreadable or of another version is wrong (*NEWER: those of a newer
 * one). A deep scrub then checks the good chunks against each other
 * (ec_check; with K + 1 of them, data chunks win). *AUTH_V is 0 when no
 * version has K good chunks. */
static uint32_t scrub_judge_ec(struct osd_pg *pg, const struct scrub_view *v, bool deep,
			       uint64_t *auth_v, uint32_t *newer)
{
	unsigned k = pg->ec->k;
	*auth_v = 0;
	for (uint32_t i = 0; i < pg->n_acting; i++) {
		const struct scrub_entry *e = v->e[i];
		if (!e || e->status || e->version <= *auth_v)
			continue;
		unsigned same = 0;
		for (uint32_t j = 0; j < pg->n_acting; j++)
			same += v->e[j] && !v->e[j]->status && v->e[j]->version == e->version;
		if (same >= k)
			*auth_v = e->version;
	}
	uint32_t wrong = 0, present = 0;
	uint8_t *chunks[EC_MAX_CHUNKS] = { NULL };
	*newer = 0;
	for (uint32_t i = 0; i < pg->n_acting; i++) {
		const struct scrub_entry *e = v->e[i];
		if (!e || e->status || e->version != *auth_v) {
			wrong |= 1u << i;
			*newer |= (uint32_t)(e && e->version > *auth_v) << i;
		} else if (e->bytes) {
			chunks[pg->shard[i]] = e->bytes;
			present |= 1u << pg->shard[i];
		}
	}
	uint32_t bad_chunks = 0;
	unsigned have = (unsigned)__builtin_popcount(present);
	if (deep && *auth_v && have > k &&
	    ec_check(pg->ec, store_block_size(pg->o->store), chunks, present, &bad_chunks))
		LOG_WARN("pg %u.%x scrub: out of memory checking parity", pg->pool, pg->pg);
	if (bad_chunks && (have < k + 2 || __builtin_popcount(bad_chunks) > 1))
		LOG_WARN("pg %u.%x scrub: %u chunks of an object disagree and %s: the first K "
			 "(data before parity: what reads returned) win",
			 pg->pool, pg->pg, have,
			 have < k + 2 ? "one more than K cannot tell which is wrong"
				      : "no single chunk explains it");
	for (uint32_t i = 0; i < pg->n_acting; i++)
		if (bad_chunks & (1u << pg->shard[i]))
			wrong |= 1u << i;
	return wrong;
}

static void scrub_report(struct osd_pg *pg, const struct object_id *oid,
			 const struct scrub_view *v, uint32_t wrong, uint64_t auth_v)
{
	char id[64], copy[32] = "copy";
	object_id_str(oid, id, sizeof(id));
	for (uint32_t i = 0; i < pg->n_acting; i++) {
		if (!(wrong & (1u << i)))
			continue;
		const struct scrub_entry *e = v->e[i];
		const char *what = !e ? "is missing"
			: e->status == -EBADMSG ? "fails its checksums"
			: e->status ? "cannot be read"
			: e->version != auth_v ? "has another version"
			: pg->ec ? "does not agree with the other chunks (parity)"
				 : "differs from the other copies";
		if (pg->ec)
			snprintf(copy, sizeof(copy), "chunk %u", pg->shard[i]);
		LOG_WARN("pg %u.%x scrub: the %s of %s on osd.%u %s%s", pg->pool, pg->pg, copy, id,
			 pg->acting[i], what, auth_v ? ": repairing it" : "");
	}
}

/* Repairs OBJ: members in WRONG get the copy of AUTH_V from SOURCES
 * (an EC object's: their chunks rebuilt from the others; those of NEWER
 * hold a newer one). */
static void scrub_repair(struct osd_pg *pg, const struct object_id *oid, uint32_t wrong,
			 uint64_t auth_v, const uint32_t *sources, uint32_t n_src, uint32_t newer)
{
	struct pg_obj *obj = pg_obj_get(pg, oid, true);
	pg->bad_found += (uint64_t)__builtin_popcount(wrong);
	pg->o->pgs->bad_found += (uint64_t)__builtin_popcount(wrong);
	pg->scrub->found += (uint32_t)__builtin_popcount(wrong);
	if (!obj || pg_obj_mending(obj))
		return; /* already being mended, or beyond it */
	if (pg->ec && auth_v && pg_ec_repair(pg, oid, auth_v, wrong, newer, ~wrong))
		return;
	if (!n_src || pg->ec) {
		obj->unfound = true;
		pg->n_unfound++;
		char id[64];
		LOG_ERROR("pg %u.%x scrub: object %s has %s left", pg->pool, pg->pg,
			  object_id_str(oid, id, sizeof(id)),
			  pg->ec ? "fewer good chunks than the code needs" : "no good copy");
		return;
	}
	pg_recovery_need(pg, oid, auth_v, wrong, 0, sources, n_src);
	obj->repairing = true;
}

static void scrub_chunk_done(struct osd_pg *pg);

/* Every member answered: compare each object's copies, repair. */
static void scrub_compare(struct osd_pg *pg)
{
	struct pg_scrub *sc = pg->scrub;
	size_t next[MAP_PG_ACTING_MAX] = { 0 };
	for (;;) {
		/* The smallest object any member still has to show. */
		const struct object_id *least = NULL;
		for (uint32_t i = 0; i < pg->n_acting; i++)
			if (next[i] < sc->n_entries[i] &&
			    (!least || object_id_cmp(&sc->entries[i][next[i]].oid, least) < 0))
				least = &sc->entries[i][next[i]].oid;
		if (!least)
			break;
		struct object_id oid = *least;
		struct scrub_view v = { { NULL } };
		for (uint32_t i = 0; i < pg->n_acting; i++)
			if (next[i] < sc->n_entries[i] && !object_id_cmp(&sc->entries[i][next[i]].oid, &oid))
				v.e[i] = &sc->entries[i][next[i]++];
		uint64_t auth_v;
		uint32_t sources[MAP_PG_ACTING_MAX], n_src = 0, newer = 0;
		uint32_t wrong = pg->ec ? scrub_judge_ec(pg, &v, sc->deep, &auth_v, &newer)
					: scrub_judge(pg, &v, sc->deep, &auth_v, sources, &n_src);
		sc->done_objects++;
		pg->o->pgs->scrubbed_objects++;
		if (!wrong)
			continue;
		scrub_report(pg, &oid, &v, wrong, auth_v);
		scrub_repair(pg, &oid, wrong, auth_v, sources, n_src, newer);
	}
	scrub_chunk_free(sc);
	scrub_chunk_done(pg);
}

/* --- scrub times and the cursor, in the PG's record object ------------------------- */

static void stamp_write_done(struct store_req *req, int res)
{
	struct osd_pg *pg = req->ctx;
	free(req->buf);
	req->buf = NULL;
	pg->stamp_inflight = false;
	pg_store_write_done(pg);
	if (res)
		LOG_WARN("pg %u.%x: cannot keep its scrub state: %s", pg->pool, pg->pg,
			 strerror(-res));
	if (pg->stamp_again) {
		pg->stamp_again = false;
		pg_scrub_persist(pg);
	}
}

void pg_scrub_persist(struct osd_pg *pg)
{
	if (pg->complete_epoch >= UINT64_MAX - 1 || pg->o->stopping || pg->o->forgetting)
		return; /* its record is not known (yet): the next one */
	if (pg->stamp_inflight) {
		pg->stamp_again = true;
		return;
	}
	pg->stamp_inflight = true;
	if (pg_mark_write(pg, pg->complete_epoch, stamp_write_done, pg, &pg->stamp_req))
		pg->stamp_inflight = false;
}

/* The next chunk (or PG) from the loop at once rather than at the next
 * OSD tick: chunks paced by the tick alone capped a scrub at a chunk per
 * 100 ms whatever the throttle said. The tick still drives a scrub that
 * waits for tokens or for clients. */
static void scrub_soon(struct osd *o)
{
	if (!o->stopping && !o->forgetting)
		io_timer_arm(o->loop, &o->pgs->scrub_timer, 0);
}

static void scrub_timer_fire(struct io_timer *timer)
{
	struct osd *o = timer->ctx;
	pg_scrub_tick(o, io_now_ns(o->loop));
}

void pg_scrub_init(struct osd *o)
{
	io_timer_init(&o->pgs->scrub_timer, scrub_timer_fire, o);
}

static void scrub_finish(struct osd_pg *pg)
{
	struct pg_scrub *sc = pg->scrub;
	uint64_t now_s = io_wall_ms(pg->o->loop) / 1000;
	pg->last_scrub_s = now_s;
	if (sc->deep)
		pg->last_deep_scrub_s = now_s;
	pg->scrub_resume = 0;
	pg->has_scrub_cursor = false;
	LOG_INFO("pg %u.%x: %s scrub done in %.1f s: %u objects, %u bad copies found", pg->pool,
		 pg->pg, sc->deep ? "deep" : "light",
		 (io_now_ns(pg->o->loop) - sc->started_ns) / 1e9, sc->done_objects, sc->found);
	pg->o->pgs->scrubs_done++;
	scrub_free(pg);
	pg_scrub_persist(pg);
	pg->o->pgs->scrub_next_look_ns = 0; /* the next PG now, not in a second */
	scrub_soon(pg->o);
}

static void scrub_chunk_done(struct osd_pg *pg)
{
	struct pg_scrub *sc = pg->scrub;
	uint64_t gen = pg->gen;
	sc->phase = SCRUB_IDLE;
	scrub_release(pg);
	if (pg->gen != gen || pg->scrub != sc)
		return;
	pg_recovery_kick(pg->o); /* the repairs */
	if (!sc->has_end) {
		scrub_finish(pg);
		return;
	}
	sc->has_after = true;
	sc->after = sc->end;
	pg->scrub_resume = sc->deep ? 2 : 1;
	pg->has_scrub_cursor = true;
	pg->scrub_cursor = sc->after;
	sc->waiting_since_ns = 0;
	pg_scrub_persist(pg);
	scrub_soon(pg->o);
}

/* How many objects a chunk of the scrub takes: SCRUB_CHUNK, fewer for an
 * EC deep scrub of big chunks (their bytes travel). */
static size_t scrub_chunk_objects(const struct osd_pg *pg)
{
	size_t most = SCRUB_EC_DEEP_BYTES / store_block_size(pg->o->store); /* 4 or more */
	return pg->ec && pg->scrub->deep && most < SCRUB_CHUNK ? most : SCRUB_CHUNK;
}

/* The next chunk: the primary's next SCRUB_CHUNK objects after the
 * cursor; writes to them wait from now until the chunk is done. */
static void scrub_chunk_start(struct osd_pg *pg)
{
	struct pg_scrub *sc = pg->scrub;
	struct object_id *oids = NULL;
	size_t n = 0, count = scrub_chunk_objects(pg);
	if (scrub_list(pg, sc->has_after ? &sc->after : NULL, NULL, member_chunk(pg, 0), count,
		       &oids, &n)) {
		scrub_abort(pg, "cannot list its objects");
		return;
	}
	sc->has_end = n == count;
	if (sc->has_end)
		sc->end = oids[n - 1];
	free(oids);
	sc->phase = SCRUB_QUIESCE;
	pg_scrub_kick(pg);
}

/* --- scheduling ------------------------------------------------------------------------- */

static bool scrub_tokens(struct osd *o, uint64_t bytes)
{
	struct osd_pgs *t = o->pgs;
	if (!o->scrub_bytes_per_sec)
		return true;
	uint64_t now = io_now_ns(o->loop);
	uint64_t burst = o->scrub_bytes_per_sec / 5 > bytes ? o->scrub_bytes_per_sec / 5 : bytes;
	if (now > t->scrub_refill_ns) {
		uint64_t add = (now - t->scrub_refill_ns) * o->scrub_bytes_per_sec / 1000000000ull;
		t->scrub_tokens = t->scrub_tokens + add > burst ? burst : t->scrub_tokens + add;
		t->scrub_refill_ns = now;
	}
	if (t->scrub_tokens < bytes)
		return false;
	t->scrub_tokens -= bytes;
	return true;
}

/* Whether PG may be scrubbed now: this OSD its primary, active, nothing
 * to recover. */
static bool scrub_ready(const struct osd_pg *pg)
{
	return pg->state == PG_STATE_ACTIVE && !pg->n_missing && pg->n_acting && !pg->read_only &&
	       pg->acting[0] == pg->o->id && pg->recording == PG_RECORD_NONE;
}

static uint32_t scrub_count_objects(struct osd_pg *pg)
{
	struct object_id *oids = NULL;
	size_t n = 0;
	if (scrub_list(pg, NULL, NULL, member_chunk(pg, 0), SIZE_MAX, &oids, &n))
		return 0;
	free(oids);
	return (uint32_t)n;
}

static void scrub_start(struct osd_pg *pg, bool deep, bool requested)
{
	struct pg_scrub *sc = calloc(1, sizeof(*sc));
	if (!sc)
		return;
	sc->pg = pg;
	sc->deep = deep;
	sc->requested = requested;
	sc->started_ns = io_now_ns(pg->o->loop);
	/* A scrub a restart cut resumes after its cursor (a deep one too,
	 * when this is one). */
	if (pg->scrub_resume && pg->has_scrub_cursor && (pg->scrub_resume == 2) >= deep) {
		sc->deep = pg->scrub_resume == 2;
		sc->has_after = true;
		sc->after = pg->scrub_cursor;
	}
	sc->total_objects = scrub_count_objects(pg);
	pg->scrub = sc;
	pg->o->pgs->scrubs_running++;
	pg->scrub_resume = sc->deep ? 2 : 1;
	LOG_INFO("pg %u.%x: %s scrub %s (%u objects)", pg->pool, pg->pg, sc->deep ? "deep" : "light",
		 sc->has_after ? "resumed" : "started", sc->total_objects);
}

struct scrub_pick {
	uint64_t now_s;
	struct osd_pg *best;
	bool deep;
	uint64_t best_age;
};

/* The PG whose scrub is most overdue (a cut one first). */
static void scrub_pick_one(struct osd_pg *pg, void *arg)
{
	struct scrub_pick *p = arg;
	struct osd *o = pg->o;
	if (!scrub_ready(pg) || pg->scrub)
		return;
	uint64_t light_age = p->now_s - (pg->last_scrub_s < p->now_s ? pg->last_scrub_s : p->now_s);
	uint64_t deep_age = p->now_s - (pg->last_deep_scrub_s < p->now_s ? pg->last_deep_scrub_s
									  : p->now_s);
	bool deep = deep_age >= o->deep_scrub_interval_s;
	uint64_t age = pg->scrub_resume ? UINT64_MAX : deep ? deep_age : light_age;
	if (!pg->scrub_resume && !deep && light_age < o->scrub_interval_s)
		return;
	if (!p->best || age > p->best_age) {
		p->best = pg;
		p->deep = deep || pg->scrub_resume == 2;
		p->best_age = age;
	}
}

void pg_scrub_request(struct osd *o, struct osd_pg *pg, bool deep)
{
	if (!pg->scrub_wanted || deep)
		pg->scrub_wanted = deep ? 2 : 1;
	LOG_INFO("pg %u.%x: %s scrub requested", pg->pool, pg->pg, deep ? "deep" : "light");
	(void)o;
}

struct scrub_all {
	bool deep;
	int n;
};

static void scrub_all_one(struct osd_pg *pg, void *arg)
{
	struct scrub_all *a = arg;
	if (pg->n_acting && pg->acting[0] == pg->o->id && pg->state != PG_STATE_IDLE) {
		pg_scrub_request(pg->o, pg, a->deep);
		a->n++;
	}
}

int osd_pg_scrub(struct osd *o, uint32_t pool, uint32_t pgid, bool deep)
{
	if (pgid == UINT32_MAX) {
		struct scrub_all a = { deep, 0 };
		pg_for_each(o, scrub_all_one, &a);
		return a.n;
	}
	struct osd_pg *pg = pg_get(o, pool, pgid, false);
	if (!pg || !pg->n_acting || pg->acting[0] != o->id || pg->state == PG_STATE_IDLE)
		return -EAGAIN;
	pg_scrub_request(o, pg, deep);
	return 1;
}

static void scrub_requested_one(struct osd_pg *pg, void *arg)
{
	struct scrub_pick *p = arg;
	if (pg->scrub_wanted && scrub_ready(pg) && !pg->scrub && !p->best) {
		p->best = pg;
		p->deep = pg->scrub_wanted == 2;
	}
}

/* Drives the running scrub, or starts the next one. */
void pg_scrub_tick(struct osd *o, uint64_t now)
{
	struct osd_pgs *t = o->pgs;
	struct osd_pg *pg = t->scrub_pg;
	if (pg && pg->scrub) {
		struct pg_scrub *sc = pg->scrub;
		if (!scrub_ready(pg)) {
			scrub_abort(pg, "the PG is not active and clean");
			return;
		}
		if (sc->phase != SCRUB_IDLE)
			return;
		/* Yield to clients: wait (up to osd_scrub_sleep) while this
		 * OSD has operations of theirs. */
		if (!sc->waiting_since_ns)
			sc->waiting_since_ns = now;
		if (t->client_ops && now - sc->waiting_since_ns < o->scrub_sleep_ns)
			return;
		if (!scrub_tokens(o, (uint64_t)SCRUB_CHUNK * store_block_size(o->store) * pg->n_acting))
			return;
		scrub_chunk_start(pg);
		return;
	}
	t->scrub_pg = NULL;
	if (now < t->scrub_next_look_ns)
		return;
	t->scrub_next_look_ns = now + IO_SEC(1);
	struct scrub_pick p = { .now_s = io_wall_ms(o->loop) / 1000 };
	pg_for_each(o, scrub_requested_one, &p);
	if (!p.best && o->scrub_interval_s)
		pg_for_each(o, scrub_pick_one, &p);
	if (!p.best)
		return;
	bool requested = p.best->scrub_wanted != 0;
	p.best->scrub_wanted = 0;
	scrub_start(p.best, p.deep, requested);
	t->scrub_pg = p.best->scrub ? p.best : NULL;
}

/* --- what the stats show ------------------------------------------------------------- */

void pg_scrub_stat(const struct osd_pg *pg, struct mon_pg_stat *st)
{
	st->last_scrub_s = pg->last_scrub_s;
	st->last_deep_scrub_s = pg->last_deep_scrub_s;
	st->bad_found = (uint32_t)pg->bad_found;
	st->bad_repaired = (uint32_t)pg->bad_repaired;
	st->unfound = pg->n_unfound;
	if (pg->scrub) {
		st->state |= MON_PG_SCRUBBING | (pg->scrub->deep ? MON_PG_DEEP : 0);
		st->scrub_done = pg->scrub->done_objects;
		st->scrub_total = pg->scrub->total_objects;
	}
	if (pg->n_unfound)
		st->state |= MON_PG_INCONSISTENT;
}

static void unfound_one(struct osd_pg *pg, void *arg)
{
	struct mon_osd_usage *u = arg;
	if (!pg->n_unfound)
		return;
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &pg->objs) {
		struct pg_obj *obj = list_entry(pos, struct pg_obj, pg_node);
		if (!obj->unfound)
			continue;
		if (u->n_unfound < MON_UNFOUND_MAX)
			u->unfound[u->n_unfound] = obj->oid;
		u->n_unfound++;
	}
}

uint64_t osd_pg_scrubs_done(const struct osd *o)
{
	return o->pgs ? o->pgs->scrubs_done : 0;
}

void osd_pg_bad_copies(const struct osd *o, uint64_t *found, uint64_t *repaired)
{
	*found = o->pgs ? o->pgs->bad_found : 0;
	*repaired = o->pgs ? o->pgs->bad_repaired : 0;
}

void osd_pg_unfound(struct osd *o, struct mon_osd_usage *u)
{
	u->n_unfound = 0;
	if (o->pgs)
		pg_for_each(o, unfound_one, u);
}
