/* The start of every messenger connection: banners, then TLS in secure
 * mode (see msgr_int.h and docs/ARCHITECTURE.md, "Encrypted links").
 *
 *   initiator                               acceptor
 *   send banner ----------------------->    recv banner (8 bytes exactly)
 *   recv banner  <-----------------------   send banner
 *   modes differ: both log why and close
 *   secure: TLS 1.3 handshake (PSK: identity "ENTITY#KEYID", key derived
 *           from that entity's secret), then the channel binding
 *   -> msgr_conn_session_ready: HELLO/AUTH (auth.h), bound to the channel
 *
 * Ops run one at a time, so nothing of the banner and TLS can overlap on
 * the socket: the acceptor's banner is on the wire before its first TLS
 * record, and a receive never takes bytes meant for TLS. */
#include "msgr_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assert.h"
#include "config.h"
#include "log.h"
#include "number.h"
#include "why.h"

#define BINDING_LABEL "EXPORTER-basalt-msgr-v1"
#define PSK_LABEL "basalt-tls-psk-v1"

int msgr_mode_parse(const char *text, enum msgr_mode *out)
{
	if (!strcmp(text, "crc"))
		*out = MSGR_MODE_CRC;
	else if (!strcmp(text, "secure"))
		*out = MSGR_MODE_SECURE;
	else
		return -EINVAL;
	return 0;
}

const char *msgr_strerror(int err)
{
	if (err == -EACCES)
		return "refused our key (not in its keyring or map, or not the current one)";
	if (err == -EPROTONOSUPPORT)
		return "refused: it runs another ms_mode than ours (crc or secure)";
	return strerror(-err);
}

const char *msgr_mode_name(enum msgr_mode mode)
{
	return mode == MSGR_MODE_SECURE ? "secure" : "crc";
}

int msgr_params_config(struct cfg *cfg, const char *section, struct msgr_params *p, char *why,
		       size_t why_len)
{
	const char *mode;
	uint64_t conns, per_host, size, timeout_ms;
	if (cfg_get_str(cfg, section, "ms_mode", "crc", &mode) < 0 ||
	    cfg_get_duration_ms(cfg, section, "ms_handshake_timeout", p->handshake_timeout_ns / 1000000,
				10, 600000, &timeout_ms) < 0 ||
	    cfg_get_u64(cfg, section, "ms_max_connections", p->conns_max, 1, 1u << 20, &conns) < 0 ||
	    cfg_get_u64(cfg, section, "ms_max_connections_per_host", p->conns_per_host_max, 1,
			1u << 20, &per_host) < 0 ||
	    cfg_get_size(cfg, section, "ms_max_message_size", p->data_max, 4096, MSG_DATA_MAX_LIMIT,
			 &size) < 0)
		return why_set(why, why_len, -EINVAL, "%s", cfg_error(cfg));
	if (msgr_mode_parse(mode, &p->mode))
		return why_set(why, why_len, -EINVAL, "%s: ms_mode of [%s] must be crc or secure, not '%s'",
			       cfg_path(cfg), section, mode);
	p->handshake_timeout_ns = timeout_ms * 1000000;
	p->conns_max = (unsigned)conns;
	p->conns_per_host_max = (unsigned)per_host;
	p->data_max = (uint32_t)size;
	return 0;
}

/* --- PSKs -------------------------------------------------------------- */

/* "ENTITY#KEYID" (16 hex digits): who the initiator is and which of its
 * keys it holds, so the acceptor finds the secret before any message. */
static void psk_identity(const char *entity, const uint8_t id[AUTH_KEY_ID_LEN], char *out,
			 size_t len)
{
	char hex[2 * AUTH_KEY_ID_LEN + 1];
	number_hex_encode(id, AUTH_KEY_ID_LEN, hex);
	snprintf(out, len, "%s#%s", entity, hex);
}

/* The acceptor's PSK for IDENTITY: the entity's secret (keyring, or the
 * owner's find_key for the map's client keys), through auth_derive. */
