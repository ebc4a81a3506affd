/* backup restore and backup verify: both walk a backup's chunk map with
 * the worker pool fetching chunks. A fetched chunk counts only once it
 * opened (tag, frame, length) and hashed back to its own id; restore
 * writes a chunk only then, verify names every one that does not. */
#include "client/backup/backup_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/number.h"
#include "common/why.h"

enum fetch_mode {
	FETCH_HEAD, /* present, at its size */
	FETCH_DATA, /* downloaded, opened and hashed */
};

struct fetch_job {
	struct backup_job job;
	struct backup_repo *r;
	enum fetch_mode mode;
	const struct backup_chunk_ref *ref;
	void *plain; /* FETCH_DATA: the chunk, malloc'd */
	uint64_t downloaded;
};

static void fetch_run(struct backup_job *job, void *conn)
{
	struct fetch_job *f = (struct fetch_job *)job;
	struct backup_repo *r = f->r;
	char key[BACKUP_KEY_PREFIX_MAX + 96];
	backup_chunk_key(r, f->ref->id, key);
	f->plain = NULL;
	f->downloaded = 0;
	if (f->mode == FETCH_HEAD) {
		uint64_t size;
		job->rc = r->p.store.ops->head(conn, key, &size, job->why, sizeof(job->why));
		if (!job->rc && size != f->ref->stored_len)
			job->rc = why_set(job->why, sizeof(job->why), -EBADMSG,
					  "it holds %" PRIu64 " bytes, the manifest says %u", size,
					  f->ref->stored_len);
		return;
	}
	void *buf;
	size_t n, len;
	job->rc = r->p.store.ops->get(conn, key, &buf, &n, job->why, sizeof(job->why));
	if (job->rc)
		return;
	f->downloaded = n;
	job->rc = backup_unseal(&r->keys, "BSLTCHK1", f->ref->id, 32, buf, n, BACKUP_CHUNK_SIZE,
				&f->plain, &len, job->why, sizeof(job->why));
	free(buf);
	uint8_t id[32];
	if (!job->rc && len == f->ref->plain_len)
		backup_chunk_id(&r->keys, f->plain, len, id);
	if (!job->rc && (len != f->ref->plain_len || memcmp(id, f->ref->id, 32) != 0))
		job->rc = why_set(job->why, sizeof(job->why), -EBADMSG,
				  "its content does not hash to its id (corrupt)");
	if (job->rc) {
		free(f->plain);
		f->plain = NULL;
	}
}

/* "chunk 1a2b… (volume bytes A-B): WHY" */
static int chunk_why(const struct backup_chunk_ref *c, int rc, const char *inner, char *why,
		     size_t why_len)
{
	char hex[65];
	number_hex_encode(c->id, 32, hex);
	uint64_t start = c->index * BACKUP_CHUNK_SIZE;
	return why_set(why, why_len, rc, "chunk %.16s… (volume bytes %" PRIu64 "-%" PRIu64 "): %s",
		       hex, start, start + c->plain_len - 1,
		       rc == -ENOENT ? "missing from the bucket" : inner);
}

/* Runs a fetch of every chunk of M through POOL, PARALLEL at a time,
 * handing each finished one to DONE (which may stop it with non-zero). */
typedef int (*fetch_done_fn)(struct fetch_job *f, void *arg);

static int fetch_all(struct backup_repo *r, const struct backup_map *m, enum fetch_mode mode,
		     fetch_done_fn done, void *arg, struct backup_progress *progress, char *why,
		     size_t why_len)
{
	unsigned parallel = r->p.parallel ? r->p.parallel : 8;
	struct backup_pool *pool;
	int rc = backup_pool_start(r, parallel, &pool, why, why_len);
	if (rc)
		return rc;
	struct fetch_job *jobs = calloc(parallel, sizeof(*jobs));
	struct fetch_job **idle = calloc(parallel, sizeof(*idle));
	unsigned n_idle = 0;
	if (!jobs || !idle)
		rc = why_set(why, why_len, -ENOMEM, "out of memory");
	for (unsigned i = 0; !rc && i < parallel; i++) {
		jobs[i] = (struct fetch_job){ .job.fn = fetch_run, .r = r, .mode = mode };
		idle[n_idle++] = &jobs[i];
	}
	uint64_t bytes = 0;
	for (size_t i = 0; !rc && i <= m->n; i++) {
		while (!rc && (!n_idle || i == m->n)) {
			struct fetch_job *f = (struct fetch_job *)backup_pool_wait(pool);
			if (!f)
				break;
			rc = done(f, arg);
			free(f->plain);
			f->plain = NULL;
			bytes += f->ref->plain_len;
			backup_progress_tick(progress, bytes);
			idle[n_idle++] = f;
		}
		if (rc || i == m->n)
			break;
		struct fetch_job *f = idle[--n_idle];
		f->ref = &m->c[i];
		backup_pool_submit(pool, &f->job);
	}
	for (struct backup_job *job; (job = backup_pool_wait(pool));)
		free(((struct fetch_job *)job)->plain);
	backup_progress_end(progress);
	backup_pool_stop(pool, NULL, NULL, NULL);
	free(jobs);
	free(idle);
	return rc;
}

