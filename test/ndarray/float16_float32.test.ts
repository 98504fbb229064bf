import test from "ava";
import { encodeFloat16, float16Bits, float16Table } from "../../lib/ndarray/float16.js";

/** The float32 whose bits are `bits`. */
function float32Of(bits: number): number {
  return new Float32Array(Uint32Array.of(bits >>> 0).buffer)[0];
}

/** Encodes through the Float32Array path and through the per-number path; returns the disagreements. */
function disagreements(values: Float32Array): string[] {
  const fast = encodeFloat16(values);
  const wrong: string[] = [];
  values.forEach((value, i) => {
    if (fast[i] !== float16Bits(value)) wrong.push(`${value}: ${fast[i].toString(16)} instead of ${float16Bits(value).toString(16)}`);
  });
  return wrong;
}

test("Float32Array input rounds exactly as single numbers do, at and around every float16 tie", (t) => {
  const table = float16Table();
  const values: number[] = [];
  for (let bits = 0; bits < 0x7c00; bits++) {
    const low = table[bits];
    const tie = Math.fround((low + table[bits + 1]) / 2); // exact: one bit more than float16 keeps
    const tieBits = new Uint32Array(Float32Array.of(tie).buffer)[0];
    for (const v of [low, tie, float32Of(tieBits - 1), float32Of(tieBits + 1)]) values.push(v, -v);
  }
  t.deepEqual(disagreements(Float32Array.from(values)), []);
});

test("Float32Array input rounds exactly as single numbers do across the float32 range (specials, subnormals, overflow)", (t) => {
  const sampled = Float32Array.from({ length: 1 << 20 }, (_, i) => float32Of(i * 4093 + 17));
  const specials = Float32Array.of(0, -0, NaN, Infinity, -Infinity, 65504, 65519.99, 65520, -65520, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 1e-45, 3.4e38);
  t.deepEqual(disagreements(sampled), []);
  t.deepEqual(disagreements(specials), []);
  t.is(encodeFloat16(Float32Array.of(-0))[0], 0x8000);
});

test("a Float32Array view into a larger buffer is encoded from its own offset", (t) => {
  const buffer = Float32Array.of(7, 1, 0.5, 7);
  t.deepEqual([...encodeFloat16(buffer.subarray(1, 3))], [0x3c00, 0x3800]);
});
