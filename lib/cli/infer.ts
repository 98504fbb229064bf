/**
 * `endosynth infer <model> <input...>`: metric depth for images, EndoSynth samples (.npz), uint8
 * .npy frames, folders of those, video files and live sources (network streams, capture devices).
 * Results become colour maps (a fixed `--range` so frames compare), metres (.npy, float TIFF, one
 * .npz stack), 16-bit PNG millimetres, point clouds (.ply), or a colour-mapped video; video and
 * live runs also write a table of every frame's timestamp and latency.
 *
 * Conventions: `--json` prints one JSON result on stdout (logs stay on stderr); `-q` silences
 * progress; an existing output is replaced only with `--overwrite`. Ctrl-C on a live source stops
 * it cleanly and finishes the outputs; on a video file, it leaves no output (exit code 130).
 * @module
 */
import { InvalidArgumentError, Option, type Command } from "commander";
import { AbortError, InputError } from "../errors.js";
import { readImage } from "../io/image.js";
import { readNpy } from "../io/npy.js";
import { readNpz } from "../io/npz.js";
import { type BackendChoice, type Model } from "../model.js";
import { toImageArray } from "../ndarray/convert.js";
import type { NdArray } from "../ndarray/ndarray.js";
import type { ChannelOrder } from "../convert/options.js";
import { MODEL_NAMES, type ModelName } from "../models/registry.js";
import { readVideo, type QueuePolicy, type VideoFrame, type VideoWarning } from "../video/reader.js";
import { parseNumber, parsePositiveInteger, parsePositiveMetres } from "./arguments.js";
import { openSink, type OutputOptions } from "./infer_outputs.js";
import { FRAME_FORMATS, type FrameFormat, type InferPlan, planInfer, type PlanOptions } from "./infer_plan.js";
import { describeTiming, type InferResult, latencyStats, type StopReason } from "./infer_report.js";
import { abortOnInterrupt, interrupted } from "./interrupt.js";
import { CountProgress } from "./progress.js";
import { loadForCommand } from "./load_model.js";

interface InferCommandOptions extends PlanOptions, OutputOptions {
  checkpoint?: string;
  onnx?: string;
  backend: BackendChoice;
  threads?: number;
  channelOrder?: ChannelOrder;
  inflight: number;
  quiet?: boolean;
  json?: boolean;
  frames?: number;
  duration?: number;
  queue?: QueuePolicy;
  inputArgs?: string[];
}

/** What a run did, for the summary. */
interface RunSummary {
  outputs: string[];
  frames: number;
  dropped: number;
  latencies: number[];
  seconds: number;
  stoppedBy: StopReason;
  /** Lines for stdout without --json. */
  lines: string[];
}

function assertPlyOptions(options: InferCommandOptions): void {
  if (!options.ply) return;
  const missing = (["fx", "fy"] as const).filter((key) => options[key] === undefined);
  if (missing.length > 0) throw new InputError(`--ply needs the camera intrinsics: give ${missing.map((key) => `--${key}`).join(" and ")} (pixels)`);
}

/** The frame of a still input: a decoded image, an EndoSynth sample's `rgb`, or a uint8 .npy. */
async function readFrame(path: string): Promise<NdArray<"uint8">> {
  const extension = path.toLowerCase().slice(path.lastIndexOf("."));
  if (extension === ".npz") {
    const arrays = readNpz(path);
    if (!arrays.rgb) throw new InputError(`${path} has no "rgb" array (keys: ${Object.keys(arrays).join(", ")})`, { file: path, key: "rgb" });
    return toImageArray(arrays.rgb, `${path}:rgb`);
  }
  if (extension === ".npy") return toImageArray(readNpy(path), path);
  return readImage(path);
}

function depthRange(values: Float32Array): string {
  let min = Infinity;
  let max = -Infinity;
  for (const value of values) {
    if (value < min) min = value;
    if (value > max) max = value;
  }
  return `depth ${min.toFixed(3)}-${max.toFixed(3)} m`;
}

async function inferStills(model: Model, plan: InferPlan & { input: { kind: "stills" } }, options: InferCommandOptions): Promise<RunSummary> {
  const { files } = plan.input;
  const sink = openSink(plan, options, 0);
  const progress = new CountProgress("infer", files.length, { quiet: options.quiet || files.length === 1 });
  const started = performance.now();
  const lines: string[] = [];
  const latencies: number[] = [];
  try {
    for (const [index, file] of files.entries()) {
      const frame = await readFrame(file);
      const inferring = performance.now();
      const depth = await model.infer(frame);
      const latencyMs = performance.now() - inferring;
      const written = await sink.write({ index, frame, depth, latencyMs, input: file });
      latencies.push(latencyMs);
      progress.tick();
      const where = written.length > 0 ? written.join(", ") : `${plan.output.kind === "stack" ? plan.output.path : ""}[${index}]`;
      lines.push(`${file} -> ${where} (${frame.shape[0]}x${frame.shape[1]}, ${depthRange(depth.data)}, ${latencyMs.toFixed(0)} ms)`);
    }
    const outputs = await sink.close();
    return { outputs, frames: files.length, dropped: 0, latencies, seconds: (performance.now() - started) / 1000, stoppedBy: "end", lines };
  } catch (error) {
    await sink.abort();
    throw error;
  } finally {
    progress.stop();
  }
}

