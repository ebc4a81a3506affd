/* The OSD daemon (see osd.h): registration, beacons and peer heartbeats. */
#include "osd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cluster/monsess.h"
#include "common/daemon.h"
#include "common/enc.h"
#include "common/keyring.h"
#include "common/log.h"
#include "common/msgr.h"
#include "common/why.h"
#include "common/cluster/mon_members.h"
#include "common/cluster/mon_proto.h"
#include "osd_int.h"
#include "common/cluster/osd_proto.h"
#include "store.h"

#define OSD_TICK_NS IO_MS(100)

/* --- monitors -------------------------------------------------------------------- */

static const struct map_osd *self_in(const struct osd *o, const struct cluster_map *m)
{
	return o->id < m->n_osds && m->osds[o->id].exists ? &m->osds[o->id] : NULL;
}

static void on_map(void *ctx, const struct cluster_map *m, bool stale)
{
	struct osd *o = ctx;
	const struct map_osd *me = self_in(o, m);
	LOG_DEBUG("map epoch %" PRIu64 "%s", m->epoch, stale ? " (stale)" : "");
	if (o->booted && m->epoch > o->boot_epoch && (!me || !me->up)) {
		LOG_WARN("the map (epoch %" PRIu64 ") marks osd.%u down while it runs; booting again",
			 m->epoch, o->id);
		o->booted = false;
	}
	osd_pg_map(o);
	osd_ops_map(o);
	osd_auth_map(o);
}

bool osd_serving(const struct osd *o)
{
	const struct cluster_map *m = monsess_map(o->mon);
	const struct map_osd *me = self_in(o, m);
	return o->booted && m->epoch >= o->boot_epoch && me && me->up;
}

static void on_reply(void *ctx, int rc, const char *text, uint64_t epoch)
{
	struct osd *o = ctx;
	uint64_t now = io_now_ns(o->loop);
	if (!o->cmd_is_boot) {
		osd_pg_command_reply(o, rc, text, epoch);
		return;
	}
	o->cmd_is_boot = false;
	if (rc == 0) {
		o->booted = true;
		o->boot_epoch = epoch;
		o->last_beacon = 0; /* beacon at once */
		LOG_INFO("osd.%u is up in map epoch %" PRIu64 " (%s, host %s)", o->id, epoch, o->addr,
			 o->host);
		char status[160];
		snprintf(status, sizeof(status), "osd.%u up in map epoch %" PRIu64 " (%s)", o->id,
			 epoch, o->addr);
		daemon_notify_ready(status);
		osd_pg_map(o);
		return;
	}
	LOG_WARN("boot refused: %s", text);
	o->boot_after = now + (rc == -EBUSY ? IO_SEC(1) : o->beacon_ns);
}

static void maybe_boot(struct osd *o, uint64_t now)
{
	if (o->booted || monsess_command_running(o->mon) || now < o->boot_after)
		return;
	struct map_cmd c = { .type = MAP_CMD_OSD_BOOT, .osd = o->id,
			     .device_bytes = o->device_bytes };
	snprintf(c.addr, sizeof(c.addr), "%s", o->addr);
	snprintf(c.host, sizeof(c.host), "%s", o->host);
	if (monsess_command(o->mon, &c) == 0) {
		o->cmd_is_boot = true;
		LOG_DEBUG("booting");
	}
}

/* Activation records go to the monitors one at a time, after booting. */
static void maybe_record(struct osd *o)
{
	struct map_cmd c;
	if (!o->booted || monsess_command_running(o->mon) || osd_pg_command_next(o, &c))
		return;
	if (monsess_command(o->mon, &c))
		osd_pg_command_reply(o, -EAGAIN, "the monitor session is busy", 0);
}

static void send_to_monitors(struct osd *o, uint16_t type, const uint32_t *words, int n)
{
	struct msg *msg = msg_new(type, 0, (size_t)n * 4);
	if (!msg)
		return;
	struct enc e;
	enc_init(&e, msg->payload, (size_t)n * 4);
	for (int i = 0; i < n; i++)
		enc_put_le32(&e, words[i]);
	monsess_send_all(o->mon, msg);
}

/* --- fullness ------------------------------------------------------------------------- */

