// CRC32C (Castagnoli, reflected polynomial 0x82F63B78): the checksum of every RPC frame and every
// chunk. Chaining works as with zlib's crc32: crc32c(b, crc32c(a)) == crc32c(a || b).
#pragma once

#include <cstddef>
#include <cstdint>

namespace threefs {

// Portable slicing-by-8 implementation; correct on every CPU.
uint32_t Crc32cPortable(uint32_t crc, const uint8_t* data, size_t len);

// SSE4.2 implementation. Only call when Crc32cHardwareAvailable() is true.
uint32_t Crc32cHardware(uint32_t crc, const uint8_t* data, size_t len);

bool Crc32cHardwareAvailable();

// The fastest implementation this CPU supports, chosen once at load time.
uint32_t Crc32c(uint32_t crc, const uint8_t* data, size_t len);

// The CRC of each `granule`-byte piece of data[0, length) (the last one may be shorter) into
// out[0, ceil(length / granule)): what a chunk keeps per granule. `granule` must be non-zero.
void Crc32cGranules(const uint8_t* data, size_t length, size_t granule, uint32_t* out);

}  // namespace threefs
