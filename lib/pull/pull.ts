/**
 * `pull(models)`: the authors' checkpoints, downloaded into the folder {@link load} reads them
 * from. The weights' licence must be accepted once (remembered); downloads resume after an
 * interruption, are verified by SHA-256 (recorded beside the checkpoint after the first download,
 * since the authors publish none, and compared by every later pull) and appear only once complete.
 *
 * @example
 * ```ts
 * import { pull, load } from "endosynth";
 * await pull("dav1", { acceptLicense: true, onProgress: (p) => console.log(p.phase, p.bytes, p.totalBytes) });
 * const model = await load("dav1");
 * ```
 * @module
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { ChecksumError, LicenseNotAcceptedError } from "../errors.js";
import { assertAbortSignal, assertBoolean, assertFunction, assertIntegerInRange, assertOneOf, assertOptions, assertString, invalidParameter } from "../is.js";
import { checkpointPath } from "../model.js";
import { MODEL_NAMES, type ModelName, type ModelSpec, modelSpec } from "../models/registry.js";
import type { Progress } from "../progress.js";
import { downloadFile } from "./download.js";
import { hashFileInto, hashRecordPath, readHashRecord, writeHashRecord } from "./hash.js";
import { isLicenseAccepted, licenseRecordPath, recordLicenseAcceptance } from "./license.js";

/** Progress of one checkpoint's pull. */
export interface PullProgress extends Progress {
  /**
   * `"verifying"`: hashing a checkpoint already present; `"resuming"`: hashing the bytes an
   * interrupted download left; `"downloading"`: bytes arriving.
   */
  phase: "verifying" | "resuming" | "downloading";
  /** The model whose checkpoint this is. */
  model: ModelName;
  /** The checkpoint's path. */
  file: string;
  /** Bytes done (in `"downloading"`, counting those kept from an interrupted download). */
  bytes: number;
  /** The file's size, when known. */
  totalBytes?: number;
}

/** Options of {@link pull}. */
export interface PullOptions {
  /**
   * Accept the weights' licence (`modelSpec(name).weightsLicense`). Needed once: the acceptance is
   * remembered in `licenses.json` in the config folder. Without it, a pull that has something to
   * download fails with a {@link LicenseNotAcceptedError} before any request.
   */
  acceptLicense?: boolean;
  /** Where the checkpoints go; default `$ENDOSYNTH_CHECKPOINTS` or `./checkpoints`, where {@link load} looks. */
  checkpointsDir?: string;
  /**
   * Base URL of a copy of the checkpoints (e.g. a hospital intranet server) to download from
   * instead of the authors' server: the file name is appended (`<mirror>/dav1-f.pth`).
   */
  mirror?: string;
  /** Milliseconds any wait for the server may last (connecting, its answer, the next bytes); default 30000. */
  timeout?: number;
  /** Further attempts, each resuming, after a network failure, a timeout or a 5xx answer; default 3. */
  retries?: number;
  /**
   * Where accepted licences are remembered; default `%APPDATA%\endosynth` on Windows, else
   * `$XDG_CONFIG_HOME/endosynth` or `~/.config/endosynth`.
   */
  configDir?: string;
  /** Receives bytes hashed and downloaded. */
  onProgress?: (progress: PullProgress) => void;
  /** Cancels the pull; bytes already received are kept and the next pull resumes from them. */
  signal?: AbortSignal;
}

/** What {@link pull} did for one model. */
export interface PullResult {
  /** The model. */
  model: ModelName;
  /** The checkpoint's path. */
  file: string;
  /** `"downloaded"`, or `"present"`: it was already there and verified, nothing was downloaded. */
  status: "downloaded" | "present";
  /** SHA-256 of the checkpoint, hex. */
  sha256: string;
  /**
   * `"matched"`: it equals the one recorded in `<file>.sha256` by an earlier pull;
   * `"recorded"`: none was recorded, this one now is (later pulls compare against it).
   */
  sha256Check: "matched" | "recorded";
  /** Size of the checkpoint in bytes. */
  size: number;
  /** Bytes received from the network (0 when present). */
  downloadedBytes: number;
  /** Bytes kept from an earlier, interrupted download (0 when none). */
  resumedFrom: number;
  /** The URL that served it (after redirects), when downloaded. */
  url?: string;
  /** Seconds this model's pull took. */
  seconds: number;
}