uint32_t osd_used_ratio(const struct osd *o)
{
	struct mon_osd_usage u = { 0 };
	store_space(o->store, &u.data_bytes, &u.data_avail_bytes);
	return mon_osd_usage_ratio(&u);
}

enum map_full_state osd_full_state(const struct osd *o)
{
	return map_full_state_for(monsess_map(o->mon), osd_used_ratio(o));
}

#define OSD_FULL_SAID_NS IO_SEC(5)

void osd_peer_full_said(struct osd *o, uint32_t id, uint8_t state)
{
	if (id >= MAP_MAX_OSDS || state > MAP_FULL_FULL)
		return;
	o->peers[id].full = state;
	o->peers[id].full_ns = io_now_ns(o->loop);
}

enum map_full_state osd_member_full(const struct osd *o, uint32_t id)
{
	if (id == o->id)
		return osd_full_state(o);
	const struct cluster_map *m = monsess_map(o->mon);
	enum map_full_state s = id < m->n_osds ? (enum map_full_state)m->osds[id].full
					       : MAP_FULL_NONE;
	const struct osd_peer *p = id < MAP_MAX_OSDS ? &o->peers[id] : NULL;
	if (p && p->full_ns && io_now_ns(o->loop) - p->full_ns < OSD_FULL_SAID_NS &&
	    p->full > s)
		s = (enum map_full_state)p->full;
	return s;
}

/* The beacon: our usage and the state of each PG we are primary of. */
static void send_beacon(struct osd *o)
{
	struct store_usage u;
	store_usage(o->store, &u);
	struct mon_osd_stats st = { .osd = o->id, .device_bytes = u.device_bytes,
				    .used_bytes = u.used_bytes, .objects = u.objects };
	st.usage = (struct mon_osd_usage){ .osd = o->id, .device_bytes = u.device_bytes,
					   .used_bytes = u.used_bytes };
	store_space(o->store, &st.usage.data_bytes, &st.usage.data_avail_bytes);
	osd_pg_slow_ops(o, io_now_ns(o->loop), &st.usage);
	osd_pg_unfound(o, &st.usage);
	if (osd_pg_stats(o, &st) == 0) {
		struct msg *msg = mon_osd_stats_encode(MON_MSG_OSD_BEACON, 0, &st);
		if (msg)
			monsess_send_all(o->mon, msg);
	}
	free(st.pgs);
}

/* --- peers ---------------------------------------------------------------------------- */

static void peer_forget(struct osd *o, uint32_t id)
{
	struct osd_peer *p = &o->peers[id];
	bool had = p->conn != NULL;
	if (p->conn)
		msgr_conn_close(p->conn);
	memset(p, 0, sizeof(*p));
	if (had)
		osd_pg_peer_down(o, id);
}

/* Opens the link to OSD ID at the address map entry MO gives. */
static int peer_connect(struct osd *o, uint32_t id, const struct map_osd *mo, uint64_t now)
{
	struct osd_peer *p = &o->peers[id];
	char host[MAP_ADDR_MAX];
	uint16_t port;
	if (cfg_parse_hostport(mo->addr, host, sizeof(host), &port) ||
	    msgr_connect(o->msgr, host, port, &p->conn)) {
		LOG_WARN("cannot connect to osd.%u at '%s'", id, mo->addr);
		return -ENOTCONN;
	}
	snprintf(p->addr, sizeof(p->addr), "%s", mo->addr);
	p->up_from = mo->up_from;
	p->last_reply_ns = now;
	return 0;
}

struct msgr_conn *osd_peer_conn_if(struct osd *o, uint32_t id)
{
	return id < MAP_MAX_OSDS ? o->peers[id].conn : NULL;
}

struct msgr_conn *osd_peer_conn(struct osd *o, uint32_t id)
{
	const struct cluster_map *m = monsess_map(o->mon);
	if (id >= MAP_MAX_OSDS || id >= m->n_osds || !m->osds[id].exists || !m->osds[id].up ||
	    id == o->id)
		return NULL;
	const struct map_osd *mo = &m->osds[id];
	struct osd_peer *p = &o->peers[id];
	if (p->conn && (strcmp(p->addr, mo->addr) || p->up_from != mo->up_from))
		peer_forget(o, id); /* restarted or moved: a fresh start */
	if (!p->conn)
		peer_connect(o, id, mo, io_now_ns(o->loop));
	return p->conn;
}

