import test, { type ExecutionContext } from "ava";
import { appendFileSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AbortError, FileFormatError, InputError, RuntimeFailureError } from "../../lib/errors.js";
import { EvalAggregator } from "../../lib/eval/aggregate.js";
import { type EvalEvent, evaluateDataset, listSamples, shardSamples } from "../../lib/eval/dataset.js";
import { readRows } from "../../lib/eval/rows.js";
import { readNpy } from "../../lib/io/npy.js";
import { readSample, writeSample } from "../../lib/io/sample.js";
import { ndarray } from "../../lib/ndarray/ndarray.js";
import { fixture, temporaryDirectory } from "../support/fixtures.js";
import { HEIGHT, LookupModel, makeDataset, referenceMetrics, rgbKey, scaledPrediction, shiftedPrediction, type Truths, WIDTH, writeCorruptSample } from "./helpers.js";

function tempDir(t: ExecutionContext): string {
  const dir = temporaryDirectory();
  t.teardown(dir.cleanup);
  return dir.path;
}

function close(t: ExecutionContext, actual: number, expected: number, what: string, tolerance = 1e-9): void {
  t.true(Math.abs(actual - expected) <= tolerance * Math.max(1, Math.abs(expected)), `${what}: expected ${expected} but got ${actual}`);
}

function standIns(truths: Truths) {
  return [new LookupModel("scaled", truths, scaledPrediction), new LookupModel("shifted", truths, shiftedPrediction)];
}

/** The predictions a stand-in returns for one sample, as float32 like infer() gives. */
function predictionOf(truths: Truths, id: string, predict: (gt: number, pixel: number) => number): { gt: Float32Array; pred: Float32Array; seg: Uint8Array } {
  const truth = [...truths.values()].find((entry) => entry.id === id)!;
  return { gt: truth.depth, seg: truth.seg, pred: truth.depth.map((g, i) => predict(g, i)) };
}

test("evaluates two models on a folder of samples; rows and aggregate match metrics computed independently", async (t) => {
  const dir = tempDir(t);
  const truths = makeDataset(join(dir, "EndoSynth"), 5);
  const events: EvalEvent[] = [];
  const output = join(dir, "out", "eval.csv");
  const summary = await evaluateDataset(standIns(truths), join(dir, "EndoSynth"), { output, onProgress: (event) => events.push(event) });
  t.like(summary, { total: 5, evaluated: 5, resumed: 0, skipped: [] });
  t.deepEqual(events[0], { type: "start", total: 5, alreadyDone: 0, models: ["scaled", "shifted"] });
  t.deepEqual(events.filter((e) => e.type === "sample").map((e) => (e.type === "sample" ? e.done : 0)), [1, 2, 3, 4, 5]);

  const rows: { sample: string; model: string; mae: number; acc: number; absRel: number; delta1: number; toolsMae: number }[] = [];
  readRows(output, (row) => rows.push({
    sample: row.sample, model: row.model, mae: row.groups.all.metric.mae_cm, acc: row.groups.all.metric.acc_2cm,
    absRel: row.groups.all.aligned.abs_rel, delta1: row.groups.all.aligned.delta1, toolsMae: row.groups.tools.metric.mae_cm,
  }));
  t.is(rows.length, 10);
  t.deepEqual(rows.slice(0, 2).map((row) => [row.sample, row.model]), [["000000.npz", "scaled"], ["000000.npz", "shifted"]]);

  for (const [m, [name, predict]] of ([["scaled", scaledPrediction], ["shifted", shiftedPrediction]] as const).entries()) {
    const perSample = [...truths.values()].map(({ id }) => {
      const { gt, pred, seg } = predictionOf(truths, id, predict);
      return { id, all: referenceMetrics(gt, pred), tools: referenceMetrics(gt, pred, (i) => seg[i] > 0) };
    });
    for (const reference of perSample) {
      const row = rows.find((r) => r.sample === reference.id && r.model === name)!;
      close(t, row.mae, reference.all.maeCm, `${name} ${reference.id} MAE`);
      close(t, row.acc, reference.all.acc, `${name} ${reference.id} Acc@2cm`);
      close(t, row.absRel, reference.all.absRelAligned, `${name} ${reference.id} AbsRel`, 1e-6);
      close(t, row.delta1, reference.all.delta1Aligned, `${name} ${reference.id} δ1`);
      close(t, row.toolsMae, reference.tools.maeCm, `${name} ${reference.id} tools MAE`);
    }
    const mean = (f: (r: (typeof perSample)[number]) => number) => perSample.reduce((s, r) => s + f(r), 0) / perSample.length;
    const model = summary.aggregates.sample.models[m];
    t.is(model.model, name);
    t.is(model.samples, 5);
    close(t, model.groups.all.metric.mae_cm, mean((r) => r.all.maeCm), `${name} mean MAE`);
    close(t, model.groups.all.metric.acc_2cm, mean((r) => r.all.acc), `${name} mean Acc@2cm`);
    close(t, model.groups.all.aligned.abs_rel, mean((r) => r.all.absRelAligned), `${name} mean AbsRel`, 1e-6);
    close(t, model.groups.tools.metric.mae_cm, mean((r) => r.tools.maeCm), `${name} mean tools MAE`);
    const pooled = summary.aggregates.pixel.models[m].groups.all;
    const pixels = perSample.reduce((s, r) => s + r.all.pixels, 0);
    t.is(pooled.pixels, pixels);
    close(t, pooled.metric.mae_cm, (100 * perSample.reduce((s, r) => s + r.all.absSum, 0)) / pixels, `${name} pooled MAE`);
  }
  // The shifted stand-in is 1.5 cm off everywhere: inside 2 cm, outside after median scaling by ~0.9.
  t.is(summary.aggregates.sample.models[1].groups.all.metric.acc_2cm, 1);
  close(t, summary.aggregates.sample.models[1].groups.all.metric.mae_cm, 1.5, "shifted MAE", 1e-6);
});

