/**
 * TensorRT inference benchmark, for `npm run bench -- infer --backend tensorrt`:
 *
 * - per-frame latency with one frame in flight (median and p99), split into the host-to-device
 *   copy, the engine and the device-to-host copy (CUDA events in the addon), host staging copies
 *   and the JS overhead (everything else between the call and the resolved promise);
 * - throughput with 1, 2 and 4 frames in flight.
 *
 * Frames are the zero-copy kind a real feed uses: pinned buffers from `createInput` /
 * `createOutput`, refilled before every run. Needs an NVIDIA GPU and TensorRT; elsewhere it rejects
 * with the reason from `tensorrtStatus()`. The first run for a model and shape builds its engine
 * (minutes, reported through `onProgress`); later runs load it from `cacheDir`.
 *
 * @example
 * ```ts
 * const result = await benchInferTensorRT({ onnxPath: "dav1.onnx", cacheDir: "/tmp/endosynth" });
 * console.log(formatTensorRTBench(result));
 * ```
 */
import { createHash } from "node:crypto";
import { createReadStream, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ProgressCallback } from "../../lib/progress.js";
import { openTensorRT, tensorrtStatus, type TensorRTSession, type TensorRTTimings } from "../../lib/backends/tensorrt/index.js";
import { convertCheckpoint } from "../../lib/convert/convert.js";
import { modelSpec } from "../../lib/models/registry.js";
import { writeRandomCheckpoint } from "./convert.js";

const NETWORK_INPUT = modelSpec("dav1").input;

/** Options of {@link benchInferTensorRT}. */
export interface TensorRTBenchOptions {
  onnxPath: string;
  /** Identifies the model in the engine cache; default: SHA-256 of the .onnx file and its external data. */
  onnxHash?: string;
  /** Engine cache folder; default `<tmpdir>/endosynth-bench`. */
  cacheDir?: string;
  precision?: "fp16" | "fp32";
  /** Frame size; default 420 x 742 x 3, the size the EndoSynth models run at. */
  height?: number;
  width?: number;
  channels?: 3 | 4;
  /** Timed frames per measurement (default 200) after `warmup` untimed ones (default 20). */
  frames?: number;
  warmup?: number;
  /** In-flight levels of the throughput measurement (default 1, 2, 4). */
  inflight?: readonly number[];
  onProgress?: ProgressCallback;
}

/** Median and 99th percentile of one quantity, in milliseconds. */
export interface LatencyStats {
  medianMs: number;
  p99Ms: number;
}

/** Throughput at one in-flight level. */
export interface ThroughputRow {
  inflight: number;
  framesPerSecond: number;
  /** Median time from a frame's submission to its result at this level. */
  medianLatencyMs: number;
}

/** Everything {@link benchInferTensorRT} measured. */
export interface TensorRTBenchResult {
  device: string;
  tensorrtVersion: string;
  engine: string;
  precision: "fp16" | "fp32";
  shape: [number, number, 3 | 4];
  frames: number;
  /** Whether the engine ran as CUDA graphs. */
  graphs: boolean;
  latency: Record<"total" | "h2d" | "engine" | "d2h" | "hostCopy" | "jsOverhead", LatencyStats>;
  throughput: ThroughputRow[];
}

/** Published Depth Anything ViT-B fp16 TensorRT latencies at 518 x 518 (ms). */
export const PUBLISHED_ANCHORS_518 = [
  { device: "NVIDIA H100", ms: 5.6 },
  { device: "NVIDIA GeForce RTX 4090", ms: 6.0 },
] as const;

/** The value below which `fraction` of the sorted values lie (nearest rank). */
function percentile(sorted: readonly number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1))]!;
}

function stats(values: readonly number[]): LatencyStats {
  const sorted = [...values].sort((a, b) => a - b);
  return { medianMs: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99) };
}

async function hashFiles(paths: readonly string[]): Promise<string> {
  const hash = createHash("sha256");
  for (const path of paths) {
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  }
  return hash.digest("hex");
}

