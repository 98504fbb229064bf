import test from "ava";
import { InputError } from "../../lib/errors.js";
import { EvalAggregator } from "../../lib/eval/aggregate.js";
import { type GroupMetrics, METRIC_GROUPS, METRIC_NAMES, type MetricValues } from "../../lib/eval/metrics.js";
import { formatAggregate } from "../../lib/eval/report.js";
import type { EvalRow } from "../../lib/eval/rows.js";
import { emptyProfile } from "./helpers.js";

function metrics(mae: number, rmse: number, delta1: number): MetricValues {
  const values = Object.fromEntries(METRIC_NAMES.map((name) => [name, 0.5])) as MetricValues;
  return { ...values, mae_cm: mae, rmse, delta1 };
}

const EMPTY: GroupMetrics = { pixels: 0, metric: metrics(NaN, NaN, NaN), aligned: metrics(NaN, NaN, NaN) };

/** A row whose groups are all empty except those given. */
function row(sample: string, model: string, groups: Record<string, GroupMetrics>, alignment: EvalRow["alignment"] = "median"): EvalRow {
  return {
    sample, model, alignment, maxDepth: Infinity, minDepth: 0.001, scale: 1, shift: 0, nonFiniteGt: 0, nonFinitePred: 0,
    groups: { ...Object.fromEntries(METRIC_GROUPS.map((group) => [group, EMPTY])), ...groups },
    profile: emptyProfile(),
  };
}

const A = row("a.npz", "m", {
  all: { pixels: 100, metric: metrics(1, 2, 0.9), aligned: metrics(0.5, 1, 1) },
  tools: { pixels: 100, metric: metrics(1, 2, 0.9), aligned: metrics(0.5, 1, 1) },
});
const B = row("b.npz", "m", { all: { pixels: 300, metric: metrics(3, 4, 0.5), aligned: metrics(1.5, 3, 0.7) } });

test("sample weighting averages per-sample metrics; a class counts only the samples that have it", (t) => {
  const aggregator = new EvalAggregator();
  aggregator.add(A);
  aggregator.add(B);
  const { models, weighting, alignment } = aggregator.result("sample");
  t.is(weighting, "sample");
  t.is(alignment, "median");
  t.is(models.length, 1);
  t.like(models[0], { model: "m", samples: 2 });
  t.like(models[0].groups.all, { samples: 2, pixels: 400, metric: { mae_cm: 2, rmse: 3, delta1: 0.7 }, aligned: { mae_cm: 1, rmse: 2 } });
  t.like(models[0].groups.tools, { samples: 1, pixels: 100, metric: { mae_cm: 1, rmse: 2 } });
  t.like(models[0].groups.anatomy, { samples: 0, pixels: 0 });
  t.true(Number.isNaN(models[0].groups.anatomy.metric.mae_cm));
});

test("pixel weighting pools pixels: means weighted by pixel count, RMSE as the root of the pooled mean square", (t) => {
  const aggregator = new EvalAggregator();
  aggregator.add(A);
  aggregator.add(B);
  const all = aggregator.result("pixel").models[0].groups.all;
  t.is(all.metric.mae_cm, (100 * 1 + 300 * 3) / 400);
  t.is(all.metric.delta1, (100 * 0.9 + 300 * 0.5) / 400);
  t.is(all.metric.rmse, Math.sqrt((100 * 4 + 300 * 16) / 400));
});

test("a repeated sample counts once; models come in the order asked, others are ignored", (t) => {
  const aggregator = new EvalAggregator(["second", "m"]);
  aggregator.add(A);
  aggregator.add(A);
  aggregator.add(row("a.npz", "other", A.groups));
  const { models } = aggregator.result();
  t.deepEqual(models.map((model) => [model.model, model.samples]), [["second", 0], ["m", 1]]);
});

test("rows of different alignments cannot be aggregated together", (t) => {
  const aggregator = new EvalAggregator();
  aggregator.add(A);
  t.throws(() => aggregator.add(row("c.npz", "m", B.groups, "lsq")), {
    instanceOf: InputError,
    message: "Cannot aggregate rows aligned with lsq (sample c.npz) together with rows aligned with median",
  });
});

