/**
 * A resumable download of one URL to one file. Bytes arrive in `<file>.partial`; an interrupted
 * download continues from where it stopped (HTTP Range, guarded by If-Range with the server's
 * validator so a file changed on the server restarts from zero), network failures are retried
 * with backoff, the SHA-256 is computed on the way, and only a complete file whose hash is the
 * expected one is renamed into place (fsynced first, the folder fsynced after).
 * @internal
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import { closeSync, existsSync, fsyncSync, openSync, statSync } from "node:fs";
import { type FileHandle, open, rename } from "node:fs/promises";
import type { IncomingMessage } from "node:http";
import { dirname } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { AbortError, ChecksumError, DownloadError, DownloadTimeoutError } from "../errors.js";
import { connectionError, get } from "./http.js";
import { hashFileInto } from "./hash.js";
import { lockPartial, type PartialInfo, type PartialPaths, partialPaths, readPartialInfo, removePartial, writePartialInfo } from "./partial.js";

/** Bytes of a file verified or received so far. */
export interface ByteProgress {
  /** `"hashing"`: the bytes already on disk (a resumed partial file); `"downloading"`: bytes arriving. */
  phase: "hashing" | "downloading";
  /** Bytes of the file done, counting those kept from an earlier attempt. */
  bytes: number;
  /** The file's size, when known. */
  totalBytes?: number;
}

/** What to download where. */
export interface DownloadOptions {
  url: URL;
  /** The final path; nothing is written there unless the whole file arrived and verified. */
  target: string;
  /** The SHA-256 (hex) the file must have; a file with another is deleted, not installed. */
  expectedSha256?: string;
  /** Milliseconds any wait for the server may last. */
  timeoutMs: number;
  /** Further attempts after a network failure, a timeout or a 5xx answer, each resuming. */
  retries: number;
  signal?: AbortSignal;
  onProgress?: (progress: ByteProgress) => void;
}

/** What a download did. */
export interface DownloadResult {
  /** SHA-256 of the installed file, hex. */
  sha256: string;
  /** Its size in bytes. */
  size: number;
  /** Bytes received from the network by this call. */
  downloadedBytes: number;
  /** Bytes already on disk from an earlier, interrupted download that were kept (0 when none). */
  resumedFrom: number;
  /** The URL that served the file, after redirects. */
  url: string;
}

/** Where the download stands: the bytes in the partial file, their hash, and where they came from. */
interface Progressing {
  offset: number;
  hash: Hash;
  info?: PartialInfo;
  downloadedBytes: number;
  /** Bytes of an earlier call's download kept (0 once restarted from zero). */
  resumedFrom: number;
}

/** Downloads `options.url` to `options.target`, resuming a partial download left there. */
export async function downloadFile(options: DownloadOptions): Promise<DownloadResult> {
  const paths = partialPaths(options.target);
  const release = lockPartial(paths, options.url.href);
  try {
    const state = await resumableState(paths, options);
    await receiveWithRetries(paths, state, options);
    const sha256 = state.hash.digest("hex");
    if (options.expectedSha256 !== undefined && sha256 !== options.expectedSha256) {
      removePartial(paths);
      throw new ChecksumError(
        `The file downloaded from ${state.info?.url ?? options.url.href} has SHA-256 ${sha256}, not the expected ${options.expectedSha256}: ` +
          `it was deleted, not installed as ${options.target}`,
        { file: options.target, expected: options.expectedSha256, actual: sha256 },
      );
    }
    await installFile(paths.data, options.target);
    removePartial(paths);
    return { sha256, size: state.offset, downloadedBytes: state.downloadedBytes, resumedFrom: state.resumedFrom, url: state.info?.url ?? options.url.href };
  } finally {
    release();
  }
}

/**
 * Bytes left by an earlier call are resumed only with the server's validator recorded beside them
 * (without it a file changed on the server meanwhile could not be told apart); they are hashed
 * again because the hash state does not survive the process. Retries within one call resume
 * without a validator too: the bytes are seconds old.
 */
async function resumableState(paths: PartialPaths, options: DownloadOptions): Promise<Progressing> {
  const info = existsSync(paths.data) ? readPartialInfo(paths) : undefined;
  const size = info ? statSync(paths.data).size : 0;
  if (!info?.validator || (info.total !== undefined && size > info.total)) {
    removePartial(paths);
    return { offset: 0, hash: createHash("sha256"), downloadedBytes: 0, resumedFrom: 0 };
  }
  const hash = createHash("sha256");
  await hashFileInto(hash, paths.data, {
    length: size,
    signal: options.signal,
    onBytes: (bytes) => options.onProgress?.({ phase: "hashing", bytes, totalBytes: info.total }),
  });
  return { offset: size, hash, info, downloadedBytes: 0, resumedFrom: size };
}

/**
 * Retried: the connection failed or was cut, the server stopped sending, or it answered 5xx.
 * Not retried: an answer that will not change (404, 403...), a failure to write the file
 * (errors naming a file), a checksum mismatch, an abort.
 */
function isRetryable(error: unknown): boolean {
  if (error instanceof DownloadTimeoutError) return true;
  if (!(error instanceof DownloadError) || error.file !== undefined) return false;
  return error.status === undefined || error.status >= 500;
}

