/* Config: typed getters, section fallback, and errors that name the file,
 * line, section and key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <errno.h>
#include <ini.h>
#include <stdio.h>

#include "common/config.h"
#include "common/size.h"

static const char conf_text[] =
	"# a comment\n"
	"[global]\n"
	"fsid = 1234\n"
	"log_level = info\n"
	"\n"
	"[osd]\n"
	"block_size = 128K\n"
	"osd_sync = always\n"
	"heartbeat = 500ms\n"
	"discard = yes\n"
	"\n"
	"[osd.2]\n"
	"osd_sync = batch\n"
	"journal_size = 1G\n"
	"bad_size = 12Q\n"
	"bad_sync = sometimes\n"
	"big = 99999\n";

static struct cfg *load(const char *text)
{
	struct cfg *cfg = NULL;
	char err[CFG_ERROR_MAX];
	int rc = cfg_load_string("test.conf", text, &cfg, err, sizeof(err));
	if (rc)
		fail_msg("unexpected parse error: %s", err);
	return cfg;
}

static void test_typed_getters(void **state)
{
	(void)state;
	struct cfg *cfg = load(conf_text);
	uint64_t v;
	bool b;
	const char *s;
	int idx;
	static const char *const syncs[] = { "always", "batch", NULL };

	assert_int_equal(cfg_get_size(cfg, "osd.1", "block_size", 0, 0, UINT64_MAX, &v), 0);
	assert_int_equal(v, 128 * 1024);
	assert_int_equal(cfg_get_size(cfg, "osd.2", "journal_size", 0, 0, UINT64_MAX, &v), 0);
	assert_true(v == 1ULL << 30);
	assert_int_equal(cfg_get_duration_ms(cfg, "osd.0", "heartbeat", 0, 0, UINT64_MAX, &v), 0);
	assert_int_equal(v, 500);
	assert_int_equal(cfg_get_bool(cfg, "osd", "discard", false, &b), 0);
	assert_true(b);
	assert_int_equal(cfg_get_u64(cfg, "osd.1", "fsid", 0, 0, UINT64_MAX, &v), 0);
	assert_int_equal(v, 1234); /* from [global] */
	/* [osd.2] overrides [osd]. */
	assert_int_equal(cfg_get_enum(cfg, "osd.2", "osd_sync", syncs, 0, &idx), 0);
	assert_int_equal(idx, 1);
	assert_int_equal(cfg_get_enum(cfg, "osd.1", "osd_sync", syncs, 1, &idx), 0);
	assert_int_equal(idx, 0);
	/* Absent keys give the default and return 1. */
	assert_int_equal(cfg_get_u64(cfg, "osd.1", "nope", 77, 0, 100, &v), 1);
	assert_int_equal(v, 77);
	assert_int_equal(cfg_get_str(cfg, "mon.a", "nope", "dflt", &s), 1);
	assert_string_equal(s, "dflt");
	cfg_free(cfg);
}

static void test_getter_errors_name_line_and_key(void **state)
{
	(void)state;
	struct cfg *cfg = load(conf_text);
	uint64_t v;
	int idx;
	const char *s;
	static const char *const syncs[] = { "always", "batch", NULL };

	assert_int_equal(cfg_get_size(cfg, "osd.2", "bad_size", 0, 0, UINT64_MAX, &v), -EINVAL);
	assert_string_equal(cfg_error(cfg),
			    "test.conf:15: [osd.2] bad_size: '12Q' is not a size: unknown suffix; " SIZE_GRAMMAR);
	assert_int_equal(cfg_get_enum(cfg, "osd.2", "bad_sync", syncs, 0, &idx), -EINVAL);
	assert_string_equal(cfg_error(cfg),
			    "test.conf:16: [osd.2] bad_sync: expected always|batch, got 'sometimes'");
	assert_int_equal(cfg_get_u64(cfg, "osd.2", "big", 0, 1, 1000, &v), -EINVAL);
	assert_string_equal(cfg_error(cfg),
			    "test.conf:17: [osd.2] big: 99999 is out of range [1, 1000]");
	assert_int_equal(cfg_get_str(cfg, "osd.2", "device", NULL, &s), -ENOENT);
	assert_string_equal(cfg_error(cfg),
			    "test.conf: [osd.2] device: required key is missing");
	assert_int_equal(cfg_reject(cfg, "osd", "block_size", "must be a power of two"), -EINVAL);
	assert_string_equal(cfg_error(cfg),
			    "test.conf:7: [osd] block_size: must be a power of two");
	cfg_free(cfg);
}

