/* The store's real crash test: a driver starts a worker process that runs
 * a random workload on the store (writes, overwrites, whole-block writes,
 * deletes, up to 16 in flight) and reports each submission and each
 * acknowledgement on a pipe; the worker is killed with SIGKILL at a random
 * step of the write path (BASALT_STORE_CRASH_AT) or at a random moment from
 * outside. After each death the driver runs `basalt-osd --fsck` (must be
 * clean), reopens the store and checks that every acknowledged write reads
 * back exactly (tests/unit/osd/store_model.h), then starts the next worker.
 *
 *   store_crash_tool drive --device PATH --osd BASALT-OSD [--runs 50]
 *                          [--ops 1500] [--seed S]
 *   store_crash_tool run --device PATH --seed S --ops N      (the worker) */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "../unit/osd/store_model.h"

#define NOBJ 32
#define QD 16
#define BS (64u << 10)
#define CHUNKS (BS / 4096)

static struct object_id oid_of(unsigned i)
{
	return (struct object_id){ 5, 77, i, 0, OBJECT_SHARD_WHOLE };
}

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/* --- the worker ------------------------------------------------------------- */

struct work_op {
	struct store_req req;
	uint64_t id;
	uint8_t *buf;
	bool used;
};

static unsigned work_inflight;
static uint64_t work_done;

static void work_done_cb(struct store_req *req, int res)
{
	struct work_op *w = (struct work_op *)req;
	if (res == 0)
		dprintf(1, "A %" PRIu64 "\n", w->id);
	else
		dprintf(1, "F %" PRIu64 " %d\n", w->id, -res);
	free(w->buf);
	w->buf = NULL;
	w->used = false;
	work_inflight--;
	work_done++;
}

static int run_worker(const char *device, uint64_t seed, uint64_t ops)
{
	struct io_loop *loop;
	struct store *s;
	struct store_params p;
	char why[256];
	if (io_loop_create_uring(NULL, &loop))
		return 3;
	store_params_default(&p);
	if (store_open(loop, device, &p, &s, why, sizeof(why))) {
		fprintf(stderr, "worker: open: %s\n", why);
		return 3;
	}
	struct work_op slots[QD];
	memset(slots, 0, sizeof(slots));
	uint64_t rng = seed;
	for (uint64_t id = 0; id < ops;) {
		unsigned limit = 1 + (unsigned)(splitmix(&rng) % QD);
		while (work_inflight >= limit)
			io_loop_run_once(loop, -1);
		struct work_op *w = NULL;
		for (unsigned i = 0; i < QD && !w; i++)
			if (!slots[i].used)
				w = &slots[i];
		unsigned o = (unsigned)(splitmix(&rng) % NOBJ);
		uint64_t kind = splitmix(&rng) % 100;
		bool del = kind < 12;
		uint32_t first = 0, n = CHUNKS;
		if (!del && kind >= 35) {
			first = (uint32_t)(splitmix(&rng) % CHUNKS);
			n = 1 + (uint32_t)(splitmix(&rng) % 4);
			if (first + n > CHUNKS)
				n = CHUNKS - first;
		}
		uint64_t tag = del ? 0 : (seed << 20) + id + 1;
		memset(&w->req, 0, sizeof(w->req));
		w->id = id;
		w->used = true;
		w->req.oid = oid_of(o);
		w->req.op = del ? STORE_OP_DELETE : STORE_OP_WRITE;
		w->req.done = work_done_cb;
		if (!del) {
			w->buf = aligned_buf(n * 4096);
			pattern_fill(w->buf, n * 4096, tag, first);
			w->req.offset = first * 4096;
			w->req.len = n * 4096;
			w->req.buf = w->buf;
		}
		/* Reported before it can possibly be acknowledged. */
		dprintf(1, "S %" PRIu64 " %u %d %u %u %" PRIu64 "\n", id, o, del, first, n, tag);
		work_inflight++;
		store_submit(s, &w->req);
		id++;
	}
	while (work_inflight)
		io_loop_run_once(loop, -1);
	store_close(s);
	io_loop_destroy(loop);
	return 0;
}

/* --- the driver --------------------------------------------------------------- */

struct driver {
	const char *device, *osd, *self;
	struct model_obj *objs;
	unsigned *op_obj, *op_idx; /* by worker op id */
	uint64_t ops;
	uint64_t acked_total, crash_point_kills, outside_kills, clean_exits;
};

