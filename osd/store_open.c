/* Formatting, opening (load the metadata area, replay the journal, build
 * the allocator, checkpoint) and closing a store. Set-up I/O here runs the
 * loop synchronously (io_wait_for): nothing else is served yet. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/assert.h"
#include "common/crc32c.h"
#include "common/config.h"
#include "common/log.h"
#include "common/why.h"
#include "store_int.h"

#define STORE_IO_CHUNK (4u << 20)
#define STORE_OPEN_CHECK_MAX 65536

static int sync_rw(struct io_loop *loop, int fd, bool write, void *buf,
		   size_t len, uint64_t off)
{
	struct io_wait w = { 0 };
	struct io_op op = { .done = io_wait_done, .ctx = &w };
	while (len) {
		size_t n = len > STORE_IO_CHUNK ? STORE_IO_CHUNK : len;
		if (write)
			io_write(loop, &op, fd, buf, n, off);
		else
			io_read(loop, &op, fd, buf, n, off);
		int rc = io_wait_for(loop, &w);
		if (rc < 0)
			return rc;
		if ((size_t)rc != n)
			return -EIO;
		buf = (uint8_t *)buf + n;
		off += n;
		len -= n;
	}
	return 0;
}

static int sync_fsync(struct io_loop *loop, int fd)
{
	struct io_wait w = { 0 };
	struct io_op op = { .done = io_wait_done, .ctx = &w };
	io_fsync(loop, &op, fd, true);
	return io_wait_for(loop, &w);
}

int store_read_sync(struct store *s, void *buf, size_t len, uint64_t off)
{
	return sync_rw(s->loop, s->fd, false, buf, len, off);
}

/* --- superblock writes: alternate slots, each followed by a flush --------- */

static void sb_write_step(struct io_op *op, int res)
{
	struct store *s = op->ctx;
	if (res >= 0 && !s->sb_synced && res != STORE_SB_SIZE) {
		LOG_ERROR("store: superblock write was short (%d of %d bytes)", res, STORE_SB_SIZE);
		res = -EIO;
	} else if (res < 0) {
		LOG_ERROR("store: %s failed: %s",
			  s->sb_synced ? "fdatasync after the superblock write" : "superblock write",
			  strerror(-res));
	}
	if (res >= 0 && !s->sb_synced) {
		s->sb_synced = true;
		store_crash_point("sb-written");
		io_fsync(s->loop, &s->sb_io, s->fd, true);
		return;
	}
	s->sb_done(s, res < 0 ? res : 0);
}

/* Writes the superblock to the slot after the current one, then flushes;
 * DONE(s, 0 or -errno) runs from the loop. One at a time. */
void store_write_sb(struct store *s, void (*done)(struct store *, int))
{
	BASALT_ASSERT(!s->sb_io.in_flight);
	s->sb.generation++;
	s->sb.journal_epoch = s->j_epoch;
	store_sb_encode(&s->sb, s->sb_buf);
	s->sb_done = done;
	s->sb_synced = false;
	s->sb_io.ctx = s;
	s->sb_io.done = sb_write_step;
	io_write(s->loop, &s->sb_io, s->fd, s->sb_buf, STORE_SB_SIZE,
		 (s->sb.generation & 1) ? STORE_SB_SLOT1 : 0);
}

/* --- mkfs ----------------------------------------------------------------------- */

/* Names what already lives on the device, or NULL. BUF holds its first
 * 128 KiB. */
static const char *store_signature(const uint8_t *buf)
{
	if (store_sb_has_magic(buf) || store_sb_has_magic(buf + STORE_SB_SLOT1))
		return "a Basalt store";
	if (le_load16(buf + 1080) == 0xEF53)
		return "an ext2/3/4 filesystem";
	if (memcmp(buf, "XFSB", 4) == 0)
		return "an XFS filesystem";
	if (memcmp(buf + 65536 + 64, "_BHRfS_M", 8) == 0)
		return "a btrfs filesystem";
	if (memcmp(buf, "LUKS\xba\xbe", 6) == 0)
		return "a LUKS volume";
	if (memcmp(buf + 4086, "SWAPSPACE2", 10) == 0 ||
	    memcmp(buf + 4086, "SWAP-SPACE", 10) == 0)
		return "swap space";
	if (memcmp(buf + 512, "LABELONE", 8) == 0)
		return "an LVM physical volume";
	if (memcmp(buf + 512, "EFI PART", 8) == 0)
		return "a GPT partition table";
	if (buf[510] == 0x55 && buf[511] == 0xAA)
		return "a partition table or boot sector";
	return NULL;
}

