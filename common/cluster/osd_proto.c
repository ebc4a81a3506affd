/* Encoding of OSD operations (see osd_proto.h). */
#include "osd_proto.h"

#include <errno.h>
#include <string.h>

#include "common/enc.h"

#define OP_LEN (8 + 8 + 8 + 1 + 1 + 4 + OBJECT_ID_WIRE_LEN + 4 + 4)
#define REPLY_LEN (4 + 8 + 8 + 8)

struct msg *osd_op_encode(const struct osd_op *op, const void *data, uint32_t data_len)
{
	struct msg *msg = msg_new(OSD_MSG_OP, 0, OP_LEN);
	if (!msg || (data_len && msg_alloc_data(msg, data_len))) {
		msg_free(msg);
		return NULL;
	}
	struct enc e;
	enc_init(&e, msg->payload, OP_LEN);
	enc_put_le64(&e, op->client);
	enc_put_le64(&e, op->reqid);
	enc_put_le64(&e, op->epoch);
	enc_put_u8(&e, op->type);
	enc_put_u8(&e, op->flags);
	enc_put_le32(&e, op->age_ms);
	enc_put_object_id(&e, &op->oid);
	enc_put_le32(&e, op->offset);
	enc_put_le32(&e, op->len);
	if (data_len)
		memcpy(msg->data, data, data_len);
	return msg;
}

int osd_op_decode(const struct msg *msg, struct osd_op *out)
{
	struct dec d;
	dec_init(&d, msg->payload, msg->hdr.payload_len);
	dec_get_le64(&d, &out->client);
	dec_get_le64(&d, &out->reqid);
	dec_get_le64(&d, &out->epoch);
	dec_get_u8(&d, &out->type);
	dec_get_u8(&d, &out->flags);
	dec_get_le32(&d, &out->age_ms);
	dec_get_object_id(&d, &out->oid);
	dec_get_le32(&d, &out->offset);
	dec_get_le32(&d, &out->len);
	if (msg->hdr.type != OSD_MSG_OP || dec_status(&d) || dec_remaining(&d) ||
	    out->type < OSD_OP_READ || out->type > OSD_OP_SYNC || (out->flags & ~OSD_OP_FLAGS_ALL) ||
	    out->oid.shard != OBJECT_SHARD_WHOLE) /* a client names whole objects */
		return -EBADMSG;
	if (out->type == OSD_OP_WRITE ? msg->hdr.data_len != out->len : msg->hdr.data_len != 0)
		return -EBADMSG;
	return 0;
}

struct msg *osd_op_reply_encode(uint64_t request_id, const struct osd_op_reply *r)
{
	struct msg *msg = msg_new(OSD_MSG_OP_REPLY, request_id, REPLY_LEN);
	if (!msg)
		return NULL;
	struct enc e;
	enc_init(&e, msg->payload, REPLY_LEN);
	enc_put_le32(&e, (uint32_t)r->rc);
	enc_put_le64(&e, r->version);
	enc_put_le64(&e, r->epoch);
	enc_put_le64(&e, r->size);
	return msg;
}

int osd_op_reply_decode(const struct msg *msg, struct osd_op_reply *out)
{
	struct dec d;
	uint32_t rc;
	dec_init(&d, msg->payload, msg->hdr.payload_len);
	dec_get_le32(&d, &rc);
	dec_get_le64(&d, &out->version);
	dec_get_le64(&d, &out->epoch);
	dec_get_le64(&d, &out->size);
	out->rc = (int32_t)rc;
	return msg->hdr.type != OSD_MSG_OP_REPLY || dec_status(&d) || dec_remaining(&d) ||
			       out->rc > 0
		       ? -EBADMSG
		       : 0;
}
