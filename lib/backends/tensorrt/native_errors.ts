/**
 * From native failures to the package's errors. The addon throws plain `Error`s carrying
 * `nativeKind` (what failed), `call` (the failing CUDA/TensorRT call), `cudaError` /
 * `cudaErrorName`, `tensorrtLog` (the problems TensorRT logged meanwhile) and `file`;
 * {@link mapNativeError} turns them into the matching {@link EndosynthError} subclass so callers
 * match on classes and codes, never on native details.
 * @module
 */
import {
  AbortError,
  BackendUnavailableError,
  DisposedError,
  EndosynthError,
  InputError,
  RuntimeFailureError,
} from "../../errors.js";

/** The kinds of native failure (`error.nativeKind`). */
export type NativeFailureKind = "cuda" | "tensorrt" | "plan-rejected" | "input" | "disposed" | "aborted" | "unavailable" | "internal";

/** The properties the addon sets on the errors it throws. */
export interface NativeErrorFields {
  nativeKind: NativeFailureKind;
  call?: string;
  cudaError?: number;
  cudaErrorName?: string;
  tensorrtLog?: string[];
  file?: string;
}

/** Whether `error` was thrown by the addon (as opposed to a plain TypeError from an argument check). */
export function isNativeError(error: unknown): error is Error & NativeErrorFields {
  return error instanceof Error && typeof (error as Partial<NativeErrorFields>).nativeKind === "string";
}

/**
 * The package error for a native failure; anything else is returned unchanged.
 * @param what what a "disposed" failure concerns, e.g. `"The TensorRT session"`.
 */
export function mapNativeError(error: unknown, what = "The TensorRT engine"): unknown {
  if (!isNativeError(error) || error instanceof EndosynthError) return error;
  const log = error.tensorrtLog?.length ? `; TensorRT logged: ${error.tensorrtLog.join(" | ")}` : "";
  const context = { cause: error, ...(error.call ? { key: error.call } : {}), ...(error.file ? { file: error.file } : {}) };
  switch (error.nativeKind) {
    case "input":
      return new InputError(error.message, context);
    case "disposed":
      return new DisposedError(what);
    case "aborted":
      return new AbortError(error.message, context);
    case "unavailable":
      return new BackendUnavailableError(error.message, context);
    case "internal":
      return new RuntimeFailureError(`internal error in the native addon: ${error.message}${log}`, context);
    default:
      return new RuntimeFailureError(`${error.message}${log}`, context);
  }
}
