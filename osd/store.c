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

void store_rec_oid(const struct store_rec *r, struct object_id *oid)
{
	object_pool_unpack(r->pool, oid);
	oid->inode = r->inode;
	oid->index = r->index_snap & OBJECT_INDEX_MAX;
	oid->snap = (uint32_t)(r->index_snap >> OBJECT_INDEX_BITS);
}

static uint64_t oid_packed(const struct object_id *oid)
{
	return (oid->index & OBJECT_INDEX_MAX) | (uint64_t)oid->snap << OBJECT_INDEX_BITS;
}

static uint32_t *rec_bucket(struct store *s, const struct object_id *oid)
{
	return &s->buckets[object_id_hash(oid) & s->bucket_mask];
}

uint32_t store_rec_find(struct store *s, const struct object_id *oid)
{
	uint64_t packed = oid_packed(oid);
	uint32_t i = *rec_bucket(s, oid);
	while (i) {
		const struct store_rec *r = store_rec(s, i);
		if (r->inode == oid->inode && r->index_snap == packed &&
		    r->pool == object_pool_pack(oid))
			return i;
		i = r->hash_next;
	}
	return 0;
}

/* One more slab of 64 Ki records when the free list is empty. */
static int rec_grow(struct store *s)
{
	if (s->rec_count >> STORE_SLAB_SHIFT < s->nslabs)
		return 0;
	if (s->nslabs >= (1u << (32 - STORE_SLAB_SHIFT)) - 1)
		return -ENOSPC;
	uint8_t **slabs = realloc(s->slabs, (s->nslabs + 1) * sizeof(*slabs));
	if (!slabs)
		return -ENOMEM;
	s->slabs = slabs;
	/* calloc: pages are resident only once records are made in them. */
	s->slabs[s->nslabs] = calloc(1u << STORE_SLAB_SHIFT, s->rec_size);
	if (!s->slabs[s->nslabs])
		return -ENOMEM;
	s->nslabs++;
	return 0;
}

uint32_t store_rec_new(struct store *s, const struct object_id *oid)
{
	uint32_t i = s->rec_free;
	if (i) {
		s->rec_free = store_rec(s, i)->hash_next;
	} else {
		if (rec_grow(s))
			return 0;
		i = s->rec_count++;
		if (i == 0) /* index 0 means none */
			i = s->rec_count++;
	}
	struct store_rec *r = store_rec(s, i);
	memset(r, 0, s->rec_size);
	r->pool = object_pool_pack(oid);
	r->inode = oid->inode;
	r->index_snap = oid_packed(oid);
	r->block = STORE_REC_NONE;
	if (store_pg_link(s, i)) {
		r->hot = STORE_REC_NONE;
		r->hash_next = s->rec_free;
		s->rec_free = i;
		return 0;
	}
	uint32_t *b = rec_bucket(s, oid);
	r->hash_next = *b;
	*b = i;
	s->objects++;
	return i;
}

static void rec_delete(struct store *s, uint32_t i)
{
	struct store_rec *r = store_rec(s, i);
	struct object_id oid;
	store_rec_oid(r, &oid);
	uint32_t *p = rec_bucket(s, &oid);
	while (*p != i)
		p = &store_rec(s, *p)->hash_next;
	*p = r->hash_next;
	store_pg_unlink(s, i);
	r->hot = STORE_REC_NONE;
	r->hash_next = s->rec_free;
	s->rec_free = i;
	s->objects--;
}

void store_view(const struct store *s, uint32_t i, struct store_view *v)
{
	const struct store_rec *r = store_rec(s, i);
	struct store_obj *o = r->hot ? s->hot_tab[r->hot] : NULL;
	v->hot = o;
	if (o) {
		v->oid = o->oid;
		v->version = o->version;
		v->block = o->block;
		v->bitmap = o->bitmap;
		v->exists = o->exists;
		return;
	}
	store_rec_oid(r, &v->oid);
	v->version = r->version;
	v->block = r->block == STORE_REC_NONE ? STORE_NO_BLOCK : r->block;
	v->bitmap = r->bitmap;
	v->exists = r->block != STORE_REC_NONE;
}

