/* basalt-fuse's filesystem (see fuse_fs.h).
 *
 * Node ids: 1 the root, 2 volumes/, 3 snapshots/, INO_BASE + the
 * volume's inode for each volume file, and INO_SNAP | inode << 20 |
 * snapshot id for each snapshot file (ids are below 2^20, object.h).
 * The volume requests need 512-byte-aligned ranges; a file takes any:
 * an unaligned read reads the covering sectors, an unaligned write reads
 * them, patches and writes them back. Such a write runs alone on its
 * volume (writes of whole sectors wait for it, and it for them), so that
 * two writes sharing a sector never undo each other; fallocate does the
 * same. */
#include "fuse_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/list.h"
#include "common/log.h"
#include "fuse_usage.h"

#define INO_ROOT 1
#define INO_VOLUMES 2
#define INO_SNAPSHOTS 3
#define INO_BASE 16
#define INO_SNAP (1ULL << 63)
#define INO_SNAP_ID_BITS 20 /* OBJECT_SNAP_MAX fits */
#define SECTOR 512u
#define TIMEOUT_S 1.0
#define PIECE_MAX (1u << 30) /* a fallocate runs in pieces of at most this */
#define USAGE_MAX_AGE_MS 10000 /* st_blocks: list the pools again after this */

/* A volume with open files. */
struct fvol {
	struct list_node link;
	struct fuse_fs *fs;
	uint64_t inode;
	uint32_t snap;		     /* OBJECT_SNAP_HEAD, or a snapshot's id */
	char name[2 * MAP_NAME_MAX]; /* as opened (VOL@SNAP) and locked */
	struct bs_volume *v;
	unsigned opens, writers, running; /* running: jobs using v */
	bool locking;
	struct list_node lock_wait; /* struct job: writable opens */
	/* The write gate (see the top). */
	unsigned writes;	    /* whole-sector writes running */
	bool exclusive;		    /* an unaligned write or fallocate runs */
	struct list_node gate_wait; /* struct job */
};

struct fhandle {
	struct fvol *fv;
	bool writer;
};

enum job_type {
	J_LOOKUP, J_GETATTR, J_SETATTR, J_READDIR, J_OPEN, J_RELEASE, J_READ, J_WRITE,
	J_FSYNC, J_FALLOCATE, J_LSEEK, J_REFUSE, J_TYPES
};
static const char *const job_type_names[J_TYPES] = {
	"lookup", "getattr", "setattr", "readdir", "open", "release", "read", "write",
	"fsync", "fallocate", "lseek", "refused",
};

/* The basalt_fuse_* series, by job type. */
struct fuse_fs_metrics {
	struct metrics_registry *own; /* when the params gave none */
	struct metrics_series *ops[J_TYPES], *errors[J_TYPES], *latency[J_TYPES];
	struct metrics_series *read_bytes, *written_bytes;
};

struct fuse_fs {
	struct io_loop *loop;
	struct bs_client *c;
	struct fuse_fs_params p;
	struct list_node vols; /* struct fvol: volumes with open files */
	struct fuse_usage *usage; /* bytes written per volume (NULL: unknown) */
	struct timespec mounted;
	atomic_uint busy;
	struct fuse_fs_metrics m;
};

struct job {
	struct io_post post;
	struct fuse_fs *fs;
	fuse_req_t req;
	enum job_type type;
	fuse_ino_t ino;
	struct fhandle *fh;
	struct fuse_file_info fi;
	uint64_t off, len; /* READ, WRITE, FALLOCATE, LSEEK; READDIR: size */
	int mode;	   /* FALLOCATE; LSEEK: whence; SETATTR: to_set */
	struct stat attr;  /* SETATTR */
	char name[256];	   /* LOOKUP */
	uint8_t *data;	   /* WRITE: the caller's bytes */
	uint64_t start_ns; /* when the loop took it */
	int err;	   /* the errno it was answered with, or 0 */
	/* Running. */
	struct list_node link;
	struct fvol *fv;
	struct bs_vio vio;
	uint8_t *buf;	      /* aligned: read data, or the sectors to patch */
	uint64_t a_off;	      /* the aligned range being worked on */
	uint32_t a_len;
	uint64_t step, steps; /* FALLOCATE pieces; LSEEK: the object batch */
	int stage;
};

/* J's answer was sent: counted, with its time since the loop took it. */
static void job_free(struct job *j)
{
	struct fuse_fs *fs = j->fs;
	uint64_t now = io_now_ns(fs->loop);
	metrics_counter_add(fs->m.ops[j->type], 1);
	metrics_histogram_observe_ns(fs->m.latency[j->type], now > j->start_ns ? now - j->start_ns : 0);
	if (j->err)
		metrics_counter_add(fs->m.errors[j->type], 1);
	free(j->data);
	free(j->buf);
	free(j);
	atomic_fetch_sub(&fs->busy, 1);
}

static int user_errno(int rc)
{
	return rc == -ESHUTDOWN || rc == -ECANCELED ? EIO : -rc;
}

static void job_reply_err(struct job *j, int err)
{
	j->err = err;
	fuse_reply_err(j->req, err);
}

static void reply_err(struct job *j, int err)
{
	job_reply_err(j, err);
	job_free(j);
}

