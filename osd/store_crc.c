/* The CRC cache: the CRCs of blocks whose objects are cold, in at most
 * osd_crc_cache_size bytes (invariant 8 in store_int.h). A hot object
 * keeps its block's CRCs itself, so an entry leaves the cache when its
 * object turns hot (store_crc_take) and comes back when it cools: what
 * the cache holds is always what the block's newest metadata entry says.
 * Eviction is a clock over the slots (a slot put or looked at survives
 * one sweep). A miss costs a read of the block's metadata entry beside
 * the data (store_read.c) or before a flush merges into it
 * (store_flush.c); store_entry_adopt checks such an entry. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/log.h"
#include "store_int.h"

static uint32_t crc_hash(const struct store_crc_cache *c, uint64_t block)
{
	return (uint32_t)((block * 0x9E3779B97F4A7C15ULL) >> 32) & c->mask;
}

int store_crc_init(struct store *s, uint64_t bytes)
{
	struct store_crc_cache *c = &s->crcs;
	uint32_t chunks = s->L.chunks_per_block;
	/* A slot: its CRCs, key, link and clock bit, and about one bucket. */
	uint64_t per = 4ull * chunks + 4 + 4 + 1 + 4;
	uint64_t cap = bytes / per;
	if (cap > s->L.block_count)
		cap = s->L.block_count;
	if (cap > UINT32_MAX / 2)
		cap = UINT32_MAX / 2;
	memset(c, 0, sizeof(*c));
	if (!cap)
		return 0;
	uint64_t buckets = 1;
	while (buckets < cap)
		buckets <<= 1;
	c->cap = (uint32_t)cap;
	c->mask = (uint32_t)(buckets - 1);
	/* calloc: only the slots used become resident. */
	c->bucket = calloc(buckets, sizeof(*c->bucket));
	c->key = calloc(cap, sizeof(*c->key));
	c->next = calloc(cap, sizeof(*c->next));
	c->ref = calloc(cap, 1);
	c->crc = calloc(cap, 4ull * chunks);
	if (!c->bucket || !c->key || !c->next || !c->ref || !c->crc)
		return -ENOMEM;
	return 0;
}

void store_crc_free(struct store *s)
{
	struct store_crc_cache *c = &s->crcs;
	free(c->bucket);
	free(c->key);
	free(c->next);
	free(c->ref);
	free(c->crc);
	memset(c, 0, sizeof(*c));
}

/* The link that points at BLOCK's slot (+1), or at the chain's end. */
static uint32_t *crc_link(struct store_crc_cache *c, uint64_t block)
{
	uint32_t *p = &c->bucket[crc_hash(c, block)];
	while (*p && c->key[*p - 1] != block + 1)
		p = &c->next[*p - 1];
	return p;
}

static void crc_unlink(struct store_crc_cache *c, uint32_t *link)
{
	uint32_t slot = *link - 1;
	*link = c->next[slot];
	c->key[slot] = 0;
	c->next[slot] = c->free_head;
	c->free_head = slot + 1;
}

bool store_crc_take(struct store *s, uint64_t block, uint32_t *out)
{
	struct store_crc_cache *c = &s->crcs;
	if (!c->cap)
		return false;
	uint32_t *link = crc_link(c, block);
	if (!*link) {
		c->misses++;
		return false;
	}
	c->hits++;
	memcpy(out, c->crc + (size_t)(*link - 1) * s->L.chunks_per_block,
	       4ull * s->L.chunks_per_block);
	crc_unlink(c, link);
	return true;
}

void store_crc_drop(struct store *s, uint64_t block)
{
	struct store_crc_cache *c = &s->crcs;
	if (!c->cap)
		return;
	uint32_t *link = crc_link(c, block);
	if (*link)
		crc_unlink(c, link);
}

/* A slot to fill: a free one, a never used one, or the clock's victim. */
static int crc_slot(struct store_crc_cache *c, bool no_evict)
{
	if (c->free_head) {
		uint32_t slot = c->free_head - 1;
		c->free_head = c->next[slot];
		return (int)slot;
	}
	if (c->used < c->cap)
		return (int)c->used++;
	if (no_evict)
		return -1;
	for (;;) {
		uint32_t slot = c->hand;
		c->hand = c->hand + 1 == c->cap ? 0 : c->hand + 1;
		if (c->ref[slot]) {
			c->ref[slot] = 0;
			continue;
		}
		crc_unlink(c, crc_link(c, c->key[slot] - 1));
		c->free_head = c->next[slot];
		return (int)slot;
	}
}

void store_crc_put(struct store *s, uint64_t block, const uint32_t *crc, bool no_evict)
{
	struct store_crc_cache *c = &s->crcs;
	if (!c->cap)
		return;
	uint32_t *link = crc_link(c, block);
	int slot = *link ? (int)(*link - 1) : crc_slot(c, no_evict);
	if (slot < 0)
		return;
	if (!*link) {
		link = &c->bucket[crc_hash(c, block)];
		c->key[slot] = (uint32_t)block + 1;
		c->next[slot] = *link;
		*link = (uint32_t)slot + 1;
	}
	c->ref[slot] = 1;
	memcpy(c->crc + (size_t)slot * s->L.chunks_per_block, crc, 4ull * s->L.chunks_per_block);
}

/* Invariant 8: every cached block is owned by a cold object; the free
 * list and the chains account for every slot once. */
void store_crc_check(const struct store *s)
{
	const struct store_crc_cache *c = &s->crcs;
	uint32_t keyed = 0, chained = 0, free_slots = 0;
	for (uint32_t i = 0; i < c->used; i++) {
		if (!c->key[i])
			continue;
		keyed++;
		uint64_t b = c->key[i] - 1;
		BASALT_ASSERT(b < s->L.block_count && s->blocks[b].owner);
		BASALT_ASSERT(store_rec(s, s->blocks[b].owner)->hot == 0);
	}
	for (uint32_t i = 0; i <= c->mask && c->cap; i++)
		for (uint32_t p = c->bucket[i]; p; p = c->next[p - 1])
			chained++;
	for (uint32_t p = c->free_head; p; p = c->next[p - 1])
		free_slots++;
	BASALT_ASSERT(keyed == chained && keyed + free_slots == c->used);
}
