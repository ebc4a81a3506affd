/* TLS settings of a process (see tls.h): the SSL_CTX of one role with the
 * policy every Basalt TLS link shares, certificates and keys loaded up
 * front, and the external-PSK callbacks that bind a key to a TLS 1.3
 * session of a SHA-256 suite. */
#include "tls_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "why.h"

/* Server preference, SHA-256 suites first: an external PSK is bound to
 * TLS_AES_128_GCM_SHA256 and OpenSSL skips it when the suite it chose
 * hashes with SHA-384. */
#define TLS_SUITES "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384"
#define TLS_PSK_SUITES "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256"

/* OpenSSL's reason for the last failure, for a WHY. */
static const char *ssl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	return r ? r : "unknown OpenSSL error";
}

/* --- external PSKs ------------------------------------------------------- */

/* A TLS 1.3 session carrying KEY as external PSK, bound to
 * TLS_AES_128_GCM_SHA256 (see TLS_SUITES). NULL when out of memory. */
static SSL_SESSION *psk_session(SSL *ssl, const uint8_t *key, size_t key_len)
{
	static const unsigned char aes128_sha256[] = { 0x13, 0x01 };
	const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, aes128_sha256);
	SSL_SESSION *sess = SSL_SESSION_new();
	if (!cipher || !sess || !SSL_SESSION_set1_master_key(sess, key, key_len) ||
	    !SSL_SESSION_set_cipher(sess, cipher) ||
	    !SSL_SESSION_set_protocol_version(sess, TLS1_3_VERSION)) {
		SSL_SESSION_free(sess);
		return NULL;
	}
	return sess;
}

/* IDENTITY (LEN bytes from the wire) as a string for logs: printable
 * ASCII kept, anything else '?'. Whether it was all printable. */
static bool identity_copy(char *dst, const unsigned char *identity, size_t len)
{
	bool printable = true;
	for (size_t i = 0; i < len; i++) {
		printable &= identity[i] >= 0x20 && identity[i] < 0x7f;
		dst[i] = identity[i] >= 0x20 && identity[i] < 0x7f ? (char)identity[i] : '?';
	}
	dst[len] = '\0';
	return printable;
}

/* Server: the client offered IDENTITY; its key comes from psk_find. An
 * unknown identity ends the handshake (returning 0) rather than falling
 * back to certificates: a PSK client cannot use those. */
static int psk_find_session(SSL *ssl, const unsigned char *identity, size_t identity_len,
			    SSL_SESSION **sess)
{
	struct tls_stream *s = SSL_get_app_data(ssl);
	struct tls_config *cfg = s->cfg;
	*sess = NULL;
	if (!cfg->psk_find)
		return 1; /* no PSKs here: certificates */
	char id[TLS_PSK_IDENTITY_MAX + 1];
	bool fits = identity_len <= TLS_PSK_IDENTITY_MAX;
	bool printable = identity_copy(id, identity, fits ? identity_len : TLS_PSK_IDENTITY_MAX);
	uint8_t key[TLS_PSK_KEY_MAX];
	size_t key_len = sizeof(key);
	if (!fits || !printable || !identity_len ||
	    cfg->psk_find(cfg->psk_arg, id, key, &key_len)) {
		snprintf(s->why, sizeof(s->why), "unknown PSK identity '%s'", id);
		s->refused = true;
		return 0;
	}
	if (!key_len || key_len > TLS_PSK_KEY_MAX)
		return 0;
	*sess = psk_session(ssl, key, key_len);
	OPENSSL_cleanse(key, sizeof(key));
	snprintf(s->psk_identity, sizeof(s->psk_identity), "%s", id);
	return *sess ? 1 : 0;
}

/* Client: offer the configured identity and key. MD is set when the
 * server asked again (HelloRetryRequest) with a suite already chosen: the
 * PSK only fits a SHA-256 one. */
static int psk_use_session(SSL *ssl, const EVP_MD *md, const unsigned char **id,
			   size_t *id_len, SSL_SESSION **sess)
{
	struct tls_stream *s = SSL_get_app_data(ssl);
	struct tls_config *cfg = s->cfg;
	*sess = NULL;
	*id = NULL;
	*id_len = 0;
	if (md && !EVP_MD_is_a(md, "SHA256"))
		return 1;
	*sess = psk_session(ssl, cfg->psk_key, cfg->psk_key_len);
	if (!*sess)
		return 0;
	*id = (const unsigned char *)cfg->psk_identity;
	*id_len = strlen(cfg->psk_identity);
	return 1;
}

void tls_config_attach(struct tls_config *cfg, SSL *ssl)
{
	if (cfg->role == TLS_SERVER)
		SSL_set_psk_find_session_callback(ssl, psk_find_session);
	else if (cfg->psk_key_len)
		SSL_set_psk_use_session_callback(ssl, psk_use_session);
}

/* --- building a config ----------------------------------------------------- */

/* The policy of tls.h's top on a new context. */
static SSL_CTX *ctx_new(enum tls_role role, bool psk_only)
{
	SSL_CTX *ctx = SSL_CTX_new(role == TLS_SERVER ? TLS_server_method() : TLS_client_method());
	if (!ctx)
		return NULL;
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_ciphersuites(ctx, psk_only ? TLS_PSK_SUITES : TLS_SUITES) ||
	    !SSL_CTX_set_num_tickets(ctx, 0) || !SSL_CTX_set_max_early_data(ctx, 0)) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	/* The end of the connection between records reads as close_notify:
	 * NBD and the messenger frame their own messages, and libnbd and qemu
	 * do not always say goodbye. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION |
					 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION |
					 SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* A client verifies whatever certificate it is shown, so a PSK-only
	 * client (no CA) refuses a server that answers with one. */
	if (role == TLS_CLIENT)
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* Records are gathered by the stream; a record may leave in pieces. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_read_ahead(ctx, 1);
	return ctx;
}

