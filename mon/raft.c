/* The Raft core (see raft.h). Roles and their transitions:
 *
 *            timeout                 majority of votes
 *   FOLLOWER ----------> CANDIDATE ---------------------> LEADER
 *      ^  ^                  |  timeout: new term             |
 *      |  +------------------+  (raft_become_candidate)      |
 *      |    higher term, or an APPEND of the current term     |
 *      +------------------------------------------------------+
 *        higher term seen, or a majority not heard from for an
 *        election timeout (raft_check_quorum)
 *
 * Transitions: raft_become_follower, raft_become_candidate,
 * raft_become_leader.
 *
 * Invariants (raft_check, asserted after every step):
 *  1. commit <= last index; applied <= commit; snap_index <= applied.
 *  2. Log indices are consecutive from snap_index + 1, terms never fall.
 *  3. A leader's own match index is its last index (its log is durable).
 *  4. Committed entries are never truncated (asserted where truncating).
 *  5. vote is only ever set in the current term. */
#include "raft.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"

struct raft {
	struct raft_params p;
	const struct raft_storage_ops *st;
	const struct raft_fsm_ops *fsm;
	const struct raft_io_ops *io;
	void *ctx;

	enum raft_role role;
	uint64_t term;
	int vote;
	int leader;

	struct raft_entry *log; /* snap_index + 1 .. */
	size_t n, cap;
	uint64_t snap_index, snap_term;
	uint8_t *snap_data;
	size_t snap_len;

	uint64_t commit, applied;
	unsigned elapsed, timeout, heartbeat_elapsed;
	bool voted_for_me[RAFT_MAX_NODES];
	bool pre_candidate; /* asking for pre-votes for term + 1 */
	bool prevoted_for_me[RAFT_MAX_NODES];
	bool heard[RAFT_MAX_NODES];
	unsigned silent[RAFT_MAX_NODES]; /* ticks since a peer last answered */
	uint64_t next[RAFT_MAX_NODES], match[RAFT_MAX_NODES];
	bool failed;
	uint64_t rng;
};

static void raft_apply_committed(struct raft *r);

/* --- log ------------------------------------------------------------------ */

static uint64_t last_index(const struct raft *r)
{
	return r->snap_index + r->n;
}

static uint64_t last_term(const struct raft *r)
{
	return r->n ? r->log[r->n - 1].term : r->snap_term;
}

static const struct raft_entry *entry_at(const struct raft *r, uint64_t index)
{
	if (index <= r->snap_index || index > last_index(r))
		return NULL;
	return &r->log[index - r->snap_index - 1];
}

static uint64_t term_at(const struct raft *r, uint64_t index)
{
	if (index == r->snap_index)
		return r->snap_term;
	const struct raft_entry *e = entry_at(r, index);
	return e ? e->term : 0;
}

static int majority(const struct raft *r)
{
	return r->p.n_nodes / 2 + 1;
}

static void raft_fail(struct raft *r)
{
	r->failed = true;
	r->role = RAFT_FOLLOWER;
	r->leader = -1;
}

/* Appends copies of ENTRIES to the in-memory log. */
static int log_push(struct raft *r, const struct raft_entry *entries, size_t count)
{
	if (r->n + count > r->cap) {
		size_t cap = r->cap ? r->cap : 64;
		while (cap < r->n + count)
			cap *= 2;
		struct raft_entry *log = realloc(r->log, cap * sizeof(*log));
		if (!log)
			return -ENOMEM;
		r->log = log;
		r->cap = cap;
	}
	for (size_t i = 0; i < count; i++) {
		struct raft_entry *e = &r->log[r->n];
		*e = entries[i];
		e->data = NULL;
		if (entries[i].len) {
			e->data = malloc(entries[i].len);
			if (!e->data)
				return -ENOMEM;
			memcpy(e->data, entries[i].data, entries[i].len);
		}
		r->n++;
	}
	return 0;
}

