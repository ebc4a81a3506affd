/* libFuzzer target for the messenger's frame decoding: the receive parser
 * fed in input-chosen chunks (through the buffer and the direct data path),
 * and the HELLO payload decoder on every message that comes out.
 *
 * Input: byte 0 picks the mode and chunking; the rest is the stream. In
 * "fix-up" mode the harness rewrites the three CRCs of each frame so the
 * fuzzer reaches the states behind them (limits, types, payload, data). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/enc.h"
#include "common/msgr_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool fuzz_type_ok(uint16_t type, void *arg)
{
	(void)arg;
	return type < 200;
}

/* Rewrites the CRCs of each frame in BUF, in place. */
static void fix_up(uint8_t *buf, size_t len)
{
	size_t off = 0;
	while (len - off >= MSG_HEADER_LEN) {
		uint8_t *h = buf + off;
		le_store32(h, MSG_MAGIC);
		size_t rest = len - off - MSG_HEADER_LEN;
		uint32_t plen = le_load32(h + 16) % 1024;
		if (plen > rest)
			plen = (uint32_t)rest;
		rest -= plen;
		uint32_t dlen = le_load32(h + 20) % 200000;
		if (dlen > rest)
			dlen = (uint32_t)rest;
		le_store32(h + 16, plen);
		le_store32(h + 20, dlen);
		le_store32(h + 24, crc32c(0, h + MSG_HEADER_LEN, plen));
		le_store32(h + 28, crc32c(0, h + MSG_HEADER_LEN + plen, dlen));
		le_store32(h + 36, crc32c(0, h, MSG_HEADER_LEN - 4));
		off += MSG_HEADER_LEN + plen + dlen;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t mode = data[0];
	size--;
	uint8_t *buf = malloc(size ? size : 1);
	memcpy(buf, data + 1, size);
	if (mode & 1)
		fix_up(buf, size);
	struct msg_limits limits = { 4096, 1 << 20,
				     (mode & 2) ? fuzz_type_ok : NULL, NULL };
	size_t chunk_max = 1 + (size_t)(mode >> 2) * 37;
	struct msg_rx rx;
	msg_rx_init(&rx, &limits);
	size_t off = 0;
	while (off < size) {
		uint8_t *dst;
		size_t direct = msg_rx_direct(&rx, &dst);
		struct msg *m = NULL;
		if (direct && (mode & 0x80)) {
			size_t n = size - off < direct ? size - off : direct;
			memcpy(dst, buf + off, n);
			off += n;
			if (msg_rx_direct_done(&rx, n, &m) < 0)
				break;
		} else {
			size_t n = size - off < chunk_max ? size - off : chunk_max;
			ssize_t used = msg_rx_feed(&rx, buf + off, n, &m);
			if (used < 0)
				break;
			off += (size_t)used;
		}
		if (m) {
			struct msg_hello h;
			msg_hello_decode(m->payload, m->hdr.payload_len, &h);
			msg_free(m);
		}
	}
	msg_rx_reset(&rx);
	free(buf);
	return 0;
}
