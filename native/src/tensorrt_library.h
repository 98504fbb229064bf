// TensorRT, loaded at run time. The addon never links TensorRT: it dlopen()s
// libnvinfer.so.<major> and libnvonnxparser.so.<major> (major from the headers it was built with)
// and resolves only the C entry points; every other TensorRT call is an inline wrapper over a
// virtual method of an object those entry points return. So one binary loads on every machine and
// reports why TensorRT is missing instead of failing to load.
#pragma once

#include "build_config.h"

#if ENDOSYNTH_WITH_TENSORRT

#include <NvInfer.h>
#include <NvOnnxParser.h>

#include <memory>
#include <string>

namespace endosynth {

// TensorRT 10 objects are destroyed with `delete` (their destructors are virtual and public).
template <typename T>
using TrtPtr = std::unique_ptr<T>;

struct TensorRtLibrary {
  bool loaded = false;
  std::string failure;       // why it is not loaded: one clause for a sentence, e.g. "libnvinfer.so.10 could not be opened (...)"
  std::string infer_path;    // the file dlopen resolved libnvinfer to
  std::string parser_path;   // the file dlopen resolved libnvonnxparser to
  int version = 0;           // getInferLibVersion(): major * 10000 + minor * 100 + patch
  int parser_version = 0;    // getNvOnnxParserVersion()

  using CreateObject = void* (*)(void* logger, std::int32_t version);
  using CreateParser = void* (*)(void* network, void* logger, int version);
  using GetVersion = std::int32_t (*)();
  using GetParserVersion = int (*)();
  CreateObject create_builder = nullptr;
  CreateObject create_runtime = nullptr;
  CreateParser create_parser = nullptr;
};

// The library, loaded on first use (thread-safe; never unloaded, as TensorRT must not be).
const TensorRtLibrary& TensorRt();
// The library, or a NativeFailure of kind kUnavailable saying why it is not there.
const TensorRtLibrary& RequireTensorRt();
// "10.16.0" from a getInferLibVersion() value.
std::string FormatTensorRtVersion(int version);

// The process-wide logger given to every builder, runtime and parser: writes into TensorRtLog().
nvinfer1::ILogger& TensorRtLogger();

TrtPtr<nvinfer1::IBuilder> CreateBuilder();
TrtPtr<nvinfer1::IRuntime> CreateRuntime();
TrtPtr<nvonnxparser::IParser> CreateParser(nvinfer1::INetworkDefinition& network);

}  // namespace endosynth

#endif  // ENDOSYNTH_WITH_TENSORRT
