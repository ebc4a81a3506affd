/* The monitor daemon's logic (see mon.h): the glue between the messenger,
 * the Raft core, the durable store and the cluster map. */
#include "mon.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/auth.h"
#include "common/enc.h"
#include "common/why.h"
#include "common/keyring.h"
#include "common/log.h"
#include "common/msgr.h"
#include "common/cluster/map.h"
#include "common/cluster/mon_proto.h"
#include "mon_metrics.h"
#include "mon_store.h"
#include "fullmon.h"
#include "lockmon.h"
#include "osdmon.h"
#include "raft.h"
#include "raft_msg.h"

#define MON_PENDING_MAX 4096
#define MON_SUBSCRIBERS_MAX 4096
#define MON_ENTITY "mon."

_Static_assert(RAFT_FOLLOWER == (int)MON_ROLE_FOLLOWER && RAFT_CANDIDATE == (int)MON_ROLE_CANDIDATE &&
		       RAFT_LEADER == (int)MON_ROLE_LEADER,
	       "a status tells the Raft role as an enum mon_role");

struct mon_pending {
	bool used;
	uint64_t index, term;
	struct msgr_conn *conn;
	uint64_t request_id;
	/* AUTH_ADD, AUTH_ROTATE: the secret the leader made, for the reply */
	bool has_secret;
	uint8_t secret[KEYRING_KEY_LEN];
};

struct mon {
	struct io_loop *loop;
	struct msgr *msgr;
	struct keyring *keyring;
	struct mon_member members[MON_MAX_MEMBERS];
	int n, id;
	struct msgr_conn *peers[MON_MAX_MEMBERS];
	struct mon_store *store;
	struct raft *raft;
	struct cluster_map map;
	struct io_timer tick;
	uint64_t tick_ns;
	struct mon_pending pending[MON_PENDING_MAX];
	struct msgr_conn *subscribers[MON_SUBSCRIBERS_MAX];
	uint64_t subscriber_epoch[MON_SUBSCRIBERS_MAX];
	int last_leader;
	struct osdmon *osdmon;
	struct fullmon *fullmon;
	uint64_t fullmon_ms; /* when the leader last checked fullness */
	struct lockmon *lockmon;
	bool was_leader;
	/* The monitors' own key for the client secrets the map holds
	 * (derived from mon.'s secret; struct map_key). */
	uint8_t map_keys_key[KEYRING_KEY_LEN];
	uint64_t rotate_end_ms; /* when the leader last proposed AUTH_ROTATE_END */
	/* The last MON_INC_MAX applied commands, by epoch (ring at epoch %
	 * MON_INC_MAX), as subscribers get them; inc_first is the oldest
	 * epoch held, 0 when none (after start-up or a snapshot install). */
	struct mon_inc *incs;
	uint64_t inc_first;
	/* Each OSD's last reported usage and PG states (soft state). */
	struct mon_osd_stats *osd_stats; /* MAP_MAX_OSDS of them */
	struct mon_metrics metrics;
};

#define MON_INC_MAX 1024

struct mon_inc {
	uint64_t epoch;
	uint16_t len;
	uint8_t data[MAP_CMD_MAX_LEN];
};

static uint64_t wall_ms(const struct mon *m)
{
	return io_wall_ms(m->loop);
}

static uint64_t mono_ms(const struct mon *m)
{
	return io_now_ns(m->loop) / 1000000;
}


static int member_index(const struct mon_member *members, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(members[i].name, name) == 0)
			return i;
	return -1;
}

static int data_dir(struct cfg *cfg, const char *name, const char **dir, char *why,
		    size_t why_len)
{
	char section[80];
	snprintf(section, sizeof(section), "mon.%s", name);
	if (cfg_get_str(cfg, section, "data", NULL, dir) < 0)
		return why_set(why, why_len, -EINVAL, "%s", cfg_error(cfg));
	return 0;
}

int mon_mkfs(struct cfg *cfg, const char *name, char *why, size_t why_len)
{
	struct mon_member members[MON_MAX_MEMBERS];
	int n;
	uint8_t fsid[16];
	const char *dir;
	int rc = mon_members(cfg, members, &n, why, why_len);
	if (!rc && member_index(members, n, name) < 0)
		rc = why_set(why, why_len, -ENOENT, "%s has no [mon.%s] section", cfg_path(cfg), name);
	if (!rc)
		rc = mon_fsid(cfg, fsid, why, why_len);
	if (!rc)
		rc = data_dir(cfg, name, &dir, why, why_len);
	if (!rc)
		rc = mon_store_create(dir, why, why_len);
	return rc;
}

/* --- replies ---------------------------------------------------------------------- */

static const char *leader_name(const struct mon *m)
{
	int l = m->raft ? raft_leader(m->raft) : -1;
	return l >= 0 ? m->members[l].name : "";
}

static bool mon_stale(const struct mon *m)
{
	return raft_leader(m->raft) < 0;
}

static void reply(struct msgr_conn *conn, struct msg *msg)
{
	if (msgr_send(conn, msg))
		msg_free(msg);
}

/* SECRET (may be NULL): a new client secret, sealed for CONN alone. */
static void send_command_reply_secret(struct mon *m, struct msgr_conn *conn, uint64_t req,
				      int rc, const char *text, const uint8_t *secret)
{
	struct mon_command_reply r = { .rc = rc, .epoch = m->map.epoch };
	mon_metrics_command(&m->metrics, rc);
	snprintf(r.leader, sizeof(r.leader), "%s", leader_name(m));
	snprintf(r.text, sizeof(r.text), "%s", text ? text : "");
	if (secret && auth_seal(msgr_conn_session_key(conn), MON_SECRET_PURPOSE, secret,
				KEYRING_KEY_LEN, r.secret) == 0)
		r.has_secret = true;
	struct msg *msg = mon_command_reply_encode(req, &r);
	if (msg)
		reply(conn, msg);
}

static void send_command_reply(struct mon *m, struct msgr_conn *conn, uint64_t req,
			       int rc, const char *text)
{
	send_command_reply_secret(m, conn, req, rc, text, NULL);
}

static void send_map(struct mon *m, struct msgr_conn *conn, uint64_t req)
{
	uint8_t *buf;
	size_t len;
	if (map_encode_public(&m->map, &buf, &len))
		return;
	struct msg *r = msg_new(MON_MSG_MAP, req, 8 + 1 + 2 + 64);
	if (!r || msg_alloc_data(r, (uint32_t)len)) {
		msg_free(r);
		free(buf);
		return;
	}
	memcpy(r->data, buf, len);
	free(buf);
	struct enc e;
	enc_init(&e, r->payload, r->hdr.payload_len);
	enc_put_le64(&e, m->map.epoch);
	enc_put_u8(&e, mon_stale(m));
	enc_put_str(&e, leader_name(m));
	r->hdr.payload_len = (uint32_t)e.pos;
	reply(conn, r);
}

