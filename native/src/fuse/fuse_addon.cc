// JS binding of the FUSE bridge. `new FuseSession(handler)` then `mount(options)`: the session's
// /dev/fuse descriptor is polled on the event loop, and each time it is readable up to kMaxBatch
// requests are read and reach `handler(batch)` as one array of plain objects. JS answers with
// reply*(id, ...); each returns false when the request was already answered (interrupted, or the
// session is gone), never crashing.
// Write data arrives as an external Buffer over the bridge's copy; read replies pass the JS
// Buffer's memory straight to fuse_reply_buf.
#include <napi.h>
#include <sys/stat.h>
#include <uv.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <vector>

#include "fuse_bridge.h"
#include "write_slabs.h"

namespace {

using threefs::fuse::Bridge;
using threefs::fuse::kAttrFields;
using threefs::fuse::MountOptions;
using threefs::fuse::Request;

// Requests read per readable event before JS sees them: one call into JS carries many, and a
// flood of requests still yields to the rest of the event loop between batches.
constexpr size_t kMaxBatch = 64;

constexpr double kMaxSafeInteger = 9007199254740991.0;

uint64_t ToU64(const Napi::Value& v, const char* what) {
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= kMaxSafeInteger) || std::floor(d) != d)
    throw Napi::RangeError::New(v.Env(), std::string(what) + " must be a safe non-negative integer");
  return static_cast<uint64_t>(d);
}

timespec MsToTimespec(double ms) {
  timespec t{};
  double sec = std::floor(ms / 1e3);
  t.tv_sec = static_cast<time_t>(sec);
  t.tv_nsec = static_cast<long>((ms - sec * 1e3) * 1e6);
  if (t.tv_nsec < 0) t.tv_nsec = 0;
  if (t.tv_nsec > 999999999) t.tv_nsec = 999999999;
  return t;
}

void FillStat(const double* a, struct stat* st) {
  std::memset(st, 0, sizeof *st);
  st->st_ino = static_cast<ino_t>(a[threefs::fuse::kAttrIno]);
  st->st_mode = static_cast<mode_t>(a[threefs::fuse::kAttrMode]);
  st->st_nlink = static_cast<nlink_t>(a[threefs::fuse::kAttrNlink]);
  st->st_uid = static_cast<uid_t>(a[threefs::fuse::kAttrUid]);
  st->st_gid = static_cast<gid_t>(a[threefs::fuse::kAttrGid]);
  st->st_size = static_cast<off_t>(a[threefs::fuse::kAttrSize]);
  st->st_blksize = static_cast<blksize_t>(a[threefs::fuse::kAttrBlksize]);
  st->st_blocks = static_cast<blkcnt_t>((st->st_size + 511) / 512);
  st->st_atim = MsToTimespec(a[threefs::fuse::kAttrAtimeMs]);
  st->st_mtim = MsToTimespec(a[threefs::fuse::kAttrMtimeMs]);
  st->st_ctim = MsToTimespec(a[threefs::fuse::kAttrCtimeMs]);
}

// One attrs row from a Float64Array at `row`.
const double* AttrRow(const Napi::Value& v, size_t row) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    throw Napi::TypeError::New(v.Env(), "attrs must be a Float64Array");
  auto arr = v.As<Napi::Float64Array>();
  if ((row + 1) * kAttrFields > arr.ElementLength())
    throw Napi::RangeError::New(v.Env(), "attrs array is too short");
  return arr.Data() + row * kAttrFields;
}

fuse_entry_param EntryOf(const double* a, double attrTimeout, double entryTimeout) {
  fuse_entry_param e{};
  if (a != nullptr) {
    e.ino = static_cast<fuse_ino_t>(a[threefs::fuse::kAttrIno]);
    FillStat(a, &e.attr);
  }
  e.generation = 0;
  e.attr_timeout = attrTimeout;
  e.entry_timeout = entryTimeout;
  return e;
}

