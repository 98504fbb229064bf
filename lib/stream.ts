/**
 * Frame streams: run a depth model over a sequence of frames (a video, a camera, a folder) with
 * several frames in flight, so decoding, pre/post-processing and the network overlap, and get the
 * results back in the frames' order.
 *
 * @example
 * ```ts
 * import { load, readVideoFrames, streamDepth } from "endosynth";
 * const model = await load("dav2");
 * for await (const { index, depth } of streamDepth(model, readVideoFrames("clip.mp4"), { inflight: 2 })) {
 *   console.log(index, depth.data[0]);
 * }
 * ```
 * @module
 */
import { AbortError, InputError } from "./errors.js";
import { assertAbortSignal, assertIntegerInRange, assertOptions, describe } from "./is.js";
import type { NdArray } from "./ndarray/ndarray.js";

/** What {@link streamDepth} needs of a model: a loaded `Model` satisfies it. */
export interface DepthModel {
  /** The model's name, e.g. `"dav1"`. */
  readonly name: string;
  /** uint8 [H, W, 3|4] frame → float32 [H, W] metres; several calls may be in flight at once. */
  infer(frame: NdArray<"uint8">, options?: { out?: Float32Array }): Promise<NdArray<"float32">>;
}

/** A frame with data of the caller's riding along: `{ frame, timestamp, path, ... }`. */
export interface FrameWithData {
  /** The frame, uint8 [H, W, 3|4]. */
  frame: NdArray<"uint8">;
}

/** What a stream takes: bare frames, or objects carrying one in `frame`. */
export type StreamSource = NdArray<"uint8"> | FrameWithData;

/** One result: the frame's position in the stream, the frame and its depth. */
export interface DepthFrame {
  /** 0-based position of the frame in the source. */
  index: number;
  /** The frame given. */
  frame: NdArray<"uint8">;
  /** float32 [H, W] metres. */
  depth: NdArray<"float32">;
}

/**
 * What a stream yields for an input type: `{ index, frame, depth }`, plus the other properties of
 * the input object when frames come as {@link FrameWithData}s.
 */
export type StreamItem<T extends StreamSource> = T extends FrameWithData ? Omit<T, keyof DepthFrame> & DepthFrame : DepthFrame;

/** Options of {@link streamDepth}. */
export interface StreamOptions {
  /**
   * Frames inferred concurrently (1..64, default 2). While the consumer handles one result, up to
   * this many following frames are being inferred; the source is never read further ahead.
   */
  inflight?: number;
  /** Aborting it stops the stream with an {@link AbortError}. */
  signal?: AbortSignal;
}

type Settled = { ok: true; value: DepthFrame & Record<string, unknown> } | { ok: false; error: unknown };

function isFrameWithData(item: unknown): item is FrameWithData {
  return typeof item === "object" && item !== null && "frame" in item;
}

function iteratorOf<T>(frames: Iterable<T> | AsyncIterable<T>): Iterator<T> | AsyncIterator<T> {
  if (frames !== null && typeof frames === "object") {
    if (Symbol.asyncIterator in frames) return frames[Symbol.asyncIterator]();
    if (Symbol.iterator in frames) return frames[Symbol.iterator]();
  }
  throw new InputError(`Expected an iterable or async iterable of frames for frames but received ${describe(frames)}`, { key: "frames" });
}

function abortReason(signal: AbortSignal): AbortError {
  return signal.reason instanceof AbortError ? signal.reason : new AbortError("The depth stream was aborted", { cause: signal.reason });
}

/** Resolves with `promise`, or rejects with an AbortError as soon as `signal` aborts. */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(abortReason(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortReason(signal));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => (signal.removeEventListener("abort", onAbort), resolve(value)),
      (error) => (signal.removeEventListener("abort", onAbort), reject(error)),
    );
  });
}

