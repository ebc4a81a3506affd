/* Bounded little-endian encode/decode cursors for everything that goes to
 * disk or on the wire. Every put and get is bounds-checked; past the end it
 * returns -EMSGSIZE (encode) or -EBADMSG (decode) and the cursor sticks in
 * the failed state, so a sequence of calls can be checked once at the end
 * with enc_status()/dec_status(). Received buffers are never cast to
 * structs. */
#ifndef BASALT_COMMON_ENC_H
#define BASALT_COMMON_ENC_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct enc {
	uint8_t *buf;
	size_t len;
	size_t pos;
	int error; /* 0 or -EMSGSIZE once a put did not fit */
};

struct dec {
	const uint8_t *buf;
	size_t len;
	size_t pos;
	int error; /* 0 or -EBADMSG once a get ran past the end */
};

static inline void enc_init(struct enc *e, void *buf, size_t len)
{
	e->buf = buf;
	e->len = len;
	e->pos = 0;
	e->error = 0;
}

static inline void dec_init(struct dec *d, const void *buf, size_t len)
{
	d->buf = buf;
	d->len = len;
	d->pos = 0;
	d->error = 0;
}

static inline int enc_status(const struct enc *e) { return e->error; }
static inline int dec_status(const struct dec *d) { return d->error; }
static inline size_t dec_remaining(const struct dec *d)
{
	return d->error ? 0 : d->len - d->pos;
}

/* Reserves N bytes; returns where to write them, or NULL past the end. */
static inline uint8_t *enc_reserve(struct enc *e, size_t n)
{
	if (e->error || n > e->len - e->pos) {
		e->error = -EMSGSIZE;
		return NULL;
	}
	uint8_t *p = e->buf + e->pos;
	e->pos += n;
	return p;
}

/* Consumes N bytes; returns where they are, or NULL past the end. */
static inline const uint8_t *dec_take(struct dec *d, size_t n)
{
	if (d->error || n > d->len - d->pos) {
		d->error = -EBADMSG;
		return NULL;
	}
	const uint8_t *p = d->buf + d->pos;
	d->pos += n;
	return p;
}

static inline void le_store16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}
static inline void le_store32(uint8_t *p, uint32_t v)
{
	le_store16(p, (uint16_t)v);
	le_store16(p + 2, (uint16_t)(v >> 16));
}
static inline void le_store64(uint8_t *p, uint64_t v)
{
	le_store32(p, (uint32_t)v);
	le_store32(p + 4, (uint32_t)(v >> 32));
}
static inline uint16_t le_load16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (uint16_t)p[1] << 8);
}
static inline uint32_t le_load32(const uint8_t *p)
{
	return le_load16(p) | (uint32_t)le_load16(p + 2) << 16;
}
static inline uint64_t le_load64(const uint8_t *p)
{
	return le_load32(p) | (uint64_t)le_load32(p + 4) << 32;
}

static inline int enc_put_u8(struct enc *e, uint8_t v)
{
	uint8_t *p = enc_reserve(e, 1);
	if (p)
		*p = v;
	return e->error;
}
static inline int enc_put_le16(struct enc *e, uint16_t v)
{
	uint8_t *p = enc_reserve(e, 2);
	if (p)
		le_store16(p, v);
	return e->error;
}
static inline int enc_put_le32(struct enc *e, uint32_t v)
{
	uint8_t *p = enc_reserve(e, 4);
	if (p)
		le_store32(p, v);
	return e->error;
}
static inline int enc_put_le64(struct enc *e, uint64_t v)
{
	uint8_t *p = enc_reserve(e, 8);
	if (p)
		le_store64(p, v);
	return e->error;
}
static inline int enc_put_bytes(struct enc *e, const void *src, size_t n)
{
	uint8_t *p = enc_reserve(e, n);
	if (p && n)
		memcpy(p, src, n);
	return e->error;
}
static inline int enc_put_zeros(struct enc *e, size_t n)
{
	uint8_t *p = enc_reserve(e, n);
	if (p && n)
		memset(p, 0, n);
	return e->error;
}

static inline int dec_get_u8(struct dec *d, uint8_t *v)
{
	const uint8_t *p = dec_take(d, 1);
	*v = p ? *p : 0;
	return d->error;
}
static inline int dec_get_le16(struct dec *d, uint16_t *v)
{
	const uint8_t *p = dec_take(d, 2);
	*v = p ? le_load16(p) : 0;
	return d->error;
}
static inline int dec_get_le32(struct dec *d, uint32_t *v)
{
	const uint8_t *p = dec_take(d, 4);
	*v = p ? le_load32(p) : 0;
	return d->error;
}
static inline int dec_get_le64(struct dec *d, uint64_t *v)
{
	const uint8_t *p = dec_take(d, 8);
	*v = p ? le_load64(p) : 0;
	return d->error;
}
static inline int dec_get_bytes(struct dec *d, void *dst, size_t n)
{
	const uint8_t *p = dec_take(d, n);
	if (p && n)
		memcpy(dst, p, n);
	else if (!p && n)
		memset(dst, 0, n);
	return d->error;
}
static inline int dec_skip(struct dec *d, size_t n)
{
	dec_take(d, n);
	return d->error;
}

/* Strings: le16 length + bytes, no terminator on the wire. */
int enc_put_str(struct enc *e, const char *s);
/* Copies into DST (capacity CAP, NUL-terminated); a string that does not
 * fit, or holds a NUL byte, is -EBADMSG. */
int dec_get_str(struct dec *d, char *dst, size_t cap);

#endif
