/* The block path under a Docker volume: a basalt-fuse child that serves
 * the one volume as a file (and takes its exclusive lock when the file is
 * opened for writing), a loop device over that file, a filesystem found
 * with libblkid or made on first use, and the mount the container gets.
 *
 *   attach: fuse child -> open file O_RDWR (lock; fences on takeover)
 *           -> loop device (autoclear) -> probe / mkfs -> mount
 *   detach: umount -> loop detaches itself -> fuse child stops (lock
 *           given back by its last writer closing)                     */
#ifndef BASALT_DOCKER_ATTACH_H
#define BASALT_DOCKER_ATTACH_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* What a mounted volume is made of (persisted by state.c). */
struct dk_attach {
	pid_t fuse_pid;
	char loop_dev[32];
	char fs_type[16];
	char fuse_dir[PATH_MAX];   /* STATE/fuse/NAME */
	char mountpoint[PATH_MAX]; /* STATE/mnt/NAME: what containers get */
};

struct dk_attach_params {
	const char *fuse_bin;  /* basalt-fuse */
	const char *conf, *keyring, *entity;
	const char *state_dir;
	const char *log_dir;   /* the fuse children's logs: LOG_DIR/fuse.NAME.log */
	bool break_lock;       /* --takeover break */
	uint64_t wait_ms;      /* --takeover wait: how long a held lock is waited for */
	const char *mkfs_type; /* ext4 or xfs: for a volume with no filesystem and no data */
	/* Whether the volume was ever written: 0 with *HAS_DATA, or -errno
	 * with WHY. Asked only when no filesystem is found. */
	int (*has_data)(void *ctx, const char *name, bool *has_data, char *why, size_t why_len);
	void *ctx;
};

/* Attaches and mounts volume NAME into *A: 0, or -errno with WHY
 * (-EBUSY: the lock is held by another client and, in wait mode, its
 * lease did not run out within WAIT_MS; -EMEDIUMTYPE: the volume holds
 * data but no filesystem we recognize). Nothing is left behind on error.
 * *FORMATTED: whether it was formatted now. */
int dk_attach(const struct dk_attach_params *p, const char *name, struct dk_attach *a,
	      bool *formatted, char *why, size_t why_len);
/* Unmounts A and stops its fuse child: 0, or -EBUSY (still in use: the
 * mount stays) with WHY. */
int dk_detach(struct dk_attach *a, char *why, size_t why_len);
/* Whether A is still in place after a restart of the plugin: its mount
 * point mounted and its fuse child alive. */
bool dk_attach_alive(const struct dk_attach *a);

/* The monotonic clock, nanoseconds: how long waits and calls take. */
uint64_t dk_now_ns(void);

#endif
