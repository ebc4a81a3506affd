/* The flush (checkpoint) cycle: writes journaled data in place, persists
 * metadata, then trims the journal. One cycle at a time:
 *
 *   DATA   snapshot H = the end of the last applied batch; for every object
 *          with overlays, write the newest data of each chunk into its
 *          block (allocating one for objects that have none), never two
 *          overlapping writes at once
 *   META   write the current entry of every dirty block to its older slot
 *   SYNC   fdatasync
 *   TRIM   superblock: journal tail = H (alternate slot), fdatasync; the
 *          journal space before H is free again
 *
 * An object whose block's CRCs are not in RAM (invariant 8) has the
 * block's newest metadata entry read during DATA, beside the data writes
 * (they touch different places): the entry META writes must carry the
 * CRCs of the chunks the flush did not rewrite. An entry that cannot be
 * read or is not the object's fails the flush, and so the store: the
 * entry for that block could not be written true.
 *
 * Invariant 5 of store_int.h holds because every overlay present at the
 * snapshot is from a batch before H and is in place after DATA, and every
 * entry dirtied by those batches is written in META. Replay re-applies all
 * records after the tail in order, so a crash anywhere in the cycle leaves
 * state that replay completes (see docs/ARCHITECTURE.md). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/log.h"
#include "store_int.h"

enum flush_phase { FLUSH_DATA, FLUSH_META, FLUSH_SYNC, FLUSH_SB };

struct flush_item {
	struct store_obj *obj;
	uint64_t block;
	uint64_t version; /* newest overlay flushed */
	uint32_t layout_gen;
	bool new_block;
	bool promised; /* the new block is the object's promised one */
	/* The block's entry, read into load_buf + load * entry_size
	 * (-1: none), with the seq it had. */
	int64_t load;
	uint32_t load_seq;
	int load_res;
};

struct flush_write {
	struct io_op op;
	struct store_flush *f;
	uint8_t *buf;
	size_t len;
	uint64_t off;
	struct flush_item *load; /* a read of this item's entry, not a write */
};

struct flush_meta {
	uint64_t block;
	uint32_t seq;
	bool slot_b;
};

struct store_flush {
	struct store *s;
	enum flush_phase phase;
	uint64_t h_pos, h_appended, h_seq;
	struct flush_item *items;
	size_t nitems;
	struct flush_write *writes;
	size_t nwrites, cap_writes, next_write, inflight;
	struct flush_meta *meta;
	size_t nmeta;
	uint8_t *meta_buf;
	uint8_t *load_buf;
	size_t nloads;
	bool incomplete;
	int error;
	struct io_op sync_op;
};

static void flush_next_phase(struct store_flush *f);

static void flush_sync_done(struct io_op *op, int res)
{
	struct store_flush *f = op->ctx;
	f->inflight--;
	if (res < 0 && !f->error) {
		LOG_ERROR("store flush: fdatasync of the device failed: %s", strerror(-res));
		f->error = res;
	}
	flush_next_phase(f);
}

/* --- writes, at most STORE_FLUSH_IO_MAX in flight -------------------------- */

static void flush_write_done(struct io_op *op, int res)
{
	struct flush_write *w = op->ctx;
	struct store_flush *f = w->f;
	f->inflight--;
	if (w->load)
		w->load->load_res = res; /* judged in flush_data_done */
	else if ((res < 0 || (size_t)res != w->len) && !f->error) {
		/* The first failure says which write: the store stops here. */
		const char *what = f->phase == FLUSH_DATA ? "data" : "metadata";
		if (res < 0)
			LOG_ERROR("store flush: %s write of %zu bytes at offset %llu failed: %s", what,
				  w->len, (unsigned long long)w->off, strerror(-res));
		else
			LOG_ERROR("store flush: %s write of %zu bytes at offset %llu was short (%d bytes)",
				  what, w->len, (unsigned long long)w->off, res);
		f->error = res < 0 ? res : -EIO;
	}
	flush_next_phase(f);
}

