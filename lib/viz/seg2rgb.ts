/**
 * Segmentation maps to colour with matplotlib's "Set2" palette, byte-exact with the Python
 * reference `endosynth.utils.seg2rgb`: class `c > 0` gets Set2 colour `c - 1` (x 255), background
 * (0) is black.
 * @module
 */
import { assertSegClasses } from "../io/sample.js";
import { expectArray, type NdArray } from "../ndarray/ndarray.js";
import { SET2_COLORS } from "./colormaps.js";

/** `(SET2_COLORS * 255).astype(uint8)`, row `c - 1` for class `c`. */
export const SET2_UINT8: Uint8Array = Uint8Array.from(SET2_COLORS, (value) => Math.trunc(value * 255));

/**
 * Colours a segmentation map: uint8 [H, W, 3], background black, class `c` in Set2 colour `c - 1`.
 * @param seg uint8 [H, W], values 0..6.
 * @throws {@link endosynth!InputError | InputError} for another dtype or shape, or a value above 6.
 * @example
 * ```ts
 * const { seg } = readSample("sample.npz");
 * await writeImage("seg.png", seg2rgb(seg));
 * ```
 */
export function seg2rgb(seg: NdArray<"uint8">): NdArray<"uint8"> {
  const array = expectArray(seg, "seg", "uint8", [-1, -1]);
  assertSegClasses(array, "seg");
  const data = array.data;
  const out = new Uint8Array(data.length * 3);
  for (let i = 0, o = 0; i < data.length; i++, o += 3) {
    const c = data[i];
    if (c === 0) continue;
    const color = (c - 1) * 3;
    out[o] = SET2_UINT8[color];
    out[o + 1] = SET2_UINT8[color + 1];
    out[o + 2] = SET2_UINT8[color + 2];
  }
  return { data: out, shape: [array.shape[0], array.shape[1], 3], dtype: "uint8" };
}
