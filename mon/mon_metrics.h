/* The monitor's Prometheus metrics (common/metrics.h): Raft and map state
 * the monitor's loop copies into gauges on its tick, and counters it bumps
 * as commands are answered, elections seen and clients fenced. */
#ifndef BASALT_MON_MON_METRICS_H
#define BASALT_MON_MON_METRICS_H

#include <stdint.h>

#include "common/metrics.h"

struct cfg;
struct cluster_map;
struct raft;

enum mon_metrics_result { MON_METRICS_OK, MON_METRICS_RETRY, MON_METRICS_REFUSED, MON_METRICS_RESULTS };

struct mon_metrics {
	struct metrics_registry *registry;
	struct metrics_server *server; /* NULL: metrics_addr not set */
	uint64_t published_ns;
	uint64_t last_term;
	struct metrics_series *elections, *is_leader, *term, *epoch, *members, *quorum_up;
	struct metrics_series *osds, *osds_up, *osds_in, *pools, *volumes, *locks_held;
	struct metrics_series *fencings, *blocklist, *commands[MON_METRICS_RESULTS];
};

/* Registers the metrics and serves them when metrics_addr is set in
 * SECTION: 0 or -errno with WHY. mon_metrics_stop undoes it (also after a
 * failure part way). */
int mon_metrics_start(struct mon_metrics *mm, struct cfg *cfg, const char *section, char *why,
		      size_t why_len);
void mon_metrics_stop(struct mon_metrics *mm);
/* On the tick: at most once a second, the map and Raft state into gauges. */
void mon_metrics_tick(struct mon_metrics *mm, uint64_t now_ns, const struct cluster_map *map,
		      const struct raft *raft, int n_members);
/* A new term seen (from Raft's change callback). */
void mon_metrics_term(struct mon_metrics *mm, uint64_t term);
/* A command answered with RC. */
void mon_metrics_command(struct mon_metrics *mm, int rc);
/* Applied a map change that fenced a client. */
static inline void mon_metrics_fenced(struct mon_metrics *mm)
{
	metrics_counter_add(mm->fencings, 1);
}

#endif