int store_rec_each(struct store *s, int (*fn)(struct store *s, uint32_t rec, void *arg),
		   void *arg)
{
	for (uint32_t i = 1; i < s->rec_count; i++) {
		if (store_rec(s, i)->hot == STORE_REC_NONE)
			continue;
		int rc = fn(s, i, arg);
		if (rc)
			return rc;
	}
	return 0;
}

static int hot_slot(struct store *s)
{
	if (s->hot_free) {
		uint32_t i = s->hot_free;
		s->hot_free = (uint32_t)(uintptr_t)s->hot_tab[i];
		return (int)i;
	}
	if (s->hot_count + 1 >= s->hot_cap) {
		uint32_t cap = s->hot_cap ? 2 * s->hot_cap : 1024;
		struct store_obj **t = realloc(s->hot_tab, cap * sizeof(*t));
		if (!t)
			return -ENOMEM;
		s->hot_tab = t;
		s->hot_cap = cap;
		if (!s->hot_count)
			s->hot_count = 1; /* index 0 means cold */
	}
	return (int)s->hot_count++;
}

/* Makes record I hot: its state moves into a struct store_obj, with its
 * block's CRCs if the cache has them. */
static struct store_obj *obj_activate(struct store *s, uint32_t i)
{
	struct store_rec *r = store_rec(s, i);
	if (r->hot)
		return s->hot_tab[r->hot];
	int slot = hot_slot(s);
	struct store_obj *o = slot < 0 ? NULL : calloc(1, s->obj_size);
	if (!o) {
		if (slot > 0) {
			s->hot_tab[slot] = (struct store_obj *)(uintptr_t)s->hot_free;
			s->hot_free = (uint32_t)slot;
		}
		return NULL;
	}
	o->rec = i;
	o->hot_idx = (uint32_t)slot;
	store_rec_oid(r, &o->oid);
	o->block = STORE_NO_BLOCK;
	o->next_deleted = true;
	list_init(&o->waiters);
	list_init(&o->flush_node);
	if (r->block != STORE_REC_NONE) {
		o->block = r->block;
		o->exists = true;
		o->next_deleted = false;
		o->version = o->next_version = o->block_version = r->version;
		memcpy(o->bitmap, r->bitmap, s->rec_bitmap);
		o->crc_valid = store_crc_take(s, o->block, o->crc);
		store_pg_acct_init(s, i, o);
	}
	s->hot_tab[slot] = o;
	r->hot = (uint32_t)slot;
	return o;
}

struct store_obj *store_obj_get_rec(struct store *s, uint32_t i)
{
	struct store_obj *o = obj_activate(s, i);
	if (o)
		o->refs++;
	return o;
}

/* Finds or creates the object (a new one does not exist yet: exists is
 * false until a write to it is durable). Takes a reference. */
struct store_obj *store_obj_get(struct store *s, const struct object_id *oid)
{
	uint32_t i = store_rec_find(s, oid);
	bool fresh = !i;
	if (fresh && !(i = store_rec_new(s, oid)))
		return NULL;
	struct store_obj *o = store_obj_get_rec(s, i);
	if (!o && fresh)
		rec_delete(s, i);
	return o;
}

/* Whether O needs its hot state: anything pending, held or unwritten. */
static bool obj_busy(const struct store *s, const struct store_obj *o)
{
	if (o->refs || o->overlays || o->big_pending || !list_empty(&o->waiters) ||
	    o->redirects || o->deletes || o->promised || o->on_flush_list ||
	    o->next_version != o->version || o->next_deleted != !o->exists)
		return true;
	if (!o->exists)
		return o->block != STORE_NO_BLOCK;
	return o->block == STORE_NO_BLOCK || o->block_version != o->version ||
	       (s->blocks[o->block].flags & (STORE_BLOCK_DIRTY | STORE_BLOCK_META_WRITING));
}

