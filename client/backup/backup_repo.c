/* A backup repository: the objects under one bucket prefix.
 *
 *   PREFIX/basalt-backup.json  config: format, chunk size, encryption, key check
 *   PREFIX/chunks/ID           one 4 MiB chunk, sealed (ID: hex SHA-256 or HMAC)
 *   PREFIX/maps/BACKUP         a backup's chunk map, sealed
 *   PREFIX/backups/BACKUP      its summary, sealed: written last, the commit
 *   PREFIX/gc/pending          chunks a prune found unreferenced, with when
 *   PREFIX/gc/deleting         present while a prune deletes chunks
 *
 * The config stays plain JSON so any tool can tell what the prefix holds;
 * when encrypted it records a key check derived from the key (HKDF), not
 * the key. Everything else is opaque without the key. */
#include "client/backup/backup_int.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/number.h"
#include "common/why.h"

#define CONFIG_NAME "basalt-backup.json"
#define GRACE_DEFAULT_S (24 * 3600)
#define SUMMARY_MAX (64u << 10)
#define MAP_MAX (256u << 20)
#define MARKS_MAX (512u << 20)

double backup_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void backup_new_id(char out[BACKUP_ID_MAX])
{
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	uint8_t r[4];
	if (RAND_bytes(r, sizeof(r)) != 1)
		memset(r, 0, sizeof(r));
	char hex[9];
	number_hex_encode(r, 4, hex);
	char stamp[20];
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	snprintf(out, BACKUP_ID_MAX, "%s-%s", stamp, hex);
}

void backup_key_name(const struct backup_repo *r, const char *name, char *out)
{
	snprintf(out, BACKUP_KEY_PREFIX_MAX + 96, "%s%s%s", r->p.prefix, *r->p.prefix ? "/" : "",
		 name);
}

void backup_chunk_key(const struct backup_repo *r, const uint8_t id[32], char *out)
{
	char name[80] = "chunks/";
	number_hex_encode(id, 32, name + 7);
	backup_key_name(r, name, out);
}

int backup_repo_get_sealed(struct backup_repo *r, void *conn, const char *magic,
			   const char *name, const uint8_t *want_sum, size_t max_plain,
			   void **plain, size_t *len, char *why, size_t why_len)
{
	char key[BACKUP_KEY_PREFIX_MAX + 96], inner[200];
	backup_key_name(r, name, key);
	void *buf;
	size_t n;
	int rc = r->p.store.ops->get(conn, key, &buf, &n, why, why_len);
	if (rc)
		return rc;
	uint8_t sum[32];
	if (want_sum)
		backup_sha256(buf, n, sum);
	if (want_sum && memcmp(sum, want_sum, 32) != 0)
		rc = why_set(inner, sizeof(inner), -EBADMSG,
			     "its SHA-256 is not the one its summary records (altered)");
	else
		rc = backup_unseal(&r->keys, magic, name, strlen(name), buf, n, max_plain, plain,
				   len, inner, sizeof(inner));
	free(buf);
	return rc ? why_set(why, why_len, rc, "%s/%s: %s", r->url, name, inner) : 0;
}

int backup_repo_put_sealed(struct backup_repo *r, void *conn, const char *magic,
			   const char *name, const void *plain, size_t len, uint8_t sum[32],
			   char *why, size_t why_len)
{
	char key[BACKUP_KEY_PREFIX_MAX + 96];
	backup_key_name(r, name, key);
	void *buf;
	size_t n;
	int rc = backup_seal(&r->keys, magic, name, strlen(name), plain, len, r->p.zstd_level,
			     &buf, &n, why, why_len);
	if (rc)
		return rc;
	if (sum)
		backup_sha256(buf, n, sum);
	rc = r->p.store.ops->put(conn, key, buf, n, why, why_len);
	free(buf);
	return rc;
}

/* --- the config object ------------------------------------------------------ */

static int config_write(struct backup_repo *r, char *why, size_t why_len)
{
	char check[65] = "";
	if (r->keys.encrypted)
		number_hex_encode(r->keys.check, 32, check);
	json_t *doc = json_pack("{s:i, s:s, s:i, s:s, s:s, s:I}", "format", 1, "made_by",
				"basalt backup", "chunk_size", (int)BACKUP_CHUNK_SIZE, "encryption",
				r->keys.encrypted ? "aes-256-gcm" : "none", "key_check", check,
				"gc_grace_s", (json_int_t)r->grace_s);
	char *text = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
	json_decref(doc);
	if (!text)
		return why_set(why, why_len, -ENOMEM, "out of memory");
	char key[BACKUP_KEY_PREFIX_MAX + 96];
	backup_key_name(r, CONFIG_NAME, key);
	int rc = r->p.store.ops->put(r->conn, key, text, strlen(text), why, why_len);
	free(text);
	return rc;
}

