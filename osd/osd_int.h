/* The OSD daemon's internals, shared by osd.c (membership, heartbeats)
 * and osd_ops.c (serving client operations from the store). */
#ifndef BASALT_OSD_OSD_INT_H
#define BASALT_OSD_OSD_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/cluster/monsess.h"
#include "common/io/loop.h"
#include "common/list.h"
#include "common/msgr.h"
#include "common/cluster/map.h"
#include "common/cluster/mon_members.h"
#include "common/metrics.h"
#include "pg.h"
#include "store.h"

#define OSD_RECENT 4096

/* A write or delete already answered, by (client, request): a ring of
 * OSD_RECENT (the oldest forgotten first) with a hash over it. */
struct osd_recent {
	uint64_t client, reqid;
	int32_t rc;
	uint64_t version;
	int32_t hash_next; /* ring index, -1: end */
};
#define OSD_RECENT_BUCKETS (2 * OSD_RECENT)

/* What this OSD knows of another: its connection and when it last
 * answered a ping. */
struct osd_peer {
	struct msgr_conn *conn;
	char addr[MAP_ADDR_MAX];
	uint64_t up_from;	 /* the map's up_from when we started watching it */
	uint64_t last_reply_ns;	 /* or when we started watching */
	uint64_t last_report_ns; /* 0: not reported */
	/* Its fullness as it last said (ping and sub-operation replies),
	 * and when: fresher than the map for a few seconds. */
	uint8_t full;
	uint64_t full_ns;
};

/* What the OSD counts for Prometheus (osd_metrics.c), by operation kind:
 * the client's (osd_op_type - 1), then the sub-operations a primary sends
 * (OSD_METRICS_REPLICA + pg_subop_type - 1). */
#define OSD_METRICS_CLIENT_OPS 7
#define OSD_METRICS_REPLICA OSD_METRICS_CLIENT_OPS
#define OSD_METRICS_OPS (OSD_METRICS_CLIENT_OPS + 10)
#define OSD_METRICS_PG_STATES 8
struct osd_metrics {
	struct metrics_registry *registry;
	struct metrics_server *server; /* NULL: metrics_addr not set */
	uint64_t published_ns;	       /* when the loop last published its gauges */
	struct metrics_series *ops[OSD_METRICS_OPS], *errors[OSD_METRICS_OPS];
	struct metrics_series *latency[OSD_METRICS_OPS];
	struct metrics_series *read_bytes, *written_bytes, *in_flight, *waiting_for_map;
	struct metrics_series *journal_used, *journal_size, *store_used, *store_free, *store_size;
	struct metrics_series *objects, *pgs[OSD_METRICS_PG_STATES], *map_epoch;
	struct metrics_series *recovered_objects, *recovered_bytes;
	struct metrics_series *scrubs, *scrubbed_objects, *bad_found, *bad_repaired;
	struct metrics_series *csum_errors, *read_errors;
	struct metrics_series *peerings_log, *peerings_full, *peering_bytes, *pg_log_entries;
	struct metrics_series *msgr_bytes[2]; /* sent, received: every peer */
};

struct osd {
	struct io_loop *loop;
	uint32_t id;
	char name[32];
	char host[MAP_NAME_MAX];
	char addr[MAP_ADDR_MAX];
	struct store *store;
	uint64_t device_bytes;
	struct keyring *keyring;
	struct msgr *msgr;
	struct monsess *mon;
	struct mon_member members[MON_MAX_MEMBERS];
	int n_members;
	struct io_timer tick;
	uint64_t beacon_ns, heartbeat_ns, grace_ns;
	uint64_t last_beacon, last_heartbeat;
	/* Registration: booted once the monitors accepted our BOOT; a map
	 * newer than that showing us down means booting again. */
	bool booted;
	uint64_t boot_epoch, boot_after;
	struct osd_peer *peers; /* indexed by OSD id, MAP_MAX_OSDS of them */
	/* Client operations (osd_ops.c). */
	/* Operations from clients whose map is newer than ours, held until
	 * ours catches up (struct osd_early, oldest first). */
	struct list_node early;
	unsigned n_early;
	struct osd_recent *recent;  /* OSD_RECENT answered writes and deletes */
	int32_t *recent_buckets;    /* OSD_RECENT_BUCKETS heads, -1: empty */
	unsigned recent_next;
	/* Replication (pg*.c). */
	struct osd_pgs *pgs;
	unsigned rec_max_active;	/* osd_recovery_max_active */
	uint64_t rec_bytes_per_sec;	/* osd_recovery_max_bytes_per_sec; 0: no limit */
	uint64_t complaint_ns;		/* osd_op_complaint_time: an op older is slow */
	/* Scrubs (pg_scrub.c): osd_scrub_interval and osd_deep_scrub_interval
	 * (0: only when asked), osd_scrub_max_bytes_per_sec, osd_scrub_sleep. */
	uint64_t scrub_interval_s, deep_scrub_interval_s;
	uint64_t scrub_bytes_per_sec, scrub_sleep_ns;
	/* PG logs (pg_log.c): osd_pg_log_max_entries per PG and
	 * osd_pg_log_max_bytes over all of them. */
	uint32_t pg_log_max_entries;
	uint64_t pg_log_max_bytes;
	/* Client keys (osd_auth.c): the secrets the monitors gave us, the
	 * fingerprint of that list, and when we last asked (0: not waiting). */
	struct osd_key *keys;
	uint32_t n_keys;
	uint64_t keys_sig, keys_asked_ns;
	bool cmd_is_boot;		/* what the running monitor command is */
	bool forgetting;		/* osd_forget: nothing goes out any more */
	bool stopping;			/* osd_stop: no new work */
	struct osd_metrics metrics;
};

