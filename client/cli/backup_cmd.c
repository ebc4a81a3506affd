/* basalt backup ...: parses, finds the repository (S3 settings from the
 * command line, then [backup] in the config, then the AWS_* environment),
 * calls client/backup/, and prints. Only create and restore talk to the
 * cluster; the rest need nothing but the bucket (and the key file). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/backup/backup.h"
#include "client/backup/backup_settings.h"
#include "client/backup/backup_volume.h"
#include "client/cli/cli.h"
#include "common/config.h"
#include "common/number.h"
#include "common/s3.h"

const char backup_usage[] =
	"usage: basalt backup key create FILE\n"
	"       basalt backup create VOL@SNAP --to s3://BUCKET/PREFIX\n"
	"       basalt backup ls [VOL] | info ID | verify ID [--deep] | rm ID\n"
	"       basalt backup restore ID --to VOL [--force] [--pool POOL]\n"
	"       basalt backup prune [--keep-last N] [--keep-hourly N] [--keep-daily N]\n"
	"                           [--keep-weekly N] [--keep-monthly N] [--volume VOL]\n"
	"                           [--grace DURATION] [--dry-run]\n"
	"\n"
	"The repository: --repo s3://BUCKET/PREFIX (create: --to), else repo = in\n"
	"[backup] of the config. S3 settings, each from the option, else [backup],\n"
	"else the environment:\n"
	"  --endpoint URL     endpoint = / AWS_ENDPOINT_URL (e.g. http://host:7480)\n"
	"  --region R         region = / AWS_REGION (default us-east-1)\n"
	"  access_key =, secret_key =, session_token = / AWS_ACCESS_KEY_ID,\n"
	"                     AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN\n"
	"  --virtual-host     addressing = virtual: BUCKET.HOST/KEY (default: path\n"
	"                     style, HOST/BUCKET/KEY, what self-hosted S3 expects)\n"
	"  --ca-file FILE     ca_file =: CAs to verify the endpoint's certificate with\n"
	"  --insecure         do not verify TLS certificates (never by default)\n"
	"  --key-file FILE    key_file =: encrypt (AES-256-GCM) with this key; needed\n"
	"                     for every command on an encrypted repository\n"
	"  --parallel N       parallel = : transfers at once, 1-64 (default 8)\n"
	"  --compression-level N   zstd level, 1-19 (default 1: on a 2-core\n"
	"                     server level 3 cost a quarter more time for 7% fewer bytes)\n"
	"\n"
	"prune keeps the newest backup of each of the last N hours/days/weeks/\n"
	"months (UTC, ISO weeks) and the last N, per volume; then deletes chunks\n"
	"no backup references once they have been unreferenced for the grace\n"
	"(--grace, default the repository's, 24h; a shorter one is safe only while\n"
	"no backup runs): run it regularly.\n";

struct backup_opts {
	const char *repo, *to, *endpoint, *region, *ca_file, *key_file, *pool, *volume;
	bool virtual_host, path_style, insecure, force, deep, dry_run;
	uint64_t parallel, level;
	struct backup_retention keep;
	bool keep_given;
	int64_t grace_s; /* -1: the repository's */
	int n_args;
	char **args;
};

enum {
	OPT_TO = 0x2000, OPT_REPO, OPT_ENDPOINT, OPT_REGION, OPT_VIRTUAL, OPT_PATH, OPT_CA,
	OPT_INSECURE, OPT_KEY, OPT_PARALLEL, OPT_LEVEL, OPT_FORCE, OPT_POOL, OPT_DEEP,
	OPT_DRY, OPT_VOLUME, OPT_GRACE, OPT_LAST, OPT_HOURLY, OPT_DAILY, OPT_WEEKLY, OPT_MONTHLY,
};

static int parse_keep(const char *text, const char *what, unsigned *out)
{
	char why[256];
	uint64_t v;
	if (number_parse_u64(text, what, 0, 100000, &v, why, sizeof(why)))
		return die_usage("%s", why);
	*out = (unsigned)v;
	return 0;
}

