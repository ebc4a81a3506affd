/* A backup's manifest is two JSON documents (jansson): the summary
 * (volume, snapshot, sizes, parent, the chunk map's SHA-256) that
 * `backup ls` reads, and the chunk map (index, chunk id, SHA-256 and
 * the stored object's length, plaintext length; the id is the chunk's
 * checksum) that restore and
 * verify read. Decoding checks every field: the bucket is not trusted. */
#include "client/backup/backup_int.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/number.h"
#include "common/why.h"

#define MANIFEST_FORMAT 1

int backup_map_add(struct backup_map *m, const struct backup_chunk_ref *c)
{
	if (m->n == m->cap) {
		size_t cap = m->cap ? 2 * m->cap : 64;
		struct backup_chunk_ref *n = realloc(m->c, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		m->c = n;
		m->cap = cap;
	}
	m->c[m->n++] = *c;
	return 0;
}

void backup_map_free(struct backup_map *m)
{
	free(m->c);
	memset(m, 0, sizeof(*m));
}

static int ref_cmp(const void *a, const void *b)
{
	const struct backup_chunk_ref *x = a, *y = b;
	return x->index < y->index ? -1 : x->index > y->index;
}

void backup_map_sort(struct backup_map *m)
{
	if (m->n)
		qsort(m->c, m->n, sizeof(*m->c), ref_cmp);
}

const struct backup_chunk_ref *backup_map_find(const struct backup_map *m, uint64_t index)
{
	size_t lo = 0, hi = m->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->c[mid].index < index)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < m->n && m->c[lo].index == index ? &m->c[lo] : NULL;
}

static json_t *hex_json(const uint8_t *b, size_t n)
{
	char text[129];
	number_hex_encode(b, n, text);
	return json_string(text);
}

static char *dump(json_t *doc)
{
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	return text;
}

char *backup_summary_encode(const struct backup_summary *s)
{
	json_t *doc = json_pack(
		"{s:i, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:i, s:I, s:I, s:I, s:I, s:I, "
		"s:I, s:f, s:o}",
		"format", MANIFEST_FORMAT, "id", s->id, "volume", s->volume, "snapshot",
		s->snapshot, "parent", s->parent, "inode", (json_int_t)s->inode, "size",
		(json_int_t)s->size, "snap_epoch", (json_int_t)s->snap_epoch, "snap_time",
		(json_int_t)s->snap_time_s, "created", (json_int_t)s->created_s, "chunk_size",
		(int)s->chunk_size, "chunks", (json_int_t)s->chunks, "data_bytes",
		(json_int_t)s->data_bytes, "stored_bytes", (json_int_t)s->stored_bytes,
		"read_bytes", (json_int_t)s->read_bytes, "uploaded_bytes",
		(json_int_t)s->uploaded_bytes, "chunks_uploaded", (json_int_t)s->chunks_uploaded,
		"seconds", s->seconds, "map_sha256", hex_json(s->map_sha256, 32));
	return dump(doc);
}

/* Copies string field KEY of DOC into OUT (CAP bytes, non-empty unless EMPTY_OK). */
static int str_field(json_t *doc, const char *key, char *out, size_t cap, bool empty_ok)
{
	const char *v = json_string_value(json_object_get(doc, key));
	if (!v || strlen(v) >= cap || (!empty_ok && !*v))
		return -EBADMSG;
	strcpy(out, v);
	return 0;
}

