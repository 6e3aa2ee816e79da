#include "rings.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace threefs::usrbio {

namespace {

std::runtime_error SysError(const std::string& what) {
  return std::runtime_error(what + ": " + std::strerror(errno));
}

constexpr uint64_t kMaxDataBytes = uint64_t{1} << 40;
constexpr uint64_t kMaxFileOffset = (uint64_t{1} << 53) - 1;  // JS safe integers

uint8_t* MapShared(int fd, size_t size) {
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return nullptr;
  return static_cast<uint8_t*>(p);
}

void CheckShape(uint32_t entries, uint64_t data_bytes) {
  if (entries == 0 || entries > kMaxEntries || (entries & (entries - 1)) != 0)
    throw std::runtime_error("entries must be a power of two in 1.." + std::to_string(kMaxEntries));
  if (data_bytes == 0 || data_bytes > kMaxDataBytes)
    throw std::runtime_error("data size must be 1 B .. 1 TiB");
}

}  // namespace

std::shared_ptr<Mapping> CreateSharedRegion(uint64_t bytes) {
  if (bytes == 0 || bytes > kMaxDataBytes) throw std::runtime_error("region size must be 1 B .. 1 TiB");
  int fd = memfd_create("threefs-region", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) throw SysError("memfd_create");
  // Sealed like the rings: whoever maps it must never fault on a page cut away under them.
  if (ftruncate(fd, static_cast<off_t>(bytes)) != 0 ||
      fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    auto err = SysError("sizing and sealing the memfd");
    close(fd);
    throw err;
  }
  uint8_t* base = MapShared(fd, bytes);
  if (base == nullptr) {
    auto err = SysError("mmap of the memfd");
    close(fd);
    throw err;
  }
  return std::make_shared<Mapping>(fd, base, bytes);
}

Mapping::~Mapping() {
  if (base_ != nullptr) munmap(base_, size_);
  if (fd_ >= 0) close(fd_);
}

int ValidateSqe(const Sqe& sqe, uint64_t data_bytes, uint64_t max_io_bytes) {
  if (sqe.op != kOpRead && sqe.op != kOpWrite) return -EINVAL;
  if (sqe.length == 0 || sqe.length > max_io_bytes) return -EINVAL;
  if (sqe.buf_offset > data_bytes || sqe.length > data_bytes - sqe.buf_offset) return -EFAULT;
  if (sqe.file_offset > kMaxFileOffset || sqe.length > kMaxFileOffset - sqe.file_offset)
    return -EFBIG;
  return 0;
}

ProgramEnd::ProgramEnd(uint32_t entries, uint64_t data_bytes)
    : entries_(entries), data_bytes_(data_bytes) {
  CheckShape(entries, data_bytes);
  layout_ = LayoutOf(entries, data_bytes);
  int fd = memfd_create("threefs-usrbio", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) throw SysError("memfd_create");
  // Sealed against shrinking: the daemon maps this file and must never fault on a page the
  // program cut away (SIGBUS would kill the daemon); growing and resealing are refused too.
  if (ftruncate(fd, static_cast<off_t>(layout_.total)) != 0 ||
      fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    auto err = SysError("sizing and sealing the memfd");
    close(fd);
    throw err;
  }
  uint8_t* base = MapShared(fd, layout_.total);
  if (base == nullptr) {
    auto err = SysError("mmap of the memfd");
    close(fd);
    throw err;
  }
  map_ = std::make_shared<Mapping>(fd, base, layout_.total);
  Header* h = header();
  h->shape = Shape{kMagic, kVersion, entries, 0, layout_.data_offset, data_bytes};
  h->sq_head.value.store(0, std::memory_order_relaxed);
  h->sq_tail.value.store(0, std::memory_order_relaxed);
  h->cq_head.value.store(0, std::memory_order_relaxed);
  h->cq_tail.value.store(0, std::memory_order_release);
}

bool ProgramEnd::Prepare(const Sqe& sqe) {
  uint32_t head = header()->sq_head.value.load(std::memory_order_acquire);
  if (local_tail_ - head >= entries_) return false;
  auto* slots = reinterpret_cast<Sqe*>(map_->base() + layout_.sq_offset);
  slots[local_tail_ & (entries_ - 1)] = sqe;
  local_tail_++;
  return true;
}

uint32_t ProgramEnd::Submit() {
  uint32_t published = header()->sq_tail.value.load(std::memory_order_relaxed);
  header()->sq_tail.value.store(local_tail_, std::memory_order_release);
  return local_tail_ - published;
}

