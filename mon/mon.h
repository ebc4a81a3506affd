/* basalt-mon: one monitor of the quorum. Runs Raft (mon/raft.c) over the
 * messenger with its peers, keeps its Raft state in a mon_store directory,
 * applies committed commands to the cluster map, and serves clients: the
 * map (with a "stale" mark when it has no quorum), commands (validated by
 * the leader, answered once applied; other monitors redirect to the
 * leader), subscriptions and status. */
#ifndef BASALT_MON_MON_H
#define BASALT_MON_MON_H

#include <stdint.h>

#include "common/config.h"
#include "common/io/loop.h"
#include "common/cluster/mon_members.h"

struct mon;

/* Creates monitor NAME's store directory ([mon.NAME] data = DIR). */
int mon_mkfs(struct cfg *cfg, const char *name, char *why, size_t why_len);

int mon_start(struct io_loop *loop, struct cfg *cfg, const char *name,
	      const char *keyring_path, struct mon **out, char *why,
	      size_t why_len);
void mon_stop(struct mon *m);

#endif
