/* The simulated backend (see sim.h). Descriptors are world-wide numbers
 * indexing one table of sockets and open files; each host keeps its
 * pending operations in submission order and completes the ready ones
 * when its loop waits. Randomness comes only from the world's seed. */
#include "sim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../assert.h"
#include "loop_int.h"

#define SIM_FD_BASE 3
#define SIM_FD_MAX 65536
#define SIM_HOST_MAX 64
#define SIM_CONNECT_TIMEOUT_NS IO_SEC(3)
#define SIM_SECTOR 512
#define SIM_PROGRESS_LIMIT 10000000

struct sim_chunk {
	struct sim_chunk *next;
	uint64_t due_ns;
	size_t len, off;
	uint8_t bytes[];
};

struct sim_node;

enum sim_fd_kind { SIM_FD_FREE, SIM_FD_SOCKET, SIM_FD_LISTEN, SIM_FD_FILE };

/* A range of a file with a fault armed (io_sim_disk_fault). */
struct sim_range {
	struct sim_range *next;
	uint64_t offset, len;
};

struct sim_file {
	struct sim_file *next;
	struct sim_range *bad, *lose; /* unreadable; next write dropped */
	struct sim_range *fail, *shorten; /* next write fails; comes back short */
	char host[SIM_HOST_MAX];
	char *path;
	uint8_t *data;
	size_t size;
	uint8_t *durable;
	size_t durable_size;
	struct sim_write *unsynced; /* newest first */
	int opens;
};

struct sim_write {
	struct sim_write *next;
	uint64_t offset;
	size_t len;
	uint8_t bytes[];
};

struct sim_fd {
	enum sim_fd_kind kind;
	struct sim_node *node;
	/* sockets */
	int peer_fd; /* -1 when none */
	bool connected, eof, reset, blackholed;
	uint64_t eof_due_ns, last_due_ns;
	struct sim_chunk *rx_head, *rx_tail;
	struct sockaddr_storage local, remote;
	/* listeners */
	uint16_t port;
	int accept_queue[64];
	unsigned accept_len;
	/* files */
	struct sim_file *file;
};

struct sim_node {
	struct io_sim_world *w;
	struct io_loop *loop;
	char host[SIM_HOST_MAX];
	struct io_op *pending_head, *pending_tail;
	struct io_op *link_from; /* last op submitted, when it was linked */
	struct sim_node *next;
};

struct sim_cut {
	struct sim_cut *next;
	char a[SIM_HOST_MAX], b[SIM_HOST_MAX];
};

struct io_sim_world {
	uint64_t now_ns;
	uint64_t rng;
	uint64_t lat_min_ns, lat_max_ns;
	uint32_t reset_per_million;
	uint16_t next_port;
	struct sim_node *nodes;
	struct sim_fd *fds; /* index fd - SIM_FD_BASE */
	size_t fd_count;
	struct sim_file *files;
	struct sim_cut *cuts;
	void (*check)(void *arg); /* after every step (io_sim_set_check) */
	void *check_arg;
};

/* --- world ----------------------------------------------------------- */

