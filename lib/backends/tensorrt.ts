/**
 * The TensorRT backend: runs a converted model's ONNX with a TensorRT engine on an NVIDIA GPU,
 * through the native addon.
 *
 * - {@link tensorrtStatus} says whether TensorRT can run here and, when not, why, in one sentence
 *   (`endosynth info` prints it; `backend: "auto"` falls back to ONNX Runtime on it).
 * - {@link openTensorRT} opens a {@link TensorRTSession}. Engines are built per input resolution
 *   (an endoscope feed has a fixed one) the first time a frame of that shape arrives, with
 *   progress, and cached on disk (see `engine_cache.ts`); later sessions load them in seconds.
 * - Each engine keeps `inflight` execution slots, so that many frames can be in flight at once.
 *   {@link TensorRTSession.createInput} / {@link TensorRTSession.createOutput} hand out pinned host
 *   buffers: decode a frame straight into the input and read depth straight out of `out`, and the
 *   only copies are the GPU's own DMA.
 *
 * @example A frame loop with zero host copies
 * ```ts
 * const session = await openTensorRT({ onnxPath, onnxHash, cacheDir, precision: "fp16",
 *   onProgress: (p) => console.log(p.phase, p.fraction) });
 * const frame = session.createInput(1080, 1920);   // pinned uint8 [1080, 1920, 3]
 * const depth = session.createOutput(1080, 1920);  // pinned float32 [1080, 1920]
 * for (;;) {
 *   decodeNextFrameInto(frame.data);               // your decoder writes into pinned memory
 *   await session.run(frame, { out: depth.data }); // depth.data now holds metres
 *   show(depth);
 * }
 * await session.dispose();
 * ```
 * @module
 */
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { debuglog } from "node:util";
import { AbortError, BackendUnavailableError, DisposedError, InputError } from "../errors.js";
import { assertIntegerInRange, assertOneOf, assertOptions, assertPlainObject, assertString, invalidParameter } from "../is.js";
import { expectArray, ndarray, type NdArray } from "../ndarray/ndarray.js";
import {
  loadNativeAddon,
  type AddonLoadAttempt,
  type AddonState,
  type NativeAddon,
  type NativeEngine,
  type NativeEngineInfo,
  type NativeHostArena,
  type NativeLogEntry,
  type NativeStatus,
  type NativeTimings,
} from "../native/addon.js";
import { isNativeError, mapNativeError } from "../native/errors.js";
import { mirrorNativeLog, nativeLogEntries } from "../native/log.js";
import type { Progress, ProgressCallback } from "../progress.js";
import type { BackendSession, RunOptions } from "./backend.js";
import {
  planPath,
  readPlanFile,
  readTimingCache,
  tensorrtCacheDir,
  timingCachePath,
  writePlanFile,
  writeTimingCache,
  type EngineKeyFields,
  type TimingCacheKeyFields,
} from "./engine_cache.js";

const debug = debuglog("endosynth");

/** One CUDA device. */
export interface TensorRTDevice {
  /** CUDA device ordinal (0 is the device TensorRT uses). */
  index: number;
  /** Product name as the driver reports it, e.g. `"NVIDIA GeForce RTX 4090"`. */
  name: string;
  /** `"major.minor"`, e.g. `"8.9"`. */
  computeCapability: string;
  /** Total device memory, in bytes. */
  memoryBytes: number;
}

