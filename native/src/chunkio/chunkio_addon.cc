// JS binding of the chunk I/O executor. One submit() call carries a batch of ops and returns one
// Promise; the ops run on an I/O thread (io_uring, or a thread pool when the kernel refuses
// io_uring) and results come back through a thread-safe function. Small gather reads
// (loopReadBytes) instead go to a ring this thread drives, reaped from a uv_poll on its eventfd.
// Reads land in blocks of a pool whose ArrayBuffers live as long as the executor (a fresh
// ArrayBuffer per read would count as new external memory, and V8 answers every 64 MiB of that
// with a full mark-compact: at 1.5 GB/s of reads that was 40% of the CPU); JS views a block and
// calls releaseBlock once its views are
// collected (daemons/common/pooled-views.ts). Past the pool's bound a read gets a one-off external
// Buffer. Write pieces are JS Buffers kept alive by a reference to the ops array until the batch
// completes.
#include <napi.h>
#include <uv.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>

#include "../crc32c.h"
#include "../payload_pool.h"
#include "aligned_buffer.h"
#include "crc32c_combine.h"
#include "io_backend.h"
#include "regions.h"

namespace {

using threefs::IoBatch;
using threefs::IoOp;
using threefs::OpKind;

constexpr uint32_t kMaxOpsPerBatch = 4096;
constexpr uint64_t kMaxOpBytes = uint64_t{128} << 20;  // a 64 MiB chunk plus slack
constexpr double kMaxSafeInteger = 9007199254740991.0;

class Executor;

struct JsBatch {
  IoBatch io;
  Napi::Promise::Deferred deferred;
  Napi::Reference<Napi::Value> keep_alive;  // the ops array: owns every write piece
  // A gather batch (submitGather): every read lands in one destination, a pool block or, past
  // the pool's bound, a one-off aligned buffer; `gather_total` bytes of it are the reads' bytes.
  bool gather = false;
  uint32_t gather_region = 0;  // a client's shared region the reads land in (0: none)
  uint32_t gather_block = 0;
  threefs::AlignedBuffer gather_fallback;
  uint64_t gather_total = 0;
  explicit JsBatch(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
};

// Stride of a gather read's row: fd, offset, length, crcLength, granule, skip, copyLength,
// first expected CRC (its index in the expected array), and where its bytes go in a region
// (-1 without a region: right after the previous read's, in a pool block).
constexpr uint32_t kGatherFields = 9;
// A gather read whose bytes failed their checksum reports -(kChecksumMismatchBase + granule).
constexpr double kChecksumMismatchBase = 1000000;

void ResolveBatch(Napi::Env env, Napi::Function, Executor* executor, JsBatch* batch);
using Tsfn = Napi::TypedThreadSafeFunction<Executor, JsBatch, ResolveBatch>;

uint64_t UintField(const Napi::Object& object, const char* name, uint64_t max) {
  const Napi::Value value = object.Get(name);
  if (value.IsUndefined()) return 0;
  if (!value.IsNumber()) {
    throw Napi::TypeError::New(object.Env(), std::string("op.") + name + " must be a number");
  }
  const double number = value.As<Napi::Number>().DoubleValue();
  if (!(number >= 0) || number > kMaxSafeInteger || number != static_cast<double>(static_cast<uint64_t>(number)) ||
      static_cast<uint64_t>(number) > max) {
    throw Napi::RangeError::New(object.Env(), std::string("op.") + name +
                                                  " must be an integer in [0, " +
                                                  std::to_string(max) + "]");
  }
  return static_cast<uint64_t>(number);
}

IoOp ParseOp(const Napi::Value& value) {
  Napi::Env env = value.Env();
  if (!value.IsObject()) throw Napi::TypeError::New(env, "each op must be an object");
  const Napi::Object object = value.As<Napi::Object>();
  IoOp op;
  const uint64_t kind = UintField(object, "kind", 4);
  op.kind = static_cast<OpKind>(kind);
  op.fd = static_cast<int>(UintField(object, "fd", INT32_MAX));
  op.offset = UintField(object, "offset", static_cast<uint64_t>(kMaxSafeInteger));
  op.length = UintField(object, "length", op.kind == OpKind::kFallocate
                                              ? static_cast<uint64_t>(kMaxSafeInteger)
                                              : kMaxOpBytes);
  op.mode = static_cast<int>(UintField(object, "mode", INT32_MAX));
  op.granule = UintField(object, "granule", kMaxOpBytes);
  if (op.granule != 0 && op.granule < 512) {
    throw Napi::RangeError::New(env, "op.granule must be 0 or at least 512");
  }
  if (op.kind == OpKind::kRead) {
    op.crc_length = UintField(object, "crcLength", op.length);
  }
  if (op.kind == OpKind::kWrite) {
    const Napi::Value pieces = object.Get("pieces");
    if (!pieces.IsArray()) throw Napi::TypeError::New(env, "write op needs a pieces array");
    const Napi::Array list = pieces.As<Napi::Array>();
    uint64_t total = 0;
    for (uint32_t i = 0; i < list.Length(); i++) {
      const Napi::Value piece = list.Get(i);
      threefs::Piece slice;
      if (piece.IsTypedArray() &&
          piece.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array) {
        const auto bytes = piece.As<Napi::Uint8Array>();
        slice.data = bytes.Data();
        slice.length = bytes.ByteLength();
      } else if (piece.IsNumber()) {
        const double zeros = piece.As<Napi::Number>().DoubleValue();
        if (!(zeros >= 0) || zeros > static_cast<double>(kMaxOpBytes)) {
          throw Napi::RangeError::New(env, "a zero-fill piece must be a byte count");
        }
        slice.length = static_cast<size_t>(zeros);
      } else {
        throw Napi::TypeError::New(env, "write pieces are Uint8Arrays or zero-fill byte counts");
      }
      total += slice.length;
      op.pieces.push_back(slice);
    }
    if (total > op.length) {
      throw Napi::RangeError::New(env, "write pieces add up to more than op.length");
    }
    op.crc_length = total;
  }
  return op;
}

class Executor : public Napi::ObjectWrap<Executor> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Executor",
                       {InstanceMethod<&Executor::Submit>("submit"),
                        InstanceMethod<&Executor::SubmitGather>("submitGather"),
                        InstanceMethod<&Executor::Close>("close"),
                        InstanceMethod<&Executor::ReleaseBlock>("releaseBlock"),
                        InstanceAccessor<&Executor::PoolStats>("poolStats"),
                        InstanceAccessor<&Executor::WritesInPlace>("writesInPlace"),
                        InstanceAccessor<&Executor::Backend>("backend"),
                        InstanceAccessor<&Executor::FallbackReason>("fallbackReason"),
                        InstanceAccessor<&Executor::InFlight>("inFlight"),
                        InstanceAccessor<&Executor::LoopReads>("loopReads")});
  }

  // new Executor({ backend?: 'auto' | 'io_uring' | 'threads', queueDepth?, threads?, maxInFlight?,
  //                readPoolBytes?, loopReadBytes? })
  explicit Executor(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<Executor>(info), read_pool_(ReadPoolBytes(info)) {
    Napi::Env env = info.Env();
    Napi::Object options = info.Length() > 0 && info[0].IsObject()
                               ? info[0].As<Napi::Object>()
                               : Napi::Object::New(env);
    std::string wanted = "auto";
    if (options.Has("backend")) wanted = options.Get("backend").ToString().Utf8Value();
    if (wanted != "auto" && wanted != "io_uring" && wanted != "threads") {
      throw Napi::TypeError::New(env, "backend must be 'auto', 'io_uring' or 'threads'");
    }
    const uint64_t depth = options.Has("queueDepth") ? UintField(options, "queueDepth", 4096) : 256;
    const uint64_t threads = options.Has("threads") ? UintField(options, "threads", 256) : 8;
    max_in_flight_ = options.Has("maxInFlight") ? UintField(options, "maxInFlight", 65536) : 1024;
    loop_read_bytes_ =
        options.Has("loopReadBytes") ? UintField(options, "loopReadBytes", kMaxOpBytes) : 0;

    tsfn_ = Tsfn::New(env, "threefs-chunkio", 0, 1, this);
    tsfn_.Unref(env);  // an idle executor never keeps the process alive
    auto done = [this](IoBatch* batch) {
      tsfn_.NonBlockingCall(static_cast<JsBatch*>(batch->owner));
    };
    if (wanted != "threads") {
      backend_ = threefs::MakeUringBackend(static_cast<unsigned>(depth), done, &fallback_reason_);
      if (!backend_ && wanted == "io_uring") {
        tsfn_.Release();
        throw Napi::Error::New(env, "io_uring unavailable: " + fallback_reason_);
      }
    } else {
      fallback_reason_ = "thread backend requested";
    }
    if (!backend_) backend_ = threefs::MakeThreadBackend(static_cast<unsigned>(threads), done);
    // Small gather reads on this thread's own ring, when io_uring is what runs the rest.
    if (loop_read_bytes_ > 0 && std::string(backend_->Name()) == "io_uring") StartLoopRing(env);
  }

  ~Executor() override {
    Shutdown();
    // No batch is in flight (each one holds a reference to this object). Blocks JS has seen
    // belong to their ArrayBuffers now; the rest are freed here.
    for (threefs::PayloadPool::Block& block : read_pool_.Drain()) {
      if (block.handle != nullptr) {
        delete static_cast<Napi::Reference<Napi::ArrayBuffer>*>(block.handle);
      } else {
        std::free(block.data);
      }
    }
  }

  void Finished(Napi::Env env, JsBatch* batch) {
    in_flight_--;
    if (in_flight_ == 0 && !closed_) {
      tsfn_.Unref(env);
      Unref();
    }
    if (batch->gather) {
      FinishGather(env, batch);
      return;
    }
    Napi::Array results = Napi::Array::New(env, batch->io.ops.size());
    for (size_t i = 0; i < batch->io.ops.size(); i++) {
      IoOp& op = batch->io.ops[i];
      Napi::Object result = Napi::Object::New(env);
      result.Set("result", Napi::Number::New(env, static_cast<double>(op.result)));
      if (op.pool_block != 0) {
        op.buffer = {};  // pool memory: never to the aligned-buffer pool
        if (op.result >= 0) {
          result.Set("block", Napi::Number::New(env, op.pool_block));
          result.Set("arrayBuffer", BlockArrayBuffer(env, op.pool_block));
        } else {
          read_pool_.Release(op.pool_block);
        }
        op.pool_block = 0;
      } else if (op.kind == OpKind::kRead && op.result >= 0 && op.buffer.data != nullptr) {
        result.Set("data", AdoptAligned(env, op.buffer, static_cast<size_t>(op.result)));
      }
      if (op.granule != 0 && (op.kind == OpKind::kRead || op.kind == OpKind::kWrite) &&
          op.result >= 0) {
        Napi::Uint32Array crcs = Napi::Uint32Array::New(env, op.crcs.size());
        for (size_t k = 0; k < op.crcs.size(); k++) crcs[k] = op.crcs[k];
        result.Set("crcs", crcs);
        if (op.kind == OpKind::kWrite) result.Set("crc", Napi::Number::New(env, op.crc));
      }
      if (op.in_place) {
        writes_in_place_++;  // only writes reach here in place: gather reads finish elsewhere
      } else {
        threefs::ReleaseAligned(op.buffer);
      }
      op.buffer = {};
      results.Set(static_cast<uint32_t>(i), result);
    }
    batch->deferred.Resolve(results);
  }

 private:
  // One gather batch done: a status per read (bytes copied, -errno, or a checksum mismatch) and
  // the destination holding the bytes of every read that succeeded, read by read in order.
  void FinishGather(Napi::Env env, JsBatch* batch) {
    const size_t n = batch->io.ops.size();
    Napi::Float64Array statuses = Napi::Float64Array::New(env, n);
    for (size_t i = 0; i < n; i++) {
      IoOp& op = batch->io.ops[i];
      double status;
      if (op.result < 0) {
        status = static_cast<double>(op.result);
      } else if (static_cast<uint64_t>(op.result) < op.crc_length ||
                 static_cast<uint64_t>(op.result) < op.skip + op.copy_length) {
        status = -EIO;  // the data file ended inside a block: never seen on preallocated files
      } else if (op.mismatch >= 0) {
        status = -(kChecksumMismatchBase + static_cast<double>(op.mismatch));
      } else {
        status = static_cast<double>(op.copy_length);
      }
      statuses[i] = status;
      if (!op.in_place) threefs::ReleaseAligned(op.buffer);
      op.buffer = {};
    }
    Napi::Object result = Napi::Object::New(env);
    result.Set("statuses", statuses);
    result.Set("length", Napi::Number::New(env, static_cast<double>(batch->gather_total)));
    if (batch->gather_region != 0) {
      threefs::RegionTable::Instance().Release(batch->gather_region);
    } else if (batch->gather_block != 0) {
      result.Set("block", Napi::Number::New(env, batch->gather_block));
      result.Set("arrayBuffer", BlockArrayBuffer(env, batch->gather_block));
    } else {
      result.Set("data", AdoptAligned(env, batch->gather_fallback,
                                      static_cast<size_t>(batch->gather_total)));
    }
    batch->deferred.Resolve(result);
  }

  // Hands an aligned buffer to JavaScript as a Buffer of its first `length` bytes; the buffer is
  // released when V8 collects it. `buffer` is left empty. V8 is told the real capacity, so it
  // collects read buffers (returning them to the pool) as often as their size warrants.
  static Napi::Buffer<uint8_t> AdoptAligned(Napi::Env env, threefs::AlignedBuffer& buffer,
                                            size_t length) {
    auto* owned = new threefs::AlignedBuffer(buffer);
    buffer = {};
    Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(owned->capacity));
    return Napi::Buffer<uint8_t>::New(
        env, owned->data, length,
        [](Napi::Env finalizing, uint8_t*, threefs::AlignedBuffer* hint) {
          Napi::MemoryManagement::AdjustExternalMemory(finalizing,
                                                       -static_cast<int64_t>(hint->capacity));
          threefs::ReleaseAligned(*hint);
          delete hint;
        },
        owned);
  }

  static uint64_t GatherField(Napi::Env env, double value, uint64_t max, const char* what) {
    if (!(value >= 0) || value > static_cast<double>(max) ||
        value != static_cast<double>(static_cast<uint64_t>(value))) {
      throw Napi::RangeError::New(env, std::string("gather read: bad ") + what);
    }
    return static_cast<uint64_t>(value);
  }

  // submitGather(spec: Float64Array, expected: Uint32Array): Promise<{ statuses, length,
  // block + arrayBuffer | data }>. Each row of `spec` (kGatherFields numbers) is one read; its
  // verified bytes [skip, skip + copyLength) go to the destination one after another. A read
  // that starts page-aligned with nothing to skip, and fills its place exactly (or comes last),
  // lands there straight from the disk; the others go through a bounce buffer and one copy.
  //
  // With a third argument (a region id from mapRegion), each read's bytes go to its own offset in
  // that region instead (the row's last field), checked against the region's size; such a read
  // lands in place only when it fills its place exactly (the region's other bytes are not ours).
  Napi::Value SubmitGather(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (closed_) throw Napi::Error::New(env, "executor is closed");
    if (info.Length() < 2 || !info[0].IsTypedArray() || !info[1].IsTypedArray() ||
        info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
        info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array ||
        (info.Length() > 2 && !info[2].IsUndefined() && !info[2].IsNumber())) {
      throw Napi::TypeError::New(
          env, "submitGather(spec: Float64Array, expected: Uint32Array, region?: number)");
    }
    const uint32_t region_id =
        info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Uint32Value() : 0;
    const auto spec = info[0].As<Napi::Float64Array>();
    const auto expected = info[1].As<Napi::Uint32Array>();
    const size_t rows = spec.ElementLength() / kGatherFields;
    if (spec.ElementLength() % kGatherFields != 0 || rows == 0 || rows > kMaxOpsPerBatch) {
      throw Napi::RangeError::New(env, "a gather batch holds 1 to " +
                                           std::to_string(kMaxOpsPerBatch) + " reads");
    }
    if (in_flight_ >= max_in_flight_) {
      throw Napi::Error::New(env, "too many batches in flight (" + std::to_string(max_in_flight_) +
                                      ")");
    }
    auto batch = std::make_unique<JsBatch>(env);
    batch->gather = true;
    batch->io.ops.resize(rows);
    uint64_t total = 0;
    uint64_t disk_bytes = 0;  // what the reads take from the disk (whole granules)
    uint64_t reach = 0;  // bytes of the destination the reads touch (an in-place read may pad)
    for (size_t r = 0; r < rows; r++) {
      const double* row = spec.Data() + r * kGatherFields;
      IoOp& op = batch->io.ops[r];
      op.kind = OpKind::kRead;
      op.fd = static_cast<int>(GatherField(env, row[0], INT32_MAX, "fd"));
      op.offset = GatherField(env, row[1], static_cast<uint64_t>(kMaxSafeInteger), "offset");
      op.length = GatherField(env, row[2], kMaxOpBytes, "length");
      op.crc_length = GatherField(env, row[3], op.length, "crcLength");
      op.granule = GatherField(env, row[4], kMaxOpBytes, "granule");
      op.skip = GatherField(env, row[5], op.length, "skip");
      op.copy_length = GatherField(env, row[6], op.length - op.skip, "copyLength");
      const uint64_t first = GatherField(env, row[7], expected.ElementLength(), "expected index");
      if (op.granule < 512) throw Napi::RangeError::New(env, "gather read: granule below 512");
      const uint64_t count = (op.crc_length + op.granule - 1) / op.granule;
      if (first + count > expected.ElementLength()) {
        throw Napi::RangeError::New(env, "gather read: expected CRCs out of range");
      }
      if (op.length == 0) throw Napi::RangeError::New(env, "gather read: zero length");
      op.expected.assign(expected.Data() + first, expected.Data() + first + count);
      disk_bytes += op.length;
      if (region_id == 0) {
        if (row[8] != -1) throw Napi::RangeError::New(env, "gather read: a target needs a region");
        op.in_place = total % threefs::kDirectAlign == 0 && op.skip == 0 &&
                      (op.length == op.copy_length || r + 1 == rows);
        reach = std::max(reach, total + (op.in_place ? op.length : op.copy_length));
      }
      total += op.copy_length;
    }
    uint8_t* dest = nullptr;
    if (region_id != 0) {
      threefs::RegionTable::Region* region = threefs::RegionTable::Instance().Acquire(region_id);
      if (region == nullptr) throw Napi::Error::New(env, "chunkio: unknown shared region");
      for (size_t r = 0; r < rows; r++) {
        IoOp& op = batch->io.ops[r];
        const double target = spec.Data()[r * kGatherFields + 8];
        if (!(target >= 0) || target + static_cast<double>(op.copy_length) >
                                   static_cast<double>(region->bytes)) {
          threefs::RegionTable::Instance().Release(region_id);
          throw Napi::RangeError::New(env, "gather read: target outside the region");
        }
        const uint64_t at = static_cast<uint64_t>(target);
        op.gather_to = region->base + at;
        op.in_place = op.skip == 0 && op.length == op.copy_length &&
                      reinterpret_cast<uintptr_t>(op.gather_to) % threefs::kDirectAlign == 0;
        if (op.in_place) op.buffer = {op.gather_to, op.length};
        op.batch = &batch->io;
      }
      batch->gather_region = region_id;
    } else {
      const size_t want = std::max<size_t>(reach, threefs::PayloadPool::kMinBlock);
      if (threefs::PayloadPool::Block* block = read_pool_.Acquire(want)) {
        batch->gather_block = block->id;
        dest = block->data;
      } else {
        try {
          batch->gather_fallback = threefs::AcquireAligned(want);
        } catch (const std::bad_alloc&) {
          throw Napi::Error::New(env, "chunkio: out of memory for a gather read");
        }
        dest = batch->gather_fallback.data;
      }
      uint64_t at = 0;
      for (IoOp& op : batch->io.ops) {
        op.gather_to = dest + at;
        if (op.in_place) op.buffer = {dest + at, op.length};
        at += op.copy_length;
        op.batch = &batch->io;
      }
    }
    batch->gather_total = total;
    batch->io.owner = batch.get();
    Napi::Promise promise = batch->deferred.Promise();
    const bool on_loop = loop_ring_ && disk_bytes <= loop_read_bytes_;
    if (in_flight_ == 0) {
      tsfn_.Ref(env);
      Ref();
    }
    in_flight_++;
    if (on_loop) {
      if (loop_ring_->Live() == 0) uv_ref(reinterpret_cast<uv_handle_t*>(loop_poll_));
      loop_batches_++;
      loop_ring_->Submit(&batch.release()->io);
    } else {
      backend_->Submit(&batch.release()->io);
    }
    return promise;
  }

  Napi::Value Submit(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (closed_) throw Napi::Error::New(env, "executor is closed");
    if (info.Length() < 1 || !info[0].IsArray()) {
      throw Napi::TypeError::New(env, "submit takes an array of ops");
    }
    const Napi::Array ops = info[0].As<Napi::Array>();
    if (ops.Length() == 0 || ops.Length() > kMaxOpsPerBatch) {
      throw Napi::RangeError::New(env, "a batch holds 1 to " + std::to_string(kMaxOpsPerBatch) +
                                           " ops");
    }
    if (in_flight_ >= max_in_flight_) {
      throw Napi::Error::New(env, "too many batches in flight (" + std::to_string(max_in_flight_) +
                                      ")");
    }
    auto batch = std::make_unique<JsBatch>(env);
    batch->io.ops.reserve(ops.Length());
    for (uint32_t i = 0; i < ops.Length(); i++) batch->io.ops.push_back(ParseOp(ops.Get(i)));
    for (IoOp& op : batch->io.ops) {
      if (op.kind != OpKind::kRead || op.length == 0) continue;
      const size_t want = op.length < threefs::PayloadPool::kMinBlock ? threefs::PayloadPool::kMinBlock
                                                                     : op.length;
      if (threefs::PayloadPool::Block* block = read_pool_.Acquire(want)) {
        op.buffer = {block->data, block->capacity};
        op.pool_block = block->id;
      }
    }
    for (IoOp& op : batch->io.ops) op.batch = &batch->io;
    batch->io.owner = batch.get();
    batch->keep_alive = Napi::Persistent(static_cast<Napi::Value>(ops));
    Napi::Promise promise = batch->deferred.Promise();
    if (in_flight_ == 0) {
      tsfn_.Ref(env);
      Ref();  // in-flight batches point at this object: keep it from the GC until they finish
    }
    in_flight_++;
    backend_->Submit(&batch.release()->io);
    return promise;
  }

  // Waits for batches in flight to finish on the I/O threads, then stops them. Their promises
  // still resolve (on later turns of the event loop).
  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  void Shutdown() {
    if (closed_) return;
    closed_ = true;
    if (loop_ring_) {
      loop_ring_->Stop();  // resolves what it carried, here
      uv_poll_stop(loop_poll_);
      uv_close(reinterpret_cast<uv_handle_t*>(loop_poll_),
               [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
      loop_poll_ = nullptr;
    }
    if (backend_) backend_->Stop();
    tsfn_.Release();
  }

  // The ring this thread drives: its completions signal an eventfd that the event loop polls.
  // Without it (setup refused), every read goes to the I/O thread as before.
  void StartLoopRing(Napi::Env env) {
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) return;
    env_ = env;
    std::string why_not;
    auto done = [this](IoBatch* batch) {
      if (loop_ring_->Live() == 0 && loop_poll_ != nullptr)
        uv_unref(reinterpret_cast<uv_handle_t*>(loop_poll_));  // idle: keeps nothing alive
      ResolveBatch(env_, Napi::Function(), this, static_cast<JsBatch*>(batch->owner));
    };
    // Deep enough for the reads of one 4 MiB client request in 4 KiB pieces, at most.
    loop_ring_ = threefs::MakeLoopUringBackend(256, done, &why_not);
    if (!loop_ring_) return;
    loop_poll_ = new uv_poll_t{};
    if (uv_poll_init(loop, loop_poll_, loop_ring_->CompletionFd()) != 0) {
      delete loop_poll_;
      loop_poll_ = nullptr;
      loop_ring_.reset();
      return;
    }
    loop_poll_->data = this;
    context_ = std::make_unique<Napi::AsyncContext>(env, "threefs-chunkio-reads");
    uv_poll_start(loop_poll_, UV_READABLE, OnLoopRingReadable);
    uv_unref(reinterpret_cast<uv_handle_t*>(loop_poll_));
  }

  static void OnLoopRingReadable(uv_poll_t* handle, int /*status*/, int /*events*/) {
    auto* self = static_cast<Executor*>(handle->data);
    if (!self->loop_ring_) return;
    Napi::HandleScope scope(self->env_);
    // Closing the scope runs the promise jobs the resolutions queued, as after any I/O callback.
    Napi::CallbackScope callback(self->env_, *self->context_);
    try {
      self->loop_ring_->Reap();
    } catch (const Napi::Error& err) {
      napi_fatal_exception(self->env_, err.Value());
    }
  }

  static size_t ReadPoolBytes(const Napi::CallbackInfo& info) {
    if (info.Length() == 0 || !info[0].IsObject()) return kDefaultReadPoolBytes;
    const Napi::Object options = info[0].As<Napi::Object>();
    if (!options.Has("readPoolBytes")) return kDefaultReadPoolBytes;
    return static_cast<size_t>(UintField(options, "readPoolBytes", uint64_t{64} << 30));
  }

  // The long-lived ArrayBuffer over a pool block, created the first time the block goes to JS.
  // Its finalizer owns the memory from then on: JS may hold it after the executor is gone.
  Napi::Value BlockArrayBuffer(Napi::Env env, uint32_t id) {
    threefs::PayloadPool::Block* block = read_pool_.Find(id);
    if (block == nullptr) throw Napi::Error::New(env, "chunkio: unknown pool block");
    if (block->handle == nullptr) {
      Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(
          env, block->data, block->capacity, [](Napi::Env, void* data) { std::free(data); });
      block->handle = new Napi::Reference<Napi::ArrayBuffer>(Napi::Persistent(buffer));
    }
    return static_cast<Napi::Reference<Napi::ArrayBuffer>*>(block->handle)->Value();
  }

  // releaseBlock(id): every view of a read's block was collected; the block may be reused.
  Napi::Value ReleaseBlock(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsNumber()) {
      throw Napi::TypeError::New(info.Env(), "releaseBlock(id)");
    }
    read_pool_.Release(info[0].As<Napi::Number>().Uint32Value());
    return info.Env().Undefined();
  }

  // Writes sent to the disk from the caller's memory, without a bounce copy (WritableInPlace).
  Napi::Value WritesInPlace(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(writes_in_place_));
  }

  // [pooled bytes, bytes in use, bad releases]
  Napi::Value PoolStats(const Napi::CallbackInfo& info) {
    Napi::Array stats = Napi::Array::New(info.Env(), 3);
    stats.Set(0u, Napi::Number::New(info.Env(), static_cast<double>(read_pool_.totalBytes())));
    stats.Set(1u, Napi::Number::New(info.Env(), static_cast<double>(read_pool_.inUseBytes())));
    stats.Set(2u, Napi::Number::New(info.Env(), static_cast<double>(read_pool_.badReleases())));
    return stats;
  }

  Napi::Value Backend(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), backend_ ? backend_->Name() : "none");
  }
  Napi::Value FallbackReason(const Napi::CallbackInfo& info) {
    if (std::string(backend_->Name()) == "io_uring") return info.Env().Null();
    return Napi::String::New(info.Env(), fallback_reason_);
  }
  Napi::Value InFlight(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(in_flight_));
  }
  // Gather batches that ran on this thread's own ring.
  Napi::Value LoopReads(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(loop_batches_));
  }

  static constexpr size_t kDefaultReadPoolBytes = size_t{256} << 20;

  threefs::PayloadPool read_pool_;  // declared before backend_: outlives the I/O threads
  Tsfn tsfn_;
  std::unique_ptr<threefs::IoBackend> backend_;
  std::string fallback_reason_;
  // Gather batches reading at most this many bytes from the disk run on loop_ring_ (0: none).
  uint64_t loop_read_bytes_ = 0;
  std::unique_ptr<threefs::IoBackend> loop_ring_;
  uv_poll_t* loop_poll_ = nullptr;  // freed by its close callback
  std::unique_ptr<Napi::AsyncContext> context_;
  napi_env env_ = nullptr;
  uint64_t loop_batches_ = 0;
  uint64_t max_in_flight_ = 1024;
  uint64_t writes_in_place_ = 0;
  uint64_t in_flight_ = 0;
  bool closed_ = false;
};

