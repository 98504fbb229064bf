#include "status.h"

#include <string>

#include "build_config.h"

#if ENDOSYNTH_WITH_CUDA
#include "cuda_support.h"
#endif
#if ENDOSYNTH_WITH_TENSORRT
#include "tensorrt_library.h"
#endif

namespace endosynth {

namespace {

#if ENDOSYNTH_WITH_CUDA
// 12080 -> "12.8"
std::string CudaVersionText(int version) { return std::to_string(version / 1000) + "." + std::to_string(version % 1000 / 10); }

Napi::Object FailureObject(Napi::Env env, cudaError_t status, const char* call) {
  const NativeFailure failure = CudaFailure(status, call);
  Napi::Object object = Napi::Object::New(env);
  object.Set("call", call);
  object.Set("code", static_cast<int>(status));
  object.Set("name", failure.cuda_name());
  object.Set("message", failure.what());
  return object;
}
#endif

Napi::Object BuildInfo(Napi::Env env) {
  Napi::Object build = Napi::Object::New(env);
  build.Set("cuda", static_cast<bool>(ENDOSYNTH_WITH_CUDA));
  build.Set("tensorrt", static_cast<bool>(ENDOSYNTH_WITH_TENSORRT));
#if ENDOSYNTH_WITH_CUDA
  build.Set("cudaRuntime", CudaVersionText(CUDART_VERSION));
#else
  build.Set("cudaRuntime", env.Null());
#endif
#if ENDOSYNTH_WITH_TENSORRT
  build.Set("tensorrtHeaders", std::to_string(NV_TENSORRT_MAJOR) + "." + std::to_string(NV_TENSORRT_MINOR) + "." + std::to_string(NV_TENSORRT_PATCH));
  build.Set("tensorrtMajor", NV_TENSORRT_MAJOR);
#else
  build.Set("tensorrtHeaders", env.Null());
  build.Set("tensorrtMajor", env.Null());
#endif
  build.Set("napiVersion", NAPI_VERSION);
  build.Set("compiler", __VERSION__);
  return build;
}

Napi::Object CudaInfo(Napi::Env env) {
  Napi::Object cuda = Napi::Object::New(env);
  Napi::Array devices = Napi::Array::New(env);
  cuda.Set("devices", devices);
#if ENDOSYNTH_WITH_CUDA
  int runtime = 0;
  int driver = 0;
  cudaRuntimeGetVersion(&runtime);
  // 0 (with cudaSuccess) when no driver is installed.
  cudaDriverGetVersion(&driver);
  cuda.Set("runtimeVersion", CudaVersionText(runtime));
  cuda.Set("driverVersion", driver > 0 ? Napi::Value(Napi::String::New(env, CudaVersionText(driver))) : env.Null());
  int count = 0;
  const cudaError_t counted = cudaGetDeviceCount(&count);
  if (counted != cudaSuccess) {
    cudaGetLastError();
    cuda.Set("failure", FailureObject(env, counted, "cudaGetDeviceCount"));
    return cuda;
  }
  for (int index = 0; index < count; ++index) {
    cudaDeviceProp properties{};
    const cudaError_t queried = cudaGetDeviceProperties(&properties, index);
    if (queried != cudaSuccess) {
      cudaGetLastError();
      cuda.Set("failure", FailureObject(env, queried, "cudaGetDeviceProperties"));
      return cuda;
    }
    Napi::Object device = Napi::Object::New(env);
    device.Set("index", index);
    device.Set("name", properties.name);
    device.Set("computeCapability", std::to_string(properties.major) + "." + std::to_string(properties.minor));
    device.Set("memoryBytes", static_cast<double>(properties.totalGlobalMem));
    devices.Set(static_cast<uint32_t>(index), device);
  }
#else
  cuda.Set("runtimeVersion", env.Null());
  cuda.Set("driverVersion", env.Null());
#endif
  return cuda;
}

Napi::Object TensorRtInfo(Napi::Env env) {
  Napi::Object tensorrt = Napi::Object::New(env);
#if ENDOSYNTH_WITH_TENSORRT
  const TensorRtLibrary& library = TensorRt();
  tensorrt.Set("loaded", library.loaded);
  tensorrt.Set("version", library.version > 0 ? Napi::Value(Napi::String::New(env, FormatTensorRtVersion(library.version))) : env.Null());
  tensorrt.Set("parserVersion", library.parser_version > 0 ? Napi::Value(Napi::Number::New(env, library.parser_version)) : env.Null());
  tensorrt.Set("libraryPath", library.infer_path.empty() ? env.Null() : Napi::Value(Napi::String::New(env, library.infer_path)));
  tensorrt.Set("parserLibraryPath", library.parser_path.empty() ? env.Null() : Napi::Value(Napi::String::New(env, library.parser_path)));
  if (!library.loaded) tensorrt.Set("failure", library.failure);
  tensorrt.Set("soname", "libnvinfer.so." + std::to_string(NV_TENSORRT_MAJOR));
#else
  tensorrt.Set("loaded", false);
  tensorrt.Set("version", env.Null());
  tensorrt.Set("parserVersion", env.Null());
  tensorrt.Set("libraryPath", env.Null());
  tensorrt.Set("parserLibraryPath", env.Null());
  tensorrt.Set("soname", env.Null());
#endif
  return tensorrt;
}

}  // namespace

Napi::Value StatusJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object status = Napi::Object::New(env);
  status.Set("build", BuildInfo(env));
  status.Set("cuda", CudaInfo(env));
  status.Set("tensorrt", TensorRtInfo(env));
  return status;
}

}  // namespace endosynth
