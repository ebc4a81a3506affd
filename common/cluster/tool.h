/* The start-up every program that talks to the cluster shares: the options
 * -c CONF, --keyring PATH and --name ENTITY (and $BASALT_CONF), the config
 * they name loaded, and the keyring path resolved (--keyring, else
 * keyring = in [global], else beside the config). */
#ifndef BASALT_CLUSTER_TOOL_H
#define BASALT_CLUSTER_TOOL_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/config.h"

/* getopt codes of the long options (no short form but -c). */
enum { TOOL_OPT_KEYRING = 0x1000, TOOL_OPT_NAME };

/* Entries for a getopt_long table; "c:" goes in the short options. The
 * daemons, named by --id, take the first two only. */
#define TOOL_CONF_OPTIONS                                                   \
	{ "conf", required_argument, NULL, 'c' },                           \
	{ "keyring", required_argument, NULL, TOOL_OPT_KEYRING }
#define TOOL_LONG_OPTIONS                                                   \
	TOOL_CONF_OPTIONS, { "name", required_argument, NULL, TOOL_OPT_NAME }

/* Their lines of a --help text (options in 17 columns). */
#define TOOL_OPTIONS_HELP                                                          \
	"  -c CONF          the config (default: $BASALT_CONF, else\n"                \
	"                   /etc/basalt/basalt.conf)\n"                           \
	"  --keyring PATH   the keyring (default: keyring = in [global], or the\n" \
	"                   file 'keyring' beside CONF)\n"                         \
	"  --name ENTITY    the key to authenticate with (default client.admin)\n"

struct tool {
	const char *conf;    /* -c, then the path used */
	const char *keyring; /* --keyring as given */
	const char *name;    /* --name, default "client.admin" */
	struct cfg *cfg;     /* loaded by tool_load */
	char keyring_path[4096];
};

/* Sets T's defaults. */
void tool_init(struct tool *t);
/* Takes getopt's CH and ARG if they are one of the shared options:
 * true; false leaves them to the caller. */
bool tool_option(struct tool *t, int ch, const char *arg);
/* Loads the config (-c or $BASALT_CONF) and resolves the keyring path.
 * 0, or -errno with WHY naming what is missing or wrong. */
int tool_load(struct tool *t, char *why, size_t why_len);
/* Frees what tool_load loaded. */
void tool_fini(struct tool *t);

#endif
