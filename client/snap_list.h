/* A pool's listing kept for snapshot arithmetic (client/snap_*.c, and
 * basalt-fuse's st_blocks of snapshot files):
 * every entry (head or clone) of the volumes asked for, sorted so that
 * each object's entries are adjacent — head first, clones by snapshot —
 * and the rule that says which entry a snapshot reads (the same rule as
 * the OSDs' pg_snap_resolve; docs/ARCHITECTURE.md, "Snapshots"). */
#ifndef BASALT_CLIENT_SNAP_LIST_H
#define BASALT_CLIENT_SNAP_LIST_H

#include <stddef.h>
#include <stdint.h>

#include "common/cluster/map.h"
#include "common/object.h"

struct bs_snap_entry {
	uint64_t inode, index, version, size;
	uint32_t snap;
	uint32_t users, first_user; /* bs_volume_usage: readers; the first */
};

/* The entries of the volumes with an inode in INODES[0..N_INODES)
 * (sorted). */
struct bs_snap_list {
	const uint64_t *inodes;
	size_t n_inodes;
	struct bs_snap_entry *e;
	size_t n, cap;
};

/* A bs_admin_list_fn: keeps OID's entry if its inode is asked for. */
int bs_snap_list_found(const struct object_id *oid, uint64_t version, uint64_t size, void *arg);

/* Sorts by (inode, index, snap) and keeps one entry per id (the newest
 * version: a listing may meet an object twice when a PG changes primary
 * between two OSDs' answers). */
void bs_snap_list_sort(struct bs_snap_list *l);

/* How many entries from E[0] belong to E[0]'s object (N entries left). */
size_t bs_snap_list_object(const struct bs_snap_entry *e, size_t n);

/* The entry of E[0..N) (one object) that snapshot S reads, or -1 when it
 * reads nothing there (zeros): the first clone with an id at least S's if
 * its content is older than S, else nothing; without such a clone, the
 * head if older than S. */
long bs_snap_list_resolve(const struct bs_snap_entry *e, size_t n, const struct map_snap *s);

/* The entry of E[0..N) the live volume reads (its head), or -1. */
long bs_snap_list_resolve_head(const struct bs_snap_entry *e, size_t n);

#endif
