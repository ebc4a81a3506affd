/* INI configuration on top of inih. Entries are kept in file order with
 * their line numbers so that every later error can point at its line. */
#include "config.h"
#include "size.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define CFG_MAX_ENTRIES 4096
/* A config or keyring larger than this is not one: 4,096 entries of
 * inih's longest line fill less than a MiB. */
#define CFG_FILE_MAX (4u << 20)

struct cfg_entry {
	char *section;
	char *key;
	char *value;
	int line;
};

struct cfg {
	char *path;
	struct cfg_entry *entries;
	size_t count, capacity;
	char error[CFG_ERROR_MAX];
};

struct cfg_parse {
	struct cfg *cfg;
	const char *text; /* what is left to read */
	int line;         /* lines read so far = line of the current entry */
	int error_line;
	char error[CFG_ERROR_MAX];
};

const char *cfg_pick_path(const char *cli_path)
{
	if (cli_path && *cli_path)
		return cli_path;
	const char *env = getenv("BASALT_CONF");
	if (env && *env)
		return env;
	return access(CFG_DEFAULT_PATH, F_OK) == 0 ? CFG_DEFAULT_PATH : NULL;
}

/* A "[section]" LINE (line number N) naming a section longer than
 * CFG_SECTION_MAX. inih would cut the name silently: the keys of
 * "[client.LONG...]" would become those of the entity its first bytes
 * name. */
static bool cfg_section_too_long(const char *line, int n)
{
	if (n == 1 && !strncmp(line, "\xEF\xBB\xBF", 3))
		line += 3; /* inih skips a UTF-8 byte order mark */
	while (isspace((unsigned char)*line))
		line++;
	const char *close = *line == '[' ? strchr(line, ']') : NULL;
	return close && close - line - 1 > CFG_SECTION_MAX;
}

/* inih reader: one line per call, counting lines and refusing long ones
 * and long section names. */
static char *cfg_reader(char *str, int num, void *stream)
{
	struct cfg_parse *p = stream;
	if (p->error_line || !*p->text)
		return NULL;
	const char *nl = strchr(p->text, '\n');
	size_t len = nl ? (size_t)(nl - p->text) + 1 : strlen(p->text);
	/* inih's buffer holds NUM - 2 bytes, a newline and a NUL: the same
	 * limit for the last line, which has no newline. */
	if (len - (nl != NULL) > (size_t)num - 2) {
		p->error_line = p->line + 1;
		snprintf(p->error, sizeof(p->error), "line longer than %d bytes", num - 2);
		return NULL;
	}
	memcpy(str, p->text, len);
	str[len] = '\0';
	p->text += len;
	p->line++;
	if (cfg_section_too_long(str, p->line)) {
		p->error_line = p->line;
		snprintf(p->error, sizeof(p->error), "a section name longer than %d bytes",
			 CFG_SECTION_MAX);
		return NULL;
	}
	return str;
}

static struct cfg_entry *cfg_find_exact(const struct cfg *cfg,
					const char *section, const char *key)
{
	for (size_t i = cfg->count; i-- > 0;) {
		struct cfg_entry *e = &cfg->entries[i];
		if (strcmp(e->section, section) == 0 && strcmp(e->key, key) == 0)
			return e;
	}
	return NULL;
}

static int cfg_handler(void *user, const char *section, const char *key,
		       const char *value)
{
	struct cfg_parse *p = user;
	struct cfg *cfg = p->cfg;
	if (!*section) {
		/* inih takes "a: b" as a key too: without this, any text file
		 * (/etc/passwd) would load as a config with no sections. */
		snprintf(p->error, sizeof(p->error),
			 "'%.40s' before any [section] (expected [section] or key = value)", key);
		p->error_line = p->line;
		return 0;
	}
	struct cfg_entry *dup = cfg_find_exact(cfg, section, key);
	if (dup) {
		snprintf(p->error, sizeof(p->error),
			 "[%s] %s: duplicate key (first set on line %d)",
			 section, key, dup->line);
		p->error_line = p->line;
		return 0;
	}
	if (cfg->count == cfg->capacity) {
		if (cfg->capacity >= CFG_MAX_ENTRIES) {
			snprintf(p->error, sizeof(p->error),
				 "more than %d entries", CFG_MAX_ENTRIES);
			p->error_line = p->line;
			return 0;
		}
		size_t cap = cfg->capacity ? cfg->capacity * 2 : 32;
		struct cfg_entry *e = realloc(cfg->entries, cap * sizeof(*e));
		if (!e)
			return 0;
		cfg->entries = e;
		cfg->capacity = cap;
	}
	struct cfg_entry *e = &cfg->entries[cfg->count];
	e->section = strdup(section);
	e->key = strdup(key);
	e->value = strdup(value);
	e->line = p->line;
	if (!e->section || !e->key || !e->value) {
		free(e->section);
		free(e->key);
		free(e->value);
		return 0;
	}
	cfg->count++;
	return 1;
}

