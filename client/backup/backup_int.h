/* What only the backup sources share: keys, the sealed-object envelope,
 * the manifest codec, the repository's object names, and the worker
 * pool that moves chunks in parallel. backup.h is the contract. */
#ifndef BASALT_CLIENT_BACKUP_BACKUP_INT_H
#define BASALT_CLIENT_BACKUP_BACKUP_INT_H

#include <pthread.h>

#include "client/backup/backup.h"

/* --- keys (backup_key.c) --------------------------------------------------- */

struct backup_keys {
	bool encrypted;
	uint8_t data[32];  /* AES-256-GCM of chunks and manifests */
	uint8_t id[32];	   /* HMAC-SHA-256 chunk names */
	uint8_t check[32]; /* what the repository's config records */
};

/* Reads key file PATH and derives the three keys (HKDF-SHA-256). */
int backup_key_load(const char *path, struct backup_keys *out, char *why, size_t why_len);
/* The chunk's name: SHA-256 of PLAIN, or HMAC-SHA-256 under K->id. */
void backup_chunk_id(const struct backup_keys *k, const void *plain, size_t len,
		     uint8_t id[32] /* out */);
void backup_sha256(const void *buf, size_t len, uint8_t out[32]);
/* Whether LEN bytes of BUF are all zero (a hole: never stored or written). */
bool backup_all_zero(const uint8_t *buf, size_t len);

/* --- sealed objects (backup_seal.c) -------------------------------------------
 * Every object Basalt writes in the bucket but the config is one envelope:
 *   magic[8] | flags u8 | reserved[3] | plain_len le32 | nonce[12]? | body | tag[16]?
 * flags: 1 = body is a zstd frame, 2 = AES-256-GCM (nonce and tag present,
 * the 16-byte header and the caller's AAD authenticated). */
#define BACKUP_SEAL_ZSTD 1u
#define BACKUP_SEAL_GCM 2u
#define BACKUP_SEAL_HEADER 16u

/* Seals PLAIN into a new buffer *OUT (caller frees): compressed at
 * LEVEL when that makes it smaller, encrypted when K is. */
int backup_seal(const struct backup_keys *k, const char magic[8], const void *aad,
		size_t aad_len, const void *plain, size_t len, int level, void **out,
		size_t *out_len, char *why, size_t why_len);
/* Opens what backup_seal made: -EBADMSG with WHY when the magic, the
 * tag, the frame or the length is wrong; -ENOKEY when it is encrypted
 * and K is not. At most MAX_PLAIN bytes. *PLAIN: caller frees. */
int backup_unseal(const struct backup_keys *k, const char magic[8], const void *aad,
		  size_t aad_len, const void *buf, size_t len, size_t max_plain, void **plain,
		  size_t *plain_len, char *why, size_t why_len);

/* --- manifests (backup_manifest.c) --------------------------------------------- */

struct backup_chunk_ref {
	uint64_t index; /* chunk number in the volume: offset / chunk_size */
	uint8_t id[32];      /* also its checksum: the plaintext's SHA-256 (HMAC) */
	uint32_t stored_len; /* the stored object's bytes */
	uint32_t plain_len;
};

struct backup_map {
	struct backup_chunk_ref *c; /* sorted by index */
	size_t n, cap;
};

int backup_map_add(struct backup_map *m, const struct backup_chunk_ref *c);
void backup_map_free(struct backup_map *m);
/* The entry for chunk INDEX, or NULL (a hole). M sorted. */
const struct backup_chunk_ref *backup_map_find(const struct backup_map *m, uint64_t index);
void backup_map_sort(struct backup_map *m);

/* JSON text of S / M into a new string (caller frees), and back. */
char *backup_summary_encode(const struct backup_summary *s);
int backup_summary_decode(const char *text, size_t len, struct backup_summary *out, char *why,
			  size_t why_len);
char *backup_map_encode(const char *id, const struct backup_map *m);
int backup_map_decode(const char *text, size_t len, const char *id, struct backup_map *out,
		      char *why, size_t why_len);

/* --- the repository (backup_repo.c) ---------------------------------------------- */

struct backup_repo {
	struct backup_repo_params p;
	struct backup_keys keys;
	void *conn; /* the calling thread's connection */
	int64_t grace_s; /* from the config object */
	char url[BACKUP_KEY_PREFIX_MAX + 80];
};

/* PREFIX/NAME into OUT (BACKUP_KEY_PREFIX_MAX + 96). */
void backup_key_name(const struct backup_repo *r, const char *name, char *out);
void backup_chunk_key(const struct backup_repo *r, const uint8_t id[32], char *out);
/* Reads and opens sealed object NAME (relative to the prefix); WANT_SUM
 * (may be NULL): the SHA-256 its stored bytes must have (-EBADMSG). */
