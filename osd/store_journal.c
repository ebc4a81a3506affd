/* The write path: requests become records in journal batches (group
 * commit), batches are written from the RAM mirror and flushed, then
 * applied to the index and acknowledged in order.
 *
 *   submit -> jqueue -> batch assembled at the head -> write -> fdatasync
 *          -> apply records -> done(req, 0), in submission order.
 *
 * A whole-block write (redirect) writes its data to a fresh block while
 * its record waits in jqueue or is written in a batch: the batch's flush
 * starts only once its redirects' data is written too, so one flush makes
 * both durable. A crash may leave the record durable and the data not;
 * replay finds the block not matching the record's CRCs and ends the
 * journal before that batch (store_open.c, pass 2): it was never
 * acknowledged. With no data pending, the batch write and its fdatasync
 * go to the device as one linked submission (io_link).
 *
 * Journal order is submission order, which is version order for every
 * object (a clone's CRC load makes later writes of its object wait). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/crc32c.h"
#include "common/log.h"
#include "store_int.h"

static void store_journal_sync(struct store *s);

static bool store_req_whole(const struct store *s, const struct store_req *req)
{
	return req->op == STORE_OP_WRITE && req->offset == 0 &&
	       req->len == s->L.block_size;
}

/* A redirect: a whole-block write that goes to a fresh block (one that
 * could not have one goes through the journal instead: journaled). */
bool store_req_is_big(const struct store *s, const struct store_req *req)
{
	return store_req_whole(s, req) && !req->journaled;
}

uint64_t store_journal_free(const struct store *s)
{
	return s->L.journal_size - (s->j_appended - s->j_trimmed);
}

/* --- completions ------------------------------------------------------------ */

static void store_done_fire(struct io_timer *t)
{
	struct store *s = t->ctx;
	struct list_node *pos, *tmp;
	struct list_node ready;
	list_init(&ready);
	list_for_each_safe(pos, tmp, &s->done_list) {
		list_del(pos);
		list_add_tail(&ready, pos);
	}
	list_for_each_safe(pos, tmp, &ready) {
		struct store_req *req = list_entry(pos, struct store_req, node);
		struct store_obj *o = req->obj;
		list_del(pos);
		req->obj = NULL;
		req->done(req, req->result);
		if (o)
			store_obj_put(s, o);
	}
}

void store_complete_later(struct store *s, struct store_req *req, int res)
{
	req->result = res;
	list_add_tail(&s->done_list, &req->node);
	if (!io_timer_armed(&s->done_timer))
		io_timer_arm(s->loop, &s->done_timer, 0);
}

/* --- admission (store_int.h, invariant 6) ------------------------------------ */

/* Whether a small write to O accepted now finds, when it applies, a
 * block or the object's promise of one: no delete ahead of it, and a
 * block, a promise or a redirect ahead of it. */
static bool store_write_covered(const struct store_obj *o)
{
	return !o->deletes && (o->block != STORE_NO_BLOCK || o->promised || o->redirects);
}

/* Accepts REQ only if it can be placed: a write that will need a fresh
 * block takes a promise of one. A whole-block overwrite when no block is
 * left goes through the journal into the block the object has. 0 or
 * -ENOSPC (nothing changed). */
static int store_admit(struct store *s, struct store_req *req, struct store_obj *o)
{
	req->promised = false;
	req->journaled = false;
	if (req->op == STORE_OP_DELETE)
		return 0;
	bool whole = store_req_whole(s, req), covered = store_write_covered(o);
	if (!whole && covered)
		return 0;
	uint64_t floor = req->reserve ? 0 : s->reserve_blocks;
	if (store_blocks_available(s) > floor) {
		req->promised = true;
		s->promised++;
		return 0;
	}
	/* (Not a masked copy: the journal keeps no map of written chunks.) */
	if (whole && covered && !req->masked &&
	    store_batch_header_space(STORE_BATCH_HEADER_MAX) + req->len <= s->L.journal_size / 2) {
		req->journaled = true;
		return 0;
	}
	return -ENOSPC;
}

