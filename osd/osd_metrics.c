/* The OSD's Prometheus metrics (common/metrics.h): operations counted and
 * timed where they are answered, and once a second the loop copies what
 * it keeps anyway (store usage, PG states, recovery and scrub totals, the
 * map epoch) into gauges, so the HTTP thread never reads loop state. */
#include <errno.h>

#include "common/config.h"
#include "common/log.h"
#include "common/why.h"
#include "osd_int.h"
#include "pg_int.h"

#define OSD_METRICS_PUBLISH_NS IO_SEC(1)

static const char *const op_names[OSD_METRICS_OPS] = {
	"read", "write", "delete", "stat", "list", "scrub", "sync",
	"replica_write", "replica_delete", "replica_read", "replica_push", "replica_remove",
	"replica_complete", "replica_scrub", "replica_sync", "replica_chunk_read", "replica_chunk_commit",
};

/* Label values of basalt_osd_pgs: the PG states, with a recovering PG
 * that copies whole objects to a new member shown as backfilling. */
#define PG_STATE_BACKFILLING (OSD_METRICS_PG_STATES - 1)
static const char *const pg_state_labels[OSD_METRICS_PG_STATES] = {
	[PG_STATE_IDLE] = "idle",
	[PG_STATE_PEERING] = "peering",
	[PG_STATE_INCOMPLETE] = "incomplete",
	[PG_STATE_UNDERSIZED] = "undersized",
	[PG_STATE_RECOVERING] = "recovering",
	[PG_STATE_ACTIVATING] = "activating",
	[PG_STATE_ACTIVE] = "active",
	[PG_STATE_BACKFILLING] = "backfilling",
};
_Static_assert(PG_STATE_ACTIVE < PG_STATE_BACKFILLING, "one label per PG state");

static struct metrics_series *gauge(struct osd *o, const char *name, const char *help)
{
	return metrics_single(o->metrics.registry, METRICS_GAUGE, name, help);
}

static struct metrics_series *counter(struct osd *o, const char *name, const char *help)
{
	return metrics_single(o->metrics.registry, METRICS_COUNTER, name, help);
}

static void register_ops(struct osd *o)
{
	struct osd_metrics *m = &o->metrics;
	metrics_op_kinds(m->registry, "basalt_osd_op",
			 "Operations received: a client's, or replica_* sent by a PG's primary",
			 "Operations answered with an error (-EAGAIN redirects included)",
			 "Time from an operation's arrival to its answer, of those the PG layer ran",
			 op_names, OSD_METRICS_OPS, m->ops, m->errors, m->latency);
	m->read_bytes = counter(o, "basalt_osd_read_bytes_total", "Bytes of client reads answered");
	m->written_bytes = counter(o, "basalt_osd_written_bytes_total",
				   "Bytes of client and replica writes this OSD stored");
	m->in_flight = gauge(o, "basalt_osd_ops_in_flight",
			     "Client operations taken by this OSD's PGs and not finished");
	m->waiting_for_map = gauge(o, "basalt_osd_ops_waiting_for_map",
				   "Client operations held until this OSD's map catches up");
}

static void register_state(struct osd *o)
{
	struct osd_metrics *m = &o->metrics;
	m->journal_used = gauge(o, "basalt_osd_journal_used_bytes", "Bytes of the journal ring in use");
	m->journal_size = gauge(o, "basalt_osd_journal_size_bytes", "Size of the journal ring");
	m->store_size = gauge(o, "basalt_osd_store_size_bytes", "Bytes of the store's data blocks");
	m->store_used = gauge(o, "basalt_osd_store_used_bytes",
			      "Bytes in use: live data blocks, journal and metadata");
	m->store_free = gauge(o, "basalt_osd_store_free_bytes",
			      "Bytes of data blocks the store can still promise to new data");
	m->objects = gauge(o, "basalt_osd_objects", "Objects in the store");
	m->map_epoch = gauge(o, "basalt_osd_map_epoch", "Epoch of the cluster map this OSD follows");
	struct metrics_family *pgs = metrics_family(
		m->registry, METRICS_GAUGE, "basalt_osd_pgs",
		"PGs this OSD is primary of, by state", "state");
	for (unsigned i = 1; i < OSD_METRICS_PG_STATES; i++) /* idle ones are not ours */
		m->pgs[i] = metrics_series(pgs, pg_state_labels[i]);
	m->recovered_objects = counter(o, "basalt_osd_recovered_objects_total",
				       "Objects recovered by this OSD as a primary");
	m->recovered_bytes = counter(o, "basalt_osd_recovered_bytes_total",
				     "Bytes recovered by this OSD as a primary");
	m->scrubs = counter(o, "basalt_osd_scrubs_total", "PG scrubs finished");
	m->scrubbed_objects = counter(o, "basalt_osd_scrubbed_objects_total",
				      "Objects whose copies a scrub compared");
	m->bad_found = counter(o, "basalt_osd_bad_copies_found_total",
			       "Bad copies found by reads, recovery and scrubs");
	m->bad_repaired = counter(o, "basalt_osd_bad_copies_repaired_total", "Bad copies repaired");
	m->csum_errors = counter(o, "basalt_osd_checksum_errors_total",
				 "Store reads whose data failed its checksum");
	m->read_errors = counter(o, "basalt_osd_device_read_errors_total",
				 "Store reads the device failed");
	struct metrics_family *peerings = metrics_family(
		m->registry, METRICS_COUNTER, "basalt_osd_peerings_total",
		"Peerings this OSD ran as a primary, by how members were compared: log (the "
		"objects changed since a shared sync marker) or full (every object)",
		"kind");
	m->peerings_log = metrics_series(peerings, "log");
	m->peerings_full = metrics_series(peerings, "full");
	m->peering_bytes = counter(o, "basalt_osd_peering_bytes_total",
				   "Bytes of peering queries sent and answers received by this OSD "
				   "as a primary");
	m->pg_log_entries = gauge(o, "basalt_osd_pg_log_entries",
				  "Entries held in the PG logs of this OSD");
	struct metrics_family *msgr = metrics_family(
		m->registry, METRICS_COUNTER, "basalt_osd_msgr_bytes_total",
		"Bytes on the wire to and from every peer (clients, OSDs, monitors)", "dir");
	m->msgr_bytes[0] = metrics_series(msgr, "sent");
	m->msgr_bytes[1] = metrics_series(msgr, "received");
}

