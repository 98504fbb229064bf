/**
 * A zip reader for what NumPy `.npz` archives and PyTorch `.pth` checkpoints are: every archive
 * Python's `zipfile`, NumPy and torch write (stored and deflated members, zip64 sizes, offsets and
 * end records, data descriptors, more than 65,535 members, archives over 4 GiB), and a typed
 * {@link FileFormatError} naming the file and member for everything else, in bounded memory.
 *
 * Archives come from bytes in memory ({@link openZip}: stored members are zero-copy views of them)
 * or from a file (`openZipFile`: only the directory is read up front, each member when asked
 * for, so archives larger than a buffer can hold are read member by member).
 *
 * What is checked, and why:
 * - the CRC-32 of every member, stored ones too (a flipped bit is an error, as in `np.load`; it
 *   costs ~1 ms per 6 MB, see {@link ReadZipEntryOptions.verifyCrc});
 * - a deflated member never inflates past its declared size, and a declared size no deflate stream
 *   of that length could reach is refused before anything is allocated (a zip bomb stops at once);
 * - members may not overlap one another or the central directory (how some zip bombs multiply a
 *   few kilobytes into gigabytes), a name may be listed only once, and a member's name must match
 *   its local header's, as Python's `zipfile` requires;
 * - every length field is checked against the bytes actually there before it is used.
 *
 * Not supported: encryption, multi-disk archives, compression methods other than 0 and 8.
 *
 * @example
 * ```ts
 * const archive = openZipFile("model.pth");
 * try {
 *   for (const entry of archive.entries.values()) console.log(entry.name, entry.size);
 *   const pickle = readZipEntry(archive, "model/data.pkl");
 * } finally {
 *   archive.close();
 * }
 * ```
 * @module
 */
import { constants as bufferConstants } from "node:buffer";
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { constants as zlibConstants, crc32, inflateRawSync } from "node:zlib";
import { FileFormatError } from "../errors.js";
import { assertBoolean, assertOptions, invalidParameter } from "../is.js";
import { unreadableReason } from "./read_file.js";
import {
  CENTRAL_HEADER,
  CENTRAL_HEADER_SIZE,
  DEFLATE,
  END_OF_CENTRAL_DIRECTORY,
  EOCD_SIZE,
  FLAG_ENCRYPTED,
  FLAG_STRONG_ENCRYPTION,
  FLAG_UTF8,
  LOCAL_HEADER,
  LOCAL_HEADER_SIZE,
  MAX_COMMENT,
  STORED,
  U16_MAX,
  U32_MAX,
  ZIP64_END_OF_CENTRAL_DIRECTORY,
  ZIP64_EOCD_SIZE,
  ZIP64_EXTRA,
  ZIP64_LOCATOR,
  ZIP64_LOCATOR_SIZE,
} from "./zip_format.js";

