/* The cluster at a glance, assembled once for every front end: the map,
 * the monitors' quorum, the PG states and usage the OSDs report, their
 * sums, and the health rules applied to them (a level and the list of
 * reasons, worst first). `basalt status` prints it; a plugin or a
 * monitoring agent reads the same verdict. */
#ifndef BASALT_CLIENT_STATUS_H
#define BASALT_CLIENT_STATUS_H

#include <stdbool.h>
#include <stdint.h>

#include "client/monc.h"
#include "common/cluster/map.h"
#include "common/cluster/mon_members.h"
#include "common/cluster/mon_proto.h"

/* PG states counted: how many PGs in each distinct state, and the sums
 * health needs. */
#define BS_PG_SUMMARY_STATES 32
struct bs_pg_summary {
	uint16_t states[BS_PG_SUMMARY_STATES];
	unsigned counts[BS_PG_SUMMARY_STATES];
	uint32_t n_states;
	unsigned down, incomplete, inactive, read_only, degraded_pgs, inconsistent_pgs;
	uint64_t degraded, missing, objects, stored_bytes;
	uint64_t unfound, bad_found, bad_repaired;
	uint64_t oldest_scrub_s; /* of the PG scrubbed longest ago (0: unknown) */
	uint32_t scrubbing;
};

enum bs_health_level { BS_HEALTH_OK, BS_HEALTH_WARN, BS_HEALTH_ERR };

#define BS_HEALTH_REASONS_MAX 32
#define BS_HEALTH_REASON_LEN 512
struct bs_health_reason {
	enum bs_health_level level;
	char text[BS_HEALTH_REASON_LEN];
};

struct bs_status {
	struct cluster_map map;
	bool stale;	 /* the monitor that sent the map has no quorum */
	char leader[64]; /* "" when none is known */
	struct mon_member members[MON_MAX_MEMBERS];
	int n_members;
	uint32_t quorum_mask; /* as the leader sees it; bit i: members[i] */
	bool have_pgs;	      /* the PG stats below came */
	struct mon_osd_stats pgs;
	struct bs_pg_summary sum;
	uint32_t osds_total, osds_up, osds_in;
	uint64_t capacity_bytes; /* devices of the OSDs in */
	/* Health: the worst level, and every reason worst first (the
	 * reasons past BS_HEALTH_REASONS_MAX are counted in n_dropped). */
	enum bs_health_level health;
	struct bs_health_reason reasons[BS_HEALTH_REASONS_MAX];
	unsigned n_reasons, n_dropped;
};

/* Builds *OUT around MAP (takes ownership of its contents: MAP is left
 * empty), STALE and LEADER as monc_get_map gave them, adding what MC's
 * monitors say of the quorum and the PGs, then applies the health
 * rules. 0, or -ENOMEM. Free with bs_status_free. */
int bs_status_assemble(struct monc *mc, struct cluster_map *map, bool stale,
		       const char *leader, struct bs_status **out);
void bs_status_free(struct bs_status *st);

/* The health rules over what ST holds (map, stale, leader, members,
 * quorum_mask, pgs): sets the sums, the counts, the level and the
 * reasons. No I/O: assemble ST by hand to test them. */
void bs_status_compute(struct bs_status *st);

/* "OK", or "WARN: reason; reason" with the worst level, for one line.
 * Returns BUF. */
const char *bs_status_health_line(const struct bs_status *st, char *buf, size_t len);
const char *bs_health_level_name(enum bs_health_level level);

/* OSD ID's usage in the PG stats, or NULL (no beacon: down). */
const struct mon_osd_usage *bs_status_osd_usage(const struct mon_osd_stats *pgs, uint32_t id);

#endif
