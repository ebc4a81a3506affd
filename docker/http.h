/* basalt-docker's HTTP side: libmicrohttpd on a Unix socket we bind
 * ourselves, one thread answering one request at a time (so the driver
 * needs no locks). Every call is a POST of a JSON object; the reply is
 * JSON too. A body over DK_HTTP_BODY_MAX or not a JSON object is refused
 * with {"Err": why} before the driver sees it. */
#ifndef BASALT_DOCKER_HTTP_H
#define BASALT_DOCKER_HTTP_H

#include <jansson.h>

#define DK_HTTP_BODY_MAX (64 * 1024)

/* Answers a call: the reply (caller frees), *STATUS the HTTP status. */
typedef json_t *(*dk_http_call_fn)(void *ctx, const char *path, json_t *req, unsigned *status);

struct dk_http;

/* Binds PATH (replacing a stale socket there, mode 0660) and serves it
 * from a thread of libmicrohttpd's: 0, or -errno with WHY. */
int dk_http_start(const char *path, dk_http_call_fn call, void *ctx, struct dk_http **out,
		  char *why, size_t why_len);
/* Stops serving (a request being answered finishes first) and removes
 * the socket. */
void dk_http_stop(struct dk_http *h);

#endif
