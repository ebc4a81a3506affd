/* The start-up programs share (common/cluster/tool.h): the options it
 * takes and leaves, the config from -c or $BASALT_CONF, the keyring path
 * from --keyring, the config's keyring =, or beside the config, and the
 * errors that name what is missing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cluster/tool.h"

static char dir[] = "/tmp/test-tool-XXXXXX";

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_options(void **state)
{
	(void)state;
	struct tool t;
	tool_init(&t);
	assert_string_equal(t.name, "client.admin");
	assert_true(tool_option(&t, 'c', "/etc/b.conf"));
	assert_true(tool_option(&t, TOOL_OPT_KEYRING, "/k"));
	assert_true(tool_option(&t, TOOL_OPT_NAME, "client.x"));
	assert_false(tool_option(&t, 'j', NULL)); /* the program's own */
	assert_string_equal(t.conf, "/etc/b.conf");
	assert_string_equal(t.keyring, "/k");
	assert_string_equal(t.name, "client.x");
}

static void test_no_config(void **state)
{
	(void)state;
	unsetenv("BASALT_CONF");
	if (access(CFG_DEFAULT_PATH, F_OK) == 0)
		skip(); /* an installed cluster's config is the default */
	struct tool t;
	tool_init(&t);
	char why[256];
	assert_int_equal(tool_load(&t, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "give -c CONF, set BASALT_CONF, or write " CFG_DEFAULT_PATH));
	tool_fini(&t);
}

static void test_missing_config(void **state)
{
	(void)state;
	struct tool t;
	tool_init(&t);
	char path[64], why[512];
	snprintf(path, sizeof(path), "%s/absent.conf", dir);
	t.conf = path;
	assert_int_equal(tool_load(&t, why, sizeof(why)), -ENOENT);
	assert_non_null(strstr(why, path)); /* names the file */
	tool_fini(&t);
}

static void test_keyring_paths(void **state)
{
	(void)state;
	char conf[64], why[256];
	snprintf(conf, sizeof(conf), "%s/basalt.conf", dir);
	write_file(conf, "[global]\nfsid = 0\n");
	setenv("BASALT_CONF", conf, 1); /* no -c: the environment's */
	struct tool t;
	tool_init(&t);
	assert_int_equal(tool_load(&t, why, sizeof(why)), 0);
	assert_string_equal(t.conf, conf);
	char beside[80];
	snprintf(beside, sizeof(beside), "%s/keyring", dir);
	assert_string_equal(t.keyring_path, beside);
	tool_fini(&t);

	write_file(conf, "[global]\nkeyring = /etc/basalt/keyring\n");
	tool_init(&t);
	assert_int_equal(tool_load(&t, why, sizeof(why)), 0);
	assert_string_equal(t.keyring_path, "/etc/basalt/keyring");
	tool_fini(&t);

	tool_init(&t);
	tool_option(&t, TOOL_OPT_KEYRING, "/run/k"); /* --keyring wins */
	assert_int_equal(tool_load(&t, why, sizeof(why)), 0);
	assert_string_equal(t.keyring_path, "/run/k");
	tool_fini(&t);
	unlink(conf);
	unsetenv("BASALT_CONF");
}

int main(void)
{
	assert_non_null(mkdtemp(dir));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_no_config),
		cmocka_unit_test(test_missing_config),
		cmocka_unit_test(test_keyring_paths),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	rmdir(dir);
	return rc;
}
