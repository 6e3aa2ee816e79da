#include "regions.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace threefs {

namespace {
// Bounds a misbehaving client: more regions than this are refused.
constexpr size_t kMaxRegions = 4096;

std::runtime_error Failure(const std::string& what) {
  return std::runtime_error(what + ": " + std::strerror(errno));
}
}  // namespace

RegionTable& RegionTable::Instance() {
  static RegionTable table;
  return table;
}

uint32_t RegionTable::Map(const std::string& path, size_t bytes) {
  if (regions_.size() >= kMaxRegions) throw std::runtime_error("too many shared regions mapped");
  if (bytes == 0) throw std::runtime_error("a region needs at least one byte");
  const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) throw Failure("open " + path);
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    close(fd);
    throw Failure("fstat " + path);
  }
  if (!S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) != bytes) {
    close(fd);
    throw std::runtime_error(path + " is not a region of " + std::to_string(bytes) + " bytes");
  }
  const int seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0 || (seals & F_SEAL_SHRINK) == 0) {
    close(fd);
    throw std::runtime_error(path + " is not sealed against shrinking (F_SEAL_SHRINK)");
  }
  void* base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    const std::runtime_error err = Failure("mmap " + path);
    close(fd);
    throw err;
  }
  const uint32_t id = next_id_++;
  if (next_id_ == 0) next_id_ = 1;
  Region& region = regions_[id];
  region.fd = fd;
  region.base = static_cast<uint8_t*>(base);
  region.bytes = bytes;
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
  munmap(region.base, region.bytes);
  close(region.fd);
  mapped_bytes_ -= region.bytes;
  regions_.erase(id);
}

}  // namespace threefs
