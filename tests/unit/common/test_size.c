/* The size grammar (common/size.h): every accepted form, every refusal
 * and its reason, and the limit; and the whole-number parser beside it
 * (common/number.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/number.h"
#include "common/size.h"

static uint64_t parsed(const char *text)
{
	uint64_t v = 12345;
	char why[512] = "";
	int rc = size_parse(text, &v, why, sizeof(why));
	if (rc)
		fail_msg("'%s' refused: %s", text, why);
	return v;
}

/* TEXT is refused with RC and a message holding CAUSE and the grammar;
 * *OUT is left alone. */
static void refused(const char *text, int rc, const char *cause)
{
	uint64_t v = 12345;
	char why[512] = "";
	assert_int_equal(size_parse(text, &v, why, sizeof(why)), rc);
	assert_int_equal(v, 12345);
	if (!strstr(why, cause) || !strstr(why, "K, M, G, T, P or E") || !strstr(why, "8 EiB - 1"))
		fail_msg("'%s': '%s' lacks '%s' or the grammar", text, why, cause);
}

static void test_forms(void **state)
{
	(void)state;
	assert_int_equal(parsed("0"), 0);
	assert_int_equal(parsed("4096"), 4096);
	assert_int_equal(parsed("4096B"), 4096);
	assert_int_equal(parsed("007"), 7);
	assert_int_equal(parsed("0000000000000000000000000000001K"), 1024);
	assert_int_equal(parsed("000"), 0);
	assert_int_equal(parsed("128K"), 128 << 10);
	assert_int_equal(parsed("128k"), 128 << 10);
	assert_int_equal(parsed("128KiB"), 128 << 10);
	assert_int_equal(parsed("128KB"), 128 << 10);
	assert_int_equal(parsed("128kib"), 128 << 10);
	assert_true(parsed("10G") == 10ULL << 30);
	assert_true(parsed("10GiB") == 10ULL << 30);
	assert_true(parsed("3T") == 3ULL << 40);
	assert_true(parsed("2P") == 2ULL << 50);
	assert_true(parsed("1E") == 1ULL << 60);
	assert_true(parsed("7E") == 7ULL << 60);
	/* The same bytes whichever unit writes them. */
	assert_true(parsed("1048576T") == parsed("1E"));
	assert_true(parsed("1024M") == parsed("1G"));
}

static void test_fractions(void **state)
{
	(void)state;
	assert_true(parsed("1.5G") == 3ULL << 29);
	assert_int_equal(parsed("0.5K"), 512);
	assert_int_equal(parsed("1.25K"), 1280);
	assert_int_equal(parsed("2.0"), 2);
	assert_int_equal(parsed("1.000000000000000000"), 1);
	assert_true(parsed("7.5E") == 15ULL << 59);
	refused("1.5", -EINVAL, "whole number of bytes");
	refused("0.1K", -EINVAL, "whole number of bytes");
	refused("1.0000000000000000001G", -EINVAL, "too many digits after the point");
	refused("1.", -EINVAL, "a digit must follow the point");
	refused("1.G", -EINVAL, "a digit must follow the point");
	refused(".5G", -EINVAL, "does not start with a digit");
}

static void test_refusals(void **state)
{
	(void)state;
	refused("", -EINVAL, "it is empty");
	refused(NULL, -EINVAL, "it is empty");
	refused(" 10G", -EINVAL, "it has spaces");
	refused("10 G", -EINVAL, "it has spaces");
	refused("10G ", -EINVAL, "it has spaces");
	refused("10\tG", -EINVAL, "it has spaces");
	refused("-1", -EINVAL, "no sign");
	refused("+1", -EINVAL, "no sign");
	refused("abc", -EINVAL, "does not start with a digit");
	refused("10X", -EINVAL, "unknown suffix");
	refused("10GG", -EINVAL, "unknown suffix");
	refused("10Gi", -EINVAL, "unknown suffix");
	refused("0x10", -EINVAL, "unknown suffix");
	refused("1e3", -EINVAL, "unknown suffix"); /* E is exbi, not an exponent */
	refused("10G,", -EINVAL, "unknown suffix");
}