static int parse_line(struct driver *d, char *line)
{
	uint64_t id, tag;
	unsigned o, first, n;
	int del, err;
	if (sscanf(line, "S %" SCNu64 " %u %d %u %u %" SCNu64, &id, &o, &del, &first, &n, &tag) == 6) {
		if (id >= d->ops || o >= NOBJ)
			return -1;
		int idx = model_add(&d->objs[o], del, first, n, tag);
		if (idx < 0)
			return -1;
		d->op_obj[id] = o;
		d->op_idx[id] = (unsigned)idx;
	} else if (sscanf(line, "A %" SCNu64, &id) == 1 && id < d->ops) {
		d->objs[d->op_obj[id]].ops[d->op_idx[id]].state = MODEL_ACKED;
		d->acked_total++;
	} else if (sscanf(line, "F %" SCNu64 " %d", &id, &err) == 2 && id < d->ops) {
		if (err != ENOENT && err != ENOSPC) {
			fprintf(stderr, "driver: op %" PRIu64 " failed: %s\n", id, strerror(err));
			return -1;
		}
		d->objs[d->op_obj[id]].ops[d->op_idx[id]].state = MODEL_FAILED;
	} else {
		return -1;
	}
	return 0;
}

/* Starts a worker, follows its reports until it dies or ends. Returns how
 * it ended as a wait status. */
static int run_once(struct driver *d, uint64_t seed, long crash_at, long kill_ms)
{
	int pipefd[2];
	if (pipe(pipefd))
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(pipefd[1], 1);
		close(pipefd[0]);
		close(pipefd[1]);
		char env[64], seed_s[32], ops_s[32];
		if (crash_at > 0) {
			snprintf(env, sizeof(env), "%ld", crash_at);
			setenv("BASALT_STORE_CRASH_AT", env, 1);
		}
		setenv("BASALT_LOG_LEVEL", "error", 1);
		snprintf(seed_s, sizeof(seed_s), "%" PRIu64, seed);
		snprintf(ops_s, sizeof(ops_s), "%" PRIu64, d->ops);
		execl(d->self, d->self, "run", "--device", d->device, "--seed", seed_s,
		      "--ops", ops_s, (char *)NULL);
		_exit(127);
	}
	close(pipefd[1]);
	FILE *in = fdopen(pipefd[0], "r");
	char line[256];
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	bool killed = false;
	int bad = 0;
	if (kill_ms > 0)
		fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
	for (;;) {
		if (kill_ms > 0 && !killed) {
			struct timespec t;
			clock_gettime(CLOCK_MONOTONIC, &t);
			long ms = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
			if (ms >= kill_ms) {
				kill(pid, SIGKILL);
				killed = true;
				fcntl(pipefd[0], F_SETFL, 0);
			}
		}
		if (!fgets(line, sizeof(line), in)) {
			if (kill_ms > 0 && !killed && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				clearerr(in);
				usleep(500);
				continue;
			}
			break;
		}
		size_t len = strlen(line);
		if (len == 0 || line[len - 1] != '\n')
			break; /* a line cut short by the kill */
		if (parse_line(d, line) && !bad) {
			fprintf(stderr, "driver: bad report: %s", line);
			bad = 1;
		}
	}
	fclose(in);
	int status;
	waitpid(pid, &status, 0);
	return bad ? -1 : status;
}

/* Runs basalt-osd --fsck; its report is shown only when it is not clean. */
static int fsck_clean(struct driver *d)
{
	char out[] = "/tmp/basalt-fsck-XXXXXX";
	int fd = mkstemp(out);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		execl(d->osd, d->osd, "--fsck", "--device", d->device, (char *)NULL);
		_exit(127);
	}
	int status;
	waitpid(pid, &status, 0);
	int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
	if (rc) {
		char buf[4096];
		ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
		if (n > 0) {
			buf[n] = '\0';
			fprintf(stderr, "driver: fsck said:\n%s", buf);
		}
	}
	close(fd);
	unlink(out);
	return rc;
}

static int verify_all(struct driver *d, unsigned *checked)
{
	struct io_loop *loop;
	struct store *s;
	struct store_params p;
	char why[512];
	int failures = 0;
	if (io_loop_create_uring(NULL, &loop))
		return -1;
	store_params_default(&p);
	if (store_open(loop, d->device, &p, &s, why, sizeof(why))) {
		fprintf(stderr, "driver: reopen: %s\n", why);
		io_loop_destroy(loop);
		return -1;
	}
	uint8_t *buf = aligned_buf(BS);
	for (unsigned i = 0; i < NOBJ; i++) {
		int rc = store_sync_op(s, loop, NULL, STORE_OP_READ, oid_of(i), 0, BS, buf, NULL);
		if (rc != 0 && rc != -ENOENT) {
			fprintf(stderr, "driver: object %u reads back %d\n", i, rc);
			failures++;
		} else if (model_check(&d->objs[i], CHUNKS, rc == 0 ? buf : NULL, why, sizeof(why))) {
			fprintf(stderr, "driver: object %u: %s\n", i, why);
			failures++;
		}
	}
	*checked = NOBJ;
	free(buf);
	store_close(s);
	io_loop_destroy(loop);
	return failures ? -1 : 0;
}

