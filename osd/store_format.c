/* Encoding and decoding of the store's on-device structures (see
 * store_format.h). Nothing here does I/O. */
#include "store_format.h"

#include <errno.h>
#include <string.h>

#include "common/assert.h"
#include "common/crc32c.h"

static uint64_t round_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) / a * a;
}

uint32_t store_entry_size(uint32_t chunks, uint32_t entry_min)
{
	uint32_t need = 52 + (chunks + 7) / 8 + 4 * chunks + 4;
	if (need < entry_min)
		need = entry_min;
	return (uint32_t)round_up(need, STORE_SECTOR);
}

int store_layout_compute(uint64_t device_size, uint32_t block_size,
			 uint64_t journal_size, uint32_t entry_min,
			 struct store_layout *out)
{
	if (block_size < STORE_BLOCK_SIZE_MIN || block_size > STORE_BLOCK_SIZE_MAX ||
	    (block_size & (block_size - 1)) || journal_size < STORE_JOURNAL_MIN ||
	    journal_size % STORE_CHUNK || entry_min > STORE_CHUNK)
		return -EINVAL;
	struct store_layout l = { .device_size = device_size,
				  .block_size = block_size };
	l.chunks_per_block = block_size / STORE_CHUNK;
	l.entry_size = store_entry_size(l.chunks_per_block, entry_min);
	l.journal_offset = STORE_JOURNAL_OFFSET;
	l.journal_size = journal_size;
	l.meta_offset = l.journal_offset + journal_size;
	uint64_t per_block = block_size + 2ULL * l.entry_size;
	if (device_size < l.meta_offset + STORE_DATA_ALIGN + per_block)
		return -EINVAL;
	uint64_t count = (device_size - l.meta_offset) / per_block;
	for (; count > 0; count--) {
		/* Two halves (slot A, slot B), each 4 KiB aligned. */
		l.meta_size = 2 * round_up(count * l.entry_size, STORE_CHUNK);
		l.data_offset = round_up(l.meta_offset + l.meta_size, STORE_DATA_ALIGN);
		if (l.data_offset + count * block_size <= device_size)
			break;
	}
	if (count == 0)
		return -EINVAL;
	l.block_count = count;
	*out = l;
	return 0;
}

/* --- superblock ------------------------------------------------------------ */

void store_sb_encode(const struct store_sb *sb, uint8_t buf[STORE_SB_SIZE])
{
	const struct store_layout *l = &sb->layout;
	struct enc e;
	memset(buf, 0, STORE_SB_SIZE);
	enc_init(&e, buf, STORE_SB_SIZE);
	enc_put_le64(&e, STORE_SB_MAGIC);
	enc_put_le32(&e, sb->format);
	enc_put_le32(&e, 0);
	enc_put_le64(&e, sb->generation);
	enc_put_bytes(&e, sb->uuid, sizeof(sb->uuid));
	enc_put_le64(&e, l->device_size);
	enc_put_le32(&e, l->block_size);
	enc_put_le32(&e, l->entry_size);
	enc_put_le64(&e, l->journal_offset);
	enc_put_le64(&e, l->journal_size);
	enc_put_le64(&e, l->meta_offset);
	enc_put_le64(&e, l->meta_size);
	enc_put_le64(&e, l->data_offset);
	enc_put_le64(&e, l->block_count);
	enc_put_le64(&e, sb->journal_tail);
	enc_put_le64(&e, sb->journal_seq);
	enc_put_le64(&e, sb->journal_epoch);
	enc_put_le64(&e, sb->created_unix);
	BASALT_ASSERT(enc_status(&e) == 0);
	le_store32(buf + STORE_SB_SIZE - 4, crc32c(0, buf, STORE_SB_SIZE - 4));
}

bool store_sb_has_magic(const uint8_t buf[STORE_SB_SIZE])
{
	return le_load64(buf) == STORE_SB_MAGIC;
}

int store_sb_decode(const uint8_t buf[STORE_SB_SIZE], struct store_sb *sb)
{
	if (!store_sb_has_magic(buf) ||
	    le_load32(buf + STORE_SB_SIZE - 4) != crc32c(0, buf, STORE_SB_SIZE - 4))
		return -EBADMSG;
	struct store_layout *l = &sb->layout;
	struct dec d;
	uint64_t magic;
	uint32_t pad;
	memset(sb, 0, sizeof(*sb));
	dec_init(&d, buf, STORE_SB_SIZE);
	dec_get_le64(&d, &magic);
	dec_get_le32(&d, &sb->format);
	dec_get_le32(&d, &pad);
	dec_get_le64(&d, &sb->generation);
	dec_get_bytes(&d, sb->uuid, sizeof(sb->uuid));
	dec_get_le64(&d, &l->device_size);
	dec_get_le32(&d, &l->block_size);
	dec_get_le32(&d, &l->entry_size);
	dec_get_le64(&d, &l->journal_offset);
	dec_get_le64(&d, &l->journal_size);
	dec_get_le64(&d, &l->meta_offset);
	dec_get_le64(&d, &l->meta_size);
	dec_get_le64(&d, &l->data_offset);
	dec_get_le64(&d, &l->block_count);
	dec_get_le64(&d, &sb->journal_tail);
	dec_get_le64(&d, &sb->journal_seq);
	dec_get_le64(&d, &sb->journal_epoch);
	dec_get_le64(&d, &sb->created_unix);
	if (dec_status(&d))
		return -EBADMSG;
	if (sb->format > STORE_FORMAT_VERSION)
		return -EPROTONOSUPPORT;
	/* The stored layout must be exactly what the recorded parameters
	 * produce: anything else is corruption, not a layout to trust. */
	struct store_layout want;
	if (store_layout_compute(l->device_size, l->block_size, l->journal_size,
				 l->entry_size, &want) ||
	    want.entry_size != l->entry_size || want.journal_offset != l->journal_offset ||
	    want.meta_offset != l->meta_offset || want.meta_size != l->meta_size ||
	    want.data_offset != l->data_offset || want.block_count != l->block_count ||
	    sb->journal_tail >= l->journal_size || sb->journal_tail % STORE_CHUNK)
		return -EBADMSG;
	l->chunks_per_block = want.chunks_per_block;
	return 0;
}

