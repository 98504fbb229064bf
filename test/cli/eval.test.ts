import test, { type ExecutionContext } from "ava";
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { type EvalRow, readRows } from "../../lib/eval/rows.js";
import { readNpy } from "../../lib/io/npy.js";
import { readSample } from "../../lib/io/sample.js";
import { LookupModel, makeDataset, referenceMetrics, scaledPrediction, writeCorruptSample } from "../eval/helpers.js";
import { whileRunningUntil } from "../helpers/child_process.js";
import { fixture, repoRoot, temporaryDirectory } from "../helpers/fixtures.js";

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
  t.regex(lines.find((line) => line.startsWith("metric"))!, /^metric\s+region\s+scaled\s+shifted$/);
  // The scaled stand-in's MAE, computed here from the definition, averaged over the samples.
  const model = new LookupModel("scaled", truths, scaledPrediction);
  let mae = 0;
  for (const { depth } of truths.values()) mae += referenceMetrics(depth, depth.map((g, i) => scaledPrediction(g, i))).maeCm / truths.size;
  t.is(model.name, "scaled");
  t.regex(lines.find((line) => line.startsWith("MAE (cm)"))!, new RegExp(`^MAE \\(cm\\) ↓\\s+all\\s+${mae.toFixed(2)}\\s+1\\.50$`));
  t.regex(result.stdout, /3 samples evaluated, 0 resumed\.\nrows: endosynth-eval\.csv\ntable: endosynth-eval\.md\n$/);
  const markdown = readFileSync(join(dir, "endosynth-eval.md"), "utf8");
  t.true(markdown.startsWith("# endosynth eval: scaled, shifted on EndoSynth\n"));
  t.true(markdown.includes("| metric | region | scaled | shifted |"));
  t.true(markdown.includes("### All metrics, all pixels"));
});

test("Ctrl-C finishes the sample in progress, keeps the rows, prints the resume command and exits 130; resuming completes the run", async (t) => {
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
  t.regex(stderr, /interrupted: finishing the sample in progress/);
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
  t.regex(result.stdout.split("\n").find((line) => line.startsWith("metric"))!, /^metric\s+region\s+dav1\s+dav2$/);
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
