/* The OSD object store: objects of up to block_size bytes on a raw device
 * or a preallocated file, through io_uring with O_DIRECT.
 *
 * - Small writes (any 4 KiB-aligned range short of a whole block) go to a
 *   journal ring with their data and are acknowledged once durable; a
 *   background flush later writes them in place.
 * - Whole-block writes are redirected to a fresh block; one small journal
 *   record points the object at it, and the old block is free the moment
 *   that record is durable (immediate GC). Deletes likewise.
 * - Every 4 KiB of data carries a CRC32C, verified on every read; a
 *   mismatch fails that read with -EIO and is counted.
 * - Many writes share one journal write and one flush (group commit).
 * - After a crash, open replays the journal; torn batches are detected by
 *   checksum and discarded; nothing acknowledged is lost.
 *
 * One store belongs to one event loop (one thread); every call is made on
 * that thread and every completion runs there. */
#ifndef BASALT_OSD_STORE_H
#define BASALT_OSD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/io/loop.h"
#include "common/list.h"
#include "common/object.h"

struct store;

enum store_sync_mode {
	STORE_SYNC_ALWAYS, /* acknowledge after the journal flush (default) */
	STORE_SYNC_BATCH,  /* acknowledge after the journal write; flush at
			    * most sync_interval later: a power loss may
			    * lose that window, a process crash loses nothing */
};

struct store_mkfs_params {
	uint64_t size;		/* bytes; 0 = the existing file or device */
	uint32_t block_size;	/* 0 = 128 KiB */
	uint64_t journal_size;	/* 0 = 32 MiB (or 1/8 of a small device) */
	bool force;		/* format over an existing store or filesystem */
};

/* Formats PATH (a block device, or a regular file that is created and
 * fallocated if absent). Refuses, with -EEXIST, a device holding a Basalt
 * store or a recognisable filesystem unless FORCE. WHY (may be NULL) gets
 * a one-line reason on failure. */
int store_mkfs(struct io_loop *loop, const char *path,
	       const struct store_mkfs_params *params, char *why,
	       size_t why_len);

struct store_params {
	enum store_sync_mode sync;
	uint64_t sync_interval_ns; /* batch mode; default 5 ms */
	bool read_only;		   /* fsck and dump: no writes at all */
	bool direct;		   /* O_DIRECT; default true */
	/* Testing a disk that fails: reads of data blocks touching these
	 * device bytes fail with -EIO, as an unreadable sector would
	 * (osd_debug_bad_range = OFFSET+LENGTH; 0 length: none). */
	uint64_t bad_offset, bad_len;
	/* Bytes of RAM for the CRCs of blocks whose objects are idle
	 * (default 64 MiB; 0: none, every such read also reads the block's
	 * metadata entry). */
	uint64_t crc_cache_bytes;
};
void store_params_default(struct store_params *p /* out */);
struct cfg;
/* Reads the store's settings for SECTION ("osd.1"; falls back to [osd] and
 * [global]) on top of the defaults:
 *   osd_sync = always|batch        (default always)
 *   osd_sync_interval = 5ms        (batch mode: longest delay of a flush)
 *   osd_debug_bad_range = OFF+LEN  (testing: reads there fail with EIO)
 *   osd_crc_cache_size = 64M       (RAM for idle blocks' CRCs; 0 allowed)
 * 0, or -EINVAL with cfg_error() naming file, line and key. */
int store_params_from_config(struct cfg *cfg, const char *section,
			     struct store_params *p /* out */);

/* Opens the store on PATH, replays its journal and checkpoints, so it is
 * ready on return. WHY (may be NULL) gets a reason on failure. */
int store_open(struct io_loop *loop, const char *path,
	       const struct store_params *params, struct store **out,
	       char *why, size_t why_len);
/* Finishes in-flight work, checkpoints (unless read-only) and frees. */
void store_close(struct store *s);
/* Frees S without any I/O, as a crash would leave it: for tests that
 * destroy the loop first and then reopen the device. */
void store_forget(struct store *s);

/* --- operations ------------------------------------------------------------- */

enum store_op { STORE_OP_READ, STORE_OP_WRITE, STORE_OP_DELETE };

/* A bitmap of an object's 4 KiB chunks (bit i: chunk i), up to 1 MiB. */
#define STORE_WRITTEN_MAP_BYTES 32

struct store_req;
typedef void (*store_done_fn)(struct store_req *req, int res);

