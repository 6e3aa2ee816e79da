// JS binding of the USRBIO rings, used by both sides: `ProgramRing` (a program: creates the
// sealed memfd, prepares/submits SQEs, reaps CQEs) and `DaemonRing` (the FUSE daemon: maps a
// program's memfd, takes validated SQEs, completes them). Each exposes the data area as one
// external Buffer over the shared mapping (no copies); the mapping lives until both the ring and
// every Buffer slice over it are gone. `peerCred(fd)` reads SO_PEERCRED of a unix socket.
#include <napi.h>
#include <sys/socket.h>

#include <cmath>
#include <memory>
#include <stdexcept>
#include <vector>

#include "rings.h"

namespace {

using threefs::usrbio::Cqe;
using threefs::usrbio::DaemonEnd;
using threefs::usrbio::Mapping;
using threefs::usrbio::ProgramEnd;
using threefs::usrbio::Sqe;
using threefs::usrbio::Taken;

constexpr double kMaxSafeInteger = 9007199254740991.0;
constexpr size_t kTakenFields = 7;  // op, file, fileOffset, length, bufOffset, userData, error

uint64_t ToU64(const Napi::Value& v, const char* what) {
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= kMaxSafeInteger) || std::floor(d) != d)
    throw Napi::RangeError::New(v.Env(), std::string(what) + " must be a safe non-negative integer");
  return static_cast<uint64_t>(d);
}

/** A Buffer over [ptr, ptr+len) that keeps `mapping` alive until it is collected. */
Napi::Buffer<uint8_t> DataBuffer(Napi::Env env, const std::shared_ptr<Mapping>& mapping,
                                 uint8_t* ptr, size_t len) {
  auto* keep = new std::shared_ptr<Mapping>(mapping);
  return Napi::Buffer<uint8_t>::New(
      env, ptr, len, [](Napi::Env, uint8_t*, std::shared_ptr<Mapping>* k) { delete k; }, keep);
}

// Where the data area sits in the whole shared file (header and rings come first).
void SetRegionShape(Napi::Env env, Napi::Object self, const Mapping& mapping,
                    uint64_t data_offset) {
  self.Set("regionBytes", Napi::Number::New(env, static_cast<double>(mapping.size())));
  self.Set("dataOffset", Napi::Number::New(env, static_cast<double>(data_offset)));
}

class ProgramRing : public Napi::ObjectWrap<ProgramRing> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "ProgramRing",
                       {InstanceMethod<&ProgramRing::Prepare>("prepare"),
                        InstanceMethod<&ProgramRing::Submit>("submit"),
                        InstanceMethod<&ProgramRing::Unconsumed>("unconsumed"),
                        InstanceMethod<&ProgramRing::Reap>("reap"),
                        InstanceMethod<&ProgramRing::ArmWakeup>("armWakeup"),
                        InstanceMethod<&ProgramRing::DisarmWakeup>("disarmWakeup")});
  }

  explicit ProgramRing(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ProgramRing>(info) {
    Napi::Env env = info.Env();
    uint64_t entries = ToU64(info[0], "entries");
    uint64_t bytes = ToU64(info[1], "dataBytes");
    if (entries > UINT32_MAX) throw Napi::RangeError::New(env, "entries too large");
    try {
      end_ = std::make_unique<ProgramEnd>(static_cast<uint32_t>(entries), bytes);
    } catch (const std::runtime_error& e) {
      throw Napi::Error::New(env, e.what());
    }
    Napi::Object self = info.This().As<Napi::Object>();
    self.Set("fd", Napi::Number::New(env, end_->fd()));
    self.Set("data", DataBuffer(env, end_->mapping(), end_->data(), end_->data_bytes()));
    SetRegionShape(env, self, *end_->mapping(), end_->data_offset());
  }

 private:
  // prepare(op, file, fileOffset, length, bufOffset, userData) → false when the SQ is full.
  Napi::Value Prepare(const Napi::CallbackInfo& info) {
    Sqe sqe{};
    sqe.op = static_cast<uint32_t>(ToU64(info[0], "op"));
    uint64_t file = ToU64(info[1], "file");
    if (file > UINT32_MAX) throw Napi::RangeError::New(info.Env(), "file id too large");
    sqe.file = static_cast<uint32_t>(file);
    sqe.file_offset = ToU64(info[2], "fileOffset");
    sqe.length = ToU64(info[3], "length");
    sqe.buf_offset = ToU64(info[4], "bufOffset");
    sqe.user_data = ToU64(info[5], "userData");
    return Napi::Boolean::New(info.Env(), end_->Prepare(sqe));
  }
  Napi::Value Submit(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), end_->Submit());
  }
  Napi::Value Unconsumed(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), end_->Unconsumed());
  }
  // armWakeup() → true when CQEs are already there (reap them instead of waiting).
  Napi::Value ArmWakeup(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), end_->ArmWakeup());
  }
  void DisarmWakeup(const Napi::CallbackInfo&) { end_->DisarmWakeup(); }
  // reap(max) → Float64Array [userData, result, ...].
  Napi::Value Reap(const Napi::CallbackInfo& info) {
    size_t max = static_cast<size_t>(ToU64(info[0], "max"));
    if (max > end_->entries()) max = end_->entries();
    std::vector<Cqe> cqes(max);
    size_t n = end_->Reap(cqes.data(), max);
    auto out = Napi::Float64Array::New(info.Env(), n * 2);
    for (size_t i = 0; i < n; i++) {
      out[i * 2] = static_cast<double>(cqes[i].user_data);
      out[i * 2 + 1] = static_cast<double>(cqes[i].result);
    }
    return out;
  }

  std::unique_ptr<ProgramEnd> end_;
};

