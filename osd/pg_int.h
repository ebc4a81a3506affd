/* Structures private to the placement-group layer (osd/pg*.c).
 *
 * A PG's *interval* is a run of map epochs with the same acting set, the
 * same primary and the same boot (up_from) of each member. Its primary
 * runs this state machine; the other members only answer (pg_replica.c).
 *
 *   IDLE --interval starts, this OSD primary--> PEERING        pg_interval_start
 *   PEERING --acting members and one authority answered-->
 *       UNDERSIZED (acting below min_size: no I/O; an EC PG    pg_peering_done
 *         with K members or more goes on, read-only)
 *     | RECOVERING (no acting member complete: recover first)  pg_peering_done
 *     | ACTIVATING (mark the complete members, record)        pg_peering_done
 *   PEERING --no recorded member can answer--> INCOMPLETE      pg_peering_check
 *   INCOMPLETE --map change--> PEERING                         osd_pg_map
 *   RECOVERING --every acting member caught up--> ACTIVATING   pg_recovery_done
 *   ACTIVATING --the record is written--> ACTIVE               pg_record_done
 *   ACTIVE --recovery done--> ACTIVE, re-recorded with every member
 *   any --a sub-operation fails, a member's link drops--> PEERING  pg_repeer
 *   any --the interval ends--> IDLE or PEERING                 osd_pg_map
 *
 * Invariants (pg_check):
 *  1. Only the primary of the current interval has a state other than
 *     IDLE, and only an ACTIVE PG dispatches client operations.
 *  2. A write is acknowledged only when every acting member has it
 *     durable, and only while the acting set has at least min_size
 *     members (pg_io.c).
 *  3. Every acknowledged write is on every member of the PG's newest
 *     activation record (map_pg_active) or was acknowledged after it,
 *     in an interval recorded later; a member is named in a record only
 *     once it holds every acknowledged write and has persisted its
 *     complete mark (PG_SUB_COMPLETE) for that interval.
 *  4. A member answers the query of interval E only once no sub-operation
 *     of an older interval is in flight on it, and from then on refuses
 *     them: an older primary can no longer complete a write (fencing).
 *  5. Per object, a read never runs beside a write that is not yet
 *     acknowledged, and one write at a time is in flight: a member's
 *     version of an object always names the same bytes as anyone's.
 *  6. Versions are (epoch << 32 | sequence), the epoch the map's when
 *     the primary assigned it (never below the interval's), and never
 *     reused: the sequence resumes above every version of the interval
 *     that a member reported (and stays below 2^32). Snapshots rely on
 *     the epoch: a write belongs after snapshot S iff its epoch is at
 *     least the one that created S (pg_snap.c).
 *  7. A scrub runs only on an ACTIVE primary, one per OSD at a time, and
 *     while the members read a chunk's copies no write or recovery of an
 *     object in that chunk is in flight (pg_scrub.c): every copy it
 *     compares is of a settled version.
 *  8. An object with no good copy left (unfound) is counted once in its
 *     PG's n_unfound and kept until a delete or a new peering; only a
 *     delete of it runs, everything else fails with -EIO: a bad copy's
 *     bytes are never served.
 *  9. An OSD's log of a PG (pg_log.c) names every change it made to the
 *     PG's objects after each sync marker it holds (entries go only from
 *     the oldest end, and every store write or delete of a PG object is
 *     logged before it is submitted), and a primary issues a marker only
 *     while its acting members hold the same objects at the same versions
 *     (complete, recorded, nothing missing, unfound or being recovered,
 *     no write in flight). So two members holding the same marker differ
 *     only in objects their logs name after it, and peering by log
 *     compares the same objects a full comparison would find different.
 *
 * osd_pg_check() asserts what one OSD can see of these (1, 5, 6, 7, 8, 9);
 * the whole-cluster simulation calls it after every step, and checks 2
 * and 3 against its model of acknowledged writes.
 */
#ifndef BASALT_OSD_PG_INT_H
#define BASALT_OSD_PG_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/ec.h"
#include "common/list.h"
#include "common/cluster/map.h"
#include "osd_int.h"
#include "common/cluster/osd_proto.h"
#include "pg.h"
#include "pg_proto.h"
#include "store.h"

#define PG_PEERS_MAX (2 * MAP_PG_ACTING_MAX)
#define PG_QUERY_RETRY_NS IO_SEC(2)
#define PG_REPEER_DELAY_NS IO_MS(200)
#define PG_WAITING_MAX 4096 /* client operations held while a PG is not active */

