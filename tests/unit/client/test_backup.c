/* client/backup/ without a cluster or a server: the envelope, the
 * manifests, retention, and whole backups, restores, verifies and
 * prunes over an in-memory bucket (a mock of the store: the S3 store is
 * tested against radosgw in tests/integration/backup_s3.sh) and an
 * in-memory volume. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "client/backup/backup_int.h"
#include "common/number.h"

/* --- an in-memory bucket ----------------------------------------------------------- */

struct mem_object {
	char key[700];
	uint8_t *data;
	size_t len;
	int64_t mtime_s;
};

struct mem_bucket {
	pthread_mutex_t lock;
	struct mem_object o[4096];
	size_t n;
	unsigned puts, heads, gets, dels;
	int fail_put_after; /* > 0: the Nth put from now fails (-EIO) */
	/* Called after a put of a key containing after_put_key (outside the lock). */
	void (*after_put)(struct mem_bucket *b, const char *key);
	char after_put_key[80];
	void *hook_arg;
};

static struct mem_object *mem_find(struct mem_bucket *b, const char *key)
{
	for (size_t i = 0; i < b->n; i++)
		if (strcmp(b->o[i].key, key) == 0)
			return &b->o[i];
	return NULL;
}

static int mem_connect(void *ctx, void **conn, char *why, size_t why_len)
{
	*conn = ctx;
	return 0;
}

static void mem_disconnect(void *conn)
{
}

static int mem_put(void *conn, const char *key, const void *buf, size_t len, char *why,
		   size_t why_len)
{
	struct mem_bucket *b = conn;
	pthread_mutex_lock(&b->lock);
	b->puts++;
	if (b->fail_put_after > 0 && --b->fail_put_after == 0) {
		pthread_mutex_unlock(&b->lock);
		snprintf(why, why_len, "injected failure");
		return -EIO;
	}
	struct mem_object *o = mem_find(b, key);
	if (!o) {
		assert_true(b->n < 4096);
		o = &b->o[b->n++];
		snprintf(o->key, sizeof(o->key), "%s", key);
	}
	free(o->data);
	o->data = malloc(len ? len : 1);
	memcpy(o->data, buf, len);
	o->len = len;
	o->mtime_s = time(NULL);
	pthread_mutex_unlock(&b->lock);
	if (b->after_put && b->after_put_key[0] && strstr(key, b->after_put_key))
		b->after_put(b, key);
	return 0;
}

static int mem_get(void *conn, const char *key, void **buf, size_t *len, char *why,
		   size_t why_len)
{
	struct mem_bucket *b = conn;
	pthread_mutex_lock(&b->lock);
	b->gets++;
	struct mem_object *o = mem_find(b, key);
	if (o) {
		*buf = malloc(o->len ? o->len : 1);
		memcpy(*buf, o->data, o->len);
		*len = o->len;
	}
	pthread_mutex_unlock(&b->lock);
	if (!o)
		snprintf(why, why_len, "no such key %s", key);
	return o ? 0 : -ENOENT;
}

static int mem_head(void *conn, const char *key, uint64_t *len, char *why, size_t why_len)
{
	struct mem_bucket *b = conn;
	pthread_mutex_lock(&b->lock);
	b->heads++;
	struct mem_object *o = mem_find(b, key);
	if (o && len)
		*len = o->len;
	pthread_mutex_unlock(&b->lock);
	return o ? 0 : -ENOENT;
}

static int mem_del(void *conn, const char *key, char *why, size_t why_len)
{
	struct mem_bucket *b = conn;
	pthread_mutex_lock(&b->lock);
	b->dels++;
	struct mem_object *o = mem_find(b, key);
	if (o) {
		free(o->data);
		*o = b->o[--b->n];
		memset(&b->o[b->n], 0, sizeof(b->o[b->n]));
	}
	pthread_mutex_unlock(&b->lock);
	return 0;
}

static int key_cmp(const void *a, const void *b)
{
	return strcmp(((const struct mem_object *)a)->key, ((const struct mem_object *)b)->key);
}

static int mem_list(void *conn, const char *prefix, backup_list_fn fn, void *arg, char *why,
		    size_t why_len)
{
	struct mem_bucket *b = conn;
	pthread_mutex_lock(&b->lock);
	struct mem_object *copy = calloc(b->n + 1, sizeof(*copy));
	size_t n = 0;
	for (size_t i = 0; i < b->n; i++)
		if (strncmp(b->o[i].key, prefix, strlen(prefix)) == 0) {
			copy[n] = b->o[i];
			copy[n].data = NULL;
			copy[n++].len = b->o[i].len;
		}
	pthread_mutex_unlock(&b->lock);
	qsort(copy, n, sizeof(*copy), key_cmp);
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++)
		rc = fn(copy[i].key, copy[i].len, copy[i].mtime_s, arg);
	free(copy);
	return rc;
}

static const struct backup_store_ops mem_ops = {
	.connect = mem_connect,
	.disconnect = mem_disconnect,
	.put = mem_put,
	.get = mem_get,
	.head = mem_head,
	.del = mem_del,
	.list = mem_list,
};

static struct mem_bucket *bucket_new(void)
{
	struct mem_bucket *b = calloc(1, sizeof(*b));
	pthread_mutex_init(&b->lock, NULL);
	return b;
}

static void bucket_free(struct mem_bucket *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->o[i].data);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