static void send_status(struct mon *m, struct msgr_conn *conn, uint64_t req)
{
	struct msg *r = msg_new(MON_MSG_MON_STATUS_REPLY, req, 2 * 66 + 4 * 8 + 4 + 2);
	if (!r)
		return;
	struct enc e;
	enc_init(&e, r->payload, r->hdr.payload_len);
	enc_put_str(&e, m->members[m->id].name);
	enc_put_str(&e, leader_name(m));
	enc_put_le64(&e, raft_term(m->raft));
	enc_put_le64(&e, raft_commit_index(m->raft));
	enc_put_le64(&e, raft_applied_index(m->raft));
	enc_put_le64(&e, m->map.epoch);
	enc_put_le32(&e, raft_quorum_mask(m->raft));
	enc_put_u8(&e, (uint8_t)raft_role(m->raft));
	enc_put_u8(&e, mon_stale(m));
	r->hdr.payload_len = (uint32_t)e.pos;
	reply(conn, r);
}

/* Keeps CMD, just applied as epoch EPOCH, for incremental updates; the
 * secret of a new key is left out, as in the maps clients get. */
static void record_inc(struct mon *m, const struct map_cmd *cmd, uint64_t epoch)
{
	struct map_cmd pub = *cmd;
	memset(pub.secret.sealed, 0, sizeof(pub.secret.sealed));
	struct mon_inc *inc = &m->incs[epoch % MON_INC_MAX];
	int len = map_cmd_encode(&pub, inc->data, sizeof(inc->data));
	if (len < 0) { /* cannot happen; never serve a gap */
		m->inc_first = 0;
		return;
	}
	if (m->inc_first && m->incs[(epoch - 1) % MON_INC_MAX].epoch != epoch - 1)
		m->inc_first = 0; /* not contiguous: start again from here */
	inc->epoch = epoch;
	inc->len = (uint16_t)len;
	if (!m->inc_first)
		m->inc_first = epoch;
	else if (epoch - m->inc_first >= MON_INC_MAX)
		m->inc_first = epoch - MON_INC_MAX + 1;
}

/* Sends what takes a subscriber from epoch HAVE to ours: the commands in
 * between when we still hold them all, else the full map. */
static void send_update(struct mon *m, struct msgr_conn *conn, uint64_t have)
{
	if (!have || !m->inc_first || have + 1 < m->inc_first || have >= m->map.epoch) {
		send_map(m, conn, 0);
		return;
	}
	uint32_t count = (uint32_t)(m->map.epoch - have);
	size_t len = 4;
	for (uint64_t e = have + 1; e <= m->map.epoch; e++)
		len += 2 + m->incs[e % MON_INC_MAX].len;
	struct msg *r = msg_new(MON_MSG_MAP_INC, 0, 8 + 1 + 2 + 64 + 8);
	if (!r || msg_alloc_data(r, (uint32_t)len)) {
		msg_free(r);
		return;
	}
	struct enc e;
	enc_init(&e, r->payload, r->hdr.payload_len);
	enc_put_le64(&e, m->map.epoch);
	enc_put_u8(&e, mon_stale(m));
	enc_put_str(&e, leader_name(m));
	enc_put_le64(&e, have);
	r->hdr.payload_len = (uint32_t)e.pos;
	enc_init(&e, r->data, len);
	enc_put_le32(&e, count);
	for (uint64_t ep = have + 1; ep <= m->map.epoch; ep++) {
		const struct mon_inc *inc = &m->incs[ep % MON_INC_MAX];
		enc_put_le16(&e, inc->len);
		enc_put_bytes(&e, inc->data, inc->len);
	}
	reply(conn, r);
}

static int peer_osd(const struct msgr_conn *conn);
static bool peer_may(const struct mon *m, const struct msgr_conn *conn, char perm);

static void publish(struct mon *m)
{
	for (int i = 0; i < MON_SUBSCRIBERS_MAX; i++) {
		struct msgr_conn *conn = m->subscribers[i];
		/* A subscriber whose mon=r (or key) was taken away gets the map
		 * that says so, and no more. */
		if (conn && peer_osd(conn) < 0 && !peer_may(m, conn, 'r'))
			m->subscribers[i] = NULL;
		if (conn && m->subscriber_epoch[i] < m->map.epoch) {
			send_update(m, conn, m->subscriber_epoch[i]);
			m->subscriber_epoch[i] = m->map.epoch;
		}
	}
}

/* --- Raft glue ----------------------------------------------------------------------- */

static int st_term_vote(void *ctx, uint64_t term, int vote)
{
	return mon_store_save_term_vote(((struct mon *)ctx)->store, term, vote);
}

static int st_append(void *ctx, const struct raft_entry *e, size_t n)
{
	return mon_store_append(((struct mon *)ctx)->store, e, n);
}

static int st_snapshot(void *ctx, uint64_t index, uint64_t term, const uint8_t *data,
		       size_t len, bool keep_tail)
{
	return mon_store_save_snapshot(((struct mon *)ctx)->store, index, term, data, len,
				       keep_tail);
}

static int st_sync(void *ctx)
{
	return mon_store_sync(((struct mon *)ctx)->store);
}

static const struct raft_storage_ops mon_storage = { st_term_vote, st_append, st_snapshot,
						     st_sync };

static void close_if_key_gone(struct msgr_conn *conn, void *arg);

static void fsm_apply(void *ctx, const struct raft_entry *e)
{
	struct mon *m = ctx;
	if (e->type != RAFT_ENTRY_COMMAND)
		return;
	struct map_cmd cmd;
	char err[256] = "";
	bool dup = false;
	int rc = map_cmd_decode(e->data, e->len, &cmd);
	if (rc)
		snprintf(err, sizeof(err), "undecodable command at index %llu",
			 (unsigned long long)e->index);
	else
		rc = map_apply(&m->map, &cmd, err, sizeof(err), &dup);
	if (rc == 0)
		snprintf(err, sizeof(err), dup ? "already done" : "done");
	if (rc == 0 && !dup)
		record_inc(m, &cmd, m->map.epoch);
	if (rc == 0 && !dup && cmd.type == MAP_CMD_OSD_BOOT)
		osdmon_booted(m->osdmon, cmd.osd, mono_ms(m));
	if (rc == 0 && !dup && (cmd.type == MAP_CMD_OSD_DOWN || cmd.type == MAP_CMD_OSD_OUT))
		LOG_INFO("osd.%u marked %s (%s)", cmd.osd, cmd.type == MAP_CMD_OSD_DOWN ? "down" : "out",
			 cmd.flag == MAP_REASON_BEACONS	   ? "no beacons"
			 : cmd.flag == MAP_REASON_REPORTS  ? "reported by peers"
			 : cmd.flag == MAP_REASON_DOWN_OUT ? "down too long"
							   : "by an operator");
	if (rc == 0 && !dup && (cmd.type == MAP_CMD_VOLUME_LOCK || cmd.type == MAP_CMD_VOLUME_UNLOCK) &&
	    m->map.n_fenced && m->map.fenced[m->map.n_fenced - 1].epoch == m->map.epoch)
		mon_metrics_fenced(&m->metrics); /* it took the lock from a holder */
	if (rc == 0 && !dup && cmd.type == MAP_CMD_OSD_FULL)
		LOG_WARN("osd.%u is %s now", cmd.osd, map_full_state_name(cmd.flag));
	if (rc == 0 && !dup && cmd.type == MAP_CMD_POOL_FULL)
		LOG_WARN("pool '%s' %s its quota", cmd.name, cmd.flag ? "reached" : "is below");
	for (int i = 0; i < MON_PENDING_MAX; i++) {
		struct mon_pending *p = &m->pending[i];
		if (!p->used || p->index != e->index)
			continue;
		bool ours = p->term == e->term;
		if (p->conn)
			send_command_reply_secret(m, p->conn, p->request_id, ours ? rc : -EAGAIN,
						  ours ? err : "leader changed; retry",
						  ours && rc == 0 && !dup && p->has_secret ? p->secret
											   : NULL);
		memset(p->secret, 0, sizeof(p->secret));
		p->used = false;
	}
	if (rc == 0 && !dup)
		publish(m);
	/* After the map that says why went out to them. */
	if (rc == 0 && !dup && (cmd.type == MAP_CMD_AUTH_RM || cmd.type == MAP_CMD_AUTH_ROTATE_END))
		msgr_for_each_conn(m->msgr, close_if_key_gone, m);
}