enum pg_state {
	PG_STATE_IDLE,
	PG_STATE_PEERING,
	PG_STATE_INCOMPLETE,
	PG_STATE_UNDERSIZED,
	PG_STATE_RECOVERING,
	PG_STATE_ACTIVATING,
	PG_STATE_ACTIVE,
};

/* Writing the activation record: first the complete mark on each member
 * that will be named, then the map command. */
enum pg_record_phase { PG_RECORD_NONE, PG_RECORD_MARKING, PG_RECORD_QUEUED, PG_RECORD_SENT };

/* Peering's phases (pg.c): every member's summary first, then either its
 * objects changed since a sync marker all share and their versions, or
 * (no such marker) its whole list, as before logs. */
enum pg_peer_phase { PG_PHASE_SUMMARY, PG_PHASE_LOG, PG_PHASE_STAT, PG_PHASE_FULL };

/* A member (or recorded non-member) the primary queried while peering. */
struct pg_peer {
	uint32_t osd;
	int acting_index; /* -1: not in the acting set */
	bool recorded;	  /* named in the activation record peered against */
	bool replied;	  /* to the summary */
	bool answered;	  /* to the current phase's query (after the summary) */
	unsigned tries;	  /* of the current phase's query */
	int rc;
	uint64_t complete_epoch;
	uint64_t sent_ns;
	uint8_t n_markers;
	struct pg_marker markers[PG_INFO_MARKERS_MAX]; /* its log's, newest first */
	struct msg *info; /* the answer of the current phase, until peering is done */
};

/* One local change of a PG's object on this OSD, or a sync marker
 * (pg_log.c): a marker has inode OBJECT_INODE_PG_META, its primary as
 * pool, its number as index and its interval as version. */
struct pg_log_entry {
	struct object_id oid;
	uint64_t version; /* the new version; 0: deleted */
};

/* The PG's log on this OSD: a ring of its newest changes, complete after
 * each marker it holds (trimmed only from the oldest end). */
struct pg_log {
	struct pg_log_entry *ring;
	uint32_t cap, head, n;
	uint32_t n_markers;
	bool loaded;  /* the log a clean stop left was read (and deleted) */
	bool loading; /* reading or deleting it */
	bool dirty_before_load; /* a change came first: what is read is stale */
	struct store_req req;
};

/* An object the primary is tracking: operations on it, and what the
 * acting members lack of it. Created on demand, freed when idle. */
struct pg_obj {
	struct pg_obj *hash_next;
	struct list_node pg_node; /* pg->objs */
	struct osd_pg *pg;
	struct object_id oid;
	unsigned reads, writes;	 /* dispatched, not yet finished */
	struct list_node queue;	 /* struct pg_op waiting, in arrival order */
	/* Recovery (pg_recovery.c). */
	uint64_t auth_version;	  /* 0: the object should not exist */
	uint32_t need_push;	  /* acting indices lacking auth_version */
	uint32_t need_remove;	  /* acting indices to drop theirs first */
	uint32_t sources[PG_PEERS_MAX]; /* OSDs holding auth_version */
	uint32_t n_sources;
	bool recovering;	  /* in flight */
	bool urgent;		  /* an operation waits for it */
	/* No copy of it checks out (every source's read failed its checksum
	 * or the device): its reads and writes fail with -EIO; a delete
	 * clears it. Listed in the PG's stats, until the PG peers again. */
	bool unfound;
	bool repairing; /* its recovery mends bad copies (counted as repairs) */
	/* From peering: each acting member's version (0: it lacks it), and
	 * the version to fall back to when every copy of auth_version turns
	 * out bad — the newest older one an authoritative member holds,
	 * known safe when an authoritative member lacks auth_version (so it
	 * was never acknowledged: pg_int.h, invariant 3). */
	uint64_t member_version[MAP_PG_ACTING_MAX];
	bool fallback_ok;
	uint64_t fallback_version;
	uint32_t fallback_sources[PG_PEERS_MAX];
	uint32_t n_fallback_sources;
	uint64_t retry_at_ns;	  /* a full member: not before */
	struct list_node rec_node; /* pg->missing while waiting */
	struct pg_ec_need *ec;	  /* an EC object's needs (pg_ec.c), with auth_version */
};

/* Whether OBJ is being mended already (recovery holds its needs, or runs
 * for it) or is past mending (unfound): a bad copy found again then asks
 * for nothing more. */
static inline bool pg_obj_mending(const struct pg_obj *obj)
{
	return obj->need_push || obj->need_remove || obj->recovering || obj->unfound || obj->ec;
}

