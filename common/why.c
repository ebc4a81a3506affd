/* See why.h. */
#include "why.h"

#include <stdarg.h>
#include <stdio.h>

int why_set(char *why, size_t len, int rc, const char *fmt, ...)
{
	if (why && len) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, len, fmt, ap);
		va_end(ap);
	}
	return rc;
}
