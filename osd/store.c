/* The store's in-memory index, block table and allocator, and the small
 * helpers every other store file uses (see store_int.h for invariants). */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/assert.h"
#include "common/log.h"
#include "store_int.h"

/* --- crash points -------------------------------------------------------- */

/* BASALT_STORE_CRASH_AT=N kills the process with SIGKILL at the Nth crash
 * point reached: the crash test's way to stop at a random step of the
 * write path. */
bool store_crash_point(const char *name)
{
	static long countdown = -2;
	if (countdown == -2) {
		const char *env = getenv("BASALT_STORE_CRASH_AT");
		countdown = env ? atol(env) : -1;
	}
	if (countdown < 0 || --countdown > 0)
		return false;
	LOG_WARN("crash point '%s' reached: killing the process", name);
	kill(getpid(), SIGKILL);
	return true;
}

void store_fail(struct store *s, const char *what, int err)
{
	if (!s->failed)
		LOG_ERROR("store failed: %s: %s; refusing further writes", what,
			  strerror(-err));
	s->failed = true;
}

/* --- index ------------------------------------------------------------------- */

struct store_obj *store_obj_find(struct store *s, const struct object_id *oid)
{
	struct store_obj *o = s->buckets[object_id_hash(oid) & s->bucket_mask];
	while (o && !object_id_equal(&o->oid, oid))
		o = o->hash_next;
	return o;
}

/* Finds or creates the object (a new one does not exist yet: exists is
 * false until a write to it is durable). Takes a reference. */
struct store_obj *store_obj_get(struct store *s, const struct object_id *oid)
{
	struct store_obj *o = store_obj_find(s, oid);
	if (!o) {
		o = calloc(1, s->obj_size);
		if (!o)
			return NULL;
		o->oid = *oid;
		o->block = STORE_NO_BLOCK;
		o->next_deleted = true;
		list_init(&o->waiters);
		list_init(&o->flush_node);
		if (store_pg_link(s, o)) {
			free(o);
			return NULL;
		}
		struct store_obj **b = &s->buckets[object_id_hash(oid) & s->bucket_mask];
		o->hash_next = *b;
		*b = o;
		s->objects++;
	}
	o->refs++;
	return o;
}

/* Frees O once nothing refers to it and it holds nothing. */
void store_obj_maybe_free(struct store *s, struct store_obj *o)
{
	if (o->refs || o->exists || o->overlays || o->block != STORE_NO_BLOCK ||
	    o->big_pending || !list_empty(&o->waiters))
		return;
	struct store_obj **p = &s->buckets[object_id_hash(&o->oid) & s->bucket_mask];
	while (*p != o)
		p = &(*p)->hash_next;
	*p = o->hash_next;
	if (o->on_flush_list)
		list_del(&o->flush_node);
	store_pg_unlink(s, o);
	s->objects--;
	free(o);
}

void store_obj_put(struct store *s, struct store_obj *o)
{
	BASALT_ASSERT(o->refs > 0);
	o->refs--;
	store_obj_maybe_free(s, o);
}

/* --- overlays ---------------------------------------------------------------- */

struct store_overlay *store_overlay_new(struct store *s)
{
	struct store_overlay *ov = s->overlay_free;
	BASALT_ASSERT(ov != NULL); /* sized by the journal: one per chunk */
	s->overlay_free = ov->next;
	memset(ov, 0, sizeof(*ov));
	return ov;
}

static void store_overlay_free(struct store *s, struct store_overlay *ov)
{
	ov->next = s->overlay_free;
	s->overlay_free = ov;
}

/* Drops overlays with version <= UP_TO (all: UINT64_MAX). */
void store_overlays_drop(struct store *s, struct store_obj *o, uint64_t up_to)
{
	struct store_overlay **p = &o->overlays;
	while (*p) {
		struct store_overlay *ov = *p;
		if (ov->version <= up_to) {
			*p = ov->next;
			store_overlay_free(s, ov);
		} else {
			p = &ov->next;
		}
	}
	store_flush_list_update(s, o);
}

