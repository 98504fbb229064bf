/**
 * Video in and out through the system's `ffmpeg` (and `ffprobe`), over pipes of raw RGB24 frames:
 * any container and codec ffmpeg knows, no native addon, and decoding/encoding run in their own
 * process, in parallel with inference.
 *
 * Error classes:
 * - ffmpeg or ffprobe not installed: {@link BackendUnavailableError}, like a missing runtime: the
 *   call was fine, this machine lacks a program it needs, and the message names the install command
 *   (`apt-get install ffmpeg`, `brew install ffmpeg`).
 * - A video file that does not exist: {@link InputError}; one ffprobe cannot read:
 *   {@link FileFormatError} with ffprobe's own message.
 * - ffmpeg failing or dying while decoding or encoding: {@link RuntimeFailureError} with its exit
 *   code (or signal) and the last lines it printed.
 *
 * @example
 * ```ts
 * import { createVideoWriter, probeVideo, readVideoFrames } from "endosynth";
 * const { width, height, fps } = await probeVideo("in.mp4");
 * const writer = await createVideoWriter("out.mp4", { width, height, fps });
 * for await (const frame of readVideoFrames("in.mp4")) await writer.write(frame);
 * await writer.close();
 * ```
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, statSync } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { extname } from "node:path";
import {
  BackendUnavailableError,
  DisposedError,
  FileFormatError,
  InputError,
  RuntimeFailureError,
} from "../errors.js";
import { assertOptions, assertString, invalidParameter, isFiniteNumber, isInteger } from "../is.js";
import { temporaryPathFor } from "../io/atomic.js";
import { expectArray, formatShape, type NdArray } from "../ndarray/ndarray.js";

/** Where to find the programs; both default to the name, looked up on `PATH`. */
export interface FfmpegOptions {
  /** The ffmpeg executable; default `"ffmpeg"`. */
  ffmpegPath?: string;
  /** The ffprobe executable; default `"ffprobe"`. */
  ffprobePath?: string;
}

/** What {@link probeVideo} finds out about a video's first video stream. */
export interface VideoInfo {
  /** Width of the decoded frames, pixels (after the display rotation ffmpeg applies). */
  width: number;
  /** Height of the decoded frames, pixels. */
  height: number;
  /** Frames per second (average rate; the nominal rate when the container gives no average). */
  fps: number;
  /** Number of frames when the container states it (mp4 does, mkv does not). */
  frameCount?: number;
  /** Duration in seconds, when known. */
  duration?: number;
  /** The stream's codec, e.g. `"h264"`. */
  codec: string;
  /** Display rotation in degrees stored with the stream (0 when none). */
  rotation: number;
}

const STDERR_LINES_KEPT = 12;
const INSTALL_HINT = "install it with `apt-get install ffmpeg` (Debian/Ubuntu) or `brew install ffmpeg` (macOS)";

/** The last lines a process wrote to stderr, for error messages. */
class StderrTail {
  private text = "";
  constructor(stream: NodeJS.ReadableStream | null) {
    stream?.setEncoding?.("utf8");
    stream?.on("data", (chunk: string) => {
      this.text = (this.text + chunk).slice(-8192);
    });
  }

  toString(): string {
    return this.text.trim().split("\n").slice(-STDERR_LINES_KEPT).join("\n");
  }
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

function describeExit(exit: Exit): string {
  return exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
}

/** Runs a program, resolving once it has started; throws BackendUnavailableError if it cannot. */
async function start(program: string, args: string[], role: "ffmpeg" | "ffprobe", stdin: "pipe" | "ignore"): Promise<ChildProcess> {
  const child = spawn(program, args, { stdio: [stdin, "pipe", "pipe"] });
  try {
    await once(child, "spawn");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const where = program === role ? "on PATH" : `at ${program}`;
    const what = code === "ENOENT" ? `${role} was not found ${where}` : `${role} could not be run ${where} (${(error as Error).message})`;
    throw new BackendUnavailableError(
      `${what}: ${INSTALL_HINT}${role === "ffprobe" ? " (ffprobe comes with ffmpeg)" : ""}, or pass options.${role}Path`,
      { cause: error },
    );
  }
  return child;
}

function exitOf(child: ChildProcess): Promise<Exit> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once("close", (code, signal) => resolve({ code, signal })));
}

function checkVideoPath(path: string): void {
  assertString("path", path);
  if (!existsSync(path)) throw new InputError(`Video file ${path} does not exist`, { file: path });
  if (statSync(path).isDirectory()) throw new InputError(`Expected a video file but ${path} is a directory`, { file: path });
}