static int parse_one(struct backup_opts *o, int ch, const char *arg)
{
	char why[256];
	uint64_t ms;
	switch (ch) {
	case OPT_TO: o->to = arg; return 0;
	case OPT_REPO: o->repo = arg; return 0;
	case OPT_ENDPOINT: o->endpoint = arg; return 0;
	case OPT_REGION: o->region = arg; return 0;
	case OPT_VIRTUAL: o->virtual_host = true; return 0;
	case OPT_PATH: o->path_style = true; return 0;
	case OPT_CA: o->ca_file = arg; return 0;
	case OPT_INSECURE: o->insecure = true; return 0;
	case OPT_KEY: o->key_file = arg; return 0;
	case OPT_FORCE: o->force = true; return 0;
	case OPT_POOL: o->pool = arg; return 0;
	case OPT_DEEP: o->deep = true; return 0;
	case OPT_DRY: o->dry_run = true; return 0;
	case OPT_VOLUME: o->volume = arg; return 0;
	case OPT_PARALLEL:
		return number_parse_u64(arg, "--parallel", 1, 64, &o->parallel, why, sizeof(why))
			       ? die_usage("%s", why) : 0;
	case OPT_LEVEL:
		return number_parse_u64(arg, "--compression-level", 1, 19, &o->level, why,
					sizeof(why)) ? die_usage("%s", why) : 0;
	case OPT_GRACE:
		if (cfg_parse_duration_ms(arg, &ms))
			return die_usage("--grace '%s' is not a duration (like 30m, 24h, 0)", arg);
		o->grace_s = (int64_t)(ms / 1000);
		return 0;
	}
	o->keep_given = true;
	switch (ch) {
	case OPT_LAST: return parse_keep(arg, "--keep-last", &o->keep.last);
	case OPT_HOURLY: return parse_keep(arg, "--keep-hourly", &o->keep.hourly);
	case OPT_DAILY: return parse_keep(arg, "--keep-daily", &o->keep.daily);
	case OPT_WEEKLY: return parse_keep(arg, "--keep-weekly", &o->keep.weekly);
	case OPT_MONTHLY: return parse_keep(arg, "--keep-monthly", &o->keep.monthly);
	}
	return die_usage("%s", backup_usage);
}

/* ARGV[0] is the subcommand; options anywhere after it. */
static int parse_opts(int argc, char **argv, struct backup_opts *o)
{
	static const struct option opts[] = {
		{ "to", required_argument, NULL, OPT_TO },
		{ "repo", required_argument, NULL, OPT_REPO },
		{ "endpoint", required_argument, NULL, OPT_ENDPOINT },
		{ "region", required_argument, NULL, OPT_REGION },
		{ "virtual-host", no_argument, NULL, OPT_VIRTUAL },
		{ "path-style", no_argument, NULL, OPT_PATH },
		{ "ca-file", required_argument, NULL, OPT_CA },
		{ "insecure", no_argument, NULL, OPT_INSECURE },
		{ "key-file", required_argument, NULL, OPT_KEY },
		{ "parallel", required_argument, NULL, OPT_PARALLEL },
		{ "compression-level", required_argument, NULL, OPT_LEVEL },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "pool", required_argument, NULL, OPT_POOL },
		{ "deep", no_argument, NULL, OPT_DEEP },
		{ "dry-run", no_argument, NULL, OPT_DRY },
		{ "volume", required_argument, NULL, OPT_VOLUME },
		{ "grace", required_argument, NULL, OPT_GRACE },
		{ "keep-last", required_argument, NULL, OPT_LAST },
		{ "keep-hourly", required_argument, NULL, OPT_HOURLY },
		{ "keep-daily", required_argument, NULL, OPT_DAILY },
		{ "keep-weekly", required_argument, NULL, OPT_WEEKLY },
		{ "keep-monthly", required_argument, NULL, OPT_MONTHLY },
		{ NULL, 0, NULL, 0 },
	};
	memset(o, 0, sizeof(*o));
	o->grace_s = -1;
	optind = 0; /* GNU getopt: start over on this array */
	opterr = 0;
	int ch;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == '?')
			return die_usage("backup %s: unknown option or missing value '%s' (basalt "
					 "backup --help)", argv[0], argv[optind - 1]);
		int rc = parse_one(o, ch, optarg);
		if (rc)
			return rc;
	}
	o->args = argv + optind;
	o->n_args = argc - optind;
	return 0;
}

