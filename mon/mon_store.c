/* The monitor's durable Raft state (see mon_store.h). The log's records
 * are also kept in memory (a monitor's log is bounded by snapshots), so
 * open can hand Raft its boot state and truncation knows each record's
 * offset. */
#include "mon_store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/enc.h"
#include "common/why.h"

#define META_SLOT 4096
#define META_MAGIC 0x4154454d4e4f4d42ULL /* "BMONMETA" */
#define LOG_MAGIC 0x474c4d42u		 /* "BMLG" */
#define SNAP_MAGIC 0x50414e534e4f4d42ULL /* "BMONSNAP" */
#define LOG_HEADER 32

struct mon_store {
	char *dir;
	int meta_fd, log_fd;
	uint64_t meta_gen;
	uint64_t term;
	int vote;
	bool dirty_meta, dirty_log;
	/* The log, from snap_index + 1, with each record's file offset. */
	struct raft_entry *e;
	uint64_t *offset;
	size_t n, cap;
	uint64_t log_end;
	uint64_t snap_index, snap_term;
	uint8_t *snap;
	size_t snap_len;
};


static char *path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

static int write_full(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

/* --- meta: two slots ------------------------------------------------------- */

static void meta_encode(uint8_t *buf, uint64_t gen, uint64_t term, int vote)
{
	struct enc e;
	memset(buf, 0, META_SLOT);
	enc_init(&e, buf, META_SLOT);
	enc_put_le64(&e, META_MAGIC);
	enc_put_le64(&e, gen);
	enc_put_le64(&e, term);
	enc_put_le32(&e, (uint32_t)vote);
	le_store32(buf + META_SLOT - 4, crc32c(0, buf, META_SLOT - 4));
}

static bool meta_decode(const uint8_t *buf, uint64_t *gen, uint64_t *term, int *vote)
{
	if (le_load64(buf) != META_MAGIC ||
	    le_load32(buf + META_SLOT - 4) != crc32c(0, buf, META_SLOT - 4))
		return false;
	*gen = le_load64(buf + 8);
	*term = le_load64(buf + 16);
	*vote = (int)le_load32(buf + 24);
	return true;
}

int mon_store_save_term_vote(struct mon_store *ms, uint64_t term, int vote)
{
	uint8_t buf[META_SLOT];
	ms->meta_gen++;
	meta_encode(buf, ms->meta_gen, term, vote);
	int rc = write_full(ms->meta_fd, buf, META_SLOT, (ms->meta_gen & 1) * META_SLOT);
	if (rc)
		return rc;
	ms->term = term;
	ms->vote = vote;
	ms->dirty_meta = true;
	return 0;
}

/* --- log records ---------------------------------------------------------- */

static size_t record_len(const struct raft_entry *e)
{
	return LOG_HEADER + e->len + 4;
}

static void record_encode(const struct raft_entry *e, uint8_t *buf)
{
	struct enc enc;
	enc_init(&enc, buf, record_len(e));
	enc_put_le32(&enc, LOG_MAGIC);
	enc_put_le32(&enc, e->type);
	enc_put_le64(&enc, e->index);
	enc_put_le64(&enc, e->term);
	enc_put_le32(&enc, e->len);
	enc_put_le32(&enc, 0);
	enc_put_bytes(&enc, e->data, e->len);
	enc_put_le32(&enc, crc32c(0, buf, LOG_HEADER + e->len));
}

static int log_push(struct mon_store *ms, const struct raft_entry *e, uint64_t off)
{
	if (ms->n == ms->cap) {
		size_t cap = ms->cap ? 2 * ms->cap : 64;
		struct raft_entry *ne = realloc(ms->e, cap * sizeof(*ne));
		if (!ne)
			return -ENOMEM;
		ms->e = ne;
		uint64_t *no = realloc(ms->offset, cap * sizeof(*no));
		if (!no)
			return -ENOMEM;
		ms->offset = no;
		ms->cap = cap;
	}
	struct raft_entry *d = &ms->e[ms->n];
	*d = *e;
	d->data = NULL;
	if (e->len) {
		d->data = malloc(e->len);
		if (!d->data)
			return -ENOMEM;
		memcpy(d->data, e->data, e->len);
	}
	ms->offset[ms->n++] = off;
	return 0;
}

static void log_drop_from(struct mon_store *ms, size_t k)
{
	while (ms->n > k)
		free(ms->e[--ms->n].data);
}

int mon_store_append(struct mon_store *ms, const struct raft_entry *entries, size_t n)
{
	if (!n)
		return 0;
	uint64_t first = entries[0].index;
	if (first <= ms->snap_index || first > ms->snap_index + ms->n + 1)
		return -EINVAL;
	size_t k = (size_t)(first - ms->snap_index - 1);
	if (k < ms->n) {
		/* Raft replaces a conflicting suffix: cut the file there. */
		ms->log_end = ms->offset[k];
		log_drop_from(ms, k);
		if (ftruncate(ms->log_fd, (off_t)ms->log_end) < 0)
			return -errno;
	}
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += record_len(&entries[i]);
	uint8_t *buf = malloc(total);
	if (!buf)
		return -ENOMEM;
	size_t pos = 0;
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		record_encode(&entries[i], buf + pos);
		rc = log_push(ms, &entries[i], ms->log_end + pos);
		pos += record_len(&entries[i]);
	}
	if (!rc)
		rc = write_full(ms->log_fd, buf, total, ms->log_end);
	free(buf);
	if (rc)
		return rc;
	ms->log_end += total;
	ms->dirty_log = true;
	return 0;
}

