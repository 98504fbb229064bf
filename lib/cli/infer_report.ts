/**
 * What `endosynth infer` reports when it ends: frames, dropped frames and latency (capture →
 * depth), as a line on stderr or one JSON object on stdout (`--json`).
 * @module
 */

/** Latency figures in milliseconds. */
export interface LatencyStats {
  mean: number;
  p50: number;
  p95: number;
  max: number;
}

/** Why a run of a video or live source ended. */
export type StopReason = "end" | "frames" | "duration" | "interrupt";

/** The `--json` result. */
export interface InferResult {
  model: string;
  backend: string;
  precision: string;
  inputs: string[];
  inputKind: "stills" | "video" | "live";
  outputs: string[];
  frames: number;
  dropped: number;
  framesPerSecond: number;
  latencyMs: LatencyStats | null;
  stoppedBy: StopReason;
  warnings: string[];
}

/** The nearest-rank percentile of sorted values. */
function percentile(sorted: readonly number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1))];
}

function rounded(value: number): number {
  return Math.round(value * 100) / 100;
}

/** Mean, median, 95th percentile and maximum; null without values. */
export function latencyStats(values: readonly number[]): LatencyStats | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mean = values.reduce((sum, value) => sum + value, 0) / values.length;
  return { mean: rounded(mean), p50: rounded(percentile(sorted, 0.5)), p95: rounded(percentile(sorted, 0.95)), max: rounded(sorted[sorted.length - 1]) };
}

/** "latency mean 41.2 ms, p50 40.1, p95 55.0, max 60.3; 12 frames dropped". */
export function describeTiming(latency: LatencyStats | null, dropped: number): string {
  const timing = latency ? `latency (capture to depth) mean ${latency.mean.toFixed(1)} ms, p50 ${latency.p50.toFixed(1)}, p95 ${latency.p95.toFixed(1)}, max ${latency.max.toFixed(1)}` : "no frames";
  return `${timing}; ${dropped} frame${dropped === 1 ? "" : "s"} dropped`;
}
