/* Backups of volume snapshots to an S3 bucket (basalt backup ...):
 * content-addressed 4 MiB chunks of volume address space, compressed
 * (zstd) and optionally encrypted (AES-256-GCM), one manifest per backup
 * written last; incremental from `snap diff`; restore, verify, retention
 * with two-phase garbage collection. docs/ARCHITECTURE.md, "Backups",
 * has the layout of a repository and why it is safe.
 *
 * The repository is reached through struct backup_store (S3 in
 * production, memory in unit tests) and the volume through struct
 * backup_source / backup_target (libbasalt in production), so every
 * rule here is testable without a cluster or a server. */
#ifndef BASALT_CLIENT_BACKUP_BACKUP_H
#define BASALT_CLIENT_BACKUP_BACKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cluster/map.h"

#define BACKUP_CHUNK_SIZE (4u << 20)
#define BACKUP_ID_MAX 32 /* "20261206T121500Z-1a2b3c4d" + NUL */
#define BACKUP_KEY_PREFIX_MAX 512
/* zstd's level unless told: 1. Measured in bench/backup.sh (2 GiB, half
 * random, half text): level 3 took 1.35x the time for 7% fewer bytes,
 * and made a backup slower than `aws s3 cp` of the raw data. */
#define BACKUP_ZSTD_LEVEL 1

/* --- where the backups are ------------------------------------------------ */

typedef int (*backup_list_fn)(const char *key, uint64_t size, int64_t mtime_s, void *arg);

/* Object storage, one connection per worker thread (connect). Keys are
 * whole keys (the repository's prefix included). Every call returns 0 or
 * -errno with one line in WHY; -ENOENT is "no such key". */
struct backup_store_ops {
	int (*connect)(void *ctx, void **conn /* out */, char *why, size_t why_len);
	void (*disconnect)(void *conn);
	int (*put)(void *conn, const char *key, const void *buf, size_t len, char *why,
		   size_t why_len);
	/* *BUF: caller frees. */
	int (*get)(void *conn, const char *key, void **buf, size_t *len, char *why,
		   size_t why_len);
	int (*head)(void *conn, const char *key, uint64_t *len, char *why, size_t why_len);
	int (*del)(void *conn, const char *key, char *why, size_t why_len);
	int (*list)(void *conn, const char *prefix, backup_list_fn fn, void *arg, char *why,
		    size_t why_len);
	/* Requests and bytes sent so far on CONN (for the figures). */
	void (*counters)(void *conn, uint64_t *requests, uint64_t *bytes_sent,
			 uint64_t *bytes_received);
};

struct backup_store {
	const struct backup_store_ops *ops;
	void *ctx;
};

struct backup_repo_params {
	struct backup_store store;
	char prefix[BACKUP_KEY_PREFIX_MAX]; /* "" or "a/b": keys are PREFIX/... */
	const char *key_file;		    /* NULL: no encryption */
	unsigned parallel;		    /* transfers at once (0 = 8) */
	int zstd_level;			    /* 0 = 1 (BACKUP_ZSTD_LEVEL) */
	bool progress;			    /* a progress line on stderr */
	const char *url;		    /* "s3://bucket/prefix", for messages */
};

struct backup_repo;

/* Opens the repository: reads its config object (PREFIX/basalt-backup.json),
 * checks the key file matches it (-EKEYREJECTED: wrong key; -ENOKEY: the
 * repository is encrypted and no key was given; -EPERM: a key was given for
 * an unencrypted repository). CREATE makes the config object when absent
 * (the first backup); otherwise -ENOENT says there is no repository there. */
int backup_repo_open(const struct backup_repo_params *p, bool create, struct backup_repo **out,
		     char *why, size_t why_len);
void backup_repo_close(struct backup_repo *r);
bool backup_repo_encrypted(const struct backup_repo *r);
/* How long a prune waits before deleting a chunk it found unreferenced
 * (the repository's, 24 h unless its config says otherwise); also the
 * longest a backup may run. */
int64_t backup_repo_grace(const struct backup_repo *r);


/* Writes a new random 256-bit key to PATH (created, mode 0600; never
 * overwritten: -EEXIST). */
int backup_key_create(const char *path, char *why, size_t why_len);

/* --- what a backup is ----------------------------------------------------- */

