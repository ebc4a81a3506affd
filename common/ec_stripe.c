/* The striping of erasure-coded objects in 4 KiB units (see ec_stripe.h):
 * pure arithmetic and copies, shared by the OSD's EC path and its tests. */
#include "ec_stripe.h"

#include <string.h>

#include "common/assert.h"

struct ec_window ec_stripe_window(unsigned k, uint32_t offset, uint32_t len)
{
	BASALT_ASSERT(k && len && offset % EC_STRIPE_UNIT == 0 && len % EC_STRIPE_UNIT == 0);
	uint32_t first = offset / EC_STRIPE_UNIT, last = (offset + len) / EC_STRIPE_UNIT - 1;
	return (struct ec_window){ first / k, last / k - first / k + 1 };
}

bool ec_stripe_extent(unsigned k, uint32_t offset, uint32_t len, unsigned chunk,
		      struct ec_extent *out)
{
	BASALT_ASSERT(chunk < k && len && offset % EC_STRIPE_UNIT == 0 &&
		      len % EC_STRIPE_UNIT == 0);
	uint32_t u0 = offset / EC_STRIPE_UNIT, u1 = u0 + len / EC_STRIPE_UNIT;
	uint32_t first = u0 + (chunk + k - u0 % k) % k;
	*out = (struct ec_extent){ 0, 0 };
	if (first >= u1)
		return false;
	uint32_t last = (u1 - 1) - ((u1 - 1) % k + k - chunk) % k; /* >= first */
	*out = (struct ec_extent){ first / k * EC_STRIPE_UNIT,
				   (last / k - first / k + 1) * EC_STRIPE_UNIT };
	return true;
}

unsigned ec_stripe_uncovered(unsigned k, uint32_t offset, uint32_t len, unsigned chunk,
			     struct ec_extent out[2])
{
	struct ec_window w = ec_stripe_window(k, offset, len);
	uint32_t start = w.row0 * EC_STRIPE_UNIT, end = start + w.rows * EC_STRIPE_UNIT;
	struct ec_extent covered;
	if (!ec_stripe_extent(k, offset, len, chunk, &covered)) {
		out[0] = (struct ec_extent){ start, end - start };
		return 1;
	}
	unsigned n = 0;
	if (covered.offset > start)
		out[n++] = (struct ec_extent){ start, covered.offset - start };
	if (covered.offset + covered.len < end)
		out[n++] = (struct ec_extent){ covered.offset + covered.len,
					       end - covered.offset - covered.len };
	return n;
}

/* Copies each unit of the range between its column and the range's
 * bytes: from SRC into the columns, or (SRC NULL) from them into DST. */
static void each_unit(unsigned k, uint32_t offset, uint32_t len, const struct ec_window *w,
		      const uint8_t *src, uint8_t *dst, uint8_t *const *cols)
{
	BASALT_ASSERT(offset % EC_STRIPE_UNIT == 0 && len % EC_STRIPE_UNIT == 0);
	uint32_t u0 = offset / EC_STRIPE_UNIT, n = len / EC_STRIPE_UNIT;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t u = u0 + i, row = u / k;
		BASALT_ASSERT(row >= w->row0 && row - w->row0 < w->rows);
		uint8_t *col = cols[u % k] + (size_t)(row - w->row0) * EC_STRIPE_UNIT;
		size_t at = (size_t)i * EC_STRIPE_UNIT;
		if (src)
			memcpy(col, src + at, EC_STRIPE_UNIT);
		else
			memcpy(dst + at, col, EC_STRIPE_UNIT);
	}
}

void ec_stripe_scatter(unsigned k, uint32_t offset, uint32_t len, const uint8_t *src,
		       const struct ec_window *w, uint8_t *const *cols)
{
	each_unit(k, offset, len, w, src, NULL, cols);
}

void ec_stripe_gather(unsigned k, uint32_t offset, uint32_t len, uint8_t *dst,
		      const struct ec_window *w, uint8_t *const *cols)
{
	each_unit(k, offset, len, w, NULL, dst, cols);
}
