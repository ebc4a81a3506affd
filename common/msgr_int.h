/* The messenger's internals, shared by msgr.c (connections, frames,
 * authentication) and msgr_session.c (the banner that opens every
 * connection and, in secure mode, TLS under everything after it). */
#ifndef BASALT_COMMON_MSGR_INT_H
#define BASALT_COMMON_MSGR_INT_H

#include <sys/uio.h>

#include "auth.h"
#include "list.h"
#include "msgr.h"
#include "tls.h"

/* Every connection opens with an 8-byte banner from each side, in the
 * clear: "BSLT", version 1, the ms_mode ('c' crc, 's' secure), 2 zero
 * bytes. A peer whose mode differs is refused (one log line each side):
 * a secure peer never talks crc, and neither side guesses. */
#define MSGR_BANNER_LEN 8
#define MSGR_BINDING_LEN 32

#define MSGR_RXBUF_LEN (64 * 1024)
#define MSGR_DIRECT_MIN (16 * 1024)
#define MSGR_IOV_MAX 64
#define MSGR_PREAUTH_PAYLOAD_MAX 512
#define MSGR_PROTO MSG_HELLO_PROTO

_Static_assert(MSG_NAME_MAX == KEYRING_NAME_MAX, "entity names");
_Static_assert(MSG_NONCE_LEN == AUTH_NONCE_LEN, "nonces");
_Static_assert(MSG_PROOF_LEN == AUTH_PROOF_LEN, "proofs");

enum conn_state {
	CONN_CONNECTING,
	CONN_HANDSHAKE,
	CONN_UP,
	CONN_CLOSING,
	CONN_BACKOFF,
};

enum auth_step {
	AUTH_STEP_BANNER,	/* both: banners, then TLS in secure mode (msgr_session.c) */
	AUTH_STEP_WAIT_HELLO,	/* both: the peer's HELLO */
	AUTH_STEP_WAIT_AUTH,	/* acceptor: the initiator's proof */
	AUTH_STEP_WAIT_AUTH_OK, /* initiator: the acceptor's verdict */
	AUTH_STEP_REFUSED,	/* acceptor: AUTH_FAIL going out; then closed */
};

struct msgr_conn {
	struct list_node node; /* msgr->conns */
	struct msgr *m;
	bool outgoing;
	bool doomed; /* free once idle: incoming, or closed by the owner */
	bool closed_by_owner;
	bool was_up;
	bool reported_down;
	enum conn_state state;
	enum auth_step step;
	int fd;
	unsigned holds; /* callbacks running on this conn */
	bool fail_when_sent; /* close once the send queue is empty */
	int fail_err;	     /* ...with this error and reason */
	const char *fail_why;

	char host[256];
	uint16_t port;
	char peer_addr[64];
	char peer_name[KEYRING_NAME_MAX];
	bool peer_in_keyring;
	void *owner_ctx; /* msgr_conn_set_ctx */
	uint8_t key[KEYRING_KEY_LEN];
	uint8_t key_id[AUTH_KEY_ID_LEN];
	uint8_t session[KEYRING_KEY_LEN];
	uint8_t nonce_initiator[AUTH_NONCE_LEN];
	uint8_t nonce_acceptor[AUTH_NONCE_LEN];

	struct io_op connect_op, recv_op, send_op;
	/* The session's start (msgr_session.c): our banner and the peer's,
	 * and in secure mode the TLS stream, its handshake and close ops and
	 * the channel binding (exported keying material) the proofs cover. */
	uint8_t banner_out[MSGR_BANNER_LEN], banner_in[MSGR_BANNER_LEN];
	size_t banner_got;
	struct iovec banner_iov;
	struct tls_stream *tls;
	struct io_op tls_op, tls_close_op;
	bool tls_closed;
	uint8_t binding[MSGR_BINDING_LEN];
	size_t binding_len;
	struct io_timer timer;
	uint64_t last_rx_ns, last_tx_ns;
	uint64_t backoff_ns;

	struct msg_rx rx;
	uint8_t *rxbuf;
	bool rx_direct;

	struct list_node sendq; /* on the wire next, in order */
	struct list_node pendq; /* user messages waiting for UP */
	size_t sendq_bytes;
	unsigned sendq_msgs;
	size_t send_off; /* bytes of sendq's head already sent */
	struct iovec iov[MSGR_IOV_MAX];
	bool want_writable;
};

struct msgr {
	struct io_loop *loop;
	struct msgr_params p;
	char name[KEYRING_NAME_MAX];
	struct msg_limits limits_preauth, limits_up;
	struct list_node conns;
	unsigned conn_count;
	int listen_fd;
	struct io_op accept_op;
	struct io_timer accept_timer;
	struct tls_config *tls_server, *tls_client; /* secure mode */
	bool destroying;
	struct msgr_stats stats;
};


/* msgr.c */
void msgr_conn_fail(struct msgr_conn *c, int err, const char *why);
/* An op of C ended while it is CLOSING: finishes the close once idle. */
void msgr_conn_op_ended(struct msgr_conn *c);
/* The banner (and TLS) are done: authentication starts. */
void msgr_conn_session_ready(struct msgr_conn *c);
/* Socket I/O of an UP or authenticating connection: through TLS in secure
 * mode, straight to the loop otherwise. */
void msgr_conn_recv(struct msgr_conn *c, void *buf, size_t len);
void msgr_conn_send(struct msgr_conn *c, const struct iovec *iov, int n);

/* msgr_session.c */
/* Builds M's TLS settings for secure mode. 0 or -errno (logged). */
int msgr_session_init(struct msgr *m);
void msgr_session_fini(struct msgr *m);
/* Exchanges banners on C's fresh socket, then runs TLS in secure mode;
 * msgr_conn_session_ready or msgr_conn_fail follows. */
void msgr_session_start(struct msgr_conn *c);
/* Teardown: cancels C's session ops; true when something is still in
 * flight (conn_try_finish is called again when it ends). */
void msgr_session_teardown(struct msgr_conn *c);
bool msgr_session_idle(const struct msgr_conn *c);
/* Whether C's TLS PSK identity is NAME with key ID (secure mode). */
bool msgr_session_identity_is(struct msgr_conn *c, const char *name, const uint8_t *id);
/* Frees C's TLS stream (nothing of it in flight). */
void msgr_session_free(struct msgr_conn *c);

#endif
