import test, { type ExecutionContext } from "ava";
import { appendFileSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FileFormatError, InputError } from "../../lib/errors.js";
import { METRIC_GROUPS, METRIC_NAMES, type MetricValues } from "../../lib/eval/metrics.js";
import { DEPTH_BINS } from "../../lib/eval/profile.js";
import { CSV_COLUMNS, type EvalRow, readRows, RowsWriter, rowsFormatOf } from "../../lib/eval/rows.js";
import { temporaryDirectory } from "../support/fixtures.js";

function tempDir(t: ExecutionContext): string {
  const dir = temporaryDirectory();
  t.teardown(dir.cleanup);
  return dir.path;
}

function values(base: number): MetricValues {
  return Object.fromEntries(METRIC_NAMES.map((name, i) => [name, base + i / 7])) as MetricValues;
}

function row(sample: string, model: string, base: number): EvalRow {
  const groups = Object.fromEntries(METRIC_GROUPS.map((group, g) => {
    const pixels = g === 4 ? 0 : 100 + g;
    const nan = Object.fromEntries(METRIC_NAMES.map((name) => [name, NaN])) as MetricValues;
    return [group, { pixels, metric: pixels ? values(base + g) : nan, aligned: pixels ? values(base + g + 0.5) : nan }];
  }));
  const profile = {
    pixels: Array.from({ length: DEPTH_BINS }, (_, bin) => (bin % 4 === 0 ? 0 : 10 * bin)),
    mae_cm: Array.from({ length: DEPTH_BINS }, (_, bin) => (bin % 4 === 0 ? NaN : base + bin / 3)),
    abs_rel: Array.from({ length: DEPTH_BINS }, (_, bin) => (bin % 4 === 0 ? NaN : base / 10 + bin / 7)),
  };
  return { sample, model, alignment: "lsq", maxDepth: Infinity, minDepth: 0.001, scale: 0.9123456789, shift: -0.00123, nonFiniteGt: 3, nonFinitePred: 0, groups, profile };
}

function readAll(path: string): EvalRow[] {
  const rows: EvalRow[] = [];
  readRows(path, (r) => rows.push(r));
  return rows;
}

for (const extension of ["csv", "jsonl"]) {
  test(`${extension} rows read back exactly: full-precision numbers, NaN, Infinity, awkward sample names`, (t) => {
    const path = join(tempDir(t), `rows.${extension}`);
    const rows = [row('odd, "quoted" name.npz', "dav1", 0.1), row("plain.npz", "dav2", 1 / 3)];
    const writer = new RowsWriter(path);
    writer.append(rows.slice(0, 1));
    writer.append(rows.slice(1));
    writer.close();
    t.deepEqual(readAll(path), rows);
  });
}

test("CSV files start with the documented header: settings, pixels and metrics per group, then the depth profile", (t) => {
  const path = join(tempDir(t), "rows.csv");
  new RowsWriter(path).close();
  const header = readFileSync(path, "utf8");
  t.is(header, `${CSV_COLUMNS.join(",")}\n`);
  t.true(header.startsWith("sample,model,alignment,max_depth,min_depth,scale,shift,nonfinite_gt,nonfinite_pred,all.pixels,all.mae_cm,all.acc_2cm,"));
  t.true(header.includes(",tools.aligned.delta1,"));
  t.true(header.includes(",maryland_bipolar_grasper.aligned.delta3,depth.0cm.pixels,depth.0cm.mae_cm,depth.0cm.aligned.abs_rel,depth.1cm.pixels,"));
  t.true(header.trimEnd().endsWith(",depth.29cm.aligned.abs_rel"));
});

test("a torn last line is left out and validBytes marks where it starts; appending cuts it off", (t) => {
  const path = join(tempDir(t), "rows.csv");
  const writer = new RowsWriter(path);
  writer.append([row("a.npz", "m", 0.2)]);
  writer.close();
  const complete = statSync(path).size;
  appendFileSync(path, "b.npz,m,lsq,Infin");
  const state = readRows(path, () => undefined);
  t.deepEqual(state, { rows: 1, validBytes: complete, hasHeader: true });
  const resumed = new RowsWriter(path, state);
  resumed.append([row("b.npz", "m", 0.3)]);
  resumed.close();
  t.deepEqual(readAll(path).map((r) => r.sample), ["a.npz", "b.npz"]);
});

test("files endosynth did not write are refused naming the file and line", (t) => {
  const dir = tempDir(t);
  const csv = join(dir, "other.csv");
  writeFileSync(csv, "sample,model,score\na,b,1\n");
  const error = t.throws(() => readRows(csv, () => undefined), { instanceOf: FileFormatError });
  t.is(error.message, `${csv}: not a per-sample results file written by endosynth eval (line 1: the header differs from the columns this version writes)`);
  const jsonl = join(dir, "other.jsonl");
  writeFileSync(jsonl, '{"sample":"a.npz","model":"m","alignment":"median"}\n');
  t.throws(() => readRows(jsonl, () => undefined), { instanceOf: FileFormatError, message: /line 1: no "all" group/ });
  writeFileSync(jsonl, "notes without a newline");
  t.throws(() => readRows(jsonl, () => undefined), { instanceOf: FileFormatError, message: /its last line is neither a row nor the start of one/ });
});

test("the format comes from the extension", (t) => {
  t.is(rowsFormatOf("a/b.CSV"), "csv");
  t.is(rowsFormatOf("b.jsonl"), "jsonl");
  t.throws(() => rowsFormatOf("b.json"), { instanceOf: InputError, message: 'Expected a per-sample results file ending in .csv or .jsonl but received "b.json"' });
});
