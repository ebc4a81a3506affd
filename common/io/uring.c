/* The real backend: every operation is an io_uring SQE whose user_data is
 * the struct io_op; submissions are batched until the loop waits. A
 * standing read on an eventfd carries cross-thread wake-ups. */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "../assert.h"
#include "../log.h"
#include "loop_int.h"

struct uring_backend {
	struct io_loop *loop;
	struct io_uring ring;
	bool defer_taskrun;
	int wake_fd;
	struct io_op wake_op;
	uint64_t wake_value;
	uint64_t rng;
	struct iovec fixed[4];
	bool sparse_ok;
	bool in_chain; /* the last SQE prepared carries IOSQE_IO_LINK */
};

static struct io_uring_sqe *uring_sqe(struct uring_backend *b)
{
	struct io_uring_sqe *sqe;
	while (!(sqe = io_uring_get_sqe(&b->ring))) {
		int rc = io_uring_submit(&b->ring);
		BASALT_ASSERT(rc >= 0 || rc == -EBUSY || rc == -EAGAIN);
	}
	return sqe;
}

static void uring_arm_wake(struct uring_backend *b)
{
	struct io_uring_sqe *sqe = uring_sqe(b);
	io_uring_prep_read(sqe, b->wake_fd, &b->wake_value,
			   sizeof(b->wake_value), 0);
	io_uring_sqe_set_data(sqe, &b->wake_op);
}

static void uring_submit(void *self, struct io_op *op)
{
	struct uring_backend *b = self;
	/* A chain must reach the kernel in one submission: one split by a
	 * full ring would run its second half unlinked. */
	while (op->link && !b->in_chain && io_uring_sq_space_left(&b->ring) < IO_LINK_MAX) {
		int rc = io_uring_submit(&b->ring);
		BASALT_ASSERT(rc >= 0 || rc == -EBUSY || rc == -EAGAIN);
	}
	struct io_uring_sqe *sqe = uring_sqe(b);
	switch (op->kind) {
	case IO_OP_ACCEPT:
		io_uring_prep_accept(sqe, op->fd, (struct sockaddr *)&op->addr,
				     &op->addrlen, SOCK_CLOEXEC);
		break;
	case IO_OP_CONNECT:
		io_uring_prep_connect(sqe, op->fd, (struct sockaddr *)&op->addr,
				      op->addrlen);
		break;
	case IO_OP_RECV:
		io_uring_prep_recv(sqe, op->fd, op->buf, op->len, 0);
		break;
	case IO_OP_SEND:
		memset(&op->msg, 0, sizeof(op->msg));
		op->msg.msg_iov = (struct iovec *)op->iov;
		op->msg.msg_iovlen = (size_t)op->iovcnt;
		io_uring_prep_sendmsg(sqe, op->fd, &op->msg, MSG_NOSIGNAL);
		break;
	case IO_OP_READ:
		if (op->buf_index)
			io_uring_prep_read_fixed(sqe, op->fd, op->buf, (unsigned)op->len,
						 op->offset, op->buf_index - 1);
		else if (op->iov)
			io_uring_prep_readv2(sqe, op->fd, op->iov,
					     (unsigned)op->iovcnt, op->offset,
					     op->rw_flags);
		else
			io_uring_prep_read(sqe, op->fd, op->buf,
					   (unsigned)op->len, op->offset);
		break;
	case IO_OP_WRITE:
		if (op->buf_index)
			io_uring_prep_write_fixed(sqe, op->fd, op->buf, (unsigned)op->len,
						  op->offset, op->buf_index - 1);
		else if (op->iov)
			io_uring_prep_writev2(sqe, op->fd, op->iov,
					      (unsigned)op->iovcnt, op->offset,
					      op->rw_flags);
		else
			io_uring_prep_write(sqe, op->fd, op->buf,
					    (unsigned)op->len, op->offset);
		break;
	case IO_OP_FSYNC:
		io_uring_prep_fsync(sqe, op->fd,
				    op->datasync ? IORING_FSYNC_DATASYNC : 0);
		break;
	case IO_OP_FALLOCATE:
		io_uring_prep_fallocate(sqe, op->fd, op->mode, op->offset,
					op->len);
		break;
	default:
		BASALT_ASSERT(!"unknown op kind");
	}
	if (op->link)
		sqe->flags |= IOSQE_IO_LINK;
	b->in_chain = op->link;
	io_uring_sqe_set_data(sqe, op);
}

