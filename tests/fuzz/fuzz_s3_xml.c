/* libFuzzer target for the S3 client's decoders (common/s3_int.h): S3's
 * XML answers — a ListObjectsV2 page and an Error document — as a server
 * or anything posing as one could send them, plus the times and the
 * s3:// URLs and endpoints they lead to. Byte 0 picks the decoder; the
 * rest is its input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/s3.h"
#include "common/s3_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_list_page(const char *xml, size_t len)
{
	struct s3_list_page page;
	char why[256];
	int rc = s3_parse_list_page(xml, len, &page, why, sizeof(why));
	for (size_t i = 0; rc == 0 && i < page.count; i++)
		BASALT_ASSERT(page.objects[i].key && page.objects[i].key[0]);
	BASALT_ASSERT(rc != 0 || !page.truncated || (page.next_token && page.next_token[0]));
	s3_list_page_free(&page);
}

static void fuzz_error(const char *xml, size_t len)
{
	char code[64], message[128];
	if (s3_parse_error(xml, len, code, sizeof(code), message, sizeof(message)) == 0) {
		BASALT_ASSERT(strlen(code) < sizeof(code) && !strchr(code, '\n'));
		BASALT_ASSERT(strlen(message) < sizeof(message) && !strchr(message, '\n'));
	}
}

/* The text parsers, which take NUL-terminated strings. */
static void fuzz_text(const char *text)
{
	int64_t t;
	(void)s3_parse_time(text, &t);
	struct s3_endpoint ep;
	if (s3_endpoint_parse(text, &ep, NULL, 0) == 0) {
		char url[S3_URL_MAX];
		(void)s3_url_build(&ep, "bkt", !ep.ip_literal, text, "a=b", url, sizeof(url));
	}
	char bucket[S3_BUCKET_MAX], prefix[256];
	if (s3_url_parse(text, bucket, prefix, sizeof(prefix), NULL, 0) == 0)
		BASALT_ASSERT(s3_bucket_check(bucket, NULL, 0) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	char *text = malloc(size);
	if (!text)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	switch (data[0] % 3) {
	case 0: fuzz_list_page(text, size - 1); break;
	case 1: fuzz_error(text, size - 1); break;
	default: fuzz_text(text); break;
	}
	free(text);
	return 0;
}
