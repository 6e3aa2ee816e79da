// Which inodes have had WRITE requests since their last successful FLUSH, so that a FLUSH of an
// inode with none (close(2) of a file that was only created, opened for write and left alone, or
// only read) is answered in native code instead of a round trip through JS, which would find
// nothing to send. Per inode, not per handle: JS buffers writes per inode, and its flush sends
// every handle's buffered bytes, so a write through any handle makes the next flush go to JS.
// Generations, not a flag: writes that arrive while JS flushes are not covered by that flush. One
// counter for all inodes, so an entry dropped and made again never reuses a generation that a
// late flush reply still names.
// Bounded: past kMaxTracked inodes nothing is answered here any more (correct, only slower).
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>

namespace threefs::fuse {

class UnflushedWrites {
 public:
  static constexpr size_t kMaxTracked = 1 << 16;

  // A WRITE for `ino` arrived (called before JS can see it).
  void Wrote(uint64_t ino);
  // A FLUSH for `ino` arrived: 0 when nothing was written since the last successful flush (the
  // FLUSH may be answered at once), else the write generation a successful JS flush covers.
  uint64_t Covering(uint64_t ino);
  // JS flushed `ino` successfully, covering writes up to `generation` (from Covering).
  void Flushed(uint64_t ino, uint64_t generation);
  size_t Tracked() const { return inodes_.size(); }
  // Every FLUSH the kernel sent (each one asks Covering), and those answered without JS.
  uint64_t Flushes() const { return flushes_; }
  uint64_t AnsweredHere() const { return answeredHere_; }

 private:
  // Only the event loop's thread calls in (fuse_bridge.h), so nothing here is locked.
  uint64_t flushes_ = 0;
  uint64_t answeredHere_ = 0;
  uint64_t lastGeneration_ = 0;
  // inode -> generation of its latest write not yet covered by a successful flush
  std::unordered_map<uint64_t, uint64_t> inodes_;
  // An inode could not be tracked: from then on every FLUSH goes to JS.
  bool overflowed_ = false;
};

}  // namespace threefs::fuse