/* REQ (admitted) is applied or failed: what it counted and promised is
 * given back, and its object's own promise follows its state. */
static void store_req_settle(struct store *s, struct store_req *req)
{
	struct store_obj *o = req->obj;
	if (req->op == STORE_OP_DELETE)
		o->deletes--;
	else if (store_req_is_big(s, req))
		o->redirects--;
	store_promise_settle(s, o);
	if (req->promised) {
		req->promised = false;
		s->promised--;
	}
}

/* Fails an admitted REQ with RES. */
static void store_req_fail(struct store *s, struct store_req *req, int res)
{
	store_req_settle(s, req);
	store_complete_later(s, req, res);
}

/* --- submission ----------------------------------------------------------------- */

static void store_big_data_done(struct io_op *op, int res);

/* Sends REQ on its way; the object has no whole-block write pending. */
static void store_dispatch(struct store *s, struct store_req *req)
{
	req->batched = false;
	req->data_pending = false;
	if (s->failed) {
		store_req_fail(s, req, -EROFS);
		return;
	}
	if (!store_req_is_big(s, req)) {
		list_add_tail(&s->jqueue, &req->node);
		return;
	}
	/* The block promised at admission. */
	BASALT_ASSERT(req->promised);
	req->promised = false;
	s->promised--;
	int rc = store_block_alloc(s, &req->block);
	BASALT_ASSERT(rc == 0);
	store_block_ref(s, req->block);
	req->data_pending = true;
	list_add_tail(&s->jqueue, &req->node);
	req->io.ctx = req;
	req->io.done = store_big_data_done;
	io_write(s->loop, &req->io, s->fd, req->buf, req->len,
		 store_block_offset(s, req->block));
}

static void store_release_waiters(struct store *s, struct store_obj *o)
{
	while (!o->big_pending && !list_empty(&o->waiters)) {
		struct list_node *n = list_first(&o->waiters);
		list_del(n);
		store_dispatch(s, list_entry(n, struct store_req, node));
	}
}

static void store_batch_ios_done(struct store *s);

/* A redirect's data is written. Its request is in jqueue or in the batch
 * in flight, whose flush waited for it. */
static void store_big_data_done(struct io_op *op, int res)
{
	struct store_req *req = op->ctx;
	struct store *s = req->store;
	bool ok = res == (int)req->len;
	req->data_pending = false;
	store_block_unref(s, req->block);
	if (!ok)
		store_fail(s, "write to a data block", res < 0 ? res : -EIO);
	else
		store_crash_point("big-data-written");
	if (req->batched) {
		if (!ok && !s->batch_error)
			s->batch_error = -EIO;
		if (--s->batch_data_pending == 0 && s->batch_ios == 0)
			store_batch_ios_done(s);
		return;
	}
	if (s->failed) {
		/* Its record will not be written now. */
		list_del(&req->node);
		store_block_release(s, req->block);
		store_req_fail(s, req, ok ? -EROFS : -EIO);
	}
	store_journal_kick(s);
}

static void store_clone_crcs_done(struct io_op *op, int res)
{
	struct store_req *req = op->ctx;
	struct store *s = req->store;
	struct store_obj *o = req->obj;
	o->big_pending--;
	store_block_unref(s, req->block);
	/* Nothing moved the head's block meanwhile: later writes waited. */
	BASALT_ASSERT(o->block == req->block);
	int rc = o->crc_valid ? 0
			      : store_entry_adopt(s, o, req->block, req->meta_seq, req->meta_buf, res);
	free(req->meta_buf);
	req->meta_buf = NULL;
	if (rc)
		store_req_fail(s, req, rc);
	else
		store_dispatch(s, req);
	store_release_waiters(s, o);
	store_journal_kick(s);
}