static size_t bucket_count(struct mem_bucket *b, const char *prefix)
{
	size_t n = 0;
	for (size_t i = 0; i < b->n; i++)
		n += strstr(b->o[i].key, prefix) != NULL;
	return n;
}

/* --- an in-memory volume ----------------------------------------------------------- */

#define VOL_SIZE (40u << 20) /* 10 chunks */

struct mem_volume {
	uint8_t *data;
	uint64_t size;
	uint8_t written[VOL_SIZE / BACKUP_CHUNK_SIZE + 1]; /* chunks ever written */
	uint8_t *base;	  /* the data at the base snapshot, for extents() */
	const char *base_name;
	bool removed;	  /* the snapshot went away */
	bool base_gone;
	unsigned reads;
};

static int vol_extents(void *ctx, const char *base, backup_extent_fn fn, void *arg, char *why,
		       size_t why_len)
{
	struct mem_volume *v = ctx;
	if (base && (v->base_gone || !v->base_name || strcmp(base, v->base_name) != 0))
		return -ENOENT;
	for (uint64_t off = 0; off < v->size; off += BACKUP_CHUNK_SIZE) {
		uint64_t len = v->size - off < BACKUP_CHUNK_SIZE ? v->size - off : BACKUP_CHUNK_SIZE;
		bool differs = base ? memcmp(v->data + off, v->base + off, len) != 0
				    : v->written[off / BACKUP_CHUNK_SIZE];
		if (differs) {
			int rc = fn(off, len, arg);
			if (rc)
				return rc;
		}
	}
	return 0;
}

static int vol_read(void *ctx, uint64_t offset, uint32_t len, void *buf, char *why,
		    size_t why_len)
{
	struct mem_volume *v = ctx;
	v->reads++;
	memcpy(buf, v->data + offset, len);
	return 0;
}

static int vol_check(void *ctx, char *why, size_t why_len)
{
	struct mem_volume *v = ctx;
	if (v->removed) {
		snprintf(why, why_len, "the snapshot was removed");
		return -ESTALE;
	}
	return 0;
}

static bool vol_has_snap(void *ctx, const char *name, uint64_t epoch)
{
	struct mem_volume *v = ctx;
	return !v->base_gone && v->base_name && strcmp(name, v->base_name) == 0;
}

static const struct backup_source_ops vol_ops = {
	.extents = vol_extents,
	.read = vol_read,
	.check = vol_check,
	.has_snap = vol_has_snap,
};

static int vol_write(void *ctx, uint64_t offset, uint32_t len, const void *buf, char *why,
		     size_t why_len)
{
	struct mem_volume *v = ctx;
	assert_true(offset + len <= v->size);
	memcpy(v->data + offset, buf, len);
	return 0;
}

static int vol_zero(void *ctx, uint64_t offset, uint64_t len, char *why, size_t why_len)
{
	struct mem_volume *v = ctx;
	assert_true(offset + len <= v->size);
	memset(v->data + offset, 0, len);
	return 0;
}

static const struct backup_target_ops target_ops = { .write = vol_write, .zero = vol_zero };

static struct mem_volume *volume_new(void)
{
	struct mem_volume *v = calloc(1, sizeof(*v));
	v->size = VOL_SIZE;
	v->data = calloc(1, VOL_SIZE);
	v->base = calloc(1, VOL_SIZE);
	return v;
}

static void volume_free(struct mem_volume *v)
{
	free(v->data);
	free(v->base);
	free(v);
}

/* Fills LEN bytes at OFFSET with a pattern of SEED (text-like, so it compresses somewhat). */
static void volume_fill(struct mem_volume *v, uint64_t offset, uint32_t len, unsigned seed)
{
	for (uint32_t i = 0; i < len; i++)
		v->data[offset + i] = (uint8_t)("basalt-pattern"[(i + seed) % 14] ^ (i / 997 + seed));
	for (uint64_t c = offset / BACKUP_CHUNK_SIZE; c <= (offset + len - 1) / BACKUP_CHUNK_SIZE; c++)
		v->written[c] = 1;
}

/* Takes "snapshot" NAME: what the next incremental backup diffs against. */
static void volume_snapshot(struct mem_volume *v, const char *name)
{
	memcpy(v->base, v->data, v->size);
	v->base_name = name;
}

static struct backup_source source_of(struct mem_volume *v, const char *snap, uint64_t epoch)
{
	struct backup_source s = { .ops = &vol_ops, .ctx = v, .inode = 7, .size = v->size,
				   .snap_epoch = epoch, .snap_time_s = time(NULL) };
	snprintf(s.volume, sizeof(s.volume), "vm-disk");
	snprintf(s.snapshot, sizeof(s.snapshot), "%s", snap);
	return s;
}

static struct backup_repo *repo_open(struct mem_bucket *b, const char *key_file, int expect)
{
	struct backup_repo_params p = { .store = { &mem_ops, b }, .key_file = key_file,
					.parallel = 3, .url = "mem://bucket/pre" };
	snprintf(p.prefix, sizeof(p.prefix), "pre");
	struct backup_repo *r = NULL;
	char why[512] = "";
	int rc = backup_repo_open(&p, true, &r, why, sizeof(why));
	if (rc != expect)
		fail_msg("backup_repo_open: %d (%s), expected %d", rc, why, expect);
	return r;
}

