// The memory a typed array views, whatever kind of buffer holds it.
#pragma once

#include <napi.h>

#include <cstdint>

namespace endosynth {

// A pointer to the first element of `array`. TypedArray::ArrayBuffer().Data() would fail with
// "Invalid argument" for arrays over a SharedArrayBuffer (napi_get_arraybuffer_info takes plain
// ArrayBuffers only), and frames decoded in a worker thread often live in one.
inline std::uint8_t* TypedArrayBytes(const Napi::TypedArray& array) {
  void* data = nullptr;
  NAPI_THROW_IF_FAILED(array.Env(), napi_get_typedarray_info(array.Env(), array, nullptr, nullptr, &data, nullptr, nullptr), nullptr);
  return static_cast<std::uint8_t*>(data);
}

}  // namespace endosynth
