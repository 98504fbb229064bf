/**
 * Metric depth maps as files other tools read, for any frame source (stills, videos, live feeds):
 *
 * - {@link writeDepthPng16}: 16-bit greyscale PNG, depth × `scale` (default 1000: millimetres), 0 =
 *   no depth: the convention of RGB-D datasets (TUM, NYU, ScanNet; OpenCV reads it with
 *   `IMREAD_UNCHANGED`). Depths beyond 65535 / scale are clipped to 65535.
 * - {@link writeDepthTiff}: 32-bit float TIFF in metres, uncompressed, one strip (tifffile,
 *   OpenCV, ImageJ, GDAL).
 * - {@link DepthStackWriter}: one `.npz` of every frame, `np.load(path)["depth"]` [N, H, W] float32
 *   metres, with `pts` (seconds) and `frame_number` per frame, streamed to disk frame by frame
 *   (memory stays one frame, whatever N).
 *
 * Each file appears atomically (temporary file + rename).
 * @module
 */
import { closeSync, constants, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { crc32, deflateSync } from "node:zlib";
import { DisposedError, InputError } from "../errors.js";
import { assertOptions, assertString, invalidParameter, isFiniteNumber } from "../is.js";
import { temporaryPathFor, writeFileAtomicSync } from "../io/atomic.js";
import { encodeNpy } from "../io/npy.js";
import { expectArray, type NdArray } from "../ndarray/ndarray.js";

/** Options of {@link writeDepthPng16}. */
export interface DepthPngOptions {
  /** Stored value per metre; default 1000 (millimetres). 5000 is the TUM RGB-D convention. */
  scale?: number;
}

function depthMap(depth: NdArray<"float32">, name: string): { data: Float32Array; height: number; width: number } {
  const map = expectArray(depth, name, "float32", [-1, -1]);
  return { data: map.data, height: map.shape[0], width: map.shape[1] };
}

function pngChunk(type: string, data: Uint8Array): Buffer {
  const chunk = Buffer.alloc(12 + data.length);
  chunk.writeUInt32BE(data.length, 0);
  chunk.write(type, 4, "latin1");
  chunk.set(data, 8);
  chunk.writeUInt32BE(crc32(chunk.subarray(4, 8 + data.length)), 8 + data.length);
  return chunk;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** PNG row filter "Sub": each sample minus the one to its left, which suits smooth depth. */
const FILTER_SUB = 1;

/** 16-bit greyscale PNG bytes of `depth` × `scale`, rounded; non-finite and non-positive depths are 0. */
export function encodeDepthPng16(depth: NdArray<"float32">, options?: DepthPngOptions): Uint8Array {
  assertOptions("options", options as unknown, ["scale"]);
  const scale = options?.scale ?? 1000;
  if (!isFiniteNumber(scale) || scale <= 0) throw invalidParameter("options.scale", "a positive number of units per metre", scale);
  const { data, height, width } = depthMap(depth, "depth");
  const rowBytes = 1 + 2 * width;
  const raw = Buffer.alloc(rowBytes * height);
  for (let y = 0; y < height; y++) {
    const row = y * rowBytes;
    raw[row] = FILTER_SUB;
    // The filter works on bytes, not samples: each byte minus the byte 2 to its left, modulo 256.
    let previousHigh = 0;
    let previousLow = 0;
    for (let x = 0; x < width; x++) {
      const metres = data[y * width + x];
      const value = metres > 0 && metres < Infinity ? Math.min(65535, Math.round(metres * scale)) : 0;
      const high = value >> 8;
      const low = value & 0xff;
      raw[row + 1 + 2 * x] = (high - previousHigh) & 0xff;
      raw[row + 2 + 2 * x] = (low - previousLow) & 0xff;
      previousHigh = high;
      previousLow = low;
    }
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 16; // bit depth
  header[9] = 0; // colour type: greyscale
  return Buffer.concat([PNG_SIGNATURE, pngChunk("IHDR", header), pngChunk("IDAT", deflateSync(raw)), pngChunk("IEND", new Uint8Array(0))]);
}

/**
 * Writes a float32 [H, W] depth map in metres as a 16-bit greyscale PNG of depth × scale (default:
 * millimetres), 0 where there is no depth, atomically.
 * @throws {@link endosynth!InputError | InputError} for a depth that is not float32 [H, W], or a bad scale.
 */
export function writeDepthPng16(path: string, depth: NdArray<"float32">, options?: DepthPngOptions): void {
  assertString("path", path);
  writeFileAtomicSync(path, encodeDepthPng16(depth, options));
}

/** TIFF tags of a one-strip, uncompressed, float32 greyscale image. */
const TIFF_TAGS = { width: 256, height: 257, bitsPerSample: 258, compression: 259, photometric: 262, stripOffsets: 273, samplesPerPixel: 277, rowsPerStrip: 278, stripByteCounts: 279, planarConfig: 284, sampleFormat: 339 };
const SHORT = 3;
const LONG = 4;
const IEEE_FLOAT = 3;

/** Little-endian float32 TIFF bytes of `depth` (metres): header, one IFD, one strip. */
export function encodeDepthTiff(depth: NdArray<"float32">): Uint8Array[] {
  const { data, height, width } = depthMap(depth, "depth");
  const dataBytes = data.byteLength;
  if (dataBytes > 0xffffffff) throw new InputError(`A ${width}x${height} float32 image is too large for a classic TIFF strip`, { key: "depth" });
  const entries: [number, number, number][] = [
    [TIFF_TAGS.width, LONG, width],
    [TIFF_TAGS.height, LONG, height],
    [TIFF_TAGS.bitsPerSample, SHORT, 32],
    [TIFF_TAGS.compression, SHORT, 1],
    [TIFF_TAGS.photometric, SHORT, 1], // black is zero
    [TIFF_TAGS.stripOffsets, LONG, 0], // set below
    [TIFF_TAGS.samplesPerPixel, SHORT, 1],
    [TIFF_TAGS.rowsPerStrip, LONG, height],
    [TIFF_TAGS.stripByteCounts, LONG, dataBytes],
    [TIFF_TAGS.planarConfig, SHORT, 1],
    [TIFF_TAGS.sampleFormat, SHORT, IEEE_FLOAT],
  ];
  const ifdOffset = 8;
  const headerBytes = ifdOffset + 2 + entries.length * 12 + 4;
  // The pixels start at a multiple of 16 bytes, so readers may map them as floats in place.
  const dataOffset = Math.ceil(headerBytes / 16) * 16;
  entries[5][2] = dataOffset;
  const header = Buffer.alloc(dataOffset);
  header.write("II", 0, "latin1");
  header.writeUInt16LE(42, 2);
  header.writeUInt32LE(ifdOffset, 4);
  header.writeUInt16LE(entries.length, ifdOffset);
  entries.forEach(([tag, type, value], i) => {
    const at = ifdOffset + 2 + i * 12;
    header.writeUInt16LE(tag, at);
    header.writeUInt16LE(type, at + 2);
    header.writeUInt32LE(1, at + 4);
    if (type === SHORT) header.writeUInt16LE(value, at + 8);
    else header.writeUInt32LE(value, at + 8);
  });
  header.writeUInt32LE(0, ifdOffset + 2 + entries.length * 12); // no next IFD
  return [header, new Uint8Array(data.buffer, data.byteOffset, dataBytes)];
}

/**
 * Writes a float32 [H, W] depth map in metres as a 32-bit float TIFF, atomically.
 * @throws {@link endosynth!InputError | InputError} for a depth that is not float32 [H, W].
 */
export function writeDepthTiff(path: string, depth: NdArray<"float32">): void {
  assertString("path", path);
  writeFileAtomicSync(path, encodeDepthTiff(depth));
}

/**
 * CRC-32 of `bytes` continuing from `crc`. Node hands zlib a null pointer for an empty view of an
 * empty ArrayBuffer, and zlib's crc32 answers 0 for a null buffer: empty input must not reach it.
 */
function crcUpdate(bytes: Uint8Array, crc: number): number {
  return bytes.byteLength === 0 ? crc : crc32(bytes, crc);
}

/**
 * zlib's crc32_combine: the CRC-32 of A‖B from crc(A), crc(B) and B's length, without reading either again.
 * @internal
 */
export function crc32Combine(crcA: number, crcB: number, lengthB: number): number {
  if (lengthB <= 0) return crcA >>> 0;
  const times = (matrix: Uint32Array, vector: number): number => {
    let sum = 0;
    for (let i = 0, rest = vector >>> 0; rest !== 0; i++, rest >>>= 1) if (rest & 1) sum ^= matrix[i];
    return sum >>> 0;
  };
  const square = (out: Uint32Array, matrix: Uint32Array): void => {
    for (let n = 0; n < 32; n++) out[n] = times(matrix, matrix[n]);
  };
  const even = new Uint32Array(32);
  const odd = new Uint32Array(32);
  odd[0] = 0xedb88320; // the reflected CRC-32 polynomial: one zero bit
  for (let n = 1, row = 1; n < 32; n++, row <<= 1) odd[n] = row;
  square(even, odd); // two zero bits
  square(odd, even); // four zero bits
  let crc = crcA >>> 0;
  let remaining = lengthB;
  // Apply lengthB zero bytes to crcA, squaring the operator for each bit of the length.
  for (;;) {
    square(even, odd);
    if (remaining % 2 === 1) crc = times(even, crc);
    remaining = Math.floor(remaining / 2);
    if (remaining === 0) break;
    square(odd, even);
    if (remaining % 2 === 1) crc = times(odd, crc);
    remaining = Math.floor(remaining / 2);
    if (remaining === 0) break;
  }
  return (crc ^ crcB) >>> 0;
}

const LOCAL_HEADER = 0x04034b50;
const CENTRAL_HEADER = 0x02014b50;
const ZIP64_END = 0x06064b50;
const ZIP64_LOCATOR = 0x07064b50;
const END_OF_DIRECTORY = 0x06054b50;
const ZIP64_VERSION = 45;
const ZIP64_EXTRA = 0x0001;
const PADDING_EXTRA = 0x4246; // torch.save's alignment padding id; readers skip unknown ids
const SATURATED = 0xffffffff;
/** 1980-01-01 00:00 in MS-DOS format: the same frames always give the same bytes. */
const DOS_DATE = (0 << 9) | (1 << 5) | 1;
const MEMBER_ALIGN = 64;
/** Room reserved in the depth member's .npy header for the frame count, written last. */
const MAX_FRAMES_DIGITS = 15;

interface Member {
  name: Buffer;
  offset: number;
  size: number;
  crc: number;
}

/** A zip64 local header whose data starts at a multiple of 64 bytes. */
function localHeader(name: Buffer, offset: number, crc: number, size: number): Buffer {
  const unpadded = 30 + name.length + 20;
  const padding = (MEMBER_ALIGN - ((unpadded + 4 + offset) % MEMBER_ALIGN)) % MEMBER_ALIGN;
  const header = Buffer.alloc(unpadded + 4 + padding);
  header.writeUInt32LE(LOCAL_HEADER, 0);
  header.writeUInt16LE(ZIP64_VERSION, 4);
  header.writeUInt16LE(DOS_DATE, 12);
  header.writeUInt32LE(crc, 14);
  header.writeUInt32LE(SATURATED, 18);
  header.writeUInt32LE(SATURATED, 22);
  header.writeUInt16LE(name.length, 26);
  header.writeUInt16LE(20 + 4 + padding, 28);
  name.copy(header, 30);
  const extra = 30 + name.length;
  header.writeUInt16LE(ZIP64_EXTRA, extra);
  header.writeUInt16LE(16, extra + 2);
  header.writeBigUInt64LE(BigInt(size), extra + 4);
  header.writeBigUInt64LE(BigInt(size), extra + 12);
  header.writeUInt16LE(PADDING_EXTRA, extra + 20);
  header.writeUInt16LE(padding, extra + 22);
  return header;
}

function centralHeader(member: Member): Buffer {
  const header = Buffer.alloc(46 + member.name.length + 28);
  header.writeUInt32LE(CENTRAL_HEADER, 0);
  header.writeUInt16LE(ZIP64_VERSION, 4);
  header.writeUInt16LE(ZIP64_VERSION, 6);
  header.writeUInt16LE(DOS_DATE, 14);
  header.writeUInt32LE(member.crc, 16);
  header.writeUInt32LE(SATURATED, 20);
  header.writeUInt32LE(SATURATED, 24);
  header.writeUInt16LE(member.name.length, 28);
  header.writeUInt16LE(28, 30);
  header.writeUInt32LE(SATURATED, 42);
  member.name.copy(header, 46);
  const extra = 46 + member.name.length;
  header.writeUInt16LE(ZIP64_EXTRA, extra);
  header.writeUInt16LE(24, extra + 2);
  header.writeBigUInt64LE(BigInt(member.size), extra + 4);
  header.writeBigUInt64LE(BigInt(member.size), extra + 12);
  header.writeBigUInt64LE(BigInt(member.offset), extra + 20);
  return header;
}

function endRecords(count: number, directoryOffset: number, directorySize: number): Buffer {
  const records = Buffer.alloc(56 + 20 + 22);
  records.writeUInt32LE(ZIP64_END, 0);
  records.writeBigUInt64LE(44n, 4);
  records.writeUInt16LE(ZIP64_VERSION, 12);
  records.writeUInt16LE(ZIP64_VERSION, 14);
  records.writeBigUInt64LE(BigInt(count), 24);
  records.writeBigUInt64LE(BigInt(count), 32);
  records.writeBigUInt64LE(BigInt(directorySize), 40);
  records.writeBigUInt64LE(BigInt(directoryOffset), 48);
  records.writeUInt32LE(ZIP64_LOCATOR, 56);
  records.writeBigUInt64LE(BigInt(directoryOffset + directorySize), 64);
  records.writeUInt32LE(1, 72);
  records.writeUInt32LE(END_OF_DIRECTORY, 76);
  records.writeUInt16LE(0xffff, 84);
  records.writeUInt16LE(0xffff, 86);
  records.writeUInt32LE(SATURATED, 88);
  records.writeUInt32LE(SATURATED, 92);
  return records;
}

/** The depth member's .npy header, padded to the length reserved for any frame count. */
function stackHeader(frames: number, height: number, width: number): Buffer {
  const dict = (count: string) => `{'descr': '<f4', 'fortran_order': False, 'shape': (${count}, ${height}, ${width}), }`;
  const length = Math.ceil((10 + dict("9".repeat(MAX_FRAMES_DIGITS)).length + 1) / MEMBER_ALIGN) * MEMBER_ALIGN;
  const header = Buffer.alloc(length, 0x20);
  header.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0);
  header.writeUInt16LE(length - 10, 8);
  header.write(dict(String(frames)), 10, "latin1");
  header[length - 1] = 0x0a;
  return header;
}

const DEPTH_MEMBER = Buffer.from("depth.npy");

/** Per-frame facts stored beside the depth stack. */
export interface StackedFrame {
  /** Timestamp in seconds (NaN when there is none, e.g. a still image). */
  pts?: number;
  /** The frame's number in its source (gaps are dropped frames); default: its position in the stack. */
  frameNumber?: number;
}

/**
 * Writes depth maps one by one into a single `.npz`: `depth` float32 [N, H, W] metres, `pts`
 * float64 [N] seconds and `frame_number` int64 [N], readable by `np.load` and {@link endosynth/io!readNpz | readNpz}.
 * The pixels go straight to disk as they come; the frame count and checksums are written by
 * `close()`, which renames the finished archive onto `path`. `abort()` leaves `path` untouched.
 *
 * @example
 * ```ts
 * const stack = new DepthStackWriter("depth.npz");
 * for await (const { depth, pts } of frames) stack.add(depth, { pts });
 * stack.close();
 * ```
 */
export class DepthStackWriter {
  /** The file `close()` creates. */
  readonly path: string;
  readonly #temporary: string;
  readonly #fd: number;
  readonly #pts: number[] = [];
  readonly #frameNumbers: number[] = [];
  #size: [number, number] | undefined;
  #headerLength = 0;
  #dataCrc = 0;
  #dataBytes = 0;
  #offset = 0;
  #state: "open" | "closed" | "aborted" = "open";

  constructor(path: string) {
    assertString("path", path);
    this.path = path;
    this.#temporary = temporaryPathFor(path);
    this.#fd = openSync(this.#temporary, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL);
  }

  /** Frames added so far. */
  get frames(): number {
    return this.#pts.length;
  }

  #write(bytes: Uint8Array, position?: number): void {
    for (let done = 0; done < bytes.byteLength; ) done += writeSync(this.#fd, bytes, done, bytes.byteLength - done, position === undefined ? null : position + done);
    if (position === undefined) this.#offset += bytes.byteLength;
  }

  /**
   * Appends one float32 [H, W] depth map (all of the same size).
   * @throws {@link endosynth!InputError | InputError} for another dtype or shape, or a size unlike the first frame's.
   */
  add(depth: NdArray<"float32">, frame: StackedFrame = {}): void {
    if (this.#state !== "open") throw new DisposedError(`The depth stack ${this.path}`);
    assertOptions("frame", frame as unknown, ["pts", "frameNumber"]);
    const { data, height, width } = depthMap(depth, "depth");
    const pts = frame.pts ?? Number.NaN;
    const frameNumber = frame.frameNumber ?? this.frames;
    if (typeof pts !== "number") throw invalidParameter("frame.pts", "a number of seconds", pts);
    if (!Number.isSafeInteger(frameNumber) || frameNumber < 0) throw invalidParameter("frame.frameNumber", "a non-negative integer", frameNumber);
    if (this.#size === undefined) {
      this.#begin(height, width);
    } else if (this.#size[0] !== height || this.#size[1] !== width) {
      throw new InputError(`Expected every depth map of ${this.path} to be ${this.#size[0]}x${this.#size[1]} like the first, but frame ${this.frames} is ${height}x${width}`, { file: this.path, key: "depth" });
    }
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    this.#write(bytes);
    this.#dataCrc = crcUpdate(bytes, this.#dataCrc);
    this.#dataBytes += bytes.byteLength;
    this.#pts.push(pts);
    this.#frameNumbers.push(frameNumber);
  }

  /** The depth member's headers, as placeholders: sizes, checksum and frame count come at the end. */
  #begin(height: number, width: number): void {
    this.#size = [height, width];
    this.#write(localHeader(DEPTH_MEMBER, 0, 0, 0));
    const header = stackHeader(0, height, width);
    this.#headerLength = header.length;
    this.#write(header);
  }

  #addSmallMember(name: string, parts: Uint8Array[]): Member {
    const encodedName = Buffer.from(name);
    const size = parts.reduce((total, part) => total + part.byteLength, 0);
    const crc = parts.reduce((value, part) => crcUpdate(part, value), 0);
    const offset = this.#offset;
    this.#write(localHeader(encodedName, offset, crc, size));
    for (const part of parts) this.#write(part);
    return { name: encodedName, offset, size, crc };
  }

  /**
   * Writes the frame count, the checksums, `pts`, `frame_number` and the zip directory, then
   * renames the archive onto `path`. With no frame added, `depth` is [0, 0, 0].
   */
  close(): void {
    if (this.#state !== "open") throw new DisposedError(`The depth stack ${this.path}`);
    try {
      if (this.#size === undefined) this.#begin(0, 0);
      const [height, width] = this.#size!;
      const header = stackHeader(this.frames, height, width);
      const depth: Member = { name: DEPTH_MEMBER, offset: 0, size: this.#headerLength + this.#dataBytes, crc: crc32Combine(crc32(header), this.#dataCrc, this.#dataBytes) };
      const local = localHeader(DEPTH_MEMBER, 0, depth.crc, depth.size);
      this.#write(local, 0);
      this.#write(header, local.length);
      const members = [
        depth,
        this.#addSmallMember("pts.npy", encodeNpy({ data: Float64Array.from(this.#pts), shape: [this.frames], dtype: "float64" })),
        this.#addSmallMember("frame_number.npy", encodeNpy({ data: BigInt64Array.from(this.#frameNumbers, BigInt), shape: [this.frames], dtype: "int64" })),
      ];
      const directoryOffset = this.#offset;
      for (const member of members) this.#write(centralHeader(member));
      this.#write(endRecords(members.length, directoryOffset, this.#offset - directoryOffset));
      fsyncSync(this.#fd);
      closeSync(this.#fd);
      renameSync(this.#temporary, this.path);
      this.#state = "closed";
    } catch (error) {
      this.abort();
      throw error;
    }
  }

  /** Removes the unfinished archive; `path` is left as it was. Idempotent. */
  abort(): void {
    if (this.#state !== "open") return;
    this.#state = "aborted";
    closeSync(this.#fd);
    rmSync(this.#temporary, { force: true });
  }
}