uint64_t io_sim_random(struct io_sim_world *w)
{
	/* splitmix64: every value depends only on the seed and call count. */
	uint64_t z = (w->rng += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static uint64_t sim_between(struct io_sim_world *w, uint64_t lo, uint64_t hi)
{
	return hi > lo ? lo + io_sim_random(w) % (hi - lo + 1) : lo;
}

int io_sim_world_create(uint64_t seed, struct io_sim_world **out)
{
	struct io_sim_world *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->rng = seed;
	w->now_ns = IO_SEC(1);
	w->lat_min_ns = IO_US(50);
	w->lat_max_ns = IO_US(200);
	w->next_port = 40000;
	*out = w;
	return 0;
}

static void sim_free_chunks(struct sim_fd *f)
{
	while (f->rx_head) {
		struct sim_chunk *c = f->rx_head;
		f->rx_head = c->next;
		free(c);
	}
	f->rx_tail = NULL;
}

static void sim_free_unsynced(struct sim_file *file)
{
	while (file->unsynced) {
		struct sim_write *wr = file->unsynced;
		file->unsynced = wr->next;
		free(wr);
	}
}

static void sim_ranges_free(struct sim_range **list)
{
	while (*list) {
		struct sim_range *r = *list;
		*list = r->next;
		free(r);
	}
}

/* Whether [OFF, OFF+LEN) touches a range of LIST; with REMOVE, drops
 * every range it touches. */
static bool sim_ranges_hit(struct sim_range **list, uint64_t off, uint64_t len, bool remove)
{
	bool hit = false;
	for (struct sim_range **p = list; *p;) {
		struct sim_range *r = *p;
		if (off < r->offset + r->len && off + len > r->offset) {
			hit = true;
			if (remove) {
				*p = r->next;
				free(r);
				continue;
			}
		}
		p = &r->next;
	}
	return hit;
}

void io_sim_world_destroy(struct io_sim_world *w)
{
	if (!w)
		return;
	BASALT_ASSERT(w->nodes == NULL);
	for (size_t i = 0; i < w->fd_count; i++)
		sim_free_chunks(&w->fds[i]);
	while (w->files) {
		struct sim_file *f = w->files;
		w->files = f->next;
		sim_free_unsynced(f);
		sim_ranges_free(&f->bad);
		sim_ranges_free(&f->lose);
		sim_ranges_free(&f->fail);
		sim_ranges_free(&f->shorten);
		free(f->path);
		free(f->data);
		free(f->durable);
		free(f);
	}
	while (w->cuts) {
		struct sim_cut *c = w->cuts;
		w->cuts = c->next;
		free(c);
	}
	free(w->fds);
	free(w);
}

uint64_t io_sim_now_ns(const struct io_sim_world *w)
{
	return w->now_ns;
}

void io_sim_set_latency(struct io_sim_world *w, uint64_t min_ns,
			uint64_t max_ns)
{
	w->lat_min_ns = min_ns;
	w->lat_max_ns = max_ns < min_ns ? min_ns : max_ns;
}

void io_sim_set_reset_rate(struct io_sim_world *w, uint32_t per_million)
{
	w->reset_per_million = per_million;
}

static bool sim_is_cut(const struct io_sim_world *w, const char *a,
		       const char *b)
{
	for (const struct sim_cut *c = w->cuts; c; c = c->next) {
		if ((strcmp(c->a, a) == 0 && strcmp(c->b, b) == 0) ||
		    (strcmp(c->a, b) == 0 && strcmp(c->b, a) == 0))
			return true;
	}
	return false;
}

static struct sim_fd *sim_fd_get(struct io_sim_world *w, int fd)
{
	if (fd < SIM_FD_BASE || (size_t)(fd - SIM_FD_BASE) >= w->fd_count)
		return NULL;
	struct sim_fd *f = &w->fds[fd - SIM_FD_BASE];
	return f->kind == SIM_FD_FREE ? NULL : f;
}

static const char *sim_host_of(const struct sockaddr_storage *addr, char *buf,
			       size_t len)
{
	const struct sockaddr_in *in = (const void *)addr;
	return inet_ntop(AF_INET, &in->sin_addr, buf, (socklen_t)len);
}

void io_sim_cut(struct io_sim_world *w, const char *host_a,
		const char *host_b, bool cut)
{
	if (cut && !sim_is_cut(w, host_a, host_b)) {
		struct sim_cut *c = calloc(1, sizeof(*c));
		BASALT_ASSERT(c != NULL);
		snprintf(c->a, sizeof(c->a), "%s", host_a);
		snprintf(c->b, sizeof(c->b), "%s", host_b);
		c->next = w->cuts;
		w->cuts = c;
		/* Connections across the cut lose every byte from now on. */
		for (size_t i = 0; i < w->fd_count; i++) {
			struct sim_fd *f = &w->fds[i];
			if (f->kind != SIM_FD_SOCKET || !f->connected)
				continue;
			char l[64], r[64];
			sim_host_of(&f->local, l, sizeof(l));
			sim_host_of(&f->remote, r, sizeof(r));
			if (sim_is_cut(w, l, r))
				f->blackholed = true;
		}
	} else if (!cut) {
		for (struct sim_cut **pc = &w->cuts; *pc;) {
			struct sim_cut *c = *pc;
			if ((strcmp(c->a, host_a) == 0 && strcmp(c->b, host_b) == 0) ||
			    (strcmp(c->a, host_b) == 0 && strcmp(c->b, host_a) == 0)) {
				*pc = c->next;
				free(c);
			} else {
				pc = &c->next;
			}
		}
	}
}

/* --- descriptors ------------------------------------------------------ */

static int sim_fd_alloc(struct io_sim_world *w, struct sim_node *node,
			enum sim_fd_kind kind)
{
	size_t i;
	for (i = 0; i < w->fd_count; i++)
		if (w->fds[i].kind == SIM_FD_FREE)
			break;
	if (i == w->fd_count) {
		if (w->fd_count >= SIM_FD_MAX)
			return -EMFILE;
		size_t cap = w->fd_count ? w->fd_count * 2 : 64;
		struct sim_fd *fds = realloc(w->fds, cap * sizeof(*fds));
		if (!fds)
			return -ENOMEM;
		memset(fds + w->fd_count, 0, (cap - w->fd_count) * sizeof(*fds));
		w->fds = fds;
		w->fd_count = cap;
	}
	struct sim_fd *f = &w->fds[i];
	memset(f, 0, sizeof(*f));
	f->kind = kind;
	f->node = node;
	f->peer_fd = -1;
	return (int)i + SIM_FD_BASE;
}

static void sim_make_addr(struct sockaddr_storage *ss, const char *host,
			  uint16_t port)
{
	struct sockaddr_in *in = (void *)ss;
	memset(ss, 0, sizeof(*ss));
	in->sin_family = AF_INET;
	in->sin_port = htons(port);
	inet_pton(AF_INET, host, &in->sin_addr);
}

static int sim_listen(void *self, const char *host, uint16_t port, int *fd,
		      uint16_t *port_out)
{
	struct sim_node *n = self;
	struct io_sim_world *w = n->w;
	(void)host; /* a host listens on its own address */
	if (port == 0)
		port = w->next_port++;
	for (size_t i = 0; i < w->fd_count; i++) {
		struct sim_fd *f = &w->fds[i];
		if (f->kind == SIM_FD_LISTEN && f->port == port &&
		    strcmp(f->node->host, n->host) == 0)
			return -EADDRINUSE;
	}
	int s = sim_fd_alloc(w, n, SIM_FD_LISTEN);
	if (s < 0)
		return s;
	struct sim_fd *f = sim_fd_get(w, s);
	f->port = port;
	sim_make_addr(&f->local, n->host, port);
	*fd = s;
	if (port_out)
		*port_out = port;
	return 0;
}

static int sim_socket(void *self, int family, int *fd)
{
	struct sim_node *n = self;
	if (family != AF_INET)
		return -EAFNOSUPPORT;
	int s = sim_fd_alloc(n->w, n, SIM_FD_SOCKET);
	if (s < 0)
		return s;
	*fd = s;
	return 0;
}

static uint64_t sim_latency(struct io_sim_world *w)
{
	return sim_between(w, w->lat_min_ns, w->lat_max_ns);
}

/* Marks both ends of a connection: EOF (orderly close) or reset. */
static void sim_sock_shutdown(struct io_sim_world *w, struct sim_fd *f,
			      bool reset)
{
	struct sim_fd *peer = f->peer_fd >= 0 ? sim_fd_get(w, f->peer_fd) : NULL;
	if (peer && peer->peer_fd >= 0) {
		uint64_t due = w->now_ns + sim_latency(w);
		if (due < peer->last_due_ns)
			due = peer->last_due_ns;
		if (reset) {
			peer->reset = true;
		} else if (!f->blackholed) {
			peer->eof = true;
			peer->eof_due_ns = due;
		}
		peer->peer_fd = -1;
	}
	f->peer_fd = -1;
	if (reset)
		f->reset = true;
}

static void sim_cancel_fd_ops(struct sim_node *n, int fd);

static int sim_close(void *self, int fd)
{
	struct sim_node *n = self;
	struct io_sim_world *w = n->w;
	struct sim_fd *f = sim_fd_get(w, fd);
	if (!f)
		return -EBADF;
	sim_cancel_fd_ops(n, fd);
	if (f->kind == SIM_FD_SOCKET)
		sim_sock_shutdown(w, f, false);
	if (f->kind == SIM_FD_LISTEN) {
		for (unsigned i = 0; i < f->accept_len; i++) {
			struct sim_fd *c = sim_fd_get(w, f->accept_queue[i]);
			if (c) {
				sim_sock_shutdown(w, c, true);
				sim_free_chunks(c);
				c->kind = SIM_FD_FREE;
			}
		}
	}
	if (f->kind == SIM_FD_FILE)
		f->file->opens--;
	sim_free_chunks(f);
	f->kind = SIM_FD_FREE;
	return 0;
}

/* --- files -------------------------------------------------------------- */

static struct sim_file *sim_file_find(struct io_sim_world *w, const char *host,
				      const char *path)
{
	for (struct sim_file *f = w->files; f; f = f->next)
		if (strcmp(f->host, host) == 0 && strcmp(f->path, path) == 0)
			return f;
	return NULL;
}

static int sim_open(void *self, const char *path, int flags, mode_t mode,
		    int *fd)
{
	struct sim_node *n = self;
	struct io_sim_world *w = n->w;
	(void)mode;
	struct sim_file *file = sim_file_find(w, n->host, path);
	if (file && (flags & O_CREAT) && (flags & O_EXCL))
		return -EEXIST;
	if (!file) {
		if (!(flags & O_CREAT))
			return -ENOENT;
		file = calloc(1, sizeof(*file));
		if (!file || !(file->path = strdup(path))) {
			free(file);
			return -ENOMEM;
		}
		snprintf(file->host, sizeof(file->host), "%s", n->host);
		file->next = w->files;
		w->files = file;
	}
	if (flags & O_TRUNC)
		file->size = 0;
	int s = sim_fd_alloc(w, n, SIM_FD_FILE);
	if (s < 0)
		return s;
	sim_fd_get(w, s)->file = file;
	file->opens++;
	*fd = s;
	return 0;
}

static int sim_file_reserve(uint8_t **data, size_t *size, size_t need)
{
	if (need <= *size)
		return 0;
	uint8_t *p = realloc(*data, need);
	if (!p)
		return -ENOMEM;
	memset(p + *size, 0, need - *size);
	*data = p;
	*size = need;
	return 0;
}

static size_t sim_iov_total(const struct io_op *op)
{
	if (!op->iov)
		return op->len;
	size_t total = 0;
	for (int i = 0; i < op->iovcnt; i++)
		total += op->iov[i].iov_len;
	return total;
}

/* Copies between the op's buffers and FLAT (to_op: FLAT -> op). */
static void sim_iov_copy(const struct io_op *op, uint8_t *flat, size_t len,
			 bool to_op)
{
	if (!op->iov) {
		if (to_op)
			memcpy(op->buf, flat, len);
		else
			memcpy(flat, op->buf, len);
		return;
	}
	size_t done = 0;
	for (int i = 0; i < op->iovcnt && done < len; i++) {
		size_t n = op->iov[i].iov_len;
		if (n > len - done)
			n = len - done;
		if (to_op)
			memcpy(op->iov[i].iov_base, flat + done, n);
		else
			memcpy(flat + done, op->iov[i].iov_base, n);
		done += n;
	}
}

static int sim_file_write(struct sim_file *file, const struct io_op *op)
{
	size_t len = sim_iov_total(op);
	if (sim_ranges_hit(&file->lose, op->offset, len, true))
		return (int)len; /* acknowledged, never done */
	if (sim_ranges_hit(&file->fail, op->offset, len, true))
		return -EIO;
	if (sim_ranges_hit(&file->shorten, op->offset, len, true))
		len = len / 2 / SIM_SECTOR * SIM_SECTOR;
	sim_ranges_hit(&file->bad, op->offset, len, true); /* the sectors are remapped */
	struct sim_write *wr = malloc(sizeof(*wr) + len);
	if (!wr)
		return -ENOMEM;
	if (sim_file_reserve(&file->data, &file->size, op->offset + len)) {
		free(wr);
		return -ENOSPC;
	}
	sim_iov_copy(op, wr->bytes, len, false);
	memcpy(file->data + op->offset, wr->bytes, len);
	wr->offset = op->offset;
	wr->len = len;
	wr->next = file->unsynced;
	file->unsynced = wr;
	return (int)len;
}

/* Detaches FILE's unsynced writes, oldest first; hand them back through
 * file->unsynced and sim_free_unsynced when done. */
static struct sim_write *sim_take_unsynced(struct sim_file *file)
{
	struct sim_write *order = NULL;
	while (file->unsynced) {
		struct sim_write *wr = file->unsynced;
		file->unsynced = wr->next;
		wr->next = order;
		order = wr;
	}
	return order;
}

/* Makes every write so far durable: replays the unsynced writes (oldest
 * first) onto the durable image, so the cost is what was written. */
static int sim_file_sync(struct sim_file *file)
{
	struct sim_write *order = sim_take_unsynced(file);
	int rc = 0;
	if (sim_file_reserve(&file->durable, &file->durable_size, file->size))
		rc = -ENOMEM;
	for (struct sim_write *wr = order; wr; wr = wr->next)
		if (!rc)
			memcpy(file->durable + wr->offset, wr->bytes, wr->len);
	file->unsynced = order;
	sim_free_unsynced(file);
	if (!rc && file->durable_size > file->size)
		file->durable_size = file->size;
	return rc;
}

/* Allocation grows the file; a punched hole reads as zeros at once (the
 * simulation treats it as durable, as a discard need not be). */
static int sim_file_fallocate(struct sim_file *file, const struct io_op *op)
{
	if (op->mode == 0)
		return sim_file_reserve(&file->data, &file->size,
					op->offset + op->len) ? -ENOSPC : 0;
	if (op->mode != (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE))
		return -EOPNOTSUPP;
	if (op->offset < file->size) {
		size_t n = file->size - op->offset < op->len ? file->size - op->offset
							      : op->len;
		memset(file->data + op->offset, 0, n);
		if (op->offset < file->durable_size) {
			size_t d = file->durable_size - op->offset < n
					   ? file->durable_size - op->offset
					   : n;
			memset(file->durable + op->offset, 0, d);
		}
	}
	return 0;
}

static int sim_file_size(void *self, int fd, uint64_t *size)
{
	struct sim_node *n = self;
	struct sim_fd *f = sim_fd_get(n->w, fd);
	if (!f || f->kind != SIM_FD_FILE)
		return -EBADF;
	*size = f->file->size;
	return 0;
}

static int sim_file_read(struct sim_file *file, struct io_op *op)
{
	size_t len = sim_iov_total(op);
	if (op->offset >= file->size)
		return 0;
	if (sim_ranges_hit(&file->bad, op->offset, len, false))
		return -EIO;
	if (len > file->size - op->offset)
		len = file->size - op->offset;
	sim_iov_copy(op, file->data + op->offset, len, true);
	return (int)len;
}

int io_sim_disk_fault(struct io_sim_world *w, const char *host, const char *path,
		      enum io_sim_disk_fault kind, uint64_t offset, size_t len)
{
	struct sim_file *file = sim_file_find(w, host, path);
	if (!file)
		return -ENOENT;
	if (kind == IO_SIM_CORRUPT) {
		for (size_t i = 0; i < len; i++) {
			uint8_t bit = (uint8_t)(1u << (io_sim_random(w) % 8));
			if (offset + i < file->size)
				file->data[offset + i] ^= bit;
			if (offset + i < file->durable_size)
				file->durable[offset + i] ^= bit;
		}
		return 0;
	}
	struct sim_range *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->offset = offset;
	r->len = len;
	struct sim_range **list = kind == IO_SIM_BAD_SECTOR ? &file->bad
				  : kind == IO_SIM_LOSE_WRITE ? &file->lose
				  : kind == IO_SIM_FAIL_WRITE ? &file->fail
							      : &file->shorten;
	r->next = *list;
	*list = r;
	return 0;
}

void io_sim_disk_lost_writes_disarm(struct io_sim_world *w, const char *host)
{
	for (struct sim_file *file = w->files; file; file = file->next)
		if (strcmp(file->host, host) == 0) {
			sim_ranges_free(&file->lose);
			sim_ranges_free(&file->fail);
			sim_ranges_free(&file->shorten);
		}
}

void io_sim_power_fail(struct io_sim_world *w, const char *host)
{
	for (struct sim_file *file = w->files; file; file = file->next) {
		if (strcmp(file->host, host) != 0)
			continue;
		/* Replay unsynced writes oldest first; each sector of each
		 * survives or not by a coin flip (torn, reordered writes). */
		struct sim_write *order = sim_take_unsynced(file);
		size_t size = file->durable_size;
		uint8_t *data = file->durable;
		file->durable = NULL;
		for (struct sim_write *wr = order; wr; wr = wr->next) {
			for (size_t off = 0; off < wr->len; off += SIM_SECTOR) {
				if (io_sim_random(w) & 1)
					continue;
				size_t n = wr->len - off < SIM_SECTOR
						   ? wr->len - off
						   : SIM_SECTOR;
				if (sim_file_reserve(&data, &size,
						     wr->offset + off + n) == 0)
					memcpy(data + wr->offset + off,
					       wr->bytes + off, n);
			}
		}
		file->unsynced = order;
		sim_free_unsynced(file);
		free(file->data);
		file->data = data;
		file->size = size;
		/* What survived is now all there is: durable as it stands. */
		file->durable = malloc(size ? size : 1);
		BASALT_ASSERT(file->durable != NULL);
		if (size)
			memcpy(file->durable, data, size);
		file->durable_size = size;
	}
}

/* --- operations ----------------------------------------------------------
 *
 * op->backend_seq: SIM_OP_READY (due at backend_due_ns), SIM_OP_CANCELLED
 * (completes with -ECANCELED at once) or SIM_OP_LINKED (waits for the op
 * linked before it, whose backend_link names it; io_link). */
enum { SIM_OP_READY, SIM_OP_CANCELLED, SIM_OP_LINKED };

static uint64_t sim_op_latency(struct sim_node *n, const struct io_op *op)
{
	struct io_sim_world *w = n->w;
	if (op->kind == IO_OP_CONNECT) {
		char target[64];
		sim_host_of(&op->addr, target, sizeof(target));
		return sim_is_cut(w, n->host, target) ? SIM_CONNECT_TIMEOUT_NS
						      : 2 * sim_latency(w);
	}
	if (op->kind == IO_OP_READ || op->kind == IO_OP_WRITE ||
	    op->kind == IO_OP_FSYNC || op->kind == IO_OP_FALLOCATE)
		return sim_between(w, IO_US(5), IO_US(100));
	return 0;
}

static void sim_submit(void *self, struct io_op *op)
{
	struct sim_node *n = self;
	struct io_sim_world *w = n->w;
	op->backend_next = NULL;
	op->backend_link = NULL;
	op->backend_seq = SIM_OP_READY;
	if (n->link_from) {
		/* Starts when its predecessor completes (sim_link_end). */
		n->link_from->backend_link = op;
		op->backend_seq = SIM_OP_LINKED;
		op->backend_due_ns = UINT64_MAX;
	} else {
		op->backend_due_ns = w->now_ns + sim_op_latency(n, op);
	}
	n->link_from = op->link ? op : NULL;
	if (n->pending_tail)
		n->pending_tail->backend_next = op;
	else
		n->pending_head = op;
	n->pending_tail = op;
}

/* OP, linked to its successor, completed with RES: the successor starts
 * now, or is cancelled when OP failed or moved fewer bytes than asked. */
static void sim_link_end(struct sim_node *n, struct io_op *op, int res)
{
	struct io_op *next = op->backend_link;
	op->backend_link = NULL;
	if (!next)
		return;
	bool whole = op->kind != IO_OP_READ && op->kind != IO_OP_WRITE;
	bool ok = res >= 0 && (whole || (size_t)res == sim_iov_total(op));
	next->backend_seq = ok ? SIM_OP_READY : SIM_OP_CANCELLED;
	next->backend_due_ns = n->w->now_ns + (ok ? sim_op_latency(n, next) : 0);
}

static void sim_unlink(struct sim_node *n, struct io_op *op)
{
	struct io_op *prev = NULL;
	for (struct io_op *p = n->pending_head; p; prev = p, p = p->backend_next) {
		if (p != op)
			continue;
		if (prev)
			prev->backend_next = p->backend_next;
		else
			n->pending_head = p->backend_next;
		if (n->pending_tail == p)
			n->pending_tail = prev;
		p->backend_next = NULL;
		return;
	}
}

/* Cancellation is reported from the next wait(), never inline. */
static void sim_cancel(void *self, struct io_op *op)
{
	struct sim_node *n = self;
	if (op->backend_seq == SIM_OP_LINKED)
		for (struct io_op *p = n->pending_head; p; p = p->backend_next)
			if (p->backend_link == op)
				p->backend_link = NULL;
	if (n->link_from == op)
		n->link_from = NULL;
	op->backend_seq = SIM_OP_CANCELLED;
	op->backend_due_ns = n->w->now_ns;
}

static void sim_cancel_fd_ops(struct sim_node *n, int fd)
{
	for (struct io_op *p = n->pending_head; p; p = p->backend_next)
		if (p->fd == fd)
			sim_cancel(n, p);
}

static struct sim_fd *sim_find_listener(struct io_sim_world *w,
					const char *host, uint16_t port)
{
	for (size_t i = 0; i < w->fd_count; i++) {
		struct sim_fd *f = &w->fds[i];
		if (f->kind == SIM_FD_LISTEN && f->port == port &&
		    strcmp(f->node->host, host) == 0)
			return f;
	}
	return NULL;
}

static int sim_do_connect(struct sim_node *n, struct io_op *op)
{
	struct io_sim_world *w = n->w;
	struct sim_fd *f = sim_fd_get(w, op->fd);
	if (!f || f->kind != SIM_FD_SOCKET)
		return -EBADF;
	char target[64];
	sim_host_of(&op->addr, target, sizeof(target));
	if (sim_is_cut(w, n->host, target))
		return -ETIMEDOUT;
	uint16_t port = ntohs(((struct sockaddr_in *)&op->addr)->sin_port);
	struct sim_fd *l = sim_find_listener(w, target, port);
	if (!l || l->accept_len == BASALT_ARRAY_SIZE(l->accept_queue))
		return -ECONNREFUSED;
	struct sim_node *server = l->node;
	int s = sim_fd_alloc(w, server, SIM_FD_SOCKET);
	if (s < 0)
		return s;
	f = sim_fd_get(w, op->fd); /* the table may have moved */
	l = sim_find_listener(w, target, port);
	struct sim_fd *c = sim_fd_get(w, s);
	sim_make_addr(&f->local, n->host, w->next_port++);
	f->remote = op->addr;
	c->local = l->local;
	c->remote = f->local;
	f->peer_fd = s;
	c->peer_fd = op->fd;
	f->connected = c->connected = true;
	l->accept_queue[l->accept_len++] = s;
	return 0;
}

static bool sim_chunk_ready(const struct io_sim_world *w,
			    const struct sim_fd *f)
{
	return f->rx_head && f->rx_head->due_ns <= w->now_ns;
}

/* Returns true with *RES set when OP can complete now. */
static bool sim_try_complete(struct sim_node *n, struct io_op *op, int *res)
{
	struct io_sim_world *w = n->w;
	if (op->backend_seq == SIM_OP_CANCELLED) {
		*res = -ECANCELED;
		return true;
	}
	if (op->backend_due_ns > w->now_ns)
		return false;
	struct sim_fd *f = sim_fd_get(w, op->fd);
	if (!f) {
		*res = -EBADF;
		return true;
	}
	switch (op->kind) {
	case IO_OP_CONNECT:
		*res = sim_do_connect(n, op);
		return true;
	case IO_OP_ACCEPT: {
		if (f->kind != SIM_FD_LISTEN) {
			*res = -EINVAL;
			return true;
		}
		if (!f->accept_len)
			return false;
		int s = f->accept_queue[0];
		memmove(f->accept_queue, f->accept_queue + 1,
			--f->accept_len * sizeof(int));
		struct sim_fd *c = sim_fd_get(w, s);
		op->addr = c->remote;
		op->addrlen = sizeof(struct sockaddr_in);
		*res = s;
		return true;
	}
	case IO_OP_RECV: {
		if (f->reset) {
			*res = -ECONNRESET;
			return true;
		}
		if (!sim_chunk_ready(w, f)) {
			if (f->eof && !f->rx_head && f->eof_due_ns <= w->now_ns) {
				*res = 0;
				return true;
			}
			return false;
		}
		size_t done = 0;
		while (done < op->len && sim_chunk_ready(w, f)) {
			struct sim_chunk *c = f->rx_head;
			size_t k = c->len - c->off;
			if (k > op->len - done)
				k = op->len - done;
			memcpy((uint8_t *)op->buf + done, c->bytes + c->off, k);
			c->off += k;
			done += k;
			if (c->off == c->len) {
				f->rx_head = c->next;
				if (!f->rx_head)
					f->rx_tail = NULL;
				free(c);
			}
		}
		*res = (int)done;
		return true;
	}
	case IO_OP_SEND: {
		if (f->reset) {
			*res = -ECONNRESET;
			return true;
		}
		struct sim_fd *peer = f->peer_fd >= 0 ? sim_fd_get(w, f->peer_fd)
						      : NULL;
		if (!peer) {
			*res = -EPIPE;
			return true;
		}
		size_t len = sim_iov_total(op);
		if (w->reset_per_million &&
		    io_sim_random(w) % 1000000 < w->reset_per_million) {
			sim_sock_shutdown(w, f, true);
			*res = -ECONNRESET;
			return true;
		}
		if (!f->blackholed && len) {
			struct sim_chunk *c = malloc(sizeof(*c) + len);
			if (!c) {
				*res = -ENOMEM;
				return true;
			}
			sim_iov_copy(op, c->bytes, len, false);
			c->len = len;
			c->off = 0;
			c->next = NULL;
			c->due_ns = w->now_ns + sim_latency(w);
			if (c->due_ns < peer->last_due_ns)
				c->due_ns = peer->last_due_ns;
			peer->last_due_ns = c->due_ns;
			if (peer->rx_tail)
				peer->rx_tail->next = c;
			else
				peer->rx_head = c;
			peer->rx_tail = c;
		}
		*res = (int)len;
		return true;
	}
	case IO_OP_READ:
		*res = f->kind == SIM_FD_FILE ? sim_file_read(f->file, op)
					      : -EBADF;
		return true;
	case IO_OP_WRITE:
		*res = f->kind == SIM_FD_FILE ? sim_file_write(f->file, op)
					      : -EBADF;
		if (*res >= 0 && (op->rw_flags & (RWF_DSYNC | RWF_SYNC)))
			sim_file_sync(f->file);
		return true;
	case IO_OP_FSYNC:
		*res = f->kind == SIM_FD_FILE ? sim_file_sync(f->file) : -EINVAL;
		return true;
	case IO_OP_FALLOCATE:
		*res = f->kind == SIM_FD_FILE ? sim_file_fallocate(f->file, op)
					      : -EINVAL;
		return true;
	default:
		*res = -EINVAL;
		return true;
	}
}

static int sim_wait(void *self, int64_t timeout_ns)
{
	struct sim_node *n = self;
	(void)timeout_ns; /* virtual time moves only in io_sim_run */
	int count = 0;
	struct io_op *op = n->pending_head;
	/* One pass in submission order; ops submitted by callbacks wait for
	 * the next pass, which keeps every host's turn short and fair. */
	struct io_op *last = n->pending_tail;
	while (op) {
		struct io_op *next = op->backend_next;
		int res;
		bool end = op == last;
		if (sim_try_complete(n, op, &res)) {
			sim_unlink(n, op);
			sim_link_end(n, op, res);
			io_loop_complete(n->loop, op, res);
			count++;
		}
		if (end)
			break;
		op = next;
	}
	return count;
}

/* The earliest virtual time at which one of N's ops could complete. */
static uint64_t sim_next_event(struct sim_node *n)
{
	struct io_sim_world *w = n->w;
	uint64_t next = UINT64_MAX;
	for (struct io_op *op = n->pending_head; op; op = op->backend_next) {
		uint64_t t = UINT64_MAX;
		struct sim_fd *f = sim_fd_get(w, op->fd);
		if (op->backend_seq == SIM_OP_CANCELLED || op->backend_due_ns > w->now_ns)
			t = op->backend_due_ns;
		else if (op->kind == IO_OP_RECV && f && f->rx_head)
			t = f->rx_head->due_ns;
		else if (op->kind == IO_OP_RECV && f && f->eof)
			t = f->eof_due_ns;
		if (t < next)
			next = t;
	}
	return next;
}

static void sim_wake(void *self)
{
	(void)self;
}

static uint64_t sim_now(void *self)
{
	return ((struct sim_node *)self)->w->now_ns;
}

/* 2026-01-01T00:00:00Z plus virtual time. */
static uint64_t sim_node_wall_ms(void *self)
{
	return 1767225600000ull + ((struct sim_node *)self)->w->now_ns / 1000000;
}

static uint64_t sim_node_random(void *self)
{
	return io_sim_random(((struct sim_node *)self)->w);
}

static void sim_destroy(void *self)
{
	struct sim_node *n = self;
	struct io_sim_world *w = n->w;
	for (size_t i = 0; i < w->fd_count; i++) {
		struct sim_fd *f = &w->fds[i];
		if (f->kind != SIM_FD_FREE && f->node == n)
			sim_close(n, (int)i + SIM_FD_BASE);
	}
	/* Cancelled ops of a process that exits are simply forgotten. */
	n->pending_head = n->pending_tail = n->link_from = NULL;
	for (struct sim_node **p = &w->nodes; *p; p = &(*p)->next) {
		if (*p == n) {
			*p = n->next;
			break;
		}
	}
	free(n);
}

static int sim_drive(void *self, bool (*done)(void *arg), void *arg)
{
	struct sim_node *n = self;
	return io_sim_run(n->w, UINT64_MAX, done, arg);
}

static const struct io_backend_ops sim_ops = {
	.drive = sim_drive,
	.name = "sim",
	.listen = sim_listen,
	.socket = sim_socket,
	.open = sim_open,
	.close = sim_close,
	.file_size = sim_file_size,
	.submit = sim_submit,
	.cancel = sim_cancel,
	.wait = sim_wait,
	.wake = sim_wake,
	.now_ns = sim_now,
	.wall_ms = sim_node_wall_ms,
	.random = sim_node_random,
	.destroy = sim_destroy,
};

int io_loop_create_sim(struct io_sim_world *w, const char *host,
		       struct io_loop **out)
{
	struct in_addr probe;
	if (strlen(host) >= SIM_HOST_MAX || inet_pton(AF_INET, host, &probe) != 1)
		return -EINVAL;
	struct sim_node *n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->w = w;
	snprintf(n->host, sizeof(n->host), "%s", host);
	int rc = io_loop_create(&sim_ops, n, out);
	if (rc)
		return rc;
	n->loop = *out;
	/* Append, so hosts run in creation order: part of determinism. */
	struct sim_node **p = &w->nodes;
	while (*p)
		p = &(*p)->next;
	*p = n;
	return 0;
}

void io_sim_set_check(struct io_sim_world *w, void (*check)(void *arg), void *arg)
{
	w->check = check;
	w->check_arg = arg;
}

int io_sim_run(struct io_sim_world *w, uint64_t until_ns,
	       bool (*done)(void *arg), void *arg)
{
	unsigned spins = 0;
	for (;;) {
		if (w->check)
			w->check(w->check_arg);
		if (done && done(arg))
			return 0;
		bool progress = false;
		for (struct sim_node *n = w->nodes; n; n = n->next) {
			if (io_loop_run_once(n->loop, 0) > 0)
				progress = true;
		}
		if (progress) {
			BASALT_ASSERT(++spins < SIM_PROGRESS_LIMIT);
			continue;
		}
		spins = 0;
		uint64_t next = UINT64_MAX;
		for (struct sim_node *n = w->nodes; n; n = n->next) {
			uint64_t t = io_loop_next_deadline(n->loop);
			uint64_t e = sim_next_event(n);
			if (t < next)
				next = t;
			if (e < next)
				next = e;
		}
		if (next == UINT64_MAX)
			return done && done(arg) ? 0 : -EDEADLK;
		if (next > until_ns) {
			if (w->now_ns < until_ns)
				w->now_ns = until_ns;
			return done && done(arg) ? 0 : -ETIMEDOUT;
		}
		if (next > w->now_ns)
			w->now_ns = next;
	}
}