/* --- the repository ------------------------------------------------------------------ */

struct repo_ctx {
	struct s3_config s3;
	struct backup_repo *r;
};

/* Opens the repository URL names (CREATE: make it when it is new). */
static int repo_open(struct cli *c, const struct backup_opts *o, const char *url, bool create,
		     struct repo_ctx *rc_out)
{
	memset(rc_out, 0, sizeof(*rc_out));
	struct backup_settings set = {
		.repo = url, .endpoint = o->endpoint, .region = o->region,
		.ca_file = o->ca_file, .key_file = o->key_file, .virtual_host = o->virtual_host,
		.path_style = o->path_style, .insecure = o->insecure,
		.parallel = (unsigned)o->parallel, .zstd_level = (int)o->level,
		.option_prefix = "--",
	};
	struct backup_repo_params p;
	char why[1024];
	int rc = backup_settings_resolve(c->cfg, &set, &rc_out->s3, &p, why, sizeof(why));
	if (rc == -ENOENT)
		return die_usage("which repository? give --repo s3://BUCKET/PREFIX (create: --to) "
				 "or repo = in [backup] of the config");
	if (rc)
		return die_usage("%s", why);
	p.progress = !c->json && isatty(STDOUT_FILENO) && isatty(STDERR_FILENO);
	rc = backup_repo_open(&p, create, &rc_out->r, why, sizeof(why));
	return rc ? die_rc(rc, "%s", why) : 0;
}

/* --- printing ------------------------------------------------------------------------- */

static const char *size_text(uint64_t bytes, char *buf)
{
	return cfg_format_size(bytes, buf, 32);
}

static const char *time_text(int64_t t, char *buf)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(buf, 32, "%Y-%m-%d %H:%M:%SZ", &tm);
	return buf;
}

static json_t *summary_json(const struct backup_summary *s)
{
	return json_pack("{s:s, s:o, s:o, s:s?, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
			 "s:I, s:f}",
			 "id", s->id, "volume", jstr(s->volume), "snapshot", jstr(s->snapshot),
			 "parent", s->parent[0] ? s->parent : NULL, "size", (json_int_t)s->size,
			 "snap_time", (json_int_t)s->snap_time_s, "created",
			 (json_int_t)s->created_s, "chunks", (json_int_t)s->chunks, "data_bytes",
			 (json_int_t)s->data_bytes, "stored_bytes", (json_int_t)s->stored_bytes,
			 "read_bytes", (json_int_t)s->read_bytes, "uploaded_bytes",
			 (json_int_t)s->uploaded_bytes, "chunks_uploaded",
			 (json_int_t)s->chunks_uploaded, "snap_epoch", (json_int_t)s->snap_epoch,
			 "seconds", s->seconds);
}

/* --- the subcommands -------------------------------------------------------------------- */

static int backup_key(struct cli *c, const struct backup_opts *o)
{
	if (o->n_args != 2 || strcmp(o->args[0], "create") != 0)
		return die_usage("usage: basalt backup key create FILE");
	char why[512];
	int rc = backup_key_create(o->args[1], why, sizeof(why));
	if (rc)
		return die_rc(rc, "%s", why);
	if (c->json)
		return json_out(json_pack("{s:o}", "key_file", jstr(o->args[1])));
	printf("wrote a new backup key to %s\n"
	       "Keep a copy of it somewhere other than this cluster and the bucket: the backups\n"
	       "encrypted with it cannot be read without it.\n", o->args[1]);
	return 0;
}

