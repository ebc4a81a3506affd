/* The S3 client's pure half (common/s3_int.h, common/s3_parse.c): listing
 * pages and error documents as S3 and radosgw write them, malformed and
 * hostile XML, times, endpoints, bucket names, URLs in both styles with
 * their key encoding, and s3_url_parse; no network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/s3.h"
#include "common/s3_int.h"

#define NS "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\""

static int parse_page(const char *xml, struct s3_list_page *page)
{
	char why[256] = "";
	int rc = s3_parse_list_page(xml, strlen(xml), page, why, sizeof(why));
	if (rc)
		assert_true(why[0] != '\0');
	return rc;
}

static void test_list_page(void **state)
{
	(void)state;
	const char *xml =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<ListBucketResult " NS "><Name>b</Name><Prefix>p/</Prefix><KeyCount>2</KeyCount>"
		"<MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>"
		"<Contents><Key>p/a</Key><LastModified>2024-05-01T12:00:00.000Z</LastModified>"
		"<ETag>&quot;x&quot;</ETag><Size>0</Size><StorageClass>STANDARD</StorageClass></Contents>"
		"<Contents><Size>18446744073709551615</Size><Key>p/b&amp;c</Key>"
		"<LastModified>1970-01-01T00:00:01Z</LastModified></Contents>"
		"<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>"
		"</ListBucketResult>";
	struct s3_list_page page;
	assert_int_equal(parse_page(xml, &page), 0);
	assert_int_equal(page.count, 2);
	assert_string_equal(page.objects[0].key, "p/a");
	assert_int_equal(page.objects[0].size, 0);
	assert_int_equal(page.objects[0].mtime_s, 1714564800);
	assert_string_equal(page.objects[1].key, "p/b&c");
	assert_true(page.objects[1].size == UINT64_MAX);
	assert_int_equal(page.objects[1].mtime_s, 1);
	assert_true(page.truncated);
	assert_string_equal(page.next_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
	s3_list_page_free(&page);
}

/* radosgw's answer to encoding-type=url: keys percent-encoded, '+' a space. */
static void test_list_page_url_encoded(void **state)
{
	(void)state;
	const char *xml = "<ListBucketResult " NS "><EncodingType>url</EncodingType>"
			  "<IsTruncated>false</IsTruncated>"
			  "<Contents><Key>odd/a+b%2Bc%25%C3%A9%0A</Key><Size>7</Size>"
			  "<LastModified>2024-05-01T12:00:00+02:00</LastModified></Contents>"
			  "</ListBucketResult>";
	struct s3_list_page page;
	assert_int_equal(parse_page(xml, &page), 0);
	assert_int_equal(page.count, 1);
	assert_string_equal(page.objects[0].key, "odd/a b+c%\xc3\xa9\n");
	assert_int_equal(page.objects[0].mtime_s, 1714564800 - 7200);
	assert_false(page.truncated);
	assert_null(page.next_token);
	s3_list_page_free(&page);
}

static void test_list_page_empty(void **state)
{
	(void)state;
	struct s3_list_page page;
	assert_int_equal(parse_page("<ListBucketResult " NS "><Name>b</Name><KeyCount>0</KeyCount>"
				    "<IsTruncated>false</IsTruncated></ListBucketResult>",
				    &page),
			 0);
	assert_int_equal(page.count, 0);
	assert_false(page.truncated);
	s3_list_page_free(&page);
	assert_int_equal(parse_page("<ListBucketResult/>", &page), 0);
	assert_int_equal(page.count, 0);
	s3_list_page_free(&page);
}

