/**
 * Depth metrics of one prediction against its ground truth: the EndoSynth paper's metric table
 * (MAE in cm, Acc@2cm), its relative table (AbsRel, δ1 after alignment) and the field's standard
 * set (RMSE, SqRel, log10, δ2, δ3), overall and per segmentation class.
 *
 * Definitions, with p the prediction and g the ground truth in metres, over the valid pixels:
 *
 * | name | definition |
 * |---|---|
 * | `mae_cm` | 100 · mean(\|p − g\|) |
 * | `acc_2cm` | fraction with \|p − g\| < 0.02 m |
 * | `rmse` | sqrt(mean((p − g)²)), metres |
 * | `abs_rel` | mean(\|p − g\| / g) |
 * | `sq_rel` | mean((p − g)² / g), metres |
 * | `log10` | mean(\|log10 p − log10 g\|) |
 * | `delta1..3` | fraction with max(p / g, g / p) < 1.25, 1.25², 1.25³ |
 *
 * **Valid pixels**: finite g > 0 (and g ≤ `maxDepth` when given) where p is finite. Non-finite
 * predictions are excluded but counted (`nonFinitePred`), so a model emitting NaN cannot hide.
 *
 * **Two spaces**: every metric is computed on the raw prediction (`metric`, what the paper's
 * metric-depth table reports) and on the prediction aligned to the ground truth (`aligned`, what
 * its relative table reports). Alignment is fitted once per sample over all valid pixels, then
 * applied to every class: a per-class fit would hide a model getting the relative depth of tools and
 * anatomy wrong. Methods:
 * - `"median"` (default): p · median(g) / median(p), the monodepth / EndoDAC convention.
 * - `"lsq"`: least-squares scale and shift s · p + t minimising Σ (s · p + t − g)² **in depth
 *   space**. Every model here outputs metric depth (not affine-invariant disparity, for which MiDaS
 *   fits in inverse depth), and the metrics measure depth errors, so fitting in depth space
 *   minimises exactly the squared error RMSE reports.
 * - `"none"`: `aligned` equals `metric`.
 *
 * Predictions (raw and aligned) are clamped below at `minDepth` (1 mm by default, as monodepth2 and
 * EndoDAC's evaluation do) before every metric, so log10 and the ratios stay defined when a
 * prediction, or a shift, reaches zero or below.
 *
 * Accumulation is in float64. A class without valid pixels reports `pixels: 0` and NaN metrics.
 *
 * @example
 * ```ts
 * import { computeDepthMetrics, readSample } from "endosynth";
 * const { rgb, depth, seg } = readSample("000010.npz");
 * const result = computeDepthMetrics(await model.infer(rgb), depth, { seg, alignment: "median" });
 * console.log(result.groups.all.metric.mae_cm, result.groups.tools?.aligned.delta1);
 * ```
 * @module
 */
import { InputError } from "../errors.js";
import { assertOneOf, assertOptions, invalidParameter, isFiniteNumber } from "../is.js";
import { assertSegClasses, SEG_CLASSES } from "../io/sample.js";
import { decodeFloat16 } from "../ndarray/float16.js";
import { expectArray, formatShape, type NdArray } from "../ndarray/ndarray.js";

/** The metric names, in the order tables show them. */
export const METRIC_NAMES = ["mae_cm", "acc_2cm", "rmse", "abs_rel", "sq_rel", "log10", "delta1", "delta2", "delta3"] as const;

/** One metric's name. */
export type MetricName = (typeof METRIC_NAMES)[number];

/** A value per metric; NaN when the group has no valid pixel. */
export type MetricValues = Record<MetricName, number>;

/** How predictions are aligned to the ground truth before the `aligned` metrics. */
export type Alignment = "median" | "lsq" | "none";

/** The alignment methods. */
export const ALIGNMENTS: readonly Alignment[] = ["median", "lsq", "none"];

/** Metrics that are means of per-pixel terms (all but RMSE, the root of a mean): a pixel-weighted mean of them is exact. */
export const MEAN_METRICS: readonly MetricName[] = METRIC_NAMES.filter((name) => name !== "rmse");

/** Whether a higher value is better, for each metric (tables mark ↑ / ↓). */
export const HIGHER_IS_BETTER: Readonly<Record<MetricName, boolean>> = {
  mae_cm: false, acc_2cm: true, rmse: false, abs_rel: false, sq_rel: false, log10: false, delta1: true, delta2: true, delta3: true,
};

/** Display names, as the paper writes them. */
export const METRIC_LABELS: Readonly<Record<MetricName, string>> = {
  mae_cm: "MAE (cm)", acc_2cm: "Acc@2cm", rmse: "RMSE (m)", abs_rel: "AbsRel", sq_rel: "SqRel", log10: "log10",
  delta1: "δ1", delta2: "δ2", delta3: "δ3",
};

/** Key of a segmentation class in result groups and files: its name with underscores. */
function classKey(name: string): string {
  return name.replace(/ /g, "_");
}

/** Instrument classes (every class but background), as group keys. */
const INSTRUMENT_KEYS = SEG_CLASSES.slice(1).map(classKey);

/**
 * Result groups: every valid pixel, the anatomy (seg 0), the tools (seg > 0), then each instrument
 * (`cadiere_forceps`, ..., keys are the {@link SEG_CLASSES} names with underscores).
 */
export const METRIC_GROUPS: readonly string[] = ["all", "anatomy", "tools", ...INSTRUMENT_KEYS];

