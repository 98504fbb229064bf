import test, { type ExecutionContext } from "ava";
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { type EvalRow, readRows } from "../../lib/eval/rows.js";
import { readNpy } from "../../lib/io/npy.js";
import { readSample } from "../../lib/io/sample.js";
import { makeDataset, referenceMetrics, scaledPrediction, writeCorruptSample } from "../eval/helpers.js";
import { whileRunningUntil } from "../support/child_process.js";
import { fixture, repoRoot, temporaryDirectory } from "../support/fixtures.js";

const run = promisify(execFile);
const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
const driver = join(repoRoot, "test", "cli", "eval_driver.ts");
const main = join(repoRoot, "lib", "cli", "main.ts");

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function tempDir(t: ExecutionContext): string {
  const dir = temporaryDirectory();
  t.teardown(dir.cleanup);
  return dir.path;
}

/** `endosynth eval ...` with the stand-in models, in `cwd`. */
async function endosynthEval(args: string[], cwd: string, dataset: string): Promise<Result> {
  try {
    const { stdout, stderr } = await run(process.execPath, ["--import", tsx, driver, "eval", ...args], {
      cwd,
      env: { ...process.env, ENDOSYNTH_TEST_DATASET: dataset },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failure = error as { code: number; stdout: string; stderr: string };
    return { code: failure.code, stdout: failure.stdout, stderr: failure.stderr };
  }
}

/** The real `endosynth` command (lib/cli/main.ts and load()), in `cwd`. */
async function endosynth(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<Result> {
  try {
    const { stdout, stderr } = await run(process.execPath, ["--import", tsx, main, ...args], { cwd, env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failure = error as { code: number; stdout: string; stderr: string };
    return { code: failure.code, stdout: failure.stdout, stderr: failure.stderr };
  }
}

function rowCount(path: string): number {
  return readRows(path, () => undefined).rows;
}

test("prints the paper's tables with the models side by side and writes rows and Markdown", async (t) => {
  const dir = tempDir(t);
  const truths = makeDataset(join(dir, "EndoSynth"), 3);
  const result = await endosynthEval(["scaled", "shifted", "EndoSynth"], dir, join(dir, "EndoSynth"));
  t.is(result.code, 0, result.stderr);
  t.is(rowCount(join(dir, "endosynth-eval.csv")), 6);
  const lines = result.stdout.split("\n");
  t.true(lines.includes("Metric depth (raw predictions)"));
  t.regex(lines.find((line) => line.trim().startsWith("scaled"))!, /^\s+scaled\s+shifted$/);
  t.regex(lines.find((line) => line.startsWith("region"))!, /^region\s+MAE \(cm\) ↓\s+Acc@2cm ↑\s+MAE \(cm\) ↓\s+Acc@2cm ↑$/);
  // The scaled stand-in's MAE, computed here from the definition, averaged over the samples.
  let mae = 0;
  for (const { depth } of truths.values()) mae += referenceMetrics(depth, depth.map((g, i) => scaledPrediction(g, i))).maeCm / truths.size;
  t.regex(lines.find((line) => line.startsWith("all "))!, new RegExp(`^all\\s+${mae.toFixed(2)}\\s+[01]\\.\\d{3}\\s+1\\.50\\s+1\\.000$`));
  t.regex(result.stdout, /3 samples evaluated, 0 resumed\.\nrows: endosynth-eval\.csv\ntable: endosynth-eval\.md\n$/);
  const markdown = readFileSync(join(dir, "endosynth-eval.md"), "utf8");
  t.true(markdown.startsWith("# endosynth eval: scaled, shifted on EndoSynth\n"));
  t.true(markdown.includes("| region | scaled · MAE (cm) ↓ | scaled · Acc@2cm ↑ | shifted · MAE (cm) ↓ | shifted · Acc@2cm ↑ |"));
  t.true(markdown.includes("### All metrics, all pixels"));
});

test("Ctrl-C finishes the samples in progress, keeps the rows, prints the resume command and exits 130; resuming completes the run", async (t) => {
  const dir = tempDir(t);
  const dataset = join(dir, "data");
  makeDataset(dataset, 10);
  const output = join(dir, "rows.jsonl");
  const child = spawn(process.execPath, ["--import", tsx, driver, "eval", "scaled", "data", "-o", "rows.jsonl", "--alignment", "lsq"], {
    cwd: dir,
    env: { ...process.env, ENDOSYNTH_TEST_DATASET: dataset, ENDOSYNTH_TEST_LATENCY_MS: "150" },
  });
  let stderr = "";
  child.stderr.on("data", (chunk) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  await whileRunningUntil(child, () => existsSync(output) && rowCount(output) >= 2, () => stderr);
  child.kill("SIGINT");
  t.is(await exited, 130);
  const written = rowCount(output);
  t.true(written >= 2 && written < 10, `${written} rows`);
  t.regex(stderr, /interrupted: finishing the samples in progress/);
  t.regex(stderr, new RegExp(`Evaluation interrupted after ${written} of 10 samples; the rows so far are in rows\\.jsonl`));
  const resume = /resume with:\n {2}(.+)\n/.exec(stderr)![1];
  t.is(resume, "endosynth eval scaled data --output rows.jsonl --alignment lsq --resume");

  const args = resume.split(" ").slice(2);
  const resumed = await endosynthEval(args, dir, dataset);
  t.is(resumed.code, 0, resumed.stderr);
  t.regex(resumed.stderr, new RegExp(`resuming: ${written} of 10 samples already evaluated`));
  t.regex(resumed.stdout, new RegExp(`${10 - written} samples evaluated, ${written} resumed\\.`));
  const samples: string[] = [];
  readRows(output, (row) => samples.push(row.sample));
  t.deepEqual(samples, Array.from({ length: 10 }, (_, i) => `00000${i}.npz`));

  const fresh = await endosynthEval(["scaled", "data", "-o", "fresh.jsonl", "--alignment", "lsq"], dir, dataset);
  t.is(fresh.code, 0);
  const table = (text: string) => text.slice(0, text.indexOf("\n\n", text.indexOf("δ1")));
  t.is(table(resumed.stdout), table(fresh.stdout));
});

test("bad input gives one clear line and exit code 1: missing dataset, existing output, unknown model", async (t) => {
  const dir = tempDir(t);
  const dataset = join(dir, "data");
  makeDataset(dataset, 1);
  const missing = await endosynthEval(["scaled", "nowhere"], dir, dataset);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /endosynth: Dataset nowhere does not exist: expected a dataset folder/);
  writeFileSync(join(dir, "endosynth-eval.csv"), "");
  const existing = await endosynthEval(["scaled", "data"], dir, dataset);
  t.is(existing.code, 1);
  t.regex(existing.stderr, /endosynth: endosynth-eval\.csv already exists: resume it \(--resume\) .* or overwrite it \(--overwrite\)/);
  const unknown = await endosynthEval(["nope", "data", "--overwrite"], dir, dataset);
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /endosynth: Expected one of "scaled", "shifted" for model but received "nope"/);
  const alignment = await endosynthEval(["scaled", "data", "--alignment", "mean"], dir, dataset);
  t.is(alignment.code, 1);
  t.regex(alignment.stderr, /option '--alignment <method>' argument 'mean' is invalid\. Allowed choices are median, lsq, none/);
});

test("a corrupt sample is reported on stderr and skipped; the run succeeds", async (t) => {
  const dir = tempDir(t);
  const dataset = join(dir, "data");
  makeDataset(dataset, 2);
  writeCorruptSample(dataset, "000000b.npz");
  const result = await endosynthEval(["scaled", "data", "--limit", "2"], dir, dataset);
  t.is(result.code, 0, result.stderr);
  t.regex(result.stderr, /skipped 000000b\.npz: .*000000b\.npz/);
  t.regex(result.stdout, /2 samples evaluated, 0 resumed, 1 skipped \(see the messages above\)\./);
  t.is(rowCount(join(dir, "endosynth-eval.csv")), 1);
});

test("endosynth eval dav1 dav2 runs the real models (tiny checkpoints); rows match metrics computed from the saved predictions", async (t) => {
  const dir = tempDir(t);
  makeDataset(join(dir, "data"), 2);
  mkdirSync(join(dir, "checkpoints"));
  for (const name of ["dav1", "dav2"]) symlinkSync(fixture(name, "tiny.pth"), join(dir, "checkpoints", `${name}-f.pth`));
  const args = ["eval", "dav1", "dav2", "data", "--checkpoints", "checkpoints", "--backend", "onnxruntime", "--save-depth", "depth", "-o", "rows.jsonl"];
  const result = await endosynth(args, dir, { ENDOSYNTH_CACHE: join(dir, "cache") });
  t.is(result.code, 0, result.stderr);
  t.regex(result.stderr, /loading dav1\n/);
  t.regex(result.stdout.split("\n").find((line) => line.trim().startsWith("dav1"))!, /^\s+dav1\s+dav2$/);
  const rows: EvalRow[] = [];
  readRows(join(dir, "rows.jsonl"), (row) => rows.push(row));
  t.deepEqual(rows.map((row) => `${row.sample} ${row.model}`), ["000000.npz dav1", "000000.npz dav2", "000001.npz dav1", "000001.npz dav2"]);
  for (const row of rows) {
    const gt = readSample(join(dir, "data", "samples", row.sample)).depth.data as Float32Array;
    const pred = readNpy(join(dir, "depth", row.model, row.sample.replace(".npz", ".npy"))).data as Float32Array;
    const reference = referenceMetrics(gt, pred);
    t.true(Math.abs(row.groups.all.metric.mae_cm - reference.maeCm) < 1e-9 * reference.maeCm, `${row.sample} ${row.model} MAE`);
    t.is(row.groups.all.metric.acc_2cm, reference.acc);
    t.true(Math.abs(row.groups.all.aligned.abs_rel - reference.absRelAligned) < 1e-6, `${row.sample} ${row.model} AbsRel`);
  }
});

test("endosynth eval --help documents the command; an unknown or repeated model is refused before any model is loaded", async (t) => {
  const dir = tempDir(t);
  const help = await endosynth(["eval", "--help"], dir);
  t.is(help.code, 0);
  t.regex(help.stdout, /Usage: endosynth eval \[options\] <model\.\.\.>/);
  t.regex(help.stdout, /--resume/);
  makeDataset(join(dir, "data"), 1);
  const unknown = await endosynth(["eval", "dav1", "dav3", "data"], dir);
  t.is(unknown.code, 1);
  t.is(unknown.stderr, 'endosynth: Expected one of "dav1", "dav2", "endodac", "midas" for model but received "dav3"\n');
  const repeated = await endosynth(["eval", "dav1", "dav1", "data"], dir);
  t.is(repeated.code, 1);
  t.is(repeated.stderr, "endosynth: Model dav1 is listed twice: each model is evaluated once\n");
});

test("--shard i/n runs and eval merge give exactly the unsharded tables, rows and JSON aggregate", async (t) => {
  const dir = tempDir(t);
  const dataset = join(dir, "data");
  makeDataset(dataset, 7);
  const whole = await endosynthEval(["scaled", "shifted", "data", "-o", "all.csv", "--json", "-q"], dir, dataset);
  t.is(whole.code, 0, whole.stderr);
  for (const shard of ["1/3", "2/3", "3/3"]) {
    const part = await endosynthEval(["scaled", "shifted", "data", "--shard", shard, "-q"], dir, dataset);
    t.is(part.code, 0, part.stderr);
    t.regex(part.stdout, /merge the shards' rows with: endosynth eval merge/);
  }
  const parts = ["endosynth-eval.part-1-of-3.csv", "endosynth-eval.part-2-of-3.csv", "endosynth-eval.part-3-of-3.csv"];
  t.deepEqual(parts.map((part) => rowCount(join(dir, part))), [4, 4, 6]);
  // A shard writes no table unless asked: it would describe a slice.
  t.false(existsSync(join(dir, "endosynth-eval.part-1-of-3.md")));
  const merged = await endosynthEval(["merge", ...[...parts].reverse(), "-o", "merged.csv", "--markdown", "merged.md", "--json"], dir, dataset);
  t.is(merged.code, 0, merged.stderr);
  const wholeResult = JSON.parse(whole.stdout) as { aggregate: unknown };
  const mergedResult = JSON.parse(merged.stdout) as { aggregate: unknown; rowCount: number; samples: number; parts: number };
  t.like(mergedResult, { rowCount: 14, samples: 7, parts: 3 });
  t.deepEqual(mergedResult.aggregate, wholeResult.aggregate);
  const tables = (path: string) => readFileSync(join(dir, path), "utf8").split("\n").slice(1).join("\n");
  t.is(tables("merged.md"), tables("all.md"));
  const overlap = await endosynthEval(["merge", parts[0], parts[0], "-o", "again.csv"], dir, dataset);
  t.is(overlap.code, 1);
  t.regex(overlap.stderr, /endosynth: 000000\.npz evaluated by scaled is in both .*part-1-of-3\.csv and .*part-1-of-3\.csv: the shards overlap/);
  const badShard = await endosynthEval(["scaled", "data", "--shard", "4/3"], dir, dataset);
  t.is(badShard.code, 1);
  t.regex(badShard.stderr, /option '--shard <i\/n>' argument '4\/3' is invalid\. expected i\/n with 1 <= i <= n/);
});

test("--json prints one JSON result on stdout and logs on stderr; -q leaves stderr empty; off a terminal progress ends with a final line", async (t) => {
  const dir = tempDir(t);
  const dataset = join(dir, "data");
  makeDataset(dataset, 3);
  const json = await endosynthEval(["scaled", "data", "--json", "--jobs", "2"], dir, dataset);
  t.is(json.code, 0, json.stderr);
  const result = JSON.parse(json.stdout) as { rows: string; markdown: string; total: number; evaluated: number; skipped: unknown[]; aggregate: { models: { model: string; groups: { all: { metric: { mae_cm: number } } } }[] } };
  t.like(result, { rows: "endosynth-eval.csv", markdown: "endosynth-eval.md", total: 3, evaluated: 3, skipped: [] });
  t.is(result.aggregate.models[0].model, "scaled");
  t.true(result.aggregate.models[0].groups.all.metric.mae_cm > 0);
  t.regex(json.stderr, /^loading scaled$/m);
  t.regex(json.stderr, /^eval: 3\/3 samples in \d+s \(\d+\.\d\/s\)$/m);
  const quiet = await endosynthEval(["scaled", "data", "-q", "-o", "quiet.csv"], dir, dataset);
  t.is(quiet.code, 0);
  t.is(quiet.stderr, "");
  t.regex(quiet.stdout, /3 samples evaluated, 0 resumed\./);
});

test("an existing table or chart is not replaced without --overwrite; --resume may refresh them; --plots draws the charts", async (t) => {
  const dir = tempDir(t);
  const dataset = join(dir, "data");
  makeDataset(dataset, 2);
  writeFileSync(join(dir, "report.md"), "precious");
  const refused = await endosynthEval(["scaled", "data", "--markdown", "report.md"], dir, dataset);
  t.is(refused.code, 1);
  t.is(refused.stderr, "endosynth: report.md already exists: pass --overwrite to replace it\n");
  t.is(readFileSync(join(dir, "report.md"), "utf8"), "precious");
  t.false(existsSync(join(dir, "endosynth-eval.csv")));
  const replaced = await endosynthEval(["scaled", "data", "--markdown", "report.md", "--overwrite", "--plots", "charts", "-q"], dir, dataset);
  t.is(replaced.code, 0, replaced.stderr);
  t.regex(readFileSync(join(dir, "report.md"), "utf8"), /^# endosynth eval: scaled on data\n/);
  t.deepEqual(readdirSync(join(dir, "charts")).sort(), ["abs_rel.png", "abs_rel.svg", "acc_2cm.png", "acc_2cm.svg", "delta1.png", "delta1.svg", "error_vs_depth.png", "error_vs_depth.svg", "mae_cm.png", "mae_cm.svg"]);
  const charts = await endosynthEval(["scaled", "data", "-o", "other.csv", "--markdown", "other.md", "--plots", "charts"], dir, dataset);
  t.is(charts.code, 1);
  t.regex(charts.stderr, /^endosynth: charts\/mae_cm\.svg already exists: pass --overwrite to replace it\n$/);
  const resumed = await endosynthEval(["scaled", "data", "--markdown", "report.md", "--plots", "charts", "--resume", "-q"], dir, dataset);
  t.is(resumed.code, 0, resumed.stderr);
  t.regex(resumed.stdout, /0 samples evaluated, 2 resumed\./);
});
