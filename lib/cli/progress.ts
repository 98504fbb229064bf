/**
 * Progress output of the CLI: the library reports phases (`{ phase, fraction }`) through callbacks;
 * this draws them on stderr, as a bar on a terminal and as plain lines elsewhere (logs, CI), so
 * stdout stays free for results.
 * @module
 */
import { SingleBar } from "cli-progress";
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

/** Counts items (frames, files) with their rate, on a bar when the total is known and on a terminal. */
export class CountProgress {
  readonly #bar: SingleBar | undefined;
  readonly #label: string;
  readonly #quiet: boolean;
  readonly #started = performance.now();
  #done = 0;
  #lastLine = 0;

  constructor(label: string, total: number | undefined, options: { quiet?: boolean } = {}) {
    this.#label = label;
    this.#quiet = options.quiet ?? false;
    if (this.#quiet) return;
    if (process.stderr.isTTY && total !== undefined) {
      this.#bar = new SingleBar({
        format: `${label} [{bar}] {value}/{total} | {rate}/s | ETA {eta_formatted}`,
        barsize: 30,
        hideCursor: true,
        stream: process.stderr,
      });
      this.#bar.start(total, 0, { rate: "-" });
    }
  }

  /** Items per second since the start. */
  get rate(): number {
    const seconds = (performance.now() - this.#started) / 1000;
    return seconds > 0 ? this.#done / seconds : 0;
  }

  /** One more item done. */
  tick(): void {
    this.#done++;
    if (this.#bar) {
      this.#bar.update(this.#done, { rate: this.rate.toFixed(1) });
    } else if (!this.#quiet && performance.now() - this.#lastLine > 5000) {
      // Off a terminal, a line every 5 s keeps logs short.
      this.#lastLine = performance.now();
      process.stderr.write(`${this.#label}: ${this.#done} done, ${this.rate.toFixed(1)}/s\n`);
    }
  }

  /** Ends the bar; returns the count and rate for a summary line. */
  stop(): { done: number; rate: number } {
    this.#bar?.stop();
    return { done: this.#done, rate: this.rate };
  }
}
