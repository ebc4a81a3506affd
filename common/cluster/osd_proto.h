/* Messages to and between OSDs, on the messenger. */
#ifndef BASALT_CLUSTER_OSD_PROTO_H
#define BASALT_CLUSTER_OSD_PROTO_H

#include <stdint.h>

#include "common/msgr_frame.h"
#include "common/object.h"

enum osd_msg_type {
	OSD_MSG_PING = 64,  /* le32 from, le64 map epoch, le64 stamp */
	OSD_MSG_PING_REPLY, /* le32 from, le64 map epoch, le64 stamp echoed */
	OSD_MSG_OP,	    /* a client's object operation: struct osd_op */
	OSD_MSG_OP_REPLY,   /* struct osd_op_reply; READ data, LIST entries as data */
};

/* PING_REPLY adds u8: the replier's fullness (enum map_full_state). */
#define OSD_PING_LEN 20
#define OSD_PING_REPLY_LEN 21

/* Object operations. An object is one block of its pool (block_size
 * bytes); READ and WRITE take 4 KiB-aligned ranges within it. */
enum osd_op_type {
	OSD_OP_READ = 1,
	OSD_OP_WRITE,
	OSD_OP_DELETE,
	OSD_OP_STAT,
	OSD_OP_LIST, /* the pool's objects in the PGs this OSD is primary of */
	/* Scrub PG oid.index of pool oid.pool (this OSD its primary), or with
	 * oid.index OSD_SCRUB_ALL every PG this OSD is primary of (any pool);
	 * deep with OSD_OP_FLAG_DEEP. Answered once scheduled: size = how
	 * many PGs. */
	OSD_OP_SCRUB,
	/* Answered once this OSD has the map of the op's epoch and no write
	 * it assigned a version before that epoch is still in flight: snap
	 * create and snap rm send it to every up OSD after their map change
	 * (docs/ARCHITECTURE.md, "Snapshots"). No object. */
	OSD_OP_SYNC,
};
#define OSD_SCRUB_ALL OBJECT_INDEX_MAX

/* A write that frees or zeroes what exists (a TRIM's partial chunks):
 * taken even when the pool is full, like a delete. */
#define OSD_OP_FLAG_FULL_TRY 1
#define OSD_OP_FLAG_DEEP 2 /* SCRUB: a deep one */
/* WRITE: only if the head does not exist yet, else -EEXIST and nothing
 * written. A clone's copy-up: of two writers copying the parent's object
 * in, the second must not overwrite what the first wrote since. */
#define OSD_OP_FLAG_CREATE 4
#define OSD_OP_FLAGS_ALL (OSD_OP_FLAG_FULL_TRY | OSD_OP_FLAG_DEEP | OSD_OP_FLAG_CREATE)

struct osd_op {
	uint64_t client, reqid; /* a resend carries the same pair: applied once */
	uint64_t epoch;		/* the client's map epoch */
	uint8_t type;		/* enum osd_op_type */
	uint8_t flags;		/* OSD_OP_FLAG_* */
	/* How long the client has waited for this operation (its first
	 * attempt until this one), so an OSD's slow-operation ages count
	 * across resends. */
	uint32_t age_ms;
	struct object_id oid;	/* LIST: only oid.pool counts */
	uint32_t offset, len;	/* READ, WRITE (WRITE: len = data length) */
};

struct osd_op_reply {
	int32_t rc;	   /* 0 or -errno; -EAGAIN: not the primary (refresh the map) */
	uint64_t version;  /* WRITE, DELETE, READ, STAT: the object's version */
	uint64_t epoch;	   /* the OSD's map epoch */
	uint64_t size;	   /* STAT: bytes written in the object */
};

/* One LIST entry in the reply's data: object id, le64 version, le64 size. */
#define OSD_LIST_ENTRY_LEN (OBJECT_ID_WIRE_LEN + 16)

struct msg *osd_op_encode(const struct osd_op *op, const void *data, uint32_t data_len);
int osd_op_decode(const struct msg *msg, struct osd_op *out);
struct msg *osd_op_reply_encode(uint64_t request_id, const struct osd_op_reply *r);
int osd_op_reply_decode(const struct msg *msg, struct osd_op_reply *out);

#endif
