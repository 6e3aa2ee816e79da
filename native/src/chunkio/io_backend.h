// Where batches run: io_uring on a dedicated thread, or (when the kernel refuses io_uring) a small
// pool of threads doing blocking syscalls, where the JS thread only enqueues; or io_uring driven
// by the JS thread itself (MakeLoopUringBackend), for small reads whose hand-offs between threads
// would cost more than the reads.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "io_batch.h"

namespace threefs {

class IoBackend {
 public:
  // Called when every op of a batch has a result: on an I/O thread, or for a backend on the
  // caller's thread within Submit, Reap or Stop.
  using Completion = std::function<void(IoBatch*)>;

  virtual ~IoBackend() = default;
  // Thread-safe; the batch stays owned by the caller until Completion runs.
  virtual void Submit(IoBatch* batch) = 0;
  // Lets batches already submitted finish, then stops the threads. Idempotent.
  virtual void Stop() = 0;
  virtual const char* Name() const = 0;
  // A backend on the caller's thread: the descriptor that becomes readable when completions
  // wait, for the caller's event loop to poll, and Reap to call then. -1 for the others.
  virtual int CompletionFd() const { return -1; }
  virtual void Reap() {}
  // Batches submitted and not yet completed (kept by the backends on the caller's thread).
  virtual size_t Live() const { return 0; }
};

// Returns null and explains why in `why_not` when io_uring cannot be set up here.
std::unique_ptr<IoBackend> MakeUringBackend(unsigned queue_depth, IoBackend::Completion done,
                                            std::string* why_not);

// io_uring on the calling thread: Submit, Reap and Stop must all be called on that thread, and
// Submit never blocks; Stop waits for the batches in flight.
std::unique_ptr<IoBackend> MakeLoopUringBackend(unsigned queue_depth, IoBackend::Completion done,
                                                std::string* why_not);

std::unique_ptr<IoBackend> MakeThreadBackend(unsigned threads, IoBackend::Completion done);

}  // namespace threefs
