/* The store on a real file through io_uring: mkfs refusals, reads and
 * writes of every shape, versions, deletes, listing, the allocator up to
 * ENOSPC, immediate reuse of freed space, persistence across reopen, and
 * checksum failures (a byte flipped under a stopped store). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "common/crc32c.h"
#include "common/enc.h"
#include "common/log.h"
#include "osd/store_format.h"
#include "osd/store_int.h"
#include "store_test_util.h"

#define BS (64u << 10)

struct fixture {
	struct io_loop *loop;
	char path[64];
	struct store *s;
	uint64_t crc_cache; /* osd_crc_cache_size of every open */
};

static struct store *reopen(struct fixture *f)
{
	struct store_params p;
	char why[256];
	store_params_default(&p);
	p.crc_cache_bytes = f->crc_cache;
	if (f->s)
		store_close(f->s);
	int rc = store_open(f->loop, f->path, &p, &f->s, why, sizeof(why));
	if (rc)
		fail_msg("store_open: %s", why);
	return f->s;
}

static int setup_cache(void **state, uint64_t crc_cache)
{
	struct fixture *f = calloc(1, sizeof(*f));
	f->crc_cache = crc_cache;
	assert_int_equal(io_loop_create_uring(NULL, &f->loop), 0);
	snprintf(f->path, sizeof(f->path), "./test-store-%d.img", getpid());
	unlink(f->path);
	struct store_mkfs_params mp = { .size = 32u << 20, .block_size = BS,
					.journal_size = 4u << 20 };
	char why[256];
	int rc = store_mkfs(f->loop, f->path, &mp, why, sizeof(why));
	if (rc)
		fail_msg("mkfs: %s", why);
	reopen(f);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_cache(state, STORE_CRC_CACHE_DEFAULT);
}

/* No CRC cache: every read of an idle object fetches its entry. */
static int setup_nocache(void **state)
{
	return setup_cache(state, 0);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	store_close(f->s);
	io_loop_destroy(f->loop);
	unlink(f->path);
	free(f);
	return 0;
}

#define OP(f, op, oid, off, len, buf, ver) \
	store_sync_op((f)->s, (f)->loop, NULL, op, oid, off, len, buf, ver)

static struct object_id oid_of(uint64_t inode, uint64_t index)
{
	return (struct object_id){ 1, inode, index, 0, OBJECT_SHARD_WHOLE };
}

static void test_mkfs_refusals(void **state)
{
	struct fixture *f = *state;
	char why[256];
	struct store_mkfs_params mp = { 0 };
	/* An existing store needs --force. */
	assert_int_equal(store_mkfs(f->loop, f->path, &mp, why, sizeof(why)), -EEXIST);
	assert_non_null(strstr(why, "already holds a Basalt store"));
	/* A missing file needs a size. */
	assert_int_equal(store_mkfs(f->loop, "./no-such-store.img", &mp, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "give --size"));
	/* A filesystem is refused too. */
	char fs[] = "./test-store-fs-XXXXXX";
	int fd = mkstemp(fs);
	assert_true(ftruncate(fd, 8 << 20) == 0);
	uint8_t magic[2] = { 0x53, 0xEF };
	assert_int_equal(pwrite(fd, magic, 2, 1080), 2);
	close(fd);
	assert_int_equal(store_mkfs(f->loop, fs, &mp, why, sizeof(why)), -EEXIST);
	assert_non_null(strstr(why, "ext2/3/4"));
	mp.force = true;
	assert_int_equal(store_mkfs(f->loop, fs, &mp, why, sizeof(why)), 0);
	/* Bad parameters get a clear error. */
	mp.block_size = 3000;
	assert_int_equal(store_mkfs(f->loop, fs, &mp, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "power of two"));
	unlink(fs);
	/* Not a store at all. */
	struct store_params p;
	struct store *s;
	store_params_default(&p);
	fd = open(fs, O_CREAT | O_RDWR, 0600);
	assert_true(ftruncate(fd, 1 << 20) == 0);
	close(fd);
	assert_int_equal(store_open(f->loop, fs, &p, &s, why, sizeof(why)), -EBADMSG);
	assert_non_null(strstr(why, "not a Basalt store"));
	unlink(fs);
}

static void test_write_read_shapes(void **state)
{
	struct fixture *f = *state;
	uint8_t *w = aligned_buf(BS), *r = aligned_buf(BS);
	struct object_id a = oid_of(7, 0);
	uint64_t v = 0;
	/* Missing object. */
	assert_int_equal(OP(f, STORE_OP_READ, a, 0, 4096, r, NULL), -ENOENT);
	/* A small write in the middle; the rest reads as zeros. */
	pattern_fill(w, 8192, 1, 3);
	assert_int_equal(OP(f, STORE_OP_WRITE, a, 3 * 4096, 8192, w, &v), 0);
	assert_int_equal(v, 1);
	memset(r, 0xee, BS);
	assert_int_equal(OP(f, STORE_OP_READ, a, 0, BS, r, &v), 0);
	assert_int_equal(v, 1);
	for (uint32_t c = 0; c < BS / 4096; c++) {
		if (c == 3 || c == 4)
			assert_memory_equal(r + c * 4096, w + (c - 3) * 4096, 4096);
		else
			assert_int_equal(pattern_tag(r + c * 4096), 0);
	}
	/* A whole-block write replaces everything. */
	pattern_fill(w, BS, 2, 0);
	v = 0;
	assert_int_equal(OP(f, STORE_OP_WRITE, a, 0, BS, w, &v), 0);
	assert_int_equal(v, 2);
	assert_int_equal(OP(f, STORE_OP_READ, a, 0, BS, r, NULL), 0);
	assert_memory_equal(r, w, BS);
	/* A small overwrite on top of the block, read partially. */
	uint8_t *w2 = aligned_buf(4096);
	pattern_fill(w2, 4096, 3, 5);
	assert_int_equal(OP(f, STORE_OP_WRITE, a, 5 * 4096, 4096, w2, NULL), 0);
	assert_int_equal(OP(f, STORE_OP_READ, a, 4 * 4096, 3 * 4096, r, NULL), 0);
	assert_memory_equal(r, w + 4 * 4096, 4096);
	assert_memory_equal(r + 4096, w2, 4096);
	assert_memory_equal(r + 8192, w + 6 * 4096, 4096);
	/* After a checkpoint (data in place) the same bytes read back. */
	store_sync_checkpoint(f->s, f->loop, NULL);
	assert_int_equal(OP(f, STORE_OP_READ, a, 4 * 4096, 3 * 4096, r, NULL), 0);
	assert_memory_equal(r + 4096, w2, 4096);
	/* ...and after reopening. */
	reopen(f);
	assert_int_equal(OP(f, STORE_OP_READ, a, 0, BS, r, &v), 0);
	assert_int_equal(v, 3);
	assert_memory_equal(r, w, 5 * 4096);
	assert_memory_equal(r + 5 * 4096, w2, 4096);
	free(w);
	free(w2);
	free(r);
}

/* A write with its chunk CRCs carried in (store_req.crc, as the OSD
 * passes the messenger's). */
static int write_carried(struct fixture *f, struct object_id oid, uint32_t off, uint32_t len,
			 void *buf, const uint32_t *crc)
{
	struct sync_req sr = { .req = { .op = STORE_OP_WRITE, .oid = oid, .offset = off,
					.len = len, .buf = buf, .crc = crc } };
	return store_sync_submit(f->s, f->loop, NULL, &sr);
}

static void chunk_crcs(const uint8_t *buf, uint32_t len, uint32_t *crc /* out */)
{
	for (uint32_t i = 0; i < len / 4096; i++)
		crc[i] = crc32c(0, buf + i * 4096, 4096);
}

