/* In-memory storage and state machine for Raft tests: what was written
 * (cur) and what was synced (dur) are kept apart, so a simulated crash can
 * lose exactly what a real one would. The state machine is a running hash
 * of the applied entries. A test embeds struct raft_mem first in its node,
 * and passes the node as the Raft ctx. */
#ifndef BASALT_TESTS_RAFT_MEM_H
#define BASALT_TESTS_RAFT_MEM_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mon/raft.h"

struct raft_mem_log {
	uint64_t term;
	int vote;
	uint64_t snap_index, snap_term;
	uint8_t *snap;
	size_t snap_len;
	struct raft_entry *e;
	size_t n, cap;
};

struct raft_mem {
	struct raft_mem_log cur, dur;
	uint64_t applied, hash;
	struct raft *r;
	int id;
	bool misuse;	   /* an append that does not follow the log */
	bool out_of_order; /* an entry applied that is not applied + 1 */
	/* Called after each applied entry (the simulation's checkers). */
	void (*on_apply)(struct raft_mem *m, const struct raft_entry *e);
};

static inline uint64_t raft_mem_hash(const uint8_t *d, size_t len, uint64_t h)
{
	for (size_t i = 0; i < len; i++)
		h = (h ^ d[i]) * 0x100000001B3ULL;
	return h;
}

static inline void raft_mem_log_free(struct raft_mem_log *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->e[i].data);
	free(l->e);
	free(l->snap);
	memset(l, 0, sizeof(*l));
	l->vote = RAFT_NO_VOTE;
}

static inline void raft_mem_log_copy(struct raft_mem_log *dst,
				     const struct raft_mem_log *src)
{
	raft_mem_log_free(dst);
	*dst = *src;
	dst->e = calloc(src->cap ? src->cap : 1, sizeof(*dst->e));
	for (size_t i = 0; i < src->n; i++) {
		dst->e[i] = src->e[i];
		dst->e[i].data = NULL;
		if (src->e[i].len) {
			dst->e[i].data = malloc(src->e[i].len);
			memcpy(dst->e[i].data, src->e[i].data, src->e[i].len);
		}
	}
	dst->snap = NULL;
	if (src->snap) {
		dst->snap = malloc(src->snap_len ? src->snap_len : 1);
		if (src->snap_len)
			memcpy(dst->snap, src->snap, src->snap_len);
	}
}

static inline int raft_mem_save_term_vote(void *ctx, uint64_t term, int vote)
{
	struct raft_mem *m = ctx;
	m->cur.term = term;
	m->cur.vote = vote;
	return 0;
}

static inline int raft_mem_append(void *ctx, const struct raft_entry *entries,
				  size_t count)
{
	struct raft_mem *m = ctx;
	struct raft_mem_log *l = &m->cur;
	if (!count)
		return 0;
	uint64_t first = entries[0].index;
	while (l->n && l->e[l->n - 1].index >= first) {
		free(l->e[l->n - 1].data);
		l->n--;
	}
	if (l->snap_index + l->n + 1 != first) {
		m->misuse = true;
		return -EINVAL;
	}
	if (l->n + count > l->cap) {
		l->cap = (l->n + count) * 2;
		l->e = realloc(l->e, l->cap * sizeof(*l->e));
	}
	for (size_t i = 0; i < count; i++) {
		l->e[l->n] = entries[i];
		l->e[l->n].data = NULL;
		if (entries[i].len) {
			l->e[l->n].data = malloc(entries[i].len);
			memcpy(l->e[l->n].data, entries[i].data, entries[i].len);
		}
		l->n++;
	}
	return 0;
}

static inline int raft_mem_save_snapshot(void *ctx, uint64_t index, uint64_t term,
					 const uint8_t *data, size_t len,
					 bool keep_tail)
{
	struct raft_mem *m = ctx;
	struct raft_mem_log *l = &m->cur;
	size_t drop = 0;
	while (drop < l->n && (!keep_tail || l->e[drop].index <= index))
		free(l->e[drop++].data);
	if (drop) {
		memmove(l->e, l->e + drop, (l->n - drop) * sizeof(*l->e));
		l->n -= drop;
	}
	free(l->snap);
	l->snap = malloc(len ? len : 1);
	if (len)
		memcpy(l->snap, data, len);
	l->snap_len = len;
	l->snap_index = index;
	l->snap_term = term;
	return 0;
}