/* --- the map ---------------------------------------------------------------- */

static const struct map_volume *volume_of(struct fuse_fs *fs, fuse_ino_t ino)
{
	if (ino < INO_BASE || ino & INO_SNAP)
		return NULL;
	const struct map_volume *v = map_volume_by_inode(bs_client_map(fs->c), ino - INO_BASE);
	if (v && fs->p.only && strcmp(v->name, fs->p.only))
		return NULL;
	return v;
}

static const struct map_volume *volume_named(struct fuse_fs *fs, const char *name)
{
	if (fs->p.only && strcmp(name, fs->p.only))
		return NULL;
	return map_volume_by_name(bs_client_map(fs->c), name);
}

/* A snapshot's node id; 0 when the volume's inode is too large for one
 * (2^43 volumes: never in practice). */
static fuse_ino_t snap_ino(const struct map_volume *v, const struct map_snap *s)
{
	if (v->inode >= 1ULL << (63 - INO_SNAP_ID_BITS))
		return 0;
	return INO_SNAP | v->inode << INO_SNAP_ID_BITS | s->id;
}

/* The snapshot INO names, as long as it exists; *V its volume. */
static const struct map_snap *snap_of(struct fuse_fs *fs, fuse_ino_t ino,
				      const struct map_volume **v)
{
	if (!(ino & INO_SNAP))
		return NULL;
	*v = volume_of(fs, INO_BASE + ((ino & ~INO_SNAP) >> INO_SNAP_ID_BITS));
	return *v ? map_snap_by_id(*v, (uint32_t)(ino & ((1u << INO_SNAP_ID_BITS) - 1))) : NULL;
}

/* The snapshot file NAME ("VOL@SNAP") of snapshots/, or NULL. */
static const struct map_snap *snap_named(struct fuse_fs *fs, const char *name,
					 const struct map_volume **v)
{
	const char *at = strrchr(name, '@');
	char base[MAP_NAME_MAX];
	if (!at || (size_t)(at - name) >= sizeof(base))
		return NULL;
	memcpy(base, name, (size_t)(at - name));
	base[at - name] = 0;
	*v = volume_named(fs, base);
	return *v ? map_snap_by_name(*v, at + 1) : NULL;
}

static void fill_attr(struct fuse_fs *fs, fuse_ino_t ino, const struct map_volume *v,
		      struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = fs->p.uid;
	st->st_gid = fs->p.gid;
	st->st_atim = st->st_mtim = st->st_ctim = fs->mounted;
	if (!v) {
		st->st_mode = S_IFDIR | (0777 & ~fs->p.umask);
		st->st_nlink = 2;
		return;
	}
	st->st_mode = S_IFREG | ((fs->p.read_only ? 0444 : 0666) & ~fs->p.umask);
	st->st_nlink = 1;
	st->st_size = (off_t)v->size;
	/* What the volume's objects hold (du), as of the last listing; the
	 * full size until one has counted it. */
	uint64_t used = v->size;
	if (fs->usage) {
		fuse_usage_refresh(fs->usage, USAGE_MAX_AGE_MS);
		fuse_usage_bytes(fs->usage, v->inode, &used);
	}
	st->st_blocks = (blkcnt_t)((used + 511) / 512);
	st->st_blksize = 4096;
}

/* A snapshot file: read-only, its size when taken. */
static void fill_snap_attr(struct fuse_fs *fs, fuse_ino_t ino, const struct map_volume *v,
			   const struct map_snap *s, struct stat *st)
{
	fill_attr(fs, ino, v, st);
	st->st_mode = S_IFREG | (0444 & ~fs->p.umask);
	st->st_size = (off_t)s->size;
	/* What reading it returns, as of the last listing; its size until
	 * one has counted it. */
	uint64_t used = s->size;
	if (fs->usage)
		fuse_usage_snap_bytes(fs->usage, v->inode, s->id, &used);
	st->st_blocks = (blkcnt_t)((used + 511) / 512);
}

static bool is_dir(fuse_ino_t ino)
{
	return ino == INO_ROOT || ino == INO_VOLUMES || ino == INO_SNAPSHOTS;
}

/* The attributes of INO: 0, or -ENOENT. */
static int attr_of(struct fuse_fs *fs, fuse_ino_t ino, struct stat *st)
{
	const struct map_volume *v = NULL;
	const struct map_snap *s = snap_of(fs, ino, &v);
	if (s) {
		fill_snap_attr(fs, ino, v, s, st);
		return 0;
	}
	if (!is_dir(ino) && !(v = volume_of(fs, ino)))
		return -ENOENT;
	fill_attr(fs, ino, v, st);
	return 0;
}

static void do_lookup(struct job *j)
{
	struct fuse_entry_param e = { .attr_timeout = TIMEOUT_S, .entry_timeout = TIMEOUT_S };
	const struct map_volume *v = NULL;
	const struct map_snap *s = NULL;
	if (j->ino == INO_ROOT && !strcmp(j->name, "volumes"))
		e.ino = INO_VOLUMES;
	else if (j->ino == INO_ROOT && !strcmp(j->name, "snapshots"))
		e.ino = INO_SNAPSHOTS;
	else if (j->ino == INO_VOLUMES && (v = volume_named(j->fs, j->name)))
		e.ino = INO_BASE + v->inode;
	else if (j->ino == INO_SNAPSHOTS && (s = snap_named(j->fs, j->name, &v)))
		e.ino = snap_ino(v, s);
	if (!e.ino) {
		reply_err(j, ENOENT);
		return;
	}
	if (s)
		fill_snap_attr(j->fs, e.ino, v, s, &e.attr);
	else
		fill_attr(j->fs, e.ino, v, &e.attr);
	fuse_reply_entry(j->req, &e);
	job_free(j);
}

