/**
 * The options and report of a conversion, and their checks.
 * @module
 */
import { InputError } from "../errors.js";
import { assertAbortSignal, assertFunction, assertOneOf, assertOptions, assertString, invalidParameter } from "../is.js";
import type { ChannelOrder } from "../models/blocks/preprocess.js";
import { MODEL_NAMES, type ModelName } from "../models/registry.js";
import type { StateDictLike, UnusedKey } from "../models/weights.js";
import type { DroppedEntry } from "../checkpoint/state_dict.js";
import type { ProgressCallback } from "../progress.js";

export type { ChannelOrder } from "../models/blocks/preprocess.js";

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
  /**
   * Entries of the checkpoint that are not tensors and were left out, as the official wrapper
   * does (EndoDAC's trainer saves `height`, `width`, `use_stereo` beside the weights; a wrapper
   * dict's `optimizer`, `epoch`, ...). Empty for a plain state dict or one given in memory.
   */
  droppedEntries: DroppedEntry[];
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

/** Checks {@link ConvertOptions} synchronously. */
export function validateConvertOptions(options: ConvertOptions): void {
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

