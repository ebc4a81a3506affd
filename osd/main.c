/* basalt-osd: run an OSD, or format, check and inspect its store.
 *
 *   basalt-osd --id N [-c CONF] [--keyring PATH] [--log-file PATH]
 *   basalt-osd --mkfs --device PATH [--size SIZE] [--block-size SIZE]
 *              [--journal-size SIZE] [--force]
 *   basalt-osd --fsck --device PATH [--json]
 *   basalt-osd --dump --device PATH [--json]
 */
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
#include "common/cluster/map.h"
#include "common/size.h"
#include "common/version.h"
#include "osd.h"
#include "store.h"

static const char usage_text[] =
	"usage: basalt-osd --id N [-c CONF] [--keyring PATH] [--log-file PATH]\n"
	"       basalt-osd --mkfs --device PATH [--size SIZE] [--block-size SIZE]\n"
	"                  [--journal-size SIZE] [--force]\n"
	"       basalt-osd --fsck --device PATH [--json]\n"
	"       basalt-osd --dump --device PATH [--json]\n"
	"\n"
	"  --id N            run osd.N in the foreground until SIGTERM or SIGINT:\n"
	"                    its [osd.N] section names device = PATH (formatted\n"
	"                    with --mkfs), addr = HOST:PORT and host = NAME\n"
	"  -c CONF           the config file (default: $BASALT_CONF, else\n"
	"                    /etc/basalt/basalt.conf)\n"
	"  --keyring PATH    the keyring (default: keyring = in [global], or beside\n"
	"                    CONF); it must hold osd.N's key\n"
	"  --log-file PATH   log there instead of stderr\n"
	"  --mkfs            format PATH (a block device, or a file, created and\n"
	"                    fallocated when absent) as an OSD store; refuses a\n"
	"                    device that holds a store or a filesystem unless --force\n"
	"  --size SIZE       bytes to use (required to create a file), e.g. 10G\n"
	"  --block-size SIZE object block size, a power of two from 64K to 1M\n"
	"                    (default 128K)\n"
	"  --journal-size SIZE  journal ring size, at least 4M (default 32M, or an\n"
	"                    eighth of a small device)\n"
	"  --fsck            check the store offline: replay the journal, verify\n"
	"                    every checksum and block ownership; exit 0 only when\n"
	"                    clean (1: problems found, 3: cannot check)\n"
	"  --dump            print usage: blocks used and free, journal fill, objects\n"
	"  --json            machine-readable output for --fsck and --dump\n"
	"  --version         print the version\n"
	"SIZE: " SIZE_GRAMMAR ".\n";

static void usage_error(const char *msg)
{
	fprintf(stderr, "basalt-osd: %s\n%s", msg, usage_text);
	exit(2);
}

/* OPT's SIZE (size.h's grammar) up to MAX, or exit 2 saying why. */
static uint64_t parse_size(const char *opt, const char *text, uint64_t max)
{
	uint64_t v;
	char why[512];
	if (size_parse_range(text, opt, 0, max, &v, why, sizeof(why))) {
		fprintf(stderr, "basalt-osd: %s\n", why);
		exit(2);
	}
	return v;
}