struct backup_summary {
	char id[BACKUP_ID_MAX];
	char volume[MAP_NAME_MAX];
	char snapshot[MAP_NAME_MAX];
	char parent[BACKUP_ID_MAX]; /* "" for a full backup */
	uint64_t inode;		    /* of the volume then (a recreated volume differs) */
	uint64_t size;		    /* the snapshot's size in bytes */
	uint64_t snap_epoch;	    /* the map epoch that made the snapshot */
	int64_t snap_time_s;	    /* when the snapshot was taken */
	int64_t created_s;	    /* when the backup was committed */
	uint32_t chunk_size;
	uint64_t chunks;	 /* chunks with data (holes are none) */
	uint64_t data_bytes;	 /* their plaintext bytes */
	uint64_t stored_bytes;	 /* their bytes in the bucket */
	uint64_t read_bytes;	 /* volume bytes this backup read */
	uint64_t uploaded_bytes; /* chunk bytes this backup sent */
	uint64_t chunks_uploaded;
	double seconds;		 /* how long it took */
	uint8_t map_sha256[32];	 /* of its chunk map object */
};

/* Calls FN for every committed backup (of VOLUME only, when non-NULL),
 * oldest first. */
typedef int (*backup_summary_fn)(const struct backup_summary *s, void *arg);
int backup_list(struct backup_repo *r, const char *volume, backup_summary_fn fn, void *arg,
		char *why, size_t why_len);
/* Reads backup ID's summary: -ENOENT when there is none (never committed
 * or removed). */
int backup_info(struct backup_repo *r, const char *id, struct backup_summary *out, char *why,
		size_t why_len);

/* --- making one ---------------------------------------------------------- */

typedef int (*backup_extent_fn)(uint64_t offset, uint64_t length, void *arg);

/* The snapshot being backed up. read() runs on the calling thread only. */
struct backup_source_ops {
	/* Calls FN for every extent that may hold data in the snapshot, or
	 * (BASE non-NULL) that may differ from snapshot BASE of the same
	 * volume. -ENOENT when BASE is gone. */
	int (*extents)(void *ctx, const char *base, backup_extent_fn fn, void *arg, char *why,
		       size_t why_len);
	int (*read)(void *ctx, uint64_t offset, uint32_t len, void *buf, char *why,
		    size_t why_len);
	/* 0 while the snapshot still exists as it was when opened (so what
	 * was read is its content); -ESTALE when it was removed. */
	int (*check)(void *ctx, char *why, size_t why_len);
	/* Whether snapshot NAME of the volume exists and was made at map
	 * epoch EPOCH (so it is the one a backup was taken of). */
	bool (*has_snap)(void *ctx, const char *name, uint64_t epoch);
};

struct backup_source {
	const struct backup_source_ops *ops;
	void *ctx;
	char volume[MAP_NAME_MAX];
	char snapshot[MAP_NAME_MAX];
	uint64_t inode, size, snap_epoch;
	int64_t snap_time_s;
};

struct backup_result {
	struct backup_summary s;
	bool incremental;
	char base_snapshot[MAP_NAME_MAX]; /* the snapshot the diff started from */
	char note[256];			  /* why it was full, when it could not be incremental */
	uint64_t chunks_examined;	  /* chunks read and hashed */
	uint64_t chunks_present;	  /* found in the bucket already */
	uint64_t requests;
};

/* Backs SRC up: a diff from the snapshot of the newest backup of the same
 * volume (when it still exists), else every extent; chunks already in
 * the bucket are not sent; the chunk map, then the summary (the commit)
 * are written last. Run again after a failure, it sends only what is
 * missing. -ESTALE when the snapshot was removed meanwhile (nothing
 * committed). */
int backup_create(struct backup_repo *r, const struct backup_source *src,
		  struct backup_result *out, char *why, size_t why_len);

/* --- reading one back ---------------------------------------------------- */

/* Where a restore writes. Runs on the calling thread only. */
struct backup_target_ops {
	int (*write)(void *ctx, uint64_t offset, uint32_t len, const void *buf, char *why,
		     size_t why_len);
	/* Makes [OFFSET, OFFSET+LEN) read zeros (and free what it held). */
	int (*zero)(void *ctx, uint64_t offset, uint64_t len, char *why, size_t why_len);
};

struct backup_target {
	const struct backup_target_ops *ops;
	void *ctx;
	bool fresh; /* a new volume: holes need nothing written */
};

struct backup_restore_result {
	uint64_t chunks, bytes_written, bytes_zeroed, bytes_downloaded;
	double seconds;
};