/* Drops entries from INDEX on (never committed ones: invariant 4). */
static void log_truncate(struct raft *r, uint64_t index)
{
	BASALT_ASSERT(index > r->commit);
	while (last_index(r) >= index && r->n) {
		free(r->log[r->n - 1].data);
		r->n--;
	}
}

/* Forgets entries up to INDEX (they are in the snapshot). */
static void log_compact(struct raft *r, uint64_t index, uint64_t term)
{
	size_t drop = 0;
	while (drop < r->n && r->log[drop].index <= index)
		free(r->log[drop++].data);
	if (drop) {
		memmove(r->log, r->log + drop, (r->n - drop) * sizeof(*r->log));
		r->n -= drop;
	}
	r->snap_index = index;
	r->snap_term = term;
}

/* Persists entries [from, last] and syncs. */
static int persist_from(struct raft *r, uint64_t from)
{
	const struct raft_entry *e = entry_at(r, from);
	int rc = r->st->append(r->ctx, e, (size_t)(last_index(r) - from + 1));
	if (!rc)
		rc = r->st->sync(r->ctx);
	return rc;
}

static int persist_term_vote(struct raft *r)
{
	int rc = r->st->save_term_vote(r->ctx, r->term, r->vote);
	if (!rc)
		rc = r->st->sync(r->ctx);
	return rc;
}

/* --- sending -------------------------------------------------------------- */

static void send(struct raft *r, struct raft_msg *m)
{
	m->from = r->p.id;
	m->term = r->term;
	r->io->send(r->ctx, m);
}

static void send_snapshot(struct raft *r, int peer)
{
	struct raft_msg m = { .type = RAFT_MSG_SNAPSHOT, .to = peer,
			      .snap_index = r->snap_index, .snap_term = r->snap_term,
			      .snap_data = r->snap_data, .snap_len = r->snap_len };
	send(r, &m);
}

static void send_append(struct raft *r, int peer)
{
	if (r->next[peer] <= r->snap_index) {
		send_snapshot(r, peer);
		return;
	}
	uint64_t prev = r->next[peer] - 1;
	size_t count = (size_t)(last_index(r) - prev);
	if (count > r->p.max_append)
		count = r->p.max_append;
	struct raft_msg m = { .type = RAFT_MSG_APPEND, .to = peer, .prev_index = prev,
			      .prev_term = term_at(r, prev), .commit = r->commit,
			      .entries = count ? entry_at(r, prev + 1) : NULL,
			      .n_entries = count };
	send(r, &m);
}

static void broadcast_append(struct raft *r)
{
	for (int i = 0; i < r->p.n_nodes; i++)
		if (i != r->p.id)
			send_append(r, i);
	r->heartbeat_elapsed = 0;
}

/* --- roles ------------------------------------------------------------------- */

static unsigned random_timeout(struct raft *r)
{
	r->rng ^= r->rng << 13;
	r->rng ^= r->rng >> 7;
	r->rng ^= r->rng << 17;
	return r->p.election_ticks + (unsigned)(r->rng % r->p.election_ticks);
}

static void notify(struct raft *r)
{
	if (r->io->changed)
		r->io->changed(r->ctx);
}

static void raft_become_follower(struct raft *r, uint64_t term, int leader)
{
	bool changed = r->role != RAFT_FOLLOWER || r->leader != leader;
	if (term > r->term) {
		r->term = term;
		r->vote = RAFT_NO_VOTE;
		if (persist_term_vote(r)) {
			raft_fail(r);
			return;
		}
	}
	r->role = RAFT_FOLLOWER;
	r->leader = leader;
	r->pre_candidate = false;
	r->elapsed = 0;
	r->timeout = random_timeout(r);
	if (changed)
		notify(r);
}

