/**
 * A fixed pool of evaluation workers (sample_worker.ts): each call goes to the next idle worker,
 * in the order the calls were made, and resolves with its reply (errors rebuilt with their class,
 * code, file and key).
 * @internal
 * @module
 */
import { availableParallelism } from "node:os";
import type { Worker } from "node:worker_threads";
import { RuntimeFailureError } from "../errors.js";
import type { NdArray } from "../ndarray/ndarray.js";
import { siblingModule, startWorker } from "../threads/start_worker.js";
import { rebuiltError } from "../threads/transferred_error.js";
import type { EvaluateReply, EvaluateRequest, SampleArrays, WorkerReply, WorkerRequest } from "./sample_worker.js";

const workerUrl = siblingModule("sample_worker", import.meta.url);

/** Workers by default: one per core but the one feeding the models, at least 1 and at most 8. */
export function defaultJobs(): number {
  return Math.max(1, Math.min(8, availableParallelism() - 1));
}

interface Call {
  request: WorkerRequest;
  transfer: ArrayBuffer[];
  resolve: (result: unknown) => void;
  reject: (error: Error) => void;
  callSite: Error;
}

/** The pool; {@link close} it when done (its threads keep the process alive). */
export class WorkerPool {
  readonly #idle: Worker[] = [];
  readonly #queue: Call[] = [];
  readonly #running = new Map<Worker, Call>();
  readonly #workers: Worker[] = [];
  #nextId = 0;
  #failure: Error | undefined;

  constructor(size: number) {
    for (let k = 0; k < size; k++) {
      const worker = startWorker(workerUrl);
      worker.on("message", (reply: WorkerReply) => this.#settle(worker, reply));
      worker.on("error", (error) => this.#fail(new RuntimeFailureError(`An evaluation worker failed: ${error.message}`, { cause: error })));
      worker.on("exit", (code) => this.#fail(new RuntimeFailureError(`An evaluation worker exited with code ${code}`)));
      this.#workers.push(worker);
      this.#idle.push(worker);
    }
  }

  /** Reads and checks a sample (see readSample); depth comes back as raw float16 bits. */
  read(path: string): Promise<SampleArrays> {
    return this.#call({ id: this.#nextId++, method: "read", path }, []) as Promise<SampleArrays>;
  }

  /** Metrics and depth profile of each prediction; the arrays are transferred (unusable here after). */
  evaluate(request: EvaluateRequest): Promise<EvaluateReply> {
    const arrays: NdArray[] = [request.depth, request.seg, ...request.predictions];
    const transfer = [...new Set(arrays.map((array) => array.data.buffer as ArrayBuffer))];
    return this.#call({ id: this.#nextId++, method: "evaluate", request }, transfer) as Promise<EvaluateReply>;
  }

  /** Stops every worker; calls still queued or running reject. */
  async close(): Promise<void> {
    this.#fail(new RuntimeFailureError("The evaluation workers were closed"));
    await Promise.all(this.#workers.map((worker) => worker.terminate()));
  }

  #call(request: WorkerRequest, transfer: ArrayBuffer[]): Promise<unknown> {
    const callSite = new Error("evaluation worker call");
    return new Promise((resolve, reject) => {
      if (this.#failure) return reject(this.#failure);
      this.#queue.push({ request, transfer, resolve, reject, callSite });
      this.#dispatch();
    });
  }

  #dispatch(): void {
    while (this.#idle.length > 0 && this.#queue.length > 0) {
      const worker = this.#idle.shift()!;
      const call = this.#queue.shift()!;
      this.#running.set(worker, call);
      worker.postMessage(call.request, call.transfer);
    }
  }

  #settle(worker: Worker, reply: WorkerReply): void {
    const call = this.#running.get(worker);
    this.#running.delete(worker);
    this.#idle.push(worker);
    if (call) {
      if ("error" in reply) call.reject(rebuiltError(reply.error, call.callSite));
      else call.resolve(reply.result);
    }
    this.#dispatch();
  }

  /** A worker died or the pool closed: nothing more can run. */
  #fail(error: Error): void {
    this.#failure ??= error;
    for (const call of [...this.#running.values(), ...this.#queue.splice(0)]) call.reject(this.#failure);
    this.#running.clear();
  }
}
