// JS binding for CRC32C. One call covers a whole buffer (or a list of buffers), never a byte.
#include <napi.h>

#include "crc32c.h"

namespace {

using CrcFn = uint32_t (*)(uint32_t, const uint8_t*, size_t);

uint32_t SeedArg(const Napi::CallbackInfo& info, size_t index) {
  if (info.Length() <= index || info[index].IsUndefined()) return 0;
  if (!info[index].IsNumber()) throw Napi::TypeError::New(info.Env(), "seed must be a number");
  return info[index].As<Napi::Number>().Uint32Value();
}

// crcN(buffer: Uint8Array | Uint8Array[], seed?: number): number
template <CrcFn Fn>
Napi::Value Checksum(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1) throw Napi::TypeError::New(env, "crc32c needs a buffer");
  uint32_t crc = SeedArg(info, 1);
  auto fold = [&](const Napi::Value& value) {
    if (!value.IsTypedArray()) throw Napi::TypeError::New(env, "crc32c takes Uint8Array values");
    auto array = value.As<Napi::TypedArray>();
    if (array.TypedArrayType() != napi_uint8_array) {
      throw Napi::TypeError::New(env, "crc32c takes Uint8Array values");
    }
    auto bytes = value.As<Napi::Uint8Array>();
    crc = Fn(crc, bytes.Data(), bytes.ByteLength());
  };
  if (info[0].IsArray()) {
    auto list = info[0].As<Napi::Array>();
    for (uint32_t i = 0; i < list.Length(); i++) fold(list.Get(i));
  } else {
    fold(info[0]);
  }
  return Napi::Number::New(env, crc);
}

Napi::Value HardwareChecked(const Napi::CallbackInfo& info) {
  if (!threefs::Crc32cHardwareAvailable()) {
    throw Napi::Error::New(info.Env(), "this CPU has no SSE4.2 CRC32 instruction");
  }
  return Checksum<threefs::Crc32cHardware>(info);
}

// crc32cGranules(buffer: Uint8Array, granule: number): Uint32Array, one CRC per granule.
Napi::Value Granules(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsTypedArray() || !info[1].IsNumber()) {
    throw Napi::TypeError::New(env, "crc32cGranules(buffer, granule)");
  }
  auto array = info[0].As<Napi::TypedArray>();
  if (array.TypedArrayType() != napi_uint8_array) {
    throw Napi::TypeError::New(env, "crc32cGranules takes a Uint8Array");
  }
  const int64_t granule = info[1].As<Napi::Number>().Int64Value();
  if (granule <= 0) throw Napi::RangeError::New(env, "granule must be a positive integer");
  auto bytes = info[0].As<Napi::Uint8Array>();
  const size_t g = static_cast<size_t>(granule);
  auto out = Napi::Uint32Array::New(env, (bytes.ByteLength() + g - 1) / g);
  if (out.ElementLength() > 0) threefs::Crc32cGranules(bytes.Data(), bytes.ByteLength(), g, out.Data());
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("crc32cGranules", Napi::Function::New(env, Granules, "crc32cGranules"));
  exports.Set("crc32c", Napi::Function::New(env, Checksum<threefs::Crc32c>, "crc32c"));
  exports.Set("crc32cPortable",
              Napi::Function::New(env, Checksum<threefs::Crc32cPortable>, "crc32cPortable"));
  exports.Set("crc32cHardware", Napi::Function::New(env, HardwareChecked, "crc32cHardware"));
  exports.Set("hardwareAvailable", Napi::Boolean::New(env, threefs::Crc32cHardwareAvailable()));
  return exports;
}

}  // namespace

NODE_API_MODULE(threefs_crc32c, Init)
