/* The asynchronous monitor session (see monsess.h). */
#include "monsess.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/enc.h"
#include "common/log.h"
#include "common/cluster/mon_proto.h"

#define RETRY_NS IO_MS(100)	      /* before resending a redirected command */
#define ANSWER_NS IO_SEC(2)	      /* a monitor that does not answer by then is skipped */
#define STALE_MOVE_NS IO_SEC(3)	      /* a subscription this long without quorum moves */
#define BEHIND_NS IO_SEC(1)	      /* a command's epoch not reached by then: fetch the map */

struct monsess {
	struct monsess_params p;
	struct msgr_conn *conns[MON_MAX_MEMBERS];
	int down_err[MON_MAX_MEMBERS]; /* why its connection is down, or 0 */
	struct cluster_map map;
	bool have_map;
	uint64_t full_maps, incs; /* how updates arrived */
	uint64_t full_bytes, inc_bytes; /* and their bytes (payload + data) */
	/* The subscription. */
	int sub;		  /* which monitor */
	bool sub_sent, sub_stale;
	uint64_t sub_stale_since; /* ns; 0 while the monitor has quorum */
	char leader[64];	  /* as the last map or reply named it */
	/* The running command. */
	bool cmd_running, cmd_sent;
	uint8_t cmd_buf[MAP_CMD_MAX_LEN];
	int cmd_len, cmd_target;
	uint64_t cmd_msg_id, cmd_sent_at, cmd_retry_at;
	uint64_t client_id, next_req, next_msg_id;
	uint64_t now;
	/* A command answered at an epoch our map has not reached: if no
	 * update brings it within BEHIND_NS, ask for the whole map. */
	uint64_t want_epoch, want_since;
};

int monsess_create(const struct monsess_params *p, struct monsess **out)
{
	struct monsess *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->p = *p;
	s->client_id = io_random(msgr_loop(p->msgr)) | 1; /* simulated loops: from the seed */
	for (int i = 0; i < p->n_members; i++) {
		int rc = msgr_connect(p->msgr, p->members[i].host, p->members[i].port, &s->conns[i]);
		if (rc) {
			monsess_destroy(s);
			return rc;
		}
	}
	*out = s;
	return 0;
}

void monsess_destroy(struct monsess *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->p.n_members; i++)
		if (s->conns[i])
			msgr_conn_close(s->conns[i]);
	map_free(&s->map);
	free(s);
}

void monsess_forget(struct monsess *s)
{
	if (!s)
		return;
	map_free(&s->map);
	free(s);
}

static int member_of(const struct monsess *s, const struct msgr_conn *conn)
{
	for (int i = 0; i < s->p.n_members; i++)
		if (s->conns[i] == conn)
			return i;
	return -1;
}

static int member_named(const struct monsess *s, const char *name)
{
	for (int i = 0; i < s->p.n_members; i++)
		if (strcmp(s->p.members[i].name, name) == 0)
			return i;
	return -1;
}

bool monsess_owns(const struct monsess *s, const struct msgr_conn *conn)
{
	return member_of(s, conn) >= 0;
}

const struct cluster_map *monsess_map(const struct monsess *s)
{
	return &s->map;
}

bool monsess_have_map(const struct monsess *s)
{
	return s->have_map;
}

bool monsess_command_running(const struct monsess *s)
{
	return s->cmd_running;
}

static void send_or_free(struct msgr_conn *conn, struct msg *msg)
{
	if (msgr_send(conn, msg))
		msg_free(msg);
}

static void subscribe(struct monsess *s)
{
	struct msg *msg = msg_new(MON_MSG_SUBSCRIBE, ++s->next_msg_id, 8);
	if (!msg)
		return;
	struct enc e;
	enc_init(&e, msg->payload, 8);
	enc_put_le64(&e, s->map.epoch);
	send_or_free(s->conns[s->sub], msg);
	s->sub_sent = true;
	s->sub_stale_since = 0;
}

static void move_subscription(struct monsess *s)
{
	s->sub = (s->sub + 1) % s->p.n_members;
	s->sub_sent = false;
	if (msgr_conn_up(s->conns[s->sub]))
		subscribe(s);
}

static void send_command(struct monsess *s)
{
	struct msg *msg = msg_new(MON_MSG_COMMAND, ++s->next_msg_id, (size_t)s->cmd_len);
	if (!msg)
		return;
	memcpy(msg->payload, s->cmd_buf, (size_t)s->cmd_len);
	s->cmd_msg_id = s->next_msg_id;
	s->cmd_sent = true;
	s->cmd_sent_at = s->now;
	send_or_free(s->conns[s->cmd_target], msg);
}

int monsess_command(struct monsess *s, const struct map_cmd *cmd)
{
	if (s->cmd_running)
		return -EBUSY;
	struct map_cmd c = *cmd;
	c.client = s->client_id;
	c.req = ++s->next_req;
	int len = map_cmd_encode(&c, s->cmd_buf, sizeof(s->cmd_buf));
	if (len < 0)
		return len;
	s->cmd_len = len;
	s->cmd_running = true;
	int l = member_named(s, s->leader);
	s->cmd_target = l >= 0 ? l : s->sub;
	send_command(s);
	return 0;
}