static inline int raft_mem_sync(void *ctx)
{
	struct raft_mem *m = ctx;
	raft_mem_log_copy(&m->dur, &m->cur);
	return 0;
}

static inline void raft_mem_apply(void *ctx, const struct raft_entry *e)
{
	struct raft_mem *m = ctx;
	if (e->index != m->applied + 1)
		m->out_of_order = true;
	m->applied = e->index;
	m->hash = raft_mem_hash(e->data, e->len, m->hash ^ e->index);
	if (m->on_apply)
		m->on_apply(m, e);
}

static inline int raft_mem_snapshot(void *ctx, uint8_t **data, size_t *len)
{
	struct raft_mem *m = ctx;
	*data = malloc(16);
	memcpy(*data, &m->applied, 8);
	memcpy(*data + 8, &m->hash, 8);
	*len = 16;
	return 0;
}

static inline int raft_mem_restore(void *ctx, const uint8_t *data, size_t len)
{
	struct raft_mem *m = ctx;
	if (len != 16)
		return -EINVAL;
	memcpy(&m->applied, data, 8);
	memcpy(&m->hash, data + 8, 8);
	return 0;
}

static const struct raft_storage_ops raft_mem_storage = {
	raft_mem_save_term_vote, raft_mem_append, raft_mem_save_snapshot, raft_mem_sync,
};
static const struct raft_fsm_ops raft_mem_fsm = {
	raft_mem_apply, raft_mem_snapshot, raft_mem_restore,
};

/* A message owned by a test network: entries and snapshot deep-copied. */
struct raft_mem_msg {
	struct raft_msg m;
	struct raft_entry *entries;
	uint8_t *snap;
};

static inline void raft_mem_msg_copy(struct raft_mem_msg *q, const struct raft_msg *m)
{
	memset(q, 0, sizeof(*q));
	q->m = *m;
	if (m->n_entries) {
		q->entries = calloc(m->n_entries, sizeof(*q->entries));
		for (size_t i = 0; i < m->n_entries; i++) {
			q->entries[i] = m->entries[i];
			q->entries[i].data = NULL;
			if (m->entries[i].len) {
				q->entries[i].data = malloc(m->entries[i].len);
				memcpy(q->entries[i].data, m->entries[i].data, m->entries[i].len);
			}
		}
		q->m.entries = q->entries;
	}
	if (m->snap_len) {
		q->snap = malloc(m->snap_len);
		memcpy(q->snap, m->snap_data, m->snap_len);
		q->m.snap_data = q->snap;
	}
}

static inline void raft_mem_msg_free(struct raft_mem_msg *q)
{
	for (size_t i = 0; i < q->m.n_entries; i++)
		free(q->entries[i].data);
	free(q->entries);
	free(q->snap);
}

/* Boots M's Raft from its durable state (after a crash: cur = dur). */
static inline int raft_mem_boot(struct raft_mem *m, const struct raft_params *p,
				const struct raft_io_ops *io)
{
	raft_mem_log_copy(&m->cur, &m->dur);
	m->applied = 0;
	m->hash = 0;
	struct raft_boot b = { .term = m->dur.term, .vote = m->dur.vote,
			       .snap_index = m->dur.snap_index,
			       .snap_term = m->dur.snap_term, .snap_data = m->dur.snap,
			       .snap_len = m->dur.snap_len, .entries = m->dur.e,
			       .n_entries = m->dur.n };
	return raft_create(p, &b, &raft_mem_storage, &raft_mem_fsm, io, m, &m->r);
}

/* A crash: the Raft state is gone, and so is everything not synced. */
static inline void raft_mem_crash(struct raft_mem *m)
{
	raft_destroy(m->r);
	m->r = NULL;
	raft_mem_log_free(&m->cur);
}

#endif