static int cfg_parse(struct cfg_parse *p, const char *name, struct cfg **out,
		     char *err, size_t err_len)
{
	struct cfg *cfg = calloc(1, sizeof(*cfg));
	if (!cfg || !(cfg->path = strdup(name))) {
		free(cfg);
		snprintf(err, err_len, "%s: out of memory", name);
		return -ENOMEM;
	}
	p->cfg = cfg;
	ini_allow_multiline = false;
	ini_stop_on_first_error = true;
	int rc = ini_parse_stream(cfg_reader, p, cfg_handler, p);
	if (rc != 0 || p->error_line) {
		int line = p->error_line ? p->error_line : rc;
		if (p->error[0])
			snprintf(err, err_len, "%s:%d: %s", name, line, p->error);
		else
			snprintf(err, err_len,
				 "%s:%d: syntax error (expected [section] or key = value)",
				 name, line);
		cfg_free(cfg);
		return -EINVAL;
	}
	*out = cfg;
	return 0;
}

/* The whole of F into *OUT, NUL-terminated (caller frees), its length
 * into *LEN: 0, or -errno (-EFBIG above CFG_FILE_MAX). */
static int cfg_read_all(FILE *f, char **out, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	while (buf) {
		n += fread(buf + n, 1, cap - 1 - n, f);
		if (ferror(f) || n > CFG_FILE_MAX) {
			int rc = ferror(f) ? -(errno ? errno : EIO) : -EFBIG;
			free(buf);
			return rc;
		}
		if (feof(f)) {
			buf[n] = '\0';
			*out = buf;
			*len = n;
			return 0;
		}
		char *bigger = realloc(buf, cap * 2);
		if (!bigger)
			free(buf);
		buf = bigger;
		cap *= 2;
	}
	return -ENOMEM;
}

/* Reads PATH whole, then parses it as cfg_load_string does: one reader
 * for both, so a file and a string of the same text load alike. A NUL
 * byte is refused (a line would end there unseen). */
int cfg_load_as(const char *path, const char *what, struct cfg **out, char *err,
		size_t err_len)
{
	FILE *f = fopen(path, "re");
	struct stat st;
	int e = !f ? errno : fstat(fileno(f), &st) ? errno : 0;
	if (!e && S_ISDIR(st.st_mode))
		e = EISDIR; /* fopen opens a directory; reading it fails later */
	if (e) {
		snprintf(err, err_len, "cannot open the %s %s: %s", what, path, strerror(e));
		if (f)
			fclose(f);
		return -e;
	}
	char *text = NULL;
	size_t len = 0;
	int rc = cfg_read_all(f, &text, &len);
	fclose(f);
	if (rc) {
		snprintf(err, err_len, "cannot read the %s %s: %s", what, path, strerror(-rc));
		return rc;
	}
	const char *nul = memchr(text, '\0', len);
	if (nul) {
		int line = 1;
		for (const char *c = text; c < nul; c++)
			line += *c == '\n';
		snprintf(err, err_len, "%s:%d: a NUL byte (a %s is text)", path, line, what);
		rc = -EINVAL;
	} else {
		rc = cfg_load_string(path, text, out, err, err_len);
	}
	free(text);
	return rc;
}

int cfg_load(const char *path, struct cfg **out, char *err, size_t err_len)
{
	return cfg_load_as(path, "config", out, err, err_len);
}

int cfg_load_string(const char *name, const char *text, struct cfg **out,
		    char *err, size_t err_len)
{
	struct cfg_parse p = { .text = text };
	return cfg_parse(&p, name, out, err, err_len);
}

void cfg_free(struct cfg *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->count; i++) {
		free(cfg->entries[i].section);
		free(cfg->entries[i].key);
		free(cfg->entries[i].value);
	}
	free(cfg->entries);
	free(cfg->path);
	free(cfg);
}

const char *cfg_error(const struct cfg *cfg)
{
	return cfg->error;
}

