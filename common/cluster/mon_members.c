/* The monitor list and fsid from the config (see mon_members.h). */
#include "mon_members.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/why.h"

struct members_scan {
	struct cfg *cfg;
	struct mon_member *out;
	int n;
	int rc;
	char *why;
	size_t why_len;
};

static void members_add(const char *section, void *arg)
{
	struct members_scan *sc = arg;
	if (sc->rc || strncmp(section, "mon.", 4) != 0 || !section[4])
		return;
	if (sc->n == MON_MAX_MEMBERS) {
		sc->rc = why_set(sc->why, sc->why_len, -EINVAL,
				 "%s: more than %d monitors", cfg_path(sc->cfg), MON_MAX_MEMBERS);
		return;
	}
	struct mon_member *mm = &sc->out[sc->n];
	const char *addr;
	snprintf(mm->name, sizeof(mm->name), "%s", section + 4);
	if (cfg_get_str(sc->cfg, section, "addr", NULL, &addr) < 0) {
		sc->rc = why_set(sc->why, sc->why_len, -EINVAL, "%s", cfg_error(sc->cfg));
		return;
	}
	if (cfg_parse_hostport(addr, mm->host, sizeof(mm->host), &mm->port)) {
		sc->rc = cfg_reject(sc->cfg, section, "addr", "expected host:port, got '%s'", addr);
		why_set(sc->why, sc->why_len, sc->rc, "%s", cfg_error(sc->cfg));
		return;
	}
	sc->n++;
}

static int member_cmp(const void *a, const void *b)
{
	return strcmp(((const struct mon_member *)a)->name, ((const struct mon_member *)b)->name);
}

int mon_members(struct cfg *cfg, struct mon_member *out, int *n, char *why, size_t why_len)
{
	struct members_scan sc = { cfg, out, 0, 0, why, why_len };
	cfg_for_each_section(cfg, "mon.", members_add, &sc);
	if (sc.rc)
		return sc.rc;
	if (sc.n == 0)
		return why_set(why, why_len, -EINVAL,
			       "%s: no monitors: add [mon.NAME] sections with addr = host:port",
			       cfg_path(cfg));
	qsort(out, (size_t)sc.n, sizeof(*out), member_cmp);
	*n = sc.n;
	return 0;
}

int mon_fsid(struct cfg *cfg, uint8_t fsid[16], char *why, size_t why_len)
{
	const char *text;
	if (cfg_get_str(cfg, "global", "fsid", NULL, &text) < 0)
		return why_set(why, why_len, -EINVAL, "%s", cfg_error(cfg));
	int nibbles = 0;
	for (const char *p = text; *p; p++) {
		if (*p == '-')
			continue;
		if (!isxdigit((unsigned char)*p) || nibbles == 32) {
			nibbles = -1;
			break;
		}
		int v = isdigit((unsigned char)*p) ? *p - '0' : (tolower((unsigned char)*p) - 'a' + 10);
		fsid[nibbles / 2] = (uint8_t)(nibbles % 2 ? (fsid[nibbles / 2] | v) : v << 4);
		nibbles++;
	}
	if (nibbles != 32) {
		int rc = cfg_reject(cfg, "global", "fsid", "expected 32 hex digits, got '%s'", text);
		return why_set(why, why_len, rc, "%s", cfg_error(cfg));
	}
	return 0;
}
