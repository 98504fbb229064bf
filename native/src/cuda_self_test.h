// A check of the CUDA-only machinery on a machine with a GPU but possibly no TensorRT: pinned
// buffers, a stream, and a CUDA graph capturing a host->device->host round trip.
#pragma once

#include <napi.h>

namespace endosynth {

// cudaSelfTest(bytes?) -> Promise<{ bytes, device, graphMs }>; rejects with the CUDA error (e.g.
// cudaErrorInsufficientDriver without a driver) or nativeKind "unavailable" without CUDA.
Napi::Value CudaSelfTestJs(const Napi::CallbackInfo& info);

}  // namespace endosynth
