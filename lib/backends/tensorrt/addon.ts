/**
 * The native addon (`native/`, C++ over Node-API): how it is found and loaded, and the TypeScript
 * description of what it exports. Loading never throws: {@link loadNativeAddon} tries each place
 * a binary can be (this platform's binary package, then a source build in `build/Release/`) and,
 * when none loads, explains what went wrong with each, so `tensorrtStatus()` can say why TensorRT
 * is unavailable.
 *
 * @example
 * ```ts
 * const state = loadNativeAddon();
 * if (!state.loaded) console.log(state.reason);
 * ```
 * @module
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { join, relative, resolve } from "node:path";
import { packageRoot } from "../../package_info.js";
import { platformPackage, type PlatformPackageState } from "../../platform/package.js";


/** Environment variable naming an addon binary to load before any other (for debugging builds). */
export const ADDON_PATH_VARIABLE = "ENDOSYNTH_NATIVE_ADDON";

/** What the binary was built with (`status().build`). */
export interface NativeBuildInfo {
  cuda: boolean;
  tensorrt: boolean;
  /** CUDA runtime version the binary links statically, e.g. `"13.0"`. */
  cudaRuntime: string | null;
  /** Version of the TensorRT headers it was compiled against, e.g. `"10.16.0"`. */
  tensorrtHeaders: string | null;
  tensorrtMajor: number | null;
  napiVersion: number;
  compiler: string;
}

/** A CUDA call that failed while probing the machine. */
export interface NativeCudaFailure {
  call: string;
  code: number;
  name: string;
  message: string;
}

/** One CUDA device as the runtime reports it. */
export interface NativeCudaDevice {
  index: number;
  name: string;
  /** `"major.minor"`, e.g. `"8.9"`. */
  computeCapability: string;
  memoryBytes: number;
}

/** What the addon finds on this machine (`status()`). */
export interface NativeStatus {
  build: NativeBuildInfo;
  cuda: {
    runtimeVersion: string | null;
    /** Highest CUDA version the installed driver supports, or null without a driver. */
    driverVersion: string | null;
    devices: NativeCudaDevice[];
    failure?: NativeCudaFailure;
  };
  tensorrt: {
    loaded: boolean;
    version: string | null;
    parserVersion: number | null;
    libraryPath: string | null;
    parserLibraryPath: string | null;
    /** Why the libraries could not be used, e.g. `"libnvinfer.so.10 could not be opened (...)"`. */
    failure?: string;
    soname: string | null;
  };
}

/** Where the time of one frame went (GPU parts timed with CUDA events). */
export interface NativeTimings {
  h2dMs: number;
  engineMs: number;
  d2hMs: number;
  /** Copies through pinned staging, when the caller's buffers were not pinned ones. */
  hostCopyMs: number;
  /** Whether the network ran as a CUDA graph. */
  graph: boolean;
}

/** Description of a loaded engine. */
export interface NativeEngineInfo {
  /** Frame height the engine was built for, pixels. */
  height: number;
  /** Frame width, pixels. */
  width: number;
  /** Frame channels, 3 or 4. */
  channels: number;
  /** Execution contexts, i.e. frames it can run at once. */
  slots: number;
  /** One line for logs: device, precision, shape. */
  description: string;
  /** Whether every slot replays a CUDA graph. */
  graphs: boolean;
  /** Whether its staging buffers are pinned host memory. */
  pinnedStaging: boolean;
  /** Whether it has been disposed. */
  disposed: boolean;
}

/** A loaded engine with a pool of execution slots. */
export interface NativeEngine {
  /** Runs a frame on an idle slot; `input` is H*W*C bytes, `output` H*W floats. */
  run(slot: number, input: Uint8Array, output: Float32Array): Promise<NativeTimings>;
  /** Lets a running frame finish, then frees every GPU resource; idempotent. */
  dispose(): Promise<void>;
  info(): NativeEngineInfo;
  readonly busySlots: number;
}

/** Host memory for one session, handed out as external ArrayBuffers. */
export interface NativeHostArena {
  /** A buffer of `byteLength` bytes, or null where external ArrayBuffers are forbidden. */
  allocate(byteLength: number): ArrayBuffer | null;
  /** Detaches every buffer handed out and frees its memory (after any frame still using it). */
  dispose(): void;
  readonly pinned: boolean;
  readonly liveBlocks: number;
}

/** Options of `buildEngine`. */
export interface NativeBuildOptions {
  onnxPath: string;
  precision: "fp16" | "fp32";
  height: number;
  width: number;
  channels: number;
  /** 0: TensorRT's default. */
  workspaceMiB: number;
  /** -1: TensorRT's default. */
  optimizationLevel: number;
  timingCache?: Uint8Array;
  device?: number;
}

/** A running engine build. */
export interface NativeBuildJob {
  promise: Promise<{ plan: Uint8Array; timingCache: Uint8Array }>;
  /** Stops the build at TensorRT's next progress step; the promise rejects with nativeKind "aborted". */
  cancel(): void;
}

