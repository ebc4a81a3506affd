/* basalt-fuse's filesystem: MOUNT/volumes/NAME is each volume as a
 * regular file of the volume's size, MOUNT/snapshots/VOL@SNAP each
 * snapshot as a read-only one of the snapshot's size.
 *
 * libfuse's worker threads only wrap each request into a job and post it
 * to the client's loop; everything else (the map, the volumes, the
 * locks) lives on that one thread, and replies go back from there as the
 * volume requests finish, so many requests run at once without a lock
 * anywhere. Files are opened direct_io: the kernel keeps no copy of the
 * data (no double caching under a loop-mounted filesystem, and a write
 * is durable on every copy when it returns).
 *
 * A writable open takes the volume's exclusive lock (libbasalt.h) and
 * the last writable close gives it back; a volume locked elsewhere is
 * refused with EBUSY and the holder named in the log. */
#ifndef BASALT_FUSE_FUSE_FS_H
#define BASALT_FUSE_FUSE_FS_H

#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)
#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <sys/types.h>

#include "client/libbasalt.h"
#include "common/metrics.h"

struct fuse_fs;

/* Owners and modes: every file and directory belongs to UID and GID;
 * directories are 0777, volume files 0666 (0444 with read_only) and
 * snapshot files 0444, each less UMASK (077 by default: 0700, 0600,
 * 0400). The kernel checks them against the caller (default_permissions). */
struct fuse_fs_params {
	bool read_only;	  /* -o ro: no writes, no locks */
	bool break_lock;  /* take locks over, fencing their holders */
	const char *only; /* --volume NAME: expose this one only (NULL: all) */
	uid_t uid;	  /* -o uid=, else the mounting user */
	gid_t gid;	  /* -o gid=, else the mounting user's group */
	mode_t umask;	  /* -o umask=, else 077 */
	/* Where the basalt_fuse_* series go (borrowed; NULL: counted nowhere
	 * visible). */
	struct metrics_registry *metrics;
};

/* The lowlevel operations; their userdata is the struct fuse_fs. */
extern const struct fuse_lowlevel_ops fuse_fs_ops;

/* The filesystem (the session's userdata), before the session starts. */
int fuse_fs_create(const struct fuse_fs_params *p, struct fuse_fs **out);
/* The client it serves through, on LOOP: before the first request. It
 * starts listing the pools for st_blocks (fuse_fs_busy until done). */
void fuse_fs_attach(struct fuse_fs *fs, struct io_loop *loop, struct bs_client *client);
/* Requests still being served (posted or running), and a listing for
 * st_blocks still running. */
unsigned fuse_fs_busy(const struct fuse_fs *fs);
/* Gives back every lock still held (the kernel may end without releasing
 * every file) and frees FS; nothing may be busy. */
void fuse_fs_destroy(struct fuse_fs *fs);

#endif
