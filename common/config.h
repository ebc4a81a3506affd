/* Configuration: an INI file (-c, BASALT_CONF or /etc/basalt) parsed with inih,
 * read through typed getters.  Every error names the file, the line (when
 * the key is present) and the section and key, e.g.
 *   basalt.conf:12: [osd] osd_sync: expected always|batch, got 'sometimes'
 * A key is looked up in its section ("osd.1"), then the section's type
 * ("osd"), then [global]. */
#ifndef BASALT_COMMON_CONFIG_H
#define BASALT_COMMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cfg;

#define CFG_ERROR_MAX 512
/* The longest section name, in bytes: inih cuts longer ones, so they are
 * refused instead. */
#define CFG_SECTION_MAX 49

/* Where an installed cluster keeps its config (the package's /etc/basalt). */
#define CFG_DEFAULT_PATH "/etc/basalt/basalt.conf"
/* What a missing config tells the user to do. */
#define CFG_NONE_HINT "give -c CONF, set BASALT_CONF, or write " CFG_DEFAULT_PATH

/* Picks the config path: CLI_PATH if given, else $BASALT_CONF, else
 * CFG_DEFAULT_PATH when that file exists, else NULL. */
const char *cfg_pick_path(const char *cli_path);

/* Parses PATH. On failure returns -errno (-EINVAL for syntax errors, a
 * line longer than inih's, a section name longer than CFG_SECTION_MAX or
 * a NUL byte; -EFBIG for a file above 4 MiB) and writes one line naming
 * the file and line into ERR. Caller frees *OUT with cfg_free. */
int cfg_load(const char *path, struct cfg **out, char *err, size_t err_len);
/* cfg_load for an INI file that is not the config: WHAT ("keyring") names
 * it in errors ("cannot open the keyring PATH: ..."). A directory is
 * -EISDIR; a key before any [section] is a syntax error. */
int cfg_load_as(const char *path, const char *what, struct cfg **out, char *err,
		size_t err_len);
/* Parses TEXT as if it were a file called NAME (for tests and defaults):
 * a file of the same bytes loads alike. */
int cfg_load_string(const char *name, const char *text, struct cfg **out,
		    char *err, size_t err_len);
void cfg_free(struct cfg *cfg);

/* The last getter error, one line. Valid until the next getter call. */
const char *cfg_error(const struct cfg *cfg);
const char *cfg_path(const struct cfg *cfg);

/* Getters return 0 when the key was found and valid, 1 when it is absent
 * (then *OUT = DEF), or -EINVAL when present and invalid (cfg_error says
 * why). A NULL DEF for strings makes the key required: absent is -ENOENT. */
int cfg_get_str(struct cfg *cfg, const char *section, const char *key,
		const char *def, const char **out);
int cfg_get_u64(struct cfg *cfg, const char *section, const char *key,
		uint64_t def, uint64_t min, uint64_t max, uint64_t *out);
/* Sizes in the grammar of size.h: 4096, 128K, 1.5G, 1T (also KiB, MB...). */
int cfg_get_size(struct cfg *cfg, const char *section, const char *key,
		 uint64_t def, uint64_t min, uint64_t max, uint64_t *out);
/* Durations: "250ms", "5s", "10m", "1h"; a bare number is milliseconds. */
int cfg_get_duration_ms(struct cfg *cfg, const char *section, const char *key,
			uint64_t def, uint64_t min, uint64_t max,
			uint64_t *out);
int cfg_get_bool(struct cfg *cfg, const char *section, const char *key,
		 bool def, bool *out);
/* CHOICES is NULL-terminated; *OUT is the index of the match. */
int cfg_get_enum(struct cfg *cfg, const char *section, const char *key,
		 const char *const *choices, int def, int *out);

/* Marks a present key as invalid for a reason the getters cannot see
 * (e.g. a bad base64 secret): sets cfg_error to "file:line: [section]
 * key: REASON" and returns -EINVAL. */
int cfg_reject(struct cfg *cfg, const char *section, const char *key,
	       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Calls FN for every section whose name starts with PREFIX, in file order. */
void cfg_for_each_section(const struct cfg *cfg, const char *prefix,
			  void (*fn)(const char *section, void *arg), void *arg);

/* Parsers shared with the command line. 0 or -EINVAL. cfg_parse_size is
 * size_parse without the reason (size.h). */
int cfg_parse_size(const char *text, uint64_t *out);
/* BYTES for people: "256 MiB" when exact, else "2.1 MiB"; "512 B" below
 * 1 KiB. Returns BUF (32 bytes are always enough). */
const char *cfg_format_size(uint64_t bytes, char *buf, size_t cap);
int cfg_parse_duration_ms(const char *text, uint64_t *out);
/* "host:port" (the last colon splits, so "::1:6789" works): 0, or -EINVAL
 * when the port is not 1-65535 or the host is empty or too long. */
int cfg_parse_hostport(const char *text, char *host, size_t host_len, uint16_t *port);

#endif
