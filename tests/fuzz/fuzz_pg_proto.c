/* libFuzzer target for what an OSD decodes from its PG peers: queries,
 * their answers (whose entries are then walked), sub-operations and their
 * replies. Byte 0 picks the decoder, bytes 1-4 the data length (the rest
 * of the input is split into payload and data). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "osd/pg_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 5 || size > (1u << 20))
		return 0;
	uint8_t mode = data[0];
	uint32_t dlen;
	memcpy(&dlen, data + 1, 4);
	data += 5;
	size -= 5;
	dlen = size ? dlen % (uint32_t)(size + 1) : 0;
	static const uint16_t types[] = { OSD_MSG_PG_QUERY, OSD_MSG_PG_INFO, OSD_MSG_SUBOP,
					  OSD_MSG_SUBOP_REPLY };
	struct msg *m = msg_new(types[mode % 4], 0, size - dlen);
	if (!m || (dlen && msg_alloc_data(m, dlen))) {
		msg_free(m);
		return 0;
	}
	memcpy(m->payload, data, size - dlen);
	if (dlen)
		memcpy(m->data, data + size - dlen, dlen);
	switch (mode % 4) {
	case 0: {
		struct pg_query q;
		pg_query_decode(m, &q);
		break;
	}
	case 1: {
		struct pg_info info;
		if (pg_info_decode(m, &info) == 0)
			for (uint32_t i = 0; i < info.count; i++) {
				struct object_id oid;
				uint64_t v;
				pg_info_entry(&info, i, &oid, &v);
			}
		break;
	}
	case 2: {
		struct pg_subop op;
		pg_subop_decode(m, &op);
		break;
	}
	default: {
		struct pg_subop_reply r;
		pg_subop_reply_decode(m, &r);
	}
	}
	msg_free(m);
	return 0;
}
