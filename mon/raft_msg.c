/* Raft messages between monitors on the wire (see raft_msg.h). */
#include "raft_msg.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "common/enc.h"

#define RAFT_WIRE_FIXED 96

struct msg *mon_raft_encode(const struct raft_msg *m)
{
	size_t len = RAFT_WIRE_FIXED + m->snap_len;
	for (size_t i = 0; i < m->n_entries; i++)
		len += 28 + m->entries[i].len;
	struct msg *msg = msg_new(MON_MSG_RAFT, 0, len);
	if (!msg)
		return NULL;
	struct enc e;
	enc_init(&e, msg->payload, len);
	enc_put_u8(&e, (uint8_t)m->type);
	enc_put_u8(&e, (uint8_t)m->from);
	enc_put_u8(&e, (uint8_t)m->to);
	enc_put_u8(&e, (uint8_t)(m->granted | m->success << 1));
	enc_put_le64(&e, m->term);
	enc_put_le64(&e, m->last_index);
	enc_put_le64(&e, m->last_term);
	enc_put_le64(&e, m->prev_index);
	enc_put_le64(&e, m->prev_term);
	enc_put_le64(&e, m->commit);
	enc_put_le64(&e, m->match_index);
	enc_put_le64(&e, m->hint);
	enc_put_le64(&e, m->snap_index);
	enc_put_le64(&e, m->snap_term);
	enc_put_le32(&e, (uint32_t)m->n_entries);
	enc_put_le32(&e, (uint32_t)m->snap_len);
	for (size_t i = 0; i < m->n_entries; i++) {
		const struct raft_entry *x = &m->entries[i];
		enc_put_le64(&e, x->term);
		enc_put_le64(&e, x->index);
		enc_put_le32(&e, x->type);
		enc_put_le32(&e, x->len);
		enc_put_le32(&e, 0);
		enc_put_bytes(&e, x->data, x->len);
	}
	enc_put_bytes(&e, m->snap_data, m->snap_len);
	msg->hdr.payload_len = (uint32_t)e.pos;
	return enc_status(&e) ? (msg_free(msg), NULL) : msg;
}

int mon_raft_decode(const struct msg *msg, struct raft_msg *m,
		    struct raft_entry *entries, size_t max)
{
	struct dec d;
	uint8_t type, from, to, flags;
	uint32_t n, snap_len;
	memset(m, 0, sizeof(*m));
	dec_init(&d, msg->payload, msg->hdr.payload_len);
	dec_get_u8(&d, &type);
	dec_get_u8(&d, &from);
	dec_get_u8(&d, &to);
	dec_get_u8(&d, &flags);
	dec_get_le64(&d, &m->term);
	dec_get_le64(&d, &m->last_index);
	dec_get_le64(&d, &m->last_term);
	dec_get_le64(&d, &m->prev_index);
	dec_get_le64(&d, &m->prev_term);
	dec_get_le64(&d, &m->commit);
	dec_get_le64(&d, &m->match_index);
	dec_get_le64(&d, &m->hint);
	dec_get_le64(&d, &m->snap_index);
	dec_get_le64(&d, &m->snap_term);
	dec_get_le32(&d, &n);
	dec_get_le32(&d, &snap_len);
	if (dec_status(&d) || type < RAFT_MSG_VOTE || type > RAFT_MSG_PREVOTE_RESP ||
	    n > max || from >= RAFT_MAX_NODES || to >= RAFT_MAX_NODES)
		return -EBADMSG;
	m->type = (enum raft_msg_type)type;
	m->from = from;
	m->to = to;
	m->granted = flags & 1;
	m->success = flags & 2;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t pad;
		dec_get_le64(&d, &entries[i].term);
		dec_get_le64(&d, &entries[i].index);
		dec_get_le32(&d, &entries[i].type);
		dec_get_le32(&d, &entries[i].len);
		dec_get_le32(&d, &pad);
		entries[i].data = (uint8_t *)dec_take(&d, entries[i].len);
		if (dec_status(&d) || entries[i].len > RAFT_MAX_ENTRY_LEN)
			return -EBADMSG;
	}
	m->entries = entries;
	m->n_entries = n;
	m->snap_data = dec_take(&d, snap_len);
	m->snap_len = snap_len;
	return dec_status(&d) || dec_remaining(&d) ? -EBADMSG : 0;
}