/* Checks the config object's TEXT against the key R was opened with. */
static int config_check(struct backup_repo *r, const char *text, size_t len, char *why,
			size_t why_len)
{
	json_t *doc = json_loadb(text, len, 0, NULL);
	const char *enc = json_string_value(json_object_get(doc, "encryption"));
	const char *check = json_string_value(json_object_get(doc, "key_check"));
	json_t *grace = json_object_get(doc, "gc_grace_s");
	int rc = 0;
	if (!enc || !check || json_integer_value(json_object_get(doc, "chunk_size")) !=
				      BACKUP_CHUNK_SIZE) {
		rc = why_set(why, why_len, -EBADMSG, "%s/%s is not a Basalt backup config",
			     r->url, CONFIG_NAME);
	} else if (strcmp(enc, "none") == 0 && r->keys.encrypted) {
		rc = why_set(why, why_len, -EPERM,
			     "%s is not encrypted: a key file cannot be used with it (backups "
			     "there would mix encrypted and plain chunks); use another prefix",
			     r->url);
	} else if (strcmp(enc, "none") != 0 && !r->keys.encrypted) {
		rc = why_set(why, why_len, -ENOKEY,
			     "%s is encrypted: give its key file (--key-file FILE)", r->url);
	} else if (r->keys.encrypted) {
		char mine[65];
		number_hex_encode(r->keys.check, 32, mine);
		if (strcmp(mine, check) != 0)
			rc = why_set(why, why_len, -EKEYREJECTED,
				     "the key file is not the one %s was made with", r->url);
	}
	if (!rc && json_is_integer(grace) && json_integer_value(grace) >= 0)
		r->grace_s = json_integer_value(grace);
	json_decref(doc);
	return rc;
}

int backup_repo_open(const struct backup_repo_params *p, bool create, struct backup_repo **out,
		     char *why, size_t why_len)
{
	struct backup_repo *r = calloc(1, sizeof(*r));
	if (!r)
		return why_set(why, why_len, -ENOMEM, "out of memory");
	r->p = *p;
	r->grace_s = GRACE_DEFAULT_S;
	snprintf(r->url, sizeof(r->url), "%s", p->url ? p->url : p->prefix);
	int rc = p->key_file ? backup_key_load(p->key_file, &r->keys, why, why_len) : 0;
	if (!rc)
		rc = p->store.ops->connect(p->store.ctx, &r->conn, why, why_len);
	char key[BACKUP_KEY_PREFIX_MAX + 96];
	backup_key_name(r, CONFIG_NAME, key);
	void *text = NULL;
	size_t len = 0;
	if (!rc)
		rc = p->store.ops->get(r->conn, key, &text, &len, why, why_len);
	if (rc == -ENOENT && create)
		rc = config_write(r, why, why_len);
	else if (rc == -ENOENT)
		rc = why_set(why, why_len, -ENOENT, "no Basalt backups at %s (no %s there)",
			     r->url, CONFIG_NAME);
	else if (!rc)
		rc = config_check(r, text, len, why, why_len);
	free(text);
	if (rc) {
		backup_repo_close(r);
		return rc;
	}
	*out = r;
	return 0;
}

void backup_repo_close(struct backup_repo *r)
{
	if (!r)
		return;
	if (r->conn)
		r->p.store.ops->disconnect(r->conn);
	memset(&r->keys, 0, sizeof(r->keys));
	free(r);
}

bool backup_repo_encrypted(const struct backup_repo *r)
{
	return r->keys.encrypted;
}

int64_t backup_repo_grace(const struct backup_repo *r)
{
	return r->grace_s;
}

/* --- summaries and maps -------------------------------------------------- */

static bool id_valid(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n >= BACKUP_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'A' && id[i] <= 'Z') ||
		      (id[i] >= 'a' && id[i] <= 'z') || id[i] == '-'))
			return false;
	return true;
}

int backup_info(struct backup_repo *r, const char *id, struct backup_summary *out, char *why,
		size_t why_len)
{
	if (!id_valid(id))
		return why_set(why, why_len, -EINVAL,
			       "'%s' is not a backup id (like 20261206T121500Z-1a2b3c4d)", id);
	char name[64], inner[400];
	snprintf(name, sizeof(name), "backups/%s", id);
	void *text;
	size_t len;
	int rc = backup_repo_get_sealed(r, r->conn, "BSLTSUM1", name, NULL, SUMMARY_MAX, &text, &len,
					inner, sizeof(inner));
	if (rc == -ENOENT)
		return why_set(why, why_len, rc, "no backup %s at %s", id, r->url);
	if (rc)
		return why_set(why, why_len, rc, "%s", inner);
	rc = backup_summary_decode(text, len, out, inner, sizeof(inner));
	free(text);
	if (!rc && strcmp(out->id, id) != 0)
		rc = why_set(inner, sizeof(inner), -EBADMSG, "it names itself %s", out->id);
	return rc ? why_set(why, why_len, rc, "backup %s: %s", id, inner) : 0;
}

