/**
 * Aggregates per-sample rows into one table per model, streaming (rows are added one at a time,
 * nothing but sums is kept), in either of two weightings:
 *
 * - `"sample"` (default): each sample's metrics first, then their mean over the samples. This is how
 *   monodepth2, EndoDAC and the depth literature (hence, presumably, the EndoSynth paper) report
 *   numbers: every frame counts the same, however many valid pixels it has. For a class group, the
 *   mean is over the samples in which the class has valid pixels.
 * - `"pixel"`: every valid pixel of the dataset counts the same (Σ per-sample sums / Σ pixels,
 *   RMSE as the root of the pooled mean square). Exact, because rows keep each sample's pixel count.
 *
 * Sums are exact ({@link ExactSum}): the aggregate does not depend on the order of the rows, so
 * shards merged in any order give bit for bit the numbers of one unsharded run.
 * @module
 */
import { InputError } from "../errors.js";
import { ExactSum } from "./exact_sum.js";
import { type Alignment, type GroupMetrics, MEAN_METRICS, METRIC_GROUPS, METRIC_NAMES, type MetricValues } from "./metrics.js";
import { DEPTH_BINS, type DepthProfile } from "./profile.js";
import type { EvalRow } from "./rows.js";

/** How per-sample results are combined. */
export type Weighting = "sample" | "pixel";

/** One group's aggregate. */
export interface AggregateGroup {
  /** Samples in which the group had valid pixels. */
  samples: number;
  /** Valid pixels over those samples. */
  pixels: number;
  /** Aggregated metrics of the raw predictions (NaN when no sample had the group). */
  metric: MetricValues;
  /** Aggregated metrics after alignment. */
  aligned: MetricValues;
}

/** One model's aggregate. */
export interface ModelAggregate {
  /** The model's name. */
  model: string;
  /** Rows (samples) aggregated. */
  samples: number;
  /** Aggregate per group of {@link METRIC_GROUPS}. */
  groups: Record<string, AggregateGroup>;
  /** Errors per 1 cm bin of ground-truth depth, pooled over every valid pixel whatever the weighting. */
  profile: DepthProfile;
}

/** Aggregates of every model, side by side. */
export interface EvalAggregate {
  /** The weighting used. */
  weighting: Weighting;
  /** The alignment of the rows' `aligned` metrics (undefined when there were no rows). */
  alignment?: Alignment;
  /** One entry per model, in the order the models were first seen (or asked for). */
  models: ModelAggregate[];
}

const SPACES = ["metric", "aligned"] as const;
const NAMES = METRIC_NAMES.length;
// Per group and space: sum of per-sample values, sum of value × pixels (RMSE: rmse² × pixels).
const SAMPLE_SUMS = 0;
const PIXEL_SUMS = NAMES;
const SPACE_SIZE = 2 * NAMES;

class GroupSums {
  samples = 0;
  pixels = 0;
  readonly sums = Array.from({ length: 2 * SPACE_SIZE }, () => new ExactSum());

  add(metrics: GroupMetrics): void {
    if (!(metrics.pixels > 0)) return;
    this.samples++;
    this.pixels += metrics.pixels;
    SPACES.forEach((space, s) => {
      METRIC_NAMES.forEach((name, m) => {
        const value = metrics[space][name];
        this.sums[s * SPACE_SIZE + SAMPLE_SUMS + m].add(value);
        this.sums[s * SPACE_SIZE + PIXEL_SUMS + m].add((name === "rmse" ? value * value : value) * metrics.pixels);
      });
    });
  }

  result(weighting: Weighting): AggregateGroup {
    const values = (s: number): MetricValues => {
      const entries = METRIC_NAMES.map((name, m) => {
        if (weighting === "sample") return [name, this.sums[s * SPACE_SIZE + SAMPLE_SUMS + m].value() / this.samples];
        const mean = this.sums[s * SPACE_SIZE + PIXEL_SUMS + m].value() / this.pixels;
        return [name, MEAN_METRICS.includes(name) ? mean : Math.sqrt(mean)];
      });
      return Object.fromEntries(entries) as MetricValues;
    };
    return { samples: this.samples, pixels: this.pixels, metric: values(0), aligned: values(1) };
  }
}

