/* Volumes on libbasalt (see libbasalt.h): a volume of size S is objects
 * 0..S/block_size of its inode in its pool. A request is split at object
 * boundaries into object operations that run in parallel; the parts of a
 * request that are not whole 4 KiB chunks (the OSDs take 4 KiB units) are
 * read, patched and written back, one such read-modify-write at a time
 * per volume so that two never interleave. Unwritten ranges read as
 * zeros; a discard or write of zeros that covers a whole object deletes
 * it (its block is free at once), and zeroes the rest where the object
 * exists (never creating one to hold zeros). With the OSDs'
 * default osd_sync = always, writes are durable on every copy when
 * answered, so a flush has nothing to wait for (with batch it does not
 * wait for the OSDs' batch either: see docs/ARCHITECTURE.md).
 *
 * A clone reads through to its parent snapshot (and that one's parent)
 * where it has no object of its own. A write into part of such an
 * object first copies the parent's in (read, then a create-only write:
 * of two writers doing so at once, the second finds it there and just
 * writes); a discard of a whole one writes zeros when a parent has it
 * (a delete would show the parent again). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/list.h"
#include "libbasalt.h"

#define CHUNK 4096u
#define SECTOR 512u
#define COPIED_MAX_OBJECTS (1ull << 27) /* a 16 MiB bitmap */

struct bs_volume {
	struct bs_client *c;
	char name[MAP_NAME_MAX];
	uint64_t inode;
	uint32_t pool, block_size;
	uint32_t snap; /* a snapshot's view (read-only), or OBJECT_SNAP_HEAD */
	bool read_only;
	/* Where reads look: this volume, then its parents (map_volume_layers). */
	struct map_layer layers[MAP_LAYERS_MAX];
	int n_layers;
	uint64_t layers_epoch; /* the map they were taken from */
	/* A clone's objects below the overlap that need no copy-up any more
	 * (copied in, or no parent has them): one bit each, so a partial
	 * write pays the STAT once per object, not per write. NULL: not a
	 * clone, or more than COPIED_MAX_OBJECTS (then every time). */
	uint8_t *copied;
	uint64_t copied_objects;
	uint8_t *zeros;		    /* an object's worth, for zeroing whole chunks */
	struct list_node rmw_queue; /* struct vpiece waiting for the RMW slot */
	bool rmw_busy;
	struct bs_volume_stats stats;
};

/* One object operation of a request. */
struct vpiece {
	struct bs_op op;
	struct bs_vio *vio;
	struct bs_volume *v;
	uint64_t obj_off; /* offset of the piece within the object */
	uint32_t len;
	uint8_t *user;	  /* where in the caller's buffer */
	uint8_t *bounce;  /* read-modify-write: the covering chunks */
	uint32_t bounce_off, bounce_len;
	int stage;	  /* RMW: 0 reading, 1 writing */
	bool holds_rmw;	  /* has the volume's one RMW slot (rmw_start) */
	int layer;	  /* the layer being read (0: the volume's own objects) */
	uint8_t *copy;	  /* copy-up: the parent's object */
	struct list_node node; /* volume's RMW queue */
};

static struct object_id vol_oid(const struct bs_volume *v, uint64_t index)
{
	return (struct object_id){ v->pool, v->inode, index, v->snap, OBJECT_SHARD_WHOLE };
}

/* The volume and snapshot NAME ("VOLUME" or "VOLUME@SNAP") names in M. */
static int volume_lookup(const struct cluster_map *m, const char *name,
			 const struct map_volume **vol, const struct map_snap **snap)
{
	char base[MAP_NAME_MAX];
	const char *at = strchr(name, '@');
	size_t n = at ? (size_t)(at - name) : strlen(name);
	if (n >= sizeof(base))
		return -ENOENT;
	memcpy(base, name, n);
	base[n] = 0;
	*vol = map_volume_by_name(m, base);
	*snap = *vol && at ? map_snap_by_name(*vol, at + 1) : NULL;
	return !*vol || (at && !*snap) ? -ENOENT : 0;
}

