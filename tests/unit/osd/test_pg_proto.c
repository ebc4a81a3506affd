/* Messages between PG members round-trip; anything cut, padded, of the
 * wrong type, with an unknown sub-operation, or with data that does not
 * match is -EBADMSG. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "common/cluster/map.h"
#include "common/crc32c.h"
#include "osd/pg_proto.h"

static void test_query(void **state)
{
	(void)state;
	struct pg_query q = { .pool = 3, .pg = 0x1f, .epoch = 77, .from = 2 }, got;
	struct msg *m = pg_query_encode(9, &q);
	assert_int_equal(pg_query_decode(m, &got), 0);
	assert_true(got.pool == 3 && got.pg == 0x1f && got.epoch == 77 && got.from == 2);
	assert_int_equal(m->hdr.request_id, 9);
	uint32_t len = m->hdr.payload_len;
	for (uint32_t cut = 0; cut < len; cut++) {
		m->hdr.payload_len = cut;
		assert_int_equal(pg_query_decode(m, &got), -EBADMSG);
	}
	m->hdr.payload_len = len;
	m->hdr.type = OSD_MSG_SUBOP;
	assert_int_equal(pg_query_decode(m, &got), -EBADMSG);
	msg_free(m);
}

/* The modes of peering by log: a STAT query carries its objects, a LOG
 * query its marker; entries in any other mode, or an unknown mode, are
 * refused. */
static void test_query_modes(void **state)
{
	(void)state;
	uint8_t entries[2 * PG_INFO_ENTRY_LEN];
	for (uint32_t i = 0; i < 2; i++)
		pg_info_entry_put(entries + i * PG_INFO_ENTRY_LEN,
				  &(struct object_id){ 1, 0x77, 9 + i, 0, OBJECT_SHARD_WHOLE }, 0);
	struct pg_query q = { .pool = 1, .pg = 2, .epoch = 40, .from = 3, .mode = PG_QUERY_STAT,
			      .round = 12, .count = 2, .entries = entries },
			got;
	struct msg *m = pg_query_encode(1, &q);
	assert_int_equal(pg_query_decode(m, &got), 0);
	assert_true(got.mode == PG_QUERY_STAT && got.round == 12 && got.count == 2);
	struct pg_info in = { .count = got.count, .entries = got.entries };
	struct object_id oid;
	uint64_t v;
	pg_info_entry(&in, 1, &oid, &v);
	assert_true(oid.index == 10 && v == 0);
	m->hdr.data_len -= PG_INFO_ENTRY_LEN; /* fewer than counted */
	assert_int_equal(pg_query_decode(m, &got), -EBADMSG);
	m->hdr.data_len += PG_INFO_ENTRY_LEN;
	m->payload[20] = PG_QUERY_LOG; /* the mode byte: entries only with STAT */
	assert_int_equal(pg_query_decode(m, &got), -EBADMSG);
	m->payload[20] = PG_QUERY_MODE_LAST + 1;
	assert_int_equal(pg_query_decode(m, &got), -EBADMSG);
	msg_free(m);
	q = (struct pg_query){ .pool = 1, .pg = 2, .epoch = 40, .from = 3, .mode = PG_QUERY_LOG,
			       .marker = { .primary = 3, .epoch = 38, .number = 7 }, .count = 2, .entries = entries };
	m = pg_query_encode(1, &q); /* (entries are sent with STAT only) */
	assert_int_equal(pg_query_decode(m, &got), 0);
	assert_true(got.marker.primary == 3 && got.marker.epoch == 38 && got.marker.number == 7);
	assert_true(got.count == 0 && m->hdr.data_len == 0);
	msg_free(m);
}

/* A summary carries the log's markers; more than PG_INFO_MARKERS_MAX, or a
 * log answer flag that is not 0 or 1, is refused. */
