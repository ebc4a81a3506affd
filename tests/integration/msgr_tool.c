/* msgr_tool: the messenger's two-process integration test driver.
 *
 *   msgr_tool serve --port P --keyring K        echo server (PING -> PONG)
 *   msgr_tool drive --port P --keyring K --count N [--window W]
 *                                               send N pings with data,
 *                                               resend across reconnects,
 *                                               verify every echo
 *   msgr_tool badframes --port P --keyring K    send every malformed frame
 *                                               on its own connection and
 *                                               check the server closes it
 *                                               while still serving others
 *   msgr_tool replay --port P --keyring K --name E
 *                                               authenticate as E, then send
 *                                               the same HELLO and AUTH on a
 *                                               new connection: refused?
 *   msgr_tool straddle --port P --keyring K --name E --count MS
 *                                               HELLO, then AUTH MS later:
 *                                               refused once E's key is gone?
 *
 * Exit status 0 means everything checked out. */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/auth.h"
#include "common/crc32c.h"
#include "common/enc.h"
#include "common/io/loop.h"
#include "common/log.h"
#include "common/msgr.h"

#define TYPE_PING 100
#define TYPE_PONG 101

struct tool {
	struct io_loop *loop;
	struct msgr *m;
	struct keyring *kr;
	const char *keyring_path;
	uint16_t port;
	/* drive */
	uint64_t count, window, next_id, acked_count, resent, dups;
	uint64_t reconnects, low_unacked;
	uint8_t *acked;
	bool failed;
	struct msgr_conn *conn;
};

static struct tool *signal_tool;

static void on_signal(int sig)
{
	(void)sig;
	if (signal_tool)
		io_loop_stop(signal_tool->loop);
}

static uint32_t ping_data_len(uint64_t id)
{
	static const uint32_t sizes[] = { 0, 512, 4096, 16384, 4096, 65536, 1 };
	return sizes[id % 7];
}

static uint8_t ping_byte(uint64_t id, uint32_t i)
{
	return (uint8_t)(id * 131 + i * 7);
}

static bool type_ok(uint16_t type, void *arg)
{
	(void)arg;
	return type == TYPE_PING || type == TYPE_PONG;
}

/* --- serve -------------------------------------------------------------- */

static void serve_message(struct msgr_conn *conn, struct msg *msg)
{
	if (msg->hdr.type == TYPE_PING) {
		struct msg *reply = msg_new(TYPE_PONG, msg->hdr.request_id,
					    msg->hdr.payload_len);
		if (reply) {
			memcpy(reply->payload, msg->payload, msg->hdr.payload_len);
			reply->data = msg->data; /* zero-copy hand-off */
			reply->hdr.data_len = msg->hdr.data_len;
			msg->data = NULL;
			if (msgr_send(conn, reply) != 0)
				msg_free(reply);
		}
	}
	msg_free(msg);
}

static const struct msgr_handler serve_handler = {
	.on_message = serve_message,
	.type_ok = type_ok,
};

/* --- drive -------------------------------------------------------------- */

static void drive_send(struct tool *t, uint64_t id)
{
	struct msg *msg = msg_new(TYPE_PING, id, 8);
	if (!msg) {
		t->failed = true;
		return;
	}
	struct enc e;
	enc_init(&e, msg->payload, 8);
	enc_put_le64(&e, id);
	uint32_t len = ping_data_len(id);
	if (len && msg_alloc_data(msg, len)) {
		msg_free(msg);
		t->failed = true;
		return;
	}
	for (uint32_t i = 0; i < len; i++)
		msg->data[i] = ping_byte(id, i);
	int rc = msgr_send(t->conn, msg);
	if (rc) {
		fprintf(stderr, "msgr_tool: send failed: %s\n", strerror(-rc));
		msg_free(msg);
		t->failed = true;
	}
}

static void drive_fill_window(struct tool *t)
{
	while (t->next_id < t->count && t->next_id - t->low_unacked < t->window)
		drive_send(t, t->next_id++);
}