const PULL_OPTIONS = ["acceptLicense", "checkpointsDir", "mirror", "timeout", "retries", "configDir", "onProgress", "signal"] as const;
const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_RETRIES = 3;

/** The URL a checkpoint is downloaded from: the authors' link, or the mirror with the file name appended. */
export function checkpointDownloadUrl(spec: ModelSpec, mirror?: string): URL {
  if (mirror === undefined) return new URL(spec.checkpointUrl);
  const base = new URL(mirror);
  if (!base.pathname.endsWith("/")) base.pathname += "/";
  return new URL(encodeURIComponent(spec.checkpointFile), base);
}

function isHttpUrl(value: string): boolean {
  try {
    return ["http:", "https:"].includes(new URL(value).protocol);
  } catch {
    return false;
  }
}

function validatePull(models: unknown, options: PullOptions): ModelName[] {
  const list: unknown[] = Array.isArray(models) ? models : [models];
  if (list.length === 0) throw invalidParameter("models", "a model name or a non-empty array of them", models);
  list.forEach((name, index) => assertOneOf(Array.isArray(models) ? `models[${index}]` : "models", name, MODEL_NAMES));
  assertOptions("options", options, PULL_OPTIONS);
  if (options.acceptLicense !== undefined) assertBoolean("options.acceptLicense", options.acceptLicense);
  if (options.checkpointsDir !== undefined) assertString("options.checkpointsDir", options.checkpointsDir);
  if (options.mirror !== undefined && !isHttpUrl(options.mirror)) throw invalidParameter("options.mirror", "an http or https base URL", options.mirror);
  if (options.timeout !== undefined) assertIntegerInRange("options.timeout", options.timeout, 1, 3_600_000);
  if (options.retries !== undefined) assertIntegerInRange("options.retries", options.retries, 0, 100);
  if (options.configDir !== undefined) assertString("options.configDir", options.configDir);
  if (options.onProgress !== undefined) assertFunction("options.onProgress", options.onProgress);
  if (options.signal !== undefined) assertAbortSignal("options.signal", options.signal);
  return [...new Set(list as ModelName[])];
}

/** Where `name`'s checkpoint goes: as {@link load} finds it, or in `checkpointsDir`. */
function targetPath(name: ModelName, checkpointsDir: string | undefined): string {
  return checkpointPath(name, checkpointsDir === undefined ? undefined : join(checkpointsDir, modelSpec(name).checkpointFile));
}

/**
 * Every licence of the checkpoints to download must be accepted, now or earlier, before the
 * first request: a refusal costs the user no bandwidth and leaves no partial file.
 */
function assertLicensesAccepted(toDownload: readonly ModelName[], options: PullOptions): void {
  for (const name of toDownload) {
    const license = modelSpec(name).weightsLicense;
    if (isLicenseAccepted(license, options.configDir)) continue;
    if (options.acceptLicense) {
      recordLicenseAcceptance(license, options.configDir);
      continue;
    }
    throw new LicenseNotAcceptedError(
      `The ${name} weights are published under the ${license.name}: ${license.summary}. Read them at ${license.url}; ` +
        `to accept them pass acceptLicense: true (endosynth pull --accept-license), remembered in ${licenseRecordPath(options.configDir)}. ` +
        "Nothing was downloaded.",
      { key: "options.acceptLicense", licenseUrl: license.url },
    );
  }
}

