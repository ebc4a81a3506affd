/* Per placement group bookkeeping in the store: every object sits on the
 * list of its pool's PG, and each PG keeps the count and written bytes of
 * its live objects, updated as records apply. Beacons read the counts and
 * peering, scrub and purges walk one PG's list, so neither costs a walk
 * of the whole store (store_int.h, invariant 7).
 *
 * The lists link records by uint32 index (pg_next, pg_prev), so a cold
 * object costs them 8 bytes; what a cold object counts for follows from
 * its record (it exists, has a block, and its chunks are its bitmap's),
 * and a hot one keeps what it counted for in acct_*.
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

static void pg_list_add(struct store *s, struct store_pg_index *pg, uint32_t i)
{
	struct store_rec *r = store_rec(s, i);
	r->pg_next = 0;
	r->pg_prev = pg->last;
	if (pg->last)
		store_rec(s, pg->last)->pg_next = i;
	else
		pg->first = i;
	pg->last = i;
}

static void pg_list_del(struct store *s, struct store_pg_index *pg, uint32_t i)
{
	struct store_rec *r = store_rec(s, i);
	if (r->pg_prev)
		store_rec(s, r->pg_prev)->pg_next = r->pg_next;
	else
		pg->first = r->pg_next;
	if (r->pg_next)
		store_rec(s, r->pg_next)->pg_prev = r->pg_prev;
	else
		pg->last = r->pg_prev;
	r->pg_next = r->pg_prev = 0;
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
	s->pools[s->n_pools] = (struct store_pool_index){ .pool = pool, .pgs = pg };
	return &s->pools[s->n_pools++];
}

int store_pg_link(struct store *s, uint32_t i)
{
	struct object_id oid;
	store_rec_oid(store_rec(s, i), &oid);
	struct store_pool_index *pi = pool_find(s, oid.pool);
	if (!pi && !(pi = pool_add(s, oid.pool)))
		return -ENOMEM;
	pg_list_add(s, pool_pg_of(pi, &oid), i);
	return 0;
}

void store_pg_unlink(struct store *s, uint32_t i)
{
	struct store_rec *r = store_rec(s, i);
	const struct store_obj *o = r->hot ? s->hot_tab[r->hot] : NULL;
	BASALT_ASSERT(!o || (!o->acct_live && !o->acct_chunks && !o->acct_exists &&
		      !o->acct_block));
	struct object_id oid;
	store_rec_oid(r, &oid);
	pg_list_del(s, pool_pg_of(pool_find(s, oid.pool), &oid), i);
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

/* What cold record R counts for in its PG. */
static void cold_acct(const struct store *s, const struct store_rec *r, bool *live,
		      uint32_t *chunks)
{
	*live = r->inode != OBJECT_INODE_PG_META;
	*chunks = 0;
	for (uint32_t c = 0; *live && c < s->L.chunks_per_block; c++)
		*chunks += store_bit_test(r->bitmap, c);
}

/* What record I counts for in its PG, hot or cold. */
static void rec_acct(const struct store *s, uint32_t i, bool *live, uint32_t *chunks)
{
	const struct store_rec *r = store_rec(s, i);
	if (r->hot) {
		*live = s->hot_tab[r->hot]->acct_live;
		*chunks = s->hot_tab[r->hot]->acct_chunks;
	} else {
		cold_acct(s, r, live, chunks);
	}
}

void store_pg_acct_init(const struct store *s, uint32_t i, struct store_obj *o)
{
	bool live;
	uint32_t chunks;
	cold_acct(s, store_rec(s, i), &live, &chunks);
	o->acct_exists = o->acct_block = true;
	o->acct_live = live;
	o->acct_chunks = (uint16_t)chunks;
}

void store_pg_cold(struct store *s, uint32_t i, bool add)
{
	const struct store_rec *r = store_rec(s, i);
	bool live;
	uint32_t chunks;
	cold_acct(s, r, &live, &chunks);
	struct object_id oid;
	store_rec_oid(r, &oid);
	struct store_pg_index *pg = pool_pg_of(pool_find(s, oid.pool), &oid);
	int64_t d = add ? 1 : -1;
	s->objects_live += (uint64_t)d;
	s->objects_with_block += (uint64_t)d;
	pg->objects_live += (uint64_t)(d * live);
	pg->chunks += (uint64_t)(d * chunks);
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
	for (uint32_t k = 0; k < pool_lists(pi); k++) {
		uint32_t i = pi->pgs[k].first;
		while (i) {
			struct store_rec *r = store_rec(s, i);
			uint32_t next_i = r->pg_next;
			struct object_id oid;
			bool live;
			uint32_t chunks;
			store_rec_oid(r, &oid);
			rec_acct(s, i, &live, &chunks);
			struct store_pg_index *to = pool_pg_of(&next, &oid);
			pg_list_add(s, to, i);
			to->objects_live += live;
			to->chunks += chunks;
			s->stats.pg_sorted++;
			i = next_i;
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
		  int (*visit)(struct store *s, uint32_t rec, void *arg), void *arg)
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
		for (uint32_t r = pi->pgs[i].first; r;) {
			uint32_t next = store_rec(s, r)->pg_next; /* VISIT may not free R */
			s->stats.list_visited++;
			rc = visit(s, r, arg);
			if (rc)
				return rc;
			r = next;
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
			uint32_t prev = 0;
			for (uint32_t ri = pi->pgs[k].first; ri; prev = ri, ri = store_rec(s, ri)->pg_next) {
				const struct store_rec *r = store_rec(s, ri);
				struct object_id oid;
				store_rec_oid(r, &oid);
				BASALT_ASSERT(r->pg_prev == prev && r->hot != STORE_REC_NONE);
				BASALT_ASSERT(oid.pool == pi->pool);
				BASALT_ASSERT(!pi->pg_num || object_pg(&oid, pi->pg_num) == k);
				const struct store_obj *o = r->hot ? s->hot_tab[r->hot] : NULL;
				bool a_live, a_exists = true, a_block = true;
				uint32_t a_chunks;
				rec_acct(s, ri, &a_live, &a_chunks);
				if (o) {
					BASALT_ASSERT(o->acct_live == counts_as_data(o));
					BASALT_ASSERT(o->acct_chunks ==
						      (o->acct_live ? written_chunks(s, o) : 0));
					BASALT_ASSERT(o->acct_exists == o->exists);
					BASALT_ASSERT(o->acct_block == (o->block != STORE_NO_BLOCK));
					a_exists = o->exists;
					a_block = o->acct_block;
				}
				live += a_live;
				chunks += a_chunks;
				exist += a_exists;
				with_block += a_block;
				linked++;
			}
			BASALT_ASSERT(prev == pi->pgs[k].last);
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
