/* The cluster map state machine (see map.h): command encoding, validation
 * and application, and the full-map encoding used by snapshots. */
#include "map.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ec.h"
#include "common/enc.h"
#include "common/number.h"
#include "common/object.h"
#include "common/placement.h"
#include "common/why.h"
#include "map_placement.h"

#define MAP_FORMAT 7


/* Names: 1-63 of [A-Za-z0-9_.-], not starting with '.' or '-' (so they
 * are safe in paths, on command lines, and never contain '@'). */
static bool name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= MAP_NAME_MAX || s[0] == '.' || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
			return false;
	return true;
}

/* --- commands on the wire ---------------------------------------------------- */

static void enc_put_pg_active(struct enc *e, const struct map_pg_active *a)
{
	enc_put_le32(e, a->pool);
	enc_put_le32(e, a->pg);
	enc_put_le64(e, a->epoch);
	enc_put_le32(e, a->primary);
	enc_put_le32(e, a->n);
	for (uint32_t i = 0; i < a->n && i < MAP_PG_ACTING_MAX; i++)
		enc_put_le32(e, a->osds[i]);
}

static int dec_get_pg_active(struct dec *d, struct map_pg_active *a)
{
	memset(a, 0, sizeof(*a));
	dec_get_le32(d, &a->pool);
	dec_get_le32(d, &a->pg);
	dec_get_le64(d, &a->epoch);
	dec_get_le32(d, &a->primary);
	dec_get_le32(d, &a->n);
	if (dec_status(d) || a->n > MAP_PG_ACTING_MAX)
		return -EBADMSG;
	for (uint32_t i = 0; i < a->n; i++)
		dec_get_le32(d, &a->osds[i]);
	return dec_status(d);
}

static void enc_put_key_secret(struct enc *e, const struct map_key_secret *k)
{
	enc_put_bytes(e, k->sealed, sizeof(k->sealed));
	enc_put_bytes(e, k->id, sizeof(k->id));
}

static void dec_get_key_secret(struct dec *d, struct map_key_secret *k)
{
	dec_get_bytes(d, k->sealed, sizeof(k->sealed));
	dec_get_bytes(d, k->id, sizeof(k->id));
}

int map_cmd_encode(const struct map_cmd *c, uint8_t *buf, size_t cap)
{
	struct enc e;
	enc_init(&e, buf, cap);
	enc_put_u8(&e, MAP_FORMAT);
	enc_put_le16(&e, (uint16_t)c->type);
	enc_put_le64(&e, c->client);
	enc_put_le64(&e, c->req);
	switch (c->type) {
	case MAP_CMD_OSD_BOOT:
		enc_put_le32(&e, c->osd);
		enc_put_str(&e, c->addr);
		enc_put_str(&e, c->host);
		enc_put_le64(&e, c->device_bytes);
		enc_put_le64(&e, c->time_ms);
		break;
	case MAP_CMD_OSD_DOWN:
	case MAP_CMD_OSD_OUT:
		enc_put_le32(&e, c->osd);
		enc_put_le64(&e, c->time_ms);
		enc_put_u8(&e, c->flag);
		break;
	case MAP_CMD_OSD_IN:
	case MAP_CMD_OSD_RM:
		enc_put_le32(&e, c->osd);
		break;
	case MAP_CMD_OSD_REWEIGHT:
		enc_put_le32(&e, c->osd);
		enc_put_le32(&e, c->weight);
		break;
	case MAP_CMD_POOL_CREATE:
		enc_put_str(&e, c->name);
		enc_put_u8(&e, (uint8_t)c->pool.type);
		enc_put_le32(&e, c->pool.size);
		enc_put_le32(&e, c->pool.min_size);
		enc_put_le32(&e, c->pool.ec_k);
		enc_put_le32(&e, c->pool.ec_m);
		enc_put_le32(&e, c->pool.pg_num);
		enc_put_le32(&e, c->pool.block_size);
		break;
	case MAP_CMD_POOL_RM:
	case MAP_CMD_VOLUME_RM:
		enc_put_str(&e, c->name);
		break;
	case MAP_CMD_POOL_SET:
		enc_put_str(&e, c->name);
		enc_put_str(&e, c->key);
		enc_put_le64(&e, c->value);
		break;
	case MAP_CMD_VOLUME_CREATE:
		enc_put_str(&e, c->name);
		enc_put_str(&e, c->pool_name);
		enc_put_le64(&e, c->size);
		break;
	case MAP_CMD_VOLUME_RESIZE:
		enc_put_str(&e, c->name);
		enc_put_le64(&e, c->value);
		break;
	case MAP_CMD_VOLUME_RENAME:
		enc_put_str(&e, c->name);
		enc_put_str(&e, c->new_name);
		break;
	case MAP_CMD_AUTH_ADD:
		enc_put_str(&e, c->name);
		enc_put_key_secret(&e, &c->secret);
		enc_put_str(&e, c->caps);
		break;
	case MAP_CMD_AUTH_ROTATE:
		enc_put_str(&e, c->name);
		enc_put_key_secret(&e, &c->secret);
		enc_put_le64(&e, c->value);
		enc_put_le64(&e, c->time_ms);
		break;
	case MAP_CMD_AUTH_ROTATE_END:
		enc_put_str(&e, c->name);
		enc_put_le64(&e, c->value);
		break;
	case MAP_CMD_AUTH_CAPS:
		enc_put_str(&e, c->name);
		enc_put_str(&e, c->caps);
		break;
	case MAP_CMD_AUTH_RM:
		enc_put_str(&e, c->name);
		break;
	case MAP_CMD_SNAP_CREATE:
	case MAP_CMD_SNAP_RM:
		enc_put_str(&e, c->name);
		enc_put_str(&e, c->snap);
		enc_put_le64(&e, c->time_ms);
		enc_put_le32(&e, c->n_group);
		for (uint32_t i = 0; i < c->n_group && i < MAP_SNAP_GROUP_MAX - 1; i++) {
			enc_put_str(&e, c->group[i].volume);
			enc_put_str(&e, c->group[i].snap);
		}
		break;
	case MAP_CMD_VOLUME_CLONE:
		enc_put_str(&e, c->name);
		enc_put_str(&e, c->src);
		enc_put_str(&e, c->snap);
		enc_put_str(&e, c->pool_name);
		break;
	case MAP_CMD_SNAP_PROTECT:
		enc_put_str(&e, c->name);
		enc_put_str(&e, c->snap);
		enc_put_u8(&e, c->flag);
		break;
	case MAP_CMD_VOLUME_FLATTEN:
		enc_put_str(&e, c->name);
		break;
	case MAP_CMD_VOLUME_LOCK:
	case MAP_CMD_VOLUME_UNLOCK:
		enc_put_str(&e, c->name);
		enc_put_le64(&e, c->lock_client);
		enc_put_str(&e, c->owner);
		enc_put_u8(&e, c->flag);
		enc_put_le64(&e, c->time_ms);
		break;
	case MAP_CMD_FENCE_RM:
		enc_put_le64(&e, c->lock_client);
		break;
	case MAP_CMD_OSD_FULL:
		enc_put_le32(&e, c->osd);
		enc_put_u8(&e, c->flag);
		break;
	case MAP_CMD_POOL_FULL:
		enc_put_str(&e, c->name);
		enc_put_u8(&e, c->flag);
		break;
	case MAP_CMD_SET_RATIO:
		enc_put_str(&e, c->key);
		enc_put_le64(&e, c->value);
		break;
	case MAP_CMD_PG_ACTIVE:
		enc_put_le32(&e, c->n_active);
		for (uint32_t i = 0; i < c->n_active && i < MAP_CMD_ACTIVE_MAX; i++) {
			enc_put_pg_active(&e, &c->active[i]);
			enc_put_le64(&e, c->prev_epoch[i]);
		}
		break;
	default:
		return -EINVAL;
	}
	return enc_status(&e) ? -EMSGSIZE : (int)e.pos;
}

