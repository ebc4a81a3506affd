/* The cluster side of a backup: a volume's snapshot as a struct
 * backup_source (read through libbasalt as VOL@SNAP, extents from
 * bs_snap_diff) and a volume as a struct backup_target for restores
 * (created, or an existing one taken over with its lock held). */
#ifndef BASALT_CLIENT_BACKUP_BACKUP_VOLUME_H
#define BASALT_CLIENT_BACKUP_BACKUP_VOLUME_H

#include "client/backup/backup.h"
#include "client/volume_admin.h"

struct backup_volume {
	struct backup_source src;
	struct backup_target target;
	const struct bs_admin *a;
	struct bs_sync *io;
	struct bs_volume *v;
	struct cluster_map map; /* as of opening */
	char name[2 * MAP_NAME_MAX + 2]; /* VOL@SNAP, or the volume */
	bool locked;  /* target: we hold its lock */
	bool created; /* target: made by backup_volume_open_target */
};

/* SPEC's snapshot, to back up. IO is the client the admin ops use (the
 * caller's; borrowed). -ENOENT with WHY when there is no such snapshot. */
int backup_volume_open_snap(const struct bs_admin *a, struct bs_sync *io,
			    const struct bs_snap_spec *spec, struct backup_volume *out,
			    char *why, size_t why_len);

/* Volume NAME to restore SIZE bytes into: created in POOL when it does
 * not exist; an existing one only with FORCE (-EEXIST otherwise), not
 * while a client has it locked (-EBUSY), and grown when smaller (a
 * larger one is refused: -EFBIG, shrinking is the operator's call).
 * Holds the volume's lock until closed. */
int backup_volume_open_target(const struct bs_admin *a, struct bs_sync *io, const char *name,
			      uint64_t size, const char *pool, bool force,
			      struct backup_volume *out, char *why, size_t why_len);

/* Closes it; KEEP false removes a volume this made (a restore that
 * failed leaves nothing behind). */
void backup_volume_close(struct backup_volume *bv, bool keep);

#endif
