// Low-level operations → queued Requests, reading requests off the device, and the request table
// (see the header). Handlers copy what they need out of libfuse's buffers (names, write data)
// because those buffers are reused as soon as the handler returns; the reply comes later from JS.
#include "fuse_bridge.h"

#include <fcntl.h>

#include <cerrno>
#include <cstring>

#include "write_slabs.h"

namespace threefs::fuse {

Request::~Request() {
  if (data == nullptr) return;
  if (dataPooled)
    WriteSlabs::Process().Release(data);
  else
    delete[] data;
}

namespace {

Bridge* BridgeOf(fuse_req_t req) { return static_cast<Bridge*>(fuse_req_userdata(req)); }

std::unique_ptr<Request> NewRequest(fuse_req_t req, uint32_t op, fuse_ino_t ino) {
  auto r = std::make_unique<Request>();
  r->op = op;
  r->ino = ino;
  const fuse_ctx* ctx = fuse_req_ctx(req);
  r->uid = ctx->uid;
  r->gid = ctx->gid;
  r->pid = static_cast<uint32_t>(ctx->pid);
  r->umask = ctx->umask;
  return r;
}

void Send(fuse_req_t req, std::unique_ptr<Request> r) { BridgeOf(req)->Submit(req, std::move(r)); }

void InterruptCallback(fuse_req_t req, void* data) {
  // Runs with libfuse's request lock held: never reply here, only tell JS (which replies by id).
  BridgeOf(req)->OnInterrupt(static_cast<uint64_t>(reinterpret_cast<uintptr_t>(data)));
}

void Init(void* userdata, fuse_conn_info* conn) {
  auto* bridge = static_cast<Bridge*>(userdata);
  const MountOptions& o = bridge->Options();
  // Big requests (max_write/readahead 1 MiB), async reads, O_TRUNC inside open, parallel
  // lookups in one directory. Writeback cache stays off: every write reaches us, so lengths,
  // write errors and other clients see what the application wrote, without kernel-side delay.
  if (conn->capable & FUSE_CAP_ASYNC_READ) conn->want |= FUSE_CAP_ASYNC_READ;
  if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC) conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
  if (conn->capable & FUSE_CAP_PARALLEL_DIROPS) conn->want |= FUSE_CAP_PARALLEL_DIROPS;
  if (conn->capable & FUSE_CAP_READDIRPLUS) conn->want |= FUSE_CAP_READDIRPLUS;
  conn->want &= ~(FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE |
                  FUSE_CAP_SPLICE_MOVE);
  conn->max_write = o.maxWrite;
  conn->max_read = o.maxWrite;  // must match the max_read mount option
  conn->max_readahead = o.maxReadahead;
  conn->max_background = o.maxBackground;
  conn->congestion_threshold = o.maxBackground * 3 / 4;
}

void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  auto r = NewRequest(req, kLookup, parent);
  r->name = name;
  Send(req, std::move(r));
}

void Forget(fuse_req_t req, fuse_ino_t, uint64_t) {
  // Inode numbers are meta's inode ids, so there is no table to shrink: count and acknowledge.
  BridgeOf(req)->CountForgets(1);
  fuse_reply_none(req);
}

void ForgetMulti(fuse_req_t req, size_t count, fuse_forget_data*) {
  BridgeOf(req)->CountForgets(count);
  fuse_reply_none(req);
}

void Getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  auto r = NewRequest(req, kGetattr, ino);
  r->fh = fi ? fi->fh : 0;
  Send(req, std::move(r));
}

double TimespecMs(const timespec& t) {
  return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) / 1e6;
}

void Setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi) {
  auto r = NewRequest(req, kSetattr, ino);
  r->fh = fi ? fi->fh : 0;
  r->flags = static_cast<uint32_t>(to_set);
  r->mode = attr->st_mode & 07777;
  r->setUid = attr->st_uid;
  r->setGid = attr->st_gid;
  r->setSize = static_cast<uint64_t>(attr->st_size);
  r->setAtimeMs = TimespecMs(attr->st_atim);
  r->setMtimeMs = TimespecMs(attr->st_mtim);
  Send(req, std::move(r));
}

void Readlink(fuse_req_t req, fuse_ino_t ino) { Send(req, NewRequest(req, kReadlink, ino)); }

void Mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t) {
  auto r = NewRequest(req, kMknod, parent);
  r->name = name;
  r->mode = mode;  // with the type bits: JS refuses anything but regular files
  Send(req, std::move(r));
}

void Mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  auto r = NewRequest(req, kMkdir, parent);
  r->name = name;
  r->mode = mode & 07777;
  Send(req, std::move(r));
}

void Unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  auto r = NewRequest(req, kUnlink, parent);
  r->name = name;
  Send(req, std::move(r));
}

void Rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  auto r = NewRequest(req, kRmdir, parent);
  r->name = name;
  Send(req, std::move(r));
}

void Symlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) {
  auto r = NewRequest(req, kSymlink, parent);
  r->name = name;
  r->name2 = link;
  Send(req, std::move(r));
}

void Rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
            const char* newname, unsigned int flags) {
  auto r = NewRequest(req, kRename, parent);
  r->name = name;
  r->ino2 = newparent;
  r->name2 = newname;
  r->flags = flags;
  Send(req, std::move(r));
}

void Link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
  auto r = NewRequest(req, kLink, ino);
  r->ino2 = newparent;
  r->name = newname;
  Send(req, std::move(r));
}

void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  auto r = NewRequest(req, kOpen, ino);
  r->flags = static_cast<uint32_t>(fi->flags);
  Send(req, std::move(r));
}

void Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  auto r = NewRequest(req, kCreate, parent);
  r->name = name;
  r->mode = mode & 07777;
  r->flags = static_cast<uint32_t>(fi->flags);
  Send(req, std::move(r));
}

void Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  auto r = NewRequest(req, kRead, ino);
  r->size = size;
  r->offset = off;
  r->fh = fi->fh;
  Send(req, std::move(r));
}

void Write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off,
           fuse_file_info* fi) {
  auto r = NewRequest(req, kWrite, ino);
  r->size = size;
  r->offset = off;
  r->fh = fi->fh;
  // One memcpy out of the session buffer (reused when we return); JS gets this memory as a
  // Buffer without another copy. Large writes land in a recycled slab (write_slabs.h).
  r->data = WriteSlabs::Process().Acquire(size);
  r->dataPooled = r->data != nullptr;
  if (!r->dataPooled) r->data = new char[size > 0 ? size : 1];
  std::memcpy(r->data, buf, size);
  BridgeOf(req)->Unflushed().Wrote(ino);
  Send(req, std::move(r));
}

void Flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  // No WRITE for this inode since its last successful flush: JS has nothing of it to send.
  const uint64_t covers = BridgeOf(req)->Unflushed().Covering(ino);
  if (covers == 0) {
    fuse_reply_err(req, 0);
    return;
  }
  auto r = NewRequest(req, kFlush, ino);
  r->fh = fi->fh;
  r->flushCovers = covers;
  Send(req, std::move(r));
}

void Release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  auto r = NewRequest(req, kRelease, ino);
  r->fh = fi->fh;
  Send(req, std::move(r));
}

void Fsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) {
  auto r = NewRequest(req, kFsync, ino);
  r->fh = fi->fh;
  r->flags = static_cast<uint32_t>(datasync);
  Send(req, std::move(r));
}

void Opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  auto r = NewRequest(req, kOpendir, ino);
  r->flags = static_cast<uint32_t>(fi->flags);
  Send(req, std::move(r));
}

void ReaddirCommon(uint32_t op, fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                   fuse_file_info* fi) {
  auto r = NewRequest(req, op, ino);
  r->size = size;
  r->offset = off;
  r->fh = fi->fh;
  Send(req, std::move(r));
}

void Readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  ReaddirCommon(kReaddir, req, ino, size, off, fi);
}

void Readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  ReaddirCommon(kReaddirplus, req, ino, size, off, fi);
}

void Releasedir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  auto r = NewRequest(req, kReleasedir, ino);
  r->fh = fi->fh;
  Send(req, std::move(r));
}

void Statfs(fuse_req_t req, fuse_ino_t ino) { Send(req, NewRequest(req, kStatfs, ino)); }

const fuse_lowlevel_ops kOps = [] {
  fuse_lowlevel_ops ops{};
  ops.init = Init;
  ops.lookup = Lookup;
  ops.forget = Forget;
  ops.forget_multi = ForgetMulti;
  ops.getattr = Getattr;
  ops.setattr = Setattr;
  ops.readlink = Readlink;
  ops.mknod = Mknod;
  ops.mkdir = Mkdir;
  ops.unlink = Unlink;
  ops.rmdir = Rmdir;
  ops.symlink = Symlink;
  ops.rename = Rename;
  ops.link = Link;
  ops.open = Open;
  ops.create = Create;
  ops.read = Read;
  ops.write = Write;
  ops.flush = Flush;
  ops.release = Release;
  ops.fsync = Fsync;
  ops.opendir = Opendir;
  ops.readdir = Readdir;
  ops.readdirplus = Readdirplus;
  ops.releasedir = Releasedir;
  ops.statfs = Statfs;
  return ops;
}();

}  // namespace