test("JSONL rows hold the same numbers as CSV rows", async (t) => {
  const dir = tempDir(t);
  const truths = makeDataset(join(dir, "data"), 2);
  const csv = await evaluateDataset(standIns(truths), join(dir, "data"), { output: join(dir, "eval.csv") });
  const jsonl = await evaluateDataset(standIns(truths), join(dir, "data"), { output: join(dir, "eval.jsonl") });
  t.deepEqual(jsonl.aggregates, csv.aggregates);
  const lines = readFileSync(join(dir, "eval.jsonl"), "utf8").trim().split("\n");
  t.is(lines.length, 4);
  const first = JSON.parse(lines[0]);
  t.like(first, { sample: "000000.npz", model: "scaled", alignment: "median", maxDepth: "Infinity", minDepth: 0.001 });
  // Classes absent from the sample have NaN metrics, written as null.
  t.is(first.groups.needle_driver.pixels, 24);
  t.is(first.groups.cadiere_forceps.pixels, 48);
  t.is(first.groups.monopolar_curved_shears.pixels, 0);
  t.is(first.groups.monopolar_curved_shears.metric.mae_cm, null);
});

test("corrupt and mismatched samples are reported and skipped; the other samples are evaluated", async (t) => {
  const dir = tempDir(t);
  const truths = makeDataset(dir, 3);
  writeCorruptSample(dir, "000001b.npz");
  writeSample(join(dir, "samples", "000002b.npz"), {
    rgb: ndarray<"uint8">(new Uint8Array(HEIGHT * WIDTH * 3), [HEIGHT, WIDTH, 3]),
    depth: ndarray<"float16">(new Float32Array(HEIGHT * WIDTH).fill(0.1), [HEIGHT, WIDTH], "float16"),
    seg: ndarray<"uint8">(new Uint8Array(HEIGHT * WIDTH), [HEIGHT, WIDTH]),
  });
  // Break the second sample's shapes behind writeSample's back: depth one row short.
  const mismatched = join(dir, "samples", "000002c.npz");
  const { writeNpz } = await import("../../lib/io/npz.js");
  writeNpz(mismatched, {
    rgb: ndarray<"uint8">(new Uint8Array(HEIGHT * WIDTH * 3), [HEIGHT, WIDTH, 3]),
    depth: ndarray<"float16">(new Float32Array((HEIGHT - 1) * WIDTH).fill(0.1), [HEIGHT - 1, WIDTH], "float16"),
    seg: ndarray<"uint8">(new Uint8Array(HEIGHT * WIDTH), [HEIGHT, WIDTH]),
  });
  const events: EvalEvent[] = [];
  const summary = await evaluateDataset(standIns(truths), dir, { output: join(dir, "eval.csv"), onProgress: (event) => events.push(event) });
  t.is(summary.total, 6);
  const skipped = summary.skipped.map(({ sample, model, error }) => ({ sample, model, type: error.constructor.name, message: error.message }));
  t.is(skipped.length, 4);
  t.like(skipped[0], { sample: "000001b.npz", model: undefined, type: "FileFormatError" });
  t.like(skipped[1], { sample: "000002b.npz", model: "scaled", type: "InputError", message: "unknown frame" });
  t.like(skipped[2], { sample: "000002b.npz", model: "shifted" });
  t.like(skipped[3], { sample: "000002c.npz", model: undefined, type: "FileFormatError" });
  t.regex(skipped[3].message, /000002c\.npz: depth has shape \(11, 16\) but rgb is 12x16/);
  t.is(events.filter((e) => e.type === "skipped").length, 4);
  t.is(summary.aggregates.sample.models[0].samples, 3);
});

