/* The metrics registry and its rendering in the Prometheus text format
 * 0.0.4 (metrics.h). Registration appends to lists under a mutex and
 * publishes each node with a release store, so the HTTP thread walks them
 * without a lock while the loop updates values with relaxed atomics. */
#include "metrics.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "assert.h"
#include "common/version.h"

#define METRICS_HELP_MAX 256

struct metrics_family {
	struct metrics_registry *registry;
	struct metrics_family *_Atomic next;
	enum metrics_type type;
	char name[METRICS_NAME_MAX];
	char help[METRICS_HELP_MAX];
	unsigned label_count;
	char label_names[METRICS_LABELS_MAX][METRICS_NAME_MAX];
	struct metrics_series *_Atomic first;
	struct metrics_series *last; /* under the registry's lock */
};

struct metrics_registry {
	pthread_mutex_t lock; /* registration only */
	struct metrics_family *_Atomic first;
	struct metrics_family *last;
	int error;
	/* What a failed registration hands out: updates land here, unseen. */
	struct metrics_family placeholder_family;
	struct metrics_series placeholder_series;
};

const uint64_t metrics_bucket_bounds_ns[METRICS_BUCKETS] = {
	50000,	   100000,    250000,	 500000,     1000000,	 2500000,
	5000000,   10000000,  25000000,	 50000000,   100000000,	 250000000,
	500000000, 1000000000, 2500000000, 5000000000, 10000000000,
};

/* --- registration ---------------------------------------------------- */

static bool name_valid(const char *name, bool colon_ok)
{
	if (!*name || strlen(name) >= METRICS_NAME_MAX || (*name >= '0' && *name <= '9'))
		return false;
	for (const char *p = name; *p; p++) {
		bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			  (*p >= '0' && *p <= '9') || *p == '_' || (colon_ok && *p == ':');
		if (!ok)
			return false;
	}
	return true;
}

int metrics_registry_create(struct metrics_registry **out)
{
	struct metrics_registry *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	pthread_mutex_init(&r->lock, NULL);
	r->placeholder_family.registry = r;
	r->placeholder_series.family = &r->placeholder_family;
	struct metrics_series *build = metrics_series(
		metrics_family(r, METRICS_GAUGE, "basalt_build_info",
			       "Always 1; the version label says which Basalt runs", "version"),
		BASALT_VERSION);
	metrics_gauge_set(build, 1);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	metrics_gauge_set(metrics_single(r, METRICS_GAUGE, "process_start_time_seconds",
					 "Start time of the process since the Unix epoch, seconds"),
			  (int64_t)now.tv_sec);
	if (r->error) {
		metrics_registry_free(r);
		return -ENOMEM;
	}
	*out = r;
	return 0;
}

void metrics_registry_free(struct metrics_registry *r)
{
	if (!r)
		return;
	struct metrics_family *f = atomic_load(&r->first);
	while (f) {
		struct metrics_series *s = atomic_load(&f->first);
		while (s) {
			struct metrics_series *next = atomic_load(&s->next);
			free(s);
			s = next;
		}
		struct metrics_family *next = atomic_load(&f->next);
		free(f);
		f = next;
	}
	pthread_mutex_destroy(&r->lock);
	free(r);
}

/* Splits "a,b" into F's label names; aborts on a broken one. */
static void family_set_labels(struct metrics_family *f, const char *labels)
{
	while (labels && *labels) {
		BASALT_ASSERT(f->label_count < METRICS_LABELS_MAX);
		const char *comma = strchr(labels, ',');
		size_t len = comma ? (size_t)(comma - labels) : strlen(labels);
		BASALT_ASSERT(len < METRICS_NAME_MAX);
		char *name = f->label_names[f->label_count++];
		memcpy(name, labels, len);
		name[len] = '\0';
		BASALT_ASSERT(name_valid(name, false) && strcmp(name, "le") != 0);
		labels = comma ? comma + 1 : NULL;
	}
}

