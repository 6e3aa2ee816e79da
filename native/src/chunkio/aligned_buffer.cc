#include "aligned_buffer.h"

#include <array>
#include <cstdlib>
#include <mutex>
#include <new>
#include <vector>

namespace threefs {
namespace {

// Buckets 2^12 .. 2^27 (4 KiB .. 128 MiB); bigger requests bypass the pool.
constexpr size_t kMinShift = 12;
constexpr size_t kBuckets = 16;
// What the pool may hold idle in total: enough for a few hundred 1 MiB requests in flight.
constexpr size_t kMaxPooledBytes = size_t{256} << 20;

struct Pool {
  std::mutex mutex;
  std::array<std::vector<uint8_t*>, kBuckets> free;
  size_t pooled_bytes = 0;
};

Pool& ThePool() {
  static Pool* pool = new Pool();  // never destroyed: finalizers may run during exit
  return *pool;
}

size_t BucketOf(size_t capacity) {
  size_t shift = kMinShift;
  while ((size_t{1} << shift) < capacity) shift++;
  return shift - kMinShift;
}

size_t RoundCapacity(size_t size) {
  size_t capacity = kDirectAlign;
  while (capacity < size) capacity <<= 1;
  return capacity;
}

}  // namespace

AlignedBuffer AcquireAligned(size_t size) {
  const size_t capacity = RoundCapacity(size == 0 ? 1 : size);
  const size_t bucket = BucketOf(capacity);
  if (bucket < kBuckets) {
    Pool& pool = ThePool();
    std::lock_guard<std::mutex> lock(pool.mutex);
    auto& list = pool.free[bucket];
    if (!list.empty()) {
      uint8_t* data = list.back();
      list.pop_back();
      pool.pooled_bytes -= capacity;
      return AlignedBuffer{data, capacity};
    }
  }
  void* memory = nullptr;
  if (posix_memalign(&memory, kDirectAlign, capacity) != 0) throw std::bad_alloc();
  return AlignedBuffer{static_cast<uint8_t*>(memory), capacity};
}

void ReleaseAligned(AlignedBuffer buffer) {
  if (buffer.data == nullptr) return;
  const size_t bucket = BucketOf(buffer.capacity);
  if (bucket < kBuckets) {
    Pool& pool = ThePool();
    std::lock_guard<std::mutex> lock(pool.mutex);
    if (pool.pooled_bytes + buffer.capacity <= kMaxPooledBytes) {
      pool.free[bucket].push_back(buffer.data);
      pool.pooled_bytes += buffer.capacity;
      return;
    }
  }
  free(buffer.data);
}

}  // namespace threefs