/** Whether TensorRT can run here, and everything that decides it. */
export interface TensorRTStatus {
  /** True when the addon loaded, a CUDA device is present and the TensorRT libraries opened. */
  available: boolean;
  /**
   * One sentence: why TensorRT is unavailable, or what will run, e.g.
   * `"no NVIDIA driver: cudaGetDeviceCount failed with cudaErrorInsufficientDriver (35): ..."`.
   */
  reason: string;
  /** The native addon: whether it loaded, from where, and what it was built with. */
  addon: {
    /** True when a binary of the addon was found and loaded into this process. */
    loaded: boolean;
    /** The binary that was loaded. */
    path?: string;
    /** Every place a binary was looked for and why it was not used. */
    attempts: readonly AddonLoadAttempt[];
    /** The addon was compiled with CUDA (false when no CUDA toolkit was found at build time, or it did not load). */
    builtWithCuda: boolean;
    /** The addon was compiled against TensorRT headers (false when it was built without them, or did not load). */
    builtWithTensorRT: boolean;
    /** CUDA runtime version linked into the addon, e.g. `"13.0"` (the driver must support it). */
    cudaRuntime?: string;
    /** TensorRT headers the addon was compiled against, e.g. `"10.16.0"`. */
    tensorrtHeaders?: string;
  };
  /** The CUDA driver and devices, as the addon found them. */
  cuda: {
    /** Highest CUDA version the installed driver supports. */
    driverVersion?: string;
    /** Version of the CUDA runtime in use, e.g. `"13.0"` (absent when the addon has no CUDA). */
    runtimeVersion?: string;
    /** The CUDA devices found, by ordinal (empty when there is none or CUDA failed). */
    devices: TensorRTDevice[];
    /** The CUDA failure met while probing, e.g. `"cudaGetDeviceCount failed with ..."`. */
    error?: string;
  };
  /** The TensorRT libraries, opened at run time. */
  tensorrt: {
    /** Version of the TensorRT library that was opened, e.g. `"10.16.0"`. */
    version?: string;
    /** The file `libnvinfer` was loaded from. */
    libraryPath?: string;
    /** The file `libnvonnxparser` was loaded from. */
    parserLibraryPath?: string;
    /** Why the TensorRT libraries cannot be used. */
    error?: string;
  };
}

const CUDA_ERROR_INSUFFICIENT_DRIVER = 35;
const CUDA_ERROR_NO_DEVICE = 100;

/**
 * The availability verdict and its one-sentence reason, from what loading the addon found and
 * what the addon reports. Pure, so every branch is testable without the hardware.
 * @internal
 */
export function describeTensorRTAvailability(addon: { loaded: boolean; reason?: string }, native: NativeStatus | undefined): { available: boolean; reason: string } {
  if (!addon.loaded || native === undefined) return { available: false, reason: addon.reason ?? "the native addon could not be loaded" };
  const { build, cuda, tensorrt } = native;
  if (!build.cuda) {
    return { available: false, reason: "the native addon was built without CUDA (no CUDA toolkit at build time) — rebuild it with `npm run build:native -- --cuda <toolkit dir> --tensorrt <TensorRT include dir>`" };
  }
  if (cuda.failure) {
    const { failure } = cuda;
    if (failure.code === CUDA_ERROR_INSUFFICIENT_DRIVER && cuda.driverVersion) {
      return { available: false, reason: `the NVIDIA driver supports CUDA ${cuda.driverVersion} but the addon links the CUDA ${build.cudaRuntime} runtime: ${failure.message} — update the driver or rebuild the addon against an older CUDA toolkit` };
    }
    if (failure.code === CUDA_ERROR_INSUFFICIENT_DRIVER) return { available: false, reason: `no NVIDIA driver: ${failure.message}` };
    if (failure.code === CUDA_ERROR_NO_DEVICE) return { available: false, reason: `no CUDA device: ${failure.message}` };
    return { available: false, reason: `CUDA cannot be used: ${failure.message}` };
  }
  if (cuda.devices.length === 0) return { available: false, reason: "no CUDA device: the NVIDIA driver reports no GPU" };
  if (!build.tensorrt) {
    return { available: false, reason: "the native addon was built without TensorRT headers — rebuild it with `npm run build:native -- --tensorrt <TensorRT include dir>`" };
  }
  if (!tensorrt.loaded) {
    return { available: false, reason: `TensorRT is unavailable: ${tensorrt.failure ?? "its libraries could not be loaded"} — install TensorRT ${build.tensorrtMajor} and make it visible to the dynamic loader (LD_LIBRARY_PATH)` };
  }
  const device = cuda.devices[0]!;
  return { available: true, reason: `TensorRT ${tensorrt.version} on ${device.name} (compute capability ${device.computeCapability})` };
}

function tensorrtError(native: NativeStatus): string | undefined {
  if (!native.build.tensorrt) return "the native addon was built without TensorRT headers";
  return native.tensorrt.loaded ? undefined : native.tensorrt.failure;
}

