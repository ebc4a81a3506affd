/* The cluster map: the state machine the monitors replicate with Raft.
 * Every change is a command (an encoded struct map_cmd) that is validated
 * and applied deterministically on every monitor; a valid command bumps
 * the epoch, an invalid one changes nothing and yields one clear error.
 * Clients and OSDs follow the map by its epochs: the commands themselves
 * are the incremental updates, and map_encode() gives the full map. */
#ifndef BASALT_CLUSTER_MAP_H
#define BASALT_CLUSTER_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/auth.h"

#define MAP_NAME_MAX 64
#define MAP_OWNER_MAX 96 /* "client.NAME on HOST pid N (program)" */
#define MAP_ADDR_MAX 64
#define MAP_MAX_MONS 7
#define MAP_MAX_OSDS 4096
#define MAP_MAX_POOLS 1024
#define MAP_MAX_VOLUMES 65536
#define MAP_WEIGHT_ONE 0x10000u /* weights are 16.16 fixed point */

struct map_mon {
	char name[MAP_NAME_MAX];
	char addr[MAP_ADDR_MAX]; /* host:port */
};

#define MAP_FLAP_HISTORY 8

/* How full an OSD's store is, against the map's ratios (the leader sets
 * it from the OSD's beacons: MAP_CMD_OSD_FULL). Ceph's names and
 * meanings: nearfull warns; backfillfull stops recovery moving data to
 * it; full stops client writes to every pool (deletes go on). */
enum map_full_state {
	MAP_FULL_NONE = 0,
	MAP_FULL_NEAR = 1,
	MAP_FULL_BACKFILL = 2,
	MAP_FULL_FULL = 3,
};
#define MAP_RATIO_ONE 10000 /* ratios are in 1/10000 */

struct map_osd {
	bool exists, up, in;
	bool auto_out; /* out because it stayed down, not by an operator */
	char addr[MAP_ADDR_MAX];
	char host[MAP_NAME_MAX];
	uint32_t weight;
	uint64_t device_bytes;
	uint64_t up_from, down_at; /* epochs */
	uint64_t down_since_ms;	   /* wall clock of the last mark-down; 0 while up */
	/* When it was last marked down, newest first (0: never), for the
	 * leader's flap damping. */
	uint64_t downs_ms[MAP_FLAP_HISTORY];
	uint8_t full; /* enum map_full_state */
};

enum map_pool_type { MAP_POOL_REPLICATED = 1, MAP_POOL_EC = 2 };

struct map_pool {
	uint32_t id;
	char name[MAP_NAME_MAX];
	enum map_pool_type type;
	uint32_t size, min_size; /* replicated: copies; EC: k+m and k */
	uint32_t ec_k, ec_m;
	uint32_t pg_num;
	uint32_t block_size;
	uint64_t max_bytes; /* quota on the bytes stored (one copy); 0: none */
	bool quota_full;    /* the leader found the quota reached */
};

/* Snapshots per volume the map holds (their records are in every map:
 * ~45 encoded bytes each; bench/README.md, "Map scale"). */
#define MAP_MAX_SNAPS 1024

struct map_snap {
	uint32_t id; /* per volume, never reused, below OBJECT_SNAP_MAX */
	char name[MAP_NAME_MAX];
	uint64_t size;	  /* the volume's size when taken */
	/* The map epoch that created it: a write belongs after the snapshot
	 * iff its version's epoch (version >> 32) is at least this one
	 * (docs/ARCHITECTURE.md, "Snapshots"). */
	uint64_t epoch;
	uint64_t time_ms; /* the leader's clock when taken */
	/* Clones may be made of it only while set, and it cannot be removed
	 * (MAP_CMD_SNAP_PROTECT; unprotecting is refused while a clone's
	 * parent is it), so a clone's parent never goes away under it. */
	bool protected;
	/* A clone's parent_overlap when taken: what the snapshot reads of
	 * the parent stays so when the clone shrinks later. */
	uint64_t parent_overlap;
};

/* Volumes one SNAP_CREATE snapshots at one instant (a consistency group:
 * a VM's disks), the command's own name/snap included. */
#define MAP_SNAP_GROUP_MAX 16

