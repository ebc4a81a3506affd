/* Frame encoding, message buffers and the receive parser (see header). */
#include "msgr_frame.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "assert.h"
#include "crc32c.h"
#include "enc.h"

/* A small per-thread cache of message structs keeps malloc off the hot
 * path; its bound is stated here. */
#define MSG_CACHE_MAX 1024

static _Thread_local struct msg *msg_cache;
static _Thread_local unsigned msg_cache_len;

/* The data segment pool (see msg_alloc_data): one free list per
 * power-of-two size from 64 KiB to 4 MiB, linked through the buffers. */
#define DATA_POOL_MIN_SHIFT 16
#define DATA_POOL_MAX_SHIFT 22
#define DATA_POOL_BYTES (32u << 20)
#if defined(__SANITIZE_ADDRESS__)
#define DATA_POOL 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DATA_POOL 0
#endif
#endif
#ifndef DATA_POOL
#define DATA_POOL 1
#endif

struct pooled {
	struct pooled *next;
};
static _Thread_local struct pooled *data_pool[DATA_POOL_MAX_SHIFT - DATA_POOL_MIN_SHIFT + 1];
static _Thread_local size_t data_pool_bytes;

/* What a thread's cache and pool hold goes back to malloc when the thread
 * exits (a pthread key's destructor: a thread that ends, as a plugin's
 * HTTP thread or a helper thread does, would otherwise lose up to
 * MSG_CACHE_MAX structs and DATA_POOL_BYTES of buffers). The main thread's
 * stay until the process ends, reachable. */
static pthread_key_t cache_key;
static pthread_once_t cache_key_once = PTHREAD_ONCE_INIT;
static _Thread_local bool cache_registered;

static void cache_drain(void *unused)
{
	(void)unused;
	while (msg_cache) {
		struct msg *m = msg_cache;
		msg_cache = (struct msg *)m->data_owner;
		free(m);
	}
	msg_cache_len = 0;
	for (size_t i = 0; i < sizeof(data_pool) / sizeof(data_pool[0]); i++)
		while (data_pool[i]) {
			struct pooled *b = data_pool[i];
			data_pool[i] = b->next;
			free(b);
		}
	data_pool_bytes = 0;
}

static void cache_key_create(void)
{
	int rc = pthread_key_create(&cache_key, cache_drain);
	BASALT_ASSERT(rc == 0);
}

/* Before this thread keeps anything: its drain at exit is registered. */
static void cache_register(void)
{
	if (cache_registered)
		return;
	pthread_once(&cache_key_once, cache_key_create);
	cache_registered = pthread_setspecific(cache_key, &cache_registered) == 0;
}

bool msg_data_pool_enabled(void)
{
	return DATA_POOL;
}

/* The pool's size class for an allocation of SIZE bytes: log2 of the
 * power of two that holds it, or 0 when the pool does not serve it. */
static unsigned pool_shift(size_t size)
{
	if (!DATA_POOL || size < (1u << DATA_POOL_MIN_SHIFT) || size > (1u << DATA_POOL_MAX_SHIFT))
		return 0;
	unsigned shift = DATA_POOL_MIN_SHIFT;
	while (((size_t)1 << shift) < size)
		shift++;
	return shift;
}

struct msg *msg_new(uint16_t type, uint64_t request_id, size_t payload_len)
{
	if (payload_len > MSG_PAYLOAD_MAX_LIMIT)
		return NULL;
	struct msg *m = msg_cache;
	if (m) {
		msg_cache = (struct msg *)m->data_owner;
		msg_cache_len--;
	} else if (!(m = malloc(sizeof(*m)))) {
		return NULL;
	}
	memset(m, 0, offsetof(struct msg, wire));
	list_init(&m->node);
	m->payload = m->inline_payload;
	if (payload_len > MSG_INLINE_PAYLOAD &&
	    !(m->payload = malloc(payload_len))) {
		free(m);
		return NULL;
	}
	m->hdr.version = MSG_VERSION;
	m->hdr.type = type;
	m->hdr.request_id = request_id;
	m->hdr.payload_len = (uint32_t)payload_len;
	return m;
}

