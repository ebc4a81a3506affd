/* Messages between the OSDs of a placement group (osd/pg.c): the primary
 * queries every member when an interval starts (the answer lists what the
 * member holds, and fences the older interval on it), and sends sub-
 * operations — replicated writes and deletes, recovery reads, pushes and
 * removals, and the "complete" mark — each tagged with its interval. */
#ifndef BASALT_OSD_PG_PROTO_H
#define BASALT_OSD_PG_PROTO_H

#include <stdint.h>

#include "common/msgr_frame.h"
#include "common/object.h"
#include "common/cluster/osd_proto.h"

enum pg_msg_type {
	OSD_MSG_PG_QUERY = OSD_MSG_OP_REPLY + 1, /* struct pg_query */
	OSD_MSG_PG_INFO,			 /* struct pg_info; entries as data */
	OSD_MSG_SUBOP,				 /* struct pg_subop; data for writes */
	OSD_MSG_SUBOP_REPLY,			 /* struct pg_subop_reply; READ data */
};

/* What a query asks for (osd/pg_log.c: peering by what changed). */
enum pg_query_mode {
	PG_QUERY_FULL = 0, /* every object of the PG and its version */
	PG_QUERY_SUMMARY,  /* the complete mark and the log's sync markers only */
	PG_QUERY_LOG,	   /* the objects the log names after MARKER (versions 0) */
	PG_QUERY_STAT,	   /* the versions of the objects listed in the data */
};
#define PG_QUERY_MODE_LAST PG_QUERY_STAT

/* A sync marker of a PG's log: issued by primary PRIMARY of interval
 * EPOCH, the NUMBER-th of that interval (pg_log.c). */
struct pg_marker {
	uint32_t primary;
	uint64_t epoch, number;
	/* An EC member's: 1 + the chunk it stored when it logged the
	 * marker (its logs say nothing of another chunk); 0: replicated.
	 * Not part of what makes two members' markers the same. */
	uint8_t chunk;
};
#define PG_INFO_MARKERS_MAX 8

/* The primary FROM of interval EPOCH asks what a member holds. ROUND is
 * the primary's peering round (a sync marker is taken only by a member
 * whose last query came from the same round). STAT: COUNT objects as
 * entries (versions 0) in the data. */
struct pg_query {
	uint32_t pool, pg;
	uint64_t epoch;
	uint32_t from;
	uint8_t mode; /* enum pg_query_mode */
	uint64_t round;
	struct pg_marker marker; /* LOG */
	uint32_t count;		 /* STAT */
	const uint8_t *entries;	 /* STAT: into the message (decode), or copied (encode) */
};

/* The answer: RC 0, -ESTALE (the member already answered a newer
 * interval) or -EAGAIN (it is not ready: not booted yet). Then every
 * object of the PG it holds, with its version, and the epoch of the last
 * interval in which it was marked complete (0: never). */
struct pg_info {
	int32_t rc;
	uint32_t pool, pg;
	uint64_t epoch;
	uint32_t from; /* the member */
	uint64_t complete_epoch;
	uint8_t full; /* the member's fullness (enum map_full_state): known
		       * before recovery pushes anything to it */
	uint8_t mode;	/* the query's (enum pg_query_mode) */
	uint8_t log_ok; /* LOG: the marker was still in the log (else no entries) */
	uint8_t n_markers; /* SUMMARY: the log's newest sync markers, newest first */
	struct pg_marker markers[PG_INFO_MARKERS_MAX];
	uint32_t count;
	const uint8_t *entries; /* count x PG_INFO_ENTRY_LEN, into the message */
};
#define PG_INFO_ENTRY_LEN (OBJECT_ID_WIRE_LEN + 8)

/* A bitmap of an object's 4 KiB chunks (as the store keeps them). */
#define PG_WRITTEN_MAP_BYTES 32

