// Layout of one USRBIO shared region (a sealed memfd created by the program, mapped by the
// program and the FUSE daemon): a header with the four ring indices on their own cache lines,
// the submission entries, the completion entries, then the data area. Both rings are
// single-producer single-consumer: the program produces SQEs and consumes CQEs, the daemon
// consumes SQEs and produces CQEs. Indices are free-running uint32 counters (slot = index %
// entries). The daemon never trusts anything in the region: sizes come from registration and
// the file's own size, indices are range-checked, and every SQE is copied out before it is
// validated, so a program rewriting memory under the daemon can only hurt itself.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace threefs::usrbio {

constexpr uint32_t kMagic = 0x33465342;  // "3FSB"
constexpr uint32_t kVersion = 2;  // 2: cq_waiting
constexpr size_t kPage = 4096;
constexpr uint32_t kMaxEntries = 4096;

enum Op : uint32_t { kOpRead = 1, kOpWrite = 2 };

struct alignas(64) Index {
  std::atomic<uint32_t> value;
};

/** The shape of the region as the program wrote it (the daemon compares, never trusts). */
struct Shape {
  uint32_t magic;
  uint32_t version;
  uint32_t entries;
  uint32_t reserved;
  uint64_t data_offset;
  uint64_t data_bytes;
};

struct Header {
  Shape shape;
  alignas(64) Index sq_head;  // written by the daemon
  Index sq_tail;              // written by the program
  Index cq_head;              // written by the program
  Index cq_tail;              // written by the daemon
  // Nonzero while the program waits for CQEs and wants a doorbell; the daemon clears it when it
  // rings. Completions posted while the program is busy cost no socket write on either side.
  Index cq_waiting;  // set by the program, cleared by either side
};
static_assert(sizeof(Header) <= kPage, "header must fit its page");
static_assert(std::atomic<uint32_t>::is_always_lock_free, "ring indices must be lock-free");

struct Sqe {
  uint32_t op;
  uint32_t file;
  uint64_t file_offset;
  uint64_t length;
  uint64_t buf_offset;
  uint64_t user_data;
};

struct Cqe {
  uint64_t user_data;
  int64_t result;
};

inline size_t RoundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }

/** Byte offsets of the parts of a region with `entries` slots and `data_bytes` of data. */
struct Layout {
  size_t sq_offset;
  size_t cq_offset;
  size_t data_offset;
  size_t total;
};

inline Layout LayoutOf(uint32_t entries, size_t data_bytes) {
  Layout l{};
  l.sq_offset = kPage;
  l.cq_offset = l.sq_offset + RoundUp(sizeof(Sqe) * entries, kPage);
  l.data_offset = l.cq_offset + RoundUp(sizeof(Cqe) * entries, kPage);
  l.total = l.data_offset + RoundUp(data_bytes, kPage);
  return l;
}

}  // namespace threefs::usrbio