static void test_info_markers(void **state)
{
	(void)state;
	struct pg_info info = { .pool = 1, .pg = 2, .epoch = 40, .from = 5,
				.mode = PG_QUERY_SUMMARY, .n_markers = 2 },
		       got;
	info.markers[0] = (struct pg_marker){ 5, 40, 2, 3 };
	info.markers[1] = (struct pg_marker){ 5, 40, 1, 0 };
	struct msg *m = pg_info_encode(4, &info);
	assert_int_equal(pg_info_decode(m, &got), 0);
	assert_true(got.mode == PG_QUERY_SUMMARY && got.n_markers == 2);
	assert_true(got.markers[1].primary == 5 && got.markers[1].number == 1);
	assert_true(got.markers[0].chunk == 3 && got.markers[1].chunk == 0);
	uint32_t at = 4 + 4 + 4 + 8 + 4 + 8 + 1 + 1 + 1; /* n_markers */
	m->payload[at] = 3; /* says more than it holds */
	assert_int_equal(pg_info_decode(m, &got), -EBADMSG);
	m->payload[at] = 2;
	m->payload[at - 1] = 2; /* log_ok */
	assert_int_equal(pg_info_decode(m, &got), -EBADMSG);
	msg_free(m);
	info.n_markers = PG_INFO_MARKERS_MAX + 1; /* not encoded */
	m = pg_info_encode(4, &info);
	assert_int_equal(pg_info_decode(m, &got), 0);
	assert_int_equal(got.n_markers, 0);
	msg_free(m);
}

static void test_info(void **state)
{
	(void)state;
	uint8_t entries[3 * PG_INFO_ENTRY_LEN];
	for (uint32_t i = 0; i < 3; i++)
		pg_info_entry_put(entries + i * PG_INFO_ENTRY_LEN,
				  &(struct object_id){ 1, 0x77, i, 0, OBJECT_SHARD_WHOLE }, 100 + i);
	struct pg_info info = { .pool = 1, .pg = 2, .epoch = 40, .from = 5, .complete_epoch = 39,
				.full = MAP_FULL_NEAR, .count = 3, .entries = entries },
		       got;
	struct msg *m = pg_info_encode(4, &info);
	assert_int_equal(pg_info_decode(m, &got), 0);
	assert_true(got.rc == 0 && got.pool == 1 && got.pg == 2 && got.epoch == 40);
	assert_true(got.from == 5 && got.complete_epoch == 39 && got.count == 3);
	assert_int_equal(got.full, MAP_FULL_NEAR);
	for (uint32_t i = 0; i < 3; i++) {
		struct object_id oid;
		uint64_t v;
		pg_info_entry(&got, i, &oid, &v);
		assert_true(oid.pool == 1 && oid.inode == 0x77 && oid.index == i && v == 100 + i);
	}
	/* The count must match the entries; a refusal carries none. */
	m->hdr.data_len -= PG_INFO_ENTRY_LEN;
	assert_int_equal(pg_info_decode(m, &got), -EBADMSG);
	m->hdr.data_len += PG_INFO_ENTRY_LEN;
	m->hdr.payload_len--;
	assert_int_equal(pg_info_decode(m, &got), -EBADMSG);
	msg_free(m);
	info.rc = -ESTALE;
	m = pg_info_encode(4, &info);
	assert_int_equal(pg_info_decode(m, &got), -EBADMSG);
	msg_free(m);
	info.count = 0;
	m = pg_info_encode(4, &info);
	assert_int_equal(pg_info_decode(m, &got), 0);
	assert_int_equal(got.rc, -ESTALE);
	msg_free(m);
	info.rc = 5; /* never positive */
	m = pg_info_encode(4, &info);
	assert_int_equal(pg_info_decode(m, &got), -EBADMSG);
	msg_free(m);
	info.rc = 0;
	info.full = MAP_FULL_FULL + 1; /* no such fullness */
	m = pg_info_encode(4, &info);
	assert_int_equal(pg_info_decode(m, &got), -EBADMSG);
	msg_free(m);
}