/** The first `count` frames of a source; then the source is closed (ffmpeg stopped). */
async function* firstFrames(frames: AsyncIterable<VideoFrame>, count: number): AsyncGenerator<VideoFrame> {
  let taken = 0;
  for await (const frame of frames) {
    yield frame;
    if (++taken >= count) return;
  }
}

function interruptNotice(plan: InferPlan): string {
  const target = plan.output.kind === "folder" ? plan.output.folder : plan.output.kind === "file" ? plan.output.path : plan.output.path;
  return plan.input.kind === "live"
    ? `\ninterrupted: stopping the live source; finishing ${target} (Ctrl-C again to quit at once)`
    : `\ninterrupted: stopping; ${target} is not written (Ctrl-C again to quit at once)`;
}

async function inferStream(model: Model, plan: InferPlan & { input: { kind: "video" | "live" } }, options: InferCommandOptions, warnings: string[]): Promise<RunSummary> {
  const { input } = plan;
  const live = input.kind === "live";
  const controller = new AbortController();
  const onWarning = (warning: VideoWarning) => {
    warnings.push(warning.message);
    process.stderr.write(`warning: ${warning.message}\n`);
  };
  const frames = readVideo(input.source, {
    onWarning,
    ...(options.queue ? { queue: options.queue } : {}),
    ...(options.duration ? { duration: options.duration } : {}),
    ...(options.inputArgs ? { inputArgs: options.inputArgs } : {}),
    ...(options.ffmpeg ? { ffmpegPath: options.ffmpeg } : {}),
    // Live: Ctrl-C stops the source; the frames in flight finish and every output is completed.
    ...(live ? { signal: controller.signal } : {}),
  });
  const source = options.frames === undefined ? frames : firstFrames(frames, options.frames);
  const sink = openSink(plan, options, input.kind === "video" ? input.info.fps : 30);
  const total = options.frames ?? (input.kind === "video" && options.duration === undefined ? input.info.frameCount : undefined);
  const progress = new CountProgress("frames", total, { quiet: options.quiet });
  const stopListening = abortOnInterrupt(controller, interruptNotice(plan), (text) => process.stderr.write(`${text}\n`));
  const latencies: number[] = [];
  let dropped = 0;
  let stoppedBy: StopReason = options.duration === undefined ? "end" : "duration";
  const started = performance.now();
  try {
    try {
      // A file: Ctrl-C aborts the stream itself, and nothing is written.
      for await (const result of model.stream(source, { inflight: options.inflight, ...(live ? {} : { signal: controller.signal }) })) {
        const latencyMs = performance.now() - result.capturedAt;
        await sink.write({ index: result.index, frame: result.frame, depth: result.depth, frameNumber: result.frameNumber, pts: result.pts, latencyMs });
        latencies.push(latencyMs);
        dropped = result.dropped;
        progress.tick();
      }
    } catch (error) {
      if (!(live && controller.signal.aborted && error instanceof AbortError)) throw error;
      stoppedBy = "interrupt";
    }
    if (options.frames !== undefined && latencies.length >= options.frames) stoppedBy = "frames";
    const outputs = await sink.close();
    const seconds = (performance.now() - started) / 1000;
    const size = latencies.length > 0 ? "" : "no frames, ";
    const lines = [`${input.source} -> ${outputs.join(", ")} (${size}${latencies.length} frames, ${dropped} dropped, ${model.backend})`];
    return { outputs, frames: latencies.length, dropped, latencies, seconds, stoppedBy, lines };
  } catch (error) {
    await sink.abort();
    throw error instanceof AbortError ? interrupted(error.message) : error;
  } finally {
    stopListening();
    progress.stop();
  }
}

