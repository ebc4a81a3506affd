/* libFuzzer target for everything a monitor decodes from the network or
 * its own store: Raft messages, map commands, whole maps (snapshots and
 * map replies), command replies, map headers, incremental updates, and
 * OSD operations and their replies, lock renewals.
 * Byte 0 picks the
 * decoder; a decoded command is also checked and applied to a map, and a
 * decoded map is encoded again and must decode to the same bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/cluster/map.h"
#include "common/cluster/mon_proto.h"
#include "mon/raft_msg.h"
#include "common/cluster/osd_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct msg *as_msg(uint16_t type, const uint8_t *data, size_t size)
{
	struct msg *m = msg_new(type, 0, size);
	if (m && size)
		memcpy(m->payload, data, size);
	return m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > (1u << 20))
		return 0;
	uint8_t mode = data[0];
	data++;
	size--;
	switch (mode % 7) {
	case 0: {
		static struct raft_entry entries[64];
		struct raft_msg rm;
		struct msg *m = as_msg(MON_MSG_RAFT, data, size);
		if (m)
			mon_raft_decode(m, &rm, entries, 64);
		msg_free(m);
		break;
	}
	case 1: {
		struct map_cmd c;
		if (map_cmd_decode(data, size, &c) == 0) {
			struct cluster_map map;
			uint8_t fsid[16] = { 0 };
			struct map_mon mon = { "a", "127.0.0.1:1" };
			char err[256];
			map_init(&map, fsid, &mon, 1);
			map_apply(&map, &c, err, sizeof(err), NULL);
			map_free(&map);
		}
		break;
	}
	case 2: {
		struct cluster_map map, again;
		memset(&map, 0, sizeof(map));
		memset(&again, 0, sizeof(again));
		if (map_decode(data, size, &map) == 0) {
			uint8_t *buf;
			size_t len;
			if (map_encode(&map, &buf, &len) == 0) {
				if (map_decode(buf, len, &again) != 0)
					abort();
				uint8_t *buf2;
				size_t len2;
				if (map_encode(&again, &buf2, &len2) != 0 || len2 != len ||
				    memcmp(buf, buf2, len) != 0)
					abort();
				free(buf2);
				free(buf);
			}
		}
		map_free(&map);
		map_free(&again);
		break;
	}
	case 3: {
		struct mon_command_reply r;
		struct msg *m = as_msg(MON_MSG_COMMAND_REPLY, data, size);
		if (m)
			mon_command_reply_decode(m, &r);
		msg_free(m);
		break;
	}
	case 5: { /* an incremental update: payload is the first 32 bytes */
		size_t plen = size < 32 ? size : 32;
		struct msg *m = as_msg(MON_MSG_MAP_INC, data, plen);
		if (m && msg_alloc_data(m, (uint32_t)(size - plen)) == 0) {
			memcpy(m->data, data + plen, size - plen);
			struct mon_map_inc inc;
			if (mon_map_inc_decode(m, &inc) == 0) {
				struct cluster_map map;
				uint8_t fsid[16] = { 0 };
				struct map_mon mon = { "a", "127.0.0.1:1" };
				map_init(&map, fsid, &mon, 1);
				map.epoch = inc.from;
				mon_map_inc_apply(&inc, &map);
				map_free(&map);
			}
		}
		msg_free(m);
		break;
	}
	case 6: { /* what an OSD decodes from clients, and clients from OSDs */
		struct osd_op op;
		struct osd_op_reply r;
		struct msg *m = as_msg(OSD_MSG_OP, data, size);
		if (m)
			osd_op_decode(m, &op);
		msg_free(m);
		m = as_msg(OSD_MSG_OP_REPLY, data, size);
		if (m)
			osd_op_reply_decode(m, &r);
		msg_free(m);
		static uint64_t inodes[MON_RENEW_MAX];
		uint64_t client;
		uint32_t n;
		m = as_msg(MON_MSG_LOCK_RENEW, data, size);
		if (m && mon_lock_renew_decode(m, &client, inodes, &n) == 0 && n > MON_RENEW_MAX)
			abort();
		msg_free(m);
		/* A beacon: first 32 bytes payload, the rest PG stats. */
		size_t plen = size < 32 ? size : 32;
		m = as_msg(MON_MSG_OSD_BEACON, data, plen);
		if (m && (size == plen || msg_alloc_data(m, (uint32_t)(size - plen)) == 0)) {
			struct mon_osd_stats st;
			if (size > plen)
				memcpy(m->data, data + plen, size - plen);
			if (mon_osd_stats_decode(m, &st) == 0)
				mon_osd_stats_free(&st);
		}
		msg_free(m);
		break;
	}
	default: {
		struct mon_map_header h;
		struct msg *m = as_msg(MON_MSG_MAP, data, size);
		if (m)
			mon_map_header_decode(m, &h);
		msg_free(m);
		break;
	}
	}
	return 0;
}
