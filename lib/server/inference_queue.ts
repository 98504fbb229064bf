/**
 * Admission and scheduling of inferences: at most `inflight` frames run on the model at once, at
 * most `waiting` more are admitted to wait their turn, and anything beyond is refused at once
 * (503 with Retry-After) instead of piling up. A request is admitted *before* its body is read, so
 * the memory held by uploads and queued frames is bounded by (inflight + waiting) bodies.
 * @module
 */
import type { NdArray } from "../ndarray/ndarray.js";
import type { DepthModel } from "../stream.js";
import { HttpError } from "./http_error.js";

/** A place in the queue: run one inference with it, then release it. */
export interface Admission {
  /** Waits for a free slot (FIFO), then infers; rejects with a 504 HttpError as soon as `deadline` aborts. */
  infer(frame: NdArray<"uint8">, deadline?: AbortSignal): Promise<NdArray<"float32">>;
  /** Gives the place back (idempotent); a running inference keeps its slot until it settles. */
  release(): void;
}

/** Queue sizes. */
export interface QueueLimits {
  /** Inferences running on the model at once. */
  inflight: number;
  /** Admitted requests waiting beyond those running. */
  waiting: number;
}

/** A smoothing factor for the mean inference time that Retry-After is estimated from. */
const MEAN_WEIGHT = 0.2;

export class InferenceQueue {
  readonly #model: DepthModel;
  readonly #limits: QueueLimits;
  #admitted = 0;
  #running = 0;
  readonly #turns: (() => void)[] = [];
  #meanInferMs: number | undefined;

  constructor(model: DepthModel, limits: QueueLimits) {
    this.#model = model;
    this.#limits = limits;
  }

  /** Inferences running now. */
  get running(): number {
    return this.#running;
  }

  /** Admitted requests not yet running (reading their body, decoding, or waiting for a slot). */
  get waiting(): number {
    return this.#admitted - this.#running;
  }

  /**
   * A place in the queue, or a 503 HttpError (with Retry-After) when it is full.
   * @param options.evenIfFull admit anyway: for the one frame the server's own live source has in hand.
   */
  admit(options: { evenIfFull?: boolean } = {}): Admission {
    if (!options.evenIfFull && this.#admitted >= this.#limits.inflight + this.#limits.waiting) {
      throw new HttpError(503, `The server is busy: ${this.#running} frames are being inferred and ${this.waiting} wait; retry later`, {
        headers: { "Retry-After": String(this.#retryAfterSeconds()) },
      });
    }
    this.#admitted++;
    let released = false;
    let inference: Promise<unknown> | undefined;
    const giveBack = () => {
      this.#admitted--;
    };
    return {
      infer: (frame, deadline) => {
        const running = this.#infer(frame, deadline);
        inference = running;
        return raceDeadline(running, deadline);
      },
      release: () => {
        if (released) return;
        released = true;
        // A timed-out request still occupies the model until its inference ends.
        if (inference) void inference.then(giveBack, giveBack);
        else giveBack();
      },
    };
  }

  /** Seconds until a place is likely free: the work ahead divided among the slots. */
  #retryAfterSeconds(): number {
    const perFrameMs = this.#meanInferMs ?? 1000;
    return Math.max(1, Math.ceil((this.#admitted * perFrameMs) / this.#limits.inflight / 1000));
  }

  async #infer(frame: NdArray<"uint8">, deadline: AbortSignal | undefined): Promise<NdArray<"float32">> {
    await this.#turn(deadline);
    const started = performance.now();
    try {
      return await this.#model.infer(frame);
    } finally {
      const took = performance.now() - started;
      this.#meanInferMs = this.#meanInferMs === undefined ? took : this.#meanInferMs + MEAN_WEIGHT * (took - this.#meanInferMs);
      this.#running--;
      this.#turns.shift()?.();
    }
  }

  /** Resolves when a slot is this caller's (the slot is counted as running from then on). */
  #turn(deadline: AbortSignal | undefined): Promise<void> {
    if (deadline?.aborted) return Promise.reject(timedOut(deadline));
    if (this.#running < this.#limits.inflight) {
      this.#running++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const go = () => {
        deadline?.removeEventListener("abort", giveUp);
        this.#running++;
        resolve();
      };
      const giveUp = () => {
        this.#turns.splice(this.#turns.indexOf(go), 1);
        reject(timedOut(deadline!));
      };
      deadline?.addEventListener("abort", giveUp, { once: true });
      this.#turns.push(go);
    });
  }
}

/** `promise`, or a 504 as soon as `deadline` aborts (the work itself goes on: inferences cannot be cancelled). */
function raceDeadline<T>(promise: Promise<T>, deadline: AbortSignal | undefined): Promise<T> {
  if (!deadline) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(timedOut(deadline));
    if (deadline.aborted) onAbort();
    else deadline.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => (deadline.removeEventListener("abort", onAbort), resolve(value)),
      (error: unknown) => (deadline.removeEventListener("abort", onAbort), reject(error)),
    );
  });
}

/** The 504 of a request whose deadline passed (the signal's reason says which deadline). */
export function timedOut(deadline: AbortSignal): HttpError {
  return deadline.reason instanceof HttpError ? deadline.reason : new HttpError(504, "The request timed out");
}
