/* Where a backup repository is and how to reach it, for every program that
 * opens one (basalt backup, basalt-nbd's backup:ID exports): each setting
 * from the program's option, else [backup] of the config, else the AWS_*
 * environment. One resolver, so the two programs read the same settings
 * the same way. */
#ifndef BASALT_CLIENT_BACKUP_BACKUP_SETTINGS_H
#define BASALT_CLIENT_BACKUP_BACKUP_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>

#include "client/backup/backup.h"

struct cfg;
struct s3_config;

/* What the command line gave (NULL / false / 0: not given). */
struct backup_settings {
	const char *repo; /* s3://BUCKET/PREFIX */
	const char *endpoint, *region, *ca_file, *key_file;
	bool virtual_host, path_style, insecure;
	unsigned parallel; /* 0: parallel = in [backup], else the default */
	int zstd_level;	   /* 0: the default */
	/* How the program spells its options in messages: "--" (basalt
	 * backup: --endpoint) or "--backup-" (basalt-nbd: --backup-endpoint). */
	const char *option_prefix;
};

/* Fills S3 and P (P->store reaches the bucket through S3, which it
 * borrows; P's strings borrow OPT, CFG and the environment). CFG may be
 * NULL. 0; -ENOENT when no repository is named (neither OPT->repo nor
 * repo = in [backup]); -EINVAL when a setting is missing, malformed or too
 * long. WHY says which in one line. Opens nothing. */
int backup_settings_resolve(struct cfg *cfg, const struct backup_settings *opt,
			    struct s3_config *s3 /* out */, struct backup_repo_params *p /* out */,
			    char *why, size_t why_len);

#endif
