/* The synchronous monitor client (see monc.h). */
#include "monc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/auth.h"
#include "common/enc.h"
#include "common/keyring.h"
#include "common/log.h"
#include "common/msgr.h"
/* How long every monitor may refuse connections (or be unreachable)
 * before a call gives up: a monitor being restarted listens within this,
 * and a port nobody listens on is reported this soon instead of after the
 * whole timeout. */
#define MONC_REFUSED_GRACE_NS IO_SEC(2)

/* What the last attempt on a monitor came to, for the error that names
 * every monitor tried. */
enum monc_seen {
	MONC_SEEN_NOT_TRIED,
	MONC_SEEN_DOWN,		/* its connection failed: err[] says how */
	MONC_SEEN_NOT_CONNECTED, /* not connected in time (SYNs unanswered?) */
	MONC_SEEN_NO_REPLY,	/* connected, no reply in time */
	MONC_SEEN_NO_LEADER,	/* answered: it knows no leader */
	MONC_SEEN_ANSWERED,
};

struct monc {
	struct io_loop *loop;
	struct msgr *msgr;
	struct keyring *keyring;
	struct mon_member members[MON_MAX_MEMBERS];
	int n;
	struct msgr_conn *conns[MON_MAX_MEMBERS];
	uint64_t timeout_ns;
	int target; /* where commands go next */
	uint64_t client_id, next_req, next_msg_id;
	bool down[MON_MAX_MEMBERS]; /* its connection is lost and not yet back up */
	bool refused[MON_MAX_MEMBERS]; /* it refused our key (-EACCES) */
	int err[MON_MAX_MEMBERS];      /* why its connection went down, or 0 */
	enum monc_seen seen[MON_MAX_MEMBERS];
	char entity[64];
	/* The reply being waited for. */
	uint64_t want_id;
	struct msg *reply;
};

static void on_message(struct msgr_conn *conn, struct msg *msg)
{
	struct monc *mc = msgr_ctx(msgr_conn_msgr(conn));
	if (msg->hdr.request_id == mc->want_id && !mc->reply)
		mc->reply = msg;
	else
		msg_free(msg);
}

static void on_event(struct msgr_conn *conn, enum msgr_event ev, int err)
{
	struct monc *mc = msgr_ctx(msgr_conn_msgr(conn));
	for (int i = 0; i < mc->n; i++)
		if (mc->conns[i] == conn) {
			mc->down[i] = ev == MSGR_EV_DOWN; /* UP clears it */
			mc->refused[i] = ev == MSGR_EV_DOWN && err == -EACCES;
			mc->err[i] = ev == MSGR_EV_DOWN ? (err ? err : -ECONNRESET) : 0;
		}
}

static bool type_ok(uint16_t type, void *arg)
{
	(void)arg;
	return type == MON_MSG_MAP || type == MON_MSG_COMMAND_REPLY ||
	       type == MON_MSG_MON_STATUS_REPLY ||
	       type == MON_MSG_PG_STATS_REPLY;
}

static const struct msgr_handler monc_handler = { .on_message = on_message,
						  .on_event = on_event,
						  .type_ok = type_ok };

int monc_open(struct cfg *cfg, const struct monc_params *p, struct monc **out, char *why,
	      size_t why_len)
{
	struct monc *mc = calloc(1, sizeof(*mc));
	if (!mc)
		return -ENOMEM;
	int rc = mon_members(cfg, mc->members, &mc->n, why, why_len);
	if (!rc)
		rc = keyring_load(p->keyring, &mc->keyring, why, why_len);
	if (!rc && (rc = io_loop_create_uring(NULL, &mc->loop)))
		snprintf(why, why_len, "cannot set up io_uring: %s", strerror(-rc));
	if (rc) {
		monc_close(mc);
		return rc;
	}
	struct msgr_params mp;
	msgr_params_default(&mp);
	mp.name = p->entity;
	mp.keyring = mc->keyring;
	mp.handler = &monc_handler;
	mp.ctx = mc;
	mp.backoff_max_ns = IO_MS(200);
	if ((rc = msgr_params_config(cfg, p->entity, &mp, why, why_len))) {
		monc_close(mc);
		return rc;
	}
	if ((rc = msgr_create(mc->loop, &mp, &mc->msgr))) {
		snprintf(why, why_len, "cannot start the messenger: %s", strerror(-rc));
		monc_close(mc);
		return rc;
	}
	for (int i = 0; i < mc->n; i++) {
		rc = msgr_connect(mc->msgr, mc->members[i].host, mc->members[i].port, &mc->conns[i]);
		if (rc) {
			snprintf(why, why_len, rc == -ENOKEY ? "%s is not in the keyring %s"
							     : "cannot connect as %s (%s)",
				 p->entity, p->keyring);
			monc_close(mc);
			return rc;
		}
	}
	if (getrandom(&mc->client_id, sizeof(mc->client_id), 0) != sizeof(mc->client_id) ||
	    !mc->client_id)
		mc->client_id = (uint64_t)io_now_ns(mc->loop) | 1;
	mc->timeout_ns = IO_MS(p->timeout_ms ? p->timeout_ms : 30000);
	snprintf(mc->entity, sizeof(mc->entity), "%s", p->entity);
	mc->target = p->prefer >= 0 && p->prefer < mc->n ? p->prefer : 0;
	*out = mc;
	return 0;
}

