/* What only common/tls*.c see: the config behind struct tls_config, the
 * stream's buffers and state (tls.c), and the glue between them — the PSK
 * callbacks of tls_config.c reach the stream through SSL's app data. */
#ifndef BASALT_COMMON_TLS_INT_H
#define BASALT_COMMON_TLS_INT_H

#include <openssl/ssl.h>

#include "tls.h"

struct tls_config {
	enum tls_role role;
	SSL_CTX *ctx;
	bool has_certs;		/* server: a certificate to show */
	tls_psk_find_fn psk_find;
	void *psk_arg;
	char psk_identity[TLS_PSK_IDENTITY_MAX + 1]; /* client */
	uint8_t psk_key[TLS_PSK_KEY_MAX];
	size_t psk_key_len;
};

/* A user operation's slot: OP while it is in flight; READY once its result
 * RES is final and waits to be delivered. */
struct tls_slot {
	struct io_op *op;
	bool ready;
	int res;
};

enum tls_stream_state {
	TLS_ST_NEW,	    /* created; nothing on the wire */
	TLS_ST_HANDSHAKE,   /* tls_stream_handshake running */
	TLS_ST_OPEN,	    /* records flow both ways */
	TLS_ST_FAILED,	    /* SSL is never called again; ops fail with err */
	TLS_ST_CLOSING,	    /* tls_stream_close: draining the socket ops */
	TLS_ST_CLOSED,	    /* nothing in flight; may be destroyed */
};

struct tls_stream {
	struct io_loop *loop;
	struct tls_config *cfg; /* borrowed */
	int fd;			/* borrowed */
	SSL *ssl;
	enum tls_stream_state state;
	int err; /* the first failure; 0 while healthy */
	char why[512];
	char psk_identity[TLS_PSK_IDENTITY_MAX + 1]; /* server: the client's */
	char describe[96];
	bool refused; /* the handshake refused the peer's credentials */

	/* The owner's operations. */
	struct tls_slot hs, rx, tx, close;
	void *rx_buf;
	size_t rx_len, rx_got;
	const struct iovec *tx_iov;
	int tx_iovcnt, tx_idx;
	size_t tx_off;	  /* into tx_iov[tx_idx] */
	size_t tx_done;	  /* plaintext bytes encrypted */
	uint64_t tx_mark; /* out_total once they were: sent when out_sent reaches it */
	bool tx_all;	  /* every byte of the send is encrypted */
	bool tx_retry;	  /* OpenSSL wants SSL_write again with the same bytes */
	uint8_t *stage;	  /* small iovecs gathered into one record */

	/* Ciphertext in: io_recv fills [in_tail, in_cap), OpenSSL reads
	 * [in_head, in_tail) through the BIO. */
	struct io_op net_rx;
	uint8_t *in;
	size_t in_head, in_tail;
	bool in_eof;
	bool want_rx; /* OpenSSL found the input empty */
	/* Ciphertext out: OpenSSL appends at out_tail through the BIO;
	 * io_send sends [out_head, out_head + out_inflight). */
	struct io_op net_tx;
	uint8_t *out;
	size_t out_head, out_tail, out_inflight;
	struct iovec net_iov;
	uint64_t out_total, out_sent;
	bool net_dead; /* the socket failed: nothing more goes on it */

	struct io_timer defer;	/* delivers results produced inside a call */
	struct io_timer linger; /* bounds the close's last send */
	bool delivering;
};

/* tls_config.c: sets the server's PSK callback and the client's on a new
 * stream's SSL (the callbacks find the stream in SSL's app data). */
void tls_config_attach(struct tls_config *cfg, SSL *ssl);
/* tls.c: the BIO type streams read and write their buffers through. */
BIO_METHOD *tls_bio_method_new(void);

#endif