int monsess_send_one(struct monsess *s, struct msg *msg)
{
	for (int k = 0; k < s->p.n_members; k++) {
		int i = (s->sub + k) % s->p.n_members;
		if (msgr_conn_up(s->conns[i])) {
			send_or_free(s->conns[i], msg);
			return 0;
		}
	}
	msg_free(msg);
	return -ENOTCONN;
}

void monsess_send_all(struct monsess *s, struct msg *msg)
{
	for (int i = 0; i < s->p.n_members; i++) {
		if (!msgr_conn_up(s->conns[i]))
			continue;
		struct msg *copy = msg_new(msg->hdr.type, 0, msg->hdr.payload_len);
		if (!copy || (msg->hdr.data_len && msg_alloc_data(copy, msg->hdr.data_len))) {
			msg_free(copy);
			break;
		}
		memcpy(copy->payload, msg->payload, msg->hdr.payload_len);
		if (msg->hdr.data_len)
			memcpy(copy->data, msg->data, msg->hdr.data_len);
		send_or_free(s->conns[i], copy);
	}
	msg_free(msg);
}

static void on_map(struct monsess *s, int from, const struct msg *msg)
{
	struct mon_map_header h;
	if (mon_map_header_decode(msg, &h)) {
		LOG_WARN("malformed map from mon.%s", s->p.members[from].name);
		return;
	}
	uint64_t epoch = h.epoch;
	bool stale = h.stale;
	const char *leader = h.leader;
	if (from == s->sub) {
		s->sub_stale = stale;
		if (!stale)
			s->sub_stale_since = 0;
		else if (!s->sub_stale_since)
			s->sub_stale_since = s->now;
	}
	if (leader[0])
		snprintf(s->leader, sizeof(s->leader), "%s", leader);
	if (s->have_map && epoch <= s->map.epoch)
		return;
	struct cluster_map m;
	memset(&m, 0, sizeof(m));
	if (map_decode(msg->data, msg->hdr.data_len, &m)) {
		LOG_WARN("undecodable map epoch %llu from mon.%s", (unsigned long long)epoch,
			 s->p.members[from].name);
		return;
	}
	map_free(&s->map);
	s->map = m;
	s->have_map = true;
	s->full_maps++;
	s->full_bytes += msg->hdr.payload_len + msg->hdr.data_len;
	if (s->p.on_map)
		s->p.on_map(s->p.ctx, &s->map, stale);
}

/* Commands that take our map to a newer epoch. Anything that does not fit
 * (another starting epoch, a command that does not apply) asks the same
 * monitor for the whole map instead. */
static void on_map_inc(struct monsess *s, int from, const struct msg *msg)
{
	struct mon_map_inc inc;
	if (mon_map_inc_decode(msg, &inc)) {
		LOG_WARN("malformed map update from mon.%s", s->p.members[from].name);
		return;
	}
	if (from == s->sub) {
		s->sub_stale = inc.h.stale;
		if (!inc.h.stale)
			s->sub_stale_since = 0;
		else if (!s->sub_stale_since)
			s->sub_stale_since = s->now;
	}
	if (inc.h.leader[0])
		snprintf(s->leader, sizeof(s->leader), "%s", inc.h.leader);
	if (s->have_map && inc.h.epoch <= s->map.epoch)
		return;
	int rc = s->have_map ? mon_map_inc_apply(&inc, &s->map) : -ESTALE;
	if (rc) {
		/* Nothing or a valid prefix was applied: the map is an older
		 * real epoch. Ask for the whole current one. */
		LOG_INFO("map update %llu..%llu from mon.%s does not fit epoch %llu; fetching the map",
			 (unsigned long long)inc.from, (unsigned long long)inc.h.epoch,
			 s->p.members[from].name, (unsigned long long)s->map.epoch);
		struct msg *m = msg_new(MON_MSG_GET_MAP, ++s->next_msg_id, 8);
		if (m) {
			memset(m->payload, 0, 8);
			send_or_free(s->conns[from], m);
		}
		return;
	}
	s->incs++;
	s->inc_bytes += msg->hdr.payload_len + msg->hdr.data_len;
	if (s->p.on_map)
		s->p.on_map(s->p.ctx, &s->map, inc.h.stale);
}

void monsess_stats(const struct monsess *s, uint64_t *full_maps, uint64_t *incs)
{
	*full_maps = s->full_maps;
	*incs = s->incs;
}

void monsess_map_bytes(const struct monsess *s, uint64_t *full_bytes, uint64_t *inc_bytes)
{
	*full_bytes = s->full_bytes;
	*inc_bytes = s->inc_bytes;
}

