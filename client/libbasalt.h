/* libbasalt: the client library. It authenticates with the cluster's
 * keyring, follows the cluster map from the monitors, computes each
 * object's placement itself and sends every operation straight to the
 * primary OSD of the object's placement group; it resends (with the same
 * request id, so a write is applied once) when the map moves, a link
 * drops, the PG is not ready, or an answer is late.
 *
 * Asynchronous: the client runs on the caller's io_loop; bs_submit()
 * starts an operation and its done() runs later from that loop.
 * Synchronous: bs_sync_*() own a private loop and wait. Objects are
 * (pool, inode, index) and hold up to the pool's block_size bytes;
 * reads and writes take 4 KiB-aligned ranges within one object. */
#ifndef BASALT_CLIENT_LIBBASALT_H
#define BASALT_CLIENT_LIBBASALT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/list.h"
#include "common/io/loop.h"
#include "common/object.h"
#include "common/cluster/map.h"

struct bs_client;
struct msgr_conn;

struct bs_client_params {
	const char *entity;	 /* default "client.admin" */
	const char *keyring;	 /* path; required */
	/* An operation not done by then fails with -ETIMEDOUT; 0 waits as
	 * long as it takes (a VM disk blocks rather than fails). */
	uint64_t op_timeout_ms;
	uint64_t attempt_timeout_ms; /* resend an unanswered attempt; default 5000 */
	/* Who holds a volume lock, for people: default
	 * "ENTITY on HOST pid PID" (at most MAP_OWNER_MAX - 1 bytes). */
	const char *owner;
	uint64_t lock_renew_ms; /* lease renewals while holding a lock; default 2000 */
	uint64_t lock_timeout_ms; /* a lock request unanswered by then fails; default 20000 */
};

/* Creates a client on LOOP from CFG ([mon.*] sections). 0, or -errno
 * with a one-line reason in WHY. The map arrives later: operations
 * submitted before then wait for it. */
int bs_client_create(struct io_loop *loop, struct cfg *cfg, const struct bs_client_params *p,
		     struct bs_client **out, char *why, size_t why_len);
/* Fails what is in flight with -ECANCELED (their done() runs from
 * here), closes every link and frees C. */
void bs_client_destroy(struct bs_client *c);

/* Runs the client's loop until the map has pool NAME (a monitor's map
 * may lag its creation a little): 0 with *OUT set, or -ETIMEDOUT after
 * TIMEOUT_MS. For tools starting up, not for code inside a loop. */
int bs_client_wait_pool(struct bs_client *c, const char *name, uint64_t timeout_ms,
			const struct map_pool **out /* out */);

/* Whether a map has arrived, and the newest one. */
bool bs_client_have_map(const struct bs_client *c);
/* Runs C's loop until the first map: 0; -ETIMEDOUT after TIMEOUT_MS, or
 * -ECONNREFUSED once every monitor has refused connections for 2 s (time
 * for one being restarted), WHY naming each monitor and what it did. */
int bs_client_wait_map(struct bs_client *c, uint64_t timeout_ms, char *why, size_t why_len);
const struct cluster_map *bs_client_map(const struct bs_client *c);
/* Whether our key's caps in the current map let us read the objects of
 * INODE in pool POOL, and *MAY_WRITE whether also write them (the OSDs
 * decide; this tells early). Entities of the keyring file may. */
bool bs_client_may(struct bs_client *c, uint32_t pool, uint64_t inode, bool *may_write /* out */);

