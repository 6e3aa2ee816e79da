// Page-aligned memory for O_DIRECT, recycled through a bounded pool so a steady stream of 1 MiB
// I/Os does not fault in fresh pages for every request.
#pragma once

#include <cstddef>
#include <cstdint>

namespace threefs {

constexpr size_t kDirectAlign = 4096;

struct AlignedBuffer {
  uint8_t* data = nullptr;
  size_t capacity = 0;  // a power of two >= kDirectAlign, what the pool files it under
};

// Memory of at least `size` bytes aligned to kDirectAlign; throws std::bad_alloc when out of memory.
AlignedBuffer AcquireAligned(size_t size);

// Returns memory to the pool (or frees it when the pool is over its byte bound). Thread-safe.
void ReleaseAligned(AlignedBuffer buffer);

}  // namespace threefs