test("tables have a row per region and the models side by side, each with its pair of metrics; – for groups without pixels", (t) => {
  const aggregator = new EvalAggregator(["m", "second"]);
  aggregator.add(A);
  aggregator.add(B);
  aggregator.add(row("a.npz", "second", { all: { pixels: 10, metric: metrics(12.345, 1, 0.25), aligned: metrics(0.5, 1, 0.123) } }));
  const text = formatAggregate(aggregator.result("sample")).split("\n");
  t.is(text[0], "Samples: m: 2, second: 1. Aggregate: mean over samples of per-sample metrics.");
  t.is(text[2], "Metric depth (raw predictions)");
  t.regex(text[3], /^\s+m\s+second$/);
  t.regex(text[4], /^region\s+MAE \(cm\) ↓\s+Acc@2cm ↑\s+MAE \(cm\) ↓\s+Acc@2cm ↑$/);
  t.regex(text[6], /^all\s+2\.00\s+0\.500\s+12\.35\s+0\.500$/);
  t.regex(text[7], /^anatomy\s+–\s+–\s+–\s+–$/);
  t.regex(text[8], /^tools\s+1\.00\s+0\.500\s+–\s+–$/);
  // No instrument has pixels in these rows: their lines are left out.
  t.is(text[9], "");
  t.true(text.includes("Relative depth (median scaling)"));
  t.true(text.some((line) => /^all\s+0\.500\s+0\.850\s+0\.500\s+0\.123$/.test(line)));

  const markdown = formatAggregate(aggregator.result("pixel"), { format: "markdown", full: true });
  const lines = markdown.split("\n");
  t.is(lines[0], "Samples: m: 2, second: 1. Aggregate: pooled over all valid pixels.");
  t.true(lines.includes("### Metric depth (raw predictions)"));
  t.true(lines.includes("| region | m · MAE (cm) ↓ | m · Acc@2cm ↑ | second · MAE (cm) ↓ | second · Acc@2cm ↑ |"));
  t.true(lines.includes("| --- | ---: | ---: | ---: | ---: |"));
  // The best of each metric in bold; values printed alike are equally good.
  t.true(lines.includes("| all | **2.50** | **0.500** | 12.35 | **0.500** |"), markdown);
  t.true(lines.includes("| tools | 1.00 | 0.500 | – | – |"), markdown);
  t.true(lines.includes("### All metrics, all pixels"));
  t.true(lines.includes("| metric | m · raw | m · median scaling | second · raw | second · median scaling |"));
  t.true(lines.includes("| MAE (cm) ↓ | **2.50** | 1.25 | 12.35 | **0.50** |"), markdown);
});

test("an instrument any model has pixels of gets its row; with one model nothing is bold", (t) => {
  const aggregator = new EvalAggregator();
  aggregator.add(row("a.npz", "m", { ...A.groups, needle_driver: { pixels: 5, metric: metrics(4, 1, 0.5), aligned: metrics(1, 1, 0.5) } }));
  const markdown = formatAggregate(aggregator.result("sample"), { format: "markdown" });
  t.true(markdown.includes("| needle driver | 4.00 | 0.500 |"), markdown);
  t.false(markdown.includes("cadiere forceps"));
  t.false(markdown.includes("**"));
});

test("the depth profile pools pixels per 1 cm bin over samples", (t) => {
  const aggregator = new EvalAggregator();
  const profile = (bin: number, pixels: number, mae: number, absRel: number) => {
    const empty = emptyProfile();
    empty.pixels[bin] = pixels;
    empty.mae_cm[bin] = mae;
    empty.abs_rel[bin] = absRel;
    return empty;
  };
  aggregator.add({ ...A, profile: profile(5, 100, 1, 0.1) });
  aggregator.add({ ...B, profile: profile(5, 300, 3, 0.2) });
  const pooled = aggregator.result("sample").models[0].profile;
  t.is(pooled.pixels[5], 400);
  t.is(pooled.mae_cm[5], (100 * 1 + 300 * 3) / 400);
  t.is(pooled.abs_rel[5], (100 * 0.1 + 300 * 0.2) / 400);
  t.is(pooled.pixels[6], 0);
  t.true(Number.isNaN(pooled.mae_cm[6]));
});
