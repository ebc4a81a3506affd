/* The placement-group layer of an OSD: replication, peering and recovery.
 *
 * For each PG whose primary it is, the OSD peers with the other members
 * when an interval starts, records the activation in the cluster map,
 * serves client operations (writes acknowledged only once every acting
 * member has them durable), and recovers members that lack objects. For
 * the PGs where it is another member, it answers the primary. The rules
 * and their argument: pg_int.h and docs/ARCHITECTURE.md ("Replication"). */
#ifndef BASALT_OSD_PG_H
#define BASALT_OSD_PG_H

#include <stdbool.h>
#include <stdint.h>

#include "common/msgr.h"
#include "common/cluster/map.h"
#include "common/cluster/mon_proto.h"
#include "common/cluster/osd_proto.h"

struct osd;

int osd_pg_init(struct osd *o);
/* Answers what is held, forgets everything (the store may still be
 * finishing writes: their completions find nothing to do). */
void osd_pg_detach(struct osd *o);
/* After the store is closed. */
/* osd_stop, once nothing changes the store any more: writes each PG's
 * log out, for the next start to peer by what changed (pg_log.c). */
void osd_pg_log_persist(struct osd *o);
void osd_pg_fini(struct osd *o);
/* Frees everything in flight without answering anyone (osd_forget). */
void osd_pg_forget(struct osd *o);

/* The OSD's map changed (or it booted, or was marked down): start,
 * end or keep each PG's interval. */
void osd_pg_map(struct osd *o);
void osd_pg_tick(struct osd *o, uint64_t now_ns);

/* Whether TYPE is a PG message (pg_proto.h). */
bool osd_pg_msg_type(uint16_t type);
/* A PG message from CONN; takes ownership of MSG. */
void osd_pg_message(struct osd *o, struct msgr_conn *conn, struct msg *msg);
/* The link to OSD went down (or was closed): what waited on it failed. */
void osd_pg_peer_down(struct osd *o, uint32_t osd);
/* An incoming connection is gone: answers due on it go nowhere. */
void osd_pg_conn_closed(struct osd *o, struct msgr_conn *conn);

/* A client operation this OSD is the primary for (osd_ops.c checked the
 * routing); DATA (WRITE, op->len bytes, 4 KiB aligned) becomes the PG
 * layer's, with a copy of CRC (NULL, or the CRC32C of each 4 KiB of DATA:
 * msg_chunk_crcs). The answer goes to CONN with REQUEST_ID. */
void osd_pg_client_op(struct osd *o, struct msgr_conn *conn, uint64_t request_id,
		      const struct osd_op *op, void *data, const uint32_t *crc);

/* The next activation record to write in the map, if any (0 and *CMD
 * filled, or -ENOENT); its answer comes through osd_pg_command_reply. */
int osd_pg_command_next(struct osd *o, struct map_cmd *cmd /* out */);
void osd_pg_command_reply(struct osd *o, int rc, const char *text, uint64_t epoch);

/* How this OSD's PGs stand: those it is primary of, how many of them are
 * active and clean, and the objects they still have to recover. */
struct osd_pg_summary {
	uint32_t primary, active, clean;
	uint64_t missing;
	uint64_t map_epoch; /* of the map these states follow */
	/* Since it started: peerings by kind (pg_log.c) and their bytes. */
	uint64_t peerings_log, peerings_full, peering_bytes;
};
void osd_pg_summary(struct osd *o, struct osd_pg_summary *out /* out */);
/* Asserts the PG layer's invariants (osd/pg_int.h) as this OSD sees
 * them: for the simulation, after every step. */
void osd_pg_check(struct osd *o);

/* Fills ST's PGs (those this OSD is primary of; allocated, caller frees
 * st->pgs) and recovery counters. */
int osd_pg_stats(struct osd *o, struct mon_osd_stats *st);
/* Scrubs PG PG of pool POOL (this OSD its primary; PG UINT32_MAX: every
 * PG it is primary of) as soon as it is active and clean: how many PGs
 * were scheduled, or -EAGAIN (not this OSD's PG). */
int osd_pg_scrub(struct osd *o, uint32_t pool, uint32_t pg, bool deep);
/* Scrubs this OSD finished since it started. */
uint64_t osd_pg_scrubs_done(const struct osd *o);
/* Bad copies found (by reads, recovery and scrubs) and repaired since
 * this OSD started, over all its PGs. */
void osd_pg_bad_copies(const struct osd *o, uint64_t *found /* out */,
		       uint64_t *repaired /* out */);
/* Client operations older than osd_op_complaint_time: their count, the
 * oldest's age and what it waits for, into U (each is logged once). */
struct mon_osd_usage;
void osd_pg_slow_ops(struct osd *o, uint64_t now_ns, struct mon_osd_usage *u);
/* The objects of this OSD's PGs with no good copy left, into U. */
void osd_pg_unfound(struct osd *o, struct mon_osd_usage *u);

#endif
