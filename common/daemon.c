/* See daemon.h. */
#include "daemon.h"

#include <signal.h>


static struct io_loop *signal_loop;

static void on_signal(int sig)
{
	(void)sig;
	if (signal_loop)
		io_loop_stop(signal_loop);
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