/* BS_SCRUB asks for a scrub: of PG oid.index of pool oid.pool (sent to
 * its primary), or with oid.index OSD_SCRUB_ALL of every PG OSD
 * oid.inode is primary of; deep with BS_OP_DEEP. op->size: how many PGs
 * were scheduled.
 * BS_LIST lists the objects of pool oid.pool in the PGs OSD oid.inode is
 * primary of: op->buf is set to a buffer of op->len bytes that the
 * caller frees (free()); bs_list_entry reads it. -EHOSTDOWN when that OSD
 * is down. The OSD lists as of this client's map (the client asks again
 * while their epochs differ) and only once each of those PGs is active,
 * objects its own copy still lacks included: every object of those PGs.
 * bs_object_list lists a whole pool with it.
 * BS_SYNC waits until OSD oid.inode has this client's map and no write it
 * assigned a version before that map's epoch is in flight (snapshots use
 * it); -EHOSTDOWN when that OSD is down.
 * Reads and stats of oid.snap > 0 see the object as snapshot oid.snap of
 * its volume had it (-ENOENT: it did not exist then). */
enum bs_op_type { BS_READ = 1, BS_WRITE, BS_DELETE, BS_STAT, BS_SCRUB, BS_LIST, BS_SYNC };

struct bs_op;
typedef void (*bs_done_fn)(struct bs_op *op, int rc);

/* A write that only zeroes what exists (a TRIM's partial chunks): it is
 * let through when the pool is full, as deletes are. */
#define BS_OP_FULL_TRY 1
#define BS_OP_DEEP 2 /* BS_SCRUB: a deep scrub */
/* BS_WRITE only if the object does not exist yet: -EEXIST otherwise,
 * nothing written (a clone's copy-up from its parent). */
#define BS_OP_CREATE 4

/* One operation. The caller owns it (and BUF) until DONE runs. */
struct bs_op {
	enum bs_op_type type;
	struct object_id oid;
	uint32_t offset, len; /* READ, WRITE */
	void *buf;	      /* WRITE: the data; READ: where it goes */
	uint8_t flags;	      /* BS_OP_* */
	bs_done_fn done;      /* RC 0 or -errno: -ENOENT (no such object),
			       * -EINVAL (bad range), -ENOSPC (a write to a
			       * full pool: refused at once while the map
			       * says so, or by the OSDs), -ETIMEDOUT,
			       * -ECANCELED (client destroyed), -EIO,
			       * -ESHUTDOWN (this client was fenced) */
	void *ctx;
	/* Results. */
	uint64_t version; /* the object's version after a write, as read */
	uint64_t size;	  /* STAT: bytes of the object ever written */
	/* Private to the client. */
	struct bs_op *hash_next;  /* in flight, by tid */
	struct list_node waiting; /* not in flight: waiting to be (re)sent */
	uint64_t reqid, tid, started_ns, sent_ns, retry_at_ns;
	uint32_t osd;
	unsigned attempts;
	bool in_flight;
	/* A READ whose reply's data is being received straight into BUF, on
	 * this connection: until that receive has ended, the operation is
	 * neither answered nor resent (see libbasalt.c, "pinned"). */
	struct msgr_conn *rx_conn;
	struct bs_client *client;
	bool done_deferred; /* answered once rx_conn is NULL, with DONE_RC */
	int done_rc;
};

/* Starts OP; its done() runs later, from the client's loop. */
void bs_submit(struct bs_client *c, struct bs_op *op);
/* Entry I of a finished BS_LIST's answer: 0, or -ENOENT past its end.
 * SIZE: the object's bytes written. */
int bs_list_entry(const struct bs_op *op, size_t i, struct object_id *oid /* out */,
		  uint64_t *version /* out */, uint64_t *size /* out */);

/* What the client has done since it started. */
struct bs_client_stats {
	uint64_t ops, resends, timeouts, map_updates;
	/* Bytes received as whole maps and as incremental updates. */
	uint64_t map_full_bytes, map_inc_bytes;
};
void bs_client_stats(const struct bs_client *c, struct bs_client_stats *out /* out */);

/* The loop the client runs on. */
struct io_loop *bs_client_loop(const struct bs_client *c);

/* --- exclusive volume locks -------------------------------------------------- */

