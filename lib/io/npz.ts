/**
 * NumPy `.npz` archives: zip files of `.npy` members, as `np.savez` (stored) and
 * `np.savez_compressed` (deflate) write them, zip64 extras included.
 *
 * Every member is checked before it costs memory: its .npy header must declare exactly the size
 * the archive declares (so a deflated member never inflates past either), and its CRC-32 must
 * match. Archives are read from disk member by member, so their total size is not limited by what
 * one buffer can hold (zip64 archives over 4 GiB read like any other). From bytes, stored members
 * are read without copying where their data is aligned; {@link writeNpz} aligns stored members to
 * 64 bytes so that files it writes always read back without a copy.
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
import { FileFormatError } from "../errors.js";
import { encodeNpy, MAX_NPY_HEADER_BYTES, npyFileLength, type NpySource, parseNpy, type ReadNpyOptions } from "./npy.js";
import { openZip, openZipFile, readZipEntry, readZipEntryHead, type ZipArchive } from "./zip_reader.js";
import { ZipWriter } from "./zip_writer.js";

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
 * @throws {@link endosynth!FileFormatError | FileFormatError} naming the file (and the member), for a file that cannot be read, a
 * broken archive or array.
 */
export function readNpz(input: string | Uint8Array, options?: ReadNpyOptions): Record<string, NdArray> {
  assertOptions("options", options as unknown, ["halfPrecision"]);
  let archive: ZipArchive;
  if (typeof input === "string") archive = openZipFile(input);
  else if (input instanceof Uint8Array) archive = openZip(input);
  else throw invalidParameter("input", "a path or a Uint8Array", input);
  try {
    const arrays: [string, NdArray][] = [];
    for (const name of archive.entries.keys()) {
      if (!name.endsWith(NPY_SUFFIX)) continue;
      const key = name.slice(0, -NPY_SUFFIX.length);
      arrays.push([key, readMember(archive, name, { file: archive.file, key }, options)]);
    }
    return Object.fromEntries(arrays);
  } finally {
    archive.close();
  }
}

/**
 * One `.npy` member: its header is read first (inflating only what it needs) and the size it
 * declares must be the archive's, so the member is never inflated past what its array needs.
 */
function readMember(archive: ZipArchive, name: string, source: NpySource, options: ReadNpyOptions | undefined): NdArray {
  const declared = archive.entries.get(name)!.size;
  const needed = npyFileLength(readZipEntryHead(archive, name, MAX_NPY_HEADER_BYTES), source);
  if (needed !== declared) {
    throw new FileFormatError(
      `${source.file ? `${source.file}, ` : ""}member ${source.key}: its .npy header needs ${needed} bytes but the archive declares ${declared}`,
      { file: source.file, key: source.key },
    );
  }
  return parseNpy(readZipEntry(archive, name), source, options);
}

/**
 * Writes arrays to an `.npz` archive that `np.load` reads, one `<key>.npy` member each, streamed
 * member by member and atomically (temporary file + rename: a failure leaves no file behind).
 *
 * @throws {@link endosynth!InputError | InputError} for an invalid array or options.
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
