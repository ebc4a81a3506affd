/* The cluster's status and its health rules (see status.h): the one
 * place that decides what is wrong with a cluster and how badly, so every
 * front end says the same. */
#include "client/status.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *bs_health_level_name(enum bs_health_level level)
{
	return level == BS_HEALTH_ERR ? "ERR" : level == BS_HEALTH_WARN ? "WARN" : "OK";
}

const struct mon_osd_usage *bs_status_osd_usage(const struct mon_osd_stats *pgs, uint32_t id)
{
	for (uint32_t i = 0; i < pgs->n_osds; i++)
		if (pgs->osds[i].osd == id)
			return &pgs->osds[i];
	return NULL;
}

static void summary_add(struct bs_pg_summary *s, const struct mon_pg_stat *p,
			const struct cluster_map *m)
{
	const struct map_pool *pool = map_pool_by_id(m, p->pool);
	uint32_t k = 0;
	while (k < s->n_states && s->states[k] != p->state)
		k++;
	if (k == s->n_states && k < BS_PG_SUMMARY_STATES)
		s->states[s->n_states++] = p->state;
	if (k < BS_PG_SUMMARY_STATES)
		s->counts[k]++;
	if (p->state & MON_PG_DOWN)
		s->down++;
	else if (p->state & MON_PG_INCOMPLETE)
		s->incomplete++;
	else if (!mon_pg_state_active(p->state))
		s->inactive++;
	else if (p->state & MON_PG_READ_ONLY)
		s->read_only++;
	if (p->state & MON_PG_DEGRADED)
		s->degraded_pgs++;
	s->degraded += p->degraded;
	s->missing += p->missing;
	s->objects += p->objects;
	s->stored_bytes += pool ? map_pool_stored_bytes(pool, p->bytes) : p->bytes;
	s->unfound += p->unfound;
	s->inconsistent_pgs += p->unfound > 0;
	s->bad_found += p->bad_found;
	s->bad_repaired += p->bad_repaired;
	s->scrubbing += (p->state & MON_PG_SCRUBBING) != 0;
	if (p->last_scrub_s && (!s->oldest_scrub_s || p->last_scrub_s < s->oldest_scrub_s))
		s->oldest_scrub_s = p->last_scrub_s;
}

static void osd_counts(struct bs_status *st)
{
	const struct cluster_map *m = &st->map;
	map_osd_counts(m, &st->osds_total, &st->osds_up, &st->osds_in);
	st->capacity_bytes = 0;
	for (uint32_t i = 0; i < m->n_osds; i++)
		if (m->osds[i].exists && m->osds[i].in)
			st->capacity_bytes += m->osds[i].device_bytes;
}