/** {@link TensorRTStatus} from what loading the addon found. */
function statusFrom(state: AddonState): TensorRTStatus {
  const native = state.loaded ? state.addon.status() : undefined;
  if (state.loaded) mirrorNativeLog(state.addon);
  const verdict = describeTensorRTAvailability(state.loaded ? { loaded: true } : { loaded: false, reason: state.reason }, native);
  return {
    ...verdict,
    addon: {
      loaded: state.loaded,
      path: state.loaded ? state.path : undefined,
      attempts: state.attempts,
      builtWithCuda: native?.build.cuda ?? false,
      builtWithTensorRT: native?.build.tensorrt ?? false,
      cudaRuntime: native?.build.cudaRuntime ?? undefined,
      tensorrtHeaders: native?.build.tensorrtHeaders ?? undefined,
    },
    cuda: {
      driverVersion: native?.cuda.driverVersion ?? undefined,
      runtimeVersion: native?.cuda.runtimeVersion ?? undefined,
      devices: native?.cuda.devices.map((device) => ({ ...device })) ?? [],
      error: native?.cuda.failure?.message,
    },
    tensorrt: {
      version: native?.tensorrt.version ?? undefined,
      libraryPath: native?.tensorrt.libraryPath ?? undefined,
      parserLibraryPath: native?.tensorrt.parserLibraryPath ?? undefined,
      error: native ? tensorrtError(native) : "the native addon is not loaded",
    },
  };
}

/**
 * Whether TensorRT can run on this machine, and why not. Never throws; cheap enough to call
 * whenever needed (the TensorRT libraries are opened once per process).
 * @example
 * ```ts
 * const status = tensorrtStatus();
 * if (!status.available) console.log(`Using ONNX Runtime: ${status.reason}`);
 * ```
 */
export function tensorrtStatus(): TensorRTStatus {
  return statusFrom(loadNativeAddon());
}

/**
 * What TensorRT (and the addon) logged lately, oldest first: the last few hundred messages of
 * severity info and above, for debugging a failed build. Empty when the addon is not loaded.
 * `NODE_DEBUG=endosynth` shows the same messages as they happen.
 */
export function tensorrtLog(): NativeLogEntry[] {
  const state = loadNativeAddon();
  return state.loaded ? nativeLogEntries(state.addon) : [];
}

/** Options of {@link openTensorRT}. */
export interface TensorRTOptions {
  /** The converted model's ONNX file (external data files beside it are found by TensorRT). */
  onnxPath: string;
  /** Hash identifying the ONNX content (part of the engine cache key). */
  onnxHash: string;
  /** The package cache folder; engines go to `<cacheDir>/tensorrt/`. */
  cacheDir: string;
  /**
   * Must match the ONNX's types: networks are built strongly typed, so "fp16" needs the
   * converter's fp16 ONNX (`precision: "fp16"`) and "fp32" its fp32 ONNX.
   */
  precision: "fp16" | "fp32";
  /** Builder workspace limit in MiB (default: TensorRT's, the GPU's memory). */
  workspaceMiB?: number;
  /** Builder optimisation level 0-5 (default: TensorRT's, 3): higher builds slower, may run faster. */
  optimizationLevel?: number;
  /** Frames that may be in flight at once per engine, 1-8 (default 2); each slot holds its own GPU buffers. */
  inflight?: number;
  /** Engine build/load progress (builds take minutes). */
  onProgress?: ProgressCallback;
  /** Cancels engine builds (a build in progress stops at TensorRT's next step). */
  signal?: AbortSignal;
}

const OPTION_NAMES = ["onnxPath", "onnxHash", "cacheDir", "precision", "workspaceMiB", "optimizationLevel", "inflight", "onProgress", "signal"] as const;

/** The default number of slots per engine. */
export const DEFAULT_INFLIGHT = 2;

interface CheckedOptions {
  onnxPath: string;
  onnxHash: string;
  cacheDir: string;
  precision: "fp16" | "fp32";
  workspaceMiB: number | null;
  optimizationLevel: number | null;
  inflight: number;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
}

/**
 * Checks {@link openTensorRT}'s options synchronously.
 * @throws {InputError} naming the option, what was expected and what was received.
 * @internal
 */
