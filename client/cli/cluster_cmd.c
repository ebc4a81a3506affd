/* basalt cluster init: writes a new cluster's config and keyring (see
 * client/cluster_init.h), the one step of a deployment done on one server
 * before the files are copied to the others. Needs no running cluster. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/cli/cli.h"
#include "client/cluster_init.h"
#include "common/config.h"
#include "common/keyring.h"

enum { OPT_MON = 0x2000, OPT_OSD, OPT_MS_MODE, OPT_DATA_DIR, OPT_METRICS, OPT_JSON };

static int init_parse(int argc, char **argv, struct cluster_init_spec *s)
{
	static const struct option opts[] = {
		{ "mon", required_argument, NULL, OPT_MON },
		{ "osd", required_argument, NULL, OPT_OSD },
		{ "ms-mode", required_argument, NULL, OPT_MS_MODE },
		{ "data-dir", required_argument, NULL, OPT_DATA_DIR },
		{ "metrics", no_argument, NULL, OPT_METRICS },
		{ "json", no_argument, NULL, OPT_JSON },
		{ NULL, 0, NULL, 0 },
	};
	optind = 0; /* GNU getopt: start over on this array */
	opterr = 0;
	int ch;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case OPT_MON:
			if (s->n_mons == CLUSTER_INIT_MONS_MAX)
				return die_usage("cluster init: at most %d monitors",
						 CLUSTER_INIT_MONS_MAX);
			s->mons[s->n_mons++] = optarg;
			break;
		case OPT_OSD:
			if (s->n_osds == CLUSTER_INIT_OSDS_MAX)
				return die_usage("cluster init: at most %d OSDs",
						 CLUSTER_INIT_OSDS_MAX);
			s->osds[s->n_osds++] = optarg;
			break;
		case OPT_MS_MODE: s->ms_mode = optarg; break;
		case OPT_DATA_DIR: s->data_dir = optarg; break;
		case OPT_METRICS: s->metrics = true; break;
		case OPT_JSON: json_mode = true; break;
		default:
			return die_usage("cluster init: unknown option or missing value '%s' "
					 "(basalt cluster --help)", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return die_usage("cluster init: unexpected argument '%s'", argv[optind]);
	if (s->n_mons == 0)
		return die_usage("cluster init: give the monitors, --mon HOST[:PORT] each "
				 "(three for a cluster that survives a server)");
	return 0;
}

static int init_report(const struct cluster_init_spec *s, const char *conf_path,
		       const char *keyring_path)
{
	if (json_mode)
		return json_out(json_pack("{s:o, s:o, s:i, s:i}", "config", jstr(conf_path),
					  "keyring", jstr(keyring_path), "mons", s->n_mons,
					  "osds", s->n_osds));
	printf("wrote %s (%d monitor%s, %d OSD%s) and %s (mon., client.admin%s)\n"
	       "next: copy both to every server, then on each: basalt-mon --mkfs --id ID, "
	       "basalt-osd --mkfs --device DEV, systemctl enable --now basalt-mon@ID "
	       "basalt-osd@N\n",
	       conf_path, s->n_mons, s->n_mons == 1 ? "" : "s", s->n_osds,
	       s->n_osds == 1 ? "" : "s", keyring_path, s->n_osds ? ", osd.N" : "");
	return 0;
}

int cmd_cluster(struct tool *t, int argc, char **argv)
{
	if (argc < 1 || strcmp(argv[0], "init"))
		return die_usage("usage: basalt cluster init --mon HOST[:PORT] ... "
				 "[--osd HOST[:PORT]=DEVICE ...] [--ms-mode crc|secure] "
				 "[--data-dir DIR] [--metrics]");
	struct cluster_init_spec s = { 0 };
	int rc = init_parse(argc, argv, &s);
	if (rc)
		return rc;
	const char *conf_path = t->conf ? t->conf : getenv("BASALT_CONF");
	if (!conf_path || !*conf_path)
		conf_path = CFG_DEFAULT_PATH;
	char keyring_path[4096], why[512];
	keyring_pick_path(t->keyring, conf_path, NULL, keyring_path, sizeof(keyring_path));
	char *conf, *keyring;
	if ((rc = cluster_init_render(&s, &conf, &keyring, why, sizeof(why))))
		return rc == -EINVAL ? die_usage("cluster init: %s", why) : die_rc(rc, "%s", why);
	rc = cluster_init_write(conf_path, conf, keyring_path, keyring, why, sizeof(why));
	free(conf);
	cluster_init_free_secret(keyring);
	if (rc)
		return die_rc(rc, "cluster init: %s", why);
	return init_report(&s, conf_path, keyring_path);
}