/** The .onnx file and the external-data files the converter writes beside it. */
function modelFiles(onnxPath: string): string[] {
  const candidates = [onnxPath, `${onnxPath}.data`, onnxPath.replace(/\.onnx$/, ".data")];
  return [...new Set(candidates)].filter((path) => existsSync(path));
}

/** Fills a frame with a moving gradient, as a decoder would write a new frame. */
function fillFrame(data: Uint8Array, index: number): void {
  for (let i = 0; i < data.length; i++) data[i] = (i + index * 7) & 0xff;
}

async function measureLatency(session: TensorRTSession, shape: [number, number, 3 | 4], frames: number, warmup: number): Promise<{ timings: TensorRTTimings[] }> {
  const [height, width, channels] = shape;
  const input = session.createInput(height, width, channels);
  const output = session.createOutput(height, width);
  const timings: TensorRTTimings[] = [];
  for (let i = 0; i < warmup + frames; i++) {
    fillFrame(input.data, i);
    const { timings: frame } = await session.runTimed(input, { out: output.data });
    if (i >= warmup) timings.push(frame);
  }
  return { timings };
}

async function measureThroughput(session: TensorRTSession, shape: [number, number, 3 | 4], inflight: number, frames: number, warmup: number): Promise<ThroughputRow> {
  const [height, width, channels] = shape;
  const lanes = Array.from({ length: inflight }, () => ({ input: session.createInput(height, width, channels), output: session.createOutput(height, width) }));
  const latencies: number[] = [];
  let next = 0;
  const lane = async (buffers: (typeof lanes)[number], budget: number, record: boolean) => {
    while (next < budget) {
      const index = next++;
      fillFrame(buffers.input.data, index);
      const { timings } = await session.runTimed(buffers.input, { out: buffers.output.data });
      if (record) latencies.push(timings.totalMs);
    }
  };
  await Promise.all(lanes.map((buffers) => lane(buffers, warmup * inflight, false)));
  next = 0;
  const started = performance.now();
  await Promise.all(lanes.map((buffers) => lane(buffers, frames, true)));
  const seconds = (performance.now() - started) / 1000;
  return { inflight, framesPerSecond: frames / seconds, medianLatencyMs: stats(latencies).medianMs };
}

/**
 * Opens the model on TensorRT (building or loading its engine) and measures latency and
 * throughput. Rejects with BackendUnavailableError where TensorRT cannot run.
 */
