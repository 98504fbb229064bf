// Native failures and how they cross into JavaScript. Nothing in the addon exits or aborts: every
// CUDA or TensorRT failure becomes a NativeFailure carrying the failing call, the CUDA error code
// and name, and the last problems TensorRT logged; ToJsError turns it into a JS Error whose
// properties lib/native/errors.ts maps onto the package's error classes.
#pragma once

#include <napi.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace endosynth {

// What failed; lib/native/errors.ts maps each onto an EndosynthError subclass.
enum class FailureKind {
  kCuda,         // a CUDA runtime call returned an error
  kTensorRT,     // a TensorRT call failed (null object, false result)
  kPlanRejected, // TensorRT refused a serialized plan: the caller should rebuild it
  kInput,        // the caller passed something unusable
  kDisposed,     // the object was disposed
  kAborted,      // cancelled on request
  kUnavailable,  // TensorRT or CUDA cannot be used on this machine / with this build
  kInternal,     // a bug: an invariant of the addon itself does not hold
};

// The stable name of a kind, as the JS side sees it in `error.nativeKind`.
const char* FailureKindName(FailureKind kind);

class NativeFailure : public std::runtime_error {
 public:
  NativeFailure(FailureKind kind, std::string call, const std::string& message);

  FailureKind kind() const { return kind_; }
  const std::string& call() const { return call_; }

  // Attaches the CUDA error behind the failure.
  NativeFailure& WithCudaError(int code, std::string name);
  // Attaches what TensorRT logged while the failing operation ran.
  NativeFailure& WithLog(std::vector<std::string> log);
  // Attaches the file the operation was working on.
  NativeFailure& WithFile(std::string file);

  int cuda_code() const { return cuda_code_; }
  const std::string& cuda_name() const { return cuda_name_; }
  const std::vector<std::string>& log() const { return log_; }
  const std::string& file() const { return file_; }

 private:
  FailureKind kind_;
  std::string call_;
  int cuda_code_ = 0;
  std::string cuda_name_;
  std::vector<std::string> log_;
  std::string file_;
};

// A JS Error for `failure`, with properties nativeKind, call, cudaError, cudaErrorName,
// tensorrtLog and file (the ones that apply).
Napi::Error ToJsError(Napi::Env env, const NativeFailure& failure);

// A NativeFailure of kind kTensorRT that carries the problems TensorRT logged after `log_mark`
// (a LogRing sequence number taken when the operation started).
NativeFailure TensorRtFailure(const std::string& call, const std::string& message, std::uint64_t log_mark);

}  // namespace endosynth
