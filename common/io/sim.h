/* A deterministic world of simulated hosts for tests: each host runs an
 * io_loop whose network, disks and clock are in memory and driven from one
 * seed. Everything happens on the calling thread; the same seed replays
 * the same run exactly.
 *
 * Network: TCP-like streams with random latency; partitions black-hole
 * existing connections and time out new ones; optional random resets.
 * Disks: files per host; fsync makes writes durable; linked ops (io_link)
 * run one after the other, a failed one cancelling the rest; io_sim_power_fail()
 * keeps a random subset of each unsynced write's sectors, as a real disk
 * may. Clock: virtual, advanced only when every host is idle. */
#ifndef BASALT_COMMON_IO_SIM_H
#define BASALT_COMMON_IO_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include "loop.h"

struct io_sim_world;

int io_sim_world_create(uint64_t seed, struct io_sim_world **out /* out */);
/* Every loop of the world must be destroyed first. */
void io_sim_world_destroy(struct io_sim_world *w);

/* A loop for host HOST (a dotted IPv4 address such as "10.0.0.1").
 * Destroying it is a process exit: its sockets close (peers see EOF), its
 * pending operations are dropped, and its files keep what was written. */
int io_loop_create_sim(struct io_sim_world *w, const char *host,
		       struct io_loop **out /* out */);

uint64_t io_sim_now_ns(const struct io_sim_world *w);
uint64_t io_sim_random(struct io_sim_world *w);

/* One-way network latency, uniform in [MIN, MAX] (default 50-200 us). */
void io_sim_set_latency(struct io_sim_world *w, uint64_t min_ns,
			uint64_t max_ns);
/* Each send resets its connection with probability PER_MILLION/1e6. */
void io_sim_set_reset_rate(struct io_sim_world *w, uint32_t per_million);
/* Cuts (or heals) the network between two hosts. */
void io_sim_cut(struct io_sim_world *w, const char *host_a,
		const char *host_b, bool cut);
/* Power loss on HOST: unsynced writes are partly lost (see above). Its
 * loop must have been destroyed already. */
void io_sim_power_fail(struct io_sim_world *w, const char *host);

/* Faults of HOST's file PATH, as failing disks have them (self-healing
 * tests): CORRUPT flips a bit in each of LEN bytes at OFFSET (what reads
 * return, and what a power loss keeps); BAD_SECTOR makes reads touching
 * those bytes fail with -EIO until a write covers them (a latent sector
 * error, remapped when written); LOSE_WRITE drops the next write touching
 * them while answering it done (a lost write); FAIL_WRITE makes that next
 * write fail with -EIO, writing nothing; SHORT_WRITE makes it write only
 * its first half, rounded down to a sector, and answer that many bytes.
 * -ENOENT: no such file. */
enum io_sim_disk_fault {
	IO_SIM_CORRUPT = 1,
	IO_SIM_BAD_SECTOR,
	IO_SIM_LOSE_WRITE,
	IO_SIM_FAIL_WRITE,
	IO_SIM_SHORT_WRITE,
};
int io_sim_disk_fault(struct io_sim_world *w, const char *host, const char *path,
		      enum io_sim_disk_fault kind, uint64_t offset, size_t len);
/* Forgets HOST's lost, failing and short writes still waiting for a write. */
void io_sim_disk_lost_writes_disarm(struct io_sim_world *w, const char *host);

/* CHECK(ARG) runs after every step of io_sim_run (each round of every
 * host's ready work): a state machine's invariants, asserted (NULL: none). */
void io_sim_set_check(struct io_sim_world *w, void (*check)(void *arg), void *arg);

/* Runs every host until DONE(ARG) is true (0), virtual time passes
 * UNTIL_NS (-ETIMEDOUT), or nothing is left that could ever happen
 * (-EDEADLK). DONE may be NULL. */
int io_sim_run(struct io_sim_world *w, uint64_t until_ns,
	       bool (*done)(void *arg), void *arg);

#endif