/* A client that writes a volume takes its lock first, so that one client
 * writes it at a time. The lock lives in the cluster map; the client
 * renews its lease with the monitors while it holds it. Another client
 * asking for it is refused (-EBUSY, naming the holder) while the lease
 * runs, and takes it over once the lease has run out (the holder stopped
 * renewing: dead, or cut off) or when it asks to break the lock. A
 * takeover always fences the old holder first: from that map epoch on the
 * OSDs refuse everything that client instance sends, so its writes still
 * in flight never land after the new holder's. A fenced client learns it
 * from the map (or from an OSD's refusal) and fails every operation with
 * -ESHUTDOWN from then on: it has to be started again. */

/* DONE(CTX, RC, WHY) runs later from the client's loop: RC 0 when the
 * lock is held and every operation sent from then on is fenced against
 * the previous holder; -ENOENT (no such volume), -EBUSY (held by another
 * client whose lease runs: WHY names it), -EACCES (the entity may not
 * write: needs osd=rw), -ESHUTDOWN (this client was fenced), -ETIMEDOUT
 * (no monitor answered in lock_timeout_ms), -ECANCELED
 * (unlocked or the client destroyed meanwhile). Asking again for a lock
 * held or being taken just waits for it. */
typedef void (*bs_lock_done_fn)(void *ctx, int rc, const char *why);
void bs_lock(struct bs_client *c, const char *name, bool break_lock, bs_lock_done_fn done,
	     void *ctx);
/* Gives back the lock of volume NAME (as locked): 0, or -ENOENT when not
 * held. The release runs in the background (bs_lock_busy). */
int bs_unlock(struct bs_client *c, const char *name);
bool bs_holds_lock(const struct bs_client *c, const char *name);
/* Lock or unlock requests still running (wait for them before exiting). */
bool bs_lock_busy(const struct bs_client *c);
/* For a program stopping, after its bs_unlock calls: runs C's loop until
 * no lock or unlock request is running, at most TIMEOUT_MS. 0, or
 * -ETIMEDOUT (logged: with no monitor to answer, the leases run out
 * instead). basalt-nbd and basalt-fuse both stop through this. */
int bs_lock_wait_released(struct bs_client *c, uint64_t timeout_ms);
/* Whether this client instance was fenced (see above). */
bool bs_client_fenced(const struct bs_client *c);
/* This client instance's id (what the map's lock and fence lists name). */
uint64_t bs_client_id(const struct bs_client *c);
const char *bs_client_owner(const struct bs_client *c);

/* --- volumes ---------------------------------------------------------------- */

/* A volume (basalt volume create) is objects 0..size/object_size of its
 * inode in its pool; unwritten ranges read as zeros and use no space. */
struct bs_volume;

/* Opens volume NAME as the client's map has it: 0, -ENOENT (no such
 * volume, or its pool is gone) or -ENOMEM. READ_ONLY refuses changes.
 * NAME "VOLUME@SNAP" opens that snapshot, read-only (-EROFS without
 * READ_ONLY), at the size it was taken at; it reads as zeros where the
 * volume held nothing then. */
int bs_volume_open(struct bs_client *c, const char *name, bool read_only,
		   struct bs_volume **out);
/* Nothing may be in flight on V. */
void bs_volume_close(struct bs_volume *v);
/* Its size now (the map's: a resize shows at once); 0 once removed. */
uint64_t bs_volume_size(const struct bs_volume *v);
/* The size of its objects (the pool's block size). */
uint32_t bs_volume_object_size(const struct bs_volume *v);

enum bs_vio_type {
	BS_VIO_READ,
	BS_VIO_WRITE,
	BS_VIO_DISCARD,	     /* the range reads as zeros; whole objects are freed */
	BS_VIO_WRITE_ZEROES, /* the same */
	BS_VIO_FLUSH,	     /* writes are durable when answered: nothing to wait for */
	BS_VIO_MAP,	     /* BUF[i] = 1 when the i-th object the range touches holds
			      * data, 0 when it was never written (at most 1024) */
};

struct bs_vio;
typedef void (*bs_vio_done_fn)(struct bs_vio *vio, int rc);

