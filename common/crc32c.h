/* CRC32C (Castagnoli), the checksum of every frame and every 4 KiB of
 * stored data, computed by ISA-L. crc32c(0, buf, len) is the standard
 * value ("123456789" -> 0xe3069283); pass a previous result to chain. */
#ifndef BASALT_COMMON_CRC32C_H
#define BASALT_COMMON_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

#endif
