#include "cuda_self_test.h"

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

#include "build_config.h"
#include "native_error.h"

#if ENDOSYNTH_WITH_CUDA
#include "cuda_support.h"
#endif

namespace endosynth {

namespace {

struct SelfTestResult {
  std::size_t bytes = 0;
  std::string device;
  double graph_ms = 0;
};

SelfTestResult RunSelfTest(std::size_t bytes) {
#if ENDOSYNTH_WITH_CUDA
  SelfTestResult result;
  result.bytes = bytes;
  CheckCuda(cudaSetDevice(0), "cudaSetDevice");
  cudaDeviceProp properties{};
  CheckCuda(cudaGetDeviceProperties(&properties, 0), "cudaGetDeviceProperties");
  result.device = properties.name;

  PinnedMemory source = AllocatePinned(bytes);
  PinnedMemory destination = AllocatePinned(bytes);
  DeviceMemory device = AllocateDevice(bytes);
  CudaStream stream = CreateStream();
  CudaEvent start = CreateEvent();
  CudaEvent end = CreateEvent();
  auto* pattern = static_cast<std::uint8_t*>(source.get());
  for (std::size_t i = 0; i < bytes; ++i) pattern[i] = static_cast<std::uint8_t>(i * 7 + 3);
  std::memset(destination.get(), 0, bytes);

  CheckCuda(cudaStreamBeginCapture(stream.get(), cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
  const cudaError_t h2d = cudaMemcpyAsync(device.get(), source.get(), bytes, cudaMemcpyHostToDevice, stream.get());
  const cudaError_t d2h = cudaMemcpyAsync(destination.get(), device.get(), bytes, cudaMemcpyDeviceToHost, stream.get());
  cudaGraph_t raw = nullptr;
  const cudaError_t ended = cudaStreamEndCapture(stream.get(), &raw);
  CudaGraph graph(raw);
  CheckCuda(h2d, "cudaMemcpyAsync(host to device) during capture");
  CheckCuda(d2h, "cudaMemcpyAsync(device to host) during capture");
  CheckCuda(ended, "cudaStreamEndCapture");
  CudaGraphExec exec = InstantiateGraph(graph.get());

  CheckCuda(cudaEventRecord(start.get(), stream.get()), "cudaEventRecord");
  CheckCuda(cudaGraphLaunch(exec.get(), stream.get()), "cudaGraphLaunch");
  CheckCuda(cudaEventRecord(end.get(), stream.get()), "cudaEventRecord");
  CheckCuda(cudaStreamSynchronize(stream.get()), "cudaStreamSynchronize");
  result.graph_ms = ElapsedMs(start.get(), end.get());
  if (std::memcmp(source.get(), destination.get(), bytes) != 0) {
    throw NativeFailure(FailureKind::kInternal, "cudaGraphLaunch", "the graph's round trip through the GPU changed the bytes");
  }
  return result;
#else
  (void)bytes;
  throw NativeFailure(FailureKind::kUnavailable, "cudaSelfTest", "the native addon was built without CUDA");
#endif
}

class SelfTestWorker : public Napi::AsyncWorker {
 public:
  SelfTestWorker(Napi::Env env, std::size_t bytes)
      : Napi::AsyncWorker(env, "endosynth:cuda-self-test"), bytes_(bytes), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      result_ = RunSelfTest(bytes_);
    } catch (const NativeFailure& failure) {
      failure_ = failure;
      SetError(failure.what());
    }
  }
  void OnOK() override {
    Napi::Object object = Napi::Object::New(Env());
    object.Set("bytes", static_cast<double>(result_.bytes));
    object.Set("device", result_.device);
    object.Set("graphMs", result_.graph_ms);
    deferred_.Resolve(object);
  }
  void OnError(const Napi::Error& error) override {
    deferred_.Reject(failure_ ? ToJsError(Env(), *failure_).Value() : error.Value());
  }

 private:
  std::size_t bytes_;
  Napi::Promise::Deferred deferred_;
  SelfTestResult result_;
  std::optional<NativeFailure> failure_;
};

}  // namespace

Napi::Value CudaSelfTestJs(const Napi::CallbackInfo& info) {
  std::size_t bytes = 1 << 20;
  if (info.Length() > 0 && info[0].IsNumber()) {
    const double requested = info[0].As<Napi::Number>().DoubleValue();
    if (requested >= 1 && requested <= (1u << 30)) bytes = static_cast<std::size_t>(requested);
  }
  auto* worker = new SelfTestWorker(info.Env(), bytes);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace endosynth
