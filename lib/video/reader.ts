/**
 * Frames from a video file or a live source, decoded by ffmpeg into raw RGB over a pipe, each with
 * its timestamp (pts).
 *
 * - **Files** are read as fast as the consumer asks: ffmpeg blocks on a full pipe rather than
 *   racing ahead, and every frame is delivered.
 * - **Live sources** (network streams, capture devices) never wait for the consumer: ffmpeg is read
 *   continuously and, by default, only the newest frame is kept (`queue: "drop"`): a consumer
 *   slower than the source gets the latest picture, not one from seconds ago, and each frame says
 *   how many were dropped so far. `queue: "block"` delivers every frame instead, with
 *   back-pressure on ffmpeg (on UDP, a source that keeps sending then overruns its buffers).
 * @module
 */
import type { Readable } from "node:stream";
import { AbortError, FileFormatError, RuntimeFailureError } from "../errors.js";
import { assertAbortSignal, assertFunction, assertOneOf, assertOptions, invalidParameter, isFiniteNumber } from "../is.js";
import { expectArray, type NdArray } from "../ndarray/ndarray.js";
import { DecoderLog, type FrameInfo, LOG_LEVEL_ARGS } from "./decoder_log.js";
import { FFMPEG_OPTION_KEYS, type FfmpegOptions, type FfmpegPrograms, findFfmpegPrograms, programOptions } from "./discovery.js";
import { probeWith, type VideoInfo } from "./probe.js";
import { describeExit, type Exit, exitOf, type FfmpegDialect, ffmpegDialect, start } from "./process.js";
import { parseSource, type SourceSpec } from "./source.js";

/** What a reader does with frames that arrive while the consumer is busy. */
export type QueuePolicy = "block" | "drop";

/** A decoded frame with its timing. */
export interface VideoFrame {
  /** uint8 [H, W, 3] RGB. */
  frame: NdArray<"uint8">;
  /** 0-based number of the frame among those ffmpeg decoded: gaps are frames dropped. */
  frameNumber: number;
  /** Presentation timestamp in seconds on the source's timeline (ffmpeg starts it near 0); NaN when the source gives none. */
  pts: number;
  /** `performance.now()` when the whole frame had arrived in this process: latency is measured from here. */
  capturedAt: number;
  /** Frames dropped so far (newest-wins queue); always 0 with `queue: "block"`. */
  dropped: number;
}

/** Something wrong with a video that did not stop it: the frames read are still valid. */
export interface VideoWarning {
  /**
   * `"incomplete"`: fewer frames than the file states (truncated or damaged);
   * `"decode-errors"`: ffmpeg reported errors while decoding (corrupt data, lost packets).
   */
  kind: "incomplete" | "decode-errors";
  /** The source it concerns. */
  source: string;
  /** What happened, how many frames were read, and ffmpeg's first error lines. */
  message: string;
  /** Frames decoded. */
  framesRead: number;
  /** Frames the file states it holds (or its duration times its frame rate), when known. */
  framesExpected?: number;
}

/** Options of {@link readVideo} and {@link readVideoFrames}. */
export interface ReadVideoOptions extends FfmpegOptions {
  /**
   * Gives the buffer each frame is decoded into, uint8 [height, width, 3]: e.g. one of a ring of
   * `model.createInput` buffers (pinned memory on TensorRT: no copy between decoding and the GPU),
   * with as many buffers as frames can be held at once (frames in flight + 2). It must not return a
   * buffer still in use. Called as a frame's first bytes arrive; with `queue: "drop"`, a dropped
   * frame's buffer is reused without a call. Default: a new array per frame.
   */
  allocate?: (height: number, width: number) => NdArray<"uint8">;
  /** `"drop"` (default for live sources): keep only the newest frame; `"block"` (default for files): every frame, with back-pressure. */
  queue?: QueuePolicy;
  /** Read only this many seconds of the source (ffmpeg's `-t`): then the frames end normally. */
  duration?: number;
  /** Further ffmpeg input options, before the source: e.g. `["-video_size", "1280x720", "-framerate", "30"]` for a camera. */
  inputArgs?: string[];
  /** Receives what went wrong without stopping the frames (a truncated file, decoding errors), once, when reading ends. */
  onWarning?: (warning: VideoWarning) => void;
  /** Aborting it stops ffmpeg; the frames then end with an {@link AbortError}. */
  signal?: AbortSignal;
}

const READ_OPTION_KEYS = [...FFMPEG_OPTION_KEYS, "allocate", "queue", "duration", "inputArgs", "onWarning", "signal"];

interface CheckedReadOptions {
  allocate?: (height: number, width: number) => NdArray<"uint8">;
  queue: QueuePolicy;
  duration?: number;
  inputArgs: string[];
  onWarning?: (warning: VideoWarning) => void;
  signal?: AbortSignal;
}

