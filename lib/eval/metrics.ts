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
import { expectArray, formatShape, type NdArray } from "../ndarray/ndarray.js";
import {
  BELOW_GT, BELOW_PRED, CANDIDATES_GT, CANDIDATES_PRED, CLASS_COUNT, classRuns, COUNT_ACC, COUNT_D1, COUNT_D2, COUNT_D3, EVERY_VALUE,
  groundTruthValues, medianBrackets, medianOf, NO_VALUE, NONFINITE_GT, NONFINITE_PRED, PixelPass, type PassSettings, select, SPACE_FIELDS,
  SUM_ABS, SUM_ABS_REL, SUM_GT, SUM_LOG, SUM_PRED, SUM_SQ, SUM_SQ_REL, VALID,
} from "./pixel_sums.js";

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

const DEFAULT_MIN_DEPTH = 1e-3;

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

/** Median as NumPy defines it: the mean of the two middle values for an even count. Reorders `values`. */
export function median(values: Float32Array | Float64Array, length = values.length): number {
  if (length === 0) return NaN;
  const upper = select(values, length, length >> 1);
  if (length % 2 === 1) return upper;
  // After selecting the upper middle, the lower middle is the largest of the left part.
  let lower = -Infinity;
  for (let i = 0; i < length >> 1; i++) if (values[i] > lower) lower = values[i];
  return (lower + upper) / 2;
}

// Per-class accumulator layout: the metric block, then the aligned block.
const METRIC_BLOCK = 0;
const ALIGNED_BLOCK = SPACE_FIELDS;
const FIELDS = 2 * SPACE_FIELDS;

/**
 * Median scaling from the raw pass's candidates; when a bracket missed a middle value, a second
 * pass collects every valid value instead.
 */
function medianScale(raw: PixelPass, settings: PassSettings, runs: Int32Array, runCount: number): number {
  const { totals } = raw;
  const valid = totals[VALID];
  let medianGt = medianOf(raw.candidatesGt, totals[CANDIDATES_GT], totals[BELOW_GT], valid);
  let medianPred = medianOf(raw.candidatesPred, totals[CANDIDATES_PRED], totals[BELOW_PRED], valid);
  if (medianGt === undefined || medianPred === undefined) {
    const sums = new Float64Array(settings.sums.length);
    const every = new PixelPass({ ...settings, sums, predBracket: EVERY_VALUE, gtBracket: EVERY_VALUE }).run(runs, runCount);
    medianGt = median(every.candidatesGt, every.totals[CANDIDATES_GT]);
    medianPred = median(every.candidatesPred, every.totals[CANDIDATES_PRED]);
  }
  return medianGt / medianPred;
}

/** Least-squares scale and shift in depth space, in two passes (means, then centred moments) so nothing cancels. */
function leastSquares(raw: PixelPass): { scale: number; shift: number } {
  const { pred, gt, maxDepth, totals } = raw;
  const valid = totals[VALID];
  if (valid === 0) return { scale: NaN, shift: NaN };
  const meanP = totals[SUM_PRED] / valid;
  const meanG = totals[SUM_GT] / valid;
  let varP = 0;
  let covPG = 0;
  for (let i = 0; i < gt.length; i++) {
    const g = gt[i];
    const p = pred[i];
    if (!(g > 0 && g <= maxDepth && p - p === 0)) continue;
    varP += (p - meanP) * (p - meanP);
    covPG += (p - meanP) * (g - meanG);
  }
  // A constant prediction makes every s · p + t = mean(g) optimal: take the pure scale.
  if (varP === 0) return { scale: meanP === 0 ? NaN : meanG / meanP, shift: 0 };
  const scale = covPG / varP;
  return { scale, shift: meanG - scale * meanP };
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
function groupMetrics(sums: Float64Array, pixelsPerClass: Float64Array, classes: readonly number[]): GroupMetrics {
  const total = new Float64Array(FIELDS);
  let pixels = 0;
  for (const c of classes) {
    pixels += pixelsPerClass[c];
    for (let f = 0; f < FIELDS; f++) total[f] += sums[c * FIELDS + f];
  }
  return { pixels, metric: metricValues(total, METRIC_BLOCK, pixels), aligned: metricValues(total, ALIGNED_BLOCK, pixels) };
}

const EVERY_CLASS = SEG_CLASSES.map((_, c) => c);

/**
 * Computes every metric of one prediction, overall and (with `seg`) per class group, in two passes
 * over the pixels (raw, then aligned; one for `alignment: "none"`). A 1080x1920 sample takes
 * ~95 ms with median alignment and classes, ~37 ms with neither, on the 2-core reference machine
 * (`npm run bench -- metrics`); nothing is allocated per call beyond the result once internal
 * buffers have grown to the sample size.
 *
 * @param prediction float32 [H, W] metres, e.g. `model.infer(rgb)`.
 * @param groundTruth float16 (decoded or raw), float32 or float64 [H, W] metres.
 * @throws {@link endosynth!InputError | InputError} for arrays of the wrong dtype or rank, shapes that differ, a seg value
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
  const pred = predArray.data;
  const gt = groundTruthValues(gtArray.data as Uint16Array | Float32Array | Float64Array);
  const { runs, count } = classRuns(gt.length, seg);
  const sums = new Float64Array(CLASS_COUNT * FIELDS);
  const brackets = alignment === "median" ? medianBrackets(pred, gt, Math.min(maxDepth, Number.MAX_VALUE)) : { pred: NO_VALUE, gt: NO_VALUE };
  const settings: PassSettings = {
    pred,
    gt,
    scale: 1,
    shift: 0,
    minDepth,
    // Infinity is never valid ground truth: the largest finite value excludes it in one comparison.
    maxDepth: Math.min(maxDepth, Number.MAX_VALUE),
    sums,
    offset: METRIC_BLOCK,
    stride: FIELDS,
    collects: alignment !== "none",
    predBracket: brackets.pred,
    gtBracket: brackets.gt,
  };
  const raw = new PixelPass(settings).run(runs, count);

  let scale = 1;
  let shift = 0;
  if (alignment === "median") scale = raw.totals[VALID] === 0 ? NaN : medianScale(raw, settings, runs, count);
  else if (alignment === "lsq") ({ scale, shift } = leastSquares(raw));
  if (alignment === "none") {
    // scale 1 and shift 0 give the raw prediction back: the aligned block is the metric block.
    for (let c = 0; c < CLASS_COUNT; c++) sums.copyWithin(c * FIELDS + ALIGNED_BLOCK, c * FIELDS + METRIC_BLOCK, c * FIELDS + METRIC_BLOCK + SPACE_FIELDS);
  } else {
    new PixelPass({ ...settings, scale, shift, offset: ALIGNED_BLOCK, collects: false }).run(runs, count);
  }

  const { totals, pixels } = raw;
  const groups: DepthMetrics["groups"] = { all: groupMetrics(sums, pixels, EVERY_CLASS) };
  if (seg) {
    groups.anatomy = groupMetrics(sums, pixels, [0]);
    groups.tools = groupMetrics(sums, pixels, EVERY_CLASS.slice(1));
    INSTRUMENT_KEYS.forEach((key, i) => (groups[key] = groupMetrics(sums, pixels, [i + 1])));
  }
  return { groups, alignment: { method: alignment, scale, shift }, nonFiniteGt: totals[NONFINITE_GT], nonFinitePred: totals[NONFINITE_PRED] };
}
