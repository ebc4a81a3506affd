/* The harness the PG simulations share (pg_sim.c): a real monitor, four
 * real OSDs and a libbasalt client on simulated hosts, disks and network
 * from one seed; a checked workload on the objects of one inode; the
 * faults (crashes, power loss, cut links, resets, out and in); and the
 * checks once healed. A run may add its own operations and checks
 * through struct pg_sim_hooks (test_pg_snap_sim.c: snapshots). */
#ifndef BASALT_TESTS_SIM_PG_SIM_H
#define BASALT_TESTS_SIM_PG_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include "client/libbasalt.h"
#include "common/cluster/monsess.h"
#include "common/io/sim.h"
#include "common/keyring.h"
#include "common/msgr.h"

#define NOSD 4	    /* OSDs of a run, unless it says otherwise (r->n_osd) */
#define NOSD_MAX 6 /* ...the erasure-coded 4+2 run's: six hosts */
#define NOBJ 24	    /* objects of the default run */
#define NOBJ_FULL 96 /* of the full-disk run: about 72 blocks per OSD... */
#define FULL_DISK (8u << 20) /* ...on about 60 */
#define QD 6
#define BS (64u << 10)
#define CHUNKS (BS / 4096)
#define PG_NUM 4
#define MON_HOST "10.0.1.1"
#define CLIENT_HOST "10.0.3.1"
#define PG_SIM_INODE 0x77 /* the objects' inode unless a hook sets another */

extern const char *pg_sim_osd_host[NOSD_MAX];

struct pg_sim_obj {
	bool exists, busy;
	bool unknown; /* a write was refused for space: it may have landed */
	uint64_t tags[CHUNKS]; /* per chunk: the acknowledged write, 0 = zeros */
};

struct pg_sim_slot {
	struct bs_op op;
	struct pg_sim_run *r;
	uint32_t obj, first, n;
	uint64_t tag;
	uint8_t *buf;
	bool used;
	bool own;	 /* started by a hook: its done() gets the answer */
	uint32_t aux;	 /* the hook's */
	uint64_t started; /* r->op_seq when started */
};

/* An admin session for map commands (pool, out, in, snapshots). */
struct pg_sim_admin {
	struct msgr *msgr;
	struct monsess *mon;
	bool replied;
	int rc;
	uint64_t epoch; /* of the answer */
	char text[256];
	struct io_timer tick;
};

struct pg_sim_run;

/* What a run adds to the plain one; every member may be NULL. */
struct pg_sim_hooks {
	/* Once the PGs are clean at the start, before the workload. */
	void (*setup)(struct pg_sim_run *r);
	/* Between two fault steps. */
	void (*step)(struct pg_sim_run *r);
	/* May start an operation of its own on free slot S (through
	 * pg_sim_submit_own): true if it did. */
	bool (*issue)(struct pg_sim_run *r, struct pg_sim_slot *s);
	/* One of its own operations was answered (the slot is freed after). */
	void (*own_done)(struct pg_sim_run *r, struct pg_sim_slot *s, int rc);
	/* A workload operation was answered and the model updated. */
	void (*head_done)(struct pg_sim_run *r, struct pg_sim_slot *s, int rc);
	/* Healed and read back: before the replicas are compared. */
	void (*finish)(struct pg_sim_run *r);
	/* After the replicas were compared; the OSDs are stopped. */
	void (*check)(struct pg_sim_run *r);
	/* From pg_sim_stop: frees r->ext. */
	void (*fini)(struct pg_sim_run *r);
	/* What a failure's replay line adds to PG_SIM_SEED=S. */
	const char *replay;
};

struct pg_sim_run {
	uint64_t seed;
	struct io_sim_world *w;
	char dir[64];
	char keyring[96];
	struct cfg *cfg;
	struct io_loop *mon_loop, *osd_loop[NOSD_MAX], *client_loop;
	struct mon *mon;
	struct osd *osd[NOSD_MAX];
	bool out[NOSD_MAX];
	int n_osd;	/* NOSD, or NOSD_MAX in the 4+2 run */
	unsigned ec_k, ec_m; /* the erasure-coded runs' code */
	struct bs_client *client;
	struct pg_sim_admin admin;
	struct keyring *kr;
	struct mon_member members[1];
	uint32_t pool;
	uint64_t inode;  /* of the workload's objects */
	bool fill;     /* the full-disk run */
	bool rot;      /* the damaged-disk run */
	bool ec;       /* the erasure-coded run */
	bool damaged[NOBJ_FULL]; /* objects one copy of was damaged */
	uint64_t faults, bad_found, bad_repaired;
	uint32_t nobj; /* NOBJ or NOBJ_FULL (or fewer, set by a hook) */
	struct pg_sim_obj m[NOBJ_FULL];
	struct pg_sim_slot slots[QD];
	unsigned inflight;
	bool issuing;
	uint64_t next_tag, acked, reads, enospc;
	uint64_t op_seq; /* operations started */
	uint32_t log_entries; /* osd_pg_log_max_entries (0: the default) */
	/* Peerings by kind and their bytes, over every OSD process so far. */
	uint64_t peerings_log, peerings_full, peering_bytes;
	const struct pg_sim_hooks *hooks;
	void *ext; /* the hooks' state */
	char failure[512];
};

