/* How the cluster map scales with volumes and snapshots: what the
 * snapshot records cost every party that holds a map (up to
 * MAP_MAX_SNAPS per volume, allocated as taken). Builds a map with
 * N volumes carrying S snapshots each through the monitor's own
 * map_apply, then times what every party pays for the map's size:
 *   - apply: one more command on the big map (the leader and every
 *     monitor, per command);
 *   - encode: the whole map (a Raft snapshot; what a new client or OSD
 *     is sent), its size;
 *   - decode: the same on the receiving side (every OSD and client);
 *   - lookup: map_volume_by_name, as the CLI and basalt-nbd do.
 *
 *   map_scale [--volumes N] [--snaps S] [--rounds R]
 *
 * One line of results per run, as a Markdown table row, on stdout. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "common/cluster/map.h"
#include "common/number.h"

static void must(int rc, const char *what, const char *err)
{
	if (rc) {
		fprintf(stderr, "map_scale: %s: %s (%s)\n", what, strerror(-rc), err);
		exit(1);
	}
}

static void apply(struct cluster_map *m, const struct map_cmd *c, const char *what)
{
	char err[256] = "";
	must(map_apply(m, c, err, sizeof(err), NULL), what, err);
}

static struct map_cmd volume_cmd(enum map_cmd_type type, uint32_t i)
{
	struct map_cmd c = { .type = type, .size = 10ULL << 30 };
	snprintf(c.name, sizeof(c.name), "vm-disk-%06u", i);
	snprintf(c.pool_name, sizeof(c.pool_name), "rbd");
	return c;
}

/* A map with VOLUMES volumes of SNAPS snapshots each. */
static void build(struct cluster_map *m, uint32_t volumes, uint32_t snaps)
{
	uint8_t fsid[16] = { 1 };
	struct map_mon mon = { "a", "127.0.0.1:6789" };
	must(map_init(m, fsid, &mon, 1), "map_init", "");
	struct map_cmd p = { .type = MAP_CMD_POOL_CREATE };
	snprintf(p.name, sizeof(p.name), "rbd");
	p.pool = (struct map_pool){ .type = MAP_POOL_REPLICATED, .size = 3, .min_size = 2,
				    .pg_num = 128, .block_size = 128 << 10 };
	apply(m, &p, "pool create");
	for (uint32_t v = 0; v < volumes; v++) {
		struct map_cmd c = volume_cmd(MAP_CMD_VOLUME_CREATE, v);
		apply(m, &c, "volume create");
		for (uint32_t s = 0; s < snaps; s++) {
			c.type = MAP_CMD_SNAP_CREATE;
			snprintf(c.snap, sizeof(c.snap), "daily-2026-%03u", s);
			apply(m, &c, "snap create");
		}
	}
}

int main(int argc, char **argv)
{
	uint32_t volumes = 1000, snaps = 0, rounds = 20;
	static const struct option opts[] = {
		{ "volumes", required_argument, NULL, 'v' },
		{ "snaps", required_argument, NULL, 's' },
		{ "rounds", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		const char *what = ch == 'v' ? "--volumes" : ch == 's' ? "--snaps" : "--rounds";
		uint64_t v;
		char why[256];
		if (ch == '?' ||
		    number_parse_u64(optarg, what, ch == 'r' ? 1 : 0, MAP_MAX_VOLUMES, &v, why,
				     sizeof(why))) {
			fprintf(stderr, "%s%susage: map_scale [--volumes N] [--snaps S] [--rounds R]\n",
				ch == '?' ? "" : why, ch == '?' ? "" : "\n");
			return 2;
		}
		*(ch == 'v' ? &volumes : ch == 's' ? &snaps : &rounds) = (uint32_t)v;
	}
	struct cluster_map m;
	uint64_t t0 = bench_now_ns();
	build(&m, volumes, snaps);
	double build_s = (double)(bench_now_ns() - t0) / 1e9;

	/* One more command on the big map: a volume created and removed. */
	t0 = bench_now_ns();
	for (uint32_t r = 0; r < rounds; r++) {
		struct map_cmd c = volume_cmd(MAP_CMD_VOLUME_CREATE, volumes + r);
		apply(&m, &c, "volume create");
		c.type = MAP_CMD_VOLUME_RM;
		apply(&m, &c, "volume rm");
	}
	double apply_us = (double)(bench_now_ns() - t0) / 1e3 / (2.0 * rounds);

	uint8_t *buf = NULL;
	size_t len = 0;
	t0 = bench_now_ns();
	for (uint32_t r = 0; r < rounds; r++) {
		free(buf);
		must(map_encode(&m, &buf, &len), "map_encode", "");
	}
	double encode_ms = (double)(bench_now_ns() - t0) / 1e6 / rounds;

	t0 = bench_now_ns();
	for (uint32_t r = 0; r < rounds; r++) {
		struct cluster_map d;
		memset(&d, 0, sizeof(d));
		must(map_decode(buf, len, &d), "map_decode", "");
		map_free(&d);
	}
	double decode_ms = (double)(bench_now_ns() - t0) / 1e6 / rounds;

	uint32_t lookups = 100000;
	t0 = bench_now_ns();
	size_t found = 0;
	for (uint32_t i = 0; i < lookups; i++) {
		char name[MAP_NAME_MAX];
		snprintf(name, sizeof(name), "vm-disk-%06u", volumes ? i % volumes : 0);
		found += map_volume_by_name(&m, name) != NULL;
	}
	double lookup_ns = (double)(bench_now_ns() - t0) / lookups;

	printf("| %u | %u | %.1f | %.0f | %.2f | %.2f | %.2f | %.0f |\n", volumes, snaps, build_s,
	       apply_us, (double)len / (1 << 20), encode_ms, decode_ms, lookup_ns);
	if (volumes && found != lookups)
		fprintf(stderr, "map_scale: only %zu of %u lookups found their volume\n", found,
			lookups);
	free(buf);
	map_free(&m);
	return volumes && found != lookups;
}