struct map_volume {
	char name[MAP_NAME_MAX];
	uint64_t inode;
	uint64_t size;
	uint32_t pool;
	/* A clone reads through to its parent's snapshot where it has not
	 * written: (parent_inode, parent_snap); 0 when it has no parent. */
	uint64_t parent_inode;
	uint32_t parent_snap;
	/* Bytes of the parent a clone still reads through: the parent
	 * snapshot's size, cut by every shrink of the clone (growing back
	 * reads zeros there, not the parent). */
	uint64_t parent_overlap;
	uint32_t next_snap;
	uint32_t n_snaps, cap_snaps;
	struct map_snap *snaps; /* by id (creation order); the map owns it */
	/* The exclusive lock (MAP_CMD_VOLUME_LOCK): the client instance that
	 * may write (0: none) and who it is, for people. */
	uint64_t lock_client;
	char lock_owner[MAP_OWNER_MAX];
};

/* A fenced client instance: the OSDs refuse every operation it sends
 * from the epoch it was added on. Oldest first; when the list is full the
 * oldest entry goes (a client sees its own fencing in any newer map and
 * stops for good, so only one frozen through MAP_FENCED_MAX later fencings
 * could come back). */
#define MAP_FENCED_MAX 512

struct map_fenced {
	uint64_t client;
	uint64_t epoch;	  /* the map epoch that added it */
	uint64_t time_ms; /* the leader's wall clock then */
	char owner[MAP_OWNER_MAX];
};

/* Commands applied recently, by (client, request): a client that resends
 * after a timeout or a leader change gets "done" instead of a second
 * application. Part of the replicated state. */
#define MAP_RECENT 1024

/* A key the monitors accept for an entity ("client.NAME"), with what it
 * may do (caps, see map_caps_parse). Its secret is held sealed under the
 * monitors' own key (auth_seal, purpose "basalt-map-key"): no map, command
 * or Raft entry ever carries a client's secret in the clear, and only the
 * monitors can open it. During a rotation's grace the previous secret
 * stays valid until old_until_ms (the leader's wall clock). */
#define MAP_MAX_KEYS 1024
#define MAP_GRACE_MAX_MS (7ull * 24 * 3600 * 1000) /* AUTH_ROTATE */
#define MAP_CAPS_MAX 256
#define MAP_KEY_SEALED_LEN (32 + AUTH_SEAL_OVERHEAD)

/* The purpose a key's secret is sealed for: "basalt-map-key/ENTITY/KEYID",
 * binding the blob to its entity and id. Returns OUT. */
#define MAP_KEY_PURPOSE_MAX 128
const char *map_key_purpose(const char *entity, const uint8_t id[AUTH_KEY_ID_LEN],
			    char out[MAP_KEY_PURPOSE_MAX]);

struct map_key_secret {
	uint8_t sealed[MAP_KEY_SEALED_LEN]; /* zero in public maps */
	uint8_t id[AUTH_KEY_ID_LEN];	    /* auth_key_id: public */
};

struct map_key {
	char entity[MAP_NAME_MAX];
	struct map_key_secret cur, old;
	uint64_t old_until_ms; /* 0: no previous secret */
	char caps[MAP_CAPS_MAX];
};

/* Capabilities, compiled from a key's caps text: space-separated grants,
 *   admin                  everything, keys included
 *   mon=r | mon=rw         read the map | change it (not keys)
 *   osd=r | osd=rw         read | read and write objects, in every pool,
 *     [pool=GLOB] [volume=GLOB]  or only in pools / volumes whose name
 *                          matches (fnmatch: * ? [..]); a volume grant
 *                          also reads what its clones read through
 * e.g. "mon=r osd=rw pool=vms osd=r volume=web-*". */
#define MAP_CAPS_GRANTS_MAX 8

struct map_caps_grant {
	bool write;
	char pool[MAP_NAME_MAX];   /* "": any */
	char volume[MAP_NAME_MAX]; /* "": not restricted to volumes */
};

struct map_caps {
	bool admin;
	char mon; /* 0, 'r' or 'w' */
	uint32_t n_osd;
	struct map_caps_grant osd[MAP_CAPS_GRANTS_MAX];
};

struct map_recent {
	uint64_t client, req;
};

/* Where a placement group last became active: the first epoch of that
 * interval, its primary, and the members of its acting set that held
 * every acknowledged write when it was recorded (the *complete* ones;
 * members still recovering are left out, and the primary records the
 * interval again, same epoch, once they have caught up). Every write a
 * PG acknowledged is on every acting member of the interval it was
 * acknowledged in, and each activation is recorded here before the PG
 * takes writes, by compare-and-swap against the record its primary
 * peered with (MAP_CMD_PG_ACTIVE); so a primary that hears from one
 * recorded member has seen every acknowledged write (osd/pg.c). No
 * record: the PG never took a write. */
