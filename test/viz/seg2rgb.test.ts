import test from "ava";
import { InputError } from "../../lib/errors.js";
import { readNpz } from "../../lib/io/npz.js";
import { readSample } from "../../lib/io/sample.js";
import { ndarray } from "../../lib/ndarray/ndarray.js";
import { SET2_COLORS } from "../../lib/viz/colormaps.js";
import { seg2rgb } from "../../lib/viz/seg2rgb.js";
import { fixture } from "../support/fixtures.js";

for (const name of ["sample_a", "sample_b"]) {
  test(`${name}: seg2rgb equals the reference's uint8 output, and its float64 output is Set2 x 255 exactly`, (t) => {
    const { seg } = readSample(fixture("utils", `${name}.npz`));
    const actual = seg2rgb(seg);
    const expectedUint8 = readNpz(fixture("utils", `${name}.seg2rgb.uint8.npz`)).seg2rgb_uint8;
    const expectedFloat = readNpz(fixture("utils", `${name}.seg2rgb.npz`)).seg2rgb.data as Float64Array;
    t.deepEqual(actual.shape, [1080, 1920, 3]);
    t.deepEqual(actual.shape, expectedUint8.shape);
    let uint8Differences = 0;
    let floatDifferences = 0;
    for (let i = 0; i < actual.data.length; i++) {
      if (actual.data[i] !== (expectedUint8.data as Uint8Array)[i]) uint8Differences++;
      if (actual.data[i] !== Math.trunc(expectedFloat[i])) uint8Differences++;
      const c = seg.data[Math.floor(i / 3)];
      const exact = c === 0 ? 0 : SET2_COLORS[(c - 1) * 3 + (i % 3)] * 255;
      if (exact !== expectedFloat[i]) floatDifferences++;
    }
    t.is(uint8Differences, 0);
    t.is(floatDifferences, 0);
  });
}

test("every class gets its own colour and background stays black", (t) => {
  const rgb = seg2rgb(ndarray(Uint8Array.of(0, 1, 2, 3, 4, 5, 6), [1, 7], "uint8"));
  const colours = new Set<string>();
  for (let i = 0; i < 7; i++) colours.add(String([...rgb.data.subarray(i * 3, i * 3 + 3)]));
  t.is(colours.size, 7);
  t.deepEqual([...rgb.data.subarray(0, 3)], [0, 0, 0]);
  t.deepEqual([...rgb.data.subarray(3, 6)], [102, 194, 165]); // Set2's first colour, #66c2a5
});

test("a class above 6: InputError naming the value and its position", (t) => {
  const error = t.throws(() => seg2rgb(ndarray(Uint8Array.of(0, 1, 2, 3, 7, 0), [2, 3], "uint8")), { instanceOf: InputError });
  t.is(error.key, "seg");
  t.is(error.message, "Expected class indices 0..6 in seg but received 7 at [1, 1]");
});

test("another dtype or shape: InputError", (t) => {
  t.throws(() => seg2rgb(ndarray(new Int16Array(4), [2, 2]) as never), { instanceOf: InputError, message: /dtype uint8 for seg but received int16/ });
  t.throws(() => seg2rgb(ndarray(new Uint8Array(8), [2, 2, 2], "uint8")), { instanceOf: InputError, message: "Expected shape [N, N] for seg but received [2, 2, 2]" });
});
