// JS binding for the native RPC transport. No threads: every socket is a libuv poll handle on the
// JS thread's own loop, so on a machine whose cores are all busy (client and server processes,
// other daemons) no cycles go to waking an extra thread for every frame. On readiness the socket
// (frame_connection.h) reads frames into their final allocations and checks the CRCs; the events
// of one callback go to JS in one batch, a flat array with seven slots per event:
//   [type, conn, aux, a, b, c, d]
//   accepted  aux = listener id, a = peer "ip:port" ('' for a unix socket)
//   connected
//   frame     aux = payload length, a = header+body Buffer, b = payload: a Buffer, or (d > 0)
//             the ArrayBuffer of pool block d, of which JS makes a view and calls
//             releaseBlock(d) once that view is collected or retired (payload_pool.h);
//             undefined for none;
//             c = data CRC matched
//   badHeader a = the 40 header bytes
//   written   aux = bytes written by a readiness callback (writes from flush() are returned)
//   end       aux = bytes of an unfinished frame
//   closed    a = errno name ('' for a clean close), b = the failing syscall
// Events caused by a JS call (destroy, a failed flush, frames buffered before a resume) are
// delivered from an idle callback, never re-entrantly inside that call.
#include <arpa/inet.h>
#include <errno.h>
#include <napi.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

#include "frame_connection.h"
#include "payload_pool.h"

namespace {

using threefs::Event;
using threefs::EventType;
using threefs::FrameConnection;

// Segments below this size are copied into V8-owned Buffers (cheaper than a finalizer); larger
// ones are handed over without a copy and freed by their finalizer.
constexpr size_t kCopyBelowBytes = 64 * 1024;
constexpr size_t kEventStride = 7;
// Bytes one socket may read per readiness callback, so one busy peer cannot starve the others.
constexpr size_t kReadBudget = 4u << 20;
constexpr int kAcceptsPerWake = 64;
constexpr uint64_t kListenerPauseMs = 100;  // after EMFILE and the like: retry later, not in a spin

std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name != nullptr ? name : "E" + std::to_string(err);
}

[[noreturn]] void ThrowErrno(Napi::Env env, const std::string& what, int err) {
  Napi::Error error =
      Napi::Error::New(env, what + " " + ErrnoName(err) + ": " + std::strerror(err));
  error.Set("code", Napi::String::New(env, ErrnoName(err)));
  throw error;
}

struct ParsedAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
};

ParsedAddress TcpAddress(Napi::Env env, const std::string& host, uint32_t port) {
  ParsedAddress out;
  if (port > 65535) throw Napi::RangeError::New(env, "port out of range");
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    out.length = sizeof(sockaddr_in);
    return out;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    out.length = sizeof(sockaddr_in6);
    return out;
  }
  throw Napi::TypeError::New(env, "not a numeric IP address: '" + host + "'");
}

ParsedAddress UnixAddress(Napi::Env env, const std::string& path) {
  ParsedAddress out;
  auto* un = reinterpret_cast<sockaddr_un*>(&out.storage);
  if (path.empty() || path.size() >= sizeof(un->sun_path)) {
    throw Napi::RangeError::New(env, "unix socket path must be 1.." +
                                         std::to_string(sizeof(un->sun_path) - 1) + " bytes");
  }
  un->sun_family = AF_UNIX;
  std::memcpy(un->sun_path, path.data(), path.size());
  out.length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return out;
}

void TuneTcp(int fd) {
  int on = 1;
  int idle = 30;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
}

std::string PeerText(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "";
  char text[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, text, sizeof(text));
    return std::string(text) + ":" + std::to_string(ntohs(a->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof(text));
    return std::string(text) + ":" + std::to_string(ntohs(a->sin6_port));
  }
  return "";
}

uint64_t IdArg(const Napi::CallbackInfo& info, size_t index) {
  if (info.Length() <= index || !info[index].IsNumber()) {
    throw Napi::TypeError::New(info.Env(), "socket id must be a number");
  }
  const double id = info[index].As<Napi::Number>().DoubleValue();
  if (!(id >= 1 && id <= 9007199254740991.0)) {
    throw Napi::RangeError::New(info.Env(), "socket id out of range");
  }
  return static_cast<uint64_t>(id);
}

