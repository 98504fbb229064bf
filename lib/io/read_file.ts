/**
 * Reading a whole input file, with the error every reader of the package gives for a file that
 * cannot be read: typed, naming the file and why, instead of Node's bare `ENOENT`.
 * @module
 */
import { constants as bufferConstants } from "node:buffer";
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { FileFormatError } from "../errors.js";

/** fs.readSync moves at most 2 GiB - 1 bytes per call (and fs.readFileSync no file above 2 GiB). */
const READ_SLICE = 0x7fffffff;

/** Why a file could not be opened or read, in words: "no such file", "a folder", ... */
export function unreadableReason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "ENOENT") return "no such file";
  if (code === "EISDIR") return "it is a folder, not a file";
  if (code === "EACCES" || code === "EPERM") return "permission denied";
  if (code === "ENOTDIR") return "a part of its path is a file, not a folder";
  return (error as Error).message;
}

function unreadable(path: string, error: unknown): FileFormatError {
  return new FileFormatError(`${path}: cannot read the file: ${unreadableReason(error)}`, { file: path, cause: error });
}

/**
 * The bytes of a file, in a buffer of their own (offset 0, so aligned for any element type); up to
 * the largest buffer Node.js can hold (4 GiB in Node 20), where `fs.readFileSync` stops at 2 GiB.
 * @throws {@link endosynth!FileFormatError | FileFormatError} naming the file when it is missing, a folder, not readable or too large.
 */
export function readFileBytes(path: string): Uint8Array {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (error) {
    throw unreadable(path, error);
  }
  try {
    const stats = fstatSync(fd);
    if (stats.isDirectory()) throw new FileFormatError(`${path}: cannot read the file: it is a folder, not a file`, { file: path });
    if (!stats.isFile()) throw new FileFormatError(`${path}: cannot read the file: it is not a regular file (a device or a pipe?)`, { file: path });
    if (stats.size > bufferConstants.MAX_LENGTH) {
      throw new FileFormatError(`${path}: cannot read the file: it is ${stats.size} bytes, more than one buffer can hold in this Node.js (${bufferConstants.MAX_LENGTH})`, {
        file: path,
      });
    }
    const bytes = Buffer.allocUnsafeSlow(stats.size);
    for (let filled = 0; filled < bytes.length; ) {
      const count = readSync(fd, bytes, filled, Math.min(READ_SLICE, bytes.length - filled), filled);
      if (count === 0) throw new FileFormatError(`${path}: the file shrank while it was read (${filled} of ${bytes.length} bytes)`, { file: path });
      filled += count;
    }
    return bytes;
  } catch (error) {
    throw error instanceof FileFormatError ? error : unreadable(path, error);
  } finally {
    closeSync(fd);
  }
}