/* One operation; the caller owns it (and BUF) until DONE runs. */
struct store_req {
	enum store_op op;
	struct object_id oid;
	uint32_t offset, len; /* 4 KiB aligned, within one block */
	void *buf;	      /* 4 KiB aligned */
	/* Write: NULL, or the CRC32C of each 4 KiB chunk of BUF (len / 4096,
	 * borrowed like BUF), known already (the messenger's): the store
	 * records them instead of computing its own. The caller vouches
	 * that they are of exactly these bytes; sanitizer builds check. */
	const uint32_t *crc;
	/* Read: NULL, or room for len / 4096 CRCs, set on success to the
	 * CRC32C of each chunk of BUF: the stored CRCs the block's chunks
	 * were just checked against, the journal record's for journaled
	 * chunks (memory, never checked), that of zeros for unwritten ones.
	 * Whoever sends the data seals its frame from them. */
	uint32_t *crc_out;
	/* Write/delete: the new version, > the object's current one; 0
	 * assigns current + 1. Read: set to the version read. */
	uint64_t version;
	/* A whole-object write with MASKED marks only the chunks set in
	 * WRITTEN as written (the others read as zeros and count as never
	 * written): a copy of an object keeps its shape. A read fills
	 * WRITTEN with the chunks of the object ever written. */
	bool masked;
	/* A whole-object write that may carry the object's current version:
	 * a good copy replacing a bad one (read repair, scrub). */
	bool repair;
	uint8_t written[STORE_WRITTEN_MAP_BYTES];
	/* A write that may use the blocks the store holds back when it is
	 * otherwise full: the small records a PG keeps of itself, without
	 * which it cannot become active and let anyone delete. */
	bool reserve;
	/* A whole-block write or a delete of a head (snap 0) that first
	 * makes the head's current content clone CLONE_SNAP of it without
	 * copying: the clone takes the head's block, and the head gets the
	 * new one (store_clone_movable must have said yes; -ENOSPC when the
	 * write could only go through the journal). 0: no clone. */
	uint32_t clone_snap;
	store_done_fn done;
	void *ctx;

	/* Private to the store. */
	struct list_node node;
	struct store *store;
	struct store_obj *obj;
	uint64_t block;
	uint32_t gen;
	unsigned retries;
	bool promised;	/* holds a promise of a block (store_int.h, 6) */
	bool journaled;	/* a whole-block write that goes through the journal */
	bool data_pending; /* a redirect whose data write is in flight */
	bool batched;	/* in the journal batch in flight (store.jbatch) */
	int result;
	struct io_op io;
	/* The block's metadata entry, read when its CRCs are not in RAM. */
	struct io_op meta_io;
	uint8_t *meta_buf;
	uint32_t meta_seq;
	int meta_res, data_res;
	unsigned ios;
};

/* Starts REQ; DONE(req, res) runs later on the loop: 0, or -EINVAL (bad
 * range or alignment), -ENOENT (read or delete of a missing object),
 * -ESTALE (version not newer), -ENOSPC (the write would need a block the
 * store cannot promise: refused before anything changed; deletes never
 * get it, and overwrites of an object that has a block always fit),
 * -EBADMSG (a read whose data fails its checksum: the copy is bad),
 * -EIO (the device could not read, or failed a write), -EROFS (read-only
 * store, or failed after a device error). A read that fails with -EBADMSG
 * or -EIO is counted and logged with the object, block and chunk; its
 * bytes are never returned. */
void store_submit(struct store *s, struct store_req *req);

struct store_object_info {
	struct object_id oid;
	uint64_t version;
	uint64_t written_bytes; /* 4 KiB chunks ever written, in bytes */
	bool has_block;
};

/* Where OID's block is on the device: its byte offset (tests that
 * damage a copy on purpose). 0, or -ENOENT (no such object, or its data
 * is all still in the journal). */
int store_object_locate(struct store *s, const struct object_id *oid,
			uint64_t *offset /* out */);

/* Whether HEAD's content can become a clone without a copy (a request
 * with clone_snap): it has a block holding all its data (no journaled
 * writes over it), nothing pending, and clone SNAP does not exist. */
bool store_clone_movable(struct store *s, const struct object_id *head, uint32_t snap);

/* Looks up one object from memory. 0 or -ENOENT. */
int store_stat(struct store *s, const struct object_id *oid,
	       struct store_object_info *out /* out */);