test("NaN ground truth is reported once per sample and left out of the metrics", async (t) => {
  const dir = tempDir(t);
  const truths = makeDataset(dir, 1, { nanPixels: 5 });
  const events: EvalEvent[] = [];
  const summary = await evaluateDataset(standIns(truths), dir, { output: join(dir, "eval.csv"), onProgress: (event) => events.push(event) });
  const warnings = events.filter((e) => e.type === "warning");
  t.deepEqual(warnings, [{ type: "warning", sample: "000000.npz", message: "5 ground-truth depths are NaN or infinite in 000000.npz; they are left out of the metrics" }]);
  const { gt, pred } = predictionOf(truths, "000000.npz", scaledPrediction);
  const reference = referenceMetrics(gt, pred);
  t.is(reference.pixels, HEIGHT * WIDTH - 5);
  t.is(summary.aggregates.sample.models[0].groups.all.pixels, reference.pixels);
  close(t, summary.aggregates.sample.models[0].groups.all.metric.mae_cm, reference.maeCm, "MAE");
});

test("an interrupted run finishes the samples already inferred and leaves a valid file; resuming evaluates only the rest and gives the full run's aggregate", async (t) => {
  const dir = tempDir(t);
  const truths = makeDataset(join(dir, "data"), 6);
  const output = join(dir, "eval.csv");
  const controller = new AbortController();
  const first = standIns(truths);
  const error = await t.throwsAsync(
    () => evaluateDataset(first, join(dir, "data"), {
      output,
      jobs: 1,
      signal: controller.signal,
      onProgress: (event) => event.type === "sample" && event.done === 2 && controller.abort(),
    }),
    { instanceOf: AbortError },
  );
  // With one worker, the third sample is inferred while the second's metrics are computed: it is finished too.
  t.deepEqual(first[0].calls, ["000000.npz", "000001.npz", "000002.npz"]);
  t.is(error.message, `Evaluation interrupted after 3 of 6 samples; the rows so far are in ${output}`);
  let rows = 0;
  readRows(output, () => rows++);
  t.is(rows, 6);

  const second = standIns(truths);
  const events: EvalEvent[] = [];
  const resumed = await evaluateDataset(second, join(dir, "data"), { output, resume: true, onProgress: (event) => events.push(event) });
  t.like(resumed, { total: 6, evaluated: 3, resumed: 3 });
  t.deepEqual(events[0], { type: "start", total: 6, alreadyDone: 3, models: ["scaled", "shifted"] });
  t.deepEqual(second[0].calls, ["000003.npz", "000004.npz", "000005.npz"]);

  const fresh = await evaluateDataset(standIns(truths), join(dir, "data"), { output: join(dir, "fresh.csv") });
  t.deepEqual(resumed.aggregates, fresh.aggregates);
  t.is(readFileSync(output, "utf8"), readFileSync(join(dir, "fresh.csv"), "utf8"));
});

