#!/usr/bin/env node
// Finds the CUDA toolkit and the TensorRT headers for both build files (binding.gyp calls it via
// `<!(...)`, CMakeLists.txt via execute_process), so node-gyp and cmake-js always agree on what
// the addon is built with. Prints one path, or nothing when the toolkit is absent (the addon is
// then built without that part). A folder that was asked for explicitly but is unusable is an
// error: silently building without TensorRT after `--tensorrt <dir>` would hide a typo.
"use strict";
const { existsSync } = require("node:fs");
const { join, resolve } = require("node:path");

const CUDA_LIBRARY_DIRS = ["lib64", "lib", join("targets", "x86_64-linux", "lib"), join("targets", "sbsa-linux", "lib")];

function fail(message) {
  process.stderr.write(`endosynth: ${message}\n`);
  process.exit(1);
}

function cudaLibraryDir(root) {
  return CUDA_LIBRARY_DIRS.map((dir) => join(root, dir)).find((dir) => existsSync(join(dir, "libcudart_static.a")));
}

function isCudaToolkit(root) {
  return existsSync(join(root, "include", "cuda_runtime_api.h")) && cudaLibraryDir(root) !== undefined;
}

function locateCuda() {
  if (process.env.ENDOSYNTH_WITHOUT_CUDA === "1") return "";
  const explicit = ["CUDAToolkit_ROOT", "CUDA_PATH", "CUDA_HOME"].find((name) => process.env[name]);
  if (explicit) {
    const root = resolve(process.env[explicit]);
    if (!isCudaToolkit(root)) {
      fail(`${explicit}=${root} is not a CUDA toolkit (needs include/cuda_runtime_api.h and lib64/libcudart_static.a)`);
    }
    return root;
  }
  return isCudaToolkit("/usr/local/cuda") ? "/usr/local/cuda" : "";
}

function locateTensorRT() {
  const fromInclude = process.env.TensorRT_INCLUDE_DIR;
  const fromRoot = process.env.TENSORRT_ROOT;
  if (!fromInclude && !fromRoot) return "";
  const include = resolve(fromInclude || join(fromRoot, "include"));
  const origin = fromInclude ? `TensorRT_INCLUDE_DIR=${fromInclude}` : `TENSORRT_ROOT=${fromRoot}`;
  for (const header of ["NvInfer.h", "NvInferVersion.h"]) {
    if (!existsSync(join(include, header))) fail(`${origin}: ${join(include, header)} does not exist`);
  }
  if (!existsSync(join(include, "NvOnnxParser.h"))) {
    fail(`${origin}: ${join(include, "NvOnnxParser.h")} does not exist (TensorRT >= 10.14 ships it in include/; for older releases copy it from the onnx-tensorrt parser headers)`);
  }
  if (!locateCuda()) fail(`${origin}: TensorRT support needs the CUDA toolkit, which was not found (set CUDAToolkit_ROOT or CUDA_PATH)`);
  return include;
}

const what = process.argv[2];
if (what === "cuda") process.stdout.write(locateCuda());
else if (what === "cuda-lib") {
  const root = locateCuda();
  process.stdout.write(root ? cudaLibraryDir(root) : "");
} else if (what === "tensorrt") process.stdout.write(locateTensorRT());
else fail(`usage: locate_toolkits.cjs cuda|cuda-lib|tensorrt (got ${JSON.stringify(what)})`);
