/**
 * The files of a download in progress beside its target `<file>`: `<file>.partial` (the bytes
 * received so far), `<file>.partial.json` (where they came from and the server's validator, to
 * resume only from the same file) and `<file>.partial.lock` (the process downloading it).
 * @internal
 * @module
 */
import { closeSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { isProcessAlive, writeFileAtomicSync } from "../io/atomic.js";
import { DownloadError } from "../errors.js";

/** What was recorded when the partial file's bytes started arriving. */
export interface PartialInfo {
  /** The URL that answered (after redirects). */
  url: string;
  /** The strong ETag, else the Last-Modified date, of the file on the server; absent when it sent neither. */
  validator?: string;
  /** The file's full size, when the server said. */
  total?: number;
}

/** The paths of a download in progress. */
export interface PartialPaths {
  readonly data: string;
  readonly info: string;
  readonly lock: string;
}

/** Where the download of `target` keeps its bytes, its info and its lock. */
export function partialPaths(target: string): PartialPaths {
  return { data: `${target}.partial`, info: `${target}.partial.json`, lock: `${target}.partial.lock` };
}

/** The recorded info, or undefined when absent or unreadable (the bytes are then not trusted). */
export function readPartialInfo(paths: PartialPaths): PartialInfo | undefined {
  try {
    const info = JSON.parse(readFileSync(paths.info, "utf8")) as PartialInfo;
    if (typeof info.url !== "string") return undefined;
    if (info.validator !== undefined && typeof info.validator !== "string") return undefined;
    if (info.total !== undefined && !(Number.isSafeInteger(info.total) && info.total >= 0)) return undefined;
    return info;
  } catch {
    return undefined;
  }
}

export function writePartialInfo(paths: PartialPaths, info: PartialInfo): void {
  writeFileAtomicSync(paths.info, Buffer.from(`${JSON.stringify(info)}\n`));
}

/** Removes the bytes and the info (a finished, failed-verification or restarted download). */
export function removePartial(paths: PartialPaths): void {
  rmSync(paths.data, { force: true });
  rmSync(paths.info, { force: true });
}

function lockOwner(lock: string): number | undefined {
  try {
    const pid = Number(readFileSync(lock, "utf8").trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Takes the lock of a download, so that two pulls never append to the same partial file. A lock
 * left by a process that no longer exists is taken over.
 * @returns the function that releases it.
 * @throws {@link endosynth!DownloadError | DownloadError} while another live process holds it.
 */
export function lockPartial(paths: PartialPaths, url: string): () => void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(paths.lock, "wx");
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => rmSync(paths.lock, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const owner = lockOwner(paths.lock);
      if (owner !== undefined && isProcessAlive(owner)) {
        throw new DownloadError(
          `${paths.data} is being downloaded by process ${owner}${owner === process.pid ? " (this one)" : ""}: wait for it to finish, ` +
            `or remove ${paths.lock} if that process is not endosynth`,
          { url, file: paths.lock },
        );
      }
      rmSync(paths.lock, { force: true });
    }
  }
  throw new DownloadError(`Cannot take the lock ${paths.lock}: another process keeps re-creating it`, { url, file: paths.lock });
}