const char *cfg_path(const struct cfg *cfg)
{
	return cfg->path;
}

/* SECTION, then its type ("osd" for "osd.1"), then "global". */
static const struct cfg_entry *cfg_lookup(const struct cfg *cfg,
					  const char *section, const char *key)
{
	const struct cfg_entry *e = cfg_find_exact(cfg, section, key);
	if (e)
		return e;
	const char *dot = strchr(section, '.');
	if (dot) {
		char type[128];
		size_t n = (size_t)(dot - section);
		if (n < sizeof(type)) {
			memcpy(type, section, n);
			type[n] = '\0';
			if ((e = cfg_find_exact(cfg, type, key)))
				return e;
		}
	}
	if (strcmp(section, "global") != 0)
		e = cfg_find_exact(cfg, "global", key);
	return e;
}

static int cfg_vfail(struct cfg *cfg, const struct cfg_entry *e,
		     const char *fmt, va_list ap)
{
	int n = snprintf(cfg->error, sizeof(cfg->error), "%s:%d: [%s] %s: ",
			 cfg->path, e->line, e->section, e->key);
	if (n > 0 && (size_t)n < sizeof(cfg->error))
		vsnprintf(cfg->error + n, sizeof(cfg->error) - (size_t)n, fmt,
			  ap);
	return -EINVAL;
}