void monc_close(struct monc *mc)
{
	if (!mc)
		return;
	msg_free(mc->reply);
	msgr_destroy(mc->msgr);
	io_loop_destroy(mc->loop);
	keyring_free(mc->keyring);
	free(mc);
}

const struct mon_member *monc_members(const struct monc *mc, int *n)
{
	*n = mc->n;
	return mc->members;
}

/* Sends MSG to monitor I and waits until its reply or DEADLINE. A monitor
 * that does not answer within 2 s is given up on; one whose connection is
 * lost is given one reconnect attempt (the messenger retries within
 * 200 ms) before it is, and one not connected within 500 ms (unreachable:
 * its SYNs go unanswered) is left for the next, so a dead or cut-off
 * monitor costs a fraction of a second. */
static struct msg *ask(struct monc *mc, int i, struct msg *msg, uint64_t deadline)
{
	mc->want_id = msg->hdr.request_id = ++mc->next_msg_id;
	msg_free(mc->reply);
	mc->reply = NULL;
	bool was_down = mc->down[i];
	if (msgr_send(mc->conns[i], msg)) {
		msg_free(msg);
		return NULL;
	}
	uint64_t start = io_now_ns(mc->loop);
	uint64_t attempt_end = start + IO_SEC(2), reconnect_end = start + IO_MS(300);
	if (attempt_end > deadline)
		attempt_end = deadline;
	while (!mc->reply) {
		uint64_t now = io_now_ns(mc->loop);
		if (now >= attempt_end)
			break;
		if (mc->down[i] && (!was_down || now >= reconnect_end))
			break; /* lost while asking, or did not come back */
		if (!msgr_conn_up(mc->conns[i]) && now >= start + IO_MS(500))
			break; /* not even connected yet: ask another one first */
		uint64_t until = mc->down[i] && reconnect_end < attempt_end ? reconnect_end
									   : attempt_end;
		io_loop_run_once(mc->loop, (int64_t)(until > now ? until - now : 0));
	}
	struct msg *r = mc->reply;
	mc->reply = NULL;
	mc->seen[i] = r		       ? MONC_SEEN_ANSWERED
		      : mc->down[i]	       ? MONC_SEEN_DOWN
		      : !msgr_conn_up(mc->conns[i]) ? MONC_SEEN_NOT_CONNECTED
						    : MONC_SEEN_NO_REPLY;
	return r;
}

/* "mon.a 127.0.0.1:6789: Connection refused; mon.b ...: no reply within
 * 2 s": what each monitor did at its last attempt, after HEAD. */
static void monc_explain(const struct monc *mc, const char *head, char *text, size_t text_len)
{
	size_t at = (size_t)snprintf(text, text_len, "%s", head);
	for (int i = 0; i < mc->n && at < text_len; i++) {
		const char *what = "not asked";
		switch (mc->seen[i]) {
		case MONC_SEEN_NOT_TRIED: break;
		case MONC_SEEN_DOWN: what = msgr_strerror(mc->err[i]); break;
		case MONC_SEEN_NOT_CONNECTED: what = "no connection within 0.5 s"; break;
		case MONC_SEEN_NO_REPLY: what = "connected, no reply within 2 s"; break;
		case MONC_SEEN_NO_LEADER: what = "answered: it knows no leader (no quorum?)"; break;
		case MONC_SEEN_ANSWERED: what = "answered"; break;
		}
		at += (size_t)snprintf(text + at, text_len - at, "%s mon.%s %s:%u: %s", i ? ";" : "",
				       mc->members[i].name, mc->members[i].host,
				       mc->members[i].port, what);
	}
}

