/**
 * The per-sample results file of an evaluation: one row per (sample, model), as CSV or JSON Lines
 * (chosen by the extension), appended and flushed row by row so an interrupted run leaves a valid
 * file that a later run resumes from and that the aggregate is recomputed from.
 *
 * JSONL rows are {@link EvalRow} objects (NaN written as `null`). CSV rows flatten them: `sample`,
 * `model`, the settings, then for each group `<group>.pixels`, `<group>.<metric>` and
 * `<group>.aligned.<metric>`, then for each 1 cm bin of ground-truth depth `depth.<k>cm.pixels`,
 * `depth.<k>cm.mae_cm` and `depth.<k>cm.aligned.abs_rel` (see {@link DepthProfile}); an empty cell
 * is NaN. Numbers are written in their shortest exact form, so a row read back is the row written.
 *
 * This file is the one output not written through a temporary file and a rename: it is an
 * append-only log, and its validity comes from whole-row appends instead (a torn last line, from a
 * crash in the middle of a write, is cut off on resume).
 * @module
 */
import { closeSync, fsyncSync, openSync, readFileSync, truncateSync, writeSync } from "node:fs";
import { extname } from "node:path";
import { FileFormatError, InputError } from "../errors.js";
import { ALIGNMENTS, type Alignment, type GroupMetrics, METRIC_GROUPS, METRIC_NAMES, type MetricValues } from "./metrics.js";
import { binEdgesCm, DEPTH_BINS, type DepthProfile } from "./profile.js";

/** One sample evaluated by one model. */
export interface EvalRow {
  /** The sample, as listed (relative to the dataset's samples folder, or as in the list file). */
  sample: string;
  /** The model's name. */
  model: string;
  /** Alignment used for the `aligned` metrics. */
  alignment: Alignment;
  /** Ground truth above this was not valid (Infinity for no limit). */
  maxDepth: number;
  /** Predictions were clamped below at this. */
  minDepth: number;
  /** aligned = scale · prediction + shift. */
  scale: number;
  /** See `scale`. */
  shift: number;
  /** Ground-truth pixels that were NaN or infinite. */
  nonFiniteGt: number;
  /** Predicted pixels that were NaN or infinite where the ground truth was valid. */
  nonFinitePred: number;
  /** Metrics per group ({@link METRIC_GROUPS}). */
  groups: Record<string, GroupMetrics>;
  /** Errors per 1 cm bin of ground-truth depth. */
  profile: DepthProfile;
}

/** The settings every row of one file must share, or its aggregate would mix different metrics. */
export type EvalSettings = Pick<EvalRow, "alignment" | "maxDepth" | "minDepth">;

/** How rows are stored. */
export type RowsFormat = "csv" | "jsonl";

/** The format of a rows file, from its extension. */
export function rowsFormatOf(path: string): RowsFormat {
  const extension = extname(path).toLowerCase();
  if (extension === ".csv") return "csv";
  if (extension === ".jsonl" || extension === ".ndjson") return "jsonl";
  throw new InputError(`Expected a per-sample results file ending in .csv or .jsonl but received ${JSON.stringify(path)}`, { key: "output", file: path });
}

const SETTINGS_COLUMNS = ["sample", "model", "alignment", "max_depth", "min_depth", "scale", "shift", "nonfinite_gt", "nonfinite_pred"];

/** The CSV columns, in order. */
export const CSV_COLUMNS: readonly string[] = [
  ...SETTINGS_COLUMNS,
  ...METRIC_GROUPS.flatMap((group) => [
    `${group}.pixels`,
    ...METRIC_NAMES.map((name) => `${group}.${name}`),
    ...METRIC_NAMES.map((name) => `${group}.aligned.${name}`),
  ]),
  ...binEdgesCm().flatMap((edge) => [`depth.${edge}cm.pixels`, `depth.${edge}cm.mae_cm`, `depth.${edge}cm.aligned.abs_rel`]),
];

const columnIndex = new Map(CSV_COLUMNS.map((column, i) => [column, i]));