struct metrics_family *metrics_family(struct metrics_registry *r, enum metrics_type type,
				      const char *name, const char *help, const char *labels)
{
	BASALT_ASSERT(name_valid(name, true) && strlen(help) < METRICS_HELP_MAX);
	struct metrics_family *f = calloc(1, sizeof(*f));
	if (!f) {
		pthread_mutex_lock(&r->lock);
		r->error = -ENOMEM;
		pthread_mutex_unlock(&r->lock);
		return &r->placeholder_family;
	}
	f->registry = r;
	f->type = type;
	snprintf(f->name, sizeof(f->name), "%s", name);
	snprintf(f->help, sizeof(f->help), "%s", help);
	family_set_labels(f, labels);
	pthread_mutex_lock(&r->lock);
	if (r->last)
		atomic_store_explicit(&r->last->next, f, memory_order_release);
	else
		atomic_store_explicit(&r->first, f, memory_order_release);
	r->last = f;
	pthread_mutex_unlock(&r->lock);
	return f;
}

void metrics_op_kinds(struct metrics_registry *r, const char *noun, const char *help_count,
		      const char *help_errors, const char *help_latency,
		      const char *const *kinds, unsigned n, struct metrics_series **count,
		      struct metrics_series **errors, struct metrics_series **latency)
{
	char name[METRICS_NAME_MAX];
	snprintf(name, sizeof(name), "%ss_total", noun);
	struct metrics_family *c = metrics_family(r, METRICS_COUNTER, name, help_count, "op");
	snprintf(name, sizeof(name), "%s_errors_total", noun);
	struct metrics_family *e = metrics_family(r, METRICS_COUNTER, name, help_errors, "op");
	snprintf(name, sizeof(name), "%s_latency_seconds", noun);
	struct metrics_family *l = metrics_family(r, METRICS_HISTOGRAM, name, help_latency, "op");
	for (unsigned i = 0; i < n; i++) {
		count[i] = metrics_series(c, kinds[i]);
		errors[i] = metrics_series(e, kinds[i]);
		latency[i] = metrics_series(l, kinds[i]);
	}
}

struct metrics_series *metrics_series(struct metrics_family *f, ...)
{
	struct metrics_registry *r = f->registry;
	if (f == &r->placeholder_family)
		return &r->placeholder_series;
	struct metrics_series *s = calloc(1, sizeof(*s));
	pthread_mutex_lock(&r->lock);
	if (!s) {
		r->error = -ENOMEM;
		pthread_mutex_unlock(&r->lock);
		return &r->placeholder_series;
	}
	s->family = f;
	va_list ap;
	va_start(ap, f);
	for (unsigned i = 0; i < f->label_count; i++) {
		const char *v = va_arg(ap, const char *);
		BASALT_ASSERT(v && strlen(v) < METRICS_LABEL_VALUE_MAX);
		snprintf(s->label_values[i], sizeof(s->label_values[i]), "%s", v);
	}
	va_end(ap);
	if (f->last)
		atomic_store_explicit(&f->last->next, s, memory_order_release);
	else
		atomic_store_explicit(&f->first, s, memory_order_release);
	f->last = s;
	pthread_mutex_unlock(&r->lock);
	return s;
}

struct metrics_series *metrics_single(struct metrics_registry *r, enum metrics_type type,
				      const char *name, const char *help)
{
	return metrics_series(metrics_family(r, type, name, help, NULL));
}

int metrics_registry_error(const struct metrics_registry *r)
{
	return r->error;
}

void metrics_histogram_observe_ns(struct metrics_series *s, uint64_t ns)
{
	unsigned lo = 0, hi = METRICS_BUCKETS; /* the first bound >= ns; +Inf if none */
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		if (metrics_bucket_bounds_ns[mid] < ns)
			lo = mid + 1;
		else
			hi = mid;
	}
	atomic_fetch_add_explicit(&s->buckets[lo], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->sum_ns, ns, memory_order_relaxed);
}

/* --- rendering ------------------------------------------------------- */

