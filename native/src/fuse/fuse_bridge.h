// The libfuse3 side of the FUSE bridge: one session whose /dev/fuse descriptor is read on the
// Node event loop (fuse_addon.cc polls it with libuv), low-level operation handlers that turn
// each request into a queued Request for JS (they never block), and replies keyed by request id.
// A reply names an id, never a raw fuse_req_t, so a late, repeated or post-interrupt reply from
// JS finds no entry and is dropped instead of touching freed memory. Everything here runs on the
// event loop's thread: a request reaches JS without a hand-off between threads, which on a small
// VM costs more than the request itself. So nothing on that thread may make a synchronous call
// into this mount: only this thread could answer it. No Node API here: fuse_addon.cc binds this
// to JS.
#pragma once

#define FUSE_USE_VERSION 34
#include <fuse_lowlevel.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "unflushed_writes.h"

namespace threefs::fuse {

// Operation codes shared with daemons/fuse/native-fuse.ts (keep in step).
enum Op : uint32_t {
  kLookup = 1,
  kGetattr = 2,
  kSetattr = 3,
  kReadlink = 4,
  kMknod = 5,
  kMkdir = 6,
  kUnlink = 7,
  kRmdir = 8,
  kSymlink = 9,
  kRename = 10,
  kLink = 11,
  kOpen = 12,
  kCreate = 13,
  kRead = 14,
  kWrite = 15,
  kFlush = 16,
  kRelease = 17,
  kFsync = 18,
  kOpendir = 19,
  kReaddir = 20,
  kReaddirplus = 21,
  kReleasedir = 22,
  kStatfs = 23,
  kInterrupt = 100,  // a request JS holds was interrupted (id = that request)
  kEnded = 101,      // the session loop ended (unmounted from outside, or the device failed)
};

// attrs arrays from JS: one row per inode.
enum AttrField : int {
  kAttrIno = 0,
  kAttrMode,
  kAttrNlink,
  kAttrUid,
  kAttrGid,
  kAttrSize,
  kAttrAtimeMs,
  kAttrMtimeMs,
  kAttrCtimeMs,
  kAttrBlksize,
  kAttrFields,
};

struct Request {
  uint64_t id = 0;
  uint32_t op = 0;
  uint64_t ino = 0;   // the inode, or the parent directory for name operations
  uint64_t ino2 = 0;  // rename/link: the new parent
  uint64_t fh = 0;
  int64_t offset = 0;
  uint64_t size = 0;
  uint32_t flags = 0;  // open flags, rename flags, setattr valid bits, fsync datasync
  uint32_t mode = 0;
  uint32_t uid = 0, gid = 0, pid = 0, umask = 0;
  std::string name, name2;  // name (and new name / symlink target)
  // setattr values (valid bits in flags)
  uint64_t setSize = 0;
  uint32_t setUid = 0, setGid = 0;
  double setAtimeMs = 0, setMtimeMs = 0;
  // write payload, handed to JS without another copy: a slab of WriteSlabs when dataPooled
  char* data = nullptr;
  bool dataPooled = false;
  // flush: the write generation a successful reply covers (unflushed_writes.h)
  uint64_t flushCovers = 0;
  ~Request();
};

struct MountOptions {
  std::string mountpoint;
  std::string fsname;
  bool allowOther = false;
  bool debug = false;
  uint32_t maxWrite = 1 << 20;
  uint32_t maxReadahead = 1 << 20;
  uint32_t maxBackground = 64;
};

class Bridge {
 public:
  Bridge() = default;
  ~Bridge();
  Bridge(const Bridge&) = delete;
  Bridge& operator=(const Bridge&) = delete;

  // Creates the session and mounts; returns "" or an error message. The caller then polls Fd().
  std::string Mount(const MountOptions& options);
  // Fails requests JS still holds with EIO, unmounts and destroys the session. The caller stops
  // polling Fd() first.
  void Unmount();

  // The session's /dev/fuse descriptor (non-blocking), to poll for readability.
  int Fd() const { return fuse_session_fd(se_); }
  // Reads and handles up to `max` requests, stopping early when none is waiting. Returns false
  // once the session has ended (unmounted from outside, or the device failed), after queueing a
  // kEnded event.
  bool ReceiveSome(size_t max);
  // Ends the session as a failed read would (the poll reported an error); returns false.
  bool End();

  // Everything queued since the last call.
  std::deque<std::unique_ptr<Request>> Drain();

  // Takes the request out of the table; nullptr if it was already answered (or never existed).
  // `replyErrno` is what the reply will say (0: success), so a flush's success is noted.
  fuse_req_t Claim(uint64_t id, int replyErrno = 0);

  bool Mounted() const { return se_ != nullptr; }
  // Tells the kernel its cached attributes of `ino` (size, times) are stale, when its file changed
  // without a request through the mount (a USRBIO write). Attributes only: the page cache is left
  // alone (it is dropped at every open, since opens do not keep it), so no page lock is taken and
  // the call cannot wait on a read this thread has yet to answer. 0, or -errno (-ENOENT: the
  // kernel holds no such inode, nothing to do).
  int InvalidateAttributes(uint64_t ino);
  uint64_t Forgets() const { return forgets_; }
  uint64_t Pending() const { return inFlight_.size(); }

  // libfuse callbacks use these.
  void Submit(fuse_req_t req, std::unique_ptr<Request> request);
  void OnInterrupt(uint64_t id);
  void CountForgets(uint64_t n) { forgets_ += n; }
  UnflushedWrites& Unflushed() { return unflushed_; }
  const MountOptions& Options() const { return options_; }

 private:
  MountOptions options_;
  fuse_session* se_ = nullptr;
  fuse_buf buf_{};  // libfuse's receive buffer, reused for every request
  bool ended_ = false;
  uint64_t forgets_ = 0;
  UnflushedWrites unflushed_;

  struct InFlight {
    fuse_req_t req;
    uint64_t ino;
    uint64_t flushCovers;  // flush requests: the write generation a success covers; else 0
  };

  uint64_t nextId_ = 1;
  std::unordered_map<uint64_t, InFlight> inFlight_;
  std::deque<std::unique_ptr<Request>> queue_;
};

// A bound on requests JS may hold at once; beyond it new requests get EBUSY. The kernel's own
// limits (max_background plus one per blocked caller) keep real loads far below it.
constexpr size_t kMaxInFlight = 1 << 16;

}  // namespace threefs::fuse
