#!/usr/bin/env node
// Builds the native addon from source into build/Release/endosynth.node.
//
//   npm run build:native [-- --tensorrt <include dir>] [--cuda <toolkit dir>] [--without-cuda]
//                        [--cmake] [--strict] [--debug] [--if-missing]
//
// node-gyp (binding.gyp) by default, cmake-js (CMakeLists.txt) with --cmake; both build the same
// sources. Node's headers are taken from the running Node's own installation when it has them, so
// nothing is downloaded. --strict turns warnings into errors (the TensorRT path must build with
// none). --if-missing builds only when no working build is there, and only warns on failure (the
// development checkout's prepare step). Also used by scripts/install.js (the opt-in source build of
// an installed package) and scripts/prebuild.js; plain JavaScript so it runs before anything is
// compiled.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const builtAddon = join(packageRoot, "build", "Release", "endosynth.node");
const require = createRequire(import.meta.url);

/** The running Node's install prefix when it ships its headers there (official tarballs, distros). */
export function localNodeDir() {
  const prefix = resolve(dirname(process.execPath), "..");
  return existsSync(join(prefix, "include", "node", "common.gypi")) ? prefix : undefined;
}

/** Parses build_native arguments; throws on anything unknown. */
export function parseBuildArguments(argv) {
  const options = { builder: "node-gyp", tensorrt: undefined, cuda: undefined, withoutCuda: false, strict: false, debug: false, ifMissing: false };
  for (let i = 0; i < argv.length; i++) {
    const argument = argv[i];
    const value = () => {
      const next = argv[++i];
      if (next === undefined || next.startsWith("--")) throw new Error(`${argument} needs a directory`);
      return resolve(next);
    };
    if (argument === "--tensorrt") options.tensorrt = value();
    else if (argument === "--cuda") options.cuda = value();
    else if (argument === "--without-cuda") options.withoutCuda = true;
    else if (argument === "--cmake") options.builder = "cmake-js";
    else if (argument === "--strict") options.strict = true;
    else if (argument === "--debug") options.debug = true;
    else if (argument === "--if-missing") options.ifMissing = true;
    else throw new Error(`unknown argument ${argument}; expected --tensorrt <dir>, --cuda <dir>, --without-cuda, --cmake, --strict, --debug or --if-missing`);
  }
  return options;
}

function builderCommand(builder, debug) {
  if (builder === "cmake-js") {
    const cli = join(dirname(require.resolve("cmake-js/package.json")), "bin", "cmake-js");
    return [process.execPath, cli, "rebuild", ...(debug ? ["--debug"] : [])];
  }
  // npm runs lifecycle scripts with its own node-gyp in npm_config_node_gyp; a consumer of the
  // package has no devDependencies, so that is the one an install from the registry finds.
  let cli = process.env.npm_config_node_gyp;
  try {
    cli = require.resolve("node-gyp/bin/node-gyp.js");
  } catch {
    // not installed locally: keep npm's
  }
  if (!cli) throw new Error("node-gyp was not found (neither installed beside the package nor provided by npm)");
  return [process.execPath, cli, "rebuild", `--jobs=${Math.min(8, availableParallelism())}`, ...(debug ? ["--debug"] : [])];
}

/**
 * The environment the native build runs in: this Node's own headers (nothing is downloaded) and
 * the options as the variables binding.gyp and CMakeLists.txt read.
 * @returns {NodeJS.ProcessEnv}
 */
export function nativeBuildEnvironment(options) {
  const env = { ...process.env };
  const nodedir = localNodeDir();
  if (nodedir && !env.npm_config_nodedir) env.npm_config_nodedir = nodedir;
  if (options.tensorrt) env.TensorRT_INCLUDE_DIR = options.tensorrt;
  if (options.cuda) env.CUDAToolkit_ROOT = options.cuda;
  if (options.withoutCuda) env.ENDOSYNTH_WITHOUT_CUDA = "1";
  if (options.strict) env.ENDOSYNTH_WERROR = "1";
  return env;
}

/**
 * Runs the build. `stdio: "inherit"` streams the compiler's output; "pipe" captures it and returns
 * it in `output` (the install script shows its tail only on failure).
 * @returns {{ ok: boolean, status: number | null, output: string, command: string }}
 */
export function buildNative(options, stdio = "inherit") {
  const env = nativeBuildEnvironment(options);
  const [executable, ...args] = builderCommand(options.builder, options.debug);
  const result = spawnSync(executable, args, { cwd: packageRoot, env, stdio, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  const output = stdio === "pipe" ? `${result.stdout ?? ""}${result.stderr ?? ""}` : "";
  const error = result.error ? `${result.error.message}\n` : "";
  return { ok: result.status === 0, status: result.status, output: error + output, command: [options.builder, ...args.slice(1)].join(" ") };
}

/** What a built addon says about itself, read in a child process so a broken binary cannot crash this one. */
export function describeBuiltAddon(path = builtAddon) {
  const probe = `const s = require(${JSON.stringify(path)}).status().build;` +
    `console.log("CUDA " + (s.cudaRuntime ?? "no") + ", TensorRT headers " + (s.tensorrtHeaders ?? "no"))`;
  const result = spawnSync(process.execPath, ["-e", probe], { encoding: "utf8" });
  return result.status === 0 ? result.stdout.trim() : `could not be loaded: ${(result.stderr || "").trim().split("\n")[0]}`;
}

/** Whether the addon at `path` exists and loads in a fresh process. */
function loads(path) {
  return existsSync(path) && spawnSync(process.execPath, ["-e", `require(${JSON.stringify(path)}).status()`]).status === 0;
}

function main() {
  let options;
  try {
    options = parseBuildArguments(process.argv.slice(2));
  } catch (error) {
    console.error(`build:native: ${error.message}`);
    process.exit(2);
  }
  // A development checkout's `npm ci` (prepare) builds the addon once; without a compiler it warns
  // and goes on, since only TensorRT needs the addon.
  if (options.ifMissing && loads(builtAddon)) return;
  const result = buildNative(options, options.ifMissing ? "pipe" : "inherit");
  if (!result.ok && options.ifMissing) {
    console.warn(`build:native: WARNING: the native addon could not be built (${result.command}); TensorRT is unavailable in this checkout:\n${result.output.trimEnd().split("\n").slice(-10).join("\n")}`);
    return;
  }
  if (!result.ok) {
    console.error(`build:native: ${result.command} failed${result.status === null ? "" : ` with exit code ${result.status}`}`);
    process.exit(1);
  }
  console.log(`build:native: built ${builtAddon} (${describeBuiltAddon()})`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
