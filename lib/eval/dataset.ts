/**
 * Evaluates depth models on a folder of EndoSynth-format samples: the runner behind
 * `endosynth eval`. A pool of worker threads (`jobs`) reads and decodes the samples ahead of the
 * models and computes the metrics of their predictions, so the thread feeding the models does
 * nothing else and a GPU model is never left waiting on a read or on metrics. A row per sample and
 * model is appended to a CSV or JSONL file in sample order as it completes (flushed per sample, so
 * an interrupted run can be resumed), and the aggregate is recomputed from that file at the end.
 * Memory stays bounded: at most `jobs + 1` samples are read ahead and `jobs` evaluated at once.
 *
 * `shard` evaluates one of n contiguous slices of the listing (for cluster job arrays);
 * `endosynth eval merge` joins the shards' files into the aggregate of one unsharded run.
 *
 * A sample that cannot be read (corrupt archive, missing key, mismatched shapes) or that a model
 * refuses as bad input is reported through `onProgress` and skipped: it never ends a long run.
 * Anything else a model throws (its runtime failing) does end the run, since every following
 * sample would fail the same way.
 *
 * @example
 * ```ts
 * import { evaluateDataset, formatAggregate, load } from "endosynth";
 * const models = [await load("dav1"), await load("dav2")];
 * const summary = await evaluateDataset(models, "datasets/EndoSynth", { output: "eval.csv" });
 * console.log(formatAggregate(summary.aggregates.sample));
 * ```
 * @module
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { AbortError, EndosynthError, FileFormatError, InputError } from "../errors.js";
import { assertAbortSignal, assertFunction, assertIntegerInRange, assertOptions, assertPlainObject, assertString, invalidParameter, isInteger } from "../is.js";
import { writeNpy } from "../io/npy.js";
import type { NdArray } from "../ndarray/ndarray.js";
import type { DepthModel } from "../stream.js";
import { rebuiltError } from "../threads/transferred_error.js";
import { type EvalAggregate, EvalAggregator } from "./aggregate.js";
import { type Alignment, metricSettings } from "./metrics.js";
import { type EvalRow, type EvalSettings, readRows, type RowsFileState, rowsFormatOf, RowsWriter } from "./rows.js";
import type { EvaluateReply, SampleArrays } from "./sample_worker.js";
import { defaultJobs, WorkerPool } from "./worker_pool.js";

/** One sample of a dataset. */
export interface DatasetSample {
  /** Its name in rows and saved depth: path relative to the samples folder, or as in the list file. */
  id: string;
  /** Absolute path of the `.npz`. */
  path: string;
}

/** Options of {@link listSamples}. */
export interface ListSamplesOptions {
  /** Keep only the first `limit` samples (in name order for folders, file order for lists). */
  limit?: number;
}

const LIST_FILE_HINT = "a dataset folder (holding samples/*.npz, or *.npz itself) or a list file of .npz paths";

function npzIn(folder: string): string[] {
  return readdirSync(folder).filter((name) => name.endsWith(".npz")).sort();
}

/**
 * Lists a dataset's samples: `<dir>/samples/*.npz` (the EndoSynth layout), else `<dir>/*.npz`,
 * sorted by name; or the lines of a list file (one `.npz` path per line, relative to the list file;
 * blank lines and `#` comments skipped). Only names are listed; nothing is read.
 * @throws {@link endosynth!InputError | InputError} for a missing path, or a folder or list without samples.
 */
export function listSamples(dataset: string, options?: ListSamplesOptions): DatasetSample[] {
  assertString("dataset", dataset);
  assertOptions("options", options as unknown, ["limit"]);
  const limit = options?.limit ?? Infinity;
  if (limit !== Infinity && (!isInteger(limit) || limit < 1)) throw invalidParameter("options.limit", "a positive integer", limit);
  const root = resolve(dataset);
  if (!existsSync(root)) throw new InputError(`Dataset ${dataset} does not exist: expected ${LIST_FILE_HINT}`, { file: dataset });
  let samples: DatasetSample[];
  if (statSync(root).isDirectory()) {
    const samplesFolder = join(root, "samples");
    const folder = existsSync(samplesFolder) && statSync(samplesFolder).isDirectory() ? samplesFolder : root;
    samples = npzIn(folder).map((name) => ({ id: name, path: join(folder, name) }));
    if (samples.length === 0) {
      throw new InputError(`Dataset folder ${dataset} holds no samples: expected ${join(dataset, "samples")}/*.npz or ${join(dataset, "*.npz")}`, { file: dataset });
    }
  } else {
    const base = dirname(root);
    samples = readFileSync(root, "utf8")
      .split(/\r?\n/)
      .map((line) => line.trim())
      .filter((line) => line !== "" && !line.startsWith("#"))
      .map((line) => ({ id: line, path: isAbsolute(line) ? line : join(base, line) }));
    if (samples.length === 0) throw new InputError(`Sample list ${dataset} names no samples: expected one .npz path per line`, { file: dataset });
  }
  return samples.slice(0, limit);
}

