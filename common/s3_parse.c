/* The S3 client's pure half (common/s3_int.h): S3's XML answers read
 * through libxml2 with network access, DTDs and entity expansion off,
 * times, endpoint and bucket checks, and URLs with SigV4's encoding.
 * common/s3.c does the talking. */
#include "common/s3_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "common/number.h"
#include "common/why.h"

/* Parses LEN bytes of XML: NULL when it is not well-formed, too large or
 * carries a DTD (S3 never sends one; refusing it shuts out entity tricks
 * such as the "billion laughs"). Caller frees with xmlFreeDoc. */
static xmlDocPtr s3_xml_read(const char *xml, size_t len)
{
	if (len == 0 || len > S3_XML_MAX)
		return NULL;
	int options = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
		      XML_PARSE_NOCDATA;
	xmlDocPtr doc = xmlReadMemory(xml, (int)len, "s3.xml", NULL, options);
	if (doc && (doc->intSubset || doc->extSubset)) {
		xmlFreeDoc(doc);
		return NULL;
	}
	return doc;
}

static bool s3_xml_is(const xmlNode *node, const char *name)
{
	return node->type == XML_ELEMENT_NODE && strcmp((const char *)node->name, name) == 0;
}

/* The text directly inside NODE (its text children only, so nothing an
 * entity reference stands for): a new string the caller frees, or NULL
 * when out of memory. */
static char *s3_xml_text(const xmlNode *node)
{
	size_t len = 0;
	for (const xmlNode *c = node->children; c; c = c->next)
		if (c->type == XML_TEXT_NODE && c->content)
			len += strlen((const char *)c->content);
	char *text = malloc(len + 1);
	if (!text)
		return NULL;
	text[0] = '\0';
	size_t off = 0;
	for (const xmlNode *c = node->children; c; c = c->next) {
		if (c->type != XML_TEXT_NODE || !c->content)
			continue;
		size_t n = strlen((const char *)c->content);
		memcpy(text + off, c->content, n);
		off += n;
	}
	text[off] = '\0';
	return text;
}

/* The text of NODE's first child element NAME into OUT (truncated, ""
 * when absent, control characters as spaces). */
static void s3_xml_child_text(const xmlNode *node, const char *name, char *out, size_t out_len)
{
	out[0] = '\0';
	for (const xmlNode *c = node->children; c; c = c->next) {
		if (!s3_xml_is(c, name))
			continue;
		char *text = s3_xml_text(c);
		if (!text)
			return;
		snprintf(out, out_len, "%s", text);
		free(text);
		for (char *p = out; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = ' ';
		return;
	}
}

int s3_parse_error(const char *xml, size_t len, char *code, size_t code_len, char *message,
		   size_t message_len)
{
	code[0] = message[0] = '\0';
	xmlDocPtr doc = s3_xml_read(xml, len);
	if (!doc)
		return -EPROTO;
	const xmlNode *root = xmlDocGetRootElement(doc);
	int rc = -EPROTO;
	if (root && s3_xml_is(root, "Error")) {
		s3_xml_child_text(root, "Code", code, code_len);
		s3_xml_child_text(root, "Message", message, message_len);
		rc = 0;
	}
	xmlFreeDoc(doc);
	return rc;
}

/* Reads exactly N digits at *P into *OUT and moves *P past them. */
static bool s3_digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return true;
}

static bool s3_expect(const char **p, char c)
{
	if (**p != c)
		return false;
	(*p)++;
	return true;
}

/* The "Z" or "+hh:mm" / "-hh:mm" at the end of a time, as seconds east. */
static int s3_parse_zone(const char *p, int64_t *offset_s)
{
	if (p[0] == 'Z' && p[1] == '\0') {
		*offset_s = 0;
		return 0;
	}
	int sign = p[0] == '+' ? 1 : p[0] == '-' ? -1 : 0;
	int hh, mm;
	p++;
	if (!sign || !s3_digits(&p, 2, &hh) || !s3_expect(&p, ':') || !s3_digits(&p, 2, &mm) ||
	    *p || hh > 23 || mm > 59)
		return -EINVAL;
	*offset_s = sign * (int64_t)(hh * 3600 + mm * 60);
	return 0;
}