/* A clone's record carries its head's CRCs: a head whose CRCs are not in
 * RAM has its metadata entry read first; later writes to it wait behind
 * it (o->big_pending, o->waiters), so journal order stays version order. */
static void store_clone_load_crcs(struct store *s, struct store_req *req)
{
	struct store_obj *o = req->obj;
	const struct store_block *blk = &s->blocks[o->block];
	if (posix_memalign((void **)&req->meta_buf, STORE_CHUNK, s->L.entry_size)) {
		req->meta_buf = NULL;
		store_req_fail(s, req, -ENOMEM);
		return;
	}
	o->big_pending++;
	req->block = o->block;
	req->meta_seq = blk->seq;
	store_block_ref(s, req->block);
	req->io.ctx = req;
	req->io.done = store_clone_crcs_done;
	io_read(s->loop, &req->io, s->fd, req->meta_buf, s->L.entry_size,
		store_entry_offset(s, o->block, blk->flags & STORE_BLOCK_SLOT_B));
}

static int store_write_check(const struct store *s, const struct store_req *req)
{
	if (req->op == STORE_OP_DELETE)
		return 0;
	if (req->op != STORE_OP_WRITE || req->len == 0 ||
	    req->offset % STORE_CHUNK || req->len % STORE_CHUNK ||
	    (uint64_t)req->offset + req->len > s->L.block_size ||
	    ((uintptr_t)req->buf % STORE_CHUNK))
		return -EINVAL;
	return 0;
}

void store_write_submit(struct store *s, struct store_req *req)
{
	req->obj = NULL;
	req->store = s;
	int rc = s->p.read_only || s->failed ? -EROFS : store_write_check(s, req);
	if (rc) {
		store_complete_later(s, req, rc);
		return;
	}
	struct store_obj *o = store_obj_get(s, &req->oid);
	if (!o) {
		store_complete_later(s, req, -ENOMEM);
		return;
	}
	req->obj = o;
	if (req->op == STORE_OP_DELETE && o->next_deleted) {
		store_complete_later(s, req, -ENOENT);
		return;
	}
	/* A repair rewrites the current version whole (a good copy over a
	 * bad one); anything else must be newer. */
	bool repair = req->repair && store_req_whole(s, req) && !o->next_deleted &&
		      req->version == o->next_version;
	if (req->version == 0)
		req->version = o->next_version + 1;
	else if (req->version <= o->next_version && !o->next_deleted && !repair) {
		store_complete_later(s, req, -ESTALE);
		return;
	}
	if (req->clone_snap && !store_clone_movable(s, &req->oid, req->clone_snap)) {
		store_complete_later(s, req, -EINVAL);
		return;
	}
	if ((rc = store_admit(s, req, o))) {
		store_complete_later(s, req, rc);
		return;
	}
	if (req->clone_snap && req->journaled) {
		/* The clone keeps the head's block; the head needs a new one. */
		store_complete_later(s, req, -ENOSPC);
		return;
	}
	if (req->op == STORE_OP_DELETE)
		o->deletes++;
	else if (store_req_is_big(s, req))
		o->redirects++;
	o->next_version = req->version;
	o->next_deleted = req->op == STORE_OP_DELETE;
	if (o->big_pending) {
		list_add_tail(&o->waiters, &req->node);
		return;
	}
	if (req->clone_snap && !o->crc_valid) {
		store_clone_load_crcs(s, req);
		return;
	}
	store_dispatch(s, req);
	store_journal_kick(s);
}

/* --- batches ------------------------------------------------------------------------ */

static uint32_t store_batch_data_max(const struct store *s)
{
	uint64_t max = s->L.journal_size / 4;
	return max > (4u << 20) ? (4u << 20) : (uint32_t)max;
}

/* Takes requests off jqueue that fit one batch; returns how many records
 * (a request with clone_snap makes two), header and data lengths. */
