/**
 * NumPy `.npy` files: read and written without Python, byte-compatible with `np.load`/`np.save`.
 *
 * Reading covers format versions 1.0, 2.0 and 3.0; dtypes bool, (u)int8/16/32/64, float16/32/64 in
 * little-, big- or native-endian spelling; C and Fortran order (Fortran arrays are transposed to C
 * order). Little-endian C-order data is not copied when its offset suits the element type: the
 * array is a view of the bytes given (so it keeps them alive); at any other offset it is copied.
 * float16 is decoded to a `Float32Array` by default, dtype still `"float16"`; `{ halfPrecision:
 * "raw" }` keeps the 16-bit patterns.
 *
 * Headers are checked as `np.load` checks them (at most 10,000 characters, exactly the keys descr,
 * fortran_order and shape, integer dimensions, at most 64 of them) and parsed without recursion.
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

/** NumPy's `max_header_size` default: longer headers are refused by `np.load` as unsafe to parse. */
export const MAX_HEADER_CHARS = 10_000;
/** NumPy's NPY_MAXDIMS (NumPy 2): no array has more dimensions. */
export const MAX_RANK = 64;
/** A format 3.0 header is UTF-8: at most 4 bytes per character. */
const MAX_HEADER_BYTES = 4 * MAX_HEADER_CHARS;
/** Literal nesting far beyond the two levels of a structured dtype, refused before it costs anything. */
const MAX_NESTING = 32;
const HEADER_KEYS = ["descr", "fortran_order", "shape"];

/** A Python number literal, kept as written so `4.0` and `4` stay different. */
class PyNumber {
  constructor(readonly text: string) {}
}

/** A Python list (a tuple is a plain array): a list `descr` is a structured dtype. */
class PyList {
  constructor(readonly items: unknown[]) {}
}

interface Container {
  close: "}" | ")" | "]";
  items: unknown[];
}

const CLOSING = { "{": "}", "(": ")", "[": "]" } as const;
const NUMBER = /^[-+]?(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][-+]?\d+)?[lLjJ]?/;

/**
 * Parses the header dict, a Python literal such as
 * `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`, with an explicit stack (no
 * recursion: nesting cannot overflow the call stack). Understood: strings, numbers, True, False,
 * None, tuples, lists and dicts, the literals `ast.literal_eval` accepts in an .npy header.
 */
function parseLiteral(text: string, fail: (what: string, at: number) => never): unknown {
  const stack: Container[] = [];
  let at = 0;
  let value: unknown;
  let expectValue = true;
  for (;;) {
    at = skipSpace(text, at);
    if (expectValue) {
      const char = text[at];
      if (char === "{" || char === "(" || char === "[") {
        if (stack.length >= MAX_NESTING) fail(`literals nested more than ${MAX_NESTING} deep`, at);
        stack.push({ close: CLOSING[char], items: [] });
        at = skipSpace(text, at + 1);
        if (text[at] !== stack[stack.length - 1].close) continue;
        value = closeContainer(stack.pop()!, fail, at++);
      } else {
        [value, at] = parseScalar(text, at, fail);
      }
      expectValue = false;
      continue;
    }
    const container = stack[stack.length - 1];
    if (container === undefined) {
      if (at !== text.length) fail("unexpected text after the header dict", at);
      return value;
    }
    container.items.push(value);
    const char = text[at];
    if (container.close === "}" && container.items.length % 2 === 1) {
      if (char !== ":") fail('expected ":"', at);
      at++;
      expectValue = true;
    } else if (char === ",") {
      at = skipSpace(text, at + 1);
      expectValue = text[at] !== container.close;
      if (!expectValue) value = closeContainer(stack.pop()!, fail, at++);
    } else if (char === container.close) {
      value = closeContainer(stack.pop()!, fail, at++);
    } else {
      fail(`expected "," or "${container.close}"`, at);
    }
  }
}

function skipSpace(text: string, at: number): number {
  while (at < text.length && (text[at] === " " || text[at] === "\t" || text[at] === "\n" || text[at] === "\r")) at++;
  return at;
}

function closeContainer(container: Container, fail: (what: string, at: number) => never, at: number): unknown {
  if (container.close === ")") return container.items;
  if (container.close === "]") return new PyList(container.items);
  const dict = new Map<string, unknown>();
  for (let i = 0; i < container.items.length; i += 2) {
    const key = container.items[i];
    if (typeof key !== "string") fail("a dict key that is not a string", at);
    dict.set(key as string, container.items[i + 1]);
  }
  return dict;
}

function parseScalar(text: string, at: number, fail: (what: string, at: number) => never): [unknown, number] {
  const char = text[at];
  if (char === "'" || char === '"') {
    let end = at + 1;
    while (end < text.length && text[end] !== char) end += text[end] === "\\" ? 2 : 1;
    if (end >= text.length) fail("unterminated string", at);
    return [text.slice(at + 1, end), end + 1];
  }
  for (const [word, value] of [["True", true], ["False", false], ["None", null]] as const) {
    if (text.startsWith(word, at)) return [value, at + word.length];
  }
  const number = NUMBER.exec(text.slice(at, at + 64));
  if (number) return [new PyNumber(number[0]), at + number[0].length];
  return fail("unexpected value", at);
}

