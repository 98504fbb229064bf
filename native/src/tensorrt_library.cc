#include "tensorrt_library.h"

#if ENDOSYNTH_WITH_TENSORRT

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <vector>

#include "log_ring.h"
#include "native_error.h"

#define ENDOSYNTH_STRINGIFY_VALUE(x) #x
#define ENDOSYNTH_STRINGIFY(x) ENDOSYNTH_STRINGIFY_VALUE(x)

namespace endosynth {

namespace {

const char* const kInferLibrary = "libnvinfer.so." ENDOSYNTH_STRINGIFY(NV_TENSORRT_MAJOR);
const char* const kParserLibrary = "libnvonnxparser.so." ENDOSYNTH_STRINGIFY(NV_TENSORRT_MAJOR);

class RingLogger final : public nvinfer1::ILogger {
 public:
  void log(Severity severity, nvinfer1::AsciiChar const* message) noexcept override {
    // Verbose messages (thousands per build) would push the problems out of the bounded ring.
    if (severity > Severity::kINFO) return;
    try {
      TensorRtLog().Push(static_cast<LogSeverity>(static_cast<int>(severity)), "tensorrt", message == nullptr ? "" : message);
    } catch (...) {
      // Logging must never throw into TensorRT; a message lost to an allocation failure is acceptable.
    }
  }
};

// dlopen by soname (LD_LIBRARY_PATH, ld.so.cache), then under $TENSORRT_ROOT/lib. On failure
// `error` holds the loader's message for the soname attempt, the one a user can act on.
void* OpenLibrary(const char* soname, std::string& error) {
  void* handle = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (handle != nullptr) return handle;
  const char* message = dlerror();
  error = message == nullptr ? "unknown dlopen error" : message;
  if (const char* root = std::getenv("TENSORRT_ROOT")) {
    const std::string path = std::string(root) + "/lib/" + soname;
    handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle != nullptr) return handle;
    dlerror();
  }
  return nullptr;
}

template <typename Function>
Function Resolve(void* handle, const char* library, const char* symbol, std::string& failure) {
  dlerror();
  void* address = dlsym(handle, symbol);
  if (address == nullptr && failure.empty()) {
    const char* message = dlerror();
    failure = std::string(library) + " has no symbol " + symbol + " (" + (message == nullptr ? "it resolved to null" : message) + ")";
  }
  return reinterpret_cast<Function>(address);
}

std::string PathOf(void* address, const char* fallback) {
  Dl_info info{};
  if (address != nullptr && dladdr(address, &info) != 0 && info.dli_fname != nullptr) return info.dli_fname;
  return fallback;
}

// TensorRT keeps its API compatible within a major version only forwards: an addon built against
// 10.16 headers may call methods a 10.14 library lacks. So the library's major must equal the
// headers' and its minor be at least theirs; otherwise TensorRT is unavailable (and "auto" falls
// back to ONNX Runtime) instead of failing in the middle of an engine build.
std::string VersionMismatch(const std::string& path, int version) {
  const int major = version / 10000;
  const int minor = version / 100 % 100;
  const std::string headers = "TensorRT " ENDOSYNTH_STRINGIFY(NV_TENSORRT_MAJOR) "." ENDOSYNTH_STRINGIFY(NV_TENSORRT_MINOR) " headers";
  if (major != NV_TENSORRT_MAJOR) {
    return path + " is TensorRT " + FormatTensorRtVersion(version) + " but the addon was built with " + headers;
  }
  if (minor < NV_TENSORRT_MINOR) {
    return path + " is TensorRT " + FormatTensorRtVersion(version) + ", older than the " + headers +
           " the addon was built with: install TensorRT " ENDOSYNTH_STRINGIFY(NV_TENSORRT_MAJOR) "." ENDOSYNTH_STRINGIFY(NV_TENSORRT_MINOR) " or newer, "
           "or rebuild the addon against the installed headers (npm run build:native -- --tensorrt <include dir>)";
  }
  return "";
}

TensorRtLibrary Load() {
  TensorRtLibrary library;
  std::string error;
  void* infer = OpenLibrary(kInferLibrary, error);
  if (infer == nullptr) {
    library.failure = std::string(kInferLibrary) + " could not be opened (" + error + ")";
    return library;
  }
  void* parser = OpenLibrary(kParserLibrary, error);
  if (parser == nullptr) {
    library.failure = std::string(kParserLibrary) + " could not be opened (" + error + ")";
    return library;
  }
  std::string failure;
  library.create_builder = Resolve<TensorRtLibrary::CreateObject>(infer, kInferLibrary, "createInferBuilder_INTERNAL", failure);
  library.create_runtime = Resolve<TensorRtLibrary::CreateObject>(infer, kInferLibrary, "createInferRuntime_INTERNAL", failure);
  // No builder or runtime method reports the library's version, so this C function is resolved too.
  auto get_version = Resolve<TensorRtLibrary::GetVersion>(infer, kInferLibrary, "getInferLibVersion", failure);
  library.create_parser = Resolve<TensorRtLibrary::CreateParser>(parser, kParserLibrary, "createNvOnnxParser_INTERNAL", failure);
  auto get_parser_version = Resolve<TensorRtLibrary::GetParserVersion>(parser, kParserLibrary, "getNvOnnxParserVersion", failure);
  if (!failure.empty()) {
    library.failure = failure;
    return library;
  }
  library.infer_path = PathOf(reinterpret_cast<void*>(library.create_builder), kInferLibrary);
  library.parser_path = PathOf(reinterpret_cast<void*>(library.create_parser), kParserLibrary);
  library.version = get_version();
  library.parser_version = get_parser_version();
  library.failure = VersionMismatch(library.infer_path, library.version);
  if (!library.failure.empty()) return library;
  library.loaded = true;
  return library;
}

}  // namespace