static bool flush_issue(struct store_flush *f)
{
	struct store *s = f->s;
	while (f->next_write < f->nwrites && f->inflight < STORE_FLUSH_IO_MAX) {
		struct flush_write *w = &f->writes[f->next_write++];
		w->f = f;
		w->op.ctx = w;
		w->op.done = flush_write_done;
		f->inflight++;
		if (w->load)
			io_read(s->loop, &w->op, s->fd, w->buf, w->len, w->off);
		else /* overlay data lives in the registered journal mirror */
			io_write_fixed(s->loop, &w->op, s->fd, w->buf, w->len, w->off,
				       s->mirror_index);
	}
	return f->next_write == f->nwrites && f->inflight == 0;
}

static int flush_add_write(struct store_flush *f, uint8_t *buf, size_t len,
			   uint64_t off)
{
	if (f->nwrites == f->cap_writes) {
		size_t cap = f->cap_writes ? 2 * f->cap_writes : 256;
		struct flush_write *w = realloc(f->writes, cap * sizeof(*w));
		if (!w)
			return -ENOMEM;
		f->writes = w;
		f->cap_writes = cap;
	}
	struct flush_write *w = &f->writes[f->nwrites++];
	memset(w, 0, sizeof(*w));
	w->buf = buf;
	w->len = len;
	w->off = off;
	return 0;
}

/* --- DATA ----------------------------------------------------------------------- */

/* The newest overlay no newer than MAX_VERSION covering chunk C, or NULL. */
static struct store_overlay *flush_source(struct store_obj *o, uint32_t c,
					  uint64_t max_version)
{
	for (struct store_overlay *ov = o->overlays; ov; ov = ov->next)
		if (ov->version <= max_version && c >= ov->first_chunk &&
		    c < ov->first_chunk + ov->nchunks)
			return ov;
	return NULL;
}

/* One write per run of chunks whose newest data is contiguous in one
 * overlay: no two writes of the cycle overlap. */
static int flush_plan_item(struct store_flush *f, struct flush_item *it)
{
	struct store *s = f->s;
	uint32_t n = s->L.chunks_per_block;
	uint64_t base = store_block_offset(s, it->block);
	for (uint32_t c = 0; c < n;) {
		struct store_overlay *ov = flush_source(it->obj, c, it->version);
		if (!ov) {
			c++;
			continue;
		}
		uint32_t start = c;
		while (c + 1 < n && c + 1 < ov->first_chunk + ov->nchunks &&
		       flush_source(it->obj, c + 1, it->version) == ov)
			c++;
		c++;
		int rc = flush_add_write(f,
					 ov->data + (start - ov->first_chunk) * STORE_CHUNK,
					 (size_t)(c - start) * STORE_CHUNK,
					 base + (uint64_t)start * STORE_CHUNK);
		if (rc)
			return rc;
	}
	return 0;
}

static int flush_plan_data(struct store_flush *f)
{
	struct store *s = f->s;
	size_t count = 0, loads = 0;
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &s->flush_list) {
		struct store_obj *o = list_entry(pos, struct store_obj, flush_node);
		count++;
		loads += o->block != STORE_NO_BLOCK && !o->crc_valid;
	}
	f->items = calloc(count ? count : 1, sizeof(*f->items));
	if (!f->items || posix_memalign((void **)&f->load_buf, STORE_CHUNK,
					(loads ? loads : 1) * s->L.entry_size))
		return -ENOMEM;
	list_for_each_safe(pos, tmp, &s->flush_list) {
		struct store_obj *o = list_entry(pos, struct store_obj, flush_node);
		struct flush_item *it = &f->items[f->nitems];
		it->obj = o;
		it->load = -1;
		it->layout_gen = o->layout_gen;
		it->version = o->overlays->version;
		if (o->block == STORE_NO_BLOCK) {
			/* A promised block is always there (invariant 6), but
			 * for a store older code over-committed. */
			if ((!o->promised && store_blocks_available(s) == 0) ||
			    store_block_alloc(s, &it->block)) {
				BASALT_ASSERT(s->report.unplaceable);
				f->incomplete = true; /* the journal keeps it */
				continue;
			}
			it->new_block = true;
			it->promised = o->promised;
			s->promised_in_flush += it->promised;
		} else {
			it->block = o->block;
			if (!o->crc_valid) {
				const struct store_block *blk = &s->blocks[it->block];
				it->load = (int64_t)f->nloads++;
				it->load_seq = blk->seq;
				int rc = flush_add_write(f, f->load_buf + it->load * s->L.entry_size,
							 s->L.entry_size,
							 store_entry_offset(s, it->block,
									    blk->flags & STORE_BLOCK_SLOT_B));
				if (rc)
					return rc;
				f->writes[f->nwrites - 1].load = it;
			}
		}
		f->nitems++;
		o->refs++;
		o->block_gen++; /* reads in flight on this block start over */
		store_block_ref(s, it->block);
		int rc = flush_plan_item(f, it);
		if (rc)
			return rc;
	}
	return 0;
}

