/* Frame encoding and the receive parser: round trips in every chunking,
 * the direct (zero-copy) data path, and each malformed-frame case. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/enc.h"
#include "common/msgr_frame.h"

static const struct msg_limits limits = { 4096, 1 << 20, NULL, NULL };

/* Serializes a message as the messenger puts it on the wire. */
static size_t wire(struct msg *m, uint8_t *out)
{
	msg_seal(m);
	memcpy(out, m->wire, MSG_HEADER_LEN);
	memcpy(out + MSG_HEADER_LEN, m->payload, m->hdr.payload_len);
	if (m->hdr.data_len)
		memcpy(out + MSG_HEADER_LEN + m->hdr.payload_len, m->data,
		       m->hdr.data_len);
	return MSG_HEADER_LEN + m->hdr.payload_len + m->hdr.data_len;
}

static struct msg *sample(uint16_t type, uint64_t id, size_t plen, uint32_t dlen)
{
	struct msg *m = msg_new(type, id, plen);
	assert_non_null(m);
	for (size_t i = 0; i < plen; i++)
		m->payload[i] = (uint8_t)(i + id);
	if (dlen) {
		assert_int_equal(msg_alloc_data(m, dlen), 0);
		assert_int_equal((uintptr_t)m->data % MSG_DATA_ALIGN, 0);
		for (uint32_t i = 0; i < dlen; i++)
			m->data[i] = (uint8_t)(i * 31 + id);
	}
	return m;
}

static void test_header_round_trip(void **state)
{
	(void)state;
	struct msg_header h = { MSG_VERSION, 77, 0, 0x1122334455667788ULL,
				100, 4096, 0xaabbccdd, 0x01020304 };
	uint8_t buf[MSG_HEADER_LEN];
	msg_header_encode(&h, buf);
	assert_int_equal(le_load32(buf), MSG_MAGIC);
	assert_memory_equal(buf, "BSLT", 4);
	struct msg_header out;
	const char *why = NULL;
	assert_int_equal(msg_header_decode(buf, &limits, &out, &why), 0);
	assert_memory_equal(&out, &h, sizeof(h));
}

/* Re-encodes H and recomputes its CRC, so only the named field is bad. */
static int decode_with(struct msg_header h, const struct msg_limits *lim,
		       const char **why)
{
	uint8_t buf[MSG_HEADER_LEN];
	struct msg_header out;
	msg_header_encode(&h, buf);
	return msg_header_decode(buf, lim, &out, why);
}

static bool only_type_20(uint16_t type, void *arg)
{
	(void)arg;
	return type == 20;
}

static void test_header_errors(void **state)
{
	(void)state;
	const char *why;
	struct msg_header good = { MSG_VERSION, 20, 0, 1, 10, 10, 0, 0 };
	uint8_t buf[MSG_HEADER_LEN];
	struct msg_header out;

	msg_header_encode(&good, buf);
	buf[0] ^= 1;
	assert_int_equal(msg_header_decode(buf, &limits, &out, &why), -EPROTO);
	assert_string_equal(why, "bad magic");

	msg_header_encode(&good, buf);
	buf[9] ^= 0x40; /* request id bit: only the CRC catches it */
	assert_int_equal(msg_header_decode(buf, &limits, &out, &why), -EBADMSG);
	assert_string_equal(why, "bad header CRC");

	struct msg_header h = good;
	h.version = 2;
	assert_int_equal(decode_with(h, &limits, &why), -EPROTO);
	assert_string_equal(why, "unsupported version");
	h = good;
	h.flags = 1;
	assert_int_equal(decode_with(h, &limits, &why), -EPROTO);
	assert_string_equal(why, "unknown flags");
	h = good;
	h.payload_len = 4097;
	assert_int_equal(decode_with(h, &limits, &why), -EMSGSIZE);
	assert_string_equal(why, "payload length over the limit");
	h = good;
	h.data_len = UINT32_MAX;
	assert_int_equal(decode_with(h, &limits, &why), -EMSGSIZE);
	assert_string_equal(why, "data length over the limit");
	struct msg_limits typed = limits;
	typed.type_ok = only_type_20;
	assert_int_equal(decode_with(good, &typed, &why), 0);
	h = good;
	h.type = 21;
	assert_int_equal(decode_with(h, &typed, &why), -EPROTO);
	assert_string_equal(why, "unknown message type");
}

