/* libFuzzer target for what basalt-nbd decodes from a client: option
 * headers, GO/INFO data, meta-context queries and request headers.
 * Byte 0 picks the decoder. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "client/nbd/nbd_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > NBD_OPTION_MAX)
		return 0;
	uint8_t mode = data[0];
	data++;
	size--;
	static struct nbd_opt_go go;
	static char name[NBD_NAME_MAX + 1];
	uint8_t fixed[NBD_REQUEST_LEN] = { 0 };
	memcpy(fixed, data, size < sizeof(fixed) ? size : sizeof(fixed));
	switch (mode % 4) {
	case 0: {
		struct nbd_opt_header h;
		nbd_opt_header_decode(fixed, &h);
		break;
	}
	case 1:
		nbd_opt_go_decode(data, (uint32_t)size, &go);
		break;
	case 2: {
		bool alloc;
		uint32_t n;
		nbd_opt_meta_decode(data, (uint32_t)size, name, sizeof(name), &alloc, &n);
		break;
	}
	default: {
		struct nbd_request r;
		nbd_request_decode(fixed, &r);
	}
	}
	return 0;
}
