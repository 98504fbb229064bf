import test from "ava";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import sharp from "sharp";
import { EvalAggregator } from "../../lib/eval/aggregate.js";
import { type GroupMetrics, METRIC_GROUPS, METRIC_NAMES, type MetricValues } from "../../lib/eval/metrics.js";
import { evalCharts, plotFileNames, writeEvalPlots } from "../../lib/eval/plots.js";
import type { EvalRow } from "../../lib/eval/rows.js";
import { emptyProfile } from "./helpers.js";
import { temporaryDirectory } from "../support/fixtures.js";

function values(mae: number, delta1: number): MetricValues {
  return { ...(Object.fromEntries(METRIC_NAMES.map((name) => [name, 0.5])) as MetricValues), mae_cm: mae, delta1 };
}

function row(model: string, mae: number, profileMae: number): EvalRow {
  const group: GroupMetrics = { pixels: 50, metric: values(mae, 0.8), aligned: values(mae / 2, 0.9) };
  const empty: GroupMetrics = { pixels: 0, metric: values(NaN, NaN), aligned: values(NaN, NaN) };
  const profile = emptyProfile();
  profile.pixels[3] = profile.pixels[7] = 25;
  profile.mae_cm[3] = profileMae;
  profile.mae_cm[7] = 2 * profileMae;
  profile.abs_rel[3] = profile.abs_rel[7] = 0.1;
  return {
    sample: "a.npz", model, alignment: "median", maxDepth: Infinity, minDepth: 0.001, scale: 1, shift: 0, nonFiniteGt: 0, nonFinitePred: 0,
    groups: Object.fromEntries(METRIC_GROUPS.map((name) => [name, name === "needle_driver" || METRIC_GROUPS.indexOf(name) < 3 ? group : empty])),
    profile,
  };
}

function aggregate() {
  const aggregator = new EvalAggregator();
  aggregator.add(row("dav1", 2, 1));
  aggregator.add(row("dav2", 3, 1.5));
  return aggregator.result("sample");
}

/** The bars of a chart: model, region, value, and the bar's top and bottom in pixels. */
function bars(svg: string): { label: string; y: number; bottom: number }[] {
  return [...svg.matchAll(/<rect x="[\d.]+" y="([\d.]+)" width="[\d.]+" height="([\d.]+)" fill="[^"]+"><title>([^<]+)<\/title>/g)].map((match) => ({
    label: match[3],
    y: Number(match[1]),
    bottom: Number(match[1]) + Number(match[2]),
  }));
}

test("bar charts have one bar per model and region present, heights proportional to the values", (t) => {
  const mae = evalCharts(aggregate()).find((chart) => chart.name === "mae_cm")!;
  const drawn = bars(mae.svg);
  // all, anatomy, tools and the one instrument with pixels (needle driver), for two models.
  t.deepEqual(drawn.map((bar) => bar.label.replace(/: .*/, "")), ["dav1, all", "dav2, all", "dav1, anatomy", "dav2, anatomy", "dav1, tools", "dav2, tools", "dav1, needle driver", "dav2, needle driver"]);
  const [two, three] = drawn;
  t.is(two.bottom, three.bottom);
  const height = (bar: (typeof drawn)[number]) => bar.bottom - bar.y;
  t.true(Math.abs(height(three) / height(two) - 1.5) < 1e-3);
  t.regex(mae.svg, /MAE \(cm\) per region \(raw predictions\)/);
  const delta1 = evalCharts(aggregate()).find((chart) => chart.name === "delta1")!;
  t.regex(delta1.svg, /δ1 per region \(median scaling\)/);
});

test("the error-versus-depth chart draws a point at the centre of each bin with pixels", (t) => {
  const chart = evalCharts(aggregate()).find((chart) => chart.name === "error_vs_depth")!;
  const lines = [...chart.svg.matchAll(/<polyline points="([^"]+)"/g)].map((match) => match[1].split(" ").map((point) => point.split(",").map(Number)));
  // Two panels (MAE, AbsRel) times two models, each with the two bins that have pixels.
  t.is(lines.length, 4);
  for (const points of lines) t.is(points.length, 2);
  const [dav1Mae, dav2Mae] = [lines[0], lines[1]];
  t.deepEqual(dav1Mae.map(([x]) => x), dav2Mae.map(([x]) => x));
  // Bin 7's MAE is twice bin 3's: measured from the panel's baseline, twice the height.
  const baseline = Math.max(...[...chart.svg.matchAll(/<line x1="[\d.]+" y1="([\d.]+)" x2="[\d.]+" y2="\1" stroke="#444"\/>/g)].map((match) => Number(match[1])));
  t.true(Math.abs((baseline - dav1Mae[1][1]) / (baseline - dav1Mae[0][1]) - 2) < 1e-2);
});

test("writeEvalPlots writes each chart as SVG and as PNG at twice its size", async (t) => {
  const dir = temporaryDirectory();
  t.teardown(dir.cleanup);
  const written = await writeEvalPlots(aggregate(), dir.path);
  t.deepEqual(written.map((path) => path.slice(dir.path.length + 1)).sort(), plotFileNames().sort());
  t.deepEqual(readdirSync(dir.path).sort(), plotFileNames().sort());
  const svg = readFileSync(join(dir.path, "error_vs_depth.svg"), "utf8");
  const [, width, height] = /<svg [^>]*width="(\d+)" height="(\d+)"/.exec(svg)!.map(Number);
  const png = await sharp(join(dir.path, "error_vs_depth.png")).metadata();
  t.like(png, { format: "png", width: 2 * width, height: 2 * height });
});
