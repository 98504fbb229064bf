/**
 * The options of {@link openTensorRT}, checked synchronously.
 * @module
 */
import { existsSync } from "node:fs";
import { InputError } from "../../errors.js";
import { assertAbortSignal, assertFunction, assertIntegerInRange, assertOneOf, assertOptions, assertPlainObject, assertString } from "../../is.js";
import type { ProgressCallback } from "../../progress.js";


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

export interface CheckedOptions {
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
 * @throws {@link endosynth!InputError | InputError} naming the option, what was expected and what was received.
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
  if (onProgress !== undefined) assertFunction("options.onProgress", onProgress);
  if (signal !== undefined) assertAbortSignal("options.signal", signal);
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
