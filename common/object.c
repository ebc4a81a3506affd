/* Object id hashing. The PG hash is part of the on-disk and on-wire
 * contract: changing it moves every object, so it is pinned by unit tests. */
#include "object.h"

#include <inttypes.h>

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

uint64_t object_id_hash(const struct object_id *o)
{
	return mix64(o->inode * 0x9E3779B97F4A7C15ULL ^ mix64(o->index) ^
		     ((uint64_t)o->pool << 32) ^ ((uint64_t)o->snap << 13) ^
		     ((uint64_t)o->shard << 56));
}

uint32_t object_pg(const struct object_id *o, uint32_t pg_num)
{
	/* The pool is left out: a pool's objects spread over its own PGs;
	 * the snap and shard too: a head, its clones and shards live in one
	 * PG. */
	uint64_t h = mix64(mix64(o->inode) ^ o->index);
	return pg_num ? (uint32_t)(h % pg_num) : 0;
}

const char *object_id_str(const struct object_id *o, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%" PRIx32 ":%" PRIx64 ":%" PRIx64, o->pool, o->inode,
			 o->index);
	if (o->snap && n >= 0 && (size_t)n < len)
		n += snprintf(buf + n, len - (size_t)n, "@%" PRIx32, o->snap);
	if (o->shard && n >= 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, "#%u", o->shard - 1u);
	return buf;
}
