/* The S3 client (common/s3.h) over libcurl: one easy handle per client so
 * its connection is reused, SigV4 by curl (CURLOPT_AWS_SIGV4) with the
 * body's SHA-256 sent by us as x-amz-content-sha256 (curl 7.88 signs every
 * header we add and takes that one as the payload hash), retries with
 * backoff and jitter, and one mapping from HTTP, S3 and curl failures to
 * errno. The XML and the URLs are common/s3_parse.c's. */
#include "common/s3.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "common/number.h"
#include "common/s3_int.h"
#include "common/why.h"

#define S3_RETRIES_DEFAULT 5
#define S3_BACKOFF_MS_DEFAULT 200
#define S3_BACKOFF_MS_MAX 20000
#define S3_TIMEOUT_MS_DEFAULT 120000
#define S3_CONNECT_TIMEOUT_MS_MAX 10000
#define S3_LIST_PAGE_KEYS_DEFAULT 1000
#define S3_CODE_MAX 128
#define S3_MESSAGE_MAX 512

struct s3 {
	struct s3_config cfg; /* defaults filled in */
	struct s3_endpoint endpoint;
	CURL *curl;
	char sigv4[128];
	struct s3_stats stats;
	uint64_t rng; /* xorshift state for the backoff's jitter */
	char url[S3_URL_MAX];
	char curl_error[CURL_ERROR_SIZE];
	/* A request to the bucket succeeded on this client: a HEAD's 404 is
	 * then the key's, not the bucket's (no second HEAD to tell). */
	bool bucket_seen;
};

/* A growing buffer for an answer's body, up to LIMIT bytes. */
struct s3_body {
	char *data;
	size_t len, cap, limit;
};

/* One request and what came back for its last attempt. */
struct s3_request {
	const char *method; /* GET, PUT, HEAD, DELETE */
	const char *op;	    /* for WHY: the method, or LIST */
	const char *key;    /* NULL: the bucket itself */
	const char *query;  /* "" or encoded and sorted */
	const void *body;   /* PUT's */
	size_t body_len, body_off;
	unsigned attempts;
	long status;
	struct s3_body answer;
};

static pthread_once_t s3_curl_once = PTHREAD_ONCE_INIT;
static CURLcode s3_curl_init_rc;

