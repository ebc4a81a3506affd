/* Offline check and usage dump of a store (basalt-osd --fsck / --dump). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/log.h"
#include "store_int.h"

struct fsck_result {
	uint64_t blocks_checked, chunks_checked;
	uint64_t csum_errors, owner_errors, read_errors;
	uint64_t unplaceable; /* journaled objects with no block to go to */
};

/* The CRCs of block B's object O: from RAM, or its newest entry. */
static int fsck_crcs(struct store *s, uint64_t b, struct store_view *v, uint32_t *crc,
		     uint8_t *ebuf)
{
	if (v->hot && v->hot->crc_valid) {
		memcpy(crc, v->hot->crc, 4ull * s->L.chunks_per_block);
		return 0;
	}
	struct store_entry e;
	const struct store_block *blk = &s->blocks[b];
	if (store_read_sync(s, ebuf, s->L.entry_size,
			    store_entry_offset(s, b, blk->flags & STORE_BLOCK_SLOT_B)) ||
	    store_entry_decode(ebuf, s->L.chunks_per_block, s->L.entry_size, b, &e) ||
	    !e.used || !object_id_equal(&e.oid, &v->oid))
		return -EBADMSG;
	memcpy(crc, e.crc, 4ull * s->L.chunks_per_block);
	return 0;
}

/* Reads every live block and checks the CRC32C of each written chunk that
 * the block is the source of. A chunk covered by a journaled overlay is
 * skipped: its in-place copy may be half-way through a flush that was cut
 * by a crash, and the next flush rewrites it from the journal. */
static void fsck_data(struct store *s, FILE *out, struct fsck_result *r)
{
	uint8_t *buf, *ebuf;
	uint32_t crc[STORE_MAX_CHUNKS];
	if (posix_memalign((void **)&buf, STORE_CHUNK, s->L.block_size)) {
		r->read_errors++;
		return;
	}
	if (posix_memalign((void **)&ebuf, STORE_CHUNK, s->L.entry_size)) {
		free(buf);
		r->read_errors++;
		return;
	}
	for (uint64_t b = 0; b < s->L.block_count; b++) {
		uint32_t owner = s->blocks[b].owner;
		if (!owner)
			continue;
		struct store_view v;
		store_view(s, owner, &v);
		char id[64];
		object_id_str(&v.oid, id, sizeof(id));
		if (v.block != b) {
			fprintf(out, "error: block %" PRIu64 " names object %s, which is at block %" PRIu64 "\n",
				b, id, v.block);
			r->owner_errors++;
			continue;
		}
		r->blocks_checked++;
		if (store_read_sync(s, buf, s->L.block_size, store_block_offset(s, b))) {
			fprintf(out, "error: cannot read block %" PRIu64 "\n", b);
			r->read_errors++;
			continue;
		}
		if (fsck_crcs(s, b, &v, crc, ebuf)) {
			fprintf(out, "error: the metadata entry of block %" PRIu64
				" (object %s) cannot be read back\n", b, id);
			r->csum_errors++;
			continue;
		}
		uint8_t covered[STORE_MAX_CHUNKS / 8] = { 0 };
		for (const struct store_overlay *ov = v.hot ? v.hot->overlays : NULL; ov; ov = ov->next)
			for (uint32_t c = ov->first_chunk; c < ov->first_chunk + ov->nchunks; c++)
				store_bit_set(covered, c);
		for (uint32_t c = 0; c < s->L.chunks_per_block; c++) {
			if (!store_bit_test(v.bitmap, c) || store_bit_test(covered, c))
				continue;
			r->chunks_checked++;
			if (crc32c(0, buf + c * STORE_CHUNK, STORE_CHUNK) != crc[c]) {
				fprintf(out, "error: checksum mismatch in block %" PRIu64
					" chunk %u (object %s, offset %u)\n",
					b, c, id, c * STORE_CHUNK);
				r->csum_errors++;
			}
		}
	}
	free(ebuf);
	free(buf);
}

struct fsck_walk {
	FILE *out;
	struct fsck_result *r;
};

/* Every object with a block is that block's only owner (invariant 1). */
static int fsck_owner(struct store *s, uint32_t i, void *arg)
{
	struct fsck_walk *w = arg;
	struct store_view v;
	store_view(s, i, &v);
	if (v.block == STORE_NO_BLOCK || s->blocks[v.block].owner == i)
		return 0;
	char id[64];
	fprintf(w->out, "error: object %s points at block %" PRIu64 " owned by another\n",
		object_id_str(&v.oid, id, sizeof(id)), v.block);
	w->r->owner_errors++;
	return 0;
}

static void fsck_owners(struct store *s, FILE *out, struct fsck_result *r)
{
	struct fsck_walk w = { out, r };
	store_rec_each(s, fsck_owner, &w);
}