export function checkTensorRTOptions(options: unknown): CheckedOptions {
  assertPlainObject("options", options);
  assertOptions("options", options, OPTION_NAMES);
  const { onnxPath, onnxHash, cacheDir, precision, workspaceMiB, optimizationLevel, inflight, onProgress, signal } = options;
  assertString("options.onnxPath", onnxPath);
  assertString("options.onnxHash", onnxHash);
  assertString("options.cacheDir", cacheDir);
  assertOneOf("options.precision", precision, ["fp16", "fp32"] as const);
  if (workspaceMiB !== undefined) assertIntegerInRange("options.workspaceMiB", workspaceMiB, 1, 1 << 20);
  if (optimizationLevel !== undefined) assertIntegerInRange("options.optimizationLevel", optimizationLevel, 0, 5);
  if (inflight !== undefined) assertIntegerInRange("options.inflight", inflight, 1, 8);
  if (onProgress !== undefined && typeof onProgress !== "function") throw invalidParameter("options.onProgress", "a function", onProgress);
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidParameter("options.signal", "an AbortSignal", signal);
  if (!existsSync(onnxPath)) throw new InputError(`The ONNX model ${onnxPath} does not exist`, { file: onnxPath, key: "options.onnxPath" });
  return {
    onnxPath,
    onnxHash,
    cacheDir,
    precision,
    workspaceMiB: workspaceMiB ?? null,
    optimizationLevel: optimizationLevel ?? null,
    inflight: inflight ?? DEFAULT_INFLIGHT,
    ...(onProgress ? { onProgress: onProgress as ProgressCallback } : {}),
    ...(signal ? { signal } : {}),
  };
}

/** Frame geometry of one engine. */
export interface FrameGeometry {
  height: number;
  width: number;
  channels: 3 | 4;
}

/** What a session needs to obtain an engine for a frame shape (built, loaded from cache, or a test double). @internal */
export type EngineProvider = (geometry: FrameGeometry, context: { onProgress: (progress: Progress) => void; signal: AbortSignal }) => Promise<NativeEngine>;

/** Where the time of one frame went, in milliseconds. */
export interface TensorRTTimings extends NativeTimings {
  /** From the call to the resolved promise, as the caller sees it. */
  totalMs: number;
  /** `totalMs` minus the GPU copies, the engine and the host staging copies: scheduling and JS. */
  jsOverheadMs: number;
}

/** Description of one engine of a session: the native description less its internals. */
export type TensorRTEngineInfo = Omit<NativeEngineInfo, "pinnedStaging" | "disposed">;

/** Hands out the slots of one engine, first come first served. */
class SlotPool {
  private readonly free: number[];
  private readonly waiting: { resolve: (slot: number) => void; reject: (error: unknown) => void }[] = [];
  private closedWith: unknown;

  constructor(slots: number) {
    this.free = Array.from({ length: slots }, (_, slot) => slot);
  }

  acquire(): Promise<number> {
    if (this.closedWith !== undefined) return Promise.reject(this.closedWith);
    const slot = this.free.shift();
    if (slot !== undefined) return Promise.resolve(slot);
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  release(slot: number): void {
    const next = this.waiting.shift();
    if (next) next.resolve(slot);
    else this.free.push(slot);
  }

  /** Rejects every waiter and every later acquire with `error`. */
  close(error: unknown): void {
    this.closedWith = error;
    for (const waiter of this.waiting.splice(0)) waiter.reject(error);
  }
}

interface EngineEntry {
  readonly ready: Promise<{ native: NativeEngine; pool: SlotPool }>;
}

const SESSION_NAME = "The TensorRT session";

/**
 * A model opened on TensorRT. Engines are made per frame shape on first use (or ahead of time
 * with {@link TensorRTSession.prepare}); `run` may be called again before earlier calls resolve,
 * up to `inflight` frames run at once per engine and the rest wait their turn.
 */
export class TensorRTSession implements BackendSession {
  /** Always `"tensorrt"`. */
  readonly backend = "tensorrt" as const;
  /** Frames in flight at once per engine. */
  readonly inflight: number;
  private readonly engines = new Map<string, EngineEntry>();
  private readonly running = new Set<Promise<unknown>>();
  private readonly stop = new AbortController();
  private readonly signal: AbortSignal;
  private readonly onProgress: ProgressCallback | undefined;
  private disposal?: Promise<void>;

