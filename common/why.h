/* One-line error reasons for callers: functions that can fail for a reason
 * worth telling take (char *why, size_t why_len) and fill it in with
 * why_set(), which formats into WHY (when non-NULL) and returns RC, so a
 * failure is one line: return why_set(why, len, -EINVAL, "...", ...). */
#ifndef BASALT_COMMON_WHY_H
#define BASALT_COMMON_WHY_H

#include <stddef.h>

int why_set(char *why, size_t len, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
