/* The read path: each 4 KiB chunk comes from the newest journaled overlay
 * that covers it, else from the object's block (one device read spans all
 * such chunks, its CRCs checked), else reads as zeros.
 *
 * A read races with in-place flushes and redirects through block_gen: the
 * generation is taken when the device read starts and checked when it
 * ends; if it moved, the block may have changed under the read, so the
 * read starts again (bounded). A CRC mismatch with the generation
 * unchanged is real corruption: -EBADMSG, counted, never returned as
 * data; a device error is -EIO. Either way the copy is bad, and the
 * replication layer reads another and repairs this one.
 *
 * The CRCs come from RAM when the object is hot with them loaded or the
 * CRC cache has them; else the read fetches the block's newest metadata
 * entry beside the data (two reads in parallel) and checks the data
 * against it. That entry cannot be rewritten under the read unnoticed:
 * every change that dirties the block's entry bumps block_gen first (so
 * the read starts over), a flush writes only the older slot, and while
 * an entry is dirty or being written the object keeps its CRCs in RAM
 * (invariant 8), so no entry read is needed then. An entry that fails its
 * own CRC or names another object, version or seq is -EBADMSG: the copy
 * is bad. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/crc32c.h"
#include "common/log.h"
#include "store_int.h"

/* Marks in COVERED the chunks of [first, first+n) that overlays cover. */
static void store_read_covered(const struct store_obj *o, uint32_t first,
			       uint32_t n, uint8_t *covered)
{
	memset(covered, 0, STORE_MAX_CHUNKS / 8);
	for (const struct store_overlay *ov = o->overlays; ov; ov = ov->next) {
		uint32_t lo = ov->first_chunk > first ? ov->first_chunk : first;
		uint32_t hi = ov->first_chunk + ov->nchunks;
		if (hi > first + n)
			hi = first + n;
		for (uint32_t c = lo; c < hi; c++)
			store_bit_set(covered, c);
	}
}

/* Copies overlay data (newest wins) and zeros for unwritten chunks, and
 * sets the CRC of each chunk in req->crc_out (when asked): the rest of
 * BUF came from the block, checked against o->crc (store_read_done). */
static void store_read_fill(const struct store_obj *o, struct store_req *req)
{
	uint32_t first = req->offset / STORE_CHUNK, n = req->len / STORE_CHUNK;
	uint8_t filled[STORE_MAX_CHUNKS / 8] = { 0 };
	uint8_t *buf = req->buf;
	uint32_t *crc = req->crc_out;
	for (const struct store_overlay *ov = o->overlays; ov; ov = ov->next) {
		uint32_t lo = ov->first_chunk > first ? ov->first_chunk : first;
		uint32_t hi = ov->first_chunk + ov->nchunks;
		if (hi > first + n)
			hi = first + n;
		for (uint32_t c = lo; c < hi; c++) {
			if (store_bit_test(filled, c))
				continue;
			store_bit_set(filled, c);
			memcpy(buf + (c - first) * STORE_CHUNK,
			       ov->data + (c - ov->first_chunk) * STORE_CHUNK,
			       STORE_CHUNK);
			if (crc)
				crc[c - first] = le_load32(ov->crcs + 4 * (c - ov->first_chunk));
		}
	}
	bool has_block = o->block != STORE_NO_BLOCK;
	for (uint32_t c = first; c < first + n; c++) {
		if (store_bit_test(filled, c))
			continue;
		if (!has_block || !store_bit_test(o->bitmap, c)) {
			memset(buf + (c - first) * STORE_CHUNK, 0, STORE_CHUNK);
			if (crc)
				crc[c - first] = CRC32C_ZERO_CHUNK;
		} else if (crc) {
			BASALT_ASSERT(o->crc_valid);
			crc[c - first] = o->crc[c];
		}
	}
#ifdef BASALT_CHECK_CARRIED_CRC
	for (uint32_t i = 0; crc && i < n; i++)
		BASALT_ASSERT(crc[i] == crc32c(0, buf + i * STORE_CHUNK, STORE_CHUNK));
#endif
	/* What was ever written, as of this data. */
	memset(req->written, 0, sizeof(req->written));
	if (has_block)
		memcpy(req->written, o->bitmap, sizeof(req->written));
	for (const struct store_overlay *ov = o->overlays; ov; ov = ov->next)
		for (uint32_t c = ov->first_chunk; c < ov->first_chunk + ov->nchunks; c++)
			store_bit_set(req->written, c);
	req->version = o->version;
}

