/* Messenger round-trip benchmark on loopback: a server thread echoes, a
 * client thread sends messages with a data segment of the given size, at
 * queue depth 1 (ping-pong latency) and 32 (pipelined throughput). A
 * baseline of plain blocking sockets with the same thread layout runs
 * beside it, so the table shows what the messenger itself costs. With
 * --secure, each messenger row is followed by the same in ms_mode = secure
 * (the connection inside TLS 1.3): the crc and secure rows alternate.
 *
 *   msgr_bench [--seconds S] [--sizes 4096,131072] [--secure]
 *   (prints Markdown) */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "common/assert.h"
#include "common/io/loop.h"
#include "common/log.h"
#include "common/msgr.h"

#define TYPE_PING 100
#define TYPE_PONG 101
#define MAX_SAMPLES (1 << 22)

struct result {
	uint64_t ops;
	double seconds, cpu_seconds;
	double mean_us, p99_us;
};

static void summarize(struct result *r, uint64_t *samples, uint64_t n)
{
	bench_latency(samples, n, &r->mean_us, &r->p99_us);
}

/* --- messenger ------------------------------------------------------------ */

static const char keyring_text[] =
	"[client.bench]\nkey = AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n";

struct server {
	struct io_loop *loop;
	struct msgr *m;
	struct keyring *kr;
	enum msgr_mode mode;
	uint16_t port;
	pthread_mutex_t lock;
	pthread_cond_t ready;
	bool listening;
};

static void server_message(struct msgr_conn *conn, struct msg *msg)
{
	struct msg *reply = msg_new(TYPE_PONG, msg->hdr.request_id, 0);
	reply->data = msg->data; /* zero-copy: echo the received buffer */
	reply->hdr.data_len = msg->hdr.data_len;
	msg->data = NULL;
	if (msgr_send(conn, reply))
		msg_free(reply);
	msg_free(msg);
}

static const struct msgr_handler server_handler = { .on_message = server_message };

static void *server_thread(void *arg)
{
	struct server *s = arg;
	struct msgr_params p;
	io_loop_create_uring(NULL, &s->loop);
	msgr_params_default(&p);
	p.name = "osd.0";
	p.keyring = s->kr;
	p.mode = s->mode;
	p.handler = &server_handler;
	msgr_create(s->loop, &p, &s->m);
	msgr_listen(s->m, "127.0.0.1", 0, &s->port);
	pthread_mutex_lock(&s->lock);
	s->listening = true;
	pthread_cond_signal(&s->ready);
	pthread_mutex_unlock(&s->lock);
	io_loop_run(s->loop);
	msgr_destroy(s->m);
	io_loop_destroy(s->loop);
	return NULL;
}

static void noop_release(struct msg *msg)
{
	(void)msg;
}

struct client {
	struct io_loop *loop;
	struct msgr_conn *conn;
	uint32_t size;
	unsigned depth;
	uint64_t end_ns;
	uint64_t ops, next_id;
	unsigned inflight;
	uint64_t *sent_at; /* by request id modulo depth slots */
	uint64_t *samples;
	uint64_t nsamples;
	uint8_t *payload_src;
	bool up;
};

static void client_send(struct client *c)
{
	struct msg *msg = msg_new(TYPE_PING, c->next_id, 0);
	/* Zero-copy send: the buffer outlives every message. */
	msg_borrow_data(msg, c->payload_src, c->size, noop_release, NULL);
	c->sent_at[c->next_id % c->depth] = bench_now_ns();
	c->next_id++;
	c->inflight++;
	if (msgr_send(c->conn, msg))
		msg_free(msg);
}

static void client_message(struct msgr_conn *conn, struct msg *msg)
{
	struct client *c = msgr_ctx(msgr_conn_msgr(conn));
	uint64_t t = bench_now_ns();
	if (c->nsamples < MAX_SAMPLES)
		c->samples[c->nsamples++] = t - c->sent_at[msg->hdr.request_id % c->depth];
	c->ops++;
	c->inflight--;
	msg_free(msg);
	if (t >= c->end_ns) {
		if (c->inflight == 0)
			io_loop_stop(c->loop);
		return;
	}
	client_send(c);
}