static void send_ping(struct osd *o, struct msgr_conn *conn, uint16_t type, uint64_t stamp)
{
	size_t len = type == OSD_MSG_PING ? OSD_PING_LEN : OSD_PING_REPLY_LEN;
	struct msg *msg = msg_new(type, 0, len);
	if (!msg)
		return;
	struct enc e;
	enc_init(&e, msg->payload, len);
	enc_put_le32(&e, o->id);
	enc_put_le64(&e, monsess_map(o->mon)->epoch);
	enc_put_le64(&e, stamp);
	if (type == OSD_MSG_PING_REPLY)
		enc_put_u8(&e, (uint8_t)osd_full_state(o));
	if (msgr_send(conn, msg))
		msg_free(msg);
}

/* Pings every other up OSD, starting to watch new ones and forgetting
 * those the map no longer shows up; reports the silent ones. */
static void heartbeat(struct osd *o, uint64_t now)
{
	const struct cluster_map *m = monsess_map(o->mon);
	for (uint32_t id = 0; id < MAP_MAX_OSDS; id++) {
		struct osd_peer *p = &o->peers[id];
		const struct map_osd *mo = id < m->n_osds ? &m->osds[id] : NULL;
		bool watch = mo && mo->exists && mo->up && id != o->id && o->booted;
		if (!watch) {
			if (p->conn)
				peer_forget(o, id);
			continue;
		}
		if (p->conn && (strcmp(p->addr, mo->addr) || p->up_from != mo->up_from))
			peer_forget(o, id); /* restarted or moved: a fresh start */
		if (!p->conn && peer_connect(o, id, mo, now))
			continue;
		send_ping(o, p->conn, OSD_MSG_PING, now);
		if (now - p->last_reply_ns > o->grace_ns &&
		    (!p->last_report_ns || now - p->last_report_ns >= o->heartbeat_ns)) {
			if (!p->last_report_ns)
				LOG_WARN("osd.%u has not answered for %" PRIu64 " ms; reporting it", id,
					 (now - p->last_reply_ns) / 1000000);
			p->last_report_ns = now;
			uint32_t words[2] = { o->id, id };
			send_to_monitors(o, MON_MSG_OSD_FAILURE, words, 2);
		}
	}
}

static void on_ping(struct osd *o, struct msgr_conn *conn, const struct msg *msg)
{
	struct dec d;
	uint32_t from;
	uint64_t epoch, stamp;
	uint8_t full = 0;
	dec_init(&d, msg->payload, msg->hdr.payload_len);
	dec_get_le32(&d, &from);
	dec_get_le64(&d, &epoch);
	dec_get_le64(&d, &stamp);
	if (msg->hdr.type == OSD_MSG_PING_REPLY)
		dec_get_u8(&d, &full);
	if (dec_status(&d) || dec_remaining(&d) || from >= MAP_MAX_OSDS || full > MAP_FULL_FULL) {
		LOG_WARN("malformed ping from %s", msgr_conn_peer_addr(conn));
		return;
	}
	if (msg->hdr.type == OSD_MSG_PING) {
		send_ping(o, conn, OSD_MSG_PING_REPLY, stamp);
		return;
	}
	struct osd_peer *p = &o->peers[from];
	if (p->conn != conn)
		return; /* from a connection we have since dropped */
	p->last_reply_ns = io_now_ns(o->loop);
	osd_peer_full_said(o, from, full);
	if (p->last_report_ns)
		LOG_INFO("osd.%u answers again", from);
	p->last_report_ns = 0;
}

/* --- messenger ------------------------------------------------------------------------- */

