/* One grammar for every size an operator types (volume sizes, quotas,
 * block sizes, config sizes, bench options), so the same text means the
 * same bytes in every program and every refusal says the same thing.
 *
 * Grammar: DIGITS [ "." DIGITS ] [ SUFFIX ], nothing else — no spaces, no
 * sign. SUFFIX (any case) is B for bytes or K, M, G, T, P, E for powers of
 * 1024, optionally followed by "iB" or "B" (KiB and KB are both 1024). A
 * fraction is taken only when it makes a whole number of bytes (1.5G,
 * 0.5K, not 1.5 or 0.1K). The largest size is SIZE_MAX_BYTES, 8 EiB - 1:
 * files and block devices address bytes with a signed 64-bit offset. */
#ifndef BASALT_COMMON_SIZE_H
#define BASALT_COMMON_SIZE_H

#include <stddef.h>
#include <stdint.h>

#define SIZE_MAX_BYTES ((uint64_t)INT64_MAX)

/* The accepted forms and the limit, for messages and help. */
#define SIZE_GRAMMAR                                                              \
	"a size is digits with an optional suffix K, M, G, T, P or E (powers of " \
	"1024; KiB, MiB... also; B for bytes), e.g. 4096, 128K, 10G, 1.5T, with " \
	"no spaces, a fraction only where it makes whole bytes, at most 8 EiB - 1"

/* Parses TEXT into *OUT (bytes). 0, or -EINVAL (not in the grammar) or
 * -ERANGE (above SIZE_MAX_BYTES) with WHY naming the text, the cause and
 * the grammar. WHY may be NULL. */
int size_parse(const char *text, uint64_t *out /* out */, char *why, size_t why_len);

/* size_parse, then MIN <= size <= MAX (-ERANGE otherwise); WHAT names the
 * option in every message ("--size", "max_bytes"). */
int size_parse_range(const char *text, const char *what, uint64_t min, uint64_t max,
		     uint64_t *out /* out */, char *why, size_t why_len);

#endif
