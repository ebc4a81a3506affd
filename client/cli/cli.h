/* What the basalt command line's files share (basalt.c, backup_cmd.c):
 * the session, the error and JSON helpers, and the connection to the
 * cluster for commands that need one. */
#ifndef BASALT_CLIENT_CLI_CLI_H
#define BASALT_CLIENT_CLI_CLI_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "client/libbasalt.h"
#include "client/monc.h"
#include "client/volume_admin.h"
#include "common/cluster/tool.h"

struct cli {
	struct cfg *cfg;
	struct monc *mc;
	bool json;
	int mon;
	struct bs_client_params data; /* object I/O through libbasalt */
	struct bs_sync *io;	      /* opened by the first object command */
	int timeout_s;		      /* --timeout */
};

/* --json: errors and warnings go to stderr as JSON objects too. */
extern bool json_mode;

/* One line on stderr; with --json {"error": TEXT, "errno": "ENAME"}
 * (ERR a negative errno), so a script reads a failure as JSON too.
 * Returns STATUS, the exit status. Through the three below. */
int die_as(int status, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A command that was tried and failed with ERR: exit status 1. */
#define die_rc(err, ...) die_as(1, (err), __VA_ARGS__)
/* A refusal of what was asked (bad input the command found): EINVAL,
 * exit status 1. */
#define die(...) die_as(1, -EINVAL, __VA_ARGS__)
/* A command line that cannot be run as given (unknown command, option or
 * value): exit status 2, apart from 1 for a command that was tried and
 * failed (see "Exit status" in the README). */
#define die_usage(...) die_as(2, -EINVAL, __VA_ARGS__)

/* S as a JSON string (bytes that are not UTF-8 become '?'); NULL is "". */
json_t *jstr(const char *s);
/* A warning beside a result: "basalt: warning: ..." or {"warning": ...}. */
void warn(const char *text);
/* Prints DOC on one line and frees it; NULL: out of memory (said). */
int json_out(json_t *doc);
/* Appends V to array A (takes V); false when either is NULL. */
bool jpush(json_t *a, json_t *v);

/* The config, keyring and monitor client; MON (may be NULL) the monitor
 * to ask. 0, or the exit status after saying why. */
int cli_connect(struct cli *c, struct tool *t, const char *mon, uint64_t timeout_s);
/* The admin ops over C's monitor client and libbasalt client. */
void snap_admin(struct cli *c, struct bs_admin *a, struct bs_admin_cluster *k);

/* basalt backup --help. */
extern const char backup_usage[];
/* basalt backup ... (backup_cmd.c): connects to the cluster itself, only
 * for the subcommands that read or write volumes. */
int cmd_backup(struct cli *c, struct tool *t, const char *mon, uint64_t timeout_s, int argc,
	       char **argv);

/* basalt cluster init ... (cluster_cmd.c): writes files, connects to
 * nothing. */
int cmd_cluster(struct tool *t, int argc, char **argv);

#endif
