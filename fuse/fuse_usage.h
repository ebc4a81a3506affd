/* basalt-fuse: the bytes each volume has written, for st_blocks (du);
 * for a snapshot file, the bytes reading it returns (its referenced).
 *
 * A thin volume's file has the volume's size but uses only the objects
 * written. Counting them per stat would cost a request per object, so the
 * counts come from a listing of each pool that holds volumes (one
 * BS_LIST per up OSD, 40 bytes per object of the pool) kept in memory:
 * taken at mount, and again when a stat finds it older than the age it
 * allows — the stat is answered from the older one meanwhile. Runs on the
 * client's loop thread, like the rest of fuse_fs. */
#ifndef BASALT_FUSE_FUSE_USAGE_H
#define BASALT_FUSE_FUSE_USAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "client/libbasalt.h"

struct fuse_usage;

/* Counts of the volumes of C's map (borrowed until destroy). */
int fuse_usage_create(struct bs_client *c, struct fuse_usage **out);
/* Frees U; nothing may be busy (fuse_usage_busy). */
void fuse_usage_destroy(struct fuse_usage *u);
/* A listing is running. */
bool fuse_usage_busy(const struct fuse_usage *u);
/* Starts a listing unless one runs or the last finished less than
 * MAX_AGE_MS ago. */
void fuse_usage_refresh(struct fuse_usage *u, uint64_t max_age_ms);
/* Bytes written to volume INODE's objects (its heads: clones kept for
 * snapshots are not the live volume's) as of the last listing: 0, or
 * -ENOENT when no listing has counted it yet. */
int fuse_usage_bytes(const struct fuse_usage *u, uint64_t inode, uint64_t *out /* out */);
/* The same for snapshot SNAP of volume INODE: the bytes of the objects
 * reading it returns. */
int fuse_usage_snap_bytes(const struct fuse_usage *u, uint64_t inode, uint32_t snap,
			  uint64_t *out /* out */);

#endif