static unsigned store_batch_take(struct store *s, uint32_t *header_len,
				 uint32_t *data_len)
{
	uint32_t hl = STORE_BATCH_HEADER_LEN, dl = 0, max = store_batch_data_max(s);
	unsigned n = 0;
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &s->jqueue) {
		struct store_req *req = list_entry(pos, struct store_req, node);
		bool big = store_req_is_big(s, req);
		uint32_t rl, d = 0;
		uint32_t extra = req->clone_snap
					 ? store_record_len(STORE_REC_BIG, s->L.chunks_per_block, true)
					 : 0;
		if (req->op == STORE_OP_DELETE)
			rl = store_record_len(STORE_REC_DELETE, 0, false);
		else if (big)
			rl = store_record_len(STORE_REC_BIG, s->L.chunks_per_block, req->masked);
		else {
			rl = store_record_len(STORE_REC_SMALL, req->len / STORE_CHUNK, false);
			d = req->len;
		}
		rl += extra;
		if (n && (hl + rl > STORE_BATCH_HEADER_MAX ||
			  store_batch_header_space(hl + rl) + dl + d > max))
			break;
		hl += rl;
		dl += d;
		n += 1 + (extra != 0);
		list_del(pos);
		list_add_tail(&s->jbatch, pos);
	}
	*header_len = hl;
	*data_len = dl;
	return n;
}

/* A batch is written only when the one before is applied: in sync mode
 * "always" that is after its flush, so everything before it is durable. */
static uint32_t store_batch_flags(const struct store *s)
{
	return s->p.sync == STORE_SYNC_ALWAYS ? STORE_BATCH_PREV_DURABLE : 0;
}

/* The record that gives REQ's head's block to its clone: the head's
 * version, chunks written and CRCs, as they are (all in the block). */
static void store_takeover_encode(struct store *s, struct enc *e, const struct store_req *req)
{
	const struct store_obj *head = req->obj;
	struct store_record r = { .type = STORE_REC_BIG, .oid = req->oid,
				  .version = head->block_version,
				  .nchunks = s->L.chunks_per_block, .block = head->block,
				  .written = head->bitmap, .takeover = true };
	r.oid.snap = req->clone_snap;
	BASALT_ASSERT(head->block != STORE_NO_BLOCK && !head->overlays && head->crc_valid);
	store_record_encode(e, &r, head->crc);
}

/* The CRCs of the N chunks of write REQ, whose bytes are at DATA (its
 * buffer, or their copy in the journal): those it carries (the
 * messenger's: no second pass over the data), else computed. */
static void store_write_crcs(const struct store_req *req, const uint8_t *data, uint32_t n,
			     uint32_t *crcs /* out */)
{
	if (req->crc) {
		memcpy(crcs, req->crc, n * sizeof(*crcs));
#ifdef BASALT_CHECK_CARRIED_CRC
		for (uint32_t i = 0; i < n; i++)
			BASALT_ASSERT(crcs[i] == crc32c(0, data + i * STORE_CHUNK, STORE_CHUNK));
#endif
		return;
	}
	crc32c_chunks(data, n, crcs);
}