/* Server: DIR/server-cert.pem and DIR/server-key.pem, and with VERIFY
 * client certificates checked against DIR/ca-cert.pem. */
static int load_server_certs(SSL_CTX *ctx, const char *dir, bool verify, char *why,
			     size_t why_len)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/server-cert.pem", dir);
	if (SSL_CTX_use_certificate_chain_file(ctx, path) != 1)
		return why_set(why, why_len, -EINVAL, "%s: %s", path, ssl_reason());
	snprintf(path, sizeof(path), "%s/server-key.pem", dir);
	if (SSL_CTX_use_PrivateKey_file(ctx, path, SSL_FILETYPE_PEM) != 1)
		return why_set(why, why_len, -EINVAL, "%s: %s", path, ssl_reason());
	if (SSL_CTX_check_private_key(ctx) != 1)
		return why_set(why, why_len, -EINVAL, "%s does not match %s/server-cert.pem: %s",
			       path, dir, ssl_reason());
	if (!verify)
		return 0;
	snprintf(path, sizeof(path), "%s/ca-cert.pem", dir);
	STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(path);
	if (!names || SSL_CTX_load_verify_file(ctx, path) != 1) {
		sk_X509_NAME_pop_free(names, X509_NAME_free);
		return why_set(why, why_len, -EINVAL, "%s (to verify clients): %s", path,
			       ssl_reason());
	}
	SSL_CTX_set_client_CA_list(ctx, names);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	return 0;
}

/* Client: the CA to verify the server with, and a certificate of our own. */
static int load_client_certs(SSL_CTX *ctx, const struct tls_config_params *p, char *why,
			     size_t why_len)
{
	if (p->ca_file) {
		if (SSL_CTX_load_verify_file(ctx, p->ca_file) != 1)
			return why_set(why, why_len, -EINVAL, "%s: %s", p->ca_file, ssl_reason());
	}
	if (!p->cert_file)
		return 0;
	if (SSL_CTX_use_certificate_chain_file(ctx, p->cert_file) != 1)
		return why_set(why, why_len, -EINVAL, "%s: %s", p->cert_file, ssl_reason());
	const char *key = p->key_file ? p->key_file : p->cert_file;
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1)
		return why_set(why, why_len, -EINVAL, "%s: %s", key, ssl_reason());
	return 0;
}

/* What each role needs; -EINVAL with WHY otherwise. */
static int params_check(const struct tls_config_params *p, char *why, size_t why_len)
{
	if (p->role == TLS_SERVER && !p->cert_dir && !p->psk_find)
		return why_set(why, why_len, -EINVAL, "a TLS server needs certificates or PSKs");
	if (p->role == TLS_CLIENT && !p->ca_file && !p->psk_key_len)
		return why_set(why, why_len, -EINVAL, "a TLS client needs a CA file or a PSK");
	if (p->psk_key_len && (!p->psk_identity || !p->psk_identity[0] ||
			       strlen(p->psk_identity) > TLS_PSK_IDENTITY_MAX ||
			       p->psk_key_len > TLS_PSK_KEY_MAX))
		return why_set(why, why_len, -EINVAL,
			       "a PSK needs an identity of 1 to %d bytes and at most %d bytes of key",
			       TLS_PSK_IDENTITY_MAX, TLS_PSK_KEY_MAX);
	return 0;
}

int tls_config_create(const struct tls_config_params *p, struct tls_config **out, char *why,
		      size_t why_len)
{
	int rc = params_check(p, why, why_len);
	if (rc)
		return rc;
	struct tls_config *cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		return why_set(why, why_len, -ENOMEM, "out of memory");
	cfg->role = p->role;
	bool psk_only = p->role == TLS_SERVER ? !p->cert_dir : !p->ca_file;
	ERR_clear_error();
	cfg->ctx = ctx_new(p->role, psk_only);
	if (!cfg->ctx || !tls_bio_method_new())
		rc = why_set(why, why_len, -ENOMEM, "cannot set up OpenSSL: %s", ssl_reason());
	else if (p->role == TLS_SERVER && p->cert_dir)
		rc = load_server_certs(cfg->ctx, p->cert_dir, p->verify_peer, why, why_len);
	else if (p->role == TLS_CLIENT)
		rc = load_client_certs(cfg->ctx, p, why, why_len);
	if (rc) {
		tls_config_destroy(cfg);
		return rc;
	}
	cfg->has_certs = p->role == TLS_SERVER && p->cert_dir;
	cfg->psk_find = p->psk_find;
	cfg->psk_arg = p->psk_arg;
	if (p->psk_key_len) {
		snprintf(cfg->psk_identity, sizeof(cfg->psk_identity), "%s", p->psk_identity);
		memcpy(cfg->psk_key, p->psk_key, p->psk_key_len);
		cfg->psk_key_len = p->psk_key_len;
	}
	*out = cfg;
	return 0;
}

void tls_config_destroy(struct tls_config *cfg)
{
	if (!cfg)
		return;
	SSL_CTX_free(cfg->ctx);
	OPENSSL_cleanse(cfg->psk_key, sizeof(cfg->psk_key));
	free(cfg);
}