enum pg_subop_type {
	PG_SUB_WRITE = 1, /* a client write (range of the object), at VERSION */
	PG_SUB_DELETE,	  /* a client delete, at VERSION */
	PG_SUB_READ,	  /* recovery: the whole object and its version */
	PG_SUB_PUSH,	  /* recovery: the whole object at VERSION */
	PG_SUB_REMOVE,	  /* recovery: drop the object, whatever its version */
	PG_SUB_COMPLETE,  /* mark the member complete in interval EPOCH */
	PG_SUB_SCRUB,	  /* read the objects in (OID, END]; answer each copy's
			   * version, state and digest (osd/pg_scrub.c) */
	PG_SUB_SYNC,	  /* log sync marker VERSION of the interval, sent in the
			   * peering round REQID (osd/pg_log.c) */
	PG_SUB_CHUNK_READ, /* erasure coding: bytes OFFSET, LEN of the shard OID
			    * and its version (osd/pg_ec.c) */
	PG_SUB_CHUNK_COMMIT, /* erasure coding: apply the shard OID's pending
			      * write VERSION (CLONE_SNAP first) */
};
#define PG_SUB_LAST PG_SUB_CHUNK_COMMIT

struct pg_subop {
	uint32_t pool, pg;
	uint64_t epoch; /* the interval */
	uint32_t from;	/* its primary */
	uint8_t type;	/* enum pg_subop_type */
	struct object_id oid;
	/* WRITE: the range (len = data length); CHUNK_READ: the range. A
	 * WRITE of a shard (oid.shard) stores the range as its pending write
	 * (osd/pg_ec.c); a DELETE of one drops that too. */
	uint32_t offset, len;
	uint64_t version;
	uint64_t client, reqid; /* WRITE, DELETE: the client's request */
	uint8_t written[PG_WRITTEN_MAP_BYTES]; /* PUSH: the chunks ever written */
	struct object_id end; /* SCRUB: the last object of the range */
	/* WRITE, DELETE: first preserve the head as the clone of this
	 * snapshot (pg_snap.c); 0: no clone. */
	uint32_t clone_snap;
};

struct pg_subop_reply {
	int32_t rc;
	uint64_t version; /* READ: the object's version */
	uint8_t written[PG_WRITTEN_MAP_BYTES]; /* READ: its chunks ever written */
	uint8_t full; /* the member's fullness (enum map_full_state), so the
		       * primary stops writes to it before the map says so */
};

struct msg *pg_query_encode(uint64_t request_id, const struct pg_query *q);
int pg_query_decode(const struct msg *msg, struct pg_query *out);
/* ENTRIES: COUNT encoded entries (see PG_INFO_ENTRY_LEN), copied. */
struct msg *pg_info_encode(uint64_t request_id, const struct pg_info *info);
int pg_info_decode(const struct msg *msg, struct pg_info *out);
/* Entry I of INFO. */
void pg_info_entry(const struct pg_info *info, uint32_t i, struct object_id *oid,
		   uint64_t *version);
void pg_info_entry_put(uint8_t *at, const struct object_id *oid, uint64_t version);

/* Recovery moves an object as its chunks ever written (WRITTEN), in
 * order, and nothing of the rest (zeros): an object of one 4 KiB write
 * costs 4 KiB on the wire, not a block. The packed length of a block of
 * BLOCK_SIZE bytes: */
uint32_t pg_chunks_packed_len(const uint8_t *written, uint32_t block_size);
/* Copies the written chunks of BLOCK to OUT, in order, and with CRC (NULL,
 * or one per chunk of BLOCK) their CRCs to OUT_CRC; OUT may be BLOCK and
 * OUT_CRC may be CRC (packing in place). Returns the packed length. */
uint32_t pg_chunks_pack(uint8_t *out, const uint8_t *block, uint32_t block_size,
			const uint8_t *written, uint32_t *out_crc, const uint32_t *crc);
/* Expands PACKED, LEN bytes (the packed length for WRITTEN), into BLOCK:
 * the chunks where WRITTEN says, zeros elsewhere. Returns 1 when it also
 * set CRC (one per chunk of BLOCK): from PACKED_CRC (one per packed chunk,
 * or NULL) and the zero chunk's, which is all it needs when nothing was
 * written; else 0. -EBADMSG when LEN is not that length. */
int pg_chunks_unpack(const uint8_t *packed, uint32_t len, const uint8_t *written,
		     uint32_t block_size, uint8_t *block, const uint32_t *packed_crc,
		     uint32_t *crc /* out */);

/* DATA (DATA_LEN bytes) is not copied: it is attached with
 * msg_borrow_data by the caller, or NULL. */
struct msg *pg_subop_encode(uint64_t request_id, const struct pg_subop *op);
int pg_subop_decode(const struct msg *msg, struct pg_subop *out);
struct msg *pg_subop_reply_encode(uint64_t request_id, const struct pg_subop_reply *r);
int pg_subop_reply_decode(const struct msg *msg, struct pg_subop_reply *out);

#endif