/* The data is in place: the blocks now hold what the overlays held. */
static void flush_data_done(struct store_flush *f)
{
	struct store *s = f->s;
	for (size_t i = 0; i < f->nitems; i++) {
		struct flush_item *it = &f->items[i];
		struct store_obj *o = it->obj;
		if (f->error || o->layout_gen != it->layout_gen) {
			/* Redirected or deleted meanwhile (or failed): the
			 * overlays we wrote are superseded. */
			if (it->new_block)
				store_block_release(s, it->block);
			store_block_unref(s, it->block);
			s->promised_in_flush -= it->promised;
			store_promise_settle(s, o);
			it->obj = NULL;
			store_obj_put(s, o);
			continue;
		}
		if (it->new_block) {
			o->block = it->block;
			store_block_set_owner(s, it->block, o);
			s->promised_in_flush -= it->promised;
			store_promise_settle(s, o);
			memset(o->crc, 0, 4ull * s->L.chunks_per_block);
			o->crc_valid = true;
		} else {
			if (!o->crc_valid) {
				int rc = store_entry_adopt(s, o, it->block, it->load_seq,
							   f->load_buf + it->load * s->L.entry_size,
							   it->load_res);
				if (rc) {
					f->error = rc;
					store_block_unref(s, it->block);
					continue; /* put with the rest when the flush stops */
				}
			}
			store_block_mark_dirty(s, it->block);
		}
		/* Overlays newer than the plan were not written now. */
		for (uint32_t c = 0; c < s->L.chunks_per_block; c++) {
			struct store_overlay *ov = flush_source(o, c, it->version);
			if (!ov)
				continue;
			store_bit_set(o->bitmap, c);
			o->crc[c] = le_load32(ov->crcs + 4 * (c - ov->first_chunk));
		}
		if (it->version > o->block_version)
			o->block_version = it->version;
		o->block_gen++;
		store_pg_account(s, o);
		store_block_unref(s, it->block);
	}
}

/* --- META -------------------------------------------------------------------------- */

static int meta_cmp(const void *a, const void *b)
{
	const struct flush_meta *x = a, *y = b;
	if (x->slot_b != y->slot_b)
		return x->slot_b ? 1 : -1;
	return x->block < y->block ? -1 : x->block > y->block;
}

static void flush_encode_entry(struct store *s, uint64_t b, uint32_t seq,
			       uint8_t *buf)
{
	struct store_entry e;
	uint32_t owner = s->blocks[b].owner;
	/* Invariant 8: a dirty entry's owner is hot with its CRCs. */
	struct store_obj *o = owner ? s->hot_tab[store_rec(s, owner)->hot] : NULL;
	BASALT_ASSERT(!owner || (store_rec(s, owner)->hot && o->crc_valid));
	memset(&e, 0, sizeof(e));
	e.seq = seq;
	e.block = b;
	if (o) {
		e.used = true;
		e.oid = o->oid;
		e.version = o->block_version;
		memcpy(e.bitmap, o->bitmap, sizeof(e.bitmap));
		memcpy(e.crc, o->crc, s->L.chunks_per_block * sizeof(uint32_t));
	}
	store_entry_encode(&e, s->L.chunks_per_block, buf, s->L.entry_size);
}

/* Encodes every dirty block's entry into its older slot; adjacent entries
 * of one slot become one write. */
