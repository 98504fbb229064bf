import test, { type ExecutionContext } from "ava";
import { InputError } from "../../lib/errors.js";
import { ALIGNMENTS, computeDepthMetrics, type DepthMetrics, median, METRIC_GROUPS, METRIC_NAMES, type MetricValues } from "../../lib/eval/metrics.js";
import { medianOf } from "../../lib/eval/pixel_sums.js";
import { readSample } from "../../lib/io/sample.js";
import { ndarray, type NdArray } from "../../lib/ndarray/ndarray.js";
import { fixture } from "../support/fixtures.js";
import { random } from "./helpers.js";
import { oracleDepthMetrics } from "./metrics_oracle.js";

function depthMap(values: number[], shape: number[]): NdArray<"float32"> {
  return ndarray(new Float32Array(values), shape);
}

function close(t: ExecutionContext, actual: number, expected: number, tolerance = 1e-9, what = ""): void {
  t.true(Math.abs(actual - expected) <= tolerance, `${what}: expected ${expected} but got ${actual}`);
}

function closeAll(t: ExecutionContext, actual: MetricValues, expected: Partial<MetricValues>, tolerance = 1e-9): void {
  for (const [name, value] of Object.entries(expected)) close(t, actual[name as keyof MetricValues], value, tolerance, name);
}

// Binary fractions, exact in float32, so ratios that sit on a threshold are exactly on it.
const GT = [0.125, 0.25, 0.0625, 0.5, 0.5, 0];
const PRED = [0.140625, 0.21875, 0.0625, 0.625, 0.875, 0.3];

test("metric-space values match the hand-computed ones on six pixels (one invalid)", (t) => {
  const result = computeDepthMetrics(depthMap(PRED, [2, 3]), depthMap(GT, [2, 3]), { alignment: "none" });
  const all = result.groups.all;
  t.is(all.pixels, 5);
  // |errors| = 1/64, 1/32, 0, 1/8, 3/8; ratios 1.125, 8/7, 1, 1.25, 1.75; the gt-0 pixel is invalid.
  const abs = [1 / 64, 1 / 32, 0, 1 / 8, 3 / 8];
  const gt = [0.125, 0.25, 0.0625, 0.5, 0.5];
  closeAll(t, all.metric, {
    mae_cm: (100 * (1 / 64 + 1 / 32 + 0 + 1 / 8 + 3 / 8)) / 5,
    acc_2cm: 2 / 5, // 1/64 and 0 are below 2 cm
    rmse: Math.sqrt((1 / 4096 + 1 / 1024 + 0 + 1 / 64 + 9 / 64) / 5),
    abs_rel: abs.reduce((s, e, i) => s + e / gt[i], 0) / 5,
    sq_rel: abs.reduce((s, e, i) => s + (e * e) / gt[i], 0) / 5,
    log10: (Math.log10(1.125) + Math.log10(8 / 7) + 0 + Math.log10(1.25) + Math.log10(1.75)) / 5,
    delta1: 3 / 5, // ratio 1.25 is not < 1.25
    delta2: 4 / 5, // 1.75 > 1.5625
    delta3: 5 / 5, // 1.75 < 1.953125
  });
  t.deepEqual(all.aligned, all.metric);
  t.deepEqual(result.alignment, { method: "none", scale: 1, shift: 0 });
  t.deepEqual(Object.keys(result.groups), ["all"]);
});

test("non-finite, zero, negative and beyond-maxDepth ground truth and non-finite predictions are excluded and counted", (t) => {
  const gt = depthMap([0.1, NaN, Infinity, -0.2, 0, 0.3, 0.1, 0.2], [2, 4]);
  const pred = depthMap([0.12, 0.1, 0.1, 0.1, 0.1, 0.1, NaN, 0.2], [2, 4]);
  const result = computeDepthMetrics(pred, gt, { alignment: "none", maxDepth: 0.25 });
  t.is(result.nonFiniteGt, 2);
  t.is(result.nonFinitePred, 1);
  // Valid: (0.12 vs 0.1) and (0.2 vs 0.2); 0.3 is beyond maxDepth.
  t.is(result.groups.all.pixels, 2);
  close(t, result.groups.all.metric.mae_cm, (100 * (Math.fround(0.12) - Math.fround(0.1))) / 2, 1e-6);
});

