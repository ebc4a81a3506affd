/* What every Basalt daemon's main() does alike: pick its keyring, and run
 * its event loop in the foreground until SIGTERM or SIGINT. */
#ifndef BASALT_COMMON_DAEMON_H
#define BASALT_COMMON_DAEMON_H

#include <stddef.h>

#include "config.h"
#include "io/loop.h"

/* The keyring path: --keyring (CLI_PATH), else [global] keyring = in CFG,
 * else "keyring" beside the config file CONF_PATH. Writes into BUF. */
const char *daemon_keyring_path(struct cfg *cfg, const char *cli_path, const char *conf_path,
				char *buf, size_t len);

/* Runs LOOP until SIGTERM or SIGINT (SIGPIPE ignored); the loop's result. */
int daemon_run(struct io_loop *loop);

#endif
