/* The size grammar (see size.h): exact integer arithmetic in 128 bits, so
 * a fraction is checked for whole bytes and overflow is never wrapped. */
#include "size.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "why.h"

__extension__ typedef unsigned __int128 size_u128;

/* Longer input is cut in messages: an error line stays one line. */
#define SIZE_ECHO_MAX 40
#define SIZE_FRACTION_DIGITS_MAX 18
#define SIZE_INTEGER_DIGITS_MAX 20

struct size_unit {
	const char *suffix;
	unsigned shift;
};

static const struct size_unit size_units[] = {
	{ "", 0 },	  { "B", 0 },	 { "K", 10 },	{ "KB", 10 },  { "KiB", 10 },
	{ "M", 20 },  { "MB", 20 },	 { "MiB", 20 }, { "G", 30 },   { "GB", 30 },
	{ "GiB", 30 }, { "T", 40 },	 { "TB", 40 },	{ "TiB", 40 }, { "P", 50 },
	{ "PB", 50 }, { "PiB", 50 }, { "E", 60 },	{ "EB", 60 },  { "EiB", 60 },
};

static int size_fail(char *why, size_t why_len, int rc, const char *text, const char *cause)
{
	return why_set(why, why_len, rc, "'%.*s%s' is not a size: %s; " SIZE_GRAMMAR,
		       SIZE_ECHO_MAX, text, strlen(text) > SIZE_ECHO_MAX ? "..." : "", cause);
}

static const struct size_unit *size_unit_find(const char *suffix)
{
	for (size_t i = 0; i < sizeof(size_units) / sizeof(size_units[0]); i++)
		if (strcasecmp(suffix, size_units[i].suffix) == 0)
			return &size_units[i];
	return NULL;
}

/* Reads DIGITS from *P (at most MAX of them, else *TOO_MANY) into *V. */
static unsigned size_digits(const char **p, unsigned max, size_u128 *v, bool *too_many)
{
	unsigned n = 0;
	for (; isdigit((unsigned char)**p); (*p)++, n++) {
		if (n == max)
			*too_many = true;
		if (!*too_many)
			*v = *v * 10 + (unsigned)(**p - '0');
	}
	return n;
}

static const char *size_bad_start(const char *text)
{
	if (!*text)
		return "it is empty";
	if (isspace((unsigned char)*text))
		return "it has spaces";
	if (*text == '-' || *text == '+')
		return "a size has no sign";
	return "it does not start with a digit";
}

int size_parse(const char *text, uint64_t *out, char *why, size_t why_len)
{
	if (!text)
		text = "";
	if (!isdigit((unsigned char)*text))
		return size_fail(why, why_len, -EINVAL, text, size_bad_start(text));
	const char *p = text;
	size_u128 whole = 0, fraction = 0, scale_down = 1;
	bool too_many = false, too_precise = false;
	while (p[0] == '0' && isdigit((unsigned char)p[1]))
		p++; /* leading zeros do not count toward the digit limit */
	size_digits(&p, SIZE_INTEGER_DIGITS_MAX, &whole, &too_many);
	if (*p == '.') {
		p++;
		unsigned n = size_digits(&p, SIZE_FRACTION_DIGITS_MAX, &fraction, &too_precise);
		if (!n)
			return size_fail(why, why_len, -EINVAL, text, "a digit must follow the point");
		for (unsigned i = 0; i < n && i < SIZE_FRACTION_DIGITS_MAX; i++)
			scale_down *= 10;
	}
	if (strchr(p, ' ') || strchr(p, '\t'))
		return size_fail(why, why_len, -EINVAL, text, "it has spaces");
	const struct size_unit *u = size_unit_find(p);
	if (!u)
		return size_fail(why, why_len, -EINVAL, text, "unknown suffix");
	if (too_many)
		return size_fail(why, why_len, -ERANGE, text, "it is too large");
	if (too_precise)
		return size_fail(why, why_len, -EINVAL, text, "too many digits after the point");
	size_u128 bytes = whole << u->shift, part = fraction << u->shift;
	if (part % scale_down)
		return size_fail(why, why_len, -EINVAL, text,
				 "the fraction does not make a whole number of bytes");
	bytes += part / scale_down;
	if (bytes > SIZE_MAX_BYTES)
		return size_fail(why, why_len, -ERANGE, text, "it is too large");
	*out = (uint64_t)bytes;
	return 0;
}

int size_parse_range(const char *text, const char *what, uint64_t min, uint64_t max,
		     uint64_t *out, char *why, size_t why_len)
{
	uint64_t v;
	char cause[512];
	int rc = size_parse(text, &v, cause, sizeof(cause));
	if (rc)
		return why_set(why, why_len, rc, "%s: %s", what, cause);
	char lo[32], hi[32];
	if (v < min && min == 1)
		return why_set(why, why_len, -ERANGE, "%s must be greater than 0", what);
	if (v > max && min <= 1)
		return why_set(why, why_len, -ERANGE, "%s must be at most %s, not %.*s", what,
			       cfg_format_size(max, hi, sizeof(hi)), SIZE_ECHO_MAX, text);
	if (v < min || v > max)
		return why_set(why, why_len, -ERANGE, "%s must be between %s and %s, not %.*s", what,
			       cfg_format_size(min, lo, sizeof(lo)),
			       cfg_format_size(max, hi, sizeof(hi)), SIZE_ECHO_MAX, text);
	*out = v;
	return 0;
}