/* Every monitor's connection (ONLY's, when >= 0) fails at once (refused,
 * no route) and has for MONC_REFUSED_GRACE_NS since START: waiting longer
 * would not help. Fills TEXT naming each. A timeout is not at once: those
 * are waited for. */
static bool monc_unreachable(const struct monc *mc, int only, uint64_t start, char *text,
			     size_t text_len)
{
	if (io_now_ns(mc->loop) < start + MONC_REFUSED_GRACE_NS)
		return false;
	for (int i = 0; i < mc->n; i++)
		if ((only < 0 || i == only) &&
		    (!mc->down[i] || mc->seen[i] != MONC_SEEN_DOWN || mc->err[i] == -ETIMEDOUT ||
		     mc->err[i] == -EACCES))
			return false;
	monc_explain(mc, "no monitor answered:", text, text_len);
	return true;
}

/* Monitors refused our key and none is left to try (the others are down):
 * no point in waiting. Fills WHY. */
static bool all_refused(const struct monc *mc, char *why, size_t why_len)
{
	int refused = 0;
	for (int i = 0; i < mc->n; i++) {
		if (!mc->refused[i] && !mc->down[i])
			return false;
		refused += mc->refused[i];
	}
	if (!refused)
		return false;
	snprintf(why, why_len, "the monitors refused the key of %s (not in their keyring or map)",
		 mc->entity);
	return true;
}

static int member_by_name(const struct monc *mc, const char *name)
{
	for (int i = 0; i < mc->n; i++)
		if (strcmp(mc->members[i].name, name) == 0)
			return i;
	return -1;
}

int monc_command(struct monc *mc, struct map_cmd *cmd, char *text, size_t text_len,
		 uint64_t *epoch)
{
	return monc_command_key(mc, cmd, text, text_len, epoch, NULL, NULL);
}

/* The new secret of reply CR, opened with the session key of the
 * connection it came on. */
static void reply_secret(struct monc *mc, const struct mon_command_reply *cr,
			 uint8_t secret[KEYRING_KEY_LEN], bool *has_secret)
{
	*has_secret = cr->has_secret &&
		      auth_open(msgr_conn_session_key(mc->conns[mc->target]), MON_SECRET_PURPOSE,
				cr->secret, sizeof(cr->secret), secret) == 0;
}

int monc_command_key(struct monc *mc, struct map_cmd *cmd, char *text, size_t text_len,
		     uint64_t *epoch, uint8_t secret[KEYRING_KEY_LEN], bool *has_secret)
{
	if (has_secret)
		*has_secret = false;
	cmd->client = mc->client_id;
	cmd->req = ++mc->next_req;
	uint8_t buf[MAP_CMD_MAX_LEN];
	int len = map_cmd_encode(cmd, buf, sizeof(buf));
	if (len < 0)
		return len;
	uint64_t start = io_now_ns(mc->loop), deadline = start + mc->timeout_ns;
	while (io_now_ns(mc->loop) < deadline) {
		if (all_refused(mc, text, text_len))
			return -EACCES;
		if (monc_unreachable(mc, -1, start, text, text_len))
			return -ECONNREFUSED;
		struct msg *msg = msg_new(MON_MSG_COMMAND, 0, (size_t)len);
		if (!msg)
			return -ENOMEM;
		memcpy(msg->payload, buf, (size_t)len);
		struct msg *r = ask(mc, mc->target, msg, deadline);
		struct mon_command_reply cr = { .rc = -EAGAIN };
		if (r) {
			if (mon_command_reply_decode(r, &cr))
				cr.rc = -EBADMSG;
			msg_free(r);
		}
		if (cr.rc != -EAGAIN) {
			*epoch = cr.epoch;
			if (has_secret)
				reply_secret(mc, &cr, secret, has_secret);
			explicit_bzero(cr.secret, sizeof(cr.secret));
			snprintf(text, text_len, "%s", cr.rc == -EBADMSG ? "malformed reply" : cr.text);
			return cr.rc;
		}
		/* Not the leader, no leader yet, or no answer: go where told,
		 * else try the next monitor after a pause. */
		int l = member_by_name(mc, cr.leader);
		if (r && l < 0)
			mc->seen[mc->target] = MONC_SEEN_NO_LEADER;
		if (l >= 0 && l != mc->target) {
			mc->target = l;
			continue;
		}
		mc->target = (mc->target + 1) % mc->n;
		uint64_t pause = io_now_ns(mc->loop) + IO_MS(100);
		while (io_now_ns(mc->loop) < pause)
			io_loop_run_once(mc->loop, IO_MS(100));
	}
	monc_explain(mc, "no monitor leader answered in time:", text, text_len);
	return -ETIMEDOUT;
}

