// Engine builds: ONNX file -> serialized TensorRT plan, on a worker thread, with progress from
// TensorRT's IProgressMonitor delivered to a JS callback and cancellation through the monitor.
#pragma once

#include <napi.h>

namespace endosynth {

// buildEngine(options, onProgress?) -> { promise, cancel }
//   options: { onnxPath, precision: "fp16" | "fp32", height, width, channels,
//              workspaceMiB (0: TensorRT's default), optimizationLevel (-1: TensorRT's default),
//              timingCache?: Uint8Array, device?: number }
//   promise resolves to { plan: Buffer, timingCache: Buffer }; cancel() stops the build at
//   TensorRT's next progress step and rejects the promise with nativeKind "aborted".
Napi::Value BuildEngineJs(const Napi::CallbackInfo& info);

}  // namespace endosynth
