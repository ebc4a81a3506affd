/* A big cluster map on a real monitor quorum (bench/bigmap.sh runs it):
 * registers OSDs through the monitors' command path (OSD_BOOT as the
 * cluster's admin, on HOSTS pretend hosts; they need not run), creates
 * volumes in one monitor session, timing each thousand, then measures
 * what a subscribed client (libbasalt) receives: the whole map once, then
 * for each of CHANGES more volume creations the incremental update.
 *
 *   bigmap -c CONF --keyring PATH [--osds N] [--hosts N] [--volumes N]
 *          [--changes N] [--pool NAME]
 *
 * One JSON object on stdout. The pool must exist; OSD ids below --first
 * (default 3: the cluster's real OSDs) are left alone. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "client/libbasalt.h"
#include "client/monc.h"
#include "common/config.h"
#include "common/log.h"

static void command(struct monc *mc, struct map_cmd *c, const char *what)
{
	char text[512];
	uint64_t epoch;
	int rc = monc_command(mc, c, text, sizeof(text), &epoch);
	if (rc) {
		fprintf(stderr, "bigmap: %s: %s\n", what, text);
		exit(1);
	}
}

static void create_volume(struct monc *mc, const char *pool, uint32_t i)
{
	struct map_cmd c = { .type = MAP_CMD_VOLUME_CREATE, .size = 10ULL << 30 };
	snprintf(c.name, sizeof(c.name), "vm-%06u", i);
	snprintf(c.pool_name, sizeof(c.pool_name), "%s", pool);
	command(mc, &c, "volume create");
}

/* Runs C's loop until it has seen UPDATES map updates (10 s at most). */
static void wait_updates(struct bs_client *c, uint64_t updates)
{
	struct bs_client_stats st;
	uint64_t end = bench_now_ns() + IO_SEC(10);
	do {
		io_loop_run_once(bs_client_loop(c), IO_MS(20));
		bs_client_stats(c, &st);
	} while (st.map_updates < updates && bench_now_ns() < end);
}

struct opts {
	const char *conf, *keyring, *pool;
	unsigned long osds, first, hosts, volumes, changes;
};

