/**
 * Where `endosynth infer` writes each frame's depth: one file, a file per frame in a folder (colour
 * map, .npy metres, 16-bit PNG millimetres, float TIFF metres), one .npz stack, or a colour-mapped
 * video; beside the last three, a table of every frame (CSV: index, source frame number,
 * timestamp, latency, input, output).
 * @module
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { dirname, extname } from "node:path";
import { depthToPointCloud } from "../geometry/pointcloud.js";
import { temporaryPathFor } from "../io/atomic.js";
import { writeImage } from "../io/image.js";
import { writeNpy } from "../io/npy.js";
import { writePly } from "../io/ply.js";
import type { NdArray } from "../ndarray/ndarray.js";
import { DepthStackWriter, writeDepthPng16, writeDepthTiff } from "../video/depth_files.js";
import { createVideoWriter, type VideoWriter } from "../video/writer.js";
import { depth2rgb } from "../viz/depth2rgb.js";
import { type FrameFormat, frameFile, type InferPlan } from "./infer_plan.js";

/** One frame's result, as the outputs need it. */
export interface FrameResult {
  /** Position among the results (0, 1, 2, ...). */
  index: number;
  frame: NdArray<"uint8">;
  depth: NdArray<"float32">;
  /** The frame's number in its source; gaps are dropped frames. */
  frameNumber?: number;
  /** Timestamp in seconds, when the source gives one. */
  pts?: number;
  /** From the frame's arrival to its depth, milliseconds. */
  latencyMs: number;
  /** The still image or array it came from. */
  input?: string;
}

/** How results are drawn and scaled. */
export interface OutputOptions {
  range: [number, number];
  sideBySide?: boolean;
  /** Stored units per metre of 16-bit PNGs. */
  scale: number;
  ply?: boolean;
  fx?: number;
  fy?: number;
  cx?: number;
  cy?: number;
  pixFmt?: string;
  ffmpeg?: string;
}

