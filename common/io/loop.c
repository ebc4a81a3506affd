/* Backend-independent half of the event loop: op bookkeeping, the timer
 * heap, cross-thread posts and the run loop. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../assert.h"
#include "loop_int.h"

int io_loop_create(const struct io_backend_ops *ops, void *self,
		   struct io_loop **out)
{
	struct io_loop *loop = calloc(1, sizeof(*loop));
	if (!loop) {
		ops->destroy(self);
		return -ENOMEM;
	}
	loop->ops = ops;
	loop->self = self;
	pthread_mutex_init(&loop->post_lock, NULL);
	atomic_init(&loop->posted, false);
	atomic_init(&loop->stopping, false);
	*out = loop;
	return 0;
}

void io_loop_destroy(struct io_loop *loop)
{
	if (!loop)
		return;
	loop->ops->destroy(loop->self);
	pthread_mutex_destroy(&loop->post_lock);
	free(loop->heap);
	free(loop);
}

const char *io_loop_backend_name(const struct io_loop *loop)
{
	return loop->ops->name;
}

const struct io_backend_ops *io_loop_backend_ops(const struct io_loop *loop)
{
	return loop->ops;
}

void *io_loop_backend_self(const struct io_loop *loop)
{
	return loop->self;
}

void io_loop_set_backend(struct io_loop *loop, const struct io_backend_ops *ops,
			 void *self)
{
	loop->ops = ops;
	loop->self = self;
}

/* --- operations ------------------------------------------------------ */

static void io_submit_op(struct io_loop *loop, struct io_op *op,
			 enum io_op_kind kind, int fd)
{
	BASALT_ASSERT(!op->in_flight);
	BASALT_ASSERT(op->done != NULL);
	op->kind = kind;
	op->fd = fd;
	op->in_flight = true;
	loop->in_flight++;
	loop->chain_len = op->link ? loop->chain_len + 1 : 0;
	BASALT_ASSERT(loop->chain_len < IO_LINK_MAX);
	loop->ops->submit(loop->self, op);
}

void io_link(struct io_loop *loop, struct io_op *op)
{
	(void)loop;
	BASALT_ASSERT(!op->in_flight);
	op->link = true;
}

void io_loop_complete(struct io_loop *loop, struct io_op *op, int res)
{
	BASALT_ASSERT(op->in_flight);
	op->in_flight = false;
	op->link = false;
	loop->in_flight--;
	op->done(op, res);
}

void io_accept(struct io_loop *loop, struct io_op *op, int listen_fd)
{
	op->addrlen = sizeof(op->addr);
	io_submit_op(loop, op, IO_OP_ACCEPT, listen_fd);
}

void io_connect(struct io_loop *loop, struct io_op *op, int fd,
		const struct sockaddr *addr, socklen_t addrlen)
{
	BASALT_ASSERT(addrlen <= sizeof(op->addr));
	memcpy(&op->addr, addr, addrlen);
	op->addrlen = addrlen;
	io_submit_op(loop, op, IO_OP_CONNECT, fd);
}

void io_recv(struct io_loop *loop, struct io_op *op, int fd, void *buf,
	     size_t len)
{
	op->buf = buf;
	op->len = len;
	io_submit_op(loop, op, IO_OP_RECV, fd);
}

void io_send(struct io_loop *loop, struct io_op *op, int fd,
	     const struct iovec *iov, int iovcnt)
{
	op->iov = iov;
	op->iovcnt = iovcnt;
	io_submit_op(loop, op, IO_OP_SEND, fd);
}

void io_writev(struct io_loop *loop, struct io_op *op, int fd,
	       const struct iovec *iov, int iovcnt, uint64_t offset,
	       int rw_flags)
{
	op->buf = NULL;
	op->iov = iov;
	op->iovcnt = iovcnt;
	op->offset = offset;
	op->rw_flags = rw_flags;
	io_submit_op(loop, op, IO_OP_WRITE, fd);
}

