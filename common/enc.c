/* Out-of-line parts of the bounded cursors: strings. */
#include "enc.h"

int enc_put_str(struct enc *e, const char *s)
{
	size_t n = strlen(s);
	if (n > UINT16_MAX) {
		e->error = -EMSGSIZE;
		return e->error;
	}
	enc_put_le16(e, (uint16_t)n);
	return enc_put_bytes(e, s, n);
}

int dec_get_str(struct dec *d, char *dst, size_t cap)
{
	uint16_t n;
	if (dec_get_le16(d, &n))
		goto fail;
	const uint8_t *p = dec_take(d, n);
	if (!p || (size_t)n >= cap || memchr(p, '\0', n)) {
		d->error = -EBADMSG;
		goto fail;
	}
	memcpy(dst, p, n);
	dst[n] = '\0';
	return 0;
fail:
	if (cap)
		dst[0] = '\0';
	return d->error;
}