static int fsm_snapshot(void *ctx, uint8_t **data, size_t *len)
{
	return map_encode(&((struct mon *)ctx)->map, data, len);
}

static int fsm_restore(void *ctx, const uint8_t *data, size_t len)
{
	struct mon *m = ctx;
	m->inc_first = 0; /* the commands before the snapshot are not ours */
	int rc = map_decode(data, len, &m->map);
	if (!rc)
		publish(m); /* a follower that fell behind caught up by a snapshot */
	return rc;
}

static const struct raft_fsm_ops mon_fsm = { fsm_apply, fsm_snapshot, fsm_restore };

static void raft_send(void *ctx, const struct raft_msg *rm)
{
	struct mon *m = ctx;
	struct msgr_conn *conn = m->peers[rm->to];
	if (!conn)
		return;
	struct msg *msg = mon_raft_encode(rm);
	if (msg && msgr_send(conn, msg))
		msg_free(msg); /* a full queue drops: Raft resends */
}

/* Commands waiting on a leadership that ended are answered "retry". */
static void raft_changed(void *ctx)
{
	struct mon *m = ctx;
	int leader = raft_leader(m->raft);
	if (leader != m->last_leader)
		LOG_INFO("leader is now %s (term %llu)", leader >= 0 ? m->members[leader].name : "unknown",
			 (unsigned long long)raft_term(m->raft));
	m->last_leader = leader;
	mon_metrics_term(&m->metrics, raft_term(m->raft));
	bool leading = raft_role(m->raft) == RAFT_LEADER;
	if (leading && !m->was_leader)
		lockmon_leader(m->lockmon, mono_ms(m));
	m->was_leader = leading;
	if (leading)
		return;
	for (int i = 0; i < MON_PENDING_MAX; i++) {
		struct mon_pending *p = &m->pending[i];
		if (!p->used)
			continue;
		if (p->conn)
			send_command_reply(m, p->conn, p->request_id, -EAGAIN,
					   "leader changed; retry");
		p->used = false;
	}
}

static const struct raft_io_ops mon_io = { raft_send, raft_changed };

/* --- clients ---------------------------------------------------------------------- */

/* The OSD id of an "osd.N" peer, or -1. */
static int peer_osd(const struct msgr_conn *conn)
{
	const char *name = msgr_conn_peer_name(conn);
	char *end;
	if (strncmp(name, "osd.", 4) || !name[4])
		return -1;
	unsigned long id = strtoul(name + 4, &end, 10);
	return *end || id >= MAP_MAX_OSDS ? -1 : (int)id;
}

/* What CONN's peer may do. Entities of the keyring file are the
 * cluster's own (monitors, OSDs, client.admin): everything. A client
 * whose key is in the map has its caps, read afresh on every request, so
 * a change applies to the next one. Anyone else: nothing. */
static void peer_caps(const struct mon *m, const struct msgr_conn *conn, struct map_caps *caps)
{
	memset(caps, 0, sizeof(*caps));
	if (msgr_conn_peer_in_keyring(conn)) {
		caps->admin = true;
		return;
	}
	const struct map_key *k = map_key_by_entity(&m->map, msgr_conn_peer_name(conn));
	/* Only with a key the map still accepts: a connection proven with a
	 * key whose grace ended (or removed) while it was being set up, or
	 * that is still draining before its close, gets nothing. */
	if (k && (!map_key_id_valid(k, msgr_conn_key_id(conn), NULL) ||
		  map_caps_parse(k->caps, caps, NULL, 0)))
		memset(caps, 0, sizeof(*caps));
}

/* Whether CONN's peer may read the map ('r') or change it ('w'). An OSD
 * may only change its own entry, by booting (checked by caller). */
static bool peer_may(const struct mon *m, const struct msgr_conn *conn, char perm)
{
	struct map_caps caps;
	peer_caps(m, conn, &caps);
	return map_caps_mon(&caps, perm);
}

/* Opens SK, one of K's sealed secrets, with the monitors' key into
 * SECRET: 0, or -EBADMSG. */
static int open_map_key(const struct mon *m, const struct map_key *k,
			const struct map_key_secret *sk, uint8_t secret[KEYRING_KEY_LEN])
{
	char purpose[MAP_KEY_PURPOSE_MAX];
	return auth_open(m->map_keys_key, map_key_purpose(k->entity, sk->id, purpose), sk->sealed,
			 sizeof(sk->sealed), secret);
}

/* A client key of the map, opened with the monitors' key: the current
 * secret, or the previous one during a rotation's grace. */
static int find_map_key(void *ctx, const char *entity, const uint8_t id[8], uint8_t key[32])
{
	struct mon *m = ctx;
	const struct map_key *k = map_key_by_entity(&m->map, entity);
	bool old;
	if (!k)
		return -ENOENT;
	if (!map_key_id_valid(k, id, &old))
		return -EKEYREJECTED;
	return open_map_key(m, k, old ? &k->old : &k->cur, key) ? -EKEYREJECTED : 0;
}

/* A client whose key was removed, or proven with a secret whose grace
 * ended, is disconnected: its next connection is refused. */
static void close_if_key_gone(struct msgr_conn *conn, void *arg)
{
	struct mon *m = arg;
	const char *name = msgr_conn_peer_name(conn);
	if (!name[0] || msgr_conn_peer_in_keyring(conn))
		return;
	const struct map_key *k = map_key_by_entity(&m->map, name);
	if (k && map_key_id_valid(k, msgr_conn_key_id(conn), NULL))
		return;
	const char *why = k ? "the key it proved itself with was rotated away" : "its key was removed";
	LOG_INFO("closing the connection of %s (%s): %s", name, msgr_conn_peer_addr(conn), why);
	msgr_conn_close_when_sent(conn, why);
}

