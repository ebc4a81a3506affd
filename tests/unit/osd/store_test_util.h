/* Helpers shared by the store's unit tests: synchronous operations on a
 * store over any loop, and recognisable data patterns. */
#ifndef BASALT_TESTS_STORE_TEST_UTIL_H
#define BASALT_TESTS_STORE_TEST_UTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/io/loop.h"
#include "common/io/sim.h"
#include "osd/store.h"

struct sync_req {
	struct store_req req;
	bool done;
	int res;
};

static inline void sync_req_done(struct store_req *req, int res)
{
	struct sync_req *sr = (struct sync_req *)req;
	sr->done = true;
	sr->res = res;
}

/* Submits SR's request (its done callback set here) and runs LOOP (or
 * WORLD when set) until it completes: its result. */
static inline int store_sync_submit(struct store *s, struct io_loop *loop,
				    struct io_sim_world *world, struct sync_req *sr)
{
	sr->done = false;
	sr->req.done = sync_req_done;
	store_submit(s, &sr->req);
	while (!sr->done) {
		if (world)
			io_sim_run(world, io_sim_now_ns(world) + IO_SEC(1), NULL, NULL);
		else
			io_loop_run_once(loop, -1);
	}
	return sr->res;
}

/* Runs one operation to completion on LOOP (or in WORLD when set). */
static inline int store_sync_op(struct store *s, struct io_loop *loop,
				struct io_sim_world *world, enum store_op op,
				struct object_id oid, uint32_t off, uint32_t len,
				void *buf, uint64_t *version)
{
	struct sync_req sr;
	memset(&sr, 0, sizeof(sr));
	sr.req.op = op;
	sr.req.oid = oid;
	sr.req.offset = off;
	sr.req.len = len;
	sr.req.buf = buf;
	sr.req.version = version ? *version : 0;
	int rc = store_sync_submit(s, loop, world, &sr);
	if (version)
		*version = sr.req.version;
	return rc;
}

static inline void checkpoint_done_flag(void *arg)
{
	*(bool *)arg = true;
}

static inline void store_sync_checkpoint(struct store *s, struct io_loop *loop,
					 struct io_sim_world *world)
{
	bool done = false;
	store_checkpoint(s, checkpoint_done_flag, &done);
	while (!done) {
		if (world)
			io_sim_run(world, io_sim_now_ns(world) + IO_SEC(1), NULL, NULL);
		else
			io_loop_run_once(loop, -1);
	}
}

/* Fills each 4 KiB chunk with a pattern naming TAG and the chunk. */
static inline void pattern_fill(uint8_t *buf, uint32_t len, uint64_t tag,
				uint32_t first_chunk)
{
	for (uint32_t c = 0; c < len / 4096; c++) {
		uint64_t x = tag * 0x9E3779B97F4A7C15ULL + (first_chunk + c);
		uint8_t *p = buf + c * 4096;
		memcpy(p, &tag, 8);
		uint32_t chunk = first_chunk + c;
		memcpy(p + 8, &chunk, 4);
		for (uint32_t i = 12; i < 4096; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			p[i] = (uint8_t)x;
		}
	}
}

/* The tag a chunk was written with (0 for a chunk of zeros). */
static inline uint64_t pattern_tag(const uint8_t *chunk)
{
	uint64_t tag;
	memcpy(&tag, chunk, 8);
	return tag;
}

static inline void *aligned_buf(size_t len)
{
	void *p = NULL;
	if (posix_memalign(&p, 4096, len))
		abort();
	memset(p, 0, len);
	return p;
}

#endif
