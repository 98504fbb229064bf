import test from "ava";
import { DEPTH_BINS, depthProfile } from "../../lib/eval/profile.js";

test("pixels fall in 1 cm bins of ground truth, the last holding everything deeper; errors are hand-computed", (t) => {
  // Binary fractions keep the arithmetic exact: 0.0078125 m is in bin 0, 0.015625 m in bin 1, 0.5 m in bin 29.
  const gt = Float32Array.of(0.0078125, 0.015625, 0.015625, 0.5, NaN, 0.25);
  const pred = Float32Array.of(0.00390625, 0.03125, 0.0078125, 0.25, 0.1, NaN);
  const profile = depthProfile(pred, gt, { scale: 2, shift: 0, minDepth: 0.001, maxDepth: Infinity });
  t.is(profile.pixels.length, DEPTH_BINS);
  t.is(profile.pixels[0], 1);
  t.is(profile.pixels[1], 2);
  t.is(profile.pixels[29], 1);
  t.is(profile.pixels.reduce((sum, n) => sum + n, 0), 4);
  t.is(profile.mae_cm[0], 100 * 0.00390625);
  t.is(profile.mae_cm[1], (100 * (0.015625 + 0.0078125)) / 2);
  t.is(profile.mae_cm[29], 100 * 0.25);
  // Aligned by the scale 2: 0.0078125 is exact (0), 0.0625 is 3x too far, 0.015625 exact, 0.5 exact.
  t.is(profile.abs_rel[0], 0);
  t.is(profile.abs_rel[1], 3 / 2);
  t.is(profile.abs_rel[29], 0);
  t.true(Number.isNaN(profile.mae_cm[2]));
  t.true(Number.isNaN(profile.abs_rel[2]));
});

test("ground truth beyond maxDepth is left out, and predictions are clamped at minDepth", (t) => {
  const profile = depthProfile(Float32Array.of(0, 0.1), Float32Array.of(0.05, 0.3), { scale: 1, shift: 0, minDepth: 0.01, maxDepth: 0.2 });
  t.is(profile.pixels[5], 1);
  t.is(profile.pixels[29], 0);
  t.is(profile.mae_cm[5], 100 * (Math.fround(0.05) - 0.01));
});
