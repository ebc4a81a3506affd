/* libbasalt's insides, shared by its files (libbasalt.c: operations and
 * the client; lock.c: volume locks and fencing). Not for users. */
#ifndef BASALT_CLIENT_LIBBASALT_INT_H
#define BASALT_CLIENT_LIBBASALT_INT_H

#include "common/cluster/monsess.h"
#include "common/keyring.h"
#include "common/msgr.h"
#include "libbasalt.h"
#include "common/cluster/mon_members.h"

#define BS_TICK_NS IO_MS(20)
#define BS_BUCKETS 1024u
#define BS_RETRY_MIN_NS IO_MS(20)
#define BS_RETRY_MAX_NS IO_MS(500)

struct bs_link {
	struct msgr_conn *conn;
	char addr[MAP_ADDR_MAX];
	uint64_t up_from;
};

struct bs_client {
	struct io_loop *loop;
	struct bs_client_params p;
	struct keyring *keyring;
	struct msgr *msgr;
	struct monsess *mon;
	struct mon_member members[MON_MAX_MEMBERS];
	int n_members;
	struct bs_link *links; /* by OSD id */
	struct bs_op *buckets[BS_BUCKETS];
	struct list_node waiting;
	/* Answered operations whose buffer a receive still writes into (their
	 * DONE runs once it has ended; see "pinned" in libbasalt.c). */
	struct list_node deferred;
	struct io_timer tick;
	uint64_t last_mon_tick;
	uint64_t client_id, next_reqid, next_tid;
	struct bs_client_stats stats;
	bool destroying;
	/* Locks (lock.c). */
	char owner[MAP_OWNER_MAX];
	struct list_node locks;	   /* struct bs_lock */
	struct list_node lock_cmds; /* struct bs_lock_cmd, the first running */
	uint64_t last_renew_ns;
	bool fenced;
	/* Our key (its id, auth_key_id): once a map listed it, a map without
	 * it (removed, or rotated away after its grace) fails every
	 * operation with -EACCES, as the OSDs would refuse them. */
	uint8_t key_id[8];
	bool key_in_map, key_gone;
};

/* lock.c */
/* A newer map: locks taken or lost, this client fenced. */
void bs_lock_map(struct bs_client *c, const struct cluster_map *m);
/* A map command finished (monsess on_reply). */
void bs_lock_reply(void *ctx, int rc, const char *text, uint64_t epoch);
void bs_lock_tick(struct bs_client *c, uint64_t now_ns);
void bs_lock_init(struct bs_client *c);
/* Fails what waits with -ECANCELED and forgets every lock (no unlock). */
void bs_lock_fini(struct bs_client *c);

/* libbasalt.c */
/* Fails every operation in flight or waiting with RC. */
void bs_fail_all(struct bs_client *c, int rc);


#endif