/** A dimension as NumPy accepts it: a non-negative integer literal that fits. */
function dimension(value: unknown, shapeText: string, fail: (what: string) => never): number {
  if (!(value instanceof PyNumber)) return fail(`expected a tuple of integers for 'shape' but found ${shapeText}`);
  const digits = /^\+?(\d+)[lL]?$/.exec(value.text.replaceAll("_", ""));
  if (digits === null) {
    if (/^-\d+[lL]?$/.test(value.text)) return fail(`negative dimension ${value.text} in shape ${shapeText}`);
    return fail(`dimension ${value.text} in shape ${shapeText} is not an integer`);
  }
  const dim = BigInt(digits[1]);
  if (dim > BigInt(Number.MAX_SAFE_INTEGER)) return fail(`dimension ${value.text} in shape ${shapeText} is too large`);
  return Number(dim);
}

function describeLiteral(value: unknown): string {
  if (value instanceof PyNumber) return value.text;
  if (value instanceof PyList) return `[${value.items.map(describeLiteral).join(", ")}]`;
  if (Array.isArray(value)) return `(${value.map(describeLiteral).join(", ")}${value.length === 1 ? "," : ""})`;
  if (value instanceof Map) return "a dict";
  if (value === null) return "None";
  if (value === undefined) return "nothing";
  return typeof value === "string" ? `'${value}'` : value ? "True" : "False";
}

