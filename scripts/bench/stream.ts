/**
 * The `stream` suite: what keeping several frames in flight buys, and what the video reader and
 * writer cost on top of ffmpeg itself (1080p H.264: the reader's per-frame announcement, pipe and
 * copy; the writer's timestamped pipe), each against the same work done by the ffmpeg command line.
 *
 * The `stream` suite's pipelining part: A stand-in model spends a fixed
 * time on the main thread before and after each frame (pre/post-processing) and a fixed latency on
 * a "device" that runs one frame at a time (the network); the consumer spends a fixed time on each
 * result (colouring, encoding). In sequence a frame costs the sum; pipelined, the slowest stage.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { NdArray } from "../../lib/ndarray/ndarray.js";
import { type DepthModel, streamDepth } from "../../lib/stream.js";
import { createVideoWriter, findFfmpegPrograms, readVideo } from "../../lib/video/index.js";
import type { BenchCase, Suite } from "./harness.js";

const FRAMES = 20;
const PRE_MS = 3;
const DEVICE_MS = 20;
const POST_MS = 3;
const CONSUMER_MS = 5;
const SEQUENTIAL_MS = FRAMES * (PRE_MS + DEVICE_MS + POST_MS + CONSUMER_MS);

/** Keeps the main thread busy, as synchronous pre/post-processing does. */
function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

/**
 * The stand-in: pre on the main thread, then the device, which runs queued frames back to back on
 * its own clock (as a GPU does, whatever the main thread is busy with), then post on the main thread.
 */
class FixedLatencyModel implements DepthModel {
  readonly name = "fixed-latency";
  private deviceFreeAt = 0;
  private readonly depth: NdArray<"float32"> = { data: new Float32Array(4), shape: [2, 2], dtype: "float32" };

  async infer(): Promise<NdArray<"float32">> {
    busy(PRE_MS);
    this.deviceFreeAt = Math.max(this.deviceFreeAt, performance.now()) + DEVICE_MS;
    await sleep(this.deviceFreeAt - performance.now());
    busy(POST_MS);
    return this.depth;
  }
}

const frame: NdArray<"uint8"> = { data: new Uint8Array(12), shape: [2, 2, 3], dtype: "uint8" };

async function run(inflight: number): Promise<void> {
  const model = new FixedLatencyModel();
  for await (const _ of streamDepth(model, Array.from({ length: FRAMES }, () => frame), { inflight })) busy(CONSUMER_MS);
}

const VIDEO_FRAMES = 30;
const VIDEO_SIZE = "1920x1080";
let videoDir: string | undefined;

/** Median wall time of a command line, for the yardsticks. */
function commandMs(program: string, args: string[], runs = 3): number {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    execFileSync(program, args, { stdio: "ignore" });
    times.push(performance.now() - start);
  }
  return Math.round(times.sort((a, b) => a - b)[Math.floor(runs / 2)]);
}

/** Reader and writer cases on a 1080p clip, with ffmpeg's own decoding and encoding as yardsticks. */
async function videoCases(): Promise<BenchCase[]> {
  const { ffmpeg } = findFfmpegPrograms();
  videoDir = mkdtempSync(join(tmpdir(), "endosynth-bench-video-"));
  const clip = join(videoDir, "clip.mp4");
  const raw = join(videoDir, "frames.rgb");
  execFileSync(ffmpeg, ["-v", "error", "-y", "-f", "lavfi", "-i", `testsrc=size=${VIDEO_SIZE}:rate=30`, "-frames:v", String(VIDEO_FRAMES), "-c:v", "libx264", "-pix_fmt", "yuv420p", clip]);
  execFileSync(ffmpeg, ["-v", "error", "-y", "-i", clip, "-f", "rawvideo", "-pix_fmt", "rgb24", raw]);
  const frames: NdArray<"uint8">[] = [];
  for await (const { frame } of readVideo(clip)) frames.push(frame);
  const [height, width] = frames[0].shape;
  const decodeMs = commandMs(ffmpeg, ["-v", "error", "-i", clip, "-f", "rawvideo", "-pix_fmt", "rgb24", "-y", "/dev/null"]);
  const encoded = join(videoDir, "ffmpeg.mp4");
  const encodeMs = commandMs(ffmpeg, ["-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", `${width}x${height}`, "-framerate", "30", "-i", raw, "-c:v", "libx264", "-pix_fmt", "yuv420p", encoded]);
  const output = join(videoDir, "out.mp4");
  return [
    {
      name: `readVideo ${VIDEO_SIZE} H.264, ${VIDEO_FRAMES} frames`,
      run: async () => {
        for await (const _ of readVideo(clip));
      },
      compare: { kind: "yardstick", ms: decodeMs, label: "ffmpeg decoding to rawvideo" },
    },
    {
      name: `createVideoWriter ${VIDEO_SIZE} H.264, ${VIDEO_FRAMES} frames`,
      run: async () => {
        const writer = await createVideoWriter(output, { width, height, fps: 30 });
        for (const [i, frame] of frames.entries()) await writer.write(frame, i / 30);
        await writer.close();
      },
      compare: { kind: "yardstick", ms: encodeMs, label: "ffmpeg encoding rawvideo" },
    },
  ];
}

export const streamSuite: Suite = {
  description: `${FRAMES} frames through streamDepth: pre ${PRE_MS} ms + device ${DEVICE_MS} ms + post ${POST_MS} ms per frame, consumer ${CONSUMER_MS} ms per result; video reader and writer at ${VIDEO_SIZE} against ffmpeg alone`,
  setup: async () => [
    ...[1, 2, 4].map((inflight) => ({
      name: `inflight ${inflight}`,
      run: () => run(inflight),
      compare: { kind: "yardstick" as const, ms: SEQUENTIAL_MS, label: "in sequence" },
    })),
    ...(await videoCases()),
  ],
  cleanup: () => {
    if (videoDir) rmSync(videoDir, { recursive: true, force: true });
  },
};
