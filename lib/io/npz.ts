/**
 * NumPy `.npz` archives: zip files of `.npy` members, as `np.savez` (stored) and
 * `np.savez_compressed` (deflate) write them, zip64 extras included.
 *
 * Stored members are read without copying where their data is aligned; {@link writeNpz} aligns
 * stored members to 64 bytes so that files it writes always read back without a copy.
 *
 * @example
 * ```ts
 * import { readNpz, writeNpz } from "endosynth";
 * const { rgb, depth, seg } = readNpz("sample.npz");
 * writeNpz("copy.npz", { rgb, depth, seg }, { compress: true });
 * ```
 * @module
 */
import { assertOptions, assertString, invalidParameter } from "../is.js";
import type { NdArray } from "../ndarray/ndarray.js";
import { encodeNpy, parseNpy, type ReadNpyOptions } from "./npy.js";
import { readFileBytes } from "./read_file.js";
import { openZip, readZipEntry, ZipWriter } from "./zip.js";

/** Options of {@link writeNpz}. */
export interface WriteNpzOptions {
  /** Deflate every member, as `np.savez_compressed` does. Default `false` (`np.savez`). */
  compress?: boolean;
}

const NPY_SUFFIX = ".npy";
/** Stored members' data start at this alignment; .npy headers keep it, so arrays can be viewed in place. */
const MEMBER_ALIGN = 64;

/**
 * Reads every array of an `.npz` archive, keyed as NumPy keys them (member name without `.npy`).
 * Members that are not `.npy` files are skipped: they cannot be arrays.
 *
 * @param input a path, or the archive's bytes.
 * @throws {FileFormatError} naming the file (and the member), for a file that cannot be read, a
 * broken archive or array.
 */
export function readNpz(input: string | Uint8Array, options?: ReadNpyOptions): Record<string, NdArray> {
  assertOptions("options", options as unknown, ["halfPrecision"]);
  let bytes: Uint8Array;
  let file: string | undefined;
  if (typeof input === "string") {
    bytes = readFileBytes(input);
    file = input;
  } else if (input instanceof Uint8Array) {
    bytes = input;
  } else {
    throw invalidParameter("input", "a path or a Uint8Array", input);
  }
  const archive = openZip(bytes, file);
  const arrays: [string, NdArray][] = [];
  for (const name of archive.entries.keys()) {
    if (!name.endsWith(NPY_SUFFIX)) continue;
    const key = name.slice(0, -NPY_SUFFIX.length);
    arrays.push([key, parseNpy(readZipEntry(archive, name), { file, key }, options)]);
  }
  return Object.fromEntries(arrays);
}

/**
 * Writes arrays to an `.npz` archive that `np.load` reads, one `<key>.npy` member each, streamed
 * member by member and atomically (temporary file + rename: a failure leaves no file behind).
 *
 * @throws {InputError} for an invalid array or options.
 */
export function writeNpz(path: string, arrays: Record<string, NdArray>, options?: WriteNpzOptions): void {
  assertString("path", path);
  if (typeof arrays !== "object" || arrays === null) throw invalidParameter("arrays", "an object of NdArrays", arrays);
  assertOptions("options", options as unknown, ["compress"]);
  const compress = options?.compress ?? false;
  if (typeof compress !== "boolean") throw invalidParameter("options.compress", "a boolean", compress);
  // Encode everything first so a bad array is reported before any file is created.
  const members = Object.entries(arrays).map(([key, array]) => [key, encodeNpy(array, `arrays.${key}`)] as const);
  const writer = new ZipWriter(path);
  try {
    for (const [key, parts] of members) writer.add(`${key}${NPY_SUFFIX}`, parts, compress ? { compress } : { align: MEMBER_ALIGN });
    writer.finish();
  } catch (error) {
    writer.abort();
    throw error;
  }
}
