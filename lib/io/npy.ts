/**
 * NumPy `.npy` files: read and written without Python, byte-compatible with `np.load`/`np.save`.
 *
 * Reading covers format versions 1.0, 2.0 and 3.0; dtypes bool, (u)int8/16/32/64, float16/32/64 in
 * little-, big- or native-endian spelling; C and Fortran order (Fortran arrays are transposed to C
 * order). Little-endian C-order data is not copied when its offset suits the element type: the
 * array is a view of the bytes given (so it keeps them alive). float16 is decoded to a
 * `Float32Array` by default, dtype still `"float16"`; `{ halfPrecision: "raw" }` keeps the 16-bit patterns.
 *
 * @example
 * ```ts
 * import { readNpy, writeNpy, ndarray } from "endosynth";
 * writeNpy("depth.npy", ndarray(new Float32Array([0.1, 0.2]), [1, 2]));
 * const depth = readNpy("depth.npy"); // { data: Float32Array [0.1, 0.2], shape: [1, 2], dtype: "float32" }
 * ```
 * @module
 */
import { FileFormatError, InputError } from "../errors.js";
import { assertOneOf, assertOptions, assertString, invalidParameter } from "../is.js";
import { decodeFloat16, encodeFloat16 } from "../ndarray/float16.js";
import {
  type DType,
  formatShape,
  HALF_PRECISIONS,
  type HalfPrecision,
  ITEM_SIZE,
  type NdArray,
  size,
  STORED_ARRAYS,
  type StoredArray,
  type TypedArray,
  validateNdArray,
} from "../ndarray/ndarray.js";
import { writeFileAtomicSync } from "./atomic.js";
import { readFileBytes } from "./read_file.js";

/** Options of the `.npy`/`.npz` readers. */
export interface ReadNpyOptions {
  /**
   * How float16 arrays come back: `"decoded"` (default) as a `Float32Array` of the exact values,
   * `"raw"` as the `Uint16Array` of their bit patterns. The dtype stays `"float16"` either way.
   */
  halfPrecision?: HalfPrecision;
}