test("shards are contiguous slices covering every sample once; their rows together give the unsharded aggregate exactly", async (t) => {
  const dir = tempDir(t);
  const truths = makeDataset(join(dir, "data"), 7);
  const ids = listSamples(join(dir, "data")).map((sample) => sample.id);
  t.deepEqual([1, 2, 3].map((index) => shardSamples(ids, { index, count: 3 })), [ids.slice(0, 2), ids.slice(2, 4), ids.slice(4)]);
  t.deepEqual(shardSamples(ids.slice(0, 2), { index: 3, count: 3 }), ids.slice(1, 2));
  t.deepEqual(shardSamples(ids.slice(0, 2), { index: 1, count: 3 }), []);
  t.throws(() => shardSamples(ids, { index: 4, count: 3 }), { instanceOf: InputError, message: /shard\.index/ });
  t.throws(() => shardSamples(ids, { index: 0, count: 3 }), { instanceOf: InputError, message: /shard\.index/ });

  const unsharded = await evaluateDataset(standIns(truths), join(dir, "data"), { output: join(dir, "all.csv"), jobs: 2 });
  const merged = new EvalAggregator(["scaled", "shifted"]);
  const seen: string[] = [];
  // Later shards first: the order of the rows must not matter.
  for (const index of [3, 1, 2]) {
    const part = join(dir, `part-${index}.jsonl`);
    const summary = await evaluateDataset(standIns(truths), join(dir, "data"), { output: part, shard: { index, count: 3 } });
    t.is(summary.total, index === 3 ? 3 : 2);
    readRows(part, (row) => {
      merged.add(row);
      if (row.model === "scaled") seen.push(row.sample);
    });
  }
  t.deepEqual(seen.sort(), ids);
  t.deepEqual(merged.result("sample"), unsharded.aggregates.sample);
  t.deepEqual(merged.result("pixel"), unsharded.aggregates.pixel);
});

test("resuming cuts a torn last line and evaluates the models a sample still lacks", async (t) => {
  const dir = tempDir(t);
  const truths = makeDataset(dir, 3);
  const output = join(dir, "eval.jsonl");
  await evaluateDataset([new LookupModel("scaled", truths, scaledPrediction)], dir, { output, limit: 2 });
  appendFileSync(output, '{"sample":"000002.npz","model":"sca');
  const models = standIns(truths);
  const summary = await evaluateDataset(models, dir, { output, resume: true });
  t.deepEqual(models[0].calls, ["000002.npz"]);
  t.deepEqual(models[1].calls, ["000000.npz", "000001.npz", "000002.npz"]);
  t.like(summary, { evaluated: 3, resumed: 0 });
  t.deepEqual(summary.aggregates.sample.models.map((model) => model.samples), [3, 3]);
  const lines = readFileSync(output, "utf8").split("\n");
  t.is(lines.pop(), "");
  for (const line of lines) t.notThrows(() => JSON.parse(line));
});

test("resuming with other settings is refused instead of mixing metrics", async (t) => {
  const dir = tempDir(t);
  const truths = makeDataset(dir, 1);
  const output = join(dir, "eval.csv");
  await evaluateDataset(standIns(truths), dir, { output });
  const error = await t.throwsAsync(() => evaluateDataset(standIns(truths), dir, { output, resume: true, alignment: "lsq" }), { instanceOf: InputError });
  t.is(
    error.message,
    `${output} was written with alignment median, max depth Infinity, min depth 0.001 (sample 000000.npz) but this run uses alignment lsq, max depth Infinity, min depth 0.001: resume with the same options, or write to another file`,
  );
});

