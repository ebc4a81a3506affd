/* Encoding of the monitor protocol's messages (see mon_proto.h). */
#include "mon_proto.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "common/enc.h"

struct msg *mon_command_reply_encode(uint64_t request_id, const struct mon_command_reply *r)
{
	size_t cap = 4 + 8 + 2 + sizeof(r->leader) + 2 + sizeof(r->text) + 1 + sizeof(r->secret);
	struct msg *msg = msg_new(MON_MSG_COMMAND_REPLY, request_id, cap);
	if (!msg)
		return NULL;
	struct enc e;
	enc_init(&e, msg->payload, cap);
	enc_put_le32(&e, (uint32_t)r->rc);
	enc_put_le64(&e, r->epoch);
	enc_put_str(&e, r->leader);
	enc_put_str(&e, r->text);
	if (r->has_secret) {
		enc_put_u8(&e, 1);
		enc_put_bytes(&e, r->secret, sizeof(r->secret));
	}
	msg->hdr.payload_len = (uint32_t)e.pos;
	return msg;
}

int mon_command_reply_decode(const struct msg *msg, struct mon_command_reply *out)
{
	struct dec d;
	uint32_t urc;
	dec_init(&d, msg->payload, msg->hdr.payload_len);
	dec_get_le32(&d, &urc);
	dec_get_le64(&d, &out->epoch);
	dec_get_str(&d, out->leader, sizeof(out->leader));
	dec_get_str(&d, out->text, sizeof(out->text));
	uint8_t has = 0;
	if (dec_remaining(&d))
		dec_get_u8(&d, &has);
	out->has_secret = has == 1;
	if (out->has_secret)
		dec_get_bytes(&d, out->secret, sizeof(out->secret));
	if (has > 1 || dec_remaining(&d))
		return -EBADMSG;
	out->rc = (int32_t)urc;
	return msg->hdr.type != MON_MSG_COMMAND_REPLY || dec_status(&d) || out->rc > 0 ? -EBADMSG
										      : 0;
}

int mon_map_header_decode(const struct msg *msg, struct mon_map_header *out)
{
	struct dec d;
	dec_init(&d, msg->payload, msg->hdr.payload_len);
	dec_get_le64(&d, &out->epoch);
	dec_get_u8(&d, &out->stale);
	dec_get_str(&d, out->leader, sizeof(out->leader));
	return msg->hdr.type != MON_MSG_MAP || dec_status(&d) ? -EBADMSG : 0;
}

int mon_map_inc_decode(const struct msg *msg, struct mon_map_inc *out)
{
	struct dec d;
	memset(out, 0, sizeof(*out));
	dec_init(&d, msg->payload, msg->hdr.payload_len);
	dec_get_le64(&d, &out->h.epoch);
	dec_get_u8(&d, &out->h.stale);
	dec_get_str(&d, out->h.leader, sizeof(out->h.leader));
	dec_get_le64(&d, &out->from);
	if (msg->hdr.type != MON_MSG_MAP_INC || dec_status(&d) || dec_remaining(&d) ||
	    out->from >= out->h.epoch)
		return -EBADMSG;
	dec_init(&d, msg->data, msg->hdr.data_len);
	dec_get_le32(&d, &out->count);
	if (dec_status(&d) || out->count != out->h.epoch - out->from)
		return -EBADMSG;
	out->cmds = msg->data + 4;
	out->cmds_len = msg->hdr.data_len - 4;
	return 0;
}

int mon_map_inc_apply(const struct mon_map_inc *inc, struct cluster_map *map)
{
	if (map->epoch != inc->from)
		return -ESTALE;
	struct dec d;
	dec_init(&d, inc->cmds, inc->cmds_len);
	for (uint32_t i = 0; i < inc->count; i++) {
		uint16_t len;
		struct map_cmd cmd;
		dec_get_le16(&d, &len);
		const uint8_t *p = dec_take(&d, len);
		bool dup;
		if (!p || map_cmd_decode(p, len, &cmd) || map_apply(map, &cmd, NULL, 0, &dup) || dup)
			return -EBADMSG;
	}
	return dec_remaining(&d) || map->epoch != inc->h.epoch ? -EBADMSG : 0;
}

const char *mon_role_name(uint8_t role)
{
	switch (role) {
	case MON_ROLE_FOLLOWER: return "follower";
	case MON_ROLE_CANDIDATE: return "candidate";
	case MON_ROLE_LEADER: return "leader";
	}
	return "unknown";
}

