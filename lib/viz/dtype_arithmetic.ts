/**
 * NumPy's arithmetic in a given float dtype, for byte-exact parity with the Python reference:
 * each NumPy float16/float32 operation is the exact result rounded to the dtype. JS computes in
 * float64 and then rounds; for + - * / of float16 or float32 operands that double rounding is
 * innocuous (53 >= 2p + 2 bits), so `round(a op b)` is exactly NumPy's `a op b`.
 * @module
 */

import { roundFloat16 } from "../ndarray/float16.js";

/** The float dtypes depth maps come in. */
export type FloatDType = "float16" | "float32" | "float64";

function identity(x: number): number {
  return x;
}

/** The function that rounds a double to the dtype (exact rounding, ties to even). */
export function roundingFor(dtype: FloatDType): (x: number) => number {
  if (dtype === "float16") return roundFloat16;
  if (dtype === "float32") return Math.fround;
  return identity;
}