/* Carried CRCs are what the store records, for a journaled small write
 * and a redirected whole-block one: right ones read back (also after a
 * checkpoint and a reopen, whose replay checks the journal's data
 * against them); a wrong one fails the reads of that chunk, so a wrong
 * CRC carried by the OSD would show in any test that reads its writes
 * back. (Sanitizer builds assert at the write instead.) */
static void test_write_carried_crcs(void **state)
{
	struct fixture *f = *state;
	uint8_t *w = aligned_buf(BS), *r = aligned_buf(BS);
	uint32_t crc[BS / 4096];
	struct object_id small = oid_of(50, 0), whole = oid_of(50, 1);
	pattern_fill(w, 3 * 4096, 1, 2);
	chunk_crcs(w, 3 * 4096, crc);
	assert_int_equal(write_carried(f, small, 2 * 4096, 3 * 4096, w, crc), 0);
	assert_int_equal(OP(f, STORE_OP_READ, small, 2 * 4096, 3 * 4096, r, NULL), 0);
	assert_memory_equal(r, w, 3 * 4096);
	uint8_t *wb = aligned_buf(BS);
	pattern_fill(wb, BS, 2, 0);
	chunk_crcs(wb, BS, crc);
	assert_int_equal(write_carried(f, whole, 0, BS, wb, crc), 0);
	assert_int_equal(OP(f, STORE_OP_READ, whole, 0, BS, r, NULL), 0);
	assert_memory_equal(r, wb, BS);
	reopen(f); /* replays the small write from the journal */
	assert_int_equal(store_report(f->s)->torn_batches, 0);
	assert_int_equal(OP(f, STORE_OP_READ, small, 2 * 4096, 3 * 4096, r, NULL), 0);
	assert_memory_equal(r, w, 3 * 4096);
	store_sync_checkpoint(f->s, f->loop, NULL);
	reopen(f);
	assert_int_equal(OP(f, STORE_OP_READ, small, 2 * 4096, 3 * 4096, r, NULL), 0);
	assert_memory_equal(r, w, 3 * 4096);
	assert_int_equal(OP(f, STORE_OP_READ, whole, 0, BS, r, NULL), 0);
	assert_memory_equal(r, wb, BS);
	struct store_usage u;
	store_usage(f->s, &u);
	assert_int_equal(u.csum_errors, 0);
#ifndef BASALT_CHECK_CARRIED_CRC
	/* A wrong carried CRC is recorded as given: its chunk fails once in
	 * the block (reads from the journal are of memory, unchecked). */
	chunk_crcs(w, 3 * 4096, crc);
	crc[1] ^= 1;
	assert_int_equal(write_carried(f, small, 2 * 4096, 3 * 4096, w, crc), 0);
	store_sync_checkpoint(f->s, f->loop, NULL);
	assert_int_equal(OP(f, STORE_OP_READ, small, 2 * 4096, 4096, r, NULL), 0);
	assert_int_equal(OP(f, STORE_OP_READ, small, 3 * 4096, 4096, r, NULL), -EBADMSG);
	chunk_crcs(wb, BS, crc);
	crc[BS / 4096 - 1] ^= 0x100;
	assert_int_equal(write_carried(f, whole, 0, BS, wb, crc), 0);
	assert_int_equal(OP(f, STORE_OP_READ, whole, 0, 4096, r, NULL), 0);
	assert_int_equal(OP(f, STORE_OP_READ, whole, 0, BS, r, NULL), -EBADMSG);
	store_usage(f->s, &u);
	assert_int_equal(u.csum_errors, 2);
#endif
	free(w);
	free(wb);
	free(r);
}

/* A read with crc_out, of the whole object or a part. */
static void read_crcs(struct fixture *f, struct object_id oid, uint32_t off, uint32_t len,
		      uint8_t *buf, uint32_t *crc)
{
	struct sync_req sr = { .req = { .op = STORE_OP_READ, .oid = oid, .offset = off,
					.len = len, .buf = buf, .crc_out = crc } };
	assert_int_equal(store_sync_submit(f->s, f->loop, NULL, &sr), 0);
}

/* Every chunk a read returns gets its CRC in crc_out: from the block
 * (checked), from the journal (the record's), zeros (never written),
 * hot or idle (CRCs fetched from the entry). */
static void check_read_crcs(struct fixture *f, struct object_id oid)
{
	uint8_t *r = aligned_buf(BS);
	uint32_t crc[BS / 4096 + 1], want[BS / 4096];
	const uint32_t ranges[][2] = { { 0, BS }, { 4096, 3 * 4096 }, { BS - 4096, 4096 } };
	for (size_t k = 0; k < 3; k++) {
		uint32_t off = ranges[k][0], len = ranges[k][1];
		crc[len / 4096] = 0x5a5a5a5a;
		read_crcs(f, oid, off, len, r, crc);
		chunk_crcs(r, len, want);
		assert_memory_equal(crc, want, len / 4096 * sizeof(uint32_t));
		assert_int_equal(crc[len / 4096], 0x5a5a5a5a);
	}
	free(r);
}

static void test_read_crcs(void **state)
{
	struct fixture *f = *state;
	uint8_t *w = aligned_buf(BS);
	struct object_id a = oid_of(51, 0);
	pattern_fill(w, 2 * 4096, 1, 1); /* journaled chunks 1-2, zeros around */
	assert_int_equal(OP(f, STORE_OP_WRITE, a, 4096, 2 * 4096, w, NULL), 0);
	check_read_crcs(f, a);
	store_sync_checkpoint(f->s, f->loop, NULL); /* in the block now */
	check_read_crcs(f, a);
	pattern_fill(w, 4096, 2, 2); /* one journaled chunk over the block */
	assert_int_equal(OP(f, STORE_OP_WRITE, a, 2 * 4096, 4096, w, NULL), 0);
	check_read_crcs(f, a);
	pattern_fill(w, BS, 3, 0); /* a whole block, redirected */
	assert_int_equal(OP(f, STORE_OP_WRITE, a, 0, BS, w, NULL), 0);
	check_read_crcs(f, a);
	reopen(f); /* idle: the CRCs come from the entry (or the cache) */
	check_read_crcs(f, a);
	free(w);
}

static void test_bad_requests(void **state)
{
	struct fixture *f = *state;
	uint8_t *buf = aligned_buf(BS + 4096);
	struct object_id a = oid_of(8, 0);
	assert_int_equal(OP(f, STORE_OP_WRITE, a, 100, 4096, buf, NULL), -EINVAL);
	assert_int_equal(OP(f, STORE_OP_WRITE, a, 0, 1000, buf, NULL), -EINVAL);
	assert_int_equal(OP(f, STORE_OP_WRITE, a, 0, 0, buf, NULL), -EINVAL);
	assert_int_equal(OP(f, STORE_OP_WRITE, a, BS - 4096, 8192, buf, NULL), -EINVAL);
	assert_int_equal(OP(f, STORE_OP_WRITE, a, 0, 4096, buf + 1, NULL), -EINVAL);
	assert_int_equal(OP(f, STORE_OP_READ, a, 0, 4096, buf, NULL), -ENOENT);
	assert_int_equal(OP(f, STORE_OP_DELETE, a, 0, 0, NULL, NULL), -ENOENT);
	/* Versions must grow. */
	uint64_t v = 10;
	assert_int_equal(OP(f, STORE_OP_WRITE, a, 0, 4096, buf, &v), 0);
	v = 10;
	assert_int_equal(OP(f, STORE_OP_WRITE, a, 0, 4096, buf, &v), -ESTALE);
	v = 9;
	assert_int_equal(OP(f, STORE_OP_DELETE, a, 0, 0, NULL, &v), -ESTALE);
	v = 0;
	assert_int_equal(OP(f, STORE_OP_WRITE, a, 0, 4096, buf, &v), 0);
	assert_int_equal(v, 11);
	assert_int_equal(OP(f, STORE_OP_READ, a, 0, 4096, buf + 1, NULL), -EINVAL);
	free(buf);
}

