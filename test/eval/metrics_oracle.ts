/**
 * The depth metrics as lib/eval/metrics.ts computed them before the single-pass rewrite, kept
 * verbatim (less argument checking) as the oracle the current implementation must agree with to
 * 1e-12 relative. Straightforward by design: a validity pass, an alignment fit over copies of the
 * valid values (median by selection over all of them, or two-pass least squares), then one
 * accumulation pass with a division and a Math.log per pixel and space.
 */
import type { Alignment, DepthMetrics, GroupMetrics, MetricValues } from "../../lib/eval/metrics.js";
import { METRIC_GROUPS } from "../../lib/eval/metrics.js";
import { SEG_CLASSES } from "../../lib/io/sample.js";
import { decodeFloat16 } from "../../lib/ndarray/float16.js";
import type { NdArray } from "../../lib/ndarray/ndarray.js";

const INSTRUMENT_KEYS = METRIC_GROUPS.slice(3);

const ACCURACY_THRESHOLD_M = 0.02;
const DELTA = 1.25;
const DEFAULT_MIN_DEPTH = 1e-3;
const CLASS_COUNT = SEG_CLASSES.length;

// Per-class accumulator layout: the pixel count, then one block of sums per space.
const SUM_ABS = 0;
const SUM_SQ = 1;
const SUM_ABS_REL = 2;
const SUM_SQ_REL = 3;
const SUM_LOG = 4;
const COUNT_ACC = 5;
const COUNT_D1 = 6;
const COUNT_D2 = 7;
const COUNT_D3 = 8;
const SPACE_FIELDS = 9;
const PIXELS = 0;
const METRIC_BLOCK = 1;
const ALIGNED_BLOCK = 1 + SPACE_FIELDS;
const FIELDS = 1 + 2 * SPACE_FIELDS;

/** What every pass over the pixels reads. */
interface Pixels {
  pred: Float32Array;
  gt: Float32Array | Float64Array;
  seg: Uint8Array | undefined;
  maxDepth: number;
}

function isValidGt(g: number, maxDepth: number): boolean {
  return g > 0 && g <= maxDepth && g !== Infinity;
}

/** k-th smallest (0-based) of `values[0..length)`, reordering them (Hoare's selection). */
function select(values: Float32Array | Float64Array, length: number, k: number): number {
  let left = 0;
  let right = length - 1;
  while (left < right) {
    const pivot = values[(left + right) >> 1];
    let i = left;
    let j = right;
    while (i <= j) {
      while (values[i] < pivot) i++;
      while (values[j] > pivot) j--;
      if (i <= j) {
        const swap = values[i];
        values[i] = values[j];
        values[j] = swap;
        i++;
        j--;
      }
    }
    if (k <= j) right = j;
    else if (k >= i) left = i;
    else return values[k];
  }
  return values[k];
}

/** Scale (and shift) mapping the prediction onto the ground truth over the valid pixels. */
function fitAlignment(pixels: Pixels, method: Alignment, validCount: number): { scale: number; shift: number } {
  if (method === "none") return { scale: 1, shift: 0 };
  if (validCount === 0) return { scale: NaN, shift: NaN };
  const { pred, gt, maxDepth } = pixels;
  if (method === "median") {
    // Float32 copies: every value is a float32 already, and half the bytes make selection faster.
    const predValues = new Float32Array(validCount);
    const gtValues = new Float32Array(validCount);
    let n = 0;
    for (let i = 0; i < gt.length; i++) {
      const g = gt[i];
      const p = pred[i];
      if (!isValidGt(g, maxDepth) || !Number.isFinite(p)) continue;
      predValues[n] = p;
      gtValues[n++] = g;
    }
    return { scale: oracleMedian(gtValues) / oracleMedian(predValues), shift: 0 };
  }
  // Least squares in two passes (means, then centred moments): no cancellation in float64.
  let sumP = 0;
  let sumG = 0;
  for (let i = 0; i < gt.length; i++) {
    const g = gt[i];
    const p = pred[i];
    if (!isValidGt(g, maxDepth) || !Number.isFinite(p)) continue;
    sumP += p;
    sumG += g;
  }
  const meanP = sumP / validCount;
  const meanG = sumG / validCount;
  let varP = 0;
  let covPG = 0;
  for (let i = 0; i < gt.length; i++) {
    const g = gt[i];
    const p = pred[i];
    if (!isValidGt(g, maxDepth) || !Number.isFinite(p)) continue;
    varP += (p - meanP) * (p - meanP);
    covPG += (p - meanP) * (g - meanG);
  }
  // A constant prediction makes every s · p + t = mean(g) optimal: take the pure scale.
  if (varP === 0) return { scale: meanP === 0 ? NaN : meanG / meanP, shift: 0 };
  const scale = covPG / varP;
  return { scale, shift: meanG - scale * meanP };
}

