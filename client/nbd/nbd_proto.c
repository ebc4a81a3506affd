/* NBD decoding and encoding (see nbd_proto.h). Every length is checked
 * against what is there before anything is read. */
#include "nbd_proto.h"

#include <errno.h>
#include <string.h>

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const uint8_t *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

size_t nbd_put_be16(uint8_t *buf, uint16_t v)
{
	buf[0] = (uint8_t)(v >> 8);
	buf[1] = (uint8_t)v;
	return 2;
}

size_t nbd_put_be32(uint8_t *buf, uint32_t v)
{
	nbd_put_be16(buf, (uint16_t)(v >> 16));
	nbd_put_be16(buf + 2, (uint16_t)v);
	return 4;
}

size_t nbd_put_be64(uint8_t *buf, uint64_t v)
{
	nbd_put_be32(buf, (uint32_t)(v >> 32));
	nbd_put_be32(buf + 4, (uint32_t)v);
	return 8;
}

int nbd_opt_header_decode(const uint8_t buf[16], struct nbd_opt_header *out)
{
	if (be64(buf) != NBD_IHAVEOPT)
		return -EPROTO;
	out->opt = be32(buf + 8);
	out->len = be32(buf + 12);
	return 0;
}

int nbd_opt_go_decode(const uint8_t *data, uint32_t len, struct nbd_opt_go *out)
{
	if (len < 6)
		return -EINVAL;
	uint32_t name_len = be32(data);
	if (name_len > NBD_NAME_MAX || name_len > len - 6)
		return -EINVAL;
	memcpy(out->name, data + 4, name_len);
	out->name[name_len] = '\0';
	if (memchr(out->name, '\0', name_len))
		return -EINVAL; /* a NUL inside a name */
	const uint8_t *p = data + 4 + name_len;
	uint16_t n = be16(p);
	if ((uint32_t)n * 2 != len - 6 - name_len)
		return -EINVAL;
	out->n_requests = n;
	for (uint16_t i = 0; i < n && i < 64; i++)
		out->requests[i] = be16(p + 2 + 2 * i);
	return 0;
}

int nbd_opt_meta_decode(const uint8_t *data, uint32_t len, char *name, size_t name_cap,
			bool *allocation, uint32_t *n_queries)
{
	*allocation = false;
	if (len < 8)
		return -EINVAL;
	uint32_t name_len = be32(data);
	if (name_len > NBD_NAME_MAX || name_len > len - 8 || name_len >= name_cap)
		return -EINVAL;
	memcpy(name, data + 4, name_len);
	name[name_len] = '\0';
	uint32_t at = 4 + name_len;
	uint32_t n = be32(data + at);
	at += 4;
	for (uint32_t i = 0; i < n; i++) {
		if (len - at < 4)
			return -EINVAL;
		uint32_t ql = be32(data + at);
		at += 4;
		if (ql > NBD_NAME_MAX || ql > len - at)
			return -EINVAL;
		const char *q = (const char *)data + at;
		size_t al = strlen(NBD_ALLOCATION_CONTEXT);
		if ((ql == al && memcmp(q, NBD_ALLOCATION_CONTEXT, al) == 0) ||
		    (ql == 5 && memcmp(q, "base:", 5) == 0))
			*allocation = true;
		at += ql;
	}
	if (at != len)
		return -EINVAL;
	*n_queries = n;
	return 0;
}

int nbd_request_decode(const uint8_t buf[NBD_REQUEST_LEN], struct nbd_request *out)
{
	if (be32(buf) != NBD_REQUEST_MAGIC)
		return -EPROTO;
	out->flags = be16(buf + 4);
	out->type = be16(buf + 6);
	out->handle = be64(buf + 8);
	out->offset = be64(buf + 16);
	out->len = be32(buf + 24);
	return 0;
}

size_t nbd_put_greeting(uint8_t *buf, uint16_t handshake_flags)
{
	nbd_put_be64(buf, NBD_MAGIC);
	nbd_put_be64(buf + 8, NBD_IHAVEOPT);
	return 16 + nbd_put_be16(buf + 16, handshake_flags);
}

size_t nbd_put_opt_reply(uint8_t *buf, uint32_t opt, uint32_t type, uint32_t len)
{
	nbd_put_be64(buf, NBD_REP_MAGIC);
	nbd_put_be32(buf + 8, opt);
	nbd_put_be32(buf + 12, type);
	return 16 + nbd_put_be32(buf + 16, len);
}

size_t nbd_put_info_export(uint8_t *buf, uint64_t size, uint16_t flags)
{
	nbd_put_be16(buf, NBD_INFO_EXPORT);
	nbd_put_be64(buf + 2, size);
	return 10 + nbd_put_be16(buf + 10, flags);
}

size_t nbd_put_info_block_size(uint8_t *buf, uint32_t min, uint32_t preferred, uint32_t max)
{
	nbd_put_be16(buf, NBD_INFO_BLOCK_SIZE);
	nbd_put_be32(buf + 2, min);
	nbd_put_be32(buf + 6, preferred);
	return 10 + nbd_put_be32(buf + 10, max);
}

size_t nbd_put_simple_reply(uint8_t *buf, uint32_t error, uint64_t handle)
{
	nbd_put_be32(buf, NBD_SIMPLE_REPLY_MAGIC);
	nbd_put_be32(buf + 4, error);
	return 8 + nbd_put_be64(buf + 8, handle);
}

size_t nbd_put_chunk(uint8_t *buf, uint16_t flags, uint16_t type, uint64_t handle, uint32_t len)
{
	nbd_put_be32(buf, NBD_STRUCTURED_REPLY_MAGIC);
	nbd_put_be16(buf + 4, flags);
	nbd_put_be16(buf + 6, type);
	nbd_put_be64(buf + 8, handle);
	return 16 + nbd_put_be32(buf + 16, len);
}

uint32_t nbd_errno(int rc)
{
	switch (-rc) {
	case 0: return 0;
	case EPERM:
	case EROFS:
	case EACCES: return NBD_EPERM;
	case ENOMEM: return NBD_ENOMEM;
	case EINVAL: return NBD_EINVAL;
	case ENOSPC: return NBD_ENOSPC;
	case EOVERFLOW: return NBD_EOVERFLOW;
	case ENOTSUP: return NBD_ENOTSUP;
	case ESHUTDOWN: return NBD_ESHUTDOWN;
	default: return NBD_EIO;
	}
}