  /** @internal Use {@link openTensorRT}. */
  constructor(
    private readonly provider: EngineProvider,
    private readonly arena: NativeHostArena,
    options: { inflight: number; onProgress?: ProgressCallback; signal?: AbortSignal },
  ) {
    this.inflight = options.inflight;
    this.onProgress = options.onProgress;
    this.signal = options.signal ? AbortSignal.any([options.signal, this.stop.signal]) : this.stop.signal;
  }

  /** Whether {@link dispose} was called. */
  get disposed(): boolean {
    return this.disposal !== undefined;
  }

  /** Builds or loads the engine for frames of this shape now, instead of on the first `run`. */
  async prepare(height: number, width: number, channels: 3 | 4 = 3): Promise<TensorRTEngineInfo> {
    this.throwIfDisposed();
    const geometry = checkGeometry(height, width, channels);
    const { native } = await this.engineFor(geometry);
    return engineInfo(native);
  }

  /** Descriptions of the engines ready so far. */
  async engineInfos(): Promise<TensorRTEngineInfo[]> {
    const settled = await Promise.allSettled([...this.engines.values()].map((entry) => entry.ready));
    return settled.flatMap((result) => (result.status === "fulfilled" ? [engineInfo(result.value.native)] : []));
  }

  /**
   * Runs one uint8 [H, W, 3|4] frame; resolves to float32 [H, W] metres, written into
   * `options.out` when given (the same array is returned). Do not modify `frame` or `out` until
   * the promise settles: the GPU reads and writes them by DMA when they are pinned buffers.
   */
  async run(frame: NdArray<"uint8">, options?: RunOptions): Promise<NdArray<"float32">> {
    return (await this.runTimed(frame, options)).depth;
  }

  /** {@link run}, also reporting where the time went (for benchmarks). */
  async runTimed(frame: NdArray<"uint8">, options?: RunOptions): Promise<{ depth: NdArray<"float32">; timings: TensorRTTimings }> {
    const started = performance.now();
    this.throwIfDisposed();
    const checked = expectArray(frame, "frame", "uint8", [-1, -1, -1]);
    const [height, width, channels] = checked.shape as [number, number, number];
    const geometry = checkGeometry(height, width, channels, "frame.shape");
    const runOptions: unknown = options;
    assertOptions("options", runOptions, ["out"]);
    const out = options?.out ?? new Float32Array(height * width);
    if (!(out instanceof Float32Array) || out.length !== height * width) {
      throw invalidParameter("options.out", `a Float32Array of ${height * width} elements (${height} x ${width})`, out);
    }

    const { native, pool } = await this.engineFor(geometry);
    this.throwIfDisposed();
    const slot = await pool.acquire();
    let task: Promise<NativeTimings>;
    try {
      // dispose() may have begun while this frame waited for its slot; it only waits for frames
      // already started, and goes on to dispose the engine and detach the pinned buffers.
      this.throwIfDisposed();
      task = native.run(slot, checked.data, out);
    } catch (error) {
      pool.release(slot);
      throw mapNativeError(error, SESSION_NAME);
    }
    this.running.add(task);
    try {
      const timings = await task;
      const totalMs = performance.now() - started;
      const measured = timings.h2dMs + timings.engineMs + timings.d2hMs + timings.hostCopyMs;
      return { depth: ndarray(out, [height, width]), timings: { ...timings, totalMs, jsOverheadMs: Math.max(0, totalMs - measured) } };
    } catch (error) {
      throw mapNativeError(error, SESSION_NAME);
    } finally {
      this.running.delete(task);
      pool.release(slot);
    }
  }

  /**
   * A uint8 [height, width, channels] frame buffer in pinned host memory (ordinary memory where
   * external buffers are forbidden, e.g. Electron's sandbox), valid until the session is disposed.
   */
  createInput(height: number, width: number, channels: 3 | 4 = 3): NdArray<"uint8"> {
    this.throwIfDisposed();
    const geometry = checkGeometry(height, width, channels);
    const length = geometry.height * geometry.width * geometry.channels;
    return ndarray(new Uint8Array(this.allocate(length) ?? new ArrayBuffer(length)), [height, width, channels]);
  }