/* Reads the log, keeping whole valid records from SNAP_INDEX + 1 on; a
 * torn or garbled tail is cut off. */
static int log_load(struct mon_store *ms, char *why, size_t why_len)
{
	struct stat st;
	if (fstat(ms->log_fd, &st) < 0)
		return -errno;
	uint8_t *buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf)
		return -ENOMEM;
	ssize_t got = pread(ms->log_fd, buf, (size_t)st.st_size, 0);
	if (got != st.st_size) {
		free(buf);
		return why_set(why, why_len, -EIO, "%s/log: short read", ms->dir);
	}
	uint64_t pos = 0, size = (uint64_t)st.st_size;
	int rc = 0;
	while (size - pos >= LOG_HEADER + 4 && !rc) {
		const uint8_t *p = buf + pos;
		uint32_t len = le_load32(p + 24);
		if (le_load32(p) != LOG_MAGIC || len > RAFT_MAX_ENTRY_LEN ||
		    size - pos < LOG_HEADER + (uint64_t)len + 4 ||
		    le_load32(p + LOG_HEADER + len) != crc32c(0, p, LOG_HEADER + len))
			break; /* the torn tail */
		struct raft_entry e = { le_load64(p + 16), le_load64(p + 8),
					le_load32(p + 4), len, (uint8_t *)p + LOG_HEADER };
		if (e.index > ms->snap_index) {
			if (e.index != ms->snap_index + ms->n + 1) {
				rc = why_set(why, why_len, -EUCLEAN,
					     "%s/log: entry %llu follows %llu", ms->dir,
					     (unsigned long long)e.index,
					     (unsigned long long)(ms->snap_index + ms->n));
				break;
			}
			rc = log_push(ms, &e, pos);
		}
		pos += record_len(&e);
	}
	free(buf);
	if (rc)
		return rc;
	ms->log_end = pos;
	if (pos < size && ftruncate(ms->log_fd, (off_t)pos) < 0)
		return -errno;
	return 0;
}

/* --- snapshots ------------------------------------------------------------------ */