static void raft_become_leader(struct raft *r)
{
	r->role = RAFT_LEADER;
	r->leader = r->p.id;
	r->pre_candidate = false;
	for (int i = 0; i < r->p.n_nodes; i++) {
		r->next[i] = last_index(r) + 1;
		r->match[i] = 0;
		r->heard[i] = false;
		r->silent[i] = UINT32_MAX;
	}
	/* A no-op of the new term commits everything before it (§5.4.2). */
	struct raft_entry noop = { r->term, last_index(r) + 1, RAFT_ENTRY_NOOP, 0, NULL };
	if (log_push(r, &noop, 1) || persist_from(r, noop.index)) {
		raft_fail(r);
		return;
	}
	r->match[r->p.id] = last_index(r);
	r->elapsed = 0;
	notify(r);
	if (r->p.n_nodes == 1) {
		r->commit = last_index(r);
		raft_apply_committed(r);
	}
	broadcast_append(r);
}

static void raft_become_candidate(struct raft *r)
{
	r->role = RAFT_CANDIDATE;
	r->pre_candidate = false;
	r->term++;
	r->vote = r->p.id;
	r->leader = -1;
	if (persist_term_vote(r)) {
		raft_fail(r);
		return;
	}
	memset(r->voted_for_me, 0, sizeof(r->voted_for_me));
	r->voted_for_me[r->p.id] = true;
	r->elapsed = 0;
	r->timeout = random_timeout(r);
	notify(r);
	if (majority(r) == 1) {
		raft_become_leader(r);
		return;
	}
	for (int i = 0; i < r->p.n_nodes; i++) {
		if (i == r->p.id)
			continue;
		struct raft_msg m = { .type = RAFT_MSG_VOTE, .to = i,
				      .last_index = last_index(r),
				      .last_term = last_term(r) };
		send(r, &m);
	}
}

/* The PreVote round: no term change, no vote recorded; a majority of
 * grants leads to a real candidacy. */
static void raft_start_prevote(struct raft *r)
{
	if (r->leader >= 0) { /* we think it gone, so we grant others too */
		r->leader = -1;
		notify(r);
	}
	r->pre_candidate = true;
	memset(r->prevoted_for_me, 0, sizeof(r->prevoted_for_me));
	r->prevoted_for_me[r->p.id] = true;
	r->elapsed = 0;
	r->timeout = random_timeout(r);
	if (majority(r) == 1) {
		raft_become_candidate(r);
		return;
	}
	for (int i = 0; i < r->p.n_nodes; i++) {
		if (i == r->p.id)
			continue;
		struct raft_msg m = { .type = RAFT_MSG_PREVOTE, .to = i, .from = r->p.id,
				      .term = r->term + 1, .last_index = last_index(r),
				      .last_term = last_term(r) };
		r->io->send(r->ctx, &m);
	}
}

/* A leader that has not heard from a majority for an election timeout
 * steps down, so a partitioned leader stops claiming to lead. */
static void raft_check_quorum(struct raft *r)
{
	int heard = 1;
	for (int i = 0; i < r->p.n_nodes; i++)
		if (i != r->p.id && r->heard[i])
			heard++;
	memset(r->heard, 0, sizeof(r->heard));
	if (heard < majority(r))
		raft_become_follower(r, r->term, -1);
}

/* --- state machine ------------------------------------------------------------- */

static void raft_maybe_snapshot(struct raft *r)
{
	if (!r->p.snapshot_every || r->applied - r->snap_index < r->p.snapshot_every)
		return;
	uint8_t *data = NULL;
	size_t len = 0;
	uint64_t index = r->applied, term = term_at(r, index);
	if (r->fsm->snapshot(r->ctx, &data, &len) ||
	    r->st->save_snapshot(r->ctx, index, term, data, len, true) ||
	    r->st->sync(r->ctx)) {
		free(data);
		raft_fail(r);
		return;
	}
	free(r->snap_data);
	r->snap_data = data;
	r->snap_len = len;
	log_compact(r, index, term);
}

static void raft_apply_committed(struct raft *r)
{
	while (r->applied < r->commit && !r->failed) {
		const struct raft_entry *e = entry_at(r, r->applied + 1);
		BASALT_ASSERT(e != NULL);
		r->fsm->apply(r->ctx, e);
		r->applied++;
	}
	raft_maybe_snapshot(r);
}

