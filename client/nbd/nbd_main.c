/* basalt-nbd: serves Basalt volumes over NBD until SIGTERM or SIGINT.
 *
 *   basalt-nbd [-c CONF] [--keyring PATH] [--name ENTITY]
 *              [--listen HOST:PORT]... [--socket PATH]... [--read-only]
 *              [--break-lock] [--handshake-timeout MS] [--log-file PATH]
 *              [--backup-repo s3://BUCKET/PREFIX] [--backup-endpoint URL]
 *              [--backup-key-file FILE] [--backup-cache SIZE]
 *              [--tls off|on|require] [--tls-certificates DIR] [--tls-psk FILE]
 *              [--tls-verify-peer] [--metrics-addr HOST:PORT]
 *
 * Export name = volume name (qemu: nbd://HOST:PORT/VOLUME), or backup:ID
 * for a backup served in place. Without --listen or --socket it listens
 * on 127.0.0.1:10809, NBD's port. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/libbasalt.h"
#include "client/nbd/nbd.h"
#include "client/nbd/nbd_backup_repo.h"
#include "common/config.h"
#include "common/daemon.h"
#include "common/cluster/tool.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/size.h"
#include "common/version.h"

static const char usage_text[] =
	"usage: basalt-nbd [-c CONF] [--keyring PATH] [--name ENTITY]\n"
	"                  [--listen HOST:PORT]... [--socket PATH]... [--read-only]\n"
	"                  [--break-lock] [--handshake-timeout MS] [--log-file PATH]\n"
	"                  [--backup-repo s3://BUCKET/PREFIX] [--backup-endpoint URL]\n"
	"                  [--backup-key-file FILE] [--backup-cache SIZE]\n"
	"                  [--tls off|on|require] [--tls-certificates DIR] [--tls-psk FILE]\n"
	"                  [--tls-verify-peer] [--metrics-addr HOST:PORT]\n"
	"Serves the cluster's volumes over NBD (export name = volume name, or\n"
	"VOLUME@SNAP read-only), until SIGTERM or SIGINT. Default: --listen\n"
	"127.0.0.1:10809.\n"
	"Export backup:ID serves a backup (basalt backup ls) read-only, its 4 MiB\n"
	"chunks fetched from the bucket as they are read and kept in a cache\n"
	"shared by every backup export: mount a file system from it, or boot a VM,\n"
	"before or instead of a restore.\n"
	"A client takes the volume's exclusive lock with its first write, trim,\n"
	"write-zeroes or flush (reads need none), and the lock goes back when the\n"
	"last connection holding it closes; a change to a volume locked by another\n"
	"client is refused (EPERM) and the log names the holder.\n"
	"On SIGTERM or SIGINT it stops taking requests, waits up to half of\n"
	"daemon_stop_timeout (config, default 30s) for those in flight, gives the\n"
	"locks back and exits; after the whole timeout, or at a second signal, it\n"
	"exits regardless. A full cluster answers writes with ENOSPC (deletes and\n"
	"trims go on): a VM with werror=enospc pauses instead of seeing a bad disk.\n"
	"  -c CONF            config (or BASALT_CONF, else /etc/basalt/basalt.conf)\n"
	"  --keyring PATH     keyring (default: keyring = in [global], or beside CONF)\n"
	"  --name ENTITY      the key to use (default client.admin)\n"
	"  --listen HOST:PORT a TCP address to listen on (repeatable)\n"
	"  --socket PATH      a Unix socket to listen on (repeatable)\n"
	"  --read-only        every export read-only; no locks taken\n"
	"  --break-lock       take locks over from their holders, fencing them (the\n"
	"                     OSDs refuse what they send from then on): for when the\n"
	"                     holder's server is dead or cut off\n"
	"  --handshake-timeout MS  a client must choose an export by then (10000;\n"
	"                     1 to 3600000)\n"
	"  --max-connections N  open client connections at most (256); more are\n"
	"                     closed at once, logged\n"
	"  --max-connections-per-host N  from one client address (64)\n"
	"  --log-file PATH    log there instead of stderr\n"
	"  --backup-repo s3://BUCKET/PREFIX  the backup repository (else repo = in\n"
	"                     [backup] of the config; none: no backup:ID exports)\n"
	"  --backup-endpoint URL  the S3 endpoint (else endpoint = in [backup], else\n"
	"                     AWS_ENDPOINT_URL); region, credentials, addressing,\n"
	"                     ca_file as for basalt backup: [backup], then AWS_*\n"
	"  --backup-key-file FILE  the key of an encrypted repository (key_file =)\n"
	"  --backup-cache SIZE  memory for cached chunks (256M; at least 4M, one\n"
	"                     chunk)\n"
	"  --tls MODE         off (default): no TLS, STARTTLS refused; on: clients may\n"
	"                     upgrade with STARTTLS, plain ones are served too;\n"
	"                     require: nothing but STARTTLS before TLS (NBD's\n"
	"                     FORCEDTLS; qemu and libnbd clients with TLS creds)\n"
	"  --tls-certificates DIR  X.509 as qemu and nbdkit lay it out:\n"
	"                     DIR/server-cert.pem, DIR/server-key.pem, and\n"
	"                     DIR/ca-cert.pem for --tls-verify-peer\n"
	"  --tls-psk FILE     pre-shared keys, one identity:hexkey a line (psktool's\n"
	"                     format); refused if others may read it\n"
	"  --tls-verify-peer  clients must show a certificate signed by\n"
	"                     DIR/ca-cert.pem (with --tls-certificates)\n"
	"  --metrics-addr HOST:PORT  serve Prometheus metrics on http://HOST:PORT/metrics\n"
	"                     (HOST an IPv4 address, [IPv6] or a name; else\n"
	"                     metrics_addr = in [nbd] or [global]; default: none)\n"
	"  --version          print the version\n";

#define LISTEN_MAX 8
#define HANDSHAKE_TIMEOUT_MAX_MS 3600000ull /* an hour: longer is a mistake */