const char *mon_pg_state_name(uint16_t state, char *buf, size_t len)
{
	static const char *const names[] = { "active",	   "clean",	 "degraded",
					     "undersized", "recovering", "backfilling",
					     "peering",	   "incomplete", "down",
					     "activating", "peered",	 "backfill_toofull",
					     "scrubbing",  "deep",	 "inconsistent",
					     "read_only" };
	size_t at = 0;
	buf[0] = '\0';
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]) && at < len; i++)
		if (state & (1u << i))
			at += (size_t)snprintf(buf + at, len - at, "%s%s", at ? "+" : "", names[i]);
	if (!state)
		snprintf(buf, len, "unknown");
	return buf;
}

#define PG_STAT_LEN (4 + 4 + 2 + 4 + 8 + 8 + 8 + 8 + 8 + 8 + 5 * 4)
#define STATS_LEN (4 + 5 * 8 + 4)

struct msg *mon_lock_renew_encode(uint64_t client, const uint64_t *inodes, uint32_t n)
{
	if (n > MON_RENEW_MAX)
		return NULL;
	struct msg *msg = msg_new(MON_MSG_LOCK_RENEW, 0, 12 + (size_t)n * 8);
	if (!msg)
		return NULL;
	struct enc e;
	enc_init(&e, msg->payload, msg->hdr.payload_len);
	enc_put_le64(&e, client);
	enc_put_le32(&e, n);
	for (uint32_t i = 0; i < n; i++)
		enc_put_le64(&e, inodes[i]);
	return msg;
}

int mon_lock_renew_decode(const struct msg *msg, uint64_t *client, uint64_t *inodes,
			  uint32_t *n)
{
	struct dec d;
	dec_init(&d, msg->payload, msg->hdr.payload_len);
	dec_get_le64(&d, client);
	dec_get_le32(&d, n);
	if (dec_status(&d) || *n > MON_RENEW_MAX || dec_remaining(&d) != (size_t)*n * 8)
		return -EBADMSG;
	for (uint32_t i = 0; i < *n; i++)
		dec_get_le64(&d, &inodes[i]);
	return dec_status(&d) ? -EBADMSG : 0;
}

uint32_t mon_osd_usage_ratio(const struct mon_osd_usage *u)
{
	if (!u->data_bytes || u->data_avail_bytes >= u->data_bytes)
		return 0;
	return (uint32_t)((u->data_bytes - u->data_avail_bytes) * MAP_RATIO_ONE / u->data_bytes);
}

#define USAGE_LEN_MAX (4 + 4 * 8 + 4 + 8 + 2 + MON_SLOW_WHAT_MAX + 4 + 1 + \
		       MON_UNFOUND_MAX * OBJECT_ID_WIRE_LEN)

static void enc_put_usage(struct enc *e, const struct mon_osd_usage *u)
{
	enc_put_le32(e, u->osd);
	enc_put_le64(e, u->device_bytes);
	enc_put_le64(e, u->used_bytes);
	enc_put_le64(e, u->data_bytes);
	enc_put_le64(e, u->data_avail_bytes);
	enc_put_le32(e, u->slow_ops);
	enc_put_le64(e, u->slow_oldest_ms);
	enc_put_str(e, u->slow_what);
	enc_put_le32(e, u->n_unfound);
	uint8_t listed = u->n_unfound < MON_UNFOUND_MAX ? (uint8_t)u->n_unfound : MON_UNFOUND_MAX;
	enc_put_u8(e, listed);
	for (uint8_t i = 0; i < listed; i++)
		enc_put_object_id(e, &u->unfound[i]);
}

static int dec_get_usage(struct dec *d, struct mon_osd_usage *u)
{
	dec_get_le32(d, &u->osd);
	dec_get_le64(d, &u->device_bytes);
	dec_get_le64(d, &u->used_bytes);
	dec_get_le64(d, &u->data_bytes);
	dec_get_le64(d, &u->data_avail_bytes);
	dec_get_le32(d, &u->slow_ops);
	dec_get_le64(d, &u->slow_oldest_ms);
	dec_get_str(d, u->slow_what, sizeof(u->slow_what));
	uint8_t listed;
	dec_get_le32(d, &u->n_unfound);
	dec_get_u8(d, &listed);
	if (listed > MON_UNFOUND_MAX || listed > u->n_unfound) {
		d->error = -EBADMSG;
		return d->error;
	}
	for (uint8_t i = 0; i < listed; i++)
		dec_get_object_id(d, &u->unfound[i]);
	return dec_status(d);
}