static int io_fixed_index(const struct io_loop *loop, const void *buf,
			  size_t len, int index)
{
	if (index < 0 || index >= (int)BASALT_ARRAY_SIZE(loop->registered))
		return 0;
	const struct iovec *r = &loop->registered[index];
	if (!r->iov_base)
		return 0;
	const uint8_t *b = buf, *base = r->iov_base;
	return b >= base && b + len <= base + r->iov_len ? index + 1 : 0;
}

static void io_rw_one(struct io_loop *loop, struct io_op *op, int fd,
		      enum io_op_kind kind, void *buf, size_t len,
		      uint64_t offset, int buf_index)
{
	op->buf = buf;
	op->len = len;
	op->iov = NULL;
	op->offset = offset;
	op->rw_flags = 0;
	op->buf_index = buf_index;
	io_submit_op(loop, op, kind, fd);
}

void io_write_fixed(struct io_loop *loop, struct io_op *op, int fd,
		    const void *buf, size_t len, uint64_t offset, int index)
{
	io_rw_one(loop, op, fd, IO_OP_WRITE, (void *)buf, len, offset,
		  io_fixed_index(loop, buf, len, index));
}

void io_read(struct io_loop *loop, struct io_op *op, int fd, void *buf,
	     size_t len, uint64_t offset)
{
	io_rw_one(loop, op, fd, IO_OP_READ, buf, len, offset, 0);
}

void io_write(struct io_loop *loop, struct io_op *op, int fd, const void *buf,
	      size_t len, uint64_t offset)
{
	io_rw_one(loop, op, fd, IO_OP_WRITE, (void *)buf, len, offset, 0);
}

void io_fsync(struct io_loop *loop, struct io_op *op, int fd, bool datasync)
{
	op->datasync = datasync;
	io_submit_op(loop, op, IO_OP_FSYNC, fd);
}

void io_fallocate(struct io_loop *loop, struct io_op *op, int fd, int mode,
		  uint64_t offset, uint64_t len)
{
	op->mode = mode;
	op->offset = offset;
	op->len = len;
	io_submit_op(loop, op, IO_OP_FALLOCATE, fd);
}

void io_cancel(struct io_loop *loop, struct io_op *op)
{
	if (op->in_flight)
		loop->ops->cancel(loop->self, op);
}

int io_listen(struct io_loop *loop, const char *host, uint16_t port,
	      int *fd_out, uint16_t *port_out)
{
	return loop->ops->listen(loop->self, host, port, fd_out, port_out);
}

int io_socket(struct io_loop *loop, int family, int *fd_out)
{
	return loop->ops->socket(loop->self, family, fd_out);
}

int io_close(struct io_loop *loop, int fd)
{
	return loop->ops->close(loop->self, fd);
}

int io_open(struct io_loop *loop, const char *path, int flags, mode_t mode,
	    int *fd_out)
{
	return loop->ops->open(loop->self, path, flags, mode, fd_out);
}

int io_register_buffer(struct io_loop *loop, void *buf, size_t len)
{
	if (!loop->ops->register_buffer)
		return -EOPNOTSUPP;
	int rc = loop->ops->register_buffer(loop->self, buf, len);
	if (rc < 0)
		return rc;
	BASALT_ASSERT(rc < (int)BASALT_ARRAY_SIZE(loop->registered));
	loop->registered[rc] = (struct iovec){ buf, len };
	return rc;
}

void io_unregister_buffer(struct io_loop *loop, int index)
{
	if (index < 0 || !loop->ops->unregister_buffer)
		return;
	loop->ops->unregister_buffer(loop->self, index);
	loop->registered[index] = (struct iovec){ NULL, 0 };
}

int io_file_size(struct io_loop *loop, int fd, uint64_t *size_out)
{
	return loop->ops->file_size(loop->self, fd, size_out);
}

void io_wait_done(struct io_op *op, int res)
{
	struct io_wait *w = op->ctx;
	w->res = res;
	w->done = true;
}