/** One of `count` slices of a listing, numbered from 1 (as `--shard 2/8` writes it). */
export interface Shard {
  /** Which slice, 1..count. */
  index: number;
  /** How many slices. */
  count: number;
}

/**
 * The samples of one shard: the `index`-th of `count` contiguous slices of the listing (sorted by
 * name for a folder, in file order for a list), sizes differing by at most one. Every sample is in
 * exactly one shard, whatever `count`.
 * @throws {@link endosynth!InputError | InputError} for an index outside 1..count.
 */
export function shardSamples<T>(samples: readonly T[], shard: Shard): T[] {
  assertPlainObject("shard", shard);
  assertIntegerInRange("shard.count", shard.count, 1, Number.MAX_SAFE_INTEGER);
  assertIntegerInRange("shard.index", shard.index, 1, shard.count);
  const start = Math.floor(((shard.index - 1) * samples.length) / shard.count);
  const end = Math.floor((shard.index * samples.length) / shard.count);
  return samples.slice(start, end);
}

/** Progress of {@link evaluateDataset}; the CLI turns these into a progress bar and messages. */
export type EvalEvent =
  | {
      /** The run is about to evaluate its first sample. */
      type: "start";
      /** Samples in the (limited) listing. */
      total: number;
      /** Samples every model had already evaluated (resumed from the results file). */
      alreadyDone: number;
      /** The models, in table order. */
      models: string[];
    }
  | {
      /** A sample's rows have been written for every model. */
      type: "sample";
      /** The sample just finished. */
      sample: string;
      /** Samples finished so far, including resumed and skipped ones. */
      done: number;
      /** Samples in the listing. */
      total: number;
    }
  | {
      /** A sample (or one model's prediction for it) was left out: it has no rows for that model. */
      type: "skipped";
      /** The sample's id (see {@link DatasetSample.id}). */
      sample: string;
      /** The model that refused it, when the sample itself could be read. */
      model?: string;
      /** Why: the reading or inference error. */
      error: Error;
    }
  | {
      /** Something about a sample that is worth knowing but did not stop it being evaluated. */
      type: "warning";
      /** The sample's id (see {@link DatasetSample.id}). */
      sample: string;
      /** The model whose prediction the warning is about; absent when it is about the sample itself. */
      model?: string;
      /** What was noticed, as a sentence. */
      message: string;
    };

/** Options of {@link evaluateDataset}. */
export interface EvaluateDatasetOptions {
  /** Per-sample results file, `.csv` or `.jsonl` (created, or appended to with `resume`). */
  output: string;
  /** Continue an existing results file: samples it holds for a model are not evaluated again. */
  resume?: boolean;
  /** Replace an existing results file. Without `resume` or `overwrite`, an existing file is an error. */
  overwrite?: boolean;
  /** Evaluate only the first `limit` samples (of the listing, before sharding). */
  limit?: number;
  /** Evaluate one slice of the listing (see {@link shardSamples}). */
  shard?: Shard;
  /** Worker threads reading samples and computing metrics; default: the cores less one, 1 to 8. */
  jobs?: number;
  /** Alignment for the relative metrics; default `"median"`. */
  alignment?: Alignment;
  /** Ground truth beyond this (metres) is not valid; default none. */
  maxDepth?: number;
  /** Predictions are clamped below at this (metres); default 0.001. */
  minDepth?: number;
  /** Folder to keep predictions in, as `<folder>/<model>/<sample>.npy` (float32 metres). */
  saveDepth?: string;
  /** Receives progress; the library never prints. */
  onProgress?: (event: EvalEvent) => void;
  /**
   * Aborting it stops reading samples; those already inferred are finished and their rows written,
   * then the run rejects with {@link AbortError}.
   */
  signal?: AbortSignal;
}

