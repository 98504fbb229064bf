/**
 * Static shape inference for the ops the graph builder emits, where it is cheap: enough for the
 * model builders to assert what they build (a wrong reshape fails at conversion time with a clear
 * message, not inside ONNX Runtime). A shape is `undefined` when it cannot be known statically.
 * @module
 */
import type { Dim } from "./onnx_proto.js";

/** A dimension whose size is only known at run time and has no name. */
export const UNKNOWN_DIM = "?";

/** A static shape, or `undefined` when unknown. */
export type Shape = readonly Dim[] | undefined;

/** Shape as ONNX tools print it: `[1, 3, H, W]`. */
export function formatDims(shape: Shape): string {
  return shape === undefined ? "[?]" : `[${shape.join(", ")}]`;
}

/** NumPy-style broadcast of several shapes; `undefined` if any is unknown or they do not broadcast. */
export function broadcastShapes(shapes: readonly Shape[]): Shape {
  if (shapes.some((shape) => shape === undefined)) return undefined;
  const known = shapes as readonly (readonly Dim[])[];
  const rank = Math.max(...known.map((shape) => shape.length));
  const result: Dim[] = [];
  for (let axis = 0; axis < rank; axis++) {
    let dim: Dim = 1;
    for (const shape of known) {
      const d = shape[shape.length - rank + axis] ?? 1;
      if (d === 1 || d === dim) continue;
      if (dim !== 1) return undefined;
      dim = d;
    }
    result.push(dim);
  }
  return result;
}

/** Normalises a possibly negative axis for a rank. */
export function normaliseAxis(axis: number, rank: number): number {
  const normalised = axis < 0 ? axis + rank : axis;
  if (normalised < 0 || normalised >= rank) throw new RangeError(`axis ${axis} is out of range for rank ${rank}`);
  return normalised;
}

/** Output size of a convolution along one axis. */
function convolvedDim(input: Dim, kernel: number, stride: number, padBegin: number, padEnd: number, dilation: number): Dim | undefined {
  if (typeof input !== "number") return undefined;
  return Math.floor((input + padBegin + padEnd - dilation * (kernel - 1) - 1) / stride) + 1;
}

/** Output shape of Conv: input [N, C, ...spatial], weight [M, C/group, ...kernel]. */
export function convShape(
  input: Shape,
  weight: Shape,
  strides: readonly number[],
  pads: readonly number[],
  dilations: readonly number[],
): Shape {
  if (input === undefined || weight === undefined) return undefined;
  const spatial = input.length - 2;
  const dims: Dim[] = [input[0], weight[0]];
  for (let i = 0; i < spatial; i++) {
    const dim = convolvedDim(input[i + 2], weight[i + 2] as number, strides[i], pads[i], pads[i + spatial], dilations[i]);
    if (dim === undefined) return undefined;
    dims.push(dim);
  }
  return dims;
}

/** Output shape of ConvTranspose: input [N, C, ...spatial], weight [C, M/group, ...kernel]. */
export function convTransposeShape(
  input: Shape,
  weight: Shape,
  strides: readonly number[],
  pads: readonly number[],
  outputPadding: readonly number[],
  group: number,
): Shape {
  if (input === undefined || weight === undefined) return undefined;
  const spatial = input.length - 2;
  const dims: Dim[] = [input[0], (weight[1] as number) * group];
  for (let i = 0; i < spatial; i++) {
    const size = input[i + 2];
    if (typeof size !== "number") return undefined;
    dims.push(strides[i] * (size - 1) + outputPadding[i] + (weight[i + 2] as number) - pads[i] - pads[i + spatial]);
  }
  return dims;
}

/** Output shape of MatMul (NumPy matmul semantics, batch dimensions broadcast). */
export function matMulShape(a: Shape, b: Shape): Shape {
  if (a === undefined || b === undefined || a.length < 2 || b.length < 2) return undefined;
  if (a[a.length - 1] !== b[b.length - 2] && typeof a[a.length - 1] === "number" && typeof b[b.length - 2] === "number") {
    throw new RangeError(`MatMul of ${formatDims(a)} by ${formatDims(b)}: inner dimensions differ`);
  }
  const batch = broadcastShapes([a.slice(0, -2), b.slice(0, -2)]);
  return batch === undefined ? undefined : [...batch, a[a.length - 2], b[b.length - 1]];
}

/** Output shape of Reshape with a static target (0 copies the input dim, -1 is inferred). */
export function reshapeShape(input: Shape, target: readonly number[]): Shape {
  const dims: Dim[] = target.map((d, i) => (d === 0 && input ? input[i] : d));
  const inferred = dims.indexOf(-1);
  if (inferred < 0) return dims;
  if (input === undefined || input.some((d) => typeof d !== "number")) return undefined;
  const total = (input as number[]).reduce((a, b) => a * b, 1);
  const known = dims.reduce<number>((a, d, i) => (i === inferred ? a : a * (d as number)), 1);
  if (total % known !== 0) throw new RangeError(`cannot reshape ${formatDims(input)} to [${target.join(", ")}]`);
  dims[inferred] = total / known;
  return dims;
}

/** Output shape of a static Slice. */
export function sliceShape(
  input: Shape,
  starts: readonly number[],
  ends: readonly number[],
  axes: readonly number[],
  steps: readonly number[],
): Shape {
  if (input === undefined) return undefined;
  const dims = [...input];
  for (let i = 0; i < axes.length; i++) {
    const axis = normaliseAxis(axes[i], input.length);
    const size = input[axis];
    if (typeof size !== "number") {
      dims[axis] = UNKNOWN_DIM;
      continue;
    }
    const step = steps[i];
    const clampIndex = (index: number, low: number, high: number): number =>
      Math.min(Math.max(index < 0 ? index + size : index, low), high);
    const start = step > 0 ? clampIndex(starts[i], 0, size) : clampIndex(starts[i], -1, size - 1);
    const end = step > 0 ? clampIndex(ends[i], 0, size) : clampIndex(ends[i], -1, size - 1);
    dims[axis] = Math.max(0, Math.ceil((end - start) / step));
  }
  return dims;
}
