/* Metrics: the text format of each type, bucket edges, label escaping,
 * concurrent updates, metrics_addr parsing and the HTTP server's answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/config.h"
#include "common/metrics.h"
#include "common/version.h"

static char *render(struct metrics_registry *r)
{
	char *text;
	size_t len;
	assert_int_equal(metrics_render(r, &text, &len), 0);
	assert_int_equal(strlen(text), len);
	assert_true(len > 0 && text[len - 1] == '\n');
	return text;
}

static void assert_contains(const char *text, const char *want)
{
	if (!strstr(text, want))
		fail_msg("missing:\n%s\n--- in:\n%s", want, text);
}

static void test_counter_and_gauge(void **state)
{
	struct metrics_registry *r;
	assert_int_equal(metrics_registry_create(&r), 0);
	struct metrics_family *ops =
		metrics_family(r, METRICS_COUNTER, "t_ops_total", "Ops done", "op,source");
	struct metrics_series *rd = metrics_series(ops, "read", "client");
	struct metrics_series *wr = metrics_series(ops, "write", "replica");
	struct metrics_series *g = metrics_single(r, METRICS_GAUGE, "t_depth", "Queue depth");
	metrics_counter_add(rd, 3);
	metrics_counter_add(rd, 4);
	metrics_gauge_set(g, 10);
	metrics_gauge_add(g, -12);
	assert_int_equal(metrics_registry_error(r), 0);
	char *text = render(r);
	assert_contains(text, "# HELP t_ops_total Ops done\n# TYPE t_ops_total counter\n"
			      "t_ops_total{op=\"read\",source=\"client\"} 7\n"
			      "t_ops_total{op=\"write\",source=\"replica\"} 0\n");
	assert_contains(text, "# HELP t_depth Queue depth\n# TYPE t_depth gauge\nt_depth -2\n");
	assert_contains(text, "basalt_build_info{version=\"" BASALT_VERSION "\"} 1\n");
	assert_contains(text, "# TYPE process_start_time_seconds gauge\n");
	(void)wr;
	free(text);
	metrics_registry_free(r);
}

static void test_histogram(void **state)
{
	struct metrics_registry *r;
	assert_int_equal(metrics_registry_create(&r), 0);
	struct metrics_series *h = metrics_series(
		metrics_family(r, METRICS_HISTOGRAM, "t_latency_seconds", "Latency", "op"), "read");
	metrics_histogram_observe_ns(h, 0);	      /* first bucket */
	metrics_histogram_observe_ns(h, 50000);	      /* on the first bound: still in it */
	metrics_histogram_observe_ns(h, 50001);	      /* just above: the next */
	metrics_histogram_observe_ns(h, 1000000000);  /* exactly 1 s */
	metrics_histogram_observe_ns(h, 10000000001); /* above 10 s: +Inf only */
	char *text = render(r);
	assert_contains(text, "# TYPE t_latency_seconds histogram\n"
			      "t_latency_seconds_bucket{op=\"read\",le=\"0.00005\"} 2\n"
			      "t_latency_seconds_bucket{op=\"read\",le=\"0.0001\"} 3\n"
			      "t_latency_seconds_bucket{op=\"read\",le=\"0.00025\"} 3\n");
	assert_contains(text, "t_latency_seconds_bucket{op=\"read\",le=\"0.5\"} 3\n"
			      "t_latency_seconds_bucket{op=\"read\",le=\"1\"} 4\n");
	assert_contains(text, "t_latency_seconds_bucket{op=\"read\",le=\"10\"} 4\n"
			      "t_latency_seconds_bucket{op=\"read\",le=\"+Inf\"} 5\n"
			      "t_latency_seconds_sum{op=\"read\"} 11.000100002\n"
			      "t_latency_seconds_count{op=\"read\"} 5\n");
	free(text);
	metrics_registry_free(r);
}

static void test_escaping(void **state)
{
	struct metrics_registry *r;
	assert_int_equal(metrics_registry_create(&r), 0);
	struct metrics_family *f =
		metrics_family(r, METRICS_GAUGE, "t_x", "Help with \\ and\nnewline \"kept\"", "path");
	metrics_gauge_set(metrics_series(f, "a\\b\"c\nd"), 1);
	char *text = render(r);
	assert_contains(text, "# HELP t_x Help with \\\\ and\\nnewline \"kept\"\n");
	assert_contains(text, "t_x{path=\"a\\\\b\\\"c\\nd\"} 1\n");
	free(text);
	metrics_registry_free(r);
}