/* --- metadata entries ----------------------------------------------------------- */

void store_entry_encode(const struct store_entry *e, uint32_t chunks,
			uint8_t *buf, uint32_t entry_size)
{
	struct enc enc;
	memset(buf, 0, entry_size);
	enc_init(&enc, buf, entry_size);
	enc_put_le32(&enc, STORE_META_MAGIC);
	enc_put_le16(&enc, STORE_FORMAT_VERSION);
	enc_put_le16(&enc, e->used ? 1 : 0);
	enc_put_le32(&enc, e->seq);
	enc_put_le32(&enc, chunks);
	enc_put_object_id(&enc, &e->oid);
	enc_put_le64(&enc, e->version);
	enc_put_le64(&enc, e->block);
	enc_put_bytes(&enc, e->bitmap, (chunks + 7) / 8);
	for (uint32_t i = 0; i < chunks; i++)
		enc_put_le32(&enc, e->crc[i]);
	BASALT_ASSERT(enc_status(&enc) == 0 && enc.pos <= entry_size - 4);
	le_store32(buf + entry_size - 4, crc32c(0, buf, entry_size - 4));
}

int store_entry_decode(const uint8_t *buf, uint32_t chunks, uint32_t entry_size,
		       uint64_t block, struct store_entry *out)
{
	uint32_t magic = le_load32(buf);
	if (magic == 0) {
		bool zero = true;
		for (uint32_t i = 0; i < entry_size && zero; i++)
			zero = buf[i] == 0;
		if (zero)
			return 1;
	}
	if (magic != STORE_META_MAGIC ||
	    le_load32(buf + entry_size - 4) != crc32c(0, buf, entry_size - 4))
		return -EBADMSG;
	struct dec d;
	uint16_t format, flags;
	uint32_t nchunks;
	memset(out, 0, sizeof(*out));
	dec_init(&d, buf, entry_size - 4);
	dec_get_le32(&d, &magic);
	dec_get_le16(&d, &format);
	dec_get_le16(&d, &flags);
	dec_get_le32(&d, &out->seq);
	dec_get_le32(&d, &nchunks);
	dec_get_object_id(&d, &out->oid);
	dec_get_le64(&d, &out->version);
	dec_get_le64(&d, &out->block);
	if (nchunks != chunks || format != STORE_FORMAT_VERSION || flags > 1)
		return -EBADMSG;
	dec_get_bytes(&d, out->bitmap, (chunks + 7) / 8);
	for (uint32_t i = 0; i < chunks; i++)
		dec_get_le32(&d, &out->crc[i]);
	if (dec_status(&d) || out->block != block)
		return -EBADMSG;
	out->used = flags & 1;
	return 0;
}

/* --- journal ---------------------------------------------------------------------- */

uint32_t store_record_len(enum store_record_type type, uint32_t nchunks, bool masked)
{
	switch (type) {
	case STORE_REC_SMALL:
		return STORE_REC_FIXED_LEN + 8 + 4 * nchunks;
	case STORE_REC_BIG:
		return STORE_REC_FIXED_LEN + 8 + 4 * nchunks + (masked ? (nchunks + 7) / 8 : 0);
	case STORE_REC_DELETE:
	default:
		return STORE_REC_FIXED_LEN;
	}
}

int store_record_encode(struct enc *e, const struct store_record *r,
			const uint32_t *crcs)
{
	bool masked = r->type == STORE_REC_BIG && r->written;
	enc_put_u8(e, (uint8_t)r->type);
	enc_put_u8(e, (masked ? STORE_REC_FLAG_MASKED : 0) |
			      (r->type == STORE_REC_BIG && r->takeover ? STORE_REC_FLAG_TAKEOVER : 0));
	enc_put_le16(e, (uint16_t)r->nchunks);
	enc_put_object_id(e, &r->oid);
	enc_put_le64(e, r->version);
	if (r->type == STORE_REC_SMALL) {
		enc_put_le16(e, (uint16_t)r->first_chunk);
		enc_put_le16(e, 0);
		enc_put_le32(e, r->data_off);
	} else if (r->type == STORE_REC_BIG) {
		enc_put_le64(e, r->block);
	}
	if (r->type != STORE_REC_DELETE)
		for (uint32_t i = 0; i < r->nchunks; i++)
			enc_put_le32(e, crcs[i]);
	if (masked)
		enc_put_bytes(e, r->written, (r->nchunks + 7) / 8);
	return enc_status(e);
}

