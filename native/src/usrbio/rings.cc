#include "rings.h"

#include "../sealed_memfd.h"

#include <fcntl.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace threefs::usrbio {

namespace {

constexpr uint64_t kMaxDataBytes = uint64_t{1} << 40;
constexpr uint64_t kMaxFileOffset = (uint64_t{1} << 53) - 1;  // JS safe integers

void CheckShape(uint32_t entries, uint64_t data_bytes) {
  if (entries == 0 || entries > kMaxEntries || (entries & (entries - 1)) != 0)
    throw std::runtime_error("entries must be a power of two in 1.." + std::to_string(kMaxEntries));
  if (data_bytes == 0 || data_bytes > kMaxDataBytes)
    throw std::runtime_error("data size must be 1 B .. 1 TiB");
}

}  // namespace

std::shared_ptr<Mapping> CreateSharedRegion(uint64_t bytes) {
  if (bytes == 0 || bytes > kMaxDataBytes) throw std::runtime_error("region size must be 1 B .. 1 TiB");
  const SealedMemfd memfd = CreateSealedMemfd("threefs-region", bytes);
  return std::make_shared<Mapping>(memfd.fd, memfd.base, memfd.bytes);
}

Mapping::~Mapping() { ReleaseSealedMemfd({fd_, base_, size_}); }

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
  // Sealed (sealed_memfd.h): the daemon maps this file and must never fault on a page the
  // program cut away.
  const SealedMemfd memfd = CreateSealedMemfd("threefs-usrbio", layout_.total);
  map_ = std::make_shared<Mapping>(memfd.fd, memfd.base, memfd.bytes);
  Header* h = header();
  h->shape = Shape{kMagic, kVersion, entries, 0, layout_.data_offset, data_bytes};
  h->sq_head.value.store(0, std::memory_order_relaxed);
  h->sq_tail.value.store(0, std::memory_order_relaxed);
  h->cq_head.value.store(0, std::memory_order_relaxed);
  h->cq_waiting.value.store(0, std::memory_order_relaxed);
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

// ArmWakeup and Complete are the two halves of a store-then-load handshake (as Dekker's): each
// side stores its own word, then reads the other's, all sequentially consistent (which orders a
// store before a later load; no separate fence). At least one of them sees the other's store, so
// a completion is either reaped by the program's second look or rung for.
bool ProgramEnd::ArmWakeup() {
  Header* h = header();
  h->cq_waiting.value.store(1, std::memory_order_seq_cst);
  return h->cq_tail.value.load(std::memory_order_seq_cst) !=
         h->cq_head.value.load(std::memory_order_relaxed);
}

void ProgramEnd::DisarmWakeup() { header()->cq_waiting.value.store(0, std::memory_order_relaxed); }

DaemonEnd::DaemonEnd(int pid, int fd, uint32_t entries, uint64_t data_bytes,
                     uint64_t max_io_bytes)
    : entries_(entries), data_bytes_(data_bytes), max_io_bytes_(max_io_bytes) {
  CheckShape(entries, data_bytes);
  layout_ = LayoutOf(entries, data_bytes);
  const std::string path = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
  const SealedMemfd memfd = MapSealedFile(path, layout_.total, F_SEAL_SHRINK | F_SEAL_SEAL);
  map_ = std::make_shared<Mapping>(memfd.fd, memfd.base, memfd.bytes);
  Shape h{};
  std::memcpy(&h, memfd.base, sizeof h);
  if (h.magic == kMagic && h.version != kVersion)
    throw std::runtime_error("the region has layout version " + std::to_string(h.version) +
                             ", this daemon reads version " + std::to_string(kVersion) +
                             " (the program and the FUSE daemon come from different releases)");
  if (h.magic != kMagic || h.entries != entries ||
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

DaemonEnd::Posted DaemonEnd::Complete(const Cqe* cqes, size_t n) {
  int64_t space = CqSpace();
  if (space < 0 || n > static_cast<size_t>(space)) return Posted::kNoRoom;
  auto* slots = reinterpret_cast<Cqe*>(map_->base() + layout_.cq_offset);
  for (size_t i = 0; i < n; i++) slots[cq_tail_++ & (entries_ - 1)] = cqes[i];
  Header* h = header();
  h->cq_tail.value.store(cq_tail_, std::memory_order_seq_cst);
  // Checked before the exchange so a busy program's cache line is not written per batch.
  if (h->cq_waiting.value.load(std::memory_order_seq_cst) == 0) return Posted::kQuiet;
  return h->cq_waiting.value.exchange(0, std::memory_order_seq_cst) != 0 ? Posted::kWake
                                                                          : Posted::kQuiet;
}

}  // namespace threefs::usrbio
