/* The store driven in-process (no network): random 4 KiB writes and reads
 * at queue depth 1 and 32 over a working set, and sequential whole-object
 * writes and reads. One JSON line per job on stdout, for bench/store.sh.
 *
 *   store_bench --device PATH [--size 4G] [--working-set 1G] [--runtime 10]
 *               [--sync always|batch] [--block-size 128K]
 *               [--jobs randwrite4k:1,randwrite4k:32,...]
 * A job is NAME:QD with NAME one of randwrite4k, randread4k, seqwrite,
 * seqread (sequential jobs move whole objects, --seq-bs bytes per op made
 * of block-size objects written/read in parallel). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "common/config.h"
#include "common/log.h"
#include "osd/store.h"

#define MAX_QD 256
#define MAX_SAMPLES (1u << 24)

struct bench;

struct bench_io {
	struct store_req req;
	struct bench *b;
	struct bench_op *op;
};

/* One benchmark operation: one store request, or several (a sequential
 * op larger than a block is split into whole-block requests). */
struct bench_op {
	struct bench *b;
	uint64_t start_ns;
	unsigned parts_left;
	int error;
	uint8_t *buf;
	struct bench_io io[8];
	bool busy;
};

struct bench {
	struct io_loop *loop;
	struct store *s;
	uint32_t bs;
	uint64_t objects;
	uint64_t rng;
	uint64_t *lat;
	uint64_t nlat, ops, bytes;
	unsigned inflight;
	uint64_t seq_next;
	int errors;
};

static uint64_t rnd(struct bench *b)
{
	b->rng ^= b->rng << 13;
	b->rng ^= b->rng >> 7;
	b->rng ^= b->rng << 17;
	return b->rng;
}

static void io_done(struct store_req *req, int res)
{
	struct bench_io *io = (struct bench_io *)req;
	struct bench_op *op = io->op;
	struct bench *b = op->b;
	if (res)
		op->error = res;
	if (--op->parts_left)
		return;
	if (op->error) {
		if (!b->errors++)
			fprintf(stderr, "store_bench: %s\n", strerror(-op->error));
	}
	uint64_t t = bench_now_ns() - op->start_ns;
	if (b->nlat < MAX_SAMPLES)
		b->lat[b->nlat++] = t;
	b->ops++;
	op->busy = false;
	b->inflight--;
}

enum job_kind { JOB_RANDWRITE, JOB_RANDREAD, JOB_SEQWRITE, JOB_SEQREAD };

static void start_op(struct bench *b, struct bench_op *op, enum job_kind kind,
		     uint32_t seq_bs)
{
	op->b = b;
	op->busy = true;
	op->error = 0;
	op->start_ns = bench_now_ns();
	b->inflight++;
	if (kind == JOB_RANDWRITE || kind == JOB_RANDREAD) {
		struct bench_io *io = &op->io[0];
		memset(&io->req, 0, sizeof(io->req));
		io->op = op;
		io->req.op = kind == JOB_RANDWRITE ? STORE_OP_WRITE : STORE_OP_READ;
		io->req.oid = (struct object_id){ 1, 1, rnd(b) % b->objects, 0, OBJECT_SHARD_WHOLE };
		io->req.offset = (uint32_t)(rnd(b) % (b->bs / 4096)) * 4096;
		io->req.len = 4096;
		io->req.buf = op->buf;
		io->req.done = io_done;
		op->parts_left = 1;
		b->bytes += 4096;
		store_submit(b->s, &io->req);
		return;
	}
	unsigned parts = seq_bs / b->bs;
	op->parts_left = parts;
	for (unsigned i = 0; i < parts; i++) {
		struct bench_io *io = &op->io[i];
		memset(&io->req, 0, sizeof(io->req));
		io->op = op;
		io->req.op = kind == JOB_SEQWRITE ? STORE_OP_WRITE : STORE_OP_READ;
		io->req.oid = (struct object_id){ 1, 1, b->seq_next++ % b->objects, 0, OBJECT_SHARD_WHOLE };
		io->req.len = b->bs;
		io->req.buf = op->buf + (size_t)i * b->bs;
		io->req.done = io_done;
	}
	b->bytes += seq_bs;
	for (unsigned i = 0; i < parts; i++)
		store_submit(b->s, &op->io[i].req);
}

static void run_job(struct bench *b, const char *name, enum job_kind kind,
		    unsigned qd, uint32_t seq_bs, double runtime, struct bench_op *ops)
{
	b->nlat = b->ops = b->bytes = 0;
	b->seq_next = 0;
	double cpu0 = bench_cpu_seconds();
	uint64_t t0 = bench_now_ns(), end = t0 + (uint64_t)(runtime * 1e9);
	while (bench_now_ns() < end) {
		for (unsigned i = 0; i < qd; i++)
			if (!ops[i].busy)
				start_op(b, &ops[i], kind, seq_bs);
		io_loop_run_once(b->loop, -1);
	}
	while (b->inflight)
		io_loop_run_once(b->loop, -1);
	double secs = (double)(bench_now_ns() - t0) / 1e9, cpu = bench_cpu_seconds() - cpu0;
	double mean_us, p99_us;
	bench_latency(b->lat, b->nlat, &mean_us, &p99_us);
	printf("{\"job\": \"%s\", \"qd\": %u, \"bs\": %u, \"iops\": %.1f, \"mbps\": %.2f, "
	       "\"mean_us\": %.2f, \"p99_us\": %.2f, \"cpu_us_per_op\": %.2f, \"errors\": %d}\n",
	       name, qd, kind == JOB_RANDWRITE || kind == JOB_RANDREAD ? 4096 : seq_bs,
	       (double)b->ops / secs, (double)b->bytes / secs / 1e6,
	       mean_us, p99_us,
	       b->ops ? cpu * 1e6 / (double)b->ops : 0, b->errors);
	fflush(stdout);
}

