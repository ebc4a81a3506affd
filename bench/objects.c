/* The object benchmark: a load generator on libbasalt, the native client.
 * Writes or reads objects of a pool at a fixed queue depth for a while
 * and prints one JSON line: operations, bytes, latency (mean, p99), and
 * the CPU the client and the daemons named in PIDS spent per operation.
 *
 *   objects -c CONF --keyring PATH --pool NAME --op write|read --bs BYTES
 *           [--qd N] [--seconds S] [--objects N] [--pids FILE] [--prefill]
 *           [--fill]
 *
 * BS below the pool's block size is a random BS-aligned range of a random
 * object; BS equal to it is a whole object. --prefill writes every object
 * whole first (reads then find data). --fill only writes objects 0..N-1
 * once each, BS bytes at offset 0, in order at QD, and prints its rate
 * (bench/scale.sh fills OSDs with it). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "client/libbasalt.h"
#include "common/config.h"
#include "common/log.h"

struct slot {
	struct bs_op op;
	struct gen *g;
	uint64_t started;
	uint8_t *buf;
};

struct gen {
	struct io_loop *loop;
	struct bs_client *c;
	uint32_t pool, bs, block, objects, qd;
	bool write, measuring, stopping;
	uint64_t rng, ops, errors, done_at;
	uint64_t next_fill; /* --fill: the next object index to write */
	struct bench_samples lat;
	unsigned inflight;
	struct slot *slots;
};

static void submit(struct gen *g, struct slot *s);

static void done(struct bs_op *op, int rc)
{
	struct slot *s = op->ctx;
	struct gen *g = s->g;
	g->inflight--;
	if (rc)
		g->errors++;
	if (g->measuring && !rc) {
		g->ops++;
		bench_sample(&g->lat, bench_now_ns() - s->started);
	}
	if (!g->stopping)
		submit(g, s);
}

static void submit(struct gen *g, struct slot *s)
{
	memset(&s->op, 0, sizeof(s->op));
	s->op.type = g->write ? BS_WRITE : BS_READ;
	s->op.oid = (struct object_id){ g->pool, 0xbe, bench_rnd(&g->rng) % g->objects, 0, OBJECT_SHARD_WHOLE };
	s->op.offset =
		g->bs < g->block ? (uint32_t)(bench_rnd(&g->rng) % (g->block / g->bs)) * g->bs : 0;
	s->op.len = g->bs;
	s->op.buf = s->buf;
	s->op.done = done;
	s->op.ctx = s;
	s->started = bench_now_ns();
	g->inflight++;
	bs_submit(g->c, &s->op);
}

/* User + system CPU seconds of process PID so far (0 if gone). */
static double proc_cpu(long pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	unsigned long utime = 0, stime = 0;
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime,
			 &stime) != 2)
		return 0;
	return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static double daemons_cpu(const char *pids_file)
{
	double sum = 0;
	FILE *f = pids_file ? fopen(pids_file, "r") : NULL;
	char name[64];
	long pid;
	while (f && fscanf(f, "%63s %ld", name, &pid) == 2)
		sum += proc_cpu(pid);
	if (f)
		fclose(f);
	return sum;
}

static void fill_submit(struct gen *g, struct slot *s);

static void fill_done(struct bs_op *op, int rc)
{
	struct slot *s = op->ctx;
	struct gen *g = s->g;
	g->inflight--;
	g->ops++;
	if (rc)
		g->errors++;
	if (g->next_fill < g->objects)
		fill_submit(g, s);
}

static void fill_submit(struct gen *g, struct slot *s)
{
	s->op = (struct bs_op){ .type = BS_WRITE, .oid = { .pool = g->pool, .inode = 0xbe, .index = g->next_fill++, .snap = 0 },
				.len = g->bs, .buf = s->buf, .done = fill_done, .ctx = s };
	g->inflight++;
	bs_submit(g->c, &s->op);
}

/* --fill: objects 0..N-1 once each; one JSON line. 0, or 1 on errors. */
static int fill(struct gen *g)
{
	uint64_t t0 = bench_now_ns(), tenth = g->objects / 10 ? g->objects / 10 : 1, said = 0;
	for (uint32_t i = 0; i < g->qd && g->next_fill < g->objects; i++)
		fill_submit(g, &g->slots[i]);
	while (g->inflight) {
		io_loop_run_once(g->loop, IO_MS(50));
		if (g->ops / tenth > said) {
			said = g->ops / tenth;
			fprintf(stderr, "objects: filled %" PRIu64 " of %u in %.0f s\n", g->ops,
				g->objects, (double)(bench_now_ns() - t0) / 1e9);
		}
	}
	double secs = (double)(bench_now_ns() - t0) / 1e9;
	printf("{\"op\": \"fill\", \"bs\": %u, \"qd\": %u, \"objects\": %u, \"seconds\": %.2f"
	       ", \"objects_s\": %.1f, \"errors\": %" PRIu64 "}\n",
	       g->bs, g->qd, g->objects, secs, g->objects / secs, g->errors);
	return g->errors ? 1 : 0;
}

static void run_for(struct gen *g, uint64_t ns)
{
	uint64_t end = bench_now_ns() + ns;
	while (bench_now_ns() < end)
		io_loop_run_once(g->loop, IO_MS(50));
}

