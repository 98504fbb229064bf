/**
 * `convertCheckpoint`: from the authors' PyTorch checkpoint to an ONNX model that carries the
 * whole inference contract (uint8 [H, W, 3|4] frame in, float32 [H, W] metres out), in TypeScript.
 *
 * @example
 * ```ts
 * import { convertCheckpoint } from "endosynth";
 * const report = await convertCheckpoint({ model: "dav1", checkpoint: "checkpoints/dav1-f.pth", output: "dav1.onnx" });
 * console.log(report.parameters, report.unusedKeys, report.files);
 * ```
 * @module
 */
import { AbortError, CheckpointError, InputError } from "../errors.js";
import { assertAbortSignal, assertFunction, assertOneOf, assertOptions, assertString, invalidParameter } from "../is.js";
import type { ProgressCallback } from "../progress.js";
import { readStateDict } from "../checkpoint/state_dict.js";
import { Graph } from "../onnx/graph.js";
import { toFloat16 } from "../onnx/float16.js";
import { writeOnnx, type OnnxGraph } from "../onnx/writer.js";
import { convertInWorker, type ConvertRequest } from "./in_worker.js";
import type { ChannelOrder } from "../models/blocks/preprocess.js";
import { MODEL_NAMES, modelSpec, recognizeArchitectures, type ModelName, type ModelSpec } from "../models/registry.js";
import { Weights, type StateDictLike, type UnusedKey } from "../models/weights.js";

export type { ChannelOrder } from "../models/blocks/preprocess.js";

/**
 * Version of the converter's output: bumped on every change that alters the ONNX a checkpoint
 * converts to, so caches keyed on it rebuild.
 */
export const CONVERTER_VERSION = 4;

/**
 * Numeric precision of the converted graph's network body: `"fp32"` for ONNX Runtime on the CPU,
 * `"fp16"` for TensorRT (weights and activations in float16; LayerNormalization, Softmax and
 * reductions in float32 between Casts). Pre-processing, the conversion to metres, the uint8 input
 * and the float32 output are the same in both.
 */
export type Precision = "fp32" | "fp16";

/** Options of {@link convertCheckpoint}. */
export interface ConvertOptions {
  /** Which model the checkpoint is for. */
  model: ModelName;
  /** Path of the checkpoint (.pth or .safetensors). Exactly one of `checkpoint` / `stateDict`. */
  checkpoint?: string;
  /** A state dict already in memory (e.g. from `readStateDict`). */
  stateDict?: StateDictLike;
  /** Where to write the ONNX model; its weights go beside it in `<output>.data`. */
  output: string;
  /**
   * Order of the frames the model will be given: `"rgb"` (default) reproduces the reference
   * wrapper on an RGB array (the network sees B, G, R); `"bgr"` passes frames through unchanged.
   */
  channelOrder?: ChannelOrder;
  /**
   * `"fp32"` (default), or `"fp16"`: weights and activations of the network body in float16, with
   * LayerNormalization and Softmax in float32 (for TensorRT, which builds fp16 engines only from
   * an ONNX that is float16 itself).
   */
  precision?: Precision;
  /** Progress of the phases: "reading checkpoint", "building graph", "writing weights". */
  onProgress?: ProgressCallback;
  /** Cancels the conversion; nothing is left at `output`. */
  signal?: AbortSignal;
}

/** What a conversion did. */
export interface ConversionReport {
  /** The model converted (as in {@link ConvertOptions.model}). */
  model: ModelName;
  /** The files written: the model, then its external data. */
  files: string[];
  /** Elements in the weights the graph uses. */
  parameters: number;
  /** State-dict keys the graph uses. */
  consumedKeys: string[];
  /** State-dict keys the model has but inference does not use, each with the reason. */
  unusedKeys: UnusedKey[];
  /** Nodes in the ONNX graph. */
  nodes: number;
  /** The frame channel order the graph expects (`options.channelOrder`, default `"rgb"`). */
  channelOrder: ChannelOrder;
  /** The precision of the graph's network body (`options.precision`, default `"fp32"`). */
  precision: Precision;
  /** Wall time of the whole conversion, reading included. */
  seconds: number;
}

const OPTION_NAMES = ["model", "checkpoint", "stateDict", "output", "channelOrder", "precision", "onProgress", "signal"] as const;

function validate(options: ConvertOptions): void {
  assertOptions("options", options as unknown, OPTION_NAMES);
  assertOneOf("options.model", options.model, MODEL_NAMES);
  assertString("options.output", options.output);
  if ((options.checkpoint === undefined) === (options.stateDict === undefined)) {
    throw new InputError("Pass exactly one of options.checkpoint and options.stateDict", { key: "options.checkpoint" });
  }
  if (options.checkpoint !== undefined) assertString("options.checkpoint", options.checkpoint);
  if (options.stateDict !== undefined && !(options.stateDict instanceof Map)) {
    throw invalidParameter("options.stateDict", "a Map of NdArrays", options.stateDict);
  }
  if (options.channelOrder !== undefined) assertOneOf("options.channelOrder", options.channelOrder, ["rgb", "bgr"] as const);
  if (options.precision !== undefined) assertOneOf("options.precision", options.precision, ["fp32", "fp16"] as const);
  if (options.onProgress !== undefined) assertFunction("options.onProgress", options.onProgress);
  if (options.signal !== undefined) assertAbortSignal("options.signal", options.signal);
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError("The conversion was aborted");
}