/* The text is built in an open_memstream(3) stream: its buffer grows as
 * needed, and one check at fclose says whether memory ran out. */

/* S with \ and newline escaped (and " too in label values). */
static void text_escaped(FILE *t, const char *s, bool quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", t);
		else if (*s == '\n')
			fputs("\\n", t);
		else if (quote && *s == '"')
			fputs("\\\"", t);
		else
			fputc(*s, t);
	}
}

/* NS nanoseconds as exact decimal seconds in BUF: 50000 -> "0.00005". */
static const char *seconds_str(uint64_t ns, char buf[32])
{
	int n = snprintf(buf, 32, "%llu.%09llu", (unsigned long long)(ns / 1000000000),
			 (unsigned long long)(ns % 1000000000));
	while (buf[n - 1] == '0')
		buf[--n] = '\0';
	if (buf[n - 1] == '.')
		buf[n - 1] = '\0';
	return buf;
}

/* {a="x",b="y"[,le="LE"]} or nothing when there are no labels. */
static void text_labels(FILE *t, const struct metrics_series *s, const char *le)
{
	const struct metrics_family *f = s->family;
	if (!f->label_count && !le)
		return;
	fprintf(t, "{");
	for (unsigned i = 0; i < f->label_count; i++) {
		fprintf(t, "%s%s=\"", i ? "," : "", f->label_names[i]);
		text_escaped(t, s->label_values[i], true);
		fprintf(t, "\"");
	}
	if (le)
		fprintf(t, "%sle=\"%s\"", f->label_count ? "," : "", le);
	fprintf(t, "}");
}

static void render_histogram(FILE *t, const struct metrics_series *s)
{
	const char *name = s->family->name;
	uint64_t cumulative = 0;
	for (unsigned i = 0; i <= METRICS_BUCKETS; i++) {
		cumulative += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
		char le[32];
		fprintf(t, "%s_bucket", name);
		text_labels(t, s, i < METRICS_BUCKETS ? seconds_str(metrics_bucket_bounds_ns[i], le)
						      : "+Inf");
		fprintf(t, " %llu\n", (unsigned long long)cumulative);
	}
	fprintf(t, "%s_sum", name);
	text_labels(t, s, NULL);
	char sum[32];
	fprintf(t, " %s", seconds_str(atomic_load_explicit(&s->sum_ns, memory_order_relaxed), sum));
	/* _count is the +Inf bucket read above, so the two always agree. */
	fprintf(t, "\n%s_count", name);
	text_labels(t, s, NULL);
	fprintf(t, " %llu\n", (unsigned long long)cumulative);
}

static void render_family(FILE *t, const struct metrics_family *f)
{
	static const char *const type_names[] = { "counter", "gauge", "histogram" };
	fprintf(t, "# HELP %s ", f->name);
	text_escaped(t, f->help, false);
	fprintf(t, "\n# TYPE %s %s\n", f->name, type_names[f->type]);
	for (const struct metrics_series *s = atomic_load_explicit(&f->first, memory_order_acquire);
	     s; s = atomic_load_explicit(&s->next, memory_order_acquire)) {
		uint64_t v = atomic_load_explicit(&s->value, memory_order_relaxed);
		if (f->type == METRICS_HISTOGRAM) {
			render_histogram(t, s);
			continue;
		}
		fprintf(t, "%s", f->name);
		text_labels(t, s, NULL);
		if (f->type == METRICS_COUNTER)
			fprintf(t, " %llu\n", (unsigned long long)v);
		else
			fprintf(t, " %lld\n", (long long)(int64_t)v);
	}
}

int metrics_render(struct metrics_registry *r, char **out, size_t *len)
{
	FILE *t = open_memstream(out, len);
	if (!t)
		return -ENOMEM;
	for (const struct metrics_family *f = atomic_load_explicit(&r->first, memory_order_acquire);
	     f; f = atomic_load_explicit(&f->next, memory_order_acquire))
		render_family(t, f);
	bool failed = ferror(t);
	if (fclose(t) || failed) {
		free(*out);
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}
