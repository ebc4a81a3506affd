/* What client/volume_admin.c and client/snap_admin.c share: the steps
 * both removals take, over the ops table. Not part of the library's API. */
#ifndef BASALT_CLIENT_VOLUME_ADMIN_INT_H
#define BASALT_CLIENT_VOLUME_ADMIN_INT_H

#include "client/volume_admin.h"

/* Whether a listed object is to go. */
typedef bool (*bs_admin_pick_fn)(const struct object_id *oid, uint64_t version, void *arg);

/* Lists POOL and deletes every object PICK takes: their blocks are free
 * when this returns 0 (out->freed, objects_freed, bytes_freed). -EIO
 * when some could not be deleted, or the listing's error, with WHY. */
int bs_admin_free(const struct bs_admin *a, const char *pool, bs_admin_pick_fn pick, void *arg,
		  struct bs_volume_change *out, char *why, size_t why_len);

/* Runs CMD on the monitors: 0 with out->epoch and out->result ("done"),
 * or the refusal with WHY. */
int bs_admin_command(const struct bs_admin *a, struct map_cmd *cmd,
		     struct bs_volume_change *out, char *why, size_t why_len);

#endif
