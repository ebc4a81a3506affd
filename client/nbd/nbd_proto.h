/* The NBD protocol (doc/proto.md of the nbd project): constants, and the
 * pure decoding and encoding the server does, kept apart from I/O so it is
 * unit-tested and fuzzed directly. All fields are big-endian. */
#ifndef BASALT_CLIENT_NBD_PROTO_H
#define BASALT_CLIENT_NBD_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NBD_MAGIC 0x4e42444d41474943ull	    /* "NBDMAGIC" */
#define NBD_IHAVEOPT 0x49484156454f5054ull  /* "IHAVEOPT" */
#define NBD_REP_MAGIC 0x0003e889045565a9ull /* option replies */
#define NBD_REQUEST_MAGIC 0x25609513u
#define NBD_SIMPLE_REPLY_MAGIC 0x67446698u
#define NBD_STRUCTURED_REPLY_MAGIC 0x668e33efu

/* Handshake flags (server) and client flags. */
#define NBD_FLAG_FIXED_NEWSTYLE 1u
#define NBD_FLAG_NO_ZEROES 2u
#define NBD_FLAG_C_FIXED_NEWSTYLE 1u
#define NBD_FLAG_C_NO_ZEROES 2u

enum nbd_opt {
	NBD_OPT_EXPORT_NAME = 1,
	NBD_OPT_ABORT = 2,
	NBD_OPT_LIST = 3,
	NBD_OPT_STARTTLS = 5,
	NBD_OPT_INFO = 6,
	NBD_OPT_GO = 7,
	NBD_OPT_STRUCTURED_REPLY = 8,
	NBD_OPT_LIST_META_CONTEXT = 9,
	NBD_OPT_SET_META_CONTEXT = 10,
};

#define NBD_REP_ACK 1u
#define NBD_REP_SERVER 2u
#define NBD_REP_INFO 3u
#define NBD_REP_META_CONTEXT 4u
#define NBD_REP_ERR_UNSUP 0x80000001u
#define NBD_REP_ERR_POLICY 0x80000002u
#define NBD_REP_ERR_INVALID 0x80000003u
#define NBD_REP_ERR_PLATFORM 0x80000004u
#define NBD_REP_ERR_TLS_REQD 0x80000005u
#define NBD_REP_ERR_UNKNOWN 0x80000006u
#define NBD_REP_ERR_SHUTDOWN 0x80000007u
#define NBD_REP_ERR_BLOCK_SIZE_REQD 0x80000008u
#define NBD_REP_ERR_TOO_BIG 0x80000009u

#define NBD_INFO_EXPORT 0
#define NBD_INFO_NAME 1
#define NBD_INFO_DESCRIPTION 2
#define NBD_INFO_BLOCK_SIZE 3

/* Transmission flags. */
#define NBD_FLAG_HAS_FLAGS (1u << 0)
#define NBD_FLAG_READ_ONLY (1u << 1)
#define NBD_FLAG_SEND_FLUSH (1u << 2)
#define NBD_FLAG_SEND_FUA (1u << 3)
#define NBD_FLAG_SEND_TRIM (1u << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)
#define NBD_FLAG_CAN_MULTI_CONN (1u << 8)
#define NBD_FLAG_SEND_FAST_ZERO (1u << 11)

enum nbd_cmd {
	NBD_CMD_READ = 0,
	NBD_CMD_WRITE = 1,
	NBD_CMD_DISC = 2,
	NBD_CMD_FLUSH = 3,
	NBD_CMD_TRIM = 4,
	NBD_CMD_CACHE = 5,
	NBD_CMD_WRITE_ZEROES = 6,
	NBD_CMD_BLOCK_STATUS = 7,
};

#define NBD_CMD_FLAG_FUA (1u << 0)
#define NBD_CMD_FLAG_NO_HOLE (1u << 1)
#define NBD_CMD_FLAG_DF (1u << 2)
#define NBD_CMD_FLAG_REQ_ONE (1u << 3)
#define NBD_CMD_FLAG_FAST_ZERO (1u << 4)

#define NBD_REPLY_FLAG_DONE 1u
#define NBD_REPLY_TYPE_NONE 0
#define NBD_REPLY_TYPE_OFFSET_DATA 1
#define NBD_REPLY_TYPE_OFFSET_HOLE 2
#define NBD_REPLY_TYPE_BLOCK_STATUS 5
#define NBD_REPLY_TYPE_ERROR 0x8001u

#define NBD_STATE_HOLE 1u
#define NBD_STATE_ZERO 2u

/* Error values on the wire. */
#define NBD_EPERM 1
#define NBD_EIO 5
#define NBD_ENOMEM 12
#define NBD_EINVAL 22
#define NBD_ENOSPC 28
#define NBD_EOVERFLOW 75
#define NBD_ENOTSUP 95
#define NBD_ESHUTDOWN 108

#define NBD_NAME_MAX 4096	  /* the spec's limit on names and strings */
#define NBD_OPTION_MAX (64u << 10) /* longest option data we accept */
#define NBD_REQUEST_LEN 28
#define NBD_ALLOCATION_CONTEXT "base:allocation"
#define NBD_ALLOCATION_ID 1

/* An option's header (after the client flags): IHAVEOPT, option, length. */
struct nbd_opt_header {
	uint32_t opt;
	uint32_t len;
};
/* 0, or -EPROTO when the magic is wrong (the connection must close). */
int nbd_opt_header_decode(const uint8_t buf[16], struct nbd_opt_header *out);

/* The data of INFO and GO: an export name and the information requests. */
struct nbd_opt_go {
	char name[NBD_NAME_MAX + 1];
	uint16_t n_requests;
	uint16_t requests[64]; /* the first 64 */
};
/* 0, or -EINVAL when the lengths inside do not add up. */
int nbd_opt_go_decode(const uint8_t *data, uint32_t len, struct nbd_opt_go *out);

/* LIST_META_CONTEXT and SET_META_CONTEXT: an export name and queries;
 * *ALLOCATION says whether "base:allocation" (or, for LIST, "base:") is
 * among them, and *N_QUERIES how many there were. 0 or -EINVAL. */
int nbd_opt_meta_decode(const uint8_t *data, uint32_t len, char *name, size_t name_cap,
			bool *allocation, uint32_t *n_queries);

struct nbd_request {
	uint16_t flags;
	uint16_t type;
	uint64_t handle;
	uint64_t offset;
	uint32_t len;
};
/* 0, or -EPROTO when the magic is wrong. */
int nbd_request_decode(const uint8_t buf[NBD_REQUEST_LEN], struct nbd_request *out);

/* Writers into BUF (big enough); each returns the bytes written. */
size_t nbd_put_greeting(uint8_t *buf, uint16_t handshake_flags);
size_t nbd_put_opt_reply(uint8_t *buf, uint32_t opt, uint32_t type, uint32_t len);
size_t nbd_put_info_export(uint8_t *buf, uint64_t size, uint16_t flags);
size_t nbd_put_info_block_size(uint8_t *buf, uint32_t min, uint32_t preferred, uint32_t max);
size_t nbd_put_simple_reply(uint8_t *buf, uint32_t error, uint64_t handle);
size_t nbd_put_chunk(uint8_t *buf, uint16_t flags, uint16_t type, uint64_t handle,
		     uint32_t len);
size_t nbd_put_be16(uint8_t *buf, uint16_t v);
size_t nbd_put_be32(uint8_t *buf, uint32_t v);
size_t nbd_put_be64(uint8_t *buf, uint64_t v);

/* The wire error for a -errno. */
uint32_t nbd_errno(int rc);

#endif
