/**
 * The per-pixel work behind {@link computeDepthMetrics}: every metric term of one space (raw or
 * aligned) accumulated per segmentation class in one pass, float64 sums in pixel order, and the
 * medians of the median alignment by selection among a few candidates.
 *
 * Why it is fast (a 1080x1920 sample in two passes, with no allocation once the scratch buffers
 * have grown to the largest sample seen):
 * - **One division per pixel**: the relative error x = (q − g) / g is formed once as (q − g) · (1/g)
 *   and gives AbsRel, SqRel and the log term. q − g is exact wherever q / g is within [0.5, 2]
 *   (Sterbenz), so x is accurate to an ulp *relative to itself*, however small it is.
 * - **No Math.log call**: ln(q / g) = ln(1 + x) from a 384-entry table of ln(c) at c = j/256, the
 *   nearest bin to 1 + x, plus a degree-7 series in t = (1 + x − c) / c, |t| ≤ 1/256. The result
 *   is within a few ulps of ln(q / g) relative to itself, so sums of |ln| agree with Math.log's to
 *   ~1e-15 relative.
 * - **No division for δ1..δ3**: each table bin also says how many of the thresholds 1.25, 1.25²,
 *   1.25³ its ratios pass (packed in one float, added once per pixel). The six bins that hold a
 *   threshold (T or 1/T) and ratios outside [0.5, 2) go to {@link exactTerms}, which divides as the
 *   definitions do; every other ratio is at least 0.07 bins (2.7e-4 relative) from a threshold, so
 *   its count is exact.
 * - **Per-class runs**: the segmentation map is cut into runs of one class, and each run is summed
 *   in local variables, loaded from and stored back to that class's accumulators: the same
 *   additions in the same order as adding each pixel to its class's slot, without the memory
 *   round trip per term.
 * - **Medians by selection among candidates**: a pseudo-random sample of valid pixels brackets
 *   each median; the pass collects only the values inside the bracket (a few % of them) and counts
 *   those below, and selection runs on the candidates. A bracket that missed (rare, and never
 *   wrong) falls back to selection over every valid value.
 * @internal
 * @module
 */
import { SEG_CLASSES } from "../io/sample.js";
import { decodeFloat16 } from "../ndarray/float16.js";

/** Number of classes a seg map can hold. */
export const CLASS_COUNT = SEG_CLASSES.length;

/** Fields of one space's block: five sums, then four counts. */
export const SUM_ABS = 0;
export const SUM_SQ = 1;
export const SUM_ABS_REL = 2;
export const SUM_SQ_REL = 3;
export const SUM_LOG = 4;
export const COUNT_ACC = 5;
export const COUNT_D1 = 6;
export const COUNT_D2 = 7;
export const COUNT_D3 = 8;
export const SPACE_FIELDS = 9;

/** |p − g| below this counts towards Acc@2cm. */
export const ACCURACY_THRESHOLD_M = 0.02;
const DELTA_THRESHOLDS = [1.25, 1.25 * 1.25, 1.25 * 1.25 * 1.25] as const;

// ---- ln(1 + x) and the δ counts, by table ----------------------------------------------------

/** Bins per unit of ratio: bin j holds ratios within half a bin of j / BINS. */
const BINS = 256;
/** Ratios in [0.5, 2) use the table. */
const FIRST_BIN = BINS / 2;
const END_BIN = 2 * BINS;
/** Per bin: c − 1, 1 / c, ln c, packed δ counts (negative: leave the bin to exactTerms). */
const STRIDE = 4;
/** δ counts pack into one float as δ1 + δ2 · 2^17 + δ3 · 2^34: exact for runs of ≤ 2^16 pixels. */
const PACK = 2 ** 17;
/** Runs are cut to this length so that the packed counts stay exact. */
export const MAX_RUN = 2 ** 16;