static void s3_curl_init(void)
{
	s3_curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static uint64_t s3_random(struct s3 *s)
{
	s->rng ^= s->rng << 13;
	s->rng ^= s->rng >> 7;
	s->rng ^= s->rng << 17;
	return s->rng;
}

static void s3_config_defaults(struct s3_config *cfg)
{
	if (!cfg->region[0])
		snprintf(cfg->region, sizeof(cfg->region), "us-east-1");
	if (!cfg->retries)
		cfg->retries = S3_RETRIES_DEFAULT;
	if (!cfg->backoff_ms)
		cfg->backoff_ms = S3_BACKOFF_MS_DEFAULT;
	if (!cfg->timeout_ms)
		cfg->timeout_ms = S3_TIMEOUT_MS_DEFAULT;
	if (!cfg->list_page_keys || cfg->list_page_keys > S3_LIST_PAGE_KEYS_DEFAULT)
		cfg->list_page_keys = S3_LIST_PAGE_KEYS_DEFAULT;
}

/* Everything in CFG that s3_open can check without sending anything. */
static int s3_config_check(const struct s3_config *cfg, struct s3_endpoint *ep, char *why,
			   size_t why_len)
{
	int rc = s3_endpoint_parse(cfg->endpoint, ep, why, why_len);
	if (rc)
		return rc;
	rc = s3_bucket_check(cfg->bucket, why, why_len);
	if (rc)
		return rc;
	if (strspn(cfg->region, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(cfg->region))
		return why_set(why, why_len, -EINVAL, "S3 region '%.64s': a-z, 0-9 and '-' only",
			       cfg->region);
	if (!cfg->access_key[0] || !cfg->secret_key[0])
		return why_set(why, why_len, -EINVAL, "S3 at %s: no access key or secret key",
			       cfg->endpoint);
	if (strpbrk(cfg->session_token, "\r\n"))
		return why_set(why, why_len, -EINVAL, "S3 session token: a line break");
	if (cfg->virtual_host && ep->ip_literal)
		return why_set(why, why_len, -EINVAL,
			       "S3 endpoint %s: virtual-host style (BUCKET.HOST) needs a host name, "
			       "not an address",
			       cfg->endpoint);
	return 0;
}

int s3_open(const struct s3_config *cfg, struct s3 **out, char *why, size_t why_len)
{
	*out = NULL;
	struct s3 *s = calloc(1, sizeof(*s));
	if (!s)
		return why_set(why, why_len, -ENOMEM, "out of memory opening an S3 client");
	s->cfg = *cfg;
	s3_config_defaults(&s->cfg);
	int rc = s3_config_check(&s->cfg, &s->endpoint, why, why_len);
	if (rc) {
		free(s);
		return rc;
	}
	pthread_once(&s3_curl_once, s3_curl_init);
	s->curl = s3_curl_init_rc == CURLE_OK ? curl_easy_init() : NULL;
	if (!s->curl) {
		free(s);
		return why_set(why, why_len, -ENOMEM, "libcurl could not be initialized");
	}
	snprintf(s->sigv4, sizeof(s->sigv4), "aws:amz:%s:s3", s->cfg.region);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	s->rng = ((uint64_t)now.tv_nsec << 20) ^ (uint64_t)now.tv_sec ^ (uint64_t)getpid() ^
		 (uint64_t)(uintptr_t)s;
	s->rng |= 1;
	*out = s;
	return 0;
}

void s3_close(struct s3 *s)
{
	if (!s)
		return;
	curl_easy_cleanup(s->curl);
	free(s);
}

void s3_stats(const struct s3 *s, struct s3_stats *out)
{
	*out = s->stats;
}

/* The lowercase hex SHA-256 of LEN bytes of BUF into HEX (65 bytes). */
static int s3_sha256_hex(const void *buf, size_t len, char hex[65])
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int digest_len = 0;
	if (!EVP_Digest(buf, len, digest, &digest_len, EVP_sha256(), NULL) || digest_len != 32)
		return -EIO;
	number_hex_encode(digest, 32, hex);
	return 0;
}

static size_t s3_body_write(char *data, size_t size, size_t count, void *arg)
{
	struct s3_body *b = arg;
	size_t n = size * count;
	if (n > b->limit - b->len)
		return 0; /* CURLE_WRITE_ERROR */
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *grown = realloc(b->data, cap);
		if (!grown)
			return 0;
		b->data = grown;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

static size_t s3_body_read(char *dst, size_t size, size_t count, void *arg)
{
	struct s3_request *req = arg;
	size_t n = size * count, left = req->body_len - req->body_off;
	if (n > left)
		n = left;
	if (n)
		memcpy(dst, (const char *)req->body + req->body_off, n);
	req->body_off += n;
	return n;
}

/* curl rewinds the body when it must send it again on one attempt. */
static int s3_body_seek(void *arg, curl_off_t offset, int origin)
{
	struct s3_request *req = arg;
	if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > req->body_len)
		return CURL_SEEKFUNC_FAIL;
	req->body_off = (size_t)offset;
	return CURL_SEEKFUNC_OK;
}

/* The headers we add (every one of them is signed by curl 7.88). Caller
 * frees with curl_slist_free_all; NULL when out of memory. */
static struct curl_slist *s3_headers(const struct s3 *s, const char *sha256_hex)
{
	char line[2200];
	snprintf(line, sizeof(line), "x-amz-content-sha256: %s", sha256_hex);
	struct curl_slist *h = curl_slist_append(NULL, line);
	if (h && s->cfg.session_token[0]) {
		snprintf(line, sizeof(line), "x-amz-security-token: %s", s->cfg.session_token);
		struct curl_slist *more = curl_slist_append(h, line);
		if (!more)
			curl_slist_free_all(h);
		h = more;
	}
	return h;
}

/* Options common to every attempt. */
static void s3_setopt_common(struct s3 *s, struct s3_request *req, struct curl_slist *headers)
{
	CURL *c = s->curl;
	long connect_ms = s->cfg.timeout_ms < S3_CONNECT_TIMEOUT_MS_MAX ? (long)s->cfg.timeout_ms
									 : S3_CONNECT_TIMEOUT_MS_MAX;
	curl_easy_setopt(c, CURLOPT_URL, s->url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L); /* keys such as "a/../b" stay themselves */
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, s->curl_error);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "basalt-s3");
	curl_easy_setopt(c, CURLOPT_AWS_SIGV4, s->sigv4);
	curl_easy_setopt(c, CURLOPT_USERNAME, s->cfg.access_key);
	curl_easy_setopt(c, CURLOPT_PASSWORD, s->cfg.secret_key);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)s->cfg.timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s3_body_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &req->answer);
	if (s->cfg.ca_file[0])
		curl_easy_setopt(c, CURLOPT_CAINFO, s->cfg.ca_file);
	if (s->cfg.insecure) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
}

