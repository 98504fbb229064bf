/** Small EndoSynth-format datasets and stand-in models whose predictions the tests know. */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { InputError } from "../../lib/errors.js";
import { DEPTH_BINS, type DepthProfile } from "../../lib/eval/profile.js";
import { readSample, writeSample } from "../../lib/io/sample.js";
import { ndarray, type NdArray } from "../../lib/ndarray/ndarray.js";
import type { DepthModel } from "../../lib/stream.js";

export const HEIGHT = 12;
export const WIDTH = 16;

/** A deterministic pseudo-random generator (xorshift), so datasets are the same on every run. */
export function random(seed: number): () => number {
  let state = seed * 2654435761 + 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 4294967296;
  };
}

/** Ground truth and classes of the samples, keyed by the rgb bytes the models receive. */
export type Truths = Map<string, { depth: Float32Array; seg: Uint8Array; id: string }>;

export function rgbKey(rgb: NdArray<"uint8">): string {
  return Buffer.from(rgb.data).toString("base64");
}

/**
 * Writes `count` samples to `<root>/samples/000000.npz...` and returns their ground truth as read
 * back (float16-rounded), keyed by rgb. Depth in [0.02, 0.26) m; seg: anatomy, with a band of class
 * 1 and a block of class 4.
 */
export function makeDataset(root: string, count: number, options: { nanPixels?: number } = {}): Truths {
  mkdirSync(join(root, "samples"), { recursive: true });
  const truths: Truths = new Map();
  for (let s = 0; s < count; s++) {
    const next = random(s + 1);
    const rgb = Uint8Array.from({ length: HEIGHT * WIDTH * 3 }, () => Math.floor(next() * 256));
    const depth = Float32Array.from({ length: HEIGHT * WIDTH }, () => 0.02 + 0.24 * next());
    for (let i = 0; i < (options.nanPixels ?? 0); i++) depth[i * 7] = NaN;
    const seg = new Uint8Array(HEIGHT * WIDTH);
    for (let y = 0; y < HEIGHT; y++) {
      for (let x = 0; x < WIDTH; x++) {
        if (y < 3) seg[y * WIDTH + x] = 1;
        else if (x >= 10 && y >= 8) seg[y * WIDTH + x] = 4;
      }
    }
    const id = `${String(s).padStart(6, "0")}.npz`;
    const path = join(root, "samples", id);
    writeSample(path, {
      rgb: ndarray<"uint8">(rgb, [HEIGHT, WIDTH, 3]),
      depth: ndarray<"float16">(depth, [HEIGHT, WIDTH], "float16"),
      seg: ndarray<"uint8">(seg, [HEIGHT, WIDTH]),
    });
    const back = readSample(path);
    truths.set(rgbKey(back.rgb), { depth: back.depth.data as Float32Array, seg: back.seg.data, id });
  }
  return truths;
}

/** Writes bytes that are not an archive under a sample name. */
export function writeCorruptSample(root: string, id: string): void {
  writeFileSync(join(root, "samples", id), Buffer.from("PK\u0003\u0004 not really a zip"));
}

/**
 * Stand-in model: looks the frame's ground truth up and returns `predict(gt, pixel)` for each pixel.
 * Counts its calls per sample.
 */
export class LookupModel implements DepthModel {
  readonly calls: string[] = [];
  constructor(
    readonly name: string,
    private readonly truths: Truths,
    private readonly predict: (gt: number, pixel: number) => number,
    private readonly fail?: (id: string) => Error | undefined,
  ) {}

  async infer(frame: NdArray<"uint8">): Promise<NdArray<"float32">> {
    const truth = this.truths.get(rgbKey(frame));
    if (!truth) throw new InputError("unknown frame");
    this.calls.push(truth.id);
    await new Promise((resolve) => setTimeout(resolve, 1));
    const failure = this.fail?.(truth.id);
    if (failure) throw failure;
    const depth = truth.depth.map((g, i) => this.predict(g, i));
    return ndarray<"float32">(depth, frame.shape.slice(0, 2));
  }
}

/** Prediction of the "scaled" stand-in: 10 % too far, and every 37th pixel 5 cm further still. */
export function scaledPrediction(gt: number, pixel: number): number {
  return gt * 1.1 + (pixel % 37 === 0 ? 0.05 : 0);
}

/** Prediction of the "shifted" stand-in: 1.5 cm too far everywhere. */
export function shiftedPrediction(gt: number): number {
  return gt + 0.015;
}

/** Reference metrics computed directly from the definitions, in float64, for one sample. */
export function referenceMetrics(gt: Float32Array, pred: Float32Array, keep: (pixel: number) => boolean = () => true) {
  const pixels: number[] = [];
  for (let i = 0; i < gt.length; i++) if (Number.isFinite(gt[i]) && gt[i] > 0 && keep(i)) pixels.push(i);
  const allValid: number[] = [];
  for (let i = 0; i < gt.length; i++) if (Number.isFinite(gt[i]) && gt[i] > 0) allValid.push(i);
  const medianOf = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    const middle = sorted.length >> 1;
    return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
  };
  const scale = medianOf(allValid.map((i) => gt[i])) / medianOf(allValid.map((i) => pred[i]));
  let abs = 0;
  let accurate = 0;
  let absRel = 0;
  let delta1 = 0;
  for (const i of pixels) {
    abs += Math.abs(pred[i] - gt[i]);
    if (Math.abs(pred[i] - gt[i]) < 0.02) accurate++;
    const aligned = pred[i] * scale;
    absRel += Math.abs(aligned - gt[i]) / gt[i];
    if (Math.max(aligned / gt[i], gt[i] / aligned) < 1.25) delta1++;
  }
  const n = pixels.length;
  return { pixels: n, maeCm: (100 * abs) / n, acc: accurate / n, absRelAligned: absRel / n, delta1Aligned: delta1 / n, absSum: abs };
}

/** A depth profile without pixels (NaN errors), to fill in per test. */
export function emptyProfile(): DepthProfile {
  return { pixels: new Array(DEPTH_BINS).fill(0), mae_cm: new Array(DEPTH_BINS).fill(NaN), abs_rel: new Array(DEPTH_BINS).fill(NaN) };
}
