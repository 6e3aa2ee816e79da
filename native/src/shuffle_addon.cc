// The frozen chain shuffle "mt64-fy-v1" (daemons/common/shuffle.ts has the specification):
// std::mt19937_64 seeded with the file's seed, a rejection draw in [0, n), Fisher-Yates from the
// end. Native because meta and clients derive a file's stripe at every exact-length query, GC and
// first access; 64-bit arithmetic in JS BigInt cost about 80 us per 16-chain stripe. The C++
// standard fixes std::mt19937_64's output bit for bit (its 10000th value for seed 5489 is
// specified), so this is the same generator the frozen test vectors were checked against.
#include <napi.h>

#include <cstdint>
#include <random>

namespace {

// Largest stripe: layouts allow 65,536 chains.
constexpr uint32_t kMaxItems = 65536;

// A uniform integer in [0, n) by rejection: accept x < 2^64 - (2^64 mod n), answer x mod n.
uint64_t BoundedDraw(std::mt19937_64& rng, uint64_t n) {
  // 2^64 mod n, computed without 128-bit arithmetic: (2^64 - n) mod n == 2^64 mod n.
  const uint64_t rem = (0 - n) % n;
  const uint64_t limit = 0 - rem;  // 2^64 - rem, wrapping to 0 when rem is 0 (everything accepted)
  for (;;) {
    const uint64_t x = rng();
    if (rem == 0 || x < limit) return x % n;
  }
}

// shuffledIndexes(n: number, seed: bigint): Uint32Array, the permutation of 0..n-1 that
// Fisher-Yates with this seed applies (result[i] is the index of the item that lands at i).
Napi::Value ShuffledIndexes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsBigInt()) {
    throw Napi::TypeError::New(env, "shuffledIndexes(n: number, seed: bigint)");
  }
  const int64_t n = info[0].As<Napi::Number>().Int64Value();
  if (n < 0 || n > kMaxItems) throw Napi::RangeError::New(env, "n must be in 0..65536");
  bool lossless = false;
  const uint64_t seed = info[1].As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless) throw Napi::RangeError::New(env, "seed must be a u64");
  auto out = Napi::Uint32Array::New(env, static_cast<size_t>(n));
  uint32_t* a = out.Data();
  for (int64_t i = 0; i < n; i++) a[i] = static_cast<uint32_t>(i);
  std::mt19937_64 rng(seed);
  for (int64_t i = n - 1; i > 0; i--) {
    const uint64_t j = BoundedDraw(rng, static_cast<uint64_t>(i + 1));
    const uint32_t tmp = a[i];
    a[i] = a[j];
    a[j] = tmp;
  }
  return out;
}

// mt19937x64Outputs(seed: bigint, count: number): BigUint64Array, the generator's first outputs
// (tests compare them with the standard's specified value).
Napi::Value Outputs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsBigInt() || !info[1].IsNumber()) {
    throw Napi::TypeError::New(env, "mt19937x64Outputs(seed: bigint, count: number)");
  }
  bool lossless = false;
  const uint64_t seed = info[0].As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless) throw Napi::RangeError::New(env, "seed must be a u64");
  const int64_t count = info[1].As<Napi::Number>().Int64Value();
  if (count < 0 || count > (1 << 20)) throw Napi::RangeError::New(env, "count must be in 0..2^20");
  auto buffer = Napi::ArrayBuffer::New(env, static_cast<size_t>(count) * sizeof(uint64_t));
  auto* values = static_cast<uint64_t*>(buffer.Data());
  std::mt19937_64 rng(seed);
  for (int64_t i = 0; i < count; i++) values[i] = rng();
  napi_value array;
  if (napi_create_typedarray(env, napi_biguint64_array, static_cast<size_t>(count), buffer, 0,
                             &array) != napi_ok) {
    throw Napi::Error::New(env, "cannot create a BigUint64Array");
  }
  return Napi::Value(env, array);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("shuffledIndexes", Napi::Function::New(env, ShuffledIndexes, "shuffledIndexes"));
  exports.Set("mt19937x64Outputs", Napi::Function::New(env, Outputs, "mt19937x64Outputs"));
  return exports;
}

}  // namespace

NODE_API_MODULE(threefs_shuffle, Init)
