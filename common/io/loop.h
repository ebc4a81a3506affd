/* The event loop: one per thread, completion based. Callers own every
 * struct io_op, io_timer and io_post they pass in (no allocation per
 * operation); an op's done() always runs later from the loop, never from
 * inside the call that submitted it.
 *
 * The disk, network, clock and randomness sit behind a backend ops table
 * (loop_int.h) with three implementations in this folder:
 *   uring.c - the real one: io_uring, sockets, O_DIRECT files;
 *   sim.c   - deterministic in-memory network, disks and clock from a seed;
 *   fault.c - wraps another backend and injects errors and short I/O. */
#ifndef BASALT_COMMON_IO_LOOP_H
#define BASALT_COMMON_IO_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

struct io_loop;
struct io_op;

/* RES is the syscall result: >= 0 on success, -errno on failure,
 * -ECANCELED after io_cancel. */
typedef void (*io_done_fn)(struct io_op *op, int res);

enum io_op_kind {
	IO_OP_NONE,
	IO_OP_ACCEPT,
	IO_OP_CONNECT,
	IO_OP_RECV,
	IO_OP_SEND,
	IO_OP_READ,
	IO_OP_WRITE,
	IO_OP_FSYNC,
	IO_OP_FALLOCATE,
	IO_OP_WAKE, /* internal: the loop's cross-thread wake-up */
};

struct io_op {
	io_done_fn done;
	void *ctx; /* the owner's; never touched by the loop */

	/* Filled by the io_* call that submits the op. */
	enum io_op_kind kind;
	int fd;
	bool in_flight;
	void *buf; /* recv, read/write of one buffer */
	size_t len;
	const struct iovec *iov; /* send, readv/writev */
	int iovcnt;
	uint64_t offset;		    /* file offset */
	struct sockaddr_storage addr; /* connect target, accept peer */
	socklen_t addrlen;
	bool datasync; /* fsync: data only */
	int rw_flags;  /* RWF_* for read/write */
	int buf_index; /* read/write of one buffer: its registered index + 1
			* (io_register_buffer), or 0 */
	int mode;      /* fallocate mode (FALLOC_FL_*) */
	bool link;     /* io_link: the next op submitted waits for this one */

	/* Backend-private. */
	struct msghdr msg;
	struct io_op *backend_next;
	struct io_op *backend_link; /* the op linked after this one */
	uint64_t backend_due_ns;
	uint64_t backend_seq;
};

struct io_timer;
typedef void (*io_timer_fn)(struct io_timer *timer);

struct io_timer {
	io_timer_fn fire;
	void *ctx;
	uint64_t deadline_ns;
	size_t heap_index; /* SIZE_MAX when not armed */
};

struct io_post;
typedef void (*io_post_fn)(struct io_post *post);

/* A function to run on a loop's own thread, posted from any thread. */
struct io_post {
	io_post_fn fn;
	void *ctx;
	struct io_post *next;
};

/* --- creation ------------------------------------------------------- */

struct io_loop_uring_params {
	unsigned entries;	/* submission queue size; 0 = 1024 */
};

/* A real loop on io_uring. Call from the thread that will run it. */
int io_loop_create_uring(const struct io_loop_uring_params *params,
			 struct io_loop **out /* out */);
void io_loop_destroy(struct io_loop *loop);
const char *io_loop_backend_name(const struct io_loop *loop);

/* --- running -------------------------------------------------------- */

/* Runs until io_loop_stop. Returns 0, or -errno if the backend failed. */
int io_loop_run(struct io_loop *loop);
/* Fires due timers and posts, then waits at most MAX_WAIT_NS (0: poll,
 * < 0: until something happens) for completions and runs them. Returns
 * the number of callbacks run, or -errno. */
int io_loop_run_once(struct io_loop *loop, int64_t max_wait_ns);
/* Makes io_loop_run return; thread-safe. */
void io_loop_stop(struct io_loop *loop);
bool io_loop_stopping(const struct io_loop *loop);
/* Number of ops submitted and not yet completed. */
unsigned io_loop_in_flight(const struct io_loop *loop);

/* --- operations ----------------------------------------------------- */

void io_accept(struct io_loop *loop, struct io_op *op, int listen_fd);
void io_connect(struct io_loop *loop, struct io_op *op, int fd,
		const struct sockaddr *addr, socklen_t addrlen);
void io_recv(struct io_loop *loop, struct io_op *op, int fd, void *buf,
	     size_t len);
/* Sends IOV (borrowed until done) with MSG_NOSIGNAL; may send less. */
void io_send(struct io_loop *loop, struct io_op *op, int fd,
	     const struct iovec *iov, int iovcnt);
void io_read(struct io_loop *loop, struct io_op *op, int fd, void *buf,
	     size_t len, uint64_t offset);
void io_write(struct io_loop *loop, struct io_op *op, int fd, const void *buf,
	      size_t len, uint64_t offset);
/* RW_FLAGS takes RWF_DSYNC for a write that is durable when it completes. */
void io_writev(struct io_loop *loop, struct io_op *op, int fd,
	       const struct iovec *iov, int iovcnt, uint64_t offset,
	       int rw_flags);
