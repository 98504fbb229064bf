/**
 * Benchmark entry point:
 *
 *   npm run bench -- <suite> [--json] [--runs N] [--warmup N]
 *   npm run bench -- infer --backend tensorrt [--json]    (on a machine with a GPU and TensorRT)
 *
 * Suites register in SUITES below; an unknown or missing suite lists the known ones.
 */
import { parseArgs } from "node:util";
import { type BenchRow, formatTable, measure, type Suite } from "./harness.js";
import { checkpointSuite } from "./checkpoint.js";
import { convertSuite } from "./convert.js";
import { evalSuite, metricsSuite } from "./eval.js";
import { inferSuite } from "./infer.js";
import { runTensorRTInferBench } from "./infer_tensorrt.js";
import { ioSuite } from "./io.js";
import { loadSuite } from "./load.js";
import { runServeBench, SERVE_BENCH_DESCRIPTION } from "./serve.js";
import { streamSuite } from "./stream.js";

const SUITES: Readonly<Record<string, Suite>> = {
  io: ioSuite,
  checkpoint: checkpointSuite,
  metrics: metricsSuite,
  eval: evalSuite,
  stream: streamSuite,
  convert: convertSuite,
  infer: inferSuite,
  load: loadSuite,
};

/** Suites that drive concurrent clients and print their own report (throughput, percentiles, memory). */
const REPORTS: Readonly<Record<string, { description: string; run: (options: { json: boolean }) => Promise<number> }>> = {
  serve: { description: SERVE_BENCH_DESCRIPTION, run: runServeBench },
};

function listSuites(): string {
  return [...Object.entries(SUITES), ...Object.entries(REPORTS)]
    .map(([name, suite]) => `  ${name.padEnd(12)} ${suite.description}`)
    .join("\n");
}

function positiveInteger(name: string, value: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 0) throw new Error(`--${name} expects a non-negative integer, got ${value}`);
  return number;
}

const USAGE = "Usage: npm run bench -- <suite> [--json] [--runs N] [--warmup N] [--backend onnxruntime|tensorrt]";

function parseCommandLine(): ReturnType<typeof parseArgs<{ allowPositionals: true; options: typeof OPTIONS }>> | undefined {
  try {
    return parseArgs({ allowPositionals: true, options: OPTIONS });
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    return undefined;
  }
}

const OPTIONS = {
  json: { type: "boolean", default: false },
  runs: { type: "string", default: "15" },
  warmup: { type: "string", default: "3" },
  backend: { type: "string", default: "onnxruntime" },
  help: { type: "boolean", short: "h", default: false },
} as const;

async function main(): Promise<number> {
  const parsed = parseCommandLine();
  if (!parsed) return 1;
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(`${USAGE}\nSuites:\n${listSuites()}`);
    return 0;
  }
  if (values.backend !== "onnxruntime" && values.backend !== "tensorrt") {
    console.error(`--backend expects onnxruntime or tensorrt, got ${values.backend}`);
    return 1;
  }
  if (values.backend === "tensorrt") {
    if (positionals[0] !== "infer") {
      console.error("--backend tensorrt applies to the infer suite only: npm run bench -- infer --backend tensorrt");
      return 1;
    }
    return runTensorRTInferBench({ json: values.json });
  }
  const name = positionals[0];
  const report = name === undefined ? undefined : REPORTS[name];
  if (report !== undefined) return report.run({ json: values.json });
  const suite = name === undefined ? undefined : SUITES[name];
  if (suite === undefined) {
    console.error(`${name === undefined ? "No suite given" : `Unknown suite "${name}"`}. Known suites:\n${listSuites()}`);
    console.error(USAGE);
    return 1;
  }
  const options = { runs: Math.max(1, positiveInteger("runs", values.runs as string)), warmup: positiveInteger("warmup", values.warmup as string) };
  const rows: BenchRow[] = [];
  try {
    for (const bench of await suite.setup()) rows.push(await measure(name as string, bench, options));
  } finally {
    suite.cleanup?.();
  }
  if (values.json) {
    console.log(JSON.stringify(rows, null, 2));
  } else {
    console.log(`${name}: ${suite.description}; ${options.runs} runs after ${options.warmup} warm-up, Node ${process.versions.node}`);
    console.log(formatTable(rows));
  }
  return rows.some((row) => row.compare?.met === false) ? 2 : 0;
}

process.exitCode = await main();