uint64_t MaxFrameArg(const Napi::CallbackInfo& info, size_t index) {
  if (info.Length() <= index || !info[index].IsNumber()) {
    throw Napi::TypeError::New(info.Env(), "maxFrameBytes must be a number");
  }
  const double value = info[index].As<Napi::Number>().DoubleValue();
  if (!(value >= 1 && value <= 4294967295.0)) {
    throw Napi::RangeError::New(info.Env(), "maxFrameBytes out of range");
  }
  return static_cast<uint64_t>(value);
}

std::string StringArg(const Napi::CallbackInfo& info, size_t index, const char* what) {
  if (info.Length() <= index || !info[index].IsString()) {
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a string");
  }
  return info[index].As<Napi::String>().Utf8Value();
}

uint32_t PortArg(const Napi::CallbackInfo& info, size_t index) {
  if (info.Length() <= index || !info[index].IsNumber()) {
    throw Napi::TypeError::New(info.Env(), "port must be a number");
  }
  const double port = info[index].As<Napi::Number>().DoubleValue();
  if (!(port >= 0 && port <= 65535)) throw Napi::RangeError::New(info.Env(), "port out of range");
  return static_cast<uint32_t>(port);
}

Napi::Uint8Array BytesArg(const Napi::CallbackInfo& info, size_t index, const char* what) {
  if (info.Length() <= index || !info[index].IsTypedArray() ||
      info[index].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a Uint8Array");
  }
  return info[index].As<Napi::Uint8Array>();
}

Napi::Value TakeBuffer(Napi::Env env, uint8_t*& data, size_t length) {
  uint8_t* owned = data;
  data = nullptr;
  if (length < kCopyBelowBytes) {
    Napi::Buffer<uint8_t> copy = Napi::Buffer<uint8_t>::Copy(env, owned, length);
    std::free(owned);
    return copy;
  }
  return Napi::Buffer<uint8_t>::New(env, owned, length,
                                    [](Napi::Env, uint8_t* bytes) { std::free(bytes); });
}

// What a queued payload send keeps until its bytes are written: the JS value (so the memory stays
// alive) and, when the payload lies in a block of this transport's pool, that block's id (held, so
// JS releasing the block early does not let a received frame reuse it under the send).
struct SendToken {
  Napi::Reference<Napi::Value> payload;
  uint32_t block = 0;
};

class Transport;

// A listener or a connection: one libuv poll handle on its fd. Freed in the handle's close callback.
struct Socket {
  Transport* owner = nullptr;
  uv_poll_t poll{};
  uint64_t id = 0;
  bool closed = false;
  int pollMask = 0;
  // Listener.
  bool listener = false;
  int listenFd = -1;
  bool tcp = false;
  uint64_t maxFrameBytes = 0;
  uv_timer_t* retry = nullptr;  // re-enables accepting after EMFILE
  // Connection.
  std::unique_ptr<FrameConnection> conn;
  bool connecting = false;
  bool closing = false;  // JS asked for a graceful close
  bool shutWr = false;
};