/* Many keys: the page's array grows past its first allocation. */
static void test_list_page_many(void **state)
{
	(void)state;
	static char xml[200000];
	size_t off = (size_t)snprintf(xml, sizeof(xml), "<ListBucketResult>");
	for (int i = 0; i < 1000; i++)
		off += (size_t)snprintf(xml + off, sizeof(xml) - off,
					"<Contents><Key>k%04d</Key><Size>%d</Size>"
					"<LastModified>2024-05-01T12:00:00Z</LastModified></Contents>",
					i, i);
	snprintf(xml + off, sizeof(xml) - off, "</ListBucketResult>");
	struct s3_list_page page;
	assert_int_equal(parse_page(xml, &page), 0);
	assert_int_equal(page.count, 1000);
	assert_string_equal(page.objects[999].key, "k0999");
	assert_int_equal(page.objects[999].size, 999);
	s3_list_page_free(&page);
}

static void test_list_page_malformed(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"",
		"not xml",
		"<ListBucketResult><Contents>",			/* not well-formed */
		"<Error><Code>x</Code></Error>",		/* another root */
		"<ListBucketResult><Contents><Size>1</Size>"	/* no Key */
		"<LastModified>2024-05-01T12:00:00Z</LastModified></Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>k</Key><Size>-1</Size>"
		"<LastModified>2024-05-01T12:00:00Z</LastModified></Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>k</Key><Size>18446744073709551616</Size>"
		"<LastModified>2024-05-01T12:00:00Z</LastModified></Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>k</Key><Size>1</Size>"
		"<LastModified>yesterday</LastModified></Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>k</Key><Size>1</Size></Contents></ListBucketResult>",
		"<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>", /* no token */
		"<ListBucketResult><IsTruncated>maybe</IsTruncated></ListBucketResult>",
		"<ListBucketResult><EncodingType>url</EncodingType><Contents><Key>a%zz</Key>"
		"<Size>1</Size><LastModified>2024-05-01T12:00:00Z</LastModified></Contents>"
		"</ListBucketResult>",
		"<ListBucketResult><EncodingType>url</EncodingType><Contents><Key>a%00</Key>"
		"<Size>1</Size><LastModified>2024-05-01T12:00:00Z</LastModified></Contents>"
		"</ListBucketResult>",
		/* a DTD: refused before any entity could be expanded */
		"<!DOCTYPE l [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;\">]>"
		"<ListBucketResult><Contents><Key>&b;</Key><Size>1</Size>"
		"<LastModified>2024-05-01T12:00:00Z</LastModified></Contents></ListBucketResult>",
		"<!DOCTYPE l SYSTEM \"http://127.0.0.1:1/x.dtd\"><ListBucketResult/>",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct s3_list_page page;
		if (parse_page(bad[i], &page) != -EPROTO)
			fail_msg("accepted: %s", bad[i]);
		s3_list_page_free(&page);
	}
}

static void test_error_document(void **state)
{
	(void)state;
	char code[64], message[32];
	const char *xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SignatureDoesNotMatch"
			  "</Code><Message>The request\nsignature we calculated does not match"
			  "</Message><RequestId>tx1</RequestId></Error>";
	assert_int_equal(s3_parse_error(xml, strlen(xml), code, sizeof(code), message,
					sizeof(message)),
			 0);
	assert_string_equal(code, "SignatureDoesNotMatch");
	assert_string_equal(message, "The request signature we calcul"); /* truncated, one line */
	xml = "<Error><Code>NoSuchBucket</Code><BucketName>b</BucketName></Error>";
	assert_int_equal(s3_parse_error(xml, strlen(xml), code, sizeof(code), message,
					sizeof(message)),
			 0);
	assert_string_equal(code, "NoSuchBucket");
	assert_string_equal(message, "");
	xml = "<Error><Code>A\nB</Code><Message>x</Message></Error>";
	assert_int_equal(s3_parse_error(xml, strlen(xml), code, sizeof(code), message,
					sizeof(message)),
			 0);
	assert_string_equal(code, "A B");
	static const char *const bad[] = { "", "<html>502 Bad Gateway</html>", "<Error>",
					   "<!DOCTYPE e><Error><Code>x</Code></Error>" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(s3_parse_error(bad[i], strlen(bad[i]), code, sizeof(code), message,
						sizeof(message)),
				 -EPROTO);
		assert_string_equal(code, "");
	}
}