void store_flush_list_update(struct store *s, struct store_obj *o)
{
	bool want = o->overlays != NULL;
	if (want && !o->on_flush_list)
		list_add_tail(&s->flush_list, &o->flush_node);
	else if (!want && o->on_flush_list)
		list_del(&o->flush_node);
	o->on_flush_list = want;
}

/* --- blocks and allocator ----------------------------------------------------- */

uint64_t store_block_offset(const struct store *s, uint64_t block)
{
	return s->L.data_offset + block * s->L.block_size;
}

/* Slot A entries fill the first half of the metadata area, slot B the
 * second, so neighbouring blocks' updates are neighbouring writes. */
uint64_t store_entry_offset(const struct store *s, uint64_t block, bool slot_b)
{
	uint64_t half = s->L.meta_size / 2;
	return s->L.meta_offset + (slot_b ? half : 0) + block * s->L.entry_size;
}

static void alloc_mark_free(struct store *s, uint64_t b)
{
	BASALT_ASSERT(!(s->free_bits[b / 64] & (1ULL << (b % 64))));
	s->free_bits[b / 64] |= 1ULL << (b % 64);
	s->free_count++;
	s->flush_stuck = false;
}

/* Next-fit: sequential allocations land in sequential blocks. */
int store_block_alloc(struct store *s, uint64_t *block)
{
	if (!s->free_count)
		return -ENOSPC;
	uint64_t words = (s->L.block_count + 63) / 64;
	uint64_t w = s->alloc_cursor / 64;
	for (uint64_t i = 0; i <= words; i++, w = (w + 1) % words) {
		uint64_t bits = s->free_bits[w];
		if (w == s->alloc_cursor / 64 && i == 0)
			bits &= ~0ULL << (s->alloc_cursor % 64);
		if (!bits)
			continue;
		uint64_t b = w * 64 + (uint64_t)__builtin_ctzll(bits);
		s->free_bits[w] &= ~(1ULL << (b % 64));
		s->free_count--;
		s->alloc_cursor = b + 1 < s->L.block_count ? b + 1 : 0;
		struct store_block *blk = &s->blocks[b];
		BASALT_ASSERT(!blk->owner && !blk->refs &&
			      !(blk->flags & (STORE_BLOCK_RESERVED | STORE_BLOCK_FREE_LATER)));
		blk->flags |= STORE_BLOCK_RESERVED;
		*block = b;
		return 0;
	}
	BASALT_ASSERT(!"free_count and bitmap disagree");
	return -ENOSPC;
}

uint64_t store_blocks_available(const struct store *s)
{
	uint64_t have = s->free_count + s->promised_in_flush;
	return have > s->promised ? have - s->promised : 0;
}

void store_promise_settle(struct store *s, struct store_obj *o)
{
	bool need = o->block == STORE_NO_BLOCK && o->overlays != NULL;
	if (need == o->promised)
		return;
	o->promised = need;
	if (need)
		s->promised++;
	else
		s->promised--;
}

void store_block_ref(struct store *s, uint64_t b)
{
	BASALT_ASSERT(s->blocks[b].refs < UINT16_MAX);
	s->blocks[b].refs++;
}

static void store_block_maybe_free(struct store *s, uint64_t b)
{
	struct store_block *blk = &s->blocks[b];
	if ((blk->flags & STORE_BLOCK_FREE_LATER) && !blk->refs) {
		blk->flags &= (uint8_t)~STORE_BLOCK_FREE_LATER;
		alloc_mark_free(s, b);
	}
}

void store_block_unref(struct store *s, uint64_t b)
{
	BASALT_ASSERT(s->blocks[b].refs > 0);
	s->blocks[b].refs--;
	store_block_maybe_free(s, b);
}

void store_block_mark_dirty(struct store *s, uint64_t b)
{
	struct store_block *blk = &s->blocks[b];
	if (blk->flags & STORE_BLOCK_DIRTY)
		return;
	blk->flags |= STORE_BLOCK_DIRTY;
	s->dirty[s->dirty_count++] = b;
}

void store_block_set_owner(struct store *s, uint64_t b, struct store_obj *o)
{
	struct store_block *blk = &s->blocks[b];
	BASALT_ASSERT(!blk->owner);
	blk->owner = o;
	blk->flags &= (uint8_t)~STORE_BLOCK_RESERVED;
	store_block_mark_dirty(s, b);
}