int bs_volume_open(struct bs_client *c, const char *name, bool read_only,
		   struct bs_volume **out)
{
	const struct cluster_map *m = bs_client_map(c);
	const struct map_volume *mv;
	const struct map_snap *ms;
	int rc = volume_lookup(m, name, &mv, &ms);
	if (rc)
		return rc;
	if (ms && !read_only)
		return -EROFS;
	const struct map_pool *p = map_pool_by_id(m, mv->pool);
	if (!p)
		return -ENOENT;
	bool may_write;
	if (!bs_client_may(c, mv->pool, mv->inode, &may_write))
		return -EACCES;
	if (!read_only && !may_write)
		return -EPERM;
	struct bs_volume *v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->c = c;
	snprintf(v->name, sizeof(v->name), "%s", name);
	v->inode = mv->inode;
	v->pool = mv->pool;
	v->snap = ms ? ms->id : OBJECT_SNAP_HEAD;
	v->block_size = p->block_size;
	v->n_layers = map_volume_layers(m, mv, v->snap, v->layers);
	v->layers_epoch = m->epoch;
	if (v->n_layers < 0) { /* a parent missing from the map */
		rc = v->n_layers;
		free(v);
		return rc;
	}
	v->copied_objects = v->n_layers > 1 && !read_only
				    ? (v->layers[1].limit_bytes + v->block_size - 1) / v->block_size
				    : 0;
	if (v->copied_objects > COPIED_MAX_OBJECTS)
		v->copied_objects = 0;
	if (v->copied_objects &&
	    !(v->copied = calloc((size_t)(v->copied_objects + 7) / 8, 1))) {
		free(v);
		return -ENOMEM;
	}
	v->read_only = read_only;
	list_init(&v->rmw_queue);
	if (posix_memalign((void **)&v->zeros, CHUNK, v->block_size)) {
		free(v->copied);
		free(v);
		return -ENOMEM;
	}
	memset(v->zeros, 0, v->block_size);
	*out = v;
	return 0;
}

void bs_volume_close(struct bs_volume *v)
{
	if (v) {
		free(v->zeros);
		free(v->copied);
	}
	free(v);
}

uint64_t bs_volume_size(const struct bs_volume *v)
{
	const struct map_volume *mv;
	const struct map_snap *ms;
	if (volume_lookup(bs_client_map(v->c), v->name, &mv, &ms) || mv->inode != v->inode)
		return 0;
	return ms ? (ms->id == v->snap ? ms->size : 0) : mv->size;
}

uint32_t bs_volume_object_size(const struct bs_volume *v)
{
	return v->block_size;
}

void bs_volume_stats(const struct bs_volume *v, struct bs_volume_stats *out)
{
	*out = v->stats;
}

static void vio_piece_done(struct bs_vio *vio, int rc)
{
	if (rc && !vio->rc)
		vio->rc = rc;
	if (--vio->pending == 0)
		vio->done(vio, vio->rc);
}

static void rmw_next(struct bs_volume *v);

static void piece_finish(struct vpiece *pc, int rc)
{
	struct bs_vio *vio = pc->vio;
	struct bs_volume *v = pc->v;
	/* Not "has a bounce buffer": an unaligned read has one too, and
	 * must not hand on a slot another piece holds. */
	bool rmw = pc->holds_rmw;
	free(pc->bounce);
	free(pc->copy);
	free(pc);
	if (rmw) {
		v->rmw_busy = false;
		rmw_next(v);
	}
	vio_piece_done(vio, rc);
}

/* --- layers: reading through to a clone's parents --------------------------- */

/* Takes the volume's layers again from the client's map: a flatten may
 * have dropped the parent since the volume was opened (and the parent's
 * snapshot may be gone with it). */
static void layers_refresh(struct bs_volume *v)
{
	const struct cluster_map *m = bs_client_map(v->c);
	if (m->epoch == v->layers_epoch)
		return;
	v->layers_epoch = m->epoch;
	const struct map_volume *mv = map_volume_by_inode(m, v->layers[0].inode);
	struct map_layer layers[MAP_LAYERS_MAX];
	int n = mv ? map_volume_layers(m, mv, v->snap, layers) : -ENOENT;
	if (n > 0) {
		memcpy(v->layers, layers, (size_t)n * sizeof(layers[0]));
		v->n_layers = n;
	}
}

/* The layer after PC->layer that object INDEX reads from, or -1. */
static int layer_next(struct vpiece *pc, uint64_t index)
{
	struct bs_volume *v = pc->v;
	if (pc->layer == 0 && v->n_layers > 1)
		layers_refresh(v);
	int k = pc->layer + 1;
	if (k >= v->n_layers || index * v->block_size >= v->layers[k].limit_bytes)
		return -1;
	return k;
}

static struct object_id layer_oid(const struct bs_volume *v, int k, uint64_t index)
{
	const struct map_layer *l = &v->layers[k];
	return (struct object_id){ l->pool, l->inode, index, l->snap, OBJECT_SHARD_WHOLE };
}