/** Display name of a group key ("cadiere_forceps" → "cadiere forceps"). */
export function groupLabel(group: string): string {
  return group.replace(/_/g, " ");
}

/** The metrics of one group of pixels. */
export interface GroupMetrics {
  /** Number of valid pixels in the group. */
  pixels: number;
  /** Metrics of the raw prediction. */
  metric: MetricValues;
  /** Metrics after alignment (equal to `metric` for `alignment: "none"`). */
  aligned: MetricValues;
}

/** The metrics of one prediction. */
export interface DepthMetrics {
  /** `all` always; the class groups of {@link METRIC_GROUPS} when `seg` was given. */
  groups: {
    /** Every valid pixel. */
    all: GroupMetrics;
  } & Partial<Record<string, GroupMetrics>>;
  /** The alignment applied: aligned = scale · prediction + shift (shift 0 except for `"lsq"`). */
  alignment: {
    /** The method, as asked for in {@link DepthMetricsOptions.alignment}. */
    method: Alignment;
    /** Factor applied to the prediction (1 for `"none"`; NaN when there is no valid pixel). */
    scale: number;
    /** Offset added after scaling, in metres (0 except for `"lsq"`; NaN when there is no valid pixel). */
    shift: number;
  };
  /** Ground-truth pixels that are NaN or ±inf (excluded). EndoSynth has none: a count flags bad data. */
  nonFiniteGt: number;
  /** Prediction pixels that are NaN or ±inf where the ground truth is valid (excluded). */
  nonFinitePred: number;
}

/** Options of {@link computeDepthMetrics}. */
export interface DepthMetricsOptions {
  /** Class per pixel, uint8 [H, W] (values 0..6); adds the class groups. */
  seg?: NdArray<"uint8">;
  /** Alignment before the `aligned` metrics; default `"median"`. */
  alignment?: Alignment;
  /** Ground truth above this (metres) is not valid; default none. */
  maxDepth?: number;
  /** Predictions are clamped below at this (metres); default 0.001. */
  minDepth?: number;
}

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

/** Ground truth as float32 values, whatever its storage. */
function groundTruthValues(gt: NdArray): Float32Array | Float64Array {
  const data = gt.data;
  if (data instanceof Uint16Array) return decodeFloat16(data);
  return data as Float32Array | Float64Array;
}

/**
 * Checks the settings of {@link DepthMetricsOptions} and fills in their defaults; the dataset
 * runner checks its own options with it too.
 * @internal
 */
export function metricSettings(options: Omit<DepthMetricsOptions, "seg"> | undefined): Required<Omit<DepthMetricsOptions, "seg">> {
  const alignment = options?.alignment ?? "median";
  assertOneOf("options.alignment", alignment, ALIGNMENTS);
  const maxDepth = options?.maxDepth ?? Infinity;
  if (typeof maxDepth !== "number" || !(maxDepth > 0)) throw invalidParameter("options.maxDepth", "a positive number of metres", options?.maxDepth);
  const minDepth = options?.minDepth ?? DEFAULT_MIN_DEPTH;
  if (!isFiniteNumber(minDepth) || minDepth <= 0) throw invalidParameter("options.minDepth", "a positive number of metres", minDepth);
  return { alignment, maxDepth, minDepth };
}

function checkSameShape(name: string, array: NdArray, reference: NdArray): void {
  if (array.shape[0] !== reference.shape[0] || array.shape[1] !== reference.shape[1]) {
    throw new InputError(
      `Expected ${name} of the ground truth's shape ${formatShape(reference.shape)} but received ${formatShape(array.shape)}`,
      { key: name },
    );
  }
}

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

/** Median as NumPy defines it: the mean of the two middle values for an even count. */
export function median(values: Float32Array | Float64Array, length = values.length): number {
  if (length === 0) return NaN;
  const upper = select(values, length, length >> 1);
  if (length % 2 === 1) return upper;
  // After selecting the upper middle, the lower middle is the largest of the left part.
  let lower = -Infinity;
  for (let i = 0; i < length >> 1; i++) if (values[i] > lower) lower = values[i];
  return (lower + upper) / 2;
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
    return { scale: median(gtValues) / median(predValues), shift: 0 };
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

/**
 * Computes every metric of one prediction, overall and (with `seg`) per class group.
 *
 * @param prediction float32 [H, W] metres, e.g. `model.infer(rgb)`.
 * @param groundTruth float16 (decoded or raw), float32 or float64 [H, W] metres.
 * @throws {InputError} for arrays of the wrong dtype or rank, shapes that differ, a seg value
 * above 6, or bad options.
 */
export function computeDepthMetrics(prediction: NdArray<"float32">, groundTruth: NdArray, options?: DepthMetricsOptions): DepthMetrics {
  assertOptions("options", options as unknown, ["seg", "alignment", "maxDepth", "minDepth"]);
  const { alignment, maxDepth, minDepth } = metricSettings(options);
  const gtArray = expectArray(groundTruth, "groundTruth", ["float16", "float32", "float64"], [-1, -1]);
  const predArray = expectArray(prediction, "prediction", "float32", [-1, -1]);
  checkSameShape("prediction", predArray, gtArray);
  let seg: Uint8Array | undefined;
  if (options?.seg !== undefined) {
    const segArray = expectArray(options.seg, "options.seg", "uint8", [-1, -1]);
    checkSameShape("options.seg", segArray, gtArray);
    assertSegClasses(segArray, "options.seg");
    seg = segArray.data;
  }
  const pixels: Pixels = { pred: predArray.data, gt: groundTruthValues(gtArray), seg, maxDepth };

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
