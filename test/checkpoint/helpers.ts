/** Helpers shared by the checkpoint tests. */
import { readFileSync } from "node:fs";
import { openZip, readZipEntry } from "../../lib/io/zip_reader.js";
import { ZipWriter } from "../../lib/io/zip_writer.js";

/**
 * Copies the zip archive at `source` to `target` member by member, letting `edit` drop a member
 * (return `undefined`) or replace its bytes: how the tests make damaged checkpoints.
 */
export function rewriteZip(source: string, target: string, edit: (name: string, data: Uint8Array) => Uint8Array | undefined): void {
  const archive = openZip(readFileSync(source), source);
  const writer = new ZipWriter(target);
  for (const name of archive.entries.keys()) {
    const data = edit(name, readZipEntry(archive, name));
    if (data !== undefined) writer.add(name, data, { align: 64 });
  }
  writer.finish();
}

/** Bytes from a mix of byte values and latin1 strings, for spelling pickles and headers by hand. */
export function bytesOf(...parts: (number[] | string | Uint8Array)[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts.map((part) => (typeof part === "string" ? Buffer.from(part, "latin1") : Buffer.from(part as Uint8Array)))));
}