/** The header dict, checked as `np.load` checks it: exactly its three keys, each of the right type. */
function parseHeader(text: string, source: NpySource): Header {
  const quoted = JSON.stringify(text.trim().slice(0, 200));
  const fail = (what: string): never => {
    throw npyError(`corrupt .npy header (${what}): ${quoted}`, source);
  };
  const dict = parseLiteral(text, (what, at) => fail(`${what} at character ${at}`));
  if (!(dict instanceof Map)) return fail("it is not a dict");
  const keys = [...dict.keys()];
  const unexpected = keys.filter((key) => !HEADER_KEYS.includes(key));
  const missing = HEADER_KEYS.filter((key) => !dict.has(key));
  if (unexpected.length > 0 || missing.length > 0) {
    const what = unexpected.length > 0 ? `unexpected key '${unexpected[0]}'` : `missing key '${missing[0]}'`;
    fail(`${what}: a header has exactly 'descr', 'fortran_order' and 'shape'`);
  }
  const descr = dict.get("descr");
  const fortranOrder = dict.get("fortran_order");
  const shape = dict.get("shape");
  if (descr instanceof PyList) throw npyError(`unsupported dtype: structured arrays (descr ${describeLiteral(descr)})`, source);
  if (typeof descr !== "string") throw npyError(`corrupt .npy header: expected a string 'descr' but found ${describeLiteral(descr)}`, source);
  if (typeof fortranOrder !== "boolean") {
    throw npyError(`corrupt .npy header: expected True or False for 'fortran_order' but found ${describeLiteral(fortranOrder)}`, source);
  }
  const shapeText = describeLiteral(shape);
  const shapeFail = (what: string): never => {
    throw npyError(`corrupt .npy header: ${what}`, source);
  };
  if (!Array.isArray(shape)) return shapeFail(`expected a tuple of integers for 'shape' but found ${shapeText}`);
  if (shape.length > MAX_RANK) return shapeFail(`shape ${shapeText.slice(0, 80)}... has ${shape.length} dimensions; NumPy arrays have at most ${MAX_RANK}`);
  return { descr, fortranOrder, shape: shape.map((d) => dimension(d, shapeText, shapeFail)) };
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

/** What the preamble and header of an .npy file say. */
interface NpyLayout {
  header: Header;
  dtype: DType;
  littleEndian: boolean;
  /** Where the data starts. */
  dataOffset: number;
  /** Bytes of data the shape and dtype need. */
  dataLength: number;
}

/** Parses the preamble and header (which `bytes` must hold in full, the data may be absent). */
function readLayout(bytes: Uint8Array, source: NpySource): NpyLayout {
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
  const tooLong = () => npyError(`the .npy header is longer than NumPy's limit of ${MAX_HEADER_CHARS} characters (np.load refuses it as unsafe)`, source);
  if (headerLength > MAX_HEADER_BYTES) throw tooLong();
  const dataOffset = preamble + headerLength;
  if (dataOffset > bytes.length) {
    throw npyError(`truncated .npy file: the header needs ${dataOffset} bytes but the file has ${bytes.length}`, source);
  }
  const headerBytes = bytes.subarray(preamble, dataOffset);
  const text = Buffer.from(headerBytes.buffer, headerBytes.byteOffset, headerBytes.byteLength).toString(major === 3 ? "utf8" : "latin1");
  if (text.length > MAX_HEADER_CHARS) throw tooLong();
  const header = parseHeader(text, source);
  const { dtype, littleEndian } = parseDescr(header.descr, source);
  return { header, dtype, littleEndian, dataOffset, dataLength: size(header.shape) * ITEM_SIZE[dtype] };
}

/**
 * The size in bytes an .npy file must have, from its header alone: how an archive reader checks a
 * member's declared size before inflating it. `head` must hold the whole header.
 * @throws {@link endosynth!FileFormatError | FileFormatError} as {@link parseNpy} does for the preamble and header.
 */
export function npyFileLength(head: Uint8Array, source: NpySource = {}): number {
  const { dataOffset, dataLength } = readLayout(head, source);
  return dataOffset + dataLength;
}

/** The most bytes an .npy file's preamble and header can take: read that much to see all of it. */
export const MAX_NPY_HEADER_BYTES = PREAMBLE_V2 + MAX_HEADER_BYTES;

/** A typed view of `bytes` when aligned for the element type, otherwise of an aligned copy. */
function storageView(bytes: Uint8Array, dtype: DType, length: number): StoredArray {
  const Storage = STORED_ARRAYS[dtype];
  const itemSize = ITEM_SIZE[dtype];
  // A copy into a fresh buffer (never Buffer#slice, which is a view with the same misalignment).
  const aligned = bytes.byteOffset % itemSize === 0 ? bytes : new Uint8Array(bytes);
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
 * @throws {@link endosynth!FileFormatError | FileFormatError} naming file and key, for a bad magic, an unknown version or dtype, a
 * corrupt header, or a data size that does not match the shape (expected vs actual bytes).
 */
export function parseNpy(bytes: Uint8Array, source: NpySource = {}, options?: ReadNpyOptions): NdArray {
  if (!(bytes instanceof Uint8Array)) throw invalidParameter("bytes", "a Uint8Array", bytes);
  assertOptions("options", options as unknown, ["halfPrecision"]);
  const halfPrecision = options?.halfPrecision ?? "decoded";
  assertOneOf("options.halfPrecision", halfPrecision, HALF_PRECISIONS);
  const { header, dtype, littleEndian, dataOffset, dataLength } = readLayout(bytes, source);
  const length = size(header.shape);
  const itemSize = ITEM_SIZE[dtype];
  const actualBytes = bytes.length - dataOffset;
  if (actualBytes !== dataLength) {
    throw npyError(
      `${actualBytes < dataLength ? "truncated" : "corrupt"} .npy data: shape ${formatShape(header.shape)} of ${dtype} needs ${dataLength} bytes but ${actualBytes} follow the header`,
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
 * @throws {@link endosynth!FileFormatError | FileFormatError} when the file cannot be read (naming it), and see {@link parseNpy}.
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
 * Encodes an NdArray as a `.npy` file (format 1.0, C order,
 * little-endian, header padded so the data starts at a multiple of 64 bytes as NumPy does).
 * Returns the header and the data as separate buffers; the data buffer is a view of the array's own
 * memory (no copy) except for decoded float16, which is encoded to its 16-bit patterns.
 *
 * @param name what to call the array in error messages.
 * @throws {@link endosynth!InputError | InputError} for an invalid array, a dtype `.npy` cannot hold (bfloat16), or more than
 * 64 dimensions (NumPy's limit).
 */
export function encodeNpy(array: NdArray, name = "array"): Uint8Array[] {
  validateNdArray(array, name);
  const code = CODE_OF_DTYPE[array.dtype];
  if (code === undefined) throw new InputError(`Cannot write dtype ${array.dtype} of ${name} to .npy: NumPy has no such type`, { key: name });
  if (array.shape.length > MAX_RANK) {
    throw new InputError(`Cannot write ${name} to .npy: it has ${array.shape.length} dimensions and NumPy arrays have at most ${MAX_RANK}`, { key: name });
  }
  const dict = `{'descr': '${code}', 'fortran_order': False, 'shape': ${formatShape(array.shape)}, }`;
  // The dict, a newline and spaces up to the alignment. With at most 64 dimensions it stays far
  // below 64 KiB, so format 1.0 (a u16 header length) always fits.
  const preamble = PREAMBLE_V1;
  const padded = Math.ceil((preamble + dict.length + 1) / HEADER_ALIGN) * HEADER_ALIGN;
  const header = Buffer.alloc(padded, 0x20);
  header.set(MAGIC, 0);
  header[6] = 1;
  header[7] = 0;
  header.writeUInt16LE(padded - preamble, 8);
  header.write(dict, preamble, "latin1");
  header[padded - 1] = 0x0a; // "\n"
  return [header, dataBytes(array)];
}

/**
 * Writes an NdArray to a `.npy` file that `np.load` reads, atomically (temporary file + rename).
 * @throws {@link endosynth!InputError | InputError} see {@link encodeNpy}.
 */
export function writeNpy(path: string, array: NdArray): void {
  assertString("path", path);
  writeFileAtomicSync(path, encodeNpy(array));
}