/* --- verify --------------------------------------------------------------- */

struct verify_run {
	struct backup_verify_result *out;
	size_t cap;
};

static int verify_done(struct fetch_job *f, void *arg)
{
	struct verify_run *v = arg;
	struct backup_verify_result *out = v->out;
	out->chunks++;
	out->bytes_checked += f->mode == FETCH_DATA ? f->downloaded : f->ref->stored_len;
	if (!f->job.rc)
		return 0;
	if (out->n_bad == v->cap) {
		size_t cap = v->cap ? 2 * v->cap : 16;
		struct backup_bad_chunk *b = realloc(out->bad, cap * sizeof(*b));
		if (!b)
			return -ENOMEM;
		out->bad = b;
		v->cap = cap;
	}
	struct backup_bad_chunk *b = &out->bad[out->n_bad++];
	memcpy(b->id, f->ref->id, 32);
	b->offset = f->ref->index * BACKUP_CHUNK_SIZE;
	b->length = f->ref->plain_len;
	b->rc = f->job.rc;
	snprintf(b->why, sizeof(b->why), "%s",
		 f->job.rc == -ENOENT ? "missing from the bucket" : f->job.why);
	return 0;
}

int backup_verify(struct backup_repo *r, const char *id, bool deep,
		  struct backup_verify_result *out, char *why, size_t why_len)
{
	double start = backup_now();
	memset(out, 0, sizeof(*out));
	struct backup_summary s;
	struct backup_map m;
	int rc = backup_load(r, id, &s, &m, why, why_len);
	if (rc)
		return rc;
	struct verify_run v = { .out = out };
	struct backup_progress progress = { .on = r->p.progress, .what = "verify",
					    .total = s.data_bytes };
	rc = fetch_all(r, &m, deep ? FETCH_DATA : FETCH_HEAD, verify_done, &v, &progress, why,
		       why_len);
	backup_map_free(&m);
	out->seconds = backup_now() - start;
	if (!rc && out->n_bad)
		rc = why_set(why, why_len, -EBADMSG, "backup %s has %zu bad chunk%s", id,
			     out->n_bad, out->n_bad == 1 ? "" : "s");
	return rc;
}

/* --- restore ------------------------------------------------------------------- */

struct restore_run {
	const struct backup_target *t;
	struct backup_restore_result *out;
	char *why;
	size_t why_len;
};

/* Writes one chunk's data at OFFSET: runs of non-zero 4 KiB blocks; runs
 * of zero blocks are zeroed on an old volume and skipped on a fresh one. */
static int restore_write(struct restore_run *run, uint64_t offset, const uint8_t *buf,
			 uint32_t len)
{
	const struct backup_target *t = run->t;
	uint32_t at = 0;
	while (at < len) {
		uint32_t n = len - at < 4096 ? len - at : 4096;
		bool zero = backup_all_zero(buf + at, n);
		uint32_t end = at + n;
		while (end < len) {
			uint32_t k = len - end < 4096 ? len - end : 4096;
			if (backup_all_zero(buf + end, k) != zero)
				break;
			end += k;
		}
		int rc = 0;
		if (!zero) {
			rc = t->ops->write(t->ctx, offset + at, end - at, buf + at, run->why,
					   run->why_len);
			run->out->bytes_written += end - at;
		} else if (!t->fresh) {
			rc = t->ops->zero(t->ctx, offset + at, end - at, run->why, run->why_len);
			run->out->bytes_zeroed += end - at;
		}
		if (rc)
			return rc;
		at = end;
	}
	return 0;
}

static int restore_done(struct fetch_job *f, void *arg)
{
	struct restore_run *run = arg;
	if (f->job.rc)
		return chunk_why(f->ref, f->job.rc, f->job.why, run->why, run->why_len);
	run->out->chunks++;
	run->out->bytes_downloaded += f->downloaded;
	return restore_write(run, f->ref->index * BACKUP_CHUNK_SIZE, f->plain, f->ref->plain_len);
}

static int head_done(struct fetch_job *f, void *arg)
{
	struct restore_run *run = arg;
	return f->job.rc ? chunk_why(f->ref, f->job.rc, f->job.why, run->why, run->why_len) : 0;
}

