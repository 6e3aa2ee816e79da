// Recycled memory for the bytes of FUSE WRITE requests. Each write's bytes must leave libfuse's
// session buffer before its handler returns; copied into a fresh 1 MiB allocation, they cost the
// FUSE daemon page faults (the memory is new each time) and, as a new external Buffer per write,
// V8 answers every 64 MiB of them with a full mark-compact: together ~30% of its CPU on a
// sequential write. A slab is allocated once and reused: JS detaches the write's Buffer once
// the bytes are stored (or copied), which hands the slab back at once; a Buffer JS drops without
// detaching hands it back when it is collected. Fixed-size slabs, a capped count; past the cap, or
// for small writes, the caller allocates as before. Thread-safe, though today the bridge takes
// slabs and Buffer finalizers return them on the same thread, the event loop's. One pool per process, never destroyed (a Buffer may outlive every session).
#pragma once

#include <cstddef>
#include <mutex>
#include <vector>

namespace threefs::fuse {

class WriteSlabs {
 public:
  // Writes below this size use plain allocations: malloc serves them from its own free lists.
  static constexpr size_t kMinPooledBytes = 64 * 1024;
  // FUSE's largest write (256 pages of 4 KiB).
  static constexpr size_t kSlabBytes = 1 << 20;
  // 64 MiB: the FUSE daemon's default write-behind budget, so a full budget of 1 MiB writes fits.
  static constexpr size_t kMaxSlabs = 64;

  static WriteSlabs& Process();

  // A slab for `size` bytes, or nullptr (too small, too large, or every slab is out).
  char* Acquire(size_t size);
  // Hands a slab back. A pointer that is not an out slab is a bug: it aborts.
  void Release(char* slab);
  bool Owns(const char* p);

 private:
  WriteSlabs() = default;
  std::mutex mutex_;  // guards everything below
  std::vector<char*> all_;
  std::vector<char*> free_;
};

}  // namespace threefs::fuse