/* One entry of peering's merge: an object as one peer holds it. */
struct pg_merge_entry {
	struct object_id oid;
	uint64_t version;
	uint32_t peer; /* index in pg->peers */
};

/* A client operation on the primary. */
struct pg_op {
	struct list_node pg_node; /* pg->ops */
	struct list_node q_node;  /* pg->waiting or obj->queue */
	struct osd_pg *pg;
	uint64_t gen; /* pg->gen when taken; stale after a reset */
	struct pg_obj *obj;
	struct msgr_conn *conn; /* NULL once the client is gone */
	uint64_t request_id;
	struct osd_op op;
	struct pg_data *data; /* WRITE */
	struct pg_ec_op *ec;  /* an EC pool's: its chunk work (pg_ec.c) */
	bool dispatched, answered, local_busy;
	bool slow_logged; /* logged once as a slow operation */
	uint8_t repairs;  /* read repairs it waited for */
	uint64_t start_ns; /* when the client first sent it */
	uint64_t arrived_ns; /* when it arrived here (its latency's start) */
	unsigned pending; /* pieces outstanding: local store + each replica */
	uint32_t waiting_on; /* acting indices whose piece is outstanding */
	int rc;
	uint64_t version;
	struct store_req req;
};

/* A write's data, shared by the local store write and the sub-operation
 * messages that lend it (refcounted; 4 KiB aligned). */
struct pg_data {
	unsigned refs;
	uint32_t len;
	uint8_t *buf;
	/* The CRC32C of each 4 KiB chunk of BUF (the messenger's, or the
	 * store's as read), carried to the store and to the replicas' frames
	 * so neither reads BUF again; NULL when unknown. Points at CRC_SPACE. */
	const uint32_t *crc;
	uint32_t crc_space[];
};

/* A request to another OSD, waiting for its reply. */
struct pg_call;
typedef void (*pg_call_fn)(struct pg_call *call, int rc, struct msg *reply);
struct pg_call {
	struct pg_call *hash_next;
	struct list_node pg_node; /* pg->calls */
	struct osd_pg *pg;
	uint64_t tid;
	uint32_t osd;
	pg_call_fn done;
	void *ctx;
	uint64_t arg;
};

