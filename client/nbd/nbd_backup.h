/* Backups served in place (basalt-nbd's backup:ID exports): the backups
 * open now, one cache of their chunks shared by every export of the
 * server — bounded in bytes, least recently used chunk evicted first,
 * concurrent misses of one chunk fetched once — and a few fetch threads,
 * each with its own connection to the repository, since fetching blocks
 * (HTTP). Everything here runs on the loop's thread except the ops, which
 * run on the fetch threads; their results come back through io_loop_post.
 * The repository sits behind struct nbd_backup_ops (nbd_backup_repo.c in
 * basalt-nbd, a fake in the unit test). */
#ifndef BASALT_CLIENT_NBD_BACKUP_H
#define BASALT_CLIENT_NBD_BACKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/io/loop.h"
#include "common/list.h"

/* The repository, called on the fetch threads. Each returns 0 or -errno
 * with one line in WHY. */
struct nbd_backup_ops {
	/* A connection for one fetch thread. */
	int (*connect)(void *ctx, void **conn /* out */, char *why, size_t why_len);
	void (*disconnect)(void *ctx, void *conn);
	/* Opens backup ID: *SRC (closed with close) and its size in bytes;
	 * -ENOENT when there is no such backup. Never two at once. */
	int (*open)(void *ctx, const char *id, void **src /* out */, uint64_t *size /* out */,
		    char *why, size_t why_len);
	void (*close)(void *ctx, void *src);
	/* Whether chunk INDEX holds data (a hole reads zeros, fetched never). */
	bool (*has)(void *src, uint64_t index);
	/* Fetches chunk INDEX of SRC into BUF (chunk_size bytes): *LEN its
	 * length (the last one may be shorter). */
	int (*chunk)(void *ctx, void *conn, void *src, uint64_t index, void *buf,
		     uint32_t *len /* out */, char *why, size_t why_len);
};

struct nbd_backup_params {
	uint64_t cache_bytes; /* at least one chunk; 0 = 256 MiB */
	unsigned threads;     /* fetch threads, 1-64; 0 = 4 */
	uint32_t chunk_size;  /* 0 = BACKUP_CHUNK_SIZE (tests use less) */
};

#define NBD_BACKUP_CACHE_DEFAULT (256ull << 20)
#define NBD_BACKUP_ID_MAX 64

struct nbd_backups; /* the set: cache, threads, open backups */
struct nbd_backup;  /* one open backup */

/* Starts the fetch threads. OPS and CTX are borrowed until destroy. */
int nbd_backups_create(struct io_loop *loop, const struct nbd_backup_ops *ops, void *ctx,
		       const struct nbd_backup_params *p, struct nbd_backups **out /* out */);
/* Joins the threads (a fetch running finishes first) and frees the
 * cache. No backup may be held and no read in flight. */
void nbd_backups_destroy(struct nbd_backups *b);

/* The cache's figures (for tests and the log). */
struct nbd_backups_stats {
	uint64_t fetches, fetch_errors, evictions;
	uint64_t hits, misses; /* chunks found cached; fetches started */
	uint64_t joined;       /* misses of a chunk already being fetched */
	uint64_t cached_bytes, cached_bytes_max; /* now, and the most ever */
};
void nbd_backups_stats(const struct nbd_backups *b, struct nbd_backups_stats *out /* out */);
/* Asserts the cache's invariants (nbd_backup.c, at the top). */
void nbd_backups_check(const struct nbd_backups *b);

/* RC 0: BK is held (give it back with nbd_backup_put); else WHY says why
 * (-ENOENT: no such backup). */
typedef void (*nbd_backup_open_fn)(void *arg, int rc, struct nbd_backup *bk, const char *why);
/* Opens backup ID, or takes another hold on it when it is open already;
 * DONE(ARG, ...) runs later on the loop's thread, always. */
void nbd_backup_open(struct nbd_backups *b, const char *id, nbd_backup_open_fn done, void *arg);
/* Gives a hold back; the last one closes the backup and drops its chunks
 * from the cache (once its fetches in flight have ended). */
void nbd_backup_put(struct nbd_backup *bk);
uint64_t nbd_backup_size(const struct nbd_backup *bk);
uint32_t nbd_backup_chunk_size(const struct nbd_backup *bk);
const char *nbd_backup_id(const struct nbd_backup *bk);
/* Whether chunk INDEX of BK holds data. */
bool nbd_backup_has(const struct nbd_backup *bk, uint64_t index);

/* A read of BK: the caller fills the first fields and owns the struct
 * until DONE runs (later, on the loop's thread, always; RC 0, or -EIO with
 * WHY naming the chunk that could not be fetched). */
struct nbd_backup_read {
	uint64_t offset;
	uint32_t len;
	void *buf;
	void (*done)(struct nbd_backup_read *rd, int rc, const char *why);
	void *ctx; /* the caller's */
	/* private */
	struct nbd_backup *bk;
	uint64_t next;	    /* the next chunk to look at */
	unsigned waiting;   /* chunks being fetched for it */
	struct list_node stalled; /* on the set's list while the cache is full */
	struct nbd_backup_waiter *waiters; /* one per chunk it spans */
	int rc;
	char why[256];
	struct io_post post;
};

/* Starts RD (OFFSET and LEN inside the backup, LEN > 0). */
void nbd_backup_read(struct nbd_backup *bk, struct nbd_backup_read *rd);

#endif
