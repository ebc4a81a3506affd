/* The store's on-device formats: layout arithmetic, superblock, metadata
 * entries (torn-write detection, slot order) and journal batches (encode,
 * iterate, reject corruption). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "common/crc32c.h"
#include "osd/store_format.h"

static void test_layout(void **state)
{
	(void)state;
	struct store_layout l;
	assert_int_equal(store_layout_compute(1ULL << 30, 128 << 10, 32 << 20, 512, &l), 0);
	assert_int_equal(l.chunks_per_block, 32);
	assert_int_equal(l.entry_size, 512);
	assert_int_equal(l.journal_offset, 8192);
	assert_int_equal(l.meta_offset, 8192 + (32 << 20));
	assert_int_equal(l.data_offset % (1 << 20), 0);
	assert_true(l.data_offset >= l.meta_offset + l.meta_size);
	assert_true(l.data_offset + l.block_count * l.block_size <= l.device_size);
	/* Not one more block would fit. */
	uint64_t more = l.block_count + 1;
	uint64_t meta = 2 * ((more * l.entry_size + 4095) / 4096 * 4096);
	uint64_t data = (l.meta_offset + meta + (1 << 20) - 1) / (1 << 20) * (1 << 20);
	assert_true(data + more * l.block_size > l.device_size);
	/* 1 MiB blocks need bigger entries; a 4 KiB direct-I/O device too. */
	assert_int_equal(store_entry_size(256, 512), 1536);
	assert_int_equal(store_entry_size(32, 4096), 4096);
	/* Out of range. */
	assert_int_equal(store_layout_compute(1ULL << 30, 96 << 10, 32 << 20, 512, &l), -EINVAL);
	assert_int_equal(store_layout_compute(1ULL << 30, 32 << 10, 32 << 20, 512, &l), -EINVAL);
	assert_int_equal(store_layout_compute(1ULL << 30, 2 << 20, 32 << 20, 512, &l), -EINVAL);
	assert_int_equal(store_layout_compute(1ULL << 30, 128 << 10, 1 << 20, 512, &l), -EINVAL);
	assert_int_equal(store_layout_compute(5 << 20, 128 << 10, 4 << 20, 512, &l), -EINVAL);
}

static void test_superblock(void **state)
{
	(void)state;
	struct store_sb sb = { .format = STORE_FORMAT_VERSION, .generation = 7,
			       .journal_tail = 8192, .journal_seq = 99,
			       .journal_epoch = 3 };
	memset(sb.uuid, 0xab, sizeof(sb.uuid));
	assert_int_equal(store_layout_compute(1ULL << 30, 128 << 10, 32 << 20, 512, &sb.layout), 0);
	uint8_t buf[STORE_SB_SIZE];
	store_sb_encode(&sb, buf);
	struct store_sb out;
	assert_int_equal(store_sb_decode(buf, &out), 0);
	assert_int_equal(out.generation, 7);
	assert_int_equal(out.journal_seq, 99);
	assert_int_equal(out.layout.block_count, sb.layout.block_count);
	assert_int_equal(out.layout.chunks_per_block, 32);
	/* Any flipped bit is caught. */
	for (size_t i = 0; i < 200; i += 7) {
		buf[i] ^= 1;
		assert_int_not_equal(store_sb_decode(buf, &out), 0);
		buf[i] ^= 1;
	}
	/* A consistent CRC over an inconsistent layout is still refused. */
	sb.layout.block_count++;
	store_sb_encode(&sb, buf);
	assert_int_equal(store_sb_decode(buf, &out), -EBADMSG);
	sb.layout.block_count--;
	sb.format = STORE_FORMAT_VERSION + 1;
	store_sb_encode(&sb, buf);
	assert_int_equal(store_sb_decode(buf, &out), -EPROTONOSUPPORT);
}

