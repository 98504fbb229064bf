#!/usr/bin/env node
// `npm run pack:all [-- --all-platforms]`: writes into ./pack/ every tarball a user of this
// platform installs: the main package and its platform package `@endosynth/<os>-<cpu>`; with
// --all-platforms, the platform packages of every platform endosynth publishes.
//
// A platform package holds, for one platform only:
//   - the native addon (TensorRT), where there is one: native/prebuilt/<platform>/endosynth.node,
//     committed, built by `npm run prebuild` against TensorRT headers that CI does not have;
//   - ONNX Runtime's own Node binding and CPU library for that platform, taken from the
//     onnxruntime-node package (a devDependency here; MIT), which otherwise ships every platform
//     (288 MB) and downloads CUDA libraries when installed; it is never in a user's tree.
// No package runs an install script. Run from a built checkout (`npm ci` did that).
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { packageRoot } from "./build_native.js";

const require = createRequire(import.meta.url);
const npm = process.platform === "win32" ? "npm.cmd" : "npm";
const packDir = join(packageRoot, "pack");
const manifest = JSON.parse(readFileSync(join(packageRoot, "package.json"), "utf8"));

/**
 * The main package's manifest as published: the repository's, plus one optional dependency per
 * platform package at the same version. The repository's own package.json cannot list them: they
 * exist only once published, and `npm ci` refuses a lock file without them.
 */
export function publishedManifest(repositoryManifest, platforms) {
  const optionalDependencies = Object.fromEntries(platforms.map((platform) => [`@endosynth/${platform}`, repositoryManifest.version]));
  return { ...repositoryManifest, optionalDependencies: { ...repositoryManifest.optionalDependencies, ...optionalDependencies } };
}

/** The platforms that have a binary package, from the compiled library (one list, in lib/platform/package.ts). */
async function publishedPlatforms() {
  if (!existsSync(join(packageRoot, "dist", "index.js"))) execFileSync(npm, ["run", "compile"], { cwd: packageRoot, stdio: "inherit" });
  const { PREBUILT_PLATFORMS } = await import(pathToFileURL(join(packageRoot, "dist", "platform", "package.js")).href);
  return [...PREBUILT_PLATFORMS];
}

/** npm's os, cpu and libc fields of a platform package (the Linux binaries need glibc). */
function platformFields(platform) {
  const [os, cpu] = platform.split("-");
  return { os: [os], cpu: [cpu], ...(os === "linux" ? { libc: ["glibc"] } : {}) };
}

function currentPlatform() {
  return `${process.platform}-${process.arch}`;
}

function ortPackage() {
  const dir = dirname(require.resolve("onnxruntime-node/package.json"));
  return { dir, manifest: JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) };
}

function treeBytes(path) {
  const stats = statSync(path);
  if (!stats.isDirectory()) return stats.size;
  return readdirSync(path).reduce((sum, name) => sum + treeBytes(join(path, name)), 0);
}

/**
 * The files of `folder` less byte-identical copies, keeping the shortest name of each: npm's
 * tarballs hold no symbolic links, so onnxruntime-node ships macOS's `libonnxruntime.1.dylib` and
 * `libonnxruntime.1.30.0.dylib` as two identical 43 MB files, and its binding loads the first.
 */
function withoutDuplicates(folder) {
  const byContent = new Map();
  for (const file of readdirSync(folder).sort((a, b) => a.length - b.length || a.localeCompare(b))) {
    const digest = createHash("sha256").update(readFileSync(join(folder, file))).digest("hex");
    if (!byContent.has(digest)) byContent.set(digest, file);
  }
  return [...byContent.values()];
}