static void test_time(void **state)
{
	(void)state;
	int64_t t = 0;
	assert_int_equal(s3_parse_time("1970-01-01T00:00:00Z", &t), 0);
	assert_int_equal(t, 0);
	assert_int_equal(s3_parse_time("2024-02-29T23:59:59.999999Z", &t), 0);
	assert_int_equal(t, 1709251199);
	assert_int_equal(s3_parse_time("2024-05-01T12:00:00-01:30", &t), 0);
	assert_int_equal(t, 1714564800 + 5400);
	static const char *const bad[] = { "", "2024-05-01", "2024-05-01T12:00:00",
					   "2024-13-01T12:00:00Z", "2024-05-01T24:00:00Z",
					   "2024-05-01T12:00:00.Z", "2024-05-01T12:00:00Zjunk",
					   "2024-05-01 12:00:00Z", "+024-05-01T12:00:00Z" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (s3_parse_time(bad[i], &t) != -EINVAL)
			fail_msg("accepted: '%s'", bad[i]);
}

static struct s3_endpoint endpoint(const char *text)
{
	struct s3_endpoint ep;
	char why[256];
	if (s3_endpoint_parse(text, &ep, why, sizeof(why)))
		fail_msg("'%s' refused: %s", text, why);
	return ep;
}

static void test_endpoint(void **state)
{
	(void)state;
	struct s3_endpoint ep = endpoint("http://127.0.0.1:7480");
	assert_false(ep.https);
	assert_true(ep.ip_literal);
	assert_string_equal(ep.host, "127.0.0.1");
	assert_string_equal(ep.port, "7480");
	ep = endpoint("https://s3.eu-west-1.amazonaws.com/");
	assert_true(ep.https);
	assert_false(ep.ip_literal);
	assert_string_equal(ep.port, "");
	ep = endpoint("http://[::1]:9000");
	assert_true(ep.ip_literal);
	assert_string_equal(ep.host, "[::1]");
	static const char *const bad[] = { "",
					   "127.0.0.1:7480",
					   "ftp://host",
					   "http://",
					   "http://host:0",
					   "http://host:65536",
					   "http://host:",
					   "http://host/path",
					   "http://user@host",
					   "http://ho st",
					   "http://[::1",
					   "http://.host" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char why[256] = "";
		if (s3_endpoint_parse(bad[i], &ep, why, sizeof(why)) != -EINVAL || !strstr(why, "endpoint"))
			fail_msg("accepted: '%s'", bad[i]);
	}
}

static void test_bucket_names(void **state)
{
	(void)state;
	char why[256];
	assert_int_equal(s3_bucket_check("abc", why, sizeof(why)), 0);
	assert_int_equal(s3_bucket_check("my-backups.2024", why, sizeof(why)), 0);
	static const char *const bad[] = { "ab", "Abc", "-abc", "abc-", "a..b", "a_b", "a b", "",
					   "a234567890123456789012345678901234567890123456789012345678901234" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(s3_bucket_check(bad[i], why, sizeof(why)), -EINVAL);
}

static void test_urls(void **state)
{
	(void)state;
	char url[S3_URL_MAX];
	struct s3_endpoint ep = endpoint("http://127.0.0.1:7480");
	assert_int_equal(s3_url_build(&ep, "bkt", false, "dir/a b+c%é", "", url, sizeof(url)), 0);
	assert_string_equal(url, "http://127.0.0.1:7480/bkt/dir/a%20b%2Bc%25%C3%A9");
	assert_int_equal(s3_url_build(&ep, "bkt", false, NULL, "list-type=2", url, sizeof(url)), 0);
	assert_string_equal(url, "http://127.0.0.1:7480/bkt?list-type=2");
	ep = endpoint("https://s3.example.com");
	assert_int_equal(s3_url_build(&ep, "bkt", true, "a/~-._/x?y#z", "", url, sizeof(url)), 0);
	assert_string_equal(url, "https://bkt.s3.example.com/a/~-._/x%3Fy%23z");
	assert_int_equal(s3_url_build(&ep, "bkt", true, NULL, "p=1", url, sizeof(url)), 0);
	assert_string_equal(url, "https://bkt.s3.example.com/?p=1");
	assert_int_equal(s3_url_build(&ep, "bkt", false, "k", "", url, 20), -ENAMETOOLONG);
	char enc[16];
	assert_int_equal(s3_uri_encode("a/b c", false, enc, sizeof(enc)), 0);
	assert_string_equal(enc, "a%2Fb%20c");
	assert_int_equal(s3_uri_encode("aaaaa", false, enc, 5), -ENAMETOOLONG);
	assert_int_equal(s3_uri_encode("aaaa\xff", false, enc, 7), -ENAMETOOLONG);
}

static void test_url_parse(void **state)
{
	(void)state;
	char bucket[S3_BUCKET_MAX], prefix[64], why[256];
	assert_int_equal(s3_url_parse("s3://bkt/backups/vol1/", bucket, prefix, sizeof(prefix), why,
				      sizeof(why)),
			 0);
	assert_string_equal(bucket, "bkt");
	assert_string_equal(prefix, "backups/vol1");
	assert_int_equal(s3_url_parse("s3://bkt", bucket, prefix, sizeof(prefix), why, sizeof(why)), 0);
	assert_string_equal(prefix, "");
	assert_int_equal(s3_url_parse("s3://bkt/", bucket, prefix, sizeof(prefix), why, sizeof(why)), 0);
	assert_string_equal(prefix, "");
	static const char *const bad[] = { "", "bkt/x", "http://bkt/x", "s3://", "s3:///x",
					   "s3://BKT/x", "s3://b/x",
					   "s3://bkt/0123456789012345678901234567890123456789012345678901234567890123456789" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		strcpy(bucket, "untouched");
		if (s3_url_parse(bad[i], bucket, prefix, sizeof(prefix), why, sizeof(why)) != -EINVAL ||
		    !why[0])
			fail_msg("accepted: '%s'", bad[i]);
		assert_string_equal(bucket, "untouched");
	}
}

static void test_open_checks(void **state)
{
	(void)state;
	struct s3_config cfg = { .endpoint = "http://127.0.0.1:7480", .access_key = "a",
				 .secret_key = "s", .bucket = "bkt" };
	struct s3 *s = NULL;
	char why[256];
	assert_int_equal(s3_open(&cfg, &s, why, sizeof(why)), 0);
	struct s3_stats st;
	s3_stats(s, &st);
	assert_int_equal(st.requests, 0);
	s3_close(s);
	cfg.virtual_host = true;
	assert_int_equal(s3_open(&cfg, &s, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "virtual-host"));
	assert_null(s);
	cfg.virtual_host = false;
	cfg.secret_key[0] = '\0';
	assert_int_equal(s3_open(&cfg, &s, why, sizeof(why)), -EINVAL);
	strcpy(cfg.secret_key, "s");
	strcpy(cfg.region, "us east");
	assert_int_equal(s3_open(&cfg, &s, why, sizeof(why)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list_page),	 cmocka_unit_test(test_list_page_url_encoded),
		cmocka_unit_test(test_list_page_empty), cmocka_unit_test(test_list_page_many),
		cmocka_unit_test(test_list_page_malformed), cmocka_unit_test(test_error_document),
		cmocka_unit_test(test_time),		 cmocka_unit_test(test_endpoint),
		cmocka_unit_test(test_bucket_names),	 cmocka_unit_test(test_urls),
		cmocka_unit_test(test_url_parse),	 cmocka_unit_test(test_open_checks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