static void test_entries(void **state)
{
	(void)state;
	uint8_t buf[512];
	struct store_entry e = { .used = true, .seq = 5, .oid = { .pool = 1, .inode = 2, .index = 3 },
				 .version = 77, .block = 12 };
	for (int i = 0; i < 32; i++)
		e.crc[i] = (uint32_t)i * 1000;
	store_bit_set(e.bitmap, 0);
	store_bit_set(e.bitmap, 31);
	store_entry_encode(&e, 32, buf, 512);
	struct store_entry out;
	assert_int_equal(store_entry_decode(buf, 32, 512, 12, &out), 0);
	assert_true(out.used && out.seq == 5 && out.version == 77);
	assert_true(object_id_equal(&out.oid, &e.oid));
	assert_true(store_bit_test(out.bitmap, 31) && !store_bit_test(out.bitmap, 1));
	assert_int_equal(out.crc[31], 31000);
	/* The entry must sit at its own block's slot. */
	assert_int_equal(store_entry_decode(buf, 32, 512, 13, &out), -EBADMSG);
	/* A torn write (half old, half new) is detected. */
	uint8_t torn[512];
	struct store_entry e2 = e;
	e2.seq = 6;
	e2.version = 78;
	store_entry_encode(&e2, 32, torn, 512);
	memcpy(torn + 256, buf + 256, 256);
	assert_int_equal(store_entry_decode(torn, 32, 512, 12, &out), -EBADMSG);
	/* Never written. */
	memset(torn, 0, sizeof(torn));
	assert_int_equal(store_entry_decode(torn, 32, 512, 12, &out), 1);
	/* Serial-number order of slot sequences, across the wrap. */
	assert_true(store_seq_newer(6, 5));
	assert_true(store_seq_newer(0, UINT32_MAX));
	assert_false(store_seq_newer(5, 6));
}

/* Builds a batch of three records with DATA_LEN bytes of data. */
static size_t build_batch(uint8_t *buf, size_t cap, uint64_t epoch, uint64_t seq)
{
	uint32_t crcs[32];
	struct store_record small = { .type = STORE_REC_SMALL, .oid = { .pool = 1, .inode = 5, .index = 6 },
				      .version = 3, .nchunks = 2, .first_chunk = 4,
				      .data_off = 0 };
	struct store_record big = { .type = STORE_REC_BIG, .oid = { .pool = 1, .inode = 5, .index = 7 },
				    .version = 9, .nchunks = 32, .block = 40 };
	struct store_record del = { .type = STORE_REC_DELETE, .oid = { .pool = 1, .inode = 5, .index = 8 },
				    .version = 4 };
	uint32_t header_len = STORE_BATCH_HEADER_LEN +
			      store_record_len(STORE_REC_SMALL, 2, false) +
			      store_record_len(STORE_REC_BIG, 32, false) +
			      store_record_len(STORE_REC_DELETE, 0, false);
	uint32_t space = store_batch_header_space(header_len);
	memset(buf, 0, cap);
	uint8_t *data = buf + space;
	memset(data, 0x5c, 8192);
	crcs[0] = crc32c(0, data, 4096);
	crcs[1] = crc32c(0, data + 4096, 4096);
	struct enc e;
	enc_init(&e, buf, header_len);
	enc_reserve(&e, STORE_BATCH_HEADER_LEN);
	assert_int_equal(store_record_encode(&e, &small, crcs), 0);
	for (int i = 0; i < 32; i++)
		crcs[i] = (uint32_t)i;
	assert_int_equal(store_record_encode(&e, &big, crcs), 0);
	assert_int_equal(store_record_encode(&e, &del, crcs), 0);
	assert_int_equal(e.pos, header_len);
	struct store_batch b = { STORE_BATCH_RECORDS, epoch, seq, header_len, 8192, 3,
				 STORE_BATCH_PREV_DURABLE };
	store_batch_seal(buf, &b);
	return space + 8192;
}