/* One volume request, on any 512-byte-aligned range inside the volume
 * (whole 4 KiB chunks go straight to the OSDs; the rest is read, patched
 * and written back). The caller owns it and BUF until DONE runs. */
struct bs_vio {
	enum bs_vio_type type;
	uint64_t offset;
	uint32_t len;
	void *buf; /* READ: filled; WRITE: the data */
	bs_vio_done_fn done; /* RC 0 or -EINVAL (range), -EROFS, -ENOSPC,
			      * -ETIMEDOUT, -EIO, -ENOMEM */
	void *ctx;
	/* Results. */
	unsigned holes; /* READ: objects in the range never written */
	/* Private. */
	unsigned pending;
	int rc;
	struct io_post post;
};

/* Starts VIO; its done() runs later from the client's loop. */
void bs_volume_submit(struct bs_volume *v, struct bs_vio *vio);

struct bs_volume_stats {
	uint64_t requests;	/* not counting flushes */
	uint64_t rmw;		/* read-modify-writes of partial chunks */
	uint64_t objects_freed; /* whole objects discarded or zeroed */
	uint64_t copyups;	/* clone: partial changes that looked for the
				 * parent's object to copy in first */
};
void bs_volume_stats(const struct bs_volume *v, struct bs_volume_stats *out /* out */);

/* --- synchronous wrapper ------------------------------------------------- */

struct bs_sync;

/* Opens a client with its own loop (io_uring) and waits up to
 * P->op_timeout_ms (default 30 s) for the first map. */
int bs_sync_open(struct cfg *cfg, const struct bs_client_params *p, struct bs_sync **out,
		 char *why, size_t why_len);
void bs_sync_close(struct bs_sync *s);
/* Runs OP to completion (its done and ctx are the wrapper's). */
int bs_sync_op(struct bs_sync *s, struct bs_op *op);
/* Runs the N operations of OPS, QD at a time; each op's result in
 * RESULTS[i] (may be NULL). Returns how many failed. */
size_t bs_sync_ops(struct bs_sync *s, struct bs_op *ops, size_t n, unsigned qd, int *results);
/* Runs a volume request to completion. */
int bs_sync_vio(struct bs_sync *s, struct bs_volume *v, struct bs_vio *vio);
struct bs_client *bs_sync_client(struct bs_sync *s);
const struct cluster_map *bs_sync_map(const struct bs_sync *s);

/* Runs the client's loop until its map has reached EPOCH, then waits for
 * every OSD up in it to have that map and no write assigned before it
 * still in flight (BS_SYNC): afterwards every write any OSD acknowledges
 * was assigned in EPOCH or later. 0, or -errno with WHY naming the OSD
 * that did not answer. */
int bs_sync_osds(struct bs_sync *s, uint64_t epoch, char *why, size_t why_len);

/* Calls FN for every object of pool POOL_NAME, asking each up OSD for
 * the PGs it is primary of, all as of one map (listed again while the
 * map changes under it; an OSD answers for an active PG only, objects
 * its copy still lacks included); stops at FN's first non-zero return,
 * which it returns. -ENOENT (no such pool), -EIO (an OSD did not
 * answer), -EAGAIN (a PG has no OSD up: its objects are not listed; or
 * the map never held still), with WHY. */
typedef int (*bs_object_list_fn)(const struct object_id *oid, uint64_t version, uint64_t size,
				 void *arg);
int bs_object_list(struct bs_sync *s, const char *pool_name, bs_object_list_fn fn, void *arg,
		   char *why, size_t why_len);
/* bs_object_list over a caller's own loop (the simulation): the client's
 * map, and one operation run to its answer (returning its result). */
struct bs_object_list_io {
	const struct cluster_map *(*map)(void *ctx);
	int (*run)(void *ctx, struct bs_op *op);
	void *ctx;
};
int bs_object_list_io(const struct bs_object_list_io *io, const char *pool_name,
		      bs_object_list_fn fn, void *arg, char *why, size_t why_len);

#endif