#define MAP_PG_ACTING_MAX 16

struct map_pg_active {
	uint32_t pool, pg;
	uint64_t epoch;
	uint32_t primary;
	uint32_t n;
	uint32_t osds[MAP_PG_ACTING_MAX];
};

struct cluster_map {
	uint8_t fsid[16];
	uint64_t epoch;
	struct map_mon mons[MAP_MAX_MONS];
	uint32_t n_mons;
	struct map_osd *osds; /* indexed by id */
	uint32_t n_osds;      /* ids below this may exist */
	struct map_pool *pools;
	uint32_t n_pools, next_pool_id;
	struct map_volume *volumes;
	uint32_t n_volumes;
	uint64_t next_inode;
	struct map_key *keys;
	uint32_t n_keys;
	struct map_pg_active *pg_active; /* sorted by (pool, pg) */
	uint32_t n_pg_active;
	struct map_fenced *fenced; /* MAP_FENCED_MAX slots, n_fenced used */
	uint32_t n_fenced;
	struct map_recent recent[MAP_RECENT];
	uint32_t recent_next;
	/* Fullness thresholds, in 1/10000 of an OSD's data blocks
	 * (MAP_CMD_SET_RATIO; defaults 0.85, 0.90, 0.95). */
	uint32_t nearfull_ratio, backfillfull_ratio, full_ratio;
	/* The PGs' placement, computed as asked and kept until its inputs
	 * change (map_placement.h); not part of the replicated state. The map
	 * owns it; NULL (a map not made by map_init or map_decode, or out of
	 * memory): every lookup computes. */
	struct map_placement *placement;
};

enum map_cmd_type {
	MAP_CMD_OSD_BOOT = 1,
	MAP_CMD_OSD_DOWN,
	MAP_CMD_OSD_OUT,
	MAP_CMD_OSD_IN,
	MAP_CMD_OSD_RM,
	MAP_CMD_OSD_REWEIGHT,
	MAP_CMD_POOL_CREATE,
	MAP_CMD_POOL_RM,
	MAP_CMD_POOL_SET,
	MAP_CMD_VOLUME_CREATE,
	MAP_CMD_VOLUME_RM,
	MAP_CMD_VOLUME_RESIZE,
	MAP_CMD_VOLUME_RENAME,
	MAP_CMD_AUTH_ADD,
	MAP_CMD_AUTH_CAPS,
	MAP_CMD_AUTH_RM,
	MAP_CMD_SNAP_CREATE,
	MAP_CMD_SNAP_RM,
	MAP_CMD_VOLUME_CLONE,
	MAP_CMD_PG_ACTIVE,
	MAP_CMD_VOLUME_LOCK,
	MAP_CMD_VOLUME_UNLOCK,
	MAP_CMD_FENCE_RM,
	MAP_CMD_OSD_FULL,  /* osd, flag: enum map_full_state (the leader) */
	MAP_CMD_POOL_FULL, /* name, flag: 1 quota reached (the leader) */
	MAP_CMD_SET_RATIO, /* key: nearfull|backfillfull|full, value in 1/10000 */
	MAP_CMD_SNAP_PROTECT,	/* name, snap; flag 1 protect, 0 unprotect */
	MAP_CMD_VOLUME_FLATTEN, /* name: a clone forgets its parent */
	/* name; secret: the new one; value: the grace in ms the current one
	 * stays valid for, from time_ms (the leader's clock) */
	MAP_CMD_AUTH_ROTATE,
	/* name; value: the old_until_ms whose secret goes (the leader, once
	 * its clock passed it) */
	MAP_CMD_AUTH_ROTATE_END,
};
#define MAP_CMD_LAST MAP_CMD_AUTH_ROTATE_END

/* Why an OSD is marked down or out (map_cmd.flag). */
enum map_osd_reason {
	MAP_REASON_ADMIN = 0,	 /* an operator asked */
	MAP_REASON_BEACONS = 1,	 /* DOWN: no beacon for the grace period */
	MAP_REASON_REPORTS = 2,	 /* DOWN: peers on other hosts reported it */
	MAP_REASON_DOWN_OUT = 3, /* OUT: down for mon_osd_down_out_interval */
};

