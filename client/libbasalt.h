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
#include "mon/map.h"

struct bs_client;

struct bs_client_params {
	const char *entity;	 /* default "client.admin" */
	const char *keyring;	 /* path; required */
	/* An operation not done by then fails with -ETIMEDOUT; 0 waits as
	 * long as it takes (a VM disk blocks rather than fails). */
	uint64_t op_timeout_ms;
	uint64_t attempt_timeout_ms; /* resend an unanswered attempt; default 5000 */
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
const struct cluster_map *bs_client_map(const struct bs_client *c);

enum bs_op_type { BS_READ = 1, BS_WRITE, BS_DELETE, BS_STAT };

struct bs_op;
typedef void (*bs_done_fn)(struct bs_op *op, int rc);

/* One operation. The caller owns it (and BUF) until DONE runs. */
struct bs_op {
	enum bs_op_type type;
	struct object_id oid;
	uint32_t offset, len; /* READ, WRITE */
	void *buf;	      /* WRITE: the data; READ: where it goes */
	bs_done_fn done;      /* RC 0 or -errno: -ENOENT (no such object),
			       * -EINVAL (bad range), -ENOSPC, -ETIMEDOUT,
			       * -ECANCELED (client destroyed), -EIO */
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
};

/* Starts OP; its done() runs later, from the client's loop. */
void bs_submit(struct bs_client *c, struct bs_op *op);

/* What the client has done since it started. */
struct bs_client_stats {
	uint64_t ops, resends, timeouts, map_updates;
};
void bs_client_stats(const struct bs_client *c, struct bs_client_stats *out /* out */);

/* --- synchronous wrapper ------------------------------------------------- */

struct bs_sync;

/* Opens a client with its own loop (io_uring) and waits up to
 * P->op_timeout_ms (default 30 s) for the first map. */
int bs_sync_open(struct cfg *cfg, const struct bs_client_params *p, struct bs_sync **out,
		 char *why, size_t why_len);
void bs_sync_close(struct bs_sync *s);
/* Runs OP to completion (its done and ctx are the wrapper's). */
int bs_sync_op(struct bs_sync *s, struct bs_op *op);
const struct cluster_map *bs_sync_map(const struct bs_sync *s);

#endif