function checkReadOptions(spec: SourceSpec, options: ReadVideoOptions | undefined): CheckedReadOptions {
  assertOptions("options", options as unknown, READ_OPTION_KEYS);
  const checked: CheckedReadOptions = { queue: options?.queue ?? (spec.live ? "drop" : "block"), inputArgs: options?.inputArgs ?? [] };
  assertOneOf("options.queue", checked.queue, ["block", "drop"] as const);
  if (options?.allocate !== undefined) {
    if (typeof options.allocate !== "function") throw invalidParameter("options.allocate", "a function (height, width) => NdArray", options.allocate);
    checked.allocate = options.allocate;
  }
  if (options?.duration !== undefined) {
    if (!isFiniteNumber(options.duration) || options.duration <= 0) throw invalidParameter("options.duration", "a positive number of seconds", options.duration);
    checked.duration = options.duration;
  }
  if (!Array.isArray(checked.inputArgs) || !checked.inputArgs.every((arg) => typeof arg === "string")) {
    throw invalidParameter("options.inputArgs", "an array of strings", checked.inputArgs);
  }
  if (options?.onWarning !== undefined) {
    assertFunction("options.onWarning", options.onWarning);
    checked.onWarning = options.onWarning;
  }
  if (options?.signal !== undefined) {
    assertAbortSignal("options.signal", options.signal);
    checked.signal = options.signal;
  }
  return checked;
}

/** Frame buffers: the caller's `allocate`, or new arrays; frames never handed out are reused. */
class FrameBuffers {
  readonly #allocate: ((height: number, width: number) => NdArray<"uint8">) | undefined;
  readonly #spare: NdArray<"uint8">[] = [];

  constructor(allocate: ((height: number, width: number) => NdArray<"uint8">) | undefined) {
    this.#allocate = allocate;
  }

