/* backup rm and backup prune: retention picks the backups to keep per
 * volume; removing one deletes its summary (it stops existing) then its
 * chunk map. Chunks are shared, so they go only through the two-phase
 * garbage collection below (docs/ARCHITECTURE.md, "Backups"):
 *
 *   mark    a chunk no manifest references is recorded in gc/pending
 *           with the time it was first seen so;
 *   sweep   a later prune deletes a marked chunk once GRACE has passed
 *           since its mark, if it is still unreferenced and was not
 *           written since the mark (a backup that needs a marked chunk
 *           sends it again, which moves its last-modified time on).
 *
 * Deletions run in parallel batches. While it deletes, gc/deleting exists
 * (refreshed between rounds), and each
 * sweep bumps gc/pending's generation, so a backup committing meanwhile
 * knows to check the marked chunks it relies on. */
#include "client/backup/backup_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/number.h"
#include "common/why.h"

int backup_remove(struct backup_repo *r, const char *id, char *why, size_t why_len)
{
	struct backup_summary s;
	int rc = backup_info(r, id, &s, why, why_len);
	if (rc)
		return rc;
	char name[64], key[BACKUP_KEY_PREFIX_MAX + 96];
	snprintf(name, sizeof(name), "backups/%s", id);
	backup_key_name(r, name, key);
	rc = r->p.store.ops->del(r->conn, key, why, why_len);
	snprintf(name, sizeof(name), "maps/%s", id);
	backup_key_name(r, name, key);
	if (!rc)
		rc = r->p.store.ops->del(r->conn, key, why, why_len);
	return rc;
}

/* --- retention -------------------------------------------------------------- */

/* The period T falls in, as text ("2026-12-06" for days). */
static void period(int64_t t, const char *fmt, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, 32, fmt, &tm);
}

/* Keeps the newest backup of each of the N newest periods of FMT. */
static void keep_per_period(const struct backup_summary *s, size_t n, unsigned count,
			    const char *fmt, bool *keep)
{
	char last[32] = "";
	for (size_t i = n; i-- > 0 && count;) {
		char p[32];
		period(s[i].snap_time_s, fmt, p);
		if (strcmp(p, last) == 0)
			continue;
		snprintf(last, sizeof(last), "%s", p);
		keep[i] = true;
		count--;
	}
}

void backup_retention_apply(const struct backup_summary *s, size_t n,
			    const struct backup_retention *ret, bool *keep)
{
	memset(keep, 0, n * sizeof(*keep));
	for (size_t i = n, k = 0; i-- > 0 && k < ret->last; k++)
		keep[i] = true;
	keep_per_period(s, n, ret->hourly, "%Y-%m-%d %H", keep);
	keep_per_period(s, n, ret->daily, "%Y-%m-%d", keep);
	keep_per_period(s, n, ret->weekly, "%G-W%V", keep);
	keep_per_period(s, n, ret->monthly, "%Y-%m", keep);
}

static int volume_cmp(const void *a, const void *b)
{
	const struct backup_summary *x = a, *y = b;
	int c = strcmp(x->volume, y->volume);
	return c ? c : backup_summary_order(a, b);
}

/* Decides KEEP for every backup: each volume's own series (sorted by
 * volume, then snapshot time); those of other volumes than VOLUME stay. */
static void retention_all(struct backup_summary *s, size_t n, const char *volume,
			  const struct backup_retention *ret, bool *keep)
{
	if (n)
		qsort(s, n, sizeof(*s), volume_cmp);
	for (size_t i = 0, k; i < n; i += k) {
		for (k = 1; i + k < n && strcmp(s[i + k].volume, s[i].volume) == 0; k++)
			;
		if (volume && strcmp(s[i].volume, volume) != 0) {
			for (size_t j = i; j < i + k; j++)
				keep[j] = true;
			continue;
		}
		backup_retention_apply(s + i, k, ret, keep + i);
	}
}

/* --- the referenced set -------------------------------------------------------- */