static int run_daemon(struct tool *t, const char *id_text, const char *log_file)
{
	char *end;
	unsigned long id = strtoul(id_text, &end, 10);
	if (!*id_text || *end || id >= MAP_MAX_OSDS)
		usage_error("--id takes an OSD number");
	if (!cfg_pick_path(t->conf))
		usage_error("no config: " CFG_NONE_HINT);
	static char name[32];
	snprintf(name, sizeof(name), "osd.%lu", id);
	log_init(name);
	if (log_file && log_set_file(log_file)) {
		fprintf(stderr, "basalt-osd: cannot open log file %s\n", log_file);
		return 1;
	}
	char why[1024];
	if (tool_load(t, why, sizeof(why))) {
		fprintf(stderr, "basalt-osd: %s\n", why);
		return 1;
	}
	struct cfg *cfg = t->cfg;
	const char *kr_path = t->keyring_path;
	struct io_loop *loop;
	if (io_loop_create_uring(NULL, &loop)) {
		fprintf(stderr, "basalt-osd: cannot set up io_uring\n");
		tool_fini(t);
		return 1;
	}
	struct osd *o;
	unsigned stop_s = 30;
	int rc = daemon_stop_timeout(cfg, name, &stop_s);
	/* A stop is the clean one that writes the PG logs out, even with
	 * the metrics server's thread running. */
	daemon_block_stop_signals();
	if (rc)
		snprintf(why, sizeof(why), "%s", cfg_error(cfg));
	else
		rc = osd_start(loop, cfg, (uint32_t)id, kr_path, &o, why, sizeof(why));
	if (rc) {
		fprintf(stderr, "basalt-osd: %s\n", why);
	} else {
		rc = daemon_run(loop, stop_s);
		LOG_INFO("stopping");
		osd_stop(o);
	}
	io_loop_destroy(loop);
	tool_fini(t);
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	enum { NONE, MKFS, FSCK, DUMP } mode = NONE;
	const char *device = NULL, *id = NULL, *log_file = NULL;
	struct tool t;
	tool_init(&t);
	bool json = false;
	struct store_mkfs_params mp = { 0 };
	static const struct option opts[] = {
		{ "mkfs", no_argument, NULL, 'm' },
		{ "fsck", no_argument, NULL, 'f' },
		{ "dump", no_argument, NULL, 'd' },
		{ "device", required_argument, NULL, 'D' },
		{ "size", required_argument, NULL, 's' },
		{ "block-size", required_argument, NULL, 'b' },
		{ "journal-size", required_argument, NULL, 'j' },
		{ "force", no_argument, NULL, 'F' },
		{ "json", no_argument, NULL, 'J' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'v' },
		{ "id", required_argument, NULL, 'i' },
		TOOL_CONF_OPTIONS,
		{ "log-file", required_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		if (tool_option(&t, c, optarg))
			continue;
		switch (c) {
		case 'm': mode = MKFS; break;
		case 'f': mode = FSCK; break;
		case 'd': mode = DUMP; break;
		case 'D': device = optarg; break;
		case 's': mp.size = parse_size("--size", optarg, SIZE_MAX_BYTES); break;
		case 'b': mp.block_size = (uint32_t)parse_size("--block-size", optarg, UINT32_MAX); break;
		case 'j': mp.journal_size = parse_size("--journal-size", optarg, SIZE_MAX_BYTES); break;
		case 'F': mp.force = true; break;
		case 'J': json = true; break;
		case 'h': fputs(usage_text, stdout); return 0;
		case 'v': printf("basalt-osd %s\n", BASALT_VERSION); return 0;
		case 'i': id = optarg; break;
		case 'l': log_file = optarg; break;
		default: usage_error("unknown option");
		}
	}
	if (optind < argc)
		usage_error("unexpected argument");
	if (id && mode != NONE)
		usage_error("--id runs the daemon; --mkfs, --fsck and --dump take --device");
	if (id)
		return run_daemon(&t, id, log_file);
	if (mode == NONE)
		usage_error("give --id N to run the OSD, or one of --mkfs, --fsck or --dump");
	if (!device)
		usage_error("--device PATH is required");
	log_init("osd");
	if (mode != MKFS)
		log_set_level(LOG_LEVEL_WARN);
	struct io_loop *loop;
	int rc = io_loop_create_uring(NULL, &loop);
	if (rc) {
		fprintf(stderr, "basalt-osd: cannot set up io_uring: %s\n", strerror(-rc));
		return 1;
	}
	int status = 0;
	if (mode == MKFS) {
		char why[512];
		rc = store_mkfs(loop, device, &mp, why, sizeof(why));
		if (rc) {
			fprintf(stderr, "basalt-osd: %s\n", why);
			status = 1;
		} else {
			rc = store_dump(loop, device, stdout, json);
			status = rc ? 1 : 0;
		}
	} else if (mode == FSCK) {
		rc = store_fsck(loop, device, stdout, json);
		/* 2 is a usage error in every program: a store that cannot be
		 * checked is 3, apart from one checked and found wrong. */
		status = rc == 0 ? 0 : rc == -EUCLEAN ? 1 : 3;
	} else {
		rc = store_dump(loop, device, stdout, json);
		status = rc ? 1 : 0;
	}
	io_loop_destroy(loop);
	return status;
}
