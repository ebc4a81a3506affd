/* basalt: the command line for operators.
 *
 *   basalt [-c CONF] [--keyring PATH] [--name ENTITY] [--json]
 *          [--mon NAME] [--timeout SECONDS] COMMAND ...
 *
 *   status                       the cluster at a glance
 *   mon ls                       monitors and which one leads
 *   osd ls | osd tree            OSDs (tree: by host)
 *   osd out|in|rm ID             take an OSD out of / into data placement, forget it
 *   osd set-nearfull-ratio|set-backfillfull-ratio|set-full-ratio RATIO
 *   pool create NAME [--size N] [--min-size N] [--ec K+M] [--pg-num N] [--block-size S]
 *   pool ls | pool rm NAME | pool set NAME size|min_size|pg_num|max_bytes VALUE
 *   volume create NAME --size SIZE [--pool POOL] | ls | info NAME | resize NAME SIZE
 *   volume rm NAME | rename NAME NEW | snap create|rm NAME SNAP | clone NAME SNAP NEW
 *   pg ls POOL [--inconsistent] | pg map POOL PG | pg scrub|deep-scrub|repair POOL.PG
 *   osd scrub ID [--deep]
 *   object put POOL OBJ FILE | get POOL OBJ [FILE] | rm POOL OBJ | stat POOL OBJ | ls POOL
 *   auth add client.NAME [--caps CAPS] | auth ls | auth caps NAME CAPS | auth rm NAME
 *
 * Exit status 0 on success; otherwise one line on stderr and 1 when the
 * command failed, 2 when the command line was wrong (nothing was done). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/config.h"
#include "common/keyring.h"
#include "common/log.h"
#include "client/libbasalt.h"
#include "client/monc.h"
#include "common/cluster/osd_proto.h"
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
	"  pool create NAME [--size N] [--min-size N] [--ec K+M] [--pg-num N]\n"
	"                   [--block-size SIZE]\n"
	"                                  replicated (default size 3, min-size 2) or\n"
	"                                  erasure-coded; pg-num default 128; block 128K\n"
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
	"  volume resize NAME SIZE         grow, or shrink and free the cut-off blocks\n"
	"  volume rm NAME                  free every block, then forget the volume\n"
	"  volume rename NAME NEW\n"
	"  volume unlock NAME --force      take the exclusive lock from whoever holds\n"
	"                                  it, fencing that client: the OSDs refuse\n"
	"                                  everything it sends from then on\n"
	"  volume snap create|rm NAME SNAP a snapshot of a volume\n"
	"  volume clone NAME SNAP NEW      a new volume from a snapshot\n"
	"  object put POOL OBJ FILE | object get POOL OBJ [FILE] | object rm POOL OBJ\n"
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
	"                                  keyring section; CAPS like 'mon=r osd=rw'\n"
	"                                  (the default): mon=r reads the map, mon=rw\n"
	"                                  changes it\n"
	"  auth ls | auth caps client.NAME CAPS | auth rm client.NAME\n"
	"  blocklist ls                    fenced client instances\n"
	"  blocklist rm CLIENT             forget one (only once it has stopped)\n"
	"\n"
	"options:\n"
	"  -c CONF          config file (default $BASALT_CONF)\n"
	"  --keyring PATH   keyring (default: keyring = in [global], or beside CONF)\n"
	"  --name ENTITY    who to authenticate as (default client.admin)\n"
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

struct cli {
	struct cfg *cfg;
	struct monc *mc;
	bool json;
	int mon;
	struct bs_client_params data; /* object I/O through libbasalt */
	struct bs_sync *io;	      /* opened by the first object command */
	int timeout_s;		      /* --timeout */
};