static void test_batches(void **state)
{
	(void)state;
	static uint8_t buf[3 * 4096 + 8192];
	size_t len = build_batch(buf, sizeof(buf), 2, 17);
	struct store_batch b;
	assert_int_equal(store_batch_decode(buf, len, 32, &b), 0);
	assert_int_equal(b.kind, STORE_BATCH_RECORDS);
	assert_true(b.epoch == 2 && b.seq == 17 && b.record_count == 3 && b.data_len == 8192);
	assert_int_equal(b.flags, STORE_BATCH_PREV_DURABLE);
	struct dec d;
	struct store_record r;
	dec_init(&d, buf + STORE_BATCH_HEADER_LEN, b.header_len - STORE_BATCH_HEADER_LEN);
	assert_int_equal(store_record_next(&d, 32, &r), 1);
	assert_int_equal(r.type, STORE_REC_SMALL);
	assert_true(r.first_chunk == 4 && r.nchunks == 2 && r.version == 3);
	assert_int_equal(store_record_crc(&r, 1),
			 crc32c(0, buf + store_batch_header_space(b.header_len) + 4096, 4096));
	assert_int_equal(store_record_next(&d, 32, &r), 1);
	assert_true(r.type == STORE_REC_BIG && r.block == 40 && store_record_crc(&r, 31) == 31);
	assert_int_equal(store_record_next(&d, 32, &r), 1);
	assert_true(r.type == STORE_REC_DELETE && r.oid.index == 8);
	assert_int_equal(store_record_next(&d, 32, &r), 0);
	/* A flipped bit anywhere in the header (records included) fails. */
	for (uint32_t i = 0; i < b.header_len; i += 5) {
		buf[i] ^= 0x10;
		assert_int_not_equal(store_batch_decode(buf, len, 32, &b), 0);
		buf[i] ^= 0x10;
	}
	/* A header claiming more than is readable fails. */
	assert_int_not_equal(store_batch_decode(buf, 100, 32, &b), 0);
	/* Flags this version does not know fail (sealed with a valid CRC). */
	struct store_batch unknown = b;
	unknown.flags = 2;
	store_batch_seal(buf, &unknown);
	assert_int_equal(store_batch_decode(buf, len, 32, &b), -EBADMSG);
	unknown.flags = 0;
	store_batch_seal(buf, &unknown);
	assert_int_equal(store_batch_decode(buf, len, 32, &b), 0);
	assert_int_equal(b.flags, 0);
	/* Records that lie: a small write past the block, a big write of the
	 * wrong size. */
	struct enc e;
	uint8_t rec[128];
	uint32_t crcs[32] = { 0 };
	enc_init(&e, rec, sizeof(rec));
	store_record_encode(&e, &(struct store_record){ .type = STORE_REC_SMALL,
							 .nchunks = 4, .first_chunk = 30 }, crcs);
	dec_init(&d, rec, e.pos);
	assert_int_equal(store_record_next(&d, 32, &r), -EBADMSG);
	enc_init(&e, rec, sizeof(rec));
	store_record_encode(&e, &(struct store_record){ .type = STORE_REC_BIG,
							 .nchunks = 16 }, crcs);
	dec_init(&d, rec, e.pos);
	assert_int_equal(store_record_next(&d, 32, &r), -EBADMSG);
	rec[0] = 9; /* unknown type */
	dec_init(&d, rec, 40);
	assert_int_equal(store_record_next(&d, 32, &r), -EBADMSG);
	/* A wrap marker. */
	struct store_batch w = { STORE_BATCH_WRAP, 2, 18, STORE_BATCH_HEADER_LEN, 0, 0, 0 };
	memset(buf, 0, 4096);
	store_batch_seal(buf, &w);
	assert_int_equal(store_batch_decode(buf, 4096, 32, &b), 0);
	assert_int_equal(b.kind, STORE_BATCH_WRAP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_superblock),
		cmocka_unit_test(test_entries),
		cmocka_unit_test(test_batches),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
