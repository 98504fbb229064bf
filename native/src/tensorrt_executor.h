// Loading a serialized plan into a pool of TensorRT execution slots.
#pragma once

#include <napi.h>

namespace endosynth {

// loadEngine(plan: Uint8Array, { height, width, channels, slots, device? }) -> Promise<InferenceEngine>
// Deserializes on a worker thread, creates one execution context per slot (own stream, device
// buffers bound once, pinned staging), runs each once and captures its enqueue in a CUDA graph
// where TensorRT allows it. A plan TensorRT refuses rejects with nativeKind "plan-rejected".
Napi::Value LoadEngineJs(const Napi::CallbackInfo& info);

}  // namespace endosynth