struct osd_pg {
	struct osd_pg *hash_next;
	struct list_node all_node; /* o->pgs->all */
	struct osd *o;
	uint32_t pool, pg;
	/* The interval as this OSD's map shows it. */
	bool known;
	uint64_t interval;
	uint32_t n_acting;
	uint32_t acting[MAP_PG_ACTING_MAX];
	/* Each acting member's position among the PG's OSDs: in an
	 * erasure-coded pool, the chunk it stores (a change starts a new
	 * interval there). */
	uint8_t shard[MAP_PG_ACTING_MAX];
	uint64_t up_from[MAP_PG_ACTING_MAX];
	uint32_t size, min_size;
	/* An EC PG below min_size with K members or more: it serves reads,
	 * and writes wait for more members (invariant 2). */
	bool read_only;
	/* Replica side: the newest interval this OSD answered, and its
	 * primary; sub-operations of any other are refused (invariant 4). */
	uint64_t fence_epoch;
	uint32_t fence_primary;
	unsigned store_writes;	     /* this PG's writes in flight in the store */
	struct list_node deferred;   /* queries waiting for store_writes == 0 */
	uint64_t complete_epoch;     /* cached complete mark; UINT64_MAX: not read yet */
	struct store_req meta_read;  /* reading the complete mark (pg_replica.c) */
	uint64_t fence_round;	     /* the primary's peering round last answered */
	struct pg_log log;	     /* this OSD's changes of the PG (pg_log.c) */
	/* A stray copy being deleted (pg_replica.c): the fence it started
	 * under (a query from a primary stops it), deletes in flight. */
	bool purging;
	uint64_t purge_fence;
	unsigned purge_inflight;
	/* Primary side. */
	enum pg_state state;
	uint64_t gen; /* bumped by every reset: stale callbacks see it */
	struct pg_peer peers[PG_PEERS_MAX];
	uint32_t n_peers;
	enum pg_peer_phase phase;
	struct pg_marker sync_from;  /* LOG, STAT: the marker every peer shares */
	uint8_t *cand;		     /* STAT: the objects to compare, as entries */
	uint32_t n_cand;
	/* Sync markers (pg_log.c): issued in this interval, changes logged
	 * here since the last one, and when it was issued. */
	uint64_t sync_number, changes_since_sync, sync_at_ns;
	unsigned writes_inflight;    /* client writes and deletes dispatched */
	struct map_pg_active record; /* peered against (record.epoch 0: none) */
	/* Members of that record that were down when peering began: they may
	 * hold good copies that the members up do not. */
	uint32_t away[MAP_PG_ACTING_MAX];
	uint32_t n_away;
	uint64_t repeer_at_ns;	     /* INCOMPLETE or a failed record: when to retry */
	uint64_t seq;		     /* last sequence used in this interval */
	uint32_t complete_mask;	     /* acting indices holding everything */
	enum pg_record_phase recording;
	uint32_t marking_mask, marks_pending;
	uint32_t marked_mask;	     /* acting indices whose mark for this interval is durable */
	struct map_pg_active record_want;
	struct list_node record_node; /* o->pgs->record_queue */
	bool backfill;		      /* some member had nothing of the PG */
	uint64_t toofull_until_ns;    /* recovery held back: a member is backfillfull */
	/* Bad copies found (a read or scrub failed a checksum or the
	 * device) and repaired from a good one; objects with none left. */
	uint64_t bad_found, bad_repaired;
	uint32_t n_unfound;
	/* Scrubs (pg_scrub.c): the one running; when the last ones finished
	 * (unix seconds) and a cut one's kind (1 light, 2 deep) and cursor,
	 * kept in the PG's record object; one asked for (1 light, 2 deep). */
	struct pg_scrub *scrub;
	uint64_t last_scrub_s, last_deep_scrub_s;
	uint8_t scrub_resume, scrub_wanted;
	bool has_scrub_cursor;
	struct object_id scrub_cursor;
	struct store_req stamp_req; /* writing those */
	bool stamp_inflight, stamp_again;
	struct list_node ops;	      /* struct pg_op */
	struct list_node waiting;     /* ops waiting for ACTIVE */
	unsigned n_waiting;
	struct list_node objs;	      /* struct pg_obj */
	struct list_node missing;     /* objects to recover, not in flight */
	uint64_t n_missing;	      /* objects with needs, in flight included */
	uint64_t degraded;	      /* missing copies over those objects */
	/* Per acting index, objects that member still lacks (or must drop);
	 * while RECOVERING, the member to make whole first: the PG activates
	 * as soon as one member holds everything (pg_recovery.c). */
	uint64_t member_needs[MAP_PG_ACTING_MAX];
	int recover_target;
	struct list_node calls;	      /* struct pg_call */
	struct list_node recs;	      /* recovery items in flight (pg_recovery.c) */
	struct list_node active_node; /* o->pgs->recovering */
	/* Erasure-coded pools (pg_ec.c): the code (NULL: replicated), and
	 * per acting index the objects whose chunk that member lacks. */
	struct ec_code *ec;
	uint64_t ec_lacking[MAP_PG_ACTING_MAX];
};

/* The PG layer of one OSD. */
struct osd_pgs {
	struct osd_pg **buckets;
	uint32_t bucket_mask;
	struct list_node all; /* every PG this OSD knows (never freed before fini) */
	struct pg_obj **obj_buckets;
	uint64_t obj_bucket_mask, n_objs;
	struct pg_call **call_buckets;
	uint32_t call_bucket_mask;
	uint64_t next_tid;
	struct list_node record_queue; /* PGs waiting to send their record */
	/* The records of one command: out (running), then answered and
	 * waiting for a map of at least batch_epoch to see which applied. */
	struct pg_record_slot {
		struct osd_pg *pg;
		uint64_t gen;
	} batch[MAP_CMD_ACTIVE_MAX];
	uint32_t n_batch;
	bool batch_running;
	uint64_t batch_epoch; /* answered: resolve once the map reaches it */
	struct list_node recovering;   /* PGs with objects to recover */
	unsigned rec_active;	       /* recovery items in flight */
	uint64_t rec_tokens_bytes, rec_refill_ns;
	uint64_t rec_bytes_total, rec_objects_total;
	uint64_t strays_removed; /* objects of stray copies deleted */
	uint64_t map_epoch; /* of the map last processed */
	/* Volumes with snapshots in the map of snap_epoch, by (pool, inode)
	 * (pg_snap.c); and snap create/rm barriers waiting for writes. */
	struct pg_snap_vol *snap_vols;
	uint32_t n_snap_vols;
	uint64_t snap_epoch;
	struct list_node syncs; /* struct pg_sync */
	struct list_node replica_ops; /* sub-operations in flight here (pg_replica.c) */
	struct list_node scrub_parts; /* this OSD reading its copies for a scrub */
	struct osd_pg *scrub_pg;      /* the PG this OSD scrubs (one at a time) */
	struct io_timer scrub_timer;  /* the next chunk or PG as soon as one ends */
	unsigned scrubs_running;
	uint64_t scrubs_done;
	uint64_t scrubbed_objects; /* objects whose copies scrubs compared */
	uint64_t bad_found, bad_repaired; /* over all its PGs, since it started */
	uint64_t scrub_tokens, scrub_refill_ns, scrub_next_look_ns;
	uint64_t client_ops; /* client operations on this OSD's PGs */
	struct list_node marks;	      /* local complete marks in flight (pg.c) */
	struct list_node purges;      /* stray deletes in flight (pg_replica.c) */
	/* Logs (pg_log.c): entries held over every PG; peerings by kind and
	 * the bytes of their queries and answers with other OSDs. */
	uint64_t log_entries;
	uint64_t peerings_log, peerings_full, peering_bytes;
	bool log_frozen; /* osd_stop: the logs are written out */
	unsigned log_writes; /* their writes in flight */
};