static int create_print(struct cli *c, const struct backup_result *res)
{
	const struct backup_summary *s = &res->s;
	if (c->json) {
		json_t *doc = summary_json(s);
		if (doc && json_object_update_new(
				   doc, json_pack("{s:b, s:s, s:s, s:I, s:I, s:I}", "incremental",
						  res->incremental, "base_snapshot", res->base_snapshot,
						  "note", res->note, "chunks_examined",
						  (json_int_t)res->chunks_examined, "chunks_present",
						  (json_int_t)res->chunks_present, "requests",
						  (json_int_t)res->requests)))
			doc = NULL;
		return json_out(doc);
	}
	char a[32], b[32], d[32];
	printf("backup %s of %s@%s: %s\n", s->id, s->volume, s->snapshot,
	       res->incremental ? "incremental" : "full");
	if (res->note[0])
		printf("  (%s)\n", res->note);
	printf("  read %s, sent %s in %" PRIu64 " new chunk%s (%" PRIu64 " already there), "
	       "%.1f s\n", size_text(s->read_bytes, a), size_text(s->uploaded_bytes, b),
	       s->chunks_uploaded, s->chunks_uploaded == 1 ? "" : "s", res->chunks_present,
	       s->seconds);
	printf("  holds %s of data in %" PRIu64 " chunks (%s stored)\n",
	       size_text(s->data_bytes, d), s->chunks, size_text(s->stored_bytes, a));
	printf("keep snapshot %s@%s: the next backup of %s reads only what changed since it",
	       s->volume, s->snapshot, s->volume);
	if (res->incremental && strcmp(res->base_snapshot, s->snapshot) != 0)
		printf(" (%s@%s, the previous base, is no longer needed for backups)", s->volume,
		       res->base_snapshot);
	printf("\n");
	return 0;
}

static int backup_create_cmd(struct cli *c, struct tool *t, const char *mon, uint64_t timeout_s,
			     const struct backup_opts *o)
{
	struct bs_snap_spec spec;
	char why[1024];
	if (o->n_args != 1)
		return die_usage("usage: basalt backup create VOL@SNAP --to s3://BUCKET/PREFIX");
	if (bs_snap_spec_parse(o->args[0], &spec, why, sizeof(why)))
		return die_usage("%s", why);
	struct repo_ctx repo;
	int rc = cli_connect(c, t, mon, timeout_s);
	if (!rc)
		rc = repo_open(c, o, o->to ? o->to : o->repo, true, &repo);
	if (rc)
		return rc;
	if (!c->io && (rc = bs_sync_open(c->cfg, &c->data, &c->io, why, sizeof(why)))) {
		backup_repo_close(repo.r);
		return die_rc(rc, "%s", why);
	}
	struct bs_admin a;
	struct bs_admin_cluster k;
	snap_admin(c, &a, &k);
	struct backup_volume bv;
	struct backup_result res;
	rc = backup_volume_open_snap(&a, c->io, &spec, &bv, why, sizeof(why));
	if (!rc) {
		rc = backup_create(repo.r, &bv.src, &res, why, sizeof(why));
		backup_volume_close(&bv, true);
	}
	backup_repo_close(repo.r);
	return rc ? die_rc(rc, "%s", why) : create_print(c, &res);
}

static int ls_one(const struct backup_summary *s, void *arg)
{
	json_t *list = arg;
	if (list)
		return jpush(list, summary_json(s)) ? 0 : -ENOMEM;
	char t[32], d[32], u[32];
	printf("%-26s %-24s %-20s %10s %10s  %s\n", s->id,
	       s->volume, s->snapshot, size_text(s->data_bytes, d),
	       size_text(s->uploaded_bytes, u), time_text(s->snap_time_s, t));
	return 0;
}

static int backup_ls_cmd(struct cli *c, const struct backup_opts *o)
{
	if (o->n_args > 1)
		return die_usage("usage: basalt backup ls [VOL] [--repo URL]");
	struct repo_ctx repo;
	int rc = repo_open(c, o, o->repo, false, &repo);
	if (rc)
		return rc;
	json_t *list = c->json ? json_array() : NULL;
	if (!c->json)
		printf("%-26s %-24s %-20s %10s %10s  %s\n", "ID", "VOLUME", "SNAPSHOT", "DATA",
		       "SENT", "TAKEN");
	char why[1024];
	rc = backup_list(repo.r, o->n_args ? o->args[0] : NULL, ls_one, list, why, sizeof(why));
	backup_repo_close(repo.r);
	if (rc) {
		json_decref(list);
		return die_rc(rc, "%s", rc == -ENOMEM ? "out of memory" : why);
	}
	return c->json ? json_out(json_pack("{s:o}", "backups", list)) : 0;
}