void io_fsync(struct io_loop *loop, struct io_op *op, int fd, bool datasync);
/* fallocate(2): MODE 0 allocates, FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE
 * frees (a discard for files). */
void io_fallocate(struct io_loop *loop, struct io_op *op, int fd, int mode,
		  uint64_t offset, uint64_t len);
/* Links OP, about to be submitted, to the op submitted right after it on
 * LOOP (io_uring's IOSQE_IO_LINK): that op starts only once OP completed
 * in full -- a read or write of all its bytes, any other op with res >= 0
 * -- and otherwise completes with -ECANCELED without starting. So a write
 * and its fsync go to the kernel in one submission, with no round trip
 * through the loop between them. Call just before OP's io_* call; the
 * next io_* call on LOOP must be its successor. A chain holds at most
 * IO_LINK_MAX ops. The completions of a chain may arrive in any order. */
#define IO_LINK_MAX 4
void io_link(struct io_loop *loop, struct io_op *op);
/* Asks for OP to end early; it completes with -ECANCELED (or its real
 * result if it already finished). No-op when OP is not in flight. */
void io_cancel(struct io_loop *loop, struct io_op *op);

/* Registers BUF (LEN bytes) with the backend so reads and writes inside it
 * skip per-I/O page pinning (io_uring fixed buffers). Returns the index for
 * io_write_fixed, or -errno (plain I/O is then used). */
int io_register_buffer(struct io_loop *loop, void *buf, size_t len);
/* Releases a registration; no fixed I/O on it may be in flight. */
void io_unregister_buffer(struct io_loop *loop, int index);
/* io_write of a range inside registered buffer INDEX (any other range or
 * index falls back to plain I/O). */
void io_write_fixed(struct io_loop *loop, struct io_op *op, int fd,
		    const void *buf, size_t len, uint64_t offset, int index);

/* --- sockets and files (synchronous set-up calls) ------------------- */

/* Listens on HOST:PORT (PORT 0 picks one; *PORT_OUT says which). */
int io_listen(struct io_loop *loop, const char *host, uint16_t port,
	      int *fd_out /* out */, uint16_t *port_out /* out */);
/* A new TCP socket for io_connect. */
int io_socket(struct io_loop *loop, int family, int *fd_out /* out */);
int io_close(struct io_loop *loop, int fd);
int io_open(struct io_loop *loop, const char *path, int flags, mode_t mode,
	    int *fd_out /* out */);
/* Size in bytes of an open file or block device. */
int io_file_size(struct io_loop *loop, int fd, uint64_t *size_out /* out */);
/* Runs LOOP until OP (already submitted, done = io_wait_done, ctx = a
 * struct io_wait) completes; for set-up code such as mkfs and open. */
struct io_wait {
	bool done;
	int res;
};
void io_wait_done(struct io_op *op, int res);
int io_wait_for(struct io_loop *loop, struct io_wait *wait);
/* Runs LOOP until DONE(ARG) is true: set-up and shutdown code that must
 * wait works on every backend this way (a simulated loop advances its
 * virtual clock). 0, or -errno if nothing could ever make DONE true. */
int io_loop_run_until(struct io_loop *loop, bool (*done)(void *arg), void *arg);
/* Resolves a numeric or named HOST into ADDR. 0 or -errno. */
int io_resolve(const char *host, uint16_t port,
	       struct sockaddr_storage *addr /* out */,
	       socklen_t *addrlen /* out */);
/* Formats ADDR as "host:port" into BUF. */
const char *io_addr_str(const struct sockaddr_storage *addr, char *buf,
			size_t len);
/* Whether two "host:port" strings (io_addr_str's) name the same host. */
bool io_addr_same_host(const char *a, const char *b);

/* --- clock, timers, randomness, cross-thread posts ------------------ */

uint64_t io_now_ns(struct io_loop *loop);
/* Milliseconds since the Unix epoch: the system clock, or in a
 * simulation a fixed start plus virtual time (so runs replay). */
uint64_t io_wall_ms(struct io_loop *loop);
uint64_t io_random(struct io_loop *loop);

void io_timer_init(struct io_timer *timer, io_timer_fn fire, void *ctx);
/* (Re)arms TIMER to fire DELAY_NS from now. */
void io_timer_arm(struct io_loop *loop, struct io_timer *timer,
		  uint64_t delay_ns);
void io_timer_disarm(struct io_loop *loop, struct io_timer *timer);
static inline bool io_timer_armed(const struct io_timer *timer)
{
	return timer->heap_index != (size_t)-1;
}

/* Runs POST->fn on LOOP's thread soon; thread-safe. POST is borrowed
 * until fn runs. */
void io_loop_post(struct io_loop *loop, struct io_post *post);

#define IO_MS(x) ((uint64_t)(x) * 1000000ULL)
#define IO_US(x) ((uint64_t)(x) * 1000ULL)
#define IO_SEC(x) ((uint64_t)(x) * 1000000000ULL)

#endif
