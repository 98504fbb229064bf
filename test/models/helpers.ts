/** Helpers shared by the model tests. */
import * as ort from "onnxruntime-node";
import { readStateDict, type StateDict } from "../../lib/checkpoint/state_dict.js";
import { readNpy } from "../../lib/io/npy.js";
import type { NdArray } from "../../lib/ndarray/ndarray.js";
import { modelSpec, type ModelName } from "../../lib/models/registry.js";
import { Weights } from "../../lib/models/weights.js";
import { Graph } from "../../lib/onnx/graph.js";
import { fixture } from "../support/fixtures.js";
import { errorStats, runGraph, type WithTeardown } from "../onnx/helpers.js";

/** The two Depth Anything fixtures. */
export const DEPTH_ANYTHING = ["dav1", "dav2"] as const;

/** The parity bounds on expected.npy (metres) and the README's sensible relative bound. */
export const BOUNDS = { maxAbs: 1e-4, meanAbs: 1e-5, maxRel: 2e-4 } as const;

const stateDicts = new Map<string, Promise<StateDict>>();

/** A fixture's tiny.pth, read once per test file. */
export function tinyStateDict(arch: string): Promise<StateDict> {
  if (!stateDicts.has(arch)) stateDicts.set(arch, readStateDict(fixture(arch, "tiny.pth")).then((c) => c.stateDict));
  return stateDicts.get(arch)!;
}

/** A fixture's uint8 input frame. */
export function fixtureInput(arch: string): NdArray<"uint8"> {
  return readNpy(fixture(arch, "input.npy")) as NdArray<"uint8">;
}

/** A fixture's float32 array. */
export function fixtureFloats(arch: string, name: string): Float32Array {
  return readNpy(fixture(arch, name)).data as Float32Array;
}

/** The frame with its channel order reversed (RGB <-> BGR). */
export function reverseChannels(image: NdArray<"uint8">): NdArray<"uint8"> {
  const data = new Uint8Array(image.data.length);
  for (let i = 0; i < data.length; i += 3) [data[i], data[i + 1], data[i + 2]] = [image.data[i + 2], image.data[i + 1], image.data[i]];
  return { data, shape: image.shape, dtype: "uint8" };
}

/** Runs a converted model file on one frame and returns all its outputs. */
export async function runModelFile(path: string, frame: NdArray<"uint8">): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(path);
  try {
    return await session.run({ rgb: new ort.Tensor("uint8", frame.data, [...frame.shape]) });
  } finally {
    await session.release();
  }
}

/** Error statistics of one output against its reference. */
export interface ErrorStats {
  maxAbs: number;
  meanAbs: number;
  maxRel: number;
}

/** Whether depth errors are within the parity bounds. */
export function withinBounds(stats: ErrorStats): boolean {
  return stats.maxAbs <= BOUNDS.maxAbs && stats.meanAbs <= BOUNDS.meanAbs && stats.maxRel <= BOUNDS.maxRel;
}

/**
 * Builds a fixture's tiny model with its "preprocessed" and "raw" stages as extra outputs, runs it
 * on the fixture's input and compares every stage with the reference files, logging the errors.
 */
export async function stageErrors(t: WithTeardown & { log: (...values: unknown[]) => void }, arch: ModelName) {
  const g = new Graph(arch);
  const weights = new Weights(await tinyStateDict(arch));
  modelSpec(arch).build(g, weights, { channelOrder: "rgb", stageOutputs: ["preprocessed", "raw"] });
  weights.finish();
  const input = fixtureInput(arch);
  const result = await runGraph(t, g, { rgb: { type: "uint8", data: input.data, dims: input.shape } });

  const pre = errorStats(result.preprocessed.data as Float32Array, fixtureFloats(arch, "preprocessed.npy"));
  const rawExpected = fixtureFloats(arch, "output_raw.npy");
  const raw = errorStats(result.raw.data as Float32Array, rawExpected);
  const rawRange = rawExpected.reduce((a, b) => Math.max(a, b), -Infinity) - rawExpected.reduce((a, b) => Math.min(a, b), Infinity);
  const depth = errorStats(result.depth.data as Float32Array, fixtureFloats(arch, "expected.npy"));
  t.log(`preprocessed: max abs ${pre.maxAbs.toExponential(2)}, mean ${pre.meanAbs.toExponential(2)}`);
  t.log(`output_raw: max abs ${raw.maxAbs.toExponential(2)} (${(raw.maxAbs / rawRange).toExponential(2)} of its range), mean ${raw.meanAbs.toExponential(2)}`);
  t.log(`expected: max abs ${depth.maxAbs.toExponential(2)} m, mean ${depth.meanAbs.toExponential(2)} m, max rel ${depth.maxRel.toExponential(2)}`);
  return { input, result, pre, raw, rawRange, depth };
}
