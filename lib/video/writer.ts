/**
 * Video files out: frames piped to ffmpeg with their timestamps, encoded with the codec the
 * container calls for, written to a temporary file and renamed into place when complete.
 * @module
 */
import { randomBytes } from "node:crypto";
import { rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { extname, join } from "node:path";
import type { AsyncDisposableResource } from "../disposable.js";
import { DisposedError, InputError, RuntimeFailureError } from "../errors.js";
import { assertOptions, assertString, invalidParameter, isFiniteNumber, isInteger } from "../is.js";
import { temporaryPathFor } from "../io/atomic.js";
import { expectArray, formatShape, type NdArray } from "../ndarray/ndarray.js";
import { FFMPEG_OPTION_KEYS, type FfmpegOptions, type FfmpegPrograms, findFfmpegPrograms, programOptions } from "./discovery.js";
import { matroskaFramePrefix, matroskaHeader, MATROSKA_TICK_NS } from "./matroska.js";
import { checkVideoPath, probeWith } from "./probe.js";
import { describeExit, exitOf, type FfmpegDialect, ffmpegDialect, runToEnd, start, StderrTail } from "./process.js";

/** How a video file is encoded: the container (ffmpeg muxer) and the codec with its settings. */
export interface VideoEncoding {
  /** ffmpeg's muxer: `"mp4"`, `"mov"`, `"matroska"` or `"webm"`. */
  container: "mp4" | "mov" | "matroska" | "webm";
  /** ffmpeg encoder, e.g. `"libx264"`. */
  codec: string;
  /** The encoder settings endosynth adds for that codec. */
  codecArgs: string[];
}

const CONTAINERS: Readonly<Record<string, { container: VideoEncoding["container"]; codec: string }>> = {
  ".mp4": { container: "mp4", codec: "libx264" },
  ".m4v": { container: "mp4", codec: "libx264" },
  ".mov": { container: "mov", codec: "libx264" },
  ".mkv": { container: "matroska", codec: "libx264" },
  ".webm": { container: "webm", codec: "libvpx-vp9" },
};

/** The extensions {@link createVideoWriter} writes. */
export const VIDEO_OUTPUT_EXTENSIONS = Object.keys(CONTAINERS);

/** Constant quality, no bitrate cap; "good" at speed 4 is libvpx's usual speed/quality balance. */
const VP9_ARGS = ["-b:v", "0", "-crf", "32", "-deadline", "good", "-cpu-used", "4", "-row-mt", "1"];

/**
 * MP4 and MOV: ffmpeg 4 gives the last frame of a timestamped stream no duration, and with
 * B-frames the edit list it writes then cuts the last frames off. Without B-frames, and with the
 * last frame sent once more (see `close`), every frame shows for its time.
 */
const NO_B_FRAMES = ["-bf", "0", "-use_editlist", "1"];
/** Timestamp ticks (µs) per millisecond, the time unit of an MP4 edit list as ffmpeg writes it. */
const TICKS_PER_MS = 1e6 / MATROSKA_TICK_NS;

/**
 * The container and codec for a video file, from its extension: `.webm` → VP9, `.mp4`, `.m4v`,
 * `.mov`, `.mkv` → H.264 (`codec` overrides the codec, not the container).
 * @throws {@link endosynth!InputError | InputError} for another extension, naming the ones supported.
 */
export function videoEncodingFor(path: string, codec?: string): VideoEncoding {
  assertString("path", path);
  if (codec !== undefined) assertString("codec", codec);
  const extension = extname(path).toLowerCase();
  const known = CONTAINERS[extension];
  if (!known) {
    throw new InputError(
      `Cannot write a video to ${path}: ${extension ? `the container ${extension} is not supported` : "no extension"}; use ${VIDEO_OUTPUT_EXTENSIONS.join(", ")} (.webm is VP9, the others H.264)`,
      { file: path },
    );
  }
  const chosen = codec ?? known.codec;
  const codecArgs = [...(chosen === "libvpx-vp9" ? VP9_ARGS : []), ...(known.container === "mp4" || known.container === "mov" ? NO_B_FRAMES : [])];
  return { container: known.container, codec: chosen, codecArgs };
}

/** Pixel formats with subsampled chroma, and the multiple each dimension must be. */
const CHROMA_BLOCK: Readonly<Record<string, [number, number]>> = {
  yuv420p: [2, 2], yuvj420p: [2, 2], nv12: [2, 2], nv21: [2, 2], yuv420p10le: [2, 2],
  yuv422p: [2, 1], yuvj422p: [2, 1], yuv422p10le: [2, 1],
};

/** The encoded size: odd sizes padded (right, bottom, black) where the pixel format needs even ones. */
export function encodedSize(width: number, height: number, pixelFormat: string): { width: number; height: number } {
  const [blockX, blockY] = CHROMA_BLOCK[pixelFormat] ?? [1, 1];
  return { width: Math.ceil(width / blockX) * blockX, height: Math.ceil(height / blockY) * blockY };
}

/** Options of {@link createVideoWriter}. */
export interface VideoWriterOptions extends FfmpegOptions {
  /** Frame width, pixels. */
  width: number;
  /** Frame height, pixels. */
  height: number;
  /** Frames per second: the spacing of frames written without a timestamp. */
  fps: number;
  /** ffmpeg encoder; default by container: `"libvpx-vp9"` for .webm, `"libx264"` otherwise. Lossless: `"ffv1"` (.mkv). */
  codec?: string;
  /**
   * Pixel format of the encoded video; default `"yuv420p"` (plays everywhere). Its chroma needs
   * even sizes, so odd widths or heights are padded by one black column or row (right, bottom);
   * `"yuv444p"` keeps any size exactly.
   */
  pixelFormat?: string;
  /** Further ffmpeg output options, e.g. `["-crf", "18"]`. */
  outputArgs?: string[];
  /**
   * A video file whose first audio stream is copied into the output unchanged, whole (so when
   * fewer frames are written than the file has, the audio runs on past the last picture).
   */
  audioFrom?: string;
}

/** A video being written; see {@link createVideoWriter}. */
export interface VideoWriter extends AsyncDisposableResource {
  /** The file that `close()` creates. */
  readonly path: string;
  /** Frames accepted so far. */
  readonly framesWritten: number;
  /**
   * Sends one uint8 [height, width, 3] RGB frame; resolves once ffmpeg has taken it (so the
   * frame's buffer may be reused), which is the back-pressure: await it before the next frame.
   * @param pts the frame's timestamp in seconds, increasing; the video starts at the first one's,
   * and the intervals are kept (variable frame rates, gaps). Default: 1/fps after the previous frame.
   */
  write(frame: NdArray<"uint8">, pts?: number): Promise<void>;
  /** Finishes the file: waits for ffmpeg, then renames the temporary file onto `path`. */
  close(): Promise<void>;
  /** Stops ffmpeg and removes the temporary file; `path` is left as it was. Idempotent. */
  abort(): Promise<void>;
}

interface CheckedWriterOptions {
  width: number;
  height: number;
  fps: number;
  encoding: VideoEncoding;
  pixelFormat: string;
  outputArgs: string[];
  audioFrom?: string;
}

const WRITER_OPTION_KEYS = ["width", "height", "fps", "codec", "pixelFormat", "outputArgs", "audioFrom", ...FFMPEG_OPTION_KEYS];

function checkWriterOptions(path: string, options: VideoWriterOptions): CheckedWriterOptions {
  assertOptions("options", options as unknown, WRITER_OPTION_KEYS);
  if (options === undefined) throw invalidParameter("options", "an object { width, height, fps }", options);
  for (const key of ["width", "height"] as const) {
    if (!isInteger(options[key]) || options[key] < 1 || options[key] > 16384) throw invalidParameter(`options.${key}`, "an integer from 1 to 16384", options[key]);
  }
  if (!isFiniteNumber(options.fps) || options.fps <= 0) throw invalidParameter("options.fps", "a positive number of frames per second", options.fps);
  const pixelFormat = options.pixelFormat ?? "yuv420p";
  assertString("options.pixelFormat", pixelFormat);
  if (options.codec !== undefined) assertString("options.codec", options.codec);
  const outputArgs = options.outputArgs ?? [];
  if (!Array.isArray(outputArgs) || !outputArgs.every((arg) => typeof arg === "string")) {
    throw invalidParameter("options.outputArgs", "an array of strings", outputArgs);
  }
  const checked: CheckedWriterOptions = { width: options.width, height: options.height, fps: options.fps, encoding: videoEncodingFor(path, options.codec), pixelFormat, outputArgs };
  if (options.audioFrom !== undefined) {
    checkVideoPath(options.audioFrom);
    checked.audioFrom = options.audioFrom;
  }
  return checked;
}

function encoderArgs(options: CheckedWriterOptions, temporary: string, dialect: FfmpegDialect): string[] {
  const { width, height, encoding, pixelFormat, outputArgs, audioFrom } = options;
  const padded = encodedSize(width, height, pixelFormat);
  const pad = padded.width !== width || padded.height !== height ? ["-vf", `pad=${padded.width}:${padded.height}:0:0:black`] : [];
  // No -shortest: ffmpeg 4 ends on the input that runs out first in wall-clock time, and the audio
  // file is read far faster than frames arrive, which would cut the video off.
  const audio = audioFrom === undefined ? ["-an"] : ["-map", "1:a:0?", "-c:a", "copy"];
  return [
    "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
    "-f", "matroska", "-i", "pipe:0",
    ...(audioFrom === undefined ? [] : ["-i", `file:${audioFrom}`]),
    "-map", "0:v:0", ...audio, ...pad,
    "-c:v", encoding.codec, "-pix_fmt", pixelFormat, ...encoding.codecArgs,
    // Each frame keeps its own timestamp: no frames duplicated or dropped to a fixed rate.
    ...dialect.passthrough, ...dialect.inputTimeBase,
    ...outputArgs, "-f", encoding.container, temporary,
  ];
}

/**
 * Whether the first audio stream of `source` can be copied unchanged into a video like `output`
 * (e.g. AAC cannot go into WebM): a dry run of ffmpeg writing the container's header.
 * @returns false when `source` has no audio stream (nothing to copy).
 * @throws {@link endosynth!InputError | InputError} when the audio cannot go into that container, with ffmpeg's reason.
 */
export async function checkAudioCopy(source: string, output: string, options?: FfmpegOptions): Promise<boolean> {
  assertOptions("options", options as unknown, FFMPEG_OPTION_KEYS);
  checkVideoPath(source);
  const { container } = videoEncodingFor(output);
  const programs = findFfmpegPrograms(programOptions(options));
  const { audioCodec } = await probeWith(programs, source);
  if (audioCodec === undefined) return false;
  const trial = join(tmpdir(), `.endosynth-audio-${process.pid}-${randomBytes(4).toString("hex")}${extname(output)}`);
  try {
    const args = ["-hide_banner", "-nostdin", "-loglevel", "error", "-i", `file:${source}`, "-map", "0:a:0", "-c", "copy", "-t", "0.1", "-f", container, "-y", trial];
    const { exit, stderr } = await runToEnd(programs.ffmpeg, args);
    if (exit.code !== 0) {
      const reason = stderr.trim().split("\n").slice(-2).join(" ");
      throw new InputError(`Cannot copy the ${audioCodec} audio of ${source} into ${output} (${container}): ${reason}; write another container (.mkv takes any audio) or leave the audio out`, { file: output });
    }
    return true;
  } finally {
    await rm(trial, { force: true });
  }
}

/** One encoding ffmpeg; see {@link createVideoWriter}. */
class FfmpegVideoWriter implements VideoWriter {
  readonly path: string;
  readonly #options: CheckedWriterOptions;
  readonly #programs: FfmpegPrograms;
  readonly #temporary: string;
  readonly #frameTicks: number;
  #child!: Awaited<ReturnType<typeof start>>;
  #stderr!: StderrTail;
  #exited!: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #framesWritten = 0;
  #state: "open" | "closing" | "closed" | "aborted" = "open";
  #firstPts: number | undefined;
  #lastTicks = -1;
  #lastInterval = 0;
  #lastFrame: NdArray<"uint8"> | undefined;

  constructor(path: string, options: CheckedWriterOptions, programs: FfmpegPrograms) {
    this.path = path;
    this.#options = options;
    this.#programs = programs;
    this.#temporary = `${temporaryPathFor(path)}${extname(path)}`;
    this.#frameTicks = Math.max(1, Math.round(1e9 / MATROSKA_TICK_NS / options.fps));
  }

  async start(): Promise<void> {
    const dialect = await ffmpegDialect(this.#programs.ffmpeg);
    this.#child = await start(this.#programs.ffmpeg, encoderArgs(this.#options, this.#temporary, dialect), "pipe");
    this.#stderr = new StderrTail(this.#child.stderr);
    this.#exited = exitOf(this.#child);
    // EPIPE when ffmpeg dies is reported through write()/close() with its exit status instead.
    this.#child.stdin!.on("error", () => undefined);
    this.#child.stdin!.write(matroskaHeader(this.#options.width, this.#options.height));
  }

  get framesWritten(): number {
    return this.#framesWritten;
  }

  /** The frame's time in µs after the first frame's; refuses timestamps that do not increase. */
  #ticksOf(pts: number | undefined): number {
    if (pts === undefined) return this.#lastTicks < 0 ? 0 : this.#lastTicks + this.#frameTicks;
    if (!isFiniteNumber(pts)) throw invalidParameter("pts", "a finite number of seconds", pts);
    this.#firstPts ??= pts - (this.#lastTicks < 0 ? 0 : (this.#lastTicks + this.#frameTicks) / 1e6);
    const ticks = Math.round((pts - this.#firstPts) * 1e6);
    if (ticks <= this.#lastTicks) {
      throw new InputError(
        `Expected timestamps that increase (by 1 µs at least) but frame ${this.#framesWritten} of ${this.path} has pts ${pts} s, not after the previous frame's`,
        { key: "pts" },
      );
    }
    return ticks;
  }

  async #send(frame: NdArray<"uint8">, ticks: number): Promise<void> {
    const stdin = this.#child.stdin!;
    stdin.write(matroskaFramePrefix(ticks, frame.data.byteLength));
    const written = await new Promise<boolean>((resolve) => stdin.write(frame.data, (error) => resolve(!error)));
    if (!written) throw await this.#failure("encoding");
  }

  async write(frame: NdArray<"uint8">, pts?: number): Promise<void> {
    if (this.#state !== "open") throw new DisposedError(`The video writer of ${this.path}`);
    const { width, height } = this.#options;
    const rgb = expectArray(frame, "frame", "uint8", [-1, -1, -1]);
    if (rgb.shape[0] !== height || rgb.shape[1] !== width || rgb.shape[2] !== 3) {
      throw new InputError(`Expected a frame of shape (${height}, ${width}, 3) for ${this.path} but received ${formatShape(rgb.shape)}`, { key: "frame" });
    }
    const ticks = this.#ticksOf(pts);
    await this.#send(rgb, ticks);
    if (this.#lastTicks >= 0) this.#lastInterval = ticks - this.#lastTicks;
    this.#lastTicks = ticks;
    this.#lastFrame = rgb;
    this.#framesWritten++;
  }

  async #failure(doing: string): Promise<RuntimeFailureError> {
    const exit = await this.#exited;
    await rm(this.#temporary, { force: true });
    this.#state = "aborted";
    return new RuntimeFailureError(`ffmpeg ${describeExit(exit)} while ${doing} ${this.path} after ${this.#framesWritten} frames: ${this.#stderr}`, { file: this.path });
  }

  async close(): Promise<void> {
    if (this.#state !== "open") throw new DisposedError(`The video writer of ${this.path}`);
    const { container } = this.#options.encoding;
    if ((container === "mp4" || container === "mov") && this.#lastFrame) {
      // The last frame's duration comes from a next frame: send it once more, one interval later
      // rounded up to a whole millisecond (the edit list's unit: it then ends exactly where this
      // copy starts), so players show the real frames only, each for its time.
      const end = this.#lastTicks + (this.#lastInterval || this.#frameTicks);
      await this.#send(this.#lastFrame, Math.ceil(end / TICKS_PER_MS) * TICKS_PER_MS);
    }
    this.#state = "closing";
    this.#child.stdin!.end();
    const exit = await this.#exited;
    if (exit.code !== 0) throw await this.#failure("finishing");
    try {
      await rename(this.#temporary, this.path);
    } catch (error) {
      await rm(this.#temporary, { force: true });
      throw error;
    } finally {
      this.#state = "closed";
    }
  }

  async abort(): Promise<void> {
    if (this.#state === "closed" || this.#state === "aborted") return;
    this.#state = "aborted";
    this.#child.kill("SIGKILL");
    await this.#exited;
    await rm(this.#temporary, { force: true });
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.abort();
  }
}

/**
 * Starts ffmpeg encoding RGB frames into `path`, with the codec its container calls for (`.webm`:
 * VP9; `.mp4`, `.m4v`, `.mov`, `.mkv`: H.264). Each frame may carry its timestamp, so variable
 * frame rates and gaps are kept. The video is written to a temporary file beside `path` and
 * renamed onto it by `close()`; a failure or `abort()` removes it and leaves `path` untouched.
 * Arguments, the container and ffmpeg are checked synchronously, before anything runs.
 *
 * @example
 * ```ts
 * const writer = createVideoWriter("depth.webm", { width: 1920, height: 1080, fps: 30 });
 * for await (const { frame, pts } of readVideo("in.mp4")) await writer.write(frame, pts);
 * await writer.close();
 * ```
 * @throws {@link endosynth!BackendUnavailableError | BackendUnavailableError} when no ffmpeg is found.
 * @throws {@link endosynth!InputError | InputError} for bad options or an unsupported container.
 */
export function createVideoWriter(path: string, options: VideoWriterOptions): Promise<VideoWriter> {
  assertString("path", path);
  const checked = checkWriterOptions(path, options);
  const programs = findFfmpegPrograms(programOptions(options));
  const writer = new FfmpegVideoWriter(path, checked, programs);
  return writer.start().then(() => writer);
}
