// A slot executor without a GPU, for tests: depth[i] = 65536 * R + 256 * G + B of pixel i (exact in
// float32), after sleeping `delay_ms * (slot + 1)` so that slots finish out of submission order.
// It exercises exactly the engine machinery TensorRT uses (slot threads, completions, leases of
// host blocks, dispose) on machines with no GPU, such as CI.
#pragma once

#include <memory>

#include "slot_executor.h"

namespace endosynth {

// A loaded engine of `slots` loopback slots for frames of `geometry`.
std::unique_ptr<LoadedEngine> LoadLoopbackEngine(const EngineGeometry& geometry, int slots, int delay_ms);

}  // namespace endosynth