test("an existing results file needs resume or overwrite; overwrite starts over", async (t) => {
  const dir = tempDir(t);
  const truths = makeDataset(dir, 2);
  const output = join(dir, "eval.csv");
  writeFileSync(output, "precious");
  const error = await t.throwsAsync(() => evaluateDataset(standIns(truths), dir, { output }), { instanceOf: InputError });
  t.is(error.message, `${output} already exists: resume it (--resume) to skip the samples it holds, or overwrite it (--overwrite)`);
  t.is(readFileSync(output, "utf8"), "precious");
  await t.throwsAsync(() => evaluateDataset(standIns(truths), dir, { output, resume: true }), { instanceOf: FileFormatError, message: /not a per-sample results file written by endosynth eval/ });
  const summary = await evaluateDataset(standIns(truths), dir, { output, overwrite: true });
  t.is(summary.evaluated, 2);
});

test("limit, list files and saved depth", async (t) => {
  const dir = tempDir(t);
  const truths = makeDataset(join(dir, "data"), 4);
  writeFileSync(join(dir, "list.txt"), "# two samples\ndata/samples/000003.npz\n\ndata/samples/000001.npz\n");
  t.deepEqual(listSamples(join(dir, "list.txt")).map((s) => s.id), ["data/samples/000003.npz", "data/samples/000001.npz"]);
  t.deepEqual(listSamples(join(dir, "data"), { limit: 3 }).map((s) => s.id), ["000000.npz", "000001.npz", "000002.npz"]);
  const models = standIns(truths);
  const saved = join(dir, "depth");
  const summary = await evaluateDataset(models, join(dir, "list.txt"), { output: join(dir, "eval.csv"), limit: 1, saveDepth: saved });
  t.is(summary.total, 1);
  t.deepEqual(models[0].calls, ["000003.npz"]);
  t.deepEqual(readdirSync(join(saved, "scaled", "data", "samples")), ["000003.npy"]);
  const depth = readNpy(join(saved, "shifted", "data", "samples", "000003.npy"));
  t.deepEqual(depth.shape, [HEIGHT, WIDTH]);
  t.deepEqual(depth.data, predictionOf(truths, "000003.npz", shiftedPrediction).pred);
});

test("a missing dataset, an empty folder and an empty list are refused with what was expected", async (t) => {
  const dir = tempDir(t);
  const truths = makeDataset(join(dir, "data"), 1);
  const run = (dataset: string) => evaluateDataset(standIns(truths), dataset, { output: join(dir, "eval.csv"), overwrite: true });
  await t.throwsAsync(() => run(join(dir, "nowhere")), {
    instanceOf: InputError,
    message: `Dataset ${join(dir, "nowhere")} does not exist: expected a dataset folder (holding samples/*.npz, or *.npz itself) or a list file of .npz paths`,
  });
  const empty = join(dir, "empty");
  (await import("node:fs")).mkdirSync(join(empty, "samples"), { recursive: true });
  await t.throwsAsync(() => run(empty), { instanceOf: InputError, message: `Dataset folder ${empty} holds no samples: expected ${empty}/samples/*.npz or ${empty}/*.npz` });
  writeFileSync(join(dir, "list.txt"), "# nothing\n\n");
  await t.throwsAsync(() => run(join(dir, "list.txt")), { instanceOf: InputError, message: /names no samples/ });
  await t.throwsAsync(() => evaluateDataset(standIns(truths), join(dir, "data"), { output: join(dir, "eval.txt") }), { instanceOf: InputError, message: /ending in \.csv or \.jsonl/ });
  await t.throwsAsync(() => evaluateDataset([...standIns(truths), standIns(truths)[0]], join(dir, "data"), { output: join(dir, "x.csv") }), { instanceOf: InputError, message: "Model scaled is listed twice: each model is evaluated once" });
});

test("a progress callback that is not a function or a signal that is not an AbortSignal: InputError, and no file", async (t) => {
  const dir = tempDir(t);
  const truths = makeDataset(join(dir, "data"), 1);
  const output = join(dir, "eval.csv");
  await t.throwsAsync(() => evaluateDataset(standIns(truths), join(dir, "data"), { output, onProgress: 5 as never }), {
    instanceOf: InputError,
    message: "Expected a function for options.onProgress but received 5",
  });
  await t.throwsAsync(() => evaluateDataset(standIns(truths), join(dir, "data"), { output, signal: "stop" as never }), {
    instanceOf: InputError,
    message: 'Expected an AbortSignal for options.signal but received "stop"',
  });
  t.deepEqual(readdirSync(dir), ["data"]);
});