/* The block no longer holds anything: it returns to the allocator now, or
 * as soon as the I/O still in flight on it ends. Its metadata entry is
 * cleared by the next flush. */
void store_block_release(struct store *s, uint64_t b)
{
	struct store_block *blk = &s->blocks[b];
	blk->owner = NULL;
	blk->flags &= (uint8_t)~STORE_BLOCK_RESERVED;
	store_block_mark_dirty(s, b);
	if (s->replaying)
		return; /* the allocator is built from owners afterwards */
	blk->flags |= STORE_BLOCK_FREE_LATER;
	store_block_maybe_free(s, b);
}

/* --- checks -------------------------------------------------------------------- */

/* Invariant 1, from both sides, and 2; returns how many blocks are owned. */
static uint64_t check_blocks(const struct store *s)
{
	uint64_t owned = 0, free_bits = 0, dirty = 0;
	for (uint64_t b = 0; b < s->L.block_count; b++) {
		const struct store_block *blk = &s->blocks[b];
		bool in_alloc = s->free_bits[b / 64] & (1ULL << (b % 64));
		if (blk->owner) {
			BASALT_ASSERT(blk->owner->block == b); /* 1 */
			owned++;
		}
		bool busy = blk->owner || blk->refs ||
			    (blk->flags & (STORE_BLOCK_RESERVED | STORE_BLOCK_FREE_LATER));
		BASALT_ASSERT(in_alloc == !busy); /* 2 */
		free_bits += in_alloc;
		dirty += (blk->flags & STORE_BLOCK_DIRTY) != 0;
	}
	BASALT_ASSERT(free_bits == s->free_count); /* 2 */
	/* 5: every changed metadata entry is on the list the next flush
	 * writes before it may move the tail (none is forgotten). */
	BASALT_ASSERT(dirty == s->dirty_count);
	for (uint64_t i = 0; i < s->dirty_count; i++)
		BASALT_ASSERT(s->blocks[s->dirty[i]].flags & STORE_BLOCK_DIRTY);
	return owned;
}

void store_check(struct store *s)
{
	uint64_t owned = check_blocks(s), with_block = 0, promised = 0;
	for (uint64_t i = 0; i <= s->bucket_mask; i++) {
		for (struct store_obj *o = s->buckets[i]; o; o = o->hash_next) {
			if (o->block != STORE_NO_BLOCK) {
				BASALT_ASSERT(s->blocks[o->block].owner == o); /* 1 */
				with_block++;
			}
			uint64_t prev = UINT64_MAX;
			for (struct store_overlay *ov = o->overlays; ov; ov = ov->next) {
				BASALT_ASSERT(ov->version < prev); /* 3: newest first */
				prev = ov->version;
				/* 3 and 5: from a batch the tail has not passed. */
				BASALT_ASSERT(ov->seq >= s->j_tail_seq);
			}
			/* 6: journaled data with no block holds a promise. */
			BASALT_ASSERT(o->promised ==
				      (o->block == STORE_NO_BLOCK && o->overlays != NULL));
			promised += o->promised;
		}
	}
	BASALT_ASSERT(owned == with_block); /* 1 */
	BASALT_ASSERT(owned == s->objects_with_block); /* 7 */
	/* 6: the objects' promises are among those counted (the rest are
	 * requests'), and free blocks cover them all — unless open found
	 * a store that older code over-committed. */
	BASALT_ASSERT(promised <= s->promised);
	BASALT_ASSERT(s->report.unplaceable ||
		      s->free_count + s->promised_in_flush >= s->promised);
	BASALT_ASSERT(s->j_appended - s->j_trimmed <= s->L.journal_size); /* 4 */
	BASALT_ASSERT(s->j_tail_seq <= s->j_seq);			   /* 4 */
	store_pg_check(s);						   /* 7 */
}

/* --- accessors ------------------------------------------------------------------ */

uint32_t store_block_size(const struct store *s)
{
	return s->L.block_size;
}

void store_space(const struct store *s, uint64_t *data_bytes, uint64_t *available_bytes)
{
	uint64_t avail = store_blocks_available(s);
	avail = avail > s->reserve_blocks ? avail - s->reserve_blocks : 0;
	*data_bytes = s->L.block_count * s->L.block_size;
	*available_bytes = avail * s->L.block_size;
}

