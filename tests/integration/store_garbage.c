/* Immediate GC, byte for byte: writes 1 GiB of objects, overwrites all of
 * it five times with mixed small and whole-block writes, deletes half,
 * overwrites the rest, deletes everything. After every acknowledged batch
 * of operations the space the store uses must be exactly
 *     live objects x block size + journal + metadata
 * (small writes never take a second block; a redirect frees the old one the
 * moment it is durable; a delete frees at once), and `basalt-osd --fsck
 * --json` must report the same figure after each phase.
 *
 *   store_garbage --device PATH --osd BASALT-OSD [--gib 1] */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "../unit/osd/store_test_util.h"

#define QD 32

struct gc {
	struct io_loop *loop;
	struct store *s;
	const char *device, *osd;
	uint32_t bs;
	uint64_t objects;
	bool *live;
	uint64_t live_count;
	uint64_t overhead; /* journal + metadata */
	unsigned inflight;
	int errors;
	uint64_t rng;
	uint64_t checks;
};

struct gc_op {
	struct store_req req;
	struct gc *g;
	uint8_t *buf;
	bool used;
};

static uint64_t gc_rand(struct gc *g)
{
	g->rng ^= g->rng << 13;
	g->rng ^= g->rng >> 7;
	g->rng ^= g->rng << 17;
	return g->rng;
}

static void gc_done(struct store_req *req, int res)
{
	struct gc_op *op = (struct gc_op *)req;
	if (res) {
		fprintf(stderr, "store_garbage: operation failed: %s\n", strerror(-res));
		op->g->errors++;
	}
	op->used = false;
	op->g->inflight--;
}

/* The exact expectation, checked against the store's own accounting.
 * Whole-block writes still in flight hold a fresh block each until they
 * are acknowledged (then the old one is freed): with ops in flight, free
 * may be short by at most that many. */
static void gc_check(struct gc *g, const char *when)
{
	struct store_usage u;
	store_usage(g->s, &u);
	uint64_t want = g->live_count * g->bs + g->overhead;
	uint64_t reserved = u.blocks_total - u.blocks_free - u.blocks_used;
	g->checks++;
	if (u.blocks_used != g->live_count || u.used_bytes != want ||
	    reserved > g->inflight) {
		fprintf(stderr, "store_garbage: %s: used %" PRIu64 " bytes (%" PRIu64
				" blocks), want %" PRIu64 " (%" PRIu64 " blocks)\n",
			when, u.used_bytes, u.blocks_used, want, g->live_count);
		g->errors++;
	}
}

static struct gc_op *gc_slot(struct gc *g, struct gc_op *ops)
{
	while (g->inflight == QD)
		io_loop_run_once(g->loop, -1);
	for (unsigned i = 0; i < QD; i++)
		if (!ops[i].used)
			return &ops[i];
	return NULL;
}

static void gc_submit(struct gc *g, struct gc_op *op, enum store_op kind,
		      uint64_t index, uint32_t off, uint32_t len, uint64_t tag)
{
	memset(&op->req, 0, sizeof(op->req));
	op->g = g;
	op->used = true;
	op->req.op = kind;
	op->req.oid = (struct object_id){ 9, 1, index, 0, OBJECT_SHARD_WHOLE };
	op->req.offset = off;
	op->req.len = len;
	op->req.buf = op->buf;
	op->req.done = gc_done;
	if (kind == STORE_OP_WRITE)
		pattern_fill(op->buf, len, tag, off / 4096);
	g->inflight++;
	store_submit(g->s, &op->req);
}

static void gc_drain(struct gc *g, const char *when)
{
	while (g->inflight)
		io_loop_run_once(g->loop, -1);
	gc_check(g, when);
}

/* One pass over the live objects: whole-block writes for some, one to
 * four small writes for others. Space is checked after every 512 ops. */
static void gc_overwrite(struct gc *g, struct gc_op *ops, unsigned round)
{
	uint64_t n = 0;
	for (uint64_t i = 0; i < g->objects; i++) {
		if (!g->live[i])
			continue;
		if (gc_rand(g) % 2) {
			gc_submit(g, gc_slot(g, ops), STORE_OP_WRITE, i, 0, g->bs,
				  round * g->objects + i + 1);
		} else {
			unsigned k = 1 + (unsigned)(gc_rand(g) % 4);
			for (unsigned j = 0; j < k; j++) {
				uint32_t chunks = g->bs / 4096;
				uint32_t first = (uint32_t)(gc_rand(g) % chunks);
				uint32_t len = 1 + (uint32_t)(gc_rand(g) % 4);
				if (first + len > chunks)
					len = chunks - first;
				gc_submit(g, gc_slot(g, ops), STORE_OP_WRITE, i, first * 4096,
					  len * 4096, round * g->objects + i + 1);
			}
		}
		if (++n % 512 == 0)
			gc_check(g, "during an overwrite pass");
	}
}

