/* Whole numbers an operator types (counts, timeouts in seconds): plain
 * decimal digits, nothing else — no sign, no spaces, no suffix — within a
 * range the caller states, so "--timeout 0" and "--timeout abc" are
 * refused with a message instead of being taken as 0. Sizes have their
 * own grammar in size.h. */
#ifndef BASALT_COMMON_NUMBER_H
#define BASALT_COMMON_NUMBER_H

#include <stddef.h>
#include <stdint.h>

/* Parses TEXT into *OUT. 0, or -EINVAL (not digits) or -ERANGE (outside
 * MIN..MAX) with WHY naming WHAT (e.g. "--timeout"), the text and the
 * range. WHY may be NULL. */
int number_parse_u64(const char *text, const char *what, uint64_t min, uint64_t max,
		     uint64_t *out /* out */, char *why, size_t why_len);

/* The value of hex digit C (either case), or -1. */
int number_hex_digit(char c);
/* N BYTES as 2N lowercase hex digits and a NUL into OUT. */
void number_hex_encode(const uint8_t *bytes, size_t n, char *out);
/* TEXT, exactly 2N hex digits, into N BYTES: 0 or -EINVAL. */
int number_hex_decode(const char *text, uint8_t *bytes, size_t n);

#endif
