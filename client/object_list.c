/* Listing a pool's objects (see bs_object_list in libbasalt.h): every up
 * OSD lists the objects of the PGs it is primary of, a BS_LIST operation
 * through the client like any other request. Every OSD lists as of the
 * client's map (an OSD with another epoch answers -EAGAIN and the client
 * asks again), and a pass during which the map changed is thrown away
 * and done again: a PG whose primary moved between two OSDs' listings
 * would otherwise be listed by neither, and snap rm would never free the
 * clones it holds. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libbasalt.h"

#define BS_LIST_PASSES 50 /* a map that changes this often: -EAGAIN */

static void list_free(struct bs_op *ops, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		free(ops[i].type == BS_LIST ? ops[i].buf : NULL);
	free(ops);
}

/* One pass over the OSDs up in map EPOCH: 0 with every answer in OPS
 * (entries of type BS_LIST), 1 if the map changed meanwhile, or -errno. */
static int list_pass(const struct bs_object_list_io *io, uint32_t pool, struct bs_op *ops,
		     uint32_t n_osds, char *why, size_t why_len)
{
	uint64_t epoch = io->map(io->ctx)->epoch;
	for (uint32_t id = 0; id < n_osds; id++) {
		const struct cluster_map *m = io->map(io->ctx);
		if (m->epoch != epoch)
			return 1;
		if (id >= m->n_osds || !m->osds[id].exists || !m->osds[id].up)
			continue;
		ops[id] = (struct bs_op){ .type = BS_LIST, .oid = { .pool = pool, .inode = id } };
		int rc = io->run(io->ctx, &ops[id]);
		if (rc == -EHOSTDOWN) /* down since: the map changed */
			return 1;
		if (rc) {
			ops[id].type = 0;
			snprintf(why, why_len, "osd.%u did not list its objects: %s", id,
				 strerror(-rc));
			return -EIO;
		}
	}
	return io->map(io->ctx)->epoch != epoch;
}

static int list_deliver(const struct bs_op *ops, uint32_t n, bs_object_list_fn fn, void *arg)
{
	int rc = 0;
	for (uint32_t id = 0; id < n && !rc; id++) {
		struct object_id oid;
		uint64_t version, size;
		for (size_t i = 0; !rc && !bs_list_entry(&ops[id], i, &oid, &version, &size); i++)
			rc = fn(&oid, version, size, arg);
	}
	return rc;
}

int bs_object_list_io(const struct bs_object_list_io *io, const char *pool_name,
		      bs_object_list_fn fn, void *arg, char *why, size_t why_len)
{
	for (int pass = 0; pass < BS_LIST_PASSES; pass++) {
		const struct cluster_map *m = io->map(io->ctx);
		const struct map_pool *p = map_pool_by_name(m, pool_name);
		if (!p) {
			snprintf(why, why_len, "pool '%s' does not exist", pool_name);
			return -ENOENT;
		}
		uint32_t pool = p->id, n_osds = m->n_osds;
		struct bs_op *ops = calloc(n_osds ? n_osds : 1, sizeof(*ops));
		if (!ops) {
			snprintf(why, why_len, "out of memory");
			return -ENOMEM;
		}
		int rc = list_pass(io, pool, ops, n_osds, why, why_len);
		if (rc == 1) {
			list_free(ops, n_osds);
			continue;
		}
		m = io->map(io->ctx);
		p = map_pool_by_id(m, pool);
		for (uint32_t pg = 0; p && pg < p->pg_num && !rc; pg++) {
			uint32_t acting[MAP_PG_ACTING_MAX];
			if (!map_pg_acting(m, p, pg, acting, MAP_PG_ACTING_MAX)) {
				snprintf(why, why_len, "pg %u.%x has no OSD up: its objects are not "
					 "listed", p->id, pg);
				rc = -EAGAIN;
			}
		}
		if (!rc)
			rc = list_deliver(ops, n_osds, fn, arg);
		list_free(ops, n_osds);
		return rc;
	}
	snprintf(why, why_len, "the cluster map changed during each of %d listings",
		 BS_LIST_PASSES);
	return -EAGAIN;
}

static const struct cluster_map *sync_map(void *ctx)
{
	return bs_sync_map(ctx);
}

static int sync_run(void *ctx, struct bs_op *op)
{
	return bs_sync_op(ctx, op);
}

int bs_object_list(struct bs_sync *s, const char *pool_name, bs_object_list_fn fn, void *arg,
		   char *why, size_t why_len)
{
	struct bs_object_list_io io = { sync_map, sync_run, s };
	return bs_object_list_io(&io, pool_name, fn, arg, why, why_len);
}