/* Encodes the batch of requests on jbatch at mirror offset POS. */
static void store_batch_encode(struct store *s, uint64_t pos, uint32_t header_len,
			       uint32_t data_len, unsigned count)
{
	uint8_t *base = s->mirror + pos;
	uint8_t *data = base + store_batch_header_space(header_len);
	uint32_t data_off = 0, crcs[STORE_MAX_CHUNKS];
	struct enc e;
	memset(base, 0, store_batch_header_space(header_len));
	enc_init(&e, base, header_len);
	enc_reserve(&e, STORE_BATCH_HEADER_LEN);
	struct list_node *pos_n, *tmp;
	list_for_each_safe(pos_n, tmp, &s->jbatch) {
		struct store_req *req = list_entry(pos_n, struct store_req, node);
		if (req->clone_snap)
			store_takeover_encode(s, &e, req);
		struct store_record r = { .oid = req->oid, .version = req->version };
		if (req->op == STORE_OP_DELETE) {
			r.type = STORE_REC_DELETE;
		} else if (store_req_is_big(s, req)) {
			r.type = STORE_REC_BIG;
			r.nchunks = s->L.chunks_per_block;
			r.block = req->block;
			r.written = req->masked ? req->written : NULL;
			store_write_crcs(req, req->buf, r.nchunks, crcs);
		} else {
			r.type = STORE_REC_SMALL;
			r.nchunks = req->len / STORE_CHUNK;
			r.first_chunk = req->offset / STORE_CHUNK;
			r.data_off = data_off;
			memcpy(data + data_off, req->buf, req->len);
			store_write_crcs(req, data + data_off, r.nchunks, crcs);
			data_off += req->len;
		}
		store_record_encode(&e, &r, crcs);
	}
	BASALT_ASSERT(enc_status(&e) == 0 && e.pos == header_len &&
		      data_off == data_len);
	struct store_batch b = { STORE_BATCH_RECORDS, s->j_epoch, s->j_seq,
				 header_len, data_len, count, store_batch_flags(s) };
	store_batch_seal(base, &b);
}

static void store_batch_io_done(struct io_op *op, int res);
static void store_journal_fail_queue(struct store *s);

/* Marks the requests on jbatch as the batch in flight; counts the data
 * writes its flush must wait for. */
static void store_batch_claim(struct store *s)
{
	struct list_node *pos;
	s->batch_data_pending = 0;
	list_for_each(pos, &s->jbatch) {
		struct store_req *req = list_entry(pos, struct store_req, node);
		req->batched = true;
		s->batch_data_pending += req->data_pending;
	}
}

void store_journal_kick(struct store *s)
{
	if (s->failed && !s->batch_inflight)
		store_journal_fail_queue(s);
	if (s->batch_inflight || list_empty(&s->jqueue) || s->failed)
		return;
	uint32_t header_len, data_len;
	unsigned count = store_batch_take(s, &header_len, &data_len);
	uint64_t space = store_batch_header_space(header_len) + data_len;
	uint64_t pos = s->j_head, waste = 0;
	if (pos + space > s->L.journal_size) {
		waste = s->L.journal_size - pos;
		pos = 0;
	}
	if (space + waste > store_journal_free(s)) {
		/* Put them back, in order, and wait for a flush to trim. */
		struct list_node *n;
		while ((n = s->jbatch.prev) != &s->jbatch) {
			list_del(n);
			list_add_head(&s->jqueue, n);
		}
		s->journal_stalled = true;
		store_flush_start(s);
		return;
	}
	s->journal_stalled = false;
	store_batch_claim(s);
	/* With no data to wait for, the flush is linked behind the writes:
	 * wrap -> batch -> fdatasync in one submission. */
	bool linked = s->p.sync == STORE_SYNC_ALWAYS && !s->batch_data_pending;
	s->batch_ios = 1 + linked;
	s->batch_sync_sent = linked;
	s->batch_error = 0;
	if (waste) {
		/* A WRAP marker tells replay the next batch is at offset 0;
		 * it is made durable by the same flush as the batch. */
		uint8_t *w = s->mirror + s->j_head;
		memset(w, 0, STORE_CHUNK);
		struct store_batch b = { STORE_BATCH_WRAP, s->j_epoch, s->j_seq++,
					 STORE_BATCH_HEADER_LEN, 0, 0, store_batch_flags(s) };
		store_batch_seal(w, &b);
		s->batch_ios++;
		s->wrap_io.ctx = s;
		s->wrap_io.done = store_batch_io_done;
		if (linked)
			io_link(s->loop, &s->wrap_io);
		io_write_fixed(s->loop, &s->wrap_io, s->fd, w, STORE_CHUNK,
			       s->L.journal_offset + s->j_head, s->mirror_index);
	}
	store_batch_encode(s, pos, header_len, data_len, count);
	s->batch_pos = pos;
	s->batch_space = space;
	s->batch_seq = s->j_seq++;
	s->j_appended += waste + space;
	s->j_head = pos + space == s->L.journal_size ? 0 : pos + space;
	s->batch_inflight = true;
	store_crash_point("batch-assembled");
	s->batch_io.ctx = s;
	s->batch_io.done = store_batch_io_done;
	if (linked)
		io_link(s->loop, &s->batch_io);
	io_write_fixed(s->loop, &s->batch_io, s->fd, s->mirror + pos, space,
		       s->L.journal_offset + pos, s->mirror_index);
	if (linked) {
		s->batch_sync_io.ctx = s;
		s->batch_sync_io.done = store_batch_io_done;
		io_fsync(s->loop, &s->batch_sync_io, s->fd, true);
	}
}

