/**
 * The benchmark harness: runs each case a few times after warm-up, reports median, p99 and min
 * wall time and the process's peak RSS, and compares the median with a target or a yardstick
 * when the case names one. Prints an aligned table, or JSON rows with --json.
 */

/** What a case's median is compared with. */
export interface Comparison {
  /** `"target"`: the median should stay below `ms`; `"yardstick"`: another tool's time, shown as a ratio. */
  kind: "target" | "yardstick";
  ms: number;
  /** Shown in the table, e.g. `"np.load"`. */
  label?: string;
}

/** What a case returns when it timed itself (e.g. the part of a child process that matters). */
export interface Measured {
  measuredMs: number;
}

function isMeasured(value: unknown): value is Measured {
  return typeof (value as Partial<Measured> | undefined)?.measuredMs === "number";
}

/** One measured operation. */
export interface BenchCase {
  name: string;
  /** The operation; awaited when it returns a promise. Its wall time counts, unless it returns {@link Measured}. */
  run: () => unknown;
  compare?: Comparison;
}

/** A named group of cases, with what it needs set up first and cleaned up after. */
export interface Suite {
  description: string;
  /** Builds the cases (making input files, etc.). */
  setup: () => Promise<BenchCase[]> | BenchCase[];
  cleanup?: () => void;
}

/** Runs and warm-ups per case. */
export interface MeasureOptions {
  runs: number;
  warmup: number;
}

/** One line of the report. */
export interface BenchRow {
  suite: string;
  case: string;
  runs: number;
  medianMs: number;
  p99Ms: number;
  minMs: number;
  /** Peak resident set size of the whole process so far, MB (it only grows: read it as "up to here"). */
  peakRssMB: number;
  compare?: Comparison & { ratio: number; met?: boolean };
}

/** The value below which `fraction` of the sorted values lie (nearest rank). */
function percentile(sorted: readonly number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)];
}

/** Times one case: `warmup` unrecorded runs, then `runs` recorded ones. */
export async function measure(suite: string, bench: BenchCase, { runs, warmup }: MeasureOptions): Promise<BenchRow> {
  for (let i = 0; i < warmup; i++) await bench.run();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    const result = await bench.run();
    times.push(isMeasured(result) ? result.measuredMs : performance.now() - start);
  }
  times.sort((a, b) => a - b);
  const medianMs = percentile(times, 0.5);
  const row: BenchRow = {
    suite,
    case: bench.name,
    runs,
    medianMs,
    p99Ms: percentile(times, 0.99),
    minMs: times[0],
    peakRssMB: (process.resourceUsage().maxRSS * 1024) / 1e6,
  };
  if (bench.compare) {
    const ratio = medianMs / bench.compare.ms;
    row.compare = { ...bench.compare, ratio, ...(bench.compare.kind === "target" ? { met: medianMs < bench.compare.ms } : {}) };
  }
  return row;
}

function formatComparison(row: BenchRow): string {
  const compare = row.compare;
  if (!compare) return "";
  if (compare.kind === "target") return `target < ${compare.ms} ms: ${compare.met ? "met" : "MISSED"} (${compare.ratio.toFixed(2)}x)`;
  return `${compare.ratio.toFixed(2)}x ${compare.label ?? "yardstick"} (${compare.ms} ms)`;
}

/** The rows as an aligned text table. */
export function formatTable(rows: readonly BenchRow[]): string {
  const header = ["suite", "case", "runs", "median ms", "p99 ms", "min ms", "peak RSS MB", "comparison"];
  const lines = rows.map((row) => [
    row.suite,
    row.case,
    String(row.runs),
    row.medianMs.toFixed(1),
    row.p99Ms.toFixed(1),
    row.minMs.toFixed(1),
    row.peakRssMB.toFixed(0),
    formatComparison(row),
  ]);
  const numeric = new Set([2, 3, 4, 5, 6]);
  const widths = header.map((title, column) => Math.max(title.length, ...lines.map((line) => line[column].length)));
  const render = (cells: string[]) =>
    cells.map((cell, column) => (numeric.has(column) ? cell.padStart(widths[column]) : cell.padEnd(widths[column]))).join("  ").trimEnd();
  return [render(header), render(widths.map((width) => "-".repeat(width))), ...lines.map(render)].join("\n");
}