Bridge::~Bridge() { Unmount(); }

std::string Bridge::Mount(const MountOptions& options) {
  if (se_ != nullptr) return "already mounted";
  options_ = options;
  std::string opts = "fsname=" + options.fsname + ",subtype=threefs";
  opts += ",max_read=" + std::to_string(options.maxWrite);
  if (options.allowOther) opts += ",allow_other";
  std::vector<std::string> argvStore = {"threefs", "-o", opts};
  if (options.debug) argvStore.push_back("-d");
  std::vector<char*> argv;
  for (auto& a : argvStore) argv.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  se_ = fuse_session_new(&args, &kOps, sizeof(kOps), this);
  fuse_opt_free_args(&args);
  if (se_ == nullptr) return "fuse_session_new failed (bad mount options?)";
  if (fuse_session_mount(se_, options.mountpoint.c_str()) != 0) {
    fuse_session_destroy(se_);
    se_ = nullptr;
    return "mounting " + options.mountpoint + " failed";
  }
  // Read on the event loop: a read with nothing waiting must return EAGAIN, not block the loop.
  int fd = fuse_session_fd(se_);
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    std::string message = std::string("making /dev/fuse non-blocking: ") + std::strerror(errno);
    fuse_session_unmount(se_);
    fuse_session_destroy(se_);
    se_ = nullptr;
    return message;
  }
  ended_ = false;
  return "";
}

bool Bridge::ReceiveSome(size_t max) {
  if (ended_) return false;
  for (size_t n = 0; n < max && !fuse_session_exited(se_); n++) {
    int res = fuse_session_receive_buf(se_, &buf_);
    if (res == -EINTR) continue;
    if (res == -EAGAIN) return true;  // nothing more waiting
    // 0: the kernel ended the session (unmounted from outside); below 0: the device failed.
    if (res <= 0) return End();
    fuse_session_process_buf(se_, &buf_);
  }
  // `max` handled: the poll fires again for the rest.
  return fuse_session_exited(se_) ? End() : true;
}

bool Bridge::End() {
  if (ended_) return false;
  ended_ = true;
  fuse_session_exit(se_);
  auto ended = std::make_unique<Request>();
  ended->op = kEnded;
  queue_.push_back(std::move(ended));
  return false;
}

void Bridge::Unmount() {
  if (se_ == nullptr) return;
  // Nothing reads the device any more, so nothing adds requests: answer every one JS still
  // holds, so no caller of the mount waits forever, then detach the mount and free the session.
  std::unordered_map<uint64_t, InFlight> held;
  held.swap(inFlight_);
  for (auto& [id, entry] : held) fuse_reply_err(entry.req, EIO);
  fuse_session_unmount(se_);
  fuse_session_destroy(se_);
  se_ = nullptr;
  free(buf_.mem);
  buf_ = fuse_buf{};
}

void Bridge::Submit(fuse_req_t req, std::unique_ptr<Request> request) {
  if (inFlight_.size() >= kMaxInFlight) {
    fuse_reply_err(req, EBUSY);
    return;
  }
  uint64_t id = nextId_++;
  inFlight_.emplace(id, InFlight{req, request->ino, request->flushCovers});
  request->id = id;
  // Registration may call OnInterrupt at once (the interrupt came first), which finds the entry
  // above. The id travels in the pointer.
  fuse_req_interrupt_func(req, InterruptCallback, reinterpret_cast<void*>(static_cast<uintptr_t>(id)));
  queue_.push_back(std::move(request));
}

void Bridge::OnInterrupt(uint64_t id) {
  if (inFlight_.find(id) == inFlight_.end()) return;
  auto event = std::make_unique<Request>();
  event->op = kInterrupt;
  event->id = id;
  queue_.push_back(std::move(event));
}

std::deque<std::unique_ptr<Request>> Bridge::Drain() {
  std::deque<std::unique_ptr<Request>> out;
  out.swap(queue_);
  return out;
}

int Bridge::InvalidateAttributes(uint64_t ino) {
  if (se_ == nullptr) return -ENOTCONN;
  return fuse_lowlevel_notify_inval_inode(se_, ino, -1, 0);
}

fuse_req_t Bridge::Claim(uint64_t id, int replyErrno) {
  auto it = inFlight_.find(id);
  if (it == inFlight_.end()) return nullptr;
  InFlight entry = it->second;
  inFlight_.erase(it);
  // A flush's success is noted before the reply goes out, so a FLUSH after this close(2) sees it.
  if (entry.flushCovers != 0 && replyErrno == 0) unflushed_.Flushed(entry.ino, entry.flushCovers);
  return entry.req;
}

}  // namespace threefs::fuse
