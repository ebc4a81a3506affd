/* Listing a pool's objects (see bs_object_list in libbasalt.h): every up
 * OSD lists the objects of the PGs it is primary of, a BS_LIST operation
 * through the client like any other request. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libbasalt.h"

int bs_object_list(struct bs_sync *s, const char *pool_name, bs_object_list_fn fn, void *arg,
		   char *why, size_t why_len)
{
	const struct cluster_map *m = bs_sync_map(s);
	const struct map_pool *p = map_pool_by_name(m, pool_name);
	if (!p) {
		snprintf(why, why_len, "pool '%s' does not exist", pool_name);
		return -ENOENT;
	}
	uint32_t pool = p->id, n_osds = m->n_osds;
	int rc = 0;
	for (uint32_t id = 0; id < n_osds && !rc; id++) {
		m = bs_sync_map(s); /* it may change while we wait */
		if (id >= m->n_osds || !m->osds[id].exists || !m->osds[id].up)
			continue;
		struct bs_op op = { .type = BS_LIST, .oid = { .pool = pool, .inode = id } };
		rc = bs_sync_op(s, &op);
		if (rc == -EHOSTDOWN) { /* down since: its PGs have other primaries */
			rc = 0;
			continue;
		}
		if (rc) {
			snprintf(why, why_len, "osd.%u did not list its objects: %s", id,
				 strerror(-rc));
			rc = -EIO;
			break;
		}
		struct object_id oid;
		uint64_t version, size;
		for (size_t i = 0; !rc && !bs_list_entry(&op, i, &oid, &version, &size); i++)
			rc = fn(&oid, version, size, arg);
		free(op.buf);
	}
	m = bs_sync_map(s);
	p = map_pool_by_id(m, pool);
	for (uint32_t pg = 0; p && pg < p->pg_num && !rc; pg++) {
		uint32_t acting[MAP_PG_ACTING_MAX];
		if (!map_pg_acting(m, p, pg, acting, MAP_PG_ACTING_MAX)) {
			snprintf(why, why_len, "pg %u.%x has no OSD up: its objects are not listed",
				 p->id, pg);
			rc = -EAGAIN;
		}
	}
	return rc;
}