void ResolveBatch(Napi::Env env, Napi::Function, Executor* executor, JsBatch* batch) {
  std::unique_ptr<JsBatch> owned(batch);
  if (env == nullptr) {  // the environment is going away: nobody is left to resolve for
    for (IoOp& op : owned->io.ops) {
      // Pool blocks die with the pool; in-place reads point into the gather destination.
      if (op.pool_block == 0 && !op.in_place) threefs::ReleaseAligned(op.buffer);
    }
    threefs::ReleaseAligned(owned->gather_fallback);
    return;
  }
  executor->Finished(env, owned.get());
}

Napi::Value Combine(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber()) {
    throw Napi::TypeError::New(env, "crc32cCombine(crcA, crcB, lengthB)");
  }
  const double len = info[2].As<Napi::Number>().DoubleValue();
  if (!(len >= 0) || len > kMaxSafeInteger) throw Napi::RangeError::New(env, "bad length");
  return Napi::Number::New(env, threefs::Crc32cCombine(info[0].As<Napi::Number>().Uint32Value(),
                                                       info[1].As<Napi::Number>().Uint32Value(),
                                                       static_cast<uint64_t>(len)));
}

Napi::Value Concat(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsTypedArray() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array || !info[1].IsNumber() ||
      !info[2].IsNumber()) {
    throw Napi::TypeError::New(env, "crc32cConcat(crcs: Uint32Array, granule, length)");
  }
  const auto crcs = info[0].As<Napi::Uint32Array>();
  const double granule = info[1].As<Napi::Number>().DoubleValue();
  const double length = info[2].As<Napi::Number>().DoubleValue();
  if (!(granule >= 1) || !(length >= 0) || length > kMaxSafeInteger) {
    throw Napi::RangeError::New(env, "bad granule or length");
  }
  const auto g = static_cast<uint64_t>(granule);
  const auto len = static_cast<uint64_t>(length);
  if (crcs.ElementLength() != (len + g - 1) / g) {
    throw Napi::RangeError::New(env, "crcs must hold one CRC per granule of length");
  }
  return Napi::Number::New(env, threefs::Crc32cConcat(crcs.Data(), crcs.ElementLength(), g, len));
}

