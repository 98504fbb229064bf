import test from "ava";
import { decodeFloat16, encodeFloat16, float16Table, roundFloat16 } from "../../lib/ndarray/float16.js";

test("every finite float16 bit pattern survives decode then encode", (t) => {
  const table = float16Table();
  let mismatches = 0;
  for (let bits = 0; bits < 65536; bits++) {
    const exponent = (bits >> 10) & 0x1f;
    if (exponent === 31 && bits & 0x3ff) continue; // NaN payloads are not preserved
    if (encodeFloat16([table[bits]])[0] !== bits) mismatches++;
  }
  t.is(mismatches, 0);
});

test("decodes the landmarks of the format", (t) => {
  const values = decodeFloat16(new Uint16Array([0x0000, 0x3c00, 0xc000, 0x7bff, 0x0001, 0x0400, 0x7c00, 0xfc00]));
  t.deepEqual(Array.from(values), [0, 1, -2, 65504, 2 ** -24, 2 ** -14, Infinity, -Infinity]);
  t.true(Number.isNaN(decodeFloat16(new Uint16Array([0x7e00]))[0]));
});

test("rounds to nearest with ties to even, as numpy.float16 does", (t) => {
  // 1 + 2^-11 lies halfway between 1 and 1 + 2^-10: ties go to the even mantissa (1).
  t.is(roundFloat16(1 + 2 ** -11), 1);
  // 1 + 3 * 2^-11 lies halfway between 1 + 2^-10 and 1 + 2^-9: even is 1 + 2^-9.
  t.is(roundFloat16(1 + 3 * 2 ** -11), 1 + 2 ** -9);
  t.is(roundFloat16(0.1), 0.0999755859375);
  t.is(roundFloat16(65520), Infinity); // halfway to the next binade overflows
  t.is(roundFloat16(2 ** -25), 0); // halfway to the smallest subnormal: ties to even (0)
  t.is(roundFloat16(1.5 * 2 ** -25), 2 ** -24);
  t.is(roundFloat16(-0.02), -0.0200042724609375);
});

test("rounds doubles directly, not through float32 (no double rounding at float16 ties)", (t) => {
  // Just above the tie between 1 and 1 + 2^-10: float32 would first round it onto the tie.
  t.is(roundFloat16(1 + 2 ** -11 + 2 ** -40), 1 + 2 ** -10);
  t.is(roundFloat16(-(1 + 2 ** -11 + 2 ** -40)), -(1 + 2 ** -10));
  t.is(roundFloat16(2 ** -25 + 2 ** -60), 2 ** -24);
  t.true(Object.is(roundFloat16(-0), -0));
});