export async function benchInferTensorRT(options: TensorRTBenchOptions): Promise<TensorRTBenchResult> {
  const shape: [number, number, 3 | 4] = [options.height ?? 420, options.width ?? 742, options.channels ?? 3];
  const frames = options.frames ?? 200;
  const warmup = options.warmup ?? 20;
  const levels = options.inflight ?? [1, 2, 4];
  const precision = options.precision ?? "fp16";
  const session = await openTensorRT({
    onnxPath: options.onnxPath,
    onnxHash: options.onnxHash ?? (await hashFiles(modelFiles(options.onnxPath))),
    cacheDir: options.cacheDir ?? join(tmpdir(), "endosynth-bench"),
    precision,
    inflight: Math.max(...levels),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
  try {
    const engine = await session.prepare(...shape);
    const { timings } = await measureLatency(session, shape, frames, warmup);
    const pick = (key: keyof TensorRTTimings) => stats(timings.map((timing) => timing[key] as number));
    const throughput: ThroughputRow[] = [];
    for (const inflight of levels) throughput.push(await measureThroughput(session, shape, inflight, frames, warmup));
    const status = tensorrtStatus();
    return {
      device: status.cuda.devices[0]?.name ?? "unknown GPU",
      tensorrtVersion: status.tensorrt.version ?? "unknown",
      engine: engine.description,
      precision,
      shape,
      frames,
      graphs: engine.graphs,
      latency: {
        total: pick("totalMs"),
        h2d: pick("h2dMs"),
        engine: pick("engineMs"),
        d2h: pick("d2hMs"),
        hostCopy: pick("hostCopyMs"),
        jsOverhead: pick("jsOverheadMs"),
      },
      throughput,
    };
  } finally {
    await session.dispose();
  }
}

/** The result as a report, with the published anchors scaled to the measured frame size. */
export function formatTensorRTBench(result: TensorRTBenchResult): string {
  const [height, width, channels] = result.shape;
  const row = (name: string, value: LatencyStats) => `  ${name.padEnd(12)} ${value.medianMs.toFixed(2).padStart(9)} ${value.p99Ms.toFixed(2).padStart(9)}`;
  // Every frame is resized to the network's 420x742 inside the graph, so the network's cost does not
  // depend on the frame size; ViT cost grows with the patch count: 420x742 is ~1.16x 518x518.
  const scale = (NETWORK_INPUT.height * NETWORK_INPUT.width) / (518 * 518);
  return [
    `TensorRT ${result.tensorrtVersion} on ${result.device}: ${result.engine}`,
    `${result.precision}, frames ${height}x${width}x${channels}, ${result.frames} timed frames, CUDA graphs ${result.graphs ? "on" : "off"}`,
    "",
    "latency with 1 frame in flight",
    `  ${"".padEnd(12)} ${"median ms".padStart(9)} ${"p99 ms".padStart(9)}`,
    row("total", result.latency.total),
    row("H2D", result.latency.h2d),
    row("engine", result.latency.engine),
    row("D2H", result.latency.d2h),
    row("host copies", result.latency.hostCopy),
    row("JS overhead", result.latency.jsOverhead),
    "",
    "throughput",
    `  ${"in flight".padEnd(12)} ${"frames/s".padStart(9)} ${"median latency ms".padStart(18)}`,
    ...result.throughput.map((entry) => `  ${String(entry.inflight).padEnd(12)} ${entry.framesPerSecond.toFixed(1).padStart(9)} ${entry.medianLatencyMs.toFixed(2).padStart(18)}`),
    "",
    `published anchors (Depth Anything ViT-B fp16 TensorRT, 518x518; x${scale.toFixed(2)} for the ${NETWORK_INPUT.height}x${NETWORK_INPUT.width} network input by pixel count):`,
    ...PUBLISHED_ANCHORS_518.map((anchor) => `  ${anchor.device.padEnd(24)} ${anchor.ms.toFixed(1)} ms at 518x518, ~${(anchor.ms * scale).toFixed(1)} ms expected here (engine time)`),
  ].join("\n");
}

/**
 * `npm run bench -- infer --backend tensorrt`: converts a full-size Depth Anything v1 with random
 * weights (keys_full.json), in the precision the installed TensorRT needs, and benchmarks it on
 * 1080x1920 frames (the model resizes to 420x742 inside the engine). Returns the exit code.
 */
export async function runTensorRTInferBench(options: { json: boolean }): Promise<number> {
  const status = tensorrtStatus();
  if (!status.available) {
    console.error(`TensorRT cannot run here: ${status.reason}`);
    return 1;
  }
  const workDir = mkdtempSync(join(tmpdir(), "endosynth-bench-tensorrt-"));
  try {
    const checkpoint = join(workDir, "dav1-random.pth");
    const onnxPath = join(workDir, "dav1.onnx");
    writeRandomCheckpoint("dav1", checkpoint);
    await convertCheckpoint({ model: "dav1", checkpoint, output: onnxPath, precision: "fp16" });
    const result = await benchInferTensorRT({
      onnxPath,
      height: 1080,
      width: 1920,
      onProgress: (progress) => process.stderr.write(`\r${progress.phase} ${progress.fraction === undefined ? "" : `${(100 * progress.fraction).toFixed(0)}%`}   `),
    });
    process.stderr.write("\n");
    console.log(options.json ? JSON.stringify(result, null, 2) : formatTensorRTBench(result));
    return 0;
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}
