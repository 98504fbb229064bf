/**
 * SHA-256 of files being verified or resumed, and the `<file>.sha256` record beside a checkpoint
 * (the `sha256sum` format, so `sha256sum -c dav1-f.pth.sha256` checks it too).
 * @internal
 * @module
 */
import type { Hash } from "node:crypto";
import { createReadStream, existsSync, readFileSync } from "node:fs";
import { basename } from "node:path";
import { writeFileAtomicSync } from "../io/atomic.js";
import { AbortError, FileFormatError } from "../errors.js";

/** Feeds the first `length` bytes of `path` (all when omitted) to `hash`, reporting bytes read. */
export async function hashFileInto(
  hash: Hash,
  path: string,
  options: { length?: number; onBytes?: (bytes: number) => void; signal?: AbortSignal } = {},
): Promise<void> {
  if (options.length === 0) return;
  const stream = createReadStream(path, { end: options.length === undefined ? undefined : options.length - 1, highWaterMark: 1 << 20 });
  let bytes = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    if (options.signal?.aborted) {
      stream.destroy();
      throw new AbortError(`Hashing ${path} was aborted`, { file: path });
    }
    hash.update(chunk);
    bytes += chunk.byteLength;
    options.onBytes?.(bytes);
  }
}

/** Where the SHA-256 of `file` is recorded. */
export function hashRecordPath(file: string): string {
  return `${file}.sha256`;
}

/**
 * The SHA-256 recorded for `file`, in lower-case hex, or undefined when none is.
 * @throws {@link endosynth!FileFormatError | FileFormatError} when the record exists but does not start with a SHA-256.
 */
export function readHashRecord(file: string): string | undefined {
  const record = hashRecordPath(file);
  if (!existsSync(record)) return undefined;
  const text = readFileSync(record, "utf8");
  const hex = /^([0-9a-fA-F]{64})\b/.exec(text)?.[1];
  if (!hex) {
    throw new FileFormatError(
      `${record} should start with the 64-hex-digit SHA-256 of ${basename(file)} but starts with ${JSON.stringify(text.slice(0, 40))}: ` +
        "remove it and pull again to record a new one",
      { file: record },
    );
  }
  return hex.toLowerCase();
}

/** Records the SHA-256 of `file` beside it, atomically. */
export function writeHashRecord(file: string, sha256: string): void {
  writeFileAtomicSync(hashRecordPath(file), Buffer.from(`${sha256}  ${basename(file)}\n`));
}
