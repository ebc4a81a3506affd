/* Fullness on the monitors: turning the OSDs' reports of their stores'
 * space into the map's OSD fullness states and pool quota flags.
 *
 * Every monitor keeps the OSDs' last beacons (soft state); only the
 * leader acts, by proposing ordinary map commands:
 *   - OSD_FULL when an up OSD's reported fullness puts it in another
 *     state than the map says (nearfull, backfillfull, full, by the map's
 *     ratios). Going up is at once; coming down waits until the OSD is
 *     half a percent below the threshold, so an OSD on the line does not
 *     make the map flap. A down OSD keeps its state;
 *   - POOL_FULL when a pool with a quota (max_bytes) holds at least that
 *     many bytes (one copy, as its PGs' primaries report), or no longer.
 * A command about one OSD or pool is not proposed again within a second.
 * Pure logic with an explicit clock, so the unit test drives it. */
#ifndef BASALT_MON_FULLMON_H
#define BASALT_MON_FULLMON_H

#include <stddef.h>
#include <stdint.h>

#include "common/cluster/map.h"
#include "common/cluster/mon_proto.h"

#define FULLMON_HYSTERESIS 50 /* 0.5%, in 1/10000 */
#define FULLMON_POOLS 256     /* pools whose proposals are rate-limited apart */

struct fullmon {
	uint64_t osd_proposed_ms[MAP_MAX_OSDS];
	uint64_t pool_proposed_ms[FULLMON_POOLS]; /* by pool id % FULLMON_POOLS */
};

void fullmon_init(struct fullmon *fm);

/* The bytes POOL holds, one copy (the sum of its PGs' bytes as their
 * current primaries report them; each PG once). STATS is indexed by OSD
 * id (MAP_MAX_OSDS entries; n_pgs 0 for OSDs without a beacon). */
uint64_t fullmon_pool_bytes(const struct cluster_map *m, const struct map_pool *pool,
			    const struct mon_osd_stats *stats);

/* The leader's check: fills OUT (capacity MAX) with the commands to
 * propose now, returns how many. */
size_t fullmon_tick(struct fullmon *fm, const struct cluster_map *m,
		    const struct mon_osd_stats *stats, uint64_t now_ms, struct map_cmd *out,
		    size_t max);

#endif