static struct backup_result make_backup(struct backup_repo *r, struct mem_volume *v,
					const char *snap, uint64_t epoch)
{
	struct backup_source src = source_of(v, snap, epoch);
	struct backup_result res;
	char why[512] = "";
	int rc = backup_create(r, &src, &res, why, sizeof(why));
	if (rc)
		fail_msg("backup_create: %d %s", rc, why);
	return res;
}

/* Restores ID into a fresh or a dirty volume and compares with WANT. */
static void restore_equals(struct backup_repo *r, const char *id, const uint8_t *want,
			   bool fresh)
{
	struct mem_volume *t = volume_new();
	if (!fresh)
		memset(t->data, 0x5a, t->size);
	struct backup_target target = { .ops = &target_ops, .ctx = t, .fresh = fresh };
	struct backup_restore_result res;
	char why[512] = "";
	int rc = backup_restore(r, id, &target, &res, why, sizeof(why));
	if (rc)
		fail_msg("backup_restore: %d %s", rc, why);
	assert_memory_equal(t->data, want, VOL_SIZE);
	volume_free(t);
}

/* --- the envelope ----------------------------------------------------------------- */

static char key_path[64];

static int setup_key(void **state)
{
	snprintf(key_path, sizeof(key_path), "/tmp/test_backup_key.%d", getpid());
	unlink(key_path);
	char why[256];
	assert_int_equal(backup_key_create(key_path, why, sizeof(why)), 0);
	return 0;
}

static int teardown_key(void **state)
{
	unlink(key_path);
	return 0;
}

static void test_key_file(void **state)
{
	char why[256] = "";
	/* Never overwritten. */
	assert_int_equal(backup_key_create(key_path, why, sizeof(why)), -EEXIST);
	assert_non_null(strstr(why, "never overwritten"));
	struct backup_keys a, b;
	assert_int_equal(backup_key_load(key_path, &a, why, sizeof(why)), 0);
	assert_true(a.encrypted);
	assert_int_equal(backup_key_load(key_path, &b, why, sizeof(why)), 0);
	assert_memory_equal(a.data, b.data, 32);
	assert_memory_not_equal(a.data, a.id, 32);
	assert_memory_not_equal(a.id, a.check, 32);
	/* A file that is not a key. */
	char bad[80];
	snprintf(bad, sizeof(bad), "%s.bad", key_path);
	FILE *f = fopen(bad, "w");
	fputs("basalt-backup-key-v1 12345\n", f);
	fclose(f);
	assert_int_equal(backup_key_load(bad, &a, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "not a Basalt backup key file"));
	unlink(bad);
	assert_int_equal(backup_key_load("/nonexistent/key", &a, why, sizeof(why)), -ENOENT);
}

static void test_seal(void **state)
{
	struct backup_keys plain = { 0 }, enc, other;
	char why[256];
	assert_int_equal(backup_key_load(key_path, &enc, why, sizeof(why)), 0);
	other = enc;
	other.data[0] ^= 1;
	char text[9000];
	for (size_t i = 0; i < sizeof(text); i++)
		text[i] = "secret volume data "[i % 19];
	const struct backup_keys *keys[] = { &plain, &enc };
	for (int k = 0; k < 2; k++) {
		void *sealed, *opened;
		size_t n, m;
		assert_int_equal(backup_seal(keys[k], "BSLTTEST", "aad", 3, text, sizeof(text), 3,
					     &sealed, &n, why, sizeof(why)), 0);
		assert_true(n < sizeof(text)); /* compressed */
		assert_int_equal(backup_unseal(keys[k], "BSLTTEST", "aad", 3, sealed, n,
					       sizeof(text), &opened, &m, why, sizeof(why)), 0);
		assert_int_equal(m, sizeof(text));
		assert_memory_equal(opened, text, m);
		free(opened);
		/* Too big for the caller's limit. */
		assert_int_equal(backup_unseal(keys[k], "BSLTTEST", "aad", 3, sealed, n, 100,
					       &opened, &m, why, sizeof(why)), -EBADMSG);
		/* Another magic. */
		assert_int_equal(backup_unseal(keys[k], "BSLTOTHR", "aad", 3, sealed, n,
					       sizeof(text), &opened, &m, why, sizeof(why)), -EBADMSG);
		/* One flipped byte in the body. */
		((uint8_t *)sealed)[n / 2] ^= 0x10;
		assert_int_equal(backup_unseal(keys[k], "BSLTTEST", "aad", 3, sealed, n,
					       sizeof(text), &opened, &m, why, sizeof(why)), -EBADMSG);
		((uint8_t *)sealed)[n / 2] ^= 0x10;
		if (k == 1) {
			/* Encrypted: another AAD, another key, no key. */
			assert_int_equal(backup_unseal(&enc, "BSLTTEST", "aab", 3, sealed, n,
						       sizeof(text), &opened, &m, why, sizeof(why)),
					 -EBADMSG);
			assert_int_equal(backup_unseal(&other, "BSLTTEST", "aad", 3, sealed, n,
						       sizeof(text), &opened, &m, why, sizeof(why)),
					 -EBADMSG);
			assert_int_equal(backup_unseal(&plain, "BSLTTEST", "aad", 3, sealed, n,
						       sizeof(text), &opened, &m, why, sizeof(why)),
					 -ENOKEY);
			assert_null(memmem(sealed, n, "secret", 6));
		}
		free(sealed);
	}
	/* Incompressible data is stored as it is. */
	uint8_t noise[4096];
	uint64_t x = 88172645463325252ull;
	for (size_t i = 0; i < sizeof(noise); i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		noise[i] = (uint8_t)x;
	}
	void *sealed;
	size_t n;
	assert_int_equal(backup_seal(&plain, "BSLTTEST", NULL, 0, noise, sizeof(noise), 3, &sealed,
				     &n, why, sizeof(why)), 0);
	assert_int_equal(((uint8_t *)sealed)[8] & BACKUP_SEAL_ZSTD, 0);
	free(sealed);
}

