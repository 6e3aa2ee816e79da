#include "crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace threefs {
namespace {

constexpr uint32_t kPolynomial = 0x82F63B78u;

// tables[k][b]: CRC of byte b followed by k zero bytes; lets the portable path fold 8 bytes a step.
using Tables = std::array<std::array<uint32_t, 256>, 8>;

constexpr Tables MakeTables() {
  Tables tables{};
  for (uint32_t b = 0; b < 256; b++) {
    uint32_t crc = b;
    for (int bit = 0; bit < 8; bit++) crc = (crc >> 1) ^ ((crc & 1u) ? kPolynomial : 0u);
    tables[0][b] = crc;
  }
  for (uint32_t b = 0; b < 256; b++) {
    for (size_t k = 1; k < 8; k++) {
      const uint32_t prev = tables[k - 1][b];
      tables[k][b] = (prev >> 8) ^ tables[0][prev & 0xFFu];
    }
  }
  return tables;
}

constexpr Tables kTables = MakeTables();

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t HardwareImpl(uint32_t crc, const uint8_t* data,
                                                          size_t len) {
  uint64_t state = ~crc;
  while (len > 0 && (reinterpret_cast<uintptr_t>(data) & 7u) != 0) {
    state = _mm_crc32_u8(static_cast<uint32_t>(state), *data++);
    len--;
  }
  while (len >= 8) {
    uint64_t word;
    std::memcpy(&word, data, 8);
    state = _mm_crc32_u64(state, word);
    data += 8;
    len -= 8;
  }
  while (len > 0) {
    state = _mm_crc32_u8(static_cast<uint32_t>(state), *data++);
    len--;
  }
  return ~static_cast<uint32_t>(state);
}
#endif

bool DetectHardware() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2");
#else
  return false;
#endif
}

const bool kHardware = DetectHardware();

}  // namespace

uint32_t Crc32cPortable(uint32_t crc, const uint8_t* data, size_t len) {
  uint32_t state = ~crc;
  while (len >= 8) {
    uint32_t low;
    uint32_t high;
    std::memcpy(&low, data, 4);
    std::memcpy(&high, data + 4, 4);
    low ^= state;  // little-endian hosts only; x86-64 and aarch64 are both little-endian
    state = kTables[7][low & 0xFFu] ^ kTables[6][(low >> 8) & 0xFFu] ^
            kTables[5][(low >> 16) & 0xFFu] ^ kTables[4][low >> 24] ^ kTables[3][high & 0xFFu] ^
            kTables[2][(high >> 8) & 0xFFu] ^ kTables[1][(high >> 16) & 0xFFu] ^
            kTables[0][high >> 24];
    data += 8;
    len -= 8;
  }
  while (len > 0) {
    state = (state >> 8) ^ kTables[0][(state ^ *data++) & 0xFFu];
    len--;
  }
  return ~state;
}

uint32_t Crc32cHardware(uint32_t crc, const uint8_t* data, size_t len) {
#if defined(__x86_64__)
  return HardwareImpl(crc, data, len);
#else
  (void)crc;
  (void)data;
  (void)len;
  __builtin_trap();
#endif
}

bool Crc32cHardwareAvailable() { return kHardware; }

uint32_t Crc32c(uint32_t crc, const uint8_t* data, size_t len) {
  return kHardware ? Crc32cHardware(crc, data, len) : Crc32cPortable(crc, data, len);
}

}  // namespace threefs

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the portable CRC32C assumes little-endian");