#define ADDS_PER_THREAD 1000000

/* metrics_op_kinds: the three families of a front end, one series of
 * each per kind. */
static void test_op_kinds(void **state)
{
	struct metrics_registry *r;
	assert_int_equal(metrics_registry_create(&r), 0);
	static const char *const kinds[] = { "read", "write" };
	struct metrics_series *count[2], *errors[2], *latency[2];
	metrics_op_kinds(r, "t_request", "Requests", "Failed requests", "Request time", kinds, 2,
			 count, errors, latency);
	metrics_counter_add(count[1], 2);
	metrics_counter_add(errors[0], 1);
	metrics_histogram_observe_ns(latency[1], 1000);
	assert_int_equal(metrics_registry_error(r), 0);
	char *text = render(r);
	assert_contains(text, "# HELP t_requests_total Requests\n# TYPE t_requests_total counter\n"
			      "t_requests_total{op=\"read\"} 0\nt_requests_total{op=\"write\"} 2\n");
	assert_contains(text, "# TYPE t_request_errors_total counter\n"
			      "t_request_errors_total{op=\"read\"} 1\n");
	assert_contains(text, "# TYPE t_request_latency_seconds histogram\n");
	assert_contains(text, "t_request_latency_seconds_count{op=\"write\"} 1\n");
	free(text);
	metrics_registry_free(r);
}

static void *add_many(void *arg)
{
	struct metrics_series **s = arg;
	for (unsigned i = 0; i < ADDS_PER_THREAD; i++) {
		metrics_counter_add(s[0], 1);
		metrics_histogram_observe_ns(s[1], 1000);
	}
	return NULL;
}

static void test_concurrent_updates(void **state)
{
	struct metrics_registry *r;
	assert_int_equal(metrics_registry_create(&r), 0);
	struct metrics_series *s[2] = {
		metrics_single(r, METRICS_COUNTER, "t_total", "Adds"),
		metrics_single(r, METRICS_HISTOGRAM, "t_seconds", "Observations"),
	};
	pthread_t a, b;
	assert_int_equal(pthread_create(&a, NULL, add_many, s), 0);
	assert_int_equal(pthread_create(&b, NULL, add_many, s), 0);
	for (int i = 0; i < 20; i++) /* render while they run, as a scrape would */
		free(render(r));
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	char *text = render(r);
	assert_contains(text, "t_total 2000000\n");
	assert_contains(text, "t_seconds_count 2000000\n");
	assert_contains(text, "t_seconds_sum 2\n");
	free(text);
	metrics_registry_free(r);
}

static void test_bad_addrs(void **state)
{
	static const char *const bad[] = {
		"", "localhost", "127.0.0.1", ":9100", "127.0.0.1:0", "127.0.0.1:65536",
		"127.0.0.1:x", "::1:9100", "[::1:9100", "[]:9100", "no-such-host.invalid:9100",
	};
	struct sockaddr_storage addr;
	socklen_t len;
	char why[256];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		if (metrics_addr_parse(bad[i], &addr, &len, why, sizeof(why)) != -EINVAL)
			fail_msg("accepted '%s'", bad[i]);
		assert_non_null(strstr(why, "metrics_addr"));
	}
	assert_int_equal(metrics_addr_parse("127.0.0.1:9100", &addr, &len, why, sizeof(why)), 0);
	assert_int_equal(addr.ss_family, AF_INET);
	assert_int_equal(metrics_addr_parse("[::1]:9100", &addr, &len, why, sizeof(why)), 0);
	assert_int_equal(addr.ss_family, AF_INET6);
	assert_int_equal(metrics_addr_parse("localhost:9100", &addr, &len, why, sizeof(why)), 0);
}

/* A loopback socket bound to an ephemeral port, listening; its port. */
static int busy_port(int *fd)
{
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(in);
	*fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(*fd >= 0);
	assert_int_equal(bind(*fd, (struct sockaddr *)&in, sizeof(in)), 0);
	assert_int_equal(listen(*fd, 1), 0);
	assert_int_equal(getsockname(*fd, (struct sockaddr *)&in, &len), 0);
	return ntohs(in.sin_port);
}

