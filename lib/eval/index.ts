/**
 * `endosynth/eval`: depth metrics as the EndoSynth paper reports them, and whole-dataset
 * evaluation with per-sample rows and aggregate reports.
 * @module endosynth/eval
 */
export {
  ALIGNMENTS,
  computeDepthMetrics,
  METRIC_GROUPS,
  METRIC_NAMES,
  type Alignment,
  type DepthMetrics,
  type DepthMetricsOptions,
  type GroupMetrics,
  type MetricName,
  type MetricValues,
} from "./metrics.js";
export {
  evaluateDataset,
  listSamples,
  shardSamples,
  type DatasetSample,
  type EvalEvent,
  type EvalSummary,
  type EvaluateDatasetOptions,
  type ListSamplesOptions,
  type Shard,
} from "./dataset.js";
export { mergeRows, type MergeRowsOptions, type MergeSummary } from "./merge.js";
export { writeEvalPlots } from "./plots.js";
export type { AggregateGroup, EvalAggregate, ModelAggregate, Weighting } from "./aggregate.js";
export type { DepthProfile } from "./profile.js";
export { formatAggregate, type FormatAggregateOptions } from "./report.js";
