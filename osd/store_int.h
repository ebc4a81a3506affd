/* Structures private to osd/store*.c. The store in memory:
 *
 *   index    hash of object id -> a compact cold record per object in
 *            slabs, linked by uint32 indexes (struct store_rec: id,
 *            durable version, block, chunks written, PG list links); an
 *            object with anything going on also has a hot state (struct
 *            store_obj): versions assigned, generations, counters, the
 *            block's CRCs, and overlays: journaled small writes not yet
 *            flushed in place, newest first, whose data stays in the
 *            journal mirror in RAM.
 *   blocks   per data block (12 bytes): owner record, in-flight I/O
 *            count, metadata slot state, dirty flag. Free blocks sit in a
 *            bitmap allocator.
 *   crcs     the CRC cache (store_crc.c): idle objects' blocks' CRCs, in
 *            at most osd_crc_cache_size bytes; the rest are only in the
 *            blocks' metadata entries on the device.
 *   journal  a RAM mirror of the ring; batches are assembled in place at
 *            the head and written from there, and overlays point into it.
 *
 * Invariants (store_check):
 *  1. A block has at most one owner, and its owner's block is that block.
 *  2. A block is in the allocator iff it has no owner, no reservation and
 *     no I/O in flight.
 *  3. An object's overlays are newest first and all from batches not yet
 *     trimmed from the journal. (After a replay some may be older than
 *     block_version: they hold the same data as the block there.)
 *  4. journal used bytes = appended - trimmed <= journal size.
 *  5. The journal tail advances only after every overlay from batches
 *     before it is in place and every metadata entry dirtied before it is
 *     durable (store_flush.c).
 *  6. Space is promised before it is used: an object with overlays and no
 *     block holds a promise of one block (promised), as does every
 *     accepted write that will need a fresh block (a redirect, a small
 *     write into an object that may have no block when it applies), and
 *     free blocks (those a flush took for a promise included) always
 *     cover the promises. So every accepted write can be placed and every
 *     flush can finish: a write that would need a block beyond that is
 *     refused up front with -ENOSPC (store_admit), never stuck in the
 *     journal. (A store written by an older version may break this; open
 *     says so and fsck calls it not clean.)
 *  7. Every record is on the list of its pool's PG (store_pg.c), and each
 *     PG's counts (live objects, written chunks) are the sum of what its
 *     objects count for; objects_live and objects_with_block likewise.
 *  8. CRCs: a block's CRCs are in RAM in its owner's hot state (crc_valid)
 *     whenever its metadata entry is dirty or being written (so every
 *     entry is encoded from RAM, and a read never needs an entry that is
 *     not durable); the cache holds CRCs only for blocks whose owners are
 *     cold, always those of the newest durable entry (an object turning
 *     hot takes them out; one cooling puts them back).
 *  9. A cold object exists, has a block, its durable version is its
 *     block's, and nothing is pending on it; any object that does not
 *     fit that has a hot state, and a hot state is freed once it fits
 *     (store_obj_maybe_free).
 */
#ifndef BASALT_OSD_STORE_INT_H
#define BASALT_OSD_STORE_INT_H

#include "common/list.h"
#include "store.h"
#include "store_format.h"

#define STORE_NO_BLOCK UINT64_MAX
#define STORE_BATCH_HEADER_MAX (64u << 10)
#define STORE_FLUSH_IO_MAX 128
#define STORE_READ_RETRIES 8
#define STORE_CRC_CACHE_DEFAULT (64ull << 20)

struct store_overlay {
	struct store_overlay *next; /* older */
	uint64_t version;
	uint64_t seq; /* batch */
	uint32_t first_chunk, nchunks;
	uint8_t *data;	      /* in the journal mirror */
	const uint8_t *crcs;  /* in the journal mirror (the record) */
};

/* An object's cold record, in slabs indexed by uint32 (index 0 is never
 * used: 0 means none in every link). Its fields are the truth while the
 * object is cold (hot == 0); while it is hot they are stale and its
 * struct store_obj holds the truth. A cold object exists and has a
 * block; its durable version is its block's. */
struct store_rec {
	uint64_t inode;
	uint64_t index_snap; /* packed as on disk (common/object.h) */
	uint64_t version;
	uint32_t pool;	    /* with the shard, packed as on disk (common/object.h) */
	uint32_t block;	    /* STORE_REC_NONE while hot and blockless */
	uint32_t hash_next; /* record index, 0: end of chain (free: next free) */
	uint32_t hot;	    /* index in the hot table, 0: cold; STORE_REC_NONE: free */
	uint32_t pg_next, pg_prev; /* its PG's list (invariant 7), 0: end */
	uint8_t bitmap[];   /* rec_bitmap bytes: chunks ever written */
};
#define STORE_REC_NONE UINT32_MAX
#define STORE_SLAB_SHIFT 16

