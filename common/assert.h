/* Always-on assertions for broken invariants (programmer errors).
 * Operating errors (disk, network, peer, user input) are returned as
 * negative errno values instead; see docs/HACKING.md. */
#ifndef BASALT_COMMON_ASSERT_H
#define BASALT_COMMON_ASSERT_H

#include <stdnoreturn.h>

noreturn void basalt_assert_fail(const char *expr, const char *file, int line,
				 const char *func);

#define BASALT_ASSERT(expr)                                                    \
	((expr) ? (void)0                                                      \
		: basalt_assert_fail(#expr, __FILE__, __LINE__, __func__))

#define BASALT_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define BASALT_CONTAINER_OF(ptr, type, member)                                 \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#endif
