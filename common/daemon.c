/* See daemon.h. */
#include "daemon.h"

#include <signal.h>

#include "keyring.h"

static struct io_loop *signal_loop;

static void on_signal(int sig)
{
	(void)sig;
	if (signal_loop)
		io_loop_stop(signal_loop);
}

const char *daemon_keyring_path(struct cfg *cfg, const char *cli_path, const char *conf_path,
				char *buf, size_t len)
{
	const char *kr_conf = NULL;
	cfg_get_str(cfg, "global", "keyring", "", &kr_conf);
	return keyring_pick_path(cli_path, conf_path, kr_conf, buf, len);
}

int daemon_run(struct io_loop *loop)
{
	signal_loop = loop;
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);
	int rc = io_loop_run(loop);
	signal_loop = NULL;
	return rc;
}