static void print_usage(FILE *out, const struct store_usage *u,
			const struct store_open_report *rep, bool json)
{
	if (json) {
		fprintf(out,
			"{\"device_bytes\": %" PRIu64 ", \"block_size\": %" PRIu64
			", \"blocks_total\": %" PRIu64 ", \"blocks_used\": %" PRIu64
			", \"blocks_free\": %" PRIu64 ", \"objects\": %" PRIu64
			", \"journal_bytes\": %" PRIu64 ", \"journal_used_bytes\": %" PRIu64
			", \"meta_bytes\": %" PRIu64 ", \"live_data_bytes\": %" PRIu64
			", \"used_bytes\": %" PRIu64 ", \"replayed_batches\": %" PRIu64
			", \"replayed_records\": %" PRIu64 ", \"torn_batches\": %" PRIu64
			", \"stale_entries\": %" PRIu64 ", \"blocks_promised\": %" PRIu64
			", \"blocks_available\": %" PRIu64 ", \"blocks_reserved\": %" PRIu64
			", \"unplaceable\": %" PRIu64 "}\n",
			u->device_bytes, u->block_size, u->blocks_total, u->blocks_used,
			u->blocks_free, u->objects, u->journal_bytes, u->journal_used_bytes,
			u->meta_bytes, u->live_data_bytes, u->used_bytes,
			rep->replayed_batches, rep->replayed_records, rep->torn_batches,
			rep->stale_entries, u->blocks_promised, u->blocks_available,
			u->blocks_reserved, rep->unplaceable);
		return;
	}
	fprintf(out, "device:   %" PRIu64 " bytes, blocks of %" PRIu64 " bytes\n",
		u->device_bytes, u->block_size);
	fprintf(out, "blocks:   %" PRIu64 " total, %" PRIu64 " used, %" PRIu64 " free (%" PRIu64
		" promised to journaled data, %" PRIu64 " held back for PG records, %" PRIu64
		" available)\n",
		u->blocks_total, u->blocks_used, u->blocks_free, u->blocks_promised,
		u->blocks_reserved, u->blocks_available);
	fprintf(out, "objects:  %" PRIu64 "\n", u->objects);
	fprintf(out, "journal:  %" PRIu64 " of %" PRIu64 " bytes in use; replay: %"
		PRIu64 " batches, %" PRIu64 " records (%s)\n",
		u->journal_used_bytes, u->journal_bytes, rep->replayed_batches,
		rep->replayed_records, rep->journal_end);
	fprintf(out, "used:     %" PRIu64 " bytes = live data %" PRIu64
		" + journal %" PRIu64 " + metadata %" PRIu64 "\n",
		u->used_bytes, u->live_data_bytes, u->journal_bytes, u->meta_bytes);
}

static int open_ro(struct io_loop *loop, const char *path, struct store **s,
		   FILE *out)
{
	struct store_params p;
	char why[512];
	store_params_default(&p);
	p.read_only = true;
	int rc = store_open(loop, path, &p, s, why, sizeof(why));
	if (rc)
		fprintf(out, "error: %s\n", why);
	return rc;
}

int store_fsck(struct io_loop *loop, const char *path, FILE *out, bool json)
{
	struct store *s;
	int rc = open_ro(loop, path, &s, out);
	if (rc)
		return rc == -EUCLEAN ? -EUCLEAN : rc;
	struct fsck_result r = { 0 };
	fsck_owners(s, json ? stderr : out, &r);
	fsck_data(s, json ? stderr : out, &r);
	struct store_usage u;
	store_usage(s, &u);
	r.unplaceable = store_report(s)->unplaceable;
	if (r.unplaceable)
		fprintf(json ? stderr : out,
			"error: the journal cannot be checkpointed: %" PRIu64 " objects have "
			"journaled data and no free block to flush it to (%" PRIu64 " objects "
			"need one, %" PRIu64 " blocks free)\n",
			r.unplaceable, u.blocks_promised, u.blocks_free);
	uint64_t errors = r.csum_errors + r.owner_errors + r.read_errors + r.unplaceable;
	if (json) {
		fprintf(out,
			"{\"clean\": %s, \"checksum_errors\": %" PRIu64
			", \"owner_errors\": %" PRIu64 ", \"read_errors\": %" PRIu64
			", \"unplaceable\": %" PRIu64 ", \"chunks_checked\": %" PRIu64 ", \"usage\": ",
			errors ? "false" : "true", r.csum_errors, r.owner_errors,
			r.read_errors, r.unplaceable, r.chunks_checked);
		print_usage(out, &u, store_report(s), true);
		fprintf(out, "}\n");
	} else {
		print_usage(out, &u, store_report(s), false);
		fprintf(out, "checked:  %" PRIu64 " blocks, %" PRIu64 " chunks\n",
			r.blocks_checked, r.chunks_checked);
		fprintf(out, "%s: %" PRIu64 " checksum errors, %" PRIu64
			" ownership errors, %" PRIu64 " read errors, %" PRIu64
			" objects the journal cannot place\n",
			errors ? "NOT CLEAN" : "clean", r.csum_errors, r.owner_errors,
			r.read_errors, r.unplaceable);
	}
	store_close(s);
	return errors ? -EUCLEAN : 0;
}

int store_dump(struct io_loop *loop, const char *path, FILE *out, bool json)
{
	struct store *s;
	int rc = open_ro(loop, path, &s, out);
	if (rc)
		return rc;
	struct store_usage u;
	store_usage(s, &u);
	print_usage(out, &u, store_report(s), json);
	store_close(s);
	return 0;
}
