/* basalt-nbd's server: exports Basalt volumes over the NBD protocol
 * (fixed newstyle handshake; OPT_GO/INFO/LIST/ABORT, structured replies,
 * base:allocation block status; READ, WRITE, FLUSH, TRIM, WRITE_ZEROES,
 * CACHE, BLOCK_STATUS, DISC) on TCP and Unix sockets, every connection on
 * one io_uring loop beside the libbasalt client. Export name = volume
 * name. Requests of one connection run in parallel and are answered as
 * they finish. A connection takes the volume's exclusive lock
 * (libbasalt.h) at its first WRITE, TRIM, WRITE_ZEROES or FLUSH, not at
 * GO (a client cannot say it only reads), and the server keeps it until
 * the last connection holding it closes; a change to a volume locked
 * elsewhere is refused with EPERM and the holder named in the log. Reads
 * need no lock. Export backup:ID serves a backup from the repository,
 * read-only, its chunks fetched on demand (nbd_backup.h). TLS comes with
 * NBD_OPT_STARTTLS (common/tls.h under the connection's receives and
 * sends), optional or required (the spec's FORCEDTLS). */
#ifndef BASALT_CLIENT_NBD_H
#define BASALT_CLIENT_NBD_H

#include <stdbool.h>
#include <stdint.h>

#include "common/io/loop.h"
#include "common/metrics.h"
#include "common/tls.h"
#include "client/libbasalt.h"
#include "client/nbd/nbd_backup.h"

struct nbd_server;

enum nbd_tls_mode {
	NBD_TLS_OFF,	 /* STARTTLS answered ERR_POLICY */
	NBD_TLS_ON,	 /* STARTTLS offered; plain clients served too */
	NBD_TLS_REQUIRE, /* FORCEDTLS: every option but STARTTLS and ABORT
			  * answered ERR_TLS_REQD before TLS */
};

struct nbd_params {
	bool read_only;		     /* every export read-only (no locks taken) */
	bool break_lock;	     /* take volume locks over from their holders */
	uint64_t handshake_timeout_ms; /* to choose an export; default 10 s */
	uint32_t max_request;	     /* bytes; default 32 MiB */
	uint32_t max_inflight;	     /* requests per connection; default 64 */
	uint32_t max_conns;	     /* open connections; default 256 */
	uint32_t max_conns_per_host; /* from one client address; default 64 */
	/* Exports backup:ID, read-only, through this chunk cache (borrowed);
	 * NULL: no backup repository configured. */
	struct nbd_backups *backups;
	enum nbd_tls_mode tls;
	struct tls_config *tls_config; /* a server's, borrowed; with tls != OFF */
	/* Where the server's basalt_nbd_* series go (borrowed; NULL: counted
	 * nowhere visible). */
	struct metrics_registry *metrics;
};

/* A server on LOOP serving volumes through CLIENT (both borrowed). */
int nbd_server_create(struct io_loop *loop, struct bs_client *client,
		      const struct nbd_params *p, struct nbd_server **out);
/* Listens on HOST:PORT (PORT 0 picks one, reported in *PORT_OUT). */
int nbd_server_listen_tcp(struct nbd_server *s, const char *host, uint16_t port,
			  uint16_t *port_out);
/* Listens on a Unix socket at PATH (replacing a stale socket file). */
int nbd_server_listen_unix(struct nbd_server *s, const char *path);
/* Closes the listeners and every connection, waiting up to TIMEOUT_MS
 * for the requests in flight to be answered (running LOOP), then gives
 * the volume locks back (at most 5 s more: with no monitor to answer,
 * the leases run out instead). 0, or -ETIMEDOUT when requests still wait
 * for the cluster: then S cannot be freed, and the caller exits. */
int nbd_server_stop(struct nbd_server *s, uint64_t timeout_ms);
/* Frees a stopped S (nbd_server_stop returned 0). */
void nbd_server_destroy(struct nbd_server *s);

struct nbd_server_stats {
	uint64_t connections, requests, errors, bad_clients;
	uint32_t open;
};
void nbd_server_stats(const struct nbd_server *s, struct nbd_server_stats *out);

#endif
