/* libbasalt: exclusive volume locks and fencing (see libbasalt.h).
 *
 * A lock is a map command (MAP_CMD_VOLUME_LOCK naming this client
 * instance), run one at a time through the monitor session. Once granted
 * at map epoch E it is reported only when this client's own map has
 * reached E, so every operation sent under the lock carries an epoch at
 * or past the one that fenced the previous holder, and an OSD holds it
 * until it knows that fence too (osd_ops.c). While held, the client
 * renews its lease with every monitor every renew_ms.
 *
 * A map that lists this client instance as fenced ends it for good:
 * every operation in flight or to come fails with -ESHUTDOWN, as does
 * every lock request. A lock taken from us without fencing us cannot
 * happen (a takeover always fences), but a map that shows the volume
 * locked by someone else, or gone, still drops it here. */
#include "libbasalt.h"
#include "libbasalt_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/cluster/mon_proto.h"

enum lock_state { LOCK_TAKING, LOCK_HELD };

struct bs_lock {
	struct list_node link; /* bs_client.locks */
	char name[MAP_NAME_MAX];
	uint64_t inode;	       /* once granted */
	uint64_t epoch;	       /* the map epoch that granted it */
	uint64_t asked_ns;     /* when its LOCK command was queued */
	enum lock_state state;
	struct list_node waiters; /* struct lock_waiter */
};

struct lock_waiter {
	struct list_node link;
	bs_lock_done_fn done;
	void *ctx;
	int rc;
	char why[256];
	struct io_post post;
};

struct bs_lock_cmd {
	struct list_node link; /* bs_client.lock_cmds; the first one runs */
	struct map_cmd cmd;
	struct bs_lock *lock; /* LOCK: the lock it takes; NULL for UNLOCK */
	bool started;
};

static void waiter_posted(struct io_post *post)
{
	struct lock_waiter *w = post->ctx;
	w->done(w->ctx, w->rc, w->why);
	free(w);
}

/* Answers W from the loop, never from inside the caller's call. */
static void answer(struct bs_client *c, struct lock_waiter *w, int rc, const char *why)
{
	if (list_linked(&w->link))
		list_del(&w->link);
	w->rc = rc;
	snprintf(w->why, sizeof(w->why), "%s", why ? why : "");
	io_loop_post(c->loop, &w->post);
}

static void answer_all(struct bs_client *c, struct bs_lock *l, int rc, const char *why)
{
	while (!list_empty(&l->waiters))
		answer(c, list_entry(list_first(&l->waiters), struct lock_waiter, link), rc, why);
}

static void lock_free(struct bs_lock *l)
{
	list_del(&l->link);
	free(l);
}

static struct bs_lock *lock_named(struct bs_client *c, const char *name)
{
	struct list_node *pos;
	list_for_each(pos, &c->locks) {
		struct bs_lock *l = list_entry(pos, struct bs_lock, link);
		if (!strcmp(l->name, name))
			return l;
	}
	return NULL;
}

/* Frees L; a LOCK command of it still running goes on without it (and
 * gives the lock back if granted). */
static void forget(struct bs_client *c, struct bs_lock *l)
{
	struct list_node *pos;
	list_for_each(pos, &c->lock_cmds) {
		struct bs_lock_cmd *k = list_entry(pos, struct bs_lock_cmd, link);
		if (k->lock == l)
			k->lock = NULL;
	}
	lock_free(l);
}

static void run_next(struct bs_client *c)
{
	if (list_empty(&c->lock_cmds) || monsess_command_running(c->mon))
		return;
	struct bs_lock_cmd *k = list_entry(list_first(&c->lock_cmds), struct bs_lock_cmd, link);
	if (k->started)
		return;
	int rc = monsess_command(c->mon, &k->cmd);
	if (rc) { /* cannot encode: not a transient state */
		list_del(&k->link);
		if (k->lock) {
			answer_all(c, k->lock, rc, "cannot send the lock request");
			lock_free(k->lock);
		}
		free(k);
		run_next(c);
		return;
	}
	k->started = true;
}

static int queue_cmd(struct bs_client *c, enum map_cmd_type type, const char *name, uint8_t flag,
		     struct bs_lock *lock)
{
	if (c->fenced)
		return -ESHUTDOWN;
	struct bs_lock_cmd *k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->cmd.type = type;
	snprintf(k->cmd.name, sizeof(k->cmd.name), "%s", name);
	k->cmd.lock_client = c->client_id;
	k->cmd.flag = flag;
	snprintf(k->cmd.owner, sizeof(k->cmd.owner), "%s", c->owner);
	k->lock = lock;
	list_add_tail(&c->lock_cmds, &k->link);
	run_next(c);
	return 0;
}

