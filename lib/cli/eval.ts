/**
 * `endosynth eval <model...> <dataset>`: the EndoSynth paper's metric and relative tables (and the
 * full standard set, per class) for one or more models on a folder of EndoSynth-format samples.
 *
 * Rows go to `--output` (CSV or JSONL) one sample at a time; the aggregate table is printed and
 * written as Markdown beside it. Ctrl-C finishes the sample in progress, keeps every row written,
 * prints the command that resumes the run and exits with code 130 (a second Ctrl-C quits at once).
 * @module
 */
import { extname, join } from "node:path";
import { MultiBar, type SingleBar } from "cli-progress";
import { type Command, Option } from "commander";
import type { ProgressCallback } from "../progress.js";
import { AbortError, InputError } from "../errors.js";
import { assertDistinctModels, checkEvaluation, type EvalEvent, evaluateDataset, type EvaluateDatasetOptions } from "../eval/dataset.js";
import { ALIGNMENTS, type Alignment } from "../eval/metrics.js";
import { formatAggregate } from "../eval/report.js";
import { writeFileAtomicSync } from "../io/atomic.js";
import { assertOneOf } from "../is.js";
import { type BackendChoice, load } from "../model.js";
import { MODEL_NAMES, modelSpec, type ModelName } from "../models/registry.js";
import type { DepthModel } from "../stream.js";
import { parsePositiveInteger, parsePositiveMetres } from "./arguments.js";
import { abortOnInterrupt, interrupted } from "./interrupt.js";

/** Options the command passes when loading each model. */
export interface EvalLoadOptions {
  backend?: BackendChoice;
  checkpoint?: string;
  onProgress?: ProgressCallback;
}

/** How the command gets its models: {@link load} by default, stand-ins in tests. */
export type LoadModel = (name: string, options: EvalLoadOptions) => Promise<DepthModel & { dispose(): Promise<void> }>;

const loadModel: LoadModel = (name, options) => load(name as ModelName, options);

interface EvalCommandOptions {
  output: string;
  markdown?: string;
  limit?: number;
  resume?: boolean;
  overwrite?: boolean;
  saveDepth?: string;
  alignment: Alignment;
  maxDepth?: number;
  minDepth?: number;
  weighting: "sample" | "pixel";
  backend: BackendChoice;
  checkpoints?: string;
}

const DEFAULT_OUTPUT = "endosynth-eval.csv";

/** The Markdown table's default path: the rows file with `.md` for its extension. */
export function defaultMarkdownPath(output: string): string {
  const extension = extname(output);
  return `${extension ? output.slice(0, -extension.length) : output}.md`;
}