static void raft_maybe_commit(struct raft *r)
{
	for (uint64_t n = last_index(r); n > r->commit; n--) {
		if (term_at(r, n) != r->term)
			break; /* only entries of the current term count (§5.4.2) */
		int count = 0;
		for (int i = 0; i < r->p.n_nodes; i++)
			count += r->match[i] >= n;
		if (count >= majority(r)) {
			r->commit = n;
			raft_apply_committed(r);
			/* Followers learn it now, not at the next heartbeat: a
			 * client of any monitor sees the change a hop later. */
			if (r->role == RAFT_LEADER)
				broadcast_append(r);
			return;
		}
	}
}

/* --- handlers ------------------------------------------------------------------- */

static bool log_up_to_date(const struct raft *r, uint64_t term, uint64_t index)
{
	return term > last_term(r) || (term == last_term(r) && index >= last_index(r));
}

static void on_vote(struct raft *r, const struct raft_msg *m)
{
	bool grant = (r->vote == RAFT_NO_VOTE || r->vote == m->from) &&
		     log_up_to_date(r, m->last_term, m->last_index);
	if (grant && r->vote != m->from) {
		r->vote = m->from;
		if (persist_term_vote(r)) {
			raft_fail(r);
			return;
		}
	}
	if (grant)
		r->elapsed = 0;
	struct raft_msg resp = { .type = RAFT_MSG_VOTE_RESP, .to = m->from, .granted = grant };
	send(r, &resp);
}

/* Grants a pre-vote to a log at least as up to date as ours, for a term
 * above ours, unless we are or recently heard from a leader (who would
 * then be deposed for nothing). Changes nothing here. */
static void on_prevote(struct raft *r, const struct raft_msg *m)
{
	bool leader_alive = r->role == RAFT_LEADER ||
			    (r->leader >= 0 && r->elapsed < r->p.election_ticks);
	bool grant = m->term > r->term && !leader_alive &&
		     log_up_to_date(r, m->last_term, m->last_index);
	struct raft_msg resp = { .type = RAFT_MSG_PREVOTE_RESP, .to = m->from, .from = r->p.id,
				 .term = grant ? m->term : r->term, .granted = grant };
	r->io->send(r->ctx, &resp);
}

static void on_prevote_resp(struct raft *r, const struct raft_msg *m)
{
	if (!m->granted) {
		if (m->term > r->term) /* a newer term exists: join it */
			raft_become_follower(r, m->term, -1);
		return;
	}
	if (!r->pre_candidate || r->role == RAFT_LEADER || m->term != r->term + 1 ||
	    r->prevoted_for_me[m->from])
		return;
	r->prevoted_for_me[m->from] = true;
	int votes = 0;
	for (int i = 0; i < r->p.n_nodes; i++)
		votes += r->prevoted_for_me[i];
	if (votes >= majority(r))
		raft_become_candidate(r);
}

static void on_vote_resp(struct raft *r, const struct raft_msg *m)
{
	if (r->role != RAFT_CANDIDATE || !m->granted || r->voted_for_me[m->from])
		return;
	r->voted_for_me[m->from] = true;
	int votes = 0;
	for (int i = 0; i < r->p.n_nodes; i++)
		votes += r->voted_for_me[i];
	if (votes >= majority(r))
		raft_become_leader(r);
}

/* Follower side of APPEND: returns the match index, or 0 with *HINT set
 * when the logs disagree at prev_index. */
