/* Wire frames of the messenger, and the incremental receive parser.
 *
 * A frame is a 40-byte header, then PAYLOAD_LEN bytes of encoded payload,
 * then DATA_LEN bytes of data segment:
 *
 *   0  le32 magic "BSLT"     20 le32 data_len
 *   4  le16 version (1)      24 le32 payload_crc   CRC32C of the payload
 *   6  le16 type             28 le32 data_crc      CRC32C of the data
 *   8  le64 request_id       32 le32 flags         (must be 0 in v1)
 *   16 le32 payload_len      36 le32 header_crc    CRC32C of bytes 0..35
 *
 * The parser trusts no length: a bad magic, version, flags or CRC, a
 * length above the limits or an unacceptable type is an error that closes
 * the connection. Pure code (no I/O), so it is unit-tested and fuzzed
 * directly. */
#ifndef BASALT_COMMON_MSGR_FRAME_H
#define BASALT_COMMON_MSGR_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "list.h"

#define MSG_MAGIC 0x544C5342u /* "BSLT" read as little-endian */
#define MSG_VERSION 1
#define MSG_HEADER_LEN 40
#define MSG_INLINE_PAYLOAD 256
#define MSG_PAYLOAD_MAX_LIMIT (16u << 20)
#define MSG_DATA_MAX_LIMIT (256u << 20)
#define MSG_DATA_ALIGN 4096
/* Chunk CRCs a message holds inline (128 KiB of data); more are allocated. */
#define MSG_INLINE_CHUNK_CRCS 32

/* Types below 16 belong to the messenger itself. */
enum msg_internal_type {
	MSG_TYPE_HELLO = 1,
	MSG_TYPE_AUTH = 2,
	MSG_TYPE_AUTH_OK = 3,
	MSG_TYPE_KEEPALIVE = 4,
	MSG_TYPE_AUTH_FAIL = 5, /* acceptor: your key was refused; then it closes */
	MSG_TYPE_FIRST_USER = 16,
};

struct msg_header {
	uint16_t version;
	uint16_t type;
	uint32_t flags;
	uint64_t request_id;
	uint32_t payload_len;
	uint32_t data_len;
	uint32_t payload_crc;
	uint32_t data_crc;
};

struct msg;
typedef void (*msg_release_fn)(struct msg *msg);

/* One message: header, payload (inline when small) and data segment. */
struct msg {
	struct list_node node; /* send queue */
	struct msg_header hdr;
	uint8_t *payload;
	uint8_t *data;
	/* Set for a borrowed data segment (zero-copy send): called once the
	 * data is no longer needed, instead of freeing it. */
	msg_release_fn data_release;
	void *data_owner;
	/* A data segment msg_alloc_data took from the per-thread pool, and its
	 * size there: msg_free gives it back if DATA is still that buffer. */
	void *data_pool;
	uint32_t data_pool_size;
	/* The CRC32C of each 4 KiB chunk of the data segment, when known
	 * (see msg_chunk_crcs): CHUNK_CRC_COUNT of them, of the bytes at
	 * CHUNK_CRC_OF. CHUNK_CRC_ALLOC is an array msg_free frees. */
	const uint32_t *chunk_crc;
	const void *chunk_crc_of;
	uint32_t chunk_crc_count;
	uint32_t *chunk_crc_alloc;
	uint8_t wire[MSG_HEADER_LEN];
	uint8_t inline_payload[MSG_INLINE_PAYLOAD];
	uint32_t inline_chunk_crc[MSG_INLINE_CHUNK_CRCS];
};

/* A message with PAYLOAD_LEN bytes of payload to fill; NULL on ENOMEM.
 * Caller frees with msg_free, or hands it to msgr_send. */
struct msg *msg_new(uint16_t type, uint64_t request_id, size_t payload_len);
/* Allocates an owned, MSG_DATA_ALIGN-aligned data segment of LEN bytes.
 * Segments of 64 KiB to 4 MiB come from a per-thread pool (by power-of-two
 * size, at most 32 MiB kept per thread) that msg_free refills: malloc would
 * hand such sizes back to the kernel and fault their pages in again on the
 * next message (half the client's CPU on 1 MiB reads, measured). Code that
 * takes MSG->data for itself (and sets it to NULL) owns an ordinary
 * allocation, to be freed with free(). */
int msg_alloc_data(struct msg *msg, uint32_t len);
/* Whether that pool is in use (not under AddressSanitizer, which should
 * see every use after free). */
bool msg_data_pool_enabled(void);
/* Borrows BUF as the data segment until RELEASE(msg) is called. */
void msg_borrow_data(struct msg *msg, void *buf, uint32_t len,
		     msg_release_fn release, void *owner);
void msg_free(struct msg *msg);

