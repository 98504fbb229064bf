#include "tensorrt_build.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "build_config.h"
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

struct BuildOptions {
  std::string onnx_path;
  bool fp16 = true;
  EngineGeometry geometry;
  double workspace_mib = 0;
  int optimization_level = -1;
  int device = 0;
  std::vector<std::uint8_t> timing_cache;
};

double NumberOption(const Napi::Object& options, const char* name, double fallback) {
  Napi::Value value = options.Get(name);
  if (value.IsUndefined()) return fallback;
  if (!value.IsNumber()) throw NativeFailure(FailureKind::kInput, "buildEngine", std::string("options.") + name + " must be a number");
  return value.As<Napi::Number>().DoubleValue();
}

BuildOptions ParseOptions(const Napi::Object& options) {
  BuildOptions parsed;
  Napi::Value path = options.Get("onnxPath");
  if (!path.IsString()) throw NativeFailure(FailureKind::kInput, "buildEngine", "options.onnxPath must be a string");
  parsed.onnx_path = path.As<Napi::String>().Utf8Value();
  Napi::Value precision = options.Get("precision");
  if (!precision.IsString()) throw NativeFailure(FailureKind::kInput, "buildEngine", "options.precision must be \"fp16\" or \"fp32\"");
  const std::string precision_name = precision.As<Napi::String>().Utf8Value();
  if (precision_name != "fp16" && precision_name != "fp32") throw NativeFailure(FailureKind::kInput, "buildEngine", "options.precision must be \"fp16\" or \"fp32\"");
  parsed.fp16 = precision_name == "fp16";
  parsed.geometry.height = static_cast<std::int64_t>(NumberOption(options, "height", 0));
  parsed.geometry.width = static_cast<std::int64_t>(NumberOption(options, "width", 0));
  parsed.geometry.channels = static_cast<std::int64_t>(NumberOption(options, "channels", 3));
  if (parsed.geometry.height <= 0 || parsed.geometry.width <= 0 || (parsed.geometry.channels != 3 && parsed.geometry.channels != 4)) {
    throw NativeFailure(FailureKind::kInput, "buildEngine", "options.height and options.width must be positive and options.channels 3 or 4");
  }
  parsed.workspace_mib = NumberOption(options, "workspaceMiB", 0);
  parsed.optimization_level = static_cast<int>(NumberOption(options, "optimizationLevel", -1));
  parsed.device = static_cast<int>(NumberOption(options, "device", 0));
  Napi::Value cache = options.Get("timingCache");
  if (cache.IsTypedArray()) {
    Napi::TypedArray array = cache.As<Napi::TypedArray>();
    const std::uint8_t* bytes = TypedArrayBytes(array);
    parsed.timing_cache.assign(bytes, bytes + array.ByteLength());
  }
  return parsed;
}

#if !ENDOSYNTH_WITH_TENSORRT

Napi::Value Rejected(Napi::Env env, const NativeFailure& failure) {
  auto deferred = Napi::Promise::Deferred::New(env);
  deferred.Reject(ToJsError(env, failure).Value());
  Napi::Object job = Napi::Object::New(env);
  job.Set("promise", deferred.Promise());
  job.Set("cancel", Napi::Function::New(env, [](const Napi::CallbackInfo&) {}));
  return job;
}

#else

using nvinfer1::DataType;

struct ProgressUpdate {
  std::string phase;
  double fraction = -1;  // < 0: unknown
  std::string detail;
};

void DeliverProgress(Napi::Env env, Napi::Function callback, std::nullptr_t*, ProgressUpdate* update) {
  std::unique_ptr<ProgressUpdate> owned(update);
  if (env == nullptr || callback.IsEmpty()) return;
  Napi::Object progress = Napi::Object::New(env);
  progress.Set("phase", owned->phase);
  if (owned->fraction >= 0) progress.Set("fraction", owned->fraction);
  if (!owned->detail.empty()) progress.Set("detail", owned->detail);
  try {
    callback.Call({progress});
  } catch (const Napi::Error&) {
    // A throwing progress callback must not break the build; the JS side guards its callbacks.
  }
}

using ProgressFunction = Napi::TypedThreadSafeFunction<std::nullptr_t, ProgressUpdate, &DeliverProgress>;