static uint64_t append_entries(struct raft *r, const struct raft_msg *m, uint64_t *hint)
{
	uint64_t prev = m->prev_index;
	size_t skip = 0;
	if (prev < r->snap_index) {
		/* The start is inside our snapshot: committed, so equal. */
		while (skip < m->n_entries && m->entries[skip].index <= r->snap_index)
			skip++;
		if (skip == m->n_entries)
			return r->snap_index;
		prev = r->snap_index;
	} else if (prev > last_index(r)) {
		*hint = last_index(r) + 1;
		return 0;
	} else if (term_at(r, prev) != m->prev_term) {
		/* Skip the whole conflicting term at once. */
		uint64_t conflict = term_at(r, prev), i = prev;
		while (i > r->commit + 1 && i - 1 > r->snap_index && term_at(r, i - 1) == conflict)
			i--;
		*hint = i;
		return 0;
	}
	uint64_t first_new = 0;
	for (size_t k = skip; k < m->n_entries; k++) {
		const struct raft_entry *e = &m->entries[k];
		if (e->index <= last_index(r)) {
			if (term_at(r, e->index) == e->term)
				continue;
			log_truncate(r, e->index);
		}
		if (log_push(r, e, m->n_entries - k)) {
			raft_fail(r);
			return 0;
		}
		first_new = e->index;
		break;
	}
	if (first_new && persist_from(r, first_new)) {
		raft_fail(r);
		return 0;
	}
	return m->n_entries ? m->entries[m->n_entries - 1].index : prev;
}

static void on_append(struct raft *r, const struct raft_msg *m)
{
	if (r->role != RAFT_FOLLOWER || r->leader != m->from)
		raft_become_follower(r, m->term, m->from);
	r->elapsed = 0;
	uint64_t hint = 0;
	uint64_t match = append_entries(r, m, &hint);
	if (r->failed)
		return;
	struct raft_msg resp = { .type = RAFT_MSG_APPEND_RESP, .to = m->from,
				 .success = match > 0 || (hint == 0 && m->prev_index == 0),
				 .match_index = match, .hint = hint };
	if (resp.success && m->commit > r->commit) {
		/* Only what is known to match the leader may be committed. */
		uint64_t c = m->commit < match ? m->commit : match;
		if (c > r->commit) {
			r->commit = c;
			raft_apply_committed(r);
		}
	}
	send(r, &resp);
}

static void on_append_resp(struct raft *r, const struct raft_msg *m)
{
	if (r->role != RAFT_LEADER)
		return;
	int f = m->from;
	r->heard[f] = true;
	r->silent[f] = 0;
	if (m->success) {
		if (m->match_index > r->match[f])
			r->match[f] = m->match_index;
		if (r->next[f] < r->match[f] + 1)
			r->next[f] = r->match[f] + 1;
		raft_maybe_commit(r);
		if (r->role == RAFT_LEADER && r->next[f] <= last_index(r))
			send_append(r, f);
		return;
	}
	uint64_t next = m->hint;
	if (next > r->next[f] - 1 && r->next[f] > 1)
		next = r->next[f] - 1;
	if (next <= r->match[f])
		next = r->match[f] + 1;
	if (next < 1)
		next = 1;
	r->next[f] = next;
	send_append(r, f);
}

static void on_snapshot(struct raft *r, const struct raft_msg *m)
{
	if (r->role != RAFT_FOLLOWER || r->leader != m->from)
		raft_become_follower(r, m->term, m->from);
	r->elapsed = 0;
	struct raft_msg resp = { .type = RAFT_MSG_SNAPSHOT_RESP, .to = m->from,
				 .success = true, .match_index = r->commit };
	if (m->snap_index > r->commit) {
		bool keep = term_at(r, m->snap_index) == m->snap_term;
		uint8_t *copy = malloc(m->snap_len ? m->snap_len : 1);
		if (!copy || r->fsm->restore(r->ctx, m->snap_data, m->snap_len) ||
		    r->st->save_snapshot(r->ctx, m->snap_index, m->snap_term, m->snap_data,
					 m->snap_len, keep) ||
		    r->st->sync(r->ctx)) {
			free(copy);
			raft_fail(r);
			return;
		}
		if (!keep) {
			/* Our log disagrees with the snapshot: drop all of it. */
			while (r->n) {
				free(r->log[r->n - 1].data);
				r->n--;
			}
		}
		log_compact(r, m->snap_index, m->snap_term);
		if (m->snap_len)
			memcpy(copy, m->snap_data, m->snap_len);
		free(r->snap_data);
		r->snap_data = copy;
		r->snap_len = m->snap_len;
		r->commit = r->applied = m->snap_index;
		resp.match_index = m->snap_index;
	}
	send(r, &resp);
}