void store_usage(struct store *s, struct store_usage *u)
{
	memset(u, 0, sizeof(*u));
	u->device_bytes = s->L.device_size;
	u->block_size = s->L.block_size;
	u->blocks_total = s->L.block_count;
	u->blocks_free = s->free_count;
	u->blocks_promised = s->promised;
	u->blocks_reserved = s->reserve_blocks;
	u->blocks_available = store_blocks_available(s);
	u->blocks_available = u->blocks_available > s->reserve_blocks
				      ? u->blocks_available - s->reserve_blocks : 0;
	u->blocks_used = s->objects_with_block; /* invariants 1 and 7 */
	u->objects = s->objects_live;
	u->journal_bytes = s->L.journal_size;
	u->journal_used_bytes = s->j_appended - s->j_trimmed;
	u->meta_bytes = STORE_JOURNAL_OFFSET + s->L.meta_size;
	u->live_data_bytes = u->blocks_used * s->L.block_size;
	u->used_bytes = u->live_data_bytes + u->journal_bytes + u->meta_bytes;
	u->csum_errors = s->stats.csum_errors;
	u->read_errors = s->stats.read_errors;
	u->journal_batches = s->stats.batches;
	u->journal_records = s->stats.records;
	u->flushes = s->stats.flushes;
	u->listed_objects = s->stats.list_visited;
	u->pg_sorted_objects = s->stats.pg_sorted;
}

static void store_obj_info(const struct store *s, const struct store_obj *o,
			   struct store_object_info *info)
{
	info->oid = o->oid;
	info->version = o->version;
	info->written_bytes = (uint64_t)store_obj_written_chunks(s, o) * STORE_CHUNK;
	info->has_block = o->block != STORE_NO_BLOCK;
}

int store_object_locate(struct store *s, const struct object_id *oid, uint64_t *offset)
{
	struct store_obj *o = store_obj_find(s, oid);
	if (!o || !o->exists || o->block == STORE_NO_BLOCK)
		return -ENOENT;
	*offset = store_block_offset(s, o->block);
	return 0;
}

int store_stat(struct store *s, const struct object_id *oid,
	       struct store_object_info *out)
{
	struct store_obj *o = store_obj_find(s, oid);
	if (!o || !o->exists)
		return -ENOENT;
	store_obj_info(s, o, out);
	return 0;
}

struct list_visit {
	const struct store_list_filter *f;
	int (*fn)(const struct store_object_info *info, void *arg);
	void *arg;
};

static int list_visit_one(struct store *s, struct store_obj *o, void *arg)
{
	const struct list_visit *v = arg;
	if (!o->exists || (!v->f->any_inode && o->oid.inode != v->f->inode))
		return 0;
	struct store_object_info info;
	store_obj_info(s, o, &info);
	return v->fn(&info, v->arg);
}

int store_list(struct store *s, const struct store_list_filter *f,
	       int (*fn)(const struct store_object_info *info, void *arg),
	       void *arg)
{
	struct list_visit v = { f, fn, arg };
	return store_pg_list(s, f, list_visit_one, &v);
}

bool store_clone_movable(struct store *s, const struct object_id *head, uint32_t snap)
{
	if (head->snap != OBJECT_SNAP_HEAD || !snap || s->p.read_only || s->failed)
		return false;
	const struct store_obj *o = store_obj_find(s, head);
	if (!o || !o->exists || o->next_deleted || o->block == STORE_NO_BLOCK || o->overlays ||
	    o->redirects || o->deletes || o->big_pending || o->next_version != o->version ||
	    o->block_version != o->version)
		return false;
	struct object_id clone = *head;
	clone.snap = snap;
	const struct store_obj *c = store_obj_find(s, &clone);
	return !c || (!c->exists && c->block == STORE_NO_BLOCK && !c->overlays && !c->redirects &&
		      !c->deletes && !c->big_pending);
}

void store_submit(struct store *s, struct store_req *req)
{
	if (req->op == STORE_OP_READ)
		store_read_submit(s, req);
	else
		store_write_submit(s, req);
}