/* Feeds STREAM to a parser in chunks of 1..MAX_CHUNK bytes (0: all at
 * once) and checks the messages against WANT. */
static void parse_stream(const uint8_t *stream, size_t len, struct msg **want,
			 int count, size_t max_chunk, unsigned seed)
{
	struct msg_rx rx;
	msg_rx_init(&rx, &limits);
	int got = 0;
	size_t off = 0;
	srand(seed);
	while (off < len) {
		size_t chunk = max_chunk ? 1 + (size_t)rand() % max_chunk : len;
		if (chunk > len - off)
			chunk = len - off;
		size_t used = 0;
		while (used < chunk) {
			struct msg *m;
			ssize_t n = msg_rx_feed(&rx, stream + off + used, chunk - used, &m);
			assert_true(n > 0);
			used += (size_t)n;
			if (!m)
				continue;
			assert_true(got < count);
			struct msg *w = want[got++];
			assert_int_equal(m->hdr.type, w->hdr.type);
			assert_true(m->hdr.request_id == w->hdr.request_id);
			assert_int_equal(m->hdr.payload_len, w->hdr.payload_len);
			assert_int_equal(m->hdr.data_len, w->hdr.data_len);
			assert_memory_equal(m->payload, w->payload, w->hdr.payload_len);
			if (w->hdr.data_len)
				assert_memory_equal(m->data, w->data, w->hdr.data_len);
			msg_free(m);
		}
		off += chunk;
	}
	assert_int_equal(got, count);
	assert_int_equal(rx.state, MSG_RX_HEADER);
	msg_rx_reset(&rx);
}

static void test_parse_any_chunking(void **state)
{
	(void)state;
	struct msg *msgs[5] = {
		sample(20, 1, 0, 0),       sample(21, 2, 17, 0),
		sample(22, 3, 0, 4096),    sample(23, 4, 300, 70000),
		sample(24, 5, 4096, 1),
	};
	uint8_t *stream = malloc(200000);
	size_t len = 0;
	for (int i = 0; i < 5; i++)
		len += wire(msgs[i], stream + len);
	parse_stream(stream, len, msgs, 5, 0, 0);
	parse_stream(stream, len, msgs, 5, 1, 0);
	for (unsigned seed = 1; seed < 20; seed++)
		parse_stream(stream, len, msgs, 5, 1 + seed * 997, seed);
	for (int i = 0; i < 5; i++)
		msg_free(msgs[i]);
	free(stream);
}

static void test_direct_data(void **state)
{
	(void)state;
	struct msg *w = sample(30, 9, 8, 100000);
	uint8_t *stream = malloc(200000);
	size_t len = wire(w, stream);
	struct msg_rx rx;
	msg_rx_init(&rx, &limits);
	struct msg *m;
	uint8_t *dst;
	/* Header, payload and the first data bytes through the buffer... */
	assert_int_equal(msg_rx_feed(&rx, stream, 1000, &m), 1000);
	assert_null(m);
	size_t missing = msg_rx_direct(&rx, &dst);
	assert_int_equal(missing, len - 1000);
	/* ...the rest straight into the message's data segment. */
	memcpy(dst, stream + 1000, 50000);
	assert_int_equal(msg_rx_direct_done(&rx, 50000, &m), 0);
	assert_null(m);
	missing = msg_rx_direct(&rx, &dst);
	memcpy(dst, stream + 51000, missing);
	assert_int_equal(msg_rx_direct_done(&rx, missing, &m), 0);
	assert_non_null(m);
	assert_memory_equal(m->data, w->data, 100000);
	assert_int_equal(msg_rx_direct(&rx, &dst), 0);
	msg_free(m);
	msg_free(w);
	free(stream);
}

static void expect_rx_error(uint8_t *stream, size_t len, int err, const char *why)
{
	struct msg_rx rx;
	msg_rx_init(&rx, &limits);
	struct msg *m = NULL;
	ssize_t n = msg_rx_feed(&rx, stream, len, &m);
	assert_int_equal(n, err);
	assert_null(m);
	assert_string_equal(rx.why, why);
	msg_rx_reset(&rx);
}