static void drive_message(struct msgr_conn *conn, struct msg *msg)
{
	struct tool *t = msgr_ctx(msgr_conn_msgr(conn));
	uint64_t id = msg->hdr.request_id;
	struct dec d;
	uint64_t echoed = 0;
	dec_init(&d, msg->payload, msg->hdr.payload_len);
	dec_get_le64(&d, &echoed);
	bool ok = msg->hdr.type == TYPE_PONG && id < t->count && echoed == id &&
		  msg->hdr.data_len == ping_data_len(id);
	for (uint32_t i = 0; ok && i < msg->hdr.data_len; i++)
		ok = msg->data[i] == ping_byte(id, i);
	msg_free(msg);
	if (!ok) {
		fprintf(stderr, "msgr_tool: bad echo for id %llu\n",
			(unsigned long long)id);
		t->failed = true;
		io_loop_stop(t->loop);
		return;
	}
	if (t->acked[id]) {
		t->dups++;
		return;
	}
	t->acked[id] = 1;
	t->acked_count++;
	while (t->low_unacked < t->count && t->acked[t->low_unacked])
		t->low_unacked++;
	if (t->acked_count % 10000 == 0) {
		printf("acked %llu\n", (unsigned long long)t->acked_count);
		fflush(stdout);
	}
	if (t->acked_count == t->count) {
		io_loop_stop(t->loop);
		return;
	}
	drive_fill_window(t);
}

static void drive_event(struct msgr_conn *conn, enum msgr_event ev, int err)
{
	struct tool *t = msgr_ctx(msgr_conn_msgr(conn));
	if (ev == MSGR_EV_UP) {
		fprintf(stderr, "msgr_tool: connection up\n");
		return;
	}
	fprintf(stderr, "msgr_tool: connection down: %s; resending\n",
		strerror(-err));
	t->reconnects++;
	/* Everything sent and not acknowledged was dropped: send again. */
	for (uint64_t id = t->low_unacked; id < t->next_id; id++) {
		if (!t->acked[id]) {
			drive_send(t, id);
			t->resent++;
		}
	}
}

static const struct msgr_handler drive_handler = {
	.on_message = drive_message,
	.on_event = drive_event,
	.type_ok = type_ok,
};

/* --- bad frames ---------------------------------------------------------- */

