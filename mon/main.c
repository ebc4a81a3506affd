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
#include "common/io/loop.h"
#include "common/cluster/tool.h"
#include "common/log.h"
#include "common/version.h"
#include "mon.h"

static const char usage_text[] =
	"usage: basalt-mon --mkfs --id NAME [-c CONF]\n"
	"       basalt-mon --id NAME [-c CONF] [--keyring PATH] [--log-file PATH]\n"
	"\n"
	"  --mkfs          create this monitor's store ([mon.NAME] data = DIR)\n"
	"  --id NAME       which monitor: a [mon.NAME] section with addr = host:port\n"
	"  -c CONF         the config file (default: $BASALT_CONF, else\n"
	"                  /etc/basalt/basalt.conf)\n"
	"  --keyring PATH  the keyring (default: keyring = in [global], or beside CONF)\n"
	"  --log-file PATH log there instead of stderr\n"
	"  --version       print the version\n"
	"\n"
	"Runs in the foreground until SIGTERM or SIGINT.\n";

int main(int argc, char **argv)
{
	struct tool t;
	tool_init(&t);
	const char *id = NULL, *log_file = NULL;
	bool mkfs = false;
	static const struct option opts[] = {
		{ "mkfs", no_argument, NULL, 'm' },
		{ "id", required_argument, NULL, 'i' },
		TOOL_CONF_OPTIONS,
		{ "log-file", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		if (tool_option(&t, c, optarg))
			continue;
		switch (c) {
		case 'm': mkfs = true; break;
		case 'i': id = optarg; break;
		case 'l': log_file = optarg; break;
		case 'h': fputs(usage_text, stdout); return 0;
		case 'v': printf("basalt-mon %s\n", BASALT_VERSION); return 0;
		default: fputs(usage_text, stderr); return 2;
		}
	}
	if (!id || !cfg_pick_path(t.conf) || optind < argc) {
		fprintf(stderr, "basalt-mon: %s\n%s",
			!id ? "--id NAME is required"
			: optind < argc ? "unexpected argument"
					: "no config: " CFG_NONE_HINT,
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
	char why[1024];
	if (tool_load(&t, why, sizeof(why))) {
		fprintf(stderr, "basalt-mon: %s\n", why);
		return 1;
	}
	struct cfg *cfg = t.cfg;
	if (mkfs) {
		int rc = mon_mkfs(cfg, id, why, sizeof(why));
		if (rc)
			fprintf(stderr, "basalt-mon: %s\n", why);
		tool_fini(&t);
		return rc ? 1 : 0;
	}
	const char *kr_path = t.keyring_path;
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
	daemon_block_stop_signals(); /* before mon_start's metrics thread */
	if (mon_start(loop, cfg, id, kr_path, &m, why, sizeof(why))) {
		fprintf(stderr, "basalt-mon: %s\n", why);
		return 1;
	}
	/* Listening, with its store loaded: peers and clients may come. The
	 * quorum needs the other monitors, which may start after this one. */
	char status[120];
	snprintf(status, sizeof(status), "mon.%s listening", id);
	daemon_notify_ready(status);
	int rc = daemon_run(loop, stop_s);
	LOG_INFO("stopping");
	mon_stop(m);
	io_loop_destroy(loop);
	tool_fini(&t);
	return rc ? 1 : 0;
}