/* Whether OSD is the primary of A's PG in map M and A names it so. */
static bool pg_primary_is(const struct cluster_map *map, const struct map_pg_active *a, int osd)
{
	const struct map_pool *p = map_pool_by_id(map, a->pool);
	uint32_t acting[MAP_PG_ACTING_MAX];
	return osd >= 0 && p && a->pg < p->pg_num && a->primary == (uint32_t)osd &&
	       map_pg_acting(map, p, a->pg, acting, MAP_PG_ACTING_MAX) > 0 &&
	       acting[0] == (uint32_t)osd;
}

/* Locks are taken by the clients that write volumes (osd=rw suffices);
 * forcing one open needs mon=rw. A lock another client holds is taken
 * over (the holder fenced) when its lease has run out here, or when the
 * requester asks to break it; otherwise refused with who holds it. */
static int vet_lock(struct mon *m, struct msgr_conn *conn, struct map_cmd *cmd, char *err,
		    size_t len)
{
	const char *name = msgr_conn_peer_name(conn);
	bool forced = cmd->type == MAP_CMD_VOLUME_UNLOCK && cmd->flag;
	const struct map_volume *v = map_volume_by_name(&m->map, cmd->name);
	struct map_caps caps;
	peer_caps(m, conn, &caps);
	if (!map_caps_mon(&caps, 'w') && (forced || (v && !map_caps_volume_write(&m->map, &caps, v)))) {
		if (forced)
			snprintf(err, len, "%s may not force a lock open (needs mon=rw)", name);
		else
			snprintf(err, len, "%s may not lock volume '%s' (needs osd=rw on it)", name,
				 v->name);
		return -EACCES;
	}
	cmd->time_ms = wall_ms(m);
	if (cmd->type != MAP_CMD_VOLUME_LOCK || !v)
		return 0;
	uint64_t age, left = lockmon_left_ms(m->lockmon, v->lock_client, v->inode, mono_ms(m), &age);
	bool other = v->lock_client && v->lock_client != cmd->lock_client;
	if (!cmd->flag && other && !map_recently_applied(&m->map, cmd)) {
		if (left) {
			char renewed[32] = "not renewed yet";
			if (age != UINT64_MAX)
				snprintf(renewed, sizeof(renewed), "renewed %.1f s ago", age / 1000.0);
			snprintf(err, len, "volume '%s' is locked by %s (%s; lease left %.1f s)",
				 v->name, v->lock_owner, renewed, left / 1000.0);
			return -EBUSY;
		}
		LOG_INFO("volume %s: the lease of %s ran out; %s takes the lock", v->name,
			 v->lock_owner, cmd->owner);
		cmd->flag = 1;
	}
	/* The new holder's lease starts now, before its first renewal. */
	lockmon_renew(m->lockmon, cmd->lock_client, v->inode, mono_ms(m));
	return 0;
}

/* A new secret for CMD's entity (AUTH_ADD, AUTH_ROTATE): random, into
 * SECRET for the reply, and sealed under the monitors' key into CMD. */
static int make_client_key(struct mon *m, struct map_cmd *cmd,
			   uint8_t secret[KEYRING_KEY_LEN] /* out */)
{
	char purpose[MAP_KEY_PURPOSE_MAX];
	if (auth_make_nonce(secret) || auth_key_id(secret, cmd->secret.id) ||
	    !map_key_purpose(cmd->name, cmd->secret.id, purpose) ||
	    auth_seal(m->map_keys_key, purpose, secret, KEYRING_KEY_LEN, cmd->secret.sealed))
		return -EIO;
	if (cmd->type == MAP_CMD_AUTH_ROTATE)
		cmd->time_ms = wall_ms(m);
	return 0;
}

static bool is_auth_cmd(enum map_cmd_type t)
{
	return t == MAP_CMD_AUTH_ADD || t == MAP_CMD_AUTH_CAPS || t == MAP_CMD_AUTH_RM ||
	       t == MAP_CMD_AUTH_ROTATE || t == MAP_CMD_AUTH_ROTATE_END;
}

/* Keys are managed by admins only: with mon=rw alone a client could give
 * itself any caps. A new secret is made here, by the leader. */
static int vet_auth(struct mon *m, struct msgr_conn *conn, struct map_cmd *cmd,
		    uint8_t secret[KEYRING_KEY_LEN] /* out */, bool *has_secret, char *err,
		    size_t len)
{
	struct map_caps caps;
	peer_caps(m, conn, &caps);
	if (!caps.admin) {
		snprintf(err, len, "%s may not manage keys (needs admin)", msgr_conn_peer_name(conn));
		return -EACCES;
	}
	if (cmd->type == MAP_CMD_AUTH_ROTATE_END) {
		snprintf(err, len, "a rotation's grace is ended by the leader when it runs out");
		return -EPERM;
	}
	if (cmd->type != MAP_CMD_AUTH_ADD && cmd->type != MAP_CMD_AUTH_ROTATE)
		return 0;
	if (make_client_key(m, cmd, secret)) {
		snprintf(err, len, "cannot make a random key");
		return -EIO;
	}
	*has_secret = true;
	return 0;
}

/* Refuses what CONN's peer may not ask, fills in what only the leader
 * decides (the time, the reason, a new secret into SECRET), and holds a
 * flapping OSD's boot. */
static int vet_command(struct mon *m, struct msgr_conn *conn, struct map_cmd *cmd,
		       uint8_t secret[KEYRING_KEY_LEN] /* out */, bool *has_secret, char *err,
		       size_t len)
{
	int osd = peer_osd(conn);
	if (cmd->type == MAP_CMD_PG_ACTIVE && osd >= 0) {
		/* Only the PGs it is primary of in our map: the others moved on
		 * (their primaries see that in the map and peer again). */
		uint32_t k = 0;
		for (uint32_t i = 0; i < cmd->n_active; i++)
			if (pg_primary_is(&m->map, &cmd->active[i], osd)) {
				cmd->active[k] = cmd->active[i];
				cmd->prev_epoch[k++] = cmd->prev_epoch[i];
			}
		cmd->n_active = k;
	}
	bool own = cmd->type == MAP_CMD_OSD_BOOT ? (uint32_t)osd == cmd->osd
		   : cmd->type == MAP_CMD_PG_ACTIVE ? cmd->n_active > 0
						    : false;
	if (osd >= 0 && !own) {
		snprintf(err, len, "osd.%d may only boot itself and activate PGs it is primary of",
			 osd);
		return -EACCES;
	}
	if (cmd->type == MAP_CMD_OSD_FULL || cmd->type == MAP_CMD_POOL_FULL) {
		snprintf(err, len, "fullness is set by the monitors from the OSDs' reports; change "
				   "the ratios or the pool's max_bytes instead");
		return -EPERM;
	}
	if ((cmd->type == MAP_CMD_PG_ACTIVE || cmd->type == MAP_CMD_OSD_BOOT) && osd < 0 &&
	    !msgr_conn_peer_in_keyring(conn)) {
		snprintf(err, len, "%s may not record PG activations or boot OSDs: only the "
				   "cluster's own daemons do", msgr_conn_peer_name(conn));
		return -EACCES;
	}
	if (cmd->type == MAP_CMD_VOLUME_LOCK || cmd->type == MAP_CMD_VOLUME_UNLOCK)
		return vet_lock(m, conn, cmd, err, len);
	if (osd < 0 && is_auth_cmd(cmd->type))
		return vet_auth(m, conn, cmd, secret, has_secret, err, len);
	if (osd < 0 && !peer_may(m, conn, 'w')) {
		snprintf(err, len, "%s may not change the cluster map (needs mon=rw)",
			 msgr_conn_peer_name(conn));
		return -EACCES;
	}
	if (cmd->type == MAP_CMD_OSD_BOOT || cmd->type == MAP_CMD_OSD_DOWN ||
	    cmd->type == MAP_CMD_OSD_OUT) {
		cmd->time_ms = wall_ms(m);
		cmd->flag = MAP_REASON_ADMIN;
	}
	if (cmd->type == MAP_CMD_SNAP_CREATE)
		cmd->time_ms = wall_ms(m);
	if (cmd->type == MAP_CMD_OSD_BOOT && !map_recently_applied(&m->map, cmd)) {
		uint64_t hold = osdmon_boot_hold_ms(m->osdmon, &m->map, cmd->osd, cmd->time_ms);
		if (hold) {
			snprintf(err, len, "osd.%u is flapping: it stays down %llu ms more", cmd->osd,
				 (unsigned long long)hold);
			return -EBUSY;
		}
	}
	return 0;
}