/** What {@link evaluateDataset} did. */
export interface EvalSummary {
  /** The results file. */
  output: string;
  /** Samples in the listing (in this shard). */
  total: number;
  /** Samples evaluated by this run. */
  evaluated: number;
  /** Samples every model had already evaluated. */
  resumed: number;
  /** Samples (or sample and model pairs) skipped, with why. */
  skipped: {
    /** The sample's id (see {@link DatasetSample.id}). */
    sample: string;
    /** The model that refused it, when the sample itself could be read. */
    model?: string;
    /** Why: the reading or inference error. */
    error: Error;
  }[];
  /** The aggregate over every row of the results file for these models, in both weightings. */
  aggregates: {
    /** `"sample"` weighting: every sample weighs the same. */
    sample: EvalAggregate;
    /** `"pixel"` weighting: every valid pixel weighs the same. */
    pixel: EvalAggregate;
  };
}

/** Errors that condemn one sample (or one sample for one model), not the run. */
function isSampleError(error: unknown): boolean {
  return error instanceof FileFormatError || error instanceof InputError;
}

function checkModels(models: readonly DepthModel[]): string[] {
  if (!Array.isArray(models) || models.length === 0) throw invalidParameter("models", "a non-empty array of models", models);
  const names = models.map((model, i) => {
    if (typeof model?.infer !== "function" || typeof model.name !== "string" || model.name === "") {
      throw invalidParameter(`models[${i}]`, "a model with a name and an infer() method", model);
    }
    return model.name;
  });
  assertDistinctModels(names);
  return names;
}

/**
 * Refuses a model named twice: its rows would be indistinguishable.
 * @throws {@link endosynth!InputError | InputError} naming it.
 * @internal
 */
export function assertDistinctModels(names: readonly string[]): void {
  const duplicate = names.find((name, i) => names.indexOf(name) !== i);
  if (duplicate !== undefined) throw new InputError(`Model ${duplicate} is listed twice: each model is evaluated once`, { key: "models" });
}

function describeSettings(settings: EvalSettings): string {
  return `alignment ${settings.alignment}, max depth ${settings.maxDepth}, min depth ${settings.minDepth}`;
}

/** Reads what a results file already holds: which samples each model has done. */
function resumeFrom(output: string, settings: EvalSettings): { done: Map<string, Set<string>>; state: RowsFileState } {
  const done = new Map<string, Set<string>>();
  const state = readRows(output, (row) => {
    if (row.alignment !== settings.alignment || row.maxDepth !== settings.maxDepth || row.minDepth !== settings.minDepth) {
      throw new InputError(
        `${output} was written with ${describeSettings(row)} (sample ${row.sample}) but this run uses ${describeSettings(settings)}: resume with the same options, or write to another file`,
        { file: output },
      );
    }
    let models = done.get(row.sample);
    if (!models) done.set(row.sample, (models = new Set()));
    models.add(row.model);
  });
  return { done, state };
}

function depthPath(folder: string, model: string, id: string): string {
  return join(folder, model, `${id.replace(/\.npz$/i, "")}.npy`);
}

/** What the checks before a run found. */
interface Plan {
  settings: EvalSettings;
  jobs: number;
  samples: DatasetSample[];
  /** Models done per sample id, from the results file being resumed. */
  done: Map<string, Set<string>>;
  /** The results file being resumed, if any. */
  existing?: RowsFileState;
}

function plan(dataset: string, options: EvaluateDatasetOptions): Plan {
  const known = ["output", "resume", "overwrite", "limit", "shard", "jobs", "alignment", "maxDepth", "minDepth", "saveDepth", "onProgress", "signal"];
  assertOptions("options", options as unknown, known);
  if (options === undefined) throw invalidParameter("options", "an object with output", options);
  const settings = metricSettings(options);
  assertString("options.output", options.output);
  if (options.onProgress !== undefined) assertFunction("options.onProgress", options.onProgress);
  if (options.signal !== undefined) assertAbortSignal("options.signal", options.signal);
  const jobs = options.jobs ?? defaultJobs();
  assertIntegerInRange("options.jobs", jobs, 1, 256);
  const output = options.output;
  rowsFormatOf(output);
  const listed = listSamples(dataset, options.limit === undefined ? {} : { limit: options.limit });
  const samples = options.shard === undefined ? listed : shardSamples(listed, options.shard);
  if (!existsSync(output) || options.overwrite) return { settings, jobs, samples, done: new Map() };
  if (!options.resume) {
    throw new InputError(`${output} already exists: resume it (--resume) to skip the samples it holds, or overwrite it (--overwrite)`, { file: output });
  }
  const { done, state } = resumeFrom(output, settings);
  return { settings, jobs, samples, done, existing: state };
}