/* On a failed store, fails the requests waiting for a batch -- but not a
 * redirect whose data write is in flight (its buffer is the device's
 * until then): store_big_data_done fails it. */
static void store_journal_fail_queue(struct store *s)
{
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &s->jqueue) {
		struct store_req *req = list_entry(pos, struct store_req, node);
		if (req->data_pending)
			continue;
		list_del(pos);
		if (store_req_is_big(s, req))
			store_block_release(s, req->block);
		store_req_fail(s, req, -EROFS);
	}
}

static void store_batch_fail(struct store *s, int res)
{
	store_fail(s, "journal write", res < 0 ? res : -EIO);
	struct list_node *pos, *tmp;
	list_for_each_safe(pos, tmp, &s->jbatch) {
		list_del(pos);
		struct store_req *req = list_entry(pos, struct store_req, node);
		if (store_req_is_big(s, req))
			store_block_release(s, req->block);
		store_req_fail(s, req, -EIO);
	}
	s->batch_inflight = false;
	store_journal_fail_queue(s);
}

/* The batch is durable: apply it and acknowledge its requests in order. */
static void store_batch_durable(struct store *s)
{
	uint8_t *base = s->mirror + s->batch_pos;
	struct store_batch b;
	int rc = store_batch_decode(base, s->batch_space, s->L.chunks_per_block, &b);
	BASALT_ASSERT(rc == 0);
	uint8_t *data = base + store_batch_header_space(b.header_len);
	struct dec d;
	struct store_record r;
	dec_init(&d, base + STORE_BATCH_HEADER_LEN, b.header_len - STORE_BATCH_HEADER_LEN);
	while ((rc = store_record_next(&d, s->L.chunks_per_block, &r)) == 1)
		BASALT_ASSERT(store_apply_record(s, &r, data, b.seq) == 0);
	BASALT_ASSERT(rc == 0);
	s->j_applied_pos = s->j_head;
	s->j_applied_appended = s->j_appended;
	s->j_applied_seq = s->j_seq;
	s->stats.batches++;
	s->stats.records += b.record_count;
	s->batch_inflight = false;
	store_crash_point("batch-applied");

	struct list_node done, *pos, *tmp;
	list_init(&done);
	list_for_each_safe(pos, tmp, &s->jbatch) {
		list_del(pos);
		list_add_tail(&done, pos);
		store_req_settle(s, list_entry(pos, struct store_req, node));
	}
	list_for_each_safe(pos, tmp, &done) {
		struct store_req *req = list_entry(pos, struct store_req, node);
		struct store_obj *o = req->obj;
		list_del(pos);
		req->obj = NULL;
		req->done(req, 0);
		store_obj_put(s, o);
	}
	store_flush_maybe(s);
	store_journal_kick(s);
}

/* Every op of the batch (its writes, its fsync if sent) and every data
 * write of its redirects is done: fail it, flush it, or apply it. */
