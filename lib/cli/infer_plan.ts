/**
 * `endosynth infer`, before any model is loaded (which can take minutes): what the inputs are,
 * where each result goes and in which format, and whether any of it is impossible (an unsupported
 * container, audio that cannot be copied, an output that exists without `--overwrite`, no ffmpeg).
 * @module
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { basename, dirname, extname, join } from "node:path";
import { InputError } from "../errors.js";
import { parseSource } from "../video/source.js";
import { findFfmpegPrograms, type FfmpegOptions } from "../video/discovery.js";
import { probeVideo, type VideoInfo } from "../video/probe.js";
import { isLiveSource } from "../video/source.js";
import { checkAudioCopy, VIDEO_OUTPUT_EXTENSIONS, videoEncodingFor } from "../video/writer.js";

/** How each frame's depth is written to its own file. */
export type FrameFormat = "png" | "jpg" | "npy" | "png16" | "tiff";

/** The `--format` choices. */
export const FRAME_FORMATS: readonly FrameFormat[] = ["png", "jpg", "npy", "png16", "tiff"];

const EXTENSION_OF: Readonly<Record<FrameFormat, string>> = { png: ".png", jpg: ".jpg", npy: ".npy", png16: ".png", tiff: ".tif" };
const FORMAT_OF_EXTENSION: Readonly<Record<string, FrameFormat>> = { ".png": "png", ".jpg": "jpg", ".jpeg": "jpg", ".npy": "npy", ".tif": "tiff", ".tiff": "tiff" };
const IMAGE_EXTENSIONS = new Set([".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".gif"]);
const ARRAY_EXTENSIONS = new Set([".npz", ".npy"]);
/** Inputs read as videos (any container ffmpeg reads could be, but these are unambiguous). */
const VIDEO_INPUT_EXTENSIONS = new Set([".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts", ".flv", ".wmv", ".ogv", ".mxf"]);
const URL_PATTERN = /^[a-z][a-z0-9+.-]*:\/\//i;
/** Output names that look like videos, so "-o out.avi" is refused as a video rather than made a folder. */
const VIDEO_LIKE_OUTPUTS = new Set([...VIDEO_INPUT_EXTENSIONS, ".gif"]);

/** The options planning reads. */
export interface PlanOptions {
  output?: string;
  format?: FrameFormat;
  ply?: boolean;
  fx?: number;
  fy?: number;
  audio: "none" | "copy";
  overwrite?: boolean;
  ffmpeg?: string;
}

/** What is read. */
export type InputPlan =
  | { kind: "stills"; files: string[] }
  | { kind: "video"; source: string; info: VideoInfo }
  | { kind: "live"; source: string };

/** Where results go. */
export type OutputPlan =
  /** One still input, one output file. */
  | { kind: "file"; path: string; format: FrameFormat }
  /** A file per frame in a folder, and the frames table. */
  | { kind: "folder"; folder: string; format: FrameFormat; csv: string }
  /** One .npz of every frame, and the frames table. */
  | { kind: "stack"; path: string; csv: string }
  /** A colour-mapped video, and the frames table. */
  | { kind: "video"; path: string; csv: string; audioFrom?: string };

export interface InferPlan {
  input: InputPlan;
  output: OutputPlan;
  /** For stills in a folder: each input's output file. */
  stillOutputs?: string[];
}

function extension(path: string): string {
  return extname(path).toLowerCase();
}

function stem(path: string): string {
  return basename(path, extname(path));
}

export function ffmpegOptions(options: PlanOptions): FfmpegOptions {
  return options.ffmpeg === undefined ? {} : { ffmpegPath: options.ffmpeg };
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

async function planInput(inputs: readonly string[], options: PlanOptions): Promise<InputPlan> {
  const streams = inputs.filter((input) => isLiveSource(input) || URL_PATTERN.test(input) || VIDEO_INPUT_EXTENSIONS.has(extension(input)));
  if (streams.length > 1 || (streams.length === 1 && inputs.length > 1)) {
    throw new InputError(`Give one video or live source at a time (received ${inputs.length} inputs, ${streams.length} of them videos or live sources)`);
  }
  if (streams.length === 0) return { kind: "stills", files: inputs.flatMap(expandInput) };
  const [source] = streams;
  if (isLiveSource(source)) {
    findFfmpegPrograms(ffmpegOptions(options));
    return { kind: "live", source };
  }
  // A URL of another scheme is refused by name; file:// names a file.
  const path = URL_PATTERN.test(source) ? parseSource(source).path! : source;
  if (!statSync(path, { throwIfNoEntry: false })) throw new InputError(`No such file: ${path}`, { file: path });
  return { kind: "video", source: path, info: await probeVideo(path, ffmpegOptions(options)) };
}

/** The per-frame format: from `--format`, else from the output file's extension, else colour PNG. */
function frameFormat(options: PlanOptions, path?: string): FrameFormat {
  const named = path === undefined ? undefined : FORMAT_OF_EXTENSION[extension(path)];
  if (options.format === undefined) return named ?? "png";
  if (named !== undefined && EXTENSION_OF[options.format] !== EXTENSION_OF[named]) {
    throw new InputError(`--format ${options.format} writes ${EXTENSION_OF[options.format]} files, but -o is ${path}`);
  }
  return options.format;
}

function sidecar(path: string): string {
  return join(dirname(path), `${stem(path)}.csv`);
}

function planStillOutputs(files: readonly string[], options: PlanOptions): { output: OutputPlan; stillOutputs?: string[] } {
  const target = options.output;
  const named = target === undefined ? "" : extension(target);
  if (VIDEO_LIKE_OUTPUTS.has(named)) throw new InputError(`Expected a .png, .jpg, .npy or .tif file, a .npz, or a folder, for -o with still inputs but received ${target}`);
  if (named === ".npz") return { output: { kind: "stack", path: target!, csv: sidecar(target!) } };
  if (FORMAT_OF_EXTENSION[named] !== undefined) {
    if (files.length > 1) throw new InputError(`With ${files.length} inputs, -o must be a folder (one depth map per input) or a .npz, but received ${target}`);
    return { output: { kind: "file", path: target!, format: frameFormat(options, target) } };
  }
  if (target === undefined && files.length === 1) {
    const format = frameFormat(options);
    return { output: { kind: "file", path: `${stem(files[0])}-depth${EXTENSION_OF[format]}`, format } };
  }
  const folder = target ?? "endosynth-depth";
  const format = frameFormat(options);
  const stillOutputs = files.map((file) => join(folder, `${stem(file)}${EXTENSION_OF[format]}`));
  assertDistinctOutputs(files, stillOutputs);
  return { output: { kind: "folder", folder, format, csv: join(folder, "frames.csv") }, stillOutputs };
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

async function planStreamOutput(input: Exclude<InputPlan, { kind: "stills" }>, options: PlanOptions): Promise<OutputPlan> {
  if (options.ply) throw new InputError("--ply writes one point cloud per still image; it cannot be used with a video or a live source");
  const target = options.output ?? (input.kind === "video" ? `${stem(input.source)}-depth.mp4` : "endosynth-depth");
  const named = extension(target);
  if (named === ".npz") return { kind: "stack", path: target, csv: sidecar(target) };
  if (FORMAT_OF_EXTENSION[named] !== undefined) {
    throw new InputError(`-o ${target} is one image, but a ${input.kind === "live" ? "live source" : "video"} gives many frames: name a folder (one file per frame), a .npz or a video (${VIDEO_OUTPUT_EXTENSIONS.join(", ")})`);
  }
  if (VIDEO_LIKE_OUTPUTS.has(named) || VIDEO_OUTPUT_EXTENSIONS.includes(named)) {
    videoEncodingFor(target);
    if (options.format !== undefined) throw new InputError(`--format applies to per-frame files; a video output (${target}) is a colour map`);
    const plan: OutputPlan = { kind: "video", path: target, csv: sidecar(target) };
    if (options.audio === "copy") {
      if (input.kind !== "video") throw new InputError("--audio copy needs a video file as input: a live source is opened once, for its pictures");
      if (await checkAudioCopy(input.source, target, ffmpegOptions(options))) plan.audioFrom = input.source;
    }
    return plan;
  }
  return { kind: "folder", folder: target, format: frameFormat(options), csv: join(target, "frames.csv") };
}

/** The files a run would replace: the plan's outputs, and per-frame files already in a frames folder. */
function existingOutputs(plan: InferPlan): string[] {
  const { output } = plan;
  if (output.kind === "file") return [output.path].filter((path) => existsSync(path));
  if (output.kind === "stack" || output.kind === "video") return [output.path, output.csv].filter((path) => existsSync(path));
  const candidates = plan.stillOutputs ?? [];
  const frameFile = new RegExp(`^\\d{6}\\${EXTENSION_OF[output.format]}$`);
  const frames = plan.stillOutputs || !existsSync(output.folder) ? [] : readdirSync(output.folder).filter((name) => frameFile.test(name)).map((name) => join(output.folder, name));
  return [...candidates, ...frames, output.csv].filter((path) => existsSync(path));
}

/**
 * Checks everything that can be checked before loading the model, and says where each result goes.
 * @throws {@link endosynth!InputError | InputError} for impossible inputs/outputs, and for existing outputs without --overwrite.
 * @throws {@link endosynth!BackendUnavailableError | BackendUnavailableError} for a video or live source on a machine without ffmpeg.
 * @throws {@link endosynth!FileFormatError | FileFormatError} for a video ffmpeg cannot read.
 */
export async function planInfer(inputs: readonly string[], options: PlanOptions): Promise<InferPlan> {
  if (options.audio === "copy" && options.output !== undefined && !VIDEO_OUTPUT_EXTENSIONS.includes(extension(options.output))) {
    throw new InputError(`--audio copy needs a video output (${VIDEO_OUTPUT_EXTENSIONS.join(", ")}), not ${options.output}`);
  }
  const input = await planInput(inputs, options);
  const plan: InferPlan =
    input.kind === "stills" ? { input, ...planStillOutputs(input.files, options) } : { input, output: await planStreamOutput(input, options) };
  if (!options.overwrite) {
    const existing = existingOutputs(plan);
    if (existing.length > 0) {
      const more = existing.length > 1 ? ` (and ${existing.length - 1} more file${existing.length > 2 ? "s" : ""})` : "";
      throw new InputError(`${existing[0]} already exists${more}: pass --overwrite to replace it`, { file: existing[0] });
    }
  }
  return plan;
}

/** The file of output frame `index` in a frames folder. */
export function frameFile(folder: string, format: FrameFormat, index: number): string {
  return join(folder, `${String(index).padStart(6, "0")}${EXTENSION_OF[format]}`);
}
