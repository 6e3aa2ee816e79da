// See unflushed_writes.h.
#include "unflushed_writes.h"

#include <cstdlib>

namespace threefs::fuse {

namespace {
// Covering's answer when nothing is tracked reliably: go to JS, and note nothing afterwards.
constexpr uint64_t kUntracked = UINT64_MAX;
}  // namespace

void UnflushedWrites::Wrote(uint64_t ino) {
  auto it = inodes_.find(ino);
  if (it != inodes_.end()) {
    it->second = ++lastGeneration_;
  } else if (inodes_.size() < kMaxTracked) {
    inodes_.emplace(ino, ++lastGeneration_);
  } else {
    overflowed_ = true;
  }
}

uint64_t UnflushedWrites::Covering(uint64_t ino) {
  flushes_++;
  if (overflowed_) return kUntracked;
  auto it = inodes_.find(ino);
  if (it == inodes_.end()) {
    answeredHere_++;
    return 0;
  }
  return it->second;
}

void UnflushedWrites::Flushed(uint64_t ino, uint64_t generation) {
  if (generation == 0 || generation == kUntracked) return;
  if (generation > lastGeneration_) std::abort();  // a flush cannot cover writes never seen
  auto it = inodes_.find(ino);
  // Gone: another flush covered it. Newer: writes came in while JS flushed; the next flush
  // sends them.
  if (it != inodes_.end() && it->second <= generation) inodes_.erase(it);
}

}  // namespace threefs::fuse