/* An object's hot state: allocated while it has requests, journaled
 * overlays, promises, waiters, a flush or a dirty or in-flight metadata
 * entry; freed (its fields written back to the record, its CRCs to the
 * cache) when it is quiet again (store_obj_maybe_free). */
struct store_obj {
	uint32_t rec;	 /* its record */
	uint32_t hot_idx;
	struct object_id oid;
	uint64_t version;      /* durable */
	uint64_t next_version; /* of the last operation assigned, pending included */
	/* The last operation assigned is a delete (or there is no object and
	 * nothing pending): the next write starts a new incarnation, which may
	 * carry any version (replication rolls a replica back this way). */
	bool next_deleted;
	uint64_t block;	       /* STORE_NO_BLOCK when none */
	uint64_t block_version;
	uint32_t layout_gen; /* bumped when the block changes (redirect, delete) */
	uint32_t block_gen;  /* bumped when in-place writes go to the block */
	bool exists;
	bool on_flush_list;
	bool promised;	      /* holds a promise of a block (invariant 6) */
	/* crc[] holds the block's CRCs (else they are in its metadata
	 * entry on the device: invariant 8). */
	bool crc_valid;
	unsigned redirects;   /* whole-block writes accepted, not yet applied */
	unsigned deletes;     /* deletes accepted, not yet applied */
	unsigned refs;	      /* requests and flushes holding the object */
	unsigned big_pending; /* a clone's load of its head's CRCs in flight */
	struct list_node waiters;
	struct list_node flush_node;
	struct store_overlay *overlays;
	/* What the PG counts hold of it (invariant 7); a cold object's
	 * follow from its record: it exists, has a block, its chunks. */
	bool acct_exists, acct_block; /* counted in objects_live, _with_block */
	bool acct_live;		  /* counted as live in its PG */
	uint16_t acct_chunks;	  /* written chunks counted in its PG */
	uint8_t bitmap[STORE_MAX_CHUNKS / 8];
	uint32_t crc[]; /* chunks_per_block */
};

/* The CRCs of blocks whose owners are cold (invariant 8), bounded
 * (osd_crc_cache_size):
 * a clock over slots, each a block's chunks_per_block CRCs. */
struct store_crc_cache {
	uint32_t cap, used, hand, free_head;
	uint32_t mask;
	uint32_t *bucket; /* slot + 1 */
	uint32_t *key;	  /* block + 1, 0: free */
	uint32_t *next;	  /* slot + 1 */
	uint8_t *ref;
	uint32_t *crc;
	uint64_t hits, misses, loads;
};

enum store_block_flag {
	STORE_BLOCK_DIRTY = 1,	   /* metadata entry differs from memory */
	STORE_BLOCK_SLOT_B = 2,	   /* the newest durable entry is in slot B */
	STORE_BLOCK_RESERVED = 4,  /* allocated, owner not yet durable */
	STORE_BLOCK_FREE_LATER = 8, /* free once its I/O drains */
	STORE_BLOCK_META_WRITING = 16 /* a flush is writing its entry */
};

struct store_block {
	uint32_t owner; /* record index, 0: none */
	uint32_t seq;	/* of the newest durable entry */
	uint16_t refs;
	uint8_t flags;
};

struct store_stats {
	uint64_t csum_errors, read_errors;
	uint64_t batches, records, flushes, read_retries;
	/* Objects listings visited, and objects sorted onto PG lists when a
	 * pool's pg_num became known: tests check that beacons and reads
	 * cost neither. */
	uint64_t list_visited, pg_sorted;
};

/* One placement group's objects (invariant 7): records linked by
 * pg_next and pg_prev. */
struct store_pg_index {
	uint32_t first, last;
	uint64_t objects_live; /* existing objects */
	uint64_t chunks;       /* their written 4 KiB chunks */
};

/* A pool's PG lists: pg_num of them, or one while pg_num is 0. */
struct store_pool_index {
	uint32_t pool, pg_num;
	struct store_pg_index *pgs;
};

struct store_waiter {
	void (*fn)(void *arg);
	void *arg;
};

struct store {
	struct io_loop *loop;
	int fd;
	struct store_params p;
	struct store_sb sb;
	struct store_layout L;
	bool failed;	 /* a device write failed: no more writes */
	bool replaying;	 /* open: the allocator is built after replay */
	bool journal_stalled; /* the next batch waits for journal space */
	struct list_node done_list; /* early completions, run from a timer */
	struct io_timer done_timer;

