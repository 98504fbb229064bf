/** Helpers shared by the ONNX and model tests: run a graph in ONNX Runtime, compare arrays. */
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import type { Graph } from "../../lib/onnx/graph.js";
import { writeOnnx, type WriteOnnxOptions } from "../../lib/onnx/writer.js";
import { temporaryDirectory } from "../support/fixtures.js";

/** Test context with teardown (ava's ExecutionContext). */
export interface WithTeardown {
  teardown: (cleanup: () => void) => void;
}

/** A fresh temporary folder removed after the test. */
export function tempDir(t: WithTeardown): string {
  const dir = temporaryDirectory("endosynth-onnx-");
  t.teardown(dir.cleanup);
  return dir.path;
}

type Feed = { type: "float32"; data: Float32Array; dims: readonly number[] } | { type: "uint8"; data: Uint8Array; dims: readonly number[] } | { type: "int64"; data: BigInt64Array; dims: readonly number[] };

/** Writes `graph` to a temporary folder, opens it in ONNX Runtime and runs it once. */
export async function runGraph(
  t: WithTeardown,
  graph: Graph,
  feeds: Record<string, Feed>,
  options: WriteOnnxOptions = {},
): Promise<Record<string, ort.Tensor>> {
  const path = join(tempDir(t), `${graph.name}.onnx`);
  await writeOnnx(graph, path, options);
  const session = await ort.InferenceSession.create(path);
  t.teardown(() => void session.release());
  const inputs = Object.fromEntries(Object.entries(feeds).map(([name, feed]) => [name, new ort.Tensor(feed.type, feed.data, [...feed.dims])]));
  return session.run(inputs);
}

/** Max and mean absolute difference, and max relative difference (|a - e| / |e|, e away from 0). */
export function errorStats(actual: ArrayLike<number>, expected: ArrayLike<number>): { maxAbs: number; meanAbs: number; maxRel: number } {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} vs ${expected.length}`);
  let maxAbs = 0;
  let sum = 0;
  let maxRel = 0;
  for (let i = 0; i < actual.length; i++) {
    const diff = Math.abs(actual[i] - expected[i]);
    maxAbs = Math.max(maxAbs, diff);
    sum += diff;
    if (Math.abs(expected[i]) > 1e-3) maxRel = Math.max(maxRel, diff / Math.abs(expected[i]));
  }
  return { maxAbs, meanAbs: sum / actual.length, maxRel };
}

/** Deterministic pseudo-random floats in [-1, 1) (a small LCG, so tests need no dependency). */
export function randomFloats(count: number, seed = 1): Float32Array {
  let state = seed >>> 0;
  return Float32Array.from({ length: count }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 31 - 1;
  });
}