#define MAP_CMD_ACTIVE_MAX 32

/* One command. Only the fields of its type are encoded. */
struct map_cmd {
	enum map_cmd_type type;
	uint64_t client, req; /* who asked, for deduplication; client 0: none */
	uint32_t osd;			/* OSD_* */
	char addr[MAP_ADDR_MAX];	/* OSD_BOOT */
	char host[MAP_NAME_MAX];	/* OSD_BOOT */
	uint64_t device_bytes;		/* OSD_BOOT */
	uint32_t weight;		/* OSD_REWEIGHT */
	char name[MAP_NAME_MAX];	/* POOL_*, VOLUME_* */
	char new_name[MAP_NAME_MAX];	/* VOLUME_RENAME */
	char key[MAP_NAME_MAX];		/* POOL_SET: size|min_size|pg_num|max_bytes;
					 * SET_RATIO */
	uint64_t value;			/* POOL_SET, VOLUME_RESIZE, SET_RATIO */
	struct map_pool pool;		/* POOL_CREATE (id ignored) */
	char pool_name[MAP_NAME_MAX];	/* VOLUME_CREATE; VOLUME_CLONE (empty: the
					 * parent's pool) */
	uint64_t size;			/* VOLUME_CREATE */
	uint64_t time_ms;		/* OSD_BOOT, OSD_DOWN, OSD_OUT, VOLUME_(UN)LOCK:
					 * the leader's clock */
	uint8_t flag;			/* OSD_DOWN, OSD_OUT: enum map_osd_reason;
					 * OSD_FULL: enum map_full_state;
					 * POOL_FULL: 1 full, 0 not;
					 * VOLUME_LOCK: 1 to take over (fencing the
					 * holder); VOLUME_UNLOCK: 1 to fence the
					 * holder, whoever it is; SNAP_PROTECT: 1
					 * protect, 0 unprotect */
	/* VOLUME_LOCK, VOLUME_UNLOCK: the client instance (lock_client);
	 * FENCE_RM: the one to forget. */
	uint64_t lock_client;
	char owner[MAP_OWNER_MAX];	/* VOLUME_LOCK */
	struct map_key_secret secret;	/* AUTH_ADD, AUTH_ROTATE (name: the entity);
					 * sealed by the leader */
	char caps[MAP_CAPS_MAX];	/* AUTH_ADD, AUTH_CAPS */
	char snap[MAP_NAME_MAX];	/* SNAP_*, VOLUME_CLONE: the snapshot */
	/* SNAP_CREATE: more volumes (of any pool) snapshotted by the same
	 * command, so in the same epoch: n_group pairs beside name@snap. */
	uint32_t n_group;
	struct {
		char volume[MAP_NAME_MAX];
		char snap[MAP_NAME_MAX];
	} group[MAP_SNAP_GROUP_MAX - 1];
	char src[MAP_NAME_MAX];		/* VOLUME_CLONE: the parent volume */
	/* PG_ACTIVE: N_ACTIVE records to write, each with the epoch of the
	 * record it replaces (0: none), which must still be the current one.
	 * A record whose PG moved on meanwhile is skipped (its primary peers
	 * again, seeing the map); the command is refused only when none
	 * applies. One command records many PGs: one Raft commit for all the
	 * PGs an OSD activates after a failure. */
	uint32_t n_active;
	struct map_pg_active active[MAP_CMD_ACTIVE_MAX];
	uint64_t prev_epoch[MAP_CMD_ACTIVE_MAX];
};

#define MAP_CMD_MAX_LEN 4096

/* Encodes CMD into BUF; returns the length, or -EMSGSIZE. */
int map_cmd_encode(const struct map_cmd *cmd, uint8_t *buf, size_t cap);
/* 0, or -EBADMSG for anything malformed. */
int map_cmd_decode(const uint8_t *buf, size_t len, struct map_cmd *out);

/* A new map (epoch 0) for the cluster FSID and its monitors. */
int map_init(struct cluster_map *m, const uint8_t fsid[16],
	     const struct map_mon *mons, uint32_t n_mons);
void map_free(struct cluster_map *m);

/* Checks CMD against M without changing it: 0, or -errno with one line
 * in ERR (-EEXIST name taken, -ENOENT no such thing, -EINVAL out of range,
 * -EBUSY still in use). */
int map_check(const struct cluster_map *m, const struct map_cmd *cmd,
	      char *err, size_t err_len);
