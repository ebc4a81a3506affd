/* Scripted Raft scenarios with a network the test controls message by
 * message: a plain election and replication, the paper's Figure 8 (a
 * leader must not commit an old-term entry by counting replicas), a
 * follower brought up to date by InstallSnapshot, a partitioned leader
 * stepping down and losing its uncommitted entries, and PreVote keeping a
 * returning follower from deposing a working leader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>

#include "raft_mem.h"

#define N 5
#define QMAX 4096

struct tnode {
	struct raft_mem mem; /* first: the Raft ctx is the node */
	struct tnet *net;
};

struct tnet {
	struct tnode nodes[N];
	int n;
	struct raft_mem_msg q[QMAX];
	size_t nq;
	bool cut[N]; /* isolated: nothing in or out */
	size_t max_append;
	uint64_t snapshot_every;
	bool pre_vote;
};

static void tsend(void *ctx, const struct raft_msg *m)
{
	struct tnode *t = ctx;
	struct tnet *net = t->net;
	if (net->cut[m->from] || net->cut[m->to] || net->nq == QMAX)
		return;
	raft_mem_msg_copy(&net->q[net->nq++], m);
}

static const struct raft_io_ops tio = { tsend, NULL };

static void boot(struct tnet *net, int i)
{
	struct raft_params p = { .id = i, .n_nodes = net->n, .election_ticks = 10,
				 .heartbeat_ticks = 2, .snapshot_every = net->snapshot_every,
				 .max_append = net->max_append ? net->max_append : 8,
				 .seed = 77, .pre_vote = net->pre_vote };
	net->nodes[i].net = net;
	net->nodes[i].mem.id = i;
	assert_int_equal(raft_mem_boot(&net->nodes[i].mem, &p, &tio), 0);
}

static struct tnet *net_new(int n)
{
	struct tnet *net = calloc(1, sizeof(*net));
	net->n = n;
	for (int i = 0; i < n; i++)
		net->nodes[i].mem.dur.vote = RAFT_NO_VOTE;
	return net;
}

static void net_start(struct tnet *net)
{
	for (int i = 0; i < net->n; i++)
		boot(net, i);
}

static void net_free(struct tnet *net)
{
	for (size_t i = 0; i < net->nq; i++)
		raft_mem_msg_free(&net->q[i]);
	for (int i = 0; i < net->n; i++) {
		if (net->nodes[i].mem.r)
			raft_mem_crash(&net->nodes[i].mem);
		raft_mem_log_free(&net->nodes[i].mem.dur);
	}
	free(net);
}

static struct raft *R(struct tnet *net, int i)
{
	return net->nodes[i].mem.r;
}

/* Delivers queued messages (and what they cause) for up to ROUNDS rounds
 * while KEEP says so; others are dropped. */
static void deliver_rounds(struct tnet *net, bool (*keep)(const struct raft_msg *, void *),
			   void *arg, int max_rounds)
{
	for (int rounds = 0; rounds < max_rounds && net->nq; rounds++) {
		size_t count = net->nq;
		struct raft_mem_msg *batch = malloc(count * sizeof(*batch));
		memcpy(batch, net->q, count * sizeof(*batch));
		net->nq = 0;
		for (size_t i = 0; i < count; i++) {
			struct raft_msg *m = &batch[i].m;
			if (!net->cut[m->from] && !net->cut[m->to] && R(net, m->to) &&
			    (!keep || keep(m, arg)))
				raft_step(R(net, m->to), m);
			raft_mem_msg_free(&batch[i]);
		}
		free(batch);
	}
}

static void deliver(struct tnet *net, bool (*keep)(const struct raft_msg *, void *),
		    void *arg)
{
	deliver_rounds(net, keep, arg, 1000);
}

static void drop_all(struct tnet *net)
{
	for (size_t k = 0; k < net->nq; k++)
		raft_mem_msg_free(&net->q[k]);
	net->nq = 0;
}

static void deliver_all(struct tnet *net)
{
	deliver(net, NULL, NULL);
}