static int snap_load(struct mon_store *ms, char *why, size_t why_len)
{
	char *path = path_join(ms->dir, "snapshot");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	struct stat st;
	int rc = fstat(fd, &st) < 0 ? -errno : 0;
	uint8_t *buf = NULL;
	if (!rc && (st.st_size < 36 || !(buf = malloc((size_t)st.st_size))))
		rc = st.st_size < 36 ? -EUCLEAN : -ENOMEM;
	if (!rc && pread(fd, buf, (size_t)st.st_size, 0) != st.st_size)
		rc = -EIO;
	close(fd);
	size_t size = (size_t)st.st_size;
	if (!rc && (le_load64(buf) != SNAP_MAGIC || le_load64(buf + 24) != size - 36 ||
		    le_load32(buf + size - 4) != crc32c(0, buf, size - 4)))
		rc = -EUCLEAN;
	if (rc) {
		free(buf);
		return why_set(why, why_len, rc, "%s/snapshot is unreadable or corrupt",
			       ms->dir);
	}
	ms->snap_index = le_load64(buf + 8);
	ms->snap_term = le_load64(buf + 16);
	ms->snap_len = size - 36;
	ms->snap = malloc(ms->snap_len ? ms->snap_len : 1);
	if (ms->snap_len)
		memcpy(ms->snap, buf + 32, ms->snap_len);
	free(buf);
	return 0;
}

/* Writes NAME.tmp with BUF, syncs, renames to NAME, syncs the directory. */
static int replace_file(struct mon_store *ms, const char *name, const uint8_t *buf,
			size_t len, int *fd_out)
{
	char tmpname[64];
	snprintf(tmpname, sizeof(tmpname), "%s.tmp", name);
	char *tmp = path_join(ms->dir, tmpname), *final = path_join(ms->dir, name);
	int rc = -ENOMEM, fd = -1;
	if (tmp && final) {
		fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		rc = fd < 0 ? -errno : write_full(fd, buf, len, 0);
		if (!rc && fdatasync(fd) < 0)
			rc = -errno;
		if (!rc && rename(tmp, final) < 0)
			rc = -errno;
		if (!rc)
			rc = sync_dir(ms->dir);
	}
	if (fd >= 0 && (rc || !fd_out))
		close(fd);
	else if (fd_out)
		*fd_out = fd;
	free(tmp);
	free(final);
	return rc;
}

int mon_store_save_snapshot(struct mon_store *ms, uint64_t index, uint64_t term,
			    const uint8_t *data, size_t len, bool keep_tail)
{
	size_t size = 36 + len;
	uint8_t *buf = malloc(size);
	if (!buf)
		return -ENOMEM;
	le_store64(buf, SNAP_MAGIC);
	le_store64(buf + 8, index);
	le_store64(buf + 16, term);
	le_store64(buf + 24, len);
	if (len)
		memcpy(buf + 32, data, len);
	le_store32(buf + size - 4, crc32c(0, buf, size - 4));
	int rc = replace_file(ms, "snapshot", buf, size, NULL);
	free(buf);
	if (rc)
		return rc;
	/* Keep only what follows the snapshot, in a rewritten log. */
	size_t keep_from = 0;
	while (keep_from < ms->n && (!keep_tail || ms->e[keep_from].index <= index))
		free(ms->e[keep_from++].data);
	size_t left = ms->n - keep_from, total = 0;
	for (size_t i = keep_from; i < ms->n; i++)
		total += record_len(&ms->e[i]);
	uint8_t *log = malloc(total ? total : 1);
	if (!log)
		return -ENOMEM;
	uint64_t pos = 0;
	for (size_t i = 0; i < left; i++) {
		ms->e[i] = ms->e[keep_from + i];
		record_encode(&ms->e[i], log + pos);
		ms->offset[i] = pos;
		pos += record_len(&ms->e[i]);
	}
	ms->n = left;
	int fd;
	rc = replace_file(ms, "log", log, total, &fd);
	free(log);
	if (rc)
		return rc;
	close(ms->log_fd);
	ms->log_fd = fd;
	ms->log_end = total;
	free(ms->snap);
	ms->snap = malloc(len ? len : 1);
	if (len)
		memcpy(ms->snap, data, len);
	ms->snap_len = len;
	ms->snap_index = index;
	ms->snap_term = term;
	return 0;
}

/* --- life cycle ------------------------------------------------------------------- */

int mon_store_sync(struct mon_store *ms)
{
	if (ms->dirty_log && fdatasync(ms->log_fd) < 0)
		return -errno;
	if (ms->dirty_meta && fdatasync(ms->meta_fd) < 0)
		return -errno;
	ms->dirty_log = ms->dirty_meta = false;
	return 0;
}

