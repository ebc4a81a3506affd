/* The store's bytes on the device: layout, superblock, metadata entries and
 * journal batches. Pure encode/decode through the bounded cursors, with a
 * version and a CRC32C on every structure; unit-tested and fuzzed.
 *
 *   0        superblock slot 0   (4 KiB)   two slots written alternately,
 *   4096     superblock slot 1   (4 KiB)   the valid one with the higher
 *                                          generation wins
 *   8192     journal ring        (journal_size)
 *   meta     metadata area: per data block two entry slots (A/B), each
 *            entry_size bytes; updates go to the older slot, so a torn
 *            write never destroys the last good entry
 *   data     data blocks (block_size each), aligned to 1 MiB
 */
#ifndef BASALT_OSD_STORE_FORMAT_H
#define BASALT_OSD_STORE_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/enc.h"
#include "common/object.h"

#define STORE_CHUNK 4096u /* checksum and write granularity */
#define STORE_SECTOR 512u
#define STORE_SB_SIZE 4096u
#define STORE_SB_SLOT1 4096u
#define STORE_JOURNAL_OFFSET 8192u
#define STORE_DATA_ALIGN (1u << 20)
#define STORE_FORMAT_VERSION 1
#define STORE_MAX_CHUNKS 256 /* block_size up to 1 MiB */
#define STORE_BLOCK_SIZE_MIN (64u << 10)
#define STORE_BLOCK_SIZE_MAX (1u << 20)
#define STORE_JOURNAL_MIN (4u << 20)

#define STORE_SB_MAGIC 0x4453534f544c5342ULL /* "BSLTOSSD" */
#define STORE_META_MAGIC 0x54454d42u	      /* "BMET" */
#define STORE_JOURNAL_MAGIC 0x4c4e4a42u	      /* "BJNL" */

/* --- layout and superblock --------------------------------------------- */

struct store_layout {
	uint64_t device_size;
	uint32_t block_size;
	uint32_t chunks_per_block; /* block_size / STORE_CHUNK */
	uint32_t entry_size;	   /* one metadata slot */
	uint64_t journal_offset, journal_size;
	uint64_t meta_offset, meta_size;
	uint64_t data_offset;
	uint64_t block_count;
};

/* Lays out a device of DEVICE_SIZE bytes with metadata slots of at least
 * ENTRY_MIN bytes (the device's direct-I/O alignment, so one slot can be
 * written alone). -EINVAL for sizes out of range (block size a power of
 * two in [64K, 1M]; journal at least 4 MiB and a multiple of 4 KiB) or a
 * device too small for one block. */
int store_layout_compute(uint64_t device_size, uint32_t block_size,
			 uint64_t journal_size, uint32_t entry_min,
			 struct store_layout *out);
uint32_t store_entry_size(uint32_t chunks_per_block, uint32_t entry_min);

struct store_sb {
	uint32_t format;
	uint64_t generation; /* bumped on every superblock write */
	uint8_t uuid[16];
	struct store_layout layout;
	/* Journal: replay starts at journal_tail (an offset inside the ring)
	 * expecting batch journal_seq of journal_epoch. */
	uint64_t journal_tail;
	uint64_t journal_seq;
	uint64_t journal_epoch;
	uint64_t created_unix;
};

/* Encodes into a zeroed 4 KiB buffer. */
void store_sb_encode(const struct store_sb *sb, uint8_t buf[STORE_SB_SIZE]);
/* 0, or -EBADMSG (not a store, bad CRC, inconsistent layout) or
 * -EPROTONOSUPPORT (a newer format). */
int store_sb_decode(const uint8_t buf[STORE_SB_SIZE], struct store_sb *out);
bool store_sb_has_magic(const uint8_t buf[STORE_SB_SIZE]);

/* --- metadata entries ---------------------------------------------------- */

struct store_entry {
	bool used;
	uint32_t seq; /* per-block update counter; the newer slot wins */
	struct object_id oid;
	uint64_t version;
	uint64_t block; /* must match the slot's block: catches misplacement */
	uint8_t bitmap[STORE_MAX_CHUNKS / 8]; /* chunks ever written */
	uint32_t crc[STORE_MAX_CHUNKS];
};

/* Encodes E for a block of CHUNKS chunks into BUF (ENTRY_SIZE bytes). */
void store_entry_encode(const struct store_entry *e, uint32_t chunks,
			uint8_t *buf, uint32_t entry_size);