static int count_cb(const struct store_object_info *info, void *arg)
{
	(void)info;
	(*(int *)arg)++;
	return 0;
}

static void test_delete_list_stat(void **state)
{
	struct fixture *f = *state;
	uint8_t *buf = aligned_buf(BS);
	for (uint64_t i = 0; i < 10; i++) {
		pattern_fill(buf, BS, 100 + i, 0);
		assert_int_equal(OP(f, STORE_OP_WRITE, oid_of(20, i), 0, i % 2 ? BS : 4096, buf, NULL), 0);
	}
	assert_int_equal(OP(f, STORE_OP_WRITE, oid_of(21, 0), 0, 4096, buf, NULL), 0);
	int n = 0;
	struct store_list_filter lf = { .pool = 1, .inode = 20 };
	store_list(f->s, &lf, count_cb, &n);
	assert_int_equal(n, 10);
	n = 0;
	lf.any_inode = true;
	store_list(f->s, &lf, count_cb, &n);
	assert_int_equal(n, 11);
	/* By placement group: the PGs partition the objects. */
	int total = 0;
	for (uint32_t pg = 0; pg < 4; pg++) {
		n = 0;
		struct store_list_filter pf = { .pool = 1, .any_inode = true, .pg_num = 4, .pg = pg };
		store_list(f->s, &pf, count_cb, &n);
		total += n;
	}
	assert_int_equal(total, 11);
	struct store_object_info info;
	assert_int_equal(store_stat(f->s, &(struct object_id){ 1, 20, 1, 0, OBJECT_SHARD_WHOLE }, &info), 0);
	assert_int_equal(info.written_bytes, BS);
	assert_true(info.has_block);
	assert_int_equal(store_stat(f->s, &(struct object_id){ 1, 20, 2, 0, OBJECT_SHARD_WHOLE }, &info), 0);
	assert_int_equal(info.written_bytes, 4096);
	/* Deleting frees the block at once, before any flush. */
	struct store_usage u0, u1;
	store_usage(f->s, &u0);
	assert_int_equal(OP(f, STORE_OP_DELETE, oid_of(20, 1), 0, 0, NULL, NULL), 0);
	store_usage(f->s, &u1);
	assert_int_equal(u1.blocks_used, u0.blocks_used - 1);
	assert_int_equal(u1.blocks_free, u0.blocks_free + 1);
	assert_int_equal(store_stat(f->s, &(struct object_id){ 1, 20, 1, 0, OBJECT_SHARD_WHOLE }, &info), -ENOENT);
	assert_int_equal(OP(f, STORE_OP_READ, oid_of(20, 1), 0, 4096, buf, NULL), -ENOENT);
	/* Deleted objects stay deleted after a reopen. */
	reopen(f);
	assert_int_equal(OP(f, STORE_OP_READ, oid_of(20, 1), 0, 4096, buf, NULL), -ENOENT);
	assert_int_equal(OP(f, STORE_OP_READ, oid_of(20, 3), 0, 4096, buf, NULL), 0);
	free(buf);
}

/* A crash: the loop goes first, then the store without any I/O. */
static void crash_reopen(struct fixture *f)
{
	io_loop_destroy(f->loop);
	store_forget(f->s);
	f->s = NULL;
	assert_int_equal(io_loop_create_uring(NULL, &f->loop), 0);
	reopen(f);
}

/* Sums store_pg_usage over PG_NUM groups of pool 1. */
static void pg_usage_sum(struct store *s, uint32_t pg_num, uint64_t *objects, uint64_t *bytes)
{
	*objects = *bytes = 0;
	for (uint32_t pg = 0; pg < pg_num; pg++) {
		uint64_t o, b;
		assert_int_equal(store_pg_usage(s, 1, pg_num, pg, &o, &b), 0);
		*objects += o;
		*bytes += b;
	}
}

/* Per-PG counts follow writes, small writes into new chunks, overwrites,
 * deletes and a reopen (replay and metadata); the PG's own records count
 * for nothing; a listing of one PG visits only that PG's objects; a new
 * pg_num sorts the pool once. */
static void test_pg_usage(void **state)
{
	struct fixture *f = *state;
	uint8_t *buf = aligned_buf(BS);
	pattern_fill(buf, BS, 5, 0);
	for (uint64_t i = 0; i < 16; i++)
		assert_int_equal(OP(f, STORE_OP_WRITE, oid_of(30, i), 0, i % 4 ? 8192 : BS, buf, NULL), 0);
	/* A small write into chunks not yet written, and an overwrite. */
	assert_int_equal(OP(f, STORE_OP_WRITE, oid_of(30, 1), 16384, 4096, buf, NULL), 0);
	assert_int_equal(OP(f, STORE_OP_WRITE, oid_of(30, 2), 0, 4096, buf, NULL), 0);
	assert_int_equal(OP(f, STORE_OP_DELETE, oid_of(30, 3), 0, 0, NULL, NULL), 0);
	struct object_id meta = { 1, OBJECT_INODE_PG_META, 0, 0, OBJECT_SHARD_WHOLE };
	assert_int_equal(OP(f, STORE_OP_WRITE, meta, 0, 4096, buf, NULL), 0);
	/* 15 objects: 4 whole (0, 4, 8, 12), 11 of 2 chunks, one with a third. */
	uint64_t want_bytes = 4ull * BS + 11 * 8192 + 4096, objects, bytes;
	uint64_t u;
	assert_int_equal(store_pg_usage(f->s, 1, 0, 0, &objects, &u), -EINVAL);
	assert_int_equal(store_pg_usage(f->s, 1, 8, 8, &objects, &u), -EINVAL);
	pg_usage_sum(f->s, 8, &objects, &bytes);
	assert_int_equal(objects, 15);
	assert_int_equal(bytes, want_bytes);
	struct store_usage su;
	store_usage(f->s, &su);
	assert_int_equal(su.objects, 16); /* the record is an object of the store */
	/* Sorted once for pg_num 8: the 15 and the record (the deleted
	 * object left the index). */
	assert_int_equal(su.pg_sorted_objects, 16);
	/* Listing one PG visits its objects only. */
	uint64_t listed = su.listed_objects, in_pg3 = 0;
	assert_int_equal(store_pg_usage(f->s, 1, 8, 3, &in_pg3, &u), 0);
	int n = 0;
	struct store_list_filter pf = { .pool = 1, .any_inode = true, .pg_num = 8, .pg = 3 };
	store_list(f->s, &pf, count_cb, &n);
	assert_int_equal((uint64_t)n, in_pg3);
	store_usage(f->s, &su);
	assert_true(su.listed_objects - listed <= in_pg3 + 1); /* + the record, if it sorts there */
	/* Durable and counted again from the journal after a crash, then
	 * from the metadata. */
	crash_reopen(f);
	assert_true(store_report(f->s)->replayed_records > 0);
	pg_usage_sum(f->s, 8, &objects, &bytes);
	assert_int_equal(objects, 15);
	assert_int_equal(bytes, want_bytes);
	store_sync_checkpoint(f->s, f->loop, NULL);
	reopen(f);
	pg_usage_sum(f->s, 4, &objects, &bytes);
	assert_int_equal(objects, 15);
	assert_int_equal(bytes, want_bytes);
	store_check(f->s);
	free(buf);
}

/* Versions only grow while an object lives; after a delete its next
 * incarnation may start anywhere (replication rolls a replica back to the
 * authoritative version this way), and that survives replay and flush. */