struct summaries {
	char (*ids)[BACKUP_ID_MAX];
	size_t n, cap;
	size_t prefix_len;
};

static int summaries_found(const char *key, uint64_t size, int64_t mtime_s, void *arg)
{
	struct summaries *s = arg;
	const char *id = key + s->prefix_len;
	if (!id_valid(id))
		return 0; /* not ours */
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 32;
		void *n = realloc(s->ids, cap * BACKUP_ID_MAX);
		if (!n)
			return -ENOMEM;
		s->ids = n;
		s->cap = cap;
	}
	snprintf(s->ids[s->n++], BACKUP_ID_MAX, "%s", id);
	return 0;
}

int backup_summary_order(const void *a, const void *b)
{
	const struct backup_summary *x = a, *y = b;
	if (x->snap_time_s != y->snap_time_s)
		return x->snap_time_s < y->snap_time_s ? -1 : 1;
	if (x->snap_epoch != y->snap_epoch)
		return x->snap_epoch < y->snap_epoch ? -1 : 1;
	if (x->created_s != y->created_s)
		return x->created_s < y->created_s ? -1 : 1;
	return strcmp(x->id, y->id);
}

int backup_repo_summaries(struct backup_repo *r, const char *volume,
			  struct backup_summary **out, size_t *n, char *why, size_t why_len)
{
	char prefix[BACKUP_KEY_PREFIX_MAX + 96];
	backup_key_name(r, "backups/", prefix);
	struct summaries ids = { .prefix_len = strlen(prefix) };
	int rc = r->p.store.ops->list(r->conn, prefix, summaries_found, &ids, why, why_len);
	struct backup_summary *s = rc || !ids.n ? NULL : calloc(ids.n, sizeof(*s));
	if (!rc && ids.n && !s)
		rc = why_set(why, why_len, -ENOMEM, "out of memory");
	size_t k = 0;
	for (size_t i = 0; !rc && i < ids.n; i++) {
		rc = backup_info(r, ids.ids[i], &s[k], why, why_len);
		if (rc == -ENOENT)
			rc = 0; /* removed since the listing */
		else if (!rc && (!volume || strcmp(s[k].volume, volume) == 0))
			k++;
	}
	free(ids.ids);
	if (rc) {
		free(s);
		return rc;
	}
	if (k)
		qsort(s, k, sizeof(*s), backup_summary_order);
	*out = s;
	*n = k;
	return 0;
}

int backup_list(struct backup_repo *r, const char *volume, backup_summary_fn fn, void *arg,
		char *why, size_t why_len)
{
	struct backup_summary *s;
	size_t n;
	int rc = backup_repo_summaries(r, volume, &s, &n, why, why_len);
	for (size_t i = 0; !rc && i < n; i++)
		rc = fn(&s[i], arg);
	free(s);
	return rc;
}

int backup_repo_load_map(struct backup_repo *r, const struct backup_summary *s,
			 struct backup_map *out, char *why, size_t why_len)
{
	char name[64], inner[400];
	snprintf(name, sizeof(name), "maps/%s", s->id);
	void *text;
	size_t len;
	int rc = backup_repo_get_sealed(r, r->conn, "BSLTMAP1", name, s->map_sha256, MAP_MAX,
					&text, &len, inner, sizeof(inner));
	if (!rc) {
		rc = backup_map_decode(text, len, s->id, out, inner, sizeof(inner));
		free(text);
	}
	return rc ? why_set(why, why_len, rc, "chunk map of backup %s: %s", s->id, inner) : 0;
}

int backup_load(struct backup_repo *r, const char *id, struct backup_summary *s,
		struct backup_map *m, char *why, size_t why_len)
{
	int rc = backup_info(r, id, s, why, why_len);
	return rc ? rc : backup_repo_load_map(r, s, m, why, why_len);
}

/* --- marks of the garbage collection --------------------------------------------- */

static int mark_cmp(const void *a, const void *b)
{
	return memcmp(((const struct backup_mark *)a)->id, ((const struct backup_mark *)b)->id, 32);
}