/* 0 valid; 1 never written (all zero); -EBADMSG torn or corrupt. */
int store_entry_decode(const uint8_t *buf, uint32_t chunks,
		       uint32_t entry_size, uint64_t block,
		       struct store_entry *out);
/* True when seq A is newer than seq B (serial number arithmetic). */
static inline bool store_seq_newer(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) > 0;
}

static inline bool store_bit_test(const uint8_t *bm, uint32_t i)
{
	return bm[i / 8] & (1u << (i % 8));
}
static inline void store_bit_set(uint8_t *bm, uint32_t i)
{
	bm[i / 8] |= (uint8_t)(1u << (i % 8));
}

/* --- journal ------------------------------------------------------------------ */

enum store_batch_kind { STORE_BATCH_RECORDS = 1, STORE_BATCH_WRAP = 2 };
enum store_record_type {
	STORE_REC_SMALL = 1,  /* data in this batch */
	STORE_REC_BIG = 2,    /* data already in BLOCK: redirect */
	STORE_REC_DELETE = 3,
};

#define STORE_BATCH_HEADER_LEN 44u
#define STORE_REC_FIXED_LEN 32u

/* Flags of a batch. PREV_DURABLE: this batch was written only after
 * every batch before it was flushed, the data of its whole-block writes
 * included (sync mode "always"); so at replay, only the last batch of
 * the chain can be torn, and a block of an earlier one that does not
 * hold what was written is damage, not a write cut short. (Stores
 * written before this flag existed have 0 here: older code refuses a
 * journal that has it.) */
#define STORE_BATCH_PREV_DURABLE 1u
#define STORE_BATCH_FLAGS_KNOWN STORE_BATCH_PREV_DURABLE

struct store_batch {
	enum store_batch_kind kind;
	uint64_t epoch, seq;
	uint32_t header_len; /* bytes, records included */
	uint32_t data_len;   /* bytes of data after the header sectors */
	uint32_t record_count;
	uint32_t flags;	     /* STORE_BATCH_* */
};

/* Bytes the header of a batch occupies on disk (whole 4 KiB sectors). */
static inline uint32_t store_batch_header_space(uint32_t header_len)
{
	return (header_len + STORE_CHUNK - 1) / STORE_CHUNK * STORE_CHUNK;
}

struct store_record {
	enum store_record_type type;
	struct object_id oid;
	uint64_t version;
	uint32_t nchunks;     /* small: chunks written; big: chunks of a block */
	uint32_t first_chunk; /* small */
	uint32_t data_off;    /* small: byte offset in the batch's data */
	uint64_t block;	      /* big */
	const uint8_t *crcs;  /* nchunks little-endian CRC32C values */
	/* big: the chunks written (a bitmap of nchunks bits), or NULL for
	 * all; on disk, flag bit 0 of the record and the bitmap after the
	 * CRCs. */
	const uint8_t *written;
	bool takeover; /* big: STORE_REC_FLAG_TAKEOVER */
};

#define STORE_REC_FLAG_MASKED 1u
/* big: BLOCK is the current block of the head of OID (same pool, inode
 * and index, snap 0), which gives it up to OID: a snapshot's clone made
 * without copying, always followed in the same batch by the head's own
 * whole-block write or delete. */
#define STORE_REC_FLAG_TAKEOVER 2u

uint32_t store_record_len(enum store_record_type type, uint32_t nchunks, bool masked);
/* Appends R to an encoder positioned in a batch header; CRCS holds
 * R->nchunks host-order values. */
int store_record_encode(struct enc *e, const struct store_record *r,
			const uint32_t *crcs);
/* Writes the fixed header fields and the CRC over [0, header_len). */
void store_batch_seal(uint8_t *header, const struct store_batch *b);
/* Checks a batch header at BUF (AVAIL bytes readable). 0 or -EBADMSG; the
 * caller compares epoch and seq. */
int store_batch_decode(const uint8_t *buf, size_t avail,
		       uint32_t chunks_per_block, struct store_batch *out);
/* Iterates the records of a decoded batch: 1 with *OUT filled, 0 at the
 * end, -EBADMSG on a malformed record. */
int store_record_next(struct dec *d, uint32_t chunks_per_block,
		      struct store_record *out);
static inline uint32_t store_record_crc(const struct store_record *r,
					uint32_t i)
{
	return le_load32(r->crcs + 4 * i);
}

#endif