static void do_getattr(struct job *j)
{
	struct stat st;
	if (attr_of(j->fs, j->ino, &st)) {
		reply_err(j, ENOENT);
		return;
	}
	fuse_reply_attr(j->req, &st, TIMEOUT_S);
	job_free(j);
}

/* Sizes and owners are the cluster's: a volume is resized with basalt
 * volume resize, never by truncating its file (an O_TRUNC open would
 * otherwise empty a whole disk). Times are accepted and not kept. */
static void do_setattr(struct job *j)
{
	struct stat st;
	if (attr_of(j->fs, j->ino, &st)) {
		reply_err(j, ENOENT);
		return;
	}
	const struct map_volume *v;
	bool snap = snap_of(j->fs, j->ino, &v) != NULL;
	if (snap && j->mode & (FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID |
			       FUSE_SET_ATTR_GID)) {
		reply_err(j, EROFS); /* a snapshot never changes */
		return;
	}
	if (j->mode & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		reply_err(j, EPERM);
		return;
	}
	if (j->mode & FUSE_SET_ATTR_SIZE && j->attr.st_size != st.st_size) {
		LOG_INFO("refused to truncate %s to %lld bytes: a volume's size changes with "
			 "basalt volume resize", S_ISREG(st.st_mode) ? "a volume" : "a directory",
			 (long long)j->attr.st_size);
		reply_err(j, S_ISREG(st.st_mode) ? EPERM : EISDIR);
		return;
	}
	fuse_reply_attr(j->req, &st, TIMEOUT_S);
	job_free(j);
}

/* A directory listing being filled: entries at offsets below FROM are
 * skipped, and it stops when the kernel's buffer is full. */
struct dir_fill {
	fuse_req_t req;
	char *buf;
	size_t cap, used;
	uint64_t from;
	bool full;
};

/* Adds entry OFF (the kernel asks again from OFF + 1). */
static void dir_add(struct dir_fill *d, uint64_t off, const char *name, fuse_ino_t ino,
		    mode_t mode)
{
	if (off < d->from || d->full)
		return;
	struct stat st = { .st_ino = ino, .st_mode = mode };
	size_t need = fuse_add_direntry(d->req, NULL, 0, name, NULL, 0);
	if (d->used + need > d->cap) {
		d->full = true;
		return;
	}
	fuse_add_direntry(d->req, d->buf + d->used, d->cap - d->used, name, &st, (off_t)off + 1);
	d->used += need;
}

/* snapshots/: VOL@SNAP for every snapshot of every volume shown, from
 * offset 2 on, in the map's order. */
static void dir_snapshots(struct fuse_fs *fs, struct dir_fill *d)
{
	const struct cluster_map *m = bs_client_map(fs->c);
	uint64_t off = 2;
	for (uint32_t i = 0; i < m->n_volumes && !d->full; i++) {
		const struct map_volume *v = &m->volumes[i];
		if (fs->p.only && strcmp(v->name, fs->p.only))
			continue;
		for (uint32_t k = 0; k < v->n_snaps && !d->full; k++) {
			char name[2 * MAP_NAME_MAX];
			fuse_ino_t ino = snap_ino(v, &v->snaps[k]);
			snprintf(name, sizeof(name), "%s@%s", v->name, v->snaps[k].name);
			if (ino)
				dir_add(d, off++, name, ino, S_IFREG);
		}
	}
}

static void do_readdir(struct job *j)
{
	struct fuse_fs *fs = j->fs;
	if (!is_dir(j->ino)) {
		reply_err(j, ENOTDIR);
		return;
	}
	struct dir_fill d = { .req = j->req, .cap = j->len, .from = j->off };
	if (!(d.buf = malloc(d.cap ? d.cap : 1))) {
		reply_err(j, ENOMEM);
		return;
	}
	dir_add(&d, 0, ".", j->ino, S_IFDIR);
	dir_add(&d, 1, "..", INO_ROOT, S_IFDIR);
	const struct cluster_map *m = bs_client_map(fs->c);
	if (j->ino == INO_ROOT) {
		dir_add(&d, 2, "volumes", INO_VOLUMES, S_IFDIR);
		dir_add(&d, 3, "snapshots", INO_SNAPSHOTS, S_IFDIR);
	} else if (j->ino == INO_SNAPSHOTS) {
		dir_snapshots(fs, &d);
	} else {
		/* Offsets: 2 + the volume's place in the map. */
		for (uint32_t i = 0; i < m->n_volumes && !d.full; i++) {
			const struct map_volume *v = &m->volumes[i];
			if (!fs->p.only || !strcmp(v->name, fs->p.only))
				dir_add(&d, 2 + (uint64_t)i, v->name, INO_BASE + v->inode, S_IFREG);
		}
	}
	fuse_reply_buf(j->req, d.buf, d.used);
	free(d.buf);
	job_free(j);
}

