/* What every Basalt daemon's main() does alike: run its event loop in the
 * foreground until SIGTERM or SIGINT. */
#ifndef BASALT_COMMON_DAEMON_H
#define BASALT_COMMON_DAEMON_H

#include "io/loop.h"

/* Runs LOOP until SIGTERM or SIGINT (SIGPIPE ignored); the loop's result. */
int daemon_run(struct io_loop *loop);

#endif
