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
import { mkdir } from "node:fs/promises";
import { debuglog } from "node:util";
import { AbortError, BackendUnavailableError, DisposedError, InputError } from "../../errors.js";
import { assertIntegerInRange, assertOptions, invalidParameter } from "../../is.js";
import { expectArray, ndarray, type NdArray } from "../../ndarray/ndarray.js";
import { loadNativeAddon, type NativeEngine, type NativeEngineInfo, type NativeHostArena, type NativeTimings } from "./addon.js";
import { mapNativeError } from "./native_errors.js";
import type { Progress, ProgressCallback } from "../../progress.js";
import type { BackendSession, RunOptions } from "../backend.js";
import { tensorrtCacheDir, type TimingCacheKeyFields } from "../../cache/engine_cache.js";


import { cachedEngineProvider, type EngineProvider, type FrameGeometry } from "./engine_provider.js";
import { checkTensorRTOptions, type CheckedOptions, type TensorRTOptions } from "./options.js";
import { SlotPool } from "./slot_pool.js";
import { statusFrom } from "./status.js";

const debug = debuglog("endosynth");

/** Where the time of one frame went, in milliseconds. */
export interface TensorRTTimings extends NativeTimings {
  /** From the call to the resolved promise, as the caller sees it. */
  totalMs: number;
  /** `totalMs` minus the GPU copies, the engine and the host staging copies: scheduling and JS. */
  jsOverheadMs: number;
}