static void on_command_reply(struct monsess *s, int from, const struct msg *msg)
{
	if (!s->cmd_running || msg->hdr.request_id != s->cmd_msg_id)
		return;
	struct mon_command_reply r;
	if (mon_command_reply_decode(msg, &r)) {
		LOG_WARN("malformed command reply from mon.%s", s->p.members[from].name);
		return;
	}
	if (r.rc == -EAGAIN) { /* not the leader: go where told, after a pause */
		int l = member_named(s, r.leader);
		s->cmd_target = l >= 0 ? l : (from + 1) % s->p.n_members;
		if (r.leader[0])
			snprintf(s->leader, sizeof(s->leader), "%s", r.leader);
		s->cmd_sent = false;
		s->cmd_retry_at = s->now + (l >= 0 && l != from ? 0 : RETRY_NS);
		return;
	}
	s->cmd_running = false;
	if (r.epoch > s->map.epoch && r.epoch > s->want_epoch) {
		s->want_epoch = r.epoch;
		s->want_since = s->now;
	}
	if (s->p.on_reply)
		s->p.on_reply(s->p.ctx, r.rc, r.text, r.epoch);
}

void monsess_handle(struct monsess *s, struct msgr_conn *conn, struct msg *msg)
{
	int from = member_of(s, conn);
	s->now = io_now_ns(msgr_loop(s->p.msgr));
	if (from >= 0 && msg->hdr.type == MON_MSG_MAP)
		on_map(s, from, msg);
	else if (from >= 0 && msg->hdr.type == MON_MSG_MAP_INC)
		on_map_inc(s, from, msg);
	else if (from >= 0 && msg->hdr.type == MON_MSG_COMMAND_REPLY)
		on_command_reply(s, from, msg);
	msg_free(msg);
}

void monsess_event(struct monsess *s, struct msgr_conn *conn, enum msgr_event ev)
{
	int i = member_of(s, conn);
	if (i < 0)
		return;
	if (ev == MSGR_EV_UP)
		s->down_err[i] = 0;
	if (ev == MSGR_EV_UP && i == s->sub)
		subscribe(s);
	if (ev == MSGR_EV_DOWN) {
		if (i == s->sub)
			move_subscription(s);
		if (s->cmd_running && i == s->cmd_target && s->cmd_sent) {
			s->cmd_target = (i + 1) % s->p.n_members;
			s->cmd_sent = false;
			s->cmd_retry_at = 0;
		}
	}
}

void monsess_note_down(struct monsess *s, const struct msgr_conn *conn, int err)
{
	int i = member_of(s, conn);
	if (i >= 0)
		s->down_err[i] = err ? err : -ECONNRESET;
}

bool monsess_explain(const struct monsess *s, const char *head, char *text, size_t text_len)
{
	bool at_once = true;
	size_t at = (size_t)snprintf(text, text_len, "%s", head);
	for (int i = 0; i < s->p.n_members && at < text_len; i++) {
		int err = s->down_err[i];
		bool up = msgr_conn_up(s->conns[i]);
		/* A timeout is not known at once: it may still answer. */
		if (up || !err || err == -ETIMEDOUT)
			at_once = false;
		at += (size_t)snprintf(text + at, text_len - at, "%s mon.%s %s:%u: %s", i ? ";" : "",
				       s->p.members[i].name, s->p.members[i].host,
				       s->p.members[i].port,
				       up ? "connected, no map sent" : err ? msgr_strerror(err)
									: "not connected yet");
	}
	return at_once;
}

void monsess_tick(struct monsess *s, uint64_t now_ns)
{
	s->now = now_ns;
	if (s->want_epoch && s->want_epoch <= s->map.epoch) {
		s->want_epoch = 0;
	} else if (s->want_epoch && now_ns - s->want_since > BEHIND_NS &&
		   msgr_conn_up(s->conns[s->sub])) {
		LOG_INFO("map epoch %llu was answered, ours is %llu: fetching the map from mon.%s",
			 (unsigned long long)s->want_epoch, (unsigned long long)s->map.epoch,
			 s->p.members[s->sub].name);
		struct msg *m = msg_new(MON_MSG_GET_MAP, ++s->next_msg_id, 8);
		if (m) {
			memset(m->payload, 0, 8);
			send_or_free(s->conns[s->sub], m);
		}
		s->want_since = now_ns;
	}
	if (!s->sub_sent && msgr_conn_up(s->conns[s->sub]))
		subscribe(s);
	else if (s->sub_stale && s->sub_stale_since && now_ns - s->sub_stale_since > STALE_MOVE_NS)
		move_subscription(s);
	if (!s->cmd_running)
		return;
	if (s->cmd_sent && now_ns - s->cmd_sent_at > ANSWER_NS) {
		s->cmd_target = (s->cmd_target + 1) % s->p.n_members;
		s->cmd_sent = false;
		s->cmd_retry_at = 0;
	}
	if (!s->cmd_sent && now_ns >= s->cmd_retry_at)
		send_command(s);
}
