// The two ends of a USRBIO region. ProgramEnd creates the sealed memfd and produces SQEs /
// consumes CQEs; DaemonEnd maps a program's memfd (through /proc/<pid>/fd/<n>), consumes SQEs
// (copied out, then validated) and produces CQEs. Mappings are shared_ptr-owned so a Buffer over
// the data area keeps the memory mapped until the last reference is gone.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ring_layout.h"

namespace threefs::usrbio {

/** One mmap of a whole region; unmapped (and its fd closed) when the last owner goes. */
class Mapping {
 public:
  Mapping(int fd, uint8_t* base, size_t size) : fd_(fd), base_(base), size_(size) {}
  ~Mapping();
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  uint8_t* base() const { return base_; }
  size_t size() const { return size_; }
  int fd() const { return fd_; }

 private:
  int fd_;
  uint8_t* base_;
  size_t size_;
};

/**
 * A plain sealed memfd of `bytes` bytes, mapped shared: memory this process lends to storage
 * servers on its host, which map it by /proc/<pid>/fd/<fd> and read straight into it.
 */
std::shared_ptr<Mapping> CreateSharedRegion(uint64_t bytes);

/** Negative errno for an SQE the daemon must refuse, 0 when it may run. */
int ValidateSqe(const Sqe& sqe, uint64_t data_bytes, uint64_t max_io_bytes);

class ProgramEnd {
 public:
  /** Throws std::runtime_error with the failing call's errno text. */
  ProgramEnd(uint32_t entries, uint64_t data_bytes);
  int fd() const { return map_->fd(); }
  std::shared_ptr<Mapping> mapping() const { return map_; }
  uint8_t* data() const { return map_->base() + layout_.data_offset; }
  uint64_t data_bytes() const { return data_bytes_; }
  uint64_t data_offset() const { return layout_.data_offset; }
  uint32_t entries() const { return entries_; }
  /** Queues one SQE (not yet visible to the daemon); false when the SQ is full. */
  bool Prepare(const Sqe& sqe);
  /** Publishes every prepared SQE; returns how many became visible. */
  uint32_t Submit();
  /** SQEs published but not yet taken by the daemon. */
  uint32_t Unconsumed() const;
  /** Moves up to `max` CQEs out of the ring. */
  size_t Reap(Cqe* out, size_t max);
  /**
   * Asks for a doorbell with the next CQEs, then looks again: true when CQEs are already there
   * (posted before the daemon could see the request, so nobody rang for them).
   */
  bool ArmWakeup();
  /** Withdraws the request (the program stopped waiting). */
  void DisarmWakeup();

 private:
  Header* header() const { return reinterpret_cast<Header*>(map_->base()); }
  std::shared_ptr<Mapping> map_;
  Layout layout_;
  uint32_t entries_;
  uint64_t data_bytes_;
  uint32_t local_tail_ = 0;  // prepared, not yet published
};

/** A taken SQE: its copy and the daemon's verdict (0 = run it, else negative errno). */
struct Taken {
  Sqe sqe;
  int error;
};

class DaemonEnd {
 public:
  /** Maps /proc/<pid>/fd/<fd>; throws std::runtime_error saying what is wrong with it. */
  DaemonEnd(int pid, int fd, uint32_t entries, uint64_t data_bytes, uint64_t max_io_bytes);
  std::shared_ptr<Mapping> mapping() const { return map_; }
  uint8_t* data() const { return map_->base() + layout_.data_offset; }
  uint64_t data_bytes() const { return data_bytes_; }
  uint64_t data_offset() const { return layout_.data_offset; }
  /**
   * Takes up to `max` SQEs; returns false (and takes nothing) when the program's indices are
   * impossible (a broken or hostile program: the caller drops the registration).
   */
  bool Take(size_t max, std::vector<Taken>* out);
  /** Free CQ slots, or -1 when the program's CQ head is impossible. */
  int64_t CqSpace() const;
  // Values as usrbio-native.ts's Posted: the addon hands them to JS as they are.
  enum class Posted : int { kNoRoom = 0, kQuiet = 1, kWake = 2 };
  /**
   * Writes CQEs and publishes them. kNoRoom (nothing written) when they do not fit (the caller
   * bounds this); kWake when the program asked for a doorbell (the request is used up).
   */
  Posted Complete(const Cqe* cqes, size_t n);

 private:
  Header* header() const { return reinterpret_cast<Header*>(map_->base()); }
  std::shared_ptr<Mapping> map_;
  Layout layout_;
  uint32_t entries_;
  uint64_t data_bytes_;
  uint64_t max_io_bytes_;
  uint32_t sq_head_ = 0;  // the daemon's own copies; the shared ones are only published
  uint32_t cq_tail_ = 0;
};

}  // namespace threefs::usrbio