static int u64_field(json_t *doc, const char *key, uint64_t *out)
{
	json_t *v = json_object_get(doc, key);
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -EBADMSG;
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int summary_fields(json_t *doc, struct backup_summary *s)
{
	uint64_t t_snap = 0, t_created = 0, chunk = 0;
	char sum[80];
	int rc = str_field(doc, "id", s->id, sizeof(s->id), false) |
		 str_field(doc, "volume", s->volume, sizeof(s->volume), false) |
		 str_field(doc, "snapshot", s->snapshot, sizeof(s->snapshot), false) |
		 str_field(doc, "parent", s->parent, sizeof(s->parent), true) |
		 str_field(doc, "map_sha256", sum, sizeof(sum), false) |
		 u64_field(doc, "inode", &s->inode) | u64_field(doc, "size", &s->size) |
		 u64_field(doc, "snap_epoch", &s->snap_epoch) |
		 u64_field(doc, "snap_time", &t_snap) | u64_field(doc, "created", &t_created) |
		 u64_field(doc, "chunk_size", &chunk) | u64_field(doc, "chunks", &s->chunks) |
		 u64_field(doc, "data_bytes", &s->data_bytes) |
		 u64_field(doc, "stored_bytes", &s->stored_bytes) |
		 u64_field(doc, "read_bytes", &s->read_bytes) |
		 u64_field(doc, "uploaded_bytes", &s->uploaded_bytes) |
		 u64_field(doc, "chunks_uploaded", &s->chunks_uploaded);
	if (rc || number_hex_decode(sum, s->map_sha256, 32) || chunk != BACKUP_CHUNK_SIZE)
		return -EBADMSG;
	s->snap_time_s = (int64_t)t_snap;
	s->created_s = (int64_t)t_created;
	s->chunk_size = (uint32_t)chunk;
	s->seconds = json_number_value(json_object_get(doc, "seconds"));
	return 0;
}

int backup_summary_decode(const char *text, size_t len, struct backup_summary *out, char *why,
			  size_t why_len)
{
	memset(out, 0, sizeof(*out));
	json_error_t err;
	json_t *doc = json_loadb(text, len, 0, &err);
	if (!doc)
		return why_set(why, why_len, -EBADMSG, "summary is not JSON: %s", err.text);
	json_t *format = json_object_get(doc, "format");
	int rc = json_integer_value(format) == MANIFEST_FORMAT ? summary_fields(doc, out) : -EBADMSG;
	json_decref(doc);
	return rc ? why_set(why, why_len, rc, "summary lacks a field or has a bad one") : 0;
}

static json_t *ref_json(const struct backup_chunk_ref *c)
{
	return json_pack("[I, o, I, I]", (json_int_t)c->index, hex_json(c->id, 32),
			 (json_int_t)c->stored_len,
			 (json_int_t)c->plain_len);
}

char *backup_map_encode(const char *id, const struct backup_map *m)
{
	json_t *chunks = json_array();
	for (size_t i = 0; chunks && i < m->n; i++)
		if (json_array_append_new(chunks, ref_json(&m->c[i]))) {
			json_decref(chunks);
			chunks = NULL;
		}
	if (!chunks)
		return NULL;
	return dump(json_pack("{s:i, s:s, s:i, s:o}", "format", MANIFEST_FORMAT, "backup", id,
			      "chunk_size", (int)BACKUP_CHUNK_SIZE, "chunks", chunks));
}

static int ref_decode(json_t *e, struct backup_chunk_ref *c)
{
	json_int_t index, stored, plain;
	const char *id;
	if (json_unpack(e, "[I, s, I, I]", &index, &id, &stored, &plain) || index < 0 ||
	    stored <= 0 || stored > 2 * (json_int_t)BACKUP_CHUNK_SIZE || plain <= 0 ||
	    plain > (json_int_t)BACKUP_CHUNK_SIZE || number_hex_decode(id, c->id, 32))
		return -EBADMSG;
	c->index = (uint64_t)index;
	c->stored_len = (uint32_t)stored;
	c->plain_len = (uint32_t)plain;
	return 0;
}

int backup_map_decode(const char *text, size_t len, const char *id, struct backup_map *out,
		      char *why, size_t why_len)
{
	memset(out, 0, sizeof(*out));
	json_error_t err;
	json_t *doc = json_loadb(text, len, 0, &err);
	if (!doc)
		return why_set(why, why_len, -EBADMSG, "chunk map is not JSON: %s", err.text);
	const char *owner = json_string_value(json_object_get(doc, "backup"));
	json_t *chunks = json_object_get(doc, "chunks");
	int rc = owner && strcmp(owner, id) == 0 && json_is_array(chunks) ? 0 : -EBADMSG;
	for (size_t i = 0; !rc && i < json_array_size(chunks); i++) {
		struct backup_chunk_ref c;
		rc = ref_decode(json_array_get(chunks, i), &c);
		if (!rc && out->n && out->c[out->n - 1].index >= c.index)
			rc = -EBADMSG; /* sorted, one entry per chunk */
		if (!rc)
			rc = backup_map_add(out, &c);
	}
	json_decref(doc);
	if (rc) {
		backup_map_free(out);
		return why_set(why, why_len, rc, "chunk map of %s has a bad entry", id);
	}
	return 0;
}
