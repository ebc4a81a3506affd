/* Client keys and capabilities at the OSD (docs/ARCHITECTURE.md,
 * "Security"). The OSD accepts the connections of the map's client keys
 * with secrets it asks the monitors for (each sealed under the session key
 * of its monitor connection, so none crosses the network in the clear),
 * lets such a client send object operations only, checks each one against
 * the caps its entity has in the current map, and closes a connection
 * whose key was removed or rotated away as soon as its map says so. */
#include "osd_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/auth.h"
#include "common/enc.h"
#include "common/log.h"
#include "common/cluster/mon_proto.h"
#include "common/cluster/monsess.h"

#define KEYS_ASK_EVERY_NS IO_SEC(1)
#define CONN_CACHE 8

struct osd_key {
	char entity[MAP_NAME_MAX];
	uint8_t id[AUTH_KEY_ID_LEN], secret[KEYRING_KEY_LEN];
	bool has_old;
	uint8_t old_id[AUTH_KEY_ID_LEN], old_secret[KEYRING_KEY_LEN];
};

/* What a client connection may do, compiled from its entity's caps in the
 * map of EPOCH, with the last decisions on objects (a connection mostly
 * works on one volume: one inode lookup per epoch, not per request). */
struct osd_conn_auth {
	uint64_t epoch;
	bool has_key;
	struct map_caps caps;
	struct {
		uint32_t pool, snap;
		uint64_t inode;
		char perm;
		bool ok;
	} cache[CONN_CACHE];
	unsigned n_cache, next_cache;
};

/* A cheap fingerprint of a key list (FNV-1a over names and key ids), to
 * tell whether the keys we hold are the ones the map lists. */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

static uint64_t key_sig(uint64_t h, const char *entity, const uint8_t *id, bool has_old,
			const uint8_t *old_id)
{
	h = fnv(h, entity, strlen(entity) + 1);
	h = fnv(h, id, AUTH_KEY_ID_LEN);
	h = fnv(h, &has_old, 1);
	return has_old ? fnv(h, old_id, AUTH_KEY_ID_LEN) : h;
}

static uint64_t map_keys_sig(const struct cluster_map *m)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (uint32_t i = 0; i < m->n_keys; i++) {
		const struct map_key *k = &m->keys[i];
		h = key_sig(h, k->entity, k->cur.id, k->old_until_ms != 0, k->old.id);
	}
	return h;
}

static void ask_keys(struct osd *o, uint64_t now)
{
	struct msg *msg = msg_new(MON_MSG_KEYS, 0, 0);
	if (msg && monsess_send_one(o->mon, msg) == 0)
		o->keys_asked_ns = now;
}

void osd_auth_free(struct osd *o)
{
	if (o->keys)
		explicit_bzero(o->keys, o->n_keys * sizeof(*o->keys));
	free(o->keys);
	o->keys = NULL;
	o->n_keys = 0;
}

void osd_auth_tick(struct osd *o, uint64_t now)
{
	const struct cluster_map *m = monsess_map(o->mon);
	if (!monsess_have_map(o->mon) || o->keys_sig == map_keys_sig(m))
		return;
	if (!o->keys_asked_ns || now - o->keys_asked_ns >= KEYS_ASK_EVERY_NS)
		ask_keys(o, now);
}

/* Decodes one key of a KEYS_REPLY, opening its secrets with SESSION. */
static int decode_key(struct dec *d, const uint8_t *session, struct osd_key *k)
{
	uint8_t sealed[MON_KEYS_SEALED_LEN], has_old = 0;
	dec_get_str(d, k->entity, sizeof(k->entity));
	dec_get_bytes(d, k->id, sizeof(k->id));
	dec_get_bytes(d, sealed, sizeof(sealed));
	int rc = dec_status(d) ? -EBADMSG
			       : auth_open(session, MON_KEYS_PURPOSE, sealed, sizeof(sealed), k->secret);
	dec_get_u8(d, &has_old);
	k->has_old = has_old == 1;
	if (!rc && k->has_old) {
		dec_get_bytes(d, k->old_id, sizeof(k->old_id));
		dec_get_bytes(d, sealed, sizeof(sealed));
		rc = dec_status(d) ? -EBADMSG
				   : auth_open(session, MON_KEYS_PURPOSE, sealed, sizeof(sealed),
					       k->old_secret);
	}
	return rc || dec_status(d) || has_old > 1 ? -EBADMSG : 0;
}

