/**
 * The per-platform binary package: `@endosynth/<os>-<cpu>` holds, for one platform only, the
 * prebuilt native addon (where TensorRT exists) and the ONNX Runtime CPU runtime. npm installs the
 * one that matches (the published main package lists all of them as optionalDependencies, each with `os`,
 * `cpu` and `libc` fields, and none runs an install script), like sharp's `@img/sharp-<platform>`.
 * @module
 */
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { packageJson } from "../package_info.js";

/** The platforms that have a binary package, `<process.platform>-<process.arch>`. */
export const PREBUILT_PLATFORMS = ["linux-x64", "linux-arm64", "darwin-arm64", "win32-x64"] as const;

/** What an installed platform package provides. */
export interface PlatformPackage {
  /** Its npm name, e.g. `@endosynth/linux-x64`. */
  name: string;
  /** Its folder. */
  dir: string;
  version: string;
  /** The native addon binary, when this platform has one. */
  addon?: string;
  /** ONNX Runtime's Node binding for this platform (its JavaScript entry point). */
  onnxruntime?: string;
}

/** The outcome of looking for the platform package. */
export type PlatformPackageState = { found: true; package: PlatformPackage } | { found: false; name: string; reason: string };

/** This machine's platform, as the binary packages name it. */
export function currentPlatform(): string {
  return `${process.platform}-${process.arch}`;
}

/** The binary package's name for `platform`. */
export function platformPackageName(platform = currentPlatform()): string {
  return `@endosynth/${platform}`;
}

/** Whether this Linux's C library is musl (Alpine): the binaries need glibc. */
function isMusl(): boolean {
  if (process.platform !== "linux") return false;
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return !report?.header?.glibcVersionRuntime;
}

/**
 * Finds the platform package as `from` (a module URL or path) would resolve it, and checks it is
 * the same version as this package (binaries of another release may not match this JavaScript).
 * Never throws.
 */
export function findPlatformPackage(from: string | URL = import.meta.url, platform = currentPlatform()): PlatformPackageState {
  const name = platformPackageName(platform);
  if (!(PREBUILT_PLATFORMS as readonly string[]).includes(platform)) {
    return { found: false, name, reason: `endosynth publishes no binaries for ${platform} (only ${PREBUILT_PLATFORMS.join(", ")})` };
  }
  if (isMusl()) return { found: false, name, reason: `${name} needs glibc, and this Linux uses musl` };
  let manifestPath: string;
  try {
    manifestPath = createRequire(from).resolve(`${name}/package.json`);
  } catch {
    return { found: false, name, reason: `${name} is not installed (npm skips optional dependencies when installing with --omit=optional or --no-optional, or from a lockfile made on another platform)` };
  }
  const dir = dirname(manifestPath);
  const manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as { version: string; endosynth?: { addon?: string; onnxruntime?: string } };
  const expected = packageJson().version;
  if (manifest.version !== expected) {
    return { found: false, name, reason: `${name} is version ${manifest.version}, but endosynth is ${expected}: install the same version of both` };
  }
  const file = (relative: string | undefined): string | undefined => (relative && existsSync(join(dir, relative)) ? join(dir, relative) : undefined);
  const addon = file(manifest.endosynth?.addon);
  const onnxruntime = file(manifest.endosynth?.onnxruntime);
  return { found: true, package: { name, dir, version: manifest.version, ...(addon ? { addon } : {}), ...(onnxruntime ? { onnxruntime } : {}) } };
}

let cached: PlatformPackageState | undefined;

/** This platform's binary package, looked up once per process. */
export function platformPackage(): PlatformPackageState {
  cached ??= findPlatformPackage();
  return cached;
}

/** The two ways to run where no binary package applies, for error messages. */
export function waysOut(): string {
  return (
    `install endosynth on a platform with prebuilt binaries (${PREBUILT_PLATFORMS.join(", ")}), ` +
    "or build from source: `npm install onnxruntime-node` beside endosynth for the CPU runtime, and " +
    "`npm_config_build_from_source=true npm rebuild endosynth` for the TensorRT addon (needs a C++ compiler)"
  );
}
