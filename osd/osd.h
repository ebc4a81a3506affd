/* basalt-osd, the daemon: one OSD serving one store. It opens its store,
 * registers with the monitors (address, host, device size) and keeps
 * registering while the map shows it down, sends beacons to every
 * monitor, heartbeats every other up OSD and reports to the monitors the
 * peers that stop answering, and serves its placement groups (pg.h):
 * replication, peering, recovery and client operations.
 *
 * Config, section [osd.N] (falling back to [osd], then [global]):
 *   device = PATH                 the store (see basalt-osd --mkfs)
 *   addr = HOST:PORT              where it listens for peers and clients
 *   host = NAME                   its failure domain (default: hostname)
 *   osd_beacon_interval = 2s      beacons to the monitors
 *   osd_heartbeat_interval = 1s   pings to peers
 *   osd_heartbeat_grace = 6s      a peer silent this long is reported
 *   osd_recovery_max_active = 4   objects recovered at once
 *   osd_recovery_max_bytes_per_sec = 200M   recovery's rate (0: no limit)
 *   osd_op_complaint_time = 30s   a client operation older is a slow one
 *   osd_scrub_interval = 7d       each PG's copies read and checked (0: only
 *                                 when asked)
 *   osd_deep_scrub_interval = 28d and compared across members (0: never by
 *                                 itself)
 *   osd_scrub_max_bytes_per_sec = 64M   scrub's rate (0: no limit)
 *   osd_scrub_sleep = 50ms        the longest a scrub chunk waits for the
 *                                 OSD's client operations to drain */
#ifndef BASALT_OSD_OSD_H
#define BASALT_OSD_OSD_H

#include <stdint.h>

#include "common/config.h"
#include "common/io/loop.h"

struct osd;

int osd_start(struct io_loop *loop, struct cfg *cfg, uint32_t id, const char *keyring_path,
	      struct osd **out, char *why, size_t why_len);
void osd_stop(struct osd *o);
/* Frees O as a killed process leaves things: no flush, no answers, no
 * goodbyes. For simulations, which destroy O's loop first (closing its
 * sockets and dropping what was in flight). */
void osd_forget(struct osd *o);
/* O's store (tests that damage a copy on purpose). */
struct store *osd_store(struct osd *o);

#endif
