/* A small S3 client for the backup repository (client/backup/): one
 * object per call over libcurl — HTTP(S), TLS verification, AWS
 * Signature V4 (CURLOPT_AWS_SIGV4, with x-amz-content-sha256 set by us)
 * — and libxml2 for the XML answers (listings, errors). Retries with
 * backoff on 5xx, 429/SlowDown and dropped connections.
 *
 * One struct s3 per thread: it keeps its connection open between calls
 * and is not safe to share; open one per worker. */
#ifndef BASALT_COMMON_S3_H
#define BASALT_COMMON_S3_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define S3_BUCKET_MAX 64 /* S3's own limit is 63 characters */

struct s3_config {
	/* "http://127.0.0.1:7480", "https://s3.eu-west-1.amazonaws.com":
	 * scheme, host, optional port, no path. */
	char endpoint[512];
	char region[64]; /* "" = us-east-1 */
	char access_key[256];
	char secret_key[256];
	char session_token[2048]; /* "" = none (x-amz-security-token) */
	char bucket[S3_BUCKET_MAX];
	/* false: path style, ENDPOINT/BUCKET/KEY (what self-hosted S3
	 * servers expect); true: virtual-host style, BUCKET.HOST/KEY. */
	bool virtual_host;
	char ca_file[PATH_MAX]; /* "" = the system's CAs */
	bool insecure;		/* https without verifying the peer or its name */
	unsigned retries;	/* further attempts after a retryable failure (0 = 5) */
	unsigned backoff_ms;	/* the first wait, doubled each time, with jitter (0 = 200) */
	unsigned timeout_ms;	/* one attempt's limit (0 = 120000) */
	/* Keys asked for per ListObjectsV2 page (max-keys; 0 = 1000, S3's
	 * own limit): small values let tests cross page boundaries. */
	unsigned list_page_keys;
};

struct s3;

/* Checks CFG (endpoint syntax, bucket name, region, credentials present;
 * virtual-host style needs a host name, not an IP address) and makes a
 * client: 0, or -EINVAL / -ENOMEM with WHY. Sends nothing yet. */
int s3_open(const struct s3_config *cfg, struct s3 **out, char *why, size_t why_len);
void s3_close(struct s3 *s);

/* Every call below returns 0 or a negative errno with one line in WHY
 * that names the key, the endpoint and S3's own error code and message
 * when it sent one:
 *   -ENOENT    no such key (GET, HEAD)
 *   -ENXIO     no such bucket
 *   -EACCES    credentials refused (InvalidAccessKeyId,
 *              SignatureDoesNotMatch, AccessDenied, 401/403)
 *   -ECONNREFUSED, -EHOSTUNREACH, -ETIMEDOUT
 *              the endpoint cannot be reached (after the retries)
 *   -EPROTO    TLS verification or an answer that cannot be parsed
 *   -EIO       any other refusal (after the retries when retryable)
 * KEY is the whole object key (any prefix included), not URL-encoded. */

/* Stores LEN bytes of BUF as KEY (replacing it). */
int s3_put(struct s3 *s, const char *key, const void *buf, size_t len, char *why,
	   size_t why_len);
/* Reads KEY into a new buffer: *BUF (caller frees) of *LEN bytes. */
int s3_get(struct s3 *s, const char *key, void **buf /* out */, size_t *len /* out */,
	   char *why, size_t why_len);
/* 0 when KEY exists (its size into *LEN, which may be NULL), -ENOENT
 * when not. A HEAD answer has no body to tell a missing key from a
 * missing bucket, so a 404 costs one more HEAD, of the bucket. */
int s3_head(struct s3 *s, const char *key, uint64_t *len /* out */, char *why,
	    size_t why_len);
/* Deletes KEY; a key already gone is success. */
int s3_delete(struct s3 *s, const char *key, char *why, size_t why_len);

/* Calls FN for every key that starts with PREFIX, in S3's (byte) order,
 * with its size and last-modified time (seconds since the epoch),
 * following continuation tokens (ListObjectsV2, 1000 keys a page).
 * FN's first non-zero return stops the listing and is returned. */
typedef int (*s3_list_fn)(const char *key, uint64_t size, int64_t mtime_s, void *arg);
int s3_list(struct s3 *s, const char *prefix, s3_list_fn fn, void *arg, char *why,
	    size_t why_len);

struct s3_stats {
	uint64_t requests;   /* attempts, retries included */
	uint64_t retries;    /* attempts after a retryable failure */
	uint64_t bytes_sent; /* request bodies */
	uint64_t bytes_received; /* response bodies */
	uint64_t connections; /* opened; every other request reused one */
};
/* What this client did since s3_open. */
void s3_stats(const struct s3 *s, struct s3_stats *out /* out */);

/* Parses "s3://BUCKET/PREFIX" (PREFIX may be empty; no trailing slash
 * kept) into BUCKET (S3_BUCKET_MAX) and PREFIX (PREFIX_LEN): 0 or
 * -EINVAL with WHY. */
int s3_url_parse(const char *url, char *bucket, char *prefix, size_t prefix_len, char *why,
		 size_t why_len);

#endif
