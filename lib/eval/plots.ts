/**
 * Charts of an evaluation, as SVG and PNG: per-class bar charts of the four table metrics (MAE cm,
 * Acc@2cm, AbsRel, δ1; one bar per model in each region) and the error-versus-depth curves (MAE of
 * the raw predictions and AbsRel after alignment per 1 cm of ground-truth depth).
 *
 * The SVG is written here by hand (axes, ticks, bars, lines, legend: ~150 lines) and rendered to
 * PNG by sharp, already a dependency: a charting package would add megabytes (vega) or a native
 * canvas build (chart.js on node-canvas) for five static charts, and no chart here needs more
 * than rectangles, polylines and text.
 * @module
 */
import { join } from "node:path";
import sharp from "sharp";
import { writeFileAtomicSync } from "../io/atomic.js";
import { SET2_COLORS } from "../viz/colormaps.js";
import type { EvalAggregate } from "./aggregate.js";
import { groupLabel, HIGHER_IS_BETTER, METRIC_GROUPS, METRIC_LABELS, type MetricName } from "./metrics.js";
import { binEdgesCm, DEPTH_BIN_M } from "./profile.js";
import { alignmentTitle } from "./report.js";

/** One chart: its file name without extension, and its SVG. */
export interface Chart {
  name: string;
  svg: string;
}

const BAR_METRICS: readonly { name: MetricName; space: "metric" | "aligned" }[] = [
  { name: "mae_cm", space: "metric" },
  { name: "acc_2cm", space: "metric" },
  { name: "abs_rel", space: "aligned" },
  { name: "delta1", space: "aligned" },
];

const PROFILE_CHART = "error_vs_depth";

/** The file names (without folder) {@link writeEvalPlots} writes. */
export function plotFileNames(): string[] {
  return [...BAR_METRICS.map(({ name }) => name), PROFILE_CHART].flatMap((name) => [`${name}.svg`, `${name}.png`]);
}

const FONT = "DejaVu Sans, Helvetica, Arial, sans-serif";
const AXIS_COLOUR = "#444";
const GRID_COLOUR = "#e4e4e4";

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function colour(index: number): string {
  const k = (index % 8) * 3;
  const channel = (c: number) => Math.round(SET2_COLORS[k + c] * 255);
  return `rgb(${channel(0)},${channel(1)},${channel(2)})`;
}

function text(x: number, y: number, content: string, options: { anchor?: "start" | "middle" | "end"; size?: number; rotate?: boolean; bold?: boolean } = {}): string {
  const transform = options.rotate ? ` transform="rotate(-90 ${x} ${y})"` : "";
  const weight = options.bold ? ' font-weight="bold"' : "";
  return `<text x="${x}" y="${y}" font-family="${FONT}" font-size="${options.size ?? 12}" text-anchor="${options.anchor ?? "start"}"${weight}${transform}>${escapeXml(content)}</text>`;
}

function svgDocument(width: number, height: number, body: string[]): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">\n<rect width="${width}" height="${height}" fill="white"/>\n${body.join("\n")}\n</svg>\n`;
}

/** Round tick steps (1, 2 or 5 times a power of ten) covering [0, top]. */
function ticks(top: number): number[] {
  const span = top > 0 && Number.isFinite(top) ? top : 1;
  const rough = span / 5;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((candidate) => candidate >= rough)!;
  const count = Math.ceil(span / step - 1e-9);
  return Array.from({ length: count + 1 }, (_, k) => Number((k * step).toPrecision(12)));
}

/** A frame with a y axis, grid and labels; maps values to pixels. */
interface Frame {
  left: number;
  top: number;
  width: number;
  height: number;
  yTicks: number[];
}

function y(frame: Frame, value: number): number {
  const top = frame.yTicks[frame.yTicks.length - 1];
  return frame.top + frame.height * (1 - value / top);
}