class Transport : public Napi::ObjectWrap<Transport>, public threefs::PayloadAllocator {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Transport",
                       {
                           InstanceMethod<&Transport::ListenTcp>("listenTcp"),
                           InstanceMethod<&Transport::ListenUnix>("listenUnix"),
                           InstanceMethod<&Transport::CloseListener>("closeListener"),
                           InstanceMethod<&Transport::ConnectTcp>("connectTcp"),
                           InstanceMethod<&Transport::ConnectUnix>("connectUnix"),
                           InstanceMethod<&Transport::Send>("send"),
                           InstanceMethod<&Transport::Flush>("flush"),
                           InstanceMethod<&Transport::Pause>("pause"),
                           InstanceMethod<&Transport::Resume>("resume"),
                           InstanceMethod<&Transport::Close>("close"),
                           InstanceMethod<&Transport::Destroy>("destroy"),
                           InstanceMethod<&Transport::OpenSockets>("openSockets"),
                           InstanceMethod<&Transport::ReleaseBlock>("releaseBlock"),
                           InstanceMethod<&Transport::PoolStats>("poolStats"),
                           InstanceMethod<&Transport::Stop>("stop"),
                       });
  }

  // new Transport(onEvents: (batch: unknown[]) => void, payloadPoolBytes: number)
  explicit Transport(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<Transport>(info), env_(info.Env()), pool_(PoolLimitArg(info)) {
    if (info.Length() < 1 || !info[0].IsFunction()) {
      throw Napi::TypeError::New(env_, "Transport needs an event callback");
    }
    callback_ = Napi::Persistent(info[0].As<Napi::Function>());
    context_ = std::make_unique<Napi::AsyncContext>(env_, "threefs-transport");
    if (napi_get_uv_event_loop(env_, &loop_) != napi_ok || loop_ == nullptr) {
      throw Napi::Error::New(env_, "transport: no libuv loop");
    }
    idle_ = new uv_idle_t;
    uv_idle_init(loop_, idle_);
    idle_->data = this;
    Ref();  // the object lives as long as its sockets can call back into it
    napi_add_env_cleanup_hook(env_, &Transport::OnEnvCleanup, this);
  }

  ~Transport() override {
    napi_remove_env_cleanup_hook(env_, &Transport::OnEnvCleanup, this);
    unreffed_ = true;  // the wrapper is being finalized: nothing left to unref
    Shutdown();
  }

  uint8_t* AllocatePayload(size_t length, uint32_t* block) override {
    *block = 0;
    if (length >= kCopyBelowBytes) {
      if (threefs::PayloadPool::Block* pooled = pool_.Acquire(length)) {
        *block = pooled->id;
        return pooled->data;
      }
    }
    return static_cast<uint8_t*>(std::malloc(length));
  }

  void FreePayload(uint8_t* data, uint32_t block) override {
    if (block == 0) {
      std::free(data);
    } else {
      pool_.Release(block);
    }
  }

 private:
  // The environment is going away (worker exit, process exit): close every socket first.
  static void OnEnvCleanup(void* self) { static_cast<Transport*>(self)->Shutdown(); }

  static size_t PoolLimitArg(const Napi::CallbackInfo& info) {
    if (info.Length() < 2 || !info[1].IsNumber()) {
      throw Napi::TypeError::New(info.Env(), "Transport needs a payload pool size in bytes");
    }
    const double bytes = info[1].As<Napi::Number>().DoubleValue();
    if (!(bytes >= 0 && bytes <= 64.0 * 1024 * 1024 * 1024)) {
      throw Napi::RangeError::New(info.Env(), "payload pool size out of range");
    }
    return static_cast<size_t>(bytes);
  }

  // The long-lived ArrayBuffer over a pool block, created the first time the block goes to JS.
  // Its finalizer owns the memory from then on: JS may hold it after the pool is gone.
  Napi::Value BlockArrayBuffer(uint32_t id) {
    threefs::PayloadPool::Block* block = pool_.Find(id);
    if (block == nullptr) throw Napi::Error::New(env_, "transport: unknown payload block");
    if (block->handle == nullptr) {
      Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(
          env_, block->data, block->capacity, [](Napi::Env, void* data) { std::free(data); });
      block->handle = new Napi::Reference<Napi::ArrayBuffer>(Napi::Persistent(buffer));
    }
    return static_cast<Napi::Reference<Napi::ArrayBuffer>*>(block->handle)->Value();
  }

  // --- delivery ---

  void Deliver(std::vector<Event>* events) {
    if (events->empty()) return;
    Napi::HandleScope scope(env_);
    Napi::Array batch = Napi::Array::New(env_, events->size() * kEventStride);
    uint32_t slot = 0;
    for (Event& event : *events) {
      Napi::Value a = env_.Undefined();
      Napi::Value b = env_.Undefined();
      Napi::Value c = env_.Undefined();
      uint32_t block = 0;
      switch (event.type) {
        case EventType::kAccepted:
          a = Napi::String::New(env_, event.text);
          break;
        case EventType::kFrame:
          a = TakeBuffer(env_, event.head, event.headLen);
          event.aux = event.payloadLen;
          if (event.payloadBlock != 0) {
            block = event.payloadBlock;
            b = BlockArrayBuffer(block);
            event.payload = nullptr;  // the block stays in use until JS releases it
          } else if (event.hasPayload) {
            b = TakeBuffer(env_, event.payload, event.payloadLen);
          }
          c = Napi::Boolean::New(env_, event.crcOk);
          break;
        case EventType::kBadHeader:
          a = TakeBuffer(env_, event.head, event.headLen);
          break;
        case EventType::kClosed:
          a = Napi::String::New(env_, event.err == 0 ? "" : ErrnoName(event.err));
          b = Napi::String::New(env_, event.text);
          break;
        default:
          break;
      }
      threefs::FreeEventMemory(&event, this);
      batch.Set(slot++, Napi::Number::New(env_, static_cast<double>(event.type)));
      batch.Set(slot++, Napi::Number::New(env_, static_cast<double>(event.conn)));
      batch.Set(slot++, Napi::Number::New(env_, static_cast<double>(event.aux)));
      batch.Set(slot++, a);
      batch.Set(slot++, b);
      batch.Set(slot++, c);
      batch.Set(slot++, Napi::Number::New(env_, block));
    }
    events->clear();
    try {
      // MakeCallback runs nextTicks and promise jobs afterwards, as for any Node I/O callback.
      callback_.MakeCallback(Value(), {batch}, *context_);
    } catch (const Napi::Error& err) {
      napi_fatal_exception(env_, err.Value());  // a throwing handler is an uncaught exception
    }
  }

  // Events caused by a JS call are delivered from the idle callback, after that call returns.
  void Defer() {
    if (!uv_is_active(reinterpret_cast<uv_handle_t*>(idle_))) uv_idle_start(idle_, OnIdle);
  }

  static void OnIdle(uv_idle_t* handle) {
    auto* self = static_cast<Transport*>(handle->data);
    uv_idle_stop(handle);
    std::vector<Event> events;
    events.swap(self->deferred_);
    std::vector<uint64_t> parse;
    parse.swap(self->pendingParse_);
    for (uint64_t id : parse) {
      Socket* s = self->Find(id);
      if (s == nullptr || s->conn == nullptr) continue;
      self->Guard(s, &events, [&] { s->conn->ParseBuffered(&events); });
      self->UpdatePoll(s);
    }
    self->Deliver(&events);
  }

  // --- sockets ---

  Socket* Find(uint64_t id) {
    auto it = sockets_.find(id);
    return it == sockets_.end() ? nullptr : it->second;
  }

  Socket* Adopt(bool listener, int fd) {
    auto* s = new Socket;
    s->owner = this;
    s->id = nextId_++;
    s->listener = listener;
    if (uv_poll_init(loop_, &s->poll, fd) != 0) {
      delete s;
      return nullptr;
    }
    s->poll.data = s;
    sockets_.emplace(s->id, s);
    return s;
  }

  static void FreeSocket(uv_handle_t* handle) { delete static_cast<Socket*>(handle->data); }
  static void FreeTimer(uv_handle_t* handle) { delete reinterpret_cast<uv_timer_t*>(handle); }

  // Runs `step`, closing the connection if it ran out of memory: bad input never crashes us.
  template <typename Step>
  void Guard(Socket* s, std::vector<Event>* events, Step step) {
    try {
      step();
    } catch (const std::bad_alloc&) {
      CloseSocket(s, ENOMEM, "malloc", events);
    }
  }

  void UpdatePoll(Socket* s) {
    if (s->closed || s->listener) return;
    FrameConnection& c = *s->conn;
    int mask = 0;
    if (!c.eof() && (!c.paused() || c.discarding()) && !s->connecting) {
      mask |= UV_READABLE | UV_DISCONNECT;
    }
    if (s->connecting || c.hasQueued()) mask |= UV_WRITABLE;
    if (mask == s->pollMask) return;
    s->pollMask = mask;
    if (mask == 0) {
      uv_poll_stop(&s->poll);
    } else {
      uv_poll_start(&s->poll, mask, OnPoll);
    }
  }

  void CloseSocket(Socket* s, int err, const char* syscall, std::vector<Event>* events) {
    if (s->closed) return;
    s->closed = true;
    uv_poll_stop(&s->poll);  // removes the fd from epoll before it is closed
    if (s->listener) {
      close(s->listenFd);
      if (s->retry != nullptr) {
        uv_close(reinterpret_cast<uv_handle_t*>(s->retry), FreeTimer);
        s->retry = nullptr;
      }
    } else {
      std::vector<void*> released;
      s->conn->TakeAllTokens(&released);
      ReleaseTokens(&released);
      s->conn->CloseFd();
      Event closed(EventType::kClosed, s->id);
      closed.err = err;
      closed.text = syscall == nullptr ? "" : syscall;
      events->push_back(std::move(closed));
    }
    sockets_.erase(s->id);
    uv_close(reinterpret_cast<uv_handle_t*>(&s->poll), FreeSocket);
  }

  void ReleaseTokens(std::vector<void*>* tokens) {
    for (void* token : *tokens) {
      auto* sent = static_cast<SendToken*>(token);
      if (sent->block != 0) pool_.Unhold(sent->block);
      delete sent;
    }
    tokens->clear();
  }

  // Writes what is queued; returns bytes written (-1 if the socket closed on a write error).
  long long FlushSocket(Socket* s, std::vector<Event>* events) {
    if (s->closed || s->connecting) return 0;
    std::vector<void*> released;
    int err = 0;
    const long long written = s->conn->Flush(&released, &err);
    ReleaseTokens(&released);
    if (written < 0) {
      CloseSocket(s, err, "write", events);
      return -1;
    }
    MaybeFinishClose(s, events);
    UpdatePoll(s);
    return written;
  }

  void MaybeFinishClose(Socket* s, std::vector<Event>* events) {
    if (s->closed || !s->closing || s->conn->hasQueued()) return;
    if (!s->shutWr) {
      shutdown(s->conn->fd(), SHUT_WR);
      s->shutWr = true;
    }
    if (s->conn->eof()) CloseSocket(s, 0, nullptr, events);
  }

  static void OnPoll(uv_poll_t* handle, int status, int events) {
    auto* s = static_cast<Socket*>(handle->data);
    Transport* self = s->owner;
    if (s->closed) return;
    std::vector<Event> out;
    if (s->listener) {
      self->Accept(s, &out);
    } else {
      self->ServiceConnection(s, status, events, &out);
    }
    self->Deliver(&out);
  }

  void ServiceConnection(Socket* s, int status, int ready, std::vector<Event>* out) {
    if (status < 0) {
      // libuv reports EPOLLERR as UV_EBADF; the socket itself knows what went wrong.
      int err = 0;
      socklen_t len = sizeof(err);
      if (getsockopt(s->conn->fd(), SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err == 0) err = -status;
      CloseSocket(s, err, s->connecting ? "connect" : "read", out);
      return;
    }
    FrameConnection& c = *s->conn;
    if (s->connecting) {
      if ((ready & UV_WRITABLE) == 0) return;
      int err = 0;
      socklen_t len = sizeof(err);
      if (getsockopt(c.fd(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      if (err != 0) {
        CloseSocket(s, err, "connect", out);
        return;
      }
      s->connecting = false;
      out->push_back(Event(EventType::kConnected, s->id));
    }
    if (ready & (UV_READABLE | UV_DISCONNECT)) {
      int err = 0;
      FrameConnection::ReadStop stop = FrameConnection::ReadStop::kWouldBlock;
      Guard(s, out, [&] { stop = c.Read(kReadBudget, out, &err); });
      if (s->closed) return;
      if (stop == FrameConnection::ReadStop::kError) {
        CloseSocket(s, err, "read", out);
        return;
      }
      if (stop == FrameConnection::ReadStop::kEof) MaybeFinishClose(s, out);
      if (s->closed) return;
    }
    if (ready & UV_WRITABLE) {
      const long long written = FlushSocket(s, out);
      if (written < 0) return;
      if (written > 0) out->push_back(Event(EventType::kWritten, s->id, static_cast<uint64_t>(written)));
    }
    UpdatePoll(s);
  }

  void Accept(Socket* l, std::vector<Event>* out) {
    for (int i = 0; i < kAcceptsPerWake; i++) {
      const int fd = accept4(l->listenFd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        // Out of fds or memory: stop polling this listener for a while instead of spinning.
        uv_poll_stop(&l->poll);
        if (l->retry == nullptr) {
          l->retry = new uv_timer_t;
          uv_timer_init(loop_, l->retry);
          l->retry->data = l;
        }
        uv_timer_start(
            l->retry,
            [](uv_timer_t* timer) {
              auto* listener = static_cast<Socket*>(timer->data);
              if (!listener->closed) uv_poll_start(&listener->poll, UV_READABLE, OnPoll);
            },
            kListenerPauseMs, 0);
        return;
      }
      if (l->tcp) TuneTcp(fd);
      Socket* s = Adopt(false, fd);
      if (s == nullptr) {
        close(fd);
        continue;
      }
      s->conn = std::make_unique<FrameConnection>(s->id, fd, l->maxFrameBytes, this);
      Event accepted(EventType::kAccepted, s->id, l->id);
      accepted.text = l->tcp ? PeerText(fd) : "";
      out->push_back(std::move(accepted));
      UpdatePoll(s);
    }
  }

  Socket* Live(const Napi::CallbackInfo& info, bool listener) {
    if (stopped_) throw Napi::Error::New(info.Env(), "transport is stopped");
    Socket* s = Find(IdArg(info, 0));
    if (s != nullptr && s->listener != listener) {
      throw Napi::TypeError::New(info.Env(), listener ? "not a listener id" : "not a connection id");
    }
    return s;  // nullptr: already closed, and the call is a no-op
  }

  void CheckRunning(Napi::Env env) {
    if (stopped_) throw Napi::Error::New(env, "transport is stopped");
  }

  Napi::Value StartListener(Napi::Env env, int fd, bool tcp, uint64_t maxFrame) {
    Socket* s = Adopt(true, fd);
    if (s == nullptr) {
      close(fd);
      throw Napi::Error::New(env, "transport: uv_poll_init failed");
    }
    s->listenFd = fd;
    s->tcp = tcp;
    s->maxFrameBytes = maxFrame;
    uv_poll_start(&s->poll, UV_READABLE, OnPoll);
    return Napi::Number::New(env, static_cast<double>(s->id));
  }

  // listenTcp(host: string, port: number, maxFrameBytes: number): [listenerId, port]
  Napi::Value ListenTcp(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckRunning(env);
    const std::string host = StringArg(info, 0, "host");
    const ParsedAddress address = TcpAddress(env, host, PortArg(info, 1));
    const uint64_t maxFrame = MaxFrameArg(info, 2);
    const int fd = socket(address.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) ThrowErrno(env, "socket", errno);
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (bind(fd, reinterpret_cast<const sockaddr*>(&address.storage), address.length) != 0 ||
        listen(fd, 511) != 0) {
      const int err = errno;
      close(fd);
      ThrowErrno(env, "listen " + host, err);
    }
    sockaddr_storage bound{};
    socklen_t length = sizeof(bound);
    getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length);
    const uint16_t port = bound.ss_family == AF_INET6
                              ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                              : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    Napi::Array result = Napi::Array::New(env, 2);
    result.Set(0u, StartListener(env, fd, true, maxFrame));
    result.Set(1u, Napi::Number::New(env, port));
    return result;
  }

  // listenUnix(path: string, maxFrameBytes: number): listenerId
  Napi::Value ListenUnix(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckRunning(env);
    const std::string path = StringArg(info, 0, "path");
    const ParsedAddress address = UnixAddress(env, path);
    const uint64_t maxFrame = MaxFrameArg(info, 1);
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) ThrowErrno(env, "socket", errno);
    if (bind(fd, reinterpret_cast<const sockaddr*>(&address.storage), address.length) != 0 ||
        listen(fd, 511) != 0) {
      const int err = errno;
      close(fd);
      ThrowErrno(env, "listen " + path, err);
    }
    return StartListener(env, fd, false, maxFrame);
  }

  Napi::Value CloseListener(const Napi::CallbackInfo& info) {
    if (Socket* s = Live(info, true)) CloseSocket(s, 0, nullptr, &deferred_);
    return info.Env().Undefined();
  }

  Napi::Value StartConnection(Napi::Env env, int fd, int connectErrno, uint64_t maxFrame) {
    Socket* s = Adopt(false, fd);
    if (s == nullptr) {
      close(fd);
      throw Napi::Error::New(env, "transport: uv_poll_init failed");
    }
    s->conn = std::make_unique<FrameConnection>(s->id, fd, maxFrame, this);
    if (connectErrno == 0) {
      deferred_.push_back(Event(EventType::kConnected, s->id));
    } else if (connectErrno == EINPROGRESS || connectErrno == EAGAIN) {
      s->connecting = true;
    } else {
      CloseSocket(s, connectErrno, "connect", &deferred_);
    }
    if (!s->closed) UpdatePoll(s);
    Defer();
    return Napi::Number::New(env, static_cast<double>(s->id));
  }

  // connectTcp(ip: string, port: number, maxFrameBytes: number): connId. The outcome arrives as a
  // `connected` or `closed` event.
  Napi::Value ConnectTcp(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckRunning(env);
    const ParsedAddress address = TcpAddress(env, StringArg(info, 0, "ip"), PortArg(info, 1));
    const uint64_t maxFrame = MaxFrameArg(info, 2);
    const int fd = socket(address.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) ThrowErrno(env, "socket", errno);
    TuneTcp(fd);
    const int r = connect(fd, reinterpret_cast<const sockaddr*>(&address.storage), address.length);
    return StartConnection(env, fd, r == 0 ? 0 : errno, maxFrame);
  }

  // connectUnix(path: string, maxFrameBytes: number): connId
  Napi::Value ConnectUnix(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckRunning(env);
    const ParsedAddress address = UnixAddress(env, StringArg(info, 0, "path"));
    const uint64_t maxFrame = MaxFrameArg(info, 1);
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) ThrowErrno(env, "socket", errno);
    const int r = connect(fd, reinterpret_cast<const sockaddr*>(&address.storage), address.length);
    return StartConnection(env, fd, r == 0 ? 0 : errno, maxFrame);
  }

  // send(conn, head: Uint8Array, payload?: Uint8Array): queues one frame; flush() writes it. The
  // head is copied; a large payload is written from JS memory, referenced until written.
  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Socket* s = Live(info, false);
    Napi::Uint8Array head = BytesArg(info, 1, "head");
    const bool hasPayload = info.Length() > 2 && !info[2].IsUndefined();
    Napi::Uint8Array payload = hasPayload ? BytesArg(info, 2, "payload") : Napi::Uint8Array();
    if (s == nullptr || s->closed || s->closing) return Napi::Boolean::New(env, false);
    threefs::SendItem item;
    item.head.reserve(head.ByteLength() + (hasPayload && payload.ByteLength() < kCopyBelowBytes
                                               ? payload.ByteLength()
                                               : 0));
    item.head.assign(head.Data(), head.Data() + head.ByteLength());
    if (hasPayload) {
      if (payload.ByteLength() < kCopyBelowBytes) {
        item.head.insert(item.head.end(), payload.Data(), payload.Data() + payload.ByteLength());
      } else {
        item.payload = payload.Data();
        item.payloadLen = payload.ByteLength();
        auto* token = new SendToken{Napi::Persistent(info[2]), 0};
        if (threefs::PayloadPool::Block* pooled = pool_.Containing(item.payload, item.payloadLen)) {
          pool_.Hold(pooled);
          token->block = pooled->id;
        }
        item.token = token;
      }
    }
    s->conn->Queue(std::move(item));
    return Napi::Boolean::New(env, true);
  }

  // flush(conn): number of bytes written now (the rest goes when the socket is writable).
  Napi::Value Flush(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Socket* s = Live(info, false);
    if (s == nullptr) return Napi::Number::New(env, 0);
    const long long written = FlushSocket(s, &deferred_);
    if (!deferred_.empty()) Defer();
    return Napi::Number::New(env, written < 0 ? 0 : static_cast<double>(written));
  }

  Napi::Value Pause(const Napi::CallbackInfo& info) {
    if (Socket* s = Live(info, false)) {
      s->conn->set_paused(true);
      UpdatePoll(s);
    }
    return info.Env().Undefined();
  }

  Napi::Value Resume(const Napi::CallbackInfo& info) {
    if (Socket* s = Live(info, false)) {
      s->conn->set_paused(false);
      UpdatePoll(s);
      pendingParse_.push_back(s->id);  // frames already buffered would wait for the next bytes
      Defer();
    }
    return info.Env().Undefined();
  }

  // close(conn): flush, send FIN, drop input until the peer's FIN, then close.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (Socket* s = Live(info, false)) {
      if (!s->closing) {
        s->closing = true;
        s->conn->Discard();
        if (s->connecting) {
          CloseSocket(s, 0, nullptr, &deferred_);
        } else {
          FlushSocket(s, &deferred_);
          MaybeFinishClose(s, &deferred_);
          UpdatePoll(s);
        }
        if (!deferred_.empty()) Defer();
      }
    }
    return info.Env().Undefined();
  }

  // destroy(conn): close now, dropping unsent frames.
  Napi::Value Destroy(const Napi::CallbackInfo& info) {
    if (Socket* s = Live(info, false)) {
      CloseSocket(s, 0, nullptr, &deferred_);
      Defer();
    }
    return info.Env().Undefined();
  }

  // releaseBlock(id): JS collected the view of a pool block; the block may be reused.
  Napi::Value ReleaseBlock(const Napi::CallbackInfo& info) {
    if (!stopped_) pool_.Release(static_cast<uint32_t>(IdArg(info, 0)));
    return info.Env().Undefined();
  }

  // poolStats(): [total bytes, bytes in use, releases of unknown or free blocks]
  Napi::Value PoolStats(const Napi::CallbackInfo& info) {
    Napi::Array stats = Napi::Array::New(info.Env(), 3);
    stats.Set(0u, Napi::Number::New(info.Env(), static_cast<double>(pool_.totalBytes())));
    stats.Set(1u, Napi::Number::New(info.Env(), static_cast<double>(pool_.inUseBytes())));
    stats.Set(2u, Napi::Number::New(info.Env(), static_cast<double>(pool_.badReleases())));
    return stats;
  }

  Napi::Value OpenSockets(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(sockets_.size()));
  }

  // stop(): closes every socket now, without events. The transport is unusable afterwards.
  Napi::Value Stop(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  void Shutdown() {
    if (stopped_) return;
    stopped_ = true;
    std::vector<Event> dropped;
    std::vector<Socket*> all;
    for (auto& [id, s] : sockets_) all.push_back(s);
    for (Socket* s : all) CloseSocket(s, 0, nullptr, &dropped);
    for (Event& event : dropped) threefs::FreeEventMemory(&event, this);
    for (Event& event : deferred_) threefs::FreeEventMemory(&event, this);
    deferred_.clear();
    pendingParse_.clear();
    uv_idle_stop(idle_);
    uv_close(reinterpret_cast<uv_handle_t*>(idle_),
              [](uv_handle_t* handle) { delete reinterpret_cast<uv_idle_t*>(handle); });
    // Blocks JS has seen belong to their ArrayBuffers now; the rest are freed here.
    for (threefs::PayloadPool::Block& block : pool_.Drain()) {
      if (block.handle != nullptr) {
        delete static_cast<Napi::Reference<Napi::ArrayBuffer>*>(block.handle);
      } else {
        std::free(block.data);
      }
    }
    if (!unreffed_) {
      unreffed_ = true;
      Unref();
    }
  }

  Napi::Env env_;
  threefs::PayloadPool pool_;
  Napi::FunctionReference callback_;
  std::unique_ptr<Napi::AsyncContext> context_;
  uv_loop_t* loop_ = nullptr;
  uv_idle_t* idle_ = nullptr;
  std::unordered_map<uint64_t, Socket*> sockets_;
  std::vector<Event> deferred_;
  std::vector<uint64_t> pendingParse_;
  uint64_t nextId_ = 1;
  bool stopped_ = false;
  bool unreffed_ = false;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Transport", Transport::Define(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(threefs_transport, Init)
