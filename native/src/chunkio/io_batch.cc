#include "io_batch.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>

#include "../crc32c.h"
#include "crc32c_combine.h"

namespace threefs {
namespace {

// Per-granule CRCs of `length` bytes; with `whole`, also the CRC of all of them (writes need it for
// the chunk checksum; reads only compare granules, so they skip the combine).
void ChecksumGranules(IoOp& op, const uint8_t* data, uint64_t length, bool whole) {
  op.crcs.clear();
  op.crc = 0;
  if (op.granule == 0) return;
  op.crcs.resize((length + op.granule - 1) / op.granule);
  Crc32cGranules(data, length, op.granule, op.crcs.data());
  if (whole) op.crc = Crc32cConcat(op.crcs.data(), op.crcs.size(), op.granule, length);
}

}  // namespace

bool OpenNextPhase(IoBatch& batch) {
  if (batch.phase_end >= batch.ops.size()) return false;
  batch.phase_begin = batch.phase_end;
  size_t end = batch.phase_begin + 1;
  if (!IsBarrier(batch.ops[batch.phase_begin].kind)) {
    while (end < batch.ops.size() && !IsBarrier(batch.ops[end].kind)) end++;
  }
  batch.phase_end = end;
  batch.outstanding = end - batch.phase_begin;
  return true;
}

bool WritableInPlace(const IoOp& op) {
  if (op.kind != OpKind::kWrite || op.pieces.size() != 1) return false;
  const Piece& piece = op.pieces[0];
  return piece.data != nullptr && piece.length == op.length && op.length % kDirectAlign == 0 &&
         reinterpret_cast<uintptr_t>(piece.data) % kDirectAlign == 0;
}

int PrepareOp(IoOp& op) {
  if (op.kind != OpKind::kRead && op.kind != OpKind::kWrite) return 0;
  if (op.kind == OpKind::kRead && op.buffer.data != nullptr) return 0;  // a pool block, or in place
  if (WritableInPlace(op)) {
    // A whole aligned write in one aligned piece (a 1 MiB chunk straight from the transport's
    // payload pool): O_DIRECT takes it as it is, no bounce copy. The caller's reference to the
    // piece keeps it alive until the batch completes, and the write only reads it.
    op.buffer = {const_cast<uint8_t*>(op.pieces[0].data), static_cast<size_t>(op.length)};
    op.in_place = true;
    ChecksumGranules(op, op.buffer.data, op.crc_length, true);
    return 0;
  }
  try {
    op.buffer = AcquireAligned(op.length);
  } catch (const std::bad_alloc&) {
    return -ENOMEM;
  }
  if (op.kind == OpKind::kWrite) {
    uint64_t at = 0;
    for (const Piece& piece : op.pieces) {
      if (piece.data != nullptr) {
        std::memcpy(op.buffer.data + at, piece.data, piece.length);
      } else {
        std::memset(op.buffer.data + at, 0, piece.length);
      }
      at += piece.length;
    }
    // Padding up to the aligned length: zeros, never stale pool memory, on disk.
    std::memset(op.buffer.data + at, 0, op.length - at);
    ChecksumGranules(op, op.buffer.data, op.crc_length, true);
  }
  return 0;
}

void FinishOp(IoOp& op) {
  if (op.kind != OpKind::kRead || op.result < 0) return;
  const uint64_t got = static_cast<uint64_t>(op.result);
  ChecksumGranules(op, op.buffer.data, op.crc_length < got ? op.crc_length : got, false);
  if (op.gather_to == nullptr) return;
  if (got < op.crc_length || got < op.skip + op.copy_length) return;  // short: the caller fails it
  for (size_t k = 0; k < op.crcs.size(); k++) {
    if (k >= op.expected.size() || op.crcs[k] != op.expected[k]) {
      op.mismatch = static_cast<int64_t>(k);
      return;
    }
  }
  if (!op.in_place) std::memcpy(op.gather_to, op.buffer.data + op.skip, op.copy_length);
}

void RunOpBlocking(IoOp& op) {
  switch (op.kind) {
    case OpKind::kRead:
    case OpKind::kWrite: {
      uint64_t done = 0;
      while (done < op.length) {
        const ssize_t n =
            op.kind == OpKind::kRead
                ? pread(op.fd, op.buffer.data + done, op.length - done, op.offset + done)
                : pwrite(op.fd, op.buffer.data + done, op.length - done, op.offset + done);
        if (n < 0) {
          if (errno == EINTR) continue;
          op.result = -errno;
          return;
        }
        if (n == 0) break;  // end of file
        done += static_cast<uint64_t>(n);
      }
      op.result = static_cast<int64_t>(done);
      return;
    }
    case OpKind::kFsync:
      op.result = fsync(op.fd) == 0 ? 0 : -errno;
      return;
    case OpKind::kFdatasync:
      op.result = fdatasync(op.fd) == 0 ? 0 : -errno;
      return;
    case OpKind::kFallocate:
      op.result = fallocate(op.fd, op.mode, static_cast<off_t>(op.offset),
                            static_cast<off_t>(op.length)) == 0
                      ? 0
                      : -errno;
      return;
  }
}

}  // namespace threefs