static void uring_cancel(void *self, struct io_op *op)
{
	struct uring_backend *b = self;
	struct io_uring_sqe *sqe = uring_sqe(b);
	io_uring_prep_cancel(sqe, op, 0);
	io_uring_sqe_set_data(sqe, NULL); /* its own completion is ignored */
}

static void uring_set_nodelay(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int uring_reap(struct uring_backend *b)
{
	int n = 0;
	struct io_uring_cqe *cqe;
	while (io_uring_peek_cqe(&b->ring, &cqe) == 0) {
		struct io_op *op = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		io_uring_cqe_seen(&b->ring, cqe);
		if (!op)
			continue;
		if (op == &b->wake_op) {
			uring_arm_wake(b);
			continue;
		}
		if (op->kind == IO_OP_ACCEPT && res >= 0)
			uring_set_nodelay(res);
		io_loop_complete(b->loop, op, res);
		n++;
	}
	return n;
}

static int uring_wait(void *self, int64_t timeout_ns)
{
	struct uring_backend *b = self;
	struct io_uring_cqe *cqe;
	int rc;
	if (timeout_ns == 0) {
		rc = b->defer_taskrun ? io_uring_submit_and_get_events(&b->ring)
				      : io_uring_submit(&b->ring);
	} else if (timeout_ns < 0) {
		rc = io_uring_submit_and_wait_timeout(&b->ring, &cqe, 1, NULL,
						      NULL);
	} else {
		struct __kernel_timespec ts = {
			.tv_sec = timeout_ns / 1000000000,
			.tv_nsec = timeout_ns % 1000000000,
		};
		rc = io_uring_submit_and_wait_timeout(&b->ring, &cqe, 1, &ts,
						      NULL);
	}
	if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN &&
	    rc != -EBUSY)
		return rc;
	return uring_reap(b);
}

static void uring_wake(void *self)
{
	struct uring_backend *b = self;
	uint64_t one = 1;
	ssize_t unused = write(b->wake_fd, &one, sizeof(one));
	(void)unused;
}

static uint64_t uring_now_ns(void *self)
{
	(void)self;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t uring_random(void *self)
{
	struct uring_backend *b = self;
	/* xorshift64*: fast, and only used for jitter and nonces' salt. */
	b->rng ^= b->rng >> 12;
	b->rng ^= b->rng << 25;
	b->rng ^= b->rng >> 27;
	return b->rng * 0x2545F4914F6CDD1DULL;
}

#define LISTEN_BUSY_TRIES 100 /* of 50 ms */

static int uring_listen(void *self, const char *host, uint16_t port, int *fd,
			uint16_t *port_out)
{
	(void)self;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	int rc = io_resolve(host, port, &addr, &addrlen);
	if (rc)
		return rc;
	int s = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	int one = 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* A process killed a moment ago may still hold the port: the kernel
	 * tears its io_uring down (and closes the sockets it was accepting
	 * on) asynchronously, after the process is gone. So a daemon
	 * restarted at once waits for it a little before it gives up. */
	for (unsigned tries = 0;; tries++) {
		if (bind(s, (struct sockaddr *)&addr, addrlen) == 0 && listen(s, 1024) == 0)
			break;
		rc = -errno;
		if (rc != -EADDRINUSE || tries == LISTEN_BUSY_TRIES) {
			close(s);
			return rc;
		}
		if (tries == 0)
			LOG_WARN("%s:%u is in use; trying again for %u s (a process that "
				 "just exited may still hold it)",
				 host, port, LISTEN_BUSY_TRIES / 20);
		nanosleep(&(struct timespec){ 0, 50 * 1000 * 1000 }, NULL);
	}
	addrlen = sizeof(addr);
	getsockname(s, (struct sockaddr *)&addr, &addrlen);
	if (port_out)
		*port_out = ntohs(((struct sockaddr_in *)&addr)->sin_port);
	*fd = s;
	return 0;
}

static int uring_socket(void *self, int family, int *fd)
{
	(void)self;
	int s = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	uring_set_nodelay(s);
	*fd = s;
	return 0;
}

static int uring_open(void *self, const char *path, int flags, mode_t mode,
		      int *fd)
{
	(void)self;
	int f = open(path, flags | O_CLOEXEC, mode);
	if (f < 0)
		return -errno;
	*fd = f;
	return 0;
}

static int uring_close(void *self, int fd)
{
	(void)self;
	return close(fd) < 0 ? -errno : 0;
}

static int uring_file_size(void *self, int fd, uint64_t *size)
{
	(void)self;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISBLK(st.st_mode))
		return ioctl(fd, BLKGETSIZE64, size) < 0 ? -errno : 0;
	*size = (uint64_t)st.st_size;
	return 0;
}

