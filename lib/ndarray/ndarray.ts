/**
 * `NdArray`, the currency of the whole API: what the readers return, what `infer` takes and returns,
 * what the visualisers take. A plain object `{ data, shape, dtype }` (so it crosses worker threads
 * and `structuredClone` as is), with the elements in C order and the dtype spelled as NumPy does.
 *
 * @example
 * ```ts
 * import { ndarray, size } from "endosynth";
 * const depth = ndarray(new Float32Array(480 * 640), [480, 640]); // dtype "float32" from the data
 * size(depth.shape); // 307200
 * ```
 * @module
 */
import { InputError } from "../errors.js";
import { describe, invalidParameter } from "../is.js";

/** Element types, spelled as NumPy spells them (`bfloat16` as ml_dtypes does). */
export type DType =
  | "bool"
  | "uint8"
  | "int8"
  | "uint16"
  | "int16"
  | "uint32"
  | "int32"
  | "int64"
  | "uint64"
  | "float16"
  | "bfloat16"
  | "float32"
  | "float64";

/** All dtypes, in a stable order. */
export const DTYPES: readonly DType[] = [
  "bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "int64", "uint64", "float16", "bfloat16", "float32", "float64",
];

/**
 * The typed array that holds each dtype. `float16` and `bfloat16` are held either decoded
 * (`Float32Array`, every value exactly representable, the default of the readers) or as their raw
 * 16-bit patterns (`Uint16Array`, on request): the dtype stays the logical one either way, because
 * NumPy semantics (e.g. {@link endosynth!depth2rgb} computing in float16) depend on it.
 */
export interface DTypeData {
  /** NumPy `bool`: one byte per element, 0 or 1. */
  bool: Uint8Array;
  /** NumPy `uint8`. */
  uint8: Uint8Array;
  /** NumPy `int8`. */
  int8: Int8Array;
  /** NumPy `uint16`. */
  uint16: Uint16Array;
  /** NumPy `int16`. */
  int16: Int16Array;
  /** NumPy `uint32`. */
  uint32: Uint32Array;
  /** NumPy `int32`. */
  int32: Int32Array;
  /** NumPy `int64`. */
  int64: BigInt64Array;
  /** NumPy `uint64`. */
  uint64: BigUint64Array;
  /** IEEE half precision: decoded values (exact) or the raw 16-bit patterns. */
  float16: Float32Array | Uint16Array;
  /** bfloat16 (the top half of a float32): decoded values (exact) or the raw 16-bit patterns. */
  bfloat16: Float32Array | Uint16Array;
  /** NumPy `float32`. */
  float32: Float32Array;
  /** NumPy `float64`. */
  float64: Float64Array;
}

/**
 * How the readers ({@link readNpy}, {@link readSample}, {@link endosynth/checkpoint!readStateDict}, ...) hand out float16
 * and bfloat16 arrays: `"decoded"` (the default, what arithmetic wants) as a `Float32Array` of the
 * exact values, `"raw"` as a `Uint16Array` of their bit patterns (zero copy where the file allows).
 * The dtype stays the half-precision one either way.
 */
export type HalfPrecision = "decoded" | "raw";

/** Every {@link HalfPrecision}. */
export const HALF_PRECISIONS: readonly HalfPrecision[] = ["decoded", "raw"];

/** Any typed array an {@link NdArray} can hold. */
export type TypedArray = DTypeData[DType];

/** An n-dimensional array: elements in C (row-major) order, `data.length === size(shape)`. */
export interface NdArray<D extends DType = DType> {
  /** The elements, C order. May be a view into a larger buffer (mind `byteOffset`). */
  readonly data: DTypeData[D];
  /** Dimensions, outermost first. `[]` is a scalar. */
  readonly shape: readonly number[];
  /** Element type, as NumPy spells it. */
  readonly dtype: D;
}

/** Bytes per element of each dtype as stored in files (float16/bfloat16: 2). */
export const ITEM_SIZE: Readonly<Record<DType, number>> = {
  bool: 1, uint8: 1, int8: 1, uint16: 2, int16: 2, uint32: 4, int32: 4, int64: 8, uint64: 8,
  float16: 2, bfloat16: 2, float32: 4, float64: 8,
};

const CONSTRUCTORS = {
  bool: Uint8Array, uint8: Uint8Array, int8: Int8Array, uint16: Uint16Array, int16: Int16Array,
  uint32: Uint32Array, int32: Int32Array, int64: BigInt64Array, uint64: BigUint64Array,
  float16: Float32Array, bfloat16: Float32Array, float32: Float32Array, float64: Float64Array,
} as const;

/**
 * The typed array that holds each dtype's elements as files store them, for readers that view a
 * file's bytes in place: float16 and bfloat16 as their 16-bit patterns, decoded afterwards.
 * @internal
 */
export const STORED_ARRAYS = {
  bool: Uint8Array, uint8: Uint8Array, int8: Int8Array, uint16: Uint16Array, int16: Int16Array,
  uint32: Uint32Array, int32: Int32Array, int64: BigInt64Array, uint64: BigUint64Array,
  float16: Uint16Array, bfloat16: Uint16Array, float32: Float32Array, float64: Float64Array,
} as const;

/** One of the {@link STORED_ARRAYS}. @internal */
export type StoredArray = InstanceType<(typeof STORED_ARRAYS)[DType]>;