// mapRegion(path, bytes): number — maps a local client's sealed shared region (regions.h).
Napi::Value MapRegion(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber()) {
    throw Napi::TypeError::New(env, "mapRegion(path: string, bytes: number)");
  }
  const double bytes = info[1].As<Napi::Number>().DoubleValue();
  if (!(bytes >= 1) || bytes > static_cast<double>(uint64_t{1} << 40) ||
      bytes != static_cast<double>(static_cast<uint64_t>(bytes))) {
    throw Napi::RangeError::New(env, "region size must be 1 byte to 1 TiB");
  }
  try {
    return Napi::Number::New(env, threefs::RegionTable::Instance().Map(
                                      info[0].As<Napi::String>().Utf8Value(),
                                      static_cast<size_t>(bytes)));
  } catch (const std::runtime_error& e) {
    throw Napi::Error::New(env, e.what());
  }
}

// unmapRegion(id): boolean — false for an unknown id. Reads in flight keep it mapped until done.
Napi::Value UnmapRegion(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "unmapRegion(id)");
  return Napi::Boolean::New(
      env, threefs::RegionTable::Instance().Unmap(info[0].As<Napi::Number>().Uint32Value()));
}

// regionStats(): [regions mapped, bytes mapped]
Napi::Value RegionStats(const Napi::CallbackInfo& info) {
  Napi::Array stats = Napi::Array::New(info.Env(), 2);
  const auto& table = threefs::RegionTable::Instance();
  stats.Set(0u, Napi::Number::New(info.Env(), static_cast<double>(table.count())));
  stats.Set(1u, Napi::Number::New(info.Env(), static_cast<double>(table.mappedBytes())));
  return stats;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Executor", Executor::Define(env));
  exports.Set("mapRegion", Napi::Function::New(env, MapRegion, "mapRegion"));
  exports.Set("unmapRegion", Napi::Function::New(env, UnmapRegion, "unmapRegion"));
  exports.Set("regionStats", Napi::Function::New(env, RegionStats, "regionStats"));
  exports.Set("crc32cCombine", Napi::Function::New(env, Combine, "crc32cCombine"));
  exports.Set("crc32cConcat", Napi::Function::New(env, Concat, "crc32cConcat"));
  exports.Set("directAlign", Napi::Number::New(env, static_cast<double>(threefs::kDirectAlign)));
  return exports;
}

}  // namespace

NODE_API_MODULE(threefs_chunkio, Init)
