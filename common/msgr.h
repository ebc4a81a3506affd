/* The messenger: authenticated, framed messages over TCP on an io_loop.
 *
 * A daemon creates one messenger per loop, listens, and/or opens
 * connections to peers. Every connection first runs the HMAC-SHA256
 * challenge/response of auth.h; until it succeeds no other message is
 * accepted and none is delivered. Frames are checked as msgr_frame.h
 * says; a bad frame closes that connection only.
 *
 * Outgoing connections (msgr_connect) are persistent: the messenger
 * reconnects with exponential backoff until msgr_conn_close. Messages sent
 * while the connection is down wait in its queue, across failed attempts,
 * and go out once it is up. When the owner hears MSGR_EV_DOWN, everything
 * queued or half-sent before that moment has been dropped, so it resends
 * what it must (requests carry ids); DOWN is reported once per loss, not
 * per failed attempt. Incoming connections end with MSGR_EV_CLOSED, after
 * which they are freed. */
#ifndef BASALT_COMMON_MSGR_H
#define BASALT_COMMON_MSGR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io/loop.h"
#include "keyring.h"
#include "msgr_frame.h"

struct msgr;
struct msgr_conn;

enum msgr_event {
	MSGR_EV_UP,	/* authenticated; messages flow */
	MSGR_EV_DOWN,	/* outgoing: lost or failed; it will reconnect */
	MSGR_EV_CLOSED, /* incoming: gone; the conn is freed on return */
};

struct msgr_handler {
	/* Takes ownership of MSG (free with msg_free). */
	void (*on_message)(struct msgr_conn *conn, struct msg *msg);
	/* ERR: 0, or why it went down (-ETIMEDOUT, -ECONNRESET, -EPROTO..). */
	void (*on_event)(struct msgr_conn *conn, enum msgr_event ev, int err);
	/* Optional: the send queue fell below half its limit after a
	 * msgr_send returned -EAGAIN. */
	void (*on_writable)(struct msgr_conn *conn);
	/* Which user types (>= MSG_TYPE_FIRST_USER) may arrive; NULL: all. */
	bool (*type_ok)(uint16_t type, void *arg);
	/* Optional: where the data segment of user message MSG, arriving on
	 * CONN, is received (zero copy into the owner's buffer). Called once
	 * MSG's header and payload are in and checked (MSG->data is NULL).
	 * To lend a buffer it calls msg_borrow_data(MSG, buf, the header's
	 * data_len, release, owner); leaving MSG alone has one allocated.
	 * RELEASE(MSG) is called exactly once, when nothing can write into
	 * the buffer any more: when the owner frees the delivered MSG, or
	 * when the connection drops it half received (a bad data CRC, a
	 * close, msgr_conn_reset: only once the socket's receive into it has
	 * ended), or from msgr_destroy/msgr_forget. It must not call into
	 * the messenger. */
	void (*data_dest)(struct msgr_conn *conn, struct msg *msg);
};

/* ms_mode: crc (frames checksummed and authenticated, in the clear) or
 * secure (everything after the banner inside TLS 1.3, keyed by a PSK
 * derived from the initiator's secret). A messenger talks only to peers
 * of its own mode. */
enum msgr_mode {
	MSGR_MODE_CRC = 'c',
	MSGR_MODE_SECURE = 's',
};

/* "crc" or "secure" into *OUT: 0, or -EINVAL. */
int msgr_mode_parse(const char *text, enum msgr_mode *out /* out */);
const char *msgr_mode_name(enum msgr_mode mode);

struct msgr_params {
	const char *name;		/* our entity name, e.g. "osd.1" */
	enum msgr_mode mode;		/* default crc */
	const struct keyring *keyring;	/* borrowed for the messenger's life */
	const struct msgr_handler *handler;
	void *ctx;			/* the owner's; see msgr_ctx() */
	/* Optional: secrets for incoming entities the keyring lacks (client
	 * keys of the map): the one of ENTITY whose auth_key_id is ID. 0 with
	 * KEY filled, or -ENOENT (no such entity), -EKEYREJECTED (not that
	 * key: rotated away, or wrong). */
	int (*find_key)(void *ctx, const char *entity, const uint8_t id[8], uint8_t key[32]);
	uint32_t payload_max;		/* default 1 MiB */
	uint32_t data_max;		/* default 64 MiB */
	size_t send_queue_bytes_max;	/* default 64 MiB */
	unsigned send_queue_msgs_max;	/* default 4096 */
	unsigned conns_max;		/* default 4096 */
	unsigned conns_per_host_max;	/* incoming from one address; default 1024 */
	uint64_t connect_timeout_ns;	/* default 3 s */
	uint64_t handshake_timeout_ns;	/* default 5 s */
	uint64_t keepalive_interval_ns; /* default 1 s */
	uint64_t keepalive_timeout_ns;	/* default 10 s */
	uint64_t backoff_min_ns;	/* default 20 ms */
	uint64_t backoff_max_ns;	/* default 2 s */
};