int osd_metrics_start(struct osd *o, struct cfg *cfg, char *why, size_t why_len)
{
	struct osd_metrics *m = &o->metrics;
	if (metrics_registry_create(&m->registry))
		return why_set(why, why_len, -ENOMEM, "out of memory for metrics");
	register_ops(o);
	register_state(o);
	if (metrics_registry_error(m->registry))
		return why_set(why, why_len, -ENOMEM, "out of memory for metrics");
	int rc = metrics_server_start_config(m->registry, cfg, o->name, &m->server, why, why_len);
	if (!rc && m->server)
		LOG_INFO("metrics served on http://%s/metrics", metrics_server_addr(m->server));
	return rc;
}

void osd_metrics_stop(struct osd *o)
{
	metrics_server_stop(o->metrics.server); /* its thread reads the registry */
	o->metrics.server = NULL;
	metrics_registry_free(o->metrics.registry);
	o->metrics.registry = NULL;
}

void osd_metrics_op_answered(struct osd *o, unsigned kind, int rc, uint64_t bytes,
			     uint64_t start_ns)
{
	struct osd_metrics *m = &o->metrics;
	uint64_t now = io_now_ns(o->loop);
	metrics_histogram_observe_ns(m->latency[kind], now > start_ns ? now - start_ns : 0);
	if (rc < 0) {
		metrics_counter_add(m->errors[kind], 1);
		return;
	}
	if (kind == OSD_OP_READ - 1)
		metrics_counter_add(m->read_bytes, bytes);
	else if (kind == OSD_OP_WRITE - 1 || kind == OSD_METRICS_REPLICA + PG_SUB_WRITE - 1)
		metrics_counter_add(m->written_bytes, bytes);
}

static void count_pg(struct osd_pg *pg, void *arg)
{
	uint64_t *counts = arg;
	counts[pg->state == PG_STATE_RECOVERING && pg->backfill ? PG_STATE_BACKFILLING : pg->state]++;
}

static void publish(struct osd *o)
{
	struct osd_metrics *m = &o->metrics;
	struct store_usage u;
	store_usage(o->store, &u);
	metrics_gauge_set(m->journal_used, (int64_t)u.journal_used_bytes);
	metrics_gauge_set(m->journal_size, (int64_t)u.journal_bytes);
	metrics_gauge_set(m->store_used, (int64_t)u.used_bytes);
	metrics_gauge_set(m->objects, (int64_t)u.objects);
	metrics_counter_set(m->csum_errors, u.csum_errors);
	metrics_counter_set(m->read_errors, u.read_errors);
	uint64_t data_bytes, available_bytes;
	store_space(o->store, &data_bytes, &available_bytes);
	metrics_gauge_set(m->store_size, (int64_t)data_bytes);
	metrics_gauge_set(m->store_free, (int64_t)available_bytes);
	metrics_gauge_set(m->map_epoch, (int64_t)monsess_map(o->mon)->epoch);
	metrics_gauge_set(m->waiting_for_map, o->n_early);
	struct osd_pgs *pgs = o->pgs;
	metrics_gauge_set(m->in_flight, (int64_t)pgs->client_ops);
	uint64_t counts[OSD_METRICS_PG_STATES] = { 0 };
	pg_for_each(o, count_pg, counts);
	for (unsigned i = 1; i < OSD_METRICS_PG_STATES; i++)
		metrics_gauge_set(m->pgs[i], (int64_t)counts[i]);
	metrics_counter_set(m->recovered_objects, pgs->rec_objects_total);
	metrics_counter_set(m->recovered_bytes, pgs->rec_bytes_total);
	metrics_counter_set(m->scrubs, pgs->scrubs_done);
	metrics_counter_set(m->scrubbed_objects, pgs->scrubbed_objects);
	metrics_counter_set(m->bad_found, pgs->bad_found);
	metrics_counter_set(m->bad_repaired, pgs->bad_repaired);
	metrics_counter_set(m->peerings_log, pgs->peerings_log);
	metrics_counter_set(m->peerings_full, pgs->peerings_full);
	metrics_counter_set(m->peering_bytes, pgs->peering_bytes);
	metrics_gauge_set(m->pg_log_entries, (int64_t)pgs->log_entries);
	const struct msgr_stats *ms = msgr_stats(o->msgr);
	metrics_counter_set(m->msgr_bytes[0], ms->bytes_sent);
	metrics_counter_set(m->msgr_bytes[1], ms->bytes_received);
}

void osd_metrics_tick(struct osd *o, uint64_t now_ns)
{
	if (!o->metrics.registry || !o->store || !o->pgs ||
	    (o->metrics.published_ns && now_ns - o->metrics.published_ns < OSD_METRICS_PUBLISH_NS))
		return;
	o->metrics.published_ns = now_ns;
	publish(o);
}
