/* s3_tool: a tiny CLI over common/s3.h for s3_client.sh, so the client is
 * tested against a real S3 server (radosgw) through its own API.
 *
 *   s3_tool [OPTIONS] put  s3://BUCKET/KEY FILE   FILE ("-": stdin) as KEY
 *   s3_tool [OPTIONS] get  s3://BUCKET/KEY FILE   KEY into FILE ("-": stdout)
 *   s3_tool [OPTIONS] head s3://BUCKET/KEY        prints the size
 *   s3_tool [OPTIONS] rm   s3://BUCKET/KEY
 *   s3_tool [OPTIONS] ls   s3://BUCKET[/PREFIX]   "KEY SIZE MTIME" lines
 *
 * Options: --virtual-host, --page-keys N, --retries N, --backoff-ms N,
 * --timeout-ms N, --endpoint URL, --stats (requests and retries on
 * stderr). The endpoint and credentials come from AWS_ENDPOINT_URL,
 * AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN and
 * AWS_REGION. Exit status: 0 done, 1 no such key, 2 usage, 3 any other
 * failure (one line on stderr). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/s3.h"

struct s3_tool {
	struct s3_config cfg;
	bool stats;
	const char *command, *url, *file;
	char key[1100];
};

static void s3_tool_usage(void)
{
	fprintf(stderr,
		"usage: s3_tool [--virtual-host] [--page-keys N] [--retries N] [--backoff-ms N]\n"
		"               [--timeout-ms N] [--endpoint URL] [--stats]\n"
		"               put|get|head|rm|ls s3://BUCKET/KEY [FILE]\n");
	exit(2);
}

static void s3_tool_env(const char *name, char *out, size_t len)
{
	const char *v = getenv(name);
	if (v)
		snprintf(out, len, "%s", v);
}

static unsigned s3_tool_number(const char *text)
{
	char *end;
	unsigned long v = strtoul(text, &end, 10);
	if (!text[0] || *end || v > 1000000000)
		s3_tool_usage();
	return (unsigned)v;
}

static void s3_tool_options(struct s3_tool *t, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "virtual-host", no_argument, NULL, 'v' }, { "page-keys", required_argument, NULL, 'p' },
		{ "retries", required_argument, NULL, 'r' }, { "backoff-ms", required_argument, NULL, 'b' },
		{ "timeout-ms", required_argument, NULL, 't' }, { "endpoint", required_argument, NULL, 'e' },
		{ "stats", no_argument, NULL, 's' },	     { NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'v': t->cfg.virtual_host = true; break;
		case 'p': t->cfg.list_page_keys = s3_tool_number(optarg); break;
		case 'r': t->cfg.retries = s3_tool_number(optarg); break;
		case 'b': t->cfg.backoff_ms = s3_tool_number(optarg); break;
		case 't': t->cfg.timeout_ms = s3_tool_number(optarg); break;
		case 'e': snprintf(t->cfg.endpoint, sizeof(t->cfg.endpoint), "%s", optarg); break;
		case 's': t->stats = true; break;
		default: s3_tool_usage();
		}
	}
	if (argc - optind < 2)
		s3_tool_usage();
	t->command = argv[optind];
	t->url = argv[optind + 1];
	t->file = argc - optind > 2 ? argv[optind + 2] : NULL;
}

/* Bucket into the config; KEY is everything after "s3://BUCKET/", as is. */
static int s3_tool_target(struct s3_tool *t, char *why, size_t why_len)
{
	char prefix[1100];
	int rc = s3_url_parse(t->url, t->cfg.bucket, prefix, sizeof(prefix), why, why_len);
	if (rc)
		return rc;
	const char *rest = t->url + 5 + strlen(t->cfg.bucket);
	snprintf(t->key, sizeof(t->key), "%s", *rest == '/' ? rest + 1 : rest);
	return 0;
}

