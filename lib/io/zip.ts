/**
 * A small zip reader and writer, just what NumPy `.npz` archives and PyTorch `.pth` checkpoints need.
 *
 * Why our own: stored entries are handed out as zero-copy views of the archive's bytes (so arrays
 * can be viewed in place when their data is aligned), and the writer streams entry by entry to a
 * file descriptor, pads local headers so each entry's data starts at a chosen alignment (as
 * `torch.save` does with 64), and switches to zip64 records when sizes or offsets need them, so
 * multi-GB archives never sit in memory. No zip package on npm does all three.
 *
 * Supported: methods 0 (stored) and 8 (deflate), zip64 (end-of-central-directory record, extra
 * fields in local and central headers). Not supported: encryption, multi-disk archives.
 *
 * @example
 * ```ts
 * import { readFileSync } from "node:fs";
 * const archive = openZip(readFileSync("model.pth"), "model.pth");
 * for (const entry of archive.entries.values()) console.log(entry.name, entry.size);
 * const bytes = readZipEntry(archive, "archive/data.pkl");
 * ```
 * @module
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { crc32, deflateRawSync, inflateRawSync } from "node:zlib";
import { FileFormatError, InputError } from "../errors.js";
import { assertOptions, invalidParameter, isInteger } from "../is.js";
import { temporaryPathFor } from "./atomic.js";

/** One member of a zip archive, as its central directory describes it. */
export interface ZipEntry {
  /** Path of the member inside the archive (UTF-8). */
  readonly name: string;
  /** Compression method: 0 stored, 8 deflate. */
  readonly method: number;
  /** Size of the member's data in the archive, in bytes. */
  readonly compressedSize: number;
  /** Size of the member once decompressed, in bytes. */
  readonly size: number;
  /** CRC-32 of the decompressed data. */
  readonly crc32: number;
  /** Absolute offset of the member's data in the archive (after its local header). */
  readonly dataOffset: number;
}

/** An opened archive: its bytes and the members found in its central directory. */
export interface ZipArchive {
  /** The file it came from, for error messages. */
  readonly file?: string;
  /** The whole archive. */
  readonly bytes: Uint8Array;
  /** Members by name, in central-directory order. */
  readonly entries: ReadonlyMap<string, ZipEntry>;
}

/** Options of {@link readZipEntry}. */
export interface ReadZipEntryOptions {
  /**
   * Check the member's CRC-32. Default: `true` for deflated members (negligible next to inflating),
   * `false` for stored ones, whose zero-copy view would otherwise cost a full pass over the data
   * (~0.3 ms per MB here, a sixth of the time it takes to read a sample).
   */
  verifyCrc?: boolean;
}

const STORED = 0;
const DEFLATE = 8;

const LOCAL_HEADER = 0x04034b50;
const CENTRAL_HEADER = 0x02014b50;
const END_OF_CENTRAL_DIRECTORY = 0x06054b50;
const ZIP64_END_OF_CENTRAL_DIRECTORY = 0x06064b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EXTRA = 0x0001;
/** Extra-field id torch.save uses for its alignment padding ("FB"); readers skip unknown ids. */
const PADDING_EXTRA = 0x4246;

const LOCAL_HEADER_SIZE = 30;
const CENTRAL_HEADER_SIZE = 46;
const EOCD_SIZE = 22;
const ZIP64_EOCD_SIZE = 56;
const ZIP64_LOCATOR_SIZE = 20;
const MAX_COMMENT = 0xffff;

const U16_MAX = 0xffff;
const U32_MAX = 0xffffffff;
/** General-purpose flag bit 0: the member is encrypted. */
const FLAG_ENCRYPTED = 0x1;
/** General-purpose flag bit 11: the name is UTF-8. */
const FLAG_UTF8 = 0x800;

/** fs.writeSync refuses single writes over 2 GiB: big buffers go out in slices of this size. */
const WRITE_SLICE = 1 << 30;

function formatError(message: string, file?: string, key?: string): FileFormatError {
  const where = file === undefined ? "" : `${file}: `;
  return new FileFormatError(`${where}${message}`, { file, key });
}