/* Checks and applies CMD; on success the epoch grows by one. Apply the
 * same commands in the same order and two maps are identical. A command
 * whose (client, req) was applied recently is not applied again: 0 with
 * *DUPLICATE set (DUPLICATE may be NULL). */
int map_apply(struct cluster_map *m, const struct map_cmd *cmd, char *err,
	      size_t err_len, bool *duplicate);

/* Whether record I of a PG_ACTIVE command would apply to M: 0, or the
 * reason it is skipped (-ESTALE: replaced since; -EINVAL: out of order). */
int map_pg_active_applies(const struct cluster_map *m, const struct map_cmd *cmd, uint32_t i,
			  char *err, size_t err_len);

/* Whether content of VERSION was written before snapshot S was taken: a
 * version carries the map epoch its primary assigned it in (osd/pg_int.h,
 * invariant 6), S the epoch that made it. */
static inline bool map_snap_predates(const struct map_snap *s, uint64_t version)
{
	return version >> 32 < s->epoch;
}

/* V's snapshot ID, or NULL. */
const struct map_snap *map_snap_by_id(const struct map_volume *v, uint32_t id);
const struct map_snap *map_snap_by_name(const struct map_volume *v, const char *name);
/* Whether V's clone object of snapshot CLONE_SNAP holding content of
 * version CLONE_VERSION still serves a snapshot of V: one not removed,
 * taken at or before CLONE_SNAP and after that content was written. When
 * none does, the clone is garbage (snap rm deletes it). */
bool map_snap_clone_needed(const struct map_volume *v, uint32_t clone_snap,
			   uint64_t clone_version);

/* Where a read of volume V's view SNAP (OBJECT_SNAP_HEAD: the live
 * volume) looks, in order: V itself, then its parent snapshot, that
 * one's parent... (clones of clones). Reading object INDEX, the first
 * layer whose object exists answers; a layer is skipped for indexes at
 * or past its limit_bytes / block size, and bytes at or past limit_bytes
 * read as zeros. */
#define MAP_LAYERS_MAX 16
struct map_layer {
	uint32_t pool;
	uint64_t inode;
	uint32_t snap;
	uint64_t limit_bytes; /* layer 0: the view's size */
};
/* Fills LAYERS (capacity MAP_LAYERS_MAX) for V at SNAP: how many, or
 * -ENOENT when a parent or its snapshot is missing from M, -ELOOP when
 * the chain is longer than MAP_LAYERS_MAX. */
int map_volume_layers(const struct cluster_map *m, const struct map_volume *v, uint32_t snap,
		      struct map_layer *layers);

/* Whether client instance CLIENT is fenced in M. */
bool map_client_fenced(const struct cluster_map *m, uint64_t client);
const struct map_volume *map_volume_by_inode(const struct cluster_map *m, uint64_t inode);

/* True when CMD's (client, req) is among the recently applied ones. */
bool map_recently_applied(const struct cluster_map *m, const struct map_cmd *cmd);

/* The whole map, for snapshots. Caller frees *BUF. */
int map_encode(const struct cluster_map *m, uint8_t **buf, size_t *len);
/* The same with the client keys' secrets zeroed: what clients and OSDs
 * are sent. */
int map_encode_public(const struct cluster_map *m, uint8_t **buf, size_t *len);
/* Replaces M by a decoded map. 0 or -EBADMSG. */
int map_decode(const uint8_t *buf, size_t len, struct cluster_map *m);

const struct map_pool *map_pool_by_name(const struct cluster_map *m,
					const char *name);
const struct map_volume *map_volume_by_name(const struct cluster_map *m,
					    const char *name);
const struct map_key *map_key_by_entity(const struct cluster_map *m,
					const char *entity);
/* Compiles CAPS (see struct map_caps) into OUT. 0, or -EINVAL with the
 * reason in ERR. */
int map_caps_parse(const char *caps, struct map_caps *out /* out */, char *err,
		   size_t err_len);
/* 0 when CAPS parse; else -EINVAL with the reason in ERR. */
int map_caps_check(const char *caps, char *err, size_t err_len);
/* Whether C may read ('r') or change ('w') the map. */
bool map_caps_mon(const struct map_caps *c, char perm);
/* Whether C may PERM ('r' or 'w') snapshot SNAP (OBJECT_SNAP_HEAD: the
 * live object) of the objects of pool POOL_ID whose inode is INODE in M
 * (0: a request on the whole pool, such as a listing, which a volume grant
 * does not cover). */
