/* Messages spoken with and between monitors, on the messenger. Payloads
 * are encoded with the bounded cursors; decoding a payload that does not
 * parse exactly is -EBADMSG and the sender is disconnected. */
#ifndef BASALT_CLUSTER_MON_PROTO_H
#define BASALT_CLUSTER_MON_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/auth.h"
#include "common/msgr_frame.h"
#include "common/object.h"
#include "map.h"

enum mon_msg_type {
	MON_MSG_RAFT = 32,	     /* monitor <-> monitor: a raft_msg */
	MON_MSG_GET_MAP,	     /* client: le64 have_epoch */
	MON_MSG_MAP,		     /* reply: see mon_map_reply */
	MON_MSG_COMMAND,	     /* client: le64 client, le64 req, cmd bytes */
	MON_MSG_COMMAND_REPLY,	     /* reply: le32 rc, le64 epoch, str leader, str text */
	MON_MSG_MON_STATUS,	     /* client: empty */
	MON_MSG_MON_STATUS_REPLY,    /* reply: see mon_status */
	MON_MSG_SUBSCRIBE,	     /* client: le64 have_epoch; maps pushed as MON_MSG_MAP */
	MON_MSG_OSD_BEACON,	     /* osd.N to every monitor: its stats; no reply */
	MON_MSG_OSD_FAILURE,	     /* osd.N to every monitor: le32 N, le32 target; no reply */
	MON_MSG_MAP_INC,	     /* to subscribers: see mon_map_inc_decode */
	MON_MSG_PG_STATS,	     /* client: empty */
	MON_MSG_PG_STATS_REPLY,	     /* struct mon_osd_stats-like summary, see mon_pg_stats_* */
	MON_MSG_LOCK_RENEW,	     /* client to every monitor: see mon_lock_renew; no reply */
	MON_MSG_KEYS,		     /* osd.N: empty; the client keys' secrets, see mon_keys */
	MON_MSG_KEYS_REPLY,
};

#define MON_MSG_FIRST MON_MSG_RAFT
#define MON_MSG_LAST MON_MSG_KEYS_REPLY

/* What an OSD's beacon carries: its usage, and the state of each PG it is
 * primary of (the monitors add them up for `basalt status` and `pg ls`).
 * A PG's state is a set of these flags; none at all is "unknown" (no
 * report from its primary yet). */
enum mon_pg_flag {
	MON_PG_ACTIVE = 1 << 0,	      /* serving I/O */
	MON_PG_CLEAN = 1 << 1,	      /* every copy in place */
	MON_PG_DEGRADED = 1 << 2,     /* some copies missing */
	MON_PG_UNDERSIZED = 1 << 3,   /* fewer acting OSDs than the pool's size */
	MON_PG_RECOVERING = 1 << 4,   /* copying what returning members lack */
	MON_PG_BACKFILLING = 1 << 5,  /* filling a member that held nothing */
	MON_PG_PEERING = 1 << 6,      /* gathering what the members hold */
	MON_PG_INCOMPLETE = 1 << 7,   /* no OSD that holds the newest data is up */
	MON_PG_DOWN = 1 << 8,	      /* no OSD of it is up */
	MON_PG_ACTIVATING = 1 << 9,   /* recording its activation in the map */
	MON_PG_PEERED = 1 << 10,      /* peered, not active: below min_size */
	MON_PG_BACKFILL_TOOFULL = 1 << 11, /* recovery waits: a member is backfillfull */
	MON_PG_SCRUBBING = 1 << 12,   /* its copies being read and checked */
	MON_PG_DEEP = 1 << 13,	      /* with SCRUBBING: compared across members too */
	MON_PG_INCONSISTENT = 1 << 14, /* objects with no good copy left */
	MON_PG_READ_ONLY = 1 << 15,   /* with ACTIVE: below min_size, writes wait (EC) */
};
#define MON_PG_FLAGS_LAST MON_PG_READ_ONLY
/* "active+clean", "undersized+degraded+active", ...; "unknown" for 0. */
const char *mon_pg_state_name(uint16_t state, char *buf, size_t len);
/* Whether STATE serves I/O. */
static inline bool mon_pg_state_active(uint16_t state)
{
	return state & MON_PG_ACTIVE;
}

struct mon_pg_stat {
	uint32_t pool, pg;
	uint16_t state; /* enum mon_pg_flag bits */
	uint32_t primary;
	uint64_t objects, bytes;
	uint64_t degraded; /* object copies missing */
	uint64_t missing;  /* objects some member still lacks (recovery left) */
	/* Scrubs: when the last (light) and deep one finished (unix
	 * seconds; 0 never), the one running's progress in objects, bad
	 * copies found and repaired (reads and scrubs, since the primary
	 * started), and objects with no good copy left. */
	uint64_t last_scrub_s, last_deep_scrub_s;
	uint32_t scrub_done, scrub_total;
	uint32_t bad_found, bad_repaired, unfound;
};

/* One OSD's space and slow operations, as its beacon said. */
#define MON_SLOW_WHAT_MAX 128
#define MON_UNFOUND_MAX 8
struct mon_osd_usage {
	uint32_t osd;
	uint64_t device_bytes, used_bytes;
	/* The store's data blocks, and those it can still promise to new
	 * data: fullness is 1 - data_avail_bytes / data_bytes. */
	uint64_t data_bytes, data_avail_bytes;
	/* Client operations older than osd_op_complaint_time, the oldest's
	 * age and what it waits for. */
	uint32_t slow_ops;
	uint64_t slow_oldest_ms;
	char slow_what[MON_SLOW_WHAT_MAX];
	/* Objects of its PGs with no good copy left (the first few), and
	 * how many there are. */
	uint32_t n_unfound;
	struct object_id unfound[MON_UNFOUND_MAX];
};

