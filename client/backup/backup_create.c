/* backup create: read the chunks a snapshot holds (all of them, or what
 * `snap diff` says changed since the last backup's snapshot), name each
 * by its hash, send the ones the bucket lacks, and commit the manifest
 * (chunk map, then summary) last. The calling thread reads the volume;
 * the pool's workers hash, compress, encrypt and transfer. */
#include "client/backup/backup_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/why.h"

struct create_run {
	struct backup_repo *r;
	const struct backup_source *src;
	struct backup_result *out;
	struct backup_map parent; /* the base backup's chunks (empty: full) */
	struct backup_marks marks; /* read when the backup started */
	struct backup_map map;	   /* the new backup's chunks */
	uint8_t *todo;		   /* chunk i is read when todo[i] */
	uint64_t n_chunks;
};

struct chunk_job {
	struct backup_job job;
	struct create_run *run;
	uint64_t index;
	uint8_t *buf;
	uint32_t len;
	bool hole, uploaded;
	struct backup_chunk_ref ref;
};

/* Sends chunk J unless the bucket has it: a chunk the base backup had at
 * this index with the same id is there (it is referenced); any other is
 * looked for, unless a prune marked it (then it is sent again, which
 * keeps the prune from deleting it: docs/ARCHITECTURE.md, "Backups"). */
static void chunk_store(struct chunk_job *j, void *conn)
{
	struct create_run *run = j->run;
	struct backup_repo *r = run->r;
	if (backup_all_zero(j->buf, j->len)) {
		j->hole = true;
		return;
	}
	j->ref.index = j->index;
	j->ref.plain_len = j->len;
	backup_chunk_id(&r->keys, j->buf, j->len, j->ref.id);
	bool marked = backup_marks_find(&run->marks, j->ref.id) != NULL;
	const struct backup_chunk_ref *old = backup_map_find(&run->parent, j->index);
	if (old && !marked && memcmp(old->id, j->ref.id, 32) == 0) {
		j->ref.stored_len = old->stored_len;
		return;
	}
	char key[BACKUP_KEY_PREFIX_MAX + 96];
	backup_chunk_key(r, j->ref.id, key);
	uint64_t size = 0;
	int rc = marked ? -ENOENT : r->p.store.ops->head(conn, key, &size, j->job.why,
							   sizeof(j->job.why));
	if (rc == 0 && size > 0 && size <= 2 * BACKUP_CHUNK_SIZE) {
		j->ref.stored_len = (uint32_t)size;
		return;
	}
	if (rc && rc != -ENOENT) {
		j->job.rc = rc;
		return;
	}
	void *sealed;
	size_t n;
	rc = backup_seal(&r->keys, "BSLTCHK1", j->ref.id, 32, j->buf, j->len, r->p.zstd_level,
			 &sealed, &n, j->job.why, sizeof(j->job.why));
	if (!rc) {
		rc = r->p.store.ops->put(conn, key, sealed, n, j->job.why, sizeof(j->job.why));
		free(sealed);
	}
	if (!rc) {
		j->ref.stored_len = (uint32_t)n;
		j->uploaded = true;
	}
	j->job.rc = rc;
}

static void chunk_job_run(struct backup_job *job, void *conn)
{
	chunk_store((struct chunk_job *)job, conn);
}

/* Takes back finished job J: its chunk joins the map. */
static int chunk_done(struct create_run *run, struct chunk_job *j, char *why, size_t why_len)
{
	struct backup_summary *s = &run->out->s;
	if (j->job.rc)
		return why_set(why, why_len, j->job.rc, "chunk at %" PRIu64 " MiB: %s",
			       j->index * (BACKUP_CHUNK_SIZE >> 20), j->job.why);
	run->out->chunks_examined++;
	if (j->hole)
		return 0;
	if (j->uploaded) {
		s->uploaded_bytes += j->ref.stored_len;
		s->chunks_uploaded++;
	} else {
		run->out->chunks_present++;
	}
	return backup_map_add(&run->map, &j->ref) ? why_set(why, why_len, -ENOMEM, "out of memory")
						   : 0;
}