/** Where bytes came from, for error messages: the file and, inside an archive, the member. */
export interface NpySource {
  /** The file read. */
  file?: string;
  /** The archive member (`.npz` key) read, if any. */
  key?: string;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"
const PREAMBLE_V1 = 10; // magic, version (2), header length (u16)
const PREAMBLE_V2 = 12; // header length is u32 from version 2.0 on
/** NumPy pads headers so the data starts at a multiple of 64 bytes (np.lib.format.ARRAY_ALIGN). */
const HEADER_ALIGN = 64;

/** dtype of each NumPy type code (kind + item size), e.g. "f4". */
const DTYPE_OF_CODE: Readonly<Record<string, DType>> = {
  b1: "bool", u1: "uint8", i1: "int8", u2: "uint16", i2: "int16", u4: "uint32", i4: "int32",
  u8: "uint64", i8: "int64", f2: "float16", f4: "float32", f8: "float64",
};

/** NumPy's names for the type codes we refuse, so the message says what the file holds. */
const UNSUPPORTED_NAMES: Readonly<Record<string, string>> = {
  c8: "complex64", c16: "complex128", f16: "float128 (longdouble)", c32: "complex256", O: "object (pickled Python objects)",
  M8: "datetime64", m8: "timedelta64", V: "void/structured", U: "str", S: "bytes",
};

const CODE_OF_DTYPE: Readonly<Partial<Record<DType, string>>> = {
  bool: "|b1", uint8: "|u1", int8: "|i1", uint16: "<u2", int16: "<i2", uint32: "<u4", int32: "<i4",
  uint64: "<u8", int64: "<i8", float16: "<f2", float32: "<f4", float64: "<f8",
};

const NATIVE_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function npyError(message: string, source: NpySource = {}): FileFormatError {
  const where = [source.file, source.key === undefined ? undefined : `member ${source.key}`].filter(Boolean).join(", ");
  return new FileFormatError(`${where ? `${where}: ` : ""}${message}`, { file: source.file, key: source.key });
}

interface Header {
  descr: string;
  fortranOrder: boolean;
  shape: number[];
}

/**
 * Parses the header dict, a Python literal such as
 * `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`. Only the literals NumPy writes
 * there are understood: strings, True/False, tuples of integers (and a list for structured dtypes,
 * which is reported as unsupported).
 */
function parseHeader(text: string, source: NpySource): Header {
  let at = 0;
  const fail = (what: string): never => {
    throw npyError(`corrupt .npy header (${what} at character ${at}): ${JSON.stringify(text.trim())}`, source);
  };
  const skipSpace = () => {
    while (at < text.length && /\s/.test(text[at])) at++;
  };
  const expect = (char: string) => {
    skipSpace();
    if (text[at] !== char) fail(`expected ${JSON.stringify(char)}`);
    at++;
  };
  const parseString = (): string => {
    skipSpace();
    const quote = text[at];
    if (quote !== "'" && quote !== '"') fail("expected a string");
    const end = text.indexOf(quote, at + 1);
    if (end < 0) fail("unterminated string");
    const value = text.slice(at + 1, end);
    at = end + 1;
    return value;
  };
  const parseValue = (): unknown => {
    skipSpace();
    const char = text[at];
    if (char === "'" || char === '"') return parseString();
    if (text.startsWith("True", at)) return (at += 4), true;
    if (text.startsWith("False", at)) return (at += 5), false;
    if (char === "(" || char === "[") {
      const close = char === "(" ? ")" : "]";
      at++;
      const items: unknown[] = [];
      for (;;) {
        skipSpace();
        if (text[at] === close) break;
        items.push(parseValue());
        skipSpace();
        if (text[at] === ",") at++;
        else if (text[at] !== close) fail(`expected "," or "${close}"`);
      }
      at++;
      return items;
    }
    const integer = /^\d+L?/.exec(text.slice(at));
    if (integer) {
      at += integer[0].length;
      return Number(integer[0].replace("L", ""));
    }
    return fail("unexpected value");
  };

  const fields = new Map<string, unknown>();
  expect("{");
  for (;;) {
    skipSpace();
    if (text[at] === "}") break;
    const key = parseString();
    expect(":");
    fields.set(key, parseValue());
    skipSpace();
    if (text[at] === ",") at++;
    else if (text[at] !== "}") fail('expected "," or "}"');
  }
  const descr = fields.get("descr");
  const fortranOrder = fields.get("fortran_order");
  const shape = fields.get("shape");
  if (Array.isArray(descr)) throw npyError(`unsupported dtype: structured arrays (descr ${JSON.stringify(descr)})`, source);
  if (typeof descr !== "string") throw npyError(`corrupt .npy header: expected a string 'descr' but found ${JSON.stringify(descr)}`, source);
  if (typeof fortranOrder !== "boolean") {
    throw npyError(`corrupt .npy header: expected True or False for 'fortran_order' but found ${JSON.stringify(fortranOrder)}`, source);
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d))) {
    throw npyError(`corrupt .npy header: expected a tuple of integers for 'shape' but found ${JSON.stringify(shape)}`, source);
  }
  return { descr, fortranOrder, shape: shape as number[] };
}

interface TypeCode {
  dtype: DType;
  littleEndian: boolean;
}

function parseDescr(descr: string, source: NpySource): TypeCode {
  const match = /^([<>|=]?)([a-zA-Z]\d*)$/.exec(descr);
  const code = match?.[2] ?? descr;
  const dtype = match ? DTYPE_OF_CODE[code] : undefined;
  if (dtype === undefined) {
    const known = UNSUPPORTED_NAMES[code] ?? UNSUPPORTED_NAMES[code.replace(/\d+$/, "")];
    throw npyError(
      `unsupported dtype ${JSON.stringify(descr)}${known ? ` (${known})` : ""}; supported: ${Object.values(DTYPE_OF_CODE).join(", ")}`,
      source,
    );
  }
  const order = match?.[1] ?? "";
  return { dtype, littleEndian: order === ">" ? false : order === "=" ? NATIVE_LITTLE_ENDIAN : true };
}

