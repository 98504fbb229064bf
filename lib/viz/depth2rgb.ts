/**
 * Depth maps to colour with matplotlib's "Spectral" colormap, byte-exact with the Python
 * reference `endosynth.utils.depth2rgb`:
 *
 * ```python
 * x = (np.clip(x, dmin, dmax) - dmin) / (dmax - dmin)
 * x = (x * 255).astype(np.uint8)
 * return (cmap(x) * 255)[..., :3]
 * ```
 *
 * NumPy keeps the depth's dtype, so every step is computed in it: float16 depth (EndoSynth samples)
 * in float16, float32 depth (what models return) in float32, each operation exactly rounded. The
 * bounds are rounded to the dtype; the span `dmax - dmin` is formed in float64 and then rounded
 * (for bounds that are already values of the dtype, such as a map's own min and max, that is the
 * same as subtracting in the dtype). The colour index is truncated, not rounded.
 *
 * Non-finite depth: ±inf is clipped to the bounds like any value; NaN gets colormap index 0 (the
 * first Spectral colour), which is also what NumPy's NaN-to-uint8 cast gives on x86.
 * @module
 */
import { InputError } from "../errors.js";
import { assertFiniteNumber } from "../is.js";
import { float16Table, float32BitsToFloat16 } from "../ndarray/float16.js";
import { expectArray, type NdArray } from "../ndarray/ndarray.js";
import { SPECTRAL_LUT } from "./colormaps.js";
import { type FloatDType, roundingFor } from "./dtype_arithmetic.js";

/** The depth dtypes {@link depth2rgb} accepts. */
export const DEPTH_DTYPES: readonly FloatDType[] = ["float16", "float32", "float64"];

/** `(SPECTRAL_LUT * 255).astype(uint8)`: the colour of each index as {@link depth2rgb} returns it. */
export const SPECTRAL_UINT8: Uint8Array = Uint8Array.from(SPECTRAL_LUT, (value) => Math.trunc(value * 255));

interface Scale {
  lo: number;
  hi: number;
  span: number;
  round: (x: number) => number;
}

function scaleFor(dtype: FloatDType, dmin: number, dmax: number): Scale {
  const round = roundingFor(dtype);
  return { lo: round(dmin), hi: round(dmax), span: round(dmax - dmin), round };
}

function colorIndex(value: number, { lo, hi, span, round }: Scale): number {
  const clipped = value < lo ? lo : value > hi ? hi : value; // NaN stays NaN, as in np.clip
  const scaled = round(round(round(clipped - lo) / span) * 255);
  const index = scaled | 0; // truncation; NaN becomes 0
  // Only bounds closer together than the dtype can resolve push this past 255; NumPy's cast would wrap.
  return index > 255 ? 255 : index;
}

/** The colour index of every float16 bit pattern: a float16 map has at most 65536 distinct values. */
function float16IndexTable(scale: Scale): Uint8Array {
  const values = float16Table();
  const table = new Uint8Array(65536);
  const atLo = colorIndex(scale.lo, scale);
  const atHi = colorIndex(scale.hi, scale);
  for (let bits = 0; bits < 65536; bits++) {
    const value = values[bits];
    table[bits] = value <= scale.lo ? atLo : value >= scale.hi ? atHi : colorIndex(value, scale);
  }
  return table;
}

function float16Indices(data: Float32Array | Uint16Array, scale: Scale, out: Uint8Array): void {
  const table = float16IndexTable(scale);
  if (data instanceof Uint16Array) {
    for (let i = 0; i < data.length; i++) out[i] = table[data[i]];
    return;
  }
  const words = new Int32Array(data.buffer, data.byteOffset, data.length);
  for (let i = 0; i < data.length; i++) out[i] = table[float32BitsToFloat16(words[i])];
}

/**
 * Colour indices without argument checks, for callers that already validated (sample2png passes
 * a map's own min and max, which may be equal: then every index is 0, as NumPy's 0/0 gives).
 * @internal
 */
export function colorIndices(depth: NdArray, dmin: number, dmax: number): Uint8Array {
  const dtype = depth.dtype as FloatDType;
  const scale = scaleFor(dtype, dmin, dmax);
  const out = new Uint8Array(depth.data.length);
  if (dtype === "float16") {
    float16Indices(depth.data as Float32Array | Uint16Array, scale, out);
  } else {
    const data = depth.data as Float32Array | Float64Array;
    for (let i = 0; i < data.length; i++) out[i] = colorIndex(data[i], scale);
  }
  return out;
}

function checkArguments(depth: unknown, dmin: unknown, dmax: unknown): NdArray {
  const array = expectArray(depth, "depth", DEPTH_DTYPES);
  if (array.shape.length !== 2) {
    throw new InputError(`Expected shape [H, W] for depth but received [${array.shape.join(", ")}]`, { key: "depth" });
  }
  assertFiniteNumber("dmin", dmin);
  assertFiniteNumber("dmax", dmax);
  if (!(dmin < dmax)) throw new InputError(`Expected dmin < dmax but received dmin ${dmin} and dmax ${dmax}`, { key: "dmin" });
  return array;
}

/**
 * The Spectral colormap index (0..255) of every depth value, as `depth2rgb` computes it before
 * the lookup: a uint8 [H, W] array. Useful to compare with, or to apply another palette.
 * @throws {@link endosynth!InputError | InputError} see {@link depth2rgb}.
 */
export function depthColorIndex(depth: NdArray, dmin: number, dmax: number): NdArray<"uint8"> {
  const array = checkArguments(depth, dmin, dmax);
  return { data: colorIndices(array, dmin, dmax), shape: [...array.shape], dtype: "uint8" };
}

/** Writes the Spectral colour of each index as RGB triplets. @internal */
export function paintSpectral(indices: Uint8Array, out: Uint8Array, outOffset = 0): void {
  for (let i = 0, o = outOffset; i < indices.length; i++, o += 3) {
    const lut = indices[i] * 3;
    out[o] = SPECTRAL_UINT8[lut];
    out[o + 1] = SPECTRAL_UINT8[lut + 1];
    out[o + 2] = SPECTRAL_UINT8[lut + 2];
  }
}

/**
 * Colours a depth map with matplotlib's "Spectral" colormap between `dmin` (red) and `dmax`
 * (blue): uint8 [H, W, 3], byte-exact with the Python reference's output cast to uint8.
 *
 * @param depth float16, float32 or float64 [H, W], metres.
 * @param dmin depth shown with the first colour; smaller values are clipped to it.
 * @param dmax depth shown with the last colour; larger values are clipped to it.
 * @throws {@link endosynth!InputError | InputError} for another dtype or shape, non-finite bounds, or `dmin >= dmax`.
 * @example
 * ```ts
 * const { depth } = readSample("sample.npz");
 * await writeImage("depth.png", depth2rgb(depth, 0.02, 0.2));
 * ```
 */
export function depth2rgb(depth: NdArray, dmin: number, dmax: number): NdArray<"uint8"> {
  const array = checkArguments(depth, dmin, dmax);
  const indices = colorIndices(array, dmin, dmax);
  const out = new Uint8Array(indices.length * 3);
  paintSpectral(indices, out);
  return { data: out, shape: [array.shape[0], array.shape[1], 3], dtype: "uint8" };
}