std::string FormatTensorRtVersion(int version) {
  return std::to_string(version / 10000) + "." + std::to_string(version / 100 % 100) + "." + std::to_string(version % 100);
}

const TensorRtLibrary& TensorRt() {
  static std::once_flag once;
  static TensorRtLibrary* library = nullptr;
  // Leaked on purpose, like the libraries themselves: TensorRT objects may outlive static destructors.
  std::call_once(once, [] { library = new TensorRtLibrary(Load()); });
  return *library;
}

const TensorRtLibrary& RequireTensorRt() {
  const TensorRtLibrary& library = TensorRt();
  if (!library.loaded) throw NativeFailure(FailureKind::kUnavailable, "dlopen", "TensorRT is unavailable: " + library.failure);
  return library;
}

nvinfer1::ILogger& TensorRtLogger() {
  static RingLogger* logger = new RingLogger();
  return *logger;
}

TrtPtr<nvinfer1::IBuilder> CreateBuilder() {
  const std::uint64_t mark = TensorRtLog().LastSeq();
  auto* builder = static_cast<nvinfer1::IBuilder*>(RequireTensorRt().create_builder(&TensorRtLogger(), NV_TENSORRT_VERSION));
  if (builder == nullptr) throw TensorRtFailure("createInferBuilder", "TensorRT could not create a builder", mark);
  return TrtPtr<nvinfer1::IBuilder>(builder);
}

TrtPtr<nvinfer1::IRuntime> CreateRuntime() {
  const std::uint64_t mark = TensorRtLog().LastSeq();
  auto* runtime = static_cast<nvinfer1::IRuntime*>(RequireTensorRt().create_runtime(&TensorRtLogger(), NV_TENSORRT_VERSION));
  if (runtime == nullptr) throw TensorRtFailure("createInferRuntime", "TensorRT could not create a runtime", mark);
  return TrtPtr<nvinfer1::IRuntime>(runtime);
}

TrtPtr<nvonnxparser::IParser> CreateParser(nvinfer1::INetworkDefinition& network) {
  const std::uint64_t mark = TensorRtLog().LastSeq();
  auto* parser = static_cast<nvonnxparser::IParser*>(RequireTensorRt().create_parser(&network, &TensorRtLogger(), NV_ONNX_PARSER_VERSION));
  if (parser == nullptr) throw TensorRtFailure("createNvOnnxParser", "TensorRT could not create an ONNX parser", mark);
  return TrtPtr<nvonnxparser::IParser>(parser);
}

}  // namespace endosynth

#endif  // ENDOSYNTH_WITH_TENSORRT
