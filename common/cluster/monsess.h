/* An asynchronous session with the monitors, for daemons that run their
 * own event loop (the OSD; later the NBD and FUSE clients): keeps a
 * subscription to the cluster map on one monitor (moving to another when
 * that one goes away or stays without quorum; updates come as the
 * commands since our epoch, applied here, or as whole maps), runs one map command at a
 * time on the leader (following redirects and resending with the same
 * request id, so it is applied once), and sends fire-and-forget messages
 * (beacons, failure reports) to every monitor.
 *
 * It shares the owner's messenger: the owner passes monitor messages and
 * connection events in through monsess_handle() and monsess_event(), and
 * calls monsess_tick() periodically (every 100 ms or so). */
#ifndef BASALT_CLUSTER_MONSESS_H
#define BASALT_CLUSTER_MONSESS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/msgr.h"
#include "common/cluster/map.h"
#include "common/cluster/mon_members.h"

struct monsess;

struct monsess_params {
	struct msgr *msgr; /* the owner's; the session connects to each monitor */
	const struct mon_member *members;
	int n_members;
	/* A newer map arrived (STALE: from a monitor without quorum). */
	void (*on_map)(void *ctx, const struct cluster_map *map, bool stale);
	/* The running command finished: RC 0 or the map's refusal, TEXT why;
	 * EPOCH is the map's epoch when it was answered. */
	void (*on_reply)(void *ctx, int rc, const char *text, uint64_t epoch);
	void *ctx;
};

int monsess_create(const struct monsess_params *p, struct monsess **out);
void monsess_destroy(struct monsess *s);
/* Frees S without touching its connections (msgr_forget frees them). */
void monsess_forget(struct monsess *s);

/* Whether CONN is one of the session's monitor connections. */
bool monsess_owns(const struct monsess *s, const struct msgr_conn *conn);
/* A message on a monitor connection; takes ownership of MSG. */
void monsess_handle(struct monsess *s, struct msgr_conn *conn, struct msg *msg);
void monsess_event(struct monsess *s, struct msgr_conn *conn, enum msgr_event ev);
void monsess_tick(struct monsess *s, uint64_t now_ns);
/* Why CONN, a monitor connection, went down (the messenger event's ERR),
 * kept for monsess_explain; the owner calls it beside monsess_event. */
void monsess_note_down(struct monsess *s, const struct msgr_conn *conn, int err);
/* TEXT: HEAD, then each monitor with its address and the state of its
 * connection ("Connection refused", "connected, no map sent"). True when
 * every monitor's connection failed at once (refused, no route, not a
 * timeout): then waiting longer is unlikely to help. */
bool monsess_explain(const struct monsess *s, const char *head, char *text, size_t text_len);

/* Starts CMD on the leader; -EBUSY while another command runs. */
int monsess_command(struct monsess *s, const struct map_cmd *cmd);
bool monsess_command_running(const struct monsess *s);
/* Sends MSG to one monitor whose connection is up, the subscription's
 * first; takes ownership of MSG. 0, or -ENOTCONN when none is up. */
int monsess_send_one(struct monsess *s, struct msg *msg);
/* Sends a copy of MSG to every monitor whose connection is up; frees MSG. */
void monsess_send_all(struct monsess *s, struct msg *msg);

/* The newest map seen (an empty one before the first arrives). */
const struct cluster_map *monsess_map(const struct monsess *s);
bool monsess_have_map(const struct monsess *s);
/* How many updates came as whole maps and as incremental ones. */
void monsess_stats(const struct monsess *s, uint64_t *full_maps, uint64_t *incs);
/* The bytes (payload and data) of the whole maps and of the incremental
 * updates applied so far (bench/bigmap.sh compares them). */
void monsess_map_bytes(const struct monsess *s, uint64_t *full_bytes /* out */,
		       uint64_t *inc_bytes /* out */);

#endif