/* Ticks node I until it stands for election (its timeout is random). */
static void make_candidate(struct tnet *net, int i)
{
	uint64_t term = raft_term(R(net, i));
	for (int t = 0; t < 40 && raft_term(R(net, i)) == term; t++)
		raft_tick(R(net, i));
	assert_true(raft_term(R(net, i)) > term);
}

static uint64_t propose(struct tnet *net, int i, uint64_t id)
{
	uint64_t index;
	assert_int_equal(raft_propose(R(net, i), (uint8_t *)&id, sizeof(id), &index), 0);
	return index;
}

static void test_election_and_replication(void **state)
{
	(void)state;
	struct tnet *net = net_new(3);
	net_start(net);
	make_candidate(net, 0);
	deliver_all(net);
	assert_int_equal(raft_role(R(net, 0)), RAFT_LEADER);
	assert_int_equal(raft_leader(R(net, 1)), 0);
	uint64_t last = 0;
	for (uint64_t k = 1; k <= 5; k++)
		last = propose(net, 0, k);
	deliver_all(net);
	raft_tick(R(net, 0));
	raft_tick(R(net, 0)); /* a heartbeat carries the commit index */
	deliver_all(net);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(raft_commit_index(R(net, i)), last);
		assert_int_equal(net->nodes[i].mem.applied, last);
		assert_true(net->nodes[i].mem.hash == net->nodes[0].mem.hash);
	}
	/* A follower refuses proposals and names the leader. */
	uint64_t index;
	assert_int_equal(raft_propose(R(net, 1), (uint8_t *)"x", 1, &index), -EAGAIN);
	net_free(net);
}

struct only {
	int from, to;
	enum raft_msg_type type;
};

static bool keep_only(const struct raft_msg *m, void *arg)
{
	struct only *o = arg;
	return m->from == o->from && m->to == o->to && m->type == o->type;
}

static bool keep_votes(const struct raft_msg *m, void *arg)
{
	(void)arg;
	return m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_VOTE_RESP;
}

/* Appends and their answers between two nodes, nothing else. */
static bool keep_pair(const struct raft_msg *m, void *arg)
{
	const int *pair = arg;
	bool between = (m->from == pair[0] && m->to == pair[1]) ||
		       (m->from == pair[1] && m->to == pair[0]);
	return between && (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_APPEND_RESP);
}

/* Node I stands until it wins, with only votes delivered. */
static void win_election(struct tnet *net, int i)
{
	for (int tries = 0; tries < 5 && raft_role(R(net, i)) != RAFT_LEADER; tries++) {
		make_candidate(net, i);
		deliver(net, keep_votes, NULL);
	}
	assert_int_equal(raft_role(R(net, i)), RAFT_LEADER);
	drop_all(net); /* the test decides what the new leader's appends reach */
}

/* Figure 8: S0 leads term a and gets entry X onto S1 only, then crashes.
 * S4 wins the next term with S2 and S3 (X is not on them), appends its own
 * entry Y at X's index, tells nobody, crashes. S0 restarts, wins a later
 * term, and copies X to S2: X is now on a majority, but from an old term,
 * so S0 must not commit it — S4 can still win (Y's term is newer than X's)
 * and overwrite X everywhere, which it then does. */
