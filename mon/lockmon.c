/* Volume lock leases (see lockmon.h). An open-addressed table: a renewal
 * takes its own slot, or an empty or long-expired one, or else the oldest
 * of its probe window. A holder pushed out that way counts as expired —
 * still safe, since a takeover fences it, but it costs that holder its
 * lock; it takes thousands of locks held at once to happen. */
#include "lockmon.h"

#include <string.h>

static uint32_t home(uint64_t client, uint64_t inode)
{
	uint64_t h = (client ^ (inode * 0x9E3779B97F4A7C15ULL)) * 0xBF58476D1CE4E5B9ULL;
	return (uint32_t)(h >> 40) & (LOCKMON_SLOTS - 1);
}

void lockmon_init(struct lockmon *lm, uint64_t lease_ms)
{
	memset(lm, 0, sizeof(*lm));
	lm->lease_ms = lease_ms;
}

static const struct lockmon_entry *find(const struct lockmon *lm, uint64_t client, uint64_t inode)
{
	uint32_t h = home(client, inode);
	for (uint32_t i = 0; i < LOCKMON_PROBE; i++) {
		const struct lockmon_entry *e = &lm->e[(h + i) & (LOCKMON_SLOTS - 1)];
		if (e->at_ms && e->client == client && e->inode == inode)
			return e;
	}
	return NULL;
}

void lockmon_renew(struct lockmon *lm, uint64_t client, uint64_t inode, uint64_t now_ms)
{
	if (!now_ms)
		now_ms = 1; /* 0 marks an empty slot */
	struct lockmon_entry *e = (struct lockmon_entry *)find(lm, client, inode);
	uint32_t h = home(client, inode);
	for (uint32_t i = 0; !e && i < LOCKMON_PROBE; i++) {
		struct lockmon_entry *x = &lm->e[(h + i) & (LOCKMON_SLOTS - 1)];
		if (!x->at_ms || x->at_ms + 4 * lm->lease_ms < now_ms)
			e = x;
	}
	for (uint32_t i = 0; !e && i < LOCKMON_PROBE; i++) {
		struct lockmon_entry *x = &lm->e[(h + i) & (LOCKMON_SLOTS - 1)];
		if (!e || x->at_ms < e->at_ms)
			e = x;
	}
	*e = (struct lockmon_entry){ client, inode, now_ms };
}

void lockmon_leader(struct lockmon *lm, uint64_t now_ms)
{
	lm->leader_since_ms = now_ms;
}

uint64_t lockmon_left_ms(const struct lockmon *lm, uint64_t client, uint64_t inode,
			 uint64_t now_ms, uint64_t *age_ms)
{
	const struct lockmon_entry *e = find(lm, client, inode);
	uint64_t last = e ? e->at_ms : 0;
	if (age_ms)
		*age_ms = e ? now_ms - last : UINT64_MAX;
	uint64_t from = last > lm->leader_since_ms ? last : lm->leader_since_ms;
	return from + lm->lease_ms > now_ms ? from + lm->lease_ms - now_ms : 0;
}