static void store_read_finish(struct store *s, struct store_req *req, int res)
{
	struct store_obj *o = req->obj;
	free(req->meta_buf);
	req->meta_buf = NULL;
	req->obj = NULL;
	req->done(req, res);
	store_obj_put(s, o);
}

static void store_read_start(struct store *s, struct store_req *req);

/* What the read fetched may be out of date: start over (bounded). */
static void store_read_again(struct store *s, struct store_req *req)
{
	s->stats.read_retries++;
	if (++req->retries <= STORE_READ_RETRIES)
		store_read_start(s, req);
	else
		store_read_finish(s, req, -EAGAIN);
}

int store_entry_adopt(struct store *s, struct store_obj *o, uint64_t block, uint32_t seq,
		      const uint8_t *buf, int read_res)
{
	struct store_entry e;
	const char *why = NULL;
	int rc = -EBADMSG;
	if (read_res != (int)s->L.entry_size) {
		why = "cannot be read";
		rc = -EIO;
		s->stats.read_errors++;
	} else if (store_entry_decode(buf, s->L.chunks_per_block, s->L.entry_size, block, &e)) {
		why = "is corrupt";
	} else if (!e.used || e.seq != seq || !object_id_equal(&e.oid, &o->oid) ||
		   e.version != o->block_version ||
		   memcmp(e.bitmap, o->bitmap, (s->L.chunks_per_block + 7) / 8)) {
		why = "does not describe the block's object";
	}
	if (why) {
		char id[64];
		if (rc == -EBADMSG)
			s->stats.csum_errors++;
		LOG_ERROR("metadata entry of block %llu (object %s) %s",
			  (unsigned long long)block, object_id_str(&o->oid, id, sizeof(id)), why);
		return rc;
	}
	memcpy(o->crc, e.crc, 4ull * s->L.chunks_per_block);
	o->crc_valid = true;
	s->crcs.loads++;
	return 0;
}

static void store_read_done(struct store_req *req)
{
	struct store *s = req->store;
	struct store_obj *o = req->obj;
	uint64_t block = req->block;
	int res = req->data_res;
	store_block_unref(s, block);
	uint32_t first = req->offset / STORE_CHUNK, n = req->len / STORE_CHUNK;
	if (o->block_gen != req->gen || o->block != block) {
		store_read_again(s, req); /* the block changed while we read it */
		return;
	}
	if (res >= 0 && s->p.bad_len && req->io.offset < s->p.bad_offset + s->p.bad_len &&
	    req->io.offset + req->io.len > s->p.bad_offset)
		res = -EIO; /* osd_debug_bad_range: as an unreadable sector would */
	if (res < 0 || (uint32_t)res != req->io.len) {
		char id[64];
		s->stats.read_errors++;
		LOG_ERROR("read error: object %s block %llu: %s",
			  object_id_str(&o->oid, id, sizeof(id)), (unsigned long long)block,
			  strerror(res < 0 ? -res : EIO));
		store_read_finish(s, req, -EIO);
		return;
	}
	if (!o->crc_valid) {
		int rc = store_entry_adopt(s, o, block, req->meta_seq, req->meta_buf, req->meta_res);
		if (rc) {
			store_read_finish(s, req, rc);
			return;
		}
	}
	uint8_t covered[STORE_MAX_CHUNKS / 8];
	store_read_covered(o, first, n, covered);
	uint8_t *buf = req->buf;
	uint32_t read_lo = (uint32_t)((req->io.offset - store_block_offset(s, block)) / STORE_CHUNK);
	uint32_t read_hi = read_lo + (uint32_t)(req->io.len / STORE_CHUNK);
	for (uint32_t c = first; c < first + n; c++) {
		if (store_bit_test(covered, c) || !store_bit_test(o->bitmap, c))
			continue;
		if (c < read_lo || c >= read_hi) {
			/* An overlay that covered it when the read started is
			 * gone (a flush committed): its data is in the block
			 * now, and this read did not fetch it. */
			store_read_again(s, req);
			return;
		}
		if (crc32c(0, buf + (c - first) * STORE_CHUNK, STORE_CHUNK) != o->crc[c]) {
			char id[64];
			s->stats.csum_errors++;
			LOG_ERROR("checksum mismatch: object %s block %llu chunk %u",
				  object_id_str(&o->oid, id, sizeof(id)),
				  (unsigned long long)block, c);
			store_read_finish(s, req, -EBADMSG);
			return;
		}
	}
	store_read_fill(o, req);
	store_read_finish(s, req, 0);
}