/* --- open and release --------------------------------------------------------- */

static struct fvol *fvol_find(struct fuse_fs *fs, uint64_t inode, uint32_t snap)
{
	struct list_node *pos;
	list_for_each(pos, &fs->vols) {
		struct fvol *fv = list_entry(pos, struct fvol, link);
		if (fv->inode == inode && fv->snap == snap)
			return fv;
	}
	return NULL;
}

static void fvol_maybe_free(struct fvol *fv)
{
	if (fv->opens || fv->running || fv->locking)
		return;
	bs_volume_close(fv->v);
	list_del(&fv->link);
	free(fv);
}

static void reply_open(struct job *j, bool writer)
{
	struct fhandle *h = malloc(sizeof(*h));
	if (!h) {
		j->fv->opens--;
		fvol_maybe_free(j->fv);
		reply_err(j, ENOMEM);
		return;
	}
	h->fv = j->fv;
	h->writer = writer;
	j->fv->writers += writer;
	j->fi.fh = (uint64_t)(uintptr_t)h;
	j->fi.direct_io = 1;
	j->fi.keep_cache = 0;
	/* Every write was durable when answered: a close has nothing to wait
	 * for, so the kernel need not ask (a process closing a file of a
	 * frozen client would otherwise hang in close). */
	j->fi.noflush = 1;
	if (fuse_reply_open(j->req, &j->fi)) { /* interrupted: no release will come */
		j->fv->writers -= writer;
		j->fv->opens--;
		free(h);
		fvol_maybe_free(j->fv);
	}
	job_free(j);
}

static void lock_done(void *ctx, int rc, const char *why)
{
	struct fvol *fv = ctx;
	fv->locking = false;
	if (rc)
		LOG_WARN("cannot open volume %s for writing: %s%s", fv->name, why,
			 rc == -EBUSY ? " (basalt-fuse --break-lock, or basalt volume unlock "
					"--force, takes it over)"
				      : "");
	else if (list_empty(&fv->lock_wait))
		bs_unlock(fv->fs->c, fv->name); /* nobody waits any more */
	while (!list_empty(&fv->lock_wait)) {
		struct job *j = list_entry(list_first(&fv->lock_wait), struct job, link);
		list_del(&j->link);
		if (!rc) {
			reply_open(j, true);
		} else {
			fv->opens--;
			job_reply_err(j, rc == -EBUSY || rc == -EACCES ? -rc : user_errno(rc));
			job_free(j);
		}
	}
	fvol_maybe_free(fv);
}

/* The open volume (S NULL) or snapshot S of V, opened now if no file of
 * it is open: 0, or -errno. */
static int fvol_get(struct fuse_fs *fs, const struct map_volume *v, const struct map_snap *s,
		    struct fvol **out)
{
	uint32_t snap = s ? s->id : OBJECT_SNAP_HEAD;
	struct fvol *fv = fvol_find(fs, v->inode, snap);
	if (fv) {
		*out = fv;
		return 0;
	}
	if (!(fv = calloc(1, sizeof(*fv))))
		return -ENOMEM;
	if (s)
		snprintf(fv->name, sizeof(fv->name), "%s@%s", v->name, s->name);
	else
		snprintf(fv->name, sizeof(fv->name), "%s", v->name);
	/* A snapshot is opened read-only: its objects never change. */
	int rc = bs_volume_open(fs->c, fv->name, fs->p.read_only || s, &fv->v);
	if (rc) {
		free(fv);
		return rc;
	}
	fv->fs = fs;
	fv->inode = v->inode;
	fv->snap = snap;
	list_init(&fv->lock_wait);
	list_init(&fv->gate_wait);
	list_add_tail(&fs->vols, &fv->link);
	*out = fv;
	return 0;
}

static void do_open(struct job *j)
{
	struct fuse_fs *fs = j->fs;
	const struct map_volume *v = NULL;
	const struct map_snap *s = snap_of(fs, j->ino, &v);
	if (!s && !(v = volume_of(fs, j->ino))) {
		reply_err(j, is_dir(j->ino) ? EISDIR : ENOENT);
		return;
	}
	bool writer = (j->fi.flags & O_ACCMODE) != O_RDONLY;
	if (writer && (fs->p.read_only || s)) {
		if (s)
			LOG_DEBUG("refused to open snapshot %s@%s for writing: snapshots are "
				  "read-only", v->name, s->name);
		reply_err(j, EROFS);
		return;
	}
	struct fvol *fv;
	int rc = fvol_get(fs, v, s, &fv);
	if (rc) {
		reply_err(j, -rc);
		return;
	}
	fv->opens++;
	j->fv = fv;
	if (!writer) {
		reply_open(j, false);
		return;
	}
	if (fv->writers && !fv->locking && bs_holds_lock(fs->c, fv->name)) {
		reply_open(j, true);
		return;
	}
	list_add_tail(&fv->lock_wait, &j->link);
	if (!fv->locking) {
		fv->locking = true;
		bs_lock(fs->c, fv->name, fs->p.break_lock, lock_done, fv);
	}
}