static void test_subop(void **state)
{
	(void)state;
	static uint8_t data[8192];
	struct pg_subop op = { .pool = 1, .pg = 2, .epoch = 40, .from = 0, .type = PG_SUB_WRITE,
			       .oid = { .pool = 1, .inode = 0x77, .index = 5 }, .offset = 4096, .len = sizeof(data),
			       .version = 40ull << 32 | 7, .client = 11, .reqid = 12 },
		       got;
	op.written[0] = 0x81;
	struct msg *m = pg_subop_encode(3, &op);
	msg_borrow_data(m, data, sizeof(data), NULL, NULL);
	assert_int_equal(pg_subop_decode(m, &got), 0);
	assert_true(got.pool == 1 && got.pg == 2 && got.epoch == 40 && got.from == 0);
	assert_true(got.type == PG_SUB_WRITE && object_id_equal(&got.oid, &op.oid));
	assert_true(got.offset == 4096 && got.len == sizeof(data) && got.version == op.version);
	assert_true(got.client == 11 && got.reqid == 12 && got.written[0] == 0x81);
	uint32_t len = m->hdr.payload_len;
	for (uint32_t cut = 0; cut < len; cut++) {
		m->hdr.payload_len = cut;
		assert_int_equal(pg_subop_decode(m, &got), -EBADMSG);
	}
	m->hdr.payload_len = len;
	m->hdr.data_len = 4096; /* data shorter than the write says */
	assert_int_equal(pg_subop_decode(m, &got), -EBADMSG);
	m->hdr.data_len = sizeof(data);
	m->payload[20] = PG_SUB_LAST + 1; /* no such sub-operation */
	assert_int_equal(pg_subop_decode(m, &got), -EBADMSG);
	m->data = NULL; /* borrowed: not ours to free */
	msg_free(m);
	/* A removal carries no data; one with data is refused. */
	op.type = PG_SUB_REMOVE;
	op.len = 0;
	m = pg_subop_encode(3, &op);
	assert_int_equal(pg_subop_decode(m, &got), 0);
	msg_borrow_data(m, data, 4096, NULL, NULL);
	assert_int_equal(pg_subop_decode(m, &got), -EBADMSG);
	m->data = NULL;
	msg_free(m);
	/* A chunk read names a shard and a 4 KiB-aligned range, and carries
	 * no data. */
	op.type = PG_SUB_CHUNK_READ;
	op.oid = object_shard(&op.oid, 2);
	op.offset = 8192;
	op.len = 4096;
	m = pg_subop_encode(4, &op);
	assert_int_equal(pg_subop_decode(m, &got), 0);
	assert_true(got.type == PG_SUB_CHUNK_READ && got.oid.shard == 3 && got.len == 4096);
	msg_free(m);
	struct { uint32_t offset, len; uint8_t shard; } bad[] = {
		{ 8192, 0, 3 }, { 100, 4096, 3 }, { 8192, 4000, 3 }, { 8192, 4096, 0 } };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		op.offset = bad[i].offset;
		op.len = bad[i].len;
		op.oid.shard = bad[i].shard;
		m = pg_subop_encode(5, &op);
		assert_int_equal(pg_subop_decode(m, &got), -EBADMSG);
		msg_free(m);
	}
}

/* A PUSH of an object never written to carries no data; a WRITE must. */
static void test_subop_empty_push(void **state)
{
	(void)state;
	struct pg_subop op = { .pool = 1, .pg = 2, .type = PG_SUB_PUSH, .oid = { .pool = 1, .inode = 0x77, .index = 5 },
			       .version = 3 },
		       got;
	struct msg *m = pg_subop_encode(3, &op);
	assert_int_equal(pg_subop_decode(m, &got), 0);
	assert_true(got.type == PG_SUB_PUSH && got.len == 0);
	msg_free(m);
	op.type = PG_SUB_WRITE;
	m = pg_subop_encode(3, &op);
	assert_int_equal(pg_subop_decode(m, &got), -EBADMSG);
	msg_free(m);
}

/* Packing keeps the written chunks in order and nothing else; unpacking
 * gives back the block with zeros where nothing was written, and refuses
 * any other length. */