test("a model whose runtime fails ends the run; the rows written before it stay", async (t) => {
  const dir = tempDir(t);
  const truths = makeDataset(dir, 4);
  const broken = new LookupModel("broken", truths, scaledPrediction, (id) => (id === "000002.npz" ? new RuntimeFailureError("CUDA error: out of memory") : undefined));
  const output = join(dir, "eval.csv");
  await t.throwsAsync(() => evaluateDataset([broken], dir, { output }), { instanceOf: RuntimeFailureError, message: "CUDA error: out of memory" });
  const samples: string[] = [];
  readRows(output, (row) => samples.push(row.sample));
  t.deepEqual(samples, ["000000.npz", "000001.npz"]);
});

test("a prediction of the wrong size skips that model on that sample", async (t) => {
  const dir = tempDir(t);
  const truths = makeDataset(dir, 1);
  const wrong = { name: "wrong", infer: async () => ndarray<"float32">(new Float32Array(4), [2, 2]) };
  const summary = await evaluateDataset([wrong, ...standIns(truths)], dir, { output: join(dir, "eval.csv") });
  t.is(summary.skipped.length, 1);
  t.is(summary.skipped[0].model, "wrong");
  t.regex(summary.skipped[0].error.message, /^wrong on 000000\.npz: Expected prediction of the ground truth's shape \(12, 16\) but received \(2, 2\)/);
  t.deepEqual(summary.aggregates.sample.models.map((model) => model.samples), [0, 1, 1]);
});

test("on the real 1080x1920 fixture samples (a list file), a 10 % overestimate gives MAE = 10 % of the mean depth", async (t) => {
  const dir = tempDir(t);
  const paths = ["sample_a.npz", "sample_b.npz"].map((name) => fixture("utils", name));
  writeFileSync(join(dir, "list.txt"), `${paths.join("\n")}\n`);
  const truths: Truths = new Map();
  const expected: number[] = [];
  for (const path of paths) {
    const { rgb, depth, seg } = readSample(path);
    const values = depth.data as Float32Array;
    truths.set(rgbKey(rgb), { depth: values, seg: seg.data, id: path });
    let sum = 0;
    for (const g of values) sum += g;
    expected.push((100 * 0.1 * sum) / values.length);
  }
  const model = new LookupModel("over", truths, (g) => g * 1.1);
  const summary = await evaluateDataset([model], join(dir, "list.txt"), { output: join(dir, "eval.jsonl") });
  t.like(summary, { total: 2, evaluated: 2, skipped: [] });
  const rows: number[] = [];
  readRows(join(dir, "eval.jsonl"), (row) => rows.push(row.groups.all.metric.mae_cm));
  rows.forEach((mae, i) => close(t, mae, expected[i], `sample ${i}`, 1e-5));
  close(t, summary.aggregates.sample.models[0].groups.all.aligned.abs_rel, 0, "AbsRel after median scaling", 1e-6);
});

test("with three workers the rows come in sample order, byte for byte those of one worker; a bad jobs count is refused", async (t) => {
  const dir = tempDir(t);
  const truths = makeDataset(join(dir, "data"), 8);
  await evaluateDataset(standIns(truths), join(dir, "data"), { output: join(dir, "one.csv"), jobs: 1 });
  const events: EvalEvent[] = [];
  await evaluateDataset(standIns(truths), join(dir, "data"), { output: join(dir, "three.csv"), jobs: 3, onProgress: (event) => events.push(event) });
  t.is(readFileSync(join(dir, "three.csv"), "utf8"), readFileSync(join(dir, "one.csv"), "utf8"));
  t.deepEqual(events.flatMap((e) => (e.type === "sample" ? [e.sample] : [])), listSamples(join(dir, "data")).map((sample) => sample.id));
  await t.throwsAsync(() => evaluateDataset(standIns(truths), join(dir, "data"), { output: join(dir, "x.csv"), jobs: 0 }), {
    instanceOf: InputError,
    message: /options\.jobs/,
  });
});