static void test_versions_after_delete(void **state)
{
	struct fixture *f = *state;
	uint8_t *buf = aligned_buf(BS), *back = aligned_buf(BS);
	struct object_id o = oid_of(30, 0);
	uint64_t v = 10;
	pattern_fill(buf, BS, 1, 0);
	assert_int_equal(OP(f, STORE_OP_WRITE, o, 0, BS, buf, &v), 0);
	v = 9;
	assert_int_equal(OP(f, STORE_OP_WRITE, o, 0, 4096, buf, &v), -ESTALE);
	v = 0;
	assert_int_equal(OP(f, STORE_OP_DELETE, o, 0, 0, NULL, &v), 0);
	assert_int_equal(v, 11);
	v = 0;
	assert_int_equal(OP(f, STORE_OP_DELETE, o, 0, 0, NULL, &v), -ENOENT);
	/* Delete and a lower write queued back to back, as recovery does. */
	struct sync_req w12 = { .req = { .op = STORE_OP_WRITE, .oid = o, .len = BS, .buf = buf,
					 .version = 12, .done = sync_req_done } };
	struct sync_req d2 = { .req = { .op = STORE_OP_DELETE, .oid = o, .done = sync_req_done } };
	pattern_fill(buf, BS, 2, 0);
	store_submit(f->s, &w12.req);
	store_submit(f->s, &d2.req);
	uint8_t *buf3 = aligned_buf(BS);
	pattern_fill(buf3, BS, 3, 0);
	struct sync_req low = { .req = { .op = STORE_OP_WRITE, .oid = o, .len = BS, .buf = buf3,
					 .version = 3, .done = sync_req_done } };
	store_submit(f->s, &low.req);
	while (!w12.done || !d2.done || !low.done)
		io_loop_run_once(f->loop, -1);
	assert_int_equal(w12.res, 0);
	assert_int_equal(d2.res, 0);
	assert_int_equal(low.res, 0);
	v = 0;
	assert_int_equal(OP(f, STORE_OP_READ, o, 0, BS, back, &v), 0);
	assert_int_equal(v, 3);
	assert_memory_equal(back, buf3, BS);
	v = 3;
	assert_int_equal(OP(f, STORE_OP_WRITE, o, 0, 4096, buf, &v), -ESTALE);
	v = 0;
	assert_int_equal(OP(f, STORE_OP_WRITE, o, 4096, 4096, buf, &v), 0);
	assert_int_equal(v, 4);
	/* Replayed from the journal after a crash, and after a checkpoint. */
	crash_reopen(f);
	struct store_object_info info;
	assert_int_equal(store_stat(f->s, &o, &info), 0);
	assert_int_equal(info.version, 4);
	assert_int_equal(OP(f, STORE_OP_READ, o, 0, 4096, back, NULL), 0);
	assert_memory_equal(back, buf3, 4096);
	assert_int_equal(OP(f, STORE_OP_READ, o, 4096, 4096, back, NULL), 0);
	assert_memory_equal(back, buf, 4096);
	v = 0;
	assert_int_equal(OP(f, STORE_OP_DELETE, o, 0, 0, NULL, &v), 0);
	v = 1;
	assert_int_equal(OP(f, STORE_OP_WRITE, o, 0, 4096, buf, &v), 0);
	reopen(f);
	assert_int_equal(store_stat(f->s, &o, &info), 0);
	assert_int_equal(info.version, 1);
	crash_reopen(f);
	assert_int_equal(store_stat(f->s, &o, &info), 0);
	assert_int_equal(info.version, 1);
	free(buf);
	free(buf3);
	free(back);
}

/* A masked whole-object write (how replication copies an object) marks
 * only the chunks its map names as written; reads report that map, and
 * it survives replay. */
static void test_masked_copy(void **state)
{
	struct fixture *f = *state;
	uint8_t *buf = aligned_buf(BS), *back = aligned_buf(BS);
	struct object_id o = oid_of(31, 0);
	pattern_fill(buf, BS, 7, 0);
	struct sync_req w = { .req = { .op = STORE_OP_WRITE, .oid = o, .len = BS, .buf = buf,
				       .version = 5, .masked = true, .done = sync_req_done } };
	w.req.written[0] = 0x05; /* chunks 0 and 2 */
	store_submit(f->s, &w.req);
	while (!w.done)
		io_loop_run_once(f->loop, -1);
	assert_int_equal(w.res, 0);
	for (int pass = 0; pass < 2; pass++) {
		struct store_object_info info;
		assert_int_equal(store_stat(f->s, &o, &info), 0);
		assert_int_equal(info.written_bytes, 8192);
		assert_int_equal(info.version, 5);
		struct sync_req r = { .req = { .op = STORE_OP_READ, .oid = o, .len = BS, .buf = back,
					       .done = sync_req_done } };
		store_submit(f->s, &r.req);
		while (!r.done)
			io_loop_run_once(f->loop, -1);
		assert_int_equal(r.res, 0);
		assert_int_equal(r.req.written[0], 0x05);
		assert_memory_equal(back, buf, 4096);
		assert_memory_equal(back + 8192, buf + 8192, 4096);
		for (uint32_t i = 4096; i < 8192; i++)
			assert_int_equal(back[i], 0); /* never written: zeros */
		crash_reopen(f);
	}
	free(buf);
	free(back);
}

/* A clone made without copying (store_req.clone_snap): a whole-block
 * write and then a delete of a head each give the head's block to a
 * clone in the same batch; the clone reads what the head held, at its
 * version; the blocks used are exactly one per object; all of it
 * survives a crash (replay) and a clean reopen (entries rewritten). */
static void test_clone_takeover(void **state)
{
	struct fixture *f = *state;
	uint8_t *a = aligned_buf(BS), *b = aligned_buf(BS), *back = aligned_buf(BS);
	struct object_id head = oid_of(40, 3), c1 = head, c2 = head;
	c1.snap = 1;
	c2.snap = 2;
	uint64_t v = 7;
	pattern_fill(a, BS, 1, 0);
	pattern_fill(b, BS, 2, 0);
	assert_int_equal(OP(f, STORE_OP_WRITE, head, 0, BS, a, &v), 0);
	struct store_usage u0;
	store_usage(f->s, &u0);
	/* A small write leaves journaled data over the block: not movable
	 * until it is in place. */
	v = 8;
	assert_int_equal(OP(f, STORE_OP_WRITE, head, 0, 4096, a, &v), 0);
	assert_false(store_clone_movable(f->s, &head, 1));
	bool done = false;
	store_checkpoint(f->s, checkpoint_done_flag, &done);
	while (!done)
		io_loop_run_once(f->loop, -1);
	assert_true(store_clone_movable(f->s, &head, 1));
	assert_false(store_clone_movable(f->s, &c1, 1)); /* not a head */
	/* Whole-block write: clone 1 takes the block, the head a new one. */
	struct sync_req w = { .req = { .op = STORE_OP_WRITE, .oid = head, .len = BS, .buf = b,
				       .version = 9, .clone_snap = 1, .done = sync_req_done } };
	store_submit(f->s, &w.req);
	while (!w.done)
		io_loop_run_once(f->loop, -1);
	assert_int_equal(w.res, 0);
	assert_false(store_clone_movable(f->s, &head, 1)); /* clone 1 exists */
	/* Delete: clone 2 takes the head's (new) block. */
	struct sync_req d = { .req = { .op = STORE_OP_DELETE, .oid = head, .version = 10,
				       .clone_snap = 2, .done = sync_req_done } };
	store_submit(f->s, &d.req);
	while (!d.done)
		io_loop_run_once(f->loop, -1);
	assert_int_equal(d.res, 0);
	for (int pass = 0; pass < 3; pass++) {
		struct store_object_info info;
		struct store_usage u;
		assert_int_equal(store_stat(f->s, &head, &info), -ENOENT);
		assert_int_equal(store_stat(f->s, &c1, &info), 0);
		assert_int_equal(info.version, 8);
		assert_int_equal(store_stat(f->s, &c2, &info), 0);
		assert_int_equal(info.version, 9);
		assert_int_equal(OP(f, STORE_OP_READ, c1, 0, BS, back, NULL), 0);
		assert_memory_equal(back, a, BS);
		assert_int_equal(OP(f, STORE_OP_READ, c2, 0, BS, back, NULL), 0);
		assert_memory_equal(back, b, BS);
		store_usage(f->s, &u);
		assert_int_equal(u.blocks_used, u0.blocks_used + 1); /* two clones, no head */
		store_check(f->s);
		if (pass == 0)
			crash_reopen(f); /* replays the takeovers from the journal */
		else if (pass == 1)
			reopen(f); /* from the rewritten entries */
	}
	/* A clone made this way is an object like any other: deleting it
	 * frees its block (and it can be deleted right after it was made). */
	v = 11;
	assert_int_equal(OP(f, STORE_OP_WRITE, head, 0, BS, a, &v), 0);
	struct sync_req w3 = { .req = { .op = STORE_OP_WRITE, .oid = head, .len = BS, .buf = b,
					.version = 12, .clone_snap = 3, .done = sync_req_done } };
	store_submit(f->s, &w3.req);
	while (!w3.done)
		io_loop_run_once(f->loop, -1);
	assert_int_equal(w3.res, 0);
	struct object_id c3 = head;
	c3.snap = 3;
	assert_int_equal(OP(f, STORE_OP_DELETE, c1, 0, 0, NULL, NULL), 0);
	assert_int_equal(OP(f, STORE_OP_DELETE, c2, 0, 0, NULL, NULL), 0);
	assert_int_equal(OP(f, STORE_OP_DELETE, c3, 0, 0, NULL, NULL), 0);
	struct store_usage u;
	store_usage(f->s, &u);
	assert_int_equal(u.blocks_used, u0.blocks_used); /* the head alone */
	store_check(f->s);
	free(a);
	free(b);
	free(back);
}

