/**
 * Atomic file output: everything is written to a temporary file beside the target and renamed over
 * it only once complete, so a failed or interrupted write never leaves a half-written file at the
 * target path and never destroys the file that was there.
 * @module
 */
import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/** A fresh temporary path in the target's own folder (rename is only atomic within one filesystem). */
export function temporaryPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
}

/** Writes `data` (one buffer or several, written in order) to `target` atomically. */
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
}

/**
 * Runs `write(temporaryPath)` and renames the result onto `target` only if it succeeds; on failure
 * the temporary file is removed and `target` is left untouched. For writers that stream to a path.
 */
export async function withAtomicFile<T>(target: string, write: (temporaryPath: string) => Promise<T>): Promise<T> {
  const temporary = temporaryPathFor(target);
  try {
    const result = await write(temporary);
    await rename(temporary, target);
    return result;
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}