static void on_message(struct msgr_conn *conn, struct msg *msg)
{
	struct osd *o = msgr_ctx(msgr_conn_msgr(conn));
	if (monsess_owns(o->mon, conn) && msg->hdr.type == MON_MSG_KEYS_REPLY) {
		osd_auth_keys_reply(o, conn, msg);
		msg_free(msg);
		return;
	}
	if (monsess_owns(o->mon, conn)) {
		monsess_handle(o->mon, conn, msg);
		return;
	}
	if (!osd_auth_msg_allowed(o, conn, msg->hdr.type)) {
		msg_free(msg);
		return;
	}
	if (msg->hdr.type == OSD_MSG_OP) {
		osd_ops_handle(o, conn, msg);
		return;
	}
	if (osd_pg_msg_type(msg->hdr.type)) {
		osd_pg_message(o, conn, msg);
		return;
	}
	if (msg->hdr.type == OSD_MSG_PING || msg->hdr.type == OSD_MSG_PING_REPLY)
		on_ping(o, conn, msg);
	msg_free(msg);
}

static void on_event(struct msgr_conn *conn, enum msgr_event ev, int err)
{
	struct osd *o = msgr_ctx(msgr_conn_msgr(conn));
	(void)err;
	if (o->mon && monsess_owns(o->mon, conn)) {
		monsess_event(o->mon, conn, ev);
		return;
	}
	if (ev == MSGR_EV_CLOSED) {
		osd_pg_conn_closed(o, conn);
		osd_ops_conn_closed(o, conn);
		osd_auth_conn_closed(o, conn);
		return;
	}
	for (uint32_t id = 0; ev == MSGR_EV_DOWN && id < MAP_MAX_OSDS; id++)
		if (o->peers[id].conn == conn)
			osd_pg_peer_down(o, id);
}

static bool type_ok(uint16_t type, void *arg)
{
	(void)arg;
	return type == MON_MSG_MAP || type == MON_MSG_MAP_INC || type == MON_MSG_COMMAND_REPLY ||
	       type == MON_MSG_KEYS_REPLY ||
	       type == OSD_MSG_PING || type == OSD_MSG_PING_REPLY || type == OSD_MSG_OP ||
	       osd_pg_msg_type(type);
}

static const struct msgr_handler osd_handler = { .on_message = on_message,
						 .on_event = on_event,
						 .type_ok = type_ok };

/* --- life cycle ------------------------------------------------------------------------- */

static void osd_tick(struct io_timer *t)
{
	struct osd *o = t->ctx;
	uint64_t now = io_now_ns(o->loop);
	monsess_tick(o->mon, now);
	if (monsess_have_map(o->mon)) {
		maybe_boot(o, now);
		maybe_record(o);
	}
	if (o->booted && (!o->last_beacon || now - o->last_beacon >= o->beacon_ns)) {
		o->last_beacon = now;
		send_beacon(o);
	}
	if (now - o->last_heartbeat >= o->heartbeat_ns) {
		o->last_heartbeat = now;
		heartbeat(o, now);
	}
	osd_pg_tick(o, now);
	osd_ops_tick(o, now);
	osd_auth_tick(o, now);
	osd_metrics_tick(o, now);
#ifndef NDEBUG
	osd_pg_check(o); /* debug builds (the ASan suite): the PG invariants, live */
#endif
	io_timer_arm(o->loop, &o->tick, OSD_TICK_NS);
}