// Turns TensorRT's nested phases into one fraction of the outermost phase, throttled, and answers
// TensorRT's "continue?" with the cancellation flag. TensorRT may call it from several threads.
class BuildProgressMonitor final : public nvinfer1::IProgressMonitor {
 public:
  BuildProgressMonitor(std::shared_ptr<std::atomic<bool>> cancel, std::function<void(ProgressUpdate)> emit)
      : cancel_(std::move(cancel)), emit_(std::move(emit)) {}

  void phaseStart(char const* phase_name, char const* parent_phase, int32_t nb_steps) noexcept override {
    Guarded([&] {
      const std::string name = phase_name == nullptr ? "" : phase_name;
      phases_[name] = Phase{parent_phase == nullptr ? "" : parent_phase, std::max(nb_steps, 1), 0, ++started_};
      if (parent_phase == nullptr) root_ = name;
      Report(true);
    });
  }

  bool stepComplete(char const* phase_name, int32_t step) noexcept override {
    Guarded([&] {
      auto it = phases_.find(phase_name == nullptr ? "" : phase_name);
      if (it != phases_.end()) it->second.done = std::min(step + 1, it->second.steps);
      Report(false);
    });
    return !cancel_->load();
  }

  void phaseFinish(char const* phase_name) noexcept override {
    Guarded([&] {
      phases_.erase(phase_name == nullptr ? "" : phase_name);
      Report(true);
    });
  }

 private:
  struct Phase {
    std::string parent;
    int32_t steps;
    int32_t done;
    std::uint64_t order;
  };

  template <typename Body>
  void Guarded(Body body) noexcept {
    try {
      std::lock_guard<std::mutex> lock(mutex_);
      body();
    } catch (...) {
      // Progress is best effort; it must never throw into TensorRT.
    }
  }

  // The most recently started phase whose parent is `name`, or phases_.end().
  std::map<std::string, Phase>::const_iterator ActiveChild(const std::string& name) const {
    auto best = phases_.end();
    for (auto it = phases_.begin(); it != phases_.end(); ++it) {
      if (it->second.parent == name && (best == phases_.end() || it->second.order > best->second.order)) best = it;
    }
    return best;
  }

  double Fraction(const std::string& name, int depth) const {
    auto it = phases_.find(name);
    if (it == phases_.end() || depth > 16) return 0;
    double inner = 0;
    auto child = ActiveChild(name);
    if (child != phases_.end()) inner = Fraction(child->first, depth + 1);
    return std::min(1.0, (it->second.done + inner) / it->second.steps);
  }

  std::string Detail() const {
    std::string detail;
    std::string name = root_;
    for (int depth = 0; depth < 16; ++depth) {
      auto it = phases_.find(name);
      if (it == phases_.end()) break;
      if (!detail.empty()) detail += " > ";
      detail += name + " (" + std::to_string(it->second.done) + "/" + std::to_string(it->second.steps) + ")";
      auto child = ActiveChild(name);
      if (child == phases_.end()) break;
      name = child->first;
    }
    return detail;
  }

  void Report(bool phase_changed) {
    const auto now = std::chrono::steady_clock::now();
    const double fraction = phases_.count(root_) != 0 ? Fraction(root_, 0) : -1;
    // Throttled: TensorRT reports thousands of steps and each one crosses to the JS thread.
    if (!phase_changed && fraction - last_fraction_ < 0.005 && now - last_report_ < std::chrono::milliseconds(250)) return;
    last_fraction_ = fraction;
    last_report_ = now;
    emit_(ProgressUpdate{"building TensorRT engine", fraction, Detail()});
  }

  std::shared_ptr<std::atomic<bool>> cancel_;
  std::function<void(ProgressUpdate)> emit_;
  std::mutex mutex_;
  std::map<std::string, Phase> phases_;
  std::string root_;
  std::uint64_t started_ = 0;
  double last_fraction_ = -1;
  std::chrono::steady_clock::time_point last_report_{};
};

struct BuildResult {
  TrtPtr<nvinfer1::IHostMemory> plan;
  TrtPtr<nvinfer1::IHostMemory> timing_cache;
};

NativeFailure InputFailure(const BuildOptions& options, const std::string& message) {
  NativeFailure failure(FailureKind::kInput, "buildEngine", message);
  failure.WithFile(options.onnx_path);
  return failure;
}

std::string DimsText(const nvinfer1::Dims& dims) {
  std::string text = "[";
  for (int32_t i = 0; i < dims.nbDims; ++i) text += (i == 0 ? "" : ", ") + std::to_string(dims.d[i]);
  return text + "]";
}