int map_cmd_decode(const uint8_t *buf, size_t len, struct map_cmd *c)
{
	struct dec d;
	uint8_t format, type8;
	uint16_t type;
	memset(c, 0, sizeof(*c));
	dec_init(&d, buf, len);
	dec_get_u8(&d, &format);
	dec_get_le16(&d, &type);
	dec_get_le64(&d, &c->client);
	dec_get_le64(&d, &c->req);
	if (format != MAP_FORMAT)
		return -EBADMSG;
	c->type = (enum map_cmd_type)type;
	switch (c->type) {
	case MAP_CMD_OSD_BOOT:
		dec_get_le32(&d, &c->osd);
		dec_get_str(&d, c->addr, sizeof(c->addr));
		dec_get_str(&d, c->host, sizeof(c->host));
		dec_get_le64(&d, &c->device_bytes);
		dec_get_le64(&d, &c->time_ms);
		break;
	case MAP_CMD_OSD_DOWN:
	case MAP_CMD_OSD_OUT:
		dec_get_le32(&d, &c->osd);
		dec_get_le64(&d, &c->time_ms);
		dec_get_u8(&d, &c->flag);
		break;
	case MAP_CMD_OSD_IN:
	case MAP_CMD_OSD_RM:
		dec_get_le32(&d, &c->osd);
		break;
	case MAP_CMD_OSD_REWEIGHT:
		dec_get_le32(&d, &c->osd);
		dec_get_le32(&d, &c->weight);
		break;
	case MAP_CMD_POOL_CREATE:
		dec_get_str(&d, c->name, sizeof(c->name));
		dec_get_u8(&d, &type8);
		c->pool.type = (enum map_pool_type)type8;
		dec_get_le32(&d, &c->pool.size);
		dec_get_le32(&d, &c->pool.min_size);
		dec_get_le32(&d, &c->pool.ec_k);
		dec_get_le32(&d, &c->pool.ec_m);
		dec_get_le32(&d, &c->pool.pg_num);
		dec_get_le32(&d, &c->pool.block_size);
		break;
	case MAP_CMD_POOL_RM:
	case MAP_CMD_VOLUME_RM:
		dec_get_str(&d, c->name, sizeof(c->name));
		break;
	case MAP_CMD_POOL_SET:
		dec_get_str(&d, c->name, sizeof(c->name));
		dec_get_str(&d, c->key, sizeof(c->key));
		dec_get_le64(&d, &c->value);
		break;
	case MAP_CMD_VOLUME_CREATE:
		dec_get_str(&d, c->name, sizeof(c->name));
		dec_get_str(&d, c->pool_name, sizeof(c->pool_name));
		dec_get_le64(&d, &c->size);
		break;
	case MAP_CMD_VOLUME_RESIZE:
		dec_get_str(&d, c->name, sizeof(c->name));
		dec_get_le64(&d, &c->value);
		break;
	case MAP_CMD_VOLUME_RENAME:
		dec_get_str(&d, c->name, sizeof(c->name));
		dec_get_str(&d, c->new_name, sizeof(c->new_name));
		break;
	case MAP_CMD_AUTH_ADD:
		dec_get_str(&d, c->name, sizeof(c->name));
		dec_get_key_secret(&d, &c->secret);
		dec_get_str(&d, c->caps, sizeof(c->caps));
		break;
	case MAP_CMD_AUTH_ROTATE:
		dec_get_str(&d, c->name, sizeof(c->name));
		dec_get_key_secret(&d, &c->secret);
		dec_get_le64(&d, &c->value);
		dec_get_le64(&d, &c->time_ms);
		break;
	case MAP_CMD_AUTH_ROTATE_END:
		dec_get_str(&d, c->name, sizeof(c->name));
		dec_get_le64(&d, &c->value);
		break;
	case MAP_CMD_AUTH_CAPS:
		dec_get_str(&d, c->name, sizeof(c->name));
		dec_get_str(&d, c->caps, sizeof(c->caps));
		break;
	case MAP_CMD_AUTH_RM:
		dec_get_str(&d, c->name, sizeof(c->name));
		break;
	case MAP_CMD_SNAP_CREATE:
	case MAP_CMD_SNAP_RM:
		dec_get_str(&d, c->name, sizeof(c->name));
		dec_get_str(&d, c->snap, sizeof(c->snap));
		dec_get_le64(&d, &c->time_ms);
		dec_get_le32(&d, &c->n_group);
		if (c->n_group > MAP_SNAP_GROUP_MAX - 1)
			return -EBADMSG;
		for (uint32_t i = 0; i < c->n_group; i++) {
			dec_get_str(&d, c->group[i].volume, sizeof(c->group[i].volume));
			dec_get_str(&d, c->group[i].snap, sizeof(c->group[i].snap));
		}
		break;
	case MAP_CMD_VOLUME_CLONE:
		dec_get_str(&d, c->name, sizeof(c->name));
		dec_get_str(&d, c->src, sizeof(c->src));
		dec_get_str(&d, c->snap, sizeof(c->snap));
		dec_get_str(&d, c->pool_name, sizeof(c->pool_name));
		break;
	case MAP_CMD_SNAP_PROTECT:
		dec_get_str(&d, c->name, sizeof(c->name));
		dec_get_str(&d, c->snap, sizeof(c->snap));
		dec_get_u8(&d, &c->flag);
		break;
	case MAP_CMD_VOLUME_FLATTEN:
		dec_get_str(&d, c->name, sizeof(c->name));
		break;
	case MAP_CMD_VOLUME_LOCK:
	case MAP_CMD_VOLUME_UNLOCK:
		dec_get_str(&d, c->name, sizeof(c->name));
		dec_get_le64(&d, &c->lock_client);
		dec_get_str(&d, c->owner, sizeof(c->owner));
		dec_get_u8(&d, &c->flag);
		dec_get_le64(&d, &c->time_ms);
		break;
	case MAP_CMD_FENCE_RM:
		dec_get_le64(&d, &c->lock_client);
		break;
	case MAP_CMD_OSD_FULL:
		dec_get_le32(&d, &c->osd);
		dec_get_u8(&d, &c->flag);
		break;
	case MAP_CMD_POOL_FULL:
		dec_get_str(&d, c->name, sizeof(c->name));
		dec_get_u8(&d, &c->flag);
		break;
	case MAP_CMD_SET_RATIO:
		dec_get_str(&d, c->key, sizeof(c->key));
		dec_get_le64(&d, &c->value);
		break;
	case MAP_CMD_PG_ACTIVE:
		dec_get_le32(&d, &c->n_active);
		if (dec_status(&d) || c->n_active < 1 || c->n_active > MAP_CMD_ACTIVE_MAX)
			return -EBADMSG;
		for (uint32_t i = 0; i < c->n_active; i++) {
			if (dec_get_pg_active(&d, &c->active[i]))
				return -EBADMSG;
			dec_get_le64(&d, &c->prev_epoch[i]);
		}
		break;
	default:
		return -EBADMSG;
	}
	return dec_status(&d) || dec_remaining(&d) ? -EBADMSG : 0;
}

/* --- lookups ------------------------------------------------------------------ */

static int pool_index(const struct cluster_map *m, const char *name)
{
	for (uint32_t i = 0; i < m->n_pools; i++)
		if (strcmp(m->pools[i].name, name) == 0)
			return (int)i;
	return -1;
}

static int volume_index(const struct cluster_map *m, const char *name)
{
	for (uint32_t i = 0; i < m->n_volumes; i++)
		if (strcmp(m->volumes[i].name, name) == 0)
			return (int)i;
	return -1;
}

static int key_index(const struct cluster_map *m, const char *entity)
{
	for (uint32_t i = 0; i < m->n_keys; i++)
		if (strcmp(m->keys[i].entity, entity) == 0)
			return (int)i;
	return -1;
}

const struct map_key *map_key_by_entity(const struct cluster_map *m, const char *entity)
{
	int i = key_index(m, entity);
	return i < 0 ? NULL : &m->keys[i];
}

/* One token of a caps text: "admin", SERVICE=PERM, pool=GLOB or
 * volume=GLOB, applied to OUT; -EINVAL with the reason otherwise. */
static int caps_token(const char *tok, size_t n, struct map_caps *out, char *err, size_t len)
{
	const char *eq = memchr(tok, '=', n);
	size_t key = eq ? (size_t)(eq - tok) : n, vlen = eq ? n - key - 1 : 0;
	const char *v = eq ? eq + 1 : "";
	bool r = vlen == 1 && v[0] == 'r', rw = vlen == 2 && v[0] == 'r' && v[1] == 'w';
	struct map_caps_grant *g = out->n_osd ? &out->osd[out->n_osd - 1] : NULL;
	if (!eq && n == 5 && !strncmp(tok, "admin", 5)) {
		out->admin = true;
	} else if (key == 3 && !strncmp(tok, "mon", 3) && (r || rw)) {
		out->mon = rw ? 'w' : 'r';
	} else if (key == 3 && !strncmp(tok, "osd", 3) && (r || rw)) {
		if (out->n_osd == MAP_CAPS_GRANTS_MAX)
			return why_set(err, len, -EINVAL, "more than %d osd grants",
				       MAP_CAPS_GRANTS_MAX);
		out->osd[out->n_osd++] = (struct map_caps_grant){ .write = rw };
	} else if ((key == 4 && !strncmp(tok, "pool", 4)) ||
		   (key == 6 && !strncmp(tok, "volume", 6))) {
		char *dst = key == 4 ? (g ? g->pool : NULL) : (g ? g->volume : NULL);
		if (!dst)
			return why_set(err, len, -EINVAL, "'%.*s' must follow an osd grant (osd=r or osd=rw)",
				       (int)n, tok);
		if (!vlen || vlen >= MAP_NAME_MAX || *dst)
			return why_set(err, len, -EINVAL, "bad capability '%.*s': %s", (int)n, tok,
				       *dst ? "given twice for one grant" : "a name or pattern of 1-63 characters");
		memcpy(dst, v, vlen);
		dst[vlen] = 0;
	} else {
		return why_set(err, len, -EINVAL,
			       "bad capability '%.*s': expected admin, mon=r, mon=rw, osd=r or osd=rw, "
			       "the last optionally followed by pool=GLOB and volume=GLOB",
			       (int)n, tok);
	}
	return 0;
}

int map_caps_parse(const char *caps, struct map_caps *out, char *err, size_t len)
{
	memset(out, 0, sizeof(*out));
	for (const char *p = caps; *p;) {
		while (*p == ' ')
			p++;
		size_t n = strcspn(p, " ");
		int rc = n ? caps_token(p, n, out, err, len) : 0;
		if (rc)
			return rc;
		p += n;
	}
	return 0;
}

int map_caps_check(const char *caps, char *err, size_t len)
{
	struct map_caps c;
	return map_caps_parse(caps, &c, err, len);
}

bool map_caps_mon(const struct map_caps *c, char perm)
{
	return c->admin || c->mon == 'w' || (perm == 'r' && c->mon == 'r');
}

/* Whether G covers volume V of pool P for PERM, V's own objects. */
static bool grant_covers(const struct map_caps_grant *g, char perm, const struct map_pool *p,
			 const struct map_volume *v)
{
	if ((perm == 'w' && !g->write) || (g->pool[0] && fnmatch(g->pool, p->name, 0)))
		return false;
	return !g->volume[0] || (v && !fnmatch(g->volume, v->name, 0));
}

/* Whether G covers reading snapshot SNAP of INODE through a clone: INODE
 * is the parent (or its parent...) of a covered clone, in whatever pool,
 * and SNAP the snapshot that clone reads — not the parent's live data nor
 * its other snapshots. */
static bool grant_reads_through(const struct cluster_map *m, const struct map_caps_grant *g,
				uint64_t inode, uint32_t snap)
{
	for (uint32_t i = 0; i < m->n_volumes; i++) {
		const struct map_volume *v = &m->volumes[i];
		const struct map_pool *p = map_pool_by_id(m, v->pool);
		if (!v->parent_inode || !p || !grant_covers(g, 'r', p, v))
			continue;
		for (uint32_t hop = 0; v && v->parent_inode && hop < 64; hop++) {
			if (v->parent_inode == inode && v->parent_snap == snap)
				return true;
			v = map_volume_by_inode(m, v->parent_inode);
		}
	}
	return false;
}

bool map_caps_object(const struct cluster_map *m, const struct map_caps *c, char perm,
		     uint32_t pool_id, uint64_t inode, uint32_t snap)
{
	if (c->admin)
		return true;
	const struct map_pool *p = map_pool_by_id(m, pool_id);
	const struct map_volume *v = inode ? map_volume_by_inode(m, inode) : NULL;
	if (!p || (v && v->pool != pool_id))
		return false;
	for (uint32_t i = 0; i < c->n_osd; i++) {
		const struct map_caps_grant *g = &c->osd[i];
		if (grant_covers(g, perm, p, inode ? v : NULL))
			return true;
		if (perm == 'r' && inode && snap && grant_reads_through(m, g, inode, snap))
			return true;
	}
	return false;
}

bool map_caps_volume_write(const struct cluster_map *m, const struct map_caps *c,
			   const struct map_volume *v)
{
	const struct map_pool *p = map_pool_by_id(m, v->pool);
	for (uint32_t i = 0; p && !c->admin && i < c->n_osd; i++)
		if (grant_covers(&c->osd[i], 'w', p, v))
			return true;
	return c->admin;
}

const char *map_key_purpose(const char *entity, const uint8_t id[AUTH_KEY_ID_LEN],
			    char out[MAP_KEY_PURPOSE_MAX])
{
	char hex[2 * AUTH_KEY_ID_LEN + 1];
	number_hex_encode(id, AUTH_KEY_ID_LEN, hex);
	snprintf(out, MAP_KEY_PURPOSE_MAX, "basalt-map-key/%s/%s", entity, hex);
	return out;
}

bool map_key_id_valid(const struct map_key *k, const uint8_t id[AUTH_KEY_ID_LEN], bool *old)
{
	bool is_old = k->old_until_ms && !memcmp(k->old.id, id, AUTH_KEY_ID_LEN);
	if (old)
		*old = is_old;
	return !memcmp(k->cur.id, id, AUTH_KEY_ID_LEN) || is_old;
}

const struct map_pool *map_pool_by_name(const struct cluster_map *m, const char *name)
{
	int i = pool_index(m, name);
	return i < 0 ? NULL : &m->pools[i];
}

const struct map_volume *map_volume_by_name(const struct cluster_map *m, const char *name)
{
	int i = volume_index(m, name);
	return i < 0 ? NULL : &m->volumes[i];
}

static const struct map_osd *osd_get(const struct cluster_map *m, uint32_t id)
{
	return id < m->n_osds && m->osds[id].exists ? &m->osds[id] : NULL;
}