class DaemonRing : public Napi::ObjectWrap<DaemonRing> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "DaemonRing",
                       {InstanceMethod<&DaemonRing::Take>("take"),
                        InstanceMethod<&DaemonRing::CqSpace>("cqSpace"),
                        InstanceMethod<&DaemonRing::Complete>("complete")});
  }

  // new DaemonRing(pid, fd, entries, dataBytes, maxIoBytes)
  explicit DaemonRing(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DaemonRing>(info) {
    Napi::Env env = info.Env();
    uint64_t pid = ToU64(info[0], "pid");
    uint64_t fd = ToU64(info[1], "fd");
    uint64_t entries = ToU64(info[2], "entries");
    uint64_t bytes = ToU64(info[3], "dataBytes");
    uint64_t maxIo = ToU64(info[4], "maxIoBytes");
    if (pid > INT32_MAX || fd > INT32_MAX || entries > UINT32_MAX)
      throw Napi::RangeError::New(env, "pid, fd or entries out of range");
    try {
      end_ = std::make_unique<DaemonEnd>(static_cast<int>(pid), static_cast<int>(fd),
                                         static_cast<uint32_t>(entries), bytes, maxIo);
    } catch (const std::runtime_error& e) {
      throw Napi::Error::New(env, e.what());
    }
    Napi::Object self = info.This().As<Napi::Object>();
    self.Set("data", DataBuffer(env, end_->mapping(), end_->data(), end_->data_bytes()));
    // The daemon's own descriptor of the region: /proc/<daemon pid>/fd/<fd> names it for as long
    // as this ring lives (storage servers on this host map it to read straight into it).
    self.Set("fd", Napi::Number::New(env, end_->mapping()->fd()));
    SetRegionShape(env, self, *end_->mapping(), end_->data_offset());
  }

 private:
  // take(max) → Float64Array of kTakenFields per SQE, or null when the program broke its ring.
  Napi::Value Take(const Napi::CallbackInfo& info) {
    size_t max = static_cast<size_t>(ToU64(info[0], "max"));
    std::vector<Taken> taken;
    if (!end_->Take(max, &taken)) return info.Env().Null();
    auto out = Napi::Float64Array::New(info.Env(), taken.size() * kTakenFields);
    for (size_t i = 0; i < taken.size(); i++) {
      const Sqe& s = taken[i].sqe;
      double* row = out.Data() + i * kTakenFields;
      row[0] = s.op;
      row[1] = s.file;
      row[2] = static_cast<double>(s.file_offset);
      row[3] = static_cast<double>(s.length);
      row[4] = static_cast<double>(s.buf_offset);
      row[5] = static_cast<double>(s.user_data);
      row[6] = taken[i].error;
    }
    return out;
  }
  Napi::Value CqSpace(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(end_->CqSpace()));
  }
  // complete(Float64Array [userData, result, ...]) → 0 when they do not fit, 1 when posted,
  // 2 when posted and the program waits for a doorbell.
  Napi::Value Complete(const Napi::CallbackInfo& info) {
    if (!info[0].IsTypedArray() ||
        info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
      throw Napi::TypeError::New(info.Env(), "completions must be a Float64Array");
    auto arr = info[0].As<Napi::Float64Array>();
    size_t n = arr.ElementLength() / 2;
    std::vector<Cqe> cqes(n);
    for (size_t i = 0; i < n; i++) {
      double ud = arr[i * 2];
      cqes[i].user_data = ud >= 0 && ud <= kMaxSafeInteger ? static_cast<uint64_t>(ud) : 0;
      cqes[i].result = static_cast<int64_t>(arr[i * 2 + 1]);
    }
    return Napi::Number::New(info.Env(), static_cast<int>(end_->Complete(cqes.data(), n)));
  }

  std::unique_ptr<DaemonEnd> end_;
};

// peerCred(fd) → { pid, uid, gid } of the process on the other end of a unix socket.
Napi::Value PeerCred(const Napi::CallbackInfo& info) {
  int fd = static_cast<int>(ToU64(info[0], "fd"));
  ucred cred{};
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    throw Napi::Error::New(info.Env(), std::string("SO_PEERCRED: ") + std::strerror(errno));
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("pid", cred.pid);
  out.Set("uid", cred.uid);
  out.Set("gid", cred.gid);
  return out;
}

// sharedRegion(bytes) → { fd, data }: a sealed memfd mapped shared (CreateSharedRegion). The
// descriptor stays open, and the mapping alive, until `data` and every slice of it are collected.
Napi::Value SharedRegion(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t bytes = ToU64(info[0], "bytes");
  std::shared_ptr<Mapping> mapping;
  try {
    mapping = threefs::usrbio::CreateSharedRegion(bytes);
  } catch (const std::runtime_error& e) {
    throw Napi::Error::New(env, e.what());
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", Napi::Number::New(env, mapping->fd()));
  out.Set("data", DataBuffer(env, mapping, mapping->base(), mapping->size()));
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("sharedRegion", Napi::Function::New(env, SharedRegion));
  exports.Set("ProgramRing", ProgramRing::Define(env));
  exports.Set("DaemonRing", DaemonRing::Define(env));
  exports.Set("peerCred", Napi::Function::New(env, PeerCred));
  exports.Set("entriesLimit", Napi::Number::New(env, threefs::usrbio::kMaxEntries));
  return exports;
}

}  // namespace

NODE_API_MODULE(threefs_usrbio, Init)
