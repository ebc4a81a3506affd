/* Transfers in parallel: N worker threads, each with its own connection
 * to the store, take jobs from one queue and put them back on another;
 * the calling thread keeps the volume's I/O (libbasalt is one loop) and
 * decides what to queue. The caller bounds what is queued (its buffers),
 * so the queues need no limit of their own. Also the progress line. */
#include "client/backup/backup_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/why.h"

struct backup_pool {
	struct backup_repo *r;
	pthread_mutex_t lock;
	pthread_cond_t work, done_cond;
	struct backup_job *todo, *todo_tail, *done;
	unsigned queued; /* submitted, not yet returned by wait */
	bool stop;
	unsigned n;   /* threads running */
	unsigned cap; /* connections (and thread slots) */
	pthread_t *threads;
	void **conns;
};

static void *worker_main(void *arg)
{
	struct backup_pool *p = arg;
	pthread_mutex_lock(&p->lock);
	unsigned me = 0;
	while (me < p->n && p->threads[me] != pthread_self())
		me++;
	for (;;) {
		while (!p->todo && !p->stop)
			pthread_cond_wait(&p->work, &p->lock);
		if (!p->todo)
			break;
		struct backup_job *job = p->todo;
		p->todo = job->next;
		if (!p->todo)
			p->todo_tail = NULL;
		pthread_mutex_unlock(&p->lock);
		job->rc = 0;
		job->why[0] = 0;
		job->fn(job, p->conns[me]);
		pthread_mutex_lock(&p->lock);
		job->next = p->done;
		p->done = job;
		pthread_cond_signal(&p->done_cond);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int backup_pool_start(struct backup_repo *r, unsigned n, struct backup_pool **out, char *why,
		      size_t why_len)
{
	struct backup_pool *p = calloc(1, sizeof(*p));
	if (p) {
		p->threads = calloc(n, sizeof(*p->threads));
		p->conns = calloc(n, sizeof(*p->conns));
	}
	if (!p || !p->threads || !p->conns) {
		if (p) {
			free(p->threads);
			free(p->conns);
		}
		free(p);
		return why_set(why, why_len, -ENOMEM, "out of memory");
	}
	p->r = r;
	p->cap = n;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done_cond, NULL);
	int rc = 0;
	for (unsigned i = 0; i < n && !rc; i++)
		rc = r->p.store.ops->connect(r->p.store.ctx, &p->conns[i], why, why_len);
	/* Threads look themselves up in p->threads: start them under the lock. */
	pthread_mutex_lock(&p->lock);
	for (unsigned i = 0; i < n && !rc; i++) {
		if (pthread_create(&p->threads[i], NULL, worker_main, p) != 0)
			rc = why_set(why, why_len, -EAGAIN, "cannot start a transfer thread");
		else
			p->n = i + 1;
	}
	pthread_mutex_unlock(&p->lock);
	*out = p;
	if (rc) {
		backup_pool_stop(p, NULL, NULL, NULL);
		*out = NULL;
	}
	return rc;
}

void backup_pool_submit(struct backup_pool *p, struct backup_job *job)
{
	pthread_mutex_lock(&p->lock);
	job->next = NULL;
	if (p->todo_tail)
		p->todo_tail->next = job;
	else
		p->todo = job;
	p->todo_tail = job;
	p->queued++;
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->lock);
}

struct backup_job *backup_pool_wait(struct backup_pool *p)
{
	pthread_mutex_lock(&p->lock);
	while (!p->done && p->queued)
		pthread_cond_wait(&p->done_cond, &p->lock);
	struct backup_job *job = p->done;
	if (job) {
		p->done = job->next;
		p->queued--;
	}
	pthread_mutex_unlock(&p->lock);
	return job;
}

unsigned backup_pool_busy(const struct backup_pool *p)
{
	return p->queued;
}

void backup_pool_stop(struct backup_pool *p, uint64_t *requests, uint64_t *sent,
		      uint64_t *received)
{
	if (!p)
		return;
	while (backup_pool_wait(p))
		;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->n; i++)
		pthread_join(p->threads[i], NULL);
	const struct backup_store_ops *ops = p->r->p.store.ops;
	for (unsigned i = 0; i < p->cap; i++) {
		if (!p->conns[i])
			continue;
		uint64_t q = 0, s = 0, v = 0;
		if (ops->counters)
			ops->counters(p->conns[i], &q, &s, &v);
		if (requests)
			*requests += q;
		if (sent)
			*sent += s;
		if (received)
			*received += v;
		ops->disconnect(p->conns[i]);
	}
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->done_cond);
	free(p->threads);
	free(p->conns);
	free(p);
}

/* --- progress ---------------------------------------------------------------- */

void backup_progress_tick(struct backup_progress *p, uint64_t done)
{
	p->done = done;
	if (!p->on)
		return;
	double now = backup_now();
	if (!p->start)
		p->start = p->last = now;
	if (now - p->last < 0.5)
		return;
	p->last = now;
	double rate = (double)done / (now - p->start);
	double left = rate > 0 && p->total > done ? (double)(p->total - done) / rate : 0;
	fprintf(stderr, "\r%s: %.1f of %.1f MiB, %.1f MiB/s, %.0f s left   ", p->what,
		(double)done / 1048576, (double)p->total / 1048576, rate / 1048576, left);
	fflush(stderr);
}

void backup_progress_end(struct backup_progress *p)
{
	if (p->on && p->start)
		fprintf(stderr, "\r%*s\r", 70, "");
}
