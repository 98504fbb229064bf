/**
 * `endosynth infer <model> <input...>`: metric depth for images, EndoSynth samples (.npz), uint8
 * .npy frames, folders of those, and videos. Stills become a colour map (.png/.jpg, a fixed
 * `--range` so frames compare) or raw metres (.npy), optionally with a point cloud (.ply); a video
 * becomes a colour-mapped video, decoded and encoded by the system's ffmpeg.
 * @module
 */
import { mkdirSync, readdirSync, statSync } from "node:fs";
import { basename, dirname, extname, join, resolve } from "node:path";
import { InvalidArgumentError, Option, type Command } from "commander";
import { AbortError, InputError } from "../errors.js";
import { depthToPointCloud, type Intrinsics } from "../geometry/pointcloud.js";
import { readImage, writeImage } from "../io/image.js";
import { readNpy, writeNpy } from "../io/npy.js";
import { readNpz } from "../io/npz.js";
import { writePly } from "../io/ply.js";
import { load, type BackendChoice, type Model } from "../model.js";
import { toImageArray } from "../ndarray/convert.js";
import type { NdArray } from "../ndarray/ndarray.js";
import type { ChannelOrder } from "../convert/options.js";
import { MODEL_NAMES, type ModelName } from "../models/registry.js";
import { createVideoWriter, probeVideo, readVideoFrames, type VideoInfo } from "../video/ffmpeg.js";
import { depth2rgb } from "../viz/depth2rgb.js";
import { CountProgress, PhaseProgress } from "./progress.js";
import { parseNumber, parsePositiveInteger } from "./arguments.js";
import { abortOnInterrupt, interrupted } from "./interrupt.js";

interface InferCommandOptions {
  output?: string;
  range: [number, number];
  sideBySide?: boolean;
  checkpoint?: string;
  onnx?: string;
  backend: BackendChoice;
  threads?: number;
  channelOrder?: ChannelOrder;
  inflight: number;
  ply?: boolean;
  fx?: number;
  fy?: number;
  cx?: number;
  cy?: number;
  quiet?: boolean;
}

