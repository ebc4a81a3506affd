/* Per placement group bookkeeping in the store: every object sits on the
 * list of its pool's PG, and each PG keeps the count and written bytes of
 * its live objects, updated as records apply. Beacons read the counts and
 * peering, scrub and purges walk one PG's list, so neither costs a walk
 * of the whole store (store_int.h, invariant 7).
 *
 * The PG's own records (complete marks) count for nothing.
 * The store learns a pool's pg_num from whoever asks about it (the OSD,
 * from its map): until then the pool's objects share one list. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "store_int.h"

static uint32_t pool_lists(const struct store_pool_index *pi)
{
	return pi->pg_num ? pi->pg_num : 1;
}

static struct store_pool_index *pool_find(struct store *s, uint32_t pool)
{
	if (s->pool_last < s->n_pools && s->pools[s->pool_last].pool == pool)
		return &s->pools[s->pool_last];
	for (uint32_t i = 0; i < s->n_pools; i++) {
		if (s->pools[i].pool == pool) {
			s->pool_last = i;
			return &s->pools[i];
		}
	}
	return NULL;
}

static struct store_pg_index *pool_pg_of(struct store_pool_index *pi,
					 const struct object_id *oid)
{
	return &pi->pgs[pi->pg_num ? object_pg(oid, pi->pg_num) : 0];
}

static struct store_pool_index *pool_add(struct store *s, uint32_t pool)
{
	struct store_pg_index *pg = calloc(1, sizeof(*pg));
	struct store_pool_index *n = realloc(s->pools, (s->n_pools + 1) * sizeof(*n));
	if (n)
		s->pools = n;
	if (!n || !pg) {
		free(pg);
		return NULL;
	}
	list_init(&pg->objects);
	s->pools[s->n_pools] = (struct store_pool_index){ .pool = pool, .pgs = pg };
	return &s->pools[s->n_pools++];
}

int store_pg_link(struct store *s, struct store_obj *o)
{
	struct store_pool_index *pi = pool_find(s, o->oid.pool);
	if (!pi && !(pi = pool_add(s, o->oid.pool)))
		return -ENOMEM;
	list_add_tail(&pool_pg_of(pi, &o->oid)->objects, &o->pg_node);
	return 0;
}

void store_pg_unlink(struct store *s, struct store_obj *o)
{
	BASALT_ASSERT(!o->acct_live && !o->acct_chunks && !o->acct_exists && !o->acct_block);
	list_del(&o->pg_node);
	(void)s;
}

/* The chunks a reader would find written: the block's map (if it has a
 * block) and every overlay. */
static uint32_t written_chunks(const struct store *s, const struct store_obj *o)
{
	uint8_t bm[STORE_MAX_CHUNKS / 8] = { 0 };
	if (o->block != STORE_NO_BLOCK)
		memcpy(bm, o->bitmap, sizeof(bm));
	for (const struct store_overlay *ov = o->overlays; ov; ov = ov->next)
		for (uint32_t c = ov->first_chunk; c < ov->first_chunk + ov->nchunks; c++)
			store_bit_set(bm, c);
	uint32_t n = 0;
	for (uint32_t c = 0; c < s->L.chunks_per_block; c++)
		n += store_bit_test(bm, c);
	return n;
}

uint32_t store_obj_written_chunks(const struct store *s, const struct store_obj *o)
{
	return written_chunks(s, o);
}

/* A PG's own records (inode OBJECT_INODE_PG_META) are no data: they count
 * for nothing. */
static bool counts_as_data(const struct store_obj *o)
{
	return o->exists && o->oid.inode != OBJECT_INODE_PG_META;
}

void store_pg_account(struct store *s, struct store_obj *o)
{
	bool has_block = o->block != STORE_NO_BLOCK;
	s->objects_live += (uint64_t)o->exists - o->acct_exists;
	s->objects_with_block += (uint64_t)has_block - o->acct_block;
	o->acct_exists = o->exists;
	o->acct_block = has_block;
	bool live = counts_as_data(o);
	uint32_t chunks = live ? written_chunks(s, o) : 0;
	if (live == o->acct_live && chunks == o->acct_chunks)
		return;
	struct store_pool_index *pi = pool_find(s, o->oid.pool);
	BASALT_ASSERT(pi != NULL); /* 7: linked when it was made */
	struct store_pg_index *pg = pool_pg_of(pi, &o->oid);
	pg->objects_live += (uint64_t)live - o->acct_live;
	pg->chunks += (uint64_t)chunks - o->acct_chunks;
	o->acct_live = live;
	o->acct_chunks = (uint16_t)chunks;
}