static int osd_config(struct osd *o, struct cfg *cfg, const char *section, const char **device,
		      char *why, size_t why_len)
{
	const char *addr, *host;
	char default_host[MAP_NAME_MAX] = "localhost";
	uint64_t beacon_ms, heartbeat_ms, grace_ms, rec_active, rec_rate, complaint_ms;
	uint64_t scrub_ms, deep_ms, scrub_sleep_ms, log_entries;
	const uint64_t year_ms = 366ull * 86400000;
	gethostname(default_host, sizeof(default_host) - 1);
	char *dot = strchr(default_host, '.');
	if (dot)
		*dot = '\0';
	if (cfg_get_str(cfg, section, "device", NULL, device) < 0 ||
	    cfg_get_str(cfg, section, "addr", NULL, &addr) < 0 ||
	    cfg_get_str(cfg, section, "host", default_host, &host) < 0 ||
	    cfg_get_duration_ms(cfg, section, "osd_beacon_interval", 2000, 10, 600000, &beacon_ms) < 0 ||
	    cfg_get_duration_ms(cfg, section, "osd_heartbeat_interval", 1000, 10, 60000,
				&heartbeat_ms) < 0 ||
	    cfg_get_duration_ms(cfg, section, "osd_heartbeat_grace", 6000, 20, 600000, &grace_ms) < 0 ||
	    cfg_get_u64(cfg, section, "osd_recovery_max_active", 4, 1, 1024, &rec_active) < 0 ||
	    cfg_get_size(cfg, section, "osd_recovery_max_bytes_per_sec", 200ull << 20, 0,
			 1ull << 40, &rec_rate) < 0 ||
	    cfg_get_duration_ms(cfg, section, "osd_op_complaint_time", 30000, 0, 86400000,
				&complaint_ms) < 0 ||
	    cfg_get_duration_ms(cfg, section, "osd_scrub_interval", 7 * 86400000ull, 0, year_ms,
				&scrub_ms) < 0 ||
	    cfg_get_duration_ms(cfg, section, "osd_deep_scrub_interval", 28 * 86400000ull, 0,
				year_ms, &deep_ms) < 0 ||
	    cfg_get_size(cfg, section, "osd_scrub_max_bytes_per_sec", 64ull << 20, 0, 1ull << 40,
			 &o->scrub_bytes_per_sec) < 0 ||
	    cfg_get_duration_ms(cfg, section, "osd_scrub_sleep", 50, 0, 60000, &scrub_sleep_ms) < 0 ||
	    cfg_get_u64(cfg, section, "osd_pg_log_max_entries", 3000, 4, 1u << 20, &log_entries) < 0 ||
	    cfg_get_size(cfg, section, "osd_pg_log_max_bytes", 64ull << 20, 1u << 20, 1ull << 40,
			 &o->pg_log_max_bytes) < 0)
		return why_set(why, why_len, -EINVAL, "%s", cfg_error(cfg));
	char h[MAP_ADDR_MAX];
	uint16_t port;
	if (cfg_parse_hostport(addr, h, sizeof(h), &port)) {
		int rc = cfg_reject(cfg, section, "addr", "expected host:port, got '%s'", addr);
		return why_set(why, why_len, rc, "%s", cfg_error(cfg));
	}
	if (strlen(host) >= sizeof(o->host) || !host[0]) {
		int rc = cfg_reject(cfg, section, "host", "expected a name of 1-63 characters");
		return why_set(why, why_len, rc, "%s", cfg_error(cfg));
	}
	if (grace_ms <= heartbeat_ms) {
		int rc = cfg_reject(cfg, section, "osd_heartbeat_grace",
				    "must be longer than osd_heartbeat_interval (%" PRIu64 " ms)",
				    heartbeat_ms);
		return why_set(why, why_len, rc, "%s", cfg_error(cfg));
	}
	snprintf(o->addr, sizeof(o->addr), "%s", addr);
	snprintf(o->host, sizeof(o->host), "%s", host);
	o->beacon_ns = IO_MS(beacon_ms);
	o->heartbeat_ns = IO_MS(heartbeat_ms);
	o->grace_ns = IO_MS(grace_ms);
	o->rec_max_active = (unsigned)rec_active;
	o->rec_bytes_per_sec = rec_rate;
	o->complaint_ns = IO_MS(complaint_ms);
	o->scrub_interval_s = (scrub_ms + 999) / 1000;
	o->deep_scrub_interval_s = deep_ms ? (deep_ms + 999) / 1000 : UINT64_MAX;
	o->scrub_sleep_ns = IO_MS(scrub_sleep_ms);
	o->pg_log_max_entries = (uint32_t)log_entries;
	return 0;
}

