// Where batches run: io_uring on a dedicated thread, or (when the kernel refuses io_uring) a small
// pool of threads doing blocking syscalls. Either way the JS thread only enqueues.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "io_batch.h"

namespace threefs {

class IoBackend {
 public:
  // Called on an I/O thread when every op of a batch has a result.
  using Completion = std::function<void(IoBatch*)>;

  virtual ~IoBackend() = default;
  // Thread-safe; the batch stays owned by the caller until Completion runs.
  virtual void Submit(IoBatch* batch) = 0;
  // Lets batches already submitted finish, then stops the threads. Idempotent.
  virtual void Stop() = 0;
  virtual const char* Name() const = 0;
};

// Returns null and explains why in `why_not` when io_uring cannot be set up here.
std::unique_ptr<IoBackend> MakeUringBackend(unsigned queue_depth, IoBackend::Completion done,
                                            std::string* why_not);

std::unique_ptr<IoBackend> MakeThreadBackend(unsigned threads, IoBackend::Completion done);

}  // namespace threefs