function buildTable(): Float64Array {
  const table = new Float64Array(END_BIN * STRIDE).fill(-1);
  for (let j = FIRST_BIN; j < END_BIN; j++) {
    const c = j / BINS;
    const passes = DELTA_THRESHOLDS.map((threshold) => (c < threshold && 1 / c < threshold ? 1 : 0));
    table[j * STRIDE] = (j - BINS) / BINS;
    table[j * STRIDE + 1] = BINS / j;
    table[j * STRIDE + 2] = Math.log(c);
    table[j * STRIDE + 3] = passes[0] + passes[1] * PACK + passes[2] * PACK * PACK;
  }
  for (const threshold of DELTA_THRESHOLDS) {
    for (const ratio of [threshold, 1 / threshold]) table[Math.round(ratio * BINS) * STRIDE + 3] = -1;
  }
  return table;
}

const TABLE = buildTable();

// Taylor coefficients of ln(1 + t) beyond t.
const C2 = -1 / 2;
const C3 = 1 / 3;
const C4 = -1 / 4;
const C5 = 1 / 5;
const C6 = -1 / 6;
const C7 = 1 / 7;

/** AbsRel and SqRel terms, and |ln(q / g)|, of the last pixel given to {@link exactTerms}. */
const exact = new Float64Array(3);

/**
 * The terms of one pixel exactly as the definitions write them (divisions, Math.log), for ratios
 * next to a δ threshold or outside [0.5, 2). Returns the packed δ counts; the other terms go to
 * `exact`. Kept out of the pass so that its call does not spill the pass's accumulators.
 */
function exactTerms(q: number, g: number, absError: number): number {
  const ratio = q / g;
  const spread = ratio >= 1 ? ratio : g / q;
  exact[0] = absError / g;
  exact[1] = (absError * absError) / g;
  exact[2] = Math.abs(Math.log(ratio));
  return (spread < DELTA_THRESHOLDS[0] ? 1 : 0) + (spread < DELTA_THRESHOLDS[1] ? PACK : 0) + (spread < DELTA_THRESHOLDS[2] ? PACK * PACK : 0);
}

// ---- one pass --------------------------------------------------------------------------------

/** Totals of a pass over every class, in `PixelPass.totals`. */
export const VALID = 0;
export const NONFINITE_GT = 1;
export const NONFINITE_PRED = 2;
export const SUM_PRED = 3;
export const SUM_GT = 4;
export const BELOW_PRED = 5;
export const BELOW_GT = 6;
export const CANDIDATES_PRED = 7;
export const CANDIDATES_GT = 8;
const TOTALS = 9;

/** What a pass reads and where it adds. */
export interface PassSettings {
  pred: Float32Array;
  gt: Float32Array | Float64Array;
  /** The prediction becomes max(scale · p + shift, minDepth). */
  scale: number;
  shift: number;
  minDepth: number;
  /** Largest valid ground truth, finite (Infinity is never valid). */
  maxDepth: number;
  /** Per-class blocks of {@link SPACE_FIELDS}, `stride` apart, the first at `offset`. */
  sums: Float64Array;
  offset: number;
  stride: number;
  /**
   * Whether the pass also gathers what the alignment needs: sums of the valid predictions and
   * ground truths (least squares), and the median candidates within the brackets.
   */
  collects: boolean;
  /** Values within a bracket are collected as median candidates; the others below it are counted. */
  predBracket: Bracket;
  gtBracket: Bracket;
}

/**
 * One pass over the pixels. Every pass is an object of this one class, so the pass loop sees a
 * single shape (objects spread from one another have other hidden classes, and the loop would
 * deoptimise on each).
 */
export class PixelPass {
  readonly pred: Float32Array;
  readonly gt: Float32Array | Float64Array;
  readonly scale: number;
  readonly shift: number;
  readonly minDepth: number;
  readonly maxDepth: number;
  readonly sums: Float64Array;
  readonly offset: number;
  readonly stride: number;
  readonly collects: boolean;
  readonly lowPred: number;
  readonly highPred: number;
  readonly lowGt: number;
  readonly highGt: number;
  readonly candidatesPred: Float32Array;
  readonly candidatesGt: Float32Array;
  /** Valid pixels per class. */
  readonly pixels = new Float64Array(CLASS_COUNT);
  /** Totals over every class: {@link VALID}, {@link NONFINITE_GT}, ... */
  readonly totals = new Float64Array(TOTALS);