/**
 * Downloads the authors' checkpoints of `models` (or from `options.mirror`) into the checkpoints
 * folder, resuming interrupted downloads; checkpoints already there are verified, not downloaded.
 * @throws {@link endosynth!InputError | InputError} for bad arguments (synchronously checked, before anything is done).
 * @throws {@link endosynth!LicenseNotAcceptedError | LicenseNotAcceptedError} when the weights' licence was never accepted; nothing is downloaded.
 * @throws {@link endosynth!DownloadError | DownloadError} for an error answer (404...), a refused or cut connection after the retries.
 * @throws {@link endosynth!DownloadTimeoutError | DownloadTimeoutError} for a server that stopped answering, after the retries.
 * @throws {@link endosynth!ChecksumError | ChecksumError} for a checkpoint whose SHA-256 differs from the recorded one (a download
 * with the wrong hash is deleted, never put in place).
 * @throws {@link endosynth!AbortError | AbortError} when `options.signal` fires; received bytes are kept for the next pull.
 */
export function pull(models: ModelName | readonly ModelName[], options: PullOptions = {}): Promise<PullResult[]> {
  const names = validatePull(models, options);
  return pullAll(names, options);
}

async function pullAll(names: readonly ModelName[], options: PullOptions): Promise<PullResult[]> {
  const files = new Map(names.map((name) => [name, targetPath(name, options.checkpointsDir)]));
  assertLicensesAccepted(
    names.filter((name) => !existsSync(files.get(name)!)),
    options,
  );
  const results: PullResult[] = [];
  for (const name of names) results.push(await pullOne(name, files.get(name)!, options));
  return results;
}

async function pullOne(model: ModelName, file: string, options: PullOptions): Promise<PullResult> {
  const started = performance.now();
  const recorded = readHashRecord(file);
  const seconds = () => (performance.now() - started) / 1000;
  if (existsSync(file)) {
    const sha256 = await verifyPresent(model, file, recorded, options);
    return { model, file, status: "present", sha256, sha256Check: recorded ? "matched" : "recorded", size: statSync(file).size, downloadedBytes: 0, resumedFrom: 0, seconds: seconds() };
  }
  mkdirSync(dirname(file), { recursive: true });
  const downloaded = await downloadFile({
    url: checkpointDownloadUrl(modelSpec(model), options.mirror),
    target: file,
    expectedSha256: recorded,
    timeoutMs: options.timeout ?? DEFAULT_TIMEOUT_MS,
    retries: options.retries ?? DEFAULT_RETRIES,
    signal: options.signal,
    onProgress: (progress) =>
      options.onProgress?.({
        phase: progress.phase === "hashing" ? "resuming" : "downloading",
        model,
        file,
        bytes: progress.bytes,
        totalBytes: progress.totalBytes,
        fraction: progress.totalBytes ? progress.bytes / progress.totalBytes : undefined,
      }),
  });
  if (!recorded) writeHashRecord(file, downloaded.sha256);
  const { sha256, size, downloadedBytes, resumedFrom, url } = downloaded;
  return { model, file, status: "downloaded", sha256, sha256Check: recorded ? "matched" : "recorded", size, downloadedBytes, resumedFrom, url, seconds: seconds() };
}

/** Hashes a checkpoint already in place: compared with its record, or recorded when it has none. */
async function verifyPresent(model: ModelName, file: string, recorded: string | undefined, options: PullOptions): Promise<string> {
  const totalBytes = statSync(file).size;
  const hash = createHash("sha256");
  await hashFileInto(hash, file, {
    signal: options.signal,
    onBytes: (bytes) => options.onProgress?.({ phase: "verifying", model, file, bytes, totalBytes, fraction: totalBytes ? bytes / totalBytes : 1 }),
  });
  const sha256 = hash.digest("hex");
  if (recorded === undefined) writeHashRecord(file, sha256);
  else if (sha256 !== recorded) {
    throw new ChecksumError(
      `${file} has SHA-256 ${sha256}, but ${recorded} was recorded in ${hashRecordPath(file)} when it was downloaded: ` +
        `it is damaged or was replaced. Delete it and pull again (and delete the .sha256 file too if you replaced it on purpose)`,
      { file, expected: recorded, actual: sha256 },
    );
  }
  return sha256;
}