int s3_parse_time(const char *text, int64_t *out)
{
	struct tm tm = { 0 };
	const char *p = text;
	int year, mon, day, hh, mm, ss;
	if (!s3_digits(&p, 4, &year) || !s3_expect(&p, '-') || !s3_digits(&p, 2, &mon) ||
	    !s3_expect(&p, '-') || !s3_digits(&p, 2, &day) || !s3_expect(&p, 'T') ||
	    !s3_digits(&p, 2, &hh) || !s3_expect(&p, ':') || !s3_digits(&p, 2, &mm) ||
	    !s3_expect(&p, ':') || !s3_digits(&p, 2, &ss))
		return -EINVAL;
	if (mon < 1 || mon > 12 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60)
		return -EINVAL;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		while (isdigit((unsigned char)*p))
			p++;
	}
	int64_t offset_s;
	if (s3_parse_zone(p, &offset_s))
		return -EINVAL;
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	*out = (int64_t)timegm(&tm) - offset_s;
	return 0;
}

/* Undoes encoding-type=url in place ('+' is a space, as botocore reads
 * it): 0 or -EPROTO on a bad escape or an escaped NUL. */
static int s3_url_decode(char *text)
{
	char *out = text;
	for (const char *p = text; *p; p++) {
		if (*p == '+') {
			*out++ = ' ';
		} else if (*p == '%') {
			int hi = number_hex_digit(p[1]);
			int lo = hi < 0 ? -1 : number_hex_digit(p[2]);
			if (lo < 0 || (hi | lo) == 0)
				return -EPROTO;
			*out++ = (char)(hi << 4 | lo);
			p += 2;
		} else {
			*out++ = *p;
		}
	}
	*out = '\0';
	return 0;
}

