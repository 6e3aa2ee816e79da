// One non-blocking socket speaking RPC frames, for the native transport: reads frames straight into
// their final allocations (a payload's bytes are copied by the kernel once, into the Buffer JS
// receives), checks both CRCs, and writes queued header/body/payload segments with sendmsg. No
// threads and no N-API here: the binding (transport_addon.cc) drives it from libuv readiness
// callbacks on the JS thread and turns its Events into JS values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "frame_header.h"

namespace threefs {

enum class EventType : uint8_t {
  kAccepted = 1,   // conn accepted on listener `aux`; text = peer address
  kConnected = 2,  // an outgoing connect finished
  kFrame = 3,      // head = header+body, payload (when hasPayload); crcOk = data CRC matched
  kBadHeader = 4,  // head = the 40 rejected header bytes; the connection now drops its input
  kWritten = 5,    // aux = bytes written since the last report
  kEnd = 6,        // the peer closed its side; aux = bytes of an unfinished frame
  kClosed = 7,     // the socket is gone; err = errno (0 for a clean close), text = failing syscall
};

// One event for JS. head and payload are malloc'd; whoever holds the Event owns them.
struct Event {
  Event(EventType type_, uint64_t conn_, uint64_t aux_ = 0) : type(type_), conn(conn_), aux(aux_) {}
  EventType type;
  uint64_t conn = 0;
  uint64_t aux = 0;
  uint8_t* head = nullptr;
  size_t headLen = 0;
  uint8_t* payload = nullptr;
  size_t payloadLen = 0;
  bool hasPayload = false;
  bool crcOk = true;
  int err = 0;
  std::string text;
  uint32_t payloadBlock = 0;  // the PayloadAllocator's block id for `payload` (0: malloc'd)
};

// Where payload memory comes from (the binding's pool). Block 0 means plain malloc.
class PayloadAllocator {
 public:
  virtual ~PayloadAllocator() = default;
  // Memory for a payload of `length` bytes, or nullptr when out of memory.
  virtual uint8_t* AllocatePayload(size_t length, uint32_t* block) = 0;
  virtual void FreePayload(uint8_t* data, uint32_t block) = 0;
};

void FreeEventMemory(Event* event, PayloadAllocator* allocator);

// One frame to send: `head` (header + body, a small payload appended) is owned; a large payload is
// borrowed and `token` (opaque to this class) keeps it alive until Flush hands the token back.
struct SendItem {
  std::vector<uint8_t> head;
  const uint8_t* payload = nullptr;
  size_t payloadLen = 0;
  void* token = nullptr;
};

class FrameConnection {
 public:
  enum class ReadStop { kWouldBlock, kBudget, kPaused, kEof, kError };

  FrameConnection(uint64_t id, int fd, uint64_t maxFrameBytes, PayloadAllocator* allocator);
  ~FrameConnection();  // closes the fd; every token must have been taken with TakeAllTokens
  FrameConnection(const FrameConnection&) = delete;
  FrameConnection& operator=(const FrameConnection&) = delete;

  uint64_t id() const { return id_; }
  int fd() const { return fd_; }
  bool paused() const { return paused_; }
  void set_paused(bool paused) { paused_ = paused; }
  bool discarding() const { return discard_; }
  bool eof() const { return eof_; }
  size_t queuedBytes() const { return queued_; }
  bool hasQueued() const { return !out_.empty(); }

  // Reads and hands out frames until the socket would block, `budget` bytes were read, reading is
  // paused, the peer closed (a kEnd event is appended) or a read failed (*err set).
  ReadStop Read(size_t budget, std::vector<Event>* events, int* err);
  // Hands out frames already buffered (after a resume); false when bytes are still needed.
  void ParseBuffered(std::vector<Event>* events);
  // From now on, input is read and dropped (a graceful close, or a broken stream).
  void Discard();

  void Queue(SendItem item);
  // Writes queued bytes until done or the socket would block. Returns bytes written; tokens of
  // finished items are appended to `released`; -1 with *err set when the write failed.
  long long Flush(std::vector<void*>* released, int* err);
  void TakeAllTokens(std::vector<void*>* released);
  // Closes the fd now and frees a partly received frame (idempotent).
  void CloseFd();

 private:
  bool ParseOne(std::vector<Event>* events);  // false: needs bytes, or stopped
  void FinishFrame(std::vector<Event>* events);
  void DropPartialFrame();
  uint8_t* SegmentCursor(size_t* room);
  size_t SegmentTotal() const { return size_t{lengths_.body} + lengths_.payload; }

  struct Out {
    std::vector<uint8_t> head;
    const uint8_t* payload;
    size_t payloadLen;
    void* token;
    size_t offset;  // bytes of head then payload already written
    size_t Size() const { return head.size() + payloadLen; }
  };

  const uint64_t id_;
  int fd_;
  const uint64_t maxFrameBytes_;
  PayloadAllocator* const allocator_;
  bool paused_ = false;
  bool discard_ = false;
  bool eof_ = false;
  std::unique_ptr<uint8_t[]> rbuf_;
  size_t rstart_ = 0;
  size_t rend_ = 0;
  // The frame being received: header checked, segments filling.
  bool inFrame_ = false;
  FrameLengths lengths_;
  uint8_t* head_ = nullptr;
  uint8_t* payload_ = nullptr;
  uint32_t payloadBlock_ = 0;
  size_t segFilled_ = 0;
  std::deque<Out> out_;
  size_t queued_ = 0;
};

}  // namespace threefs
