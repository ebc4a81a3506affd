/* basalt-docker's state on this node, kept in STATE_DIR/state.json so a
 * restarted plugin finds the mounts it made (containers keep running
 * across a restart of the plugin):
 *   {"version": 1,
 *    "mounts": {NAME: {"ids": [CONTAINER...], "fuse_pid": N, "loop_dev": ..,
 *                      "fs_type": .., "fuse_dir": .., "mountpoint": ..}},
 *    "fs": {NAME: "xfs"}}      -- the fs= asked at create, until first use */
#ifndef BASALT_DOCKER_STATE_H
#define BASALT_DOCKER_STATE_H

#include <jansson.h>
#include <stddef.h>

#include "attach.h"

/* The state in DIR (a fresh one when there is no file yet): 0 with *OUT
 * (caller frees with json_decref), or -errno with WHY. */
int dk_state_load(const char *dir, json_t **out, char *why, size_t why_len);
/* Writes STATE to DIR/state.json atomically (a temporary file, fsync,
 * rename): 0, or -errno with WHY. */
int dk_state_save(const char *dir, json_t *state, char *why, size_t why_len);

/* A mount's record from A and its container ids IDS (taken). */
json_t *dk_state_mount_new(const struct dk_attach *a, json_t *ids);
/* A from a mount's record: 0, or -EINVAL when a field is missing. */
int dk_state_mount_attach(json_t *mount, struct dk_attach *a);

#endif