static int s3_parse_size(const char *text, uint64_t *out)
{
	if (!isdigit((unsigned char)text[0]))
		return -EINVAL;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(text, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

/* One <Contents> element into OBJ. */
static int s3_parse_contents(const xmlNode *node, bool url_encoded, struct s3_object *obj,
			     char *why, size_t why_len)
{
	bool have_size = false, have_time = false;
	for (const xmlNode *c = node->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		bool is_key = s3_xml_is(c, "Key"), is_size = s3_xml_is(c, "Size");
		bool is_time = s3_xml_is(c, "LastModified");
		if (!is_key && !is_size && !is_time)
			continue;
		char *text = s3_xml_text(c);
		if (!text)
			return why_set(why, why_len, -ENOMEM, "out of memory reading a listing");
		int rc = 0;
		if (is_key) {
			free(obj->key);
			obj->key = text;
			text = NULL;
			if (url_encoded && s3_url_decode(obj->key))
				rc = why_set(why, why_len, -EPROTO, "listing: a badly encoded Key");
		} else if (is_size) {
			have_size = true;
			if (s3_parse_size(text, &obj->size))
				rc = why_set(why, why_len, -EPROTO, "listing: Size '%.40s'", text);
		} else {
			have_time = true;
			if (s3_parse_time(text, &obj->mtime_s))
				rc = why_set(why, why_len, -EPROTO, "listing: LastModified '%.40s'", text);
		}
		free(text);
		if (rc)
			return rc;
	}
	if (!obj->key || !obj->key[0] || !have_size || !have_time)
		return why_set(why, why_len, -EPROTO, "listing: a Contents without Key, Size or LastModified");
	return 0;
}

/* Appends one object from <Contents> NODE to PAGE. */
static int s3_page_add(struct s3_list_page *page, const xmlNode *node, bool url_encoded,
		       char *why, size_t why_len)
{
	size_t n = page->count;
	if (n == 0 || (n >= 16 && (n & (n - 1)) == 0)) { /* full at 0, 16, 32, 64...: grow */
		size_t cap = page->count ? page->count * 2 : 16;
		struct s3_object *grown = realloc(page->objects, cap * sizeof(*grown));
		if (!grown)
			return why_set(why, why_len, -ENOMEM, "out of memory reading a listing");
		page->objects = grown;
	}
	struct s3_object *obj = &page->objects[page->count++];
	memset(obj, 0, sizeof(*obj));
	return s3_parse_contents(node, url_encoded, obj, why, why_len);
}

/* Whether ROOT has <EncodingType>url</EncodingType>. */
static bool s3_page_url_encoded(const xmlNode *root)
{
	char type[16];
	s3_xml_child_text(root, "EncodingType", type, sizeof(type));
	return strcmp(type, "url") == 0;
}

/* IsTruncated and NextContinuationToken of ROOT into PAGE. */
static int s3_page_tail(const xmlNode *root, struct s3_list_page *page, char *why, size_t why_len)
{
	char truncated[16];
	s3_xml_child_text(root, "IsTruncated", truncated, sizeof(truncated));
	page->truncated = strcmp(truncated, "true") == 0;
	if (!page->truncated && truncated[0] && strcmp(truncated, "false") != 0)
		return why_set(why, why_len, -EPROTO, "listing: IsTruncated '%s'", truncated);
	for (const xmlNode *c = root->children; c; c = c->next) {
		if (!s3_xml_is(c, "NextContinuationToken"))
			continue;
		free(page->next_token);
		page->next_token = s3_xml_text(c);
		if (!page->next_token)
			return why_set(why, why_len, -ENOMEM, "out of memory reading a listing");
	}
	if (page->truncated && (!page->next_token || !page->next_token[0]))
		return why_set(why, why_len, -EPROTO,
			       "listing: truncated page without a NextContinuationToken");
	return 0;
}

int s3_parse_list_page(const char *xml, size_t len, struct s3_list_page *page, char *why,
		       size_t why_len)
{
	memset(page, 0, sizeof(*page));
	xmlDocPtr doc = s3_xml_read(xml, len);
	if (!doc)
		return why_set(why, why_len, -EPROTO, "listing: not an XML document (%zu bytes)", len);
	const xmlNode *root = xmlDocGetRootElement(doc);
	int rc = 0;
	if (!root || !s3_xml_is(root, "ListBucketResult"))
		rc = why_set(why, why_len, -EPROTO, "listing: the answer is not a ListBucketResult");
	bool url_encoded = rc == 0 && s3_page_url_encoded(root);
	for (const xmlNode *c = rc ? NULL : root->children; c && rc == 0; c = c->next)
		if (s3_xml_is(c, "Contents"))
			rc = s3_page_add(page, c, url_encoded, why, why_len);
	if (rc == 0)
		rc = s3_page_tail(root, page, why, why_len);
	xmlFreeDoc(doc);
	return rc;
}

void s3_list_page_free(struct s3_list_page *page)
{
	for (size_t i = 0; i < page->count; i++)
		free(page->objects[i].key);
	free(page->objects);
	free(page->next_token);
	memset(page, 0, sizeof(*page));
}

static bool s3_host_char(char c)
{
	return isalnum((unsigned char)c) || c == '.' || c == '-';
}

/* HOST[:PORT] from P (up to an optional single '/') into OUT. */
static int s3_endpoint_authority(const char *p, struct s3_endpoint *out)
{
	size_t n;
	if (p[0] == '[') {
		n = strspn(p + 1, "0123456789abcdefABCDEF:.");
		if (p[1 + n] != ']' || n == 0)
			return -EINVAL;
		n += 2;
		out->ip_literal = true;
	} else {
		for (n = 0; s3_host_char(p[n]); n++)
			;
		if (n == 0 || p[0] == '.' || p[0] == '-' || p[n - 1] == '.')
			return -EINVAL;
		out->ip_literal = strspn(p, "0123456789.") == n;
	}
	if (n >= sizeof(out->host))
		return -EINVAL;
	memcpy(out->host, p, n);
	out->host[n] = '\0';
	p += n;
	if (*p == ':') {
		size_t digits = strspn(p + 1, "0123456789");
		long port = digits && digits <= 5 ? strtol(p + 1, NULL, 10) : 0;
		if (port < 1 || port > 65535)
			return -EINVAL;
		snprintf(out->port, sizeof(out->port), "%ld", port);
		p += 1 + digits;
	}
	return strcmp(p, "") == 0 || strcmp(p, "/") == 0 ? 0 : -EINVAL;
}

int s3_endpoint_parse(const char *endpoint, struct s3_endpoint *out, char *why, size_t why_len)
{
	memset(out, 0, sizeof(*out));
	const char *rest;
	if (strncmp(endpoint, "http://", 7) == 0) {
		rest = endpoint + 7;
	} else if (strncmp(endpoint, "https://", 8) == 0) {
		rest = endpoint + 8;
		out->https = true;
	} else {
		return why_set(why, why_len, -EINVAL,
			       "S3 endpoint '%.300s': expected http://HOST[:PORT] or https://HOST[:PORT]",
			       endpoint);
	}
	if (s3_endpoint_authority(rest, out))
		return why_set(why, why_len, -EINVAL,
			       "S3 endpoint '%.300s': expected a host name or address, an optional "
			       ":PORT (1-65535) and no path",
			       endpoint);
	return 0;
}

int s3_bucket_check(const char *bucket, char *why, size_t why_len)
{
	size_t n = strlen(bucket);
	bool ok = n >= 3 && n <= 63 && isalnum((unsigned char)bucket[0]) &&
		  isalnum((unsigned char)bucket[n - 1]) && !strstr(bucket, "..");
	for (size_t i = 0; ok && i < n; i++)
		ok = islower((unsigned char)bucket[i]) || isdigit((unsigned char)bucket[i]) ||
		     bucket[i] == '.' || bucket[i] == '-';
	if (!ok)
		return why_set(why, why_len, -EINVAL,
			       "bucket name '%.100s': 3 to 63 of a-z, 0-9, '.' and '-', starting and "
			       "ending with a letter or digit",
			       bucket);
	return 0;
}

int s3_uri_encode(const char *in, bool keep_slash, char *out, size_t out_len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t off = 0;
	for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
		bool plain = isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~' ||
			     (keep_slash && *p == '/');
		if (off + (plain ? 1 : 3) >= out_len)
			return -ENAMETOOLONG;
		if (plain) {
			out[off++] = (char)*p;
		} else {
			out[off++] = '%';
			out[off++] = hex[*p >> 4];
			out[off++] = hex[*p & 15];
		}
	}
	if (off >= out_len)
		return -ENAMETOOLONG;
	out[off] = '\0';
	return 0;
}

int s3_url_build(const struct s3_endpoint *ep, const char *bucket, bool virtual_host,
		 const char *key, const char *query, char *url, size_t url_len)
{
	const char *scheme = ep->https ? "https" : "http";
	const char *colon = ep->port[0] ? ":" : "";
	int n;
	if (virtual_host)
		n = snprintf(url, url_len, "%s://%s.%s%s%s/", scheme, bucket, ep->host, colon,
			     ep->port);
	else
		n = snprintf(url, url_len, "%s://%s%s%s/%s%s", scheme, ep->host, colon, ep->port,
			     bucket, key ? "/" : "");
	if (n < 0 || (size_t)n >= url_len)
		return -ENAMETOOLONG;
	size_t off = (size_t)n;
	if (key) {
		int rc = s3_uri_encode(key, true, url + off, url_len - off);
		if (rc)
			return rc;
		off += strlen(url + off);
	}
	if (query && query[0]) {
		n = snprintf(url + off, url_len - off, "?%s", query);
		if (n < 0 || (size_t)n >= url_len - off)
			return -ENAMETOOLONG;
	}
	return 0;
}