/* PG_SIM_EC: the pool is erasure-coded 2+1 (objects of two BS chunks, the
 * workload in their first BS bytes); PG_SIM_EC42: 4+2 on six OSDs;
 * PG_SIM_EC_ROT: 4+2 with data chunks damaged (read repair). */
enum pg_sim_mode { PG_SIM_PLAIN, PG_SIM_FILL, PG_SIM_ROT, PG_SIM_EC, PG_SIM_EC42, PG_SIM_EC_ROT };

/* osd_pg_log_max_entries of the next runs (0: plain runs take 8-16 for
 * even seeds, so the logs wrap constantly, and the default for odd). */
extern uint32_t pg_sim_log_entries;
/* Peerings by log over every run so far (a run of seeds that never peers
 * by log would test only the fallback). */
extern uint64_t pg_sim_peerings_log_total;

uint64_t pg_sim_rnd(struct pg_sim_run *r);
/* Records the run's first failure (the seed and the time prefixed). */
void pg_sim_failf(struct pg_sim_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The bytes of chunk CHUNK written by write TAG; whether BUF holds them
 * (TAG 0: zeros). */
void pg_sim_fill(uint8_t *buf, uint64_t tag, uint32_t chunk);
bool pg_sim_chunk_ok(const uint8_t *buf, uint64_t tag, uint32_t chunk);

/* Runs CMD to its answer (or gives up after 30 virtual seconds); the
 * answer's text and epoch in r->admin. */
int pg_sim_admin_run(struct pg_sim_run *r, struct map_cmd *cmd);
void pg_sim_osd_up(struct pg_sim_run *r, int i, bool mkfs);
/* OSD I stops as on SIGTERM (its PG logs written out). */
void pg_sim_osd_stop(struct pg_sim_run *r, int i);
/* Adds OSD I's peering counters to the run's (before it goes). */
void pg_sim_count_peerings(struct pg_sim_run *r, int i);
/* One random fault: a crash (maybe with power loss), a restart, a cut
 * link, connection resets on or off, an OSD out or in. */
void pg_sim_fault_step(struct pg_sim_run *r);

/* Starts workload operation KIND (0-29 read, then delete, then write) on
 * object OBJ in slot S; starts operations on every free slot. */
void pg_sim_start_op(struct pg_sim_run *r, struct pg_sim_slot *s, uint32_t obj, int kind);
void pg_sim_issue(struct pg_sim_run *r);
/* Submits a hook's operation, filled in s->op (but done and ctx), on free
 * slot S: its answer goes to hooks->own_done. */
void pg_sim_submit_own(struct pg_sim_run *r, struct pg_sim_slot *s);

/* Runs OP (filled in but done and ctx) on R's client to its answer, at
 * most 60 virtual seconds; returns its result. */
int pg_sim_run_op(struct pg_sim_run *r, struct bs_op *op);

/* io_sim_run predicates: every PG active+clean on maps of the newest
 * epoch with nothing in flight; nothing in flight (or failed). */
bool pg_sim_all_clean(void *arg);
bool pg_sim_quiet(void *arg);

/* The world of seed SEED: the monitor, OSDs (started when START_OSDS),
 * the admin session with pool "rbd" created, and the client. Caller
 * frees with pg_sim_stop and free(). */
struct pg_sim_run *pg_sim_start(uint64_t seed, bool start_osds, uint64_t op_timeout_ms,
				enum pg_sim_mode mode);
void pg_sim_stop(struct pg_sim_run *r);

/* One seed of MODE with HOOKS (may be NULL) and FAULT_S virtual seconds
 * of faults, failing the test on any finding; returns the mode's count
 * (writes refused for space, bad copies found). */
uint64_t pg_sim_run_seed(uint64_t seed, uint64_t fault_s, enum pg_sim_mode mode,
			 const struct pg_sim_hooks *hooks);
/* The seeds of a mode: SEEDS_ENV of them from BASE (default N), or with
 * PG_SIM_SEED the one named when ONE_ENV is set. The counts
 * pg_sim_run_seed returns must not all be 0 (WHY otherwise) unless
 * WHY is NULL. */
void pg_sim_run_mode(enum pg_sim_mode mode, const struct pg_sim_hooks *hooks,
		     const char *seeds_env, unsigned n, uint64_t base, const char *one_env,
		     const char *why);

#endif