static int die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, va_list ap)
{
	fputs("basalt: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static int die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	say(fmt, ap);
	va_end(ap);
	return 1;
}

/* A command line that cannot be run as given (unknown command, option or
 * value): one line on stderr and exit status 2, apart from 1 for a
 * command that was tried and failed (see "Exit status" in the README). */
static int die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int die_usage(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	say(fmt, ap);
	va_end(ap);
	return 2;
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

/* Names are restricted to [A-Za-z0-9_.-]; addresses and hosts are quoted
 * as they are, escaping what JSON requires. */
static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static int get_map(struct cli *c, struct cluster_map *m, bool *stale, char *leader, size_t len)
{
	char text[1024];
	memset(m, 0, sizeof(*m));
	int rc = monc_get_map(c->mc, c->mon, m, stale, text, sizeof(text));
	if (rc == -EACCES || rc == -ETIMEDOUT || rc == -ECONNREFUSED)
		return die("%s", text); /* names the monitors and what each did */
	if (rc)
		return die("no map from the monitors: %s", strerror(-rc));
	size_t n = strnlen(text, len - 1); /* a monitor name: it fits */
	memcpy(leader, text, n);
	leader[n] = '\0';
	if (*stale)
		fprintf(stderr, "basalt: warning: the monitor has no quorum; this map may be stale\n");
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

static void fsid_str(const uint8_t *fsid, char *out)
{
	for (int i = 0; i < 16; i++)
		sprintf(out + 2 * i, "%02x", fsid[i]);
}

static int run_command(struct cli *c, struct map_cmd *cmd)
{
	char text[1024];
	uint64_t epoch = 0;
	int rc = monc_command(c->mc, cmd, text, sizeof(text), &epoch);
	if (rc == -ETIMEDOUT)
		return die("%s (is a majority of monitors up?)", text);
	if (rc)
		return die("%s", text);
	if (c->json)
		printf("{\"result\": \"%s\", \"epoch\": %" PRIu64 "}\n", text, epoch);
	else
		printf("%s (map epoch %" PRIu64 ")\n", text, epoch);
	return 0;
}

/* --- status and monitors ---------------------------------------------------- */

/* PG states counted for status: how many PGs in each distinct state, and
 * the sums health needs. */
#define PG_SUMMARY_STATES 32
struct pg_summary {
	uint16_t states[PG_SUMMARY_STATES];
	unsigned counts[PG_SUMMARY_STATES];
	uint32_t n_states;
	unsigned down, incomplete, inactive, degraded_pgs, inconsistent_pgs;
	uint64_t degraded, missing, objects, stored_bytes;
	uint64_t unfound, bad_found, bad_repaired;
	uint64_t oldest_scrub_s; /* of the PG scrubbed longest ago (0: unknown) */
	uint32_t scrubbing;
};

static void pg_summarize(const struct mon_osd_stats *pgs, bool have, struct pg_summary *s)
{
	memset(s, 0, sizeof(*s));
	for (uint32_t i = 0; have && i < pgs->n_pgs; i++) {
		const struct mon_pg_stat *p = &pgs->pgs[i];
		uint32_t k = 0;
		while (k < s->n_states && s->states[k] != p->state)
			k++;
		if (k == s->n_states && k < PG_SUMMARY_STATES)
			s->states[s->n_states++] = p->state;
		if (k < PG_SUMMARY_STATES)
			s->counts[k]++;
		if (p->state & MON_PG_DOWN)
			s->down++;
		else if (p->state & MON_PG_INCOMPLETE)
			s->incomplete++;
		else if (!mon_pg_state_active(p->state))
			s->inactive++;
		if (p->state & MON_PG_DEGRADED)
			s->degraded_pgs++;
		s->degraded += p->degraded;
		s->missing += p->missing;
		s->objects += p->objects;
		s->stored_bytes += p->bytes;
		s->unfound += p->unfound;
		s->inconsistent_pgs += p->unfound > 0;
		s->bad_found += p->bad_found;
		s->bad_repaired += p->bad_repaired;
		s->scrubbing += (p->state & MON_PG_SCRUBBING) != 0;
		if (p->last_scrub_s && (!s->oldest_scrub_s || p->last_scrub_s < s->oldest_scrub_s))
			s->oldest_scrub_s = p->last_scrub_s;
	}
}

/* " 1:200:3 (pg 1.5), ..." for the first few objects no good copy of is
 * left. */
static void unfound_names(const struct cluster_map *m, const struct mon_osd_stats *pgs,
			  char *buf, size_t len)
{
	size_t at = 0;
	unsigned n = 0;
	buf[0] = 0;
	for (uint32_t i = 0; i < pgs->n_osds; i++) {
		const struct mon_osd_usage *u = &pgs->osds[i];
		uint32_t listed = u->n_unfound < MON_UNFOUND_MAX ? u->n_unfound : MON_UNFOUND_MAX;
		for (uint32_t k = 0; k < listed && n < 4 && at < len; k++, n++) {
			const struct map_pool *p = map_pool_by_id(m, u->unfound[k].pool);
			at += (size_t)snprintf(buf + at, len - at, "%s%" PRIx64 ":%" PRIx64 " (pg %u.%x)",
					       n ? ", " : "", u->unfound[k].inode,
					       u->unfound[k].index, u->unfound[k].pool,
					       p ? object_pg(&u->unfound[k], p->pg_num) : 0);
		}
	}
}

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

/* OSD ID's usage in the stats reply, or NULL (no beacon: down). */
static const struct mon_osd_usage *osd_usage(const struct mon_osd_stats *pgs, uint32_t id)
{
	for (uint32_t i = 0; i < pgs->n_osds; i++)
		if (pgs->osds[i].osd == id)
			return &pgs->osds[i];
	return NULL;
}

/* A pool's space: what its volumes were given, what it holds (one copy),
 * and what it can still take before its first OSD reaches the full
 * ratio — placement spreads copies by weight, so an OSD with a share w
 * of the weight fills at w of the pool's raw writes (an estimate, as
 * Ceph's MAX AVAIL) — within its quota. */
struct pool_space {
	uint64_t provisioned, stored, available;
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
			out->stored += pgs->pgs[i].bytes;
	double weights = 0, raw = -1;
	for (uint32_t i = 0; i < m->n_osds; i++)
		if (m->osds[i].exists && m->osds[i].in)
			weights += m->osds[i].weight;
	for (uint32_t i = 0; i < m->n_osds && weights > 0; i++) {
		const struct mon_osd_usage *u = osd_usage(pgs, i);
		if (!m->osds[i].exists || !m->osds[i].in || !m->osds[i].weight || !u)
			continue;
		double used = (double)(u->data_bytes - u->data_avail_bytes);
		double room = (double)u->data_bytes * m->full_ratio / MAP_RATIO_ONE - used;
		double fill = room > 0 ? room / (m->osds[i].weight / weights) : 0;
		if (raw < 0 || fill < raw)
			raw = fill;
	}
	out->available = raw > 0 ? (uint64_t)(raw / (p->size ? p->size : 1)) : 0;
	if (p->max_bytes)
		out->available = out->stored >= p->max_bytes ? 0
			       : out->available < p->max_bytes - out->stored ? out->available
									     : p->max_bytes - out->stored;
}

/* "osd.1 (96%), osd.2 (95%)" for the OSDs in STATE, at most 6 named;
 * returns how many. */
static unsigned osds_in_state(const struct cluster_map *m, const struct mon_osd_stats *pgs,
			      enum map_full_state state, char *buf, size_t len)
{
	unsigned n = 0;
	size_t at = 0;
	buf[0] = 0;
	for (uint32_t i = 0; i < m->n_osds; i++) {
		if (!m->osds[i].exists || m->osds[i].full != state)
			continue;
		const struct mon_osd_usage *u = osd_usage(pgs, i);
		char use[16] = "down";
		if (u)
			snprintf(use, sizeof(use), "%u%%", mon_osd_usage_ratio(u) / 100);
		if (n++ < 6 && at < len)
			at += (size_t)snprintf(buf + at, len - at, "%sosd.%u (%s)", n > 1 ? ", " : "",
					       i, use);
	}
	if (n > 6 && at < len)
		snprintf(buf + at, len - at, " and %u more", n - 6);
	return n;
}

static void print_fullness_json(const struct cluster_map *m, const struct mon_osd_stats *pgs)
{
	printf(", \"fullness\": {\"nearfull_ratio\": %.4f, \"backfillfull_ratio\": %.4f, "
	       "\"full_ratio\": %.4f, \"osds\": [",
	       m->nearfull_ratio / 1e4, m->backfillfull_ratio / 1e4, m->full_ratio / 1e4);
	bool first = true;
	for (uint32_t i = 0; i < m->n_osds; i++) {
		const struct mon_osd_usage *u = osd_usage(pgs, i);
		if (!m->osds[i].exists)
			continue;
		printf("%s{\"id\": %u, \"state\": \"%s\"", first ? "" : ", ", i,
		       map_full_state_name(m->osds[i].full));
		first = false;
		if (u) {
			printf(", \"used_ratio\": %.4f, \"data_bytes\": %" PRIu64
			       ", \"available_bytes\": %" PRIu64 ", \"slow_ops\": %u"
			       ", \"slow_oldest_ms\": %" PRIu64 ", \"slow_waiting_for\": ",
			       mon_osd_usage_ratio(u) / 1e4, u->data_bytes, u->data_avail_bytes,
			       u->slow_ops, u->slow_oldest_ms);
			json_str(u->slow_what);
		}
		printf("}");
	}
	printf("]}, \"pool_usage\": [");
	for (uint32_t i = 0; i < m->n_pools; i++) {
		struct pool_space ps;
		const struct map_pool *p = &m->pools[i];
		pool_space(m, p, pgs, &ps);
		printf("%s{\"name\": ", i ? ", " : "");
		json_str(p->name);
		printf(", \"stored_bytes\": %" PRIu64 ", \"available_bytes\": %" PRIu64
		       ", \"provisioned_bytes\": %" PRIu64 ", \"max_bytes\": %" PRIu64
		       ", \"overcommit\": %.3f, \"full\": %s}",
		       ps.stored, ps.available, ps.provisioned, p->max_bytes,
		       ps.stored + ps.available ? (double)ps.provisioned / (ps.stored + ps.available)
						: 0.0,
		       map_pool_full(m, p, NULL, 0) ? "true" : "false");
	}
	printf("]");
}

static void print_fullness_text(const struct cluster_map *m, const struct mon_osd_stats *pgs)
{
	/* The 8 fullest OSDs. */
	uint32_t ids[8];
	unsigned n = 0;
	for (uint32_t i = 0; i < m->n_osds; i++) {
		const struct mon_osd_usage *u = osd_usage(pgs, i);
		if (!u || !u->data_bytes)
			continue;
		unsigned k = n < 8 ? n++ : 8;
		while (k > 0 && mon_osd_usage_ratio(osd_usage(pgs, ids[k - 1])) < mon_osd_usage_ratio(u)) {
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
			const struct mon_osd_usage *u = osd_usage(pgs, ids[k]);
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
		char a[32], b[32], c[32], q[48] = "";
		pool_space(m, p, pgs, &ps);
		if (p->max_bytes) {
			char qb[32];
			snprintf(q, sizeof(q), ", quota %s", cfg_format_size(p->max_bytes, qb, sizeof(qb)));
		}
		printf("  pool %s: %s stored, %s available, %s provisioned", p->name,
		       cfg_format_size(ps.stored, a, sizeof(a)),
		       cfg_format_size(ps.available, b, sizeof(b)),
		       cfg_format_size(ps.provisioned, c, sizeof(c)));
		if (ps.stored + ps.available)
			printf(" (%.1fx overcommitted)",
			       (double)ps.provisioned / (double)(ps.stored + ps.available));
		printf("%s%s\n", q, map_pool_full(m, p, NULL, 0) ? "; FULL: writes refused" : "");
	}
}

static int cmd_status(struct cli *c)
{
	struct cluster_map m;
	bool stale;
	char leader[64], fsid[33];
	if (get_map(c, &m, &stale, leader, sizeof(leader)))
		return 1;
	int n;
	const struct mon_member *members = monc_members(c->mc, &n);
	struct mon_status st = { 0 };
	int li = -1;
	for (int i = 0; i < n; i++)
		if (strcmp(members[i].name, leader) == 0)
			li = i;
	if (li >= 0)
		monc_status(c->mc, li, &st);
	uint32_t total, up, in;
	map_osd_counts(&m, &total, &up, &in);
	fsid_str(m.fsid, fsid);
	uint64_t capacity = 0;
	char down[256] = "";
	size_t dlen = 0;
	for (uint32_t i = 0; i < m.n_osds; i++) {
		const struct map_osd *o = &m.osds[i];
		if (o->exists && o->in)
			capacity += o->device_bytes;
		if (o->exists && !o->up && dlen < sizeof(down) - 16)
			dlen += (size_t)snprintf(down + dlen, sizeof(down) - dlen, "%sosd.%u%s",
						 dlen ? ", " : "", i, o->in ? "" : " (out)");
	}
	int quorum = __builtin_popcount(st.quorum_mask);
	struct mon_osd_stats pgs = { 0 };
	bool have_pgs = monc_pg_stats(c->mc, &pgs) == 0;
	struct pg_summary sum;
	pg_summarize(&pgs, have_pgs, &sum);
	/* Every problem, worst first. */
	char health[1536] = "OK";
	size_t hl = 0;
#define HEALTH(level, ...)                                                                     \
	do {                                                                                   \
		if (hl < sizeof(health))                                                       \
			hl += (size_t)snprintf(health + hl, sizeof(health) - hl, "%s",         \
					       hl ? "; " : level);                             \
		if (hl < sizeof(health))                                                       \
			hl += (size_t)snprintf(health + hl, sizeof(health) - hl, __VA_ARGS__); \
	} while (0)
	if (stale || !leader[0])
		HEALTH("ERR: ", "no monitor quorum");
	if (sum.down)
		HEALTH("ERR: ", "%u PGs down (no OSD of theirs is up)", sum.down);
	if (sum.incomplete)
		HEALTH("ERR: ", "%u PGs incomplete (waiting for an OSD that holds their newest data)",
		       sum.incomplete);
	if (sum.unfound) {
		char objs[256];
		unfound_names(&m, &pgs, objs, sizeof(objs));
		HEALTH("ERR: ", "%" PRIu64 " objects in %u PGs have no good copy left (their reads "
				"fail): %s%s; basalt pg ls POOL --inconsistent",
		       sum.unfound, sum.inconsistent_pgs, objs, sum.unfound > 4 ? ", ..." : "");
	}
	if (!stale && leader[0] && quorum < n)
		HEALTH("WARN: ", "%d of %d monitors out of quorum", n - quorum, n);
	char names[256];
	unsigned nfull = osds_in_state(&m, &pgs, MAP_FULL_FULL, names, sizeof(names));
	if (nfull)
		HEALTH("ERR: ", "%u OSD%s full: %s; client writes are refused until space is freed",
		       nfull, nfull > 1 ? "s" : "", names);
	if (sum.inactive)
		HEALTH("WARN: ", "%u PGs inactive (I/O waits)", sum.inactive);
	if (sum.degraded_pgs)
		HEALTH("WARN: ", "%u PGs degraded (%" PRIu64 " object copies missing)",
		       sum.degraded_pgs, sum.degraded);
	if (up < total)
		HEALTH("WARN: ", "%u OSDs down: %s", total - up, down);
	if (sum.bad_repaired)
		HEALTH("WARN: ", "%" PRIu64 " bad copies found and repaired since the OSDs started "
				 "(a disk may be failing: see the OSD logs)",
		       sum.bad_repaired);
	unsigned nback = osds_in_state(&m, &pgs, MAP_FULL_BACKFILL, names, sizeof(names));
	if (nback)
		HEALTH("WARN: ", "%u OSD%s backfillfull: %s; recovery will not move data to %s",
		       nback, nback > 1 ? "s" : "", names, nback > 1 ? "them" : "it");
	unsigned nnear = osds_in_state(&m, &pgs, MAP_FULL_NEAR, names, sizeof(names));
	if (nnear) {
		char pools[128] = "";
		for (uint32_t i = 0, at = 0; i < m.n_pools && at < sizeof(pools); i++)
			at += (uint32_t)snprintf(pools + at, sizeof(pools) - at, "%s%s", i ? ", " : "",
						 m.pools[i].name);
		HEALTH("WARN: ", "%u OSD%s nearfull: %s (pools %s)", nnear, nnear > 1 ? "s" : "",
		       names, m.n_pools ? pools : "none");
	}
	for (uint32_t i = 0; i < m.n_pools; i++)
		if (m.pools[i].quota_full) {
			char q[32];
			HEALTH("WARN: ", "pool '%s' reached its quota (max_bytes %s): writes to it are "
					 "refused", m.pools[i].name,
			       cfg_format_size(m.pools[i].max_bytes, q, sizeof(q)));
		}
	for (uint32_t i = 0; have_pgs && i < pgs.n_osds; i++) {
		const struct mon_osd_usage *u = &pgs.osds[i];
		if (u->slow_ops)
			HEALTH("WARN: ", "%u slow ops on osd.%u, oldest %" PRIu64 " s (waiting for %s)",
			       u->slow_ops, u->osd, u->slow_oldest_ms / 1000, u->slow_what);
	}
#undef HEALTH
	if (c->json) {
		printf("{\"fsid\": \"%s\", \"epoch\": %" PRIu64 ", \"stale\": %s, \"mon\": {\"leader\": ",
		       fsid, m.epoch, stale ? "true" : "false");
		json_str(leader);
		printf(", \"quorum\": [");
		for (int i = 0, k = 0; i < n; i++)
			if (st.quorum_mask & (1u << i)) {
				printf("%s", k++ ? ", " : "");
				json_str(members[i].name);
			}
		printf("], \"members\": [");
		for (int i = 0; i < n; i++) {
			printf("%s", i ? ", " : "");
			json_str(members[i].name);
		}
		printf("]}, \"health\": ");
		json_str(health);
		printf(", \"osd\": {\"total\": %u, \"up\": %u, \"in\": %u}, \"pools\": %u, "
		       "\"volumes\": %u, \"pgs\": {\"total\": %u",
		       total, up, in, m.n_pools, m.n_volumes, have_pgs ? pgs.n_pgs : 0);
		for (uint32_t i = 0; i < sum.n_states; i++) {
			char name[128];
			printf(", \"%s\": %u", mon_pg_state_name(sum.states[i], name, sizeof(name)),
			       sum.counts[i]);
		}
		printf("}, \"usage\": {\"total_bytes\": %" PRIu64 ", \"used_bytes\": %" PRIu64
		       ", \"stored_bytes\": %" PRIu64 ", \"objects\": %" PRIu64 "}"
		       ", \"recovery\": {\"degraded_copies\": %" PRIu64 ", \"objects_left\": %" PRIu64
		       ", \"recovered_objects\": %" PRIu64 ", \"recovered_bytes\": %" PRIu64 "}",
		       capacity, pgs.used_bytes, sum.stored_bytes, sum.objects, sum.degraded,
		       sum.missing, pgs.recovered_objects, pgs.recovered_bytes);
		print_fullness_json(&m, &pgs);
		printf(", \"scrub\": {\"scrubbing\": %u, \"oldest_scrub\": %" PRIu64
		       ", \"bad_copies_found\": %" PRIu64 ", \"bad_copies_repaired\": %" PRIu64
		       ", \"unfound\": %" PRIu64 "}",
		       sum.scrubbing, sum.oldest_scrub_s, sum.bad_found, sum.bad_repaired,
		       sum.unfound);
		printf("}\n");
	} else {
		printf("  cluster:  %s\n  health:   %s\n", fsid, health);
		printf("  mon:      %d monitors, leader %s, quorum", n, leader[0] ? leader : "none");
		for (int i = 0, k = 0; i < n; i++)
			if (st.quorum_mask & (1u << i))
				printf("%s%s", k++ ? "," : " ", members[i].name);
		printf("\n  osd:      %u total, %u up, %u in; %.1f GiB in\n", total, up, in,
		       capacity / 1073741824.0);
		printf("  pools:    %u, volumes: %u\n", m.n_pools, m.n_volumes);
		if (have_pgs && pgs.n_pgs) {
			printf("  pgs:      %u:", pgs.n_pgs);
			for (uint32_t i = 0; i < sum.n_states; i++) {
				char name[128];
				printf("%s %u %s", i ? "," : "", sum.counts[i],
				       mon_pg_state_name(sum.states[i], name, sizeof(name)));
			}
			printf("\n");
		}
		if (have_pgs)
			printf("  usage:    %.1f MiB used of %.1f GiB, %.1f MiB stored in %" PRIu64
			       " objects\n",
			       pgs.used_bytes / 1048576.0, pgs.device_bytes / 1073741824.0,
			       sum.stored_bytes / 1048576.0, sum.objects);
		if (have_pgs)
			print_fullness_text(&m, &pgs);
		if (have_pgs && (sum.oldest_scrub_s || sum.scrubbing)) {
			char ago[48] = "none yet";
			if (sum.oldest_scrub_s) {
				char t[32];
				snprintf(ago, sizeof(ago), "%s ago",
					 ago_text((uint64_t)time(NULL), sum.oldest_scrub_s, t, sizeof(t)));
			}
			printf("  scrub:    %u PGs scrubbing; the oldest PG's last scrub: %s; %" PRIu64
			       " bad copies found, %" PRIu64 " repaired\n",
			       sum.scrubbing, ago, sum.bad_found, sum.bad_repaired);
		}
		print_incomplete(&m, &pgs, have_pgs);
		if (sum.missing || sum.degraded)
			printf("  recovery: %" PRIu64 " objects left, %" PRIu64
			       " object copies missing; %" PRIu64 " objects (%.1f MiB) recovered so far\n",
			       sum.missing, sum.degraded, pgs.recovered_objects,
			       pgs.recovered_bytes / 1048576.0);
		printf("  map:      epoch %" PRIu64 "\n", m.epoch);
	}
	mon_osd_stats_free(&pgs);
	map_free(&m);
	return 0;
}

static int cmd_mon_ls(struct cli *c)
{
	int n;
	const struct mon_member *members = monc_members(c->mc, &n);
	if (c->json)
		printf("[");
	for (int i = 0; i < n; i++) {
		struct mon_status st;
		int rc = monc_status(c->mc, i, &st);
		const char *role = rc ? "unreachable" : mon_role_name(st.role);
		if (c->json) {
			printf("%s{\"name\": ", i ? ", " : "");
			json_str(members[i].name);
			printf(", \"addr\": \"%s:%u\", \"state\": \"%s\"", members[i].host,
			       members[i].port, role);
			if (!rc)
				printf(", \"term\": %" PRIu64 ", \"epoch\": %" PRIu64 ", \"leader\": \"%s\"",
				       st.term, st.epoch, st.leader);
			printf("}");
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
		printf("]\n");
	return 0;
}

/* --- OSDs ---------------------------------------------------------------------- */

static void print_osd(const struct cluster_map *m, uint32_t id, bool json, bool first)
{
	const struct map_osd *o = &m->osds[id];
	if (json) {
		printf("%s{\"id\": %u, \"up\": %s, \"in\": %s, \"weight\": %.4f, \"host\": ",
		       first ? "" : ", ", id, o->up ? "true" : "false", o->in ? "true" : "false",
		       o->weight / 65536.0);
		json_str(o->host);
		printf(", \"addr\": ");
		json_str(o->addr);
		printf(", \"device_bytes\": %" PRIu64 "}", o->device_bytes);
	} else {
		printf("osd.%-5u %-4s %-3s weight %-8.4f host %-12s %s\n", id, o->up ? "up" : "down",
		       o->in ? "in" : "out", o->weight / 65536.0, o->host, o->addr);
	}
}

static int cmd_osd_ls(struct cli *c, bool tree)
{
	struct cluster_map m;
	bool stale;
	char leader[64];
	if (get_map(c, &m, &stale, leader, sizeof(leader)))
		return 1;
	bool first = true;
	if (c->json)
		printf("[");
	if (!tree) {
		for (uint32_t i = 0; i < m.n_osds; i++)
			if (m.osds[i].exists) {
				print_osd(&m, i, c->json, first);
				first = false;
			}
	} else {
		/* Hosts in order of first appearance, OSDs under each. */
		for (uint32_t i = 0; i < m.n_osds; i++) {
			if (!m.osds[i].exists)
				continue;
			bool seen = false;
			for (uint32_t j = 0; j < i && !seen; j++)
				seen = m.osds[j].exists && strcmp(m.osds[j].host, m.osds[i].host) == 0;
			if (seen)
				continue;
			if (c->json) {
				printf("%s{\"host\": ", first ? "" : ", ");
				json_str(m.osds[i].host);
				printf(", \"osds\": [");
			} else {
				printf("host %s\n", m.osds[i].host);
			}
			bool inner = true;
			for (uint32_t j = i; j < m.n_osds; j++) {
				if (!m.osds[j].exists || strcmp(m.osds[j].host, m.osds[i].host))
					continue;
				if (!c->json)
					printf("  ");
				print_osd(&m, j, c->json, inner);
				inner = false;
			}
			if (c->json)
				printf("]}");
			first = false;
		}
	}
	if (c->json)
		printf("]\n");
	map_free(&m);
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
	bool deep = argc == 2 && strcmp(argv[1], "--deep") == 0;
	if ((argc != 1 && !deep) ||
	    parse_u32(strncmp(argv[0], "osd.", 4) ? argv[0] : argv[0] + 4, &id))
		return die_usage("usage: basalt osd scrub ID [--deep]");
	if (!c->io && bs_sync_open(c->cfg, &c->data, &c->io, why, sizeof(why)))
		return die("%s", why);
	struct bs_op op = { .type = BS_SCRUB, .oid = { 0, id, OSD_SCRUB_ALL },
			    .flags = deep ? BS_OP_DEEP : 0 };
	int rc = bs_sync_op(c->io, &op);
	if (rc == -ETIMEDOUT)
		return die("osd.%u is not up", id);
	if (rc)
		return die("osd.%u: %s", id, strerror(-rc));
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

/* --- pools ------------------------------------------------------------------------ */

static int cmd_pool_ls(struct cli *c)
{
	struct cluster_map m;
	bool stale;
	char leader[64];
	if (get_map(c, &m, &stale, leader, sizeof(leader)))
		return 1;
	if (c->json)
		printf("[");
	for (uint32_t i = 0; i < m.n_pools; i++) {
		const struct map_pool *p = &m.pools[i];
		if (c->json) {
			printf("%s{\"id\": %u, \"name\": ", i ? ", " : "", p->id);
			json_str(p->name);
			printf(", \"type\": \"%s\", \"size\": %u, \"min_size\": %u, \"pg_num\": %u, "
			       "\"block_size\": %u",
			       p->type == MAP_POOL_EC ? "erasure" : "replicated", p->size, p->min_size,
			       p->pg_num, p->block_size);
			if (p->type == MAP_POOL_EC)
				printf(", \"k\": %u, \"m\": %u", p->ec_k, p->ec_m);
			printf(", \"max_bytes\": %" PRIu64 ", \"quota_full\": %s}", p->max_bytes,
			       p->quota_full ? "true" : "false");
			continue;
		}
		char quota[64] = "";
		if (p->max_bytes) {
			char q[32];
			snprintf(quota, sizeof(quota), "  max_bytes %s%s",
				 cfg_format_size(p->max_bytes, q, sizeof(q)),
				 p->quota_full ? " (reached)" : "");
		}
		if (p->type == MAP_POOL_EC) {
			printf("pool %-3u %-16s erasure %u+%u  pg_num %u  block %uK%s\n", p->id, p->name,
			       p->ec_k, p->ec_m, p->pg_num, p->block_size >> 10, quota);
		} else {
			printf("pool %-3u %-16s replicated size %u min_size %u  pg_num %u  block %uK%s\n",
			       p->id, p->name, p->size, p->min_size, p->pg_num, p->block_size >> 10,
			       quota);
		}
	}
	if (c->json)
		printf("]\n");
	map_free(&m);
	return 0;
}

static int cmd_pool_create(struct cli *c, int argc, char **argv)
{
	struct map_cmd cmd = { .type = MAP_CMD_POOL_CREATE };
	cmd.pool = (struct map_pool){ .type = MAP_POOL_REPLICATED, .size = 3, .min_size = 2,
				      .pg_num = 128, .block_size = 128 << 10 };
	if (argc < 1 || strlen(argv[0]) >= sizeof(cmd.name))
		return die_usage("usage: basalt pool create NAME [--size N] [--min-size N] [--ec K+M] "
			   "[--pg-num N] [--block-size SIZE]");
	snprintf(cmd.name, sizeof(cmd.name), "%s", argv[0]);
	bool min_given = false;
	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t v64;
		if (!val)
			return die_usage("%s needs a value", opt);
		i++;
		if (strcmp(opt, "--size") == 0) {
			if (cli_count(val, "--size (copies)", &cmd.pool.size))
				return 2;
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
		} else if (strcmp(opt, "--ec") == 0 &&
			   sscanf(val, "%u+%u", &cmd.pool.ec_k, &cmd.pool.ec_m) == 2) {
			cmd.pool.type = MAP_POOL_EC;
		} else {
			return die_usage("bad option or value: %s %s", opt, val);
		}
	}
	if (!min_given && cmd.pool.type == MAP_POOL_REPLICATED)
		cmd.pool.min_size = cmd.pool.size > 1 ? cmd.pool.size - 1 : 1;
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
	if (strlen(argv[1]) >= sizeof(cmd.name))
		return die("pool name too long");
	snprintf(cmd.name, sizeof(cmd.name), "%s", argv[1]);
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

/* USED: the volume's objects and bytes written, when known. */
static void print_volume(const struct cluster_map *m, const struct map_volume *v, bool json,
			 bool first, bool detail, const uint64_t *used)
{
	const struct map_volume *parent = v->parent_inode ? map_volume_by_inode(m, v->parent_inode) : NULL;
	const char *psnap = "";
	for (uint32_t k = 0; parent && k < parent->n_snaps; k++)
		if (parent->snaps[k].id == v->parent_snap)
			psnap = parent->snaps[k].name;
	if (json) {
		printf("%s{\"name\": ", first ? "" : ", ");
		json_str(v->name);
		printf(", \"inode\": %" PRIu64 ", \"size\": %" PRIu64 ", \"pool\": ", v->inode,
		       v->size);
		json_str(pool_name_of(m, v->pool));
		printf(", \"parent\": ");
		if (parent) {
			printf("{\"volume\": ");
			json_str(parent->name);
			printf(", \"snapshot\": ");
			json_str(psnap);
			printf("}");
		} else {
			printf("null");
		}
		printf(", \"snapshots\": [");
		for (uint32_t k = 0; k < v->n_snaps; k++) {
			printf("%s{\"id\": %u, \"name\": ", k ? ", " : "", v->snaps[k].id);
			json_str(v->snaps[k].name);
			printf(", \"size\": %" PRIu64 "}", v->snaps[k].size);
		}
		printf("], \"lock\": ");
		if (v->lock_client) {
			printf("{\"client\": \"%016" PRIx64 "\", \"owner\": ", v->lock_client);
			json_str(v->lock_owner);
			printf("}");
		} else {
			printf("null");
		}
		if (used)
			printf(", \"objects\": %" PRIu64 ", \"used_bytes\": %" PRIu64, used[0], used[1]);
		else if (detail)
			printf(", \"objects\": null, \"used_bytes\": null");
		printf("}");
		return;
	}
	char sz[32];
	printf("%-20s %12s  pool %-12s %u snapshots", v->name, cfg_format_size(v->size, sz, sizeof(sz)),
	       pool_name_of(m, v->pool), v->n_snaps);
	if (parent)
		printf("  clone of %s@%s", parent->name, psnap);
	printf("%s\n", v->lock_client && !detail ? "  locked" : "");
	if (detail && v->lock_client)
		printf("  locked by %s (client %016" PRIx64 ")\n", v->lock_owner, v->lock_client);
	if (used)
		printf("  used: %" PRIu64 " objects, %s written\n", used[0],
		       cfg_format_size(used[1], sz, sizeof(sz)));
	else if (detail)
		printf("  used: unknown\n");
	for (uint32_t k = 0; detail && k < v->n_snaps; k++)
		printf("  @%-18s id %-4u %12s\n", v->snaps[k].name, v->snaps[k].id,
		       cfg_format_size(v->snaps[k].size, sz, sizeof(sz)));
}

/* The objects of a volume, from every OSD's listing of its pool. */
struct vol_objects {
	uint64_t inode, min_index;
	struct bs_op *ops;
	size_t n, cap;
	uint64_t bytes;
};

static int vol_object_cb(const struct object_id *oid, uint64_t version, uint64_t size, void *arg)
{
	struct vol_objects *l = arg;
	(void)version;
	if (oid->inode != l->inode || oid->index < l->min_index)
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		struct bs_op *ops = realloc(l->ops, cap * sizeof(*ops));
		if (!ops)
			return -ENOMEM;
		l->ops = ops;
		l->cap = cap;
	}
	l->ops[l->n++] = (struct bs_op){ .type = BS_DELETE, .oid = *oid };
	l->bytes += size;
	return 0;
}

static int vol_list(struct cli *c, const char *pool, uint64_t inode, uint64_t min_index,
		    struct vol_objects *out, char *why, size_t cap)
{
	*out = (struct vol_objects){ .inode = inode, .min_index = min_index };
	int rc = c->io ? 0 : bs_sync_open(c->cfg, &c->data, &c->io, why, cap);
	return rc ? rc : bs_object_list(c->io, pool, vol_object_cb, out, why, cap);
}

/* Deletes the objects of INODE from index MIN_INDEX on, 32 at a time:
 * their blocks are free when this returns 0. */
static int vol_free(struct cli *c, const char *pool, uint64_t inode, uint64_t min_index)
{
	char why[256];
	struct vol_objects l;
	if (vol_list(c, pool, inode, min_index, &l, why, sizeof(why))) {
		free(l.ops);
		return die("cannot list the volume's objects: %s", why);
	}
	if (!c->io && bs_sync_open(c->cfg, &c->data, &c->io, why, sizeof(why))) {
		free(l.ops);
		return die("%s", why);
	}
	size_t failed = l.n ? bs_sync_ops(c->io, l.ops, l.n, 32, NULL) : 0;
	free(l.ops);
	if (failed)
		return die("%zu of %zu objects could not be deleted", failed, l.n);
	if (!c->json)
		printf("freed %zu objects (%s written)\n", l.n,
		       cfg_format_size(l.bytes, (char[32]){ 0 }, 32));
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
		const struct map_volume *v = map_volume_by_name(&m, name);
		struct vol_objects l = { 0 };
		char why[256];
		if (v && vol_list(c, pool_name_of(&m, v->pool), v->inode, 0, &l, why, sizeof(why))) {
			/* What the map says is still worth showing. */
			fprintf(stderr, "basalt: warning: space used is unknown: %s\n", why);
			print_volume(&m, v, c->json, true, true, NULL);
		} else if (v) {
			print_volume(&m, v, c->json, true, true, (uint64_t[]){ l.n, l.bytes });
		} else {
			rc = die("volume '%s' does not exist", name);
		}
		if (v && !rc && c->json)
			printf("\n");
		free(l.ops);
	} else {
		if (c->json)
			printf("[");
		for (uint32_t i = 0; i < m.n_volumes; i++)
			print_volume(&m, &m.volumes[i], c->json, i == 0, false, NULL);
		if (c->json)
			printf("]\n");
	}
	map_free(&m);
	return rc;
}

static int copy_name(char *dst, size_t cap, const char *src)
{
	if (strlen(src) >= cap)
		return die("name too long: '%s'", src);
	snprintf(dst, cap, "%s", src);
	return 0;
}

/* Frees every block of the volume, then removes it from the map: cut
 * short, the volume is still there and running rm again finishes, so
 * no block is ever left behind without a name. The map's own refusals
 * (snapshots left) are checked first, so nothing is freed for nothing. */
static int volume_rm(struct cli *c, const char *name)
{
	struct cluster_map m;
	bool stale;
	char leader[64], pool[MAP_NAME_MAX], why[256];
	struct map_cmd cmd = { .type = MAP_CMD_VOLUME_RM };
	if (copy_name(cmd.name, sizeof(cmd.name), name) ||
	    get_map(c, &m, &stale, leader, sizeof(leader)))
		return 1;
	const struct map_volume *v = map_volume_by_name(&m, name);
	uint64_t inode = v ? v->inode : 0;
	snprintf(pool, sizeof(pool), "%s", v ? pool_name_of(&m, v->pool) : "");
	int rc = map_check(&m, &cmd, why, sizeof(why));
	map_free(&m);
	if (rc)
		return die("%s", why);
	if (vol_free(c, pool, inode, 0))
		return die("volume '%s' is kept; run the command again to free the rest", name);
	return run_command(c, &cmd);
}

/* Shrinking zeroes the tail of the last object kept (so growing again
 * shows zeros), changes the map (so writers stop at the new end), then
 * frees every object past the end. Resizing to the size it already has
 * frees them again: that finishes a shrink that was cut short. A volume
 * with snapshots keeps them: its snapshots may still read them. */
static int volume_resize(struct cli *c, const char *name, uint64_t size)
{
	struct cluster_map m;
	bool stale;
	char leader[64], pool[MAP_NAME_MAX], why[256];
	if (get_map(c, &m, &stale, leader, sizeof(leader)))
		return 1;
	const struct map_volume *v = map_volume_by_name(&m, name);
	const struct map_pool *p = v ? map_pool_by_id(&m, v->pool) : NULL;
	uint64_t old = v ? v->size : 0, inode = v ? v->inode : 0, bs = p ? p->block_size : 1;
	bool exists = v, cut = v && p && size <= old && !v->n_snaps;
	snprintf(pool, sizeof(pool), "%s", p ? p->name : "");
	map_free(&m);
	if (cut && size < old && size % bs) {
		if (!c->io && bs_sync_open(c->cfg, &c->data, &c->io, why, sizeof(why)))
			return die("%s", why);
		struct bs_volume *vol;
		if (bs_volume_open(bs_sync_client(c->io), name, false, &vol))
			return die("volume '%s' does not exist", name);
		uint64_t end = (size / bs + 1) * bs < old ? (size / bs + 1) * bs : old;
		struct bs_vio z = { .type = BS_VIO_WRITE_ZEROES, .offset = size,
				    .len = (uint32_t)(end - size) };
		int rc = size % 512 ? -EINVAL : bs_sync_vio(c->io, vol, &z);
		bs_volume_close(vol);
		if (rc)
			return die(rc == -EINVAL ? "sizes are in 512-byte units"
						 : "cannot zero the cut-off tail: %s",
				   strerror(-rc));
	}
	struct map_cmd cmd = { .type = MAP_CMD_VOLUME_RESIZE, .value = size };
	if (copy_name(cmd.name, sizeof(cmd.name), name))
		return 1;
	int rc = exists && size == old ? 0 : run_command(c, &cmd);
	if (rc || !cut)
		return rc;
	if (vol_free(c, pool, inode, (size + bs - 1) / bs))
		return die("the blocks past the end are not all freed; run the command again to "
			   "free the rest");
	return 0;
}

static int cmd_volume(struct cli *c, int argc, char **argv)
{
	static const char usage[] =
		"usage: basalt volume create NAME --size SIZE [--pool POOL] | ls | info NAME |\n"
		"       resize NAME SIZE | rm NAME | rename NAME NEW |\n"
		"       unlock NAME --force | snap create|rm NAME SNAP | clone NAME SNAP NEW";
	const char *sub = argc ? argv[0] : "";
	struct map_cmd cmd = { 0 };
	uint64_t size = 0;
	if (strcmp(sub, "ls") == 0 && argc == 1)
		return cmd_volume_show(c, NULL);
	if (strcmp(sub, "info") == 0 && argc == 2)
		return cmd_volume_show(c, argv[1]);
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
		if (copy_name(cmd.pool_name, sizeof(cmd.pool_name), pool))
			return 1;
	} else if (strcmp(sub, "resize") == 0 && argc == 3) {
		if (cli_size(argv[2], "the new size", 1, CLI_VOLUME_SIZE_MAX, &size))
			return 2;
		return volume_resize(c, argv[1], size);
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
		if (copy_name(cmd.new_name, sizeof(cmd.new_name), argv[2]))
			return 1;
	} else if (strcmp(sub, "snap") == 0 && argc == 4 &&
		   (strcmp(argv[1], "create") == 0 || strcmp(argv[1], "rm") == 0)) {
		cmd.type = strcmp(argv[1], "create") == 0 ? MAP_CMD_SNAP_CREATE : MAP_CMD_SNAP_RM;
		if (copy_name(cmd.name, sizeof(cmd.name), argv[2]) ||
		    copy_name(cmd.snap, sizeof(cmd.snap), argv[3]))
			return 1;
		return run_command(c, &cmd);
	} else if (strcmp(sub, "clone") == 0 && argc == 4) {
		cmd.type = MAP_CMD_VOLUME_CLONE;
		if (copy_name(cmd.src, sizeof(cmd.src), argv[1]) ||
		    copy_name(cmd.snap, sizeof(cmd.snap), argv[2]) ||
		    copy_name(cmd.name, sizeof(cmd.name), argv[3]))
			return 1;
		return run_command(c, &cmd);
	} else {
		return die_usage("%s", usage);
	}
	if (copy_name(cmd.name, sizeof(cmd.name), argv[1]))
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
	if (c->json)
		printf("[");
	for (uint32_t i = 0; i < m.n_fenced; i++) {
		const struct map_fenced *f = &m.fenced[i];
		if (c->json) {
			printf("%s{\"client\": \"%016" PRIx64 "\", \"epoch\": %" PRIu64
			       ", \"time_ms\": %" PRIu64 ", \"owner\": ",
			       i ? ", " : "", f->client, f->epoch, f->time_ms);
			json_str(f->owner);
			printf("}");
			continue;
		}
		time_t t = (time_t)(f->time_ms / 1000);
		char when[32];
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", gmtime(&t));
		printf("%016" PRIx64 "  since epoch %-6" PRIu64 " %s UTC  %s\n", f->client, f->epoch,
		       when, f->owner);
	}
	if (c->json)
		printf("]\n");
	else if (!m.n_fenced)
		printf("no fenced clients\n");
	map_free(&m);
	return 0;
}

/* --- placement groups --------------------------------------------------------------- */

static void print_osd_list(const uint32_t *ids, size_t n, bool json)
{
	printf("[");
	for (size_t i = 0; i < n; i++)
		printf("%s%u", i ? (json ? ", " : ",") : "", ids[i]);
	printf("]");
}

static const struct mon_pg_stat *pg_stat_of(const struct mon_osd_stats *st, uint32_t pool,
					    uint32_t pg)
{
	for (uint32_t i = 0; st && i < st->n_pgs; i++)
		if (st->pgs[i].pool == pool && st->pgs[i].pg == pg)
			return &st->pgs[i];
	return NULL;
}

static void print_pg(const struct cluster_map *m, const struct map_pool *p, uint32_t pg, bool json,
		     bool first, const struct mon_osd_stats *stats)
{
	const struct mon_pg_stat *ps = pg_stat_of(stats, p->id, pg);
	char state_buf[128];
	const char *state = mon_pg_state_name(ps ? ps->state : 0, state_buf, sizeof(state_buf));
	uint64_t objects = ps ? ps->objects : 0, bytes = ps ? ps->bytes : 0;
	uint32_t up[16], acting[16];
	size_t n_up = map_pg_osds(m, p, pg, up, 16);
	size_t n_act = map_pg_acting(m, p, pg, acting, 16);
	if (json) {
		printf("%s{\"pgid\": \"%u.%x\", \"up\": ", first ? "" : ", ", p->id, pg);
		print_osd_list(up, n_up, true);
		printf(", \"acting\": ");
		print_osd_list(acting, n_act, true);
		if (n_act)
			printf(", \"primary\": %u", acting[0]);
		else
			printf(", \"primary\": null");
		printf(", \"state\": \"%s\", \"objects\": %" PRIu64 ", \"bytes\": %" PRIu64,
		       state, objects, bytes);
		if (ps)
			printf(", \"last_scrub\": %" PRIu64 ", \"last_deep_scrub\": %" PRIu64
			       ", \"scrub_progress\": [%u, %u], \"bad_copies_found\": %u"
			       ", \"bad_copies_repaired\": %u, \"unfound\": %u",
			       ps->last_scrub_s, ps->last_deep_scrub_s, ps->scrub_done, ps->scrub_total,
			       ps->bad_found, ps->bad_repaired, ps->unfound);
		printf("}");
		return;
	}
	printf("pg %u.%-5x %-22s %6" PRIu64 " objects  up ", p->id, pg, state, objects);
	print_osd_list(up, n_up, false);
	printf("  acting ");
	print_osd_list(acting, n_act, false);
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
		rc = die("pool '%s' does not exist", argv[1]);
	} else if (argc == 3 && !inconsistent) {
		if (!*argv[2] || *end || pg >= p->pg_num)
			rc = die("pool '%s' has PGs 0 to %x (hex)", p->name, p->pg_num - 1);
		else
			print_pg(&m, p, (uint32_t)pg, c->json, true, &stats);
		if (!rc && c->json)
			printf("\n");
	} else {
		if (c->json)
			printf("[");
		bool first = true;
		for (uint32_t i = 0; i < p->pg_num; i++) {
			const struct mon_pg_stat *ps = pg_stat_of(&stats, p->id, i);
			if (inconsistent && !(ps && ps->unfound))
				continue;
			print_pg(&m, p, i, c->json, first, &stats);
			first = false;
			if (inconsistent && !c->json)
				print_unfound(&m, p, i, &stats);
		}
		if (c->json)
			printf("]\n");
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

static int cmd_pg_scrub(struct cli *c, const char *kind, const char *pgid, bool wait)
{
	char why[256], *end;
	unsigned long pool = strtoul(pgid, &end, 10), pg;
	if (end == pgid || *end != '.' || !end[1] || (pg = strtoul(end + 1, &end, 16), *end))
		return die_usage("expected a PG as POOL.PG (pool id, PG in hex, as pg ls shows it), got '%s'",
			   pgid);
	if (!c->io && bs_sync_open(c->cfg, &c->data, &c->io, why, sizeof(why)))
		return die("%s", why);
	const struct map_pool *p = map_pool_by_id(bs_sync_map(c->io), (uint32_t)pool);
	if (!p)
		return die("there is no pool %lu", pool);
	if (pg >= p->pg_num)
		return die("pool '%s' has PGs 0 to %x (hex)", p->name, p->pg_num - 1);
	bool deep = strcmp(kind, "scrub") != 0;
	uint64_t before = 0, after = 0;
	uint16_t state;
	if (wait)
		pg_scrub_stamp(c, (uint32_t)pool, (uint32_t)pg, deep, &before, &state);
	struct bs_op op = { .type = BS_SCRUB, .oid = { (uint32_t)pool, 0, pg },
			    .flags = deep ? BS_OP_DEEP : 0 };
	int rc = bs_sync_op(c->io, &op);
	if (rc == -ETIMEDOUT)
		return die("pg %lu.%lx has no primary up (see basalt pg ls)", pool, pg);
	if (rc)
		return die("pg %lu.%lx: %s", pool, pg, strerror(-rc));
	uint32_t acting[MAP_PG_ACTING_MAX];
	size_t n = map_pg_acting(bs_sync_map(c->io), p, (uint32_t)pg, acting, MAP_PG_ACTING_MAX);
	if (!wait) {
		printf("pg %lu.%lx: %s scheduled on osd.%u (it starts once the PG is active and "
		       "clean)\n", pool, pg, deep ? "deep scrub" : "scrub", n ? acting[0] : 0);
		return 0;
	}
	/* Until its stamp moves, and it is no longer scrubbing. */
	for (int i = 0; i < c->timeout_s * 5; i++) {
		if (pg_scrub_stamp(c, (uint32_t)pool, (uint32_t)pg, deep, &after, &state) == 0 &&
		    after > before && !(state & MON_PG_SCRUBBING)) {
			printf("pg %lu.%lx: %s done\n", pool, pg, deep ? "deep scrub" : "scrub");
			return 0;
		}
		struct timespec ts = { 0, 200000000 };
		nanosleep(&ts, NULL);
	}
	return die("pg %lu.%lx: the %s did not finish within %d s (see basalt pg ls)", pool, pg,
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
	if (!c->io && bs_sync_open(c->cfg, &c->data, &c->io, why, sizeof(why)))
		return die("%s", why);
	const struct map_pool *p = map_pool_by_name(bs_sync_map(c->io), pool);
	if (!p)
		return die("pool '%s' does not exist", pool);
	op->oid.pool = p->id;
	uint32_t pg = object_pg(&op->oid, p->pg_num), bs = p->block_size;
	int rc = bs_sync_op(c->io, op);
	if (!rc)
		return 0;
	p = map_pool_by_id(bs_sync_map(c->io), op->oid.pool);
	uint32_t acting[MAP_PG_ACTING_MAX];
	switch (rc) {
	case -ENOENT:
		return die(p ? "no such object" : "pool '%s' was removed", pool);
	case -EINVAL:
		return die("outside the pool's %u-byte objects, or not in 4 KiB units", bs);
	case -EOPNOTSUPP:
		return die("pool '%s' is erasure-coded, which is not served yet", pool);
	case -ENOSPC:
		if (p && map_pool_full(bs_sync_map(c->io), p, why, sizeof(why)))
			return die("pool '%s' is full: %s; delete data, add OSDs, or raise the %s",
				   pool, why, p->quota_full ? "pool's max_bytes" : "full ratio");
		return die("no space left on an OSD of pg %u.%x: delete data or add OSDs",
			   op->oid.pool, pg);
	case -EMEDIUMTYPE:
		return die("pool '%s' has a block size the OSD's store does not", pool);
	case -ETIMEDOUT:
		if (p && !map_pg_acting(bs_sync_map(c->io), p, pg, acting, MAP_PG_ACTING_MAX))
			return die("no OSD of pg %u.%x is up", op->oid.pool, pg);
		return die("pg %u.%x did not become active in time (see basalt status)",
			   op->oid.pool, pg);
	default:
		return die("%s", strerror(-rc));
	}
}

static int list_text(const struct object_id *oid, uint64_t version, uint64_t size, void *arg)
{
	(void)arg;
	printf("%" PRIx64 ":%" PRIx64 "  version %" PRIu64 ".%" PRIu64 "  %" PRIu64 " bytes\n",
	       oid->inode, oid->index, VERSION_EPOCH(version), VERSION_SEQ(version), size);
	return 0;
}

static int list_json(const struct object_id *oid, uint64_t version, uint64_t size, void *arg)
{
	int *n = arg;
	printf("%s{\"object\": \"%" PRIx64 ":%" PRIx64 "\", \"version\": %" PRIu64
	       ", \"size\": %" PRIu64 "}",
	       (*n)++ ? ", " : "", oid->inode, oid->index, version, size);
	return 0;
}

static int cmd_object(struct cli *c, int argc, char **argv)
{
	static const char usage[] =
		"usage: basalt object put POOL OBJ FILE | get POOL OBJ [FILE] | rm POOL OBJ |\n"
		"       stat POOL OBJ | ls POOL      (OBJ is INODE:INDEX in hex)";
	const char *sub = argc ? argv[0] : "";
	if (strcmp(sub, "ls") == 0 && argc == 2) {
		char why[256];
		int n = 0;
		if (!c->io && bs_sync_open(c->cfg, &c->data, &c->io, why, sizeof(why)))
			return die("%s", why);
		if (c->json)
			printf("[");
		int rc = bs_object_list(c->io, argv[1], c->json ? list_json : list_text, &n, why,
					sizeof(why));
		if (c->json)
			printf("]\n");
		return rc ? die("%s", why) : 0;
	}
	if (argc < 3)
		return die_usage("%s", usage);
	struct bs_op op = { 0 };
	if (parse_object(argv[2], &op.oid))
		return 2;
	if (strcmp(sub, "put") == 0 && argc == 4) {
		FILE *f = strcmp(argv[3], "-") == 0 ? stdin : fopen(argv[3], "rb");
		if (!f)
			return die("cannot open %s: %s", argv[3], strerror(errno));
		size_t cap = 1u << 20, len = 0;
		uint8_t *buf = calloc(1, cap + 4096);
		size_t got;
		while (buf && (got = fread(buf + len, 1, cap + 1 - len, f)) > 0)
			len += got;
		if (f != stdin)
			fclose(f);
		if (!buf || !len || len > cap) {
			free(buf);
			return die(!buf ? "out of memory" : !len ? "%s is empty" : "%s is larger than 1 MiB, "
			       "the largest object", argv[3]);
		}
		/* An object keeps which 4 KiB chunks were written, not a byte
		 * length: a tail would come back padded with zeros. */
		if (len % 4096) {
			free(buf);
			return die("%s is %zu bytes: an object holds whole 4 KiB chunks and keeps no "
				   "byte length, so it would come back as %zu bytes; pad it to a "
				   "multiple of 4096 (truncate -s %zu FILE)", argv[3], len,
				   (len + 4095) & ~(size_t)4095, (len + 4095) & ~(size_t)4095);
		}
		op.type = BS_WRITE;
		op.len = (uint32_t)len;
		op.buf = buf;
		int rc = object_run(c, argv[1], &op);
		free(buf);
		if (!rc)
			printf("wrote %zu bytes (%u stored): version %" PRIu64 ".%" PRIu64 "\n", len,
			       op.len, VERSION_EPOCH(op.version), VERSION_SEQ(op.version));
		return rc;
	}
	if (strcmp(sub, "rm") == 0 && argc == 3) {
		op.type = BS_DELETE;
		int rc = object_run(c, argv[1], &op);
		if (!rc)
			printf("removed (version %" PRIu64 ".%" PRIu64 ")\n", VERSION_EPOCH(op.version),
			       VERSION_SEQ(op.version));
		return rc;
	}
	if ((strcmp(sub, "stat") == 0 && argc == 3) || (strcmp(sub, "get") == 0 && argc <= 4)) {
		op.type = BS_STAT;
		if (object_run(c, argv[1], &op))
			return 1;
		if (strcmp(sub, "stat") == 0) {
			/* Where it lives: its PG and the OSDs holding it. */
			const struct cluster_map *m = bs_sync_map(c->io);
			const struct map_pool *p = map_pool_by_id(m, op.oid.pool);
			uint32_t pg = p ? object_pg(&op.oid, p->pg_num) : 0, acting[16];
			size_t n = p ? map_pg_acting(m, p, pg, acting, 16) : 0;
			if (c->json) {
				printf("{\"version\": %" PRIu64 ", \"size\": %" PRIu64
				       ", \"pg\": \"%u.%x\", \"acting\": ",
				       op.version, op.size, op.oid.pool, pg);
				print_osd_list(acting, n, true);
				printf("}\n");
			} else {
				printf("version %" PRIu64 ".%" PRIu64 ", %" PRIu64 " bytes, pg %u.%x on ",
				       VERSION_EPOCH(op.version), VERSION_SEQ(op.version), op.size,
				       op.oid.pool, pg);
				print_osd_list(acting, n, false);
				printf("\n");
			}
			return 0;
		}
		/* The object's written chunks are its first SIZE bytes for
		 * objects put whole; read them. */
		struct bs_op rd = { .type = BS_READ, .oid = op.oid, .len = (uint32_t)op.size };
		if (!rd.len)
			return 0;
		if (!(rd.buf = malloc(rd.len)))
			return die("out of memory");
		if (object_run(c, argv[1], &rd)) {
			free(rd.buf);
			return 1;
		}
		FILE *f = argc == 4 ? fopen(argv[3], "wb") : stdout;
		if (!f) {
			free(rd.buf);
			return die("cannot create %s: %s", argv[3], strerror(errno));
		}
		size_t w = fwrite(rd.buf, 1, rd.len, f);
		bool ok = w == rd.len && (f == stdout ? fflush(f) == 0 : fclose(f) == 0);
		free(rd.buf);
		return ok ? 0 : die("cannot write the object out");
	}
	return die_usage("%s", usage);
}

/* --- client keys ------------------------------------------------------------------- */

static int cmd_auth_ls(struct cli *c)
{
	struct cluster_map m;
	bool stale;
	char leader[64];
	if (get_map(c, &m, &stale, leader, sizeof(leader)))
		return 1;
	if (c->json)
		printf("[");
	for (uint32_t i = 0; i < m.n_keys; i++) {
		if (c->json) {
			printf("%s{\"entity\": ", i ? ", " : "");
			json_str(m.keys[i].entity);
			printf(", \"caps\": ");
			json_str(m.keys[i].caps);
			printf("}");
		} else {
			printf("%-24s %s\n", m.keys[i].entity, m.keys[i].caps);
		}
	}
	if (c->json)
		printf("]\n");
	map_free(&m);
	return 0;
}

/* auth add makes the secret here and prints it once, as a keyring
 * section; the monitors never hand it out again. */
static int cmd_auth(struct cli *c, int argc, char **argv)
{
	static const char usage[] = "usage: basalt auth ls | auth add client.NAME [--caps CAPS] | "
				    "auth caps client.NAME CAPS | auth rm client.NAME";
	if (argc == 1 && strcmp(argv[0], "ls") == 0)
		return cmd_auth_ls(c);
	struct map_cmd cmd = { 0 };
	const char *caps = NULL;
	if (argc >= 2 && strcmp(argv[0], "add") == 0) {
		cmd.type = MAP_CMD_AUTH_ADD;
		caps = "mon=r osd=rw";
		if (argc == 4 && strcmp(argv[2], "--caps") == 0)
			caps = argv[3];
		else if (argc != 2)
			return die_usage("%s", usage);
	} else if (argc == 3 && strcmp(argv[0], "caps") == 0) {
		cmd.type = MAP_CMD_AUTH_CAPS;
		caps = argv[2];
	} else if (argc == 2 && strcmp(argv[0], "rm") == 0) {
		cmd.type = MAP_CMD_AUTH_RM;
	} else {
		return die_usage("%s", usage);
	}
	if (strlen(argv[1]) >= sizeof(cmd.name) || (caps && strlen(caps) >= sizeof(cmd.caps)))
		return die("entity name or caps too long");
	snprintf(cmd.name, sizeof(cmd.name), "%s", argv[1]);
	if (caps)
		snprintf(cmd.caps, sizeof(cmd.caps), "%s", caps);
	char secret[64] = "";
	if (cmd.type == MAP_CMD_AUTH_ADD &&
	    (keyring_new_key_base64(secret, sizeof(secret)) || keyring_decode(secret, cmd.secret)))
		return die("cannot make a random key");
	char text[1024];
	uint64_t epoch = 0;
	int rc = monc_command(c->mc, &cmd, text, sizeof(text), &epoch);
	if (rc == -ETIMEDOUT)
		return die("%s (is a majority of monitors up?)", text);
	if (rc)
		return die("%s", text);
	if (cmd.type == MAP_CMD_AUTH_ADD && strcmp(text, "done") == 0)
		printf("[%s]\nkey = %s\n", cmd.name, secret);
	else if (cmd.type == MAP_CMD_AUTH_ADD)
		return die("%s was added by an earlier attempt whose key is lost; auth rm it and add it again",
			   cmd.name);
	else
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


int main(int argc, char **argv)
{
	const char *conf = NULL, *keyring = NULL, *name = "client.admin", *mon = NULL;
	uint64_t timeout_s = 30;
	struct cli c = { .mon = -1 };
	static const struct option opts[] = {
		{ "keyring", required_argument, NULL, 'k' },
		{ "name", required_argument, NULL, 'n' },
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
		switch (ch) {
		case 'c': conf = optarg; break;
		case 'k': keyring = optarg; break;
		case 'n': name = optarg; break;
		case 'j': c.json = true; break;
		case 'm': mon = optarg; break;
		case 't':
			if (parse_timeout(optarg, &timeout_s))
				return 2;
			break;
		case 'h': fputs(usage_text, stdout); return 0;
		case 'V': printf("basalt %s\n", BASALT_VERSION); return 0;
		default: fputs(usage_text, stderr); return 2;
		}
	}
	if (optind >= argc) {
		fputs(usage_text, stderr);
		return 2;
	}
	int help = help_route(argc - optind, argv + optind);
	if (help >= 0)
		return help;
	log_init("basalt");
	log_set_level(LOG_LEVEL_ERROR);
	conf = cfg_pick_path(conf);
	if (!conf)
		return die("no config: give -c CONF or set BASALT_CONF");
	char why[512];
	if (cfg_load(conf, &c.cfg, why, sizeof(why)))
		return die("%s", why);
	char kr_path[4096];
	keyring_path_for_config(c.cfg, keyring, conf, kr_path, sizeof(kr_path));
	struct monc_params mp = { name, kr_path, timeout_s * 1000, -1 };
	c.timeout_s = timeout_s > 86400 ? 86400 : (int)timeout_s;
	c.data = (struct bs_client_params){ .entity = name, .keyring = kr_path,
					    .op_timeout_ms = timeout_s * 1000,
					    .attempt_timeout_ms = 2000 };
	if (monc_open(c.cfg, &mp, &c.mc, why, sizeof(why)))
		return die("%s", why);
	if (mon) {
		int n;
		const struct mon_member *members = monc_members(c.mc, &n);
		for (int i = 0; i < n; i++)
			if (strcmp(members[i].name, mon) == 0)
				c.mon = i;
		if (c.mon < 0)
			return die("no monitor named '%s' in %s", mon, conf);
	}
	const char *cmd = argv[optind];
	int rest = argc - optind - 1;
	char **args = argv + optind + 1;
	int rc;
	if (strcmp(cmd, "status") == 0 && rest == 0)
		rc = cmd_status(&c);
	else if (strcmp(cmd, "mon") == 0 && rest == 1 && strcmp(args[0], "ls") == 0)
		rc = cmd_mon_ls(&c);
	else if (strcmp(cmd, "osd") == 0 && rest >= 1)
		rc = cmd_osd(&c, rest, args);
	else if (strcmp(cmd, "pool") == 0)
		rc = cmd_pool(&c, rest, args);
	else if (strcmp(cmd, "auth") == 0)
		rc = cmd_auth(&c, rest, args);
	else if (strcmp(cmd, "volume") == 0)
		rc = cmd_volume(&c, rest, args);
	else if (strcmp(cmd, "blocklist") == 0)
		rc = cmd_blocklist(&c, rest, args);
	else if (strcmp(cmd, "pg") == 0)
		rc = cmd_pg(&c, rest, args);
	else if (strcmp(cmd, "object") == 0)
		rc = cmd_object(&c, rest, args);
	else
		rc = die_usage("unknown command '%s' (basalt --help lists them)", cmd);
	bs_sync_close(c.io);
	monc_close(c.mc);
	cfg_free(c.cfg);
	return rc;
}