/** Waits before retry `attempt` (1, 2, ...): 0.5 s, 1 s, 2 s, ... up to 8 s. */
async function backoff(attempt: number, signal: AbortSignal | undefined): Promise<void> {
  try {
    await sleep(Math.min(500 * 2 ** (attempt - 1), 8000), undefined, { signal });
  } catch {
    throw new AbortError("The download was aborted");
  }
}

async function receiveWithRetries(paths: PartialPaths, state: Progressing, options: DownloadOptions): Promise<void> {
  for (let failures = 0; ; ) {
    try {
      if (await receiveRest(paths, state, options)) return;
    } catch (error) {
      if (!isRetryable(error) || failures >= options.retries) throw error;
      failures++;
      await backoff(failures, options.signal);
    }
  }
}

/** The first and total of `Content-Range: bytes <first>-<last>/<total|*>`. */
function parseContentRange(header: string | undefined): { first: number; total?: number } | undefined {
  const match = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(header?.trim() ?? "");
  if (!match) return undefined;
  return { first: Number(match[1]), total: match[2] === "*" ? undefined : Number(match[2]) };
}

/** A strong ETag, else Last-Modified: what If-Range may carry (weak ETags are not allowed there). */
function validatorOf(response: IncomingMessage): string | undefined {
  const etag = response.headers.etag;
  if (etag && !etag.startsWith("W/")) return etag;
  return response.headers["last-modified"];
}

function contentLength(response: IncomingMessage): number | undefined {
  const header = response.headers["content-length"];
  return header !== undefined && /^\d+$/.test(header) ? Number(header) : undefined;
}

function restartFromZero(paths: PartialPaths, state: Progressing): void {
  removePartial(paths);
  state.offset = 0;
  state.resumedFrom = 0;
  state.hash = createHash("sha256");
  delete state.info;
}

function httpError(url: URL, response: IncomingMessage): DownloadError {
  const status = response.statusCode ?? 0;
  const reason = status === 404 ? "not found" : (response.statusMessage ?? "error");
  const hint = status === 404 ? " (with --mirror, check that the mirror holds this file)" : "";
  return new DownloadError(`${url.href} answered HTTP ${status} (${reason})${hint}`, { url: url.href, status });
}

/**
 * One request for the bytes not yet held, written to the partial file as they arrive.
 * @returns true when the file is complete, false when it must start again from zero (the server
 * answered a range other than the one asked for).
 */
async function receiveRest(paths: PartialPaths, state: Progressing, options: DownloadOptions): Promise<boolean> {
  if (state.info?.total !== undefined && state.offset === state.info.total) return true;
  const opened = await get(options.url, { offset: state.offset, validator: state.info?.validator, timeoutMs: options.timeoutMs, signal: options.signal });
  try {
    const { response, url } = opened;
    if (response.statusCode === 200) {
      // The whole file: Range was ignored, or If-Range said the file changed since the bytes held.
      restartFromZero(paths, state);
      state.info = { url: url.href, validator: validatorOf(response), total: contentLength(response) };
    } else if (response.statusCode === 206) {
      const range = parseContentRange(response.headers["content-range"]);
      if (range?.first !== state.offset) {
        restartFromZero(paths, state);
        return false;
      }
      state.info = { ...state.info, url: url.href, total: range.total ?? state.info?.total };
    } else if (response.statusCode === 416 && state.offset > 0) {
      restartFromZero(paths, state);
      return false;
    } else {
      throw httpError(url, response);
    }
    writePartialInfo(paths, state.info);
    await receiveBody(paths.data, response, url, state, options);
    return true;
  } finally {
    opened.close();
  }
}

async function receiveBody(path: string, response: IncomingMessage, url: URL, state: Progressing, options: DownloadOptions): Promise<void> {
  const total = state.info?.total;
  const file = await open(path, state.offset === 0 ? "w" : "a");
  try {
    const chunks = response[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    for (;;) {
      const next = await nextChunk(chunks, url);
      if (next.done) break;
      await appendChunk(file, path, next.value, url);
      state.hash.update(next.value);
      state.offset += next.value.byteLength;
      state.downloadedBytes += next.value.byteLength;
      options.onProgress?.({ phase: "downloading", bytes: state.offset, totalBytes: total });
    }
    await file.sync();
  } finally {
    await file.close();
  }
  if (total !== undefined && state.offset !== total) {
    throw new DownloadError(`${url.href} closed the connection after ${state.offset} of ${total} bytes`, { url: url.href });
  }
}

async function nextChunk(chunks: AsyncIterator<Buffer>, url: URL): Promise<IteratorResult<Buffer>> {
  try {
    return await chunks.next();
  } catch (error) {
    if (error instanceof AbortError || error instanceof DownloadTimeoutError) throw error;
    throw connectionError(url, error as Error);
  }
}

async function appendChunk(file: FileHandle, path: string, chunk: Buffer, url: URL): Promise<void> {
  try {
    await file.appendFile(chunk);
  } catch (error) {
    throw new DownloadError(`Cannot write ${path}: ${(error as Error).message}`, { url: url.href, file: path, cause: error });
  }
}

/** Renames the complete file into place; the folder is fsynced so the rename survives a power cut. */
async function installFile(from: string, to: string): Promise<void> {
  await rename(from, to);
  fsyncDirectory(dirname(to));
}

function fsyncDirectory(directory: string): void {
  // Windows cannot open a folder for fsync; its rename is durable through NTFS's journal instead.
  if (process.platform === "win32") return;
  const fd = openSync(directory, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