const IMAGE_EXTENSIONS = new Set([".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".gif"]);
const ARRAY_EXTENSIONS = new Set([".npz", ".npy"]);
const VIDEO_EXTENSIONS = new Set([".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg"]);
const STILL_OUTPUTS = new Set([".png", ".jpg", ".jpeg", ".npy"]);

function extension(path: string): string {
  return extname(path).toLowerCase();
}

function isVideo(path: string): boolean {
  return VIDEO_EXTENSIONS.has(extension(path));
}

/** The files an argument names: itself, or the images/arrays in a folder (sorted, not recursive). */
function expandInput(path: string): string[] {
  const stats = statSync(path, { throwIfNoEntry: false });
  if (!stats) throw new InputError(`No such file or folder: ${path}`, { file: path });
  if (!stats.isDirectory()) return [path];
  const files = readdirSync(path)
    .filter((name) => IMAGE_EXTENSIONS.has(extension(name)) || ARRAY_EXTENSIONS.has(extension(name)))
    .sort()
    .map((name) => join(path, name));
  if (files.length === 0) throw new InputError(`The folder ${path} holds no images, .npz or .npy files`, { file: path });
  return files;
}

/** The frame of a still input: a decoded image, an EndoSynth sample's `rgb`, or a uint8 .npy. */
async function readFrame(path: string): Promise<NdArray<"uint8">> {
  const ext = extension(path);
  if (ext === ".npz") {
    const arrays = readNpz(path);
    if (!arrays.rgb) throw new InputError(`${path} has no "rgb" array (keys: ${Object.keys(arrays).join(", ")})`, { file: path, key: "rgb" });
    return toImageArray(arrays.rgb, `${path}:rgb`);
  }
  if (ext === ".npy") return toImageArray(readNpy(path), path);
  return readImage(path);
}

/** [left | right], two uint8 [H, W, 3] images of the same height side by side. */
function sideBySide(left: NdArray<"uint8">, right: NdArray<"uint8">): NdArray<"uint8"> {
  const [height, leftWidth] = left.shape;
  const rightWidth = right.shape[1];
  const data = new Uint8Array(height * (leftWidth + rightWidth) * 3);
  for (let y = 0; y < height; y++) {
    data.set(left.data.subarray(y * leftWidth * 3, (y + 1) * leftWidth * 3), y * (leftWidth + rightWidth) * 3);
    data.set(right.data.subarray(y * rightWidth * 3, (y + 1) * rightWidth * 3), (y * (leftWidth + rightWidth) + leftWidth) * 3);
  }
  return { data, shape: [height, leftWidth + rightWidth, 3], dtype: "uint8" };
}

/** The RGB channels of a frame (drops alpha) for pictures. */
function rgbOf(frame: NdArray<"uint8">): NdArray<"uint8"> {
  if (frame.shape[2] === 3) return frame;
  const pixels = frame.shape[0] * frame.shape[1];
  const data = new Uint8Array(pixels * 3);
  for (let p = 0; p < pixels; p++) data.set(frame.data.subarray(4 * p, 4 * p + 3), 3 * p);
  return { data, shape: [frame.shape[0], frame.shape[1], 3], dtype: "uint8" };
}

function picture(frame: NdArray<"uint8">, depth: NdArray<"float32">, options: InferCommandOptions): NdArray<"uint8"> {
  const colours = depth2rgb(depth, options.range[0], options.range[1]);
  return options.sideBySide ? sideBySide(rgbOf(frame), colours) : colours;
}

function assertPlyOptions(options: InferCommandOptions): void {
  if (!options.ply) return;
  const missing = (["fx", "fy"] as const).filter((key) => options[key] === undefined);
  if (missing.length > 0) throw new InputError(`--ply needs the camera intrinsics: give ${missing.map((key) => `--${key}`).join(" and ")} (pixels)`);
}

function intrinsicsOf(options: InferCommandOptions, frame: NdArray<"uint8">): Intrinsics {
  return { fx: options.fx!, fy: options.fy!, cx: options.cx ?? (frame.shape[1] - 1) / 2, cy: options.cy ?? (frame.shape[0] - 1) / 2 };
}

async function writeStill(path: string, frame: NdArray<"uint8">, depth: NdArray<"float32">, options: InferCommandOptions): Promise<string[]> {
  const written = [path];
  if (extension(path) === ".npy") writeNpy(path, depth);
  else await writeImage(path, picture(frame, depth, options));
  if (options.ply) {
    const cloud = depthToPointCloud(depth, intrinsicsOf(options, frame), { rgb: frame });
    const plyPath = `${path.slice(0, -extname(path).length)}.ply`;
    writePly(plyPath, cloud.points, cloud.colors);
    written.push(plyPath);
  }
  return written;
}

function stem(path: string): string {
  return basename(path, extname(path));
}

/** Where each still's result goes: the -o file for one input, else a file per input in the -o folder. */
function stillOutputs(files: readonly string[], options: InferCommandOptions): string[] {
  const named = options.output === undefined ? "" : extension(options.output);
  if (!STILL_OUTPUTS.has(named) && (IMAGE_EXTENSIONS.has(named) || VIDEO_EXTENSIONS.has(named))) {
    throw new InputError(`Expected a .png, .jpg or .npy file, or a folder, for -o with still inputs but received ${options.output}`);
  }
  if (files.length === 1 && options.output && STILL_OUTPUTS.has(extension(options.output))) return [options.output];
  if (files.length === 1 && !options.output) return [`${stem(files[0])}-depth.png`];
  const folder = options.output ?? "endosynth-depth";
  if (STILL_OUTPUTS.has(extension(folder))) {
    throw new InputError(`With ${files.length} inputs, -o must be a folder (one depth map per input) but received ${folder}`);
  }
  const outputs = files.map((file) => join(folder, `${stem(file)}.png`));
  assertDistinctOutputs(files, outputs);
  return outputs;
}

/** Inputs named alike in different folders (or with different extensions) would overwrite each other's result. */
function assertDistinctOutputs(files: readonly string[], outputs: readonly string[]): void {
  const firstInput = new Map<string, string>();
  for (const [index, output] of outputs.entries()) {
    const earlier = firstInput.get(output);
    if (earlier !== undefined) {
      throw new InputError(`${earlier} and ${files[index]} would both be written to ${output}: infer them into separate -o folders`, { file: output });
    }
    firstInput.set(output, files[index]);
  }
}

async function inferStills(model: Model, files: readonly string[], outputs: readonly string[], options: InferCommandOptions): Promise<void> {
  const progress = new CountProgress("infer", files.length, { quiet: options.quiet || files.length === 1 });
  const lines: string[] = [];
  for (const [index, file] of files.entries()) {
    const frame = await readFrame(file);
    const started = performance.now();
    const depth = await model.infer(frame);
    const milliseconds = performance.now() - started;
    mkdirSync(dirname(outputs[index]), { recursive: true });
    const written = await writeStill(outputs[index], frame, depth, options);
    progress.tick();
    lines.push(`${file} -> ${written.join(", ")} (${frame.shape[0]}x${frame.shape[1]}, ${range(depth.data)}, ${milliseconds.toFixed(0)} ms)`);
  }
  progress.stop();
  process.stdout.write(`${lines.join("\n")}\n`);
}

function range(values: Float32Array): string {
  let min = Infinity;
  let max = -Infinity;
  for (const value of values) {
    if (value < min) min = value;
    if (value > max) max = value;
  }
  return `depth ${min.toFixed(3)}-${max.toFixed(3)} m`;
}

/** Where a video's result goes: the -o video, else `<input>-depth.mp4`. */
function videoOutput(input: string, options: InferCommandOptions): string {
  if (!statSync(input, { throwIfNoEntry: false })) throw new InputError(`No such file: ${input}`, { file: input });
  if (options.ply) throw new InputError("--ply writes one point cloud per still image; it cannot be used with a video");
  const output = options.output ?? `${stem(input)}-depth.mp4`;
  if (!isVideo(output)) throw new InputError(`Expected a video file for -o with a video input (e.g. out.mp4) but received ${output}`);
  return output;
}

async function inferVideo(model: Model, { video: input, info, output }: VideoPlan, options: InferCommandOptions): Promise<void> {
  const width = options.sideBySide ? 2 * info.width : info.width;
  const writer = await createVideoWriter(output, { width, height: info.height, fps: info.fps });
  const progress = new CountProgress("frames", info.frameCount, { quiet: options.quiet });
  const controller = new AbortController();
  const stopListening = abortOnInterrupt(controller, `\ninterrupted: stopping; ${output} is not written (Ctrl-C again to quit at once)`, (text) => process.stderr.write(`${text}\n`));
  try {
    for await (const { frame, depth } of model.stream(readVideoFrames(input), { inflight: options.inflight, signal: controller.signal })) {
      await writer.write(picture(frame, depth, options));
      progress.tick();
    }
    await writer.close();
  } catch (error) {
    await writer.abort();
    throw error instanceof AbortError ? interrupted(error.message) : error;
  } finally {
    stopListening();
    const { done, rate } = progress.stop();
    if (!options.quiet) process.stderr.write(`${done} frames at ${rate.toFixed(1)} frames/s\n`);
  }
  process.stdout.write(`${input} -> ${output} (${info.width}x${info.height}, ${info.fps} fps, ${model.backend})\n`);
}

/** A video to infer: what ffprobe found in it, and where the result goes. */
interface VideoPlan {
  video: string;
  info: VideoInfo;
  output: string;
}

type InputPlan = VideoPlan | { stills: string[]; outputs: string[] };

/**
 * What to read and where each result goes, checked before a model is loaded (which can take
 * minutes): a missing ffmpeg or an unreadable video is reported at once.
 */
async function planInputs(inputs: readonly string[], options: InferCommandOptions): Promise<InputPlan> {
  const videos = inputs.filter(isVideo);
  if (videos.length > 1 || (videos.length === 1 && inputs.length > 1)) {
    throw new InputError(`Give one video at a time (received ${inputs.length} inputs, ${videos.length} of them videos)`);
  }
  if (videos.length === 1) {
    const output = videoOutput(videos[0], options);
    return { video: videos[0], info: await probeVideo(videos[0]), output };
  }
  const stills = inputs.flatMap(expandInput);
  return { stills, outputs: stillOutputs(stills, options) };
}

async function runInfer(name: ModelName, inputs: string[], options: InferCommandOptions): Promise<void> {
  assertPlyOptions(options);
  const plan = await planInputs(inputs, options);
  const progress = new PhaseProgress({ quiet: options.quiet });
  const model = await load(name, {
    backend: options.backend,
    onProgress: progress.onProgress,
    ...(options.channelOrder ? { channelOrder: options.channelOrder } : {}),
    ...(options.checkpoint ? { checkpoint: options.checkpoint } : {}),
    ...(options.onnx ? { onnx: resolve(options.onnx) } : {}),
    ...(options.threads ? { threads: options.threads } : {}),
  }).finally(() => progress.stop());
  try {
    if (!options.quiet) process.stderr.write(`${name} (${model.precision}) on ${model.backend}: ${model.backendReason}\n`);
    if ("video" in plan) await inferVideo(model, plan, options);
    else await inferStills(model, plan.stills, plan.outputs, options);
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

/** Adds the `infer` command. */
export function registerInferCommand(program: Command): void {
  program
    .command("infer")
    .description("metric depth for images, EndoSynth samples (.npz), uint8 .npy frames, folders of them, or a video")
    .addArgument(program.createArgument("<model>", "the model").choices(MODEL_NAMES))
    .argument("<input...>", "image, .npz sample, .npy, folder, or one video (.mp4, .mkv, ...)")
    .option("-o, --output <path>", "for one still: .png/.jpg (colour map) or .npy (metres); for several: a folder; for a video: a video file")
    .option("--range <min,max>", "colour map range in metres (fixed, so frames compare)", parseRange, [0.02, 0.2] as [number, number])
    .option("--side-by-side", "put the input frame left of the depth colours")
    .option("-c, --checkpoint <file>", "checkpoint (default: $ENDOSYNTH_CHECKPOINTS or ./checkpoints, <model>-f.pth)")
    .option("--onnx <file>", "run this converted ONNX model instead of a checkpoint")
    .addOption(new Option("--backend <backend>", "runtime").choices(["auto", "onnxruntime", "tensorrt"]).default("auto"))
    .option("--threads <n>", "ONNX Runtime CPU threads", parsePositiveInteger)
    .addOption(new Option("--channel-order <order>", "order of the input's channels: rgb (reference convention, the default) or bgr; not with --onnx").choices(["rgb", "bgr"]))
    .option("--inflight <n>", "frames in flight at once for videos", parsePositiveInteger, 2)
    .option("--ply", "also write a point cloud (.ply, coloured) beside each still's output; needs --fx and --fy")
    .option("--fx <pixels>", "focal length along x, pixels", parseNumber)
    .option("--fy <pixels>", "focal length along y, pixels", parseNumber)
    .option("--cx <pixels>", "principal point column (default: the image centre)", parseNumber)
    .option("--cy <pixels>", "principal point row (default: the image centre)", parseNumber)
    .option("-q, --quiet", "no progress output")
    .action((name: ModelName, inputs: string[], options: InferCommandOptions) => runInfer(name, inputs, options));
}