/** "30000/1001" → 29.97; undefined for "0/0" or junk. */
function parseRate(rate: unknown): number | undefined {
  if (typeof rate !== "string") return undefined;
  const [numerator, denominator = "1"] = rate.split("/");
  const value = Number(numerator) / Number(denominator);
  return Number.isFinite(value) && value > 0 ? value : undefined;
}

function optionalNumber(value: unknown): number | undefined {
  const number = typeof value === "string" ? Number(value) : value;
  return isFiniteNumber(number) ? number : undefined;
}

/**
 * Reads the size, frame rate, frame count and codec of a video's first video stream with ffprobe.
 * @throws {BackendUnavailableError} when ffprobe is not installed.
 * @throws {InputError} when the file does not exist.
 * @throws {FileFormatError} when ffprobe cannot read it or it has no video stream (ffprobe's message included).
 */
export async function probeVideo(path: string, options?: FfmpegOptions): Promise<VideoInfo> {
  assertOptions("options", options as unknown, ["ffmpegPath", "ffprobePath"]);
  checkVideoPath(path);
  const args = [
    "-v", "error", "-select_streams", "v:0",
    "-show_entries", "stream=codec_name,width,height,avg_frame_rate,r_frame_rate,nb_frames,duration:stream_side_data=rotation:format=duration",
    "-of", "json", "--", path,
  ];
  const child = await start(options?.ffprobePath ?? "ffprobe", args, "ffprobe", "ignore");
  const stderr = new StderrTail(child.stderr);
  let output = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  const exit = await exitOf(child);
  if (exit.code !== 0) {
    throw new FileFormatError(`${path}: not a video ffprobe can read (ffprobe ${describeExit(exit)}): ${stderr}`, { file: path });
  }
  const parsed = JSON.parse(output) as { streams?: Record<string, unknown>[]; format?: Record<string, unknown> };
  const stream = parsed.streams?.[0];
  if (!stream || !isInteger(stream.width) || !isInteger(stream.height)) {
    throw new FileFormatError(`${path}: no video stream found${stderr.toString() ? ` (${stderr})` : ""}`, { file: path });
  }
  const sideData = (stream.side_data_list as { rotation?: number }[] | undefined) ?? [];
  const rotation = sideData.find((entry) => typeof entry.rotation === "number")?.rotation ?? 0;
  // ffmpeg turns the frames upright when decoding, so a quarter turn swaps the decoded size.
  const quarterTurn = Math.abs(rotation) % 180 === 90;
  const fps = parseRate(stream.avg_frame_rate) ?? parseRate(stream.r_frame_rate);
  if (fps === undefined) throw new FileFormatError(`${path}: the video stream states no frame rate`, { file: path });
  const info: VideoInfo = {
    width: quarterTurn ? stream.height : stream.width,
    height: quarterTurn ? stream.width : stream.height,
    fps,
    codec: String(stream.codec_name ?? "unknown"),
    rotation,
  };
  const frameCount = optionalNumber(stream.nb_frames);
  if (frameCount !== undefined) info.frameCount = frameCount;
  const duration = optionalNumber(stream.duration) ?? optionalNumber(parsed.format?.duration);
  if (duration !== undefined) info.duration = duration;
  return info;
}

/** Options of {@link readVideoFrames}. */
export interface ReadVideoOptions extends FfmpegOptions {
  /**
   * Gives the buffer each frame is decoded into, uint8 [height, width, 3]: e.g. one of a ring of
   * `model.createInput` buffers (pinned memory on TensorRT: no copy between decoding and the GPU),
   * one more than the frames in flight. It must not return a buffer still in use. Called once per
   * frame, as its first bytes arrive. Default: a new array per frame.
   */
  allocate?: (height: number, width: number) => NdArray<"uint8">;
}

/**
 * Decodes a video's frames, in order, as uint8 [H, W, 3] RGB arrays (each its own buffer, so they
 * can be kept, unless `allocate` says otherwise). Frames are decoded as the consumer asks for them:
 * ffmpeg blocks on a full pipe rather than racing ahead. Breaking out of the loop stops ffmpeg.
 *
 * @example
 * ```ts
 * for await (const frame of readVideoFrames("clip.mp4")) console.log(frame.shape); // [1080, 1920, 3]
 * ```
 * @throws {BackendUnavailableError} when ffmpeg or ffprobe is not installed.
 * @throws {InputError} when the file does not exist.
 * @throws {FileFormatError} when it is not a readable video.
 * @throws {RuntimeFailureError} when ffmpeg fails or dies while decoding (exit code and its last lines).
 */