static void test_fill_to_enospc_and_reuse(void **state)
{
	struct fixture *f = *state;
	uint8_t *buf = aligned_buf(BS);
	struct store_usage u;
	store_usage(f->s, &u);
	/* Clients get every block but those held back for PG records. */
	uint64_t blocks = u.blocks_available, i;
	assert_int_equal(blocks, u.blocks_free - u.blocks_reserved);
	assert_true(u.blocks_reserved >= 8);
	for (i = 0;; i++) {
		pattern_fill(buf, BS, i + 1, 0);
		int rc = OP(f, STORE_OP_WRITE, oid_of(30, i), 0, BS, buf, NULL);
		if (rc == -ENOSPC)
			break;
		assert_int_equal(rc, 0);
	}
	assert_int_equal(i, blocks);
	store_usage(f->s, &u);
	assert_int_equal(u.blocks_available, 0);
	/* A new object cannot be placed, whatever the size of the write. */
	assert_int_equal(OP(f, STORE_OP_WRITE, oid_of(31, 0), 0, 4096, buf, NULL), -ENOSPC);
	/* An overwrite of an object that has a block always fits: a whole
	 * block goes through the journal into the block it has. */
	pattern_fill(buf, BS, 555, 0);
	assert_int_equal(OP(f, STORE_OP_WRITE, oid_of(30, 3), 0, BS, buf, NULL), 0);
	assert_int_equal(OP(f, STORE_OP_WRITE, oid_of(30, 4), 8192, 4096, buf, NULL), 0);
	uint8_t *r = aligned_buf(BS);
	assert_int_equal(OP(f, STORE_OP_READ, oid_of(30, 3), 0, BS, r, NULL), 0);
	assert_memory_equal(r, buf, BS);
	store_sync_checkpoint(f->s, f->loop, NULL);
	store_usage(f->s, &u);
	assert_int_equal(u.blocks_available, 0);
	assert_int_equal(u.journal_used_bytes, 0);
	/* The PG's own records may use what is held back. */
	struct sync_req sr;
	memset(&sr, 0, sizeof(sr));
	sr.req = (struct store_req){ .op = STORE_OP_WRITE, .oid = oid_of(32, 0), .len = 4096,
				     .buf = buf, .reserve = true, .done = sync_req_done };
	store_submit(f->s, &sr.req);
	while (!sr.done)
		io_loop_run_once(f->loop, -1);
	assert_int_equal(sr.res, 0);
	/* Deletes free blocks at once: the first refills what the record
	 * took from the blocks held back, the second is for a new object. */
	assert_int_equal(OP(f, STORE_OP_DELETE, oid_of(30, 5), 0, 0, NULL, NULL), 0);
	assert_int_equal(OP(f, STORE_OP_WRITE, oid_of(31, 0), 0, BS, buf, NULL), -ENOSPC);
	assert_int_equal(OP(f, STORE_OP_DELETE, oid_of(30, 6), 0, 0, NULL, NULL), 0);
	pattern_fill(buf, BS, 999, 0);
	assert_int_equal(OP(f, STORE_OP_WRITE, oid_of(31, 0), 0, BS, buf, NULL), 0);
	assert_int_equal(OP(f, STORE_OP_WRITE, oid_of(31, 1), 0, 4096, buf, NULL), -ENOSPC);
	assert_int_equal(OP(f, STORE_OP_READ, oid_of(31, 0), 0, BS, r, NULL), 0);
	assert_memory_equal(r, buf, BS);
	reopen(f);
	assert_int_equal(OP(f, STORE_OP_READ, oid_of(31, 0), 0, BS, r, NULL), 0);
	assert_memory_equal(r, buf, BS);
	pattern_fill(buf, BS, 7 + 1, 0);
	assert_int_equal(OP(f, STORE_OP_READ, oid_of(30, 7), 0, BS, r, NULL), 0);
	assert_memory_equal(r, buf, BS);
	free(buf);
	free(r);
}

/* The failure of issue 14: many small writes into new objects at once.
 * Each is promised a block when accepted, so exactly as many as there
 * are blocks succeed, the rest get -ENOSPC at once, the journal still
 * checkpoints, deletes work on the full store, and after a crash the
 * store opens, checkpoints and reads every acknowledged write. */
#define MANY 1024
static struct sync_req many[MANY];

static void test_small_writes_fill(void **state)
{
	struct fixture *f = *state;
	uint8_t *buf = aligned_buf(MANY * 4096);
	struct store_usage u;
	store_usage(f->s, &u);
	uint64_t blocks = u.blocks_available;
	assert_true(blocks < MANY);
	for (unsigned i = 0; i < MANY; i++) {
		pattern_fill(buf + i * 4096, 4096, i + 1, 1);
		memset(&many[i], 0, sizeof(many[i]));
		many[i].req = (struct store_req){ .op = STORE_OP_WRITE, .oid = oid_of(50, i),
						  .offset = 4096, .len = 4096,
						  .buf = buf + i * 4096, .done = sync_req_done };
		store_submit(f->s, &many[i].req);
	}
	unsigned acked = 0, full = 0;
	for (unsigned i = 0; i < MANY; i++) {
		while (!many[i].done)
			io_loop_run_once(f->loop, -1);
		if (many[i].res == 0)
			acked++;
		else
			assert_int_equal(many[i].res, -ENOSPC), full++;
	}
	assert_int_equal(acked, blocks);
	assert_int_equal(full, MANY - blocks);
	store_sync_checkpoint(f->s, f->loop, NULL);
	store_usage(f->s, &u);
	assert_int_equal(u.journal_used_bytes, 0);
	assert_int_equal(u.blocks_promised, 0);
	assert_int_equal(u.blocks_available, 0);
	/* More small writes to the objects that have data fit; a crash with
	 * them journaled leaves a store that opens and places them. */
	uint8_t *r = aligned_buf(4096);
	for (unsigned i = 0; i < MANY; i++)
		if (many[i].res == 0)
			assert_int_equal(OP(f, STORE_OP_WRITE, oid_of(50, i), 0, 4096,
					    buf + i * 4096, NULL), 0);
	crash_reopen(f);
	for (unsigned i = 0; i < MANY; i++) {
		int rc = OP(f, STORE_OP_READ, oid_of(50, i), 4096, 4096, r, NULL);
		if (many[i].res) {
			assert_int_equal(rc, -ENOENT);
			continue;
		}
		assert_int_equal(rc, 0);
		assert_memory_equal(r, buf + i * 4096, 4096);
		assert_int_equal(OP(f, STORE_OP_READ, oid_of(50, i), 0, 4096, r, NULL), 0);
		assert_memory_equal(r, buf + i * 4096, 4096);
	}
	/* Deleting on the full store works and frees at once. */
	for (unsigned i = 0; i < MANY; i += 2)
		if (many[i].res == 0)
			assert_int_equal(OP(f, STORE_OP_DELETE, oid_of(50, i), 0, 0, NULL, NULL), 0);
	store_usage(f->s, &u);
	assert_int_equal(u.blocks_available, (blocks + 1) / 2);
	assert_int_equal(OP(f, STORE_OP_WRITE, oid_of(51, 0), 0, 4096, buf, NULL), 0);
	free(buf);
	free(r);
}

