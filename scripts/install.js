#!/usr/bin/env node
// npm install hook: makes sure the native addon is there, never fails the install.
//
// 1. A prebuilt binary for this platform (prebuilds/, from `npm run prebuild`) or an earlier
//    build (build/Release) that loads: nothing to do.
// 2. Otherwise build from source with node-gyp (CUDA toolkit and TensorRT headers are optional;
//    see docs/native.md). Nothing is downloaded: Node's headers come from the local install.
// 3. If that fails, print one warning saying why and that the ONNX Runtime CPU backend will be
//    used, and exit 0: the package works without the addon, only TensorRT is unavailable.
//
// ENDOSYNTH_SKIP_NATIVE_BUILD=1 skips the build (e.g. for packaging steps that do not need it).
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { buildNative, builtAddon, describeBuiltAddon, packageRoot } from "./build_native.js";

const require = createRequire(import.meta.url);

/** The prebuild node-gyp-build would pick for this platform, if any. */
function matchingPrebuild() {
  let nodeGypBuild;
  try {
    nodeGypBuild = require("node-gyp-build/node-gyp-build.js");
  } catch {
    return undefined;
  }
  const prebuilds = join(packageRoot, "prebuilds");
  if (!existsSync(prebuilds)) return undefined;
  const tuple = readdirSync(prebuilds)
    .map(nodeGypBuild.parseTuple)
    .filter(nodeGypBuild.matchTuple(process.platform, process.arch))
    .sort(nodeGypBuild.compareTuples)[0];
  if (!tuple) return undefined;
  const folder = join(prebuilds, tuple.name);
  const winner = readdirSync(folder)
    .map(nodeGypBuild.parseTags)
    .filter(nodeGypBuild.matchTags("node", process.versions.modules))
    .sort(nodeGypBuild.compareTags("node"))[0];
  return winner ? join(folder, winner.file) : undefined;
}

/** Whether `path` loads in a fresh process (a prebuild for a newer glibc would not). */
function loads(path) {
  const result = spawnSync(process.execPath, ["-e", `require(${JSON.stringify(path)}).status()`], { encoding: "utf8" });
  return result.status === 0;
}

function lastLines(text, count) {
  return text.trimEnd().split("\n").slice(-count).map((line) => `    ${line}`).join("\n");
}

function main() {
  if (process.env.ENDOSYNTH_SKIP_NATIVE_BUILD === "1") return;
  for (const candidate of [matchingPrebuild(), builtAddon]) {
    if (candidate && existsSync(candidate) && loads(candidate)) return;
  }
  const result = buildNative({ builder: "node-gyp" }, "pipe");
  if (result.ok && loads(builtAddon)) {
    console.log(`endosynth: built the native addon from source (${describeBuiltAddon()})`);
    return;
  }
  const why = result.ok ? "the built addon does not load" : `${result.command} failed${result.status === null ? "" : ` with exit code ${result.status}`}`;
  console.warn(
    `endosynth: WARNING: no prebuilt native addon fits this platform and building it from source failed (${why}); ` +
      `TensorRT is unavailable and the ONNX Runtime CPU backend will be used. Last lines of the build:\n${lastLines(result.output, 15)}`,
  );
}

main();