static void client_event(struct msgr_conn *conn, enum msgr_event ev, int err)
{
	struct client *c = msgr_ctx(msgr_conn_msgr(conn));
	(void)err;
	if (ev == MSGR_EV_UP) {
		c->up = true;
		io_loop_stop(c->loop);
	}
}

static const struct msgr_handler client_handler = {
	.on_message = client_message,
	.on_event = client_event,
};

static struct result run_msgr(struct server *s, uint32_t size, unsigned depth,
			      double seconds)
{
	struct client c = { .size = size, .depth = depth };
	struct result r = { 0 };
	struct msgr *m;
	struct msgr_params p;
	io_loop_create_uring(NULL, &c.loop);
	msgr_params_default(&p);
	p.name = "client.bench";
	p.keyring = s->kr;
	p.mode = s->mode;
	p.handler = &client_handler;
	p.ctx = &c;
	msgr_create(c.loop, &p, &m);
	c.sent_at = calloc(depth, sizeof(uint64_t));
	c.samples = malloc(MAX_SAMPLES * sizeof(uint64_t));
	posix_memalign((void **)&c.payload_src, 4096, size ? size : 1);
	memset(c.payload_src, 0x5a, size);
	msgr_connect(m, "127.0.0.1", s->port, &c.conn);
	io_loop_run(c.loop); /* until up */
	/* Warm up for a tenth of the run, then measure. */
	c.end_ns = bench_now_ns() + (uint64_t)(seconds * 1e8);
	for (unsigned i = 0; i < depth; i++)
		client_send(&c);
	io_loop_run(c.loop);
	c.ops = c.nsamples = 0;
	double cpu0 = bench_cpu_seconds();
	uint64_t t0 = bench_now_ns();
	c.end_ns = t0 + (uint64_t)(seconds * 1e9);
	for (unsigned i = 0; i < depth; i++)
		client_send(&c);
	io_loop_run(c.loop);
	r.seconds = (double)(bench_now_ns() - t0) / 1e9;
	r.cpu_seconds = bench_cpu_seconds() - cpu0;
	r.ops = c.ops;
	summarize(&r, c.samples, c.nsamples);
	msgr_conn_close(c.conn);
	msgr_destroy(m);
	io_loop_destroy(c.loop);
	free(c.sent_at);
	free(c.samples);
	free(c.payload_src);
	return r;
}

/* --- plain sockets baseline -------------------------------------------------- */

struct raw_server {
	int listen_fd;
	uint16_t port;
	uint32_t size;
};

static void raw_full(int fd, void *buf, size_t len, bool send_it)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t n = send_it ? send(fd, p, len, MSG_NOSIGNAL) : recv(fd, p, len, 0);
		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

static void *raw_server_thread(void *arg)
{
	struct raw_server *s = arg;
	int fd = accept(s->listen_fd, NULL, NULL);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	uint8_t *buf = malloc(s->size + 64);
	for (;;) {
		ssize_t n = recv(fd, buf, s->size + 64, MSG_WAITALL);
		if (n <= 0)
			break;
		raw_full(fd, buf, (size_t)n, true);
	}
	free(buf);
	close(fd);
	return NULL;
}

/* Depth-1 ping-pong of SIZE+40 bytes (the messenger's header) each way. */
static struct result run_raw(uint32_t size, double seconds)
{
	struct result r = { 0 };
	struct raw_server s = { .size = size };
	s.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	bind(s.listen_fd, (struct sockaddr *)&a, sizeof(a));
	listen(s.listen_fd, 1);
	getsockname(s.listen_fd, (struct sockaddr *)&a, &alen);
	pthread_t th;
	pthread_create(&th, NULL, raw_server_thread, &s);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	connect(fd, (struct sockaddr *)&a, sizeof(a));
	size_t len = size + 64;
	uint8_t *buf = calloc(1, len);
	uint64_t *samples = malloc(MAX_SAMPLES * sizeof(uint64_t));
	uint64_t n = 0;
	double cpu0 = bench_cpu_seconds();
	uint64_t t0 = bench_now_ns(), end = t0 + (uint64_t)(seconds * 1e9);
	for (;;) {
		uint64_t t = bench_now_ns();
		if (t >= end)
			break;
		raw_full(fd, buf, len, true);
		raw_full(fd, buf, len, false);
		if (n < MAX_SAMPLES)
			samples[n] = bench_now_ns() - t;
		n++;
	}
	r.seconds = (double)(bench_now_ns() - t0) / 1e9;
	r.cpu_seconds = bench_cpu_seconds() - cpu0;
	r.ops = n;
	summarize(&r, samples, n < MAX_SAMPLES ? n : MAX_SAMPLES);
	close(fd);
	pthread_join(th, NULL);
	close(s.listen_fd);
	free(buf);
	free(samples);
	return r;
}