int msg_alloc_data(struct msg *msg, uint32_t len)
{
	BASALT_ASSERT(msg->data == NULL);
	if (len > MSG_DATA_MAX_LIMIT)
		return -EMSGSIZE;
	size_t alloc = ((size_t)len + MSG_DATA_ALIGN - 1) & ~(size_t)(MSG_DATA_ALIGN - 1);
	void *p = NULL;
	unsigned shift = pool_shift(alloc);
	if (shift) {
		struct pooled **head = &data_pool[shift - DATA_POOL_MIN_SHIFT];
		alloc = (size_t)1 << shift;
		if (*head) {
			p = *head;
			*head = (*head)->next;
			data_pool_bytes -= alloc;
		}
	}
	if (!p && posix_memalign(&p, MSG_DATA_ALIGN, alloc ? alloc : MSG_DATA_ALIGN))
		return -ENOMEM;
	if (shift) {
		msg->data_pool = p;
		msg->data_pool_size = (uint32_t)alloc;
	}
	msg->data = p;
	msg->hdr.data_len = len;
	msg->chunk_crc = NULL; /* of any data taken before: not of these bytes */
	return 0;
}

void msg_borrow_data(struct msg *msg, void *buf, uint32_t len,
		     msg_release_fn release, void *owner)
{
	BASALT_ASSERT(msg->data == NULL);
	msg->data = buf;
	msg->hdr.data_len = len;
	msg->chunk_crc = NULL;
	msg->data_release = release;
	msg->data_owner = owner;
}

void msg_free(struct msg *msg)
{
	if (!msg)
		return;
	cache_register();
	if (msg->data_release) {
		msg->data_release(msg);
	} else if (DATA_POOL && cache_registered && msg->data && msg->data == msg->data_pool &&
		   data_pool_bytes + msg->data_pool_size <= DATA_POOL_BYTES) {
		struct pooled *b = msg->data_pool;
		struct pooled **head = &data_pool[pool_shift(msg->data_pool_size) - DATA_POOL_MIN_SHIFT];
		b->next = *head;
		*head = b;
		data_pool_bytes += msg->data_pool_size;
	} else {
		free(msg->data);
	}
	if (msg->payload != msg->inline_payload)
		free(msg->payload);
	free(msg->chunk_crc_alloc);
	if (cache_registered && msg_cache_len < MSG_CACHE_MAX) {
		msg->data_owner = msg_cache;
		msg_cache = msg;
		msg_cache_len++;
	} else {
		free(msg);
	}
}

void msg_header_encode(const struct msg_header *h, uint8_t out[MSG_HEADER_LEN])
{
	struct enc e;
	enc_init(&e, out, MSG_HEADER_LEN);
	enc_put_le32(&e, MSG_MAGIC);
	enc_put_le16(&e, h->version);
	enc_put_le16(&e, h->type);
	enc_put_le64(&e, h->request_id);
	enc_put_le32(&e, h->payload_len);
	enc_put_le32(&e, h->data_len);
	enc_put_le32(&e, h->payload_crc);
	enc_put_le32(&e, h->data_crc);
	enc_put_le32(&e, h->flags);
	enc_put_le32(&e, crc32c(0, out, MSG_HEADER_LEN - 4));
	BASALT_ASSERT(enc_status(&e) == 0 && e.pos == MSG_HEADER_LEN);
}

const uint32_t *msg_chunk_crcs(const struct msg *msg)
{
	if (!msg->chunk_crc || msg->chunk_crc_of != msg->data ||
	    (uint64_t)msg->chunk_crc_count * CRC32C_CHUNK != msg->hdr.data_len)
		return NULL;
	return msg->chunk_crc;
}

void msg_set_chunk_crcs(struct msg *msg, const uint32_t *crc)
{
	BASALT_ASSERT(msg->data && msg->hdr.data_len &&
		      msg->hdr.data_len % CRC32C_CHUNK == 0);
	msg->chunk_crc = crc;
	msg->chunk_crc_of = msg->data;
	msg->chunk_crc_count = msg->hdr.data_len / CRC32C_CHUNK;
}

void msg_seal(struct msg *msg)
{
	msg->hdr.payload_crc = crc32c(0, msg->payload, msg->hdr.payload_len);
	const uint32_t *chunk_crc = msg_chunk_crcs(msg);
	if (chunk_crc) {
		msg->hdr.data_crc = crc32c_of_chunks(chunk_crc, msg->chunk_crc_count);
#ifdef BASALT_CHECK_CARRIED_CRC
		BASALT_ASSERT(msg->hdr.data_crc == crc32c(0, msg->data, msg->hdr.data_len));
#endif
	} else {
		msg->hdr.data_crc = crc32c(0, msg->data, msg->hdr.data_len);
	}
	msg_header_encode(&msg->hdr, msg->wire);
}