/* pg.c */
void pg_for_each(struct osd *o, void (*fn)(struct osd_pg *pg, void *arg), void *arg);
struct osd_pg *pg_get(struct osd *o, uint32_t pool, uint32_t pg, bool create);
const struct cluster_map *pg_map(const struct osd_pg *pg);
struct pg_obj *pg_obj_get(struct osd_pg *pg, const struct object_id *oid, bool create);
void pg_obj_maybe_free(struct pg_obj *obj);
/* Frees OBJ whatever it holds (a reset: nothing refers to it any more). */
void pg_obj_free(struct pg_obj *obj);
/* A member's answer to the query (takes ownership of MSG, a PG_INFO). */
void pg_peering_info(struct osd_pg *pg, uint32_t osd, struct msg *msg);
/* Stores this OSD's complete mark for EPOCH through REQ (pg->store_writes
 * counted; DONE calls pg_store_write_done). 0 or -ENOMEM. */
int pg_mark_write(struct osd_pg *pg, uint64_t epoch, store_done_fn done, void *ctx,
		  struct store_req *req);
/* Reads the record object's contents (the mark, scrub times and cursor)
 * into PG; the complete epoch, or 0 when there is none. */
uint64_t pg_meta_decode(struct osd_pg *pg, const uint8_t *buf, size_t len);
/* A sub-operation failed or a member vanished: peer again (same interval). */
void pg_repeer(struct osd_pg *pg, const char *why);
/* Every acting member holds everything now: record that. */
void pg_recovery_done(struct osd_pg *pg);
/* A RECOVERING PG's members in MASK hold everything now: it activates
 * with them (the rest recovers while it serves). */
void pg_recovered_members(struct osd_pg *pg, uint32_t mask);
bool pg_is_meta(const struct object_id *oid);
struct object_id pg_meta_oid(uint32_t pool, uint32_t pg);
int pg_acting_index(const struct osd_pg *pg, uint32_t osd);

/* Requests to other OSDs (pg.c): MSG is sent to OSD with a fresh tid;
 * DONE(call, rc, reply) runs with the reply (rc 0; the call frees the
 * reply after DONE returns), or never if the PG is reset first. Returns
 * 0, or -errno when MSG could not be sent (MSG freed). */
int pg_call(struct osd_pg *pg, uint32_t osd, struct msg *msg, pg_call_fn done, void *ctx,
	    uint64_t arg);
/* Sub-operation helper: encodes OP (epoch and from filled in) with DATA
 * borrowed (refcount taken) and calls OSD. */
int pg_call_subop(struct osd_pg *pg, uint32_t osd, struct pg_subop *op, struct pg_data *data,
		  pg_call_fn done, void *ctx, uint64_t arg);
struct pg_data *pg_data_new(uint32_t len);
/* Takes ownership of BUF (4 KiB aligned, LEN bytes), with a copy of CRC
 * (NULL, or the CRC32C of each of its LEN / 4096 chunks: see pg_data). */
struct pg_data *pg_data_wrap(void *buf, uint32_t len, const uint32_t *crc);
void pg_data_get(struct pg_data *d);
void pg_data_put(struct pg_data *d);

/* pg_log.c */
/* This OSD is about to change OID of PG (to VERSION; 0: deleted): the
 * change goes into the log before the store sees it. */
void pg_log_change(struct osd_pg *pg, const struct object_id *oid, uint64_t version);
/* The same for a write or delete of a head that makes clone SNAP first. */
void pg_log_change_clone(struct osd_pg *pg, const struct object_id *oid, uint64_t version,
			 uint32_t snap);
