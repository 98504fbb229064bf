/**
 * Reading a whole input file, with the error every reader of the package gives for a file that
 * cannot be read: typed, naming the file and why, instead of Node's bare `ENOENT`.
 * @module
 */
import { readFileSync } from "node:fs";
import { FileFormatError } from "../errors.js";

/** Why a file could not be opened or read, in words: "no such file", "a folder", ... */
export function unreadableReason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "ENOENT") return "no such file";
  if (code === "EISDIR") return "it is a folder, not a file";
  if (code === "EACCES" || code === "EPERM") return "permission denied";
  return (error as Error).message;
}

/**
 * The bytes of a file.
 * @throws {FileFormatError} naming the file when it is missing, a folder or not readable.
 */
export function readFileBytes(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new FileFormatError(`${path}: cannot read the file: ${unreadableReason(error)}`, { file: path, cause: error });
  }
}
