/**
 * Worker thread of the evaluation's pool (see worker_pool.ts): reads samples and computes metrics,
 * so that neither holds up the thread that feeds the models. Two stateless methods, a request in
 * and a reply out; arrays travel as transferred buffers, errors as plain data.
 * @internal
 * @module
 */
import { parentPort } from "node:worker_threads";
import { readSample } from "../io/sample.js";
import type { NdArray } from "../ndarray/ndarray.js";
import { transferableError, type TransferredError } from "../threads/transferred_error.js";
import { computeDepthMetrics, type DepthMetrics, type DepthMetricsOptions } from "./metrics.js";
import { groundTruthValues } from "./pixel_sums.js";
import { type DepthProfile, depthProfile } from "./profile.js";

/** A sample's arrays, each owning its buffer (so it can be transferred). */
export interface SampleArrays {
  rgb: NdArray<"uint8">;
  /** Raw float16 bits: half the bytes to move, decoded where the metrics are computed. */
  depth: NdArray<"float16">;
  seg: NdArray<"uint8">;
}

/** What `evaluate` is given: one sample's ground truth and each model's prediction for it. */
export interface EvaluateRequest {
  depth: NdArray<"float16">;
  seg: NdArray<"uint8">;
  predictions: NdArray<"float32">[];
  settings: Required<Omit<DepthMetricsOptions, "seg">>;
}

/** Per prediction: its metrics and depth profile, or why they could not be computed. */
export type EvaluateReply = ({ metrics: DepthMetrics; profile: DepthProfile } | { error: TransferredError })[];

export type WorkerRequest = { id: number; method: "read"; path: string } | { id: number; method: "evaluate"; request: EvaluateRequest };
export type WorkerReply = { id: number; result: SampleArrays | EvaluateReply } | { id: number; error: TransferredError };

/** `array` with a buffer of its own: readers may hand out views into a larger (or pooled) one. */
export function ownBuffer<A extends NdArray>(array: A): A {
  const data = array.data;
  if (data.byteOffset === 0 && data.byteLength === data.buffer.byteLength) return array;
  return { ...array, data: data.slice() };
}

function read(path: string): SampleArrays {
  const { rgb, depth, seg } = readSample(path, { halfPrecision: "raw" });
  return { rgb: ownBuffer(rgb), depth: ownBuffer(depth as NdArray<"float16">), seg: ownBuffer(seg) };
}

function evaluate({ depth, seg, predictions, settings }: EvaluateRequest): EvaluateReply {
  return predictions.map((prediction) => {
    try {
      const metrics = computeDepthMetrics(prediction, depth, { seg, ...settings });
      const gt = groundTruthValues(depth.data as Uint16Array);
      const profile = depthProfile(prediction.data, gt, { ...settings, scale: metrics.alignment.scale, shift: metrics.alignment.shift });
      return { metrics, profile };
    } catch (error) {
      return { error: transferableError(error) };
    }
  });
}

if (parentPort) {
  const port = parentPort;
  port.on("message", (request: WorkerRequest) => {
    try {
      if (request.method === "read") {
        const arrays = read(request.path);
        const buffers = [arrays.rgb, arrays.depth, arrays.seg].map((array) => array.data.buffer as ArrayBuffer);
        port.postMessage({ id: request.id, result: arrays } satisfies WorkerReply, buffers);
      } else {
        port.postMessage({ id: request.id, result: evaluate(request.request) } satisfies WorkerReply);
      }
    } catch (error) {
      port.postMessage({ id: request.id, error: transferableError(error) } satisfies WorkerReply);
    }
  });
}