static void on_snapshot_resp(struct raft *r, const struct raft_msg *m)
{
	if (r->role != RAFT_LEADER)
		return;
	int f = m->from;
	r->heard[f] = true;
	r->silent[f] = 0;
	if (m->match_index > r->match[f])
		r->match[f] = m->match_index;
	r->next[f] = r->match[f] + 1;
	raft_maybe_commit(r);
	if (r->role == RAFT_LEADER && r->next[f] <= last_index(r))
		send_append(r, f);
}

/* --- checks and entry points ---------------------------------------------------- */

static void raft_check(const struct raft *r)
{
	BASALT_ASSERT(r->commit <= last_index(r) || r->failed);  /* 1 */
	BASALT_ASSERT(r->applied <= r->commit);			  /* 1 */
	BASALT_ASSERT(r->snap_index <= r->applied || r->failed);  /* 1 */
	uint64_t prev_term = r->snap_term;
	for (size_t i = 0; i < r->n; i++) {
		BASALT_ASSERT(r->log[i].index == r->snap_index + 1 + i); /* 2 */
		BASALT_ASSERT(r->log[i].term >= prev_term);		 /* 2 */
		prev_term = r->log[i].term;
	}
	if (r->role == RAFT_LEADER)
		BASALT_ASSERT(r->match[r->p.id] == last_index(r)); /* 3 */
}

void raft_step(struct raft *r, const struct raft_msg *m)
{
	if (r->failed || m->to != r->p.id || m->from < 0 || m->from >= r->p.n_nodes ||
	    m->from == r->p.id)
		return;
	/* Pre-votes carry a term nobody is in yet: they must not move ours. */
	if (m->type == RAFT_MSG_PREVOTE || m->type == RAFT_MSG_PREVOTE_RESP) {
		if (m->type == RAFT_MSG_PREVOTE)
			on_prevote(r, m);
		else
			on_prevote_resp(r, m);
		raft_check(r);
		return;
	}
	if (m->term > r->term) {
		bool from_leader = m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_SNAPSHOT;
		raft_become_follower(r, m->term, from_leader ? m->from : -1);
		if (r->failed)
			return;
	}
	if (m->term < r->term) {
		/* Tell a stale node about the new term; ignore stale replies. */
		if (m->type == RAFT_MSG_VOTE) {
			struct raft_msg resp = { .type = RAFT_MSG_VOTE_RESP, .to = m->from };
			send(r, &resp);
		} else if (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_SNAPSHOT) {
			struct raft_msg resp = { .type = RAFT_MSG_APPEND_RESP, .to = m->from,
						 .hint = last_index(r) + 1 };
			send(r, &resp);
		}
		return;
	}
	switch (m->type) {
	case RAFT_MSG_VOTE: on_vote(r, m); break;
	case RAFT_MSG_VOTE_RESP: on_vote_resp(r, m); break;
	case RAFT_MSG_APPEND: on_append(r, m); break;
	case RAFT_MSG_APPEND_RESP: on_append_resp(r, m); break;
	case RAFT_MSG_SNAPSHOT: on_snapshot(r, m); break;
	case RAFT_MSG_SNAPSHOT_RESP: on_snapshot_resp(r, m); break;
	case RAFT_MSG_PREVOTE:
	case RAFT_MSG_PREVOTE_RESP: break; /* handled above */
	}
	raft_check(r);
}

void raft_tick(struct raft *r)
{
	if (r->failed)
		return;
	r->elapsed++;
	for (int i = 0; i < r->p.n_nodes; i++)
		if (r->silent[i] < UINT32_MAX)
			r->silent[i]++;
	if (r->role == RAFT_LEADER) {
		if (++r->heartbeat_elapsed >= r->p.heartbeat_ticks)
			broadcast_append(r);
		if (r->elapsed >= r->p.election_ticks) {
			r->elapsed = 0;
			raft_check_quorum(r);
		}
	} else if (r->elapsed >= r->timeout) {
		if (r->p.pre_vote)
			raft_start_prevote(r);
		else
			raft_become_candidate(r);
	}
	raft_check(r);
}

