/**
 * The ONNX Runtime backend: runs a converted model on the CPU, everywhere. The session lives in a
 * worker thread (see onnxruntime_worker.ts) so inference never blocks the event loop.
 *
 * Buffers: a frame in shared memory (from {@link OnnxRuntimeSession.createInput}) is read by the
 * worker directly; any other frame is copied once into a pooled buffer that is transferred to the
 * worker and back. The depth comes back as a transferred buffer, or is written by the worker into a
 * shared `out` buffer (from {@link OnnxRuntimeSession.createOutput}).
 * @module
 */
import { availableParallelism } from "node:os";
import type { Worker } from "node:worker_threads";
import { DisposedError, RuntimeFailureError } from "../../errors.js";
import { assertIntegerInRange, assertOptions, assertString } from "../../is.js";
import { ndarray, type NdArray } from "../../ndarray/ndarray.js";
import { siblingModule, startWorker } from "../../threads/start_worker.js";
import type { BackendSession, RunOptions } from "../backend.js";
import type { FromWorker, ToWorker, WorkerFrame, WorkerSharedOutput } from "./protocol.js";

/** Options of {@link openOnnxRuntime}. */
export interface OnnxRuntimeOptions {
  /** Intra-op threads of the session; default: one per physical core, as ONNX Runtime chooses. */
  threads?: number;
}

/** The most intra-op threads a session may ask for: beyond a few per core they only contend. */
export const MAX_THREADS = 4 * availableParallelism();

/** Timing of the last run, for benchmarks: milliseconds inside `session.run` in the worker. */
export interface RunTiming {
  runMs: number;
}

interface Pending {
  resolve: (message: FromWorker) => void;
  reject: (error: Error) => void;
}

const workerUrl = siblingModule("worker", import.meta.url);

function workerError(error: { name: string; message: string }, path: string): RuntimeFailureError {
  return new RuntimeFailureError(`ONNX Runtime failed on ${path}: ${error.message}`, { file: path });
}

/** An ONNX model open in ONNX Runtime on the CPU. Create with {@link openOnnxRuntime}. */
export class OnnxRuntimeSession implements BackendSession {
  readonly backend = "onnxruntime" as const;
  /** Timing of the most recent completed run. */
  lastTiming: RunTiming | undefined;
  readonly #worker: Worker;
  readonly #path: string;
  readonly #pending = new Map<number, Pending>();
  /** Transferable input buffers handed back by the worker, reused to avoid reallocating per frame. */
  readonly #inputPool: ArrayBuffer[] = [];
  #nextId = 1;
  #failure: Error | undefined;
  #disposing: Promise<void> | undefined;

