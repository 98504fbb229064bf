import test, { type ExecutionContext } from "ava";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { InputError } from "../../lib/errors.js";
import { EvalAggregator } from "../../lib/eval/aggregate.js";
import { evaluateDataset } from "../../lib/eval/dataset.js";
import { mergeRows } from "../../lib/eval/merge.js";
import { readRows } from "../../lib/eval/rows.js";
import { temporaryDirectory } from "../support/fixtures.js";
import { LookupModel, makeDataset, scaledPrediction, shiftedPrediction, type Truths } from "./helpers.js";

function tempDir(t: ExecutionContext): string {
  const dir = temporaryDirectory();
  t.teardown(dir.cleanup);
  return dir.path;
}

function standIns(truths: Truths) {
  return [new LookupModel("scaled", truths, scaledPrediction), new LookupModel("shifted", truths, shiftedPrediction)];
}

async function shardedRun(t: ExecutionContext, count: number, extension = "csv") {
  const dir = tempDir(t);
  const truths = makeDataset(join(dir, "data"), 9);
  const unsharded = await evaluateDataset(standIns(truths), join(dir, "data"), { output: join(dir, "all.csv") });
  const parts: string[] = [];
  for (let index = 1; index <= count; index++) {
    const part = join(dir, `part-${index}.${index % 2 === 0 ? "jsonl" : extension}`);
    await evaluateDataset(standIns(truths), join(dir, "data"), { output: part, shard: { index, count } });
    parts.push(part);
  }
  return { dir, truths, unsharded, parts };
}

test("merging the shards' rows, in any order and format, gives exactly the unsharded aggregate and rows", async (t) => {
  const { dir, unsharded, parts } = await shardedRun(t, 4);
  const merged = await mergeRows([...parts].reverse(), join(dir, "merged.csv"));
  t.like(merged, { parts: 4, rows: 18, samples: 9, models: ["scaled", "shifted"] });
  t.deepEqual(merged.aggregates, unsharded.aggregates);
  // The merged file holds the unsharded run's rows, and aggregates to the same numbers read back.
  const again = new EvalAggregator();
  const lines: string[] = [];
  readRows(join(dir, "merged.csv"), (row) => {
    again.add(row);
    lines.push(JSON.stringify(row));
  });
  const expected: string[] = [];
  readRows(join(dir, "all.csv"), (row) => expected.push(JSON.stringify(row)));
  t.deepEqual(lines.sort(), expected.sort());
  t.deepEqual(again.result("pixel"), unsharded.aggregates.pixel);
  t.deepEqual(readdirSync(dir).filter((name) => name.endsWith(".tmp")), []);
});

test("overlapping shards, mixed settings, a missing part and an existing output are refused before anything is written", async (t) => {
  const { dir, truths, parts } = await shardedRun(t, 2);
  const output = join(dir, "merged.jsonl");
  await t.throwsAsync(() => mergeRows([parts[0], parts[1], parts[0]], output), {
    instanceOf: InputError,
    message: `000000.npz evaluated by scaled is in both ${parts[0]} and ${parts[0]}: the shards overlap`,
  });
  const lsq = join(dir, "lsq.csv");
  await evaluateDataset(standIns(truths), join(dir, "data"), { output: lsq, alignment: "lsq", limit: 1 });
  await t.throwsAsync(() => mergeRows([parts[1], lsq], output), {
    instanceOf: InputError,
    message: `${lsq} was evaluated with alignment lsq, max depth Infinity, min depth 0.001 but ${parts[1]} with alignment median, max depth Infinity, min depth 0.001: parts of one evaluation share their settings`,
  });
  await t.throwsAsync(() => mergeRows([join(dir, "nowhere.csv")], output), { instanceOf: InputError, message: `Part ${join(dir, "nowhere.csv")} does not exist` });
  await t.throwsAsync(() => mergeRows(parts, parts[0]), { instanceOf: InputError, message: /is also one of the parts/ });
  t.false(readdirSync(dir).includes("merged.jsonl"));
  writeFileSync(output, "precious");
  await t.throwsAsync(() => mergeRows(parts, output), { instanceOf: InputError, message: `${output} already exists: pass --overwrite to replace it` });
  t.is(readFileSync(output, "utf8"), "precious");
  const replaced = await mergeRows(parts, output, { overwrite: true });
  t.is(replaced.rows, 18);
  await t.throwsAsync(() => mergeRows([], output), { instanceOf: InputError, message: /Expected a non-empty array of results files for parts/ });
});