/** Description of one engine of a session: the native description less its internals. */
export type TensorRTEngineInfo = Omit<NativeEngineInfo, "pinnedStaging" | "disposed">;


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
  readonly #engines = new Map<string, EngineEntry>();
  readonly #running = new Set<Promise<unknown>>();
  readonly #stop = new AbortController();
  readonly #signal: AbortSignal;
  readonly #onProgress: ProgressCallback | undefined;
  readonly #provider: EngineProvider;
  readonly #arena: NativeHostArena;
  #disposal?: Promise<void>;

  /** @internal Use {@link openTensorRT}. */
  constructor(provider: EngineProvider, arena: NativeHostArena, options: { inflight: number; onProgress?: ProgressCallback; signal?: AbortSignal }) {
    this.#provider = provider;
    this.#arena = arena;
    this.inflight = options.inflight;
    this.#onProgress = options.onProgress;
    this.#signal = options.signal ? AbortSignal.any([options.signal, this.#stop.signal]) : this.#stop.signal;
  }

  /** Whether {@link dispose} was called. */
  get disposed(): boolean {
    return this.#disposal !== undefined;
  }

  /** Builds or loads the engine for frames of this shape now, instead of on the first `run`. */
  async prepare(height: number, width: number, channels: 3 | 4 = 3): Promise<TensorRTEngineInfo> {
    this.#throwIfDisposed();
    const geometry = checkGeometry(height, width, channels);
    const { native } = await this.#engineFor(geometry);
    return engineInfo(native);
  }

  /** Descriptions of the engines ready so far. */
  async engineInfos(): Promise<TensorRTEngineInfo[]> {
    const settled = await Promise.allSettled([...this.#engines.values()].map((entry) => entry.ready));
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
    this.#throwIfDisposed();
    const checked = expectArray(frame, "frame", "uint8", [-1, -1, -1]);
    const [height, width, channels] = checked.shape as [number, number, number];
    const geometry = checkGeometry(height, width, channels, "frame.shape");
    const runOptions: unknown = options;
    assertOptions("options", runOptions, ["out"]);
    const out = options?.out ?? new Float32Array(height * width);
    if (!(out instanceof Float32Array) || out.length !== height * width) {
      throw invalidParameter("options.out", `a Float32Array of ${height * width} elements (${height} x ${width})`, out);
    }

    const { native, pool } = await this.#engineFor(geometry);
    this.#throwIfDisposed();
    const slot = await pool.acquire();
    let task: Promise<NativeTimings>;
    try {
      // dispose() may have begun while this frame waited for its slot; it only waits for frames
      // already started, and goes on to dispose the engine and detach the pinned buffers.
      this.#throwIfDisposed();
      task = native.run(slot, checked.data, out);
    } catch (error) {
      pool.release(slot);
      throw mapNativeError(error, SESSION_NAME);
    }
    this.#running.add(task);
    try {
      const timings = await task;
      const totalMs = performance.now() - started;
      const measured = timings.h2dMs + timings.engineMs + timings.d2hMs + timings.hostCopyMs;
      return { depth: ndarray(out, [height, width]), timings: { ...timings, totalMs, jsOverheadMs: Math.max(0, totalMs - measured) } };
    } catch (error) {
      throw mapNativeError(error, SESSION_NAME);
    } finally {
      this.#running.delete(task);
      pool.release(slot);
    }
  }

  /**
   * A uint8 [height, width, channels] frame buffer in pinned host memory (ordinary memory where
   * external buffers are forbidden, e.g. Electron's sandbox), valid until the session is disposed.
   */
  createInput(height: number, width: number, channels: 3 | 4 = 3): NdArray<"uint8"> {
    this.#throwIfDisposed();
    const geometry = checkGeometry(height, width, channels);
    const length = geometry.height * geometry.width * geometry.channels;
    return ndarray(new Uint8Array(this.#allocate(length) ?? new ArrayBuffer(length)), [height, width, channels]);
  }

  /** A float32 [height, width] depth buffer for `run`'s `out`, pinned like {@link createInput}'s. */
  createOutput(height: number, width: number): NdArray<"float32"> {
    this.#throwIfDisposed();
    checkGeometry(height, width, 3);
    const length = height * width;
    return ndarray(new Float32Array(this.#allocate(length * 4) ?? new ArrayBuffer(length * 4)), [height, width]);
  }

  /**
   * Cancels engine builds, lets frames already running finish (frames still waiting for a slot
   * reject with DisposedError), then frees every engine's GPU memory and the pinned buffers
   * (whose arrays become empty). Idempotent.
   */
  dispose(): Promise<void> {
    this.#disposal ??= this.#disposeNow();
    return this.#disposal;
  }

  async #disposeNow(): Promise<void> {
    const disposed = new DisposedError(SESSION_NAME);
    this.#stop.abort(disposed);
    const entries = [...this.#engines.values()];
    const engines = await Promise.allSettled(entries.map((entry) => entry.ready));
    for (const engine of engines) if (engine.status === "fulfilled") engine.value.pool.close(disposed);
    await Promise.allSettled([...this.#running]);
    for (const engine of engines) if (engine.status === "fulfilled") await engine.value.native.dispose();
    this.#engines.clear();
    this.#arena.dispose();
  }

  #allocate(bytes: number): ArrayBuffer | null {
    try {
      return this.#arena.allocate(bytes);
    } catch (error) {
      throw mapNativeError(error, SESSION_NAME);
    }
  }

  #throwIfDisposed(): void {
    if (this.#disposal) throw new DisposedError(SESSION_NAME);
  }

  #engineFor(geometry: FrameGeometry): Promise<{ native: NativeEngine; pool: SlotPool }> {
    const key = `${geometry.height}x${geometry.width}x${geometry.channels}`;
    let entry = this.#engines.get(key);
    if (!entry) {
      const ready = this.#provider(geometry, { onProgress: (progress) => this.#report(progress), signal: this.#signal }).then(
        (native) => ({ native, pool: new SlotPool(Math.min(this.inflight, native.info().slots)) }),
        (error: unknown) => {
          // A cancelled build may be retried by a later run; any other failure stays, so that a
          // feed loop does not rebuild a broken model on every frame.
          if (error instanceof AbortError || this.disposed) this.#engines.delete(key);
          throw this.disposed ? new DisposedError(SESSION_NAME) : error;
        },
      );
      entry = { ready };
      this.#engines.set(key, entry);
    }
    return entry.ready;
  }

  #report(progress: Progress): void {
    try {
      this.#onProgress?.(progress);
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