/* Reports a granted lock once our map has the epoch that granted it. */
static void report_granted(struct bs_client *c, struct bs_lock *l, const struct cluster_map *m)
{
	if (l->state != LOCK_HELD || m->epoch < l->epoch)
		return;
	if (!l->inode) {
		const struct map_volume *v = map_volume_by_name(m, l->name);
		if (!v || v->lock_client != c->client_id) {
			answer_all(c, l, -ENOENT, "the volume was removed or renamed meanwhile");
			lock_free(l);
			return;
		}
		l->inode = v->inode;
		LOG_INFO("holding the lock of volume %s (map epoch %llu)", l->name,
			 (unsigned long long)l->epoch);
	}
	answer_all(c, l, 0, NULL);
}

void bs_lock(struct bs_client *c, const char *name, bool break_lock, bs_lock_done_fn done,
	     void *ctx)
{
	struct lock_waiter *w = calloc(1, sizeof(*w));
	if (!w) {
		done(ctx, -ENOMEM, "out of memory");
		return;
	}
	w->done = done;
	w->ctx = ctx;
	w->post.fn = waiter_posted;
	w->post.ctx = w;
	list_init(&w->link);
	if (c->fenced) {
		answer(c, w, -ESHUTDOWN, "this client was fenced: its locks were taken over");
		return;
	}
	if (strlen(name) >= MAP_NAME_MAX) {
		answer(c, w, -ENOENT, "no such volume");
		return;
	}
	struct bs_lock *l = lock_named(c, name);
	if (!l) {
		if (!(l = calloc(1, sizeof(*l)))) {
			answer(c, w, -ENOMEM, "out of memory");
			return;
		}
		snprintf(l->name, sizeof(l->name), "%s", name);
		l->state = LOCK_TAKING;
		l->asked_ns = io_now_ns(c->loop);
		list_init(&l->waiters);
		list_add_tail(&c->locks, &l->link);
		if (queue_cmd(c, MAP_CMD_VOLUME_LOCK, name, break_lock, l)) {
			lock_free(l);
			answer(c, w, -ENOMEM, "out of memory");
			return;
		}
	}
	list_add_tail(&l->waiters, &w->link);
	report_granted(c, l, monsess_map(c->mon));
}

int bs_unlock(struct bs_client *c, const char *name)
{
	struct bs_lock *l = lock_named(c, name);
	if (!l)
		return -ENOENT;
	/* Under its current name: it may have been renamed while held. */
	const struct map_volume *v = l->inode ? map_volume_by_inode(monsess_map(c->mon), l->inode)
					      : NULL;
	char cur[MAP_NAME_MAX];
	snprintf(cur, sizeof(cur), "%s", v ? v->name : l->name);
	bool taking = l->state == LOCK_TAKING;
	answer_all(c, l, -ECANCELED, "unlocked while being taken");
	forget(c, l);
	/* Still being taken: unlocked if its LOCK command succeeds. */
	return taking ? 0 : queue_cmd(c, MAP_CMD_VOLUME_UNLOCK, cur, 0, NULL);
}

bool bs_holds_lock(const struct bs_client *c, const char *name)
{
	struct list_node *pos;
	list_for_each(pos, &c->locks) {
		const struct bs_lock *l = list_entry(pos, struct bs_lock, link);
		if (!strcmp(l->name, name))
			return l->state == LOCK_HELD && l->inode;
	}
	return false;
}

bool bs_lock_busy(const struct bs_client *c)
{
	return !list_empty(&c->lock_cmds);
}

int bs_lock_wait_released(struct bs_client *c, uint64_t timeout_ms)
{
	uint64_t end = io_now_ns(c->loop) + IO_MS(timeout_ms);
	while (bs_lock_busy(c) && io_now_ns(c->loop) < end)
		io_loop_run_once(c->loop, (int64_t)IO_MS(50));
	if (!bs_lock_busy(c))
		return 0;
	LOG_WARN("no monitor answered within %llu ms to take the volume locks back: they are "
		 "given up when their leases run out",
		 (unsigned long long)timeout_ms);
	return -ETIMEDOUT;
}

bool bs_client_fenced(const struct bs_client *c)
{
	return c->fenced;
}

uint64_t bs_client_id(const struct bs_client *c)
{
	return c->client_id;
}

void bs_lock_reply(void *ctx, int rc, const char *text, uint64_t epoch)
{
	struct bs_client *c = ctx;
	if (list_empty(&c->lock_cmds))
		return;
	struct bs_lock_cmd *k = list_entry(list_first(&c->lock_cmds), struct bs_lock_cmd, link);
	list_del(&k->link);
	if (k->cmd.type == MAP_CMD_VOLUME_UNLOCK) {
		if (rc && rc != -ENOENT)
			LOG_WARN("unlocking volume %s: %s", k->cmd.name, text);
		else
			LOG_INFO("released the lock of volume %s", k->cmd.name);
	} else if (!k->lock) { /* given up meanwhile */
		if (!rc)
			queue_cmd(c, MAP_CMD_VOLUME_UNLOCK, k->cmd.name, 0, NULL);
	} else {
		struct bs_lock *l = k->lock;
		if (rc) {
			answer_all(c, l, rc, text);
			lock_free(l);
		} else {
			l->state = LOCK_HELD;
			l->epoch = epoch;
			c->last_renew_ns = 0; /* renew at once, at every monitor */
			report_granted(c, l, monsess_map(c->mon));
		}
	}
	free(k);
	run_next(c);
}