static void test_corrupt_payload_and_data(void **state)
{
	(void)state;
	struct msg *w = sample(40, 1, 64, 8192);
	uint8_t stream[9000];
	size_t len = wire(w, stream);
	stream[MSG_HEADER_LEN + 3] ^= 0x80;
	expect_rx_error(stream, len, -EBADMSG, "bad payload CRC");
	stream[MSG_HEADER_LEN + 3] ^= 0x80;
	stream[len - 1] ^= 0x01;
	expect_rx_error(stream, len, -EBADMSG, "bad data CRC");
	stream[len - 1] ^= 0x01;
	/* A truncated frame is just incomplete: no message, no error. */
	struct msg_rx rx;
	msg_rx_init(&rx, &limits);
	struct msg *m;
	assert_int_equal(msg_rx_feed(&rx, stream, len - 1, &m), (ssize_t)len - 1);
	assert_null(m);
	msg_rx_reset(&rx); /* frees the half message */
	msg_free(w);
}

/* Receives the frame in STREAM whole; returns the message. */
static struct msg *receive(const uint8_t *stream, size_t len)
{
	struct msg_rx rx;
	msg_rx_init(&rx, &limits);
	struct msg *m = NULL;
	assert_int_equal(msg_rx_feed(&rx, stream, len, &m), (ssize_t)len);
	assert_non_null(m);
	msg_rx_reset(&rx);
	return m;
}

/* A data segment that is a multiple of 4 KiB arrives with the CRC of each
 * chunk (inline up to 32 chunks, allocated beyond); other lengths with
 * none. They stay readable after the application took the data. */
static void test_chunk_crcs_received(void **state)
{
	(void)state;
	const uint32_t lens[] = { 4096, 8192, 32 * 4096, 33 * 4096, 1 << 20, 4097, 100000, 100 };
	uint8_t *stream = malloc(MSG_HEADER_LEN + 64 + (1 << 20));
	assert_non_null(stream);
	for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
		struct msg *w = sample(40, k + 1, 64, lens[k]);
		assert_null(msg_chunk_crcs(w)); /* computed data: none known */
		size_t len = wire(w, stream);
		struct msg *m = receive(stream, len);
		const uint32_t *crc = msg_chunk_crcs(m);
		if (lens[k] % 4096) {
			assert_null(crc);
		} else {
			assert_non_null(crc);
			for (uint32_t i = 0; i < lens[k] / 4096; i++)
				assert_int_equal(crc[i], crc32c(0, w->data + i * 4096, 4096));
			/* The application takes the data; the CRCs are its too. */
			uint8_t *data = m->data;
			m->data = NULL;
			assert_null(msg_chunk_crcs(m));
			assert_int_equal(crc[lens[k] / 4096 - 1],
					 crc32c(0, data + lens[k] - 4096, 4096));
			free(data);
		}
		msg_free(m);
		msg_free(w);
	}
	free(stream);
}

/* A flipped byte anywhere in any chunk of a chunked data segment (inline
 * and allocated CRCs) is refused like before. */
static void test_chunk_crcs_corrupt_any_chunk(void **state)
{
	(void)state;
	const uint32_t lens[] = { 4096, 3 * 4096, 40 * 4096 };
	uint8_t *stream = malloc(MSG_HEADER_LEN + 64 + 40 * 4096);
	assert_non_null(stream);
	for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
		struct msg *w = sample(40, 7, 64, lens[k]);
		w->data[5] ^= 0xee; /* the pattern repeats every 256 bytes: not chunk 0 */
		size_t len = wire(w, stream);
		uint8_t *data = stream + MSG_HEADER_LEN + 64;
		for (uint32_t c = 0; c < lens[k] / 4096; c++) {
			const uint32_t at[] = { 0, 1234, 4095 };
			for (size_t j = 0; j < 3; j++) {
				data[c * 4096 + at[j]] ^= 0x20;
				expect_rx_error(stream, len, -EBADMSG, "bad data CRC");
				data[c * 4096 + at[j]] ^= 0x20;
			}
		}
		/* Two chunks swapped: each chunk's CRC is right, the order not. */
		if (lens[k] > 4096) {
			uint8_t tmp[4096];
			memcpy(tmp, data, 4096);
			memcpy(data, data + 4096, 4096);
			memcpy(data + 4096, tmp, 4096);
			expect_rx_error(stream, len, -EBADMSG, "bad data CRC");
		}
		msg_free(w);
	}
	free(stream);
}

