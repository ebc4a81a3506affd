/* basalt: the command line for operators.
 *
 *   basalt [-c CONF] [--keyring PATH] [--name ENTITY] [--json]
 *          [--mon NAME] [--timeout SECONDS] COMMAND ...
 *
 *   cluster init --mon HOST[:PORT] ... [--osd HOST[:PORT]=DEVICE ...]
 *                                a new cluster's config and keyring
 *   status                       the cluster at a glance
 *   mon ls                       monitors and which one leads
 *   osd ls | osd tree            OSDs (tree: by host)
 *   osd out|in|rm ID             take an OSD out of / into data placement, forget it
 *   osd set-nearfull-ratio|set-backfillfull-ratio|set-full-ratio RATIO
 *   pool create NAME [--size N] [--min-size N] [--pg-num N] [--block-size S]
 *   pool ls | pool rm NAME | pool set NAME size|min_size|pg_num|max_bytes VALUE
 *   volume create NAME --size SIZE [--pool POOL] | ls | info NAME | du [NAME]
 *   volume resize NAME SIZE [--allow-shrink]
 *   volume rm NAME | rename NAME NEW | snap create|rm NAME SNAP
 *   volume clone VOL@SNAP NEW [--pool POOL] | clone NAME SNAP NEW | flatten NAME
 *   snap create VOL@SNAP... | ls VOL | rm|rollback|protect|unprotect VOL@SNAP
 *   snap diff VOL@SNAP [VOL@SNAP]
 *   pg ls POOL [--inconsistent] | pg map POOL PG | pg scrub|deep-scrub|repair POOL.PG
 *   osd scrub ID [--deep]
 *   object put POOL OBJ FILE [--create] | get POOL OBJ [FILE] | rm POOL OBJ | stat | ls POOL
 *   auth add client.NAME [--caps CAPS] | auth ls | auth caps NAME CAPS | auth rm NAME
 *
 * Exit status 0 on success; otherwise one line on stderr (with --json a
 * JSON object: {"error": ..., "errno": ...}) and 1 when the command
 * failed, 2 when the command line was wrong (nothing was done). Every
 * --json document is built with jansson. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "client/cli/cli.h"
#include "client/status.h"
#include "client/volume_admin.h"
#include "common/config.h"
#include "common/ec.h"
#include "common/keyring.h"
#include "common/log.h"
#include "client/libbasalt.h"
#include "client/monc.h"
#include "common/cluster/osd_proto.h"
#include "common/cluster/tool.h"
#include "common/number.h"
#include "common/size.h"
#include "common/version.h"

/* The largest volume the map takes (mon/map.c checks it too). */
#define CLI_VOLUME_SIZE_MAX (1ULL << 60)

static const char usage_text[] =
	"usage: basalt [-c CONF] [--keyring PATH] [--name ENTITY] [--json]\n"
	"              [--mon NAME] [--timeout SECONDS] COMMAND ...\n"
	"\n"
	"commands:\n"
	"  cluster init --mon HOST[:PORT] ... [--osd HOST[:PORT]=DEVICE ...]\n"
	"               [--ms-mode crc|secure] [--data-dir DIR] [--metrics]\n"
	"                                  write a new cluster's config (-c CONF,\n"
	"                                  default /etc/basalt/basalt.conf) and\n"
	"                                  keyring beside it: a fresh fsid, monitors\n"
	"                                  a, b, c... (port 6789), OSDs 0, 1... (port\n"
	"                                  6800 up per host, failure domain: HOST),\n"
	"                                  keys for mon., client.admin and each OSD;\n"
	"                                  --metrics: a metrics_addr for each daemon\n"
	"                                  (HOST:9530 up monitors, 9540 up OSDs);\n"
	"                                  never replaces an existing file\n"
	"  status                          the cluster at a glance\n"
	"  mon ls                          monitors, and which one leads\n"
	"  osd ls                          OSDs: up/down, in/out, weight, host, address\n"
	"  osd tree                        OSDs by host\n"
	"  osd out ID | osd in ID          take an OSD out of (or back into) placement\n"
	"  osd rm ID                       forget a stopped OSD\n"
	"  osd set-nearfull-ratio R        fullness thresholds of every OSD's store\n"
	"  osd set-backfillfull-ratio R    (defaults 0.85, 0.90, 0.95): nearfull warns,\n"
	"  osd set-full-ratio R            backfillfull stops recovery moving data to\n"
	"                                  an OSD, full refuses client writes (deletes\n"
	"                                  and trims go on) until space is freed\n"
	"  pool create NAME [--size N | --ec K+M] [--min-size N] [--pg-num N]\n"
	"                   [--block-size SIZE]\n"
	"                                  replicated (default size 3, min-size 2), or\n"
	"                                  erasure-coded: K data and M parity chunks on\n"
	"                                  K+M hosts (2+1 on three, 4+2 on six; min-size\n"
	"                                  default K+1); pg-num default 128; block 128K,\n"
	"                                  erasure-coded K x 128K (one 128K chunk each)\n"
	"  pool ls                         pools\n"
	"  pool rm NAME                    remove an empty pool\n"
	"  pool set NAME size|min_size|pg_num VALUE\n"
	"  pool set NAME max_bytes SIZE    a quota on what the pool stores (one copy),\n"
	"                                  e.g. 100G; 0 for none: writes past it are\n"
	"                                  refused with ENOSPC, deletes go on\n"
	"  volume create NAME --size SIZE [--pool POOL]\n"
	"                                  a thin volume (pool default rbd), e.g. 10G\n"
	"  volume ls | volume info NAME    volumes; one with its snapshots and the\n"
	"                                  space its data uses\n"
	"  volume du [NAME]                space of each volume (or one): provisioned,\n"
	"                                  what the live volume references and holds\n"
	"                                  alone, what only snapshots hold, shared,\n"
	"                                  stored (one copy, bytes written) and raw\n"
	"                                  (every copy or chunk); each snapshot's\n"
	"                                  referenced and exclusive bytes\n"
	"  volume resize NAME SIZE [--allow-shrink]\n"
	"                                  grow; or shrink (only with --allow-shrink,\n"
	"                                  never while locked) and free the cut-off blocks\n"
	"  volume rm NAME                  free every block, then forget the volume\n"
	"  volume rename NAME NEW\n"
	"  volume unlock NAME --force      take the exclusive lock from whoever holds\n"
	"                                  it, fencing that client: the OSDs refuse\n"
	"                                  everything it sends from then on\n"
	"  snap create VOL@SNAP [VOL@SNAP ...]\n"
	"                                  snapshots taken at one instant (up to 16\n"
	"                                  volumes: a VM's disks); crash consistent,\n"
	"                                  while the volumes are written\n"
	"  snap ls VOL                     snapshots with the space each references\n"
	"                                  and holds alone (what snap rm frees)\n"
	"  snap rm VOL@SNAP                remove one (any, in any order); its space\n"
	"                                  is free when the command returns\n"
	"  snap rollback VOL@SNAP          make the volume what the snapshot holds\n"
	"                                  (size too); refused while it is locked\n"
	"  snap protect|unprotect VOL@SNAP a protected snapshot can be cloned and\n"
	"                                  cannot be removed\n"
	"  snap diff VOL@SNAP [VOL@SNAP]   what changed from an older snapshot to a\n"
	"                                  newer one or to the live volume: extents\n"
	"                                  (OFFSET LENGTH data|zero, whole objects)\n"
	"                                  from metadata alone, no data read\n"
	"  volume snap create|rm NAME SNAP the same as snap create|rm NAME@SNAP\n"
	"  volume clone VOL@SNAP NEW [--pool POOL]\n"
	"                                  a new volume reading a protected snapshot\n"
	"                                  where it has not written (also: volume\n"
	"                                  clone VOL SNAP NEW)\n"
	"  volume flatten NAME             copy in what a clone reads from its parent\n"
	"                                  and forget the parent\n"
	"  object put POOL OBJ FILE [--create] | object get POOL OBJ [FILE]\n"
	"  object rm POOL OBJ              (--create: only if it does not exist yet)\n"
	"  object stat POOL OBJ | object ls POOL\n"
	"                                  objects (OBJ is INODE:INDEX in hex, up to\n"
	"                                  1 MiB, stored in 4 KiB units), replicated\n"
	"                                  like every write\n"
	"  pg ls POOL | pg map POOL PG     where placement puts a pool's groups:\n"
	"                                  up (placed) and acting (up) OSDs, primary,\n"
	"                                  state, last scrub, bad copies found/repaired\n"
	"  pg ls POOL --inconsistent       PGs with objects no good copy is left of,\n"
	"                                  naming them\n"
	"  pg scrub|deep-scrub|repair POOL.PG [--wait]\n"
	"                                  read every copy of the PG's objects and\n"
	"                                  check it (deep: compare the copies too);\n"
	"                                  a bad copy is repaired from a good one\n"
	"                                  (repair is a deep scrub); --wait until done\n"
	"  osd scrub ID [--deep]           scrub every PG the OSD is primary of\n"
	"  auth add client.NAME [--caps CAPS]\n"
	"                                  a key for a client, printed once as a\n"
	"                                  keyring section (made by the monitors, sent\n"
	"                                  sealed); CAPS (default 'mon=r osd=rw') are\n"
	"                                  grants: admin | mon=r | mon=rw (change the\n"
	"                                  map; keys need admin) | osd=r | osd=rw, an\n"
	"                                  osd grant optionally scoped by pool=GLOB\n"
	"                                  and volume=GLOB, e.g.\n"
	"                                  'mon=r osd=rw pool=vms osd=r volume=web-*'\n"
	"  auth rotate client.NAME [--grace 10m]\n"
	"                                  a new key, printed once; the previous one\n"
	"                                  stays valid for the grace, then its\n"
	"                                  connections are closed\n"
	"  auth ls | auth caps client.NAME CAPS | auth rm client.NAME\n"
	"  backup key create FILE          a new key for encrypted backups (keep a copy\n"
	"                                  away from the cluster: without it they are lost)\n"
	"  backup create VOL@SNAP --to s3://BUCKET/PREFIX [--key-file FILE]\n"
	"                                  back a snapshot up: changed 4 MiB chunks only\n"
	"                                  after the first (incremental from the last\n"
	"                                  backup's snapshot: keep it), compressed,\n"
	"                                  deduplicated, encrypted with --key-file\n"
	"  backup ls [VOL] | backup info ID     backups in the repository (--repo URL)\n"
	"  backup restore ID --to VOL [--force] [--pool POOL]\n"
	"                                  into a new volume (or over one: --force)\n"
	"  backup verify ID [--deep]       every chunk there; --deep: read and hash each\n"
	"  backup rm ID                    remove one (its chunks go at the next prune)\n"
	"  backup prune --keep-last N [--keep-hourly|daily|weekly|monthly N] [--dry-run]\n"
	"                                  apply retention, then free unreferenced chunks\n"
	"                                  (basalt backup --help: S3 options, config)\n"
	"  blocklist ls                    fenced client instances\n"
	"  blocklist rm CLIENT             forget one (only once it has stopped)\n"
	"\n"
	"options:\n"
	TOOL_OPTIONS_HELP
	"  --json           machine-readable output\n"
	"  --mon NAME       ask this monitor (reads; commands still go to the leader)\n"
	"  --timeout S      give up after S seconds, 1 to 86400 (default 30)\n"
	"  --help, -h       this help; basalt help COMMAND or basalt COMMAND --help:\n"
	"                   that command's\n"
	"  --version        the version\n"
	"\n"
	"SIZE: " SIZE_GRAMMAR ".\n"
	"Exit status: 0 success, 1 the command failed, 2 a usage error (nothing was\n"
	"done).\n";

bool json_mode;

/* S as a JSON string. JSON is UTF-8: a byte that is not (a host name or
 * a lock owner may hold anything) becomes '?'; NULL is "". */