/** Receives results in order; `close` finishes every file, `abort` removes what is unfinished. */
export interface DepthSink {
  /** Writes one result; returns the files written for it (per-frame files only). */
  write(result: FrameResult): Promise<string[]>;
  /** Finishes the outputs; returns the main ones (file, folder, stack or video, and the table). */
  close(): Promise<string[]>;
  abort(): Promise<void>;
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

/** The colour map of the depth over the fixed range, beside the input frame with --side-by-side. */
export function picture(frame: NdArray<"uint8">, depth: NdArray<"float32">, options: OutputOptions): NdArray<"uint8"> {
  const colours = depth2rgb(depth, options.range[0], options.range[1]);
  return options.sideBySide ? sideBySide(rgbOf(frame), colours) : colours;
}

/** Writes one frame's file in `format`; with --ply, its point cloud beside it. Returns the files. */
async function writeFrameFile(path: string, format: FrameFormat, result: FrameResult, options: OutputOptions): Promise<string[]> {
  const { frame, depth } = result;
  if (format === "npy") writeNpy(path, depth);
  else if (format === "png16") writeDepthPng16(path, depth, { scale: options.scale });
  else if (format === "tiff") writeDepthTiff(path, depth);
  else await writeImage(path, picture(frame, depth, options));
  if (!options.ply) return [path];
  const intrinsics = { fx: options.fx!, fy: options.fy!, cx: options.cx ?? (frame.shape[1] - 1) / 2, cy: options.cy ?? (frame.shape[0] - 1) / 2 };
  const cloud = depthToPointCloud(depth, intrinsics, { rgb: frame });
  const plyPath = `${path.slice(0, -extname(path).length)}.ply`;
  writePly(plyPath, cloud.points, cloud.colors);
  return [path, plyPath];
}

/** A CSV cell: quoted when it holds a comma, a quote or a line break. */
function cell(value: string | number | undefined): string {
  if (value === undefined || (typeof value === "number" && !Number.isFinite(value))) return "";
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/**
 * The frames table, streamed to a temporary file and renamed onto its path by `close()`, so it
 * appears complete, like every other output.
 */
export class FramesTable {
  readonly path: string;
  readonly #temporary: string;
  readonly #fd: number;
  #open = true;

  constructor(path: string) {
    this.path = path;
    mkdirSync(dirname(path), { recursive: true });
    this.#temporary = temporaryPathFor(path);
    this.#fd = openSync(this.#temporary, "wx");
    this.#line(["index", "frame_number", "pts", "latency_ms", "input", "output"]);
  }

  #line(cells: (string | number | undefined)[]): void {
    const bytes = Buffer.from(`${cells.map(cell).join(",")}\n`);
    for (let done = 0; done < bytes.length; ) done += writeSync(this.#fd, bytes, done);
  }

  add(result: FrameResult, output?: string): void {
    const pts = result.pts === undefined || !Number.isFinite(result.pts) ? undefined : Number(result.pts.toFixed(6));
    this.#line([result.index, result.frameNumber ?? result.index, pts, Number(result.latencyMs.toFixed(3)), result.input, output]);
  }

  close(): void {
    if (!this.#open) return;
    this.#open = false;
    fsyncSync(this.#fd);
    closeSync(this.#fd);
    renameSync(this.#temporary, this.path);
  }

  abort(): void {
    if (!this.#open) return;
    this.#open = false;
    closeSync(this.#fd);
    rmSync(this.#temporary, { force: true });
  }
}

function singleFileSink(path: string, format: FrameFormat, options: OutputOptions): DepthSink {
  const written: string[] = [];
  return {
    async write(result) {
      mkdirSync(dirname(path), { recursive: true });
      written.push(...(await writeFrameFile(path, format, result, options)));
      return written;
    },
    async close() {
      return written;
    },
    async abort() {},
  };
}

function folderSink(folder: string, format: FrameFormat, csv: string, stillOutputs: readonly string[] | undefined, options: OutputOptions): DepthSink {
  mkdirSync(folder, { recursive: true });
  const table = new FramesTable(csv);
  return {
    async write(result) {
      const path = stillOutputs?.[result.index] ?? frameFile(folder, format, result.index);
      const written = await writeFrameFile(path, format, result, options);
      table.add(result, path);
      return written;
    },
    async close() {
      table.close();
      return [folder, csv];
    },
    async abort() {
      table.abort();
    },
  };
}

function stackSink(path: string, csv: string): DepthSink {
  mkdirSync(dirname(path), { recursive: true });
  const stack = new DepthStackWriter(path);
  const table = new FramesTable(csv);
  return {
    async write(result) {
      stack.add(result.depth, { pts: result.pts ?? Number.NaN, frameNumber: result.frameNumber ?? result.index });
      table.add(result);
      return [];
    },
    async close() {
      stack.close();
      table.close();
      return [path, csv];
    },
    async abort() {
      stack.abort();
      table.abort();
    },
  };
}

/** The video writer starts with the first frame: a live source's size is known only then. */
function videoSink(path: string, csv: string, fps: number, audioFrom: string | undefined, options: OutputOptions): DepthSink {
  mkdirSync(dirname(path), { recursive: true });
  const table = new FramesTable(csv);
  let writer: VideoWriter | undefined;
  return {
    async write(result) {
      const image = picture(result.frame, result.depth, options);
      writer ??= await createVideoWriter(path, {
        width: image.shape[1],
        height: image.shape[0],
        fps,
        ...(options.pixFmt ? { pixelFormat: options.pixFmt } : {}),
        ...(audioFrom ? { audioFrom } : {}),
        ...(options.ffmpeg ? { ffmpegPath: options.ffmpeg } : {}),
      });
      await writer.write(image, result.pts !== undefined && Number.isFinite(result.pts) ? result.pts : undefined);
      table.add(result);
      return [];
    },
    async close() {
      await writer?.close();
      table.close();
      return writer ? [path, csv] : [csv];
    },
    async abort() {
      await writer?.abort();
      table.abort();
    },
  };
}

/**
 * The sink of a plan.
 * @param fps the video's frame rate, for frames without timestamps (live sources: 30).
 */
export function openSink(plan: InferPlan, options: OutputOptions, fps: number): DepthSink {
  const { output } = plan;
  switch (output.kind) {
    case "file":
      return singleFileSink(output.path, output.format, options);
    case "folder":
      return folderSink(output.folder, output.format, output.csv, plan.stillOutputs, options);
    case "stack":
      return stackSink(output.path, output.csv);
    case "video":
      return videoSink(output.path, output.csv, fps, output.audioFrom, options);
  }
}