export async function* readVideoFrames(path: string, options?: ReadVideoOptions): AsyncGenerator<NdArray<"uint8">, void, undefined> {
  assertOptions("options", options as unknown, ["ffmpegPath", "ffprobePath", "allocate"]);
  const { allocate, ...programs } = options ?? {};
  if (allocate !== undefined && typeof allocate !== "function") throw invalidParameter("options.allocate", "a function (height, width) => NdArray", allocate);
  const { width, height } = await probeVideo(path, programs);
  const nextFrame = (): NdArray<"uint8"> => {
    if (!allocate) return { data: new Uint8Array(width * height * 3), shape: [height, width, 3], dtype: "uint8" };
    return expectArray(allocate(height, width), "the frame from options.allocate", "uint8", [height, width, 3]);
  };
  const args = ["-v", "error", "-nostdin", "-i", path, "-map", "0:v:0", "-f", "rawvideo", "-pix_fmt", "rgb24", "-vsync", "passthrough", "pipe:1"];
  const child = await start(options?.ffmpegPath ?? "ffmpeg", args, "ffmpeg", "ignore");
  const stderr = new StderrTail(child.stderr);
  const exited = exitOf(child);
  const frameBytes = width * height * 3;
  let frame: NdArray<"uint8"> | undefined;
  let filled = 0;
  let frames = 0;
  let finished = false;
  try {
    for await (const chunk of child.stdout! as AsyncIterable<Buffer>) {
      let at = 0;
      while (at < chunk.length) {
        const take = Math.min(frameBytes - filled, chunk.length - at);
        // Allocated when its first byte arrives, so a finished video asks for no extra buffer.
        frame ??= nextFrame();
        frame.data.set(chunk.subarray(at, at + take), filled);
        filled += take;
        at += take;
        if (filled === frameBytes) {
          yield frame;
          frames++;
          filled = 0;
          frame = undefined;
        }
      }
    }
    const exit = await exited;
    finished = true;
    if (exit.code !== 0) {
      throw new RuntimeFailureError(`ffmpeg ${describeExit(exit)} while decoding ${path} after ${frames} frames: ${stderr}`, { file: path });
    }
    if (filled !== 0) {
      throw new RuntimeFailureError(`ffmpeg stopped in the middle of frame ${frames} of ${path} (${filled} of ${frameBytes} bytes): ${stderr}`, { file: path });
    }
  } finally {
    if (!finished) {
      child.kill("SIGKILL");
      await exited;
    }
  }
}

/** Options of {@link createVideoWriter}. */
export interface VideoWriterOptions extends FfmpegOptions {
  /** Frame width, pixels. */
  width: number;
  /** Frame height, pixels. */
  height: number;
  /** Frames per second of the output. */
  fps: number;
  /** ffmpeg encoder; default `"libx264"`. Lossless choices: `"ffv1"` (.mkv), `"libx264rgb"` with `-qp 0`. */
  codec?: string;
  /** Pixel format of the encoded video; default `"yuv420p"` (plays everywhere; needs even sizes). */
  pixelFormat?: string;
  /** Further ffmpeg output options, e.g. `["-crf", "18"]` or `["-qp", "0"]`. */
  outputArgs?: string[];
}

/** A video being written; see {@link createVideoWriter}. */
export interface VideoWriter extends AsyncDisposable {
  /** The file that `close()` creates. */
  readonly path: string;
  /** Frames accepted so far. */
  readonly framesWritten: number;
  /**
   * Sends one uint8 [height, width, 3] RGB frame; resolves once ffmpeg has taken it (so the
   * frame's buffer may be reused), which is the back-pressure: await it before the next frame.
   */
  write(frame: NdArray<"uint8">): Promise<void>;
  /** Finishes the file: waits for ffmpeg, then renames the temporary file onto `path`. */
  close(): Promise<void>;
  /** Stops ffmpeg and removes the temporary file; `path` is left as it was. Idempotent. */
  abort(): Promise<void>;
}

const YUV420_FORMATS = new Set(["yuv420p", "yuvj420p", "nv12", "yuv420p10le"]);

