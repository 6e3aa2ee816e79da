// The io_uring backend, in one of two modes. On its own thread: that thread owns the ring, new
// batches arrive through a mutex-guarded list and an eventfd that the ring itself polls, so the
// thread sleeps in one place (waiting for completions) and still wakes for new work. On the
// caller's thread (MakeLoopUringBackend): Submit puts the ops in the ring and returns, the ring
// signals its eventfd for every completion, and the caller's event loop polls that descriptor and
// calls Reap. No thread is woken on either side of the I/O, which on a small machine costs more
// than a 4 KiB read itself. Either way, ops of a batch's current phase are submitted together; a
// short read/write is resubmitted for the remainder.
#include <liburing.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "io_backend.h"

namespace threefs {
namespace {

// user_data of the eventfd poll; ops use their own address, never null.
constexpr uint64_t kWakeTag = 0;

class UringBackend : public IoBackend {
 public:
  UringBackend(unsigned depth, Completion done, bool on_caller_thread)
      : depth_(depth), done_(std::move(done)), on_caller_thread_(on_caller_thread) {}

  ~UringBackend() override {
    Stop();
    if (ring_ready_) io_uring_queue_exit(&ring_);
    if (event_fd_ >= 0) close(event_fd_);
  }

  // Sets up the ring and the eventfd; returns 0 or -errno.
  int Init() {
    event_fd_ = eventfd(0, EFD_CLOEXEC | (on_caller_thread_ ? EFD_NONBLOCK : 0));
    if (event_fd_ < 0) return -errno;
    const int rc = io_uring_queue_init(depth_, &ring_, 0);
    if (rc < 0) return rc;
    ring_ready_ = true;
    if (on_caller_thread_) return io_uring_register_eventfd(&ring_, event_fd_);
    thread_ = std::thread([this] { Loop(); });
    return 0;
  }

  void Submit(IoBatch* batch) override {
    if (on_caller_thread_) {
      assert(!stop_seen_);
      live_batches_++;
      batch->outstanding = 0;
      Advance(batch);
      FillRing();
      SubmitReady();
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      incoming_.push_back(batch);
    }
    Wake();
  }

  void Stop() override {
    if (on_caller_thread_) {
      // Nothing else will reap: wait here for what is in flight (a few disk reads at most).
      while (live_batches_ > 0) {
        FillRing();
        const int rc = io_uring_submit_and_wait(&ring_, 1);
        if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
          FailEverything(rc);
          break;
        }
        ReapCompletions();
      }
      stop_seen_ = true;
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_ || !thread_.joinable()) return;
      stopping_ = true;
    }
    Wake();
    thread_.join();
  }

  const char* Name() const override { return "io_uring"; }

  int CompletionFd() const override { return on_caller_thread_ ? event_fd_ : -1; }

  void Reap() override {
    assert(on_caller_thread_);
    uint64_t count = 0;
    ssize_t ignored = read(event_fd_, &count, sizeof count);  // non-blocking: may find nothing
    (void)ignored;
    ReapCompletions();
    FillRing();
    SubmitReady();
  }

  size_t Live() const override { return live_batches_; }

 private:
  void Wake() {
    const uint64_t one = 1;
    // A full counter (never in practice) still leaves the fd readable, which is all we need.
    ssize_t ignored = write(event_fd_, &one, sizeof one);
    (void)ignored;
  }