struct msg *mon_osd_stats_encode(uint16_t type, uint64_t request_id,
				 const struct mon_osd_stats *st)
{
	struct msg *msg = msg_new(type, request_id, STATS_LEN + USAGE_LEN_MAX + 4);
	size_t dlen = (size_t)st->n_pgs * PG_STAT_LEN + (size_t)st->n_osds * USAGE_LEN_MAX;
	if (!msg || (dlen && msg_alloc_data(msg, (uint32_t)dlen))) {
		msg_free(msg);
		return NULL;
	}
	struct enc e;
	enc_init(&e, msg->payload, msg->hdr.payload_len);
	enc_put_le32(&e, st->osd);
	enc_put_le64(&e, st->device_bytes);
	enc_put_le64(&e, st->used_bytes);
	enc_put_le64(&e, st->objects);
	enc_put_le64(&e, st->recovered_objects);
	enc_put_le64(&e, st->recovered_bytes);
	enc_put_usage(&e, &st->usage);
	enc_put_le32(&e, st->n_pgs);
	enc_put_le32(&e, st->n_osds);
	msg->hdr.payload_len = (uint32_t)e.pos;
	enc_init(&e, msg->data, dlen);
	for (uint32_t i = 0; i < st->n_pgs; i++) {
		const struct mon_pg_stat *p = &st->pgs[i];
		enc_put_le32(&e, p->pool);
		enc_put_le32(&e, p->pg);
		enc_put_le16(&e, p->state);
		enc_put_le32(&e, p->primary);
		enc_put_le64(&e, p->objects);
		enc_put_le64(&e, p->bytes);
		enc_put_le64(&e, p->degraded);
		enc_put_le64(&e, p->missing);
		enc_put_le64(&e, p->last_scrub_s);
		enc_put_le64(&e, p->last_deep_scrub_s);
		enc_put_le32(&e, p->scrub_done);
		enc_put_le32(&e, p->scrub_total);
		enc_put_le32(&e, p->bad_found);
		enc_put_le32(&e, p->bad_repaired);
		enc_put_le32(&e, p->unfound);
	}
	for (uint32_t i = 0; i < st->n_osds; i++)
		enc_put_usage(&e, &st->osds[i]);
	msg->hdr.data_len = (uint32_t)e.pos;
	return msg;
}

int mon_osd_stats_decode(const struct msg *msg, struct mon_osd_stats *out)
{
	struct dec d;
	memset(out, 0, sizeof(*out));
	dec_init(&d, msg->payload, msg->hdr.payload_len);
	dec_get_le32(&d, &out->osd);
	dec_get_le64(&d, &out->device_bytes);
	dec_get_le64(&d, &out->used_bytes);
	dec_get_le64(&d, &out->objects);
	dec_get_le64(&d, &out->recovered_objects);
	dec_get_le64(&d, &out->recovered_bytes);
	dec_get_usage(&d, &out->usage);
	dec_get_le32(&d, &out->n_pgs);
	dec_get_le32(&d, &out->n_osds);
	if (dec_status(&d) || dec_remaining(&d) ||
	    (uint64_t)out->n_pgs * PG_STAT_LEN > msg->hdr.data_len ||
	    out->n_osds > MAP_MAX_OSDS)
		return -EBADMSG;
	if ((out->n_pgs && !(out->pgs = calloc(out->n_pgs, sizeof(*out->pgs)))) ||
	    (out->n_osds && !(out->osds = calloc(out->n_osds, sizeof(*out->osds))))) {
		mon_osd_stats_free(out);
		return -ENOMEM;
	}
	dec_init(&d, msg->data, msg->hdr.data_len);
	for (uint32_t i = 0; i < out->n_pgs; i++) {
		struct mon_pg_stat *p = &out->pgs[i];
		dec_get_le32(&d, &p->pool);
		dec_get_le32(&d, &p->pg);
		dec_get_le16(&d, &p->state);
		dec_get_le32(&d, &p->primary);
		dec_get_le64(&d, &p->objects);
		dec_get_le64(&d, &p->bytes);
		dec_get_le64(&d, &p->degraded);
		dec_get_le64(&d, &p->missing);
		dec_get_le64(&d, &p->last_scrub_s);
		dec_get_le64(&d, &p->last_deep_scrub_s);
		dec_get_le32(&d, &p->scrub_done);
		dec_get_le32(&d, &p->scrub_total);
		dec_get_le32(&d, &p->bad_found);
		dec_get_le32(&d, &p->bad_repaired);
		dec_get_le32(&d, &p->unfound);
		/* (Every bit of the state names a flag: none to refuse.) */
		_Static_assert(MON_PG_FLAGS_LAST == 1u << 15, "a PG state is 16 flags");
	}
	for (uint32_t i = 0; i < out->n_osds; i++)
		dec_get_usage(&d, &out->osds[i]);
	if (dec_status(&d) || dec_remaining(&d)) {
		mon_osd_stats_free(out);
		return -EBADMSG;
	}
	return 0;
}

void mon_osd_stats_free(struct mon_osd_stats *st)
{
	free(st->pgs);
	free(st->osds);
	st->pgs = NULL;
	st->osds = NULL;
	st->n_pgs = 0;
	st->n_osds = 0;
}
