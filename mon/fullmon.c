/* Fullness on the monitors (see fullmon.h). */
#include "fullmon.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fullmon_init(struct fullmon *fm)
{
	memset(fm, 0, sizeof(*fm));
}

uint64_t fullmon_pool_bytes(const struct cluster_map *m, const struct map_pool *pool,
			    const struct mon_osd_stats *stats)
{
	uint8_t *seen = calloc((pool->pg_num + 7) / 8, 1);
	if (!seen)
		return 0;
	uint64_t bytes = 0;
	for (uint32_t id = 0; id < m->n_osds && id < MAP_MAX_OSDS; id++) {
		if (!m->osds[id].exists || !m->osds[id].up)
			continue;
		const struct mon_osd_stats *st = &stats[id];
		for (uint32_t k = 0; k < st->n_pgs; k++) {
			const struct mon_pg_stat *p = &st->pgs[k];
			if (p->pool != pool->id || p->pg >= pool->pg_num ||
			    (seen[p->pg / 8] & (1u << (p->pg % 8))))
				continue;
			seen[p->pg / 8] |= (uint8_t)(1u << (p->pg % 8));
			bytes += p->bytes;
		}
	}
	free(seen);
	return bytes;
}

/* The state OSD ID should have, from its last report: up a state at
 * once, down one only below the threshold by the hysteresis. */
static enum map_full_state osd_wanted(const struct cluster_map *m, const struct map_osd *o,
				      const struct mon_osd_usage *u)
{
	uint32_t ratio = mon_osd_usage_ratio(u);
	enum map_full_state want = map_full_state_for(m, ratio);
	if (want >= o->full)
		return want;
	uint32_t lower = ratio + FULLMON_HYSTERESIS;
	enum map_full_state held = map_full_state_for(m, lower > MAP_RATIO_ONE ? MAP_RATIO_ONE
									      : lower);
	return held < o->full ? held : (enum map_full_state)o->full;
}

static bool may_propose(uint64_t *last_ms, uint64_t now_ms)
{
	if (*last_ms && now_ms - *last_ms < 1000)
		return false;
	*last_ms = now_ms;
	return true;
}

size_t fullmon_tick(struct fullmon *fm, const struct cluster_map *m,
		    const struct mon_osd_stats *stats, uint64_t now_ms, struct map_cmd *out,
		    size_t max)
{
	size_t n = 0;
	for (uint32_t id = 0; id < m->n_osds && id < MAP_MAX_OSDS && n < max; id++) {
		const struct map_osd *o = &m->osds[id];
		const struct mon_osd_usage *u = &stats[id].usage;
		if (!o->exists || !o->up || !u->data_bytes)
			continue;
		enum map_full_state want = osd_wanted(m, o, u);
		if (want == o->full || !may_propose(&fm->osd_proposed_ms[id], now_ms))
			continue;
		out[n++] = (struct map_cmd){ .type = MAP_CMD_OSD_FULL, .osd = id,
					     .flag = (uint8_t)want };
	}
	for (uint32_t i = 0; i < m->n_pools && n < max; i++) {
		const struct map_pool *p = &m->pools[i];
		if (!p->max_bytes && !p->quota_full)
			continue;
		bool full = p->max_bytes && fullmon_pool_bytes(m, p, stats) >= p->max_bytes;
		if (full == p->quota_full ||
		    !may_propose(&fm->pool_proposed_ms[p->id % FULLMON_POOLS], now_ms))
			continue;
		out[n] = (struct map_cmd){ .type = MAP_CMD_POOL_FULL, .flag = full };
		snprintf(out[n].name, sizeof(out[n].name), "%s", p->name);
		n++;
	}
	return n;
}