  take(height: number, width: number): NdArray<"uint8"> {
    const spare = this.#spare.pop();
    if (spare && spare.shape[0] === height && spare.shape[1] === width) return spare;
    if (!this.#allocate) return { data: new Uint8Array(width * height * 3), shape: [height, width, 3], dtype: "uint8" };
    return expectArray(this.#allocate(height, width), "the frame from options.allocate", "uint8", [height, width, 3]);
  }

  recycle(frame: NdArray<"uint8">): void {
    this.#spare.push(frame);
  }
}

/** Counts kept while decoding, for the end-of-stream checks. */
interface DecodeState {
  decoded: number;
  /** Bytes of a frame begun but not finished. */
  partial: number;
}

type TimedFrame = Omit<VideoFrame, "dropped">;

/** Cuts ffmpeg's byte stream into frames, each sized and timed by its announcement on stderr. */
async function* assembleFrames(stdout: Readable, log: DecoderLog, buffers: FrameBuffers, state: DecodeState): AsyncGenerator<TimedFrame> {
  let current: { info: FrameInfo; frame: NdArray<"uint8">; filled: number } | undefined;
  for await (const chunk of stdout as AsyncIterable<Buffer>) {
    let at = 0;
    while (at < chunk.length) {
      if (!current) {
        const info = await log.next();
        if (!info) {
          throw new RuntimeFailureError("ffmpeg sent frame data without announcing the frame on stderr (endosynth needs ffmpeg 4.1 or later)");
        }
        if (info.n !== state.decoded) throw new RuntimeFailureError(`ffmpeg announced frame ${info.n} where frame ${state.decoded} was due`);
        current = { info, frame: buffers.take(info.height, info.width), filled: 0 };
      }
      const frameBytes = current.frame.data.length;
      const take = Math.min(frameBytes - current.filled, chunk.length - at);
      current.frame.data.set(chunk.subarray(at, at + take), current.filled);
      current.filled += take;
      at += take;
      state.partial = current.filled;
      if (current.filled === frameBytes) {
        const { info, frame } = current;
        current = undefined;
        state.partial = 0;
        state.decoded++;
        yield { frame, frameNumber: info.n, pts: info.pts, capturedAt: performance.now() };
      }
    }
  }
}

/** A one-frame mailbox where a newer frame replaces one not yet taken. */
class LatestFrame {
  #frame: TimedFrame | undefined;
  #end: { error?: unknown } | undefined;
  #wake: (() => void) | undefined;
  dropped = 0;

  /** Stores a frame; returns the one it replaced (dropped), if any. */
  put(frame: TimedFrame): TimedFrame | undefined {
    const displaced = this.#frame;
    if (displaced) this.dropped++;
    this.#frame = frame;
    this.#notify();
    return displaced;
  }

  finish(error?: unknown): void {
    this.#end = error === undefined ? {} : { error };
    this.#notify();
  }

  #notify(): void {
    this.#wake?.();
    this.#wake = undefined;
  }

  /** The newest frame, waiting for one; undefined at the end. */
  async take(): Promise<TimedFrame | undefined> {
    while (!this.#frame && !this.#end) await new Promise<void>((resolve) => (this.#wake = resolve));
    const frame = this.#frame;
    this.#frame = undefined;
    if (frame) return frame;
    if (this.#end && "error" in this.#end) throw this.#end.error;
    return undefined;
  }
}

function decodeArgs(spec: SourceSpec, options: CheckedReadOptions, dialect: FfmpegDialect): string[] {
  return [
    ...LOG_LEVEL_ARGS, "-hide_banner", "-nostdin", "-nostats",
    // Live: hand over each frame as soon as it is decoded rather than buffering input while probing.
    ...(spec.live ? ["-fflags", "nobuffer"] : []),
    ...options.inputArgs, ...spec.inputArgs,
    ...(options.duration === undefined ? [] : ["-t", String(options.duration)]),
    // showinfo announces each frame (number, pts, size) before its bytes; passthrough keeps every
    // frame with its own timestamp (no duplicates, no drops); flush_packets sends each frame at once.
    "-map", "0:v:0", "-vf", "showinfo,format=rgb24", "-f", "rawvideo", "-pix_fmt", "rgb24",
    ...dialect.passthrough, "-flush_packets", "1", "pipe:1",
  ];
}

/** Frames the file should hold: stated by the container, else estimated from duration and rate. */
function expectedFrames(info: VideoInfo | undefined): number | undefined {
  if (info?.frameCount !== undefined) return info.frameCount;
  if (info?.duration !== undefined) return Math.round(info.duration * info.fps);
  return undefined;
}

/** Reads one source; see {@link readVideo}. */
class VideoDecoding {
  readonly #spec: SourceSpec;
  readonly #programs: FfmpegPrograms;
  readonly #options: CheckedReadOptions;
  readonly #state: DecodeState = { decoded: 0, partial: 0 };
  #info: VideoInfo | undefined;
  #warned = false;

  constructor(spec: SourceSpec, programs: FfmpegPrograms, options: CheckedReadOptions) {
    this.#spec = spec;
    this.#programs = programs;
    this.#options = options;
  }

  async *frames(): AsyncGenerator<VideoFrame, void, undefined> {
    const { signal } = this.#options;
    if (signal?.aborted) throw this.#aborted();
    // A file is probed first: an unreadable one fails with the prober's message, and the frame
    // count it states tells a truncated file. A live source is not: probing would consume it.
    if (this.#spec.path !== undefined) this.#info = await probeWith(this.#programs, this.#spec.path);
    const dialect = await ffmpegDialect(this.#programs.ffmpeg);
    const child = await start(this.#programs.ffmpeg, decodeArgs(this.#spec, this.#options, dialect));
    const log = new DecoderLog(child.stderr!);
    const exited = exitOf(child);
    const stop = () => child.kill("SIGKILL");
    signal?.addEventListener("abort", stop, { once: true });
    let finished = false;
    let failed = false;
    try {
      const buffers = new FrameBuffers(this.#options.allocate);
      const assembled = assembleFrames(child.stdout!, log, buffers, this.#state);
      if (this.#options.queue === "block") {
        for await (const frame of assembled) yield { ...frame, dropped: 0 };
      } else {
        yield* this.#newestFirst(assembled, buffers);
      }
      finished = true;
      await this.#finish(exited, log);
    } catch (error) {
      failed = true;
      throw error;
    } finally {
      signal?.removeEventListener("abort", stop);
      if (!finished) {
        child.kill("SIGKILL");
        await exited;
      }
      // An error carries ffmpeg's messages itself; a consumer that stopped early still hears of them.
      if (!failed && !this.#warned && log.errorCount > 0) this.#warnDecodeErrors(log);
    }
  }

  /** Reads ffmpeg continuously in the background; the consumer gets the newest frame. */
  async *#newestFirst(assembled: AsyncGenerator<TimedFrame>, buffers: FrameBuffers): AsyncGenerator<VideoFrame> {
    const latest = new LatestFrame();
    const pump = (async () => {
      try {
        for await (const frame of assembled) {
          const displaced = latest.put(frame);
          if (displaced) buffers.recycle(displaced.frame);
        }
        latest.finish();
      } catch (error) {
        latest.finish(error);
      }
    })();
    // Stopping early, the caller kills ffmpeg, which ends the pump.
    for (let frame = await latest.take(); frame; frame = await latest.take()) yield { ...frame, dropped: latest.dropped };
    await pump;
  }

  #aborted(): AbortError {
    return new AbortError(`Reading ${this.#spec.source} was aborted after ${this.#state.decoded} frames`);
  }

  async #finish(exited: Promise<Exit>, log: DecoderLog): Promise<void> {
    const exit = await exited;
    await log.ended();
    const { source } = this.#spec;
    const { decoded, partial } = this.#state;
    if (this.#options.signal?.aborted) throw this.#aborted();
    if (exit.code !== 0) {
      if (this.#spec.path !== undefined && decoded === 0) throw new FileFormatError(`${source}: not a video ffmpeg can decode (ffmpeg ${describeExit(exit)}): ${log.tail()}`, { file: source });
      throw new RuntimeFailureError(`ffmpeg ${describeExit(exit)} while decoding ${source} after ${decoded} frames: ${log.tail()}`, { file: source });
    }
    if (partial !== 0) {
      throw new RuntimeFailureError(`ffmpeg stopped in the middle of frame ${decoded} of ${source} (${partial} bytes of it arrived): ${log.tail()}`, { file: source });
    }
    this.#warnIfIncomplete(log);
  }

  #warnIfIncomplete(log: DecoderLog): void {
    const expected = this.#options.duration === undefined ? expectedFrames(this.#info) : undefined;
    const { decoded } = this.#state;
    // One frame of slack: an MP4 written with timestamps holds a last sample its edit list hides.
    if (expected === undefined || decoded >= expected - 1) return;
    const errors = log.errorCount > 0 ? `; ffmpeg reported ${log.errorCount} error(s), first: ${log.errors.join(" | ")}` : "";
    const stated = this.#info?.frameCount !== undefined ? "the file states" : "its duration and frame rate imply";
    this.#warn({
      kind: "incomplete",
      source: this.#spec.source,
      message: `${this.#spec.source}: only ${decoded} of the ${expected} frames ${stated} could be read: the file is truncated or damaged${errors}`,
      framesRead: decoded,
      framesExpected: expected,
    });
  }

  #warnDecodeErrors(log: DecoderLog): void {
    this.#warn({
      kind: "decode-errors",
      source: this.#spec.source,
      message: `${this.#spec.source}: ffmpeg reported ${log.errorCount} error(s) while decoding (${this.#state.decoded} frames read), first: ${log.errors.join(" | ")}`,
      framesRead: this.#state.decoded,
    });
  }

  #warn(warning: VideoWarning): void {
    this.#warned = true;
    const expected = expectedFrames(this.#info);
    if (warning.framesExpected === undefined && expected !== undefined) warning.framesExpected = expected;
    this.#options.onWarning?.(warning);
  }
}

/**
 * Decodes a video file or a live source into timed frames: `{ frame, frameNumber, pts,
 * capturedAt, dropped }`, frame a uint8 [H, W, 3] RGB array of its own (unless `allocate` says
 * otherwise). Breaking out of the loop stops ffmpeg. The arguments, the source and ffmpeg are
 * checked synchronously, before anything runs.
 *
 * @example
 * ```ts
 * for await (const { frame, pts, dropped } of readVideo("udp://127.0.0.1:5000")) {
 *   console.log(pts, frame.shape, dropped);
 * }
 * ```
 * @param source a file, or a live source (see the table in the `video/source` module): `udp://`,
 * `tcp://`, `rtp://`, an `.sdp` file, `rtsp://`, `http(s)://`, `/dev/video0`, `avfoundation:0`, `dshow:video=...`.
 * @throws {@link endosynth!BackendUnavailableError | BackendUnavailableError} when no ffmpeg is found.
 * @throws {@link endosynth!InputError | InputError} for bad options, an unknown URL scheme or a missing file.
 * @throws {@link endosynth!FileFormatError | FileFormatError} (from the iteration) when a file is not a readable video.
 * @throws {@link endosynth!RuntimeFailureError | RuntimeFailureError} (from the iteration) when ffmpeg fails while decoding (exit code and its last lines).
 * @throws {@link endosynth!AbortError | AbortError} (from the iteration) when `signal` aborts.
 */
export function readVideo(source: string, options?: ReadVideoOptions): AsyncGenerator<VideoFrame, void, undefined> {
  const spec = parseSource(source);
  const checked = checkReadOptions(spec, options);
  const programs = findFfmpegPrograms(programOptions(options));
  return new VideoDecoding(spec, programs, checked).frames();
}

/**
 * Decodes a video's frames, in order, as uint8 [H, W, 3] RGB arrays: {@link readVideo} without
 * the timing.
 *
 * @example
 * ```ts
 * for await (const frame of readVideoFrames("clip.mp4")) console.log(frame.shape); // [1080, 1920, 3]
 * ```
 */
export function readVideoFrames(source: string, options?: ReadVideoOptions): AsyncGenerator<NdArray<"uint8">, void, undefined> {
  const frames = readVideo(source, options);
  return (async function* () {
    for await (const { frame } of frames) yield frame;
  })();
}
