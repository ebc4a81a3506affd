/* The metrics HTTP server (metrics.h): libmicrohttpd with its own polling
 * thread answers GET /metrics with the rendered registry. We bind the
 * listening socket ourselves so a bad address or a port in use is reported
 * with its real cause before the daemon starts serving anything else. */
#include "metrics.h"

#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "io/loop.h"
#include "why.h"

/* Prometheus scrapes one at a time; a few more leave room for curl. */
#define METRICS_CONNECTIONS_MAX 8
#define METRICS_CONNECTION_TIMEOUT_S 10

struct metrics_server {
	struct metrics_registry *registry;
	struct MHD_Daemon *daemon;
	int fd;
	bool ipv6;
	uint16_t port;
	char addr[272];
};

int metrics_addr_parse(const char *text, struct sockaddr_storage *addr, socklen_t *addrlen,
		       char *why, size_t why_len)
{
	char host[256];
	uint16_t port;
	if (cfg_parse_hostport(text, host, sizeof(host), &port))
		return why_set(why, why_len, -EINVAL,
			       "metrics_addr '%s' must be HOST:PORT with a port from 1 to 65535", text);
	size_t len = strlen(host);
	if (host[0] == '[') { /* [IPv6]:PORT */
		if (len < 3 || host[len - 1] != ']')
			return why_set(why, why_len, -EINVAL,
				       "metrics_addr '%s': an IPv6 address goes in [brackets]", text);
		memmove(host, host + 1, len - 2);
		host[len - 2] = '\0';
	} else if (strchr(host, ':')) {
		return why_set(why, why_len, -EINVAL,
			       "metrics_addr '%s': write an IPv6 address as [ADDR]:PORT", text);
	}
	int rc = io_resolve(host, port, addr, addrlen);
	if (rc)
		return why_set(why, why_len, -EINVAL, "metrics_addr '%s': cannot resolve '%s'", text,
			       host);
	return 0;
}

/* A listening TCP socket on ADDR, or -errno. */
static int listen_on(const struct sockaddr_storage *addr, socklen_t addrlen, int *fd_out)
{
	int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (addr->ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)addr, addrlen) || listen(fd, METRICS_CONNECTIONS_MAX)) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	*fd_out = fd;
	return 0;
}

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned status, char *body,
			      size_t len, const char *content_type)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(len, body, free);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	enum MHD_Result rc = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return rc;
}

static enum MHD_Result answer_text(struct MHD_Connection *conn, unsigned status, const char *msg)
{
	char *body = strdup(msg);
	if (!body)
		return MHD_NO;
	return answer(conn, status, body, strlen(body), "text/plain; charset=utf-8");
}

/* On the server's thread: GET /metrics renders the registry; every other
 * path is 404 and every other method 405. */
static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_len, void **conn_state)
{
	struct metrics_server *s = cls;
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return answer_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET is served\n");
	if (strcmp(url, "/metrics"))
		return answer_text(conn, MHD_HTTP_NOT_FOUND, "not found: metrics are at /metrics\n");
	char *text;
	size_t len;
	if (metrics_render(s->registry, &text, &len))
		return answer_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	return answer(conn, MHD_HTTP_OK, text, len, "text/plain; version=0.0.4; charset=utf-8");
}

int metrics_server_bind(struct metrics_registry *r, const char *addr_text,
			struct metrics_server **out, char *why, size_t why_len)
{
	struct sockaddr_storage addr;
	socklen_t addrlen;
	*out = NULL;
	if (strcmp(addr_text, METRICS_ADDR_OFF) == 0)
		return 0;
	int rc = metrics_addr_parse(addr_text, &addr, &addrlen, why, why_len);
	if (rc)
		return rc;
	struct metrics_server *s = calloc(1, sizeof(*s));
	if (!s)
		return why_set(why, why_len, -ENOMEM, "metrics_addr %s: out of memory", addr_text);
	s->registry = r;
	snprintf(s->addr, sizeof(s->addr), "%s", addr_text);
	rc = listen_on(&addr, addrlen, &s->fd);
	if (rc) {
		free(s);
		return why_set(why, why_len, rc, "metrics_addr %s: cannot listen: %s", addr_text,
			       strerror(-rc));
	}
	struct sockaddr_storage bound;
	socklen_t bound_len = sizeof(bound);
	getsockname(s->fd, (struct sockaddr *)&bound, &bound_len);
	s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
						    : ((struct sockaddr_in *)&bound)->sin_port);
	s->ipv6 = addr.ss_family == AF_INET6;
	*out = s;
	return 0;
}

int metrics_server_run(struct metrics_server *s, char *why, size_t why_len)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO;
	if (s->ipv6)
		flags |= MHD_USE_IPv6;
	s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, handle, s, MHD_OPTION_LISTEN_SOCKET, s->fd,
				     MHD_OPTION_CONNECTION_LIMIT, (unsigned)METRICS_CONNECTIONS_MAX,
				     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)METRICS_CONNECTION_TIMEOUT_S,
				     MHD_OPTION_END);
	if (!s->daemon)
		return why_set(why, why_len, -EIO, "metrics_addr %s: cannot start the HTTP server",
			       s->addr);
	return 0;
}

int metrics_server_start(struct metrics_registry *r, const char *addr,
			 struct metrics_server **out, char *why, size_t why_len)
{
	int rc = metrics_server_bind(r, addr, out, why, why_len);
	if (!rc && *out && (rc = metrics_server_run(*out, why, why_len))) {
		metrics_server_stop(*out);
		*out = NULL;
	}
	return rc;
}

uint16_t metrics_server_port(const struct metrics_server *s)
{
	return s->port;
}

const char *metrics_server_addr(const struct metrics_server *s)
{
	return s->addr;
}

void metrics_server_stop(struct metrics_server *s)
{
	if (!s)
		return;
	if (s->daemon)
		MHD_stop_daemon(s->daemon); /* joins the thread; the socket is ours */
	close(s->fd);
	free(s);
}

int metrics_server_bind_config(struct metrics_registry *r, struct cfg *cfg, const char *section,
			       struct metrics_server **out, char *why, size_t why_len)
{
	const char *addr;
	*out = NULL;
	if (cfg_get_str(cfg, section, "metrics_addr", "", &addr) < 0)
		return why_set(why, why_len, -EINVAL, "%s", cfg_error(cfg));
	if (!*addr)
		return 0;
	char reason[512];
	int rc = metrics_server_bind(r, addr, out, reason, sizeof(reason));
	if (rc) {
		cfg_reject(cfg, section, "metrics_addr", "%s", reason);
		return why_set(why, why_len, rc, "%s", cfg_error(cfg));
	}
	return 0;
}

int metrics_server_start_config(struct metrics_registry *r, struct cfg *cfg, const char *section,
				struct metrics_server **out, char *why, size_t why_len)
{
	int rc = metrics_server_bind_config(r, cfg, section, out, why, why_len);
	if (!rc && *out && (rc = metrics_server_run(*out, why, why_len))) {
		metrics_server_stop(*out);
		*out = NULL;
	}
	return rc;
}
