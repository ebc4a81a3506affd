/* The store's RAM per object and its start-up time, measured by the
 * process's RSS (not by arithmetic):
 *
 *   store_ram --device PATH [--objects 1M] [--qd 256] [--reads 20000]
 *             [--crc-cache 64M] [--keep] [--reuse]
 *
 * 1. Makes PATH a sparse file just big enough for OBJECTS 128 KiB blocks
 *    (plus 2%), formats it, and in a child process writes 4 KiB at offset
 *    0 of each object through store_submit (QD requests in flight), then
 *    checkpoints: RSS before and after, per object.
 * 2. In a fresh child: store_open of the filled store, timed, and RSS
 *    after it per object (the steady state of a restarted OSD).
 * 3. In a fresh child for each CRC cache size (--crc-cache, then 0): 4 KiB
 *    random reads over all objects at queue depth 1 (READS of them) and
 *    32 (4 x READS): IOPS, mean and p99 latency (a cache of 0 makes every
 *    read fetch the block's metadata entry too).
 * The device file is deleted at the end unless --keep; --reuse skips 1
 * on a device filled before (with the same --objects) and keeps it. One
 * JSON line per step on stdout. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"
#include "common/log.h"
#include "osd/store.h"

#define BLOCK (128u << 10)

struct ram {
	struct io_loop *loop;
	struct store *s;
	uint64_t objects, next, done;
	unsigned inflight;
	int errors;
	uint64_t rng;
};

struct ram_io {
	struct store_req req;
	struct ram *r;
	uint64_t start_ns;
	bool busy;
};

static uint64_t rss_bytes(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	uint64_t kb = 0;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %" SCNu64, &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb * 1024;
}

static void io_done(struct store_req *req, int res)
{
	struct ram_io *io = (struct ram_io *)req;
	if (res && !io->r->errors++)
		fprintf(stderr, "store_ram: %s\n", strerror(-res));
	io->busy = false;
	io->r->inflight--;
	io->r->done++;
}

static void checkpoint_done(void *arg)
{
	*(bool *)arg = true;
}

static bool flag_set(void *arg)
{
	return *(bool *)arg;
}

static int open_store(struct ram *r, const char *path, uint64_t crc_cache)
{
	struct store_params p;
	char why[256];
	store_params_default(&p);
	p.crc_cache_bytes = crc_cache;
	if (io_loop_create_uring(NULL, &r->loop))
		return 1;
	if (store_open(r->loop, path, &p, &r->s, why, sizeof(why))) {
		fprintf(stderr, "store_ram: %s\n", why);
		return 1;
	}
	return 0;
}

static int fill(const char *path, uint64_t objects, unsigned qd, uint64_t crc_cache)
{
	struct ram r = { .objects = objects };
	uint64_t rss0 = rss_bytes();
	if (open_store(&r, path, crc_cache))
		return 1;
	uint64_t rss_open = rss_bytes();
	struct ram_io *ios = calloc(qd, sizeof(*ios));
	uint8_t *buf;
	if (!ios || posix_memalign((void **)&buf, 4096, (size_t)qd * 4096))
		return 1;
	memset(buf, 0x5a, (size_t)qd * 4096);
	uint64_t t0 = bench_now_ns();
	while (r.done < objects) {
		for (unsigned i = 0; i < qd && r.next < objects; i++) {
			struct ram_io *io = &ios[i];
			if (io->busy)
				continue;
			memset(&io->req, 0, sizeof(io->req));
			io->r = &r;
			io->busy = true;
			io->req.op = STORE_OP_WRITE;
			io->req.oid = (struct object_id){ 1, 1, r.next++, 0, OBJECT_SHARD_WHOLE };
			io->req.len = 4096;
			io->req.buf = buf + (size_t)i * 4096;
			le_store64(io->req.buf, io->req.oid.index);
			io->req.done = io_done;
			r.inflight++;
			store_submit(r.s, &io->req);
		}
		io_loop_run_once(r.loop, -1);
	}
	bool done = false;
	store_checkpoint(r.s, checkpoint_done, &done);
	io_loop_run_until(r.loop, flag_set, &done);
	double secs = (double)(bench_now_ns() - t0) / 1e9;
	uint64_t rss1 = rss_bytes();
	printf("{\"step\": \"fill\", \"objects\": %" PRIu64 ", \"seconds\": %.1f, "
	       "\"rss_before_open\": %" PRIu64 ", \"rss_open\": %" PRIu64 ", \"rss_filled\": %"
	       PRIu64 ", \"bytes_per_object\": %.1f, \"errors\": %d}\n",
	       objects, secs, rss0, rss_open, rss1, (double)(rss1 - rss0) / (double)objects,
	       r.errors);
	fflush(stdout);
	store_close(r.s);
	io_loop_destroy(r.loop);
	return r.errors ? 1 : 0;
}

static int reopen(const char *path, uint64_t objects, uint64_t crc_cache)
{
	struct ram r = { .objects = objects };
	uint64_t rss0 = rss_bytes(), t0 = bench_now_ns();
	if (open_store(&r, path, crc_cache))
		return 1;
	double secs = (double)(bench_now_ns() - t0) / 1e9;
	uint64_t rss1 = rss_bytes();
	struct store_usage u;
	store_usage(r.s, &u);
	double per_obj = (double)(rss1 - rss0) / (double)objects;
	printf("{\"step\": \"open\", \"objects\": %" PRIu64 ", \"open_seconds\": %.2f, "
	       "\"rss_before\": %" PRIu64 ", \"rss_after\": %" PRIu64 ", \"bytes_per_object\": %.1f, "
	       "\"gib_per_tib_128k\": %.2f, \"crc_cache\": %" PRIu64 "}\n",
	       u.objects, secs, rss0, rss1, per_obj,
	       per_obj * (double)((1ULL << 40) / BLOCK) / (double)(1ULL << 30), crc_cache);
	fflush(stdout);
	store_close(r.s);
	io_loop_destroy(r.loop);
	return u.objects == objects ? 0 : 1;
}

/* N random 4 KiB reads at queue depth QD, each checked. */
static int reads(const char *path, uint64_t objects, uint64_t n, uint64_t crc_cache,
		 unsigned qd)
{
	struct ram r = { .objects = objects, .rng = 0x9e3779b97f4a7c15ULL };
	if (open_store(&r, path, crc_cache))
		return 1;
	uint64_t *lat = calloc(n ? n : 1, sizeof(*lat)), nlat = 0, started = 0;
	struct ram_io *ios = calloc(qd, sizeof(*ios));
	uint8_t *buf;
	if (!lat || !ios || posix_memalign((void **)&buf, 4096, (size_t)qd * 4096))
		return 1;
	uint64_t t0 = bench_now_ns();
	while (nlat < n) {
		for (unsigned i = 0; i < qd; i++) {
			struct ram_io *io = &ios[i];
			if (io->busy || !io->start_ns)
				continue;
			lat[nlat++] = bench_now_ns() - io->start_ns; /* finished */
			io->start_ns = 0;
			uint8_t *b = buf + (size_t)i * 4096;
			if (!r.errors && le_load64(b) != io->req.oid.index) {
				fprintf(stderr, "store_ram: object %" PRIu64 " read back wrong data\n",
					io->req.oid.index);
				r.errors++;
			}
		}
		for (unsigned i = 0; i < qd && started < n; i++) {
			struct ram_io *io = &ios[i];
			if (io->busy || io->start_ns)
				continue;
			memset(&io->req, 0, sizeof(io->req));
			io->r = &r;
			io->busy = true;
			io->req.op = STORE_OP_READ;
			io->req.oid = (struct object_id){ 1, 1, bench_rnd(&r.rng) % objects, 0, OBJECT_SHARD_WHOLE };
			io->req.len = 4096;
			io->req.buf = buf + (size_t)i * 4096;
			io->req.done = io_done;
			r.inflight++;
			started++;
			io->start_ns = bench_now_ns();
			store_submit(r.s, &io->req);
		}
		if (nlat < n)
			io_loop_run_once(r.loop, -1);
	}
	double secs = (double)(bench_now_ns() - t0) / 1e9;
	double mean, p99;
	bench_latency(lat, n, &mean, &p99);
	struct store_usage u;
	store_usage(r.s, &u);
	printf("{\"step\": \"randread4k\", \"qd\": %u, \"crc_cache\": %" PRIu64 ", \"reads\": %"
	       PRIu64 ", \"iops\": %.0f, \"mean_us\": %.1f, \"p99_us\": %.1f, \"rss\": %" PRIu64
	       ", \"crc_hits\": %" PRIu64 ", \"entry_reads\": %" PRIu64
	       ", \"csum_errors\": %" PRIu64 ", \"errors\": %d}\n",
	       qd, crc_cache, n, (double)n / secs, mean, p99, rss_bytes(), u.crc_cache_hits,
	       u.crc_entry_reads, u.csum_errors, r.errors);
	fflush(stdout);
	store_close(r.s);
	io_loop_destroy(r.loop);
	return r.errors || u.csum_errors ? 1 : 0;
}