/* Sorts POOL's objects onto PG_NUM lists (once per pool and pg_num). */
static int pool_split(struct store *s, struct store_pool_index *pi, uint32_t pg_num)
{
	struct store_pg_index *pgs = calloc(pg_num ? pg_num : 1, sizeof(*pgs));
	if (!pgs)
		return -ENOMEM;
	struct store_pool_index next = { .pool = pi->pool, .pg_num = pg_num, .pgs = pgs };
	for (uint32_t i = 0; i < pool_lists(&next); i++)
		list_init(&pgs[i].objects);
	for (uint32_t i = 0; i < pool_lists(pi); i++) {
		struct list_node *head = &pi->pgs[i].objects;
		while (!list_empty(head)) {
			struct store_obj *o = list_entry(head->next, struct store_obj, pg_node);
			list_del(&o->pg_node);
			struct store_pg_index *to = pool_pg_of(&next, &o->oid);
			list_add_tail(&to->objects, &o->pg_node);
			to->objects_live += o->acct_live;
			to->chunks += o->acct_chunks;
			s->stats.pg_sorted++;
		}
	}
	free(pi->pgs);
	*pi = next;
	return 0;
}

/* POOL's index with PG_NUM lists, sorting its objects anew if it had
 * another pg_num; NULL when it has no objects or no memory (*RC). */
static struct store_pool_index *pool_for(struct store *s, uint32_t pool, uint32_t pg_num,
					 int *rc)
{
	*rc = 0;
	struct store_pool_index *pi = pool_find(s, pool);
	if (pi && pi->pg_num != pg_num)
		*rc = pool_split(s, pi, pg_num);
	return *rc ? NULL : pi;
}

int store_pg_usage(struct store *s, uint32_t pool, uint32_t pg_num, uint32_t pg,
		   uint64_t *objects, uint64_t *bytes)
{
	*objects = *bytes = 0;
	if (!pg_num || pg >= pg_num)
		return -EINVAL;
	int rc;
	struct store_pool_index *pi = pool_for(s, pool, pg_num, &rc);
	if (pi) {
		*objects = pi->pgs[pg].objects_live;
		*bytes = pi->pgs[pg].chunks * STORE_CHUNK;
	}
	return rc;
}

int store_pg_list(struct store *s, const struct store_list_filter *f,
		  int (*visit)(struct store *s, struct store_obj *o, void *arg), void *arg)
{
	int rc;
	struct store_pool_index *pi = f->pg_num ? pool_for(s, f->pool, f->pg_num, &rc)
						: pool_find(s, f->pool);
	if (!pi)
		return f->pg_num ? rc : 0;
	uint32_t first = f->pg_num ? f->pg : 0;
	uint32_t end = f->pg_num ? f->pg + 1 : pool_lists(pi);
	if (f->pg_num && f->pg >= f->pg_num)
		return -EINVAL;
	for (uint32_t i = first; i < end; i++) {
		struct list_node *pos;
		list_for_each(pos, &pi->pgs[i].objects) {
			struct store_obj *o = list_entry(pos, struct store_obj, pg_node);
			s->stats.list_visited++;
			rc = visit(s, o, arg);
			if (rc)
				return rc;
		}
	}
	return 0;
}

void store_pg_check(const struct store *s)
{
	uint64_t linked = 0, exist = 0, with_block = 0;
	for (uint32_t i = 0; i < s->n_pools; i++) {
		const struct store_pool_index *pi = &s->pools[i];
		for (uint32_t k = 0; k < pool_lists(pi); k++) {
			uint64_t live = 0, chunks = 0;
			const struct list_node *pos;
			list_for_each(pos, &pi->pgs[k].objects) {
				const struct store_obj *o =
					list_entry(pos, const struct store_obj, pg_node);
				BASALT_ASSERT(o->oid.pool == pi->pool);
				BASALT_ASSERT(!pi->pg_num || object_pg(&o->oid, pi->pg_num) == k);
				BASALT_ASSERT(o->acct_live == counts_as_data(o));
				BASALT_ASSERT(o->acct_chunks ==
					      (o->acct_live ? written_chunks(s, o) : 0));
				BASALT_ASSERT(o->acct_exists == o->exists);
				BASALT_ASSERT(o->acct_block == (o->block != STORE_NO_BLOCK));
				live += o->acct_live;
				chunks += o->acct_chunks;
				exist += o->exists;
				with_block += o->acct_block;
				linked++;
			}
			BASALT_ASSERT(live == pi->pgs[k].objects_live);
			BASALT_ASSERT(chunks == pi->pgs[k].chunks);
		}
	}
	BASALT_ASSERT(linked == s->objects);
	BASALT_ASSERT(exist == s->objects_live && with_block == s->objects_with_block);
}

void store_pg_free(struct store *s)
{
	for (uint32_t i = 0; i < s->n_pools; i++)
		free(s->pools[i].pgs);
	free(s->pools);
	s->pools = NULL;
	s->n_pools = 0;
}
