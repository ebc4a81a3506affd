/* Changes to whole volumes that free data: removal and resizing, with
 * the order that never leaves a block without a name and the checks that
 * keep them from destroying what a client is using. Every front end (the
 * basalt CLI, basalt-nbd, basalt-fuse, the plugin to come) goes through
 * these rather than ordering the steps itself.
 *
 * The steps reach the cluster through struct bs_admin_ops: the real one
 * (bs_admin_cluster) uses the monitors (monc) for the map, listings and
 * map commands and libbasalt (bs_sync) for deletes and zeroing; a test
 * can pass its own. */
#ifndef BASALT_CLIENT_VOLUME_ADMIN_H
#define BASALT_CLIENT_VOLUME_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client/libbasalt.h"
#include "client/monc.h"
#include "common/cluster/map.h"

typedef int (*bs_admin_list_fn)(const struct object_id *oid, uint64_t version, uint64_t size,
				void *arg);

struct bs_admin_ops {
	/* The newest map into *OUT (caller frees with map_free). */
	int (*get_map)(void *ctx, struct cluster_map *out, char *why, size_t why_len);
	/* Calls FN for every object of pool POOL. */
	int (*list)(void *ctx, const char *pool, bs_admin_list_fn fn, void *arg, char *why,
		    size_t why_len);
	/* Runs the N deletes of OPS; returns how many failed (a delete of an
	 * object already gone succeeds). */
	size_t (*delete_objects)(void *ctx, struct bs_op *ops, size_t n, char *why, size_t why_len);
	/* Writes zeros over LEN bytes at OFFSET of volume NAME. */
	int (*zero)(void *ctx, const char *name, uint64_t offset, uint32_t len, char *why,
		    size_t why_len);
	/* Runs CMD on the monitors' leader: 0 with TEXT ("done", "already
	 * done") and *EPOCH, or the map's refusal with TEXT saying why. */
	int (*command)(void *ctx, struct map_cmd *cmd, char *text, size_t text_len,
		       uint64_t *epoch);
	/* Waits until every up OSD has map EPOCH and no write assigned
	 * before it in flight (bs_sync_osds). */
	int (*barrier)(void *ctx, uint64_t epoch, char *why, size_t why_len);
	/* Reads LEN bytes from offset 0 of object OID (oid->snap > 0: as
	 * that snapshot has it): 0, -ENOENT (absent), or -errno with WHY. */
	int (*read)(void *ctx, const struct object_id *oid, void *buf, uint32_t len, char *why,
		    size_t why_len);
	/* Writes LEN bytes of BUF at OFFSET of object OID (4 KiB units);
	 * FLAGS BS_OP_CREATE: only if it does not exist (-EEXIST). */
	int (*write)(void *ctx, const struct object_id *oid, uint32_t offset, const void *buf,
		     uint32_t len, unsigned flags, char *why, size_t why_len);
	/* Runs the N reads and writes of OPS, many at a time; RESULTS[i]
	 * gets each one's 0 or -errno (-ENOENT: no such object; -EEXIST: a
	 * BS_OP_CREATE write found one). */
	void (*run)(void *ctx, struct bs_op *ops, size_t n, int *results);
	/* Takes volume NAME's exclusive lock (as a writer would: -EBUSY
	 * with WHY naming the holder), so no writer starts meanwhile. */
	int (*lock)(void *ctx, const char *name, char *why, size_t why_len);
	/* Gives it back and waits (a bounded time) until it is. */
	void (*unlock)(void *ctx, const char *name);
};

struct bs_admin {
	const struct bs_admin_ops *ops;
	void *ctx;
};

/* The cluster's admin ops. Borrows MC, CFG and P until the last call;
 * opens a libbasalt client into *IO the first time one is needed (the
 * caller closes it with bs_sync_close). */
struct bs_admin_cluster {
	struct monc *mc;
	struct cfg *cfg;
	const struct bs_client_params *p;
	struct bs_sync **io;
};
void bs_admin_cluster_init(struct bs_admin *a, struct bs_admin_cluster *ctx);

/* What a removal or a resize did. */
struct bs_volume_change {
	bool freed;		/* objects were looked for and freed */
	size_t objects_freed;
	uint64_t bytes_freed;	/* bytes written in the objects freed */
	uint64_t old_size, new_size;
	size_t objects_restored; /* rollback: objects written back from the
				  * snapshot; flatten: copied from the parent */
	char result[64];	/* the monitors' answer: "done", "already done" */
	uint64_t epoch;		/* the map's epoch after the change */
};

