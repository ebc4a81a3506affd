/* basalt-docker's view of the cluster: the monitors (for the map and map
 * commands) and, opened per request, a libbasalt client (object listings
 * and removals). The plugin's own client never writes a volume and never
 * takes a lock: the basalt-fuse child of a mount does (see attach.h). */
#ifndef BASALT_DOCKER_CLUSTER_H
#define BASALT_DOCKER_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cluster/map.h"

struct tool;
struct monc;

struct dk_cluster {
	struct tool *tool; /* borrowed */
	struct monc *mc;
};

/* What the map says of one volume. */
struct dk_volume_info {
	uint64_t size, inode;
	char pool[MAP_NAME_MAX];
	bool is_clone;		       /* reads through to a parent's snapshot */
	char holder[MAP_OWNER_MAX];    /* who holds its lock; "" when nobody */
};

/* Checks that the monitors named by T's config answer with a map: 0, or
 * -errno with WHY. */
int dk_cluster_open(struct dk_cluster *k, struct tool *t, char *why, size_t why_len);
/* Around each request: connects to the monitors (0, or -errno with WHY),
 * and closes that connection. The calls below need one. */
int dk_cluster_begin(struct dk_cluster *k, char *why, size_t why_len);
void dk_cluster_end(struct dk_cluster *k);

/* Volume NAME as the newest map has it: 0, -ENOENT, or -errno with WHY. */
int dk_cluster_volume(struct dk_cluster *k, const char *name, struct dk_volume_info *out,
		      char *why, size_t why_len);
/* Every volume's name: *NAMES (caller frees each and the array), *N. */
int dk_cluster_volume_names(struct dk_cluster *k, char ***names, size_t *n, char *why,
			    size_t why_len);
/* Creates volume NAME of SIZE bytes in POOL: 0, or the map's refusal
 * (-EEXIST, -ENOENT for a missing pool, ...) with WHY. */
int dk_cluster_create(struct dk_cluster *k, const char *name, const char *pool, uint64_t size,
		      char *why, size_t why_len);
/* Removes volume NAME and frees its objects (client/volume_admin.h):
 * 0, or -errno (-EBUSY while locked) with WHY. *BYTES_FREED: what its
 * objects held. */
int dk_cluster_remove(struct dk_cluster *k, const char *name, uint64_t *bytes_freed,
		      char *why, size_t why_len);
/* Whether any object of volume NAME was ever written (a pool listing):
 * 0 with *HAS_DATA, or -errno with WHY. */
int dk_cluster_has_data(struct dk_cluster *k, const char *name, bool *has_data, char *why,
			size_t why_len);

#endif