function yAxis(frame: Frame, label: string): string[] {
  const parts = frame.yTicks.map((tick) => {
    const at = y(frame, tick);
    return `<line x1="${frame.left}" y1="${at}" x2="${frame.left + frame.width}" y2="${at}" stroke="${GRID_COLOUR}"/>\n${text(frame.left - 6, at + 4, String(tick), { anchor: "end", size: 11 })}`;
  });
  parts.push(`<line x1="${frame.left}" y1="${frame.top}" x2="${frame.left}" y2="${frame.top + frame.height}" stroke="${AXIS_COLOUR}"/>`);
  parts.push(`<line x1="${frame.left}" y1="${frame.top + frame.height}" x2="${frame.left + frame.width}" y2="${frame.top + frame.height}" stroke="${AXIS_COLOUR}"/>`);
  parts.push(text(frame.left - 46, frame.top + frame.height / 2, label, { anchor: "middle", rotate: true }));
  return parts;
}

function legend(models: readonly string[], x: number, top: number): string[] {
  return models.flatMap((model, i) => [
    `<rect x="${x}" y="${top + 18 * i}" width="12" height="12" fill="${colour(i)}"/>`,
    text(x + 18, top + 18 * i + 11, model),
  ]);
}

function metricAxisLabel(name: MetricName): string {
  return `${METRIC_LABELS[name]} (${HIGHER_IS_BETTER[name] ? "higher" : "lower"} is better)`;
}

function barChart(aggregate: EvalAggregate, name: MetricName, space: "metric" | "aligned"): Chart {
  const regions = METRIC_GROUPS.filter((group, i) => i < 3 || aggregate.models.some((model) => model.groups[group].pixels > 0));
  const models = aggregate.models.map((model) => model.model);
  const values = aggregate.models.map((model) => regions.map((group) => model.groups[group][space][name]));
  const largest = Math.max(0, ...values.flat().filter(Number.isFinite));
  const bounded = name === "acc_2cm" || name.startsWith("delta");
  const groupWidth = Math.max(70, 22 * models.length + 24);
  const frame: Frame = { left: 70, top: 40, width: groupWidth * regions.length, height: 260, yTicks: ticks(bounded ? 1 : largest) };
  const width = frame.left + frame.width + 160;
  const height = frame.top + frame.height + 95;
  const space_ = space === "metric" ? "raw predictions" : alignmentTitle(aggregate.alignment);
  const body = [text(frame.left, 24, `${METRIC_LABELS[name]} per region (${space_})`, { size: 15, bold: true }), ...yAxis(frame, metricAxisLabel(name))];
  const barWidth = (groupWidth - 24) / Math.max(1, models.length);
  regions.forEach((group, r) => {
    const x0 = frame.left + r * groupWidth + 12;
    models.forEach((_, m) => {
      const value = values[m][r];
      if (!Number.isFinite(value)) return;
      const top = y(frame, value);
      body.push(`<rect x="${(x0 + m * barWidth).toFixed(1)}" y="${top.toFixed(1)}" width="${(barWidth - 2).toFixed(1)}" height="${(frame.top + frame.height - top).toFixed(1)}" fill="${colour(m)}"><title>${escapeXml(`${models[m]}, ${groupLabel(group)}: ${value}`)}</title></rect>`);
    });
    const labelX = frame.left + r * groupWidth + groupWidth / 2;
    const labelY = frame.top + frame.height + 14;
    body.push(`<text x="${labelX}" y="${labelY}" font-family="${FONT}" font-size="11" text-anchor="end" transform="rotate(-35 ${labelX} ${labelY})">${escapeXml(groupLabel(group))}</text>`);
  });
  body.push(...legend(models, frame.left + frame.width + 20, frame.top));
  return { name, svg: svgDocument(width, height, body) };
}