static void s3_setopt_method(struct s3 *s, struct s3_request *req)
{
	CURL *c = s->curl;
	if (strcmp(req->method, "HEAD") == 0) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (strcmp(req->method, "PUT") == 0) {
		req->body_off = 0;
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, s3_body_read);
		curl_easy_setopt(c, CURLOPT_READDATA, req);
		curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, s3_body_seek);
		curl_easy_setopt(c, CURLOPT_SEEKDATA, req);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->body_len);
	} else if (strcmp(req->method, "DELETE") == 0) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
	}
}

/* One attempt of REQ: the curl result; the status and body in REQ. */
static CURLcode s3_attempt(struct s3 *s, struct s3_request *req, struct curl_slist *headers)
{
	curl_easy_reset(s->curl); /* keeps the open connection */
	s->curl_error[0] = '\0';
	req->answer.len = 0;
	req->status = 0;
	s3_setopt_common(s, req, headers);
	s3_setopt_method(s, req);
	s->stats.requests++;
	req->attempts++;
	CURLcode cc = curl_easy_perform(s->curl);
	curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &req->status);
	if (cc == CURLE_OK && req->status >= 200 && req->status <= 299)
		s->bucket_seen = true;
	curl_off_t sent = 0, received = 0;
	curl_easy_getinfo(s->curl, CURLINFO_SIZE_UPLOAD_T, &sent);
	curl_easy_getinfo(s->curl, CURLINFO_SIZE_DOWNLOAD_T, &received);
	long connects = 0;
	curl_easy_getinfo(s->curl, CURLINFO_NUM_CONNECTS, &connects);
	s->stats.connections += (uint64_t)connects;
	s->stats.bytes_sent += (uint64_t)sent;
	s->stats.bytes_received += (uint64_t)received;
	return cc;
}

static bool s3_curl_retryable(CURLcode cc)
{
	return cc == CURLE_COULDNT_CONNECT || cc == CURLE_RECV_ERROR || cc == CURLE_SEND_ERROR ||
	       cc == CURLE_GOT_NOTHING || cc == CURLE_PARTIAL_FILE ||
	       cc == CURLE_OPERATION_TIMEDOUT;
}

static bool s3_status_retryable(const struct s3_request *req)
{
	if (req->status >= 500 || req->status == 429)
		return true;
	if (req->status < 400 || !req->answer.len)
		return false;
	char code[S3_CODE_MAX], message[8];
	return s3_parse_error(req->answer.data, req->answer.len, code, sizeof(code), message,
			      sizeof(message)) == 0 &&
	       strcmp(code, "SlowDown") == 0;
}