uint32_t ProgramEnd::Unconsumed() const {
  return header()->sq_tail.value.load(std::memory_order_relaxed) -
         header()->sq_head.value.load(std::memory_order_acquire);
}

size_t ProgramEnd::Reap(Cqe* out, size_t max) {
  Header* h = header();
  uint32_t head = h->cq_head.value.load(std::memory_order_relaxed);
  uint32_t tail = h->cq_tail.value.load(std::memory_order_acquire);
  auto* slots = reinterpret_cast<const Cqe*>(map_->base() + layout_.cq_offset);
  size_t n = 0;
  while (head != tail && n < max) out[n++] = slots[head++ & (entries_ - 1)];
  h->cq_head.value.store(head, std::memory_order_release);
  return n;
}

DaemonEnd::DaemonEnd(int pid, int fd, uint32_t entries, uint64_t data_bytes,
                     uint64_t max_io_bytes)
    : entries_(entries), data_bytes_(data_bytes), max_io_bytes_(max_io_bytes) {
  CheckShape(entries, data_bytes);
  layout_ = LayoutOf(entries, data_bytes);
  std::string path = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
  int own = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (own < 0) throw SysError("open " + path);
  auto fail = [own](const std::string& why) {
    close(own);
    return std::runtime_error(why);
  };
  struct stat st {};
  if (fstat(own, &st) != 0) throw fail("fstat of the region failed");
  if (!S_ISREG(st.st_mode)) throw fail("the region is not a memfd");
  int seals = fcntl(own, F_GET_SEALS);
  if (seals < 0 || (seals & F_SEAL_SHRINK) == 0 || (seals & F_SEAL_SEAL) == 0)
    throw fail("the region must be a memfd sealed against shrinking (F_SEAL_SHRINK|F_SEAL_SEAL)");
  if (static_cast<uint64_t>(st.st_size) != layout_.total)
    throw fail("the region's size " + std::to_string(st.st_size) + " is not the " +
               std::to_string(layout_.total) + " bytes its shape needs");
  uint8_t* base = MapShared(own, layout_.total);
  if (base == nullptr) throw fail(std::string("mmap of the region: ") + std::strerror(errno));
  map_ = std::make_shared<Mapping>(own, base, layout_.total);
  Shape h{};
  std::memcpy(&h, base, sizeof h);
  if (h.magic != kMagic || h.version != kVersion || h.entries != entries ||
      h.data_offset != layout_.data_offset || h.data_bytes != data_bytes)
    throw std::runtime_error("the region's header does not match its registration");
  sq_head_ = header()->sq_head.value.load(std::memory_order_acquire);
  cq_tail_ = header()->cq_tail.value.load(std::memory_order_acquire);
  if (sq_head_ != 0 || cq_tail_ != 0)
    throw std::runtime_error("the region's rings are not fresh (registered twice?)");
}

bool DaemonEnd::Take(size_t max, std::vector<Taken>* out) {
  uint32_t tail = header()->sq_tail.value.load(std::memory_order_acquire);
  uint32_t ready = tail - sq_head_;
  if (ready > entries_) return false;
  auto* slots = reinterpret_cast<const Sqe*>(map_->base() + layout_.sq_offset);
  size_t n = ready < max ? ready : max;
  for (size_t i = 0; i < n; i++) {
    Taken t{};
    std::memcpy(&t.sqe, &slots[sq_head_ & (entries_ - 1)], sizeof(Sqe));  // copy, then check
    t.error = ValidateSqe(t.sqe, data_bytes_, max_io_bytes_);
    out->push_back(t);
    sq_head_++;
  }
  header()->sq_head.value.store(sq_head_, std::memory_order_release);
  return true;
}

int64_t DaemonEnd::CqSpace() const {
  uint32_t head = header()->cq_head.value.load(std::memory_order_acquire);
  uint32_t used = cq_tail_ - head;
  if (used > entries_) return -1;
  return entries_ - used;
}

bool DaemonEnd::Complete(const Cqe* cqes, size_t n) {
  int64_t space = CqSpace();
  if (space < 0 || n > static_cast<size_t>(space)) return false;
  auto* slots = reinterpret_cast<Cqe*>(map_->base() + layout_.cq_offset);
  for (size_t i = 0; i < n; i++) slots[cq_tail_++ & (entries_ - 1)] = cqes[i];
  header()->cq_tail.value.store(cq_tail_, std::memory_order_release);
  return true;
}

}  // namespace threefs::usrbio