/* Appends marker M (a primary issued it, or this OSD is that primary). */
void pg_log_marker(struct osd_pg *pg, const struct pg_marker *m);
/* The log's newest markers, newest first (at most MAX); their count. */
uint32_t pg_log_markers(const struct osd_pg *pg, struct pg_marker *out, uint32_t max);
/* Calls FN for every object the log names after marker M; -ENOENT when M
 * is not in the log (any more). */
int pg_log_after(const struct osd_pg *pg, const struct pg_marker *m,
		 void (*fn)(const struct object_id *oid, void *arg), void *arg);
/* The primary of an active PG issues a sync marker when it may (see
 * pg_log.c); called when a write finishes and from the tick. */
void pg_log_sync_maybe(struct osd_pg *pg);
/* Starts reading the log a clean stop left for PG (then deletes it);
 * true once that is done (or there was none). */
bool pg_log_ready(struct osd_pg *pg);
void pg_log_free(struct osd_pg *pg);
/* Invariant 9 as far as PG's log shows it (osd_pg_check). */
void pg_log_check(const struct osd_pg *pg);
struct object_id pg_log_oid(uint32_t pool, uint32_t pg);

/* pg_snap.c */
struct pg_snap_vol {
	uint32_t pool;
	uint64_t inode;
	uint32_t index; /* in the map's volumes */
};
/* An OSD_OP_SYNC waiting for writes assigned before its epoch. */
struct pg_sync {
	struct list_node node;
	struct msgr_conn *conn; /* NULL once gone */
	uint64_t request_id;
	uint64_t epoch;
};
/* The volume INODE of POOL if it has snapshots in the current map. */
const struct map_volume *pg_snap_volume(struct osd *o, uint32_t pool, uint64_t inode);
/* The version of PG's next write: the map epoch it is assigned in, and
 * the PG's sequence (pg_int.h, invariant 6). */
uint64_t pg_version_next(struct osd_pg *pg);
/* The snapshot whose clone a write to OID must make first (the head is
 * older than the volume's newest snapshot), or 0. */
uint32_t pg_snap_clone_for_write(struct osd_pg *pg, const struct object_id *oid);
/* Submits THEN (a write or delete of a head) to S after making clone
 * SNAP of its head, unless SNAP is 0, the head is absent or the clone
 * exists. A failure completes THEN with the error instead. */
void pg_snap_clone_submit(struct store *s, uint32_t snap, struct store_req *then);
/* The object serving OID (a snapshot's view of a head): a clone, the
 * head, or -ENOENT when the object did not exist at the snapshot (or the
 * snapshot does not); -EAGAIN while recovery has yet to bring a clone
 * that might serve it. */
int pg_snap_resolve(struct osd_pg *pg, const struct object_id *oid, struct object_id *out);
/* OSD_OP_SYNC: answers once no write assigned before EPOCH is in flight
 * here (the caller made sure this OSD's map has EPOCH). */
void pg_snap_sync(struct osd *o, struct msgr_conn *conn, uint64_t request_id, uint64_t epoch);
/* A write finished: barriers it held may answer. */
void pg_snap_sync_kick(struct osd *o);
void pg_snap_conn_closed(struct osd *o, struct msgr_conn *conn);
void pg_snap_syncs_free(struct osd *o);
void pg_snap_fini(struct osd *o);

/* pg_replica.c */
/* Answers a sub-operation: RC, VERSION and WRITTEN (may be NULL), with
 * DATA of LEN bytes (ownership taken; may be NULL) to CONN (NULL:
 * nowhere). */
void pg_replica_answer(struct osd *o, struct msgr_conn *conn, uint64_t request_id, int rc,
		       uint64_t version, const uint8_t *written, void *data, uint32_t len);
void pg_replica_query(struct osd *o, struct msgr_conn *conn, struct msg *msg);
void pg_replica_subop(struct osd *o, struct msgr_conn *conn, struct msg *msg);
/* The local member's answer to its own primary (no network); Q as the
 * query would be sent (its entries are copied). */
void pg_local_query(struct osd_pg *pg, const struct pg_query *q);
void pg_replica_conn_closed(struct osd *o, struct msgr_conn *conn);
/* PG's log is read (pg_log.c): deferred queries may go now. */
void pg_replica_log_ready(struct osd_pg *pg);
/* A store write of PG finished: deferred queries may go now. */
void pg_store_write_done(struct osd_pg *pg);
void pg_replica_fini(struct osd *o);
/* This OSD holds objects of PG PGID of pool P: deletes them when its copy
 * can never be needed again (a stray: see pg_replica.c). */