struct id_set {
	uint8_t (*id)[32];
	size_t n, cap, sorted; /* [0, sorted) sorted and unique */
};

static int id_cmp(const void *a, const void *b)
{
	return memcmp(a, b, 32);
}

static void id_set_compact(struct id_set *s)
{
	if (!s->n)
		return;
	qsort(s->id, s->n, 32, id_cmp);
	size_t k = 1;
	for (size_t i = 1; i < s->n; i++)
		if (memcmp(s->id[i], s->id[k - 1], 32) != 0)
			memcpy(s->id[k++], s->id[i], 32);
	s->n = s->sorted = k;
}

static int id_set_add(struct id_set *s, const uint8_t id[32])
{
	if (s->n == s->cap) {
		if (s->n > 2 * s->sorted + 1024) {
			id_set_compact(s);
			if (s->n < s->cap)
				return id_set_add(s, id);
		}
		size_t cap = s->cap ? 2 * s->cap : 1024;
		void *n = realloc(s->id, cap * 32);
		if (!n)
			return -ENOMEM;
		s->id = n;
		s->cap = cap;
	}
	memcpy(s->id[s->n++], id, 32);
	return 0;
}

static bool id_set_has(const struct id_set *s, const uint8_t id[32])
{
	return s->n && bsearch(id, s->id, s->n, 32, id_cmp) != NULL;
}

/* Every chunk the N committed backups S reference (their summaries read
 * after the chunk listing, so a backup committed meanwhile counts). */
static int referenced(struct backup_repo *r, const struct backup_summary *s, size_t n,
		      struct id_set *set, char *why, size_t why_len)
{
	int rc = 0;
	for (size_t i = 0; !rc && i < n; i++) {
		struct backup_map m;
		rc = backup_repo_load_map(r, &s[i], &m, why, why_len);
		for (size_t k = 0; !rc && k < m.n; k++)
			rc = id_set_add(set, m.c[k].id) ? why_set(why, why_len, -ENOMEM,
								  "out of memory") : 0;
		if (!rc)
			backup_map_free(&m);
	}
	if (!rc)
		id_set_compact(set);
	return rc;
}

/* --- the sweep ---------------------------------------------------------------------- */

struct listed {
	uint8_t id[32];
	uint64_t size;
	int64_t mtime_s;
};

struct listing {
	struct listed *l;
	size_t n, cap, prefix_len;
};