struct msgr_stats {
	uint64_t msgs_sent, msgs_received;
	uint64_t bytes_sent, bytes_received;
	uint64_t conns_accepted, conns_up;
	uint64_t bad_frames, auth_failures, timeouts;
};

void msgr_params_default(struct msgr_params *params /* out */);

/* Why a connection went down (its MSGR_EV_DOWN error), for people: what
 * the refusals the messenger reports mean, else strerror. */
const char *msgr_strerror(int err);

struct cfg;
/* The messenger settings of SECTION ("osd.1", "client.admin": looked up
 * there, in its type's section, then [global]) into PARAMS: ms_mode,
 * ms_handshake_timeout, ms_max_connections, ms_max_connections_per_host,
 * ms_max_message_size. 0, or -EINVAL with WHY naming the setting. */
int msgr_params_config(struct cfg *cfg, const char *section, struct msgr_params *params,
		       char *why, size_t why_len);

/* Creates a messenger on LOOP (it must outlive the messenger). */
int msgr_create(struct io_loop *loop, const struct msgr_params *params,
		struct msgr **out /* out */);
/* Closes every connection and the listener, runs LOOP until their
 * operations have ended, and frees everything. No callbacks are made. */
void msgr_destroy(struct msgr *m);

/* Frees M and its connections without any I/O and without callbacks, as
 * a killed process leaves them: for simulations that destroyed M's loop
 * first (its sockets closed with it). */
void msgr_forget(struct msgr *m);

/* Listens on HOST:PORT (0: any free port, reported in *PORT_OUT). */
int msgr_listen(struct msgr *m, const char *host, uint16_t port,
		uint16_t *port_out /* out */);
/* Opens a persistent connection to HOST:PORT; returns at once. */
int msgr_connect(struct msgr *m, const char *host, uint16_t port,
		 struct msgr_conn **out /* out */);

/* Queues MSG. Returns 0 and takes ownership; or, keeping ownership with
 * the caller, -EAGAIN when the queue is at its limit (on_writable follows)
 * or -ENOTCONN when an incoming connection is not up. */
int msgr_send(struct msgr_conn *conn, struct msg *msg);
/* Closes incoming CONN once what is queued on it has gone out (WHY, a
 * static string, is logged); MSGR_EV_CLOSED follows as for any close. */
void msgr_conn_close_when_sent(struct msgr_conn *conn, const char *why);
/* Drops CONN's socket as an error would (ERR, WHY logged): MSGR_EV_DOWN
 * (outgoing, which reconnects) or MSGR_EV_CLOSED (incoming) is reported
 * from inside this call. What it was receiving is dropped, a lent data
 * buffer released once the receive into it has ended (see data_dest).
 * Nothing if it is not connected. */
void msgr_conn_reset(struct msgr_conn *conn, int err, const char *why);
/* Closes CONN; no callbacks for it after this returns. */
void msgr_conn_close(struct msgr_conn *conn);

bool msgr_conn_up(const struct msgr_conn *conn);
bool msgr_conn_outgoing(const struct msgr_conn *conn);
/* The authenticated peer entity ("" before MSGR_EV_UP). */
const char *msgr_conn_peer_name(const struct msgr_conn *conn);
/* Whether the peer's key came from our keyring (the cluster's own
 * entities), not from find_key (a client key of the map). */
bool msgr_conn_peer_in_keyring(const struct msgr_conn *conn);
/* The id (auth_key_id) of the key the connection was proven with. */
const uint8_t *msgr_conn_key_id(const struct msgr_conn *conn);
/* The key only the two ends of an UP connection share (auth_session_key):
 * seal what must cross it in secret with auth_seal. */
const uint8_t *msgr_conn_session_key(const struct msgr_conn *conn);
/* Calls FN for every connection of M; FN may msgr_conn_close its CONN. */
void msgr_for_each_conn(struct msgr *m, void (*fn)(struct msgr_conn *conn, void *arg),
			void *arg);
const char *msgr_conn_peer_addr(const struct msgr_conn *conn);
size_t msgr_conn_queued_bytes(const struct msgr_conn *conn);
void msgr_conn_set_ctx(struct msgr_conn *conn, void *ctx);
void *msgr_conn_ctx(const struct msgr_conn *conn);
struct msgr *msgr_conn_msgr(const struct msgr_conn *conn);

void *msgr_ctx(const struct msgr *m);
struct io_loop *msgr_loop(const struct msgr *m);
const struct msgr_stats *msgr_stats(const struct msgr *m);

#endif
