/* OSD operation messages round-trip, and anything cut, padded, of the
 * wrong type or with data that does not match the operation is -EBADMSG. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "common/cluster/osd_proto.h"

static void test_op(void **state)
{
	(void)state;
	uint8_t data[8192];
	memset(data, 0xab, sizeof(data));
	struct osd_op op = { .client = 1, .reqid = 2, .epoch = 3, .type = OSD_OP_WRITE,
			     .flags = OSD_OP_FLAG_FULL_TRY, .age_ms = 41000,
			     .oid = { .pool = 4, .inode = 5, .index = 6 }, .offset = 4096, .len = sizeof(data) };
	struct msg *m = osd_op_encode(&op, data, sizeof(data));
	assert_non_null(m);
	struct osd_op got;
	assert_int_equal(osd_op_decode(m, &got), 0);
	assert_true(got.client == 1 && got.reqid == 2 && got.epoch == 3);
	assert_true(got.type == OSD_OP_WRITE && got.offset == 4096 && got.len == sizeof(data));
	assert_true(got.flags == OSD_OP_FLAG_FULL_TRY && got.age_ms == 41000);
	assert_true(object_id_equal(&got.oid, &op.oid));
	assert_memory_equal(m->data, data, sizeof(data));
	uint32_t len = m->hdr.payload_len;
	for (uint32_t cut = 0; cut < len; cut++) {
		m->hdr.payload_len = cut;
		assert_int_equal(osd_op_decode(m, &got), -EBADMSG);
	}
	m->hdr.payload_len = len;
	m->hdr.data_len = 4096; /* data shorter than the write says */
	assert_int_equal(osd_op_decode(m, &got), -EBADMSG);
	m->hdr.data_len = sizeof(data);
	m->payload[24] = 9; /* no such operation */
	assert_int_equal(osd_op_decode(m, &got), -EBADMSG);
	m->payload[24] = OSD_OP_WRITE;
	m->payload[25] = 0x80; /* no such flag */
	assert_int_equal(osd_op_decode(m, &got), -EBADMSG);
	m->payload[25] = OSD_OP_FLAG_FULL_TRY;
	m->payload[33] = 1; /* a shard's id: only OSDs name shards */
	assert_int_equal(osd_op_decode(m, &got), -EBADMSG);
	m->payload[33] = 0;
	assert_int_equal(osd_op_decode(m, &got), 0);
	msg_free(m);
	/* A read carries no data. */
	op.type = OSD_OP_READ;
	m = osd_op_encode(&op, NULL, 0);
	assert_int_equal(osd_op_decode(m, &got), 0);
	assert_int_equal(got.type, OSD_OP_READ);
	msg_free(m);
}

static void test_reply(void **state)
{
	(void)state;
	struct osd_op_reply r = { .rc = -ENOENT, .version = 7, .epoch = 8, .size = 9 };
	struct msg *m = osd_op_reply_encode(42, &r);
	struct osd_op_reply got;
	assert_int_equal(osd_op_reply_decode(m, &got), 0);
	assert_true(got.rc == -ENOENT && got.version == 7 && got.epoch == 8 && got.size == 9);
	assert_int_equal(m->hdr.request_id, 42);
	m->hdr.payload_len--;
	assert_int_equal(osd_op_reply_decode(m, &got), -EBADMSG);
	msg_free(m);
	r.rc = 3; /* never positive */
	m = osd_op_reply_encode(1, &r);
	assert_int_equal(osd_op_reply_decode(m, &got), -EBADMSG);
	msg_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_op),
		cmocka_unit_test(test_reply),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
