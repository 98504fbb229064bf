/**
 * Which ONNX Runtime to run: the Node binding in this platform's binary package (`@endosynth/<os>-<cpu>`,
 * ONNX Runtime's own CPU binding for that platform only), else an `onnxruntime-node` installed beside
 * endosynth (a source build, or this repository's development checkout). Loaded in the worker only.
 * @module
 */
import { createRequire } from "node:module";
import type * as OrtModule from "onnxruntime-node";
import { BackendUnavailableError } from "../../errors.js";
import { currentPlatform, platformPackage, waysOut, type PlatformPackageState } from "../../platform/package.js";

/** The part of ONNX Runtime's Node API the backend uses. */
export type OnnxRuntime = Pick<typeof OrtModule, "InferenceSession" | "Tensor">;

/** Where the runtime came from and why the others were not used. */
export interface OnnxRuntimeSource {
  /** The module loaded: a path inside the platform package, or `"onnxruntime-node"`. */
  module: string;
  /** Its version. */
  version: string;
  /** Each place looked at first, and why it was not used. */
  skipped: string[];
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0]!;
}

/**
 * Finds and loads ONNX Runtime, or says why none can run here. Never loads two. `state` and `from`
 * (where `onnxruntime-node` is resolved from) default to this installation's.
 */
export function locateOnnxRuntime(state: PlatformPackageState = platformPackage(), from: string | URL = import.meta.url): { runtime: OnnxRuntime; source: OnnxRuntimeSource } {
  const require = createRequire(from);
  const skipped: string[] = [];
  if (state.found && state.package.onnxruntime) {
    try {
      const runtime = require(state.package.onnxruntime) as OnnxRuntime;
      return { runtime, source: { module: state.package.onnxruntime, version: state.package.version, skipped } };
    } catch (error) {
      skipped.push(`${state.package.name}: its ONNX Runtime does not load (${firstLine(error)})`);
    }
  } else {
    skipped.push(state.found ? `${state.package.name} has no ONNX Runtime` : state.reason);
  }
  try {
    const runtime = require("onnxruntime-node") as OnnxRuntime;
    const { version } = require("onnxruntime-node/package.json") as { version: string };
    return { runtime, source: { module: "onnxruntime-node", version, skipped } };
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === "MODULE_NOT_FOUND";
    skipped.push(`onnxruntime-node: ${missing ? "not installed" : firstLine(error)}`);
  }
  throw new BackendUnavailableError(`ONNX Runtime is not available for ${currentPlatform()} (${skipped.join("; ")}): ${waysOut()}`);
}

/**
 * Whether an ONNX Runtime is there to load, and which, without loading it (the binding stays out of
 * the main thread; sessions load it in their worker).
 */
export function onnxRuntimeAvailability(): { available: boolean; reason: string } {
  const require = createRequire(import.meta.url);
  const state = platformPackage();
  if (state.found && state.package.onnxruntime) {
    return { available: true, reason: `ONNX Runtime (CPU) from ${state.package.name}` };
  }
  try {
    const { version } = require("onnxruntime-node/package.json") as { version: string };
    return { available: true, reason: `ONNX Runtime (CPU) from onnxruntime-node ${version}` };
  } catch {
    const why = state.found ? `${state.package.name} has no ONNX Runtime` : state.reason;
    return { available: false, reason: `ONNX Runtime is not available for ${currentPlatform()} (${why}; onnxruntime-node: not installed): ${waysOut()}` };
  }
}