/* The data read and the entry read (if any) both end here. */
static void store_read_io_done(struct io_op *op, int res)
{
	struct store_req *req = op->ctx;
	if (op == &req->io)
		req->data_res = res;
	else
		req->meta_res = res;
	if (--req->ios == 0)
		store_read_done(req);
}

static void store_read_start(struct store *s, struct store_req *req)
{
	struct store_obj *o = req->obj;
	free(req->meta_buf); /* a retry's */
	req->meta_buf = NULL;
	if (!o->exists) {
		store_complete_later(s, req, -ENOENT);
		return;
	}
	req->version = o->version;
	uint32_t first = req->offset / STORE_CHUNK, n = req->len / STORE_CHUNK;
	uint8_t covered[STORE_MAX_CHUNKS / 8];
	store_read_covered(o, first, n, covered);
	int64_t lo = -1, hi = -1;
	if (o->block != STORE_NO_BLOCK) {
		for (uint32_t c = first; c < first + n; c++) {
			if (store_bit_test(covered, c) || !store_bit_test(o->bitmap, c))
				continue;
			if (lo < 0)
				lo = c;
			hi = c;
		}
	}
	if (lo < 0) {
		store_read_fill(o, req);
		store_complete_later(s, req, 0);
		return;
	}
	req->block = o->block;
	req->gen = o->block_gen;
	store_block_ref(s, req->block);
	req->ios = 1;
	if (!o->crc_valid) {
		/* The newest durable entry: a flush writes only the other
		 * slot, and a dirty entry would have its CRCs in RAM. */
		const struct store_block *blk = &s->blocks[req->block];
		if (!req->meta_buf &&
		    posix_memalign((void **)&req->meta_buf, STORE_CHUNK, s->L.entry_size)) {
			store_block_unref(s, req->block);
			store_read_finish(s, req, -ENOMEM);
			return;
		}
		req->ios++;
		req->meta_seq = blk->seq;
		req->meta_io.ctx = req;
		req->meta_io.done = store_read_io_done;
		io_read(s->loop, &req->meta_io, s->fd, req->meta_buf, s->L.entry_size,
			store_entry_offset(s, req->block, blk->flags & STORE_BLOCK_SLOT_B));
	}
	req->io.ctx = req;
	req->io.done = store_read_io_done;
	io_read(s->loop, &req->io, s->fd,
		(uint8_t *)req->buf + ((uint32_t)lo - first) * STORE_CHUNK,
		(size_t)(hi - lo + 1) * STORE_CHUNK,
		store_block_offset(s, req->block) + (uint64_t)lo * STORE_CHUNK);
}

void store_read_submit(struct store *s, struct store_req *req)
{
	req->store = s;
	req->obj = NULL;
	req->meta_buf = NULL;
	req->retries = 0;
	if (req->len == 0 || req->offset % STORE_CHUNK || req->len % STORE_CHUNK ||
	    (uint64_t)req->offset + req->len > s->L.block_size ||
	    (uintptr_t)req->buf % STORE_CHUNK) {
		store_complete_later(s, req, -EINVAL);
		return;
	}
	uint32_t i = store_rec_find(s, &req->oid);
	struct store_view v;
	if (i)
		store_view(s, i, &v);
	if (!i || !v.exists) {
		store_complete_later(s, req, -ENOENT);
		return;
	}
	struct store_obj *o = store_obj_get_rec(s, i);
	if (!o) {
		store_complete_later(s, req, -ENOMEM);
		return;
	}
	req->obj = o;
	store_read_start(s, req);
}