/* Zeros over the part of BUF (bytes OFFSET..+LEN of object INDEX, read
 * from layer K) past that layer's end: the parent held it, the clone
 * never saw it. */
static void layer_clip(const struct bs_volume *v, int k, uint64_t index, uint32_t offset,
		       uint32_t len, uint8_t *buf)
{
	uint64_t at = index * v->block_size + offset, limit = v->layers[k].limit_bytes;
	if (k == 0 || at + len <= limit)
		return;
	uint64_t from = limit > at ? limit - at : 0;
	memset(buf + from, 0, len - from);
}

/* A read of the volume's object found nothing: read the next layer's
 * instead. False when no layer has it (zeros). */
static bool read_through(struct vpiece *pc)
{
	struct bs_op *op = &pc->op;
	int k = layer_next(pc, op->oid.index);
	if (k < 0)
		return false;
	pc->layer = k;
	*op = (struct bs_op){ .type = op->type, .oid = layer_oid(pc->v, k, op->oid.index),
			      .offset = op->offset, .len = op->len, .buf = op->buf,
			      .done = op->done, .ctx = pc };
	bs_submit(pc->v->c, op);
	return true;
}

static void piece_read_done(struct bs_op *op, int rc)
{
	struct vpiece *pc = op->ctx;
	if (rc == -ENOENT && read_through(pc))
		return;
	if (!rc)
		layer_clip(pc->v, pc->layer, op->oid.index, op->offset, op->len, op->buf);
	if (rc == -ENOENT) { /* never written: zeros */
		memset(pc->bounce ? pc->bounce : pc->user, 0, op->len);
		rc = 0;
		pc->vio->holes++;
	}
	if (!rc && pc->bounce && pc->vio->type == BS_VIO_READ)
		memcpy(pc->user, pc->bounce + (pc->obj_off - pc->bounce_off), pc->len);
	piece_finish(pc, rc);
}

static void piece_stat_done(struct bs_op *op, int rc)
{
	struct vpiece *pc = op->ctx;
	if (rc == -ENOENT && read_through(pc))
		return;
	*pc->user = rc == 0;
	piece_finish(pc, rc == -ENOENT ? 0 : rc);
}

static void piece_write_done(struct bs_op *op, int rc)
{
	struct vpiece *pc = op->ctx;
	if (rc == -ENOENT && op->type == BS_DELETE)
		rc = 0; /* nothing there: already zeros */
	piece_finish(pc, rc);
}

/* The read of the covering chunks finished: patch them and write back. */
static void rmw_read_done(struct bs_op *op, int rc)
{
	struct vpiece *pc = op->ctx;
	if (rc == -ENOENT && pc->vio->type != BS_VIO_WRITE) {
		piece_finish(pc, 0); /* zeros over an object never written: nothing to do */
		return;
	}
	if (rc == -ENOENT) {
		memset(pc->bounce, 0, pc->bounce_len);
		rc = 0;
	}
	if (rc) {
		piece_finish(pc, rc);
		return;
	}
	uint8_t *at = pc->bounce + (pc->obj_off - pc->bounce_off);
	if (pc->vio->type == BS_VIO_WRITE)
		memcpy(at, pc->user, pc->len);
	else
		memset(at, 0, pc->len);
	uint64_t index = pc->op.oid.index;
	pc->op = (struct bs_op){ .type = BS_WRITE, .oid = vol_oid(pc->v, index),
				 .offset = pc->bounce_off, .len = pc->bounce_len, .buf = pc->bounce,
				 .done = piece_write_done, .ctx = pc };
	/* Zeroing part of an object that exists adds nothing: it goes
	 * through on a full pool, as a discard must. */
	if (pc->vio->type != BS_VIO_WRITE)
		pc->op.flags = BS_OP_FULL_TRY;
	bs_submit(pc->v->c, &pc->op);
}

static void rmw_start(struct vpiece *pc)
{
	pc->v->rmw_busy = true;
	pc->holds_rmw = true;
	pc->v->stats.rmw++;
	uint64_t index = pc->op.oid.index;
	pc->op = (struct bs_op){ .type = BS_READ, .oid = vol_oid(pc->v, index),
				 .offset = pc->bounce_off, .len = pc->bounce_len, .buf = pc->bounce,
				 .done = rmw_read_done, .ctx = pc };
	bs_submit(pc->v->c, &pc->op);
}