function checkWriterOptions(options: VideoWriterOptions): Required<Omit<VideoWriterOptions, keyof FfmpegOptions>> {
  assertOptions("options", options as unknown, ["width", "height", "fps", "codec", "pixelFormat", "outputArgs", "ffmpegPath", "ffprobePath"]);
  if (options === undefined) throw invalidParameter("options", "an object { width, height, fps }", options);
  for (const key of ["width", "height"] as const) {
    if (!isInteger(options[key]) || options[key] < 1 || options[key] > 16384) throw invalidParameter(`options.${key}`, "an integer from 1 to 16384", options[key]);
  }
  if (!isFiniteNumber(options.fps) || options.fps <= 0) throw invalidParameter("options.fps", "a positive number of frames per second", options.fps);
  const codec = options.codec ?? "libx264";
  const pixelFormat = options.pixelFormat ?? "yuv420p";
  assertString("options.codec", codec);
  assertString("options.pixelFormat", pixelFormat);
  const outputArgs = options.outputArgs ?? [];
  if (!Array.isArray(outputArgs) || !outputArgs.every((arg) => typeof arg === "string")) {
    throw invalidParameter("options.outputArgs", "an array of strings", outputArgs);
  }
  if (YUV420_FORMATS.has(pixelFormat) && (options.width % 2 !== 0 || options.height % 2 !== 0)) {
    throw new InputError(
      `Expected an even width and height for pixel format ${pixelFormat} (chroma is subsampled 2x2) but received ${options.width}x${options.height}; pad or crop the frames, or choose another pixelFormat`,
      { key: "options" },
    );
  }
  return { width: options.width, height: options.height, fps: options.fps, codec, pixelFormat, outputArgs };
}

/**
 * Starts ffmpeg encoding raw RGB frames into `path`. The video is written to a temporary file
 * beside `path` (same extension, so ffmpeg picks the container from it) and renamed onto `path`
 * by `close()`; a failure or `abort()` removes it and leaves `path` untouched.
 *
 * @example
 * ```ts
 * await using writer = await createVideoWriter("depth.mp4", { width: 1920, height: 1080, fps: 30 });
 * for (const frame of frames) await writer.write(frame);
 * await writer.close(); // without it, leaving the scope aborts
 * ```
 * @throws {BackendUnavailableError} when ffmpeg is not installed.
 * @throws {InputError} for bad options (odd sizes for yuv420p included).
 */
export async function createVideoWriter(path: string, options: VideoWriterOptions): Promise<VideoWriter> {
  assertString("path", path);
  const { width, height, fps, codec, pixelFormat, outputArgs } = checkWriterOptions(options);
  const temporary = `${temporaryPathFor(path)}${extname(path)}`;
  const args = [
    "-v", "error", "-y",
    "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", `${width}x${height}`, "-framerate", String(fps), "-i", "pipe:0",
    "-an", "-c:v", codec, "-pix_fmt", pixelFormat, ...outputArgs, temporary,
  ];
  const child = await start(options.ffmpegPath ?? "ffmpeg", args, "ffmpeg", "pipe");
  const stderr = new StderrTail(child.stderr);
  const exited = exitOf(child);
  const stdin = child.stdin!;
  // EPIPE when ffmpeg dies is reported through write()/close() with its exit status instead.
  stdin.on("error", () => undefined);
  let framesWritten = 0;
  let state: "open" | "closing" | "closed" | "aborted" = "open";

  const failure = async (doing: string): Promise<RuntimeFailureError> => {
    const exit = await exited;
    await rm(temporary, { force: true });
    state = "aborted";
    return new RuntimeFailureError(`ffmpeg ${describeExit(exit)} while ${doing} ${path} after ${framesWritten} frames: ${stderr}`, { file: path });
  };

  const abort = async () => {
    if (state === "closed" || state === "aborted") return;
    state = "aborted";
    child.kill("SIGKILL");
    await exited;
    await rm(temporary, { force: true });
  };

  return {
    path,
    get framesWritten() {
      return framesWritten;
    },
    async write(frame) {
      if (state !== "open") throw new DisposedError(`The video writer of ${path}`);
      const rgb = expectArray(frame, "frame", "uint8", [-1, -1, -1]);
      if (rgb.shape[0] !== height || rgb.shape[1] !== width || rgb.shape[2] !== 3) {
        throw new InputError(`Expected a frame of shape (${height}, ${width}, 3) for ${path} but received ${formatShape(rgb.shape)}`, { key: "frame" });
      }
      const written = await new Promise<boolean>((resolve) => stdin.write(rgb.data, (error) => resolve(!error)));
      if (!written) throw await failure("encoding");
      framesWritten++;
    },
    async close() {
      if (state !== "open") throw new DisposedError(`The video writer of ${path}`);
      state = "closing";
      stdin.end();
      const exit = await exited;
      if (exit.code !== 0) throw await failure("finishing");
      try {
        await rename(temporary, path);
      } catch (error) {
        await rm(temporary, { force: true });
        throw error;
      } finally {
        state = "closed";
      }
    },
    abort,
    [Symbol.asyncDispose]: abort,
  };
}
