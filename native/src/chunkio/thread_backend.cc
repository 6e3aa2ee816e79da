// The fallback backend: each thread takes a whole batch and runs its ops in order with blocking
// syscalls (in order satisfies the barrier rule trivially).
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "io_backend.h"

namespace threefs {
namespace {

class ThreadBackend : public IoBackend {
 public:
  ThreadBackend(unsigned threads, Completion done) : done_(std::move(done)) {
    for (unsigned i = 0; i < threads; i++) workers_.emplace_back([this] { Loop(); });
  }
  ~ThreadBackend() override { Stop(); }

  void Submit(IoBatch* batch) override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back(batch);
    }
    wake_.notify_one();
  }

  void Stop() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) return;
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& worker : workers_) worker.join();
  }

  const char* Name() const override { return "threads"; }

 private:
  void Loop() {
    while (true) {
      IoBatch* batch = nullptr;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping, and everything submitted has run
        batch = queue_.front();
        queue_.pop_front();
      }
      for (IoOp& op : batch->ops) {
        const int prepared = PrepareOp(op);
        if (prepared < 0) {
          op.result = prepared;
          continue;
        }
        RunOpBlocking(op);
        FinishOp(op);
      }
      done_(batch);
    }
  }

  Completion done_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<IoBatch*> queue_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace

std::unique_ptr<IoBackend> MakeThreadBackend(unsigned threads, IoBackend::Completion done) {
  return std::make_unique<ThreadBackend>(threads == 0 ? 1 : threads, std::move(done));
}

}  // namespace threefs
