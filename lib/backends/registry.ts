/**
 * The runtimes a model can run on, in order of preference, and the choice among them: by name, or
 * `"auto"` for the first that can run here. Every verdict comes with its reason, so a model can say
 * why it runs where it runs (`model.backendReason`) and `endosynth info` why the others were not
 * used.
 * @module
 */
import { BackendUnavailableError } from "../errors.js";
import type { Precision } from "../convert/options.js";
import type { ProgressCallback } from "../progress.js";
import type { BackendName, BackendSession } from "./backend.js";
import { onnxRuntimeAvailability } from "./onnxruntime/runtime.js";
import { openOnnxRuntime } from "./onnxruntime/session.js";
import { openTensorRT, tensorrtStatus } from "./tensorrt/index.js";

/** Which runtime to use; `"auto"` picks TensorRT when it can run here, else ONNX Runtime. */
export type BackendChoice = "auto" | BackendName;

/** The backend choices, for argument checks. */
export const BACKEND_CHOICES: readonly BackendChoice[] = ["auto", "onnxruntime", "tensorrt"];

/** A converted model ready to open: its file, its identity for engine caches, its precision. */
export interface ReadyOnnx {
  onnxPath: string;
  hash: string;
  precision: Precision;
  /**
   * Where a backend may keep files it derives from the model (the cache entry's, see
   * DERIVED_FILE_PREFIX); absent for a user's own ONNX file, beside which nothing is written.
   */
  derivedPrefix?: string;
}

/** What opening a session may be given besides the model. */
export interface OpenOptions {
  cacheDir: string;
  threads?: number;
  tensorrt?: { workspaceMiB?: number; optimizationLevel?: number; inflight?: number };
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
}

/** One runtime: whether it can run here, what ONNX it runs, how to open a model on it. */
interface Backend {
  name: BackendName;
  /** How reasons name it, e.g. "ONNX Runtime (CPU)". */
  label: string;
  /** The converter precision its ONNX must have. */
  precision: Precision;
  availability(): { available: boolean; reason: string };
  open(onnx: ReadyOnnx, options: OpenOptions): Promise<BackendSession>;
}

const BACKENDS: readonly Backend[] = [
  {
    name: "tensorrt",
    label: "TensorRT",
    // TensorRT builds strongly typed fp16 engines from the converter's fp16 ONNX.
    precision: "fp16",
    availability: () => tensorrtStatus(),
    open: (onnx, options) =>
      openTensorRT({
        onnxPath: onnx.onnxPath,
        onnxHash: onnx.hash,
        cacheDir: options.cacheDir,
        precision: onnx.precision,
        ...options.tensorrt,
        ...(options.onProgress ? { onProgress: options.onProgress } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      }),
  },
  {
    name: "onnxruntime",
    label: "ONNX Runtime (CPU)",
    // ONNX Runtime's CPU kernels are no faster in fp16.
    precision: "fp32",
    availability: () => onnxRuntimeAvailability(),
    open: (onnx, options) =>
      openOnnxRuntime(onnx.onnxPath, {
        ...(options.threads === undefined ? {} : { threads: options.threads }),
        ...(onnx.derivedPrefix ? { optimizedCache: { prefix: onnx.derivedPrefix, cacheRoot: options.cacheDir } } : {}),
      }),
  },
];

/** One runtime's verdict. */
export interface BackendVerdict {
  backend: BackendName;
  available: boolean;
  /** Why it can or cannot run here, in one sentence. */
  reason: string;
}

/** Every runtime's verdict, in order of preference. */
export function backendVerdicts(): BackendVerdict[] {
  return BACKENDS.map((backend) => {
    const { available, reason } = backend.availability();
    return { backend: backend.name, available, reason };
  });
}

/** The runtime chosen for a load, and why. */
export interface BackendPlan {
  backend: Backend;
  reason: string;
}

/**
 * Picks the runtime: the one named, or for `"auto"` the first that can run here.
 * @throws {@link endosynth!BackendUnavailableError | BackendUnavailableError} when the runtime named, or every
 * runtime for `"auto"`, cannot run here (saying why).
 */
export function chooseBackend(choice: BackendChoice): BackendPlan {
  const candidates = choice === "auto" ? BACKENDS : BACKENDS.filter((backend) => backend.name === choice);
  const passed: string[] = [];
  for (const backend of candidates) {
    const { available, reason } = backend.availability();
    if (available) {
      const why = choice !== "auto" ? `${backend.label} was requested` : passed.length > 0 ? `${backend.label}, because ${passed.join("; ")}` : reason;
      return { backend, reason: why };
    }
    passed.push(reason);
  }
  throw new BackendUnavailableError(passed.join("; "));
}