static void gc_delete(struct gc *g, struct gc_op *ops, bool (*pick)(uint64_t))
{
	for (uint64_t i = 0; i < g->objects; i++) {
		if (!g->live[i] || !pick(i))
			continue;
		gc_submit(g, gc_slot(g, ops), STORE_OP_DELETE, i, 0, 0, 0);
		g->live[i] = false;
		g->live_count--;
		/* A delete is counted once acknowledged: drain first. */
		if (g->live_count % 256 == 0)
			gc_drain(g, "while deleting");
	}
}

static bool pick_even(uint64_t i) { return i % 2 == 0; }
static bool pick_all(uint64_t i) { (void)i; return true; }

/* fsck --json must say clean and report the same used bytes. */
static void gc_fsck(struct gc *g, const char *when)
{
	store_close(g->s);
	g->s = NULL;
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "%s --fsck --json --device %s", g->osd, g->device);
	FILE *p = popen(cmd, "r");
	char out[4096] = "";
	size_t n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = '\0';
	int status = pclose(p);
	uint64_t want = g->live_count * g->bs + g->overhead;
	char expect[64];
	snprintf(expect, sizeof(expect), "\"used_bytes\": %" PRIu64 ",", want);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
	    !strstr(out, "\"clean\": true") || !strstr(out, expect)) {
		fprintf(stderr, "store_garbage: fsck %s: expected %s in:\n%s", when, expect, out);
		g->errors++;
	}
	printf("%-34s live %6" PRIu64 " objects, used %" PRIu64 " bytes = %" PRIu64
	       " live + %" PRIu64 " journal and metadata; fsck agrees\n",
	       when, g->live_count, want, g->live_count * g->bs, g->overhead);
	struct store_params sp;
	char why[256];
	store_params_default(&sp);
	if (store_open(g->loop, g->device, &sp, &g->s, why, sizeof(why))) {
		fprintf(stderr, "store_garbage: reopen: %s\n", why);
		exit(1);
	}
}

int main(int argc, char **argv)
{
	struct gc g = { .rng = 88172645463325252ULL };
	uint64_t gib = 1;
	static const struct option opts[] = {
		{ "device", required_argument, NULL, 'd' },
		{ "osd", required_argument, NULL, 'o' },
		{ "gib", required_argument, NULL, 'g' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'd') g.device = optarg;
		else if (c == 'o') g.osd = optarg;
		else if (c == 'g') gib = strtoull(optarg, NULL, 10);
		else return 2;
	}
	if (!g.device || !g.osd)
		return 2;
	log_set_level(LOG_LEVEL_WARN);
	if (io_loop_create_uring(NULL, &g.loop))
		return 1;
	char why[256];
	unlink(g.device);
	struct store_mkfs_params mp = { .size = (gib * 2 + 1) << 30 };
	if (store_mkfs(g.loop, g.device, &mp, why, sizeof(why))) {
		fprintf(stderr, "store_garbage: mkfs: %s\n", why);
		return 1;
	}
	struct store_params sp;
	store_params_default(&sp);
	if (store_open(g.loop, g.device, &sp, &g.s, why, sizeof(why))) {
		fprintf(stderr, "store_garbage: open: %s\n", why);
		return 1;
	}
	g.bs = store_block_size(g.s);
	g.objects = (gib << 30) / g.bs;
	g.live = calloc(g.objects, sizeof(bool));
	struct store_usage u;
	store_usage(g.s, &u);
	g.overhead = u.journal_bytes + u.meta_bytes;
	struct gc_op ops[QD];
	memset(ops, 0, sizeof(ops));
	for (unsigned i = 0; i < QD; i++)
		ops[i].buf = aligned_buf(g.bs);
	gc_check(&g, "empty");

	for (uint64_t i = 0; i < g.objects; i++) {
		gc_submit(&g, gc_slot(&g, ops), STORE_OP_WRITE, i, 0, g.bs, i + 1);
		g.live[i] = true;
		g.live_count++;
		if (i % 1024 == 1023)
			gc_drain(&g, "while writing");
	}
	gc_drain(&g, "after writing");
	gc_fsck(&g, "written:");
	for (unsigned round = 1; round <= 5; round++) {
		gc_overwrite(&g, ops, round);
		gc_drain(&g, "after an overwrite pass");
	}
	gc_fsck(&g, "overwritten 5 times:");
	gc_delete(&g, ops, pick_even);
	gc_drain(&g, "after deleting half");
	gc_fsck(&g, "half deleted:");
	gc_overwrite(&g, ops, 6);
	gc_drain(&g, "after overwriting the rest");
	gc_fsck(&g, "rest overwritten:");
	gc_delete(&g, ops, pick_all);
	gc_drain(&g, "after deleting everything");
	gc_fsck(&g, "all deleted:");
	store_close(g.s);
	io_loop_destroy(g.loop);
	unlink(g.device);
	for (unsigned i = 0; i < QD; i++)
		free(ops[i].buf);
	printf("%" PRIu64 " space checks, %d errors\n", g.checks, g.errors);
	return g.errors ? 1 : 0;
}