/** One entry of the addon's bounded log (TensorRT's ILogger and the addon's own notes). */
export interface NativeLogEntry {
  seq: number;
  severity: "internal error" | "error" | "warning" | "info" | "verbose";
  source: string;
  message: string;
  /** Unix time in milliseconds. */
  time: number;
}

/** Everything the addon exports. */
export interface NativeAddon {
  status(): NativeStatus;
  buildEngine(options: NativeBuildOptions, onProgress?: (progress: { phase: string; fraction?: number; detail?: string }) => void): NativeBuildJob;
  loadEngine(plan: Uint8Array, options: { height: number; width: number; channels: number; slots: number; device?: number }): Promise<NativeEngine>;
  /** Pinned buffers, a stream and a CUDA graph round trip on device 0. */
  cudaSelfTest(bytes?: number): Promise<{ bytes: number; device: string; graphMs: number }>;
  logMessages(afterSeq?: number): { entries: NativeLogEntry[]; lastSeq: number; capacity: number };
  HostArena: new (options?: { pinned?: boolean; externalBuffers?: boolean }) => NativeHostArena;
  /** Hooks for the test suite: they throw or produce exactly what the real code paths do. */
  testing: {
    cudaFailure(code: number, call: string): never;
    tensorrtFailure(call: string, message: string, logMark: number): never;
    failure(kind: string, call: string, message: string): never;
    /** Writes into the log as TensorRT's logger does; returns the new entry's seq. */
    log(severity: 0 | 1 | 2 | 3 | 4, source: string, message: string): number;
    loadLoopbackEngine(options: { height: number; width: number; channels: number; slots: number; delayMs?: number }): Promise<NativeEngine>;
  };
}

/** One place a binary was looked for, and why it was not used. */
export interface AddonLoadAttempt {
  /** The binary (or, when no prebuilt binary matched, the folder searched). */
  path: string;
  /** Why it was not used, e.g. `"missing"` or the loader's message. */
  error: string;
}

/** The outcome of loading the addon. */
export type AddonState =
  | { loaded: true; addon: NativeAddon; path: string; attempts: readonly AddonLoadAttempt[] }
  | { loaded: false; reason: string; attempts: readonly AddonLoadAttempt[] };

const require = createRequire(import.meta.url);

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split("\n")[0]!.trim();
}

function isNativeAddon(value: unknown): value is NativeAddon {
  const candidate = value as Partial<NativeAddon> | null;
  return typeof candidate?.status === "function" && typeof candidate.loadEngine === "function" && typeof candidate.HostArena === "function";
}

/** The two places a binary can come from besides an explicit path. */
export interface AddonSources {
  /** This platform's binary package, as {@link platformPackage} finds it. */
  platform: PlatformPackageState;
  /** The package root, whose `build/Release/` holds a source build. */
  root: string;
}

/**
 * Loads the addon, uncached: `$ENDOSYNTH_NATIVE_ADDON` if set, then the binary of this platform's
 * package (`@endosynth/<os>-<cpu>`), then a source build in `build/Release/endosynth.node`. Never
 * throws; says why each place was not used.
 */
export function loadNativeAddonFrom(sources: AddonSources): AddonState {
  const attempts: AddonLoadAttempt[] = [];
  const candidates: { path: string; missing: string }[] = [];
  const explicit = process.env[ADDON_PATH_VARIABLE];
  if (explicit) candidates.push({ path: resolve(explicit), missing: `${ADDON_PATH_VARIABLE} names a file that does not exist` });
  const { platform } = sources;
  if (platform.found && platform.package.addon) candidates.push({ path: platform.package.addon, missing: "missing" });
  else if (platform.found) attempts.push({ path: platform.package.dir, error: `${platform.package.name} has no native addon (TensorRT runs on Linux x64 only)` });
  else attempts.push({ path: platform.name, error: platform.reason });
  candidates.push({
    path: join(sources.root, "build", "Release", "endosynth.node"),
    missing: "no source build (npm_config_build_from_source=true npm rebuild endosynth makes one; it needs a C++ compiler)",
  });

  for (const candidate of candidates) {
    if (!existsSync(candidate.path)) {
      attempts.push({ path: candidate.path, error: candidate.missing });
      continue;
    }
    try {
      const addon: unknown = require(candidate.path);
      if (!isNativeAddon(addon)) {
        attempts.push({ path: candidate.path, error: "loaded, but it is not the endosynth addon (missing exports)" });
        continue;
      }
      return { loaded: true, addon, path: candidate.path, attempts };
    } catch (error) {
      attempts.push({ path: candidate.path, error: firstLine(error) });
    }
  }
  const explained = attempts.map((attempt) => `${relative(sources.root, attempt.path) || attempt.path}: ${attempt.error}`).join("; ");
  return { loaded: false, reason: `the native addon could not be loaded (${explained})`, attempts };
}

let cached: AddonState | undefined;

/** The package's addon, loaded once per process (see {@link loadNativeAddonFrom}). Never throws. */
export function loadNativeAddon(): AddonState {
  cached ??= loadNativeAddonFrom({ platform: platformPackage(), root: packageRoot });
  return cached;
}