void pg_stray_check(struct osd *o, const struct map_pool *p, uint32_t pgid);
/* osd_forget: frees sub-operations in flight, without answering. */
void pg_replica_forget(struct osd *o);
/* osd_stop: answers still to come go nowhere. */
void pg_replica_detach(struct osd *o);

/* pg_io.c */
void pg_io_dispatch_waiting(struct osd_pg *pg);
void pg_op_free(struct pg_op *op);
/* The EC path's ends of a client operation: a read answered (BUF, the
 * op's length, taken; NULL on error), a write's local piece applied, a
 * member's answer to a write, a write that could not start. */
void pg_io_read_answer(struct pg_op *op, int rc, uint64_t version, void *buf);
/* OP goes back to the head of its object's queue, undispatched (its
 * object needs recovery first). */
void pg_io_requeue(struct pg_op *op);
void pg_io_write_local_result(struct pg_op *op, int res);
void pg_io_write_remote_done(struct pg_call *call, int rc, struct msg *reply);
void pg_io_write_failed(struct pg_op *op, int rc, const char *why);
void pg_io_obj_kick(struct pg_obj *obj);
/* Answers RC to every operation waiting on OBJ (its recovery failed). */
void pg_io_obj_fail(struct pg_obj *obj, int rc);
/* The same for its writes only (reads and deletes wait, or run). */
void pg_io_obj_fail_writes(struct pg_obj *obj, int rc);
/* Answers every operation with -EAGAIN and lets go of them. */
void pg_io_reset(struct osd_pg *pg);
/* osd_forget: frees every operation, even those the store holds. */
void pg_io_forget(struct osd_pg *pg);

/* pg_scrub.c */
struct pg_scrub;
/* A member's part: PG_SUB_SCRUB from CONN (its answer: the copies read). */
void pg_scrub_subop(struct osd_pg *pg, struct msgr_conn *conn, uint64_t request_id,
		    const struct pg_subop *sub);
void pg_scrub_tick(struct osd *o, uint64_t now_ns);
void pg_scrub_init(struct osd *o);
/* Scrub PG (this OSD its primary) as soon as it is active and clean. */
void pg_scrub_request(struct osd *o, struct osd_pg *pg, bool deep);
/* Invariant 7 for PG (osd_pg_check). */
void pg_scrub_check(const struct osd_pg *pg);
/* Whether a write to OID waits for the chunk being scrubbed. */
bool pg_scrub_blocks(const struct osd_pg *pg, const struct object_id *oid);
/* A write or recovery of PG finished: the chunk waiting for it may go. */
void pg_scrub_kick(struct osd_pg *pg);
/* The PG peers again: a running scrub stops (it resumes later). */
void pg_scrub_reset(struct osd_pg *pg);
/* Writes the PG's scrub times and cursor (with its complete mark). */
void pg_scrub_persist(struct osd_pg *pg);
void pg_scrub_stat(const struct osd_pg *pg, struct mon_pg_stat *st);
void pg_scrub_conn_closed(struct osd *o, struct msgr_conn *conn);
/* osd_stop: answers still to come go nowhere. */
void pg_scrub_detach(struct osd *o);
/* osd_forget: frees what is in flight without answering. */
void pg_scrub_forget(struct osd *o);

/* pg_ec.c */
struct pg_ec_op;
struct pg_ec_need;
/* Peering's verdict on an EC object: E[0..n-1] are its entries (every
 * chunk, clone and pending write, sorted), AUTH which peers speak for
 * the record. */
void pg_ec_merge(struct osd_pg *pg, const struct pg_merge_entry *e, size_t n,
		 const bool *auth);
/* Recovery of OBJ (its ec needs), an item of pg_recovery.c (REC): made,
 * then started; it ends in pg_recovery_ec_finished(REC, rc), -ENODATA
 * when fewer than K chunks are left. A PG reset abandons it: true when
 * it is freed now, false when a local piece is out (it ends then, with
 * -ECANCELED). Forget frees it whatever is out (osd_forget). */
/* Peering by log: the objects the logs name, *C (*N entries, as
 * encoded), become every chunk and pending write of those objects (a
 * member may hold a chunk that no log names). 0 or -ENOMEM (*C kept). */