/** ONNX Runtime's JavaScript (no maps or declarations) and its binaries for `platform` only. */
function stageOnnxRuntime(platform, target) {
  const ort = ortPackage();
  const [os, cpu] = platform.split("-");
  const binaries = join(ort.dir, "bin", "napi-v6", os, cpu);
  if (!existsSync(binaries)) throw new Error(`onnxruntime-node ${ort.manifest.version} has no binaries for ${platform}`);
  mkdirSync(join(target, "dist"), { recursive: true });
  for (const file of readdirSync(join(ort.dir, "dist")).filter((name) => name.endsWith(".js"))) {
    // The source-map comments point at maps this copy does not ship.
    const code = readFileSync(join(ort.dir, "dist", file), "utf8").replace(/\n\/\/# sourceMappingURL=.*$/m, "");
    writeFileSync(join(target, "dist", file), code);
  }
  const into = join(target, "bin", "napi-v6", os, cpu);
  mkdirSync(into, { recursive: true });
  for (const file of withoutDuplicates(binaries)) cpSync(join(binaries, file), join(into, file));
  writeFileSync(
    join(target, "package.json"),
    `${JSON.stringify({ name: "onnxruntime-node", version: ort.manifest.version, license: "MIT", main: "dist/index.js", private: true }, null, 2)}\n`,
  );
  return ort.manifest;
}

/** The folder of one platform package, ready for `npm pack`. */
function stagePlatform(platform) {
  const name = `@endosynth/${platform}`;
  const stage = join(packDir, "stage", platform);
  rmSync(stage, { recursive: true, force: true });
  mkdirSync(stage, { recursive: true });
  const ort = stageOnnxRuntime(platform, join(stage, "onnxruntime"));
  const prebuilt = join(packageRoot, "native", "prebuilt", platform, "endosynth.node");
  const hasAddon = existsSync(prebuilt);
  if (hasAddon) cpSync(prebuilt, join(stage, "endosynth.node"));
  const template = join(packageRoot, "native", "platforms");
  for (const file of ["README.md", "THIRD_PARTY_NOTICES.md"]) {
    const text = readFileSync(join(template, file), "utf8").replaceAll("{{platform}}", platform).replaceAll("{{name}}", name).replaceAll("{{onnxruntime}}", ort.version);
    writeFileSync(join(stage, file), text);
  }
  cpSync(join(packageRoot, "LICENSE"), join(stage, "LICENSE"));
  const platformManifest = {
    name,
    version: manifest.version,
    description: `endosynth's binaries for ${platform}: ${hasAddon ? "the native addon (TensorRT) and " : ""}ONNX Runtime ${ort.version} (CPU)`,
    license: "MIT",
    repository: manifest.repository,
    homepage: manifest.homepage,
    ...platformFields(platform),
    files: [...(hasAddon ? ["endosynth.node"] : []), "onnxruntime", "README.md", "THIRD_PARTY_NOTICES.md", "LICENSE"],
    dependencies: { "onnxruntime-common": ort.dependencies["onnxruntime-common"] },
    endosynth: { ...(hasAddon ? { addon: "endosynth.node" } : {}), onnxruntime: "onnxruntime/dist/index.js" },
  };
  writeFileSync(join(stage, "package.json"), `${JSON.stringify(platformManifest, null, 2)}\n`);
  return { stage, name, hasAddon };
}

/** The folder of the main package, ready for `npm pack`: the files npm would pack, and the published manifest. */
function stageMain(platforms) {
  const stage = join(packDir, "stage", "endosynth");
  const [listing] = JSON.parse(execFileSync(npm, ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: packageRoot, encoding: "utf8" }));
  for (const { path } of listing.files) {
    if (path === "package.json") continue;
    mkdirSync(dirname(join(stage, path)), { recursive: true });
    cpSync(join(packageRoot, path), join(stage, path));
  }
  writeFileSync(join(stage, "package.json"), `${JSON.stringify(publishedManifest(manifest, platforms), null, 2)}\n`);
  return stage;
}

function npmPack(folder) {
  const output = execFileSync(npm, ["pack", "--json", "--ignore-scripts", "--pack-destination", packDir], { cwd: folder, encoding: "utf8" });
  const [packed] = JSON.parse(output);
  return { file: join(packDir, packed.filename), size: packed.size, unpackedSize: packed.unpackedSize };
}

function megabytes(bytes) {
  return `${(bytes / 2 ** 20).toFixed(1)} MB`;
}

async function main() {
  const published = await publishedPlatforms();
  const all = process.argv.includes("--all-platforms");
  const platforms = all ? published : [currentPlatform()];
  const unknown = platforms.filter((platform) => !published.includes(platform));
  if (unknown.length > 0) {
    console.error(`pack: endosynth publishes no binaries for ${unknown.join(", ")} (only ${published.join(", ")})`);
    process.exit(1);
  }
  rmSync(packDir, { recursive: true, force: true });
  mkdirSync(packDir, { recursive: true });
  const main = npmPack(stageMain(published));
  console.log(`pack: ${main.file} (${megabytes(main.size)}, ${megabytes(main.unpackedSize)} unpacked)`);
  for (const platform of platforms) {
    const { stage, name, hasAddon } = stagePlatform(platform);
    const packed = npmPack(stage);
    console.log(`pack: ${packed.file} (${megabytes(packed.size)}, ${megabytes(treeBytes(stage))} unpacked; ${name}${hasAddon ? " with the TensorRT addon" : ", ONNX Runtime only"})`);
  }
  rmSync(join(packDir, "stage"), { recursive: true, force: true });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