static int extent_found(uint64_t offset, uint64_t length, void *arg)
{
	struct create_run *run = arg;
	if (!length)
		return 0;
	uint64_t last = (offset + length - 1) / BACKUP_CHUNK_SIZE;
	for (uint64_t i = offset / BACKUP_CHUNK_SIZE; i <= last && i < run->n_chunks; i++)
		run->todo[i] = 1;
	return 0;
}

/* The newest backup of the same volume (same inode) whose snapshot still
 * exists and is older: the base of an incremental one. */
static int find_base(struct create_run *run, struct backup_summary *base, char *why,
		     size_t why_len)
{
	const struct backup_source *src = run->src;
	struct backup_summary *s;
	size_t n;
	int rc = backup_repo_summaries(run->r, src->volume, &s, &n, why, why_len);
	if (rc)
		return rc;
	rc = -ENOENT;
	for (size_t i = n; i-- > 0 && rc;) {
		if (s[i].inode != src->inode || s[i].snap_epoch > src->snap_epoch)
			continue;
		if (src->ops->has_snap(src->ctx, s[i].snapshot, s[i].snap_epoch)) {
			*base = s[i];
			rc = 0;
		} else if (!run->out->note[0]) {
			snprintf(run->out->note, sizeof(run->out->note),
				 "full: the snapshot %s@%s of the last backup (%s) is gone",
				 src->volume, s[i].snapshot, s[i].id);
		}
	}
	free(s);
	return rc;
}

/* The rest of an incremental plan: the last chunk of each size is read
 * again when the size changed; every other chunk BASE had is kept. */
static int plan_incremental(struct create_run *run, const struct backup_summary *base,
			    char *why, size_t why_len)
{
	const struct backup_source *src = run->src;
	run->out->incremental = true;
	snprintf(run->out->s.parent, sizeof(run->out->s.parent), "%s", base->id);
	snprintf(run->out->base_snapshot, sizeof(run->out->base_snapshot), "%s", base->snapshot);
	if (base->size != src->size) {
		extent_found(base->size ? base->size - 1 : 0, 1, run);
		extent_found(src->size ? src->size - 1 : 0, 1, run);
	}
	for (size_t i = 0; i < run->parent.n; i++) {
		const struct backup_chunk_ref *c = &run->parent.c[i];
		if (c->index < run->n_chunks && !run->todo[c->index] &&
		    backup_map_add(&run->map, c))
			return why_set(why, why_len, -ENOMEM, "out of memory");
	}
	return 0;
}

/* Which chunks to read: those `snap diff` names since the base backup's
 * snapshot, or every one with data. */
static int plan(struct create_run *run, char *why, size_t why_len)
{
	const struct backup_source *src = run->src;
	run->n_chunks = (src->size + BACKUP_CHUNK_SIZE - 1) / BACKUP_CHUNK_SIZE;
	run->todo = calloc(run->n_chunks ? run->n_chunks : 1, 1);
	if (!run->todo)
		return why_set(why, why_len, -ENOMEM, "out of memory");
	struct backup_summary base;
	int rc = find_base(run, &base, why, why_len);
	if (rc && rc != -ENOENT)
		return rc;
	if (rc == 0) {
		rc = backup_repo_load_map(run->r, &base, &run->parent, why, why_len);
		if (!rc)
			rc = src->ops->extents(src->ctx, base.snapshot, extent_found, run, why,
					       why_len);
		if (rc == 0)
			return plan_incremental(run, &base, why, why_len);
		if (rc != -ENOENT)
			return rc;
		backup_map_free(&run->parent); /* its snapshot went meanwhile */
		memset(run->todo, 0, run->n_chunks);
	}
	return src->ops->extents(src->ctx, NULL, extent_found, run, why, why_len);
}

/* Reads and queues every chunk of the plan, PARALLEL at a time (twice
 * that many buffers, so reading overlaps sending). */
