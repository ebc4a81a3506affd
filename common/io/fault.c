/* The fault-injecting backend (see fault.h): decides at submit time, then
 * either forwards the (possibly shortened) op to the inner backend or
 * parks it on a list that wait() completes with the injected error. */
#include "fault.h"

#include <errno.h>
#include <stdlib.h>

#include "../assert.h"
#include "loop_int.h"

#define FAULT_KINDS (IO_OP_WAKE + 1)

struct fault_rule {
	uint32_t error_per_million;
	int error;
	uint32_t short_per_million;
};

struct io_fault {
	struct io_loop *loop;
	const struct io_backend_ops *inner;
	void *inner_self;
	uint64_t rng;
	struct fault_rule rules[FAULT_KINDS];
	struct io_op *failed_head, *failed_tail;
	uint64_t errors, shorts;
	/* The chain (io_link) being submitted: its head went to the inner
	 * backend (the rest must follow, untouched: the inner one links
	 * them), or was failed here (the rest are cancelled here). */
	enum { FAULT_CHAIN_NONE, FAULT_CHAIN_FORWARDED, FAULT_CHAIN_FAILED } chain;
};

static uint64_t fault_rand(struct io_fault *f)
{
	uint64_t z = (f->rng += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static bool fault_roll(struct io_fault *f, uint32_t per_million)
{
	return per_million && fault_rand(f) % 1000000 < per_million;
}

static void fault_shorten(struct io_fault *f, struct io_op *op)
{
	switch (op->kind) {
	case IO_OP_RECV:
	case IO_OP_READ:
		if (!op->iov && op->len > 1) {
			op->len = 1 + fault_rand(f) % (op->len - 1);
			f->shorts++;
		}
		break;
	case IO_OP_SEND:
		if (op->iovcnt > 1) {
			op->iovcnt = 1;
			f->shorts++;
		}
		break;
	default:
		break;
	}
}

static void fault_park(struct io_fault *f, struct io_op *op, int error)
{
	op->backend_seq = (uint64_t)(int64_t)error;
	op->backend_next = NULL;
	if (f->failed_tail)
		f->failed_tail->backend_next = op;
	else
		f->failed_head = op;
	f->failed_tail = op;
}

static void fault_submit(void *self, struct io_op *op)
{
	struct io_fault *f = self;
	struct fault_rule *r = &f->rules[op->kind];
	int chain = f->chain;
	if (chain == FAULT_CHAIN_FAILED) {
		fault_park(f, op, -ECANCELED);
	} else if (chain == FAULT_CHAIN_NONE && fault_roll(f, r->error_per_million)) {
		f->errors++;
		fault_park(f, op, r->error);
		chain = FAULT_CHAIN_FAILED;
	} else {
		if (chain == FAULT_CHAIN_NONE && !op->link && fault_roll(f, r->short_per_million))
			fault_shorten(f, op);
		f->inner->submit(f->inner_self, op);
		chain = FAULT_CHAIN_FORWARDED;
	}
	f->chain = op->link ? chain : FAULT_CHAIN_NONE;
}

static bool fault_is_parked(struct io_fault *f, struct io_op *op)
{
	for (struct io_op *p = f->failed_head; p; p = p->backend_next)
		if (p == op)
			return true;
	return false;
}

static void fault_cancel(void *self, struct io_op *op)
{
	struct io_fault *f = self;
	if (!fault_is_parked(f, op))
		f->inner->cancel(f->inner_self, op);
}

static int fault_wait(void *self, int64_t timeout_ns)
{
	struct io_fault *f = self;
	int n = 0;
	struct io_op *op = f->failed_head;
	f->failed_head = f->failed_tail = NULL;
	while (op) {
		struct io_op *next = op->backend_next;
		io_loop_complete(f->loop, op, (int)(int64_t)op->backend_seq);
		op = next;
		n++;
	}
	int rc = f->inner->wait(f->inner_self, n ? 0 : timeout_ns);
	return rc < 0 ? rc : rc + n;
}

static int fault_listen(void *self, const char *host, uint16_t port, int *fd,
			uint16_t *port_out)
{
	struct io_fault *f = self;
	return f->inner->listen(f->inner_self, host, port, fd, port_out);
}

static int fault_socket(void *self, int family, int *fd)
{
	struct io_fault *f = self;
	return f->inner->socket(f->inner_self, family, fd);
}

static int fault_open(void *self, const char *path, int flags, mode_t mode,
		      int *fd)
{
	struct io_fault *f = self;
	return f->inner->open(f->inner_self, path, flags, mode, fd);
}

static int fault_close(void *self, int fd)
{
	struct io_fault *f = self;
	return f->inner->close(f->inner_self, fd);
}

static int fault_file_size(void *self, int fd, uint64_t *size)
{
	struct io_fault *f = self;
	return f->inner->file_size(f->inner_self, fd, size);
}

static int fault_drive(void *self, bool (*done)(void *arg), void *arg)
{
	struct io_fault *f = self;
	if (f->inner->drive)
		return f->inner->drive(f->inner_self, done, arg);
	while (!done(arg)) {
		int rc = io_loop_run_once(f->loop, -1);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int fault_register_buffer(void *self, void *buf, size_t len)
{
	struct io_fault *f = self;
	return f->inner->register_buffer ? f->inner->register_buffer(f->inner_self, buf, len)
					 : -EOPNOTSUPP;
}

static void fault_unregister_buffer(void *self, int index)
{
	struct io_fault *f = self;
	if (f->inner->unregister_buffer)
		f->inner->unregister_buffer(f->inner_self, index);
}

static void fault_wake(void *self)
{
	struct io_fault *f = self;
	f->inner->wake(f->inner_self);
}

static uint64_t fault_now(void *self)
{
	struct io_fault *f = self;
	return f->inner->now_ns(f->inner_self);
}

static uint64_t fault_random(void *self)
{
	struct io_fault *f = self;
	return f->inner->random(f->inner_self);
}

static void fault_destroy(void *self)
{
	struct io_fault *f = self;
	f->inner->destroy(f->inner_self);
	free(f);
}

static const struct io_backend_ops fault_ops = {
	.name = "fault",
	.listen = fault_listen,
	.socket = fault_socket,
	.open = fault_open,
	.close = fault_close,
	.drive = fault_drive,
	.file_size = fault_file_size,
	.register_buffer = fault_register_buffer,
	.unregister_buffer = fault_unregister_buffer,
	.submit = fault_submit,
	.cancel = fault_cancel,
	.wait = fault_wait,
	.wake = fault_wake,
	.now_ns = fault_now,
	.random = fault_random,
	.destroy = fault_destroy,
};

int io_fault_attach(struct io_loop *loop, uint64_t seed, struct io_fault **out)
{
	struct io_fault *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->loop = loop;
	f->rng = seed;
	f->inner = io_loop_backend_ops(loop);
	f->inner_self = io_loop_backend_self(loop);
	io_loop_set_backend(loop, &fault_ops, f);
	*out = f;
	return 0;
}

void io_fault_set(struct io_fault *f, enum io_op_kind kind,
		  uint32_t error_per_million, int error,
		  uint32_t short_per_million)
{
	BASALT_ASSERT((unsigned)kind < FAULT_KINDS);
	BASALT_ASSERT(error <= 0);
	f->rules[kind] = (struct fault_rule){ error_per_million, error,
					      short_per_million };
}

uint64_t io_fault_errors(const struct io_fault *f)
{
	return f->errors;
}

uint64_t io_fault_shorts(const struct io_fault *f)
{
	return f->shorts;
}
