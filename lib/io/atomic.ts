/**
 * Atomic file output: everything is written to a temporary file beside the target, flushed to disk
 * (fsync), and renamed over the target only once complete, and the folder is flushed too so the
 * rename itself survives a power cut. A failed, interrupted or killed write never leaves a
 * half-written file at the target path and never destroys the file that was there.
 *
 * Temporary files are named `.<target name>.<pid>.<random>.endosynth-tmp`: recognisable, so that
 * {@link removeStaleTemporaries} can delete those of processes that died before cleaning up.
 * @module
 */
import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, openSync, readdirSync, renameSync, rmSync, writeSync } from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

const TEMPORARY_SUFFIX = ".endosynth-tmp";
const TEMPORARY_NAME = /^\..+\.(\d+)\.[0-9a-f]{8}\.endosynth-tmp$/;

/** A fresh temporary path in the target's own folder (rename is only atomic within one filesystem). */
export function temporaryPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(4).toString("hex")}${TEMPORARY_SUFFIX}`);
}

/** The pid that made the temporary file or folder `name`, or undefined when it is not one of ours. */
export function temporaryOwner(name: string): number | undefined {
  const match = TEMPORARY_NAME.exec(name);
  return match ? Number(match[1]) : undefined;
}

/** Whether process `pid` is alive on this machine (a pid we may not signal is alive). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Deletes the temporary files and folders in `dir` left by processes that are no longer running
 * (killed mid-write); those of live processes, this one included, are left alone. Returns the
 * paths removed. A missing folder has none.
 */
export function removeStaleTemporaries(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const owner = temporaryOwner(name);
    if (owner === undefined || owner === process.pid || isProcessAlive(owner)) continue;
    rmSync(join(dir, name), { recursive: true, force: true });
    removed.push(join(dir, name));
  }
  return removed;
}

/** Flushes a folder's entries (a rename into it) to disk; a no-op where folders cannot be opened (Windows). */
export function fsyncFolderSync(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, "r");
  } catch {
    return;
  }
  try {
    fsyncSync(fd);
  } catch {
    // Some filesystems refuse fsync on folders; the rename is as durable as they allow.
  } finally {
    closeSync(fd);
  }
}

/** {@link fsyncFolderSync}, off the event loop's thread. */
export async function fsyncFolder(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, "r");
  } catch {
    return;
  }
  try {
    await handle.sync();
  } catch {
    // As above.
  } finally {
    await handle.close();
  }
}

/** Writes `data` (one buffer or several, written in order) to `target` atomically and durably. */
export function writeFileAtomicSync(target: string, data: Uint8Array | readonly Uint8Array[]): void {
  const parts = data instanceof Uint8Array ? [data] : data;
  const temporary = temporaryPathFor(target);
  try {
    const fd = openSync(temporary, "wx");
    try {
      for (const part of parts) {
        let written = 0;
        while (written < part.byteLength) written += writeSync(fd, part, written, part.byteLength - written);
      }
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, target);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
  fsyncFolderSync(dirname(target));
}

/**
 * Runs `write(temporaryPath)`, flushes what it wrote, and renames it onto `target` only if it
 * succeeds; on failure the temporary file is removed and `target` is left untouched. For writers
 * that stream to a path (ffmpeg, sharp).
 */
export async function withAtomicFile<T>(target: string, write: (temporaryPath: string) => Promise<T>): Promise<T> {
  const temporary = temporaryPathFor(target);
  let result: T;
  try {
    result = await write(temporary);
    const handle = await open(temporary, "r+");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, target);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  await fsyncFolder(dirname(target));
  return result;
}
