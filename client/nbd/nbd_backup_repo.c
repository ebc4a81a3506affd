/* struct nbd_backup_ops over client/backup/'s reader (see
 * nbd_backup_repo.h). Called on nbd_backup.c's fetch threads: open one at
 * a time (it uses the repository's own connection), the rest each with
 * its thread's connection. */
#include "nbd_backup_repo.h"

#include <errno.h>
#include <string.h>

#include "client/backup/backup.h"

int nbd_backup_repo_init(struct nbd_backup_repo *r, struct cfg *cfg,
			 const struct backup_settings *set, char *why, size_t why_len)
{
	memset(r, 0, sizeof(*r));
	return backup_settings_resolve(cfg, set, &r->s3, &r->p, why, why_len);
}

int nbd_backup_repo_probe(struct nbd_backup_repo *r, char *why, size_t why_len)
{
	return r->r ? 0 : backup_repo_open(&r->p, false, &r->r, why, why_len);
}

void nbd_backup_repo_fini(struct nbd_backup_repo *r)
{
	backup_repo_close(r->r);
	r->r = NULL;
}

static int repo_connect(void *ctx, void **conn, char *why, size_t why_len)
{
	struct nbd_backup_repo *r = ctx;
	return backup_repo_connect(r->r, conn, why, why_len);
}

static void repo_disconnect(void *ctx, void *conn)
{
	struct nbd_backup_repo *r = ctx;
	backup_repo_disconnect(r->r, conn);
}

static int repo_open(void *ctx, const char *id, void **src, uint64_t *size, char *why,
		     size_t why_len)
{
	struct nbd_backup_repo *r = ctx;
	int rc = nbd_backup_repo_probe(r, why, why_len);
	struct backup_reader *rd = NULL;
	if (!rc)
		rc = backup_reader_open(r->r, id, &rd, why, why_len);
	if (rc)
		return rc;
	*src = rd;
	*size = backup_reader_summary(rd)->size;
	return 0;
}

static void repo_close(void *ctx, void *src)
{
	(void)ctx;
	backup_reader_close(src);
}

static bool repo_has(void *src, uint64_t index)
{
	return backup_reader_has(src, index);
}

static int repo_chunk(void *ctx, void *conn, void *src, uint64_t index, void *buf, uint32_t *len,
		      char *why, size_t why_len)
{
	(void)ctx;
	return backup_reader_chunk(src, conn, index, buf, len, why, why_len);
}

const struct nbd_backup_ops nbd_backup_repo_ops = {
	.connect = repo_connect,
	.disconnect = repo_disconnect,
	.open = repo_open,
	.close = repo_close,
	.has = repo_has,
	.chunk = repo_chunk,
};