static void do_release(struct job *j)
{
	struct fhandle *h = j->fh;
	struct fvol *fv = h->fv;
	if (h->writer && !--fv->writers) {
		LOG_INFO("volume %s: last writer closed, releasing its lock", fv->name);
		bs_unlock(j->fs->c, fv->name);
	}
	fv->opens--;
	free(h);
	fvol_maybe_free(fv);
	reply_err(j, 0);
}

/* --- the write gate -------------------------------------------------------------- */

static void job_run(struct job *j);

static bool gate_enter(struct fvol *fv, bool exclusive)
{
	if (fv->exclusive || (exclusive && fv->writes))
		return false;
	if (exclusive)
		fv->exclusive = true;
	else
		fv->writes++;
	return true;
}

static bool job_exclusive(const struct job *j)
{
	return j->type == J_FALLOCATE || j->off % SECTOR || j->len % SECTOR;
}

/* J may start now, or waits its turn (in order). */
static bool gate_admit(struct job *j)
{
	struct fvol *fv = j->fv;
	if (list_empty(&fv->gate_wait) && gate_enter(fv, job_exclusive(j)))
		return true;
	list_add_tail(&fv->gate_wait, &j->link);
	return false;
}

static void gate_leave(struct fvol *fv, bool exclusive)
{
	if (exclusive)
		fv->exclusive = false;
	else
		fv->writes--;
	while (!list_empty(&fv->gate_wait)) {
		struct job *j = list_entry(list_first(&fv->gate_wait), struct job, link);
		if (!gate_enter(fv, job_exclusive(j)))
			break;
		list_del(&j->link);
		job_run(j);
	}
}

/* --- reads and writes ------------------------------------------------------------- */

static void job_end(struct job *j)
{
	struct fvol *fv = j->fv;
	fv->running--;
	job_free(j);
	fvol_maybe_free(fv);
}

static void vio_start(struct job *j, enum bs_vio_type type, uint64_t off, uint32_t len,
		      void *buf, bs_vio_done_fn done)
{
	memset(&j->vio, 0, sizeof(j->vio));
	j->vio.type = type;
	j->vio.offset = off;
	j->vio.len = len;
	j->vio.buf = buf;
	j->vio.done = done;
	j->vio.ctx = j;
	bs_volume_submit(j->fv->v, &j->vio);
}

/* Sets the sector-aligned range around [OFF, OFF + LEN) and a buffer for it. */
static int align_range(struct job *j, uint64_t off, uint64_t len)
{
	j->a_off = off / SECTOR * SECTOR;
	j->a_len = (uint32_t)((off + len + SECTOR - 1) / SECTOR * SECTOR - j->a_off);
	free(j->buf);
	j->buf = NULL;
	return posix_memalign((void **)&j->buf, 4096, j->a_len) ? -ENOMEM : 0;
}

static void read_done(struct bs_vio *vio, int rc)
{
	struct job *j = vio->ctx;
	if (rc)
		job_reply_err(j, user_errno(rc));
	else
		fuse_reply_buf(j->req, (char *)j->buf + (j->off - j->a_off), j->len);
	if (!rc)
		metrics_counter_add(j->fs->m.read_bytes, j->len);
	job_end(j);
}

static void start_read(struct job *j)
{
	uint64_t size = bs_volume_size(j->fv->v);
	if (j->off >= size || !j->len) {
		fuse_reply_buf(j->req, NULL, 0);
		job_end(j);
		return;
	}
	if (j->len > size - j->off)
		j->len = size - j->off;
	if (align_range(j, j->off, j->len)) {
		job_reply_err(j, ENOMEM);
		job_end(j);
		return;
	}
	vio_start(j, BS_VIO_READ, j->a_off, j->a_len, j->buf, read_done);
}

static void write_done(struct bs_vio *vio, int rc)
{
	struct job *j = vio->ctx;
	if (!rc && j->stage == 0 && j->buf) { /* unaligned: the sectors are read, patch */
		j->stage = 1;
		memcpy(j->buf + (j->off - j->a_off), j->data, j->len);
		vio_start(j, BS_VIO_WRITE, j->a_off, j->a_len, j->buf, write_done);
		return;
	}
	if (rc)
		job_reply_err(j, user_errno(rc));
	else
		fuse_reply_write(j->req, j->len);
	if (!rc)
		metrics_counter_add(j->fs->m.written_bytes, j->len);
	gate_leave(j->fv, job_exclusive(j));
	job_end(j);
}

/* Admitted by the gate. */
static void run_write(struct job *j)
{
	if (!job_exclusive(j)) {
		vio_start(j, BS_VIO_WRITE, j->off, (uint32_t)j->len, j->data, write_done);
		return;
	}
	if (align_range(j, j->off, j->len)) {
		job_reply_err(j, ENOMEM);
		gate_leave(j->fv, true);
		job_end(j);
		return;
	}
	vio_start(j, BS_VIO_READ, j->a_off, j->a_len, j->buf, write_done);
}

static void start_write(struct job *j)
{
	uint64_t size = bs_volume_size(j->fv->v);
	if (!j->len) {
		fuse_reply_write(j->req, 0);
		job_end(j);
		return;
	}
	if (j->off >= size || j->len > size - j->off) {
		/* A volume file does not grow: basalt volume resize does. */
		job_reply_err(j, EFBIG);
		job_end(j);
		return;
	}
	if (gate_admit(j))
		run_write(j);
}

