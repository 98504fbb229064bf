/**
 * A zip writer for NumPy `.npz` archives and PyTorch `.pth` checkpoints: streams member by member
 * to a file descriptor, pads local headers so each member's data starts at a chosen alignment (as
 * `torch.save` does with 64, so arrays can be viewed in place), and switches to zip64 records
 * where sizes, offsets or the member count need them, so multi-GB archives never sit in memory.
 *
 * @example
 * ```ts
 * const writer = new ZipWriter("arrays.npz");
 * writer.add("a.npy", encodeNpy(a), { align: 64 });
 * writer.finish();
 * ```
 * @module
 */
import { closeSync, fsyncSync, rmSync } from "node:fs";
import { crc32, deflateRawSync } from "node:zlib";
import { InputError } from "../errors.js";
import { assertOptions, invalidParameter, isInteger } from "../is.js";
import { openTemporary, renameIntoPlace, writeAll, writeFailure } from "./atomic.js";
import {
  CENTRAL_HEADER,
  CENTRAL_HEADER_SIZE,
  DEFLATE,
  END_OF_CENTRAL_DIRECTORY,
  EOCD_SIZE,
  FLAG_UTF8,
  LOCAL_HEADER,
  LOCAL_HEADER_SIZE,
  PADDING_EXTRA,
  STORED,
  U16_MAX,
  U32_MAX,
  ZIP64_END_OF_CENTRAL_DIRECTORY,
  ZIP64_EOCD_SIZE,
  ZIP64_EXTRA,
  ZIP64_LOCATOR,
  ZIP64_LOCATOR_SIZE,
} from "./zip_format.js";

/** fs.writeSync refuses single writes over 2 GiB: big buffers go out in slices of this size. */
const WRITE_SLICE = 1 << 30;

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
      const { fd, temporary } = openTemporary(target);
      this.#temporary = temporary;
      this.#file = file ?? target;
      this.#target = target;
      this.#fd = fd;
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
   * @throws {@link endosynth!InputError | InputError} for a duplicate name, bad options, or a call after finish/abort.
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
      throw this.#failure(error);
    }
  }

  /**
   * Writes the central directory and end records; with a path, syncs the file, renames it into
   * place and syncs its folder.
   * @throws {@link endosynth!InputError | InputError} naming the file when it cannot be written (the target is untouched).
   */
  finish(): void {
    this.#assertOpen("finish");
    try {
      const directoryOffset = this.#offset;
      for (const record of this.#central) this.#write(centralHeader(record));
      this.#write(endRecords(this.#central.length, directoryOffset, this.#offset - directoryOffset));
      if (this.#temporary !== undefined) fsyncSync(this.#fd);
    } catch (error) {
      this.abort();
      throw this.#failure(error);
    }
    this.#state = "finished";
    if (this.#temporary === undefined) return;
    closeSync(this.#fd);
    renameIntoPlace(this.#temporary, this.#target as string);
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

  /** A system error while writing, as an InputError naming the archive (when it has a name). */
  #failure(error: unknown): Error {
    return this.#file === undefined ? (error as Error) : writeFailure(this.#file, error);
  }

  #write(bytes: Uint8Array): void {
    for (let start = 0; start < bytes.byteLength; start += WRITE_SLICE) {
      writeAll(this.#fd, bytes.subarray(start, Math.min(bytes.byteLength, start + WRITE_SLICE)));
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