function profilePanel(aggregate: EvalAggregate, frame: Frame, key: "mae_cm" | "abs_rel", title: string, axis: string): string[] {
  const edges = binEdgesCm();
  const binCm = DEPTH_BIN_M * 100;
  const xOf = (depthCm: number) => frame.left + (frame.width * depthCm) / (edges.length * binCm);
  const body = [text(frame.left, frame.top - 12, title, { size: 13, bold: true }), ...yAxis(frame, axis)];
  for (let cm = 0; cm <= edges.length * binCm; cm += 5) {
    body.push(`<line x1="${xOf(cm)}" y1="${frame.top + frame.height}" x2="${xOf(cm)}" y2="${frame.top + frame.height + 4}" stroke="${AXIS_COLOUR}"/>`);
    body.push(text(xOf(cm), frame.top + frame.height + 17, String(cm), { anchor: "middle", size: 11 }));
  }
  body.push(text(frame.left + frame.width / 2, frame.top + frame.height + 36, `ground-truth depth (cm; the last bin holds all beyond ${edges[edges.length - 1]})`, { anchor: "middle" }));
  aggregate.models.forEach((model, m) => {
    const points = edges.flatMap((edge, bin) => {
      const value = model.profile[key][bin];
      return model.profile.pixels[bin] > 0 && Number.isFinite(value) ? [[xOf(edge + binCm / 2), y(frame, value)]] : [];
    });
    if (points.length === 0) return;
    const path = points.map(([px, py]) => `${px.toFixed(1)},${py.toFixed(1)}`).join(" ");
    body.push(`<polyline points="${path}" fill="none" stroke="${colour(m)}" stroke-width="2"/>`);
    for (const [px, py] of points) body.push(`<circle cx="${px.toFixed(1)}" cy="${py.toFixed(1)}" r="2.5" fill="${colour(m)}"/>`);
  });
  return body;
}

function profileChart(aggregate: EvalAggregate): Chart {
  const largest = (key: "mae_cm" | "abs_rel") => Math.max(0, ...aggregate.models.flatMap((model) => model.profile[key].filter(Number.isFinite)));
  const mae: Frame = { left: 70, top: 60, width: 360, height: 260, yTicks: ticks(largest("mae_cm")) };
  const absRel: Frame = { ...mae, left: mae.left + mae.width + 90, yTicks: ticks(largest("abs_rel")) };
  const width = absRel.left + absRel.width + 160;
  const height = mae.top + mae.height + 60;
  const body = [
    text(mae.left, 24, "Error versus ground-truth depth (all valid pixels, pooled)", { size: 15, bold: true }),
    ...profilePanel(aggregate, mae, "mae_cm", "MAE, raw predictions", "MAE (cm)"),
    ...profilePanel(aggregate, absRel, "abs_rel", `AbsRel, ${alignmentTitle(aggregate.alignment)}`, "AbsRel"),
    ...legend(aggregate.models.map((model) => model.model), absRel.left + absRel.width + 20, absRel.top),
  ];
  return { name: PROFILE_CHART, svg: svgDocument(width, height, body) };
}

/** Every chart of an aggregate, as SVG text (see the module notes). */
export function evalCharts(aggregate: EvalAggregate): Chart[] {
  return [...BAR_METRICS.map(({ name, space }) => barChart(aggregate, name, space)), profileChart(aggregate)];
}

/**
 * Writes every chart to `folder` as `<name>.svg` and `<name>.png` (rendered at twice the SVG's
 * size), each file atomically, replacing files of the same names; returns the paths written.
 */
export async function writeEvalPlots(aggregate: EvalAggregate, folder: string): Promise<string[]> {
  const written: string[] = [];
  for (const chart of evalCharts(aggregate)) {
    const svg = Buffer.from(chart.svg, "utf8");
    const png = await sharp(svg, { density: 144 }).png().toBuffer();
    for (const [extension, bytes] of [["svg", svg], ["png", png]] as const) {
      const path = join(folder, `${chart.name}.${extension}`);
      writeFileAtomicSync(path, bytes);
      written.push(path);
    }
  }
  return written;
}
