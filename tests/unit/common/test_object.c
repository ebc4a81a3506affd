/* Object ids: the wire and disk form of (pool, inode, index, snap, shard),
 * where snap shares the index's 64 bits and shard the pool's 32; an id
 * written before shards existed reads as a whole object; shards of one
 * object share its PG and nothing else. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "common/object.h"

static struct object_id round_trip(const struct object_id *o)
{
	uint8_t buf[OBJECT_ID_WIRE_LEN];
	struct enc e;
	enc_init(&e, buf, sizeof(buf));
	assert_int_equal(enc_put_object_id(&e, o), 0);
	assert_int_equal(e.pos, OBJECT_ID_WIRE_LEN);
	struct dec d;
	dec_init(&d, buf, sizeof(buf));
	struct object_id got;
	memset(&got, 0xee, sizeof(got));
	assert_int_equal(dec_get_object_id(&d, &got), 0);
	return got;
}

static void test_wire(void **state)
{
	(void)state;
	struct object_id ids[] = {
		{ 1, 2, 3, 0, 0 },
		{ OBJECT_POOL_MAX, UINT64_MAX, OBJECT_INDEX_MAX, OBJECT_SNAP_MAX, OBJECT_SHARD_MAX },
		{ 7, 9, 11, 5, 1 },
		{ 7, 9, 11, 0, 3 },
	};
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		assert_true(object_id_valid(&ids[i]));
		struct object_id got = round_trip(&ids[i]);
		assert_true(object_id_equal(&got, &ids[i]));
	}
	/* The layout: pool in the low 24 bits of the first le32, shard in the
	 * high 8; an id of before (high byte 0) is whole. */
	uint8_t buf[OBJECT_ID_WIRE_LEN];
	struct enc e;
	enc_init(&e, buf, sizeof(buf));
	struct object_id shard = { 0x123456, 1, 2, 0, 3 };
	enc_put_object_id(&e, &shard);
	assert_int_equal(buf[0], 0x56);
	assert_int_equal(buf[2], 0x12);
	assert_int_equal(buf[3], 3);
	buf[3] = 0;
	struct dec d;
	dec_init(&d, buf, sizeof(buf));
	struct object_id got;
	dec_get_object_id(&d, &got);
	assert_int_equal(got.shard, OBJECT_SHARD_WHOLE);
	assert_int_equal(got.pool, 0x123456);
	/* A pool id past 24 bits does not fit. */
	struct object_id big = { OBJECT_POOL_MAX + 1, 1, 2, 0, 0 };
	assert_false(object_id_valid(&big));
}

static void test_shards(void **state)
{
	(void)state;
	struct object_id whole = { 4, 77, 1234, 0, 0 };
	struct object_id clone = whole;
	clone.snap = 9;
	for (unsigned c = 0; c < 20; c++) {
		struct object_id s = object_shard(&whole, c);
		assert_int_equal(s.shard, c + 1);
		assert_false(object_id_equal(&s, &whole));
		assert_true(object_id_cmp(&whole, &s) < 0);
		struct object_id w = object_whole(&s);
		assert_true(object_id_equal(&w, &whole));
		/* Every shard, and every shard of a clone, is in the object's PG. */
		for (uint32_t pg_num = 1; pg_num < 300; pg_num += 37) {
			assert_int_equal(object_pg(&s, pg_num), object_pg(&whole, pg_num));
			struct object_id cs = object_shard(&clone, c);
			assert_int_equal(object_pg(&cs, pg_num), object_pg(&whole, pg_num));
		}
		struct object_id next = object_shard(&whole, c + 1);
		assert_true(object_id_cmp(&s, &next) < 0);
		assert_true(object_id_hash(&s) != object_id_hash(&next));
		/* A clone's head is the same shard of the head. */
		struct object_id cs = object_shard(&clone, c), h = object_head(&cs);
		assert_true(object_id_equal(&h, &s));
	}
	char buf[80];
	struct object_id s = object_shard(&clone, 2);
	assert_string_equal(object_id_str(&s, buf, sizeof(buf)), "4:4d:4d2@9#2");
	assert_string_equal(object_id_str(&whole, buf, sizeof(buf)), "4:4d:4d2");
	s = object_shard(&whole, 0);
	assert_string_equal(object_id_str(&s, buf, sizeof(buf)), "4:4d:4d2#0");
	assert_string_equal(object_id_str(&s, buf, 6), "4:4d:");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wire),
		cmocka_unit_test(test_shards),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