/* A store's fullness in 1/10000 of its data blocks (MAP_RATIO_ONE). */
uint32_t mon_osd_usage_ratio(const struct mon_osd_usage *u);

struct mon_osd_stats {
	uint32_t osd;
	uint64_t device_bytes, used_bytes, objects;
	/* Recovery this OSD drove as a primary, since it started. */
	uint64_t recovered_objects, recovered_bytes;
	struct mon_osd_usage usage; /* beacon: this OSD's */
	uint32_t n_pgs;
	struct mon_pg_stat *pgs; /* decode: allocated; free with mon_osd_stats_free */
	/* PG_STATS_REPLY: every up OSD's usage (the beacon sends none). */
	uint32_t n_osds;
	struct mon_osd_usage *osds; /* decode: allocated, freed with the rest */
};

/* A beacon (MON_MSG_OSD_BEACON) with STATS; also the PG_STATS_REPLY body
 * (then osd is the number of OSDs reporting, the PGs are all PGs, and
 * OSDS lists each up OSD's usage). */
struct msg *mon_osd_stats_encode(uint16_t type, uint64_t request_id,
				 const struct mon_osd_stats *st);
int mon_osd_stats_decode(const struct msg *msg, struct mon_osd_stats *out);
void mon_osd_stats_free(struct mon_osd_stats *st);

/* A monitor's Raft role as its status tells it (the values of the
 * monitor's own enum raft_role, checked there). */
enum mon_role { MON_ROLE_FOLLOWER, MON_ROLE_CANDIDATE, MON_ROLE_LEADER };
/* "leader", "candidate", "follower" (anything else: "unknown"). */
const char *mon_role_name(uint8_t role);

/* What a monitor says of itself and the quorum it sees. */
struct mon_status {
	char name[64];
	char leader[64]; /* "" when no leader is known */
	uint64_t term, commit, applied, epoch;
	uint32_t quorum_mask; /* leader only: monitors heard from recently */
	uint8_t role;	      /* enum mon_role */
	uint8_t stale;	      /* no quorum: the map may be behind */
};

/* A COMMAND_REPLY's payload. Decoding: 0, or -EBADMSG. */
struct mon_command_reply {
	int rc;		/* 0, the map's refusal, -EAGAIN (go to LEADER), -EACCES */
	uint64_t epoch; /* the map's epoch when answered */
	char leader[64];
	char text[256];
	/* AUTH_ADD, AUTH_ROTATE: the new secret, sealed under the session key
	 * of the connection that asked (purpose MON_SECRET_PURPOSE). */
	bool has_secret;
	uint8_t secret[32 + AUTH_SEAL_OVERHEAD];
};
#define MON_SECRET_PURPOSE "basalt-new-key"
struct msg *mon_command_reply_encode(uint64_t request_id, const struct mon_command_reply *r);
int mon_command_reply_decode(const struct msg *msg, struct mon_command_reply *out);

/* A MAP message's payload; the encoded map is its data segment. */
struct mon_map_header {
	uint64_t epoch;
	uint8_t stale; /* the sender has no quorum: the map may be behind */
	char leader[64];
};
int mon_map_header_decode(const struct msg *msg, struct mon_map_header *out);

/* KEYS_REPLY: the map's client keys as an OSD needs them to accept their
 * connections, each secret sealed under the session key of the OSD's
 * connection (purpose MON_KEYS_PURPOSE). Payload: le64 epoch; data: le32
 * count, then per key str entity, id[8], sealed[60], u8 has_old and, when
 * set, the old id and sealed secret. */
#define MON_KEYS_PURPOSE "basalt-osd-keys"
#define MON_KEYS_SEALED_LEN (32 + AUTH_SEAL_OVERHEAD)

/* An incremental update: the commands that took a map from epoch FROM to
 * the header's epoch, in order. The payload is the map header and le64
 * FROM; the data segment is le32 count, then per command le16 length and
 * the encoded map_cmd (secrets zeroed, as in public maps). */
struct mon_map_inc {
	struct mon_map_header h;
	uint64_t from;
	uint32_t count;
	const uint8_t *cmds; /* into the message's data */
	size_t cmds_len;
};
int mon_map_inc_decode(const struct msg *msg, struct mon_map_inc *out);
/* Applies an incremental to MAP, which must be at epoch FROM: 0, or
 * -ESTALE (another epoch), -EBADMSG (a command that does not decode or
 * apply, or does not land on the header's epoch). MAP is then unusable
 * and must be replaced by a full map. */
int mon_map_inc_apply(const struct mon_map_inc *inc, struct cluster_map *map);

/* A lock holder's renewal: client instance, then le32 count and the
 * inodes of the volumes whose locks it holds (at most MON_RENEW_MAX). */
#define MON_RENEW_MAX 1024
struct msg *mon_lock_renew_encode(uint64_t client, const uint64_t *inodes, uint32_t n);
/* INODES has room for MON_RENEW_MAX. 0, or -EBADMSG. */
int mon_lock_renew_decode(const struct msg *msg, uint64_t *client, uint64_t *inodes,
			  uint32_t *n);

#endif
