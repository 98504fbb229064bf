/**
 * Reader of `.safetensors` files: an 8-byte little-endian header length, a JSON header mapping each
 * tensor name to `{ dtype, shape, data_offsets: [begin, end] }` (offsets into the bytes after the
 * header) plus an optional `__metadata__` of strings, then the little-endian, C-order tensor data.
 * @internal
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

/** Whether `bytes` starts like a safetensors file (a plausible header length, then `{`). */
export function isSafetensors(bytes: Uint8Array): boolean {
  if (bytes.byteLength < HEADER_LENGTH_BYTES + 2) return false;
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  return headerLength >= 2n && headerLength <= BigInt(bytes.byteLength - HEADER_LENGTH_BYTES) && bytes[8] === OPENING_BRACE;
}

/**
 * Reads every tensor of a safetensors file held in `bytes` (views into it where alignment allows).
 * @param file the path, for messages.
 * @throws {CheckpointError} on a malformed header, an unknown dtype, or data outside the file.
 */
export function readSafetensors(bytes: Uint8Array, file: string | undefined, halfPrecision: HalfPrecision): SafetensorsContents {
  const fail = (message: string, key?: string) =>
    new CheckpointError(`${file ?? "safetensors data"}: ${key === undefined ? "" : `tensor '${key}': `}${message}`, { file, key });
  if (!isSafetensors(bytes)) throw fail("not a safetensors file (no header length followed by a JSON header)");
  const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  const header = parseHeader(bytes.subarray(HEADER_LENGTH_BYTES, HEADER_LENGTH_BYTES + headerLength), fail);
  const data = bytes.subarray(HEADER_LENGTH_BYTES + headerLength);
  const tensors = new Map<string, NdArray>();
  let metadata: Record<string, string> = {};
  let copiedTensors = 0;
  for (const [key, entry] of Object.entries(header)) {
    if (key === "__metadata__") {
      metadata = parseMetadata(entry, fail);
      continue;
    }
    const { dtype, shape, begin, end } = parseEntry(entry, data.byteLength, (message) => fail(message, key));
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

type Fail = (message: string) => CheckpointError;

function parseHeader(json: Uint8Array, fail: Fail): Record<string, unknown> {
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(json));
  } catch (error) {
    throw fail(`the JSON header is not valid JSON (${(error as Error).message})`);
  }
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

function parseEntry(entry: unknown, dataLength: number, fail: Fail): { dtype: DType; shape: number[]; begin: number; end: number } {
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
