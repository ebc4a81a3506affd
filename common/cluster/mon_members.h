/* The monitors a config names ([mon.NAME] with addr = host:port) and the
 * cluster's fsid: what every party (monitor, OSD, client) reads from the
 * config before it can talk to the cluster. */
#ifndef BASALT_CLUSTER_MON_MEMBERS_H
#define BASALT_CLUSTER_MON_MEMBERS_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

/* One monitor named in the config; the list is sorted by name: a
 * monitor's Raft id is its place in it. */
struct mon_member {
	char name[64];
	char host[64];
	uint16_t port;
};
#define MON_MAX_MEMBERS 7

int mon_members(struct cfg *cfg, struct mon_member *out, int *n, char *why,
		size_t why_len);
/* The cluster's fsid from [global] fsid = 32 hex digits (dashes allowed). */
int mon_fsid(struct cfg *cfg, uint8_t fsid[16], char *why, size_t why_len);

#endif
