/**
 * BEiT's relative position bias for a patch grid other than the pretraining window, computed once
 * at conversion time as MiDaS v3.1 does it at run time (`_get_rel_pos_bias` in
 * `midas/backbones/beit.py`): the (2Wh-1) x (2Ww-1) part of each block's learned table is resized
 * bilinearly (align_corners=False) to (2gh-1) x (2gw-1), the 3 class-token rows are appended, and
 * timm's `gen_relative_position_index` for the gh x gw grid says which row each (query, key) pair
 * of the (1 + gh*gw) tokens reads.
 *
 * The resize takes PyTorch's CPU `upsample_bilinear2d` taps exactly (the scale is the float32
 * quotient of the sizes, source coordinates and fractions are computed in double, the weights
 * rounded to float32) and sums the 4 weighted taps in double, rounding once: PyTorch rounds its
 * intermediate products and sums in an order that depends on the memory layout and vector width,
 * so single entries differ from it by up to 2 ulp (2.4e-7 on the tiny fixture's tables), far below
 * anything the depth can show. Resizing with align_corners=True instead changes MiDaS's depth by
 * ~1 % (fixtures README), bicubic by 6 %.
 * @module
 */
import type { NdArray } from "../../ndarray/ndarray.js";

/** The 3 rows after the distance grid: class token to patch, patch to class token, class token to itself. */
export const CLASS_TOKEN_ROWS = 3;

const f32 = Math.fround;

/** A patch grid (or attention window), rows x columns. */
export interface Grid {
  readonly height: number;
  readonly width: number;
}

/** Rows of the table of a window: one per (row distance, column distance), plus the class-token rows. */
export function tableRows(window: Grid): number {
  return (2 * window.height - 1) * (2 * window.width - 1) + CLASS_TOKEN_ROWS;
}

/**
 * timm's `gen_relative_position_index(grid)`: for each (query, key) pair of the 1 + h*w tokens
 * (class token first, patches row-major), the row of the bias table it reads. Patch pairs read
 * `(dy + h - 1) * (2w - 1) + (dx + w - 1)` with `dy = query row - key row`; the class token as
 * query reads row `R - 3`, as key `R - 2`, with itself `R - 1` (R = {@link tableRows}).
 * @returns int32 [1 + h*w, 1 + h*w].
 */
export function relativePositionIndex(grid: Grid): NdArray<"int32"> {
  const { height, width } = grid;
  const tokens = 1 + height * width;
  const rows = tableRows(grid);
  const span = 2 * width - 1;
  const index = new Int32Array(tokens * tokens);
  index.fill(rows - 3, 0, tokens);
  for (let query = 1; query < tokens; query++) {
    const qy = Math.floor((query - 1) / width);
    const qx = (query - 1) % width;
    const base = query * tokens;
    index[base] = rows - 2;
    for (let key = 1; key < tokens; key++) {
      const ky = Math.floor((key - 1) / width);
      const kx = (key - 1) % width;
      index[base + key] = (qy - ky + height - 1) * span + (qx - kx + width - 1);
    }
  }
  index[0] = rows - 1;
  return { data: index, shape: [tokens, tokens], dtype: "int32" };
}

/** Source taps and float32 weights of one output sample of PyTorch's bilinear, align_corners=False. */
interface LinearTap {
  low: number;
  high: number;
  lowWeight: number;
  highWeight: number;
}

/** PyTorch's `upsample_bilinear2d` taps along one axis (`F.interpolate(size=...)`, no scale factor). */
export function bilinearTaps(inputSize: number, outputSize: number): LinearTap[] {
  const scale = f32(inputSize / outputSize);
  return Array.from({ length: outputSize }, (_, i) => {
    const source = Math.max(scale * (i + 0.5) - 0.5, 0);
    const low = Math.floor(source);
    const highWeight = f32(Math.min(source - low, 1));
    return { low, high: low < inputSize - 1 ? low + 1 : low, lowWeight: f32(1 - highWeight), highWeight };
  });
}

/**
 * MiDaS's relative position table for a patch grid: the [tableRows(window), heads] table learned
 * for `window` becomes [tableRows(grid), heads], so that
 * `table[relativePositionIndex(grid)].permute(2, 0, 1)` is the [heads, tokens, tokens] bias.
 *
 * Like MiDaS, the distance part is read as a [2Ww-1, 2Wh-1] image per head (its `reshape(1,
 * old_width, old_height, -1)`) and resized to (2gh-1, 2gw-1). The index stores the row distance
 * outermost, so for a square window (every BEiT's) that image is the distance grid as read.
 */
export function resizeRelativePositionTable(table: NdArray<"float32">, window: Grid, grid: Grid): NdArray<"float32"> {
  const [, heads] = table.shape;
  const inHeight = 2 * window.width - 1;
  const inWidth = 2 * window.height - 1;
  const outHeight = 2 * grid.height - 1;
  const outWidth = 2 * grid.width - 1;
  const source = table.data;
  const out = new Float32Array(tableRows(grid) * heads);
  const rowTaps = bilinearTaps(inHeight, outHeight);
  const columnTaps = bilinearTaps(inWidth, outWidth);
  const at = (y: number, x: number, head: number): number => source[(y * inWidth + x) * heads + head];
  for (let y = 0; y < outHeight; y++) {
    const r = rowTaps[y];
    for (let x = 0; x < outWidth; x++) {
      const c = columnTaps[x];
      for (let head = 0; head < heads; head++) {
        const top = at(r.low, c.low, head) * c.lowWeight + at(r.low, c.high, head) * c.highWeight;
        const bottom = at(r.high, c.low, head) * c.lowWeight + at(r.high, c.high, head) * c.highWeight;
        out[(y * outWidth + x) * heads + head] = top * r.lowWeight + bottom * r.highWeight;
      }
    }
  }
  // The class-token rows are copied unchanged.
  out.set(source.subarray(inHeight * inWidth * heads, (inHeight * inWidth + CLASS_TOKEN_ROWS) * heads), outHeight * outWidth * heads);
  return { data: out, shape: [tableRows(grid), heads], dtype: "float32" };
}
