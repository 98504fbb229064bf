import test from "ava";
import { InputError } from "../../lib/errors.js";
import { EvalAggregator } from "../../lib/eval/aggregate.js";
import { type GroupMetrics, METRIC_GROUPS, METRIC_NAMES, type MetricValues } from "../../lib/eval/metrics.js";
import { formatAggregate } from "../../lib/eval/report.js";
import { emptyProfile } from "../../lib/eval/profile.js";
import type { EvalRow } from "../../lib/eval/rows.js";

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

test("tables put models side by side, metric and relative sections, – for groups without pixels", (t) => {
  const aggregator = new EvalAggregator(["m", "second"]);
  aggregator.add(A);
  aggregator.add(B);
  aggregator.add(row("a.npz", "second", { all: { pixels: 10, metric: metrics(12.345, 1, 0.25), aligned: metrics(0.5, 1, 0.123) } }));
  const text = formatAggregate(aggregator.result("sample")).split("\n");
  t.is(text[0], "Samples: m: 2, second: 1. Aggregate: mean over samples of per-sample metrics.");
  t.is(text[2], "Metric depth (raw predictions)");
  t.regex(text[3], /^metric\s+region\s+m\s+second$/);
  t.regex(text[5], /^MAE \(cm\) ↓\s+all\s+2\.00\s+12\.35$/);
  t.regex(text[6], /^\s+anatomy\s+–\s+–$/);
  t.true(text.includes("Relative depth (median scaling)"));
  t.true(text.some((line) => /^δ1 ↑\s+all\s+0\.850\s+0\.123$/.test(line)));

  const markdown = formatAggregate(aggregator.result("pixel"), { format: "markdown", full: true });
  const lines = markdown.split("\n");
  t.is(lines[0], "Samples: m: 2, second: 1. Aggregate: pooled over all valid pixels.");
  t.true(lines.includes("### Metric depth (raw predictions)"));
  t.true(lines.includes("| metric | region | m | second |"));
  t.true(lines.includes("| --- | --- | ---: | ---: |"));
  t.true(lines.includes("| MAE (cm) ↓ | all | 2.50 | 12.35 |"));
  t.true(lines.includes("### All metrics, all pixels"));
  t.true(lines.includes("| raw | MAE (cm) ↓ | 2.50 | 12.35 |"));
  t.true(lines.includes("| median scaling | MAE (cm) ↓ | 1.25 | 0.50 |"));
});
