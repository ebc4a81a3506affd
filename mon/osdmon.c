/* OSD failure detection (see osdmon.h). */
#include "osdmon.h"

#include <errno.h>
#include <string.h>

#define OSDMON_REPROPOSE_MS 1000

void osdmon_params_default(struct osdmon_params *p)
{
	*p = (struct osdmon_params){
		.beacon_grace_ms = 15000,
		.report_grace_ms = 10000,
		.min_reporter_hosts = 2,
		.down_out_interval_ms = 600000,
		.flap_window_ms = 600000,
		.flap_base_ms = 10000,
		.flap_max_ms = 300000,
	};
}

void osdmon_init(struct osdmon *om, const struct osdmon_params *p)
{
	memset(om, 0, sizeof(*om));
	om->p = *p;
}

static const struct map_osd *up_osd(const struct cluster_map *m, uint32_t id)
{
	return id < m->n_osds && m->osds[id].exists && m->osds[id].up ? &m->osds[id] : NULL;
}

void osdmon_beacon(struct osdmon *om, uint32_t id, uint64_t now_ms)
{
	if (id < MAP_MAX_OSDS)
		om->osds[id].last_beacon_ms = now_ms;
}

void osdmon_booted(struct osdmon *om, uint32_t id, uint64_t now_ms)
{
	if (id >= MAP_MAX_OSDS)
		return;
	struct osdmon_osd *o = &om->osds[id];
	o->last_beacon_ms = now_ms;
	o->n_reports = 0;
}

int osdmon_report(struct osdmon *om, const struct cluster_map *m, uint32_t reporter,
		  uint32_t target, uint64_t now_ms)
{
	const struct map_osd *r = up_osd(m, reporter), *t = up_osd(m, target);
	if (!r || !t || reporter == target || strcmp(r->host, t->host) == 0)
		return -EINVAL;
	struct osdmon_osd *o = &om->osds[target];
	unsigned i = 0;
	while (i < o->n_reports && o->reports[i].reporter != reporter)
		i++;
	if (i == o->n_reports) {
		if (o->n_reports == OSDMON_MAX_REPORTS) { /* replace the oldest */
			i = 0;
			for (unsigned k = 1; k < o->n_reports; k++)
				if (o->reports[k].at_ms < o->reports[i].at_ms)
					i = k;
		} else {
			o->n_reports++;
		}
	}
	o->reports[i] = (struct osdmon_report){ reporter, now_ms };
	return 0;
}

/* Distinct hosts, other than the target's, with a live OSD whose report
 * about TARGET is still fresh. Stale reports are dropped. */
static unsigned reporter_hosts(struct osdmon *om, const struct cluster_map *m, uint32_t target,
			       uint64_t now_ms)
{
	struct osdmon_osd *o = &om->osds[target];
	const char *hosts[OSDMON_MAX_REPORTS];
	unsigned n_hosts = 0, kept = 0;
	for (unsigned i = 0; i < o->n_reports; i++) {
		const struct osdmon_report *rep = &o->reports[i];
		const struct map_osd *r = up_osd(m, rep->reporter);
		if (!r || now_ms - rep->at_ms > om->p.report_grace_ms)
			continue;
		o->reports[kept++] = *rep;
		unsigned h = 0;
		while (h < n_hosts && strcmp(hosts[h], r->host) != 0)
			h++;
		if (h == n_hosts && strcmp(r->host, m->osds[target].host) != 0)
			hosts[n_hosts++] = r->host;
	}
	o->n_reports = kept;
	return n_hosts;
}

uint64_t osdmon_boot_hold_ms(const struct osdmon *om, const struct cluster_map *m, uint32_t id,
			     uint64_t wall_ms)
{
	if (id >= m->n_osds || !m->osds[id].exists || !om->p.flap_base_ms)
		return 0;
	const struct map_osd *o = &m->osds[id];
	unsigned recent = 0;
	for (int i = 0; i < MAP_FLAP_HISTORY; i++)
		if (o->downs_ms[i] && o->downs_ms[i] + om->p.flap_window_ms >= wall_ms)
			recent++;
	if (recent < 2)
		return 0;
	uint64_t hold = om->p.flap_base_ms;
	for (unsigned i = 2; i < recent && hold < om->p.flap_max_ms; i++)
		hold *= 2;
	if (hold > om->p.flap_max_ms)
		hold = om->p.flap_max_ms;
	uint64_t until = o->downs_ms[0] + hold;
	return until > wall_ms ? until - wall_ms : 0;
}

static bool may_propose(struct osdmon_osd *o, uint64_t now_ms)
{
	if (o->proposed_ms && now_ms - o->proposed_ms < OSDMON_REPROPOSE_MS)
		return false;
	o->proposed_ms = now_ms;
	return true;
}

size_t osdmon_tick(struct osdmon *om, const struct cluster_map *m, uint64_t now_ms,
		   uint64_t wall_ms, struct map_cmd *out, size_t max)
{
	size_t n = 0;
	for (uint32_t id = 0; id < m->n_osds && n < max; id++) {
		const struct map_osd *mo = &m->osds[id];
		struct osdmon_osd *o = &om->osds[id];
		if (!mo->exists)
			continue;
		if (mo->up) {
			if (!o->last_beacon_ms) /* first sight: its grace starts now */
				o->last_beacon_ms = now_ms;
			uint8_t reason = 0;
			if (now_ms - o->last_beacon_ms > om->p.beacon_grace_ms)
				reason = MAP_REASON_BEACONS;
			else if (om->p.min_reporter_hosts &&
				 reporter_hosts(om, m, id, now_ms) >= om->p.min_reporter_hosts)
				reason = MAP_REASON_REPORTS;
			if (reason && may_propose(o, now_ms))
				out[n++] = (struct map_cmd){ .type = MAP_CMD_OSD_DOWN, .osd = id,
							     .time_ms = wall_ms, .flag = reason };
		} else if (mo->in && om->p.down_out_interval_ms && mo->down_since_ms &&
			   wall_ms >= mo->down_since_ms + om->p.down_out_interval_ms &&
			   may_propose(o, now_ms)) {
			out[n++] = (struct map_cmd){ .type = MAP_CMD_OSD_OUT, .osd = id,
						     .time_ms = wall_ms,
						     .flag = MAP_REASON_DOWN_OUT };
		}
	}
	return n;
}