static void print_row(const char *what, uint32_t size, unsigned depth,
		      const struct result *r)
{
	double rate = (double)r->ops / r->seconds;
	printf("| %-22s | %7u KiB | %3u | %13.0f | %9.1f | %8.1f | %8.1f | %9.1f |\n",
	       what, size / 1024, depth, rate,
	       rate * 2.0 * size / 1e6, r->mean_us, r->p99_us,
	       r->cpu_seconds * 1e6 / (double)(r->ops ? r->ops : 1));
}

/* Starts S's echo server thread (S's keyring and mode set) and returns
 * once it listens. */
static void server_start(struct server *s, pthread_t *th)
{
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->ready, NULL);
	pthread_create(th, NULL, server_thread, s);
	pthread_mutex_lock(&s->lock);
	while (!s->listening)
		pthread_cond_wait(&s->ready, &s->lock);
	pthread_mutex_unlock(&s->lock);
}

int main(int argc, char **argv)
{
	double seconds = 3;
	uint32_t sizes[8] = { 4096, 131072 };
	int nsizes = 2;
	bool secure = false;
	static const struct option opts[] = {
		{ "seconds", required_argument, NULL, 's' },
		{ "sizes", required_argument, NULL, 'z' },
		{ "secure", no_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 's') {
			seconds = atof(optarg);
		} else if (c == 'z') {
			nsizes = 0;
			for (char *tok = strtok(optarg, ","); tok && nsizes < 8;
			     tok = strtok(NULL, ","))
				sizes[nsizes++] = (uint32_t)strtoul(tok, NULL, 10);
		} else if (c == 'S') {
			secure = true;
		} else {
			fprintf(stderr, "usage: msgr_bench [--seconds S] [--sizes A,B] [--secure]\n");
			return 2;
		}
	}
	log_init("msgr-bench");
	log_set_level(LOG_LEVEL_WARN);
	struct server s = { .mode = MSGR_MODE_CRC }, ss = { .mode = MSGR_MODE_SECURE };
	char err[256];
	if (keyring_load_string("bench", keyring_text, &s.kr, err, sizeof(err)))
		return 1;
	ss.kr = s.kr;
	pthread_t th, sth;
	server_start(&s, &th);
	if (secure)
		server_start(&ss, &sth);

	printf("| path                   |        data |  QD | round trips/s |      MB/s |  mean µs |   p99 µs | CPU µs/op |\n");
	printf("|------------------------|------------:|----:|--------------:|----------:|---------:|---------:|----------:|\n");
	for (int i = 0; i < nsizes; i++) {
		struct result raw = run_raw(sizes[i], seconds);
		print_row("plain TCP sockets", sizes[i], 1, &raw);
		static const unsigned depths[] = { 1, 32 };
		for (size_t d = 0; d < BASALT_ARRAY_SIZE(depths); d++) {
			struct result r = run_msgr(&s, sizes[i], depths[d], seconds);
			print_row("messenger", sizes[i], depths[d], &r);
			if (secure) {
				r = run_msgr(&ss, sizes[i], depths[d], seconds);
				print_row("messenger, secure", sizes[i], depths[d], &r);
			}
		}
		fflush(stdout);
	}
	io_loop_stop(s.loop);
	pthread_join(th, NULL);
	if (secure) {
		io_loop_stop(ss.loop);
		pthread_join(sth, NULL);
	}
	keyring_free(s.kr);
	return 0;
}