/* osd_auth.c */
/* The messenger's find_key: a client key of the map, from the monitors. */
int osd_auth_find_key(void *ctx, const char *entity, const uint8_t id[8], uint8_t key[32]);
/* A new map: closes connections whose key is gone, asks for new keys. */
void osd_auth_map(struct osd *o);
void osd_auth_tick(struct osd *o, uint64_t now);
/* A KEYS_REPLY from a monitor connection (MSG borrowed). */
void osd_auth_keys_reply(struct osd *o, struct msgr_conn *conn, struct msg *msg);
/* Whether CONN's peer may send a message of TYPE: a client of the map
 * only object operations (logged when refused). */
bool osd_auth_msg_allowed(struct osd *o, struct msgr_conn *conn, uint16_t type);
/* 0 when CONN's peer's caps allow OP in the current map, else -EACCES
 * (logged once per connection, object and epoch). */
int osd_auth_check_op(struct osd *o, struct msgr_conn *conn, const struct osd_op *op);
void osd_auth_conn_closed(struct osd *o, struct msgr_conn *conn);
/* Whether CONN's peer has any osd grant in the current map (else its
 * operations are not even held for a newer map). */
bool osd_auth_any_grant(struct osd *o, struct msgr_conn *conn);
void osd_auth_free(struct osd *o);

/* osd_metrics.c */
/* Registers the OSD's metrics and serves them when metrics_addr is set
 * in its section: 0 or -errno with WHY. */
int osd_metrics_start(struct osd *o, struct cfg *cfg, char *why, size_t why_len);
void osd_metrics_stop(struct osd *o);
/* From the tick: copies loop state (store, PGs, map) into gauges once a
 * second. */
void osd_metrics_tick(struct osd *o, uint64_t now_ns);
/* An operation of KIND (see OSD_METRICS_OPS) arrived. */
static inline void osd_metrics_op_received(struct osd *o, unsigned kind)
{
	metrics_counter_add(o->metrics.ops[kind], 1);
}
/* One answered with RC, having moved BYTES (read or written), that
 * arrived at START_NS on the loop's clock. */
void osd_metrics_op_answered(struct osd *o, unsigned kind, int rc, uint64_t bytes,
			     uint64_t start_ns);
/* One answered with RC before or without running in the PG layer
 * (refused, listed, scheduled): counted when an error, not timed. */
static inline void osd_metrics_op_untimed(struct osd *o, unsigned kind, int rc)
{
	if (rc < 0)
		metrics_counter_add(o->metrics.errors[kind], 1);
}

/* osd.c */
/* Whether this OSD may take part in PGs: booted, and its map shows it up
 * in that boot. */
bool osd_serving(const struct osd *o);
/* The link to OSD ID (opened if needed, as the map says where it is), or
 * NULL when the map shows it down or the link cannot be opened. */
struct msgr_conn *osd_peer_conn(struct osd *o, uint32_t id);
/* The open link to OSD ID, or NULL. */
struct msgr_conn *osd_peer_conn_if(struct osd *o, uint32_t id);
/* This OSD's store fullness, in 1/10000 of its data blocks, and the
 * state that is under the map's ratios. */
uint32_t osd_used_ratio(const struct osd *o);
enum map_full_state osd_full_state(const struct osd *o);
/* OSD ID said it is STATE (a ping or sub-operation reply). */
void osd_peer_full_said(struct osd *o, uint32_t id, uint8_t state);
/* How full OSD ID is as far as this OSD knows: its own state for
 * itself; for another the fuller of the map's and what it said itself
 * in the last few seconds. */
enum map_full_state osd_member_full(const struct osd *o, uint32_t id);

/* osd_ops.c */
/* Answers a client: R (its epoch filled in) with DATA (LEN bytes, 4 KiB
 * aligned, ownership taken; may be NULL) to CONN (NULL: nowhere). */
void osd_op_answer(struct osd *o, struct msgr_conn *conn, uint64_t request_id,
		   struct osd_op_reply *r, void *data, uint32_t len);
/* The same, with CRC (NULL, or the CRC32C of each 4 KiB chunk of DATA,
 * living as long as DATA): the reply's frame is sealed from them. */
void osd_op_answer_crc(struct osd *o, struct msgr_conn *conn, uint64_t request_id,
		       struct osd_op_reply *r, void *data, uint32_t len, const uint32_t *crc);
/* Remembers the answer to a client's write or delete (CLIENT 0: not). */
void osd_recent_add(struct osd *o, uint64_t client, uint64_t reqid, int rc, uint64_t version);
struct osd_recent *osd_recent_find(struct osd *o, uint64_t client, uint64_t reqid);
int osd_ops_init(struct osd *o);
/* Before the messenger goes: answers still to come go nowhere. */
void osd_ops_detach(struct osd *o);
/* After the store is closed (its last completions have run). */
void osd_ops_fini(struct osd *o);
/* An OSD_MSG_OP from CONN; takes ownership of MSG. */
void osd_ops_handle(struct osd *o, struct msgr_conn *conn, struct msg *msg);
/* A newer map: runs what waited for it. */
void osd_ops_map(struct osd *o);
/* Every second: what waited too long for a map is answered -EAGAIN. */
void osd_ops_tick(struct osd *o, uint64_t now_ns);
void osd_ops_conn_closed(struct osd *o, struct msgr_conn *conn);

#endif