/* --- manifests ------------------------------------------------------------------------ */

static void test_manifest_codec(void **state)
{
	struct backup_summary s = { .id = "20261206T121500Z-1a2b3c4d", .volume = "vm",
				    .snapshot = "nightly", .inode = 9, .size = 1 << 30,
				    .snap_epoch = 44, .snap_time_s = 1765000000,
				    .created_s = 1765000100, .chunk_size = BACKUP_CHUNK_SIZE,
				    .chunks = 2, .data_bytes = 8 << 20, .seconds = 1.5 };
	s.map_sha256[3] = 7;
	char *text = backup_summary_encode(&s);
	struct backup_summary t;
	char why[256];
	assert_int_equal(backup_summary_decode(text, strlen(text), &t, why, sizeof(why)), 0);
	assert_string_equal(t.id, s.id);
	assert_string_equal(t.snapshot, "nightly");
	assert_int_equal(t.size, s.size);
	assert_int_equal(t.snap_time_s, s.snap_time_s);
	assert_memory_equal(t.map_sha256, s.map_sha256, 32);
	free(text);
	const char *bad[] = { "", "{", "[]", "{\"format\":2}",
			      "{\"format\":1,\"id\":\"x\"}" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		assert_int_equal(backup_summary_decode(bad[i], strlen(bad[i]), &t, why, sizeof(why)),
				 -EBADMSG);

	struct backup_map m = { 0 };
	struct backup_chunk_ref c = { .index = 3, .stored_len = 100, .plain_len = 4096 };
	c.id[0] = 0xab;
	assert_int_equal(backup_map_add(&m, &c), 0);
	c.index = 5;
	assert_int_equal(backup_map_add(&m, &c), 0);
	text = backup_map_encode("ID-1", &m);
	struct backup_map back;
	assert_int_equal(backup_map_decode(text, strlen(text), "ID-1", &back, why, sizeof(why)), 0);
	assert_int_equal(back.n, 2);
	assert_non_null(backup_map_find(&back, 5));
	assert_null(backup_map_find(&back, 4));
	backup_map_free(&back);
	/* Another backup's map, entries out of order, a bad id. */
	assert_int_equal(backup_map_decode(text, strlen(text), "ID-2", &back, why, sizeof(why)),
			 -EBADMSG);
	free(text);
#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"
	const char *bad_maps[] = {
		("{\"backup\":\"ID-1\",\"chunks\":[[5,\"" ZERO_HASH "\",1,1],[3,\"" ZERO_HASH
		 "\",1,1]]}"),
		"{\"backup\":\"ID-1\",\"chunks\":[[5,\"zz\",1,1]]}",
		("{\"backup\":\"ID-1\",\"chunks\":[[5,\"" ZERO_HASH "\",1,99999999]]}"),
	};
#undef ZERO_HASH
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(backup_map_decode(bad_maps[i], strlen(bad_maps[i]), "ID-1", &back,
						   why, sizeof(why)), -EBADMSG);
	backup_map_free(&m);
}

/* --- retention ------------------------------------------------------------------------ */

static void test_retention(void **state)
{
	/* Backups every 6 hours for 70 days, from 2026-01-01 00:00 UTC. */
	enum { N = 70 * 4 };
	struct backup_summary s[N];
	bool keep[N];
	const int64_t t0 = 1767225600;
	for (int i = 0; i < N; i++) {
		memset(&s[i], 0, sizeof(s[i]));
		snprintf(s[i].id, sizeof(s[i].id), "b%03d", i);
		s[i].snap_time_s = t0 + (int64_t)i * 6 * 3600;
	}
	struct backup_retention ret = { .last = 2 };
	backup_retention_apply(s, N, &ret, keep);
	for (int i = 0; i < N; i++)
		assert_int_equal(keep[i], i >= N - 2);
	ret = (struct backup_retention){ .daily = 3 };
	backup_retention_apply(s, N, &ret, keep);
	for (int i = 0; i < N; i++) /* the last of each of the 3 newest days: 18:00 */
		assert_int_equal(keep[i], i == N - 1 || i == N - 5 || i == N - 9);
	ret = (struct backup_retention){ .monthly = 12 };
	backup_retention_apply(s, N, &ret, keep);
	int kept = 0;
	for (int i = 0; i < N; i++)
		kept += keep[i];
	assert_int_equal(kept, 3);   /* January, February, March */
	assert_true(keep[31 * 4 - 1]); /* January 31 18:00 */
	assert_true(keep[N - 1]);
	ret = (struct backup_retention){ .weekly = 2, .hourly = 1 };
	backup_retention_apply(s, N, &ret, keep);
	kept = 0;
	for (int i = 0; i < N; i++)
		kept += keep[i];
	assert_int_equal(kept, 2); /* the newest (also the newest hour) and the week before's last */
	ret = (struct backup_retention){ 0 };
	backup_retention_apply(s, N, &ret, keep);
	for (int i = 0; i < N; i++)
		assert_false(keep[i]);
}

/* --- whole backups ----------------------------------------------------------------------- */

static void test_full_incremental_restore(void **state)
{
	struct mem_bucket *b = bucket_new();
	struct backup_repo *r = repo_open(b, NULL, 0);
	struct mem_volume *v = volume_new();
	volume_fill(v, 0, 6 << 20, 1);	     /* chunks 0-1 */
	volume_fill(v, 20 << 20, 4096, 2);   /* chunk 5, one block */
	volume_fill(v, VOL_SIZE - 8192, 8192, 3); /* chunk 9 */
	struct backup_result full = make_backup(r, v, "s1", 10);
	assert_false(full.incremental);
	assert_int_equal(full.s.chunks, 4);
	assert_int_equal(full.s.chunks_uploaded, 4);
	assert_int_equal(bucket_count(b, "pre/chunks/"), 4);
	assert_int_equal(full.s.read_bytes, 4 * BACKUP_CHUNK_SIZE);
	volume_snapshot(v, "s1");
	uint8_t *at_s1 = malloc(VOL_SIZE);
	memcpy(at_s1, v->data, VOL_SIZE);
	restore_equals(r, full.s.id, at_s1, true);
	restore_equals(r, full.s.id, at_s1, false);

	/* One block changed: one chunk read and sent. */
	volume_fill(v, 20 << 20, 4096, 9);
	struct backup_result inc = make_backup(r, v, "s2", 20);
	assert_true(inc.incremental);
	assert_string_equal(inc.s.parent, full.s.id);
	assert_string_equal(inc.base_snapshot, "s1");
	assert_int_equal(inc.s.read_bytes, BACKUP_CHUNK_SIZE);
	assert_int_equal(inc.s.chunks_uploaded, 1);
	assert_int_equal(inc.s.chunks, 4);
	restore_equals(r, inc.s.id, v->data, true);
	restore_equals(r, full.s.id, at_s1, false);

	/* A chunk that becomes zeros is a hole in the next backup. */
	volume_snapshot(v, "s2");
	memset(v->data + (20 << 20), 0, 4096);
	struct backup_result third = make_backup(r, v, "s3", 30);
	assert_int_equal(third.s.chunks, 3);
	assert_int_equal(third.s.chunks_uploaded, 0);
	restore_equals(r, third.s.id, v->data, false);

	/* The base snapshot gone: a full read, nothing sent twice. */
	v->base_gone = true;
	struct backup_result again = make_backup(r, v, "s4", 40);
	assert_false(again.incremental);
	assert_non_null(strstr(again.note, "is gone"));
	assert_int_equal(again.s.chunks_uploaded, 0);
	assert_int_equal(again.chunks_present, 3);

	/* Listing: four backups of vm-disk, oldest first; none of another volume. */
	struct backup_summary *s;
	size_t n;
	char why[256];
	assert_int_equal(backup_repo_summaries(r, "vm-disk", &s, &n, why, sizeof(why)), 0);
	assert_int_equal(n, 4);
	assert_string_equal(s[0].id, full.s.id);
	free(s);
	assert_int_equal(backup_repo_summaries(r, "other", &s, &n, why, sizeof(why)), 0);
	assert_int_equal(n, 0);
	free(s);
	free(at_s1);
	volume_free(v);
	backup_repo_close(r);
	bucket_free(b);
}

static void test_interrupted_resumes(void **state)
{
	struct mem_bucket *b = bucket_new();
	struct backup_repo *r = repo_open(b, NULL, 0);
	struct mem_volume *v = volume_new();
	for (unsigned c = 0; c < 10; c++)
		volume_fill(v, (uint64_t)c * BACKUP_CHUNK_SIZE, 65536, c + 1);
	b->fail_put_after = 5; /* the 5th put fails: 4 chunks arrived */
	struct backup_source src = source_of(v, "s1", 5);
	struct backup_result res;
	char why[512] = "";
	assert_int_equal(backup_create(r, &src, &res, why, sizeof(why)), -EIO);
	assert_non_null(strstr(why, "injected failure"));
	assert_int_equal(bucket_count(b, "pre/backups/"), 0); /* never listed */
	size_t arrived = bucket_count(b, "pre/chunks/");
	assert_true(arrived >= 4 && arrived < 10);
	struct backup_result done = make_backup(r, v, "s1", 5);
	assert_int_equal(done.s.chunks_uploaded, 10 - arrived);
	assert_int_equal(done.chunks_present, arrived);
	restore_equals(r, done.s.id, v->data, true);

	/* The snapshot removed while it was read: no manifest. */
	v->removed = true;
	volume_fill(v, 0, 4096, 77);
	assert_int_equal(backup_create(r, &src, &res, why, sizeof(why)), -ESTALE);
	assert_int_equal(bucket_count(b, "pre/backups/"), 1);
	volume_free(v);
	backup_repo_close(r);
	bucket_free(b);
}

static void test_verify_and_damage(void **state)
{
	struct mem_bucket *b = bucket_new();
	struct backup_repo *r = repo_open(b, NULL, 0);
	struct mem_volume *v = volume_new();
	volume_fill(v, 0, 3 * BACKUP_CHUNK_SIZE, 4);
	struct backup_result res = make_backup(r, v, "s1", 5);
	struct backup_verify_result vr;
	char why[512];
	assert_int_equal(backup_verify(r, res.s.id, true, &vr, why, sizeof(why)), 0);
	assert_int_equal(vr.chunks, 3);
	assert_int_equal(vr.n_bad, 0);
	free(vr.bad);
	/* A chunk map altered in the bucket no longer matches its summary. */
	for (size_t i = 0; i < b->n; i++)
		if (strstr(b->o[i].key, "pre/maps/"))
			b->o[i].data[b->o[i].len - 1] ^= 1;
	assert_int_equal(backup_verify(r, res.s.id, false, &vr, why, sizeof(why)), -EBADMSG);
	assert_non_null(strstr(why, "not the one its summary records"));
	for (size_t i = 0; i < b->n; i++)
		if (strstr(b->o[i].key, "pre/maps/"))
			b->o[i].data[b->o[i].len - 1] ^= 1;
	/* One chunk altered in place (same size), one deleted. */
	struct mem_object *chunks[3];
	size_t k = 0;
	for (size_t i = 0; i < b->n; i++)
		if (strstr(b->o[i].key, "pre/chunks/"))
			chunks[k++] = &b->o[i];
	assert_int_equal(k, 3);
	chunks[0]->data[chunks[0]->len - 40] ^= 1;
	char gone[700];
	snprintf(gone, sizeof(gone), "%s", chunks[1]->key);
	mem_del(b, gone, why, sizeof(why));
	/* Shallow: the missing one. Deep: both, with their volume ranges. */
	assert_int_equal(backup_verify(r, res.s.id, false, &vr, why, sizeof(why)), -EBADMSG);
	assert_int_equal(vr.n_bad, 1);
	assert_int_equal(vr.bad[0].rc, -ENOENT);
	free(vr.bad);
	assert_int_equal(backup_verify(r, res.s.id, true, &vr, why, sizeof(why)), -EBADMSG);
	assert_int_equal(vr.n_bad, 2);
	bool saw_corrupt = false;
	for (size_t i = 0; i < vr.n_bad; i++)
		saw_corrupt |= vr.bad[i].rc == -EBADMSG && vr.bad[i].length == BACKUP_CHUNK_SIZE;
	assert_true(saw_corrupt);
	free(vr.bad);
	/* Restore refuses before writing anything: the missing chunk is found first. */
	struct mem_volume *t = volume_new();
	struct backup_target target = { .ops = &target_ops, .ctx = t, .fresh = true };
	struct backup_restore_result rr;
	assert_int_equal(backup_restore(r, res.s.id, &target, &rr, why, sizeof(why)), -ENOENT);
	assert_non_null(strstr(why, "missing from the bucket"));
	assert_int_equal(rr.bytes_written, 0);
	/* Put the missing one back (a new backup sends it): the corrupt one stops it. */
	make_backup(r, v, "s2", 6);
	assert_int_equal(backup_restore(r, res.s.id, &target, &rr, why, sizeof(why)), -EBADMSG);
	if (!strstr(why, "volume bytes"))
		fail_msg("%s", why);
	/* Whatever was written is the backup's own data. */
	for (uint64_t off = 0; off < VOL_SIZE; off += 4096)
		assert_true(memcmp(t->data + off, v->data + off, 4096) == 0 ||
			    memcmp(t->data + off, (uint8_t[4096]){ 0 }, 4096) == 0);
	volume_free(t);
	volume_free(v);
	backup_repo_close(r);
	bucket_free(b);
}

static void test_encrypted(void **state)
{
	struct mem_bucket *b = bucket_new();
	struct backup_repo *r = repo_open(b, key_path, 0);
	assert_true(backup_repo_encrypted(r));
	struct mem_volume *v = volume_new();
	volume_fill(v, 0, 2 * BACKUP_CHUNK_SIZE, 5);
	memcpy(v->data + 4096, "TOP SECRET PLAINTEXT", 20);
	struct backup_result res = make_backup(r, v, "nightly-42", 5);
	restore_equals(r, res.s.id, v->data, true);
	for (size_t i = 0; i < b->n; i++) {
		assert_null(memmem(b->o[i].data, b->o[i].len, "TOP SECRET", 10));
		assert_null(memmem(b->o[i].data, b->o[i].len, "basalt-pattern", 14));
		assert_null(memmem(b->o[i].data, b->o[i].len, "vm-disk", 7));
		assert_null(memmem(b->o[i].data, b->o[i].len, "nightly-42", 10));
		assert_null(strstr(b->o[i].key, "vm-disk"));
	}
	backup_repo_close(r);
	/* Without the key, with another key, a key on a plain repository. */
	repo_open(b, NULL, -ENOKEY);
	char other[80];
	snprintf(other, sizeof(other), "%s.other", key_path);
	unlink(other);
	char why[256];
	assert_int_equal(backup_key_create(other, why, sizeof(why)), 0);
	repo_open(b, other, -EKEYREJECTED);
	struct mem_bucket *plain = bucket_new();
	backup_repo_close(repo_open(plain, NULL, 0));
	repo_open(plain, key_path, -EPERM);
	unlink(other);
	bucket_free(plain);
	volume_free(v);
	bucket_free(b);
}

static size_t kept_count(const struct backup_prune_result *p)
{
	size_t n = 0;
	for (size_t i = 0; i < p->n; i++)
		n += p->keep[i];
	return n;
}

static void test_prune(void **state)
{
	struct mem_bucket *b = bucket_new();
	struct backup_repo *r = repo_open(b, NULL, 0);
	struct mem_volume *v = volume_new();
	char ids[4][BACKUP_ID_MAX];
	uint8_t *content[4];
	for (int i = 0; i < 4; i++) { /* each backup: chunk 0 shared, chunk 1+i its own */
		volume_fill(v, 0, 4096, 100);
		memset(v->data + BACKUP_CHUNK_SIZE, 0, 4 * BACKUP_CHUNK_SIZE);
		volume_fill(v, (uint64_t)(1 + i) * BACKUP_CHUNK_SIZE, 4096, (unsigned)i);
		char snap[8];
		snprintf(snap, sizeof(snap), "s%d", i);
		struct backup_result res = make_backup(r, v, snap, 10 + (uint64_t)i);
		snprintf(ids[i], sizeof(ids[i]), "%s", res.s.id);
		content[i] = malloc(VOL_SIZE);
		memcpy(content[i], v->data, VOL_SIZE);
		volume_snapshot(v, snap);
	}
	assert_int_equal(bucket_count(b, "pre/chunks/"), 5);
	struct backup_retention ret = { .last = 2 };
	struct backup_prune_result p;
	char why[512];
	/* A dry run changes nothing. */
	assert_int_equal(backup_prune(r, NULL, &ret, 0, true, &p, why, sizeof(why)), 0);
	assert_int_equal(kept_count(&p), 2);
	free(p.backups);
	free(p.keep);
	assert_int_equal(bucket_count(b, "pre/backups/"), 4);
	/* The first prune removes two backups and marks their own chunks
	 * (a second later than they were written: times are in seconds). */
	sleep(1);
	assert_int_equal(backup_prune(r, NULL, &ret, 0, false, &p, why, sizeof(why)), 0);
	assert_int_equal(kept_count(&p), 2);
	assert_int_equal(p.chunks_marked, 2);
	assert_int_equal(p.chunks_deleted, 0);
	free(p.backups);
	free(p.keep);
	assert_int_equal(bucket_count(b, "pre/backups/"), 2);
	assert_int_equal(bucket_count(b, "pre/maps/"), 2);
	assert_int_equal(bucket_count(b, "pre/chunks/"), 5);
	struct backup_marks marks;
	assert_int_equal(backup_marks_load(r, r->conn, &marks, why, sizeof(why)), 0);
	assert_int_equal(marks.n, 2);
	backup_marks_free(&marks);
	/* A backup that needs a marked chunk sends it again: the sweep spares it. */
	sleep(1);
	memcpy(v->data, content[0], VOL_SIZE);
	v->base_gone = true;
	struct backup_result again = make_backup(r, v, "s0-again", 20);
	assert_int_equal(again.s.chunks_uploaded, 1);
	/* With the grace passed, the other marked chunk goes. */
	sleep(1);
	ret.last = 3;
	assert_int_equal(backup_prune(r, NULL, &ret, 1, false, &p, why, sizeof(why)), 0);
	assert_int_equal(p.chunks_deleted, 1);
	free(p.backups);
	free(p.keep);
	assert_int_equal(bucket_count(b, "pre/chunks/"), 4);
	/* Every backup kept restores. */
	restore_equals(r, ids[2], content[2], true);
	restore_equals(r, ids[3], content[3], true);
	restore_equals(r, again.s.id, content[0], true);
	/* rm: the summary goes at once, and a second rm says there is none. */
	assert_int_equal(backup_remove(r, ids[2], why, sizeof(why)), 0);
	assert_int_equal(backup_remove(r, ids[2], why, sizeof(why)), -ENOENT);
	assert_non_null(strstr(why, "no backup"));
	assert_int_equal(backup_remove(r, "../etc", why, sizeof(why)), -EINVAL);
	for (int i = 0; i < 4; i++)
		free(content[i]);
	volume_free(v);
	backup_repo_close(r);
	bucket_free(b);
}

static void test_reader(void **state)
{
	struct mem_bucket *b = bucket_new();
	struct backup_repo *r = repo_open(b, key_path, 0);
	struct mem_volume *v = volume_new();
	volume_fill(v, BACKUP_CHUNK_SIZE + 4096, 8192, 3);
	volume_fill(v, VOL_SIZE - 4096, 4096, 4);
	struct backup_result res = make_backup(r, v, "s1", 5);
	struct backup_reader *rd;
	char why[512];
	assert_int_equal(backup_reader_open(r, "20991231T000000Z-00000000", &rd, why, sizeof(why)),
			 -ENOENT);
	assert_int_equal(backup_reader_open(r, res.s.id, &rd, why, sizeof(why)), 0);
	assert_int_equal(backup_reader_summary(rd)->size, VOL_SIZE);
	void *conn;
	assert_int_equal(backup_repo_connect(r, &conn, why, sizeof(why)), 0);
	uint8_t *buf = malloc(BACKUP_CHUNK_SIZE);
	for (uint64_t i = 0; i < VOL_SIZE / BACKUP_CHUNK_SIZE; i++) {
		uint32_t len;
		memset(buf, 0xee, BACKUP_CHUNK_SIZE);
		assert_int_equal(backup_reader_chunk(rd, conn, i, buf, &len, why, sizeof(why)), 0);
		assert_int_equal(len, BACKUP_CHUNK_SIZE);
		assert_memory_equal(buf, v->data + i * BACKUP_CHUNK_SIZE, len);
		assert_int_equal(backup_reader_has(rd, i), i == 1 || i == 9);
	}
	uint32_t len;
	assert_int_equal(backup_reader_chunk(rd, conn, 10, buf, &len, why, sizeof(why)), -EINVAL);
	/* A chunk altered in the bucket is refused, naming its volume bytes. */
	for (size_t i = 0; i < b->n; i++)
		if (strstr(b->o[i].key, "pre/chunks/"))
			b->o[i].data[b->o[i].len - 1] ^= 1;
	assert_int_equal(backup_reader_chunk(rd, conn, 1, buf, &len, why, sizeof(why)), -EBADMSG);
	assert_non_null(strstr(why, "volume bytes 4194304-"));
	free(buf);
	backup_repo_disconnect(r, conn);
	backup_reader_close(rd);
	volume_free(v);
	backup_repo_close(r);
	bucket_free(b);
}

/* A sweep that listed before the backup sent chunk X again and deletes
 * it after: X goes, and the marks' generation moves. */
static void sweep_behind(struct mem_bucket *b, const char *key)
{
	struct backup_repo *r = b->hook_arg;
	char why[256];
	b->after_put_key[0] = 0;
	mem_del(b, key, why, sizeof(why));
	struct backup_marks m;
	assert_int_equal(backup_marks_load(r, b, &m, why, sizeof(why)), 0);
	m.generation++;
	assert_int_equal(backup_marks_store(r, b, &m, why, sizeof(why)), 0);
	backup_marks_free(&m);
}

static void test_prune_race(void **state)
{
	struct mem_bucket *b = bucket_new();
	struct backup_repo *r = repo_open(b, NULL, 0);
	struct mem_volume *v = volume_new();
	volume_fill(v, 0, 4096, 1);			  /* chunk 0: X */
	volume_fill(v, BACKUP_CHUNK_SIZE, 4096, 2); /* chunk 1: Y */
	struct backup_result first = make_backup(r, v, "s1", 5);
	char why[512];
	assert_int_equal(backup_remove(r, first.s.id, why, sizeof(why)), 0);
	sleep(1);
	struct backup_retention keep = { .last = 1 };
	struct backup_prune_result p;
	assert_int_equal(backup_prune(r, NULL, &keep, 0, false, &p, why, sizeof(why)), 0);
	assert_int_equal(p.chunks_marked, 2);
	free(p.backups);
	free(p.keep);
	/* The next backup needs X and Y, both marked: it sends them again;
	 * a sweep deletes X right behind it. */
	char x[70];
	uint8_t id[32];
	backup_chunk_id(&(struct backup_keys){ 0 }, v->data, BACKUP_CHUNK_SIZE, id);
	number_hex_encode(id, 32, x);
	snprintf(b->after_put_key, sizeof(b->after_put_key), "chunks/%s", x);
	b->after_put = sweep_behind;
	b->hook_arg = r;
	struct backup_source src = source_of(v, "s2", 6);
	struct backup_result res;
	assert_int_equal(backup_create(r, &src, &res, why, sizeof(why)), -EAGAIN);
	assert_non_null(strstr(why, "run backup create again"));
	assert_int_equal(bucket_count(b, "pre/backups/"), 0); /* no map with a hole */
	/* Again: it sends X and commits. */
	struct backup_result again = make_backup(r, v, "s2", 6);
	assert_int_equal(again.s.chunks, 2);
	restore_equals(r, again.s.id, v->data, true);

	/* A prune that died deleting left gc/deleting behind: the next backup
	 * checks the marked chunks it relies on even though no generation moved. */
	assert_int_equal(backup_remove(r, again.s.id, why, sizeof(why)), 0);
	sleep(1);
	assert_int_equal(backup_prune(r, NULL, &keep, 0, false, &p, why, sizeof(why)), 0);
	free(p.backups);
	free(p.keep);
	char key[700];
	backup_key_name(r, "gc/deleting", key);
	assert_int_equal(mem_put(b, key, "{\"updated\": 1000}", 17, why, sizeof(why)), 0);
	unsigned heads = b->heads;
	struct backup_result third = make_backup(r, v, "s3", 7);
	assert_int_equal(third.s.chunks, 2);
	assert_true(b->heads >= heads + 2); /* both marked chunks looked at before the commit */
	volume_free(v);
	backup_repo_close(r);
	bucket_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_file),
		cmocka_unit_test(test_seal),
		cmocka_unit_test(test_manifest_codec),
		cmocka_unit_test(test_retention),
		cmocka_unit_test(test_full_incremental_restore),
		cmocka_unit_test(test_interrupted_resumes),
		cmocka_unit_test(test_verify_and_damage),
		cmocka_unit_test(test_encrypted),
		cmocka_unit_test(test_prune),
		cmocka_unit_test(test_reader),
		cmocka_unit_test(test_prune_race),
	};
	return cmocka_run_group_tests(tests, setup_key, teardown_key);
}