function dataView(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Reads a little-endian u64 as a number; refuses values past 2^53 (no real archive has them). */
function readU64(view: DataView, at: number, what: string, file?: string): number {
  const value = view.getBigUint64(at, true);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw formatError(`corrupt zip: ${what} ${value} is out of range`, file);
  return Number(value);
}

interface EndOfCentralDirectory {
  entryCount: number;
  directorySize: number;
  directoryOffset: number;
}

function findEndOfCentralDirectory(view: DataView, file?: string): number {
  const last = view.byteLength - EOCD_SIZE;
  const first = Math.max(0, last - MAX_COMMENT);
  for (let at = last; at >= first; at--) {
    if (view.getUint32(at, true) === END_OF_CENTRAL_DIRECTORY && at + EOCD_SIZE + view.getUint16(at + 20, true) === view.byteLength) {
      return at;
    }
  }
  // A comment that does not reach the end means bytes were appended or cut: report both as damage.
  throw formatError(
    view.byteLength < EOCD_SIZE
      ? `not a zip archive (${view.byteLength} bytes, fewer than the ${EOCD_SIZE} of an empty one)`
      : "not a zip archive or truncated: no end-of-central-directory record at its end",
    file,
  );
}

function readEndOfCentralDirectory(view: DataView, file?: string): EndOfCentralDirectory {
  const at = findEndOfCentralDirectory(view, file);
  const disk = view.getUint16(at + 4, true);
  const directoryDisk = view.getUint16(at + 6, true);
  let entryCount = view.getUint16(at + 10, true);
  let directorySize = view.getUint32(at + 12, true);
  let directoryOffset = view.getUint32(at + 16, true);
  const needsZip64 = entryCount === U16_MAX || directorySize === U32_MAX || directoryOffset === U32_MAX;
  const locatorAt = at - ZIP64_LOCATOR_SIZE;
  if (locatorAt >= 0 && view.getUint32(locatorAt, true) === ZIP64_LOCATOR) {
    const recordAt = readU64(view, locatorAt + 8, "zip64 end-of-central-directory offset", file);
    if (recordAt + ZIP64_EOCD_SIZE > locatorAt || view.getUint32(recordAt, true) !== ZIP64_END_OF_CENTRAL_DIRECTORY) {
      throw formatError(`corrupt zip: no zip64 end-of-central-directory record at offset ${recordAt}`, file);
    }
    entryCount = readU64(view, recordAt + 32, "entry count", file);
    directorySize = readU64(view, recordAt + 40, "central directory size", file);
    directoryOffset = readU64(view, recordAt + 48, "central directory offset", file);
  } else if (needsZip64) {
    throw formatError("corrupt zip: the end-of-central-directory record needs a zip64 record that is missing", file);
  } else if (disk !== 0 || directoryDisk !== 0) {
    throw formatError("multi-disk zip archives are not supported", file);
  }
  if (directoryOffset + directorySize > at) {
    throw formatError(
      `truncated or corrupt zip: central directory at ${directoryOffset} (+${directorySize} bytes) runs past its end record at ${at}`,
      file,
    );
  }
  return { entryCount, directorySize, directoryOffset };
}

interface Zip64Fields {
  size: number;
  compressedSize: number;
  localOffset: number;
}

/** Applies a zip64 extra field: only the fields saturated in the header are present, in this order. */
function applyZip64Extra(view: DataView, start: number, length: number, fields: Zip64Fields, name: string, file?: string): void {
  for (let at = start; at + 4 <= start + length; ) {
    const id = view.getUint16(at, true);
    const fieldLength = view.getUint16(at + 2, true);
    if (at + 4 + fieldLength > start + length) throw formatError(`corrupt zip: extra field of ${name} overruns its header`, file, name);
    if (id === ZIP64_EXTRA) {
      let cursor = at + 4;
      const take = (what: string): number => {
        if (cursor + 8 > at + 4 + fieldLength) throw formatError(`corrupt zip: zip64 extra field of ${name} lacks the ${what}`, file, name);
        const value = readU64(view, cursor, what, file);
        cursor += 8;
        return value;
      };
      if (fields.size === U32_MAX) fields.size = take("size");
      if (fields.compressedSize === U32_MAX) fields.compressedSize = take("compressed size");
      if (fields.localOffset === U32_MAX) fields.localOffset = take("local header offset");
      return;
    }
    at += 4 + fieldLength;
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: false });
const latin1 = new TextDecoder("latin1");

/**
 * Opens a zip archive held in memory: reads the end-of-central-directory record (zip64 too) and the
 * central directory, and locates each member's data. Sizes come from the central directory, never
 * from local headers (NumPy writes 0xFFFFFFFF there with `force_zip64`). Nothing is copied.
 *
 * @param bytes the whole archive.
 * @param file its path, for error messages.
 * @throws {FileFormatError} naming the file when it is not a zip archive, is truncated or corrupt.
 */
export function openZip(bytes: Uint8Array, file?: string): ZipArchive {
  if (!(bytes instanceof Uint8Array)) throw invalidParameter("bytes", "a Uint8Array", bytes);
  const view = dataView(bytes);
  const { entryCount, directorySize, directoryOffset } = readEndOfCentralDirectory(view, file);
  const entries = new Map<string, ZipEntry>();
  let at = directoryOffset;
  const end = directoryOffset + directorySize;
  for (let index = 0; index < entryCount; index++) {
    if (at + CENTRAL_HEADER_SIZE > end || view.getUint32(at, true) !== CENTRAL_HEADER) {
      throw formatError(`corrupt zip: central directory entry ${index} of ${entryCount} is missing at offset ${at}`, file);
    }
    const flags = view.getUint16(at + 8, true);
    const method = view.getUint16(at + 10, true);
    const nameLength = view.getUint16(at + 28, true);
    const extraLength = view.getUint16(at + 30, true);
    const commentLength = view.getUint16(at + 32, true);
    const nameBytes = bytes.subarray(at + CENTRAL_HEADER_SIZE, at + CENTRAL_HEADER_SIZE + nameLength);
    const name = (flags & FLAG_UTF8 ? utf8 : latin1).decode(nameBytes);
    const fields: Zip64Fields = {
      compressedSize: view.getUint32(at + 20, true),
      size: view.getUint32(at + 24, true),
      localOffset: view.getUint32(at + 42, true),
    };
    applyZip64Extra(view, at + CENTRAL_HEADER_SIZE + nameLength, extraLength, fields, name, file);
    if (flags & FLAG_ENCRYPTED) throw formatError(`member ${name} is encrypted, which is not supported`, file, name);
    const dataOffset = locateData(view, fields.localOffset, name, file);
    if (dataOffset + fields.compressedSize > directoryOffset) {
      throw formatError(
        `truncated or corrupt zip: member ${name} needs ${fields.compressedSize} bytes at offset ${dataOffset} but only ${Math.max(0, directoryOffset - dataOffset)} are there`,
        file,
        name,
      );
    }
    entries.set(name, {
      name,
      method,
      compressedSize: fields.compressedSize,
      size: fields.size,
      crc32: view.getUint32(at + 16, true),
      dataOffset,
    });
    at += CENTRAL_HEADER_SIZE + nameLength + extraLength + commentLength;
  }
  return file === undefined ? { bytes, entries } : { file, bytes, entries };
}

/** The offset where a member's data starts: after its local header, whose lengths may differ from the central one's. */
function locateData(view: DataView, localOffset: number, name: string, file?: string): number {
  if (localOffset + LOCAL_HEADER_SIZE > view.byteLength || view.getUint32(localOffset, true) !== LOCAL_HEADER) {
    throw formatError(`corrupt zip: no local header for member ${name} at offset ${localOffset}`, file, name);
  }
  return localOffset + LOCAL_HEADER_SIZE + view.getUint16(localOffset + 26, true) + view.getUint16(localOffset + 28, true);
}

/**
 * The decompressed bytes of one member. Stored members come back as a zero-copy view of
 * `archive.bytes` (their alignment is whatever the archive gives: check `byteOffset`); deflated
 * members are inflated into a new buffer and their CRC-32 checked.
 *
 * @throws {FileFormatError} naming the file and member when it is missing, uses another method,
 * does not inflate, has the wrong size or fails its CRC check.
 */
export function readZipEntry(archive: ZipArchive, name: string, options?: ReadZipEntryOptions): Uint8Array {
  assertOptions("options", options as unknown, ["verifyCrc"]);
  const { file } = archive;
  const entry = archive.entries.get(name);
  if (entry === undefined) {
    const known = [...archive.entries.keys()];
    const listed = known.length > 20 ? `${known.slice(0, 20).join(", ")}, ...` : known.join(", ");
    throw formatError(`no member ${JSON.stringify(name)} in the archive (it has: ${listed || "nothing"})`, file, name);
  }
  const raw = archive.bytes.subarray(entry.dataOffset, entry.dataOffset + entry.compressedSize);
  if (raw.length !== entry.compressedSize) {
    throw formatError(`member ${name} is truncated: expected ${entry.compressedSize} bytes, found ${raw.length}`, file, name);
  }
  let data: Uint8Array;
  if (entry.method === STORED) {
    data = raw;
  } else if (entry.method === DEFLATE) {
    try {
      data = inflateRawSync(raw);
    } catch (error) {
      throw new FileFormatError(`${file === undefined ? "" : `${file}: `}member ${name} does not inflate: ${(error as Error).message}`, {
        file,
        key: name,
        cause: error,
      });
    }
  } else {
    throw formatError(`member ${name} uses compression method ${entry.method}; only 0 (stored) and 8 (deflate) are supported`, file, name);
  }
  if (data.length !== entry.size) {
    throw formatError(`member ${name} has the wrong size: expected ${entry.size} bytes, found ${data.length}`, file, name);
  }
  if (options?.verifyCrc ?? entry.method === DEFLATE) {
    const actual = crc32(data);
    if (actual !== entry.crc32) {
      throw formatError(`member ${name} is corrupt: CRC-32 expected ${hex(entry.crc32)}, computed ${hex(actual)}`, file, name);
    }
  }
  return data;
}

function hex(value: number): string {
  return `0x${value.toString(16).padStart(8, "0")}`;
}

/** Options of {@link ZipWriter.add}. */
export interface ZipAddOptions {
  /** Deflate the member (zlib level 6, as Python's zipfile). Default `false`: stored. */
  compress?: boolean;
  /**
   * Pad the local header (with an extra field, as torch.save does) so the member's data starts at
   * a multiple of this many bytes. Only for stored members; default 1 (no padding).
   */
  align?: number;
}

interface CentralRecord {
  name: Uint8Array;
  utf8: boolean;
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  localOffset: number;
}

/**
 * MS-DOS date of every member: 1980-01-01 00:00, the earliest the format can say, so the same
 * arrays always make the same archive bytes.
 */
const DOS_DATE = (0 << 9) | (1 << 5) | 1;
const DOS_TIME = 0;

/**
 * Writes a zip archive member by member, synchronously, straight to a file: the archive is never
 * whole in memory (a stored member's data goes from the caller's buffers to the file). Zip64
 * records are written where a size, an offset or the member count needs them, so archives over
 * 4 GiB work.
 *
 * Given a path, the writer is atomic: it writes a temporary file beside it and renames it onto the
 * path in {@link ZipWriter.finish}; {@link ZipWriter.abort} (or a failed write) removes it. Given a
 * file descriptor, the caller owns it: the writer writes from the descriptor's current position
 * (assumed to be the start of the archive) and neither syncs nor closes it.
 *
 * @example
 * ```ts
 * const writer = new ZipWriter("arrays.npz");
 * try {
 *   writer.add("a.npy", encodeNpy(a), { align: 64 });
 *   writer.finish();
 * } catch (error) {
 *   writer.abort();
 *   throw error;
 * }
 * ```
 */
export class ZipWriter {
  readonly #fd: number;
  readonly #file?: string;
  readonly #temporary?: string;
  readonly #target?: string;
  readonly #central: CentralRecord[] = [];
  readonly #names = new Set<string>();
  #offset = 0;
  #state: "open" | "finished" | "aborted" = "open";

  /**
   * @param target a path (written atomically) or an open file descriptor.
   * @param file what to call the archive in error messages (defaults to the path).
   */
  constructor(target: number | string, file?: string) {
    if (typeof target === "string") {
      if (target.length === 0) throw invalidParameter("target", "a path or a file descriptor", target);
      this.#temporary = temporaryPathFor(target);
      this.#file = file ?? target;
      this.#target = target;
      this.#fd = openSync(this.#temporary, "wx");
    } else {
      if (!isInteger(target) || target < 0) throw invalidParameter("target", "a path or a file descriptor", target);
      this.#fd = target;
      this.#file = file;
    }
  }

  /**
   * Appends one member.
   * @param name its path in the archive (unique).
   * @param data its content, one buffer or several written in order (never concatenated when stored).
   * @throws {InputError} for a duplicate name, bad options, or a call after finish/abort.
   */
  add(name: string, data: Uint8Array | readonly Uint8Array[], options?: ZipAddOptions): void {
    this.#assertOpen("add");
    assertOptions("options", options as unknown, ["compress", "align"]);
    if (typeof name !== "string" || name.length === 0) throw invalidParameter("name", "a non-empty string", name);
    if (this.#names.has(name)) throw new InputError(`Duplicate zip member ${JSON.stringify(name)}`, { file: this.#file, key: name });
    const parts = data instanceof Uint8Array ? [data] : [...data];
    if (!parts.every((part) => part instanceof Uint8Array)) throw invalidParameter("data", "a Uint8Array or an array of them", data);
    const compress = options?.compress ?? false;
    const align = options?.align ?? 1;
    if (!isInteger(align) || align < 1 || align > 0x8000) throw invalidParameter("options.align", "an integer from 1 to 32768", align);
    if (compress && align !== 1) throw new InputError("options.align applies to stored members only; drop it or compress: false");

    try {
      this.#names.add(name);
      let crc = 0;
      let size = 0;
      for (const part of parts) {
        crc = crc32(part, crc);
        size += part.byteLength;
      }
      const payload = compress ? [deflateRawSync(parts.length === 1 ? parts[0] : Buffer.concat(parts))] : parts;
      const compressedSize = compress ? payload[0].byteLength : size;
      const encodedName = Buffer.from(name, "utf8");
      const record: CentralRecord = {
        name: encodedName,
        utf8: encodedName.length !== name.length,
        method: compress ? DEFLATE : STORED,
        crc,
        compressedSize,
        size,
        localOffset: this.#offset,
      };
      this.#write(localHeader(record, this.#offset, align));
      for (const part of payload) this.#write(part);
      this.#central.push(record);
    } catch (error) {
      this.abort();
      throw error;
    }
  }

  /** Writes the central directory and end records; with a path, syncs and renames the file into place. */
  finish(): void {
    this.#assertOpen("finish");
    try {
      const directoryOffset = this.#offset;
      for (const record of this.#central) this.#write(centralHeader(record));
      this.#write(endRecords(this.#central.length, directoryOffset, this.#offset - directoryOffset));
      if (this.#temporary !== undefined) {
        fsyncSync(this.#fd);
        closeSync(this.#fd);
        renameSync(this.#temporary, this.#target as string);
      }
      this.#state = "finished";
    } catch (error) {
      this.abort();
      throw error;
    }
  }

  /** Gives up: with a path, closes and removes the temporary file (the target is untouched). Safe to call twice. */
  abort(): void {
    if (this.#state !== "open") return;
    this.#state = "aborted";
    if (this.#temporary !== undefined) {
      try {
        closeSync(this.#fd);
      } finally {
        rmSync(this.#temporary, { force: true });
      }
    }
  }

  #assertOpen(what: string): void {
    if (this.#state !== "open") {
      throw new InputError(`Cannot ${what}: the zip writer${this.#file ? ` of ${this.#file}` : ""} is already ${this.#state}`);
    }
  }

  #write(bytes: Uint8Array): void {
    for (let start = 0; start < bytes.byteLength; start += WRITE_SLICE) {
      const slice = bytes.subarray(start, Math.min(bytes.byteLength, start + WRITE_SLICE));
      let written = 0;
      while (written < slice.byteLength) written += writeSync(this.#fd, slice, written, slice.byteLength - written);
    }
    this.#offset += bytes.byteLength;
  }
}

function localHeader(record: CentralRecord, offset: number, align: number): Uint8Array {
  const zip64 = record.size >= U32_MAX || record.compressedSize >= U32_MAX;
  const zip64Length = zip64 ? 4 + 16 : 0;
  const unpadded = offset + LOCAL_HEADER_SIZE + record.name.length + zip64Length;
  // The padding field needs its own 4-byte header, so pad to the next boundary after that.
  const padding = align > 1 && unpadded % align !== 0 ? (align - ((unpadded + 4) % align)) % align : -1;
  const extraLength = zip64Length + (padding >= 0 ? 4 + padding : 0);
  const header = Buffer.alloc(LOCAL_HEADER_SIZE + record.name.length + extraLength);
  header.writeUInt32LE(LOCAL_HEADER, 0);
  header.writeUInt16LE(zip64 ? 45 : 20, 4);
  header.writeUInt16LE(record.utf8 ? FLAG_UTF8 : 0, 6);
  header.writeUInt16LE(record.method, 8);
  header.writeUInt16LE(DOS_TIME, 10);
  header.writeUInt16LE(DOS_DATE, 12);
  header.writeUInt32LE(record.crc, 14);
  header.writeUInt32LE(zip64 ? U32_MAX : record.compressedSize, 18);
  header.writeUInt32LE(zip64 ? U32_MAX : record.size, 22);
  header.writeUInt16LE(record.name.length, 26);
  header.writeUInt16LE(extraLength, 28);
  header.set(record.name, LOCAL_HEADER_SIZE);
  let at = LOCAL_HEADER_SIZE + record.name.length;
  if (zip64) {
    header.writeUInt16LE(ZIP64_EXTRA, at);
    header.writeUInt16LE(16, at + 2);
    header.writeBigUInt64LE(BigInt(record.size), at + 4);
    header.writeBigUInt64LE(BigInt(record.compressedSize), at + 12);
    at += zip64Length;
  }
  if (padding >= 0) {
    header.writeUInt16LE(PADDING_EXTRA, at);
    header.writeUInt16LE(padding, at + 2);
    header.fill(0x5a, at + 4); // "Z", as torch.save pads
  }
  return header;
}

function centralHeader(record: CentralRecord): Uint8Array {
  const wide = [record.size, record.compressedSize, record.localOffset].map((value) => value >= U32_MAX);
  const zip64Count = wide.filter(Boolean).length;
  const extraLength = zip64Count > 0 ? 4 + 8 * zip64Count : 0;
  const header = Buffer.alloc(CENTRAL_HEADER_SIZE + record.name.length + extraLength);
  const version = zip64Count > 0 ? 45 : 20;
  header.writeUInt32LE(CENTRAL_HEADER, 0);
  header.writeUInt16LE((3 << 8) | version, 4); // made by: Unix
  header.writeUInt16LE(version, 6);
  header.writeUInt16LE(record.utf8 ? FLAG_UTF8 : 0, 8);
  header.writeUInt16LE(record.method, 10);
  header.writeUInt16LE(DOS_TIME, 12);
  header.writeUInt16LE(DOS_DATE, 14);
  header.writeUInt32LE(record.crc, 16);
  header.writeUInt32LE(wide[1] ? U32_MAX : record.compressedSize, 20);
  header.writeUInt32LE(wide[0] ? U32_MAX : record.size, 24);
  header.writeUInt16LE(record.name.length, 28);
  header.writeUInt16LE(extraLength, 30);
  header.writeUInt32LE(0o100644 * 0x10000, 38); // external attributes: a regular file, rw-r--r--
  header.writeUInt32LE(wide[2] ? U32_MAX : record.localOffset, 42);
  header.set(record.name, CENTRAL_HEADER_SIZE);
  if (zip64Count > 0) {
    let at = CENTRAL_HEADER_SIZE + record.name.length;
    header.writeUInt16LE(ZIP64_EXTRA, at);
    header.writeUInt16LE(8 * zip64Count, at + 2);
    at += 4;
    // Order fixed by the specification: size, compressed size, local header offset.
    for (const [index, value] of [record.size, record.compressedSize, record.localOffset].entries()) {
      if (!wide[index]) continue;
      header.writeBigUInt64LE(BigInt(value), at);
      at += 8;
    }
  }
  return header;
}

function endRecords(entryCount: number, directoryOffset: number, directorySize: number): Uint8Array {
  const zip64 = entryCount >= U16_MAX || directoryOffset >= U32_MAX || directorySize >= U32_MAX;
  const records = Buffer.alloc((zip64 ? ZIP64_EOCD_SIZE + ZIP64_LOCATOR_SIZE : 0) + EOCD_SIZE);
  let at = 0;
  if (zip64) {
    const recordOffset = directoryOffset + directorySize;
    records.writeUInt32LE(ZIP64_END_OF_CENTRAL_DIRECTORY, 0);
    records.writeBigUInt64LE(BigInt(ZIP64_EOCD_SIZE - 12), 4);
    records.writeUInt16LE((3 << 8) | 45, 12);
    records.writeUInt16LE(45, 14);
    records.writeBigUInt64LE(BigInt(entryCount), 24);
    records.writeBigUInt64LE(BigInt(entryCount), 32);
    records.writeBigUInt64LE(BigInt(directorySize), 40);
    records.writeBigUInt64LE(BigInt(directoryOffset), 48);
    records.writeUInt32LE(ZIP64_LOCATOR, 56);
    records.writeBigUInt64LE(BigInt(recordOffset), 64);
    records.writeUInt32LE(1, 72); // total number of disks
    at = ZIP64_EOCD_SIZE + ZIP64_LOCATOR_SIZE;
  }
  records.writeUInt32LE(END_OF_CENTRAL_DIRECTORY, at);
  records.writeUInt16LE(Math.min(entryCount, U16_MAX), at + 8);
  records.writeUInt16LE(Math.min(entryCount, U16_MAX), at + 10);
  records.writeUInt32LE(Math.min(directorySize, U32_MAX), at + 12);
  records.writeUInt32LE(Math.min(directoryOffset, U32_MAX), at + 16);
  return records;
}