/** Adds one pixel's terms to a space block of the accumulator. */
function accumulate(sums: Float64Array, at: number, p: number, g: number): void {
  const absError = Math.abs(p - g);
  const ratio = p / g;
  const spread = ratio >= 1 ? ratio : g / p;
  sums[at + SUM_ABS] += absError;
  sums[at + SUM_SQ] += absError * absError;
  sums[at + SUM_ABS_REL] += absError / g;
  sums[at + SUM_SQ_REL] += (absError * absError) / g;
  // Natural log here (cheaper than log10 per pixel), converted once per group in metricValues.
  sums[at + SUM_LOG] += Math.abs(Math.log(ratio));
  if (absError < ACCURACY_THRESHOLD_M) sums[at + COUNT_ACC]++;
  if (spread < DELTA) sums[at + COUNT_D1]++;
  if (spread < DELTA * DELTA) sums[at + COUNT_D2]++;
  if (spread < DELTA * DELTA * DELTA) sums[at + COUNT_D3]++;
}

function metricValues(sums: Float64Array, at: number, pixels: number): MetricValues {
  return {
    mae_cm: (100 * sums[at + SUM_ABS]) / pixels,
    acc_2cm: sums[at + COUNT_ACC] / pixels,
    rmse: Math.sqrt(sums[at + SUM_SQ] / pixels),
    abs_rel: sums[at + SUM_ABS_REL] / pixels,
    sq_rel: sums[at + SUM_SQ_REL] / pixels,
    log10: (sums[at + SUM_LOG] * Math.LOG10E) / pixels,
    delta1: sums[at + COUNT_D1] / pixels,
    delta2: sums[at + COUNT_D2] / pixels,
    delta3: sums[at + COUNT_D3] / pixels,
  };
}

/** Metrics of the pixels whose class is in `classes`, from the per-class sums. */
function groupMetrics(sums: Float64Array, classes: readonly number[]): GroupMetrics {
  const total = new Float64Array(FIELDS);
  for (const c of classes) for (let f = 0; f < FIELDS; f++) total[f] += sums[c * FIELDS + f];
  const pixels = total[PIXELS];
  return { pixels, metric: metricValues(total, METRIC_BLOCK, pixels), aligned: metricValues(total, ALIGNED_BLOCK, pixels) };
}

/** Ground truth as float32 values, whatever its storage. */
function groundTruthValues(gt: NdArray): Float32Array | Float64Array {
  const data = gt.data;
  if (data instanceof Uint16Array) return decodeFloat16(data);
  return data as Float32Array | Float64Array;
}

/** Median as NumPy defines it: the mean of the two middle values for an even count. */
export function oracleMedian(values: Float32Array | Float64Array, length = values.length): number {
  if (length === 0) return NaN;
  const upper = select(values, length, length >> 1);
  if (length % 2 === 1) return upper;
  let lower = -Infinity;
  for (let i = 0; i < length >> 1; i++) if (values[i] > lower) lower = values[i];
  return (lower + upper) / 2;
}

/** The metrics of checked arrays, as the previous implementation computed them. */
export function oracleDepthMetrics(
  prediction: NdArray<"float32">,
  groundTruth: NdArray,
  options: { seg?: NdArray<"uint8">; alignment?: Alignment; maxDepth?: number; minDepth?: number } = {},
): DepthMetrics {
  const alignment = options.alignment ?? "median";
  const maxDepth = options.maxDepth ?? Infinity;
  const minDepth = options.minDepth ?? DEFAULT_MIN_DEPTH;
  const seg = options.seg?.data;
  const pixels: Pixels = { pred: prediction.data, gt: groundTruthValues(groundTruth), seg, maxDepth };

  let nonFiniteGt = 0;
  let nonFinitePred = 0;
  let validCount = 0;
  const { pred, gt } = pixels;
  for (let i = 0; i < gt.length; i++) {
    const g = gt[i];
    if (!Number.isFinite(g)) nonFiniteGt++;
    else if (isValidGt(g, maxDepth)) {
      if (Number.isFinite(pred[i])) validCount++;
      else nonFinitePred++;
    }
  }

  const { scale, shift } = fitAlignment(pixels, alignment, validCount);
  const sums = new Float64Array(CLASS_COUNT * FIELDS);
  for (let i = 0; i < gt.length; i++) {
    const g = gt[i];
    const p = pred[i];
    if (!isValidGt(g, maxDepth) || !Number.isFinite(p)) continue;
    const at = (seg ? seg[i] : 0) * FIELDS;
    sums[at + PIXELS]++;
    accumulate(sums, at + METRIC_BLOCK, Math.max(p, minDepth), g);
    accumulate(sums, at + ALIGNED_BLOCK, Math.max(scale * p + shift, minDepth), g);
  }

  const everyClass = SEG_CLASSES.map((_, c) => c);
  const groups: DepthMetrics["groups"] = { all: groupMetrics(sums, everyClass) };
  if (seg) {
    groups.anatomy = groupMetrics(sums, [0]);
    groups.tools = groupMetrics(sums, everyClass.slice(1));
    INSTRUMENT_KEYS.forEach((key, i) => (groups[key] = groupMetrics(sums, [i + 1])));
  }
  return { groups, alignment: { method: alignment, scale, shift }, nonFiniteGt, nonFinitePred };
}
