/* A model of what a crashed store may hold, shared by the simulated and
 * the real crash tests. Per object: a base state (a tag per 4 KiB chunk,
 * 0 = zeros) and the operations submitted since, in order, each pending,
 * acknowledged or failed. After a crash the object must equal its state
 * after some prefix of those operations that contains every acknowledged
 * one (writes to one object are applied in order and atomically); the
 * state found becomes the new base. */
#ifndef BASALT_TESTS_STORE_MODEL_H
#define BASALT_TESTS_STORE_MODEL_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "store_test_util.h"

#define MODEL_MAX_CHUNKS 32
#define MODEL_MAX_OPS 8192

enum model_state { MODEL_PENDING, MODEL_ACKED, MODEL_FAILED };

struct model_op {
	bool del;
	uint32_t first, n;
	uint64_t tag;
	enum model_state state;
};

struct model_obj {
	bool exists;
	uint64_t tags[MODEL_MAX_CHUNKS];
	struct model_op ops[MODEL_MAX_OPS];
	unsigned nops;
};

/* Appends an operation; returns its index, or -1 when the model is full. */
static inline int model_add(struct model_obj *m, bool del, uint32_t first,
			    uint32_t n, uint64_t tag)
{
	if (m->nops == MODEL_MAX_OPS)
		return -1;
	m->ops[m->nops] = (struct model_op){ del, first, n, tag, MODEL_PENDING };
	return (int)m->nops++;
}

static inline void model_state_after(const struct model_obj *m, unsigned k,
				     uint32_t chunks, bool *exists, uint64_t *tags)
{
	*exists = m->exists;
	memcpy(tags, m->tags, sizeof(m->tags));
	for (unsigned i = 0; i < k; i++) {
		const struct model_op *op = &m->ops[i];
		if (op->state == MODEL_FAILED)
			continue;
		if (op->del || op->n == chunks)
			memset(tags, 0, MODEL_MAX_CHUNKS * sizeof(uint64_t));
		*exists = !op->del;
		if (!op->del)
			for (uint32_t c = op->first; c < op->first + op->n; c++)
				tags[c] = op->tag;
	}
}

/* Checks what was read back (BUF of CHUNKS chunks, or NULL for a missing
 * object). 0 when it matches an allowed state (which becomes the base);
 * -1 with WHY otherwise. */
static inline int model_check(struct model_obj *m, uint32_t chunks,
			      const uint8_t *buf, char *why, size_t why_len)
{
	uint64_t seen[MODEL_MAX_CHUNKS] = { 0 };
	uint8_t want[4096] __attribute__((aligned(64)));
	for (uint32_t c = 0; buf && c < chunks; c++) {
		seen[c] = pattern_tag(buf + c * 4096);
		memset(want, 0, sizeof(want));
		if (seen[c])
			pattern_fill(want, 4096, seen[c], c);
		if (memcmp(want, buf + c * 4096, 4096)) {
			snprintf(why, why_len, "chunk %u holds garbage (tag %" PRIu64 ")",
				 c, seen[c]);
			return -1;
		}
	}
	unsigned must = 0;
	for (unsigned k = 0; k < m->nops; k++)
		if (m->ops[k].state == MODEL_ACKED)
			must = k + 1;
	for (unsigned k = m->nops + 1; k-- > must;) {
		bool e;
		uint64_t tags[MODEL_MAX_CHUNKS];
		model_state_after(m, k, chunks, &e, tags);
		if (e == (buf != NULL) && (!e || memcmp(tags, seen, sizeof(tags)) == 0)) {
			m->exists = e;
			memcpy(m->tags, tags, sizeof(tags));
			m->nops = 0;
			return 0;
		}
	}
	int n = snprintf(why, why_len,
			 "%s, %u ops since the last check, the first %u must be in; "
			 "read tags:", buf ? "exists" : "missing", m->nops, must);
	for (uint32_t c = 0; c < chunks && n > 0 && (size_t)n < why_len; c++)
		n += snprintf(why + n, why_len - (size_t)n, " %" PRIu64, seen[c]);
	return -1;
}

#endif