// The contract of every converted model: one uint8 [H, W, C] input, one float32 [H, W] output.
void CheckNetworkContract(const BuildOptions& options, nvinfer1::INetworkDefinition& network) {
  if (network.getNbInputs() != 1 || network.getNbOutputs() != 1) {
    throw InputFailure(options, options.onnx_path + " has " + std::to_string(network.getNbInputs()) + " inputs and " +
                                    std::to_string(network.getNbOutputs()) + " outputs; expected one uint8 [H, W, C] input and one float32 [H, W] output");
  }
  nvinfer1::ITensor* input = network.getInput(0);
  const nvinfer1::Dims dims = input->getDimensions();
  if (input->getType() != DataType::kUINT8 || dims.nbDims != 3) {
    throw InputFailure(options, std::string("input ") + input->getName() + " of " + options.onnx_path + " is not uint8 [H, W, C] (dims " + DimsText(dims) + ")");
  }
  const std::int64_t wanted[3] = {options.geometry.height, options.geometry.width, options.geometry.channels};
  for (int i = 0; i < 3; ++i) {
    if (dims.d[i] >= 0 && dims.d[i] != wanted[i]) {
      throw InputFailure(options, std::string("input ") + input->getName() + " of " + options.onnx_path + " has fixed dims " + DimsText(dims) +
                                      " that do not fit frames of " + std::to_string(wanted[0]) + "x" + std::to_string(wanted[1]) + "x" + std::to_string(wanted[2]));
    }
  }
  nvinfer1::ITensor* output = network.getOutput(0);
  if (output->getType() != DataType::kFLOAT || output->getDimensions().nbDims != 2) {
    throw InputFailure(options, std::string("output ") + output->getName() + " of " + options.onnx_path + " is not float32 [H, W] (dims " + DimsText(output->getDimensions()) + ")");
  }
}

bool HasHalfTensor(nvinfer1::INetworkDefinition& network) {
  for (int32_t i = 0; i < network.getNbLayers(); ++i) {
    nvinfer1::ILayer* layer = network.getLayer(i);
    for (int32_t j = 0; j < layer->getNbOutputs(); ++j) {
      if (layer->getOutput(j)->getType() == DataType::kHALF) return true;
    }
  }
  return false;
}

// Networks are strongly typed on every TensorRT version: the ONNX's own types decide the precision,
// so the requested one must match what the converter produced. (TensorRT 10's weakly typed kFP16
// mode could also pick fp16 for the pre-processing's tap arithmetic, whose values exceed fp16's
// range for large frames; the converter's fp16 ONNX keeps that in fp32.)
void CheckPrecision(const BuildOptions& options, nvinfer1::INetworkDefinition& network) {
  const bool half = HasHalfTensor(network);
  if (options.fp16 && !half) {
    throw InputFailure(options, "TensorRT builds strongly typed networks: precision \"fp16\" needs the converter's fp16 ONNX, but " + options.onnx_path + " has no float16 tensor");
  }
  if (!options.fp16 && half) {
    throw InputFailure(options, "precision \"fp32\" was requested but " + options.onnx_path + " computes in float16 (TensorRT follows the ONNX's types)");
  }
}

nvinfer1::Dims FrameDims(const EngineGeometry& geometry) {
  nvinfer1::Dims dims{};
  dims.nbDims = 3;
  dims.d[0] = geometry.height;
  dims.d[1] = geometry.width;
  dims.d[2] = geometry.channels;
  return dims;
}

std::string ParserErrors(nvonnxparser::IParser& parser) {
  std::string text;
  for (int i = 0; i < parser.getNbErrors() && i < 8; ++i) {
    const nvonnxparser::IParserError* error = parser.getError(i);
    if (error == nullptr) continue;
    if (!text.empty()) text += "; ";
    text += error->desc();
    if (error->node() >= 0) text += std::string(" (node ") + std::to_string(error->node()) + " " + (error->nodeName() == nullptr ? "" : error->nodeName()) + ")";
  }
  return text.empty() ? "no detail from the parser" : text;
}

void ThrowIfCancelled(const std::atomic<bool>& cancel) {
  if (cancel.load()) throw NativeFailure(FailureKind::kAborted, "buildEngine", "the TensorRT engine build was cancelled");
}