test("median alignment scales by median(gt) / median(pred), the mean of the middle pair for even counts", (t) => {
  const gt = depthMap([0.1, 0.2, 0.3, 0.4], [2, 2]);
  const pred = depthMap([0.2, 0.8, 0.4, 0.6], [2, 2]);
  const result = computeDepthMetrics(pred, gt, { alignment: "median" });
  // median(gt) = 0.25, median(pred) = 0.5 → aligned prediction 0.1, 0.4, 0.2, 0.3.
  close(t, result.alignment.scale, 0.5, 1e-7);
  t.is(result.alignment.shift, 0);
  closeAll(t, result.groups.all.aligned, { abs_rel: (0 + 1 + 1 / 3 + 1 / 4) / 4, delta1: 1 / 4, mae_cm: (100 * (0 + 0.2 + 0.1 + 0.1)) / 4 }, 1e-6);
  closeAll(t, result.groups.all.metric, { mae_cm: (100 * (0.1 + 0.6 + 0.1 + 0.2)) / 4 }, 1e-6);
});

test("least-squares alignment fits scale and shift in depth space", (t) => {
  const gt = depthMap([0.1, 0.3, 0.2], [1, 3]);
  const pred = depthMap([0.1, 0.2, 0.3], [1, 3]);
  const result = computeDepthMetrics(pred, gt, { alignment: "lsq" });
  // Normal equations by hand: cov(p, g) = 0.01, var(p) = 0.02 → s = 0.5, t = 0.2 - 0.5 * 0.2 = 0.1.
  close(t, result.alignment.scale, 0.5, 1e-7);
  close(t, result.alignment.shift, 0.1, 1e-7);
  // Aligned 0.15, 0.2, 0.25 against 0.1, 0.3, 0.2.
  closeAll(t, result.groups.all.aligned, { rmse: Math.sqrt((0.0025 + 0.01 + 0.0025) / 3), mae_cm: (100 * 0.2) / 3 }, 1e-5);
});

test("least-squares alignment recovers an exact affine relation", (t) => {
  const gtValues = [0.05, 0.08, 0.11, 0.2, 0.15, 0.07];
  const gt = depthMap(gtValues, [2, 3]);
  const pred = depthMap(gtValues.map((g) => (g - 0.03) / 2), [2, 3]);
  const result = computeDepthMetrics(pred, gt, { alignment: "lsq" });
  close(t, result.alignment.scale, 2, 1e-5);
  close(t, result.alignment.shift, 0.03, 1e-6);
  close(t, result.groups.all.aligned.rmse, 0, 1e-7);
  t.is(result.groups.all.aligned.delta1, 1);
});

test("predictions at or below zero are clamped at minDepth so log10 and ratios stay defined", (t) => {
  const gt = depthMap([0.01, 0.02], [1, 2]);
  const pred = depthMap([0, -0.5], [1, 2]);
  const result = computeDepthMetrics(pred, gt, { alignment: "none", minDepth: 0.005 });
  // Both predictions become 0.005: |errors| 0.005 and 0.015, ratios 2 and 4.
  closeAll(t, result.groups.all.metric, {
    mae_cm: (100 * (0.005 + 0.015)) / 2,
    log10: (Math.log10(2) + Math.log10(4)) / 2,
    delta3: 0,
  }, 1e-7);
});

test("per-class groups split anatomy, tools and each instrument; alignment is fitted over all pixels", (t) => {
  // Classes: anatomy x2, cadiere forceps (1) x1, double fenestrated grasper (3) x1.
  const gt = depthMap([0.1, 0.1, 0.2, 0.2], [2, 2]);
  const pred = depthMap([0.1, 0.12, 0.3, 0.24], [2, 2]);
  const seg = ndarray<"uint8">(new Uint8Array([0, 0, 1, 3]), [2, 2]);
  const result = computeDepthMetrics(pred, gt, { seg, alignment: "median" });
  t.deepEqual(Object.keys(result.groups), [...METRIC_GROUPS]);
  const { anatomy, tools, cadiere_forceps, double_fenestrated_grasper, needle_driver } = result.groups;
  t.is(anatomy!.pixels, 2);
  t.is(tools!.pixels, 2);
  t.is(cadiere_forceps!.pixels, 1);
  t.is(double_fenestrated_grasper!.pixels, 1);
  close(t, anatomy!.metric.mae_cm, (100 * 0.02) / 2, 1e-6);
  close(t, tools!.metric.mae_cm, (100 * (0.1 + 0.04)) / 2, 1e-6);
  close(t, cadiere_forceps!.metric.abs_rel, 0.5, 1e-6);
  close(t, double_fenestrated_grasper!.metric.abs_rel, 0.2, 1e-6);
  t.is(needle_driver!.pixels, 0);
  for (const name of METRIC_NAMES) t.true(Number.isNaN(needle_driver!.metric[name]), name);
  // One scale for every class: median(gt) = 0.15, median(pred) = (0.12 + 0.24) / 2 = 0.18.
  close(t, result.alignment.scale, 0.15 / 0.18, 1e-6);
  close(t, anatomy!.aligned.mae_cm, (100 * (Math.abs(0.1 * (0.15 / 0.18) - 0.1) + Math.abs(0.12 * (0.15 / 0.18) - 0.1))) / 2, 1e-5);
});

