// The RPC frame header rules the native transport needs before it may allocate a frame's segments:
// the same checks, in the same order, as parseHeader in daemons/common/rpc/frame.ts. The native
// side only decides accept/reject; on reject JS re-parses the 40 bytes to produce the exact error.
#pragma once

#include <cstdint>
#include <cstring>

#include "crc32c.h"

namespace threefs {

constexpr size_t kFrameHeaderBytes = 40;
constexpr uint32_t kFrameMagic = 0x52534654;  // 'TFSR'
constexpr uint8_t kProtocolVersion = 1;
constexpr uint16_t kFlagHasPayload = 1;

struct FrameLengths {
  uint32_t body = 0;
  uint32_t payload = 0;
  bool hasPayload = false;
  uint32_t dataCrc = 0;
};

inline uint32_t ReadU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);  // little-endian hosts only (static_assert in crc32c.cc)
  return v;
}

inline uint16_t ReadU16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

// True when the header is acceptable; fills `out`. False on any rule parseHeader would reject.
inline bool CheckFrameHeader(const uint8_t* h, uint64_t maxFrameBytes, FrameLengths* out) {
  if (ReadU32(h) != kFrameMagic) return false;
  if (h[4] != kProtocolVersion) return false;
  if (ReadU32(h + 36) != Crc32c(0, h, 36)) return false;
  const uint8_t kind = h[5];
  if (kind < 1 || kind > 5) return false;
  const uint32_t body = ReadU32(h + 24);
  const uint32_t payload = ReadU32(h + 28);
  if (static_cast<uint64_t>(body) + payload > maxFrameBytes) return false;
  const uint16_t flags = ReadU16(h + 6);
  if (payload > 0 && (flags & kFlagHasPayload) == 0) return false;
  if (ReadU32(h + 16) > 0x1fffff) return false;
  out->body = body;
  out->payload = payload;
  out->hasPayload = payload > 0 || (flags & kFlagHasPayload) != 0;
  out->dataCrc = ReadU32(h + 32);
  return true;
}

}  // namespace threefs
