/**
 * The `stream` suite: what keeping several frames in flight buys. A stand-in model spends a fixed
 * time on the main thread before and after each frame (pre/post-processing) and a fixed latency on
 * a "device" that runs one frame at a time (the network); the consumer spends a fixed time on each
 * result (colouring, encoding). In sequence a frame costs the sum; pipelined, the slowest stage.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { NdArray } from "../../lib/ndarray/ndarray.js";
import { type DepthModel, streamDepth } from "../../lib/stream.js";
import type { Suite } from "./harness.js";

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

export const streamSuite: Suite = {
  description: `${FRAMES} frames through streamDepth: pre ${PRE_MS} ms + device ${DEVICE_MS} ms + post ${POST_MS} ms per frame, consumer ${CONSUMER_MS} ms per result`,
  setup: () =>
    [1, 2, 4].map((inflight) => ({
      name: `inflight ${inflight}`,
      run: () => run(inflight),
      compare: { kind: "yardstick" as const, ms: SEQUENTIAL_MS, label: "in sequence" },
    })),
};
