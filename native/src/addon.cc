// Entry point of the endosynth native addon: registers the functions and classes listed below.
// lib/native/addon.ts describes the same surface in TypeScript (NativeAddon).
#include <napi.h>

#include <string>

#include "addon_data.h"
#include "build_config.h"
#include "cuda_self_test.h"
#include "host_memory.h"
#include "inference_engine.h"
#include "log_ring.h"
#include "loopback_executor.h"
#include "native_error.h"
#include "status.h"
#include "tensorrt_build.h"
#include "tensorrt_executor.h"

#if ENDOSYNTH_WITH_CUDA
#include "cuda_support.h"
#endif

namespace endosynth {

namespace {

// logMessages(afterSeq = 0) -> { entries: [{ seq, severity, source, message, time }], lastSeq, capacity }
Napi::Value LogMessagesJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double after = 0;
  if (info.Length() > 0 && info[0].IsNumber()) after = info[0].As<Napi::Number>().DoubleValue();
  const LogRing& ring = TensorRtLog();
  const std::vector<LogEntry> entries = ring.Since(after > 0 ? static_cast<std::uint64_t>(after) : 0);
  Napi::Array list = Napi::Array::New(env, entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i) {
    Napi::Object entry = Napi::Object::New(env);
    entry.Set("seq", static_cast<double>(entries[i].seq));
    entry.Set("severity", LogSeverityName(entries[i].severity));
    entry.Set("source", entries[i].source);
    entry.Set("message", entries[i].message);
    entry.Set("time", entries[i].unix_ms);
    list.Set(static_cast<uint32_t>(i), entry);
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("entries", list);
  result.Set("lastSeq", static_cast<double>(ring.LastSeq()));
  result.Set("capacity", static_cast<double>(ring.capacity()));
  return result;
}

std::string StringArgument(const Napi::CallbackInfo& info, std::size_t index) {
  if (info.Length() <= index || !info[index].IsString()) {
    throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(index) + " must be a string");
  }
  return info[index].As<Napi::String>().Utf8Value();
}

// testing.cudaFailure(code, call): throws exactly what a failing CUDA call `call` returning `code` throws.
Napi::Value TestCudaFailureJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "cudaFailure(code, call) needs a number");
  const std::string call = StringArgument(info, 1);
#if ENDOSYNTH_WITH_CUDA
  throw ToJsError(env, CudaFailure(static_cast<cudaError_t>(info[0].As<Napi::Number>().Int32Value()), call));
#else
  throw ToJsError(env, NativeFailure(FailureKind::kUnavailable, call, "the native addon was built without CUDA"));
#endif
}

// testing.tensorrtFailure(call, message, logMark): throws a TensorRT failure quoting the problems
// logged after logMark, as a failing TensorRT call does.
Napi::Value TestTensorRtFailureJs(const Napi::CallbackInfo& info) {
  const double mark = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().DoubleValue() : 0;
  throw ToJsError(info.Env(), TensorRtFailure(StringArgument(info, 0), StringArgument(info, 1), static_cast<std::uint64_t>(mark)));
}

// testing.failure(kind, call, message): throws a failure of any kind.
Napi::Value TestFailureJs(const Napi::CallbackInfo& info) {
  const std::string kind = StringArgument(info, 0);
  for (FailureKind candidate : {FailureKind::kCuda, FailureKind::kTensorRT, FailureKind::kPlanRejected, FailureKind::kInput, FailureKind::kDisposed,
                                FailureKind::kAborted, FailureKind::kUnavailable, FailureKind::kInternal}) {
    if (kind == FailureKindName(candidate)) throw ToJsError(info.Env(), NativeFailure(candidate, StringArgument(info, 1), StringArgument(info, 2)));
  }
  throw Napi::TypeError::New(info.Env(), "unknown failure kind " + kind);
}

// testing.log(severity 0-4, source, message): writes into the log ring as TensorRT's logger does.
Napi::Value TestLogJs(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "log(severity, source, message) needs a severity");
  const int severity = info[0].As<Napi::Number>().Int32Value();
  if (severity < 0 || severity > 4) throw Napi::RangeError::New(info.Env(), "severity must be 0 to 4");
  TensorRtLog().Push(static_cast<LogSeverity>(severity), StringArgument(info, 1), StringArgument(info, 2));
  return Napi::Number::New(info.Env(), static_cast<double>(TensorRtLog().LastSeq()));
}

// testing.loadLoopbackEngine({ height, width, channels, slots, delayMs }) -> Promise<InferenceEngine>
Napi::Value TestLoadLoopbackEngineJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "loadLoopbackEngine(options) needs an options object");
  Napi::Object options = info[0].As<Napi::Object>();
  auto number = [&](const char* name, int fallback) {
    Napi::Value value = options.Get(name);
    return value.IsNumber() ? value.As<Napi::Number>().Int32Value() : fallback;
  };
  EngineGeometry geometry;
  geometry.height = number("height", 0);
  geometry.width = number("width", 0);
  geometry.channels = number("channels", 3);
  const int slots = number("slots", 1);
  const int delay = number("delayMs", 0);
  if (geometry.height <= 0 || geometry.width <= 0 || geometry.channels < 3 || slots < 1 || slots > 64 || delay < 0) {
    throw Napi::RangeError::New(env, "loadLoopbackEngine: bad geometry, slots or delay");
  }
  auto* worker = new EngineLoadWorker(env, [geometry, slots, delay] { return LoadLoopbackEngine(geometry, slots, delay); }, options);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData<AddonData>(data);
  data->engine_constructor = Napi::Persistent(InferenceEngine::DefineClass(env));
  Napi::Function host_arena = HostArena::DefineClass(env);
  data->host_arena_constructor = Napi::Persistent(host_arena);

  exports.Set("status", Napi::Function::New<StatusJs>(env, "status"));
  exports.Set("buildEngine", Napi::Function::New<BuildEngineJs>(env, "buildEngine"));
  exports.Set("loadEngine", Napi::Function::New<LoadEngineJs>(env, "loadEngine"));
  exports.Set("cudaSelfTest", Napi::Function::New<CudaSelfTestJs>(env, "cudaSelfTest"));
  exports.Set("logMessages", Napi::Function::New<LogMessagesJs>(env, "logMessages"));
  exports.Set("HostArena", host_arena);

  Napi::Object testing = Napi::Object::New(env);
  testing.Set("cudaFailure", Napi::Function::New<TestCudaFailureJs>(env, "cudaFailure"));
  testing.Set("tensorrtFailure", Napi::Function::New<TestTensorRtFailureJs>(env, "tensorrtFailure"));
  testing.Set("failure", Napi::Function::New<TestFailureJs>(env, "failure"));
  testing.Set("log", Napi::Function::New<TestLogJs>(env, "log"));
  testing.Set("loadLoopbackEngine", Napi::Function::New<TestLoadLoopbackEngineJs>(env, "loadLoopbackEngine"));
  exports.Set("testing", testing);
  return exports;
}

}  // namespace endosynth

// NODE_API_MODULE pastes the function's name into an identifier, so it must be unqualified.
static Napi::Object InitEndosynth(Napi::Env env, Napi::Object exports) { return endosynth::Init(env, exports); }

NODE_API_MODULE(endosynth, InitEndosynth)
