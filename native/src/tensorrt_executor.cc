#include "tensorrt_executor.h"

#include <chrono>
#include <cstring>
#include <iterator>
#include <memory>
#include <string>
#include <utility>

#include "build_config.h"
#include "inference_engine.h"
#include "native_error.h"
#include "slot_executor.h"
#include "typed_array.h"

#if ENDOSYNTH_WITH_TENSORRT
#include "cuda_support.h"
#include "log_ring.h"
#include "tensorrt_library.h"
#endif

namespace endosynth {

namespace {

#if ENDOSYNTH_WITH_TENSORRT

using nvinfer1::DataType;

// What every slot of one engine shares. Members are destroyed bottom-up: the engine before the
// runtime that created it, as TensorRT requires.
struct TensorRtModel {
  TrtPtr<nvinfer1::IRuntime> runtime;
  TrtPtr<nvinfer1::ICudaEngine> engine;
  std::string input_name;
  std::string output_name;
  int device = 0;
};

class TensorRtSlot final : public SlotExecutor {
 public:
  TensorRtSlot(std::shared_ptr<TensorRtModel> model, const EngineGeometry& geometry)
      : model_(std::move(model)),
        geometry_(geometry),
        stream_(CreateStream()),
        device_input_(AllocateDevice(geometry.InputBytes())),
        device_output_(AllocateDevice(geometry.OutputBytes())),
        staging_input_(AllocatePinned(geometry.InputBytes())),
        staging_output_(AllocatePinned(geometry.OutputBytes())) {
    // The slot's thread waits on the last mark for every frame: it should sleep, not spin a core.
    for (std::size_t i = 0; i < std::size(marks_); ++i) marks_[i] = CreateEvent(/*blocking=*/i + 1 == std::size(marks_));
    const std::uint64_t log_mark = TensorRtLog().LastSeq();
    context_.reset(model_->engine->createExecutionContext());
    if (!context_) throw TensorRtFailure("ICudaEngine::createExecutionContext", "TensorRT could not create an execution context", log_mark);
    nvinfer1::Dims frame{};
    frame.nbDims = 3;
    frame.d[0] = geometry.height;
    frame.d[1] = geometry.width;
    frame.d[2] = geometry.channels;
    if (!context_->setInputShape(model_->input_name.c_str(), frame)) {
      throw TensorRtFailure("IExecutionContext::setInputShape", "the engine does not accept frames of " + ShapeText(), log_mark);
    }
    const nvinfer1::Dims depth = context_->getTensorShape(model_->output_name.c_str());
    if (depth.nbDims != 2 || depth.d[0] != geometry.height || depth.d[1] != geometry.width) {
      throw TensorRtFailure("IExecutionContext::getTensorShape", "the engine's depth output for frames of " + ShapeText() + " is not [" +
                                std::to_string(geometry.height) + ", " + std::to_string(geometry.width) + "]", log_mark);
    }
    // Bound once for the life of the slot: the CUDA graph below replays these very addresses.
    if (!context_->setTensorAddress(model_->input_name.c_str(), device_input_.get()) ||
        !context_->setTensorAddress(model_->output_name.c_str(), device_output_.get())) {
      throw TensorRtFailure("IExecutionContext::setTensorAddress", "TensorRT refused the device buffers", log_mark);
    }
    // The first enqueue performs TensorRT's deferred setup, which must not happen inside a capture.
    CheckCuda(cudaMemsetAsync(device_input_.get(), 0, geometry.InputBytes(), stream_.get()), "cudaMemsetAsync");
    if (!context_->enqueueV3(stream_.get())) throw TensorRtFailure("IExecutionContext::enqueueV3", "TensorRT could not run the engine", log_mark);
    CheckCuda(cudaStreamSynchronize(stream_.get()), "cudaStreamSynchronize");
    CaptureGraph();
  }

  ~TensorRtSlot() override {
    // Nothing may be freed under work still queued on the stream.
    if (stream_) cudaStreamSynchronize(stream_.get());
  }

  bool graph() const { return graph_ != nullptr; }

  void AttachThread() override { CheckCuda(cudaSetDevice(model_->device), "cudaSetDevice"); }