int osd_start(struct io_loop *loop, struct cfg *cfg, uint32_t id, const char *keyring_path,
	      struct osd **out, char *why, size_t why_len)
{
	struct osd *o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	o->loop = loop;
	o->id = id;
	snprintf(o->name, sizeof(o->name), "osd.%u", id);
	io_timer_init(&o->tick, osd_tick, o);
	list_init(&o->early);
	const char *device;
	struct store_params sp;
	int rc = id < MAP_MAX_OSDS ? 0
				   : why_set(why, why_len, -EINVAL, "OSD ids go up to %u",
					     MAP_MAX_OSDS - 1);
	if (!rc)
		rc = osd_config(o, cfg, o->name, &device, why, why_len);
	if (!rc)
		rc = osd_metrics_start(o, cfg, why, why_len);
	if (!rc && store_params_from_config(cfg, o->name, &sp))
		rc = why_set(why, why_len, -EINVAL, "%s", cfg_error(cfg));
	if (!rc)
		rc = mon_members(cfg, o->members, &o->n_members, why, why_len);
	if (!rc)
		rc = keyring_load(keyring_path, &o->keyring, why, why_len);
	if (!rc && !(o->peers = calloc(MAP_MAX_OSDS, sizeof(*o->peers))))
		rc = -ENOMEM;
	if (!rc)
		rc = osd_ops_init(o);
	if (!rc)
		rc = osd_pg_init(o);
	if (!rc)
		rc = store_open(loop, device, &sp, &o->store, why, why_len);
	if (rc)
		goto fail;
	struct store_usage u;
	store_usage(o->store, &u);
	o->device_bytes = u.device_bytes;
	struct msgr_params mp;
	msgr_params_default(&mp);
	mp.name = o->name;
	mp.keyring = o->keyring;
	mp.find_key = osd_auth_find_key;
	mp.handler = &osd_handler;
	mp.ctx = o;
	if ((rc = msgr_params_config(cfg, o->name, &mp, why, why_len)))
		goto fail;
	char host[MAP_ADDR_MAX];
	uint16_t port;
	cfg_parse_hostport(o->addr, host, sizeof(host), &port);
	if ((rc = msgr_create(loop, &mp, &o->msgr)) ||
	    (rc = msgr_listen(o->msgr, host, port, NULL))) {
		why_set(why, why_len, rc, "cannot listen on %s: %s", o->addr, strerror(-rc));
		goto fail;
	}
	struct monsess_params ms = { .msgr = o->msgr, .members = o->members,
				     .n_members = o->n_members, .on_map = on_map,
				     .on_reply = on_reply, .ctx = o };
	if ((rc = monsess_create(&ms, &o->mon))) {
		why_set(why, why_len, rc, rc == -ENOKEY ? "%s is not in the keyring %s"
							: "cannot reach the monitors as %s (%s)",
			o->name, keyring_path);
		goto fail;
	}
	io_timer_arm(loop, &o->tick, OSD_TICK_NS);
	LOG_INFO("osd.%u started: %s, host %s, %" PRIu64 " bytes", id, o->addr, o->host,
		 o->device_bytes);
	*out = o;
	return 0;
fail:
	osd_stop(o);
	return rc;
}

struct store *osd_store(struct osd *o)
{
	return o->store;
}

void osd_forget(struct osd *o)
{
	if (!o)
		return;
	osd_ops_detach(o); /* operations held for a newer map go unanswered */
	osd_pg_forget(o);
	monsess_forget(o->mon);
	msgr_forget(o->msgr);
	store_forget(o->store);
	osd_pg_fini(o);
	osd_ops_fini(o);
	osd_auth_free(o);
	keyring_free(o->keyring);
	free(o->peers);
	osd_metrics_stop(o); /* last: the store's final completions count */
	free(o);
}

void osd_stop(struct osd *o)
{
	if (!o)
		return;
	io_timer_disarm(o->loop, &o->tick);
	if (o->mon) {
		uint64_t full, inc;
		monsess_stats(o->mon, &full, &inc);
		LOG_INFO("map updates received: %llu whole maps, %llu incremental",
			 (unsigned long long)full, (unsigned long long)inc);
	}
	osd_ops_detach(o);
	osd_pg_detach(o);
	monsess_destroy(o->mon);
	o->mon = NULL;
	if (o->peers)
		for (uint32_t i = 0; i < MAP_MAX_OSDS; i++)
			if (o->peers[i].conn)
				msgr_conn_close(o->peers[i].conn);
	msgr_destroy(o->msgr);
	osd_pg_log_persist(o); /* nothing changes the store any more */
	if (o->store)
		store_close(o->store);
	osd_pg_fini(o);
	osd_ops_fini(o);
	osd_auth_free(o);
	keyring_free(o->keyring);
	free(o->peers);
	osd_metrics_stop(o); /* last: the store's final completions count */
	free(o);
}