static int fail(const char *fmt, const char *arg)
{
	fprintf(stderr, "basalt-nbd: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	return 1;
}

/* A whole number from 1 to MAX: 0, or -EINVAL. */
static int parse_count(const char *text, unsigned long long max, uint64_t *out /* out */)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(text, &end, 10);
	if (text[0] < '0' || text[0] > '9' || *end || errno || !v || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* --handshake-timeout: whole milliseconds, 1 to an hour. 0, or -EINVAL. */
static int parse_timeout_ms(const char *text, uint64_t *out /* out */)
{
	return parse_count(text, HANDSHAKE_TIMEOUT_MAX_MS, out);
}



/* What the command line asked for. */
struct nbd_main_opts {
	struct tool tool;
	const char *log_file;
	const char *tcp[LISTEN_MAX], *unix_paths[LISTEN_MAX];
	int n_tcp, n_unix;
	struct nbd_params np;
	struct backup_settings backup;
	uint64_t backup_cache_bytes;
	const char *tls_mode, *tls_certificates, *tls_psk;
	bool tls_verify_peer;
	const char *metrics_addr;
};

/* The long options of TLS, for parse_options' table. */
#define TLS_LONG_OPTIONS                                          \
	{ "tls", required_argument, NULL, 'T' },                  \
	{ "tls-certificates", required_argument, NULL, 'X' },     \
	{ "tls-psk", required_argument, NULL, 'P' },              \
	{ "tls-verify-peer", no_argument, NULL, 'V' }

/* Whether CH (getopt's) was one of --tls and its companions: then taken. */
static bool tls_option(struct nbd_main_opts *m, int ch, const char *arg)
{
	switch (ch) {
	case 'T': m->tls_mode = arg; return true;
	case 'X': m->tls_certificates = arg; return true;
	case 'P': m->tls_psk = arg; return true;
	case 'V': m->tls_verify_peer = true; return true;
	default: return false;
	}
}

/* Whether CH was --max-connections or --max-connections-per-host: then
 * taken, *BAD set (after saying why) when its value is not 1 to 65536. */
static bool limit_option(struct nbd_main_opts *m, int ch, const char *arg, bool *bad)
{
	if (ch != 'M' && ch != 'H')
		return false;
	const char *name = ch == 'M' ? "--max-connections" : "--max-connections-per-host";
	uint64_t v;
	*bad = parse_count(arg, 65536, &v) != 0;
	if (*bad)
		fprintf(stderr, "basalt-nbd: %s takes a whole number from 1 to 65536, got '%s'\n",
			name, arg);
	else if (ch == 'M')
		m->np.max_conns = (uint32_t)v;
	else
		m->np.max_conns_per_host = (uint32_t)v;
	return true;
}

/* --tls and its companions agree: 0, or -EINVAL after saying the fix. */
static int tls_options_check(struct nbd_main_opts *m)
{
	const char *mode = m->tls_mode ? m->tls_mode : "off";
	const char *creds = m->tls_certificates ? "--tls-certificates"
			    : m->tls_psk	    ? "--tls-psk"
			    : m->tls_verify_peer    ? "--tls-verify-peer"
						    : NULL;
	if (!strcmp(mode, "on"))
		m->np.tls = NBD_TLS_ON;
	else if (!strcmp(mode, "require"))
		m->np.tls = NBD_TLS_REQUIRE;
	else if (strcmp(mode, "off"))
		fail("--tls takes off, on or require, got '%s'", mode);
	else if (creds)
		fail("%s needs --tls on or --tls require", creds);
	else
		return 0;
	if (m->np.tls == NBD_TLS_OFF)
		return -EINVAL;
	if (!m->tls_certificates && !m->tls_psk)
		fail("--tls %s needs --tls-certificates DIR (server-cert.pem, server-key.pem) "
		     "or --tls-psk FILE (identity:hexkey lines)",
		     mode);
	else if (m->tls_verify_peer && !m->tls_certificates)
		fail("--tls-verify-peer needs %s", "--tls-certificates DIR (its ca-cert.pem)");
	else
		return 0;
	return -EINVAL;
}

/* Returns -1 to go on, else the exit status (--help, --version, a bad
 * option). */
static int parse_options(int argc, char **argv, struct nbd_main_opts *m)
{
	static const struct option opts[] = {
		TOOL_LONG_OPTIONS,
		{ "listen", required_argument, NULL, 'L' },  { "socket", required_argument, NULL, 'S' },
		{ "read-only", no_argument, NULL, 'r' },     { "log-file", required_argument, NULL, 'l' },
		{ "break-lock", no_argument, NULL, 'b' },
		{ "handshake-timeout", required_argument, NULL, 't' },
		{ "max-connections", required_argument, NULL, 'M' },
		{ "max-connections-per-host", required_argument, NULL, 'H' },
		{ "backup-repo", required_argument, NULL, 'R' },
		{ "backup-endpoint", required_argument, NULL, 'E' },
		{ "backup-key-file", required_argument, NULL, 'K' },
		{ "backup-cache", required_argument, NULL, 'C' },
		{ "metrics-addr", required_argument, NULL, 'A' },
		TLS_LONG_OPTIONS,
		{ "help", no_argument, NULL, 'h' },	     { "version", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		bool bad = false;
		if (tool_option(&m->tool, ch, optarg) || tls_option(m, ch, optarg) ||
		    limit_option(m, ch, optarg, &bad)) {
			if (bad)
				return 2;
			continue;
		}
		switch (ch) {
		case 'L':
			if (m->n_tcp == LISTEN_MAX) {
				fail("at most %s listen addresses", "8");
				return 2;
			}
			m->tcp[m->n_tcp++] = optarg;
			break;
		case 'S':
			if (m->n_unix == LISTEN_MAX) {
				fail("at most %s sockets", "8");
				return 2;
			}
			m->unix_paths[m->n_unix++] = optarg;
			break;
		case 'r': m->np.read_only = true; break;
		case 'b': m->np.break_lock = true; break;
		case 't':
			if (parse_timeout_ms(optarg, &m->np.handshake_timeout_ms)) {
				fail("--handshake-timeout takes whole milliseconds from 1 to "
				     "3600000, got '%s'", optarg);
				return 2;
			}
			break;
		case 'l': m->log_file = optarg; break;
		case 'R': m->backup.repo = optarg; break;
		case 'E': m->backup.endpoint = optarg; break;
		case 'K': m->backup.key_file = optarg; break;
		case 'A': m->metrics_addr = optarg; break;
		case 'C': {
			char why[256];
			if (size_parse_range(optarg, "--backup-cache", BACKUP_CHUNK_SIZE, 1ull << 40,
					     &m->backup_cache_bytes, why, sizeof(why))) {
				fail("%s", why);
				return 2;
			}
			break;
		}
		case 'h': fputs(usage_text, stdout); return 0;
		case 'v': printf("basalt-nbd %s\n", BASALT_VERSION); return 0;
		default: fputs(usage_text, stderr); return 2;
		}
	}
	if (optind < argc) {
		fputs(usage_text, stderr);
		return 2;
	}
	if (!m->n_tcp && !m->n_unix)
		m->tcp[m->n_tcp++] = "127.0.0.1:10809";
	return -1;
}

/* The server's TLS settings (certificates and keys read now): 0, or
 * -errno after saying why. PSKS is the key file's, kept for the config's
 * life. */
static int tls_setup(const struct nbd_main_opts *m, struct tls_config **out,
		     struct tls_psk_file **psks)
{
	char why[1024];
	struct tls_config_params p = { .role = TLS_SERVER, .cert_dir = m->tls_certificates,
				       .verify_peer = m->tls_verify_peer };
	int rc = m->tls_psk ? tls_psk_file_load(m->tls_psk, psks, why, sizeof(why)) : 0;
	if (!rc && m->tls_psk) {
		p.psk_find = tls_psk_file_find;
		p.psk_arg = *psks;
	}
	if (!rc)
		rc = tls_config_create(&p, out, why, sizeof(why));
	if (rc)
		fail("%s", why);
	return rc;
}

/* The backup repository's settings, before anything connects (a mistake
 * is said at once): 1 when one is configured, 0 when none, -errno after
 * saying why. */
static int backups_configure(struct nbd_main_opts *m, struct nbd_backup_repo *repo)
{
	char why[1024];
	m->backup.option_prefix = "--backup-";
	int rc = nbd_backup_repo_init(repo, m->tool.cfg, &m->backup, why, sizeof(why));
	if (rc == -ENOENT)
		return 0;
	if (rc) {
		fail("%s", why);
		return rc;
	}
	return 1;
}

/* The chunk cache of the repository configured (backups_configure). The
 * repository is opened now only to warn early; backup:ID exports open it
 * when it was not reachable yet. 0, or -errno after saying why. */
static int backups_start(struct io_loop *loop, struct nbd_main_opts *m,
			 struct nbd_backup_repo *repo, struct nbd_backups **out)
{
	char why[1024];
	if (nbd_backup_repo_probe(repo, why, sizeof(why)))
		LOG_WARN("backup repository %s: %s (backup:ID exports will try again)",
			 repo->p.url, why);
	else
		LOG_INFO("serving backups of %s as backup:ID", repo->p.url);
	struct nbd_backup_params bp = { .cache_bytes = m->backup_cache_bytes };
	int rc = nbd_backups_create(loop, &nbd_backup_repo_ops, repo, &bp, out);
	if (rc)
		fprintf(stderr, "basalt-nbd: cannot start the backup fetch threads: %s\n",
			strerror(-rc));
	return rc;
}

/* The metrics registry, served on --metrics-addr or the config's
 * metrics_addr ([nbd], then [global]) when one is given: 0, or -errno
 * after saying why. */
static int metrics_start(const struct nbd_main_opts *m, struct metrics_registry **reg,
			 struct metrics_server **srv)
{
	char why[1024];
	int rc = metrics_registry_create(reg);
	if (rc) {
		fail("%s", "out of memory for metrics");
		return rc;
	}
	if (m->metrics_addr)
		rc = metrics_server_start(*reg, m->metrics_addr, srv, why, sizeof(why));
	else
		rc = metrics_server_start_config(*reg, m->tool.cfg, "nbd", srv, why, sizeof(why));
	if (rc)
		fprintf(stderr, "basalt-nbd: %s%s\n", m->metrics_addr ? "--metrics-addr: " : "", why);
	else if (*srv)
		LOG_INFO("metrics served on http://%s/metrics", metrics_server_addr(*srv));
	return rc;
}

/* Listens on every address and socket asked for: 0, or -errno after
 * saying which and why. */
static int listen_all(struct nbd_server *srv, const struct nbd_main_opts *m)
{
	int rc = 0;
	for (int i = 0; !rc && i < m->n_tcp; i++) {
		char host[256];
		uint16_t port;
		if (cfg_parse_hostport(m->tcp[i], host, sizeof(host), &port)) {
			fail("--listen takes HOST:PORT, got '%s'", m->tcp[i]);
			rc = -EINVAL;
		} else if ((rc = nbd_server_listen_tcp(srv, host, port, NULL))) {
			fprintf(stderr, "basalt-nbd: cannot listen on %s: %s\n", m->tcp[i],
				strerror(-rc));
		} else {
			LOG_INFO("listening on %s", m->tcp[i]);
		}
	}
	for (int i = 0; !rc && i < m->n_unix; i++) {
		if ((rc = nbd_server_listen_unix(srv, m->unix_paths[i])))
			fprintf(stderr, "basalt-nbd: cannot listen on the Unix socket %s: %s\n",
				m->unix_paths[i], strerror(-rc));
		else
			LOG_INFO("listening on %s", m->unix_paths[i]);
	}
	return rc;
}

int main(int argc, char **argv)
{
	struct nbd_main_opts m = { 0 };
	tool_init(&m.tool);
	int rc = parse_options(argc, argv, &m);
	if (rc >= 0)
		return rc;
	if (tls_options_check(&m))
		return 2;
	log_init("nbd");
	if (m.log_file && log_set_file(m.log_file))
		return fail("cannot open log file %s", m.log_file);
	char why[1024];
	if (tool_load(&m.tool, why, sizeof(why)))
		return fail("%s", why);
	struct tls_psk_file *psks = NULL;
	if (m.np.tls != NBD_TLS_OFF && tls_setup(&m, &m.np.tls_config, &psks))
		return 1;
	daemon_block_stop_signals(); /* before the metrics thread */
	struct metrics_registry *metrics = NULL;
	struct metrics_server *metrics_srv = NULL;
	if (metrics_start(&m, &metrics, &metrics_srv))
		return 1;
	m.np.metrics = metrics;
	struct nbd_backup_repo repo;
	int have_backups = backups_configure(&m, &repo);
	if (have_backups < 0)
		return 1;
	struct io_loop *loop;
	if (io_loop_create_uring(NULL, &loop))
		return fail("%s", "cannot set up io_uring");
	struct bs_client_params cp = { .entity = m.tool.name, .keyring = m.tool.keyring_path };
	struct bs_client *client;
	if (bs_client_create(loop, m.tool.cfg, &cp, &client, why, sizeof(why)))
		return fail("%s", why);
	/* Listening before the first map would answer every export with "no
	 * such volume" until it came. */
	if (bs_client_wait_map(client, 30000, why, sizeof(why)))
		return fail("%s", why);
	struct nbd_backups *backups = NULL;
	if (have_backups && backups_start(loop, &m, &repo, &backups))
		return 1;
	m.np.backups = backups;
	struct nbd_server *srv = NULL;
	rc = nbd_server_create(loop, client, &m.np, &srv);
	if (!rc)
		rc = listen_all(srv, &m);
	unsigned stop_s = 30;
	if (!rc && daemon_stop_timeout(m.tool.cfg, "nbd", &stop_s))
		rc = fail("%s", cfg_error(m.tool.cfg));
	if (!rc) {
		/* The map is in and every address listens: exports answer. */
		char status[300];
		snprintf(status, sizeof(status), "serving NBD on %s%s",
			 m.n_tcp ? m.tcp[0] : m.unix_paths[0], m.n_tcp + m.n_unix > 1 ? " and more" : "");
		daemon_notify_ready(status);
		rc = daemon_run(loop, stop_s);
	}
	LOG_INFO("stopping");
	/* Half the stop bound for requests in flight to be answered. */
	if (srv && nbd_server_stop(srv, stop_s * 500ull)) {
		/* Requests still wait for a cluster that is gone: nothing of
		 * theirs was acknowledged, and the process's end frees it all. */
		return 1;
	}
	nbd_server_destroy(srv);
	tls_config_destroy(m.np.tls_config);
	tls_psk_file_free(psks);
	nbd_backups_destroy(backups);
	if (backups)
		nbd_backup_repo_fini(&repo);
	bs_client_destroy(client);
	io_loop_destroy(loop);
	metrics_server_stop(metrics_srv);
	metrics_registry_free(metrics);
	tool_fini(&m.tool);
	return rc ? 1 : 0;
}
