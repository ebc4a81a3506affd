/* basalt-docker's cluster calls: map reads and commands through the
 * monitors (monc), listings and removals through the library's admin ops
 * (client/volume_admin.h), the same paths the basalt CLI takes. */
#include "cluster.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/libbasalt.h"
#include "client/monc.h"
#include "client/volume_admin.h"
#include "common/cluster/tool.h"

#define DK_MONC_TIMEOUT_MS 15000

static int get_map(struct dk_cluster *k, struct cluster_map *map, char *why, size_t why_len)
{
	bool stale;
	char text[512] = "";
	memset(map, 0, sizeof(*map));
	int rc = monc_get_map(k->mc, -1, map, &stale, text, sizeof(text));
	if (rc)
		snprintf(why, why_len, "cannot read the cluster map: %s",
			 *text ? text : strerror(-rc));
	return rc;
}

/* A monitor client for one request (monc runs its loop only inside its
 * calls, so one kept between requests would find its links timed out). */
static int connect_mons(struct dk_cluster *k, char *why, size_t why_len)
{
	struct monc_params mp = { k->tool->name, k->tool->keyring_path, DK_MONC_TIMEOUT_MS, -1 };
	return monc_open(k->tool->cfg, &mp, &k->mc, why, why_len);
}

int dk_cluster_open(struct dk_cluster *k, struct tool *t, char *why, size_t why_len)
{
	k->tool = t;
	k->mc = NULL;
	struct cluster_map map;
	int rc = dk_cluster_begin(k, why, why_len);
	if (!rc && !(rc = get_map(k, &map, why, why_len)))
		map_free(&map);
	dk_cluster_end(k);
	return rc;
}

int dk_cluster_begin(struct dk_cluster *k, char *why, size_t why_len)
{
	return k->mc ? 0 : connect_mons(k, why, why_len);
}

void dk_cluster_end(struct dk_cluster *k)
{
	if (k->mc)
		monc_close(k->mc);
	k->mc = NULL;
}

int dk_cluster_volume(struct dk_cluster *k, const char *name, struct dk_volume_info *out,
		      char *why, size_t why_len)
{
	struct cluster_map map;
	int rc = get_map(k, &map, why, why_len);
	if (rc)
		return rc;
	const struct map_volume *v = map_volume_by_name(&map, name);
	if (!v) {
		snprintf(why, why_len, "no Basalt volume named '%s'", name);
		map_free(&map);
		return -ENOENT;
	}
	const struct map_pool *p = map_pool_by_id(&map, v->pool);
	memset(out, 0, sizeof(*out));
	out->size = v->size;
	out->inode = v->inode;
	out->is_clone = v->parent_inode != 0;
	snprintf(out->pool, sizeof(out->pool), "%s", p ? p->name : "?");
	if (v->lock_client)
		snprintf(out->holder, sizeof(out->holder), "%s", v->lock_owner);
	map_free(&map);
	return 0;
}

int dk_cluster_volume_names(struct dk_cluster *k, char ***names, size_t *n, char *why,
			    size_t why_len)
{
	struct cluster_map map;
	int rc = get_map(k, &map, why, why_len);
	if (rc)
		return rc;
	*n = 0;
	*names = calloc(map.n_volumes + 1, sizeof(char *));
	for (uint32_t i = 0; *names && i < map.n_volumes; i++)
		if (((*names)[*n] = strdup(map.volumes[i].name)))
			(*n)++;
	map_free(&map);
	return *names ? 0 : -ENOMEM;
}

int dk_cluster_create(struct dk_cluster *k, const char *name, const char *pool, uint64_t size,
		      char *why, size_t why_len)
{
	struct map_cmd cmd = { .type = MAP_CMD_VOLUME_CREATE, .size = size };
	snprintf(cmd.name, sizeof(cmd.name), "%s", name);
	snprintf(cmd.pool_name, sizeof(cmd.pool_name), "%s", pool);
	uint64_t epoch;
	return monc_command(k->mc, &cmd, why, why_len, &epoch);
}

/* The library's admin ops over our monitor client and a libbasalt client
 * opened for this one call (*IO, closed by the caller). */
static void admin_of(struct dk_cluster *k, struct bs_admin *a, struct bs_admin_cluster *ctx,
		     struct bs_client_params *p, struct bs_sync **io)
{
	*p = (struct bs_client_params){ .entity = k->tool->name, .keyring = k->tool->keyring_path,
					.op_timeout_ms = 30000, .attempt_timeout_ms = 2000 };
	*io = NULL;
	*ctx = (struct bs_admin_cluster){ k->mc, k->tool->cfg, p, io };
	bs_admin_cluster_init(a, ctx);
}

int dk_cluster_remove(struct dk_cluster *k, const char *name, uint64_t *bytes_freed,
		      char *why, size_t why_len)
{
	struct bs_admin a;
	struct bs_admin_cluster ctx;
	struct bs_client_params p;
	struct bs_sync *io;
	struct bs_volume_change ch;
	admin_of(k, &a, &ctx, &p, &io);
	int rc = bs_volume_remove(&a, name, &ch, why, why_len);
	if (io)
		bs_sync_close(io);
	*bytes_freed = rc ? 0 : ch.bytes_freed;
	return rc;
}

static int count_inode(const struct object_id *oid, uint64_t version, uint64_t size, void *arg)
{
	(void)version;
	uint64_t *inode = arg;
	/* Stop at the first object of the volume: one is enough. */
	return oid->inode == *inode && size ? 1 : 0;
}

int dk_cluster_has_data(struct dk_cluster *k, const char *name, bool *has_data, char *why,
			size_t why_len)
{
	struct dk_volume_info info;
	int rc = dk_cluster_volume(k, name, &info, why, why_len);
	if (rc)
		return rc;
	struct bs_admin a;
	struct bs_admin_cluster ctx;
	struct bs_client_params p;
	struct bs_sync *io;
	admin_of(k, &a, &ctx, &p, &io);
	uint64_t inode = info.inode;
	rc = a.ops->list(a.ctx, info.pool, count_inode, &inode, why, why_len);
	if (io)
		bs_sync_close(io);
	if (rc < 0)
		return rc;
	*has_data = rc == 1 || info.is_clone;
	return 0;
}