/** One member of a zip archive, as its central directory describes it. */
export interface ZipEntry {
  /** Path of the member inside the archive (UTF-8, or code page 437 without the UTF-8 flag). */
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

/** Options of {@link readZipEntry}. */
export interface ReadZipEntryOptions {
  /**
   * Check the member's CRC-32 (default `true`). zlib's CRC runs at ~5 GB/s here: ~1 ms for a
   * 1080p sample, ~0.3 s for a 1.4 GB checkpoint, next to the time the bytes took to read. A member
   * already verified in this archive is not checked again.
   */
  verifyCrc?: boolean;
}

/**
 * Deflate's best case is 258 bytes from a 1-bit length code and a 1-bit distance code, so N
 * compressed bytes never inflate to more than 1032 N (plus a little for the block headers).
 */
const MAX_DEFLATE_RATIO = 1032;
const DEFLATE_SLACK = 64 * 1024;
/** fs.readSync moves at most 2 GiB - 1 bytes per call. */
const READ_SLICE = 0x7fffffff;
/** Bytes read at once when looking at local headers in a file. */
const PEEK_WINDOW = 64 * 1024;
/** First compressed prefix tried when only the head of a deflated member is wanted. */
const HEAD_PREFIX = 1024;

/** Code page 437, the zip format's encoding of names without the UTF-8 flag (bytes 0x80 to 0xff). */
const CP437_HIGH =
  "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u00a0";
const utf8 = new TextDecoder("utf-8");

function decodeName(bytes: Uint8Array, isUtf8: boolean): string {
  if (isUtf8) return utf8.decode(bytes);
  let name = "";
  for (const byte of bytes) name += byte < 0x80 ? String.fromCharCode(byte) : CP437_HIGH[byte - 0x80];
  return name;
}

function formatError(message: string, file?: string, key?: string, cause?: unknown): FileFormatError {
  return new FileFormatError(`${file === undefined ? "" : `${file}: `}${message}`, { file, key, cause });
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

/** Random access to an archive's bytes. @internal */
export interface ByteSource {
  readonly size: number;
  /** `length` bytes at `offset` (the caller has checked they exist), to keep. */
  read(offset: number, length: number): Uint8Array;
  /** The same, to look at at once: valid only until the next call (a header, not data). */
  peek(offset: number, length: number): Uint8Array;
  close(): void;
}

/** Bytes in memory: reads are views, no copy. */
class MemorySource implements ByteSource {
  readonly #bytes: Uint8Array;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  get size(): number {
    return this.#bytes.byteLength;
  }

  read(offset: number, length: number): Uint8Array {
    return this.#bytes.subarray(offset, offset + length);
  }

  peek(offset: number, length: number): Uint8Array {
    return this.read(offset, length);
  }

  close(): void {}
}

/**
 * A file read through its descriptor: each read is a fresh buffer of its own (offset 0, aligned for
 * any element type); peeks at headers come from a window of {@link PEEK_WINDOW} bytes, so locating
 * a million members takes a few hundred reads, not a million.
 */
class FileSource implements ByteSource {
  readonly #path: string;
  #fd: number | undefined;
  readonly size: number;
  readonly #window = Buffer.allocUnsafeSlow(PEEK_WINDOW);
  #windowStart = 0;
  #windowLength = 0;

  constructor(path: string) {
    this.#path = path;
    let fd: number;
    let isFile: boolean;
    try {
      fd = openSync(path, "r");
    } catch (error) {
      throw new FileFormatError(`${path}: cannot read the file: ${unreadableReason(error)}`, { file: path, cause: error });
    }
    try {
      const stats = fstatSync(fd);
      isFile = stats.isFile();
      this.size = stats.size;
    } catch (error) {
      closeSync(fd);
      throw new FileFormatError(`${path}: cannot read the file: ${unreadableReason(error)}`, { file: path, cause: error });
    }
    if (!isFile) {
      closeSync(fd);
      throw new FileFormatError(`${path}: cannot read the file: it is a folder or a device, not a file`, { file: path });
    }
    this.#fd = fd;
  }

  read(offset: number, length: number): Uint8Array {
    const buffer = Buffer.allocUnsafeSlow(length);
    this.#fill(buffer, offset);
    return buffer;
  }