  SlotTimings Run(const SlotRequest& request) override {
    try {
      return Enqueue(request);
    } catch (...) {
      // Copies already queued may still read the caller's frame or write its `out` (pinned
      // memory, by DMA): they must be over before the failure settles the request and the caller
      // reuses or frees those buffers.
      cudaStreamSynchronize(stream_.get());
      cudaGetLastError();
      throw;
    }
  }

 private:
  SlotTimings Enqueue(const SlotRequest& request) {
    SlotTimings timings;
    cudaStream_t stream = stream_.get();
    const auto copy_start = std::chrono::steady_clock::now();
    const void* source = request.input;
    if (!request.input_direct) {
      std::memcpy(staging_input_.get(), request.input, geometry_.InputBytes());
      source = staging_input_.get();
    }
    timings.host_copy_ms = MsSince(copy_start);
    void* destination = request.output_direct ? static_cast<void*>(request.output) : staging_output_.get();

    CheckCuda(cudaEventRecord(marks_[0].get(), stream), "cudaEventRecord");
    CheckCuda(cudaMemcpyAsync(device_input_.get(), source, geometry_.InputBytes(), cudaMemcpyHostToDevice, stream), "cudaMemcpyAsync(host to device)");
    CheckCuda(cudaEventRecord(marks_[1].get(), stream), "cudaEventRecord");
    if (graph_) {
      CheckCuda(cudaGraphLaunch(graph_.get(), stream), "cudaGraphLaunch");
    } else {
      const std::uint64_t log_mark = TensorRtLog().LastSeq();
      if (!context_->enqueueV3(stream)) throw TensorRtFailure("IExecutionContext::enqueueV3", "TensorRT could not run the engine", log_mark);
    }
    CheckCuda(cudaEventRecord(marks_[2].get(), stream), "cudaEventRecord");
    CheckCuda(cudaMemcpyAsync(destination, device_output_.get(), geometry_.OutputBytes(), cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync(device to host)");
    CheckCuda(cudaEventRecord(marks_[3].get(), stream), "cudaEventRecord");
    CheckCuda(cudaEventSynchronize(marks_[3].get()), "cudaEventSynchronize");

    if (!request.output_direct) {
      const auto out_start = std::chrono::steady_clock::now();
      std::memcpy(request.output, staging_output_.get(), geometry_.OutputBytes());
      timings.host_copy_ms += MsSince(out_start);
    }
    timings.h2d_ms = ElapsedMs(marks_[0].get(), marks_[1].get());
    timings.engine_ms = ElapsedMs(marks_[1].get(), marks_[2].get());
    timings.d2h_ms = ElapsedMs(marks_[2].get(), marks_[3].get());
    timings.graph = graph_ != nullptr;
    return timings;
  }

  static double MsSince(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  }

  std::string ShapeText() const {
    return std::to_string(geometry_.height) + "x" + std::to_string(geometry_.width) + "x" + std::to_string(geometry_.channels);
  }

  // Records one enqueueV3 as a CUDA graph, so each frame costs one launch instead of one launch
  // per kernel. Thread-local capture mode: other slots keep calling CUDA while this one captures.
  // Some engines cannot be captured; they keep running through enqueueV3.
  void CaptureGraph() {
    cudaStream_t stream = stream_.get();
    if (cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal) != cudaSuccess) {
      cudaGetLastError();
      TensorRtLog().Push(LogSeverity::kInfo, "endosynth", "CUDA graph capture could not start; frames run through enqueueV3");
      return;
    }
    const bool enqueued = context_->enqueueV3(stream);
    cudaGraph_t raw = nullptr;
    const cudaError_t ended = cudaStreamEndCapture(stream, &raw);
    CudaGraph graph(raw);
    if (!enqueued || ended != cudaSuccess || !graph) {
      cudaGetLastError();
      TensorRtLog().Push(LogSeverity::kInfo, "endosynth",
                         std::string("CUDA graph capture of enqueueV3 failed (") + cudaGetErrorName(ended) + "); frames run through enqueueV3");
      return;
    }
    cudaGraphExec_t exec = nullptr;
    if (cudaGraphInstantiateWithFlags(&exec, graph.get(), 0) != cudaSuccess) {
      cudaGetLastError();
      TensorRtLog().Push(LogSeverity::kInfo, "endosynth", "CUDA graph instantiation failed; frames run through enqueueV3");
      return;
    }
    CudaGraphExec instance(exec);
    CheckCuda(cudaGraphLaunch(instance.get(), stream), "cudaGraphLaunch");
    CheckCuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    graph_ = std::move(instance);
  }

  // Declaration order is destruction order reversed: the graph and the context go before the
  // buffers they point into, and the shared model (engine, runtime) goes last.
  std::shared_ptr<TensorRtModel> model_;
  EngineGeometry geometry_;
  CudaStream stream_;
  DeviceMemory device_input_;
  DeviceMemory device_output_;
  PinnedMemory staging_input_;
  PinnedMemory staging_output_;
  CudaEvent marks_[4];
  TrtPtr<nvinfer1::IExecutionContext> context_;
  CudaGraphExec graph_;
};

std::string DimsText(const nvinfer1::Dims& dims) {
  std::string text = "[";
  for (int32_t i = 0; i < dims.nbDims; ++i) text += (i == 0 ? "" : ", ") + std::to_string(dims.d[i]);
  return text + "]";
}

// Finds the one input and the one output and checks them against the contract and the geometry.
void BindModelTensors(TensorRtModel& model, const EngineGeometry& geometry) {
  nvinfer1::ICudaEngine& engine = *model.engine;
  const int32_t count = engine.getNbIOTensors();
  for (int32_t i = 0; i < count; ++i) {
    const char* name = engine.getIOTensorName(i);
    std::string& slot = engine.getTensorIOMode(name) == nvinfer1::TensorIOMode::kINPUT ? model.input_name : model.output_name;
    if (!slot.empty()) throw NativeFailure(FailureKind::kPlanRejected, "loadEngine", "the plan has more than one input or output tensor");
    slot = name;
  }
  if (model.input_name.empty() || model.output_name.empty()) {
    throw NativeFailure(FailureKind::kPlanRejected, "loadEngine", "the plan lacks an input or an output tensor");
  }
  if (engine.getTensorDataType(model.input_name.c_str()) != DataType::kUINT8 ||
      engine.getTensorDataType(model.output_name.c_str()) != DataType::kFLOAT) {
    throw NativeFailure(FailureKind::kPlanRejected, "loadEngine", "the plan's input is not uint8 or its output is not float32");
  }
  const nvinfer1::Dims max = engine.getProfileShape(model.input_name.c_str(), 0, nvinfer1::OptProfileSelector::kMAX);
  const nvinfer1::Dims fixed = engine.getTensorShape(model.input_name.c_str());
  const nvinfer1::Dims& dims = fixed.nbDims == 3 && fixed.d[0] >= 0 && fixed.d[1] >= 0 && fixed.d[2] >= 0 ? fixed : max;
  if (dims.nbDims != 3 || dims.d[0] != geometry.height || dims.d[1] != geometry.width || dims.d[2] != geometry.channels) {
    throw NativeFailure(FailureKind::kPlanRejected, "loadEngine",
                        "the plan was built for input " + DimsText(dims) + ", not for frames of " + std::to_string(geometry.height) + "x" +
                            std::to_string(geometry.width) + "x" + std::to_string(geometry.channels));
  }
}

std::unique_ptr<LoadedEngine> LoadTensorRtEngine(const std::uint8_t* plan, std::size_t plan_bytes, const EngineGeometry& geometry, int slots, int device) {
  RequireTensorRt();
  CheckCuda(cudaSetDevice(device), "cudaSetDevice");
  auto model = std::make_shared<TensorRtModel>();
  model->device = device;
  model->runtime = CreateRuntime();
  const std::uint64_t mark = TensorRtLog().LastSeq();
  model->engine.reset(model->runtime->deserializeCudaEngine(plan, plan_bytes));
  if (!model->engine) {
    NativeFailure failure = TensorRtFailure("IRuntime::deserializeCudaEngine", "TensorRT could not deserialize the plan", mark);
    // A plan larger than the free GPU memory cannot load however sound it is: report that, rather
    // than calling it rejected and sending the caller into a minutes-long rebuild that fails too.
    std::size_t free_bytes = 0;
    std::size_t total_bytes = 0;
    if (cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess && free_bytes < plan_bytes) {
      throw NativeFailure(FailureKind::kCuda, failure.call(),
                          std::string(failure.what()) + ": the GPU has " + std::to_string(free_bytes >> 20) + " MiB free of " +
                              std::to_string(total_bytes >> 20) + " MiB, less than the " + std::to_string(plan_bytes >> 20) +
                              " MiB plan (other processes may hold the rest)")
          .WithLog(failure.log());
    }
    cudaGetLastError();
    throw NativeFailure(FailureKind::kPlanRejected, failure.call(), failure.what()).WithLog(failure.log());
  }
  BindModelTensors(*model, geometry);

  auto loaded = std::make_unique<LoadedEngine>();
  loaded->geometry = geometry;
  loaded->pinned_staging = true;
  loaded->graphs = true;
  for (int slot = 0; slot < slots; ++slot) {
    auto executor = std::make_unique<TensorRtSlot>(model, geometry);
    loaded->graphs = loaded->graphs && executor->graph();
    loaded->slots.push_back(std::move(executor));
  }
  loaded->description = "TensorRT " + FormatTensorRtVersion(TensorRt().version) + " engine for " + std::to_string(geometry.height) + "x" +
                        std::to_string(geometry.width) + "x" + std::to_string(geometry.channels) + " frames, " + std::to_string(slots) +
                        " slots, CUDA graphs " + (loaded->graphs ? "on" : "off");
  return loaded;
}

#endif  // ENDOSYNTH_WITH_TENSORRT

int IntOption(const Napi::Object& options, const char* name, int fallback) {
  Napi::Value value = options.Get(name);
  if (value.IsUndefined()) return fallback;
  if (!value.IsNumber()) throw NativeFailure(FailureKind::kInput, "loadEngine", std::string("options.") + name + " must be a number");
  return value.As<Napi::Number>().Int32Value();
}

}  // namespace

Napi::Value LoadEngineJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsTypedArray() || !info[1].IsObject()) {
    throw Napi::TypeError::New(env, "loadEngine(plan: Uint8Array, options) needs a plan and an options object");
  }
  Napi::Object options = info[1].As<Napi::Object>();
  EngineGeometry geometry;
  int slots = 0;
  int device = 0;
  try {
    geometry.height = IntOption(options, "height", 0);
    geometry.width = IntOption(options, "width", 0);
    geometry.channels = IntOption(options, "channels", 3);
    slots = IntOption(options, "slots", 1);
    device = IntOption(options, "device", 0);
    if (geometry.height <= 0 || geometry.width <= 0 || (geometry.channels != 3 && geometry.channels != 4) || slots < 1 || slots > 64) {
      throw NativeFailure(FailureKind::kInput, "loadEngine", "loadEngine needs positive height and width, channels 3 or 4 and 1 to 64 slots");
    }
  } catch (const NativeFailure& failure) {
    throw ToJsError(env, failure);
  }
  Napi::TypedArray plan = info[0].As<Napi::TypedArray>();
  const std::uint8_t* bytes = TypedArrayBytes(plan);
  const std::size_t length = plan.ByteLength();
#if ENDOSYNTH_WITH_TENSORRT
  // The worker keeps `plan` referenced, so its bytes stay valid while the worker reads them.
  auto* worker = new EngineLoadWorker(
      env, [bytes, length, geometry, slots, device] { return LoadTensorRtEngine(bytes, length, geometry, slots, device); }, plan);
#else
  (void)bytes;
  (void)length;
  (void)device;
  auto* worker = new EngineLoadWorker(
      env, []() -> std::unique_ptr<LoadedEngine> {
        throw NativeFailure(FailureKind::kUnavailable, "loadEngine", "the native addon was built without TensorRT headers");
      },
      plan);
#endif
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace endosynth
