/* Listing a pool's objects (see bs_object_list in libbasalt.h): every up
 * OSD lists the objects of the PGs it is primary of, through the client's
 * operations like any other request. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cluster/osd_proto.h"
#include "common/enc.h"
#include "libbasalt.h"

/* Asks OSD ID for its part of POOL into *BUF (grown as the OSD says it
 * needs): 0 with *LEN bytes of entries, or -errno. */
static int list_osd(struct bs_sync *s, uint32_t pool, uint32_t id, uint8_t **buf, size_t *cap,
		    size_t *len)
{
	for (;;) {
		struct bs_op op = { .type = BS_LIST, .oid = { .pool = pool, .inode = id },
				    .buf = *buf, .len = (uint32_t)*cap };
		int rc = bs_sync_op(s, &op);
		if (rc != -EOVERFLOW) {
			*len = rc ? 0 : op.size;
			return rc;
		}
		uint8_t *b = realloc(*buf, op.size);
		if (!b)
			return -ENOMEM;
		*buf = b;
		*cap = op.size;
	}
}

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
	uint8_t *buf = NULL;
	size_t cap = 0, len;
	int rc = 0;
	for (uint32_t id = 0; id < n_osds && !rc; id++) {
		m = bs_sync_map(s); /* it may change while we wait */
		if (id >= m->n_osds || !m->osds[id].exists || !m->osds[id].up)
			continue;
		if (list_osd(s, pool, id, &buf, &cap, &len)) {
			snprintf(why, why_len, "osd.%u did not list its objects", id);
			rc = -EIO;
			break;
		}
		struct dec d;
		dec_init(&d, buf, len);
		while (!rc && dec_remaining(&d) >= OSD_LIST_ENTRY_LEN) {
			struct object_id oid;
			uint64_t version, size;
			dec_get_object_id(&d, &oid);
			dec_get_le64(&d, &version);
			dec_get_le64(&d, &size);
			rc = fn(&oid, version, size, arg);
		}
	}
	free(buf);
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
