#!/usr/bin/env node
// `npm publish` runs this first (prepublishOnly): it refuses to publish prebuilt binaries that
// could never use TensorRT. The addon opens TensorRT at run time, so a prebuild made without its
// headers still loads everywhere, and then tells every GPU user to rebuild from source; nothing
// else would notice before users did. Each prebuild must load and report CUDA and TensorRT support.
//
//   node scripts/check_prebuilds.js [prebuilds folder]    (default: the package's prebuilds/)
import { existsSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { packageRoot } from "./build_native.js";

const require = createRequire(import.meta.url);

/** Every `.node` file under `folder`/<platform>-<arch>/. */
export function prebuildFiles(folder) {
  if (!existsSync(folder)) return [];
  return readdirSync(folder, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .flatMap((platform) => readdirSync(join(folder, platform.name)).filter((name) => name.endsWith(".node")).map((name) => join(folder, platform.name, name)));
}

/** Why the addon binary at `path` must not be published, or undefined when it may be. */
export function prebuildProblem(path) {
  let build;
  try {
    build = require(path).status().build;
  } catch (error) {
    return `${path} does not load here: ${error.message}`;
  }
  if (!build.cuda) return `${path} was built without CUDA (rebuild with the CUDA toolkit present: npm run prebuild -- --tensorrt <include dir>)`;
  if (!build.tensorrt) return `${path} was built without TensorRT headers, so it could never use TensorRT (npm run prebuild -- --tensorrt <include dir>)`;
  return undefined;
}

function main() {
  const folder = resolve(process.argv[2] ?? join(packageRoot, "prebuilds"));
  const files = prebuildFiles(folder);
  const problems = files.length === 0 ? [`no prebuilt binaries in ${folder}: run npm run prebuild -- --tensorrt <include dir> first`] : files.map(prebuildProblem).filter(Boolean);
  for (const problem of problems) console.error(`check_prebuilds: ${problem}`);
  if (problems.length > 0) process.exit(1);
  for (const file of files) console.log(`check_prebuilds: ok - ${file}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main();
