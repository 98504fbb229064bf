#include "native_error.h"

#include <utility>

#include "log_ring.h"

namespace endosynth {

const char* FailureKindName(FailureKind kind) {
  switch (kind) {
    case FailureKind::kCuda: return "cuda";
    case FailureKind::kTensorRT: return "tensorrt";
    case FailureKind::kPlanRejected: return "plan-rejected";
    case FailureKind::kInput: return "input";
    case FailureKind::kDisposed: return "disposed";
    case FailureKind::kAborted: return "aborted";
    case FailureKind::kUnavailable: return "unavailable";
    case FailureKind::kInternal: return "internal";
  }
  return "internal";
}

NativeFailure::NativeFailure(FailureKind kind, std::string call, const std::string& message)
    : std::runtime_error(message), kind_(kind), call_(std::move(call)) {}

NativeFailure& NativeFailure::WithCudaError(int code, std::string name) {
  cuda_code_ = code;
  cuda_name_ = std::move(name);
  return *this;
}

NativeFailure& NativeFailure::WithLog(std::vector<std::string> log) {
  log_ = std::move(log);
  return *this;
}

NativeFailure& NativeFailure::WithFile(std::string file) {
  file_ = std::move(file);
  return *this;
}

Napi::Error ToJsError(Napi::Env env, const NativeFailure& failure) {
  Napi::Error error = Napi::Error::New(env, failure.what());
  Napi::Object object = error.Value();
  object.Set("nativeKind", FailureKindName(failure.kind()));
  if (!failure.call().empty()) object.Set("call", failure.call());
  if (!failure.cuda_name().empty()) {
    object.Set("cudaError", failure.cuda_code());
    object.Set("cudaErrorName", failure.cuda_name());
  }
  if (!failure.log().empty()) {
    Napi::Array log = Napi::Array::New(env, failure.log().size());
    for (std::size_t i = 0; i < failure.log().size(); ++i) log.Set(static_cast<uint32_t>(i), failure.log()[i]);
    object.Set("tensorrtLog", log);
  }
  if (!failure.file().empty()) object.Set("file", failure.file());
  return error;
}

NativeFailure TensorRtFailure(const std::string& call, const std::string& message, std::uint64_t log_mark) {
  NativeFailure failure(FailureKind::kTensorRT, call, message);
  failure.WithLog(TensorRtLog().ProblemsSince(log_mark, kProblemsPerFailure));
  return failure;
}

}  // namespace endosynth