/* A store an older version overfilled: journaled small writes into more
 * new objects than there are free blocks (written here by hand into the
 * journal of a full store). fsck calls it not clean; open still opens it
 * (no hang), serves every object, refuses new space, and once deletes
 * have freed enough, places the rest and checkpoints clean. */
static void test_overfilled_store(void **state)
{
	struct fixture *f = *state;
	uint8_t *buf = aligned_buf(BS);
	uint64_t full = 0;
	for (;; full++) {
		pattern_fill(buf, BS, full + 1, 0);
		if (OP(f, STORE_OP_WRITE, oid_of(70, full), 0, BS, buf, NULL))
			break;
	}
	struct store_usage u;
	store_usage(f->s, &u);
	const uint64_t extra = u.blocks_free + 5; /* five more than fit */
	store_close(f->s);
	f->s = NULL;
	/* The newest superblock says where the journal resumes. */
	int fd = open(f->path, O_RDWR);
	assert_true(fd >= 0);
	uint8_t *sbuf = aligned_buf(2 * STORE_SB_SIZE);
	assert_int_equal(pread(fd, sbuf, 2 * STORE_SB_SIZE, 0), 2 * STORE_SB_SIZE);
	struct store_sb sb, sb2;
	assert_int_equal(store_sb_decode(sbuf, &sb), 0);
	if (store_sb_decode(sbuf + STORE_SB_SIZE, &sb2) == 0 && sb2.generation > sb.generation)
		sb = sb2;
	/* One batch: a 4 KiB write into each of EXTRA new objects. */
	uint32_t hl = STORE_BATCH_HEADER_LEN +
		      (uint32_t)extra * store_record_len(STORE_REC_SMALL, 1, false);
	uint32_t hs = store_batch_header_space(hl), dl = (uint32_t)extra * 4096;
	uint8_t *batch = aligned_buf(hs + dl);
	memset(batch, 0, hs + dl);
	struct enc e;
	enc_init(&e, batch, hl);
	enc_reserve(&e, STORE_BATCH_HEADER_LEN);
	for (uint64_t i = 0; i < extra; i++) {
		uint8_t *d = batch + hs + i * 4096;
		pattern_fill(d, 4096, 1000 + i, 0);
		uint32_t crc = crc32c(0, d, 4096);
		struct store_record r = { .type = STORE_REC_SMALL, .oid = oid_of(71, i),
					  .version = 1, .nchunks = 1, .data_off = (uint32_t)(i * 4096) };
		assert_int_equal(store_record_encode(&e, &r, &crc), 0);
	}
	struct store_batch b = { STORE_BATCH_RECORDS, sb.journal_epoch, sb.journal_seq, hl, dl,
				 (uint32_t)extra, 0 };
	store_batch_seal(batch, &b);
	assert_int_equal(pwrite(fd, batch, hs + dl, (off_t)(sb.layout.journal_offset + sb.journal_tail)),
			 (ssize_t)(hs + dl));
	assert_int_equal(fsync(fd), 0);
	close(fd);
	/* fsck tells the truth. */
	char *report = NULL;
	size_t report_len = 0;
	FILE *out = open_memstream(&report, &report_len);
	assert_int_equal(store_fsck(f->loop, f->path, out, false), -EUCLEAN);
	fclose(out);
	assert_non_null(strstr(report, "the journal cannot be checkpointed: 5 objects"));
	free(report);
	/* It opens, and serves what it holds. */
	reopen(f);
	assert_int_equal(store_report(f->s)->unplaceable, 5);
	for (uint64_t i = 0; i < extra; i += 7) {
		uint8_t want[4096];
		pattern_fill(want, 4096, 1000 + i, 0);
		assert_int_equal(OP(f, STORE_OP_READ, oid_of(71, i), 0, 4096, buf, NULL), 0);
		assert_memory_equal(buf, want, 4096);
	}
	assert_int_equal(OP(f, STORE_OP_WRITE, oid_of(72, 0), 0, 4096, buf, NULL), -ENOSPC);
	/* Deletes free blocks; the journaled objects get them; the store
	 * checkpoints whole again. */
	for (uint64_t i = 0; i < 5 + 8; i++)
		assert_int_equal(OP(f, STORE_OP_DELETE, oid_of(70, i), 0, 0, NULL, NULL), 0);
	store_sync_checkpoint(f->s, f->loop, NULL);
	store_usage(f->s, &u);
	assert_int_equal(u.journal_used_bytes, 0);
	assert_int_equal(u.blocks_promised, 0);
	assert_int_equal(store_report(f->s)->unplaceable, 0);
	store_check(f->s);
	store_close(f->s);
	f->s = NULL;
	out = fopen("/dev/null", "w");
	assert_int_equal(store_fsck(f->loop, f->path, out, false), 0);
	fclose(out);
	reopen(f);
	pattern_fill(buf, 4096, 1000 + extra - 1, 0);
	uint8_t *back = aligned_buf(4096);
	assert_int_equal(OP(f, STORE_OP_READ, oid_of(71, extra - 1), 0, 4096, back, NULL), 0);
	assert_memory_equal(back, buf, 4096);
	free(back);
	free(batch);
	free(sbuf);
	free(buf);
}