/* Sends REQUEST to 127.0.0.1:PORT and returns the whole answer. */
static char *http(uint16_t port, const char *request)
{
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&in, sizeof(in)), 0);
	assert_int_equal(write(fd, request, strlen(request)), (ssize_t)strlen(request));
	size_t cap = 1 << 20, len = 0;
	char *buf = malloc(cap);
	ssize_t n;
	while ((n = read(fd, buf + len, cap - len - 1)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	close(fd);
	return buf;
}

static void test_server(void **state)
{
	struct metrics_registry *r;
	assert_int_equal(metrics_registry_create(&r), 0);
	metrics_counter_add(metrics_single(r, METRICS_COUNTER, "t_served_total", "Served"), 5);
	int fd;
	char addr[64], why[256];
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", busy_port(&fd));
	struct metrics_server *s;
	assert_int_equal(metrics_server_start(r, addr, &s, why, sizeof(why)), -EADDRINUSE);
	assert_non_null(strstr(why, "metrics_addr"));
	assert_non_null(strstr(why, "in use"));
	close(fd); /* now free */
	assert_int_equal(metrics_server_start(r, addr, &s, why, sizeof(why)), 0);
	uint16_t port = metrics_server_port(s);
	char *a = http(port, "GET /metrics HTTP/1.0\r\n\r\n");
	assert_contains(a, " 200 OK\r\n");
	assert_contains(a, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n");
	assert_contains(a, "\r\n\r\n# HELP ");
	assert_contains(a, "\nt_served_total 5\n");
	free(a);
	a = http(port, "GET /other HTTP/1.0\r\n\r\n");
	assert_contains(a, " 404 ");
	free(a);
	a = http(port, "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n");
	assert_contains(a, " 405 ");
	assert_contains(a, "Allow: GET, HEAD");
	free(a);
	metrics_server_stop(s);
	metrics_registry_free(r);
}

/* metrics_addr is looked up in the daemon's section, its type's, then
 * [global]; a bad one names the file, the section and the key. */
static void test_config(void **state)
{
	struct metrics_registry *r;
	assert_int_equal(metrics_registry_create(&r), 0);
	struct cfg *cfg;
	char why[512];
	assert_int_equal(cfg_load_string("t.conf",
					 "[global]\nmetrics_addr = 127.0.0.1:99999\n"
					 "[osd]\nmetrics_addr = nowhere\n[osd.1]\n[mon.a]\n",
					 &cfg, why, sizeof(why)),
			 0);
	struct metrics_server *s = (void *)1;
	assert_int_equal(metrics_server_start_config(r, cfg, "osd.1", &s, why, sizeof(why)), -EINVAL);
	assert_null(s);
	assert_contains(why, "t.conf:4: [osd] metrics_addr:");
	assert_contains(why, "'nowhere'");
	assert_int_equal(metrics_server_start_config(r, cfg, "mon.a", &s, why, sizeof(why)), -EINVAL);
	assert_contains(why, "t.conf:2: [global] metrics_addr:");
	cfg_free(cfg);
	assert_int_equal(cfg_load_string("t.conf", "[global]\n[osd.1]\n", &cfg, why, sizeof(why)), 0);
	s = (void *)1;
	assert_int_equal(metrics_server_start_config(r, cfg, "osd.1", &s, why, sizeof(why)), 0);
	assert_null(s); /* off by default */
	cfg_free(cfg);
	/* "off" in a section turns off what [global] asks for; on its own
	 * too (what basalt-docker hands its basalt-fuse children). */
	assert_int_equal(cfg_load_string("t.conf",
					 "[global]\nmetrics_addr = nowhere\n[fuse]\nmetrics_addr = off\n",
					 &cfg, why, sizeof(why)),
			 0);
	s = (void *)1;
	assert_int_equal(metrics_server_start_config(r, cfg, "fuse", &s, why, sizeof(why)), 0);
	assert_null(s);
	cfg_free(cfg);
	s = (void *)1;
	assert_int_equal(metrics_server_start(r, METRICS_ADDR_OFF, &s, why, sizeof(why)), 0);
	assert_null(s);
	metrics_registry_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counter_and_gauge), cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_escaping),	  cmocka_unit_test(test_concurrent_updates),
		cmocka_unit_test(test_bad_addrs),	  cmocka_unit_test(test_server),
		cmocka_unit_test(test_config),	  cmocka_unit_test(test_op_kinds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