static int backup_info_cmd(struct cli *c, const struct backup_opts *o)
{
	if (o->n_args != 1)
		return die_usage("usage: basalt backup info ID [--repo URL]");
	struct repo_ctx repo;
	int rc = repo_open(c, o, o->repo, false, &repo);
	if (rc)
		return rc;
	struct backup_summary s;
	char why[1024];
	rc = backup_info(repo.r, o->args[0], &s, why, sizeof(why));
	bool encrypted = backup_repo_encrypted(repo.r);
	backup_repo_close(repo.r);
	if (rc)
		return die_rc(rc, "%s", why);
	if (c->json) {
		json_t *doc = summary_json(&s);
		if (doc && json_object_set_new(doc, "encrypted", json_boolean(encrypted)))
			doc = NULL;
		return json_out(doc);
	}
	char a[32], b[32], t1[32], t2[32];
	printf("backup %s\n  volume %s, snapshot %s (taken %s), size %s\n", s.id, s.volume,
	       s.snapshot, time_text(s.snap_time_s, t1), size_text(s.size, a));
	printf("  %s: %" PRIu64 " chunks of 4 MiB hold %s, stored as %s%s\n",
	       s.parent[0] ? "incremental" : "full", s.chunks, size_text(s.data_bytes, a),
	       size_text(s.stored_bytes, b), encrypted ? " (encrypted)" : "");
	if (s.parent[0])
		printf("  parent %s\n", s.parent);
	printf("  made %s in %.1f s: read %s, sent %s\n", time_text(s.created_s, t2), s.seconds,
	       size_text(s.read_bytes, a), size_text(s.uploaded_bytes, b));
	return 0;
}

static int backup_restore_cmd(struct cli *c, struct tool *t, const char *mon,
			      uint64_t timeout_s, const struct backup_opts *o)
{
	if (o->n_args != 1 || !o->to)
		return die_usage("usage: basalt backup restore ID --to VOL [--force] [--pool POOL]");
	struct repo_ctx repo;
	char why[1024];
	int rc = cli_connect(c, t, mon, timeout_s);
	if (!rc)
		rc = repo_open(c, o, o->repo, false, &repo);
	if (rc)
		return rc;
	struct backup_summary s;
	rc = backup_info(repo.r, o->args[0], &s, why, sizeof(why));
	if (!rc && !c->io)
		rc = bs_sync_open(c->cfg, &c->data, &c->io, why, sizeof(why));
	struct bs_admin a;
	struct bs_admin_cluster k;
	snap_admin(c, &a, &k);
	struct backup_volume bv;
	if (!rc)
		rc = backup_volume_open_target(&a, c->io, o->to, s.size, o->pool, o->force, &bv, why,
					       sizeof(why));
	if (rc) {
		backup_repo_close(repo.r);
		return die_rc(rc, "%s", why);
	}
	struct backup_restore_result res;
	rc = backup_restore(repo.r, s.id, &bv.target, &res, why, sizeof(why));
	bool created = bv.created;
	backup_volume_close(&bv, rc == 0);
	backup_repo_close(repo.r);
	if (rc)
		return die_rc(rc, "restore of %s into %s failed: %s (%s)", s.id, o->to, why,
			      created ? "the new volume was removed"
				      : "the volume holds part of the backup now");
	if (c->json)
		return json_out(json_pack("{s:s, s:o, s:b, s:I, s:I, s:I, s:I, s:f}", "id", s.id,
					  "volume", jstr(o->to), "created", created, "chunks",
					  (json_int_t)res.chunks, "bytes_written",
					  (json_int_t)res.bytes_written, "bytes_zeroed",
					  (json_int_t)res.bytes_zeroed, "bytes_downloaded",
					  (json_int_t)res.bytes_downloaded, "seconds", res.seconds));
	char a1[32], a2[32];
	printf("restored backup %s (%s@%s) into %s volume %s: %" PRIu64
	       " chunks, %s written, %s downloaded, %.1f s\n", s.id, s.volume, s.snapshot,
	       created ? "new" : "existing", o->to, res.chunks, size_text(res.bytes_written, a1),
	       size_text(res.bytes_downloaded, a2), res.seconds);
	return 0;
}