/** Starts one frame's inference; never rejects (errors are kept for when its turn comes). */
function startInference(model: DepthModel, item: unknown, index: number): Promise<Settled> {
  const frame = isFrameWithData(item) ? item.frame : item;
  const extra = isFrameWithData(item) ? item : {};
  const run = async (): Promise<Settled> => {
    if (typeof frame !== "object" || frame === null || !("shape" in frame)) {
      throw new InputError(
        `Expected an NdArray<"uint8"> or an object { frame } for frame ${index} but received ${describe(item)}`,
        { key: `frames[${index}]` },
      );
    }
    const depth = await model.infer(frame as NdArray<"uint8">);
    return { ok: true, value: { ...extra, index, frame: frame as NdArray<"uint8">, depth } };
  };
  return run().catch((error: unknown) => ({ ok: false, error }));
}

/**
 * Runs `model` over `frames` and yields `{ index, frame, depth }` in the frames' order, keeping up
 * to `inflight` inferences running.
 *
 * - **Pipelining and back-pressure**: frames are pulled from the source in the background whenever
 *   fewer than `inflight` pulled frames await delivery, so decoding, inference and the consumer's own
 *   work on a result overlap; at most `inflight` frames are ever read ahead of the result the
 *   consumer holds. A result is yielded as soon as it is ready, never held back by a slow source.
 * - **Cancellation**: breaking out of the `for await` (or `return()` on the iterator) waits for the
 *   inferences still running, discards their results and closes the source (`return()` on its
 *   iterator). An aborted `signal` rejects with {@link AbortError} and cleans up the same way.
 * - **Errors**: a frame whose inference fails (or that is not a frame), or a source that throws,
 *   ends the stream with that error in order: the results before it are delivered first.
 *
 * @param frames NdArray uint8 [H, W, 3|4] frames, or `{ frame, ...yours }` objects whose other
 * properties are passed through to the results.
 * @throws {@link endosynth!InputError | InputError} for bad options or a `frames` that is not iterable (at the first `next()`).
 */
export async function* streamDepth<T extends StreamSource>(
  model: DepthModel,
  frames: Iterable<T> | AsyncIterable<T>,
  options?: StreamOptions,
): AsyncGenerator<StreamItem<T>, void, undefined> {
  assertOptions("options", options as unknown, ["inflight", "signal"]);
  const inflight = options?.inflight ?? 2;
  assertIntegerInRange("options.inflight", inflight, 1, 64);
  const signal = options?.signal;
  if (signal !== undefined) assertAbortSignal("options.signal", signal);
  if (typeof model?.infer !== "function") {
    throw new InputError(`Expected a model with an infer() method for model but received ${describe(model)}`, { key: "model" });
  }
  const source = iteratorOf(frames);
  const pending: Promise<Settled>[] = [];
  let exhausted = false;
  let stopped = false;
  let sourceError: { error: unknown } | undefined;
  let index = 0;
  let wake: (() => void) | undefined;
  const notify = () => {
    wake?.();
    wake = undefined;
  };

  let pulling = false;
  const pull = async () => {
    pulling = true;
    try {
      while (!exhausted && !stopped && pending.length < inflight) {
        const next = await source.next();
        if (next.done) exhausted = true;
        else if (!stopped) pending.push(startInference(model, next.value, index++));
        notify();
      }
    } catch (error) {
      sourceError = { error };
      exhausted = true;
      notify();
    } finally {
      pulling = false;
    }
  };
  const startPulling = () => {
    if (!pulling) void pull();
  };

  try {
    for (;;) {
      startPulling();
      while (pending.length === 0 && !exhausted) await raceAbort(new Promise<void>((resolve) => (wake = resolve)), signal);
      const head = pending[0];
      if (head === undefined) {
        if (sourceError) throw sourceError.error;
        return;
      }
      const settled = await raceAbort(head, signal);
      pending.shift();
      if (!settled.ok) throw settled.error;
      startPulling();
      yield settled.value as StreamItem<T>;
      if (signal?.aborted) throw abortReason(signal);
    }
  } finally {
    stopped = true;
    await Promise.all(pending);
    if (!exhausted) {
      // An async source still busy with a next() would only run return() after it: do not wait for that.
      const closing = Promise.resolve(source.return?.());
      if (!pulling) await closing;
      else closing.catch(() => undefined);
    }
  }
}