void store_batch_seal(uint8_t *header, const struct store_batch *b)
{
	struct enc e;
	enc_init(&e, header, STORE_BATCH_HEADER_LEN);
	enc_put_le32(&e, STORE_JOURNAL_MAGIC);
	enc_put_le16(&e, STORE_FORMAT_VERSION);
	enc_put_le16(&e, (uint16_t)b->kind);
	enc_put_le64(&e, b->epoch);
	enc_put_le64(&e, b->seq);
	enc_put_le32(&e, b->header_len);
	enc_put_le32(&e, b->data_len);
	enc_put_le32(&e, b->record_count);
	enc_put_le32(&e, b->flags);
	enc_put_le32(&e, 0);
	BASALT_ASSERT(enc_status(&e) == 0);
	le_store32(header + 40, crc32c(0, header, b->header_len));
}

int store_batch_decode(const uint8_t *buf, size_t avail,
		       uint32_t chunks_per_block, struct store_batch *out)
{
	(void)chunks_per_block;
	if (avail < STORE_BATCH_HEADER_LEN || le_load32(buf) != STORE_JOURNAL_MAGIC)
		return -EBADMSG;
	struct dec d;
	uint32_t magic, crc;
	uint16_t format, kind;
	dec_init(&d, buf, STORE_BATCH_HEADER_LEN);
	dec_get_le32(&d, &magic);
	dec_get_le16(&d, &format);
	dec_get_le16(&d, &kind);
	dec_get_le64(&d, &out->epoch);
	dec_get_le64(&d, &out->seq);
	dec_get_le32(&d, &out->header_len);
	dec_get_le32(&d, &out->data_len);
	dec_get_le32(&d, &out->record_count);
	dec_get_le32(&d, &out->flags);
	dec_get_le32(&d, &crc);
	if (format != STORE_FORMAT_VERSION || (out->flags & ~STORE_BATCH_FLAGS_KNOWN) ||
	    (kind != STORE_BATCH_RECORDS && kind != STORE_BATCH_WRAP) ||
	    out->header_len < STORE_BATCH_HEADER_LEN || out->header_len > avail ||
	    out->data_len % STORE_CHUNK ||
	    (kind == STORE_BATCH_WRAP && (out->record_count || out->data_len)))
		return -EBADMSG;
	out->kind = (enum store_batch_kind)kind;
	/* The CRC covers the header with its own field as zero. */
	uint32_t c = crc32c(0, buf, 40);
	static const uint8_t zero[4];
	c = crc32c(c, zero, 4);
	c = crc32c(c, buf + STORE_BATCH_HEADER_LEN,
		   out->header_len - STORE_BATCH_HEADER_LEN);
	return c == crc ? 0 : -EBADMSG;
}

int store_record_next(struct dec *d, uint32_t chunks_per_block,
		      struct store_record *r)
{
	if (dec_remaining(d) == 0)
		return 0;
	uint8_t type, flags;
	uint16_t nchunks;
	memset(r, 0, sizeof(*r));
	dec_get_u8(d, &type);
	dec_get_u8(d, &flags);
	dec_get_le16(d, &nchunks);
	dec_get_object_id(d, &r->oid);
	dec_get_le64(d, &r->version);
	r->type = (enum store_record_type)type;
	r->nchunks = nchunks;
	switch (type) {
	case STORE_REC_SMALL: {
		uint16_t first, pad;
		dec_get_le16(d, &first);
		dec_get_le16(d, &pad);
		dec_get_le32(d, &r->data_off);
		r->first_chunk = first;
		if (!nchunks || first + nchunks > chunks_per_block ||
		    r->data_off % STORE_CHUNK)
			return -EBADMSG;
		break;
	}
	case STORE_REC_BIG:
		dec_get_le64(d, &r->block);
		if (nchunks != chunks_per_block)
			return -EBADMSG;
		break;
	case STORE_REC_DELETE:
		if (nchunks)
			return -EBADMSG;
		break;
	default:
		return -EBADMSG;
	}
	if (type != STORE_REC_DELETE)
		r->crcs = dec_take(d, 4u * nchunks);
	if (flags & ~(STORE_REC_FLAG_MASKED | STORE_REC_FLAG_TAKEOVER) ||
	    (flags && type != STORE_REC_BIG))
		return -EBADMSG;
	r->takeover = flags & STORE_REC_FLAG_TAKEOVER;
	if (flags & STORE_REC_FLAG_MASKED)
		r->written = dec_take(d, (nchunks + 7u) / 8);
	return dec_status(d) ? -EBADMSG : 1;
}
