/* NBD decoding: option headers, GO/INFO data, meta-context queries and
 * requests, with every length that does not add up refused; encoders
 * write the spec's layouts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "client/nbd/nbd_proto.h"

static size_t go_data(uint8_t *b, const char *name, uint16_t n_info)
{
	size_t l = strlen(name), at = 0;
	at += nbd_put_be32(b, (uint32_t)l);
	memcpy(b + at, name, l);
	at += l;
	at += nbd_put_be16(b + at, n_info);
	for (uint16_t i = 0; i < n_info; i++)
		at += nbd_put_be16(b + at, i);
	return at;
}

static void test_go(void **state)
{
	(void)state;
	uint8_t b[128];
	struct nbd_opt_go go;
	size_t n = go_data(b, "vm1", 2);
	assert_int_equal(nbd_opt_go_decode(b, (uint32_t)n, &go), 0);
	assert_string_equal(go.name, "vm1");
	assert_int_equal(go.n_requests, 2);
	assert_int_equal(go.requests[1], 1);
	for (uint32_t cut = 0; cut < n; cut++)
		assert_int_equal(nbd_opt_go_decode(b, cut, &go), -EINVAL);
	assert_int_equal(nbd_opt_go_decode(b, (uint32_t)n + 1, &go), -EINVAL);
	nbd_put_be32(b, 1000); /* name longer than the data */
	assert_int_equal(nbd_opt_go_decode(b, (uint32_t)n, &go), -EINVAL);
	/* A NUL inside a name. */
	nbd_put_be32(b, 3);
	memcpy(b + 4, "a\0b", 3);
	nbd_put_be16(b + 7, 0);
	assert_int_equal(nbd_opt_go_decode(b, 9, &go), -EINVAL);
	static uint8_t big[5000 + 6];
	nbd_put_be32(big, 5000);
	memset(big + 4, 'x', 5000);
	nbd_put_be16(big + 5004, 0);
	assert_int_equal(nbd_opt_go_decode(big, sizeof(big), &go), -EINVAL); /* over 4096 */
}

static void test_meta(void **state)
{
	(void)state;
	uint8_t b[128];
	size_t at = nbd_put_be32(b, 3);
	memcpy(b + at, "vm1", 3);
	at += 3;
	at += nbd_put_be32(b + at, 2);
	at += nbd_put_be32(b + at, 5);
	memcpy(b + at, "qemu:", 5);
	at += 5;
	at += nbd_put_be32(b + at, 15);
	memcpy(b + at, "base:allocation", 15);
	at += 15;
	char name[64];
	bool alloc;
	uint32_t n;
	assert_int_equal(nbd_opt_meta_decode(b, (uint32_t)at, name, sizeof(name), &alloc, &n), 0);
	assert_true(alloc);
	assert_int_equal(n, 2);
	assert_string_equal(name, "vm1");
	for (uint32_t cut = 0; cut < at; cut++)
		assert_int_equal(nbd_opt_meta_decode(b, cut, name, sizeof(name), &alloc, &n), -EINVAL);
	nbd_put_be32(b + 7, 3); /* one query more than there is */
	assert_int_equal(nbd_opt_meta_decode(b, (uint32_t)at, name, sizeof(name), &alloc, &n),
			 -EINVAL);
}

static void test_headers(void **state)
{
	(void)state;
	uint8_t b[64];
	struct nbd_opt_header h;
	nbd_put_be64(b, NBD_IHAVEOPT);
	nbd_put_be32(b + 8, NBD_OPT_GO);
	nbd_put_be32(b + 12, 77);
	assert_int_equal(nbd_opt_header_decode(b, &h), 0);
	assert_true(h.opt == NBD_OPT_GO && h.len == 77);
	b[0] ^= 1;
	assert_int_equal(nbd_opt_header_decode(b, &h), -EPROTO);
	struct nbd_request r;
	nbd_put_be32(b, NBD_REQUEST_MAGIC);
	nbd_put_be16(b + 4, NBD_CMD_FLAG_FUA);
	nbd_put_be16(b + 6, NBD_CMD_WRITE);
	nbd_put_be64(b + 8, 0x1122334455667788ull);
	nbd_put_be64(b + 16, 1ull << 40);
	nbd_put_be32(b + 24, 4096);
	assert_int_equal(nbd_request_decode(b, &r), 0);
	assert_true(r.flags == NBD_CMD_FLAG_FUA && r.type == NBD_CMD_WRITE);
	assert_true(r.handle == 0x1122334455667788ull && r.offset == 1ull << 40 && r.len == 4096);
	b[3] = 0;
	assert_int_equal(nbd_request_decode(b, &r), -EPROTO);
	/* Encoders. */
	assert_int_equal(nbd_put_greeting(b, 3), 18);
	assert_memory_equal(b, "NBDMAGICIHAVEOPT\0\3", 18);
	assert_int_equal(nbd_put_simple_reply(b, NBD_EINVAL, 5), 16);
	assert_int_equal(b[7], 22);
	assert_int_equal(nbd_put_chunk(b, 1, NBD_REPLY_TYPE_OFFSET_HOLE, 9, 12), 20);
	assert_int_equal(b[5], 1);
	assert_int_equal(b[7], 2);
	assert_int_equal(nbd_errno(-ENOSPC), NBD_ENOSPC);
	assert_int_equal(nbd_errno(-EROFS), NBD_EPERM);
	assert_int_equal(nbd_errno(-ETIMEDOUT), NBD_EIO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_go),
		cmocka_unit_test(test_meta),
		cmocka_unit_test(test_headers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
