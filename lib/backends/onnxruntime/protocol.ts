/**
 * The calls between the ONNX Runtime backend and its worker thread (see lib/threads/rpc.ts). Kept
 * in one place so both sides agree on them; plain data only (they cross `postMessage`).
 * @module
 */

/** Payload of the "open" call. */
export interface OpenRequest {
  /** The ONNX file; external data beside it is memory-mapped by ONNX Runtime. */
  path: string;
  /** Intra-op threads; undefined lets ONNX Runtime use one per physical core. */
  threads?: number;
  /** Where to keep and find the optimized graph (see OnnxRuntimeOptions). */
  optimizedCache?: { prefix: string; cacheRoot: string };
}

/** A frame handed to the worker: either a transferred buffer or a view of shared memory. */
export interface WorkerFrame {
  buffer: ArrayBuffer | SharedArrayBuffer;
  byteOffset: number;
  shape: number[];
}

/** Where the worker should leave the depth: in shared memory the caller owns. */
export interface WorkerSharedOutput {
  buffer: SharedArrayBuffer;
  byteOffset: number;
}

/** Payload of the "run" call. */
export interface RunRequest {
  frame: WorkerFrame;
  out?: WorkerSharedOutput;
}

/** Result of the "run" call. */
export interface RunResult {
  /** The depth, transferred; absent when it was written into the shared output. */
  depth?: Float32Array;
  /** The input buffer handed back for reuse when it was transferred. */
  returnedInput?: ArrayBuffer;
}
