/**
 * The one interface every runtime sits behind. A backend executes a converted model: the ONNX
 * graph carries the model's whole inference contract (uint8 [H, W, C] frame in, C = 3 or 4, float32
 * [H, W] metres out), so a backend never knows which model it runs and all of them compute the same
 * function.
 * @module
 */
import type { NdArray } from "../ndarray/ndarray.js";

/** Names of the runtimes that can execute a model. */
export type BackendName = "onnxruntime" | "tensorrt";

/** Options of one run. */
export interface RunOptions {
  /** Where to write the depth (length H * W); a new array is allocated when omitted. */
  out?: Float32Array;
}

/** A model opened on one runtime, ready to run frames. */
export interface BackendSession {
  /** Which runtime this is. */
  readonly backend: BackendName;
  /**
   * Runs one frame: `frame` is uint8 [H, W, 3|4]; resolves to float32 [H, W] metres. Never blocks
   * the event loop. Several calls may be in flight; each resolves with its own frame's result.
   */
  run(frame: NdArray<"uint8">, options?: RunOptions): Promise<NdArray<"float32">>;
  /**
   * A frame buffer for `run`, uint8 [height, width, channels]. On TensorRT it is pinned (page-locked)
   * host memory the GPU reads by DMA, so decoding a frame straight into it saves every copy; on other
   * backends it is ordinary memory. Valid until the session is disposed.
   */
  createInput(height: number, width: number, channels?: 3 | 4): NdArray<"uint8">;
  /** A depth buffer for `run`'s `out` option, float32 [height, width]; pinned on TensorRT. */
  createOutput(height: number, width: number): NdArray<"float32">;
  /** Frees the runtime's resources; idempotent; in-flight runs finish or reject first. */
  dispose(): Promise<void>;
}
