/**
 * The `eval` suite: metric computation on 1080x1920 samples (the EndoSynth size), and the dataset
 * runner end to end on a small folder of synthetic samples with a stand-in model that answers at
 * once, so the time is the runner's own (read, metrics, rows) and not a network's.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { evaluateDataset } from "../../lib/eval/dataset.js";
import { computeDepthMetrics } from "../../lib/eval/metrics.js";
import { writeSample } from "../../lib/io/sample.js";
import { syntheticSample } from "../../lib/io/synthetic_sample.js";
import type { NdArray } from "../../lib/ndarray/ndarray.js";
import type { Suite } from "./harness.js";

const RUNNER_SAMPLES = 4;

let folder: string | undefined;

/** A plausible prediction: 5 % too far, with a deterministic ripple of a few millimetres. */
function predictionFor(depth: NdArray<"float16">): NdArray<"float32"> {
  const data = Float32Array.from(depth.data as Float32Array, (g, i) => g * 1.05 + 0.003 * Math.sin(i * 0.001));
  return { data, shape: [...depth.shape], dtype: "float32" };
}

export const evalSuite: Suite = {
  description: `depth metrics on 1080x1920 samples; the dataset runner over ${RUNNER_SAMPLES} samples with an instant stand-in model`,
  setup: () => {
    folder = mkdtempSync(join(tmpdir(), "endosynth-bench-eval-"));
    const dir = folder;
    const sample = syntheticSample();
    const prediction = predictionFor(sample.depth);
    mkdirSync(join(dir, "samples"));
    for (let i = 0; i < RUNNER_SAMPLES; i++) writeSample(join(dir, "samples", `${String(i).padStart(6, "0")}.npz`), sample);
    const instant = { name: "instant", infer: async () => prediction };
    let run = 0;
    return [
      { name: "computeDepthMetrics, median alignment, per class", run: () => computeDepthMetrics(prediction, sample.depth, { seg: sample.seg }) },
      { name: "computeDepthMetrics, least-squares alignment, per class", run: () => computeDepthMetrics(prediction, sample.depth, { seg: sample.seg, alignment: "lsq" }) },
      { name: "computeDepthMetrics, no alignment, no classes", run: () => computeDepthMetrics(prediction, sample.depth, { alignment: "none" }) },
      {
        name: `evaluateDataset, ${RUNNER_SAMPLES} samples, 1 model (CSV rows)`,
        run: () => evaluateDataset([instant], dir, { output: join(dir, `rows-${run++}.csv`) }),
      },
    ];
  },
  cleanup: () => {
    if (folder) rmSync(folder, { recursive: true, force: true });
  },
};