test("a sample with no valid pixel reports zero pixels and NaN metrics", (t) => {
  const result = computeDepthMetrics(depthMap([0.1, 0.1], [1, 2]), depthMap([0, NaN], [1, 2]));
  t.is(result.groups.all.pixels, 0);
  t.true(Number.isNaN(result.groups.all.metric.mae_cm));
  t.true(Number.isNaN(result.alignment.scale));
});

test("median matches NumPy's definition on odd, even and repeated values", (t) => {
  t.is(median(new Float64Array([5, 1, 3])), 3);
  t.is(median(new Float64Array([4, 1, 3, 2])), 2.5);
  t.is(median(new Float64Array([2, 2, 2, 1, 9, 2])), 2);
  t.true(Number.isNaN(median(new Float64Array(0))));
  const values = Float64Array.from({ length: 1001 }, (_, i) => (i * 7919) % 1001);
  t.is(median(values), 500);
});

test("on a real EndoSynth sample, a 10 % overestimate gives AbsRel 0.1 and vanishes after median scaling", (t) => {
  const { depth, seg } = readSample(fixture("utils", "sample_a.npz"));
  const gt = depth.data as Float32Array;
  const pred = ndarray<"float32">(gt.map((g) => g * 1.1), depth.shape);
  let sum = 0;
  for (const g of gt) sum += g;
  const result = computeDepthMetrics(pred, depth, { seg });
  t.is(result.groups.all.pixels, gt.length);
  close(t, result.groups.all.metric.mae_cm, (100 * 0.1 * sum) / gt.length, 1e-5);
  close(t, result.groups.all.metric.abs_rel, 0.1, 1e-6);
  close(t, result.alignment.scale, 1 / 1.1, 1e-6);
  close(t, result.groups.all.aligned.abs_rel, 0, 1e-6);
  t.is(result.groups.all.aligned.delta1, 1);
  // sample_a holds classes 0, 3 and 4.
  t.is(result.groups.anatomy!.pixels + result.groups.double_fenestrated_grasper!.pixels + result.groups.needle_driver!.pixels, gt.length);
  t.is(result.groups.cadiere_forceps!.pixels, 0);
  const raw = readSample(fixture("utils", "sample_a.npz"), { halfPrecision: "raw" });
  t.deepEqual(computeDepthMetrics(pred, raw.depth, { seg }), result);
});

test("mismatched shapes are refused naming both shapes", (t) => {
  const error = t.throws(() => computeDepthMetrics(depthMap([0.1, 0.1], [1, 2]), depthMap([0.1, 0.1], [2, 1])), { instanceOf: InputError });
  t.is(error.code, "ERR_ENDOSYNTH_INPUT");
  t.regex(error.message, /prediction.*\(2, 1\).*\(1, 2\)/);
});

test("a seg map with a class above 6 is refused naming the value and position", (t) => {
  const seg = ndarray<"uint8">(new Uint8Array([0, 9]), [1, 2]);
  const error = t.throws(() => computeDepthMetrics(depthMap([0.1, 0.1], [1, 2]), depthMap([0.1, 0.1], [1, 2]), { seg }), { instanceOf: InputError });
  t.regex(error.message, /class indices 0\.\.6 in options\.seg but received 9 at \[0, 1\]/);
});

