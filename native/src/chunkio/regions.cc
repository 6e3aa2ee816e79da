#include "regions.h"

#include <fcntl.h>

#include <stdexcept>

#include "../sealed_memfd.h"

namespace threefs {

namespace {
// Bounds a misbehaving client: more regions than this are refused.
constexpr size_t kMaxRegions = 4096;
}  // namespace

RegionTable& RegionTable::Instance() {
  static RegionTable table;
  return table;
}

uint32_t RegionTable::Map(const std::string& path, size_t bytes) {
  if (regions_.size() >= kMaxRegions) throw std::runtime_error("too many shared regions mapped");
  if (bytes == 0) throw std::runtime_error("a region needs at least one byte");
  const SealedMemfd memfd = MapSealedFile(path, bytes, F_SEAL_SHRINK);
  const uint32_t id = next_id_++;
  if (next_id_ == 0) next_id_ = 1;
  Region& region = regions_[id];
  region.fd = memfd.fd;
  region.base = memfd.base;
  region.bytes = memfd.bytes;
  mapped_bytes_ += bytes;
  return id;
}

bool RegionTable::Unmap(uint32_t id) {
  auto it = regions_.find(id);
  if (it == regions_.end() || it->second.unmapping) return false;
  it->second.unmapping = true;
  if (it->second.refs == 0) Destroy(id, it->second);
  return true;
}

RegionTable::Region* RegionTable::Acquire(uint32_t id) {
  auto it = regions_.find(id);
  if (it == regions_.end() || it->second.unmapping) return nullptr;
  it->second.refs++;
  return &it->second;
}

void RegionTable::Release(uint32_t id) {
  auto it = regions_.find(id);
  if (it == regions_.end() || it->second.refs == 0) return;
  it->second.refs--;
  if (it->second.refs == 0 && it->second.unmapping) Destroy(id, it->second);
}

void RegionTable::Destroy(uint32_t id, Region& region) {
  ReleaseSealedMemfd({region.fd, region.base, region.bytes});
  mapped_bytes_ -= region.bytes;
  regions_.erase(id);
}

}  // namespace threefs
