/**
 * Error versus ground-truth depth: per 1 cm bin of ground truth, the valid pixels, the MAE of the
 * raw prediction (cm) and the AbsRel after alignment, the two errors of the EndoSynth tables. The
 * evaluation keeps one profile per sample and model, and pools them over the pixels of a dataset
 * for the error-versus-depth plot.
 * @module
 */
/** Bins of 1 cm of ground-truth depth from 0; the last bin also holds everything deeper. */
export const DEPTH_BINS = 30;
/** Width of a bin, metres. */
export const DEPTH_BIN_M = 0.01;

/** The profile of one prediction, or a pooled one, over depth: 30 bins of 1 cm from 0 (arrays of 30 values). */
export interface DepthProfile {
  /** Valid pixels per bin. */
  pixels: number[];
  /** MAE of the raw prediction per bin, cm (NaN for an empty bin). */
  mae_cm: number[];
  /** AbsRel after alignment per bin (NaN for an empty bin). */
  abs_rel: number[];
}

/** What {@link depthProfile} needs besides the arrays: the settings and alignment of the metrics. */
export interface ProfileSettings {
  scale: number;
  shift: number;
  minDepth: number;
  maxDepth: number;
}

/** Lower edge of each bin, cm: 0, 1, ..., 29. */
export function binEdgesCm(): number[] {
  return Array.from({ length: DEPTH_BINS }, (_, bin) => Math.round(bin * DEPTH_BIN_M * 100));
}

/**
 * The profile of one prediction, over the pixels {@link computeDepthMetrics} counts as valid, with
 * the predictions clamped and aligned as it does.
 */
export function depthProfile(pred: Float32Array, gt: Float32Array | Float64Array, settings: ProfileSettings): DepthProfile {
  const { scale, shift, minDepth, maxDepth } = settings;
  const pixels = new Float64Array(DEPTH_BINS);
  const absolute = new Float64Array(DEPTH_BINS);
  const relative = new Float64Array(DEPTH_BINS);
  const largest = Math.min(maxDepth, Number.MAX_VALUE);
  for (let i = 0; i < gt.length; i++) {
    const g = gt[i];
    const p = pred[i];
    if (!(g > 0 && g <= largest && p - p === 0)) continue;
    const bin = Math.min(DEPTH_BINS - 1, Math.floor(g / DEPTH_BIN_M));
    pixels[bin]++;
    absolute[bin] += Math.abs(Math.max(p, minDepth) - g);
    relative[bin] += Math.abs(Math.max(scale * p + shift, minDepth) - g) / g;
  }
  return {
    pixels: Array.from(pixels),
    mae_cm: Array.from(absolute, (sum, bin) => (100 * sum) / pixels[bin]),
    abs_rel: Array.from(relative, (sum, bin) => sum / pixels[bin]),
  };
}
