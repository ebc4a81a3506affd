/* See daemon.h. */
#include "daemon.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

static struct io_loop *signal_loop;
static unsigned stop_timeout;

/* Stopping with a bound: SIGTERM and SIGINT are blocked in every other
 * thread and taken here, so they are seen even while the loop's thread
 * is stuck inside the kernel (an io_uring submission to a device that
 * stopped answering sleeps uninterruptibly). The first one stops the
 * loop; a second one, or the bound running out, ends the process — every
 * thread of it, the stuck one too. */
static void *signal_thread(void *arg)
{
	sigset_t *set = arg;
	int sig;
	while (sigwait(set, &sig) != 0)
		;
	io_loop_stop(signal_loop);
	struct timespec bound = { (time_t)stop_timeout, 0 };
	for (;;) {
		int rc = sigtimedwait(set, NULL, &bound);
		if (rc > 0) {
			LOG_ERROR("a second signal: exiting at once");
			_exit(1);
		}
		if (errno == EAGAIN) {
			LOG_ERROR("did not stop within %u s of the signal (still waiting for a "
				  "device or a peer): exiting without finishing",
				  stop_timeout);
			_exit(1);
		}
	}
	return NULL;
}

/* Without a bound (basalt-fuse, which goes on serving open files after
 * the first signal): each signal stops the loop, from the handler. */
static void on_signal(int sig)
{
	(void)sig;
	if (signal_loop)
		io_loop_stop(signal_loop);
}

void daemon_block_stop_signals(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

int daemon_run(struct io_loop *loop, unsigned stop_timeout_s)
{
	static sigset_t set;
	signal_loop = loop;
	stop_timeout = stop_timeout_s;
	signal(SIGPIPE, SIG_IGN);
	if (stop_timeout_s) {
		pthread_t thread;
		sigemptyset(&set);
		sigaddset(&set, SIGTERM);
		sigaddset(&set, SIGINT);
		if (pthread_sigmask(SIG_BLOCK, &set, NULL) == 0 &&
		    pthread_create(&thread, NULL, signal_thread, &set) == 0) {
			pthread_detach(thread);
			int rc = io_loop_run(loop);
			daemon_notify_stopping();
			return rc;
		}
		pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	int rc = io_loop_run(loop);
	signal_loop = NULL;
	daemon_notify_stopping();
	return rc;
}

int daemon_stop_timeout(struct cfg *cfg, const char *section, unsigned *out)
{
	uint64_t ms;
	if (cfg_get_duration_ms(cfg, section, "daemon_stop_timeout", 30000, 1000, 3600000, &ms) < 0)
		return -EINVAL;
	*out = (unsigned)((ms + 999) / 1000);
	return 0;
}

/* sd_notify() sends nothing and returns 0 without NOTIFY_SOCKET; a socket
 * that is gone or refuses is worth a warning only: the daemon works, and
 * systemd (if it is there) times the start out by itself. */
static void notify(const char *state, const char *what)
{
	int rc = sd_notify(0, state);
	if (rc < 0)
		LOG_WARN("cannot tell the service manager (NOTIFY_SOCKET=%s) that it is %s: %s",
			 getenv("NOTIFY_SOCKET"), what, strerror(-rc));
}

void daemon_notify_ready(const char *status)
{
	char state[512];
	snprintf(state, sizeof(state), "READY=1%s%s", status ? "\nSTATUS=" : "",
		 status ? status : "");
	notify(state, "ready");
}

void daemon_notify_stopping(void)
{
	notify("STOPPING=1", "stopping");
}
