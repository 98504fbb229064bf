/**
 * Turns a tensor's bytes inside a checkpoint's storage into an {@link NdArray}: a zero-copy view
 * when the tensor is contiguous, little-endian and aligned for its element type, else one copy
 * (strided gather, byte swap, or both). Shared by the PyTorch and safetensors readers.
 * @module
 */
import { decodeBfloat16, decodeFloat16 } from "../ndarray/float16.js";
import { ITEM_SIZE, size, STORED_ARRAYS, type DType, type HalfPrecision, type NdArray, type TypedArray } from "../ndarray/ndarray.js";

/** Where a tensor lies in its storage, in elements (as torch records it). */
export interface TensorLayout {
  /** Element type. */
  readonly dtype: DType;
  /** Dimensions, outermost first. */
  readonly shape: readonly number[];
  /** Step in elements between neighbours along each dimension. */
  readonly stride: readonly number[];
  /** Index of the first element in the storage. */
  readonly offset: number;
}

/** How the storage's bytes are to be read. */
export interface TensorDataOptions {
  /** The storage holds big-endian elements (a checkpoint saved on a big-endian machine). */
  readonly bigEndian: boolean;
  /** How float16/bfloat16 values are handed out. */
  readonly halfPrecision: HalfPrecision;
}

/** A tensor read from a storage, and whether its data had to be copied out of the file's bytes. */
export interface TensorData {
  /** The tensor, C order. */
  readonly array: NdArray;
  /** `false` when `array.data` is a view into the storage bytes. */
  readonly copied: boolean;
}

type RawConstructor = new (buffer: ArrayBufferLike, byteOffset: number, length: number) => TypedArray;

/** The strides of a C-contiguous tensor of this shape. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const stride = new Array<number>(shape.length);
  let step = 1;
  for (let axis = shape.length - 1; axis >= 0; axis--) {
    stride[axis] = step;
    step *= shape[axis];
  }
  return stride;
}

/** Whether the elements lie in C order without gaps (dimensions of size 1 may have any stride). */
export function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  if (size(shape) === 0) return true;
  let step = 1;
  for (let axis = shape.length - 1; axis >= 0; axis--) {
    if (shape[axis] !== 1 && stride[axis] !== step) return false;
    step *= shape[axis];
  }
  return true;
}

/** How many bytes of its storage a tensor reaches (0 for an empty tensor). */
export function layoutByteEnd(layout: TensorLayout): number {
  if (size(layout.shape) === 0) return 0;
  let last = layout.offset;
  for (let axis = 0; axis < layout.shape.length; axis++) last += (layout.shape[axis] - 1) * layout.stride[axis];
  return (last + 1) * ITEM_SIZE[layout.dtype];
}

/**
 * Reads a tensor out of its storage's bytes. The caller has checked that
 * `layoutByteEnd(layout) <= storage.byteLength`.
 */
export function tensorFromStorage(storage: Uint8Array, layout: TensorLayout, options: TensorDataOptions): TensorData {
  const { dtype, shape, stride, offset } = layout;
  const itemSize = ITEM_SIZE[dtype];
  const count = size(shape);
  const start = offset * itemSize;
  const contiguous = isContiguous(shape, stride);
  const swap = options.bigEndian && itemSize > 1;
  const RawArray: RawConstructor = STORED_ARRAYS[dtype];
  let raw: TypedArray;
  let copied: boolean;
  if (contiguous && !swap && (storage.byteOffset + start) % itemSize === 0) {
    raw = new RawArray(storage.buffer, storage.byteOffset + start, count);
    copied = false;
  } else {
    const bytes = contiguous ? copyBytes(storage.subarray(start, start + count * itemSize)) : gather(storage, layout);
    if (swap) swapBytes(bytes, itemSize);
    raw = new RawArray(bytes.buffer, 0, count);
    copied = true;
  }
  if ((dtype === "float16" || dtype === "bfloat16") && options.halfPrecision === "decoded") {
    const decoded = dtype === "float16" ? decodeFloat16(raw as Uint16Array) : decodeBfloat16(raw as Uint16Array);
    return { array: { data: decoded, shape: [...shape], dtype }, copied: true };
  }
  return { array: { data: raw, shape: [...shape], dtype } as NdArray, copied };
}

/** A copy in a fresh, hence aligned, buffer (never `Buffer#slice`, which is a view). */
function copyBytes(bytes: Uint8Array): Uint8Array {
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return copy;
}

/**
 * Copies a strided view into C order. Elements move as 1, 2 or 4-byte words (8-byte elements as
 * two words) so the bits travel untouched: no float canonicalisation, no BigInt per element.
 */
function gather(storage: Uint8Array, layout: TensorLayout): Uint8Array {
  const { shape, stride } = layout;
  const itemSize = ITEM_SIZE[layout.dtype];
  const unit = Math.min(itemSize, 4);
  const words = itemSize / unit;
  const count = size(shape);
  const Words = unit === 1 ? Uint8Array : unit === 2 ? Uint16Array : Uint32Array;
  const target = new Words(count * words);
  if (count === 0) return new Uint8Array(target.buffer);
  let span = storage.subarray(layout.offset * itemSize, layoutByteEnd(layout));
  if (span.byteOffset % unit !== 0) span = copyBytes(span);
  const source = new Words(span.buffer as ArrayBuffer, span.byteOffset, span.byteLength / unit);
  if (shape.length === 0) {
    target.set(source.subarray(0, words));
    return new Uint8Array(target.buffer);
  }
  const rank = shape.length;
  const inner = shape[rank - 1];
  const innerStep = stride[rank - 1] * words;
  const index = new Array<number>(rank).fill(0);
  let base = 0;
  let written = 0;
  for (;;) {
    for (let i = 0, from = base; i < inner; i++, from += innerStep) {
      for (let w = 0; w < words; w++) target[written++] = source[from + w];
    }
    let axis = rank - 2;
    for (; axis >= 0; axis--) {
      index[axis]++;
      base += stride[axis] * words;
      if (index[axis] < shape[axis]) break;
      base -= shape[axis] * stride[axis] * words;
      index[axis] = 0;
    }
    if (axis < 0) return new Uint8Array(target.buffer);
  }
}

/** Reverses the bytes of every element in place (big-endian storage → this machine's order). */
function swapBytes(bytes: Uint8Array, itemSize: number): void {
  const buffer = Buffer.from(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength);
  if (itemSize === 2) buffer.swap16();
  else if (itemSize === 4) buffer.swap32();
  else if (itemSize === 8) buffer.swap64();
}