void backup_marks_sort(struct backup_marks *m)
{
	if (m->n)
		qsort(m->m, m->n, sizeof(*m->m), mark_cmp);
}

const struct backup_mark *backup_marks_find(const struct backup_marks *m, const uint8_t id[32])
{
	struct backup_mark key;
	memcpy(key.id, id, 32);
	return m->n ? bsearch(&key, m->m, m->n, sizeof(key), mark_cmp) : NULL;
}

void backup_marks_free(struct backup_marks *m)
{
	free(m->m);
	memset(m, 0, sizeof(*m));
}

static int marks_decode(const char *text, size_t len, struct backup_marks *out)
{
	json_t *doc = json_loadb(text, len, 0, NULL);
	json_t *list = json_object_get(doc, "marks");
	json_t *gen = json_object_get(doc, "generation");
	int rc = json_is_array(list) && json_is_integer(gen) ? 0 : -EBADMSG;
	size_t n = json_array_size(list);
	out->m = rc || !n ? NULL : calloc(n, sizeof(*out->m));
	if (!rc && n && !out->m)
		rc = -ENOMEM;
	for (size_t i = 0; !rc && i < n; i++) {
		const char *id;
		json_int_t t;
		if (json_unpack(json_array_get(list, i), "[s, I]", &id, &t) ||
		    number_hex_decode(id, out->m[i].id, 32))
			rc = -EBADMSG;
		out->m[i].marked_s = t;
	}
	out->n = rc ? 0 : n;
	out->generation = (uint64_t)json_integer_value(gen);
	json_decref(doc);
	if (!rc)
		backup_marks_sort(out);
	return rc;
}

int backup_marks_load(struct backup_repo *r, void *conn, struct backup_marks *out, char *why,
		      size_t why_len)
{
	memset(out, 0, sizeof(*out));
	void *text;
	size_t len;
	int rc = backup_repo_get_sealed(r, conn, "BSLTGCM1", "gc/pending", NULL, MARKS_MAX, &text, &len,
					why, why_len);
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	rc = marks_decode(text, len, out);
	free(text);
	return rc ? why_set(why, why_len, rc, "%s/gc/pending is damaged", r->url) : 0;
}

int backup_marks_store(struct backup_repo *r, void *conn, const struct backup_marks *m,
		       char *why, size_t why_len)
{
	json_t *list = json_array();
	for (size_t i = 0; list && i < m->n; i++) {
		char hex[65];
		number_hex_encode(m->m[i].id, 32, hex);
		if (json_array_append_new(list, json_pack("[s, I]", hex,
							  (json_int_t)m->m[i].marked_s))) {
			json_decref(list);
			list = NULL;
		}
	}
	json_t *doc = list ? json_pack("{s:I, s:o}", "generation", (json_int_t)m->generation,
				       "marks", list)
			   : NULL;
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	if (!text)
		return why_set(why, why_len, -ENOMEM, "out of memory");
	int rc = backup_repo_put_sealed(r, conn, "BSLTGCM1", "gc/pending", text, strlen(text),
					NULL, why, why_len);
	free(text);
	return rc;
}

/* --- a sweep at work ------------------------------------------------------------- */

int backup_deleting_touch(struct backup_repo *r, void *conn, char *why, size_t why_len)
{
	char key[BACKUP_KEY_PREFIX_MAX + 96], text[64];
	backup_key_name(r, "gc/deleting", key);
	int n = snprintf(text, sizeof(text), "{\"updated\": %lld}", (long long)backup_now());
	return r->p.store.ops->put(conn, key, text, (size_t)n, why, why_len);
}

int backup_deleting_clear(struct backup_repo *r, void *conn, char *why, size_t why_len)
{
	char key[BACKUP_KEY_PREFIX_MAX + 96];
	backup_key_name(r, "gc/deleting", key);
	return r->p.store.ops->del(conn, key, why, why_len);
}

int backup_deleting_state(struct backup_repo *r, void *conn, enum backup_deleting *out,
			  char *why, size_t why_len)
{
	char key[BACKUP_KEY_PREFIX_MAX + 96];
	backup_key_name(r, "gc/deleting", key);
	void *text;
	size_t len;
	*out = BACKUP_DELETING_NONE;
	int rc = r->p.store.ops->get(conn, key, &text, &len, why, why_len);
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	json_t *doc = json_loadb(text, len, 0, NULL);
	json_int_t updated = json_integer_value(json_object_get(doc, "updated"));
	json_decref(doc);
	free(text);
	*out = backup_now() - (double)updated < BACKUP_DELETING_FRESH_S ? BACKUP_DELETING_NOW
								     : BACKUP_DELETING_STALE;
	return 0;
}