  /** A float32 [height, width] depth buffer for `run`'s `out`, pinned like {@link createInput}'s. */
  createOutput(height: number, width: number): NdArray<"float32"> {
    this.throwIfDisposed();
    checkGeometry(height, width, 3);
    const length = height * width;
    return ndarray(new Float32Array(this.allocate(length * 4) ?? new ArrayBuffer(length * 4)), [height, width]);
  }

  /**
   * Cancels engine builds, lets frames already running finish (frames still waiting for a slot
   * reject with DisposedError), then frees every engine's GPU memory and the pinned buffers
   * (whose arrays become empty). Idempotent.
   */
  dispose(): Promise<void> {
    this.disposal ??= this.disposeNow();
    return this.disposal;
  }

  private async disposeNow(): Promise<void> {
    const disposed = new DisposedError(SESSION_NAME);
    this.stop.abort(disposed);
    const entries = [...this.engines.values()];
    const engines = await Promise.allSettled(entries.map((entry) => entry.ready));
    for (const engine of engines) if (engine.status === "fulfilled") engine.value.pool.close(disposed);
    await Promise.allSettled([...this.running]);
    for (const engine of engines) if (engine.status === "fulfilled") await engine.value.native.dispose();
    this.engines.clear();
    this.arena.dispose();
  }

  private allocate(bytes: number): ArrayBuffer | null {
    try {
      return this.arena.allocate(bytes);
    } catch (error) {
      throw mapNativeError(error, SESSION_NAME);
    }
  }

  private throwIfDisposed(): void {
    if (this.disposal) throw new DisposedError(SESSION_NAME);
  }

  private engineFor(geometry: FrameGeometry): Promise<{ native: NativeEngine; pool: SlotPool }> {
    const key = `${geometry.height}x${geometry.width}x${geometry.channels}`;
    let entry = this.engines.get(key);
    if (!entry) {
      const ready = this.provider(geometry, { onProgress: (progress) => this.report(progress), signal: this.signal }).then(
        (native) => ({ native, pool: new SlotPool(Math.min(this.inflight, native.info().slots)) }),
        (error: unknown) => {
          // A cancelled build may be retried by a later run; any other failure stays, so that a
          // feed loop does not rebuild a broken model on every frame.
          if (error instanceof AbortError || this.disposed) this.engines.delete(key);
          throw this.disposed ? new DisposedError(SESSION_NAME) : error;
        },
      );
      entry = { ready };
      this.engines.set(key, entry);
    }
    return entry.ready;
  }