function report(name: ModelName, model: Model, inputs: string[], plan: InferPlan, run: RunSummary, warnings: string[], options: InferCommandOptions): void {
  const latency = latencyStats(run.latencies);
  const framesPerSecond = run.seconds > 0 ? run.frames / run.seconds : 0;
  if (options.json) {
    const result: InferResult = {
      model: name,
      backend: model.backend,
      precision: model.precision,
      inputs,
      inputKind: plan.input.kind,
      outputs: run.outputs,
      frames: run.frames,
      dropped: run.dropped,
      framesPerSecond: Math.round(framesPerSecond * 100) / 100,
      latencyMs: latency,
      stoppedBy: run.stoppedBy,
      warnings,
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  if (!options.quiet && plan.input.kind !== "stills") {
    process.stderr.write(`${run.frames} frames at ${framesPerSecond.toFixed(1)} frames/s\n${describeTiming(latency, run.dropped)}\n`);
  }
  process.stdout.write(`${run.lines.join("\n")}\n`);
}

async function runInfer(name: ModelName, inputs: string[], options: InferCommandOptions): Promise<void> {
  assertPlyOptions(options);
  const plan = await planInfer(inputs, options);
  const model = await loadForCommand(name, options);
  try {
    if (!options.quiet) process.stderr.write(`${name} (${model.precision}) on ${model.backend}: ${model.backendReason}\n`);
    const warnings: string[] = [];
    const run = plan.input.kind === "stills" ? await inferStills(model, plan as InferPlan & { input: { kind: "stills" } }, options) : await inferStream(model, plan as InferPlan & { input: { kind: "video" | "live" } }, options, warnings);
    report(name, model, inputs, plan, run, warnings, options);
  } finally {
    await model.dispose();
  }
}

function parseRange(value: string): [number, number] {
  const parts = value.split(",").map((part) => Number(part.trim()));
  if (parts.length !== 2 || !parts.every(Number.isFinite) || parts[0] >= parts[1]) {
    throw new InvalidArgumentError("expected two increasing numbers in metres, e.g. 0.02,0.2");
  }
  return [parts[0], parts[1]];
}

function parsePositiveSeconds(value: string): number {
  const number = Number(value);
  if (!(number > 0 && number < Infinity)) throw new InvalidArgumentError("expected a positive number of seconds");
  return number;
}

function parseArgs(value: string): string[] {
  return value.trim().split(/\s+/).filter((arg) => arg.length > 0);
}

/** Adds the `infer` command. */
export function registerInferCommand(program: Command): void {
  program
    .command("infer")
    .description("metric depth for images, EndoSynth samples (.npz), uint8 .npy frames, folders of them, a video, or a live source")
    .addArgument(program.createArgument("<model>", "the model").choices(MODEL_NAMES))
    .argument("<input...>", "image, .npz sample, .npy, folder; or one video (.mp4, .mkv, ...) or live source (udp://, tcp://, rtp://, .sdp, rtsp://, http(s)://, /dev/videoN, avfoundation:N, dshow:video=NAME)")
    .option("-o, --output <path>", "a still: .png/.jpg (colour map), .npy/.tif (metres); several stills, a video or a live source: a folder (a file per frame), a .npz (one stack) or, for videos and live sources, a video (.mp4, .mkv, .mov, .webm)")
    .addOption(new Option("--format <format>", "per-frame files: png (colour map), jpg, npy (metres), png16 (16-bit PNG, millimetres by default), tiff (float32 metres)").choices(FRAME_FORMATS as FrameFormat[]))
    .option("--scale <units>", "png16: stored units per metre (1000: millimetres; 5000: TUM RGB-D)", parsePositiveMetres, 1000)
    .option("--range <min,max>", "colour map range in metres (fixed, so frames compare)", parseRange, [0.02, 0.2] as [number, number])
    .option("--side-by-side", "put the input frame left of the depth colours")
    .option("-c, --checkpoint <file>", "checkpoint (default: $ENDOSYNTH_CHECKPOINTS or ./checkpoints, <model>-f.pth)")
    .option("--onnx <file>", "run this converted ONNX model instead of a checkpoint")
    .addOption(new Option("--backend <backend>", "runtime").choices(["auto", "onnxruntime", "tensorrt"]).default("auto"))
    .option("--threads <n>", "ONNX Runtime CPU threads", parsePositiveInteger)
    .addOption(new Option("--channel-order <order>", "order of the input's channels: rgb (reference convention, the default) or bgr; not with --onnx").choices(["rgb", "bgr"]))
    .option("--inflight <n>", "frames in flight at once for videos and live sources", parsePositiveInteger, 2)
    .option("--frames <n>", "stop after this many frames (videos, live sources)", parsePositiveInteger)
    .option("--duration <seconds>", "read only this many seconds of the video or live source", parsePositiveSeconds)
    .addOption(new Option("--queue <policy>", "frames arriving faster than inference: drop (keep the newest; default for live sources) or block (keep all; default for files)").choices(["drop", "block"]))
    .option("--input-args <args>", "ffmpeg input options for the source, e.g. \"-video_size 1280x720 -framerate 30\" (capture devices) or \"-rtsp_transport tcp\"", parseArgs)
    .addOption(new Option("--audio <mode>", "a video output from a video file: copy its audio, or none").choices(["none", "copy"]).default("none"))
    .option("--pix-fmt <format>", "pixel format of a video output (default yuv420p, odd sizes padded to even; yuv444p keeps any size)")
    .option("--ffmpeg <path>", "the ffmpeg program (default: $ENDOSYNTH_FFMPEG, @ffmpeg-installer/ffmpeg, then PATH)")
    .option("--ply", "also write a point cloud (.ply, coloured) beside each still's output; needs --fx and --fy")
    .option("--fx <pixels>", "focal length along x, pixels", parseNumber)
    .option("--fy <pixels>", "focal length along y, pixels", parseNumber)
    .option("--cx <pixels>", "principal point column (default: the image centre)", parseNumber)
    .option("--cy <pixels>", "principal point row (default: the image centre)", parseNumber)
    .option("--overwrite", "replace outputs that already exist")
    .option("--json", "print one JSON result on stdout (outputs, frames, dropped, latency); logs stay on stderr")
    .option("-q, --quiet", "no progress output")
    .action((name: ModelName, inputs: string[], options: InferCommandOptions) => runInfer(name, inputs, options));
}