/** Quotes an argument for a POSIX shell when it needs it. */
function shellQuote(arg: string): string {
  return /^[\w./:=@%+-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`;
}

/** The command line that continues this run. */
export function resumeCommand(models: readonly string[], dataset: string, options: EvalCommandOptions): string {
  const args = ["endosynth", "eval", ...models, dataset, "--output", options.output];
  if (options.markdown !== undefined) args.push("--markdown", options.markdown);
  if (options.limit !== undefined) args.push("--limit", String(options.limit));
  if (options.saveDepth !== undefined) args.push("--save-depth", options.saveDepth);
  if (options.alignment !== "median") args.push("--alignment", options.alignment);
  if (options.maxDepth !== undefined) args.push("--max-depth", String(options.maxDepth));
  if (options.minDepth !== undefined) args.push("--min-depth", String(options.minDepth));
  if (options.weighting !== "sample") args.push("--weighting", options.weighting);
  if (options.backend !== "auto") args.push("--backend", options.backend);
  if (options.checkpoints !== undefined) args.push("--checkpoints", options.checkpoints);
  args.push("--resume");
  return args.map(shellQuote).join(" ");
}

/** Progress bar on a terminal, plain lines elsewhere; messages never break the bar. */
class ProgressView {
  private readonly tty = Boolean(process.stderr.isTTY);
  private readonly bars = new MultiBar({
    format: "eval [{bar}] {value}/{total} samples | {rate} samples/s | ETA {eta_formatted} | {sample}",
    barsize: 30,
    hideCursor: true,
    noTTYOutput: true,
    notTTYSchedule: 10_000,
    etaBuffer: 50,
    stream: process.stderr,
  });
  private bar: SingleBar | undefined;
  private started = 0;
  private startValue = 0;

  message(text: string): void {
    if (this.tty && this.bar) this.bars.log(`${text}\n`);
    else process.stderr.write(`${text}\n`);
  }

  onEvent(event: EvalEvent): void {
    switch (event.type) {
      case "start":
        if (event.alreadyDone > 0) this.message(`resuming: ${event.alreadyDone} of ${event.total} samples already evaluated`);
        this.started = performance.now();
        this.startValue = event.alreadyDone;
        this.bar = this.bars.create(event.total, event.alreadyDone, { rate: "-", sample: "" });
        break;
      case "sample": {
        const seconds = (performance.now() - this.started) / 1000;
        const rate = seconds > 0 ? ((event.done - this.startValue) / seconds).toFixed(2) : "-";
        this.bar?.update(event.done, { rate, sample: event.sample });
        break;
      }
      case "skipped":
        this.message(`skipped ${event.sample}${event.model ? ` for ${event.model}` : ""}: ${event.error.message}`);
        break;
      case "warning":
        this.message(`warning: ${event.message}`);
        break;
    }
  }

  stop(): void {
    this.bars.stop();
  }
}

async function runEval(args: string[], options: EvalCommandOptions, load: LoadModel, knownModels: readonly string[]): Promise<void> {
  if (args.length < 2) throw new InputError(`Expected at least one model and then a dataset (endosynth eval <model...> <dataset>) but received ${args.join(" ")}`);
  const dataset = args[args.length - 1];
  const names = args.slice(0, -1);
  for (const name of names) assertOneOf("model", name, knownModels);
  assertDistinctModels(names);
  const markdownPath = options.markdown ?? defaultMarkdownPath(options.output);

  const evaluation: EvaluateDatasetOptions = {
    output: options.output,
    resume: options.resume ?? false,
    overwrite: options.overwrite ?? false,
    alignment: options.alignment,
    ...(options.limit === undefined ? {} : { limit: options.limit }),
    ...(options.maxDepth === undefined ? {} : { maxDepth: options.maxDepth }),
    ...(options.minDepth === undefined ? {} : { minDepth: options.minDepth }),
    ...(options.saveDepth === undefined ? {} : { saveDepth: options.saveDepth }),
  };
  // Fail on a wrong model name, dataset or output now, not after minutes of model conversion.
  checkEvaluation(dataset, evaluation);
  const models: Awaited<ReturnType<LoadModel>>[] = [];
  const view = new ProgressView();
  const controller = new AbortController();
  const stopListening = abortOnInterrupt(
    controller,
    "\ninterrupted: finishing the sample in progress (Ctrl-C again to quit at once; rows written so far are kept)",
    (text) => view.message(text),
  );
  try {
    for (const name of names) {
      process.stderr.write(`loading ${name}\n`);
      const checkpoint = options.checkpoints === undefined ? {} : { checkpoint: join(options.checkpoints, modelSpec(name as ModelName).checkpointFile) };
      let phase = "";
      const onProgress: ProgressCallback = (progress) => {
        if (progress.phase !== phase) process.stderr.write(`  ${(phase = progress.phase)}\n`);
      };
      const model = await load(name, { backend: options.backend, ...checkpoint, onProgress });
      models.push(model);
      if (controller.signal.aborted) throw new AbortError("Interrupted while loading the models");
    }
    const summary = await evaluateDataset(models, dataset, { ...evaluation, onProgress: (event) => view.onEvent(event), signal: controller.signal });
    view.stop();
    const aggregate = summary.aggregates[options.weighting];
    writeFileAtomicSync(markdownPath, Buffer.from(`# endosynth eval: ${names.join(", ")} on ${dataset}\n\n${formatAggregate(aggregate, { format: "markdown", full: true })}`));
    process.stdout.write(formatAggregate(aggregate));
    const skipped = summary.skipped.length ? `, ${summary.skipped.length} skipped (see the messages above)` : "";
    process.stdout.write(
      `\n${summary.evaluated} samples evaluated, ${summary.resumed} resumed${skipped}.\nrows: ${summary.output}\ntable: ${markdownPath}\n`,
    );
  } catch (error) {
    view.stop();
    if (!(error instanceof AbortError)) throw error;
    process.stderr.write(`${error.message}\nresume with:\n  ${resumeCommand(names, dataset, options)}\n`);
    throw interrupted(error.message);
  } finally {
    stopListening();
    await Promise.all(models.map((model) => model.dispose()));
  }
}

/**
 * Adds the `eval` command; `load` is the model loader and `knownModels` the names it loads
 * (stand-ins in tests).
 */
export function registerEvalCommand(program: Command, load: LoadModel = loadModel, knownModels: readonly string[] = MODEL_NAMES): void {
  program
    .command("eval")
    .usage("[options] <model...> <dataset>")
    .description("evaluate models on EndoSynth-format samples: the paper's metric and relative tables, per class")
    .argument("<model...>", "models to evaluate (dav1, dav2, endodac, midas), then the dataset: a folder with samples/*.npz, or a list file of .npz paths")
    .option("-o, --output <file>", "per-sample rows, .csv or .jsonl, appended one sample at a time", DEFAULT_OUTPUT)
    .option("--markdown <file>", "where to write the aggregate table (default: the output with .md)")
    .option("--limit <n>", "evaluate only the first n samples", parsePositiveInteger)
    .option("--resume", "continue the output file of an interrupted run, skipping the samples it holds")
    .option("--overwrite", "replace an existing output file")
    .option("--save-depth <dir>", "keep each prediction as <dir>/<model>/<sample>.npy (float32 metres)")
    .addOption(new Option("--alignment <method>", "alignment before the relative metrics").choices(ALIGNMENTS).default("median"))
    .option("--max-depth <metres>", "ground truth beyond this is not valid", parsePositiveMetres)
    .option("--min-depth <metres>", "predictions are clamped below at this (default 0.001)", parsePositiveMetres)
    .addOption(new Option("--weighting <how>", "aggregate: mean of per-sample metrics, or pooled pixels").choices(["sample", "pixel"]).default("sample"))
    .addOption(new Option("--backend <name>", "inference runtime").choices(["auto", "onnxruntime", "tensorrt"]).default("auto"))
    .option("--checkpoints <dir>", "folder of <model>-f.pth checkpoints (default $ENDOSYNTH_CHECKPOINTS or ./checkpoints)")
    .action((args: string[], options: EvalCommandOptions) => runEval(args, options, load, knownModels));
}
