/**
 * Reader of `.safetensors` files: an 8-byte little-endian header length, a JSON header mapping each
 * tensor name to `{ dtype, shape, data_offsets: [begin, end] }` (offsets into the bytes after the
 * header) plus an optional `__metadata__` of strings, then the little-endian, C-order tensor data.
 *
 * Checked as the reference implementation checks it: a header of at most 100 MB, integers only
 * where numbers belong (a `4.0` in a shape is refused, not read as 4), and tensors that tile the
 * data section exactly (no gaps, no overlaps: overlapping tensors would let a small file decode to
 * many times its size).
 * @module
 */
import { CheckpointError } from "../errors.js";
import { ITEM_SIZE, isShape, size, type DType, type NdArray } from "../ndarray/ndarray.js";
import type { HalfPrecision } from "../ndarray/ndarray.js";
import { contiguousStrides, tensorFromStorage } from "./tensor_data.js";

/** What a safetensors file holds. */
export interface SafetensorsContents {
  /** Every tensor, in header order. */
  readonly tensors: Map<string, NdArray>;
  /** The header's `__metadata__` (empty when absent). */
  readonly metadata: Record<string, string>;
  /** How many tensors had to be copied out of the file's bytes (unaligned or decoded halves). */
  readonly copiedTensors: number;
}

/** safetensors dtype names → ours. */
const DTYPES: Readonly<Record<string, DType>> = {
  BOOL: "bool", U8: "uint8", I8: "int8", U16: "uint16", I16: "int16", U32: "uint32", I32: "int32",
  U64: "uint64", I64: "int64", F16: "float16", BF16: "bfloat16", F32: "float32", F64: "float64",
};

const HEADER_LENGTH_BYTES = 8;
const OPENING_BRACE = 0x7b;
/** The reference implementation's MAX_HEADER_SIZE. */
const MAX_HEADER_BYTES = 100_000_000;

/** Whether `bytes` starts like a safetensors file (a plausible header length, then `{`). */
export function isSafetensors(bytes: Uint8Array): boolean {
  if (bytes.byteLength < HEADER_LENGTH_BYTES + 2) return false;
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  return headerLength >= 2n && headerLength <= BigInt(bytes.byteLength - HEADER_LENGTH_BYTES) && bytes[8] === OPENING_BRACE;
}

/**
 * Reads every tensor of a safetensors file held in `bytes` (views into it where alignment allows).
 * @param file the path, for messages.
 * @throws {@link endosynth!CheckpointError | CheckpointError} on a malformed header, an unknown dtype, or data outside the file.
 */
export function readSafetensors(bytes: Uint8Array, file: string | undefined, halfPrecision: HalfPrecision): SafetensorsContents {
  const fail = (message: string, key?: string) =>
    new CheckpointError(`${file ?? "safetensors data"}: ${key === undefined ? "" : `tensor '${key}': `}${message}`, { file, key });
  if (!isSafetensors(bytes)) throw fail("not a safetensors file (no header length followed by a JSON header)");
  const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (headerLength > MAX_HEADER_BYTES) throw fail(`its header claims ${headerLength} bytes, more than the ${MAX_HEADER_BYTES} the format allows`);
  const header = parseHeader(bytes.subarray(HEADER_LENGTH_BYTES, HEADER_LENGTH_BYTES + headerLength), fail);
  const data = bytes.subarray(HEADER_LENGTH_BYTES + headerLength);
  let metadata: Record<string, string> = {};
  const entries: [string, Entry][] = [];
  for (const [key, entry] of Object.entries(header)) {
    if (key === "__metadata__") metadata = parseMetadata(entry, fail);
    else entries.push([key, parseEntry(entry, data.byteLength, (message) => fail(message, key))]);
  }
  checkTiling(entries, data.byteLength, fail);
  const tensors = new Map<string, NdArray>();
  let copiedTensors = 0;
  for (const [key, { dtype, shape, begin, end }] of entries) {
    const tensor = tensorFromStorage(
      data.subarray(begin, end),
      { dtype, shape, stride: contiguousStrides(shape), offset: 0 },
      { bigEndian: false, halfPrecision },
    );
    if (tensor.copied) copiedTensors++;
    tensors.set(key, tensor.array);
  }
  return { tensors, metadata, copiedTensors };
}

