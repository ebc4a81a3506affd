/* libFuzzer target for the store's on-device decoders: superblock,
 * metadata entry, journal batch header and its records. Replay runs them
 * on whatever a crash left on the device, so none may trust a length.
 * Byte 0 picks the decoder; in "fix-up" mode the harness rewrites the
 * checksums so the fuzzer reaches the fields behind them. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "osd/store_format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t mode = data[0];
	data++;
	size--;
	uint8_t *buf = calloc(1, size > 8192 ? size : 8192);
	memcpy(buf, data, size);
	switch (mode % 3) {
	case 0: {
		struct store_sb sb;
		if (mode & 0x80)
			le_store32(buf + STORE_SB_SIZE - 4, crc32c(0, buf, STORE_SB_SIZE - 4));
		store_sb_decode(buf, &sb);
		break;
	}
	case 1: {
		struct store_entry e;
		uint32_t chunks = (mode & 0x40) ? 256 : 32;
		uint32_t esize = store_entry_size(chunks, 512);
		if (mode & 0x80)
			le_store32(buf + esize - 4, crc32c(0, buf, esize - 4));
		store_entry_decode(buf, chunks, esize, le_load64(buf + 44), &e);
		break;
	}
	default: {
		struct store_batch b;
		if (size >= STORE_BATCH_HEADER_LEN && (mode & 0x80)) {
			uint32_t hl = le_load32(buf + 24);
			if (hl >= STORE_BATCH_HEADER_LEN && hl <= size) {
				le_store32(buf, STORE_JOURNAL_MAGIC);
				memset(buf + 40, 0, 4);
				le_store32(buf + 40, crc32c(0, buf, hl));
			}
		}
		if (store_batch_decode(buf, size, 32, &b) == 0) {
			struct dec d;
			struct store_record r;
			dec_init(&d, buf + STORE_BATCH_HEADER_LEN, b.header_len - STORE_BATCH_HEADER_LEN);
			while (store_record_next(&d, 32, &r) == 1)
				for (uint32_t i = 0; i < r.nchunks; i++)
					(void)store_record_crc(&r, i);
		}
		break;
	}
	}
	free(buf);
	return 0;
}
