#!/usr/bin/env node
// `npm run prebuild [-- --tensorrt <include dir>]`: builds the prebuilt binary the package ships,
// prebuilds/<platform>-<arch>/endosynth.<libc>.node, with prebuildify (node-gyp path:
// prebuildify has no cmake-js backend) as `--napi --strip --tag-libc`. One Node-API binary serves
// every Node version with Node-API 8. Node's headers come from the local install (no download).
//
// Publish prebuilds built WITH TensorRT headers: TensorRT is dlopen()ed at run time, so such a
// binary still loads everywhere and simply reports TensorRT as missing where it is.

import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { nativeBuildEnvironment, packageRoot, parseBuildArguments } from "./build_native.js";

const require = createRequire(import.meta.url);

function main() {
  let options;
  try {
    options = parseBuildArguments(process.argv.slice(2));
  } catch (error) {
    console.error(`prebuild: ${error.message}`);
    process.exit(2);
  }
  if (options.builder !== "node-gyp") {
    console.error("prebuild: prebuildify builds with node-gyp only; --cmake is not supported here");
    process.exit(2);
  }
  const env = nativeBuildEnvironment(options);
  const prebuildify = join(dirname(require.resolve("prebuildify/package.json")), "bin.js");
  const nodeGyp = join(dirname(require.resolve("node-gyp/package.json")), "bin", "node-gyp.js");
  // The target is the running Node: node-gyp then finds its headers in npm_config_nodedir.
  const args = [prebuildify, "--napi", "--strip", "--tag-libc", "--target", process.versions.node, "--node-gyp", nodeGyp];
  const result = spawnSync(process.execPath, args, { cwd: packageRoot, env, stdio: "inherit" });
  if (result.status !== 0) {
    console.error(`prebuild: prebuildify failed${result.status === null ? "" : ` with exit code ${result.status}`}`);
    process.exit(1);
  }
  console.log(`prebuild: wrote ${resolve(packageRoot, "prebuilds")}`);
}

main();