static int verify_print(struct cli *c, const char *id, bool deep,
			const struct backup_verify_result *v)
{
	if (c->json) {
		json_t *bad = json_array();
		for (size_t i = 0; i < v->n_bad; i++) {
			char hex[65];
			number_hex_encode(v->bad[i].id, 32, hex);
			jpush(bad, json_pack("{s:s, s:I, s:I, s:s, s:o}", "chunk", hex, "offset",
					     (json_int_t)v->bad[i].offset, "length",
					     (json_int_t)v->bad[i].length, "errno",
					     strerrorname_np(-v->bad[i].rc), "error",
					     jstr(v->bad[i].why)));
		}
		return json_out(json_pack("{s:s, s:b, s:b, s:I, s:I, s:o, s:f}", "id", id, "deep",
					  deep, "ok", v->n_bad == 0, "chunks",
					  (json_int_t)v->chunks, "bytes_checked",
					  (json_int_t)v->bytes_checked, "bad", bad, "seconds",
					  v->seconds));
	}
	for (size_t i = 0; i < v->n_bad; i++) {
		char hex[65];
		number_hex_encode(v->bad[i].id, 32, hex);
		printf("BAD chunk %s: volume bytes %" PRIu64 "-%" PRIu64 ": %s\n", hex,
		       v->bad[i].offset, v->bad[i].offset + v->bad[i].length - 1, v->bad[i].why);
	}
	char a[32];
	printf("%s: %" PRIu64 " chunks %s (%s), %zu bad, %.1f s\n", id, v->chunks,
	       deep ? "downloaded, decrypted and hashed" : "present at their size",
	       size_text(v->bytes_checked, a), v->n_bad, v->seconds);
	return 0;
}

static int backup_verify_cmd(struct cli *c, const struct backup_opts *o)
{
	if (o->n_args != 1)
		return die_usage("usage: basalt backup verify ID [--deep] [--repo URL]");
	struct repo_ctx repo;
	int rc = repo_open(c, o, o->repo, false, &repo);
	if (rc)
		return rc;
	struct backup_verify_result v;
	char why[1024];
	rc = backup_verify(repo.r, o->args[0], o->deep, &v, why, sizeof(why));
	backup_repo_close(repo.r);
	if (rc && rc != -EBADMSG)
		return die_rc(rc, "%s", why);
	if (rc == -EBADMSG && v.n_bad == 0) /* the manifest itself */
		return die_rc(rc, "%s", why);
	verify_print(c, o->args[0], o->deep, &v);
	free(v.bad);
	return rc ? die_rc(rc, "%s", why) : 0;
}

static int backup_rm_cmd(struct cli *c, const struct backup_opts *o)
{
	if (o->n_args != 1)
		return die_usage("usage: basalt backup rm ID [--repo URL]");
	struct repo_ctx repo;
	int rc = repo_open(c, o, o->repo, false, &repo);
	if (rc)
		return rc;
	char why[1024];
	rc = backup_remove(repo.r, o->args[0], why, sizeof(why));
	backup_repo_close(repo.r);
	if (rc)
		return die_rc(rc, "%s", why);
	if (c->json)
		return json_out(json_pack("{s:s, s:b}", "id", o->args[0], "removed", 1));
	printf("removed backup %s (its chunks no other backup uses are freed by backup prune)\n",
	       o->args[0]);
	return 0;
}