/* --- fallocate: punch holes and zero ranges ----------------------------------------- */

/* Step S of [off, off + len): the unaligned head, aligned pieces of at
 * most PIECE_MAX, the unaligned tail; each sets a_off/a_len and whether
 * it is a read-modify-write of sectors. */
static bool falloc_step(struct job *j, uint64_t s, bool *rmw)
{
	uint64_t end = j->off + j->len;
	uint64_t head_end = (j->off + SECTOR - 1) / SECTOR * SECTOR;
	uint64_t tail_start = end / SECTOR * SECTOR;
	if (head_end > end)
		head_end = end;
	uint64_t at = 0;
	if (j->off % SECTOR) {
		if (s == at++) {
			j->a_off = j->off;
			j->a_len = (uint32_t)(head_end - j->off);
			*rmw = true;
			return true;
		}
	}
	if (tail_start > head_end) {
		uint64_t pieces = (tail_start - head_end + PIECE_MAX - 1) / PIECE_MAX;
		if (s < at + pieces) {
			j->a_off = head_end + (s - at) * PIECE_MAX;
			uint64_t left = tail_start - j->a_off;
			j->a_len = (uint32_t)(left < PIECE_MAX ? left : PIECE_MAX);
			*rmw = false;
			return true;
		}
		at += pieces;
	}
	if (end % SECTOR && tail_start >= head_end && s == at) {
		j->a_off = tail_start;
		j->a_len = (uint32_t)(end - tail_start);
		*rmw = true;
		return true;
	}
	return false;
}

static void falloc_next(struct job *j);

static void falloc_done(struct bs_vio *vio, int rc)
{
	struct job *j = vio->ctx;
	if (!rc && j->stage == 1) { /* RMW: sectors read; zero our part and write */
		j->stage = 2;
		uint64_t sec = vio->offset;
		memset(j->buf + (j->a_off - sec), 0, j->a_len);
		vio_start(j, BS_VIO_WRITE, sec, vio->len, j->buf, falloc_done);
		return;
	}
	if (rc) {
		job_reply_err(j, user_errno(rc));
		gate_leave(j->fv, true);
		job_end(j);
		return;
	}
	j->step++;
	falloc_next(j);
}

static void falloc_next(struct job *j)
{
	bool rmw;
	if (!falloc_step(j, j->step, &rmw)) {
		job_reply_err(j, 0);
		gate_leave(j->fv, true);
		job_end(j);
		return;
	}
	if (!rmw) {
		j->stage = 0;
		vio_start(j, j->mode & FALLOC_FL_PUNCH_HOLE ? BS_VIO_DISCARD : BS_VIO_WRITE_ZEROES,
			  j->a_off, j->a_len, NULL, falloc_done);
		return;
	}
	j->stage = 1;
	uint64_t sec = j->a_off / SECTOR * SECTOR;
	if (!j->buf && posix_memalign((void **)&j->buf, 4096, SECTOR)) {
		job_reply_err(j, ENOMEM);
		gate_leave(j->fv, true);
		job_end(j);
		return;
	}
	vio_start(j, BS_VIO_READ, sec, SECTOR, j->buf, falloc_done);
}

static void start_fallocate(struct job *j)
{
	const int known = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE;
	uint64_t size = bs_volume_size(j->fv->v);
	LOG_DEBUG("volume %s: fallocate mode 0x%x at %" PRIu64 " +%" PRIu64, j->fv->name, j->mode,
		  j->off, j->len);
	int err = 0;
	if (j->mode & ~known || (j->mode & FALLOC_FL_PUNCH_HOLE && j->mode & FALLOC_FL_ZERO_RANGE))
		err = EOPNOTSUPP;
	else if (j->len > UINT64_MAX - j->off)
		err = EINVAL;
	else if (j->off + j->len > size && !(j->mode & FALLOC_FL_KEEP_SIZE))
		err = EFBIG; /* the file would grow: a volume does not */
	else if (!(j->mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)))
		err = 0; /* allocate: a thin volume reserves nothing; nothing to do */
	else if (j->off >= size)
		err = 0;
	else
		err = -1;
	if (err >= 0) {
		job_reply_err(j, err);
		job_end(j);
		return;
	}
	if (j->len > size - j->off)
		j->len = size - j->off;
	j->step = 0;
	if (gate_admit(j))
		falloc_next(j);
}

/* --- fsync and lseek ------------------------------------------------------------------- */

static void fsync_done(struct bs_vio *vio, int rc)
{
	struct job *j = vio->ctx;
	job_reply_err(j, rc ? user_errno(rc) : 0);
	job_end(j);
}

/* SEEK_DATA / SEEK_HOLE, a whole object at a time (BS_VIO_MAP). */
static void lseek_batch(struct job *j);

