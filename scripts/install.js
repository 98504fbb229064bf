#!/usr/bin/env node
// npm install hook of the published package. By default it does nothing: the native addon comes
// prebuilt in this platform's binary package (@endosynth/<os>-<cpu>), and nothing is compiled or
// downloaded at install. A source build happens only when asked for, as with sharp:
//
//   npm_config_build_from_source=true npm install endosynth     (or: npm rebuild endosynth)
//   ENDOSYNTH_BUILD_FROM_SOURCE=1 ...                             (the same)
//
// It needs a C++ compiler and node-gyp (npm ships one); the CUDA toolkit and TensorRT headers are
// found as docs/native.md says (CUDAToolkit_ROOT, TensorRT_INCLUDE_DIR). A failed build fails the
// install, since it was asked for.
import { buildNative, builtAddon, describeBuiltAddon } from "./build_native.js";

function optedIn() {
  const flag = (value) => value !== undefined && value !== "" && value !== "false" && value !== "0";
  return flag(process.env.npm_config_build_from_source) || flag(process.env.ENDOSYNTH_BUILD_FROM_SOURCE);
}

if (optedIn()) {
  const result = buildNative({ builder: "node-gyp" }, "inherit");
  if (!result.ok) {
    console.error(`endosynth: the source build that was asked for failed (${result.command}${result.status === null ? "" : `, exit code ${result.status}`})`);
    process.exit(1);
  }
  console.log(`endosynth: built ${builtAddon} from source (${describeBuiltAddon()})`);
}