static void rmw_next(struct bs_volume *v)
{
	if (v->rmw_busy || list_empty(&v->rmw_queue))
		return;
	struct vpiece *pc = list_entry(list_first(&v->rmw_queue), struct vpiece, node);
	list_del(&pc->node);
	rmw_start(pc);
}

/* Zeros over part of an object: written only when the object exists
 * (writing them into one that does not would create it, and use space
 * for nothing: an fstrim of a filesystem's free space would fill the
 * volume). A write racing in elsewhere in the object leaves our part
 * unwritten, which reads as zeros just the same. */
static void zero_stat_done(struct bs_op *op, int rc)
{
	struct vpiece *pc = op->ctx;
	if (rc) {
		piece_finish(pc, rc == -ENOENT ? 0 : rc);
		return;
	}
	uint64_t index = op->oid.index;
	pc->op = (struct bs_op){ .type = BS_WRITE, .oid = vol_oid(pc->v, index),
				 .offset = (uint32_t)pc->obj_off, .len = pc->len, .buf = pc->v->zeros,
				 .flags = BS_OP_FULL_TRY, .done = piece_write_done, .ctx = pc };
	bs_submit(pc->v->c, &pc->op);
}

/* A piece of a write or zeroing that is not whole chunks. */
static int piece_rmw(struct vpiece *pc)
{
	pc->bounce_off = (uint32_t)(pc->obj_off / CHUNK * CHUNK);
	uint32_t end = (uint32_t)((pc->obj_off + pc->len + CHUNK - 1) / CHUNK * CHUNK);
	pc->bounce_len = end - pc->bounce_off;
	if (posix_memalign((void **)&pc->bounce, CHUNK, pc->bounce_len))
		return -ENOMEM;
	list_add_tail(&pc->v->rmw_queue, &pc->node);
	rmw_next(pc->v);
	return 0;
}

/* Starts the object operation(s) of one piece, on the volume's own
 * objects. */
static int piece_start_plain(struct vpiece *pc)
{
	struct bs_vio *vio = pc->vio;
	struct bs_volume *v = pc->v;
	bool aligned = pc->obj_off % CHUNK == 0 && pc->len % CHUNK == 0;
	bool whole = pc->obj_off == 0 && pc->len == v->block_size;
	switch (vio->type) {
	case BS_VIO_MAP:
		pc->op = (struct bs_op){ .type = BS_STAT,
					 .oid = vol_oid(v, pc->op.oid.index),
					 .done = piece_stat_done, .ctx = pc };
		bs_submit(v->c, &pc->op);
		return 0;
	case BS_VIO_READ:
		if (aligned) {
			pc->op = (struct bs_op){ .type = BS_READ,
						 .oid = vol_oid(v, pc->op.oid.index),
						 .offset = (uint32_t)pc->obj_off, .len = pc->len,
						 .buf = pc->user, .done = piece_read_done, .ctx = pc };
			bs_submit(v->c, &pc->op);
			return 0;
		}
		pc->bounce_off = (uint32_t)(pc->obj_off / CHUNK * CHUNK);
		pc->bounce_len = (uint32_t)((pc->obj_off + pc->len + CHUNK - 1) / CHUNK * CHUNK) -
				 pc->bounce_off;
		if (posix_memalign((void **)&pc->bounce, CHUNK, pc->bounce_len))
			return -ENOMEM;
		pc->op = (struct bs_op){ .type = BS_READ,
					 .oid = vol_oid(v, pc->op.oid.index),
					 .offset = pc->bounce_off, .len = pc->bounce_len,
					 .buf = pc->bounce, .done = piece_read_done, .ctx = pc };
		bs_submit(v->c, &pc->op);
		return 0;
	case BS_VIO_WRITE:
		if (!aligned)
			return piece_rmw(pc);
		pc->op = (struct bs_op){ .type = BS_WRITE,
					 .oid = vol_oid(v, pc->op.oid.index),
					 .offset = (uint32_t)pc->obj_off, .len = pc->len, .buf = pc->user,
					 .done = piece_write_done, .ctx = pc };
		bs_submit(v->c, &pc->op);
		return 0;
	default: /* DISCARD, WRITE_ZEROES */
		if (whole) {
			v->stats.objects_freed++;
			pc->op = (struct bs_op){ .type = BS_DELETE,
						 .oid = vol_oid(v, pc->op.oid.index),
						 .done = piece_write_done, .ctx = pc };
			bs_submit(v->c, &pc->op);
			return 0;
		}
		if (!aligned)
			return piece_rmw(pc); /* zeros over part of a chunk */
		pc->op = (struct bs_op){ .type = BS_STAT,
					 .oid = vol_oid(v, pc->op.oid.index),
					 .done = zero_stat_done, .ctx = pc };
		bs_submit(v->c, &pc->op);
		return 0;
	}
}