int io_loop_run_until(struct io_loop *loop, bool (*done)(void *arg), void *arg)
{
	if (loop->ops->drive)
		return done(arg) ? 0 : loop->ops->drive(loop->self, done, arg);
	while (!done(arg)) {
		int rc = io_loop_run_once(loop, -1);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static bool io_wait_is_done(void *arg)
{
	return ((struct io_wait *)arg)->done;
}

int io_wait_for(struct io_loop *loop, struct io_wait *wait)
{
	int rc = io_loop_run_until(loop, io_wait_is_done, wait);
	if (rc < 0)
		return rc;
	wait->done = false;
	return wait->res;
}

int io_resolve(const char *host, uint16_t port, struct sockaddr_storage *addr,
	       socklen_t *addrlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL;
	char service[8];
	snprintf(service, sizeof(service), "%u", port);
	int rc = getaddrinfo(host, service, &hints, &res);
	if (rc != 0 || !res)
		return rc == EAI_SYSTEM ? -errno : -EHOSTUNREACH;
	memcpy(addr, res->ai_addr, res->ai_addrlen);
	*addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

bool io_addr_same_host(const char *a, const char *b)
{
	const char *ca = strrchr(a, ':'), *cb = strrchr(b, ':');
	return ca && cb && ca - a == cb - b && !strncmp(a, b, (size_t)(ca - a));
}

const char *io_addr_str(const struct sockaddr_storage *addr, char *buf,
			size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (addr->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)addr;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
		snprintf(buf, len, "%s:%u", host, port);
	} else if (addr->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)addr;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
		snprintf(buf, len, "[%s]:%u", host, port);
	} else {
		snprintf(buf, len, "?");
	}
	return buf;
}

/* --- clock and randomness -------------------------------------------- */

uint64_t io_now_ns(struct io_loop *loop)
{
	return loop->ops->now_ns(loop->self);
}

uint64_t io_wall_ms(struct io_loop *loop)
{
	if (loop->ops->wall_ms)
		return loop->ops->wall_ms(loop->self);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t io_random(struct io_loop *loop)
{
	return loop->ops->random(loop->self);
}

/* --- timers: a binary min-heap of armed timers ------------------------ */

static void heap_set(struct io_loop *loop, size_t i, struct io_timer *t)
{
	loop->heap[i] = t;
	t->heap_index = i;
}

static void heap_sift_up(struct io_loop *loop, size_t i)
{
	struct io_timer *t = loop->heap[i];
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (loop->heap[parent]->deadline_ns <= t->deadline_ns)
			break;
		heap_set(loop, i, loop->heap[parent]);
		i = parent;
	}
	heap_set(loop, i, t);
}

static void heap_sift_down(struct io_loop *loop, size_t i)
{
	struct io_timer *t = loop->heap[i];
	for (;;) {
		size_t child = 2 * i + 1;
		if (child >= loop->heap_len)
			break;
		if (child + 1 < loop->heap_len &&
		    loop->heap[child + 1]->deadline_ns <
			    loop->heap[child]->deadline_ns)
			child++;
		if (t->deadline_ns <= loop->heap[child]->deadline_ns)
			break;
		heap_set(loop, i, loop->heap[child]);
		i = child;
	}
	heap_set(loop, i, t);
}

static void heap_remove(struct io_loop *loop, size_t i)
{
	struct io_timer *removed = loop->heap[i];
	loop->heap_len--;
	if (i != loop->heap_len) {
		heap_set(loop, i, loop->heap[loop->heap_len]);
		heap_sift_down(loop, i);
		heap_sift_up(loop, loop->heap[i]->heap_index);
	}
	removed->heap_index = (size_t)-1;
}

void io_timer_init(struct io_timer *timer, io_timer_fn fire, void *ctx)
{
	timer->fire = fire;
	timer->ctx = ctx;
	timer->deadline_ns = 0;
	timer->heap_index = (size_t)-1;
}

void io_timer_arm(struct io_loop *loop, struct io_timer *timer,
		  uint64_t delay_ns)
{
	if (io_timer_armed(timer))
		heap_remove(loop, timer->heap_index);
	if (loop->heap_len == loop->heap_cap) {
		size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
		BASALT_ASSERT(cap <= IO_TIMER_HEAP_MAX);
		struct io_timer **heap = realloc(loop->heap, cap * sizeof(*heap));
		BASALT_ASSERT(heap != NULL);
		loop->heap = heap;
		loop->heap_cap = cap;
	}
	timer->deadline_ns = io_now_ns(loop) + delay_ns;
	heap_set(loop, loop->heap_len++, timer);
	heap_sift_up(loop, timer->heap_index);
}

void io_timer_disarm(struct io_loop *loop, struct io_timer *timer)
{
	if (io_timer_armed(timer))
		heap_remove(loop, timer->heap_index);
}

uint64_t io_loop_next_deadline(const struct io_loop *loop)
{
	return loop->heap_len ? loop->heap[0]->deadline_ns : UINT64_MAX;
}

static int io_fire_timers(struct io_loop *loop)
{
	int fired = 0;
	uint64_t now = io_now_ns(loop);
	/* Timers armed by a callback for "now" run on the next pass, so a
	 * zero-delay re-arm cannot starve the loop. */
	int budget = (int)loop->heap_len;
	while (loop->heap_len && loop->heap[0]->deadline_ns <= now &&
	       budget-- > 0) {
		struct io_timer *t = loop->heap[0];
		heap_remove(loop, 0);
		t->fire(t);
		fired++;
	}
	return fired;
}

/* --- cross-thread posts ---------------------------------------------- */

void io_loop_post(struct io_loop *loop, struct io_post *post)
{
	post->next = NULL;
	pthread_mutex_lock(&loop->post_lock);
	if (loop->post_tail)
		loop->post_tail->next = post;
	else
		loop->post_head = post;
	loop->post_tail = post;
	pthread_mutex_unlock(&loop->post_lock);
	atomic_store(&loop->posted, true);
	loop->ops->wake(loop->self);
}

static int io_run_posts(struct io_loop *loop)
{
	if (!atomic_exchange(&loop->posted, false))
		return 0;
	pthread_mutex_lock(&loop->post_lock);
	struct io_post *p = loop->post_head;
	loop->post_head = loop->post_tail = NULL;
	pthread_mutex_unlock(&loop->post_lock);
	int n = 0;
	while (p) {
		struct io_post *next = p->next;
		p->fn(p);
		p = next;
		n++;
	}
	return n;
}

/* --- running ---------------------------------------------------------- */

void io_loop_stop(struct io_loop *loop)
{
	atomic_store(&loop->stopping, true);
	loop->ops->wake(loop->self);
}

bool io_loop_stopping(const struct io_loop *loop)
{
	return atomic_load(&loop->stopping);
}

unsigned io_loop_in_flight(const struct io_loop *loop)
{
	return loop->in_flight;
}

int io_loop_run_once(struct io_loop *loop, int64_t max_wait_ns)
{
	int ran = io_fire_timers(loop) + io_run_posts(loop);
	int64_t wait_ns = max_wait_ns;
	if (ran > 0 || atomic_load(&loop->posted) || io_loop_stopping(loop)) {
		wait_ns = 0;
	} else if (loop->heap_len) {
		uint64_t now = io_now_ns(loop);
		uint64_t deadline = loop->heap[0]->deadline_ns;
		int64_t until = deadline > now ? (int64_t)(deadline - now) : 0;
		if (wait_ns < 0 || until < wait_ns)
			wait_ns = until;
	}
	int rc = loop->ops->wait(loop->self, wait_ns);
	if (rc < 0)
		return rc;
	return ran + rc + io_run_posts(loop);
}

int io_loop_run(struct io_loop *loop)
{
	while (!io_loop_stopping(loop)) {
		int rc = io_loop_run_once(loop, -1);
		if (rc < 0)
			return rc;
	}
	atomic_store(&loop->stopping, false);
	return 0;
}
