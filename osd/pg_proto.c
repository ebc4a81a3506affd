/* Encoding of the messages between PG members (see pg_proto.h). */
#include "pg_proto.h"

#include <errno.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/enc.h"
#include "common/cluster/map.h"

#define MARKER_LEN (4 + 8 + 8 + 1)
#define QUERY_LEN (4 + 4 + 8 + 4 + 1 + 8 + MARKER_LEN + 4)
/* Then n_markers markers. */
#define INFO_LEN (4 + 4 + 4 + 8 + 4 + 8 + 1 + 1 + 1 + 1 + 4)
#define SUBOP_LEN (4 + 4 + 8 + 4 + 1 + OBJECT_ID_WIRE_LEN + 4 + 4 + 8 + 8 + 8 + PG_WRITTEN_MAP_BYTES + \
		   OBJECT_ID_WIRE_LEN + 4)
#define SUBOP_REPLY_LEN (4 + 8 + PG_WRITTEN_MAP_BYTES + 1)

static void marker_put(struct enc *e, const struct pg_marker *m)
{
	enc_put_le32(e, m->primary);
	enc_put_le64(e, m->epoch);
	enc_put_le64(e, m->number);
	enc_put_u8(e, m->chunk);
}

static void marker_get(struct dec *d, struct pg_marker *m)
{
	dec_get_le32(d, &m->primary);
	dec_get_le64(d, &m->epoch);
	dec_get_le64(d, &m->number);
	dec_get_u8(d, &m->chunk);
}

struct msg *pg_query_encode(uint64_t request_id, const struct pg_query *q)
{
	struct msg *msg = msg_new(OSD_MSG_PG_QUERY, request_id, QUERY_LEN);
	size_t dlen = q->mode == PG_QUERY_STAT ? (size_t)q->count * PG_INFO_ENTRY_LEN : 0;
	if (!msg || dlen > UINT32_MAX || (dlen && msg_alloc_data(msg, (uint32_t)dlen))) {
		msg_free(msg);
		return NULL;
	}
	struct enc e;
	enc_init(&e, msg->payload, QUERY_LEN);
	enc_put_le32(&e, q->pool);
	enc_put_le32(&e, q->pg);
	enc_put_le64(&e, q->epoch);
	enc_put_le32(&e, q->from);
	enc_put_u8(&e, q->mode);
	enc_put_le64(&e, q->round);
	marker_put(&e, &q->marker);
	enc_put_le32(&e, dlen ? q->count : 0);
	if (dlen)
		memcpy(msg->data, q->entries, dlen);
	return msg;
}

int pg_query_decode(const struct msg *msg, struct pg_query *out)
{
	struct dec d;
	dec_init(&d, msg->payload, msg->hdr.payload_len);
	dec_get_le32(&d, &out->pool);
	dec_get_le32(&d, &out->pg);
	dec_get_le64(&d, &out->epoch);
	dec_get_le32(&d, &out->from);
	dec_get_u8(&d, &out->mode);
	dec_get_le64(&d, &out->round);
	marker_get(&d, &out->marker);
	dec_get_le32(&d, &out->count);
	out->entries = msg->data;
	if (msg->hdr.type != OSD_MSG_PG_QUERY || dec_status(&d) || dec_remaining(&d) ||
	    out->mode > PG_QUERY_MODE_LAST ||
	    (uint64_t)out->count * PG_INFO_ENTRY_LEN != msg->hdr.data_len ||
	    (out->count && out->mode != PG_QUERY_STAT))
		return -EBADMSG;
	return 0;
}

struct msg *pg_info_encode(uint64_t request_id, const struct pg_info *info)
{
	uint32_t markers = info->n_markers <= PG_INFO_MARKERS_MAX ? info->n_markers : 0;
	uint32_t plen = INFO_LEN + markers * MARKER_LEN;
	struct msg *msg = msg_new(OSD_MSG_PG_INFO, request_id, plen);
	size_t dlen = (size_t)info->count * PG_INFO_ENTRY_LEN;
	if (!msg || (dlen && msg_alloc_data(msg, (uint32_t)dlen))) {
		msg_free(msg);
		return NULL;
	}
	struct enc e;
	enc_init(&e, msg->payload, plen);
	enc_put_le32(&e, (uint32_t)info->rc);
	enc_put_le32(&e, info->pool);
	enc_put_le32(&e, info->pg);
	enc_put_le64(&e, info->epoch);
	enc_put_le32(&e, info->from);
	enc_put_le64(&e, info->complete_epoch);
	enc_put_u8(&e, info->full);
	enc_put_u8(&e, info->mode);
	enc_put_u8(&e, info->log_ok);
	enc_put_u8(&e, (uint8_t)markers);
	enc_put_le32(&e, info->count);
	for (unsigned i = 0; i < markers; i++)
		marker_put(&e, &info->markers[i]);
	if (dlen)
		memcpy(msg->data, info->entries, dlen);
	return msg;
}