static void on_command(struct mon *m, struct msgr_conn *conn, const struct msg *msg)
{
	struct map_cmd cmd;
	char err[256];
	if (map_cmd_decode(msg->payload, msg->hdr.payload_len, &cmd)) {
		send_command_reply(m, conn, msg->hdr.request_id, -EBADMSG, "malformed command");
		return;
	}
	if (raft_role(m->raft) != RAFT_LEADER) {
		send_command_reply(m, conn, msg->hdr.request_id, -EAGAIN,
				   mon_stale(m) ? "no quorum: no leader" : "not the leader");
		return;
	}
	/* A retry of something already done goes through (and is answered
	 * "already done" once committed); anything else invalid is refused
	 * here, with the reason. */
	uint8_t secret[KEYRING_KEY_LEN];
	bool has_secret = false;
	int rc = vet_command(m, conn, &cmd, secret, &has_secret, err, sizeof(err));
	if (!rc && (rc = map_check(&m->map, &cmd, err, sizeof(err))) &&
	    map_recently_applied(&m->map, &cmd))
		rc = 0;
	uint8_t key[KEYRING_KEY_LEN];
	if (!rc && cmd.type == MAP_CMD_AUTH_ADD && keyring_find(m->keyring, cmd.name, key) == 0) {
		explicit_bzero(key, sizeof(key));
		snprintf(err, sizeof(err), "%s is one of the cluster's own entities (in the "
					   "keyring): its key is managed there", cmd.name);
		rc = -EEXIST;
	}
	uint8_t buf[MAP_CMD_MAX_LEN];
	int len = rc ? 0 : map_cmd_encode(&cmd, buf, sizeof(buf));
	if (!rc && len < 0) {
		rc = len;
		snprintf(err, sizeof(err), "command too long");
	}
	if (rc) {
		explicit_bzero(secret, sizeof(secret));
		send_command_reply(m, conn, msg->hdr.request_id, rc, err);
		return;
	}
	int slot = -1;
	for (int i = 0; i < MON_PENDING_MAX && slot < 0; i++)
		if (!m->pending[i].used)
			slot = i;
	uint64_t index;
	if (slot < 0) {
		send_command_reply(m, conn, msg->hdr.request_id, -EBUSY, "too many commands in flight");
		return;
	}
	/* Registered first: a monitor alone commits and applies the entry
	 * inside raft_propose, and its answer must find the slot. */
	m->pending[slot] = (struct mon_pending){ true, raft_last_index(m->raft) + 1,
						 raft_term(m->raft), conn, msg->hdr.request_id,
						 has_secret, { 0 } };
	if (has_secret)
		memcpy(m->pending[slot].secret, secret, sizeof(secret));
	explicit_bzero(secret, sizeof(secret));
	rc = raft_propose(m->raft, buf, (size_t)len, &index);
	if (rc) {
		m->pending[slot].used = false;
		send_command_reply(m, conn, msg->hdr.request_id, -EAGAIN, "not the leader");
		return;
	}
	BASALT_ASSERT(!m->pending[slot].used || m->pending[slot].index == index);
}

/* A subscriber gets the map now when it is newer than what it has (or it
 * has none: HAVE 0), then every newer epoch as it is applied: as the
 * commands since its epoch when we hold them all, else as a full map. */
static void subscribe(struct mon *m, struct msgr_conn *conn, uint64_t have)
{
	for (int i = 0; i < MON_SUBSCRIBERS_MAX; i++) {
		if (m->subscribers[i] == conn || !m->subscribers[i]) {
			m->subscribers[i] = conn;
			m->subscriber_epoch[i] = m->map.epoch;
			break;
		}
	}
	if (!have || have < m->map.epoch)
		send_update(m, conn, have);
}

/* Beacons and failure reports: soft state, kept by every monitor so a new
 * leader knows at once who is alive. Only "osd.N" may speak for osd.N. */
static void on_osd_message(struct mon *m, struct msgr_conn *conn, const struct msg *msg)
{
	struct dec d;
	uint32_t id, target = 0;
	struct mon_osd_stats st = { 0 };
	int rc;
	if (msg->hdr.type == MON_MSG_OSD_BEACON) {
		rc = mon_osd_stats_decode(msg, &st);
		id = st.osd;
	} else {
		dec_init(&d, msg->payload, msg->hdr.payload_len);
		dec_get_le32(&d, &id);
		dec_get_le32(&d, &target);
		rc = dec_status(&d) || dec_remaining(&d) ? -EBADMSG : 0;
	}
	if (rc || id >= MAP_MAX_OSDS || peer_osd(conn) != (int)id) {
		LOG_WARN("bad OSD message from %s (%s)", msgr_conn_peer_name(conn),
			 msgr_conn_peer_addr(conn));
		mon_osd_stats_free(&st);
		return;
	}
	if (msg->hdr.type == MON_MSG_OSD_BEACON) {
		osdmon_beacon(m->osdmon, id, mono_ms(m));
		mon_osd_stats_free(&m->osd_stats[id]);
		m->osd_stats[id] = st;
	} else if (osdmon_report(m->osdmon, &m->map, id, target, mono_ms(m)) == 0) {
		LOG_DEBUG("osd.%u reports osd.%u failed", id, target);
	}
}