int main(int argc, char **argv)
{
	const char *conf = NULL, *keyring = NULL, *pool = NULL, *op = "write", *pids = NULL;
	uint64_t bs = 4096, qd = 1, seconds = 10, objects = 1024;
	bool prefill = false, fill_only = false;
	static const struct option opts[] = {
		{ "keyring", required_argument, NULL, 'k' }, { "pool", required_argument, NULL, 'p' },
		{ "op", required_argument, NULL, 'o' },	     { "bs", required_argument, NULL, 'b' },
		{ "qd", required_argument, NULL, 'q' },	     { "seconds", required_argument, NULL, 's' },
		{ "objects", required_argument, NULL, 'n' }, { "pids", required_argument, NULL, 'P' },
		{ "prefill", no_argument, NULL, 'f' },	     { "fill", no_argument, NULL, 'F' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': conf = optarg; break;
		case 'k': keyring = optarg; break;
		case 'p': pool = optarg; break;
		case 'o': op = optarg; break;
		case 'b': bs = bench_size("objects", "--bs", optarg, UINT32_MAX); break;
		case 'q': qd = strtoull(optarg, NULL, 0); break;
		case 's': seconds = strtoull(optarg, NULL, 0); break;
		case 'n': objects = strtoull(optarg, NULL, 0); break;
		case 'P': pids = optarg; break;
		case 'f': prefill = true; break;
		case 'F': fill_only = true; break;
		default: return 2;
		}
	}
	if (!conf || !keyring || !pool || !qd || !objects || !bs || bs % 4096 ||
	    (strcmp(op, "write") && strcmp(op, "read"))) {
		fprintf(stderr, "usage: objects -c CONF --keyring PATH --pool NAME --op write|read "
				"--bs BYTES [--qd N] [--seconds S] [--objects N] [--pids FILE] "
				"[--prefill] [--fill]\n");
		return 2;
	}
	log_init("objects");
	log_set_level(LOG_LEVEL_ERROR);
	struct cfg *cfg;
	char why[512];
	if (cfg_load(conf, &cfg, why, sizeof(why))) {
		fprintf(stderr, "objects: %s\n", why);
		return 1;
	}
	struct gen g = { .qd = (uint32_t)qd, .objects = (uint32_t)objects, .bs = (uint32_t)bs,
			 .write = strcmp(op, "write") == 0, .rng = 0x9E3779B97F4A7C15ULL };
	struct bs_client_params p = { .keyring = keyring };
	if (io_loop_create_uring(NULL, &g.loop) ||
	    bs_client_create(g.loop, cfg, &p, &g.c, why, sizeof(why))) {
		fprintf(stderr, "objects: %s\n", why);
		return 1;
	}
	const struct map_pool *mp;
	if (bs_client_wait_pool(g.c, pool, 20000, &mp) || bs > mp->block_size) {
		fprintf(stderr, "objects: no pool '%s', or --bs beyond its objects\n", pool);
		return 1;
	}
	g.pool = mp->id;
	g.block = mp->block_size;
	g.slots = calloc(qd, sizeof(*g.slots));
	for (uint64_t i = 0; i < qd; i++) {
		g.slots[i].g = &g;
		if (posix_memalign((void **)&g.slots[i].buf, 4096, g.block))
			return 1;
		memset(g.slots[i].buf, (int)(0x5a + i), g.block);
	}
	if (fill_only) {
		int rc = fill(&g);
		bs_client_destroy(g.c);
		io_loop_destroy(g.loop);
		cfg_free(cfg);
		return rc;
	}
	if (prefill) { /* every object whole, QD at a time, from one shared buffer */
		struct slot *fill = calloc(g.objects, sizeof(*fill));
		uint64_t next = 0;
		g.stopping = true; /* done() starts nothing */
		while (fill && (next < g.objects || g.inflight)) {
			while (g.inflight < qd && next < g.objects) {
				struct slot *s = &fill[next];
				s->g = &g;
				s->op = (struct bs_op){ .type = BS_WRITE, .oid = { .pool = g.pool, .inode = 0xbe, .index = next },
							.len = g.block, .buf = g.slots[0].buf,
							.done = done, .ctx = s };
				next++;
				g.inflight++;
				bs_submit(g.c, &s->op);
			}
			io_loop_run_once(g.loop, IO_MS(50));
		}
		free(fill);
		g.stopping = false;
		if (!fill || g.errors) {
			fprintf(stderr, "objects: the prefill failed\n");
			return 1;
		}
	}
	for (uint64_t i = 0; i < qd; i++)
		submit(&g, &g.slots[i]);
	run_for(&g, IO_SEC(1)); /* ramp */
	double cpu0 = bench_cpu_seconds(), d0 = daemons_cpu(pids);
	uint64_t t0 = bench_now_ns();
	g.measuring = true;
	run_for(&g, IO_SEC(seconds));
	g.measuring = false;
	uint64_t t1 = bench_now_ns();
	double cpu1 = bench_cpu_seconds(), d1 = daemons_cpu(pids);
	g.stopping = true;
	while (g.inflight)
		io_loop_run_once(g.loop, IO_MS(50));
	double secs = (double)(t1 - t0) / 1e9, mean, p99;
	bench_latency(g.lat.v, g.lat.n, &mean, &p99);
	double ops = (double)g.ops;
	printf("{\"op\": \"%s\", \"bs\": %u, \"qd\": %u, \"seconds\": %.2f, \"ops\": %" PRIu64
	       ", \"iops\": %.1f, \"mb_s\": %.2f, \"mean_us\": %.1f, \"p99_us\": %.1f"
	       ", \"errors\": %" PRIu64 ", \"client_cpu_us_per_op\": %.1f"
	       ", \"daemons_cpu_us_per_op\": %.1f}\n",
	       op, g.bs, g.qd, secs, g.ops, ops / secs, ops * g.bs / secs / 1e6, mean, p99, g.errors,
	       ops ? (cpu1 - cpu0) * 1e6 / ops : 0, ops ? (d1 - d0) * 1e6 / ops : 0);
	bs_client_destroy(g.c);
	io_loop_destroy(g.loop);
	cfg_free(cfg);
	return g.errors ? 1 : 0;
}
