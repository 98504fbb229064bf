/**
 * Evaluation benchmarks on 1080x1920 samples (the EndoSynth size):
 *
 * - `metrics`: computeDepthMetrics per sample (goal of issue 14: < 25 ms on the 2-core reference
 *   machine), beside a vectorised NumPy version of the same definitions (per-pixel terms once,
 *   per-class sums with np.bincount, np.median) timed in the same run on the same arrays. The
 *   NumPy column needs python3 with numpy; without them the suite says so and skips it (the
 *   package itself never needs Python).
 * - `eval`: evaluateDataset end to end (the table: whole runs, starting the worker threads
 *   included), and its steady-state throughput in samples per second (printed after the table:
 *   from the first sample's rows to the last's): with the real tiny Depth Anything v1
 *   (../shared/fixtures/dav1/tiny.pth, ONNX Runtime on the CPU), and with a stand-in model that
 *   answers at once, so that reading and metrics alone show.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type EvalEvent, evaluateDataset } from "../../lib/eval/dataset.js";
import { computeDepthMetrics } from "../../lib/eval/metrics.js";
import { writeNpy } from "../../lib/io/npy.js";
import { readSample, writeSample } from "../../lib/io/sample.js";
import { syntheticSample } from "../../lib/io/synthetic_sample.js";
import { load, type Model } from "../../lib/model.js";
import type { NdArray } from "../../lib/ndarray/ndarray.js";
import type { BenchCase, Suite } from "./harness.js";

const self = fileURLToPath(import.meta.url);
const fixtures = resolve(process.env.ENDOSYNTH_FIXTURES ?? join(self, "../../../../shared/fixtures"));

/** Goal of issue 14 on the 2-core reference machine. */
const METRICS_TARGET_MS = 25;
const RUNNER_SAMPLES = 12;
const MODEL_SAMPLES = 6;

let folder: string | undefined;
let model: Model | undefined;
/** Per eval case, the steady-state rate of each run, for the samples/s lines printed at the end. */
const rates = new Map<string, number[]>();

/** A plausible prediction: 5 % too far, with a deterministic ripple and ~10 % pixel noise. */
function predictionFor(depth: NdArray<"float16">): NdArray<"float32"> {
  let state = 12345;
  const noise = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 4294967296 - 0.5;
  };
  const data = Float32Array.from(depth.data as Float32Array, (g, i) => g * (1.05 + 0.2 * noise()) + 0.003 * Math.sin(i * 0.001));
  return { data, shape: [...depth.shape], dtype: "float32" };
}

/** The NumPy version of computeDepthMetrics' definitions, timed by Python itself; prints {"ms": median}. */
const NUMPY_METRICS = `
import json, sys, time
import numpy as np
folder, runs, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
gt16 = np.load(folder + "/gt.npy"); pred32 = np.load(folder + "/pred.npy"); seg = np.load(folder + "/seg.npy")
def metrics(pred32, gt16, seg, min_depth=1e-3):
    g = gt16.astype(np.float64).ravel(); p = pred32.astype(np.float64).ravel(); s = seg.ravel()
    valid = np.isfinite(g) & (g > 0) & np.isfinite(p)
    g, p, s = g[valid], p[valid], s[valid]
    scale = np.median(g) / np.median(p)
    out = {"pixels": np.bincount(s, minlength=7)}
    for name, q in (("metric", np.maximum(p, min_depth)), ("aligned", np.maximum(scale * p, min_depth))):
        ae = np.abs(q - g); r = q / g; spread = np.maximum(r, g / q)
        terms = (ae, ae * ae, ae / g, ae * ae / g, np.abs(np.log(r)), ae < 0.02, spread < 1.25, spread < 1.25 ** 2, spread < 1.25 ** 3)
        out[name] = np.stack([np.bincount(s, weights=t, minlength=7) for t in terms])
    return out
for _ in range(warmup): metrics(pred32, gt16, seg)
times = []
for _ in range(runs):
    start = time.perf_counter(); metrics(pred32, gt16, seg); times.append((time.perf_counter() - start) * 1000)
print(json.dumps({"ms": sorted(times)[(len(times) - 1) // 2], "numpy": np.__version__}))
`;

/** NumPy's median time on the arrays in `dir`, or why it could not be measured. */
function numpyMilliseconds(dir: string): { ms: number; label: string } | { skipped: string } {
  const result = spawnSync("python3", ["-c", NUMPY_METRICS, dir, "7", "2"], { encoding: "utf8", timeout: 300_000 });
  if (result.error) return { skipped: `python3 not found (${result.error.message})` };
  if (result.status !== 0) return { skipped: `python3 could not run the NumPy version: ${result.stderr.trim().split("\n").pop()}` };
  const { ms, numpy } = JSON.parse(result.stdout) as { ms: number; numpy: string };
  return { ms: Math.round(ms * 10) / 10, label: `NumPy ${numpy}` };
}

