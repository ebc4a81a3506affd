/* The volume load generator: fio's job definitions run through libbasalt,
 * Basalt's native client, with no NBD server or kernel in between. It
 * takes the options bench/run.sh gives fio and writes a JSON report in
 * fio's shape (jobs[0].read|write: iops, bw_bytes, clat_ns mean and 99th
 * percentile; job_runtime), so the same table reads both.
 *
 *   volume_load -c CONF --keyring PATH --volume NAME
 *               --rw randwrite|randread|write|read --bs BYTES
 *               [--iodepth N] [--size BYTES] [--runtime S] [--ramp_time S]
 *               [--output FILE] [--time_based]
 *
 * It always runs for --runtime (fio's --time_based is taken and changes
 * nothing). Random jobs pick BS-aligned offsets below --size (default: the
 * volume's size) uniformly; sequential ones walk from 0 and wrap. Writers take the
 * volume's lock first (as basalt-nbd does) and give it back at the end.
 * Latency runs from submission to completion; the ramp is not counted. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "client/libbasalt.h"
#include "common/config.h"
#include "common/cluster/tool.h"
#include "common/log.h"

struct slot {
	struct bs_vio vio;
	struct gen *g;
	uint64_t started;
	uint8_t *buf;
};

struct gen {
	struct io_loop *loop;
	struct bs_client *c;
	struct bs_volume *v;
	uint64_t bs, size, cursor, rng;
	bool write, random, measuring, stopping;
	uint64_t ops, errors;
	int first_error;
	struct bench_samples lat;
	unsigned inflight;
	/* the lock */
	bool lock_done;
	int lock_rc;
	char lock_why[256];
};

static void submit(struct gen *g, struct slot *s);

static void done(struct bs_vio *vio, int rc)
{
	struct slot *s = vio->ctx;
	struct gen *g = s->g;
	g->inflight--;
	if (rc && !g->errors++)
		g->first_error = rc;
	if (g->measuring && !rc) {
		g->ops++;
		bench_sample(&g->lat, bench_now_ns() - s->started);
	}
	if (!g->stopping && !g->errors)
		submit(g, s);
}

static void submit(struct gen *g, struct slot *s)
{
	uint64_t off;
	if (g->random) {
		off = bench_rnd(&g->rng) % (g->size / g->bs) * g->bs;
	} else {
		if (g->cursor + g->bs > g->size)
			g->cursor = 0;
		off = g->cursor;
		g->cursor += g->bs;
	}
	s->vio = (struct bs_vio){ .type = g->write ? BS_VIO_WRITE : BS_VIO_READ,
				  .offset = off,
				  .len = (uint32_t)g->bs,
				  .buf = s->buf,
				  .done = done,
				  .ctx = s };
	s->started = bench_now_ns();
	g->inflight++;
	bs_volume_submit(g->v, &s->vio);
}

static void run_for(struct gen *g, uint64_t ns)
{
	uint64_t end = bench_now_ns() + ns;
	while (bench_now_ns() < end && !g->errors)
		io_loop_run_once(g->loop, IO_MS(50));
}

/* Runs the loop until PRED(G) holds or TIMEOUT_NS passed: whether it held. */
static bool wait_for(struct gen *g, bool (*pred)(struct gen *g), uint64_t timeout_ns)
{
	uint64_t end = bench_now_ns() + timeout_ns;
	while (!pred(g) && bench_now_ns() < end)
		io_loop_run_once(g->loop, IO_MS(50));
	return pred(g);
}

static bool have_map(struct gen *g)
{
	return bs_client_have_map(g->c);
}

static bool never(struct gen *g)
{
	(void)g;
	return false;
}

static bool lock_answered(struct gen *g)
{
	return g->lock_done;
}

static bool unlocked(struct gen *g)
{
	return !bs_lock_busy(g->c);
}

static void lock_cb(void *ctx, int rc, const char *why)
{
	struct gen *g = ctx;
	g->lock_done = true;
	g->lock_rc = rc;
	snprintf(g->lock_why, sizeof(g->lock_why), "%s", why ? why : "");
}

static int usage(void)
{
	fprintf(stderr,
		"usage: volume_load [-c CONF] [--keyring PATH] [--name ENTITY] --volume NAME\n"
		"                   --rw randwrite|randread|write|read --bs BYTES [--iodepth N]\n"
		"                   [--size BYTES] [--runtime S] [--ramp_time S] [--output FILE]\n"
		"                   [--time_based]\n");
	return 2;
}

static void report(FILE *f, const struct gen *g, const char *rw, double secs, unsigned qd)
{
	double mean, p99;
	bench_latency(g->lat.v, g->lat.n, &mean, &p99);
	double iops = secs > 0 ? (double)g->ops / secs : 0;
	fprintf(f,
		"{\"engine\": \"libbasalt\", \"jobs\": [{\"jobname\": \"job\", \"rw\": \"%s\", "
		"\"bs\": %" PRIu64 ", \"iodepth\": %u, \"job_runtime\": %.0f, \"error\": %d, "
		"\"%s\": {\"total_ios\": %" PRIu64 ", \"iops\": %.3f, \"bw_bytes\": %.0f, "
		"\"clat_ns\": {\"mean\": %.1f, \"percentile\": {\"99.000000\": %.0f}}}}]}\n",
		rw, g->bs, qd, secs * 1000, g->errors ? -g->first_error : 0,
		g->write ? "write" : "read", g->ops, iops, iops * (double)g->bs, mean * 1000,
		p99 * 1000);
}

