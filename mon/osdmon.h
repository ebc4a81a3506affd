/* OSD failure detection on the monitors: beacons, failure reports from
 * peers, the down-out timer and flap damping.
 *
 * Every monitor hears every OSD's beacons and reports (OSDs send them to
 * all monitors), so a newly elected leader already knows who is alive.
 * This is soft state, never replicated; only the leader acts on it, by
 * proposing ordinary map commands (OSD_DOWN, OSD_OUT) stamped with its
 * wall clock, which the map records. The rules:
 *   - an up OSD with no beacon for beacon_grace is marked down;
 *   - an up OSD reported failed by OSDs on at least min_reporter_hosts
 *     other hosts, each report younger than report_grace, is marked down;
 *   - a down OSD that is still in is marked out after down_out_interval
 *     (counted from the mark-down recorded in the map, so a leader change
 *     does not restart the count); 0 disables it;
 *   - flap damping: an OSD marked down twice or more within flap_window is
 *     held down on boot for flap_base, doubling per further mark-down in
 *     the window, up to flap_max.
 * Pure logic with explicit clocks, so the unit test drives time. */
#ifndef BASALT_MON_OSDMON_H
#define BASALT_MON_OSDMON_H

#include <stddef.h>
#include <stdint.h>

#include "common/cluster/map.h"

struct osdmon_params {
	uint64_t beacon_grace_ms;	/* mon_osd_beacon_grace, default 15 s */
	uint64_t report_grace_ms;	/* mon_osd_report_grace, default 10 s */
	unsigned min_reporter_hosts;	/* mon_osd_min_down_reporter_hosts, default 2 */
	uint64_t down_out_interval_ms;	/* mon_osd_down_out_interval, default 600 s */
	uint64_t flap_window_ms;	/* mon_osd_flap_window, default 600 s */
	uint64_t flap_base_ms;		/* mon_osd_flap_backoff, default 10 s */
	uint64_t flap_max_ms;		/* mon_osd_flap_backoff_max, default 300 s */
};

#define OSDMON_MAX_REPORTS 16

struct osdmon_report {
	uint32_t reporter;
	uint64_t at_ms;
};

struct osdmon_osd {
	uint64_t last_beacon_ms; /* 0: none seen since this monitor started */
	struct osdmon_report reports[OSDMON_MAX_REPORTS];
	unsigned n_reports;
	uint64_t proposed_ms; /* a command about it was proposed then */
};

struct osdmon {
	struct osdmon_params p;
	struct osdmon_osd osds[MAP_MAX_OSDS];
};

void osdmon_params_default(struct osdmon_params *p);
/* Zeroes everything; P is copied. */
void osdmon_init(struct osdmon *om, const struct osdmon_params *p);

/* A beacon from OSD ID. */
void osdmon_beacon(struct osdmon *om, uint32_t id, uint64_t now_ms);
/* OSD REPORTER says TARGET does not answer. Ignored (-EINVAL) when either
 * is not up in M or they share a host. */
int osdmon_report(struct osdmon *om, const struct cluster_map *m, uint32_t reporter,
		  uint32_t target, uint64_t now_ms);
/* OSD ID booted (its BOOT command was accepted): its beacon clock starts
 * and old reports about it are dropped. */
void osdmon_booted(struct osdmon *om, uint32_t id, uint64_t now_ms);

/* How long OSD ID must still stay down before a boot is admitted, by flap
 * damping (0: admit now). WALL_MS is the leader's wall clock. */
uint64_t osdmon_boot_hold_ms(const struct osdmon *om, const struct cluster_map *m,
			     uint32_t id, uint64_t wall_ms);

/* The leader's periodic check: fills OUT (capacity MAX) with the commands
 * to propose now and returns how many. A command about an OSD is not
 * proposed again within a second of the last one, while it commits. */
size_t osdmon_tick(struct osdmon *om, const struct cluster_map *m, uint64_t now_ms,
		   uint64_t wall_ms, struct map_cmd *out, size_t max);

#endif
