/**
 * NumPy's arithmetic in a given float dtype, for byte-exact parity with the Python reference:
 * each NumPy float16/float32 operation is the exact result rounded to the dtype. JS computes in
 * float64 and then rounds; for + - * / of float16 or float32 operands that double rounding is
 * innocuous (53 >= 2p + 2 bits), so `round(a op b)` is exactly NumPy's `a op b`.
 * @internal
 * @module
 */

/** The float dtypes depth maps come in. */
export type FloatDType = "float16" | "float32" | "float64";

/**
 * Rounds a double to the nearest float16 value, ties to even, directly (as `np.float16(x)` does).
 * Not via float32: that double rounding lands on a float16 tie for some doubles and then rounds
 * the wrong way (1 + 2^-11 + 2^-40 would give 1 instead of 1 + 2^-10).
 */
export function roundToFloat16(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const magnitude = Math.abs(x);
  let exponent = Math.floor(Math.log2(magnitude));
  // log2 may be off by one next to powers of two.
  if (2 ** exponent > magnitude) exponent--;
  else if (2 ** (exponent + 1) <= magnitude) exponent++;
  const ulp = 2 ** (Math.max(exponent, -14) - 10); // below 2^-14 the spacing is the subnormal one
  const scaled = magnitude / ulp; // exact: a power-of-two scaling
  const floor = Math.floor(scaled);
  const rest = scaled - floor;
  const units = rest > 0.5 || (rest === 0.5 && floor % 2 === 1) ? floor + 1 : floor;
  const rounded = units * ulp;
  return Math.sign(x) * (rounded > 65504 ? Infinity : rounded);
}

function identity(x: number): number {
  return x;
}

/** The function that rounds a double to the dtype (exact rounding, ties to even). */
export function roundingFor(dtype: FloatDType): (x: number) => number {
  if (dtype === "float16") return roundToFloat16;
  if (dtype === "float32") return Math.fround;
  return identity;
}