int raft_propose(struct raft *r, const uint8_t *data, size_t len, uint64_t *index)
{
	if (r->role != RAFT_LEADER || r->failed)
		return -EAGAIN;
	if (len > RAFT_MAX_ENTRY_LEN)
		return -EMSGSIZE;
	struct raft_entry e = { r->term, last_index(r) + 1, RAFT_ENTRY_COMMAND,
				(uint32_t)len, (uint8_t *)data };
	if (log_push(r, &e, 1) || persist_from(r, e.index)) {
		raft_fail(r);
		return -EIO;
	}
	r->match[r->p.id] = last_index(r);
	*index = e.index;
	if (r->p.n_nodes == 1)
		raft_maybe_commit(r);
	else
		broadcast_append(r);
	return 0;
}

int raft_create(const struct raft_params *params, const struct raft_boot *boot,
		const struct raft_storage_ops *storage, const struct raft_fsm_ops *fsm,
		const struct raft_io_ops *io, void *ctx, struct raft **out)
{
	if (params->n_nodes < 1 || params->n_nodes > RAFT_MAX_NODES || params->id < 0 ||
	    params->id >= params->n_nodes || !params->election_ticks ||
	    !params->heartbeat_ticks || params->heartbeat_ticks >= params->election_ticks)
		return -EINVAL;
	struct raft *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->p = *params;
	if (!r->p.max_append)
		r->p.max_append = 64;
	r->st = storage;
	r->fsm = fsm;
	r->io = io;
	r->ctx = ctx;
	r->term = boot->term;
	r->vote = boot->vote;
	r->leader = -1;
	r->rng = params->seed * 0x9E3779B97F4A7C15ULL + (uint64_t)params->id + 1;
	r->snap_index = boot->snap_index;
	r->snap_term = boot->snap_term;
	if (boot->snap_index) {
		r->snap_data = malloc(boot->snap_len ? boot->snap_len : 1);
		if (!r->snap_data || fsm->restore(ctx, boot->snap_data, boot->snap_len)) {
			raft_destroy(r);
			return -EIO;
		}
		if (boot->snap_len)
			memcpy(r->snap_data, boot->snap_data, boot->snap_len);
		r->snap_len = boot->snap_len;
	}
	r->commit = r->applied = r->snap_index;
	if (log_push(r, boot->entries, boot->n_entries)) {
		raft_destroy(r);
		return -ENOMEM;
	}
	for (size_t i = 0; i < r->n; i++) {
		if (r->log[i].index != r->snap_index + 1 + i) {
			raft_destroy(r);
			return -EINVAL;
		}
	}
	r->role = RAFT_FOLLOWER;
	r->timeout = random_timeout(r);
	*out = r;
	return 0;
}

void raft_destroy(struct raft *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		free(r->log[i].data);
	free(r->log);
	free(r->snap_data);
	free(r);
}

enum raft_role raft_role(const struct raft *r) { return r->role; }
uint64_t raft_term(const struct raft *r) { return r->term; }
int raft_leader(const struct raft *r) { return r->leader; }
uint64_t raft_commit_index(const struct raft *r) { return r->commit; }
uint64_t raft_applied_index(const struct raft *r) { return r->applied; }
uint64_t raft_last_index(const struct raft *r) { return last_index(r); }
uint64_t raft_snapshot_index(const struct raft *r) { return r->snap_index; }
uint64_t raft_entry_term(const struct raft *r, uint64_t index) { return term_at(r, index); }
bool raft_failed(const struct raft *r) { return r->failed; }

uint32_t raft_quorum_mask(const struct raft *r)
{
	if (r->role != RAFT_LEADER)
		return 0;
	uint32_t mask = 1u << r->p.id;
	for (int i = 0; i < r->p.n_nodes; i++)
		if (i != r->p.id && r->silent[i] < r->p.election_ticks)
			mask |= 1u << i;
	return mask;
}
