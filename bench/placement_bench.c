/* What a PG lookup costs with the map's placement cache against a fresh
 * computation (map_pg_acting before the cache: a draw over every OSD and
 * an allocation per call): OSDS OSDs on HOSTS hosts, one pool of size 3
 * with PGS PGs, LOOKUPS lookups of random PGs each way (the cache filled
 * first, as it is after the first lookup of each PG of a map).
 *
 *   placement_bench [--osds N] [--hosts N] [--pgs N] [--lookups N]
 *
 * One Markdown table row on stdout. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench_util.h"
#include "common/cluster/map.h"

static void apply(struct cluster_map *m, struct map_cmd c)
{
	char err[256] = "";
	if (map_apply(m, &c, err, sizeof(err), NULL)) {
		fprintf(stderr, "placement_bench: %s\n", err);
		exit(1);
	}
}

/* The acting set of PG without the cache, as map_pg_acting was. */
static size_t acting_fresh(const struct cluster_map *m, const struct map_pool *p, uint32_t pg,
			   uint32_t *out)
{
	size_t n = map_pg_osds_compute(m, p, pg, out, MAP_PG_ACTING_MAX), k = 0;
	for (size_t i = 0; i < n; i++)
		if (m->osds[out[i]].up)
			out[k++] = out[i];
	return k;
}

int main(int argc, char **argv)
{
	unsigned long osds = 100, hosts = 10, pgs = 1024, lookups = 1000000;
	static const struct option opts[] = {
		{ "osds", required_argument, NULL, 'o' }, { "hosts", required_argument, NULL, 'h' },
		{ "pgs", required_argument, NULL, 'p' },  { "lookups", required_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		unsigned long *v = ch == 'o' ? &osds : ch == 'h' ? &hosts : ch == 'p' ? &pgs : &lookups;
		if (ch == '?' || !(*v = strtoul(optarg, NULL, 0))) {
			fprintf(stderr, "usage: placement_bench [--osds N] [--hosts N] [--pgs N] "
					"[--lookups N] (each at least 1)\n");
			return 2;
		}
	}
	struct cluster_map m;
	uint8_t fsid[16] = { 7 };
	struct map_mon mon = { "a", "127.0.0.1:6789" };
	map_init(&m, fsid, &mon, 1);
	for (uint32_t i = 0; i < osds; i++) {
		struct map_cmd c = { .type = MAP_CMD_OSD_BOOT, .osd = i, .device_bytes = 1ULL << 40 };
		snprintf(c.addr, sizeof(c.addr), "127.0.0.1:%u", 6800 + i);
		snprintf(c.host, sizeof(c.host), "host%lu", i % hosts);
		apply(&m, c);
	}
	struct map_cmd c = { .type = MAP_CMD_POOL_CREATE, .name = "rbd" };
	c.pool = (struct map_pool){ .type = MAP_POOL_REPLICATED, .size = 3, .min_size = 2,
				    .pg_num = (uint32_t)pgs, .block_size = 128 << 10 };
	apply(&m, c);
	const struct map_pool *p = map_pool_by_name(&m, "rbd");
	uint32_t out[MAP_PG_ACTING_MAX];
	uint64_t rng = 1, sum = 0;
	double ns[2];
	for (int way = 0; way < 2; way++) {
		for (uint32_t pg = 0; way && pg < pgs; pg++) /* fill the cache: once per map */
			map_pg_acting(&m, p, pg, out, MAP_PG_ACTING_MAX);
		uint64_t t0 = bench_now_ns();
		for (unsigned long i = 0; i < lookups; i++) {
			uint32_t pg = (uint32_t)(bench_rnd(&rng) % pgs);
			sum += way ? map_pg_acting(&m, p, pg, out, MAP_PG_ACTING_MAX)
				   : acting_fresh(&m, p, pg, out);
			sum += out[0];
		}
		ns[way] = (double)(bench_now_ns() - t0) / (double)lookups;
	}
	printf("| %lu | %lu | %lu | %.0f | %.1f | %.0fx |\n", osds, hosts, pgs, ns[0], ns[1],
	       ns[0] / ns[1]);
	map_free(&m);
	return sum ? 0 : 1;
}