static void store_batch_ios_done(struct store *s)
{
	if (s->batch_error) {
		store_batch_fail(s, s->batch_error);
		return;
	}
	if (s->p.sync == STORE_SYNC_BATCH) {
		store_journal_sync(s);
		store_batch_durable(s);
		return;
	}
	if (s->batch_sync_sent) {
		store_crash_point("batch-synced");
		store_batch_durable(s);
		return;
	}
	/* Its redirects' data was still being written: flush now. */
	s->batch_ios = 1;
	s->batch_sync_sent = true;
	s->batch_sync_io.ctx = s;
	s->batch_sync_io.done = store_batch_io_done;
	io_fsync(s->loop, &s->batch_sync_io, s->fd, true);
}

/* A write or the fsync of the batch is done. A linked fsync behind a
 * failed or short write completes with -ECANCELED (io_link); the batch
 * fails as for any error, its requests answered -EIO. */
static void store_batch_io_done(struct io_op *op, int res)
{
	struct store *s = op->ctx;
	bool ok;
	if (op == &s->batch_sync_io)
		ok = res >= 0;
	else
		ok = res == (int)(op == &s->wrap_io ? STORE_CHUNK : s->batch_space);
	if (!ok && !s->batch_error)
		s->batch_error = res < 0 ? res : -EIO;
	if (ok && op == &s->batch_io)
		store_crash_point("batch-written");
	if (--s->batch_ios > 0 || s->batch_data_pending)
		return;
	store_batch_ios_done(s);
}

/* --- batch mode: a flush at most sync_interval after a write ------------------ */

static void store_sync_done(struct io_op *op, int res)
{
	struct store *s = op->ctx;
	s->sync_inflight = false;
	if (res < 0)
		store_fail(s, "journal flush", res);
	if (s->sync_wanted)
		store_journal_sync(s);
}

static void store_sync_fire(struct io_timer *t)
{
	struct store *s = t->ctx;
	s->sync_wanted = false;
	s->sync_inflight = true;
	s->sync_io.ctx = s;
	s->sync_io.done = store_sync_done;
	io_fsync(s->loop, &s->sync_io, s->fd, true);
}

static void store_journal_sync(struct store *s)
{
	s->sync_wanted = true;
	if (!s->sync_inflight && !io_timer_armed(&s->sync_timer))
		io_timer_arm(s->loop, &s->sync_timer, s->p.sync_interval_ns);
}

void store_journal_init(struct store *s)
{
	io_timer_init(&s->done_timer, store_done_fire, s);
	io_timer_init(&s->sync_timer, store_sync_fire, s);
}

/* --- applying records (runtime and replay) ---------------------------------------- */

static void store_apply_small(struct store *s, struct store_obj *o,
			      const struct store_record *r, uint8_t *data,
			      uint64_t seq)
{
	struct store_overlay *ov = store_overlay_new(s);
	ov->version = r->version;
	ov->seq = seq;
	ov->first_chunk = r->first_chunk;
	ov->nchunks = r->nchunks;
	ov->data = data + r->data_off;
	ov->crcs = r->crcs;
	ov->next = o->overlays;
	o->overlays = ov;
	store_flush_list_update(s, o);
}

/* Whether C is a snapshot's clone of head H. */
static bool store_is_clone_of(const struct object_id *c, const struct object_id *h)
{
	struct object_id head = object_head(c);
	return c->snap != OBJECT_SNAP_HEAD && h->snap == OBJECT_SNAP_HEAD &&
	       object_id_equal(&head, h);
}