/* Any authenticated client may renew: it only keeps locks it holds. */
static void on_lock_renew(struct mon *m, struct msgr_conn *conn, const struct msg *msg)
{
	static uint64_t inodes[MON_RENEW_MAX];
	uint64_t client;
	uint32_t n;
	if (mon_lock_renew_decode(msg, &client, inodes, &n)) {
		LOG_WARN("bad lock renewal from %s (%s)", msgr_conn_peer_name(conn),
			 msgr_conn_peer_addr(conn));
		return;
	}
	struct map_caps caps;
	peer_caps(m, conn, &caps);
	for (uint32_t i = 0; i < n; i++) {
		/* Only the holder's own lease, by an entity that may write it. */
		const struct map_volume *v = map_volume_by_inode(&m->map, inodes[i]);
		if (v && v->lock_client == client && map_caps_volume_write(&m->map, &caps, v))
			lockmon_renew(m->lockmon, client, inodes[i], mono_ms(m));
	}
}

/* Every PG of every pool with its state as its primary last reported it
 * (DOWN when no OSD of it is up), and the usage of the up OSDs, summed
 * and one by one. */
static void send_pg_stats(struct mon *m, struct msgr_conn *conn, uint64_t req)
{
	struct mon_osd_stats sum = { 0 };
	if (m->map.n_osds && !(sum.osds = calloc(m->map.n_osds, sizeof(*sum.osds))))
		return;
	for (uint32_t i = 0; i < m->map.n_osds && i < MAP_MAX_OSDS; i++) {
		const struct mon_osd_stats *st = &m->osd_stats[i];
		if (!m->map.osds[i].exists || !m->map.osds[i].up || !st->device_bytes)
			continue;
		sum.osd++;
		sum.device_bytes += st->device_bytes;
		sum.used_bytes += st->used_bytes;
		sum.objects += st->objects;
		sum.recovered_objects += st->recovered_objects;
		sum.recovered_bytes += st->recovered_bytes;
		sum.osds[sum.n_osds] = st->usage;
		sum.osds[sum.n_osds++].osd = i;
	}
	uint32_t total = 0;
	for (uint32_t i = 0; i < m->map.n_pools; i++)
		total += m->map.pools[i].pg_num;
	if (total && !(sum.pgs = calloc(total, sizeof(*sum.pgs)))) {
		free(sum.osds);
		return;
	}
	for (uint32_t i = 0; i < m->map.n_pools; i++) {
		const struct map_pool *p = &m->map.pools[i];
		for (uint32_t pg = 0; pg < p->pg_num; pg++) {
			struct mon_pg_stat *out = &sum.pgs[sum.n_pgs++];
			*out = (struct mon_pg_stat){ .pool = p->id, .pg = pg, .state = MON_PG_DOWN };
			uint32_t acting[MAP_PG_ACTING_MAX];
			if (!map_pg_acting(&m->map, p, pg, acting, MAP_PG_ACTING_MAX))
				continue;
			out->primary = acting[0];
			out->state = 0; /* unknown until its primary reports */
			const struct mon_osd_stats *st = &m->osd_stats[acting[0]];
			for (uint32_t k = 0; k < st->n_pgs; k++) {
				if (st->pgs[k].pool == p->id && st->pgs[k].pg == pg) {
					*out = st->pgs[k];
					break;
				}
			}
		}
	}
	struct msg *r = mon_osd_stats_encode(MON_MSG_PG_STATS_REPLY, req, &sum);
	if (r)
		reply(conn, r);
	free(sum.pgs);
	free(sum.osds);
}

/* An OSD asks for the client keys, to accept their connections: every
 * secret is opened with the monitors' key and sealed again under the
 * OSD's session key, so it never crosses the network in the clear. */
static void send_keys(struct mon *m, struct msgr_conn *conn, uint64_t req)
{
	if (peer_osd(conn) < 0) {
		send_command_reply(m, conn, req, -EACCES, "only OSDs may ask for the client keys");
		return;
	}
	size_t per = 2 + MAP_NAME_MAX + 2 * (AUTH_KEY_ID_LEN + MON_KEYS_SEALED_LEN) + 1;
	struct msg *r = msg_new(MON_MSG_KEYS_REPLY, req, 8);
	if (!r || msg_alloc_data(r, (uint32_t)(4 + m->map.n_keys * per))) {
		msg_free(r);
		return;
	}
	struct enc e, d;
	enc_init(&e, r->payload, 8);
	enc_put_le64(&e, m->map.epoch);
	enc_init(&d, r->data, r->hdr.data_len);
	enc_put_le32(&d, m->map.n_keys);
	int rc = 0;
	for (uint32_t i = 0; i < m->map.n_keys && !rc; i++) {
		const struct map_key *k = &m->map.keys[i];
		enc_put_str(&d, k->entity);
		for (int old = 0; old < 2 && !rc; old++) {
			const struct map_key_secret *sk = old ? &k->old : &k->cur;
			uint8_t secret[KEYRING_KEY_LEN], sealed[MON_KEYS_SEALED_LEN];
			if (old)
				enc_put_u8(&d, k->old_until_ms != 0);
			if (old && !k->old_until_ms)
				break;
			rc = open_map_key(m, k, sk, secret);
			rc = rc ? rc : auth_seal(msgr_conn_session_key(conn), MON_KEYS_PURPOSE, secret,
						 sizeof(secret), sealed);
			explicit_bzero(secret, sizeof(secret));
			enc_put_bytes(&d, sk->id, AUTH_KEY_ID_LEN);
			enc_put_bytes(&d, sealed, sizeof(sealed));
		}
	}
	if (rc || enc_status(&d)) {
		LOG_ERROR("cannot hand the client keys to %s: %s", msgr_conn_peer_name(conn),
			  rc ? "a key does not open with the monitors' key" : "encoding");
		msg_free(r);
		return;
	}
	r->hdr.payload_len = 8;
	r->hdr.data_len = (uint32_t)d.pos;
	reply(conn, r);
}

static bool is_monitor(const struct msgr_conn *conn)
{
	return strcmp(msgr_conn_peer_name(conn), MON_ENTITY) == 0;
}

static void on_message(struct msgr_conn *conn, struct msg *msg)
{
	struct mon *m = msgr_ctx(msgr_conn_msgr(conn));
	struct dec d;
	uint64_t have = 0;
	dec_init(&d, msg->payload, msg->hdr.payload_len);
	switch (msg->hdr.type) {
	case MON_MSG_RAFT: {
		static struct raft_entry entries[4096];
		struct raft_msg rm;
		if (!is_monitor(conn) || mon_raft_decode(msg, &rm, entries, 4096)) {
			LOG_WARN("bad Raft message from %s", msgr_conn_peer_addr(conn));
			break;
		}
		raft_step(m->raft, &rm);
		break;
	}
	case MON_MSG_GET_MAP:
	case MON_MSG_SUBSCRIBE:
		if (peer_osd(conn) < 0 && !peer_may(m, conn, 'r')) {
			char why[128];
			snprintf(why, sizeof(why), "%s may not read the cluster map (needs mon=r)",
				 msgr_conn_peer_name(conn));
			send_command_reply(m, conn, msg->hdr.request_id, -EACCES, why);
		} else if (msg->hdr.type == MON_MSG_GET_MAP) {
			send_map(m, conn, msg->hdr.request_id);
		} else {
			dec_get_le64(&d, &have);
			subscribe(m, conn, have);
		}
		break;
	case MON_MSG_OSD_BEACON:
	case MON_MSG_OSD_FAILURE:
		on_osd_message(m, conn, msg);
		break;
	case MON_MSG_LOCK_RENEW:
		on_lock_renew(m, conn, msg);
		break;
	case MON_MSG_COMMAND:
		on_command(m, conn, msg);
		break;
	case MON_MSG_KEYS:
		send_keys(m, conn, msg->hdr.request_id);
		break;
	case MON_MSG_MON_STATUS:
		send_status(m, conn, msg->hdr.request_id);
		break;
	case MON_MSG_PG_STATS:
		if (peer_osd(conn) >= 0 || peer_may(m, conn, 'r'))
			send_pg_stats(m, conn, msg->hdr.request_id);
		break;
	default:
		break;
	}
	msg_free(msg);
}

