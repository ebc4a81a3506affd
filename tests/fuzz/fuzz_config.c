/* libFuzzer target for the config parser (common/config.h). The input is
 * loaded twice: as a file, every byte of it (through a memfd), and as a
 * string, cut at its first NUL (a C string cannot hold more). Checked: a
 * file holding a NUL byte is refused; without one, both loads agree
 * (result, error text, sections, every value); then every getter runs on
 * every section the file has and every key its lines name, and returns
 * what config.h promises, within the range asked for. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/assert.h"
#include "common/config.h"
#include "common/size.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NAMES_MAX 24
#define NAME_LEN_MAX 80

/* Section or key names to look up; each owned (caller frees with
 * names_free). */
struct names {
	char *v[NAMES_MAX];
	size_t n;
};

static void names_add(struct names *ns, const char *s, size_t len)
{
	if (ns->n == NAMES_MAX || len == 0 || len > NAME_LEN_MAX)
		return;
	char *copy = strndup(s, len);
	if (copy)
		ns->v[ns->n++] = copy;
}

static void names_free(struct names *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		free(ns->v[i]);
	ns->n = 0;
}

static void section_seen(const char *section, void *arg)
{
	names_add(arg, section, strlen(section));
}

/* The keys TEXT's lines name: what stands before '=' or ':', trimmed. */
static void keys_of(const char *text, struct names *keys)
{
	for (const char *line = text; *line;) {
		const char *nl = strchr(line, '\n');
		const char *end = nl ? nl : line + strlen(line);
		const char *s = line;
		while (s < end && (*s == ' ' || *s == '\t'))
			s++;
		const char *sep = s;
		while (sep < end && *sep != '=' && *sep != ':')
			sep++;
		const char *e = sep;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (sep < end && *s != '[' && *s != ';' && *s != '#')
			names_add(keys, s, (size_t)(e - s));
		line = nl ? nl + 1 : end;
	}
	names_add(keys, "key", 3);
}

/* A getter's return: 0 found, 1 absent (*OUT = DEF), -EINVAL with an
 * error that starts with the file's name. */
static void check_rc(const struct cfg *cfg, int rc, bool found)
{
	BASALT_ASSERT(rc == 0 || rc == 1 || rc == -EINVAL);
	BASALT_ASSERT((rc != 1) == found);
	if (rc == -EINVAL)
		BASALT_ASSERT(!strncmp(cfg_error(cfg), cfg_path(cfg), strlen(cfg_path(cfg))));
}

static void check_value_parsers(const char *value)
{
	uint64_t v;
	char why[256], buf[32], host[64];
	if (size_parse(value, &v, why, sizeof(why)) == 0) {
		BASALT_ASSERT(v <= SIZE_MAX_BYTES);
		BASALT_ASSERT(strlen(cfg_format_size(v, buf, sizeof(buf))) < sizeof(buf));
	}
	(void)cfg_parse_duration_ms(value, &v);
	uint16_t port;
	if (cfg_parse_hostport(value, host, sizeof(host), &port) == 0)
		BASALT_ASSERT(host[0] && port > 0 && strlen(host) < sizeof(host));
}

/* Every getter on SECTION KEY of A, and the same answers from B (the same
 * text loaded the other way), when B is given. */
