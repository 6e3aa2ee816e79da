// CRC32C of a concatenation from the CRCs of its parts, without the bytes. The engine keeps one
// CRC per granule of a chunk (so a 4 KiB read verifies 4 KiB, not the whole chunk) and derives the
// whole-chunk CRC the CRAQ protocol compares from them.
#pragma once

#include <cstddef>
#include <cstdint>

namespace threefs {

// crc32c(a || b) from crc32c(a), crc32c(b) and the length of b (zlib's crc32_combine method over
// GF(2), with the Castagnoli polynomial).
uint32_t Crc32cCombine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

// CRC of `length` bytes cut into granules of `granule` bytes (the last one may be partial), given
// the CRC of each granule. `count` must equal ceil(length / granule).
uint32_t Crc32cConcat(const uint32_t* crcs, size_t count, uint64_t granule, uint64_t length);

}  // namespace threefs
