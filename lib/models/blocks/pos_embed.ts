/**
 * DINOv2's position-embedding interpolation, done once at conversion time (the network input size
 * is fixed, so the graph carries the interpolated table as a constant).
 *
 * DINOv2 resizes the square grid of learned embeddings with `F.interpolate(mode="bicubic",
 * scale_factor=((gh + 0.1) / g, (gw + 0.1) / g))` — a scale factor, not a size: the 0.1 offset
 * changes every sample position (resizing to the size instead is off by 0.2-0.5 relative on the
 * depth). This reproduces PyTorch's CPU kernel (`upsample_bicubic2d`, Keys A = -0.75,
 * align_corners=False, taps clamped at the border) to float32 rounding: the source coordinate uses
 * the reciprocal scale rounded to float32, the fraction and the Keys weights are float32 (with the
 * fused multiply-adds PyTorch's build uses), and the 16-tap sum is accumulated in double.
 * @module
 */
import type { NdArray } from "../../ndarray/ndarray.js";

const KEYS_A = Math.fround(-0.75);
const f32 = Math.fround;

/** `a * b + c` rounded once to float32 (the product of two float32 values is exact in double). */
function fma(a: number, b: number, c: number): number {
  return f32(a * b + c);
}

/** Keys' kernel for |x| <= 1, as PyTorch's cubic_convolution1. */
function cubicNear(x: number): number {
  return fma(f32(fma(f32(KEYS_A + 2), x, -f32(KEYS_A + 3)) * x), x, 1);
}

/** Keys' kernel for 1 < |x| < 2, as PyTorch's cubic_convolution2. */
function cubicFar(x: number): number {
  return fma(fma(fma(KEYS_A, x, -f32(5 * KEYS_A)), x, f32(8 * KEYS_A)), x, -f32(4 * KEYS_A));
}

/** Source taps (clamped) and weights of one output index along one axis. */
interface AxisTaps {
  indices: number[];
  weights: number[];
}

/** PyTorch's bicubic taps for an axis resized from `inputSize` by `scaleFactor` to `outputSize` samples. */
export function bicubicTaps(inputSize: number, outputSize: number, scaleFactor: number): AxisTaps[] {
  const scale = f32(1 / scaleFactor);
  return Array.from({ length: outputSize }, (_, i) => {
    const real = scale * (i + 0.5) - 0.5;
    const start = Math.min(Math.floor(real), inputSize - 1);
    const t = f32(Math.min(Math.max(real - start, 0), 1));
    const weights = [cubicFar(f32(t + 1)), cubicNear(t), cubicNear(f32(1 - t)), cubicFar(f32(2 - t))];
    const indices = [-1, 0, 1, 2].map((offset) => Math.max(Math.min(start + offset, inputSize - 1), 0));
    return { indices, weights };
  });
}

/**
 * DINOv2's `interpolate_pos_encoding` for a `gridHeight` x `gridWidth` patch grid: `posEmbed` is
 * [1, 1 + g*g, dim] (class token first); returns [1, 1 + gridHeight*gridWidth, dim] float32.
 * @param offset DINOv2's `interpolate_offset` (0.1; 0 for models with registers).
 */
export function interpolatePosEmbed(
  posEmbed: NdArray<"float32">,
  gridHeight: number,
  gridWidth: number,
  offset = 0.1,
): NdArray<"float32"> {
  const [, tokens, dim] = posEmbed.shape;
  const grid = Math.sqrt(tokens - 1);
  const source = posEmbed.data;
  const out = new Float32Array((1 + gridHeight * gridWidth) * dim);
  out.set(source.subarray(0, dim));
  // DINOv2 names the height `w` and the width `h`; the scale factors still go to (rows, columns).
  const rows = bicubicTaps(grid, gridHeight, (gridHeight + offset) / grid);
  const columns = bicubicTaps(grid, gridWidth, (gridWidth + offset) / grid);
  const rowSum = new Float64Array(dim);
  const sum = new Float64Array(dim);
  for (let y = 0; y < gridHeight; y++) {
    for (let x = 0; x < gridWidth; x++) {
      sum.fill(0);
      for (let j = 0; j < 4; j++) {
        rowSum.fill(0);
        for (let k = 0; k < 4; k++) {
          const base = (1 + rows[y].indices[j] * grid + columns[x].indices[k]) * dim;
          const weight = columns[x].weights[k];
          for (let c = 0; c < dim; c++) rowSum[c] += source[base + c] * weight;
        }
        const weight = rows[y].weights[j];
        for (let c = 0; c < dim; c++) sum[c] += rowSum[c] * weight;
      }
      out.set(sum, (1 + y * gridWidth + x) * dim);
    }
  }
  return { data: out, shape: [1, 1 + gridHeight * gridWidth, dim], dtype: "float32" };
}

/** The patch-grid output size PyTorch derives from a scale factor: `floor(input * scale)`. */
export function scaledSize(inputSize: number, scaleFactor: number): number {
  return Math.floor(inputSize * scaleFactor);
}
