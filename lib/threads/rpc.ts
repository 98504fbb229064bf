/**
 * One way to run work in a worker thread: calls with ids, answered in order, with events
 * (progress) on the way, abort by AbortSignal, transferred buffers both ways, and errors that keep
 * their class, code, file and key (see transferred_error.ts). Every worker of the package (ONNX
 * Runtime sessions, checkpoint conversion) is a {@link WorkerClient} on this side and
 * {@link serveCalls} on the other.
 * @module
 */
import { parentPort, type Transferable, type Worker } from "node:worker_threads";
import { AbortError, RuntimeFailureError } from "../errors.js";
import { startWorker } from "./start_worker.js";
import { rebuiltError, transferableError, type TransferredError } from "./transferred_error.js";

type ToWorker = { kind: "call"; id: number; method: string; payload: unknown } | { kind: "abort"; id: number };

type FromWorker =
  | { kind: "event"; id: number; event: unknown }
  | { kind: "result"; id: number; result: unknown }
  | { kind: "error"; id: number; error: TransferredError };

/** Options of one {@link WorkerClient.call}. */
export interface CallOptions<Event> {
  /** Buffers moved to the worker with the payload. */
  transfer?: readonly Transferable[];
  /** Receives the events the handler emits while it runs. */
  onEvent?: (event: Event) => void;
  /** Asks the handler to stop (its `signal` aborts); the call still settles with its outcome. */
  signal?: AbortSignal;
  /** An Error made in the caller's own call: a failure is rethrown with its stack. */
  callSite?: Error;
}

interface PendingCall {
  resolve: (result: unknown) => void;
  reject: (error: Error) => void;
  onEvent: ((event: unknown) => void) | undefined;
  callSite: Error | undefined;
  detachAbort: () => void;
}

/**
 * The caller's side of a worker. The worker is unref'd while idle, so an open session never keeps
 * the process alive, and ref'd while a call is pending, so awaiting one does.
 */
export class WorkerClient {
  readonly #worker: Worker;
  /** What the worker is for, in error messages ("the ONNX Runtime worker running x.onnx"). */
  readonly #description: string;
  readonly #pending = new Map<number, PendingCall>();
  readonly #inFlight = new Set<Promise<unknown>>();
  #nextId = 1;
  #failure: Error | undefined;
  #closing: Promise<void> | undefined;

  /** Starts the worker module at `moduleUrl` (see start_worker.ts). */
  constructor(moduleUrl: URL, description: string, workerData?: unknown) {
    this.#description = description;
    this.#worker = startWorker(moduleUrl, workerData === undefined ? {} : { workerData });
    this.#worker.unref();
    this.#worker.on("message", (message: FromWorker) => this.#receive(message));
    this.#worker.on("error", (error) => this.#fail(new RuntimeFailureError(`${capitalised(description)} crashed: ${error.message}`, { cause: error })));
    this.#worker.on("exit", (code) => {
      if (!this.#closing) this.#fail(new RuntimeFailureError(`${capitalised(description)} exited unexpectedly with code ${code}`));
    });
  }

  /** Calls `method` in the worker; resolves with its result, rejects with its error rebuilt. */
  call<Result, Event = never>(method: string, payload: unknown, options: CallOptions<Event> = {}): Promise<Result> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#closing) return Promise.reject(new RuntimeFailureError(`${capitalised(this.#description)} is closing`));
    const id = this.#nextId++;
    const promise = new Promise<Result>((resolve, reject) => {
      const { signal } = options;
      const abort = (): void => this.#post({ kind: "abort", id });
      signal?.addEventListener("abort", abort, { once: true });
      if (this.#pending.size === 0) this.#worker.ref();
      this.#pending.set(id, {
        resolve: resolve as (result: unknown) => void,
        reject,
        onEvent: options.onEvent as ((event: unknown) => void) | undefined,
        callSite: options.callSite,
        detachAbort: () => signal?.removeEventListener("abort", abort),
      });
      this.#post({ kind: "call", id, method, payload }, options.transfer);
      if (signal?.aborted) abort();
    });
    this.#inFlight.add(promise);
    const forget = (): void => void this.#inFlight.delete(promise);
    promise.then(forget, forget);
    return promise;
  }

  /** Lets the calls already made finish, then stops the worker. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= Promise.allSettled([...this.#inFlight]).then(async () => void (await this.#worker.terminate()));
    return this.#closing;
  }

  #post(message: ToWorker, transfer: readonly Transferable[] = []): void {
    this.#worker.postMessage(message, transfer as Transferable[]);
  }

  #receive(message: FromWorker): void {
    const call = this.#pending.get(message.id);
    if (!call) return;
    if (message.kind === "event") {
      call.onEvent?.(message.event);
      return;
    }
    this.#settle(message.id, call);
    if (message.kind === "result") call.resolve(message.result);
    else call.reject(rebuiltError(message.error, call.callSite));
  }

  #settle(id: number, call: PendingCall): void {
    call.detachAbort();
    this.#pending.delete(id);
    if (this.#pending.size === 0) this.#worker.unref();
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    for (const [id, call] of this.#pending) {
      this.#settle(id, call);
      call.reject(error);
    }
  }
}

function capitalised(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** What a handler in the worker gets besides its payload. */
export interface CallContext<Event> {
  /** Sends an event to the caller's `onEvent`. */
  emit(event: Event): void;
  /** Aborts when the caller's signal does. */
  signal: AbortSignal;
  /** Buffers to move (not copy) to the caller with the result. */
  transfer(...buffers: Transferable[]): void;
}

/** A handler of one method: its result (plain data) goes back to the caller. */
export type CallHandler = (payload: never, context: CallContext<never>) => unknown;

/**
 * The worker's side: answers calls with `handlers[method]`, one at a time in the order they came
 * (an ONNX Runtime run blocks the thread anyway, and order keeps replies matched), while aborts are
 * handled at once. An aborted handler that returns normally still resolves; one that throws
 * rejects with its error, `AbortError` included.
 */
export function serveCalls(handlers: Record<string, CallHandler>): void {
  if (!parentPort) throw new Error("serveCalls must run in a worker thread");
  const port = parentPort;
  const aborts = new Map<number, AbortController>();
  let queue = Promise.resolve();
  port.on("message", (message: ToWorker) => {
    if (message.kind === "abort") {
      aborts.get(message.id)?.abort(new AbortError("The call was aborted"));
      return;
    }
    const controller = new AbortController();
    aborts.set(message.id, controller);
    queue = queue.then(async () => {
      const transfer: Transferable[] = [];
      const context: CallContext<unknown> = {
        emit: (event) => port.postMessage({ kind: "event", id: message.id, event } satisfies FromWorker),
        signal: controller.signal,
        transfer: (...buffers) => transfer.push(...buffers),
      };
      try {
        const handler = handlers[message.method];
        if (!handler) throw new Error(`no method ${message.method} in this worker`);
        const result = await (handler as (payload: unknown, context: CallContext<unknown>) => unknown)(message.payload, context);
        port.postMessage({ kind: "result", id: message.id, result } satisfies FromWorker, transfer);
      } catch (error) {
        port.postMessage({ kind: "error", id: message.id, error: transferableError(error) } satisfies FromWorker);
      } finally {
        aborts.delete(message.id);
      }
    });
  });
}
