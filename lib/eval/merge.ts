/**
 * Joins the per-sample results files of sharded runs (`endosynth eval … --shard i/n`) into one,
 * and aggregates them: since aggregates are exact sums, independent of the order of the rows,
 * the result is bit for bit the aggregate of one unsharded run over the same samples.
 *
 * The parts must share their settings (alignment, depth bounds) and must not overlap: a sample
 * evaluated by the same model in two parts means the shards were cut differently, and is refused
 * rather than counted twice or silently dropped.
 * @module
 */
import { existsSync, mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { InputError } from "../errors.js";
import { assertOptions, assertString, invalidParameter } from "../is.js";
import { withAtomicFile } from "../io/atomic.js";
import { type EvalAggregate, EvalAggregator } from "./aggregate.js";
import { type EvalRow, readRows, rowsFormatOf, RowsWriter } from "./rows.js";

/** Options of {@link mergeRows}. */
export interface MergeRowsOptions {
  /** Replace an existing output file; without it, an existing output is an error. */
  overwrite?: boolean;
}

/** What {@link mergeRows} did. */
export interface MergeSummary {
  /** The merged results file. */
  output: string;
  /** Part files read. */
  parts: number;
  /** Rows written. */
  rows: number;
  /** Distinct samples. */
  samples: number;
  /** Models, in the order first seen. */
  models: string[];
  /** The aggregate of every row, in both weightings. */
  aggregates: {
    /** Every sample weighs the same. */
    sample: EvalAggregate;
    /** Every valid pixel weighs the same. */
    pixel: EvalAggregate;
  };
}

/** Rows buffered before each append (each append is flushed to disk). */
const BATCH = 1000;

function settingsOf(row: EvalRow): string {
  return `alignment ${row.alignment}, max depth ${row.maxDepth}, min depth ${row.minDepth}`;
}

/**
 * Merges part files (CSV or JSONL, mixed as you like) into `output` (CSV or JSONL by its
 * extension), written atomically, and returns the aggregate.
 * @throws {@link endosynth!InputError | InputError} for no parts, a missing part, an output that is also a part or exists
 * without `overwrite`, parts with different settings, or a sample and model in two parts.
 * @throws {@link endosynth!FileFormatError | FileFormatError} for a part endosynth eval did not write.
 */
export async function mergeRows(parts: readonly string[], output: string, options?: MergeRowsOptions): Promise<MergeSummary> {
  if (!Array.isArray(parts) || parts.length === 0) throw invalidParameter("parts", "a non-empty array of results files", parts);
  parts.forEach((part, i) => assertString(`parts[${i}]`, part));
  assertString("output", output);
  assertOptions("options", options as unknown, ["overwrite"]);
  const format = rowsFormatOf(output);
  for (const part of parts) {
    rowsFormatOf(part);
    if (!existsSync(part)) throw new InputError(`Part ${part} does not exist`, { file: part });
    if (resolve(part) === resolve(output)) throw new InputError(`The output ${output} is also one of the parts: write the merged rows to another file`, { file: output });
  }
  if (existsSync(output) && !options?.overwrite) {
    throw new InputError(`${output} already exists: pass --overwrite to replace it`, { file: output, key: "output" });
  }

  mkdirSync(dirname(resolve(output)), { recursive: true });
  const aggregator = new EvalAggregator();
  const seenIn = new Map<string, string>();
  const samples = new Set<string>();
  let first: { row: EvalRow; part: string } | undefined;
  let rows = 0;
  await withAtomicFile(output, async (temporary) => {
    const writer = new RowsWriter(temporary, undefined, format);
    try {
      let batch: EvalRow[] = [];
      for (const part of parts) {
        readRows(part, (row) => {
          first ??= { row, part };
          if (settingsOf(row) !== settingsOf(first.row)) {
            throw new InputError(`${part} was evaluated with ${settingsOf(row)} but ${first.part} with ${settingsOf(first.row)}: parts of one evaluation share their settings`, { file: part });
          }
          const key = `${row.model}\u0000${row.sample}`;
          const earlier = seenIn.get(key);
          if (earlier !== undefined) {
            throw new InputError(`${row.sample} evaluated by ${row.model} is in both ${earlier} and ${part}: the shards overlap`, { file: part });
          }
          seenIn.set(key, part);
          samples.add(row.sample);
          aggregator.add(row);
          batch.push(row);
          rows++;
          if (batch.length === BATCH) {
            writer.append(batch);
            batch = [];
          }
        });
      }
      writer.append(batch);
    } finally {
      writer.close();
    }
  });
  const sample = aggregator.result("sample");
  return { output, parts: parts.length, rows, samples: samples.size, models: sample.models.map((model) => model.model), aggregates: { sample, pixel: aggregator.result("pixel") } };
}