static int flush_plan_meta(struct store_flush *f)
{
	struct store *s = f->s;
	size_t n = s->dirty_count;
	f->meta = calloc(n ? n : 1, sizeof(*f->meta));
	if (!f->meta || posix_memalign((void **)&f->meta_buf, STORE_CHUNK,
				       (n ? n : 1) * s->L.entry_size))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		uint64_t b = s->dirty[i];
		struct store_block *blk = &s->blocks[b];
		blk->flags &= (uint8_t)~STORE_BLOCK_DIRTY;
		blk->flags |= STORE_BLOCK_META_WRITING;
		f->meta[i] = (struct flush_meta){ b, blk->seq + 1,
						  !(blk->flags & STORE_BLOCK_SLOT_B) };
	}
	s->dirty_count = 0;
	f->nmeta = n;
	qsort(f->meta, n, sizeof(*f->meta), meta_cmp);
	f->nwrites = f->next_write = 0;
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j + 1 < n && f->meta[j + 1].slot_b == f->meta[i].slot_b &&
		       f->meta[j + 1].block == f->meta[j].block + 1)
			j++;
		for (size_t k = i; k <= j; k++)
			flush_encode_entry(s, f->meta[k].block, f->meta[k].seq,
					   f->meta_buf + k * s->L.entry_size);
		int rc = flush_add_write(f, f->meta_buf + i * s->L.entry_size,
					 (j - i + 1) * s->L.entry_size,
					 store_entry_offset(s, f->meta[i].block,
							    f->meta[i].slot_b));
		if (rc)
			return rc;
		i = j + 1;
	}
	return 0;
}

/* --- the cycle ---------------------------------------------------------------------- */

static void flush_free(struct store_flush *f)
{
	free(f->items);
	free(f->writes);
	free(f->meta);
	free(f->meta_buf);
	free(f->load_buf);
	free(f);
}

static bool store_quiet(const struct store *s)
{
	return list_empty(&s->flush_list) && s->dirty_count == 0 &&
	       s->j_appended == s->j_trimmed && !s->batch_inflight &&
	       list_empty(&s->jqueue);
}

static void flush_end(struct store_flush *f)
{
	struct store *s = f->s;
	bool incomplete = f->incomplete;
	if (f->error)
		store_fail(s, "flush", f->error);
	s->flush = NULL;
	flush_free(f);
	store_crash_point("flush-ended");
	/* A checkpoint is done when everything is in place — or as far as
	 * it can go: on a failed store, or one an older version left with
	 * journaled data it has no block for (open reports it). */
	if (!list_empty(&s->checkpoint_waiters) &&
	    (store_quiet(s) || s->failed || incomplete)) {
		struct list_node *pos, *tmp;
		list_for_each_safe(pos, tmp, &s->checkpoint_waiters) {
			struct store_checkpoint_waiter *w =
				list_entry(pos, struct store_checkpoint_waiter, node);
			list_del(pos);
			w->done(w->arg);
			free(w);
		}
	}
	bool again = s->flush_again || !list_empty(&s->checkpoint_waiters);
	s->flush_again = false;
	if (s->journal_stalled)
		store_journal_kick(s);
	if (!incomplete && s->report.unplaceable &&
	    s->promised <= s->free_count + s->promised_in_flush)
		s->report.unplaceable = 0; /* deletes made room: whole again */
	if (incomplete) {
		/* Nothing more fits until a block is freed (which clears
		 * this) or a second has passed: no spinning meanwhile. */
		s->flush_stuck = true;
		if (!s->failed && !io_timer_armed(&s->flush_timer))
			io_timer_arm(s->loop, &s->flush_timer, IO_SEC(1));
	} else if (again && !s->failed) {
		store_flush_start(s);
	} else {
		store_flush_maybe(s);
	}
}

/* After SYNC: entries are durable, overlays are in place. */
static void flush_commit(struct store_flush *f)
{
	struct store *s = f->s;
	for (size_t i = 0; i < f->nmeta; i++) {
		struct store_block *blk = &s->blocks[f->meta[i].block];
		blk->seq = f->meta[i].seq;
		blk->flags &= (uint8_t)~STORE_BLOCK_META_WRITING;
		if (f->meta[i].slot_b)
			blk->flags |= STORE_BLOCK_SLOT_B;
		else
			blk->flags &= (uint8_t)~STORE_BLOCK_SLOT_B;
	}
	/* Owners whose only reason to stay hot was this entry cool now. */
	for (size_t i = 0; i < f->nmeta; i++) {
		uint32_t owner = s->blocks[f->meta[i].block].owner;
		uint32_t hot = owner ? store_rec(s, owner)->hot : 0;
		if (hot)
			store_obj_maybe_free(s, s->hot_tab[hot]);
	}
	for (size_t i = 0; i < f->nitems; i++) {
		struct store_obj *o = f->items[i].obj;
		if (!o)
			continue;
		if (o->layout_gen == f->items[i].layout_gen)
			store_overlays_drop(s, o, f->items[i].version);
		store_obj_put(s, o);
	}
	f->nitems = 0;
}

