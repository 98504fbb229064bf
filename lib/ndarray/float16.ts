/**
 * IEEE 754 half precision (float16) and bfloat16 conversions. Decoding uses a 65536-entry table
 * (256 KiB, built on first use): one load per value, ~50x faster than per-value bit twiddling.
 * Encoding rounds to nearest, ties to even, as NumPy's `astype(np.float16)` does.
 * @module
 */

let decodeTable: Float32Array | undefined;

function buildDecodeTable(): Float32Array {
  const table = new Float32Array(65536);
  for (let bits = 0; bits < 65536; bits++) {
    const sign = bits & 0x8000 ? -1 : 1;
    const exponent = (bits >> 10) & 0x1f;
    const mantissa = bits & 0x3ff;
    if (exponent === 0) table[bits] = sign * mantissa * 2 ** -24;
    else if (exponent === 31) table[bits] = mantissa ? NaN : sign * Infinity;
    else table[bits] = sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
  }
  return table;
}

/** The float32 value of every float16 bit pattern, indexed by the 16 bits. */
export function float16Table(): Float32Array {
  decodeTable ??= buildDecodeTable();
  return decodeTable;
}

/** Decodes raw float16 bits to float32 values (exact: every float16 is a float32). */
export function decodeFloat16(bits: Uint16Array, out = new Float32Array(bits.length)): Float32Array {
  const table = float16Table();
  for (let i = 0; i < bits.length; i++) out[i] = table[bits[i]];
  return out;
}

function roundHalfToEven(x: number): number {
  const floor = Math.floor(x);
  const rest = x - floor; // exact: x < 2^53
  return rest > 0.5 || (rest === 0.5 && floor % 2 === 1) ? floor + 1 : floor;
}

/**
 * Rounds one number to the nearest float16, ties to even; returns its 16 bits. Rounds the double
 * directly: going through float32 first would round twice and break ties (1 + 2^-11 + 2^-40 must
 * give 1 + 2^-10, as `np.float16` does, not 1).
 */
export function float16Bits(value: number): number {
  if (Number.isNaN(value)) return 0x7e00;
  const sign = value < 0 || Object.is(value, -0) ? 0x8000 : 0;
  const magnitude = Math.abs(value);
  if (magnitude >= 65520) return sign | 0x7c00; // 65504 + half an ulp and beyond round to infinity
  if (magnitude < 2 ** -14) return sign | roundHalfToEven(magnitude * 2 ** 24); // subnormal (1024 = smallest normal)
  let exponent = Math.floor(Math.log2(magnitude));
  if (2 ** exponent > magnitude) exponent--; // log2 can be off by one next to powers of two
  else if (2 ** (exponent + 1) <= magnitude) exponent++;
  const significand = roundHalfToEven(magnitude * 2 ** (10 - exponent)); // in [1024, 2048], exact scaling
  return sign | (((exponent + 15) << 10) + significand - 1024); // 2048 carries into the exponent
}

/**
 * The float16 bits of one float32, given as its 32 bits: the same rounding as {@link float16Bits}
 * (a float32 is a double exactly), by integer operations only. ~100x faster than the general path,
 * which is what converting a model's weights needs (hundreds of millions of values).
 */
export function float32BitsToFloat16(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const magnitude = bits & 0x7fffffff;
  if (magnitude > 0x7f800000) return 0x7e00; // NaN, as float16Bits
  if (magnitude >= 0x477ff000) return sign | 0x7c00; // >= 65520: infinity
  const exponent = magnitude >>> 23;
  if (exponent < 113) {
    // Below 2^-14: a subnormal, counted in units of 2^-24. Under 2^-25 (exponent < 102) even
    // the tie rounds to 0; float32 subnormals are far below that.
    if (exponent < 102) return sign;
    const significand = (magnitude & 0x7fffff) | 0x800000;
    const shift = 126 - exponent;
    const rest = significand & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    let units = significand >>> shift;
    if (rest > half || (rest === half && units & 1)) units++;
    return sign | units;
  }
  // Normal: drop 13 mantissa bits, rounding half to even; a carry moves into the exponent.
  let half = ((exponent - 112) << 10) | ((magnitude >>> 13) & 0x3ff);
  const rest = magnitude & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++;
  return sign | half;
}

/** Encodes numbers to raw float16 bits, rounding to nearest even. */
export function encodeFloat16(values: ArrayLike<number>, out = new Uint16Array(values.length)): Uint16Array {
  if (values instanceof Float32Array) {
    const words = new Int32Array(values.buffer, values.byteOffset, values.length);
    for (let i = 0; i < words.length; i++) out[i] = float32BitsToFloat16(words[i]);
    return out;
  }
  for (let i = 0; i < values.length; i++) out[i] = float16Bits(values[i]);
  return out;
}

/** Rounds a number to the nearest float16 value (NumPy's `np.float16(x)`), returned as a number. */
export function roundFloat16(value: number): number {
  return float16Table()[float16Bits(value)];
}

/** Decodes raw bfloat16 bits (the top half of a float32) to float32 values. */
export function decodeBfloat16(bits: Uint16Array, out = new Float32Array(bits.length)): Float32Array {
  const wide = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < bits.length; i++) wide[i] = bits[i] << 16;
  return out;
}