static int chunk_listed(const char *key, uint64_t size, int64_t mtime_s, void *arg)
{
	struct listing *ls = arg;
	struct listed e = { .size = size, .mtime_s = mtime_s };
	if (number_hex_decode(key + ls->prefix_len, e.id, 32))
		return 0; /* not a chunk of ours */
	if (ls->n == ls->cap) {
		size_t cap = ls->cap ? 2 * ls->cap : 1024;
		struct listed *n = realloc(ls->l, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		ls->l = n;
		ls->cap = cap;
	}
	ls->l[ls->n++] = e;
	return 0;
}

struct sweep {
	struct backup_repo *r;
	struct backup_prune_result *out;
	struct backup_marks old, new;
	int64_t now, grace_s;
	bool dry_run;
	const struct listed **doomed; /* to delete: room for every listed chunk */
	size_t n_doomed;
};

/* Records ID as marked at WHEN in the new marks (room for every listed chunk). */
static int sweep_mark(struct sweep *w, const uint8_t id[32], int64_t when)
{
	struct backup_mark *m = &w->new.m[w->new.n++];
	memcpy(m->id, id, 32);
	m->marked_s = when;
	return 0;
}

/* What becomes of listed chunk E: kept, marked, or doomed (deleted by
 * sweep_delete, in parallel). */
static int sweep_one(struct sweep *w, const struct id_set *refs, const struct listed *e,
		     char *why, size_t why_len)
{
	if (id_set_has(refs, e->id))
		return 0;
	const struct backup_mark *m = backup_marks_find(&w->old, e->id);
	if (!m) {
		w->out->chunks_marked++;
		return sweep_mark(w, e->id, w->now);
	}
	if (e->mtime_s >= m->marked_s) { /* sent again since: a backup wants it */
		w->out->chunks_kept_young++;
		return sweep_mark(w, e->id, w->now);
	}
	if (w->now - m->marked_s < w->grace_s) {
		w->out->chunks_marked++;
		return sweep_mark(w, e->id, m->marked_s);
	}
	w->out->chunks_deleted++;
	w->out->bytes_deleted += e->size;
	w->doomed[w->n_doomed++] = e;
	return 0;
}

/* Deletes a batch of chunks on a worker's connection. */
#define DELETE_BATCH 64

struct delete_job {
	struct backup_job job;
	struct backup_repo *r;
	const struct listed *const *e;
	size_t n;
};

static void delete_run(struct backup_job *job, void *conn)
{
	struct delete_job *d = (struct delete_job *)job;
	char key[BACKUP_KEY_PREFIX_MAX + 96];
	for (size_t i = 0; i < d->n && !job->rc; i++) {
		backup_chunk_key(d->r, d->e[i]->id, key);
		job->rc = d->r->p.store.ops->del(conn, key, job->why, sizeof(job->why));
	}
}

/* The doomed chunks, a batch per job, the pool's width at a time;
 * gc/deleting refreshed between rounds. */
static int sweep_delete(struct sweep *w, char *why, size_t why_len)
{
	struct backup_repo *r = w->r;
	unsigned parallel = r->p.parallel ? r->p.parallel : 8;
	struct backup_pool *pool;
	int rc = w->n_doomed ? backup_pool_start(r, parallel, &pool, why, why_len) : 0;
	if (rc || !w->n_doomed)
		return rc;
	struct delete_job *jobs = calloc(parallel, sizeof(*jobs));
	if (!jobs)
		rc = why_set(why, why_len, -ENOMEM, "out of memory");
	for (size_t at = 0; !rc && at < w->n_doomed;) {
		unsigned k = 0;
		for (; k < parallel && at < w->n_doomed; k++) {
			size_t n = w->n_doomed - at < DELETE_BATCH ? w->n_doomed - at : DELETE_BATCH;
			jobs[k] = (struct delete_job){ .job.fn = delete_run, .r = r,
						       .e = w->doomed + at, .n = n };
			backup_pool_submit(pool, &jobs[k].job);
			at += n;
		}
		for (struct backup_job *job; (job = backup_pool_wait(pool));)
			if (job->rc && !rc)
				rc = why_set(why, why_len, job->rc, "%s", job->why);
		if (!rc)
			rc = backup_deleting_touch(r, r->conn, why, why_len);
	}
	backup_pool_stop(pool, NULL, NULL, NULL);
	free(jobs);
	return rc;
}

/* Chunk maps of backups that never committed (no summary), older than
 * the grace: what an interrupted backup create left behind. */
struct orphans {
	struct sweep *w;
	const struct backup_summary *s; /* committed, sorted by id */
	size_t n;
	size_t prefix_len;
	char *why;
	size_t why_len;
};

static int summary_id_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct backup_summary *)elem)->id);
}

static int map_listed(const char *key, uint64_t size, int64_t mtime_s, void *arg)
{
	struct orphans *o = arg;
	const char *id = key + o->prefix_len;
	if (o->n && bsearch(id, o->s, o->n, sizeof(*o->s), summary_id_cmp))
		return 0;
	if (o->w->now - mtime_s < o->w->grace_s)
		return 0; /* maybe a backup committing right now */
	o->w->out->maps_deleted++;
	return o->w->dry_run ? 0 : o->w->r->p.store.ops->del(o->w->r->conn, key, o->why,
							      o->why_len);
}

static int id_order(const void *a, const void *b)
{
	return strcmp(((const struct backup_summary *)a)->id, ((const struct backup_summary *)b)->id);
}