/* On an old volume, the chunks the backup has no data for read zeros. */
static int restore_holes(struct restore_run *run, const struct backup_summary *s,
			 const struct backup_map *m)
{
	const struct backup_target *t = run->t;
	uint64_t n = (s->size + BACKUP_CHUNK_SIZE - 1) / BACKUP_CHUNK_SIZE;
	for (uint64_t i = 0, k = 0; !t->fresh && i < n; i++) {
		if (k < m->n && m->c[k].index == i) {
			k++;
			continue;
		}
		uint64_t offset = i * BACKUP_CHUNK_SIZE;
		uint64_t len = s->size - offset < BACKUP_CHUNK_SIZE ? s->size - offset
								    : BACKUP_CHUNK_SIZE;
		int rc = t->ops->zero(t->ctx, offset, len, run->why, run->why_len);
		if (rc)
			return rc;
		run->out->bytes_zeroed += len;
	}
	return 0;
}

int backup_restore(struct backup_repo *r, const char *id, const struct backup_target *t,
		   struct backup_restore_result *out, char *why, size_t why_len)
{
	double start = backup_now();
	memset(out, 0, sizeof(*out));
	struct backup_summary s;
	struct backup_map m;
	int rc = backup_load(r, id, &s, &m, why, why_len);
	if (rc)
		return rc;
	struct restore_run run = { .t = t, .out = out, .why = why, .why_len = why_len };
	struct backup_progress quiet = { 0 };
	/* Every chunk there first, so a missing one stops it before any write. */
	rc = fetch_all(r, &m, FETCH_HEAD, head_done, &run, &quiet, why, why_len);
	struct backup_progress progress = { .on = r->p.progress, .what = "restore",
					    .total = s.data_bytes };
	if (!rc)
		rc = fetch_all(r, &m, FETCH_DATA, restore_done, &run, &progress, why, why_len);
	if (!rc)
		rc = restore_holes(&run, &s, &m);
	backup_map_free(&m);
	out->seconds = backup_now() - start;
	return rc;
}

/* --- reading in place ------------------------------------------------------------ */

struct backup_reader {
	struct backup_repo *r;
	struct backup_summary s;
	struct backup_map m;
};

int backup_reader_open(struct backup_repo *r, const char *id, struct backup_reader **out,
		       char *why, size_t why_len)
{
	struct backup_reader *rd = calloc(1, sizeof(*rd));
	if (!rd)
		return why_set(why, why_len, -ENOMEM, "out of memory");
	rd->r = r;
	int rc = backup_load(r, id, &rd->s, &rd->m, why, why_len);
	if (rc) {
		free(rd);
		return rc;
	}
	*out = rd;
	return 0;
}

void backup_reader_close(struct backup_reader *rd)
{
	if (!rd)
		return;
	backup_map_free(&rd->m);
	free(rd);
}

const struct backup_summary *backup_reader_summary(const struct backup_reader *rd)
{
	return &rd->s;
}

bool backup_reader_has(const struct backup_reader *rd, uint64_t index)
{
	return backup_map_find(&rd->m, index) != NULL;
}

int backup_repo_connect(struct backup_repo *r, void **conn, char *why, size_t why_len)
{
	return r->p.store.ops->connect(r->p.store.ctx, conn, why, why_len);
}

void backup_repo_disconnect(struct backup_repo *r, void *conn)
{
	if (conn)
		r->p.store.ops->disconnect(conn);
}

int backup_reader_chunk(struct backup_reader *rd, void *conn, uint64_t index, void *buf,
			uint32_t *len, char *why, size_t why_len)
{
	uint64_t offset = index * BACKUP_CHUNK_SIZE;
	if (offset >= rd->s.size)
		return why_set(why, why_len, -EINVAL, "chunk %" PRIu64 " is past the end", index);
	uint64_t left = rd->s.size - offset;
	*len = left < BACKUP_CHUNK_SIZE ? (uint32_t)left : BACKUP_CHUNK_SIZE;
	const struct backup_chunk_ref *ref = backup_map_find(&rd->m, index);
	if (!ref) {
		memset(buf, 0, *len);
		return 0;
	}
	struct fetch_job f = { .r = rd->r, .mode = FETCH_DATA, .ref = ref };
	fetch_run(&f.job, conn);
	if (f.job.rc)
		return chunk_why(ref, f.job.rc, f.job.why, why, why_len);
	if (ref->plain_len != *len) {
		free(f.plain);
		return why_set(why, why_len, -EBADMSG, "chunk %" PRIu64 " holds %u bytes, not %u",
			       index, ref->plain_len, *len);
	}
	memcpy(buf, f.plain, *len);
	free(f.plain);
	return 0;
}