	/* index: records in slabs, chained from buckets; hot states */
	uint32_t *buckets;
	uint64_t bucket_mask;
	uint64_t objects;
	size_t obj_size;
	uint8_t **slabs;
	uint32_t nslabs, rec_size, rec_bitmap;
	uint32_t rec_count; /* records ever made (index 0 included) */
	uint32_t rec_free;  /* free list */
	struct store_obj **hot_tab;
	uint32_t hot_cap, hot_count, hot_free;
	struct store_crc_cache crcs;
	uint64_t objects_live, objects_with_block; /* invariant 7 */
	struct store_pool_index *pools; /* per pool PG lists (store_pg.c) */
	uint32_t n_pools, pool_last;

	/* blocks and allocator */
	struct store_block *blocks;
	uint64_t *free_bits;
	uint64_t free_count, alloc_cursor;
	/* Invariant 6: blocks promised to objects and accepted writes; blocks
	 * a running flush allocated for promised objects (still counted in
	 * promised until the flush settles them); blocks held back for
	 * writes with store_req.reserve (a PG's own records). */
	uint64_t promised, promised_in_flush, reserve_blocks;
	uint32_t *dirty;
	uint64_t dirty_count;

	/* journal */
	uint8_t *mirror;
	int mirror_index; /* registered buffer index, or -1 */
	uint64_t j_head;      /* offset of the next batch */
	uint64_t j_tail;      /* offset of the oldest batch still needed */
	uint64_t j_tail_seq;  /* and its seq */
	uint64_t j_appended;  /* bytes ever appended (batches + wrap waste) */
	uint64_t j_trimmed;   /* bytes ever released */
	uint64_t j_seq;	      /* seq of the next batch */
	uint64_t j_epoch;
	/* The end of the last batch applied: where a trim may move to. */
	uint64_t j_applied_pos, j_applied_appended, j_applied_seq;
	struct list_node jqueue;   /* requests for the next batch */
	struct list_node jbatch;   /* requests in the batch in flight */
	bool batch_inflight;
	uint64_t batch_pos, batch_space, batch_seq;
	struct io_op batch_io, wrap_io, batch_sync_io;
	unsigned batch_ios; /* writes (wrap, batch) and fsync of the batch in flight */
	unsigned batch_data_pending; /* its redirects' data writes in flight */
	bool batch_sync_sent;	     /* its fsync was submitted */
	int batch_error;
	struct io_timer sync_timer; /* batch mode */
	bool sync_inflight, sync_wanted;
	struct io_op sync_io;

	/* overlays pool */
	struct store_overlay *overlay_pool;
	struct store_overlay *overlay_free;

	/* flush */
	struct list_node flush_list; /* objects with overlays */
	struct io_timer flush_timer;
	struct store_flush *flush;   /* the cycle running, or NULL */
	bool flush_again;
	/* The last cycle left journaled data it had no block for (a store
	 * older code over-committed): the next waits for a freed block or
	 * the flush timer. */
	bool flush_stuck;
	struct list_node checkpoint_waiters;

	uint8_t *sb_buf;
	struct io_op sb_io;
	bool sb_synced;
	void (*sb_done)(struct store *s, int res);
	struct store_stats stats;
	struct store_open_report report;
};

struct store_checkpoint_waiter {
	struct list_node node;
	void (*done)(void *arg);
	void *arg;
};

/* store_pg.c: per-PG lists and counts (invariant 7) */
/* Puts a new record on its PG's list. 0 or -ENOMEM. */
int store_pg_link(struct store *s, uint32_t rec);
/* Takes a freed record off its list (it must count for nothing). */
void store_pg_unlink(struct store *s, uint32_t rec);
/* Counts (ADD) or uncounts a cold record (open loads them so). */
void store_pg_cold(struct store *s, uint32_t rec, bool add);
/* What a cold record counts as, for its hot state made from it. */
void store_pg_acct_init(const struct store *s, uint32_t rec, struct store_obj *o);
/* Brings O's PG counts up to date after its existence, block or
 * overlays changed. */
void store_pg_account(struct store *s, struct store_obj *o);
uint32_t store_obj_written_chunks(const struct store *s, const struct store_obj *o);
/* Calls VISIT for each object (live or not) on F's lists: one PG's when
 * F names one, else all of F's pool. */
int store_pg_list(struct store *s, const struct store_list_filter *f,
		  int (*visit)(struct store *s, uint32_t rec, void *arg), void *arg);
void store_pg_check(const struct store *s);
void store_pg_free(struct store *s);