static int run_driver(struct driver *d, unsigned runs, uint64_t seed)
{
	struct io_loop *loop;
	char why[256];
	if (io_loop_create_uring(NULL, &loop))
		return 2;
	unlink(d->device);
	struct store_mkfs_params mp = { .size = 64u << 20, .block_size = BS,
					.journal_size = 4u << 20 };
	if (store_mkfs(loop, d->device, &mp, why, sizeof(why))) {
		fprintf(stderr, "driver: mkfs: %s\n", why);
		return 2;
	}
	io_loop_destroy(loop);
	d->objs = calloc(NOBJ, sizeof(*d->objs));
	d->op_obj = calloc(d->ops, sizeof(unsigned));
	d->op_idx = calloc(d->ops, sizeof(unsigned));
	uint64_t rng = seed;
	for (unsigned run = 0; run < runs; run++) {
		uint64_t run_seed = seed * 1000 + run;
		long crash_at = 0, kill_ms = 0;
		if (splitmix(&rng) % 10 < 7)
			crash_at = 1 + (long)(splitmix(&rng) % 900);
		else
			kill_ms = 2 + (long)(splitmix(&rng) % 150);
		uint64_t acked0 = d->acked_total;
		int status = run_once(d, run_seed, crash_at, kill_ms);
		const char *how;
		if (status < 0) {
			return 1;
		} else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
			how = crash_at ? "killed at a crash point" : "killed from outside";
			if (crash_at)
				d->crash_point_kills++;
			else
				d->outside_kills++;
		} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			how = "finished";
			d->clean_exits++;
		} else {
			fprintf(stderr, "driver: worker ended with status %d\n", status);
			return 1;
		}
		int fsck = fsck_clean(d);
		unsigned checked = 0;
		int ok = fsck == 0 ? verify_all(d, &checked) : -1;
		printf("run %2u (seed %" PRIu64 "): %s after %" PRIu64 " acks; fsck %s; %s\n",
		       run, run_seed, how, d->acked_total - acked0,
		       fsck == 0 ? "clean" : "NOT CLEAN",
		       ok == 0 ? "every acknowledged write reads back" : "VERIFY FAILED");
		fflush(stdout);
		if (fsck != 0 || ok != 0) {
			fprintf(stderr, "driver: failed on run %u; replay with --seed %" PRIu64
					" --runs %u\n", run, seed, run + 1);
			return 1;
		}
	}
	unlink(d->device);
	printf("%u runs: %" PRIu64 " killed at crash points, %" PRIu64
	       " killed from outside, %" PRIu64 " finished; %" PRIu64 " writes acknowledged\n",
	       runs, d->crash_point_kills, d->outside_kills, d->clean_exits, d->acked_total);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: store_crash_tool drive|run --device PATH ...\n");
		return 2;
	}
	struct driver d = { .ops = 1500, .self = argv[0] };
	unsigned runs = 50;
	uint64_t seed = 1;
	static const struct option opts[] = {
		{ "device", required_argument, NULL, 'd' },
		{ "osd", required_argument, NULL, 'o' },
		{ "runs", required_argument, NULL, 'r' },
		{ "ops", required_argument, NULL, 'n' },
		{ "seed", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	optind = 2;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': d.device = optarg; break;
		case 'o': d.osd = optarg; break;
		case 'r': runs = (unsigned)atoi(optarg); break;
		case 'n': d.ops = strtoull(optarg, NULL, 10); break;
		case 's': seed = strtoull(optarg, NULL, 10); break;
		default: return 2;
		}
	}
	if (!d.device)
		return 2;
	log_init(strcmp(argv[1], "run") == 0 ? "crash-worker" : "crash-driver");
	log_set_level(LOG_LEVEL_ERROR);
	if (strcmp(argv[1], "run") == 0)
		return run_worker(d.device, seed, d.ops);
	if (strcmp(argv[1], "drive") == 0 && d.osd)
		return run_driver(&d, runs, seed);
	fprintf(stderr, "usage: store_crash_tool drive --device PATH --osd BASALT-OSD\n");
	return 2;
}