static int cfg_fail(struct cfg *cfg, const struct cfg_entry *e,
		    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int cfg_fail(struct cfg *cfg, const struct cfg_entry *e,
		    const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = cfg_vfail(cfg, e, fmt, ap);
	va_end(ap);
	return rc;
}

int cfg_reject(struct cfg *cfg, const char *section, const char *key,
	       const char *fmt, ...)
{
	const struct cfg_entry *e = cfg_lookup(cfg, section, key);
	struct cfg_entry absent = { (char *)section, (char *)key, NULL, 0 };
	va_list ap;
	va_start(ap, fmt);
	int rc = cfg_vfail(cfg, e ? e : &absent, fmt, ap);
	va_end(ap);
	return rc;
}

int cfg_get_str(struct cfg *cfg, const char *section, const char *key,
		const char *def, const char **out)
{
	const struct cfg_entry *e = cfg_lookup(cfg, section, key);
	if (e) {
		*out = e->value;
		return 0;
	}
	if (!def) {
		snprintf(cfg->error, sizeof(cfg->error),
			 "%s: [%s] %s: required key is missing", cfg->path,
			 section, key);
		return -ENOENT;
	}
	*out = def;
	return 1;
}

/* Parses an unsigned decimal with an optional suffix from TABLE. */
struct cfg_unit {
	const char *suffix;
	uint64_t scale;
};

static int cfg_parse_scaled(const char *text, const struct cfg_unit *units,
			    uint64_t *out)
{
	if (!text || *text < '0' || *text > '9')
		return -EINVAL;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(text, &end, 10);
	if (errno)
		return -EINVAL;
	while (*end == ' ')
		end++;
	for (const struct cfg_unit *u = units; u->suffix; u++) {
		if (strcasecmp(end, u->suffix) == 0) {
			if (u->scale && v > UINT64_MAX / u->scale)
				return -EINVAL;
			*out = (uint64_t)v * u->scale;
			return 0;
		}
	}
	return -EINVAL;
}

/* The one size grammar (size.h), so a config file and the command line
 * read "1.5G" alike. */
int cfg_parse_size(const char *text, uint64_t *out)
{
	return size_parse(text, out, NULL, 0) ? -EINVAL : 0;
}

const char *cfg_format_size(uint64_t bytes, char *buf, size_t cap)
{
	static const char *const names[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	unsigned u = 0;
	while (u + 1 < sizeof(names) / sizeof(names[0]) && bytes >> (10 * (u + 1)))
		u++;
	uint64_t unit = 1ULL << (10 * u);
	if (bytes % unit == 0)
		snprintf(buf, cap, "%" PRIu64 " %s", bytes / unit, names[u]);
	else
		snprintf(buf, cap, "%.1f %s", (double)bytes / (double)unit, names[u]);
	return buf;
}

int cfg_parse_duration_ms(const char *text, uint64_t *out)
{
	static const struct cfg_unit units[] = {
		{ "", 1 },	     { "ms", 1 },	   { "s", 1000 },
		{ "m", 60 * 1000 }, { "h", 3600 * 1000 }, { NULL, 0 },
	};
	return cfg_parse_scaled(text, units, out);
}

static int cfg_get_scaled(struct cfg *cfg, const char *section,
			  const char *key, uint64_t def, uint64_t min,
			  uint64_t max, uint64_t *out,
			  int (*parse)(const char *, uint64_t *),
			  const char *what)
{
	const struct cfg_entry *e = cfg_lookup(cfg, section, key);
	if (!e) {
		*out = def;
		return 1;
	}
	uint64_t v;
	if (parse(e->value, &v) != 0)
		return cfg_fail(cfg, e, "expected %s, got '%s'", what, e->value);
	if (v < min || v > max)
		return cfg_fail(cfg, e,
				"%" PRIu64 " is out of range [%" PRIu64
				", %" PRIu64 "]",
				v, min, max);
	*out = v;
	return 0;
}

static int cfg_parse_plain(const char *text, uint64_t *out)
{
	static const struct cfg_unit units[] = { { "", 1 }, { NULL, 0 } };
	return cfg_parse_scaled(text, units, out);
}

int cfg_get_u64(struct cfg *cfg, const char *section, const char *key,
		uint64_t def, uint64_t min, uint64_t max, uint64_t *out)
{
	return cfg_get_scaled(cfg, section, key, def, min, max, out,
			      cfg_parse_plain, "an unsigned integer");
}

int cfg_get_size(struct cfg *cfg, const char *section, const char *key,
		 uint64_t def, uint64_t min, uint64_t max, uint64_t *out)
{
	const struct cfg_entry *e = cfg_lookup(cfg, section, key);
	char why[CFG_ERROR_MAX];
	if (e && size_parse(e->value, &(uint64_t){ 0 }, why, sizeof(why)))
		return cfg_fail(cfg, e, "%s", why);
	return cfg_get_scaled(cfg, section, key, def, min, max, out,
			      cfg_parse_size, "a size");
}

int cfg_get_duration_ms(struct cfg *cfg, const char *section, const char *key,
			uint64_t def, uint64_t min, uint64_t max, uint64_t *out)
{
	return cfg_get_scaled(cfg, section, key, def, min, max, out,
			      cfg_parse_duration_ms,
			      "a duration such as 250ms, 5s or 10m");
}

int cfg_get_bool(struct cfg *cfg, const char *section, const char *key,
		 bool def, bool *out)
{
	static const char *const choices[] = { "false", "true", "no",  "yes",
					       "off",	"on",	"0",   "1",
					       NULL };
	int idx;
	int rc = cfg_get_enum(cfg, section, key, choices, def ? 1 : 0, &idx);
	if (rc >= 0)
		*out = idx & 1;
	return rc;
}

int cfg_get_enum(struct cfg *cfg, const char *section, const char *key,
		 const char *const *choices, int def, int *out)
{
	const struct cfg_entry *e = cfg_lookup(cfg, section, key);
	if (!e) {
		*out = def;
		return 1;
	}
	for (int i = 0; choices[i]; i++) {
		if (strcmp(e->value, choices[i]) == 0) {
			*out = i;
			return 0;
		}
	}
	char list[256] = "";
	size_t n = 0;
	for (int i = 0; choices[i] && n < sizeof(list); i++)
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s",
				      i ? "|" : "", choices[i]);
	return cfg_fail(cfg, e, "expected %s, got '%s'", list, e->value);
}

void cfg_for_each_section(const struct cfg *cfg, const char *prefix,
			  void (*fn)(const char *section, void *arg), void *arg)
{
	size_t plen = strlen(prefix);
	for (size_t i = 0; i < cfg->count; i++) {
		const char *s = cfg->entries[i].section;
		if (strncmp(s, prefix, plen) != 0)
			continue;
		bool seen = false;
		for (size_t j = 0; j < i && !seen; j++)
			seen = strcmp(cfg->entries[j].section, s) == 0;
		if (!seen)
			fn(s, arg);
	}
}

int cfg_parse_hostport(const char *text, char *host, size_t host_len, uint16_t *port)
{
	const char *colon = strrchr(text, ':');
	if (!colon || colon == text || (size_t)(colon - text) >= host_len)
		return -EINVAL;
	char *end;
	unsigned long p = strtoul(colon + 1, &end, 10);
	if (*end || p == 0 || p > 65535)
		return -EINVAL;
	memcpy(host, text, (size_t)(colon - text));
	host[colon - text] = '\0';
	*port = (uint16_t)p;
	return 0;
}
