// What one execution slot of an engine does with one frame. An engine owns a small pool of slots
// (each: a TensorRT execution context with its own CUDA stream, device buffers bound once, pinned
// staging and, where capture works, a CUDA graph), and each slot runs on its own thread, so
// several frames are in flight at once without ever sharing a buffer. The loopback executor
// implements the same interface without a GPU so the pool, threading and lifetime logic are tested
// on every machine.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace endosynth {

// The frame shape an engine was built for: uint8 [height, width, channels] in, float32
// [height, width] out.
struct EngineGeometry {
  std::int64_t height = 0;
  std::int64_t width = 0;
  std::int64_t channels = 0;

  std::size_t InputBytes() const { return static_cast<std::size_t>(height * width * channels); }
  std::size_t OutputBytes() const { return static_cast<std::size_t>(height * width) * sizeof(float); }
};

// One frame to run. `input_direct` / `output_direct` say whether the buffer is host memory of
// ours (pinned: DMA straight from/to it) rather than ordinary memory (copy through staging).
struct SlotRequest {
  const std::uint8_t* input = nullptr;
  bool input_direct = false;
  float* output = nullptr;
  bool output_direct = false;
};

// Where the time of one run went, in milliseconds (GPU parts measured with CUDA events).
struct SlotTimings {
  double h2d_ms = 0;        // host-to-device copy of the frame
  double engine_ms = 0;     // the network itself
  double d2h_ms = 0;        // device-to-host copy of the depth
  double host_copy_ms = 0;  // copies through pinned staging (0 when both buffers were ours)
  bool graph = false;       // whether the network ran as a CUDA graph
};

class SlotExecutor {
 public:
  virtual ~SlotExecutor() = default;
  // Called once on the slot's own thread before its first run (e.g. to select the CUDA device).
  virtual void AttachThread() {}
  // Runs one frame synchronously on the slot's thread; throws NativeFailure.
  virtual SlotTimings Run(const SlotRequest& request) = 0;
};

// What a loader produces: the slots of one engine, ready to run.
struct LoadedEngine {
  EngineGeometry geometry;
  std::vector<std::unique_ptr<SlotExecutor>> slots;
  std::string description;     // e.g. "TensorRT 10.16.0 engine, fp16 plan, 2 slots"
  bool graphs = false;         // whether every slot captured a CUDA graph
  bool pinned_staging = false; // whether staging buffers are pinned
};

}  // namespace endosynth