static void reason(struct bs_status *st, enum bs_health_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Adds a reason, kept in order of level (worst first), in the order the
 * rules found them within a level. */
static void reason(struct bs_status *st, enum bs_health_level level, const char *fmt, ...)
{
	if (st->n_reasons == BS_HEALTH_REASONS_MAX) {
		st->n_dropped++;
		return;
	}
	unsigned at = st->n_reasons;
	while (at > 0 && st->reasons[at - 1].level < level)
		at--;
	memmove(&st->reasons[at + 1], &st->reasons[at], (st->n_reasons - at) * sizeof(st->reasons[0]));
	st->reasons[at].level = level;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(st->reasons[at].text, sizeof(st->reasons[at].text), fmt, ap);
	va_end(ap);
	st->n_reasons++;
	if (level > st->health)
		st->health = level;
}

/* " 1:200:3 (pg 1.5), ..." for the first few objects no good copy of is
 * left. */
static void unfound_names(const struct cluster_map *m, const struct mon_osd_stats *pgs, char *buf,
			  size_t len)
{
	size_t at = 0;
	unsigned n = 0;
	buf[0] = 0;
	for (uint32_t i = 0; i < pgs->n_osds; i++) {
		const struct mon_osd_usage *u = &pgs->osds[i];
		uint32_t listed = u->n_unfound < MON_UNFOUND_MAX ? u->n_unfound : MON_UNFOUND_MAX;
		for (uint32_t k = 0; k < listed && n < 4 && at < len; k++, n++) {
			const struct map_pool *p = map_pool_by_id(m, u->unfound[k].pool);
			at += (size_t)snprintf(buf + at, len - at, "%s%" PRIx64 ":%" PRIx64 " (pg %u.%x)",
					       n ? ", " : "", u->unfound[k].inode,
					       u->unfound[k].index, u->unfound[k].pool,
					       p ? object_pg(&u->unfound[k], p->pg_num) : 0);
		}
	}
}

/* "osd.1 (96%), osd.2 (95%)" for the OSDs in STATE, at most 6 named;
 * returns how many. */
static unsigned osds_in_state(const struct cluster_map *m, const struct mon_osd_stats *pgs,
			      enum map_full_state state, char *buf, size_t len)
{
	unsigned n = 0;
	size_t at = 0;
	buf[0] = 0;
	for (uint32_t i = 0; i < m->n_osds; i++) {
		if (!m->osds[i].exists || m->osds[i].full != state)
			continue;
		const struct mon_osd_usage *u = bs_status_osd_usage(pgs, i);
		char use[16] = "down";
		if (u)
			snprintf(use, sizeof(use), "%u%%", mon_osd_usage_ratio(u) / 100);
		if (n++ < 6 && at < len)
			at += (size_t)snprintf(buf + at, len - at, "%sosd.%u (%s)", n > 1 ? ", " : "",
					       i, use);
	}
	if (n > 6 && at < len)
		snprintf(buf + at, len - at, " and %u more", n - 6);
	return n;
}

/* "osd.0, osd.3 (out)": the OSDs that exist and are down. */
static void osds_down(const struct cluster_map *m, char *buf, size_t len)
{
	size_t at = 0;
	buf[0] = 0;
	for (uint32_t i = 0; i < m->n_osds && at < len - 16; i++) {
		const struct map_osd *o = &m->osds[i];
		if (o->exists && !o->up)
			at += (size_t)snprintf(buf + at, len - at, "%sosd.%u%s", at ? ", " : "", i,
					       o->in ? "" : " (out)");
	}
}

/* "" or "s": "1 PG", "2 PGs". */
static const char *plural_s(uint64_t n)
{
	return n == 1 ? "" : "s";
}

static const char *copies(uint64_t n)
{
	return n == 1 ? "copy" : "copies";
}

/* Monitors, PGs that cannot serve, objects lost. */
static void rules_availability(struct bs_status *st)
{
	const struct bs_pg_summary *s = &st->sum;
	int quorum = __builtin_popcount(st->quorum_mask);
	if (st->stale || !st->leader[0])
		reason(st, BS_HEALTH_ERR, "no monitor quorum");
	if (s->down)
		reason(st, BS_HEALTH_ERR, "%u PG%s down (no OSD of theirs is up)", s->down,
		       plural_s(s->down));
	if (s->incomplete)
		reason(st, BS_HEALTH_ERR,
		       "%u PG%s incomplete (waiting for an OSD that holds their newest data)",
		       s->incomplete, plural_s(s->incomplete));
	if (s->unfound) {
		char objs[256];
		unfound_names(&st->map, &st->pgs, objs, sizeof(objs));
		reason(st, BS_HEALTH_ERR,
		       "%" PRIu64 " object%s in %u PG%s %s no good copy left (%s reads fail): "
		       "%s%s; basalt pg ls POOL --inconsistent",
		       s->unfound, plural_s(s->unfound), s->inconsistent_pgs,
		       plural_s(s->inconsistent_pgs), s->unfound == 1 ? "has" : "have",
		       s->unfound == 1 ? "its" : "their", objs, s->unfound > 4 ? ", ..." : "");
	}
	if (!st->stale && st->leader[0] && quorum < st->n_members)
		reason(st, BS_HEALTH_WARN, "%d of %d monitors out of quorum", st->n_members - quorum,
		       st->n_members);
	if (s->inactive)
		reason(st, BS_HEALTH_WARN, "%u PG%s inactive (I/O waits)", s->inactive,
		       plural_s(s->inactive));
	if (s->read_only)
		reason(st, BS_HEALTH_WARN,
		       "%u PG%s read-only (fewer OSDs up than min_size: writes wait)", s->read_only,
		       plural_s(s->read_only));
	if (s->degraded_pgs)
		reason(st, BS_HEALTH_WARN, "%u PG%s degraded (%" PRIu64 " object %s missing)",
		       s->degraded_pgs, plural_s(s->degraded_pgs), s->degraded, copies(s->degraded));
	if (st->osds_up < st->osds_total) {
		char down[256];
		osds_down(&st->map, down, sizeof(down));
		unsigned n = st->osds_total - st->osds_up;
		reason(st, BS_HEALTH_WARN, "%u OSD%s down: %s", n, plural_s(n), down);
	}
	if (s->bad_repaired)
		reason(st, BS_HEALTH_WARN,
		       "%" PRIu64 " bad %s found and repaired since the OSDs started (a disk "
		       "may be failing: see the OSD logs)",
		       s->bad_repaired, copies(s->bad_repaired));
}

/* Full OSDs and pools, slow operations. */
static void rules_space(struct bs_status *st)
{
	const struct cluster_map *m = &st->map;
	char names[256];
	unsigned n = osds_in_state(m, &st->pgs, MAP_FULL_FULL, names, sizeof(names));
	if (n)
		reason(st, BS_HEALTH_ERR,
		       "%u OSD%s full: %s; client writes are refused until space is freed", n,
		       n > 1 ? "s" : "", names);
	n = osds_in_state(m, &st->pgs, MAP_FULL_BACKFILL, names, sizeof(names));
	if (n)
		reason(st, BS_HEALTH_WARN, "%u OSD%s backfillfull: %s; recovery will not move data to %s",
		       n, n > 1 ? "s" : "", names, n > 1 ? "them" : "it");
	n = osds_in_state(m, &st->pgs, MAP_FULL_NEAR, names, sizeof(names));
	if (n) {
		char pools[128] = "";
		for (uint32_t i = 0, at = 0; i < m->n_pools && at < sizeof(pools); i++)
			at += (uint32_t)snprintf(pools + at, sizeof(pools) - at, "%s%s", i ? ", " : "",
						 m->pools[i].name);
		reason(st, BS_HEALTH_WARN, "%u OSD%s nearfull: %s (pools %s)", n, n > 1 ? "s" : "",
		       names, m->n_pools ? pools : "none");
	}
	for (uint32_t i = 0; i < m->n_pools; i++)
		if (m->pools[i].quota_full) {
			char q[32];
			reason(st, BS_HEALTH_WARN,
			       "pool '%s' reached its quota (max_bytes %s): writes to it are refused",
			       m->pools[i].name, cfg_format_size(m->pools[i].max_bytes, q, sizeof(q)));
		}
	for (uint32_t i = 0; st->have_pgs && i < st->pgs.n_osds; i++) {
		const struct mon_osd_usage *u = &st->pgs.osds[i];
		if (u->slow_ops)
			reason(st, BS_HEALTH_WARN,
			       "%u slow op%s on osd.%u, oldest %" PRIu64 " s (waiting for %s)",
			       u->slow_ops, plural_s(u->slow_ops), u->osd, u->slow_oldest_ms / 1000,
			       u->slow_what);
	}
}

void bs_status_compute(struct bs_status *st)
{
	memset(&st->sum, 0, sizeof(st->sum));
	for (uint32_t i = 0; st->have_pgs && i < st->pgs.n_pgs; i++)
		summary_add(&st->sum, &st->pgs.pgs[i], &st->map);
	osd_counts(st);
	st->health = BS_HEALTH_OK;
	st->n_reasons = st->n_dropped = 0;
	rules_availability(st);
	rules_space(st);
}

const char *bs_status_health_line(const struct bs_status *st, char *buf, size_t len)
{
	size_t at = (size_t)snprintf(buf, len, "%s", bs_health_level_name(st->health));
	for (unsigned i = 0; i < st->n_reasons && at < len; i++)
		at += (size_t)snprintf(buf + at, len - at, "%s%s", i ? "; " : ": ",
				       st->reasons[i].text);
	if (st->n_dropped && at < len)
		snprintf(buf + at, len - at, "; and %u more", st->n_dropped);
	return buf;
}

int bs_status_assemble(struct monc *mc, struct cluster_map *map, bool stale, const char *leader,
		       struct bs_status **out)
{
	struct bs_status *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->map = *map;
	memset(map, 0, sizeof(*map));
	st->stale = stale;
	snprintf(st->leader, sizeof(st->leader), "%s", leader);
	const struct mon_member *members = monc_members(mc, &st->n_members);
	memcpy(st->members, members, (size_t)st->n_members * sizeof(*members));
	for (int i = 0; i < st->n_members; i++) {
		struct mon_status ms = { 0 };
		if (strcmp(members[i].name, st->leader) == 0 && monc_status(mc, i, &ms) == 0)
			st->quorum_mask = ms.quorum_mask;
	}
	st->have_pgs = monc_pg_stats(mc, &st->pgs) == 0;
	bs_status_compute(st);
	*out = st;
	return 0;
}

void bs_status_free(struct bs_status *st)
{
	if (!st)
		return;
	mon_osd_stats_free(&st->pgs);
	map_free(&st->map);
	free(st);
}