json_t *jstr(const char *s)
{
	json_t *j = json_string(s ? s : "");
	if (j || !s)
		return j;
	char *copy = strdup(s);
	if (!copy)
		return NULL;
	for (char *p = copy; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	j = json_string(copy);
	free(copy);
	return j;
}

/* One line on stderr; with --json {"error": TEXT, "errno": "ENAME"}
 * (ERR a negative errno), so a script reads a failure as JSON too.
 * Returns STATUS, the exit status. Through the three below. */
int die_as(int status, int err, const char *fmt, ...)
{
	char text[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	const char *name = err ? strerrorname_np(-err) : NULL;
	json_t *doc = json_mode ? json_pack("{s:o, s:s?}", "error", jstr(text), "errno", name)
				: NULL;
	if (doc && json_dumpf(doc, stderr, JSON_INDENT(0)) == 0)
		fputc('\n', stderr);
	else
		fprintf(stderr, "basalt: %s\n", text);
	json_decref(doc);
	return status;
}

/* TEXT as a size for WHAT (size.h's grammar) within MIN..MAX: 0, or 2
 * after saying why. */
static int cli_size(const char *text, const char *what, uint64_t min, uint64_t max,
		    uint64_t *out /* out */)
{
	char why[512];
	if (size_parse_range(text, what, min, max, out, why, sizeof(why)))
		return die_usage("%s", why);
	return 0;
}

/* TEXT as a whole number for WHAT, at most UINT32_MAX (the map checks
 * the real limits): 0, or 2 after saying why. */
static int cli_count(const char *text, const char *what, uint32_t *out /* out */)
{
	char why[256];
	uint64_t v;
	if (number_parse_u64(text, what, 0, UINT32_MAX, &v, why, sizeof(why)))
		return die_usage("%s", why);
	*out = (uint32_t)v;
	return 0;
}

/* A warning beside a result: "basalt: warning: ..." or {"warning": ...}. */
void warn(const char *text)
{
	json_t *doc = json_mode ? json_pack("{s:o}", "warning", jstr(text)) : NULL;
	if (doc && json_dumpf(doc, stderr, JSON_INDENT(0)) == 0)
		fputc('\n', stderr);
	else
		fprintf(stderr, "basalt: warning: %s\n", text);
	json_decref(doc);
}

/* Prints DOC on one line, laid out as before jansson ({"a": 1, "b": [2,
 * 3]}), and frees it. DOC NULL: building it ran out of memory. */
int json_out(json_t *doc)
{
	if (!doc)
		return die_rc(-ENOMEM, "out of memory building the JSON output");
	errno = 0; /* what a failed write sets is the reason given */
	int rc = json_dumpf(doc, stdout, JSON_INDENT(0) | JSON_REAL_PRECISION(6));
	json_decref(doc);
	if (!rc && putchar('\n') != EOF && fflush(stdout) == 0)
		return 0;
	int err = errno ? errno : EIO;
	return die_rc(-err, "cannot write the output: %s", strerror(err));
}

/* Appends V to array A (takes ownership of V); false when either is
 * NULL (out of memory), which json_out then reports. */
bool jpush(json_t *a, json_t *v)
{
	return a && v && json_array_append_new(a, v) == 0;
}

/* DOC when every part of it was built (OK), else NULL, freeing it:
 * json_out then says it ran out of memory rather than print a part. */
static json_t *jkeep(json_t *doc, bool ok)
{
	if (ok)
		return doc;
	json_decref(doc);
	return NULL;
}

/* V rounded to PLACES decimals (at most 6): the values the documents
 * printed with "%.4f" before jansson, so a script reads the same number. */
static double decimals(double v, int places)
{
	double scale = 1;
	while (places-- > 0)
		scale *= 10;
	return (double)(int64_t)(v * scale + (v < 0 ? -0.5 : 0.5)) / scale;
}

/* "1 snapshot", "2 snapshots". */
static const char *plural(unsigned n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

static int get_map(struct cli *c, struct cluster_map *m, bool *stale, char *leader, size_t len)
{
	char text[1024];
	memset(m, 0, sizeof(*m));
	int rc = monc_get_map(c->mc, c->mon, m, stale, text, sizeof(text));
	if (rc == -EACCES || rc == -ETIMEDOUT || rc == -ECONNREFUSED)
		return die_rc(rc, "%s", text); /* names the monitors and what each did */
	if (rc)
		return die_rc(rc, "no map from the monitors: %s", strerror(-rc));
	size_t n = strnlen(text, len - 1); /* a monitor name: it fits */
	memcpy(leader, text, n);
	leader[n] = '\0';
	if (*stale)
		warn("the monitor has no quorum; this map may be stale");
	return 0;
}

/* "3 h", "2 d": how long before NOW_S the unix time THEN_S is. */
static const char *ago_text(uint64_t now_s, uint64_t then_s, char *buf, size_t len)
{
	uint64_t d = now_s > then_s ? now_s - then_s : 0;
	if (d < 120)
		snprintf(buf, len, "%" PRIu64 " s", d);
	else if (d < 7200)
		snprintf(buf, len, "%" PRIu64 " min", d / 60);
	else if (d < 172800)
		snprintf(buf, len, "%" PRIu64 " h", d / 3600);
	else
		snprintf(buf, len, "%" PRIu64 " d", d / 86400);
	return buf;
}

static int run_command(struct cli *c, struct map_cmd *cmd)
{
	char text[1024];
	uint64_t epoch = 0;
	int rc = monc_command(c->mc, cmd, text, sizeof(text), &epoch);
	if (rc == -ETIMEDOUT)
		return die_rc(rc, "%s (is a majority of monitors up?)", text);
	if (rc)
		return die_rc(rc, "%s", text);
	if (c->json)
		return json_out(json_pack("{s:o, s:I}", "result", jstr(text), "epoch", (json_int_t)epoch));
	else
		printf("%s (map epoch %" PRIu64 ")\n", text, epoch);
	return 0;
}

/* --- status and monitors ---------------------------------------------------- */

/* The health rules and the sums behind status live in client/status.c;
 * this prints them. */


/* Why each incomplete PG waits: the OSDs of its last activation record,
 * one of which must come back (at most 8 PGs listed). */
static void print_incomplete(const struct cluster_map *m, const struct mon_osd_stats *pgs,
			     bool have)
{
	unsigned shown = 0, total = 0;
	for (uint32_t i = 0; have && i < pgs->n_pgs; i++) {
		const struct mon_pg_stat *p = &pgs->pgs[i];
		if (!(p->state & MON_PG_INCOMPLETE) || total++ >= 8)
			continue;
		const struct map_pg_active *a = map_pg_active_get(m, p->pool, p->pg);
		printf("  pg %u.%x incomplete: waits for one of", p->pool, p->pg);
		for (uint32_t k = 0; a && k < a->n; k++) {
			uint32_t id = a->osds[k];
			bool up = id < m->n_osds && m->osds[id].exists && m->osds[id].up;
			printf("%s osd.%u (%s)", k ? "," : "", id,
			       !(id < m->n_osds && m->osds[id].exists) ? "removed" : up ? "up, not ready"
											   : "down");
		}
		printf(", which hold its newest writes\n");
		shown++;
	}
	if (total > shown)
		printf("  ... and %u more incomplete PGs\n", total - shown);
}


/* A pool's space: what its volumes were given, what it holds (one copy;
 * of an EC pool, what its chunks hold), and what it can still take before
 * its first OSD reaches the full
 * ratio — placement spreads copies by weight, so an OSD with a share w
 * of the weight fills at w of the pool's raw writes (an estimate, as
 * Ceph's MAX AVAIL) — within its quota. */
struct pool_space {
	uint64_t provisioned, stored, available;
	uint64_t raw; /* what the stored bytes take on the OSDs: every copy, or chunk */
};

static void pool_space(const struct cluster_map *m, const struct map_pool *p,
		       const struct mon_osd_stats *pgs, struct pool_space *out)
{
	memset(out, 0, sizeof(*out));
	for (uint32_t i = 0; i < m->n_volumes; i++)
		if (m->volumes[i].pool == p->id)
			out->provisioned += m->volumes[i].size;
	for (uint32_t i = 0; i < pgs->n_pgs; i++)
		if (pgs->pgs[i].pool == p->id)
			out->stored += map_pool_stored_bytes(p, pgs->pgs[i].bytes);
	out->raw = map_pool_raw_bytes(p, out->stored);
	double weights = 0, raw = -1;
	for (uint32_t i = 0; i < m->n_osds; i++)
		if (m->osds[i].exists && m->osds[i].in)
			weights += m->osds[i].weight;
	for (uint32_t i = 0; i < m->n_osds && weights > 0; i++) {
		const struct mon_osd_usage *u = bs_status_osd_usage(pgs, i);
		if (!m->osds[i].exists || !m->osds[i].in || !m->osds[i].weight || !u)
			continue;
		double used = (double)(u->data_bytes - u->data_avail_bytes);
		double room = (double)u->data_bytes * m->full_ratio / MAP_RATIO_ONE - used;
		double fill = room > 0 ? room / (m->osds[i].weight / weights) : 0;
		if (raw < 0 || fill < raw)
			raw = fill;
	}
	out->available = raw > 0 ? (uint64_t)(raw / map_pool_raw_per_byte(p)) : 0;
	if (p->max_bytes)
		out->available = out->stored >= p->max_bytes ? 0
			       : out->available < p->max_bytes - out->stored ? out->available
									     : p->max_bytes - out->stored;
}

static json_t *fullness_osds_json(const struct cluster_map *m, const struct mon_osd_stats *pgs)
{
	json_t *osds = json_array();
	for (uint32_t i = 0; i < m->n_osds; i++) {
		const struct mon_osd_usage *u = bs_status_osd_usage(pgs, i);
		if (!m->osds[i].exists)
			continue;
		json_t *o = json_pack("{s:I, s:s}", "id", (json_int_t)i, "state",
				      map_full_state_name(m->osds[i].full));
		if (o && u)
			json_object_update_new(
				o, json_pack("{s:f, s:I, s:I, s:I, s:I, s:o}", "used_ratio",
					     mon_osd_usage_ratio(u) / 1e4, "data_bytes",
					     (json_int_t)u->data_bytes, "available_bytes",
					     (json_int_t)u->data_avail_bytes, "slow_ops",
					     (json_int_t)u->slow_ops, "slow_oldest_ms",
					     (json_int_t)u->slow_oldest_ms, "slow_waiting_for",
					     jstr(u->slow_what)));
		if (!jpush(osds, o)) {
			json_decref(osds);
			return NULL;
		}
	}
	return osds;
}

static json_t *pool_usage_json(const struct cluster_map *m, const struct mon_osd_stats *pgs)
{
	json_t *pools = json_array();
	for (uint32_t i = 0; i < m->n_pools; i++) {
		struct pool_space ps;
		const struct map_pool *p = &m->pools[i];
		pool_space(m, p, pgs, &ps);
		double overcommit = ps.stored + ps.available
					    ? (double)ps.provisioned / (double)(ps.stored + ps.available)
					    : 0.0;
		if (!jpush(pools, json_pack("{s:o, s:I, s:I, s:I, s:I, s:I, s:f, s:b}", "name",
					    jstr(p->name), "stored_bytes", (json_int_t)ps.stored,
					    "raw_bytes", (json_int_t)ps.raw,
					    "available_bytes", (json_int_t)ps.available,
					    "provisioned_bytes", (json_int_t)ps.provisioned,
					    "max_bytes", (json_int_t)p->max_bytes, "overcommit",
					    decimals(overcommit, 3), "full", map_pool_full(m, p, NULL, 0)))) {
			json_decref(pools);
			return NULL;
		}
	}
	return pools;
}

static void print_fullness_text(const struct cluster_map *m, const struct mon_osd_stats *pgs)
{
	/* The 8 fullest OSDs. */
	uint32_t ids[8];
	unsigned n = 0;
	for (uint32_t i = 0; i < m->n_osds; i++) {
		const struct mon_osd_usage *u = bs_status_osd_usage(pgs, i);
		if (!u || !u->data_bytes)
			continue;
		unsigned k = n < 8 ? n++ : 8;
		while (k > 0 && mon_osd_usage_ratio(bs_status_osd_usage(pgs, ids[k - 1])) < mon_osd_usage_ratio(u)) {
			if (k < 8)
				ids[k] = ids[k - 1];
			k--;
		}
		if (k < 8)
			ids[k] = i;
	}
	if (n) {
		printf("  fullness:");
		for (unsigned k = 0; k < n; k++) {
			const struct mon_osd_usage *u = bs_status_osd_usage(pgs, ids[k]);
			printf("%s osd.%u %.1f%%", k ? "," : "", ids[k], mon_osd_usage_ratio(u) / 100.0);
			if (m->osds[ids[k]].full)
				printf(" (%s)", map_full_state_name(m->osds[ids[k]].full));
		}
		printf("%s; nearfull %g, backfillfull %g, full %g\n",
		       pgs->n_osds > n ? " ..." : "", m->nearfull_ratio / 1e4,
		       m->backfillfull_ratio / 1e4, m->full_ratio / 1e4);
	}
	for (uint32_t i = 0; i < m->n_pools; i++) {
		struct pool_space ps;
		const struct map_pool *p = &m->pools[i];
		char a[32], b[32], c[32], r[32], q[48] = "";
		pool_space(m, p, pgs, &ps);
		if (p->max_bytes) {
			char qb[32];
			snprintf(q, sizeof(q), ", quota %s", cfg_format_size(p->max_bytes, qb, sizeof(qb)));
		}
		printf("  pool %s: %s stored (%s raw, %gx), %s available, %s provisioned", p->name,
		       cfg_format_size(ps.stored, a, sizeof(a)), cfg_format_size(ps.raw, r, sizeof(r)),
		       map_pool_raw_per_byte(p),
		       cfg_format_size(ps.available, b, sizeof(b)),
		       cfg_format_size(ps.provisioned, c, sizeof(c)));
		if (ps.stored + ps.available)
			printf(" (%.1fx overcommitted)",
			       (double)ps.provisioned / (double)(ps.stored + ps.available));
		printf("%s%s\n", q, map_pool_full(m, p, NULL, 0) ? "; FULL: writes refused" : "");
	}
}

static json_t *status_mon_json(const struct bs_status *st)
{
	json_t *quorum = json_array(), *members = json_array();
	for (int i = 0; i < st->n_members; i++) {
		if ((st->quorum_mask & (1u << i)) && !jpush(quorum, jstr(st->members[i].name)))
			break;
		if (!jpush(members, jstr(st->members[i].name)))
			break;
	}
	return json_pack("{s:o, s:o, s:o}", "leader", jstr(st->leader), "quorum", quorum,
			 "members", members);
}

/* "health" stays the one line scripts compare; "health_level" and
 * "health_reasons" give the same verdict piece by piece. */
static json_t *status_health_json(const struct bs_status *st, json_t *doc)
{
	char line[BS_HEALTH_REASONS_MAX * 256];
	json_t *reasons = json_array();
	for (unsigned i = 0; i < st->n_reasons; i++)
		if (!jpush(reasons, json_pack("{s:s, s:o}", "level",
					      bs_health_level_name(st->reasons[i].level), "text",
					      jstr(st->reasons[i].text))))
			break;
	json_object_set_new(doc, "health",
			    jstr(bs_status_health_line(st, line, sizeof(line))));
	json_object_set_new(doc, "health_level", json_string(bs_health_level_name(st->health)));
	json_object_set_new(doc, "health_reasons", reasons);
	return doc;
}

static int status_json(const struct bs_status *st)
{
	const struct cluster_map *m = &st->map;
	const struct bs_pg_summary *s = &st->sum;
	char fsid[33];
	number_hex_encode(m->fsid, 16, fsid);
	json_t *doc = json_pack("{s:s, s:I, s:b, s:o}", "fsid", fsid, "epoch", (json_int_t)m->epoch,
				"stale", st->stale, "mon", status_mon_json(st));
	if (!doc)
		return json_out(NULL);
	status_health_json(st, doc);
	json_t *pgs = json_pack("{s:I}", "total", (json_int_t)(st->have_pgs ? st->pgs.n_pgs : 0));
	for (uint32_t i = 0; pgs && i < s->n_states; i++) {
		char name[128];
		json_object_set_new(pgs, mon_pg_state_name(s->states[i], name, sizeof(name)),
				    json_integer(s->counts[i]));
	}
	json_object_update_new(
		doc, json_pack("{s:{s:I, s:I, s:I}, s:I, s:I, s:o}", "osd", "total",
			       (json_int_t)st->osds_total, "up", (json_int_t)st->osds_up, "in",
			       (json_int_t)st->osds_in, "pools", (json_int_t)m->n_pools, "volumes",
			       (json_int_t)m->n_volumes, "pgs", pgs));
	json_object_update_new(
		doc, json_pack("{s:{s:I, s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:I}}", "usage",
			       "total_bytes", (json_int_t)st->capacity_bytes, "used_bytes",
			       (json_int_t)st->pgs.used_bytes, "stored_bytes",
			       (json_int_t)s->stored_bytes, "objects", (json_int_t)s->objects,
			       "recovery", "degraded_copies", (json_int_t)s->degraded, "objects_left",
			       (json_int_t)s->missing, "recovered_objects",
			       (json_int_t)st->pgs.recovered_objects, "recovered_bytes",
			       (json_int_t)st->pgs.recovered_bytes));
	json_object_update_new(
		doc, json_pack("{s:{s:f, s:f, s:f, s:o}, s:o}", "fullness", "nearfull_ratio",
			       m->nearfull_ratio / 1e4, "backfillfull_ratio",
			       m->backfillfull_ratio / 1e4, "full_ratio", m->full_ratio / 1e4, "osds",
			       fullness_osds_json(m, &st->pgs), "pool_usage",
			       pool_usage_json(m, &st->pgs)));
	json_object_update_new(
		doc, json_pack("{s:{s:I, s:I, s:I, s:I, s:I}}", "scrub", "scrubbing",
			       (json_int_t)s->scrubbing, "oldest_scrub", (json_int_t)s->oldest_scrub_s,
			       "bad_copies_found", (json_int_t)s->bad_found, "bad_copies_repaired",
			       (json_int_t)s->bad_repaired, "unfound", (json_int_t)s->unfound));
	/* A part that could not be built is missing: say so rather than
	 * print a document that lies by omission. */
	if (!json_object_get(doc, "scrub") || !json_object_get(doc, "fullness") ||
	    !json_object_get(doc, "usage") || !json_object_get(doc, "osd")) {
		json_decref(doc);
		doc = NULL;
	}
	return json_out(doc);
}

static void status_text_pgs(const struct bs_status *st)
{
	const struct bs_pg_summary *s = &st->sum;
	if (st->have_pgs && st->pgs.n_pgs) {
		printf("  pgs:      %u:", st->pgs.n_pgs);
		for (uint32_t i = 0; i < s->n_states; i++) {
			char name[128];
			printf("%s %u %s", i ? "," : "", s->counts[i],
			       mon_pg_state_name(s->states[i], name, sizeof(name)));
		}
		printf("\n");
	}
	if (st->have_pgs)
		printf("  usage:    %.1f MiB used of %.1f GiB, %.1f MiB stored in %" PRIu64
		       " objects\n",
		       st->pgs.used_bytes / 1048576.0, st->pgs.device_bytes / 1073741824.0,
		       s->stored_bytes / 1048576.0, s->objects);
	if (st->have_pgs)
		print_fullness_text(&st->map, &st->pgs);
	if (st->have_pgs && (s->oldest_scrub_s || s->scrubbing)) {
		char ago[48] = "none yet";
		if (s->oldest_scrub_s) {
			char t[32];
			snprintf(ago, sizeof(ago), "%s ago",
				 ago_text((uint64_t)time(NULL), s->oldest_scrub_s, t, sizeof(t)));
		}
		printf("  scrub:    %u PGs scrubbing; the oldest PG's last scrub: %s; %" PRIu64
		       " bad copies found, %" PRIu64 " repaired\n",
		       s->scrubbing, ago, s->bad_found, s->bad_repaired);
	}
	print_incomplete(&st->map, &st->pgs, st->have_pgs);
	if (s->missing || s->degraded)
		printf("  recovery: %" PRIu64 " objects left, %" PRIu64
		       " object copies missing; %" PRIu64 " objects (%.1f MiB) recovered so far\n",
		       s->missing, s->degraded, st->pgs.recovered_objects,
		       st->pgs.recovered_bytes / 1048576.0);
}

static void status_text(const struct bs_status *st)
{
	char fsid[33], line[BS_HEALTH_REASONS_MAX * 256];
	number_hex_encode(st->map.fsid, 16, fsid);
	printf("  cluster:  %s\n  health:   %s\n", fsid, bs_status_health_line(st, line, sizeof(line)));
	printf("  mon:      %d monitors, leader %s, quorum", st->n_members,
	       st->leader[0] ? st->leader : "none");
	for (int i = 0, k = 0; i < st->n_members; i++)
		if (st->quorum_mask & (1u << i))
			printf("%s%s", k++ ? "," : " ", st->members[i].name);
	printf("\n  osd:      %u total, %u up, %u in; %.1f GiB in\n", st->osds_total, st->osds_up,
	       st->osds_in, st->capacity_bytes / 1073741824.0);
	printf("  pools:    %u, volumes: %u\n", st->map.n_pools, st->map.n_volumes);
	status_text_pgs(st);
	printf("  map:      epoch %" PRIu64 "\n", st->map.epoch);
}

static int cmd_status(struct cli *c)
{
	struct cluster_map m;
	bool stale;
	char leader[64];
	if (get_map(c, &m, &stale, leader, sizeof(leader)))
		return 1;
	struct bs_status *st;
	int rc = bs_status_assemble(c->mc, &m, stale, leader, &st);
	if (rc) {
		map_free(&m);
		return die_rc(rc, "cannot assemble the status: %s", strerror(-rc));
	}
	if (c->json)
		rc = status_json(st);
	else
		status_text(st);
	bs_status_free(st);
	return rc;
}

static int cmd_mon_ls(struct cli *c)
{
	int n;
	const struct mon_member *members = monc_members(c->mc, &n);
	json_t *list = c->json ? json_array() : NULL;
	for (int i = 0; i < n; i++) {
		struct mon_status st;
		int rc = monc_status(c->mc, i, &st);
		const char *role = rc ? "unreachable" : mon_role_name(st.role);
		if (c->json) {
			char addr[96];
			snprintf(addr, sizeof(addr), "%s:%u", members[i].host, members[i].port);
			json_t *o = json_pack("{s:o, s:o, s:s}", "name", jstr(members[i].name), "addr",
					      jstr(addr), "state", role);
			if (o && !rc)
				json_object_update_new(o, json_pack("{s:I, s:I, s:o}", "term",
								    (json_int_t)st.term, "epoch",
								    (json_int_t)st.epoch, "leader",
								    jstr(st.leader)));
			jpush(list, o);
		} else if (rc) {
			printf("mon.%-8s %s:%u  unreachable\n", members[i].name, members[i].host,
			       members[i].port);
		} else {
			printf("mon.%-8s %s:%u  %-9s term %" PRIu64 "  map epoch %" PRIu64 "\n",
			       members[i].name, members[i].host, members[i].port, role, st.term,
			       st.epoch);
		}
	}
	if (c->json)
		return json_out(jkeep(list, json_array_size(list) == (size_t)n));
	return 0;
}

/* --- OSDs ---------------------------------------------------------------------- */

static json_t *osd_json(const struct cluster_map *m, uint32_t id)
{
	const struct map_osd *o = &m->osds[id];
	return json_pack("{s:I, s:b, s:b, s:f, s:o, s:o, s:I}", "id", (json_int_t)id, "up", o->up,
			 "in", o->in, "weight", decimals(o->weight / 65536.0, 4), "host",
			 jstr(o->host), "addr", jstr(o->addr), "device_bytes",
			 (json_int_t)o->device_bytes);
}

static void print_osd(const struct cluster_map *m, uint32_t id)
{
	const struct map_osd *o = &m->osds[id];
	printf("osd.%-5u %-4s %-3s weight %-8.4f host %-12s %s\n", id, o->up ? "up" : "down",
	       o->in ? "in" : "out", o->weight / 65536.0, o->host, o->addr);
}

/* The OSDs of OSD I's host, in order (I is the first of them). */
static json_t *osd_host_json(const struct cluster_map *m, uint32_t first, bool json)
{
	json_t *osds = json ? json_array() : NULL;
	for (uint32_t j = first; j < m->n_osds; j++) {
		if (!m->osds[j].exists || strcmp(m->osds[j].host, m->osds[first].host))
			continue;
		if (json && !jpush(osds, osd_json(m, j))) {
			json_decref(osds);
			return NULL;
		}
		if (!json) {
			printf("  ");
			print_osd(m, j);
		}
	}
	return osds;
}

static int cmd_osd_ls(struct cli *c, bool tree)
{
	struct cluster_map m;
	bool stale;
	char leader[64];
	if (get_map(c, &m, &stale, leader, sizeof(leader)))
		return 1;
	json_t *list = c->json ? json_array() : NULL;
	bool ok = true;
	for (uint32_t i = 0; i < m.n_osds && ok; i++) {
		if (!m.osds[i].exists)
			continue;
		if (!tree) {
			if (c->json)
				ok = jpush(list, osd_json(&m, i));
			else
				print_osd(&m, i);
			continue;
		}
		/* Hosts in order of first appearance, OSDs under each. */
		bool seen = false;
		for (uint32_t j = 0; j < i && !seen; j++)
			seen = m.osds[j].exists && strcmp(m.osds[j].host, m.osds[i].host) == 0;
		if (seen)
			continue;
		if (!c->json)
			printf("host %s\n", m.osds[i].host);
		json_t *osds = osd_host_json(&m, i, c->json);
		if (c->json)
			ok = jpush(list, json_pack("{s:o, s:o}", "host", jstr(m.osds[i].host), "osds",
						   osds));
	}
	map_free(&m);
	if (c->json)
		return json_out(jkeep(list, ok));
	return 0;
}

static int parse_u32(const char *text, uint32_t *out)
{
	char *end;
	unsigned long v = strtoul(text, &end, 10);
	if (!*text || *end || v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* basalt osd scrub N [--deep]: every PG osd.N is primary of. */
static int cmd_osd_scrub(struct cli *c, int argc, char **argv)
{
	char why[256];
	uint32_t id;
	int rc;
	bool deep = argc == 2 && strcmp(argv[1], "--deep") == 0;
	if ((argc != 1 && !deep) ||
	    parse_u32(strncmp(argv[0], "osd.", 4) ? argv[0] : argv[0] + 4, &id))
		return die_usage("usage: basalt osd scrub ID [--deep]");
	if (!c->io && (rc = bs_sync_open(c->cfg, &c->data, &c->io, why, sizeof(why))))
		return die_rc(rc, "%s", why);
	struct bs_op op = { .type = BS_SCRUB, .oid = { .pool = 0, .inode = id, .index = OSD_SCRUB_ALL },
			    .flags = deep ? BS_OP_DEEP : 0 };
	rc = bs_sync_op(c->io, &op);
	if (rc == -ETIMEDOUT)
		return die_rc(rc, "osd.%u is not up", id);
	if (rc)
		return die_rc(rc, "osd.%u: %s", id, strerror(-rc));
	if (c->json)
		return json_out(json_pack("{s:I, s:s, s:I}", "osd", (json_int_t)id, "scrub",
					  deep ? "deep" : "light", "pgs_scheduled", (json_int_t)op.size));
	printf("osd.%u: %s of its %" PRIu64 " PGs scheduled\n", id, deep ? "deep scrub" : "scrub",
	       op.size);
	return 0;
}

/* basalt osd set-nearfull-ratio|set-backfillfull-ratio|set-full-ratio R */
static int cmd_osd_ratio(struct cli *c, const char *which, const char *value)
{
	struct map_cmd cmd = { .type = MAP_CMD_SET_RATIO };
	char *end;
	double r = strtod(value, &end);
	if (!*value || *end || !(r > 0 && r <= 1))
		return die_usage("a ratio is a number above 0 and at most 1 (like 0.95), not '%s'", value);
	snprintf(cmd.key, sizeof(cmd.key), "%.*s", (int)(strlen(which) - strlen("-ratio")), which);
	cmd.value = (uint64_t)(r * MAP_RATIO_ONE + 0.5);
	return run_command(c, &cmd);
}

static int cmd_osd(struct cli *c, int argc, char **argv)
{
	if (argc >= 1 && (strcmp(argv[0], "ls") == 0 || strcmp(argv[0], "tree") == 0))
		return cmd_osd_ls(c, strcmp(argv[0], "tree") == 0);
	if (argc >= 2 && strcmp(argv[0], "scrub") == 0)
		return cmd_osd_scrub(c, argc - 1, argv + 1);
	if (argc == 2 && (strcmp(argv[0], "set-nearfull-ratio") == 0 ||
			  strcmp(argv[0], "set-backfillfull-ratio") == 0 ||
			  strcmp(argv[0], "set-full-ratio") == 0))
		return cmd_osd_ratio(c, argv[0] + strlen("set-"), argv[1]);
	struct map_cmd cmd = { 0 };
	if (argc != 2 || parse_u32(strncmp(argv[1], "osd.", 4) ? argv[1] : argv[1] + 4, &cmd.osd))
		return die_usage("usage: basalt osd ls|tree|out ID|in ID|rm ID|scrub ID [--deep]|"
			   "set-full-ratio R|set-backfillfull-ratio R|set-nearfull-ratio R");
	if (strcmp(argv[0], "out") == 0)
		cmd.type = MAP_CMD_OSD_OUT;
	else if (strcmp(argv[0], "in") == 0)
		cmd.type = MAP_CMD_OSD_IN;
	else if (strcmp(argv[0], "rm") == 0)
		cmd.type = MAP_CMD_OSD_RM;
	else
		return die_usage("unknown osd command '%s'", argv[0]);
	return run_command(c, &cmd);
}

/* Whether NAME fits a map field of CAP bytes; one too long is refused
 * naming the limit, not echoed back (WHAT: "a pool name"). */
static int name_fits(const char *name, size_t cap, const char *what)
{
	size_t n = strlen(name);
	if (n >= cap)
		return die_rc(-ENAMETOOLONG, "%s is at most %zu characters; this one has %zu", what,
			      cap - 1, n);
	return 0;
}

/* Copies a name of WHAT (pool, volume, snapshot) into a map field of CAP
 * bytes, or refuses it (name_fits). */
static int copy_name(char *dst, size_t cap, const char *src, const char *what)
{
	char text[32];
	snprintf(text, sizeof(text), "a %s name", what);
	if (name_fits(src, cap, text))
		return 1;
	memcpy(dst, src, strlen(src) + 1);
	return 0;
}

/* --- pools ------------------------------------------------------------------------ */

static json_t *pool_json(const struct map_pool *p)
{
	json_t *o = json_pack("{s:I, s:o, s:s, s:I, s:I, s:I, s:I}", "id", (json_int_t)p->id, "name",
			      jstr(p->name), "type",
			      p->type == MAP_POOL_EC ? "erasure" : "replicated", "size",
			      (json_int_t)p->size, "min_size", (json_int_t)p->min_size, "pg_num",
			      (json_int_t)p->pg_num, "block_size", (json_int_t)p->block_size);
	if (o && p->type == MAP_POOL_EC)
		json_object_update_new(o, json_pack("{s:I, s:I}", "k", (json_int_t)p->ec_k, "m",
						    (json_int_t)p->ec_m));
	if (o)
		json_object_update_new(o, json_pack("{s:I, s:b}", "max_bytes",
						    (json_int_t)p->max_bytes, "quota_full",
						    p->quota_full));
	return o;
}

static void print_pool(const struct map_pool *p)
{
	char quota[64] = "";
	if (p->max_bytes) {
		char q[32];
		snprintf(quota, sizeof(quota), "  max_bytes %s%s",
			 cfg_format_size(p->max_bytes, q, sizeof(q)), p->quota_full ? " (reached)" : "");
	}
	if (p->type == MAP_POOL_EC)
		printf("pool %-3u %-16s erasure %u+%u min_size %u  pg_num %u  block %uK%s\n", p->id,
		       p->name, p->ec_k, p->ec_m, p->min_size, p->pg_num, p->block_size >> 10, quota);
	else
		printf("pool %-3u %-16s replicated size %u min_size %u  pg_num %u  block %uK%s\n",
		       p->id, p->name, p->size, p->min_size, p->pg_num, p->block_size >> 10, quota);
}

static int cmd_pool_ls(struct cli *c)
{
	struct cluster_map m;
	bool stale;
	char leader[64];
	if (get_map(c, &m, &stale, leader, sizeof(leader)))
		return 1;
	json_t *list = c->json ? json_array() : NULL;
	bool ok = true;
	for (uint32_t i = 0; i < m.n_pools && ok; i++) {
		if (c->json)
			ok = jpush(list, pool_json(&m.pools[i]));
		else
			print_pool(&m.pools[i]);
	}
	if (!c->json && !m.n_pools)
		printf("no pools (basalt pool create NAME makes one)\n");
	map_free(&m);
	if (c->json)
		return json_out(jkeep(list, ok));
	return 0;
}

static int cmd_pool_create(struct cli *c, int argc, char **argv)
{
	struct map_cmd cmd = { .type = MAP_CMD_POOL_CREATE };
	cmd.pool = (struct map_pool){ .type = MAP_POOL_REPLICATED, .size = 3, .min_size = 2,
				      .pg_num = 128, .block_size = 128 << 10 };
	if (argc < 1)
		return die_usage("usage: basalt pool create NAME [--size N | --ec K+M] "
			   "[--min-size N] [--pg-num N] [--block-size SIZE]");
	if (copy_name(cmd.name, sizeof(cmd.name), argv[0], "pool"))
		return 1;
	bool min_given = false, size_given = false, block_given = false;
	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t v64;
		if (!val)
			return die_usage("%s needs a value", opt);
		i++;
		if (strcmp(opt, "--size") == 0) {
			if (cli_count(val, "--size (copies)", &cmd.pool.size))
				return 2;
			size_given = true;
		} else if (strcmp(opt, "--min-size") == 0) {
			if (cli_count(val, "--min-size (copies)", &cmd.pool.min_size))
				return 2;
			min_given = true;
		} else if (strcmp(opt, "--pg-num") == 0) {
			if (cli_count(val, "--pg-num", &cmd.pool.pg_num))
				return 2;
		} else if (strcmp(opt, "--block-size") == 0) {
			if (cli_size(val, "--block-size", 1, UINT32_MAX, &v64))
				return 2;
			cmd.pool.block_size = (uint32_t)v64;
			block_given = true;
		} else if (strcmp(opt, "--ec") == 0) {
			if (ec_parse(val, &cmd.pool.ec_k, &cmd.pool.ec_m))
				return die_usage("--ec takes K+M, K data chunks (1 to %u) and M "
						 "parity chunks (1 to %u), e.g. 2+1: not '%s'",
						 EC_MAX_K, EC_MAX_M, val);
			cmd.pool.type = MAP_POOL_EC;
		} else {
			return die_usage("bad option or value: %s %s", opt, val);
		}
	}
	if (cmd.pool.type == MAP_POOL_EC) {
		if (size_given)
			return die_usage("an erasure-coded pool's size is K+M (%u): drop --size",
					 cmd.pool.ec_k + cmd.pool.ec_m);
		cmd.pool.size = 0; /* K+M */
		if (!min_given)
			cmd.pool.min_size = 0; /* the monitors' default: K+1 */
		if (!block_given) /* a 128K chunk on each OSD */
			cmd.pool.block_size = cmd.pool.ec_k * (128u << 10);
	} else if (!min_given) {
		cmd.pool.min_size = cmd.pool.size > 1 ? cmd.pool.size - 1 : 1;
	}
	return run_command(c, &cmd);
}

static int cmd_pool(struct cli *c, int argc, char **argv)
{
	if (argc < 1)
		return die_usage("usage: basalt pool create|ls|rm|set ...");
	if (strcmp(argv[0], "ls") == 0)
		return cmd_pool_ls(c);
	if (strcmp(argv[0], "create") == 0)
		return cmd_pool_create(c, argc - 1, argv + 1);
	struct map_cmd cmd = { 0 };
	if (strcmp(argv[0], "rm") == 0 && argc == 2) {
		cmd.type = MAP_CMD_POOL_RM;
	} else if (strcmp(argv[0], "set") == 0 && argc == 4) {
		cmd.type = MAP_CMD_POOL_SET;
		uint32_t count;
		if (strcmp(argv[2], "max_bytes") == 0) {
			if (cli_size(argv[3], "max_bytes (0 for no quota)", 0, SIZE_MAX_BYTES,
				     &cmd.value))
				return 2;
		} else if (cli_count(argv[3], argv[2], &count)) {
			return 2;
		} else {
			cmd.value = count;
		}
		if (strlen(argv[2]) >= sizeof(cmd.key))
			return die_usage("usage: basalt pool set NAME size|min_size|pg_num|max_bytes VALUE");
		snprintf(cmd.key, sizeof(cmd.key), "%s", argv[2]);
	} else {
		return die_usage("usage: basalt pool create|ls|rm NAME|set NAME KEY VALUE");
	}
	if (copy_name(cmd.name, sizeof(cmd.name), argv[1], "pool"))
		return 1;
	return run_command(c, &cmd);
}

/* --- volumes ----------------------------------------------------------------------- */

static const char *pool_name_of(const struct cluster_map *m, uint32_t id)
{
	for (uint32_t i = 0; i < m->n_pools; i++)
		if (m->pools[i].id == id)
			return m->pools[i].name;
	return "?";
}

/* The snapshot of V's parent it was cloned from: its name, or "". */
static const char *parent_snap_name(const struct map_volume *parent, const struct map_volume *v)
{
	for (uint32_t k = 0; parent && k < parent->n_snaps; k++)
		if (parent->snaps[k].id == v->parent_snap)
			return parent->snaps[k].name;
	return "";
}

/* USED: the volume's objects and bytes written, when known; DETAIL
 * (volume info) says null when not. */
static json_t *volume_json(const struct cluster_map *m, const struct map_volume *v, bool detail,
			   const uint64_t *used)
{
	const struct map_volume *parent = v->parent_inode ? map_volume_by_inode(m, v->parent_inode) : NULL;
	json_t *snaps = json_array(), *lock = json_null(), *par = json_null();
	for (uint32_t k = 0; k < v->n_snaps; k++)
		jpush(snaps, json_pack("{s:I, s:o, s:I, s:b}", "id", (json_int_t)v->snaps[k].id,
				       "name", jstr(v->snaps[k].name), "size",
				       (json_int_t)v->snaps[k].size, "protected",
				       v->snaps[k].protected));
	if (parent)
		par = json_pack("{s:o, s:o}", "volume", jstr(parent->name), "snapshot",
				jstr(parent_snap_name(parent, v)));
	if (v->lock_client) {
		char id[20];
		snprintf(id, sizeof(id), "%016" PRIx64, v->lock_client);
		lock = json_pack("{s:s, s:o}", "client", id, "owner", jstr(v->lock_owner));
	}
	json_t *o = json_pack("{s:o, s:I, s:I, s:o, s:o, s:o, s:o}", "name", jstr(v->name), "inode",
			      (json_int_t)v->inode, "size", (json_int_t)v->size, "pool",
			      jstr(pool_name_of(m, v->pool)), "parent", par, "snapshots", snaps,
			      "lock", lock);
	if (o && used)
		json_object_update_new(o, json_pack("{s:I, s:I}", "objects", (json_int_t)used[0],
						    "used_bytes", (json_int_t)used[1]));
	else if (o && detail)
		json_object_update_new(o, json_pack("{s:n, s:n}", "objects", "used_bytes"));
	if (o && json_array_size(snaps) != v->n_snaps) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static void print_volume(const struct cluster_map *m, const struct map_volume *v, bool detail,
			 const uint64_t *used)
{
	const struct map_volume *parent = v->parent_inode ? map_volume_by_inode(m, v->parent_inode) : NULL;
	char sz[32];
	printf("%-20s %12s  pool %-12s %u %s", v->name, cfg_format_size(v->size, sz, sizeof(sz)),
	       pool_name_of(m, v->pool), v->n_snaps, plural(v->n_snaps, "snapshot", "snapshots"));
	if (parent)
		printf("  clone of %s@%s", parent->name, parent_snap_name(parent, v));
	printf("%s\n", v->lock_client && !detail ? "  locked" : "");
	if (detail && v->lock_client)
		printf("  locked by %s (client %016" PRIx64 ")\n", v->lock_owner, v->lock_client);
	if (used)
		printf("  used: %" PRIu64 " %s, %s written\n", used[0],
		       used[0] == 1 ? "object" : "objects",
		       cfg_format_size(used[1], sz, sizeof(sz)));
	else if (detail)
		printf("  used: unknown\n");
	for (uint32_t k = 0; detail && k < v->n_snaps; k++)
		printf("  @%-18s id %-4u %12s%s\n", v->snaps[k].name, v->snaps[k].id,
		       cfg_format_size(v->snaps[k].size, sz, sizeof(sz)),
		       v->snaps[k].protected ? "  protected" : "");
}

/* What the objects of one inode use: [0] objects, [1] bytes written. */
struct vol_usage {
	uint64_t inode;
	uint64_t used[2];
};

static int vol_usage_cb(const struct object_id *oid, uint64_t version, uint64_t size, void *arg)
{
	struct vol_usage *u = arg;
	(void)version;
	if (oid->inode == u->inode) {
		u->used[0]++;
		u->used[1] += size;
	}
	return 0;
}

static int volume_info(struct cli *c, const struct cluster_map *m, const char *name)
{
	if (name_fits(name, MAP_NAME_MAX, "a volume name"))
		return 1;
	const struct map_volume *v = map_volume_by_name(m, name);
	if (!v)
		return die_rc(-ENOENT, "volume '%s' does not exist", name);
	struct vol_usage u = { .inode = v->inode };
	char why[256];
	bool known = (c->io || !bs_sync_open(c->cfg, &c->data, &c->io, why, sizeof(why))) &&
		     bs_object_list(c->io, pool_name_of(m, v->pool), vol_usage_cb, &u, why,
				    sizeof(why)) == 0;
	if (!known) { /* what the map says is still worth showing */
		char text[300];
		snprintf(text, sizeof(text), "space used is unknown: %s", why);
		warn(text);
	}
	if (c->json)
		return json_out(volume_json(m, v, true, known ? u.used : NULL));
	print_volume(m, v, true, known ? u.used : NULL);
	return 0;
}

static int cmd_volume_show(struct cli *c, const char *name)
{
	struct cluster_map m;
	bool stale;
	char leader[64];
	if (get_map(c, &m, &stale, leader, sizeof(leader)))
		return 1;
	int rc = 0;
	if (name) {
		rc = volume_info(c, &m, name);
	} else {
		json_t *list = c->json ? json_array() : NULL;
		bool ok = true;
		for (uint32_t i = 0; i < m.n_volumes && ok; i++) {
			if (c->json)
				ok = jpush(list, volume_json(&m, &m.volumes[i], false, NULL));
			else
				print_volume(&m, &m.volumes[i], false, NULL);
		}
		if (c->json)
			rc = json_out(jkeep(list, ok));
		else if (!m.n_volumes)
			printf("no volumes (basalt volume create NAME --size SIZE makes one)\n");
	}
	map_free(&m);
	return rc;
}

/* Prints what bs_volume_remove or bs_volume_resize did. */
static int volume_change_print(struct cli *c, const struct bs_volume_change *ch)
{
	char sz[32];
	if (c->json)
		return json_out(json_pack("{s:o, s:I, s:I, s:I, s:I}", "result", jstr(ch->result),
					  "epoch", (json_int_t)ch->epoch, "size",
					  (json_int_t)ch->new_size, "objects_freed",
					  (json_int_t)ch->objects_freed, "bytes_freed",
					  (json_int_t)ch->bytes_freed));
	if (ch->freed)
		printf("freed %zu %s (%s written)\n", ch->objects_freed,
		       ch->objects_freed == 1 ? "object" : "objects",
		       cfg_format_size(ch->bytes_freed, sz, sizeof(sz)));
	printf("%s (map epoch %" PRIu64 ")\n", ch->result, ch->epoch);
	return 0;
}

/* The ordering of removal and shrink is the library's
 * (client/volume_admin.c); the CLI names what to do about a refusal. */
static int volume_rm(struct cli *c, const char *name)
{
	struct bs_admin a;
	struct bs_admin_cluster k = { c->mc, c->cfg, &c->data, &c->io };
	struct bs_volume_change ch;
	char why[512];
	bs_admin_cluster_init(&a, &k);
	int rc = bs_volume_remove(&a, name, &ch, why, sizeof(why));
	return rc ? die_rc(rc, "%s", why) : volume_change_print(c, &ch);
}

static int volume_resize(struct cli *c, const char *name, uint64_t size, bool allow_shrink)
{
	struct bs_admin a;
	struct bs_admin_cluster k = { c->mc, c->cfg, &c->data, &c->io };
	struct bs_volume_change ch;
	char why[512];
	bs_admin_cluster_init(&a, &k);
	int rc = bs_volume_resize(&a, name, size, allow_shrink ? BS_RESIZE_ALLOW_SHRINK : 0, &ch,
				  why, sizeof(why));
	if (rc == -EPERM)
		return die_rc(rc, "%s; add --allow-shrink to shrink it", why);
	return rc ? die_rc(rc, "%s", why) : volume_change_print(c, &ch);
}

/* --- snapshots ------------------------------------------------------------------- */

void snap_admin(struct cli *c, struct bs_admin *a, struct bs_admin_cluster *k)
{
	*k = (struct bs_admin_cluster){ c->mc, c->cfg, &c->data, &c->io };
	bs_admin_cluster_init(a, k);
}

/* SPECS: "VOL@SNAP" each (ALIAS: "VOL SNAP" of volume snap). */
static int snap_create(struct cli *c, int n, char **specs, bool alias)
{
	struct bs_snap_spec s[MAP_SNAP_GROUP_MAX];
	char why[512];
	if (n < 1 || n > (int)MAP_SNAP_GROUP_MAX)
		return die_usage("snap create takes 1 to %u VOLUME@SNAP", MAP_SNAP_GROUP_MAX);
	for (int i = 0; i < n && !alias; i++)
		if (bs_snap_spec_parse(specs[i], &s[i], why, sizeof(why)))
			return die_usage("%s", why);
	if (alias && (copy_name(s[0].volume, sizeof(s[0].volume), specs[0], "volume") ||
		      copy_name(s[0].snap, sizeof(s[0].snap), specs[1], "snapshot")))
		return 1;
	uint32_t count = alias ? 1 : (uint32_t)n;
	struct bs_admin a;
	struct bs_admin_cluster k;
	struct bs_volume_change ch;
	snap_admin(c, &a, &k);
	int rc = bs_snap_create(&a, s, count, &ch, why, sizeof(why));
	if (rc)
		return die_rc(rc, "%s", why);
	if (c->json) {
		json_t *list = json_array();
		for (uint32_t i = 0; i < count; i++)
			jpush(list, json_pack("{s:o, s:o}", "volume", jstr(s[i].volume), "snapshot",
					      jstr(s[i].snap)));
		return json_out(json_pack("{s:o, s:I, s:o}", "result", jstr(ch.result), "epoch",
					  (json_int_t)ch.epoch, "snapshots", list));
	}
	for (uint32_t i = 0; i < count; i++)
		printf("%s@%s ", s[i].volume, s[i].snap);
	printf("%s (map epoch %" PRIu64 ")\n", ch.result, ch.epoch);
	return 0;
}

static int snap_rm(struct cli *c, const struct bs_snap_spec *spec)
{
	struct bs_admin a;
	struct bs_admin_cluster k;
	struct bs_volume_change ch;
	char why[512];
	snap_admin(c, &a, &k);
	int rc = bs_snap_remove(&a, spec, &ch, why, sizeof(why));
	return rc ? die_rc(rc, "%s", why) : volume_change_print(c, &ch);
}

static json_t *snap_usage_json(const struct bs_snap_usage *u)
{
	return json_pack("{s:I, s:o, s:I, s:I, s:I, s:I, s:I, s:b}", "id", (json_int_t)u->id,
			 "name", jstr(u->name), "size", (json_int_t)u->size, "epoch",
			 (json_int_t)u->epoch, "created_ms", (json_int_t)u->time_ms,
			 "referenced_bytes", (json_int_t)u->referenced_bytes, "exclusive_bytes",
			 (json_int_t)u->exclusive_bytes, "protected", u->protected);
}

static int snap_ls_json(const char *name, const struct bs_volume_usage *u)
{
	json_t *snaps = json_array();
	for (uint32_t k = 0; k < u->n_snaps; k++)
		jpush(snaps, snap_usage_json(&u->snaps[k]));
	return json_out(json_pack("{s:o, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "volume",
				  jstr(name), "pool", jstr(u->pool), "size", (json_int_t)u->size,
				  "objects", (json_int_t)u->objects, "referenced_bytes",
				  (json_int_t)u->referenced_bytes, "exclusive_bytes",
				  (json_int_t)u->exclusive_bytes, "snapshots_bytes",
				  (json_int_t)u->snapshots_bytes, "stored_bytes",
				  (json_int_t)u->stored_bytes, "garbage_bytes",
				  (json_int_t)u->garbage_bytes, "snapshots", snaps));
}

/* snap ls VOL: each snapshot with the space it references and holds
 * alone; the live volume last. */
static int snap_ls(struct cli *c, const char *name)
{
	struct bs_admin a;
	struct bs_admin_cluster k;
	struct bs_volume_usage *u = calloc(1, sizeof(*u));
	char why[512], t[32], sz[32], ref[32], ex[32];
	if (!u)
		return die_rc(-ENOMEM, "out of memory");
	snap_admin(c, &a, &k);
	int rc = bs_volume_usage(&a, name, u, why, sizeof(why));
	if (rc || c->json) {
		rc = rc ? die_rc(rc, "%s", why) : snap_ls_json(name, u);
		free(u->snaps);
		free(u);
		return rc;
	}
	printf("%-20s %5s %10s %20s %12s %12s\n", "SNAPSHOT", "ID", "SIZE", "CREATED (UTC)",
	       "REFERENCED", "EXCLUSIVE");
	for (uint32_t i = 0; i < u->n_snaps; i++) {
		const struct bs_snap_usage *s = &u->snaps[i];
		time_t when = (time_t)(s->time_ms / 1000);
		strftime(t, sizeof(t), "%Y-%m-%d %H:%M:%S", gmtime(&when));
		printf("%-20s %5u %10s %20s %12s %12s%s\n", s->name, s->id,
		       cfg_format_size(s->size, sz, sizeof(sz)), t,
		       cfg_format_size(s->referenced_bytes, ref, sizeof(ref)),
		       cfg_format_size(s->exclusive_bytes, ex, sizeof(ex)),
		       s->protected ? "  protected" : "");
	}
	printf("%-20s %5s %10s %20s %12s %12s\n", "(live)", "-",
	       cfg_format_size(u->size, sz, sizeof(sz)), "-",
	       cfg_format_size(u->referenced_bytes, ref, sizeof(ref)),
	       cfg_format_size(u->exclusive_bytes, ex, sizeof(ex)));
	printf("stored %s in %" PRIu64 " objects (snapshots alone %s",
	       cfg_format_size(u->stored_bytes, sz, sizeof(sz)), u->objects,
	       cfg_format_size(u->snapshots_bytes, ref, sizeof(ref)));
	if (u->garbage_bytes)
		printf("; %s no snapshot needs: snap rm frees it",
		       cfg_format_size(u->garbage_bytes, ex, sizeof(ex)));
	printf(")\n");
	free(u->snaps);
	free(u);
	return 0;
}

/* snap rollback|protect|unprotect VOL@SNAP. */
static int snap_change(struct cli *c, const char *sub, const struct bs_snap_spec *spec)
{
	struct bs_admin a;
	struct bs_admin_cluster k;
	struct bs_volume_change ch;
	char why[512];
	snap_admin(c, &a, &k);
	int rc = strcmp(sub, "rollback") == 0
			 ? bs_snap_rollback(&a, spec, &ch, why, sizeof(why))
			 : bs_snap_protect(&a, spec, strcmp(sub, "protect") == 0, &ch, why, sizeof(why));
	if (rc)
		return die_rc(rc, "%s", why);
	if (c->json)
		return json_out(json_pack("{s:o, s:I, s:I, s:I, s:I}", "result", jstr(ch.result),
					  "epoch", (json_int_t)ch.epoch, "size",
					  (json_int_t)ch.new_size, "objects_restored",
					  (json_int_t)ch.objects_restored, "objects_freed",
					  (json_int_t)ch.objects_freed));
	if (strcmp(sub, "rollback") == 0) {
		char sz[32];
		printf("%s@%s: %zu %s written back, %zu deleted, size %s: %s\n", spec->volume,
		       spec->snap, ch.objects_restored, plural((unsigned)ch.objects_restored,
							       "object", "objects"),
		       ch.objects_freed, cfg_format_size(ch.new_size, sz, sizeof(sz)), ch.result);
		return 0;
	}
	printf("%s@%s %s: %s\n", spec->volume, spec->snap,
	       strcmp(sub, "protect") == 0 ? "protected" : "unprotected", ch.result);
	return 0;
}

/* --- snapshot diffs ---------------------------------------------------------------- */

/* Removes a "--json" among a command's own ARGV (basalt snap diff A B
 * --json), turning JSON on as the global option does; the new count. */
static int json_flag_take(struct cli *c, int argc, char **argv)
{
	int kept = 0;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			c->json = json_mode = true;
		else
			argv[kept++] = argv[i];
	}
	return kept;
}

/* Each extent as it comes: a line, or an element of the JSON array. */
static int snap_diff_extent(uint64_t offset, uint64_t length, bool data, void *arg)
{
	json_t *list = arg;
	if (!list) {
		printf("%" PRIu64 " %" PRIu64 " %s\n", offset, length, data ? "data" : "zero");
		return 0;
	}
	return jpush(list, json_pack("{s:I, s:I, s:s}", "offset", (json_int_t)offset, "length",
				     (json_int_t)length, "type", data ? "data" : "zero"))
		       ? 0
		       : -ENOMEM;
}

static int snap_diff_print(struct cli *c, const char *from, const char *to, json_t *list,
			   const struct bs_snap_diff_info *d)
{
	char a[32], b[32], t[32], o[32];
	if (c->json)
		return json_out(json_pack("{s:o, s:o, s:I, s:I, s:I, s:o, s:I}", "from", jstr(from),
					  "to", jstr(to), "from_size", (json_int_t)d->from_size, "to_size",
					  (json_int_t)d->to_size, "block_size",
					  (json_int_t)d->block_size, "extents", list,
					  "changed_bytes", (json_int_t)d->changed_bytes));
	printf("total %" PRIu64 " bytes (%s) changed in %" PRIu64 " %s of %s objects, from %s "
	       "(%s) to %s (%s)\n",
	       d->changed_bytes, cfg_format_size(d->changed_bytes, t, sizeof(t)), d->extents,
	       plural((unsigned)d->extents, "extent", "extents"),
	       cfg_format_size(d->block_size, o, sizeof(o)), from,
	       cfg_format_size(d->from_size, a, sizeof(a)), to,
	       cfg_format_size(d->to_size, b, sizeof(b)));
	return 0;
}

/* snap diff VOL@A [VOL@B]: what changed from A to B (the live volume
 * when B is left out), from the objects' metadata only. */
static int snap_diff(struct cli *c, int argc, char **argv)
{
	struct bs_snap_spec from, to;
	char why[512];
	if (argc < 1 || argc > 2)
		return die_usage("usage: basalt snap diff VOL@SNAP [VOL@SNAP] [--json]");
	if (bs_snap_spec_parse(argv[0], &from, why, sizeof(why)) ||
	    (argc == 2 && bs_snap_spec_parse(argv[1], &to, why, sizeof(why))))
		return die_usage("%s", why);
	if (argc == 2 && strcmp(from.volume, to.volume))
		return die_usage("%s and %s are snapshots of different volumes: a diff compares "
				 "two states of one volume", argv[0], argv[1]);
	struct bs_admin a;
	struct bs_admin_cluster k;
	struct bs_snap_diff_info d;
	json_t *list = c->json ? json_array() : NULL;
	if (c->json && !list)
		return json_out(NULL);
	snap_admin(c, &a, &k);
	int rc = bs_snap_diff(&a, from.volume, from.snap, argc == 2 ? to.snap : NULL,
			      snap_diff_extent, list, &d, why, sizeof(why));
	if (rc) {
		json_decref(list);
		return rc == -ENOMEM && c->json ? json_out(NULL) : die_rc(rc, "%s", why);
	}
	return snap_diff_print(c, argv[0], argc == 2 ? argv[1] : from.volume, list, &d);
}

/* --- volume du ----------------------------------------------------------------------- */

static json_t *du_volume_json(const struct bs_volume_usage *u)
{
	json_t *snaps = json_array();
	for (uint32_t k = 0; k < u->n_snaps; k++)
		jpush(snaps, snap_usage_json(&u->snaps[k]));
	json_t *o = json_pack("{s:o, s:o, s:I, s:I, s:I, s:I, s:I}", "name", jstr(u->name), "pool",
			      jstr(u->pool), "size", (json_int_t)u->size, "objects",
			      (json_int_t)u->objects, "referenced_bytes",
			      (json_int_t)u->referenced_bytes, "exclusive_bytes",
			      (json_int_t)u->exclusive_bytes, "snapshots_bytes",
			      (json_int_t)u->snapshots_bytes);
	json_object_update_new(
		o, json_pack("{s:I, s:I, s:I, s:I, s:o}", "snapshots_exclusive_bytes",
			     (json_int_t)u->snapshots_exclusive_bytes, "shared_bytes",
			     (json_int_t)u->shared_bytes, "garbage_bytes",
			     (json_int_t)u->garbage_bytes, "stored_bytes",
			     (json_int_t)u->stored_bytes, "snapshots", snaps));
	json_object_set_new(o, "raw_bytes", json_integer((json_int_t)u->raw_bytes));
	return jkeep(o, o && json_object_get(o, "snapshots") &&
				json_array_size(snaps) == u->n_snaps);
}

/* The volumes' parts summed into SUM (only the byte counts). */
static void du_sum(const struct bs_volume_usage *u, uint32_t n, struct bs_volume_usage *sum)
{
	memset(sum, 0, sizeof(*sum));
	for (uint32_t i = 0; i < n; i++) {
		sum->size += u[i].size;
		sum->referenced_bytes += u[i].referenced_bytes;
		sum->exclusive_bytes += u[i].exclusive_bytes;
		sum->snapshots_bytes += u[i].snapshots_bytes;
		sum->snapshots_exclusive_bytes += u[i].snapshots_exclusive_bytes;
		sum->shared_bytes += u[i].shared_bytes;
		sum->garbage_bytes += u[i].garbage_bytes;
		sum->stored_bytes += u[i].stored_bytes;
		sum->raw_bytes += u[i].raw_bytes;
	}
}

static int du_json(const struct bs_volume_usage *u, uint32_t n, const struct bs_volume_usage *t)
{
	json_t *list = json_array();
	bool ok = true;
	for (uint32_t i = 0; i < n && ok; i++)
		ok = jpush(list, du_volume_json(&u[i]));
	return json_out(jkeep(
		json_pack("{s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}}", "volumes", list, "total",
			  "size", (json_int_t)t->size, "referenced_bytes",
			  (json_int_t)t->referenced_bytes, "exclusive_bytes",
			  (json_int_t)t->exclusive_bytes, "snapshots_exclusive_bytes",
			  (json_int_t)t->snapshots_exclusive_bytes, "shared_bytes",
			  (json_int_t)t->shared_bytes, "garbage_bytes", (json_int_t)t->garbage_bytes,
			  "stored_bytes", (json_int_t)t->stored_bytes, "raw_bytes",
			  (json_int_t)t->raw_bytes),
		ok));
}

/* One volume's line and its snapshots' (size, referenced, exclusive). */
static void du_volume_text(const struct bs_volume_usage *u)
{
	char a[32], b[32], c[32], d[32], e[32], f[32], g[32];
	printf("%-20s %11s %11s %11s %11s %11s %11s %11s\n", u->name,
	       cfg_format_size(u->size, a, sizeof(a)),
	       cfg_format_size(u->referenced_bytes, b, sizeof(b)),
	       cfg_format_size(u->exclusive_bytes, c, sizeof(c)),
	       cfg_format_size(u->snapshots_bytes, d, sizeof(d)),
	       cfg_format_size(u->shared_bytes, e, sizeof(e)),
	       cfg_format_size(u->stored_bytes, f, sizeof(f)),
	       cfg_format_size(u->raw_bytes, g, sizeof(g)));
	for (uint32_t k = 0; k < u->n_snaps; k++)
		printf("  @%-17s %11s %11s %11s\n", u->snaps[k].name,
		       cfg_format_size(u->snaps[k].size, a, sizeof(a)),
		       cfg_format_size(u->snaps[k].referenced_bytes, b, sizeof(b)),
		       cfg_format_size(u->snaps[k].exclusive_bytes, c, sizeof(c)));
}

static void du_text(const struct bs_volume_usage *u, uint32_t n, const struct bs_volume_usage *t)
{
	char a[32], b[32], c[32], d[32], e[32], f[32];
	printf("%-20s %11s %11s %11s %11s %11s %11s %11s\n", "VOLUME", "PROVISIONED", "REFERENCED",
	       "EXCLUSIVE", "SNAPSHOTS", "SHARED", "STORED", "RAW");
	for (uint32_t i = 0; i < n; i++)
		du_volume_text(&u[i]);
	printf("total: stored %s = live-exclusive %s + snapshot-exclusive %s + shared %s",
	       cfg_format_size(t->stored_bytes, a, sizeof(a)),
	       cfg_format_size(t->exclusive_bytes, b, sizeof(b)),
	       cfg_format_size(t->snapshots_exclusive_bytes, c, sizeof(c)),
	       cfg_format_size(t->shared_bytes, d, sizeof(d)));
	if (t->garbage_bytes)
		printf(" + no snapshot's %s (snap rm frees it)",
		       cfg_format_size(t->garbage_bytes, e, sizeof(e)));
	printf(" (bytes written, one copy); raw %s on the OSDs (copies, or chunks)\n",
	       cfg_format_size(t->raw_bytes, f, sizeof(f)));
}

/* volume du [VOL]: provisioned, referenced and exclusive space of each
 * volume and its snapshots, every pool listed once. */
static int volume_du(struct cli *c, const char *name)
{
	struct bs_admin a;
	struct bs_admin_cluster k;
	struct bs_volume_usage *u, t;
	uint32_t n;
	char why[512];
	snap_admin(c, &a, &k);
	int rc = bs_volumes_usage(&a, name, &u, &n, why, sizeof(why));
	if (rc)
		return die_rc(rc, "%s", why);
	du_sum(u, n, &t);
	if (c->json)
		rc = du_json(u, n, &t);
	else if (!n)
		printf("no volumes (basalt volume create NAME --size SIZE makes one)\n");
	else
		du_text(u, n, &t);
	bs_volumes_usage_free(u, n);
	return rc;
}

static int cmd_snap(struct cli *c, int argc, char **argv)
{
	static const char usage[] =
		"usage: basalt snap create VOL@SNAP [VOL@SNAP ...] | ls VOL | rm VOL@SNAP |\n"
		"       rollback VOL@SNAP | protect VOL@SNAP | unprotect VOL@SNAP |\n"
		"       diff VOL@SNAP [VOL@SNAP] [--json]";
	const char *sub = argc ? argv[0] : "";
	char why[512];
	if (strcmp(sub, "create") == 0 && argc >= 2)
		return snap_create(c, argc - 1, argv + 1, false);
	if (strcmp(sub, "ls") == 0 && argc == 2)
		return snap_ls(c, argv[1]);
	if (strcmp(sub, "diff") == 0)
		return snap_diff(c, json_flag_take(c, argc - 1, argv + 1), argv + 1);
	bool change = strcmp(sub, "rollback") == 0 || strcmp(sub, "protect") == 0 ||
		      strcmp(sub, "unprotect") == 0;
	if ((strcmp(sub, "rm") == 0 || change) && argc == 2) {
		struct bs_snap_spec s;
		if (bs_snap_spec_parse(argv[1], &s, why, sizeof(why)))
			return die_usage("%s", why);
		return change ? snap_change(c, sub, &s) : snap_rm(c, &s);
	}
	return die_usage("%s", usage);
}

/* volume clone VOL@SNAP NEW [--pool P] | VOL SNAP NEW [--pool P]. */
static int volume_clone(struct cli *c, int argc, char **argv)
{
	struct bs_snap_spec spec;
	const char *pool = NULL;
	char why[512];
	if (argc >= 2 && strcmp(argv[argc - 2], "--pool") == 0) {
		pool = argv[argc - 1];
		argc -= 2;
	}
	if (argc == 2 && bs_snap_spec_parse(argv[0], &spec, why, sizeof(why)))
		return die_usage("%s", why);
	if (argc == 3 && (copy_name(spec.volume, sizeof(spec.volume), argv[0], "volume") ||
			  copy_name(spec.snap, sizeof(spec.snap), argv[1], "snapshot")))
		return 1;
	if (argc != 2 && argc != 3)
		return die_usage("usage: basalt volume clone VOL@SNAP NEW [--pool POOL]");
	struct bs_admin a;
	struct bs_admin_cluster k;
	struct bs_volume_change ch;
	snap_admin(c, &a, &k);
	int rc = bs_volume_clone(&a, &spec, argv[argc - 1], pool, &ch, why, sizeof(why));
	if (rc)
		return die_rc(rc, "%s", why);
	if (c->json)
		return json_out(json_pack("{s:o, s:I}", "result", jstr(ch.result), "epoch",
					  (json_int_t)ch.epoch));
	printf("%s (map epoch %" PRIu64 ")\n", ch.result, ch.epoch);
	return 0;
}

static int volume_flatten(struct cli *c, const char *name)
{
	struct bs_admin a;
	struct bs_admin_cluster k;
	struct bs_volume_change ch;
	char why[512];
	snap_admin(c, &a, &k);
	int rc = bs_volume_flatten(&a, name, &ch, why, sizeof(why));
	if (rc)
		return die_rc(rc, "%s", why);
	if (c->json)
		return json_out(json_pack("{s:o, s:I, s:I}", "result", jstr(ch.result), "epoch",
					  (json_int_t)ch.epoch, "objects_copied",
					  (json_int_t)ch.objects_restored));
	printf("copied %zu %s from the parent; %s (map epoch %" PRIu64 ")\n", ch.objects_restored,
	       plural((unsigned)ch.objects_restored, "object", "objects"), ch.result, ch.epoch);
	return 0;
}

static int cmd_volume(struct cli *c, int argc, char **argv)
{
	static const char usage[] =
		"usage: basalt volume create NAME --size SIZE [--pool POOL] | ls | info NAME |\n"
		"       du [NAME] [--json] |\n"
		"       resize NAME SIZE [--allow-shrink] | rm NAME | rename NAME NEW |\n"
		"       unlock NAME --force | snap create|rm NAME SNAP |\n"
		"       clone VOL@SNAP NEW [--pool POOL] | clone NAME SNAP NEW | flatten NAME";
	const char *sub = argc ? argv[0] : "";
	struct map_cmd cmd = { 0 };
	uint64_t size = 0;
	if (strcmp(sub, "ls") == 0 && argc == 1)
		return cmd_volume_show(c, NULL);
	if (strcmp(sub, "info") == 0 && argc == 2)
		return cmd_volume_show(c, argv[1]);
	if (strcmp(sub, "du") == 0) {
		argc = json_flag_take(c, argc, argv);
		if (argc > 2)
			return die_usage("usage: basalt volume du [NAME] [--json]");
		return volume_du(c, argc == 2 ? argv[1] : NULL);
	}
	if (strcmp(sub, "create") == 0 && argc >= 2) {
		cmd.type = MAP_CMD_VOLUME_CREATE;
		const char *pool = "rbd";
		for (int i = 2; i < argc; i += 2) {
			if (i + 1 >= argc)
				return die_usage("%s", usage);
			if (strcmp(argv[i], "--size") == 0) {
				if (cli_size(argv[i + 1], "--size", 1, CLI_VOLUME_SIZE_MAX, &size))
					return 2;
				cmd.size = size;
			}
			else if (strcmp(argv[i], "--pool") == 0)
				pool = argv[i + 1];
			else
				return die_usage("bad option or value: %s %s", argv[i], argv[i + 1]);
		}
		if (!cmd.size)
			return die_usage("volume create needs --size, e.g. --size 10G");
		if (copy_name(cmd.pool_name, sizeof(cmd.pool_name), pool, "pool"))
			return 1;
	} else if (strcmp(sub, "resize") == 0 && (argc == 3 || argc == 4)) {
		bool allow_shrink = argc == 4 && strcmp(argv[3], "--allow-shrink") == 0;
		if (argc == 4 && !allow_shrink)
			return die_usage("%s", usage);
		if (cli_size(argv[2], "the new size", 1, CLI_VOLUME_SIZE_MAX, &size))
			return 2;
		return volume_resize(c, argv[1], size, allow_shrink);
	} else if (strcmp(sub, "rm") == 0 && argc == 2) {
		return volume_rm(c, argv[1]);
	} else if (strcmp(sub, "unlock") == 0 && argc >= 2) {
		if (argc != 3 || strcmp(argv[2], "--force"))
			return die_usage("volume unlock takes the lock from its holder and fences that "
				   "client for good; say so with --force (a client that "
				   "still runs gives its lock back when it stops)");
		cmd.type = MAP_CMD_VOLUME_UNLOCK;
		cmd.flag = 1;
	} else if (strcmp(sub, "rename") == 0 && argc == 3) {
		cmd.type = MAP_CMD_VOLUME_RENAME;
		if (copy_name(cmd.new_name, sizeof(cmd.new_name), argv[2], "volume"))
			return 1;
	} else if (strcmp(sub, "snap") == 0 && argc == 4 && strcmp(argv[1], "create") == 0) {
		return snap_create(c, 2, argv + 2, true); /* the older spelling */
	} else if (strcmp(sub, "snap") == 0 && argc == 4 && strcmp(argv[1], "rm") == 0) {
		struct bs_snap_spec spec;
		if (copy_name(spec.volume, sizeof(spec.volume), argv[2], "volume") ||
		    copy_name(spec.snap, sizeof(spec.snap), argv[3], "snapshot"))
			return 1;
		return snap_rm(c, &spec);
	} else if (strcmp(sub, "clone") == 0 && argc >= 3) {
		return volume_clone(c, argc - 1, argv + 1);
	} else if (strcmp(sub, "flatten") == 0 && argc == 2) {
		return volume_flatten(c, argv[1]);
	} else {
		return die_usage("%s", usage);
	}
	if (copy_name(cmd.name, sizeof(cmd.name), argv[1], "volume"))
		return 1;
	return run_command(c, &cmd);
}

/* --- fenced clients ------------------------------------------------------------------ */

static int cmd_blocklist(struct cli *c, int argc, char **argv)
{
	static const char usage[] = "usage: basalt blocklist ls | blocklist rm CLIENT";
	if (argc == 2 && strcmp(argv[0], "rm") == 0) {
		struct map_cmd cmd = { .type = MAP_CMD_FENCE_RM };
		char *end;
		errno = 0;
		cmd.lock_client = strtoull(argv[1], &end, 16);
		if (errno || *end || !*argv[1] || !cmd.lock_client)
			return die_usage("expected a client id in hex as blocklist ls shows it, got '%s'",
				   argv[1]);
		return run_command(c, &cmd);
	}
	if (argc != 1 || strcmp(argv[0], "ls"))
		return die_usage("%s", usage);
	struct cluster_map m;
	bool stale;
	char leader[64];
	if (get_map(c, &m, &stale, leader, sizeof(leader)))
		return 1;
	json_t *list = c->json ? json_array() : NULL;
	bool ok = true;
	for (uint32_t i = 0; i < m.n_fenced && ok; i++) {
		const struct map_fenced *f = &m.fenced[i];
		if (c->json) {
			char id[20];
			snprintf(id, sizeof(id), "%016" PRIx64, f->client);
			ok = jpush(list, json_pack("{s:s, s:I, s:I, s:o}", "client", id, "epoch",
						   (json_int_t)f->epoch, "time_ms",
						   (json_int_t)f->time_ms, "owner", jstr(f->owner)));
			continue;
		}
		time_t t = (time_t)(f->time_ms / 1000);
		char when[32];
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", gmtime(&t));
		printf("%016" PRIx64 "  since epoch %-6" PRIu64 " %s UTC  %s\n", f->client, f->epoch,
		       when, f->owner);
	}
	if (!c->json && !m.n_fenced)
		printf("no fenced clients\n");
	map_free(&m);
	return c->json ? json_out(jkeep(list, ok)) : 0;
}

/* --- placement groups --------------------------------------------------------------- */

static void print_osd_list(const uint32_t *ids, size_t n)
{
	printf("[");
	for (size_t i = 0; i < n; i++)
		printf("%s%u", i ? "," : "", ids[i]);
	printf("]");
}

static json_t *osd_list_json(const uint32_t *ids, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		if (!jpush(a, json_integer(ids[i]))) {
			json_decref(a);
			return NULL;
		}
	return a;
}

static const struct mon_pg_stat *pg_stat_of(const struct mon_osd_stats *st, uint32_t pool,
					    uint32_t pg)
{
	for (uint32_t i = 0; st && i < st->n_pgs; i++)
		if (st->pgs[i].pool == pool && st->pgs[i].pg == pg)
			return &st->pgs[i];
	return NULL;
}

static json_t *pg_json(const struct cluster_map *m, const struct map_pool *p, uint32_t pg,
		       const struct mon_osd_stats *stats)
{
	const struct mon_pg_stat *ps = pg_stat_of(stats, p->id, pg);
	char state[128], pgid[32];
	uint32_t up[16], acting[16];
	size_t n_up = map_pg_osds(m, p, pg, up, 16);
	size_t n_act = map_pg_acting(m, p, pg, acting, 16);
	snprintf(pgid, sizeof(pgid), "%u.%x", p->id, pg);
	json_t *o = json_pack("{s:s, s:o, s:o, s:o, s:s, s:I, s:I}", "pgid", pgid, "up",
			      osd_list_json(up, n_up), "acting", osd_list_json(acting, n_act),
			      "primary", n_act ? json_integer(acting[0]) : json_null(), "state",
			      mon_pg_state_name(ps ? ps->state : 0, state, sizeof(state)), "objects",
			      (json_int_t)(ps ? ps->objects : 0), "bytes",
			      (json_int_t)(ps ? ps->bytes : 0));
	if (o && ps)
		json_object_update_new(
			o, json_pack("{s:I, s:I, s:[I, I], s:I, s:I, s:I}", "last_scrub",
				     (json_int_t)ps->last_scrub_s, "last_deep_scrub",
				     (json_int_t)ps->last_deep_scrub_s, "scrub_progress",
				     (json_int_t)ps->scrub_done, (json_int_t)ps->scrub_total,
				     "bad_copies_found", (json_int_t)ps->bad_found,
				     "bad_copies_repaired", (json_int_t)ps->bad_repaired, "unfound",
				     (json_int_t)ps->unfound));
	return o;
}

static void print_pg(const struct cluster_map *m, const struct map_pool *p, uint32_t pg,
		     const struct mon_osd_stats *stats)
{
	const struct mon_pg_stat *ps = pg_stat_of(stats, p->id, pg);
	char state_buf[128];
	const char *state = mon_pg_state_name(ps ? ps->state : 0, state_buf, sizeof(state_buf));
	uint64_t objects = ps ? ps->objects : 0;
	uint32_t up[16], acting[16];
	size_t n_up = map_pg_osds(m, p, pg, up, 16);
	size_t n_act = map_pg_acting(m, p, pg, acting, 16);
	printf("pg %u.%-5x %-22s %6" PRIu64 " objects  up ", p->id, pg, state, objects);
	print_osd_list(up, n_up);
	printf("  acting ");
	print_osd_list(acting, n_act);
	if (n_act)
		printf("  primary osd.%u", acting[0]);
	if (n_act < p->min_size)
		printf("  (below min_size %u: writes block)", p->min_size);
	else if (n_act < p->size)
		printf("  (undersized)");
	if (ps && ps->scrub_total)
		printf("  scrub %u/%u", ps->scrub_done, ps->scrub_total);
	if (ps && ps->last_scrub_s) {
		char ago[32];
		printf("  scrubbed %s ago", ago_text((uint64_t)time(NULL), ps->last_scrub_s, ago,
						      sizeof(ago)));
	}
	if (ps && (ps->bad_found || ps->unfound))
		printf("  bad copies %u found, %u repaired, %u objects with none good", ps->bad_found,
		       ps->bad_repaired, ps->unfound);
	printf("\n");
}

/* The objects of PG (pool POOL) with no good copy left, as the OSDs'
 * beacons name them: " 1:200:3, 1:200:9". */
static void print_unfound(const struct cluster_map *m, const struct map_pool *p, uint32_t pg,
			  const struct mon_osd_stats *stats)
{
	for (uint32_t i = 0; i < stats->n_osds; i++) {
		const struct mon_osd_usage *u = &stats->osds[i];
		uint32_t listed = u->n_unfound < MON_UNFOUND_MAX ? u->n_unfound : MON_UNFOUND_MAX;
		for (uint32_t k = 0; k < listed; k++)
			if (u->unfound[k].pool == p->id && object_pg(&u->unfound[k], p->pg_num) == pg)
				printf("    no good copy left: object %" PRIx64 ":%" PRIx64 "\n",
				       u->unfound[k].inode, u->unfound[k].index);
	}
	(void)m;
}

/* pg scrub|deep-scrub|repair PGID: asks the PG's primary (PGID is
 * POOL.PG, as pg ls shows it). */
static int cmd_pg_scrub(struct cli *c, const char *kind, const char *pgid, bool wait);

/* pg ls POOL [--inconsistent] | pg map POOL PG: where placement puts a
 * pool's groups, their states and scrubs. */
static int cmd_pg(struct cli *c, int argc, char **argv)
{
	static const char usage[] =
		"usage: basalt pg ls POOL [--inconsistent] | pg map POOL PG | "
		"pg scrub|deep-scrub|repair POOL.PG [--wait]  (PG in hex, as pg ls shows it)";
	if (argc >= 2 && (strcmp(argv[0], "scrub") == 0 || strcmp(argv[0], "deep-scrub") == 0 ||
			  strcmp(argv[0], "repair") == 0)) {
		bool wait = argc == 3 && strcmp(argv[2], "--wait") == 0;
		if (argc > 3 || (argc == 3 && !wait))
			return die_usage("%s", usage);
		return cmd_pg_scrub(c, argv[0], argv[1], wait);
	}
	bool inconsistent = argc == 3 && strcmp(argv[0], "ls") == 0 &&
			    strcmp(argv[2], "--inconsistent") == 0;
	if (argc < 2 || (strcmp(argv[0], "ls") == 0 ? argc != 2 && !inconsistent
						     : strcmp(argv[0], "map") != 0 || argc != 3))
		return die_usage("%s", usage);
	if (name_fits(argv[1], MAP_NAME_MAX, "a pool name"))
		return 1;
	struct cluster_map m;
	bool stale;
	char leader[64];
	if (get_map(c, &m, &stale, leader, sizeof(leader)))
		return 1;
	int rc = 0;
	const struct map_pool *p = map_pool_by_name(&m, argv[1]);
	struct mon_osd_stats stats = { 0 };
	monc_pg_stats(c->mc, &stats); /* without it, states show as unknown */
	char *end = NULL;
	unsigned long pg = argc == 3 && !inconsistent ? strtoul(argv[2], &end, 16) : 0;
	if (!p) {
		rc = die_rc(-ENOENT, "pool '%s' does not exist", argv[1]);
	} else if (argc == 3 && !inconsistent) {
		if (!*argv[2] || *end || pg >= p->pg_num)
			rc = die("pool '%s' has PGs 0 to %x (hex)", p->name, p->pg_num - 1);
		else if (c->json)
			rc = json_out(pg_json(&m, p, (uint32_t)pg, &stats));
		else
			print_pg(&m, p, (uint32_t)pg, &stats);
	} else {
		json_t *list = c->json ? json_array() : NULL;
		bool ok = true;
		for (uint32_t i = 0; i < p->pg_num && ok; i++) {
			const struct mon_pg_stat *ps = pg_stat_of(&stats, p->id, i);
			if (inconsistent && !(ps && ps->unfound))
				continue;
			if (c->json) {
				ok = jpush(list, pg_json(&m, p, i, &stats));
				continue;
			}
			print_pg(&m, p, i, &stats);
			if (inconsistent)
				print_unfound(&m, p, i, &stats);
		}
		if (c->json)
			rc = json_out(jkeep(list, ok));
	}
	mon_osd_stats_free(&stats);
	map_free(&m);
	return rc;
}

/* The stats of PG POOL.PG now (0 when the PG is not reported). */
static int pg_scrub_stamp(struct cli *c, uint32_t pool, uint32_t pg, bool deep, uint64_t *stamp,
			  uint16_t *state)
{
	struct mon_osd_stats stats = { 0 };
	int rc = monc_pg_stats(c->mc, &stats);
	const struct mon_pg_stat *ps = rc ? NULL : pg_stat_of(&stats, pool, pg);
	*stamp = ps ? (deep ? ps->last_deep_scrub_s : ps->last_scrub_s) : 0;
	*state = ps ? ps->state : 0;
	mon_osd_stats_free(&stats);
	return rc;
}

static int pg_scrub_print(struct cli *c, uint32_t pool, uint32_t pg, bool deep, uint32_t primary,
			  bool done)
{
	char pgid[32];
	snprintf(pgid, sizeof(pgid), "%u.%x", pool, pg);
	if (c->json)
		return json_out(json_pack("{s:s, s:s, s:I, s:s}", "pgid", pgid, "scrub",
					  deep ? "deep" : "light", "primary", (json_int_t)primary,
					  "state", done ? "done" : "scheduled"));
	if (done)
		printf("pg %s: %s done\n", pgid, deep ? "deep scrub" : "scrub");
	else
		printf("pg %s: %s scheduled on osd.%u (it starts once the PG is active and clean)\n",
		       pgid, deep ? "deep scrub" : "scrub", primary);
	return 0;
}

static int cmd_pg_scrub(struct cli *c, const char *kind, const char *pgid, bool wait)
{
	char why[256], *end;
	int rc;
	unsigned long pool = strtoul(pgid, &end, 10), pg;
	if (end == pgid || *end != '.' || !end[1] || (pg = strtoul(end + 1, &end, 16), *end))
		return die_usage("expected a PG as POOL.PG (pool id, PG in hex, as pg ls shows it), got '%s'",
			   pgid);
	if (!c->io && (rc = bs_sync_open(c->cfg, &c->data, &c->io, why, sizeof(why))))
		return die_rc(rc, "%s", why);
	const struct map_pool *p = map_pool_by_id(bs_sync_map(c->io), (uint32_t)pool);
	if (!p)
		return die_rc(-ENOENT, "there is no pool %lu", pool);
	if (pg >= p->pg_num)
		return die("pool '%s' has PGs 0 to %x (hex)", p->name, p->pg_num - 1);
	bool deep = strcmp(kind, "scrub") != 0;
	uint64_t before = 0, after = 0;
	uint16_t state;
	if (wait)
		pg_scrub_stamp(c, (uint32_t)pool, (uint32_t)pg, deep, &before, &state);
	struct bs_op op = { .type = BS_SCRUB, .oid = { .pool = (uint32_t)pool, .inode = 0, .index = pg },
			    .flags = deep ? BS_OP_DEEP : 0 };
	rc = bs_sync_op(c->io, &op);
	if (rc == -ETIMEDOUT)
		return die_rc(rc, "pg %lu.%lx has no primary up (see basalt pg ls)", pool, pg);
	if (rc)
		return die_rc(rc, "pg %lu.%lx: %s", pool, pg, strerror(-rc));
	uint32_t acting[MAP_PG_ACTING_MAX];
	size_t n = map_pg_acting(bs_sync_map(c->io), p, (uint32_t)pg, acting, MAP_PG_ACTING_MAX);
	if (!wait)
		return pg_scrub_print(c, (uint32_t)pool, (uint32_t)pg, deep, n ? acting[0] : 0, false);
	/* Until its stamp moves, and it is no longer scrubbing. */
	for (int i = 0; i < c->timeout_s * 5; i++) {
		if (pg_scrub_stamp(c, (uint32_t)pool, (uint32_t)pg, deep, &after, &state) == 0 &&
		    after > before && !(state & MON_PG_SCRUBBING)) {
			return pg_scrub_print(c, (uint32_t)pool, (uint32_t)pg, deep,
					      n ? acting[0] : 0, true);
		}
		struct timespec ts = { 0, 200000000 };
		nanosleep(&ts, NULL);
	}
	return die_rc(-ETIMEDOUT, "pg %lu.%lx: the %s did not finish within %d s (see basalt pg ls)", pool, pg,
		   deep ? "deep scrub" : "scrub", c->timeout_s);
}

/* --- objects ------------------------------------------------------------------------ */

/* An object's version is (interval epoch << 32 | sequence); people read
 * it as EPOCH.SEQ, scripts get the number (--json). */
#define VERSION_EPOCH(v) ((uint64_t)(v) >> 32)
#define VERSION_SEQ(v) ((uint64_t)(v)&0xffffffffu)

/* OBJ is INODE:INDEX in hex, as object ls prints it. */
static int parse_object(const char *text, struct object_id *oid)
{
	char *end;
	oid->inode = strtoull(text, &end, 16);
	if (end == text || *end != ':')
		return die_usage("expected an object as INODE:INDEX in hex, got '%s'", text);
	const char *idx = end + 1;
	oid->index = strtoull(idx, &end, 16);
	if (end == idx || *end)
		return die_usage("expected an object as INODE:INDEX in hex, got '%s'", text);
	return 0;
}

/* Runs OP (oid.inode/index set) on pool POOL through libbasalt. */
static int object_run(struct cli *c, const char *pool, struct bs_op *op)
{
	char why[256];
	int rc;
	if (name_fits(pool, MAP_NAME_MAX, "a pool name"))
		return 1;
	if (!c->io && (rc = bs_sync_open(c->cfg, &c->data, &c->io, why, sizeof(why))))
		return die_rc(rc, "%s", why);
	const struct map_pool *p = map_pool_by_name(bs_sync_map(c->io), pool);
	if (!p)
		return die_rc(-ENOENT, "pool '%s' does not exist", pool);
	op->oid.pool = p->id;
	uint32_t pg = object_pg(&op->oid, p->pg_num), bs = p->block_size;
	rc = bs_sync_op(c->io, op);
	if (!rc)
		return 0;
	p = map_pool_by_id(bs_sync_map(c->io), op->oid.pool);
	uint32_t acting[MAP_PG_ACTING_MAX];
	switch (rc) {
	case -ENOENT:
		return die_rc(rc, p ? "no such object" : "pool '%s' was removed", pool);
	case -EEXIST:
		return die_rc(rc, "the object exists already (put --create writes only a new one)");
	case -EINVAL:
		return die_rc(rc, "outside the pool's %u-byte objects, or not in 4 KiB units", bs);
	case -ENOSPC:
		if (p && map_pool_full(bs_sync_map(c->io), p, why, sizeof(why)))
			return die_rc(rc, "pool '%s' is full: %s; delete data, add OSDs, or raise the %s",
				   pool, why, p->quota_full ? "pool's max_bytes" : "full ratio");
		return die_rc(rc, "no space left on an OSD of pg %u.%x: delete data or add OSDs",
			   op->oid.pool, pg);
	case -EMEDIUMTYPE:
		return die_rc(rc, "pool '%s' has a block size the OSD's store does not", pool);
	case -ETIMEDOUT:
		if (p && !map_pg_acting(bs_sync_map(c->io), p, pg, acting, MAP_PG_ACTING_MAX))
			return die_rc(rc, "no OSD of pg %u.%x is up", op->oid.pool, pg);
		return die_rc(rc, "pg %u.%x did not serve it in time: not active, or read-only "
				  "with fewer OSDs up than min_size (see basalt status)",
			   op->oid.pool, pg);
	default:
		return die_rc(rc, "%s", strerror(-rc));
	}
}

/* "INODE:INDEX", or "INODE:INDEX@SNAP" for a snapshot's clone. */
static void object_name(const struct object_id *oid, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%" PRIx64 ":%" PRIx64, oid->inode, oid->index);
	if (oid->snap && n > 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, "@%" PRIu32, oid->snap);
}

static int list_text(const struct object_id *oid, uint64_t version, uint64_t size, void *arg)
{
	char name[56];
	(void)arg;
	object_name(oid, name, sizeof(name));
	printf("%s  version %" PRIu64 ".%" PRIu64 "  %" PRIu64 " bytes\n", name,
	       VERSION_EPOCH(version), VERSION_SEQ(version), size);
	return 0;
}

static int list_json(const struct object_id *oid, uint64_t version, uint64_t size, void *arg)
{
	char name[56];
	object_name(oid, name, sizeof(name));
	return jpush(arg, json_pack("{s:s, s:I, s:I}", "object", name, "version",
				    (json_int_t)version, "size", (json_int_t)size))
		       ? 0
		       : -ENOMEM;
}

/* object ls POOL */
static int object_ls(struct cli *c, const char *pool)
{
	char why[256];
	if (name_fits(pool, MAP_NAME_MAX, "a pool name"))
		return 1;
	int rc = c->io ? 0 : bs_sync_open(c->cfg, &c->data, &c->io, why, sizeof(why));
	if (rc)
		return die_rc(rc, "%s", why);
	json_t *list = c->json ? json_array() : NULL;
	rc = bs_object_list(c->io, pool, c->json ? list_json : list_text, list, why, sizeof(why));
	if (rc) {
		json_decref(list);
		return die_rc(rc, "%s", rc == -ENOMEM ? "out of memory" : why);
	}
	return c->json ? json_out(list) : 0;
}

/* Reads PATH ("-": stdin), at most 1 MiB, into *BUF (caller frees) for
 * object put: 0, or the exit status after saying why. */
static int object_file(const char *path, uint8_t **buf, size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (!f)
		return die_rc(-errno, "cannot open %s: %s", path, strerror(errno));
	size_t cap = 1u << 20, got;
	*len = 0;
	*buf = calloc(1, cap + 4096);
	while (*buf && (got = fread(*buf + *len, 1, cap + 1 - *len, f)) > 0)
		*len += got;
	if (f != stdin)
		fclose(f);
	int rc = !*buf ? die_rc(-ENOMEM, "out of memory")
		 : !*len ? die_rc(-ENODATA, "%s is empty", path)
		 : *len > cap ? die_rc(-EFBIG, "%s is larger than 1 MiB, the largest object", path)
		 /* An object keeps which 4 KiB chunks were written, not a
		  * byte length: a tail would come back padded with zeros. */
		 : *len % 4096 ? die("%s is %zu bytes: an object holds whole 4 KiB chunks and keeps "
				     "no byte length, so it would come back as %zu bytes; pad it to "
				     "a multiple of 4096 (truncate -s %zu FILE)", path, *len,
				     (*len + 4095) & ~(size_t)4095, (*len + 4095) & ~(size_t)4095)
		 : 0;
	if (rc) {
		free(*buf);
		*buf = NULL;
	}
	return rc;
}

/* object put POOL OBJ FILE */
static int object_put(struct cli *c, const char *pool, struct bs_op *op, const char *path)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = object_file(path, &buf, &len);
	if (rc)
		return rc;
	op->type = BS_WRITE;
	op->len = (uint32_t)len;
	op->buf = buf;
	rc = object_run(c, pool, op);
	free(buf);
	if (!rc && c->json)
		return json_out(json_pack("{s:I, s:I, s:I}", "bytes", (json_int_t)len,
					  "stored_bytes", (json_int_t)op->len, "version",
					  (json_int_t)op->version));
	if (!rc)
		printf("wrote %zu bytes (%u stored): version %" PRIu64 ".%" PRIu64 "\n", len,
		       op->len, VERSION_EPOCH(op->version), VERSION_SEQ(op->version));
	return rc;
}

/* object rm POOL OBJ */
static int object_rm(struct cli *c, const char *pool, struct bs_op *op)
{
	op->type = BS_DELETE;
	int rc = object_run(c, pool, op);
	if (!rc && c->json)
		return json_out(json_pack("{s:s, s:I}", "result", "removed", "version",
					  (json_int_t)op->version));
	if (!rc)
		printf("removed (version %" PRIu64 ".%" PRIu64 ")\n", VERSION_EPOCH(op->version),
		       VERSION_SEQ(op->version));
	return rc;
}

/* object stat POOL OBJ, once stated: its version, size, and where it
 * lives (its PG and the OSDs holding it). */
static int object_stat_print(struct cli *c, const struct bs_op *op)
{
	const struct cluster_map *m = bs_sync_map(c->io);
	const struct map_pool *p = map_pool_by_id(m, op->oid.pool);
	uint32_t pg = p ? object_pg(&op->oid, p->pg_num) : 0, acting[16];
	size_t n = p ? map_pg_acting(m, p, pg, acting, 16) : 0;
	if (c->json) {
		char pgid[32];
		snprintf(pgid, sizeof(pgid), "%u.%x", op->oid.pool, pg);
		return json_out(json_pack("{s:I, s:I, s:s, s:o}", "version", (json_int_t)op->version,
					  "size", (json_int_t)op->size, "pg", pgid, "acting",
					  osd_list_json(acting, n)));
	}
	printf("version %" PRIu64 ".%" PRIu64 ", %" PRIu64 " bytes, pg %u.%x on ",
	       VERSION_EPOCH(op->version), VERSION_SEQ(op->version), op->size, op->oid.pool, pg);
	print_osd_list(acting, n);
	printf("\n");
	return 0;
}

/* object get POOL OBJ [FILE], once stated: the written chunks are the
 * first SIZE bytes of an object put whole; they go to FILE or stdout. */
static int object_get(struct cli *c, const char *pool, const struct bs_op *op, const char *path)
{
	struct bs_op rd = { .type = BS_READ, .oid = op->oid, .len = (uint32_t)op->size };
	if (!rd.len)
		return 0;
	if (!(rd.buf = malloc(rd.len)))
		return die_rc(-ENOMEM, "out of memory");
	if (object_run(c, pool, &rd)) {
		free(rd.buf);
		return 1;
	}
	FILE *f = path ? fopen(path, "wb") : stdout;
	if (!f) {
		free(rd.buf);
		return die_rc(-errno, "cannot create %s: %s", path, strerror(errno));
	}
	size_t w = fwrite(rd.buf, 1, rd.len, f);
	bool ok = w == rd.len && (f == stdout ? fflush(f) == 0 : fclose(f) == 0);
	free(rd.buf);
	return ok ? 0 : die_rc(-EIO, "cannot write the object out");
}

static int cmd_object(struct cli *c, int argc, char **argv)
{
	static const char usage[] =
		"usage: basalt object put POOL OBJ FILE [--create] | get POOL OBJ [FILE] |\n"
		"       rm POOL OBJ |\n"
		"       stat POOL OBJ | ls POOL      (OBJ is INODE:INDEX in hex)";
	const char *sub = argc ? argv[0] : "";
	if (strcmp(sub, "ls") == 0 && argc == 2)
		return object_ls(c, argv[1]);
	if (argc < 3)
		return die_usage("%s", usage);
	struct bs_op op = { 0 };
	if (parse_object(argv[2], &op.oid))
		return 2;
	if (strcmp(sub, "put") == 0 && argc == 5 && strcmp(argv[4], "--create") == 0)
		op.flags = BS_OP_CREATE;
	if (strcmp(sub, "put") == 0 && (argc == 4 || op.flags))
		return object_put(c, argv[1], &op, argv[3]);
	if (strcmp(sub, "rm") == 0 && argc == 3)
		return object_rm(c, argv[1], &op);
	bool stat = strcmp(sub, "stat") == 0 && argc == 3;
	if (!stat && !(strcmp(sub, "get") == 0 && argc <= 4))
		return die_usage("%s", usage);
	op.type = BS_STAT;
	if (object_run(c, argv[1], &op))
		return 1;
	return stat ? object_stat_print(c, &op) : object_get(c, argv[1], &op, argc == 4 ? argv[3] : NULL);
}

/* --- client keys ------------------------------------------------------------------- */

static int cmd_auth_ls(struct cli *c)
{
	struct cluster_map m;
	bool stale;
	char leader[64];
	if (get_map(c, &m, &stale, leader, sizeof(leader)))
		return 1;
	json_t *list = c->json ? json_array() : NULL;
	bool ok = true;
	for (uint32_t i = 0; i < m.n_keys && ok; i++) {
		const struct map_key *k = &m.keys[i];
		json_t *o = c->json ? json_pack("{s:o, s:o}", "entity", jstr(k->entity), "caps",
						jstr(k->caps))
				    : NULL;
		/* A rotation in progress: until when the previous key works. */
		if (o && k->old_until_ms)
			ok = json_object_set_new(o, "previous_key_until_ms",
						 json_integer((json_int_t)k->old_until_ms)) == 0;
		if (c->json)
			ok = ok && jpush(list, o);
		else if (k->old_until_ms)
			printf("%-24s %s (rotated: the previous key works until %.3f, unix time)\n",
			       k->entity, k->caps, k->old_until_ms / 1000.0);
		else
			printf("%-24s %s\n", k->entity, k->caps);
	}
	map_free(&m);
	if (c->json)
		return json_out(jkeep(list, ok));
	return 0;
}

/* The grace of `auth rotate`: how long the previous secret stays valid. */
#define AUTH_GRACE_DEFAULT_MS (10 * 60 * 1000)

/* auth add / rotate: the leader makes the secret and it comes back sealed
 * under this connection's session key; printed once as a keyring section,
 * never handed out again. */
static int auth_print_key(struct cli *c, const struct map_cmd *cmd, const char *text,
			  uint64_t epoch, const uint8_t secret[32], bool has_secret)
{
	if (!has_secret && strcmp(text, "done"))
		return die_rc(-EEXIST, "%s was %s by an earlier attempt whose key is lost; %s", cmd->name,
			      cmd->type == MAP_CMD_AUTH_ADD ? "added" : "rotated",
			      cmd->type == MAP_CMD_AUTH_ADD ? "auth rm it and add it again"
							    : "rotate it again once its grace is over");
	if (!has_secret)
		return die_rc(-EPROTO, "the monitors' answer did not carry the new key of %s",
			      cmd->name);
	char b64[64];
	int rc = keyring_encode(secret, b64, sizeof(b64));
	if (rc)
		return die_rc(rc, "cannot encode the key");
	if (c->json)
		return json_out(json_pack("{s:o, s:o, s:s, s:I}", "entity", jstr(cmd->name), "caps",
					  jstr(cmd->caps), "key", b64, "epoch", (json_int_t)epoch));
	printf("[%s]\nkey = %s\n", cmd->name, b64);
	return 0;
}

/* Parses auth's arguments into CMD. 0, or the exit status of a refusal. */
static int auth_parse(int argc, char **argv, struct map_cmd *cmd, const char **caps)
{
	static const char usage[] = "usage: basalt auth ls | auth add client.NAME [--caps CAPS] | "
				    "auth caps client.NAME CAPS | auth rotate client.NAME [--grace DURATION] | "
				    "auth rm client.NAME";
	*caps = NULL;
	if (argc >= 2 && strcmp(argv[0], "add") == 0) {
		cmd->type = MAP_CMD_AUTH_ADD;
		*caps = "mon=r osd=rw";
		if (argc == 4 && strcmp(argv[2], "--caps") == 0)
			*caps = argv[3];
		else if (argc != 2)
			return die_usage("%s", usage);
	} else if (argc == 3 && strcmp(argv[0], "caps") == 0) {
		cmd->type = MAP_CMD_AUTH_CAPS;
		*caps = argv[2];
	} else if (argc == 2 && strcmp(argv[0], "rm") == 0) {
		cmd->type = MAP_CMD_AUTH_RM;
	} else if ((argc == 2 || argc == 4) && strcmp(argv[0], "rotate") == 0) {
		cmd->type = MAP_CMD_AUTH_ROTATE;
		cmd->value = AUTH_GRACE_DEFAULT_MS;
		if (argc == 4 && strcmp(argv[2], "--grace"))
			return die_usage("%s", usage);
		if (argc == 4 && (cfg_parse_duration_ms(argv[3], &cmd->value) || !cmd->value ||
				  cmd->value > MAP_GRACE_MAX_MS))
			return die_rc(-EINVAL, "bad --grace '%s': a duration from 1ms to 7d, like 10m",
				      argv[3]);
	} else {
		return die_usage("%s", usage);
	}
	if (name_fits(argv[1], sizeof(cmd->name), "an entity name") ||
	    (*caps && name_fits(*caps, sizeof(cmd->caps), "a caps text")))
		return 1;
	snprintf(cmd->name, sizeof(cmd->name), "%s", argv[1]);
	if (*caps)
		snprintf(cmd->caps, sizeof(cmd->caps), "%s", *caps);
	return 0;
}

static int cmd_auth(struct cli *c, int argc, char **argv)
{
	if (argc == 1 && strcmp(argv[0], "ls") == 0)
		return cmd_auth_ls(c);
	struct map_cmd cmd = { 0 };
	const char *caps;
	int rc = auth_parse(argc, argv, &cmd, &caps);
	if (rc)
		return rc;
	char text[1024];
	uint64_t epoch = 0;
	uint8_t secret[32];
	bool has_secret;
	rc = monc_command_key(c->mc, &cmd, text, sizeof(text), &epoch, secret, &has_secret);
	if (rc == -ETIMEDOUT)
		return die_rc(rc, "%s (is a majority of monitors up?)", text);
	if (rc)
		return die_rc(rc, "%s", text);
	if (cmd.type == MAP_CMD_AUTH_ADD || cmd.type == MAP_CMD_AUTH_ROTATE) {
		rc = auth_print_key(c, &cmd, text, epoch, secret, has_secret);
		explicit_bzero(secret, sizeof(secret));
		return rc;
	}
	if (c->json)
		return json_out(json_pack("{s:o, s:I}", "result", jstr(text), "epoch", (json_int_t)epoch));
	printf("%s (map epoch %" PRIu64 ")\n", text, epoch);
	return 0;
}

/* --- main ------------------------------------------------------------------------- */

/* Whether LINE (in usage_text's command list) starts the entry of
 * COMMAND: "  volume create ..." for "volume". */
static bool help_line_is(const char *line, const char *command)
{
	size_t n = strlen(command);
	return line[0] == ' ' && line[1] == ' ' && strncmp(line + 2, command, n) == 0 &&
	       (line[2 + n] == ' ' || line[2 + n] == '\n');
}

/* Prints the help of COMMAND to stdout: its entries of usage_text, each
 * with the lines that continue it, so the list of commands stays the one
 * place that describes them. 0, or -ENOENT for an unknown command. */
static int help_print(const char *command)
{
	const char *list = strstr(usage_text, "commands:\n"), *end = strstr(usage_text, "\noptions:");
	bool in_entry = false, found = false, sized = false;
	for (const char *line = list; line && line < end; line = strchr(line, '\n') + 1) {
		if (line[0] == ' ' && line[1] == ' ' && line[2] != ' ')
			in_entry = help_line_is(line, command);
		if (!in_entry)
			continue;
		if (!found)
			printf("usage: basalt [OPTIONS] %s ...\n\n", command);
		found = true;
		size_t len = (size_t)(strchr(line, '\n') + 1 - line);
		sized = sized || memmem(line, len, "SIZE", 4);
		fwrite(line, 1, len, stdout);
	}
	if (sized)
		printf("\nSIZE: " SIZE_GRAMMAR ".\n");
	if (found)
		printf("\nOPTIONS: -c CONF, --keyring, --name, --json, --mon, --timeout"
		       " (basalt --help)\n");
	return found ? 0 : -ENOENT;
}

/* `basalt help [COMMAND]` and `basalt COMMAND ... --help`: 0 when help
 * was printed, 2 for an unknown command, -1 when ARGV asks for none. */
static int help_route(int argc, char **argv)
{
	const char *topic = NULL;
	bool asked = argc >= 1 && strcmp(argv[0], "help") == 0;
	if (asked) {
		if (argc > 2)
			return die_usage("usage: basalt help [COMMAND]");
		topic = argc == 2 ? argv[1] : NULL;
	}
	for (int i = 1; i < argc && !asked; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			asked = true;
			topic = argv[0];
		}
	if (!asked)
		return -1;
	if (topic && strcmp(topic, "backup") == 0) {
		fputs(backup_usage, stdout); /* its own, longer help */
		return 0;
	}
	if (!topic) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (help_print(topic))
		return die_usage("no command '%s' (basalt help lists them)", topic);
	return 0;
}

/* --timeout S: whole seconds, 1 s to a day. */
static int parse_timeout(const char *text, uint64_t *out /* out */)
{
	char why[256];
	if (number_parse_u64(text, "--timeout (seconds)", 1, 86400, out, why, sizeof(why)))
		return die_usage("%s", why);
	return 0;
}


/* The options before the command. Returns -1 to go on, else the exit
 * status (--help, --version, a bad option). */
static int parse_options(int argc, char **argv, struct cli *c, struct tool *t,
			 const char **mon, uint64_t *timeout_s)
{
	static const struct option opts[] = {
		TOOL_LONG_OPTIONS,
		{ "json", no_argument, NULL, 'j' },
		{ "mon", required_argument, NULL, 'm' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;
	/* Options come before the command; the command's own follow it. */
	while ((ch = getopt_long(argc, argv, "+c:h", opts, NULL)) != -1) {
		if (tool_option(t, ch, optarg))
			continue;
		switch (ch) {
		case 'j': c->json = true; break;
		case 'm': *mon = optarg; break;
		case 't':
			if (parse_timeout(optarg, timeout_s))
				return 2;
			break;
		case 'h': fputs(usage_text, stdout); return 0;
		case 'V': printf("basalt %s\n", BASALT_VERSION); return 0;
		default: fputs(usage_text, stderr); return 2;
		}
	}
	json_mode = c->json;
	if (optind >= argc) {
		fputs(usage_text, stderr);
		return 2;
	}
	return -1;
}

/* The config, keyring and monitor client; MON (may be NULL) the monitor
 * to ask. 0, or the exit status after saying why. */
int cli_connect(struct cli *c, struct tool *t, const char *mon, uint64_t timeout_s)
{
	char why[512];
	int rc = tool_load(t, why, sizeof(why));
	if (rc)
		return die_rc(rc, "%s", why);
	c->cfg = t->cfg;
	struct monc_params mp = { t->name, t->keyring_path, timeout_s * 1000, -1 };
	c->timeout_s = (int)timeout_s; /* parse_timeout: at most a day */
	c->data = (struct bs_client_params){ .entity = t->name, .keyring = t->keyring_path,
					     .op_timeout_ms = timeout_s * 1000,
					     .attempt_timeout_ms = 2000 };
	if ((rc = monc_open(c->cfg, &mp, &c->mc, why, sizeof(why))))
		return die_rc(rc, "%s", why);
	if (!mon)
		return 0;
	int n;
	const struct mon_member *members = monc_members(c->mc, &n);
	for (int i = 0; i < n; i++)
		if (strcmp(members[i].name, mon) == 0)
			c->mon = i;
	return c->mon < 0 ? die_rc(-ENOENT, "no monitor named '%s' in %s", mon, t->conf) : 0;
}

/* Runs command CMD with its N arguments ARGS. */
static int dispatch(struct cli *c, const char *cmd, int n, char **args)
{
	if (strcmp(cmd, "status") == 0 && n == 0)
		return cmd_status(c);
	if (strcmp(cmd, "mon") == 0 && n == 1 && strcmp(args[0], "ls") == 0)
		return cmd_mon_ls(c);
	if (strcmp(cmd, "osd") == 0 && n >= 1)
		return cmd_osd(c, n, args);
	if (strcmp(cmd, "pool") == 0)
		return cmd_pool(c, n, args);
	if (strcmp(cmd, "auth") == 0)
		return cmd_auth(c, n, args);
	if (strcmp(cmd, "volume") == 0)
		return cmd_volume(c, n, args);
	if (strcmp(cmd, "snap") == 0)
		return cmd_snap(c, n, args);
	if (strcmp(cmd, "blocklist") == 0)
		return cmd_blocklist(c, n, args);
	if (strcmp(cmd, "pg") == 0)
		return cmd_pg(c, n, args);
	if (strcmp(cmd, "object") == 0)
		return cmd_object(c, n, args);
	return die_usage("unknown command '%s' (basalt --help lists them)", cmd);
}

int main(int argc, char **argv)
{
	struct cli c = { .mon = -1 };
	struct tool t;
	tool_init(&t);
	const char *mon = NULL;
	uint64_t timeout_s = 30;
	int rc = parse_options(argc, argv, &c, &t, &mon, &timeout_s);
	if (rc >= 0)
		return rc;
	int help = help_route(argc - optind, argv + optind);
	if (help >= 0)
		return help;
	log_init("basalt");
	log_set_level(LOG_LEVEL_ERROR);
	if (strcmp(argv[optind], "backup") == 0) /* connects only when it needs the cluster */
		rc = cmd_backup(&c, &t, mon, timeout_s, argc - optind - 1, argv + optind + 1);
	else if (strcmp(argv[optind], "cluster") == 0) /* makes one: nothing to connect to */
		rc = cmd_cluster(&t, argc - optind - 1, argv + optind + 1);
	else if (!(rc = cli_connect(&c, &t, mon, timeout_s)))
		rc = dispatch(&c, argv[optind], argc - optind - 1, argv + optind + 1);
	bs_sync_close(c.io);
	monc_close(c.mc);
	tool_fini(&t);
	return rc;
}