static void lseek_done(struct bs_vio *vio, int rc)
{
	struct job *j = vio->ctx;
	if (rc) {
		job_reply_err(j, user_errno(rc));
		job_end(j);
		return;
	}
	uint64_t osz = bs_volume_object_size(j->fv->v);
	uint64_t size = bs_volume_size(j->fv->v);
	uint64_t first = vio->offset / osz, n = (vio->offset % osz + vio->len + osz - 1) / osz;
	for (uint64_t i = 0; i < n; i++) {
		if ((j->buf[i] != 0) == (j->mode == SEEK_DATA)) {
			uint64_t at = (first + i) * osz;
			fuse_reply_lseek(j->req, (off_t)(at > j->off ? at : j->off));
			job_end(j);
			return;
		}
	}
	j->step = (first + n) * osz;
	if (j->step >= size) {
		if (j->mode == SEEK_DATA)
			job_reply_err(j, ENXIO);
		else
			fuse_reply_lseek(j->req, (off_t)size);
		job_end(j);
		return;
	}
	lseek_batch(j);
}

static void lseek_batch(struct job *j)
{
	uint64_t osz = bs_volume_object_size(j->fv->v);
	uint64_t size = bs_volume_size(j->fv->v);
	uint64_t batch = 1024;
	if (batch * osz > UINT32_MAX / 2)
		batch = (UINT32_MAX / 2) / osz;
	uint64_t len = batch * osz;
	if (len > size - j->step)
		len = size - j->step;
	vio_start(j, BS_VIO_MAP, j->step, (uint32_t)len, j->buf, lseek_done);
}

static void start_lseek(struct job *j)
{
	uint64_t size = bs_volume_size(j->fv->v);
	if (j->mode != SEEK_DATA && j->mode != SEEK_HOLE) {
		job_reply_err(j, EINVAL);
		job_end(j);
		return;
	}
	if (j->off >= size) {
		job_reply_err(j, ENXIO);
		job_end(j);
		return;
	}
	if (!(j->buf = malloc(1024))) {
		job_reply_err(j, ENOMEM);
		job_end(j);
		return;
	}
	uint64_t osz = bs_volume_object_size(j->fv->v);
	j->step = j->off / osz * osz;
	lseek_batch(j);
}

/* --- dispatch ---------------------------------------------------------------------------- */

static void job_run(struct job *j)
{
	switch (j->type) {
	case J_WRITE: run_write(j); break;
	case J_FALLOCATE: falloc_next(j); break;
	default: break;
	}
}

/* Jobs on an open file: counted on its volume while they run. */
static void do_file_job(struct job *j)
{
	j->fv = j->fh->fv;
	j->fv->running++;
	if ((j->type == J_WRITE || j->type == J_FALLOCATE) && !j->fh->writer) {
		job_reply_err(j, EBADF);
		job_end(j);
		return;
	}
	switch (j->type) {
	case J_READ: start_read(j); break;
	case J_WRITE: start_write(j); break;
	case J_FALLOCATE: start_fallocate(j); break;
	case J_LSEEK: start_lseek(j); break;
	case J_FSYNC: vio_start(j, BS_VIO_FLUSH, 0, 0, NULL, fsync_done); break;
	default: break;
	}
}

static void job_posted(struct io_post *post)
{
	struct job *j = post->ctx;
	j->start_ns = io_now_ns(j->fs->loop);
	switch (j->type) {
	case J_LOOKUP: do_lookup(j); break;
	case J_GETATTR: do_getattr(j); break;
	case J_SETATTR: do_setattr(j); break;
	case J_READDIR: do_readdir(j); break;
	case J_OPEN: do_open(j); break;
	case J_RELEASE: do_release(j); break;
	case J_REFUSE:
		LOG_DEBUG("refused %s: volumes are created, removed and renamed with the basalt "
			  "command", j->name);
		reply_err(j, EPERM);
		break;
	default: do_file_job(j); break;
	}
}

/* On a FUSE worker thread: wrap the request and hand it to the loop. */
static struct job *job_new(fuse_req_t req, enum job_type type, fuse_ino_t ino,
			   struct fuse_file_info *fi)
{
	struct fuse_fs *fs = fuse_req_userdata(req);
	struct job *j = calloc(1, sizeof(*j));
	if (!j) {
		fuse_reply_err(req, ENOMEM);
		return NULL;
	}
	atomic_fetch_add(&fs->busy, 1);
	j->fs = fs;
	j->req = req;
	j->type = type;
	j->ino = ino;
	if (fi) {
		j->fi = *fi;
		j->fh = (struct fhandle *)(uintptr_t)fi->fh;
	}
	list_init(&j->link);
	j->post.fn = job_posted;
	j->post.ctx = j;
	return j;
}

static void post(struct job *j)
{
	if (j)
		io_loop_post(j->fs->loop, &j->post);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct job *j = job_new(req, J_LOOKUP, parent, NULL);
	if (j)
		snprintf(j->name, sizeof(j->name), "%s", name);
	post(j);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	post(job_new(req, J_GETATTR, ino, NULL));
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	(void)fi;
	struct job *j = job_new(req, J_SETATTR, ino, NULL);
	if (j) {
		j->attr = *attr;
		j->mode = to_set;
	}
	post(j);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)fi;
	struct job *j = job_new(req, J_READDIR, ino, NULL);
	if (j) {
		j->len = size;
		j->off = (uint64_t)off;
	}
	post(j);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	post(job_new(req, J_OPEN, ino, fi));
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	post(job_new(req, J_RELEASE, ino, fi));
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct job *j = job_new(req, J_READ, ino, fi);
	if (j) {
		j->off = (uint64_t)off;
		j->len = size;
	}
	post(j);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct job *j = job_new(req, J_WRITE, ino, fi);
	if (!j)
		return;
	j->off = (uint64_t)off;
	j->len = size;
	/* The buffer is libfuse's only until we return. */
	if (size && posix_memalign((void **)&j->data, 4096, size)) {
		fuse_reply_err(req, ENOMEM);
		job_free(j);
		return;
	}
	memcpy(j->data, buf, size);
	post(j);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)datasync;
	post(job_new(req, J_FSYNC, ino, fi));
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	struct job *j = job_new(req, J_FALLOCATE, ino, fi);
	if (j) {
		j->mode = mode;
		j->off = (uint64_t)off;
		j->len = (uint64_t)len;
	}
	post(j);
}