/**
 * Checks everything {@link evaluateDataset} can check without models (options, the dataset
 * listing, the results file and, when resuming, its settings), so a command can fail before
 * spending minutes loading models.
 * @throws see {@link evaluateDataset}.
 */
export function checkEvaluation(dataset: string, options: EvaluateDatasetOptions): void {
  plan(dataset, options);
}

/**
 * Evaluates every model on every sample of a dataset (see the module notes), appending rows to
 * `options.output`, and returns the aggregate recomputed from that file.
 *
 * @param models models with distinct names.
 * @param dataset see {@link listSamples}.
 * @throws {@link endosynth!InputError | InputError} for a missing or empty dataset, bad options, an existing results file
 * without `resume`/`overwrite`, or one written with other settings.
 * @throws {@link endosynth!FileFormatError | FileFormatError} for a results file endosynth did not write.
 * @throws {@link endosynth!AbortError | AbortError} when `signal` aborts (after the rows of the samples already inferred are written).
 */
export async function evaluateDataset(models: readonly DepthModel[], dataset: string, options: EvaluateDatasetOptions): Promise<EvalSummary> {
  const names = checkModels(models);
  const { settings, jobs, samples, done, existing } = plan(dataset, options);
  const { output, signal } = options;
  const report = options.onProgress ?? (() => undefined);
  const pendingModels = (sample: DatasetSample) => models.filter((model) => !done.get(sample.id)?.has(model.name));
  const todo = samples.filter((sample) => pendingModels(sample).length > 0);
  const resumed = samples.length - todo.length;
  report({ type: "start", total: samples.length, alreadyDone: resumed, models: names });

  mkdirSync(dirname(resolve(output)), { recursive: true });
  const writer = new RowsWriter(output, existing);
  const skipped: EvalSummary["skipped"] = [];
  const skip = (sample: string, error: Error, model?: string) => {
    skipped.push({ sample, error, ...(model === undefined ? {} : { model }) });
    report({ type: "skipped", sample, error, ...(model === undefined ? {} : { model }) });
  };

  const pool = new WorkerPool(Math.min(jobs, Math.max(1, todo.length)));
  const reads: Promise<SampleArrays | Error>[] = [];
  const readAhead = (k: number) => {
    for (let next = reads.length; next < Math.min(todo.length, k + jobs + 1); next++) {
      reads.push(pool.read(todo[next].path).catch((error: Error) => error));
    }
  };
  // Evaluations in sample order; rows are written as the oldest completes.
  const evaluations: Promise<EvalRow[]>[] = [];
  const queueEvaluation = (rows: Promise<EvalRow[]>) => {
    // Awaited in order later; a failure before then must not count as unhandled.
    rows.catch(() => undefined);
    evaluations.push(rows);
  };
  let evaluated = 0;
  const writeOldest = async () => {
    const rows = await evaluations.shift()!;
    writer.append(rows);
    evaluated++;
    report({ type: "sample", sample: todo[evaluated - 1].id, done: resumed + evaluated, total: samples.length });
  };
  try {
    for (let k = 0; k < todo.length && !signal?.aborted; k++) {
      readAhead(k);
      const sample = todo[k];
      const read = await reads[k];
      delete reads[k];
      if (read instanceof Error) {
        // Whatever stops a read (corrupt archive, schema, permissions, a file gone) condemns this sample only.
        queueEvaluation(Promise.resolve(reportUnreadable(sample, read, skip)));
      } else {
        const predictions = await inferAll(read, pendingModels(sample));
        queueEvaluation(evaluateSample(pool, sample, read, predictions, settings, options.saveDepth, skip, report));
      }
      while (evaluations.length > jobs) await writeOldest();
    }
    while (evaluations.length > 0) await writeOldest();
    if (signal?.aborted && evaluated < todo.length) {
      throw new AbortError(`Evaluation interrupted after ${resumed + evaluated} of ${samples.length} samples; the rows so far are in ${output}`, { cause: signal.reason });
    }
  } catch (error) {
    // Keep the rows of every sample already inferred before giving up (up to one that fails too).
    try {
      while (evaluations.length > 0) await writeOldest();
    } catch {
      evaluations.length = 0;
    }
    throw error;
  } finally {
    writer.close();
    await pool.close();
  }

  const aggregator = new EvalAggregator(names);
  readRows(output, (row) => aggregator.add(row));
  return { output, total: samples.length, evaluated, resumed, skipped, aggregates: { sample: aggregator.result("sample"), pixel: aggregator.result("pixel") } };
}