/* This client instance is finished: nothing it sends is accepted again. */
static void fenced(struct bs_client *c, const struct cluster_map *m)
{
	const char *since = "";
	char buf[64] = "";
	for (uint32_t i = 0; i < m->n_fenced; i++)
		if (m->fenced[i].client == c->client_id) {
			snprintf(buf, sizeof(buf), " at map epoch %llu",
				 (unsigned long long)m->fenced[i].epoch);
			since = buf;
		}
	LOG_ERROR("this client (%016llx, %s) was fenced%s: another client took its volume locks "
		  "over; every operation fails from now on",
		  (unsigned long long)c->client_id, c->owner, since);
	c->fenced = true;
	while (!list_empty(&c->locks)) {
		struct bs_lock *l = list_entry(list_first(&c->locks), struct bs_lock, link);
		answer_all(c, l, -ESHUTDOWN, "this client was fenced: its locks were taken over");
		forget(c, l);
	}
	bs_fail_all(c, -ESHUTDOWN);
}

void bs_lock_map(struct bs_client *c, const struct cluster_map *m)
{
	if (c->fenced)
		return;
	if (map_client_fenced(m, c->client_id)) {
		fenced(c, m);
		return;
	}
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &c->locks) {
		struct bs_lock *l = list_entry(pos, struct bs_lock, link);
		if (l->state != LOCK_HELD || m->epoch < l->epoch)
			continue;
		if (l->inode) {
			const struct map_volume *v = map_volume_by_inode(m, l->inode);
			if (!v || v->lock_client != c->client_id) {
				LOG_WARN("lost the lock of volume %s: %s", l->name,
					 v ? "the map shows another holder" : "the volume was removed");
				lock_free(l);
			}
			continue;
		}
		report_granted(c, l, m);
	}
}

void bs_lock_tick(struct bs_client *c, uint64_t now_ns)
{
	run_next(c);
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &c->locks) {
		struct bs_lock *l = list_entry(pos, struct bs_lock, link);
		if (l->state == LOCK_TAKING && now_ns - l->asked_ns >= IO_MS(c->p.lock_timeout_ms)) {
			answer_all(c, l, -ETIMEDOUT, "no answer from the monitors in time");
			forget(c, l);
		}
	}
	if (c->fenced || now_ns - c->last_renew_ns < IO_MS(c->p.lock_renew_ms))
		return;
	uint64_t inodes[MON_RENEW_MAX];
	uint32_t n = 0;
	list_for_each(pos, &c->locks) {
		const struct bs_lock *l = list_entry(pos, struct bs_lock, link);
		if (l->state == LOCK_HELD && l->inode && n < MON_RENEW_MAX)
			inodes[n++] = l->inode;
	}
	c->last_renew_ns = now_ns;
	if (!n)
		return;
	struct msg *msg = mon_lock_renew_encode(c->client_id, inodes, n);
	if (msg)
		monsess_send_all(c->mon, msg);
}

void bs_lock_init(struct bs_client *c)
{
	list_init(&c->locks);
	list_init(&c->lock_cmds);
	if (!c->p.lock_renew_ms)
		c->p.lock_renew_ms = 2000;
	if (!c->p.lock_timeout_ms)
		c->p.lock_timeout_ms = 20000;
	if (c->p.owner && *c->p.owner) {
		snprintf(c->owner, sizeof(c->owner), "%s", c->p.owner);
		return;
	}
	char host[64] = "?";
	gethostname(host, sizeof(host) - 1);
	host[sizeof(host) - 1] = 0;
	snprintf(c->owner, sizeof(c->owner), "%s on %s pid %d", c->p.entity, host, (int)getpid());
}

void bs_lock_fini(struct bs_client *c)
{
	while (!list_empty(&c->locks)) {
		struct bs_lock *l = list_entry(list_first(&c->locks), struct bs_lock, link);
		/* Nothing may run after destroy: answered here, not posted. */
		while (!list_empty(&l->waiters)) {
			struct lock_waiter *w =
				list_entry(list_first(&l->waiters), struct lock_waiter, link);
			list_del(&w->link);
			w->done(w->ctx, -ECANCELED, "the client is closing");
			free(w);
		}
		lock_free(l);
	}
	while (!list_empty(&c->lock_cmds)) {
		struct bs_lock_cmd *k = list_entry(list_first(&c->lock_cmds), struct bs_lock_cmd, link);
		list_del(&k->link);
		free(k);
	}
}