static uint32_t store_dio_align(const char *path)
{
	struct statx stx;
	if (statx(AT_FDCWD, path, 0, STATX_DIOALIGN, &stx) == 0 &&
	    (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align &&
	    stx.stx_dio_offset_align <= STORE_CHUNK)
		return stx.stx_dio_offset_align;
	return STORE_SECTOR;
}

static int mkfs_open(struct io_loop *loop, const char *path, uint64_t want,
		     int *fd, uint64_t *size, char *why, size_t why_len)
{
	int rc = io_open(loop, path, O_RDWR | O_DIRECT, 0, fd);
	bool created = false;
	if (rc == -ENOENT) {
		if (!want)
			return why_set(why, why_len, -EINVAL,
					 "%s does not exist; give --size to create it", path);
		rc = io_open(loop, path, O_RDWR | O_CREAT | O_EXCL | O_DIRECT, 0600, fd);
		created = true;
	}
	if (rc == -EINVAL) /* no O_DIRECT here (tmpfs): refuse clearly */
		return why_set(why, why_len, rc,
				 "%s: the filesystem does not support O_DIRECT", path);
	if (rc)
		return why_set(why, why_len, rc, "cannot open %s: %s", path,
				 strerror(-rc));
	rc = io_file_size(loop, *fd, size);
	if (rc == 0 && want > *size) {
		struct io_wait w = { 0 };
		struct io_op op = { .done = io_wait_done, .ctx = &w };
		io_fallocate(loop, &op, *fd, 0, 0, want);
		rc = io_wait_for(loop, &w);
		if (rc)
			rc = why_set(why, why_len, rc, "cannot allocate %llu bytes for %s: %s",
				       (unsigned long long)want, path, strerror(-rc));
		*size = want;
	} else if (rc == 0 && want && want < *size) {
		*size = want; /* use the first WANT bytes */
	}
	if (rc && created)
		unlink(path);
	return rc;
}

int store_mkfs(struct io_loop *loop, const char *path,
	       const struct store_mkfs_params *params, char *why, size_t why_len)
{
	uint32_t block_size = params->block_size ? params->block_size : 128u << 10;
	int fd;
	uint64_t size;
	int rc = mkfs_open(loop, path, params->size, &fd, &size, why, why_len);
	if (rc)
		return rc;
	uint64_t journal = params->journal_size;
	if (!journal) {
		journal = 32u << 20;
		if (journal > size / 8)
			journal = size / 8 / STORE_CHUNK * STORE_CHUNK;
		if (journal < STORE_JOURNAL_MIN)
			journal = STORE_JOURNAL_MIN;
	}
	struct store_sb sb = { .format = STORE_FORMAT_VERSION };
	uint8_t *buf = NULL;
	rc = store_layout_compute(size, block_size, journal, store_dio_align(path),
				  &sb.layout);
	if (rc) {
		rc = why_set(why, why_len, rc,
			       "cannot lay out a store of %llu bytes with %u-byte blocks "
			       "and a %llu-byte journal (block size: a power of two from "
			       "64K to 1M; journal: at least 4M)",
			       (unsigned long long)size, block_size,
			       (unsigned long long)journal);
		goto out;
	}
	if (posix_memalign((void **)&buf, STORE_CHUNK, STORE_IO_CHUNK)) {
		rc = -ENOMEM;
		goto out;
	}
	uint64_t probe = size < 128 * 1024 ? size / STORE_CHUNK * STORE_CHUNK : 128 * 1024;
	memset(buf, 0, 128 * 1024);
	rc = sync_rw(loop, fd, false, buf, probe, 0);
	if (rc) {
		rc = why_set(why, why_len, rc, "cannot read %s: %s", path, strerror(-rc));
		goto out;
	}
	const char *found = store_signature(buf);
	if (found && !params->force) {
		rc = why_set(why, why_len, -EEXIST,
			       "%s already holds %s; use --force to format it anyway",
			       path, found);
		goto out;
	}
	/* Zero the superblocks, journal and metadata: later writes there are
	 * overwrites, and replay never mistakes old bytes for a batch. */
	memset(buf, 0, STORE_IO_CHUNK);
	for (uint64_t off = 0; off < sb.layout.data_offset; off += STORE_IO_CHUNK) {
		uint64_t n = sb.layout.data_offset - off < STORE_IO_CHUNK
				     ? sb.layout.data_offset - off
				     : STORE_IO_CHUNK;
		rc = sync_rw(loop, fd, true, buf, n, off);
		if (rc) {
			rc = why_set(why, why_len, rc, "cannot write %s: %s", path,
				       strerror(-rc));
			goto out;
		}
	}
	if (getrandom(sb.uuid, sizeof(sb.uuid), 0) != sizeof(sb.uuid))
		memset(sb.uuid, 0x42, sizeof(sb.uuid));
	sb.generation = 1;
	sb.journal_tail = 0;
	sb.journal_seq = 1;
	sb.journal_epoch = 1;
	sb.created_unix = (uint64_t)time(NULL);
	store_sb_encode(&sb, buf);
	rc = sync_rw(loop, fd, true, buf, STORE_SB_SIZE, STORE_SB_SLOT1);
	if (rc == 0)
		rc = sync_fsync(loop, fd);
	if (rc)
		rc = why_set(why, why_len, rc, "cannot write the superblock: %s",
			       strerror(-rc));
out:
	free(buf);
	io_close(loop, fd);
	return rc;
}

/* --- open ------------------------------------------------------------------------- */

void store_params_default(struct store_params *p)
{
	memset(p, 0, sizeof(*p));
	p->sync = STORE_SYNC_ALWAYS;
	p->sync_interval_ns = IO_MS(5);
	p->direct = true;
	p->crc_cache_bytes = STORE_CRC_CACHE_DEFAULT;
}

int store_params_from_config(struct cfg *cfg, const char *section,
			     struct store_params *p)
{
	static const char *const modes[] = { "always", "batch", NULL };
	int mode;
	uint64_t interval_ms;
	const char *bad;
	store_params_default(p);
	if (cfg_get_enum(cfg, section, "osd_sync", modes, 0, &mode) < 0 ||
	    cfg_get_duration_ms(cfg, section, "osd_sync_interval", 5, 1, 1000,
				&interval_ms) < 0 ||
	    cfg_get_str(cfg, section, "osd_debug_bad_range", "", &bad) < 0 ||
	    cfg_get_size(cfg, section, "osd_crc_cache_size", STORE_CRC_CACHE_DEFAULT, 0,
			 1ull << 40, &p->crc_cache_bytes) < 0)
		return -EINVAL;
	p->sync = mode == 1 ? STORE_SYNC_BATCH : STORE_SYNC_ALWAYS;
	p->sync_interval_ns = IO_MS(interval_ms);
	if (*bad) {
		char off[64];
		const char *plus = strchr(bad, '+');
		if (!plus || (size_t)(plus - bad) >= sizeof(off))
			return cfg_reject(cfg, section, "osd_debug_bad_range",
					  "expected OFFSET+LENGTH (like 1G+128K), got '%s'", bad);
		memcpy(off, bad, (size_t)(plus - bad));
		off[plus - bad] = 0;
		if (cfg_parse_size(off, &p->bad_offset) || cfg_parse_size(plus + 1, &p->bad_len) ||
		    !p->bad_len)
			return cfg_reject(cfg, section, "osd_debug_bad_range",
					  "expected OFFSET+LENGTH (like 1G+128K), got '%s'", bad);
	}
	return 0;
}

static int store_load_sb(struct store *s, char *why, size_t why_len)
{
	struct store_sb a, b;
	int ra = store_sb_decode(s->sb_buf, &a);
	int rb = store_sb_decode(s->sb_buf + STORE_SB_SIZE, &b);
	if (ra == -EPROTONOSUPPORT || rb == -EPROTONOSUPPORT)
		return why_set(why, why_len, -EPROTONOSUPPORT,
				 "the store was written by a newer Basalt (format > %d)",
				 STORE_FORMAT_VERSION);
	if (ra && rb)
		return why_set(why, why_len, -EBADMSG,
				 store_sb_has_magic(s->sb_buf) ||
						 store_sb_has_magic(s->sb_buf + STORE_SB_SIZE)
					 ? "both superblocks are corrupt"
					 : "not a Basalt store (no superblock)");
	s->sb = ra ? b : rb ? a : (a.generation > b.generation ? a : b);
	s->L = s->sb.layout;
	return 0;
}

static int store_alloc_memory(struct store *s)
{
	const struct store_layout *L = &s->L;
	uint64_t overlays = L->journal_size / STORE_CHUNK + 1;
	uint64_t buckets = 1;
	/* Chains of two records on average when full: 2 bytes a block. */
	while (buckets < (L->block_count + overlays) / 2)
		buckets <<= 1;
	s->bucket_mask = buckets - 1;
	s->obj_size = sizeof(struct store_obj) + L->chunks_per_block * sizeof(uint32_t);
	s->rec_bitmap = (L->chunks_per_block + 31) / 32 * 4;
	s->rec_size = (uint32_t)(sizeof(struct store_rec) + s->rec_bitmap + 7) / 8 * 8;
	if (L->block_count >= STORE_REC_NONE)
		return -EFBIG;
	s->buckets = calloc(buckets, sizeof(*s->buckets));
	s->blocks = calloc(L->block_count, sizeof(*s->blocks));
	s->free_bits = calloc((L->block_count + 63) / 64, sizeof(uint64_t));
	/* calloc: resident only as far as the list ever grows. */
	s->dirty = calloc(L->block_count, sizeof(*s->dirty));
	s->overlay_pool = calloc(overlays, sizeof(*s->overlay_pool));
	if (!s->buckets || !s->blocks || !s->free_bits || !s->dirty ||
	    !s->overlay_pool || store_crc_init(s, s->p.crc_cache_bytes) ||
	    posix_memalign((void **)&s->mirror, STORE_CHUNK, L->journal_size))
		return -ENOMEM;
	for (uint64_t i = 0; i < overlays; i++) {
		s->overlay_pool[i].next = s->overlay_free;
		s->overlay_free = &s->overlay_pool[i];
	}
	s->mirror_index = io_register_buffer(s->loop, s->mirror, L->journal_size);
	if (s->mirror_index < 0)
		LOG_DEBUG("journal mirror not registered (%s): plain I/O",
			  strerror(-s->mirror_index));
	return 0;
}

/* Loads one block's entry: the valid slot with the newer seq wins. The
 * object gets a cold record (no hot state: open makes none), its CRCs go
 * to the cache while it has room. */
static int store_load_entry(struct store *s, uint64_t b, const uint8_t *a_buf,
			    const uint8_t *b_buf, uint64_t *stale, char *why,
			    size_t why_len)
{
	struct store_entry ea, eb, *e = NULL;
	int ra = store_entry_decode(a_buf, s->L.chunks_per_block, s->L.entry_size, b, &ea);
	int rb = store_entry_decode(b_buf, s->L.chunks_per_block, s->L.entry_size, b, &eb);
	if (ra < 0 && rb < 0)
		return why_set(why, why_len, -EUCLEAN,
				 "metadata entry of block %llu is corrupt in both slots",
				 (unsigned long long)b);
	if (ra == 0 && (rb != 0 || !store_seq_newer(eb.seq, ea.seq)))
		e = &ea;
	else if (rb == 0)
		e = &eb;
	struct store_block *blk = &s->blocks[b];
	if (!e)
		return 0; /* never written */
	blk->seq = e->seq;
	if (e == &eb)
		blk->flags |= STORE_BLOCK_SLOT_B;
	if (!e->used)
		return 0;
	uint32_t i = store_rec_find(s, &e->oid);
	if (!i && !(i = store_rec_new(s, &e->oid)))
		return -ENOMEM;
	struct store_rec *r = store_rec(s, i);
	if (r->block != STORE_REC_NONE) {
		/* Two entries claim the object: a crash between writing the new
		 * one and clearing the old. The newer version wins. */
		(*stale)++;
		if (r->version >= e->version) {
			store_block_mark_dirty(s, b);
			return 0;
		}
		store_pg_cold(s, i, false);
		s->blocks[r->block].owner = 0;
		store_crc_drop(s, r->block);
		store_block_mark_dirty(s, r->block);
	}
	r->block = (uint32_t)b;
	r->version = e->version;
	memcpy(r->bitmap, e->bitmap, s->rec_bitmap);
	blk->owner = i;
	store_pg_cold(s, i, true);
	store_crc_put(s, b, e->crc, true);
	return 0;
}

/* Progress of a long load, every 2 s. */
struct load_progress {
	uint64_t start_ns, last_ns;
	const char *what;
};

static void load_progress(struct store *s, struct load_progress *p, uint64_t done,
			  uint64_t total)
{
	uint64_t now = io_now_ns(s->loop);
	if (!p->start_ns)
		p->start_ns = p->last_ns = now;
	if (now - p->last_ns < IO_SEC(2) && done < total)
		return;
	p->last_ns = now;
	if (done < total)
		LOG_INFO("store: loaded %llu/%llu %s", (unsigned long long)done,
			 (unsigned long long)total, p->what);
}

/* Reads both slot halves in big sequential chunks, the next pair in
 * flight while this one is decoded. */
static int store_load_meta(struct store *s, char *why, size_t why_len)
{
	const uint64_t per_read = STORE_IO_CHUNK / s->L.entry_size;
	uint8_t *buf[2][2] = { { NULL } };
	struct io_wait w[2][2];
	struct io_op op[2][2];
	memset(op, 0, sizeof(op));
	struct load_progress prog = { .what = "metadata entries" };
	int rc = 0;
	for (int k = 0; k < 4; k++)
		if (posix_memalign((void **)&buf[k / 2][k % 2], STORE_CHUNK, STORE_IO_CHUNK))
			rc = -ENOMEM;
	uint64_t count = s->L.block_count, nread = (count + per_read - 1) / per_read;
	for (uint64_t r = 0; r <= nread && !rc; r++) {
		/* Start read R (into set R % 2), then decode read R - 1. */
		for (int half = 0; half < 2 && r < nread; half++) {
			uint64_t first = r * per_read;
			uint64_t n = count - first < per_read ? count - first : per_read;
			size_t len = (n * s->L.entry_size + STORE_CHUNK - 1) / STORE_CHUNK * STORE_CHUNK;
			w[r % 2][half] = (struct io_wait){ 0 };
			op[r % 2][half] = (struct io_op){ .done = io_wait_done, .ctx = &w[r % 2][half] };
			io_read(s->loop, &op[r % 2][half], s->fd, buf[r % 2][half], len,
				store_entry_offset(s, first, half));
		}
		if (r == 0)
			continue;
		uint64_t p = r - 1, first = p * per_read;
		uint64_t n = count - first < per_read ? count - first : per_read;
		size_t len = (n * s->L.entry_size + STORE_CHUNK - 1) / STORE_CHUNK * STORE_CHUNK;
		for (int half = 0; half < 2; half++) {
			int res = io_wait_for(s->loop, &w[p % 2][half]);
			if ((res < 0 || (size_t)res != len) && !rc)
				rc = why_set(why, why_len, res < 0 ? res : -EIO,
					     "cannot read the metadata area: %s",
					     strerror(res < 0 ? -res : EIO));
		}
		for (uint64_t i = 0; i < n && !rc; i++)
			rc = store_load_entry(s, first + i, buf[p % 2][0] + i * s->L.entry_size,
					      buf[p % 2][1] + i * s->L.entry_size,
					      &s->report.stale_entries, why, why_len);
		load_progress(s, &prog, first + n, count);
	}
	/* On an error, let reads still in flight land before freeing. */
	for (int k = 0; k < 4 && rc && nread; k++)
		if (op[k / 2][k % 2].in_flight)
			io_wait_for(s->loop, &w[k / 2][k % 2]);
	for (int k = 0; k < 4; k++)
		free(buf[k / 2][k % 2]);
	return rc;
}

/* --- replay ----------------------------------------------------------------
 *
 * 1. Scan: follow the chain of batches from the tail (right epoch, next
 *    seq, valid CRC, small-write data matching its CRCs) and list them.
 * 2. Verify whole-block writes, newest batch first: a block named by a
 *    BIG record must still hold the data its CRCs describe, unless a later
 *    record released it (the block may have been reused: immediate GC) or
 *    later small writes of the object may have been flushed over some
 *    chunks (those are skipped). A mismatch means that batch was never
 *    durable, so the chain ends before it; repeat until nothing fails.
 * 3. Apply every batch of the chain in order. */

struct replay_batch {
	uint64_t pos, seq;
	struct store_batch hdr;
};

struct replay_state {
	struct replay_batch *batches;
	size_t count, cap;
};

struct replay_obj {
	struct object_id oid;
	bool used, released;
	uint8_t later[STORE_MAX_CHUNKS / 8]; /* chunks written after */
};

struct replay_map {
	struct replay_obj *slots;
	uint64_t mask;
};

static struct replay_obj *replay_map_get(struct replay_map *m,
					 const struct object_id *oid)
{
	uint64_t i = object_id_hash(oid) & m->mask;
	while (m->slots[i].used && !object_id_equal(&m->slots[i].oid, oid))
		i = (i + 1) & m->mask;
	if (!m->slots[i].used) {
		m->slots[i].used = true;
		m->slots[i].oid = *oid;
	}
	return &m->slots[i];
}

static bool replay_small_ok(const struct store_batch *bt, const uint8_t *base,
			    uint32_t chunks_per_block)
{
	const uint8_t *data = base + store_batch_header_space(bt->header_len);
	struct dec d;
	struct store_record r;
	int rc;
	unsigned count = 0;
	dec_init(&d, base + STORE_BATCH_HEADER_LEN, bt->header_len - STORE_BATCH_HEADER_LEN);
	while ((rc = store_record_next(&d, chunks_per_block, &r)) == 1) {
		count++;
		if (r.type != STORE_REC_SMALL)
			continue;
		if ((uint64_t)r.data_off + r.nchunks * STORE_CHUNK > bt->data_len)
			return false;
		for (uint32_t i = 0; i < r.nchunks; i++)
			if (crc32c(0, data + r.data_off + i * STORE_CHUNK, STORE_CHUNK) !=
			    store_record_crc(&r, i))
				return false;
	}
	return rc == 0 && count == bt->record_count;
}

/* Pass 1. */
static int replay_scan(struct store *s, struct replay_state *st)
{
	uint64_t pos = s->sb.journal_tail, seq = s->sb.journal_seq, appended = 0;
	const char *end = "end of journal";
	while (appended < s->L.journal_size) {
		if (pos == s->L.journal_size)
			pos = 0;
		struct store_batch bt;
		uint8_t *base = s->mirror + pos;
		if (store_batch_decode(base, s->L.journal_size - pos,
				       s->L.chunks_per_block, &bt) ||
		    bt.epoch != s->j_epoch || bt.seq != seq)
			break;
		if (bt.kind == STORE_BATCH_WRAP) {
			appended += s->L.journal_size - pos;
			pos = 0;
			seq++;
			continue;
		}
		uint64_t space = store_batch_header_space(bt.header_len) + bt.data_len;
		if (space > s->L.journal_size - pos || appended + space > s->L.journal_size) {
			end = "batch runs past the journal";
			break;
		}
		if (!replay_small_ok(&bt, base, s->L.chunks_per_block)) {
			end = "torn batch discarded";
			s->report.torn_batches++;
			break;
		}
		if (st->count == st->cap) {
			size_t cap = st->cap ? 2 * st->cap : 64;
			struct replay_batch *nb = realloc(st->batches, cap * sizeof(*nb));
			if (!nb)
				return -ENOMEM;
			st->batches = nb;
			st->cap = cap;
		}
		st->batches[st->count++] = (struct replay_batch){ pos, seq, bt };
		appended += space;
		pos += space;
		seq++;
	}
	snprintf(s->report.journal_end, sizeof(s->report.journal_end), "%s", end);
	return 0;
}

/* Pass 2 over batches [0, end), newest first: checks that each BIG
 * record's block still holds the data its CRCs describe. A block that
 * does not (or cannot be read) was never durable — the batch was cut by
 * the crash, never acknowledged: *bad is set to it and the caller drops
 * it and everything after — unless the next batch says this one was
 * durable before it was written (STORE_BATCH_PREV_DURABLE). Then it is
 * damage on the device: the record is kept, reads of those chunks fail
 * their checksums and the PG layer repairs them from another copy;
 * cutting there would forget every acknowledged batch after it.
 *
 * Linear in the journal: (a) list the blocks to check, newest first, with
 * the chunks later small writes may have overwritten; (b) read them,
 * REPLAY_QD at a time; (c) judge them in that order. */
#define REPLAY_QD 16

struct replay_check {
	struct store_record r;
	size_t batch;
	bool durable, ok, read_failed;
	uint8_t later[STORE_MAX_CHUNKS / 8];
};

/* (a): every BIG record not released by a later record, newest first. */
static int replay_list_checks(struct store *s, struct replay_state *st, size_t end,
			      struct replay_check **out, size_t *n)
{
	size_t records = 0;
	for (size_t i = 0; i < end; i++)
		records += st->batches[i].hdr.record_count;
	uint64_t cap = 16;
	while (cap < 2 * records)
		cap <<= 1;
	struct replay_map map = { calloc(cap, sizeof(struct replay_obj)), cap - 1 };
	struct store_record *recs = NULL;
	struct replay_check *c = calloc(records ? records : 1, sizeof(*c));
	int rc = map.slots && c ? 0 : -ENOMEM;
	*n = 0;
	for (size_t i = end; i-- > 0 && !rc;) {
		struct replay_batch *b = &st->batches[i];
		struct dec d;
		free(recs);
		recs = calloc(b->hdr.record_count ? b->hdr.record_count : 1, sizeof(*recs));
		if (!recs) {
			rc = -ENOMEM;
			break;
		}
		dec_init(&d, s->mirror + b->pos + STORE_BATCH_HEADER_LEN,
			 b->hdr.header_len - STORE_BATCH_HEADER_LEN);
		for (uint32_t k = 0; k < b->hdr.record_count; k++)
			store_record_next(&d, s->L.chunks_per_block, &recs[k]);
		for (uint32_t k = b->hdr.record_count; k-- > 0;) {
			struct store_record *r = &recs[k];
			struct replay_obj *o = replay_map_get(&map, &r->oid);
			if (r->type == STORE_REC_SMALL) {
				for (uint32_t ch = 0; ch < r->nchunks; ch++)
					store_bit_set(o->later, r->first_chunk + ch);
				continue;
			}
			if (r->type == STORE_REC_BIG && !o->released) {
				struct replay_check *x = &c[(*n)++];
				x->r = *r; /* its CRCs and bitmap point into the mirror */
				x->batch = i;
				x->durable = i + 1 < end &&
					     (st->batches[i + 1].hdr.flags & STORE_BATCH_PREV_DURABLE);
				memcpy(x->later, o->later, sizeof(x->later));
			}
			o->released = true;
		}
	}
	free(recs);
	free(map.slots);
	if (rc) {
		free(c);
		c = NULL;
	}
	*out = c;
	return rc;
}

/* Whether the block X names, read into BUF, holds what X wrote. A masked
 * record's unwritten chunks read as zeros whatever the block holds (a
 * clone that took its head's block keeps what was there before). */
static bool replay_block_ok(const struct replay_check *x, const uint8_t *buf)
{
	const struct store_record *r = &x->r;
	for (uint32_t c = 0; c < r->nchunks; c++)
		if (!store_bit_test(x->later, c) && (!r->written || store_bit_test(r->written, c)) &&
		    crc32c(0, buf + c * STORE_CHUNK, STORE_CHUNK) != store_record_crc(r, c))
			return false;
	return true;
}

/* (b): reads every listed block, REPLAY_QD at a time. */
static int replay_read_checks(struct store *s, struct replay_check *c, size_t n)
{
	uint8_t *buf = NULL;
	struct io_op op[REPLAY_QD];
	struct io_wait w[REPLAY_QD];
	struct load_progress prog = { .what = "whole-block writes of the journal checked" };
	if (posix_memalign((void **)&buf, STORE_CHUNK, (size_t)REPLAY_QD * s->L.block_size))
		return -ENOMEM;
	for (size_t first = 0; first < n; first += REPLAY_QD) {
		size_t m = n - first < REPLAY_QD ? n - first : REPLAY_QD;
		for (size_t k = 0; k < m; k++) {
			struct replay_check *x = &c[first + k];
			w[k] = (struct io_wait){ 0 };
			op[k] = (struct io_op){ .done = io_wait_done, .ctx = &w[k] };
			if (x->r.block < s->L.block_count)
				io_read(s->loop, &op[k], s->fd, buf + k * s->L.block_size,
					s->L.block_size, store_block_offset(s, x->r.block));
		}
		for (size_t k = 0; k < m; k++) {
			struct replay_check *x = &c[first + k];
			if (x->r.block >= s->L.block_count)
				continue; /* judged as corrupt in (c) */
			int res = io_wait_for(s->loop, &w[k]);
			x->read_failed = res != (int)s->L.block_size;
			x->ok = !x->read_failed && replay_block_ok(x, buf + k * s->L.block_size);
		}
		load_progress(s, &prog, first + m, n);
	}
	free(buf);
	return 0;
}

static int replay_verify_big(struct store *s, struct replay_state *st,
			     size_t end, uint8_t *scratch, size_t *bad)
{
	struct replay_check *c;
	size_t n;
	(void)scratch;
	*bad = end;
	s->report.damaged_blocks = 0;
	int rc = replay_list_checks(s, st, end, &c, &n);
	if (!rc)
		rc = replay_read_checks(s, c, n);
	/* (c), newest first: the first block that fails ends the chain there,
	 * unless its batch was durable (damage: kept). */
	for (size_t k = 0; k < n && !rc; k++) {
		struct replay_check *x = &c[k];
		if (x->r.block >= s->L.block_count || (!x->ok && !x->durable)) {
			*bad = x->batch;
			break;
		}
		if (!x->ok) {
			char id[64];
			LOG_ERROR("replay: block %llu of object %s %s: kept (its batch "
				  "was durable); its reads will fail their checksums",
				  (unsigned long long)x->r.block,
				  object_id_str(&x->r.oid, id, sizeof(id)),
				  x->read_failed ? "cannot be read" : "does not hold the data written");
			s->report.damaged_blocks++;
		}
	}
	free(c);
	return rc;
}

static int replay_apply(struct store *s, struct replay_state *st, size_t end,
			char *why, size_t why_len)
{
	for (size_t i = 0; i < end; i++) {
		struct replay_batch *b = &st->batches[i];
		uint8_t *base = s->mirror + b->pos;
		uint8_t *data = base + store_batch_header_space(b->hdr.header_len);
		struct dec d;
		struct store_record r;
		dec_init(&d, base + STORE_BATCH_HEADER_LEN,
			 b->hdr.header_len - STORE_BATCH_HEADER_LEN);
		while (store_record_next(&d, s->L.chunks_per_block, &r) == 1) {
			int rc = store_apply_record(s, &r, data, b->seq);
			if (rc)
				return why_set(why, why_len, rc,
						 "journal batch %llu conflicts with the metadata area",
						 (unsigned long long)b->seq);
			s->report.replayed_records++;
		}
		s->report.replayed_batches++;
	}
	return 0;
}

static int store_replay(struct store *s, char *why, size_t why_len)
{
	struct replay_state st = { 0 };
	uint8_t *scratch = NULL;
	int rc = store_read_sync(s, s->mirror, s->L.journal_size, s->L.journal_offset);
	if (rc)
		return why_set(why, why_len, rc, "cannot read the journal: %s",
				 strerror(-rc));
	s->j_epoch = s->sb.journal_epoch;
	if (posix_memalign((void **)&scratch, STORE_CHUNK, s->L.block_size))
		return -ENOMEM;
	rc = replay_scan(s, &st);
	size_t end = st.count, bad;
	while (!rc && end > 0) {
		rc = replay_verify_big(s, &st, end, scratch, &bad);
		if (rc || bad == end)
			break;
		end = bad;
		s->report.torn_batches++;
		snprintf(s->report.journal_end, sizeof(s->report.journal_end),
			 "torn batch discarded");
	}
	s->replaying = true;
	if (!rc)
		rc = replay_apply(s, &st, end, why, why_len);
	s->replaying = false;
	/* The head: right after the last batch kept (or the tail). */
	uint64_t pos = s->sb.journal_tail, seq = s->sb.journal_seq, appended = 0;
	if (end > 0) {
		struct replay_batch *last = &st.batches[end - 1];
		uint64_t space = store_batch_header_space(last->hdr.header_len) +
				 last->hdr.data_len;
		appended = (last->pos >= pos ? last->pos - pos
					     : s->L.journal_size - pos + last->pos) + space;
		pos = last->pos + space;
		seq = last->seq + 1;
	}
	free(st.batches);
	free(scratch);
	if (rc)
		return rc;
	if (pos == s->L.journal_size)
		pos = 0;
	s->j_tail = s->sb.journal_tail;
	s->j_tail_seq = s->sb.journal_seq;
	s->j_head = s->j_applied_pos = pos;
	s->j_appended = s->j_applied_appended = appended;
	s->j_trimmed = 0;
	s->j_seq = s->j_applied_seq = seq;
	return 0;
}

static int settle_one(struct store *s, uint32_t i, void *arg)
{
	uint32_t hot = store_rec(s, i)->hot; /* only hot objects hold data */
	(void)arg;
	if (hot)
		store_promise_settle(s, s->hot_tab[hot]);
	return 0;
}

/* Blocks nobody owns go to the allocator; replay leaves no reservations.
 * Then every object whose journaled data has no block is promised one
 * (invariant 6); the blocks held back for a PG's own records are 1% of
 * the blocks (at least 8, at most a quarter). */
static void store_build_allocator(struct store *s)
{
	for (uint64_t b = 0; b < s->L.block_count; b++) {
		struct store_block *blk = &s->blocks[b];
		blk->flags &= (uint8_t)~(STORE_BLOCK_RESERVED | STORE_BLOCK_FREE_LATER);
		if (!blk->owner) {
			s->free_bits[b / 64] |= 1ULL << (b % 64);
			s->free_count++;
		}
	}
	store_rec_each(s, settle_one, NULL);
	if (s->promised > s->free_count) {
		s->report.unplaceable = s->promised - s->free_count;
		LOG_ERROR("store: %llu objects have journaled data and no block to flush it "
			  "to (%llu free): written by an older version that let the store "
			  "overfill; reads work, writes that need space are refused, and the "
			  "journal is trimmed only as space is freed",
			  (unsigned long long)s->promised, (unsigned long long)s->free_count);
	}
	uint64_t reserve = s->L.block_count / 100;
	if (reserve < 8)
		reserve = 8;
	if (reserve > s->L.block_count / 4)
		reserve = s->L.block_count / 4;
	s->reserve_blocks = reserve;
}

static void store_open_checkpoint_done(void *arg)
{
	*(bool *)arg = true;
}

static bool flag_is_set(void *arg)
{
	return *(bool *)arg;
}

static void store_free(struct store *s)
{
	if (!s)
		return;
	for (uint32_t i = 1; i < s->rec_count; i++) {
		struct store_rec *r = store_rec(s, i);
		if (r->hot && r->hot != STORE_REC_NONE)
			free(s->hot_tab[r->hot]);
	}
	for (uint32_t i = 0; i < s->nslabs; i++)
		free(s->slabs[i]);
	free(s->slabs);
	free(s->hot_tab);
	store_crc_free(s);
	if (s->fd >= 0) {
		io_unregister_buffer(s->loop, s->mirror_index);
		io_close(s->loop, s->fd);
	}
	store_pg_free(s);
	free(s->buckets);
	free(s->blocks);
	free(s->free_bits);
	free(s->dirty);
	free(s->overlay_pool);
	free(s->mirror);
	free(s->sb_buf);
	free(s);
}

int store_open(struct io_loop *loop, const char *path,
	       const struct store_params *params, struct store **out, char *why,
	       size_t why_len)
{
	struct store *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->loop = loop;
	s->fd = -1;
	s->mirror_index = -1;
	s->p = *params;
	list_init(&s->jqueue);
	list_init(&s->jbatch);
	list_init(&s->flush_list);
	list_init(&s->checkpoint_waiters);
	list_init(&s->done_list);
	store_journal_init(s);
	store_flush_init(s);
	int flags = (params->read_only ? O_RDONLY : O_RDWR) | (params->direct ? O_DIRECT : 0);
	int rc = io_open(loop, path, flags, 0, &s->fd);
	if (rc) {
		s->fd = -1;
		rc = why_set(why, why_len, rc, "cannot open %s: %s", path, strerror(-rc));
		goto fail;
	}
	if (posix_memalign((void **)&s->sb_buf, STORE_CHUNK, 2 * STORE_SB_SIZE)) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = store_read_sync(s, s->sb_buf, 2 * STORE_SB_SIZE, 0);
	if (rc) {
		rc = why_set(why, why_len, rc, "cannot read %s: %s", path, strerror(-rc));
		goto fail;
	}
	if ((rc = store_load_sb(s, why, why_len)))
		goto fail;
	uint64_t size;
	if ((rc = io_file_size(loop, s->fd, &size)) || size < s->L.device_size) {
		rc = why_set(why, why_len, -EINVAL,
			       "%s is smaller than the store it holds (%llu bytes)", path,
			       (unsigned long long)s->L.device_size);
		goto fail;
	}
	uint64_t t0 = io_now_ns(loop);
	if ((rc = store_alloc_memory(s)) || (rc = store_load_meta(s, why, why_len)))
		goto fail;
	uint64_t t_meta = io_now_ns(loop);
	if ((rc = store_replay(s, why, why_len)))
		goto fail;
	store_build_allocator(s);
	/* Every invariant, on stores up to STORE_OPEN_CHECK_MAX blocks (all
	 * the tests'): on a big one it would cost about a second per
	 * million objects of start-up; fsck is the full offline check. */
	if (s->L.block_count <= STORE_OPEN_CHECK_MAX)
		store_check(s);
	uint64_t t_end = io_now_ns(loop);
	LOG_INFO("store %s: %llu objects, %llu blocks of %u bytes, %llu free; replayed %llu "
		 "batches (%llu records), %s; loaded in %.2f s (metadata %.2f s, replay %.2f s)",
		 path, (unsigned long long)s->objects, (unsigned long long)s->L.block_count,
		 s->L.block_size, (unsigned long long)s->free_count,
		 (unsigned long long)s->report.replayed_batches,
		 (unsigned long long)s->report.replayed_records, s->report.journal_end,
		 (double)(t_end - t0) / 1e9, (double)(t_meta - t0) / 1e9,
		 (double)(t_end - t_meta) / 1e9);
	if (!params->read_only) {
		/* A new epoch: batches of earlier runs can never be replayed
		 * again, whatever bytes they left past the journal's end. */
		s->j_epoch++;
		bool done = false;
		store_checkpoint(s, store_open_checkpoint_done, &done);
		io_loop_run_until(loop, flag_is_set, &done);
		if (s->failed) {
			rc = why_set(why, why_len, -EIO, "checkpoint after replay failed");
			goto fail;
		}
	}
	*out = s;
	return 0;
fail:
	store_free(s);
	return rc;
}

void store_forget(struct store *s)
{
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &s->checkpoint_waiters) {
		list_del(pos);
		free(list_entry(pos, struct store_checkpoint_waiter, node));
	}
	s->fd = -1; /* the loop that owned it is gone */
	if (s->flush)
		store_flush_forget(s);
	store_free(s);
}

const struct store_open_report *store_report(const struct store *s)
{
	return &s->report;
}

static bool store_idle(void *arg)
{
	struct store *s = arg;
	return !s->batch_inflight && list_empty(&s->jqueue) && !s->flush &&
	       list_empty(&s->done_list) && !io_timer_armed(&s->done_timer) &&
	       !s->sync_inflight;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	io_loop_run_until(s->loop, store_idle, s);
	if (!s->p.read_only && !s->failed) {
		bool done = false;
		store_checkpoint(s, store_open_checkpoint_done, &done);
		io_loop_run_until(s->loop, flag_is_set, &done);
		io_loop_run_until(s->loop, store_idle, s);
	}
	io_timer_disarm(s->loop, &s->flush_timer);
	io_timer_disarm(s->loop, &s->sync_timer);
	io_timer_disarm(s->loop, &s->done_timer);
	store_free(s);
}
