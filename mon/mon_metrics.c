/* The monitor's metrics (mon_metrics.h). Every monitor exports them; the
 * map gauges agree across a quorum, is_leader and quorum_up tell the
 * leader apart. */
#include "mon_metrics.h"

#include <errno.h>

#include "common/cluster/map.h"
#include "common/log.h"
#include "common/why.h"
#include "raft.h"

#define MON_METRICS_PUBLISH_NS 1000000000ull

static struct metrics_series *single(struct mon_metrics *mm, enum metrics_type type,
				     const char *name, const char *help)
{
	return metrics_single(mm->registry, type, name, help);
}

static void register_all(struct mon_metrics *mm)
{
	mm->elections = single(mm, METRICS_COUNTER, "basalt_mon_elections_total",
			       "New Raft terms this monitor saw (each an election)");
	mm->is_leader = single(mm, METRICS_GAUGE, "basalt_mon_is_leader",
			       "1 when this monitor is the Raft leader");
	mm->term = single(mm, METRICS_GAUGE, "basalt_mon_raft_term", "The current Raft term");
	mm->epoch = single(mm, METRICS_GAUGE, "basalt_mon_map_epoch",
			   "Epoch of the cluster map this monitor applied");
	mm->members = single(mm, METRICS_GAUGE, "basalt_mon_members", "Monitors in the cluster");
	mm->quorum_up = single(mm, METRICS_GAUGE, "basalt_mon_quorum_up",
			       "On the leader: monitors that answered within an election timeout "
			       "(itself included); 0 elsewhere");
	mm->osds = single(mm, METRICS_GAUGE, "basalt_mon_osds", "OSDs in the map");
	mm->osds_up = single(mm, METRICS_GAUGE, "basalt_mon_osds_up", "OSDs the map shows up");
	mm->osds_in = single(mm, METRICS_GAUGE, "basalt_mon_osds_in", "OSDs the map shows in");
	mm->pools = single(mm, METRICS_GAUGE, "basalt_mon_pools", "Pools in the map");
	mm->volumes = single(mm, METRICS_GAUGE, "basalt_mon_volumes", "Volumes in the map");
	mm->locks_held = single(mm, METRICS_GAUGE, "basalt_mon_volume_locks_held",
				"Volumes whose exclusive lock a client holds");
	mm->fencings = single(mm, METRICS_COUNTER, "basalt_mon_fencings_total",
			      "Clients fenced (added to the blocklist) as this monitor applied the map");
	mm->blocklist = single(mm, METRICS_GAUGE, "basalt_mon_blocklist_size",
			       "Clients the map fences");
	struct metrics_family *commands = metrics_family(
		mm->registry, METRICS_COUNTER, "basalt_mon_commands_total",
		"Commands answered by this monitor, by result: ok, retry (not the leader, "
		"leader changed, busy) or refused", "result");
	static const char *const results[MON_METRICS_RESULTS] = { "ok", "retry", "refused" };
	for (unsigned i = 0; i < MON_METRICS_RESULTS; i++)
		mm->commands[i] = metrics_series(commands, results[i]);
}

int mon_metrics_start(struct mon_metrics *mm, struct cfg *cfg, const char *section, char *why,
		      size_t why_len)
{
	if (metrics_registry_create(&mm->registry))
		return why_set(why, why_len, -ENOMEM, "out of memory for metrics");
	register_all(mm);
	if (metrics_registry_error(mm->registry))
		return why_set(why, why_len, -ENOMEM, "out of memory for metrics");
	int rc = metrics_server_start_config(mm->registry, cfg, section, &mm->server, why, why_len);
	if (!rc && mm->server)
		LOG_INFO("metrics served on http://%s/metrics", metrics_server_addr(mm->server));
	return rc;
}

void mon_metrics_stop(struct mon_metrics *mm)
{
	metrics_server_stop(mm->server); /* its thread reads the registry */
	mm->server = NULL;
	metrics_registry_free(mm->registry);
	mm->registry = NULL;
}

void mon_metrics_term(struct mon_metrics *mm, uint64_t term)
{
	if (term > mm->last_term)
		metrics_counter_add(mm->elections, 1);
	mm->last_term = term;
}

void mon_metrics_command(struct mon_metrics *mm, int rc)
{
	enum mon_metrics_result r = rc == 0		       ? MON_METRICS_OK
				    : rc == -EAGAIN || rc == -EBUSY ? MON_METRICS_RETRY
								    : MON_METRICS_REFUSED;
	metrics_counter_add(mm->commands[r], 1);
}

void mon_metrics_tick(struct mon_metrics *mm, uint64_t now_ns, const struct cluster_map *map,
		      const struct raft *raft, int n_members)
{
	if (!mm->registry || (mm->published_ns && now_ns - mm->published_ns < MON_METRICS_PUBLISH_NS))
		return;
	mm->published_ns = now_ns;
	bool leader = raft_role(raft) == RAFT_LEADER;
	metrics_gauge_set(mm->is_leader, leader);
	metrics_gauge_set(mm->term, (int64_t)raft_term(raft));
	metrics_gauge_set(mm->epoch, (int64_t)map->epoch);
	metrics_gauge_set(mm->members, n_members);
	metrics_gauge_set(mm->quorum_up, leader ? __builtin_popcount(raft_quorum_mask(raft)) : 0);
	int64_t osds = 0, up = 0, in = 0, locks = 0;
	for (uint32_t i = 0; i < map->n_osds; i++) {
		osds += map->osds[i].exists;
		up += map->osds[i].exists && map->osds[i].up;
		in += map->osds[i].exists && map->osds[i].in;
	}
	for (uint32_t i = 0; i < map->n_volumes; i++)
		locks += map->volumes[i].lock_client != 0;
	metrics_gauge_set(mm->osds, osds);
	metrics_gauge_set(mm->osds_up, up);
	metrics_gauge_set(mm->osds_in, in);
	metrics_gauge_set(mm->pools, map->n_pools);
	metrics_gauge_set(mm->volumes, map->n_volumes);
	metrics_gauge_set(mm->locks_held, locks);
	metrics_gauge_set(mm->blocklist, map->n_fenced);
}
