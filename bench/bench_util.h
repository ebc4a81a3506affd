/* Helpers shared by the benchmarks: clocks, CPU time and percentiles. */
#ifndef BASALT_BENCH_UTIL_H
#define BASALT_BENCH_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "common/size.h"

static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* User + system CPU seconds of the whole process (every thread). */
static inline double bench_cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* OPTION's TEXT as a size in the one grammar (common/size.h), up to MAX;
 * a bad one ends PROG with its reason and exit status 2 (a usage error). */
static inline uint64_t bench_size(const char *prog, const char *option, const char *text,
				  uint64_t max)
{
	uint64_t v;
	char why[512];
	if (size_parse_range(text, option, 0, max, &v, why, sizeof(why))) {
		fprintf(stderr, "%s: %s\n", prog, why);
		exit(2);
	}
	return v;
}

/* xorshift64: the load generators' offsets and objects (STATE nonzero). */
static inline uint64_t bench_rnd(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

/* Latency samples (ns), grown as they come. */
struct bench_samples {
	uint64_t *v;
	size_t n, cap;
};

static inline void bench_sample(struct bench_samples *s, uint64_t ns)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 1 << 16;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		if (!s->v)
			abort();
	}
	s->v[s->n++] = ns;
}

static inline int bench_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Sorts SAMPLES (ns) and returns their mean and 99th percentile in us. */
static inline void bench_latency(uint64_t *samples, uint64_t n, double *mean_us,
				 double *p99_us)
{
	*mean_us = *p99_us = 0;
	if (!n)
		return;
	qsort(samples, n, sizeof(*samples), bench_cmp_u64);
	double sum = 0;
	for (uint64_t i = 0; i < n; i++)
		sum += (double)samples[i];
	*mean_us = sum / (double)n / 1000.0;
	*p99_us = (double)samples[n * 99 / 100] / 1000.0;
}

#endif