static int psk_find(void *arg, const char *identity, uint8_t *key, size_t *key_len)
{
	struct msgr *m = arg;
	const char *hash = strrchr(identity, '#');
	char entity[KEYRING_NAME_MAX];
	uint8_t id[AUTH_KEY_ID_LEN], secret[KEYRING_KEY_LEN], our_id[AUTH_KEY_ID_LEN];
	if (!hash || (size_t)(hash - identity) >= sizeof(entity) ||
	    strlen(hash + 1) != 2 * AUTH_KEY_ID_LEN ||
	    number_hex_decode(hash + 1, id, AUTH_KEY_ID_LEN) || *key_len < KEYRING_KEY_LEN)
		return -ENOENT;
	snprintf(entity, sizeof(entity), "%.*s", (int)(hash - identity), identity);
	int rc = keyring_find(m->p.keyring, entity, secret);
	if (!rc && (auth_key_id(secret, our_id) || memcmp(our_id, id, sizeof(id))))
		rc = -EKEYREJECTED;
	if (rc == -ENOENT)
		rc = m->p.find_key ? m->p.find_key(m->p.ctx, entity, id, secret) : -ENOENT;
	if (!rc)
		rc = auth_derive(secret, PSK_LABEL, key);
	explicit_bzero(secret, sizeof(secret));
	*key_len = KEYRING_KEY_LEN;
	return rc ? -ENOENT : 0;
}

bool msgr_session_identity_is(struct msgr_conn *c, const char *name, const uint8_t *id)
{
	char want[KEYRING_NAME_MAX + 2 * AUTH_KEY_ID_LEN + 2];
	const char *have = tls_stream_psk_identity(c->tls);
	psk_identity(name, id, want, sizeof(want));
	return have && !strcmp(have, want);
}

int msgr_session_init(struct msgr *m)
{
	if (m->p.mode != MSGR_MODE_SECURE)
		return 0;
	char why[256], identity[KEYRING_NAME_MAX + 2 * AUTH_KEY_ID_LEN + 2];
	struct tls_config_params sp = { .role = TLS_SERVER, .psk_find = psk_find, .psk_arg = m };
	int rc = tls_config_create(&sp, &m->tls_server, why, sizeof(why));
	uint8_t secret[KEYRING_KEY_LEN], id[AUTH_KEY_ID_LEN], psk[KEYRING_KEY_LEN];
	if (!rc && keyring_find(m->p.keyring, m->name, secret) == 0) {
		/* Without our own key we only accept (msgr_connect says -ENOKEY). */
		rc = auth_key_id(secret, id) ? -EIO : auth_derive(secret, PSK_LABEL, psk);
		psk_identity(m->name, id, identity, sizeof(identity));
		struct tls_config_params cp = { .role = TLS_CLIENT, .psk_identity = identity,
						.psk_key = psk, .psk_key_len = sizeof(psk) };
		if (!rc)
			rc = tls_config_create(&cp, &m->tls_client, why, sizeof(why));
		explicit_bzero(secret, sizeof(secret));
		explicit_bzero(psk, sizeof(psk));
	}
	if (rc) {
		LOG_ERROR("cannot set up TLS for ms_mode = secure: %s", why);
		msgr_session_fini(m);
	}
	return rc;
}

void msgr_session_fini(struct msgr *m)
{
	tls_config_destroy(m->tls_server);
	tls_config_destroy(m->tls_client);
	m->tls_server = m->tls_client = NULL;
}

/* --- the banner and TLS ------------------------------------------------------ */

/* An op of the session ended badly, or after a teardown cancelled it. */
static void session_failed(struct msgr_conn *c, int res, const char *why)
{
	if (c->state == CONN_CLOSING)
		msgr_conn_op_ended(c);
	else
		msgr_conn_fail(c, res < 0 ? res : -ECONNRESET, why);
}

static void tls_handshake_done(struct io_op *op, int res)
{
	struct msgr_conn *c = op->ctx;
	if (c->state != CONN_HANDSHAKE || res < 0) {
		const char *why = c->tls ? tls_stream_why(c->tls) : "";
		if (c->state == CONN_HANDSHAKE && res == -EACCES)
			c->m->stats.auth_failures++;
		LOG_INFO("TLS with %s failed: %s", c->peer_addr, why[0] ? why : "cancelled");
		session_failed(c, res < 0 ? res : -ECANCELED, "TLS handshake failed");
		return;
	}
	c->binding_len = MSGR_BINDING_LEN;
	if (tls_stream_export(c->tls, BINDING_LABEL, c->binding, c->binding_len)) {
		msgr_conn_fail(c, -EPROTO, "cannot export the TLS channel binding");
		return;
	}
	msgr_conn_session_ready(c);
}

static void start_tls(struct msgr_conn *c)
{
	struct msgr *m = c->m;
	struct tls_config *cfg = c->outgoing ? m->tls_client : m->tls_server;
	int rc = cfg ? tls_stream_create(m->loop, cfg, c->fd, &c->tls) : -ENOKEY;
	if (rc) {
		msgr_conn_fail(c, rc, "cannot start TLS");
		return;
	}
	c->tls_closed = false;
	c->tls_op.ctx = c;
	c->tls_op.done = tls_handshake_done;
	tls_stream_handshake(c->tls, &c->tls_op);
}

