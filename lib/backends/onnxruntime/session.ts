/**
 * The ONNX Runtime backend: runs a converted model on the CPU, everywhere. The session lives in a
 * worker thread (see worker.ts) so inference never blocks the event loop.
 *
 * Buffers: a frame in shared memory (from {@link OnnxRuntimeSession.createInput}) is read by the
 * worker directly; any other frame is copied once into a pooled buffer that is transferred to the
 * worker and back. The depth comes back as a transferred buffer, or is written by the worker into a
 * shared `out` buffer (from {@link OnnxRuntimeSession.createOutput}).
 * @module
 */
import { availableParallelism } from "node:os";
import { BackendUnavailableError, DisposedError, RuntimeFailureError } from "../../errors.js";
import { assertIntegerInRange, assertOptions, assertString } from "../../is.js";
import { ndarray, type NdArray } from "../../ndarray/ndarray.js";
import { siblingModule } from "../../threads/start_worker.js";
import { WorkerClient } from "../../threads/rpc.js";
import type { BackendSession, RunOptions } from "../backend.js";
import type { OpenRequest, RunRequest, RunResult, WorkerFrame } from "./protocol.js";

/** Options of {@link openOnnxRuntime}. */
export interface OnnxRuntimeOptions {
  /** Intra-op threads of the session; default: one per physical core, as ONNX Runtime chooses. */
  threads?: number;
  /**
   * Keep ONNX Runtime's optimized graph beside the model (files starting with `prefix`, hashes
   * remembered in `cacheRoot`), so the next session opens it without optimizing again.
   */
  optimizedCache?: { prefix: string; cacheRoot: string };
}

/** The most intra-op threads a session may ask for: beyond a few per core they only contend. */
export const MAX_THREADS = 4 * availableParallelism();

const workerUrl = siblingModule("worker", import.meta.url);

/** An ONNX model open in ONNX Runtime on the CPU. Create with {@link openOnnxRuntime}. */
export class OnnxRuntimeSession implements BackendSession {
  readonly backend = "onnxruntime" as const;
  readonly #worker: WorkerClient;
  readonly #path: string;
  /** Transferable input buffers handed back by the worker, reused to avoid reallocating per frame. */
  readonly #inputPool: ArrayBuffer[] = [];
  #disposing: Promise<void> | undefined;

  /** @internal use {@link openOnnxRuntime} */
  constructor(worker: WorkerClient, path: string) {
    this.#worker = worker;
    this.#path = path;
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
    const shared = out && out.buffer instanceof SharedArrayBuffer ? { buffer: out.buffer, byteOffset: out.byteOffset } : undefined;
    const { message, transfer } = this.#transferableFrame(frame);
    const request: RunRequest = { frame: message, ...(shared ? { out: shared } : {}) };
    let reply: RunResult;
    try {
      reply = await this.#worker.call<RunResult>("run", request, { transfer });
    } catch (error) {
      throw new RuntimeFailureError(`ONNX Runtime failed on ${this.#path}: ${(error as Error).message}`, { file: this.#path, cause: error });
    }
    if (reply.returnedInput) this.#inputPool.push(reply.returnedInput);
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

  /** Runs already posted finish first (the worker answers in order), then the worker stops. */
  dispose(): Promise<void> {
    this.#disposing ??= this.#worker
      .call("close", undefined)
      .catch(() => undefined)
      .then(() => this.#worker.close());
    return this.#disposing;
  }
}

/**
 * Opens an ONNX model (path; external data beside it is memory-mapped) in ONNX Runtime on the CPU,
 * in a worker thread.
 * @throws {@link endosynth!RuntimeFailureError | RuntimeFailureError} when ONNX Runtime cannot load the model.
 * @throws {@link endosynth!BackendUnavailableError | BackendUnavailableError} when no ONNX Runtime exists for this platform.
 */
export async function openOnnxRuntime(path: string, options: OnnxRuntimeOptions = {}): Promise<OnnxRuntimeSession> {
  assertString("path", path);
  assertOptions("options", options, ["threads", "optimizedCache"]);
  if (options.threads !== undefined) assertIntegerInRange("options.threads", options.threads, 1, MAX_THREADS);
  const worker = new WorkerClient(workerUrl, `the ONNX Runtime worker running ${path}`);
  const request: OpenRequest = {
    path,
    ...(options.threads === undefined ? {} : { threads: options.threads }),
    ...(options.optimizedCache ? { optimizedCache: options.optimizedCache } : {}),
  };
  try {
    await worker.call("open", request);
  } catch (error) {
    await worker.close();
    if (error instanceof BackendUnavailableError) throw error;
    throw new RuntimeFailureError(`ONNX Runtime failed on ${path}: ${(error as Error).message}`, { file: path, cause: error });
  }
  return new OnnxRuntimeSession(worker, path);
}
