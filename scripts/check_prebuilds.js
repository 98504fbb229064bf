#!/usr/bin/env node
// `npm publish` runs this first (prepublishOnly): it refuses to publish committed prebuilt addons
// that could never use TensorRT, or that were built from other sources than these. The addon opens
// TensorRT at run time, so a binary made without its headers still loads everywhere and then tells
// every GPU user to rebuild from source; nothing else would notice before users did.
//
//   node scripts/check_prebuilds.js [prebuilt folder]    (default: native/prebuilt/)
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { packageRoot } from "./build_native.js";
import { nativeSourcesHash } from "./native_sources.js";

const require = createRequire(import.meta.url);

/** Every `<platform>/endosynth.node` under `folder`. */
export function prebuildFiles(folder) {
  if (!existsSync(folder)) return [];
  return readdirSync(folder, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(join(folder, entry.name, "endosynth.node")))
    .map((entry) => join(folder, entry.name, "endosynth.node"));
}

/** Why the addon binary at `path` must not be published, or undefined when it may be. */
export function prebuildProblem(path, sourcesHash = nativeSourcesHash(packageRoot)) {
  let build;
  try {
    build = require(path).status().build;
  } catch (error) {
    return `${path} does not load here: ${error.message}`;
  }
  const rebuild = "npm run build:prebuilt -- --tensorrt <TensorRT include dir>";
  if (!build.cuda) return `${path} was built without CUDA (rebuild with the CUDA toolkit present: ${rebuild})`;
  if (!build.tensorrt) return `${path} was built without TensorRT headers, so it could never use TensorRT (${rebuild})`;
  const recorded = join(path, "..", "build.json");
  if (!existsSync(recorded)) return `${path} has no build.json beside it (${rebuild})`;
  if (JSON.parse(readFileSync(recorded, "utf8")).sourcesSha256 !== sourcesHash) return `${path} was built from other native sources than these (${rebuild})`;
  return undefined;
}

function main() {
  const folder = resolve(process.argv[2] ?? join(packageRoot, "native", "prebuilt"));
  const files = prebuildFiles(folder);
  const problems = files.length === 0 ? [`no prebuilt binaries in ${folder}: run npm run build:prebuilt -- --tensorrt <include dir> first`] : files.map((file) => prebuildProblem(file)).filter(Boolean);
  for (const problem of problems) console.error(`check_prebuilds: ${problem}`);
  if (problems.length > 0) process.exit(1);
  for (const file of files) console.log(`check_prebuilds: ok - ${file}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main();