/* The CRC32C of each 4 KiB chunk of MSG->data (data_len / 4096 of them),
 * or NULL when unknown. The receive parser computes them for every data
 * segment that is a non-zero multiple of 4 KiB (in the same pass that
 * checks data_crc), so whoever stores or forwards the data need not read
 * it again. Valid until msg_free, also after the application took the
 * data (read them before setting MSG->data to NULL: from then on this
 * returns NULL, the CRCs being of bytes MSG no longer holds). */
const uint32_t *msg_chunk_crcs(const struct msg *msg);
/* Says CRC[i] is crc32c of chunk i of MSG's current data segment (whose
 * length is a non-zero multiple of 4 KiB), so msg_seal combines them
 * instead of reading the data. Borrows CRC as long as the data (until
 * msg_free or the data's release). The caller vouches for them: they
 * must be computed from, or verified against, exactly these bytes. */
void msg_set_chunk_crcs(struct msg *msg, const uint32_t *crc);

/* Fills MSG->wire from MSG->hdr, computing all three CRCs (the data's
 * from its chunk CRCs when it carries them). */
void msg_seal(struct msg *msg);

void msg_header_encode(const struct msg_header *h, uint8_t out[MSG_HEADER_LEN]);

struct msg_limits {
	uint32_t payload_max;
	uint32_t data_max;
	/* Which types may arrive; NULL accepts all. */
	bool (*type_ok)(uint16_t type, void *arg);
	void *type_ok_arg;
};

/* Decodes and checks a header. 0, or -EPROTO (magic, version, flags,
 * type), -EBADMSG (CRC), -EMSGSIZE (a length over the limits); *WHY says
 * which in words. */
int msg_header_decode(const uint8_t in[MSG_HEADER_LEN],
		      const struct msg_limits *limits,
		      struct msg_header *out /* out */, const char **why);

enum msg_rx_state { MSG_RX_HEADER, MSG_RX_PAYLOAD, MSG_RX_DATA };

struct msg_rx {
	const struct msg_limits *limits;
	enum msg_rx_state state;
	uint8_t header[MSG_HEADER_LEN];
	size_t have;     /* bytes of the current part received */
	struct msg *msg; /* being assembled; owned by the parser */
	const char *why; /* reason of the last error */
	/* Optional: called once a message's header and payload are in and
	 * checked, before its data segment (hdr.data_len > 0) is received;
	 * it may msg_borrow_data a buffer of exactly hdr.data_len bytes for
	 * the segment to be received into. Otherwise one is allocated. */
	void (*data_dest)(void *arg, struct msg *msg);
	void *data_dest_arg;
};

void msg_rx_init(struct msg_rx *rx, const struct msg_limits *limits);
/* Drops any half-received message (a borrowed data segment is released:
 * the caller makes sure nothing still writes into it). */
void msg_rx_reset(struct msg_rx *rx);

/* Consumes bytes of BUF until one message completes or BUF is used up.
 * Returns the bytes consumed (*OUT set to a complete message the caller
 * now owns, or NULL), or a negative errno as msg_header_decode, with WHY. */
ssize_t msg_rx_feed(struct msg_rx *rx, const uint8_t *buf, size_t len,
		    struct msg **out /* out */);

/* While a data segment is being received, where the next bytes may be
 * received directly (zero copy): returns how many are still missing and
 * sets *DST; 0 in any other state. */
size_t msg_rx_direct(struct msg_rx *rx, uint8_t **dst /* out */);
/* Reports N bytes received at the msg_rx_direct destination. Returns 0
 * (*OUT set when the message completed) or a negative errno. */
int msg_rx_direct_done(struct msg_rx *rx, size_t n, struct msg **out /* out */);

/* The HELLO payload that opens the handshake (see auth.h):
 *   le16 protocol, str entity name, nonce[32], key id[8], u8 has_proof,
 *   proof[32]? — the key id names which of the entity's keys proves it
 *   (auth_key_id), so an acceptor holding two (a rotation's grace) picks. */
#define MSG_HELLO_PROTO 2
#define MSG_KEY_ID_LEN 8
#define MSG_NAME_MAX 64
#define MSG_NONCE_LEN 32
#define MSG_PROOF_LEN 32

struct msg_hello {
	uint16_t proto;
	char name[MSG_NAME_MAX];
	uint8_t nonce[MSG_NONCE_LEN];
	uint8_t key_id[MSG_KEY_ID_LEN];
	bool has_proof;
	uint8_t proof[MSG_PROOF_LEN];
};

/* A HELLO message for H; NULL on ENOMEM. */
struct msg *msg_hello_new(const struct msg_hello *h);
/* Decodes a HELLO payload; -EBADMSG if malformed or with trailing bytes. */
int msg_hello_decode(const uint8_t *buf, size_t len,
		     struct msg_hello *out /* out */);

#endif