static int prune_print(struct cli *c, const struct backup_prune_result *p, bool dry_run)
{
	size_t removed = 0;
	json_t *list = c->json ? json_array() : NULL;
	for (size_t i = 0; i < p->n; i++) {
		const struct backup_summary *s = &p->backups[i];
		removed += !p->keep[i];
		if (list)
			jpush(list, json_pack("{s:s, s:o, s:o, s:b}", "id", s->id, "volume",
					      jstr(s->volume), "snapshot", jstr(s->snapshot), "keep",
					      p->keep[i]));
		else
			printf("%s %s %s@%s\n", p->keep[i] ? "keep  " : (dry_run ? "would remove"
										  : "remove"),
			       s->id, s->volume, s->snapshot);
	}
	if (c->json)
		return json_out(json_pack("{s:b, s:o, s:I, s:I, s:I, s:I, s:I, s:I}", "dry_run",
					  dry_run, "backups", list, "removed", (json_int_t)removed,
					  "chunks_marked", (json_int_t)p->chunks_marked,
					  "chunks_deleted", (json_int_t)p->chunks_deleted,
					  "bytes_deleted", (json_int_t)p->bytes_deleted,
					  "chunks_kept_young", (json_int_t)p->chunks_kept_young,
					  "maps_deleted", (json_int_t)p->maps_deleted));
	char a[32];
	printf("%s%zu backup%s removed, %" PRIu64 " chunks (%s) deleted, %" PRIu64
	       " unreferenced chunks waiting out the grace\n", dry_run ? "dry run: " : "", removed,
	       removed == 1 ? "" : "s", p->chunks_deleted, size_text(p->bytes_deleted, a),
	       p->chunks_marked + p->chunks_kept_young);
	return 0;
}

static int backup_prune_cmd(struct cli *c, const struct backup_opts *o)
{
	if (o->n_args != 0)
		return die_usage("usage: basalt backup prune --keep-last N ... [--dry-run]");
	if (!o->keep_given)
		return die_usage("backup prune needs at least one --keep-* rule (it would remove "
				 "every backup); to remove one backup use backup rm ID");
	struct repo_ctx repo;
	int rc = repo_open(c, o, o->repo, false, &repo);
	if (rc)
		return rc;
	struct backup_prune_result p;
	char why[1024];
	int64_t grace = o->grace_s >= 0 ? o->grace_s : repo.r ? backup_repo_grace(repo.r) : 0;
	rc = backup_prune(repo.r, o->volume, &o->keep, grace, o->dry_run, &p, why, sizeof(why));
	backup_repo_close(repo.r);
	if (!rc)
		prune_print(c, &p, o->dry_run);
	free(p.backups);
	free(p.keep);
	return rc ? die_rc(rc, "%s", why) : 0;
}

int cmd_backup(struct cli *c, struct tool *t, const char *mon, uint64_t timeout_s, int argc,
	       char **argv)
{
	if (argc < 1)
		return die_usage("%s", backup_usage);
	struct backup_opts o;
	int rc = parse_opts(argc, argv, &o);
	if (rc)
		return rc;
	/* The config is optional for the bucket-only commands: [backup] may be
	 * in it, but a restore machine may have only the bucket's settings. */
	const char *sub = argv[0];
	bool cluster = strcmp(sub, "create") == 0 || strcmp(sub, "restore") == 0;
	char why[512];
	if (!cluster && strcmp(sub, "key") != 0 && tool_load(t, why, sizeof(why)) == 0)
		c->cfg = t->cfg;
	if (strcmp(sub, "key") == 0)
		return backup_key(c, &o);
	if (strcmp(sub, "create") == 0)
		return backup_create_cmd(c, t, mon, timeout_s, &o);
	if (strcmp(sub, "restore") == 0)
		return backup_restore_cmd(c, t, mon, timeout_s, &o);
	if (strcmp(sub, "ls") == 0)
		return backup_ls_cmd(c, &o);
	if (strcmp(sub, "info") == 0)
		return backup_info_cmd(c, &o);
	if (strcmp(sub, "verify") == 0)
		return backup_verify_cmd(c, &o);
	if (strcmp(sub, "rm") == 0)
		return backup_rm_cmd(c, &o);
	if (strcmp(sub, "prune") == 0)
		return backup_prune_cmd(c, &o);
	return die_usage("unknown backup command '%s'\n%s", sub, backup_usage);
}