int mon_store_create(const char *dir, char *why, size_t why_len)
{
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return why_set(why, why_len, -errno, "cannot create %s: %s", dir,
			       strerror(errno));
	char *meta = path_join(dir, "meta"), *log = path_join(dir, "log");
	int rc = 0;
	int fd = open(meta, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = why_set(why, why_len, -errno,
			     errno == EEXIST ? "%s already holds a monitor store"
					     : "cannot create %s/meta",
			     dir);
	} else {
		uint8_t buf[2 * META_SLOT];
		meta_encode(buf, 1, 0, RAFT_NO_VOTE);
		memset(buf + META_SLOT, 0, META_SLOT);
		rc = write_full(fd, buf, sizeof(buf), 0);
		if (!rc && fsync(fd) < 0)
			rc = -errno;
		close(fd);
		fd = open(log, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || fsync(fd) < 0)
			rc = -errno;
		if (fd >= 0)
			close(fd);
		if (!rc)
			rc = sync_dir(dir);
		if (rc)
			why_set(why, why_len, rc, "cannot write %s: %s", dir, strerror(-rc));
	}
	free(meta);
	free(log);
	return rc;
}

int mon_store_open(const char *dir, struct mon_store **out, struct raft_boot *boot,
		   char *why, size_t why_len)
{
	struct mon_store *ms = calloc(1, sizeof(*ms));
	if (!ms || !(ms->dir = strdup(dir))) {
		free(ms);
		return -ENOMEM;
	}
	ms->meta_fd = ms->log_fd = -1;
	char *meta = path_join(dir, "meta"), *log = path_join(dir, "log");
	int rc = 0;
	ms->meta_fd = open(meta, O_RDWR | O_CLOEXEC);
	ms->log_fd = open(log, O_RDWR | O_CLOEXEC);
	free(meta);
	free(log);
	if (ms->meta_fd < 0 || ms->log_fd < 0) {
		rc = why_set(why, why_len, -ENOENT,
			     "%s is not a monitor store (run basalt-mon --mkfs)", dir);
		goto fail;
	}
	uint8_t buf[2 * META_SLOT];
	uint64_t ga = 0, gb = 0, ta, tb;
	int va, vb;
	if (pread(ms->meta_fd, buf, sizeof(buf), 0) != (ssize_t)sizeof(buf)) {
		rc = why_set(why, why_len, -EUCLEAN, "%s/meta is truncated", dir);
		goto fail;
	}
	bool a = meta_decode(buf, &ga, &ta, &va), b = meta_decode(buf + META_SLOT, &gb, &tb, &vb);
	if (!a && !b) {
		rc = why_set(why, why_len, -EUCLEAN, "%s/meta: both slots are corrupt", dir);
		goto fail;
	}
	bool use_b = b && (!a || gb > ga);
	ms->meta_gen = use_b ? gb : ga;
	ms->term = use_b ? tb : ta;
	ms->vote = use_b ? vb : va;
	if ((rc = snap_load(ms, why, why_len)) || (rc = log_load(ms, why, why_len)))
		goto fail;
	*boot = (struct raft_boot){ .term = ms->term, .vote = ms->vote,
				    .snap_index = ms->snap_index, .snap_term = ms->snap_term,
				    .snap_data = ms->snap, .snap_len = ms->snap_len,
				    .entries = ms->e, .n_entries = ms->n };
	*out = ms;
	return 0;
fail:
	mon_store_close(ms);
	return rc;
}

void mon_store_close(struct mon_store *ms)
{
	if (!ms)
		return;
	if (ms->meta_fd >= 0)
		close(ms->meta_fd);
	if (ms->log_fd >= 0)
		close(ms->log_fd);
	log_drop_from(ms, 0);
	free(ms->e);
	free(ms->offset);
	free(ms->snap);
	free(ms->dir);
	free(ms);
}

uint64_t mon_store_log_bytes(const struct mon_store *ms)
{
	return ms->log_end;
}
