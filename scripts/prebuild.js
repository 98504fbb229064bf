#!/usr/bin/env node
// `npm run build:prebuilt -- --tensorrt <TensorRT include dir>`: builds the native addon that this
// platform's binary package ships, and puts it where `npm run pack:all` takes it from:
// native/prebuilt/<platform>/endosynth.node, with build.json beside it (what it was built with and
// the hash of the sources it was built from). Both are committed: CI has no TensorRT headers, so it
// cannot build them. One Node-API binary serves every Node version with Node-API 8. Strict: the
// TensorRT path must build with zero warnings. Node's headers come from the local install.
//
// TensorRT is opened at run time, so the binary loads everywhere and reports TensorRT as missing
// where it is; it is built against the oldest headers with NvOnnxParser.h (10.14), so that every
// TensorRT 10 from 10.14 on can run it.
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildNative, builtAddon, packageRoot, parseBuildArguments } from "./build_native.js";
import { nativeSourcesHash } from "./native_sources.js";

function main() {
  let options;
  try {
    options = parseBuildArguments(process.argv.slice(2));
  } catch (error) {
    console.error(`prebuild: ${error.message}`);
    process.exit(2);
  }
  if (!options.tensorrt) {
    console.error("prebuild: --tensorrt <TensorRT include dir> is required: a prebuilt addon without TensorRT could never use it");
    process.exit(2);
  }
  const result = buildNative({ ...options, strict: true });
  if (!result.ok) {
    console.error(`prebuild: ${result.command} failed${result.status === null ? "" : ` with exit code ${result.status}`}`);
    process.exit(1);
  }
  const platform = `${process.platform}-${process.arch}`;
  const folder = join(packageRoot, "native", "prebuilt", platform);
  mkdirSync(folder, { recursive: true });
  const target = join(folder, "endosynth.node");
  copyFileSync(builtAddon, target);
  execFileSync("strip", ["--strip-unneeded", target]);
  const probe = spawnSync(process.execPath, ["-p", `JSON.stringify(require(${JSON.stringify(target)}).status().build)`], { encoding: "utf8" });
  if (probe.status !== 0) {
    console.error(`prebuild: the built addon does not load: ${probe.stderr}`);
    process.exit(1);
  }
  const build = JSON.parse(probe.stdout);
  writeFileSync(join(folder, "build.json"), `${JSON.stringify({ platform, sourcesSha256: nativeSourcesHash(packageRoot), build }, null, 2)}\n`);
  console.log(`prebuild: wrote ${target} (${(statSync(target).size / 2 ** 20).toFixed(2)} MB; CUDA ${build.cudaRuntime}, TensorRT headers ${build.tensorrtHeaders})`);
}

main();
