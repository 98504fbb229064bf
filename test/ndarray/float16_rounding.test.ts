import test from "ava";
import { float16Bits, float16Table, roundFloat16 } from "../../lib/ndarray/float16.js";
import { roundingFor } from "../../lib/viz/dtype_arithmetic.js";

test("every float16 value rounds to itself", (t) => {
  const table = float16Table();
  let wrong = 0;
  for (let bits = 0; bits < 0x7c00; bits++) {
    if (roundFloat16(table[bits]) !== table[bits] || roundFloat16(-table[bits]) !== -table[bits]) wrong++;
  }
  t.is(wrong, 0);
});

test("float32 values round as the float32-to-float16 conversion does (no double rounding involved)", (t) => {
  let wrong = 0;
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  for (let bits = 0x30000000; bits < 0x47800000; bits += 4099) {
    u32[0] = bits;
    if (roundFloat16(f32[0]) !== float16Table()[float16Bits(f32[0])]) wrong++;
  }
  t.is(wrong, 0);
});

test("doubles just off a float16 tie round toward the side they are on, as np.float16 does", (t) => {
  // Halfway between 1 and 1 + 2^-10; float32 would collapse these onto the tie and round to even (1).
  t.is(roundFloat16(1 + 2 ** -11 + 2 ** -40), 1 + 2 ** -10);
  t.is(roundFloat16(1 + 2 ** -11 - 2 ** -40), 1);
  t.is(roundFloat16(1 + 2 ** -11), 1);
  t.is(roundFloat16(1 + 3 * 2 ** -11), 1 + 2 ** -9);
});

test("rounds subnormals, overflow and specials like NumPy", (t) => {
  t.is(roundFloat16(2 ** -25), 0); // tie between 0 and the smallest subnormal: even is 0
  t.is(roundFloat16(2 ** -25 + 2 ** -60), 2 ** -24);
  t.is(roundFloat16(3 * 2 ** -26), 2 ** -24);
  t.is(roundFloat16(65504), 65504);
  t.is(roundFloat16(65519.99), 65504);
  t.is(roundFloat16(65520), Infinity);
  t.is(roundFloat16(-1e6), -Infinity);
  t.true(Number.isNaN(roundFloat16(NaN)));
  t.true(Object.is(roundFloat16(-0), -0));
  t.is(roundFloat16(0.02), 0.0200042724609375);
  t.is(roundFloat16(0.2), 0.199951171875);
});

test("roundingFor picks float16, float32 (Math.fround) or no rounding", (t) => {
  t.is(roundingFor("float16")(0.1), 0.0999755859375);
  t.is(roundingFor("float32")(0.1), Math.fround(0.1));
  t.is(roundingFor("float64")(0.1), 0.1);
});