/* Calls FN for every object of POOL (and of INODE unless ANY_INODE),
 * or, with PG_NUM > 0, only those in placement group PG. FN returns
 * non-zero to stop early. */
struct store_list_filter {
	uint32_t pool;
	bool any_inode;
	uint64_t inode;
	uint32_t pg_num, pg;
};
int store_list(struct store *s, const struct store_list_filter *f,
	       int (*fn)(const struct store_object_info *info, void *arg),
	       void *arg);

/* The live objects of placement group PG (of PG_NUM) of POOL and the
 * bytes of their written 4 KiB chunks (the PG's own records, inode
 * OBJECT_INODE_PG_META, left out), kept as records apply: O(1) once
 * the store sorted the pool's objects for this pg_num (the first call
 * with a new pg_num does, O(objects of the pool)). 0, -EINVAL (PG out
 * of range) or -ENOMEM. store_list with a PG walks only that PG. */
int store_pg_usage(struct store *s, uint32_t pool, uint32_t pg_num, uint32_t pg,
		   uint64_t *objects /* out */, uint64_t *bytes /* out */);

/* Flushes every journaled write in place and trims the journal; DONE runs
 * from the loop when that is durable (tests and tools use it to reach a
 * quiet state). On a read-only or failed store DONE runs at once. */
void store_checkpoint(struct store *s, void (*done)(void *arg), void *arg);

struct store_usage {
	uint64_t device_bytes;
	uint64_t block_size;
	uint64_t blocks_total, blocks_used, blocks_free;
	/* Blocks promised to journaled data and accepted writes, and those
	 * left to promise to new data (free - promised - reserve): the
	 * store's fullness is 1 - blocks_available / blocks_total. */
	uint64_t blocks_promised, blocks_available, blocks_reserved;
	uint64_t objects;
	uint64_t journal_bytes, journal_used_bytes;
	uint64_t meta_bytes;	/* superblocks + metadata area */
	uint64_t used_bytes;	/* live blocks + journal + metadata */
	uint64_t live_data_bytes; /* blocks_used * block_size */
	uint64_t csum_errors;	/* reads whose data failed its checksum */
	uint64_t read_errors;	/* reads the device failed */
	uint64_t journal_batches, journal_records, flushes;
	/* Objects visited by listings, and sorted onto PG lists when a
	 * pool's pg_num became known (tests: a beacon or a read costs no
	 * walk of the store). */
	uint64_t listed_objects, pg_sorted_objects;
	/* Blocks' CRCs found in the CRC cache, and metadata entries read
	 * because they were not in RAM (osd_crc_cache_size). */
	uint64_t crc_cache_hits, crc_entry_reads;
};
void store_usage(struct store *s, struct store_usage *out /* out */);

uint32_t store_block_size(const struct store *s);
/* The data blocks' bytes, and those the store can still promise to new
 * data (store_usage's blocks_available), in O(1): fullness for every
 * write's admission and every beacon. */
void store_space(const struct store *s, uint64_t *data_bytes /* out */,
		 uint64_t *available_bytes /* out */);

/* What open found: journal replay and metadata repairs. */
struct store_open_report {
	uint64_t replayed_batches, replayed_records;
	uint64_t torn_batches;	/* a torn tail batch, discarded (normal after a crash) */
	uint64_t stale_entries; /* entries superseded by a newer one (crash leftovers) */
	/* Blocks of durable journaled writes that no longer hold what was
	 * written (a failing device): kept, their reads fail checksums. */
	uint64_t damaged_blocks;
	/* Objects whose journaled data has no block and no free block to go
	 * to (only a store written before promises existed): the journal
	 * cannot be checkpointed past them. */
	uint64_t unplaceable;
	char journal_end[64];	/* why replay stopped */
};
const struct store_open_report *store_report(const struct store *s);

/* Offline check of the store on PATH (read-only): replays the journal in
 * memory, verifies the checksum of every written 4 KiB of every live
 * block, and that every block is owned once. Prints a report to OUT.
 * Returns 0 when clean, -EUCLEAN when problems were found, or another
 * -errno when the store could not be read. */
int store_fsck(struct io_loop *loop, const char *path, FILE *out, bool json);
/* Prints usage (blocks used and free, journal fill, objects) to OUT. */
int store_dump(struct io_loop *loop, const char *path, FILE *out, bool json);

#endif
