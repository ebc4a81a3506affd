/* Deterministic simulation of the Raft core: 3 or 5 nodes in one process,
 * a message network with loss, delay (so reordering) and duplication,
 * partitions that come and go, and crashes that lose everything not synced,
 * all from one seed. Checked at every step:
 *   - at most one leader per term (election safety);
 *   - an entry, once applied anywhere, is the same entry everywhere and
 *     forever (state machine safety: committed entries never change);
 *   - every node applies entries in index order with no gaps;
 *   - a new leader holds every entry applied anywhere (leader completeness);
 *   - logs that agree on an entry agree on everything before (log matching).
 * Then faults stop and the cluster must converge: one leader, every node
 * applies the same entries, every acknowledged proposal is among them, and
 * a fresh proposal commits everywhere.
 *
 *   RAFT_SIM_SEEDS=N (default 10000)   RAFT_SIM_SEED=S replays one seed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mon/raft.h"

#define MAXN 5
#define MAX_MSGS 4096
#define FAULT_TICKS 500
#define SETTLE_TICKS 600

struct slog {
	uint64_t term;
	int vote;
	uint64_t snap_index, snap_term;
	uint8_t *snap;
	size_t snap_len;
	struct raft_entry *e;
	size_t n, cap;
};

struct snode {
	struct sim *sim;
	int id;
	bool up;
	int down_ticks;
	struct raft *r;
	struct slog cur, dur; /* written, and durable (synced) */
	uint64_t applied;     /* the state machine */
	uint64_t hash;
	int group;	      /* partition */
	bool was_leader;
};

struct smsg {
	struct raft_msg m;
	struct raft_entry *entries;
	uint8_t *snap;
	uint64_t due;
	uint64_t order;
};

struct committed {
	uint64_t term;
	uint64_t hash;
	uint64_t cmd; /* the command's id, 0 for a no-op */
	bool set;
};

struct sim {
	uint64_t seed, rng, now;
	int n;
	struct snode nodes[MAXN];
	struct smsg *msgs;
	size_t nmsgs;
	struct committed *committed;
	uint64_t ncommitted;
	int *leaders; /* by term */
	uint64_t nleaders;
	uint64_t *acked;
	size_t nacked, capacked;
	uint64_t next_cmd;
	bool faults;
	char failure[512];
};

static uint64_t rnd(struct sim *s)
{
	uint64_t z = (s->rng += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

#define FAIL(s, ...)                                                           \
	do {                                                                   \
		if (!(s)->failure[0])                                          \
			snprintf((s)->failure, sizeof((s)->failure), __VA_ARGS__); \
	} while (0)

static uint64_t hash_data(const uint8_t *d, size_t len, uint64_t h)
{
	for (size_t i = 0; i < len; i++)
		h = (h ^ d[i]) * 0x100000001B3ULL;
	return h;
}

/* --- storage with a volatile layer ------------------------------------------ */

static void slog_free(struct slog *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->e[i].data);
	free(l->e);
	free(l->snap);
	memset(l, 0, sizeof(*l));
	l->vote = RAFT_NO_VOTE;
}

static void slog_copy(struct slog *dst, const struct slog *src)
{
	slog_free(dst);
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
		memcpy(dst->snap, src->snap, src->snap_len);
	}
}

static int st_save_term_vote(void *ctx, uint64_t term, int vote)
{
	struct snode *n = ctx;
	n->cur.term = term;
	n->cur.vote = vote;
	return 0;
}

