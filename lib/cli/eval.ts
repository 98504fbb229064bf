/**
 * `endosynth eval <model...> <dataset>`: the EndoSynth paper's metric and relative tables (and the
 * full standard set, per class) for one or more models on a folder of EndoSynth-format samples.
 * `endosynth eval merge <part...>` joins the results of sharded runs (`--shard i/n`) into the
 * tables of one unsharded run.
 *
 * Rows go to `--output` (CSV or JSONL) one sample at a time; the aggregate table is printed and
 * written as Markdown beside it, and `--plots` draws the charts. Ctrl-C finishes the samples in
 * progress, keeps every row written, prints the command that resumes the run and exits with code
 * 130 (a second Ctrl-C quits at once). Output conventions: see output.ts.
 * @module
 */
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { extname, join } from "node:path";
import { type Command, Option } from "commander";
import { AbortError, InputError } from "../errors.js";
import type { EvalAggregate, Weighting } from "../eval/aggregate.js";
import { assertDistinctModels, checkEvaluation, type EvalEvent, evaluateDataset, type EvaluateDatasetOptions, type Shard } from "../eval/dataset.js";
import { mergeRows } from "../eval/merge.js";
import { ALIGNMENTS, type Alignment } from "../eval/metrics.js";
import { plotFileNames, writeEvalPlots } from "../eval/plots.js";
import { formatAggregate } from "../eval/report.js";
import { writeFileAtomicSync } from "../io/atomic.js";
import { assertOneOf } from "../is.js";
import { type BackendChoice, load } from "../model.js";
import { MODEL_NAMES, modelSpec, type ModelName } from "../models/registry.js";
import type { ProgressCallback } from "../progress.js";
import type { DepthModel } from "../stream.js";
import { parsePositiveInteger, parsePositiveMetres, parseShard } from "./arguments.js";
import { abortOnInterrupt, interrupted } from "./interrupt.js";
import { addOutputOptions, CommandOutput, type OutputOptions, refuseToOverwrite } from "./output.js";
import { CountProgress } from "./progress.js";

/** Options the command passes when loading each model. */
export interface EvalLoadOptions {
  backend?: BackendChoice;
  checkpoint?: string;
  onProgress?: ProgressCallback;
}

/** How the command gets its models: {@link load} by default, stand-ins in tests. */
export type LoadModel = (name: string, options: EvalLoadOptions) => Promise<DepthModel & { dispose(): Promise<void> }>;

const loadModel: LoadModel = (name, options) => load(name as ModelName, options);

interface ReportOptions extends OutputOptions {
  output?: string;
  markdown?: string;
  plots?: string;
  weighting: Weighting;
}

interface EvalCommandOptions extends ReportOptions {
  limit?: number;
  shard?: Shard;
  jobs?: number;
  resume?: boolean;
  saveDepth?: string;
  alignment: Alignment;
  maxDepth?: number;
  minDepth?: number;
  backend: BackendChoice;
  checkpoints?: string;
}

const DEFAULT_OUTPUT = "endosynth-eval.csv";