static void test_limit(void **state)
{
	(void)state;
	/* The largest size is INT64_MAX, an off_t's reach. */
	assert_true(parsed("9223372036854775807") == SIZE_MAX_BYTES);
	refused("9223372036854775808", -ERANGE, "too large");
	refused("8E", -ERANGE, "too large");
	refused("16E", -ERANGE, "too large");
	refused("8192P", -ERANGE, "too large");
	refused("17000000000T", -ERANGE, "too large");
	refused("18446744073709551616", -ERANGE, "too large");
	refused("99999999999999999999999999", -ERANGE, "too large");
	refused("99999999999999999999999999E", -ERANGE, "too large");
}

static void test_long_text_is_cut(void **state)
{
	(void)state;
	char text[5001], why[512];
	memset(text, 'x', sizeof(text) - 1);
	text[sizeof(text) - 1] = 0;
	text[0] = '1';
	uint64_t v;
	assert_int_equal(size_parse(text, &v, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "xxx...'"));
	assert_true(strlen(why) < 300);
	/* No WHY: only the status. */
	assert_int_equal(size_parse("10 G", &v, NULL, 0), -EINVAL);
}

static void test_range(void **state)
{
	(void)state;
	uint64_t v = 0;
	char why[512];
	assert_int_equal(size_parse_range("10G", "--size", 1, SIZE_MAX_BYTES, &v, why, sizeof(why)), 0);
	assert_true(v == 10ULL << 30);
	assert_int_equal(size_parse_range("0", "--size", 1, SIZE_MAX_BYTES, &v, why, sizeof(why)),
			 -ERANGE);
	assert_string_equal(why, "--size must be greater than 0");
	assert_int_equal(size_parse_range("2M", "--block-size", 64 << 10, 1 << 20, &v, why,
					  sizeof(why)), -ERANGE);
	assert_string_equal(why, "--block-size must be between 64 KiB and 1 MiB, not 2M");
	assert_int_equal(size_parse_range("2E", "volume size", 1, 1ULL << 60, &v, why, sizeof(why)),
			 -ERANGE);
	assert_string_equal(why, "volume size must be at most 1 EiB, not 2E");
	assert_int_equal(size_parse_range("2Q", "--block-size", 64 << 10, 1 << 20, &v, why,
					  sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "--block-size: '2Q' is not a size: unknown suffix"));
}

static void test_numbers(void **state)
{
	(void)state;
	uint64_t v = 7;
	char why[256];
	assert_int_equal(number_parse_u64("30", "--timeout", 1, 86400, &v, why, sizeof(why)), 0);
	assert_int_equal(v, 30);
	assert_int_equal(number_parse_u64("0", "--timeout", 1, 86400, &v, why, sizeof(why)), -ERANGE);
	assert_string_equal(why, "--timeout must be from 1 to 86400, not 0");
	assert_int_equal(number_parse_u64("86401", "--timeout", 1, 86400, &v, why, sizeof(why)),
			 -ERANGE);
	assert_int_equal(number_parse_u64("99999999999999999999999", "--timeout", 1, 86400, &v, why,
					  sizeof(why)), -ERANGE);
	const char *bad[] = { "abc", "", " 5", "5 ", "5s", "-1", "+1", "0x10", "1.5" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(number_parse_u64(bad[i], "--timeout", 1, 86400, &v, why, sizeof(why)),
				 -EINVAL);
		char want[64];
		snprintf(want, sizeof(want), "not '%s'", bad[i]);
		assert_non_null(strstr(why, "--timeout takes a whole number from 1 to 86400"));
		assert_non_null(strstr(why, want));
	}
	assert_int_equal(number_parse_u64(NULL, "--x", 0, 1, &v, NULL, 0), -EINVAL);
	assert_int_equal(v, 30);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forms),	     cmocka_unit_test(test_fractions),
		cmocka_unit_test(test_refusals),     cmocka_unit_test(test_limit),
		cmocka_unit_test(test_long_text_is_cut), cmocka_unit_test(test_range),
		cmocka_unit_test(test_numbers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