static void parse(int argc, char **argv, struct opts *o)
{
	static const struct option opts[] = {
		{ "keyring", required_argument, NULL, 'k' }, { "osds", required_argument, NULL, 'o' },
		{ "first", required_argument, NULL, 'f' },   { "hosts", required_argument, NULL, 'H' },
		{ "volumes", required_argument, NULL, 'v' }, { "changes", required_argument, NULL, 'n' },
		{ "pool", required_argument, NULL, 'p' },    { NULL, 0, NULL, 0 },
	};
	int ch;
	bool bad = false;
	while ((ch = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
		char *end = NULL;
		unsigned long v = optarg ? strtoul(optarg, &end, 0) : 0;
		bool num = end && *end == '\0';
		switch (ch) {
		case 'c': o->conf = optarg; break;
		case 'k': o->keyring = optarg; break;
		case 'p': o->pool = optarg; break;
		case 'o': o->osds = v, bad |= !num || v > MAP_MAX_OSDS; break;
		case 'f': o->first = v, bad |= !num; break;
		case 'H': o->hosts = v, bad |= !num || !v; break;
		case 'v': o->volumes = v, bad |= !num || v > MAP_MAX_VOLUMES; break;
		case 'n': o->changes = v, bad |= !num || !v; break;
		default: bad = true;
		}
	}
	if (bad || !o->conf || !o->keyring || optind != argc) {
		fprintf(stderr, "usage: bigmap -c CONF --keyring PATH [--osds N] [--first ID] "
				"[--hosts N] [--volumes N] [--changes N] [--pool NAME]\n");
		exit(2);
	}
}

/* OSDs FIRST..OSDS-1 booted on HOSTS pretend hosts. */
static void register_osds(struct monc *mc, const struct opts *o)
{
	for (uint32_t id = (uint32_t)o->first; id < o->osds; id++) {
		struct map_cmd c = { .type = MAP_CMD_OSD_BOOT, .osd = id, .device_bytes = 1ULL << 40 };
		snprintf(c.addr, sizeof(c.addr), "127.0.0.1:%u", 1 + id); /* nobody: never answers */
		snprintf(c.host, sizeof(c.host), "bighost%lu", id % o->hosts);
		command(mc, &c, "osd boot");
	}
}

int main(int argc, char **argv)
{
	struct opts o = { .pool = "rbd", .osds = 100, .first = 3, .hosts = 10, .volumes = 10000,
			  .changes = 50 };
	parse(argc, argv, &o);
	log_init("bigmap");
	log_set_level(LOG_LEVEL_ERROR);
	struct cfg *cfg;
	char why[512];
	struct monc *mc;
	struct monc_params mp = { .entity = "client.admin", .keyring = o.keyring,
				  .timeout_ms = 30000, .prefer = -1 };
	if (cfg_load(o.conf, &cfg, why, sizeof(why)) || monc_open(cfg, &mp, &mc, why, sizeof(why))) {
		fprintf(stderr, "bigmap: %s\n", why);
		return 1;
	}
	register_osds(mc, &o);
	/* Volumes, timed by the thousand: the first and the last thousand. */
	double first_ms = 0, last_ms = 0;
	uint64_t t0 = bench_now_ns(), tk = t0;
	for (uint32_t i = 0; i < o.volumes; i++) {
		create_volume(mc, o.pool, i);
		if ((i + 1) % 1000 == 0 || i + 1 == o.volumes) {
			uint64_t now = bench_now_ns();
			double ms = (double)(now - tk) / 1e6 / ((i % 1000) + 1);
			if (i < 1000)
				first_ms = ms;
			last_ms = ms;
			tk = now;
			fprintf(stderr, "bigmap: %u volumes, %.2f ms per create\n", i + 1, ms);
		}
	}
	double all_s = (double)(bench_now_ns() - t0) / 1e9;

	struct cluster_map m = { 0 };
	bool stale;
	if (monc_get_map(mc, -1, &m, &stale, why, sizeof(why))) {
		fprintf(stderr, "bigmap: get map: %s\n", why);
		return 1;
	}
	uint8_t *buf;
	size_t full_len;
	if (map_encode_public(&m, &buf, &full_len))
		return 1;
	free(buf);

	/* A subscribed client: the whole map once, then updates. */
	struct io_loop *loop;
	struct bs_client *c;
	struct bs_client_params cp = { .keyring = o.keyring };
	if (io_loop_create_uring(NULL, &loop) || bs_client_create(loop, cfg, &cp, &c, why, sizeof(why)) ||
	    bs_client_wait_map(c, 20000, why, sizeof(why))) {
		fprintf(stderr, "bigmap: client: %s\n", why);
		return 1;
	}
	struct bs_client_stats s0, s1;
	bs_client_stats(c, &s0);
	uint64_t tc = bench_now_ns();
	for (uint32_t i = 0; i < o.changes; i++) {
		create_volume(mc, o.pool, (uint32_t)o.volumes + i);
		wait_updates(c, s0.map_updates + i + 1);
	}
	double change_ms = (double)(bench_now_ns() - tc) / 1e6 / (double)o.changes;
	bs_client_stats(c, &s1);
	uint64_t updates = s1.map_updates - s0.map_updates;
	printf("{\"osds\": %u, \"hosts\": %lu, \"volumes\": %u, \"created\": %lu, \"epoch\": %" PRIu64
	       ", \"full_map_bytes\": %zu, \"create_all_s\": %.1f, \"create_first_1000_ms\": %.2f"
	       ", \"create_last_1000_ms\": %.2f, \"client_full_bytes\": %" PRIu64
	       ", \"changes\": %lu, \"updates\": %" PRIu64
	       ", \"inc_bytes_per_update\": %.1f, \"full_bytes_during_changes\": %" PRIu64
	       ", \"create_and_receive_ms\": %.2f}\n",
	       m.n_osds, o.hosts, m.n_volumes, o.volumes, m.epoch, full_len, all_s, first_ms, last_ms,
	       s0.map_full_bytes, o.changes, updates,
	       updates ? (double)(s1.map_inc_bytes - s0.map_inc_bytes) / (double)updates : 0,
	       s1.map_full_bytes - s0.map_full_bytes, change_ms);
	bs_client_destroy(c);
	io_loop_destroy(loop);
	map_free(&m);
	monc_close(mc);
	cfg_free(cfg);
	return updates < o.changes ? 1 : 0;
}