/* Checks every chunk of ID is in the bucket, then writes them into T,
 * each only after it decrypted and matched its hash: zero runs and holes
 * are not written on a fresh target and zeroed on an old one. A chunk
 * that is missing or bad stops it with -EBADMSG / -ENOENT naming the
 * chunk and the volume range it covers; nothing wrong is written. */
int backup_restore(struct backup_repo *r, const char *id, const struct backup_target *t,
		   struct backup_restore_result *out, char *why, size_t why_len);

/* One bad chunk found by verify. */
struct backup_bad_chunk {
	uint8_t id[32];
	uint64_t offset, length; /* the volume range it covers */
	int rc;			 /* -ENOENT missing, -EBADMSG corrupt */
	char why[256];
};

struct backup_verify_result {
	uint64_t chunks, bytes_checked;
	size_t n_bad;
	struct backup_bad_chunk *bad; /* caller frees */
	double seconds;
};

/* Checks every chunk of backup ID is in the bucket at its size; DEEP
 * downloads, decrypts and hashes each too. 0 when all are good, else
 * -EBADMSG with OUT naming each bad one. */
int backup_verify(struct backup_repo *r, const char *id, bool deep,
		  struct backup_verify_result *out, char *why, size_t why_len);

/* --- reading one in place (basalt-nbd's backup:ID exports) --------------------- */

struct backup_reader;

/* Loads backup ID's summary and chunk map. *OUT: close with
 * backup_reader_close (before R). */
int backup_reader_open(struct backup_repo *r, const char *id, struct backup_reader **out,
		       char *why, size_t why_len);
void backup_reader_close(struct backup_reader *rd);
const struct backup_summary *backup_reader_summary(const struct backup_reader *rd);
/* Whether chunk INDEX holds data (false: a hole, it reads zeros). */
bool backup_reader_has(const struct backup_reader *rd, uint64_t index);
/* A connection of its own for a thread that fetches (any thread; one
 * per thread): 0 or -errno with WHY. */
int backup_repo_connect(struct backup_repo *r, void **conn, char *why, size_t why_len);
void backup_repo_disconnect(struct backup_repo *r, void *conn);
/* Fetches chunk INDEX over CONN into BUF (BACKUP_CHUNK_SIZE bytes):
 * opened, decrypted and hashed back to its id before it counts; *LEN its
 * bytes (the last chunk may be shorter; a hole fills BUF with zeros up to
 * its length). 0, or -ENOENT / -EBADMSG / a transfer's error, with WHY
 * naming the chunk and the volume bytes it covers. Safe from several
 * threads at once, each with its own CONN. */
int backup_reader_chunk(struct backup_reader *rd, void *conn, uint64_t index, void *buf,
			uint32_t *len, char *why, size_t why_len);

/* --- removing them ------------------------------------------------------- */

/* Removes backup ID's summary then its map; its chunks go at a prune. */
int backup_remove(struct backup_repo *r, const char *id, char *why, size_t why_len);

struct backup_retention {
	unsigned last, hourly, daily, weekly, monthly; /* 0 = that rule keeps none */
};

struct backup_prune_result {
	/* Backups, in list order: KEEP[i] says whether backup IDS[i] stays. */
	size_t n;
	struct backup_summary *backups; /* caller frees */
	bool *keep;			/* caller frees */
	uint64_t chunks_marked;		/* unreferenced, deletable after the grace */
	uint64_t chunks_deleted, bytes_deleted;
	uint64_t chunks_kept_young; /* marked, but rewritten since: marked again */
	uint64_t maps_deleted;	    /* of backups that never committed */
};

/* Applies RET to the backups of each volume (of VOLUME only, when
 * non-NULL), by snapshot time in UTC hours, days, ISO weeks and months;
 * removes those it does not keep; then the garbage collection: chunks no
 * backup references are marked, and chunks marked at least GRACE_S ago,
 * still unreferenced and not rewritten since, are deleted. DRY_RUN
 * reports and changes nothing. */
int backup_prune(struct backup_repo *r, const char *volume, const struct backup_retention *ret,
		 int64_t grace_s, bool dry_run, struct backup_prune_result *out, char *why,
		 size_t why_len);

/* Which of the N summaries (sorted oldest first) RET keeps, into KEEP. */
void backup_retention_apply(const struct backup_summary *s, size_t n,
			    const struct backup_retention *ret, bool *keep /* out */);

#endif