int msg_header_decode(const uint8_t in[MSG_HEADER_LEN],
		      const struct msg_limits *limits, struct msg_header *out,
		      const char **why)
{
	struct dec d;
	uint32_t magic, header_crc;
	dec_init(&d, in, MSG_HEADER_LEN);
	dec_get_le32(&d, &magic);
	dec_get_le16(&d, &out->version);
	dec_get_le16(&d, &out->type);
	dec_get_le64(&d, &out->request_id);
	dec_get_le32(&d, &out->payload_len);
	dec_get_le32(&d, &out->data_len);
	dec_get_le32(&d, &out->payload_crc);
	dec_get_le32(&d, &out->data_crc);
	dec_get_le32(&d, &out->flags);
	dec_get_le32(&d, &header_crc);
	BASALT_ASSERT(dec_status(&d) == 0);
	if (magic != MSG_MAGIC) {
		*why = "bad magic";
		return -EPROTO;
	}
	if (crc32c(0, in, MSG_HEADER_LEN - 4) != header_crc) {
		*why = "bad header CRC";
		return -EBADMSG;
	}
	if (out->version != MSG_VERSION) {
		*why = "unsupported version";
		return -EPROTO;
	}
	if (out->flags != 0) {
		*why = "unknown flags";
		return -EPROTO;
	}
	if (out->payload_len > limits->payload_max) {
		*why = "payload length over the limit";
		return -EMSGSIZE;
	}
	if (out->data_len > limits->data_max) {
		*why = "data length over the limit";
		return -EMSGSIZE;
	}
	if (limits->type_ok && !limits->type_ok(out->type, limits->type_ok_arg)) {
		*why = "unknown message type";
		return -EPROTO;
	}
	return 0;
}

void msg_rx_init(struct msg_rx *rx, const struct msg_limits *limits)
{
	memset(rx, 0, sizeof(*rx));
	rx->limits = limits;
	rx->state = MSG_RX_HEADER;
}

void msg_rx_reset(struct msg_rx *rx)
{
	msg_free(rx->msg);
	rx->msg = NULL;
	rx->state = MSG_RX_HEADER;
	rx->have = 0;
}

/* Checks the data segment's CRC. One that is a multiple of 4 KiB is
 * checked through a CRC per 4 KiB chunk, combined, and keeps those CRCs
 * (msg_chunk_crcs); when the array for them cannot be allocated, it is
 * checked whole and carries none. */
static bool msg_rx_data_ok(struct msg *m)
{
	uint32_t len = m->hdr.data_len, n = len / CRC32C_CHUNK;
	uint32_t *crc = m->inline_chunk_crc;
	if (!n || len % CRC32C_CHUNK ||
	    (n > MSG_INLINE_CHUNK_CRCS && !(crc = m->chunk_crc_alloc = malloc(n * sizeof(*crc)))))
		return crc32c(0, m->data, len) == m->hdr.data_crc;
	crc32c_chunks(m->data, n, crc);
	if (crc32c_of_chunks(crc, n) != m->hdr.data_crc)
		return false;
	msg_set_chunk_crcs(m, crc);
	return true;
}

/* The current part is complete: check it and move to the next. Returns 0
 * (with *OUT when the whole message is done) or a negative errno. */
static int msg_rx_advance(struct msg_rx *rx, struct msg **out)
{
	struct msg *m = rx->msg;
	switch (rx->state) {
	case MSG_RX_HEADER: {
		struct msg_header h;
		int rc = msg_header_decode(rx->header, rx->limits, &h, &rx->why);
		if (rc)
			return rc;
		m = msg_new(h.type, h.request_id, h.payload_len);
		if (!m) {
			rx->why = "out of memory";
			return -ENOMEM;
		}
		m->hdr = h;
		rx->msg = m;
		rx->state = MSG_RX_PAYLOAD;
		rx->have = 0;
		break;
	}
	case MSG_RX_PAYLOAD:
		if (crc32c(0, m->payload, m->hdr.payload_len) != m->hdr.payload_crc) {
			rx->why = "bad payload CRC";
			return -EBADMSG;
		}
		/* Where the data goes is chosen only now, knowing the payload:
		 * the owner may lend the buffer it finally belongs in. */
		if (m->hdr.data_len && rx->data_dest) {
			uint32_t len = m->hdr.data_len;
			rx->data_dest(rx->data_dest_arg, m);
			BASALT_ASSERT(m->hdr.data_len == len && (!m->data || m->data_release));
		}
		if (m->hdr.data_len && !m->data && msg_alloc_data(m, m->hdr.data_len)) {
			rx->why = "out of memory";
			return -ENOMEM;
		}
		rx->state = MSG_RX_DATA;
		rx->have = 0;
		break;
	case MSG_RX_DATA:
		if (!msg_rx_data_ok(m)) {
			rx->why = "bad data CRC";
			return -EBADMSG;
		}
		*out = m;
		rx->msg = NULL;
		rx->state = MSG_RX_HEADER;
		rx->have = 0;
		return 0;
	}
	/* Empty parts complete at once. */
	if (rx->state == MSG_RX_PAYLOAD && rx->msg->hdr.payload_len == 0)
		return msg_rx_advance(rx, out);
	if (rx->state == MSG_RX_DATA && rx->msg->hdr.data_len == 0)
		return msg_rx_advance(rx, out);
	return 0;
}