/* Removes volume NAME: checks the map would let it go (it exists, has no
 * snapshots, is not locked: -ENOENT, -EBUSY), frees every object, then
 * drops the name. Cut short, the volume is still there and removing it
 * again finishes, so no block is ever left without a name. 0, or -errno
 * with one line in WHY (-ENAMETOOLONG, -EIO when objects could not all
 * be freed). */
int bs_volume_remove(const struct bs_admin *a, const char *name, struct bs_volume_change *out,
		     char *why, size_t why_len);

/* Resizing to a smaller size discards data: it is done only with this. */
#define BS_RESIZE_ALLOW_SHRINK 1u

/* Sets volume NAME's size to SIZE bytes (a multiple of 512). Growing
 * just changes the map. Shrinking is refused without
 * BS_RESIZE_ALLOW_SHRINK (-EPERM, WHY saying by how much it would shrink)
 * and while the volume is locked (-EBUSY: a client has it open for
 * writing); otherwise it zeroes the cut-off tail of the last object kept
 * (so growing again reads zeros), changes the map (writers stop at the
 * new end), then frees every object past the end. Resizing to the size
 * it has frees those again: that finishes a shrink cut short. A volume
 * with snapshots keeps its objects (the snapshots may still read them).
 * 0, or -errno with one line in WHY. */
int bs_volume_resize(const struct bs_admin *a, const char *name, uint64_t size, unsigned flags,
		     struct bs_volume_change *out, char *why, size_t why_len);

/* --- snapshots (client/snap_admin.c) --------------------------------------- */

/* One VOLUME@SNAP. */
struct bs_snap_spec {
	char volume[MAP_NAME_MAX];
	char snap[MAP_NAME_MAX];
};
/* Parses "VOLUME@SNAP" into OUT: 0, or -EINVAL with WHY. */
int bs_snap_spec_parse(const char *text, struct bs_snap_spec *out, char *why, size_t why_len);

/* Snapshots the N volumes of SPECS at one instant (one map epoch; at
 * most MAP_SNAP_GROUP_MAX): every write acknowledged before the call is
 * in them, none acknowledged after it returns is, and each write in
 * flight meanwhile lands wholly on one side (per object). The monitor
 * refuses bad names, duplicates and unknown volumes (nothing changes);
 * a failed barrier leaves the snapshots made and says so in WHY. */
int bs_snap_create(const struct bs_admin *a, const struct bs_snap_spec *specs, uint32_t n,
		   struct bs_volume_change *out, char *why, size_t why_len);

/* Removes SPEC and frees at once every clone no remaining snapshot
 * needs (out->objects_freed, out->bytes_freed). Running it again after
 * it was cut short frees what is left (the snapshot's name is gone by
 * then: -ENOENT says so, after freeing). */
int bs_snap_remove(const struct bs_admin *a, const struct bs_snap_spec *spec,
		   struct bs_volume_change *out, char *why, size_t why_len);

/* Protects SPEC (PROTECT) or unprotects it: a protected snapshot can be
 * cloned and cannot be removed; unprotecting is refused while a clone's
 * parent is it (-EBUSY naming the clone). -EALREADY when it already is. */
int bs_snap_protect(const struct bs_admin *a, const struct bs_snap_spec *spec, bool protect,
		    struct bs_volume_change *out, char *why, size_t why_len);

/* Makes volume SPEC->volume what snapshot SPEC->snap holds, size
 * included. Refused while a client has the volume locked for writing
 * (-EBUSY naming it; nothing changed); holds the lock itself while it
 * puts the objects back, so no writer starts meanwhile. Only objects written since the
 * snapshot are touched: each is deleted, or rewritten from the
 * snapshot's view (its non-zero 4 KiB chunks, so it stays sparse);
 * newer snapshots keep their view (the OSDs clone the head first).
 * Cut short, running it again finishes. */
int bs_snap_rollback(const struct bs_admin *a, const struct bs_snap_spec *spec,
		     struct bs_volume_change *out, char *why, size_t why_len);

/* --- clones (client/clone_admin.c) ------------------------------------------------ */

/* Makes volume NEW, a clone of SPEC (which must be protected) in pool
 * POOL (NULL: the parent's): it reads the snapshot where it has not
 * written itself, and costs nothing until written. */
int bs_volume_clone(const struct bs_admin *a, const struct bs_snap_spec *spec, const char *new,
		    const char *pool, struct bs_volume_change *out, char *why, size_t why_len);

