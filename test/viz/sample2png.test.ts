import test from "ava";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { InputError } from "../../lib/errors.js";
import { readImage } from "../../lib/io/image.js";
import { type EndoSynthSample, readSample } from "../../lib/io/sample.js";
import { ndarray } from "../../lib/ndarray/ndarray.js";
import { sample2png, sample2rgb } from "../../lib/viz/sample2png.js";
import { SPECTRAL_UINT8 } from "../../lib/viz/depth2rgb.js";
import { fixture, temporaryDirectory } from "../support/fixtures.js";

function countDifferences(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let differences = Math.abs(actual.length - expected.length);
  for (let i = 0; i < Math.min(actual.length, expected.length); i++) if (actual[i] !== expected[i]) differences++;
  return differences;
}

for (const name of ["sample_a", "sample_b"]) {
  test(`${name}: the PNG sample2png writes decodes to the reference PNG's pixels exactly`, async (t) => {
    const dir = temporaryDirectory();
    t.teardown(dir.cleanup);
    const sample = readSample(fixture("utils", `${name}.npz`));
    const expected = await readImage(fixture("utils", `${name}.sample2png.png`));
    t.deepEqual(expected.shape, [1080, 5760, 3]);
    t.is(countDifferences(sample2rgb(sample).data, expected.data), 0);
    const path = join(dir.path, `${name}.png`);
    await sample2png(sample, path);
    const written = await readImage(path);
    t.deepEqual(written.shape, expected.shape);
    t.is(countDifferences(written.data, expected.data), 0);
    t.deepEqual(readdirSync(dir.path), [`${name}.png`]);
  });
}

function tinySample(depth: number[]): EndoSynthSample {
  return {
    rgb: ndarray(new Uint8Array(12).fill(100), [2, 2, 3]),
    depth: ndarray(new Float32Array(depth), [2, 2], "float16"),
    seg: ndarray(Uint8Array.of(0, 1, 0, 6), [2, 2], "uint8"),
  };
}

test("a constant depth map gets the first Spectral colour everywhere, as NumPy's 0/0 does", (t) => {
  const picture = sample2rgb(tinySample([0.1, 0.1, 0.1, 0.1]));
  t.deepEqual(picture.shape, [2, 6, 3]);
  for (const pixel of [4, 5, 10, 11]) t.deepEqual([...picture.data.subarray(pixel * 3, pixel * 3 + 3)], [...SPECTRAL_UINT8.subarray(0, 3)]);
});

test("the overlay blends class colours half and half with the image, background untouched", (t) => {
  const picture = sample2rgb(tinySample([0.05, 0.1, 0.15, 0.2]));
  // Row 0: panel 2 starts at pixel 2. seg [0, 1]: pixel 2 keeps rgb 100, pixel 3 is 0.5 * Set2[0] * 255 + 50.
  t.deepEqual([...picture.data.subarray(6, 9)], [100, 100, 100]);
  t.deepEqual([...picture.data.subarray(9, 12)], [Math.trunc(0.5 * 0.4 * 255 + 50), Math.trunc(0.5 * 0.7607843137254902 * 255 + 50), Math.trunc(0.5 * 0.6470588235294118 * 255 + 50)]);
});

test("non-finite depth: InputError naming the value and its position", (t) => {
  t.throws(() => sample2rgb(tinySample([0.1, 0.1, NaN, 0.1])), {
    instanceOf: InputError,
    message: "Expected finite depth values in sample.depth (its min and max set the colour scale) but received NaN at [1, 0]",
  });
  t.throws(() => sample2rgb(tinySample([0.1, Infinity, 0.2, 0.1])), { instanceOf: InputError, message: /received Infinity at \[0, 1\]/ });
});

test("a sample that breaks the schema or bad options: InputError, and no file", async (t) => {
  const dir = temporaryDirectory();
  t.teardown(dir.cleanup);
  const path = join(dir.path, "x.png");
  const bad = { ...tinySample([0.1, 0.1, 0.1, 0.1]), seg: ndarray(Uint8Array.of(0, 9, 0, 0), [2, 2], "uint8") };
  await t.throwsAsync(sample2png(bad, path), { instanceOf: InputError, message: /seg holds class 9 at \[0, 1\], expected class indices 0\.\.6/ });
  await t.throwsAsync(sample2png(tinySample([0.1, 0.1, 0.1, 0.1]), path, { compressionLevel: 10 }), { instanceOf: InputError, message: /options\.compressionLevel/ });
  t.deepEqual(readdirSync(dir.path), []);
});