static int transfer(struct create_run *run, struct backup_pool *pool, unsigned parallel,
		    char *why, size_t why_len)
{
	unsigned n_jobs = 2 * parallel;
	struct chunk_job *jobs = calloc(n_jobs, sizeof(*jobs));
	struct chunk_job **free_jobs = calloc(n_jobs, sizeof(*free_jobs));
	int rc = jobs && free_jobs ? 0 : -ENOMEM;
	unsigned n_free = 0;
	for (unsigned i = 0; !rc && i < n_jobs; i++) {
		jobs[i].buf = malloc(BACKUP_CHUNK_SIZE);
		jobs[i].run = run;
		jobs[i].job.fn = chunk_job_run;
		if (!jobs[i].buf)
			rc = -ENOMEM;
		free_jobs[n_free++] = &jobs[i];
	}
	if (rc)
		why_set(why, why_len, rc, "out of memory for %u chunk buffers", n_jobs);
	struct backup_progress progress = { .on = run->r->p.progress, .what = "backup" };
	for (uint64_t i = 0; i < run->n_chunks; i++)
		progress.total += run->todo[i] ? BACKUP_CHUNK_SIZE : 0;
	const struct backup_source *src = run->src;
	for (uint64_t i = 0; !rc && i < run->n_chunks; i++) {
		if (!run->todo[i])
			continue;
		while (!rc && !n_free) {
			struct chunk_job *j = (struct chunk_job *)backup_pool_wait(pool);
			rc = chunk_done(run, j, why, why_len);
			free_jobs[n_free++] = j;
		}
		if (rc)
			break;
		struct chunk_job *j = free_jobs[--n_free];
		uint64_t offset = i * BACKUP_CHUNK_SIZE;
		j->index = i;
		j->len = (uint32_t)(src->size - offset < BACKUP_CHUNK_SIZE ? src->size - offset
									     : BACKUP_CHUNK_SIZE);
		j->hole = j->uploaded = false;
		memset(&j->ref, 0, sizeof(j->ref));
		rc = src->ops->read(src->ctx, offset, j->len, j->buf, why, why_len);
		if (rc) {
			free_jobs[n_free++] = j;
			break;
		}
		run->out->s.read_bytes += j->len;
		backup_pool_submit(pool, &j->job);
		backup_progress_tick(&progress, run->out->s.read_bytes);
	}
	for (struct backup_job *job; (job = backup_pool_wait(pool));) {
		int one = chunk_done(run, (struct chunk_job *)job, rc ? NULL : why, why_len);
		rc = rc ? rc : one;
	}
	backup_progress_end(&progress);
	for (unsigned i = 0; jobs && i < n_jobs; i++)
		free(jobs[i].buf);
	free(jobs);
	free(free_jobs);
	return rc;
}

/* Before the commit: if a prune deleted chunks while this backup ran
 * (gc/pending's generation moved, or one died deleting and left
 * gc/deleting behind), each chunk of the map a prune had marked must
 * still be there. A prune deleting right now is waited for (up to ten
 * minutes, while it keeps its gc/deleting fresh). */
static int recheck_marked(struct create_run *run, char *why, size_t why_len)
{
	struct backup_repo *r = run->r;
	enum backup_deleting state = BACKUP_DELETING_NOW;
	int rc = 0;
	for (int i = 0; i < 600 && !rc && state == BACKUP_DELETING_NOW; i++) {
		if (i)
			sleep(1);
		rc = backup_deleting_state(r, r->conn, &state, why, why_len);
	}
	if (!rc && state == BACKUP_DELETING_NOW)
		return why_set(why, why_len, -EBUSY,
			       "a backup prune has been deleting chunks at %s for ten minutes; "
			       "run backup create again when it is done", r->url);
	struct backup_marks now;
	if (!rc)
		rc = backup_marks_load(r, r->conn, &now, why, why_len);
	if (rc)
		return rc;
	bool moved = now.generation != run->marks.generation || state == BACKUP_DELETING_STALE;
	char key[BACKUP_KEY_PREFIX_MAX + 96];
	for (size_t i = 0; moved && !rc && i < run->map.n; i++) {
		const struct backup_chunk_ref *c = &run->map.c[i];
		if (!backup_marks_find(&now, c->id) && !backup_marks_find(&run->marks, c->id))
			continue;
		backup_chunk_key(r, c->id, key);
		rc = r->p.store.ops->head(r->conn, key, NULL, why, why_len);
		if (rc == -ENOENT)
			rc = why_set(why, why_len, -EAGAIN,
				     "a backup prune deleted a chunk this backup needs while it ran; "
				     "run backup create again (it sends only what is missing)");
	}
	backup_marks_free(&now);
	return rc;
}