/* The maps the N committed backups S (sorted here by id) do not own. */
static int sweep_maps(struct sweep *w, struct backup_summary *s, size_t n, char *why,
		      size_t why_len)
{
	if (n)
		qsort(s, n, sizeof(*s), id_order);
	char prefix[BACKUP_KEY_PREFIX_MAX + 96];
	backup_key_name(w->r, "maps/", prefix);
	struct orphans o = { .w = w, .s = s, .n = n, .prefix_len = strlen(prefix), .why = why,
			     .why_len = why_len };
	return w->r->p.store.ops->list(w->r->conn, prefix, map_listed, &o, why, why_len);
}

/* The garbage collection: marks, sweeps, and records the new marks. */
static int backup_gc(struct sweep *w, char *why, size_t why_len)
{
	struct backup_repo *r = w->r;
	char prefix[BACKUP_KEY_PREFIX_MAX + 96];
	backup_key_name(r, "chunks/", prefix);
	struct listing ls = { .prefix_len = strlen(prefix) };
	struct id_set refs = { 0 };
	struct backup_summary *s = NULL;
	size_t n = 0;
	int rc = backup_marks_load(r, r->conn, &w->old, why, why_len);
	if (!rc && !w->dry_run)
		rc = backup_deleting_touch(r, r->conn, why, why_len);
	bool marker = !rc && !w->dry_run;
	if (!rc)
		rc = r->p.store.ops->list(r->conn, prefix, chunk_listed, &ls, why, why_len);
	if (!rc)
		rc = backup_repo_summaries(r, NULL, &s, &n, why, why_len);
	if (!rc)
		rc = referenced(r, s, n, &refs, why, why_len);
	w->new.m = rc ? NULL : calloc(ls.n ? ls.n : 1, sizeof(*w->new.m));
	w->doomed = rc ? NULL : calloc(ls.n ? ls.n : 1, sizeof(*w->doomed));
	if (!rc && (!w->new.m || !w->doomed))
		rc = why_set(why, why_len, -ENOMEM, "out of memory");
	for (size_t i = 0; !rc && i < ls.n; i++)
		rc = sweep_one(w, &refs, &ls.l[i], why, why_len);
	if (!rc && !w->dry_run)
		rc = sweep_delete(w, why, why_len);
	backup_marks_sort(&w->new);
	w->new.generation = w->old.generation + 1;
	if (!rc && !w->dry_run)
		rc = backup_marks_store(r, r->conn, &w->new, why, why_len);
	if (!rc)
		rc = sweep_maps(w, s, n, why, why_len);
	if (marker) {
		char ignored[160];
		int rc2 = backup_deleting_clear(r, r->conn, ignored, sizeof(ignored));
		if (!rc && rc2)
			rc = why_set(why, why_len, rc2, "%s", ignored);
	}
	free(ls.l);
	free(s);
	free(w->doomed);
	free(refs.id);
	backup_marks_free(&w->old);
	backup_marks_free(&w->new);
	return rc;
}

int backup_prune(struct backup_repo *r, const char *volume, const struct backup_retention *ret,
		 int64_t grace_s, bool dry_run, struct backup_prune_result *out, char *why,
		 size_t why_len)
{
	memset(out, 0, sizeof(*out));
	struct backup_summary *s;
	size_t n;
	int rc = backup_repo_summaries(r, NULL, &s, &n, why, why_len);
	if (rc)
		return rc;
	bool *keep = calloc(n ? n : 1, sizeof(*keep));
	if (!keep) {
		free(s);
		return why_set(why, why_len, -ENOMEM, "out of memory");
	}
	retention_all(s, n, volume, ret, keep);
	out->backups = s;
	out->keep = keep;
	out->n = n;
	for (size_t i = 0; !rc && !dry_run && i < n; i++)
		if (!keep[i])
			rc = backup_remove(r, s[i].id, why, why_len);
	if (rc)
		return rc;
	struct sweep w = { .r = r, .out = out, .now = (int64_t)backup_now(),
			   .grace_s = grace_s, .dry_run = dry_run };
	return backup_gc(&w, why, why_len);
}