BuildResult BuildSerializedEngine(const BuildOptions& options, const std::shared_ptr<std::atomic<bool>>& cancel, const std::function<void(ProgressUpdate)>& emit) {
  const std::uint64_t mark = TensorRtLog().LastSeq();
  ThrowIfCancelled(*cancel);
  RequireTensorRt();
  CheckCuda(cudaSetDevice(options.device), "cudaSetDevice");
  // NvInfer.h: the timing cache must outlive every builder that uses it, and the progress monitor
  // every TensorRT object that uses it; declared before the builder, both are destroyed after it.
  TrtPtr<nvinfer1::ITimingCache> timing_cache;
  BuildProgressMonitor monitor(cancel, emit);
  TrtPtr<nvinfer1::IBuilder> builder = CreateBuilder();
  // TensorRT 11 networks are always strongly typed (kSTRONGLY_TYPED is deprecated and ignored there);
  // TensorRT 10 is asked for it.
#if NV_TENSORRT_MAJOR >= 11
  constexpr std::uint32_t kNetworkFlags = 0;
#else
  constexpr std::uint32_t kNetworkFlags = 1U << static_cast<std::uint32_t>(nvinfer1::NetworkDefinitionCreationFlag::kSTRONGLY_TYPED);
#endif
  TrtPtr<nvinfer1::INetworkDefinition> network(builder->createNetworkV2(kNetworkFlags));
  if (!network) throw TensorRtFailure("IBuilder::createNetworkV2", "TensorRT could not create a network definition", mark);
  TrtPtr<nvonnxparser::IParser> parser = CreateParser(*network);

  emit(ProgressUpdate{"parsing ONNX", -1, options.onnx_path});
  // From the path, not from bytes: the parser resolves external data files beside the model.
  if (!parser->parseFromFile(options.onnx_path.c_str(), static_cast<int>(nvinfer1::ILogger::Severity::kWARNING))) {
    NativeFailure failure = TensorRtFailure("IParser::parseFromFile", "TensorRT could not parse " + options.onnx_path + ": " + ParserErrors(*parser), mark);
    failure.WithFile(options.onnx_path);
    throw failure;
  }
  ThrowIfCancelled(*cancel);
  CheckNetworkContract(options, *network);
  CheckPrecision(options, *network);

  TrtPtr<nvinfer1::IBuilderConfig> config(builder->createBuilderConfig());
  if (!config) throw TensorRtFailure("IBuilder::createBuilderConfig", "TensorRT could not create a builder config", mark);
  if (options.workspace_mib > 0) {
    config->setMemoryPoolLimit(nvinfer1::MemoryPoolType::kWORKSPACE, static_cast<std::size_t>(options.workspace_mib * 1024.0 * 1024.0));
  }
  if (options.optimization_level >= 0) config->setBuilderOptimizationLevel(options.optimization_level);

  // One profile pinned to the feed's resolution: the shapes are static, which lets every slot
  // capture its enqueue in a CUDA graph.
  nvinfer1::IOptimizationProfile* profile = builder->createOptimizationProfile();
  const char* input_name = network->getInput(0)->getName();
  const nvinfer1::Dims frame = FrameDims(options.geometry);
  if (profile == nullptr || !profile->setDimensions(input_name, nvinfer1::OptProfileSelector::kMIN, frame) ||
      !profile->setDimensions(input_name, nvinfer1::OptProfileSelector::kOPT, frame) ||
      !profile->setDimensions(input_name, nvinfer1::OptProfileSelector::kMAX, frame) || config->addOptimizationProfile(profile) < 0) {
    throw TensorRtFailure("IOptimizationProfile::setDimensions", "TensorRT refused the optimization profile " + DimsText(frame), mark);
  }

  // A stored cache TensorRT refuses (unreadable, or measured on a device whose properties differ,
  // e.g. another MIG slice of the same GPU) only costs time: start an empty one instead, or the
  // build would fail on every attempt because of a file that is rewritten only by a build.
  timing_cache.reset(config->createTimingCache(options.timing_cache.data(), options.timing_cache.size()));
  if (!options.timing_cache.empty() && (!timing_cache || !config->setTimingCache(*timing_cache, false))) {
    TensorRtLog().Push(LogSeverity::kWarning, "endosynth", "the timing cache was rejected by TensorRT; starting an empty one");
    timing_cache.reset(config->createTimingCache(nullptr, 0));
  }
  if (!timing_cache || !config->setTimingCache(*timing_cache, false)) {
    throw TensorRtFailure("IBuilderConfig::setTimingCache", "TensorRT could not use a timing cache", mark);
  }

  config->setProgressMonitor(&monitor);
  BuildResult result;
  result.plan.reset(builder->buildSerializedNetwork(*network, *config));
  config->setProgressMonitor(nullptr);
  ThrowIfCancelled(*cancel);
  if (!result.plan || result.plan->size() == 0) {
    throw TensorRtFailure("IBuilder::buildSerializedNetwork", "TensorRT could not build an engine from " + options.onnx_path, mark);
  }
  const nvinfer1::ITimingCache* used_cache = config->getTimingCache();
  if (used_cache != nullptr) result.timing_cache.reset(used_cache->serialize());
  return result;
}

