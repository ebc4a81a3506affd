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
 * wait for the OSDs' batch either: see docs/ARCHITECTURE.md). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/list.h"
#include "libbasalt.h"

#define CHUNK 4096u
#define SECTOR 512u

struct bs_volume {
	struct bs_client *c;
	char name[MAP_NAME_MAX];
	uint64_t inode;
	uint32_t pool, block_size;
	uint32_t snap; /* a snapshot's view (read-only), or OBJECT_SNAP_HEAD */
	bool read_only;
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
	struct list_node node; /* volume's RMW queue */
};

static struct object_id vol_oid(const struct bs_volume *v, uint64_t index)
{
	return (struct object_id){ v->pool, v->inode, index, v->snap };
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
	struct bs_volume *v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->c = c;
	snprintf(v->name, sizeof(v->name), "%s", name);
	v->inode = mv->inode;
	v->pool = mv->pool;
	v->snap = ms ? ms->id : OBJECT_SNAP_HEAD;
	v->block_size = p->block_size;
	v->read_only = read_only;
	list_init(&v->rmw_queue);
	if (posix_memalign((void **)&v->zeros, CHUNK, v->block_size)) {
		free(v);
		return -ENOMEM;
	}
	memset(v->zeros, 0, v->block_size);
	*out = v;
	return 0;
}

void bs_volume_close(struct bs_volume *v)
{
	if (v)
		free(v->zeros);
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
	bool rmw = pc->bounce != NULL;
	free(pc->bounce);
	free(pc);
	if (rmw) {
		v->rmw_busy = false;
		rmw_next(v);
	}
	vio_piece_done(vio, rc);
}

static void piece_read_done(struct bs_op *op, int rc)
{
	struct vpiece *pc = op->ctx;
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

/* Starts the object operation(s) of one piece. */
static int piece_start(struct vpiece *pc)
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
