/**
 * `endosynth pull <model...|all> [--accept-license] [--mirror <base-url>] [--checkpoints <dir>]
 * [--timeout <s>] [--retries <n>] [--json] [-q]`: the authors' checkpoints into the checkpoints
 * folder `load` reads, with their licence shown, a progress bar (bytes, speed, ETA), resumption of
 * interrupted downloads and SHA-256 verification. Ctrl-C keeps the bytes received; the same
 * command resumes.
 * @module
 */
import { relative } from "node:path";
import { SingleBar } from "cli-progress";
import { type Command, InvalidArgumentError } from "commander";
import { AbortError } from "../errors.js";
import { MODEL_NAMES, type ModelName, type ModelSpec, modelSpec } from "../models/registry.js";
import { isLicenseAccepted, licenseRecordPath } from "../pull/license.js";
import { pull, type PullProgress, type PullResult } from "../pull/pull.js";
import { parsePositiveInteger } from "./arguments.js";
import { abortOnInterrupt, interrupted } from "./interrupt.js";

interface PullCommandOptions {
  acceptLicense?: boolean;
  mirror?: string;
  checkpoints?: string;
  timeout: number;
  retries: number;
  json?: boolean;
  quiet?: boolean;
}

type License = ModelSpec["weightsLicense"];

function parseRetries(value: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 0 || number > 100) throw new InvalidArgumentError("expected an integer from 0 to 100");
  return number;
}

/** Megabytes (10^6 bytes), as download tools and servers count them. */
function formatBytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return "-";
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  const whole = Math.round(seconds);
  if (whole < 60) return `${whole} s`;
  return `${Math.floor(whole / 60)} min ${String(whole % 60).padStart(2, "0")} s`;
}

function displayPath(path: string): string {
  const near = relative(process.cwd(), path);
  return near && !near.startsWith("..") ? near : path;
}

/** Bytes per second over the last few seconds, so that the speed and ETA follow the network's current pace. */
class RateWindow {
  readonly #samples: { time: number; bytes: number }[] = [];

  add(bytes: number): void {
    const time = performance.now();
    this.#samples.push({ time, bytes });
    while (this.#samples.length > 2 && time - this.#samples[0]!.time > 5000) this.#samples.shift();
  }

  get bytesPerSecond(): number {
    const first = this.#samples[0];
    const last = this.#samples.at(-1);
    if (!first || !last || last.time - first.time < 200) return 0;
    return ((last.bytes - first.bytes) * 1000) / (last.time - first.time);
  }
}

/**
 * Draws pull progress on stderr: a bar with bytes, speed and ETA on a terminal; elsewhere a line
 * when a file starts, one every 5 s, and a final line when it ends.
 */
class PullProgressView {
  readonly #tty = Boolean(process.stderr.isTTY);
  readonly #quiet: boolean;
  #current: { key: string; label: string; rate: RateWindow; started: number; startBytes: number; last: PullProgress } | undefined;
  #bar: SingleBar | undefined;
  #lastLine = 0;

  constructor(quiet: boolean) {
    this.#quiet = quiet;
  }

  /** The callback to hand to `pull`. */
  readonly onProgress = (progress: PullProgress): void => {
    if (this.#quiet) return;
    const key = `${progress.phase} ${progress.file}`;
    if (this.#current?.key !== key) this.#start(key, progress);
    const current = this.#current!;
    current.last = progress;
    current.rate.add(progress.bytes);
    if (this.#bar) this.#bar.update(progress.bytes, this.#payload());
    else if (performance.now() - this.#lastLine > 5000) this.#line(this.#status());
  };

  /** Prints a message without breaking the bar. */
  message(text: string): void {
    if (this.#bar) this.#bar.stop();
    process.stderr.write(`${text}\n`);
    this.#bar = undefined;
  }

  #start(key: string, progress: PullProgress): void {
    this.#finish();
    const label = `${progress.phase} ${displayPath(progress.file)}`;
    this.#current = { key, label, rate: new RateWindow(), started: performance.now(), startBytes: progress.bytes, last: progress };
    if (this.#tty && progress.totalBytes !== undefined) {
      this.#bar = new SingleBar({
        format: `${label} [{bar}] {percentage}% | {done} of {size} | {speed} | ETA {remaining}`,
        barsize: 25,
        hideCursor: true,
        stream: process.stderr,
      });
      this.#bar.start(progress.totalBytes, progress.bytes, this.#payload());
    } else {
      this.#line(`${label}${progress.totalBytes === undefined ? "" : ` (${formatBytes(progress.totalBytes)})`}`);
    }
  }

  #payload(): Record<string, string> {
    const { last, rate } = this.#current!;
    const speed = rate.bytesPerSecond;
    const remaining = last.totalBytes === undefined ? Number.NaN : (last.totalBytes - last.bytes) / speed;
    return {
      done: formatBytes(last.bytes),
      size: last.totalBytes === undefined ? "?" : formatBytes(last.totalBytes),
      speed: speed > 0 ? `${formatBytes(speed)}/s` : "-",
      remaining: speed > 0 ? formatSeconds(remaining) : "-",
    };
  }

  #status(): string {
    const { label, last } = this.#current!;
    const { done, size, speed, remaining } = this.#payload();
    const percent = last.totalBytes ? ` (${Math.floor((last.bytes / last.totalBytes) * 100)}%)` : "";
    return `${label}: ${done} of ${size}${percent}, ${speed}, ETA ${remaining}`;
  }

