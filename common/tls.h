/* TLS 1.3 streams over the event loop (OpenSSL 3): a connection's owner
 * swaps io_recv/io_send for tls_stream_recv/tls_stream_send, with the same
 * contract — caller-owned struct io_op, done(op, res) always later from
 * the loop, res = plaintext bytes (a recv may return fewer than asked, 0 at
 * the peer's end) or -errno. basalt-nbd's STARTTLS uses it, and the
 * messenger's secure mode is meant to.
 *
 * OpenSSL never touches the socket: it reads and writes through a BIO of
 * our own over two buffers, and the stream moves ciphertext between those
 * and the fd with io_recv/io_send on the loop (the ring owns the socket).
 * That is also why there is no kernel TLS (SSL_OP_ENABLE_KTLS): OpenSSL
 * can only hand the keys to the kernel for a socket BIO it drives itself,
 * not through memory BIOs, and the kernels this runs on may lack the `tls`
 * ULP anyway (the development VM offers only mptcp in
 * /proc/sys/net/ipv4/tcp_available_ulp). Doing it would mean setting
 * TCP_ULP and the crypto_info from exported secrets by hand and sending
 * plaintext through the ring: left undone.
 *
 * Policy, for both roles: TLS 1.3 only, no 0-RTT, no session tickets, no
 * resumption. X.509 as nbdkit and qemu lay it out (a directory with
 * ca-cert.pem, server-cert.pem, server-key.pem), or an external PSK
 * bound to a SHA-256 suite with ECDHE (psk_dhe_ke): GnuTLS clients
 * (libnbd, qemu) refuse a PSK bound to the SHA-384 suite, and
 * SSL_OP_ALLOW_NO_DHE_KEX stays off so a leaked PSK does not expose past
 * sessions. */
#ifndef BASALT_COMMON_TLS_H
#define BASALT_COMMON_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "io/loop.h"

#define TLS_PSK_KEY_MAX 64	 /* bytes; psktool's default is 32 */
#define TLS_PSK_IDENTITY_MAX 255 /* bytes */

/* Maps a client's PSK IDENTITY to its key: copies it into KEY (room for
 * *KEY_LEN bytes, TLS_PSK_KEY_MAX) and sets *KEY_LEN. 0, or -ENOENT for an
 * unknown identity (the handshake then fails). Runs on the loop's thread
 * during a server handshake. */
typedef int (*tls_psk_find_fn)(void *arg, const char *identity, uint8_t *key /* out */,
			       size_t *key_len /* in/out */);

enum tls_role {
	TLS_SERVER,
	TLS_CLIENT,
};

/* What a tls_config is made of; strings and keys are copied or read at
 * tls_config_create, nothing is borrowed after it returns (but psk_arg). */
struct tls_config_params {
	enum tls_role role;
	/* Server, X.509: DIR/server-cert.pem (a chain) and DIR/server-key.pem;
	 * with verify_peer, clients must present a certificate signed by
	 * DIR/ca-cert.pem. */
	const char *cert_dir;
	bool verify_peer;
	/* Server, PSK: identities looked up by psk_find(psk_arg, ...); psk_arg
	 * is borrowed for the config's life. May be combined with cert_dir. */
	tls_psk_find_fn psk_find;
	void *psk_arg;
	/* Client, PSK: the identity and key to offer. */
	const char *psk_identity;
	const uint8_t *psk_key;
	size_t psk_key_len;
	/* Client, X.509: the CA file that must have signed the server's
	 * certificate; optionally a certificate and key of our own (for a
	 * server with verify_peer). */
	const char *ca_file;
	const char *cert_file, *key_file;
};

struct tls_config;
struct tls_stream;

/* Builds the process's TLS settings for one role (loads certificates and
 * keys now, so a mistake is said at start). 0, or -errno with WHY naming
 * the file and OpenSSL's reason. Caller frees with tls_config_destroy,
 * after every stream made from it. */
int tls_config_create(const struct tls_config_params *p, struct tls_config **out /* out */,
		      char *why, size_t why_len);
void tls_config_destroy(struct tls_config *cfg);

/* --- streams ----------------------------------------------------------- */

/* A TLS stream over the connected socket FD in CFG's role. FD and CFG are
 * borrowed: FD until the stream is destroyed (the caller closes it after),
 * CFG for the stream's life. Nothing is sent or read until
 * tls_stream_handshake. 0 or -ENOMEM. */
