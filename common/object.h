/* Object identity: (pool, 64-bit inode, 64-bit index). A volume of size S
 * is objects 0..S/block_size of its inode. Objects map to placement groups
 * by a stable hash that every process computes the same way. */
#ifndef BASALT_COMMON_OBJECT_H
#define BASALT_COMMON_OBJECT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "enc.h"

struct object_id {
	uint32_t pool;
	uint64_t inode;
	uint64_t index;
};

#define OBJECT_ID_WIRE_LEN 20
/* Inode of the per-PG objects an OSD keeps for itself (osd/pg.c); never
 * a volume's, never listed to clients. */
#define OBJECT_INODE_PG_META UINT64_MAX

static inline bool object_id_equal(const struct object_id *a,
				   const struct object_id *b)
{
	return a->pool == b->pool && a->inode == b->inode && a->index == b->index;
}

/* Orders ids by pool, inode, index: -1, 0 or 1. */
static inline int object_id_cmp(const struct object_id *a, const struct object_id *b)
{
	if (a->pool != b->pool)
		return a->pool < b->pool ? -1 : 1;
	if (a->inode != b->inode)
		return a->inode < b->inode ? -1 : 1;
	if (a->index != b->index)
		return a->index < b->index ? -1 : 1;
	return 0;
}

static inline int enc_put_object_id(struct enc *e, const struct object_id *o)
{
	enc_put_le32(e, o->pool);
	enc_put_le64(e, o->inode);
	return enc_put_le64(e, o->index);
}

static inline int dec_get_object_id(struct dec *d, struct object_id *o)
{
	dec_get_le32(d, &o->pool);
	dec_get_le64(d, &o->inode);
	return dec_get_le64(d, &o->index);
}

/* A well-mixed 64-bit hash of the id (for hash tables). */
uint64_t object_id_hash(const struct object_id *o);

/* The placement group of O in a pool of PG_NUM groups: stable forever,
 * since it decides where data lives. */
uint32_t object_pg(const struct object_id *o, uint32_t pg_num);

/* "pool:inode:index" in hex, for logs and tools. */
const char *object_id_str(const struct object_id *o, char *buf, size_t len);

#endif
