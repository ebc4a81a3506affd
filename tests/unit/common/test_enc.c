/* The bounded cursors: round trips, little-endian layout, and errors at
 * and past every end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/enc.h"

static void test_round_trip(void **state)
{
	(void)state;
	uint8_t buf[64];
	struct enc e;
	enc_init(&e, buf, sizeof(buf));
	assert_int_equal(enc_put_u8(&e, 0xab), 0);
	assert_int_equal(enc_put_le16(&e, 0x1234), 0);
	assert_int_equal(enc_put_le32(&e, 0xdeadbeef), 0);
	assert_int_equal(enc_put_le64(&e, 0x0102030405060708ULL), 0);
	assert_int_equal(enc_put_str(&e, "osd.1"), 0);
	assert_int_equal(enc_put_bytes(&e, "xyz", 3), 0);
	assert_int_equal(e.pos, 1 + 2 + 4 + 8 + 2 + 5 + 3);

	struct dec d;
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;
	char s[16];
	char b[3];
	dec_init(&d, buf, e.pos);
	assert_int_equal(dec_get_u8(&d, &u8), 0);
	assert_int_equal(dec_get_le16(&d, &u16), 0);
	assert_int_equal(dec_get_le32(&d, &u32), 0);
	assert_int_equal(dec_get_le64(&d, &u64), 0);
	assert_int_equal(dec_get_str(&d, s, sizeof(s)), 0);
	assert_int_equal(dec_get_bytes(&d, b, 3), 0);
	assert_int_equal(u8, 0xab);
	assert_int_equal(u16, 0x1234);
	assert_int_equal(u32, 0xdeadbeef);
	assert_true(u64 == 0x0102030405060708ULL);
	assert_string_equal(s, "osd.1");
	assert_memory_equal(b, "xyz", 3);
	assert_int_equal(dec_remaining(&d), 0);
}

static void test_little_endian_layout(void **state)
{
	(void)state;
	uint8_t buf[14];
	struct enc e;
	enc_init(&e, buf, sizeof(buf));
	enc_put_le16(&e, 0x0102);
	enc_put_le32(&e, 0x03040506);
	enc_put_le64(&e, 0x0708090a0b0c0d0eULL);
	const uint8_t want[] = { 0x02, 0x01, 0x06, 0x05, 0x04, 0x03, 0x0e,
				 0x0d, 0x0c, 0x0b, 0x0a, 0x09, 0x08, 0x07 };
	assert_memory_equal(buf, want, sizeof(want));
}

static void test_encode_past_end(void **state)
{
	(void)state;
	uint8_t buf[6];
	struct enc e;
	enc_init(&e, buf, sizeof(buf));
	assert_int_equal(enc_put_le32(&e, 1), 0);
	assert_int_equal(enc_put_le32(&e, 2), -EMSGSIZE);
	/* Sticky: later puts fail even if they would fit. */
	assert_int_equal(enc_put_u8(&e, 3), -EMSGSIZE);
	assert_int_equal(enc_status(&e), -EMSGSIZE);
	assert_int_equal(e.pos, 4);
}

static void test_decode_past_end(void **state)
{
	(void)state;
	const uint8_t buf[7] = { 1, 2, 3, 4, 5, 6, 7 };
	for (size_t len = 0; len < 8; len++) {
		struct dec d;
		uint64_t v = 99;
		dec_init(&d, buf, len < 7 ? len : 7);
		assert_int_equal(dec_get_le64(&d, &v), -EBADMSG);
		assert_true(v == 0); /* never a half-read value */
		assert_int_equal(dec_remaining(&d), 0);
	}
	struct dec d;
	uint32_t v32;
	uint8_t v8;
	dec_init(&d, buf, 7);
	assert_int_equal(dec_get_le32(&d, &v32), 0);
	assert_int_equal(dec_get_le32(&d, &v32), -EBADMSG);
	assert_int_equal(dec_get_u8(&d, &v8), -EBADMSG); /* sticky */
}

static void test_string_errors(void **state)
{
	(void)state;
	uint8_t buf[32];
	struct enc e;
	struct dec d;
	char s[4];
	/* Too long for the destination. */
	enc_init(&e, buf, sizeof(buf));
	enc_put_str(&e, "abcd");
	dec_init(&d, buf, e.pos);
	assert_int_equal(dec_get_str(&d, s, sizeof(s)), -EBADMSG);
	assert_string_equal(s, "");
	/* Length beyond the buffer. */
	enc_init(&e, buf, sizeof(buf));
	enc_put_le16(&e, 200);
	enc_put_bytes(&e, "ab", 2);
	dec_init(&d, buf, e.pos);
	assert_int_equal(dec_get_str(&d, s, sizeof(s)), -EBADMSG);
	/* An embedded NUL is refused. */
	enc_init(&e, buf, sizeof(buf));
	enc_put_le16(&e, 2);
	enc_put_bytes(&e, "a\0", 2);
	dec_init(&d, buf, e.pos);
	assert_int_equal(dec_get_str(&d, s, sizeof(s)), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_little_endian_layout),
		cmocka_unit_test(test_encode_past_end),
		cmocka_unit_test(test_decode_past_end),
		cmocka_unit_test(test_string_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
