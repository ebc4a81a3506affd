/* Prometheus metrics: a registry of counters, gauges and histograms that
 * one thread (a daemon's event loop) updates with relaxed atomics, and an
 * HTTP server (libmicrohttpd, a thread of its own) that renders them in
 * the text exposition format 0.0.4 on GET /metrics.
 *
 * Families and their series are registered at start-up; updating a series
 * allocates nothing and takes no lock. Values that live in loop state (PG
 * states, store usage) are copied into gauges by the loop, never read by
 * the HTTP thread. */
#ifndef BASALT_COMMON_METRICS_H
#define BASALT_COMMON_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum metrics_type {
	METRICS_COUNTER,
	METRICS_GAUGE,
	METRICS_HISTOGRAM,
};

#define METRICS_LABELS_MAX 3
#define METRICS_NAME_MAX 96
#define METRICS_LABEL_VALUE_MAX 64
/* Histogram bucket bounds, in nanoseconds: 50us to 10s (rendered in
 * seconds, Prometheus's base unit). */
#define METRICS_BUCKETS 17

struct metrics_registry;
struct metrics_family;

/* One series: a family with fixed label values. Counters and gauges use
 * VALUE (a gauge's int64_t stored as its bit pattern); histograms BUCKETS
 * (per bucket, not cumulative; the last is +Inf) and SUM_NS. */
struct metrics_series {
	struct metrics_family *family;
	struct metrics_series *_Atomic next;
	char label_values[METRICS_LABELS_MAX][METRICS_LABEL_VALUE_MAX];
	_Atomic uint64_t value;
	_Atomic uint64_t buckets[METRICS_BUCKETS + 1];
	_Atomic uint64_t sum_ns;
};

/* The upper bounds of the histogram buckets, nanoseconds, ascending. */
extern const uint64_t metrics_bucket_bounds_ns[METRICS_BUCKETS];

/* --- the registry (start-up) ---------------------------------------- */

/* A new registry holding basalt_build_info{version=...} 1 and
 * process_start_time_seconds. 0 or -ENOMEM; caller frees with
 * metrics_registry_free (after metrics_server_stop). */
int metrics_registry_create(struct metrics_registry **out /* out */);
void metrics_registry_free(struct metrics_registry *r);

/* Registers a family. NAME and the comma-separated LABELS ("op,source", or
 * NULL for none) must be valid Prometheus names (a broken one aborts: they
 * are constants of the program). On allocation failure the registry keeps
 * -ENOMEM for metrics_registry_error and a placeholder is returned, so a
 * daemon registers everything, then checks once. */
struct metrics_family *metrics_family(struct metrics_registry *r, enum metrics_type type,
				      const char *name, const char *help, const char *labels);
/* A series of FAMILY with one label value per label name, in order. The
 * values are escaped when rendered. Same failure rule as metrics_family;
 * the series lives as long as the registry. */
struct metrics_series *metrics_series(struct metrics_family *family, ...);
/* A family without labels and its only series, in one call. */
struct metrics_series *metrics_single(struct metrics_registry *r, enum metrics_type type,
				      const char *name, const char *help);
/* The three families every front end keeps per kind of operation, label
 * "op": NOUNs_total (HELP_COUNT), NOUN_errors_total (HELP_ERRORS) and the
 * histogram NOUN_latency_seconds (HELP_LATENCY), NOUN a full name prefix
 * ("basalt_osd_op"); the series of KINDS[i] into COUNT[i], ERRORS[i] and
 * LATENCY[i]. Same failure rule as metrics_family. */
void metrics_op_kinds(struct metrics_registry *r, const char *noun, const char *help_count,
		      const char *help_errors, const char *help_latency,
		      const char *const *kinds, unsigned n, struct metrics_series **count,
		      struct metrics_series **errors, struct metrics_series **latency);
/* 0, or -ENOMEM if any registration failed. */
int metrics_registry_error(const struct metrics_registry *r);

/* --- updates (any one thread; lock-free) ----------------------------- */

static inline void metrics_counter_add(struct metrics_series *s, uint64_t n)
{
	atomic_fetch_add_explicit(&s->value, n, memory_order_relaxed);
}
/* For a total the loop keeps anyway (copied on its publishing timer):
 * V must never go down. */
static inline void metrics_counter_set(struct metrics_series *s, uint64_t v)
{
	atomic_store_explicit(&s->value, v, memory_order_relaxed);
}
static inline void metrics_gauge_set(struct metrics_series *s, int64_t v)
{
	atomic_store_explicit(&s->value, (uint64_t)v, memory_order_relaxed);
}
static inline void metrics_gauge_add(struct metrics_series *s, int64_t delta)
{
	atomic_fetch_add_explicit(&s->value, (uint64_t)delta, memory_order_relaxed);
}
/* Observes a latency of NS nanoseconds (from the loop's clock). */
void metrics_histogram_observe_ns(struct metrics_series *s, uint64_t ns);

/* --- rendering and serving ------------------------------------------ */

/* The whole registry in the text format 0.0.4 into a new NUL-terminated
 * string (caller frees); *LEN its length. 0 or -ENOMEM. Safe from any
 * thread while the updates go on. */
int metrics_render(struct metrics_registry *r, char **text /* out */, size_t *len /* out */);

/* Parses a metrics_addr: HOST:PORT with HOST an IPv4 address, [IPv6] or a
 * name; PORT 1-65535. 0 or -EINVAL with WHY saying what is wrong. */
int metrics_addr_parse(const char *text, struct sockaddr_storage *addr /* out */,
		       socklen_t *addrlen /* out */, char *why, size_t why_len);

/* An address that serves nothing: to turn off what a config section
 * further up (or a parent's config) asks for. */
#define METRICS_ADDR_OFF "off"

struct metrics_server;
/* Serves R on ADDR (metrics_addr_parse's grammar) from a thread of its
 * own; for METRICS_ADDR_OFF *OUT is NULL and nothing is served. 0, or
 * -errno with WHY naming metrics_addr and the cause (a bad address, a
 * port in use). R is borrowed until metrics_server_stop. */
int metrics_server_start(struct metrics_registry *r, const char *addr,
			 struct metrics_server **out /* out */, char *why, size_t why_len);
/* metrics_server_start in two steps, for a program that forks between
 * them (a thread does not survive fork): bind listens on ADDR, so a bad
 * address or a port in use is said at once; run starts the thread. Stop
 * S either way. */
int metrics_server_bind(struct metrics_registry *r, const char *addr,
			struct metrics_server **out /* out */, char *why, size_t why_len);
int metrics_server_run(struct metrics_server *s, char *why, size_t why_len);
/* The bound port, and the address as given. */
uint16_t metrics_server_port(const struct metrics_server *s);
const char *metrics_server_addr(const struct metrics_server *s);
/* Stops the thread and frees S; NULL is a no-op. */
void metrics_server_stop(struct metrics_server *s);

struct cfg;
/* Starts a server when metrics_addr is set in SECTION (then its type's
 * section, then [global]); *OUT is NULL when it is not (metrics are off by
 * default). 0 or -errno with WHY naming the file, section and metrics_addr. */
int metrics_server_start_config(struct metrics_registry *r, struct cfg *cfg, const char *section,
				struct metrics_server **out /* out */, char *why, size_t why_len);
/* The same with metrics_server_bind: run it later. */
int metrics_server_bind_config(struct metrics_registry *r, struct cfg *cfg, const char *section,
			       struct metrics_server **out /* out */, char *why, size_t why_len);

#endif
