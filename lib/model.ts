/**
 * `load(name)`: from the authors' checkpoint to a model that turns frames into metric depth. The
 * checkpoint is converted to ONNX in TypeScript (cached), then run by TensorRT on an NVIDIA GPU
 * when it can, or by ONNX Runtime on the CPU.
 *
 * @example
 * ```ts
 * import { load, readSample, depth2rgb, writeImage } from "endosynth";
 * await using model = await load("dav1"); // reads ./checkpoints/dav1-f.pth
 * const { rgb } = readSample("datasets/EndoSynth/samples/000010.npz");
 * const depth = await model.infer(rgb); // float32 [1080, 1920], metres
 * await writeImage("out.png", depth2rgb(depth, 0.02, 0.2));
 * ```
 * @module
 */
import { existsSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import type { BackendName, BackendSession } from "./backends/backend.js";
import type { AsyncDisposableResource } from "./disposable.js";
import type { ProgressCallback } from "./progress.js";
import { MAX_THREADS } from "./backends/onnxruntime/session.js";
import { BACKEND_CHOICES, chooseBackend, type BackendChoice, type ReadyOnnx } from "./backends/registry.js";
import { fileSha256 } from "./cache/file_stamps.js";
import { cachedConversion, DERIVED_FILE_PREFIX } from "./cache/onnx_cache.js";
import { cacheRoot } from "./cache/paths.js";
import { AbortError, CheckpointError, DisposedError, InputError } from "./errors.js";
import { assertAbortSignal, assertFunction, assertIntegerInRange, assertOneOf, assertOptions, assertString, invalidParameter } from "./is.js";
import { MAX_IMAGE_SIDE, toImageArray, type ImageInput } from "./ndarray/convert.js";
import type { NdArray } from "./ndarray/ndarray.js";
import { converterVersion, convertCheckpoint, type ChannelOrder, type Precision } from "./convert/convert.js";
import { checkConvertedOnnx } from "./convert/converted_onnx.js";
import { MODEL_NAMES, modelSpec, type ModelName } from "./models/registry.js";
import { streamDepth, type StreamItem, type StreamOptions, type StreamSource } from "./stream.js";

export type { BackendChoice } from "./backends/registry.js";

/** Options of {@link load}. */
export interface LoadOptions {
  /**
   * The checkpoint to convert. Default: `<dir>/<name>-f.pth` where `<dir>` is
   * `$ENDOSYNTH_CHECKPOINTS` or `./checkpoints` (as the Python reference).
   */
  checkpoint?: string;
  /**
   * A ready ONNX file (made by `endosynth convert` or `convertCheckpoint`) to run instead of
   * converting a checkpoint. Its metadata must name the model loaded, its weights file beside it
   * must be the one it was written with (checked against the size and SHA-256 it records), and it
   * runs in the precision it was converted with.
   */
  onnx?: string;
  /** Runtime: `"auto"` (default), `"onnxruntime"` or `"tensorrt"` (fails, saying why, when it cannot run). */
  backend?: BackendChoice;
  /** Cache folder for converted models and engines; default `$ENDOSYNTH_CACHE` or `~/.cache/endosynth`. */
  cacheDir?: string;
  /** CPU threads of ONNX Runtime, 1 to 4 per core; default one per physical core. */
  threads?: number;
  /**
   * Channel order of the frames you will pass. `"rgb"` (default) reproduces the reference wrapper
   * given an RGB array, which hands the network B, G, R; `"bgr"` is for frames already in the order
   * the network should see (an OpenCV BGR frame), which are then passed through unchanged. Part of
   * the conversion: not with `onnx`, whose file has its order built in.
   */
  channelOrder?: ChannelOrder;
  /** Receives progress of the long steps (hashing, conversion, engine build). */
  onProgress?: ProgressCallback;
  /** Cancels loading. */
  signal?: AbortSignal;
  /** TensorRT engine build options. */
  tensorrt?: {
    /** Builder workspace limit in MiB. */
    workspaceMiB?: number;
    /** Builder optimisation level, 0-5 (TensorRT's default 3). */
    optimizationLevel?: number;
    /** Execution contexts, i.e. requests in flight at once (default 2). */
    inflight?: number;
  };
}

/** Options of {@link Model.infer}. */
export interface InferOptions {
  /** Where to write the depth: float32 of length H * W (e.g. from {@link Model.createOutput}). */
  out?: Float32Array | NdArray<"float32">;
}

const LOAD_OPTIONS = ["checkpoint", "onnx", "backend", "cacheDir", "threads", "channelOrder", "onProgress", "signal", "tensorrt"] as const;
const TENSORRT_OPTIONS = ["workspaceMiB", "optimizationLevel", "inflight"] as const;

/** Frees a model's runtime if its owner forgot `dispose()` and let it be collected. */
const backstop = new FinalizationRegistry<BackendSession>((session) => void session.dispose());

/** A loaded model. Get one from {@link load}; free it with {@link Model.dispose} (or `await using`). */
export class Model implements AsyncDisposableResource {
  /** The model's name, e.g. `"dav1"`. */
  readonly name: ModelName;
  /** The runtime executing it. */
  readonly backend: BackendName;
  /** Why this runtime was chosen, e.g. why TensorRT was not used. */
  readonly backendReason: string;
  /** The ONNX file being run (in the cache unless given with the `onnx` option). */
  readonly onnxPath: string;
  /** The precision of the network body: `"fp16"` on TensorRT, `"fp32"` on ONNX Runtime, or the `onnx` file's own. */
  readonly precision: Precision;
  readonly #session: BackendSession;
  #disposed: Promise<void> | undefined;

  /** @internal use {@link load} */
  constructor(name: ModelName, session: BackendSession, backendReason: string, onnx: { onnxPath: string; precision: Precision }) {
    this.name = name;
    this.backend = session.backend;
    this.backendReason = backendReason;
    this.onnxPath = onnx.onnxPath;
    this.precision = onnx.precision;
    this.#session = session;
    backstop.register(this, session, this);
  }

  #assertUsable(): void {
    if (this.#disposed) throw new DisposedError(`Model ${this.name}`);
  }

  /**
   * Depth in metres of one frame, at the frame's resolution.
   * @param input uint8 [H, W, 3] RGB (or [H, W, 4] RGBA, alpha ignored), sharp's raw output or ImageData.
   * @returns float32 [H, W] metres.
   * @throws {@link endosynth!InputError | InputError} synchronously-checked bad input (dtype, shape, size, `out` length).
   */
  async infer(input: ImageInput, options: InferOptions = {}): Promise<NdArray<"float32">> {
    this.#assertUsable();
    const frame = toImageArray(input, "input");
    assertOptions("options", options, ["out"]);
    const out = outputBuffer(options.out, frame.shape[0] * frame.shape[1]);
    return this.#session.run(frame, out ? { out } : {});
  }

  /**
   * Depth for each frame of a (possibly async) iterable, yielded in order while up to `inflight`
   * frames are being processed at once. Breaking out of the loop releases everything.
   */
  stream<T extends StreamSource>(frames: Iterable<T> | AsyncIterable<T>, options?: StreamOptions): AsyncGenerator<StreamItem<T>> {
    this.#assertUsable();
    return streamDepth(this, frames, options);
  }

  /**
   * A frame buffer to decode frames into: pinned memory the GPU reads directly on TensorRT (no
   * copy), shared memory the inference thread reads directly on ONNX Runtime.
   */
  createInput(height: number, width: number, channels: 3 | 4 = 3): NdArray<"uint8"> {
    this.#assertUsable();
    assertFrameSize(height, width);
    if (channels !== 3 && channels !== 4) throw invalidParameter("channels", "3 or 4", channels);
    return this.#session.createInput(height, width, channels);
  }

  /** A depth buffer for `infer(frame, { out })`, written in place without a copy on the main thread. */
  createOutput(height: number, width: number): NdArray<"float32"> {
    this.#assertUsable();
    assertFrameSize(height, width);
    return this.#session.createOutput(height, width);
  }

  /** Frees the runtime (GPU memory, worker thread). Idempotent; in-flight requests finish first. */
  dispose(): Promise<void> {
    if (!this.#disposed) {
      backstop.unregister(this);
      this.#disposed = this.#session.dispose();
    }
    return this.#disposed;
  }

  /**
   * Same as {@link Model.dispose}, so that `await using model = await load("dav1")` frees the
   * runtime when the block ends.
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }
}

/** The buffers span the frame sizes `infer` accepts. */
function assertFrameSize(height: number, width: number): void {
  assertIntegerInRange("height", height, 1, MAX_IMAGE_SIDE);
  assertIntegerInRange("width", width, 1, MAX_IMAGE_SIDE);
}

function outputBuffer(out: InferOptions["out"], length: number): Float32Array | undefined {
  if (out === undefined) return undefined;
  const data = out instanceof Float32Array ? out : (out as NdArray).data;
  if (!(data instanceof Float32Array)) throw invalidParameter("options.out", "a Float32Array or a float32 NdArray", out);
  if (data.length !== length) {
    throw new InputError(`Expected options.out to hold ${length} values (H * W of the input) but it holds ${data.length}`, { key: "options.out" });
  }
  return data;
}

function validateLoad(name: unknown, options: LoadOptions): asserts name is ModelName {
  assertOneOf("name", name, MODEL_NAMES);
  assertOptions("options", options, LOAD_OPTIONS);
  if (options.checkpoint !== undefined) assertString("options.checkpoint", options.checkpoint);
  if (options.onnx !== undefined) assertString("options.onnx", options.onnx);
  if (options.checkpoint !== undefined && options.onnx !== undefined) {
    throw new InputError("Pass either options.checkpoint or options.onnx, not both", { key: "options.onnx" });
  }
  if (options.backend !== undefined) assertOneOf("options.backend", options.backend, BACKEND_CHOICES);
  if (options.cacheDir !== undefined) assertString("options.cacheDir", options.cacheDir);
  if (options.threads !== undefined) assertIntegerInRange("options.threads", options.threads, 1, MAX_THREADS);
  if (options.channelOrder !== undefined) assertOneOf("options.channelOrder", options.channelOrder, ["rgb", "bgr"] as const);
  if (options.onnx !== undefined && options.channelOrder !== undefined) {
    throw new InputError(
      "options.channelOrder applies when a checkpoint is converted; the ONNX file of options.onnx keeps the order it was converted with (endosynth convert --channel-order)",
      { key: "options.channelOrder" },
    );
  }
  if (options.onProgress !== undefined) assertFunction("options.onProgress", options.onProgress);
  if (options.signal !== undefined) assertAbortSignal("options.signal", options.signal);
  assertOptions("options.tensorrt", options.tensorrt, TENSORRT_OPTIONS);
}

/** Where the checkpoint of `name` is: the option, else `$ENDOSYNTH_CHECKPOINTS` or `./checkpoints`. */
export function checkpointPath(name: ModelName, checkpoint?: string): string {
  if (checkpoint) return resolve(checkpoint);
  return resolve(process.env.ENDOSYNTH_CHECKPOINTS ?? "checkpoints", modelSpec(name).checkpointFile);
}

function assertCheckpointExists(name: ModelName, path: string, explicit: boolean): void {
  if (existsSync(path) && statSync(path).isFile()) return;
  const spec = modelSpec(name);
  const where = explicit
    ? "the checkpoint option"
    : `${process.env.ENDOSYNTH_CHECKPOINTS ? "$ENDOSYNTH_CHECKPOINTS" : "./checkpoints"}/${spec.checkpointFile}`;
  throw new CheckpointError(
    `No checkpoint for ${name} at ${path} (from ${where}). Download it with \`npx endosynth pull ${name}\` (or pull("${name}")), ` +
      `which fetches it from ${spec.checkpointUrl} once you accept its licence (${spec.weightsLicense.name}); or pass { checkpoint } / set ENDOSYNTH_CHECKPOINTS.`,
    { file: path },
  );
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError("load() was aborted");
}

async function convertedModel(name: ModelName, options: LoadOptions, precision: Precision): Promise<{ onnxPath: string; hash: string; derivedPrefix: string }> {
  const checkpoint = checkpointPath(name, options.checkpoint);
  assertCheckpointExists(name, checkpoint, options.checkpoint !== undefined);
  const cache = cacheRoot(options.cacheDir);
  // Remembered by the file's stamp: an unchanged checkpoint is not read again.
  const checkpointSha256 = await fileSha256(checkpoint, cache, () => options.onProgress?.({ phase: "hashing checkpoint", detail: checkpoint }));
  throwIfAborted(options.signal);
  const channelOrder = options.channelOrder ?? "rgb";
  const entry = await cachedConversion(
    cache,
    { model: name, checkpointSha256, converterVersion: converterVersion(), options: { channelOrder, precision } },
    (output) => convertCheckpoint({ model: name, checkpoint, output, channelOrder, precision, onProgress: options.onProgress, signal: options.signal }),
    { ...(options.onProgress ? { onProgress: options.onProgress } : {}), ...(options.signal ? { signal: options.signal } : {}) },
  );
  return { onnxPath: entry.onnxPath, hash: entry.contentHash, derivedPrefix: join(entry.dir, DERIVED_FILE_PREFIX) };
}

async function readyOnnx(name: ModelName, options: LoadOptions, precision: Precision): Promise<ReadyOnnx> {
  if (options.onnx === undefined) return { ...(await convertedModel(name, options, precision)), precision };
  const onnxPath = resolve(options.onnx);
  if (!existsSync(onnxPath)) throw new InputError(`No ONNX file at ${onnxPath} (from the onnx option)`, { file: onnxPath, key: "options.onnx" });
  const cache = cacheRoot(options.cacheDir);
  const givenPrecision = await checkConvertedOnnx(name, onnxPath, cache, options.onProgress);
  // The model file records its weights' SHA-256, so its own hash identifies the weights too.
  return { onnxPath, hash: await fileSha256(onnxPath, cache), precision: givenPrecision };
}

/**
 * Loads an EndoSynth model: converts its checkpoint to ONNX (once; cached and verified) and opens it
 * on TensorRT (NVIDIA GPU with TensorRT) or ONNX Runtime (CPU, everywhere).
 *
 * @param name `"dav1"`, `"dav2"`, `"endodac"` or `"midas"`.
 * @throws {@link endosynth!InputError | InputError} bad name or options (listing the valid ones); an `onnx` file that is not
 * this model as converted by endosynth.
 * @throws {@link endosynth!FileFormatError | FileFormatError} an `onnx` file that is not an ONNX model, or whose weights file beside
 * it is missing or not the one it was written with.
 * @throws {@link endosynth!CheckpointError | CheckpointError} missing checkpoint (where it looked, where to get it), wrong architecture, missing or unexpected keys.
 * @throws {@link endosynth!BackendUnavailableError | BackendUnavailableError} `backend: "tensorrt"` where TensorRT cannot run (says why).
 * @example
 * ```ts
 * const model = await load("dav2", { checkpoint: "weights/dav2-f.pth", backend: "onnxruntime" });
 * console.log(model.backend, model.backendReason);
 * await model.dispose();
 * ```
 */
export async function load(name: ModelName, options: LoadOptions = {}): Promise<Model> {
  validateLoad(name, options);
  throwIfAborted(options.signal);
  const plan = chooseBackend(options.backend ?? "auto");
  const onnx = await readyOnnx(name, options, plan.backend.precision);
  throwIfAborted(options.signal);
  options.onProgress?.({ phase: `opening ${plan.backend.name}`, detail: onnx.onnxPath });
  const session = await plan.backend.open(onnx, {
    cacheDir: cacheRoot(options.cacheDir),
    ...(options.threads === undefined ? {} : { threads: options.threads }),
    ...(options.tensorrt ? { tensorrt: options.tensorrt } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  return new Model(name, session, plan.reason, onnx);
}
