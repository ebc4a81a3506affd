/* The backend contract behind struct io_loop. Only common/io/ sees this.
 * A backend queues ops in submit(), and later, from wait(), reports each
 * finished op with io_loop_complete(). It must never call done() from
 * submit() or cancel(). */
#ifndef BASALT_COMMON_IO_LOOP_INT_H
#define BASALT_COMMON_IO_LOOP_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "loop.h"

struct io_backend_ops {
	const char *name;
	/* network */
	int (*listen)(void *self, const char *host, uint16_t port, int *fd,
		      uint16_t *port_out);
	int (*socket)(void *self, int family, int *fd);
	/* disk */
	int (*open)(void *self, const char *path, int flags, mode_t mode,
		    int *fd);
	int (*close)(void *self, int fd);
	int (*file_size)(void *self, int fd, uint64_t *size);
	/* Optional: registers a buffer; returns its index or -errno. */
	int (*register_buffer)(void *self, void *buf, size_t len);
	void (*unregister_buffer)(void *self, int index);
	/* asynchronous operations on either */
	void (*submit)(void *self, struct io_op *op);
	void (*cancel)(void *self, struct io_op *op);
	/* Flushes submissions, waits up to TIMEOUT_NS (< 0: no limit) for at
	 * least one completion, reports all that are ready. Returns how many
	 * it reported, or -errno. */
	int (*wait)(void *self, int64_t timeout_ns);
	/* Interrupts wait() from another thread. */
	void (*wake)(void *self);
	/* Optional: runs until DONE(ARG); for backends whose time does not
	 * pass inside wait() (the simulation). 0 or -errno. */
	int (*drive)(void *self, bool (*done)(void *arg), void *arg);
	/* clock and randomness */
	uint64_t (*now_ns)(void *self);
	/* Optional: the wall clock in ms since the epoch (default: the
	 * system's; the simulation derives it from virtual time). */
	uint64_t (*wall_ms)(void *self);
	uint64_t (*random)(void *self);
	void (*destroy)(void *self);
};

#define IO_TIMER_HEAP_MAX (1u << 22)

struct io_loop {
	const struct io_backend_ops *ops;
	void *self;

	struct io_timer **heap; /* min-heap on deadline_ns */
	size_t heap_len, heap_cap;

	pthread_mutex_t post_lock;
	struct io_post *post_head, *post_tail;
	atomic_bool posted;
	atomic_bool stopping;

	unsigned in_flight;
	unsigned chain_len; /* ops of the io_link chain being submitted */
	/* Registered buffers, for the range check of io_*_fixed. */
	struct iovec registered[4];
};

/* Creates a loop over a backend; takes ownership of SELF (destroyed with
 * the loop). */
int io_loop_create(const struct io_backend_ops *ops, void *self,
		   struct io_loop **out);
/* Called by backends for every finished op. */
void io_loop_complete(struct io_loop *loop, struct io_op *op, int res);
/* Deadline of the earliest armed timer, or UINT64_MAX. */
uint64_t io_loop_next_deadline(const struct io_loop *loop);

/* Backends wrapping another (fault.c) reach the inner one through these. */
const struct io_backend_ops *io_loop_backend_ops(const struct io_loop *loop);
void *io_loop_backend_self(const struct io_loop *loop);
void io_loop_set_backend(struct io_loop *loop, const struct io_backend_ops *ops,
			 void *self);

#endif