  #line(text: string): void {
    this.#lastLine = performance.now();
    process.stderr.write(`${text}\n`);
  }

  /** Ends the current file's bar or lines with a final line. */
  #finish(): void {
    const current = this.#current;
    if (!current) return;
    this.#bar?.stop();
    this.#bar = undefined;
    this.#current = undefined;
    const seconds = (performance.now() - current.started) / 1000;
    const { bytes, totalBytes } = current.last;
    const pace = seconds > 0 ? `, ${formatBytes((bytes - current.startBytes) / seconds)}/s` : "";
    const outcome = totalBytes === undefined || bytes === totalBytes ? `done, ${formatBytes(bytes)}` : `stopped at ${formatBytes(bytes)} of ${formatBytes(totalBytes)}`;
    this.#line(`${current.label}: ${outcome} in ${formatSeconds(seconds)}${pace}`);
  }

  /** Ends the display (call before printing results, and on failure). */
  stop(): void {
    this.#finish();
  }
}

function resultLine(result: PullResult): string {
  const where = displayPath(result.file);
  const record = result.sha256Check === "matched" ? "SHA-256 matches the record" : `SHA-256 ${result.sha256} recorded in ${where}.sha256`;
  if (result.status === "present") return `${result.model}: ${where} already present, nothing downloaded; ${record}`;
  const resumed = result.resumedFrom > 0 ? `, resumed at ${formatBytes(result.resumedFrom)}` : "";
  const pace = result.seconds > 0 ? `, ${formatBytes(result.downloadedBytes / result.seconds)}/s` : "";
  return `${result.model}: downloaded ${where} (${formatBytes(result.size)} in ${formatSeconds(result.seconds)}${pace}${resumed}); ${record}`;
}

function licenseNotice(license: License, acceptingNow: boolean): string {
  const acceptance = acceptingNow ? `\nAccepted with --accept-license; remembered in ${licenseRecordPath()}.` : "";
  return `The weights are published under the ${license.name}: ${license.summary}.\nFull text: ${license.url}${acceptance}`;
}

function uniqueLicenses(names: readonly ModelName[]): License[] {
  return [...new Map(names.map((name) => [modelSpec(name).weightsLicense.id, modelSpec(name).weightsLicense])).values()];
}

async function runPull(models: string[], options: PullCommandOptions): Promise<void> {
  const names: ModelName[] = models.includes("all") ? [...MODEL_NAMES] : (models as ModelName[]);
  const licenses = uniqueLicenses(names);
  const acceptingNow = new Set(licenses.filter((license) => options.acceptLicense && !isLicenseAccepted(license)).map((license) => license.id));
  const view = new PullProgressView(options.quiet ?? false);
  const shown = new Set<string>();
  const onProgress = (progress: PullProgress) => {
    const license = modelSpec(progress.model).weightsLicense;
    // The licence is shown once, as its first download starts.
    if (progress.phase !== "verifying" && !shown.has(license.id) && !options.quiet) {
      shown.add(license.id);
      view.message(licenseNotice(license, acceptingNow.has(license.id)));
    }
    view.onProgress(progress);
  };
  const controller = new AbortController();
  const stopListening = abortOnInterrupt(
    controller,
    "\ninterrupted: stopping; the bytes received are kept and the same command resumes (Ctrl-C again to quit at once)",
    (text) => view.message(text),
  );
  let results: PullResult[];
  try {
    results = await pull(names, {
      acceptLicense: options.acceptLicense ?? false,
      ...(options.mirror === undefined ? {} : { mirror: options.mirror }),
      ...(options.checkpoints === undefined ? {} : { checkpointsDir: options.checkpoints }),
      timeout: options.timeout * 1000,
      retries: options.retries,
      onProgress,
      signal: controller.signal,
    });
  } catch (error) {
    throw error instanceof AbortError ? interrupted(error.message) : error;
  } finally {
    view.stop();
    stopListening();
  }
  if (options.json) process.stdout.write(`${JSON.stringify({ checkpoints: results, licenses }, null, 2)}\n`);
  else process.stdout.write(`${results.map(resultLine).join("\n")}\n`);
}

/** Adds the `pull` command. */
export function registerPullCommand(program: Command): void {
  program
    .command("pull")
    .description("download the authors' checkpoints into $ENDOSYNTH_CHECKPOINTS or ./checkpoints (resumable, SHA-256 verified)")
    .addArgument(program.createArgument("<model...>", "models to download").choices([...MODEL_NAMES, "all"]))
    .option("--accept-license", "accept the weights' licence (shown, and remembered: needed once)")
    .option("--mirror <base-url>", "download from this copy instead of the authors' server (<base-url>/<model>-f.pth)")
    .option("--checkpoints <dir>", "folder to download into (default $ENDOSYNTH_CHECKPOINTS or ./checkpoints)")
    .option("--timeout <seconds>", "longest wait for the server: to connect, to answer, between bytes", parsePositiveInteger, 30)
    .option("--retries <n>", "attempts after a network failure, each resuming", parseRetries, 3)
    .option("--json", "print the results as JSON on stdout (progress stays on stderr)")
    .option("-q, --quiet", "no progress output")
    .action((models: string[], options: PullCommandOptions) => runPull(models, options));
}
