#!/usr/bin/env node
// `npm run test:pack`: proves that the prebuilt binary ships in the package and loads where the
// package is installed, without compiling anything.
//
// 1. Makes the prebuild for this platform if there is none (`npm run prebuild`).
// 2. `npm pack`s the package and checks the tarball holds the prebuild and no local build.
// 3. Installs the tarball into an empty temporary project with `npm install --offline` (its
//    dependencies must be in the npm cache: run it where `npm ci` already ran), once as npm
//    installs dependencies by default and once with endosynth's install script allowed (npm >= 11
//    blocks dependency install scripts unless allowed), and checks that node-gyp-build picks the
//    prebuild, that it loads and answers status(), and that the install script built nothing.
//
// Not part of the CI test run: it needs the npm cache, and builds the prebuild when missing.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { packageRoot } from "./build_native.js";

const npm = process.platform === "win32" ? "npm.cmd" : "npm";

function run(command, args, cwd) {
  const result = spawnSync(command, args, { cwd, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(" ")} failed in ${cwd} (exit ${result.status}):\n${result.stdout}${result.stderr}`);
  }
  return { stdout: result.stdout, all: `${result.stdout}${result.stderr}` };
}

function check(condition, message) {
  if (!condition) throw new Error(message);
  console.log(`test:pack: ok - ${message}`);
}

/** Loads the installed package's addon the way the package does and reports what it found. */
const PROBE = `
const path = require("node:path");
const root = path.join(process.cwd(), "node_modules", "endosynth");
const file = require("node-gyp-build/node-gyp-build.js").path(root);
const addon = require(file);
const status = addon.status();
console.log(JSON.stringify({ file: path.relative(root, file), build: status.build, cudaFailure: status.cuda.failure?.name ?? null }));
`;

function installAndProbe(tarball, allowScripts) {
  const project = mkdtempSync(join(tmpdir(), "endosynth-pack-"));
  try {
    // npm >= 11 runs a dependency's install script only when the project allows it; older npm always does.
    const allow = allowScripts ? { allowScripts: { endosynth: true } } : {};
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "endosynth-pack-check", version: "1.0.0", private: true, ...allow }));
    // Only endosynth's own install script may run: onnxruntime-node's would download CUDA libraries.
    writeFileSync(join(project, ".npmrc"), "onnxruntime-node-install=skip\n");
    const args = ["install", "--offline", "--no-audit", "--no-fund", "--foreground-scripts", tarball];
    const output = run(npm, args, project).all;
    const installed = join(project, "node_modules", "endosynth");
    if (allowScripts) check(/endosynth@[^\n]*install\n> node scripts\/install\.js/.test(output), "the install script ran");
    check(!existsSync(join(installed, "build")), `${allowScripts ? "with its install script allowed" : "by default"}, installing compiled nothing (no build/ folder)`);
    check(!/building it from source failed/.test(output), "the install printed no build warning");
    const probe = JSON.parse(execFileSync(process.execPath, ["-e", PROBE], { cwd: project, encoding: "utf8" }).trim());
    check(probe.file.startsWith(join("prebuilds", `${process.platform}-${process.arch}`)), `node-gyp-build picked the prebuild ${probe.file}`);
    check(probe.build.napiVersion === 8, `the prebuild loaded and reports CUDA ${probe.build.cudaRuntime ?? "none"}, TensorRT headers ${probe.build.tensorrtHeaders ?? "none"}`);
  } finally {
    rmSync(project, { recursive: true, force: true });
  }
}

function main() {
  const prebuilds = join(packageRoot, "prebuilds", `${process.platform}-${process.arch}`);
  if (!existsSync(prebuilds)) {
    console.log("test:pack: no prebuild for this platform yet; running `npm run prebuild`");
    run(npm, ["run", "prebuild"], packageRoot);
  }
  const destination = mkdtempSync(join(tmpdir(), "endosynth-tarball-"));
  try {
    mkdirSync(destination, { recursive: true });
    const packed = JSON.parse(run(npm, ["pack", "--json", "--pack-destination", destination], packageRoot).stdout);
    const files = packed[0].files.map((file) => file.path);
    const tarball = join(destination, packed[0].filename);
    check(files.some((file) => file.startsWith(`prebuilds/${process.platform}-${process.arch}/`) && file.endsWith(".node")), `the tarball holds a prebuild (${files.filter((file) => file.startsWith("prebuilds/")).join(", ")})`);
    check(!files.some((file) => file.startsWith("build/") || file.startsWith("third_party/")), "the tarball holds no local build and no third-party headers");
    installAndProbe(tarball, false);
    installAndProbe(tarball, true);
  } finally {
    rmSync(destination, { recursive: true, force: true });
  }
  console.log("test:pack: the packed prebuild installs offline and loads");
}

try {
  main();
} catch (error) {
  console.error(`test:pack: FAILED: ${error.message}`);
  process.exit(1);
}