int main(int argc, char **argv)
{
	struct tool t;
	tool_init(&t);
	const char *volume = NULL, *rw = NULL, *output = NULL;
	uint64_t bs = 4096, qd = 1, size = 0, runtime = 20, ramp = 2;
	static const struct option opts[] = {
		TOOL_LONG_OPTIONS,
		{ "volume", required_argument, NULL, 'V' },
		{ "rw", required_argument, NULL, 'r' },
		{ "bs", required_argument, NULL, 'b' },
		{ "iodepth", required_argument, NULL, 'q' },
		{ "size", required_argument, NULL, 's' },
		{ "runtime", required_argument, NULL, 't' },
		{ "ramp_time", required_argument, NULL, 'R' },
		{ "output", required_argument, NULL, 'o' },
		{ "time_based", no_argument, NULL, 'T' }, /* fio's; it always is */
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
		if (tool_option(&t, ch, optarg))
			continue;
		switch (ch) {
		case 'V': volume = optarg; break;
		case 'r': rw = optarg; break;
		case 'b': bs = bench_size("volume_load", "--bs", optarg, UINT32_MAX); break;
		case 'q': qd = strtoull(optarg, NULL, 0); break;
		case 's': size = bench_size("volume_load", "--size", optarg, SIZE_MAX_BYTES); break;
		case 't': runtime = strtoull(optarg, NULL, 0); break;
		case 'R': ramp = strtoull(optarg, NULL, 0); break;
		case 'o': output = optarg; break;
		case 'T': break;
		case 'h': usage(); return 0;
		default: return usage();
		}
	}
	struct gen g = { .bs = bs, .rng = 0x9E3779B97F4A7C15ULL };
	if (!volume || !rw || !qd || qd > 4096 || !bs || bs % 512 ||
	    bs > (16u << 20) || !runtime)
		return usage();
	if (!strcmp(rw, "randwrite") || !strcmp(rw, "write"))
		g.write = true;
	else if (strcmp(rw, "randread") && strcmp(rw, "read"))
		return usage();
	g.random = !strncmp(rw, "rand", 4);

	log_init("volume_load");
	log_set_level(LOG_LEVEL_ERROR);
	char why[1024];
	if (tool_load(&t, why, sizeof(why))) {
		fprintf(stderr, "volume_load: %s\n", why);
		return 1;
	}
	struct bs_client_params p = { .entity = t.name, .keyring = t.keyring_path,
				      .op_timeout_ms = 60000 };
	if (io_loop_create_uring(NULL, &g.loop) ||
	    bs_client_create(g.loop, t.cfg, &p, &g.c, why, sizeof(why))) {
		fprintf(stderr, "volume_load: %s\n", why);
		return 1;
	}
	int rc = wait_for(&g, have_map, IO_SEC(30)) ? 0 : -ETIMEDOUT;
	if (!rc)
		rc = bs_volume_open(g.c, volume, !g.write, &g.v);
	if (rc) {
		fprintf(stderr, "volume_load: cannot open volume %s: %s\n", volume, strerror(-rc));
		return 1;
	}
	if (!size || size > bs_volume_size(g.v))
		size = bs_volume_size(g.v);
	g.size = size;
	if (g.size < bs) {
		fprintf(stderr, "volume_load: --bs is larger than the volume\n");
		return 1;
	}
	if (g.write) {
		/* A front end that just closed the volume (the run before) may
		 * still be giving its lock back: -EBUSY for a moment. */
		uint64_t give_up = bench_now_ns() + IO_SEC(10);
		do {
			if (g.lock_done)
				wait_for(&g, never, IO_MS(200));
			g.lock_done = false;
			g.lock_rc = -ETIMEDOUT;
			bs_lock(g.c, volume, false, lock_cb, &g);
			wait_for(&g, lock_answered, IO_SEC(60)); /* it times out in 20 s */
		} while (g.lock_rc == -EBUSY && bench_now_ns() < give_up);
		if (g.lock_rc) {
			fprintf(stderr, "volume_load: cannot lock volume %s: %s%s%s\n", volume,
				strerror(-g.lock_rc), g.lock_why[0] ? ": " : "", g.lock_why);
			return 1;
		}
	}
	struct slot *slots = calloc(qd, sizeof(*slots));
	if (!slots)
		return 1;
	for (uint64_t i = 0; i < qd; i++) {
		slots[i].g = &g;
		if (posix_memalign((void **)&slots[i].buf, 4096, bs))
			return 1;
		for (uint64_t b = 0; b < bs; b++)
			slots[i].buf[b] = (uint8_t)(bench_rnd(&g.rng) >> 32);
	}
	for (uint64_t i = 0; i < qd; i++)
		submit(&g, &slots[i]);
	run_for(&g, IO_SEC(ramp));
	uint64_t t0 = bench_now_ns();
	g.measuring = true;
	run_for(&g, IO_SEC(runtime));
	g.measuring = false;
	double secs = (double)(bench_now_ns() - t0) / 1e9;
	g.stopping = true;
	while (g.inflight)
		io_loop_run_once(g.loop, IO_MS(50));
	if (g.write) {
		bs_unlock(g.c, volume);
		wait_for(&g, unlocked, IO_SEC(30));
	}

	FILE *f = output ? fopen(output, "w") : stdout;
	if (!f) {
		fprintf(stderr, "volume_load: cannot write %s: %s\n", output, strerror(errno));
		return 1;
	}
	report(f, &g, rw, secs, (unsigned)qd);
	if (f != stdout)
		fclose(f);
	if (g.errors)
		fprintf(stderr, "volume_load: %" PRIu64 " requests failed, the first with %s\n",
			g.errors, strerror(-g.first_error));
	for (uint64_t i = 0; i < qd; i++)
		free(slots[i].buf);
	free(slots);
	free(g.lat.v);
	bs_volume_close(g.v);
	bs_client_destroy(g.c);
	io_loop_destroy(g.loop);
	tool_fini(&t);
	return g.errors ? 1 : 0;
}