/* Waits before attempt ATTEMPT + 1: BACKOFF_MS doubled ATTEMPT times
 * (at most S3_BACKOFF_MS_MAX), a random half of it taken off. */
static void s3_backoff(struct s3 *s, unsigned attempt)
{
	uint64_t delay_ms = s->cfg.backoff_ms;
	for (unsigned i = 0; i < attempt && delay_ms < S3_BACKOFF_MS_MAX; i++)
		delay_ms *= 2;
	if (delay_ms > S3_BACKOFF_MS_MAX)
		delay_ms = S3_BACKOFF_MS_MAX;
	delay_ms -= s3_random(s) % (delay_ms / 2 + 1);
	struct timespec ts = { .tv_sec = (time_t)(delay_ms / 1000),
			       .tv_nsec = (long)(delay_ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* " (after N retries)" when REQ took more than one attempt, else "". */
static const char *s3_after(const struct s3_request *req, char *buf, size_t len)
{
	if (req->attempts <= 1)
		return "";
	snprintf(buf, len, " (after %u retr%s)", req->attempts - 1,
		 req->attempts == 2 ? "y" : "ies");
	return buf;
}

static int s3_curl_errno(CURL *c, CURLcode cc)
{
	long os_errno = 0;
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
		curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno);
		if (os_errno == EHOSTUNREACH || os_errno == ENETUNREACH)
			return -EHOSTUNREACH;
		return os_errno == ETIMEDOUT ? -ETIMEDOUT : -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
		return -EHOSTUNREACH;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_USE_SSL_FAILED:
	case CURLE_WRITE_ERROR: /* an answer above its limit */
		return -EPROTO;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

/* The failure of a request that got no HTTP answer, as one line. */
static int s3_curl_failure(struct s3 *s, const struct s3_request *req, CURLcode cc,
			   char *why, size_t why_len)
{
	int rc = s3_curl_errno(s->curl, cc);
	char after[48];
	const char *detail = s->curl_error[0] ? s->curl_error : curl_easy_strerror(cc);
	if (rc == -ECONNREFUSED || rc == -EHOSTUNREACH)
		return why_set(why, why_len, rc, "%s s3://%s/%.300s: cannot reach %s: %s%s", req->op,
			       s->cfg.bucket, req->key ? req->key : "", s->cfg.endpoint,
			       rc == -ECONNREFUSED ? "connection refused" : detail,
			       s3_after(req, after, sizeof(after)));
	if (rc == -ETIMEDOUT)
		return why_set(why, why_len, rc, "%s s3://%s/%.300s: %s timed out: %s%s", req->op,
			       s->cfg.bucket, req->key ? req->key : "", s->cfg.endpoint, detail,
			       s3_after(req, after, sizeof(after)));
	return why_set(why, why_len, rc, "%s s3://%s/%.300s at %s: %s%s", req->op, s->cfg.bucket,
		       req->key ? req->key : "", s->cfg.endpoint, detail,
		       s3_after(req, after, sizeof(after)));
}

/* Runs REQ with its retries: 0 once an HTTP answer came (any status, in
 * REQ), or the failure of the last attempt with WHY. */
static int s3_perform(struct s3 *s, struct s3_request *req, char *why, size_t why_len)
{
	char sha256_hex[65];
	if (s3_sha256_hex(req->body ? req->body : "", req->body_len, sha256_hex))
		return why_set(why, why_len, -EIO, "SHA-256 of a request body failed");
	struct curl_slist *headers = s3_headers(s, sha256_hex);
	if (!headers)
		return why_set(why, why_len, -ENOMEM, "out of memory building an S3 request");
	CURLcode cc;
	for (unsigned attempt = 0;; attempt++) {
		cc = s3_attempt(s, req, headers);
		bool retry = cc ? s3_curl_retryable(cc) : s3_status_retryable(req);
		if (!retry || attempt >= s->cfg.retries)
			break;
		s->stats.retries++;
		s3_backoff(s, attempt);
	}
	curl_slist_free_all(headers);
	return cc ? s3_curl_failure(s, req, cc, why, why_len) : 0;
}

/* The errno for an HTTP error status STATUS with S3's CODE. */
static int s3_status_errno(long status, const char *code)
{
	if (strcmp(code, "NoSuchKey") == 0)
		return -ENOENT;
	if (strcmp(code, "NoSuchBucket") == 0)
		return -ENXIO;
	if (strcmp(code, "InvalidAccessKeyId") == 0 || strcmp(code, "SignatureDoesNotMatch") == 0 ||
	    strcmp(code, "AccessDenied") == 0 || status == 401 || status == 403)
		return -EACCES;
	if (status == 404)
		return -ENOENT;
	return -EIO;
}

/* An HTTP error answer to REQ as errno and one line naming S3's code and
 * message. */
static int s3_http_failure(struct s3 *s, const struct s3_request *req, char *why,
			   size_t why_len)
{
	char code[S3_CODE_MAX] = "", message[S3_MESSAGE_MAX] = "", after[48];
	if (req->answer.len)
		s3_parse_error(req->answer.data, req->answer.len, code, sizeof(code), message,
			       sizeof(message));
	int rc = s3_status_errno(req->status, code);
	char said[S3_CODE_MAX + S3_MESSAGE_MAX + 4] = "";
	if (code[0])
		snprintf(said, sizeof(said), "%s%s%s ", code, message[0] ? ": " : "", message);
	return why_set(why, why_len, rc, "%s s3://%s/%.300s at %s: %s(HTTP %ld)%s", req->op,
		       s->cfg.bucket, req->key ? req->key : "", s->cfg.endpoint, said, req->status,
		       s3_after(req, after, sizeof(after)));
}

/* Sets up REQ for METHOD on KEY (NULL: the bucket) with QUERY: 0 or
 * -EINVAL / -ENAMETOOLONG with WHY. */
static int s3_request_init(struct s3 *s, struct s3_request *req, const char *method,
			   const char *op, const char *key, const char *query, char *why,
			   size_t why_len)
{
	memset(req, 0, sizeof(*req));
	req->method = method;
	req->op = op;
	req->key = key;
	req->query = query;
	req->answer.limit = S3_XML_MAX;
	if (key && (!key[0] || strlen(key) > 1024))
		return why_set(why, why_len, -EINVAL, "%s s3://%s/%.300s: a key is 1 to 1024 bytes",
			       op, s->cfg.bucket, key);
	if (s3_url_build(&s->endpoint, s->cfg.bucket, s->cfg.virtual_host, key, query, s->url,
			 sizeof(s->url)))
		return why_set(why, why_len, -ENAMETOOLONG, "%s s3://%s/%.300s: URL too long", op,
			       s->cfg.bucket, key ? key : "");
	return 0;
}

int s3_put(struct s3 *s, const char *key, const void *buf, size_t len, char *why,
	   size_t why_len)
{
	struct s3_request req;
	int rc = s3_request_init(s, &req, "PUT", "PUT", key, "", why, why_len);
	if (rc)
		return rc;
	req.body = buf;
	req.body_len = len;
	rc = s3_perform(s, &req, why, why_len);
	if (rc == 0 && (req.status < 200 || req.status > 299))
		rc = s3_http_failure(s, &req, why, why_len);
	free(req.answer.data);
	return rc;
}

int s3_get(struct s3 *s, const char *key, void **buf, size_t *len, char *why, size_t why_len)
{
	*buf = NULL;
	*len = 0;
	struct s3_request req;
	int rc = s3_request_init(s, &req, "GET", "GET", key, "", why, why_len);
	if (rc)
		return rc;
	req.answer.limit = SIZE_MAX - 1;
	rc = s3_perform(s, &req, why, why_len);
	if (rc == 0 && (req.status < 200 || req.status > 299))
		rc = s3_http_failure(s, &req, why, why_len);
	if (rc == 0 && !req.answer.data) /* an empty object: still a buffer */
		req.answer.data = malloc(1);
	if (rc == 0 && !req.answer.data)
		rc = why_set(why, why_len, -ENOMEM, "GET s3://%s/%.300s: out of memory",
			     s->cfg.bucket, key);
	if (rc) {
		free(req.answer.data);
		return rc;
	}
	*buf = req.answer.data;
	*len = req.answer.len;
	return 0;
}

/* After a HEAD of a key answered 404: -ENXIO when the bucket is missing
 * too, else -ENOENT; WHY says which. */
static int s3_head_missing(struct s3 *s, const char *key, char *why, size_t why_len)
{
	if (s->bucket_seen)
		return why_set(why, why_len, -ENOENT, "HEAD s3://%s/%.300s at %s: NoSuchKey (HTTP 404)",
			       s->cfg.bucket, key, s->cfg.endpoint);
	struct s3_request req;
	int rc = s3_request_init(s, &req, "HEAD", "HEAD", NULL, "", why, why_len);
	if (rc == 0)
		rc = s3_perform(s, &req, why, why_len);
	free(req.answer.data);
	if (rc)
		return rc;
	if (req.status == 404)
		return why_set(why, why_len, -ENXIO, "HEAD s3://%s/%.300s at %s: NoSuchBucket (HTTP 404)",
			       s->cfg.bucket, key, s->cfg.endpoint);
	return why_set(why, why_len, -ENOENT, "HEAD s3://%s/%.300s at %s: NoSuchKey (HTTP 404)",
		       s->cfg.bucket, key, s->cfg.endpoint);
}

int s3_head(struct s3 *s, const char *key, uint64_t *len, char *why, size_t why_len)
{
	struct s3_request req;
	int rc = s3_request_init(s, &req, "HEAD", "HEAD", key, "", why, why_len);
	if (rc)
		return rc;
	rc = s3_perform(s, &req, why, why_len);
	if (rc == 0 && req.status == 404)
		rc = s3_head_missing(s, key, why, why_len);
	else if (rc == 0 && (req.status < 200 || req.status > 299))
		rc = s3_http_failure(s, &req, why, why_len);
	curl_off_t length = -1;
	if (rc == 0)
		curl_easy_getinfo(s->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
	if (rc == 0 && length < 0)
		rc = why_set(why, why_len, -EPROTO, "HEAD s3://%s/%.300s at %s: no Content-Length",
			     s->cfg.bucket, key, s->cfg.endpoint);
	if (rc == 0 && len)
		*len = (uint64_t)length;
	free(req.answer.data);
	return rc;
}

int s3_delete(struct s3 *s, const char *key, char *why, size_t why_len)
{
	struct s3_request req;
	int rc = s3_request_init(s, &req, "DELETE", "DELETE", key, "", why, why_len);
	if (rc)
		return rc;
	rc = s3_perform(s, &req, why, why_len);
	if (rc == 0 && (req.status < 200 || req.status > 299))
		rc = s3_http_failure(s, &req, why, why_len);
	if (rc == -ENOENT) /* already gone */
		rc = 0;
	free(req.answer.data);
	return rc;
}

/* The query of one ListObjectsV2 page, its parameters in SigV4's sorted
 * order (curl 7.88 signs the query string as written): 0 or
 * -ENAMETOOLONG. */
static int s3_list_query(const struct s3 *s, const char *prefix, const char *token, char *out,
			 size_t out_len)
{
	char prefix_enc[3 * 1024 + 1], token_enc[S3_URL_MAX / 2];
	if (s3_uri_encode(prefix, false, prefix_enc, sizeof(prefix_enc)) ||
	    (token && s3_uri_encode(token, false, token_enc, sizeof(token_enc))))
		return -ENAMETOOLONG;
	int n = snprintf(out, out_len,
			 "%s%s%sencoding-type=url&list-type=2&max-keys=%u&prefix=%s",
			 token ? "continuation-token=" : "", token ? token_enc : "",
			 token ? "&" : "", s->cfg.list_page_keys, prefix_enc);
	return n < 0 || (size_t)n >= out_len ? -ENAMETOOLONG : 0;
}

/* Fetches and parses one page after TOKEN (NULL: the first) into PAGE. */
static int s3_list_page(struct s3 *s, const char *prefix, const char *token,
			struct s3_list_page *page, char *why, size_t why_len)
{
	char query[S3_URL_MAX / 2 + 4096];
	memset(page, 0, sizeof(*page));
	if (s3_list_query(s, prefix, token, query, sizeof(query)))
		return why_set(why, why_len, -ENAMETOOLONG, "LIST s3://%s/%.300s: query too long",
			       s->cfg.bucket, prefix);
	struct s3_request req;
	int rc = s3_request_init(s, &req, "GET", "LIST", NULL, query, why, why_len);
	if (rc == 0)
		rc = s3_perform(s, &req, why, why_len);
	req.key = prefix; /* names the prefix in WHY */
	if (rc == 0 && (req.status < 200 || req.status > 299))
		rc = s3_http_failure(s, &req, why, why_len);
	char detail[256];
	if (rc == 0 && s3_parse_list_page(req.answer.data, req.answer.len, page, detail,
					  sizeof(detail)))
		rc = why_set(why, why_len, -EPROTO, "LIST s3://%s/%.300s at %s: %s", s->cfg.bucket,
			     prefix, s->cfg.endpoint, detail);
	free(req.answer.data);
	return rc;
}

int s3_list(struct s3 *s, const char *prefix, s3_list_fn fn, void *arg, char *why,
	    size_t why_len)
{
	char *token = NULL;
	int rc;
	for (;;) {
		struct s3_list_page page;
		rc = s3_list_page(s, prefix, token, &page, why, why_len);
		for (size_t i = 0; rc == 0 && i < page.count; i++)
			rc = fn(page.objects[i].key, page.objects[i].size, page.objects[i].mtime_s,
				arg);
		free(token);
		token = page.next_token;
		page.next_token = NULL;
		bool more = rc == 0 && page.truncated;
		s3_list_page_free(&page);
		if (!more)
			break;
	}
	free(token);
	return rc;
}

int s3_url_parse(const char *url, char *bucket, char *prefix, size_t prefix_len, char *why,
		 size_t why_len)
{
	if (strncmp(url, "s3://", 5) != 0)
		return why_set(why, why_len, -EINVAL, "'%.300s': expected s3://BUCKET[/PREFIX]", url);
	const char *b = url + 5;
	size_t n = strcspn(b, "/");
	if (n >= S3_BUCKET_MAX)
		return why_set(why, why_len, -EINVAL, "'%.300s': bucket name longer than 63", url);
	char name[S3_BUCKET_MAX];
	memcpy(name, b, n);
	name[n] = '\0';
	int rc = s3_bucket_check(name, why, why_len);
	if (rc)
		return rc;
	const char *p = b[n] == '/' ? b + n + 1 : b + n;
	size_t plen = strlen(p);
	while (plen && p[plen - 1] == '/')
		plen--;
	if (plen >= prefix_len || plen > 1024)
		return why_set(why, why_len, -EINVAL, "'%.300s': prefix longer than %zu bytes", url,
			       prefix_len ? (prefix_len - 1 < 1024 ? prefix_len - 1 : 1024) : 0);
	memcpy(bucket, name, n + 1);
	memcpy(prefix, p, plen);
	prefix[plen] = '\0';
	return 0;
}