static void test_chunks_pack(void **state)
{
	(void)state;
	enum { BS = 128 << 10, CHUNKS = BS / 4096 };
	static uint8_t block[BS], orig[BS], back[BS], out[BS];
	uint32_t seed = 7;
	for (int round = 0; round < 200; round++) {
		uint8_t written[PG_WRITTEN_MAP_BYTES] = { 0 };
		uint32_t n = 0;
		for (uint32_t c = 0; c < CHUNKS; c++) {
			seed = seed * 1103515245u + 12345u;
			/* rounds 0 and 1: none and all written */
			bool w = round == 0 ? false : round == 1 ? true : (seed >> 16) % 3 == 0;
			if (w) {
				written[c / 8] |= (uint8_t)(1u << (c % 8));
				n++;
			}
			memset(orig + c * 4096, w ? (int)(c + 1) : 0, 4096);
			orig[c * 4096 + 17] = (uint8_t)round;
			if (!w)
				orig[c * 4096 + 17] = 0;
		}
		memcpy(block, orig, BS);
		bool with_crc = round % 2 || round == 0; /* round 0: nothing written */
		uint32_t crc[CHUNKS], orig_crc[CHUNKS], back_crc[CHUNKS];
		for (uint32_t c = 0; c < CHUNKS; c++)
			crc[c] = orig_crc[c] = crc32c(0, orig + c * 4096, 4096);
		assert_int_equal(pg_chunks_packed_len(written, BS), n * 4096);
		/* out of place, then in place: the same */
		uint32_t out_crc[CHUNKS];
		uint32_t out_len = pg_chunks_pack(out, block, BS, written, out_crc, with_crc ? crc : NULL);
		uint32_t len = pg_chunks_pack(block, block, BS, written, crc, with_crc ? crc : NULL);
		assert_int_equal(len, n * 4096);
		assert_int_equal(out_len, len);
		if (len)
			assert_memory_equal(out, block, len);
		if (with_crc && n)
			assert_memory_equal(out_crc, crc, n * sizeof(crc[0]));
		for (uint32_t c = 0, k = 0; c < CHUNKS; c++)
			if (written[c / 8] & (1u << (c % 8))) {
				assert_memory_equal(block + k * 4096, orig + c * 4096, 4096);
				if (with_crc)
					assert_int_equal(crc[k], orig_crc[c]);
				k++;
			}
		memset(back, 0xee, BS);
		assert_int_equal(pg_chunks_unpack(block, len, written, BS, back, NULL, NULL), 0);
		assert_memory_equal(back, orig, BS);
		if (with_crc) { /* the CRCs of the block: zero chunks' where unwritten */
			memset(back, 0xee, BS);
			assert_int_equal(pg_chunks_unpack(block, len, written, BS, back,
							  len ? crc : NULL, back_crc), 1);
			assert_memory_equal(back, orig, BS);
			assert_memory_equal(back_crc, orig_crc, sizeof(orig_crc));
		}
		/* written chunks without their CRCs: no CRCs for the block */
		if (len)
			assert_int_equal(pg_chunks_unpack(block, len, written, BS, back, NULL,
							  back_crc), 0);
		if (len)
			assert_int_equal(pg_chunks_unpack(block, len - 4096, written, BS, back,
							  NULL, NULL), -EBADMSG);
		if (len < BS)
			assert_int_equal(pg_chunks_unpack(block, len + 4096, written, BS, back,
							  NULL, NULL), -EBADMSG);
	}
}

static void test_subop_reply(void **state)
{
	(void)state;
	struct pg_subop_reply r = { -ENOENT, 99, { 0 }, MAP_FULL_BACKFILL }, got;
	r.written[31] = 0xf0;
	struct msg *m = pg_subop_reply_encode(8, &r);
	assert_int_equal(pg_subop_reply_decode(m, &got), 0);
	assert_true(got.rc == -ENOENT && got.version == 99 && got.written[31] == 0xf0);
	assert_int_equal(got.full, MAP_FULL_BACKFILL);
	m->payload[m->hdr.payload_len - 1] = 4; /* no such fullness */
	assert_int_equal(pg_subop_reply_decode(m, &got), -EBADMSG);
	m->payload[m->hdr.payload_len - 1] = 0;
	m->hdr.payload_len++;
	assert_int_equal(pg_subop_reply_decode(m, &got), -EBADMSG);
	msg_free(m);
	r.rc = 1;
	m = pg_subop_reply_encode(8, &r);
	assert_int_equal(pg_subop_reply_decode(m, &got), -EBADMSG);
	msg_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_query),
		cmocka_unit_test(test_info),
		cmocka_unit_test(test_query_modes),
		cmocka_unit_test(test_info_markers),
		cmocka_unit_test(test_subop),
		cmocka_unit_test(test_subop_reply),
		cmocka_unit_test(test_subop_empty_push),
		cmocka_unit_test(test_chunks_pack),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
