/* basalt-mon: create or run one monitor.
 *
 *   basalt-mon --mkfs --id NAME [-c CONF]
 *   basalt-mon --id NAME [-c CONF] [--keyring PATH] [--log-file PATH] */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/daemon.h"
#include "common/keyring.h"
#include "common/io/loop.h"
#include "common/log.h"
#include "common/version.h"
#include "mon.h"

static const char usage_text[] =
	"usage: basalt-mon --mkfs --id NAME [-c CONF]\n"
	"       basalt-mon --id NAME [-c CONF] [--keyring PATH] [--log-file PATH]\n"
	"\n"
	"  --mkfs          create this monitor's store ([mon.NAME] data = DIR)\n"
	"  --id NAME       which monitor: a [mon.NAME] section with addr = host:port\n"
	"  -c CONF         the config file (default: $BASALT_CONF)\n"
	"  --keyring PATH  the keyring (default: keyring = in [global], or beside CONF)\n"
	"  --log-file PATH log there instead of stderr\n"
	"  --version       print the version\n"
	"\n"
	"Runs in the foreground until SIGTERM or SIGINT.\n";

int main(int argc, char **argv)
{
	const char *conf = NULL, *id = NULL, *keyring = NULL, *log_file = NULL;
	bool mkfs = false;
	static const struct option opts[] = {
		{ "mkfs", no_argument, NULL, 'm' },
		{ "id", required_argument, NULL, 'i' },
		{ "keyring", required_argument, NULL, 'k' },
		{ "log-file", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': conf = optarg; break;
		case 'm': mkfs = true; break;
		case 'i': id = optarg; break;
		case 'k': keyring = optarg; break;
		case 'l': log_file = optarg; break;
		case 'h': fputs(usage_text, stdout); return 0;
		case 'v': printf("basalt-mon %s\n", BASALT_VERSION); return 0;
		default: fputs(usage_text, stderr); return 2;
		}
	}
	conf = cfg_pick_path(conf);
	if (!id || !conf || optind < argc) {
		fprintf(stderr, "basalt-mon: %s\n%s",
			!id ? "--id NAME is required" : !conf ? "no config: give -c CONF or set BASALT_CONF"
							      : "unexpected argument",
			usage_text);
		return 2;
	}
	static char name[80];
	snprintf(name, sizeof(name), "mon.%s", id);
	log_init(name);
	if (log_file && log_set_file(log_file)) {
		fprintf(stderr, "basalt-mon: cannot open log file %s\n", log_file);
		return 1;
	}
	struct cfg *cfg;
	char why[512];
	if (cfg_load(conf, &cfg, why, sizeof(why))) {
		fprintf(stderr, "basalt-mon: %s\n", why);
		return 1;
	}
	if (mkfs) {
		int rc = mon_mkfs(cfg, id, why, sizeof(why));
		if (rc)
			fprintf(stderr, "basalt-mon: %s\n", why);
		cfg_free(cfg);
		return rc ? 1 : 0;
	}
	char kr_path[4096];
	keyring_path_for_config(cfg, keyring, conf, kr_path, sizeof(kr_path));
	struct io_loop *loop;
	if (io_loop_create_uring(NULL, &loop)) {
		fprintf(stderr, "basalt-mon: cannot set up io_uring\n");
		return 1;
	}
	struct mon *m;
	unsigned stop_s = 30;
	char section[80];
	snprintf(section, sizeof(section), "mon.%s", id);
	if (daemon_stop_timeout(cfg, section, &stop_s)) {
		fprintf(stderr, "basalt-mon: %s\n", cfg_error(cfg));
		return 1;
	}
	if (mon_start(loop, cfg, id, kr_path, &m, why, sizeof(why))) {
		fprintf(stderr, "basalt-mon: %s\n", why);
		return 1;
	}
	int rc = daemon_run(loop, stop_s);
	LOG_INFO("stopping");
	mon_stop(m);
	io_loop_destroy(loop);
	cfg_free(cfg);
	return rc ? 1 : 0;
}
