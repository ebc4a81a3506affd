/* basalt-docker's HTTP server (see http.h): the request body is gathered
 * (bounded), parsed with jansson, handed to the driver, and its reply
 * serialized back with the plugin protocol's content type. */
#include "http.h"

#include <errno.h>
#include <stdbool.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"

#define DK_CONTENT_TYPE "application/vnd.docker.plugins.v1+json"

struct dk_http {
	struct MHD_Daemon *mhd;
	dk_http_call_fn call;
	void *ctx;
	char path[108];
};

/* One request's body as it arrives. */
struct body {
	char *data;
	size_t len;
	bool too_big;
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, json_t *j)
{
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!text)
		return MHD_NO;
	struct MHD_Response *r =
		MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, DK_CONTENT_TYPE);
	enum MHD_Result ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result refuse(struct MHD_Connection *conn, unsigned status, const char *url,
			      const char *msg)
{
	LOG_WARN("%s: %s", url, msg);
	return reply(conn, status, json_pack("{s:s}", "Err", msg));
}

/* The whole body is in: parse it (empty or null means {}) and call. */
static enum MHD_Result answer(struct dk_http *h, struct MHD_Connection *conn, const char *url,
			      struct body *b)
{
	char msg[300];
	if (b->too_big) {
		snprintf(msg, sizeof(msg), "request body over %d bytes", DK_HTTP_BODY_MAX);
		return refuse(conn, MHD_HTTP_CONTENT_TOO_LARGE, url, msg);
	}
	json_error_t err;
	json_t *req = b->len ? json_loadb(b->data, b->len, JSON_DECODE_ANY, &err) : json_null();
	if (!req) {
		snprintf(msg, sizeof(msg), "the request body is not JSON: %s (line %d column %d)",
			 err.text, err.line, err.column);
		return refuse(conn, MHD_HTTP_BAD_REQUEST, url, msg);
	}
	if (json_is_null(req)) {
		json_decref(req);
		req = json_object();
	}
	if (!json_is_object(req)) {
		json_decref(req);
		return refuse(conn, MHD_HTTP_BAD_REQUEST, url, "the request body must be a JSON object");
	}
	unsigned status = 200;
	json_t *r = h->call(h->ctx, url, req, &status);
	json_decref(req);
	return reply(conn, status, r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_len, void **con_cls)
{
	(void)version;
	struct dk_http *h = cls;
	struct body *b = *con_cls;
	if (!b) { /* the headers: the body (if any) comes in later calls */
		if (!(b = calloc(1, sizeof(*b))))
			return MHD_NO;
		*con_cls = b;
		return MHD_YES;
	}
	if (*upload_len) {
		if (b->len + *upload_len > DK_HTTP_BODY_MAX) {
			b->too_big = true;
		} else {
			char *d = realloc(b->data, b->len + *upload_len);
			if (!d)
				return MHD_NO;
			memcpy(d + b->len, upload, *upload_len);
			b->data = d;
			b->len += *upload_len;
		}
		*upload_len = 0;
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_POST))
		return refuse(conn, MHD_HTTP_METHOD_NOT_ALLOWED, url,
			      "the plugin protocol takes POST only");
	return answer(h, conn, url, b);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	(void)cls, (void)conn, (void)toe;
	struct body *b = *con_cls;
	if (b)
		free(b->data);
	free(b);
	*con_cls = NULL;
}

/* A Unix socket listening on PATH: the fd, or -errno with WHY. */
static int listen_unix(const char *path, char *why, size_t why_len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(why, why_len, "socket path %s is too long (at most %zu bytes)", path,
			 sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (!lstat(path, &st) && S_ISSOCK(st.st_mode))
		unlink(path); /* left by a plugin that did not stop cleanly */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || chmod(path, 0660) ||
	    listen(fd, 64)) {
		int err = errno;
		snprintf(why, why_len, "cannot listen on %s: %s", path, strerror(err));
		close(fd);
		return -err;
	}
	return fd;
}

int dk_http_start(const char *path, dk_http_call_fn call, void *ctx, struct dk_http **out,
		  char *why, size_t why_len)
{
	struct dk_http *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	int fd = listen_unix(path, why, why_len);
	if (fd < 0) {
		free(h);
		return fd;
	}
	h->call = call;
	h->ctx = ctx;
	snprintf(h->path, sizeof(h->path), "%s", path);
	h->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL,
				  NULL, on_request, h, MHD_OPTION_LISTEN_SOCKET, fd,
				  MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)300, MHD_OPTION_END);
	if (!h->mhd) {
		snprintf(why, why_len, "cannot start the HTTP server on %s", path);
		close(fd);
		unlink(path);
		free(h);
		return -EIO;
	}
	*out = h;
	return 0;
}

void dk_http_stop(struct dk_http *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->mhd);
	unlink(h->path);
	free(h);
}
