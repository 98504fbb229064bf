#include "loopback_executor.h"

#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

namespace endosynth {

namespace {

class LoopbackExecutor final : public SlotExecutor {
 public:
  LoopbackExecutor(const EngineGeometry& geometry, int slot, int delay_ms)
      : geometry_(geometry), delay_ms_(delay_ms * (slot + 1)), staging_in_(geometry.InputBytes()), staging_out_(geometry.height * geometry.width) {}

  SlotTimings Run(const SlotRequest& request) override {
    SlotTimings timings;
    const auto copy_start = std::chrono::steady_clock::now();
    // Mirrors the TensorRT slot: ordinary memory goes through staging, our own blocks do not.
    const std::uint8_t* input = request.input;
    if (!request.input_direct) {
      std::memcpy(staging_in_.data(), request.input, staging_in_.size());
      input = staging_in_.data();
    }
    float* output = request.output_direct ? request.output : staging_out_.data();
    if (delay_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms_));
    const std::int64_t pixels = geometry_.height * geometry_.width;
    for (std::int64_t i = 0; i < pixels; ++i) {
      const std::uint8_t* pixel = input + i * geometry_.channels;
      output[i] = 65536.0f * pixel[0] + 256.0f * pixel[1] + static_cast<float>(pixel[2]);
    }
    if (!request.output_direct) std::memcpy(request.output, staging_out_.data(), geometry_.OutputBytes());
    timings.host_copy_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - copy_start).count();
    return timings;
  }

 private:
  EngineGeometry geometry_;
  int delay_ms_;
  std::vector<std::uint8_t> staging_in_;
  std::vector<float> staging_out_;
};

}  // namespace

std::unique_ptr<LoadedEngine> LoadLoopbackEngine(const EngineGeometry& geometry, int slots, int delay_ms) {
  auto loaded = std::make_unique<LoadedEngine>();
  loaded->geometry = geometry;
  loaded->description = "loopback test engine, " + std::to_string(slots) + " slots";
  for (int slot = 0; slot < slots; ++slot) loaded->slots.push_back(std::make_unique<LoopbackExecutor>(geometry, slot, delay_ms));
  return loaded;
}

}  // namespace endosynth