static void forget_conn(struct mon *m, struct msgr_conn *conn)
{
	for (int i = 0; i < MON_PENDING_MAX; i++)
		if (m->pending[i].conn == conn)
			m->pending[i].conn = NULL;
	for (int i = 0; i < MON_SUBSCRIBERS_MAX; i++)
		if (m->subscribers[i] == conn)
			m->subscribers[i] = NULL;
}

static void on_event(struct msgr_conn *conn, enum msgr_event ev, int err)
{
	struct mon *m = msgr_ctx(msgr_conn_msgr(conn));
	(void)err;
	if (ev == MSGR_EV_CLOSED)
		forget_conn(m, conn);
}

static bool type_ok(uint16_t type, void *arg)
{
	(void)arg;
	return type >= MON_MSG_FIRST && type <= MON_MSG_LAST;
}

static const struct msgr_handler mon_handler = { .on_message = on_message,
						 .on_event = on_event,
						 .type_ok = type_ok };

/* --- life cycle ------------------------------------------------------------------------ */

/* The leader ends each rotation whose grace its clock has passed (at
 * most once a second while the command commits). */
static size_t rotations_ending(struct mon *m, struct map_cmd *cmds, size_t cap)
{
	size_t n = 0;
	uint64_t now = wall_ms(m);
	if (mono_ms(m) - m->rotate_end_ms < 1000)
		return 0;
	for (uint32_t i = 0; i < m->map.n_keys && n < cap; i++) {
		const struct map_key *k = &m->map.keys[i];
		if (!k->old_until_ms || now < k->old_until_ms)
			continue;
		cmds[n] = (struct map_cmd){ .type = MAP_CMD_AUTH_ROTATE_END, .value = k->old_until_ms };
		snprintf(cmds[n++].name, MAP_NAME_MAX, "%s", k->entity);
		m->rotate_end_ms = mono_ms(m);
		LOG_INFO("%s: the previous key's grace is over; dropping it", k->entity);
	}
	return n;
}

static void mon_tick(struct io_timer *t)
{
	struct mon *m = t->ctx;
	raft_tick(m->raft);
	if (raft_role(m->raft) == RAFT_LEADER) {
		struct map_cmd cmds[64];
		size_t n = osdmon_tick(m->osdmon, &m->map, mono_ms(m), wall_ms(m), cmds, 64);
		n += rotations_ending(m, cmds + n, 64 - n);
		if (mono_ms(m) - m->fullmon_ms >= 500) {
			m->fullmon_ms = mono_ms(m);
			n += fullmon_tick(m->fullmon, &m->map, m->osd_stats, mono_ms(m), cmds + n,
					  64 - n);
		}
		for (size_t i = 0; i < n; i++) {
			uint8_t buf[MAP_CMD_MAX_LEN];
			uint64_t index;
			int len = map_cmd_encode(&cmds[i], buf, sizeof(buf));
			if (len > 0)
				raft_propose(m->raft, buf, (size_t)len, &index);
		}
	}
	if (raft_failed(m->raft)) {
		LOG_ERROR("the monitor store failed; stopping");
		io_loop_stop(m->loop);
		return;
	}
	mon_metrics_tick(&m->metrics, io_now_ns(m->loop), &m->map, m->raft, m->n);
	io_timer_arm(m->loop, &m->tick, m->tick_ns);
}

static int mon_timing(struct cfg *cfg, const char *section, uint64_t *tick_ms,
		      unsigned *election, unsigned *heartbeat, char *why, size_t why_len)
{
	uint64_t election_ms, heartbeat_ms;
	if (cfg_get_duration_ms(cfg, section, "mon_tick", 50, 1, 1000, tick_ms) < 0 ||
	    cfg_get_duration_ms(cfg, section, "mon_election_timeout", 1000, 10, 60000,
				&election_ms) < 0 ||
	    cfg_get_duration_ms(cfg, section, "mon_heartbeat", 100, 1, 10000, &heartbeat_ms) < 0)
		return why_set(why, why_len, -EINVAL, "%s", cfg_error(cfg));
	*election = (unsigned)(election_ms / *tick_ms);
	*heartbeat = (unsigned)(heartbeat_ms / *tick_ms);
	if (*heartbeat < 1)
		*heartbeat = 1;
	if (*election <= *heartbeat)
		return why_set(why, why_len, -EINVAL,
			       "%s: mon_election_timeout must be several mon_heartbeat intervals",
			       cfg_path(cfg));
	return 0;
}

/* The failure detection settings (see osdmon.h for what each does). */
static int osd_detection(struct cfg *cfg, const char *section, struct osdmon_params *p,
			 char *why, size_t why_len)
{
	struct osdmon_params d;
	osdmon_params_default(&d);
	uint64_t hosts;
	const uint64_t day = 86400000;
	if (cfg_get_duration_ms(cfg, section, "mon_osd_beacon_grace", d.beacon_grace_ms, 100, day,
				&p->beacon_grace_ms) < 0 ||
	    cfg_get_duration_ms(cfg, section, "mon_osd_report_grace", d.report_grace_ms, 100, day,
				&p->report_grace_ms) < 0 ||
	    cfg_get_u64(cfg, section, "mon_osd_min_down_reporter_hosts", d.min_reporter_hosts, 0, 16,
			&hosts) < 0 ||
	    cfg_get_duration_ms(cfg, section, "mon_osd_down_out_interval", d.down_out_interval_ms, 0,
				30 * day, &p->down_out_interval_ms) < 0 ||
	    cfg_get_duration_ms(cfg, section, "mon_osd_flap_window", d.flap_window_ms, 0, day,
				&p->flap_window_ms) < 0 ||
	    cfg_get_duration_ms(cfg, section, "mon_osd_flap_backoff", d.flap_base_ms, 0, day,
				&p->flap_base_ms) < 0 ||
	    cfg_get_duration_ms(cfg, section, "mon_osd_flap_backoff_max", d.flap_max_ms, 0, day,
				&p->flap_max_ms) < 0)
		return why_set(why, why_len, -EINVAL, "%s", cfg_error(cfg));
	p->min_reporter_hosts = (unsigned)hosts;
	return 0;
}