test("bad options and dtypes are refused with the expected and received values", (t) => {
  const d = depthMap([0.1], [1, 1]);
  t.throws(() => computeDepthMetrics(d, d, { alignment: "scale" as never }), { instanceOf: InputError, message: /Expected one of "median", "lsq", "none" for options\.alignment but received "scale"/ });
  t.throws(() => computeDepthMetrics(d, d, { maxDepth: -1 }), { instanceOf: InputError, message: /options\.maxDepth but received -1/ });
  t.throws(() => computeDepthMetrics(d, d, { minDepth: 0 }), { instanceOf: InputError, message: /options\.minDepth but received 0/ });
  t.throws(() => computeDepthMetrics(ndarray(new Float64Array([0.1]), [1, 1]) as never, d), { instanceOf: InputError, message: /dtype float32 for prediction but received float64/ });
  t.throws(() => computeDepthMetrics(d, d, { unknown: 1 } as never), { instanceOf: InputError, message: /Unknown option "unknown"/ });
});

// ---- agreement with the previous implementation (test/eval/metrics_oracle.ts) ----

/**
 * Largest relative difference between two results, with where it is. Two allowances, both far
 * below anything a table shows: 1e-12 relative everywhere, and for log10 an absolute 4e-16, the
 * oracle's own rounding there: it takes Math.log of the rounded ratio q / g, which is off by up to
 * half an ulp of 1 (1.1e-16) per pixel, so its mean |log10| is only that accurate when the ratios
 * are all ~1 (a perfect aligned prediction), where the current one, from (q − g) / g, is exact.
 */
function assertAgrees(t: ExecutionContext, actual: DepthMetrics, expected: DepthMetrics, what: string): void {
  t.deepEqual(Object.keys(actual.groups), Object.keys(expected.groups), what);
  t.is(actual.nonFiniteGt, expected.nonFiniteGt, `${what}: nonFiniteGt`);
  t.is(actual.nonFinitePred, expected.nonFinitePred, `${what}: nonFinitePred`);
  t.deepEqual(actual.alignment, expected.alignment, `${what}: alignment`);
  let worst = { excess: 0, where: "" };
  for (const [group, metrics] of Object.entries(expected.groups)) {
    t.is(actual.groups[group]!.pixels, metrics!.pixels, `${what}: ${group} pixels`);
    for (const space of ["metric", "aligned"] as const) {
      for (const name of METRIC_NAMES) {
        const a = actual.groups[group]![space][name];
        const e = metrics![space][name];
        if (Number.isNaN(e) && Number.isNaN(a)) continue;
        const allowed = 1e-12 * Math.abs(e) + (name === "log10" ? 4e-16 : 0);
        const excess = Math.abs(a - e) / allowed;
        if (!(excess <= worst.excess)) worst = { excess, where: `${group}.${space}.${name}: ${a} vs ${e}` };
      }
    }
  }
  t.true(worst.excess <= 1, `${what}: ${worst.where}`);
}

/** Predictions of a ground truth as models make them: noisy, biased, perfect up to scale, or wild. */
function predictions(gt: Float32Array, seed: number): Record<string, Float32Array> {
  const next = random(seed);
  return {
    noisy: gt.map((g) => g * (1 + 0.3 * (next() - 0.5)) + 0.01 * (next() - 0.5)),
    "10 % too far": gt.map((g) => g * 1.1),
    smooth: gt.map((g, i) => g * 1.05 + 0.003 * Math.sin(i * 0.001)),
    "wild, with zeros and NaN": gt.map((g, i) => (i % 97 === 0 ? NaN : next() < 0.1 ? 0 : g * 4 * next())),
  };
}

for (const name of ["sample_a", "sample_b"]) {
  test(`on ${name}, every group, metric and alignment agrees with the previous implementation to 1e-12`, (t) => {
    const { depth, seg } = readSample(fixture("utils", `${name}.npz`));
    for (const [kind, data] of Object.entries(predictions(depth.data as Float32Array, 3))) {
      const prediction = ndarray<"float32">(data, depth.shape);
      for (const alignment of ALIGNMENTS) {
        for (const withSeg of alignment === "median" ? [true, false] : [true]) {
          const options = { alignment, ...(withSeg ? { seg } : {}) };
          assertAgrees(t, computeDepthMetrics(prediction, depth, options), oracleDepthMetrics(prediction, depth, options), `${kind}, ${alignment}${withSeg ? ", per class" : ""}`);
        }
      }
    }
  });
}