  private report(progress: Progress): void {
    try {
      this.onProgress?.(progress);
    } catch (error) {
      debug("onProgress threw (ignored): %s", error instanceof Error ? error.message : String(error));
    }
  }
}

function engineInfo(native: NativeEngine): TensorRTEngineInfo {
  const { height, width, channels, slots, description, graphs } = native.info();
  return { height, width, channels, slots, description, graphs };
}

function checkGeometry(height: unknown, width: unknown, channels: unknown, name = "shape"): FrameGeometry {
  assertIntegerInRange(name === "shape" ? "height" : `${name}[0]`, height, 1, 1 << 15);
  assertIntegerInRange(name === "shape" ? "width" : `${name}[1]`, width, 1, 1 << 15);
  if (channels !== 3 && channels !== 4) throw invalidParameter(name === "shape" ? "channels" : `${name}[2]`, "3 or 4 channels", channels);
  return { height, width, channels };
}

/** The engine provider of a real session: plan cache first, else build (and cache), then load. */
function cachedEngineProvider(addon: NativeAddon, options: CheckedOptions, identity: TimingCacheKeyFields): EngineProvider {
  return async (geometry, { onProgress, signal }) => {
    const fields: EngineKeyFields = {
      onnxHash: options.onnxHash,
      ...identity,
      precision: options.precision,
      inputShape: [geometry.height, geometry.width, geometry.channels],
      workspaceMiB: options.workspaceMiB,
      optimizationLevel: options.optimizationLevel,
    };
    const load = async (plan: Uint8Array): Promise<NativeEngine> => {
      try {
        return await addon.loadEngine(plan, { ...geometry, slots: options.inflight });
      } finally {
        mirrorNativeLog(addon);
      }
    };
    const path = planPath(options.cacheDir, fields);
    const cached = await readPlanFile(path, fields);
    if (cached.status === "hit") {
      onProgress({ phase: "loading TensorRT engine", detail: path });
      try {
        return await load(cached.payload);
      } catch (error) {
        if (!isNativeError(error) || error.nativeKind !== "plan-rejected") throw mapNativeError(error);
        debug("TensorRT rejected the cached plan %s (%s); rebuilding it", path, error.message);
      }
    } else if (cached.status === "rejected") {
      debug("not using %s: %s", path, cached.reason);
    }

    if (signal.aborted) throw signal.reason instanceof DisposedError ? signal.reason : new AbortError("The TensorRT engine build was aborted");
    const timingPath = timingCachePath(options.cacheDir, identity);
    const timing = await readTimingCache(timingPath, identity);
    if (timing.status === "rejected") debug("starting a fresh timing cache: %s", timing.reason);
    onProgress({ phase: "building TensorRT engine", fraction: 0, detail: `${options.onnxPath} for ${geometry.height}x${geometry.width}x${geometry.channels} frames` });
    const job = addon.buildEngine(
      {
        onnxPath: options.onnxPath,
        precision: options.precision,
        ...geometry,
        workspaceMiB: options.workspaceMiB ?? 0,
        optimizationLevel: options.optimizationLevel ?? -1,
        ...(timing.status === "hit" ? { timingCache: timing.payload } : {}),
      },
      (progress) => {
        mirrorNativeLog(addon);
        onProgress({ phase: progress.phase, ...(progress.fraction !== undefined ? { fraction: progress.fraction } : {}), ...(progress.detail ? { detail: progress.detail } : {}) });
      },
    );
    const cancel = () => job.cancel();
    signal.addEventListener("abort", cancel, { once: true });
    // An abort while the timing cache was read came before the listener: the build must stop too,
    // or dispose() would wait for it to finish.
    if (signal.aborted) cancel();
    let built: { plan: Uint8Array; timingCache: Uint8Array };
    try {
      built = await job.promise;
    } catch (error) {
      throw mapNativeError(error);
    } finally {
      signal.removeEventListener("abort", cancel);
      mirrorNativeLog(addon);
    }
    onProgress({ phase: "saving TensorRT engine", fraction: 1, detail: path });
    try {
      await writePlanFile(path, fields, built.plan);
      if (built.timingCache.byteLength > 0) await writeTimingCache(timingPath, identity, built.timingCache);
    } catch (error) {
      // The engine is built: a cache that cannot be written (disk full, read-only) costs the next
      // session a rebuild, not this one the engine it waited minutes for.
      const reason = error instanceof Error ? error.message : String(error);
      debug("could not cache the TensorRT engine at %s: %s", path, reason);
      onProgress({ phase: "saving TensorRT engine", fraction: 1, detail: `not cached: ${reason}` });
    }
    try {
      return await load(built.plan);
    } catch (error) {
      throw mapNativeError(error);
    }
  };
}

async function openChecked(options: CheckedOptions): Promise<TensorRTSession> {
  if (options.signal?.aborted) throw new AbortError("Opening TensorRT was aborted");
  const state = loadNativeAddon();
  const status = statusFrom(state);
  if (!state.loaded || !status.available) throw new BackendUnavailableError(status.reason);
  const device = status.cuda.devices[0]!;
  const identity: TimingCacheKeyFields = { tensorrtVersion: status.tensorrt.version!, gpuName: device.name, computeCapability: device.computeCapability };
  await mkdir(tensorrtCacheDir(options.cacheDir), { recursive: true });
  const arena = new state.addon.HostArena({ pinned: true });
  return new TensorRTSession(cachedEngineProvider(state.addon, options, identity), arena, options);
}

/**
 * Opens a model on TensorRT. Options are checked synchronously (an {@link InputError} is thrown
 * at once); the promise rejects with {@link BackendUnavailableError} carrying
 * {@link TensorRTStatus.reason} when TensorRT cannot run here.
 */
export function openTensorRT(options: TensorRTOptions): Promise<TensorRTSession> {
  return openChecked(checkTensorRTOptions(options));
}