static bool banner_ok(const uint8_t *b)
{
	return !memcmp(b, "BSLT", 4) && b[4] == 1 && (b[5] == MSGR_MODE_CRC || b[5] == MSGR_MODE_SECURE);
}

/* Both banners are known: go on, or refuse a peer of another mode. */
static void banners_exchanged(struct msgr_conn *c)
{
	struct msgr *m = c->m;
	char mode = (char)c->banner_in[5];
	if (!banner_ok(c->banner_in)) {
		m->stats.bad_frames++;
		msgr_conn_fail(c, -EPROTO, "not a Basalt messenger banner");
		return;
	}
	if (mode != (char)m->p.mode) {
		LOG_WARN("refusing %s connection %s: the peer runs ms_mode = %s, we run %s%s",
			 c->outgoing ? "outgoing" : "incoming", c->peer_addr,
			 msgr_mode_name((enum msgr_mode)mode), msgr_mode_name(m->p.mode),
			 m->p.mode == MSGR_MODE_SECURE ? " and never talk crc" : "");
		msgr_conn_fail(c, -EPROTONOSUPPORT, "ms_mode differs from the peer's");
		return;
	}
	if (m->p.mode == MSGR_MODE_SECURE)
		start_tls(c);
	else
		msgr_conn_session_ready(c);
}

static void banner_recv_done(struct io_op *op, int res);

static void banner_send_done(struct io_op *op, int res)
{
	struct msgr_conn *c = op->ctx;
	if (c->state != CONN_HANDSHAKE || res != MSGR_BANNER_LEN) {
		session_failed(c, res, "cannot send the banner");
		return;
	}
	c->m->stats.bytes_sent += MSGR_BANNER_LEN;
	if (c->outgoing) { /* then theirs */
		c->recv_op.ctx = c;
		c->recv_op.done = banner_recv_done;
		io_recv(c->m->loop, &c->recv_op, c->fd, c->banner_in, MSGR_BANNER_LEN);
	} else {
		banners_exchanged(c);
	}
}

static void send_banner(struct msgr_conn *c)
{
	memcpy(c->banner_out, "BSLT", 4);
	c->banner_out[4] = 1;
	c->banner_out[5] = (uint8_t)c->m->p.mode;
	c->banner_out[6] = c->banner_out[7] = 0;
	c->banner_iov = (struct iovec){ c->banner_out, MSGR_BANNER_LEN };
	c->send_op.ctx = c;
	c->send_op.done = banner_send_done;
	io_send(c->m->loop, &c->send_op, c->fd, &c->banner_iov, 1);
}

static void banner_recv_done(struct io_op *op, int res)
{
	struct msgr_conn *c = op->ctx;
	if (c->state != CONN_HANDSHAKE || res <= 0) {
		session_failed(c, res, res ? "receive failed" : "peer closed the connection");
		return;
	}
	c->m->stats.bytes_received += (uint64_t)res;
	c->banner_got += (size_t)res;
	if (c->banner_got < MSGR_BANNER_LEN) {
		io_recv(c->m->loop, &c->recv_op, c->fd, c->banner_in + c->banner_got,
			MSGR_BANNER_LEN - c->banner_got);
		return;
	}
	if (c->outgoing || !banner_ok(c->banner_in))
		banners_exchanged(c); /* junk is refused without a word */
	else
		send_banner(c); /* even to a peer of another mode: it learns why */
}

void msgr_session_start(struct msgr_conn *c)
{
	c->banner_got = 0;
	c->binding_len = 0;
	if (c->outgoing) {
		send_banner(c);
		return;
	}
	c->recv_op.ctx = c;
	c->recv_op.done = banner_recv_done;
	io_recv(c->m->loop, &c->recv_op, c->fd, c->banner_in, MSGR_BANNER_LEN);
}

/* --- the end ------------------------------------------------------------------- */

static void tls_close_done(struct io_op *op, int res)
{
	struct msgr_conn *c = op->ctx;
	(void)res;
	c->tls_closed = true;
	msgr_conn_op_ended(c);
}

void msgr_session_teardown(struct msgr_conn *c)
{
	BASALT_ASSERT(c->tls);
	c->tls_close_op.ctx = c;
	c->tls_close_op.done = tls_close_done;
	tls_stream_close(c->tls, &c->tls_close_op);
}

bool msgr_session_idle(const struct msgr_conn *c)
{
	return !c->tls || (!c->tls_op.in_flight && !c->tls_close_op.in_flight);
}

void msgr_session_free(struct msgr_conn *c)
{
	if (!c->tls)
		return;
	BASALT_ASSERT(msgr_session_idle(c));
	tls_stream_destroy(c->tls);
	c->tls = NULL;
}