static void test_figure8(void **state)
{
	(void)state;
	struct tnet *net = net_new(5);
	net->max_append = 1; /* one entry per append, so X travels alone */
	net_start(net);
	make_candidate(net, 0);
	deliver_all(net);
	assert_int_equal(raft_role(R(net, 0)), RAFT_LEADER);
	raft_tick(R(net, 0));
	raft_tick(R(net, 0));
	deliver_all(net); /* everyone has the no-op of term a */
	uint64_t base = raft_commit_index(R(net, 0));

	/* (a) X reaches S1 only. */
	uint64_t x = propose(net, 0, 0xAAAA);
	assert_int_equal(x, base + 1);
	struct only o = { 0, 1, RAFT_MSG_APPEND };
	deliver(net, keep_only, &o);
	assert_int_equal(raft_last_index(R(net, 1)), x);
	assert_int_equal(raft_commit_index(R(net, 0)), base);

	/* (b) S0 is cut off; S4 wins with S2 and S3, appends Y at X's index. */
	net->cut[0] = net->cut[1] = true;
	win_election(net, 4);
	assert_int_equal(raft_last_index(R(net, 4)), x); /* its no-op is at x */
	uint64_t term_y = raft_entry_term(R(net, 4), x);

	/* (c) S4 crashes; S0 restarts and wins with S1, S2, S3. */
	net->cut[4] = true;
	net->cut[0] = net->cut[1] = false;
	raft_mem_crash(&net->nodes[0].mem);
	boot(net, 0);
	win_election(net, 0);
	/* Copy X alone to S2, then to S3: the leader's first append (after
	 * its no-op) is refused, the retry carries X alone (one entry per
	 * append), and the answer reaches S0; what it sends next (its no-op)
	 * is dropped. Four rounds: append, refusal, X, acknowledgement. */
	for (int peer = 2; peer <= 3; peer++) {
		int pair[2] = { 0, peer };
		raft_tick(R(net, 0));
		raft_tick(R(net, 0));
		deliver_rounds(net, keep_pair, pair, 4);
		drop_all(net);
		assert_int_equal(raft_entry_term(R(net, peer), x), raft_entry_term(R(net, 0), x));
		assert_int_equal(raft_last_index(R(net, peer)), x);
	}
	/* X sits on S0, S2 and S3, and S0 knows it: a majority, but of an
	 * older term, so it is not committed. */
	assert_true(raft_commit_index(R(net, 0)) < x);
	assert_true(net->nodes[0].mem.applied < x);

	/* (d) S0 crashes again; S4 restarts, wins, overwrites X. */
	net->cut[0] = true;
	net->cut[4] = false;
	raft_mem_crash(&net->nodes[4].mem);
	boot(net, 4);
	win_election(net, 4);
	for (int t = 0; t < 6; t++) {
		raft_tick(R(net, 4));
		deliver_all(net);
	}
	for (int i = 1; i < 5; i++) {
		assert_true(raft_commit_index(R(net, i)) >= x);
		assert_int_equal(raft_entry_term(R(net, i), x), term_y);
	}
	net_free(net);
}

static void test_snapshot_install(void **state)
{
	(void)state;
	struct tnet *net = net_new(3);
	net->snapshot_every = 4;
	net_start(net);
	make_candidate(net, 0);
	deliver_all(net);
	net->cut[2] = true;
	for (uint64_t k = 1; k <= 30; k++) {
		propose(net, 0, k);
		raft_tick(R(net, 0));
		deliver_all(net);
	}
	assert_true(raft_snapshot_index(R(net, 0)) > 20);
	assert_int_equal(raft_last_index(R(net, 2)), 1);
	net->cut[2] = false;
	for (int t = 0; t < 10; t++) {
		raft_tick(R(net, 0));
		deliver_all(net);
	}
	/* S2 got the state by snapshot, then the rest by appends. */
	assert_int_equal(net->nodes[2].mem.applied, net->nodes[0].mem.applied);
	assert_true(net->nodes[2].mem.hash == net->nodes[0].mem.hash);
	assert_true(raft_snapshot_index(R(net, 2)) > 0);
	/* And it survives a crash: it boots from what it synced. */
	raft_mem_crash(&net->nodes[2].mem);
	boot(net, 2);
	for (int t = 0; t < 10; t++) {
		raft_tick(R(net, 0));
		deliver_all(net);
	}
	assert_int_equal(net->nodes[2].mem.applied, net->nodes[0].mem.applied);
	assert_true(net->nodes[2].mem.hash == net->nodes[0].mem.hash);
	net_free(net);
}