static void test_checksum_failure(void **state)
{
	struct fixture *f = *state;
	uint8_t *buf = aligned_buf(BS);
	pattern_fill(buf, BS, 42, 0);
	assert_int_equal(OP(f, STORE_OP_WRITE, oid_of(40, 0), 0, BS, buf, NULL), 0);
	assert_int_equal(OP(f, STORE_OP_WRITE, oid_of(40, 1), 0, BS, buf, NULL), 0);
	store_close(f->s);
	f->s = NULL;
	/* Find object 0's block through --dump's view: flip one byte in the
	 * second chunk of the first used data block. */
	struct store_params p;
	store_params_default(&p);
	p.read_only = true;
	struct store *ro;
	char why[256];
	assert_int_equal(store_open(f->loop, f->path, &p, &ro, why, sizeof(why)), 0);
	assert_int_equal(store_fsck(f->loop, f->path, stdout, false), 0);
	store_close(ro);
	int fd = open(f->path, O_RDWR);
	uint8_t sb[4096];
	assert_int_equal(pread(fd, sb, 4096, 4096), 4096);
	/* data_offset is the 11th field: read it through a fresh layout. */
	struct store_sb decoded;
	assert_int_equal(store_sb_decode(sb, &decoded), 0);
	uint64_t off = decoded.layout.data_offset + 4096 + 100;
	uint8_t byte;
	assert_int_equal(pread(fd, &byte, 1, (off_t)off), 1);
	byte ^= 0x20;
	assert_int_equal(pwrite(fd, &byte, 1, (off_t)off), 1);
	close(fd);
	/* fsck reports it; the read fails with EIO and is counted. */
	assert_int_equal(store_fsck(f->loop, f->path, stdout, false), -EUCLEAN);
	reopen(f);
	uint8_t *r = aligned_buf(BS);
	int bad = OP(f, STORE_OP_READ, oid_of(40, 0), 0, BS, r, NULL);
	int good = OP(f, STORE_OP_READ, oid_of(40, 1), 0, BS, r, NULL);
	/* A checksum failure is told apart from a device error. */
	assert_true((bad == -EBADMSG) != (good == -EBADMSG)); /* exactly one is hit */
	assert_true(bad == 0 || good == 0);
	struct store_usage u;
	store_usage(f->s, &u);
	assert_int_equal(u.csum_errors, 1);
	assert_int_equal(u.read_errors, 0);
	/* Only the bad chunk is refused: others of the object still read. */
	struct object_id hit = bad == -EBADMSG ? oid_of(40, 0) : oid_of(40, 1);
	assert_int_equal(OP(f, STORE_OP_READ, hit, 0, 4096, r, NULL), 0);
	assert_int_equal(OP(f, STORE_OP_READ, hit, 4096, 4096, r, NULL), -EBADMSG);
	/* A good copy of the same version repairs it (anything else of
	 * that version is refused). */
	struct store_object_info info;
	assert_int_equal(store_stat(f->s, &hit, &info), 0);
	uint64_t v = info.version;
	assert_int_equal(OP(f, STORE_OP_WRITE, hit, 0, BS, buf, &v), -ESTALE);
	struct sync_req sr;
	memset(&sr, 0, sizeof(sr));
	sr.req = (struct store_req){ .op = STORE_OP_WRITE, .oid = hit, .len = BS, .buf = buf,
				     .version = info.version, .repair = true, .done = sync_req_done };
	store_submit(f->s, &sr.req);
	while (!sr.done)
		io_loop_run_once(f->loop, -1);
	assert_int_equal(sr.res, 0);
	assert_int_equal(store_stat(f->s, &hit, &info), 0);
	assert_int_equal(info.version, v);
	assert_int_equal(OP(f, STORE_OP_READ, hit, 0, BS, r, NULL), 0);
	assert_memory_equal(r, buf, BS);
	store_close(f->s);
	f->s = NULL;
	assert_int_equal(store_fsck(f->loop, f->path, stdout, false), 0);
	reopen(f);
	free(buf);
	free(r);
}

/* osd_debug_bad_range: reads touching those device bytes fail with EIO,
 * as an unreadable sector would, and are counted apart. */
static void test_bad_range(void **state)
{
	struct fixture *f = *state;
	uint8_t *buf = aligned_buf(BS), *r = aligned_buf(BS);
	pattern_fill(buf, BS, 7, 0);
	assert_int_equal(OP(f, STORE_OP_WRITE, oid_of(41, 0), 0, BS, buf, NULL), 0);
	store_close(f->s);
	int fd = open(f->path, O_RDONLY);
	uint8_t sb[4096];
	assert_int_equal(pread(fd, sb, 4096, 4096), 4096);
	close(fd);
	struct store_sb decoded;
	assert_int_equal(store_sb_decode(sb, &decoded), 0);
	struct store_params p;
	char why[256];
	store_params_default(&p);
	p.bad_offset = decoded.layout.data_offset + 8192; /* chunk 2 of block 0 */
	p.bad_len = 512;
	assert_int_equal(store_open(f->loop, f->path, &p, &f->s, why, sizeof(why)), 0);
	assert_int_equal(OP(f, STORE_OP_READ, oid_of(41, 0), 0, 4096, r, NULL), 0);
	assert_int_equal(OP(f, STORE_OP_READ, oid_of(41, 0), 0, BS, r, NULL), -EIO);
	struct store_usage u;
	store_usage(f->s, &u);
	assert_int_equal(u.read_errors, 1);
	assert_int_equal(u.csum_errors, 0);
	free(buf);
	free(r);
}

/* Block number and newest entry slot of OID's block. */
static uint64_t block_of(struct fixture *f, struct object_id oid, uint64_t *entry_off)
{
	uint64_t off;
	assert_int_equal(store_object_locate(f->s, &oid, &off), 0);
	uint64_t b = (off - f->s->L.data_offset) / f->s->L.block_size;
	*entry_off = store_entry_offset(f->s, b, f->s->blocks[b].flags & STORE_BLOCK_SLOT_B);
	return b;
}

/* Flips one byte at OFF of the device under the running store (direct
 * I/O, as the store reads it). */
static void flip_byte(struct fixture *f, uint64_t off)
{
	int fd = open(f->path, O_RDWR | O_DIRECT);
	assert_true(fd >= 0);
	uint8_t *sec = aligned_buf(4096);
	uint64_t base = off / 4096 * 4096;
	assert_int_equal(pread(fd, sec, 4096, (off_t)base), 4096);
	sec[off - base] ^= 0x10;
	assert_int_equal(pwrite(fd, sec, 4096, (off_t)base), 4096);
	close(fd);
	free(sec);
}

/* With no CRC cache, a read of an idle object verifies its data against
 * the block's metadata entry read beside it: good data reads, a flipped
 * data byte is -EBADMSG, and so is a flipped byte in the entry itself. */
static void test_crc_miss_read(void **state)
{
	struct fixture *f = *state;
	uint8_t *buf = aligned_buf(BS), *back = aligned_buf(BS);
	for (uint64_t i = 0; i < 3; i++) {
		pattern_fill(buf, BS, 50 + i, 0);
		assert_int_equal(OP(f, STORE_OP_WRITE, oid_of(50, i), 0, BS, buf, NULL), 0);
	}
	store_sync_checkpoint(f->s, f->loop, NULL);
	reopen(f);
	uint64_t loads = f->s->crcs.loads;
	for (uint64_t i = 0; i < 3; i++) {
		assert_int_equal(OP(f, STORE_OP_READ, oid_of(50, i), 0, BS, back, NULL), 0);
		pattern_fill(buf, BS, 50 + i, 0);
		assert_memory_equal(back, buf, BS);
	}
	assert_true(f->s->crcs.loads >= loads + 3); /* one entry read each */
	assert_int_equal(f->s->crcs.used, 0);
	store_check(f->s);
	/* Object 1: a data byte of chunk 2. Object 2: its newest entry. */
	uint64_t e1, e2;
	uint64_t b1 = block_of(f, oid_of(50, 1), &e1);
	block_of(f, oid_of(50, 2), &e2);
	flip_byte(f, store_block_offset(f->s, b1) + 2 * 4096 + 7);
	flip_byte(f, e2 + 40);
	assert_int_equal(OP(f, STORE_OP_READ, oid_of(50, 1), 0, 4096, back, NULL), 0);
	assert_int_equal(OP(f, STORE_OP_READ, oid_of(50, 1), 0, BS, back, NULL), -EBADMSG);
	assert_int_equal(OP(f, STORE_OP_READ, oid_of(50, 2), 0, 4096, back, NULL), -EBADMSG);
	assert_int_equal(OP(f, STORE_OP_READ, oid_of(50, 0), 0, BS, back, NULL), 0);
	struct store_usage u;
	store_usage(f->s, &u);
	assert_int_equal(u.csum_errors, 2);
	assert_int_equal(u.read_errors, 0);
	store_check(f->s);
	free(buf);
	free(back);
}

/* A small write into an idle object whose CRCs are not in RAM: the flush
 * reads the block's entry and writes one with the old chunks' CRCs and
 * the new ones; after a reopen (no cache either) everything verifies. */