/** A model's prediction for a sample, or the input error that made it refuse the sample. */
interface Prediction {
  model: DepthModel;
  depth?: NdArray<"float32">;
  error?: Error;
}

/** Every model's prediction for one sample; a failure other than bad input ends the run. */
async function inferAll(read: SampleArrays, models: readonly DepthModel[]): Promise<Prediction[]> {
  return Promise.all(
    models.map(async (model) => {
      try {
        return { model, depth: await model.infer(read.rgb) };
      } catch (error) {
        if (isSampleError(error)) return { model, error: error as Error };
        throw error;
      }
    }),
  );
}

function reportUnreadable(sample: DatasetSample, error: Error, skip: (sample: string, error: Error, model?: string) => void): EvalRow[] {
  skip(sample.id, error);
  return [];
}

/**
 * Saves the predictions (when asked) and has a worker compute their metrics; resolves with the
 * sample's rows, having reported what went wrong.
 */
async function evaluateSample(
  pool: WorkerPool,
  sample: DatasetSample,
  read: SampleArrays,
  predictions: Prediction[],
  settings: EvalSettings,
  saveDepth: string | undefined,
  skip: (sample: string, error: Error, model?: string) => void,
  report: (event: EvalEvent) => void,
): Promise<EvalRow[]> {
  const inferred = predictions.filter((prediction): prediction is Prediction & { depth: NdArray<"float32"> } => {
    if (prediction.depth) return true;
    skip(sample.id, prediction.error ?? new Error("no prediction"), prediction.model.name);
    return false;
  });
  if (saveDepth !== undefined) {
    for (const { model, depth } of inferred) {
      const path = depthPath(saveDepth, model.name, sample.id);
      mkdirSync(dirname(path), { recursive: true });
      writeNpy(path, depth);
    }
  }
  if (inferred.length === 0) return [];
  // The predictions are transferred to the worker: copies, so that a model keeping its output keeps it.
  const replies = await pool.evaluate({
    depth: read.depth,
    seg: read.seg,
    predictions: inferred.map(({ depth }) => ({ ...depth, data: depth.data.slice() })),
    settings: { alignment: settings.alignment, maxDepth: settings.maxDepth, minDepth: settings.minDepth },
  });
  return rowsOf(sample, inferred.map(({ model }) => model.name), replies, settings, skip, report);
}

/** The rows of one sample from the workers' replies, with warnings and skips reported. */
function rowsOf(
  sample: DatasetSample,
  models: readonly string[],
  replies: EvaluateReply,
  settings: EvalSettings,
  skip: (sample: string, error: Error, model?: string) => void,
  report: (event: EvalEvent) => void,
): EvalRow[] {
  const rows: EvalRow[] = [];
  let groundTruthReported = false;
  replies.forEach((reply, i) => {
    const model = models[i];
    if ("error" in reply) {
      const failure = rebuiltError(reply.error);
      if (!(failure instanceof EndosynthError)) throw failure;
      skip(sample.id, new InputError(`${model} on ${sample.id}: ${failure.message}`, { file: sample.path, cause: failure }), model);
      return;
    }
    const { metrics, profile } = reply;
    if (!groundTruthReported) {
      groundTruthReported = true;
      if (metrics.nonFiniteGt > 0) {
        report({ type: "warning", sample: sample.id, message: `${metrics.nonFiniteGt} ground-truth depths are NaN or infinite in ${sample.id}; they are left out of the metrics` });
      }
      if (metrics.groups.all.pixels + metrics.nonFinitePred === 0) {
        report({ type: "warning", sample: sample.id, message: `${sample.id} has no valid ground-truth pixel; its rows have no metrics` });
      }
    }
    if (metrics.nonFinitePred > 0) {
      report({ type: "warning", sample: sample.id, model, message: `${model} predicted ${metrics.nonFinitePred} NaN or infinite depths for ${sample.id}; they are left out of the metrics` });
    }
    rows.push({
      sample: sample.id,
      model,
      ...settings,
      scale: metrics.alignment.scale,
      shift: metrics.alignment.shift,
      nonFiniteGt: metrics.nonFiniteGt,
      nonFinitePred: metrics.nonFinitePred,
      groups: metrics.groups as EvalRow["groups"],
      profile,
    });
  });
  return rows;
}