static void check_key(struct cfg *a, struct cfg *b, const char *section, const char *key)
{
	static const char *const choices[] = { "always", "batch", "", NULL };
	const char *s = NULL, *s2 = NULL;
	int rc = cfg_get_str(a, section, key, NULL, &s);
	BASALT_ASSERT(rc == 0 || rc == -ENOENT);
	BASALT_ASSERT(rc != -ENOENT || cfg_error(a)[0]);
	bool found = rc == 0;
	if (b) {
		BASALT_ASSERT(cfg_get_str(b, section, key, NULL, &s2) == rc);
		BASALT_ASSERT(!found || !strcmp(s, s2));
	}
	if (found)
		check_value_parsers(s);
	uint64_t v = 0;
	rc = cfg_get_u64(a, section, key, 5, 1, 1000, &v);
	check_rc(a, rc, found);
	BASALT_ASSERT(rc < 0 || (v >= 1 && v <= 1000));
	rc = cfg_get_size(a, section, key, 0, 0, SIZE_MAX_BYTES, &v);
	check_rc(a, rc, found);
	BASALT_ASSERT(rc < 0 || v <= SIZE_MAX_BYTES);
	rc = cfg_get_duration_ms(a, section, key, 7, 0, UINT64_MAX, &v);
	check_rc(a, rc, found);
	BASALT_ASSERT(rc != 1 || v == 7);
	bool flag = false;
	check_rc(a, cfg_get_bool(a, section, key, true, &flag), found);
	int idx = -1;
	rc = cfg_get_enum(a, section, key, choices, 1, &idx);
	check_rc(a, rc, found);
	BASALT_ASSERT(rc < 0 || (idx >= 0 && idx <= 2));
	BASALT_ASSERT(cfg_reject(a, section, key, "%s", "no") == -EINVAL);
	BASALT_ASSERT(!strncmp(cfg_error(a), cfg_path(a), strlen(cfg_path(a))));
}

/* The getters over A's sections (and a few a lookup falls back to) and
 * the keys TEXT names. */
static void check_getters(struct cfg *a, struct cfg *b, const char *text)
{
	struct names sections = { 0 }, sections_b = { 0 }, keys = { 0 };
	cfg_for_each_section(a, "", section_seen, &sections);
	if (b) {
		cfg_for_each_section(b, "", section_seen, &sections_b);
		BASALT_ASSERT(sections.n == sections_b.n);
		for (size_t i = 0; i < sections.n; i++)
			BASALT_ASSERT(!strcmp(sections.v[i], sections_b.v[i]));
		names_free(&sections_b);
	}
	names_add(&sections, "global", 6);
	names_add(&sections, "osd.1", 5);
	keys_of(text, &keys);
	for (size_t i = 0; i < sections.n; i++)
		for (size_t k = 0; k < keys.n; k++)
			check_key(a, b, sections.v[i], keys.v[k]);
	names_free(&sections);
	names_free(&keys);
}

/* DATA as a file: a memfd, read back through /proc/self/fd. */
static int as_file(const uint8_t *data, size_t size, char *path, size_t path_len)
{
	static int fd = -1;
	if (fd < 0 && (fd = memfd_create("fuzz_config", MFD_CLOEXEC)) < 0)
		return -errno;
	if (ftruncate(fd, 0) || (size && pwrite(fd, data, size, 0) != (ssize_t)size))
		return -EIO;
	snprintf(path, path_len, "/proc/self/fd/%d", fd);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];
	if (as_file(data, size, path, sizeof(path)))
		return 0;
	char *text = strndup((const char *)data, size); /* cut at the first NUL */
	if (!text)
		return 0;
	bool has_nul = strlen(text) < size;
	struct cfg *from_file = NULL, *from_text = NULL;
	char err_file[CFG_ERROR_MAX] = "", err_text[CFG_ERROR_MAX] = "";
	int rc_file = cfg_load(path, &from_file, err_file, sizeof(err_file));
	int rc_text = cfg_load_string(path, text, &from_text, err_text, sizeof(err_text));
	BASALT_ASSERT(rc_text == 0 || rc_text == -EINVAL);
	BASALT_ASSERT(rc_text != 0 || from_text);
	BASALT_ASSERT(rc_text == 0 || (!from_text && !strncmp(err_text, path, strlen(path))));
	if (has_nul) {
		BASALT_ASSERT(rc_file == -EINVAL && !from_file && strstr(err_file, "NUL"));
	} else {
		BASALT_ASSERT(rc_file == rc_text);
		BASALT_ASSERT(rc_file == 0 || !strcmp(err_file, err_text));
	}
	if (from_text)
		check_getters(from_text, from_file, text);
	cfg_free(from_file);
	cfg_free(from_text);
	free(text);
	return 0;
}