static void noop_release(struct msg *msg)
{
	(void)msg;
}

/* A received data segment forwarded with its chunk CRCs is sealed from
 * them (the same data_crc as computing it) and received again intact;
 * msg_seal does use the carried CRCs, and forgets them with the data. */
static void test_chunk_crcs_forwarded(void **state)
{
	(void)state;
	uint8_t *stream = malloc(2 * (MSG_HEADER_LEN + 64 + 40 * 4096));
	assert_non_null(stream);
	struct msg *w = sample(40, 9, 64, 40 * 4096);
	size_t len = wire(w, stream);
	uint32_t computed = w->hdr.data_crc;
	struct msg *in = receive(stream, len);
	struct msg *fwd = msg_new(41, 10, 0);
	msg_borrow_data(fwd, in->data, in->hdr.data_len, noop_release, NULL);
	msg_set_chunk_crcs(fwd, msg_chunk_crcs(in));
	len = wire(fwd, stream);
	assert_int_equal(fwd->hdr.data_crc, computed);
	struct msg *again = receive(stream, len);
	assert_memory_equal(again->data, w->data, 40 * 4096);
	msg_free(again);
	msg_free(fwd);

#ifndef BASALT_CHECK_CARRIED_CRC /* where msg_seal asserts instead */
	/* Wrong carried CRCs are what goes on the wire: the seal did not
	 * read the data (a receiver refuses it). */
	uint32_t wrong[40];
	memcpy(wrong, msg_chunk_crcs(in), sizeof(wrong));
	wrong[5] ^= 1;
	fwd = msg_new(41, 11, 0);
	msg_borrow_data(fwd, in->data, in->hdr.data_len, noop_release, NULL);
	msg_set_chunk_crcs(fwd, wrong);
	len = wire(fwd, stream);
	assert_int_not_equal(fwd->hdr.data_crc, computed);
	expect_rx_error(stream, len, -EBADMSG, "bad data CRC");
	fwd->data = NULL;
	msg_free(fwd);
#endif
	/* Other data in the same message: the CRCs no longer apply. */
	fwd = msg_new(41, 12, 0);
	msg_borrow_data(fwd, in->data, in->hdr.data_len, noop_release, NULL);
	msg_set_chunk_crcs(fwd, msg_chunk_crcs(in));
	fwd->data = w->data;
	assert_null(msg_chunk_crcs(fwd));
	wire(fwd, stream);
	assert_int_equal(fwd->hdr.data_crc, computed);
	fwd->data = NULL;
	msg_free(fwd);
	msg_free(in);
	msg_free(w);
	free(stream);
}

static void count_release(struct msg *msg)
{
	(*(int *)msg->data_owner)++;
}

static void test_borrowed_data_released_once(void **state)
{
	(void)state;
	int released = 0;
	static uint8_t buf[4096];
	struct msg *m = msg_new(50, 1, 0);
	msg_borrow_data(m, buf, sizeof(buf), count_release, &released);
	msg_free(m);
	assert_int_equal(released, 1);
}

/* The owner's data_dest: lends LENT (of struct lend) for messages of
 * type 60 whose payload's first byte is 1. */
struct lend {
	uint8_t buf[100000];
	int asked, released;
};

static void lend_release(struct msg *msg)
{
	((struct lend *)msg->data_owner)->released++;
}

static void lend_dest(void *arg, struct msg *msg)
{
	struct lend *l = arg;
	l->asked++;
	assert_null(msg->data);
	if (msg->hdr.type == 60 && msg->hdr.payload_len && msg->payload[0] == 1)
		msg_borrow_data(msg, l->buf, msg->hdr.data_len, lend_release, l);
}