static void test_crc_miss_flush_merge(void **state)
{
	struct fixture *f = *state;
	uint8_t *buf = aligned_buf(BS), *small = aligned_buf(2 * 4096), *back = aligned_buf(BS);
	struct object_id o = oid_of(51, 0);
	pattern_fill(buf, BS, 51, 0);
	assert_int_equal(OP(f, STORE_OP_WRITE, o, 0, BS, buf, NULL), 0);
	store_sync_checkpoint(f->s, f->loop, NULL);
	reopen(f);
	uint64_t loads = f->s->crcs.loads;
	pattern_fill(small, 2 * 4096, 52, 3);
	assert_int_equal(OP(f, STORE_OP_WRITE, o, 3 * 4096, 2 * 4096, small, NULL), 0);
	store_sync_checkpoint(f->s, f->loop, NULL);
	assert_int_equal(f->s->crcs.loads, loads + 1); /* the flush read the entry */
	store_check(f->s);
	memcpy(buf + 3 * 4096, small, 2 * 4096);
	for (int pass = 0; pass < 2; pass++) {
		assert_int_equal(OP(f, STORE_OP_READ, o, 0, BS, back, NULL), 0);
		assert_memory_equal(back, buf, BS);
		reopen(f);
	}
	store_close(f->s);
	f->s = NULL;
	assert_int_equal(store_fsck(f->loop, f->path, stdout, false), 0);
	reopen(f);
	free(buf);
	free(small);
	free(back);
}

/* The cache holds no more slots than its bytes allow, evicts by clock
 * when full, and a read of an evicted block still verifies. */
static void test_crc_cache_bound(void **state)
{
	struct fixture *f = *state;
	uint32_t chunks = f->s->L.chunks_per_block;
	f->crc_cache = 10 * (4ull * chunks + 13); /* ten slots */
	reopen(f);
	assert_int_equal(f->s->crcs.cap, 10);
	uint8_t *buf = aligned_buf(BS), *back = aligned_buf(BS);
	for (uint64_t i = 0; i < 40; i++) {
		pattern_fill(buf, BS, 60 + i, 0);
		assert_int_equal(OP(f, STORE_OP_WRITE, oid_of(52, i), 0, BS, buf, NULL), 0);
	}
	store_sync_checkpoint(f->s, f->loop, NULL);
	assert_true(f->s->crcs.used <= 10);
	for (int round = 0; round < 2; round++) {
		for (uint64_t i = 0; i < 40; i++) {
			assert_int_equal(OP(f, STORE_OP_READ, oid_of(52, i), 0, BS, back, NULL), 0);
			pattern_fill(buf, BS, 60 + i, 0);
			assert_memory_equal(back, buf, BS);
		}
		assert_true(f->s->crcs.used <= 10);
		store_check(f->s);
	}
	assert_true(f->s->crcs.loads >= 60);
	/* The block read last is among those cached: a hit, no entry read. */
	uint64_t hits = f->s->crcs.hits, loads = f->s->crcs.loads;
	assert_int_equal(OP(f, STORE_OP_READ, oid_of(52, 39), 0, BS, back, NULL), 0);
	assert_true(f->s->crcs.hits == hits + 1 && f->s->crcs.loads == loads);
	reopen(f); /* the load fills the cache up to its bound, no further */
	assert_int_equal(f->s->crcs.used, 10);
	free(buf);
	free(back);
}

static void test_params_from_config(void **state)
{
	(void)state;
	struct cfg *cfg;
	char err[256];
	struct store_params p;
	assert_int_equal(cfg_load_string("osd.conf",
					 "[osd]\nosd_sync = batch\nosd_sync_interval = 2ms\n"
					 "[osd.3]\nosd_sync = always\n[osd.4]\nosd_sync = sometimes\n"
					 "[osd.5]\nosd_sync_interval = 5s\n"
					 "[osd.6]\nosd_debug_bad_range = 1G+128K\n"
					 "[osd.7]\nosd_debug_bad_range = 1G\n"
					 "[osd.8]\nosd_debug_bad_range = 1G+zero\n"
					 "[osd.9]\nosd_crc_cache_size = 0\n"
					 "[osd.10]\nosd_crc_cache_size = lots\n",
					 &cfg, err, sizeof(err)), 0);
	assert_int_equal(store_params_from_config(cfg, "osd.1", &p), 0);
	assert_int_equal(p.sync, STORE_SYNC_BATCH);
	assert_true(p.sync_interval_ns == IO_MS(2));
	assert_int_equal(store_params_from_config(cfg, "osd.3", &p), 0);
	assert_int_equal(p.sync, STORE_SYNC_ALWAYS);
	assert_int_equal(store_params_from_config(cfg, "osd.4", &p), -EINVAL);
	assert_string_equal(cfg_error(cfg),
			    "osd.conf:7: [osd.4] osd_sync: expected always|batch, got 'sometimes'");
	assert_int_equal(store_params_from_config(cfg, "osd.5", &p), -EINVAL);
	assert_non_null(strstr(cfg_error(cfg), "out of range"));
	assert_int_equal(store_params_from_config(cfg, "osd.6", &p), 0);
	assert_true(p.bad_offset == 1ull << 30 && p.bad_len == 128u << 10);
	assert_int_equal(store_params_from_config(cfg, "osd.7", &p), -EINVAL);
	assert_string_equal(cfg_error(cfg), "osd.conf:13: [osd.7] osd_debug_bad_range: expected "
					    "OFFSET+LENGTH (like 1G+128K), got '1G'");
	assert_int_equal(store_params_from_config(cfg, "osd.8", &p), -EINVAL);
	assert_true(p.crc_cache_bytes == STORE_CRC_CACHE_DEFAULT);
	assert_int_equal(store_params_from_config(cfg, "osd.9", &p), 0);
	assert_true(p.crc_cache_bytes == 0);
	assert_int_equal(store_params_from_config(cfg, "osd.10", &p), -EINVAL);
	assert_non_null(strstr(cfg_error(cfg), "osd_crc_cache_size"));
	cfg_free(cfg);
	/* With no config at all: always, the safe default. */
	assert_int_equal(cfg_load_string("empty.conf", "", &cfg, err, sizeof(err)), 0);
	assert_int_equal(store_params_from_config(cfg, "osd.0", &p), 0);
	assert_int_equal(p.sync, STORE_SYNC_ALWAYS);
	cfg_free(cfg);
}

int main(void)
{
	log_set_level(LOG_LEVEL_WARN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_mkfs_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_read_shapes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_carried_crcs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_crcs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_crcs, setup_nocache, teardown),
		cmocka_unit_test_setup_teardown(test_delete_list_stat, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_usage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_versions_after_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_masked_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clone_takeover, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fill_to_enospc_and_reuse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_small_writes_fill, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overfilled_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checksum_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_range, setup, teardown),
		/* The same with every idle object's CRCs on the device only. */
		cmocka_unit_test_setup_teardown(test_write_read_shapes, setup_nocache, teardown),
		cmocka_unit_test_setup_teardown(test_versions_after_delete, setup_nocache, teardown),
		cmocka_unit_test_setup_teardown(test_masked_copy, setup_nocache, teardown),
		cmocka_unit_test_setup_teardown(test_clone_takeover, setup_nocache, teardown),
		cmocka_unit_test_setup_teardown(test_checksum_failure, setup_nocache, teardown),
		cmocka_unit_test_setup_teardown(test_crc_miss_read, setup_nocache, teardown),
		cmocka_unit_test_setup_teardown(test_crc_miss_flush_merge, setup_nocache, teardown),
		cmocka_unit_test_setup_teardown(test_crc_cache_bound, setup, teardown),
		cmocka_unit_test(test_params_from_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
