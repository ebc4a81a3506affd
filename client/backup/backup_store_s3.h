/* Backups in an S3 bucket: struct backup_store over common/s3.h. */
#ifndef BASALT_CLIENT_BACKUP_BACKUP_STORE_S3_H
#define BASALT_CLIENT_BACKUP_BACKUP_STORE_S3_H

#include "client/backup/backup.h"

struct s3_config;

/* Fills STORE to reach the bucket CFG names; borrows CFG while in use. */
void backup_store_s3(struct backup_store *store, struct s3_config *cfg);

#endif