/** Per depth bin: pixels, and exact sums of each error times its pixels. */
class ProfileSums {
  readonly pixels = new Array<number>(DEPTH_BINS).fill(0);
  readonly absolute = Array.from({ length: DEPTH_BINS }, () => new ExactSum());
  readonly relative = Array.from({ length: DEPTH_BINS }, () => new ExactSum());

  add(profile: DepthProfile): void {
    for (let bin = 0; bin < DEPTH_BINS; bin++) {
      const pixels = profile.pixels[bin];
      if (!(pixels > 0)) continue;
      this.pixels[bin] += pixels;
      this.absolute[bin].add(profile.mae_cm[bin] * pixels);
      this.relative[bin].add(profile.abs_rel[bin] * pixels);
    }
  }

  result(): DepthProfile {
    return {
      pixels: [...this.pixels],
      mae_cm: this.absolute.map((sum, bin) => sum.value() / this.pixels[bin]),
      abs_rel: this.relative.map((sum, bin) => sum.value() / this.pixels[bin]),
    };
  }
}

/**
 * Accumulates rows, for any number of models, and produces the aggregate tables.
 * @example
 * ```ts
 * const aggregator = new EvalAggregator(["dav1", "dav2"]);
 * readRows("eval.csv", (row) => aggregator.add(row));
 * aggregator.result("sample").models[0].groups.all.metric.mae_cm;
 * ```
 */
export class EvalAggregator {
  readonly #models = new Map<string, { samples: number; groups: Map<string, GroupSums>; profile: ProfileSums }>();
  readonly #seen = new Set<string>();
  #alignment: Alignment | undefined;

  /**
   * @param models the models to aggregate, in table order; rows of other models are ignored.
   * Without it, every model seen is aggregated, in order of appearance.
   */
  constructor(private readonly only?: readonly string[]) {
    for (const model of only ?? []) this.#entry(model);
  }

  #entry(model: string) {
    let entry = this.#models.get(model);
    if (!entry) {
      entry = { samples: 0, groups: new Map(METRIC_GROUPS.map((group) => [group, new GroupSums()])), profile: new ProfileSums() };
      this.#models.set(model, entry);
    }
    return entry;
  }

  /**
   * Adds one row. A second row for the same sample and model is ignored (the first counts).
   * @throws {@link endosynth!InputError | InputError} when the row's alignment differs from the rows before it.
   */
  add(row: EvalRow): void {
    if (this.only && !this.only.includes(row.model)) return;
    const key = `${row.model}\u0000${row.sample}`;
    if (this.#seen.has(key)) return;
    this.#seen.add(key);
    if (this.#alignment !== undefined && row.alignment !== this.#alignment) {
      throw new InputError(`Cannot aggregate rows aligned with ${row.alignment} (sample ${row.sample}) together with rows aligned with ${this.#alignment}`);
    }
    this.#alignment = row.alignment;
    const entry = this.#entry(row.model);
    entry.samples++;
    for (const [group, sums] of entry.groups) {
      const metrics = row.groups[group];
      if (metrics) sums.add(metrics);
    }
    entry.profile.add(row.profile);
  }

  /** The aggregate tables so far. */
  result(weighting: Weighting = "sample"): EvalAggregate {
    const models = [...this.#models].map(([model, entry]) => ({
      model,
      samples: entry.samples,
      groups: Object.fromEntries([...entry.groups].map(([group, sums]) => [group, sums.result(weighting)])),
      profile: entry.profile.result(),
    }));
    return { weighting, ...(this.#alignment === undefined ? {} : { alignment: this.#alignment }), models };
  }
}