int pg_info_decode(const struct msg *msg, struct pg_info *out)
{
	struct dec d;
	uint32_t rc;
	dec_init(&d, msg->payload, msg->hdr.payload_len);
	dec_get_le32(&d, &rc);
	dec_get_le32(&d, &out->pool);
	dec_get_le32(&d, &out->pg);
	dec_get_le64(&d, &out->epoch);
	dec_get_le32(&d, &out->from);
	dec_get_le64(&d, &out->complete_epoch);
	dec_get_u8(&d, &out->full);
	dec_get_u8(&d, &out->mode);
	dec_get_u8(&d, &out->log_ok);
	dec_get_u8(&d, &out->n_markers);
	dec_get_le32(&d, &out->count);
	memset(out->markers, 0, sizeof(out->markers));
	for (unsigned i = 0; i < out->n_markers && i < PG_INFO_MARKERS_MAX; i++)
		marker_get(&d, &out->markers[i]);
	out->rc = (int32_t)rc;
	out->entries = msg->data;
	if (msg->hdr.type != OSD_MSG_PG_INFO || dec_status(&d) || dec_remaining(&d) ||
	    out->full > MAP_FULL_FULL || out->mode > PG_QUERY_MODE_LAST || out->log_ok > 1 ||
	    out->n_markers > PG_INFO_MARKERS_MAX ||
	    out->rc > 0 || (uint64_t)out->count * PG_INFO_ENTRY_LEN != msg->hdr.data_len ||
	    (out->rc && out->count))
		return -EBADMSG;
	return 0;
}

void pg_info_entry(const struct pg_info *info, uint32_t i, struct object_id *oid,
		   uint64_t *version)
{
	struct dec d;
	dec_init(&d, info->entries + (size_t)i * PG_INFO_ENTRY_LEN, PG_INFO_ENTRY_LEN);
	dec_get_object_id(&d, oid);
	dec_get_le64(&d, version);
}

void pg_info_entry_put(uint8_t *at, const struct object_id *oid, uint64_t version)
{
	struct enc e;
	enc_init(&e, at, PG_INFO_ENTRY_LEN);
	enc_put_object_id(&e, oid);
	enc_put_le64(&e, version);
}

struct msg *pg_subop_encode(uint64_t request_id, const struct pg_subop *op)
{
	struct msg *msg = msg_new(OSD_MSG_SUBOP, request_id, SUBOP_LEN);
	if (!msg)
		return NULL;
	struct enc e;
	enc_init(&e, msg->payload, SUBOP_LEN);
	enc_put_le32(&e, op->pool);
	enc_put_le32(&e, op->pg);
	enc_put_le64(&e, op->epoch);
	enc_put_le32(&e, op->from);
	enc_put_u8(&e, op->type);
	enc_put_object_id(&e, &op->oid);
	enc_put_le32(&e, op->offset);
	enc_put_le32(&e, op->len);
	enc_put_le64(&e, op->version);
	enc_put_le64(&e, op->client);
	enc_put_le64(&e, op->reqid);
	enc_put_bytes(&e, op->written, PG_WRITTEN_MAP_BYTES);
	enc_put_object_id(&e, &op->end);
	enc_put_le32(&e, op->clone_snap);
	return msg;
}