test("ratios at and one float32 step either side of each δ threshold are counted as the definitions' divisions count them", (t) => {
  // 300x300 pixels: ground truths across the range, predictions at T·g, g/T and their float32 neighbours.
  const size = 300;
  const gt = new Float32Array(size * size);
  const pred = new Float32Array(size * size);
  const thresholds = [1.25, 1.25 ** 2, 1.25 ** 3];
  for (let i = 0; i < gt.length; i++) {
    const g = Math.fround(0.02 + (0.24 * (i % 1013)) / 1013);
    const threshold = thresholds[i % 3];
    const target = Math.fround((i >> 1) % 2 === 0 ? g * threshold : g / threshold);
    const step = ((i >> 2) % 3) - 1;
    gt[i] = g;
    pred[i] = nextFloat32(target, step);
  }
  const shape = [size, size];
  for (const alignment of ALIGNMENTS) {
    for (const maxDepth of [Infinity, 0.2]) {
      const options = { alignment, maxDepth };
      const args = [ndarray<"float32">(pred, shape), ndarray<"float32">(gt, shape)] as const;
      assertAgrees(t, computeDepthMetrics(...args, options), oracleDepthMetrics(...args, options), `${alignment}, max depth ${maxDepth}`);
    }
  }
});

test("float16 bits, float32 and float64 ground truth give the results the previous implementation gives", (t) => {
  const { depth, seg } = readSample(fixture("utils", "sample_b.npz"), { halfPrecision: "raw" });
  const decoded = readSample(fixture("utils", "sample_b.npz")).depth;
  const prediction = ndarray<"float32">(predictions(decoded.data as Float32Array, 5).noisy, depth.shape);
  const float64 = ndarray<"float64">(Float64Array.from(decoded.data as Float32Array, (g, i) => g * (1 + 1e-9 * (i % 7))), depth.shape);
  for (const groundTruth of [depth, decoded, float64]) {
    assertAgrees(t, computeDepthMetrics(prediction, groundTruth, { seg }), oracleDepthMetrics(prediction, groundTruth, { seg }), groundTruth.dtype);
  }
});

test("calls on samples of other sizes in between leave no trace: buffers are reused, results are not", (t) => {
  const big = readSample(fixture("utils", "sample_a.npz"));
  const prediction = ndarray<"float32">(predictions(big.depth.data as Float32Array, 9).noisy, big.depth.shape);
  const first = computeDepthMetrics(prediction, big.depth, { seg: big.seg });
  const small = computeDepthMetrics(depthMap([0.1, 0.2, 0.3, 0.4], [2, 2]), depthMap([0.1, 0.25, 0.3, 0.5], [2, 2]));
  t.is(small.groups.all.pixels, 4);
  t.deepEqual(computeDepthMetrics(prediction, big.depth, { seg: big.seg }), first);
  assertAgrees(t, first, oracleDepthMetrics(prediction, big.depth, { seg: big.seg }), "after a small call");
});

test("a median bracket that misses the middle values says so instead of answering", (t) => {
  // 10 values, 4 below the bracket: the middle ranks 4 and 5 must be among the candidates.
  t.is(medianOf(Float32Array.of(7, 5, 6), 3, 4, 10), 5.5);
  t.is(medianOf(Float32Array.of(7, 5, 6), 3, 5, 10), undefined); // rank 4 is below the bracket
  t.is(medianOf(Float32Array.of(7, 5, 6), 3, 2, 10), undefined); // rank 5 is above it
  t.is(medianOf(Float32Array.of(9, 8), 2, 4, 9), 8); // odd count: rank 4 only
  t.true(Number.isNaN(medianOf(new Float32Array(0), 0, 0, 0)!));
});

test("medians of large images with skewed, tied and constant values equal those of a full sort", (t) => {
  const size = 400;
  const next = random(11);
  const cases: Record<string, (i: number) => number> = {
    skewed: () => 0.02 + 0.3 * next() ** 4,
    "few distinct values": (i) => 0.05 + 0.01 * (i % 3),
    constant: () => 0.1,
    "half invalid": (i) => (i % 2 === 0 ? 0 : 0.03 + 0.2 * next()),
  };
  for (const [kind, value] of Object.entries(cases)) {
    const gt = Float32Array.from({ length: size * size }, (_, i) => value(i));
    const pred = Float32Array.from(gt, (g) => (g > 0 ? g * (0.8 + 0.4 * next()) : 0.1));
    const args = [ndarray<"float32">(pred, [size, size]), ndarray<"float32">(gt, [size, size])] as const;
    assertAgrees(t, computeDepthMetrics(...args), oracleDepthMetrics(...args), kind);
  }
});

/** The float32 `steps` representable values away from `value` (a positive float32). */
function nextFloat32(value: number, steps: number): number {
  const bits = new Uint32Array(Float32Array.of(value).buffer);
  bits[0] += steps;
  return new Float32Array(bits.buffer)[0];
}