/* --- clones: copy-up and whole-object discards ------------------------------ */

static bool copied_test(const struct bs_volume *v, uint64_t index)
{
	return v->copied && index < v->copied_objects && (v->copied[index / 8] >> (index % 8) & 1);
}

/* The copy-up of PC's object is done (or not needed): the piece itself. */
static void copyup_finish(struct vpiece *pc, int rc)
{
	struct bs_volume *v = pc->v;
	uint64_t index = pc->op.oid.index;
	if (!rc && v->copied && index < v->copied_objects)
		v->copied[index / 8] |= (uint8_t)(1u << (index % 8));
	free(pc->copy);
	pc->copy = NULL;
	pc->layer = 0;
	if (!rc)
		rc = piece_start_plain(pc);
	if (rc)
		piece_finish(pc, rc);
}

static void copyup_create_done(struct bs_op *op, int rc)
{
	/* -EEXIST: another writer copied it in first; ours is the same. */
	copyup_finish(op->ctx, rc == -EEXIST ? 0 : rc);
}

static void copyup_read_next(struct vpiece *pc, uint64_t index);

/* The parent's object, whole: created in the clone from its first to its
 * last non-zero chunk, only if the clone has none yet. */
static void copyup_read_done(struct bs_op *op, int rc)
{
	struct vpiece *pc = op->ctx;
	struct bs_volume *v = pc->v;
	uint64_t index = op->oid.index;
	if (rc == -ENOENT) {
		copyup_read_next(pc, index);
		return;
	}
	if (rc) {
		copyup_finish(pc, rc);
		return;
	}
	layer_clip(v, pc->layer, index, 0, v->block_size, pc->copy);
	uint32_t from = v->block_size, to = 0;
	for (uint32_t at = 0; at < v->block_size; at += CHUNK)
		if (memcmp(pc->copy + at, v->zeros, CHUNK)) {
			from = from < at ? from : at;
			to = at + CHUNK;
		}
	if (!to) { /* zeros: absent reads the same */
		copyup_finish(pc, 0);
		return;
	}
	pc->op = (struct bs_op){ .type = BS_WRITE, .oid = vol_oid(v, index), .offset = from,
				 .len = to - from, .buf = pc->copy + from, .flags = BS_OP_CREATE,
				 .done = copyup_create_done, .ctx = pc };
	bs_submit(v->c, &pc->op);
}

static void copyup_read_next(struct vpiece *pc, uint64_t index)
{
	struct bs_volume *v = pc->v;
	int k = layer_next(pc, index);
	if (k < 0) { /* no parent has it: the clone's own write creates it */
		copyup_finish(pc, 0);
		return;
	}
	if (!pc->copy && posix_memalign((void **)&pc->copy, CHUNK, v->block_size)) {
		copyup_finish(pc, -ENOMEM);
		return;
	}
	pc->layer = k;
	pc->op = (struct bs_op){ .type = BS_READ, .oid = layer_oid(v, k, index),
				 .len = v->block_size, .buf = pc->copy, .done = copyup_read_done,
				 .ctx = pc };
	bs_submit(v->c, &pc->op);
}

static void copyup_stat_done(struct bs_op *op, int rc)
{
	struct vpiece *pc = op->ctx;
	if (rc == -ENOENT)
		copyup_read_next(pc, op->oid.index);
	else
		copyup_finish(pc, rc); /* 0: the clone has its own already */
}

/* A whole object discarded in a clone: zeros written when a parent has
 * the object (deleted, the clone would read the parent's again), a
 * delete when none has. */
static void whiteout_stat_done(struct bs_op *op, int rc)
{
	struct vpiece *pc = op->ctx;
	struct bs_volume *v = pc->v;
	uint64_t index = op->oid.index;
	int k = rc == -ENOENT ? layer_next(pc, index) : -1;
	if (k >= 0) {
		pc->layer = k;
		pc->op = (struct bs_op){ .type = BS_STAT, .oid = layer_oid(v, k, index),
					 .done = whiteout_stat_done, .ctx = pc };
		bs_submit(v->c, &pc->op);
		return;
	}
	if (rc && rc != -ENOENT) {
		piece_finish(pc, rc);
		return;
	}
	if (rc == 0)
		pc->op = (struct bs_op){ .type = BS_WRITE, .oid = vol_oid(v, index),
					 .len = v->block_size, .buf = v->zeros,
					 .done = piece_write_done, .ctx = pc };
	else
		pc->op = (struct bs_op){ .type = BS_DELETE, .oid = vol_oid(v, index),
					 .done = piece_write_done, .ctx = pc };
	bs_submit(v->c, &pc->op);
}