static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	struct job *j = job_new(req, J_LSEEK, ino, fi);
	if (j) {
		j->off = (uint64_t)off;
		j->mode = whence;
	}
	post(j);
}

static void refuse(fuse_req_t req, const char *what)
{
	struct job *j = job_new(req, J_REFUSE, 0, NULL);
	if (j)
		snprintf(j->name, sizeof(j->name), "%s", what);
	post(j);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	(void)parent, (void)name, (void)mode, (void)rdev;
	refuse(req, "mknod");
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	(void)parent, (void)name, (void)mode;
	refuse(req, "mkdir");
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	(void)parent, (void)name;
	refuse(req, "unlink");
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	(void)parent, (void)name;
	refuse(req, "rmdir");
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	(void)link, (void)parent, (void)name;
	refuse(req, "symlink");
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	(void)parent, (void)name, (void)newparent, (void)newname, (void)flags;
	refuse(req, "rename");
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	(void)ino, (void)newparent, (void)newname;
	refuse(req, "link");
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	(void)parent, (void)name, (void)mode, (void)fi;
	refuse(req, "create");
}

/* Big writes and reads, many at once, no writeback cache. */
static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	conn->max_write = 1u << 20;
	conn->max_readahead = 0;
	if (conn->capable & FUSE_CAP_ASYNC_DIO)
		conn->want |= FUSE_CAP_ASYNC_DIO;
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	conn->want &= ~(unsigned)FUSE_CAP_ATOMIC_O_TRUNC;
}

const struct fuse_lowlevel_ops fuse_fs_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readdir = op_readdir,
	.open = op_open,
	.release = op_release,
	.read = op_read,
	.write = op_write,
	.fsync = op_fsync,
	.fallocate = op_fallocate,
	.lseek = op_lseek,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.create = op_create,
};

/* FS's series in the params' registry (or one of its own, so the updates
 * need no test): 0 or -ENOMEM. */
static int metrics_register(struct fuse_fs *fs)
{
	struct metrics_registry *r = fs->p.metrics;
	if (!r && metrics_registry_create(&fs->m.own))
		return -ENOMEM;
	if (!r)
		r = fs->m.own;
	metrics_op_kinds(r, "basalt_fuse_op",
			 "FUSE requests answered, by kind (refused: creating, removing or renaming)",
			 "FUSE requests answered with an error, by kind",
			 "Time from the loop taking a FUSE request to its answer", job_type_names,
			 J_TYPES, fs->m.ops, fs->m.errors, fs->m.latency);
	fs->m.read_bytes = metrics_single(r, METRICS_COUNTER, "basalt_fuse_read_bytes_total",
					  "Bytes read from volume and snapshot files");
	fs->m.written_bytes = metrics_single(r, METRICS_COUNTER, "basalt_fuse_written_bytes_total",
					     "Bytes written to volume files");
	return metrics_registry_error(r);
}

int fuse_fs_create(const struct fuse_fs_params *p, struct fuse_fs **out)
{
	struct fuse_fs *fs = calloc(1, sizeof(*fs));
	if (!fs)
		return -ENOMEM;
	fs->p = *p;
	list_init(&fs->vols);
	clock_gettime(CLOCK_REALTIME, &fs->mounted);
	atomic_init(&fs->busy, 0);
	if (metrics_register(fs)) {
		fuse_fs_destroy(fs);
		return -ENOMEM;
	}
	*out = fs;
	return 0;
}

void fuse_fs_attach(struct fuse_fs *fs, struct io_loop *loop, struct bs_client *client)
{
	fs->loop = loop;
	fs->c = client;
	if (!fuse_usage_create(client, &fs->usage))
		fuse_usage_refresh(fs->usage, 0);
}

unsigned fuse_fs_busy(const struct fuse_fs *fs)
{
	return atomic_load(&((struct fuse_fs *)fs)->busy) +
	       (fs->usage && fuse_usage_busy(fs->usage));
}

void fuse_fs_destroy(struct fuse_fs *fs)
{
	if (!fs)
		return;
	while (!list_empty(&fs->vols)) {
		struct fvol *fv = list_entry(list_first(&fs->vols), struct fvol, link);
		if (fv->writers)
			bs_unlock(fs->c, fv->name);
		bs_volume_close(fv->v);
		list_del(&fv->link);
		free(fv);
	}
	fuse_usage_destroy(fs->usage);
	metrics_registry_free(fs->m.own);
	free(fs);
}