  constructor(settings: PassSettings) {
    this.pred = settings.pred;
    this.gt = settings.gt;
    this.scale = settings.scale;
    this.shift = settings.shift;
    this.minDepth = settings.minDepth;
    this.maxDepth = settings.maxDepth;
    this.sums = settings.sums;
    this.offset = settings.offset;
    this.stride = settings.stride;
    this.collects = settings.collects;
    this.lowPred = settings.predBracket.low;
    this.highPred = settings.predBracket.high;
    this.lowGt = settings.gtBracket.low;
    this.highGt = settings.gtBracket.high;
    const bracketed = settings.collects && (settings.predBracket.low <= settings.predBracket.high || settings.gtBracket.low <= settings.gtBracket.high);
    ({ candidatesPred: this.candidatesPred, candidatesGt: this.candidatesGt } = candidateBuffers(bracketed ? settings.gt.length : 0));
  }

  /** Adds every run (start, end, class triples of {@link classRuns}). */
  run(runs: Int32Array, runCount: number): this {
    for (let r = 0; r < runCount; r++) sumRun(this, runs[3 * r], runs[3 * r + 1], runs[3 * r + 2]);
    return this;
  }
}

/** Adds the pixels [start, end) of one class (at most {@link MAX_RUN}) to its block. */
function sumRun(state: PixelPass, start: number, end: number, segClass: number): void {
  const { pred, gt, scale, shift, minDepth, maxDepth, sums, totals, collects, lowPred, highPred, lowGt, highGt, candidatesPred, candidatesGt } = state;
  const at = state.offset + segClass * state.stride;
  let sumAbs = sums[at + SUM_ABS];
  let sumSq = sums[at + SUM_SQ];
  let sumAbsRel = sums[at + SUM_ABS_REL];
  let sumSqRel = sums[at + SUM_SQ_REL];
  let sumLog = sums[at + SUM_LOG];
  let sumPred = totals[SUM_PRED];
  let sumGt = totals[SUM_GT];
  let accurate = 0;
  let deltas = 0;
  let valid = 0;
  let nonFiniteGt = 0;
  let nonFinitePred = 0;
  let belowPred = 0;
  let belowGt = 0;
  let nPred = totals[CANDIDATES_PRED] | 0;
  let nGt = totals[CANDIDATES_GT] | 0;
  for (let i = start; i < end; i++) {
    const g = gt[i];
    const p = pred[i];
    // Valid: finite g in (0, maxDepth] and finite p; NaN fails every comparison.
    if (!(g > 0 && g <= maxDepth && p - p === 0)) {
      if (g - g !== 0) nonFiniteGt++;
      else if (g > 0 && g <= maxDepth) nonFinitePred++;
      continue;
    }
    valid++;
    if (collects) {
      sumPred += p;
      sumGt += g;
      if (p >= lowPred && p <= highPred) candidatesPred[nPred++] = p;
      else if (p < lowPred) belowPred++;
      if (g >= lowGt && g <= highGt) candidatesGt[nGt++] = g;
      else if (g < lowGt) belowGt++;
    }

    const q = Math.max(scale * p + shift, minDepth);
    const difference = q - g;
    const absError = Math.abs(difference);
    const x = difference * (1 / g);
    sumAbs += absError;
    sumSq += absError * absError;
    if (absError < ACCURACY_THRESHOLD_M) accurate++;
    const bin = (x * BINS + (BINS + 0.5)) | 0;
    const o = bin < END_BIN ? bin * STRIDE : 0;
    const packed = TABLE[o + 3];
    if (packed < 0) {
      deltas += exactTerms(q, g, absError);
      sumAbsRel += exact[0];
      sumSqRel += exact[1];
      sumLog += exact[2];
      continue;
    }
    const relative = Math.abs(x);
    sumAbsRel += relative;
    sumSqRel += relative * absError;
    const t = (x - TABLE[o]) * TABLE[o + 1];
    const t2 = t * t;
    sumLog += Math.abs(TABLE[o + 2] + (t + t2 * (C2 + t * C3)) + t2 * t2 * (C4 + t * C5 + t2 * (C6 + t * C7)));
    deltas += packed;
  }
  sums[at + SUM_ABS] = sumAbs;
  sums[at + SUM_SQ] = sumSq;
  sums[at + SUM_ABS_REL] = sumAbsRel;
  sums[at + SUM_SQ_REL] = sumSqRel;
  sums[at + SUM_LOG] = sumLog;
  sums[at + COUNT_ACC] += accurate;
  const d3 = Math.floor(deltas / (PACK * PACK));
  const d2 = Math.floor((deltas - d3 * PACK * PACK) / PACK);
  sums[at + COUNT_D1] += deltas - d3 * PACK * PACK - d2 * PACK;
  sums[at + COUNT_D2] += d2;
  sums[at + COUNT_D3] += d3;
  state.pixels[segClass] += valid;
  totals[VALID] += valid;
  totals[NONFINITE_GT] += nonFiniteGt;
  totals[NONFINITE_PRED] += nonFinitePred;
  totals[SUM_PRED] = sumPred;
  totals[SUM_GT] = sumGt;
  totals[BELOW_PRED] += belowPred;
  totals[BELOW_GT] += belowGt;
  totals[CANDIDATES_PRED] = nPred;
  totals[CANDIDATES_GT] = nGt;
}