void osd_auth_keys_reply(struct osd *o, struct msgr_conn *conn, struct msg *msg)
{
	struct dec d;
	uint32_t n = 0;
	dec_init(&d, msg->data, msg->hdr.data_len);
	dec_get_le32(&d, &n);
	struct osd_key *keys = n <= MAP_MAX_KEYS ? calloc(n ? n : 1, sizeof(*keys)) : NULL;
	int rc = keys ? 0 : -EBADMSG;
	uint64_t sig = 0xcbf29ce484222325ull;
	for (uint32_t i = 0; i < n && !rc; i++) {
		rc = decode_key(&d, msgr_conn_session_key(conn), &keys[i]);
		sig = key_sig(sig, keys[i].entity, keys[i].id, keys[i].has_old, keys[i].old_id);
	}
	if (rc || dec_remaining(&d)) {
		LOG_WARN("malformed client keys from %s", msgr_conn_peer_addr(conn));
		if (keys)
			explicit_bzero(keys, n * sizeof(*keys));
		free(keys);
		return;
	}
	osd_auth_free(o);
	o->keys = keys;
	o->n_keys = n;
	o->keys_sig = sig;
	o->keys_asked_ns = 0;
	LOG_DEBUG("%u client keys from the monitors", n);
}

int osd_auth_find_key(void *ctx, const char *entity, const uint8_t id[8], uint8_t key[32])
{
	struct osd *o = ctx;
	const struct map_key *mk = map_key_by_entity(monsess_map(o->mon), entity);
	for (uint32_t i = 0; mk && i < o->n_keys; i++) {
		const struct osd_key *k = &o->keys[i];
		if (strcmp(k->entity, entity))
			continue;
		/* Only what the map still accepts: our copy may be older. */
		if (!map_key_id_valid(mk, id, NULL))
			return -EKEYREJECTED;
		if (!memcmp(k->id, id, AUTH_KEY_ID_LEN))
			memcpy(key, k->secret, KEYRING_KEY_LEN);
		else if (k->has_old && !memcmp(k->old_id, id, AUTH_KEY_ID_LEN))
			memcpy(key, k->old_secret, KEYRING_KEY_LEN);
		else
			return -EKEYREJECTED; /* the map's newer key: ours comes */
		return 0;
	}
	return -ENOENT;
}

void osd_auth_conn_closed(struct osd *o, struct msgr_conn *conn)
{
	(void)o;
	free(msgr_conn_ctx(conn));
	msgr_conn_set_ctx(conn, NULL);
}

static void close_if_key_gone(struct msgr_conn *conn, void *arg)
{
	struct osd *o = arg;
	const char *name = msgr_conn_peer_name(conn);
	if (!name[0] || msgr_conn_peer_in_keyring(conn))
		return;
	const struct map_key *k = map_key_by_entity(monsess_map(o->mon), name);
	if (k && map_key_id_valid(k, msgr_conn_key_id(conn), NULL))
		return;
	LOG_INFO("closing the connection of %s (%s): %s", name, msgr_conn_peer_addr(conn),
		 k ? "the key it proved itself with was rotated away" : "its key was removed");
	osd_pg_conn_closed(o, conn);
	osd_ops_conn_closed(o, conn);
	osd_auth_conn_closed(o, conn);
	msgr_conn_close(conn);
}

void osd_auth_map(struct osd *o)
{
	msgr_for_each_conn(o->msgr, close_if_key_gone, o);
	osd_auth_tick(o, io_now_ns(o->loop));
}

bool osd_auth_msg_allowed(struct osd *o, struct msgr_conn *conn, uint16_t type)
{
	if (msgr_conn_peer_in_keyring(conn) || type == OSD_MSG_OP)
		return true;
	(void)o;
	LOG_WARN("%s (%s) sent a message of type %u, which only the cluster's own daemons may",
		 msgr_conn_peer_name(conn), msgr_conn_peer_addr(conn), type);
	return false;
}

