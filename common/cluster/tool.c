/* The shared start-up of the programs that talk to the cluster (see
 * tool.h). */
#include "tool.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/keyring.h"

void tool_init(struct tool *t)
{
	memset(t, 0, sizeof(*t));
	t->name = "client.admin";
}

bool tool_option(struct tool *t, int ch, const char *arg)
{
	switch (ch) {
	case 'c': t->conf = arg; return true;
	case TOOL_OPT_KEYRING: t->keyring = arg; return true;
	case TOOL_OPT_NAME: t->name = arg; return true;
	}
	return false;
}

int tool_load(struct tool *t, char *why, size_t why_len)
{
	t->conf = cfg_pick_path(t->conf);
	if (!t->conf) {
		snprintf(why, why_len, "no config: " CFG_NONE_HINT);
		return -EINVAL;
	}
	int rc = cfg_load(t->conf, &t->cfg, why, why_len);
	if (rc)
		return rc;
	keyring_path_for_config(t->cfg, t->keyring, t->conf, t->keyring_path,
				sizeof(t->keyring_path));
	return 0;
}

void tool_fini(struct tool *t)
{
	cfg_free(t->cfg);
	t->cfg = NULL;
}