/* store.c: index, blocks, allocator */
static inline struct store_rec *store_rec(const struct store *s, uint32_t i)
{
	return (struct store_rec *)(s->slabs[i >> STORE_SLAB_SHIFT] +
				    (size_t)(i & ((1u << STORE_SLAB_SHIFT) - 1)) * s->rec_size);
}
void store_rec_oid(const struct store_rec *r, struct object_id *oid /* out */);
/* The record of OID, or 0. */
uint32_t store_rec_find(struct store *s, const struct object_id *oid);
/* A new cold record for OID (not yet in the index with that id), or 0. */
uint32_t store_rec_new(struct store *s, const struct object_id *oid);
/* An object's state wherever it is: the hot state when there is one. */
struct store_view {
	struct object_id oid;
	uint64_t version;
	uint64_t block; /* STORE_NO_BLOCK when none */
	const uint8_t *bitmap;
	bool exists;
	struct store_obj *hot;
};
void store_view(const struct store *s, uint32_t rec, struct store_view *v /* out */);
/* Calls FN for every record in use; FN returns non-zero to stop. */
int store_rec_each(struct store *s, int (*fn)(struct store *s, uint32_t rec, void *arg),
		   void *arg);
/* The hot state of record I (made if needed), with a reference. */
struct store_obj *store_obj_get_rec(struct store *s, uint32_t i);
struct store_obj *store_obj_get(struct store *s, const struct object_id *oid);
void store_obj_put(struct store *s, struct store_obj *o);
void store_obj_maybe_free(struct store *s, struct store_obj *o);
int store_block_alloc(struct store *s, uint64_t *block /* out */);
/* Blocks a new write may be promised: free ones not yet promised. */
uint64_t store_blocks_available(const struct store *s);
/* Invariant 6 for O after its overlays or block changed: takes or gives
 * back the object's promise. */
void store_promise_settle(struct store *s, struct store_obj *o);
void store_block_ref(struct store *s, uint64_t block);
void store_block_unref(struct store *s, uint64_t block);
void store_block_release(struct store *s, uint64_t block);
void store_block_mark_dirty(struct store *s, uint64_t block);
void store_block_set_owner(struct store *s, uint64_t block, struct store_obj *o);
uint64_t store_block_offset(const struct store *s, uint64_t block);
uint64_t store_entry_offset(const struct store *s, uint64_t block, bool slot_b);
void store_overlays_drop(struct store *s, struct store_obj *o,
			 uint64_t up_to_version);
struct store_overlay *store_overlay_new(struct store *s);
void store_flush_list_update(struct store *s, struct store_obj *o);
void store_check(struct store *s);
/* store_crc.c: the CRC cache (invariant 8) */
int store_crc_init(struct store *s, uint64_t bytes);
void store_crc_free(struct store *s);
/* Copies BLOCK's CRCs to OUT and forgets them: true when cached. */
bool store_crc_take(struct store *s, uint64_t block, uint32_t *out);
/* Caches BLOCK's CRCs (evicting another's when full, unless NO_EVICT). */
void store_crc_put(struct store *s, uint64_t block, const uint32_t *crc, bool no_evict);
void store_crc_drop(struct store *s, uint64_t block);
void store_crc_check(const struct store *s);
/* Reads a decoded entry E for object O's block against what O says it
 * holds (newest slot, seq SEQ): 0 with O's CRCs loaded, or -EBADMSG
 * (logged and counted). */
int store_entry_adopt(struct store *s, struct store_obj *o, uint64_t block, uint32_t seq,
		      const uint8_t *buf, int read_res);
/* Marks the store failed after a device error; later writes get -EROFS. */
void store_fail(struct store *s, const char *what, int err);
bool store_crash_point(const char *name);

/* store_journal.c: the write path */
void store_journal_init(struct store *s);
void store_write_submit(struct store *s, struct store_req *req);
void store_journal_kick(struct store *s);
int store_apply_record(struct store *s, const struct store_record *r,
		       uint8_t *data, uint64_t seq);
/* Completes REQ with RES from the loop soon (never inline). */
void store_complete_later(struct store *s, struct store_req *req, int res);
bool store_req_is_big(const struct store *s, const struct store_req *req);
uint64_t store_journal_free(const struct store *s);

/* store_read.c */
void store_read_submit(struct store *s, struct store_req *req);

/* store_flush.c */
void store_flush_init(struct store *s);
void store_flush_forget(struct store *s);
void store_flush_start(struct store *s);
void store_flush_maybe(struct store *s);

/* store_open.c */
int store_read_sync(struct store *s, void *buf, size_t len, uint64_t off);
void store_write_sb(struct store *s, void (*done)(struct store *, int));

#endif
