/* The Docker volume driver: the legacy plugin protocol's endpoints
 * (Plugin.Activate, VolumeDriver.*) over Basalt volumes, with the mounts
 * of this node reference counted by container ID. Requests are handled
 * one at a time (http.c calls in from one thread). */
#ifndef BASALT_DOCKER_DRIVER_H
#define BASALT_DOCKER_DRIVER_H

#include <jansson.h>
#include <stdint.h>

#include "common/metrics.h"

#include "attach.h"
#include "cluster.h"

/* The calls of the protocol, in driver.c's table order. */
#define DK_CALLS 9

/* Prometheus metrics (common/metrics.h): per call, and what is mounted. */
struct dk_metrics {
	struct metrics_registry *registry; /* owned */
	struct metrics_series *calls[DK_CALLS], *errors[DK_CALLS], *latency[DK_CALLS];
	struct metrics_series *mounted, *containers, *formats;
};

struct dk_driver {
	struct dk_cluster *cluster;   /* borrowed */
	struct dk_attach_params ap;   /* fs default, takeover mode, paths */
	const char *state_dir;
	const char *default_pool;
	uint64_t default_size;
	json_t *state;		      /* state.h; owned */
	struct dk_metrics metrics;
};

/* Loads the state in D->state_dir, keeping the mounts still in place
 * (mounted, fuse child alive) and forgetting the others (logged), and
 * registers the metrics (D->metrics.registry, for a server to serve). 0,
 * or -errno with WHY. */
int dk_driver_start(struct dk_driver *d, char *why, size_t why_len);
void dk_driver_stop(struct dk_driver *d);

/* Answers the call to PATH ("/VolumeDriver.Mount") with body REQ
 * (borrowed; an object): the reply (caller frees). *STATUS: 200, or 404
 * for a path the protocol does not have. */
json_t *dk_driver_call(struct dk_driver *d, const char *path, json_t *req, unsigned *status);

#endif