  void ArmWake() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) {
      io_uring_submit(&ring_);
      sqe = io_uring_get_sqe(&ring_);
    }
    io_uring_prep_poll_add(sqe, event_fd_, POLLIN);
    io_uring_sqe_set_data64(sqe, kWakeTag);
  }

  // Opens phases until one has ops in flight, or completes the batch.
  void Advance(IoBatch* batch) {
    while (batch->outstanding == 0) {
      if (!OpenNextPhase(*batch)) {
        live_batches_--;
        done_(batch);
        return;
      }
      for (size_t i = batch->phase_begin; i < batch->phase_end; i++) {
        IoOp& op = batch->ops[i];
        const int prepared = PrepareOp(op);
        if (prepared < 0) {
          op.result = prepared;
          batch->outstanding--;
        } else {
          ready_.push_back(&op);
        }
      }
    }
  }

  void Prep(io_uring_sqe* sqe, IoOp* op) {
    switch (op->kind) {
      case OpKind::kRead:
        io_uring_prep_read(sqe, op->fd, op->buffer.data + op->transferred,
                           static_cast<unsigned>(op->length - op->transferred),
                           op->offset + op->transferred);
        break;
      case OpKind::kWrite:
        io_uring_prep_write(sqe, op->fd, op->buffer.data + op->transferred,
                            static_cast<unsigned>(op->length - op->transferred),
                            op->offset + op->transferred);
        break;
      case OpKind::kFsync:
        io_uring_prep_fsync(sqe, op->fd, 0);
        break;
      case OpKind::kFdatasync:
        io_uring_prep_fsync(sqe, op->fd, IORING_FSYNC_DATASYNC);
        break;
      case OpKind::kFallocate:
        io_uring_prep_fallocate(sqe, op->fd, op->mode, op->offset, op->length);
        break;
    }
    io_uring_sqe_set_data(sqe, op);
  }

  void Complete(IoOp* op, int res) {
    const bool transfer = op->kind == OpKind::kRead || op->kind == OpKind::kWrite;
    if (transfer && res > 0) {
      op->transferred += static_cast<uint64_t>(res);
      if (op->transferred < op->length) {
        ready_.push_front(op);  // short transfer: go again for the rest
        return;
      }
    }
    op->result = res < 0 ? res : static_cast<int64_t>(transfer ? op->transferred : 0);
    FinishOp(*op);
    IoBatch* batch = op->batch;
    batch->outstanding--;
    Advance(batch);
  }

  void TakeIncoming() {
    std::deque<IoBatch*> taken;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      taken.swap(incoming_);
      if (stopping_) stop_seen_ = true;
    }
    for (IoBatch* batch : taken) {
      live_batches_++;
      batch->outstanding = 0;
      Advance(batch);
    }
  }

  // Moves ready ops into free ring slots (one slot stays free for the wake-up poll).
  void FillRing() {
    while (!ready_.empty() && in_ring_ + 1 < depth_) {
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      if (sqe == nullptr) break;
      IoOp* op = ready_.front();
      ready_.pop_front();
      Prep(sqe, op);
      in_ring_++;
    }
  }

  // The caller's thread never waits in the kernel. Entries a refused submit leaves in the queue
  // go with the next one (the next batch or completion); ops still waiting for a slot fail.
  void SubmitReady() {
    int rc = io_uring_submit(&ring_);
    if (rc == -EINTR) rc = io_uring_submit(&ring_);
    if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) FailEverything(rc);
  }

  // Completes every op the ring has finished. On its own thread, the wake-up poll's completion
  // also comes here: it is re-armed and new batches are taken.
  void ReapCompletions() {
    io_uring_cqe* cqe = nullptr;
    while (io_uring_peek_cqe(&ring_, &cqe) == 0) {
      const uint64_t tag = io_uring_cqe_get_data64(cqe);
      const int res = cqe->res;
      io_uring_cqe_seen(&ring_, cqe);
      if (tag == kWakeTag) {
        uint64_t count = 0;
        ssize_t ignored = read(event_fd_, &count, sizeof count);
        (void)ignored;
        ArmWake();
        TakeIncoming();
        continue;
      }
      in_ring_--;
      Complete(reinterpret_cast<IoOp*>(tag), res);
    }
  }

  void Loop() {
    ArmWake();
    TakeIncoming();
    while (true) {
      FillRing();
      if (stop_seen_ && live_batches_ == 0) return;
      const int rc = io_uring_submit_and_wait(&ring_, 1);
      if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
        FailEverything(rc);
        return;
      }
      ReapCompletions();
    }
  }

  // The ring itself broke (never seen in practice): answer every batch rather than hang callers.
  void FailEverything(int rc) {
    while (!ready_.empty()) {
      IoOp* op = ready_.front();
      ready_.pop_front();
      op->result = rc;
      op->batch->outstanding--;
      Advance(op->batch);
    }
  }

  const unsigned depth_;
  Completion done_;
  const bool on_caller_thread_;
  io_uring ring_{};
  bool ring_ready_ = false;
  int event_fd_ = -1;
  std::thread thread_;
  std::mutex mutex_;
  std::deque<IoBatch*> incoming_;  // guarded by mutex_
  bool stopping_ = false;          // guarded by mutex_
  // Owned by the ring thread (the caller's thread in that mode).
  bool stop_seen_ = false;
  std::deque<IoOp*> ready_;
  unsigned in_ring_ = 0;
  size_t live_batches_ = 0;
};

}  // namespace

namespace {

std::unique_ptr<IoBackend> Make(unsigned queue_depth, IoBackend::Completion done,
                                bool on_caller_thread, std::string* why_not) {
  auto backend = std::make_unique<UringBackend>(queue_depth < 8 ? 8 : queue_depth, std::move(done),
                                                on_caller_thread);
  const int rc = backend->Init();
  if (rc < 0) {
    if (why_not != nullptr) *why_not = std::string("io_uring setup: ") + std::strerror(-rc);
    return nullptr;
  }
  return backend;
}

}  // namespace

std::unique_ptr<IoBackend> MakeUringBackend(unsigned queue_depth, IoBackend::Completion done,
                                            std::string* why_not) {
  return Make(queue_depth, std::move(done), false, why_not);
}

std::unique_ptr<IoBackend> MakeLoopUringBackend(unsigned queue_depth, IoBackend::Completion done,
                                                std::string* why_not) {
  return Make(queue_depth, std::move(done), true, why_not);
}

}  // namespace threefs