/**
 * Refuses a checkpoint of another architecture before any shape check: "this checkpoint looks like
 * endodac", not an error about some tensor deep inside a builder.
 */
function assertArchitecture(spec: ModelSpec, keys: readonly string[], file: string | undefined): void {
  if (spec.recognize(keys) !== undefined) return;
  const others = recognizeArchitectures(keys);
  const where = file ? `The checkpoint ${file}` : "The state dict";
  if (others.length > 0) {
    const [first] = others;
    throw new CheckpointError(
      `${where} looks like ${others.map((o) => o.name).join(" or ")}, not ${spec.name}: ${first.evidence}. ` +
        `Convert it as ${first.name}, or pass the ${spec.checkpointFile} checkpoint for ${spec.name}.`,
      { file, key: first.evidence.replace(/^it has the key /, "") },
    );
  }
  if (keys.length === 0) throw new CheckpointError(`${where} has no tensors`, { file });
}

/** The graph with its network body (between the builder's "preprocessed" and "raw" stages) in float16. */
function float16Body(graph: Graph): OnnxGraph {
  const input = graph.stage("preprocessed");
  const output = graph.stage("raw");
  if (!input || !output) throw new InputError(`The ${graph.name} builder marks no "preprocessed" and "raw" stages: it cannot be converted to fp16`, { key: "options.precision" });
  return toFloat16(graph, { input, output });
}

/**
 * Converts a checkpoint to an ONNX model with the whole inference contract. Every state-dict key
 * is either used by the graph or reported in {@link ConversionReport.unusedKeys} with its reason.
 *
 * A checkpoint file is converted in a worker thread, so the 1 to 4 seconds of reading and graph
 * building never stall the caller's event loop; a `stateDict` already in memory is converted in
 * the calling thread.
 * @throws {CheckpointError} for a checkpoint of another architecture (naming it), missing or
 * unexpected keys, or wrong shapes (naming them all); also the reader's errors.
 * @throws {InputError} for bad options.
 * @throws {AbortError} when `signal` aborts; nothing is left at `output`.
 */
export async function convertCheckpoint(options: ConvertOptions): Promise<ConversionReport> {
  validate(options);
  if (options.stateDict) return convertInThisThread(options);
  // Made before the first await, while the caller's frames are still on the stack.
  const callSite = new Error();
  throwIfAborted(options.signal);
  const started = performance.now();
  const request: ConvertRequest = {
    options: {
      model: options.model,
      checkpoint: options.checkpoint!,
      output: options.output,
      channelOrder: options.channelOrder ?? "rgb",
      precision: options.precision ?? "fp32",
    },
    reportProgress: options.onProgress !== undefined,
  };
  const report = await convertInWorker(request, options.onProgress, options.signal, callSite);
  return { ...report, seconds: (performance.now() - started) / 1000 };
}

/**
 * {@link convertCheckpoint}'s work, in the calling thread, on validated options.
 * @internal
 */
export async function convertInThisThread(options: ConvertOptions): Promise<ConversionReport> {
  const started = performance.now();
  const spec = modelSpec(options.model);
  const channelOrder = options.channelOrder ?? "rgb";
  const precision = options.precision ?? "fp32";
  const { onProgress, signal } = options;

  let stateDict = options.stateDict;
  if (!stateDict) {
    onProgress?.({ phase: "reading checkpoint", detail: options.checkpoint });
    stateDict = (await readStateDict(options.checkpoint!)).stateDict;
  }
  throwIfAborted(signal);
  assertArchitecture(spec, [...stateDict.keys()], options.checkpoint);

  onProgress?.({ phase: "building graph", detail: spec.architecture });
  const graph = new Graph(spec.name);
  const weights = new Weights(stateDict, options.checkpoint);
  spec.build(graph, weights, { channelOrder });
  const usage = weights.finish();
  throwIfAborted(signal);
  const written = precision === "fp16" ? float16Body(graph) : graph;

  const files = await writeOnnx(written, options.output, {
    metadata: {
      model: spec.name,
      converter_version: String(CONVERTER_VERSION),
      channel_order: channelOrder,
      precision,
      input: "rgb: uint8 [H, W, C], C = 3 or 4 (alpha ignored)",
      output: `depth: float32 [H, W], ${spec.description}`,
    },
    docString: `${spec.architecture}. Post-processing: ${spec.postprocess}.`,
    onProgress,
    signal,
  });
  return {
    model: spec.name,
    files: files.data ? [files.model, files.data] : [files.model],
    parameters: usage.parameters,
    consumedKeys: usage.consumed,
    unusedKeys: usage.unused,
    nodes: written.nodes.length,
    channelOrder,
    precision,
    seconds: (performance.now() - started) / 1000,
  };
}