class EngineBuildWorker : public Napi::AsyncWorker {
 public:
  EngineBuildWorker(Napi::Env env, BuildOptions options, std::shared_ptr<std::atomic<bool>> cancel, std::optional<ProgressFunction> progress)
      : Napi::AsyncWorker(env, "endosynth:build-engine"),
        options_(std::move(options)),
        cancel_(std::move(cancel)),
        progress_(std::move(progress)),
        deferred_(Napi::Promise::Deferred::New(env)) {}

  ~EngineBuildWorker() override {
    if (progress_) progress_->Release();
  }

  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    std::optional<ProgressFunction> progress = progress_;
    auto emit = [progress](ProgressUpdate update) {
      if (progress) progress->NonBlockingCall(new ProgressUpdate(std::move(update)));
    };
    try {
      result_ = BuildSerializedEngine(options_, cancel_, emit);
    } catch (const NativeFailure& failure) {
      failure_ = failure;
      SetError(failure.what());
    } catch (const std::exception& error) {
      failure_ = NativeFailure(FailureKind::kInternal, "buildEngine", error.what());
      SetError(error.what());
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Object built = Napi::Object::New(env);
    built.Set("plan", Release(env, std::move(result_.plan)));
    built.Set("timingCache", Release(env, std::move(result_.timing_cache)));
    deferred_.Resolve(built);
  }

  void OnError(const Napi::Error& error) override {
    deferred_.Reject(failure_ ? ToJsError(Env(), *failure_).Value() : error.Value());
  }

 private:
  // The serialized bytes as a Buffer over TensorRT's own memory (copied where external buffers
  // are forbidden); the IHostMemory is deleted when the Buffer is collected.
  static Napi::Value Release(Napi::Env env, TrtPtr<nvinfer1::IHostMemory> memory) {
    if (!memory) return Napi::Buffer<std::uint8_t>::New(env, 0);
    auto* raw = memory.release();
    return Napi::Buffer<std::uint8_t>::NewOrCopy(
        env, static_cast<std::uint8_t*>(raw->data()), raw->size(),
        [](Napi::Env, std::uint8_t*, nvinfer1::IHostMemory* owner) { delete owner; }, raw);
  }

  BuildOptions options_;
  std::shared_ptr<std::atomic<bool>> cancel_;
  std::optional<ProgressFunction> progress_;
  Napi::Promise::Deferred deferred_;
  BuildResult result_;
  std::optional<NativeFailure> failure_;
};

#endif  // ENDOSYNTH_WITH_TENSORRT

}  // namespace

Napi::Value BuildEngineJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "buildEngine(options, onProgress?) needs an options object");
  BuildOptions options;
  try {
    options = ParseOptions(info[0].As<Napi::Object>());
  } catch (const NativeFailure& failure) {
    throw ToJsError(env, failure);
  }
#if ENDOSYNTH_WITH_TENSORRT
  std::optional<ProgressFunction> progress;
  if (info.Length() > 1 && info[1].IsFunction()) {
    progress = ProgressFunction::New(env, info[1].As<Napi::Function>(), "endosynth:build-progress", 0, 1);
  }
  auto cancel = std::make_shared<std::atomic<bool>>(false);
  auto* worker = new EngineBuildWorker(env, std::move(options), cancel, std::move(progress));
  Napi::Object job = Napi::Object::New(env);
  job.Set("promise", worker->Promise());
  job.Set("cancel", Napi::Function::New(env, [cancel](const Napi::CallbackInfo&) { cancel->store(true); }));
  worker->Queue();
  return job;
#else
  (void)options;
  return Rejected(env, NativeFailure(FailureKind::kUnavailable, "buildEngine", "the native addon was built without TensorRT headers"));
#endif
}

}  // namespace endosynth