int pg_subop_decode(const struct msg *msg, struct pg_subop *out)
{
	struct dec d;
	dec_init(&d, msg->payload, msg->hdr.payload_len);
	dec_get_le32(&d, &out->pool);
	dec_get_le32(&d, &out->pg);
	dec_get_le64(&d, &out->epoch);
	dec_get_le32(&d, &out->from);
	dec_get_u8(&d, &out->type);
	dec_get_object_id(&d, &out->oid);
	dec_get_le32(&d, &out->offset);
	dec_get_le32(&d, &out->len);
	dec_get_le64(&d, &out->version);
	dec_get_le64(&d, &out->client);
	dec_get_le64(&d, &out->reqid);
	dec_get_bytes(&d, out->written, PG_WRITTEN_MAP_BYTES);
	dec_get_object_id(&d, &out->end);
	dec_get_le32(&d, &out->clone_snap);
	if (msg->hdr.type != OSD_MSG_SUBOP || dec_status(&d) || dec_remaining(&d) ||
	    out->type < PG_SUB_WRITE || out->type > PG_SUB_LAST)
		return -EBADMSG;
	/* A PUSH carries the object's written chunks: none for an object
	 * never written to. */
	bool has_data = out->type == PG_SUB_WRITE || out->type == PG_SUB_PUSH;
	if (has_data ? msg->hdr.data_len != out->len || (!out->len && out->type == PG_SUB_WRITE)
		     : msg->hdr.data_len != 0)
		return -EBADMSG;
	if (out->type == PG_SUB_CHUNK_READ &&
	    (!out->oid.shard || !out->len || out->offset % 4096 || out->len % 4096))
		return -EBADMSG;
	if (out->type == PG_SUB_CHUNK_COMMIT && !out->oid.shard)
		return -EBADMSG;
	return 0;
}

#define PG_CHUNK CRC32C_CHUNK

static bool chunk_written(const uint8_t *written, uint32_t c)
{
	return written[c / 8] & (1u << (c % 8));
}

uint32_t pg_chunks_packed_len(const uint8_t *written, uint32_t block_size)
{
	uint32_t n = 0;
	for (uint32_t c = 0; c < block_size / PG_CHUNK && c < PG_WRITTEN_MAP_BYTES * 8; c++)
		n += chunk_written(written, c);
	return n * PG_CHUNK;
}

uint32_t pg_chunks_pack(uint8_t *out, const uint8_t *block, uint32_t block_size,
			const uint8_t *written, uint32_t *out_crc, const uint32_t *crc)
{
	uint32_t to = 0;
	for (uint32_t c = 0; c < block_size / PG_CHUNK && c < PG_WRITTEN_MAP_BYTES * 8; c++) {
		if (!chunk_written(written, c))
			continue;
		/* (in place, chunk C is at or after TO: forward moves only) */
		if (out + to != block + c * PG_CHUNK)
			memmove(out + to, block + c * PG_CHUNK, PG_CHUNK);
		if (crc)
			out_crc[to / PG_CHUNK] = crc[c];
		to += PG_CHUNK;
	}
	return to;
}

int pg_chunks_unpack(const uint8_t *packed, uint32_t len, const uint8_t *written,
		     uint32_t block_size, uint8_t *block, const uint32_t *packed_crc,
		     uint32_t *crc)
{
	if (len != pg_chunks_packed_len(written, block_size))
		return -EBADMSG;
	bool with_crc = crc && (packed_crc || !len);
	uint32_t from = 0;
	for (uint32_t c = 0; c < block_size / PG_CHUNK; c++) {
		bool w = c < PG_WRITTEN_MAP_BYTES * 8 && chunk_written(written, c);
		if (w)
			memcpy(block + c * PG_CHUNK, packed + from, PG_CHUNK);
		else
			memset(block + c * PG_CHUNK, 0, PG_CHUNK);
		if (with_crc)
			crc[c] = w ? packed_crc[from / PG_CHUNK] : CRC32C_ZERO_CHUNK;
		from += w ? PG_CHUNK : 0;
	}
	return with_crc;
}

struct msg *pg_subop_reply_encode(uint64_t request_id, const struct pg_subop_reply *r)
{
	struct msg *msg = msg_new(OSD_MSG_SUBOP_REPLY, request_id, SUBOP_REPLY_LEN);
	if (!msg)
		return NULL;
	struct enc e;
	enc_init(&e, msg->payload, SUBOP_REPLY_LEN);
	enc_put_le32(&e, (uint32_t)r->rc);
	enc_put_le64(&e, r->version);
	enc_put_bytes(&e, r->written, PG_WRITTEN_MAP_BYTES);
	enc_put_u8(&e, r->full);
	return msg;
}

int pg_subop_reply_decode(const struct msg *msg, struct pg_subop_reply *out)
{
	struct dec d;
	uint32_t rc;
	dec_init(&d, msg->payload, msg->hdr.payload_len);
	dec_get_le32(&d, &rc);
	dec_get_le64(&d, &out->version);
	dec_get_bytes(&d, out->written, PG_WRITTEN_MAP_BYTES);
	dec_get_u8(&d, &out->full);
	out->rc = (int32_t)rc;
	return msg->hdr.type != OSD_MSG_SUBOP_REPLY || dec_status(&d) || dec_remaining(&d) ||
			       out->rc > 0 || out->full > MAP_FULL_FULL
		       ? -EBADMSG
		       : 0;
}
