/**
 * Atomic file output: everything is written to a temporary file beside the target, flushed to disk
 * (fsync), renamed over the target only once complete, and the folder flushed after the rename, so
 * a failed, interrupted or killed write (or a power cut after it returned) never leaves a
 * half-written file at the target path and never destroys the file that was there.
 *
 * Temporary files are named `.<target name>.<pid>.<8 hex digits>.endosynth-tmp` (an extension may
 * follow, for tools that choose a format from it): a failed write removes its own, and
 * {@link removeStaleTemporaries} removes those a killed process left behind.
 *
 * Failures are {@link InputError}s naming the target and why (its folder is missing, a file stands
 * where a folder should, it is a folder, permission denied, ...), never bare `ENOENT`s.
 * @module
 */
import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, openSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { open, readdir, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { EndosynthError, InputError } from "../errors.js";
import { assertString } from "../is.js";

const TEMPORARY_SUFFIX = "endosynth-tmp";
/** `.<name>.<pid>.<8 hex>.endosynth-tmp`, optionally followed by an extension. */
const TEMPORARY_NAME = /^\..+\.(\d+)\.[0-9a-f]{8}\.endosynth-tmp(?:\.[^.]*)?$/;

/** A fresh temporary path in the target's own folder (rename is only atomic within one filesystem). */
export function temporaryPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(4).toString("hex")}.${TEMPORARY_SUFFIX}`);
}

/** The pid of the process that made a temporary file of this name, or `undefined` if it is not one. */
export function temporaryOwner(name: string): number | undefined {
  const match = TEMPORARY_NAME.exec(name);
  return match ? Number(match[1]) : undefined;
}

/** Why writing failed, in words, from the errno code. */
function writeReason(error: NodeJS.ErrnoException): string {
  switch (error.code) {
    case "ENOENT":
      return FOLDER_MISSING;
    case "ENOTDIR":
      return FOLDER_IS_FILE;
    case "EISDIR":
      return TARGET_IS_FOLDER;
    case "EACCES":
    case "EPERM":
      return "permission denied";
    case "EROFS":
      return "the file system is read-only";
    case "ENOSPC":
      return "no space left on the device";
    case "EDQUOT":
      return "the disk quota is exceeded";
    case "ENAMETOOLONG":
      return "its name is too long";
    default:
      return error.message;
  }
}

const FOLDER_MISSING = "its folder does not exist";
const FOLDER_IS_FILE = "a part of its path is a file, not a folder";
const TARGET_IS_FOLDER = "it is a folder";

function cannotWrite(target: string, reason: string, cause?: unknown): InputError {
  return new InputError(`Cannot write ${target}: ${reason}`, { file: target, cause });
}

/**
 * The typed error for a failed write of `target`: an {@link EndosynthError} passes through; a
 * system error becomes an {@link InputError} naming the target and the reason.
 */
export function writeFailure(target: string, error: unknown): Error {
  if (error instanceof EndosynthError || typeof (error as NodeJS.ErrnoException)?.code !== "string") return error as Error;
  return cannotWrite(target, writeReason(error as NodeJS.ErrnoException), error);
}

type Stats = { isDirectory(): boolean } | undefined;

/** Refuses, before any work, a target whose folder is missing or is a file, or that is itself a folder. */
function checkTarget(target: string, folder: Stats, existing: Stats): void {
  if (folder === undefined) throw cannotWrite(target, FOLDER_MISSING);
  if (!folder.isDirectory()) throw cannotWrite(target, FOLDER_IS_FILE);
  if (existing?.isDirectory()) throw cannotWrite(target, TARGET_IS_FOLDER);
}

function statOrUndefined(path: string): Stats {
  try {
    return statSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/**
 * Flushes a folder's entries (a rename is durable only once its folder is). Best effort: some
 * platforms and file systems cannot open or sync a folder, and the rename itself already happened.
 */
export function syncFolder(folder: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(folder, "r");
    fsyncSync(fd);
  } catch {
    // Windows cannot open a folder; some network file systems refuse fsync on one. Nothing to undo.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Renames a complete, already synced temporary file onto its target and syncs the folder.
 * @throws {@link endosynth!InputError | InputError} naming the target when the rename fails (the temporary file is removed).
 */
export function renameIntoPlace(temporary: string, target: string): void {
  try {
    renameSync(temporary, target);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw writeFailure(target, error);
  }
  syncFolder(dirname(target));
}

/**
 * Opens a fresh temporary file for `target` (exclusive create), after checking the target can be
 * written at all.
 * @throws {@link endosynth!InputError | InputError} naming the target when its folder is missing, is a file, or it is a folder.
 */
export function openTemporary(target: string): { fd: number; temporary: string } {
  try {
    checkTarget(target, statOrUndefined(dirname(target)), statOrUndefined(target));
    const temporary = temporaryPathFor(target);
    return { fd: openSync(temporary, "wx"), temporary };
  } catch (error) {
    throw writeFailure(target, error);
  }
}

/** Writes every byte of `bytes` at the descriptor's position (writeSync may write less than asked). */
export function writeAll(fd: number, bytes: Uint8Array): void {
  let written = 0;
  while (written < bytes.byteLength) written += writeSync(fd, bytes, written, bytes.byteLength - written);
}

/**
 * Writes `data` (one buffer or several, written in order) to `target` atomically and durably.
 * @throws {@link endosynth!InputError | InputError} naming the target when it cannot be written; nothing is left behind.
 */
export function writeFileAtomicSync(target: string, data: Uint8Array | readonly Uint8Array[]): void {
  assertString("target", target);
  const parts = data instanceof Uint8Array ? [data] : data;
  const { fd, temporary } = openTemporary(target);
  try {
    try {
      for (const part of parts) writeAll(fd, part);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    rmSync(temporary, { force: true });
    throw writeFailure(target, error);
  }
  renameIntoPlace(temporary, target);
}

async function statOrUndefinedAsync(path: string): Promise<Stats> {
  try {
    return await stat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/**
 * Runs `write(temporaryPath)` and, only if it succeeds, syncs what it wrote, renames it onto
 * `target` and syncs the folder; on failure the temporary file is removed and `target` is left
 * untouched. For writers that stream to a path (sharp, ffmpeg, a worker).
 * @throws {@link endosynth!InputError | InputError} naming the target when it cannot be written (checked before `write` runs);
 * whatever `write` throws otherwise.
 */
export async function withAtomicFile<T>(target: string, write: (temporaryPath: string) => Promise<T>): Promise<T> {
  assertString("target", target);
  try {
    const [folder, existing] = await Promise.all([statOrUndefinedAsync(dirname(target)), statOrUndefinedAsync(target)]);
    checkTarget(target, folder, existing);
  } catch (error) {
    throw writeFailure(target, error);
  }
  const temporary = temporaryPathFor(target);
  try {
    const result = await write(temporary);
    const handle = await open(temporary, "r+");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, target);
    syncFolder(dirname(target));
    return result;
  } catch (error) {
    await rm(temporary, { force: true });
    throw writeFailure(target, error);
  }
}

/** Whether a process with this pid exists on this machine (signal 0 checks without sending anything). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

/**
 * Deletes the temporary files (or folders) in `dir` that an atomic write of this package left
 * behind when its process was killed: those named as {@link temporaryPathFor} names them whose
 * owner pid no longer runs. Those of running processes, this one included, are kept: they may be
 * in the middle of a write. A missing `dir` has nothing to clean.
 *
 * @returns the paths removed.
 * @example
 * ```ts
 * await removeStaleTemporaries(cacheDir); // at start-up, before writing there
 * ```
 */
export async function removeStaleTemporaries(dir: string): Promise<string[]> {
  assertString("dir", dir);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw writeFailure(dir, error);
  }
  const removed: string[] = [];
  for (const name of names) {
    const owner = temporaryOwner(name);
    if (owner === undefined || owner === process.pid || isProcessAlive(owner)) continue;
    const path = join(dir, name);
    await rm(path, { force: true, recursive: true });
    removed.push(path);
  }
  return removed;
}