// ---- scratch buffers, reused across calls ------------------------------------------------------

/** Pixels drawn to bracket the medians; brackets hold ~4 % of the values around the middle. */
const SAMPLE_DRAWS = 8192;

/** Buffers that only grow: a 1080x1920 evaluation allocates them once. */
const scratch = {
  gt: new Float32Array(0),
  runs: new Int32Array(0),
  candidatesPred: new Float32Array(0),
  candidatesGt: new Float32Array(0),
  samplePred: new Float32Array(SAMPLE_DRAWS),
  sampleGt: new Float32Array(SAMPLE_DRAWS),
};

/** Ground truth as float32 or float64 values: float16 bits are decoded into a reused buffer. */
export function groundTruthValues(data: Uint16Array | Float32Array | Float64Array): Float32Array | Float64Array {
  if (!(data instanceof Uint16Array)) return data;
  if (scratch.gt.length < data.length) scratch.gt = new Float32Array(data.length);
  return decodeFloat16(data, scratch.gt.subarray(0, data.length));
}

/** Candidate buffers able to hold every pixel (a bracket can hold them all: a constant map). */
function candidateBuffers(length: number): { candidatesPred: Float32Array; candidatesGt: Float32Array } {
  if (scratch.candidatesPred.length < length) {
    scratch.candidatesPred = new Float32Array(length);
    scratch.candidatesGt = new Float32Array(length);
  }
  return { candidatesPred: scratch.candidatesPred, candidatesGt: scratch.candidatesGt };
}

/**
 * Cuts the pixels into runs of one class, at most {@link MAX_RUN} long, as (start, end, class)
 * triples; without `seg`, every pixel is class 0.
 */
export function classRuns(length: number, seg: Uint8Array | undefined): { runs: Int32Array; count: number } {
  let runs = scratch.runs;
  let count = 0;
  const push = (start: number, end: number, segClass: number) => {
    if (3 * count + 3 > runs.length) {
      const grown = new Int32Array(Math.max(3 * 1024, 2 * runs.length));
      grown.set(runs);
      runs = scratch.runs = grown;
    }
    runs[3 * count] = start;
    runs[3 * count + 1] = end;
    runs[3 * count + 2] = segClass;
    count++;
  };
  let start = 0;
  while (start < length) {
    const segClass = seg ? seg[start] : 0;
    const limit = Math.min(length, start + MAX_RUN);
    let end = start + 1;
    if (seg) while (end < limit && seg[end] === segClass) end++;
    else end = limit;
    push(start, end, segClass);
    start = end;
  }
  return { runs, count };
}

// ---- medians -----------------------------------------------------------------------------------

/** Below this many pixels, selection over every value is as cheap as bracketing. */
const MIN_PIXELS_TO_BRACKET = 1 << 16;

/** A bracket [low, high] around a median; the empty bracket collects nothing. */
export interface Bracket {
  low: number;
  high: number;
}

/** Collects every value: selection over all of them. */
export const EVERY_VALUE: Bracket = { low: -Infinity, high: Infinity };

/** Collects nothing (every value counts as above it). */
export const NO_VALUE: Bracket = { low: Infinity, high: -Infinity };