/* Starts one piece: in a clone, a change to an object a parent may hold
 * first copies it in (or, for a whole-object discard, looks whether one
 * does); everything else goes straight to the volume's own objects. */
static int piece_start(struct vpiece *pc)
{
	struct bs_volume *v = pc->v;
	uint64_t index = pc->op.oid.index;
	bool change = pc->vio->type != BS_VIO_READ && pc->vio->type != BS_VIO_MAP;
	bool whole = pc->obj_off == 0 && pc->len == v->block_size;
	if (!change || v->n_layers < 2 || index * v->block_size >= v->layers[1].limit_bytes ||
	    (whole && pc->vio->type == BS_VIO_WRITE))
		return piece_start_plain(pc);
	if (!whole && copied_test(v, index))
		return piece_start_plain(pc);
	if (whole) { /* whiteout_stat_done looks at the parents */
		pc->layer = 0;
		pc->op = (struct bs_op){ .oid = vol_oid(v, index), .ctx = pc };
		whiteout_stat_done(&pc->op, -ENOENT);
		return 0;
	}
	v->stats.copyups++;
	pc->op = (struct bs_op){ .type = BS_STAT, .oid = vol_oid(v, index),
				 .done = copyup_stat_done, .ctx = pc };
	bs_submit(v->c, &pc->op);
	return 0;
}

static void vio_deferred_done(struct io_post *post)
{
	struct bs_vio *vio = post->ctx;
	vio->done(vio, vio->rc);
}

void bs_volume_submit(struct bs_volume *v, struct bs_vio *vio)
{
	vio->rc = 0;
	vio->holes = 0;
	vio->pending = 1; /* held until every piece is started */
	uint64_t size = bs_volume_size(v);
	bool writes = vio->type != BS_VIO_READ && vio->type != BS_VIO_FLUSH &&
		      vio->type != BS_VIO_MAP;
	int rc = 0;
	uint64_t first_obj = vio->offset / v->block_size;
	if (vio->type > BS_VIO_MAP)
		rc = -EINVAL;
	else if (vio->type == BS_VIO_MAP && vio->len &&
		 (vio->offset + vio->len - 1) / v->block_size - first_obj >= 1024)
		rc = -EINVAL;
	else if (writes && v->read_only)
		rc = -EROFS;
	else if (vio->type != BS_VIO_FLUSH &&
		 (vio->offset % SECTOR || vio->len % SECTOR || vio->offset > size ||
		  vio->len > size - vio->offset))
		rc = -EINVAL;
	else if ((vio->type == BS_VIO_READ || vio->type == BS_VIO_WRITE ||
		  vio->type == BS_VIO_MAP) && vio->len && !vio->buf)
		rc = -EINVAL;
	if (!rc && vio->type != BS_VIO_FLUSH) {
		v->stats.requests++;
		uint64_t pos = vio->offset, end = vio->offset + vio->len;
		while (pos < end && !rc) {
			uint64_t index = pos / v->block_size, obj_off = pos % v->block_size;
			uint64_t n = v->block_size - obj_off;
			if (n > end - pos)
				n = end - pos;
			struct vpiece *pc = calloc(1, sizeof(*pc));
			if (!pc) {
				rc = -ENOMEM;
				break;
			}
			pc->vio = vio;
			pc->v = v;
			pc->obj_off = obj_off;
			pc->len = (uint32_t)n;
			pc->user = !vio->buf ? NULL
				   : vio->type == BS_VIO_MAP ? (uint8_t *)vio->buf + (index - first_obj)
							      : (uint8_t *)vio->buf + (pos - vio->offset);
			pc->op.oid.index = index;
			list_init(&pc->node);
			vio->pending++;
			rc = piece_start(pc);
			if (rc) {
				vio->pending--;
				free(pc->bounce);
				free(pc);
			}
			pos += n;
		}
	}
	if (rc && !vio->rc)
		vio->rc = rc;
	if (--vio->pending == 0) { /* nothing in flight: answered from the loop */
		vio->post = (struct io_post){ .fn = vio_deferred_done, .ctx = vio };
		io_loop_post(bs_client_loop(v->c), &vio->post);
	}
}