/* Writes the chunk map, then the summary: the backup exists from then on. */
static int commit(struct create_run *run, double start, char *why, size_t why_len)
{
	struct backup_repo *r = run->r;
	struct backup_summary *s = &run->out->s;
	const struct backup_source *src = run->src;
	snprintf(s->volume, sizeof(s->volume), "%s", src->volume);
	snprintf(s->snapshot, sizeof(s->snapshot), "%s", src->snapshot);
	s->inode = src->inode;
	s->size = src->size;
	s->snap_epoch = src->snap_epoch;
	s->snap_time_s = src->snap_time_s;
	s->chunk_size = BACKUP_CHUNK_SIZE;
	backup_map_sort(&run->map);
	s->chunks = run->map.n;
	for (size_t i = 0; i < run->map.n; i++) {
		s->data_bytes += run->map.c[i].plain_len;
		s->stored_bytes += run->map.c[i].stored_len;
	}
	char *text = backup_map_encode(s->id, &run->map);
	if (!text)
		return why_set(why, why_len, -ENOMEM, "out of memory");
	char name[64];
	snprintf(name, sizeof(name), "maps/%s", s->id);
	int rc = backup_repo_put_sealed(r, r->conn, "BSLTMAP1", name, text, strlen(text),
					s->map_sha256, why, why_len);
	free(text);
	if (rc)
		return rc;
	s->created_s = (int64_t)backup_now();
	s->seconds = backup_now() - start;
	if (s->seconds > (double)r->grace_s)
		return why_set(why, why_len, -ETIME,
			       "the backup ran %.0f s, longer than the repository's garbage "
			       "collection grace (%lld s): a prune may have deleted chunks it "
			       "reused; run it again (it sends only what is missing)",
			       s->seconds, (long long)r->grace_s);
	text = backup_summary_encode(s);
	if (!text)
		return why_set(why, why_len, -ENOMEM, "out of memory");
	snprintf(name, sizeof(name), "backups/%s", s->id);
	rc = backup_repo_put_sealed(r, r->conn, "BSLTSUM1", name, text, strlen(text), NULL, why,
				    why_len);
	free(text);
	return rc;
}

int backup_create(struct backup_repo *r, const struct backup_source *src,
		  struct backup_result *out, char *why, size_t why_len)
{
	double start = backup_now();
	memset(out, 0, sizeof(*out));
	struct create_run run = { .r = r, .src = src, .out = out };
	backup_new_id(out->s.id);
	int rc = backup_marks_load(r, r->conn, &run.marks, why, why_len);
	if (!rc)
		rc = plan(&run, why, why_len);
	unsigned parallel = r->p.parallel ? r->p.parallel : 8;
	struct backup_pool *pool = NULL;
	if (!rc)
		rc = backup_pool_start(r, parallel, &pool, why, why_len);
	if (!rc)
		rc = transfer(&run, pool, parallel, why, why_len);
	backup_pool_stop(pool, &out->requests, NULL, NULL);
	if (!rc)
		rc = src->ops->check(src->ctx, why, why_len);
	if (!rc)
		rc = recheck_marked(&run, why, why_len);
	if (!rc)
		rc = commit(&run, start, why, why_len);
	backup_map_free(&run.parent);
	backup_map_free(&run.map);
	backup_marks_free(&run.marks);
	free(run.todo);
	return rc;
}
