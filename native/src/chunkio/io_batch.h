// One batch of disk I/Os as the JS side submits it, and the work done on the I/O thread around
// each op: gathering write pieces into an aligned buffer, and CRC32C per granule of the bytes
// written or read (so JS never touches chunk bytes). Ops of a batch run concurrently, except that
// fsync/fdatasync are barriers: they start after every earlier op of the batch has completed, and
// later ops start after them (a write then its fdatasync is one batch).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "aligned_buffer.h"

namespace threefs {

enum class OpKind { kRead, kWrite, kFsync, kFdatasync, kFallocate };

// A slice of caller memory to write, or `zeros` bytes of zeros when data is null.
struct Piece {
  const uint8_t* data = nullptr;
  size_t length = 0;
};

struct IoBatch;

struct IoOp {
  IoBatch* batch = nullptr;  // the batch this op belongs to (set when the batch is submitted)
  OpKind kind = OpKind::kRead;
  int fd = -1;
  uint64_t offset = 0;
  uint64_t length = 0;  // bytes to read or write (writes are zero-padded up to it)
  int mode = 0;         // fallocate mode
  // write: the content, gathered in order; its total may be shorter than `length`.
  std::vector<Piece> pieces;
  // CRC32C per granule over the first `crc_length` bytes (reads: of what was read; writes: of the
  // content). granule 0 = no checksums.
  uint64_t granule = 0;
  uint64_t crc_length = 0;

  // A read's destination when the JS thread took it from the executor's block pool at submit
  // (pool_block != 0); otherwise the I/O thread fills it from the aligned-buffer pool.
  AlignedBuffer buffer;           // read destination or write bounce buffer
  uint32_t pool_block = 0;
  int64_t result = 0;             // bytes transferred, 0 for sync/fallocate, or -errno
  uint64_t transferred = 0;       // progress of a read/write that came back short
  std::vector<uint32_t> crcs;     // per-granule CRCs
  uint32_t crc = 0;               // CRC of the whole crc_length bytes

  // Gather reads (submitGather): once every granule of [0, crc_length) matches `expected`, bytes
  // [skip, skip + copy_length) of what was read belong at `gather_to`. `in_place` means `buffer`
  // already is that spot (page-aligned, nothing to skip), so nothing is copied; for a write, that
  // `buffer` is the caller's one piece (WritableInPlace). Either way it is not ours to release.
  uint8_t* gather_to = nullptr;
  uint64_t skip = 0;
  uint64_t copy_length = 0;
  bool in_place = false;
  std::vector<uint32_t> expected;
  int64_t mismatch = -1;  // the first granule whose CRC differed, or -1
};

struct IoBatch {
  std::vector<IoOp> ops;
  // The phase in progress: ops [phase_begin, phase_end), with `outstanding` not yet completed.
  size_t phase_begin = 0;
  size_t phase_end = 0;
  size_t outstanding = 0;
  void* owner = nullptr;  // the JS-side context that resolves the promise
};

inline bool IsBarrier(OpKind kind) { return kind == OpKind::kFsync || kind == OpKind::kFdatasync; }

// Advances `batch` to its next phase; returns false when every op has run.
bool OpenNextPhase(IoBatch& batch);

// Whether a write can go to the disk from its caller's memory: one page-aligned piece exactly as
// long as the (aligned) write. PrepareOp then points `buffer` at it and sets `in_place`.
bool WritableInPlace(const IoOp& op);

// Before submission: allocate the aligned buffer (unless a read already has one), gather write pieces, checksum writes.
// Returns 0 or -errno (the op then completes with that result without touching the disk).
int PrepareOp(IoOp& op);

// After completion: checksum what a read brought back; for a gather read, compare with the
// expected CRCs and, when they all match, copy the wanted bytes to their place.
void FinishOp(IoOp& op);

// Runs one op with blocking syscalls (the thread-pool backend, and ops io_uring refuses).
void RunOpBlocking(IoOp& op);

}  // namespace threefs