class FuseSession : public Napi::ObjectWrap<FuseSession> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "FuseSession",
        {
            InstanceMethod<&FuseSession::Mount>("mount"),
            InstanceMethod<&FuseSession::Unmount>("unmount"),
            InstanceMethod<&FuseSession::Stats>("stats"),
            InstanceMethod<&FuseSession::ReplyErr>("replyErr"),
            InstanceMethod<&FuseSession::ReplyEntry>("replyEntry"),
            InstanceMethod<&FuseSession::ReplyCreate>("replyCreate"),
            InstanceMethod<&FuseSession::ReplyAttr>("replyAttr"),
            InstanceMethod<&FuseSession::ReplyReadlink>("replyReadlink"),
            InstanceMethod<&FuseSession::ReplyOpen>("replyOpen"),
            InstanceMethod<&FuseSession::ReplyWrite>("replyWrite"),
            InstanceMethod<&FuseSession::ReplyBuf>("replyBuf"),
            InstanceMethod<&FuseSession::ReplyStatfs>("replyStatfs"),
            InstanceMethod<&FuseSession::ReplyDir>("replyDir"),
            InstanceMethod<&FuseSession::ReleaseWriteData>("releaseWriteData"),
            InstanceMethod<&FuseSession::InvalidateAttributes>("invalidateAttributes"),
        });
  }

  explicit FuseSession(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FuseSession>(info) {
    if (!info[0].IsFunction())
      throw Napi::TypeError::New(info.Env(), "FuseSession(handler): handler must be a function");
    handler_ = Napi::Persistent(info[0].As<Napi::Function>());
  }

  ~FuseSession() override {
    // A session dropped without unmount(): stop reading the device before the bridge goes.
    StopPolling();
    if (bridge_) bridge_->Unmount();
  }

 private:
  static void OnReadable(uv_poll_t* handle, int status, int /*events*/) {
    auto* self = static_cast<FuseSession*>(handle->data);
    if (self == nullptr || !self->bridge_) return;
    bool open = status >= 0 ? self->bridge_->ReceiveSome(kMaxBatch) : self->bridge_->End();
    if (!open) self->StopPolling();  // JS hears kEnded and unmounts
    self->Deliver();
  }

  void StartPolling(Napi::Env env) {
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok)
      throw Napi::Error::New(env, "fuse: no event loop");
    poll_ = new uv_poll_t{};
    if (uv_poll_init(loop, poll_, bridge_->Fd()) != 0) {
      delete poll_;
      poll_ = nullptr;
      throw Napi::Error::New(env, "fuse: uv_poll_init on /dev/fuse failed");
    }
    poll_->data = this;
    uv_poll_start(poll_, UV_READABLE, OnReadable);
  }

  void StopPolling() {
    if (poll_ == nullptr) return;
    uv_poll_stop(poll_);  // out of epoll before the session closes the descriptor
    poll_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(poll_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
  }

  void Deliver() {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    auto batch = bridge_->Drain();
    if (batch.empty()) return;
    Napi::Array out = Napi::Array::New(env, batch.size());
    uint32_t i = 0;
    for (auto& r : batch) out.Set(i++, ToJs(env, *r));
    try {
      // MakeCallback runs nextTicks and promise jobs afterwards, as for any Node I/O callback.
      handler_.MakeCallback(env.Global(), {out}, *context_);
    } catch (const Napi::Error& err) {
      napi_fatal_exception(env, err.Value());  // a throwing handler is an uncaught exception
    }
  }

  Napi::Value ToJs(Napi::Env env, Request& r) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("id", static_cast<double>(r.id));
    o.Set("op", r.op);
    if (r.op >= threefs::fuse::kInterrupt) return o;
    o.Set("ino", static_cast<double>(r.ino));
    o.Set("uid", r.uid);
    o.Set("gid", r.gid);
    o.Set("pid", r.pid);
    o.Set("umask", r.umask);
    o.Set("fh", static_cast<double>(r.fh));
    o.Set("offset", static_cast<double>(r.offset));
    o.Set("size", static_cast<double>(r.size));
    o.Set("flags", r.flags);
    o.Set("mode", r.mode);
    if (!r.name.empty()) o.Set("name", r.name);
    if (!r.name2.empty()) o.Set("name2", r.name2);
    if (r.ino2 != 0) o.Set("ino2", static_cast<double>(r.ino2));
    if (r.op == threefs::fuse::kSetattr) {
      o.Set("setSize", static_cast<double>(r.setSize));
      o.Set("setUid", r.setUid);
      o.Set("setGid", r.setGid);
      o.Set("setAtimeMs", r.setAtimeMs);
      o.Set("setMtimeMs", r.setMtimeMs);
    }
    if (r.op == threefs::fuse::kWrite) {
      char* data = r.data;
      r.data = nullptr;  // the Buffer owns it now
      if (r.dataPooled) {
        // Runs when JS detaches the Buffer (releaseWriteData) or collects it, whichever is first.
        o.Set("data", Napi::Buffer<char>::New(env, data, r.size, [](Napi::Env, char* p) {
                threefs::fuse::WriteSlabs::Process().Release(p);
              }));
      } else {
        o.Set("data", Napi::Buffer<char>::New(env, data, r.size,
                                              [](Napi::Env, char* p) { delete[] p; }));
      }
    }
    return o;
  }

  Napi::Value Mount(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (bridge_) throw Napi::Error::New(env, "this session is already mounted");
    if (!info[0].IsObject()) throw Napi::TypeError::New(env, "mount(options)");
    auto o = info[0].As<Napi::Object>();
    MountOptions options;
    options.mountpoint = o.Get("mountpoint").As<Napi::String>().Utf8Value();
    options.fsname = o.Get("fsname").As<Napi::String>().Utf8Value();
    options.allowOther = o.Get("allowOther").ToBoolean();
    options.debug = o.Get("debug").ToBoolean();
    options.maxWrite = static_cast<uint32_t>(ToU64(o.Get("maxWrite"), "maxWrite"));
    options.maxReadahead = static_cast<uint32_t>(ToU64(o.Get("maxReadahead"), "maxReadahead"));
    options.maxBackground = static_cast<uint32_t>(ToU64(o.Get("maxBackground"), "maxBackground"));
    if (options.fsname.find_first_of(",\\") != std::string::npos)
      throw Napi::TypeError::New(env, "fsname may not contain ',' or '\\\\'");
    context_ = std::make_unique<Napi::AsyncContext>(env, "threefs-fuse");
    bridge_ = std::make_unique<Bridge>();
    std::string error = bridge_->Mount(options);
    if (error.empty()) {
      try {
        StartPolling(env);
      } catch (...) {
        bridge_->Unmount();
        bridge_.reset();
        throw;
      }
      return env.Undefined();
    }
    bridge_.reset();
    throw Napi::Error::New(env, error);
  }

  Napi::Value Unmount(const Napi::CallbackInfo& info) {
    // Once the descriptor is no longer polled, nothing of the session keeps the process alive.
    StopPolling();
    if (bridge_) bridge_->Unmount();
    return info.Env().Undefined();
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("mounted", bridge_ != nullptr && bridge_->Mounted());
    o.Set("pending", bridge_ ? static_cast<double>(bridge_->Pending()) : 0.0);
    o.Set("forgets", bridge_ ? static_cast<double>(bridge_->Forgets()) : 0.0);
    // FLUSHes from the kernel, those answered in native code (nothing written since the last
    // flush), and inodes with writes no flush has covered yet.
    o.Set("flushes", bridge_ ? static_cast<double>(bridge_->Unflushed().Flushes()) : 0.0);
    o.Set("flushesAnsweredNatively",
          bridge_ ? static_cast<double>(bridge_->Unflushed().AnsweredHere()) : 0.0);
    o.Set("unflushedInodes",
          bridge_ ? static_cast<double>(bridge_->Unflushed().Tracked()) : 0.0);
    return o;
  }

  // releaseWriteData(buffer): JS is done with a WRITE's bytes. A slab's Buffer is detached, which
  // hands the slab back at once (any later read of it sees 0 bytes, never another write's);
  // other Buffers are left to the GC. Returns whether a slab was detached.
  Napi::Value ReleaseWriteData(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsBuffer())
      throw Napi::TypeError::New(env, "releaseWriteData(buffer)");
    auto buffer = info[0].As<Napi::Buffer<char>>();
    Napi::ArrayBuffer whole = buffer.ArrayBuffer();
    const bool slab = !whole.IsDetached() && buffer.ByteOffset() == 0 &&
                      threefs::fuse::WriteSlabs::Process().Owns(
                          static_cast<const char*>(whole.Data()));
    if (slab) whole.Detach();
    return Napi::Boolean::New(env, slab);
  }

  // invalidateAttributes(ino): the kernel re-reads the inode's attributes on next use (see
  // Bridge::InvalidateAttributes). Returns 0 or -errno; -ENOTCONN when not mounted.
  Napi::Value InvalidateAttributes(const Napi::CallbackInfo& info) {
    if (info.Length() < 1) throw Napi::TypeError::New(info.Env(), "invalidateAttributes(ino)");
    uint64_t ino = ToU64(info[0], "inode");
    const int result = bridge_ ? bridge_->InvalidateAttributes(ino) : -ENOTCONN;
    return Napi::Number::New(info.Env(), result);
  }

  // The request for a reply, or nullptr when it was already answered.
  fuse_req_t Claim(const Napi::CallbackInfo& info, int replyErrno = 0) {
    uint64_t id = ToU64(info[0], "request id");
    if (!bridge_ || !bridge_->Mounted()) return nullptr;
    return bridge_->Claim(id, replyErrno);
  }

  static Napi::Value Result(const Napi::CallbackInfo& info, bool claimed) {
    return Napi::Boolean::New(info.Env(), claimed);
  }

  // replyErr(id, errno): 0 answers success for operations without a result (unlink, flush...).
  Napi::Value ReplyErr(const Napi::CallbackInfo& info) {
    int err = info[1].As<Napi::Number>().Int32Value();
    if (err < 0 || err > 4095) throw Napi::RangeError::New(info.Env(), "errno out of range");
    fuse_req_t req = Claim(info, err);
    if (req) fuse_reply_err(req, err);
    return Result(info, req != nullptr);
  }

  // replyEntry(id, attrs | null, attrTimeout, entryTimeout): null = negative entry (cached).
  Napi::Value ReplyEntry(const Napi::CallbackInfo& info) {
    const double* a = info[1].IsNull() ? nullptr : AttrRow(info[1], 0);
    fuse_entry_param e =
        EntryOf(a, info[2].As<Napi::Number>().DoubleValue(), info[3].As<Napi::Number>().DoubleValue());
    fuse_req_t req = Claim(info);
    if (req) fuse_reply_entry(req, &e);
    return Result(info, req != nullptr);
  }

  // replyCreate(id, attrs, attrTimeout, entryTimeout, fh, directIo)
  Napi::Value ReplyCreate(const Napi::CallbackInfo& info) {
    fuse_entry_param e = EntryOf(AttrRow(info[1], 0), info[2].As<Napi::Number>().DoubleValue(),
                                 info[3].As<Napi::Number>().DoubleValue());
    fuse_file_info fi{};
    fi.fh = ToU64(info[4], "fh");
    fi.direct_io = info[5].ToBoolean() ? 1 : 0;
    fuse_req_t req = Claim(info);
    if (req) fuse_reply_create(req, &e, &fi);
    return Result(info, req != nullptr);
  }

  // replyAttr(id, attrs, attrTimeout)
  Napi::Value ReplyAttr(const Napi::CallbackInfo& info) {
    struct stat st;
    FillStat(AttrRow(info[1], 0), &st);
    double timeout = info[2].As<Napi::Number>().DoubleValue();
    fuse_req_t req = Claim(info);
    if (req) fuse_reply_attr(req, &st, timeout);
    return Result(info, req != nullptr);
  }

  Napi::Value ReplyReadlink(const Napi::CallbackInfo& info) {
    std::string target = info[1].As<Napi::String>().Utf8Value();
    fuse_req_t req = Claim(info);
    if (req) fuse_reply_readlink(req, target.c_str());
    return Result(info, req != nullptr);
  }

  // replyOpen(id, fh, directIo, keepCache, noFlush)
  Napi::Value ReplyOpen(const Napi::CallbackInfo& info) {
    fuse_file_info fi{};
    fi.fh = ToU64(info[1], "fh");
    fi.direct_io = info[2].ToBoolean() ? 1 : 0;
    fi.keep_cache = info[3].ToBoolean() ? 1 : 0;
    fi.noflush = info[4].ToBoolean() ? 1 : 0;  // FOPEN_NOFLUSH: close(2) sends no FLUSH
    fuse_req_t req = Claim(info);
    if (req) fuse_reply_open(req, &fi);
    return Result(info, req != nullptr);
  }

  Napi::Value ReplyWrite(const Napi::CallbackInfo& info) {
    uint64_t count = ToU64(info[1], "count");
    fuse_req_t req = Claim(info);
    if (req) fuse_reply_write(req, count);
    return Result(info, req != nullptr);
  }

  // replyBuf(id, buffer): the kernel copies from the Buffer's memory during the call.
  Napi::Value ReplyBuf(const Napi::CallbackInfo& info) {
    if (!info[1].IsBuffer()) throw Napi::TypeError::New(info.Env(), "replyBuf needs a Buffer");
    auto buf = info[1].As<Napi::Buffer<char>>();
    fuse_req_t req = Claim(info);
    if (req) fuse_reply_buf(req, buf.Data(), buf.Length());
    return Result(info, req != nullptr);
  }

  // replyStatfs(id, [bsize, frsize, blocks, bfree, bavail, files, ffree, favail, namemax])
  Napi::Value ReplyStatfs(const Napi::CallbackInfo& info) {
    auto arr = info[1].As<Napi::Float64Array>();
    if (arr.ElementLength() < 9) throw Napi::RangeError::New(info.Env(), "statfs needs 9 fields");
    const double* v = arr.Data();
    struct statvfs st{};
    st.f_bsize = static_cast<unsigned long>(v[0]);
    st.f_frsize = static_cast<unsigned long>(v[1]);
    st.f_blocks = static_cast<fsblkcnt_t>(v[2]);
    st.f_bfree = static_cast<fsblkcnt_t>(v[3]);
    st.f_bavail = static_cast<fsblkcnt_t>(v[4]);
    st.f_files = static_cast<fsfilcnt_t>(v[5]);
    st.f_ffree = static_cast<fsfilcnt_t>(v[6]);
    st.f_favail = static_cast<fsfilcnt_t>(v[7]);
    st.f_namemax = static_cast<unsigned long>(v[8]);
    fuse_req_t req = Claim(info);
    if (req) fuse_reply_statfs(req, &st);
    return Result(info, req != nullptr);
  }

  // replyDir(id, maxSize, plus, names[], attrs Float64Array, firstOffset, attrTimeout,
  // entryTimeout): packs entries in order while they fit; entry i's "next offset" is
  // firstOffset + i + 1. Returns how many entries were packed (-1 if the request was gone).
  Napi::Value ReplyDir(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    size_t maxSize = ToU64(info[1], "size");
    bool plus = info[2].ToBoolean();
    auto names = info[3].As<Napi::Array>();
    uint64_t firstOffset = ToU64(info[5], "firstOffset");
    double attrTimeout = info[6].As<Napi::Number>().DoubleValue();
    double entryTimeout = info[7].As<Napi::Number>().DoubleValue();
    if (maxSize > (8u << 20)) throw Napi::RangeError::New(env, "readdir size is too large");
    std::vector<char> buf(maxSize);
    size_t used = 0;
    uint32_t packed = 0;
    fuse_req_t req = Claim(info);
    if (!req) return Napi::Number::New(env, -1);
    try {
      for (uint32_t i = 0; i < names.Length(); i++) {
        std::string name = names.Get(i).As<Napi::String>().Utf8Value();
        const double* a = AttrRow(info[4], i);
        off_t next = static_cast<off_t>(firstOffset + i + 1);
        size_t want;
        if (plus) {
          bool dot = name == "." || name == "..";
          fuse_entry_param e = EntryOf(a, attrTimeout, entryTimeout);
          if (dot) {  // no lookup reference for these: the kernel must not instantiate them
            e.ino = 0;
            e.attr_timeout = 0;
            e.entry_timeout = 0;
          }
          want = fuse_add_direntry_plus(req, buf.data() + used, maxSize - used, name.c_str(), &e,
                                        next);
        } else {
          struct stat st;
          FillStat(a, &st);
          want = fuse_add_direntry(req, buf.data() + used, maxSize - used, name.c_str(), &st, next);
        }
        if (want > maxSize - used) break;
        used += want;
        packed++;
      }
    } catch (...) {
      fuse_reply_err(req, EIO);  // bad arguments from JS: the kernel still gets an answer
      throw;
    }
    fuse_reply_buf(req, buf.data(), used);
    return Napi::Number::New(env, packed);
  }

  Napi::FunctionReference handler_;
  std::unique_ptr<Napi::AsyncContext> context_;
  std::unique_ptr<Bridge> bridge_;
  uv_poll_t* poll_ = nullptr;  // freed by its close callback, which may run after the session
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("FuseSession", FuseSession::Define(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(threefs_fuse, Init)