/** Where the header ends and the data starts, and the parsed header. */
function readPreamble(bytes: Uint8Array, source: NpySource): { header: Header; dataOffset: number } {
  if (bytes.length < PREAMBLE_V1 || MAGIC.some((byte, i) => bytes[i] !== byte)) {
    const found = Buffer.from(bytes.subarray(0, 6)).toString("latin1");
    throw npyError(
      bytes.length < PREAMBLE_V1
        ? `not a .npy file: ${bytes.length} bytes, too short for the ${PREAMBLE_V1}-byte preamble`
        : `not a .npy file: expected the magic "\\x93NUMPY" but found ${JSON.stringify(found)}`,
      source,
    );
  }
  const major = bytes[6];
  const minor = bytes[7];
  if (major < 1 || major > 3 || minor !== 0) throw npyError(`unsupported .npy format version ${major}.${minor} (known: 1.0, 2.0, 3.0)`, source);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const preamble = major === 1 ? PREAMBLE_V1 : PREAMBLE_V2;
  if (bytes.length < preamble) throw npyError(`truncated .npy file: ${bytes.length} bytes, shorter than its preamble`, source);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const dataOffset = preamble + headerLength;
  if (dataOffset > bytes.length) {
    throw npyError(`truncated .npy file: the header needs ${dataOffset} bytes but the file has ${bytes.length}`, source);
  }
  const headerBytes = bytes.subarray(preamble, dataOffset);
  const text = Buffer.from(headerBytes.buffer, headerBytes.byteOffset, headerBytes.byteLength).toString(major === 3 ? "utf8" : "latin1");
  return { header: parseHeader(text, source), dataOffset };
}

/** A typed view of `bytes` when aligned for the element type, otherwise of an aligned copy. */
function storageView(bytes: Uint8Array, dtype: DType, length: number): StoredArray {
  const Storage = STORED_ARRAYS[dtype];
  const itemSize = ITEM_SIZE[dtype];
  const aligned = bytes.byteOffset % itemSize === 0 ? bytes : bytes.slice();
  return new Storage(aligned.buffer as ArrayBuffer, aligned.byteOffset, length);
}

function byteSwapped(bytes: Uint8Array, itemSize: number): Uint8Array {
  const swapped = new Uint8Array(bytes.length);
  for (let item = 0; item < bytes.length; item += itemSize) {
    for (let b = 0; b < itemSize; b++) swapped[item + b] = bytes[item + itemSize - 1 - b];
  }
  return swapped;
}

/** Reorders Fortran-order (column-major) elements into C order. */
function fortranToC<T extends StoredArray>(data: T, shape: readonly number[]): T {
  const out = new (data.constructor as new (length: number) => T)(data.length);
  const rank = shape.length;
  // Fortran strides, in elements: the first axis varies fastest.
  const strides = new Array<number>(rank);
  let stride = 1;
  for (let axis = 0; axis < rank; axis++) {
    strides[axis] = stride;
    stride *= shape[axis];
  }
  const index = new Array<number>(rank).fill(0);
  let source = 0;
  for (let target = 0; target < out.length; target++) {
    (out as unknown as { [i: number]: unknown })[target] = (data as unknown as { [i: number]: unknown })[source];
    // Advance the C-order multi-index (last axis fastest) and follow it in Fortran strides.
    for (let axis = rank - 1; axis >= 0; axis--) {
      index[axis]++;
      source += strides[axis];
      if (index[axis] < shape[axis]) break;
      source -= strides[axis] * shape[axis];
      index[axis] = 0;
    }
  }
  return out;
}

/**
 * Parses the bytes of a `.npy` file (e.g. an `.npz` member) into an NdArray, without copying the
 * data when it is little-endian, C-order and suitably aligned.
 *
 * @param bytes the whole `.npy` content.
 * @param source the file (and archive member) it came from, for error messages.
 * @throws {FileFormatError} naming file and key, for a bad magic, an unknown version or dtype, a
 * corrupt header, or a data size that does not match the shape (expected vs actual bytes).
 */