static void test_data_dest(void **state)
{
	(void)state;
	struct lend *l = calloc(1, sizeof(*l));
	struct msg *w = sample(60, 255, 8, 100000); /* payload[0] = 255 + 0: not lent */
	uint8_t *stream = malloc(200000);
	struct msg_rx rx;
	msg_rx_init(&rx, &limits);
	rx.data_dest = lend_dest;
	rx.data_dest_arg = l;
	struct msg *m;
	/* Not lent: received into an allocated segment as before. */
	size_t len = wire(w, stream);
	assert_int_equal(msg_rx_feed(&rx, stream, len, &m), (ssize_t)len);
	assert_non_null(m);
	assert_true(m->data != l->buf && l->asked == 1);
	msg_free(m);
	/* Lent: the data, partly copied and partly received directly, lands in
	 * the owner's buffer, which is released once the message is freed. */
	w->payload[0] = 1;
	len = wire(w, stream);
	assert_int_equal(msg_rx_feed(&rx, stream, 1000, &m), 1000);
	uint8_t *dst;
	size_t missing = msg_rx_direct(&rx, &dst);
	assert_ptr_equal(dst, l->buf + 1000 - MSG_HEADER_LEN - 8);
	memcpy(dst, stream + 1000, missing);
	assert_int_equal(msg_rx_direct_done(&rx, missing, &m), 0);
	assert_ptr_equal(m->data, l->buf);
	assert_memory_equal(l->buf, w->data, 100000);
	assert_int_equal(l->released, 0);
	msg_free(m);
	assert_int_equal(l->released, 1);
	/* Dropped half received, or for a bad data CRC: released once. */
	assert_int_equal(msg_rx_feed(&rx, stream, 5000, &m), 5000);
	msg_rx_reset(&rx);
	assert_int_equal(l->released, 2);
	stream[len - 1] ^= 1;
	assert_int_equal(msg_rx_feed(&rx, stream, len, &m), -EBADMSG);
	assert_string_equal(rx.why, "bad data CRC");
	assert_int_equal(l->released, 2);
	msg_rx_reset(&rx);
	assert_int_equal(l->released, 3);
	/* No data segment: not asked. */
	struct msg *e = sample(60, 1, 8, 0);
	len = wire(e, stream);
	assert_int_equal(msg_rx_feed(&rx, stream, len, &m), (ssize_t)len);
	assert_non_null(m);
	assert_int_equal(l->asked, 4);
	msg_free(m);
	msg_free(e);
	msg_free(w);
	free(stream);
	free(l);
}

static void test_data_pool(void **state)
{
	(void)state;
	/* A 128 KiB segment freed comes back for the next one of its class
	 * (65 KiB to 128 KiB), aligned and whole; a small one never pools. */
	struct msg *a = msg_new(MSG_TYPE_FIRST_USER, 1, 0);
	assert_int_equal(msg_alloc_data(a, 128u << 10), 0);
	uint8_t *first = a->data;
	assert_int_equal((uintptr_t)first % MSG_DATA_ALIGN, 0);
	memset(first, 0xa5, 128u << 10);
	msg_free(a);
	struct msg *b = msg_new(MSG_TYPE_FIRST_USER, 2, 0);
	assert_int_equal(msg_alloc_data(b, 100u << 10), 0);
	if (msg_data_pool_enabled())
		assert_ptr_equal(b->data, first);
	assert_int_equal(b->hdr.data_len, 100u << 10);
	/* The whole class size is there when it came from the pool. */
	memset(b->data, 0x5a, msg_data_pool_enabled() ? 128u << 10 : 100u << 10);
	/* Taken by its receiver (as the OSD takes write data): an ordinary
	 * allocation from then on, freed with free(), not pooled twice. */
	uint8_t *taken = b->data;
	b->data = NULL;
	msg_free(b);
	struct msg *c = msg_new(MSG_TYPE_FIRST_USER, 3, 0);
	assert_int_equal(msg_alloc_data(c, 128u << 10), 0);
	assert_ptr_not_equal(c->data, taken);
	/* Replaced by a buffer of the caller's: freed, not pooled. */
	uint8_t *pooled = c->data;
	c->data = malloc(4096);
	c->hdr.data_len = 4096;
	msg_free(c);
	free(taken);
	struct msg *d = msg_new(MSG_TYPE_FIRST_USER, 4, 0);
	assert_int_equal(msg_alloc_data(d, 4096), 0);
	assert_null(d->data_pool);
	msg_free(d);
	/* The pooled buffer C lost is the caller's to free. */
	free(pooled);
	/* Over 4 MiB: plain allocations. */
	struct msg *e = msg_new(MSG_TYPE_FIRST_USER, 5, 0);
	assert_int_equal(msg_alloc_data(e, (4u << 20) + 1), 0);
	assert_null(e->data_pool);
	msg_free(e);
}