export const metricsSuite: Suite = {
  description: "computeDepthMetrics on a 1080x1920 sample (median alignment, per class), against a vectorised NumPy version of the same definitions",
  setup: () => {
    folder = mkdtempSync(join(tmpdir(), "endosynth-bench-metrics-"));
    const sample = readSample(join(fixtures, "utils", "sample_a.npz"));
    const raw = readSample(join(fixtures, "utils", "sample_a.npz"), { halfPrecision: "raw" });
    const prediction = predictionFor(sample.depth);
    writeNpy(join(folder, "gt.npy"), raw.depth);
    writeNpy(join(folder, "pred.npy"), prediction);
    writeNpy(join(folder, "seg.npy"), sample.seg);
    const numpy = numpyMilliseconds(folder);
    const median = () => computeDepthMetrics(prediction, sample.depth, { seg: sample.seg });
    const cases: BenchCase[] = [{ name: "computeDepthMetrics, median alignment, per class", run: median, compare: { kind: "target", ms: METRICS_TARGET_MS } }];
    if ("ms" in numpy) cases.push({ name: "computeDepthMetrics, the same, against NumPy", run: median, compare: { kind: "yardstick", ms: numpy.ms, label: numpy.label } });
    else console.error(`metrics: NumPy column skipped: ${numpy.skipped}`);
    cases.push(
      { name: "computeDepthMetrics, least-squares alignment, per class", run: () => computeDepthMetrics(prediction, sample.depth, { seg: sample.seg, alignment: "lsq" }) },
      { name: "computeDepthMetrics, no alignment, no classes", run: () => computeDepthMetrics(prediction, sample.depth, { alignment: "none" }) },
      { name: "computeDepthMetrics, median, per class, float16 bits", run: () => computeDepthMetrics(prediction, raw.depth, { seg: sample.seg }) },
    );
    return cases;
  },
  cleanup: () => {
    if (folder) rmSync(folder, { recursive: true, force: true });
  },
};

function writeDataset(dir: string, count: number): void {
  mkdirSync(join(dir, "samples"), { recursive: true });
  const sample = syntheticSample();
  for (let i = 0; i < count; i++) writeSample(join(dir, "samples", `${String(i).padStart(6, "0")}.npz`), sample);
}

export const evalSuite: Suite = {
  description: `evaluateDataset on 1080x1920 samples, per run: ${MODEL_SAMPLES} samples with the tiny dav1 (ONNX Runtime), ${RUNNER_SAMPLES} with an instant stand-in model; steady-state samples/s after the table`,
  setup: async () => {
    folder = mkdtempSync(join(tmpdir(), "endosynth-bench-eval-"));
    const dir = folder;
    writeDataset(join(dir, "many"), RUNNER_SAMPLES);
    writeDataset(join(dir, "few"), MODEL_SAMPLES);
    const prediction = predictionFor(syntheticSample().depth);
    const instant = { name: "instant", infer: async () => prediction };
    model = await load("dav1", { checkpoint: join(fixtures, "dav1", "tiny.pth"), backend: "onnxruntime", cacheDir: join(dir, "cache") });
    const tiny = model;
    let run = 0;
    const evaluate = (name: string, models: Parameters<typeof evaluateDataset>[0], samples: number, jobs: number): BenchCase => {
      const caseRates: number[] = [];
      rates.set(name, caseRates);
      const dataset = join(dir, samples === MODEL_SAMPLES ? "few" : "many");
      return {
        name,
        run: async () => {
          // Steady state: from the first sample's rows to the last's, without starting the workers.
          const finished: number[] = [];
          const onProgress = (event: EvalEvent) => event.type === "sample" && finished.push(performance.now());
          await evaluateDataset(models, dataset, { output: join(dir, `rows-${run++}.csv`), jobs, onProgress });
          caseRates.push(((finished.length - 1) * 1000) / (finished[finished.length - 1] - finished[0]));
        },
      };
    };
    return [
      evaluate(`${MODEL_SAMPLES} samples, tiny dav1 (ONNX Runtime), 1 worker`, [tiny], MODEL_SAMPLES, 1),
      evaluate(`${MODEL_SAMPLES} samples, tiny dav1 (ONNX Runtime), 2 workers`, [tiny], MODEL_SAMPLES, 2),
      evaluate(`${RUNNER_SAMPLES} samples, instant model (reading + metrics), 1 worker`, [instant], RUNNER_SAMPLES, 1),
      evaluate(`${RUNNER_SAMPLES} samples, instant model (reading + metrics), 2 workers`, [instant], RUNNER_SAMPLES, 2),
    ];
  },
  cleanup: () => {
    // On stderr, so that stdout stays a table or JSON: the median run's steady-state rate.
    for (const [name, caseRates] of rates) {
      const sorted = [...caseRates].sort((a, b) => a - b);
      if (sorted.length > 0) console.error(`eval steady state: ${name}: ${sorted[(sorted.length - 1) >> 1].toFixed(2)} samples/s`);
    }
    void model?.dispose();
    if (folder) rmSync(folder, { recursive: true, force: true });
  },
};