static size_t msg_rx_part(struct msg_rx *rx, uint8_t **dst)
{
	switch (rx->state) {
	case MSG_RX_HEADER:
		*dst = rx->header;
		return MSG_HEADER_LEN;
	case MSG_RX_PAYLOAD:
		*dst = rx->msg->payload;
		return rx->msg->hdr.payload_len;
	case MSG_RX_DATA:
	default:
		*dst = rx->msg->data;
		return rx->msg->hdr.data_len;
	}
}

ssize_t msg_rx_feed(struct msg_rx *rx, const uint8_t *buf, size_t len,
		    struct msg **out)
{
	size_t used = 0;
	*out = NULL;
	while (used < len && !*out) {
		uint8_t *dst;
		size_t want = msg_rx_part(rx, &dst) - rx->have;
		size_t n = len - used < want ? len - used : want;
		memcpy(dst + rx->have, buf + used, n);
		rx->have += n;
		used += n;
		if (n == want) {
			int rc = msg_rx_advance(rx, out);
			if (rc)
				return rc;
		}
	}
	return (ssize_t)used;
}

size_t msg_rx_direct(struct msg_rx *rx, uint8_t **dst)
{
	if (rx->state != MSG_RX_DATA)
		return 0;
	*dst = rx->msg->data + rx->have;
	return rx->msg->hdr.data_len - rx->have;
}

int msg_rx_direct_done(struct msg_rx *rx, size_t n, struct msg **out)
{
	*out = NULL;
	BASALT_ASSERT(rx->state == MSG_RX_DATA);
	BASALT_ASSERT(n <= rx->msg->hdr.data_len - rx->have);
	rx->have += n;
	if (rx->have < rx->msg->hdr.data_len)
		return 0;
	return msg_rx_advance(rx, out);
}

struct msg *msg_hello_new(const struct msg_hello *h)
{
	size_t len = 2 + 2 + strlen(h->name) + MSG_NONCE_LEN + MSG_KEY_ID_LEN + 1 +
		     (h->has_proof ? MSG_PROOF_LEN : 0);
	struct msg *m = msg_new(MSG_TYPE_HELLO, 0, len);
	if (!m)
		return NULL;
	struct enc e;
	enc_init(&e, m->payload, len);
	enc_put_le16(&e, h->proto);
	enc_put_str(&e, h->name);
	enc_put_bytes(&e, h->nonce, MSG_NONCE_LEN);
	enc_put_bytes(&e, h->key_id, MSG_KEY_ID_LEN);
	enc_put_u8(&e, h->has_proof);
	if (h->has_proof)
		enc_put_bytes(&e, h->proof, MSG_PROOF_LEN);
	BASALT_ASSERT(enc_status(&e) == 0 && e.pos == len);
	return m;
}

int msg_hello_decode(const uint8_t *buf, size_t len, struct msg_hello *out)
{
	struct dec d;
	uint8_t has_proof = 0;
	dec_init(&d, buf, len);
	dec_get_le16(&d, &out->proto);
	dec_get_str(&d, out->name, sizeof(out->name));
	dec_get_bytes(&d, out->nonce, MSG_NONCE_LEN);
	dec_get_bytes(&d, out->key_id, MSG_KEY_ID_LEN);
	dec_get_u8(&d, &has_proof);
	if (has_proof)
		dec_get_bytes(&d, out->proof, MSG_PROOF_LEN);
	if (dec_status(&d) || dec_remaining(&d) || has_proof > 1)
		return -EBADMSG;
	out->has_proof = has_proof;
	return 0;
}