static void expect_parse_error(const char *text, const char *want)
{
	struct cfg *cfg = NULL;
	char err[CFG_ERROR_MAX];
	assert_int_equal(cfg_load_string("bad.conf", text, &cfg, err, sizeof(err)), -EINVAL);
	assert_null(cfg);
	assert_string_equal(err, want);
}

static void test_parse_errors(void **state)
{
	(void)state;
	expect_parse_error("[a]\nx = 1\nthis line is junk\n",
			   "bad.conf:3: syntax error (expected [section] or key = value)");
	expect_parse_error("[a]\nx = 1\n[b\n",
			   "bad.conf:3: syntax error (expected [section] or key = value)");
	expect_parse_error("[a]\nx = 1\ny = 2\nx = 3\n",
			   "bad.conf:4: [a] x: duplicate key (first set on line 2)");
	char *long_line = malloc(3000);
	memset(long_line, 'a', 2999);
	memcpy(long_line, "[a]\nk = ", 8);
	long_line[2999] = '\0';
	struct cfg *cfg = NULL;
	char err[CFG_ERROR_MAX];
	assert_int_equal(cfg_load_string("long.conf", long_line, &cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "long.conf:2: line longer than"));
	free(long_line);
}

static void test_file_load_and_missing_file(void **state)
{
	(void)state;
	char path[] = "/tmp/basalt-test-conf-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char text[] = "[mon]\nport = 6789\n";
	assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
	close(fd);
	struct cfg *cfg = NULL;
	char err[CFG_ERROR_MAX];
	assert_int_equal(cfg_load(path, &cfg, err, sizeof(err)), 0);
	uint64_t port;
	assert_int_equal(cfg_get_u64(cfg, "mon.a", "port", 0, 1, 65535, &port), 0);
	assert_int_equal(port, 6789);
	cfg_free(cfg);
	unlink(path);
	assert_int_equal(cfg_load(path, &cfg, err, sizeof(err)), -ENOENT);
	char want[128];
	snprintf(want, sizeof(want), "cannot open the config %s: No such file or directory", path);
	assert_string_equal(err, want);
	/* A directory is said to be one, not read as an empty config. */
	assert_int_equal(cfg_load("/tmp", &cfg, err, sizeof(err)), -EISDIR);
	assert_string_equal(err, "cannot open the config /tmp: Is a directory");
	assert_int_equal(cfg_load_as("/tmp", "keyring", &cfg, err, sizeof(err)), -EISDIR);
	assert_string_equal(err, "cannot open the keyring /tmp: Is a directory");
}

/* Any text file is not a config: a key outside a section is refused (inih
 * would take "root:x:0:0" as key "root"). */
static void test_not_a_config(void **state)
{
	(void)state;
	expect_parse_error("root:x:0:0:root:/root:/bin/bash\n",
			   "bad.conf:1: 'root' before any [section] (expected [section] or key = value)");
	expect_parse_error("# ok\nfsid = 12\n[global]\n",
			   "bad.conf:2: 'fsid' before any [section] (expected [section] or key = value)");
}

/* TEXT (LEN bytes, NULs included) as a temporary file, loaded with
 * cfg_load: its result, its error in ERR (with the file's name replaced
 * by "f.conf"), and the config (freed). */
static int load_file_bytes(const char *text, size_t len, char *err, size_t err_len)
{
	char path[] = "/tmp/basalt-test-conf-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	struct cfg *cfg = NULL;
	char raw[CFG_ERROR_MAX] = "";
	int rc = cfg_load(path, &cfg, raw, sizeof(raw));
	unlink(path);
	cfg_free(cfg);
	size_t n = strlen(path);
	snprintf(err, err_len, "%s%s", strncmp(raw, path, n) ? "" : "f.conf",
		 strncmp(raw, path, n) ? raw : raw + n);
	return rc;
}