/* The monitors' key for the client secrets of the map, from mon.'s. */
static int map_keys_key(struct mon *m, const char *keyring_path, char *why, size_t why_len)
{
	uint8_t key[KEYRING_KEY_LEN];
	int rc = keyring_find(m->keyring, MON_ENTITY, key);
	if (rc)
		return why_set(why, why_len, -ENOKEY, "%s has no key for %s", keyring_path,
			       MON_ENTITY);
	rc = auth_derive(key, "basalt-map-keys-v1", m->map_keys_key);
	explicit_bzero(key, sizeof(key));
	return rc ? why_set(why, why_len, rc, "cannot derive the monitors' key") : 0;
}

int mon_start(struct io_loop *loop, struct cfg *cfg, const char *name,
	      const char *keyring_path, struct mon **out, char *why, size_t why_len)
{
	struct mon *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->loop = loop;
	m->last_leader = -1;
	io_timer_init(&m->tick, mon_tick, m); /* mon_stop disarms it on every path */
	uint8_t fsid[16];
	const char *dir;
	char section[80];
	uint64_t tick_ms = 50;
	unsigned election = 20, heartbeat = 2;
	snprintf(section, sizeof(section), "mon.%s", name);
	int rc = mon_members(cfg, m->members, &m->n, why, why_len);
	if (!rc && (m->id = member_index(m->members, m->n, name)) < 0)
		rc = why_set(why, why_len, -ENOENT, "%s has no [mon.%s] section", cfg_path(cfg), name);
	if (!rc)
		rc = mon_fsid(cfg, fsid, why, why_len);
	if (!rc)
		rc = data_dir(cfg, name, &dir, why, why_len);
	if (!rc)
		rc = mon_timing(cfg, section, &tick_ms, &election, &heartbeat, why, why_len);
	struct osdmon_params op;
	uint64_t lease_ms = 15000;
	if (!rc)
		rc = osd_detection(cfg, section, &op, why, why_len);
	if (!rc && cfg_get_duration_ms(cfg, section, "mon_lock_lease", lease_ms, 1000, 3600000,
				       &lease_ms) < 0)
		rc = why_set(why, why_len, -EINVAL, "%s", cfg_error(cfg));
	if (!rc)
		rc = mon_metrics_start(&m->metrics, cfg, section, why, why_len);
	if (!rc && (!(m->lockmon = malloc(sizeof(*m->lockmon))) ||
		    !(m->osdmon = malloc(sizeof(*m->osdmon))) ||
		    !(m->fullmon = malloc(sizeof(*m->fullmon))) ||
		    !(m->incs = calloc(MON_INC_MAX, sizeof(*m->incs))) ||
		    !(m->osd_stats = calloc(MAP_MAX_OSDS, sizeof(*m->osd_stats)))))
		rc = -ENOMEM;
	if (!rc) {
		osdmon_init(m->osdmon, &op);
		fullmon_init(m->fullmon);
		lockmon_init(m->lockmon, lease_ms);
	}
	if (!rc)
		rc = keyring_load(keyring_path, &m->keyring, why, why_len);
	if (!rc)
		rc = map_keys_key(m, keyring_path, why, why_len);
	if (rc)
		goto fail;
	struct map_mon mons[MON_MAX_MEMBERS];
	for (int i = 0; i < m->n; i++) {
		snprintf(mons[i].name, sizeof(mons[i].name), "%s", m->members[i].name);
		int w = snprintf(mons[i].addr, sizeof(mons[i].addr), "%s:%u",
				 m->members[i].host, m->members[i].port);
		if (w < 0 || (size_t)w >= sizeof(mons[i].addr)) {
			rc = why_set(why, why_len, -ENAMETOOLONG,
				     "%s: mon.%s address is longer than %zu bytes", cfg_path(cfg),
				     m->members[i].name, sizeof(mons[i].addr) - 1);
			goto fail;
		}
	}
	map_init(&m->map, fsid, mons, (uint32_t)m->n);
	struct raft_boot boot;
	if ((rc = mon_store_open(dir, &m->store, &boot, why, why_len)))
		goto fail;
	struct raft_params rp = { .id = m->id, .n_nodes = m->n, .election_ticks = election,
				  .heartbeat_ticks = heartbeat, .snapshot_every = 1000,
				  .max_append = 256, .pre_vote = true };
	uint64_t seed;
	memcpy(&seed, fsid, sizeof(seed));
	rp.seed = seed ^ (uint64_t)io_random(loop);
	if ((rc = raft_create(&rp, &boot, &mon_storage, &mon_fsm, &mon_io, m, &m->raft))) {
		why_set(why, why_len, rc, "cannot start Raft from %s", dir);
		goto fail;
	}
	m->metrics.last_term = raft_term(m->raft); /* elections from here on */
	struct msgr_params mp;
	msgr_params_default(&mp);
	mp.name = MON_ENTITY;
	mp.keyring = m->keyring;
	mp.handler = &mon_handler;
	mp.ctx = m;
	mp.find_key = find_map_key;
	if ((rc = msgr_params_config(cfg, section, &mp, why, why_len)))
		goto fail;
	if ((rc = msgr_create(loop, &mp, &m->msgr)) ||
	    (rc = msgr_listen(m->msgr, m->members[m->id].host, m->members[m->id].port, NULL))) {
		why_set(why, why_len, rc, "cannot listen on %s:%u: %s", m->members[m->id].host,
			m->members[m->id].port, strerror(-rc));
		goto fail;
	}
	for (int i = 0; i < m->n; i++) {
		if (i == m->id)
			continue;
		if ((rc = msgr_connect(m->msgr, m->members[i].host, m->members[i].port, &m->peers[i]))) {
			why_set(why, why_len, rc, "cannot connect to mon.%s: %s", m->members[i].name,
				strerror(-rc));
			goto fail;
		}
	}
	m->tick_ns = IO_MS(tick_ms);
	io_timer_arm(loop, &m->tick, m->tick_ns);
	LOG_INFO("mon.%s started: %d monitors, term %llu, map epoch %llu", name, m->n,
		 (unsigned long long)raft_term(m->raft), (unsigned long long)m->map.epoch);
	*out = m;
	return 0;
fail:
	mon_stop(m);
	return rc;
}

void mon_stop(struct mon *m)
{
	if (!m)
		return;
	if (m->loop)
		io_timer_disarm(m->loop, &m->tick);
	msgr_destroy(m->msgr);
	raft_destroy(m->raft);
	mon_store_close(m->store);
	map_free(&m->map);
	keyring_free(m->keyring);
	free(m->osdmon);
	free(m->fullmon);
	free(m->lockmon);
	free(m->incs);
	for (uint32_t i = 0; m->osd_stats && i < MAP_MAX_OSDS; i++)
		mon_osd_stats_free(&m->osd_stats[i]);
	free(m->osd_stats);
	mon_metrics_stop(&m->metrics);
	free(m);
}
