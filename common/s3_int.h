/* The pure parts of the S3 client (common/s3*.c), apart from the network
 * so unit tests and the fuzzer reach them: the XML answers (a
 * ListObjectsV2 page, an Error document) through libxml2, ISO-8601 times,
 * endpoint and bucket checks, and the URLs with their key encoding.
 * Nothing here sends a byte; see common/s3.h for the client. */
#ifndef BASALT_COMMON_S3_INT_H
#define BASALT_COMMON_S3_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/s3.h"

/* No XML answer (listing page, error document) may be longer. */
#define S3_XML_MAX ((size_t)16 << 20)
/* A whole URL: endpoint, bucket, a 1,024-byte key encoded three bytes a
 * byte, and a continuation token. */
#define S3_URL_MAX 8192

struct s3_object {
	char *key; /* decoded when the page says EncodingType url */
	uint64_t size;
	int64_t mtime_s;
};

struct s3_list_page {
	struct s3_object *objects; /* in the page's order */
	size_t count;
	bool truncated;
	char *next_token; /* NULL when the page gave none */
};

/* Parses one ListBucketResult of LEN bytes into *PAGE (free it with
 * s3_list_page_free, also after a failure): 0, or -EPROTO (not XML, a DTD,
 * another root, a Contents without a Key, a bad Size or LastModified, a
 * truncated page without a token) or -ENOMEM, with WHY. */
int s3_parse_list_page(const char *xml, size_t len, struct s3_list_page *page /* out */,
		       char *why, size_t why_len);
void s3_list_page_free(struct s3_list_page *page);

/* Reads Code and Message of an S3 Error document into CODE and MESSAGE
 * (truncated to their lengths, "" when absent; control characters become
 * spaces so WHY stays one line): 0, or -EPROTO when it is not one. */
int s3_parse_error(const char *xml, size_t len, char *code, size_t code_len, char *message,
		   size_t message_len);

/* "2024-05-01T12:00:00.000Z" (fraction optional; Z or +hh:mm / -hh:mm)
 * into seconds since the epoch: 0 or -EINVAL. */
int s3_parse_time(const char *text, int64_t *out /* out */);

struct s3_endpoint {
	bool https;
	bool ip_literal;  /* host is an IPv4 or [IPv6] address */
	char host[256];   /* as written, brackets of IPv6 kept */
	char port[8];	  /* "" = the scheme's */
};

/* Splits "http[s]://HOST[:PORT][/]" into *OUT: 0 or -EINVAL with WHY. */
int s3_endpoint_parse(const char *endpoint, struct s3_endpoint *out /* out */, char *why,
		      size_t why_len);

/* S3's bucket naming rules (3-63 of a-z 0-9 . -, letter or digit at both
 * ends, no ".."): 0 or -EINVAL with WHY. */
int s3_bucket_check(const char *bucket, char *why, size_t why_len);

/* Percent-encodes IN the way SigV4 canonicalizes (A-Z a-z 0-9 - . _ ~
 * kept, everything else %XX in upper case; '/' kept when KEEP_SLASH)
 * into OUT: 0 or -ENAMETOOLONG. */
int s3_uri_encode(const char *in, bool keep_slash, char *out, size_t out_len);

/* The URL of KEY (NULL: the bucket itself) in BUCKET at EP, path style
 * (EP/BUCKET/KEY) or virtual-host style (BUCKET.HOST/KEY), with QUERY
 * ("" or already encoded and sorted) after a '?': 0 or -ENAMETOOLONG. */
int s3_url_build(const struct s3_endpoint *ep, const char *bucket, bool virtual_host,
		 const char *key, const char *query, char *url, size_t url_len);

#endif
