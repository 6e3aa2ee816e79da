// Shared memory of local clients that chunk reads may land in directly (the same-host stand-in for
// RDMA writes into a client's registered buffer): a memfd another process created, opened through
// /proc/<pid>/fd/<n> and mapped MAP_SHARED. A region must be sealed against shrinking, so no
// client can make the mapping fault under an I/O. Mapping and unmapping happen on the JS thread;
// every gather batch that targets a region holds a reference, so a region unmapped while reads
// are landing in it stays mapped until the last of them completes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>

namespace threefs {

class RegionTable {
 public:
  struct Region {
    int fd = -1;
    uint8_t* base = nullptr;
    size_t bytes = 0;
    uint32_t refs = 0;
    bool unmapping = false;
  };

  // Maps the file at `path`, which must be a memfd-like regular file of exactly `bytes` bytes
  // sealed against shrinking; returns its id, or throws std::runtime_error saying why not.
  uint32_t Map(const std::string& path, size_t bytes);
  // Unmaps once no batch holds it. False when the id is unknown (or already being unmapped).
  bool Unmap(uint32_t id);
  // A reference for a batch in flight; nullptr when the id is unknown or being unmapped.
  Region* Acquire(uint32_t id);
  void Release(uint32_t id);

  size_t count() const { return regions_.size(); }
  size_t mappedBytes() const { return mapped_bytes_; }

  static RegionTable& Instance();

 private:
  void Destroy(uint32_t id, Region& region);
  std::unordered_map<uint32_t, Region> regions_;
  uint32_t next_id_ = 1;
  size_t mapped_bytes_ = 0;
};

}  // namespace threefs
