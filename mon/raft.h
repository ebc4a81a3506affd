/* Raft consensus (Ongaro & Ousterhout, "In Search of an Understandable
 * Consensus Algorithm", extended version), written for Basalt's monitors.
 *
 * The core is pure: no clock, no sockets, no files. Time is raft_tick(),
 * messages arrive through raft_step() and leave through io->send(), state
 * goes to a storage interface that must make it durable on sync() before
 * the core sends anything that depends on it (a vote, an append
 * acknowledgement), and committed entries go to the state machine in order.
 * The same core runs in basalt-mon and, thousands of times a second, in the
 * deterministic simulation (tests/sim/test_raft_sim.c).
 *
 * Membership is fixed by the configuration (1, 3 or 5 monitors). */
#ifndef BASALT_MON_RAFT_H
#define BASALT_MON_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RAFT_MAX_NODES 7
#define RAFT_NO_VOTE (-1)
#define RAFT_MAX_ENTRY_LEN (1u << 20)

enum raft_role { RAFT_FOLLOWER, RAFT_CANDIDATE, RAFT_LEADER };

enum raft_entry_type {
	RAFT_ENTRY_NOOP = 0,   /* a new leader's first entry */
	RAFT_ENTRY_COMMAND = 1 /* for the state machine */
};

struct raft_entry {
	uint64_t term, index;
	uint32_t type;
	uint32_t len;
	uint8_t *data; /* owned by whoever holds the entry */
};

enum raft_msg_type {
	RAFT_MSG_VOTE = 1,
	RAFT_MSG_VOTE_RESP,
	RAFT_MSG_APPEND,
	RAFT_MSG_APPEND_RESP,
	RAFT_MSG_SNAPSHOT,
	RAFT_MSG_SNAPSHOT_RESP,
	RAFT_MSG_PREVOTE,	/* term: the one the sender would stand in */
	RAFT_MSG_PREVOTE_RESP,	/* term: that term when granted, else ours */
};

/* Entries and snapshot data are borrowed for the duration of a call. */
struct raft_msg {
	enum raft_msg_type type;
	int from, to;
	uint64_t term;
	/* VOTE */
	uint64_t last_index, last_term;
	/* VOTE_RESP */
	bool granted;
	/* APPEND */
	uint64_t prev_index, prev_term, commit;
	const struct raft_entry *entries;
	size_t n_entries;
	/* APPEND_RESP: success, and the follower's match index or, on a
	 * mismatch, the index the leader should try next. */
	bool success;
	uint64_t match_index, hint;
	/* SNAPSHOT: the state up to snap_index/snap_term. SNAPSHOT_RESP
	 * reuses match_index. */
	uint64_t snap_index, snap_term;
	const uint8_t *snap_data;
	size_t snap_len;
};

/* Durable state; everything a call changed is durable once sync()
 * returns 0. All return 0 or -errno (an error stops the node: raft_failed). */
struct raft_storage_ops {
	int (*save_term_vote)(void *ctx, uint64_t term, int vote);
	/* Appends N entries starting at entries[0].index, dropping whatever
	 * the log held from that index on. */
	int (*append)(void *ctx, const struct raft_entry *entries, size_t n);
	/* Replaces everything up to INDEX by a snapshot of the state machine
	 * (entries after INDEX stay when KEEP_TAIL). */
	int (*save_snapshot)(void *ctx, uint64_t index, uint64_t term,
			     const uint8_t *data, size_t len, bool keep_tail);
	int (*sync)(void *ctx);
};

struct raft_fsm_ops {
	/* A committed entry, in index order, exactly once per life. */
	void (*apply)(void *ctx, const struct raft_entry *e);
	/* Serializes the state as of the last applied entry; caller frees. */
	int (*snapshot)(void *ctx, uint8_t **data, size_t *len);
	/* Replaces the state by a snapshot. */
	int (*restore)(void *ctx, const uint8_t *data, size_t len);
};

struct raft_io_ops {
	void (*send)(void *ctx, const struct raft_msg *m);
	/* Optional: role or leader changed. */
	void (*changed)(void *ctx);
};

struct raft_params {
	int id;			 /* this node: 0..n_nodes-1 */
	int n_nodes;		 /* 1, 3, 5 (or 7) */
	unsigned election_ticks; /* timeout drawn from [E, 2E) */
	unsigned heartbeat_ticks;
	uint64_t snapshot_every; /* applied entries between snapshots; 0 off */
	size_t max_append;	 /* entries per APPEND */
	uint64_t seed;		 /* for the randomized election timeouts */
	/* PreVote (Ongaro's thesis, 9.6): before standing, a node asks
	 * whether it could win — a log at least as up to date, and voters
	 * that have not heard from a leader for an election timeout — and
	 * only then raises its term. A node cut off and coming back then
	 * does not force an election on a working quorum. */
	bool pre_vote;
};

/* What storage held at start-up (borrowed for raft_create's duration). */
struct raft_boot {
	uint64_t term;
	int vote;
	uint64_t snap_index, snap_term;
	const uint8_t *snap_data;
	size_t snap_len;
	const struct raft_entry *entries; /* snap_index+1 .. */
	size_t n_entries;
};

struct raft;

int raft_create(const struct raft_params *params, const struct raft_boot *boot,
		const struct raft_storage_ops *storage,
		const struct raft_fsm_ops *fsm, const struct raft_io_ops *io,
		void *ctx, struct raft **out /* out */);
void raft_destroy(struct raft *r);

/* One unit of time passes. */
void raft_tick(struct raft *r);
/* A message arrived (any order, duplicates, stale terms are fine). */
void raft_step(struct raft *r, const struct raft_msg *m);
/* On the leader: appends a command; *INDEX says where. -EAGAIN when not
 * the leader (raft_leader says who is), -EMSGSIZE when too long. */
int raft_propose(struct raft *r, const uint8_t *data, size_t len,
		 uint64_t *index /* out */);

enum raft_role raft_role(const struct raft *r);
uint64_t raft_term(const struct raft *r);
int raft_leader(const struct raft *r); /* -1 when unknown */
uint64_t raft_commit_index(const struct raft *r);
uint64_t raft_applied_index(const struct raft *r);
uint64_t raft_last_index(const struct raft *r);
uint64_t raft_snapshot_index(const struct raft *r);
/* The term of the entry at INDEX, or 0 when not in the log. */
uint64_t raft_entry_term(const struct raft *r, uint64_t index);
/* A storage or state machine call failed: the node stops taking part. */
bool raft_failed(const struct raft *r);
/* On a leader: bit i set when node i (or this node) answered within the
 * last election timeout; 0 elsewhere. */
uint32_t raft_quorum_mask(const struct raft *r);

#endif