/* Fixed buffers live in a sparse table registered at creation; a slot is
 * filled and emptied with updates, so indices stay stable. */
static int uring_register_buffer(void *self, void *buf, size_t len)
{
	struct uring_backend *b = self;
	if (!b->sparse_ok)
		return -EOPNOTSUPP;
	for (int i = 0; i < (int)BASALT_ARRAY_SIZE(b->fixed); i++) {
		if (b->fixed[i].iov_base)
			continue;
		struct iovec iov = { buf, len };
		__u64 tag = 0;
		int rc = io_uring_register_buffers_update_tag(&b->ring, (unsigned)i, &iov, &tag, 1);
		if (rc < 0)
			return rc;
		b->fixed[i] = iov;
		return i;
	}
	return -ENOSPC;
}

static void uring_unregister_buffer(void *self, int index)
{
	struct uring_backend *b = self;
	struct iovec none = { NULL, 0 };
	__u64 tag = 0;
	io_uring_register_buffers_update_tag(&b->ring, (unsigned)index, &none, &tag, 1);
	b->fixed[index] = none;
}

static void uring_destroy(void *self)
{
	struct uring_backend *b = self;
	io_uring_queue_exit(&b->ring);
	close(b->wake_fd);
	free(b);
}

static const struct io_backend_ops uring_ops = {
	.name = "io_uring",
	.listen = uring_listen,
	.socket = uring_socket,
	.open = uring_open,
	.close = uring_close,
	.file_size = uring_file_size,
	.register_buffer = uring_register_buffer,
	.unregister_buffer = uring_unregister_buffer,
	.submit = uring_submit,
	.cancel = uring_cancel,
	.wait = uring_wait,
	.wake = uring_wake,
	.now_ns = uring_now_ns,
	.random = uring_random,
	.destroy = uring_destroy,
};

static int uring_queue_init(struct uring_backend *b, unsigned entries)
{
	/* Newest first: single issuer + deferred task work avoids
	 * interrupting the thread for completions it is not waiting for. */
	static const unsigned flag_sets[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_COOP_TASKRUN,
		0,
	};
	int rc = -EINVAL;
	for (size_t i = 0; i < BASALT_ARRAY_SIZE(flag_sets); i++) {
		rc = io_uring_queue_init(entries, &b->ring, flag_sets[i]);
		if (rc == 0) {
			b->defer_taskrun =
				flag_sets[i] & IORING_SETUP_DEFER_TASKRUN;
			return 0;
		}
	}
	return rc;
}

int io_loop_create_uring(const struct io_loop_uring_params *params,
			 struct io_loop **out)
{
	struct uring_backend *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	unsigned entries = params && params->entries ? params->entries : 1024;
	int rc = uring_queue_init(b, entries);
	if (rc) {
		free(b);
		return rc;
	}
	b->wake_fd = eventfd(0, EFD_CLOEXEC);
	if (b->wake_fd < 0) {
		rc = -errno;
		io_uring_queue_exit(&b->ring);
		free(b);
		return rc;
	}
	if (getrandom(&b->rng, sizeof(b->rng), 0) != sizeof(b->rng) || !b->rng)
		b->rng = 0x9E3779B97F4A7C15ULL ^ uring_now_ns(b);
	b->sparse_ok = io_uring_register_buffers_sparse(&b->ring, BASALT_ARRAY_SIZE(b->fixed)) == 0;
	b->wake_op.kind = IO_OP_WAKE;
	rc = io_loop_create(&uring_ops, b, out);
	if (rc)
		return rc;
	b->loop = *out;
	uring_arm_wake(b);
	return 0;
}