/* Frees O's hot state once it is quiet: back to its record (and its
 * CRCs to the cache), or the record goes too when nothing exists. */
void store_obj_maybe_free(struct store *s, struct store_obj *o)
{
	if (obj_busy(s, o))
		return;
	store_pg_account(s, o);
	struct store_rec *r = store_rec(s, o->rec);
	r->hot = 0;
	if (o->exists) {
		r->version = o->version;
		r->block = (uint32_t)o->block;
		memcpy(r->bitmap, o->bitmap, s->rec_bitmap);
		if (o->crc_valid)
			store_crc_put(s, o->block, o->crc, false);
	} else {
		rec_delete(s, o->rec);
	}
	s->hot_tab[o->hot_idx] = (struct store_obj *)(uintptr_t)s->hot_free;
	s->hot_free = o->hot_idx;
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
	store_crc_drop(s, b);
	blk->owner = o->rec;
	blk->flags &= (uint8_t)~STORE_BLOCK_RESERVED;
	store_block_mark_dirty(s, b);
}

/* The block no longer holds anything: it returns to the allocator now, or
 * as soon as the I/O still in flight on it ends. Its metadata entry is
 * cleared by the next flush. */
void store_block_release(struct store *s, uint64_t b)
{
	struct store_block *blk = &s->blocks[b];
	blk->owner = 0;
	store_crc_drop(s, b);
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
			struct store_view v;
			store_view(s, blk->owner, &v);
			BASALT_ASSERT(v.block == b); /* 1 */
			/* 8: an entry not yet durable is written from RAM. */
			if (blk->flags & (STORE_BLOCK_DIRTY | STORE_BLOCK_META_WRITING))
				BASALT_ASSERT(v.hot && v.hot->crc_valid);
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

struct check_acc {
	uint64_t with_block, promised, hot, records;
};

static int check_obj(struct store *s, uint32_t i, void *arg)
{
	struct check_acc *a = arg;
	struct store_view v;
	store_view(s, i, &v);
	a->records++;
	BASALT_ASSERT(store_rec_find(s, &v.oid) == i);
	if (v.block != STORE_NO_BLOCK) {
		BASALT_ASSERT(s->blocks[v.block].owner == i); /* 1 */
		a->with_block++;
	}
	struct store_obj *o = v.hot;
	if (!o) {
		/* 9: a cold object exists, in its block, and needs nothing. */
		BASALT_ASSERT(v.exists && v.block != STORE_NO_BLOCK);
		return 0;
	}
	a->hot++;
	BASALT_ASSERT(o->rec == i && s->hot_tab[o->hot_idx] == o);
	BASALT_ASSERT(obj_busy(s, o)); /* 9: a quiet object is cold */
	uint64_t prev = UINT64_MAX;
	for (struct store_overlay *ov = o->overlays; ov; ov = ov->next) {
		BASALT_ASSERT(ov->version < prev); /* 3: newest first */
		prev = ov->version;
		/* 3 and 5: from a batch the tail has not passed. */
		BASALT_ASSERT(ov->seq >= s->j_tail_seq);
	}
	/* 6: journaled data with no block holds a promise. */
	BASALT_ASSERT(o->promised == (o->block == STORE_NO_BLOCK && o->overlays != NULL));
	a->promised += o->promised;
	return 0;
}

void store_check(struct store *s)
{
	uint64_t owned = check_blocks(s);
	struct check_acc a = { 0 };
	store_rec_each(s, check_obj, &a);
	BASALT_ASSERT(a.records == s->objects);
	BASALT_ASSERT(owned == a.with_block); /* 1 */
	BASALT_ASSERT(owned == s->objects_with_block); /* 7 */
	/* 6: the objects' promises are among those counted (the rest are
	 * requests'), and free blocks cover them all — unless open found
	 * a store that older code over-committed. */
	BASALT_ASSERT(a.promised <= s->promised);
	BASALT_ASSERT(s->report.unplaceable ||
		      s->free_count + s->promised_in_flush >= s->promised);
	BASALT_ASSERT(s->j_appended - s->j_trimmed <= s->L.journal_size); /* 4 */
	BASALT_ASSERT(s->j_tail_seq <= s->j_seq);			   /* 4 */
	store_crc_check(s); /* 8 */
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
	u->crc_cache_hits = s->crcs.hits;
	u->crc_entry_reads = s->crcs.loads;
}

static void store_obj_info(const struct store *s, const struct store_view *v,
			   struct store_object_info *info)
{
	uint8_t bm[STORE_MAX_CHUNKS / 8] = { 0 };
	if (v->block != STORE_NO_BLOCK)
		memcpy(bm, v->bitmap, s->rec_bitmap);
	for (const struct store_overlay *ov = v->hot ? v->hot->overlays : NULL; ov; ov = ov->next)
		for (uint32_t c = ov->first_chunk; c < ov->first_chunk + ov->nchunks; c++)
			store_bit_set(bm, c);
	uint64_t chunks = 0;
	for (uint32_t c = 0; c < s->L.chunks_per_block; c++)
		chunks += store_bit_test(bm, c);
	info->oid = v->oid;
	info->version = v->version;
	info->written_bytes = chunks * STORE_CHUNK;
	info->has_block = v->block != STORE_NO_BLOCK;
}

/* OID's state, or false when it has no record. */
static bool store_find_view(struct store *s, const struct object_id *oid, struct store_view *v)
{
	uint32_t i = store_rec_find(s, oid);
	if (i)
		store_view(s, i, v);
	return i != 0;
}

int store_object_locate(struct store *s, const struct object_id *oid, uint64_t *offset)
{
	struct store_view v;
	if (!store_find_view(s, oid, &v) || !v.exists || v.block == STORE_NO_BLOCK)
		return -ENOENT;
	*offset = store_block_offset(s, v.block);
	return 0;
}

int store_stat(struct store *s, const struct object_id *oid,
	       struct store_object_info *out)
{
	struct store_view v;
	if (!store_find_view(s, oid, &v) || !v.exists)
		return -ENOENT;
	store_obj_info(s, &v, out);
	return 0;
}

struct list_visit {
	const struct store_list_filter *f;
	int (*fn)(const struct store_object_info *info, void *arg);
	void *arg;
};

static int list_visit_one(struct store *s, uint32_t i, void *arg)
{
	const struct list_visit *w = arg;
	struct store_view v;
	store_view(s, i, &v);
	if (!v.exists || (!w->f->any_inode && v.oid.inode != w->f->inode))
		return 0;
	struct store_object_info info;
	store_obj_info(s, &v, &info);
	return w->fn(&info, w->arg);
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
	struct store_view v;
	if (!store_find_view(s, head, &v) || !v.exists || v.block == STORE_NO_BLOCK)
		return false;
	const struct store_obj *o = v.hot; /* a cold head is quiet and in its block */
	if (o && (o->next_deleted || o->overlays || o->redirects || o->deletes ||
		  o->big_pending || o->next_version != o->version ||
		  o->block_version != o->version))
		return false;
	struct object_id clone = *head;
	clone.snap = snap;
	if (!store_find_view(s, &clone, &v))
		return true;
	const struct store_obj *c = v.hot;
	return !v.exists && c && c->block == STORE_NO_BLOCK && !c->overlays && !c->redirects &&
	       !c->deletes && !c->big_pending;
}

void store_submit(struct store *s, struct store_req *req)
{
	if (req->op == STORE_OP_READ)
		store_read_submit(s, req);
	else
		store_write_submit(s, req);
}