int backup_repo_get_sealed(struct backup_repo *r, void *conn, const char *magic,
			   const char *name, const uint8_t *want_sum, size_t max_plain,
			   void **plain, size_t *len, char *why, size_t why_len);
int backup_repo_put_sealed(struct backup_repo *r, void *conn, const char *magic,
			   const char *name, const void *plain, size_t len, uint8_t sum[32],
			   char *why, size_t why_len);
/* Backup ID's summary and chunk map (the map's hash checked against the
 * summary): -ENOENT when there is no such backup. */
int backup_load(struct backup_repo *r, const char *id, struct backup_summary *s,
		struct backup_map *m, char *why, size_t why_len);
/* Backup ID's chunk map (its hash checked against S). */
int backup_repo_load_map(struct backup_repo *r, const struct backup_summary *s,
			 struct backup_map *out, char *why, size_t why_len);
/* qsort order of summaries: by snapshot time, then the map epoch that
 * made the snapshot (the order they were taken in), creation, id. */
int backup_summary_order(const void *a, const void *b);
/* Every committed summary, oldest first (*OUT: caller frees). */
int backup_repo_summaries(struct backup_repo *r, const char *volume,
			  struct backup_summary **out, size_t *n, char *why, size_t why_len);

/* Chunks marked unreferenced by a prune, with when (gc/pending). */
struct backup_mark {
	uint8_t id[32];
	int64_t marked_s;
};
struct backup_marks {
	uint64_t generation; /* bumped by every prune that deletes */
	struct backup_mark *m; /* sorted by id */
	size_t n;
};
int backup_marks_load(struct backup_repo *r, void *conn, struct backup_marks *out, char *why,
		      size_t why_len);
int backup_marks_store(struct backup_repo *r, void *conn, const struct backup_marks *m,
		       char *why, size_t why_len);
/* Sorts M's marks by id, as backup_marks_find needs them. */
void backup_marks_sort(struct backup_marks *m);
const struct backup_mark *backup_marks_find(const struct backup_marks *m, const uint8_t id[32]);
void backup_marks_free(struct backup_marks *m);

/* gc/deleting, {"updated": SECONDS}: written by a sweep before it lists
 * and refreshed while it deletes (backup_deleting_touch), removed after. */
#define BACKUP_DELETING_FRESH_S 120 /* older: the prune that wrote it died */
int backup_deleting_touch(struct backup_repo *r, void *conn, char *why, size_t why_len);
int backup_deleting_clear(struct backup_repo *r, void *conn, char *why, size_t why_len);
enum backup_deleting { BACKUP_DELETING_NONE, BACKUP_DELETING_NOW, BACKUP_DELETING_STALE };
int backup_deleting_state(struct backup_repo *r, void *conn, enum backup_deleting *out,
			  char *why, size_t why_len);

/* A fresh backup id from the clock: "YYYYMMDDTHHMMSSZ-xxxxxxxx". */
void backup_new_id(char out[BACKUP_ID_MAX]);
double backup_now(void);

/* --- workers (backup_pool.c) ---------------------------------------------------- */

struct backup_job;
/* Runs on a worker thread with its own connection CONN. */
typedef void (*backup_job_fn)(struct backup_job *job, void *conn);

struct backup_job {
	backup_job_fn fn;
	void *arg;
	int rc;
	char why[256];
	struct backup_job *next; /* the pool's */
};

struct backup_pool;

/* N threads, each connected to R's store. */
int backup_pool_start(struct backup_repo *r, unsigned n, struct backup_pool **out, char *why,
		      size_t why_len);
/* Queues JOB (borrowed until it comes back from backup_pool_wait). */
void backup_pool_submit(struct backup_pool *p, struct backup_job *job);
/* The next finished job, waiting for one; NULL when none is queued or running. */
struct backup_job *backup_pool_wait(struct backup_pool *p);
unsigned backup_pool_busy(const struct backup_pool *p);
/* Waits for every job, stops the threads; adds their request counts to *REQUESTS. */
void backup_pool_stop(struct backup_pool *p, uint64_t *requests, uint64_t *sent,
		      uint64_t *received);

/* --- progress (backup_pool.c) ---------------------------------------------- */

struct backup_progress {
	bool on;
	const char *what;
	uint64_t total, done; /* bytes */
	double start, last;
};
void backup_progress_tick(struct backup_progress *p, uint64_t done);
void backup_progress_end(struct backup_progress *p);

#endif
