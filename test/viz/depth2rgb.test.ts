import test from "ava";
import { InputError } from "../../lib/errors.js";
import { readNpy } from "../../lib/io/npy.js";
import { readNpz } from "../../lib/io/npz.js";
import { readSample } from "../../lib/io/sample.js";
import { encodeFloat16 } from "../../lib/ndarray/float16.js";
import { type NdArray, ndarray } from "../../lib/ndarray/ndarray.js";
import { SPECTRAL_LUT } from "../../lib/viz/colormaps.js";
import { depth2rgb, depthColorIndex } from "../../lib/viz/depth2rgb.js";
import { fixture } from "../support/fixtures.js";

function countDifferences(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let differences = Math.abs(actual.length - expected.length);
  for (let i = 0; i < Math.min(actual.length, expected.length); i++) if (actual[i] !== expected[i]) differences++;
  return differences;
}

const DEPTHS: [string, () => NdArray][] = [
  ["sample_a", () => readSample(fixture("utils", "sample_a.npz")).depth],
  ["sample_b", () => readSample(fixture("utils", "sample_b.npz")).depth],
  ["depth_f32", () => readNpy(fixture("utils", "depth_f32.npy"))],
];

for (const [name, load] of DEPTHS) {
  test(`${name}: depth2rgb(depth, 0.02, 0.2) equals the reference's uint8 output byte for byte`, (t) => {
    const depth = load();
    const expected = readNpz(fixture("utils", `${name}.depth2rgb_0.02_0.2.uint8.npz`)).depth2rgb_uint8;
    const actual = depth2rgb(depth, 0.02, 0.2);
    t.deepEqual(actual.shape, expected.shape);
    t.is(actual.dtype, "uint8");
    t.is(countDifferences(actual.data, expected.data as Uint8Array), 0);
  });

  test(`${name}: colour indices pick the Spectral entries whose float64 x 255 the reference output holds exactly`, (t) => {
    const depth = load();
    const expected = readNpz(fixture("utils", `${name}.depth2rgb_0.02_0.2.npz`)).depth2rgb.data as Float64Array;
    const indices = depthColorIndex(depth, 0.02, 0.2).data;
    let differences = 0;
    for (let i = 0; i < indices.length; i++) {
      for (let c = 0; c < 3; c++) if (SPECTRAL_LUT[indices[i] * 3 + c] * 255 !== expected[i * 3 + c]) differences++;
    }
    t.is(differences, 0);
  });
}

test("raw float16 bits give the same colours as decoded float16 values", (t) => {
  const decoded = readSample(fixture("utils", "sample_b.npz")).depth;
  const raw = readSample(fixture("utils", "sample_b.npz"), { halfPrecision: "raw" }).depth;
  t.true(raw.data instanceof Uint16Array);
  t.deepEqual(depth2rgb(raw, 0.03, 0.15).data, depth2rgb(decoded, 0.03, 0.15).data);
});

test("float16 depth is computed in float16 and float32 depth in float32, as NumPy does", (t) => {
  // Values from NumPy 1.24: ((np.clip(x, 0.02, 0.2) - 0.02) / (0.2 - 0.02) * 255).astype(np.uint8)
  // for x = [nan, 0.1, inf, -inf]: in float16 the clipped top 0.2 lands on index 254, in float32 on 255.
  const values = [NaN, 0.1, Infinity, -Infinity];
  const half = ndarray(new Float32Array(values.map((v) => v)), [2, 2], "float16");
  const halfBits = ndarray(encodeFloat16(values), [2, 2], "float16");
  const single = ndarray(new Float32Array(values), [2, 2]);
  const double = ndarray(new Float64Array(values), [2, 2]);
  t.deepEqual([...depthColorIndex(half, 0.02, 0.2).data], [0, 113, 254, 0]);
  t.deepEqual([...depthColorIndex(halfBits, 0.02, 0.2).data], [0, 113, 254, 0]);
  t.deepEqual([...depthColorIndex(single, 0.02, 0.2).data], [0, 113, 255, 0]);
  t.deepEqual([...depthColorIndex(double, 0.02, 0.2).data], [0, 113, 255, 0]);
});

test("NaN depth is coloured with the first Spectral colour", (t) => {
  const rgb = depth2rgb(ndarray(new Float32Array([NaN]), [1, 1]), 0, 1);
  t.deepEqual([...rgb.data], [0, 1, 2].map((c) => Math.trunc(SPECTRAL_LUT[c] * 255)));
});

test("values below dmin and above dmax take the end colours", (t) => {
  const indices = depthColorIndex(ndarray(new Float64Array([-5, 0, 0.5, 1, 7]), [1, 5]), 0, 1).data;
  t.deepEqual([...indices], [0, 0, 127, 255, 255]);
});

test("bounds closer than float16 can resolve stop at the last colour instead of wrapping", (t) => {
  // 0.01999 and 0.02 round to neighbouring float16 values 1.5e-5 apart, while their span rounds to
  // 1.0e-5: the top value scales to 388.5, which NumPy's uint8 cast wraps to 132; we stop at 255.
  const depth = ndarray(new Float32Array([0.019989013671875, 0.0200042724609375, 0.03]), [1, 3], "float16");
  t.deepEqual([...depthColorIndex(depth, 0.01999, 0.02).data], [0, 255, 255]);
});

test("dmin >= dmax, non-finite bounds: InputError naming them", (t) => {
  const depth = ndarray(new Float32Array(4), [2, 2]);
  const equal = t.throws(() => depth2rgb(depth, 0.2, 0.2), { instanceOf: InputError });
  t.is(equal.code, "ERR_ENDOSYNTH_INPUT");
  t.is(equal.message, "Expected dmin < dmax but received dmin 0.2 and dmax 0.2");
  t.throws(() => depth2rgb(depth, 0.3, 0.2), { instanceOf: InputError, message: /dmin 0\.3 and dmax 0\.2/ });
  t.throws(() => depth2rgb(depth, NaN, 0.2), { instanceOf: InputError, message: "Expected a finite number for dmin but received NaN" });
  t.throws(() => depth2rgb(depth, 0, Infinity), { instanceOf: InputError, message: "Expected a finite number for dmax but received Infinity" });
});

test("a depth of another dtype or shape: InputError naming expected and actual", (t) => {
  t.throws(() => depth2rgb(ndarray(new Uint8Array(4), [2, 2]), 0, 1), {
    instanceOf: InputError,
    message: "Expected dtype float16 or float32 or float64 for depth but received uint8",
  });
  t.throws(() => depth2rgb(ndarray(new Float32Array(8), [2, 2, 2]), 0, 1), {
    instanceOf: InputError,
    message: "Expected shape [H, W] for depth but received [2, 2, 2]",
  });
  t.throws(() => depth2rgb({ data: new Float32Array(3), shape: [2, 2], dtype: "float32" }, 0, 1), {
    instanceOf: InputError,
    message: /depth\.data has 3 elements but its shape \[2, 2\] needs 4/,
  });
});