  #fill(buffer: Uint8Array, offset: number): void {
    if (this.#fd === undefined) throw new FileFormatError(`${this.#path}: the archive was closed before it was read`, { file: this.#path });
    for (let filled = 0; filled < buffer.length; ) {
      let count: number;
      try {
        count = readSync(this.#fd, buffer, filled, Math.min(READ_SLICE, buffer.length - filled), offset + filled);
      } catch (error) {
        throw new FileFormatError(`${this.#path}: cannot read the file: ${unreadableReason(error)}`, { file: this.#path, cause: error });
      }
      if (count === 0) {
        throw new FileFormatError(`${this.#path}: the file ended at byte ${offset + filled} while being read (did it change?)`, { file: this.#path });
      }
      filled += count;
    }
  }

  peek(offset: number, length: number): Uint8Array {
    if (length > PEEK_WINDOW) return this.read(offset, length);
    if (offset < this.#windowStart || offset + length > this.#windowStart + this.#windowLength) {
      this.#windowStart = offset;
      this.#windowLength = Math.min(PEEK_WINDOW, this.size - offset);
      this.#fill(this.#window.subarray(0, this.#windowLength), offset);
    }
    return this.#window.subarray(offset - this.#windowStart, offset - this.#windowStart + length);
  }

  close(): void {
    if (this.#fd === undefined) return;
    closeSync(this.#fd);
    this.#fd = undefined;
  }
}

/**
 * An opened archive: the members its central directory lists, and the means to read them. Get one
 * from {@link openZip} (bytes) or `openZipFile` (a path; {@link ZipArchive.close} it).
 */
export class ZipArchive {
  /** The file it came from, for error messages. */
  readonly file?: string;
  /** Size of the whole archive, in bytes. */
  readonly size: number;
  /** Members by name, in central-directory order. */
  readonly entries: ReadonlyMap<string, ZipEntry>;
  readonly #source: ByteSource;
  /** Members whose CRC has been checked, so tensors sharing a storage check it once. */
  readonly #verified = new Set<string>();

  /** @internal */
  constructor(source: ByteSource, entries: ReadonlyMap<string, ZipEntry>, file: string | undefined) {
    this.#source = source;
    this.size = source.size;
    this.entries = entries;
    if (file !== undefined) this.file = file;
  }

  /** Releases the file an archive from `openZipFile` holds open (a no-op for bytes). Idempotent. */
  close(): void {
    this.#source.close();
  }

  /** See {@link readZipEntry}. */
  read(name: string, options?: ReadZipEntryOptions): Uint8Array {
    assertOptions("options", options as unknown, ["verifyCrc"]);
    const verifyCrc = options?.verifyCrc ?? true;
    assertBoolean("options.verifyCrc", verifyCrc);
    const entry = this.#entry(name);
    const raw = this.#source.read(entry.dataOffset, entry.compressedSize);
    const data = entry.method === STORED ? raw : inflate(raw, entry, this.file);
    if (data.byteLength !== entry.size) {
      throw formatError(`member ${name} has the wrong size: expected ${entry.size} bytes, found ${data.byteLength}`, this.file, name);
    }
    if (verifyCrc && !this.#verified.has(name)) {
      const actual = crc32(data);
      if (actual !== entry.crc32) {
        throw formatError(`member ${name} is corrupt: CRC-32 expected ${hex(entry.crc32)}, computed ${hex(actual)}`, this.file, name);
      }
      this.#verified.add(name);
    }
    return data;
  }

  /** See `readZipEntryHead`. */
  readHead(name: string, length: number): Uint8Array {
    if (!Number.isSafeInteger(length) || length < 0) throw invalidParameter("length", "a non-negative integer", length);
    const entry = this.#entry(name);
    if (entry.method === STORED) return this.#source.read(entry.dataOffset, Math.min(length, entry.compressedSize));
    const raw = this.#source.read(entry.dataOffset, entry.compressedSize);
    return inflateHead(raw, Math.min(length, entry.size), entry, this.file);
  }

  /** The entry of a member that can be read: it exists, its method is known and its size fits a buffer. */
  #entry(name: string): ZipEntry {
    const { file } = this;
    const entry = this.entries.get(name);
    if (entry === undefined) {
      const known = [...this.entries.keys()];
      const listed = known.length > 20 ? `${known.slice(0, 20).join(", ")}, ...` : known.join(", ");
      throw formatError(`no member ${JSON.stringify(name)} in the archive (it has: ${listed || "nothing"})`, file, name);
    }
    if (entry.method !== STORED && entry.method !== DEFLATE) {
      throw formatError(`member ${name} uses compression method ${entry.method}; only 0 (stored) and 8 (deflate) are supported`, file, name);
    }
    if (entry.method === STORED && entry.size !== entry.compressedSize) {
      throw formatError(`corrupt zip: stored member ${name} declares ${entry.size} bytes but holds ${entry.compressedSize}`, file, name);
    }
    // One byte of headroom: inflating then stops one byte past the declared size, which is how an overrun is seen.
    if (entry.size >= bufferConstants.MAX_LENGTH || entry.compressedSize > bufferConstants.MAX_LENGTH) {
      throw formatError(
        `member ${name} holds ${Math.max(entry.size, entry.compressedSize)} bytes, more than one buffer can hold in this Node.js (${bufferConstants.MAX_LENGTH - 1})`,
        file,
        name,
      );
    }
    if (entry.method === DEFLATE && entry.size > entry.compressedSize * MAX_DEFLATE_RATIO + DEFLATE_SLACK) {
      throw formatError(
        `corrupt zip: member ${name} declares ${entry.size} bytes, more than its ${entry.compressedSize} deflated bytes can hold`,
        file,
        name,
      );
    }
    return entry;
  }
}

/**
 * Inflates a whole member into one buffer of its declared size (plus the one byte that reveals an
 * overrun): memory never exceeds the declared size, however much the stream would produce.
 */
function inflate(raw: Uint8Array, entry: ZipEntry, file: string | undefined): Uint8Array {
  try {
    return inflateRawSync(raw, { maxOutputLength: Math.max(entry.size, 1), chunkSize: Math.max(entry.size + 1, zlibConstants.Z_MIN_CHUNK) });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") {
      throw formatError(`member ${entry.name} inflates past its declared size of ${entry.size} bytes`, file, entry.name, error);
    }
    throw formatError(`member ${entry.name} does not inflate: ${(error as Error).message}`, file, entry.name, error);
  }
}

/**
 * The first `length` inflated bytes of a member, inflating ever longer prefixes of its compressed
 * data (1 KiB, then doubling): never more than the prefix can hold (~1032x its size), so reading
 * the head of a zip bomb costs kilobytes to a few megabytes.
 */
function inflateHead(raw: Uint8Array, length: number, entry: ZipEntry, file: string | undefined): Uint8Array {
  for (let take = Math.min(raw.length, HEAD_PREFIX); ; take = Math.min(raw.length, 2 * take)) {
    let head: Uint8Array;
    try {
      head = inflateRawSync(raw.subarray(0, take), { finishFlush: zlibConstants.Z_SYNC_FLUSH });
    } catch (error) {
      throw formatError(`member ${entry.name} does not inflate: ${(error as Error).message}`, file, entry.name, error);
    }
    if (head.length >= length || take === raw.length) return head.subarray(0, length);
  }
}

function hex(value: number): string {
  return `0x${value.toString(16).padStart(8, "0")}`;
}

/** Where the central directory lies, from the end records. */
interface DirectoryLocation {
  directoryOffset: number;
  directorySize: number;
  /** Where the end records start: the central directory must end before. */
  endRecordsAt: number;
}

function findEndOfCentralDirectory(source: ByteSource, file?: string): { tail: Uint8Array; tailStart: number; at: number } {
  if (source.size < EOCD_SIZE) {
    throw formatError(`not a zip archive (${source.size} bytes, fewer than the ${EOCD_SIZE} of an empty one)`, file);
  }
  const tailLength = Math.min(source.size, EOCD_SIZE + MAX_COMMENT + ZIP64_LOCATOR_SIZE);
  const tailStart = source.size - tailLength;
  const tail = source.read(tailStart, tailLength);
  const view = dataView(tail);
  const last = tailLength - EOCD_SIZE;
  for (let at = last; at >= Math.max(0, last - MAX_COMMENT); at--) {
    if (view.getUint32(at, true) === END_OF_CENTRAL_DIRECTORY && at + EOCD_SIZE + view.getUint16(at + 20, true) === tailLength) {
      return { tail, tailStart, at };
    }
  }
  // A comment that does not reach the end means bytes were appended or cut: report both as damage.
  throw formatError("not a zip archive or truncated: no end-of-central-directory record at its end", file);
}

function readDirectoryLocation(source: ByteSource, file?: string): DirectoryLocation {
  const { tail, tailStart, at } = findEndOfCentralDirectory(source, file);
  const view = dataView(tail);
  const disk = view.getUint16(at + 4, true);
  const directoryDisk = view.getUint16(at + 6, true);
  const entryCount = view.getUint16(at + 10, true);
  let directorySize = view.getUint32(at + 12, true);
  let directoryOffset = view.getUint32(at + 16, true);
  let endRecordsAt = tailStart + at;
  const locatorAt = at - ZIP64_LOCATOR_SIZE;
  if (locatorAt >= 0 && view.getUint32(locatorAt, true) === ZIP64_LOCATOR) {
    const recordAt = readU64(view, locatorAt + 8, "zip64 end-of-central-directory offset", file);
    const locatorPosition = tailStart + locatorAt;
    if (recordAt + ZIP64_EOCD_SIZE > locatorPosition) {
      throw formatError(`corrupt zip: the zip64 end-of-central-directory record at offset ${recordAt} runs past its locator at ${locatorPosition}`, file);
    }
    const record = dataView(source.read(recordAt, ZIP64_EOCD_SIZE));
    if (record.getUint32(0, true) !== ZIP64_END_OF_CENTRAL_DIRECTORY) {
      throw formatError(`corrupt zip: no zip64 end-of-central-directory record at offset ${recordAt}`, file);
    }
    if (record.getUint32(16, true) !== 0 || record.getUint32(20, true) !== 0 || view.getUint32(locatorAt + 16, true) > 1) {
      throw formatError("multi-disk zip archives are not supported", file);
    }
    directorySize = readU64(record, 40, "central directory size", file);
    directoryOffset = readU64(record, 48, "central directory offset", file);
    endRecordsAt = recordAt;
  } else if (entryCount === U16_MAX || directorySize === U32_MAX || directoryOffset === U32_MAX) {
    throw formatError("corrupt zip: the end-of-central-directory record needs a zip64 record that is missing", file);
  } else if (disk !== 0 || directoryDisk !== 0) {
    throw formatError("multi-disk zip archives are not supported", file);
  }
  if (directoryOffset + directorySize > endRecordsAt) {
    throw formatError(
      `truncated or corrupt zip: central directory at ${directoryOffset} (+${directorySize} bytes) runs past its end record at ${endRecordsAt}`,
      file,
    );
  }
  return { directoryOffset, directorySize, endRecordsAt };
}

/**
 * A member as the central directory describes it, with where its name lies in the directory (to
 * compare with the local header's) and, once located, where its data starts. One object per
 * member, so archives of millions of members take about 150 bytes of memory each.
 */
interface Member extends ZipEntry {
  dataOffset: number;
  localOffset: number;
  /** Offset of the name's bytes in the central directory, and their length. */
  nameAt: number;
  nameLength: number;
}

interface Zip64Fields {
  size: number;
  compressedSize: number;
  localOffset: number;
}

/** Applies a zip64 extra field: only the fields saturated in the header are present, in this order. */
function applyZip64Extra(view: DataView, start: number, length: number, fields: Zip64Fields, name: string, file?: string): void {
  const end = start + length;
  for (let at = start; at < end; ) {
    if (at + 4 > end) throw formatError(`corrupt zip: extra field of ${name} overruns its header`, file, name);
    const id = view.getUint16(at, true);
    const fieldLength = view.getUint16(at + 2, true);
    if (at + 4 + fieldLength > end) throw formatError(`corrupt zip: extra field of ${name} overruns its header`, file, name);
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
    }
    at += 4 + fieldLength;
  }
}

/**
 * The records of the central directory, read until its declared size is used up (as Python does:
 * the 16-bit member count of the end record wraps past 65,535 in archives some writers make).
 */
function readCentralDirectory(directory: Uint8Array, file?: string): Member[] {
  const view = dataView(directory);
  const members: Member[] = [];
  for (let at = 0; at < directory.length; ) {
    if (at + CENTRAL_HEADER_SIZE > directory.length || view.getUint32(at, true) !== CENTRAL_HEADER) {
      throw formatError(`corrupt zip: central directory record ${members.length} is missing or damaged at byte ${at} of the directory`, file);
    }
    const flags = view.getUint16(at + 8, true);
    const nameLength = view.getUint16(at + 28, true);
    const extraLength = view.getUint16(at + 30, true);
    const commentLength = view.getUint16(at + 32, true);
    const next = at + CENTRAL_HEADER_SIZE + nameLength + extraLength + commentLength;
    if (next > directory.length) {
      throw formatError(`corrupt zip: central directory record ${members.length} (name, extra field, comment) runs past the directory's end`, file);
    }
    const nameAt = at + CENTRAL_HEADER_SIZE;
    const name = decodeName(directory.subarray(nameAt, nameAt + nameLength), (flags & FLAG_UTF8) !== 0);
    if (flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION)) throw formatError(`member ${name} is encrypted, which is not supported`, file, name);
    const fields: Zip64Fields = {
      compressedSize: view.getUint32(at + 20, true),
      size: view.getUint32(at + 24, true),
      localOffset: view.getUint32(at + 42, true),
    };
    applyZip64Extra(view, nameAt + nameLength, extraLength, fields, name, file);
    members.push({
      name,
      method: view.getUint16(at + 10, true),
      compressedSize: fields.compressedSize,
      size: fields.size,
      crc32: view.getUint32(at + 16, true),
      dataOffset: -1,
      localOffset: fields.localOffset,
      nameAt,
      nameLength,
    });
    at = next;
  }
  return members;
}

/**
 * Locates each member's data after its local header, and checks that members lie one after the
 * other without overlapping, all before the central directory, each name listed once.
 */
function locateMembers(source: ByteSource, directory: Uint8Array, members: Member[], directoryOffset: number, file?: string): Map<string, ZipEntry> {
  const order = Uint32Array.from(members.keys()).sort((a, b) => members[a].localOffset - members[b].localOffset);
  for (let rank = 0; rank < order.length; rank++) {
    const member = members[order[rank]];
    const next = rank + 1 < order.length ? members[order[rank + 1]] : undefined;
    const limit = next?.localOffset ?? directoryOffset;
    const dataOffset = localDataOffset(source, directory, member, directoryOffset, file);
    if (dataOffset + member.compressedSize > limit) {
      throw formatError(
        next === undefined
          ? `truncated or corrupt zip: member ${member.name} needs ${member.compressedSize} bytes at offset ${dataOffset} but only ${Math.max(0, limit - dataOffset)} are there`
          : `corrupt zip: member ${member.name} (${member.compressedSize} bytes at offset ${dataOffset}) overlaps member ${next.name} at offset ${next.localOffset}: overlapping members are refused (how zip bombs multiply their size)`,
        file,
        member.name,
      );
    }
    member.dataOffset = dataOffset;
  }
  const entries = new Map<string, ZipEntry>();
  for (const member of members) {
    // Which of two same-named members is "the" member differs between tools: refuse the ambiguity.
    if (entries.has(member.name)) throw formatError(`corrupt zip: member ${member.name} is listed twice in the central directory`, file, member.name);
    entries.set(member.name, member);
  }
  return entries;
}

/** The offset where a member's data starts: after its local header, whose extra field may differ from the central one. */
function localDataOffset(source: ByteSource, directory: Uint8Array, member: Member, directoryOffset: number, file?: string): number {
  const { name, localOffset, nameAt, nameLength } = member;
  if (localOffset + LOCAL_HEADER_SIZE + nameLength > directoryOffset) {
    throw formatError(`corrupt zip: the local header of member ${name} at offset ${localOffset} lies past the members' end (${directoryOffset})`, file, name);
  }
  const header = source.peek(localOffset, LOCAL_HEADER_SIZE + nameLength);
  const view = dataView(header);
  if (view.getUint32(0, true) !== LOCAL_HEADER) throw formatError(`corrupt zip: no local header for member ${name} at offset ${localOffset}`, file, name);
  let sameName = view.getUint16(26, true) === nameLength;
  for (let i = 0; sameName && i < nameLength; i++) sameName = header[LOCAL_HEADER_SIZE + i] === directory[nameAt + i];
  if (!sameName) throw formatError(`corrupt zip: the name of member ${name} differs between the central directory and its local header`, file, name);
  return localOffset + LOCAL_HEADER_SIZE + nameLength + view.getUint16(28, true);
}

function openSource(source: ByteSource, file?: string): ZipArchive {
  const { directoryOffset, directorySize } = readDirectoryLocation(source, file);
  const directory = source.read(directoryOffset, directorySize);
  const members = readCentralDirectory(directory, file);
  return new ZipArchive(source, locateMembers(source, directory, members, directoryOffset, file), file);
}

/**
 * Opens a zip archive held in memory. Sizes come from the central directory, never from local
 * headers (NumPy writes 0xFFFFFFFF there, streaming writers 0). Nothing is copied: stored members
 * read as views of `bytes`.
 *
 * @param bytes the whole archive.
 * @param file its path, for error messages.
 * @throws {@link endosynth!FileFormatError | FileFormatError} naming the file when it is not a zip archive, is truncated or corrupt.
 */
export function openZip(bytes: Uint8Array, file?: string): ZipArchive {
  if (!(bytes instanceof Uint8Array)) throw invalidParameter("bytes", "a Uint8Array", bytes);
  return openSource(new MemorySource(bytes), file);
}

/**
 * Opens a zip archive file: reads its end records and central directory, and nothing else until a
 * member is read. Works for archives of any size (each member must fit in one buffer). Call
 * {@link ZipArchive.close} when done.
 *
 * @throws {@link endosynth!FileFormatError | FileFormatError} naming the file when it is missing, unreadable, not a zip archive,
 * truncated or corrupt.
 */
export function openZipFile(path: string): ZipArchive {
  if (typeof path !== "string" || path.length === 0) throw invalidParameter("path", "a non-empty string", path);
  const source = new FileSource(path);
  try {
    return openSource(source, path);
  } catch (error) {
    source.close();
    throw error;
  }
}

/**
 * The decompressed bytes of one member, its CRC-32 checked. From {@link openZip}, stored members
 * are zero-copy views of the archive's bytes (their alignment is whatever the archive gives: check
 * `byteOffset`); from `openZipFile`, and for deflated members, a new buffer.
 *
 * @throws {@link endosynth!FileFormatError | FileFormatError} naming the file and member when it is missing, uses another method,
 * does not inflate, inflates past its declared size, has the wrong size or fails its CRC check.
 */
export function readZipEntry(archive: ZipArchive, name: string, options?: ReadZipEntryOptions): Uint8Array {
  if (!(archive instanceof ZipArchive)) throw invalidParameter("archive", "a ZipArchive from openZip or openZipFile", archive);
  return archive.read(name, options);
}

/**
 * At most the first `length` decompressed bytes of a member (fewer if it is shorter), inflating
 * only what they need: how a reader looks at a header (an .npy header) before deciding to read
 * the rest. Not CRC-checked (the whole member is, when read).
 *
 * @throws {@link endosynth!FileFormatError | FileFormatError} as {@link readZipEntry}.
 */
export function readZipEntryHead(archive: ZipArchive, name: string, length: number): Uint8Array {
  if (!(archive instanceof ZipArchive)) throw invalidParameter("archive", "a ZipArchive from openZip or openZipFile", archive);
  return archive.readHead(name, length);
}