static int st_append(void *ctx, const struct raft_entry *entries, size_t count)
{
	struct snode *n = ctx;
	struct slog *l = &n->cur;
	if (!count)
		return 0;
	uint64_t first = entries[0].index;
	while (l->n && l->e[l->n - 1].index >= first) {
		free(l->e[l->n - 1].data);
		l->n--;
	}
	if (l->snap_index + l->n + 1 != first) {
		FAIL(n->sim, "seed %" PRIu64 ": node %d appends %" PRIu64 " after %" PRIu64,
		     n->sim->seed, n->id, first, l->snap_index + l->n);
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

static int st_save_snapshot(void *ctx, uint64_t index, uint64_t term,
			    const uint8_t *data, size_t len, bool keep_tail)
{
	struct snode *n = ctx;
	struct slog *l = &n->cur;
	size_t drop = 0;
	if (keep_tail) {
		while (drop < l->n && l->e[drop].index <= index)
			free(l->e[drop++].data);
	} else {
		for (; drop < l->n; drop++)
			free(l->e[drop].data);
	}
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

static int st_sync(void *ctx)
{
	struct snode *n = ctx;
	slog_copy(&n->dur, &n->cur);
	return 0;
}

static const struct raft_storage_ops storage_ops = {
	st_save_term_vote, st_append, st_save_snapshot, st_sync,
};

/* --- the state machine: a running hash of applied commands -------------------- */

static void record_committed(struct sim *s, const struct raft_entry *e, int node)
{
	if (e->index >= s->ncommitted) {
		uint64_t cap = s->ncommitted ? s->ncommitted : 256;
		while (cap <= e->index)
			cap *= 2;
		s->committed = realloc(s->committed, cap * sizeof(*s->committed));
		memset(s->committed + s->ncommitted, 0,
		       (cap - s->ncommitted) * sizeof(*s->committed));
		s->ncommitted = cap;
	}
	struct committed *c = &s->committed[e->index];
	uint64_t h = hash_data(e->data, e->len, e->type + 1);
	if (!c->set) {
		c->set = true;
		c->term = e->term;
		c->hash = h;
		if (e->type == RAFT_ENTRY_COMMAND && e->len >= 8)
			memcpy(&c->cmd, e->data, 8);
	} else if (c->term != e->term || c->hash != h) {
		FAIL(s, "seed %" PRIu64 ": node %d applied a different entry %" PRIu64
			" (term %" PRIu64 ", was %" PRIu64 ")",
		     s->seed, node, e->index, e->term, c->term);
	}
}

static void fsm_apply(void *ctx, const struct raft_entry *e)
{
	struct snode *n = ctx;
	struct sim *s = n->sim;
	if (e->index != n->applied + 1)
		FAIL(s, "seed %" PRIu64 ": node %d applied %" PRIu64 " after %" PRIu64,
		     s->seed, n->id, e->index, n->applied);
	record_committed(s, e, n->id);
	n->applied = e->index;
	n->hash = hash_data(e->data, e->len, n->hash ^ e->index);
	/* The leader that proposed it tells the client: acknowledged. */
	if (e->type == RAFT_ENTRY_COMMAND && raft_role(n->r) == RAFT_LEADER &&
	    e->term == raft_term(n->r)) {
		uint64_t cmd;
		memcpy(&cmd, e->data, sizeof(cmd));
		if (s->nacked == s->capacked) {
			s->capacked = s->capacked ? 2 * s->capacked : 64;
			s->acked = realloc(s->acked, s->capacked * sizeof(uint64_t));
		}
		s->acked[s->nacked++] = cmd;
		if (getenv("RAFT_SIM_VERBOSE"))
			fprintf(stderr, "t=%" PRIu64 " node %d (leader, term %" PRIu64
				") acks command %" PRIu64 " at index %" PRIu64 "\n",
				s->now, n->id, raft_term(n->r), cmd, e->index);
	}
}

static int fsm_snapshot(void *ctx, uint8_t **data, size_t *len)
{
	struct snode *n = ctx;
	*data = malloc(16);
	memcpy(*data, &n->applied, 8);
	memcpy(*data + 8, &n->hash, 8);
	*len = 16;
	return 0;
}

static int fsm_restore(void *ctx, const uint8_t *data, size_t len)
{
	struct snode *n = ctx;
	if (len != 16)
		return -1;
	memcpy(&n->applied, data, 8);
	memcpy(&n->hash, data + 8, 8);
	return 0;
}

static const struct raft_fsm_ops fsm_ops = { fsm_apply, fsm_snapshot, fsm_restore };

/* --- the network ---------------------------------------------------------------- */

static void net_enqueue(struct sim *s, const struct raft_msg *m, uint64_t delay)
{
	if (s->nmsgs == MAX_MSGS)
		return; /* a full network drops */
	struct smsg *q = &s->msgs[s->nmsgs++];
	memset(q, 0, sizeof(*q));
	q->m = *m;
	q->due = s->now + delay;
	q->order = rnd(s);
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

static void msg_free(struct smsg *q)
{
	for (size_t i = 0; i < q->m.n_entries; i++)
		free(q->entries[i].data);
	free(q->entries);
	free(q->snap);
}

static void io_send(void *ctx, const struct raft_msg *m)
{
	struct snode *n = ctx;
	struct sim *s = n->sim;
	if (s->faults && rnd(s) % 100 < 5)
		return; /* lost */
	net_enqueue(s, m, 1 + rnd(s) % (s->faults ? 4 : 2));
	if (s->faults && rnd(s) % 100 < 3)
		net_enqueue(s, m, 1 + rnd(s) % 6); /* duplicated */
}

/* Election safety and leader completeness, checked whenever roles move. */
static void io_changed(void *ctx)
{
	struct snode *n = ctx;
	struct sim *s = n->sim;
	if (raft_role(n->r) != RAFT_LEADER)
		return;
	uint64_t term = raft_term(n->r);
	if (term >= s->nleaders) {
		uint64_t cap = s->nleaders ? s->nleaders : 64;
		while (cap <= term)
			cap *= 2;
		s->leaders = realloc(s->leaders, cap * sizeof(int));
		for (uint64_t i = s->nleaders; i < cap; i++)
			s->leaders[i] = -1;
		s->nleaders = cap;
	}
	if (s->leaders[term] >= 0 && s->leaders[term] != n->id)
		FAIL(s, "seed %" PRIu64 ": two leaders in term %" PRIu64 ": %d and %d",
		     s->seed, term, s->leaders[term], n->id);
	s->leaders[term] = n->id;
	for (uint64_t i = raft_snapshot_index(n->r) + 1; i < s->ncommitted; i++) {
		if (!s->committed[i].set)
			continue;
		if (raft_entry_term(n->r, i) != s->committed[i].term)
			FAIL(s, "seed %" PRIu64 ": new leader %d (term %" PRIu64
				") lacks committed entry %" PRIu64,
			     s->seed, n->id, term, i);
	}
}

static const struct raft_io_ops io_ops = { io_send, io_changed };

/* --- nodes ------------------------------------------------------------------------ */

static void node_boot(struct sim *s, struct snode *n)
{
	slog_copy(&n->cur, &n->dur);
	n->applied = 0;
	n->hash = 0;
	struct raft_params p = { .id = n->id, .n_nodes = s->n, .election_ticks = 10,
				 .heartbeat_ticks = 2, .snapshot_every = 16,
				 .max_append = 8, .seed = s->seed * 31 + s->now };
	struct raft_boot b = { .term = n->dur.term, .vote = n->dur.vote,
			       .snap_index = n->dur.snap_index, .snap_term = n->dur.snap_term,
			       .snap_data = n->dur.snap, .snap_len = n->dur.snap_len,
			       .entries = n->dur.e, .n_entries = n->dur.n };
	if (raft_create(&p, &b, &storage_ops, &fsm_ops, &io_ops, n, &n->r))
		FAIL(s, "seed %" PRIu64 ": node %d cannot boot", s->seed, n->id);
	n->up = true;
}

static void node_crash(struct snode *n)
{
	raft_destroy(n->r);
	n->r = NULL;
	n->up = false;
	slog_free(&n->cur); /* everything not synced is gone */
}

/* Logs that share an entry (same index and term) share all before it. */
static void check_log_matching(struct sim *s)
{
	for (int a = 0; a < s->n; a++) {
		for (int b = a + 1; b < s->n; b++) {
			struct snode *x = &s->nodes[a], *y = &s->nodes[b];
			if (!x->up || !y->up)
				continue;
			uint64_t lo = raft_snapshot_index(x->r) > raft_snapshot_index(y->r)
					      ? raft_snapshot_index(x->r)
					      : raft_snapshot_index(y->r);
			uint64_t hi = raft_last_index(x->r) < raft_last_index(y->r)
					      ? raft_last_index(x->r)
					      : raft_last_index(y->r);
			bool matched = false;
			for (uint64_t i = hi; i > lo; i--) {
				bool same = raft_entry_term(x->r, i) == raft_entry_term(y->r, i);
				if (matched && !same)
					FAIL(s, "seed %" PRIu64 ": logs of %d and %d differ at %" PRIu64
						" below a shared entry",
					     s->seed, a, b, i);
				matched = matched || same;
			}
		}
	}
}

/* --- one tick ---------------------------------------------------------------------- */

static int cmp_msg(const void *a, const void *b)
{
	const struct smsg *x = a, *y = b;
	if (x->due != y->due)
		return x->due < y->due ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static void deliver(struct sim *s)
{
	qsort(s->msgs, s->nmsgs, sizeof(*s->msgs), cmp_msg);
	size_t due = 0;
	while (due < s->nmsgs && s->msgs[due].due <= s->now)
		due++;
	struct smsg *batch = malloc((due ? due : 1) * sizeof(*batch));
	memcpy(batch, s->msgs, due * sizeof(*batch));
	memmove(s->msgs, s->msgs + due, (s->nmsgs - due) * sizeof(*s->msgs));
	s->nmsgs -= due;
	for (size_t i = 0; i < due; i++) {
		struct smsg *q = &batch[i];
		struct snode *to = &s->nodes[q->m.to], *from = &s->nodes[q->m.from];
		if (to->up && to->group == from->group)
			raft_step(to->r, &q->m);
		msg_free(q);
	}
	free(batch);
}

static void faults(struct sim *s)
{
	uint64_t x = rnd(s) % 1000;
	if (x < 10) { /* a new partition, up to three sides */
		for (int i = 0; i < s->n; i++)
			s->nodes[i].group = (int)(rnd(s) % 3);
	} else if (x < 22) { /* heal */
		for (int i = 0; i < s->n; i++)
			s->nodes[i].group = 0;
	} else if (x < 40) { /* a crash */
		struct snode *n = &s->nodes[rnd(s) % (uint64_t)s->n];
		if (n->up) {
			node_crash(n);
			n->down_ticks = 5 + (int)(rnd(s) % 40);
		}
	}
}

static void propose(struct sim *s)
{
	for (int i = 0; i < s->n; i++) {
		struct snode *n = &s->nodes[i];
		if (!n->up || raft_role(n->r) != RAFT_LEADER)
			continue;
		uint8_t cmd[24];
		uint64_t id = ++s->next_cmd, index;
		memcpy(cmd, &id, 8);
		memcpy(cmd + 8, &s->seed, 8);
		memcpy(cmd + 16, &s->now, 8);
		raft_propose(n->r, cmd, sizeof(cmd), &index);
	}
}

static void tick(struct sim *s)
{
	s->now++;
	if (s->faults)
		faults(s);
	for (int i = 0; i < s->n; i++) {
		struct snode *n = &s->nodes[i];
		if (!n->up && --n->down_ticks <= 0)
			node_boot(s, n);
		if (n->up)
			raft_tick(n->r);
	}
	if (rnd(s) % 3 == 0)
		propose(s);
	deliver(s);
	if (s->now % 25 == 0)
		check_log_matching(s);
}

/* One leader whose whole log (its no-op included) is committed, and every
 * node has applied exactly that log. */
static bool converged(struct sim *s)
{
	int leaders = 0;
	uint64_t applied = UINT64_MAX, hash = 0;
	for (int i = 0; i < s->n; i++) {
		struct snode *n = &s->nodes[i];
		if (!n->up)
			return false;
		if (raft_role(n->r) == RAFT_LEADER) {
			leaders++;
			if (raft_commit_index(n->r) != raft_last_index(n->r) ||
			    n->applied != raft_last_index(n->r))
				return false;
		}
		if (applied == UINT64_MAX) {
			applied = n->applied;
			hash = n->hash;
		} else if (n->applied != applied || n->hash != hash) {
			return false;
		}
	}
	return leaders == 1 && applied > 0;
}

static void run_seed(uint64_t seed, int n)
{
	struct sim *s = calloc(1, sizeof(*s));
	s->seed = seed;
	s->rng = seed;
	s->n = n;
	s->msgs = calloc(MAX_MSGS, sizeof(*s->msgs));
	s->faults = true;
	for (int i = 0; i < n; i++) {
		s->nodes[i].sim = s;
		s->nodes[i].id = i;
		s->nodes[i].dur.vote = s->nodes[i].cur.vote = RAFT_NO_VOTE;
		node_boot(s, &s->nodes[i]);
	}
	for (unsigned t = 0; t < FAULT_TICKS && !s->failure[0]; t++)
		tick(s);
	/* Faults stop: everything must come back together. */
	s->faults = false;
	for (int i = 0; i < n; i++) {
		s->nodes[i].group = 0;
		if (!s->nodes[i].up)
			s->nodes[i].down_ticks = 1;
	}
	unsigned t;
	for (t = 0; t < SETTLE_TICKS && !s->failure[0]; t++) {
		tick(s);
		if (t > 50 && converged(s))
			break;
	}
	if (!s->failure[0] && !converged(s))
		FAIL(s, "seed %" PRIu64 ": no convergence after faults stopped", seed);
	/* Every acknowledged command is in the converged state (as seen by
	 * the global record of applied entries, which all nodes agree on). */
	uint64_t top = s->nodes[0].applied;
	uint8_t *in_state = calloc(s->next_cmd + 1, 1);
	for (uint64_t i = 1; i <= top && i < s->ncommitted; i++)
		if (s->committed[i].set && s->committed[i].cmd <= s->next_cmd)
			in_state[s->committed[i].cmd] = 1;
	for (size_t a = 0; a < s->nacked && !s->failure[0]; a++)
		if (!in_state[s->acked[a]])
			FAIL(s, "seed %" PRIu64 ": acknowledged command %" PRIu64 " lost", seed,
			     s->acked[a]);
	free(in_state);
	if (getenv("RAFT_SIM_VERBOSE"))
		fprintf(stderr, "seed %" PRIu64 " (%d nodes): settled after %u ticks, term %"
			PRIu64 ", %" PRIu64 " applied, %zu acknowledged, %" PRIu64 " proposed\n",
			seed, n, t, raft_term(s->nodes[0].r), top, s->nacked, s->next_cmd);
	for (int i = 0; i < n; i++) {
		if (s->nodes[i].up)
			node_crash(&s->nodes[i]);
		slog_free(&s->nodes[i].dur);
	}
	for (size_t i = 0; i < s->nmsgs; i++)
		msg_free(&s->msgs[i]);
	free(s->msgs);
	free(s->committed);
	free(s->leaders);
	free(s->acked);
	if (s->failure[0])
		fail_msg("%s (replay with RAFT_SIM_SEED=%" PRIu64 ")", s->failure, seed);
	free(s);
}

static void test_raft_many_seeds(void **state)
{
	(void)state;
	const char *one = getenv("RAFT_SIM_SEED");
	if (one) {
		uint64_t seed = strtoull(one, NULL, 10);
		run_seed(seed, seed % 2 ? 5 : 3);
		return;
	}
	const char *env = getenv("RAFT_SIM_SEEDS");
	unsigned seeds = env ? (unsigned)atoi(env) : 10000;
	for (unsigned i = 1; i <= seeds; i++)
		run_seed(i, i % 2 ? 5 : 3);
}

static void test_single_node(void **state)
{
	(void)state;
	for (uint64_t seed = 1; seed <= 20; seed++)
		run_seed(seed, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_node),
		cmocka_unit_test(test_raft_many_seeds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
