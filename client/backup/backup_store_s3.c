/* The backup store over S3 (common/s3.h): each worker connects its own
 * struct s3, so transfers run in parallel on separate connections. */
#include "client/backup/backup_store_s3.h"

#include "common/s3.h"

static int s3_store_connect(void *ctx, void **conn, char *why, size_t why_len)
{
	return s3_open(ctx, (struct s3 **)conn, why, why_len);
}

static void s3_store_disconnect(void *conn)
{
	s3_close(conn);
}

static int s3_store_put(void *conn, const char *key, const void *buf, size_t len, char *why,
			size_t why_len)
{
	return s3_put(conn, key, buf, len, why, why_len);
}

static int s3_store_get(void *conn, const char *key, void **buf, size_t *len, char *why,
			size_t why_len)
{
	return s3_get(conn, key, buf, len, why, why_len);
}

static int s3_store_head(void *conn, const char *key, uint64_t *len, char *why, size_t why_len)
{
	return s3_head(conn, key, len, why, why_len);
}

static int s3_store_del(void *conn, const char *key, char *why, size_t why_len)
{
	return s3_delete(conn, key, why, why_len);
}

static int s3_store_list(void *conn, const char *prefix, backup_list_fn fn, void *arg,
			 char *why, size_t why_len)
{
	return s3_list(conn, prefix, fn, arg, why, why_len);
}

static void s3_store_counters(void *conn, uint64_t *requests, uint64_t *sent,
			      uint64_t *received)
{
	struct s3_stats st;
	s3_stats(conn, &st);
	*requests = st.requests;
	*sent = st.bytes_sent;
	*received = st.bytes_received;
}

static const struct backup_store_ops s3_store_ops = {
	.connect = s3_store_connect,
	.disconnect = s3_store_disconnect,
	.put = s3_store_put,
	.get = s3_store_get,
	.head = s3_store_head,
	.del = s3_store_del,
	.list = s3_store_list,
	.counters = s3_store_counters,
};

void backup_store_s3(struct backup_store *store, struct s3_config *cfg)
{
	store->ops = &s3_store_ops;
	store->ctx = cfg;
}