static bool raw_write(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static bool raw_read(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t n = recv(fd, p, len, 0);
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static int raw_connect(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { .tv_sec = 15 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	/* The banner each side opens with (crc mode; see msgr_int.h). */
	static const uint8_t banner[8] = { 'B', 'S', 'L', 'T', 1, 'c', 0, 0 };
	uint8_t theirs[8];
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    !raw_write(fd, banner, sizeof(banner)) || !raw_read(fd, theirs, sizeof(theirs)) ||
	    memcmp(theirs, banner, sizeof(banner))) {
		close(fd);
		return -1;
	}
	return fd;
}

static bool raw_send_msg(int fd, struct msg *msg)
{
	msg_seal(msg);
	bool ok = raw_write(fd, msg->wire, MSG_HEADER_LEN) &&
		  raw_write(fd, msg->payload, msg->hdr.payload_len) &&
		  raw_write(fd, msg->data, msg->hdr.data_len);
	msg_free(msg);
	return ok;
}

static struct msg *raw_recv_msg(int fd)
{
	uint8_t hdr[MSG_HEADER_LEN];
	struct msg_header h;
	const char *why;
	struct msg_limits lim = { 4096, 0, NULL, NULL };
	if (!raw_read(fd, hdr, sizeof(hdr)) ||
	    msg_header_decode(hdr, &lim, &h, &why))
		return NULL;
	struct msg *m = msg_new(h.type, h.request_id, h.payload_len);
	m->hdr = h;
	if (!raw_read(fd, m->payload, h.payload_len)) {
		msg_free(m);
		return NULL;
	}
	return m;
}

/* Runs the initiator's half of the handshake by hand. */
static int raw_authenticated(struct tool *t, const char *name)
{
	int fd = raw_connect(t->port);
	if (fd < 0)
		return -1;
	uint8_t key[KEYRING_KEY_LEN];
	struct msg_hello mine = { .proto = MSG_HELLO_PROTO }, theirs;
	keyring_find(t->kr, name, key);
	auth_key_id(key, mine.key_id);
	snprintf(mine.name, sizeof(mine.name), "%s", name);
	auth_make_nonce(mine.nonce);
	if (!raw_send_msg(fd, msg_hello_new(&mine)))
		goto fail;
	struct msg *reply = raw_recv_msg(fd);
	if (!reply)
		goto fail;
	bool ok = msg_hello_decode(reply->payload, reply->hdr.payload_len, &theirs) == 0 &&
		  theirs.has_proof &&
		  auth_check_proof(key, AUTH_ROLE_ACCEPTOR, name, theirs.name,
				   mine.nonce, theirs.nonce, theirs.proof);
	msg_free(reply);
	if (!ok)
		goto fail;
	const char *peer = theirs.name;
	const uint8_t *ni = mine.nonce, *na = theirs.nonce;
	struct msg *auth = msg_new(MSG_TYPE_AUTH, 0, AUTH_PROOF_LEN);
	auth_make_proof(key, AUTH_ROLE_INITIATOR, name, peer, ni, na, auth->payload);
	if (!raw_send_msg(fd, auth))
		goto fail;
	struct msg *okmsg = raw_recv_msg(fd);
	if (!okmsg || okmsg->hdr.type != MSG_TYPE_AUTH_OK) {
		msg_free(okmsg);
		goto fail;
	}
	msg_free(okmsg);
	return fd;
fail:
	close(fd);
	return -1;
}

/* True when the server ends the connection (EOF or reset) in time. */
static bool raw_closed_by_server(int fd)
{
	uint8_t buf[4096];
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return true;
		if (n < 0)
			return false; /* timeout */
	}
}

enum bad_case {
	BAD_MAGIC, BAD_HEADER_CRC, BAD_VERSION, BAD_FLAGS, BAD_PAYLOAD_CRC,
	BAD_DATA_CRC, BAD_OVERSIZE_PAYLOAD, BAD_OVERSIZE_DATA,
	BAD_TRUNCATED_PAYLOAD, BAD_UNKNOWN_TYPE, BAD_HANDSHAKE_AGAIN,
	BAD_BEFORE_AUTH, BAD_CASES,
};

static const char *const bad_names[BAD_CASES] = {
	"wrong magic", "bad header CRC", "unsupported version", "unknown flags",
	"bad payload CRC", "bad data CRC", "oversize payload length",
	"oversize data length", "truncated payload", "unknown type",
	"handshake message after auth", "user message before auth",
};

/* Builds and sends the malformed frame of case C on FD. */
static bool send_bad(int fd, enum bad_case c)
{
	struct msg *m = msg_new(TYPE_PING, 7, 16);
	memset(m->payload, 0xab, 16);
	msg_alloc_data(m, 4096);
	memset(m->data, 0xcd, 4096);
	msg_seal(m);
	uint8_t *w = m->wire;
	struct msg_header h = m->hdr;
	size_t payload_len = 16, data_len = 4096;
	switch (c) {
	case BAD_MAGIC: w[0] ^= 0xff; break;
	case BAD_HEADER_CRC: w[36] ^= 1; break;
	case BAD_VERSION: h.version = 9; msg_header_encode(&h, w); break;
	case BAD_FLAGS: h.flags = 0x100; msg_header_encode(&h, w); break;
	case BAD_PAYLOAD_CRC: m->payload[3] ^= 1; break;
	case BAD_DATA_CRC: m->data[4000] ^= 1; break;
	case BAD_OVERSIZE_PAYLOAD: h.payload_len = 0x7fffffff; msg_header_encode(&h, w); break;
	case BAD_OVERSIZE_DATA: h.data_len = 0xffffffff; msg_header_encode(&h, w); break;
	case BAD_TRUNCATED_PAYLOAD: payload_len = 5; data_len = 0; break;
	case BAD_UNKNOWN_TYPE: h.type = 9999; msg_header_encode(&h, w); break;
	case BAD_HANDSHAKE_AGAIN: h.type = 1; msg_header_encode(&h, w); break;
	case BAD_BEFORE_AUTH: case BAD_CASES: break;
	}
	bool ok = raw_write(fd, w, MSG_HEADER_LEN) &&
		  raw_write(fd, m->payload, payload_len) &&
		  raw_write(fd, m->data, data_len);
	if (c == BAD_TRUNCATED_PAYLOAD)
		shutdown(fd, SHUT_WR); /* the peer went away mid-frame */
	msg_free(m);
	return ok;
}

/* The honest connection still gets its echo. */
static bool good_roundtrip(int fd, uint64_t id)
{
	struct msg *m = msg_new(TYPE_PING, id, 8);
	memset(m->payload, 0, 8);
	m->payload[0] = (uint8_t)id;
	if (!raw_send_msg(fd, m))
		return false;
	struct msg *r = raw_recv_msg(fd);
	bool ok = r && r->hdr.type == TYPE_PONG && r->hdr.request_id == id;
	msg_free(r);
	return ok;
}

static int run_badframes(struct tool *t)
{
	int good = raw_authenticated(t, "client.admin");
	if (good < 0 || !good_roundtrip(good, 1)) {
		fprintf(stderr, "msgr_tool: cannot set up the honest connection\n");
		return 1;
	}
	int failures = 0;
	for (int c = 0; c < BAD_CASES; c++) {
		int fd = c == BAD_BEFORE_AUTH ? raw_connect(t->port)
					      : raw_authenticated(t, "client.admin");
		/* The server may close before all of the frame is written:
		 * only whether it closes the connection counts. */
		bool ok = fd >= 0;
		if (ok) {
			send_bad(fd, (enum bad_case)c);
			ok = raw_closed_by_server(fd);
		}
		if (fd >= 0)
			close(fd);
		bool still = good_roundtrip(good, (uint64_t)c + 100);
		printf("%-30s %s, other client %s\n", bad_names[c],
		       ok ? "closed" : "NOT CLOSED",
		       still ? "still served" : "NOT SERVED");
		failures += !ok || !still;
	}
	close(good);
	printf("badframes: %d failures\n", failures);
	return failures ? 1 : 0;
}

/* --- replay ----------------------------------------------------------------- */

/* Sends HELLO MINE, reads the acceptor's HELLO into THEIRS. */
static bool replay_hello(int fd, const struct msg_hello *mine, struct msg_hello *theirs)
{
	if (!raw_send_msg(fd, msg_hello_new(mine)))
		return false;
	struct msg *reply = raw_recv_msg(fd);
	bool ok = reply && reply->hdr.type == MSG_TYPE_HELLO &&
		  msg_hello_decode(reply->payload, reply->hdr.payload_len, theirs) == 0;
	msg_free(reply);
	return ok;
}

/* Sends the initiator's proof PROOF; the acceptor's verdict: true for
 * AUTH_OK, false for AUTH_FAIL or a closed connection. */
static bool replay_auth(int fd, const uint8_t proof[AUTH_PROOF_LEN])
{
	struct msg *auth = msg_new(MSG_TYPE_AUTH, 0, AUTH_PROOF_LEN);
	memcpy(auth->payload, proof, AUTH_PROOF_LEN);
	if (!raw_send_msg(fd, auth))
		return false;
	struct msg *verdict = raw_recv_msg(fd);
	bool ok = verdict && verdict->hdr.type == MSG_TYPE_AUTH_OK;
	msg_free(verdict);
	return ok;
}

/* Our HELLO as NAME of the keyring (fresh nonce, its key id) and its key
 * into KEY: 0, or -ENOENT after saying so. */
static int hello_as(struct tool *t, const char *name, struct msg_hello *mine,
		    uint8_t key[KEYRING_KEY_LEN])
{
	*mine = (struct msg_hello){ .proto = MSG_HELLO_PROTO };
	if (!name || keyring_find(t->kr, name, key)) {
		fprintf(stderr, "msgr_tool: --name ENTITY of the keyring needed\n");
		return -ENOENT;
	}
	snprintf(mine->name, sizeof(mine->name), "%s", name);
	auth_key_id(key, mine->key_id);
	auth_make_nonce(mine->nonce);
	return 0;
}

/* An eavesdropper's replay: the initiator's half of a real handshake
 * (HELLO with its nonce and key id, then AUTH with its proof), recorded
 * and sent again verbatim on a new connection, must be refused: the
 * acceptor's fresh nonce makes the recorded proof wrong. */
static int run_replay(struct tool *t, const char *name)
{
	uint8_t key[KEYRING_KEY_LEN], proof[AUTH_PROOF_LEN];
	struct msg_hello mine, theirs;
	if (hello_as(t, name, &mine, key))
		return 2;
	int fd = raw_connect(t->port);
	bool first = fd >= 0 && replay_hello(fd, &mine, &theirs) &&
		     auth_make_proof(key, AUTH_ROLE_INITIATOR, name, theirs.name, mine.nonce,
				     theirs.nonce, proof) == 0 &&
		     replay_auth(fd, proof);
	printf("first handshake: %s\n", first ? "accepted" : "refused");
	if (fd >= 0)
		close(fd);
	fd = raw_connect(t->port);
	bool hello = fd >= 0 && replay_hello(fd, &mine, &theirs);
	bool again = hello && replay_auth(fd, proof);
	printf("replayed handshake: %s\n", again ? "accepted" : hello ? "refused" : "no HELLO answer");
	if (fd >= 0)
		close(fd);
	return first && hello && !again ? 0 : 1;
}

/* A handshake that straddles the end of a key's validity: HELLO while it
 * is valid, AUTH WAIT_MS later. The acceptor must look the key up again. */
static int run_straddle(struct tool *t, const char *name, uint64_t wait_ms)
{
	uint8_t key[KEYRING_KEY_LEN], proof[AUTH_PROOF_LEN];
	struct msg_hello mine, theirs;
	if (hello_as(t, name, &mine, key))
		return 2;
	int fd = raw_connect(t->port);
	bool hello = fd >= 0 && replay_hello(fd, &mine, &theirs);
	printf("HELLO: %s\n", hello ? "answered" : "refused");
	fflush(stdout);
	if (hello)
		usleep((useconds_t)(wait_ms * 1000));
	bool ok = hello &&
		  auth_make_proof(key, AUTH_ROLE_INITIATOR, name, theirs.name, mine.nonce,
				  theirs.nonce, proof) == 0 &&
		  replay_auth(fd, proof);
	printf("straddled handshake: %s\n", ok ? "accepted" : "refused");
	if (fd >= 0)
		close(fd);
	return hello ? 0 : 1;
}

/* --- main ---------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr,
		"usage: msgr_tool serve|drive|badframes|replay|straddle --port P --keyring K\n"
		"                 [--count N] [--window W] [--name ENTITY]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	const char *mode = argv[1];
	struct tool t = { .count = 100000, .window = 64 };
	const char *name = NULL;
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "keyring", required_argument, NULL, 'k' },
		{ "count", required_argument, NULL, 'n' },
		{ "window", required_argument, NULL, 'w' },
		{ "name", required_argument, NULL, 'N' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	optind = 2;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'p': t.port = (uint16_t)atoi(optarg); break;
		case 'k': t.keyring_path = optarg; break;
		case 'n': t.count = strtoull(optarg, NULL, 10); break;
		case 'w': t.window = strtoull(optarg, NULL, 10); break;
		case 'N': name = optarg; break;
		default: usage();
		}
	}
	if (!t.keyring_path)
		usage();
	log_init(strcmp(mode, "serve") == 0 ? "msgr-serve" : "msgr-drive");
	char err[512];
	if (keyring_load(t.keyring_path, &t.kr, err, sizeof(err))) {
		fprintf(stderr, "msgr_tool: %s\n", err);
		return 2;
	}
	if (strcmp(mode, "badframes") == 0)
		return run_badframes(&t);
	if (strcmp(mode, "replay") == 0)
		return run_replay(&t, name);
	if (strcmp(mode, "straddle") == 0)
		return run_straddle(&t, name, t.count);

	bool serve = strcmp(mode, "serve") == 0;
	if (!serve && strcmp(mode, "drive") != 0)
		usage();
	if (io_loop_create_uring(NULL, &t.loop))
		return 1;
	struct msgr_params p;
	msgr_params_default(&p);
	p.name = name ? name : serve ? "osd.1" : "client.admin";
	p.keyring = t.kr;
	p.handler = serve ? &serve_handler : &drive_handler;
	p.ctx = &t;
	if (msgr_create(t.loop, &p, &t.m))
		return 1;
	signal_tool = &t;
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	if (serve) {
		uint16_t port;
		int rc = msgr_listen(t.m, "127.0.0.1", t.port, &port);
		if (rc) {
			fprintf(stderr, "msgr_tool: listen: %s\n", strerror(-rc));
			return 1;
		}
		printf("listening %u\n", port);
		fflush(stdout);
		io_loop_run(t.loop);
		const struct msgr_stats *s = msgr_stats(t.m);
		printf("stats: msgs_received=%llu bad_frames=%llu auth_failures=%llu\n",
		       (unsigned long long)s->msgs_received,
		       (unsigned long long)s->bad_frames,
		       (unsigned long long)s->auth_failures);
	} else {
		t.acked = calloc(t.count ? t.count : 1, 1);
		int rc = msgr_connect(t.m, "127.0.0.1", t.port, &t.conn);
		if (rc) {
			fprintf(stderr, "msgr_tool: connect: %s\n", strerror(-rc));
			return 1;
		}
		drive_fill_window(&t);
		io_loop_run(t.loop);
		printf("drive: acked=%llu of %llu resent=%llu duplicates=%llu downs=%llu\n",
		       (unsigned long long)t.acked_count,
		       (unsigned long long)t.count, (unsigned long long)t.resent,
		       (unsigned long long)t.dups,
		       (unsigned long long)t.reconnects);
		msgr_conn_close(t.conn);
		free(t.acked);
	}
	msgr_destroy(t.m);
	io_loop_destroy(t.loop);
	keyring_free(t.kr);
	if (!serve && (t.failed || t.acked_count != t.count))
		return 1;
	return 0;
}