/* Found by fuzz_config: a NUL byte in a file ended its line unseen (and
 * past 200 bytes made the rest a line of its own: "k = v\0...evil = 1"
 * set evil). A config is text: refused, naming the line. */
static void test_nul_byte_refused(void **state)
{
	(void)state;
	char err[CFG_ERROR_MAX];
	static const char text[] = "[a]\nk = v\0junk\nj = 2\n";
	assert_int_equal(load_file_bytes(text, sizeof(text) - 1, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "f.conf:2: a NUL byte (a config is text)");
	char spliced[512] = "[a]\nk = v";
	size_t len = strlen(spliced) + 1; /* the NUL */
	memset(spliced + len, 'x', 250);
	len += 250;
	memcpy(spliced + len, "\nevil = 1\n", 11);
	assert_int_equal(load_file_bytes(spliced, len + 11, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "f.conf:2: a NUL byte (a config is text)");
}

/* A file is read whole before it is parsed: one too large to be a config
 * and one that cannot be read are refused, saying so. */
static void test_file_too_large_or_unreadable(void **state)
{
	(void)state;
	char path[] = "/tmp/basalt-test-conf-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	static char comments[1 << 20];
	memset(comments, '#', sizeof(comments));
	for (size_t i = 63; i < sizeof(comments); i += 64)
		comments[i] = '\n';
	for (int i = 0; i < 5; i++)
		assert_int_equal(write(fd, comments, sizeof(comments)), (ssize_t)sizeof(comments));
	close(fd);
	struct cfg *cfg = NULL;
	char err[CFG_ERROR_MAX], want[128];
	assert_int_equal(cfg_load(path, &cfg, err, sizeof(err)), -EFBIG);
	snprintf(want, sizeof(want), "cannot read the config %s: File too large", path);
	assert_string_equal(err, want);
	assert_null(cfg);
	unlink(path);
	/* Opens, and every read fails. */
	assert_int_equal(cfg_load_as("/proc/self/mem", "keyring", &cfg, err, sizeof(err)), -EIO);
	assert_string_equal(err, "cannot read the keyring /proc/self/mem: Input/output error");
}

/* Found by fuzz_config: a last line of inih's longest length without a
 * newline loaded from a string but not from a file. Now one limit for
 * every line, newline aside, and a file loads as its text does. */
static void test_longest_line(void **state)
{
	(void)state;
	int max = ini_max_line - 2; /* bytes of a line, newline aside */
	char text[1024], err[CFG_ERROR_MAX], want[128];
	for (int newline = 0; newline <= 1; newline++) {
		for (int len = max; len <= max + 1; len++) {
			int n = snprintf(text, sizeof(text), "[a]\nk = %0*d%s", len - 4, 0,
					 newline ? "\n" : "");
			struct cfg *cfg = NULL;
			int rc = cfg_load_string("f.conf", text, &cfg, err, sizeof(err));
			assert_int_equal(load_file_bytes(text, (size_t)n, err, sizeof(err)), rc);
			assert_int_equal(rc, len == max ? 0 : -EINVAL);
			if (rc == 0) {
				const char *v;
				assert_int_equal(cfg_get_str(cfg, "a", "k", NULL, &v), 0);
				assert_int_equal(strlen(v), len - 4);
			} else {
				snprintf(want, sizeof(want), "f.conf:2: line longer than %d bytes", max);
				assert_string_equal(err, want);
			}
			cfg_free(cfg);
		}
	}
}

/* Found by fuzz_keyring: inih cuts a section name at 49 bytes, so that
 * [client.LONG...] held the key of the entity named by its first 49
 * bytes. Such a name is refused, after a byte order mark too. */
static void test_long_section_refused(void **state)
{
	(void)state;
	char text[256];
	snprintf(text, sizeof(text), "[osd.%0*d]\nk = 1\n", CFG_SECTION_MAX - 4, 7);
	struct cfg *cfg = load(text);
	const char *v;
	snprintf(text, sizeof(text), "osd.%0*d", CFG_SECTION_MAX - 4, 7);
	assert_int_equal(cfg_get_str(cfg, text, "k", NULL, &v), 0);
	cfg_free(cfg);
	snprintf(text, sizeof(text), "# c\n  [osd.%0*d] ; too long\nk = 1\n", CFG_SECTION_MAX - 3, 7);
	expect_parse_error(text, "bad.conf:2: a section name longer than 49 bytes");
	snprintf(text, sizeof(text), "\xEF\xBB\xBF[osd.%0*d]\nk = 1\n", CFG_SECTION_MAX - 3, 7);
	expect_parse_error(text, "bad.conf:1: a section name longer than 49 bytes");
}

static void test_pick_path(void **state)
{
	(void)state;
	unsetenv("BASALT_CONF");
	assert_null(cfg_pick_path(NULL));
	setenv("BASALT_CONF", "/etc/basalt/env.conf", 1);
	assert_string_equal(cfg_pick_path(NULL), "/etc/basalt/env.conf");
	assert_string_equal(cfg_pick_path("/x.conf"), "/x.conf");
	unsetenv("BASALT_CONF");
}

static void test_parse_units(void **state)
{
	(void)state;
	uint64_t v;
	assert_int_equal(cfg_parse_size("10G", &v), 0);
	assert_true(v == 10ULL << 30);
	assert_int_equal(cfg_parse_size("4096", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(cfg_parse_size("2MiB", &v), 0);
	assert_int_equal(v, 2 << 20);
	assert_int_equal(cfg_parse_size("-1", &v), -EINVAL);
	assert_int_equal(cfg_parse_size("", &v), -EINVAL);
	assert_int_equal(cfg_parse_size("99999999999999999999", &v), -EINVAL);
	assert_int_equal(cfg_parse_size("17000000000T", &v), -EINVAL); /* overflow */
	assert_int_equal(cfg_parse_duration_ms("5s", &v), 0);
	assert_int_equal(v, 5000);
	assert_int_equal(cfg_parse_duration_ms("10m", &v), 0);
	assert_int_equal(v, 600000);
	assert_int_equal(cfg_parse_duration_ms("3 weeks", &v), -EINVAL);
}

static void test_format_size(void **state)
{
	(void)state;
	char b[32];
	assert_string_equal(cfg_format_size(0, b, sizeof(b)), "0 B");
	assert_string_equal(cfg_format_size(512, b, sizeof(b)), "512 B");
	assert_string_equal(cfg_format_size(256 << 20, b, sizeof(b)), "256 MiB");
	assert_string_equal(cfg_format_size((2 << 20) + 131072, b, sizeof(b)), "2.1 MiB");
	assert_string_equal(cfg_format_size(3ULL << 40, b, sizeof(b)), "3 TiB");
	assert_string_equal(cfg_format_size(UINT64_MAX, b, sizeof(b)), "16.0 EiB");
	/* Whatever it prints for an exact size parses back to the size. */
	uint64_t v;
	cfg_format_size(10ULL << 30, b, sizeof(b));
	*strchr(b, ' ') = 0;
	assert_int_equal(cfg_parse_size(strcat(b, "G"), &v), 0);
	assert_true(v == 10ULL << 30);
}

static void test_parse_hostport(void **state)
{
	(void)state;
	char host[16];
	uint16_t port;
	assert_int_equal(cfg_parse_hostport("127.0.0.1:6789", host, sizeof(host), &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 6789);
	assert_int_equal(cfg_parse_hostport("::1:65535", host, sizeof(host), &port), 0);
	assert_string_equal(host, "::1");
	const char *bad[] = { "host", ":6789", "h:0", "h:65536", "h:12x", "h:",
			      "a-name-that-is-too-long:1" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(cfg_parse_hostport(bad[i], host, sizeof(host), &port), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_typed_getters),
		cmocka_unit_test(test_getter_errors_name_line_and_key),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_file_load_and_missing_file),
		cmocka_unit_test(test_not_a_config),
		cmocka_unit_test(test_nul_byte_refused),
		cmocka_unit_test(test_file_too_large_or_unreadable),
		cmocka_unit_test(test_longest_line),
		cmocka_unit_test(test_long_section_refused),
		cmocka_unit_test(test_pick_path),
		cmocka_unit_test(test_parse_units),
		cmocka_unit_test(test_format_size),
		cmocka_unit_test(test_parse_hostport),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