int pg_ec_candidates(const struct osd_pg *pg, uint8_t **c, size_t *n);
struct pg_rec;
struct pg_ec_rec;
struct pg_ec_rec *pg_ec_recover_new(struct pg_rec *rec, struct pg_obj *obj);
void pg_ec_recover_start(struct pg_ec_rec *r);
bool pg_ec_recover_abandon(struct pg_ec_rec *r);
void pg_ec_recover_forget(struct pg_ec_rec *r);
/* The acting members still lacking OBJ's chunk (0: not an EC object's). */
uint32_t pg_ec_lacking(const struct pg_obj *obj);
/* OBJ's EC needs go (it was deleted, or recovered). */
void pg_ec_need_drop(struct pg_obj *obj);
/* What a member does to SHARD (pg_ec.c): PREPARE stores the window
 * (OFFSET, LEN of BUF) as the shard's pending write at VERSION; COMMIT
 * applies the pending write (VERSION: the one meant; 0: whichever) to
 * the shard, making clone CLONE_SNAP of it first (0: none), and deletes
 * it; DELETE drops the shard and any pending write. */
enum pg_ec_kind { PG_EC_PREPARE, PG_EC_COMMIT, PG_EC_DELETE };
/* The caller fills the fields above the line; DONE(a, rc) runs once
 * (pg->store_writes counted meanwhile). BUF is borrowed until then. */
struct pg_ec_apply {
	struct osd_pg *pg;
	enum pg_ec_kind kind;
	struct object_id shard;
	uint32_t offset, len;
	void *buf;
	uint64_t version;
	uint32_t clone_snap;
	void (*done)(struct pg_ec_apply *a, int rc);
	void *ctx;
	/* ---- */
	int step;
	unsigned next;	/* DELETE: the next chunk (and pending write) to look for */
	void *scratch; /* COMMIT: the pending block as read */
	struct store_req req;
};
void pg_ec_apply_start(struct pg_ec_apply *a);
/* PG is of a K+M pool: 0, or -ENOMEM. */
int pg_ec_init(struct osd_pg *pg, unsigned k, unsigned m);
void pg_ec_free(struct osd_pg *pg);
/* OID as this OSD stores it: its chunk's shard in an EC pool. */
struct object_id pg_local_oid(const struct osd_pg *pg, const struct object_id *oid);
/* A client read of OID (OP's object, or the clone serving its snapshot)
 * or write of an EC object, dispatched (pg_io.c counts it on its
 * object). */
void pg_ec_read(struct pg_op *op, const struct object_id *oid);
void pg_ec_write(struct pg_op *op);
/* Every member prepared OP's write and the client has its answer: the
 * commits go out, and OP's pieces count them (true); false when there is
 * nothing to commit (a delete, or the commits are done). */
bool pg_ec_commit(struct pg_op *op);
/* OP's write is done on every member: the chunks its reads found bad are
 * rebuilt now, at its version (rebuilt at the version read, they would
 * meet the write's newer one). */
void pg_ec_write_done(struct pg_op *op);
void pg_ec_op_free(struct pg_ec_op *e);
/* OID at VERSION is bad on the acting members BAD (a read or a scrub
 * found it): recovery rebuilds their chunks from those of SOURCES (acting
 * members known to hold VERSION), after dropping those of NEWER (a
 * subset of BAD holding a newer version). False when fewer than K
 * sources are left (nothing done); true when it is recorded, or already
 * being recovered. */
bool pg_ec_repair(struct osd_pg *pg, const struct object_id *oid, uint64_t version,
		  uint32_t bad, uint32_t newer, uint32_t sources);

/* pg_recovery.c */
void pg_recovery_kick(struct osd *o);
/* An EC object's recovery item ended (pg_ec.c). */
void pg_recovery_ec_finished(struct pg_rec *rec, int rc);
void pg_recovery_urgent(struct pg_obj *obj);
/* OBJ was deleted on every acting member: nothing of it is left to
 * recover (its needs, and the PG's count of them, go). */
void pg_recovery_gone(struct pg_obj *obj);
/* OSD's copy of OBJ (at VERSION) failed its checksum or could not be
 * read: it is repaired from a good copy (recovery, with the same
 * version), and no longer used as a source. False when no other copy is
 * left to repair it from (then OBJ is unfound). */
bool pg_recovery_bad_copy(struct pg_obj *obj, uint32_t osd, uint64_t version);
void pg_recovery_reset(struct osd_pg *pg);
/* Peering found no acting member holding everything: chooses the one
 * that lacks the fewest objects and puts its objects first. */
void pg_recovery_pick_target(struct osd_pg *pg);
/* osd_forget: frees every item, even those the store holds. */
void pg_recovery_forget(struct osd_pg *pg);
/* Peering's verdict for one object (see struct pg_obj). */
void pg_recovery_need(struct osd_pg *pg, const struct object_id *oid, uint64_t auth_version,
		      uint32_t need_push, uint32_t need_remove, const uint32_t *sources,
		      uint32_t n_sources);

#endif