export function parseNpy(bytes: Uint8Array, source: NpySource = {}, options?: ReadNpyOptions): NdArray {
  if (!(bytes instanceof Uint8Array)) throw invalidParameter("bytes", "a Uint8Array", bytes);
  assertOptions("options", options as unknown, ["halfPrecision"]);
  const halfPrecision = options?.halfPrecision ?? "decoded";
  assertOneOf("options.halfPrecision", halfPrecision, HALF_PRECISIONS);
  const { header, dataOffset } = readPreamble(bytes, source);
  const { dtype, littleEndian } = parseDescr(header.descr, source);
  if (header.shape.some((d) => d < 0)) throw npyError(`corrupt .npy header: negative dimension in shape ${formatShape(header.shape)}`, source);
  const length = size(header.shape);
  const itemSize = ITEM_SIZE[dtype];
  const expectedBytes = length * itemSize;
  const actualBytes = bytes.length - dataOffset;
  if (actualBytes !== expectedBytes) {
    throw npyError(
      `${actualBytes < expectedBytes ? "truncated" : "corrupt"} .npy data: shape ${formatShape(header.shape)} of ${dtype} needs ${expectedBytes} bytes but ${actualBytes} follow the header`,
      source,
    );
  }
  let raw = bytes.subarray(dataOffset);
  if (itemSize > 1 && littleEndian !== NATIVE_LITTLE_ENDIAN) raw = byteSwapped(raw, itemSize);
  let stored = storageView(raw, dtype, length);
  if (header.fortranOrder && header.shape.length > 1) stored = fortranToC(stored, header.shape);
  const data = dtype === "float16" && halfPrecision === "decoded" ? decodeFloat16(stored as Uint16Array) : stored;
  return { data: data as TypedArray, shape: header.shape, dtype };
}

/**
 * Reads a `.npy` file.
 * @param input a path, or the file's bytes.
 * @throws {FileFormatError} when the file cannot be read (naming it), and see {@link parseNpy}.
 */
export function readNpy(input: string | Uint8Array, options?: ReadNpyOptions): NdArray {
  if (typeof input === "string") return parseNpy(readFileBytes(input), { file: input }, options);
  if (input instanceof Uint8Array) return parseNpy(input, {}, options);
  throw invalidParameter("input", "a path or a Uint8Array", input);
}

/** The element bytes of an array as the `.npy` format stores them (little-endian; float16 as bits). */
function dataBytes(array: NdArray): Uint8Array {
  let data: TypedArray = array.data;
  if (array.dtype === "float16" && data instanceof Float32Array) data = encodeFloat16(data);
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return NATIVE_LITTLE_ENDIAN ? bytes : byteSwapped(bytes, ITEM_SIZE[array.dtype]);
}

/**
 * Encodes an NdArray as a `.npy` file (format 1.0, or 2.0 when the header needs it, C order,
 * little-endian, header padded so the data starts at a multiple of 64 bytes as NumPy does).
 * Returns the header and the data as separate buffers; the data buffer is a view of the array's own
 * memory (no copy) except for decoded float16, which is encoded to its 16-bit patterns.
 *
 * @param name what to call the array in error messages.
 * @throws {InputError} for an invalid array or a dtype `.npy` cannot hold (bfloat16).
 */
export function encodeNpy(array: NdArray, name = "array"): Uint8Array[] {
  validateNdArray(array, name);
  const code = CODE_OF_DTYPE[array.dtype];
  if (code === undefined) throw new InputError(`Cannot write dtype ${array.dtype} of ${name} to .npy: NumPy has no such type`, { key: name });
  const dict = `{'descr': '${code}', 'fortran_order': False, 'shape': ${formatShape(array.shape)}, }`;
  // The header is the dict, a newline, and spaces up to the alignment; version 1.0 counts it in a u16.
  const paddedLength = (preamble: number) => Math.ceil((preamble + dict.length + 1) / HEADER_ALIGN) * HEADER_ALIGN;
  const version1 = paddedLength(PREAMBLE_V1) - PREAMBLE_V1 <= 0xffff;
  const preamble = version1 ? PREAMBLE_V1 : PREAMBLE_V2;
  const padded = paddedLength(preamble);
  const header = Buffer.alloc(padded, 0x20);
  header.set(MAGIC, 0);
  header[6] = version1 ? 1 : 2;
  header[7] = 0;
  if (version1) header.writeUInt16LE(padded - preamble, 8);
  else header.writeUInt32LE(padded - preamble, 8);
  header.write(dict, preamble, "latin1");
  header[padded - 1] = 0x0a; // "\n"
  return [header, dataBytes(array)];
}

/**
 * Writes an NdArray to a `.npy` file that `np.load` reads, atomically (temporary file + rename).
 * @throws {InputError} see {@link encodeNpy}.
 */
export function writeNpy(path: string, array: NdArray): void {
  assertString("path", path);
  writeFileAtomicSync(path, encodeNpy(array));
}
