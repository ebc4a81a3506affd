/* Volume lock leases on the monitors.
 *
 * A client holding volume locks (map.h: lock_client) sends
 * MON_MSG_LOCK_RENEW to every monitor every few seconds; each monitor
 * remembers when it last heard of each (client, inode). This is soft
 * state, never replicated, and only the leader uses it: a lock request
 * for a volume another client holds takes the lock over when the holder's
 * lease has run out — no renewal for the lease time, counted from the
 * later of its last renewal and this monitor becoming leader (a new
 * leader gives every holder a whole lease) — and is refused otherwise,
 * unless the requester asked to break the lock. Taking over always fences
 * the old holder (map.h), so a holder that is alive but cut off from the
 * monitors cannot write after it, whatever the clocks say. Pure logic
 * with explicit clocks, so the unit test drives time. */
#ifndef BASALT_MON_LOCKMON_H
#define BASALT_MON_LOCKMON_H

#include <stdint.h>

#define LOCKMON_SLOTS 8192u /* a power of two */
#define LOCKMON_PROBE 32u

struct lockmon_entry {
	uint64_t client, inode;
	uint64_t at_ms; /* 0: empty */
};

struct lockmon {
	uint64_t lease_ms;	  /* mon_lock_lease, default 15 s */
	uint64_t leader_since_ms; /* when this monitor last became leader */
	struct lockmon_entry e[LOCKMON_SLOTS];
};

void lockmon_init(struct lockmon *lm, uint64_t lease_ms);
/* CLIENT renewed its lock on INODE at NOW. */
void lockmon_renew(struct lockmon *lm, uint64_t client, uint64_t inode, uint64_t now_ms);
/* This monitor became leader at NOW. */
void lockmon_leader(struct lockmon *lm, uint64_t now_ms);
/* How much of CLIENT's lease on INODE is left at NOW (0: it ran out);
 * *AGE_MS (may be NULL) how long ago it was last renewed (UINT64_MAX:
 * not since this monitor started). */
uint64_t lockmon_left_ms(const struct lockmon *lm, uint64_t client, uint64_t inode,
			 uint64_t now_ms, uint64_t *age_ms);

#endif
