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

// GF(2) polynomial arithmetic modulo the (reflected) CRC32C polynomial, as zlib's crc32_combine
// does it, so CRCs of adjacent pieces computed independently can be joined.
constexpr uint32_t MultModP(uint32_t a, uint32_t b) {
  uint32_t m = 1u << 31;
  uint32_t p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) == 0) break;
    }
    m >>= 1;
    b = (b & 1) ? (b >> 1) ^ kPolynomial : b >> 1;
  }
  return p;
}

// kX2n[k] = x^(2^k) mod P.
constexpr std::array<uint32_t, 32> MakeX2nTable() {
  std::array<uint32_t, 32> table{};
  uint32_t p = 1u << 30;  // x^1
  for (size_t n = 0; n < 32; n++) {
    table[n] = p;
    p = MultModP(p, p);
  }
  return table;
}

constexpr std::array<uint32_t, 32> kX2n = MakeX2nTable();

// x^(8 * bytes) mod P: the operator that shifts a CRC past `bytes` zero bytes.
uint32_t ShiftOperator(size_t bytes) {
  uint32_t p = 1u << 31;  // x^0
  size_t k = 3;           // 8 = 2^3
  while (bytes != 0) {
    if (bytes & 1) p = MultModP(kX2n[k & 31], p);
    bytes >>= 1;
    k++;
  }
  return p;
}

// crc(A || B) from crc(A), crc(B) and |B|. Building the shift operator takes a few hundred
// cycles, more than the CRC of a 4 KiB lane pair, so the last length's operator is kept per thread
// (the three-lane path sees one lane length per buffer size, and buffers come in a few sizes).
uint32_t Combine(uint32_t crcA, uint32_t crcB, size_t lengthB) {
  thread_local size_t cachedLength = 0;
  thread_local uint32_t cachedOperator = 1u << 31;  // x^0: shifting by zero bytes
  if (lengthB != cachedLength) {
    cachedOperator = ShiftOperator(lengthB);
    cachedLength = lengthB;
  }
  return MultModP(cachedOperator, crcA) ^ crcB;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t HardwareSerial(uint32_t crc, const uint8_t* data,
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

// The crc32 instruction has a latency of 3 cycles but can start one every cycle, so one chain
// uses a third of it. Long inputs run as three lanes, interleaved, joined with Combine.
constexpr size_t kThreeLaneMinBytes = 4096;

__attribute__((target("sse4.2"))) uint32_t HardwareImpl(uint32_t crc, const uint8_t* data,
                                                          size_t len) {
  if (len < kThreeLaneMinBytes) return HardwareSerial(crc, data, len);
  const size_t lane = (len / 24) * 8;  // bytes per lane, a multiple of 8
  const uint8_t* a = data;
  const uint8_t* b = data + lane;
  const uint8_t* c = data + 2 * lane;
  uint64_t sa = ~crc;
  uint64_t sb = 0xFFFFFFFFu;
  uint64_t sc = 0xFFFFFFFFu;
  for (size_t i = 0; i < lane; i += 8) {
    uint64_t wa;
    uint64_t wb;
    uint64_t wc;
    std::memcpy(&wa, a + i, 8);
    std::memcpy(&wb, b + i, 8);
    std::memcpy(&wc, c + i, 8);
    sa = _mm_crc32_u64(sa, wa);
    sb = _mm_crc32_u64(sb, wb);
    sc = _mm_crc32_u64(sc, wc);
  }
  uint32_t joined = Combine(~static_cast<uint32_t>(sa), ~static_cast<uint32_t>(sb), lane);
  joined = Combine(joined, ~static_cast<uint32_t>(sc), lane);
  return HardwareSerial(joined, data + 3 * lane, len - 3 * lane);
}

// Three independent granules interleaved, each its own CRC from zero: the three dependency chains
// keep the crc32 unit busy as the three-lane path does, with no Combine at all.
__attribute__((target("sse4.2"))) void HardwareGranules(const uint8_t* data, size_t length,
                                                         size_t granule, uint32_t* out) {
  const size_t whole = length / granule;
  size_t g = 0;
  if (granule % 8 == 0) {
    for (; g + 3 <= whole; g += 3) {
      const uint8_t* a = data + g * granule;
      const uint8_t* b = a + granule;
      const uint8_t* c = b + granule;
      uint64_t sa = 0xFFFFFFFFu;
      uint64_t sb = 0xFFFFFFFFu;
      uint64_t sc = 0xFFFFFFFFu;
      for (size_t i = 0; i < granule; i += 8) {
        uint64_t wa;
        uint64_t wb;
        uint64_t wc;
        std::memcpy(&wa, a + i, 8);
        std::memcpy(&wb, b + i, 8);
        std::memcpy(&wc, c + i, 8);
        sa = _mm_crc32_u64(sa, wa);
        sb = _mm_crc32_u64(sb, wb);
        sc = _mm_crc32_u64(sc, wc);
      }
      out[g] = ~static_cast<uint32_t>(sa);
      out[g + 1] = ~static_cast<uint32_t>(sb);
      out[g + 2] = ~static_cast<uint32_t>(sc);
    }
  }
  for (; g < whole; g++) out[g] = HardwareImpl(0, data + g * granule, granule);
  if (whole * granule < length) {
    out[whole] = HardwareImpl(0, data + whole * granule, length - whole * granule);
  }
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

void Crc32cGranules(const uint8_t* data, size_t length, size_t granule, uint32_t* out) {
#if defined(__x86_64__)
  if (kHardware) {
    HardwareGranules(data, length, granule, out);
    return;
  }
#endif
  for (size_t start = 0, i = 0; start < length; start += granule, i++) {
    out[i] = Crc32cPortable(0, data + start, length - start < granule ? length - start : granule);
  }
}

uint32_t Crc32c(uint32_t crc, const uint8_t* data, size_t len) {
  return kHardware ? Crc32cHardware(crc, data, len) : Crc32cPortable(crc, data, len);
}

}  // namespace threefs

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the portable CRC32C assumes little-endian");
