/* basalt-nbd's backup repository behind struct nbd_backup_ops: settings
 * resolved at start (client/backup/backup_settings.h), the repository
 * opened on a fetch thread at the first backup:ID asked for (and again at
 * the next one when that failed), so S3 never holds up the loop and an
 * unreachable bucket does not keep volumes from being served. */
#ifndef BASALT_CLIENT_NBD_BACKUP_REPO_H
#define BASALT_CLIENT_NBD_BACKUP_REPO_H

#include "client/backup/backup_settings.h"
#include "client/nbd/nbd_backup.h"
#include "common/s3.h"

struct nbd_backup_repo {
	struct s3_config s3;
	struct backup_repo_params p;
	struct backup_repo *r; /* NULL until an open succeeds */
};

extern const struct nbd_backup_ops nbd_backup_repo_ops;

/* Fills R from the settings (see backup_settings_resolve: 0, -ENOENT
 * when no repository is named, -EINVAL with WHY). */
int nbd_backup_repo_init(struct nbd_backup_repo *r, struct cfg *cfg,
			 const struct backup_settings *set, char *why, size_t why_len);
/* Opens the repository now (start-up's early check): 0 or -errno, WHY. */
int nbd_backup_repo_probe(struct nbd_backup_repo *r, char *why, size_t why_len);
void nbd_backup_repo_fini(struct nbd_backup_repo *r);

#endif
