/**
 * Messages between the ONNX Runtime backend and its worker thread. Kept in one place so both
 * sides agree on them; plain data only (they cross `postMessage`).
 * @internal
 * @module
 */

/** Session options the worker passes to `InferenceSession.create`. */
export interface WorkerSessionOptions {
  /** Intra-op threads; undefined lets ONNX Runtime use one per physical core. */
  threads?: number;
}

/** A frame handed to the worker: either a transferred buffer or a view of shared memory. */
export interface WorkerFrame {
  buffer: ArrayBuffer | SharedArrayBuffer;
  byteOffset: number;
  shape: number[];
}

/** Where the worker should leave the depth: in shared memory the caller owns, or a transferred buffer. */
export interface WorkerSharedOutput {
  buffer: SharedArrayBuffer;
  byteOffset: number;
}

export type ToWorker =
  | { type: "open"; id: number; path: string; options: WorkerSessionOptions }
  | { type: "run"; id: number; frame: WorkerFrame; out?: WorkerSharedOutput }
  | { type: "close"; id: number };

export interface WorkerError {
  name: string;
  message: string;
}

export type FromWorker =
  | { type: "opened"; id: number; inputNames: string[]; outputNames: string[] }
  | {
      type: "result";
      id: number;
      /** The depth, transferred; absent when it was written into the shared output. */
      depth?: Float32Array;
      shape: number[];
      /** The input buffer handed back for reuse when it was transferred. */
      returnedInput?: ArrayBuffer;
      /** Milliseconds spent inside `session.run`. */
      runMs: number;
    }
  | { type: "closed"; id: number }
  | { type: "error"; id: number; error: WorkerError; returnedInput?: ArrayBuffer };
