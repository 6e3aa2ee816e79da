#include "frame_connection.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "crc32c.h"

namespace threefs {
namespace {

constexpr size_t kReadBufferBytes = 64 * 1024;
constexpr int kMaxIov = 64;

}  // namespace

void FreeEventMemory(Event* event, PayloadAllocator* allocator) {
  std::free(event->head);
  if (event->payload != nullptr) allocator->FreePayload(event->payload, event->payloadBlock);
  event->head = nullptr;
  event->payload = nullptr;
}

FrameConnection::FrameConnection(uint64_t id, int fd, uint64_t maxFrameBytes,
                                 PayloadAllocator* allocator)
    : id_(id),
      fd_(fd),
      maxFrameBytes_(maxFrameBytes),
      allocator_(allocator),
      rbuf_(new uint8_t[kReadBufferBytes]) {}

FrameConnection::~FrameConnection() {
  CloseFd();
  DropPartialFrame();
  // A token left here would leak a JS reference (or worse, be freed twice): a bug, not bad input.
  for (const auto& o : out_) {
    if (o.token != nullptr) std::abort();
  }
}

void FrameConnection::CloseFd() {
  DropPartialFrame();
  if (fd_ < 0) return;
  close(fd_);
  fd_ = -1;
}

void FrameConnection::DropPartialFrame() {
  std::free(head_);
  if (payload_ != nullptr) allocator_->FreePayload(payload_, payloadBlock_);
  head_ = nullptr;
  payload_ = nullptr;
  payloadBlock_ = 0;
  inFrame_ = false;
  rstart_ = rend_ = 0;
}

void FrameConnection::Discard() {
  discard_ = true;
  DropPartialFrame();
}

uint8_t* FrameConnection::SegmentCursor(size_t* room) {
  if (segFilled_ < lengths_.body) {
    *room = lengths_.body - segFilled_;
    return head_ + kFrameHeaderBytes + segFilled_;
  }
  *room = SegmentTotal() - segFilled_;
  return payload_ + (segFilled_ - lengths_.body);
}

void FrameConnection::ParseBuffered(std::vector<Event>* events) {
  while (ParseOne(events)) {
  }
}

// Takes one header or completes one frame from the read buffer. False when more bytes are needed
// or handing out must stop (paused, discarding).
bool FrameConnection::ParseOne(std::vector<Event>* events) {
  if (discard_ || paused_) return false;
  if (!inFrame_) {
    if (rend_ - rstart_ < kFrameHeaderBytes) return false;
    const uint8_t* h = rbuf_.get() + rstart_;
    FrameLengths lengths;
    if (!CheckFrameHeader(h, maxFrameBytes_, &lengths)) {
      Event bad(EventType::kBadHeader, id_);
      bad.head = static_cast<uint8_t*>(std::malloc(kFrameHeaderBytes));
      if (bad.head == nullptr) throw std::bad_alloc();
      std::memcpy(bad.head, h, kFrameHeaderBytes);
      bad.headLen = kFrameHeaderBytes;
      events->push_back(std::move(bad));
      Discard();  // frame boundaries are lost; JS closes the connection
      return false;
    }
    lengths_ = lengths;
    inFrame_ = true;  // DropPartialFrame frees whatever is allocated below
    head_ = static_cast<uint8_t*>(std::malloc(kFrameHeaderBytes + lengths.body));
    payload_ = lengths.payload > 0 ? allocator_->AllocatePayload(lengths.payload, &payloadBlock_)
                                   : nullptr;
    if (head_ == nullptr || (lengths.payload > 0 && payload_ == nullptr)) throw std::bad_alloc();
    std::memcpy(head_, h, kFrameHeaderBytes);
    rstart_ += kFrameHeaderBytes;
    segFilled_ = 0;
  }
  while (segFilled_ < SegmentTotal() && rstart_ < rend_) {
    size_t room;
    uint8_t* cursor = SegmentCursor(&room);
    const size_t n = std::min(room, rend_ - rstart_);
    std::memcpy(cursor, rbuf_.get() + rstart_, n);
    rstart_ += n;
    segFilled_ += n;
  }
  if (rstart_ == rend_) rstart_ = rend_ = 0;
  if (segFilled_ < SegmentTotal()) return false;
  FinishFrame(events);
  return true;
}

void FrameConnection::FinishFrame(std::vector<Event>* events) {
  uint32_t crc = Crc32c(0, head_ + kFrameHeaderBytes, lengths_.body);
  if (lengths_.payload > 0) crc = Crc32c(crc, payload_, lengths_.payload);
  Event frame(EventType::kFrame, id_);
  frame.head = head_;
  frame.headLen = kFrameHeaderBytes + lengths_.body;
  frame.payload = payload_;
  frame.payloadLen = lengths_.payload;
  frame.hasPayload = lengths_.hasPayload;
  frame.crcOk = crc == lengths_.dataCrc;
  frame.payloadBlock = payloadBlock_;
  head_ = nullptr;
  payload_ = nullptr;
  payloadBlock_ = 0;
  inFrame_ = false;
  events->push_back(std::move(frame));
  if (crc != lengths_.dataCrc) Discard();
}

FrameConnection::ReadStop FrameConnection::Read(size_t budget, std::vector<Event>* events,
                                                int* err) {
  // A short read empties the socket: the next turn parses what came, then stops rather than
  // spend another readv only to get EAGAIN (one syscall per wake-up; with small calls, one
  // wake-up per call). The poll is level-triggered (as kBudget relies on too), so bytes or an EOF
  // arriving from now on wake us again.
  bool drained = false;
  for (;;) {
    if (!discard_) {
      ParseBuffered(events);
      if (paused_ && !discard_) return ReadStop::kPaused;
    }
    if (fd_ < 0 || eof_) return ReadStop::kEof;
    if (drained) return ReadStop::kWouldBlock;
    if (budget == 0) return ReadStop::kBudget;
    iovec iov[2];
    int count = 0;
    if (discard_) {
      rstart_ = rend_ = 0;
      iov[count++] = {rbuf_.get(), kReadBufferBytes};
    } else {
      if (rstart_ > 0 && kReadBufferBytes - rend_ < kFrameHeaderBytes) {
        std::memmove(rbuf_.get(), rbuf_.get() + rstart_, rend_ - rstart_);
        rend_ -= rstart_;
        rstart_ = 0;
      }
      if (inFrame_ && rstart_ == rend_) {
        // The rest of a segment goes straight into its final allocation; what follows it lands
        // in the read buffer in the same syscall.
        size_t room;
        uint8_t* cursor = SegmentCursor(&room);
        iov[count++] = {cursor, room};
      }
      iov[count++] = {rbuf_.get() + rend_, kReadBufferBytes - rend_};
    }
    const ssize_t r = readv(fd_, iov, count);
    if (r > 0) {
      const size_t got = static_cast<size_t>(r);
      budget -= std::min(budget, got);
      drained = got < iov[0].iov_len + (count == 2 ? iov[1].iov_len : 0);
      if (discard_) continue;
      if (count == 2) {
        const size_t first = std::min(got, iov[0].iov_len);
        segFilled_ += first;
        rend_ += got - first;
      } else {
        rend_ += got;
      }
      continue;
    }
    if (r == 0) {
      eof_ = true;
      if (!discard_) {
        ParseBuffered(events);  // nothing to parse usually; never lose a frame before the end
        Event end(EventType::kEnd, id_);
        end.aux = (rend_ - rstart_) + (inFrame_ ? kFrameHeaderBytes + segFilled_ : 0);
        events->push_back(std::move(end));
      }
      return ReadStop::kEof;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return ReadStop::kWouldBlock;
    *err = errno;
    return ReadStop::kError;
  }
}

void FrameConnection::Queue(SendItem item) {
  queued_ += item.head.size() + item.payloadLen;
  out_.push_back(Out{std::move(item.head), item.payload, item.payloadLen, item.token, 0});
}

long long FrameConnection::Flush(std::vector<void*>* released, int* err) {
  long long written = 0;
  while (!out_.empty() && fd_ >= 0) {
    iovec iov[kMaxIov];
    int count = 0;
    for (const auto& o : out_) {
      if (count > kMaxIov - 2) break;
      size_t skip = o.offset;
      if (skip < o.head.size()) {
        iov[count++] = {const_cast<uint8_t*>(o.head.data()) + skip, o.head.size() - skip};
        skip = 0;
      } else {
        skip -= o.head.size();
      }
      if (o.payloadLen > skip) {
        iov[count++] = {const_cast<uint8_t*>(o.payload) + skip, o.payloadLen - skip};
      }
    }
    msghdr message{};
    message.msg_iov = iov;
    message.msg_iovlen = static_cast<size_t>(count);
    const ssize_t r = sendmsg(fd_, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      *err = errno;
      return -1;
    }
    size_t left = static_cast<size_t>(r);
    written += r;
    queued_ -= left;
    while (left > 0) {
      Out& front = out_.front();
      const size_t remaining = front.Size() - front.offset;
      if (left < remaining) {
        front.offset += left;
        break;
      }
      left -= remaining;
      if (front.token != nullptr) released->push_back(front.token);
      out_.pop_front();
    }
  }
  return written;
}

void FrameConnection::TakeAllTokens(std::vector<void*>* released) {
  for (auto& o : out_) {
    if (o.token != nullptr) released->push_back(o.token);
  }
  out_.clear();
  queued_ = 0;
}

}  // namespace threefs
