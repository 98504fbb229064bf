/**
 * Progress output of the CLI: the library reports phases (`{ phase, fraction }`) and counts
 * through callbacks; this draws them on stderr, as a bar on a terminal and as plain lines
 * elsewhere (logs, CI: at most one every 5 s, and a final one), so stdout stays free for results.
 * See output.ts for the conventions.
 * @module
 */
import { MultiBar, SingleBar } from "cli-progress";
import type { Progress, ProgressCallback } from "../progress.js";

/** Draws phase progress (conversion, engine builds) until `stop()`. */
export class PhaseProgress {
  readonly #tty = Boolean(process.stderr.isTTY);
  readonly #quiet: boolean;
  #phase: string | undefined;
  #bar: SingleBar | undefined;

  constructor(options: { quiet?: boolean } = {}) {
    this.#quiet = options.quiet ?? false;
  }

  /** The callback to hand to the library. */
  readonly onProgress: ProgressCallback = (progress) => this.#update(progress);

  #update({ phase, fraction, detail }: Progress): void {
    if (this.#quiet) return;
    if (phase !== this.#phase) {
      this.#finishBar();
      this.#phase = phase;
      if (fraction === undefined) process.stderr.write(`${phase}${detail ? `: ${detail}` : ""}\n`);
      else if (!this.#tty) process.stderr.write(`${phase}...\n`);
    }
    if (fraction === undefined || !this.#tty) return;
    this.#bar ??= this.#startBar(phase);
    this.#bar.update(Math.round(fraction * 1000));
  }

  #startBar(phase: string): SingleBar {
    const bar = new SingleBar({
      format: `${phase} [{bar}] {percentage}% | {duration_formatted}`,
      barsize: 30,
      hideCursor: true,
      stream: process.stderr,
    });
    bar.start(1000, 0);
    return bar;
  }

  #finishBar(): void {
    this.#bar?.stop();
    this.#bar = undefined;
  }

  /** Ends the current bar (call before printing results). */
  stop(): void {
    this.#finishBar();
  }
}

/**
 * Seconds left, or undefined while an estimate would mean nothing: before at least 5 % of the work
 * (of this run: `initial` items were done before it) or 10 s have passed.
 */
export function etaSeconds(done: number, total: number | undefined, elapsedSeconds: number, initial = 0): number | undefined {
  if (total === undefined || done <= initial || elapsedSeconds <= 0) return undefined;
  const fraction = (done - initial) / Math.max(1, total - initial);
  if (fraction < ETA_AFTER_FRACTION && elapsedSeconds < ETA_AFTER_SECONDS) return undefined;
  return ((total - done) * elapsedSeconds) / (done - initial);
}

const ETA_AFTER_FRACTION = 0.05;
const ETA_AFTER_SECONDS = 10;

/** "45s", "12m05s", "3h07m". */
export function formatDuration(seconds: number): string {
  const whole = Math.round(seconds);
  if (whole < 60) return `${whole}s`;
  if (whole < 3600) return `${Math.floor(whole / 60)}m${String(whole % 60).padStart(2, "0")}s`;
  return `${Math.floor(whole / 3600)}h${String(Math.floor((whole % 3600) / 60)).padStart(2, "0")}m`;
}

/** Options of {@link CountProgress}. */
export interface CountProgressOptions {
  /** No output at all. */
  quiet?: boolean;
  /** Items done before this run (resumed): shown in the count, left out of the rate and ETA. */
  initial?: number;
  /** What the items are, for plain lines: "samples", "frames". Default: none. */
  unit?: string;
}

/** Off a terminal, at most a line this often. */
const PLAIN_LINE_INTERVAL_MS = 5000;

/**
 * Counts items (frames, files, samples) with their rate: on a terminal a bar when the total is
 * known, with an ETA once it means something; elsewhere a plain line every 5 s, and with
 * {@link finish} always a final line.
 */
export class CountProgress {
  readonly #bars: MultiBar | undefined;
  readonly #bar: SingleBar | undefined;
  readonly #label: string;
  readonly #total: number | undefined;
  readonly #quiet: boolean;
  readonly #initial: number;
  readonly #unit: string;
  readonly #started = performance.now();
  #done: number;
  #lastLine = performance.now();

  constructor(label: string, total: number | undefined, options: CountProgressOptions = {}) {
    this.#label = label;
    this.#total = total;
    this.#quiet = options.quiet ?? false;
    this.#initial = options.initial ?? 0;
    this.#done = this.#initial;
    this.#unit = options.unit ? ` ${options.unit}` : "";
    if (this.#quiet || !process.stderr.isTTY || total === undefined) return;
    this.#bars = new MultiBar({
      format: `${label} [{bar}] {value}/{total} | {rate} | {eta}{detail}`,
      barsize: 30,
      hideCursor: true,
      stream: process.stderr,
    });
    this.#bar = this.#bars.create(total, this.#initial, { rate: "–/s", eta: "ETA –", detail: "" });
  }

  #seconds(): number {
    return (performance.now() - this.#started) / 1000;
  }

  /** Items per second since the start (of this run). */
  get rate(): number {
    const seconds = this.#seconds();
    return seconds > 0 ? (this.#done - this.#initial) / seconds : 0;
  }

  #eta(): string {
    const eta = etaSeconds(this.#done, this.#total, this.#seconds(), this.#initial);
    return eta === undefined ? "" : `ETA ${formatDuration(eta)}`;
  }

  /** One more item done; `detail` (e.g. its name) is shown beside the bar. */
  tick(detail?: string): void {
    this.update(this.#done + 1, detail);
  }

  /** `done` items done so far (including the initial ones). */
  update(done: number, detail?: string): void {
    this.#done = done;
    if (this.#bar) {
      this.#bar.update(done, { rate: `${this.rate.toFixed(1)}/s`, eta: this.#eta() || "ETA –", detail: detail ? ` | ${detail}` : "" });
    } else if (!this.#quiet && performance.now() - this.#lastLine >= PLAIN_LINE_INTERVAL_MS) {
      this.#lastLine = performance.now();
      const eta = this.#eta();
      process.stderr.write(`${this.#label}: ${this.#count()}, ${this.rate.toFixed(1)}/s${eta ? `, ${eta}` : ""}\n`);
    }
  }

  #count(): string {
    return `${this.#done}${this.#total === undefined ? "" : `/${this.#total}`}${this.#unit}`;
  }

  /** A message that does not break the bar (on stderr; none when quiet). */
  log(text: string): void {
    if (this.#quiet) return;
    if (this.#bars) this.#bars.log(`${text}\n`);
    else process.stderr.write(`${text}\n`);
  }

  /** Ends the bar; returns the count and rate for a summary line. */
  stop(): { done: number; rate: number } {
    this.#bars?.stop();
    return { done: this.#done, rate: this.rate };
  }

  /** Ends the bar and, off a terminal, prints the final line: count, time and rate. */
  finish(): { done: number; rate: number } {
    const result = this.stop();
    if (!this.#quiet && !this.#bar) {
      process.stderr.write(`${this.#label}: ${this.#count()} in ${formatDuration(this.#seconds())} (${this.rate.toFixed(1)}/s)\n`);
    }
    return result;
  }
}