/** The rows file by default: one per shard, so that shards can share a folder. */
function defaultOutput(shard: Shard | undefined): string {
  return shard ? `endosynth-eval.part-${shard.index}-of-${shard.count}.csv` : DEFAULT_OUTPUT;
}

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
export function resumeCommand(models: readonly string[], dataset: string, options: EvalCommandOptions & { output: string }): string {
  const args = ["endosynth", "eval", ...models, dataset, "--output", options.output];
  if (options.markdown !== undefined) args.push("--markdown", options.markdown);
  if (options.plots !== undefined) args.push("--plots", options.plots);
  if (options.limit !== undefined) args.push("--limit", String(options.limit));
  if (options.shard !== undefined) args.push("--shard", `${options.shard.index}/${options.shard.count}`);
  if (options.jobs !== undefined) args.push("--jobs", String(options.jobs));
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

/** The report files a run would write: the Markdown table and, with --plots, the charts. */
function reportFiles(markdown: string | undefined, plots: string | undefined): string[] {
  return [...(markdown === undefined ? [] : [markdown]), ...(plots === undefined ? [] : plotFileNames().map((name) => join(plots, name)))];
}

/** Writes the Markdown table and the charts; returns the chart paths. */
async function writeReports(aggregate: EvalAggregate, title: string, markdown: string | undefined, plots: string | undefined): Promise<string[]> {
  if (markdown !== undefined) writeFileAtomicSync(markdown, Buffer.from(`# ${title}\n\n${formatAggregate(aggregate, { format: "markdown", full: true })}`));
  if (plots === undefined) return [];
  mkdirSync(plots, { recursive: true });
  return writeEvalPlots(aggregate, plots);
}

/** Progress and messages of a run: warnings always print, the rest unless quiet. */
class EvalView {
  readonly #out: CommandOutput;
  #progress: CountProgress | undefined;

  constructor(out: CommandOutput) {
    this.#out = out;
  }

  /** A message that must be seen even with --quiet, printed without breaking the bar. */
  warn(text: string): void {
    if (this.#progress && !this.#out.quiet) this.#progress.log(text);
    else this.#out.warn(text);
  }

  onEvent(event: EvalEvent): void {
    switch (event.type) {
      case "start":
        if (event.alreadyDone > 0) this.#out.info(`resuming: ${event.alreadyDone} of ${event.total} samples already evaluated`);
        this.#progress = new CountProgress("eval", event.total, { quiet: this.#out.quiet, initial: event.alreadyDone, unit: "samples" });
        break;
      case "sample":
        this.#progress?.update(event.done, event.sample);
        break;
      case "skipped":
        this.warn(`skipped ${event.sample}${event.model ? ` for ${event.model}` : ""}: ${event.error.message}`);
        break;
      case "warning":
        this.warn(`warning: ${event.message}`);
        break;
    }
  }

  /** Ends the progress with its final line. */
  finish(): void {
    this.#progress?.finish();
    this.#progress = undefined;
  }
}

/** Refuses to start when a report file exists, or saved depth from another run would be replaced. */
function checkReportFiles(options: EvalCommandOptions, markdown: string | undefined): void {
  // Resuming continues the run those files describe: it may refresh them.
  if (options.resume) return;
  refuseToOverwrite(reportFiles(markdown, options.plots), options.overwrite);
  const depth = options.saveDepth;
  if (!options.overwrite && depth !== undefined && existsSync(depth) && readdirSync(depth).length > 0) {
    throw new InputError(`${depth} already holds files: pass --overwrite to replace saved depth, or --resume to continue the run that wrote them`, { file: depth });
  }
}

async function loadModels(names: readonly string[], options: EvalCommandOptions, load: LoadModel, out: CommandOutput, signal: AbortSignal, models: Awaited<ReturnType<LoadModel>>[]): Promise<void> {
  for (const name of names) {
    out.info(`loading ${name}`);
    const checkpoint = options.checkpoints === undefined ? {} : { checkpoint: join(options.checkpoints, modelSpec(name as ModelName).checkpointFile) };
    let phase = "";
    const onProgress: ProgressCallback = (progress) => {
      if (progress.phase !== phase) out.info(`  ${(phase = progress.phase)}`);
    };
    models.push(await load(name, { backend: options.backend, ...checkpoint, onProgress }));
    if (signal.aborted) throw new AbortError("Interrupted while loading the models");
  }
}

async function runEval(args: string[], options: EvalCommandOptions, load: LoadModel, knownModels: readonly string[]): Promise<void> {
  if (args.length < 2) throw new InputError(`Expected at least one model and then a dataset (endosynth eval <model...> <dataset>) but received ${args.join(" ")}`);
  const dataset = args[args.length - 1];
  const names = args.slice(0, -1);
  for (const name of names) assertOneOf("model", name, knownModels);
  assertDistinctModels(names);
  const output = options.output ?? defaultOutput(options.shard);
  // A shard's table is a slice of the whole: written only when asked for.
  const markdown = options.markdown ?? (options.shard ? undefined : defaultMarkdownPath(output));
  const out = new CommandOutput(options);

  const evaluation: EvaluateDatasetOptions = {
    output,
    resume: options.resume ?? false,
    overwrite: options.overwrite ?? false,
    alignment: options.alignment,
    ...(options.limit === undefined ? {} : { limit: options.limit }),
    ...(options.shard === undefined ? {} : { shard: options.shard }),
    ...(options.jobs === undefined ? {} : { jobs: options.jobs }),
    ...(options.maxDepth === undefined ? {} : { maxDepth: options.maxDepth }),
    ...(options.minDepth === undefined ? {} : { minDepth: options.minDepth }),
    ...(options.saveDepth === undefined ? {} : { saveDepth: options.saveDepth }),
  };
  // Fail on a wrong model name, dataset or output now, not after minutes of model conversion.
  checkEvaluation(dataset, evaluation);
  checkReportFiles(options, markdown);
  const models: Awaited<ReturnType<LoadModel>>[] = [];
  const view = new EvalView(out);
  const controller = new AbortController();
  const stopListening = abortOnInterrupt(
    controller,
    "\ninterrupted: finishing the samples in progress (Ctrl-C again to quit at once; rows written so far are kept)",
    (text) => view.warn(text),
  );
  try {
    await loadModels(names, options, load, out, controller.signal, models);
    const summary = await evaluateDataset(models, dataset, { ...evaluation, onProgress: (event) => view.onEvent(event), signal: controller.signal });
    view.finish();
    const aggregate = summary.aggregates[options.weighting];
    const shard = options.shard ? ` (shard ${options.shard.index}/${options.shard.count})` : "";
    const plots = await writeReports(aggregate, `endosynth eval: ${names.join(", ")} on ${dataset}${shard}`, markdown, options.plots);
    const skipped = summary.skipped.length ? `, ${summary.skipped.length} skipped (see the messages above)` : "";
    const lines = [
      `${summary.evaluated} samples evaluated, ${summary.resumed} resumed${skipped}.`,
      `rows: ${summary.output}`,
      ...(markdown === undefined ? [] : [`table: ${markdown}`]),
      ...(options.plots === undefined ? [] : [`plots: ${options.plots}`]),
      ...(options.shard ? [`merge the shards' rows with: endosynth eval merge <part files> -o <file>`] : []),
    ];
    out.result(`${formatAggregate(aggregate)}\n${lines.join("\n")}\n`, {
      rows: summary.output,
      markdown: markdown ?? null,
      plots,
      shard: options.shard ?? null,
      total: summary.total,
      evaluated: summary.evaluated,
      resumed: summary.resumed,
      skipped: summary.skipped.map(({ sample, model, error }) => ({ sample, model: model ?? null, error: error.message })),
      aggregate,
    });
  } catch (error) {
    view.finish();
    if (!(error instanceof AbortError)) throw error;
    out.warn(`${error.message}\nresume with:\n  ${resumeCommand(names, dataset, { ...options, output })}`);
    throw interrupted(error.message);
  } finally {
    stopListening();
    await Promise.all(models.map((model) => model.dispose()));
  }
}

interface MergeCommandOptions extends ReportOptions {
  output: string;
}

async function runMerge(parts: string[], options: MergeCommandOptions): Promise<void> {
  const markdown = options.markdown ?? defaultMarkdownPath(options.output);
  // The rows file is checked by mergeRows itself, with the same message.
  refuseToOverwrite(reportFiles(markdown, options.plots), options.overwrite);
  const out = new CommandOutput(options);
  out.info(`merging ${parts.length} part files`);
  const summary = await mergeRows(parts, options.output, { overwrite: options.overwrite ?? false });
  const aggregate = summary.aggregates[options.weighting];
  const plots = await writeReports(aggregate, `endosynth eval: ${summary.models.join(", ")} (${parts.length} parts merged)`, markdown, options.plots);
  const lines = [
    `${summary.rows} rows of ${summary.samples} samples from ${summary.parts} parts.`,
    `rows: ${summary.output}`,
    `table: ${markdown}`,
    ...(options.plots === undefined ? [] : [`plots: ${options.plots}`]),
  ];
  out.result(`${formatAggregate(aggregate)}\n${lines.join("\n")}\n`, {
    rows: summary.output,
    markdown,
    plots,
    parts: summary.parts,
    samples: summary.samples,
    rowCount: summary.rows,
    aggregate,
  });
}

function weightingOption(): Option {
  return new Option("--weighting <how>", "aggregate: mean of per-sample metrics, or pooled pixels").choices(["sample", "pixel"]).default("sample");
}

/**
 * Adds the `eval` command (and `eval merge`); `load` is the model loader and `knownModels` the
 * names it loads (stand-ins in tests).
 */
export function registerEvalCommand(program: Command, load: LoadModel = loadModel, knownModels: readonly string[] = MODEL_NAMES): void {
  const command = program
    .command("eval")
    .usage("[options] <model...> <dataset>\n       endosynth eval merge [options] <part...>")
    .description("evaluate models on EndoSynth-format samples: the paper's metric and relative tables, per class")
    .argument("<model...>", "models to evaluate (dav1, dav2, endodac, midas), then the dataset: a folder with samples/*.npz, or a list file of .npz paths")
    .option("-o, --output <file>", `per-sample rows, .csv or .jsonl, appended one sample at a time (default: ${DEFAULT_OUTPUT}, or endosynth-eval.part-<i>-of-<n>.csv with --shard)`)
    .option("--markdown <file>", "where to write the aggregate table (default: the output with .md; none for a shard)")
    .option("--plots <dir>", "draw per-region bar charts and error-versus-depth curves there, as SVG and PNG")
    .option("--limit <n>", "evaluate only the first n samples", parsePositiveInteger)
    .option("--shard <i/n>", "evaluate the i-th of n contiguous slices of the sorted samples (1 <= i <= n), for cluster job arrays", parseShard)
    .option("-j, --jobs <n>", "worker threads reading samples and computing metrics (default: the cores less one, 1 to 8)", parsePositiveInteger)
    .option("--resume", "continue the output file of an interrupted run, skipping the samples it holds")
    .option("--save-depth <dir>", "keep each prediction as <dir>/<model>/<sample>.npy (float32 metres)")
    .addOption(new Option("--alignment <method>", "alignment before the relative metrics").choices(ALIGNMENTS).default("median"))
    .option("--max-depth <metres>", "ground truth beyond this is not valid", parsePositiveMetres)
    .option("--min-depth <metres>", "predictions are clamped below at this (default 0.001)", parsePositiveMetres)
    .addOption(weightingOption())
    .addOption(new Option("--backend <name>", "inference runtime").choices(["auto", "onnxruntime", "tensorrt"]).default("auto"))
    .option("--checkpoints <dir>", "folder of <model>-f.pth checkpoints (default $ENDOSYNTH_CHECKPOINTS or ./checkpoints)");
  addOutputOptions(command, { json: true, overwriteHelp: "replace an existing output file, table, charts or saved depth" })
    .action((args: string[], options: EvalCommandOptions) => runEval(args, options, load, knownModels));

  const merge = command
    .command("merge")
    .description("join the rows of sharded runs (--shard i/n) into one file and the tables of one unsharded run")
    .argument("<part...>", "results files of the shards (.csv or .jsonl), e.g. endosynth-eval.part-*.csv")
    .option("-o, --output <file>", "merged rows, .csv or .jsonl", DEFAULT_OUTPUT)
    .option("--markdown <file>", "where to write the aggregate table (default: the output with .md)")
    .option("--plots <dir>", "draw per-region bar charts and error-versus-depth curves there, as SVG and PNG")
    .addOption(weightingOption());
  addOutputOptions(merge, { json: true, overwriteHelp: "replace an existing output file, table or charts" }).action(function (this: Command, parts: string[]) {
    // Options after "merge" that eval also has (-o, --json, ...) are parsed as eval's: read both.
    return runMerge(parts, this.optsWithGlobals<MergeCommandOptions>());
  });
}