static void test_partitioned_leader_steps_down(void **state)
{
	(void)state;
	struct tnet *net = net_new(3);
	net_start(net);
	make_candidate(net, 0);
	deliver_all(net);
	uint64_t committed = raft_commit_index(R(net, 0));
	net->cut[0] = true;
	uint64_t lost = propose(net, 0, 99); /* never reaches anyone */
	for (int t = 0; t < 25; t++)
		raft_tick(R(net, 0));
	/* No majority heard for an election timeout: no longer leader. */
	assert_int_not_equal(raft_role(R(net, 0)), RAFT_LEADER);
	uint64_t index;
	assert_int_equal(raft_propose(R(net, 0), (uint8_t *)"x", 1, &index), -EAGAIN);
	/* The others elect a leader and move on. */
	make_candidate(net, 1);
	deliver_all(net);
	assert_int_equal(raft_role(R(net, 1)), RAFT_LEADER);
	propose(net, 1, 100);
	net->cut[0] = false;
	for (int t = 0; t < 6; t++) {
		raft_tick(R(net, 1));
		deliver_all(net);
	}
	/* S0 follows, and its uncommitted entry was replaced. */
	assert_int_equal(raft_leader(R(net, 0)), 1);
	assert_int_equal(raft_commit_index(R(net, 0)), raft_commit_index(R(net, 1)));
	assert_true(raft_commit_index(R(net, 0)) > committed);
	assert_int_not_equal(raft_entry_term(R(net, 0), lost), 0);
	assert_int_equal(raft_entry_term(R(net, 0), lost), raft_entry_term(R(net, 1), lost));
	assert_true(net->nodes[0].mem.hash == net->nodes[1].mem.hash);
	net_free(net);
}

/* Ticks every live node once and delivers what that causes. */
static void tick_all(struct tnet *net)
{
	for (int i = 0; i < net->n; i++)
		raft_tick(R(net, i));
	deliver_all(net);
}

/* A follower cut off for many election timeouts, then healed. Returns the
 * leader's term after the heal minus its term before the cut. */
static uint64_t cut_follower_and_heal(bool pre_vote)
{
	struct tnet *net = net_new(3);
	net->pre_vote = pre_vote;
	net_start(net);
	for (int t = 0; t < 40 && raft_role(R(net, 0)) != RAFT_LEADER; t++) {
		raft_tick(R(net, 0));
		deliver_all(net);
	}
	assert_int_equal(raft_role(R(net, 0)), RAFT_LEADER);
	uint64_t term = raft_term(R(net, 0));
	net->cut[2] = true;
	for (int t = 0; t < 100; t++)
		tick_all(net);
	/* With PreVote the cut-off node asks, hears nothing, and stays put. */
	if (pre_vote)
		assert_int_equal(raft_term(R(net, 2)), term);
	else
		assert_true(raft_term(R(net, 2)) > term);
	/* Healed, it stands again before any heartbeat reaches it. Its log is
	 * as up to date as the others': only their having a live leader stops
	 * them granting its pre-vote. */
	net->cut[2] = false;
	drop_all(net);
	bool stood = false;
	for (int t = 0; t < 40 && !stood; t++) {
		raft_tick(R(net, 2));
		for (size_t k = 0; k < net->nq; k++)
			stood |= net->q[k].m.from == 2 && (net->q[k].m.type == RAFT_MSG_PREVOTE ||
							   net->q[k].m.type == RAFT_MSG_VOTE);
	}
	assert_true(stood);
	for (int t = 0; t < 60; t++)
		tick_all(net);
	int l = raft_leader(R(net, 1));
	assert_true(l >= 0);
	propose(net, l, 7);
	for (int t = 0; t < 5; t++)
		tick_all(net);
	assert_true(l >= 0);
	assert_int_equal(raft_leader(R(net, 2)), l);
	assert_int_equal(raft_commit_index(R(net, 2)), raft_commit_index(R(net, l)));
	uint64_t moved = raft_term(R(net, l)) - term;
	if (pre_vote)
		assert_int_equal(l, 0); /* never deposed */
	net_free(net);
	return moved;
}

static void test_prevote_cut_follower_does_not_disrupt(void **state)
{
	(void)state;
	assert_int_equal(cut_follower_and_heal(true), 0);
	/* The same without PreVote: the returning node forces an election. */
	assert_true(cut_follower_and_heal(false) > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_election_and_replication),
		cmocka_unit_test(test_figure8),
		cmocka_unit_test(test_snapshot_install),
		cmocka_unit_test(test_partitioned_leader_steps_down),
		cmocka_unit_test(test_prevote_cut_follower_does_not_disrupt),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