/** Number of elements of a shape (1 for a scalar). */
export function size(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Whether `shape` is a list of non-negative safe integers. */
export function isShape(shape: unknown): shape is readonly number[] {
  return Array.isArray(shape) && shape.every((d) => Number.isSafeInteger(d) && d >= 0);
}

/** The dtype a typed array holds by default (`Uint16Array` counts as uint16, `Uint8Array` as uint8). */
export function dtypeOf(data: TypedArray | Uint8ClampedArray): DType {
  if (data instanceof Uint8Array || data instanceof Uint8ClampedArray) return "uint8";
  if (data instanceof Int8Array) return "int8";
  if (data instanceof Uint16Array) return "uint16";
  if (data instanceof Int16Array) return "int16";
  if (data instanceof Uint32Array) return "uint32";
  if (data instanceof Int32Array) return "int32";
  if (data instanceof BigInt64Array) return "int64";
  if (data instanceof BigUint64Array) return "uint64";
  if (data instanceof Float32Array) return "float32";
  if (data instanceof Float64Array) return "float64";
  throw invalidParameter("data", "a typed array", data);
}

/** Whether `data` is a typed array that can hold `dtype`. */
export function holdsDType(data: unknown, dtype: DType): boolean {
  if (dtype === "float16" || dtype === "bfloat16") return data instanceof Float32Array || data instanceof Uint16Array;
  return data instanceof CONSTRUCTORS[dtype];
}

/**
 * Makes an NdArray from existing data, without copying. The dtype defaults to the typed array's
 * own (pass `"float16"`, `"bfloat16"` or `"bool"` explicitly for those).
 * @throws {@link endosynth!InputError | InputError} when the data does not fit the shape or the dtype.
 */
export function ndarray<D extends DType>(data: DTypeData[D], shape: readonly number[], dtype?: D): NdArray<D> {
  const array = { data, shape: [...shape], dtype: dtype ?? (dtypeOf(data) as D) };
  return validateNdArray(array, "ndarray");
}

/** A new zero-filled NdArray (decoded storage for float16/bfloat16). */
export function zeros<D extends DType>(shape: readonly number[], dtype: D): NdArray<D> {
  if (!isShape(shape)) throw invalidParameter("shape", "an array of non-negative integers", shape);
  const data = new CONSTRUCTORS[dtype](size(shape)) as DTypeData[D];
  return { data, shape: [...shape], dtype };
}

/**
 * Checks that a value is a consistent NdArray (known dtype, shape of non-negative integers, data of
 * the dtype's typed array with exactly `size(shape)` elements) and returns it.
 * @param name what to call it in the error message, e.g. `"depth"`.
 * @throws {@link endosynth!InputError | InputError}
 */
export function validateNdArray<D extends DType = DType>(value: unknown, name: string): NdArray<D> {
  if (typeof value !== "object" || value === null) throw invalidParameter(name, "an NdArray { data, shape, dtype }", value);
  const { data, shape, dtype } = value as Partial<NdArray>;
  if (typeof dtype !== "string" || !(DTYPES as readonly string[]).includes(dtype)) {
    throw invalidParameter(`${name}.dtype`, `one of ${DTYPES.join(", ")}`, dtype);
  }
  if (!isShape(shape)) throw invalidParameter(`${name}.shape`, "an array of non-negative integers", shape);
  if (!holdsDType(data, dtype)) {
    throw invalidParameter(`${name}.data`, `the typed array of dtype ${dtype}`, data);
  }
  const expected = size(shape);
  if ((data as TypedArray).length !== expected) {
    throw new InputError(
      `${name}.data has ${(data as TypedArray).length} elements but its shape [${shape.join(", ")}] needs ${expected}`,
      { key: name },
    );
  }
  return value as NdArray<D>;
}

/**
 * Checks dtype and rank (and optionally fixed dimensions: a number, or `-1` for any).
 * @example `expectArray(rgb, "rgb", "uint8", [-1, -1, 3])`
 */
export function expectArray<D extends DType>(
  value: unknown,
  name: string,
  dtype: D | readonly D[],
  dims?: readonly number[],
): NdArray<D> {
  const array = validateNdArray<D>(value, name);
  const dtypes: readonly DType[] = typeof dtype === "string" ? [dtype] : dtype;
  if (!dtypes.includes(array.dtype)) {
    throw new InputError(`Expected dtype ${dtypes.join(" or ")} for ${name} but received ${array.dtype}`, { key: name });
  }
  if (dims && (dims.length !== array.shape.length || dims.some((d, i) => d >= 0 && d !== array.shape[i]))) {
    const wanted = dims.map((d) => (d < 0 ? "N" : String(d))).join(", ");
    throw new InputError(`Expected shape [${wanted}] for ${name} but received [${array.shape.join(", ")}]`, { key: name });
  }
  return array;
}

/** The same data seen with another shape of the same size (no copy), like `numpy.reshape`. */
export function reshape<D extends DType>(array: NdArray<D>, shape: readonly number[]): NdArray<D> {
  if (!isShape(shape) || size(shape) !== size(array.shape)) {
    throw new InputError(`Cannot reshape an array of shape [${array.shape.join(", ")}] to ${describe(shape)} [${shape}]`);
  }
  return { data: array.data, shape: [...shape], dtype: array.dtype };
}

/** A fresh copy of the array (its own buffer). */
export function copy<D extends DType>(array: NdArray<D>): NdArray<D> {
  return { data: array.data.slice() as DTypeData[D], shape: [...array.shape], dtype: array.dtype };
}

/** Where the element at C-order `index` of an [H, W] map lies, for messages: `[row, column]`. */
export function formatPixel(index: number, width: number): string {
  const row = Math.floor(index / width);
  return `[${row}, ${index - row * width}]`;
}

/** Shape as NumPy prints it, for messages: `(1080, 1920, 3)`. */
export function formatShape(shape: readonly number[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
}