/**
 * Brackets around the medians of the valid predictions and ground truths, from a deterministic
 * pseudo-random sample of pixels: ±2 standard deviations of the sample median's rank, so a
 * bracket misses the median about once in 20 000 samples (then {@link medianOf} says so).
 */
export function medianBrackets(pred: Float32Array, gt: Float32Array | Float64Array, maxDepth: number): { pred: Bracket; gt: Bracket } {
  if (gt.length < MIN_PIXELS_TO_BRACKET) return { pred: EVERY_VALUE, gt: EVERY_VALUE };
  const { samplePred, sampleGt } = scratch;
  let m = 0;
  let state = 0x9e3779b9;
  for (let draw = 0; draw < SAMPLE_DRAWS; draw++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    const i = (state >>> 0) % gt.length;
    const g = gt[i];
    const p = pred[i];
    if (!(g > 0 && g <= maxDepth && p - p === 0)) continue;
    samplePred[m] = p;
    sampleGt[m++] = g;
  }
  if (m < SAMPLE_DRAWS / 4) return { pred: EVERY_VALUE, gt: EVERY_VALUE };
  const margin = Math.ceil(2 * Math.sqrt(m));
  const lowRank = Math.max(0, (m >> 1) - margin);
  const highRank = Math.min(m - 1, (m >> 1) + margin);
  const bracket = (values: Float32Array): Bracket => {
    const sorted = values.subarray(0, m).sort();
    return { low: sorted[lowRank], high: sorted[highRank] };
  };
  return { pred: bracket(samplePred), gt: bracket(sampleGt) };
}

/** k-th smallest (0-based) of `values[0..length)`, reordering them (Hoare's selection). */
export function select(values: Float32Array | Float64Array, length: number, k: number): number {
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

/**
 * The median of `total` values (NumPy's: the mean of the two middle ones for an even count), from
 * the `count` candidates collected inside a bracket with `below` values under it; undefined when
 * a middle value lies outside the bracket.
 */
export function medianOf(candidates: Float32Array, count: number, below: number, total: number): number | undefined {
  if (total === 0) return NaN;
  const upperRank = total >> 1;
  const lowerRank = total % 2 === 1 ? upperRank : upperRank - 1;
  if (below > lowerRank || below + count <= upperRank) return undefined;
  const k = upperRank - below;
  const upper = select(candidates, count, k);
  if (lowerRank === upperRank) return upper;
  // After selecting the upper middle, the lower middle is the largest of the values left of it.
  let lower = -Infinity;
  for (let i = 0; i < k; i++) if (candidates[i] > lower) lower = candidates[i];
  return (lower + upper) / 2;
}

/**
 * Runs passes over eight pixels that take every branch of the loop (invalid ground truth and
 * prediction, non-finite values, the table and the exact terms, candidates below, inside and above
 * a bracket) when the module loads. Why: V8 compiles the first long loop on-stack while it runs,
 * before the code after the loop and the rare branches have ever run; that code then deoptimises
 * on its first use, and Node 20's V8 re-enters the same cached on-stack code on every later call,
 * deoptimising each time (measured: ~1000 deoptimisations and 1.7x the time per 1080x1920
 * sample). V8 only records type feedback from a function's ~8th call on, hence the repeats.
 */
const SEED_CALLS = 16;

function seedTypeFeedback(): void {
  const gt = Float32Array.of(0.1, 0.1, 0.1, 0.1, NaN, 0, 0.1, 0.2);
  const pred = Float32Array.of(0.11, 0.125, 0.3, NaN, 0.1, 0.1, 0.05, 0.2);
  const settings = { pred, gt, scale: 1, shift: 0, minDepth: 1e-3, maxDepth: Number.MAX_VALUE, offset: 0, stride: SPACE_FIELDS };
  // Both kinds of pass: the raw one collects, the aligned one does not.
  const bracket = { low: 0.1, high: 0.11 };
  for (let call = 0; call < SEED_CALLS; call++) {
    new PixelPass({ ...settings, collects: call % 2 === 0, sums: new Float64Array(CLASS_COUNT * SPACE_FIELDS), predBracket: bracket, gtBracket: bracket }).run(Int32Array.of(0, 8, 0), 1);
  }
}

seedTypeFeedback();