static void checkpoint_done(void *arg)
{
	*(bool *)arg = true;
}

static bool flag_set(void *arg)
{
	return *(bool *)arg;
}

int main(int argc, char **argv)
{
	const char *device = NULL, *jobs = "randwrite4k:1,randwrite4k:32,randread4k:1,"
					   "randread4k:32,seqwrite:4,seqread:4";
	uint64_t size = 4ULL << 30, working = 1ULL << 30, seq_bs = 1 << 20;
	uint32_t block_size = 128 << 10;
	double runtime = 10;
	struct store_params sp;
	store_params_default(&sp);
	static const struct option opts[] = {
		{ "device", required_argument, NULL, 'd' },
		{ "size", required_argument, NULL, 's' },
		{ "working-set", required_argument, NULL, 'w' },
		{ "runtime", required_argument, NULL, 'r' },
		{ "sync", required_argument, NULL, 'y' },
		{ "block-size", required_argument, NULL, 'b' },
		{ "seq-bs", required_argument, NULL, 'q' },
		{ "jobs", required_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': device = optarg; break;
		case 's': size = bench_size("store_bench", "--size", optarg, SIZE_MAX_BYTES); break;
		case 'w': working = bench_size("store_bench", "--working-set", optarg, SIZE_MAX_BYTES); break;
		case 'r': runtime = atof(optarg); break;
		case 'y': sp.sync = strcmp(optarg, "batch") == 0 ? STORE_SYNC_BATCH : STORE_SYNC_ALWAYS; break;
		case 'b': block_size = (uint32_t)bench_size("store_bench", "--block-size", optarg, UINT32_MAX); break;
		case 'q': seq_bs = bench_size("store_bench", "--seq-bs", optarg, UINT32_MAX); break;
		case 'j': jobs = optarg; break;
		default: return 2;
		}
	}
	if (!device) {
		fprintf(stderr, "usage: store_bench --device PATH [options]\n");
		return 2;
	}
	log_set_level(LOG_LEVEL_WARN);
	struct bench b = { .rng = 0x12345678ULL };
	char why[256];
	if (io_loop_create_uring(NULL, &b.loop))
		return 1;
	struct store_mkfs_params mp = { .size = size, .block_size = block_size, .force = true };
	if (store_mkfs(b.loop, device, &mp, why, sizeof(why)) ||
	    store_open(b.loop, device, &sp, &b.s, why, sizeof(why))) {
		fprintf(stderr, "store_bench: %s\n", why);
		return 1;
	}
	b.bs = store_block_size(b.s);
	b.objects = working / b.bs;
	if (seq_bs < b.bs || seq_bs % b.bs || seq_bs / b.bs > 8) {
		fprintf(stderr, "store_bench: --seq-bs must be 1 to 8 blocks\n");
		return 2;
	}
	b.lat = malloc(MAX_SAMPLES * sizeof(uint64_t));
	struct bench_op ops[MAX_QD];
	memset(ops, 0, sizeof(ops));
	for (unsigned i = 0; i < MAX_QD; i++) {
		if (posix_memalign((void **)&ops[i].buf, 4096, seq_bs))
			return 1;
		memset(ops[i].buf, 0x5a + i, seq_bs);
	}
	/* Prefill the working set so reads find data. */
	run_job(&b, "prefill", JOB_SEQWRITE, 8, b.bs, 0, ops);
	b.seq_next = 0;
	for (uint64_t done = 0; done < b.objects;) {
		for (unsigned i = 0; i < 16 && done < b.objects; i++)
			if (!ops[i].busy) {
				start_op(&b, &ops[i], JOB_SEQWRITE, b.bs);
				done++;
			}
		io_loop_run_once(b.loop, -1);
	}
	while (b.inflight)
		io_loop_run_once(b.loop, -1);
	bool done = false;
	store_checkpoint(b.s, checkpoint_done, &done);
	io_loop_run_until(b.loop, flag_set, &done);

	char *list = strdup(jobs);
	for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
		char name[32];
		unsigned qd = 1;
		if (sscanf(tok, "%31[^:]:%u", name, &qd) < 1 || qd < 1 || qd > MAX_QD)
			continue;
		enum job_kind kind = strcmp(name, "randwrite4k") == 0 ? JOB_RANDWRITE
				   : strcmp(name, "randread4k") == 0  ? JOB_RANDREAD
				   : strcmp(name, "seqwrite") == 0    ? JOB_SEQWRITE
				   : strcmp(name, "seqread") == 0     ? JOB_SEQREAD
								      : (enum job_kind)-1;
		if ((int)kind < 0) {
			fprintf(stderr, "store_bench: unknown job %s\n", name);
			return 2;
		}
		run_job(&b, name, kind, qd, (uint32_t)seq_bs, runtime, ops);
	}
	free(list);
	store_close(b.s);
	io_loop_destroy(b.loop);
	return b.errors ? 1 : 0;
}
