/**
 * Aggregate tables as text, laid out as the EndoSynth paper's: one row per region (all pixels,
 * anatomy, tools, then each instrument) and the models side by side, each with its pair of
 * metrics. For the console (aligned plain text, model names over their columns) or a Markdown
 * file (the best value of each row in bold when there are several models). The library only
 * builds the strings; the CLI prints them.
 *
 * Sections: *Metric depth* (MAE in cm and Acc@2cm of the raw predictions), *Relative depth*
 * (AbsRel and δ1 after alignment) and, with `full: true`, *All metrics* (the standard set in both
 * spaces over all pixels). Instruments absent from every model's samples are left out.
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

/** Groups always shown; instruments only when some model has pixels of them. */
const FIXED_GROUPS = 3;

/** A table: its columns come in groups (one per model), each cell a number or a label. */
interface Section {
  title: string;
  /** Header of the label columns. */
  labels: string[];
  /** Column groups: a title over each group's columns (empty for none). */
  groups: { title: string; columns: string[] }[];
  rows: { labels: string[]; cells: Cell[] }[];
}

interface Cell {
  value: number;
  name: MetricName;
}

function formatValue({ value, name }: Cell): string {
  return Number.isFinite(value) ? value.toFixed(DECIMALS[name]) : "–";
}

function metricLabel(name: MetricName): string {
  return `${METRIC_LABELS[name]} ${HIGHER_IS_BETTER[name] ? "↑" : "↓"}`;
}

function shownGroups(aggregate: EvalAggregate): string[] {
  return METRIC_GROUPS.filter((group, i) => i < FIXED_GROUPS || aggregate.models.some((model) => model.groups[group].pixels > 0));
}

function regionSection(aggregate: EvalAggregate, title: string, space: "metric" | "aligned", names: readonly MetricName[]): Section {
  return {
    title,
    labels: ["region"],
    groups: aggregate.models.map((model) => ({ title: model.model, columns: names.map(metricLabel) })),
    rows: shownGroups(aggregate).map((group) => ({
      labels: [groupLabel(group)],
      cells: aggregate.models.flatMap((model) => names.map((name) => ({ value: model.groups[group][space][name], name }))),
    })),
  };
}

function fullSection(aggregate: EvalAggregate, alignment: string): Section {
  return {
    title: "All metrics, all pixels",
    labels: ["metric"],
    groups: aggregate.models.map((model) => ({ title: model.model, columns: ["raw", alignment] })),
    rows: METRIC_NAMES.map((name) => ({
      labels: [metricLabel(name)],
      cells: aggregate.models.flatMap((model) => [{ value: model.groups.all.metric[name], name }, { value: model.groups.all.aligned[name], name }]),
    })),
  };
}

/** Per row, the index of the best cell of each metric across models, when there are several models. */
function bestCells(section: Section): Set<number>[] {
  const width = section.groups[0]?.columns.length ?? 0;
  if (section.groups.length < 2) return section.rows.map(() => new Set());
  return section.rows.map(({ cells }) => {
    const best = new Set<number>();
    for (let column = 0; column < width; column++) {
      const candidates = section.groups.map((_, g) => g * width + column).filter((i) => Number.isFinite(cells[i].value));
      if (candidates.length < 2) continue;
      const sign = HIGHER_IS_BETTER[cells[candidates[0]].name] ? -1 : 1;
      // Compare as shown: two values printed alike are equally good.
      const shown = (i: number) => Number(formatValue(cells[i]));
      const top = Math.min(...candidates.map((i) => sign * shown(i)));
      for (const i of candidates) if (sign * shown(i) === top) best.add(i);
    }
    return best;
  });
}

function markdownTable(section: Section): string {
  const best = bestCells(section);
  const header = [
    ...section.labels,
    ...section.groups.flatMap(({ title, columns }) => columns.map((column) => (section.groups.length > 1 || title ? `${title} · ${column}` : column))),
  ];
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  const rule = header.map((_, i) => (i < section.labels.length ? "---" : "---:"));
  const rows = section.rows.map((row, r) =>
    line([...row.labels, ...row.cells.map((cell, i) => (best[r].has(i) ? `**${formatValue(cell)}**` : formatValue(cell)))]),
  );
  return [line(header), line(rule), ...rows].join("\n");
}

function textTable(section: Section): string {
  const labelCount = section.labels.length;
  const columnTitles = section.groups.flatMap(({ columns }) => columns);
  const body = section.rows.map((row) => [...row.labels, ...row.cells.map(formatValue)]);
  const header = [...section.labels, ...columnTitles];
  const widths = header.map((cell, i) => Math.max(cell.length, ...body.map((row) => row[i].length)));
  // A model's title spans its columns; widen the last of them when the title is longer.
  const width = section.groups[0]?.columns.length ?? 0;
  section.groups.forEach(({ title }, g) => {
    const first = labelCount + g * width;
    const span = widths.slice(first, first + width).reduce((sum, w) => sum + w, 0) + 2 * (width - 1);
    if (title.length > span) widths[first + width - 1] += title.length - span;
  });
  const line = (cells: string[]) => cells.map((cell, i) => (i < labelCount ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join("  ").trimEnd();
  const titles = [
    ...section.labels.map((_, i) => " ".repeat(widths[i])),
    ...section.groups.map(({ title }, g) => {
      const first = labelCount + g * width;
      const span = widths.slice(first, first + width).reduce((sum, w) => sum + w, 0) + 2 * (width - 1);
      return title.padStart(span);
    }),
  ];
  return [titles.join("  ").trimEnd(), line(header), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

/**
 * Name of the alignment, as the tables title it.
 * @internal
 */
export function alignmentTitle(alignment: EvalAggregate["alignment"]): string {
  if (alignment === "none") return "no alignment";
  return alignment === "lsq" ? "least-squares scale and shift" : "median scaling";
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
  const aligned = alignmentTitle(aggregate.alignment ?? "median");
  const sections = [
    regionSection(aggregate, "Metric depth (raw predictions)", "metric", ["mae_cm", "acc_2cm"]),
    regionSection(aggregate, `Relative depth (${aligned})`, "aligned", ["abs_rel", "delta1"]),
    ...(options?.full ? [fullSection(aggregate, aligned)] : []),
  ];
  const weighting = aggregate.weighting === "sample" ? "mean over samples of per-sample metrics" : "pooled over all valid pixels";
  const counts = aggregate.models.map((model) => `${model.model}: ${model.samples}`).join(", ");
  const intro = `Samples: ${counts || "none"}. Aggregate: ${weighting}.`;
  if (markdown) return `${[intro, ...sections.map((section) => `### ${section.title}\n\n${markdownTable(section)}`)].join("\n\n")}\n`;
  return `${[intro, ...sections.map((section) => `${section.title}\n${textTable(section)}`)].join("\n\n")}\n`;
}