static void flush_sb_done(struct store *s, int res)
{
	struct store_flush *f = s->flush;
	if (res < 0) {
		f->error = res;
	} else {
		s->j_trimmed = f->h_appended;
		s->j_tail = f->h_pos;
		s->j_tail_seq = f->h_seq;
		s->stats.flushes++;
	}
	flush_end(f);
}

static void flush_next_phase(struct store_flush *f)
{
	struct store *s = f->s;
	switch (f->phase) {
	case FLUSH_DATA:
		if (!flush_issue(f))
			return;
		store_crash_point("flush-data-written");
		flush_data_done(f);
		if (f->error)
			break;
		f->phase = FLUSH_META;
		f->error = flush_plan_meta(f);
		if (f->error)
			break;
		flush_next_phase(f);
		return;
	case FLUSH_META:
		if (!flush_issue(f))
			return;
		store_crash_point("flush-meta-written");
		if (f->error)
			break;
		f->phase = FLUSH_SYNC;
		f->sync_op.ctx = f;
		f->sync_op.done = flush_sync_done;
		f->inflight++;
		f->nwrites = f->next_write = 0;
		io_fsync(s->loop, &f->sync_op, s->fd, true);
		return;
	case FLUSH_SYNC:
		if (f->inflight)
			return;
		if (f->error)
			break;
		store_crash_point("flush-synced");
		flush_commit(f);
		if (f->incomplete) {
			flush_end(f);
			return;
		}
		f->phase = FLUSH_SB;
		s->sb.journal_tail = f->h_pos;
		s->sb.journal_seq = f->h_seq;
		store_write_sb(s, flush_sb_done);
		return;
	case FLUSH_SB:
		return;
	}
	/* An error: stop here; the store refuses further writes. */
	for (size_t i = 0; i < f->nitems; i++) {
		if (f->items[i].obj)
			store_obj_put(s, f->items[i].obj);
	}
	f->nitems = 0;
	flush_end(f);
}

void store_flush_forget(struct store *s)
{
	flush_free(s->flush);
	s->flush = NULL;
}

void store_flush_start(struct store *s)
{
	if (s->flush) {
		s->flush_again = true;
		return;
	}
	if (s->p.read_only || s->failed || s->flush_stuck)
		return;
	io_timer_disarm(s->loop, &s->flush_timer);
	struct store_flush *f = calloc(1, sizeof(*f));
	if (!f) {
		store_fail(s, "flush", -ENOMEM);
		return;
	}
	f->s = s;
	f->phase = FLUSH_DATA;
	f->h_pos = s->j_applied_pos;
	f->h_appended = s->j_applied_appended;
	f->h_seq = s->j_applied_seq;
	s->flush = f;
	f->error = flush_plan_data(f);
	store_crash_point("flush-started");
	flush_next_phase(f);
}

static void store_flush_fire(struct io_timer *t)
{
	struct store *s = t->ctx;
	s->flush_stuck = false;
	store_flush_start(s);
}

/* Flushes when the journal is a quarter full, else soon after the last
 * write (so an idle store drains its journal). */
void store_flush_maybe(struct store *s)
{
	if (s->flush || s->p.read_only || s->failed)
		return;
	uint64_t used = s->j_appended - s->j_trimmed;
	if (used > s->L.journal_size / 4 || s->journal_stalled) {
		store_flush_start(s);
		return;
	}
	if ((used || s->dirty_count) && !io_timer_armed(&s->flush_timer))
		io_timer_arm(s->loop, &s->flush_timer, IO_MS(200));
}

void store_flush_init(struct store *s)
{
	io_timer_init(&s->flush_timer, store_flush_fire, s);
}

void store_checkpoint(struct store *s, void (*done)(void *arg), void *arg)
{
	if (s->p.read_only || s->failed) {
		done(arg); /* nothing can be flushed */
		return;
	}
	struct store_checkpoint_waiter *w = calloc(1, sizeof(*w));
	BASALT_ASSERT(w != NULL);
	w->done = done;
	w->arg = arg;
	list_add_tail(&s->checkpoint_waiters, &w->node);
	store_flush_start(s);
}
