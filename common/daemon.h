/* What every Basalt daemon's main() does alike: run its event loop in the
 * foreground until SIGTERM or SIGINT, make sure it then stops, and tell a
 * service manager (systemd's Type=notify) when it is ready and stopping. */
#ifndef BASALT_COMMON_DAEMON_H
#define BASALT_COMMON_DAEMON_H

#include "io/loop.h"

/* Runs LOOP until SIGTERM or SIGINT (SIGPIPE ignored); the loop's result.
 * The caller then shuts down in order. With STOP_TIMEOUT_S > 0, however
 * that goes the process ends: a second signal exits at once, and it exits
 * by itself STOP_TIMEOUT_S after the first (a device or peer that never
 * answers cannot keep it alive; the signals are taken by a thread of
 * their own, so a loop stuck in the kernel does not hide them). Both
 * exit with status 1 and say so on stderr; nothing acknowledged depends
 * on a clean stop. With 0, every signal only stops the loop (call again
 * to wait for the next). */
int daemon_run(struct io_loop *loop, unsigned stop_timeout_s);

/* Blocks SIGTERM and SIGINT in the calling thread, so every thread made
 * after it (a metrics server's, a library's) inherits them blocked and
 * daemon_run's signal thread takes them: called first thing by a daemon
 * that starts threads before daemon_run, else a stop signal may land in
 * one of those and end the process without its clean stop. */
void daemon_block_stop_signals(void);

struct cfg;
/* The bound from the config: daemon_stop_timeout in SECTION (then its
 * type's section, then [global]); default 30 s, 1 s to 1 h. 0, or
 * -EINVAL with cfg_error() saying why. */
int daemon_stop_timeout(struct cfg *cfg, const char *section, unsigned *out /* out */);

/* Tells the service manager that the daemon now does its job (READY=1,
 * with STATUS as the line `systemctl status` shows; NULL for none): call
 * it once what the daemon is for works — listening, mounted, accepted by
 * the monitors — never earlier, as units ordered after it start then.
 * Nothing when NOTIFY_SOCKET is unset (not started by systemd); a socket
 * that cannot be reached is logged, not fatal. Calling it again only
 * updates the status. */
void daemon_notify_ready(const char *status);
/* Tells the service manager the daemon is stopping (STOPPING=1): the unit
 * shows "deactivating" from then on, not only once the process has gone
 * (a stop may take up to daemon_stop_timeout). daemon_run() sends it when
 * its loop ends. */
void daemon_notify_stopping(void);

#endif