/* Where (POOL, PG) is or would go in the sorted records. */
static uint32_t pg_active_slot(const struct cluster_map *m, uint32_t pool, uint32_t pg)
{
	uint32_t lo = 0, hi = m->n_pg_active;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		const struct map_pg_active *a = &m->pg_active[mid];
		if (a->pool < pool || (a->pool == pool && a->pg < pg))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

const struct map_pg_active *map_pg_active_get(const struct cluster_map *m, uint32_t pool,
					      uint32_t pg)
{
	uint32_t i = pg_active_slot(m, pool, pg);
	return i < m->n_pg_active && m->pg_active[i].pool == pool && m->pg_active[i].pg == pg
		       ? &m->pg_active[i]
		       : NULL;
}

/* Sets the record of A's PG, keeping the order. */
static int pg_active_put(struct cluster_map *m, const struct map_pg_active *a)
{
	uint32_t i = pg_active_slot(m, a->pool, a->pg);
	if (i < m->n_pg_active && m->pg_active[i].pool == a->pool && m->pg_active[i].pg == a->pg) {
		m->pg_active[i] = *a;
		return 0;
	}
	struct map_pg_active *n = realloc(m->pg_active, (m->n_pg_active + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	m->pg_active = n;
	memmove(&n[i + 1], &n[i], (m->n_pg_active - i) * sizeof(*n));
	n[i] = *a;
	m->n_pg_active++;
	return 0;
}

uint32_t map_pool_chunk_bytes(const struct map_pool *p)
{
	return p->type == MAP_POOL_EC && p->ec_k ? p->block_size / p->ec_k : p->block_size;
}

uint64_t map_pool_stored_bytes(const struct map_pool *p, uint64_t held_bytes)
{
	return p->type == MAP_POOL_EC ? held_bytes * p->ec_k : held_bytes;
}

double map_pool_raw_per_byte(const struct map_pool *p)
{
	if (p->type == MAP_POOL_EC && p->ec_k)
		return (double)(p->ec_k + p->ec_m) / p->ec_k;
	return p->size ? p->size : 1;
}

uint64_t map_pool_raw_bytes(const struct map_pool *p, uint64_t stored)
{
	return (uint64_t)((double)stored * map_pool_raw_per_byte(p));
}

const struct map_pool *map_pool_by_id(const struct cluster_map *m, uint32_t id)
{
	for (uint32_t i = 0; i < m->n_pools; i++)
		if (m->pools[i].id == id)
			return &m->pools[i];
	return NULL;
}

size_t map_pg_osds_compute(const struct cluster_map *m, const struct map_pool *p, uint32_t pg,
			   uint32_t *out, size_t cap)
{
	struct placement_osd *cand = malloc((m->n_osds ? m->n_osds : 1) * sizeof(*cand));
	if (!cand)
		return 0;
	size_t n = map_placement_candidates(m, cand);
	size_t want = p->size < cap ? p->size : cap;
	size_t got = placement_pg(cand, n, p->id, pg, want, true, out);
	free(cand);
	return got;
}

size_t map_pg_osds(const struct cluster_map *m, const struct map_pool *p, uint32_t pg,
		   uint32_t *out, size_t cap)
{
	if (!m->placement)
		return map_pg_osds_compute(m, p, pg, out, cap);
	return map_placement_pg_osds(m->placement, m, p, pg, out, cap);
}

void map_placement_forget(const struct cluster_map *m)
{
	map_placement_changed(m->placement);
}

size_t map_pg_acting_shards(const struct cluster_map *m, const struct map_pool *p,
			    uint32_t pg, uint32_t *out, uint8_t *shards, size_t cap)
{
	size_t n = map_pg_osds(m, p, pg, out, cap), k = 0;
	for (size_t i = 0; i < n; i++)
		if (m->osds[out[i]].up) {
			if (shards)
				shards[k] = (uint8_t)i;
			out[k++] = out[i];
		}
	return k;
}

size_t map_pg_acting(const struct cluster_map *m, const struct map_pool *p, uint32_t pg,
		     uint32_t *out, size_t cap)
{
	return map_pg_acting_shards(m, p, pg, out, NULL, cap);
}

void map_osd_counts(const struct cluster_map *m, uint32_t *total, uint32_t *up,
		    uint32_t *in)
{
	*total = *up = *in = 0;
	for (uint32_t i = 0; i < m->n_osds; i++) {
		if (!m->osds[i].exists)
			continue;
		(*total)++;
		*up += m->osds[i].up;
		*in += m->osds[i].in;
	}
}

/* --- validation ----------------------------------------------------------------- */

/* An EC pool's min_size V: K acknowledges writes one more failure would
 * lose, allowed but never the default (K + 1). */
static int check_ec_min_size(const struct map_pool *p, uint64_t v, char *err, size_t len)
{
	if (v < p->ec_k || v > p->ec_k + p->ec_m)
		return why_set(err, len, -EINVAL,
			       "an erasure-coded pool's min_size must be k (%u) to k+m (%u), "
			       "not %" PRIu64, p->ec_k, p->ec_k + p->ec_m, v);
	return 0;
}

static int check_pool_params(const struct map_pool *p, char *err, size_t len)
{
	if (p->type == MAP_POOL_REPLICATED) {
		if (p->size < 1 || p->size > 10)
			return why_set(err, len, -EINVAL, "size must be 1 to 10 copies, not %u", p->size);
		if (p->min_size < 1 || p->min_size > p->size)
			return why_set(err, len, -EINVAL, "min_size must be 1 to size (%u), not %u",
				    p->size, p->min_size);
	} else if (p->type == MAP_POOL_EC) {
		if (p->ec_k < 1 || p->ec_k > EC_MAX_K || p->ec_m < 1 || p->ec_m > EC_MAX_M)
			return why_set(err, len, -EINVAL,
				    "erasure coding needs k of 1 to %u and m of 1 to %u, not %u+%u",
				    EC_MAX_K, EC_MAX_M, p->ec_k, p->ec_m);
		if (p->ec_k + p->ec_m > MAP_PG_ACTING_MAX)
			return why_set(err, len, -EINVAL,
				    "k+m must be at most %u (the OSDs a PG can have), not %u+%u",
				    MAP_PG_ACTING_MAX, p->ec_k, p->ec_m);
		/* (0 when a pool is created: k + 1.) */
		if (p->min_size && check_ec_min_size(p, p->min_size, err, len))
			return -EINVAL;
	} else {
		return why_set(err, len, -EINVAL, "unknown pool type %d", p->type);
	}
	if (p->pg_num < 1 || p->pg_num > 65536)
		return why_set(err, len, -EINVAL, "pg_num must be 1 to 65536, not %u", p->pg_num);
	/* An EC pool's object is K chunks, each one block of an OSD's store
	 * (common/ec_stripe.h): the chunk has the store's sizes. */
	uint32_t chunk = map_pool_chunk_bytes(p);
	if (p->type == MAP_POOL_EC && (p->block_size % p->ec_k || chunk < (64u << 10) ||
				       chunk > (1u << 20) || (chunk & (chunk - 1))))
		return why_set(err, len, -EINVAL,
			    "an erasure-coded block_size must be k=%u chunks of a power of two from "
			    "64K to 1M (%uK for 128K chunks), not %u",
			    p->ec_k, 128u * p->ec_k, p->block_size);
	if (p->type != MAP_POOL_EC && (chunk < (64u << 10) || chunk > (1u << 20) ||
				       (chunk & (chunk - 1))))
		return why_set(err, len, -EINVAL,
			    "block_size must be a power of two from 64K to 1M, not %u",
			    p->block_size);
	return 0;
}

static int check_osd_cmd(const struct cluster_map *m, const struct map_cmd *c, char *err,
			 size_t len)
{
	const struct map_osd *o = osd_get(m, c->osd);
	if (c->type == MAP_CMD_OSD_BOOT) {
		if (c->osd >= MAP_MAX_OSDS)
			return why_set(err, len, -EINVAL, "osd ids go up to %u", MAP_MAX_OSDS - 1);
		if (!c->addr[0] || !name_ok(c->host))
			return why_set(err, len, -EINVAL, "osd.%u boots without an address or a valid host",
				    c->osd);
		return 0;
	}
	if (!o)
		return why_set(err, len, -ENOENT, "osd.%u does not exist", c->osd);
	switch (c->type) {
	case MAP_CMD_OSD_DOWN:
		return o->up ? 0 : why_set(err, len, -EALREADY, "osd.%u is already down", c->osd);
	case MAP_CMD_OSD_OUT:
		if (!o->in)
			return why_set(err, len, -EALREADY, "osd.%u is already out", c->osd);
		if (c->flag == MAP_REASON_DOWN_OUT && o->up)
			return why_set(err, len, -EALREADY, "osd.%u came back up", c->osd);
		return 0;
	case MAP_CMD_OSD_IN:
		return !o->in ? 0 : why_set(err, len, -EALREADY, "osd.%u is already in", c->osd);
	case MAP_CMD_OSD_RM:
		if (o->up)
			return why_set(err, len, -EBUSY, "osd.%u is up: stop it before removing it",
				       c->osd);
		/* A recorded member may hold the only copy of a PG's newest
		 * writes: its PG must recover without it first. */
		for (uint32_t i = 0; i < m->n_pg_active; i++)
			for (uint32_t k = 0; k < m->pg_active[i].n; k++)
				if (m->pg_active[i].osds[k] == c->osd)
					return why_set(err, len, -EBUSY,
						       "osd.%u may hold the newest data of pg %u.%x: mark it "
						       "out and wait until its PGs are clean without it",
						       c->osd, m->pg_active[i].pool, m->pg_active[i].pg);
		return 0;
	case MAP_CMD_OSD_REWEIGHT:
		return c->weight <= 0x7fffffffu ? 0 : why_set(err, len, -EINVAL, "weight out of range");
	case MAP_CMD_OSD_FULL:
		if (c->flag > MAP_FULL_FULL)
			return why_set(err, len, -EINVAL, "unknown fullness %u", c->flag);
		return o->full != c->flag ? 0
					  : why_set(err, len, -EALREADY, "osd.%u is already %s", c->osd,
						    map_full_state_name(c->flag));
	default:
		return -EINVAL;
	}
}

static const char *const ratio_names[] = { "nearfull", "backfillfull", "full" };

/* The three ratios as they would be after CMD (a SET_RATIO). */
static int check_ratio(const struct cluster_map *m, const struct map_cmd *c, char *err,
		       size_t len)
{
	uint32_t r[3] = { m->nearfull_ratio, m->backfillfull_ratio, m->full_ratio };
	int k = -1;
	for (int i = 0; i < 3; i++)
		if (strcmp(c->key, ratio_names[i]) == 0)
			k = i;
	if (k < 0)
		return why_set(err, len, -EINVAL, "'%s' is not one of nearfull, backfillfull, full",
			       c->key);
	if (c->value < 1 || c->value > MAP_RATIO_ONE)
		return why_set(err, len, -EINVAL, "a ratio is above 0 and at most 1");
	r[k] = (uint32_t)c->value;
	if (r[0] > r[1] || r[1] > r[2])
		return why_set(err, len, -EINVAL,
			       "the ratios must keep nearfull <= backfillfull <= full (they would be "
			       "%.4g, %.4g, %.4g)",
			       r[0] / 1e4, r[1] / 1e4, r[2] / 1e4);
	return 0;
}

static int check_pool_cmd(const struct cluster_map *m, const struct map_cmd *c, char *err,
			  size_t len)
{
	int pi = pool_index(m, c->name);
	if (c->type == MAP_CMD_POOL_CREATE) {
		if (!name_ok(c->name))
			return why_set(err, len, -EINVAL, "'%s' is not a valid pool name (1-63 of A-Z a-z 0-9 _ . -)",
				    c->name);
		if (pi >= 0)
			return why_set(err, len, -EEXIST, "pool '%s' already exists", c->name);
		if (m->n_pools >= MAP_MAX_POOLS)
			return why_set(err, len, -ENOSPC, "too many pools (%u)", MAP_MAX_POOLS);
		if (m->next_pool_id >= OBJECT_POOL_MAX) /* object ids carry 24 bits of it */
			return why_set(err, len, -ENOSPC, "every pool id (up to %u) was given out",
				    OBJECT_POOL_MAX);
		return check_pool_params(&c->pool, err, len);
	}
	if (pi < 0)
		return why_set(err, len, -ENOENT, "pool '%s' does not exist", c->name);
	const struct map_pool *p = &m->pools[pi];
	if (c->type == MAP_CMD_POOL_RM) {
		for (uint32_t i = 0; i < m->n_volumes; i++)
			if (m->volumes[i].pool == p->id)
				return why_set(err, len, -EBUSY, "pool '%s' still holds volume '%s'",
					    c->name, m->volumes[i].name);
		return 0;
	}
	if (c->type == MAP_CMD_POOL_FULL)
		return (bool)c->flag != p->quota_full
			       ? 0
			       : why_set(err, len, -EALREADY, "pool '%s' is already %s", c->name,
					 c->flag ? "full" : "below its quota");
	if (strcmp(c->key, "max_bytes") == 0)
		return 0; /* any quota; 0 for none */
	struct map_pool q = *p;
	if (strcmp(c->key, "size") == 0 && p->type == MAP_POOL_REPLICATED)
		q.size = (uint32_t)c->value;
	else if (strcmp(c->key, "min_size") == 0 && p->type == MAP_POOL_REPLICATED)
		q.min_size = (uint32_t)c->value;
	else if (strcmp(c->key, "min_size") == 0) {
		if (check_ec_min_size(p, c->value, err, len))
			return -EINVAL;
		q.min_size = (uint32_t)c->value;
	}
	else if (strcmp(c->key, "pg_num") == 0) {
		if (c->value < p->pg_num || c->value % p->pg_num)
			return why_set(err, len, -EINVAL,
				       "pg_num can only grow, by a whole multiple (now %u), so each "
				       "PG splits into whole PGs", p->pg_num);
		q.pg_num = (uint32_t)c->value;
	} else
		return why_set(err, len, -EINVAL,
			       "pool setting '%s' is not one of size, min_size, pg_num, max_bytes%s",
			    c->key, p->type == MAP_POOL_EC ? " (size is fixed by k+m)" : "");
	if (c->value > UINT32_MAX)
		return why_set(err, len, -EINVAL, "%s out of range", c->key);
	return check_pool_params(&q, err, len);
}

static int snap_index(const struct map_volume *v, const char *name)
{
	for (uint32_t i = 0; i < v->n_snaps; i++)
		if (strcmp(v->snaps[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* A clone of V's snapshot SNAP, or NULL. */
static const struct map_volume *clone_of(const struct cluster_map *m, const struct map_volume *v,
					 uint32_t snap)
{
	for (uint32_t i = 0; i < m->n_volumes; i++)
		if (m->volumes[i].parent_inode == v->inode && m->volumes[i].parent_snap == snap)
			return &m->volumes[i];
	return NULL;
}

const struct map_snap *map_snap_by_id(const struct map_volume *v, uint32_t id)
{
	for (uint32_t i = 0; i < v->n_snaps; i++) /* by id: a binary search */
		if (v->snaps[i].id == id)
			return &v->snaps[i];
	return NULL;
}

const struct map_snap *map_snap_by_name(const struct map_volume *v, const char *name)
{
	int i = snap_index(v, name);
	return i < 0 ? NULL : &v->snaps[i];
}

bool map_snap_clone_needed(const struct map_volume *v, uint32_t clone_snap,
			   uint64_t clone_version)
{
	/* Snapshots are kept in id order, which is creation order. */
	for (uint32_t i = 0; i < v->n_snaps && v->snaps[i].id <= clone_snap; i++)
		if (map_snap_predates(&v->snaps[i], clone_version))
			return true;
	return false;
}

int map_volume_layers(const struct cluster_map *m, const struct map_volume *v, uint32_t snap,
		      struct map_layer *layers)
{
	const struct map_snap *s = snap ? map_snap_by_id(v, snap) : NULL;
	if (snap && !s)
		return -ENOENT;
	uint64_t limit = s ? s->size : v->size;
	int n = 0;
	for (;;) {
		layers[n++] = (struct map_layer){ v->pool, v->inode, snap, limit };
		if (!v->parent_inode)
			return n;
		if (n == MAP_LAYERS_MAX)
			return -ELOOP;
		/* A snapshot reads as much of the parent as when it was taken. */
		uint64_t overlap = s ? s->parent_overlap : v->parent_overlap;
		if (overlap < limit)
			limit = overlap;
		snap = v->parent_snap;
		v = map_volume_by_inode(m, v->parent_inode);
		if (!v || !(s = map_snap_by_id(v, snap)))
			return -ENOENT;
	}
}

/* SNAP_CREATE of SNAP on V, one of a group of a command. */
static int check_snap_create(const struct map_volume *v, const char *snap, char *err,
			     size_t len)
{
	if (!name_ok(snap))
		return why_set(err, len, -EINVAL,
			       "'%s' is not a valid snapshot name (1-63 of A-Z a-z 0-9 _ . -)", snap);
	if (snap_index(v, snap) >= 0)
		return why_set(err, len, -EEXIST, "volume '%s' already has a snapshot '%s'", v->name,
			       snap);
	if (v->n_snaps >= MAP_MAX_SNAPS)
		return why_set(err, len, -ENOSPC, "volume '%s' has %u snapshots, the most it may",
			       v->name, MAP_MAX_SNAPS);
	if (v->next_snap >= OBJECT_SNAP_LAST)
		return why_set(err, len, -ENOSPC, "volume '%s' has used all %u snapshot ids",
			       v->name, OBJECT_SNAP_LAST);
	return 0;
}

/* The group of a SNAP_CREATE: every volume exists, none twice. */
static int check_snap_group(const struct cluster_map *m, const struct map_cmd *c, char *err,
			    size_t len)
{
	if (c->n_group > MAP_SNAP_GROUP_MAX - 1)
		return why_set(err, len, -EINVAL, "at most %u volumes in one snapshot",
			       MAP_SNAP_GROUP_MAX);
	for (uint32_t i = 0; i < c->n_group; i++) {
		const char *name = c->group[i].volume;
		int vi = volume_index(m, name);
		if (vi < 0)
			return why_set(err, len, -ENOENT, "volume '%s' does not exist", name);
		bool twice = strcmp(name, c->name) == 0;
		for (uint32_t j = 0; j < i && !twice; j++)
			twice = strcmp(name, c->group[j].volume) == 0;
		if (twice)
			return why_set(err, len, -EINVAL, "volume '%s' is named twice", name);
		int rc = check_snap_create(&m->volumes[vi], c->group[i].snap, err, len);
		if (rc)
			return rc;
	}
	return 0;
}

static int check_snap(const struct cluster_map *m, const struct map_volume *v,
		      const struct map_cmd *c, char *err, size_t len)
{
	int si = snap_index(v, c->snap);
	if (c->type == MAP_CMD_SNAP_CREATE) {
		int rc = check_snap_create(v, c->snap, err, len);
		return rc ? rc : check_snap_group(m, c, err, len);
	}
	if (si < 0)
		return why_set(err, len, -ENOENT, "volume '%s' has no snapshot '%s'", v->name, c->snap);
	const struct map_snap *s = &v->snaps[si];
	if (c->type == MAP_CMD_SNAP_PROTECT && c->flag)
		return s->protected ? why_set(err, len, -EALREADY,
					      "snapshot '%s' of '%s' is already protected", c->snap,
					      v->name)
				    : 0;
	if (c->type == MAP_CMD_SNAP_RM && s->protected)
		return why_set(err, len, -EBUSY,
			       "snapshot '%s' of '%s' is protected: unprotect it first", c->snap,
			       v->name);
	if (c->type == MAP_CMD_SNAP_PROTECT && !s->protected)
		return why_set(err, len, -EALREADY, "snapshot '%s' of '%s' is not protected",
			       c->snap, v->name);
	const struct map_volume *child = clone_of(m, v, s->id);
	if (child)
		return why_set(err, len, -EBUSY,
			       "snapshot '%s' of '%s' is the parent of clone '%s': flatten or remove "
			       "the clone first", c->snap, v->name, child->name);
	return 0;
}

static int check_clone(const struct cluster_map *m, const struct map_cmd *c, char *err,
		       size_t len)
{
	if (!name_ok(c->name))
		return why_set(err, len, -EINVAL, "'%s' is not a valid volume name", c->name);
	if (volume_index(m, c->name) >= 0)
		return why_set(err, len, -EEXIST, "volume '%s' already exists", c->name);
	if (m->n_volumes >= MAP_MAX_VOLUMES)
		return why_set(err, len, -ENOSPC, "too many volumes");
	int pi = volume_index(m, c->src);
	if (pi < 0)
		return why_set(err, len, -ENOENT, "volume '%s' does not exist", c->src);
	const struct map_volume *p = &m->volumes[pi];
	int si = snap_index(p, c->snap);
	if (si < 0)
		return why_set(err, len, -ENOENT, "volume '%s' has no snapshot '%s'", c->src, c->snap);
	if (!p->snaps[si].protected)
		return why_set(err, len, -EPERM,
			       "snapshot '%s' of '%s' is not protected: protect it first (basalt snap "
			       "protect %s@%s)", c->snap, c->src, c->src, c->snap);
	if (!c->pool_name[0])
		return 0;
	/* Another pool is fine, if its objects cut the volume the same way:
	 * object i of the clone stands for object i of its parent. */
	int qi = pool_index(m, c->pool_name);
	if (qi < 0)
		return why_set(err, len, -ENOENT, "pool '%s' does not exist", c->pool_name);
	const struct map_pool *from = map_pool_by_id(m, p->pool), *to = &m->pools[qi];
	if (from && from->block_size != to->block_size)
		return why_set(err, len, -EINVAL,
			       "pool '%s' has %u-byte objects and the parent's pool '%s' %u-byte "
			       "ones: a clone needs the same", to->name, to->block_size, from->name,
			       from->block_size);
	return 0;
}

static int check_flatten(const struct map_volume *v, char *err, size_t len)
{
	if (!v->parent_inode)
		return why_set(err, len, -EALREADY, "volume '%s' is not a clone (no parent)", v->name);
	/* Its snapshots read through to the parent where it had not written
	 * then: they need the parent for as long as they live. */
	if (v->n_snaps)
		return why_set(err, len, -EBUSY,
			       "volume '%s' has %u snapshots, which read through to its parent: "
			       "remove them first", v->name, v->n_snaps);
	return 0;
}

/* LOCK: free, ours already, or taken over (flag). UNLOCK: ours, or
 * forced (flag); unlocking a free volume is done already. */
static int check_lock(const struct map_volume *v, const struct map_cmd *c, char *err, size_t len)
{
	if (!c->lock_client && !(c->type == MAP_CMD_VOLUME_UNLOCK && c->flag))
		return why_set(err, len, -EINVAL, "no client instance named");
	if (!v->lock_client || v->lock_client == c->lock_client || c->flag)
		return 0;
	if (c->type == MAP_CMD_VOLUME_LOCK)
		return why_set(err, len, -EBUSY, "volume '%s' is locked by %s", v->name,
			       v->lock_owner);
	return why_set(err, len, -EPERM, "volume '%s' is locked by %s, not by this client",
		       v->name, v->lock_owner);
}

static int check_volume_cmd(const struct cluster_map *m, const struct map_cmd *c, char *err,
			    size_t len)
{
	int vi = volume_index(m, c->name);
	if (c->type == MAP_CMD_VOLUME_CREATE) {
		if (!name_ok(c->name))
			return why_set(err, len, -EINVAL, "'%s' is not a valid volume name (1-63 of A-Z a-z 0-9 _ . -)",
				    c->name);
		if (vi >= 0)
			return why_set(err, len, -EEXIST, "volume '%s' already exists", c->name);
		if (pool_index(m, c->pool_name) < 0)
			return why_set(err, len, -ENOENT, "pool '%s' does not exist", c->pool_name);
		if (m->n_volumes >= MAP_MAX_VOLUMES)
			return why_set(err, len, -ENOSPC, "too many volumes");
		if (!c->size || c->size % 512 || c->size > (1ULL << 60))
			return why_set(err, len, -EINVAL, "a volume size is a multiple of 512 bytes up to 1 EiB");
		return 0;
	}
	if (c->type == MAP_CMD_VOLUME_CLONE)
		return check_clone(m, c, err, len);
	if (vi < 0)
		return why_set(err, len, -ENOENT, "volume '%s' does not exist", c->name);
	const struct map_volume *v = &m->volumes[vi];
	if (c->type == MAP_CMD_SNAP_CREATE || c->type == MAP_CMD_SNAP_RM ||
	    c->type == MAP_CMD_SNAP_PROTECT)
		return check_snap(m, v, c, err, len);
	if (c->type == MAP_CMD_VOLUME_FLATTEN)
		return check_flatten(v, err, len);
	if (c->type == MAP_CMD_VOLUME_RM && v->n_snaps)
		return why_set(err, len, -EBUSY, "volume '%s' has %u snapshots: remove them first",
			       c->name, v->n_snaps);
	if (c->type == MAP_CMD_VOLUME_RM && v->lock_client)
		return why_set(err, len, -EBUSY,
			       "volume '%s' is in use: locked by %s (stop it, or basalt volume "
			       "unlock --force)", c->name, v->lock_owner);
	if (c->type == MAP_CMD_VOLUME_LOCK || c->type == MAP_CMD_VOLUME_UNLOCK)
		return check_lock(v, c, err, len);
	if (c->type == MAP_CMD_VOLUME_RESIZE &&
	    (!c->value || c->value % 512 || c->value > (1ULL << 60)))
		return why_set(err, len, -EINVAL, "a volume size is a multiple of 512 bytes up to 1 EiB");
	/* A shrink under a writer would cut its disk from under it. */
	if (c->type == MAP_CMD_VOLUME_RESIZE && c->value < v->size && v->lock_client)
		return why_set(err, len, -EBUSY,
			       "volume '%s' is in use: locked by %s; it cannot shrink while a client "
			       "has it open for writing (stop it, or basalt volume unlock --force)",
			       c->name, v->lock_owner);
	if (c->type == MAP_CMD_VOLUME_RENAME) {
		if (!name_ok(c->new_name))
			return why_set(err, len, -EINVAL, "'%s' is not a valid volume name", c->new_name);
		if (volume_index(m, c->new_name) >= 0)
			return why_set(err, len, -EEXIST, "volume '%s' already exists", c->new_name);
	}
	return 0;
}

static int check_auth_cmd(const struct cluster_map *m, const struct map_cmd *c, char *err,
			  size_t len)
{
	int ki = key_index(m, c->name);
	if (c->type == MAP_CMD_AUTH_ADD) {
		if (strncmp(c->name, "client.", 7) || !name_ok(c->name + 7))
			return why_set(err, len, -EINVAL,
				    "'%s' is not a client entity: client.NAME, NAME of A-Z a-z 0-9 _ . -",
				    c->name);
		if (ki >= 0)
			return why_set(err, len, -EEXIST, "%s already has a key", c->name);
		if (m->n_keys >= MAP_MAX_KEYS)
			return why_set(err, len, -ENOSPC, "too many keys (%u)", MAP_MAX_KEYS);
	} else if (ki < 0) {
		return why_set(err, len, -ENOENT, "%s has no key", c->name);
	} else if (c->type == MAP_CMD_AUTH_ROTATE && m->keys[ki].old_until_ms) {
		return why_set(err, len, -EBUSY,
			       "%s is still in the grace of its last rotation: its previous key is "
			       "valid until the leader's clock reads %" PRIu64 " ms",
			       c->name, m->keys[ki].old_until_ms);
	} else if (c->type == MAP_CMD_AUTH_ROTATE_END && m->keys[ki].old_until_ms != c->value) {
		return why_set(err, len, -ESTALE, "%s has no rotation ending at %" PRIu64, c->name,
			       c->value);
	}
	if (c->type == MAP_CMD_AUTH_ROTATE && (!c->value || !c->time_ms || c->value > MAP_GRACE_MAX_MS))
		return why_set(err, len, -EINVAL,
			       "a rotation needs a grace of 1 ms to 7 days and the leader's time");
	if (c->type == MAP_CMD_AUTH_ADD || c->type == MAP_CMD_AUTH_CAPS)
		return map_caps_check(c->caps, err, len);
	return 0;
}

int map_pg_active_applies(const struct cluster_map *m, const struct map_cmd *c, uint32_t i,
			  char *err, size_t len)
{
	const struct map_pg_active *a = &c->active[i];
	const struct map_pg_active *cur = map_pg_active_get(m, a->pool, a->pg);
	uint64_t cur_epoch = cur ? cur->epoch : 0;
	if (c->prev_epoch[i] != cur_epoch)
		return why_set(err, len, -ESTALE,
			       "pg %u.%x was activated in epoch %llu since (not %llu): peer again",
			       a->pool, a->pg, (unsigned long long)cur_epoch,
			       (unsigned long long)c->prev_epoch[i]);
	/* A later interval, or the same one growing its complete set (the
	 * primary re-records it when recovery has finished). */
	if (!a->epoch || a->epoch < cur_epoch || a->epoch > m->epoch ||
	    (cur && a->epoch == cur_epoch && cur->primary != a->primary))
		return why_set(err, len, -EINVAL, "pg %u.%x: interval epoch %llu out of order",
			       a->pool, a->pg, (unsigned long long)a->epoch);
	return 0;
}

/* Every record must name a PG and OSDs that exist; at least one must
 * apply (map_pg_active_applies). */
static int check_pg_active(const struct cluster_map *m, const struct map_cmd *c, char *err,
			   size_t len)
{
	int first = 0;
	bool any = false;
	for (uint32_t i = 0; i < c->n_active; i++) {
		const struct map_pg_active *a = &c->active[i];
		const struct map_pool *p = map_pool_by_id(m, a->pool);
		if (!p || a->pg >= p->pg_num)
			return why_set(err, len, -ENOENT, "pg %u.%x does not exist", a->pool, a->pg);
		if (a->n < 1)
			return why_set(err, len, -EINVAL, "pg %u.%x: no complete OSD to record",
				       a->pool, a->pg);
		for (uint32_t k = 0; k < a->n; k++)
			if (a->osds[k] >= m->n_osds || !m->osds[a->osds[k]].exists)
				return why_set(err, len, -ENOENT, "osd.%u does not exist", a->osds[k]);
		int rc = map_pg_active_applies(m, c, i, any || first ? NULL : err, len);
		any |= rc == 0;
		if (rc && !first)
			first = rc;
	}
	return any ? 0 : first ? first : -EINVAL;
}

/* Writes every record of C that applies; the others are skipped. */
static int apply_pg_active(struct cluster_map *m, const struct map_cmd *c)
{
	bool ok[MAP_CMD_ACTIVE_MAX];
	for (uint32_t i = 0; i < c->n_active; i++) /* all judged against the map before */
		ok[i] = map_pg_active_applies(m, c, i, NULL, 0) == 0;
	for (uint32_t i = 0; i < c->n_active; i++)
		if (ok[i] && pg_active_put(m, &c->active[i]))
			return -ENOMEM;
	return 0;
}

int map_check(const struct cluster_map *m, const struct map_cmd *c, char *err, size_t len)
{
	switch (c->type) {
	case MAP_CMD_OSD_BOOT:
	case MAP_CMD_OSD_DOWN:
	case MAP_CMD_OSD_OUT:
	case MAP_CMD_OSD_IN:
	case MAP_CMD_OSD_RM:
	case MAP_CMD_OSD_REWEIGHT:
	case MAP_CMD_OSD_FULL:
		return check_osd_cmd(m, c, err, len);
	case MAP_CMD_POOL_CREATE:
	case MAP_CMD_POOL_RM:
	case MAP_CMD_POOL_SET:
	case MAP_CMD_POOL_FULL:
		return check_pool_cmd(m, c, err, len);
	case MAP_CMD_SET_RATIO:
		return check_ratio(m, c, err, len);
	case MAP_CMD_VOLUME_CREATE:
	case MAP_CMD_VOLUME_RM:
	case MAP_CMD_VOLUME_RESIZE:
	case MAP_CMD_VOLUME_RENAME:
		return check_volume_cmd(m, c, err, len);
	case MAP_CMD_SNAP_CREATE:
	case MAP_CMD_SNAP_RM:
	case MAP_CMD_SNAP_PROTECT:
	case MAP_CMD_VOLUME_CLONE:
	case MAP_CMD_VOLUME_FLATTEN:
		return check_volume_cmd(m, c, err, len);
	case MAP_CMD_AUTH_ADD:
	case MAP_CMD_AUTH_CAPS:
	case MAP_CMD_AUTH_RM:
	case MAP_CMD_AUTH_ROTATE:
	case MAP_CMD_AUTH_ROTATE_END:
		return check_auth_cmd(m, c, err, len);
	case MAP_CMD_PG_ACTIVE:
		return check_pg_active(m, c, err, len);
	case MAP_CMD_VOLUME_LOCK:
	case MAP_CMD_VOLUME_UNLOCK:
		return check_volume_cmd(m, c, err, len);
	case MAP_CMD_FENCE_RM:
		if (!map_client_fenced(m, c->lock_client))
			return why_set(err, len, -ENOENT, "client %016llx is not fenced",
				       (unsigned long long)c->lock_client);
		return 0;
	}
	return why_set(err, len, -EINVAL, "unknown command %d", c->type);
}

/* --- application ------------------------------------------------------------------ */

static int osd_reserve(struct cluster_map *m, uint32_t id)
{
	if (id < m->n_osds)
		return 0;
	struct map_osd *o = realloc(m->osds, (id + 1) * sizeof(*o));
	if (!o)
		return -ENOMEM;
	memset(o + m->n_osds, 0, (id + 1 - m->n_osds) * sizeof(*o));
	m->osds = o;
	m->n_osds = id + 1;
	return 0;
}

/* A weight follows capacity: 1.0 per TiB, never below the smallest step. */
static uint32_t weight_for(uint64_t bytes)
{
	uint64_t w = bytes >> 24; /* 16.16 fixed point of TiB = bytes / 2^24 */
	return w ? (w > 0x7fffffffu ? 0x7fffffffu : (uint32_t)w) : 1;
}

static int apply_osd(struct cluster_map *m, const struct map_cmd *c)
{
	if (c->type == MAP_CMD_OSD_BOOT && osd_reserve(m, c->osd))
		return -ENOMEM;
	struct map_osd *o = &m->osds[c->osd];
	uint64_t epoch = m->epoch + 1;
	switch (c->type) {
	case MAP_CMD_OSD_BOOT:
		if (!o->exists) {
			memset(o, 0, sizeof(*o));
			o->exists = true;
			o->in = true;
			o->weight = weight_for(c->device_bytes);
		}
		if (o->auto_out) /* it left only because it was down */
			o->in = true;
		o->auto_out = false;
		o->up = true;
		o->up_from = epoch;
		o->down_since_ms = 0;
		snprintf(o->addr, sizeof(o->addr), "%s", c->addr);
		snprintf(o->host, sizeof(o->host), "%s", c->host);
		o->device_bytes = c->device_bytes;
		break;
	case MAP_CMD_OSD_DOWN:
		o->up = false;
		o->down_at = epoch;
		o->down_since_ms = c->time_ms;
		memmove(&o->downs_ms[1], &o->downs_ms[0], sizeof(o->downs_ms) - sizeof(o->downs_ms[0]));
		o->downs_ms[0] = c->time_ms;
		break;
	case MAP_CMD_OSD_OUT:
		o->in = false;
		o->auto_out = c->flag == MAP_REASON_DOWN_OUT;
		break;
	case MAP_CMD_OSD_IN:
		o->in = true;
		o->auto_out = false;
		break;
	case MAP_CMD_OSD_RM: memset(o, 0, sizeof(*o)); break;
	case MAP_CMD_OSD_REWEIGHT: o->weight = c->weight; break;
	case MAP_CMD_OSD_FULL: o->full = c->flag; break;
	default: break;
	}
	return 0;
}

/* PG q of the pool at NEW_NUM PGs holds objects of PG q % pg_num before
 * (NEW_NUM is a multiple): each new PG inherits its parent's record, so
 * the set that holds the parent's acknowledged writes is heard from. */
static int split_pgs(struct cluster_map *m, struct map_pool *p, uint32_t new_num)
{
	uint32_t old_num = p->pg_num;
	for (uint32_t parent = 0; parent < old_num; parent++) {
		const struct map_pg_active *a = map_pg_active_get(m, p->id, parent);
		if (!a)
			continue;
		struct map_pg_active child = *a;
		for (uint32_t q = parent + old_num; q < new_num; q += old_num) {
			child.pg = q;
			if (pg_active_put(m, &child))
				return -ENOMEM;
			a = map_pg_active_get(m, p->id, parent); /* the array moved */
		}
	}
	p->pg_num = new_num;
	return 0;
}

static int apply_pool(struct cluster_map *m, const struct map_cmd *c)
{
	int pi = pool_index(m, c->name);
	if (c->type == MAP_CMD_POOL_CREATE) {
		struct map_pool *p = realloc(m->pools, (m->n_pools + 1) * sizeof(*p));
		if (!p)
			return -ENOMEM;
		m->pools = p;
		p = &m->pools[m->n_pools++];
		*p = c->pool;
		p->id = ++m->next_pool_id;
		snprintf(p->name, sizeof(p->name), "%s", c->name);
		if (p->type == MAP_POOL_EC) {
			p->size = p->ec_k + p->ec_m;
			/* One chunk more than the data, unless asked: a write
			 * acknowledged survives one more failure (Ceph's
			 * default too). */
			if (!p->min_size)
				p->min_size = p->ec_k + 1;
		}
	} else if (c->type == MAP_CMD_POOL_RM) {
		uint32_t id = m->pools[pi].id, k = 0;
		for (uint32_t i = 0; i < m->n_pg_active; i++)
			if (m->pg_active[i].pool != id)
				m->pg_active[k++] = m->pg_active[i];
		m->n_pg_active = k;
		memmove(&m->pools[pi], &m->pools[pi + 1],
			(m->n_pools - (uint32_t)pi - 1) * sizeof(*m->pools));
		m->n_pools--;
	} else if (c->type == MAP_CMD_POOL_FULL) {
		m->pools[pi].quota_full = c->flag;
	} else {
		struct map_pool *p = &m->pools[pi];
		if (strcmp(c->key, "max_bytes") == 0) {
			p->max_bytes = c->value;
			if (!p->max_bytes) /* no quota: nothing to be full of */
				p->quota_full = false;
		} else if (strcmp(c->key, "size") == 0)
			p->size = (uint32_t)c->value;
		else if (strcmp(c->key, "min_size") == 0)
			p->min_size = (uint32_t)c->value;
		else
			return split_pgs(m, p, (uint32_t)c->value);
	}
	return 0;
}

/* Room for one more snapshot in V: 0 or -ENOMEM. */
static int snap_room(struct map_volume *v)
{
	if (v->n_snaps < v->cap_snaps)
		return 0;
	uint32_t cap = v->cap_snaps ? v->cap_snaps * 2 : 4;
	struct map_snap *s = realloc(v->snaps, cap * sizeof(*s));
	if (!s)
		return -ENOMEM;
	v->snaps = s;
	v->cap_snaps = cap;
	return 0;
}

/* Room for the snapshots of a SNAP_CREATE in every volume it names, so
 * the command applies whole or not at all. */
static int snap_room_all(struct cluster_map *m, const struct map_cmd *c)
{
	int rc = snap_room(&m->volumes[volume_index(m, c->name)]);
	for (uint32_t i = 0; i < c->n_group && !rc; i++)
		rc = snap_room(&m->volumes[volume_index(m, c->group[i].volume)]);
	return rc;
}

/* A snapshot of V taken by the command that makes the next epoch (room
 * made first). */
static void snap_add(struct cluster_map *m, struct map_volume *v, const char *name,
		     uint64_t time_ms)
{
	struct map_snap *s = &v->snaps[v->n_snaps++];
	memset(s, 0, sizeof(*s));
	s->id = ++v->next_snap;
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->size = v->size;
	s->epoch = m->epoch + 1;
	s->time_ms = time_ms;
	s->parent_overlap = v->parent_overlap;
}

static int apply_volume(struct cluster_map *m, const struct map_cmd *c)
{
	int vi = volume_index(m, c->name);
	switch (c->type) {
	case MAP_CMD_VOLUME_CREATE:
	case MAP_CMD_VOLUME_CLONE: {
		struct map_volume *v = realloc(m->volumes, (m->n_volumes + 1) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		m->volumes = v;
		v = &m->volumes[m->n_volumes];
		memset(v, 0, sizeof(*v));
		snprintf(v->name, sizeof(v->name), "%s", c->name);
		v->inode = ++m->next_inode;
		if (c->type == MAP_CMD_VOLUME_CREATE) {
			v->size = c->size;
			v->pool = m->pools[pool_index(m, c->pool_name)].id;
		} else {
			const struct map_volume *p = &m->volumes[volume_index(m, c->src)];
			const struct map_snap *s = &p->snaps[snap_index(p, c->snap)];
			v->size = s->size;
			v->pool = c->pool_name[0] ? m->pools[pool_index(m, c->pool_name)].id
						  : p->pool;
			v->parent_inode = p->inode;
			v->parent_snap = s->id;
			v->parent_overlap = s->size;
		}
		m->n_volumes++;
		break;
	}
	case MAP_CMD_SNAP_CREATE:
		if (snap_room_all(m, c))
			return -ENOMEM;
		snap_add(m, &m->volumes[vi], c->snap, c->time_ms);
		for (uint32_t i = 0; i < c->n_group; i++)
			snap_add(m, &m->volumes[volume_index(m, c->group[i].volume)],
				 c->group[i].snap, c->time_ms);
		break;
	case MAP_CMD_SNAP_RM: {
		struct map_volume *v = &m->volumes[vi];
		int si = snap_index(v, c->snap);
		memmove(&v->snaps[si], &v->snaps[si + 1],
			(v->n_snaps - (uint32_t)si - 1) * sizeof(v->snaps[0]));
		v->n_snaps--;
		break;
	}
	case MAP_CMD_VOLUME_RM:
		free(m->volumes[vi].snaps);
		memmove(&m->volumes[vi], &m->volumes[vi + 1],
			(m->n_volumes - (uint32_t)vi - 1) * sizeof(*m->volumes));
		m->n_volumes--;
		break;
	case MAP_CMD_VOLUME_RESIZE:
		m->volumes[vi].size = c->value;
		if (m->volumes[vi].parent_overlap > c->value)
			m->volumes[vi].parent_overlap = c->value;
		break;
	case MAP_CMD_SNAP_PROTECT:
		m->volumes[vi].snaps[snap_index(&m->volumes[vi], c->snap)].protected = c->flag;
		break;
	case MAP_CMD_VOLUME_FLATTEN:
		m->volumes[vi].parent_inode = 0;
		m->volumes[vi].parent_snap = 0;
		m->volumes[vi].parent_overlap = 0;
		break;
	default:
		snprintf(m->volumes[vi].name, MAP_NAME_MAX, "%s", c->new_name);
		break;
	}
	return 0;
}

/* Fences CLIENT from the next epoch on (the oldest entry goes when full). */
static void fence_add(struct cluster_map *m, uint64_t client, const char *owner, uint64_t time_ms)
{
	if (map_client_fenced(m, client))
		return;
	if (m->n_fenced == MAP_FENCED_MAX) {
		memmove(&m->fenced[0], &m->fenced[1], (MAP_FENCED_MAX - 1) * sizeof(*m->fenced));
		m->n_fenced--;
	}
	struct map_fenced *f = &m->fenced[m->n_fenced++];
	memset(f, 0, sizeof(*f));
	f->client = client;
	f->epoch = m->epoch + 1;
	f->time_ms = time_ms;
	snprintf(f->owner, sizeof(f->owner), "%s", owner);
}

static int apply_lock(struct cluster_map *m, const struct map_cmd *c)
{
	if (c->type == MAP_CMD_FENCE_RM) {
		uint32_t k = 0;
		for (uint32_t i = 0; i < m->n_fenced; i++)
			if (m->fenced[i].client != c->lock_client)
				m->fenced[k++] = m->fenced[i];
		m->n_fenced = k;
		return 0;
	}
	if (!m->fenced && !(m->fenced = calloc(MAP_FENCED_MAX, sizeof(*m->fenced))))
		return -ENOMEM;
	struct map_volume *v = &m->volumes[volume_index(m, c->name)];
	/* Whoever loses the lock without giving it up is fenced first. */
	if (v->lock_client && v->lock_client != c->lock_client)
		fence_add(m, v->lock_client, v->lock_owner, c->time_ms);
	if (c->type == MAP_CMD_VOLUME_LOCK) {
		v->lock_client = c->lock_client;
		snprintf(v->lock_owner, sizeof(v->lock_owner), "%s", c->owner);
	} else {
		v->lock_client = 0;
		v->lock_owner[0] = 0;
	}
	return 0;
}

static int apply_auth(struct cluster_map *m, const struct map_cmd *c)
{
	int ki = key_index(m, c->name);
	if (c->type == MAP_CMD_AUTH_ADD) {
		struct map_key *k = realloc(m->keys, (m->n_keys + 1) * sizeof(*k));
		if (!k)
			return -ENOMEM;
		m->keys = k;
		k = &m->keys[m->n_keys++];
		memset(k, 0, sizeof(*k));
		snprintf(k->entity, sizeof(k->entity), "%s", c->name);
		k->cur = c->secret;
		snprintf(k->caps, sizeof(k->caps), "%s", c->caps);
	} else if (c->type == MAP_CMD_AUTH_CAPS) {
		snprintf(m->keys[ki].caps, sizeof(m->keys[ki].caps), "%s", c->caps);
	} else if (c->type == MAP_CMD_AUTH_ROTATE) {
		struct map_key *k = &m->keys[ki];
		k->old = k->cur;
		k->old_until_ms = c->time_ms + c->value;
		k->cur = c->secret;
	} else if (c->type == MAP_CMD_AUTH_ROTATE_END) {
		memset(&m->keys[ki].old, 0, sizeof(m->keys[ki].old));
		m->keys[ki].old_until_ms = 0;
	} else {
		memmove(&m->keys[ki], &m->keys[ki + 1],
			(m->n_keys - (uint32_t)ki - 1) * sizeof(*m->keys));
		m->n_keys--;
	}
	return 0;
}

bool map_client_fenced(const struct cluster_map *m, uint64_t client)
{
	for (uint32_t i = 0; client && i < m->n_fenced; i++)
		if (m->fenced[i].client == client)
			return true;
	return false;
}

const struct map_volume *map_volume_by_inode(const struct cluster_map *m, uint64_t inode)
{
	for (uint32_t i = 0; inode && i < m->n_volumes; i++)
		if (m->volumes[i].inode == inode)
			return &m->volumes[i];
	return NULL;
}

bool map_recently_applied(const struct cluster_map *m, const struct map_cmd *c)
{
	if (!c->client)
		return false;
	for (uint32_t i = 0; i < MAP_RECENT; i++)
		if (m->recent[i].client == c->client && m->recent[i].req == c->req)
			return true;
	return false;
}

int map_apply(struct cluster_map *m, const struct map_cmd *c, char *err, size_t len,
	      bool *duplicate)
{
	if (duplicate)
		*duplicate = false;
	if (map_recently_applied(m, c)) {
		if (duplicate)
			*duplicate = true;
		return 0;
	}
	int rc = map_check(m, c, err, len);
	if (rc)
		return rc;
	switch (c->type) {
	case MAP_CMD_OSD_BOOT:
	case MAP_CMD_OSD_DOWN:
	case MAP_CMD_OSD_OUT:
	case MAP_CMD_OSD_IN:
	case MAP_CMD_OSD_RM:
	case MAP_CMD_OSD_REWEIGHT:
	case MAP_CMD_OSD_FULL:
		rc = apply_osd(m, c);
		break;
	case MAP_CMD_POOL_CREATE:
	case MAP_CMD_POOL_RM:
	case MAP_CMD_POOL_SET:
	case MAP_CMD_POOL_FULL:
		rc = apply_pool(m, c);
		break;
	case MAP_CMD_PG_ACTIVE:
		rc = apply_pg_active(m, c);
		break;
	case MAP_CMD_VOLUME_LOCK:
	case MAP_CMD_VOLUME_UNLOCK:
	case MAP_CMD_FENCE_RM:
		rc = apply_lock(m, c);
		break;
	case MAP_CMD_VOLUME_CREATE:
	case MAP_CMD_VOLUME_RM:
	case MAP_CMD_VOLUME_RESIZE:
	case MAP_CMD_VOLUME_RENAME:
	case MAP_CMD_SNAP_CREATE:
	case MAP_CMD_SNAP_RM:
	case MAP_CMD_SNAP_PROTECT:
	case MAP_CMD_VOLUME_CLONE:
	case MAP_CMD_VOLUME_FLATTEN:
		rc = apply_volume(m, c);
		break;
	case MAP_CMD_AUTH_ADD:
	case MAP_CMD_AUTH_CAPS:
	case MAP_CMD_AUTH_RM:
	case MAP_CMD_AUTH_ROTATE:
	case MAP_CMD_AUTH_ROTATE_END:
		rc = apply_auth(m, c);
		break;
	case MAP_CMD_SET_RATIO:
		if (strcmp(c->key, "nearfull") == 0)
			m->nearfull_ratio = (uint32_t)c->value;
		else if (strcmp(c->key, "backfillfull") == 0)
			m->backfillfull_ratio = (uint32_t)c->value;
		else
			m->full_ratio = (uint32_t)c->value;
		break;
	}
	map_placement_changed(m->placement);
	if (rc)
		return why_set(err, len, rc, "out of memory");
	if (c->client) {
		m->recent[m->recent_next] = (struct map_recent){ c->client, c->req };
		m->recent_next = (m->recent_next + 1) % MAP_RECENT;
	}
	m->epoch++;
	return 0;
}

/* --- the whole map ------------------------------------------------------------------ */

int map_init(struct cluster_map *m, const uint8_t fsid[16], const struct map_mon *mons,
	     uint32_t n_mons)
{
	if (n_mons < 1 || n_mons > MAP_MAX_MONS)
		return -EINVAL;
	memset(m, 0, sizeof(*m));
	memcpy(m->fsid, fsid, 16);
	memcpy(m->mons, mons, n_mons * sizeof(*mons));
	m->n_mons = n_mons;
	m->placement = map_placement_new(); /* NULL: lookups compute */
	m->nearfull_ratio = 8500;
	m->backfillfull_ratio = 9000;
	m->full_ratio = 9500;
	return 0;
}

enum map_full_state map_full_state_for(const struct cluster_map *m, uint32_t used_ratio)
{
	if (used_ratio >= m->full_ratio)
		return MAP_FULL_FULL;
	if (used_ratio >= m->backfillfull_ratio)
		return MAP_FULL_BACKFILL;
	if (used_ratio >= m->nearfull_ratio)
		return MAP_FULL_NEAR;
	return MAP_FULL_NONE;
}

const char *map_full_state_name(enum map_full_state s)
{
	switch (s) {
	case MAP_FULL_NEAR: return "nearfull";
	case MAP_FULL_BACKFILL: return "backfillfull";
	case MAP_FULL_FULL: return "full";
	default: return "ok";
	}
}

bool map_pool_full(const struct cluster_map *m, const struct map_pool *p, char *why,
		   size_t why_len)
{
	if (p->quota_full) {
		if (why)
			snprintf(why, why_len, "pool '%s' reached its quota of %llu bytes", p->name,
				 (unsigned long long)p->max_bytes);
		return true;
	}
	for (uint32_t i = 0; i < m->n_osds; i++) {
		const struct map_osd *o = &m->osds[i];
		if (o->exists && o->up && o->in && o->full == MAP_FULL_FULL) {
			if (why)
				snprintf(why, why_len, "osd.%u is full (past the full ratio %g)", i,
					 m->full_ratio / 1e4);
			return true;
		}
	}
	return false;
}

void map_free(struct cluster_map *m)
{
	free(m->osds);
	free(m->pools);
	for (uint32_t i = 0; m->volumes && i < m->n_volumes; i++)
		free(m->volumes[i].snaps);
	free(m->volumes);
	free(m->keys);
	free(m->pg_active);
	free(m->fenced);
	map_placement_free(m->placement);
	memset(m, 0, sizeof(*m));
}

static void encode_map(const struct cluster_map *m, struct enc *e, bool secrets)
{
	enc_put_u8(e, MAP_FORMAT);
	enc_put_bytes(e, m->fsid, 16);
	enc_put_le64(e, m->epoch);
	enc_put_le32(e, m->n_mons);
	for (uint32_t i = 0; i < m->n_mons; i++) {
		enc_put_str(e, m->mons[i].name);
		enc_put_str(e, m->mons[i].addr);
	}
	uint32_t total, up, in;
	map_osd_counts(m, &total, &up, &in);
	enc_put_le32(e, total);
	for (uint32_t i = 0; i < m->n_osds; i++) {
		const struct map_osd *o = &m->osds[i];
		if (!o->exists)
			continue;
		enc_put_le32(e, i);
		enc_put_u8(e, (uint8_t)(o->up | o->in << 1 | o->auto_out << 2));
		enc_put_str(e, o->addr);
		enc_put_str(e, o->host);
		enc_put_le32(e, o->weight);
		enc_put_le64(e, o->device_bytes);
		enc_put_le64(e, o->up_from);
		enc_put_le64(e, o->down_at);
		enc_put_le64(e, o->down_since_ms);
		for (int k = 0; k < MAP_FLAP_HISTORY; k++)
			enc_put_le64(e, o->downs_ms[k]);
		enc_put_u8(e, o->full);
	}
	enc_put_le32(e, m->n_pools);
	enc_put_le32(e, m->next_pool_id);
	for (uint32_t i = 0; i < m->n_pools; i++) {
		const struct map_pool *p = &m->pools[i];
		enc_put_le32(e, p->id);
		enc_put_str(e, p->name);
		enc_put_u8(e, (uint8_t)p->type);
		enc_put_le32(e, p->size);
		enc_put_le32(e, p->min_size);
		enc_put_le32(e, p->ec_k);
		enc_put_le32(e, p->ec_m);
		enc_put_le32(e, p->pg_num);
		enc_put_le32(e, p->block_size);
		enc_put_le64(e, p->max_bytes);
		enc_put_u8(e, p->quota_full);
	}
	enc_put_le32(e, m->n_volumes);
	enc_put_le64(e, m->next_inode);
	for (uint32_t i = 0; i < m->n_volumes; i++) {
		const struct map_volume *v = &m->volumes[i];
		enc_put_str(e, v->name);
		enc_put_le64(e, v->inode);
		enc_put_le64(e, v->size);
		enc_put_le32(e, v->pool);
		enc_put_le64(e, v->parent_inode);
		enc_put_le32(e, v->parent_snap);
		enc_put_le64(e, v->parent_overlap);
		enc_put_le32(e, v->next_snap);
		enc_put_le32(e, v->n_snaps);
		for (uint32_t k = 0; k < v->n_snaps; k++) {
			enc_put_le32(e, v->snaps[k].id);
			enc_put_str(e, v->snaps[k].name);
			enc_put_le64(e, v->snaps[k].size);
			enc_put_le64(e, v->snaps[k].epoch);
			enc_put_le64(e, v->snaps[k].time_ms);
			enc_put_u8(e, v->snaps[k].protected);
			enc_put_le64(e, v->snaps[k].parent_overlap);
		}
		enc_put_le64(e, v->lock_client);
		enc_put_str(e, v->lock_owner);
	}
	enc_put_le32(e, m->n_keys);
	for (uint32_t i = 0; i < m->n_keys; i++) {
		struct map_key k = m->keys[i];
		if (!secrets) {
			memset(k.cur.sealed, 0, sizeof(k.cur.sealed));
			memset(k.old.sealed, 0, sizeof(k.old.sealed));
		}
		enc_put_str(e, k.entity);
		enc_put_key_secret(e, &k.cur);
		enc_put_key_secret(e, &k.old);
		enc_put_le64(e, k.old_until_ms);
		enc_put_str(e, k.caps);
	}
	enc_put_le32(e, m->n_pg_active);
	for (uint32_t i = 0; i < m->n_pg_active; i++)
		enc_put_pg_active(e, &m->pg_active[i]);
	enc_put_le32(e, m->n_fenced);
	for (uint32_t i = 0; i < m->n_fenced; i++) {
		enc_put_le64(e, m->fenced[i].client);
		enc_put_le64(e, m->fenced[i].epoch);
		enc_put_le64(e, m->fenced[i].time_ms);
		enc_put_str(e, m->fenced[i].owner);
	}
	enc_put_le32(e, m->nearfull_ratio);
	enc_put_le32(e, m->backfillfull_ratio);
	enc_put_le32(e, m->full_ratio);
	enc_put_le32(e, m->recent_next);
	for (uint32_t i = 0; i < MAP_RECENT; i++) {
		enc_put_le64(e, m->recent[i].client);
		enc_put_le64(e, m->recent[i].req);
	}
}

static size_t snaps_bytes(const struct cluster_map *m)
{
	size_t n = 0;
	for (uint32_t i = 0; i < m->n_volumes; i++)
		n += m->volumes[i].n_snaps * (size_t)(4 + 2 + MAP_NAME_MAX + 8 + 16 + 1 + 8);
	return n;
}

static int encode_whole(const struct cluster_map *m, uint8_t **buf, size_t *len, bool secrets)
{
	struct enc e;
	enc_init(&e, NULL, 0);
	size_t cap = 4096 + MAP_RECENT * 16 + (size_t)m->n_osds * 300 +
		     (size_t)m->n_pools * 120 + (size_t)m->n_volumes * (140 + MAP_OWNER_MAX) +
		     snaps_bytes(m) + (size_t)m->n_fenced * (26 + MAP_OWNER_MAX) +
		     (size_t)m->n_keys * (MAP_NAME_MAX + MAP_CAPS_MAX + 40) +
		     (size_t)m->n_pg_active * sizeof(struct map_pg_active);
	*buf = malloc(cap);
	if (!*buf)
		return -ENOMEM;
	enc_init(&e, *buf, cap);
	encode_map(m, &e, secrets);
	if (enc_status(&e)) {
		free(*buf);
		return -EMSGSIZE;
	}
	*len = e.pos;
	return 0;
}

int map_encode(const struct cluster_map *m, uint8_t **buf, size_t *len)
{
	return encode_whole(m, buf, len, true);
}

int map_encode_public(const struct cluster_map *m, uint8_t **buf, size_t *len)
{
	return encode_whole(m, buf, len, false);
}

static int decode_osds(struct cluster_map *m, struct dec *d)
{
	uint32_t count;
	dec_get_le32(d, &count);
	if (count > MAP_MAX_OSDS)
		return -EBADMSG;
	for (uint32_t k = 0; k < count && !dec_status(d); k++) {
		uint32_t id;
		uint8_t flags;
		dec_get_le32(d, &id);
		if (id >= MAP_MAX_OSDS || (id < m->n_osds && m->osds[id].exists) || osd_reserve(m, id))
			return -EBADMSG;
		struct map_osd *o = &m->osds[id];
		dec_get_u8(d, &flags);
		o->exists = true;
		o->up = flags & 1;
		o->in = flags & 2;
		o->auto_out = flags & 4;
		dec_get_str(d, o->addr, sizeof(o->addr));
		dec_get_str(d, o->host, sizeof(o->host));
		dec_get_le32(d, &o->weight);
		dec_get_le64(d, &o->device_bytes);
		dec_get_le64(d, &o->up_from);
		dec_get_le64(d, &o->down_at);
		dec_get_le64(d, &o->down_since_ms);
		for (int h = 0; h < MAP_FLAP_HISTORY; h++)
			dec_get_le64(d, &o->downs_ms[h]);
		dec_get_u8(d, &o->full);
		if (o->full > MAP_FULL_FULL)
			return -EBADMSG;
	}
	return dec_status(d);
}

static int decode_rest(struct cluster_map *m, struct dec *d)
{
	uint32_t n;
	dec_get_le32(d, &n);
	dec_get_le32(d, &m->next_pool_id);
	if (n > MAP_MAX_POOLS || !(m->pools = calloc(n ? n : 1, sizeof(*m->pools))))
		return -EBADMSG;
	for (m->n_pools = 0; m->n_pools < n && !dec_status(d); m->n_pools++) {
		struct map_pool *p = &m->pools[m->n_pools];
		uint8_t type;
		dec_get_le32(d, &p->id);
		dec_get_str(d, p->name, sizeof(p->name));
		dec_get_u8(d, &type);
		p->type = (enum map_pool_type)type;
		dec_get_le32(d, &p->size);
		dec_get_le32(d, &p->min_size);
		dec_get_le32(d, &p->ec_k);
		dec_get_le32(d, &p->ec_m);
		dec_get_le32(d, &p->pg_num);
		dec_get_le32(d, &p->block_size);
		uint8_t qf;
		dec_get_le64(d, &p->max_bytes);
		dec_get_u8(d, &qf);
		p->quota_full = qf & 1;
	}
	dec_get_le32(d, &n);
	dec_get_le64(d, &m->next_inode);
	if (n > MAP_MAX_VOLUMES || !(m->volumes = calloc(n ? n : 1, sizeof(*m->volumes))))
		return -EBADMSG;
	for (m->n_volumes = 0; m->n_volumes < n && !dec_status(d); m->n_volumes++) {
		struct map_volume *v = &m->volumes[m->n_volumes];
		dec_get_str(d, v->name, sizeof(v->name));
		dec_get_le64(d, &v->inode);
		dec_get_le64(d, &v->size);
		dec_get_le32(d, &v->pool);
		dec_get_le64(d, &v->parent_inode);
		dec_get_le32(d, &v->parent_snap);
		dec_get_le64(d, &v->parent_overlap);
		dec_get_le32(d, &v->next_snap);
		dec_get_le32(d, &v->n_snaps);
		if (v->n_snaps > MAP_MAX_SNAPS)
			return -EBADMSG;
		v->cap_snaps = v->n_snaps;
		if (v->n_snaps && !(v->snaps = calloc(v->n_snaps, sizeof(*v->snaps))))
			return -EBADMSG;
		for (uint32_t k = 0; k < v->n_snaps; k++) {
			dec_get_le32(d, &v->snaps[k].id);
			dec_get_str(d, v->snaps[k].name, sizeof(v->snaps[k].name));
			dec_get_le64(d, &v->snaps[k].size);
			dec_get_le64(d, &v->snaps[k].epoch);
			dec_get_le64(d, &v->snaps[k].time_ms);
			uint8_t protected = 0;
			dec_get_u8(d, &protected);
			v->snaps[k].protected = protected & 1;
			dec_get_le64(d, &v->snaps[k].parent_overlap);
		}
		dec_get_le64(d, &v->lock_client);
		dec_get_str(d, v->lock_owner, sizeof(v->lock_owner));
	}
	dec_get_le32(d, &n);
	if (dec_status(d) || n > MAP_MAX_KEYS || !(m->keys = calloc(n ? n : 1, sizeof(*m->keys))))
		return -EBADMSG;
	for (m->n_keys = 0; m->n_keys < n && !dec_status(d); m->n_keys++) {
		struct map_key *k = &m->keys[m->n_keys];
		dec_get_str(d, k->entity, sizeof(k->entity));
		dec_get_key_secret(d, &k->cur);
		dec_get_key_secret(d, &k->old);
		dec_get_le64(d, &k->old_until_ms);
		dec_get_str(d, k->caps, sizeof(k->caps));
	}
	dec_get_le32(d, &n);
	if (dec_status(d) || n > dec_remaining(d) / 20 ||
	    !(m->pg_active = calloc(n ? n : 1, sizeof(*m->pg_active))))
		return -EBADMSG;
	for (m->n_pg_active = 0; m->n_pg_active < n; m->n_pg_active++) {
		struct map_pg_active *a = &m->pg_active[m->n_pg_active];
		if (dec_get_pg_active(d, a))
			return -EBADMSG;
		if (m->n_pg_active && (a[-1].pool > a->pool ||
				       (a[-1].pool == a->pool && a[-1].pg >= a->pg)))
			return -EBADMSG; /* must stay sorted for lookups */
	}
	dec_get_le32(d, &n);
	if (dec_status(d) || n > MAP_FENCED_MAX ||
	    !(m->fenced = calloc(MAP_FENCED_MAX, sizeof(*m->fenced))))
		return -EBADMSG;
	for (m->n_fenced = 0; m->n_fenced < n && !dec_status(d); m->n_fenced++) {
		struct map_fenced *f = &m->fenced[m->n_fenced];
		dec_get_le64(d, &f->client);
		dec_get_le64(d, &f->epoch);
		dec_get_le64(d, &f->time_ms);
		dec_get_str(d, f->owner, sizeof(f->owner));
	}
	dec_get_le32(d, &m->nearfull_ratio);
	dec_get_le32(d, &m->backfillfull_ratio);
	dec_get_le32(d, &m->full_ratio);
	if (m->nearfull_ratio > m->backfillfull_ratio || m->backfillfull_ratio > m->full_ratio ||
	    m->full_ratio > MAP_RATIO_ONE)
		return -EBADMSG;
	dec_get_le32(d, &m->recent_next);
	for (uint32_t i = 0; i < MAP_RECENT; i++) {
		dec_get_le64(d, &m->recent[i].client);
		dec_get_le64(d, &m->recent[i].req);
	}
	return dec_status(d) || dec_remaining(d) || m->recent_next >= MAP_RECENT ? -EBADMSG : 0;
}

int map_decode(const uint8_t *buf, size_t len, struct cluster_map *out)
{
	struct cluster_map m;
	struct dec d;
	uint8_t format;
	memset(&m, 0, sizeof(m));
	dec_init(&d, buf, len);
	dec_get_u8(&d, &format);
	dec_get_bytes(&d, m.fsid, 16);
	dec_get_le64(&d, &m.epoch);
	dec_get_le32(&d, &m.n_mons);
	int rc = format != MAP_FORMAT || m.n_mons < 1 || m.n_mons > MAP_MAX_MONS ? -EBADMSG : 0;
	for (uint32_t i = 0; !rc && i < m.n_mons; i++) {
		dec_get_str(&d, m.mons[i].name, sizeof(m.mons[i].name));
		dec_get_str(&d, m.mons[i].addr, sizeof(m.mons[i].addr));
	}
	if (!rc && !dec_status(&d))
		rc = decode_osds(&m, &d);
	if (!rc && !dec_status(&d))
		rc = decode_rest(&m, &d);
	if (rc || dec_status(&d)) {
		map_free(&m);
		return -EBADMSG;
	}
	m.placement = map_placement_new(); /* NULL: lookups compute */
	map_free(out);
	*out = m;
	return 0;
}
