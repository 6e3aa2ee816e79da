#include "write_slabs.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace threefs::fuse {

WriteSlabs& WriteSlabs::Process() {
  static WriteSlabs* pool = new WriteSlabs();  // never destroyed: see the header
  return *pool;
}

char* WriteSlabs::Acquire(size_t size) {
  if (size < kMinPooledBytes || size > kSlabBytes) return nullptr;
  std::lock_guard<std::mutex> lock(mutex_);
  if (!free_.empty()) {
    char* slab = free_.back();
    free_.pop_back();
    return slab;
  }
  if (all_.size() >= kMaxSlabs) return nullptr;
  char* slab = static_cast<char*>(std::aligned_alloc(4096, kSlabBytes));
  if (slab == nullptr) return nullptr;
  all_.push_back(slab);
  return slab;
}

void WriteSlabs::Release(char* slab) {
  std::lock_guard<std::mutex> lock(mutex_);
  // Invariant: only out slabs come back, once each (a double return would hand one slab to two
  // writes at the same time).
  if (std::find(all_.begin(), all_.end(), slab) == all_.end() ||
      std::find(free_.begin(), free_.end(), slab) != free_.end()) {
    std::fprintf(stderr, "threefs fuse: a write slab was returned that is not out\n");
    std::abort();
  }
  free_.push_back(slab);
}

bool WriteSlabs::Owns(const char* p) {
  std::lock_guard<std::mutex> lock(mutex_);
  return std::find(all_.begin(), all_.end(), p) != all_.end();
}

}  // namespace threefs::fuse
