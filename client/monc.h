/* A synchronous monitor client for tools (the basalt CLI): finds the
 * leader by following redirects, resends a command after a timeout or a
 * leader change with the same (client, request) so it is applied once,
 * and reads maps and status from any monitor. Runs its own event loop. */
#ifndef BASALT_CLIENT_MONC_H
#define BASALT_CLIENT_MONC_H

#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"
#include "common/cluster/map.h"
#include "common/cluster/mon_members.h"
#include "common/cluster/mon_proto.h"

struct monc;

struct monc_params {
	const char *entity;  /* e.g. "client.admin" */
	const char *keyring; /* path */
	uint64_t timeout_ms; /* for a whole call, retries included */
	int prefer;	     /* a member index to ask first, or -1 */
};

int monc_open(struct cfg *cfg, const struct monc_params *p, struct monc **out,
	      char *why, size_t why_len);
void monc_close(struct monc *mc);

const struct mon_member *monc_members(const struct monc *mc, int *n);

/* Runs CMD on the leader. 0 when applied (TEXT says "done" or "already
 * done"), the map's refusal (-EEXIST, -EINVAL, ... with TEXT), -ETIMEDOUT
 * when no leader answered in time, or -ECONNREFUSED when every monitor
 * refused connections for 2 s; TEXT then names each monitor and what it
 * did. *EPOCH: the map's epoch. */
int monc_command(struct monc *mc, struct map_cmd *cmd, char *text, size_t text_len,
		 uint64_t *epoch);
/* The same for AUTH_ADD and AUTH_ROTATE: the new secret the leader made
 * comes back sealed for this connection alone; *HAS_SECRET says whether
 * SECRET holds it (not on an "already done" retry: that key is lost). */
int monc_command_key(struct monc *mc, struct map_cmd *cmd, char *text, size_t text_len,
		     uint64_t *epoch, uint8_t secret[32] /* out */, bool *has_secret /* out */);

/* The map from any monitor that answers (MEMBER >= 0: that one only).
 * STALE: that monitor has no quorum, so its map may be behind. A refusal
 * (-EACCES), a timeout (-ETIMEDOUT) or monitors that all refuse
 * connections (-ECONNREFUSED, within 2 s) leave the reason in LEADER,
 * naming each monitor and what it did. */
int monc_get_map(struct monc *mc, int member, struct cluster_map *map, bool *stale,
		 char *leader, size_t leader_len);

/* What monitor MEMBER says of itself. */
int monc_status(struct monc *mc, int member, struct mon_status *out);

/* PG states and usage as the monitors have them from the OSDs' beacons
 * (see mon_proto.h); free with mon_osd_stats_free. */
int monc_pg_stats(struct monc *mc, struct mon_osd_stats *out);

#endif