/* The connection's compiled caps for map M (recompiled once per epoch). */
static struct osd_conn_auth *conn_auth(struct msgr_conn *conn, const struct cluster_map *m)
{
	struct osd_conn_auth *a = msgr_conn_ctx(conn);
	if (!a && (a = calloc(1, sizeof(*a))))
		msgr_conn_set_ctx(conn, a);
	if (!a || a->epoch == m->epoch)
		return a;
	const struct map_key *k = map_key_by_entity(m, msgr_conn_peer_name(conn));
	memset(a, 0, sizeof(*a));
	a->epoch = m->epoch;
	/* Only with a key the map still accepts (see mon.c's peer_caps). */
	a->has_key = k && map_key_id_valid(k, msgr_conn_key_id(conn), NULL) &&
		     map_caps_parse(k->caps, &a->caps, NULL, 0) == 0;
	return a;
}

static bool object_allowed(struct osd_conn_auth *a, const struct cluster_map *m, char perm,
			   uint32_t pool, uint64_t inode, uint32_t snap, bool *fresh)
{
	for (unsigned i = 0; i < a->n_cache; i++)
		if (a->cache[i].pool == pool && a->cache[i].inode == inode &&
		    a->cache[i].snap == snap && a->cache[i].perm == perm)
			return a->cache[i].ok;
	bool ok = map_caps_object(m, &a->caps, perm, pool, inode, snap);
	unsigned slot = a->n_cache < CONN_CACHE ? a->n_cache++ : a->next_cache++ % CONN_CACHE;
	a->cache[slot].pool = pool;
	a->cache[slot].snap = snap;
	a->cache[slot].inode = inode;
	a->cache[slot].perm = perm;
	a->cache[slot].ok = ok;
	*fresh = true;
	return ok;
}

bool osd_auth_any_grant(struct osd *o, struct msgr_conn *conn)
{
	if (msgr_conn_peer_in_keyring(conn))
		return true;
	struct osd_conn_auth *a = conn_auth(conn, monsess_map(o->mon));
	return a && a->has_key && (a->caps.admin || a->caps.n_osd > 0);
}

int osd_auth_check_op(struct osd *o, struct msgr_conn *conn, const struct osd_op *op)
{
	if (msgr_conn_peer_in_keyring(conn))
		return 0;
	if (op->type == OSD_OP_SYNC) /* waits for writes; needs some osd grant */
		return osd_auth_any_grant(o, conn) ? 0 : -EACCES;
	const struct cluster_map *m = monsess_map(o->mon);
	struct osd_conn_auth *a = conn_auth(conn, m);
	if (!a)
		return -ENOMEM;
	bool write = op->type == OSD_OP_WRITE || op->type == OSD_OP_DELETE ||
		     op->type == OSD_OP_SCRUB;
	bool pool_wide = op->type == OSD_OP_LIST || op->type == OSD_OP_SCRUB;
	bool fresh = false, ok;
	if (!a->has_key)
		ok = false;
	else if (op->type == OSD_OP_SCRUB && op->oid.index == OSD_SCRUB_ALL)
		ok = a->caps.admin;
	else
		ok = object_allowed(a, m, write ? 'w' : 'r', op->oid.pool,
				    pool_wide ? 0 : op->oid.inode, pool_wide ? 0 : op->oid.snap, &fresh);
	if (!ok && (fresh || !a->has_key)) {
		const struct map_pool *p = map_pool_by_id(m, op->oid.pool);
		LOG_WARN("refused to %s %s pool '%s' inode %" PRIu64 " for %s (%s): its caps "
			 "'%s' do not allow it",
			 write ? "change" : "read", pool_wide ? "all of" : "objects of",
			 p ? p->name : "?", op->oid.inode, msgr_conn_peer_name(conn),
			 msgr_conn_peer_addr(conn),
			 a->has_key ? map_key_by_entity(m, msgr_conn_peer_name(conn))->caps : "(no key)");
	}
	return ok ? 0 : -EACCES;
}
