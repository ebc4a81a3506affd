/* Object identity: (pool, inode, index, snap, shard). A volume of size S
 * is objects 0..S/block_size of its inode; snap 0 is the live object (the
 * head), snap S > 0 a clone: what the head held before its first write
 * after snapshot S (docs/ARCHITECTURE.md, "Snapshots"). In an
 * erasure-coded pool an OSD stores one chunk of an object, its shard (an
 * OSD's store holds shard objects; clients name whole objects). Objects
 * map to placement groups by a stable hash of (inode, index) that every
 * process computes the same way, so a head, its clones and its shards
 * share a PG. */
#ifndef BASALT_COMMON_OBJECT_H
#define BASALT_COMMON_OBJECT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "enc.h"

struct object_id {
	uint32_t pool;
	uint64_t inode;
	uint64_t index; /* <= OBJECT_INDEX_MAX */
	uint32_t snap;	/* OBJECT_SNAP_HEAD, or a clone's snapshot id */
	uint8_t shard;	/* OBJECT_SHARD_WHOLE, or 1 + the erasure-code chunk held */
};

/* On the wire and on disk the snap shares the index's 64 bits (index in
 * the low 44, snap in the high 20): stores and messages written before
 * snapshots existed read as heads, and no format grew. 2^44 objects of
 * 64 KiB cover the largest volume (2^60 bytes); 2^20 - 1 snapshot ids is
 * a volume's lifetime supply (the monitor refuses more). */
#define OBJECT_INDEX_BITS 44
#define OBJECT_INDEX_MAX ((1ULL << OBJECT_INDEX_BITS) - 1)
#define OBJECT_SNAP_MAX ((1u << (64 - OBJECT_INDEX_BITS)) - 1)
#define OBJECT_SNAP_HEAD 0u
/* The last id of a snapshot; the one above is an EC shard's pending
 * write: the window of a write not yet committed (osd/pg_ec.c). */
#define OBJECT_SNAP_LAST (OBJECT_SNAP_MAX - 1)
#define OBJECT_SNAP_PENDING OBJECT_SNAP_MAX
/* The shard shares the pool's 32 bits the same way (pool in the low 24,
 * shard in the high 8): the monitors never give out a pool id above
 * OBJECT_POOL_MAX. */
#define OBJECT_POOL_BITS 24
#define OBJECT_POOL_MAX ((1u << OBJECT_POOL_BITS) - 1)
#define OBJECT_SHARD_WHOLE 0
#define OBJECT_SHARD_MAX 255 /* chunk 254 */
#define OBJECT_ID_WIRE_LEN 20
/* Inode of the per-PG objects an OSD keeps for itself (osd/pg.c); never
 * a volume's, never listed to clients. */
#define OBJECT_INODE_PG_META UINT64_MAX

static inline bool object_id_equal(const struct object_id *a,
				   const struct object_id *b)
{
	return a->pool == b->pool && a->inode == b->inode && a->index == b->index &&
	       a->snap == b->snap && a->shard == b->shard;
}

/* Orders ids by pool, inode, index, snap (a head before its clones),
 * shard: -1, 0 or 1. */
static inline int object_id_cmp(const struct object_id *a, const struct object_id *b)
{
	if (a->pool != b->pool)
		return a->pool < b->pool ? -1 : 1;
	if (a->inode != b->inode)
		return a->inode < b->inode ? -1 : 1;
	if (a->index != b->index)
		return a->index < b->index ? -1 : 1;
	if (a->snap != b->snap)
		return a->snap < b->snap ? -1 : 1;
	if (a->shard != b->shard)
		return a->shard < b->shard ? -1 : 1;
	return 0;
}

/* The pool and shard as one 32-bit field, and back (wire, disk, store). */
static inline uint32_t object_pool_pack(const struct object_id *o)
{
	return (o->pool & OBJECT_POOL_MAX) | (uint32_t)o->shard << OBJECT_POOL_BITS;
}

static inline void object_pool_unpack(uint32_t packed, struct object_id *o /* out */)
{
	o->pool = packed & OBJECT_POOL_MAX;
	o->shard = (uint8_t)(packed >> OBJECT_POOL_BITS);
}

static inline int enc_put_object_id(struct enc *e, const struct object_id *o)
{
	enc_put_le32(e, object_pool_pack(o));
	enc_put_le64(e, o->inode);
	return enc_put_le64(e, (o->index & OBJECT_INDEX_MAX) |
				       (uint64_t)o->snap << OBJECT_INDEX_BITS);
}

static inline int dec_get_object_id(struct dec *d, struct object_id *o)
{
	uint64_t packed = 0;
	uint32_t pool = 0;
	dec_get_le32(d, &pool);
	object_pool_unpack(pool, o);
	dec_get_le64(d, &o->inode);
	int rc = dec_get_le64(d, &packed);
	o->index = packed & OBJECT_INDEX_MAX;
	o->snap = (uint32_t)(packed >> OBJECT_INDEX_BITS);
	return rc;
}

/* O's head: the live object a clone was taken from (the same shard). */
static inline struct object_id object_head(const struct object_id *o)
{
	struct object_id h = *o;
	h.snap = OBJECT_SNAP_HEAD;
	return h;
}

/* Whether O fits the wire form (pool, index and snap in range). */
static inline bool object_id_valid(const struct object_id *o)
{
	return o->pool <= OBJECT_POOL_MAX && o->index <= OBJECT_INDEX_MAX &&
	       o->snap <= OBJECT_SNAP_MAX;
}

/* Shard CHUNK (0-based) of the whole object O. */
static inline struct object_id object_shard(const struct object_id *o, unsigned chunk)
{
	struct object_id s = *o;
	s.shard = (uint8_t)(chunk + 1);
	return s;
}

/* The whole object a shard is a chunk of (O itself when it is whole). */
static inline struct object_id object_whole(const struct object_id *o)
{
	struct object_id w = *o;
	w.shard = OBJECT_SHARD_WHOLE;
	return w;
}

/* A well-mixed 64-bit hash of the id (for hash tables). */
uint64_t object_id_hash(const struct object_id *o);

/* The placement group of O in a pool of PG_NUM groups: stable forever,
 * since it decides where data lives. */
uint32_t object_pg(const struct object_id *o, uint32_t pg_num);

/* "pool:inode:index" in hex ("...@snap" for a clone, "...#chunk" for a
 * shard), for logs and tools. */
const char *object_id_str(const struct object_id *o, char *buf, size_t len);

#endif
