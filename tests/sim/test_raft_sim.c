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
#include "../unit/mon/raft_mem.h"

#define MAXN 5
#define MAX_MSGS 4096
#define FAULT_TICKS 500
#define SETTLE_TICKS 600

struct snode {
	struct raft_mem mem; /* first: the Raft ctx is the node */
	struct sim *sim;
	int id;
	bool up;
	int down_ticks;
	int group; /* partition */
};

struct smsg {
	struct raft_mem_msg q;
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
	uint64_t h = raft_mem_hash(e->data, e->len, e->type + 1);
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

/* Called by raft_mem after each applied entry. */
static void on_apply(struct raft_mem *m, const struct raft_entry *e)
{
	struct snode *n = (struct snode *)m;
	struct sim *s = n->sim;
	if (m->out_of_order || m->misuse)
		FAIL(s, "seed %" PRIu64 ": node %d applied %" PRIu64 " out of order, or "
			"appended past its log",
		     s->seed, n->id, e->index);
	record_committed(s, e, n->id);
	/* The leader that proposed it tells the client: acknowledged. */
	if (e->type == RAFT_ENTRY_COMMAND && raft_role(m->r) == RAFT_LEADER &&
	    e->term == raft_term(m->r)) {
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
				s->now, n->id, raft_term(m->r), cmd, e->index);
	}
}

/* --- the network ---------------------------------------------------------------- */

static void net_enqueue(struct sim *s, const struct raft_msg *m, uint64_t delay)
{
	if (s->nmsgs == MAX_MSGS)
		return; /* a full network drops */
	struct smsg *q = &s->msgs[s->nmsgs++];
	raft_mem_msg_copy(&q->q, m);
	q->due = s->now + delay;
	q->order = rnd(s);
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
	if (raft_role(n->mem.r) != RAFT_LEADER)
		return;
	uint64_t term = raft_term(n->mem.r);
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
	for (uint64_t i = raft_snapshot_index(n->mem.r) + 1; i < s->ncommitted; i++) {
		if (!s->committed[i].set)
			continue;
		if (raft_entry_term(n->mem.r, i) != s->committed[i].term)
			FAIL(s, "seed %" PRIu64 ": new leader %d (term %" PRIu64
				") lacks committed entry %" PRIu64,
			     s->seed, n->id, term, i);
	}
}

static const struct raft_io_ops io_ops = { io_send, io_changed };

/* --- nodes ------------------------------------------------------------------------ */

static void node_boot(struct sim *s, struct snode *n)
{
	struct raft_params p = { .id = n->id, .n_nodes = s->n, .election_ticks = 10,
				 .heartbeat_ticks = 2, .snapshot_every = 16,
				 .max_append = 8, .seed = s->seed * 31 + s->now,
				 .pre_vote = s->seed % 4 < 2 }; /* with both node counts */
	n->mem.on_apply = on_apply;
	if (raft_mem_boot(&n->mem, &p, &io_ops))
		FAIL(s, "seed %" PRIu64 ": node %d cannot boot", s->seed, n->id);
	n->up = true;
}

static void node_crash(struct snode *n)
{
	raft_mem_crash(&n->mem);
	n->up = false;
}

/* Logs that share an entry (same index and term) share all before it. */
static void check_log_matching(struct sim *s)
{
	for (int a = 0; a < s->n; a++) {
		for (int b = a + 1; b < s->n; b++) {
			struct snode *x = &s->nodes[a], *y = &s->nodes[b];
			if (!x->up || !y->up)
				continue;
			uint64_t lo = raft_snapshot_index(x->mem.r) > raft_snapshot_index(y->mem.r)
					      ? raft_snapshot_index(x->mem.r)
					      : raft_snapshot_index(y->mem.r);
			uint64_t hi = raft_last_index(x->mem.r) < raft_last_index(y->mem.r)
					      ? raft_last_index(x->mem.r)
					      : raft_last_index(y->mem.r);
			bool matched = false;
			for (uint64_t i = hi; i > lo; i--) {
				bool same = raft_entry_term(x->mem.r, i) == raft_entry_term(y->mem.r, i);
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
		struct raft_mem_msg *q = &batch[i].q;
		struct snode *to = &s->nodes[q->m.to], *from = &s->nodes[q->m.from];
		if (to->up && to->group == from->group)
			raft_step(to->mem.r, &q->m);
		raft_mem_msg_free(q);
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
		if (!n->up || raft_role(n->mem.r) != RAFT_LEADER)
			continue;
		uint8_t cmd[24];
		uint64_t id = ++s->next_cmd, index;
		memcpy(cmd, &id, 8);
		memcpy(cmd + 8, &s->seed, 8);
		memcpy(cmd + 16, &s->now, 8);
		raft_propose(n->mem.r, cmd, sizeof(cmd), &index);
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
			raft_tick(n->mem.r);
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
		if (raft_role(n->mem.r) == RAFT_LEADER) {
			leaders++;
			if (raft_commit_index(n->mem.r) != raft_last_index(n->mem.r) ||
			    n->mem.applied != raft_last_index(n->mem.r))
				return false;
		}
		if (applied == UINT64_MAX) {
			applied = n->mem.applied;
			hash = n->mem.hash;
		} else if (n->mem.applied != applied || n->mem.hash != hash) {
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
		s->nodes[i].mem.dur.vote = s->nodes[i].mem.cur.vote = RAFT_NO_VOTE;
		s->nodes[i].mem.id = i;
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
	uint64_t top = s->nodes[0].mem.applied;
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
			seed, n, t, raft_term(s->nodes[0].mem.r), top, s->nacked, s->next_cmd);
	for (int i = 0; i < n; i++) {
		if (s->nodes[i].up)
			node_crash(&s->nodes[i]);
		raft_mem_log_free(&s->nodes[i].mem.dur);
	}
	for (size_t i = 0; i < s->nmsgs; i++)
		raft_mem_msg_free(&s->msgs[i].q);
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