static int store_apply_big(struct store *s, struct store_obj *o,
			   const struct store_record *r)
{
	if (r->block >= s->L.block_count)
		return -EUCLEAN;
	if (o->block != r->block) {
		uint32_t owner = s->blocks[r->block].owner;
		struct store_view ov;
		if (owner)
			store_view(s, owner, &ov);
		if (owner && s->replaying && store_is_clone_of(&ov.oid, &o->oid))
			/* A takeover later in the journal gave this block to
			 * the head's clone, whose entry is written already:
			 * this older state of the head is superseded (its
			 * own later record, in the takeover's batch, says
			 * what it became). */
			return 0;
		if (owner)
			return -EUCLEAN; /* two owners: only corruption does this */
		if (o->block != STORE_NO_BLOCK)
			store_block_release(s, o->block);
		o->block = r->block;
		store_block_set_owner(s, r->block, o);
	} else {
		store_block_mark_dirty(s, r->block);
	}
	o->block_version = r->version;
	memset(o->bitmap, 0, sizeof(o->bitmap));
	for (uint32_t i = 0; i < r->nchunks; i++) {
		if (!r->written || store_bit_test(r->written, i))
			store_bit_set(o->bitmap, i);
		o->crc[i] = store_record_crc(r, i);
	}
	o->crc_valid = true;
	o->layout_gen++;
	o->block_gen++;
	store_overlays_drop(s, o, r->version);
	return 0;
}

/* A clone takes its head's block (STORE_REC_FLAG_TAKEOVER). At replay the
 * block may be its already (the clone's entry was written) or no one's
 * (the head's next entry was written, superseding this one). */
static int store_apply_takeover(struct store *s, struct store_obj *o,
				const struct store_record *r)
{
	if (r->block >= s->L.block_count)
		return -EUCLEAN;
	uint32_t owner = s->blocks[r->block].owner;
	if (owner && owner != o->rec) {
		struct store_obj *head = store_obj_get_rec(s, owner);
		if (!head)
			return -ENOMEM;
		if (!store_is_clone_of(&o->oid, &head->oid)) {
			store_obj_put(s, head);
			return -EUCLEAN;
		}
		/* The head's record that follows gives it its new state;
		 * overlays left by a replay hold what the block holds. */
		head->block = STORE_NO_BLOCK;
		memset(head->bitmap, 0, sizeof(head->bitmap));
		head->crc_valid = false;
		head->layout_gen++;
		head->block_gen++;
		s->blocks[r->block].owner = 0;
		store_pg_account(s, head);
		store_obj_put(s, head);
	}
	int rc = store_apply_big(s, o, r);
	/* No request made the clone: what the next one may do follows its
	 * state here (nothing else is pending on it: store_clone_movable). */
	o->next_version = r->version;
	o->next_deleted = rc != 0;
	return rc;
}

static void store_apply_delete(struct store *s, struct store_obj *o,
			       const struct store_record *r)
{
	if (o->block != STORE_NO_BLOCK) {
		store_block_release(s, o->block);
		o->block = STORE_NO_BLOCK;
	}
	o->block_version = 0;
	memset(o->bitmap, 0, sizeof(o->bitmap));
	o->crc_valid = false;
	o->layout_gen++;
	o->block_gen++;
	store_overlays_drop(s, o, UINT64_MAX);
	o->exists = false;
	(void)r;
}

int store_apply_record(struct store *s, const struct store_record *r,
		       uint8_t *data, uint64_t seq)
{
	struct store_obj *o = store_obj_get(s, &r->oid);
	if (!o)
		return -ENOMEM;
	int rc = 0;
	switch (r->type) {
	case STORE_REC_SMALL:
		store_apply_small(s, o, r, data, seq);
		o->exists = true;
		break;
	case STORE_REC_BIG:
		rc = r->takeover ? store_apply_takeover(s, o, r) : store_apply_big(s, o, r);
		o->exists = rc == 0;
		break;
	case STORE_REC_DELETE:
		store_apply_delete(s, o, r);
		break;
	}
	/* Journal order is assignment order for each object, so the record
	 * is the newest: a write after a delete may carry a lower version. */
	o->version = r->version;
	if (s->replaying) {
		o->next_version = o->version;
		o->next_deleted = !o->exists;
	}
	store_pg_account(s, o);
	store_obj_put(s, o);
	return rc;
}