function csvCell(value: string | number): string {
  if (typeof value === "number") return Number.isNaN(value) ? "" : String(value);
  return /[",\n\r]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/** Splits one CSV line into cells (RFC 4180 quoting; rows never span lines here). */
function csvCells(line: string): string[] {
  const cells: string[] = [];
  let at = 0;
  for (;;) {
    if (line[at] === '"') {
      let value = "";
      at++;
      for (;;) {
        const quote = line.indexOf('"', at);
        if (quote < 0) throw new Error("unterminated quoted cell");
        value += line.slice(at, quote);
        at = quote + 1;
        if (line[at] !== '"') break;
        value += '"';
        at++;
      }
      cells.push(value);
    } else {
      const comma = line.indexOf(",", at);
      cells.push(line.slice(at, comma < 0 ? line.length : comma));
      at = comma < 0 ? line.length : comma;
    }
    if (at >= line.length) return cells;
    if (line[at] !== ",") throw new Error(`expected "," at character ${at}`);
    at++;
  }
}

function metricCells(values: MetricValues): number[] {
  return METRIC_NAMES.map((name) => values[name]);
}

/** One row as a line of its format (with the newline). */
export function encodeRow(row: EvalRow, format: RowsFormat): string {
  if (format === "jsonl") return `${JSON.stringify(row, (_, value) => (value === Infinity ? "Infinity" : value))}\n`;
  const cells: (string | number)[] = [
    row.sample, row.model, row.alignment, row.maxDepth, row.minDepth, row.scale, row.shift, row.nonFiniteGt, row.nonFinitePred,
  ];
  for (const group of METRIC_GROUPS) {
    const metrics = row.groups[group];
    cells.push(metrics?.pixels ?? 0, ...(metrics ? [...metricCells(metrics.metric), ...metricCells(metrics.aligned)] : new Array(2 * METRIC_NAMES.length).fill(NaN)));
  }
  for (let bin = 0; bin < DEPTH_BINS; bin++) cells.push(row.profile.pixels[bin], row.profile.mae_cm[bin], row.profile.abs_rel[bin]);
  return `${cells.map(csvCell).join(",")}\n`;
}

/** The CSV header line (with the newline). */
export function csvHeader(): string {
  return `${CSV_COLUMNS.join(",")}\n`;
}

function toNumber(cell: string | number | null | undefined): number {
  if (cell === null || cell === undefined || cell === "") return NaN;
  return typeof cell === "number" ? cell : Number(cell);
}

function metricValues(read: (name: string) => number): MetricValues {
  return Object.fromEntries(METRIC_NAMES.map((name) => [name, read(name)])) as MetricValues;
}

function checkRow(row: EvalRow, where: string): EvalRow {
  if (typeof row.sample !== "string" || typeof row.model !== "string" || !ALIGNMENTS.includes(row.alignment)) {
    throw new Error(`${where}: expected sample, model and alignment`);
  }
  if (typeof row.groups !== "object" || row.groups === null || typeof row.groups.all !== "object") throw new Error(`${where}: no "all" group`);
  const profile = row.profile as DepthProfile | undefined;
  if (!profile || !(["pixels", "mae_cm", "abs_rel"] as const).every((key) => Array.isArray(profile[key]) && profile[key].length === DEPTH_BINS)) {
    throw new Error(`${where}: no depth profile of ${DEPTH_BINS} bins`);
  }
  return row;
}

function parseJsonRow(line: string, where: string): EvalRow {
  const raw = JSON.parse(line, (_, value) => (value === null ? NaN : value === "Infinity" ? Infinity : value)) as EvalRow;
  return checkRow(raw, where);
}

function parseCsvRow(cells: string[], where: string): EvalRow {
  if (cells.length !== CSV_COLUMNS.length) throw new Error(`${where}: ${cells.length} cells, expected ${CSV_COLUMNS.length}`);
  const cell = (column: string) => cells[columnIndex.get(column)!];
  const groups: Record<string, GroupMetrics> = {};
  for (const group of METRIC_GROUPS) {
    groups[group] = {
      pixels: toNumber(cell(`${group}.pixels`)),
      metric: metricValues((name) => toNumber(cell(`${group}.${name}`))),
      aligned: metricValues((name) => toNumber(cell(`${group}.aligned.${name}`))),
    };
  }
  return checkRow({
    sample: cell("sample"),
    model: cell("model"),
    alignment: cell("alignment") as Alignment,
    maxDepth: toNumber(cell("max_depth")),
    minDepth: toNumber(cell("min_depth")),
    scale: toNumber(cell("scale")),
    shift: toNumber(cell("shift")),
    nonFiniteGt: toNumber(cell("nonfinite_gt")),
    nonFinitePred: toNumber(cell("nonfinite_pred")),
    groups,
    profile: {
      pixels: binEdgesCm().map((edge) => toNumber(cell(`depth.${edge}cm.pixels`))),
      mae_cm: binEdgesCm().map((edge) => toNumber(cell(`depth.${edge}cm.mae_cm`))),
      abs_rel: binEdgesCm().map((edge) => toNumber(cell(`depth.${edge}cm.aligned.abs_rel`))),
    },
  }, where);
}

/** What {@link readRows} found besides the rows. */
export interface RowsFileState {
  /** Complete rows read. */
  rows: number;
  /** Byte length of the complete lines (a torn last line starts here). */
  validBytes: number;
  /** Whether the file starts with the CSV header (always false for JSONL). */
  hasHeader: boolean;
}

/**
 * Reads every complete row of a results file, handing each to `onRow` (rows are not kept). A last
 * line without its newline (a write cut short) is left out, and `validBytes` says where to cut the
 * file to drop it.
 * @throws {@link endosynth!FileFormatError | FileFormatError} naming the file and line, for a header or row this module did not write.
 */
export function readRows(path: string, onRow: (row: EvalRow) => void): RowsFileState {
  const format = rowsFormatOf(path);
  const bytes = readFileSync(path);
  const validBytes = bytes.lastIndexOf(0x0a) + 1;
  const text = bytes.subarray(0, validBytes).toString("utf8");
  let rows = 0;
  let hasHeader = false;
  let start = 0;
  for (let line = 1; start < text.length; line++) {
    const end = text.indexOf("\n", start);
    const content = text.slice(start, end);
    start = end + 1;
    if (content.trim() === "") continue;
    const where = `line ${line}`;
    let row: EvalRow | undefined;
    try {
      if (format === "jsonl") row = parseJsonRow(content, where);
      else if (line === 1) {
        if (content !== CSV_COLUMNS.join(",")) throw new Error(`${where}: the header differs from the columns this version writes`);
        hasHeader = true;
      } else row = parseCsvRow(csvCells(content), where);
    } catch (error) {
      throw new FileFormatError(`${path}: not a per-sample results file written by endosynth eval (${(error as Error).message})`, { file: path, cause: error });
    }
    if (row) {
      rows++;
      onRow(row);
    }
  }
  const torn = bytes.subarray(validBytes).toString("utf8");
  if (torn !== "" && !isTornRow(torn, format, hasHeader)) {
    throw new FileFormatError(`${path}: not a per-sample results file written by endosynth eval (its last line is neither a row nor the start of one)`, { file: path });
  }
  return { rows, validBytes, hasHeader };
}

/** Whether an unterminated last line can be the start of a row (or header) this module writes. */
function isTornRow(text: string, format: RowsFormat, hasHeader: boolean): boolean {
  if (format === "jsonl") {
    const start = '{"sample":';
    return text.startsWith(start) || start.startsWith(text);
  }
  return hasHeader || csvHeader().startsWith(text);
}

/** Appends rows to a results file, each flushed to disk before `append` returns. */
export class RowsWriter {
  readonly #fd: number;
  /** CSV or JSONL, from the path's extension. */
  readonly format: RowsFormat;

  /**
   * Opens `path` for appending: a new file gets the CSV header; an existing one is first cut to
   * `validBytes` (dropping a torn last line). The format comes from the extension unless given.
   */
  constructor(readonly path: string, existing?: Pick<RowsFileState, "validBytes" | "hasHeader">, format: RowsFormat = rowsFormatOf(path)) {
    this.format = format;
    if (existing) truncateSync(path, existing.validBytes);
    this.#fd = openSync(path, existing ? "a" : "w");
    if (this.format === "csv" && !existing?.hasHeader) this.#writeLine(csvHeader());
  }

  #writeLine(text: string): void {
    const bytes = Buffer.from(text, "utf8");
    let written = 0;
    while (written < bytes.length) written += writeSync(this.#fd, bytes, written, bytes.length - written);
  }

  /** Appends rows and flushes them to disk. */
  append(rows: readonly EvalRow[]): void {
    if (rows.length === 0) return;
    this.#writeLine(rows.map((row) => encodeRow(row, this.format)).join(""));
    fsyncSync(this.#fd);
  }

  /** Closes the file. */
  close(): void {
    closeSync(this.#fd);
  }
}