int tls_stream_create(struct io_loop *loop, struct tls_config *cfg, int fd,
		      struct tls_stream **out /* out */);
/* Client role: the name sent as SNI and checked against the server's
 * certificate (DNS name or IP address). Before the handshake. 0 or -errno. */
int tls_stream_set_server_name(struct tls_stream *s, const char *name);

/* Runs the handshake; OP->done(op, 0 or -errno) when it ends. Nothing may
 * be received or sent on S before it succeeded. Errors: -EACCES when
 * credentials were refused (a certificate that does not verify, a PSK
 * that does not match or an unknown identity — by us or, through an
 * alert, by the peer), -ECONNRESET when the peer closed the connection,
 * -EPROTO for any other TLS failure, or the socket's own error;
 * tls_stream_why says more. OP is borrowed until done. */
void tls_stream_handshake(struct tls_stream *s, struct io_op *op);

/* As io_recv: up to LEN plaintext bytes into BUF (borrowed until done).
 * res > 0 bytes, 0 once the peer closed (close_notify, or the
 * connection's end between records), -errno (a bad record or an alert:
 * -EPROTO). At most one recv in flight. */
void tls_stream_recv(struct tls_stream *s, struct io_op *op, void *buf, size_t len);
/* As io_send: IOV (borrowed until done) is encrypted in records of up to
 * 16 KiB (small iovecs share records) and done(op, n) comes once all N
 * bytes are in the kernel, or -errno. At most one send in flight. */
void tls_stream_send(struct tls_stream *s, struct io_op *op, const struct iovec *iov,
		     int iovcnt);
/* As io_cancel: OP (the handshake, recv or send of S) completes with
 * -ECANCELED, later from the loop; no-op when OP is not in flight. A
 * cancelled handshake fails the stream; after a cancelled send the stream
 * still sends what it had encrypted (the record stream stays whole). */
void tls_stream_cancel(struct tls_stream *s, struct io_op *op);

/* Ends the stream: cancels the handshake, recv and send in flight, sends
 * close_notify when the stream is healthy, and calls OP->done(op, 0) once
 * the stream has nothing in flight on the socket — within about
 * TLS_CLOSE_LINGER_MS when the peer does not read. Then the caller may
 * close the fd and destroy S (from OP's done, too). */
#define TLS_CLOSE_LINGER_MS 1000
void tls_stream_close(struct tls_stream *s, struct io_op *op);
/* Frees S: nothing of it may be in flight (it was never used, or
 * tls_stream_close completed). Does not close the fd. */
void tls_stream_destroy(struct tls_stream *s);

/* Why the stream failed ("" while it has not): OpenSSL's reason, e.g.
 * "certificate verify failed (self-signed certificate)". Owned by S. */
const char *tls_stream_why(const struct tls_stream *s);
/* After the handshake: the PSK identity the client used (server role),
 * or NULL for an X.509 session. Owned by S. */
const char *tls_stream_psk_identity(const struct tls_stream *s);
/* After the handshake: "TLSv1.3 TLS_AES_128_GCM_SHA256". Owned by S. */
const char *tls_stream_describe(struct tls_stream *s);
/* RFC 8446 keying material exporter (SSL_export_keying_material) with
 * LABEL and no context: LEN bytes into OUT, the same on both ends of this
 * session only — for binding an authentication to the channel. 0, -ENOTCONN
 * before the handshake, -EINVAL. */
int tls_stream_export(struct tls_stream *s, const char *label, uint8_t *out /* out */,
		      size_t len);

/* --- PSK files ---------------------------------------------------------- */

/* A PSK file in GnuTLS psktool's format (as nbdkit and qemu read it): one
 * "identity:hexkey" a line; blank lines and lines starting with '#' are
 * skipped. */
struct tls_psk_file;

/* Loads PATH. Refuses a file others may read or write (chmod o-rwx), bad
 * lines (WHY names PATH:LINE), duplicate identities, keys that are not
 * 1..TLS_PSK_KEY_MAX bytes of hex, and a file without keys. Caller frees. */
int tls_psk_file_load(const char *path, struct tls_psk_file **out /* out */, char *why,
		      size_t why_len);
void tls_psk_file_free(struct tls_psk_file *f);
/* A tls_psk_find_fn over a loaded file (ARG: the struct tls_psk_file);
 * with KEY and KEY_LEN NULL it only says whether IDENTITY is there. */
int tls_psk_file_find(void *arg, const char *identity, uint8_t *key /* out */,
		      size_t *key_len /* in/out */);

#endif