static void test_hello_round_trip_and_errors(void **state)
{
	(void)state;
	struct msg_hello h = { .proto = MSG_HELLO_PROTO, .has_proof = true };
	snprintf(h.name, sizeof(h.name), "osd.12");
	memset(h.nonce, 0x11, sizeof(h.nonce));
	memset(h.proof, 0x22, sizeof(h.proof));
	struct msg *m = msg_hello_new(&h);
	assert_int_equal(m->hdr.type, MSG_TYPE_HELLO);
	struct msg_hello out;
	assert_int_equal(msg_hello_decode(m->payload, m->hdr.payload_len, &out), 0);
	assert_int_equal(out.proto, MSG_HELLO_PROTO);
	assert_string_equal(out.name, "osd.12");
	assert_true(out.has_proof);
	assert_memory_equal(out.nonce, h.nonce, MSG_NONCE_LEN);
	assert_memory_equal(out.proof, h.proof, MSG_PROOF_LEN);
	/* Every truncation fails; so does a trailing byte. */
	for (size_t len = 0; len < m->hdr.payload_len; len++)
		assert_int_equal(msg_hello_decode(m->payload, len, &out), -EBADMSG);
	uint8_t longer[256];
	memcpy(longer, m->payload, m->hdr.payload_len);
	longer[m->hdr.payload_len] = 0;
	assert_int_equal(msg_hello_decode(longer, m->hdr.payload_len + 1, &out), -EBADMSG);
	/* has_proof must be 0 or 1. */
	longer[m->hdr.payload_len - MSG_PROOF_LEN - 1] = 2;
	assert_int_equal(msg_hello_decode(longer, m->hdr.payload_len, &out), -EBADMSG);
	msg_free(m);
}

/* A thread that frees messages (into its cache, data into its pool) and
 * exits gives them back: under LeakSanitizer (the ASan run of the unit
 * tests) a cache lost with its thread is reported as a leak. */
static void *cache_fill(void *arg)
{
	(void)arg;
	struct msg *m[64];
	for (int i = 0; i < 64; i++) {
		m[i] = msg_new(1, (uint64_t)i, 16);
		assert_non_null(m[i]);
		assert_int_equal(msg_alloc_data(m[i], 1u << 16), 0);
	}
	for (int i = 0; i < 64; i++)
		msg_free(m[i]);
	return NULL;
}

static void test_thread_cache_freed_at_exit(void **state)
{
	(void)state;
	for (int round = 0; round < 3; round++) {
		pthread_t t;
		assert_int_equal(pthread_create(&t, NULL, cache_fill, NULL), 0);
		assert_int_equal(pthread_join(t, NULL), 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_round_trip),
		cmocka_unit_test(test_header_errors),
		cmocka_unit_test(test_parse_any_chunking),
		cmocka_unit_test(test_direct_data),
		cmocka_unit_test(test_corrupt_payload_and_data),
		cmocka_unit_test(test_borrowed_data_released_once),
		cmocka_unit_test(test_data_dest),
		cmocka_unit_test(test_hello_round_trip_and_errors),
		cmocka_unit_test(test_data_pool),
		cmocka_unit_test(test_chunk_crcs_received),
		cmocka_unit_test(test_chunk_crcs_corrupt_any_chunk),
		cmocka_unit_test(test_chunk_crcs_forwarded),
		cmocka_unit_test(test_thread_cache_freed_at_exit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