/* Runs FN in a child (a fresh heap, so RSS counts only what it makes). */
static int in_child(int (*fn)(const char *, uint64_t, uint64_t), const char *path,
		    uint64_t a, uint64_t b)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0)
		_exit(fn(path, a, b));
	int st;
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return 1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

static const char *g_path;
static uint64_t g_objects, g_qd, g_cache;

static int fill_child(const char *path, uint64_t objects, uint64_t qd)
{
	return fill(path, objects, (unsigned)qd, g_cache);
}

static int reads_child(const char *path, uint64_t n, uint64_t cache)
{
	return reads(path, g_objects, n, cache, 1) ||
	       reads(path, g_objects, 4 * n, cache, 32);
}

static int make_device(const char *path, uint64_t objects)
{
	struct io_loop *loop;
	char why[256];
	/* Data, two 512-byte entry slots per block, the journal, 2% spare. */
	uint64_t size = objects * (BLOCK + 1024) / 50 * 51 + (96u << 20);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)size)) {
		fprintf(stderr, "store_ram: %s: %s\n", path, strerror(errno));
		return 1;
	}
	close(fd);
	if (io_loop_create_uring(NULL, &loop))
		return 1;
	struct store_mkfs_params mp = { .block_size = BLOCK, .force = true };
	int rc = store_mkfs(loop, path, &mp, why, sizeof(why));
	if (rc)
		fprintf(stderr, "store_ram: %s\n", why);
	io_loop_destroy(loop);
	printf("{\"step\": \"mkfs\", \"device_bytes\": %" PRIu64 "}\n", size);
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	uint64_t reads_n = 20000;
	bool keep = false, reuse = false;
	g_objects = 1000000;
	g_qd = 256;
	g_cache = 64u << 20;
	static const struct option opts[] = {
		{ "device", required_argument, NULL, 'd' },
		{ "objects", required_argument, NULL, 'n' },
		{ "qd", required_argument, NULL, 'q' },
		{ "reads", required_argument, NULL, 'r' },
		{ "crc-cache", required_argument, NULL, 'c' },
		{ "keep", no_argument, NULL, 'k' },
		{ "reuse", no_argument, NULL, 'u' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': g_path = optarg; break;
		case 'n': g_objects = bench_size("store_ram", "--objects", optarg, 1ULL << 31); break;
		case 'q': g_qd = bench_size("store_ram", "--qd", optarg, 4096); break;
		case 'r': reads_n = bench_size("store_ram", "--reads", optarg, 1ULL << 24); break;
		case 'c': g_cache = bench_size("store_ram", "--crc-cache", optarg, 1ULL << 40); break;
		case 'k': keep = true; break;
		case 'u': reuse = keep = true; break;
		default: return 2;
		}
	}
	if (!g_path || !g_objects || !g_qd) {
		fprintf(stderr, "usage: store_ram --device PATH [--objects N] [--qd N] "
				"[--reads N] [--crc-cache SIZE] [--keep] [--reuse]\n");
		return 2;
	}
	log_set_level(LOG_LEVEL_INFO);
	int rc = reuse ? 0 : make_device(g_path, g_objects);
	if (!rc && !reuse)
		rc = in_child(fill_child, g_path, g_objects, g_qd);
	if (!rc)
		rc = in_child(reopen, g_path, g_objects, g_cache);
	if (!rc && reads_n)
		rc = in_child(reads_child, g_path, reads_n, g_cache);
	if (!rc && reads_n)
		rc = in_child(reads_child, g_path, reads_n, 0);
	if (!keep)
		unlink(g_path);
	return rc;
}