bool map_caps_object(const struct cluster_map *m, const struct map_caps *c, char perm,
		     uint32_t pool_id, uint64_t inode, uint32_t snap);
/* Whether C may write volume V (for its lock). */
bool map_caps_volume_write(const struct cluster_map *m, const struct map_caps *c,
			   const struct map_volume *v);
/* Whether key K accepts the secret whose id is ID: its current one, or
 * the previous one until the leader ends the rotation's grace
 * (AUTH_ROTATE_END). Sets *OLD (may be NULL) when it is the previous. */
bool map_key_id_valid(const struct map_key *k, const uint8_t id[AUTH_KEY_ID_LEN],
		      bool *old /* out */);
/* Placement of PG PG of pool P (common/placement.h over the OSDs that
 * are in, one copy per host): the first P->size OSDs, best first, into
 * OUT (capacity CAP), up or not. Returns how many. Kept in M's placement
 * cache: computed once per PG until an OSD's in/out, weight, host or
 * existence or the pool's size or pg_num change. A map's lookups fill its
 * cache, so a map is looked up by one thread at a time, like every other
 * use of it. */
size_t map_pg_osds(const struct cluster_map *m, const struct map_pool *p, uint32_t pg,
		   uint32_t *out, size_t cap);
/* Of those, the ones up, in order: the acting set; the first is the PG's
 * primary. Returns how many. */
size_t map_pg_acting(const struct cluster_map *m, const struct map_pool *p, uint32_t pg,
		     uint32_t *out, size_t cap);
/* The same, with each acting OSD's position among map_pg_osds in
 * SHARDS[i] (SHARDS may be NULL). In an erasure-coded pool the position
 * is the chunk that OSD stores: an OSD down leaves its chunk's place
 * empty and the others keep theirs. */
size_t map_pg_acting_shards(const struct cluster_map *m, const struct map_pool *p,
			    uint32_t pg, uint32_t *out, uint8_t *shards, size_t cap);
/* map_pg_osds computed afresh, without the cache (the tests' reference,
 * and the figure the benchmark compares the cache with). */
size_t map_pg_osds_compute(const struct cluster_map *m, const struct map_pool *p, uint32_t pg,
			   uint32_t *out, size_t cap);
/* Whoever changes M's OSDs or pools other than through map_apply or
 * map_decode (a test) calls this before the next lookup. */
void map_placement_forget(const struct cluster_map *m);
const struct map_pool *map_pool_by_id(const struct cluster_map *m, uint32_t id);
/* What one OSD stores of an object of P: the whole block_size (replicated),
 * or one of its K chunks (erasure-coded); its store's block size. */
uint32_t map_pool_chunk_bytes(const struct map_pool *p);
/* What P stores of its objects, from HELD_BYTES one member holds of them
 * (a PG's primary reports its own): a replica holds them whole, an EC
 * member one chunk of K (every row written in all chunks alike). */
uint64_t map_pool_stored_bytes(const struct map_pool *p, uint64_t held_bytes);
/* Raw bytes P writes per byte stored: its size, or (K+M)/K (1.5 for 2+1),
 * before what partly written rows and blocks cost. */
double map_pool_raw_per_byte(const struct map_pool *p);
/* STORED bytes of pool P as its OSDs hold them: every copy, or chunk. */
uint64_t map_pool_raw_bytes(const struct map_pool *p, uint64_t stored);
/* PG PG of pool POOL's activation record, or NULL when it has none. */
const struct map_pg_active *map_pg_active_get(const struct cluster_map *m, uint32_t pool,
					      uint32_t pg);
/* The state a store whose data blocks are USED_RATIO (in 1/10000) used
 * has under M's ratios. */
enum map_full_state map_full_state_for(const struct cluster_map *m, uint32_t used_ratio);
const char *map_full_state_name(enum map_full_state s);
/* Whether client writes to pool P are refused for space: its quota is
 * reached, or an up OSD that is in is full. WHY (may be NULL) names the
 * cause ("osd.2 is full", "pool 'rbd' reached its quota of 100 GiB"). */
bool map_pool_full(const struct cluster_map *m, const struct map_pool *p, char *why,
		   size_t why_len);
/* How many OSDs exist, are up, are in. */
void map_osd_counts(const struct cluster_map *m, uint32_t *total, uint32_t *up,
		    uint32_t *in);

#endif
