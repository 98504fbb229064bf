/**
 * Aggregate tables as text: models side by side in columns, as the EndoSynth paper lays them out,
 * for the console (aligned plain text) or a Markdown file. The library only builds the strings;
 * the CLI prints them.
 *
 * Sections: *Metric depth* (MAE in cm and Acc@2cm of the raw predictions, per group), *Relative
 * depth* (AbsRel and δ1 after alignment, per group) and, with `full: true`, *All metrics* (the
 * standard set in both spaces over all pixels).
 * @module
 */
import type { EvalAggregate } from "./aggregate.js";
import { groupLabel, HIGHER_IS_BETTER, METRIC_GROUPS, METRIC_LABELS, METRIC_NAMES, type MetricName } from "./metrics.js";

/** Options of {@link formatAggregate}. */
export interface FormatAggregateOptions {
  /** `"text"` (default) for a terminal, `"markdown"` for a file. */
  format?: "text" | "markdown";
  /** Add the full standard set over all pixels; default false. */
  full?: boolean;
}

/** Decimals per metric: the paper's two for MAE (cm), three for the ratios. */
const DECIMALS: Readonly<Record<MetricName, number>> = {
  mae_cm: 2, acc_2cm: 3, rmse: 4, abs_rel: 3, sq_rel: 4, log10: 3, delta1: 3, delta2: 3, delta3: 3,
};

interface Section {
  title: string;
  header: string[];
  rows: string[][];
}

function formatValue(value: number, name: MetricName): string {
  return Number.isFinite(value) ? value.toFixed(DECIMALS[name]) : "–";
}

function metricLabel(name: MetricName): string {
  return `${METRIC_LABELS[name]} ${HIGHER_IS_BETTER[name] ? "↑" : "↓"}`;
}

function perGroupSection(aggregate: EvalAggregate, title: string, space: "metric" | "aligned", names: readonly MetricName[]): Section {
  const rows: string[][] = [];
  for (const name of names) {
    METRIC_GROUPS.forEach((group, i) => {
      rows.push([
        i === 0 ? metricLabel(name) : "",
        groupLabel(group),
        ...aggregate.models.map((model) => formatValue(model.groups[group][space][name], name)),
      ]);
    });
  }
  return { title, header: ["metric", "region", ...aggregate.models.map((model) => model.model)], rows };
}

function fullSection(aggregate: EvalAggregate, alignment: string): Section {
  const rows: string[][] = [];
  for (const [space, label] of [["metric", "raw"], ["aligned", alignment]] as const) {
    METRIC_NAMES.forEach((name, i) => {
      rows.push([i === 0 ? label : "", metricLabel(name), ...aggregate.models.map((model) => formatValue(model.groups.all[space][name], name))]);
    });
  }
  return { title: "All metrics, all pixels", header: ["prediction", "metric", ...aggregate.models.map((model) => model.model)], rows };
}

function markdownTable({ header, rows }: Section): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  const rule = header.map((_, i) => (i < 2 ? "---" : "---:"));
  return [line(header), line(rule), ...rows.map(line)].join("\n");
}

function textTable({ header, rows }: Section): string {
  const widths = header.map((cell, i) => Math.max(cell.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join("  ").trimEnd();
  return [line(header), widths.map((width) => "-".repeat(width)).join("  "), ...rows.map(line)].join("\n");
}

/**
 * The aggregate as tables, models side by side.
 * @example
 * ```ts
 * process.stdout.write(formatAggregate(aggregator.result("sample")));
 * writeFileSync("eval.md", formatAggregate(aggregate, { format: "markdown", full: true }));
 * ```
 */
export function formatAggregate(aggregate: EvalAggregate, options?: FormatAggregateOptions): string {
  const markdown = options?.format === "markdown";
  const alignment = aggregate.alignment ?? "median";
  const aligned = alignment === "none" ? "no alignment" : alignment === "lsq" ? "least-squares scale and shift" : "median scaling";
  const sections = [
    perGroupSection(aggregate, "Metric depth (raw predictions)", "metric", ["mae_cm", "acc_2cm"]),
    perGroupSection(aggregate, `Relative depth (${aligned})`, "aligned", ["abs_rel", "delta1"]),
    ...(options?.full ? [fullSection(aggregate, aligned)] : []),
  ];
  const weighting = aggregate.weighting === "sample" ? "mean over samples of per-sample metrics" : "pooled over all valid pixels";
  const counts = aggregate.models.map((model) => `${model.model}: ${model.samples}`).join(", ");
  const intro = `Samples: ${counts || "none"}. Aggregate: ${weighting}.`;
  if (markdown) return `${[intro, ...sections.map((section) => `### ${section.title}\n\n${markdownTable(section)}`)].join("\n\n")}\n`;
  return `${[intro, ...sections.map((section) => `${section.title}\n${textTable(section)}`)].join("\n\n")}\n`;
}