/* Copies into clone NAME every object it still reads from its parents,
 * then makes it forget its parent (whose snapshot may then be
 * unprotected and removed). Runs while the clone is written (a writer's
 * own copy is never overwritten: copies are create-only). Refused for a
 * clone with snapshots (-EBUSY: they read through to the parent), and
 * -EALREADY for a volume that is no clone. */
int bs_volume_flatten(const struct bs_admin *a, const char *name, struct bs_volume_change *out,
		      char *why, size_t why_len);

/* Space of one volume and its snapshots, from a listing of its objects
 * (time proportional to objects, no data read). Bytes are bytes written
 * (4 KiB units), one copy. Every byte stored is counted once in one of
 * exclusive_bytes (the live volume's alone), snapshots_exclusive_bytes
 * (one snapshot's alone), shared_bytes (read by two or more of the live
 * volume and its snapshots) and garbage_bytes, so those four add up to
 * stored_bytes. */
struct bs_snap_usage {
	uint32_t id;
	char name[MAP_NAME_MAX];
	uint64_t size, epoch, time_ms;
	bool protected;		   /* may be cloned; cannot be removed */
	uint64_t referenced_bytes; /* what reading the snapshot returns */
	uint64_t exclusive_bytes;  /* held for it alone: what snap rm frees */
};
struct bs_volume_usage {
	char name[MAP_NAME_MAX];
	char pool[MAP_NAME_MAX];
	uint64_t inode;
	uint64_t size;		   /* provisioned */
	uint64_t objects;	   /* heads and clones */
	uint64_t referenced_bytes; /* the live volume's */
	uint64_t exclusive_bytes;  /* written since the newest snapshot: no
				    * snapshot shares it */
	uint64_t snapshots_bytes;  /* every clone (held for snapshots only) */
	uint64_t snapshots_exclusive_bytes; /* the snapshots' exclusive, summed */
	uint64_t shared_bytes;	   /* read by more than one of the live volume
				    * and the snapshots */
	uint64_t stored_bytes;	   /* every object: x copies = OSDs' data */
	uint64_t raw_bytes;	   /* stored_bytes as the OSDs hold it: every
				    * copy, or K+M chunks of K (map_pool_raw_per_byte) */
	uint64_t garbage_bytes;	   /* clones no snapshot needs (a snap rm cut
				    * short; the next one frees them) */
	uint32_t n_snaps;
	struct bs_snap_usage *snaps; /* n_snaps of them, allocated (a volume may
				      * have MAP_MAX_SNAPS: no fixed array) */
};
/* Fills OUT for volume NAME: 0, -ENOENT, or a listing's failure, with WHY.
 * Caller frees OUT->snaps (free). */
int bs_volume_usage(const struct bs_admin *a, const char *name, struct bs_volume_usage *out,
		    char *why, size_t why_len);
/* The same for volume NAME, or for every volume when NAME is NULL (in
 * the map's order; none is not an error), listing each pool that holds
 * them once: *OUT has *N entries, caller frees with bs_volumes_usage_free. */
int bs_volumes_usage(const struct bs_admin *a, const char *name, struct bs_volume_usage **out,
		     uint32_t *n, char *why, size_t why_len);
void bs_volumes_usage_free(struct bs_volume_usage *u, uint32_t n);

/* --- differences between snapshots (client/snap_diff.c) ------------------------ */

/* One changed extent: LENGTH bytes at OFFSET hold other bytes in the
 * newer state; DATA false when it reads zeros there (nothing is stored).
 * A nonzero return stops the diff and is returned. */
typedef int (*bs_snap_diff_fn)(uint64_t offset, uint64_t length, bool data, void *arg);

struct bs_snap_diff_info {
	uint64_t from_size, to_size; /* the two states' sizes */
	uint32_t block_size;	     /* the granularity: one object */
	uint64_t extents, changed_bytes;
};

/* What changed in volume VOLUME from snapshot FROM (NULL: from nothing,
 * so every object it holds; all of a clone) to snapshot TO (NULL: the
 * live volume), one object at a time, from a listing of the pool:
 * no data is read, time is proportional to the objects. An object
 * differs iff the entries the two states read differ (version, or one
 * side reads nothing). Extents lie within TO's size (the part of a grown
 * volume past FROM's size counts where TO has data; a shrunk one is cut
 * to TO's size, which OUT says), adjacent ones of one kind merged, in
 * offset order. -ENOENT (no such volume or snapshot), -EINVAL (TO older
 * than FROM), or a listing's failure, with WHY. */
int bs_snap_diff(const struct bs_admin *a, const char *volume, const char *from, const char *to,
		 bs_snap_diff_fn fn, void *arg, struct bs_snap_diff_info *out, char *why,
		 size_t why_len);

#endif