/* A COMMAND_REPLY in answer to a read is a refusal: its rc, text in WHY. */
static int refusal(struct msg *r, char *why, size_t why_len)
{
	struct mon_command_reply cr;
	int rc = mon_command_reply_decode(r, &cr);
	msg_free(r);
	if (rc || cr.rc >= 0)
		return -EBADMSG;
	snprintf(why, why_len, "%s", cr.text);
	return cr.rc;
}

int monc_get_map(struct monc *mc, int member, struct cluster_map *map, bool *stale,
		 char *leader, size_t leader_len)
{
	uint64_t start = io_now_ns(mc->loop), deadline = start + mc->timeout_ns;
	bool got = false, followed = false;
	int rc = -ETIMEDOUT;
	for (int k = 0; io_now_ns(mc->loop) < deadline; k++) {
		int i = member >= 0 ? member : (mc->target + k) % mc->n;
		if (got && k > 0 && i == mc->target)
			break; /* the leader did not answer: keep the follower's map */
		if (all_refused(mc, leader, leader_len))
			return -EACCES;
		if (!got && monc_unreachable(mc, member, start, leader, leader_len))
			return -ECONNREFUSED;
		struct msg *msg = msg_new(MON_MSG_GET_MAP, 0, 8);
		if (!msg)
			return -ENOMEM;
		memset(msg->payload, 0, 8);
		struct msg *r = ask(mc, i, msg, deadline);
		if (!r)
			continue;
		if (r->hdr.type == MON_MSG_COMMAND_REPLY)
			return refusal(r, leader, leader_len);
		struct mon_map_header h;
		rc = mon_map_header_decode(r, &h) ? -EBADMSG
						  : map_decode(r->data, r->hdr.data_len, map);
		*stale = h.stale;
		snprintf(leader, leader_len, "%s", rc ? "" : h.leader);
		msg_free(r);
		/* A follower may not have applied what the leader just
		 * acknowledged: read from the leader, so a command's result
		 * is visible to the next call. */
		int l = member_by_name(mc, leader);
		if (rc || member >= 0 || followed || l < 0 || l == i)
			return rc;
		got = followed = true;
		mc->target = l;
		k = -1;
	}
	if (!got)
		monc_explain(mc, "no monitor answered:", leader, leader_len);
	return got ? rc : -ETIMEDOUT;
}

int monc_status(struct monc *mc, int member, struct mon_status *out)
{
	uint64_t deadline = io_now_ns(mc->loop) + IO_SEC(3);
	struct msg *msg = msg_new(MON_MSG_MON_STATUS, 0, 0);
	if (!msg)
		return -ENOMEM;
	struct msg *r = ask(mc, member, msg, deadline);
	if (!r)
		return -ETIMEDOUT;
	struct dec d;
	dec_init(&d, r->payload, r->hdr.payload_len);
	memset(out, 0, sizeof(*out));
	dec_get_str(&d, out->name, sizeof(out->name));
	dec_get_str(&d, out->leader, sizeof(out->leader));
	dec_get_le64(&d, &out->term);
	dec_get_le64(&d, &out->commit);
	dec_get_le64(&d, &out->applied);
	dec_get_le64(&d, &out->epoch);
	dec_get_le32(&d, &out->quorum_mask);
	dec_get_u8(&d, &out->role);
	dec_get_u8(&d, &out->stale);
	int rc = dec_status(&d) ? -EBADMSG : 0;
	msg_free(r);
	return rc;
}

int monc_pg_stats(struct monc *mc, struct mon_osd_stats *out)
{
	uint64_t deadline = io_now_ns(mc->loop) + mc->timeout_ns;
	for (int k = 0; k < 2 * mc->n && io_now_ns(mc->loop) < deadline; k++) {
		struct msg *msg = msg_new(MON_MSG_PG_STATS, 0, 0);
		if (!msg)
			return -ENOMEM;
		struct msg *r = ask(mc, (mc->target + k) % mc->n, msg, deadline);
		if (!r)
			continue;
		int rc = r->hdr.type == MON_MSG_PG_STATS_REPLY ? mon_osd_stats_decode(r, out) : -EBADMSG;
		msg_free(r);
		return rc;
	}
	return -ETIMEDOUT;
}
