/* Decimal whole numbers with a stated range (see number.h). */
#include "number.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

#include "why.h"

/* Longer input is cut in messages: an error line stays one line. */
#define NUMBER_ECHO_MAX 40

int number_parse_u64(const char *text, const char *what, uint64_t min, uint64_t max,
		     uint64_t *out, char *why, size_t why_len)
{
	if (!text)
		text = "";
	const char *cut = strlen(text) > NUMBER_ECHO_MAX ? "..." : "";
	uint64_t v = 0;
	bool too_large = false;
	const char *p = text;
	for (; isdigit((unsigned char)*p); p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			too_large = true;
		else
			v = v * 10 + d;
	}
	if (p == text || *p)
		return why_set(why, why_len, -EINVAL,
			       "%s takes a whole number from %" PRIu64 " to %" PRIu64 ", not '%.*s%s'",
			       what, min, max, NUMBER_ECHO_MAX, text, cut);
	if (too_large || v < min || v > max)
		return why_set(why, why_len, -ERANGE,
			       "%s must be from %" PRIu64 " to %" PRIu64 ", not %.*s%s", what, min, max,
			       NUMBER_ECHO_MAX, text, cut);
	*out = v;
	return 0;
}

int number_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void number_hex_encode(const uint8_t *bytes, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[bytes[i] >> 4];
		out[2 * i + 1] = digits[bytes[i] & 15];
	}
	out[2 * n] = 0;
}

int number_hex_decode(const char *text, uint8_t *bytes, size_t n)
{
	if (strlen(text) != 2 * n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		int hi = number_hex_digit(text[2 * i]), lo = number_hex_digit(text[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		bytes[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}
