#include "crc32c_combine.h"

#include <array>

namespace threefs {
namespace {

constexpr uint32_t kPolynomial = 0x82F63B78u;  // reflected Castagnoli

// A 32x32 matrix over GF(2): column n is the image of bit n. Multiplying by it advances a CRC
// register over some number of zero bits.
using Matrix = std::array<uint32_t, 32>;

uint32_t Times(const Matrix& mat, uint32_t vec) {
  uint32_t sum = 0;
  for (size_t i = 0; vec != 0; i++, vec >>= 1) {
    if (vec & 1u) sum ^= mat[i];
  }
  return sum;
}

Matrix Square(const Matrix& mat) {
  Matrix out{};
  for (size_t n = 0; n < 32; n++) out[n] = Times(mat, mat[n]);
  return out;
}

// The operator that appends `len` zero bytes to a CRC register.
Matrix ZerosOperator(uint64_t len) {
  Matrix odd{};  // one zero bit
  odd[0] = kPolynomial;
  for (size_t n = 1; n < 32; n++) odd[n] = 1u << (n - 1);
  Matrix op{};
  for (size_t n = 0; n < 32; n++) op[n] = 1u << n;  // identity
  Matrix step = Square(Square(Square(odd)));         // 8 zero bits = one zero byte
  while (len != 0) {
    if (len & 1u) {
      Matrix next{};
      for (size_t n = 0; n < 32; n++) next[n] = Times(step, op[n]);
      op = next;
    }
    len >>= 1;
    if (len != 0) step = Square(step);
  }
  return op;
}

}  // namespace

uint32_t Crc32cCombine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b) {
  if (len_b == 0) return crc_a;
  return Times(ZerosOperator(len_b), crc_a) ^ crc_b;
}

uint32_t Crc32cConcat(const uint32_t* crcs, size_t count, uint64_t granule, uint64_t length) {
  if (count == 0) return 0;
  // Building the operator costs more than applying it to 256 granules: keep the last one per
  // thread (a thread sees one or two granule sizes in practice).
  thread_local uint64_t cached_granule = 0;
  thread_local Matrix cached{};
  if (cached_granule != granule) {
    cached = ZerosOperator(granule);
    cached_granule = granule;
  }
  const Matrix& full = cached;
  uint32_t crc = crcs[0];
  for (size_t i = 1; i < count; i++) {
    const uint64_t start = static_cast<uint64_t>(i) * granule;
    const uint64_t len = length - start < granule ? length - start : granule;
    crc = (len == granule ? Times(full, crc) : Times(ZerosOperator(len), crc)) ^ crcs[i];
  }
  return crc;
}

}  // namespace threefs