type Fail = (message: string, key?: string) => CheckpointError;

interface Entry {
  dtype: DType;
  shape: number[];
  begin: number;
  end: number;
}

function parseHeader(json: Uint8Array, fail: Fail): Record<string, unknown> {
  let text: string;
  let header: unknown;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(json);
    header = JSON.parse(text);
  } catch (error) {
    throw fail(`the JSON header is not valid JSON (${(error as Error).message})`);
  }
  const fraction = firstNonInteger(text);
  if (fraction !== undefined) throw fail(`the JSON header holds the number ${fraction} where only non-negative integers belong (shapes, data_offsets)`);
  if (typeof header !== "object" || header === null || Array.isArray(header)) throw fail("the JSON header is not an object");
  return header as Record<string, unknown>;
}

function parseMetadata(entry: unknown, fail: Fail): Record<string, string> {
  if (typeof entry !== "object" || entry === null || Array.isArray(entry)) throw fail("__metadata__ is not an object");
  const metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(entry)) {
    if (typeof value !== "string") throw fail(`__metadata__.${name} is not a string`);
    metadata[name] = value;
  }
  return metadata;
}

/**
 * The first number in a JSON text written other than as a plain non-negative integer (`4.0`,
 * `1e3`, `-1`), if any: JSON.parse would turn `4.0` into 4, so the check reads the text itself.
 */
function firstNonInteger(text: string): string | undefined {
  for (let at = 0; at < text.length; at++) {
    const char = text[at];
    if (char === '"') {
      for (at++; at < text.length && text[at] !== '"'; at++) if (text[at] === "\\") at++;
    } else if (char === "-" || (char >= "0" && char <= "9")) {
      const token = /^-?[0-9.eE+-]+/.exec(text.slice(at, at + 400))![0];
      if (!/^\d+$/.test(token)) return token;
      at += token.length - 1;
    }
  }
  return undefined;
}

/** Tensors must cover the data section exactly, one after the other, as the reference implementation requires. */
function checkTiling(entries: readonly [string, Entry][], dataLength: number, fail: Fail): void {
  const ordered = [...entries].sort(([, a], [, b]) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  for (const [key, { begin, end }] of ordered) {
    if (begin !== expected) {
      throw fail(
        begin < expected
          ? `data_offsets [${begin}, ${end}] overlap the tensor before it (which ends at ${expected})`
          : `data_offsets [${begin}, ${end}] leave a gap after byte ${expected}`,
        key,
      );
    }
    expected = end;
  }
  if (expected !== dataLength) throw fail(`the tensors cover ${expected} bytes of data but ${dataLength} follow the header`);
}

function parseEntry(entry: unknown, dataLength: number, fail: (message: string) => CheckpointError): Entry {
  if (typeof entry !== "object" || entry === null) throw fail("its header entry is not an object");
  const { dtype: name, shape, data_offsets: offsets } = entry as Record<string, unknown>;
  const dtype = typeof name === "string" ? DTYPES[name] : undefined;
  if (!dtype) throw fail(`unsupported dtype ${JSON.stringify(name)}; supported: ${Object.keys(DTYPES).join(", ")}`);
  if (!isShape(shape)) throw fail(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
    throw fail(`data_offsets ${JSON.stringify(offsets)} is not a pair of non-negative integers`);
  }
  const [begin, end] = offsets as [number, number];
  const expected = size(shape) * ITEM_SIZE[dtype];
  if (end - begin !== expected) {
    throw fail(`data_offsets [${begin}, ${end}] span ${end - begin} bytes but ${dtype} [${shape.join(", ")}] needs ${expected}`);
  }
  if (end > dataLength) throw fail(`data_offsets end at byte ${end} but the data section holds only ${dataLength} bytes (truncated file?)`);
  return { dtype, shape: [...shape], begin, end };
}