static int s3_tool_read_file(const char *path, void **buf, size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (!f)
		return -errno;
	size_t cap = 1 << 16;
	char *data = malloc(cap);
	*len = 0;
	size_t n;
	while (data && (n = fread(data + *len, 1, cap - *len, f)) > 0) {
		*len += n;
		if (*len == cap) {
			char *grown = realloc(data, cap *= 2);
			if (!grown)
				free(data);
			data = grown;
		}
	}
	int rc = !data ? -ENOMEM : ferror(f) ? -EIO : 0;
	if (f != stdin)
		fclose(f);
	*buf = data;
	return rc;
}

static int s3_tool_write_file(const char *path, const void *buf, size_t len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "wb");
	if (!f)
		return -errno;
	int rc = fwrite(buf, 1, len, f) == len ? 0 : -EIO;
	if (f == stdout ? fflush(f) : fclose(f))
		rc = -EIO;
	return rc;
}

static int s3_tool_print(const char *key, uint64_t size, int64_t mtime_s, void *arg)
{
	(void)arg;
	printf("%s %" PRIu64 " %" PRId64 "\n", key, size, mtime_s);
	return 0;
}

static int s3_tool_transfer(struct s3_tool *t, struct s3 *s, char *why, size_t why_len)
{
	void *buf = NULL;
	size_t len = 0;
	int rc;
	if (!t->file)
		s3_tool_usage();
	if (strcmp(t->command, "put") == 0) {
		rc = s3_tool_read_file(t->file, &buf, &len);
		if (rc) {
			free(buf);
			snprintf(why, why_len, "%s: %s", t->file, strerror(-rc));
			return rc;
		}
		rc = s3_put(s, t->key, buf, len, why, why_len);
	} else {
		rc = s3_get(s, t->key, &buf, &len, why, why_len);
		if (rc == 0 && (rc = s3_tool_write_file(t->file, buf, len)))
			snprintf(why, why_len, "%s: %s", t->file, strerror(-rc));
	}
	free(buf);
	return rc;
}

static int s3_tool_run(struct s3_tool *t, struct s3 *s, char *why, size_t why_len)
{
	if (strcmp(t->command, "put") == 0 || strcmp(t->command, "get") == 0)
		return s3_tool_transfer(t, s, why, why_len);
	if (strcmp(t->command, "head") == 0) {
		uint64_t size = 0;
		int rc = s3_head(s, t->key, &size, why, why_len);
		if (rc == 0)
			printf("%" PRIu64 "\n", size);
		return rc;
	}
	if (strcmp(t->command, "rm") == 0)
		return s3_delete(s, t->key, why, why_len);
	if (strcmp(t->command, "ls") == 0)
		return s3_list(s, t->key, s3_tool_print, NULL, why, why_len);
	s3_tool_usage();
	return -EINVAL;
}

int main(int argc, char **argv)
{
	struct s3_tool t = { 0 };
	char why[2048] = "";
	s3_tool_env("AWS_ENDPOINT_URL", t.cfg.endpoint, sizeof(t.cfg.endpoint));
	s3_tool_env("AWS_ACCESS_KEY_ID", t.cfg.access_key, sizeof(t.cfg.access_key));
	s3_tool_env("AWS_SECRET_ACCESS_KEY", t.cfg.secret_key, sizeof(t.cfg.secret_key));
	s3_tool_env("AWS_SESSION_TOKEN", t.cfg.session_token, sizeof(t.cfg.session_token));
	s3_tool_env("AWS_REGION", t.cfg.region, sizeof(t.cfg.region));
	s3_tool_options(&t, argc, argv);
	struct s3 *s = NULL;
	int rc = s3_tool_target(&t, why, sizeof(why));
	if (rc == 0)
		rc = s3_open(&t.cfg, &s, why, sizeof(why));
	if (rc == 0)
		rc = s3_tool_run(&t, s, why, sizeof(why));
	if (s && t.stats) {
		struct s3_stats st;
		s3_stats(s, &st);
		fprintf(stderr, "stats: requests=%" PRIu64 " retries=%" PRIu64 " connections=%" PRIu64
				" sent=%" PRIu64 " received=%" PRIu64 "\n",
			st.requests, st.retries, st.connections, st.bytes_sent, st.bytes_received);
	}
	s3_close(s);
	if (rc) {
		fprintf(stderr, "s3_tool: %s\n", why);
		return rc == -ENOENT ? 1 : 3;
	}
	return 0;
}