  /** @internal use {@link openOnnxRuntime} */
  constructor(worker: Worker, path: string) {
    this.#worker = worker;
    this.#path = path;
    worker.on("message", (message: FromWorker) => this.#settle(message));
    worker.on("error", (error) => this.#fail(new RuntimeFailureError(`ONNX Runtime worker crashed running ${path}: ${error.message}`, { file: path, cause: error })));
    worker.on("exit", (code) => {
      if (!this.#disposing) this.#fail(new RuntimeFailureError(`ONNX Runtime worker running ${path} exited unexpectedly with code ${code}`, { file: path }));
    });
  }

  /** @internal */
  request(message: ToWorker, transfer: ArrayBuffer[] = []): Promise<FromWorker> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      // The worker is unref'd while idle so an open model never keeps the process alive, and ref'd
      // while a request is pending so awaiting one does.
      if (this.#pending.size === 0) this.#worker.ref();
      this.#pending.set(message.id, { resolve, reject });
      this.#worker.postMessage(message, transfer);
    });
  }

  /** @internal */
  nextId(): number {
    return this.#nextId++;
  }

  #settle(message: FromWorker): void {
    const pending = this.#pending.get(message.id);
    if (!pending) return;
    this.#pending.delete(message.id);
    if (this.#pending.size === 0) this.#worker.unref();
    const returned = "returnedInput" in message ? message.returnedInput : undefined;
    if (returned) this.#inputPool.push(returned);
    if (message.type === "error") pending.reject(workerError(message.error, this.#path));
    else pending.resolve(message);
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
  }

  #assertUsable(): void {
    if (this.#disposing) throw new DisposedError("This ONNX Runtime session");
  }

  /** A transferable copy of the frame, in a pooled buffer when one is large enough. */
  #transferableFrame(frame: NdArray<"uint8">): { message: WorkerFrame; transfer: ArrayBuffer[] } {
    const { data, shape } = frame;
    if (data.buffer instanceof SharedArrayBuffer) {
      return { message: { buffer: data.buffer, byteOffset: data.byteOffset, shape: [...shape] }, transfer: [] };
    }
    const index = this.#inputPool.findIndex((buffer) => buffer.byteLength >= data.length);
    const buffer = index >= 0 ? this.#inputPool.splice(index, 1)[0] : new ArrayBuffer(data.length);
    new Uint8Array(buffer, 0, data.length).set(data);
    return { message: { buffer, byteOffset: 0, shape: [...shape] }, transfer: [buffer] };
  }

  async run(frame: NdArray<"uint8">, options: RunOptions = {}): Promise<NdArray<"float32">> {
    this.#assertUsable();
    const [height, width] = frame.shape;
    const { out } = options;
    const shared: WorkerSharedOutput | undefined =
      out && out.buffer instanceof SharedArrayBuffer ? { buffer: out.buffer, byteOffset: out.byteOffset } : undefined;
    const { message, transfer } = this.#transferableFrame(frame);
    const reply = await this.request({ type: "run", id: this.nextId(), frame: message, ...(shared ? { out: shared } : {}) }, transfer);
    if (reply.type !== "result") throw new RuntimeFailureError(`Unexpected reply ${reply.type} from the ONNX Runtime worker`);
    this.lastTiming = { runMs: reply.runMs };
    if (shared) return ndarray(out!, [height, width], "float32");
    if (out) {
      out.set(reply.depth!);
      return ndarray(out, [height, width], "float32");
    }
    return ndarray(reply.depth!, [height, width], "float32");
  }

  /** A frame buffer in shared memory: the worker reads it without a copy on the main thread. */
  createInput(height: number, width: number, channels: 3 | 4 = 3): NdArray<"uint8"> {
    this.#assertUsable();
    return ndarray(new Uint8Array(new SharedArrayBuffer(height * width * channels)), [height, width, channels], "uint8");
  }

  /** A depth buffer in shared memory: the worker writes the result straight into it. */
  createOutput(height: number, width: number): NdArray<"float32"> {
    this.#assertUsable();
    return ndarray(new Float32Array(new SharedArrayBuffer(height * width * 4)), [height, width], "float32");
  }

  dispose(): Promise<void> {
    this.#disposing ??= this.#close();
    return this.#disposing;
  }

  async #close(): Promise<void> {
    // Runs already posted finish first: the worker handles messages in order.
    try {
      if (!this.#failure) await this.request({ type: "close", id: this.nextId() });
    } finally {
      await this.#worker.terminate();
    }
  }
}

/**
 * Opens an ONNX model (path; external data beside it is memory-mapped) in ONNX Runtime on the CPU,
 * in a worker thread.
 * @throws {RuntimeFailureError} when ONNX Runtime cannot load the model.
 */
export async function openOnnxRuntime(path: string, options: OnnxRuntimeOptions = {}): Promise<OnnxRuntimeSession> {
  assertString("path", path);
  assertOptions("options", options, ["threads"]);
  if (options.threads !== undefined) assertIntegerInRange("options.threads", options.threads, 1, MAX_THREADS);
  const worker = startWorker(workerUrl);
  worker.unref();
  const session = new OnnxRuntimeSession(worker, path);
  try {
    await session.request({ type: "open", id: session.nextId(), path, options: { threads: options.threads } });
  } catch (error) {
    await worker.terminate();
    throw error;
  }
  return session;
}
