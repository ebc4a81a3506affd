/* The repository's settings (backup_settings.h): option, else [backup] of
 * the config, else the environment, checked and copied into the S3
 * client's config and the repository's parameters. */
#include "backup_settings.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup_store_s3.h"
#include "common/config.h"
#include "common/number.h"
#include "common/s3.h"

/* OPTION, else KEY of [backup], else the environment's ENV (NULL: none). */
static const char *setting(struct cfg *cfg, const char *option, const char *key, const char *env)
{
	if (option)
		return option;
	const char *v = NULL;
	if (cfg && cfg_get_str(cfg, "backup", key, "", &v) == 0 && v && *v)
		return v;
	v = env ? getenv(env) : NULL;
	return v && *v ? v : NULL;
}

/* VALUE (NULL: leave DST empty) into DST of CAP bytes: 0 or -EINVAL. */
static int copy_setting(char *dst, size_t cap, const char *value, const char *what, char *why,
			size_t why_len)
{
	if (!value)
		return 0;
	if (strlen(value) >= cap) {
		snprintf(why, why_len, "%s is too long (at most %zu characters)", what, cap - 1);
		return -EINVAL;
	}
	strcpy(dst, value);
	return 0;
}

/* Endpoint, region and credentials into S3. */
static int resolve_endpoint(struct cfg *cfg, const struct backup_settings *o, const char *opt,
			    struct s3_config *s3, char *why, size_t why_len)
{
	const char *endpoint = setting(cfg, o->endpoint, "endpoint", "AWS_ENDPOINT_URL");
	const char *region = setting(cfg, o->region, "region", "AWS_REGION");
	region = region ? region : getenv("AWS_DEFAULT_REGION");
	const char *access = setting(cfg, NULL, "access_key", "AWS_ACCESS_KEY_ID");
	const char *secret = setting(cfg, NULL, "secret_key", "AWS_SECRET_ACCESS_KEY");
	if (!endpoint) {
		snprintf(why, why_len, "which S3 endpoint? give %sendpoint URL, endpoint = in "
				       "[backup] of the config, or AWS_ENDPOINT_URL", opt);
		return -EINVAL;
	}
	if (!access || !secret) {
		snprintf(why, why_len, "no S3 credentials: set access_key and secret_key in "
				       "[backup] of the config, or AWS_ACCESS_KEY_ID and "
				       "AWS_SECRET_ACCESS_KEY");
		return -EINVAL;
	}
	char ca_what[64];
	snprintf(ca_what, sizeof(ca_what), "%sca-file", opt);
	int rc = copy_setting(s3->endpoint, sizeof(s3->endpoint), endpoint, "the endpoint", why,
			      why_len);
	if (!rc)
		rc = copy_setting(s3->region, sizeof(s3->region), region, "the region", why,
				  why_len);
	if (!rc)
		rc = copy_setting(s3->access_key, sizeof(s3->access_key), access, "the access key",
				  why, why_len);
	if (!rc)
		rc = copy_setting(s3->secret_key, sizeof(s3->secret_key), secret, "the secret key",
				  why, why_len);
	if (!rc)
		rc = copy_setting(s3->session_token, sizeof(s3->session_token),
				  setting(cfg, NULL, "session_token", "AWS_SESSION_TOKEN"),
				  "the session token", why, why_len);
	if (!rc)
		rc = copy_setting(s3->ca_file, sizeof(s3->ca_file),
				  setting(cfg, o->ca_file, "ca_file", NULL), ca_what, why, why_len);
	return rc;
}

int backup_settings_resolve(struct cfg *cfg, const struct backup_settings *o,
			    struct s3_config *s3, struct backup_repo_params *p, char *why,
			    size_t why_len)
{
	const char *opt = o->option_prefix ? o->option_prefix : "--";
	memset(s3, 0, sizeof(*s3));
	memset(p, 0, sizeof(*p));
	const char *url = setting(cfg, o->repo, "repo", NULL);
	if (!url) {
		snprintf(why, why_len, "no backup repository: give %srepo s3://BUCKET/PREFIX or "
				       "repo = in [backup] of the config", opt);
		return -ENOENT;
	}
	p->url = url;
	p->key_file = setting(cfg, o->key_file, "key_file", NULL);
	p->parallel = o->parallel;
	p->zstd_level = o->zstd_level;
	int rc = s3_url_parse(url, s3->bucket, p->prefix, sizeof(p->prefix), why, why_len);
	if (!rc)
		rc = resolve_endpoint(cfg, o, opt, s3, why, why_len);
	if (rc)
		return rc;
	const char *addressing = setting(cfg, NULL, "addressing", NULL);
	s3->virtual_host = o->virtual_host ||
			   (!o->path_style && addressing && strcmp(addressing, "virtual") == 0);
	s3->insecure = o->insecure;
	if (!p->parallel) {
		const char *par = setting(cfg, NULL, "parallel", NULL);
		uint64_t v = 0;
		if (par && number_parse_u64(par, "parallel = in [backup]", 1, 64, &v, why,
					    why_len))
			return -EINVAL;
		p->parallel = (unsigned)v;
	}
	backup_store_s3(&p->store, s3);
	return 0;
}
